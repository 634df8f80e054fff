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

use std::io::Write;
use std::time::{Duration, Instant};

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

fn main() {
    let exe = std::env::args().next().unwrap_or_default();
    let mode = exe.rsplit('/').next().unwrap_or("").trim_start_matches("hostile-").to_string();
    ready();
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
        other => {
            eprintln!("hostile: unknown mode `{other}`");
            std::process::exit(2)
        }
    }
}
