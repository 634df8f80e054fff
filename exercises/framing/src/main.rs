//! `pipeframe` — the ipc-lab exercise `framing`. **This is the file you edit.**
//!
//! Read `exercises/framing/README.md` first. In short: a pipe is a *stream*
//! (slide "Streams"): the reader gets a sequence of bytes, not the writer's
//! messages. One `write` may arrive in several `read`s, several `write`s may
//! arrive in one `read`. "Wer Nachrichtengrenzen braucht, muss diese selbst
//! hinzufügen" — if you need message boundaries, you add them yourself.
//!
//! You add them like the slide "Bidirektionale Pipes" (`sendData` /
//! `receiveData`): every message (*frame*) is a 16-bit length in network byte
//! order (big-endian, what `htons` produces) followed by exactly that many
//! payload bytes:
//!
//! ```text
//! line "hi"   ->  00 02 68 69
//! line ""     ->  00 00                (a zero-length frame, NOT end of stream)
//! 258 bytes   ->  01 02 ...            (0x0102 = 258)
//! ```
//!
//! Subcommands:
//! - `pipeframe encode`: stdin lines → frames on stdout.
//! - `pipeframe decode`: frames on stdin → one line (payload + `\n`) each.
//! - `pipeframe relay [--child-max N]`: `pipe` + `fork`; the parent encodes
//!   stdin into the pipe, the child decodes it and prints `LEN PAYLOAD`.
//!
//! Exit status: 0 success, 1 usage or system error, 2 line too long for a
//! frame, 3 truncated frame, 4 the reader of our output has gone (EPIPE).
//!
//! Done for you (marked "(Provided.)"): argument parsing, error reporting
//! and exit codes ([`Failure`], [`report`]), buffered raw-descriptor I/O
//! ([`Input`], [`Output`], [`write_all`], [`read_line`]), [`Show`],
//! [`filter`] and [`wait_for`].
//!
//! Your work is marked `todo!()`, TODO 1–8. Suggested order:
//!
//! 1. [`encode_frame`] — one frame: the 16-bit length, then the payload,
//! 2. [`encode`] — one frame per input line.
//!
//!    Now `cargo grade framing --check encode` passes.
//!
//! 3. [`read_full`] — fill a buffer completely, however the bytes arrive,
//! 4. [`read_frame`] — one frame back: header, then exactly that payload,
//! 5. [`decode`] — one line per frame,
//! 6. [`relay`] — `pipe`, `fork`, close the unused ends, `waitpid`,
//! 7. [`relay_parent`] — encode stdin into the pipe,
//! 8. [`relay_child`] — decode the pipe to stdout.
//!
//! Rules of the game (the grader checks them from outside):
//! - never `println!`, never `unwrap()` on I/O: write through [`Output`] and
//!   pass errors up with `?`; a panic fails the check;
//! - all system calls through `nix` (`nix::unistd::{pipe, fork, read, write}`,
//!   `nix::sys::wait::waitpid`).

// Lets the untouched skeleton compile without warnings (`ptr_arg`: clippy
// would suggest `&mut [u8]` for `read_frame`'s payload until you call
// `resize` on it).
// Delete this line when you are done: the warnings it hides are useful.
#![allow(unused_variables, dead_code, unused_imports, clippy::ptr_arg)]

use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::ExitCode;

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, read, write, ForkResult, Pid};

/// The largest payload a frame can carry: its length must fit in a `u16`.
const MAX_PAYLOAD: usize = u16::MAX as usize;

/// How many bytes we ask `read` for at once, and how much output we collect
/// before writing it even when no read is about to block.
const CHUNK: usize = 64 * 1024;

const USAGE: &str = "usage: pipeframe encode | pipeframe decode | pipeframe relay [--child-max N]";

// ---------------------------------------------------------------------------
// Errors and exit codes (Provided.)
// ---------------------------------------------------------------------------

/// Everything that ends the program early. Each variant maps to one exit
/// status and one line on stderr (prefixed `pipeframe: `).
#[derive(Debug)]
enum Failure {
    /// Bad command line: exit 1.
    Usage(String),
    /// `encode` met a line longer than [`MAX_PAYLOAD`]: exit 2.
    LineTooLong,
    /// `decode` met end of input inside a frame (header or payload): exit 3.
    Truncated,
    /// A write failed with EPIPE: nobody reads our output any more: exit 4.
    ReaderGone,
    /// Any other failed system call: exit 1.
    Sys(&'static str, Errno),
    /// The relay child was killed by a signal: exit 128 + signal number.
    ChildKilled(nix::sys::signal::Signal),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) | Failure::Sys(..) => 1,
            Failure::LineTooLong => 2,
            Failure::Truncated => 3,
            Failure::ReaderGone => 4,
            Failure::ChildKilled(sig) => 128u8.wrapping_add(*sig as u8),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(why) => write!(f, "{why}; {USAGE}"),
            Failure::LineTooLong => {
                write!(f, "line longer than {MAX_PAYLOAD} bytes: a frame's 16-bit length cannot hold it")
            }
            Failure::Truncated => write!(f, "truncated frame"),
            Failure::ReaderGone => {
                write!(f, "the reader of our output has gone (EPIPE); stopping")
            }
            Failure::Sys(what, errno) => write!(f, "{what}: {errno}"),
            Failure::ChildKilled(sig) => write!(f, "relay child killed by {sig:?}"),
        }
    }
}

/// Turns a result into an exit status, printing the failure (if any) as one
/// line on stderr. Uses `writeln!` and ignores its result instead of
/// `eprintln!`, which would panic if stderr itself were a broken pipe.
fn report(result: Result<u8, Failure>) -> u8 {
    match result {
        Ok(code) => code,
        Err(failure) => {
            let _ = writeln!(std::io::stderr(), "pipeframe: {failure}");
            failure.exit_code()
        }
    }
}

// ---------------------------------------------------------------------------
// Plumbing: buffered input and output on raw file descriptors (Provided.)
// ---------------------------------------------------------------------------

/// Buffered reading from a raw descriptor (stdin or a pipe's read end).
///
/// `read` returns *whatever is there*, between 1 byte and the buffer size
/// (0 means end of file). This struct only keeps the bytes of the last chunk
/// that the caller has not consumed yet; reassembling frames from those bytes
/// is [`read_full`]'s job.
struct Input<'fd> {
    fd: BorrowedFd<'fd>,
    buf: Box<[u8]>,
    /// `buf[start..end]` holds the bytes read but not yet consumed.
    start: usize,
    end: usize,
}

impl<'fd> Input<'fd> {
    fn new(fd: BorrowedFd<'fd>) -> Self {
        Input { fd, buf: vec![0; CHUNK].into_boxed_slice(), start: 0, end: 0 }
    }

    /// Returns the unconsumed input bytes, reading a new chunk when none are
    /// left. An empty slice means end of file.
    ///
    /// Before a `read` that may block, everything collected in `output` is
    /// written out: a decoded line (or an encoded frame) must reach the other
    /// side as soon as it is complete, even if our input then stays silent
    /// for a long time.
    fn fill(&mut self, output: &mut Output) -> Result<&[u8], Failure> {
        if self.start == self.end {
            output.flush()?;
            let n = loop {
                match read(self.fd, &mut self.buf) {
                    Ok(n) => break n,
                    Err(Errno::EINTR) => continue,
                    Err(errno) => return Err(Failure::Sys("read", errno)),
                }
            };
            self.start = 0;
            self.end = n;
        }
        Ok(&self.buf[self.start..self.end])
    }

    /// Marks the first `n` bytes returned by [`Input::fill`] as used.
    fn consume(&mut self, n: usize) {
        self.start += n;
    }
}

/// Buffered writing to a raw descriptor (stdout or a pipe's write end).
struct Output<'fd> {
    fd: BorrowedFd<'fd>,
    buf: Vec<u8>,
}

impl<'fd> Output<'fd> {
    fn new(fd: BorrowedFd<'fd>) -> Self {
        Output { fd, buf: Vec::with_capacity(2 * CHUNK) }
    }

    /// Appends bytes; writes them out once a chunk's worth has collected.
    fn push(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out everything collected so far. On failure the unwritten
    /// bytes are dropped: there is nobody left to take them.
    fn flush(&mut self) -> Result<(), Failure> {
        let result = write_all(self.fd, &self.buf);
        self.buf.clear();
        result
    }
}

/// Writes all of `bytes` to `fd`.
///
/// `write` may write fewer bytes than asked (a *short write*, e.g. when a
/// pipe is nearly full), so we loop until everything is out.
///
/// EPIPE means the last reader of the pipe has closed it (slide "Pipes,
/// Sockets und Prozesse"). Normally the kernel kills the writer with SIGPIPE
/// first, but Rust's runtime sets SIGPIPE to "ignore" before `main`, so here
/// the error comes back from `write` instead. Either way we must stop:
/// nothing we produce can be delivered any more.
fn write_all(fd: BorrowedFd, mut bytes: &[u8]) -> Result<(), Failure> {
    while !bytes.is_empty() {
        match write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue,
            Err(Errno::EPIPE) => return Err(Failure::ReaderGone),
            Err(errno) => return Err(Failure::Sys("write", errno)),
        }
    }
    Ok(())
}

/// Reads the next line into `line` (cleared first, without its `\n`).
///
/// Returns `Ok(false)` at end of input when no line is left. An unterminated
/// last line is still a line. Stops early, with a line longer than
/// [`MAX_PAYLOAD`], when the line is too long to be framed anyway: no point in
/// buffering megabytes we are going to reject.
fn read_line(input: &mut Input, output: &mut Output, line: &mut Vec<u8>) -> Result<bool, Failure> {
    line.clear();
    loop {
        let chunk = input.fill(output)?;
        if chunk.is_empty() {
            return Ok(!line.is_empty());
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(newline) => {
                line.extend_from_slice(&chunk[..newline]);
                input.consume(newline + 1);
                return Ok(true);
            }
            None => {
                let n = chunk.len();
                line.extend_from_slice(chunk);
                input.consume(n);
                if line.len() > MAX_PAYLOAD {
                    return Ok(true);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Framing — your part starts here
// ---------------------------------------------------------------------------

/// TODO 1 — append one frame to `output`: the payload's length as two bytes
/// in network byte order, then the payload itself. This is the slide's
/// `sendData` (slide "Bidirektionale Pipes").
///
/// What to do:
/// 1. Turn `payload.len()` (a `usize`) into a `u16`. A payload longer than
///    65535 bytes ([`MAX_PAYLOAD`]) has no 16-bit length: return
///    `Err(Failure::LineTooLong)`. Use `u16::try_from(..)`, **not**
///    `payload.len() as u16`: `as` silently keeps the low 16 bits, so a
///    65536-byte line would go out with the header `00 00`.
/// 2. Push the header: `len.to_be_bytes()` is Rust's `htons` — the two bytes
///    most significant first, on every CPU (slide "Konvertierungsfunktionen
///    (2)": "Daten im Netz werden immer Big Endian übertragen"). Not
///    `to_ne_bytes` / `to_le_bytes`: on x86 those give `02 01` for 258.
/// 3. Push the payload. Use [`Output::push`] (and `?`) for both.
///
/// Example: `b"hi"` → `00 02 68 69`; `b""` → `00 00`.
fn encode_frame(payload: &[u8], output: &mut Output) -> Result<(), Failure> {
    todo!("encode_frame: header (u16::to_be_bytes) + payload")
}

/// TODO 3 — fill **all** of `buf` from the input and return how many bytes
/// it got: `buf.len()`, or fewer only if the input ended first.
///
/// This is the loop the slide's `receiveData` is missing. A `read` on a pipe
/// returns whatever is there *right now*: maybe one byte of your two-byte
/// header, maybe half a payload, maybe ten frames at once. So: loop while
/// `buf` is not full —
/// - `let chunk = input.fill(output)?;` gives the bytes at hand (it calls
///   `nix::unistd::read` for you when none are left, and writes out your
///   pending output first);
/// - an empty `chunk` means end of input: return what you have so far;
/// - otherwise copy as many bytes as still fit (`copy_from_slice`), then
///   `input.consume(n)` so they are not handed out again.
///
/// A zero-length `buf` is already full: return `Ok(0)` without reading.
fn read_full(input: &mut Input, output: &mut Output, buf: &mut [u8]) -> Result<usize, Failure> {
    todo!("read_full: loop until buf is full or the input ends")
}

/// TODO 4 — read the next frame's payload into `payload` (the slide's
/// `receiveData`, done right).
///
/// Returns `Ok(true)` for a frame and `Ok(false)` for end of input *between*
/// frames (the normal end of the stream).
///
/// What to do:
/// 1. [`read_full`] a `[u8; 2]` header. Got 0 bytes: clean end, `Ok(false)`.
///    Got 1 byte: the input ended inside the header: `Err(Failure::Truncated)`.
/// 2. `u16::from_be_bytes(header)` is `ntohs`: the payload length.
/// 3. `payload.resize(len, 0)` and [`read_full`] into it. Fewer than `len`
///    bytes: the input ended inside the payload: `Err(Failure::Truncated)`.
///
/// Pitfalls, all in the slide's code:
/// - it reads `sizeof(msg) - 1` bytes instead of `len`, swallowing the start
///   of the next frame — read exactly `len`;
/// - it assumes one `recv` returns the whole frame — [`read_full`] loops;
/// - a zero-length frame (an empty line) reads 0 payload bytes and is still
///   a frame. Only the *header* read decides "end of stream"; never treat
///   "0 payload bytes" as EOF.
fn read_frame(input: &mut Input, output: &mut Output, payload: &mut Vec<u8>) -> Result<bool, Failure> {
    todo!("read_frame: header, ntohs, payload; EOF between frames vs. truncated")
}

/// How `decode` prints each frame. (Provided.)
#[derive(Clone, Copy)]
enum Show {
    /// `PAYLOAD\n` (subcommand `decode`).
    Payload,
    /// `LEN PAYLOAD\n`, the slide's `printf("%u %s\n", len, msg)` (relay child).
    LenAndPayload,
}

/// TODO 2 — `pipeframe encode`: one frame per input line.
///
/// Loop: [`read_line`] into a `Vec<u8>` (it returns `Ok(false)` at end of
/// input), and [`encode_frame`] each line. That's all: the line never
/// includes its `\n`, an unterminated last line is still a line, and the
/// output is written for you (by [`Input::fill`] before each blocking read and
/// by [`filter`] at the end). Pass every error up with `?` — that is how a
/// too-long line becomes exit 2 and a vanished reader exit 4.
fn encode(input: &mut Input, output: &mut Output) -> Result<(), Failure> {
    todo!("encode: read_line + encode_frame until the input ends")
}

/// TODO 5 — `pipeframe decode` (and the relay child): one output line per
/// frame, until end of input or, if `max_frames` is `Some(n)`, until `n`
/// frames have been printed (then return `Ok(())` at once, without reading
/// more: that is `relay --child-max N`).
///
/// Loop: [`read_frame`] into a reusable `Vec<u8>`; `Ok(false)` → done. For
/// each frame push the payload and `b"\n"`; with [`Show::LenAndPayload`]
/// first push the length in decimal and a space (`format!("{} ", len)`),
/// so an empty payload prints `0 ` and a newline.
///
/// The payload is bytes, not necessarily UTF-8: push the bytes, do not turn
/// them into a `String`.
fn decode(input: &mut Input, output: &mut Output, show: Show, max_frames: Option<u64>) -> Result<(), Failure> {
    todo!("decode: read_frame until the input ends, print each payload")
}

/// Runs `body` from `input_fd` to `output_fd`, then writes out whatever
/// output is still collected — also when `body` failed: the frames/lines
/// produced before a too-long line or a truncated frame must be delivered.
/// (Provided.)
fn filter(
    input_fd: BorrowedFd,
    output_fd: BorrowedFd,
    body: impl FnOnce(&mut Input, &mut Output) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut input = Input::new(input_fd);
    let mut output = Output::new(output_fd);
    let result = body(&mut input, &mut output);
    let flushed = output.flush();
    result.and(flushed)
}

// ---------------------------------------------------------------------------
// relay: pipe + fork — your part
// ---------------------------------------------------------------------------

/// TODO 6 — `pipeframe relay [--child-max N]`: the slide "Bidirektionale
/// Pipes" with the two ends of the pipe in two processes. Returns the exit
/// status.
///
/// What to do:
/// 1. `let (read_end, write_end) = pipe()` (`nix::unistd::pipe`; map the
///    error with `Failure::Sys("pipe", errno)`). Both are `OwnedFd`s:
///    dropping one closes it (`drop(fd)` is `close(fd)`).
/// 2. Flush std's stdout (`std::io::stdout().flush()`) before forking: bytes
///    still sitting in a buffer would be copied into the child and printed
///    twice. (We print nothing before, but make it a habit.)
/// 3. `unsafe { fork() }` → `ForkResult::Child` / `ForkResult::Parent { child }`.
///    After the fork *both* processes hold *both* ends (slide "Pipes,
///    Sockets und Prozesse (5)": one kernel object, reference-counted).
/// 4. Child: `drop(write_end)` first, then run [`relay_child`], turn its
///    result into an exit status with [`report`], and end the process with
///    `std::process::exit(..)`. Never `return` from the child: that would run
///    the parent's code (the `match` in `run`, `main`...) a second time.
/// 5. Parent: `drop(read_end)` first, then [`relay_parent`] (which closes the
///    write end when stdin is done), then *always* reap the child with
///    [`wait_for`] — also when `relay_parent` failed — and only then return
///    the parent's failure, if any (`?`). Otherwise exit 0 (or the child's
///    non-zero exit code, if it failed).
///
/// Pitfalls ("Wichtig: Deskriptoren schließen, die in einem Prozess nicht
/// mehr gebraucht werden"):
/// - the child forgets to close the write end: when the parent closes its
///   copy the pipe still has a writer — the child itself — so the child's
///   `read` never returns 0, it never exits, and the parent waits forever;
/// - the parent forgets to close the read end: when the child exits early
///   (`--child-max`) the pipe still has a reader — the parent itself — so the
///   parent's `write` never fails with EPIPE; it fills the pipe and blocks;
/// - no `waitpid`: the child is left behind (a zombie, then an orphan) and
///   the parent may exit before the child has printed everything.
fn relay(child_max: Option<u64>) -> Result<u8, Failure> {
    todo!("relay: pipe, fork, close the unused ends, waitpid")
}

/// TODO 7 — the relay parent: encodes stdin lines into the pipe
/// ([`filter`] from stdin to `write_end` with [`encode`]), then closes the
/// write end (`drop`) — that close is what makes the child's `read` return 0
/// (EOF) — and returns the result.
///
/// When the child has already exited (`--child-max`), writing fails with
/// EPIPE: [`write_all`] turns it into `Failure::ReaderGone` (exit 4). Rust
/// ignores SIGPIPE, so the error comes back from `write` instead of killing
/// the process. Hint: `filter(std::io::stdin().as_fd(), write_end.as_fd(), encode)`
/// borrows `write_end`; keep `std::io::stdin()` in a variable first.
fn relay_parent(write_end: OwnedFd) -> Result<(), Failure> {
    todo!("relay_parent: encode stdin into the pipe, then close the write end")
}

/// TODO 8 — the relay child: decodes frames from `read_end` and prints them
/// on stdout as `LEN PAYLOAD` ([`filter`] with [`decode`] and
/// [`Show::LenAndPayload`], stopping after `child_max` frames). Returns exit
/// status 0 on success; the caller exits the process (which also closes the
/// read end).
fn relay_child(read_end: OwnedFd, child_max: Option<u64>) -> Result<u8, Failure> {
    todo!("relay_child: decode the pipe to stdout as LEN PAYLOAD")
}

/// `waitpid` for `child`, retrying if a signal interrupts the wait.
/// (Provided.)
fn wait_for(child: Pid) -> Result<WaitStatus, Failure> {
    loop {
        match waitpid(child, None) {
            Ok(status) => return Ok(status),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(Failure::Sys("waitpid", errno)),
        }
    }
}

// ---------------------------------------------------------------------------
// Command line (Provided.)
// ---------------------------------------------------------------------------

enum Command {
    Encode,
    Decode,
    Relay { child_max: Option<u64> },
    Help,
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Failure> {
    let args: Vec<String> = args
        .into_iter()
        .map(|arg| arg.into_string().map_err(|arg| Failure::Usage(format!("argument {arg:?} is not UTF-8"))))
        .collect::<Result<_, _>>()?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let parse_max =
        |n: &str| n.parse::<u64>().map_err(|_| Failure::Usage(format!("--child-max needs a number, not {n:?}")));
    match args.as_slice() {
        ["encode"] => Ok(Command::Encode),
        ["decode"] => Ok(Command::Decode),
        ["relay"] => Ok(Command::Relay { child_max: None }),
        ["relay", "--child-max", n] => Ok(Command::Relay { child_max: Some(parse_max(n)?) }),
        ["relay", opt] if opt.starts_with("--child-max=") => {
            Ok(Command::Relay { child_max: Some(parse_max(&opt["--child-max=".len()..])?) })
        }
        ["-h" | "--help"] => Ok(Command::Help),
        [] => Err(Failure::Usage("missing subcommand".into())),
        [cmd, ..] if !["encode", "decode", "relay"].contains(cmd) => {
            Err(Failure::Usage(format!("unknown subcommand {cmd:?}")))
        }
        _ => Err(Failure::Usage(format!("unexpected arguments {:?}", &args[1..]))),
    }
}

fn run(command: Command) -> Result<u8, Failure> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match command {
        Command::Encode => filter(stdin.as_fd(), stdout.as_fd(), encode).map(|()| 0),
        Command::Decode => {
            filter(stdin.as_fd(), stdout.as_fd(), |input, output| decode(input, output, Show::Payload, None))
                .map(|()| 0)
        }
        Command::Relay { child_max } => relay(child_max),
        Command::Help => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            Ok(0)
        }
    }
}

fn main() -> ExitCode {
    let code = report(parse_args(std::env::args_os().skip(1)).and_then(run));
    ExitCode::from(code)
}
