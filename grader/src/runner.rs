//! Running checks and turning their outcomes into [`results`](crate::results).
//!
//! The schedule is for wall time: most checks wait on programs, so the
//! suite takes little longer than its longest check if the checks overlap.
//! Every timing check ([`Cost::Timing`]) starts at once on a thread of its
//! own — each is a window in which the grader measures, mostly asleep — and
//! holds the gate's quiet side ([`cpu_lock`]) for its whole run. The other
//! checks run beside them on `-j` worker threads, the longest first (as long
//! as they took last time, [`crate::status`]). A heavy phase ([`Ctx::heavy`])
//! holds the gate's other side: it waits until nothing measures, and
//! nothing starts measuring while it lasts. Heavy checks ([`Cost::Heavy`]),
//! whose heavy phase comes soon after they start, are taken once no timing
//! check is left (or nothing else is), so that no worker waits at the gate
//! while there is other work. How long a check waited at the gate is not
//! its duration.
//!
//! This is where what programs and the compiler said enters the results:
//! every failure text, transcript step and compiler message passes
//! [`text::escape`] here, so no report, file or later reader gets a raw
//! control character from them.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::check::{Check, Cost, Ctx, Exercise};
use crate::cpu_lock::{self, Use};
use crate::harness::{Failure, Kind};
use crate::request::Rerun;
use crate::results::{CheckResult, Detail, Diagnosis, ExerciseResult, Location, Report, Status};
use crate::status::LastRun;
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
    /// The last run, if one was remembered: how long each check took.
    pub last: Option<LastRun>,
}

/// Worker threads when `-j` does not say (timing checks have threads of
/// their own). Checks mostly wait on programs — a program that hangs keeps
/// its check waiting for seconds — so five per CPU, and at least as many as
/// one exercise has other checks: a program that hangs in every check
/// costs one wait, not two in a row.
pub fn default_threads(jobs: &[Job]) -> usize {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let untimed = |job: &Job| job.selected.iter().filter(|&&c| job.exercise.checks[c].cost != Cost::Timing).count();
    let widest = jobs.iter().map(untimed).max().unwrap_or(0);
    (cpus * 5).max(widest)
}

/// A check: its job's index and its index in the exercise.
type Id = (usize, usize);

/// What the workers take next.
#[derive(Default)]
struct Plan {
    light: VecDeque<Id>,
    heavy: VecDeque<Id>,
    /// Timing checks not yet finished.
    timing_left: usize,
}

impl Plan {
    /// Heavy checks once nothing measures any more (or when nothing else
    /// is left: the worker then waits at the gate), else the longest light
    /// check.
    fn next(&mut self) -> Option<Id> {
        if self.timing_left == 0 || self.light.is_empty() {
            self.heavy.pop_front().or_else(|| self.light.pop_front())
        } else {
            self.light.pop_front()
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run every selected check of every job.
pub fn run(jobs: &[Job], settings: &Settings) -> Report {
    let started = Instant::now();
    let mut results: BTreeMap<Id, CheckResult> = BTreeMap::new();
    let (mut light, mut heavy, mut timing) = (Vec::new(), Vec::new(), Vec::new());
    for (e, job) in jobs.iter().enumerate() {
        for &c in &job.selected {
            let check = &job.exercise.checks[c];
            match &job.bins {
                Bins::BuildError(msg) => {
                    results.insert((e, c), build_failed(job, check, &text::escape(msg), settings));
                }
                Bins::Ready(_) => match check.cost {
                    Cost::Light => light.push((e, c)),
                    Cost::Heavy => heavy.push((e, c)),
                    Cost::Timing => timing.push((e, c)),
                },
            }
        }
    }
    // The longest first, as long as they took last time; checks never
    // timed keep their order, after the others.
    let estimate = |&(e, c): &Id| {
        let last = settings.last.as_ref().and_then(|l| l.duration(jobs[e].exercise.id, jobs[e].exercise.checks[c].id));
        std::cmp::Reverse(last.unwrap_or(0))
    };
    for queue in [&mut light, &mut heavy, &mut timing] {
        queue.sort_by_key(estimate);
    }
    let plan = Mutex::new(Plan { light: light.into(), heavy: heavy.into(), timing_left: timing.len() });
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let (plan, done) = (&plan, &done);
        for id in timing {
            s.spawn(move || {
                let r = run_one(&jobs[id.0], &jobs[id.0].exercise.checks[id.1], settings);
                locked(done).push((id, r));
                locked(plan).timing_left -= 1;
            });
        }
        for _ in 0..settings.threads.max(1) {
            s.spawn(move || loop {
                // Its own statement: the plan is unlocked while the check runs.
                let next = locked(plan).next();
                let Some(id) = next else { break };
                let r = run_one(&jobs[id.0], &jobs[id.0].exercise.checks[id.1], settings);
                locked(done).push((id, r));
            });
        }
    });
    results.extend(done.into_inner().unwrap_or_else(|p| p.into_inner()));

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

fn run_one(job: &Job, check: &Check, settings: &Settings) -> CheckResult {
    let Bins::Ready(bins) = &job.bins else { unreachable!("build errors are not queued") };
    let _quiet = (check.cost == Cost::Timing).then(|| cpu_lock::gate().enter(Use::Quiet));
    let started = Instant::now(); // after the gate: waiting there is not the check's time
    let ipc = crate::harness::ipc::Window::open(job.exercise.id, check.id); // ipc leaks: the check's time begins
    let cx = Ctx::new(bins, settings.scale, check.cost);
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
    let took = started.elapsed().saturating_sub(cx.gate_wait());
    CheckResult { duration_ms: took.as_millis() as u64, programs, ..result }
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
