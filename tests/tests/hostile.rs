//! Hostile programs are graded to a clear failure in bounded time, and
//! afterwards not one process of theirs exists.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipc_lab_tests::{grader, root, token_holders};
use rstest::rstest;
use serde_json::Value;

/// A symlink `hostile-<mode>` to the hostile binary: the mode is its name.
fn hostile(mode: &str) -> PathBuf {
    let dir = root().join("target/hostile");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join(format!("hostile-{mode}"));
    // Tests run in parallel and share the links: make a private one and
    // rename it into place (atomic, replaces an existing link).
    let tmp = dir.join(format!(".hostile-{mode}-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hostile"), &tmp).unwrap();
    std::fs::rename(&tmp, &link).unwrap();
    link
}

/// Grade `check` of `signals` with the hostile `mode` as `sigecho`; return
/// the check's JSON, the wall time, and the grader's pid.
fn grade_hostile(mode: &str, check: &str, no_cgroup: bool) -> (Value, Duration, u32) {
    let exe = hostile(mode);
    let mut cmd = Command::new(grader());
    cmd.args(["signals", "--check", check, "--format", "json", "--time-scale", "0.5", "--bin"])
        .arg(format!("sigecho={}", exe.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if no_cgroup {
        cmd.env("GRADER_NO_CGROUP", "1");
    }
    let started = Instant::now();
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()).unwrap());
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the grader hung on hostile `{mode}` for 60 s"))
        .unwrap();
    let wall = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = report["exercises"][0]["checks"][0].clone();
    (check, wall, pid)
}

#[rstest]
#[case::fork_storm("fork-storm", "eof", "timed out")]
#[case::flood("flood", "eof", "output limit")]
#[case::ignores_sigterm("ignore-term", "sigterm", "timed out")]
#[case::daemon_left_behind("daemon", "eof", "processes left behind")]
#[case::closes_stdout_then_hangs("close-stdout", "eof", "timed out")]
#[case::stops_itself("sigstop", "eof", "timed out")]
#[case::segfault("segv", "eof", "crashed")]
#[case::panics("panic", "eof", "panicked")]
fn hostile_program_fails_clearly_and_leaves_nothing(
    #[case] mode: &str,
    #[case] check: &str,
    #[case] kind: &str,
    #[values(false, true)] no_cgroup: bool,
) {
    let (result, wall, pid) = grade_hostile(mode, check, no_cgroup);
    let message = result["message"].as_str().unwrap();
    assert_eq!(result["status"], "failed", "{message}");
    assert!(message.starts_with(kind), "expected `{kind}`:\n{message}");
    assert!(wall < Duration::from_secs(30), "took {wall:?}");
    let left = token_holders(pid);
    assert!(left.is_empty(), "processes of hostile `{mode}` survived the grader: {left:?}");
}

#[test]
fn stopped_program_is_reported_as_stopped() {
    let (result, _, _) = grade_hostile("sigstop", "eof", false);
    let message = result["message"].as_str().unwrap();
    assert!(message.contains("was stopped"), "{message}");
}

#[test]
fn crash_and_panic_are_named() {
    let (result, _, _) = grade_hostile("segv", "eof", false);
    assert!(result["message"].as_str().unwrap().contains("killed by SIGSEGV"), "{result}");
    let (result, _, _) = grade_hostile("panic", "eof", false);
    assert!(result["message"].as_str().unwrap().contains("panicked at tests/src/bin/hostile.rs"), "{result}");
    assert!(result["message"].as_str().unwrap().contains("the hostile program gives up"), "{result}");
}

#[test]
fn time_scale_scales_the_deadline_in_the_message() {
    // The `eof` check waits 5 s (scaled) for `Exiting`; at 0.5 that is 2.5 s.
    let (result, wall, _) = grade_hostile("close-stdout", "eof", false);
    assert!(result["message"].as_str().unwrap().contains("within 2.5 s"), "{result}");
    assert!(wall < Duration::from_secs(5), "{wall:?}");
}

#[test]
fn daemon_is_named_in_the_message() {
    let (result, _, _) = grade_hostile("daemon", "eof", true);
    let message = result["message"].as_str().unwrap();
    assert!(message.contains("left 1 process(es) running: hostile-daemon"), "{message}");
}
