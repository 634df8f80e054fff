//! The command line: usage errors (also options that clash) are one clear
//! line and exit 2; listing, hints, formats and `--bin` behave as
//! documented.

use assert_cmd::Command;
use ipc_lab_tests::{grade_json, grader, minimal_workspace, root};
use predicates::prelude::*;
use rstest::rstest;

fn cmd() -> Command {
    let mut c = Command::new(grader());
    c.current_dir(root()).timeout(std::time::Duration::from_secs(120));
    c
}

#[rstest]
#[case::unknown_exercise(&["nosuch"], "unknown exercise `nosuch` (known: signals, shm, framing, pipeline, sockets, select")]
#[case::unknown_check(&["signals", "--check", "nosuch"], "no check id contains `nosuch`")]
#[case::missing_bin(&["signals", "--bin", "sigecho=/nonexistent/a.out"], "--bin sigecho: /nonexistent/a.out: No such file")]
#[case::not_executable(&["signals", "--bin", "sigecho=Cargo.toml"], "--bin sigecho: Cargo.toml is not an executable file")]
#[case::unknown_binary(&["--bin", "nosuch=/bin/true"], "--bin: unknown binary `nosuch`")]
#[case::bad_bin_syntax(&["--bin", "sigecho"], "--bin takes NAME=PATH")]
#[case::zero_time_scale(&["--time-scale", "0"], "--time-scale must be a number above 0")]
#[case::hint_unknown(&["--hint", "nosuch"], "unknown exercise `nosuch`")]
#[case::report_without_file(&["--report", "junit"], "--report takes FORMAT=FILE, not `junit`")]
#[case::report_unknown_format(&["--report", "xml=out.xml"], "--report: unknown format `xml` (known: human, json, junit, gradescope)")]
#[case::report_empty_file(&["--report", "json="], "--report json=: the file name is missing")]
#[case::watch_unknown(&["--watch", "nosuch"], "unknown exercise `nosuch`")]
#[case::watch_with_format(&["--watch", "--format", "json"], "--watch shows its own view and cannot be combined with --format")]
#[case::watch_with_submission(&["--watch", "--submission", "."], "--watch shows its own view and cannot be combined with --submission")]
#[case::list_with_hint(&["--list", "--hint", "signals"], "--list shows every exercise and cannot be combined with --hint")]
#[case::list_with_watch(&["--watch", "--list"], "--list shows every exercise and cannot be combined with --watch")]
#[case::list_with_exercise(&["--list", "signals"], "--list shows every exercise and cannot be combined with EXERCISE arguments")]
#[case::list_with_solutions(&["--list", "--solutions"], "--list shows every exercise and cannot be combined with --solutions")]
#[case::list_with_output(&["--list", "--output", "x.txt"], "--list shows every exercise and cannot be combined with --output")]
#[case::hint_with_watch(&["--hint", "signals", "--watch", "signals"], "--hint prints the hints of one exercise and cannot be combined with --watch")]
#[case::hint_with_solutions(&["--hint", "signals", "--solutions"], "--hint prints the hints of one exercise and cannot be combined with --solutions")]
#[case::hint_unknown_check(&["--hint", "signals", "--check", "nosuch"], "no check id of signals contains `nosuch`")]
#[case::hint_level_out_of_range(&["--hint", "signals", "--level", "4"], "--level is 1 (the concept), 2 (the API) or 3 (the step), not 4")]
#[case::level_without_hint(&["signals", "--level", "2"], "--level chooses how much --hint gives away and needs --hint EXERCISE")]
#[case::list_with_check(&["--list", "--check", "eof"], "--list shows every exercise and cannot be combined with --check")]
#[case::hint_with_jobs(&["--hint", "signals", "-j", "2"], "--hint prints the hints of one exercise and cannot be combined with --jobs")]
fn usage_errors_are_one_line_and_exit_2(#[case] args: &[&str], #[case] message: &str) {
    let out = cmd().args(args).assert().code(2).stdout("");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    assert!(stderr.starts_with("grader: ") && stderr.contains(message), "{stderr}");
}

#[test]
fn clap_errors_exit_2() {
    cmd().args(["--format", "xml"]).assert().code(2).stderr(predicate::str::contains("invalid value 'xml'"));
    cmd().args(["--time-scale", "fast"]).assert().code(2);
}

#[test]
fn list_shows_every_exercise_and_check_with_points() {
    cmd()
        .arg("--list")
        .assert()
        .success()
        .stdout(predicate::str::contains("signals").and(predicate::str::contains("sigint-idle")))
        .stdout(predicate::str::contains("framing").and(predicate::str::contains("decode-drip")))
        .stdout(predicate::str::contains("(100 points; binaries: sigecho)"));
}

/// The line of `--list` output that starts with `prefix`.
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line `{prefix}…` in:\n{text}"))
}

#[test]
fn list_shows_the_last_run_merged_per_check_and_survives_a_corrupt_file() {
    let ws = tempfile::tempdir().unwrap();
    minimal_workspace(ws.path(), &["signals"]);
    let grade = |check: &str| {
        // The skeleton reaches a `todo!()` in every check.
        cmd().arg("--root").arg(ws.path()).args(["signals", "--check", check]).assert().code(1);
    };
    let list = || {
        let out = cmd().arg("--root").arg(ws.path()).arg("--list").assert().success();
        String::from_utf8_lossy(&out.get_output().stdout).into_owned()
    };

    grade("sigint");
    grade("eof");
    let text = list();
    assert!(line(&text, "signals ").ends_with("— 0/100 (3 of 10 checks graded), last graded just now"), "{text}");
    // Not a terminal: words, not marks.
    for id in ["sigint-idle", "sigint-mid-line", "eof"] {
        line(&text, &format!("  failed     {id} "));
    }
    line(&text, "  not graded echo ");
    assert!(line(&text, "shm ").ends_with("(100 points; binaries: shm-handshake) — not graded yet"), "{text}");
    line(&text, "  lines ");
    assert!(!text.contains('\x1b'), "{text}");

    let file = ws.path().join("target/ipc-lab/last-run.json");
    std::fs::write(&file, "{\"version\": 1, \"exerc").unwrap();
    let text = list();
    assert!(line(&text, "signals ").ends_with("— not graded yet"), "{text}");
    assert!(!text.contains("failed"), "{text}");
}

#[test]
fn hints_come_in_levels_per_todo_and_per_check() {
    let text = |args: &[&str]| {
        let out = cmd().args(args).assert().success();
        String::from_utf8_lossy(&out.get_output().stdout).into_owned()
    };
    let concept = text(&["--hint", "signals"]);
    assert!(concept.contains("Slides:") && concept.contains("Level 1 of 3: the concept"), "{concept}");
    assert!(concept.contains("TODO 5 — echo_loop (exercises/signals/src/main.rs)"), "{concept}");
    assert!(concept.contains("\n  cargo grade --hint signals --level 2\n"), "{concept}");
    assert!(!concept.contains("SaFlags"), "level 1 names no API:\n{concept}");

    let api = text(&["--hint", "signals", "--check", "sigint-idle", "--level", "2"]);
    assert!(api.contains("signals/sigint-idle — ") && api.contains("SA_RESTART"), "{api}");
    assert!(!api.contains("TODO 4 — assemble_lines"), "only the TODOs behind the check:\n{api}");
    assert!(api.contains("\n  cargo grade --hint signals --check sigint-idle --level 3\n"), "{api}");
    assert!(api.lines().all(|l| l.chars().count() <= 80), "{api}");
}

#[test]
fn json_report_has_the_documented_shape() {
    let (code, report) = grade_json(&["--solutions", "framing", "--check", "encode"]);
    assert_eq!(code, 0);
    let v = &report.0;
    assert!(v["score"].is_u64() && v["max_score"].is_u64());
    let ex = &v["exercises"][0];
    for key in ["id", "score", "max_score", "checks"] {
        assert!(!ex[key].is_null(), "exercise lacks {key}");
    }
    let check = &ex["checks"][0];
    for key in ["id", "title", "points", "max_points", "status", "message", "duration_ms"] {
        assert!(!check[key].is_null(), "check lacks {key}");
    }
    // --check filters by substring: encode-bytes and encode-reader-gone.
    let ids: Vec<&str> = ex["checks"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["encode-bytes", "encode-reader-gone"]);
}

#[test]
fn human_report_ends_with_total_and_wall_time_and_output_file_works() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.txt");
    cmd().args(["--solutions", "framing", "--check", "truncated", "--output"]).arg(&file).assert().success().stdout("");
    let text = std::fs::read_to_string(&file).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("Total 10/10 — 1 passed, 0 failed in "), "{last}");
    assert!(!text.contains('\x1b'), "no colour codes into a file");
}

#[test]
fn bin_alone_grades_only_the_exercises_whose_binaries_are_all_given() {
    // Build the solution's sigecho, then hand it over with --bin only.
    grade_json(&["--solutions", "signals", "--check", "eof"]);
    let sigecho = root().join("target/solutions/debug/sigecho");
    let (code, report) = grade_json(&["--bin", &format!("sigecho={}", sigecho.display()), "--check", "echo"]);
    assert_eq!(code, 0);
    let ids: Vec<&str> = report.0["exercises"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["signals"]);
}

#[test]
fn failing_check_exits_1_and_names_the_rerun_command() {
    // `true` is an executable that does nothing: every check fails.
    let out = cmd().args(["signals", "--check", "eof", "--bin", "sigecho=/bin/true"]).assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("rerun:     cargo grade --bin sigecho=/bin/true signals --check eof"), "{text}");
    assert!(text.contains("sigecho exited with status 0"), "{text}");
}
