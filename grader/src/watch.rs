//! `cargo grade --watch [EXERCISE]`: grade once, then rebuild and regrade
//! whenever a file of the exercise crates changes — the student's loop of
//! edit, save, read the first failure.
//!
//! Changes come from inotify (`notify`) through a debouncer: one save in an
//! editor is several events (swap file, rename, write, chmod), and must be
//! one run. The debouncer keeps each event's kind, so that files merely
//! opened or read — by `cargo build` itself — are not taken for changes.
//! Changes that arrive while a run builds or grades queue up and are taken
//! together when it is done: one more run — never one per event, and no
//! change lost. Files that are not the student's code (`target/`, editor
//! swap and backup files) never start a run.
//!
//! Ctrl-C is how the student stops: the interrupt guard kills whatever runs
//! (a `cargo build`, student programs) and exits 0 (`main` installs it with
//! [`crate::interrupt::Sigint::Quits`] for `--watch`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult};

use crate::exercises;
use crate::grading;
use crate::report::human::{self, Style};
use crate::request::{self, Request};
use crate::results::{Report, Status};

/// Moves the cursor home and clears the screen (terminals only).
const CLEAR: &str = "\x1b[H\x1b[2J";

/// Grade what `request` names now and after every change to its crates,
/// waiting `debounce` after the last change of a burst.
pub fn run(root: &Path, request: &Request, debounce: Duration) -> Result<bool, String> {
    let side = request.side.dir();
    // The crates to watch: those of the exercises named, else all of `side`.
    let all = exercises::all();
    let mut crates: Vec<PathBuf> = Vec::new();
    for id in &request.exercises {
        let dir = PathBuf::from(request.side.crate_dir(request::find(&all, id)?));
        if !crates.contains(&dir) {
            crates.push(dir);
        }
    }
    let watching = if crates.is_empty() {
        format!("{side}/")
    } else {
        crates.iter().map(|c| format!("{}/", c.display())).collect::<Vec<_>>().join(", ")
    };

    // The whole of `side` is watched, also when one crate is: a crate
    // created or replaced after the start is still seen.
    let (tx, rx) = mpsc::channel();
    let mut debouncer = new_debouncer(debounce, None, tx).map_err(|e| format!("--watch: {e}"))?;
    let base = root.join(side);
    debouncer
        .watch(&base, RecursiveMode::Recursive)
        .map_err(|e| format!("--watch: cannot watch {}: {e}", base.display()))?;

    let terminal = std::io::stdout().is_terminal();
    let st = Style::of(human::stdout_colour());
    let mut changed = Vec::new();
    let mut run = 0;
    loop {
        run += 1;
        let mut head = String::new();
        if terminal {
            head.push_str(CLEAR);
        }
        head.push_str(&header(run, &changed, st));
        show(&head);
        let outcome = catch_unwind(AssertUnwindSafe(|| grading::grade(root, request)))
            .unwrap_or_else(|_| Err("the grader panicked during this run (see above)".into()));
        if let (Ok(report), true) = (&outcome, request.remembered()) {
            crate::status::remember(root, report);
        }
        show(&screen(&outcome, &watching, st, crate::report::wrap::stdout_width()));
        // Ends only by Ctrl-C (which exits) or a watcher that stopped.
        changed = next_changes(&rx, root, &crates)?;
    }
}

fn show(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The files changed since the last run began: whatever queued up during
/// that run, or else the next change to come (waiting for the student has
/// no deadline: Ctrl-C ends it). Changes that do not count are dropped, so
/// a swap file alone never starts a run.
fn next_changes(rx: &Receiver<DebounceEventResult>, root: &Path, crates: &[PathBuf]) -> Result<Vec<String>, String> {
    let mut changed = BTreeSet::new();
    loop {
        let batch = if changed.is_empty() {
            rx.recv().map_err(|_| "--watch: the file watcher stopped".to_string())?
        } else {
            match rx.try_recv() {
                Ok(batch) => batch,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        };
        match batch {
            Ok(events) => {
                let written = events.iter().filter(|e| !matches!(e.kind, EventKind::Access(_)));
                for path in written.flat_map(|e| &e.paths) {
                    let Ok(rel) = path.strip_prefix(root) else { continue };
                    if counts(rel, crates) {
                        changed.insert(rel.display().to_string());
                    }
                }
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("grader: --watch: {e}");
                }
            }
        }
    }
    Ok(changed.into_iter().collect())
}

/// Whether a change of `rel` (relative to the workspace) is a change of the
/// student's code: inside one of `crates` (or any, when none is named), not
/// in a `target/` folder, and not an editor's swap, backup or lock file
/// (vim's `.x.swp` and its `4913` probe, `x~`, emacs' `.#x` and `#x#`).
fn counts(rel: &Path, crates: &[PathBuf]) -> bool {
    if !crates.is_empty() && !crates.iter().any(|c| rel.starts_with(c)) {
        return false;
    }
    if rel.components().any(|c| c == Component::Normal("target".as_ref())) {
        return false;
    }
    let Some(name) = rel.file_name().and_then(|n| n.to_str()) else { return true };
    let swap = [".swp", ".swo", ".swx"].iter().any(|s| name.ends_with(s));
    !(swap || name.ends_with('~') || name.starts_with(".#") || name == "4913" || name.starts_with('#'))
}

/// `[run 2] change in exercises/signals/src/main.rs`: which run this is and
/// why it happens.
fn header(run: u64, changed: &[String], st: &Style) -> String {
    const SHOWN: usize = 3;
    let why = match changed {
        [] => "first run".to_string(),
        [one] => format!("change in {one}"),
        many => {
            let mut s = format!("changes in {}", many[..many.len().min(SHOWN)].join(", "));
            if many.len() > SHOWN {
                let _ = write!(s, " and {} more", many.len() - SHOWN);
            }
            s
        }
    };
    format!("{}[run {run}]{} {why}\n\n", st.bold, st.reset)
}

/// The compact view of one run: a line per exercise, the progress, the
/// first thing to fix in full (a compiler message or a failing check, as
/// the report shows it), and what is watched.
fn screen(outcome: &Result<Report, String>, watching: &str, st: &Style, width: usize) -> String {
    let mut o = String::new();
    match outcome {
        Err(e) => {
            let _ = writeln!(o, "{}grader: {e}{}", st.red, st.reset);
        }
        Ok(report) => summary(&mut o, report, st, width),
    }
    let _ = writeln!(o, "\n{}watching {watching} for changes — Ctrl-C to quit{}", st.dim, st.reset);
    o
}

fn summary(o: &mut String, report: &Report, st: &Style, width: usize) {
    let complete = |e: &crate::results::ExerciseResult| {
        e.build_error.is_none() && e.checks.iter().all(|c| matches!(c.status, Status::Passed | Status::Skipped))
    };
    let w = report.exercises.iter().map(|e| e.id.len()).max().unwrap_or(0);
    for e in &report.exercises {
        let status = match () {
            _ if e.build_error.is_some() => Status::Error,
            _ if complete(e) => Status::Passed,
            _ => Status::Failed,
        };
        let _ = write!(o, "  {} {:w$}  {:>3}/{}", human::mark(status, st), e.id, e.score, e.max_score);
        if e.build_error.is_some() {
            let _ = write!(o, "  {}build failed{}", st.red, st.reset);
        }
        let _ = writeln!(o);
    }
    let done = report.exercises.iter().filter(|e| complete(e)).count();
    let _ = writeln!(
        o,
        "\n{}{done}/{} exercises complete · {}/{} points{}\n",
        st.bold,
        report.exercises.len(),
        report.score,
        report.max_score,
        st.reset
    );
    let first = report.exercises.iter().find(|e| !complete(e));
    match first {
        None => {
            let _ = writeln!(o, "{}every check passes{}", st.green, st.reset);
        }
        Some(e) if e.build_error.is_some() => {
            let _ = writeln!(o, "{}{}{}", st.bold, e.id, st.reset);
            human::build_error(o, e.build_error.as_deref().unwrap_or_default(), st, width);
        }
        Some(e) => {
            if let Some(c) = e.checks.iter().find(|c| c.detail.is_some()) {
                human::failure(o, &e.id, c, st, width);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;
    use crate::report::fixtures::report;
    use crate::results::Kind;
    use crate::results::{CheckResult, ExerciseResult};
    use std::time::Instant;

    fn check(id: &str, kind: Option<Kind>) -> CheckResult {
        let status = if kind.is_some() { Status::Failed } else { Status::Passed };
        fixtures::check(id, status, 10, kind.unwrap_or(Kind::WrongOutput), &format!("got of {id}"), &["sigecho"])
    }

    fn exercise(id: &str, checks: Vec<CheckResult>, build_error: Option<&str>) -> ExerciseResult {
        ExerciseResult { build_error: build_error.map(String::from), ..fixtures::exercise(id, &[], checks) }
    }

    #[test]
    fn only_the_students_code_counts_as_a_change() {
        let crates = [PathBuf::from("exercises/signals")];
        for (path, expected) in [
            ("exercises/signals/src/main.rs", true),
            ("exercises/signals/Cargo.toml", true),
            ("exercises/signals", true),
            ("exercises/shm/src/main.rs", false),
            ("exercises/signals/target/debug/sigecho", false),
            ("exercises/signals/src/.main.rs.swp", false),
            ("exercises/signals/src/main.rs~", false),
            ("exercises/signals/src/4913", false),
            ("exercises/signals/src/.#main.rs", false),
            ("exercises/signals/src/#main.rs#", false),
        ] {
            assert_eq!(counts(Path::new(path), &crates), expected, "{path}");
        }
        assert!(counts(Path::new("exercises/shm/src/main.rs"), &[]), "every crate counts when none is named");
        assert!(!counts(Path::new("exercises/shm/target/x"), &[]));
    }

    #[test]
    fn changes_queued_during_a_run_make_one_more_run() {
        use notify_debouncer_full::notify::event::{AccessKind, CreateKind, DataChange, ModifyKind};
        use notify_debouncer_full::notify::Event;
        use notify_debouncer_full::DebouncedEvent;

        let root = Path::new("/ws");
        let event = |kind, rel: &str| DebouncedEvent::new(Event::new(kind).add_path(root.join(rel)), Instant::now());
        let save = |rel| event(EventKind::Modify(ModifyKind::Data(DataChange::Any)), rel);
        let (tx, rx) = mpsc::channel::<DebounceEventResult>();
        let crates = [PathBuf::from("exercises/signals")];
        // Three saves while a run was busy: one more run, for all of them.
        tx.send(Ok(vec![save("exercises/signals/src/main.rs")])).unwrap();
        tx.send(Ok(vec![save("exercises/signals/src/lib.rs"), save("exercises/signals/src/main.rs")])).unwrap();
        tx.send(Ok(vec![event(EventKind::Create(CreateKind::File), "exercises/signals/Cargo.toml")])).unwrap();
        assert_eq!(
            next_changes(&rx, root, &crates).unwrap(),
            ["exercises/signals/Cargo.toml", "exercises/signals/src/lib.rs", "exercises/signals/src/main.rs"]
        );
        // Reads (cargo opening the sources), ignored files and other crates
        // are no change: the wait goes on to the next real one.
        tx.send(Ok(vec![event(EventKind::Access(AccessKind::Any), "exercises/signals/src/main.rs")])).unwrap();
        tx.send(Ok(vec![save("exercises/signals/src/.main.rs.swp"), save("exercises/shm/src/main.rs")])).unwrap();
        tx.send(Ok(vec![save("exercises/signals/README.md")])).unwrap();
        assert_eq!(next_changes(&rx, root, &crates).unwrap(), ["exercises/signals/README.md"]);
        drop(tx);
        assert!(next_changes(&rx, root, &crates).is_err(), "a watcher that stopped is an error, not a hang");
    }

    #[test]
    fn header_names_the_run_and_the_changes() {
        let st = &Style::PLAIN;
        assert_eq!(header(1, &[], st), "[run 1] first run\n\n");
        assert_eq!(header(2, &["a.rs".into()], st), "[run 2] change in a.rs\n\n");
        let many: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        assert_eq!(header(3, &many, st), "[run 3] changes in a, b, c and 2 more\n\n");
    }

    #[test]
    fn screen_shows_progress_and_the_first_failure_in_full() {
        let r = report(vec![
            exercise("framing", vec![check("encode", None)], None),
            exercise(
                "signals",
                vec![check("ready", None), check("echo", Some(Kind::WrongOutput)), check("eof", Some(Kind::TimedOut))],
                None,
            ),
        ]);
        let text = screen(&Ok(r), "exercises/", &Style::PLAIN, 80);
        assert!(text.contains("  ✓ framing   10/10"), "{text}");
        assert!(text.contains("  ✗ signals   10/30"), "{text}");
        assert!(text.contains("\n1/2 exercises complete · 20/40 points\n"), "{text}");
        assert!(text.contains("signals/echo — echo works (wrong output)"), "{text}");
        assert!(text.contains("  rerun:     cargo grade x --check echo"), "{text}");
        assert!(!text.contains("got of eof"), "only the first failure: {text}");
        assert!(text.ends_with("\nwatching exercises/ for changes — Ctrl-C to quit\n"), "{text}");
        assert!(!text.contains('\x1b'), "plain style, no escape codes: {text}");
    }

    #[test]
    fn screen_shows_the_compiler_message_and_run_faults() {
        let r = report(vec![exercise(
            "signals",
            vec![check("ready", Some(Kind::BuildError))],
            Some("error[E0308]: mismatched types\n --> src/main.rs:3:5"),
        )]);
        let text = screen(&Ok(r), "exercises/signals/", &Style::PLAIN, 80);
        assert!(text.contains("  ! signals    0/10  build failed"), "{text}");
        assert!(text.contains("    error[E0308]: mismatched types\n     --> src/main.rs:3:5\n"), "{text}");

        let text = screen(&Err("cannot run cargo: No such file".into()), "exercises/", &Style::PLAIN, 80);
        assert!(text.starts_with("grader: cannot run cargo: No such file\n"), "{text}");

        let done = report(vec![exercise("signals", vec![check("ready", None)], None)]);
        let text = screen(&Ok(done), "exercises/", &Style::COLOR, 80);
        assert!(text.contains("every check passes"), "{text}");
        assert!(text.contains('\x1b'), "colour when asked for: {text}");
    }
}
