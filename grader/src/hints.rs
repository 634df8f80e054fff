//! The hints a student asks for: `cargo grade --hint EXERCISE [--check ID]
//! [--level N]`.
//!
//! A skeleton says what each TODO must achieve and why; it never shows the
//! code. Help comes here, in three levels per TODO, so that a student who
//! wants to think can, and one who is stuck is not left alone:
//!
//! 1. *the concept* — the idea, the slide, the pitfall;
//! 2. *the API* — the `nix`/std items and man pages to look up;
//! 3. *the step* — nearly the code.
//!
//! The text lives in `grader/hints/<exercise>.toml`, not in the check
//! files: one `[[todo]]` per TODO of the skeleton and one `[[check]]` per
//! check naming the TODOs it depends on. A unit test keeps the files in
//! step with the registry and the skeletons.

use serde::Deserialize;

use crate::check::Exercise;

/// Output width: readable in an 80-column terminal.
const WIDTH: usize = 80;

/// One hint file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hints {
    /// The TODOs, in the skeleton's order.
    #[serde(rename = "todo")]
    pub todos: Vec<Todo>,
    /// Which TODOs each check depends on.
    #[serde(rename = "check", default)]
    pub checks: Vec<CheckTodos>,
}

/// The hints of one TODO of the skeleton.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Todo {
    /// The number in its doc comment (`TODO 1a —` is `"1a"`).
    pub n: String,
    /// The function the student writes (or the struct whose fields they
    /// add). Unique in the file: a `[[check]]` names TODOs by it.
    pub name: String,
    /// Its file, relative to the exercise crate (`src/main.rs`).
    pub file: String,
    pub concept: String,
    pub api: String,
    pub step: String,
}

/// The TODOs a check depends on, by function name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckTodos {
    pub id: String,
    pub todos: Vec<String>,
}

/// How much a hint gives away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Concept,
    Api,
    Step,
}

impl Level {
    /// Level `n` (1 to 3), as given with `--level`.
    pub fn from_number(n: u8) -> Option<Level> {
        match n {
            1 => Some(Level::Concept),
            2 => Some(Level::Api),
            3 => Some(Level::Step),
            _ => None,
        }
    }

    fn number(self) -> u8 {
        match self {
            Level::Concept => 1,
            Level::Api => 2,
            Level::Step => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Concept => "the concept",
            Level::Api => "the API: nix and std items, man pages",
            Level::Step => "the step, nearly the code",
        }
    }

    fn next(self) -> Option<Level> {
        Level::from_number(self.number() + 1)
    }
}

impl Todo {
    fn text(&self, level: Level) -> &str {
        match level {
            Level::Concept => &self.concept,
            Level::Api => &self.api,
            Level::Step => &self.step,
        }
    }
}

/// What `--hint` was asked for.
#[derive(Debug, Clone)]
pub struct Ask {
    pub exercise: String,
    /// Only the TODOs behind the checks whose id contains this.
    pub check: Option<String>,
    pub level: Level,
}

/// The parsed hint file of `e` (an empty file: no hints yet).
pub fn of(e: &Exercise) -> Option<Result<Hints, String>> {
    if e.hints.trim().is_empty() {
        return None;
    }
    Some(toml::from_str(e.hints).map_err(|err| format!("grader/hints/{}.toml: {err}", e.id)))
}

/// The text `--hint` prints, or a usage error (no check matches).
pub fn render(e: &Exercise, ask: &Ask) -> Result<String, String> {
    let hints = match of(e) {
        Some(parsed) => parsed?,
        None => return Ok(checks_only(e)),
    };
    let mut s = wrap(&format!("{} — {}", e.id, e.title), "", "  ");
    s.push_str(&wrap(&format!("Slides: {}", e.slides), "", "  "));
    s.push('\n');
    let command = |level: Level| {
        let mut c = format!("cargo grade --hint {}", e.id);
        if let Some(check) = &ask.check {
            c.push_str(&format!(" --check {check}"));
        }
        if level != Level::Concept {
            c.push_str(&format!(" --level {}", level.number()));
        }
        c
    };
    let todos: Vec<&Todo> = match &ask.check {
        None => hints.todos.iter().collect(),
        Some(pattern) => {
            let checks: Vec<_> = e.checks.iter().filter(|c| c.id.contains(pattern.as_str())).collect();
            if checks.is_empty() {
                let known: Vec<&str> = e.checks.iter().map(|c| c.id).collect();
                return Err(format!("no check id of {} contains `{pattern}` (known: {})", e.id, known.join(", ")));
            }
            for c in &checks {
                s.push_str(&wrap(&format!("{}/{} — {}", e.id, c.id, c.title), "", "  "));
            }
            s.push('\n');
            let wanted: Vec<&str> = hints
                .checks
                .iter()
                .filter(|m| checks.iter().any(|c| c.id == m.id))
                .flat_map(|m| m.todos.iter().map(String::as_str))
                .collect();
            hints.todos.iter().filter(|t| wanted.contains(&t.name.as_str())).collect()
        }
    };
    s.push_str(&format!("Level {} of 3: {}\n\n", ask.level.number(), ask.level.name()));
    for t in todos {
        s.push_str(&format!("TODO {} — {} (exercises/{}/{})\n", t.n, t.name, e.dir(), t.file));
        s.push_str(&wrap(t.text(ask.level), "  ", "  "));
        if ask.check.is_none() {
            let checks: Vec<&str> =
                hints.checks.iter().filter(|m| m.todos.contains(&t.name)).map(|m| m.id.as_str()).collect();
            if !checks.is_empty() {
                s.push_str(&wrap(&format!("Checks: {}", checks.join(", ")), "  ", "          "));
            }
        }
        s.push('\n');
    }
    match ask.level.next() {
        Some(next) => s.push_str(&format!("Next level, {}:\n  {}\n", next.name(), command(next))),
        None => s.push_str("This is the last level.\n"),
    }
    if ask.check.is_none() {
        s.push_str(&format!(
            "Only the TODOs behind one check (IDs: cargo grade --list):\n  cargo grade --hint {} --check ID\n",
            e.id
        ));
    }
    Ok(s)
}

/// An exercise without a hint file: the one-line hint of every check.
fn checks_only(e: &Exercise) -> String {
    let mut s = wrap(&format!("{} — {}", e.id, e.title), "", "  ");
    s.push_str(&wrap(&format!("Slides: {}", e.slides), "", "  "));
    s.push('\n');
    for c in &e.checks {
        s.push_str(&wrap(&format!("{} — {}", c.id, c.title), "", "  "));
        s.push_str(&wrap(&collapse(c.hint), "  ", "  "));
        s.push('\n');
    }
    s
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Appends the words of `line` to the paragraph's `words`, keeping a
/// `code span` that contains spaces as one word (also when it goes on over
/// a line of the source): a line break inside it would be misread as part
/// of the code.
fn add_words(words: &mut Vec<String>, line: &str) {
    for w in line.split_whitespace() {
        match words.last_mut() {
            Some(open) if open.matches('`').count() % 2 == 1 => {
                open.push(' ');
                open.push_str(w);
            }
            _ => words.push(w.to_string()),
        }
    }
}

/// `text` wrapped to [`WIDTH`] columns, every line ending in `\n`.
///
/// The text is read like a tiny Markdown: a blank line separates
/// paragraphs; a line starting with `- ` starts a list item (its
/// continuation lines hang under its text); a line indented by four spaces
/// is code and kept as it is. The first line of a paragraph starts with
/// `first`, every other line with `rest`.
fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    // The paragraph being filled: its words and the prefixes of its lines.
    let mut words: Vec<String> = Vec::new();
    let mut prefixes = (first.to_string(), rest.to_string());
    let mut started = false;
    let flush = |words: &mut Vec<String>, prefixes: &(String, String), out: &mut String, started: &mut bool| {
        if words.is_empty() {
            return;
        }
        let mut line = if *started { prefixes.1.clone() } else { prefixes.0.clone() };
        let mut empty = true;
        for w in words.drain(..) {
            if !empty && line.chars().count() + 1 + w.chars().count() > WIDTH {
                out.push_str(line.trim_end());
                out.push('\n');
                line = prefixes.1.clone();
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(&w);
            empty = false;
        }
        out.push_str(&line);
        out.push('\n');
        *started = true;
    };
    for line in text.trim_matches('\n').lines() {
        if line.trim().is_empty() {
            flush(&mut words, &prefixes, &mut out, &mut started);
            if started {
                out.push('\n');
            }
            prefixes = (rest.to_string(), rest.to_string());
            started = false;
        } else if line.starts_with("    ") {
            flush(&mut words, &prefixes, &mut out, &mut started);
            out.push_str(rest);
            out.push_str(line);
            out.push('\n');
            prefixes = (rest.to_string(), rest.to_string());
            started = true;
        } else if let Some(item) = line.strip_prefix("- ") {
            flush(&mut words, &prefixes, &mut out, &mut started);
            prefixes = (format!("{rest}- "), format!("{rest}  "));
            started = false;
            add_words(&mut words, item);
        } else {
            add_words(&mut words, line);
        }
    }
    flush(&mut words, &prefixes, &mut out, &mut started);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `TODO N —` doc comments of a skeleton file and the function (or the
    /// struct whose fields the student adds) each stands on: (N, name).
    fn skeleton_todos(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.trim_start().strip_prefix("/// TODO ") else { continue };
            let n = rest.split_whitespace().next().unwrap_or("").to_string();
            let name = lines[i..].iter().find_map(|l| {
                let t = l.trim_start();
                let t = t.strip_prefix("extern \"C\" ").unwrap_or(t);
                let item = t.strip_prefix("fn ").or_else(|| t.strip_prefix("struct "))?;
                Some(item.split(['(', '<', ' ', '{', ';']).next().unwrap_or("").to_string())
            });
            out.push((n, name.unwrap_or_default()));
        }
        out
    }

    #[test]
    fn every_exercise_has_hints_for_every_todo_and_check() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut problems = Vec::new();
        for e in crate::exercises::all() {
            let hints = match of(&e) {
                Some(Ok(h)) => h,
                Some(Err(err)) => {
                    problems.push(err);
                    continue;
                }
                None => {
                    problems.push(format!("{}: no grader/hints/{}.toml", e.id, e.id));
                    continue;
                }
            };
            let file = format!("grader/hints/{}.toml", e.id);
            let mut in_skeleton = Vec::new();
            for (i, t) in hints.todos.iter().enumerate() {
                // A [[check]] names its TODOs by name: one name, one TODO.
                if hints.todos[..i].iter().any(|u| u.name == t.name) {
                    problems.push(format!("{file}: two [[todo]] are named `{}`", t.name));
                }
                let path = root.join("exercises").join(e.dir()).join(&t.file);
                let todos = skeleton_todos(&std::fs::read_to_string(&path).unwrap_or_default());
                if !todos.contains(&(t.n.clone(), t.name.clone())) {
                    problems.push(format!("{file}: TODO {} `{}` is not in {}", t.n, t.name, path.display()));
                }
                for text in [&t.concept, &t.api, &t.step] {
                    if text.trim().is_empty() {
                        problems.push(format!("{file}: TODO {} `{}` has an empty level", t.n, t.name));
                    }
                }
                for todo in todos {
                    if !in_skeleton.contains(&todo) {
                        in_skeleton.push(todo);
                    }
                }
            }
            for (n, name) in in_skeleton {
                if !hints.todos.iter().any(|t| t.name == name) {
                    problems.push(format!("{file}: TODO {n} `{name}` of the skeleton has no [[todo]]"));
                }
            }
            for m in &hints.checks {
                if !e.checks.iter().any(|c| c.id == m.id) {
                    problems.push(format!("{file}: [[check]] `{}` is not a check of {}", m.id, e.id));
                }
                for name in &m.todos {
                    if !hints.todos.iter().any(|t| &t.name == name) {
                        problems.push(format!("{file}: [[check]] `{}` names `{name}`, no [[todo]] of it", m.id));
                    }
                }
            }
            for c in &e.checks {
                if !hints.checks.iter().any(|m| m.id == c.id && !m.todos.is_empty()) {
                    problems.push(format!("{file}: check `{}` has no [[check]] naming its TODOs", c.id));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn every_hint_fits_in_80_columns() {
        for e in crate::exercises::all() {
            for level in [Level::Concept, Level::Api, Level::Step] {
                let checks = std::iter::once(None).chain(e.checks.iter().map(|c| Some(c.id.to_string())));
                for check in checks {
                    let ask = Ask { exercise: e.id.into(), check: check.clone(), level };
                    let text = render(&e, &ask).unwrap();
                    for line in text.lines() {
                        assert!(line.chars().count() <= WIDTH, "{} {check:?} {level:?}: {line:?}", e.id);
                    }
                }
            }
        }
    }

    #[test]
    fn the_hint_says_the_level_and_the_command_for_the_next() {
        let all = crate::exercises::all();
        let signals = crate::request::find(&all, "signals").unwrap();
        let first = Ask { exercise: "signals".into(), check: None, level: Level::Concept };
        let text = render(signals, &first).unwrap();
        assert!(text.starts_with(&format!("signals — {}\n", signals.title)), "{text}");
        assert!(text.contains("Level 1 of 3: the concept\n"), "{text}");
        assert!(text.contains("TODO 1 — on_signal (exercises/signals/src/main.rs)\n"), "{text}");
        assert!(
            text.contains(
                "Next level, the API: nix and std items, man pages:\n  cargo grade --hint signals --level 2\n"
            ),
            "{text}"
        );

        let check = Ask { exercise: "signals".into(), check: Some("sigint-idle".into()), level: Level::Step };
        let text = render(signals, &check).unwrap();
        assert!(text.contains("signals/sigint-idle — "), "{text}");
        assert!(!text.contains("TODO 4 "), "assemble_lines is not behind sigint-idle:\n{text}");
        assert!(text.ends_with("This is the last level.\n"), "{text}");

        let nothing = Ask { exercise: "signals".into(), check: Some("nosuch".into()), level: Level::Concept };
        assert!(render(signals, &nothing).unwrap_err().starts_with("no check id of signals contains `nosuch`"));
    }

    #[test]
    fn wrapping_keeps_code_and_hangs_list_items() {
        let text = "A paragraph that is long enough to be wrapped once it is read at the `width of\n\
                    eighty` columns, really.\n\n- an item\n  that continues\n\n    let code = 1;";
        let out = wrap(text, "> ", "  ");
        assert_eq!(
            out,
            "> A paragraph that is long enough to be wrapped once it is read at the\n  \
             `width of eighty` columns, really.\n\n  - an item that continues\n\n      let code = 1;\n"
        );
    }
}
