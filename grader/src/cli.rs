//! The command line (SPEC §3): `cargo grade [EXERCISE ...] [options]`, and
//! `grader gradebook DIR...` for instructors.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

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

/// Grade the ipc-lab exercises: builds your crates, runs them as real
/// processes and checks their behaviour from the outside.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cargo grade",
    version,
    after_help = "Examples:\n  cargo grade                         grade every exercise\n  cargo grade signals                 grade one exercise\n  cargo grade signals --check sigint  only checks whose id contains `sigint`\n  cargo grade --watch signals         regrade whenever you save\n  cargo grade signals --bin sigecho=./a.out   grade any executable (C, …)\n  cargo grade --solutions             grade the reference solutions\n  cargo grade --submission ../alice   grade a student's checkout with these checks\n  cargo grade gradebook subs/*        grade many checkouts into a CSV gradebook"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Exercises to grade (default: all; see --list).
    #[arg(value_name = "EXERCISE")]
    pub exercises: Vec<String>,

    /// Grade the reference solutions instead of `exercises/`.
    #[arg(long, conflicts_with = "submission")]
    pub solutions: bool,

    /// Grade the exercise crates of a student's checkout DIR with this
    /// grader and its checks (the checkout's own grader is never used).
    #[arg(long, value_name = "DIR")]
    pub submission: Option<PathBuf>,

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

    /// Also write a report in FORMAT to FILE (repeatable), e.g.
    /// `--report junit=grade/junit.xml`.
    #[arg(long = "report", value_name = "FORMAT=FILE")]
    pub reports: Vec<String>,

    /// GitHub Actions: append a points table to `$GITHUB_STEP_SUMMARY` and
    /// print `::error` annotations for failing checks (at most 10).
    #[arg(long)]
    pub github: bool,

    /// Multiply every deadline and upper time bound by F (slow machines);
    /// lower bounds ("never early") do not scale.
    #[arg(long, value_name = "F", env = "GRADER_TIME_SCALE", default_value_t = 1.0, global = true)]
    pub time_scale: f64,

    /// List every exercise and check with its points (and its status from
    /// the last run).
    #[arg(long)]
    pub list: bool,

    /// Print the hints of EXERCISE.
    #[arg(long, value_name = "EXERCISE")]
    pub hint: Option<String>,

    /// Rebuild and regrade whenever a file of the exercise crates changes
    /// (all exercises, or only EXERCISE). Ctrl-C quits.
    #[arg(long, value_name = "EXERCISE", num_args = 0..=1)]
    pub watch: Option<Option<String>>,

    /// Debounce for --watch: wait this long after the last change.
    #[arg(long, value_name = "MS", default_value_t = 300, hide = true)]
    pub debounce_ms: u64,

    /// Checks run in parallel (default: 2 per CPU, at least 4).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Workspace to grade (default: the one the grader was built in).
    #[arg(long, value_name = "DIR", hide = true, global = true)]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Grade many student checkouts, each isolated, into a CSV gradebook
    /// plus one JSON report per submission.
    Gradebook(GradebookArgs),
}

#[derive(Debug, Clone, ClapArgs)]
pub struct GradebookArgs {
    /// Student checkouts (each a copy of this repository).
    #[arg(value_name = "DIR", required = true)]
    pub submissions: Vec<PathBuf>,

    /// Folder for `gradebook.csv` and the per-submission reports.
    #[arg(long, value_name = "DIR", default_value = "gradebook")]
    pub out: PathBuf,

    /// Only these exercises (repeatable; default: all).
    #[arg(long = "exercise", value_name = "EXERCISE")]
    pub exercises: Vec<String>,

    /// Submissions graded at once.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 2)]
    pub jobs: usize,

    /// Give up on one submission after this many seconds (build and grading;
    /// scaled by --time-scale).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
}
