//! Hostile stand-ins for a student program, for the grader's own tests.
//! Each prints `ready PID` like `sigecho` and then misbehaves in one way,
//! chosen by the first argument the grader does not pass — so the mode is
//! taken from the executable's name: `hostile-<mode>` (a symlink).
//!
//! Every mode is bounded: the fork storm forks a few hundred children and
//! no more, nothing allocates without limit.
//!
//! The modes that signal the grader (`kill-all`, `signal-parent`,
//! `orphan-signals`, `stop-parent`) otherwise behave like a correct
//! `sigecho` on empty input (`Exiting` at EOF, status 0): only the signal
//! can fail the check.
//!
//! Some modes attack the grader itself (its process, its report, its
//! cgroup). Run them only under a grader that runs programs as an
//! unprivileged uid: as root they would succeed.

use std::io::Write;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, raise, signal, SigHandler, Signal};
use nix::unistd::{fork, getpid, getppid, setsid, ForkResult, Pid};

fn ready() {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready {}", getpid());
    let _ = out.flush();
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// What a correct `sigecho` does with its input: `Exiting` at EOF.
fn echo_until_eof() {
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::stdout());
    println!("Exiting");
}

/// Overwrite the grader's token in this process's own environment, in
/// place: `/proc/PID/environ` shows the memory as it is now.
fn hide_token() {
    extern "C" {
        static mut environ: *mut *mut nix::libc::c_char;
    }
    const KEY: &[u8] = b"IPC_LAB_TOKEN=";
    // SAFETY: single-threaded; `environ` is the process's NULL-terminated
    // array of NUL-terminated strings, and each is overwritten within its
    // own length.
    unsafe {
        let mut entry = environ;
        while !(*entry).is_null() {
            let text = *entry;
            let len = std::ffi::CStr::from_ptr(text).to_bytes().len();
            if std::slice::from_raw_parts(text.cast::<u8>(), len).starts_with(KEY) {
                for i in KEY.len()..len {
                    *text.add(i) = b'x' as nix::libc::c_char;
                }
            }
            entry = entry.add(1);
        }
    }
}

/// Move this process into the root of the `pids` cgroup hierarchy, out of
/// the grader's cgroup (root may; anyone else gets EACCES).
fn leave_cgroup() -> std::io::Result<()> {
    std::fs::write("/sys/fs/cgroup/pids/cgroup.procs", getpid().to_string())
}

/// The errno's name of a failed call, `ok` for success.
fn outcome<T>(r: Result<T, Errno>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn io_outcome<T>(r: std::io::Result<T>) -> String {
    outcome(r.map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0))))
}

/// The argument after `--output` in the grader's command line.
fn report_path(grader: nix::unistd::Pid) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{grader}/cmdline")).ok()?;
    let args: Vec<String> = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let at = args.iter().position(|a| a == "--output")?;
    args.get(at + 1).cloned()
}

/// Modes that are servers: their first line is `listening on`, not `ready`.
const SERVERS: &[&str] = &["remote-addr"];

fn main() {
    let exe = std::env::args().next().unwrap_or_default();
    let mode = exe.rsplit('/').next().unwrap_or("").trim_start_matches("hostile-").to_string();
    if !SERVERS.contains(&mode.as_str()) {
        ready();
    }
    match mode.as_str() {
        // A few hundred children that sleep forever (bounded, never recursive).
        "fork-storm" => {
            for _ in 0..300 {
                // SAFETY: single-threaded here; the child only sleeps.
                match unsafe { fork() } {
                    Ok(ForkResult::Child) => sleep_forever(),
                    Ok(ForkResult::Parent { .. }) => {}
                    Err(_) => break,
                }
            }
            sleep_forever()
        }
        // Prints forever.
        "flood" => {
            let line = [b'y'; 4096];
            let mut out = std::io::stdout().lock();
            while out.write_all(&line).is_ok() {}
            std::process::exit(3)
        }
        // Ignores the polite signals and sleeps.
        "ignore-term" => {
            for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
                // SAFETY: SIG_IGN installs no handler code.
                unsafe { signal(sig, SigHandler::SigIgn) }.expect("signal");
            }
            sleep_forever()
        }
        // Leaves a daemon behind (setsid + double fork, descriptors closed),
        // then behaves: `Exiting` at EOF.
        "daemon" => {
            // SAFETY: single-threaded here; the children only call
            // async-signal-safe functions before sleeping or exiting.
            match unsafe { fork() }.expect("fork") {
                ForkResult::Child => {
                    let _ = setsid();
                    match unsafe { fork() }.expect("fork") {
                        ForkResult::Child => {
                            for fd in 0..3 {
                                let _ = nix::unistd::close(fd);
                            }
                            sleep_forever()
                        }
                        ForkResult::Parent { .. } => std::process::exit(0),
                    }
                }
                ForkResult::Parent { child } => {
                    let _ = nix::sys::wait::waitpid(child, None);
                }
            }
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            println!("Exiting");
        }
        // A daemon that cuts every leash it can: it hides its token, leaves
        // its cgroup (as root it could), and sleeps; the program itself
        // behaves (`Exiting` at EOF).
        "escape" => {
            // SAFETY: single-threaded here; the children only call
            // async-signal-safe functions or touch their own memory before
            // sleeping or exiting.
            match unsafe { fork() }.expect("fork") {
                ForkResult::Child => {
                    let _ = setsid();
                    match unsafe { fork() }.expect("fork") {
                        ForkResult::Child => {
                            hide_token();
                            let _ = leave_cgroup();
                            for fd in 0..3 {
                                let _ = nix::unistd::close(fd);
                            }
                            sleep_forever()
                        }
                        ForkResult::Parent { .. } => std::process::exit(0),
                    }
                }
                ForkResult::Parent { child } => {
                    let _ = nix::sys::wait::waitpid(child, None);
                }
            }
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            println!("Exiting");
        }
        // Goes for the grader — its parent — and says on stdout how each
        // attempt ended: stop it, end it, read its environment, write its
        // report. (A stopped grader is woken at once.)
        "attack-grader" => {
            let grader = getppid();
            let stopped = kill(grader, Signal::SIGSTOP);
            if stopped.is_ok() {
                let _ = kill(grader, Signal::SIGCONT);
            }
            let report = report_path(grader).map(|path| std::fs::OpenOptions::new().write(true).open(path));
            println!(
                "attack: SIGSTOP {}, SIGTERM {}, environ {}, report {}, cgroup {}",
                outcome(stopped),
                outcome(kill(grader, Signal::SIGTERM)),
                io_outcome(std::fs::read(format!("/proc/{grader}/environ"))),
                report.map_or("not found".into(), io_outcome),
                io_outcome(leave_cgroup()),
            );
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        }
        // Kills its grader — its parent, if that is a grader — and sleeps.
        "kill-grader" => {
            let grader = getppid();
            let cmdline = std::fs::read(format!("/proc/{grader}/cmdline")).unwrap_or_default();
            if cmdline.split(|&b| b == 0).next().is_some_and(|argv0| argv0.ends_with(b"/grader")) {
                let _ = kill(grader, Signal::SIGKILL);
            }
            sleep_forever()
        }
        // A server that names an address of another machine.
        "remote-addr" => {
            println!("listening on 10.1.2.3:80");
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        }
        // Closes stdout, then hangs.
        "close-stdout" => {
            let _ = nix::unistd::close(1);
            sleep_forever()
        }
        // Stops itself.
        "sigstop" => {
            let _ = raise(Signal::SIGSTOP);
            sleep_forever()
        }
        // Dies of a signal it did not handle.
        "segv" => {
            // Rust installs a SIGSEGV handler (stack-overflow detection) that
            // would swallow a raised signal: back to the default first.
            // SAFETY: SIG_DFL installs no handler code.
            let _ = unsafe { signal(Signal::SIGSEGV, SigHandler::SigDfl) };
            let _ = raise(Signal::SIGSEGV);
            sleep_forever()
        }
        // A Rust panic.
        "panic" => panic!("the hostile program gives up"),
        // The classic C bug: `fork` failed, and the "child" pid -1 is
        // signalled: `kill(-1, SIGUSR1)` reaches every process it may
        // signal. (Run it only where that is a namespace of its own.)
        "kill-all" => {
            let child = Pid::from_raw(-1); // what a failed fork returned
            let _ = kill(child, Signal::SIGUSR1);
            echo_until_eof();
        }
        // Signals its parent, as if to tell it something.
        "signal-parent" => {
            let _ = kill(getppid(), Signal::SIGTERM);
            let _ = kill(getppid(), Signal::SIGINT);
            echo_until_eof();
        }
        // Stops its parent.
        "stop-parent" => {
            let _ = kill(getppid(), Signal::SIGSTOP);
            echo_until_eof();
        }
        // A child that signals `getppid()` once its parent has exited: its
        // parent is then whoever adopted it. It keeps stdout open until it
        // has, so the grader waits for it.
        "orphan-signals" => {
            let parent = getpid();
            // SAFETY: single-threaded here; the child only polls, signals
            // and exits.
            match unsafe { fork() }.expect("fork") {
                ForkResult::Child => {
                    let until = Instant::now() + Duration::from_secs(10);
                    while getppid() == parent && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let _ = kill(getppid(), Signal::SIGUSR1);
                    let _ = kill(getppid(), Signal::SIGTERM);
                    std::process::exit(0)
                }
                ForkResult::Parent { .. } => echo_until_eof(),
            }
        }
        // Text meant for the reader of the report: terminal escapes that
        // clear the screen and draw a fake total, a carriage return, GitHub
        // workflow commands, on stdout and stderr and in a panic message.
        "inject" => {
            let forged = "\x1b[2J\x1b[H\x1b[32mTotal 600/600\r\n::error::forged\n##[error]forged\n";
            print!("{forged}");
            let _ = std::io::stdout().flush();
            eprint!("{forged}");
            panic!("\x1b[2J::error::forged\r\x1b]0;title\x07\n::error::forged")
        }
        // The same in its process name (`/proc/PID/comm`), then it hangs,
        // so that a time-out names it.
        "inject-comm" => {
            let _ = nix::sys::prctl::set_name(c"\x1b[2J::error::x");
            sleep_forever()
        }
        other => {
            eprintln!("hostile: unknown mode `{other}`");
            std::process::exit(2)
        }
    }
}
