//! `gradebook --shard I/N`: one of N parts of a class, and the manifest
//! (`shard.json`) that lets `gradebook-merge` check the parts belong
//! together.
//!
//! The parts are dealt, not hashed: the submissions' names are sorted and
//! dealt round-robin, so every part has the same number of submissions
//! give or take one, and a submission's part depends only on the set of
//! names, never on the order of the arguments. Every shard is given all
//! the submissions (a folder per student, empty ones for the students other
//! shards grade) and grades its own. `instructors/roster.py` deals the same
//! way to decide which repositories a shard clones; a test holds the two
//! to the same rule.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::check::Exercise;

/// The manifest's file name in a gradebook folder.
pub const MANIFEST: &str = "shard.json";

/// Part `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole class in one part.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// `I/N` with 1 ≤ I ≤ N.
    pub fn parse(spec: &str) -> Result<Shard, String> {
        let bad = || format!("--shard takes I/N with 1 <= I <= N (e.g. 2/10), not `{spec}`");
        let (i, n) = spec.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// This part's items of `items`, named by `name`: sorted by name and
    /// dealt round-robin, the first to part 1.
    pub fn pick<T>(self, mut items: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
        items.sort_by(|a, b| name(a).cmp(name(b)));
        items.into_iter().enumerate().filter(|(k, _)| k % self.count == self.index - 1).map(|(_, t)| t).collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which grader graded: shards of different graders are not comparable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grader {
    /// The grader crate's version.
    pub version: String,
    /// The workspace's git commit (`-dirty` with uncommitted changes to
    /// tracked files), when it is a git checkout.
    pub commit: Option<String>,
}

impl Grader {
    /// This grader, run on the workspace at `root`.
    pub fn this(root: &Path) -> Grader {
        Grader { version: env!("CARGO_PKG_VERSION").to_string(), commit: git_commit(root) }
    }
}

impl std::fmt::Display for Grader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.version)?;
        match &self.commit {
            Some(c) => write!(f, " at {c}"),
            None => write!(f, " (no git commit)"),
        }
    }
}

/// `git rev-parse HEAD` of `root`, marked `-dirty` when a tracked file
/// differs from it; `None` when `root` is no git checkout (an exported
/// copy: Gradescope, the gradebook workflow).
fn git_commit(root: &Path) -> Option<String> {
    if !root.join(".git").exists() {
        return None; // not its own checkout, though perhaps inside another
    }
    let git = |args: &[&str]| {
        let out = Command::new("git").arg("-C").arg(root).args(args).stdin(Stdio::null()).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--verify", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

/// An exercise as graded: its checks decide its points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graded {
    pub id: String,
    pub max_points: u32,
    pub checks: Vec<String>,
}

impl Graded {
    pub fn of(exercise: &Exercise) -> Graded {
        Graded {
            id: exercise.id.to_string(),
            max_points: exercise.max_points(),
            checks: exercise.checks.iter().map(|c| c.id.to_string()).collect(),
        }
    }
}

/// `shard.json`: what a gradebook folder holds and how it was graded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub grader: Grader,
    /// The exercises graded, in the gradebook's column order.
    pub exercises: Vec<Graded>,
    pub time_scale: f64,
    pub shard: Shard,
    /// Submissions in all parts together.
    pub total: usize,
    /// This part's submissions (row names), sorted.
    pub submissions: Vec<String>,
}

impl Manifest {
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())? + "\n";
        crate::atomic::write(&path, text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    pub fn read(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST);
        let text = fs::read_to_string(&path).map_err(|e| {
            format!("{}: {e} (not a folder written by `cargo grade gradebook` of this version)", path.display())
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: unreadable: {e}", path.display()))
    }

    /// Why the parts `self` (from folder `mine`) and `other` (from
    /// `theirs`) cannot be merged, if they cannot: graded by different
    /// graders, with different checks or time scales, or split differently.
    pub fn clash(&self, mine: &str, other: &Manifest, theirs: &str) -> Option<String> {
        if self.grader != other.grader {
            return Some(format!(
                "{mine} was graded by grader {} but {theirs} by grader {}; grade every shard with the same grader",
                self.grader, other.grader
            ));
        }
        if let Some(why) = exercises_differ(&self.exercises, &other.exercises) {
            return Some(format!("{mine} and {theirs} were graded with different checks: {why}"));
        }
        if self.time_scale != other.time_scale {
            return Some(format!(
                "{mine} was graded with --time-scale {} but {theirs} with {}",
                self.time_scale, other.time_scale
            ));
        }
        if self.shard.count != other.shard.count || self.total != other.total {
            return Some(format!(
                "{mine} is shard {} of {} submissions but {theirs} is shard {} of {}; shards of one run only",
                self.shard, self.total, other.shard, other.total
            ));
        }
        None
    }
}

/// The first difference between two check sets, in words.
fn exercises_differ(a: &[Graded], b: &[Graded]) -> Option<String> {
    let ids = |v: &[Graded]| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>().join(", ");
    if ids(a) != ids(b) {
        return Some(format!("exercises {} vs {}", ids(a), ids(b)));
    }
    let (x, y) = a.iter().zip(b).find(|(x, y)| x != y)?;
    if x.max_points != y.max_points {
        Some(format!("{} is worth {} vs {} points", x.id, x.max_points, y.max_points))
    } else {
        Some(format!("{} has checks {} vs {}", x.id, x.checks.join(" "), y.checks.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_takes_i_of_n_only() {
        assert_eq!(Shard::parse("2/10"), Ok(Shard { index: 2, count: 10 }));
        assert_eq!(Shard::parse("1/1"), Ok(Shard::ALL));
        for bad in ["0/3", "4/3", "3", "a/3", "1/0", "-1/3", "1/3/4", ""] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.starts_with("--shard takes I/N") && e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|k| format!("s{:03}", (k * 37) % n)).collect()
    }

    #[test]
    fn parts_are_disjoint_covering_balanced_and_order_free() {
        for (n, parts) in [(10, 3), (7, 7), (3, 5), (300, 10), (1, 1)] {
            let all = names(n);
            let mut seen = Vec::new();
            for index in 1..=parts {
                let shard = Shard { index, count: parts };
                let part = shard.pick(all.clone(), |s| s);
                let mut reversed = all.clone();
                reversed.reverse();
                assert_eq!(shard.pick(reversed, |s| s), part, "order matters for {shard}");
                assert!(part.len() == n / parts || part.len() == n / parts + 1, "{shard} of {n}: {}", part.len());
                seen.extend(part);
            }
            seen.sort();
            let mut expected = all.clone();
            expected.sort();
            assert_eq!(seen, expected, "{n} over {parts}: every name exactly once");
        }
    }

    #[test]
    fn dealing_is_round_robin_over_sorted_names() {
        let part = Shard { index: 2, count: 3 }.pick(vec!["e", "a", "d", "b", "c"], |s| s);
        assert_eq!(part, ["b", "e"]);
    }

    fn manifest() -> Manifest {
        Manifest {
            grader: Grader { version: "0.1.0".into(), commit: Some("abc".into()) },
            exercises: vec![Graded { id: "signals".into(), max_points: 100, checks: vec!["echo".into()] }],
            time_scale: 2.0,
            shard: Shard { index: 1, count: 2 },
            total: 3,
            submissions: vec!["alice".into(), "carol".into()],
        }
    }

    #[test]
    fn shards_of_one_run_merge() {
        let a = manifest();
        let b = Manifest { shard: Shard { index: 2, count: 2 }, submissions: vec!["bob".into()], ..manifest() };
        assert_eq!(a.clash("a", &b, "b"), None);
    }

    #[test]
    fn clashes_are_one_line_reasons() {
        let a = manifest();
        let mut b = manifest();
        b.grader.commit = Some("def".into());
        assert_eq!(
            a.clash("a", &b, "b").unwrap(),
            "a was graded by grader 0.1.0 at abc but b by grader 0.1.0 at def; grade every shard with the same grader"
        );
        let mut b = manifest();
        b.exercises[0].max_points = 90;
        assert_eq!(
            a.clash("a", &b, "b").unwrap(),
            "a and b were graded with different checks: signals is worth 100 vs 90 points"
        );
        let mut b = manifest();
        b.exercises[0].checks.push("eof".into());
        assert!(a.clash("a", &b, "b").unwrap().ends_with("signals has checks echo vs echo eof"));
        let mut b = manifest();
        b.exercises[0].id = "shm".into();
        assert!(a.clash("a", &b, "b").unwrap().ends_with("exercises signals vs shm"));
        let b = Manifest { time_scale: 3.0, ..manifest() };
        assert!(a.clash("a", &b, "b").unwrap().contains("--time-scale 2 but b with 3"));
        let b = Manifest { shard: Shard { index: 1, count: 3 }, ..manifest() };
        assert!(a.clash("a", &b, "b").unwrap().contains("shard 1/2 of 3 submissions but b is shard 1/3 of 3"));
    }

    #[test]
    fn manifest_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        manifest().write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), manifest());
        let e = Manifest::read(&dir.path().join("nothing")).unwrap_err();
        assert!(e.contains("shard.json") && e.contains("not a folder written by"), "{e}");
    }
}
