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

use std::fs::{File, OpenOptions};

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

#[cfg(test)]
mod tests {
    use super::*;

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
