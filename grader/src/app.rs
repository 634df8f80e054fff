//! One grader run: validate the command line, build what is needed, run the
//! checks, write the report. Usage errors come back as `Err` (exit 2).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::Exercise;
use clap::ValueEnum;

use crate::cli::{Args, Command, Format};
use crate::exercises;
use crate::harness::program::shell_word;
use crate::report;
use crate::report::human::{self, Style};
use crate::results::{Report, Status};
use crate::runner::{self, Bins, Job, Settings};
use crate::status::{self, LastRun};

/// The workspace the grader was built in.
fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("grader/ has a parent").to_path_buf()
}

/// Run the grader; `Ok(true)` when every graded check passed.
pub fn run(args: Args) -> Result<bool, String> {
    check_time_scale(args.time_scale)?;
    let root = args.root.clone().unwrap_or_else(default_root);
    let root = root.canonicalize().map_err(|e| format!("workspace {}: {e}", root.display()))?;
    if let Some(Command::Gradebook(book)) = &args.command {
        return crate::gradebook::run(&root, book, args.time_scale);
    }
    let all = exercises::all();
    if args.list {
        let terminal = std::io::stdout().is_terminal();
        let style = if stdout_colour() { &Style::COLOR } else { &Style::PLAIN };
        print!("{}", list(&all, crate::status::load(&root).as_ref(), terminal, style, status::now()));
        return Ok(true);
    }
    if let Some(id) = &args.hint {
        let ex = find(&all, id)?;
        print!("{}", hints(ex));
        return Ok(true);
    }
    let extra = parse_reports(&args.reports)?;
    if args.watch.is_some() {
        return crate::watch::run(&root, &args);
    }
    let report = grade(&root, &args)?;
    if !args.solutions && args.submission.is_none() && args.bins.is_empty() {
        crate::status::remember(&root, &report);
    }
    emit(&args, &report, &extra)?;
    Ok(report.all_passed())
}

fn check_time_scale(scale: f64) -> Result<(), String> {
    if scale.is_finite() && scale > 0.0 && scale <= 100.0 {
        Ok(())
    } else {
        Err(format!("--time-scale must be a number above 0 and at most 100, not {scale}"))
    }
}

/// Colour for a report on stdout: only on a terminal, and never with
/// `NO_COLOR` set (<https://no-color.org>).
pub fn stdout_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Write the report in `--format` (to `--output` or stdout), every
/// `--report FORMAT=FILE`, and with `--github` the step summary and
/// annotations.
fn emit(args: &Args, report: &Report, extra: &[(Format, PathBuf)]) -> Result<(), String> {
    let colour = args.output.is_none() && stdout_colour();
    let text = report::render(args.format, report, colour);
    match &args.output {
        Some(path) => write_file(path, &text)?,
        None => print!("{text}"),
    }
    for (format, path) in extra {
        write_file(path, &report::render(*format, report, false))?;
    }
    if args.github {
        report::github::emit(report)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
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

/// Select, build and grade what `args` asks for (without writing a report).
pub fn grade(root: &Path, args: &Args) -> Result<Report, String> {
    let all = exercises::all();
    let overrides = parse_bins(&args.bins, &all)?;
    let mut wanted = args.exercises.clone();
    if let Some(Some(id)) = &args.watch {
        wanted.push(id.clone());
    }

    // Which exercises: those named; else, with --bin, those whose binaries
    // are all given; else all.
    let chosen: Vec<Exercise>;
    if !wanted.is_empty() {
        for id in &wanted {
            find(&all, id)?;
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
                .filter(|&i| args.check.as_deref().is_none_or(|p| e.checks[i].id.contains(p)))
                .collect();
            (e, idx)
        })
        .collect();
    if let Some(p) = &args.check {
        selected.retain(|(_, idx)| !idx.is_empty());
        if selected.is_empty() {
            return Err(format!("no check id contains `{p}` (see `cargo grade --list`)"));
        }
    }

    let mut rerun_base = String::from("cargo grade");
    // A student's checkout is built in a private copy of this workspace,
    // which lives until grading is done.
    let staged;
    let no_problems = BTreeMap::new();
    let (ws, side, problems) = match &args.submission {
        Some(dir) => {
            staged = crate::submission::stage(root, dir)?;
            rerun_base.push_str(&format!(" --submission {}", shell_word(&dir.display().to_string())));
            (staged.root(), "exercises", &staged.problems)
        }
        None if args.solutions => {
            rerun_base.push_str(" --solutions");
            (root, "solutions", &no_problems)
        }
        None => (root, "exercises", &no_problems),
    };
    let jobs = prepare(ws, side, selected, &overrides, problems, args.time_scale)?;

    for b in &args.bins {
        rerun_base.push_str(&format!(" --bin {}", shell_word(b)));
    }
    if args.time_scale != 1.0 {
        rerun_base.push_str(&format!(" --time-scale {}", args.time_scale));
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let settings = Settings { jobs: args.jobs.unwrap_or((cpus * 2).max(4)), scale: args.time_scale, rerun_base };
    Ok(runner::run(&jobs, &settings))
}

pub(crate) fn find<'a>(all: &'a [Exercise], id: &str) -> Result<&'a Exercise, String> {
    all.iter().find(|e| e.id == id).ok_or_else(|| {
        let known: Vec<&str> = all.iter().map(|e| e.id).collect();
        format!("unknown exercise `{id}` (known: {})", known.join(", "))
    })
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
    side: &str,
    selected: Vec<(Exercise, Vec<usize>)>,
    overrides: &BTreeMap<String, PathBuf>,
    problems: &BTreeMap<String, String>,
    scale: f64,
) -> Result<Vec<Job>, String> {
    let package = |e: &Exercise| if side == "solutions" { format!("{}-solution", e.id) } else { e.id.to_string() };
    let present =
        |e: &Exercise| root.join(side).join(e.dir()).join("Cargo.toml").is_file() && !problems.contains_key(e.id);
    let crates: Vec<(PathBuf, String)> = selected
        .iter()
        .filter(|(e, _)| !e.bins.iter().all(|b| overrides.contains_key(*b)) && present(e))
        .map(|(e, _)| (PathBuf::from(side).join(e.dir()), package(e)))
        .collect();
    let built = if crates.is_empty() {
        Default::default()
    } else {
        if std::io::stderr().is_terminal() {
            eprintln!(
                "grader: building {side} ({})…",
                crates.iter().map(|c| c.1.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        let target = if side == "solutions" { root.join("target").join("solutions") } else { root.join("target") };
        crate::builder::build(root, &crates, &target, Duration::from_secs_f64(900.0 * scale))?
    };
    let mut jobs = Vec::new();
    for (exercise, idx) in selected {
        let dir = root.join(side).join(exercise.dir());
        let mut bins = BTreeMap::new();
        let mut error = None;
        let all_given = exercise.bins.iter().all(|b| overrides.contains_key(*b));
        if !all_given && !present(&exercise) {
            error =
                Some(problems.get(exercise.id).cloned().unwrap_or_else(|| {
                    format!("there is no crate {side}/{} (its Cargo.toml is missing)", exercise.dir())
                }));
        }
        let source = (!all_given).then(|| format!("{side}/{}", exercise.dir()));
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
                    None => error = Some(format!("the crate {side}/{} built no binary `{b}`", exercise.dir())),
                },
                Some(Err(msg)) => error = Some(msg.clone()),
                None => error = Some(format!("{side}/{} was not built", exercise.dir())),
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

/// Every exercise and check with its points and, where a run remembered
/// it, the check's last status: marks (✓ ✗ ! -) on a terminal, words where
/// the output is read by `grep` or a log (`failed`, `not graded`).
fn list(all: &[Exercise], last: Option<&LastRun>, terminal: bool, st: &Style, now: u64) -> String {
    let mut s = String::new();
    for e in all {
        // An entry whose points no longer match the check is of an older
        // grader: as good as not graded.
        let known: Vec<_> = e
            .checks
            .iter()
            .map(|c| {
                last.and_then(|l| l.get(e.id, c.id))
                    .filter(|en| en.max_points == c.points || en.status == Status::Skipped)
            })
            .collect();
        let graded: Vec<_> = known.iter().flatten().collect();
        let state = match graded.iter().map(|en| en.when).max() {
            None => format!("{}not graded yet{}", st.dim, st.reset),
            Some(when) => {
                let score: u32 = graded.iter().map(|en| en.points).sum();
                let colour = if score == e.max_points() { st.green } else { st.red };
                let mut t = format!("{}{colour}{score}/{}{}", st.bold, e.max_points(), st.reset);
                if graded.len() < e.checks.len() {
                    t.push_str(&format!(" ({} of {} checks graded)", graded.len(), e.checks.len()));
                }
                t.push_str(&format!(", last graded {}", status::ago(when, now)));
                t
            }
        };
        s.push_str(&format!(
            "{:10} {} ({} points; binaries: {}) — {state}\n",
            e.id,
            e.title,
            e.max_points(),
            e.bins.join(", ")
        ));
        for (c, entry) in e.checks.iter().zip(&known) {
            let mark = match (entry, terminal) {
                _ if graded.is_empty() => String::new(),
                (Some(en), true) => format!("{} ", human::mark(en.status, st)),
                (Some(en), false) => format!("{:11}", word(en.status)),
                (None, true) => "· ".into(),
                (None, false) => "not graded ".into(),
            };
            s.push_str(&format!("  {mark}{:18} {:>3}  {}\n", c.id, c.points, c.title));
        }
    }
    s
}

fn word(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Error => "error",
        Status::Skipped => "skipped",
    }
}

fn hints(e: &Exercise) -> String {
    let mut s = format!("{} — {}\nSlides: {}\n\n", e.id, e.title, e.slides);
    for c in &e.checks {
        let hint = c.hint.split_whitespace().collect::<Vec<_>>().join(" ");
        s.push_str(&format!("{} — {}\n  {hint}\n\n", c.id, c.title));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_source_prefers_src_bin_then_main() {
        let root = default_root();
        assert_eq!(bin_source(&root, "exercises/sockets", "tcp-server"), "exercises/sockets/src/bin/tcp-server.rs");
        assert_eq!(bin_source(&root, "solutions/sockets", "tcp-client"), "solutions/sockets/src/bin/tcp-client.rs");
        assert_eq!(bin_source(&root, "exercises/signals", "sigecho"), "exercises/signals/src/main.rs");
        // A crate without src/bin/<bin>.rs falls back to main.rs.
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(bin_source(tmp.path(), "exercises/sockets", "tcp-server"), "exercises/sockets/src/main.rs");
    }
}
