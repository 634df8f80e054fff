//! Nothing outlives a check, IPC objects included: an IPC object that a
//! check's programs leave behind fails the check, and the grader removes it.
//!
//! A process ends and is gone; an IPC object stays in the kernel until
//! someone removes it — a leaking shm program fills `/dev/shm` (RAM) by one
//! object per run. So each check is a [`Window`]: opened before its first
//! program starts, closed after its last one is dead (every `Program` of it
//! dropped). At the close, the objects that exist and are new — not there
//! when the grader started, not judged before — are attributed, and those
//! that its own programs made are reported and removed.
//!
//! # What is observed ([`objects`])
//!
//! POSIX shared memory and named semaphores (`/dev/shm`, `sem.*`), POSIX
//! message queues where an `mqueue` file system is mounted (where none is,
//! queues cannot be listed and are not checked: no grader-made mount), and
//! System V shared memory, semaphore sets and message queues
//! (`/proc/sysvipc`). Only objects created by a uid the programs run as
//! ([`super::runas::program_uids`]) are considered. A FIFO or file a program leaves in its working directory
//! goes with that directory (every program gets a private temporary one);
//! one made elsewhere is not looked for.
//!
//! # Whose is it ([`attribution`])
//!
//! Checks run in parallel, and other graders (`cargo test`, `gradebook`)
//! and the user's own programs run beside them, all as one uid. An object
//! that a process other than this grader's programs has open or mapped, or
//! whose recorded pid is such a process, is never touched; one that a
//! running program of this grader uses, or a System V segment still
//! attached, is judged later. Otherwise, in this order:
//!
//! 1. **A recorded pid** — System V shm `cpid`/`lpid`, a message queue's
//!    last sender/receiver, a semaphore's last operator (`GETPID`) — that is
//!    a program of a check (the leaders it started, and descendants still
//!    running when a leader had exited), within that check's time: that
//!    check's. Certain, but for System V sets and queues only once a program
//!    operated on them.
//! 2. **A program's pid in the name** (`/shm-4242`), the usual way to make a
//!    name unique per run: that check's.
//! 3. **The time it was made** — a file's birth time (tmpfs keeps one), else
//!    the System V / mqueue `ctime` in whole seconds: the checks whose time
//!    covers it. All of one exercise (they run the same binary): the one
//!    that ends last, once all have ended. Of different exercises, or while
//!    another grader ran checks (see [`neighbours`]): nobody is blamed, and
//!    the object is removed at exit. This is the uncertain rule: a process
//!    outside any grader that makes an object with the same uid during a
//!    check, and closes it, is taken for the check's (and System V times in
//!    whole seconds make overlaps of parallel checks common, so sets and
//!    queues nobody operated on are mostly not blamed on any check).
//!
//! At exit ([`sweep_at_exit`]) every object still there that rules 1–3 tie
//! to some check of this grader is removed (an unclear one only if no other
//! grader is left that might own it), and named on stderr: no grading
//! leaves an object behind.

mod attribution;
mod neighbours;
mod objects;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use nix::unistd::{getpid, Pid};

use super::failure::{Failure, Kind, Step};
use super::leash::TOKEN_VAR;
use attribution::{attribute, Span, Verdict};
use objects::{Id, Life, Object};

/// Everything the grader knows about IPC objects and its checks.
struct Book {
    /// What existed when the first check began: never touched.
    baseline: HashSet<Id>,
    /// Judged not to be this grader's: never touched.
    foreign: HashSet<Id>,
    /// Blamed on a check (and removed, or tried).
    claimed: HashSet<Id>,
    spans: Vec<Span>,
    /// Per span, what the lock file showed at its start.
    first_look: Vec<Option<neighbours::Look>>,
    seat: neighbours::Seat,
}

static BOOK: Mutex<Option<Book>> = Mutex::new(None);

fn book() -> MutexGuard<'static, Option<Book>> {
    BOOK.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// The window of the check running on this thread. A check runs on one
    /// thread, and so do its programs (`Program` is not `Send`).
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// One check's time, from before its first program starts until after its
/// last one is dead.
pub struct Window {
    index: usize,
    closed: bool,
}

impl Window {
    /// Open before the check starts anything.
    pub fn open(exercise: &str, check: &str) -> Window {
        let mut guard = book();
        let b = guard.get_or_insert_with(|| Book {
            baseline: objects::snapshot().into_iter().map(|o| o.id).collect(),
            foreign: HashSet::new(),
            claimed: HashSet::new(),
            spans: Vec::new(),
            first_look: Vec::new(),
            seat: neighbours::Seat::take(),
        });
        let index = b.spans.len();
        b.first_look.push(b.seat.look());
        b.spans.push(Span {
            exercise: exercise.to_string(),
            check: check.to_string(),
            start: SystemTime::now(),
            end: None,
            solo: None,
            pids: Vec::new(),
        });
        CURRENT.set(Some(index));
        Window { index, closed: false }
    }

    /// Close once every program of the check is dead: objects its programs
    /// left behind are removed and turn `outcome` into a failure (or are
    /// added to the failure it already is). A skipped check stays skipped.
    pub fn close(mut self, outcome: Step) -> Step {
        self.end();
        let mut leaks = judge(Some(self.index));
        leaks.sort_by_key(|(o, _)| o.made.earliest);
        let removed: Vec<(Object, Result<bool, String>)> = leaks
            .into_iter()
            .map(|(o, _)| {
                let removed = objects::remove(&o);
                (o, removed)
            })
            .collect();
        if removed.is_empty() {
            return outcome;
        }
        let names = self.names();
        blame(outcome, &removed, &names)
    }

    fn end(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        CURRENT.set(None);
        if let Some(b) = book().as_mut() {
            let last = b.seat.look();
            let solo = neighbours::alone(b.first_look[self.index], last);
            let span = &mut b.spans[self.index];
            span.end = Some(SystemTime::now());
            span.solo = Some(solo);
        }
    }

    /// Pid → program name, for messages.
    fn names(&self) -> HashMap<i32, String> {
        book().as_ref().map(|b| b.spans[self.index].pids.iter().cloned().collect()).unwrap_or_default()
    }
}

impl Drop for Window {
    /// A window left without [`Window::close`] still ends, so that objects
    /// of its time are not waited for forever.
    fn drop(&mut self) {
        self.end();
    }
}

/// Record a program of the check running on this thread (its leader when it
/// starts, descendants seen when it is cleaned up).
pub fn note_pid(pid: Pid, name: &str) {
    let Some(index) = CURRENT.get() else { return };
    if let Some(b) = book().as_mut() {
        b.spans[index].pids.push((pid.as_raw(), name.to_string()));
    }
}

/// At exit, after every program is dead: remove every object still there
/// that some check of this grader made, and name them on stderr.
pub fn sweep_at_exit() {
    {
        let mut guard = book();
        let Some(b) = guard.as_mut() else { return };
        let now = SystemTime::now();
        for span in b.spans.iter_mut().filter(|s| s.end.is_none()) {
            span.end = Some(now);
            span.solo = Some(false);
        }
        b.seat.leave();
    }
    let left = judge(None);
    if left.is_empty() {
        return;
    }
    const LISTED: usize = 5;
    let spans = book().as_ref().map(|b| b.spans.clone()).unwrap_or_default();
    let mut lines = Vec::new();
    for (o, verdict) in &left {
        let mut line = o.describe();
        if let Verdict::Made(s) = verdict {
            line.push_str(&format!(" (from {}/{})", spans[*s].exercise, spans[*s].check));
        }
        match objects::remove(o) {
            Ok(true) => lines.push(line),
            Ok(false) => {}
            Err(e) => lines.push(format!("{line} (could not remove it: {e})")),
        }
    }
    if lines.is_empty() {
        return;
    }
    let n = lines.len();
    if n > LISTED {
        lines.truncate(LISTED);
        lines.push(format!("… {} more", n - LISTED));
    }
    eprintln!(
        "grader: removed {n} IPC object(s) made during its checks that no single check could be blamed for \
         (still in use when the check ended, made while checks of other programs or other graders ran): {}",
        lines.join(", ")
    );
}

/// The new objects that the check of span `closing` made (claimed for it),
/// or with `None` (at exit) every new object some check of this grader made
/// and nobody else may own.
fn judge(closing: Option<usize>) -> Vec<(Object, Verdict)> {
    let uids = super::runas::program_uids();
    let all = objects::snapshot();
    let mut new: Vec<Object> = {
        let mut guard = book();
        let Some(b) = guard.as_mut() else { return Vec::new() };
        let mut new = Vec::new();
        for o in all.into_iter().filter(|o| uids.contains(&o.uid)) {
            if b.baseline.contains(&o.id) || b.foreign.contains(&o.id) || b.claimed.contains(&o.id) {
                continue;
            }
            // Made while no check ran: judged at once, without a closer look.
            if b.spans.iter().any(|s| s.covers(&o.made)) {
                new.push(o);
            } else {
                b.foreign.insert(o.id);
            }
        }
        new
    };
    if new.is_empty() {
        return Vec::new();
    }
    // The costly part, outside the lock: who has what open, who runs.
    let token = format!("{TOKEN_VAR}={}-", getpid());
    objects::look_closer(&mut new, &token);
    let lives: HashMap<i32, Life> =
        new.iter().flat_map(|o| o.pids.iter()).map(|&p| (p, objects::life(p, &token))).collect();
    let others = closing.is_none() && neighbours::others_here();

    let mut guard = book();
    let Some(b) = guard.as_mut() else { return Vec::new() };
    let mut mine = Vec::new();
    for o in new {
        if b.claimed.contains(&o.id) {
            continue; // another check closing at the same time took it
        }
        let verdict = attribute(&o, &b.spans, |p| lives.get(&p).copied().unwrap_or(Life::Gone));
        let take = match (verdict, closing) {
            (Verdict::Foreign, _) => {
                b.foreign.insert(o.id.clone());
                false
            }
            (Verdict::Made(s), Some(c)) => s == c,
            (Verdict::Made(_), None) | (Verdict::Unclear { other_grader: false }, None) => true,
            (Verdict::Unclear { other_grader: true }, None) => !others,
            (Verdict::Unclear { .. } | Verdict::Later, _) => false,
        };
        if take {
            b.claimed.insert(o.id.clone());
            mine.push((o, verdict));
        }
    }
    mine
}

/// Turn the leaks into the check's failure: its own if it passed, added to
/// the one it has otherwise.
fn blame(outcome: Step, leaks: &[(Object, Result<bool, String>)], names: &HashMap<i32, String>) -> Step {
    const LISTED: usize = 5;
    let mut items: Vec<String> = leaks
        .iter()
        .take(LISTED)
        .map(|(o, removed)| {
            let by =
                o.pids.iter().copied().chain(attribution::numbers(&o.name)).find_map(|p| names.get(&p).map(|n| (p, n)));
            let mut s = o.describe();
            if let Some((pid, name)) = by {
                s.push_str(&format!(" (made by {name}, pid {pid})"));
            }
            if let Err(e) = removed {
                s.push_str(&format!(" (the grader could not remove it: {e})"));
            }
            s
        })
        .collect();
    if leaks.len() > LISTED {
        items.push(format!("… {} more", leaks.len() - LISTED));
    }
    let what =
        format!("{} IPC object(s) still there after the check's programs had ended: {}", leaks.len(), items.join(", "));
    let sorts: BTreeMap<_, _> = leaks.iter().map(|(o, _)| (o.sort, o.sort.release())).collect();
    let expected = format!(
        "no IPC object left once the program has exited: {}",
        sorts.values().copied().collect::<Vec<_>>().join("; ")
    );
    match outcome {
        Ok(()) => Err(Failure::new(Kind::LeftBehind, format!("{what}; the grader removed them"), expected).diagnosed(
            "an IPC object lives in the kernel until it is removed, not until the program ends: every run leaves \
             one more (`ls /dev/shm`, `ipcs`)",
            "remove it as soon as every process that needs it has it open or mapped. An anonymous \
             `mmap(MAP_SHARED | MAP_ANONYMOUS)` before `fork`, or `memfd_create`, needs no cleanup at all.",
        )),
        Err(f) if f.kind == Kind::Skipped => Err(f),
        Err(mut f) => {
            f.got.push_str(&format!("; besides, {what} (removed by the grader)"));
            Err(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::objects::{Held, Made, Sort};
    use super::*;

    fn leak(name: &str) -> (Object, Result<bool, String>) {
        let o = Object {
            id: Id::File { path: PathBuf::from(format!("/dev/shm{name}")), ino: 1 },
            sort: Sort::PosixShm,
            name: name.to_string(),
            uid: 0,
            made: Made::fine(SystemTime::now()),
            pids: Vec::new(),
            held: Held::No,
            size: 4096,
        };
        (o, Ok(true))
    }

    #[test]
    fn a_passing_check_fails_naming_the_object_its_maker_and_the_release_call() {
        let names = HashMap::from([(4242, "shm-handshake".to_string())]);
        let f = blame(Ok(()), &[leak("/shm-handshake-4242")], &names).unwrap_err();
        assert_eq!(f.kind, Kind::LeftBehind);
        assert!(f.got.contains("POSIX shared memory object `/shm-handshake-4242` (made by shm-handshake, pid 4242)"));
        assert!(f.got.ends_with("the grader removed them"), "{}", f.got);
        assert!(f.expected.contains("`shm_unlink`"), "{}", f.expected);
    }

    #[test]
    fn a_failing_check_keeps_its_failure_and_a_skipped_one_stays_skipped() {
        let wrong = Failure::wrong("the line `x`", "`y`");
        let f = blame(Err(wrong.clone()), &[leak("/a")], &HashMap::new()).unwrap_err();
        assert_eq!((f.kind, f.expected.as_str()), (wrong.kind, wrong.expected.as_str()));
        assert!(f.got.starts_with("the line `x`; besides, 1 IPC object(s)"), "{}", f.got);
        let skipped = Failure::skipped("no IPv6");
        assert_eq!(blame(Err(skipped.clone()), &[leak("/a")], &HashMap::new()), Err(skipped));
    }

    #[test]
    fn many_leaks_are_counted_not_all_listed() {
        let leaks: Vec<_> = (0..50).map(|i| leak(&format!("/x{i}"))).collect();
        let f = blame(Ok(()), &leaks, &HashMap::new()).unwrap_err();
        assert!(f.got.starts_with("50 IPC object(s)"), "{}", f.got);
        assert!(f.got.contains("`/x4`, … 45 more"), "{}", f.got);
    }

    #[test]
    fn a_fifo_left_in_the_working_directory_goes_with_it() {
        // Why FIFOs need no sweep: every program runs in a private
        // temporary directory, removed with everything in it.
        let dir = tempfile::Builder::new().prefix("ipc-lab-").tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        drop(dir);
        assert!(std::fs::symlink_metadata(&fifo).is_err());
    }
}
