//! `--format gradescope`: Gradescope's `results.json`, one test per check.
//!
//! Gradescope knows only `passed` and `failed`. A skipped check (not
//! possible on the grading machine) is worth 0 of 0 points and counts for
//! nothing; it is shown as `passed` with an output that says it was
//! skipped, because a red "failed" would blame the student for the machine.
//! Outputs are plain text (`output_format: "text"`): failure messages hold
//! backticks and underscores that Markdown would eat.

use serde::Serialize;

use crate::results::{CheckResult, ExerciseResult, Report, Status};

#[derive(Debug, Serialize)]
struct Results {
    /// Points earned; Gradescope takes it over the sum of the tests.
    score: u32,
    max_score: u32,
    /// Whole seconds, rounded up.
    execution_time: u64,
    output: String,
    output_format: &'static str,
    test_output_format: &'static str,
    tests: Vec<Test>,
}

#[derive(Debug, Serialize)]
struct Test {
    name: String,
    score: u32,
    max_score: u32,
    status: &'static str,
    output: String,
    visibility: &'static str,
}

pub fn render(report: &Report) -> String {
    let results = Results {
        score: report.score,
        max_score: report.max_score,
        execution_time: report.wall_ms.div_ceil(1000),
        output: summary(report),
        output_format: "text",
        test_output_format: "text",
        tests: report.exercises.iter().flat_map(|e| e.checks.iter().map(move |c| test(e, c))).collect(),
    };
    let mut s = serde_json::to_string_pretty(&results).expect("results serialise");
    s.push('\n');
    s
}

/// "Total 250/600 — 20 passed, 46 failed", like the human report's last
/// line without the time, plus skipped checks and build errors if any.
fn summary(report: &Report) -> String {
    let mut s =
        format!("Total {}/{} — {} passed, {} failed", report.score, report.max_score, report.passed, report.failed);
    let skipped = report.exercises.iter().flat_map(|e| &e.checks).filter(|c| c.status == Status::Skipped).count();
    if skipped > 0 {
        s.push_str(&format!(", {skipped} skipped (not counted)"));
    }
    let broken: Vec<&str> =
        report.exercises.iter().filter(|e| e.build_error.is_some()).map(|e| e.id.as_str()).collect();
    if !broken.is_empty() {
        s.push_str(&format!("; did not compile: {}", broken.join(", ")));
    }
    s
}

fn test(ex: &ExerciseResult, c: &CheckResult) -> Test {
    let (status, output) = match c.status {
        Status::Passed => ("passed", String::new()),
        Status::Skipped => (
            "passed",
            format!(
                "{}\nThis check could not run on the grading machine; it is not counted (0 of 0 points).",
                c.message
            ),
        ),
        Status::Failed | Status::Error => {
            let mut out = c.message.clone();
            if let Some(err) = &ex.build_error {
                out.push_str("\n\ncompiler output:\n");
                out.push_str(err);
            }
            ("failed", out)
        }
    };
    Test {
        name: format!("{}/{} — {}", ex.id, c.id, c.title),
        score: c.points,
        max_score: c.max_points,
        status,
        output,
        visibility: "visible",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;
    use serde_json::Value;

    #[test]
    fn totals_and_one_test_per_check() {
        let report = fixtures::sample();
        let v: Value = serde_json::from_str(&render(&report)).unwrap();
        assert_eq!(v["score"], 15);
        assert_eq!(v["max_score"], 50);
        assert_eq!(v["execution_time"], 2, "1234 ms round up to 2 s");
        assert_eq!(v["output"], "Total 15/50 — 2 passed, 4 failed, 1 skipped (not counted); did not compile: framing");
        let tests = v["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 7);
        let sum: u64 = tests.iter().map(|t| t["score"].as_u64().unwrap()).sum();
        let max: u64 = tests.iter().map(|t| t["max_score"].as_u64().unwrap()).sum();
        assert_eq!((sum, max), (15, 50));
        assert!(tests.iter().all(|t| t["visibility"] == "visible"));
    }

    #[test]
    fn statuses_names_and_outputs() {
        let v: Value = serde_json::from_str(&render(&fixtures::sample())).unwrap();
        let test = |name: &str| v["tests"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap().clone();
        let ready = test("signals/ready — ready works");
        assert_eq!((ready["status"].as_str(), ready["output"].as_str()), (Some("passed"), Some("")));
        let echo = test("signals/echo — echo works");
        assert_eq!(echo["status"], "failed");
        assert!(echo["output"].as_str().unwrap().starts_with("not implemented yet\ndid: started the program\n"));
        assert_eq!(test("signals/sigint-idle — sigint-idle works")["status"], "failed");
        let skipped = test("signals/ipv6 — ipv6 works");
        assert_eq!((skipped["status"].as_str(), skipped["max_score"].as_u64()), (Some("passed"), Some(0)));
        assert!(skipped["output"].as_str().unwrap().starts_with("skipped: no IPv6 loopback\n"));
        let built = test("framing/encode-bytes — encode-bytes works");
        assert!(built["output"].as_str().unwrap().contains("compiler output:\nerror[E0308]: mismatched types\n -->"));
    }
}
