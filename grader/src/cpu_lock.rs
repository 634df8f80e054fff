//! Sharing the CPU fairly between graders that run side by side.
//!
//! `grader gradebook` grades several submissions at once, each in its own
//! grader process. A check that measures timing must not share the CPU
//! with another grader's builds and heavy checks, or a correct program
//! could look slow. The gradebook hands every grader one lock file in
//! `GRADER_CPU_LOCK`: the parallel checks hold it shared, the timing phase
//! holds it exclusively (`flock`). Builds do not take it: a build script
//! that never ends would hold everyone's timing checks until its deadline,
//! and the timing checks' upper bounds are generous enough for a compiler
//! running beside them (bench/flake.sh grades under two busy loops).
//! Without the variable (a student's `cargo grade`) there is nothing to
//! share and the guards are no-ops.
//!
//! Waiting for the lock is waiting for other submissions, not work of one's
//! own: the gradebook sees in `/proc/locks` which of its graders wait
//! ([`waits`]) and does not count that time against their deadlines.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

/// Environment variable naming the lock file.
pub const VAR: &str = "GRADER_CPU_LOCK";

/// Holds the lock until dropped.
pub struct Guard(#[allow(dead_code)] Option<Flock<File>>);

/// For checks that may run beside other graders' checks.
pub fn shared() -> Guard {
    lock(FlockArg::LockShared)
}

/// For the timing phase: nothing else of any grader runs meanwhile.
pub fn exclusive() -> Guard {
    lock(FlockArg::LockExclusive)
}

fn lock(how: FlockArg) -> Guard {
    match std::env::var_os(VAR).filter(|p| !p.is_empty()) {
        Some(path) => lock_file(std::path::Path::new(&path), how),
        None => Guard(None),
    }
}

fn lock_file(path: &std::path::Path, how: FlockArg) -> Guard {
    let Ok(file) = OpenOptions::new().create(true).truncate(false).write(true).open(path) else {
        return Guard(None);
    };
    // flock waits for the lock; EINTR cannot happen here, as every signal
    // the grader handles is blocked in its threads (`interrupt::guard`).
    Guard(Flock::lock(file, how).ok())
}

/// Whether process `pid` is blocked waiting for the lock file at `path`:
/// a line `N: -> FLOCK ADVISORY READ|WRITE PID MAJ:MIN:INODE …` in
/// `/proc/locks` (the arrow marks a waiter; the device numbers are hex).
pub fn waits(path: &Path, pid: i32) -> bool {
    let Ok(meta) = std::fs::metadata(path) else { return false };
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    waiting_in(&locks, meta.dev(), meta.ino(), pid)
}

fn waiting_in(locks: &str, dev: u64, ino: u64, pid: i32) -> bool {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    locks.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [_, "->", "FLOCK", _, _, who, file, ..] = f.as_slice() else { return false };
        let mut id = file.split(':');
        let same = |part: Option<&str>, radix: u32, want: u64| {
            part.and_then(|p| u64::from_str_radix(p, radix).ok()) == Some(want)
        };
        who.parse() == Ok(pid)
            && same(id.next(), 16, major.into())
            && same(id.next(), 16, minor.into())
            && same(id.next(), 10, ino)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use crate::harness::deadline::{self, Deadline};

    #[test]
    fn proc_locks_lines_name_their_waiters() {
        let locks = "1: FLOCK  ADVISORY  WRITE 24690 fe:00:10010635 0 EOF\n\
                     1: -> FLOCK  ADVISORY  READ 24699 fe:00:10010635 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 24700 fe:00:10010635 0 EOF\n";
        let dev = libc::makedev(0xfe, 0);
        assert!(waiting_in(locks, dev, 10010635, 24699));
        assert!(!waiting_in(locks, dev, 10010635, 24690), "the holder does not wait");
        assert!(!waiting_in(locks, dev, 10010636, 24699), "another file");
        assert!(!waiting_in(locks, libc::makedev(0xfe, 1), 10010635, 24699), "another device");
    }

    #[test]
    fn a_grader_blocked_on_the_lock_is_seen_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu.lock");
        let me = std::process::id() as i32;
        let held = lock_file(&path, FlockArg::LockExclusive);
        assert!(!waits(&path, me));
        std::thread::scope(|s| {
            s.spawn(|| drop(lock_file(&path, FlockArg::LockShared)));
            // Sampled: a blocked flock has no event of its own.
            let until = Deadline::after(Duration::from_secs(10));
            while !waits(&path, me) && !until.passed() {
                deadline::wait(&mut [], until.sooner(Duration::from_millis(5)));
            }
            assert!(waits(&path, me), "never seen waiting");
            drop(held);
        });
        assert!(!waits(&path, me));
    }

    /// Each guard opens the file anew, as another grader process would.
    fn try_lock(path: &std::path::Path, how: FlockArg) -> bool {
        let file = OpenOptions::new().write(true).open(path).unwrap();
        Flock::lock(file, how).is_ok()
    }

    #[test]
    fn parallel_checks_share_and_the_timing_phase_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu.lock");
        let shared = lock_file(&path, FlockArg::LockShared);
        assert!(shared.0.is_some());
        assert!(try_lock(&path, FlockArg::LockSharedNonblock), "shared beside shared");
        assert!(!try_lock(&path, FlockArg::LockExclusiveNonblock), "no timing phase beside parallel checks");
        drop(shared);
        let exclusive = lock_file(&path, FlockArg::LockExclusive);
        assert!(!try_lock(&path, FlockArg::LockSharedNonblock), "nothing beside a timing phase");
        drop(exclusive);
        assert!(try_lock(&path, FlockArg::LockExclusiveNonblock));
    }
}
