//! Keeping CPU-heavy work out of the windows in which timing is measured,
//! inside one grader and between graders side by side.
//!
//! A timing check judges *when* something happens (an alarm after 1 s, a
//! retransmission after 200 ms). Its lower bounds hold on any machine —
//! load only ever makes a program later — but its upper bounds assume the
//! program gets the CPU when it wakes up. A heavy check (a storm of
//! signals, 16 MiB through sockets, 500 clients) keeps every CPU busy. So
//! the grader has one [`Gate`] with two ways in: [`Use::Quiet`] for a
//! window in which timing is measured, [`Use::Heavy`] for CPU-heavy work.
//! Any number of either may be inside at once, never one of each. Everything
//! else — most checks, which start a program and wait on it — needs no
//! guard and runs beside both.
//!
//! Measuring goes first: while a quiet window waits, no heavy work enters,
//! so a timing check waits at most for the heavy work already running.
//!
//! Between graders (`grader gradebook` runs several side by side), the
//! gate's first holder takes the lock file named in `GRADER_CPU_LOCK`
//! (`flock`): shared for quiet windows, so the measuring of all graders
//! overlaps, and exclusively for heavy work, so no grader's heavy work runs
//! while any grader measures. Builds do not take it: a build script that
//! never ends would hold everyone's timing checks until its deadline, and
//! the upper bounds are generous enough for a compiler running beside them
//! (bench/flake.sh grades under two busy loops). Without the variable (a
//! student's `cargo grade`) only the gate inside the process counts.
//!
//! Waiting for the lock is waiting for other submissions, not work of one's
//! own: the gradebook sees in `/proc/locks` which of its graders wait
//! ([`waits`]) and does not count that time against their deadlines.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// Environment variable naming the lock file shared between graders.
pub const VAR: &str = "GRADER_CPU_LOCK";

/// The two ways through the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A window in which timing is measured.
    Quiet,
    /// Work that keeps the CPUs busy.
    Heavy,
}

/// Quiet windows and heavy work, never both at once.
pub struct Gate {
    /// The lock file shared with other graders, if any.
    shared_with: Option<PathBuf>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Who is inside, and how many.
    inside: Option<(Use, usize)>,
    /// Quiet windows waiting to enter: heavy work gives way to them.
    quiet_waiting: usize,
    /// The lock shared with other graders, held while anyone is inside.
    across: Option<Flock<File>>,
}

/// Inside the gate until dropped.
pub struct Guard<'a> {
    gate: &'a Gate,
    /// How long entering took.
    pub waited: Duration,
}

/// The grader's gate, shared with other graders through `GRADER_CPU_LOCK`.
pub fn gate() -> &'static Gate {
    static GATE: LazyLock<Gate> =
        LazyLock::new(|| Gate::new(std::env::var_os(VAR).filter(|p| !p.is_empty()).map(PathBuf::from)));
    &GATE
}

impl Gate {
    pub fn new(shared_with: Option<PathBuf>) -> Gate {
        Gate { shared_with, state: Mutex::default(), changed: Condvar::new() }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enter as `how`, waiting while the other kind is inside (and, for
    /// heavy work, while a quiet window waits).
    pub fn enter(&self, how: Use) -> Guard<'_> {
        let started = Instant::now();
        let mut s = self.state();
        if how == Use::Quiet {
            s.quiet_waiting += 1;
        }
        loop {
            let give_way = how == Use::Heavy && s.quiet_waiting > 0;
            match &mut s.inside {
                Some((inside, n)) if *inside == how && !give_way => {
                    *n += 1;
                    break;
                }
                None if !give_way => {
                    // The first one in takes the lock between graders. It
                    // waits for it holding the mutex: nobody of this
                    // process is inside, so nobody needs the mutex to
                    // leave, and whoever comes next would wait anyway.
                    s.across = self.shared_with.as_deref().and_then(|p| lock_file(p, how));
                    s.inside = Some((how, 1));
                    break;
                }
                _ => s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner()),
            }
        }
        if how == Use::Quiet {
            s.quiet_waiting -= 1;
        }
        Guard { gate: self, waited: started.elapsed() }
    }

    /// Whether heavy work would enter now without waiting.
    pub fn open_for_heavy(&self) -> bool {
        let s = self.state();
        s.quiet_waiting == 0 && !matches!(s.inside, Some((Use::Quiet, _)))
    }

    fn leave(&self) {
        let mut s = self.state();
        if let Some((_, n)) = &mut s.inside {
            *n -= 1;
            if *n == 0 {
                s.inside = None;
                s.across = None;
            }
        }
        self.changed.notify_all();
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.gate.leave();
    }
}

/// The lock between graders: shared for quiet windows, exclusive for heavy
/// work. `None` when the file cannot be opened (grading goes on without).
fn lock_file(path: &Path, how: Use) -> Option<Flock<File>> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).ok()?;
    let arg = match how {
        Use::Quiet => FlockArg::LockShared,
        Use::Heavy => FlockArg::LockExclusive,
    };
    // flock waits for the lock; EINTR cannot happen here, as every signal
    // the grader handles is blocked in its threads (`interrupt::guard`).
    Flock::lock(file, arg).ok()
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
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    use super::*;

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
        let held = lock_file(&path, Use::Heavy);
        assert!(!waits(&path, me));
        std::thread::scope(|s| {
            s.spawn(|| drop(lock_file(&path, Use::Quiet)));
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

    /// Each try opens the file anew, as another grader process would.
    fn try_lock(path: &Path, how: FlockArg) -> bool {
        let file = OpenOptions::new().write(true).open(path).unwrap();
        Flock::lock(file, how).is_ok()
    }

    #[test]
    fn quiet_windows_share_and_exclude_heavy_work() {
        let gate = &Gate::new(None);
        let a = gate.enter(Use::Quiet);
        let b = gate.enter(Use::Quiet);
        assert!(!gate.open_for_heavy());
        let entered = AtomicBool::new(false);
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel();
            let (ready_tx, ready) = mpsc::channel();
            let entered = &entered;
            s.spawn(move || {
                ready_tx.send(()).unwrap();
                let g = gate.enter(Use::Heavy);
                entered.store(true, Ordering::SeqCst);
                tx.send(g.waited).unwrap();
            });
            // Counted from when the thread is about to enter (it may start
            // late on a loaded machine).
            ready.recv().unwrap();
            // The heavy thread must still be outside while a window is open.
            assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
            drop(a);
            assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "one window still open");
            assert!(!entered.load(Ordering::SeqCst));
            drop(b);
            let waited = rx.recv_timeout(Duration::from_secs(10)).expect("heavy work enters once both windows closed");
            // About 200 ms; less only by however long the thread took from
            // saying it was ready to entering.
            assert!(waited >= Duration::from_millis(150), "{waited:?}");
        });
        assert!(gate.open_for_heavy());
    }

    #[test]
    fn a_waiting_quiet_window_goes_before_more_heavy_work() {
        let gate = &Gate::new(None);
        let heavy = gate.enter(Use::Heavy);
        let more = gate.enter(Use::Heavy); // heavy work shares with heavy work
        std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel();
            let quiet_tx = tx.clone();
            s.spawn(move || {
                let _q = gate.enter(Use::Quiet);
                quiet_tx.send("quiet").unwrap();
            });
            // Once the quiet window waits, new heavy work gives way.
            while gate.open_for_heavy() {
                std::thread::yield_now();
            }
            s.spawn(move || {
                let _h = gate.enter(Use::Heavy);
                tx.send("heavy").unwrap();
            });
            assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
            drop(heavy);
            drop(more);
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "quiet");
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "heavy");
        });
    }

    #[test]
    fn across_graders_quiet_windows_share_and_heavy_work_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu.lock");
        let gate = Gate::new(Some(path.clone()));
        let quiet = gate.enter(Use::Quiet);
        assert!(try_lock(&path, FlockArg::LockSharedNonblock), "another grader measures beside this one");
        assert!(!try_lock(&path, FlockArg::LockExclusiveNonblock), "no grader's heavy work while this one measures");
        let second = gate.enter(Use::Quiet); // the same lock, taken once per process
        drop(quiet);
        assert!(!try_lock(&path, FlockArg::LockExclusiveNonblock), "still measuring");
        drop(second);
        assert!(try_lock(&path, FlockArg::LockExclusiveNonblock), "released with the last window");
        let heavy = gate.enter(Use::Heavy);
        assert!(!try_lock(&path, FlockArg::LockSharedNonblock), "no grader measures beside heavy work");
        drop(heavy);
        assert!(try_lock(&path, FlockArg::LockSharedNonblock));
    }
}
