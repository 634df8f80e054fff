//! `grader gradebook`: many checkouts, each isolated; one that does not
//! compile or hangs costs only its own row, in bounded time, and leaves
//! nothing running.

use std::time::{Duration, Instant};

use ipc_lab_tests::{grader_cmd, make_submission, From};

/// A build script that reports its pid and then never finishes (bounded:
/// an hour, in case everything else fails).
const HANGING_BUILD_RS: &str = r#"
fn main() {
    if let Ok(path) = std::env::var("HANG_PID_FILE") {
        std::fs::write(path, std::process::id().to_string()).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_secs(3600));
}
"#;

#[test]
fn gradebook_over_four_kinds_of_submission() {
    let tmp = tempfile::tempdir().unwrap();
    let subs = tmp.path().join("subs");
    let both = |from| [("signals", from), ("framing", from)];
    make_submission(&subs.join("sol"), &both(From::Solution));
    make_submission(&subs.join("skel"), &both(From::Skeleton));
    let broken = make_submission(&subs.join("broken"), &both(From::Solution));
    let main = broken["signals"].join("src/main.rs");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text.push_str("\nfn broken() -> u32 { \"not a number\" }\n");
    std::fs::write(&main, text).unwrap();
    let hang = make_submission(&subs.join("hang"), &both(From::Solution));
    std::fs::write(hang["signals"].join("build.rs"), HANGING_BUILD_RS).unwrap();
    let pid_file = tmp.path().join("hang.pid");

    let out_dir = tmp.path().join("book");
    let started = Instant::now();
    let out = grader_cmd()
        .args(["gradebook", "--exercise", "signals", "--exercise", "framing", "--timeout", "20", "-j", "2"])
        .arg("--out")
        .arg(&out_dir)
        .args(["sol", "skel", "broken", "hang"].map(|s| subs.join(s)))
        .env("HANG_PID_FILE", &pid_file)
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Not every submission could be graded (one timed out): exit 1.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(150), "took {took:?}");

    let csv = std::fs::read_to_string(out_dir.join("gradebook.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("submission,signals,framing,total,max,status,note"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert_eq!(rows[0], "broken,0,100,100,200,graded,did not build: signals", "{csv}");
    assert!(rows[1].starts_with("hang,,,0,0,timeout,"), "{csv}");
    assert_eq!(rows[2], "skel,0,0,0,200,graded,", "{csv}");
    assert_eq!(rows[3], "sol,100,100,200,200,graded,", "{csv}");

    // One JSON report per graded submission, the same totals as the CSV.
    for (name, score) in [("sol", 200), ("skel", 0), ("broken", 100)] {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join(format!("{name}.json"))).unwrap()).unwrap();
        assert_eq!(json["score"], score, "{name}");
    }

    // The hanging build script was reached, and it is gone now.
    let pid: i32 = std::fs::read_to_string(&pid_file).expect("the build script ran").trim().parse().unwrap();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    assert!(state.is_none(), "the hanging build script {pid} still exists: {state:?}");
}

#[test]
fn gradebook_usage_errors_are_one_line_and_exit_2() {
    for (args, message) in [
        (&["gradebook", "/nonexistent/alice"][..], "/nonexistent/alice: No such file"),
        (&["gradebook", ".", "--exercise", "nosuch"][..], "unknown exercise `nosuch`"),
        (&["gradebook", "Cargo.toml"][..], "no submission folder to grade"),
        (&["--submission", "/nonexistent/bob"][..], "--submission /nonexistent/bob: No such file"),
        (&["--submission", "grader"][..], "--submission grader: no exercises/ folder"),
    ] {
        let out = grader_cmd().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("grader: ")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
        assert!(errors[0].contains(message), "{args:?}: {stderr}");
    }
}

/// A `sigecho` that goes for its grader — its parent — once it has said
/// `ready`: it stops it, or kills its whole process group. Only a grader:
/// a parent whose command line is not `grader … --submission …` (this
/// test's harness, init) is left alone, whatever went wrong.
fn attacker(how: &str) -> String {
    let attack = match how {
        "stop" => "let _ = kill(Pid::from_raw(grader), Signal::SIGSTOP);",
        "kill-group" => {
            "let stat = std::fs::read_to_string(format!(\"/proc/{grader}/stat\")).unwrap();
            let pgrp: i32 = stat.rsplit_once(\") \").unwrap().1.split(' ').nth(2).unwrap().parse().unwrap();
            if pgrp > 1 {
                let _ = kill(Pid::from_raw(-pgrp), Signal::SIGKILL);
            }"
        }
        other => panic!("no attack {other}"),
    };
    format!(
        "use nix::sys::signal::{{kill, Signal}};
        use nix::unistd::Pid;
        fn main() {{
            println!(\"ready {{}}\", std::process::id());
            let grader = std::os::unix::process::parent_id() as i32;
            let cmdline = std::fs::read(format!(\"/proc/{{grader}}/cmdline\")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            if args[0].ends_with(b\"/grader\") && args.contains(&&b\"--submission\"[..]) {{
                {attack}
            }}
            std::thread::sleep(std::time::Duration::from_secs(60));
        }}"
    )
}

/// Submissions whose programs stop their grader or kill its process group
/// (possible only for programs running as root, `--run-as root`, and
/// outside a PID namespace, `GRADER_NO_PIDNS`: in one, a program's parent is
/// the grader's stand-in and the grader is out of its reach) cost only
/// their own rows: the stopped grader is seen and killed, so the innocent
/// submission beside it is not kept from its timing checks and is graded
/// in full, and the CSV has a row for every submission.
#[test]
fn gradebook_survives_submissions_that_stop_or_kill_their_grader() {
    let tmp = tempfile::tempdir().unwrap();
    let subs = tmp.path().join("subs");
    make_submission(&subs.join("innocent"), &[("signals", From::Solution)]);
    for how in ["stop", "kill-group"] {
        let crates = make_submission(&subs.join(how), &[("signals", From::Solution)]);
        std::fs::write(crates["signals"].join("src/main.rs"), attacker(how)).unwrap();
    }
    let out_dir = tmp.path().join("book");
    let started = Instant::now();
    let out = grader_cmd()
        .env("GRADER_NO_PIDNS", "1")
        .args(["gradebook", "--exercise", "signals", "--timeout", "90", "-j", "3", "--run-as", "root"])
        .arg("--out")
        .arg(&out_dir)
        .args(["innocent", "stop", "kill-group"].map(|s| subs.join(s)))
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let csv = std::fs::read_to_string(out_dir.join("gradebook.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert_eq!(rows[0], "innocent,100,100,100,graded,", "{csv}\n{stderr}");
    assert!(rows[1].starts_with("kill-group,,0,0,error,grader killed by SIGKILL"), "{csv}");
    assert!(rows[2].starts_with("stop,,0,0,error,its grader was stopped (SIGSTOP"), "{csv}");
    // Well before the time-out: the stopped grader was not waited for.
    assert!(took < Duration::from_secs(80), "took {took:?}");
}

/// A gradebook that is killed leaves its CSV, a row for every submission
/// (`pending` for those it did not finish), and no grader running: each
/// gets SIGTERM when the gradebook dies, and cleans up after itself.
#[test]
fn a_killed_gradebook_leaves_its_csv_and_no_grader() {
    let tmp = tempfile::tempdir().unwrap();
    let subs = tmp.path().join("subs");
    make_submission(&subs.join("alice"), &[("signals", From::Solution)]);
    make_submission(&subs.join("bob"), &[("signals", From::Solution)]);
    let out_dir = tmp.path().join("book");
    let mut book = grader_cmd()
        .args(["gradebook", "--exercise", "signals", "-j", "2", "--out"])
        .arg(&out_dir)
        .args([subs.join("alice"), subs.join("bob")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = subs.to_string_lossy().into_owned();
    let graders = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                let zombie = state.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
                !zombie && String::from_utf8_lossy(&cmdline).contains(&format!("--submission\0{marker}"))
            })
            .count()
    };
    // Sampled: a grader starting has no event the test could wait for.
    let until = Instant::now() + Duration::from_secs(120);
    while graders() == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(graders() > 0, "no grader started");
    book.kill().unwrap();
    book.wait().unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while graders() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(graders(), 0, "graders outlived their gradebook");
    let csv = std::fs::read_to_string(out_dir.join("gradebook.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows.iter().all(|r| r.contains(",pending,not graded")), "{csv}");
}
