//! Results: what the runner hands to the reports, and the words both
//! sides share — the verdict classes ([`Kind`]), the source [`Location`] a
//! failure names, the output [`Format`]s. Plain data, serialisable; reports
//! only read it. The JSON report is these types as they are (see
//! README.md, "Options", for the formats).

mod format;
mod kind;
mod location;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use format::Format;
pub use kind::Kind;
pub use location::Location;

/// Also read back: `status` remembers the last run's statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Error,
    Skipped,
}

/// Why a check failed, in parts, for reports that lay it out.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    pub kind: Kind,
    /// What the grader did, step by step.
    pub did: Vec<String>,
    pub got: String,
    pub expected: String,
    pub hints: Vec<String>,
    /// Where in the source the failure happened, when it names a place (a
    /// `todo!()` or panic reached, the compiler's first error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub points: u32,
    pub max_points: u32,
    pub status: Status,
    /// Empty when passed; otherwise the whole failure as plain text.
    pub message: String,
    pub duration_ms: u64,
    /// Command that reruns just this check.
    pub rerun: String,
    /// The exercise's binaries this check started, in order of first start
    /// (empty when it started none, e.g. after a build error).
    pub programs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExerciseResult {
    pub id: String,
    pub title: String,
    /// The crate folder graded, relative to the repository
    /// (`exercises/signals`); null when every binary came from `--bin`.
    pub source: Option<String>,
    /// Binary → its source file relative to the repository
    /// (`exercises/sockets/src/bin/tcp-server.rs`), for the binaries built
    /// from `source`; binaries given with `--bin` have none.
    pub bin_sources: BTreeMap<String, String>,
    pub score: u32,
    pub max_score: u32,
    /// The compiler's message when the exercise did not build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_error: Option<String>,
    pub checks: Vec<CheckResult>,
}

/// How the programs were kept apart from the rest of the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Isolation {
    /// Each program ran in a PID namespace of its own: `kill(-1, …)`
    /// reached only its own processes, and its parent was a stand-in for
    /// the grader (see README.md, "How your program is run").
    pub pid_namespace: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Isolation {
    /// The phrase the human report ends its `Total` line with.
    pub fn phrase(&self) -> String {
        match (&self.pid_namespace, &self.reason) {
            (true, _) => "each program in a PID namespace of its own".into(),
            (false, Some(why)) => format!("programs in the grader's PID namespace ({why})"),
            (false, None) => "programs in the grader's PID namespace".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub score: u32,
    pub max_score: u32,
    pub passed: usize,
    pub failed: usize,
    pub wall_ms: u64,
    pub time_scale: f64,
    pub isolation: Isolation,
    pub exercises: Vec<ExerciseResult>,
}

impl Report {
    pub fn all_passed(&self) -> bool {
        self.exercises.iter().flat_map(|e| &e.checks).all(|c| matches!(c.status, Status::Passed | Status::Skipped))
    }
}

impl Detail {
    /// Where the `todo!()` is that this failure reached, if that is what it
    /// is: failures at one such place say nothing more than where it is, so
    /// reports show them together.
    pub fn todo(&self) -> Option<&Location> {
        self.location.as_ref().filter(|_| self.kind == Kind::NotImplemented)
    }

    /// The failure as plain text (the `message` of JSON and other formats).
    pub fn text(&self, rerun: &str) -> String {
        let mut s = format!(
            "{}\ndid: {}\ngot: {}\nexpected: {}",
            self.kind.label(),
            self.did.join("; "),
            self.got,
            self.expected
        );
        for h in &self.hints {
            s.push_str(&format!("\nhint: {h}"));
        }
        s.push_str(&format!("\nrerun: {rerun}"));
        s
    }
}

/// The three ways a check ends, built alike by the runner and the reports'
/// test fixtures. Each starts with no duration and no programs; the runner
/// sets what it measured with struct update syntax.
impl CheckResult {
    /// All its points.
    pub fn passed(id: impl Into<String>, title: impl Into<String>, points: u32, rerun: String) -> CheckResult {
        CheckResult {
            id: id.into(),
            title: title.into(),
            points,
            max_points: points,
            status: Status::Passed,
            message: String::new(),
            duration_ms: 0,
            rerun,
            programs: Vec::new(),
            detail: None,
        }
    }

    /// Not possible on this machine (`why`): worth 0 of 0 points.
    pub fn skipped(id: impl Into<String>, title: impl Into<String>, why: &str, rerun: String) -> CheckResult {
        CheckResult {
            points: 0,
            max_points: 0,
            status: Status::Skipped,
            message: format!("skipped: {why}"),
            ..CheckResult::passed(id, title, 0, rerun)
        }
    }

    /// No points of `max_points`: an error when the grader or the build is
    /// at fault, else failed.
    pub fn failed(
        id: impl Into<String>,
        title: impl Into<String>,
        max_points: u32,
        detail: Detail,
        rerun: String,
    ) -> CheckResult {
        let status = match detail.kind {
            Kind::GraderError | Kind::BuildError => Status::Error,
            _ => Status::Failed,
        };
        CheckResult {
            points: 0,
            max_points,
            status,
            message: detail.text(&rerun),
            detail: Some(detail),
            ..CheckResult::passed(id, title, 0, rerun)
        }
    }
}
