//! What a submitted crate's Rust sources may pull in: its own files only.
//!
//! Once the manifest is clean, the compiler still reads whatever the code
//! names: `#[path = "…"] mod x;`, `include!("…")`, `include_str!`,
//! `include_bytes!`. The scratch workspace lies outside the instructors'
//! repository and holds no solutions, but an absolute path, or enough
//! `..` to climb to `/` and down again, finds them anyway. So every such
//! path must be a plain string literal that stays inside the crate's
//! folder, resolved from the directory of the file that names it (the
//! compiler resolves from there or from deeper; never from higher).
//!
//! Anything the scan cannot judge is refused too: a path built by a macro
//! (`concat!`, `env!`), one inside a `macro_rules!` body (resolved from
//! wherever the macro is called), and `include_str`/`include_bytes`
//! renamed by `use … as`. The lexer follows rustc's rules for comments,
//! strings, raw strings, characters and lifetimes, so code cannot hide from
//! it inside something the compiler reads as code. A file that is
//! `include!`d or `#[path]`ed but not named `.rs` is scanned as well.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{inside, refusal};

/// The macros that read a file at compile time.
const INCLUDES: [&str; 3] = ["include", "include_str", "include_bytes"];

/// Scan every Rust source of the staged crate `dir` (the exercise `id`).
/// `Err` is the one-line reason for the first file that reaches out.
pub fn check(dir: &Path, id: &str) -> Result<(), String> {
    let mut queue = Vec::new();
    rust_files(dir, Path::new(""), &mut queue);
    queue.sort();
    let mut seen: BTreeSet<PathBuf> = queue.iter().cloned().collect();
    while let Some(rel) = queue.pop() {
        let shown = format!("exercises/{id}/{}", rel.display());
        let Ok(bytes) = std::fs::read(dir.join(&rel)) else { continue };
        let Ok(text) = String::from_utf8(bytes) else {
            // rustc refuses it too, unless it is data for include_bytes!.
            continue;
        };
        let base = rel.parent().unwrap_or(Path::new(""));
        for named in scan(&text).map_err(|(line, what)| refusal(&shown, Some(line), &what))? {
            if !inside(base, &named.path) {
                let how = if named.path.starts_with('/') { "is absolute" } else { "climbs out of the crate's folder" };
                let what = format!("{} {} {how}", named.what, quoted(&named.path));
                return Err(refusal(&shown, Some(named.line), &what));
            }
            let target = base.join(&named.path);
            if named.code && dir.join(&target).is_file() && seen.insert(target.clone()) {
                queue.push(target);
            }
        }
    }
    Ok(())
}

/// Every `*.rs` file below `dir/rel`, relative to `dir`.
fn rust_files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir.join(rel)) else { return };
    for entry in rd.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        let path = rel.join(entry.file_name());
        if kind.is_dir() {
            rust_files(dir, &path, out);
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn quoted(path: &str) -> String {
    let escaped = crate::text::escape(path).replace('\n', "\\n");
    let short: String = escaped.chars().take(200).collect();
    format!("`{short}{}`", if short.len() < escaped.len() { "…" } else { "" })
}

/// A path a source file names for the compiler to read.
#[derive(Debug, PartialEq, Eq)]
struct Named {
    line: usize,
    /// `#[path]`, `include!`, …
    what: String,
    path: String,
    /// Read as Rust code (`#[path]`, `include!`), not as data.
    code: bool,
}

/// The paths `text` names in `#[path = …]` and the `include` macros; `Err`
/// (line, why) when one is not a plain string literal or the scan cannot
/// judge it.
fn scan(text: &str) -> Result<Vec<Named>, (usize, String)> {
    let toks = lex(text);
    let in_macro = macro_bodies(&toks);
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let Tok::Ident(name) = &t.tok else { continue };
        let next = toks.get(i + 1).map(|t| &t.tok);
        let is = |k: usize, want: &Tok| toks.get(k).is_some_and(|t| &t.tok == want);
        if INCLUDES.contains(&name.as_str()) {
            if next == Some(&Tok::Punct('!')) {
                let what = format!("{name}!");
                if in_macro[i] {
                    return Err((t.line, format!("{what} in a macro_rules! body cannot be checked")));
                }
                let opens = toks.get(i + 2).is_some_and(|t| matches!(t.tok, Tok::Punct('(' | '[' | '{')));
                let Some(Tok::Str(Some(path))) = toks.get(i + 3).map(|t| &t.tok).filter(|_| opens) else {
                    return Err((t.line, format!("{what} takes something other than a plain string literal")));
                };
                let code = name == "include";
                out.push(Named { line: t.line, what, path: path.clone(), code });
            } else {
                let qualified = i >= 2 && is(i - 1, &Tok::Punct(':')) && is(i - 2, &Tok::Punct(':'));
                let renamed = next == Some(&Tok::Ident("as".into()));
                if name != "include" || qualified || renamed {
                    return Err((t.line, format!("`{name}` is named other than in a direct `{name}!(…)` call")));
                }
            }
        } else if name == "path" && next == Some(&Tok::Punct('=')) && in_attribute(&toks, i) {
            if in_macro[i] {
                return Err((t.line, "#[path] in a macro_rules! body cannot be checked".into()));
            }
            let Some(Tok::Str(Some(path))) = toks.get(i + 2).map(|t| &t.tok) else {
                return Err((t.line, "#[path] takes something other than a plain string literal".into()));
            };
            out.push(Named { line: t.line, what: "#[path]".into(), path: path.clone(), code: true });
        }
    }
    Ok(out)
}

/// Whether token `i` lies inside `#[…]` or `#![…]`.
fn in_attribute(toks: &[Token], i: usize) -> bool {
    let mut depth = 0usize;
    for k in (0..i).rev() {
        match toks[k].tok {
            Tok::Punct(']' | ')' | '}') => depth += 1,
            Tok::Punct('[') if depth == 0 => {
                let hash = |j: usize| toks.get(j).is_some_and(|t| t.tok == Tok::Punct('#'));
                let bang = k >= 1 && toks[k - 1].tok == Tok::Punct('!');
                return k >= 1 && hash(k - 1) || bang && k >= 2 && hash(k - 2);
            }
            Tok::Punct('(' | '{') if depth == 0 => {}
            Tok::Punct('[' | '(' | '{') => depth -= 1,
            _ => {}
        }
    }
    false
}

/// For each token, whether it lies in the body of a `macro_rules!`.
fn macro_bodies(toks: &[Token]) -> Vec<bool> {
    let mut inside = vec![false; toks.len()];
    let mut i = 0;
    while i < toks.len() {
        let starts = toks[i].tok == Tok::Ident("macro_rules".into())
            && toks.get(i + 1).is_some_and(|t| t.tok == Tok::Punct('!'))
            && toks.get(i + 2).is_some_and(|t| matches!(t.tok, Tok::Ident(_)))
            && toks.get(i + 3).is_some_and(|t| matches!(t.tok, Tok::Punct('(' | '[' | '{')));
        if !starts {
            i += 1;
            continue;
        }
        let mut depth = 0usize;
        let mut k = i + 3;
        while k < toks.len() {
            match toks[k].tok {
                Tok::Punct('(' | '[' | '{') => depth += 1,
                Tok::Punct(')' | ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            inside[k] = true;
            k += 1;
            if depth == 0 {
                break;
            }
        }
        i = k;
    }
    inside
}

// ----- lexing ----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Punct(char),
    /// A string literal: its value, or `None` for one that is not a plain
    /// `&str` (byte and C strings, bad escapes).
    Str(Option<String>),
    /// Numbers, characters, lifetimes.
    Other,
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// The tokens of `text` as rustc splits them, without white space and
/// comments; doc comments are comments here (their text is not code).
fn lex(text: &str) -> Vec<Token> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let mut lx = Lexer { chars: &chars, pos: 0, line: 1, out: Vec::new() };
    lx.skip_shebang();
    lx.run();
    lx.out
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
    line: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn at(&self, k: usize) -> char {
        self.chars.get(self.pos + k).copied().unwrap_or('\0')
    }

    fn eof(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn bump(&mut self) -> char {
        let c = self.at(0);
        if c == '\n' {
            self.line += 1;
        }
        self.pos += 1;
        c
    }

    fn push(&mut self, tok: Tok, line: usize) {
        self.out.push(Token { tok, line });
    }

    /// rustc's rule: `#!` at the very start is a shebang line unless the
    /// next token after white space and plain comments is `[`.
    fn skip_shebang(&mut self) {
        if self.at(0) != '#' || self.at(1) != '!' {
            return;
        }
        let mut k = 2;
        loop {
            let at = |j: usize| self.chars.get(k + j).copied().unwrap_or('\0');
            let c = at(0);
            // Doc comments (`///`, `//!`, `/**`, `/*!`) are tokens to rustc.
            let doc = match (at(1), at(2), at(3)) {
                ('/', '/', next) => next != '/',
                ('*', '*', next) => !matches!(next, '*' | '/'),
                (_, third, _) => third == '!',
            };
            if c.is_whitespace() {
                k += 1;
            } else if c == '/' && at(1) == '/' && !doc {
                while k < self.chars.len() && self.chars[k] != '\n' {
                    k += 1;
                }
            } else if c == '/' && at(1) == '*' && !doc {
                k = block_comment_end(self.chars, k);
            } else {
                if c != '[' {
                    while !self.eof() && self.at(0) != '\n' {
                        self.bump();
                    }
                }
                return;
            }
        }
    }

    fn run(&mut self) {
        while !self.eof() {
            let line = self.line;
            let c = self.at(0);
            if c.is_whitespace() {
                self.bump();
            } else if c == '/' && self.at(1) == '/' {
                while !self.eof() && self.at(0) != '\n' {
                    self.bump();
                }
            } else if c == '/' && self.at(1) == '*' {
                let end = block_comment_end(self.chars, self.pos);
                while self.pos < end {
                    self.bump();
                }
            } else if c == '"' {
                self.bump();
                let value = self.quoted();
                self.push(Tok::Str(value), line);
            } else if c == '\'' {
                self.quote();
                self.push(Tok::Other, line);
            } else if c.is_ascii_digit() {
                while self.at(0).is_alphanumeric() || self.at(0) == '_' {
                    self.bump();
                }
                self.push(Tok::Other, line);
            } else if c == '_' || c.is_alphabetic() {
                self.word(line);
            } else {
                self.bump();
                self.push(Tok::Punct(c), line);
            }
        }
    }

    /// An identifier, a raw identifier, or a prefixed literal (`b"…"`,
    /// `r#"…"#`, `br"…"`, `c"…"`, `b'x'`).
    fn word(&mut self, line: usize) {
        let start = self.pos;
        while self.at(0).is_alphanumeric() || self.at(0) == '_' {
            self.bump();
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        match (word.as_str(), self.at(0)) {
            ("r", '#') if self.at(1) == '_' || self.at(1).is_alphabetic() => {
                self.bump();
                let start = self.pos;
                while self.at(0).is_alphanumeric() || self.at(0) == '_' {
                    self.bump();
                }
                let word = self.chars[start..self.pos].iter().collect();
                self.push(Tok::Ident(word), line);
            }
            ("r" | "br" | "cr", '#' | '"') => {
                let value = self.raw();
                self.push(Tok::Str(value.filter(|_| word == "r")), line);
            }
            ("b" | "c", '"') => {
                self.bump();
                self.quoted();
                self.push(Tok::Str(None), line);
            }
            ("b", '\'') => {
                self.quote();
                self.push(Tok::Other, line);
            }
            _ => self.push(Tok::Ident(word), line),
        }
    }

    /// The rest of a `"…"` literal after its opening quote: its value, if
    /// every escape is valid.
    fn quoted(&mut self) -> Option<String> {
        let mut value = Some(String::new());
        while !self.eof() {
            match self.bump() {
                '"' => return value,
                '\\' => {
                    let c = self.bump();
                    let decoded = match c {
                        'n' => Some('\n'),
                        'r' => Some('\r'),
                        't' => Some('\t'),
                        '0' => Some('\0'),
                        '\\' | '"' | '\'' => Some(c),
                        'x' => {
                            let hex: String = [self.bump(), self.bump()].iter().collect();
                            u8::from_str_radix(&hex, 16).ok().filter(|b| *b < 0x80).map(char::from)
                        }
                        'u' if self.at(0) == '{' => {
                            let mut hex = String::new();
                            self.bump();
                            while !self.eof() && self.at(0) != '}' && self.at(0) != '"' {
                                hex.push(self.bump());
                            }
                            if self.at(0) == '}' {
                                self.bump();
                            }
                            u32::from_str_radix(&hex.replace('_', ""), 16).ok().and_then(char::from_u32)
                        }
                        '\n' => {
                            while self.at(0).is_whitespace() {
                                self.bump();
                            }
                            continue;
                        }
                        '\r' if self.at(0) == '\n' => {
                            while self.at(0).is_whitespace() {
                                self.bump();
                            }
                            continue;
                        }
                        _ => None,
                    };
                    match (decoded, value.as_mut()) {
                        (Some(ch), Some(v)) => v.push(ch),
                        _ => value = None,
                    }
                }
                c => {
                    if let Some(v) = value.as_mut() {
                        v.push(c);
                    }
                }
            }
        }
        None
    }

    /// A raw string from its hashes on (`#"…"#`): its content.
    fn raw(&mut self) -> Option<String> {
        let mut hashes = 0;
        while self.at(0) == '#' {
            self.bump();
            hashes += 1;
        }
        if self.at(0) != '"' {
            return None;
        }
        self.bump();
        let start = self.pos;
        while !self.eof() {
            if self.at(0) == '"' && (1..=hashes).all(|k| self.at(k) == '#') {
                let value = self.chars[start..self.pos].iter().collect();
                for _ in 0..=hashes {
                    self.bump();
                }
                return Some(value);
            }
            self.bump();
        }
        None
    }

    /// A character literal or a lifetime, from its `'` on (rustc's
    /// `lifetime_or_char`).
    fn quote(&mut self) {
        self.bump();
        let first = self.at(0);
        let lifetime = self.at(1) != '\'' && (first == '_' || first.is_alphabetic() || first.is_ascii_digit());
        if lifetime {
            while self.at(0).is_alphanumeric() || self.at(0) == '_' {
                self.bump();
            }
            if self.at(0) == '\'' {
                self.bump();
            }
            return;
        }
        if self.at(1) == '\'' && first != '\\' {
            self.bump();
            self.bump();
            return;
        }
        while !self.eof() {
            match self.at(0) {
                '\'' => {
                    self.bump();
                    return;
                }
                '/' => return,
                '\n' if self.at(1) != '\'' => return,
                '\\' => {
                    self.bump();
                    self.bump();
                }
                _ => {
                    self.bump();
                }
            }
        }
    }
}

/// Where the (nested) block comment starting at `start` ends.
fn block_comment_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    let mut k = start;
    while k < chars.len() {
        if chars[k] == '/' && chars.get(k + 1) == Some(&'*') {
            depth += 1;
            k += 2;
        } else if chars[k] == '*' && chars.get(k + 1) == Some(&'/') {
            depth -= 1;
            k += 2;
            if depth == 0 {
                return k;
            }
        } else {
            k += 1;
        }
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str) -> Vec<(String, String)> {
        scan(text).unwrap().into_iter().map(|n| (n.what, n.path)).collect()
    }

    fn refused(text: &str) -> String {
        scan(text).map(|n| format!("accepted: {n:?}")).unwrap_err().1
    }

    #[test]
    fn finds_path_attributes_and_includes() {
        let src = r###"
            #[path = "../common.rs"] mod common;
            #[cfg_attr(unix, path = "unix.rs")] mod sys;
            #![doc = include_str!("../README.md")]
            const T: &str = include_str!(r#"data/"x".txt"#);
            const B: &[u8] = std::include_bytes!["\x2fetc/passwd"];
            include! { "gen.rs" }
            #[serde(rename = "path")] struct S { path: String }
            fn f() { let path = "/tmp/sock"; g(path = "/x"); }
        "###;
        let want: Vec<(String, String)> = [
            ("#[path]", "../common.rs"),
            ("#[path]", "unix.rs"),
            ("include_str!", "../README.md"),
            ("include_str!", "data/\"x\".txt"),
            ("include_bytes!", "/etc/passwd"),
            ("include!", "gen.rs"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .to_vec();
        assert_eq!(paths(src), want);
    }

    #[test]
    fn comments_strings_and_characters_hide_nothing_and_invent_nothing() {
        let quiet = r##"
            // include!("/a")
            /* /* nested */ include!("/b") */
            /// include!("/c")
            const S: &str = "include!(\"/d\") \" still a string";
            const R: &str = r#"include!("/e")"#;
            const C: char = '"'; const Q: char = '\''; fn f<'a>(x: &'a str) {}
            const B: &[u8] = b"include!(\"/f\")";
        "##;
        assert_eq!(paths(quiet), []);
        // A quote in a character literal must not start a string that
        // swallows the code after it.
        assert_eq!(
            paths("const C: char = '\"'; include!(\"/x\"); const D: &str = \"\";"),
            [("include!".to_string(), "/x".to_string())]
        );
        assert_eq!(paths("fn f<'a>(x: &'a str) -> &'a str { include_str!(\"/y\") }").len(), 1);
    }

    #[test]
    fn a_shebang_is_skipped_as_rustc_does() {
        assert_eq!(paths("#!/usr/bin/env \"x\ninclude!(\"/z\");").len(), 1);
        assert_eq!(paths("#![doc = include_str!(\"/z\")]").len(), 1);
    }

    #[test]
    fn what_cannot_be_judged_is_refused() {
        assert!(refused(r#"include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../x.rs"));"#).contains("plain string"));
        assert!(refused("include_str!(P);").contains("plain string"));
        assert!(refused("macro_rules! m { () => { include_str!(\"x\") } }").contains("macro_rules!"));
        assert!(refused("macro_rules! m { ($p:literal) => { #[path = $p] mod x; } }").contains("macro_rules!"));
        assert!(refused("use std::include_str as grab;").contains("other than in a direct"));
        assert!(refused("use std::include as inc;").contains("other than in a direct"));
        assert!(refused("#[path = concat!(\"/\", \"x\")] mod x;").contains("plain string"));
        assert!(refused("include!(b\"/x\");").contains("plain string"));
        // A variable called `include` is no macro.
        assert_eq!(paths("let include = true; if include {}"), []);
    }

    #[test]
    fn lines_are_counted() {
        let named = scan("\n\n/* a\n b */\nconst X: &str = \"a\nb\";\ninclude!(\"x.rs\");").unwrap();
        assert_eq!(named[0].line, 7);
    }

    #[test]
    fn a_staged_crate_is_judged_from_each_file_s_folder() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("src/main.rs", "mod util;\nfn main() {}");
        write("src/util.rs", "pub const R: &str = include_str!(\"../README.md\");");
        write("src/bin/tool.rs", "#[path = \"../util.rs\"] mod util;\nfn main() {}");
        assert_eq!(check(dir.path(), "signals"), Ok(()));

        write("src/bin/tool.rs", "#[path = \"../../../x.rs\"] mod util;\nfn main() {}");
        let why = check(dir.path(), "signals").unwrap_err();
        assert_eq!(
            why,
            "error: refused: exercises/signals/src/bin/tool.rs:1: #[path] `../../../x.rs` climbs out of the crate's \
             folder; a submission is built from its own files only"
        );
        write("src/bin/tool.rs", "fn main() { include!(\"/work/solutions/signals/src/main.rs\"); }");
        let why = check(dir.path(), "signals").unwrap_err();
        assert!(why.contains("tool.rs:1: include! `/work/solutions/signals/src/main.rs` is absolute"), "{why}");

        // A file included as code is scanned whatever its name.
        write("src/bin/tool.rs", "include!(\"gen.txt\");");
        write("src/bin/gen.txt", "fn main() { include!(\"/abs.rs\") }");
        let why = check(dir.path(), "signals").unwrap_err();
        assert!(why.contains("exercises/signals/src/bin/gen.txt:1: include! `/abs.rs` is absolute"), "{why}");
    }
}
