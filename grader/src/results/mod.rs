//! Results: what the runner hands to the reports, and the words both
//! sides share — the verdict classes ([`Kind`]), the source [`Location`] a
//! failure names, the [`Diagnosis`] of its cause, the output [`Format`]s. Plain data, serialisable; reports
//! only read it. The JSON report is these types as they are (see
//! README.md, "Options", for the formats).

mod diagnosis;
mod format;
mod kind;
mod location;

use std::collections::BTreeMap;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

pub use diagnosis::Diagnosis;
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

/// Why a check failed, in parts, for reports that lay it out: what the
/// grader did and saw, what that means when it could tell (the
/// [`Diagnosis`] and its one hint), else the check's general hint.
#[derive(Debug, Clone)]
pub struct Detail {
    pub kind: Kind,
    /// What the grader did, step by step.
    pub did: Vec<String>,
    pub got: String,
    pub expected: String,
    /// The cause, when what the grader saw tells it, with the hint for it.
    pub diagnosis: Option<Diagnosis>,
    /// The check's general hint (the concept behind it): only when there is
    /// no diagnosis.
    pub hint: Option<String>,
    /// Where in the source the failure happened, when it names a place (a
    /// `todo!()` or panic reached, the compiler's first error).
    pub location: Option<Location>,
}

/// The fields as they are, plus `hints`, the list reports had before
/// diagnoses: the one hint shown, so older readers of the JSON still find
/// it.
impl Serialize for Detail {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Detail", 8)?;
        st.serialize_field("kind", &self.kind)?;
        st.serialize_field("did", &self.did)?;
        st.serialize_field("got", &self.got)?;
        st.serialize_field("expected", &self.expected)?;
        match &self.diagnosis {
            Some(d) => st.serialize_field("diagnosis", d)?,
            None => st.skip_field("diagnosis")?,
        }
        match &self.hint {
            Some(h) => st.serialize_field("hint", h)?,
            None => st.skip_field("hint")?,
        }
        st.serialize_field("hints", &self.shown_hint().into_iter().collect::<Vec<_>>())?;
        match &self.location {
            Some(l) => st.serialize_field("location", l)?,
            None => st.skip_field("location")?,
        }
        st.end()
    }
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
    /// The human report's `Isolation:` line, just above its `Total`.
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

    /// The one hint a report shows: the diagnosis's, else the general one.
    pub fn shown_hint(&self) -> Option<&str> {
        self.diagnosis.as_ref().map(|d| d.hint.as_str()).or(self.hint.as_deref())
    }

    /// The labelled lines after `expected`: `diagnosis` and its `hint`, or
    /// the general hint as `hint (general)`. One place, so the plain text
    /// and the human report label alike.
    pub fn advice(&self) -> Vec<(&'static str, &str)> {
        match (&self.diagnosis, &self.hint) {
            (Some(d), _) => vec![("diagnosis", d.what_it_means.as_str()), ("hint", d.hint.as_str())],
            (None, Some(h)) => vec![("hint (general)", h.as_str())],
            (None, None) => Vec::new(),
        }
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
        for (label, text) in self.advice() {
            s.push_str(&format!("\n{label}: {text}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(diagnosis: Option<Diagnosis>, hint: Option<&str>) -> Detail {
        Detail {
            kind: Kind::TimedOut,
            did: vec!["started it".into()],
            got: "nothing".into(),
            expected: "a line".into(),
            diagnosis,
            hint: hint.map(String::from),
            location: None,
        }
    }

    #[test]
    fn a_diagnosis_replaces_the_general_hint_and_the_json_keeps_hints() {
        let d = detail(Some(Diagnosis::new("it went back into `read`", "no SA_RESTART")), None);
        assert_eq!(
            d.text("cargo grade x"),
            "timed out\ndid: started it\ngot: nothing\nexpected: a line\ndiagnosis: it went back into `read`\n\
             hint: no SA_RESTART\nrerun: cargo grade x"
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["diagnosis"]["what_it_means"], "it went back into `read`");
        assert_eq!(json["hints"], serde_json::json!(["no SA_RESTART"]), "the one hint shown, as before");
        assert!(json.get("hint").is_none() && json.get("location").is_none(), "{json}");

        let g = detail(None, Some("block in read"));
        assert!(g.text("r").contains("\nexpected: a line\nhint (general): block in read\nrerun: r"));
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(
            (&json["hint"], &json["hints"]),
            (&serde_json::json!("block in read"), &serde_json::json!(["block in read"]))
        );
        assert!(json.get("diagnosis").is_none(), "{json}");
    }
}
