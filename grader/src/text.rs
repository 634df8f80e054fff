//! Text from programs and compilers, made safe to print.
//!
//! A failure message quotes what a student's program printed, its panic
//! message, the name it gave itself in `/proc/PID/comm`, and what the
//! compiler said about its code. Printed raw, such text is an attack on the
//! reader: an escape sequence clears the terminal and draws a fake total, a
//! carriage return overwrites a line, a bidi override reverses it, and on
//! GitHub Actions a line starting with `::error::` (or the older
//! `##[error]`) is taken for a workflow command of the grader's.
//!
//! [`escape`] is the one rule: applied where the text is captured (the
//! runner, where failures become results; [`crate::harness::show`] for
//! bytes) and again where it is rendered (the human report, GitHub's
//! summary and annotations, JUnit XML). It changes nothing in ordinary
//! text, and applying it twice is applying it once.

use std::borrow::Cow;

/// `s` with every control character but `\n` and `\t` written out
/// (`\r`, `\x1b`; a C1 control or a bidi control as its UTF-8 bytes,
/// `\xc2\x9b`), and the first character of a line that would start a
/// workflow command (`::`, `##[`, after any white space) written as
/// `\x3a` or `\x23`. Line breaks stay, so a compiler message keeps its
/// shape.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !needs_escaping(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for line in s.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(|c: char| c.is_whitespace() && c != '\n').len();
        let (lead, rest) = line.split_at(indent);
        push_kept(&mut out, lead);
        let mut chars = rest.chars();
        if rest.starts_with("::") || rest.starts_with("##[") {
            let first = chars.next().expect("not empty");
            out.push_str(&format!("\\x{:02x}", first as u32));
        }
        push_kept(&mut out, chars.as_str());
    }
    Cow::Owned(out)
}

/// Append `s`, every character of it that [`is_hidden`] written out.
fn push_kept(out: &mut String, s: &str) {
    for c in s.chars() {
        if c == '\n' || c == '\t' || !is_hidden(c) {
            out.push(c);
        } else {
            push_escaped(out, c);
        }
    }
}

fn needs_escaping(s: &str) -> bool {
    s.chars().any(|c| c != '\n' && c != '\t' && is_hidden(c))
        || s.split('\n').any(|line| {
            let rest = line.trim_start_matches(char::is_whitespace);
            rest.starts_with("::") || rest.starts_with("##[")
        })
}

/// Characters that act on a terminal or reorder text instead of being
/// shown: the C0 and C1 controls, DEL, and the bidi controls ("Trojan
/// Source": U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069).
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `c` written out: `\n`, `\t`, `\r` by name, anything else as the
/// `\xNN` of its UTF-8 bytes (the notation of bytes that are not UTF-8).
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c => {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_left_alone() {
        for s in ["", "sigecho exited with status 1", "a\n\tb: c::d", "größer — 😀", "error[E0308]: x\n  --> a.rs:1:2"]
        {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s:?}");
        }
    }

    #[test]
    fn controls_are_written_out_and_lines_kept() {
        assert_eq!(escape("\x1b[2J\x1b[HTotal 600/600"), "\\x1b[2J\\x1b[HTotal 600/600");
        assert_eq!(escape("a\rb\x00c\x7fd\ne\tf"), "a\\rb\\x00c\\x7fd\ne\tf");
        // C1 controls (CSI) and bidi overrides as their UTF-8 bytes.
        assert_eq!(escape("\u{9b}2J"), "\\xc2\\x9b2J");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\xe2\\x80\\xaefed");
    }

    #[test]
    fn a_line_cannot_start_a_workflow_command() {
        assert_eq!(escape("::error::forged"), "\\x3a:error::forged");
        assert_eq!(escape("ok\n  ::error::forged\n##[error]old"), "ok\n  \\x3a:error::forged\n\\x23#[error]old");
        // White space GitHub trims, too; `::` inside a line is no command.
        assert_eq!(escape("\u{2003}::warning::x"), "\u{2003}\\x3a:warning::x");
        assert_eq!(escape("std::process::exit"), "std::process::exit");
        // Control characters in the indentation are written out.
        assert_eq!(escape("\x0b::x"), "\\x0b\\x3a:x");
    }

    #[test]
    fn escaping_twice_is_escaping_once() {
        for s in ["\x1b[31m::error::x\r\n##[group]", "a\u{85}b\u{2066}", "plain"] {
            let once = escape(s).into_owned();
            assert_eq!(escape(&once), once, "{s:?}");
            assert!(!once.chars().any(|c| c != '\n' && is_hidden(c)), "{once:?}");
        }
    }
}
