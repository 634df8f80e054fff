//! `--github`: the job summary and `::error` annotations for GitHub Actions.
//!
//! The flag, not the environment, turns this on: a student running the
//! grader inside some other CI must not get workflow commands on stdout.
//! Two outputs:
//!
//! - A Markdown points table (one row per check), then the failures in
//!   `<details>` blocks, appended to the file named by
//!   `$GITHUB_STEP_SUMMARY`. GitHub rejects a step summary over 1 MiB, so
//!   [`summary`] keeps within [`SUMMARY_BUDGET`]: it cuts long messages
//!   first, then drops details, and says so.
//! - At most [`MAX_ANNOTATIONS`] `::error` lines on stdout, each pointing at
//!   the student's source file (see [`location`]); GitHub shows only the
//!   first few per step anyway, and more would drown the log. A `::notice`
//!   counts the rest.
//!
//! Whatever else the grader prints in this mode quotes the programs, so it
//! goes out [`verbatim`]: between `::stop-commands::TOKEN` and `::TOKEN::`,
//! where GitHub runs no command. Only the annotations are commands. Program
//! text in them is [`text::escape`]d and then encoded ([`escape_data`]), so
//! it stays inside one line's message.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};

use crate::results::{CheckResult, ExerciseResult, Location, Report, Status};
use crate::text;

/// Bytes of Markdown appended per run: GitHub's limit per step is 1 MiB;
/// the margin leaves room for what other steps' tools append.
pub const SUMMARY_BUDGET: usize = 900 * 1024;

/// `::error` lines printed at most; the other failures are in the summary.
pub const MAX_ANNOTATIONS: usize = 10;

/// A message in a `<details>` block is never cut below this many bytes;
/// when even that does not fit, the last blocks are left out instead.
const MIN_MESSAGE: usize = 1024;

/// Room kept for the notes that say what was shortened.
const NOTE_RESERVE: usize = 1024;

/// An annotation's message is cut after this many bytes: the summary and
/// the report have it whole.
const ANNOTATION_MESSAGE: usize = 4096;

/// Append the summary to `$GITHUB_STEP_SUMMARY` (or warn once that it is
/// not set) and print the annotations.
pub fn emit(report: &Report) -> Result<(), String> {
    let mut in_summary = false;
    let mut fault = None;
    match std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
        None => {
            eprintln!("grader: warning: --github: GITHUB_STEP_SUMMARY is not set; no job summary, only annotations")
        }
        Some(path) => match append(std::path::Path::new(&path), &summary(report, SUMMARY_BUDGET)) {
            Ok(()) => in_summary = true,
            Err(e) => fault = Some(format!("--github: cannot write the job summary {}: {e}", path.to_string_lossy())),
        },
    }
    let mut out = std::io::stdout().lock();
    for line in annotations(report, in_summary) {
        writeln!(out, "{line}").map_err(|e| format!("--github: cannot print annotations: {e}"))?;
    }
    out.flush().map_err(|e| format!("--github: cannot print annotations: {e}"))?;
    fault.map_or(Ok(()), Err)
}

fn append(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())
}

/// `text` as GitHub must print it and run none of it: between
/// `::stop-commands::TOKEN` and `::TOKEN::`. The token is random and new
/// for every block, so text inside cannot end the block early.
pub fn verbatim(text: &str) -> Result<String, String> {
    let token = token().map_err(|e| format!("--github: cannot read /dev/urandom for a stop-commands token: {e}"))?;
    let newline = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
    Ok(format!("::stop-commands::{token}\n{text}{newline}::{token}::\n"))
}

/// 128 random bits in hex.
fn token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

// ----- annotations -----------------------------------------------------------

/// The workflow commands for the failing checks (failed or error), in
/// report order: at most [`MAX_ANNOTATIONS`] `::error` lines, then one
/// `::notice` if more failed. `in_summary`: the job summary lists them all.
///
/// Checks that only reached a `todo!()` share one annotation per place (as
/// in the human report): the student's next step is that `todo!()`, not
/// ten copies of it.
pub fn annotations(report: &Report, in_summary: bool) -> Vec<String> {
    let mut items: Vec<Item> = Vec::new();
    for ex in &report.exercises {
        for c in ex.checks.iter().filter(|c| matches!(c.status, Status::Failed | Status::Error)) {
            let todo = c.detail.as_ref().and_then(|d| d.todo());
            let same_place = items.iter_mut().find(|it| todo.is_some() && std::ptr::eq(it.ex, ex) && it.todo == todo);
            match same_place {
                Some(it) => it.checks.push(c),
                None => items.push(Item { ex, todo, checks: vec![c] }),
            }
        }
    }
    let mut lines: Vec<String> = items.iter().take(MAX_ANNOTATIONS).map(Item::annotation).collect();
    let more: usize = items.iter().skip(MAX_ANNOTATIONS).map(|it| it.checks.len()).sum();
    if more > 0 {
        let where_ = if in_summary { "the job summary lists them all" } else { "the grading report lists them all" };
        let note = format!("{more} more failing checks are not annotated; {where_}");
        lines.push(format!("::notice title={}::{}", escape_property("ipc-lab"), escape_data(&note)));
    }
    lines
}

/// One annotation: a failing check, or every check waiting for one
/// `todo!()`.
struct Item<'a> {
    ex: &'a ExerciseResult,
    /// Where the `todo!()` is that the checks reached.
    todo: Option<&'a Location>,
    checks: Vec<&'a CheckResult>,
}

impl Item<'_> {
    fn annotation(&self) -> String {
        let [c] = self.checks[..] else {
            let points: u32 = self.checks.iter().map(|c| c.max_points).sum();
            let ids: Vec<&str> = self.checks.iter().map(|c| c.id.as_str()).collect();
            let mut props = Vec::new();
            if let Some((file, line)) = location(self.ex, self.checks[0]) {
                props.push(format!("file={}", escape_property(&text::escape(&file))));
                props.push(format!("line={line}"));
            }
            let title = format!("{}: not implemented yet ({} checks, {points} points)", self.ex.id, ids.len());
            props.push(format!("title={}", escape_property(&title)));
            // The first check's message names the place.
            let got = self.checks[0].detail.as_ref().map(|d| d.got.as_str()).unwrap_or_default();
            let message = format!(
                "{got}\nchecks waiting for it: {}\nhint: fill in that `todo!()`; these checks cannot pass before it",
                ids.join(", ")
            );
            return format!(
                "::error {}::{}",
                props.join(","),
                escape_data(&cut(&text::escape(&message), ANNOTATION_MESSAGE))
            );
        };
        annotation(self.ex, c)
    }
}

/// `::error file=…,line=…,title=signals/echo (10 points)::message`.
fn annotation(ex: &ExerciseResult, c: &CheckResult) -> String {
    let mut props = Vec::new();
    if let Some((file, line)) = location(ex, c) {
        props.push(format!("file={}", escape_property(&text::escape(&file))));
        props.push(format!("line={line}"));
    }
    props.push(format!("title={}", escape_property(&format!("{}/{} ({} points)", ex.id, c.id, c.max_points))));
    format!("::error {}::{}", props.join(","), escape_data(&cut(&text::escape(&c.message), ANNOTATION_MESSAGE)))
}

/// The file and line an annotation points at, relative to the repository;
/// `None` when the exercise was not built from a crate folder (every
/// binary came from `--bin`) or the check ran only binaries given that way.
///
/// First the place in the student's code where the failure happened (a
/// `todo!()`, a panic, the compiler's first error); else the source file of
/// the first binary the check started, at line 1; a check that started none
/// (a build error) points at the crate's first binary.
pub fn location(ex: &ExerciseResult, c: &CheckResult) -> Option<(String, u32)> {
    let source = ex.source.as_deref()?;
    if let Some(at) = c.detail.as_ref().and_then(|d| d.location.as_ref()) {
        if let Some(file) = in_crate(&at.file, source) {
            return Some((file, at.line));
        }
    }
    let file = if c.programs.is_empty() {
        ex.bin_sources.values().next()
    } else {
        c.programs.iter().find_map(|p| ex.bin_sources.get(p))
    };
    file.map(|f| (f.clone(), 1))
}

/// `file` relative to the repository, if it lies in the crate folder
/// `source`. Panic and compiler locations are relative to the workspace
/// Cargo built in, or absolute (a staged submission, a remapped prefix):
/// either way the path is taken from `source`'s folders on, so it names
/// the file in the repository. Files of std or a dependency are not the
/// student's code: `None`.
fn in_crate(file: &str, source: &str) -> Option<String> {
    let want: Vec<&str> = source.split('/').filter(|s| !s.is_empty()).collect();
    if !file.ends_with(".rs") {
        return None;
    }
    let comps: Vec<&str> = file.split('/').collect();
    let at = (0..comps.len()).find(|&i| comps[i..].starts_with(&want) && comps.len() > i + want.len())?;
    Some(comps[at..].join("/"))
}

/// Escape the message of a workflow command (the part after `::`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escape a property value of a workflow command (`file=`, `title=`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

// ----- summary ---------------------------------------------------------------

/// A failure in detail: a `<details>` block with the message fenced.
struct Block {
    summary: String,
    body: String,
    /// A fence longer than any run of backticks in the message.
    fence: String,
}

impl Block {
    fn new(summary: String, body: &str) -> Block {
        let body = text::escape(body).into_owned();
        let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
        Block { summary, body, fence }
    }

    fn render(&self, cap: usize) -> String {
        let fence = &self.fence;
        let body = cut(&self.body, cap);
        format!("<details><summary>{}</summary>\n\n{fence}text\n{body}\n{fence}\n\n</details>\n\n", self.summary)
    }

    /// `render(cap).len()`, without rendering (the budget search asks often).
    fn size(&self, cap: usize) -> usize {
        let frame = "<details><summary></summary>\n\ntext\n\n\n\n</details>\n\n".len();
        frame + self.summary.len() + 2 * self.fence.len() + cut_len(&self.body, cap)
    }
}

/// The job summary in Markdown, at most `budget` bytes (for any budget of
/// a few KiB and more): heading with the total, one table row per check,
/// then the failures in detail. When it would not fit, messages are cut
/// (all to the same length, as long as fits, not below `MIN_MESSAGE`),
/// then the last details are left out, then table rows; a note says what
/// is missing and where the full report is.
pub fn summary(report: &Report, budget: usize) -> String {
    let skipped = report.exercises.iter().flat_map(|e| &e.checks).filter(|c| c.status == Status::Skipped).count();
    let mut heading = format!(
        "## ipc-lab grade: {}/{} points\n\n{} passed, {} failed{} in {:.2}s.\n\n",
        report.score,
        report.max_score,
        report.passed,
        report.failed,
        if skipped > 0 { format!(", {skipped} skipped") } else { String::new() },
        report.wall_ms as f64 / 1000.0
    );
    let table_head = "| Exercise | Check | Points | Status | What is checked |\n| --- | --- | ---: | :---: | --- |\n";
    let rows: Vec<String> = report
        .exercises
        .iter()
        .flat_map(|e| e.checks.iter().map(move |c| (e, c)))
        .map(|(e, c)| {
            format!(
                "| {} | {} | {}/{} | {} | {} |\n",
                cell(&e.id),
                cell(&c.id),
                c.points,
                c.max_points,
                emoji(c.status),
                cell(&c.title)
            )
        })
        .collect();
    let blocks = blocks(report);
    let details_head = "\n### Failures\n\n";

    let fixed = heading.len() + table_head.len() + details_head.len() + NOTE_RESERVE;
    let mut avail = budget.saturating_sub(fixed);
    let shown_rows = fitting(rows.iter().map(String::len), avail);
    avail -= rows[..shown_rows].iter().map(String::len).sum::<usize>();

    let size = |cap: usize| blocks.iter().map(|b| b.size(cap)).sum::<usize>();
    let (cap, kept) = if size(usize::MAX) <= avail {
        (usize::MAX, blocks.len())
    } else if size(MIN_MESSAGE) <= avail {
        // The largest cap that fits; `hi` (the longest message) does not.
        let (mut lo, mut hi) = (MIN_MESSAGE, blocks.iter().map(|b| b.body.len()).max().unwrap_or(0));
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if size(mid) <= avail {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (lo, blocks.len())
    } else {
        (MIN_MESSAGE, fitting(blocks.iter().map(|b| b.size(MIN_MESSAGE)), avail))
    };
    let cut_count = blocks[..kept].iter().filter(|b| b.body.len() > cap).count();
    let dropped = blocks.len() - kept;
    let hidden_rows = rows.len() - shown_rows;

    if cut_count + dropped + hidden_rows > 0 {
        let mut what = Vec::new();
        if cut_count > 0 {
            what.push(format!("{cut_count} failure messages were cut"));
        }
        if dropped > 0 {
            what.push(format!("{dropped} failures are not shown in detail"));
        }
        if hidden_rows > 0 {
            what.push(format!("{hidden_rows} checks are missing from the table"));
        }
        let _ = write!(
            heading,
            "> [!NOTE]\n> This summary was shortened to stay under GitHub's 1 MiB limit: {}. \
             The full report is in the uploaded artifact (the `--report` files).\n\n",
            what.join(", ")
        );
    }
    let mut md = heading;
    md.push_str(table_head);
    for row in &rows[..shown_rows] {
        md.push_str(row);
    }
    if hidden_rows > 0 {
        let _ = writeln!(md, "\n_… and {hidden_rows} more checks, in the full report._");
    }
    if !blocks.is_empty() {
        md.push_str(details_head);
        for b in &blocks[..kept] {
            md.push_str(&b.render(cap));
        }
        if dropped > 0 {
            let _ = writeln!(md, "_… and {dropped} more failures, in the full report._\n");
        }
    }
    md
}

/// How many of the leading `sizes` fit into `avail` together.
fn fitting(sizes: impl Iterator<Item = usize>, avail: usize) -> usize {
    let mut used = 0;
    sizes
        .take_while(|s| {
            used += s;
            used <= avail
        })
        .count()
}

/// One block per failing check, and one per exercise that did not compile
/// (its checks all fail alike, so they get no block of their own).
fn blocks(report: &Report) -> Vec<Block> {
    let mut out = Vec::new();
    for ex in &report.exercises {
        if let Some(err) = &ex.build_error {
            out.push(Block::new(
                format!("⚠️ <b>{}</b> did not compile: none of its checks could run", html(&ex.id)),
                err.trim_end(),
            ));
            continue;
        }
        for c in ex.checks.iter().filter(|c| matches!(c.status, Status::Failed | Status::Error)) {
            let kind = c.detail.as_ref().map(|d| format!(" ({})", d.kind.label())).unwrap_or_default();
            let summary = format!(
                "{} <b>{}/{}</b> {}/{}: {}{}",
                emoji(c.status),
                html(&ex.id),
                html(&c.id),
                c.points,
                c.max_points,
                html(&c.title),
                html(&kind)
            );
            out.push(Block::new(summary, &c.message));
        }
    }
    out
}

fn emoji(status: Status) -> &'static str {
    match status {
        Status::Passed => "✅",
        Status::Failed => "❌",
        Status::Error => "⚠️",
        Status::Skipped => "⏭️",
    }
}

/// A table cell: `|` escaped, line breaks as `<br>`.
fn cell(s: &str) -> String {
    text::escape(s).replace('|', "\\|").replace("\r\n", "<br>").replace(['\n', '\r'], "<br>")
}

/// Text inside HTML (`<summary>`).
fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|ch| ch != '`').map(str::len).max().unwrap_or(0)
}

/// `s` cut to at most `cap` bytes (at a character boundary), saying so.
fn cut(s: &str, cap: usize) -> String {
    match cut_at(s, cap) {
        None => s.to_string(),
        Some((end, note)) => format!("{}{note}", &s[..end]),
    }
}

/// `cut(s, cap).len()`.
fn cut_len(s: &str, cap: usize) -> usize {
    cut_at(s, cap).map_or(s.len(), |(end, note)| end + note.len())
}

/// Where `cut` ends `s`, and the note it adds; `None` when `s` fits.
fn cut_at(s: &str, cap: usize) -> Option<(usize, String)> {
    if s.len() <= cap {
        return None;
    }
    // Sized with the most digits the count can have, filled in after.
    let note = |rest: usize| format!("\n… cut here, {rest} more bytes: the full report has the whole message");
    let mut end = cap.saturating_sub(note(s.len()).len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some((end, note(s.len() - end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{self, check, exercise};
    use crate::results::Kind;

    #[test]
    fn escaping_follows_the_workflow_command_rules() {
        assert_eq!(escape_data("50% done\r\nnext: a,b"), "50%25 done%0D%0Anext: a,b");
        assert_eq!(escape_property("50% done\r\nnext: a,b"), "50%25 done%0D%0Anext%3A a%2Cb");
        // `%` first: an escape already in the text is not taken for one.
        assert_eq!(escape_data("%0A"), "%250A");
        assert_eq!(escape_property("signals/echo (10 points)"), "signals/echo (10 points)");
    }

    #[test]
    fn verbatim_text_is_fenced_by_a_fresh_random_token() {
        let a = verbatim("::error::forged\nline").unwrap();
        let lines: Vec<&str> = a.lines().collect();
        let token = lines[0].strip_prefix("::stop-commands::").expect("starts the block");
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(lines[1..], ["::error::forged", "line", &format!("::{token}::")]);
        let b = verbatim("x\n").unwrap();
        let other = b.lines().next().and_then(|l| l.strip_prefix("::stop-commands::")).unwrap();
        assert_ne!(token, other);
        assert_eq!(b, format!("::stop-commands::{other}\nx\n::{other}::\n"));
    }

    #[test]
    fn program_text_cannot_become_a_command_or_a_control() {
        let forged = "\x1b[2J\rTotal 600/600\n::error::forged\n##[error]old";
        let mut report = fixtures::sample();
        report.exercises[1].checks[1].message = format!("wrong output\ngot: {forged}");
        report.exercises[2].build_error = Some(format!("error: {forged}"));
        report.exercises[0].checks[1].detail.as_mut().unwrap().location.as_mut().unwrap().file =
            "exercises/signals/src/\x1b]0;x\x07.rs".into();
        for line in annotations(&report, true) {
            assert!(!line.contains('\x1b') && !line.contains('\r') && !line.contains('\n'), "{line}");
            assert!(line.starts_with("::error file=exercises/"), "{line}");
        }
        let md = summary(&report, SUMMARY_BUDGET);
        assert!(!md.contains('\x1b') && !md.contains('\r'), "{md}");
        assert!(md.contains("\\x1b[2J\\rTotal 600/600\n\\x3a:error::forged\n\\x23#[error]old"), "{md}");
    }

    #[test]
    fn annotations_point_at_the_todo_or_the_binary_source() {
        let report = fixtures::sample();
        let lines = annotations(&report, true);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines.iter().all(|l| l.starts_with("::error ") && !l.contains('\n') && !l.contains('\r')));
        // The todo!() location, file and line.
        let todo = "::error file=exercises/signals/src/main.rs,line=102,title=signals/echo (10 points)::";
        assert!(lines[0].starts_with(&format!("{todo}not implemented yet%0Adid: ")), "{}", lines[0]);
        // No location named: the source of the binary it ran.
        assert!(lines[1]
            .starts_with("::error file=exercises/signals/src/main.rs,line=1,title=signals/sigint-idle (5 points)::"));
        assert!(lines[2]
            .starts_with("::error file=exercises/sockets/src/bin/tcp-client.rs,line=1,title=sockets/client-echo"));
        // A build error: the compiler's `-->`.
        assert!(lines[3].starts_with("::error file=exercises/framing/src/main.rs,line=7,title=framing/encode-bytes"));
    }

    #[test]
    fn locations_are_made_relative_to_the_repository() {
        let at = |file: &str| in_crate(file, "exercises/signals");
        assert_eq!(at("exercises/signals/src/main.rs").as_deref(), Some("exercises/signals/src/main.rs"));
        assert_eq!(at("/tmp/stage-x1/exercises/signals/src/util.rs").as_deref(), Some("exercises/signals/src/util.rs"));
        assert_eq!(at("./exercises/signals/src/main.rs").as_deref(), Some("exercises/signals/src/main.rs"));
        // Not the student's code: std, a dependency, another crate.
        assert_eq!(at("/rustc/abc/library/core/src/option.rs"), None);
        assert_eq!(at("/root/.cargo/registry/src/nix-0.32.0/src/lib.rs"), None);
        assert_eq!(at("exercises/signalsx/src/main.rs"), None);
        assert_eq!(at("exercises/signals"), None);
    }

    #[test]
    fn the_location_is_read_from_the_data_not_the_message() {
        let src = [("sigecho", "src/main.rs")];
        // A message that names a place is not a location.
        let named = "sigecho printed `exercises/signals/src/main.rs:9:9`";
        let c = check("a", Status::Failed, 5, Kind::WrongOutput, named, &["sigecho"]);
        assert_eq!(location(&exercise("signals", &src, vec![]), &c), Some(("exercises/signals/src/main.rs".into(), 1)));
        let c = fixtures::at(c, "/tmp/sub-1/exercises/signals/src/lib.rs", 42, 5);
        assert_eq!(location(&exercise("signals", &src, vec![]), &c), Some(("exercises/signals/src/lib.rs".into(), 42)));
        // A panic in std points at the binary instead.
        let c = fixtures::at(c, "/rustc/abc/library/core/src/option.rs", 10, 5);
        assert_eq!(location(&exercise("signals", &src, vec![]), &c), Some(("exercises/signals/src/main.rs".into(), 1)));
    }

    #[test]
    fn without_a_source_folder_there_is_no_file() {
        let mut report = fixtures::sample();
        report.exercises[0].source = None;
        report.exercises[0].bin_sources.clear();
        let lines = annotations(&report, true);
        assert!(lines[0].starts_with("::error title=signals/echo (10 points)::"), "{}", lines[0]);
        // A check that ran only a binary given with --bin: no file either.
        let c = check("x", Status::Failed, 5, Kind::WrongOutput, "the line `x`", &["tcp-server"]);
        let ex = exercise("sockets", &[("tcp-client", "src/bin/tcp-client.rs")], vec![c.clone()]);
        assert_eq!(location(&ex, &c), None);
    }

    #[test]
    fn checks_waiting_for_one_todo_share_an_annotation() {
        let todo = "sigecho reached a `todo!()` at exercises/signals/src/main.rs:42:5";
        let todo = |id, points| {
            let c = check(id, Status::Failed, points, Kind::NotImplemented, todo, &["sigecho"]);
            fixtures::at(c, "exercises/signals/src/main.rs", 42, 5)
        };
        let checks = vec![
            todo("a", 5),
            check("b", Status::Failed, 10, Kind::WrongOutput, "the line `x`", &["sigecho"]),
            todo("c", 15),
        ];
        let report = fixtures::report(vec![exercise("signals", &[("sigecho", "src/main.rs")], checks)]);
        let lines = annotations(&report, true);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].starts_with(
                "::error file=exercises/signals/src/main.rs,line=42,title=signals%3A not implemented yet (2 checks%2C 20 points)::"
            ),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("%0Achecks waiting for it: a, c%0A"), "{}", lines[0]);
        assert!(lines[1].starts_with("::error file=exercises/signals/src/main.rs,line=1,title=signals/b (10 points)::"));
    }

    #[test]
    fn at_most_ten_errors_then_a_notice() {
        let checks = (0..23)
            .map(|i| check(&format!("c{i}"), Status::Failed, 5, Kind::WrongOutput, "the line `x`", &["sigecho"]))
            .collect();
        let report = fixtures::report(vec![exercise("signals", &[("sigecho", "src/main.rs")], checks)]);
        let lines = annotations(&report, true);
        assert_eq!(lines.len(), MAX_ANNOTATIONS + 1);
        assert!(lines[..MAX_ANNOTATIONS].iter().all(|l| l.starts_with("::error ")));
        assert_eq!(
            lines[MAX_ANNOTATIONS],
            "::notice title=ipc-lab::13 more failing checks are not annotated; the job summary lists them all"
        );
    }

    #[test]
    fn summary_has_a_row_per_check_and_the_failures_in_detail() {
        let md = summary(&fixtures::sample(), SUMMARY_BUDGET);
        assert!(md.starts_with("## ipc-lab grade: 15/50 points\n\n2 passed, 4 failed, 1 skipped in 1.23s.\n"), "{md}");
        assert!(md.contains("| signals | ready | 5/5 | ✅ | ready works |\n"), "{md}");
        assert!(md.contains("| signals | echo | 0/10 | ❌ | echo works |\n"));
        assert!(md.contains("| signals | sigint-idle | 0/5 | ⚠️ | sigint-idle works |\n"));
        assert!(md.contains("| signals | ipv6 | 0/0 | ⏭️ | ipv6 works |\n"));
        assert_eq!(
            md.lines()
                .filter(|l| l.starts_with("| ") && !l.starts_with("| Exercise") && !l.starts_with("| ---"))
                .count(),
            7
        );
        let block = "<details><summary>❌ <b>signals/echo</b> 0/10: echo works (not implemented yet)</summary>\n\n";
        assert!(md.contains(&format!("{block}```text\nnot implemented yet\n")), "{md}");
        assert!(md.contains("<b>framing</b> did not compile"));
        assert!(md.contains("```text\nerror[E0308]: mismatched types\n --> exercises/framing/src/main.rs:7:22\n"));
        // The checks of an exercise that did not build get no block each.
        assert!(!md.contains("<b>framing/encode-bytes</b>"));
        assert!(!md.contains("shortened"));
    }

    #[test]
    fn table_cells_and_fences_are_escaped() {
        let mut c = check("pipe", Status::Failed, 5, Kind::WrongOutput, "x", &[]);
        c.title = "a | b\nc".into();
        c.message = "got ``` and ```` fences".into();
        let md = summary(&fixtures::report(vec![exercise("select", &[], vec![c])]), SUMMARY_BUDGET);
        assert!(md.contains("| select | pipe | 0/5 | ❌ | a \\| b<br>c |\n"), "{md}");
        assert!(md.contains("\n`````text\ngot ``` and ```` fences\n`````\n"), "{md}");
    }

    /// `n` failing checks with messages of `len` bytes (multi-byte chars,
    /// so cuts must find character boundaries).
    fn huge(n: usize, len: usize) -> Report {
        let checks = (0..n)
            .map(|i| {
                let mut c = check(&format!("c{i}"), Status::Failed, 1, Kind::WrongOutput, "x", &["sigecho"]);
                c.message = "é".repeat(len / 2);
                c
            })
            .collect();
        fixtures::report(vec![exercise("signals", &[("sigecho", "src/main.rs")], checks)])
    }

    #[test]
    fn a_huge_report_has_its_messages_cut_first() {
        let md = summary(&huge(300, 10_000), SUMMARY_BUDGET);
        assert!(md.len() <= SUMMARY_BUDGET, "{} bytes", md.len());
        assert!(
            md.contains("shortened to stay under GitHub's 1 MiB limit: 300 failure messages were cut."),
            "{}",
            &md[..600]
        );
        assert!(md.contains("The full report is in the uploaded artifact"));
        assert_eq!(md.matches("<details>").count(), 300, "every failure keeps its block");
        assert_eq!(md.matches(" more bytes: the full report has the whole message\n```").count(), 300);
        // As long as fits: most of the budget is used.
        assert!(md.len() > SUMMARY_BUDGET * 9 / 10, "{} bytes", md.len());
    }

    #[test]
    fn a_huger_report_loses_details_then_rows() {
        let md = summary(&huge(5_000, 10_000), SUMMARY_BUDGET);
        assert!(md.len() <= SUMMARY_BUDGET, "{} bytes", md.len());
        assert_eq!(md.lines().filter(|l| l.starts_with("| signals |")).count(), 5_000, "every row stays");
        let kept = md.matches("<details>").count();
        assert!(kept > 0 && kept < 5_000, "{kept}");
        assert!(md.contains(&format!("{} failures are not shown in detail", 5_000 - kept)));
        assert!(md.contains(&format!("_… and {} more failures, in the full report._", 5_000 - kept)));

        let md = summary(&huge(30_000, 100), SUMMARY_BUDGET);
        assert!(md.len() <= SUMMARY_BUDGET, "{} bytes", md.len());
        let rows = md.lines().filter(|l| l.starts_with("| signals |")).count();
        assert!(rows > 0 && rows < 30_000);
        assert!(md.contains(&format!("{} checks are missing from the table", 30_000 - rows)));
        assert!(md.contains("30000 failures are not shown in detail"));
    }

    #[test]
    fn block_size_is_the_rendered_length() {
        for body in ["", "short", "with ``` fence", &"é".repeat(3000), &"x|`\n".repeat(900)] {
            let b = Block::new("<b>s</b>".into(), body);
            for cap in [0, 10, 100, 1023, 1024, 2000, 5999, 6000, usize::MAX] {
                assert_eq!(b.size(cap), b.render(cap).len(), "cap {cap}, body {} bytes", body.len());
            }
        }
    }

    #[test]
    fn any_budget_of_a_few_kib_is_kept() {
        let report = huge(50, 3_000);
        for budget in [4 * 1024, 10_000, 64 * 1024, 150_000, 160_000] {
            let md = summary(&report, budget);
            assert!(md.len() <= budget, "{} > {budget}", md.len());
        }
    }
}
