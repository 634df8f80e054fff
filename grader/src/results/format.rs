//! The output formats a [`Report`](super::Report) can be written in (one
//! module each under [`crate::report`]). Clap's `ValueEnum` makes them the
//! values of `--format` and `--report FORMAT=FILE`.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables and failure explanations for people.
    Human,
    /// One JSON object with scores and every check.
    Json,
    /// JUnit XML: one testsuite per exercise, one testcase per check.
    Junit,
    /// Gradescope's `results.json`.
    Gradescope,
}
