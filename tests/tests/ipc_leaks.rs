//! Nothing outlives a check, IPC objects included: a program that leaves a
//! shared memory object behind fails with a message naming it, and after
//! the grading `/dev/shm`, `/dev/mqueue` and `/proc/sysvipc` are exactly as
//! before — the objects that were there, or that another process uses, are
//! left alone.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ipc_lab_tests::{grade_json, grader_cmd, mutant_bins, root, Report};

/// Every IPC object the machine lists: the files of `/dev/shm` and
/// `/dev/mqueue`, and each System V object by kind, key and id.
fn snapshot() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for dir in ["/dev/shm", "/dev/mqueue"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            out.insert(e.path().display().to_string());
        }
    }
    for kind in ["shm", "sem", "msg"] {
        let text = std::fs::read_to_string(format!("/proc/sysvipc/{kind}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().take(2).collect();
            out.insert(format!("System V {kind}: key {} id {}", fields[0], fields[1]));
        }
    }
    out
}

/// Wait until the machine lists exactly `before` again. A few seconds of
/// grace: other processes on the machine may hold an object of their own
/// for a moment; one the grader left stays for good.
fn assert_unchanged_since(before: &BTreeSet<String>) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let now = snapshot();
        if &now == before {
            return;
        }
        if Instant::now() >= until {
            let new: Vec<_> = now.difference(before).collect();
            let gone: Vec<_> = before.difference(&now).collect();
            panic!("the grading changed the machine's IPC objects: new {new:?}, gone {gone:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mutant(name: &str) -> PathBuf {
    mutant_bins()[&format!("shm--{name}")]["shm-handshake"].clone()
}

/// Every check of the report failed, naming an object with `object` and
/// telling how to release it with `release`.
fn every_check_names_the_leak(report: &Report, object: &str, release: &str) {
    let checks = report.checks("shm");
    assert!(!checks.is_empty());
    for (id, (status, message)) in &checks {
        assert_eq!(status, "failed", "{id} passed a program that leaks its shared memory");
        assert!(message.contains(object), "{id} does not name the object ({object}):\n{message}");
        assert!(message.contains(release), "{id} does not say how to release it ({release}):\n{message}");
        assert!(message.contains("the grader removed them"), "{id}:\n{message}");
    }
}

#[test]
fn leaked_objects_fail_the_checks_and_are_removed_and_nothing_else_is_touched() {
    let root = root();
    // An object that exists before the grading: never the grader's.
    let preexisting = Path::new("/dev/shm").join(format!("ipc-lab-test-preexisting-{}", std::process::id()));
    std::fs::write(&preexisting, b"not the grader's").unwrap();
    let before = snapshot();

    // POSIX shm without shm_unlink, graded while this test makes an object
    // of its own in the middle of the checks and keeps it open.
    let posix = mutant("posix-shm-no-unlink");
    let child = grader_cmd()
        .current_dir(&root)
        .args(["shm", "--bin", &format!("shm-handshake={}", posix.display()), "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run grader");
    let in_use = Path::new("/dev/shm").join(format!("ipc-lab-test-in-use-{}", std::process::id()));
    let until = Instant::now() + Duration::from_secs(60);
    // Once a leaked object shows, checks are running: ours is made during one.
    while !snapshot().iter().any(|o| o.starts_with("/dev/shm/shm-handshake-")) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let held = File::create(&in_use).unwrap();
    let out = child.wait_with_output().expect("wait for grader");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let report = Report(serde_json::from_slice(&out.stdout).expect("a JSON report"));
    every_check_names_the_leak(&report, "POSIX shared memory object `/shm-handshake-", "`shm_unlink`");
    assert!(in_use.exists(), "the grader removed an object another process had open");
    assert!(!stderr.contains("ipc-lab-test"), "the grader reported the test's own objects: {stderr}");
    drop(held);
    std::fs::remove_file(&in_use).unwrap();

    // System V shm without IPC_RMID.
    let sysv = mutant("sysv-shm-no-rmid");
    let (code, report) = grade_json(&["shm", "--bin", &format!("shm-handshake={}", sysv.display())]);
    assert_eq!(code, 1);
    every_check_names_the_leak(&report, "System V shared memory segment (shmid ", "IPC_RMID");

    assert_unchanged_since(&before);
    assert_eq!(std::fs::read(&preexisting).unwrap(), b"not the grader's");
    std::fs::remove_file(&preexisting).unwrap();
}
