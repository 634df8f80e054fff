//! A skeleton teaches; it does not hand out the answer.
//!
//! The functions a student writes are those whose skeleton body calls
//! `todo!()`. Their doc comments say *what* each must achieve and *why*;
//! the code-level help is in the hints the student asks for
//! (`cargo grade --hint EXERCISE --level 2|3`, `grader/hints/<id>.toml`).
//! This test keeps it so: no non-trivial line of the solution's code in
//! such a function may appear anywhere in the skeleton crate — its sources
//! (code or comments) or its README.
//!
//! - *Non-trivial*: 20 characters or more once trimmed, after a trailing
//!   `// comment` is cut off; comment lines do not count.
//! - *Appears*: as a substring once whitespace is collapsed and comment
//!   markers (`//`, `///`, `//!`) are removed, so a line quoted across two
//!   doc-comment lines is found too.
//! - A line that the solution also has *outside* the student's functions
//!   (in the provided plumbing, which the skeleton ships anyway — say
//!   `Err(Errno::EINTR) => continue,`) gives nothing away and is not
//!   counted.
//!
//! The test also prints how many lines each exercise asks the student to
//! write: the non-blank, non-comment lines of those functions' bodies in
//! the solution (`cargo test -p ipc-lab-tests --test skeletons --
//! --nocapture`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ipc_lab_tests::{registry, root};
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{ImplItem, Item};

/// Shorter lines (`Ok(())`, `drop(fd);`, `continue`) are the words of
/// the language, not an answer.
const NON_TRIVIAL: usize = 20;

fn has_todo(tokens: TokenStream) -> bool {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    trees.iter().enumerate().any(|(i, t)| match t {
        TokenTree::Ident(id) => {
            id == "todo" && matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!')
        }
        TokenTree::Group(g) => has_todo(g.stream()),
        _ => false,
    })
}

/// The names of the functions in `file` whose body calls `todo!()`: free
/// functions and methods alike (rustfmt'ed sources name each once).
fn student_functions(file: &syn::File) -> Vec<String> {
    let mut out = Vec::new();
    for item in &file.items {
        match item {
            Item::Fn(f) if has_todo(f.block.to_token_stream()) => out.push(f.sig.ident.to_string()),
            Item::Impl(i) => {
                for member in &i.items {
                    if let ImplItem::Fn(f) = member {
                        if has_todo(f.block.to_token_stream()) {
                            out.push(f.sig.ident.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A function of a rustfmt'ed file: the line numbers (0-based) of its body,
/// between the line that opens it and its closing brace.
fn body_lines(lines: &[&str], name: &str) -> Option<std::ops::Range<usize>> {
    let is_head = |l: &str| {
        let t = l.trim_start();
        let t = t.strip_prefix("pub ").unwrap_or(t);
        let t = t.strip_prefix("extern \"C\" ").unwrap_or(t);
        t.strip_prefix("fn ")
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|rest| rest.starts_with('(') || rest.starts_with('<'))
    };
    let head = lines.iter().position(|l| is_head(l))?;
    let indent = &lines[head][..lines[head].len() - lines[head].trim_start().len()];
    let open = (head..lines.len()).find(|&i| lines[i].trim_end().ends_with('{'))?;
    let close = (open + 1..lines.len()).find(|&i| lines[i].trim_end() == format!("{indent}}}"))?;
    Some(open + 1..close)
}

/// `line` without a trailing `// comment` and surrounding space; `None` for
/// a comment line or a blank one.
fn code_of(line: &str) -> Option<&str> {
    let t = line.trim();
    if t.is_empty() || t.starts_with("//") {
        return None;
    }
    // A `//` inside a string literal would be cut too; the solutions have
    // none in the student's functions.
    Some(t.split(" // ").next().unwrap_or(t).trim_end())
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A text searched as one line: comment markers removed, whitespace
/// collapsed, each character remembering the line it came from.
struct Haystack {
    text: String,
    /// (byte offset in `text`, file, 1-based line) for every source line.
    starts: Vec<(usize, String, usize)>,
}

impl Haystack {
    fn new() -> Self {
        Haystack { text: String::new(), starts: Vec::new() }
    }

    fn add(&mut self, file: &str, content: &str) {
        for (n, line) in content.lines().enumerate() {
            let t = line.trim_start();
            let t = ["//!", "///", "//"].iter().find_map(|m| t.strip_prefix(m)).unwrap_or(t);
            let t = collapse(t);
            if t.is_empty() {
                continue;
            }
            self.starts.push((self.text.len(), file.to_string(), n + 1));
            self.text.push_str(&t);
            self.text.push(' ');
        }
    }

    /// Where `needle` occurs first: `file:line`.
    fn find(&self, needle: &str) -> Option<String> {
        let at = self.text.find(needle)?;
        let i = self.starts.partition_point(|(offset, ..)| *offset <= at) - 1;
        let (_, file, line) = &self.starts[i];
        Some(format!("{file}:{line}"))
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// What the solution of one exercise asks the student to write.
struct Answers {
    /// (solution file, 1-based line, the code, the function).
    lines: Vec<(String, usize, String, String)>,
    /// The solution's code outside those functions, collapsed, one entry a
    /// line: provided, so shown anyway.
    provided: BTreeSet<String>,
    /// Non-blank, non-comment lines of those functions' bodies.
    to_write: usize,
    functions: usize,
}

fn answers(id: &str, problems: &mut Vec<String>) -> Answers {
    let skeleton_src = root().join("exercises").join(id).join("src");
    let mut a = Answers { lines: Vec::new(), provided: BTreeSet::new(), to_write: 0, functions: 0 };
    for path in rust_files(&skeleton_src) {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let solution_path =
            root().join("solutions").join(id).join("src").join(path.strip_prefix(&skeleton_src).unwrap());
        let Ok(solution) = std::fs::read_to_string(&solution_path) else {
            problems.push(format!("{}: no solution file {}", rel(&path), rel(&solution_path)));
            continue;
        };
        let lines: Vec<&str> = solution.lines().collect();
        let mut students = vec![false; lines.len()];
        for name in student_functions(&file) {
            let Some(body) = body_lines(&lines, &name) else {
                problems.push(format!("{}: `fn {name}` (a `todo!()` in the skeleton) not found", rel(&solution_path)));
                continue;
            };
            a.functions += 1;
            for i in body {
                students[i] = true;
                let Some(code) = code_of(lines[i]) else { continue };
                a.to_write += 1;
                if code.len() >= NON_TRIVIAL {
                    a.lines.push((rel(&solution_path), i + 1, collapse(code), name.clone()));
                }
            }
        }
        for (i, line) in lines.iter().enumerate() {
            if let Some(code) = code_of(line).filter(|_| !students[i]) {
                a.provided.insert(collapse(code));
            }
        }
    }
    a
}

#[test]
fn skeletons_do_not_contain_the_solutions_code() {
    let mut problems = Vec::new();
    let mut table = Vec::new();
    for ex in registry() {
        let a = answers(ex.id, &mut problems);
        let crate_dir = root().join("exercises").join(ex.id);
        let mut hay = Haystack::new();
        for path in rust_files(&crate_dir.join("src")).into_iter().chain([crate_dir.join("README.md")]) {
            if let Ok(text) = std::fs::read_to_string(&path) {
                hay.add(&rel(&path), &text);
            }
        }
        for (file, line, code, function) in &a.lines {
            if a.provided.contains(code) {
                continue;
            }
            if let Some(place) = hay.find(code) {
                problems.push(format!("{place}: gives away {file}:{line} (in `{function}`): {code}"));
            }
        }
        if a.functions == 0 {
            problems.push(format!("{}: no function with a `todo!()`", rel(&crate_dir)));
        }
        table.push(format!("{:10} {:3} lines in {:2} functions", ex.id, a.to_write, a.functions));
    }
    println!("Lines the student writes (solution, non-blank, non-comment):\n  {}", table.join("\n  "));
    assert!(
        problems.is_empty(),
        "{} lines of the solution's code stand in a skeleton:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
