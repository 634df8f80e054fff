//! One grader run: validate the command line, build what is needed, run the
//! checks, write the report. Usage errors come back as `Err` (exit 2).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::Exercise;
use crate::cli::{Args, Format};
use crate::exercises;
use crate::harness::program::shell_word;
use crate::report;
use crate::runner::{self, Bins, Job, Settings};

/// The workspace the grader was built in.
fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("grader/ has a parent").to_path_buf()
}

/// Run the grader; `Ok(true)` when every graded check passed.
pub fn run(args: Args) -> Result<bool, String> {
    if !(args.time_scale.is_finite() && args.time_scale > 0.0 && args.time_scale <= 100.0) {
        return Err(format!("--time-scale must be a number above 0 and at most 100, not {}", args.time_scale));
    }
    let all = exercises::all();
    if args.list {
        print!("{}", list(&all));
        return Ok(true);
    }
    if let Some(id) = &args.hint {
        let ex = find(&all, id)?;
        print!("{}", hints(ex));
        return Ok(true);
    }
    let overrides = parse_bins(&args.bins, &all)?;

    // Which exercises: those named; else, with --bin, those whose binaries
    // are all given; else all.
    let chosen: Vec<Exercise>;
    if !args.exercises.is_empty() {
        for id in &args.exercises {
            find(&all, id)?;
        }
        chosen = all.into_iter().filter(|e| args.exercises.iter().any(|id| id == e.id)).collect();
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

    let root = args.root.clone().unwrap_or_else(default_root);
    let root = root.canonicalize().map_err(|e| format!("workspace {}: {e}", root.display()))?;
    let side = if args.solutions { "solutions" } else { "exercises" };
    let jobs = prepare(&root, side, selected, &overrides, args.time_scale)?;

    let mut rerun_base = String::from("cargo grade");
    if args.solutions {
        rerun_base.push_str(" --solutions");
    }
    for b in &args.bins {
        rerun_base.push_str(&format!(" --bin {}", shell_word(b)));
    }
    if args.time_scale != 1.0 {
        rerun_base.push_str(&format!(" --time-scale {}", args.time_scale));
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let settings = Settings { jobs: args.jobs.unwrap_or((cpus * 2).max(4)), scale: args.time_scale, rerun_base };
    let report = runner::run(&jobs, &settings);

    let text = match args.format {
        Format::Json => report::json::render(&report),
        Format::Human => {
            let colour =
                args.output.is_none() && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            report::human::render(
                &report,
                if colour { &report::human::Style::COLOR } else { &report::human::Style::PLAIN },
            )
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(report.all_passed())
}

fn find<'a>(all: &'a [Exercise], id: &str) -> Result<&'a Exercise, String> {
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
    scale: f64,
) -> Result<Vec<Job>, String> {
    let package = |e: &Exercise| if side == "solutions" { format!("{}-solution", e.id) } else { e.id.to_string() };
    let crates: Vec<(PathBuf, String)> = selected
        .iter()
        .filter(|(e, _)| !e.bins.iter().all(|b| overrides.contains_key(*b)))
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
        for &b in exercise.bins {
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
        jobs.push(Job { exercise, bins, selected: idx });
    }
    Ok(jobs)
}

fn list(all: &[Exercise]) -> String {
    let mut s = String::new();
    for e in all {
        s.push_str(&format!("{:10} {} ({} points; binaries: {})\n", e.id, e.title, e.max_points(), e.bins.join(", ")));
        for c in &e.checks {
            s.push_str(&format!("  {:18} {:>3}  {}\n", c.id, c.points, c.title));
        }
    }
    s
}

fn hints(e: &Exercise) -> String {
    let mut s = format!("{} — {}\nSlides: {}\n\n", e.id, e.title, e.slides);
    for c in &e.checks {
        let hint = c.hint.split_whitespace().collect::<Vec<_>>().join(" ");
        s.push_str(&format!("{} — {}\n  {hint}\n\n", c.id, c.title));
    }
    s
}
