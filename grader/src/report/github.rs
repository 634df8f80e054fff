//! `--github`: the step summary and `::error` annotations.

use crate::results::Report;

pub fn emit(_report: &Report) -> Result<(), String> {
    Err("--github is not implemented yet".into())
}
