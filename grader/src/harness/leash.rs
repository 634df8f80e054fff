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
//! The token is in the program's own memory, and a program running as root
//! can leave its cgroup: a root grader runs programs as a uid of their own
//! ([`super::runas`]), and then every process running as that uid is on
//! the leash too — a net no program can slip, as it cannot change its uid.
//!
//! Cleanup loops until none of the nets holds a living process, waiting on
//! pidfds of the processes it killed (an event, not a sleep), within a
//! deadline. Cgroup folders are removed in one place, [`remove_cgroup`];
//! those of a grader that died without removing them are found by a lock
//! it held ([`super::locks`]), not by its pid, which means nothing in
//! another PID namespace.

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpid, Pid};

use super::deadline::Deadline;
use super::locks::{self, Held};
use super::runas::{self, Identity};
use super::{procfs, reaper};

/// Environment variable that marks every process a program creates.
pub const TOKEN_VAR: &str = "IPC_LAB_TOKEN";

/// Most processes (threads, in fact) one program may have at once: its
/// cgroup's `pids.max`, and its `RLIMIT_NPROC` when it runs as a uid of its
/// own. The fork storm in the tests (300) stays below it.
pub const PIDS_MAX: u32 = 400;

/// The leash for one program: its token, where possible its cgroup, and
/// the user it runs as.
#[derive(Debug)]
pub struct Leash {
    pub token: String,
    cgroup: Option<PathBuf>,
    /// `cgroup.procs` of [`Self::cgroup`] as a C string, for `pre_exec`.
    pub(crate) join_path: Option<CString>,
    /// `None`: the grader's own user. Dropped after the cgroup is removed:
    /// giving the uid back comes last.
    pub(crate) identity: Option<Identity>,
    /// The program's stand-in parent in its PID namespace (see
    /// [`super::pidns`]): it runs as the program's uid, but is the
    /// grader's, not the program's.
    stand_in: Option<Pid>,
}

impl Leash {
    /// A new leash; `Err` when the program cannot be given the user it must
    /// run as (every uid of the pool taken, no folder for their locks, no
    /// account where it `needs_account`).
    pub(crate) fn new(needs_account: bool) -> Result<Leash, String> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let identity = if needs_account { runas::identity_with_account()? } else { runas::identity()? };
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let token = format!("{}-{n}", getpid());
        let cgroup = make_cgroup(&token);
        let join_path = cgroup
            .as_ref()
            .and_then(|c| CString::new(c.join("cgroup.procs").into_os_string().into_encoded_bytes()).ok());
        Ok(Leash { token, cgroup, join_path, identity, stand_in: None })
    }

    /// Once the program runs: whether it did join its cgroup (`pre_exec`
    /// goes on without it if the kernel refuses). If not, the cgroup holds
    /// nothing of the program, and [`Self::members`] no longer relies on it.
    pub(crate) fn check_joined(&mut self, leader: Pid) {
        let Some(cg) = &self.cgroup else { return };
        let inside = cg.strip_prefix(CGROUP_BASE).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let listed = fs::read_to_string(format!("/proc/{leader}/cgroup")).unwrap_or_default();
        if !in_pids_cgroup(&listed, &inside) {
            self.cgroup = None;
            self.join_path = None;
            // The folder is left to `remove_cgroup` at exit.
        }
    }

    /// A private working folder for the program, its own if it runs as
    /// another user; removed when the returned value is dropped.
    pub(crate) fn workdir(&self) -> std::io::Result<tempfile::TempDir> {
        let dir = tempfile::Builder::new().prefix("ipc-lab-").tempdir_in(runas::workdir_base())?;
        if let Some(who) = &self.identity {
            runas::give(dir.path(), who)?;
        }
        Ok(dir)
    }

    /// Once the program runs in a PID namespace: `pid` is its stand-in
    /// parent, no member of the leash.
    pub(crate) fn stand_in(&mut self, pid: Pid) {
        self.stand_in = Some(pid);
    }

    pub fn env_entry(&self) -> String {
        format!("{TOKEN_VAR}={}", self.token)
    }

    /// Every process on this leash that still runs (not zombies), except
    /// `leader`. Used both to detect leftovers and to kill them.
    pub fn members(&self, leader: Pid) -> Vec<Pid> {
        let mut set: Vec<Pid> = match (&self.cgroup, &self.identity) {
            (Some(cg), _) => cgroup_procs(cg),
            // Looking through all of /proc for the uid is costly; a cgroup
            // already holds every process of it, as a program that is not
            // root cannot leave its cgroup.
            (None, Some(who)) => who.processes(),
            (None, None) => Vec::new(),
        };
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
        set.retain(|&p| p != leader && Some(p) != self.stand_in && procfs::alive(p));
        set
    }

    /// Kill everything on the leash and wait until it is gone (or `deadline`
    /// passes), reaping the orphans that came to the grader. `known`: the
    /// [`Self::members`] just found, if any. The leader itself is killed but
    /// not reaped: its owner does that, after this returns. Once nothing is
    /// left the program's uid is noted clean.
    pub fn kill_all(&mut self, leader: Pid, deadline: Deadline, mut known: Option<Vec<Pid>>) {
        let gone = reaper::kill_until_gone(deadline, || {
            // While the leader is unreaped its pid, and so its process group
            // id, cannot be reused: killpg hits only the program's group.
            let _ = killpg(leader, Signal::SIGKILL);
            let _ = kill(leader, Signal::SIGKILL);
            known.take().unwrap_or_else(|| self.members(leader))
        });
        if let (true, Some(who)) = (gone, &mut self.identity) {
            who.left_clean();
        }
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
        if let Some(Ok(dir)) = cgroup_root().map(|r| fs::read_dir(&r.dir)) {
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
/// nobody owns, then remove the grader's cgroup folders (and the lock that
/// says they are alive) and the executables copied for other users.
pub fn clean_up() {
    reaper::kill_strays();
    if let Some(root) = cgroup_root() {
        remove_cgroup(&root.dir);
        root.alive.remove();
    }
    runas::clean_up();
}

/// What graders that died without cleaning up left on this machine: the
/// processes in their cgroup folders and the folders, and what still runs
/// as a uid of the pool they held. For `grader gradebook`, after one of its
/// graders was killed.
pub fn sweep_dead_graders() {
    remove_stale_cgroups(Path::new(CGROUP_BASE));
    runas::sweep_pool();
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

/// Whether `/proc/PID/cgroup` (`N:pids:/PATH` lines of cgroup v1) puts the
/// process in the `pids` cgroup `inside` (a path below the hierarchy's root).
fn in_pids_cgroup(listed: &str, inside: &str) -> bool {
    listed.lines().any(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next(), f.next(), f.next());
        controllers == Some("pids") && path == Some(inside)
    })
}

fn cgroup_procs(cgroup: &Path) -> Vec<Pid> {
    let text = fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
    text.split_whitespace().filter_map(|s| s.parse().ok()).map(Pid::from_raw).collect()
}

/// The cgroup v1 `pids` hierarchy.
const CGROUP_BASE: &str = "/sys/fs/cgroup/pids";

/// Names the lock ([`super::locks`]) a grader holds while its cgroup folder
/// `ipc-lab-<pid>-<nonce>` lives: `cgroup-<nonce>`.
const ALIVE_PREFIX: &str = "cgroup-";

/// The grader's own cgroup folder, which holds one folder per program, and
/// the lock held for as long as it lives.
struct Root {
    dir: PathBuf,
    alive: Held,
}

/// The grader's [`Root`]; `None` where there is no writable `pids`
/// hierarchy, no folder for lock files, or `GRADER_NO_CGROUP` is set. Made
/// when the first program starts.
static ROOT: OnceLock<Option<Root>> = OnceLock::new();

/// [`ROOT`] if it has been made: cleanup must not make it (nor wait for
/// another thread making it).
fn cgroup_root() -> Option<&'static Root> {
    ROOT.get().and_then(Option::as_ref)
}

fn make_cgroup(token: &str) -> Option<PathBuf> {
    let root = ROOT.get_or_init(|| {
        if std::env::var_os("GRADER_NO_CGROUP").is_some() {
            return None;
        }
        let base = Path::new(CGROUP_BASE);
        if !base.join("cgroup.procs").exists() {
            return None;
        }
        remove_stale_cgroups(base);
        // The lock first, then the folder: a folder without a held lock is
        // one whose grader is gone.
        let (lock, alive) = locks::hold_new(ALIVE_PREFIX)?;
        let nonce = &lock[ALIVE_PREFIX.len()..];
        let dir = base.join(format!("ipc-lab-{}-{nonce}", getpid()));
        if fs::create_dir(&dir).is_err() {
            alive.remove();
            return None;
        }
        Some(Root { dir, alive })
    });
    let dir = root.as_ref()?.dir.join(token);
    fs::create_dir(&dir).ok()?;
    let _ = fs::write(dir.join("pids.max"), PIDS_MAX.to_string());
    Some(dir)
}

/// Folders of graders that died without cleaning up (killed with SIGKILL):
/// `ipc-lab-<pid>-<nonce>` whose lock nobody holds. What still runs in
/// them is killed, then they are removed, then their lock file. (Folders
/// `ipc-lab-<pid>` of earlier graders, which held no lock, are removed
/// when that pid is gone and they are empty.)
fn remove_stale_cgroups(base: &Path) {
    let Ok(rd) = fs::read_dir(base) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("ipc-lab-") else { continue };
        match rest.split_once('-') {
            Some((_, nonce)) => {
                let Some(dead) = locks::try_hold_existing(&format!("{ALIVE_PREFIX}{nonce}")) else { continue };
                let dir = e.path();
                reaper::kill_until_gone(Deadline::after(std::time::Duration::from_secs(10)), || {
                    let mut procs = cgroup_procs(&dir);
                    for sub in fs::read_dir(&dir).into_iter().flatten().flatten() {
                        procs.extend(cgroup_procs(&sub.path()));
                    }
                    procs.retain(|&p| p.as_raw() > 0 && procfs::alive(p));
                    procs
                });
                remove_cgroup(&dir);
                if !dir.exists() {
                    dead.remove();
                }
            }
            None => {
                let Ok(pid) = rest.parse::<i32>() else { continue };
                if kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH) {
                    remove_cgroup(&e.path());
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::process::Command;

    /// A folder `ipc-lab-<pid>-<nonce>` with a process in it, whose lock is
    /// `alive` (or was, until dropped): as a grader leaves it.
    fn grader_folder(base: &Path, alive: &str) -> PathBuf {
        let nonce = &alive[ALIVE_PREFIX.len()..];
        // The pid of a live process: another grader in another PID
        // namespace may well have this number.
        let dir = base.join(format!("ipc-lab-{}-{nonce}", getpid()));
        fs::create_dir(&dir).unwrap();
        fs::create_dir(dir.join("0")).unwrap();
        dir
    }

    #[test]
    fn a_process_is_in_the_pids_cgroup_its_listing_names() {
        let listed = "9:name=systemd:/\n8:pids:/ipc-lab-7-abc/7-0\n4:memory:/ipc-lab-7-abc/7-0\n0::/\n";
        assert!(in_pids_cgroup(listed, "/ipc-lab-7-abc/7-0"));
        assert!(!in_pids_cgroup(listed, "/ipc-lab-7-abc/7-1"));
        assert!(!in_pids_cgroup("8:pids:/\n4:memory:/ipc-lab-7-abc/7-0\n", "/ipc-lab-7-abc/7-0"));
    }

    #[test]
    fn a_dead_graders_cgroup_is_emptied_and_removed_whatever_its_pid_and_a_live_ones_is_not() {
        let base = Path::new(CGROUP_BASE);
        if !nix::unistd::geteuid().is_root() || fs::create_dir(base.join("ipc-lab-probe")).is_err() {
            eprintln!("skipped: the cgroup v1 pids hierarchy is not writable here");
            return;
        }
        let _ = fs::remove_dir(base.join("ipc-lab-probe"));
        let (dead_name, dead) = locks::hold_new(ALIVE_PREFIX).unwrap();
        let (live_name, live) = locks::hold_new(ALIVE_PREFIX).unwrap();
        let dead_dir = grader_folder(base, &dead_name);
        let live_dir = grader_folder(base, &live_name);
        let mut sleeper = reaper::spawn_tracked(Command::new("sleep").arg("60")).unwrap();
        fs::write(dead_dir.join("0/cgroup.procs"), sleeper.pid().to_string()).unwrap();
        drop(dead); // the grader died

        remove_stale_cgroups(base);
        assert!(!dead_dir.exists(), "the dead grader's folder stayed");
        assert!(sleeper.wait_until(Deadline::after(std::time::Duration::from_secs(10))).is_some(), "its process lives");
        assert!(!locks::dir().unwrap().join(&dead_name).exists(), "its lock file stayed");
        assert!(live_dir.join("0").exists(), "a live grader's folder was touched");

        remove_cgroup(&live_dir);
        live.remove();
    }
}
