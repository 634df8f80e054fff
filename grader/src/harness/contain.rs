//! Keeping every process a student program creates on a leash, and ending
//! all of them when a check is over.
//!
//! Three nets, from finest to coarsest:
//!
//! 1. **A cgroup** (cgroup v1 `pids` hierarchy, where writable): the child
//!    joins it before `exec`, so every descendant — also one that called
//!    `setsid` and double-forked — is listed in `cgroup.procs`, and
//!    `pids.max` caps a fork storm.
//! 2. **The process group**: every program is a session leader
//!    (`setsid` before exec); `kill(-pgid)` reaches everything that did not
//!    leave the group. It is sent while the leader is still unreaped, so the
//!    group id cannot have been reused.
//! 3. **The subreaper and a token**: the grader is a child subreaper
//!    (`PR_SET_CHILD_SUBREAPER`), so orphans are re-parented to it instead of
//!    init, and every program gets `IPC_LAB_TOKEN=<unique>` in its
//!    environment, which descendants inherit. Orphans carrying a check's
//!    token are that check's leftovers.
//!
//! Cleanup loops until none of the nets holds a living process, waiting on
//! pidfds of the processes it killed (an event, not a sleep), within a
//! deadline.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpid, Pid};

use super::procfs;

/// Environment variable that marks every process a program creates.
pub const TOKEN_VAR: &str = "IPC_LAB_TOKEN";

/// Most processes one program may have at once (where a cgroup enforces it).
pub const PIDS_MAX: u32 = 400;

/// Leaders owned by a live [`super::Program`]: only their owner may reap
/// them. Every other child of the grader is an orphan anyone may reap.
fn tracked() -> &'static Mutex<HashSet<i32>> {
    static TRACKED: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    TRACKED.get_or_init(Default::default)
}

/// Held (shared) while a program is spawned and until its pid is tracked,
/// and (exclusive) while orphans are reaped: a fresh child that exits at
/// once must not be mistaken for an orphan and reaped before its owner
/// tracked it.
fn spawn_lock() -> &'static std::sync::RwLock<()> {
    static LOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());
    &LOCK
}

/// Set by the interrupt guard before it kills everything: from then on no
/// process may start, or a check still running (or a new `cargo build`)
/// would start one after the sweep and leave it behind.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Permission to start a process: the shared [`spawn_lock`], held until the
/// new process is tracked; `None` once the grader is stopping.
pub(crate) fn may_spawn() -> Option<std::sync::RwLockReadGuard<'static, ()>> {
    let guard = spawn_lock().read().unwrap_or_else(|e| e.into_inner());
    (!STOPPING.load(Ordering::SeqCst)).then_some(guard)
}

pub(crate) fn track(pid: Pid) {
    tracked().lock().unwrap_or_else(|e| e.into_inner()).insert(pid.as_raw());
}

/// Zombies a check wants to look at before they are reaped (e.g. to prove
/// that a parent exited without reaping its child).
fn held() -> &'static Mutex<HashSet<i32>> {
    static HELD: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    HELD.get_or_init(Default::default)
}

/// While alive, keeps [`reap_orphans`] away from one pid, so that a zombie
/// re-parented to the grader stays observable in `/proc`.
pub struct Hold(Pid);

impl Hold {
    pub fn new(pid: Pid) -> Hold {
        held().lock().unwrap_or_else(|e| e.into_inner()).insert(pid.as_raw());
        Hold(pid)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        held().lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0.as_raw());
        reap_orphans();
    }
}

pub(crate) fn untrack(pid: Pid) {
    tracked().lock().unwrap_or_else(|e| e.into_inner()).remove(&pid.as_raw());
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

/// The leash for one program: its token and, where possible, its cgroup.
#[derive(Debug)]
pub struct Leash {
    pub token: String,
    cgroup: Option<PathBuf>,
    /// `cgroup.procs` of [`Self::cgroup`] as a C string, for `pre_exec`.
    pub(crate) join_path: Option<CString>,
}

impl Leash {
    pub(crate) fn new() -> Leash {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let token = format!("{}-{n}", getpid());
        let cgroup = make_cgroup(&token);
        let join_path = cgroup
            .as_ref()
            .and_then(|c| CString::new(c.join("cgroup.procs").into_os_string().into_encoded_bytes()).ok());
        Leash { token, cgroup, join_path }
    }

    pub fn env_entry(&self) -> String {
        format!("{TOKEN_VAR}={}", self.token)
    }

    /// Every process on this leash that still runs (not zombies), except
    /// `leader`. Used both to detect leftovers and to kill them.
    pub fn members(&self, leader: Pid) -> Vec<Pid> {
        let mut set: Vec<Pid> = Vec::new();
        if let Some(cg) = &self.cgroup {
            if let Ok(text) = fs::read_to_string(cg.join("cgroup.procs")) {
                set.extend(text.split_whitespace().filter_map(|s| s.parse().ok()).map(Pid::from_raw));
            }
        }
        set.extend(procfs::tree(leader));
        // Orphans re-parented to the grader that carry our token, with
        // everything below them.
        let entry = self.env_entry();
        for kid in procfs::children(getpid()) {
            if procfs::environ_has(kid, &entry) {
                set.extend(procfs::tree(kid));
            }
        }
        set.sort();
        set.dedup();
        set.retain(|&p| p != leader && !matches!(procfs::state(p), None | Some('Z') | Some('X')));
        set
    }

    /// Kill everything on the leash and wait until it is gone, reaping the
    /// orphans that came to the grader. The leader itself is killed but not
    /// reaped: its owner does that, after this returns.
    pub fn kill_all(&self, leader: Pid, deadline: Duration) {
        let until = Instant::now() + deadline;
        loop {
            // While the leader is unreaped its pid, and so its process group
            // id, cannot be reused: killpg hits only the program's group.
            let _ = killpg(leader, Signal::SIGKILL);
            let _ = kill(leader, Signal::SIGKILL);
            let members = self.members(leader);
            for &m in &members {
                let _ = kill(m, Signal::SIGKILL);
            }
            reap_orphans();
            if members.is_empty() || Instant::now() >= until {
                break;
            }
            wait_any_exit(&members, until);
        }
        reap_orphans();
    }
}

impl Drop for Leash {
    fn drop(&mut self) {
        if let Some(cg) = &self.cgroup {
            // Empty by now; a cgroup with a zombie still in it cannot be
            // removed, so try a few times as orphans get reaped.
            for _ in 0..3 {
                if fs::remove_dir(cg).is_ok() {
                    break;
                }
                reap_orphans();
            }
        }
    }
}

fn cgroup_root() -> Option<&'static PathBuf> {
    static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    ROOT.get_or_init(|| {
        if std::env::var_os("GRADER_NO_CGROUP").is_some() {
            return None;
        }
        let base = PathBuf::from("/sys/fs/cgroup/pids");
        remove_stale_cgroups(&base);
        let root = base.join(format!("ipc-lab-{}", getpid()));
        fs::create_dir(&root).ok()?;
        Some(root)
    })
    .as_ref()
}

fn make_cgroup(token: &str) -> Option<PathBuf> {
    let dir = cgroup_root()?.join(token);
    fs::create_dir(&dir).ok()?;
    let _ = fs::write(dir.join("pids.max"), PIDS_MAX.to_string());
    Some(dir)
}

/// Remove the grader's cgroup folders at exit (every program is gone by
/// then; a folder that still holds a process stays and is reported).
pub fn remove_cgroup_root() {
    if let Some(root) = cgroup_root() {
        remove_cgroup_tree(root);
    }
}

fn remove_cgroup_tree(dir: &std::path::Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten().filter(|e| e.path().is_dir()) {
            let _ = fs::remove_dir(e.path());
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Folders of graders that died without cleaning up (killed with SIGKILL):
/// their processes were killed with them or by us, so only empty folders
/// remain to remove.
fn remove_stale_cgroups(base: &std::path::Path) {
    let Ok(rd) = fs::read_dir(base) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("ipc-lab-").and_then(|p| p.parse::<i32>().ok()) else { continue };
        if kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH) {
            remove_cgroup_tree(&e.path());
        }
    }
}

/// Reap every zombie child of the grader that no [`super::Program`] owns:
/// orphans of student programs re-parented to us as subreaper.
pub fn reap_orphans() {
    let _no_spawns = spawn_lock().write().unwrap_or_else(|e| e.into_inner());
    let owned = tracked().lock().unwrap_or_else(|e| e.into_inner()).clone();
    let held = held().lock().unwrap_or_else(|e| e.into_inner()).clone();
    for kid in procfs::children(getpid()) {
        if owned.contains(&kid.as_raw()) || held.contains(&kid.as_raw()) {
            continue;
        }
        if matches!(procfs::state(kid), Some('Z') | Some('X')) {
            let _ = waitpid(kid, Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Kill and reap every child of the grader that no Program owns: the last
/// sweep before the grader exits.
pub fn kill_strays() {
    let owned = tracked().lock().unwrap_or_else(|e| e.into_inner()).clone();
    for _ in 0..50 {
        let strays: Vec<Pid> = procfs::children(getpid())
            .into_iter()
            .filter(|k| !owned.contains(&k.as_raw()))
            .flat_map(procfs::tree)
            .collect();
        if strays.is_empty() {
            break;
        }
        for &s in &strays {
            let _ = kill(s, Signal::SIGKILL);
        }
        wait_any_exit(&strays, Instant::now() + Duration::from_millis(200));
        reap_orphans();
    }
    remove_cgroup_root();
}

/// Wait for `child` to exit until `until`; `None` if it is still running
/// then. Waits on a pidfd: the wake-up is the exit itself.
pub fn wait_child_until(child: &mut std::process::Child, until: Instant) -> Option<std::process::ExitStatus> {
    let pid = Pid::from_raw(child.id() as i32);
    if let Some(fd) = pidfd_open(pid) {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            let ms = left.as_millis().clamp(1, 60_000) as u16;
            if matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0) {
                break;
            }
        }
    }
    child.try_wait().ok().flatten()
}

/// Kill every process whose token starts with `prefix` (the programs of one
/// grader process: tokens are `<grader pid>-<n>`), until none is left or
/// `until` passes. For `grader gradebook`, after a grader it ran was killed
/// before it could clean up after itself.
pub fn kill_marked(prefix: &str, until: Instant) -> usize {
    let wanted = format!("{TOKEN_VAR}={prefix}");
    let mut killed = 0;
    loop {
        let marked: Vec<Pid> = procfs::all_pids()
            .into_iter()
            .filter(|&p| !matches!(procfs::state(p), None | Some('Z') | Some('X')))
            .filter(|&p| procfs::environ_starts(p, &wanted))
            .collect();
        for &p in &marked {
            let _ = kill(p, Signal::SIGKILL);
        }
        killed += marked.len();
        reap_orphans();
        if marked.is_empty() || Instant::now() >= until {
            return killed;
        }
        wait_any_exit(&marked, until);
    }
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

/// Block until one of `pids` exits or `until` passes. Waits on pidfds, so it
/// wakes on the event itself.
fn wait_any_exit(pids: &[Pid], until: Instant) {
    let fds: Vec<OwnedFd> = pids.iter().take(512).filter_map(|&p| pidfd_open(p)).collect();
    if fds.is_empty() {
        return;
    }
    let mut pollfds: Vec<PollFd> = fds.iter().map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN)).collect();
    let left = until.saturating_duration_since(Instant::now()).min(Duration::from_millis(100));
    let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO);
    match poll(&mut pollfds, timeout) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(_) => {}
    }
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

/// Set by `--watch`, where Ctrl-C is how a student stops the grader.
static INTERRUPT_QUITS: AtomicBool = AtomicBool::new(false);

/// From now on SIGINT is a normal quit: the same cleanup as for any
/// interrupt, then `grader: watch stopped` and exit 0.
pub fn interrupt_quits_watch() {
    INTERRUPT_QUITS.store(true, Ordering::SeqCst);
}

/// Ctrl-C, SIGTERM or SIGHUP to the grader must not leave student programs
/// running (they are in sessions of their own, so the terminal's SIGINT does
/// not reach them). Block those signals in every grader thread and let one
/// thread wait for them: it kills every program and exits 128+N (SIGINT in
/// watch mode: 0, see [`interrupt_quits_watch`]).
pub fn guard_interrupts() {
    use nix::sys::signal::SigSet;
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        let Ok(sig) = set.wait() else { return };
        {
            // Every start in progress is tracked once we hold this; every
            // later one is refused: the leaders below are all there will be.
            let _no_spawns = spawn_lock().write().unwrap_or_else(|e| e.into_inner());
            STOPPING.store(true, Ordering::SeqCst);
        }
        let leaders = tracked().lock().unwrap_or_else(|e| e.into_inner()).clone();
        for &pid in &leaders {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(root) = cgroup_root() {
            if let Ok(dir) = fs::read_dir(root) {
                for cg in dir.flatten() {
                    let procs = fs::read_to_string(cg.path().join("cgroup.procs")).unwrap_or_default();
                    for p in procs.split_whitespace().filter_map(|s| s.parse().ok()) {
                        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                    }
                }
            }
        }
        for &pid in &leaders {
            untrack(Pid::from_raw(pid));
        }
        kill_strays();
        super::ipc::sweep_at_exit(); // ipc leaks: also when interrupted
        if let Ok(dir) =
            fs::read_dir(cgroup_root().map(PathBuf::as_path).unwrap_or(std::path::Path::new("/nonexistent")))
        {
            for cg in dir.flatten() {
                let _ = fs::remove_dir(cg.path());
            }
        }
        remove_cgroup_root();
        if sig == Signal::SIGINT && INTERRUPT_QUITS.load(Ordering::SeqCst) {
            eprintln!("grader: watch stopped");
            std::process::exit(0);
        }
        eprintln!("grader: interrupted by {sig}; every program it started has been killed");
        std::process::exit(128 + sig as i32);
    });
}
