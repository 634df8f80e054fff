//! `--format human`: a table per exercise, then every failure in full (what
//! the grader did, what came back, what was expected, what that means and
//! the one hint for it — or the check's general hint —, how to rerun), then
//! the total and the wall time.
//!
//! Everything a program or the compiler said is [`text::escape`]d once
//! more here, whatever the runner did: this is what reaches the terminal.
//! And every line is wrapped to the terminal's width ([`wrap`]), continued
//! under the text it continues.

use std::fmt::Write;
use std::io::IsTerminal;

use super::wrap::{visible, wrap, wrap_command};
use crate::results::{CheckResult, Location, Report, Status};
use crate::text;

/// Where the text after a failure's labels starts: `  diagnosis: `.
const LABEL_COLUMN: usize = 13;

/// Columns before a table row's title below which the title goes on a line
/// of its own: it would get less room than this.
const TITLE_ROOM: usize = 24;

/// Terminal styling; empty strings when colour is off.
pub struct Style {
    pub bold: &'static str,
    pub red: &'static str,
    pub green: &'static str,
    pub yellow: &'static str,
    pub dim: &'static str,
    pub reset: &'static str,
}

impl Style {
    pub const PLAIN: Style = Style { bold: "", red: "", green: "", yellow: "", dim: "", reset: "" };
    pub const COLOR: Style = Style {
        bold: "\x1b[1m",
        red: "\x1b[31m",
        green: "\x1b[32m",
        yellow: "\x1b[33m",
        dim: "\x1b[2m",
        reset: "\x1b[0m",
    };

    /// [`Self::COLOR`] or [`Self::PLAIN`].
    pub fn of(colour: bool) -> &'static Style {
        if colour {
            &Style::COLOR
        } else {
            &Style::PLAIN
        }
    }
}

/// Colour for text on stdout: only on a terminal, and never with
/// `NO_COLOR` set (<https://no-color.org>).
pub fn stdout_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// ✓ passed, ✗ failed, ! grader or build error, - skipped.
pub fn mark(status: Status, st: &Style) -> String {
    match status {
        Status::Passed => format!("{}✓{}", st.green, st.reset),
        Status::Failed => format!("{}✗{}", st.red, st.reset),
        Status::Error => format!("{}!{}", st.red, st.reset),
        Status::Skipped => format!("{}-{}", st.yellow, st.reset),
    }
}

/// The report, its lines wrapped to `width` columns.
pub fn render(report: &Report, st: &Style, width: usize) -> String {
    let mut o = String::new();
    for ex in &report.exercises {
        let head = format!("{}{} — ", st.bold, ex.id);
        let title = format!("{}{}  {}/{}", ex.title, st.reset, ex.score, ex.max_score);
        let _ = writeln!(o, "{}", wrap(&head, &title, width, visible(&head)));
        if let Some(err) = &ex.build_error {
            build_error(&mut o, err, st, width);
        }
        let w = ex.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for c in &ex.checks {
            // The kind moves to the next line whole (no-break spaces).
            let kind = c.detail.as_ref().map(|d| d.kind.label().replace(' ', "\u{a0}"));
            let kind = kind.map(|k| format!("  {}{k}{}", st.red, st.reset)).unwrap_or_default();
            let row = format!(
                "  {} {:w$}  {:>3}/{:<3} {}{:>5.2}s{}  ",
                mark(c.status, st),
                c.id,
                c.points,
                c.max_points,
                st.dim,
                c.duration_ms as f64 / 1000.0,
                st.reset,
            );
            let title = format!("{}{kind}", c.title);
            let at = visible(&row);
            if at + TITLE_ROOM <= width {
                let _ = writeln!(o, "{}", wrap(&row, &title, width, at));
            } else {
                let _ = writeln!(o, "{}\n{}", row.trim_end(), wrap("      ", &title, width, 6));
            }
        }
        // Why checks were skipped (a machine without IPv6 or dbus-daemon):
        // each reason once, under the exercise.
        let mut skipped: Vec<&str> = Vec::new();
        for c in ex.checks.iter().filter(|c| c.status == Status::Skipped) {
            if !skipped.contains(&c.message.as_str()) {
                skipped.push(&c.message);
            }
        }
        for why in skipped {
            let text = format!("{}{}{}", st.yellow, text::escape(why), st.reset);
            let _ = writeln!(o, "{}", wrap("  ", &text, width, 4));
        }
        let _ = writeln!(o);
    }
    let failures: Vec<(&str, &CheckResult)> = report
        .exercises
        .iter()
        .filter(|e| e.build_error.is_none())
        .flat_map(|e| e.checks.iter().map(move |c| (e.id.as_str(), c)))
        .filter(|(_, c)| c.detail.is_some())
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(o, "{}Failures{}", st.bold, st.reset);
        // Checks that only reached a `todo!()` say nothing more than where
        // it is: one block per place, not one per check. The block shows
        // the first check's message, which names the place.
        let mut todo: Vec<(&str, &Location, &str, Vec<&str>)> = Vec::new();
        for (ex, c) in &failures {
            let d = c.detail.as_ref().expect("filtered");
            let Some(place) = d.todo() else { continue };
            match todo.iter_mut().find(|(e, at, _, _)| e == ex && *at == place) {
                Some((_, _, _, ids)) => ids.push(&c.id),
                None => todo.push((ex, place, &d.got, vec![&c.id])),
            }
        }
        for (ex, _, got, ids) in &todo {
            let head = format!("{}{ex}{} — {}not implemented yet{}: ", st.bold, st.reset, st.yellow, st.reset);
            let waiting = "  checks waiting for it: ";
            let _ = writeln!(o, "\n{}", wrap(&head, &text::escape(got), width, 2));
            let _ = writeln!(o, "{}", wrap(waiting, &ids.join(", "), width, waiting.len()));
        }
        for (ex, c) in failures {
            if c.detail.as_ref().is_some_and(|d| d.todo().is_some()) {
                continue;
            }
            let _ = writeln!(o);
            failure(&mut o, ex, c, st, width);
        }
        let _ = writeln!(o);
    }
    let colour = if report.failed == 0 { st.green } else { st.red };
    let _ = writeln!(o, "{}", wrap("Isolation: ", &report.isolation.phrase(), width, 2));
    let total = format!(
        "{} passed, {} failed in {:.2}s{}",
        report.passed,
        report.failed,
        report.wall_ms as f64 / 1000.0,
        if report.time_scale != 1.0 { format!(" (time scale {})", report.time_scale) } else { String::new() },
    );
    let head = format!("{}{}Total {}/{}{} — ", st.bold, colour, report.score, report.max_score, st.reset);
    let _ = writeln!(o, "{}", wrap(&head, &total, width, 2));
    o
}

/// The compiler's message for a crate that did not build (its first 60
/// lines: the first error is the one to fix), each line wrapped on its own
/// so the compiler's layout stays where it fits.
pub fn build_error(o: &mut String, err: &str, st: &Style, width: usize) {
    let _ = writeln!(o, "{}  build failed:{}", st.red, st.reset);
    for line in text::escape(err).lines().take(60) {
        let _ = writeln!(o, "{}", wrap("    ", line, width, 6));
    }
}

/// One failing check in full: what the grader did, what came back, what was
/// expected, what that means and the hint for it (or the check's general
/// hint), and how to rerun just this check; wrapped to `width`. Shared by
/// the report and `--watch`, so a student reads a failure the same way in
/// both.
pub fn failure(o: &mut String, exercise: &str, c: &CheckResult, st: &Style, width: usize) {
    let Some(d) = &c.detail else { return };
    let head = format!("{}{}/{}{} — ", st.bold, exercise, c.id, st.reset);
    let title = format!("{} {}({}){}", c.title, st.red, d.kind.label(), st.reset);
    let _ = writeln!(o, "{}", wrap(&head, &title, width, 2));
    let field = |o: &mut String, label: &str, colour: &str, text: &str| {
        let off = if colour.is_empty() { "" } else { st.reset };
        let prefix = format!("  {colour}{label}:{off} {:pad$}", "", pad = LABEL_COLUMN.saturating_sub(label.len() + 4));
        let _ = writeln!(o, "{}", wrap(&prefix, &text::escape(text), width, LABEL_COLUMN));
    };
    let did: Vec<_> = d.did.iter().map(|step| text::escape(step)).collect();
    field(o, "did", "", &did.join("\n"));
    field(o, "got", "", &d.got);
    field(o, "expected", "", &d.expected);
    for (label, text) in d.advice() {
        let colour = if label == "diagnosis" { st.bold } else { st.yellow };
        field(o, label, colour, text);
    }
    let rerun = format!("  rerun:{:pad$}", "", pad = LABEL_COLUMN - 8);
    let _ = writeln!(o, "{}", wrap_command(&rerun, &text::escape(&c.rerun), width, LABEL_COLUMN));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{self, at, check, exercise};
    use crate::results::{Diagnosis, Kind};

    #[test]
    fn the_reason_for_skipped_checks_is_shown_once() {
        let skip = |id| CheckResult::skipped(id, "t", "no dbus-daemon here", String::new());
        let text =
            render(&fixtures::report(vec![exercise("bus", &[], vec![skip("a"), skip("b")])]), &Style::PLAIN, 200);
        assert_eq!(text.matches("skipped: no dbus-daemon here").count(), 1, "{text}");
    }

    #[test]
    fn checks_waiting_for_one_todo_are_one_block_by_place() {
        let todo = |id, got| check(id, Status::Failed, 5, Kind::NotImplemented, got, &["tcp-server"]);
        let main = "exercises/sockets/src/bin/tcp-server.rs";
        let checks = vec![
            at(todo("a", "tcp-server reached a `todo!()` at here"), main, 10, 5),
            at(todo("b", "tcp-server reached a `todo!()` at elsewhere"), main, 20, 5),
            // The same place, whatever the message says.
            at(todo("c", "tcp-client reached a `todo!()` at here too"), main, 10, 5),
            check("d", Status::Failed, 5, Kind::WrongOutput, "the line `x`", &["tcp-server"]),
        ];
        let text = render(&fixtures::report(vec![exercise("sockets", &[], checks)]), &Style::PLAIN, 200);
        assert!(
            text.contains(
                "\nsockets — not implemented yet: tcp-server reached a `todo!()` at here\n  checks waiting for it: a, c\n"
            ),
            "{text}"
        );
        assert!(text.contains("at elsewhere\n  checks waiting for it: b\n"), "{text}");
        assert!(text.contains("\nsockets/d — d works (wrong output)\n"), "{text}");
        assert!(!text.contains("sockets/a —") && !text.contains("here too"), "{text}");
    }

    #[test]
    fn program_text_reaches_the_terminal_escaped() {
        let forged = "\x1b[2J\x1b[HTotal 600/600\r\n::error::forged\n  ##[error]old";
        let mut report = fixtures::sample();
        let c = &mut report.exercises[1].checks[1];
        let d = c.detail.as_mut().unwrap();
        d.got = forged.into();
        d.did.push(forged.into());
        d.diagnosis = Some(Diagnosis::new(forged, forged));
        report.exercises[2].build_error = Some(format!("error: {forged}"));
        let out = render(&report, &Style::PLAIN, 80);
        assert!(!out.contains('\x1b') && !out.contains('\r'), "{out}");
        for line in out.lines() {
            let start = line.trim_start();
            assert!(!start.starts_with("::") && !start.starts_with("##["), "{line:?} in\n{out}");
        }
        assert!(
            out.contains("  got:       \\x1b[2J\\x1b[HTotal 600/600\\r\n             \\x3a:error::forged\n"),
            "{out}"
        );
    }

    #[test]
    fn a_diagnosis_comes_with_its_hint_and_the_general_hint_only_without_one() {
        let mut report = fixtures::sample();
        let text = render(&report, &Style::PLAIN, 80);
        assert!(text.contains("\n  hint (general): read the slides\n"), "{text}");
        assert!(!text.contains("diagnosis:"), "{text}");
        let d = report.exercises[1].checks[1].detail.as_mut().unwrap();
        d.diagnosis = Some(Diagnosis::new("the server closed first", "half-close, then read to EOF"));
        d.hint = None;
        let text = render(&report, &Style::PLAIN, 80);
        assert!(
            text.contains("\n  diagnosis: the server closed first\n  hint:      half-close, then read to EOF\n"),
            "{text}"
        );
        assert_eq!(text.matches("hint (general)").count(), 1, "{text}");
    }

    #[test]
    fn every_line_fits_the_width() {
        let mut report = fixtures::sample();
        let d = report.exercises[1].checks[1].detail.as_mut().unwrap();
        d.got = format!("the line {}", crate::harness::show(&[0u8; 300]));
        d.did.push("a step with many words ".repeat(10));
        for width in [40, 60, 80, 100] {
            let text = render(&report, &Style::COLOR, width);
            for line in text.lines() {
                assert!(super::visible(line) <= width, "{} > {width}: {line:?}", super::visible(line));
            }
        }
    }
}
