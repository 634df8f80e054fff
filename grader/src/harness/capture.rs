//! What came back from a program, on a pipe or a socket: kept up to a cap,
//! counted beyond it, and handed to checks line by line or all at once.

use std::io::{ErrorKind, Read};

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

    /// The next complete line without its `\n`, if one is there.
    pub fn try_line(&mut self) -> Option<Vec<u8>> {
        let pending = self.pending();
        let nl = pending.iter().position(|&b| b == b'\n')?;
        let line = pending[..nl].to_vec();
        self.taken += nl + 1;
        Some(line)
    }
}
