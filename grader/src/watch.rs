//! `cargo grade --watch [EXERCISE]`: rebuild and regrade on every change.

use std::path::Path;

use crate::cli::Args;

pub fn run(_root: &Path, _args: &Args) -> Result<bool, String> {
    Err("--watch is not implemented yet".into())
}
