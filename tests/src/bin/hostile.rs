//! Hostile stand-ins for a student program, for the grader's own tests.
//! Each prints `ready PID` like `sigecho` and then misbehaves in one way,
//! chosen by the first argument the grader does not pass — so the mode is
//! taken from the executable's name: `hostile-<mode>` (a symlink).
//!
//! Every mode is bounded: the fork storm forks a few hundred children and
//! no more, nothing allocates without limit.

use std::io::Write;
use std::time::Duration;

use nix::sys::signal::{raise, signal, SigHandler, Signal};
use nix::unistd::{fork, getpid, setsid, ForkResult};

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
