//! Ctrl-C, SIGTERM, SIGHUP — any signal from outside the grading.
//!
//! Student programs run in sessions of their own, so the terminal's SIGINT
//! does not reach them, and a grader that simply died would leave them
//! running. The grader reads every signal in one thread (see
//! [`crate::harness::signals`]); what a program under grading sends fails
//! its check, and what comes from outside ends up here: a signal that
//! would end a process kills every program (and a `cargo build`) the grader
//! started, refuses to start any more, and exits; one that would stop it
//! (Ctrl-Z) stops it; the rest are ignored, as they would be.

use nix::sys::signal::{kill, Signal};
use nix::unistd::getpid;

use crate::harness::failure::signal_name;
use crate::harness::leash;
use crate::harness::signals::{self, Action};

/// What SIGINT means to this run of the grader. Other signals that end a
/// process always interrupt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sigint {
    /// The run is cut short: exit 128 + 2, like any interrupt.
    Interrupts,
    /// Ctrl-C is how this run ends normally (`--watch`): the same cleanup,
    /// then `grader: <message>` and exit 0.
    Quits(&'static str),
}

/// Start reading signals. Call once in `main`, after
/// [`signals::block_all`] and before
/// anything runs.
pub fn guard(sigint: Sigint) {
    signals::listen(move |sig| from_outside(sig, sigint));
}

/// Once the grader is being interrupted, the signal thread ends the
/// process: any other thread that gets here (to write a report, to exit)
/// waits for that instead.
pub fn hold_if_interrupted() {
    while crate::harness::reaper::stopping() {
        std::thread::park();
    }
}

fn from_outside(sig: i32, sigint: Sigint) {
    match signals::default_action(sig) {
        Action::Ignore => {}
        Action::Stop => {
            let _ = kill(getpid(), Signal::SIGSTOP);
        }
        Action::End => {
            leash::kill_everything();
            crate::harness::ipc::sweep_at_exit(); // no IPC object outlives an interrupted grader either
            match sigint {
                Sigint::Quits(message) if sig == libc::SIGINT => {
                    eprintln!("grader: {message}");
                    std::process::exit(0);
                }
                _ => {
                    eprintln!("grader: interrupted by {}; every program it started has been killed", signal_name(sig));
                    std::process::exit(128 + sig);
                }
            }
        }
    }
}
