//! How a student program is run: started clean ([`spawn`]), contained and
//! cleaned up ([`contain`]), driven and waited on ([`program`]), observed
//! through `/proc` ([`procfs`]), and how its failures are named
//! ([`failure`]).
//!
//! Checks never touch processes directly: they start a [`Program`], send it
//! stimuli, and wait for observable events with a deadline.

pub mod capture;
pub mod contain;
pub mod failure;
pub mod net;
pub mod procfs;
pub mod program;
pub mod spawn;
pub mod udp;

pub use failure::{show, size, Exit, Failure, Kind, Step};
pub use net::Conn;
pub use program::{Options, Program, SharedTranscript, Transcript};
pub use spawn::{Limits, Spec};
