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
}

impl Stream {
    fn new(fd: OwnedFd, cap: usize) -> Stream {
        set_nonblocking(&fd);
        Stream { pipe: Some(fd.into()), data: Capture::new(cap) }
    }

    fn open(&self) -> bool {
        self.pipe.is_some() && !self.data.eof
    }

    fn drain(&mut self) {
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

/// Options for [`Program::start`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest stdout (and stderr) the grader keeps.
    pub output_cap: usize,
    /// Report processes still running after the program exited.
    pub forbid_leftovers: bool,
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
    log: SharedTranscript,
    _cwd: tempfile::TempDir,
}

impl Program {
    /// Start `spec` as `name`, logging to `log`.
    pub fn start(name: &str, spec: &Spec, opts: Options, log: SharedTranscript) -> Step<Program> {
        let cwd = tempfile::Builder::new()
            .prefix("ipc-lab-")
            .tempdir()
            .map_err(|e| Failure::grader(format!("cannot create a working directory: {e}")))?;
        let leash = Leash::new();
        let plan = match Plan::new() {
            None => None,
            Some(Ok(plan)) => Some(plan),
            Some(Err(e)) => return Err(Failure::grader(format!("cannot link to a PID namespace: {e}"))),
        };
        let mut cmd = spawn::command(spec, &leash, cwd.path(), plan.as_ref().map(Plan::first));
        if let Some(plan) = &plan {
            plan.last(&mut cmd);
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
            log,
            _cwd: cwd,
        })
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

    /// Where every thread of every process of the program sits right now.
    pub fn whereabouts(&self) -> String {
        procfs::describe(&self.tree())
    }

    /// CPU ticks (1/100 s) of the program itself (all its threads).
    pub fn cpu_ticks(&self) -> u64 {
        procfs::cpu_ticks(self.pid).unwrap_or(0)
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
            (exited && !p.out.open() && !p.err.open()).then(|| Err(p.ended_early(what)))
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
            if let (true, Some(fd)) = (out_open, &self.out.pipe) {
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

    fn output_so_far(&self) -> String {
        let pending = self.out.data.pending();
        if pending.is_empty() {
            "nothing (more) on stdout".to_string()
        } else {
            format!("only {} on stdout", show(pending))
        }
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

    /// Describe an exit that the check did not want.
    pub fn classify(&self, exit: Exit, what: &str) -> Failure {
        let name = &self.name;
        if let Some((loc, msg)) = self.panic_message() {
            let at = crate::results::Location::parse(&loc);
            if msg.contains("not yet implemented") || msg.contains("not implemented") {
                return Failure::new(Kind::NotImplemented, format!("{name} reached a `todo!()` at {loc}"), what)
                    .with_hint("fill in that `todo!()` — this check cannot pass before it")
                    .with_location(at);
            }
            return Failure::new(Kind::Panicked, format!("{name} panicked at {loc}: {msg}"), what)
                .with_hint(
                    "a panic is never an answer: handle the error (EPIPE, EINTR, bad input) and exit with the status the contract names",
                )
                .with_location(at);
        }
        match exit {
            Exit::Signal(sig) => {
                let sname = super::failure::signal_name(sig);
                let hint = match sig {
                    libc::SIGPIPE => "SIGPIPE: it wrote to a pipe or socket whose reader had gone",
                    libc::SIGABRT => "SIGABRT: often a panic or allocation inside a signal handler, or a double panic",
                    libc::SIGSEGV => "SIGSEGV: invalid memory access (unsafe code, a bad pointer into shared memory?)",
                    libc::SIGXCPU => "SIGXCPU: it used up its CPU-time limit — a busy loop?",
                    _ => "a signal it did not handle ended it",
                };
                Failure::new(Kind::Crashed, format!("{name} was killed by {sname}{}", self.stderr_tail()), what)
                    .with_hint(hint)
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

    fn timed_out(&mut self, what: &str, waited: Duration) -> Failure {
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
            .with_hint("a loop that never ends, or that does not stop at EOF / on an error?"),
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
    /// exited on its own but its descendants still ran, record them; if it
    /// signalled the grader, record that.
    fn drop(&mut self) {
        if self.opts.forbid_leftovers && self.exit().is_some() {
            let left = self.strays();
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
        }
        let mut incidents = Vec::new();
        match &self.ns {
            // Ask the stand-in parent what it was sent, then end the
            // namespace: killing init kills every process in it, and init
            // is gone (below) only once they all are.
            Some(ns) => {
                incidents = ns.incidents(&self.name);
                ns.kill();
            }
            None => self.leash.kill_all(self.pid, Deadline::after(Duration::from_secs(10))),
        }
        // Before the leader is reaped: a signal it sent is still its own.
        incidents.extend(self.watch.take());
        self.log.borrow_mut().incidents.extend(incidents);
        let _ = self.child.wait();
        // Dropping `child` then gives its pid up and reaps the orphans.
    }
}

/// Bytes waiting in a pipe (FIONREAD); 0 when unknown.
fn pipe_fill(fd: &OwnedFd) -> usize {
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
