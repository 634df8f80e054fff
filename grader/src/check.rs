//! What a check is, and the context it runs in.
//!
//! A check reads like a line of the lecture's test plan: a stimulus (start
//! the program, send bytes or a signal), an expectation (a line, bytes, an
//! exit status, a state in `/proc`), and a hint that names the concept. The
//! check function returns `Ok(())` or the first [`Failure`]; the runner adds
//! the transcript of what was done, the hint and the rerun command.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::cpu_lock::{self, Use};
use crate::harness::failure::{excerpt, grouped};
use crate::harness::{show, Conn, Exit, Failure, Kind, Options, Program, Spec, Step, Transcript};

/// How long [`Ctx::wait_exit`] waits for a program that makes no progress
/// at all before it gives up on it, in seconds (scaled by `--time-scale`).
/// No progress means: no output, none of the grader's input taken, no CPU
/// time and no wake-up in any of its processes, no process started or
/// ended — and no thread that goes on by itself (one that runs or waits
/// for a CPU, or sleeps with a time-out). A correct program is never in
/// that state while it has work left: every one of its processes is
/// blocked on something that will not come (a pipe end nobody closes, a
/// child that never ends). So this bounds only how long a hang costs,
/// never what a slow program is allowed.
pub const STALL_SECS: f64 = 5.0;

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
    /// sockets, hundreds of clients) in a phase it marks with
    /// [`Ctx::heavy`]: started once the timing checks are done.
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
    /// beside a heavy phase.
    pub const fn timed(id: &'static str, points: u32, title: &'static str, hint: &'static str, run: CheckFn) -> Check {
        Check { id, title, points, cost: Cost::Timing, hint, run }
    }

    /// A check that keeps the CPUs busy in a phase it marks with
    /// [`Ctx::heavy`] (once its program is up: a program that never comes
    /// up fails without waiting for the phase). It is started once the
    /// timing checks are done, or when nothing else is left to start; its
    /// heavy phase runs while no timing check measures, beside light checks
    /// and other heavy phases.
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
    /// The check's declared cost: a timing check can have no heavy phase.
    cost: Cost,
    /// In a heavy phase ([`Ctx::heavy`]) now.
    in_heavy: Cell<bool>,
    /// Time spent waiting at the gate for heavy phases.
    gate_wait: Cell<Duration>,
}

/// A heavy phase of a check, until dropped ([`Ctx::heavy`]).
#[must_use = "the phase ends when the guard is dropped"]
pub struct HeavyPhase<'c> {
    inside: Option<(cpu_lock::Guard<'static>, &'c Cell<bool>)>,
}

impl Drop for HeavyPhase<'_> {
    fn drop(&mut self) {
        if let Some((_, flag)) = &self.inside {
            flag.set(false);
        }
    }
}

impl<'a> Ctx<'a> {
    pub fn new(bins: &'a BTreeMap<String, PathBuf>, scale: f64, cost: Cost) -> Ctx<'a> {
        Ctx {
            bins,
            scale,
            log: Rc::default(),
            started: RefCell::default(),
            cost,
            in_heavy: Cell::new(false),
            gate_wait: Cell::default(),
        }
    }

    /// Mark the CPU-heavy phase of a check (16 MiB through a socket, 500
    /// clients, a storm of signals), until the guard is dropped: it begins
    /// once no timing check measures, and no timing check begins while it
    /// lasts. The deadlines of what follows count from when it began. Put
    /// it where the heavy work starts, after the program is up and has
    /// answered: a program that hangs fails before, without waiting here.
    /// A phase inside a phase changes nothing.
    ///
    /// # Panics
    ///
    /// In a timing check: it measures throughout, so it cannot have a heavy
    /// phase.
    pub fn heavy(&self) -> HeavyPhase<'_> {
        assert!(self.cost != Cost::Timing, "a timing check measures throughout; it cannot have a heavy phase");
        if self.in_heavy.get() {
            return HeavyPhase { inside: None };
        }
        let guard = cpu_lock::gate().enter(Use::Heavy);
        self.gate_wait.set(self.gate_wait.get() + guard.waited);
        self.in_heavy.set(true);
        HeavyPhase { inside: Some((guard, &self.in_heavy)) }
    }

    /// How long the check waited at the gate for its heavy phases: not
    /// part of its duration.
    pub fn gate_wait(&self) -> Duration {
        self.gate_wait.get()
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
            env: Vec::new(),
        };
        let mut opts = Options { output_cap: 8 << 20, forbid_leftovers: true, needs_account: false };
        adjust(&mut spec, &mut opts);
        Ok(Program::start(bin, &spec, opts, self.log.clone())?.with_time_scale(self.scale))
    }
}

impl Ctx<'_> {
    /// Connect a client named `name` to `addr` (loopback), logged.
    pub fn connect(&self, name: &str, addr: std::net::SocketAddr) -> Step<Conn> {
        Conn::connect(name, addr, self.secs(5.0), self.log.clone())
    }

    /// Run the cases of a check in order, `run` on each, and stop at the
    /// first that fails: a program that hangs costs one deadline, not one
    /// per case. The failure says which case failed, and the transcript
    /// which cases were not run.
    pub fn cases<T>(&self, cases: &[(&str, T)], mut run: impl FnMut(&T) -> Step) -> Step {
        let n = cases.len();
        for (k, (name, case)) in cases.iter().enumerate() {
            if n > 1 {
                self.did(format!("case {} of {n}: {name}", k + 1));
            }
            if let Err(mut f) = run(case) {
                if n > 1 {
                    f.got = format!("in case {} of {n} ({name}): {}", k + 1, f.got);
                    let rest: Vec<&str> = cases[k + 1..].iter().map(|(name, _)| *name).collect();
                    if !rest.is_empty() {
                        self.did(format!("stopped at this failure; not run: {}", rest.join("; ")));
                    }
                }
                return Err(f);
            }
        }
        Ok(())
    }

    /// Wait until `p` has exited and closed its output, within `secs`
    /// seconds (scaled), like [`Program::wait_exit`] — but give up as soon
    /// as it has made no progress for [`STALL_SECS`]: a program that hangs
    /// costs that, not the whole deadline, while one that works (through
    /// megabytes, or slowly on a loaded machine) keeps the whole deadline.
    /// Progress is what the grader sees without asking the program
    /// ([`Program::progress`]); a program with a thread that goes on by
    /// itself ([`Program::goes_on_by_itself`]) is not stalled either.
    pub fn wait_exit(&self, p: &mut Program, what: &str, secs: f64) -> Step<Exit> {
        let (total, stall) = (self.secs(secs), self.secs(STALL_SECS));
        // Looked at this often: a hang costs the bound and at most one look more.
        let look = stall / 5;
        let started = Instant::now();
        let (mut seen, mut since) = (p.progress(), started);
        loop {
            let left = total.saturating_sub(started.elapsed());
            match p.wait_exit(what, look.min(left)) {
                Err(f) if f.kind == Kind::TimedOut => {
                    if started.elapsed() >= total {
                        return Err(p.timed_out(what, started.elapsed()));
                    }
                    let now = p.progress();
                    if now != seen || p.goes_on_by_itself() {
                        (seen, since) = (now, Instant::now());
                    } else if since.elapsed() >= stall {
                        let mut f = p.timed_out(what, started.elapsed());
                        f.got.push_str(&format!(
                            "; nothing happened in its last {:.1} s (no output, none of its input taken, no CPU \
                             time, no process started or ended; every thread blocked without a time-out), so the \
                             grader stopped waiting",
                            since.elapsed().as_secs_f64()
                        ));
                        return Err(f);
                    }
                }
                done => return done,
            }
        }
    }

    /// [`Self::wait_exit`], then require exit status `code`; crashes and
    /// panics are named as such.
    pub fn expect_exit(&self, p: &mut Program, code: i32, what: &str, secs: f64) -> Step {
        match self.wait_exit(p, what, secs)? {
            Exit::Code(c) if c == code => Ok(()),
            exit => Err(p.classify(exit, what)),
        }
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
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::*;

    fn bins() -> BTreeMap<String, PathBuf> {
        BTreeMap::from([("sh".to_string(), PathBuf::from("/bin/sh"))])
    }

    #[test]
    fn cases_stop_at_the_first_failure_and_say_which_and_what_was_not_run() {
        let bins = bins();
        let cx = Ctx::new(&bins, 1.0, Cost::Light);
        let mut ran = Vec::new();
        let cases = [("one", 1), ("two", 2), ("three", 3), ("four", 4)];
        let f = cx
            .cases(&cases, |&n| {
                ran.push(n);
                if n == 2 {
                    Err(Failure::wrong("the line `x`", "`y`"))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert_eq!(ran, [1, 2]);
        assert_eq!(f.got, "in case 2 of 4 (two): the line `x`");
        let steps = &cx.log.borrow().steps;
        assert_eq!(steps.last().unwrap(), "stopped at this failure; not run: three; four");
        assert!(steps.contains(&"case 2 of 4: two".to_string()), "{steps:?}");
        // One case is just the check: no numbering.
        let f = cx.cases(&[("only", ())], |_| Err(Failure::wrong("a", "b"))).unwrap_err();
        assert_eq!(f.got, "a");
    }

    #[test]
    fn a_heavy_phase_enters_the_gate_once_and_never_in_a_timing_check() {
        // The process's gate: no other test of this crate enters it.
        let bins = bins();
        let light = Ctx::new(&bins, 1.0, Cost::Light);
        let outer = light.heavy();
        assert!(outer.inside.is_some() && light.in_heavy.get());
        assert!(light.heavy().inside.is_none(), "a phase inside a phase: already inside the gate");
        drop(outer);
        assert!(!light.in_heavy.get());
        assert!(Ctx::new(&bins, 1.0, Cost::Heavy).heavy().inside.is_some());
        let timing = Ctx::new(&bins, 1.0, Cost::Timing);
        assert!(catch_unwind(AssertUnwindSafe(|| drop(timing.heavy()))).is_err());
    }

    /// At a time scale of 0.2 the stall bound is 1 s and a 20 s deadline 4 s.
    #[test]
    fn a_program_that_does_nothing_is_given_up_on_after_the_stall_bound() {
        let bins = bins();
        let cx = Ctx::new(&bins, 0.2, Cost::Light);
        // `cat` on a stdin the grader keeps open: blocked in `read` for ever.
        let mut p = cx.start("sh", &["-c", "exec cat"]).unwrap();
        let started = Instant::now();
        let f = cx.wait_exit(&mut p, "sh to end", 20.0).unwrap_err();
        let took = started.elapsed();
        assert_eq!(f.kind, Kind::TimedOut);
        assert!(f.got.contains("nothing happened in its last 1."), "{}", f.got);
        assert!(took >= Duration::from_secs(1) && took < Duration::from_millis(3500), "{took:?}");
    }

    #[test]
    fn a_program_that_sleeps_silently_is_not_stalled() {
        let bins = bins();
        let cx = Ctx::new(&bins, 0.2, Cost::Light);
        // Silent for 1.6 s, more than the stall bound of 1 s, asleep with a
        // time-out (a child of the shell, in `nanosleep`) all the while.
        let mut p = cx.start("sh", &["-c", "sleep 1.6; exit 7"]).unwrap();
        assert_eq!(cx.wait_exit(&mut p, "sh to end", 20.0).unwrap(), Exit::Code(7));
    }

    #[test]
    fn a_program_that_keeps_printing_keeps_the_whole_deadline() {
        let bins = bins();
        let cx = Ctx::new(&bins, 0.2, Cost::Light);
        // 1.8 s in all, more than the stall bound of 1 s, a line every 0.3 s.
        let script = "for i in 1 2 3 4 5 6; do echo $i; sleep 0.3; done; exit 7";
        let mut p = cx.start("sh", &["-c", script]).unwrap();
        assert_eq!(cx.wait_exit(&mut p, "sh to end", 20.0).unwrap(), Exit::Code(7));
        let mut p = cx.start("sh", &["-c", script]).unwrap();
        let f = cx.expect_exit(&mut p, 0, "exit status 0", 20.0).unwrap_err();
        assert!(f.got.contains("exited with status 7"), "{}", f.got);
    }

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
