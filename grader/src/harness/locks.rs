//! Lock files that say "this is taken, and its owner is alive".
//!
//! A grader leaves things behind when it dies without cleaning up (a
//! `SIGKILL`, a gradebook's time-out): cgroup folders, and programs running
//! as one of the uids it had taken. Who owns such a thing cannot be told by
//! a pid number: in a PID namespace the same number means another process,
//! and a dead grader's number is soon reused. An `flock` can: the grader
//! holds one for everything it owns, and the kernel releases it the moment
//! the grader dies, whatever killed it. Whoever can take the lock knows that
//! its owner is gone and may clean up after it.
//!
//! The lock files live in one folder of the grader's user that nobody else
//! may write (`/run/ipc-lab` for root, else in the temporary folder): a
//! program under grading must not be able to take or fake a lock.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::geteuid;

/// A lock held until dropped (or until the grader dies).
#[derive(Debug)]
pub struct Held {
    _lock: Flock<File>,
    path: PathBuf,
}

impl Held {
    /// Remove the lock file while still holding the lock: for a lock whose
    /// name is never taken again (a cgroup folder that is gone).
    pub fn remove(&self) {
        let _ = fs::remove_file(&self.path);
    }

    /// What the last holder wrote into the lock file ([`Self::note`]).
    pub fn noted(&self) -> String {
        let mut text = [0u8; 64];
        let n = self._lock.read_at(&mut text, 0).unwrap_or(0);
        String::from_utf8_lossy(&text[..n]).into_owned()
    }

    /// Leave `text` in the lock file for its next holder, over what was
    /// there (notes of one length need no truncating, which is slow on
    /// some file systems).
    pub fn note(&self, text: &str) {
        let _ = self._lock.write_all_at(text.as_bytes(), 0);
    }
}

/// The folder of lock files, made on first use; `None` (with the reason
/// printed once) when no safe folder can be had.
pub fn dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let me = geteuid();
        let mut tried = Vec::new();
        let run = me.is_root().then(|| PathBuf::from("/run/ipc-lab"));
        for dir in run.into_iter().chain([std::env::temp_dir().join(format!("ipc-lab-{me}"))]) {
            match private_dir(&dir) {
                Ok(()) => return Some(dir),
                Err(e) => tried.push(format!("{}: {e}", dir.display())),
            }
        }
        eprintln!("grader: warning: no folder for lock files ({})", tried.join("; "));
        None
    })
    .as_deref()
}

/// Make `dir` (mode 0700) or accept it if it is already a folder of ours
/// that nobody else may write; refuse anything else (a symlink, another
/// owner), as a program could have made it.
fn private_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return Err(io::Error::other("it exists but is not a folder of the grader's user that only it may write"));
    }
    Ok(())
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).truncate(false).read(true).write(true).mode(0o600).open(path)
}

/// Take the lock `name` if nobody holds it (without waiting), making its
/// file if need be.
pub fn try_hold(name: &str) -> Option<Held> {
    let path = dir()?.join(name);
    lock(open(&path).ok()?, path)
}

/// Take the lock `name` if its file exists and nobody holds it: its owner
/// made it and is gone. A missing file proves nothing (another machine's
/// grader, seen through a shared cgroup hierarchy, keeps its locks
/// elsewhere).
pub fn try_hold_existing(name: &str) -> Option<Held> {
    let path = dir()?.join(name);
    lock(OpenOptions::new().read(true).write(true).open(&path).ok()?, path)
}

fn lock(file: File, path: PathBuf) -> Option<Held> {
    Flock::lock(file, FlockArg::LockExclusiveNonblock).ok().map(|lock| Held { _lock: lock, path })
}

/// Make a new lock with a name no one has used (`<prefix><random>`) and
/// hold it; returns its name.
pub fn hold_new(prefix: &str) -> Option<(String, Held)> {
    let dir = dir()?;
    let (file, path) = tempfile::Builder::new().prefix(prefix).tempfile_in(dir).ok()?.keep().ok()?;
    let name = path.file_name()?.to_str()?.to_string();
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
    Some((name, Held { _lock: lock, path }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_cannot_be_taken_until_it_is_dropped() {
        let (name, held) = hold_new("test-").expect("a lock folder");
        assert!(try_hold(&name).is_none(), "taken twice");
        assert_eq!(held.noted(), "");
        held.note("clean");
        drop(held);
        let again = try_hold_existing(&name).expect("free once dropped");
        assert_eq!(again.noted(), "clean", "a note for the next holder");
        again.remove();
        assert!(!dir().unwrap().join(&name).exists());
        assert!(try_hold_existing(&name).is_none(), "a missing file proves nothing");
    }
}
