//! How results are shown: one module per output format. Reports only read a
//! finished [`Report`](crate::results::Report).

pub mod github;
pub mod gradescope;
pub mod human;
pub mod json;
pub mod junit;

use crate::cli::Format;
use crate::results::Report;

/// `report` in `format`; `colour` only matters for `human`.
pub fn render(format: Format, report: &Report, colour: bool) -> String {
    match format {
        Format::Human => human::render(report, if colour { &human::Style::COLOR } else { &human::Style::PLAIN }),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Gradescope => gradescope::render(report),
    }
}

/// Synthetic reports for the formats' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::collections::BTreeMap;

    use crate::harness::Kind;
    use crate::results::{CheckResult, Detail, ExerciseResult, Report, Status};

    /// A check; failed, error and skipped ones get a message (and a detail)
    /// like the runner's.
    pub fn check(id: &str, status: Status, max: u32, kind: Kind, got: &str, programs: &[&str]) -> CheckResult {
        let rerun = format!("cargo grade x --check {id}");
        let detail = matches!(status, Status::Failed | Status::Error).then(|| Detail {
            kind,
            did: vec!["started the program".into()],
            got: got.into(),
            expected: "the right thing".into(),
            hints: vec!["read the slides".into()],
        });
        CheckResult {
            id: id.into(),
            title: format!("{id} works"),
            points: if status == Status::Passed { max } else { 0 },
            max_points: if status == Status::Skipped { 0 } else { max },
            status,
            message: match (&detail, status) {
                (Some(d), _) => d.text(&rerun),
                (None, Status::Skipped) => format!("skipped: {got}"),
                (None, _) => String::new(),
            },
            duration_ms: 20,
            rerun,
            programs: programs.iter().map(|p| p.to_string()).collect(),
            detail,
        }
    }

    pub fn exercise(id: &str, bins: &[(&str, &str)], checks: Vec<CheckResult>) -> ExerciseResult {
        let bin_sources: BTreeMap<String, String> =
            bins.iter().map(|(b, f)| (b.to_string(), format!("exercises/{id}/{f}"))).collect();
        ExerciseResult {
            id: id.into(),
            title: format!("the {id} exercise"),
            source: Some(format!("exercises/{id}")),
            bin_sources,
            score: checks.iter().map(|c| c.points).sum(),
            max_score: checks.iter().map(|c| c.max_points).sum(),
            build_error: None,
            checks,
        }
    }

    pub fn report(exercises: Vec<ExerciseResult>) -> Report {
        let all = || exercises.iter().flat_map(|e| &e.checks);
        Report {
            score: exercises.iter().map(|e| e.score).sum(),
            max_score: exercises.iter().map(|e| e.max_score).sum(),
            passed: all().filter(|c| c.status == Status::Passed).count(),
            failed: all().filter(|c| matches!(c.status, Status::Failed | Status::Error)).count(),
            wall_ms: 1234,
            time_scale: 1.0,
            exercises,
        }
    }

    /// Every status, two binaries in one crate, a `todo!()` location, and
    /// an exercise that did not build: 15/50 points, 2 passed, 4 failed.
    pub fn sample() -> Report {
        use Status::*;
        let todo = "sigecho reached a `todo!()` at exercises/signals/src/main.rs:102:5";
        let signals = exercise(
            "signals",
            &[("sigecho", "src/main.rs")],
            vec![
                check("ready", Passed, 5, Kind::WrongOutput, "", &["sigecho"]),
                check("echo", Failed, 10, Kind::NotImplemented, todo, &["sigecho"]),
                check("sigint-idle", Error, 5, Kind::GraderError, "the check itself panicked", &["sigecho"]),
                check("ipv6", Skipped, 5, Kind::Skipped, "no IPv6 loopback", &["sigecho"]),
            ],
        );
        let sockets = exercise(
            "sockets",
            &[("tcp-client", "src/bin/tcp-client.rs"), ("tcp-server", "src/bin/tcp-server.rs")],
            vec![
                check("server-echo", Passed, 10, Kind::WrongOutput, "", &["tcp-server"]),
                check("client-echo", Failed, 10, Kind::WrongOutput, "the line `x`", &["tcp-client"]),
            ],
        );
        let compiler =
            "error[E0308]: mismatched types\n --> exercises/framing/src/main.rs:7:22\n  |\n7 | fn f() -> u32 { \"no\" }\n";
        let mut framing = exercise(
            "framing",
            &[("framing", "src/main.rs")],
            vec![check("encode-bytes", Error, 10, Kind::BuildError, "error[E0308]: mismatched types", &[])],
        );
        framing.build_error = Some(compiler.into());
        report(vec![signals, sockets, framing])
    }
}
