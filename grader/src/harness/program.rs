//! A running student program and the one loop that waits on it.
//!
//! All waiting goes through one loop (`Program::pump`, behind
//! [`Program::wait_for`], [`Program::wait_exit`] and [`Program::observe`]):
//! a [`deadline::wait`] on the program's stdout and stderr, its stdin (while
//! the grader has bytes queued for it) and a pidfd that turns readable when
//! it exits, bounded by a [`Deadline`]. Output is read as it comes (so a
//! chatty program never blocks on a full pipe), kept up to a cap and drained
//! beyond it. Conditions that have no event of their own (a thread asleep, a
//! handler installed) are sampled from `/proc` on a short back-off *inside*
//! the same loop — it still wakes at once on output or exit.

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::{write, Pid};

use super::capture::Capture;
use super::deadline::{self, Deadline};
use super::failure::{show, size, Exit, Failure, Kind, Step};
use super::leash::Leash;
use super::pidns::{Namespace, Plan};
use super::procfs;
use super::reaper::{self, SpawnError, Tracked};
use super::signals::Watch;
use super::spawn::{self, Spec};

/// A snapshot of a program's visible activity ([`Program::progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Bytes written to stdout and stderr.
    output: (usize, usize),
    /// The grader's input not yet read: queued, or in the stdin pipe.
    backlog: usize,
    /// CPU ticks and voluntary context switches (wake-ups), summed over
    /// its processes.
    cpu: u64,
    wakeups: u64,
    /// Its processes: one started or ended.
    processes: Vec<Pid>,
}

/// What a check did, in order, for the failure report. Shared by the check
/// context and every program it starts.
#[derive(Debug, Default)]
pub struct Transcript {
    pub steps: Vec<String>,
    /// Processes a program left running after it exited (found at cleanup).
    pub leftovers: Vec<String>,
    /// Signals a program sent the grader (found at cleanup, see
    /// [`super::signals`] and [`super::pidns`]).
    pub incidents: Vec<String>,
    last_write: Option<(String, usize, usize)>,
}

impl Transcript {
    pub fn did(&mut self, step: impl Into<String>) {
        self.last_write = None;
        self.steps.push(step.into());
    }

    /// Log a write to stdin; consecutive writes merge into one line.
    fn wrote(&mut self, who: &str, bytes: &[u8]) {
        self.sent(&format!("wrote {{}} to {who}'s stdin"), bytes);
    }

    /// Log bytes sent somewhere; `template` has one `{}` for the bytes.
    /// Consecutive sends with the same template merge into one line.
    pub fn sent(&mut self, template: &str, bytes: &[u8]) {
        match &mut self.last_write {
            Some((w, n, k)) if w == template => {
                *n += bytes.len();
                *k += 1;
                let (n, k) = (*n, *k);
                if let Some(last) = self.steps.last_mut() {
                    *last = format!("{} in {k} writes", template.replace("{}", &size(n)));
                }
            }
            _ => {
                self.steps.push(template.replace("{}", &show(bytes)));
                self.last_write = Some((template.to_string(), bytes.len(), 1));
            }
        }
    }
}

pub type SharedTranscript = Rc<RefCell<Transcript>>;

/// One output stream of the program (stdout or stderr).
#[derive(Debug)]
struct Stream {
    /// Our read end of the pipe; `None` once the grader closed it.
    pipe: Option<std::fs::File>,
    data: Capture,
    /// Not read while held: the pipe fills and the program blocks in its
    /// `write` (see [`Program::hold_stdout`]).
    held: bool,
}

impl Stream {
    fn new(fd: OwnedFd, cap: usize) -> Stream {
        set_nonblocking(&fd);
        Stream { pipe: Some(fd.into()), data: Capture::new(cap), held: false }
    }

    fn open(&self) -> bool {
        self.pipe.is_some() && !self.data.eof
    }

    fn drain(&mut self) {
        if self.held {
            return;
        }
        if let Some(pipe) = &mut self.pipe {
            self.data.drain_from(pipe);
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) {
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}

/// How long descendants still running when the program has exited may take
/// to end on their own before they count as left behind (SPEC §6), at time
/// scale 1. They have a reason to be on their way out: a child that asked
/// for `PR_SET_PDEATHSIG` is sent its signal the moment the program exits,
/// and a child reading a pipe the program held sees EOF then; either only
/// has to be scheduled once to die. Even with every core busy, a woken
/// process runs within one scheduler period (CFS: 6 ms × (1 + log2 of the
/// cores), 12 ms here), so 250 ms leaves it some twenty chances. It is paid
/// only where something still runs: the wait ends at the last exit (it
/// waits on pidfds), and a program that leaves nothing pays nothing. A
/// daemon that never ends costs its check 250 ms (times the time scale).
pub const LEFTOVER_GRACE: Duration = Duration::from_millis(250);

/// Options for [`Program::start`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest stdout (and stderr) the grader keeps.
    pub output_cap: usize,
    /// Report processes still running after the program exited.
    pub forbid_leftovers: bool,
    /// Run as a user with an account even where programs get a uid of the
    /// pool of their own ([`super::runas::identity_with_account`]): a
    /// `dbus-daemon` admits only uids whose groups it can look up (`bus`).
    pub needs_account: bool,
}

/// A student program, started clean and contained (see [`super::spawn`],
/// [`super::leash`] and [`super::pidns`]). Dropping it kills and reaps
/// everything it created.
pub struct Program {
    /// Binary name for messages (`sigecho`).
    pub name: String,
    /// The program, as the grader's `/proc` shows it.
    pid: Pid,
    /// The grader's child: the program, or init of its PID namespace.
    /// Dropped before `leash`: the cgroup can go once the leader is reaped.
    child: Tracked,
    /// Its PID namespace, where it runs in one.
    ns: Option<Namespace>,
    pidfd: OwnedFd,
    leash: Leash,
    /// Signals it sends the grader become its check's failure.
    watch: Watch,
    stdin: Option<OwnedFd>,
    queued: Vec<u8>,
    queued_off: usize,
    close_when_flushed: bool,
    out: Stream,
    err: Stream,
    exit: Option<Exit>,
    started: Instant,
    opts: Options,
    /// [`LEFTOVER_GRACE`], scaled by [`Program::with_time_scale`].
    leftover_grace: Duration,
    /// The executable the grader started, canonical (symlinks resolved),
    /// as `/proc/PID/exe` shows it; `None` if it cannot be resolved.
    exe: Option<PathBuf>,
    log: SharedTranscript,
    _cwd: tempfile::TempDir,
}

impl Program {
    /// Start `spec` as `name`, logging to `log`.
    pub fn start(name: &str, spec: &Spec, opts: Options, log: SharedTranscript) -> Step<Program> {
        let mut leash = Leash::new(opts.needs_account).map_err(Failure::grader)?;
        let cwd = leash.workdir().map_err(|e| Failure::grader(format!("cannot create a working directory: {e}")))?;
        let exe = super::runas::exec_path(&spec.path).map_err(|e| {
            Failure::grader(format!("cannot copy {} where its user can run it: {e}", spec.path.display()))
        })?;
        let plan = match Plan::new(leash.identity.as_ref().map(|who| (who.uid, who.gid))) {
            None => None,
            Some(Ok(plan)) => Some(plan),
            Some(Err(e)) => return Err(Failure::grader(format!("cannot link to a PID namespace: {e}"))),
        };
        let mut cmd = spawn::command(spec, &exe, &leash, cwd.path(), plan.as_ref().map(Plan::first));
        if let Some(plan) = &plan {
            plan.last(&mut cmd, &spec.path);
        }
        let shown = std::iter::once(name.to_string())
            .chain(spec.args.iter().map(|a| shell_word(&a.to_string_lossy())))
            .collect::<Vec<_>>()
            .join(" ");
        // Taken before the fork: lower time bounds count from here, and the
        // program may run (arm its alarm) before `spawn` returns.
        let watch = Watch::new(name, leash.env_entry());
        let started = Instant::now();
        let (mut child, pid, ns) = match plan {
            Some(plan) => {
                let s = plan.spawn(&mut cmd, &spec.path)?;
                leash.stand_in(s.ns.parent());
                (s.child, s.program, Some(s.ns))
            }
            None => {
                let child = reaper::spawn_tracked(&mut cmd).map_err(|e| match e {
                    SpawnError::Stopping => Failure::grader("the grader is stopping"),
                    SpawnError::Io(e) => Failure::new(
                        Kind::Crashed,
                        format!("`{}` could not be started: {e}", spec.path.display()),
                        "an executable program",
                    ),
                })?;
                let pid = child.pid();
                (child, pid, None)
            }
        };
        watch.started(pid);
        leash.check_joined(pid);
        super::ipc::note_pid(pid, name); // ipc leaks: its objects are its check's
        if let Some(ns) = &ns {
            super::ipc::note_pid(ns.seen, name); // ipc leaks: and so are names with the pid it sees
        }
        let pidfd = reaper::pidfd_open(pid).ok_or_else(|| Failure::grader("pidfd_open failed"))?;
        let stdin: OwnedFd = child.stdin.take().map(Into::into).ok_or_else(|| Failure::grader("no stdin pipe"))?;
        set_nonblocking(&stdin);
        let out = Stream::new(
            child.stdout.take().map(Into::into).ok_or_else(|| Failure::grader("no stdout pipe"))?,
            opts.output_cap,
        );
        let err = Stream::new(
            child.stderr.take().map(Into::into).ok_or_else(|| Failure::grader("no stderr pipe"))?,
            opts.output_cap.min(1 << 20),
        );
        let seen = ns.as_ref().map_or(pid, |ns| ns.seen);
        log.borrow_mut().did(format!("started `{shown}` (pid {seen})"));
        Ok(Program {
            name: name.to_string(),
            pid,
            child,
            ns,
            pidfd,
            leash,
            watch,
            stdin: Some(stdin),
            queued: Vec::new(),
            queued_off: 0,
            close_when_flushed: false,
            out,
            err,
            exit: None,
            started,
            opts,
            leftover_grace: LEFTOVER_GRACE,
            exe: std::fs::canonicalize(&spec.path).ok(),
            log,
            _cwd: cwd,
        })
    }

    /// Scale the program's own waits by `scale` (`--time-scale`): the
    /// grace period for descendants at its end, which load stretches like
    /// every upper bound.
    pub fn with_time_scale(mut self, scale: f64) -> Program {
        self.leftover_grace = LEFTOVER_GRACE.mul_f64(scale);
        self
    }

    /// The program's pid in the grader's `/proc`: for reading its state
    /// and signalling it. It may see itself under another one
    /// ([`Self::seen_pid`]).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The program's pid as it sees it (`getpid()` in it): what it prints,
    /// and what the grader calls it in messages.
    pub fn seen_pid(&self) -> Pid {
        self.ns.as_ref().map_or(self.pid, |ns| ns.seen)
    }

    /// How the process `pid` (of the grader's `/proc`) sees itself: its pid
    /// for messages.
    pub fn shown(&self, pid: Pid) -> Pid {
        if pid == self.pid {
            return self.seen_pid();
        }
        procfs::ns_pid(pid).unwrap_or(pid)
    }

    /// The process of the program that sees itself as `seen` (a pid the
    /// program printed), as the grader's `/proc` shows it; `None` if the
    /// program has none (any more).
    pub fn find(&self, seen: Pid) -> Option<Pid> {
        match &self.ns {
            Some(ns) => ns.find(seen),
            None => procfs::state(seen).map(|_| seen),
        }
    }

    /// Readable once the program has exited: for waits on other descriptors
    /// that must end when the program does.
    pub fn exit_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Time since the program was started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn log(&self, step: impl Into<String>) {
        self.log.borrow_mut().did(step);
    }

    // ----- stimuli ---------------------------------------------------------

    /// Queue `bytes` for the program's stdin; they are written by the wait
    /// loop as the pipe takes them, so a program that does not read never
    /// blocks the grader.
    pub fn send(&mut self, bytes: &[u8]) {
        self.log.borrow_mut().wrote(&self.name, bytes);
        self.send_quiet(bytes);
    }

    pub fn send_quiet(&mut self, bytes: &[u8]) {
        if self.stdin.is_none() {
            return;
        }
        if self.queued_off == self.queued.len() {
            self.queued.clear();
            self.queued_off = 0;
        }
        self.queued.extend_from_slice(bytes);
        self.flush_stdin();
    }

    /// Close stdin once everything queued is written: the program sees EOF.
    pub fn close_stdin(&mut self) {
        self.log(format!("closed {}'s stdin (EOF)", self.name));
        self.close_when_flushed = true;
        self.flush_stdin();
    }

    /// Close the grader's end of the program's stdout: its next write fails
    /// (EPIPE / SIGPIPE).
    pub fn close_stdout(&mut self) {
        self.log(format!("closed the pipe {} writes its stdout to (reader gone)", self.name));
        self.out.pipe = None;
    }

    /// Stop (`true`) or resume (`false`) reading the program's stdout. While
    /// held, the pipe fills and the program's next `write` blocks, inside
    /// whatever lock its output library holds: the one moment in which a
    /// signal handler that prints is sure to re-enter that lock.
    pub fn hold_stdout(&mut self, held: bool) {
        if held != self.out.held {
            self.log(if held {
                format!("stopped reading {}'s stdout, so the pipe fills", self.name)
            } else {
                format!("read {}'s stdout again", self.name)
            });
        }
        self.out.held = held;
    }

    /// While the grader holds stdout (see [`Self::hold_stdout`]): whether
    /// the program has stopped writing it, and how. `None` while a thread
    /// runs or the pipe is empty; `Some(true)` when a thread sleeps in the
    /// kernel's pipe write (blocked in `write` of its stdout); `Some(false)`
    /// when every thread sleeps elsewhere (in `poll` for a writable stdout,
    /// say) — the caller tells that from a pause by seeing it last. Not
    /// "the pipe is full": how much room a blocked writer leaves depends on
    /// its write sizes (a page per write that does not fit the last one).
    pub fn stdout_stalled(&self) -> Option<bool> {
        let pipe = self.out.pipe.as_ref().filter(|_| self.out.held)?;
        if pipe_fill(pipe) == 0 {
            return None;
        }
        let tasks = procfs::tasks(self.pid);
        if tasks.is_empty() || tasks.iter().any(|t| t.state != 'S') {
            return None;
        }
        Some(
            tasks
                .iter()
                .any(|t| procfs::pipe_wait(Pid::from_raw(t.tid)).is_some_and(|(end, _)| end == procfs::PipeEnd::Write)),
        )
    }

    /// Bytes queued for stdin and not yet taken by the pipe.
    pub fn stdin_backlog(&self) -> usize {
        self.queued.len() - self.queued_off
    }

    pub fn signal(&mut self, sig: Signal) {
        self.log(format!("sent {sig} to {} (pid {})", self.name, self.seen_pid()));
        self.signal_quiet(sig);
    }

    pub fn signal_quiet(&self, sig: Signal) {
        if self.exit.is_none() {
            let _ = kill(self.pid, sig);
        }
    }

    fn flush_stdin(&mut self) {
        if let Some(fd) = &self.stdin {
            while self.queued_off < self.queued.len() {
                match write(fd, &self.queued[self.queued_off..]) {
                    Ok(n) => self.queued_off += n,
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => break,
                    Err(_) => {
                        // EPIPE: the program closed its stdin or exited.
                        self.queued_off = self.queued.len();
                        self.stdin = None;
                        break;
                    }
                }
            }
        }
        if self.close_when_flushed && self.queued_off == self.queued.len() {
            self.stdin = None;
        }
    }

    // ----- observations ----------------------------------------------------

    /// How the program ended, if it has (without reaping it).
    pub fn exit(&mut self) -> Option<Exit> {
        if self.exit.is_none() {
            self.exit = match &self.ns {
                None => reaper::peek_exit(&self.pidfd).and_then(|s| match s {
                    WaitStatus::Exited(_, code) => Some(Exit::Code(code)),
                    WaitStatus::Signaled(_, sig, _) => Some(Exit::Signal(sig as i32)),
                    _ => None,
                }),
                // Not the grader's child, but a zombie until the namespace
                // ends: its status is in /proc once its pidfd says it exited.
                Some(_) => self.ended().then(|| procfs::exit_status(self.pid)).flatten().and_then(|s| {
                    if libc::WIFEXITED(s) {
                        Some(Exit::Code(libc::WEXITSTATUS(s)))
                    } else if libc::WIFSIGNALED(s) {
                        Some(Exit::Signal(libc::WTERMSIG(s)))
                    } else {
                        None
                    }
                }),
            };
        }
        self.exit
    }

    /// Whether the program has exited (its pidfd is readable).
    fn ended(&self) -> bool {
        let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        deadline::wait(&mut fds, Deadline::after(Duration::ZERO)) > 0
    }

    /// Everything received on stdout so far (up to the cap).
    pub fn stdout(&self) -> &[u8] {
        &self.out.data.buf
    }

    /// Total bytes the program wrote to stdout (also beyond the cap).
    pub fn stdout_len(&self) -> usize {
        self.out.data.total
    }

    pub fn stderr(&self) -> &[u8] {
        &self.err.data.buf
    }

    /// Stdout not yet taken by [`Self::line`] / [`Self::take_stdout`].
    pub fn stdout_pending(&self) -> &[u8] {
        self.out.data.pending()
    }

    /// Take everything received on stdout and not yet taken.
    pub fn take_stdout(&mut self) -> Vec<u8> {
        self.out.data.take_all()
    }

    /// Take the next complete line (without its `\n`), if one is there.
    pub fn try_line(&mut self) -> Option<Vec<u8>> {
        self.out.data.try_line()
    }

    /// The program and all its descendants, for messages and measurements.
    pub fn tree(&self) -> Vec<Pid> {
        procfs::tree(self.pid)
    }

    /// The program and every other process it created that still runs:
    /// its tree and everything else on its leash (orphans re-parented to
    /// the grader, daemons that left the session).
    pub fn processes(&self) -> Vec<Pid> {
        let mut all = vec![self.pid];
        all.extend(self.strays());
        all
    }

    /// Processes of the program that run another executable than the one
    /// the grader started (`/proc/PID/exe`), with what they run: a program
    /// that hands its work to `python3`, `nc` or `sh` shows here. Empty
    /// when the started executable cannot be resolved.
    pub fn other_executables(&self) -> Vec<(Pid, PathBuf)> {
        let Some(ours) = &self.exe else { return Vec::new() };
        self.processes().into_iter().filter_map(|p| procfs::exe(p).filter(|e| e != ours).map(|e| (p, e))).collect()
    }

    /// Where every thread of every process of the program sits right now.
    pub fn whereabouts(&self) -> String {
        procfs::describe(&self.tree())
    }

    /// CPU ticks (1/100 s) of the program itself (all its threads).
    pub fn cpu_ticks(&self) -> u64 {
        procfs::cpu_ticks(self.pid).unwrap_or(0)
    }

    /// What shows, without asking the program, that it is getting on
    /// ([`Progress`]): two snapshots that differ mean it did something in
    /// between.
    pub fn progress(&self) -> Progress {
        let processes = self.processes();
        Progress {
            output: (self.stdout_len(), self.err.data.total),
            backlog: self.stdin_backlog() + self.stdin.as_ref().map_or(0, pipe_fill),
            cpu: processes.iter().filter_map(|&p| procfs::cpu_ticks(p)).sum(),
            wakeups: processes.iter().filter_map(|&p| procfs::voluntary_switches(p)).sum(),
            processes,
        }
    }

    /// Whether some thread of the program goes on by itself, even if it
    /// shows no [`progress`](Self::progress) yet: it runs or waits for a
    /// CPU, is in the kernel uninterruptibly (paging in, say), or sleeps with
    /// a time-out (`sleep`, `poll` with a timeout).
    pub fn goes_on_by_itself(&self) -> bool {
        self.processes().into_iter().flat_map(procfs::tasks).any(|t| {
            matches!(t.state, 'R' | 'D') || (t.state == 'S' && procfs::waits_with_timeout(Pid::from_raw(t.tid)))
        })
    }

    /// True when every thread of the program sleeps, every byte the grader
    /// sent has been read and nothing waits in its stdin pipe: the program
    /// is blocked waiting for something the grader has not sent.
    pub fn is_idle(&self) -> bool {
        if self.stdin_backlog() > 0 || self.stdin.as_ref().is_some_and(|fd| pipe_fill(fd) > 0) {
            return false;
        }
        let tasks = procfs::tasks(self.pid);
        !tasks.is_empty() && tasks.iter().all(|t| t.state == 'S')
    }

    // ----- waiting ---------------------------------------------------------

    /// Pump I/O until `cond` yields a value, the program ends without it, or
    /// `timeout` passes. `what` names what was awaited, for the message.
    /// With `sample` the condition reads `/proc` and is re-evaluated on a
    /// short back-off as well as on every I/O event.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        sample: bool,
        mut cond: impl FnMut(&mut Program) -> Option<T>,
    ) -> Step<T> {
        let outcome = self.pump(Deadline::after(timeout), sample, |p| {
            if let Some(v) = cond(p) {
                return Some(Ok(v));
            }
            if let Some(f) = p.output_limit(what) {
                return Some(Err(f));
            }
            let exited = p.exit().is_some();
            // A held stdout is never read to its EOF: the exit alone ends it.
            let out_open = p.out.open() && !p.out.held;
            if !exited || out_open || p.err.open() {
                return None;
            }
            // It may have exited just after `cond` looked: a condition the
            // exit fulfils (`exit().is_some()`) is met, not "ended early".
            Some(cond(p).map_or_else(|| Err(p.ended_early(what)), Ok))
        });
        outcome.unwrap_or_else(|| Err(self.timed_out(what, timeout)))
    }

    /// Wait for the next line on stdout.
    pub fn line(&mut self, what: &str, timeout: Duration) -> Step<Vec<u8>> {
        self.wait_for(what, timeout, false, |p| p.try_line())
    }

    /// Wait until the program is idle (see [`Self::is_idle`]), seen twice in
    /// a row so a passing sleep is not mistaken for waiting on input.
    pub fn wait_idle(&mut self, what: &str, timeout: Duration) -> Step {
        let mut seen = 0;
        self.wait_for(what, timeout, true, |p| {
            seen = if p.is_idle() { seen + 1 } else { 0 };
            (seen >= 2).then_some(())
        })?;
        Ok(())
    }

    /// Wait until the program has exited and closed its output; return how.
    pub fn wait_exit(&mut self, what: &str, timeout: Duration) -> Step<Exit> {
        let outcome = self.pump(Deadline::after(timeout), false, |p| {
            if let Some(f) = p.output_limit(what) {
                return Some(Err(f));
            }
            let exit = p.exit()?;
            (!p.out.open() && !p.err.open()).then_some(Ok(exit))
        });
        outcome.unwrap_or_else(|| Err(self.timed_out(what, timeout)))
    }

    /// Wait for the exit and require `code`. Crashes and panics are named as
    /// such; a wrong status shows stderr.
    pub fn expect_exit(&mut self, code: i32, what: &str, timeout: Duration) -> Step {
        let exit = self.wait_exit(what, timeout)?;
        match exit {
            Exit::Code(c) if c == code => Ok(()),
            _ => Err(self.classify(exit, what)),
        }
    }

    /// Keep pumping I/O for `span` (a measurement window, e.g. "idle for
    /// 0.5 s"); fails only if the program dies or floods output meanwhile.
    pub fn observe(&mut self, span: Duration, what: &str) -> Step {
        let outcome = self.pump(Deadline::after(span), false, |p| {
            if let Some(f) = p.output_limit(what) {
                return Some(Err(f));
            }
            let exit = p.exit()?;
            Some(Err(p.classify(exit, what)))
        });
        outcome.unwrap_or(Ok(()))
    }

    /// The one wait loop: write queued stdin, ask `turn` whether the wait is
    /// over, else wait for the next event (or, with `sample`, at most 1–8 ms
    /// on a back-off). `None` when `deadline` passed first.
    fn pump<T>(
        &mut self,
        deadline: Deadline,
        sample: bool,
        mut turn: impl FnMut(&mut Program) -> Option<Step<T>>,
    ) -> Option<Step<T>> {
        let mut tick = Duration::from_millis(1);
        loop {
            self.flush_stdin();
            if let Some(outcome) = turn(self) {
                return Some(outcome);
            }
            if deadline.passed() {
                return None;
            }
            if sample {
                self.poll_once(deadline.sooner(tick));
                tick = (tick * 2).min(Duration::from_millis(8));
            } else {
                self.poll_once(deadline);
            }
        }
    }

    /// One wait on stdout, stderr, stdin (if bytes are queued) and the
    /// pidfd; handle whatever is ready.
    fn poll_once(&mut self, until: Deadline) {
        let want_write = self.stdin.is_some() && self.stdin_backlog() > 0;
        let (out_open, err_open, alive) = (self.out.open(), self.err.open(), self.exit.is_none());
        {
            let mut fds: Vec<PollFd> = Vec::with_capacity(4);
            if let (true, false, Some(fd)) = (out_open, self.out.held, &self.out.pipe) {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            if let (true, Some(fd)) = (err_open, &self.err.pipe) {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            if let (true, Some(fd)) = (want_write, &self.stdin) {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            }
            if alive {
                fds.push(PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN));
            }
            deadline::wait(&mut fds, until);
        }
        // Reading and writing are non-blocking: doing them unconditionally
        // is as cheap as looking at revents, and simpler.
        self.out.drain();
        self.err.drain();
        self.flush_stdin();
        if alive {
            self.exit();
        }
    }

    // ----- failures ----------------------------------------------------------

    fn stderr_tail(&self) -> String {
        let err = String::from_utf8_lossy(self.stderr());
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return String::new();
        }
        let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
        format!("; its stderr: {}", show(tail.as_bytes()))
    }

    /// Everything the program wrote to stdout, for a failure: what the
    /// check had already taken and what came after it.
    fn output_so_far(&self) -> String {
        self.out.data.describe("on stdout")
    }

    /// A panic message on stderr, as `(location, message)`; the location as
    /// printed (`src/main.rs:102:5`), which [`Self::classify`] both shows and
    /// keeps as data.
    fn panic_message(&self) -> Option<(String, String)> {
        let err = String::from_utf8_lossy(self.stderr());
        let mut lines = err.lines();
        while let Some(line) = lines.next() {
            if let Some(rest) = line.split_once("panicked at ").map(|(_, r)| r) {
                let loc = rest.trim_end_matches(':').to_string();
                let msg = if rest.ends_with(':') { lines.next().unwrap_or("").to_string() } else { String::new() };
                return Some((loc, msg));
            }
        }
        None
    }

    /// A panic (or a `todo!()` reached) that stderr reports, as a failure.
    fn panic_failure(&self, what: &str) -> Option<Failure> {
        let name = &self.name;
        let (loc, msg) = self.panic_message()?;
        let at = crate::results::Location::parse(&loc);
        if msg.contains("not yet implemented") || msg.contains("not implemented") {
            // The kind and the place say it all; the check's general
            // hint says what the `todo!()` is to do.
            return Some(
                Failure::new(Kind::NotImplemented, format!("{name} reached a `todo!()` at {loc}"), what)
                    .with_location(at),
            );
        }
        let failure = Failure::new(Kind::Panicked, format!("{name} panicked at {loc}: {msg}"), what);
        let failure = if ["Broken pipe", "BrokenPipe", "EPIPE"].iter().any(|e| msg.contains(e)) {
            failure.diagnosed(
                "it panicked on EPIPE: the reader of its output had gone, and the error was not handled \
                 (`println!` panics on it, and so does an `unwrap` of the write)",
                "write with `write_all` and handle the error: stop, say so on stderr and exit with the status \
                 the contract names",
            )
        } else {
            failure
        };
        Some(failure.with_location(at))
    }

    /// A panic in a thread of a program that still runs (a `todo!()` in a
    /// handler that a library runs on a thread of its own): whatever stderr
    /// holds now, read without waiting.
    pub fn panicked(&mut self, what: &str) -> Option<Failure> {
        self.out.drain();
        self.err.drain();
        self.panic_failure(what)
    }

    /// Describe an exit that the check did not want.
    pub fn classify(&self, exit: Exit, what: &str) -> Failure {
        let name = &self.name;
        if let Some(f) = self.panic_failure(what) {
            return f;
        }
        match exit {
            Exit::Signal(sig) => {
                let sname = super::failure::signal_name(sig);
                let got = format!("{name} was killed by {sname}{}", self.stderr_tail());
                let failure = Failure::new(Kind::Crashed, got, what);
                match killed_by(sig) {
                    Some((means, hint)) => failure.diagnosed(means, hint),
                    None => failure,
                }
            }
            Exit::Code(code) => Failure::wrong(
                format!("{name} exited with status {code}; {}{}", self.output_so_far(), self.stderr_tail()),
                what,
            ),
        }
    }

    fn ended_early(&mut self, what: &str) -> Failure {
        let exit = self.exit().unwrap_or(Exit::Code(0));
        self.classify(exit, what)
    }

    /// The failure for `what` not seen after waiting `waited`: what came
    /// on stdout, and where the program sits (or that its output stayed
    /// open after it exited).
    pub fn timed_out(&mut self, what: &str, waited: Duration) -> Failure {
        let place = if self.exit().is_some() {
            format!("{} had exited, but its stdout or stderr stayed open (held by a child process?)", self.name)
        } else {
            let w = self.whereabouts();
            if w.is_empty() {
                format!("{} was gone", self.name)
            } else {
                w
            }
        };
        let mut got = format!("{} within {:.1} s; {place}", self.output_so_far(), waited.as_secs_f64());
        if self.stdin_backlog() > 0 {
            got.push_str(&format!(
                "; {} of the grader's input were still waiting to be read",
                size(self.stdin_backlog())
            ));
        }
        Failure::new(Kind::TimedOut, got, what)
    }

    /// `Some` once the program wrote more than the cap to stdout or stderr.
    fn output_limit(&self, what: &str) -> Option<Failure> {
        let (which, cap) = if self.out.data.overflowed() {
            ("stdout", self.out.data.cap)
        } else if self.err.data.overflowed() {
            ("stderr", self.err.data.cap)
        } else {
            return None;
        };
        Some(
            Failure::new(
                Kind::OutputLimit,
                format!("{} wrote more than {} to {which}; the grader stopped it", self.name, size(cap)),
                what,
            )
            .diagnosed(
                "the program printed far more than the check can ask of it",
                "look for a loop that never ends, or one that does not stop at EOF or on an error",
            ),
        )
    }
}

impl Program {
    /// Processes of the program that still run, other than the program
    /// itself: on its leash, or in its namespace.
    fn strays(&self) -> Vec<Pid> {
        let mut left = self.leash.members(self.pid);
        if let Some(ns) = &self.ns {
            left.extend(ns.members());
            left.sort();
            left.dedup();
            left.retain(|&p| p != self.pid && procfs::alive(p));
        }
        left
    }
}

impl Drop for Program {
    /// Kill everything the program created and reap it. If the program had
    /// exited on its own but its descendants still ran after a grace period
    /// ([`LEFTOVER_GRACE`]), record them; if it signalled the grader, record
    /// that.
    fn drop(&mut self) {
        let mut known = None;
        if self.opts.forbid_leftovers && self.exit().is_some() {
            // Descendants on their way out get [`LEFTOVER_GRACE`] to go.
            let grace = Deadline::after(self.leftover_grace);
            let left = reaper::wait_until_gone(grace, || self.strays());
            if !left.is_empty() {
                left.iter().for_each(|&p| super::ipc::note_pid(p, &procfs::comm(p))); // ipc leaks: these too
                let list: Vec<String> =
                    left.iter().take(5).map(|&p| format!("{} (pid {})", procfs::comm(p), self.shown(p))).collect();
                self.log.borrow_mut().leftovers.push(format!(
                    "{} exited but left {} process(es) running: {}{}",
                    self.name,
                    left.len(),
                    list.join(", "),
                    if left.len() > 5 { ", …" } else { "" }
                ));
            }
            known = Some(left);
        }
        let mut incidents = Vec::new();
        if let Some(ns) = &self.ns {
            // Ask the stand-in parent what it was sent, then end the
            // namespace: killing init kills every process in it, and init
            // is gone (below) only once they all are.
            incidents = ns.incidents(&self.name);
            ns.kill();
        }
        // What is left on the leash (in a namespace: what is dying with it)
        // is killed, and the program's uid noted clean once it is gone.
        self.leash.kill_all(self.pid, Deadline::after(Duration::from_secs(10)), known);
        // Before the leader is reaped: a signal it sent is still its own.
        incidents.extend(self.watch.take());
        self.log.borrow_mut().incidents.extend(incidents);
        let _ = self.child.wait();
        // Dropping `child` then gives its pid up and reaps the orphans.
    }
}

/// What a death by `sig` means and what to do about it, for the signals
/// that have a usual cause; `None` for the rest (the check's general hint
/// applies).
fn killed_by(sig: i32) -> Option<(&'static str, &'static str)> {
    Some(match sig {
        libc::SIGPIPE => (
            "it wrote to a pipe or socket whose reader had gone, and SIGPIPE's default action ended it",
            "where the reader may go first, handle EPIPE: Rust ignores SIGPIPE, so `write` returns the error; in C \
             ignore SIGPIPE or send with MSG_NOSIGNAL",
        ),
        libc::SIGABRT => (
            "the process aborted (SIGABRT): a panic while panicking, a failed allocation, or a lock or allocator \
             entered again from a signal handler",
            "look at stderr in `got`; a signal handler may only do async-signal-safe work (set a flag)",
        ),
        libc::SIGSEGV => (
            "an invalid memory access",
            "look at the unsafe code: a bad pointer, or one past the end of shared memory?",
        ),
        libc::SIGXCPU => (
            "it used up its CPU-time limit: it kept computing while it should have been waiting",
            "look for a busy loop: block in `read`, `poll` or `waitpid` instead of trying again and again",
        ),
        _ => return None,
    })
}

/// Bytes waiting in a pipe (FIONREAD); 0 when unknown.
fn pipe_fill(fd: &impl AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer we pass, which
    // points to a live local; the descriptor is owned by us.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc == 0 {
        n.max(0) as usize
    } else {
        0
    }
}

/// Quote `word` for a shell if it needs it, for rerunnable command lines.
pub fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
