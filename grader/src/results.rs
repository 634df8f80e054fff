//! Results: what the runner hands to the reports. Plain data, serialisable;
//! reports only read it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::harness::Kind;

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

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub score: u32,
    pub max_score: u32,
    pub passed: usize,
    pub failed: usize,
    pub wall_ms: u64,
    pub time_scale: f64,
    pub exercises: Vec<ExerciseResult>,
}

impl Report {
    pub fn all_passed(&self) -> bool {
        self.exercises.iter().flat_map(|e| &e.checks).all(|c| matches!(c.status, Status::Passed | Status::Skipped))
    }
}

impl Detail {
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
