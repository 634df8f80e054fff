//! Hostile programs are graded to a clear failure in bounded time, and
//! afterwards not one process of theirs exists.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
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
    let (report, wall, pid) =
        grade(&["signals", "--check", check, "--bin", &format!("sigecho={}", exe.display())], |cmd| {
            if no_cgroup {
                cmd.env("GRADER_NO_CGROUP", "1");
            }
        });
    (report["exercises"][0]["checks"][0].clone(), wall, pid)
}

/// Run the grader with `args` (plus `--time-scale 0.5`), adjusted by
/// `adjust`, expecting exit 1 within 60 s; return its JSON report (from
/// stdout, unless `adjust` sent it to a file), the wall time and its pid.
fn grade(args: &[&str], adjust: impl FnOnce(&mut Command)) -> (Value, Duration, u32) {
    let mut cmd = Command::new(grader());
    cmd.args(args).args(["--format", "json", "--time-scale", "0.5"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    adjust(&mut cmd);
    let started = Instant::now();
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()).unwrap());
    let out =
        rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("the grader hung on {args:?}")).unwrap();
    let wall = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report = if out.stdout.is_empty() { Value::Null } else { serde_json::from_slice(&out.stdout).unwrap() };
    (report, wall, pid)
}

/// Processes (not zombies) whose `argv[0]` is `exe`: a hostile program
/// and what it forked, even with its token hidden.
fn running(exe: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = state.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'));
        if argv0 == exe.as_os_str().as_encoded_bytes() && !zombie {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

/// Programs run as an unprivileged uid only when the grader is root;
/// tests of what that uid cannot do say why they did nothing otherwise.
fn unprivileged_uid_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped: the grader is not root here, so programs run as the same user as the grader");
    }
    root
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

// ----- programs that signal the grader -------------------------------------------

/// A finished grading: exit code, JSON report, stderr, and what the wrapper
/// around it saw (see [`grade_signalling`]).
struct Graded {
    code: Option<i32>,
    report: Value,
    stderr: String,
    grader: u32,
}

impl Graded {
    fn check(&self, exercise: &str, id: &str) -> &Value {
        let ex = self.report["exercises"].as_array().unwrap().iter().find(|e| e["id"] == exercise).unwrap();
        ex["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()
    }

    /// The pid the hostile program printed (`ready N`), as the check's
    /// transcript names it: `started `sigecho --alarm 0` (pid N)`.
    fn program_pid(&self) -> String {
        let did = self.check("signals", "eof")["detail"]["did"][0].as_str().unwrap().to_string();
        did.rsplit_once("(pid ").unwrap().1.trim_end_matches(')').to_string()
    }
}

/// Where PID namespaces can be made (the grader tries the same).
fn namespaces_possible() -> bool {
    Command::new("unshare").args(["--fork", "--pid", "true"]).status().is_ok_and(|s| s.success())
}

/// Grade `args` (plus `--format json`) with `sigecho` being hostile `mode`;
/// `pidns: false` sets `GRADER_NO_PIDNS` and runs programs as the grader's
/// own user (`--run-as root`; a program running as a uid of its own could
/// not signal a root grader at all), as a grader that is not root does. In
/// a namespace programs run as the uid a root grader gives them, and so
/// does their stand-in parent. `wrap` runs the grader through a
/// command (`unshare …`). A grader that does not end within 5 minutes (a
/// first `--solutions` build included) is killed and the test fails.
fn grade_signalling(mode: &str, args: &[&str], pidns: bool, wrap: &[&str]) -> Graded {
    let exe = hostile(mode);
    let mut cmd = Command::new(wrap.first().copied().unwrap_or(grader().to_str().unwrap()));
    if !wrap.is_empty() {
        cmd.args(&wrap[1..]).arg(grader());
    }
    cmd.current_dir(root())
        .args(args)
        .args(["--format", "json", "--time-scale", "2", "--bin"])
        .arg(format!("sigecho={}", exe.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !pidns {
        cmd.env("GRADER_NO_PIDNS", "1").args(["--run-as", "root"]);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()).unwrap());
    let Ok(out) = rx.recv_timeout(Duration::from_secs(300)) else {
        // A stopped grader does not end by itself.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        panic!("the grader hung on hostile `{mode}` (pid namespace: {pidns}) for 5 minutes");
    };
    let out = out.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no complete report ({e}); exit {:?}; stderr: {stderr}", out.status.code()));
    assert_eq!(report["isolation"]["pid_namespace"], pidns, "{}", report["isolation"]);
    Graded { code: out.status.code(), report, stderr, grader: pid }
}

/// The signals check failed naming what the program did, the framing
/// check beside it passed, the run ended normally (1), nothing is left.
fn only_the_culprit_failed(g: &Graded, what: &[String]) {
    assert_eq!(g.code, Some(1), "the grader did not end normally; stderr: {}", g.stderr);
    let culprit = g.check("signals", "eof");
    let message = culprit["message"].as_str().unwrap();
    assert_eq!(culprit["status"], "failed", "{message}");
    assert!(message.starts_with("signalled the grader"), "{message}");
    for w in what {
        assert!(message.contains(w.as_str()), "expected `{w}` in:\n{message}");
    }
    let other = g.check("framing", "relay-eof");
    assert_eq!(other["status"], "passed", "a check beside it was harmed: {}", other["message"]);
    let left = token_holders(g.grader);
    assert!(left.is_empty(), "processes survived the grader: {left:?}");
}

#[rstest]
#[case::sigterm_and_sigint_to_its_parent("signal-parent")]
#[case::an_orphan_signals_its_new_parent("orphan-signals")]
fn a_program_that_signals_the_grader_fails_its_check_and_nothing_else(
    #[case] mode: &str,
    #[values(true, false)] pidns: bool,
) {
    if pidns && !namespaces_possible() {
        eprintln!("skipped: no PID namespaces here (`unshare --fork --pid` fails)");
        return;
    }
    let g = grade_signalling(mode, &["signals", "framing", "--solutions", "--check", "eof"], pidns, &[]);
    let pid = g.program_pid();
    let what: Vec<String> = match mode {
        "signal-parent" => vec![
            format!("sigecho (pid {pid}) sent SIGTERM to the grader"),
            format!("sigecho (pid {pid}) sent SIGINT to the grader"),
        ],
        // The orphan is named by its command name and pid.
        _ => vec![
            "hostile-orphan- (pid ".into(),
            "a process of sigecho, sent SIGUSR1 to the grader".into(),
            "a process of sigecho, sent SIGTERM to the grader".into(),
        ],
    };
    only_the_culprit_failed(&g, &what);
}

#[test]
fn a_program_that_stops_its_parent_stops_only_the_grader_s_stand_in() {
    // Without a PID namespace SIGSTOP reaches the grader itself, and
    // nothing can keep it from stopping.
    if !namespaces_possible() {
        eprintln!("skipped: no PID namespaces here (`unshare --fork --pid` fails)");
        return;
    }
    let g = grade_signalling("stop-parent", &["signals", "framing", "--solutions", "--check", "eof"], true, &[]);
    let pid = g.program_pid();
    only_the_culprit_failed(&g, &[format!("sigecho (pid {pid}) or a process it started sent SIGSTOP to the grader")]);
}

/// Runs the rest of its arguments, then lists the processes of its PID
/// namespace (builtins only: the listing starts none) and whether the
/// sentinel, a `sleep` started first, still lives.
const WRAPPER: &str = r#"sleep 60 & sentinel=$!
"$@"; code=$?
state=gone; [ -r /proc/$sentinel/stat ] && read -r _ _ state _ < /proc/$sentinel/stat
case $state in gone|Z) echo "sentinel killed" >&2 ;; *) echo "sentinel alive" >&2 ;; esac
for p in /proc/[0-9]*; do
  [ "$p" = /proc/$$ ] || [ "$p" = /proc/$sentinel ] || { read -r c < $p/comm && echo "left: $c" >&2; }
done
kill $sentinel 2>/dev/null
exit $code"#;

#[rstest]
fn kill_minus_one_reaches_only_the_program_s_own_namespace(#[values(true, false)] pidns: bool) {
    // `kill(-1, …)` reaches every process of the user (root: all of them)
    // outside a namespace: only ever inside one made for the test.
    let private = Command::new("unshare").args(["--fork", "--pid", "--mount-proc", "true"]).status();
    if !private.is_ok_and(|s| s.success()) {
        eprintln!("skipped: `unshare --fork --pid --mount-proc` is not possible here");
        return;
    }
    if pidns && !namespaces_possible() {
        eprintln!("skipped: no PID namespaces for the grader here");
        return;
    }
    let wrap = ["unshare", "--fork", "--pid", "--mount-proc", "sh", "-c", WRAPPER, "sh"];
    // With a namespace per program a check beside it is safe; without, the
    // signal would reach its programs too (and `cargo`), so it runs alone.
    let args: &[&str] =
        if pidns { &["signals", "framing", "--solutions", "--check", "eof"] } else { &["signals", "--check", "eof"] };
    let g = grade_signalling("kill-all", args, pidns, &wrap);
    let pid = g.program_pid();
    let sent = format!("sigecho (pid {pid}) sent SIGUSR1 to the grader");
    if pidns {
        only_the_culprit_failed(&g, &[sent]);
        assert!(g.stderr.contains("sentinel alive"), "kill(-1) left the program's namespace: {}", g.stderr);
    } else {
        // The grader survives it, with a complete report; the rest of the
        // (test's) namespace does not.
        assert_eq!(g.code, Some(1), "{}", g.stderr);
        let message = g.check("signals", "eof")["message"].as_str().unwrap();
        assert!(message.starts_with("signalled the grader") && message.contains(&sent), "{message}");
        assert!(g.stderr.contains("sentinel killed"), "{}", g.stderr);
    }
    assert!(!g.stderr.contains("left: "), "processes left in the namespace: {}", g.stderr);
}

#[test]
fn a_signal_from_outside_still_interrupts_the_grading() {
    let exe = hostile("fork-storm");
    let child = Command::new(grader())
        .current_dir(root())
        .args(["signals", "--check", "eof", "--format", "json", "--time-scale", "4", "--bin"])
        .arg(format!("sigecho={}", exe.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let until = Instant::now() + Duration::from_secs(30);
    while token_holders(pid).len() < 100 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()).unwrap());
    let out = rx.recv_timeout(Duration::from_secs(60)).expect("the grader ended").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + 15), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(out.stdout.is_empty(), "an interrupted grading writes no report");
    let left = token_holders(pid);
    assert!(left.is_empty(), "processes survived the interrupted grader: {left:?}");
}

/// Run the grader on `signals` with the hostile `mode` as `sigecho` and
/// `args` (human report unless they say otherwise); its stdout.
fn grade_hostile_text(mode: &str, args: &[&str], summary: Option<&std::path::Path>) -> String {
    let exe = hostile(mode);
    let mut cmd = Command::new(grader());
    cmd.args(["signals", "--time-scale", "0.5", "--bin"])
        .arg(format!("sigecho={}", exe.display()))
        .args(args)
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = summary {
        cmd.env("GITHUB_STEP_SUMMARY", path);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("the report is UTF-8")
}

/// Lines GitHub would run as workflow commands (it trims white space).
fn commands(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.trim().starts_with("::") || l.trim().starts_with("##[")).collect()
}

#[rstest]
#[case::output_stderr_and_panic("inject", &[], "forged")]
#[case::process_name("inject-comm", &["--check", "eof"], "\\x1b[2J")]
fn program_text_cannot_draw_on_the_terminal_or_forge_commands(
    #[case] mode: &str,
    #[case] args: &[&str],
    #[case] shown: &str,
) {
    let report = grade_hostile_text(mode, args, None);
    assert!(!report.contains('\x1b') && !report.contains('\r') && !report.contains('\x07'), "{report}");
    assert_eq!(commands(&report), Vec::<&str>::new(), "{report}");
    // Escaped, not dropped: the reader sees what the program printed.
    assert!(report.contains(shown), "{report}");
    assert!(report.contains("\nTotal 0/"), "{report}");
}

#[test]
fn on_github_only_the_graders_annotations_are_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let summary = tmp.path().join("summary.md");
    let out = grade_hostile_text("inject", &["--github"], Some(&summary));
    let lines: Vec<&str> = out.lines().collect();
    let token = lines[0].strip_prefix("::stop-commands::").unwrap_or_else(|| panic!("not fenced:\n{out}"));
    assert!(token.len() >= 16, "{token}");
    let end = lines.iter().position(|l| *l == format!("::{token}::")).unwrap_or_else(|| panic!("no end:\n{out}"));
    let fenced = lines[1..end].join("\n");
    assert!(fenced.contains("forged") && fenced.contains("Total 0/"), "{out}");
    // Outside the fence: the grader's annotations, one line each, and
    // nothing else; the forged text only inside their messages.
    let after = &lines[end + 1..];
    assert!(!after.is_empty(), "{out}");
    for line in after {
        assert!(line.starts_with("::error ") || line.starts_with("::notice "), "{line}\n{out}");
        assert!(!line.contains('\x1b') && !line.contains('\r'), "{line:?}");
    }
    assert!(!out.contains("\n::error::forged") && !out.contains('\x1b'), "{out}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("forged") && !md.contains('\x1b') && !md.contains('\r'), "{md}");
}

/// A daemon that overwrites its token and tries to leave its cgroup is
/// still found — by the uid it runs as, which it cannot shed — named as
/// left behind, and killed, with a cgroup and without one.
#[test]
fn a_daemon_that_hides_its_token_and_leaves_its_cgroup_is_found_and_killed() {
    let exe = hostile("escape");
    for no_cgroup in [false, true] {
        let (result, _, _) = grade_hostile("escape", "eof", no_cgroup);
        let message = result["message"].as_str().unwrap();
        if nix::unistd::geteuid().is_root() {
            assert_eq!(result["status"], "failed", "{message}");
            assert!(message.contains("left 1 process(es) running: hostile-escape"), "{message}");
        }
        let left = running(&exe);
        assert!(left.is_empty(), "the daemon survived the grader (no cgroup: {no_cgroup}): {left:?}");
    }
}

/// A program cannot stop or end the grader, read its environment, write
/// its report or leave its cgroup: it runs as another uid. (In a PID
/// namespace its parent is the grader's stand-in, which it may signal: see
/// [`a_program_in_a_namespace_reaches_only_the_grader_s_stand_in`].)
#[test]
fn a_program_cannot_touch_the_grader() {
    if !unprivileged_uid_or_skip("a_program_cannot_touch_the_grader") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let report = dir.path().join("report.json");
    std::fs::write(&report, "{}").unwrap();
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exe = hostile("attack-grader");
    let args = ["signals", "--check", "eof", "--output", report.to_str().unwrap()];
    let (_, wall, _) = grade(&[&args[..], &["--bin", &format!("sigecho={}", exe.display())]].concat(), |cmd| {
        cmd.env("GRADER_NO_PIDNS", "1");
    });
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let message = report["exercises"][0]["checks"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("attack: SIGSTOP EPERM, SIGTERM EPERM, environ EACCES, report EACCES, cgroup EACCES"),
        "{message}"
    );
    assert!(wall < Duration::from_secs(30), "took {wall:?}");
}

/// The grader connects only to addresses of this machine: a server that
/// names another fails its check without a connection attempt.
#[test]
fn a_server_naming_another_machine_is_not_connected_to() {
    let exe = hostile("remote-addr");
    let bins = [format!("tcp-server={}", exe.display()), format!("tcp-client={}", exe.display())];
    let (report, wall, _) =
        grade(&["sockets", "--check", "server-greeting", "--bin", &bins[0], "--bin", &bins[1]], |_| {});
    let message = report["exercises"][0]["checks"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("wrong output"), "{message}");
    assert!(message.contains("`listening on 10.1.2.3:80`: 10.1.2.3 is not a loopback address"), "{message}");
    assert!(!message.contains("could not connect"), "{message}");
    assert!(wall < Duration::from_secs(20), "took {wall:?}");
}

/// A program that kills its grader dies with it: the grader's death sends
/// SIGKILL to every program it started (`PR_SET_PDEATHSIG`), so none is
/// left behind as an orphan of whoever started the grader. (As root only
/// with `--run-as root`: a program running as its own uid cannot kill the
/// grader.)
#[test]
fn a_program_that_kills_its_grader_dies_with_it() {
    let exe = hostile("kill-grader");
    let out = Command::new(grader())
        .env("GRADER_NO_PIDNS", "1")
        .args(["signals", "--check", "eof", "--run-as", "root", "--bin"])
        .arg(format!("sigecho={}", exe.display()))
        .output()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&out.status), Some(9), "{out:?}");
    // The kernel sent the SIGKILL as the grader died; it takes effect when
    // the program next runs.
    let until = Instant::now() + Duration::from_secs(10);
    while !running(&exe).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(running(&exe).is_empty(), "the program outlived the grader it killed");
}

/// In a PID namespace the program's parent is the grader's stand-in, which
/// runs as the program's uid: the program may stop and signal it, and that
/// fails its check, but the grader itself is out of its reach.
#[test]
fn a_program_in_a_namespace_reaches_only_the_grader_s_stand_in() {
    if !unprivileged_uid_or_skip("a_program_in_a_namespace_reaches_only_the_grader_s_stand_in") {
        return;
    }
    if !namespaces_possible() {
        eprintln!("skipped: no PID namespaces here (`unshare --fork --pid` fails)");
        return;
    }
    let g = grade_signalling("attack-grader", &["signals", "--check", "eof"], true, &[]);
    let check = g.check("signals", "eof");
    let message = check["message"].as_str().unwrap();
    assert_eq!(check["status"], "failed", "{message}");
    let pid = g.program_pid();
    assert!(message.contains(&format!("sigecho (pid {pid}) sent SIGTERM to the grader")), "{message}");
    assert_eq!(g.code, Some(1), "{}", g.stderr);
}

/// A grader killed from outside (SIGKILL: no cleanup) takes the programs
/// in their PID namespaces with it: their namespace's init dies with the
/// grader, and with it everything in the namespace.
#[test]
fn a_killed_grader_takes_the_programs_in_their_namespaces_with_it() {
    if !namespaces_possible() {
        eprintln!("skipped: no PID namespaces here (`unshare --fork --pid` fails)");
        return;
    }
    // `kill-grader` finds no grader to kill in a namespace, and sleeps.
    let exe = hostile("kill-grader");
    let mut child = Command::new(grader())
        .args(["signals", "--check", "eof", "--bin"])
        .arg(format!("sigecho={}", exe.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    while running(&exe).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!running(&exe).is_empty(), "the program did not start");
    child.kill().unwrap();
    child.wait().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while !running(&exe).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(running(&exe).is_empty(), "the program outlived the grader: {:?}", running(&exe));
}
