//! The report formats agree with each other and with the JSON report: one
//! grader run per scenario writes JSON, JUnit and Gradescope files with
//! `--report`, the human report to stdout, and with `--github` the job
//! summary and the annotations.

use std::collections::BTreeSet;
use std::path::Path;

use ipc_lab_tests::{grader_cmd, registry, root};
use serde_json::Value;

/// What one grader run wrote.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    json: Value,
    junit: String,
    gradescope: Value,
    summary: Option<String>,
}

/// Grade `args` with `--github` and every machine format as `--report`;
/// with `summary`, `GITHUB_STEP_SUMMARY` names a file in a temp dir
/// (otherwise it is unset).
fn run(args: &[&str], summary: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let mut cmd = grader_cmd();
    cmd.args(args).arg("--github").env_remove("GITHUB_STEP_SUMMARY");
    for (format, file) in [("json", "report.json"), ("junit", "junit.xml"), ("gradescope", "gradescope/results.json")] {
        cmd.arg("--report").arg(format!("{format}={}", path(file).display()));
    }
    if summary {
        cmd.env("GITHUB_STEP_SUMMARY", path("summary.md"));
    }
    let out = cmd.output().expect("run grader");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 stdout");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let read = |name: &str| {
        std::fs::read_to_string(path(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\nstdout: {stdout}\nstderr: {stderr}"))
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_str(&read("report.json")).expect("JSON report"),
        junit: read("junit.xml"),
        gradescope: serde_json::from_str(&read("gradescope/results.json")).expect("Gradescope JSON"),
        summary: summary.then(|| read("summary.md")),
        stdout,
        stderr,
    }
}

/// (exercise, check) of every check in the JSON report, in order.
fn checks(json: &Value) -> Vec<(&Value, &Value)> {
    json["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["checks"].as_array().unwrap().iter().map(move |c| (e, c)))
        .collect()
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// The human report's `Total X/Y` as (X, Y).
fn human_total(stdout: &str) -> (u64, u64) {
    let line = stdout.lines().find(|l| l.starts_with("Total ")).unwrap_or_else(|| panic!("no Total line:\n{stdout}"));
    let (x, y) = line["Total ".len()..].split_once(' ').unwrap().0.split_once('/').unwrap();
    (x.parse().unwrap(), y.parse().unwrap())
}

/// The JUnit file parses, and has one testcase per check of the JSON
/// report with its state and points.
fn assert_junit_matches(junit: &str, json: &Value) {
    let doc = roxmltree::Document::parse(junit).unwrap_or_else(|e| panic!("JUnit does not parse: {e}\n{junit}"));
    let top = doc.root_element();
    assert_eq!((top.tag_name().name(), top.attribute("name")), ("testsuites", Some("ipc-lab")));
    let all = checks(json);
    assert_eq!(top.attribute("tests").unwrap().parse::<usize>().unwrap(), all.len());
    let count = |status: &str| all.iter().filter(|(_, c)| c["status"] == status).count().to_string();
    assert_eq!(top.attribute("failures"), Some(count("failed").as_str()));
    assert_eq!(top.attribute("errors"), Some(count("error").as_str()));
    assert_eq!(top.attribute("skipped"), Some(count("skipped").as_str()));

    let suites: Vec<_> = top.children().filter(|n| n.has_tag_name("testsuite")).collect();
    let ids: Vec<&str> = json["exercises"].as_array().unwrap().iter().map(|e| str_of(&e["id"])).collect();
    assert_eq!(suites.iter().map(|s| s.attribute("name").unwrap()).collect::<Vec<_>>(), ids);
    let mut seen = 0;
    for (ex, c) in all {
        let suite = suites.iter().find(|s| s.attribute("name") == Some(str_of(&ex["id"]))).unwrap();
        let case = suite
            .children()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(str_of(&c["id"])))
            .unwrap_or_else(|| panic!("no testcase {}/{}", ex["id"], c["id"]));
        assert_eq!(case.attribute("classname"), Some(str_of(&ex["id"])));
        let prop = |name: &str| {
            case.descendants()
                .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
                .and_then(|n| n.attribute("value"))
                .unwrap_or_else(|| panic!("{}/{}: no property {name}", ex["id"], c["id"]))
                .to_string()
        };
        assert_eq!(prop("points"), c["points"].to_string());
        assert_eq!(prop("max_points"), c["max_points"].to_string());
        assert_eq!(prop("title"), str_of(&c["title"]));
        let states: Vec<&str> = case
            .children()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name())
            .filter(|t| ["failure", "error", "skipped"].contains(t))
            .collect();
        let want: &[&str] = match str_of(&c["status"]) {
            "passed" => &[],
            "failed" => &["failure"],
            "error" => &["error"],
            "skipped" => &["skipped"],
            s => panic!("status {s}"),
        };
        assert_eq!(states, want, "{}/{}", ex["id"], c["id"]);
        if let Some(node) = case.children().find(|n| n.has_tag_name("failure") || n.has_tag_name("error")) {
            assert_eq!(node.text(), c["message"].as_str(), "the full message as the text");
            assert!(!node.attribute("message").unwrap().contains('\n'), "a one-line message attribute");
        }
        seen += 1;
    }
    let cases = doc.descendants().filter(|n| n.has_tag_name("testcase")).count();
    assert_eq!(cases, seen, "no testcase beyond the checks");
}

/// Gradescope's score and max_score, and the sums over its tests, equal
/// the JSON report's totals and the human report's `Total X/Y`.
fn assert_gradescope_matches(gs: &Value, json: &Value, stdout: &str) {
    let (score, max) = (json["score"].as_u64().unwrap(), json["max_score"].as_u64().unwrap());
    assert_eq!((gs["score"].as_u64(), gs["max_score"].as_u64()), (Some(score), Some(max)));
    assert_eq!(human_total(stdout), (score, max));
    let tests = gs["tests"].as_array().unwrap();
    let sum = |key: &str| tests.iter().map(|t| t[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("score"), sum("max_score")), (score, max));
    assert!(gs["execution_time"].is_u64());
    assert!(str_of(&gs["output"]).starts_with(&format!("Total {score}/{max} — ")), "{}", gs["output"]);
    let all = checks(json);
    assert_eq!(tests.len(), all.len());
    for ((ex, c), t) in all.iter().zip(tests) {
        assert_eq!(str_of(&t["name"]), format!("{}/{} — {}", str_of(&ex["id"]), str_of(&c["id"]), str_of(&c["title"])));
        assert_eq!((&t["score"], &t["max_score"]), (&c["points"], &c["max_points"]));
        let want = if c["status"] == "failed" || c["status"] == "error" { "failed" } else { "passed" };
        assert_eq!(t["status"], want, "{}", t["name"]);
        assert_eq!(t["visibility"], "visible");
        if want == "failed" {
            assert!(str_of(&t["output"]).starts_with(str_of(&c["message"])), "{}", t["name"]);
        }
    }
}

/// The job summary has one table row per check with its points and status.
fn assert_summary_matches(md: &str, json: &Value) {
    let (score, max) = (&json["score"], &json["max_score"]);
    assert!(md.starts_with(&format!("## ipc-lab grade: {score}/{max} points\n")), "{md}");
    let all = checks(json);
    let rows = md.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| Exercise") && !l.starts_with("| ---"));
    assert_eq!(rows.count(), all.len(), "{md}");
    for (ex, c) in all {
        let emoji = match str_of(&c["status"]) {
            "passed" => "✅",
            "failed" => "❌",
            "error" => "⚠️",
            _ => "⏭️",
        };
        let row = format!(
            "| {} | {} | {}/{} | {emoji} | ",
            str_of(&ex["id"]),
            str_of(&c["id"]),
            c["points"],
            c["max_points"]
        );
        assert!(md.contains(&row), "no row `{row}` in\n{md}");
    }
}

/// The report on stdout with `--github`: between `::stop-commands::TOKEN`
/// and `::TOKEN::`, where GitHub runs no command; and what follows it.
fn fenced(stdout: &str) -> (&str, &str) {
    let (start, rest) = stdout.split_once('\n').expect("a first line");
    let token = start.strip_prefix("::stop-commands::").unwrap_or_else(|| panic!("not fenced:\n{stdout}"));
    let (report, after) = rest.split_once(&format!("::{token}::\n")).unwrap_or_else(|| panic!("no end:\n{stdout}"));
    (report, after)
}

/// The workflow commands on stdout: they follow the fenced human report, one
/// line each. Returns the `::error` lines.
fn annotations(stdout: &str) -> Vec<&str> {
    let (report, after) = fenced(stdout);
    assert!(report.lines().any(|l| l.starts_with("Total ")), "the human report comes first:\n{stdout}");
    assert!(
        after.lines().all(|l| l.starts_with("::error ") || l.starts_with("::notice ")),
        "every line after the human report is one workflow command:\n{after}"
    );
    after.lines().filter(|l| l.starts_with("::error ")).collect()
}

/// `key=value` properties of a workflow command.
fn properties(line: &str) -> Vec<(&str, &str)> {
    let props = line.strip_prefix("::error ").unwrap().split_once("::").unwrap().0;
    props.split(',').map(|p| p.split_once('=').unwrap()).collect()
}

#[test]
fn skeletons_fail_every_check_in_every_format() {
    let r = run(&[], true);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.stdout.contains('\x1b'), "no colour codes when stdout is not a terminal");
    let all = checks(&r.json);
    let total: usize = registry().iter().map(|e| e.checks.len()).sum();
    assert_eq!(all.len(), total);
    assert!(all.iter().all(|(_, c)| c["status"] == "failed"));
    assert_junit_matches(&r.junit, &r.json);
    assert_gradescope_matches(&r.gradescope, &r.json, &r.stdout);
    let md = r.summary.as_deref().unwrap();
    assert_summary_matches(md, &r.json);
    assert_eq!(md.matches("<details>").count(), total, "every failure in detail");
    assert!(!md.contains('\x1b'));

    // One annotation per `todo!()` place, naming every check waiting for
    // it; together with the notice (if any) they account for all.
    let errors = annotations(&r.stdout);
    assert!(!errors.is_empty() && errors.len() <= 10, "{}", r.stdout);
    let notice: usize = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("::notice title=ipc-lab::"))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .unwrap_or(0);
    let mut named = 0;
    let exercises: BTreeSet<&str> = all.iter().map(|(e, _)| str_of(&e["id"])).collect();
    for line in &errors {
        let props = properties(line);
        let file = props.iter().find(|(k, _)| *k == "file").unwrap_or_else(|| panic!("no file= in {line}")).1;
        let n: usize = props.iter().find(|(k, _)| *k == "line").unwrap().1.parse().unwrap();
        // The skeleton's `todo!()` itself: the file is in the repository
        // and the line holds it.
        let text = std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let at = text.lines().nth(n - 1).unwrap();
        assert!(at.contains("todo!("), "{file}:{n} is `{at}`");
        let exercise = Path::new(file).iter().nth(1).unwrap().to_str().unwrap();
        assert!(file.starts_with("exercises/") && exercises.contains(exercise), "{file}");
        let title = props.iter().find(|(k, _)| *k == "title").unwrap().1;
        let message = line.split_once("::").unwrap().1.split_once("::").unwrap().1;
        if let Some(waiting) = message.split("%0Achecks waiting for it: ").nth(1) {
            let ids = waiting.split("%0A").next().unwrap().split(", ").count();
            assert!(ids > 1, "{line}");
            assert!(title.starts_with(&format!("{exercise}%3A not implemented yet ({ids} checks%2C ")), "{title}");
            named += ids;
        } else {
            assert!(title.starts_with(&format!("{exercise}/")) && title.ends_with(" points)"), "{title}");
            assert!(message.starts_with("not implemented yet%0Adid: "), "{line}");
            named += 1;
        }
    }
    assert_eq!(named + notice, total, "{}", r.stdout);
}

#[test]
fn mixed_results_agree_and_point_only_at_built_sources() {
    // The server comes from --bin and fails every server check; the
    // solution's client passes its checks; framing passes all.
    let r = run(&["--solutions", "sockets", "framing", "--bin", "tcp-server=/bin/true"], true);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let all = checks(&r.json);
    let failed: Vec<&str> =
        all.iter().filter(|(_, c)| c["status"] == "failed").map(|(_, c)| str_of(&c["id"])).collect();
    assert!(!failed.is_empty() && failed.iter().all(|id| id.starts_with("server-")), "{failed:?}");
    assert!(all.iter().any(|(e, c)| e["id"] == "sockets" && c["status"] == "passed"));
    assert!(all.iter().filter(|(e, _)| e["id"] == "framing").all(|(_, c)| c["status"] == "passed"));
    assert_junit_matches(&r.junit, &r.json);
    assert_gradescope_matches(&r.gradescope, &r.json, &r.stdout);
    assert_summary_matches(r.summary.as_deref().unwrap(), &r.json);

    // Every failing check ran only the server given with --bin: its
    // annotation names no file (the solution's tcp-server.rs did not run).
    let errors = annotations(&r.stdout);
    assert_eq!(errors.len(), failed.len().min(10));
    assert_eq!(r.stdout.contains("::notice "), failed.len() > 10);
    for line in errors {
        assert!(properties(line).iter().all(|(k, _)| *k == "title"), "{line}");
        assert!(line.starts_with("::error title=sockets/server-"), "{line}");
    }
    let sockets = r.json["exercises"].as_array().unwrap().iter().find(|e| e["id"] == "sockets").unwrap();
    assert_eq!(sockets["bin_sources"], serde_json::json!({"tcp-client": "solutions/sockets/src/bin/tcp-client.rs"}));
    for c in sockets["checks"].as_array().unwrap() {
        let bin = if str_of(&c["id"]).starts_with("server-") { "tcp-server" } else { "tcp-client" };
        assert_eq!(c["programs"], serde_json::json!([bin]), "{}", c["id"]);
    }
}

#[test]
fn github_without_a_summary_file_warns_once_and_keeps_the_exit_status() {
    // Failing: exit 1, the annotation still goes out.
    let r = run(&["signals", "--check", "eof"], false);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("grader: warning: --github: GITHUB_STEP_SUMMARY is not set;"), "{}", r.stderr);
    assert_eq!(annotations(&r.stdout).len(), 1);
    assert_gradescope_matches(&r.gradescope, &r.json, &r.stdout);

    // Passing, with the variable set but empty: exit 0, no annotation.
    let out = grader_cmd()
        .args(["--solutions", "framing", "--check", "truncated", "--github"])
        .env("GITHUB_STEP_SUMMARY", "")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("GITHUB_STEP_SUMMARY is not set;"), "{stderr}");
    assert!(annotations(&stdout).is_empty() && fenced(&stdout).1.is_empty(), "{stdout}");
}

#[test]
fn the_summary_is_appended_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("summary.md");
    std::fs::write(&file, "# an earlier step\n").unwrap();
    let out = grader_cmd()
        .args(["signals", "--check", "eof", "--github", "--format", "json"])
        .env("GITHUB_STEP_SUMMARY", &file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let md = std::fs::read_to_string(&file).unwrap();
    assert!(md.starts_with("# an earlier step\n## ipc-lab grade: 0/5 points\n"), "{md}");
    // --format json on stdout, then the annotation.
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (json, rest) = fenced(&stdout);
    serde_json::from_str::<Value>(json).expect("the JSON report first");
    assert_eq!(rest.lines().count(), 1, "{rest}");
}
