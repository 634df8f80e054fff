//! The ipc-lab grader.
//!
//! Data flows one way: [`exercises`] (what is checked, on top of the
//! [`harness`] that runs programs) → [`runner`] → [`results`] →
//! [`report`]. See ARCHITECTURE.md at the repository root for the map.

pub mod app;
pub mod builder;
pub mod check;
pub mod cli;
pub mod cpu_lock;
pub mod exercises;
pub mod gradebook;
pub mod harness;
pub mod interrupt;
pub mod probe;
pub mod report;
pub mod results;
pub mod runner;
pub mod status;
pub mod submission;
pub mod watch;
