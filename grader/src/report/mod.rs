//! How results are shown: one module per output format. Reports only read a
//! finished [`Report`](crate::results::Report).

pub mod github;
pub mod gradescope;
pub mod human;
pub mod json;
pub mod junit;

use crate::cli::Format;
use crate::results::Report;

/// `report` in `format`; `colour` only matters for `human`.
pub fn render(format: Format, report: &Report, colour: bool) -> String {
    match format {
        Format::Human => human::render(report, if colour { &human::Style::COLOR } else { &human::Style::PLAIN }),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Gradescope => gradescope::render(report),
    }
}
