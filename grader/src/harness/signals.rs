//! Signals sent to the grader, read in one place.
//!
//! A careless program can signal the grader: `kill(-1, SIGUSR1)` with the
//! "child" pid -1 of a failed `fork` (a classic C bug), a child that
//! signals `getppid()` after its parent exited (the grader is the
//! subreaper, so it is that parent), a program that sends SIGTERM to its
//! parent. At its default disposition the signal would end the grading
//! without a report. So the grader blocks every signal in every thread
//! ([`block_all`], first thing in `main`; programs still start with every
//! signal at its default and none blocked, see [`super::spawn`]) and one
//! thread reads them from a signalfd ([`listen`]), which names the sender
//! of each (`ssi_pid`):
//!
//! - **a program under grading** — the leader of a running
//!   [`Program`](super::Program), or a process in its session or process
//!   group, below it, or carrying its token: an incident of that program,
//!   which fails its check ([`Watch::take`]); the grading goes on;
//! - **another process the grader started** (a descendant of the grader, or
//!   an orphan it reaped, see [`note_reaped`]): ignored, with a note on
//!   stderr;
//! - **anyone else** — the user's Ctrl-C (sent by the kernel), `kill`, a CI
//!   runner cancelling the job: handed to the caller of [`listen`], which
//!   does what the signal does to any process, after cleaning up (see
//!   [`crate::interrupt`]).
//!
//! Signals whose default action is to do nothing (SIGCHLD, SIGCONT,
//! SIGURG, SIGWINCH) are nobody's incident; orphans are found by polling
//! `/proc` (see [`super::reaper`]), not by SIGCHLD. SIGSTOP and SIGKILL
//! cannot be blocked: only a PID namespace keeps programs from sending them
//! (see [`super::pidns`], where programs cannot reach the grader at all and
//! their stand-in parent tells what they send it instead).
//!
//! A sender is looked up in `/proc` when its signal is read, so it must
//! still exist then: a program's leader is reaped only after [`flush`] has
//! seen every signal sent so far, and the orphans the grader reaps are
//! remembered. Left open without a PID namespace: a grandchild of a program
//! that signals the grader and is reaped by its own parent before the
//! signal thread looks is taken for a stranger.

use std::cell::Cell;
use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{getpid, Pid};

use super::failure::signal_name;
use super::procfs;

/// Block every signal in the calling thread. Call first in `main`, before
/// any thread starts: threads inherit the mask, so no thread of the grader
/// ever runs a signal's default action.
pub fn block_all() {
    let _ = SigSet::all().thread_block();
}

/// What a signal does to a process that left its disposition alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ignore,
    Stop,
    /// Terminate (some also dump core).
    End,
}

/// The default action of signal `sig`.
pub fn default_action(sig: i32) -> Action {
    match sig {
        libc::SIGCHLD | libc::SIGCONT | libc::SIGURG | libc::SIGWINCH => Action::Ignore,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => Action::Stop,
        _ => Action::End,
    }
}

/// The line a check fails with: `sigecho (pid 42) sent SIGTERM to the
/// grader`.
pub fn sent_to_grader(who: &str, sig: i32) -> String {
    format!("{who} sent {} to the grader", signal_name(sig))
}

// ----- programs under grading ------------------------------------------------

/// A running program, as far as attributing signals to it goes.
struct Entry {
    id: u64,
    /// Set once the program runs (before: its token names it).
    leader: Pid,
    name: String,
    /// `IPC_LAB_TOKEN=…` in its environment and its descendants'.
    token: String,
    /// Signals it sent: who (as a phrase), signal; each once.
    sent: Vec<(String, i32)>,
}

fn programs() -> MutexGuard<'static, Vec<Entry>> {
    static PROGRAMS: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    PROGRAMS.lock().unwrap_or_else(|e| e.into_inner())
}

/// While alive, signals from the program it names (and its processes) are
/// that program's incidents. Made when a program starts, dropped after it
/// and everything it started are dead.
pub struct Watch {
    id: u64,
}

impl Watch {
    /// Watch the program `name` whose processes carry the environment entry
    /// `token`. Made before it starts: it may signal at once.
    pub fn new(name: &str, token: String) -> Watch {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let id = SEQ.fetch_add(1, Ordering::Relaxed);
        let leader = Pid::from_raw(0);
        programs().push(Entry { id, leader, name: name.to_string(), token, sent: Vec::new() });
        Watch { id }
    }

    /// The program runs as `leader`.
    pub fn started(&self, leader: Pid) {
        if let Some(e) = programs().iter_mut().find(|e| e.id == self.id) {
            e.leader = leader;
        }
    }

    /// What the program sent the grader, one line per sender and signal,
    /// once every signal sent so far has been read ([`flush`]).
    pub fn take(&self) -> Vec<String> {
        flush();
        let mut all = programs();
        let Some(e) = all.iter_mut().find(|e| e.id == self.id) else { return Vec::new() };
        e.sent.drain(..).map(|(who, sig)| sent_to_grader(&who, sig)).collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        programs().retain(|e| e.id != self.id);
    }
}

/// An orphan the grader reaped.
struct Reaped {
    pid: i32,
    pgrp: i32,
    sid: i32,
    comm: String,
}

/// Orphans the grader reaped lately: a signal such an orphan sent just
/// before it exited is read after it is gone from `/proc`.
fn reaped() -> MutexGuard<'static, VecDeque<Reaped>> {
    static REAPED: Mutex<VecDeque<Reaped>> = Mutex::new(VecDeque::new());
    REAPED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remember the zombie `pid`, about to be reaped by the grader.
pub fn note_reaped(pid: Pid) {
    const KEEP: usize = 512;
    if let Some((_, pgrp, sid)) = procfs::lineage(pid) {
        let comm = procfs::comm(pid);
        let mut r = reaped();
        if r.len() == KEEP {
            r.pop_front();
        }
        r.push_back(Reaped { pid: pid.as_raw(), pgrp, sid, comm });
    }
}

/// How a process of the program `name` is named in a failure: the program
/// itself by its name, another by its command name if known.
pub fn who(name: &str, seen: Pid, leader: bool, comm: Option<&str>) -> String {
    match comm {
        _ if leader => format!("{name} (pid {seen})"),
        Some(comm) => format!("{comm} (pid {seen}), a process of {name},"),
        None => format!("a process of {name} (pid {seen})"),
    }
}

/// Who sent a signal.
enum Sender {
    /// Entry `index` of [`programs`]; how to name the sender.
    Program(usize, String),
    /// A process the grader started, but no running program's.
    Ours,
    Stranger,
}

fn attribute(all: &[Entry], pid: Pid) -> Sender {
    let me = getpid().as_raw();
    let by_group = |pgrp: i32, sid: i32| {
        all.iter().position(|e| e.leader.as_raw() > 0 && (e.leader.as_raw() == sid || e.leader.as_raw() == pgrp))
    };
    // Read first: the sender may be gone (and reaped) by the time it is
    // named.
    let seen = procfs::ns_pid(pid).unwrap_or(pid);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|c| c.trim_end().to_string());
    let gone = reaped().iter().find(|r| r.pid == pid.as_raw()).map(|r| (r.pgrp, r.sid, r.comm.clone()));
    let comm = comm.or_else(|| gone.as_ref().map(|g| g.2.clone()));
    let name = |i: usize| {
        let e: &Entry = &all[i];
        // Before the leader is known, only the program itself runs.
        who(&e.name, seen, e.leader == pid || e.leader.as_raw() == 0, comm.as_deref())
    };
    let mut at = pid;
    // Up the tree: the sender or an ancestor is a leader, shares a
    // leader's session or group, or carries a token; or it is (below) a
    // child of the grader that no program claims.
    for _ in 0..64 {
        if let Some(i) = all.iter().position(|e| e.leader == at) {
            return Sender::Program(i, name(i));
        }
        let Some((ppid, pgrp, sid)) = procfs::lineage(at) else { break };
        if let Some(i) = by_group(pgrp, sid).or_else(|| all.iter().position(|e| procfs::environ_has(at, &e.token))) {
            return Sender::Program(i, name(i));
        }
        if ppid == me {
            return Sender::Ours;
        }
        if ppid <= 1 {
            return Sender::Stranger;
        }
        at = Pid::from_raw(ppid);
    }
    // Gone: an orphan the grader reaped after it sent the signal?
    match gone {
        Some((pgrp, sid, _)) => match by_group(pgrp, sid) {
            Some(i) => Sender::Program(i, name(i)),
            None => Sender::Ours,
        },
        None => Sender::Stranger,
    }
}

// ----- the signal thread -------------------------------------------------------

/// Held while signals are read and attributed: [`flush`] holds it to know
/// that none is half-way.
struct Receiver {
    lock: Mutex<()>,
    read: Condvar,
}

static RECEIVER: OnceLock<Receiver> = OnceLock::new();

thread_local! {
    static RECEIVING: Cell<bool> = const { Cell::new(false) };
}

fn hold(rx: &Receiver) -> MutexGuard<'_, ()> {
    rx.lock.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start the thread that reads every signal sent to the grader. Signals
/// from strangers (see the module documentation) go to `strangers`, called
/// on that thread with the signal number. Call once, after [`block_all`].
pub fn listen(strangers: impl Fn(i32) + Send + 'static) {
    let fd = match SignalFd::with_flags(&SigSet::all(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("grader: warning: cannot read signals ({e}); a signal to the grader stays pending");
            return;
        }
    };
    let rx = RECEIVER.get_or_init(|| Receiver { lock: Mutex::new(()), read: Condvar::new() });
    let started = std::thread::Builder::new().name("signals".into()).spawn(move || {
        RECEIVING.set(true);
        loop {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::NONE);
            let from_strangers = {
                let _reading = hold(rx);
                let got = receive(&fd);
                rx.read.notify_all();
                got
            };
            for sig in from_strangers {
                strangers(sig);
            }
        }
    });
    if let Err(e) = started {
        eprintln!("grader: warning: cannot start the signal thread ({e}); a signal to the grader stays pending");
    }
}

/// Read every pending signal; record the programs' as their incidents and
/// return the strangers'.
fn receive(fd: &SignalFd) -> Vec<i32> {
    let mut strangers = Vec::new();
    while let Ok(Some(info)) = fd.read_signal() {
        let sig = info.ssi_signo as i32;
        if default_action(sig) == Action::Ignore {
            continue;
        }
        // SI_USER, SI_QUEUE, SI_TKILL … are <= 0: sent by a process. The
        // kernel's own (a terminal's Ctrl-C, a hangup) come from outside.
        let pid = info.ssi_pid as i32;
        if info.ssi_code > 0 || pid <= 0 {
            strangers.push(sig);
            continue;
        }
        let mut all = programs();
        match attribute(&all, Pid::from_raw(pid)) {
            Sender::Program(i, who) => {
                let sent = &mut all[i].sent;
                if !sent.iter().any(|(w, s)| *w == who && *s == sig) {
                    sent.push((who, sig));
                }
            }
            Sender::Ours => eprintln!(
                "grader: ignored {} from {} (pid {pid}), a process the grader started",
                signal_name(sig),
                procfs::comm(Pid::from_raw(pid))
            ),
            Sender::Stranger => strangers.push(sig),
        }
    }
    strangers
}

/// Return once every signal sent to the grader before the call has been
/// read and attributed (or after 2 s, if the signal thread is stuck). Free
/// when none is pending.
pub fn flush() {
    if RECEIVING.get() {
        return;
    }
    let Some(rx) = RECEIVER.get() else { return };
    let until = Instant::now() + Duration::from_secs(2);
    let mut reading = hold(rx);
    while pending() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        reading = match rx.read.wait_timeout(reading, left) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
    }
}

/// Whether a signal that is somebody's incident is queued for the process
/// (`ShdPnd` in `/proc/self/status`: process-wide, not per thread — a
/// thread's own SIGPIPE after a write to a closed pipe stays pending in
/// that thread and is nobody's).
fn pending() -> bool {
    let mask = procfs::status(getpid()).map_or(0, |s| s.shd_pnd);
    (1..=64).any(|sig| procfs::Status::has(mask, sig) && default_action(sig) != Action::Ignore)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_actions() {
        assert_eq!(default_action(libc::SIGCHLD), Action::Ignore);
        assert_eq!(default_action(libc::SIGTSTP), Action::Stop);
        assert_eq!(default_action(libc::SIGTERM), Action::End);
        assert_eq!(default_action(libc::SIGRTMIN() + 3), Action::End);
    }

    #[test]
    fn incident_lines() {
        let program = who("sigecho", Pid::from_raw(42), true, Some("hostile"));
        assert_eq!(sent_to_grader(&program, libc::SIGTERM), "sigecho (pid 42) sent SIGTERM to the grader");
        let child = who("sigecho", Pid::from_raw(7), false, Some("worker"));
        assert_eq!(
            sent_to_grader(&child, libc::SIGUSR1),
            "worker (pid 7), a process of sigecho, sent SIGUSR1 to the grader"
        );
        assert_eq!(who("sigecho", Pid::from_raw(7), false, None), "a process of sigecho (pid 7)");
    }

    #[test]
    fn the_grader_itself_and_init_are_strangers_to_the_programs() {
        // Nothing registered: the test process's parent chain leads to init.
        assert!(matches!(attribute(&[], Pid::from_raw(1)), Sender::Stranger));
    }
}
