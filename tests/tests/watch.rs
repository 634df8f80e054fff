//! `cargo grade --watch`, the student's loop: the real grader watches a
//! private copy of the workspace (only `exercises/signals`), regrades when a
//! file is saved, ignores files that are not code, and quits on Ctrl-C with
//! status 0 and no process left behind.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipc_lab_tests::{grader, group_members, minimal_workspace, root, token_holders};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// The first run compiles nix in the fresh copy: seconds alone, longer
/// while the rest of the suite shares the two cores.
const FIRST_RUN: Duration = Duration::from_secs(180);
/// A later run rebuilds one crate and grades it.
const NEXT_RUN: Duration = Duration::from_secs(120);
/// From Ctrl-C to the grader's exit, cleanup included.
const QUIT: Duration = Duration::from_secs(30);

const WATCHING: &str = "watching exercises/signals/ for changes — Ctrl-C to quit";

/// A `grader --watch signals` on a copy of the workspace, in a process
/// group of its own (as a shell runs it), its stdout read line by line.
struct Watch {
    ws: tempfile::TempDir,
    child: Option<Child>,
    pid: u32,
    lines: Receiver<String>,
    /// Every line seen so far, for failure messages.
    seen: String,
    stderr: Arc<Mutex<String>>,
}

impl Watch {
    fn start() -> Watch {
        let ws = tempfile::tempdir().unwrap();
        minimal_workspace(ws.path(), &["signals"]);
        let mut child = Command::new(grader())
            .current_dir(root())
            .arg("--root")
            .arg(ws.path())
            .args(["--watch", "signals", "--debounce-ms", "100"])
            .env("GRADER_TIME_SCALE", "2")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start the grader");
        let (tx, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut pipe, sink) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let pid = child.id();
        Watch { ws, child: Some(child), pid, lines, seen: String::new(), stderr }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.ws.path().join(rel)
    }

    fn transcript(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.seen, self.stderr.lock().unwrap())
    }

    /// The next line, or `None` when `until` passed; panics when the
    /// grader closed its stdout.
    fn next_line(&mut self, until: Instant) -> Option<String> {
        match self.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                self.seen.push_str(&line);
                self.seen.push('\n');
                assert!(!line.contains('\x1b'), "an escape code on a pipe: {line:?}\n{}", self.transcript());
                Some(line)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("the grader closed its stdout\n{}", self.transcript()),
        }
    }

    /// Wait for the first line that starts with `prefix`, within `limit`.
    fn until(&mut self, prefix: &str, limit: Duration) -> String {
        let until = Instant::now() + limit;
        loop {
            match self.next_line(until) {
                Some(line) if line.starts_with(prefix) => return line,
                Some(_) => {}
                None => panic!("no line `{prefix}…` within {limit:?}\n{}", self.transcript()),
            }
        }
    }

    /// Ctrl-C in a terminal: SIGINT to the foreground process group.
    fn ctrl_c(&self) {
        killpg(Pid::from_raw(self.pid as i32), Signal::SIGINT).unwrap();
    }

    /// Wait for the grader to exit (within [`QUIT`]) and for the end of its
    /// output; return its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait()));
        let status = rx
            .recv_timeout(QUIT)
            .unwrap_or_else(|_| panic!("the grader did not exit within {QUIT:?} of Ctrl-C\n{}", self.transcript()))
            .unwrap();
        let until = Instant::now() + QUIT;
        while let Ok(line) = self.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        status.code()
    }

    /// After the grader exited: it printed no escape code to a pipe, said
    /// goodbye, and nothing it started runs any more.
    fn assert_quit_cleanly(&mut self) {
        let code = self.exit_code();
        let transcript = self.transcript();
        assert_eq!(code, Some(0), "Ctrl-C is a normal quit\n{transcript}");
        assert!(self.stderr.lock().unwrap().contains("grader: watch stopped"), "{transcript}");
        assert!(!self.seen.contains('\x1b'), "escape codes on a pipe\n{transcript}");
        let group = group_members(self.pid);
        assert!(group.is_empty(), "left in the grader's process group: {group:?}\n{transcript}");
        let programs = token_holders(self.pid);
        for p in &programs {
            // Do not let a failed test leave them running either.
            let pid = p.split_once(' ').and_then(|(pid, _)| pid.parse().ok()).unwrap_or(0);
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        assert!(programs.is_empty(), "student programs survived: {programs:?}\n{transcript}");
    }
}

impl Drop for Watch {
    /// A failed test must not leave a watching grader behind: SIGTERM lets
    /// its guard kill what it started.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

fn dependencies(manifest: &Path) -> toml::Value {
    let text = std::fs::read_to_string(manifest).unwrap();
    toml::from_str::<toml::Table>(&text).unwrap()["dependencies"].clone()
}

/// The skeleton is replaced by the reference solution: that only compiles
/// if both crates have the same dependencies.
fn solve(w: &Watch) {
    let manifest = |side: &str| root().join(side).join("signals/Cargo.toml");
    assert_eq!(dependencies(&manifest("exercises")), dependencies(&manifest("solutions")));
    std::fs::copy(root().join("solutions/signals/src/main.rs"), w.path("exercises/signals/src/main.rs")).unwrap();
}

#[test]
fn saving_a_fix_regrades_and_ctrl_c_quits_cleanly() {
    let started = Instant::now();
    let mut w = Watch::start();
    assert_eq!(w.until("[run ", FIRST_RUN), "[run 1] first run");
    w.until("0/1 exercises complete · 0/100 points", FIRST_RUN);
    w.until("signals/ready — ", NEXT_RUN);
    w.until(WATCHING, NEXT_RUN);
    eprintln!("first run shown after {:.1?}", started.elapsed());

    solve(&w);
    assert_eq!(w.until("[run ", NEXT_RUN), "[run 2] change in exercises/signals/src/main.rs");
    w.until("1/1 exercises complete · 100/100 points", NEXT_RUN);
    w.until("every check passes", NEXT_RUN);
    w.until(WATCHING, NEXT_RUN);
    eprintln!("fix graded after {:.1?}", started.elapsed());

    w.ctrl_c();
    w.assert_quit_cleanly();
    // Each run was remembered for `--list`.
    let list = Command::new(grader()).arg("--root").arg(w.ws.path()).arg("--list").output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("(100 points; binaries: sigecho) — 100/100, last graded just now"), "{list}");
    eprintln!("whole test {:.1?}", started.elapsed());
}

#[test]
fn files_that_are_not_code_start_no_run() {
    let mut w = Watch::start();
    w.until(WATCHING, FIRST_RUN);
    std::fs::create_dir_all(w.path("exercises/signals/target/debug")).unwrap();
    for junk in ["target/debug/sigecho", "src/.main.rs.swp", "src/main.rs~", "src/4913", "src/.#main.rs"] {
        std::fs::write(w.path(&format!("exercises/signals/{junk}")), "not code").unwrap();
    }
    // A real change after them: the next run is number 2, and it is for
    // this change alone.
    let readme = w.path("exercises/signals/README.md");
    let mut text = std::fs::read_to_string(&readme).unwrap();
    text.push_str("\nA note of the student.\n");
    std::fs::write(&readme, text).unwrap();
    assert_eq!(w.until("[run ", NEXT_RUN), "[run 2] change in exercises/signals/README.md");
    w.until(WATCHING, NEXT_RUN);
    w.ctrl_c();
    w.assert_quit_cleanly();
}

/// A student program that hangs — the moment a student presses Ctrl-C.
/// It ignores its input (so it does not end when the grader's pipes
/// close) and has a child in its process group that waits forever too.
const HANGS: &str = r#"
fn main() {
    let _child = std::process::Command::new("sleep").arg("1000").spawn();
    loop {
        std::thread::park();
    }
}
"#;

#[test]
fn ctrl_c_during_a_grading_kills_every_program() {
    let mut w = Watch::start();
    w.until(WATCHING, FIRST_RUN);
    std::fs::write(w.path("exercises/signals/src/main.rs"), HANGS).unwrap();
    w.until("[run 2]", NEXT_RUN);
    // Nothing announces that a student program runs: look in /proc, with
    // the wait for the grader's next line as the pause between looks.
    let until = Instant::now() + NEXT_RUN;
    while token_holders(w.pid).len() < 2 {
        assert!(Instant::now() < until, "no hanging program within {NEXT_RUN:?}\n{}", w.transcript());
        if let Some(line) = w.next_line(Instant::now() + Duration::from_millis(5)) {
            assert!(!line.starts_with(WATCHING), "run 2 ended before a program was seen\n{}", w.transcript());
        }
    }
    w.ctrl_c();
    w.assert_quit_cleanly();
}
