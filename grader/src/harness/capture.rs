//! What came back from a program, on a pipe or a socket: kept up to a cap,
//! counted beyond it, and handed to checks line by line or all at once.

use std::io::{ErrorKind, Read};

use super::failure::{excerpt, show, size};

/// Bytes received from one source.
#[derive(Debug)]
pub struct Capture {
    pub buf: Vec<u8>,
    /// Bytes of `buf` already handed to the check.
    pub taken: usize,
    /// Every byte received, also those beyond the cap.
    pub total: usize,
    pub cap: usize,
    pub eof: bool,
}

impl Capture {
    pub fn new(cap: usize) -> Capture {
        Capture { buf: Vec::new(), taken: 0, total: 0, cap, eof: false }
    }

    /// Read what `src` has without blocking (it must be non-blocking): at
    /// most a few MiB per call, so a wait loop stays responsive to its
    /// other descriptors. EOF, and an error such as a reset, end the source.
    pub fn drain_from(&mut self, src: &mut impl Read) {
        if self.eof {
            return;
        }
        let mut chunk = [0u8; 64 * 1024];
        for _ in 0..64 {
            match src.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => {
                    let room = self.cap.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..n.min(room)]);
                    self.total += n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.eof = true;
                    return;
                }
            }
        }
    }

    pub fn overflowed(&self) -> bool {
        self.total > self.cap
    }

    /// Received and not yet taken.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.taken..]
    }

    pub fn take_all(&mut self) -> Vec<u8> {
        let v = self.pending().to_vec();
        self.taken = self.buf.len();
        v
    }

    /// What was received, for a failure message (`place` says where:
    /// "on stdout"): all of it, the part the check had already taken (its
    /// end) and what came after it. Saying only what came after would read
    /// as if that were all that came.
    pub fn describe(&self, place: &str) -> String {
        /// Bytes of what was taken shown before what came after it.
        const TAKEN_TAIL: usize = 32;
        let taken = &self.buf[..self.taken];
        let before = excerpt(taken, taken.len().saturating_sub(TAKEN_TAIL), taken.len());
        let mut s = match (taken.is_empty(), self.pending().is_empty()) {
            (true, true) => format!("nothing {place}"),
            (false, true) => format!("nothing more {place} after {before}"),
            (true, false) => format!("{} {place}", show(self.pending())),
            (false, false) => format!("{before}, then {} {place}", show(self.pending())),
        };
        if self.total > self.buf.len() {
            s.push_str(&format!(" ({} in all; the grader kept the first {})", size(self.total), size(self.buf.len())));
        }
        s
    }

    /// The next complete line without its `\n`, if one is there.
    pub fn try_line(&mut self) -> Option<Vec<u8>> {
        let pending = self.pending();
        let nl = pending.iter().position(|&b| b == b'\n')?;
        let line = pending[..nl].to_vec();
        self.taken += nl + 1;
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(bytes: &[u8], lines_taken: usize) -> Capture {
        let mut c = Capture::new(1 << 20);
        c.drain_from(&mut &bytes[..]);
        for _ in 0..lines_taken {
            c.try_line();
        }
        c
    }

    #[test]
    fn describe_says_what_came_in_all_and_what_came_after() {
        assert_eq!(received(b"", 0).describe("on stdout"), "nothing on stdout");
        assert_eq!(received(b"ready 42\n", 1).describe("on stdout"), "nothing more on stdout after `ready 42\\n`");
        assert_eq!(received(b"abc", 0).describe("on stdout"), "`abc` on stdout");
        // What the check took is not left out: `5 hello` did arrive.
        assert_eq!(received(b"5 hello\n0 \n", 1).describe("on stdout"), "`5 hello\\n`, then `0 \\n` on stdout");
        let long: Vec<u8> = (0..100).flat_map(|i| format!("line {i:03}\n").into_bytes()).collect();
        let d = received(&long, 99).describe("on stdout");
        assert!(d.starts_with("…`") && d.ends_with("line 098\\n`, then `line 099\\n` on stdout"), "{d}");
    }
}
