//! The reference solutions score full marks; the untouched skeletons score
//! zero, quickly, with "not implemented yet" and never a hang. Both loop
//! over the grader's registry, so a new exercise is covered without an edit
//! here; each collects the problems of every exercise and reports them all.

use std::time::Duration;

use ipc_lab_tests::{grade_json, registry, Listed, Report};

/// The registry's exercise ids, as grader arguments.
fn ids(exercises: &[Listed]) -> Vec<&str> {
    exercises.iter().map(|e| e.id).collect()
}

/// What is wrong with `exercise` in `report` apart from its verdicts: the
/// report must hold exactly the registry's checks, in its order.
fn listing_problems(report: &Report, exercise: &Listed) -> Vec<String> {
    let got: Vec<String> = report.exercise(exercise.id)["checks"]
        .as_array()
        .expect("checks[]")
        .iter()
        .map(|c| c["id"].as_str().expect("check id").to_string())
        .collect();
    if got == exercise.checks {
        Vec::new()
    } else {
        vec![format!("{}: the report lists the checks {got:?}, the registry {:?}", exercise.id, exercise.checks)]
    }
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn solutions_score_full_marks() {
    let exercises = registry();
    let mut args = vec!["--solutions"];
    args.extend(ids(&exercises));
    let (code, report) = grade_json(&args);
    let mut problems = Vec::new();
    for exercise in &exercises {
        problems.extend(listing_problems(&report, exercise));
        let mut skipped = false;
        for (id, (status, message)) in report.checks(exercise.id) {
            // A check this machine cannot run (no IPv6 loopback, no
            // dbus-daemon) is skipped and counts neither way.
            skipped |= status == "skipped";
            if status != "passed" && status != "skipped" {
                problems.push(format!("{}/{id} {status}:\n{message}", exercise.id));
            }
        }
        let max = report.exercise(exercise.id)["max_score"].as_u64().expect("max_score");
        if !skipped && !(90..=110).contains(&max) {
            problems.push(format!("{}: {max} points in all, not about 100", exercise.id));
        }
    }
    assert_no_problems("reference solutions", &problems);
    assert_eq!(report.score(), report.max_score());
    assert_eq!(code, 0);
}

#[test]
fn skeletons_score_zero_and_say_not_implemented() {
    let exercises = registry();
    let (code, report) = grade_json(&ids(&exercises));
    // Grading time without the build: every check reaches a `todo!()` at
    // once, so the whole set is quick; a check that waits for a time-out
    // instead would show here.
    let graded_in = Duration::from_millis(report.0["wall_ms"].as_u64().expect("wall_ms"));
    let mut problems = Vec::new();
    for exercise in &exercises {
        problems.extend(listing_problems(&report, exercise));
        for (id, (status, message)) in report.checks(exercise.id) {
            let rerun = format!(" {} --check {id}", exercise.id);
            if status == "skipped" {
                continue;
            }
            if status != "failed"
                || !message.starts_with("not implemented yet")
                || !message.contains("rerun: cargo grade ")
                || !message.contains(&rerun)
            {
                problems.push(format!(
                    "{}/{id} {status}, not failed as \"not implemented yet\" with `rerun: cargo grade …{rerun}`:\n{message}",
                    exercise.id
                ));
            }
        }
    }
    assert_no_problems("untouched skeletons", &problems);
    assert!(graded_in < Duration::from_secs(30), "grading the skeletons took {graded_in:?}");
    assert_eq!(report.score(), 0);
    assert_eq!(code, 1);
}

/// The grader judges any executable: the C version of `sigecho` scores full
/// marks too (skipped where no C compiler is installed).
#[test]
fn c_program_can_be_graded_with_bin() {
    let Ok(cc) = which_cc() else {
        eprintln!("skipped: no C compiler (cc/gcc) on this machine");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("sigecho");
    let src = ipc_lab_tests::root().join("examples/c/sigecho.c");
    let status = std::process::Command::new(cc).args(["-O2", "-Wall", "-o"]).arg(&exe).arg(&src).status().unwrap();
    assert!(status.success(), "compiling {} failed", src.display());
    let (code, report) = grade_json(&["signals", "--bin", &format!("sigecho={}", exe.display())]);
    let failed: Vec<_> = report.checks("signals").into_iter().filter(|(_, (s, _))| s != "passed").collect();
    assert!(failed.is_empty(), "C sigecho failed: {failed:#?}");
    assert_eq!(code, 0);
}

fn which_cc() -> Result<&'static str, ()> {
    ["cc", "gcc"]
        .into_iter()
        .find(|cc| std::process::Command::new(cc).arg("--version").output().is_ok_and(|o| o.status.success()))
        .ok_or(())
}

/// Where there is no `dbus-daemon`, every `bus` check is skipped with the
/// reason and the package to install — never failed, never a hang — and
/// the exercise counts neither way. (`GRADER_DBUS_DAEMON` pointed at a
/// daemon that is not there: the machine this test runs on may have one.)
#[test]
fn without_a_dbus_daemon_the_bus_checks_are_skipped_with_the_package_to_install() {
    let out = ipc_lab_tests::grader_cmd()
        .args(["--solutions", "bus", "--format", "json"])
        .env("GRADER_DBUS_DAEMON", "/nonexistent/dbus-daemon")
        .output()
        .expect("run grader");
    let report = Report(serde_json::from_slice(&out.stdout).expect("a JSON report"));
    let checks = report.checks("bus");
    assert!(!checks.is_empty());
    for (id, (status, message)) in &checks {
        assert_eq!(status, "skipped", "bus/{id}: {message}");
        assert!(message.contains("dbus-daemon") && message.contains("install"), "bus/{id}: {message}");
        assert!(message.contains("/nonexistent/dbus-daemon"), "bus/{id} names what it tried: {message}");
    }
    assert_eq!(out.status.code(), Some(0), "skipped checks are no failure");
}
