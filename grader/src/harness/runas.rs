//! Which user a student program runs as.
//!
//! A grader that runs as root (a CI container, Gradescope, an instructor's
//! Docker run) must not run students' programs as root: as root a program
//! can leave its cgroup, signal, stop or trace the grader, read its `/proc`
//! entries (the report's path is in its command line) and write its files.
//! So a root grader runs every program as an unprivileged uid ([`RunAs`],
//! `--run-as` / `GRADER_RUN_AS`):
//!
//! - by default each program gets a uid of its own from a pool
//!   ([`DEFAULT_POOL`], a range no account uses), taken for as long as the
//!   program runs and held by a lock file ([`super::locks`]) so that graders
//!   side by side never share one. A uid of its own is a leash the program
//!   cannot slip: every process running as it belongs to that program (it
//!   cannot change its uid back), which finds a daemon that hid its token
//!   and left its cgroup; `RLIMIT_NPROC` counts the processes of one uid, so
//!   set to the cgroup's cap it caps a fork storm even without a cgroup,
//!   and one program's storm never makes another check's `fork` fail; and
//!   `kill(-1, …)` reaches only the program's own processes.
//! - `--run-as USER|UID` runs every program as that one user (an account
//!   made for grading). Processes of a shared uid say nothing about which
//!   program made them, and `RLIMIT_NPROC` is shared by all programs
//!   running at once, so it is set to [`SHARED_NPROC`].
//! - `--run-as root` keeps the old way: programs run as the grader's user.
//!   A grader that is not root cannot change users and always works so.
//!
//! A program must be able to run its executable and work in its private
//! folder: the folder is given to its uid, and an executable that uid could
//! not reach (a parent folder closed to others) is run from a copy
//! ([`exec_path`]). Pipes the grader made are inherited descriptors and
//! need no permission. `/proc/PID` of every program stays readable to the
//! root grader.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use nix::unistd::{geteuid, Pid, Uid, User};

use super::deadline::Deadline;
use super::locks::{self, Held};
use super::{procfs, reaper};

/// The uids a root grader runs programs as by default, one per running
/// program: the range systemd's table of uid ranges ("Users, Groups, UIDs
/// and GIDs on systemd Systems") leaves unused (60578…61183), below 65536
/// so that a container's user namespace maps it. A uid of it that has an
/// account on the machine is skipped.
pub const DEFAULT_POOL: (u32, u32) = (60578, 61183);

/// `RLIMIT_NPROC` when every program shares one uid (`--run-as USER`): the
/// processes of every program running at once, and of that user elsewhere
/// on the machine, count against it. Room for ten programs at their cap
/// ([`super::leash::PIDS_MAX`]) — a coarse bound on a fork bomb, not a fair
/// share; a uid per program is the fair one.
pub const SHARED_NPROC: u64 = 4096;

/// Who student programs run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// As the grader's own user.
    Own,
    /// Every program as this one user.
    User { uid: u32, gid: u32 },
    /// Every program as a uid of its own from `first..=last`.
    Pool { first: u32, last: u32 },
}

impl RunAs {
    /// Read `--run-as` (`None`: not given): `root`, a user name, a uid, or a
    /// range `FIRST-LAST`. Without it a root grader uses [`DEFAULT_POOL`]
    /// and any other grader its own user.
    pub fn parse(value: Option<&str>) -> Result<RunAs, String> {
        let root = geteuid().is_root();
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(if root { default_pool() } else { RunAs::Own });
        };
        let wanted = if value == "root" {
            RunAs::Own
        } else if let Some((a, b)) = value.split_once('-').filter(|(a, b)| is_number(a) && is_number(b)) {
            let (first, last) = (number(a)?, number(b)?);
            if first == 0 || first > last || last - first >= 100_000 {
                return Err(format!("--run-as {value}: a range of at most 100000 uids above 0, FIRST-LAST"));
            }
            RunAs::Pool { first, last }
        } else {
            let user = if is_number(value) {
                let uid = number(value)?;
                User::from_uid(Uid::from_raw(uid)).ok().flatten().map(|u| (uid, u.gid.as_raw())).unwrap_or((uid, uid))
            } else {
                let u = User::from_name(value)
                    .ok()
                    .flatten()
                    .ok_or_else(|| format!("--run-as {value}: no such user (a name, a uid, FIRST-LAST, or root)"))?;
                (u.uid.as_raw(), u.gid.as_raw())
            };
            if user.0 == geteuid().as_raw() {
                RunAs::Own
            } else {
                RunAs::User { uid: user.0, gid: user.1 }
            }
        };
        if wanted != RunAs::Own && !root {
            return Err(format!(
                "--run-as {value} needs a grader running as root; as any other user, programs run as that user"
            ));
        }
        Ok(wanted)
    }

    /// One line for the reader: who programs run as.
    pub fn describe(&self) -> String {
        match self {
            RunAs::Own => "as the grader's own user".into(),
            RunAs::User { uid, .. } => format!("as uid {uid}"),
            RunAs::Pool { first, last } => format!("each as a uid of its own from {first}-{last}"),
        }
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn number(s: &str) -> Result<u32, String> {
    s.parse::<u32>().ok().filter(|&n| n != u32::MAX).ok_or_else(|| format!("--run-as: `{s}` is not a uid"))
}

/// [`DEFAULT_POOL`], unless this (root) grader runs in a user namespace
/// that does not map it: then programs run as root, with a warning.
fn default_pool() -> RunAs {
    let (first, last) = DEFAULT_POOL;
    let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    if mapped(&map, first, last) {
        RunAs::Pool { first, last }
    } else {
        eprintln!(
            "grader: warning: uids {first}-{last} are not mapped in this user namespace; programs run as root \
             (see --run-as)"
        );
        RunAs::Own
    }
}

/// Whether `/proc/self/uid_map` (`inside outside count` per line) maps
/// every uid of `first..=last`.
fn mapped(uid_map: &str, first: u32, last: u32) -> bool {
    uid_map.lines().any(|line| {
        let f: Vec<u64> = line.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        f.len() == 3 && f[0] <= u64::from(first) && u64::from(last) < f[0] + f[2]
    })
}

static CONFIGURED: OnceLock<RunAs> = OnceLock::new();

/// Set who programs run as, once, before the first program starts (later
/// calls change nothing). Unset, programs run as the grader's own user.
pub fn configure(run_as: RunAs) {
    let _ = CONFIGURED.set(run_as);
}

pub fn configured() -> &'static RunAs {
    CONFIGURED.get().unwrap_or(&RunAs::Own)
}

/// The user one program runs as.
#[derive(Debug)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// The uid is this program's alone (taken from the pool): every process
    /// running as it is the program's.
    pub exclusive: bool,
    slot: Option<Held>,
    /// Nothing runs as the uid any more ([`Self::left_clean`]).
    clean: bool,
}

/// The note a uid's lock file carries when its last holder left nothing
/// running as it: the next holder need not look. [`DIRTY`] (of the same
/// length) while it is held, and when its holder could not say.
const CLEAN: &str = "clean";
const DIRTY: &str = "dirty";

impl Identity {
    /// `RLIMIT_NPROC` for the program: the cgroup's cap for a uid of its
    /// own, [`SHARED_NPROC`] for a shared one.
    pub fn nproc(&self) -> u64 {
        if self.exclusive {
            u64::from(super::leash::PIDS_MAX)
        } else {
            SHARED_NPROC
        }
    }

    /// Processes (not zombies) running as this uid, if it is the program's
    /// alone: leftovers of it, wherever they hid.
    pub fn processes(&self) -> Vec<Pid> {
        if self.exclusive {
            running_as(self.uid)
        } else {
            Vec::new()
        }
    }

    /// Say that nothing runs as this uid any more (the program's leash found
    /// nothing left): its next holder need not look through `/proc`.
    pub fn left_clean(&mut self) {
        self.clean = true;
    }
}

impl Drop for Identity {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            slot.note(if self.clean { CLEAN } else { DIRTY });
        }
    }
}

/// Who the next program runs as: `None` for the grader's own user.
pub fn identity() -> Result<Option<Identity>, String> {
    match *configured() {
        RunAs::Own => Ok(None),
        RunAs::User { uid, gid } => Ok(Some(Identity { uid, gid, exclusive: false, slot: None, clean: false })),
        RunAs::Pool { first, last } => take_uid(first, last).map(Some),
    }
}

/// Who the next program runs as when its uid must have an account (a
/// `dbus-daemon` looks up the groups of every uid that connects and turns
/// away one without an account — which every uid of the pool is): where
/// programs get a uid of the pool, the account [`ACCOUNT`], shared like a
/// `--run-as` user (its processes found by cgroup, process group and token,
/// not by uid); otherwise as [`identity`].
pub fn identity_with_account() -> Result<Option<Identity>, String> {
    if !matches!(configured(), RunAs::Pool { .. }) {
        return identity();
    }
    match User::from_name(ACCOUNT) {
        Ok(Some(u)) => {
            let uid = u.uid.as_raw();
            let mut taken = taken().lock().unwrap_or_else(|e| e.into_inner());
            if !taken.contains(&uid) {
                taken.push(uid);
            }
            Ok(Some(Identity { uid, gid: u.gid.as_raw(), exclusive: false, slot: None, clean: false }))
        }
        _ => Err(format!(
            "this program must run as a user with an account, and there is no account `{ACCOUNT}`: \
             name one with --run-as USER"
        )),
    }
}

/// The account a root grader runs a program as that needs one
/// ([`identity_with_account`]): the unprivileged user every Debian, Ubuntu
/// and Fedora system has.
pub const ACCOUNT: &str = "nobody";

/// Take the first free uid of `first..=last` (one without an account,
/// whose lock nobody holds), first killing what still runs as it — unless
/// its last holder left a note that nothing did: a grader that died
/// without cleaning up left no note. (Nothing but a grader holding the
/// lock starts processes as the uid, so the note stays true.) The first
/// free one, so that a grading uses few uids: looking up whether a uid has
/// an account can be slow (`nss-systemd`, LDAP), and is done once per uid.
fn take_uid(first: u32, last: u32) -> Result<Identity, String> {
    if locks::dir().is_none() {
        return Err("cannot run the program as an unprivileged uid: no folder for the uid locks".into());
    }
    for uid in first..=last {
        if has_account(uid) {
            continue;
        }
        if let Some(slot) = locks::try_hold(&slot_name(uid)) {
            if slot.noted() != CLEAN {
                evict(uid);
            }
            slot.note(DIRTY);
            let mut taken = taken().lock().unwrap_or_else(|e| e.into_inner());
            if !taken.contains(&uid) {
                taken.push(uid);
            }
            return Ok(Identity { uid, gid: uid, exclusive: true, slot: Some(slot), clean: false });
        }
    }
    Err(format!("every uid of {first}-{last} is in use by a program; none is free for the next"))
}

/// The uids of the pool this grader has taken so far, and [`ACCOUNT`] once
/// a program ran as it.
fn taken() -> &'static Mutex<Vec<u32>> {
    static TAKEN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    &TAKEN
}

/// Every uid a program of this grader has run as so far: what an IPC
/// object a program made is owned by ([`super::ipc`] looks at no other).
pub fn program_uids() -> Vec<u32> {
    match *configured() {
        RunAs::Own => vec![geteuid().as_raw()],
        RunAs::User { uid, .. } => vec![uid],
        RunAs::Pool { .. } => taken().lock().unwrap_or_else(|e| e.into_inner()).clone(),
    }
}

fn slot_name(uid: u32) -> String {
    format!("uid-{uid}")
}

/// Whether `uid` belongs to an account of the machine (such a uid of the
/// pool is never used: its processes are not ours to kill). Remembered.
fn has_account(uid: u32) -> bool {
    static KNOWN: OnceLock<Mutex<HashMap<u32, bool>>> = OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(&named) = known.lock().unwrap_or_else(|e| e.into_inner()).get(&uid) {
        return named;
    }
    let named = User::from_uid(Uid::from_raw(uid)).map(|u| u.is_some()).unwrap_or(true);
    known.lock().unwrap_or_else(|e| e.into_inner()).insert(uid, named);
    named
}

/// Kill every process running as `uid` and wait until they are gone.
fn evict(uid: u32) {
    reaper::kill_until_gone(Deadline::after(Duration::from_secs(10)), || running_as(uid));
}

/// Processes (not zombies) whose real uid is `uid`.
fn running_as(uid: u32) -> Vec<Pid> {
    procfs::all_pids().into_iter().filter(|&p| procfs::real_uid(p) == Some(uid) && procfs::alive(p)).collect()
}

/// Kill what runs as a uid of the pool whose lock nobody holds: programs of
/// a grader that died without cleaning up (a gradebook's grader killed at
/// its deadline, or by one of its programs).
pub fn sweep_pool() {
    let RunAs::Pool { first, last } = *configured() else { return };
    let mut uids: Vec<u32> = procfs::all_pids()
        .into_iter()
        .filter_map(procfs::real_uid)
        .filter(|uid| (first..=last).contains(uid) && !has_account(*uid))
        .collect();
    uids.sort_unstable();
    uids.dedup();
    for uid in uids {
        if let Some(_free) = locks::try_hold(&slot_name(uid)) {
            evict(uid);
        }
    }
}

/// Give the folder `dir` to `who`: a program's private working folder.
pub fn give(dir: &Path, who: &Identity) -> io::Result<()> {
    std::os::unix::fs::chown(dir, Some(who.uid), Some(who.gid))
}

/// Where to make a program's private folder: the temporary folder, if
/// others can reach it (a `TMPDIR` closed to others is not), else `/tmp`.
pub fn workdir_base() -> PathBuf {
    let tmp = std::env::temp_dir();
    if *configured() == RunAs::Own || reachable_by_others(&tmp) {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

/// The path to execute `path` by, for a program that runs as another user:
/// `path` itself if any user may reach and run it, else a copy the grader
/// made where any user may (read-only to all but the grader). Run as the
/// grader's own user, always `path`.
pub fn exec_path(path: &Path) -> io::Result<PathBuf> {
    if *configured() == RunAs::Own || runnable_by_others(path) {
        return Ok(path.to_path_buf());
    }
    copies().copy(path)
}

/// Every folder on the way to `dir` (and `dir`) lets others pass.
fn reachable_by_others(dir: &Path) -> bool {
    let Ok(dir) = std::path::absolute(dir) else { return false };
    dir.ancestors().all(|d| fs::metadata(d).is_ok_and(|m| m.is_dir() && m.mode() & 0o001 != 0))
}

/// Others may reach `path` (by the way it is written and by where it
/// leads), read it and execute it. Group bits and ACLs are not looked at:
/// a uid of the pool is in no group.
fn runnable_by_others(path: &Path) -> bool {
    let (Ok(given), Ok(real)) = (std::path::absolute(path), fs::canonicalize(path)) else { return false };
    let reachable = |p: &Path| p.parent().is_some_and(reachable_by_others);
    reachable(&given) && reachable(&real) && fs::metadata(&real).is_ok_and(|m| m.is_file() && m.mode() & 0o005 == 0o005)
}

/// Executables copied for programs that could not reach the original, in
/// one folder of this grader, removed by [`clean_up`].
struct Copies {
    dir: Option<tempfile::TempDir>,
    /// (original, its mtime, its size) and the copy: a handful.
    made: Vec<((PathBuf, SystemTime, u64), PathBuf)>,
}

fn copies() -> std::sync::MutexGuard<'static, Copies> {
    static COPIES: Mutex<Copies> = Mutex::new(Copies { dir: None, made: Vec::new() });
    COPIES.lock().unwrap_or_else(|e| e.into_inner())
}

impl Copies {
    /// Copy `path` to `<folder>/<n>/<its file name>`: the name stays (it is
    /// the program's `comm`), the executable a new build made gets a new
    /// copy.
    fn copy(&mut self, path: &Path) -> io::Result<PathBuf> {
        let meta = fs::metadata(path)?;
        let key = (path.to_path_buf(), meta.modified()?, meta.len());
        if let Some((_, copy)) = self.made.iter().find(|(k, _)| *k == key) {
            return Ok(copy.clone());
        }
        if self.dir.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("ipc-lab-exe-")
                .permissions(fs::Permissions::from_mode(0o755))
                .tempdir_in(workdir_base())?;
            self.dir = Some(dir);
        }
        let base = self.dir.as_ref().map(|d| d.path().to_path_buf()).unwrap_or_default();
        let folder = base.join(self.made.len().to_string());
        fs::create_dir(&folder)?;
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o755))?;
        let copy = folder.join(path.file_name().ok_or_else(|| io::Error::other("no file name"))?);
        super::reaper::without_forks(|| fs::copy(path, &copy))?;
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o755))?;
        self.made.push((key, copy.clone()));
        Ok(copy)
    }
}

/// Remove the copied executables: at exit.
pub fn clean_up() {
    let mut copies = copies();
    copies.made.clear();
    copies.dir = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_map_maps_a_range_only_whole() {
        let full = "         0          0 4294967295\n";
        assert!(mapped(full, 60578, 61183));
        let container = "         0     100000      65536\n";
        assert!(mapped(container, 60578, 61183));
        assert!(!mapped(container, 60000, 70000));
        assert!(!mapped("", 1, 2));
    }

    #[test]
    fn run_as_values() {
        assert_eq!(RunAs::parse(Some("root")), Ok(RunAs::Own));
        if !geteuid().is_root() {
            assert_eq!(RunAs::parse(None), Ok(RunAs::Own));
            assert!(RunAs::parse(Some("nobody")).unwrap_err().contains("needs a grader running as root"));
            return;
        }
        assert_eq!(RunAs::parse(Some("61000-61009")), Ok(RunAs::Pool { first: 61000, last: 61009 }));
        let nobody = User::from_name("nobody").unwrap().unwrap();
        assert_eq!(
            RunAs::parse(Some("nobody")),
            Ok(RunAs::User { uid: nobody.uid.as_raw(), gid: nobody.gid.as_raw() })
        );
        assert_eq!(RunAs::parse(Some("0")), Ok(RunAs::Own));
        assert!(RunAs::parse(Some("9-1")).unwrap_err().contains("FIRST-LAST"));
        assert!(RunAs::parse(Some("no-such-user-here")).unwrap_err().contains("no such user"));
    }

    #[test]
    fn a_closed_folder_makes_a_copy_that_others_can_run() {
        let open = tempfile::Builder::new().permissions(fs::Permissions::from_mode(0o755)).tempdir().unwrap();
        let closed = open.path().join("closed");
        fs::create_dir(&closed).unwrap();
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
        let exe = closed.join("sigecho");
        fs::write(&exe, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!runnable_by_others(&exe));
        let mut copies = Copies { dir: None, made: Vec::new() };
        let copy = copies.copy(&exe).unwrap();
        assert_eq!(copy.file_name().unwrap(), "sigecho");
        assert!(runnable_by_others(&copy), "{}", copy.display());
        assert_eq!(copies.copy(&exe).unwrap(), copy, "copied once");
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(runnable_by_others(&exe));
    }
}
