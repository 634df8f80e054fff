//! Named outcomes: why a check did not pass.
//!
//! A student reading a failure must see at once *what kind* of failure it
//! was — wrong bytes, a hang, a crash by which signal, a panic, a `todo!()`
//! still in place — before the details. Every way a wait or a comparison can
//! fail ends up as one [`Failure`] with a [`Kind`] (the verdict classes,
//! which live with the results the reports read).

use std::fmt;

use nix::sys::signal::Signal;

use crate::results::Location;
pub use crate::results::{Diagnosis, Kind};

/// Why a check failed: what came back and what was expected, and what that
/// means when the grader can tell. The runner adds what the grader did (its
/// transcript) and, without a diagnosis, the check's general hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: Kind,
    pub got: String,
    pub expected: String,
    /// The cause this way of failing shows, and the one hint for it (e.g.
    /// "the signal arrived and sigecho went back into `read`"). Shown
    /// instead of the check's general hint. Boxed: a `Step`'s error stays
    /// small.
    pub diagnosis: Option<Box<Diagnosis>>,
    /// Where in the program's source it happened, when the program said so
    /// (a `todo!()` or panic location), for reports to point at.
    pub location: Option<Location>,
}

impl Failure {
    pub fn new(kind: Kind, got: impl Into<String>, expected: impl Into<String>) -> Failure {
        Failure { kind, got: got.into(), expected: expected.into(), diagnosis: None, location: None }
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

    /// Say what the observation means and the one hint for that cause. It
    /// replaces a diagnosis made deeper down: the caller knows more (a
    /// check knows why a crash by SIGABRT happens in its test), so call it
    /// only where what was seen shows the cause.
    pub fn diagnosed(mut self, what_it_means: impl Into<String>, hint: impl Into<String>) -> Failure {
        self.diagnosis = Some(Box::new(Diagnosis::new(what_it_means, hint)));
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
/// notation for bytes, the one [`crate::text::escape`] uses). Long data is
/// cut in the middle, by what it shows, not by its bytes: a line of `\xNN`
/// is four times longer than its bytes, and either kind fits about one
/// terminal line.
pub fn show(bytes: &[u8]) -> String {
    /// Characters of escaped text shown at most, half from each end.
    const MAX: usize = 80;
    /// What cutting costs (the `…(N bytes more)…` between the ends): data
    /// only this much longer than [`MAX`] is shown whole.
    const CUT: usize = 24;
    let head = pieces(&bytes[..bytes.len().min(MAX + CUT + 1)]);
    if bytes.len() <= MAX + CUT && head.iter().map(|p| p.1.chars().count()).sum::<usize>() <= MAX + CUT {
        return format!("`{}`", head.into_iter().map(|p| p.1).collect::<String>());
    }
    let head = take_shown(head, MAX / 2);
    let from = char_start(bytes, bytes.len().saturating_sub(MAX).max(head.bytes));
    let mut tail = take_shown(pieces(&bytes[from..]).into_iter().rev().collect(), MAX / 2);
    tail.text.reverse();
    let more = bytes.len() - head.bytes - tail.bytes;
    format!("`{}`…({} bytes more)…`{}`", head.text.concat(), grouped(more), tail.text.concat())
}

/// The pieces taken from one end of the data.
struct Shown {
    /// The bytes they stand for.
    bytes: usize,
    text: Vec<String>,
}

/// Pieces taken in order while they fit in `budget` characters.
fn take_shown(pieces: Vec<(usize, String)>, budget: usize) -> Shown {
    let mut shown = Shown { bytes: 0, text: Vec::new() };
    let mut chars = 0;
    for (n, text) in pieces {
        chars += text.chars().count();
        if chars > budget {
            break;
        }
        shown.bytes += n;
        shown.text.push(text);
    }
    shown
}

/// Each character (or stray byte) of `bytes` with the bytes it takes and
/// how [`show`] writes it.
fn pieces(bytes: &[u8]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let mut s = String::new();
            match c {
                '`' => s.push_str("\\`"),
                c if c == '\n' || c == '\t' || crate::text::is_hidden(c) => crate::text::push_escaped(&mut s, c),
                c => s.push(c),
            }
            out.push((c.len_utf8(), s));
        }
        out.extend(chunk.invalid().iter().map(|b| (1, format!("\\x{b:02x}"))));
    }
    out
}

/// `at`, moved forward past UTF-8 continuation bytes (at most three): a cut
/// there does not split a character of text.
fn char_start(bytes: &[u8], at: usize) -> usize {
    let mut i = at;
    while i < bytes.len() && i < at + 3 && bytes[i] & 0xc0 == 0x80 {
        i += 1;
    }
    i
}

/// `bytes[from..to]` shown with [`show`], with `…` on each side where the
/// data goes on: a window into a long stream. Cut where characters start.
pub fn excerpt(bytes: &[u8], from: usize, to: usize) -> String {
    let from = char_start(bytes, from.min(bytes.len()));
    let to = char_start(bytes, to.min(bytes.len()).max(from));
    let before = if from > 0 { "…" } else { "" };
    let after = if to < bytes.len() { "…" } else { "" };
    format!("{before}{}{after}", show(&bytes[from..to]))
}

/// `n` with its thousands grouped by no-break spaces (`10 485 760`), which
/// the human report never breaks a line at.
pub fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{a0}');
        }
        out.push(d);
    }
    out
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
