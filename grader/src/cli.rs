//! The command line: `cargo grade [EXERCISE ...] [options]`, and
//! `grader gradebook DIR...` for instructors (README.md, "Options";
//! INSTRUCTORS.md for the gradebook). [`Args::into_request`] turns it into
//! the grader's own words and refuses options that clash: the rest of the
//! grader never sees clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

use crate::hints::{Ask, Level};
use crate::report::Output;
use crate::request::{Mode, Request, Side};
use crate::results::Format;

/// Grade the ipc-lab exercises: builds your crates, runs them as real
/// processes and checks their behaviour from the outside.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cargo grade",
    version,
    after_help = "Examples:\n  cargo grade                         grade every exercise\n  cargo grade signals                 grade one exercise\n  cargo grade signals --check sigint  only checks whose id contains `sigint`\n  cargo grade --watch signals         regrade whenever you save\n  cargo grade signals --bin sigecho=./a.out   grade any executable (C, …)\n  cargo grade --solutions             grade the reference solutions\n  cargo grade --submission ../alice   grade a student's checkout with these checks\n  cargo grade gradebook subs/*        grade many checkouts into a CSV gradebook\n  cargo grade gradebook subs/* --shard 2/10 --out shard-2   grade one part of a class\n  cargo grade gradebook-merge shard-* --out gradebook       merge the parts"
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

    /// Print the hints of EXERCISE, for every TODO of its skeleton or, with
    /// --check, for the TODOs behind those checks.
    #[arg(long, value_name = "EXERCISE")]
    pub hint: Option<String>,

    /// How much --hint gives away: 1 the concept (default), 2 the API (nix
    /// items, man pages), 3 the step, nearly the code.
    #[arg(long, value_name = "N")]
    pub level: Option<u8>,

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

    /// When the grader runs as root: run student programs as USER, as UID,
    /// each as a uid of its own from FIRST-LAST (default: 60578-61183), or
    /// as root (`root`). A grader that is not root runs them as its own user.
    #[arg(long, value_name = "USER|UID|FIRST-LAST|root", env = "GRADER_RUN_AS", global = true)]
    pub run_as: Option<String>,

    /// Workspace to grade (default: the one the grader was built in).
    #[arg(long, value_name = "DIR", hide = true, global = true)]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Grade many student checkouts, each isolated, into a CSV gradebook
    /// plus one JSON report per submission.
    Gradebook(GradebookArgs),
    /// Merge the folders of `gradebook --shard I/N` (all N of one class)
    /// into one gradebook; prints a Markdown summary.
    GradebookMerge(MergeArgs),
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

    /// Grade only part I of N (1-based): the submissions' names sorted and
    /// dealt round-robin. Give every shard all the submissions; merge the
    /// shards' folders with `gradebook-merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct MergeArgs {
    /// The shards' gradebook folders (each has a `shard.json`).
    #[arg(value_name = "DIR", required = true)]
    pub shards: Vec<PathBuf>,

    /// Folder for the merged `gradebook.csv`, reports and logs.
    #[arg(long, value_name = "DIR", default_value = "gradebook")]
    pub out: PathBuf,
}

impl Args {
    /// `--time-scale`, if it is one: above 0 and at most 100.
    pub fn time_scale(&self) -> Result<f64, String> {
        let scale = self.time_scale;
        if scale.is_finite() && scale > 0.0 && scale <= 100.0 {
            Ok(scale)
        } else {
            Err(format!("--time-scale must be a number above 0 and at most 100, not {scale}"))
        }
    }

    /// What to do and what to grade. Options that make no sense together
    /// are a usage error, never silently one of them.
    pub fn into_request(self) -> Result<(Mode, Request), String> {
        self.refuse_clashes()?;
        let reports = parse_reports(&self.reports)?;
        let mut exercises = self.exercises;
        let mode = if self.list {
            Mode::List
        } else if let Some(exercise) = self.hint {
            let level = match self.level {
                None => Level::Concept,
                Some(n) => Level::from_number(n)
                    .ok_or_else(|| format!("--level is 1 (the concept), 2 (the API) or 3 (the step), not {n}"))?,
            };
            Mode::Hint(Ask { exercise, check: self.check.clone(), level })
        } else if let Some(watched) = self.watch {
            exercises.extend(watched);
            Mode::Watch { debounce: Duration::from_millis(self.debounce_ms) }
        } else {
            Mode::Grade(Output { format: self.format, file: self.output, reports, github: self.github })
        };
        let request = Request {
            exercises,
            check: self.check,
            side: if self.solutions { Side::Solutions } else { Side::Exercises },
            submission: self.submission,
            bins: self.bins,
            time_scale: self.time_scale,
            threads: self.jobs,
        };
        Ok((mode, request))
    }

    /// `--list`, `--hint` and `--watch` each do one thing of their own, so
    /// they exclude each other; listing and hints grade nothing, so they
    /// take no option about grading or reports (but `--hint` takes
    /// `--check` to choose the checks whose hints it prints); watch mode
    /// shows its own view, so it takes none about reports. One line each,
    /// like every usage error (clap's `conflicts_with` would print a usage
    /// block).
    fn refuse_clashes(&self) -> Result<(), String> {
        let submission = (self.submission.is_some(), "--submission");
        let check = (self.check.is_some(), "--check");
        let selecting = [
            (!self.exercises.is_empty(), "EXERCISE arguments"),
            (!self.bins.is_empty(), "--bin"),
            (self.solutions, "--solutions"),
            submission,
            (self.jobs.is_some(), "--jobs"),
        ];
        let reporting = [
            (self.format != Format::Human, "--format"),
            (self.output.is_some(), "--output"),
            (!self.reports.is_empty(), "--report"),
            (self.github, "--github"),
        ];
        let (hint, watch) = ((self.hint.is_some(), "--hint"), (self.watch.is_some(), "--watch"));
        if self.level.is_some() && !hint.0 {
            return Err("--level chooses how much --hint gives away and needs --hint EXERCISE".into());
        }
        refuse(self.list, "--list shows every exercise", &[&[hint, watch, check], &selecting, &reporting])?;
        refuse(hint.0, "--hint prints the hints of one exercise", &[&[watch], &selecting, &reporting])?;
        refuse(watch.0, "--watch shows its own view", &[&[submission], &reporting])
    }
}

/// An option and whether it was given.
type Given = (bool, &'static str);

/// With `mode` given, the first option of `excluded` that is given too is
/// a usage error; `what` says what the mode does.
fn refuse(mode: bool, what: &str, excluded: &[&[Given]]) -> Result<(), String> {
    match excluded.iter().copied().flatten().find(|(given, _)| mode && *given) {
        Some((_, flag)) => Err(format!("{what} and cannot be combined with {flag}")),
        None => Ok(()),
    }
}

/// `--report FORMAT=FILE` → (format, file), each checked.
fn parse_reports(specs: &[String]) -> Result<Vec<(Format, PathBuf)>, String> {
    specs
        .iter()
        .map(|spec| {
            let (format, file) =
                spec.split_once('=').ok_or_else(|| format!("--report takes FORMAT=FILE, not `{spec}`"))?;
            let format = Format::from_str(format, true)
                .map_err(|_| format!("--report: unknown format `{format}` (known: human, json, junit, gradescope)"))?;
            if file.is_empty() {
                return Err(format!("--report {spec}: the file name is missing"));
            }
            Ok((format, PathBuf::from(file)))
        })
        .collect()
}
