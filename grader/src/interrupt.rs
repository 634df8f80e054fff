//! Ctrl-C, SIGTERM and SIGHUP to the grader.
//!
//! Student programs run in sessions of their own, so the terminal's SIGINT
//! does not reach them, and a grader that simply died would leave them
//! running. Instead the grader blocks those signals in every thread and one
//! thread waits for them: it kills every program (and a `cargo build`) the
//! grader started, refuses to start any more, and exits.

use nix::sys::signal::{SigSet, Signal};

use crate::harness::leash;

/// What SIGINT means to this run of the grader. SIGTERM and SIGHUP always
/// interrupt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sigint {
    /// The run is cut short: exit 128 + 2, like any interrupt.
    Interrupts,
    /// Ctrl-C is how this run ends normally (`--watch`): the same cleanup,
    /// then `grader: <message>` and exit 0.
    Quits(&'static str),
}

/// Install the guard. Call once, first thing in `main`: threads started
/// later inherit the blocked signals, so only the guard's thread sees them.
pub fn guard(sigint: Sigint) {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        let Ok(sig) = set.wait() else { return };
        leash::kill_everything();
        crate::harness::ipc::sweep_at_exit(); // no IPC object outlives an interrupted grader either
        match sigint {
            Sigint::Quits(message) if sig == Signal::SIGINT => {
                eprintln!("grader: {message}");
                std::process::exit(0);
            }
            _ => {
                eprintln!("grader: interrupted by {sig}; every program it started has been killed");
                std::process::exit(128 + sig as i32);
            }
        }
    });
}
