//! What the user asked for, in the grader's own words. The command line
//! (clap's [`Args`](crate::cli::Args)) is read once, in [`crate::cli`],
//! into a [`Mode`] and a [`Request`]; nothing below `app.rs` sees clap.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::Exercise;
use crate::harness::program::shell_word;
use crate::hints::Ask;
use crate::report::Output;

/// What this run of the grader does.
pub enum Mode {
    /// `--list`: every exercise and check, with the last run's status.
    List,
    /// `--hint EXERCISE [--check ID] [--level N]`: hints of one exercise.
    Hint(Ask),
    /// `--watch`: regrade after every change, waiting `debounce` after the
    /// last one.
    Watch { debounce: Duration },
    /// Grade once and write the report where `Output` says.
    Grade(Output),
}

/// Which copy of the exercise crates is graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The students' crates, `exercises/<id>` (also of a `--submission`).
    Exercises,
    /// The reference solutions, `solutions/<id>`, packages `<id>-solution`.
    Solutions,
}

impl Side {
    /// The folder of the workspace that holds this side's crates.
    pub fn dir(self) -> &'static str {
        match self {
            Side::Exercises => "exercises",
            Side::Solutions => "solutions",
        }
    }

    /// The crate folder of `exercise`, relative to the workspace
    /// (`exercises/signals`).
    pub fn crate_dir(self, exercise: &Exercise) -> String {
        format!("{}/{}", self.dir(), exercise.dir())
    }

    /// The Cargo package of `exercise` on this side.
    pub fn package(self, exercise: &Exercise) -> String {
        match self {
            Side::Exercises => exercise.id.to_string(),
            Side::Solutions => format!("{}-solution", exercise.id),
        }
    }

    /// The target directory this side is built into: the solutions have
    /// their own, so that grading them never rebuilds the students' crates.
    pub fn target(self, workspace: &Path) -> PathBuf {
        match self {
            Side::Exercises => workspace.join("target"),
            Side::Solutions => workspace.join("target").join("solutions"),
        }
    }
}

/// What to grade, and how.
#[derive(Debug, Clone)]
pub struct Request {
    /// Exercises named (default: all; see [`crate::grading`]).
    pub exercises: Vec<String>,
    /// Only checks whose id contains this.
    pub check: Option<String>,
    pub side: Side,
    /// A student's checkout to grade instead of this workspace's crates.
    pub submission: Option<PathBuf>,
    /// `NAME=PATH` as given with `--bin`, checked when grading.
    pub bins: Vec<String>,
    pub time_scale: f64,
    /// Threads that run checks at once; `None`: the runner's default.
    pub threads: Option<usize>,
}

impl Request {
    /// Whether this grading is the student's own, to be remembered for
    /// `--list`: not the solutions, not someone else's checkout, not
    /// executables given with `--bin`.
    pub fn remembered(&self) -> bool {
        self.side == Side::Exercises && self.submission.is_none() && self.bins.is_empty()
    }

    /// How to rerun a check the way this request graded it.
    pub fn rerun(&self) -> Rerun {
        let mut base = String::from("cargo grade");
        if let Some(dir) = &self.submission {
            base.push_str(&format!(" --submission {}", shell_word(&dir.display().to_string())));
        } else if self.side == Side::Solutions {
            base.push_str(" --solutions");
        }
        for b in &self.bins {
            base.push_str(&format!(" --bin {}", shell_word(b)));
        }
        if self.time_scale != 1.0 {
            base.push_str(&format!(" --time-scale {}", self.time_scale));
        }
        Rerun { base }
    }
}

/// The command line that reruns one check: the options that change what is
/// graded (`--solutions`, `--submission`, `--bin`, `--time-scale`), then
/// the exercise and `--check`.
#[derive(Debug, Clone)]
pub struct Rerun {
    base: String,
}

impl Rerun {
    pub fn check(&self, exercise: &str, check: &str) -> String {
        format!("{} {exercise} --check {check}", self.base)
    }
}

/// The exercise named `id`, or a usage error that lists the known ones.
pub fn find<'a>(all: &'a [Exercise], id: &str) -> Result<&'a Exercise, String> {
    all.iter().find(|e| e.id == id).ok_or_else(|| {
        let known: Vec<&str> = all.iter().map(|e| e.id).collect();
        format!("unknown exercise `{id}` (known: {})", known.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            exercises: vec![],
            check: None,
            side: Side::Exercises,
            submission: None,
            bins: vec![],
            time_scale: 1.0,
            threads: None,
        }
    }

    #[test]
    fn the_rerun_command_keeps_what_changes_the_grading() {
        assert_eq!(request().rerun().check("signals", "eof"), "cargo grade signals --check eof");
        let r = Request { side: Side::Solutions, time_scale: 2.5, ..request() };
        assert_eq!(r.rerun().check("shm", "ready"), "cargo grade --solutions --time-scale 2.5 shm --check ready");
        let r = Request { submission: Some("../alice b".into()), bins: vec!["sigecho=/bin/true".into()], ..request() };
        assert_eq!(
            r.rerun().check("signals", "eof"),
            "cargo grade --submission '../alice b' --bin sigecho=/bin/true signals --check eof"
        );
    }

    #[test]
    fn sides_name_their_folders_packages_and_targets() {
        let all = crate::exercises::all();
        let signals = find(&all, "signals").unwrap();
        assert_eq!(Side::Exercises.crate_dir(signals), "exercises/signals");
        assert_eq!(Side::Solutions.package(signals), "signals-solution");
        assert_eq!(Side::Exercises.package(signals), "signals");
        assert_eq!(Side::Solutions.target(Path::new("/ws")), Path::new("/ws/target/solutions"));
        assert!(find(&all, "nosuch")
            .map(|e| e.id)
            .unwrap_err()
            .starts_with("unknown exercise `nosuch` (known: signals, "));
    }
}
