//! How results are shown: one module per output format, and [`write()`],
//! which puts a finished [`Report`] where the command line asked. Reports
//! only read the results; they import neither the harness nor the CLI.

pub mod github;
pub mod gradescope;
pub mod human;
pub mod json;
pub mod junit;
pub mod wrap;

use std::path::{Path, PathBuf};

use crate::results::{Format, Report};

/// `report` in `format`; `colour` and `width` (columns to wrap to) only
/// matter for `human`: the other formats keep every text whole.
pub fn render(format: Format, report: &Report, colour: bool, width: usize) -> String {
    match format {
        Format::Human => human::render(report, human::Style::of(colour), width),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Gradescope => gradescope::render(report),
    }
}

/// Where the report of one grading goes.
#[derive(Debug, Clone)]
pub struct Output {
    /// `--format`.
    pub format: Format,
    /// `--output FILE`; `None`: stdout.
    pub file: Option<PathBuf>,
    /// Every `--report FORMAT=FILE`.
    pub reports: Vec<(Format, PathBuf)>,
    /// `--github`: the job summary and annotations.
    pub github: bool,
}

/// Write `report` in its format (to its file or stdout), every extra
/// report, and with `github` the step summary and annotations.
pub fn write(output: &Output, report: &Report) -> Result<(), String> {
    let colour = output.file.is_none() && human::stdout_colour();
    let width = if output.file.is_none() { wrap::stdout_width() } else { wrap::DEFAULT_WIDTH };
    let text = render(output.format, report, colour, width);
    match &output.file {
        Some(path) => write_file(path, &text)?,
        // On GitHub, the report quotes the programs: none of its lines may
        // be taken for a workflow command.
        None if output.github => print!("{}", github::verbatim(&text)?),
        None => print!("{text}"),
    }
    for (format, path) in &output.reports {
        write_file(path, &render(*format, report, false, wrap::DEFAULT_WIDTH))?;
    }
    if output.github {
        github::emit(report)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    crate::atomic::write(path, text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Synthetic reports for the formats' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::collections::BTreeMap;

    use crate::results::{CheckResult, Detail, ExerciseResult, Kind, Location, Report, Status};

    /// A check built as the runner builds it; failed and error ones get a
    /// detail (of `kind`, with `got`), skipped ones `got` as the reason.
    pub fn check(id: &str, status: Status, max: u32, kind: Kind, got: &str, programs: &[&str]) -> CheckResult {
        let rerun = format!("cargo grade x --check {id}");
        let title = format!("{id} works");
        let result = match status {
            Status::Passed => CheckResult::passed(id, title, max, rerun),
            Status::Skipped => CheckResult::skipped(id, title, got, rerun),
            Status::Failed | Status::Error => {
                let detail = Detail {
                    kind,
                    did: vec!["started the program".into()],
                    got: got.into(),
                    expected: "the right thing".into(),
                    diagnosis: None,
                    hint: Some("read the slides".into()),
                    location: None,
                };
                CheckResult::failed(id, title, max, detail, rerun)
            }
        };
        CheckResult { status, duration_ms: 20, programs: programs.iter().map(|p| p.to_string()).collect(), ..result }
    }

    /// `c` with its failure at `file:line:column`.
    pub fn at(mut c: CheckResult, file: &str, line: u32, column: u32) -> CheckResult {
        let location = Location { file: file.into(), line, column };
        c.detail.as_mut().expect("a failed check").location = Some(location);
        c
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
            isolation: crate::results::Isolation { pid_namespace: true, reason: None },
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
                at(
                    check("echo", Failed, 10, Kind::NotImplemented, todo, &["sigecho"]),
                    "exercises/signals/src/main.rs",
                    102,
                    5,
                ),
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
            vec![at(
                check("encode-bytes", Error, 10, Kind::BuildError, "error[E0308]: mismatched types", &[]),
                "exercises/framing/src/main.rs",
                7,
                22,
            )],
        );
        framing.build_error = Some(compiler.into());
        report(vec![signals, sockets, framing])
    }
}
