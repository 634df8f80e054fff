//! `--submission DIR`: a student's checkout is graded with the instructor's
//! grader and checks; nothing of the checkout but its exercise crates takes
//! part, and a broken crate costs only its own exercise.

use ipc_lab_tests::{grader_cmd, make_submission, From, Report};

#[test]
fn checkout_is_graded_with_these_checks_and_nothing_else_of_theirs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("alice");
    let crates =
        make_submission(&dir, &[("signals", From::Solution), ("framing", From::Solution), ("shm", From::Solution)]);
    // Things a student's checkout may carry that must not take part: if
    // Cargo or rustup read any of these, nothing would build.
    let evil_config = "[build]\nrustc = \"/nonexistent/rustc\"\n";
    let evil_toolchain = "[toolchain]\nchannel = \"nightly-1999-01-01\"\n";
    for base in [dir.clone(), crates["signals"].clone()] {
        std::fs::create_dir_all(base.join(".cargo")).unwrap();
        std::fs::write(base.join(".cargo/config.toml"), evil_config).unwrap();
        std::fs::write(base.join("rust-toolchain.toml"), evil_toolchain).unwrap();
    }
    std::fs::create_dir_all(dir.join("grader/src")).unwrap();
    std::fs::write(dir.join("grader/src/main.rs"), "compile_error!(\"the student's grader must not be built\");")
        .unwrap();
    // A renamed package costs only its exercise.
    let shm = crates["shm"].join("Cargo.toml");
    let text = std::fs::read_to_string(&shm).unwrap().replacen("name = \"shm\"", "name = \"my-shm\"", 1);
    std::fs::write(&shm, text).unwrap();

    let out = grader_cmd()
        .arg("--submission")
        .arg(&dir)
        .args(["signals", "framing", "shm", "pipeline", "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report = Report(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}")));
    assert_eq!(report.exercise("signals")["score"], 100, "{:#?}", report.checks("signals"));
    assert_eq!(report.exercise("framing")["score"], 100, "{:#?}", report.checks("framing"));
    let shm = report.exercise("shm");
    assert_eq!(shm["score"], 0);
    assert!(shm["build_error"].as_str().unwrap().contains("names the package `my-shm`; it must stay `shm`"), "{shm}");
    let pipeline = report.exercise("pipeline");
    assert!(pipeline["build_error"].as_str().unwrap().contains("there is no crate exercises/pipeline"), "{pipeline}");
    // The rerun hint keeps naming the submission.
    let (_, message) = &report.checks("shm")["lines"];
    assert!(message.contains("--submission"), "{message}");
}
