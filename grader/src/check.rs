//! What a check is, and the context it runs in.
//!
//! A check reads like a line of the lecture's test plan: a stimulus (start
//! the program, send bytes or a signal), an expectation (a line, bytes, an
//! exit status, a state in `/proc`), and a hint that names the concept. The
//! check function returns `Ok(())` or the first [`Failure`]; the runner adds
//! the transcript of what was done, the hint and the rerun command.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crate::harness::failure::{excerpt, grouped};
use crate::harness::{show, Conn, Failure, Options, Program, Spec, Step, Transcript};

/// A check function. A shared `&Ctx` is enough: what the context records
/// (the transcript, the binaries started) sits behind cells.
pub type CheckFn = fn(&Ctx) -> Step;

/// One graded behaviour of an exercise.
pub struct Check {
    /// Short id, unique within the exercise (`sigint-idle`).
    pub id: &'static str,
    /// What is checked, one line.
    pub title: &'static str,
    pub points: u32,
    /// Measures wall-clock timing: runs after the other checks, never next
    /// to CPU-heavy ones.
    pub timing: bool,
    /// The concept behind the check, shown when it fails.
    pub hint: &'static str,
    pub run: CheckFn,
}

impl Check {
    /// A check that judges behaviour, not wall-clock time: it runs next to
    /// other checks.
    pub const fn new(id: &'static str, points: u32, title: &'static str, hint: &'static str, run: CheckFn) -> Check {
        Check { id, title, points, timing: false, hint, run }
    }

    /// A check that judges wall-clock time (when something happens): it
    /// runs after the others, next to other timing checks only.
    pub const fn timed(id: &'static str, points: u32, title: &'static str, hint: &'static str, run: CheckFn) -> Check {
        Check { id, title, points, timing: true, hint, run }
    }
}

/// An exercise: its binaries and its checks.
pub struct Exercise {
    /// Id on the command line (`signals`).
    pub id: &'static str,
    pub title: &'static str,
    /// The lecture slides it belongs to.
    pub slides: &'static str,
    /// Binaries the exercise crate builds; all must be present to grade it.
    pub bins: &'static [&'static str],
    /// Its hint file, `grader/hints/<id>.toml` (see [`crate::hints`]): the
    /// three levels of help per TODO of the skeleton, the TODOs per check.
    pub hints: &'static str,
    pub checks: Vec<Check>,
}

impl Exercise {
    /// Folder name under `exercises/` and `solutions/`.
    pub fn dir(&self) -> &'static str {
        self.id
    }

    pub fn max_points(&self) -> u32 {
        self.checks.iter().map(|c| c.points).sum()
    }
}

/// What a check gets: the binaries to run, the time scale, and a transcript
/// that every program it starts writes to.
pub struct Ctx<'a> {
    bins: &'a BTreeMap<String, PathBuf>,
    pub scale: f64,
    pub log: Rc<RefCell<Transcript>>,
    /// The binaries started so far, each once, in order of first start.
    started: RefCell<Vec<String>>,
}

impl<'a> Ctx<'a> {
    pub fn new(bins: &'a BTreeMap<String, PathBuf>, scale: f64) -> Ctx<'a> {
        Ctx { bins, scale, log: Rc::default(), started: RefCell::default() }
    }

    /// The binaries this check started (or tried to), each once, in order of
    /// first start. The reports point a failure at their source files.
    pub fn programs(&self) -> Vec<String> {
        self.started.borrow().clone()
    }

    /// `secs` seconds, scaled by `--time-scale`: for deadlines and upper
    /// bounds only, never for lower bounds.
    pub fn secs(&self, secs: f64) -> Duration {
        Duration::from_secs_f64(secs * self.scale)
    }

    /// Record a step in the transcript ("waited until it blocked").
    pub fn did(&self, step: impl Into<String>) {
        self.log.borrow_mut().did(step);
    }

    /// The executable the grader runs as binary `bin` (built, or given with
    /// `--bin`).
    pub fn bin_path(&self, bin: &str) -> Step<&Path> {
        self.bins
            .get(bin)
            .map(PathBuf::as_path)
            .ok_or_else(|| Failure::grader(format!("no executable for binary `{bin}`")))
    }

    /// Start binary `bin` with `args` and the default options.
    pub fn start(&self, bin: &str, args: &[&str]) -> Step<Program> {
        self.start_with(bin, args, |_, _| {})
    }

    /// Start binary `bin`, letting `adjust` change the spec and options
    /// (output cap, CPU pinning, limits).
    pub fn start_with(&self, bin: &str, args: &[&str], adjust: impl FnOnce(&mut Spec, &mut Options)) -> Step<Program> {
        let path = self.bin_path(bin)?;
        {
            let mut started = self.started.borrow_mut();
            if !started.iter().any(|b| b == bin) {
                started.push(bin.to_string());
            }
        }
        let mut spec = Spec {
            path: path.to_path_buf(),
            args: args.iter().map(OsString::from).collect(),
            limits: Default::default(),
            cpu: None,
        };
        let mut opts = Options { output_cap: 8 << 20, forbid_leftovers: true };
        adjust(&mut spec, &mut opts);
        Ok(Program::start(bin, &spec, opts, self.log.clone())?.with_time_scale(self.scale))
    }
}

impl Ctx<'_> {
    /// Connect a client named `name` to `addr` (loopback), logged.
    pub fn connect(&self, name: &str, addr: std::net::SocketAddr) -> Step<Conn> {
        Conn::connect(name, addr, self.secs(5.0), self.log.clone())
    }
}

/// Compare bytes. On a difference say where it starts and show both sides
/// there: short data in full, long data as a short window around the first
/// difference (the bytes after a mismatch say little, and a dump of them
/// fills the screen).
pub fn same(what: &str, got: &[u8], want: &[u8]) -> Step {
    /// Both sides shown in full up to this many bytes.
    const SHORT: usize = 48;
    /// Bytes of a window before and from the first difference.
    const BEFORE: usize = 8;
    const FROM: usize = 16;
    if got == want {
        return Ok(());
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    if got.len() <= SHORT && want.len() <= SHORT {
        return Err(Failure::wrong(format!("{what} {} (first difference at byte {at})", show(got)), show(want)));
    }
    let window = |b: &[u8]| excerpt(b, at.saturating_sub(BEFORE), at + FROM);
    let (n_got, n_want) = (grouped(got.len()), grouped(want.len()));
    let (got_desc, want_desc) = if at == got.len() {
        (
            format!("{what}: only the first {n_got} of {n_want} bytes, ending {}", window(got)),
            format!("{} from byte {} on", window(want), grouped(at)),
        )
    } else if at == want.len() {
        (
            format!("{what}: the {n_want} bytes expected, then {} more: {}", grouped(got.len() - at), window(got)),
            format!("nothing after byte {n_want}"),
        )
    } else {
        let of = if got.len() == want.len() { n_want } else { format!("{n_want} ({n_got} received)") };
        (format!("{what}: first difference at byte {} of {of}: {}", grouped(at), window(got)), window(want))
    };
    Err(Failure::wrong(got_desc, want_desc))
}

/// Compare one line.
pub fn same_line(got: &[u8], want: &str) -> Step {
    if got == want.as_bytes() {
        Ok(())
    } else {
        Err(Failure::wrong(format!("the line {}", show(got)), format!("`{want}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_mismatch_is_where_it_starts_not_a_dump() {
        let want = vec![b'a'; 10_485_760];
        let mut got = want.clone();
        got[4096] = b'b';
        let f = same("the 10 MiB", &got, &want).unwrap_err();
        assert!(
            f.got.starts_with("the 10 MiB: first difference at byte 4\u{a0}096 of 10\u{a0}485\u{a0}760: …`"),
            "{}",
            f.got
        );
        assert!(f.got.chars().count() < 140 && f.expected.chars().count() < 100, "{f:?}");
        let f = same("the 10 MiB", &want[..5000], &want).unwrap_err();
        assert!(f.got.starts_with("the 10 MiB: only the first 5\u{a0}000 of 10\u{a0}485\u{a0}760 bytes"), "{}", f.got);
        let f = same("x", b"short", b"shirt").unwrap_err();
        assert_eq!((f.got.as_str(), f.expected.as_str()), ("x `short` (first difference at byte 2)", "`shirt`"));
    }
}
