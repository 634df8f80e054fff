//! Every mutant — a copy of a reference solution with one realistic student
//! bug — fails the checks meant to catch it and passes every check it has
//! no business failing.

use std::path::PathBuf;

use ipc_lab_tests::{grade_json, mutant_bins, Mutant};
use rstest::rstest;

fn check_mutant(path: PathBuf) {
    let m = Mutant::load(&path);
    let mut args = vec![m.exercise.clone()];
    for (bin, exe) in &mutant_bins()[&m.bin_name()] {
        args.push("--bin".into());
        args.push(format!("{bin}={}", exe.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, report) = grade_json(&args);
    assert_eq!(code, 1, "mutant {} ({}) passed everything", m.name, m.bug);
    let checks = report.checks(&m.exercise);
    for id in m.catches.iter().chain(&m.may_fail) {
        assert!(checks.contains_key(id), "mutant {} names unknown check {id}", m.name);
    }
    for id in &m.catches {
        let (status, _) = &checks[id];
        assert_eq!(status, "failed", "mutant {} ({}) was not caught by {id}", m.name, m.bug);
    }
    for (id, (status, message)) in &checks {
        if !m.catches.contains(id) && !m.may_fail.contains(id) {
            assert_eq!(status, "passed", "mutant {} ({}) made {id} fail unexpectedly:\n{message}", m.name, m.bug);
        }
    }
}

/// One test per mutant file, named after it.
#[rstest]
fn mutant_is_caught(#[files("mutants/*/*.toml")] path: PathBuf) {
    check_mutant(path);
}

#[test]
fn enough_mutants_per_exercise() {
    let all = Mutant::all();
    for ex in ["signals", "shm", "framing", "pipeline", "sockets", "select"] {
        let n = all.iter().filter(|m| m.exercise == ex).count();
        assert!(n >= 6, "{ex} has only {n} mutants");
    }
}
