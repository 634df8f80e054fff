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
//! 3. **The subreaper and a token**: the grader is a child subreaper (see
//!    [`super::reaper`]), so orphans are re-parented to it instead of init,
//!    and every program gets `IPC_LAB_TOKEN=<grader pid>-<n>` in its
//!    environment, which descendants inherit. Orphans carrying a check's
//!    token are that check's leftovers.
//!
//! Cleanup loops until none of the nets holds a living process, waiting on
//! pidfds of the processes it killed (an event, not a sleep), within a
//! deadline. Cgroup folders are removed in one place, [`remove_cgroup`].

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpid, Pid};

use super::deadline::Deadline;
use super::{procfs, reaper};

/// Environment variable that marks every process a program creates.
pub const TOKEN_VAR: &str = "IPC_LAB_TOKEN";

/// Most processes one program may have at once (where a cgroup enforces it).
const PIDS_MAX: u32 = 400;

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
        let mut set: Vec<Pid> = self.cgroup.as_deref().map(cgroup_procs).unwrap_or_default();
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
        set.retain(|&p| p != leader && procfs::alive(p));
        set
    }

    /// Kill everything on the leash and wait until it is gone (or `deadline`
    /// passes), reaping the orphans that came to the grader. The leader
    /// itself is killed but not reaped: its owner does that, after this
    /// returns.
    pub fn kill_all(&self, leader: Pid, deadline: Deadline) {
        reaper::kill_until_gone(deadline, || {
            // While the leader is unreaped its pid, and so its process group
            // id, cannot be reused: killpg hits only the program's group.
            let _ = killpg(leader, Signal::SIGKILL);
            let _ = kill(leader, Signal::SIGKILL);
            self.members(leader)
        });
    }
}

impl Drop for Leash {
    fn drop(&mut self) {
        if let Some(cg) = &self.cgroup {
            remove_cgroup(cg);
        }
    }
}

/// Kill every process of every program the grader started (their process
/// groups and cgroups, then every other child), refuse to start any more,
/// and remove the cgroups: for the interrupt guard, while checks may still
/// be running in other threads.
pub fn kill_everything() {
    reaper::stop_spawning(|leaders| {
        for &pid in leaders {
            let _ = killpg(pid, Signal::SIGKILL);
        }
        if let Some(Ok(dir)) = cgroup_root().map(fs::read_dir) {
            for cg in dir.flatten() {
                for p in cgroup_procs(&cg.path()) {
                    let _ = kill(p, Signal::SIGKILL);
                }
            }
        }
    });
    clean_up();
}

/// The last sweep before the grader exits: kill and reap every child
/// nobody owns, then remove the grader's cgroup folders.
pub fn clean_up() {
    reaper::kill_strays();
    if let Some(root) = cgroup_root() {
        remove_cgroup(root);
    }
}

/// Kill every program of the grader process `grader` (their tokens are
/// `<grader pid>-<n>`), until none is left or `deadline` passes. For
/// `grader gradebook`, after a grader it ran was killed before it could
/// clean up after itself.
pub fn kill_marked(grader: Pid, deadline: Deadline) {
    let prefix = format!("{TOKEN_VAR}={grader}-");
    reaper::kill_until_gone(deadline, || {
        procfs::all_pids().into_iter().filter(|&p| procfs::alive(p) && procfs::environ_starts(p, &prefix)).collect()
    });
}

fn cgroup_procs(cgroup: &Path) -> Vec<Pid> {
    let text = fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
    text.split_whitespace().filter_map(|s| s.parse().ok()).map(Pid::from_raw).collect()
}

/// The grader's own cgroup folder (`ipc-lab-<pid>`), which holds one folder
/// per program; `None` where there is no writable `pids` hierarchy or
/// `GRADER_NO_CGROUP` is set. Made when the first program starts.
static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();

/// [`ROOT`] if it has been made: cleanup must not make it (nor wait for
/// another thread making it).
fn cgroup_root() -> Option<&'static PathBuf> {
    ROOT.get().and_then(Option::as_ref)
}

fn make_cgroup(token: &str) -> Option<PathBuf> {
    let root = ROOT.get_or_init(|| {
        if std::env::var_os("GRADER_NO_CGROUP").is_some() {
            return None;
        }
        let base = PathBuf::from("/sys/fs/cgroup/pids");
        remove_stale_cgroups(&base);
        let root = base.join(format!("ipc-lab-{}", getpid()));
        fs::create_dir(&root).ok()?;
        Some(root)
    });
    let dir = root.as_ref()?.join(token);
    fs::create_dir(&dir).ok()?;
    let _ = fs::write(dir.join("pids.max"), PIDS_MAX.to_string());
    Some(dir)
}

/// Folders of graders that died without cleaning up (killed with SIGKILL):
/// their processes were killed with them or by us, so only empty folders
/// remain to remove.
fn remove_stale_cgroups(base: &Path) {
    let Ok(rd) = fs::read_dir(base) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("ipc-lab-").and_then(|p| p.parse::<i32>().ok()) else { continue };
        if kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH) {
            remove_cgroup(&e.path());
        }
    }
}

/// Remove the cgroup folder `dir` and the (program) folders inside it. A
/// cgroup still listing a process — a zombie too — cannot be removed, so
/// orphans are reaped and it is tried again, a few times; a folder that
/// stays is removed by the next grader (see [`remove_stale_cgroups`]).
fn remove_cgroup(dir: &Path) {
    for attempt in 0..3 {
        if attempt > 0 {
            reaper::reap_orphans();
        }
        if let Ok(rd) = fs::read_dir(dir) {
            for sub in rd.flatten().filter(|e| e.path().is_dir()) {
                let _ = fs::remove_dir(sub.path());
            }
        }
        match fs::remove_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {}
            _ => return,
        }
    }
}
