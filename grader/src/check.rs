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
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use crate::harness::{show, Conn, Failure, Options, Program, Spec, Step, Transcript};

/// A check function. A shared `&Ctx` is enough: what the context records
/// (the transcript, the binaries started) sits behind cells.
pub type CheckFn = fn(&Ctx) -> Step;

/// What a check asks of the machine: how the runner schedules it
/// ([`crate::runner`], [`crate::cpu_lock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Starts programs and mostly waits on them: runs beside anything.
    Light,
    /// Keeps the CPUs busy for a while (a storm of signals, 16 MiB through
    /// sockets, hundreds of clients): never while a timing check measures.
    Heavy,
    /// Judges wall-clock time, when something happens: its whole run is a
    /// measuring window, with nothing heavy beside it.
    Timing,
}

/// One graded behaviour of an exercise.
pub struct Check {
    /// Short id, unique within the exercise (`sigint-idle`).
    pub id: &'static str,
    /// What is checked, one line.
    pub title: &'static str,
    pub points: u32,
    pub cost: Cost,
    /// The concept behind the check, shown when it fails.
    pub hint: &'static str,
    pub run: CheckFn,
}

impl Check {
    /// A check that judges behaviour and mostly waits on programs: it runs
    /// next to any other check.
    pub const fn new(id: &'static str, points: u32, title: &'static str, hint: &'static str, run: CheckFn) -> Check {
        Check { id, title, points, cost: Cost::Light, hint, run }
    }

    /// A check that judges wall-clock time (when something happens): it
    /// starts at once, beside other timing checks and light ones, never
    /// beside heavy ones.
    pub const fn timed(id: &'static str, points: u32, title: &'static str, hint: &'static str, run: CheckFn) -> Check {
        Check { id, title, points, cost: Cost::Timing, hint, run }
    }

    /// A check that keeps the CPUs busy: it runs while no timing check
    /// measures, beside light and other heavy ones.
    pub const fn heavy(id: &'static str, points: u32, title: &'static str, hint: &'static str, run: CheckFn) -> Check {
        Check { id, title, points, cost: Cost::Heavy, hint, run }
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

    /// Start binary `bin` with `args` and the default options.
    pub fn start(&self, bin: &str, args: &[&str]) -> Step<Program> {
        self.start_with(bin, args, |_, _| {})
    }

    /// Start binary `bin`, letting `adjust` change the spec and options
    /// (output cap, CPU pinning, limits).
    pub fn start_with(&self, bin: &str, args: &[&str], adjust: impl FnOnce(&mut Spec, &mut Options)) -> Step<Program> {
        let path = self.bins.get(bin).ok_or_else(|| Failure::grader(format!("no executable for binary `{bin}`")))?;
        {
            let mut started = self.started.borrow_mut();
            if !started.iter().any(|b| b == bin) {
                started.push(bin.to_string());
            }
        }
        let mut spec = Spec {
            path: path.clone(),
            args: args.iter().map(OsString::from).collect(),
            limits: Default::default(),
            cpu: None,
        };
        let mut opts = Options { output_cap: 8 << 20, forbid_leftovers: true };
        adjust(&mut spec, &mut opts);
        Program::start(bin, &spec, opts, self.log.clone())
    }
}

impl Ctx<'_> {
    /// Connect a client named `name` to `addr` (loopback), logged.
    pub fn connect(&self, name: &str, addr: std::net::SocketAddr) -> Step<Conn> {
        Conn::connect(name, addr, self.secs(5.0), self.log.clone())
    }
}

/// Compare bytes; on a difference say where it starts and show both sides
/// around it.
pub fn same(what: &str, got: &[u8], want: &[u8]) -> Step {
    if got == want {
        return Ok(());
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    let from = at.saturating_sub(24);
    let window = |b: &[u8]| show(&b[from.min(b.len())..(at + 40).min(b.len())]);
    let got_desc = if at == got.len() && got.len() < want.len() {
        format!("{} bytes of {what}, ending after {}; the rest was missing", got.len(), window(got))
    } else if at == want.len() {
        format!("{what} correct for {} bytes, then extra bytes {}", want.len(), window(got))
    } else {
        format!("{what} differing at byte {at}: {} ({} bytes in all)", window(got), got.len())
    };
    Err(Failure::wrong(got_desc, format!("{} at that place ({} bytes in all)", window(want), want.len())))
}

/// Compare one line.
pub fn same_line(got: &[u8], want: &str) -> Step {
    if got == want.as_bytes() {
        Ok(())
    } else {
        Err(Failure::wrong(format!("the line {}", show(got)), format!("`{want}`")))
    }
}
