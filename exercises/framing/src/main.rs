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
//! 6. [`relay`] — a pipe between two processes, and who holds which end,
//! 7. [`relay_parent`] — encode stdin into the pipe,
//! 8. [`relay_child`] — decode the pipe to stdout.
//!
//! Each TODO's doc comment says what it must achieve and why. Stuck? Ask for
//! a hint: `cargo grade --hint framing` (the concept), then `--level 2` (the
//! API) and `--level 3` (nearly the code); `--check ID` for one check.
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
/// What it must achieve: `b"hi"` → `00 02 68 69`; `b""` → `00 00` (a
/// zero-length frame is data, not the end); a payload of 258 bytes starts
/// `01 02`. A payload longer than [`MAX_PAYLOAD`] has no 16-bit length:
/// [`Failure::LineTooLong`] (exit 2), and nothing of it is written
/// (`max-length`).
///
/// Pitfalls: a conversion that silently keeps the low 16 bits sends a
/// 65536-byte line with the header `00 00`; the byte order of the CPU
/// (little-endian on x86) sends 258 as `02 01`. "Daten im Netz werden immer
/// Big Endian übertragen" (slide "Konvertierungsfunktionen (2)") — and a pipe
/// between two programs is no different.
///
/// Look up: `u16::try_from`, the `to_*_bytes` methods of `u16` (Rust's
/// `htons`); [`Output::push`].
fn encode_frame(payload: &[u8], output: &mut Output) -> Result<(), Failure> {
    todo!("TODO 1: one frame")
}

/// TODO 3 — fill **all** of `buf` from the input and return how many bytes
/// it got: `buf.len()`, or fewer only if the input ended first.
///
/// This is the loop the slide's `receiveData` is missing. A `read` on a
/// pipe returns whatever is there *right now*: maybe one byte of your
/// two-byte header, maybe half a payload, maybe ten frames at once
/// (`decode-drip`, `decode-packed`). Bytes you take must be marked as used,
/// and bytes you do not take must stay for the next call.
///
/// An empty `buf` is already full: nothing to read.
///
/// Look up: [`Input::fill`] (it reads — and first writes out the pending
/// output — when no bytes are at hand; an empty slice means end of input)
/// and [`Input::consume`]; `<[u8]>::copy_from_slice`.
fn read_full(input: &mut Input, output: &mut Output, buf: &mut [u8]) -> Result<usize, Failure> {
    todo!("TODO 3: fill the buffer")
}

/// TODO 4 — read the next frame's payload into `payload` (the slide's
/// `receiveData`, done right).
///
/// What it must achieve: `Ok(true)` with `payload` holding exactly the
/// frame's bytes; `Ok(false)` when the input ends *between* frames (the
/// normal end of the stream); [`Failure::Truncated`] when it ends inside a
/// frame — inside the header or inside the payload (`truncated`).
///
/// Pitfalls, all in the slide's code:
/// - it reads `sizeof(msg) - 1` bytes instead of the frame's length,
///   swallowing the start of the next frame;
/// - it assumes one `recv` returns the whole frame;
/// - a zero-length frame (an empty line) has no payload bytes and is still
///   a frame. Only the header decides "end of stream" (`zero-length`).
///
/// Look up: [`read_full`]; the `from_*_bytes` constructors of `u16` (Rust's
/// `ntohs`); `Vec::resize`.
fn read_frame(input: &mut Input, output: &mut Output, payload: &mut Vec<u8>) -> Result<bool, Failure> {
    todo!("TODO 4: one frame back")
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
/// What it must achieve: every line of the input becomes one frame, in
/// order; the line never includes its `\n`; an unterminated last line is
/// still a line. A line too long for a frame ends the program with exit 2,
/// a reader that has gone with exit 4 — pass the errors up, the provided
/// code turns them into the status. The output is written for you (by
/// [`Input::fill`] before each blocking read, and by [`filter`] at the
/// end).
///
/// Look up: [`read_line`], [`encode_frame`].
fn encode(input: &mut Input, output: &mut Output) -> Result<(), Failure> {
    todo!("TODO 2: encode every line")
}

/// TODO 5 — `pipeframe decode` (and the relay child): one output line per
/// frame.
///
/// What it must achieve: for each frame its payload and a `\n`; with
/// [`Show::LenAndPayload`] the length in decimal and a space before it
/// (so an empty payload prints `0 ` and a newline). Until the input ends,
/// or — if `max_frames` is `Some(n)` — until `n` frames have been printed:
/// then return at once, without reading more (that is `relay --child-max
/// N`). A frame's line appears as soon as the frame is complete
/// (`decode-drip`).
///
/// The payload is bytes, not necessarily UTF-8: never turn it into a
/// `String`.
///
/// Look up: [`read_frame`], [`Output::push`], [`Show`].
fn decode(input: &mut Input, output: &mut Output, show: Show, max_frames: Option<u64>) -> Result<(), Failure> {
    todo!("TODO 5: decode every frame")
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
/// Pipes" with the pipe's two ends in two processes. Returns the exit
/// status.
///
/// What it must achieve: a pipe; a child that decodes what comes through it
/// ([`relay_child`]) and ends with its own exit status; a parent that
/// encodes stdin into it ([`relay_parent`]), then reaps the child — in
/// every case, also when its own part failed — and returns: 0 when both
/// succeeded; its own failure if it had one (EPIPE after `--child-max` is
/// exit 4, `relay-child-max`); the child's non-zero exit status when only
/// the child failed. The child must never *return* from here: it would run
/// the parent's code in `main` a second time.
///
/// The heart of the exercise is the slide "Pipes, Sockets und Prozesse (5)":
/// after `fork` *both* processes hold *both* ends, one kernel object with a
/// reference count. "Wichtig: Deskriptoren schließen, die in einem Prozess
/// nicht mehr gebraucht werden":
/// - a reader sees EOF only when *no* process holds the write end any more
///   — think about who holds it in the child (`relay-eof` hangs);
/// - a writer gets EPIPE only when *no* process holds the read end — think
///   about who holds it in the parent once the child has gone;
/// - a child nobody waits for stays a zombie, and the parent may exit
///   before the child has printed everything.
///
/// Flush std's stdout before the `fork` (buffered bytes would be printed
/// twice); `fork` is `unsafe` — say in a `// SAFETY:` comment why it is fine
/// here (one thread).
///
/// Look up: `nix::unistd::{pipe, fork, ForkResult}`, `man 2 pipe`,
/// `man 7 pipe`; `OwnedFd` (dropping one closes it); [`wait_for`],
/// `WaitStatus`; [`report`] and `std::process::exit` for the child.
fn relay(child_max: Option<u64>) -> Result<u8, Failure> {
    todo!("TODO 6: pipe, fork, both sides")
}

/// TODO 7 — the relay parent: encode stdin into the pipe, then close the
/// write end, and return the result.
///
/// Why close it here: that close is what the child's `read` is waiting for
/// — EOF comes when the last write end is gone. When the child has already
/// exited (`--child-max`), writing fails with EPIPE: [`write_all`] turns it
/// into [`Failure::ReaderGone`] (exit 4). (Rust ignores SIGPIPE, so the
/// error comes back from `write` instead of killing the process.)
///
/// Look up: [`filter`], [`encode`]; `AsFd::as_fd` to lend a descriptor
/// (stdin's or the pipe's) without giving it away.
fn relay_parent(write_end: OwnedFd) -> Result<(), Failure> {
    todo!("TODO 7: encode stdin into the pipe")
}

/// TODO 8 — the relay child: decode frames from `read_end` and print them
/// on stdout as `LEN PAYLOAD`, stopping after `child_max` frames if it is
/// given. Returns exit status 0 on success; the caller exits the process
/// (which also closes the read end).
///
/// Look up: [`filter`], [`decode`], [`Show::LenAndPayload`].
fn relay_child(read_end: OwnedFd, child_max: Option<u64>) -> Result<u8, Failure> {
    todo!("TODO 8: decode the pipe to stdout")
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
