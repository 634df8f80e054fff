//! `--format junit`: JUnit XML (quick-junit), for CI systems that show test
//! results: one `testsuite` per exercise (named by its id), one `testcase`
//! per check (named by its id, classname the exercise id), the points as
//! properties of each testcase.
//!
//! Failed checks are `failure`s; grader faults and build errors are
//! `error`s (not the program's verdict); skipped checks are `skipped`. A
//! suite whose crate did not compile carries the compiler's message in its
//! `system-out`, and each of its testcases repeats it in the error text,
//! because most CI pages show only the testcase.
//!
//! XML 1.0 cannot hold control characters (quick-junit drops them), so
//! every text is [`text::escape`]d: `\x1b` stays visible as such.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use crate::results::{CheckResult, ExerciseResult, Report, Status};
use crate::text;

/// Name of the top-level `testsuites`.
pub const NAME: &str = "ipc-lab";

pub fn render(report: &Report) -> String {
    let mut junit = Junit::new(NAME);
    junit.set_time(Duration::from_millis(report.wall_ms));
    junit.add_test_suites(report.exercises.iter().map(suite));
    junit.to_string().expect("JUnit XML serialises to a String")
}

fn suite(ex: &ExerciseResult) -> TestSuite {
    let mut suite = TestSuite::new(&ex.id);
    suite.set_time(Duration::from_millis(ex.checks.iter().map(|c| c.duration_ms).sum()));
    suite.add_properties([
        Property::new("title", &ex.title),
        Property::new("score", ex.score.to_string()),
        Property::new("max_score", ex.max_score.to_string()),
    ]);
    if let Some(source) = &ex.source {
        suite.add_property(Property::new("source", source));
    }
    if let Some(err) = &ex.build_error {
        suite.set_system_out(text::escape(err).into_owned());
    }
    suite.add_test_cases(ex.checks.iter().map(|c| case(ex, c)));
    suite
}

fn case(ex: &ExerciseResult, c: &CheckResult) -> TestCase {
    let status = match c.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Skipped => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(text::escape(&c.message).into_owned());
            s
        }
        Status::Failed | Status::Error => {
            let kind = if c.status == Status::Failed { NonSuccessKind::Failure } else { NonSuccessKind::Error };
            let mut s = TestCaseStatus::non_success(kind);
            let mut body = c.message.clone();
            if let Some(err) = &ex.build_error {
                body.push_str("\n\ncompiler output:\n");
                body.push_str(err);
            }
            s.set_message(text::escape(&one_line(c)).into_owned()).set_description(text::escape(&body).into_owned());
            if let Some(d) = &c.detail {
                if let Ok(serde_json::Value::String(ty)) = serde_json::to_value(d.kind) {
                    s.set_type(ty);
                }
            }
            s
        }
    };
    let mut case = TestCase::new(&c.id, status);
    case.set_classname(&ex.id).set_time(Duration::from_millis(c.duration_ms)).add_properties([
        Property::new("points", c.points.to_string()),
        Property::new("max_points", c.max_points.to_string()),
        Property::new("title", &c.title),
    ]);
    case
}

/// The `message` attribute: the kind of failure and what came back, on one
/// line ("not implemented yet: sigecho reached a `todo!()` at …").
fn one_line(c: &CheckResult) -> String {
    match &c.detail {
        Some(d) => {
            let got = d.got.lines().next().unwrap_or("");
            if got.is_empty() {
                d.kind.label().to_string()
            } else {
                format!("{}: {got}", d.kind.label())
            }
        }
        None => c.message.lines().next().unwrap_or("").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn every_check_is_a_testcase_with_its_state_and_points() {
        let xml = render(&fixtures::sample());
        assert!(xml.starts_with("<?xml"), "{xml}");
        assert!(xml.contains(r#"<testsuites name="ipc-lab" tests="7" skipped="1" failures="2" errors="2""#), "{xml}");
        assert!(xml.contains(r#"<testsuite name="signals" tests="4" skipped="1" errors="1" failures="1""#), "{xml}");
        assert!(xml.contains(r#"<testcase name="echo" classname="signals" time="0.020">"#), "{xml}");
        assert!(xml.contains(r#"<property name="points" value="10"/>"#), "{xml}");
        assert!(xml.contains(r#"<property name="max_points" value="5"/>"#), "{xml}");
        let todo = "sigecho reached a `todo!()` at exercises/signals/src/main.rs:102:5";
        let failure = format!(r#"<failure message="not implemented yet: {todo}" type="not_implemented">"#);
        assert!(xml.contains(&failure), "{xml}");
        assert!(xml.contains(r#"<error message="grader error: the check itself panicked""#), "{xml}");
        assert!(xml.contains(r#"<skipped message="skipped: no IPv6 loopback"/>"#), "{xml}");
    }

    #[test]
    fn a_build_error_is_an_error_and_the_suite_carries_the_compiler_message() {
        let xml = render(&fixtures::sample());
        let framing = &xml[xml.find(r#"<testsuite name="framing""#).expect("framing suite")..];
        assert!(framing.contains("<system-out>error[E0308]: mismatched types"), "{framing}");
        assert!(framing.contains(r#"<error message="build error: error[E0308]: mismatched types" type="build_error">"#));
        assert!(framing.contains("compiler output:\nerror[E0308]"), "{framing}");
    }

    #[test]
    fn control_characters_do_not_break_the_xml() {
        let mut report = fixtures::sample();
        report.exercises[0].checks[1].message = "got \x1b[31mred\x1b[0m and \x07 <&> \"".into();
        let xml = render(&report);
        assert!(!xml.contains('\x1b') && !xml.contains('\x07'), "{xml}");
        // Escaped, not dropped: the reader sees what the program printed.
        assert!(xml.contains("got \\x1b[31mred\\x1b[0m and \\x07 &lt;&amp;&gt;"), "{xml}");
    }
}
