//! Every mutant — a copy of a reference solution with one realistic student
//! bug — fails the checks meant to catch it and passes every check it has
//! no business failing. And the mutants cover the grader's registry: every
//! exercise has enough of them, and every check catches at least one.

use std::path::PathBuf;

use ipc_lab_tests::{grade_json, mutant_bins, registry, Mutant};
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
    let checks = report.checks(&m.exercise);
    // A machine that cannot run the checks (no dbus-daemon for `bus`)
    // skips them: the mutant cannot be judged here, which is said.
    if m.catches.iter().all(|id| checks.get(id).is_some_and(|(status, _)| status == "skipped")) {
        eprintln!("skipped mutant {}: every check that catches it was skipped on this machine", m.name);
        return;
    }
    assert_eq!(code, 1, "mutant {} ({}) passed everything", m.name, m.bug);
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

/// Mutants every exercise of the registry must have at least.
const MIN_MUTANTS: usize = 6;

#[test]
fn enough_mutants_per_exercise() {
    let all = Mutant::all();
    let thin: Vec<String> = registry()
        .iter()
        .map(|ex| (ex.id, all.iter().filter(|m| m.exercise == ex.id).count()))
        .filter(|&(_, n)| n < MIN_MUTANTS)
        .map(|(id, n)| format!("{id} has {n} (tests/mutants/{id}/*.toml)"))
        .collect();
    assert!(thin.is_empty(), "fewer than {MIN_MUTANTS} mutants:\n  {}", thin.join("\n  "));
}

/// Every check of every exercise in the registry is listed in the `catches`
/// of at least one mutant: each check is proved to fail for some real bug
/// (and [`mutant_is_caught`] proves that it does). A file test, fast.
#[test]
fn every_check_is_caught_by_a_mutant() {
    let all = Mutant::all();
    let mut uncaught = Vec::new();
    for ex in registry() {
        for check in &ex.checks {
            if !all.iter().any(|m| m.exercise == ex.id && m.catches.iter().any(|c| c == check)) {
                uncaught.push(format!("{}/{check}", ex.id));
            }
        }
    }
    assert!(
        uncaught.is_empty(),
        "checks no mutant catches (add one under tests/mutants/<exercise>/ that lists it in `catches`):\n  {}",
        uncaught.join("\n  ")
    );
}

/// Every mutant belongs to an exercise of the registry and names only its
/// checks, each once, none both caught and allowed to fail.
#[test]
fn mutants_name_known_checks() {
    let registry = registry();
    let mut problems = Vec::new();
    for m in Mutant::all() {
        let Some(ex) = registry.iter().find(|e| e.id == m.exercise) else {
            problems.push(format!("{}/{}: no exercise `{}` in the registry", m.exercise, m.name, m.exercise));
            continue;
        };
        if m.catches.is_empty() {
            problems.push(format!("{}/{}: `catches` is empty", m.exercise, m.name));
        }
        let named: Vec<&String> = m.catches.iter().chain(&m.may_fail).collect();
        for (i, id) in named.iter().enumerate() {
            if !ex.checks.contains(&id.as_str()) {
                problems.push(format!("{}/{}: no check `{id}` in {}", m.exercise, m.name, ex.id));
            }
            if named[..i].contains(id) {
                problems.push(format!("{}/{}: `{id}` named twice in catches/may_fail", m.exercise, m.name));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every mutant's edits apply to today's solution (each `find` occurs
/// exactly once), found without building anything.
#[test]
fn every_mutant_applies_to_its_solution() {
    let problems: Vec<String> = Mutant::all().iter().filter_map(|m| m.sources().err()).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
