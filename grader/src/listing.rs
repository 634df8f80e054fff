//! What `--list` prints: the registry of exercises and checks as text, with
//! the last run's status where one was remembered. (`--hint` is
//! [`crate::hints`].)

use crate::check::Exercise;
use crate::report::human::{self, Style};
use crate::results::Status;
use crate::status::{self, LastRun};

/// Every exercise and check with its points and, where a run remembered
/// it, the check's last status: marks (✓ ✗ ! -) on a terminal, words where
/// the output is read by `grep` or a log (`failed`, `not graded`).
pub fn list(all: &[Exercise], last: Option<&LastRun>, terminal: bool, st: &Style, now: u64) -> String {
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

/// The status as a word, for output that is read by `grep` or a log.
fn word(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Error => "error",
        Status::Skipped => "skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;
    use crate::results::Kind;

    #[test]
    fn list_marks_on_a_terminal_and_words_elsewhere() {
        let all = crate::exercises::all();
        let signals = crate::request::find(&all, "signals").unwrap();
        let (first, second) = (signals.checks[0].id, signals.checks[1].id);
        let points = signals.checks[0].points;
        let failed = fixtures::check(first, Status::Failed, points, Kind::WrongOutput, "x", &[]);
        let mut last = LastRun::default();
        last.merge(&fixtures::report(vec![fixtures::exercise("signals", &[], vec![failed])]), 100);

        let words = list(&all, Some(&last), false, &Style::PLAIN, 100);
        let find = |text: &str, prefix: &str| text.lines().any(|l| l.starts_with(prefix));
        assert!(find(&words, &format!("  failed     {first} ")), "{words}");
        assert!(find(&words, &format!("  not graded {second} ")), "{words}");
        let graded = format!("(1 of {} checks graded), last graded just now", signals.checks.len());
        assert!(words.contains(&graded), "{words}");
        assert!(find(&words, "shm ") && words.contains("— not graded yet\n"), "{words}");

        let marks = list(&all, Some(&last), true, &Style::PLAIN, 100);
        assert!(find(&marks, &format!("  ✗ {first} ")), "{marks}");
        assert!(find(&marks, &format!("  · {second} ")), "{marks}");
    }
}
