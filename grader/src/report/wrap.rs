//! Lines that fit a terminal: the human report's text broken at spaces to
//! a width, continuation lines indented under the text they continue (a
//! hanging indent: `got:       ` and then the text, and the next line
//! starts where the text did).
//!
//! Only the human report wraps; JSON, JUnit and Gradescope keep each text
//! whole. Width is counted in characters, not bytes (`größer`, `…` and
//! `✓` are one each), and the report's colour sequences count none.

use std::io::IsTerminal;

/// Columns when nothing says otherwise: not a terminal, or its width is
/// unknown.
pub const DEFAULT_WIDTH: usize = 80;

/// Fewer columns than this are taken as this many: below it a hanging
/// indent leaves no room for text.
const MIN_WIDTH: usize = 40;

/// The width the human report is wrapped to on stdout: `COLUMNS` when it
/// is set (the shell sets it for the terminal, and a user may set it), else
/// the terminal's width (`TIOCGWINSZ`), else [`DEFAULT_WIDTH`].
pub fn stdout_width() -> usize {
    let from_env = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|&c| c > 0);
    from_env.or_else(terminal_columns).unwrap_or(DEFAULT_WIDTH).max(MIN_WIDTH)
}

/// The columns of the terminal on stdout, if it is one.
fn terminal_columns() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which
    // points to a live local of that type; fd 1 is only read from.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// `prefix`, then `text` broken into lines of at most `width` columns; every
/// further line, and every line after a `\n` in `text`, starts with
/// `indent` spaces. The prefix is never broken. Lines break at spaces; a
/// word longer than a line is cut, but never inside a `\xNN`, a `\n` written
/// out, or a colour sequence. No newline at the end.
pub fn wrap(prefix: &str, text: &str, width: usize, indent: usize) -> String {
    lines(prefix, text, width, indent, true)
}

/// A shell command wrapped like [`wrap`] but copyable: broken only at
/// spaces, each broken line ending in ` \`. A word longer than a line (a
/// long path) is not cut; it overflows.
pub fn wrap_command(prefix: &str, command: &str, width: usize, indent: usize) -> String {
    lines(prefix, command, width.saturating_sub(2), indent, false).replace('\n', " \\\n")
}

fn lines(prefix: &str, text: &str, width: usize, indent: usize, cut: bool) -> String {
    let mut line =
        Line { out: String::from(prefix), col: visible(prefix), empty: true, continued: false, width, indent, cut };
    for (i, para) in text.split('\n').enumerate() {
        if i > 0 {
            line.break_line();
        }
        for (gap, word) in words(para) {
            line.push_word(gap, word);
        }
    }
    line.out
}

/// The text wrapped so far and where its last line stands.
struct Line {
    out: String,
    /// Columns used on the last line.
    col: usize,
    /// No word on the last line yet (only the prefix or the indent).
    empty: bool,
    /// The last line was begun by a break: spaces at its start go.
    continued: bool,
    width: usize,
    indent: usize,
    /// Cut a word longer than a line (else let it overflow).
    cut: bool,
}

impl Line {
    fn break_line(&mut self) {
        self.out.push('\n');
        self.out.push_str(&" ".repeat(self.indent));
        self.col = self.indent;
        self.empty = true;
        self.continued = true;
    }

    /// Room on a line of its own, at least a little: a hanging indent wider
    /// than the line would otherwise never make progress.
    fn room(&self) -> usize {
        self.width.saturating_sub(self.indent).max(MIN_WIDTH / 4)
    }

    fn push_word(&mut self, gap: usize, word: &str) {
        let w = visible(word);
        let gap = if self.empty && self.continued { 0 } else { gap };
        if self.col + gap + w <= self.width || (!self.cut && self.empty) {
            self.push(gap, word, w);
        } else if w <= self.room() || !self.cut {
            self.break_line();
            self.push(0, word, w);
        } else {
            // Longer than any line: fill this one, then cut.
            if self.col + gap + 1 >= self.width {
                self.break_line();
            } else {
                self.push(gap, "", 0);
            }
            for atom in atoms(word) {
                let aw = visible(atom);
                if self.col + aw > self.width && !self.empty {
                    self.break_line();
                }
                self.push(0, atom, aw);
            }
        }
    }

    fn push(&mut self, gap: usize, word: &str, w: usize) {
        self.out.push_str(&" ".repeat(gap));
        self.out.push_str(word);
        self.col += gap + w;
        self.empty &= w == 0;
    }
}

/// The words of `para` with the spaces before each (several spaces stay
/// several while they are inside a line).
fn words(para: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut gap = 0;
    for piece in para.split(' ') {
        if piece.is_empty() {
            gap += 1;
        } else {
            out.push((gap, piece));
            gap = 1;
        }
    }
    out
}

/// Columns `s` takes: its characters, less the colour sequences.
pub fn visible(s: &str) -> usize {
    atoms(s).iter().map(|a| if a.starts_with('\x1b') { 0 } else { a.chars().count() }).sum()
}

/// `s` cut where a line may break inside a word: between characters, but
/// not inside a colour sequence (`\x1b[…m`), a byte written out (`\xNN`) or
/// another backslash escape (`\n`, `` \` ``).
fn atoms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let len = match c {
            '\x1b' => rest.find(|c: char| c.is_ascii_alphabetic()).map_or(rest.len(), |i| i + 1),
            '\\' if rest.len() >= 4
                && rest.as_bytes()[1] == b'x'
                && rest.as_bytes()[2..4].iter().all(u8::is_ascii_hexdigit) =>
            {
                4
            }
            '\\' => 1 + rest[1..].chars().next().map_or(0, char::len_utf8),
            c => c.len_utf8(),
        };
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widest(s: &str) -> usize {
        s.lines().map(visible).max().unwrap_or(0)
    }

    #[test]
    fn breaks_at_spaces_with_a_hanging_indent() {
        let text = "nothing more on stdout after `ready 4242\\n` within 2.0 s; sigecho (pid 4242) was blocked in \
                    anon_pipe_read";
        let out = wrap("  got:       ", text, 50, 13);
        assert_eq!(
            out,
            "  got:       nothing more on stdout after `ready\n             4242\\n` within 2.0 s; sigecho (pid\n             4242) was blocked in anon_pipe_read"
        );
        assert!(widest(&out) <= 50);
    }

    #[test]
    fn short_text_and_line_breaks_in_it() {
        assert_eq!(wrap("  did:       ", "one", 80, 13), "  did:       one");
        assert_eq!(wrap("  did:       ", "one\ntwo", 80, 13), "  did:       one\n             two");
        // Several spaces inside a line stay; at a break they go.
        assert_eq!(wrap("", "a  b", 80, 2), "a  b");
        assert_eq!(wrap("", "aaaa bbbb", 6, 2), "aaaa\n  bbbb");
    }

    #[test]
    fn a_word_longer_than_a_line_is_cut_between_escapes() {
        let bytes = "`\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\x09\\x0a\\x0b`";
        let out = wrap("  got:  ", bytes, 30, 8);
        assert!(widest(&out) <= 30, "{out}");
        for line in out.lines() {
            // Every line ends on a whole `\xNN` (or the closing backtick).
            assert!(line.ends_with('`') || line.as_bytes()[line.len() - 4] == b'\\', "{out}");
        }
        assert_eq!(out.replace(&format!("\n{}", " ".repeat(8)), ""), format!("  got:  {bytes}"));
    }

    #[test]
    fn width_is_characters_and_colour_takes_none() {
        assert_eq!(visible("größer — ✓"), 10);
        assert_eq!(visible("\x1b[1msignals\x1b[0m"), 7);
        let coloured = "\x1b[1msignals/sigint-idle\x1b[0m — SIGINT while blocked in `read` is answered at once";
        let out = wrap("", coloured, 40, 2);
        assert!(widest(&out) <= 40, "{out}");
        assert!(out.starts_with("\x1b[1msignals/sigint-idle\x1b[0m — SIGINT"), "{out}");
    }

    #[test]
    fn a_command_breaks_at_spaces_only_and_stays_copyable() {
        let cmd = "cargo grade --bin sigecho=target/mutants/target/debug/signals--sa-restart--sigecho signals";
        let out = wrap_command("  rerun:     ", cmd, 60, 13);
        assert_eq!(
            out,
            "  rerun:     cargo grade --bin \\\n             \
             sigecho=target/mutants/target/debug/signals--sa-restart--sigecho \\\n             signals"
        );
        // Leading spaces of a line that was not broken stay (a compiler's
        // `   |`).
        assert_eq!(wrap("    ", "   | x", 80, 4), "       | x");
    }

    #[test]
    fn the_prefix_is_never_broken() {
        assert_eq!(wrap("  hint (general): ", "x", 10, 4), "  hint (general): \n    x");
    }
}
