//! The verdict classes: what kind of failure a check ended in.
//!
//! A student reading a failure must see at once *what kind* of failure it
//! was — wrong bytes, a hang, a crash by which signal, a panic, a `todo!()`
//! still in place — before the details. The harness names every failure
//! with a [`Kind`]; the reports only read it, so it lives with the results
//! (and `harness::Kind` re-exports it).

use serde::Serialize;

/// What went wrong, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The program answered, but not what the contract says.
    WrongOutput,
    /// Nothing (or not enough) came within the deadline.
    TimedOut,
    /// Killed by a signal it did not handle (SIGSEGV, SIGABRT, SIGPIPE …).
    Crashed,
    /// A Rust panic.
    Panicked,
    /// The skeleton's `todo!()` was reached.
    NotImplemented,
    /// Printed more than the output cap.
    OutputLimit,
    /// Exited but left processes running.
    LeftBehind,
    /// Sent a signal to the grader (its parent, its subreaper, or everyone
    /// with `kill(-1, …)`).
    SignalledGrader,
    /// The exercise did not compile.
    BuildError,
    /// Fault of the grader or the machine, not of the program.
    GraderError,
    /// Not possible on this machine (e.g. no IPv6 loopback): neither passed
    /// nor failed, and its points are not counted.
    Skipped,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::WrongOutput => "wrong output",
            Kind::TimedOut => "timed out",
            Kind::Crashed => "crashed",
            Kind::Panicked => "panicked",
            Kind::NotImplemented => "not implemented yet",
            Kind::OutputLimit => "output limit",
            Kind::LeftBehind => "processes left behind",
            Kind::SignalledGrader => "signalled the grader",
            Kind::BuildError => "build error",
            Kind::GraderError => "grader error",
            Kind::Skipped => "skipped",
        }
    }
}
