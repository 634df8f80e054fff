//! One grading: choose the exercises and checks a [`Request`] names, stage
//! a submission, build what is needed, run the checks.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::Exercise;
use crate::exercises;
use crate::request::{self, Request, Side};
use crate::results::Report;
use crate::runner::{self, Bins, Job, Settings};

/// Select, build and grade what `request` asks for (without writing a
/// report).
pub fn grade(root: &Path, request: &Request) -> Result<Report, String> {
    let all = exercises::all();
    let overrides = parse_bins(&request.bins, &all)?;
    let wanted = &request.exercises;

    // Which exercises: those named; else, with --bin, those whose binaries
    // are all given; else all.
    let chosen: Vec<Exercise>;
    if !wanted.is_empty() {
        for id in wanted {
            request::find(&all, id)?;
        }
        chosen = all.into_iter().filter(|e| wanted.iter().any(|id| id == e.id)).collect();
    } else if !overrides.is_empty() {
        chosen = all.into_iter().filter(|e| e.bins.iter().all(|b| overrides.contains_key(*b))).collect();
        if chosen.is_empty() {
            return Err("no exercise has all its binaries given by --bin; name the exercise too (e.g. `cargo grade sockets --bin tcp-server=./srv`)".into());
        }
    } else {
        chosen = all;
    }

    // Which checks.
    let mut selected: Vec<(Exercise, Vec<usize>)> = chosen
        .into_iter()
        .map(|e| {
            let idx = (0..e.checks.len())
                .filter(|&i| request.check.as_deref().is_none_or(|p| e.checks[i].id.contains(p)))
                .collect();
            (e, idx)
        })
        .collect();
    if let Some(p) = &request.check {
        selected.retain(|(_, idx)| !idx.is_empty());
        if selected.is_empty() {
            return Err(format!("no check id contains `{p}` (see `cargo grade --list`)"));
        }
    }

    // A student's checkout is built in a private copy of this workspace,
    // which lives until grading is done.
    let staged;
    let no_problems = BTreeMap::new();
    let (ws, problems) = match &request.submission {
        Some(dir) => {
            staged = crate::submission::stage(root, dir)?;
            (staged.root(), &staged.problems)
        }
        None => (root, &no_problems),
    };
    let jobs = prepare(ws, request.side, selected, &overrides, problems, request.time_scale)?;
    let settings = Settings {
        threads: request.threads.unwrap_or_else(runner::default_threads),
        scale: request.time_scale,
        rerun: request.rerun(),
    };
    let report = runner::run(&jobs, &settings);
    // Every check killed what its programs started. What slipped all of its
    // nets came to the grader as orphans: it dies now, before any report is
    // written (a daemon left running could rewrite the report file).
    crate::harness::reaper::kill_strays();
    Ok(report)
}

/// `--bin NAME=PATH` → NAME → absolute PATH, each checked.
fn parse_bins(specs: &[String], all: &[Exercise]) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (name, path) = spec.split_once('=').ok_or_else(|| format!("--bin takes NAME=PATH, not `{spec}`"))?;
        if !all.iter().any(|e| e.bins.contains(&name)) {
            let known: Vec<&str> = all.iter().flat_map(|e| e.bins.iter().copied()).collect();
            return Err(format!("--bin: unknown binary `{name}` (known: {})", known.join(", ")));
        }
        let p = Path::new(path);
        let meta = std::fs::metadata(p).map_err(|e| format!("--bin {name}: {path}: {e}"))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("--bin {name}: {path} is not an executable file"));
        }
        // Absolute, but symlinks kept: argv[0] stays what the user named.
        let abs = std::path::absolute(p).map_err(|e| format!("--bin {name}: {path}: {e}"))?;
        out.insert(name.to_string(), abs);
    }
    Ok(out)
}

/// Build the crates whose binaries were not all given, and pair every
/// exercise with its executables (or its build error).
fn prepare(
    root: &Path,
    side: Side,
    selected: Vec<(Exercise, Vec<usize>)>,
    overrides: &BTreeMap<String, PathBuf>,
    problems: &BTreeMap<String, String>,
    scale: f64,
) -> Result<Vec<Job>, String> {
    let present =
        |e: &Exercise| root.join(side.crate_dir(e)).join("Cargo.toml").is_file() && !problems.contains_key(e.id);
    let crates: Vec<(PathBuf, String)> = selected
        .iter()
        .filter(|(e, _)| !e.bins.iter().all(|b| overrides.contains_key(*b)) && present(e))
        .map(|(e, _)| (PathBuf::from(side.crate_dir(e)), side.package(e)))
        .collect();
    let built = if crates.is_empty() {
        Default::default()
    } else {
        if std::io::stderr().is_terminal() {
            eprintln!(
                "grader: building {} ({})…",
                side.dir(),
                crates.iter().map(|c| c.1.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        crate::builder::build(root, &crates, &side.target(root), Duration::from_secs_f64(900.0 * scale))?
    };
    let mut jobs = Vec::new();
    for (exercise, idx) in selected {
        let crate_dir = side.crate_dir(&exercise);
        let dir = root.join(&crate_dir);
        let mut bins = BTreeMap::new();
        let mut error = None;
        let all_given = exercise.bins.iter().all(|b| overrides.contains_key(*b));
        if !all_given && !present(&exercise) {
            error = Some(
                problems
                    .get(exercise.id)
                    .cloned()
                    .unwrap_or_else(|| format!("there is no crate {crate_dir} (its Cargo.toml is missing)")),
            );
        }
        let source = (!all_given).then(|| crate_dir.clone());
        let bin_sources = match &source {
            Some(src) => exercise
                .bins
                .iter()
                .filter(|b| !overrides.contains_key(**b))
                .map(|b| (b.to_string(), bin_source(root, src, b)))
                .collect(),
            None => BTreeMap::new(),
        };
        for &b in exercise.bins {
            if error.is_some() {
                break;
            }
            if let Some(p) = overrides.get(b) {
                bins.insert(b.to_string(), p.clone());
                continue;
            }
            match built.get(&dir) {
                Some(Ok(exes)) => match exes.get(b) {
                    Some(p) => {
                        bins.insert(b.to_string(), p.clone());
                    }
                    None => error = Some(format!("the crate {crate_dir} built no binary `{b}`")),
                },
                Some(Err(msg)) => error = Some(msg.clone()),
                None => error = Some(format!("{crate_dir} was not built")),
            }
        }
        let bins = match error {
            Some(e) => Bins::BuildError(e),
            None => Bins::Ready(bins),
        };
        jobs.push(Job { exercise, bins, selected: idx, source, bin_sources });
    }
    Ok(jobs)
}

/// The source file of binary `bin` of the crate `source` (a folder relative
/// to `tree`), relative to `tree`: Cargo's `src/bin/<bin>.rs` when the
/// crate has it, else `src/main.rs`. Reports point failures at it.
fn bin_source(tree: &Path, source: &str, bin: &str) -> String {
    let own = format!("{source}/src/bin/{bin}.rs");
    if tree.join(&own).is_file() {
        own
    } else {
        format!("{source}/src/main.rs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_source_prefers_src_bin_then_main() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert_eq!(bin_source(root, "exercises/sockets", "tcp-server"), "exercises/sockets/src/bin/tcp-server.rs");
        assert_eq!(bin_source(root, "solutions/sockets", "tcp-client"), "solutions/sockets/src/bin/tcp-client.rs");
        assert_eq!(bin_source(root, "exercises/signals", "sigecho"), "exercises/signals/src/main.rs");
        // A crate without src/bin/<bin>.rs falls back to main.rs.
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(bin_source(tmp.path(), "exercises/sockets", "tcp-server"), "exercises/sockets/src/main.rs");
    }
}
