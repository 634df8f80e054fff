//! The ipc-lab grader.
//!
//! Data flows one way: [`exercises`] (what is checked, on top of the
//! [`harness`] that runs programs) → [`runner`] → [`results`] →
//! [`report`]. [`results`] also holds the words every layer shares (the
//! verdict [`results::Kind`], the source [`results::Location`] of a
//! failure, the output [`results::Format`]). The command line stops at
//! [`app`]: below it, a [`request::Request`] says what to grade. See
//! ARCHITECTURE.md at the repository root for the map.

pub mod app;
pub mod atomic;
pub mod builder;
pub mod check;
pub mod cli;
pub mod cpu_lock;
pub mod exercises;
pub mod gradebook;
pub mod grading;
pub mod harness;
pub mod hints;
pub mod interrupt;
pub mod listing;
pub mod merge;
pub mod probe;
pub mod protect;
pub mod report;
pub mod request;
pub mod results;
pub mod runner;
pub mod shard;
pub mod status;
pub mod submission;
pub mod text;
pub mod watch;
