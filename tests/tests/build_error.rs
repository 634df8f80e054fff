//! A compile error in one exercise scores that exercise 0 with the
//! compiler's message; the other exercises are still graded.

use ipc_lab_tests::{copy_tree, grader, root, Report};

#[test]
fn compile_error_scores_that_exercise_zero_and_grades_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path();
    for f in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(root().join(f), ws.join(f)).unwrap();
    }
    for d in ["grader", "tests", "exercises", "solutions"] {
        copy_tree(&root().join(d), &ws.join(d));
    }
    let main = ws.join("exercises/signals/src/main.rs");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text.push_str("\nfn broken() -> u32 { \"not a number\" }\n");
    std::fs::write(&main, text).unwrap();
    // Share compiled dependencies between runs of this test.
    let shared = root().join("target/build-error-test");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(&shared, ws.join("target")).unwrap();

    let out =
        std::process::Command::new(grader()).args(["--root"]).arg(ws).args(["--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report = Report(serde_json::from_slice(&out.stdout).unwrap());
    let signals = report.exercise("signals");
    assert_eq!(signals["score"], 0);
    let err = signals["build_error"].as_str().expect("build_error");
    assert!(err.contains("mismatched types") && err.contains("src/main.rs"), "{err}");
    for (id, (status, message)) in report.checks("signals") {
        assert_eq!(status, "error", "{id}");
        assert!(message.starts_with("build error"), "{id}: {message}");
    }
    // framing still graded: its skeleton runs and reaches todo!().
    for (id, (status, message)) in report.checks("framing") {
        assert_eq!(status, "failed", "{id}");
        assert!(message.starts_with("not implemented yet"), "{id}: {message}");
    }
}
