//! The last run's results, remembered under `target/ipc-lab/last-run.json`
//! so that `--list` can show where a student stands.
//!
//! The file is merged per check: `cargo grade signals --check sigint`
//! updates only those checks and keeps what earlier runs found about the
//! rest. Several graders may run at once (a `--watch` in one terminal, the
//! test suite in another), so the read-merge-write holds an exclusive
//! `flock` on a lock file beside it, and the new file is written aside and
//! renamed into place: a reader never sees half a file, and no run's update
//! is lost.
//!
//! Reading never fails: a missing, unreadable, corrupt or outdated file is
//! "not graded yet", never an error of `--list`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::results::{Report, Status};

/// Bumped when the file's meaning changes; a file of another version is
/// ignored (and replaced by the next run).
const VERSION: u32 = 1;

/// What the last run of one check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub status: Status,
    pub points: u32,
    pub max_points: u32,
    /// When it was graded, in seconds since the Unix epoch.
    pub when: u64,
}

/// What the last gradings of the workspace's exercises found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    version: u32,
    /// Exercise id → check id → its last result.
    exercises: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl Default for LastRun {
    fn default() -> Self {
        LastRun { version: VERSION, exercises: BTreeMap::new() }
    }
}

impl LastRun {
    /// The file's contents, or `None` when they are not a last run of this
    /// version.
    pub fn parse(text: &str) -> Option<LastRun> {
        serde_json::from_str::<LastRun>(text).ok().filter(|l| l.version == VERSION)
    }

    /// The last result of `check` of `exercise`, if it was graded.
    pub fn get(&self, exercise: &str, check: &str) -> Option<&Entry> {
        self.exercises.get(exercise)?.get(check)
    }

    /// Take over every check `report` graded (graded at `now`); keep the
    /// others as they were.
    pub fn merge(&mut self, report: &Report, now: u64) {
        for ex in &report.exercises {
            let checks = self.exercises.entry(ex.id.clone()).or_default();
            for c in &ex.checks {
                let entry = Entry { status: c.status, points: c.points, max_points: c.max_points, when: now };
                checks.insert(c.id.clone(), entry);
            }
        }
    }
}

/// `<root>/target/ipc-lab/last-run.json`.
pub fn path(root: &Path) -> PathBuf {
    root.join("target").join("ipc-lab").join("last-run.json")
}

/// The last run of the workspace at `root`, if one was remembered and can
/// be read.
pub fn load(root: &Path) -> Option<LastRun> {
    LastRun::parse(&fs::read_to_string(path(root)).ok()?)
}

/// Remember `report` as the last run of the workspace at `root`. A failure
/// to write is a warning: the grading itself stands.
pub fn remember(root: &Path, report: &Report) {
    if let Err(e) = try_remember(root, report) {
        eprintln!("grader: warning: cannot remember this run in {}: {e}", path(root).display());
    }
}

fn try_remember(root: &Path, report: &Report) -> io::Result<()> {
    let file = path(root);
    let dir = file.parent().expect("a folder");
    fs::create_dir_all(dir)?;
    // Held until the new file is in place. Only other graders take it,
    // each for a read and a small write, so this wait is short.
    let lock = File::options().create(true).truncate(false).write(true).open(dir.join("last-run.lock"))?;
    let _lock = Flock::lock(lock, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
    let mut last = load(root).unwrap_or_default();
    last.merge(report, now());
    let mut json = serde_json::to_vec_pretty(&last).map_err(io::Error::other)?;
    json.push(b'\n');
    crate::atomic::write(&file, &json)
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `when` as people say it, seen from `now`: "just now", "5 minutes ago".
pub fn ago(when: u64, now: u64) -> String {
    let secs = now.saturating_sub(when);
    let (n, unit) = match secs {
        0..60 => return "just now".into(),
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;
    use crate::results::CheckResult;
    use crate::results::Kind;

    fn check(id: &str, status: Status, points: u32) -> CheckResult {
        fixtures::check(id, status, points, Kind::WrongOutput, "the line `x`", &[])
    }

    fn report(exercise: &str, checks: Vec<CheckResult>) -> Report {
        fixtures::report(vec![fixtures::exercise(exercise, &[], checks)])
    }

    #[test]
    fn merging_updates_only_the_graded_checks() {
        let mut last = LastRun::default();
        last.merge(
            &report("signals", vec![check("echo", Status::Failed, 10), check("sigint-idle", Status::Failed, 15)]),
            100,
        );
        last.merge(&report("shm", vec![check("ready", Status::Error, 5)]), 150);
        last.merge(&report("signals", vec![check("sigint-idle", Status::Passed, 15)]), 200);

        let entry = |ex, c| last.get(ex, c).cloned();
        assert_eq!(
            entry("signals", "echo"),
            Some(Entry { status: Status::Failed, points: 0, max_points: 10, when: 100 })
        );
        assert_eq!(
            entry("signals", "sigint-idle"),
            Some(Entry { status: Status::Passed, points: 15, max_points: 15, when: 200 })
        );
        assert_eq!(entry("shm", "ready"), Some(Entry { status: Status::Error, points: 0, max_points: 5, when: 150 }));
        assert_eq!(entry("signals", "eof"), None);
    }

    #[test]
    fn a_merged_file_reads_back_the_same() {
        let mut last = LastRun::default();
        last.merge(&report("signals", vec![check("echo", Status::Skipped, 10)]), 7);
        let text = serde_json::to_string(&last).unwrap();
        assert_eq!(LastRun::parse(&text), Some(last));
    }

    #[test]
    fn corrupt_or_outdated_files_are_not_a_last_run() {
        assert_eq!(LastRun::parse(""), None);
        assert_eq!(LastRun::parse("{not json"), None);
        assert_eq!(LastRun::parse(r#"{"version": 999, "exercises": {}}"#), None);
        assert_eq!(LastRun::parse(r#"{"version": 1, "exercises": {"signals": {"echo": {"status": "odd"}}}}"#), None);
        // A check that no longer exists is harmless: nobody asks for it.
        let old = r#"{"version": 1, "exercises": {"signals": {"gone": {"status": "passed", "points": 5, "max_points": 5, "when": 1}}}}"#;
        assert!(LastRun::parse(old).is_some_and(|l| l.get("signals", "echo").is_none()));
    }

    #[test]
    fn remember_merges_into_the_file_and_load_tolerates_garbage() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(load(root.path()), None, "missing file");
        remember(root.path(), &report("signals", vec![check("echo", Status::Failed, 10)]));
        remember(root.path(), &report("signals", vec![check("eof", Status::Passed, 10)]));
        let last = load(root.path()).expect("remembered");
        assert_eq!(last.get("signals", "echo").map(|e| e.status), Some(Status::Failed));
        assert_eq!(last.get("signals", "eof").map(|e| e.status), Some(Status::Passed));
        fs::write(path(root.path()), "\0garbage").unwrap();
        assert_eq!(load(root.path()), None);
        // The next run starts the file afresh.
        remember(root.path(), &report("signals", vec![check("eof", Status::Failed, 10)]));
        assert_eq!(load(root.path()).and_then(|l| l.get("signals", "eof").map(|e| e.status)), Some(Status::Failed));
    }

    #[test]
    fn ago_reads_like_speech() {
        assert_eq!(ago(1000, 1000), "just now");
        assert_eq!(ago(1000, 1059), "just now");
        assert_eq!(ago(1000, 1060), "1 minute ago");
        assert_eq!(ago(1000, 1000 + 5 * 60 + 30), "5 minutes ago");
        assert_eq!(ago(0, 2 * 3600), "2 hours ago");
        assert_eq!(ago(0, 86_400), "1 day ago");
        assert_eq!(ago(2000, 1000), "just now", "a clock that went back");
    }
}
