//! `pipeframe` — reference solution of the ipc-lab exercise `framing`; its
//! contract is `exercises/framing/README.md`.
//!
//! A pipe is a *stream* (slide "Streams"): the kernel hands the reader a
//! sequence of bytes, not the writer's messages. One `write` may arrive in
//! several `read`s, several `write`s may arrive in one `read`. As the slide
//! says: "wer Nachrichtengrenzen braucht, muss diese selbst hinzufügen" — if
//! you need message boundaries, you have to add them yourself.
//!
//! This program adds them the way the slide "Bidirektionale Pipes" does with
//! `sendData`/`receiveData`: every message (*frame*) is a 16-bit length in
//! network byte order (big-endian, what `htons` produces) followed by exactly
//! that many payload bytes:
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
//! All I/O uses `nix::unistd::read`/`write` on raw descriptors with our own
//! buffers (see [`Input`] and [`Output`]): input is read in big chunks, so a
//! 10 MB stream costs a few hundred system calls, not millions; output is
//! collected and written out *before every read that may block*, so a frame
//! or line we have finished never sits in our buffer while we wait for input.

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
// Errors and exit codes
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
// Plumbing: buffered input and output on raw file descriptors
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
// Framing
// ---------------------------------------------------------------------------

/// Appends one frame to `output`: the payload's length as two big-endian
/// bytes, then the payload itself (slide "Bidirektionale Pipes", `sendData`).
///
/// `u16::to_be_bytes` is Rust's `htons`: it yields the bytes in network byte
/// order (most significant first) on every CPU (slide
/// "Konvertierungsfunktionen (2)"). A little-endian x86 would otherwise send
/// 258 as `02 01`, and a big-endian reader would see 513.
///
/// A payload longer than 65535 bytes cannot be framed: `try_from` refuses it
/// instead of silently keeping the low 16 bits the way `as u16` would.
fn encode_frame(payload: &[u8], output: &mut Output) -> Result<(), Failure> {
    let len = u16::try_from(payload.len()).map_err(|_| Failure::LineTooLong)?;
    output.push(&len.to_be_bytes())?;
    output.push(payload)
}

/// Fills all of `buf` from the input and returns how many bytes it got:
/// `buf.len()`, or fewer only if the input ended first.
///
/// This is the loop the slide's `receiveData` is missing: one `read` may
/// return fewer bytes than asked for (one byte at a time, if the writer
/// drips), so we keep reading until the buffer is full or we hit EOF.
fn read_full(input: &mut Input, output: &mut Output, buf: &mut [u8]) -> Result<usize, Failure> {
    let mut filled = 0;
    while filled < buf.len() {
        let chunk = input.fill(output)?;
        if chunk.is_empty() {
            return Ok(filled); // end of input
        }
        let n = chunk.len().min(buf.len() - filled);
        buf[filled..filled + n].copy_from_slice(&chunk[..n]);
        input.consume(n);
        filled += n;
    }
    Ok(filled)
}

/// Reads the next frame's payload into `payload` (slide `receiveData`,
/// done right).
///
/// Returns `Ok(true)` for a frame (possibly of length 0) and `Ok(false)` for
/// end of input *between* frames, the normal end of a stream. End of input
/// inside the header or the payload is [`Failure::Truncated`].
///
/// Note what decides "end of stream": the header read hitting EOF, never the
/// payload's size. A zero-length frame reads zero payload bytes and is still
/// a frame (an empty line).
fn read_frame(input: &mut Input, output: &mut Output, payload: &mut Vec<u8>) -> Result<bool, Failure> {
    let mut header = [0u8; 2];
    match read_full(input, output, &mut header)? {
        0 => return Ok(false),               // EOF between frames: the normal end
        1 => return Err(Failure::Truncated), // EOF inside the header
        _ => {}
    }
    // `from_be_bytes` is Rust's `ntohs`: network byte order to a number.
    let len = usize::from(u16::from_be_bytes(header));
    // The slide reads `sizeof(msg) - 1` bytes here; we read exactly `len`.
    payload.resize(len, 0);
    let got = read_full(input, output, payload)?;
    if got < len {
        return Err(Failure::Truncated); // EOF inside the payload
    }
    Ok(true)
}

/// How `decode` prints each frame.
#[derive(Clone, Copy)]
enum Show {
    /// `PAYLOAD\n` (subcommand `decode`).
    Payload,
    /// `LEN PAYLOAD\n`, the slide's `printf("%u %s\n", len, msg)` (relay child).
    LenAndPayload,
}

/// `encode`: one frame per input line.
fn encode(input: &mut Input, output: &mut Output) -> Result<(), Failure> {
    let mut line = Vec::new();
    while read_line(input, output, &mut line)? {
        encode_frame(&line, output)?;
    }
    Ok(())
}

/// `decode`: one output line per frame, until end of input or, with
/// `max_frames`, until that many frames have been printed.
fn decode(input: &mut Input, output: &mut Output, show: Show, max_frames: Option<u64>) -> Result<(), Failure> {
    let mut payload = Vec::new();
    let mut frames: u64 = 0;
    loop {
        if Some(frames) == max_frames {
            return Ok(());
        }
        if !read_frame(input, output, &mut payload)? {
            return Ok(());
        }
        frames += 1;
        if let Show::LenAndPayload = show {
            output.push(format!("{} ", payload.len()).as_bytes())?;
        }
        output.push(&payload)?;
        output.push(b"\n")?;
    }
}

/// Runs `body` from `input_fd` to `output_fd`, then writes out whatever
/// output is still collected — also when `body` failed: the frames/lines
/// produced before a too-long line or a truncated frame must be delivered.
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
// relay: pipe + fork
// ---------------------------------------------------------------------------

/// `relay`: the slide "Bidirektionale Pipes" with the two ends in two
/// processes. `pipe()` gives a read end and a write end; after `fork` both
/// processes hold both ends (slide "Pipes, Sockets und Prozesse (5)": the
/// kernel object is shared, reference-counted).
///
/// Each process must close the end it does not use:
/// - The child closes the write end. Otherwise the pipe keeps a writer (the
///   child itself!) after the parent closes its end, and the child's `read`
///   never returns 0: it waits forever for EOF.
/// - The parent closes the read end. Otherwise, when the child exits early
///   (`--child-max`), the pipe still has a reader (the parent) and the
///   parent's `write` never fails with EPIPE: it fills the pipe and blocks.
fn relay(child_max: Option<u64>) -> Result<u8, Failure> {
    let (read_end, write_end) = pipe().map_err(|errno| Failure::Sys("pipe", errno))?;

    // Anything still in std's stdout buffer would be copied into the child
    // and printed twice. We print nothing before the fork, but the habit is
    // cheap (NOTES: flush before `fork`).
    let _ = std::io::stdout().flush();

    // SAFETY: the program is single-threaded here, so the child may run any
    // code after `fork` (no lock can be held by a thread that does not exist
    // in the child).
    match unsafe { fork() }.map_err(|errno| Failure::Sys("fork", errno))? {
        ForkResult::Child => {
            // close(p[1]): or we never see EOF
            drop(write_end);
            let code = report(relay_child(read_end, child_max));
            // Never return into main: that is the parent's code path.
            // Our output is already written; `exit` ends this process only.
            std::process::exit(i32::from(code));
        }
        ForkResult::Parent { child } => {
            // close(p[0]): or a vanished child gives no EPIPE
            drop(read_end);
            // Encode stdin into the pipe; this closes the write end.
            let sent = relay_parent(write_end);
            // Reap the child in every case, also after a failure, so it does
            // not stay behind as a zombie.
            let status = wait_for(child)?;
            match (sent, status) {
                (Ok(()), WaitStatus::Exited(_, 0)) => Ok(0),
                // The child failed and has said why on stderr (say, its
                // stdout was closed). Our EPIPE, if any, is only the
                // consequence: report the child's status, not a second line.
                (Ok(()) | Err(Failure::ReaderGone), WaitStatus::Exited(_, code)) if code != 0 => {
                    Ok(u8::try_from(code).unwrap_or(1))
                }
                // Our own failure: e.g. EPIPE after `--child-max`, exit 4.
                (Err(failure), _) => Err(failure),
                (Ok(()), WaitStatus::Signaled(_, sig, _)) => Err(Failure::ChildKilled(sig)),
                (Ok(()), _) => Ok(1),
            }
        }
    }
}

/// Relay parent: encodes stdin lines into the pipe. Takes the write end by
/// value and closes it before returning: that close is the child's EOF.
fn relay_parent(write_end: OwnedFd) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    let result = filter(stdin.as_fd(), write_end.as_fd(), encode);
    drop(write_end); // close(p[1]): the child's read returns 0 now
    result
}

/// Relay child: decodes frames from the pipe and prints `LEN PAYLOAD` lines,
/// stopping after `child_max` frames if given. Exiting closes the read end.
fn relay_child(read_end: OwnedFd, child_max: Option<u64>) -> Result<u8, Failure> {
    let stdout = std::io::stdout();
    filter(read_end.as_fd(), stdout.as_fd(), |input, output| decode(input, output, Show::LenAndPayload, child_max))?;
    Ok(0)
}

/// `waitpid` for `child`, retrying if a signal interrupts the wait.
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
// Command line
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
