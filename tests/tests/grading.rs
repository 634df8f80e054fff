//! The reference solutions score full marks; the untouched skeletons score
//! zero, quickly, with "not implemented yet" and never a hang.

use std::time::{Duration, Instant};

use ipc_lab_tests::grade_json;
use rstest::rstest;

#[rstest]
#[case::signals("signals")]
#[case::shm("shm")]
#[case::framing("framing")]
#[case::pipeline("pipeline")]
#[case::sockets("sockets")]
#[case::select("select")]
fn solution_scores_full_marks(#[case] exercise: &str) {
    let (code, report) = grade_json(&["--solutions", exercise]);
    let failed: Vec<_> = report.checks(exercise).into_iter().filter(|(_, (s, _))| s != "passed").collect();
    assert!(failed.is_empty(), "solution failed checks: {failed:#?}");
    assert_eq!(report.score(), report.max_score());
    assert!(report.max_score() >= 90 && report.max_score() <= 110, "about 100 points per exercise");
    assert_eq!(code, 0);
}

#[rstest]
#[case::signals("signals")]
#[case::shm("shm")]
#[case::framing("framing")]
#[case::pipeline("pipeline")]
#[case::sockets("sockets")]
#[case::select("select")]
fn skeleton_scores_zero_and_says_not_implemented(#[case] exercise: &str) {
    let started = Instant::now();
    let (code, report) = grade_json(&[exercise]);
    assert!(started.elapsed() < Duration::from_secs(30), "skeleton grading took {:?}", started.elapsed());
    assert_eq!(code, 1);
    assert_eq!(report.score(), 0);
    for (id, (status, message)) in report.checks(exercise) {
        assert_eq!(status, "failed", "{id}: {message}");
        assert!(message.starts_with("not implemented yet"), "{id}: {message}");
        assert!(message.contains("rerun: cargo grade "), "{id}: {message}");
        assert!(message.contains(&format!(" {exercise} --check {id}")), "{id}: {message}");
    }
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
