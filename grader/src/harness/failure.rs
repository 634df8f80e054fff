//! Named outcomes: why a check did not pass.
//!
//! A student reading a failure must see at once *what kind* of failure it
//! was — wrong bytes, a hang, a crash by which signal, a panic, a `todo!()`
//! still in place — before the details. Every way a wait or a comparison can
//! fail ends up as one [`Failure`] with a [`Kind`] (the verdict classes,
//! which live with the results the reports read).

use std::fmt;

use nix::sys::signal::Signal;

pub use crate::results::Kind;
use crate::results::Location;

/// Why a check failed: what came back and what was expected. The check adds
/// what the grader did (its transcript) and the hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: Kind,
    pub got: String,
    pub expected: String,
    /// A hint for this particular way of failing, shown before the check's
    /// general hint (e.g. "std's read_line retries EINTR").
    pub hint: Option<String>,
    /// Where in the program's source it happened, when the program said so
    /// (a `todo!()` or panic location), for reports to point at.
    pub location: Option<Location>,
}

impl Failure {
    pub fn new(kind: Kind, got: impl Into<String>, expected: impl Into<String>) -> Failure {
        Failure { kind, got: got.into(), expected: expected.into(), hint: None, location: None }
    }

    /// The program answered, but wrongly.
    pub fn wrong(got: impl Into<String>, expected: impl Into<String>) -> Failure {
        Failure::new(Kind::WrongOutput, got, expected)
    }

    /// The grader itself could not do its job (a fault, not a verdict).
    pub fn grader(what: impl Into<String>) -> Failure {
        Failure::new(Kind::GraderError, what, "the grader to be able to run this check")
    }

    /// The check cannot run on this machine; `why` says what is missing.
    pub fn skipped(why: impl Into<String>) -> Failure {
        Failure::new(Kind::Skipped, why, "a machine where this check can run")
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_location(mut self, location: Option<Location>) -> Failure {
        self.location = location;
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: got {}; expected {}", self.kind.label(), self.got, self.expected)
    }
}

/// `Result` of a check step.
pub type Step<T = ()> = Result<T, Failure>;

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => write!(f, "killed by {}", signal_name(*s)),
        }
    }
}

/// `SIGPIPE` for 13; `signal 40` for what has no name.
pub fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("signal {sig}"))
}

/// Bytes as a short, readable, escaped string in backticks: text stays
/// text; `\n`, `\t`, `\r` and the backtick are written out, every other
/// control character and every byte that is not UTF-8 is `\xNN` (one
/// notation for bytes, the one [`crate::text::escape`] uses); long data is
/// cut in the middle.
pub fn show(bytes: &[u8]) -> String {
    const MAX: usize = 160;
    let esc = |b: &[u8]| -> String {
        let mut s = String::new();
        for chunk in b.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '`' => s.push_str("\\`"),
                    c if c == '\n' || c == '\t' || crate::text::is_hidden(c) => crate::text::push_escaped(&mut s, c),
                    c => s.push(c),
                }
            }
            for b in chunk.invalid() {
                s.push_str(&format!("\\x{b:02x}"));
            }
        }
        s
    };
    if bytes.len() <= MAX {
        format!("`{}`", esc(bytes))
    } else {
        let head = &bytes[..MAX / 2];
        let tail = &bytes[bytes.len() - MAX / 2..];
        format!("`{}`…({} bytes more)…`{}`", esc(head), bytes.len() - MAX, esc(tail))
    }
}

/// Human size: `512 bytes`, `16 KiB`, `16 MiB`.
pub fn size(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_writes_every_byte_that_is_not_text_as_xnn() {
        assert_eq!(show(b"a\x00\x1b[2J\xff\n\t\r`b"), "`a\\x00\\x1b[2J\\xff\\n\\t\\r\\`b`");
        // A C1 control is written as its UTF-8 bytes, like a stray byte.
        assert_eq!(show("\u{9b}".as_bytes()), "`\\xc2\\x9b`");
        assert_eq!(show("größer".as_bytes()), "`größer`");
    }
}
