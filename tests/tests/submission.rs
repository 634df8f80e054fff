//! `--submission DIR`: a student's checkout is graded with the instructor's
//! grader and checks; nothing of the checkout but its exercise crates takes
//! part, and a broken crate costs only its own exercise.

use ipc_lab_tests::{grader_cmd, make_submission, root, From, Report};

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

#[test]
fn a_submission_cannot_build_the_instructors_solutions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mallory");
    let ids = ["signals", "framing", "shm", "select", "pipeline", "sockets"];
    let crates = make_submission(&dir, &ids.map(|id| (id, From::Skeleton)));
    // From any folder, forty `..` reach `/`, and from there the repository.
    let solution = |id: &str, rel: &str| root().join("solutions").join(id).join(rel);
    let climb =
        |id: &str, rel: &str| format!("{}{}", "../".repeat(40), solution(id, rel).strip_prefix("/").unwrap().display());
    let edit = |id: &str, file: &str, f: &dyn Fn(String) -> String| {
        let path = crates[id].join(file);
        std::fs::write(&path, f(std::fs::read_to_string(&path).unwrap())).unwrap();
    };
    // The manifest names the solution as the binary's source.
    let bin = climb("signals", "src/main.rs");
    edit("signals", "Cargo.toml", &|t| t.replacen("path = \"src/main.rs\"", &format!("path = \"{bin}\""), 1));
    // The code reaches it: #[path], include! by a relative and by an
    // absolute path.
    let module = climb("framing", "src/main.rs");
    edit("framing", "src/main.rs", &|_| format!("#[path = \"{module}\"]\nmod solution;\nfn main() {{}}\n"));
    let relative = climb("shm", "src/main.rs");
    edit("shm", "src/main.rs", &|_| format!("include!(\"{relative}\");\n"));
    let absolute = solution("select", "src/main.rs").display().to_string();
    edit("select", "src/main.rs", &|_| format!("include!(\"{absolute}\");\n"));
    // A path dependency on the solution crate.
    let dep = climb("pipeline", "");
    edit("pipeline", "Cargo.toml", &|t| {
        t.replacen("[dependencies]", &format!("[dependencies]\npipeline-solution = {{ path = \"{dep}\" }}"), 1)
    });
    // A symlink to the solution is not copied at all.
    let server = crates["sockets"].join("src/bin/tcp-server.rs");
    std::fs::remove_file(&server).unwrap();
    std::os::unix::fs::symlink(solution("sockets", "src/bin/tcp-server.rs"), &server).unwrap();

    let out = grader_cmd().arg("--submission").arg(&dir).args(ids).args(["--format", "json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report = Report(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}")));
    assert_eq!(report.score(), 0, "{:#?}", report.0);
    let refused = [
        ("signals", "exercises/signals/Cargo.toml: [bin] `sigecho` path `../../"),
        ("framing", "exercises/framing/src/main.rs:1: #[path] `../../"),
        ("shm", "exercises/shm/src/main.rs:1: include! `../../"),
        ("select", &format!("exercises/select/src/main.rs:1: include! `{absolute}` is absolute")),
        ("pipeline", "exercises/pipeline/Cargo.toml: the dependency `pipeline-solution` has the path `../../"),
    ];
    for (id, why) in refused {
        let error = report.exercise(id)["build_error"].as_str().unwrap_or_else(|| panic!("{id} was built"));
        assert!(error.starts_with(&format!("error: refused: {why}")), "{id}: {error}");
        assert!(error.ends_with("; a submission is built from its own files only") && !error.contains('\n'), "{error}");
        // Every check says why, in its one line.
        for (status, message) in report.checks(id).values() {
            assert_eq!(status, "error");
            assert!(message.contains("got: error: refused: exercises/"), "{message}");
        }
    }
    let sockets = report.exercise("sockets");
    assert_eq!(sockets["score"], 0);
    assert!(sockets["build_error"].as_str().unwrap().contains("tcp-server"), "{sockets}");
}
