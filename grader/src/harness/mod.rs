//! How a student program is run: started clean ([`spawn`]) as a user that
//! cannot harm the grader ([`runas`]), where allowed in a PID namespace of
//! its own ([`pidns`]), kept on a leash and cleaned up after ([`leash`];
//! [`locks`] say which grader is alive), driven and waited on
//! ([`program`], [`net`]), observed through `/proc` ([`procfs`]), kept from
//! ending the grading with a signal ([`signals`]), and how its failures are
//! named ([`failure`]).
//!
//! Underneath: every wait is a [`deadline::wait`] bounded by a
//! [`deadline::Deadline`], and every process the grader starts — a program,
//! `cargo build`, a gradebook's grader — is started with
//! [`reaper::spawn_tracked`], so that orphan reaping leaves it to its owner.
//!
//! Checks never touch processes directly: they start a [`Program`], send it
//! stimuli, and wait for observable events with a deadline.

pub mod bus;
pub mod capture;
pub mod deadline;
pub mod failure;
pub mod ipc;
pub mod leash;
pub mod locks;
pub mod net;
pub mod pidns;
pub mod procfs;
pub mod program;
pub mod reaper;
pub mod runas;
pub mod signals;
pub mod spawn;
pub mod udp;

pub use failure::{show, size, Exit, Failure, Kind, Step};
pub use net::Conn;
pub use program::{Options, Program, SharedTranscript, Transcript};
pub use spawn::{Limits, Spec};
