//! The grader as the parent of everything it starts: which children belong
//! to whom, and who may reap them.
//!
//! The grader is a child subreaper ([`become_subreaper`]): orphans of student
//! programs are re-parented to it instead of init, and it must reap them, or
//! they stay zombies. But a zombie may also be a program (or a `cargo build`)
//! whose owner has yet to collect its exit status, or a process a check wants
//! to look at in `/proc` before it goes. So:
//!
//! - every process the grader starts itself is started with
//!   [`spawn_tracked`], which registers its pid until the returned
//!   [`Tracked`] is dropped: only its owner reaps it;
//! - a [`Hold`] keeps one more pid (a zombie under study) from being reaped;
//! - [`reap_orphans`] reaps every other zombie child.
//!
//! Spawning holds a read lock until the new pid is registered, and orphan
//! reaping a write lock: a child that exits at once is never mistaken for an
//! orphan. Once the grader is stopping ([`stop_spawning`]) nothing starts any
//! more.

use std::collections::HashSet;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpid, Pid};

use super::deadline::{self, Deadline};
use super::procfs;

/// Pids only their owner may reap: those of live [`Tracked`] children.
fn tracked() -> &'static Mutex<HashSet<i32>> {
    static TRACKED: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    TRACKED.get_or_init(Default::default)
}

/// Zombies a check wants to look at before they are reaped (e.g. to prove
/// that a parent exited without reaping its child).
fn held() -> &'static Mutex<HashSet<i32>> {
    static HELD: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    HELD.get_or_init(Default::default)
}

fn set(pids: &'static Mutex<HashSet<i32>>) -> std::sync::MutexGuard<'static, HashSet<i32>> {
    pids.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held (shared) while a process is spawned and until its pid is tracked,
/// and (exclusive) while orphans are reaped: a fresh child that exits at
/// once must not be mistaken for an orphan and reaped before its owner
/// tracked it.
static SPAWN_LOCK: RwLock<()> = RwLock::new(());

/// Set once the grader is stopping: from then on no process may start, or a
/// check still running (or a new `cargo build`) would start one after the
/// last sweep and leave it behind.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Why [`spawn_tracked`] started nothing.
#[derive(Debug)]
pub enum SpawnError {
    /// The grader is stopping (see [`stop_spawning`]).
    Stopping,
    /// `Command::spawn` failed (no such file, not executable, …).
    Io(std::io::Error),
}

/// A child of the grader that only this value's owner reaps. It derefs to
/// the [`Child`]. Dropping it gives the pid up to orphan reaping (and reaps
/// it if it is a zombie by then).
#[derive(Debug)]
pub struct Tracked {
    child: Child,
    pid: Pid,
}

/// Start `cmd` and track the new process, unless the grader is stopping.
pub fn spawn_tracked(cmd: &mut Command) -> Result<Tracked, SpawnError> {
    let spawning = SPAWN_LOCK.read().unwrap_or_else(|e| e.into_inner());
    if STOPPING.load(Ordering::SeqCst) {
        return Err(SpawnError::Stopping);
    }
    let child = cmd.spawn().map_err(SpawnError::Io)?;
    let pid = Pid::from_raw(child.id() as i32);
    set(tracked()).insert(pid.as_raw());
    drop(spawning);
    Ok(Tracked { child, pid })
}

/// Run `f`, which writes an executable, while no process is forked: a
/// child forked meanwhile would inherit the descriptor it is written
/// through and keep it until its `exec` (in a PID namespace, until the
/// stand-in processes close it), and until then running the file fails
/// with ETXTBSY ("Text file busy").
pub fn without_forks<T>(f: impl FnOnce() -> T) -> T {
    let _no_spawns = SPAWN_LOCK.write().unwrap_or_else(|e| e.into_inner());
    f()
}

/// Run `f`, which forks and waits for a short-lived child of its own,
/// without orphan reaping taking that child first.
pub fn owning_children<T>(f: impl FnOnce() -> T) -> T {
    let _no_reaping = SPAWN_LOCK.read().unwrap_or_else(|e| e.into_inner());
    f()
}

impl Tracked {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Wait for the child to exit until `deadline`; `None` if it still runs
    /// then. Waits on a pidfd: the wake-up is the exit itself.
    pub fn wait_until(&mut self, deadline: Deadline) -> Option<ExitStatus> {
        if let Some(fd) = pidfd_open(self.pid) {
            deadline::wait(&mut [PollFd::new(fd.as_fd(), PollFlags::POLLIN)], deadline);
        }
        self.child.try_wait().ok().flatten()
    }
}

impl std::ops::Deref for Tracked {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for Tracked {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        set(tracked()).remove(&self.pid.as_raw());
        reap_orphans();
    }
}

/// While alive, keeps [`reap_orphans`] away from one pid, so that a zombie
/// re-parented to the grader stays observable in `/proc`.
pub struct Hold(Pid);

impl Hold {
    pub fn new(pid: Pid) -> Hold {
        set(held()).insert(pid.as_raw());
        Hold(pid)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        set(held()).remove(&self.0.as_raw());
        reap_orphans();
    }
}

/// Make the grader the reaper of every orphan its programs leave. Call once
/// at start-up, before any program runs.
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only sets a flag on this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        eprintln!("grader: warning: cannot become child subreaper; escaped daemons may survive");
    }
}

/// Refuse every later [`spawn_tracked`], hand every tracked child to `end`
/// (which kills them), then give them up to orphan reaping. Every start in
/// progress has tracked its child before `end` runs: these are all there
/// will be. For the interrupt guard.
pub fn stop_spawning(end: impl FnOnce(&[Pid])) {
    let _no_spawns = SPAWN_LOCK.write().unwrap_or_else(|e| e.into_inner());
    STOPPING.store(true, Ordering::SeqCst);
    let mut owned = set(tracked());
    let pids: Vec<Pid> = owned.iter().copied().map(Pid::from_raw).collect();
    end(&pids);
    owned.clear();
}

/// Whether the grader is stopping (see [`stop_spawning`]): what happens to
/// its programs from now on is its own doing.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Reap every zombie child of the grader that nobody tracks or holds:
/// orphans of student programs re-parented to us as subreaper.
pub fn reap_orphans() {
    let _no_spawns = SPAWN_LOCK.write().unwrap_or_else(|e| e.into_inner());
    let owned = set(tracked()).clone();
    let held = set(held()).clone();
    for kid in procfs::children(getpid()) {
        if owned.contains(&kid.as_raw()) || held.contains(&kid.as_raw()) {
            continue;
        }
        if matches!(procfs::state(kid), Some('Z') | Some('X')) {
            super::signals::note_reaped(kid); // a signal it sent may still be unread
            let _ = waitpid(kid, Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Kill what `find` finds, again and again, until it finds nothing or
/// `deadline` passes, waiting on their exits in between and reaping the
/// orphans each round. `find` runs again after every round: processes may
/// fork while they are being killed. True when it found nothing in the end.
pub fn kill_until_gone(deadline: Deadline, mut find: impl FnMut() -> Vec<Pid>) -> bool {
    loop {
        let found = find();
        for &p in &found {
            let _ = kill(p, Signal::SIGKILL);
        }
        reap_orphans();
        if found.is_empty() || deadline.passed() {
            return found.is_empty();
        }
        wait_any_exit(&found, deadline);
    }
}

/// Wait until `find` finds nothing or `deadline` passes, waking on the
/// exits of what it found (pidfds), not on a clock; returns what it found
/// last, empty once all of it has gone. `find` runs again after every exit:
/// for a grace period, in which processes may end on their own. Nothing
/// found at first: no wait at all.
pub fn wait_until_gone(deadline: Deadline, mut find: impl FnMut() -> Vec<Pid>) -> Vec<Pid> {
    loop {
        let found = find();
        if found.is_empty() || deadline.passed() {
            return found;
        }
        wait_any_exit(&found, deadline);
    }
}

/// Kill and reap every child of the grader that nobody tracks, with all its
/// descendants: the last sweep before the grader exits.
pub fn kill_strays() {
    kill_until_gone(Deadline::after(Duration::from_secs(10)), || {
        let owned = set(tracked()).clone();
        procfs::children(getpid())
            .into_iter()
            .filter(|k| !owned.contains(&k.as_raw()))
            .flat_map(procfs::tree)
            .filter(|&p| procfs::alive(p))
            .collect()
    });
}

/// Open a pidfd for `pid` (`None` when it is already gone).
pub fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; nix 0.32 has no wrapper for it.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Block until one of `pids` exits, `deadline` passes or 100 ms have gone
/// by (a process may have escaped the pidfds: there are at most 512).
/// Waits on pidfds, so it wakes on the event itself.
fn wait_any_exit(pids: &[Pid], deadline: Deadline) {
    let fds: Vec<OwnedFd> = pids.iter().take(512).filter_map(|&p| pidfd_open(p)).collect();
    if fds.is_empty() {
        return;
    }
    let mut pollfds: Vec<PollFd> = fds.iter().map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN)).collect();
    deadline::wait(&mut pollfds, deadline.sooner(Duration::from_millis(100)));
}

/// Peek at a child's exit without reaping it: the leader stays a zombie, so
/// its pid and process group id stay ours until cleanup.
pub fn peek_exit(pidfd: &OwnedFd) -> Option<WaitStatus> {
    use nix::sys::wait::{waitid, Id};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
    match waitid(Id::PIDFd(pidfd.as_fd()), flags) {
        Ok(WaitStatus::StillAlive) | Err(_) => None,
        Ok(status) => Some(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    fn alive(pid: Pid) -> Vec<Pid> {
        if procfs::alive(pid) {
            vec![pid]
        } else {
            Vec::new()
        }
    }

    #[test]
    fn nothing_to_wait_for_costs_nothing() {
        let started = Instant::now();
        assert!(wait_until_gone(Deadline::after(Duration::from_secs(10)), Vec::new).is_empty());
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn the_wait_ends_at_the_exit_not_the_deadline() {
        let mut child = Command::new("sleep").arg("0.1").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let started = Instant::now();
        let left = wait_until_gone(Deadline::after(Duration::from_secs(20)), || alive(pid));
        assert!(left.is_empty());
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        child.wait().unwrap();
    }

    #[test]
    fn what_stays_is_returned_at_the_deadline() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let started = Instant::now();
        let left = wait_until_gone(Deadline::after(Duration::from_millis(150)), || alive(pid));
        assert_eq!(left, vec![pid]);
        assert!(started.elapsed() >= Duration::from_millis(150));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
