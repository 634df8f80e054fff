//! `grader gradebook DIR...`: grade many student checkouts into one CSV.
//!
//! Every submission is graded by a grader process of its own
//! (`grader --submission DIR --format json`), in a scratch workspace of its
//! own and a session of its own, with a deadline. What one submission does
//! — not compile, hang, fork, crash, stop or kill its grader — costs only
//! its own row: a grader past its deadline is stopped (SIGTERM, then
//! SIGKILL for its whole process group), a grader that was stopped
//! (SIGSTOP, state `T` in `/proc`) is killed at once, and every program it
//! had started is found by its `IPC_LAB_TOKEN`, its cgroup or its uid, and
//! killed. The CSV is rewritten after every row, so it exists however the
//! gradebook ends.
//!
//! Submissions are graded `-j` at a time. Their timing checks never overlap
//! with anything else: the graders share one CPU lock ([`crate::cpu_lock`]).
//! Time a grader spends waiting for that lock is time other submissions
//! use; it does not count against its deadline.
//!
//! Each grader prints its JSON report on its stdout, a pipe only the
//! gradebook reads: no file a student's program could find (in the
//! grader's command line) and rewrite. The gradebook writes the report
//! and the CSV itself, each in one step ([`crate::atomic::write`]).
//!
//! With `--shard I/N` only the I-th of N parts is graded ([`crate::shard`]);
//! every gradebook folder gets a manifest (`shard.json`) so that
//! `gradebook-merge` can put the parts together.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{kill, killpg, Signal};
use serde::Deserialize;

use crate::cli::GradebookArgs;
use crate::exercises;
use crate::harness::deadline::{self, Deadline};
use crate::harness::reaper::{self, SpawnError, Tracked};
use crate::harness::{leash, procfs, spawn};
use crate::shard::{Graded, Grader, Manifest, Shard};

/// A submission folder without `exercises/` that holds this file could not
/// be fetched: its first line is the reason, shown as the row's note
/// (`instructors/roster.py fetch` writes it for a failed clone, an empty
/// repository or no commit before the deadline).
pub const FETCH_ERROR: &str = ".gradebook-error";

/// How long a grader asked to stop (SIGTERM) gets to clean up after itself.
const GRACE: Duration = Duration::from_secs(10);

/// Most bytes of a JSON report read from a grader (a full report of every
/// check is well under 1 MiB).
const MAX_REPORT: u64 = 64 << 20;

/// How often a running grader is looked at in `/proc`: whether it is
/// stopped, whether it waits for the CPU lock. Neither has an event to
/// wait for; the grader's exit has one and ends the wait at once.
const LOOK: Duration = Duration::from_millis(100);

/// Looks in a row that must find a grader stopped before it is killed: a
/// grader never stops itself, but a program stopping and at once
/// continuing it is not worth a row.
const STOPPED_LOOKS: u32 = 3;

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

impl JsonExercise {
    /// Why the submission's crate was refused (it reached outside its
    /// folder), if it was.
    fn refused(&self) -> Option<&str> {
        self.build_error.as_deref().filter(|e| e.starts_with(crate::submission::REFUSED))
    }
}

/// Grade every submission; `Ok(true)` when every one was graded (whatever
/// its score), `Ok(false)` when some timed out or their grader failed.
/// `run_as` is the `--run-as` given, passed on to every grader.
pub fn run(root: &Path, args: &GradebookArgs, time_scale: f64, run_as: Option<&str>) -> Result<bool, String> {
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

    // The CPU lock: only the graders (root, or the instructor) may open it.
    // A program that could would hold every submission's timing checks.
    let lock = out.join(".cpu.lock");
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock)
        .map_err(|e| format!("cannot create {}: {e}", lock.display()))?;

    let timeout = Duration::from_secs_f64(args.timeout as f64 * time_scale);
    let started = Instant::now();
    let queue = Mutex::new(subs.iter().collect::<std::collections::VecDeque<_>>());
    let rows = Mutex::new(Vec::new());
    let total = subs.len();
    let csv_path = out.join("gradebook.csv");
    let names: Vec<&str> = subs.iter().map(|(name, _)| name.as_str()).collect();
    // A CSV with every submission pending, at once: one exists from now on.
    write_csv(&csv_path, &ids, &with_pending(&[], &names))
        .map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(total) {
            s.spawn(|| loop {
                let Some((name, dir)) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else { break };
                let job = Submission {
                    exe: &exe,
                    root,
                    out: &out,
                    lock: &lock,
                    name,
                    dir,
                    ids: &ids,
                    time_scale,
                    timeout,
                    run_as,
                };
                let row = catch_unwind(AssertUnwindSafe(|| job.grade())).unwrap_or_else(|_| Row {
                    note: "the gradebook failed on it (a panic, see above)".into(),
                    ..Row::pending(name)
                });
                let mut rows = rows.lock().unwrap_or_else(|p| p.into_inner());
                rows.push(row.clone());
                // Under the lock: one writer of the CSV at a time. A CSV
                // that cannot be written now may still be at the end.
                let _ = write_csv(&csv_path, &ids, &with_pending(&rows, &names));
                // Progress only: a closed stderr must not end the run.
                let _ = writeln!(
                    std::io::stderr(),
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
    let rows = with_pending(&rows.into_inner().unwrap_or_else(|p| p.into_inner()), &names);
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
    let mut stdout = std::io::stdout();
    let _ = write!(stdout, "{}", table(&rows));
    let _ = writeln!(
        stdout,
        "Wrote {} ({} submissions) and one JSON report per submission in {:.1} s.",
        csv_path.display(),
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(rows.iter().all(|r| r.status == "graded"))
}

/// `done`, and a pending row for every name of `names` not among them,
/// sorted by name.
fn with_pending(done: &[Row], names: &[&str]) -> Vec<Row> {
    let mut rows = done.to_vec();
    rows.extend(names.iter().filter(|n| !done.iter().any(|r| r.name == **n)).map(|n| Row::pending(n)));
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
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

impl Row {
    /// A submission not graded (yet): the row of the CSV while the
    /// gradebook runs, and after it if it was killed.
    fn pending(name: &str) -> Row {
        Row {
            name: name.to_string(),
            scores: BTreeMap::new(),
            total: 0,
            max: 0,
            status: "pending",
            note: "not graded: the gradebook did not get to it".into(),
            seconds: 0.0,
        }
    }
}

struct Submission<'a> {
    exe: &'a Path,
    root: &'a Path,
    out: &'a Path,
    /// The CPU lock file all graders share.
    lock: &'a Path,
    name: &'a str,
    dir: &'a Path,
    ids: &'a [String],
    time_scale: f64,
    timeout: Duration,
    run_as: Option<&'a str>,
}

/// How a grader's run ended.
enum Ended {
    Exited(ExitStatus),
    /// Past its deadline (`waited`: the time added for waiting on the CPU
    /// lock); it was stopped.
    TimedOut {
        waited: Duration,
    },
    /// Seen stopped (SIGSTOP) and killed.
    Stopped,
}

impl Submission<'_> {
    fn grade(&self) -> Row {
        let started = Instant::now();
        let json = self.out.join(format!("{}.json", self.name));
        let log = self.out.join(format!("{}.log", self.name));
        let _ = fs::remove_file(&json);
        let mut row = Row { status: "error", note: String::new(), ..Row::pending(self.name) };
        if let Some(why) = fetch_error(self.dir) {
            let _ = fs::write(&log, format!("{why}\n"));
            row.note = why;
            return row;
        }
        let mut stdout = Vec::new();
        match self.run_grader(&log, &mut stdout) {
            Err(e) => row.note = e,
            Ok(Ended::TimedOut { waited }) => {
                row.status = "timeout";
                row.note = format!("not done after {} s; stopped", self.timeout.as_secs());
                if !waited.is_zero() {
                    row.note.push_str(&format!(
                        " (plus {:.0} s it waited for other submissions' timing checks)",
                        waited.as_secs_f64()
                    ));
                }
            }
            Ok(Ended::Stopped) => {
                row.note = "its grader was stopped (SIGSTOP — by one of its programs?) and was killed".into();
            }
            Ok(Ended::Exited(status)) => match status.code() {
                Some(0 | 1) => match read_report(&stdout) {
                    Ok(report) => {
                        if let Err(e) = crate::atomic::write(&json, &stdout) {
                            eprintln!("gradebook: cannot write {}: {e}", json.display());
                        }
                        row.status = "graded";
                        row.total = report.score;
                        row.max = report.max_score;
                        let broken: Vec<&str> = report
                            .exercises
                            .iter()
                            .filter(|e| e.build_error.is_some() && e.refused().is_none())
                            .map(|e| e.id.as_str())
                            .collect();
                        if !broken.is_empty() {
                            row.note = format!("did not build: {}", broken.join(", "));
                        }
                        // Reaching for files outside the crate is not a
                        // student's build error: the row needs a look.
                        if let Some(why) = report.exercises.iter().find_map(JsonExercise::refused) {
                            row.status = "error";
                            row.note = crate::text::escape(why.strip_prefix("error: ").unwrap_or(why)).into_owned();
                        }
                        row.scores = report.exercises.into_iter().map(|e| (e.id, e.score)).collect();
                    }
                    Err(e) => row.note = e,
                },
                Some(code) => row.note = format!("grader exit {code}: {}", crate::text::escape(&last_line(&log))),
                None => {
                    let sig = status.signal().map(crate::harness::failure::signal_name).unwrap_or_default();
                    row.note = format!("grader killed by {sig}");
                }
            },
        }
        row.seconds = started.elapsed().as_secs_f64();
        row
    }

    /// Run one grader until it exits, passes its deadline or is seen
    /// stopped; then nothing of it is left running. What it printed on
    /// stdout (its JSON report) lands in `stdout`.
    fn run_grader(&self, log: &Path, stdout: &mut Vec<u8>) -> Result<Ended, String> {
        let log_file = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut cmd = Command::new(self.exe);
        cmd.arg("--root")
            .arg(self.root)
            .arg("--submission")
            .arg(self.dir)
            .args(["--format", "json"])
            .args(["--time-scale", &self.time_scale.to_string()])
            .args(self.ids)
            .env(crate::cpu_lock::VAR, self.lock)
            .env_remove("GRADER_TIME_SCALE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        if let Some(run_as) = self.run_as {
            cmd.env("GRADER_RUN_AS", run_as);
        }
        spawn::reset_signals(&mut cmd);
        // Its own session and process group: stopping it reaches its cargo
        // and rustc too, and what its programs send to its group never
        // reaches the gradebook. It ends if the gradebook does.
        spawn::new_session(&mut cmd);
        let mut child = reaper::spawn_tracked(&mut cmd).map_err(|e| match e {
            SpawnError::Stopping => "the gradebook is stopping".to_string(),
            SpawnError::Io(e) => format!("cannot start the grader: {e}"),
        })?;
        let pid = child.pid();
        let report = read_stdout(&mut child);
        let ended = self.watch(&mut child);
        match ended {
            Ended::Exited(_) => {}
            Ended::Stopped => {
                // A stopped grader cannot clean up; SIGKILL works on it.
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
            }
            Ended::TimedOut { .. } => {
                // Ask first: the grader kills its programs and its build.
                let _ = kill(pid, Signal::SIGTERM);
                if child.wait_until(Deadline::after(GRACE)).is_none() {
                    let _ = killpg(pid, Signal::SIGKILL);
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        drop(child);
        // Whatever that grader left (it cannot have, unless it was killed):
        // its programs by their token, and what runs in a cgroup or as a
        // uid no living grader holds.
        leash::kill_marked(pid, Deadline::after(Duration::from_secs(10)));
        leash::sweep_dead_graders();
        // The grader is gone, so its stdout has ended; unless something
        // it started still holds it, which must not hang the gradebook.
        *stdout = report.recv_timeout(GRACE).unwrap_or_default();
        Ok(ended)
    }

    /// Wait for the grader to exit, looking at it every [`LOOK`]: stopped
    /// [`STOPPED_LOOKS`] times in a row ends the wait, and time it waits
    /// for the CPU lock moves its deadline (by at most the time-out itself,
    /// so that a lock held by a stranger cannot make it wait for ever).
    fn watch(&self, child: &mut Tracked) -> Ended {
        let pid = child.pid();
        let pidfd = reaper::pidfd_open(pid);
        let started = Instant::now();
        let (mut waited, mut stopped, mut last) = (Duration::ZERO, 0, started);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Ended::Exited(status);
            }
            let deadline = Deadline::at(started + self.timeout + waited);
            if deadline.passed() {
                return Ended::TimedOut { waited };
            }
            if let Some(fd) = &pidfd {
                deadline::wait(&mut [PollFd::new(fd.as_fd(), PollFlags::POLLIN)], deadline.sooner(LOOK));
            } else {
                deadline::wait(&mut [], deadline.sooner(LOOK));
            }
            let now = Instant::now();
            if crate::cpu_lock::waits(self.lock, pid.as_raw()) {
                waited = (waited + (now - last)).min(self.timeout);
            }
            last = now;
            stopped = if matches!(procfs::state(pid), Some('T' | 't')) { stopped + 1 } else { 0 };
            if stopped >= STOPPED_LOOKS {
                return Ended::Stopped;
            }
        }
    }
}

/// Read the child's stdout to its end (at most [`MAX_REPORT`] bytes) on a
/// thread of its own, so that a large report cannot fill the pipe and
/// stall the grader; the bytes arrive on the channel.
fn read_stdout(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = out.take(MAX_REPORT).read_to_end(&mut bytes);
            let _ = tx.send(bytes);
        });
    }
    rx
}

fn read_report(stdout: &[u8]) -> Result<JsonReport, String> {
    if stdout.is_empty() {
        return Err("no report on the grader's stdout".into());
    }
    serde_json::from_slice(stdout).map_err(|e| format!("unreadable report: {e}"))
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

/// The last non-empty line of a log, for the note column.
fn last_line(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)");
    line.chars().take(200).collect()
}

/// Write the gradebook to `path`: to a file beside it first, then renamed
/// over it, so that a reader (or a gradebook killed meanwhile) never sees
/// half a CSV.
fn write_csv(path: &Path, ids: &[String], rows: &[Row]) -> Result<(), String> {
    crate::atomic::write(path, &csv_text(ids, rows)?).map_err(|e| e.to_string())
}

/// The gradebook as CSV.
fn csv_text(ids: &[String], rows: &[Row]) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
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
    w.into_inner().map_err(|e| e.to_string())
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
    fn every_submission_has_a_row_pending_until_it_is_graded() {
        let done = Row { status: "graded", note: String::new(), ..Row::pending("bob") };
        let rows = with_pending(&[done], &["carol", "bob", "alice"]);
        let shown: Vec<(&str, &str)> = rows.iter().map(|r| (r.name.as_str(), r.status)).collect();
        assert_eq!(shown, [("alice", "pending"), ("bob", "graded"), ("carol", "pending")]);
        assert_eq!(rows[0].note, "not graded: the gradebook did not get to it");
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
