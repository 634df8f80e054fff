//! Running checks and turning their outcomes into [`results`](crate::results).
//!
//! Checks that do not measure timing run in parallel on `-j` threads. Checks
//! marked `timing` run afterwards, together: they spend their time waiting
//! on idle programs, and not sharing the CPU with the heavy checks keeps
//! their upper bounds honest.
//!
//! This is where what programs and the compiler said enters the results:
//! every failure text, transcript step and compiler message passes
//! [`text::escape`] here, so no report, file or later reader gets a raw
//! control character from them.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use crate::check::{Check, Ctx, Exercise};
use crate::harness::{Failure, Kind};
use crate::request::Rerun;
use crate::results::{CheckResult, Detail, Diagnosis, ExerciseResult, Location, Report, Status};
use crate::text;

/// Where an exercise's executables come from.
pub enum Bins {
    Ready(BTreeMap<String, PathBuf>),
    /// The crate did not compile: the compiler's message.
    BuildError(String),
}

/// One exercise to grade.
pub struct Job {
    pub exercise: Exercise,
    pub bins: Bins,
    /// Indices of the checks selected by `--check`.
    pub selected: Vec<usize>,
    /// The crate folder relative to the repository (`exercises/signals`);
    /// `None` when every binary was given with `--bin`.
    pub source: Option<String>,
    /// Binary → its source file relative to the repository, for the
    /// binaries built from `source` (see [`ExerciseResult::bin_sources`]).
    pub bin_sources: BTreeMap<String, String>,
}

pub struct Settings {
    /// Threads that run the checks that do not measure timing.
    pub threads: usize,
    pub scale: f64,
    /// How a check is rerun on its own, for its result.
    pub rerun: Rerun,
}

/// Threads when `-j` does not say: checks mostly wait on programs, so two
/// per CPU, and at least four.
pub fn default_threads() -> usize {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    (cpus * 2).max(4)
}

/// Run every selected check of every job.
pub fn run(jobs: &[Job], settings: &Settings) -> Report {
    let started = Instant::now();
    let mut results: BTreeMap<(usize, usize), CheckResult> = BTreeMap::new();
    let mut queue_fast = VecDeque::new();
    let mut queue_timing = VecDeque::new();
    for (e, job) in jobs.iter().enumerate() {
        for &c in &job.selected {
            let check = &job.exercise.checks[c];
            match &job.bins {
                Bins::BuildError(msg) => {
                    results.insert((e, c), build_failed(job, check, &text::escape(msg), settings));
                }
                Bins::Ready(_) if check.timing => queue_timing.push_back((e, c)),
                Bins::Ready(_) => queue_fast.push_back((e, c)),
            }
        }
    }
    // The timing checks run all at once: each mostly waits on an idle
    // program, and none should wait for another to finish.
    let timing_threads = queue_timing.len().max(1);
    {
        let _cpu = crate::cpu_lock::shared();
        results.extend(run_queue(jobs, settings, queue_fast, settings.threads.max(1)));
    }
    if !queue_timing.is_empty() {
        let _cpu = crate::cpu_lock::exclusive();
        results.extend(run_queue(jobs, settings, queue_timing, timing_threads));
    }

    let mut exercises = Vec::new();
    for (e, job) in jobs.iter().enumerate() {
        let checks: Vec<CheckResult> = job.selected.iter().filter_map(|&c| results.remove(&(e, c))).collect();
        exercises.push(ExerciseResult {
            id: job.exercise.id.to_string(),
            title: job.exercise.title.to_string(),
            source: job.source.clone(),
            bin_sources: job.bin_sources.clone(),
            score: checks.iter().map(|c| c.points).sum(),
            max_score: checks.iter().map(|c| c.max_points).sum(),
            build_error: match &job.bins {
                Bins::BuildError(m) => Some(text::escape(m).into_owned()),
                Bins::Ready(_) => None,
            },
            checks,
        });
    }
    let all = exercises.iter().flat_map(|e| &e.checks);
    let passed = all.clone().filter(|c| c.status == Status::Passed).count();
    let failed = all.filter(|c| matches!(c.status, Status::Failed | Status::Error)).count();
    Report {
        score: exercises.iter().map(|e| e.score).sum(),
        max_score: exercises.iter().map(|e| e.max_score).sum(),
        passed,
        failed,
        wall_ms: started.elapsed().as_millis() as u64,
        time_scale: settings.scale,
        isolation: crate::harness::pidns::isolation(),
        exercises,
    }
}

fn run_queue(
    jobs: &[Job],
    settings: &Settings,
    queue: VecDeque<(usize, usize)>,
    threads: usize,
) -> Vec<((usize, usize), CheckResult)> {
    let queue = Mutex::new(queue);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let Some((e, c)) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else { break };
                let r = run_one(&jobs[e], &jobs[e].exercise.checks[c], settings);
                done.lock().unwrap_or_else(|p| p.into_inner()).push(((e, c), r));
            });
        }
    });
    done.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn run_one(job: &Job, check: &Check, settings: &Settings) -> CheckResult {
    let Bins::Ready(bins) = &job.bins else { unreachable!("build errors are not queued") };
    let started = Instant::now();
    let ipc = crate::harness::ipc::Window::open(job.exercise.id, check.id); // ipc leaks: the check's time begins
    let cx = Ctx::new(bins, settings.scale);
    let outcome = catch_unwind(AssertUnwindSafe(|| (check.run)(&cx))).unwrap_or_else(|p| {
        let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
        Err(Failure::grader(format!("the check itself panicked: {}", msg.unwrap_or_default())))
    });
    // Every Program of the check has been dropped by now: killed, reaped,
    // and leftovers recorded.
    let programs = cx.programs();
    let log = cx.log.borrow();
    let outcome = match outcome {
        // Whatever else happened: the program hit the grader.
        _ if !log.incidents.is_empty() => Err(Failure::new(
            Kind::SignalledGrader,
            log.incidents.join("; "),
            "signals only to the program's own processes: never to its parent (the grader), nor to every process",
        )
        .diagnosed(
            "a process of the program signalled its parent, the grader: a signal like that would have ended (or \
             stopped) the whole grading",
            "`kill(getppid(), …)` signals the grader, and so does a child that outlives its parent (the grader \
             adopts it). `kill(-1, …)` — often a failed `fork`'s -1 used as a pid — signals every process the user \
             may signal. Check what `fork` returned before using it as a pid.",
        )),
        Ok(()) if !log.leftovers.is_empty() => {
            Err(Failure::new(Kind::LeftBehind, log.leftovers.join("; "), "no process left once the program has exited")
                .diagnosed(
                    "a process the program started outlived it",
                    "wait for every child you fork (`waitpid`) and do not leave daemons behind",
                ))
        }
        other => other,
    };
    let outcome = ipc.close(outcome); // ipc leaks: objects its programs left behind fail it, and are removed
    let rerun = settings.rerun.check(job.exercise.id, check.id);
    let result = match outcome {
        Ok(()) => CheckResult::passed(check.id, check.title, check.points, rerun),
        Err(f) if f.kind == Kind::Skipped => CheckResult::skipped(check.id, check.title, &text::escape(&f.got), rerun),
        Err(f) => {
            let escape = |s: &str| text::escape(s).into_owned();
            // The diagnosis's hint fits what was seen; the check's general
            // hint is shown only when nothing more specific is known.
            let hint = f.diagnosis.is_none().then(|| check.hint.split_whitespace().collect::<Vec<_>>().join(" "));
            let diagnosis = f.diagnosis.map(|d| Diagnosis::new(escape(&d.what_it_means), escape(&d.hint)));
            let detail = Detail {
                kind: f.kind,
                did: shorten(&log.steps).iter().map(|s| escape(s)).collect(),
                got: escape(&f.got),
                expected: escape(&f.expected),
                diagnosis,
                hint,
                location: f.location,
            };
            CheckResult::failed(check.id, check.title, check.points, detail, rerun)
        }
    };
    CheckResult { duration_ms: started.elapsed().as_millis() as u64, programs, ..result }
}

/// Every check of an exercise that did not compile fails alike: with the
/// compiler's first error, and pointing at its place.
fn build_failed(job: &Job, check: &Check, msg: &str, settings: &Settings) -> CheckResult {
    let first = msg.lines().find(|l| l.starts_with("error")).unwrap_or("the crate did not compile");
    let detail = Detail {
        kind: Kind::BuildError,
        did: vec![format!("built the `{}` crate", job.exercise.id)],
        got: first.to_string(),
        expected: "the crate to compile".into(),
        diagnosis: Some(Diagnosis::new(
            "the crate did not compile, so no check of this exercise can run",
            "fix the compiler errors shown above the table",
        )),
        hint: None,
        location: Location::in_compiler_message(msg),
    };
    let rerun = settings.rerun.check(job.exercise.id, check.id);
    CheckResult::failed(check.id, check.title, check.points, detail, rerun)
}

/// A long transcript (50 runs of a race) keeps its beginning and its end.
fn shorten(steps: &[String]) -> Vec<String> {
    const HEAD: usize = 6;
    const TAIL: usize = 6;
    if steps.len() <= HEAD + TAIL + 1 {
        return steps.to_vec();
    }
    let mut out = steps[..HEAD].to_vec();
    out.push(format!("… {} more steps …", steps.len() - HEAD - TAIL));
    out.extend_from_slice(&steps[steps.len() - TAIL..]);
    out
}
