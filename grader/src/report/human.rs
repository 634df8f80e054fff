//! `--format human`: a table per exercise, then every failure in full (what
//! the grader did, what came back, what was expected, hints, how to rerun),
//! then the total and the wall time.

use std::fmt::Write;
use std::io::IsTerminal;

use crate::results::{CheckResult, Location, Report, Status};

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

pub fn render(report: &Report, st: &Style) -> String {
    let mut o = String::new();
    for ex in &report.exercises {
        let _ = writeln!(o, "{}{} — {}{}  {}/{}", st.bold, ex.id, ex.title, st.reset, ex.score, ex.max_score);
        if let Some(err) = &ex.build_error {
            build_error(&mut o, err, st);
        }
        let w = ex.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for c in &ex.checks {
            let kind =
                c.detail.as_ref().map(|d| format!("  {}{}{}", st.red, d.kind.label(), st.reset)).unwrap_or_default();
            let _ = writeln!(
                o,
                "  {} {:w$}  {:>3}/{:<3} {}{:>5.2}s{}  {}{}",
                mark(c.status, st),
                c.id,
                c.points,
                c.max_points,
                st.dim,
                c.duration_ms as f64 / 1000.0,
                st.reset,
                c.title,
                kind,
            );
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
            let _ = writeln!(
                o,
                "\n{}{ex}{} — {}not implemented yet{}: {got}\n  checks waiting for it: {}",
                st.bold,
                st.reset,
                st.yellow,
                st.reset,
                ids.join(", ")
            );
        }
        for (ex, c) in failures {
            if c.detail.as_ref().is_some_and(|d| d.todo().is_some()) {
                continue;
            }
            let _ = writeln!(o);
            failure(&mut o, ex, c, st);
        }
        let _ = writeln!(o);
    }
    let colour = if report.failed == 0 { st.green } else { st.red };
    let _ = writeln!(
        o,
        "{}{}Total {}/{}{} — {} passed, {} failed in {:.2}s{}; {}",
        st.bold,
        colour,
        report.score,
        report.max_score,
        st.reset,
        report.passed,
        report.failed,
        report.wall_ms as f64 / 1000.0,
        if report.time_scale != 1.0 { format!(" (time scale {})", report.time_scale) } else { String::new() },
        report.isolation.phrase(),
    );
    o
}

/// The compiler's message for a crate that did not build (its first 60
/// lines: the first error is the one to fix).
pub fn build_error(o: &mut String, err: &str, st: &Style) {
    let _ = writeln!(o, "{}  build failed:{}", st.red, st.reset);
    for line in err.lines().take(60) {
        let _ = writeln!(o, "    {line}");
    }
}

/// One failing check in full: what the grader did, what came back, what was
/// expected, the hints and how to rerun just this check. Shared by the
/// report and `--watch`, so a student reads a failure the same way in both.
pub fn failure(o: &mut String, exercise: &str, c: &CheckResult, st: &Style) {
    let Some(d) = &c.detail else { return };
    let _ = writeln!(
        o,
        "{}{}/{}{} — {} {}({}){}",
        st.bold,
        exercise,
        c.id,
        st.reset,
        c.title,
        st.red,
        d.kind.label(),
        st.reset
    );
    let _ = writeln!(o, "  did:      {}", d.did.join("\n            "));
    let _ = writeln!(o, "  got:      {}", d.got);
    let _ = writeln!(o, "  expected: {}", d.expected);
    for h in &d.hints {
        let _ = writeln!(o, "  {}hint:{}     {}", st.yellow, st.reset, h);
    }
    let _ = writeln!(o, "  rerun:    {}", c.rerun);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{self, at, check, exercise};
    use crate::results::Kind;

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
        let text = render(&fixtures::report(vec![exercise("sockets", &[], checks)]), &Style::PLAIN);
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
}
