//! The command line (SPEC §3): `cargo grade [EXERCISE ...] [options]`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables and failure explanations for people.
    Human,
    /// One JSON object with scores and every check.
    Json,
}

/// Grade the ipc-lab exercises: builds your crates, runs them as real
/// processes and checks their behaviour from the outside.
#[derive(Debug, Parser)]
#[command(
    name = "cargo grade",
    version,
    after_help = "Examples:\n  cargo grade                         grade every exercise\n  cargo grade signals                 grade one exercise\n  cargo grade signals --check sigint  only checks whose id contains `sigint`\n  cargo grade signals --bin sigecho=./a.out   grade any executable (C, …)\n  cargo grade --solutions             grade the reference solutions"
)]
pub struct Args {
    /// Exercises to grade (default: all; see --list).
    #[arg(value_name = "EXERCISE")]
    pub exercises: Vec<String>,

    /// Grade the reference solutions instead of `exercises/`.
    #[arg(long)]
    pub solutions: bool,

    /// Use this executable for binary NAME instead of building it (repeatable).
    #[arg(long = "bin", value_name = "NAME=PATH")]
    pub bins: Vec<String>,

    /// Only the checks whose id contains PATTERN.
    #[arg(long, value_name = "PATTERN")]
    pub check: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Multiply every deadline and tolerance by F (slow machines).
    #[arg(long, value_name = "F", env = "GRADER_TIME_SCALE", default_value_t = 1.0)]
    pub time_scale: f64,

    /// List every exercise and check with its points.
    #[arg(long)]
    pub list: bool,

    /// Print the hints of EXERCISE.
    #[arg(long, value_name = "EXERCISE")]
    pub hint: Option<String>,

    /// Checks run in parallel (default: 2 per CPU, at least 4).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Workspace to grade (default: the one the grader was built in).
    #[arg(long, value_name = "DIR", hide = true)]
    pub root: Option<PathBuf>,
}
