//! A diagnosis: what the grader concluded from what it observed, and the
//! one hint that fits that cause.
//!
//! A check's own hint names the concept behind it, whatever went wrong; a
//! student who made another mistake is sent after the wrong fix. Where an
//! observation pins the cause down — the signal arrived and the program
//! went back into `read`, a process still holds the write end of a pipe —
//! the failure carries a [`Diagnosis`] instead, and the reports show it in
//! place of the check's hint (which they show, labelled as general, only
//! when there is none).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// What the observation means, as a cause ("sigecho caught SIGINT and
    /// went back into `read` without printing").
    pub what_it_means: String,
    /// What to do about that cause.
    pub hint: String,
}

impl Diagnosis {
    pub fn new(what_it_means: impl Into<String>, hint: impl Into<String>) -> Diagnosis {
        Diagnosis { what_it_means: what_it_means.into(), hint: hint.into() }
    }
}
