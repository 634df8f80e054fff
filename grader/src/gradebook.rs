//! `grader gradebook DIR...`: grade many student checkouts into one CSV.
//!
//! Every submission is graded by a grader process of its own
//! (`grader --submission DIR --format json`), in a scratch workspace of its
//! own, with a deadline. What one submission does — not compile, hang, fork,
//! crash its grader — costs only its own row: its grader is stopped
//! (SIGTERM, then SIGKILL for its whole process group) and every program it
//! had started is found by its `IPC_LAB_TOKEN` and killed.
//!
//! Submissions are graded `-j` at a time. Their timing checks never overlap
//! with anything else: the graders share one CPU lock ([`crate::cpu_lock`]).
//!
//! With `--shard I/N` only the I-th of N parts is graded ([`crate::shard`]);
//! every gradebook folder gets a manifest (`shard.json`) so that
//! `gradebook-merge` can put the parts together.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde::Deserialize;

use crate::cli::GradebookArgs;
use crate::exercises;
use crate::harness::{contain, spawn};
use crate::shard::{Graded, Grader, Manifest, Shard};

/// A submission folder without `exercises/` that holds this file could not
/// be fetched: its first line is the reason, shown as the row's note
/// (`instructors/roster.py fetch` writes it for a failed clone, an empty
/// repository or no commit before the deadline).
pub const FETCH_ERROR: &str = ".gradebook-error";

/// How long a grader asked to stop (SIGTERM) gets to clean up after itself.
const GRACE: Duration = Duration::from_secs(10);

/// One submission's line in the gradebook.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    /// Score per exercise id; missing when the submission was not graded.
    scores: BTreeMap<String, u32>,
    total: u32,
    max: u32,
    status: &'static str,
    note: String,
    seconds: f64,
}

/// The parts of a JSON report the gradebook reads.
#[derive(Deserialize)]
struct JsonReport {
    score: u32,
    max_score: u32,
    exercises: Vec<JsonExercise>,
}

#[derive(Deserialize)]
struct JsonExercise {
    id: String,
    score: u32,
    #[serde(default)]
    build_error: Option<String>,
}

/// Grade every submission; `Ok(true)` when every one was graded (whatever
/// its score), `Ok(false)` when some timed out or their grader failed.
pub fn run(root: &Path, args: &GradebookArgs, time_scale: f64) -> Result<bool, String> {
    let all = exercises::all();
    for id in &args.exercises {
        if !all.iter().any(|e| e.id == id) {
            let known: Vec<&str> = all.iter().map(|e| e.id).collect();
            return Err(format!("unknown exercise `{id}` (known: {})", known.join(", ")));
        }
    }
    let ids: Vec<String> = all
        .iter()
        .filter(|e| args.exercises.is_empty() || args.exercises.iter().any(|id| id == e.id))
        .map(|e| e.id.to_string())
        .collect();
    if args.jobs == 0 {
        return Err("-j must be at least 1".into());
    }
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?.unwrap_or(Shard::ALL);
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in &args.submissions {
        let meta = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !meta.is_dir() {
            eprintln!("gradebook: skipping {}: not a directory", dir.display());
            continue;
        }
        dirs.push(dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?);
    }
    if dirs.is_empty() {
        return Err("no submission folder to grade".into());
    }
    // Named in path order, so that a name (`alice-2`) and with it the
    // shard a submission falls into do not depend on the argument order.
    dirs.sort();
    let mut subs: Vec<(String, PathBuf)> = Vec::new();
    for dir in dirs {
        let name = unique_name(&dir, &subs);
        subs.push((name, dir));
    }
    let class_size = subs.len();
    let subs = shard.pick(subs, |(name, _)| name);
    fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let out = args.out.canonicalize().map_err(|e| format!("{}: {e}", args.out.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the grader's own executable: {e}"))?;

    if shard != Shard::ALL {
        eprintln!("gradebook: shard {shard}: {} of {class_size} submissions", subs.len());
    }
    if subs.iter().any(|(_, dir)| fetch_error(dir).is_none()) {
        eprintln!("gradebook: preparing the build cache (compiled once, copied into every submission)…");
        crate::submission::warm_target(root);
    }

    let timeout = Duration::from_secs_f64(args.timeout as f64 * time_scale);
    let started = Instant::now();
    let queue = Mutex::new(subs.iter().collect::<std::collections::VecDeque<_>>());
    let rows = Mutex::new(Vec::new());
    let total = subs.len();
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(total) {
            s.spawn(|| loop {
                let Some((name, dir)) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else { break };
                let job = Submission { exe: &exe, root, out: &out, name, dir, ids: &ids, time_scale, timeout };
                let row = job.grade();
                let mut rows = rows.lock().unwrap_or_else(|p| p.into_inner());
                rows.push(row.clone());
                eprintln!(
                    "gradebook: [{}/{total}] {name}: {}/{} {} ({:.1} s){}",
                    rows.len(),
                    row.total,
                    row.max,
                    row.status,
                    row.seconds,
                    if row.note.is_empty() { String::new() } else { format!(" — {}", row.note) }
                );
            });
        }
    });
    let mut rows = rows.into_inner().unwrap_or_else(|p| p.into_inner());
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let csv_path = out.join("gradebook.csv");
    write_csv(&csv_path, &ids, &rows).map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    Manifest {
        grader: Grader::this(root),
        exercises: all.iter().filter(|e| ids.iter().any(|id| id == e.id)).map(Graded::of).collect(),
        time_scale,
        shard,
        total: class_size,
        submissions: rows.iter().map(|r| r.name.clone()).collect(),
    }
    .write(&out)?;
    print!("{}", table(&rows));
    println!(
        "Wrote {} ({} submissions) and one JSON report per submission in {:.1} s.",
        csv_path.display(),
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(rows.iter().all(|r| r.status == "graded"))
}

/// The folder's name, made safe for a file name and unique in the gradebook.
fn unique_name(dir: &Path, taken: &[(String, PathBuf)]) -> String {
    let base: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "submission".into())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    let base = if base.is_empty() || base.starts_with('.') { format!("s{base}") } else { base };
    let mut name = base.clone();
    let mut n = 2;
    while taken.iter().any(|(t, _)| *t == name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

struct Submission<'a> {
    exe: &'a Path,
    root: &'a Path,
    out: &'a Path,
    name: &'a str,
    dir: &'a Path,
    ids: &'a [String],
    time_scale: f64,
    timeout: Duration,
}

impl Submission<'_> {
    fn grade(&self) -> Row {
        let started = Instant::now();
        let json = self.out.join(format!("{}.json", self.name));
        let log = self.out.join(format!("{}.log", self.name));
        let _ = fs::remove_file(&json);
        let mut row = Row {
            name: self.name.to_string(),
            scores: BTreeMap::new(),
            total: 0,
            max: 0,
            status: "error",
            note: String::new(),
            seconds: 0.0,
        };
        if let Some(why) = fetch_error(self.dir) {
            let _ = fs::write(&log, format!("{why}\n"));
            row.note = why;
            return row;
        }
        match self.run_grader(&json, &log) {
            Err(e) => row.note = e,
            Ok(None) => {
                row.status = "timeout";
                row.note = format!("not done after {} s; stopped", self.timeout.as_secs());
            }
            Ok(Some(status)) => match status.code() {
                Some(0 | 1) => match read_report(&json) {
                    Ok(report) => {
                        row.status = "graded";
                        row.total = report.score;
                        row.max = report.max_score;
                        let broken: Vec<&str> = report
                            .exercises
                            .iter()
                            .filter(|e| e.build_error.is_some())
                            .map(|e| e.id.as_str())
                            .collect();
                        if !broken.is_empty() {
                            row.note = format!("did not build: {}", broken.join(", "));
                        }
                        row.scores = report.exercises.into_iter().map(|e| (e.id, e.score)).collect();
                    }
                    Err(e) => row.note = e,
                },
                Some(code) => row.note = format!("grader exit {code}: {}", last_line(&log)),
                None => {
                    let sig = status.signal().map(crate::harness::failure::signal_name).unwrap_or_default();
                    row.note = format!("grader killed by {sig}");
                }
            },
        }
        row.seconds = started.elapsed().as_secs_f64();
        row
    }

    /// Run one grader; `Ok(None)` when it had to be stopped at the deadline.
    fn run_grader(&self, json: &Path, log: &Path) -> Result<Option<ExitStatus>, String> {
        let log_file = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(self.exe);
        cmd.arg("--root")
            .arg(self.root)
            .arg("--submission")
            .arg(self.dir)
            .args(["--format", "json", "--output"])
            .arg(json)
            .args(["--time-scale", &self.time_scale.to_string()])
            .args(self.ids)
            .env(crate::cpu_lock::VAR, self.out.join(".cpu.lock"))
            .env_remove("GRADER_TIME_SCALE")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            // Its own process group, so that stopping it reaches its cargo
            // and rustc too.
            .process_group(0);
        spawn::reset_signals(&mut cmd);
        let mut child = {
            // Keep orphan reaping away from the grader until it is tracked.
            let _spawning = contain::may_spawn().ok_or("the gradebook is stopping")?;
            let child = cmd.spawn().map_err(|e| format!("cannot start the grader: {e}"))?;
            contain::track(Pid::from_raw(child.id() as i32));
            child
        };
        let pid = Pid::from_raw(child.id() as i32);
        let status = contain::wait_child_until(&mut child, Instant::now() + self.timeout);
        if status.is_none() {
            // Ask first: the grader kills its programs and its build.
            let _ = kill(pid, Signal::SIGTERM);
            if contain::wait_child_until(&mut child, Instant::now() + GRACE).is_none() {
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        contain::untrack(pid);
        // Whatever that grader left (it cannot have, unless it was killed):
        // its programs carry tokens `<its pid>-<n>`.
        contain::kill_marked(&format!("{pid}-"), Instant::now() + Duration::from_secs(10));
        Ok(status)
    }
}

/// The reason a submission could not be fetched, if its folder says so
/// (see [`FETCH_ERROR`]) and has no `exercises/` to grade.
fn fetch_error(dir: &Path) -> Option<String> {
    if dir.join("exercises").exists() {
        return None;
    }
    let text = fs::read_to_string(dir.join(FETCH_ERROR)).ok()?;
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("could not be fetched");
    Some(line.chars().take(200).collect())
}

fn read_report(path: &Path) -> Result<JsonReport, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("no report: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("unreadable report: {e}"))
}

/// The last non-empty line of a log, for the note column.
fn last_line(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)");
    line.chars().take(200).collect()
}

fn write_csv(path: &Path, ids: &[String], rows: &[Row]) -> Result<(), String> {
    let mut w = csv::Writer::from_path(path).map_err(|e| e.to_string())?;
    let mut header = vec!["submission".to_string()];
    header.extend(ids.iter().cloned());
    header.extend(["total", "max", "status", "note"].map(String::from));
    w.write_record(&header).map_err(|e| e.to_string())?;
    for r in rows {
        let mut rec = vec![r.name.clone()];
        rec.extend(ids.iter().map(|id| r.scores.get(id).map(u32::to_string).unwrap_or_default()));
        rec.extend([r.total.to_string(), r.max.to_string(), r.status.to_string(), r.note.clone()]);
        w.write_record(&rec).map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())
}

/// The gradebook for the terminal.
fn table(rows: &[Row]) -> String {
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(10).max(10);
    let mut s = format!("{:w$}  {:>9}  {:8}  note\n", "submission", "points", "status");
    for r in rows {
        let points = format!("{}/{}", r.total, r.max);
        s.push_str(&format!("{:w$}  {:>9}  {:8}  {}\n", r.name, points, r.status, r.note));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_unique() {
        let taken = vec![("alice".to_string(), PathBuf::new())];
        assert_eq!(unique_name(Path::new("/x/alice"), &taken), "alice-2");
        assert_eq!(unique_name(Path::new("/x/bob smith"), &taken), "bob_smith");
        assert_eq!(unique_name(Path::new("/x/.hidden"), &taken), "s.hidden");
    }

    #[test]
    fn a_fetch_error_is_the_note_unless_there_is_something_to_grade() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(fetch_error(dir.path()), None);
        fs::write(dir.path().join(FETCH_ERROR), "\nclone failed: repository not found\nmore\n").unwrap();
        assert_eq!(fetch_error(dir.path()).as_deref(), Some("clone failed: repository not found"));
        fs::create_dir(dir.path().join("exercises")).unwrap();
        assert_eq!(fetch_error(dir.path()), None);
    }

    #[test]
    fn csv_has_a_column_per_exercise_and_quotes_notes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.csv");
        let ids = vec!["signals".to_string(), "shm".to_string()];
        let row = Row {
            name: "alice".into(),
            scores: [("signals".to_string(), 40)].into(),
            total: 40,
            max: 200,
            status: "graded",
            note: "did not build: shm, \"x\"".into(),
            seconds: 1.0,
        };
        write_csv(&path, &ids, &[row]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "submission,signals,shm,total,max,status,note\nalice,40,,40,200,graded,\"did not build: shm, \"\"x\"\"\"\n"
        );
    }
}
