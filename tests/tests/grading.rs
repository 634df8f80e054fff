//! The reference solutions score full marks; the untouched skeletons score
//! zero, quickly, with "not implemented yet" and never a hang.

use std::time::{Duration, Instant};

use ipc_lab_tests::grade_json;
use rstest::rstest;

#[rstest]
#[case::signals("signals")]
#[case::framing("framing")]
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
#[case::framing("framing")]
fn skeleton_scores_zero_and_says_not_implemented(#[case] exercise: &str) {
    let started = Instant::now();
    let (code, report) = grade_json(&[exercise]);
    assert!(started.elapsed() < Duration::from_secs(30), "skeleton grading took {:?}", started.elapsed());
    assert_eq!(code, 1);
    assert_eq!(report.score(), 0);
    for (id, (status, message)) in report.checks(exercise) {
        assert_eq!(status, "failed", "{id}: {message}");
        assert!(message.starts_with("not implemented yet"), "{id}: {message}");
        assert!(message.contains(&format!("rerun: cargo grade {exercise} --check {id}")), "{id}: {message}");
    }
}
