//! `grader gradebook-merge DIR... --out DIR`: the shards of one class
//! (`gradebook --shard I/N`) into one gradebook, as if graded in one run.
//!
//! The shards' manifests must agree (one grader, one check set, one time
//! scale, one split) and together hold every part exactly once; otherwise
//! the merge refuses with the first reason, in one line. The rows are
//! copied as they are and sorted by name, as the gradebook sorts them, and
//! each submission's JSON report and log are copied alongside. On stdout:
//! a Markdown summary (statuses and a histogram of scores), made for
//! `$GITHUB_STEP_SUMMARY` and readable in a terminal.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use csv::StringRecord;

use crate::shard::{Manifest, Shard};

/// The gradebook's columns after the exercises: total, max, status, note.
const TRAILING: [&str; 4] = ["total", "max", "status", "note"];

/// Merge the gradebook folders `dirs` into `out`; `Ok(true)` when every
/// submission was graded, as for the gradebook itself.
pub fn run(dirs: &[PathBuf], out: &Path) -> Result<bool, String> {
    let shards: Vec<(String, Manifest)> =
        dirs.iter().map(|dir| Manifest::read(dir).map(|m| (dir.display().to_string(), m))).collect::<Result<_, _>>()?;
    let first = &shards.first().ok_or("no shard folder to merge")?;
    for (label, m) in &shards[1..] {
        if let Some(why) = first.1.clash(&first.0, m, label) {
            return Err(why);
        }
    }
    complete(&shards)?;
    fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let out_real = out.canonicalize().map_err(|e| format!("{}: {e}", out.display()))?;
    if dirs.iter().any(|d| d.canonicalize().is_ok_and(|d| d == out_real)) {
        return Err(format!("--out {} is one of the shards; merge into a new folder", out.display()));
    }

    let header = header(&first.1);
    let mut rows: BTreeMap<String, StringRecord> = BTreeMap::new();
    for (dir, (_, m)) in dirs.iter().zip(&shards) {
        let path = dir.join("gradebook.csv");
        let read = read_rows(&path, &header).map_err(|e| format!("{}: {e}", path.display()))?;
        let names: Vec<&str> = read.iter().map(|r| &r[0]).collect();
        if names != m.submissions {
            return Err(format!("{}: its rows are not the submissions its shard.json names", path.display()));
        }
        for row in read {
            copy_files(dir, out, &row[0])?;
            rows.insert(row[0].to_string(), row);
        }
    }

    let csv_path = out.join("gradebook.csv");
    write_rows(&csv_path, &header, rows.values()).map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    let merged = Manifest { shard: Shard::ALL, submissions: rows.keys().cloned().collect(), ..first.1.clone() };
    merged.write(out)?;
    let lines: Vec<Line> = rows.values().map(Line::of).collect();
    print!("{}", summary(&lines));
    eprintln!("gradebook-merge: {} shards, {} submissions → {}", shards.len(), rows.len(), csv_path.display());
    Ok(lines.iter().all(|l| l.status == "graded"))
}

/// Every part of the split exactly once, and no submission in two.
fn complete(shards: &[(String, Manifest)]) -> Result<(), String> {
    let count = shards[0].1.shard.count;
    let mut by_index: BTreeMap<usize, &str> = BTreeMap::new();
    for (label, m) in shards {
        if let Some(other) = by_index.insert(m.shard.index, label) {
            return Err(format!("{other} and {label} are both shard {}", m.shard));
        }
    }
    if let Some(missing) = (1..=count).find(|i| !by_index.contains_key(i)) {
        return Err(format!("shard {missing}/{count} is missing"));
    }
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (label, m) in shards {
        for name in &m.submissions {
            if let Some(other) = owner.insert(name, label) {
                return Err(format!("submission {name} is in {other} and in {label}"));
            }
        }
    }
    let total = shards[0].1.total;
    if owner.len() != total {
        return Err(format!("the shards hold {} submissions but were split from {total}", owner.len()));
    }
    Ok(())
}

/// The gradebook's header for these exercises.
fn header(m: &Manifest) -> StringRecord {
    let mut h = StringRecord::from(vec!["submission"]);
    m.exercises.iter().for_each(|e| h.push_field(&e.id));
    TRAILING.iter().for_each(|c| h.push_field(c));
    h
}

fn read_rows(path: &Path, header: &StringRecord) -> Result<Vec<StringRecord>, String> {
    let mut r = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    if r.headers().map_err(|e| e.to_string())? != header {
        return Err("its columns are not those of the exercises in shard.json".into());
    }
    r.records().map(|rec| rec.map_err(|e| e.to_string())).collect()
}

fn write_rows<'a>(
    path: &Path,
    header: &StringRecord,
    rows: impl Iterator<Item = &'a StringRecord>,
) -> Result<(), String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(|e| e.to_string())?;
    for row in rows {
        w.write_record(row).map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    crate::atomic::write(path, &bytes).map_err(|e| e.to_string())
}

/// A submission's report and log, where its shard has them (a submission
/// that timed out has no report).
fn copy_files(from: &Path, to: &Path, name: &str) -> Result<(), String> {
    for ext in ["json", "log"] {
        let (src, dst) = (from.join(format!("{name}.{ext}")), to.join(format!("{name}.{ext}")));
        let _ = fs::remove_file(&dst);
        if src.is_file() {
            fs::copy(&src, &dst).map_err(|e| format!("cannot copy {} to {}: {e}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// What the summary needs of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub status: String,
    pub total: u32,
    pub max: u32,
}

impl Line {
    fn of(row: &StringRecord) -> Line {
        let field = |back: usize| row.get(row.len() - back).unwrap_or("");
        Line { status: field(2).to_string(), total: field(4).parse().unwrap_or(0), max: field(3).parse().unwrap_or(0) }
    }
}

/// Widest histogram bar, in characters.
const BAR: usize = 30;

/// Statuses and a histogram of the graded submissions' scores (in tenths
/// of their maximum), as Markdown.
pub fn summary(lines: &[Line]) -> String {
    let mut s = format!("### Gradebook: {} submissions\n\n| status | submissions |\n|---|---:|\n", lines.len());
    for status in ["graded", "timeout", "error"] {
        let n = lines.iter().filter(|l| l.status == status).count();
        s.push_str(&format!("| {status} | {n} |\n"));
    }
    let graded: Vec<&Line> = lines.iter().filter(|l| l.status == "graded" && l.max > 0).collect();
    if graded.is_empty() {
        return s;
    }
    // Bin k < 10 holds scores from k·10 % up to below (k+1)·10 %; bin 10 full marks.
    let mut bins = [0usize; 11];
    for l in &graded {
        bins[(u64::from(l.total.min(l.max)) * 10 / u64::from(l.max)) as usize] += 1;
    }
    let widest = bins.iter().copied().max().unwrap_or(1).max(1);
    s.push_str("\n| score | submissions | |\n|---|---:|---|\n");
    for (k, &n) in bins.iter().enumerate() {
        let label = if k == 10 { "100 %".to_string() } else { format!("{}–{} %", k * 10, k * 10 + 9) };
        let bar = "█".repeat((n * BAR).div_ceil(widest));
        s.push_str(&format!("| {label} | {n} | {bar} |\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::{Graded, Grader};

    fn line(status: &str, total: u32, max: u32) -> Line {
        Line { status: status.into(), total, max }
    }

    #[test]
    fn summary_counts_statuses_and_bins_scores() {
        let s = summary(&[
            line("graded", 200, 200),
            line("graded", 199, 200),
            line("graded", 0, 200),
            line("graded", 20, 200),
            line("timeout", 0, 0),
            line("error", 0, 0),
        ]);
        assert!(s.starts_with("### Gradebook: 6 submissions\n"), "{s}");
        assert!(s.contains("| graded | 4 |\n| timeout | 1 |\n| error | 1 |\n"), "{s}");
        assert!(s.contains(&format!("| 0–9 % | 1 | {} |\n", "█".repeat(BAR))), "{s}");
        assert!(s.contains("| 10–19 % | 1 |"), "{s}");
        assert!(s.contains("| 20–29 % | 0 |  |\n"), "{s}");
        assert!(s.contains("| 90–99 % | 1 |"), "{s}");
        assert!(s.contains("| 100 % | 1 |"), "{s}");
    }

    #[test]
    fn summary_without_graded_rows_has_no_histogram() {
        let s = summary(&[line("error", 0, 0)]);
        assert!(s.ends_with("| error | 1 |\n"), "{s}");
    }

    fn manifest(index: usize, count: usize, names: &[&str], total: usize) -> Manifest {
        Manifest {
            grader: Grader { version: "0.1.0".into(), commit: None },
            exercises: vec![Graded { id: "shm".into(), max_points: 100, checks: vec!["lines".into()] }],
            time_scale: 1.0,
            shard: Shard { index, count },
            total,
            submissions: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn every_part_once_and_no_submission_twice() {
        let ok = vec![("a".to_string(), manifest(1, 2, &["x"], 2)), ("b".to_string(), manifest(2, 2, &["y"], 2))];
        assert_eq!(complete(&ok), Ok(()));
        let twice = vec![("a".to_string(), manifest(1, 2, &["x"], 2)), ("b".to_string(), manifest(1, 2, &["y"], 2))];
        assert_eq!(complete(&twice).unwrap_err(), "a and b are both shard 1/2");
        let missing = vec![("a".to_string(), manifest(1, 3, &["x"], 3)), ("b".to_string(), manifest(3, 3, &["y"], 3))];
        assert_eq!(complete(&missing).unwrap_err(), "shard 2/3 is missing");
        let both = vec![("a".to_string(), manifest(1, 2, &["x"], 2)), ("b".to_string(), manifest(2, 2, &["x"], 2))];
        assert_eq!(complete(&both).unwrap_err(), "submission x is in a and in b");
        let short = vec![("a".to_string(), manifest(1, 2, &["x"], 3)), ("b".to_string(), manifest(2, 2, &["y"], 3))];
        assert_eq!(complete(&short).unwrap_err(), "the shards hold 2 submissions but were split from 3");
    }

    #[test]
    fn rows_are_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.csv");
        let h = header(&manifest(1, 1, &[], 0));
        let row = StringRecord::from(vec!["alice", "40", "40", "100", "graded", "did not build: \"x\", y"]);
        write_rows(&path, &h, [&row].into_iter()).unwrap();
        assert_eq!(read_rows(&path, &h).unwrap(), vec![row.clone()]);
        assert_eq!(Line::of(&row), line("graded", 40, 100));
        let other = StringRecord::from(vec!["submission", "signals", "total", "max", "status", "note"]);
        assert_eq!(read_rows(&path, &other).unwrap_err(), "its columns are not those of the exercises in shard.json");
    }
}
