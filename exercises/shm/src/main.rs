//! `shm-handshake` — ipc-lab exercise `shm`. Read `README.md` next to this
//! crate first; grade with `cargo grade shm`.
//!
//! Lecture: slide *Implizite Kommunikation* and the slides *Beispiel:
//! Gemeinsamer Speicher (1/2)* and *(2/2)* — the C program with `mmap`,
//! `signal (SIGUSR1, child_handler)`, `while (!message) usleep (1000);`,
//! `kill (pid, SIGUSR1)` and `wait (NULL)`. Your program does what that C
//! program does — a parent hands a message to its child through shared
//! memory and gets an answer back — but without its busy waiting and without
//! its races.
//!
//! ```text
//! shm-handshake [--delay-ms N] [--] [MESSAGE]
//! ```
//!
//! The argument parsing, the output helpers, [`SharedMemory::bytes`] /
//! [`SharedMemory::bytes_mut`], [`wait_for`] and `main` are done. Your work
//! is marked with `todo!()`:
//!
//! 1. [`SharedMemory::map`] — memory that parent and child share,
//! 2. [`write_message`] — put a message into it, so it can be read back,
//! 3. [`read_message`] — get it out again,
//! 4. [`block_sigusr1`] — make an early SIGUSR1 wait instead of kill,
//! 5. [`run`] — set the stage, `fork`,
//! 6. [`child`] — wait for the notification, read, reply,
//! 7. [`parent`] — write, notify, wait for the answer.
//!
//! The big idea: shared memory is *implicit* communication. Both processes
//! see the same bytes, no copying needed — but nobody tells the child *when*
//! the message is there ("Weitere (schmalbandige) Synchronisation ist
//! notwendig"). The signal SIGUSR1 is that notification: the shared memory
//! carries the payload, the signal only says "now". And the notification
//! back is the child's `exit`, which the parent waits for.
//!
//! The trap: the parent may send the signal *before* the child is ready for
//! it — even before the child has run a single instruction — and SIGUSR1's
//! default action kills the child. The way out is to have the kernel *hold*
//! the signal from before the `fork` until the child takes it: no handler,
//! no flag, no busy waiting, nothing lost.
//!
//! Each TODO's doc comment says what it must achieve and why. Stuck? Ask for
//! a hint: `cargo grade --hint shm` (the concept), then `--level 2` (the
//! API) and `--level 3` (nearly the code); `--check ID` for one check.

// Lets the unfinished skeleton compile without warnings.
// Delete this line when you are done.
#![allow(unused_variables, unused_mut, unused_imports, dead_code)]

use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt as _;
use std::process::ExitCode;
use std::ptr::NonNull;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};

/// Size of the shared mapping: one page.
const SHM_SIZE: NonZeroUsize = match NonZeroUsize::new(4096) {
    Some(size) => size,
    None => unreachable!(),
};

/// The longest MESSAGE accepted (checked by the provided [`parse_args`]).
/// With its terminator it fits in the mapping with room to spare.
const MAX_MESSAGE: usize = 2048;

const USAGE: &str = "usage: shm-handshake [--delay-ms N] [--] [MESSAGE]";

// ---------------------------------------------------------------------------
// Errors (Provided.)
// ---------------------------------------------------------------------------

/// Everything that ends the program early; each becomes one line on stderr
/// (prefixed `shm-handshake: `) and exit status 1. (Provided.)
///
/// Map a nix error with `.map_err(|errno| Failure::Sys("mmap", errno))?`
/// (name the system call).
enum Failure {
    /// Bad command line.
    Usage(String),
    /// A system call failed.
    Sys(&'static str, Errno),
    /// Writing stdout failed (e.g. EPIPE: the reader has gone).
    Output(std::io::Error),
    /// The child exited with this status, not 0. It has said why on stderr
    /// itself, so the parent adds no second line.
    ChildFailed(u8),
    /// The child ended otherwise (e.g. killed by a signal).
    Child(WaitStatus),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(why) => write!(f, "{why}; {USAGE}"),
            Failure::Sys(what, errno) => write!(f, "{what}: {errno}"),
            Failure::Output(e) => write!(f, "writing stdout: {e}"),
            Failure::ChildFailed(code) => write!(f, "the child exited with status {code}"),
            Failure::Child(WaitStatus::Signaled(pid, signal, _)) => write!(f, "child {pid} was killed by {signal}"),
            Failure::Child(status) => write!(f, "child ended unexpectedly: {status:?}"),
        }
    }
}

/// Turns a result into an exit status, printing the failure (if any) as one
/// line on stderr. (Provided.)
fn report(result: Result<(), Failure>) -> u8 {
    match result {
        Ok(()) => 0,
        // The child has already reported on stderr: one line is enough.
        Err(Failure::ChildFailed(code)) => code,
        Err(failure) => {
            let _ = writeln!(std::io::stderr(), "shm-handshake: {failure}");
            1
        }
    }
}

// ---------------------------------------------------------------------------
// The shared memory
// ---------------------------------------------------------------------------

/// A shared anonymous mapping, inherited by the child through `fork`.
/// It is never unmapped explicitly: `exit` unmaps everything.
struct SharedMemory {
    base: NonNull<u8>,
    len: usize,
}

impl SharedMemory {
    /// TODO 1 — map `len` bytes of memory that parent and child will share.
    ///
    /// What it must achieve: a readable and writable mapping of `len` bytes,
    /// backed by no file, that stays *one* piece of memory when the process
    /// forks — what the parent writes after the `fork`, the child reads, and
    /// the other way round. It is the `mmap` of the slide *Beispiel:
    /// Gemeinsamer Speicher (1/2)*.
    ///
    /// The pitfall: of the two kinds of mapping, one is duplicated at `fork`
    /// (copy-on-write): each process then writes its own copy, and nothing ever
    /// arrives. `man 2 mmap` says which is which.
    ///
    /// `unsafe`: `mmap` can replace memory in use when it is given an address;
    /// say in a `// SAFETY:` comment why yours cannot. The slide compares the
    /// result with `NULL`, but `mmap` reports failure as `MAP_FAILED`; nix
    /// returns an `Err` — name the call in the [`Failure`].
    ///
    /// Look up: `nix::sys::mman::{mmap_anonymous, ProtFlags, MapFlags}`,
    /// `man 2 mmap`; `NonNull::cast` for the pointer type.
    fn map(len: NonZeroUsize) -> Result<SharedMemory, Failure> {
        todo!("TODO 1: map shared memory")
    }

    /// The shared bytes, to read. (Provided.)
    ///
    /// Keep the borrow short: never hold a slice from here across `kill`,
    /// `sigwait` or `waitpid`. A Rust reference promises the compiler that
    /// nobody else changes the bytes while it lives — but the other process
    /// does exactly that while you wait. Take a fresh slice after each wait.
    fn bytes(&self) -> &[u8] {
        // SAFETY: `base` points to `len` bytes that stay mapped for the life
        // of the process; the other process writes them only while this one
        // waits, never while a borrow handed out here is in use.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }

    /// The shared bytes, to write. Keep the borrow short (see
    /// [`Self::bytes`]). (Provided.)
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes the borrow unique within
        // this process.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), self.len) }
    }
}

/// TODO 2 — write `msg` into the shared bytes `shm`, *terminated*, so that
/// [`read_message`] gets exactly `msg` back.
///
/// Why the terminator: the memory still holds what was written before. The
/// child's reply `Got it [PPID] -- exiting` is shorter than a long message;
/// written over it without an end mark, the reply is read back with the
/// tail of the message still attached (`long-message`). Like the slide's
/// `sprintf`, end the text with a NUL byte. (Command-line arguments cannot
/// contain NUL bytes, so a NUL can end any MESSAGE. Arbitrary binary data
/// would need a length field instead.)
///
/// Never panic: `msg` fits (at most [`MAX_MESSAGE`] bytes in 4096), but if
/// it ever did not, cut it short rather than index out of bounds.
///
/// Look up: the slice methods `copy_from_slice` and `get_mut`.
fn write_message(shm: &mut [u8], msg: &[u8]) {
    todo!("TODO 2: write a terminated message")
}

/// TODO 3 — the message in the shared bytes `shm`: the bytes before the
/// first NUL byte, or all of `shm` if there is none. Never more than `shm`,
/// never a panic.
///
/// Look up: `Iterator::position`; slicing.
fn read_message(shm: &[u8]) -> &[u8] {
    todo!("TODO 3: read the message back")
}

// ---------------------------------------------------------------------------
// Output helpers (Provided.)
// ---------------------------------------------------------------------------

/// Writes the concatenation of `parts` and a newline to stdout as one
/// `write`, and flushes it at once. (Provided.)
///
/// Parent and child share one stdout. One `write` per line (at most
/// `PIPE_BUF` = 4096 bytes) keeps their lines from interleaving. Works on
/// bytes: MESSAGE need not be UTF-8.
fn print_line(parts: &[&[u8]]) -> Result<(), Failure> {
    let mut line = Vec::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 1);
    for part in parts {
        line.extend_from_slice(part);
    }
    line.push(b'\n');
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&line).and_then(|()| stdout.flush()).map_err(Failure::Output)
}

/// `child CPID: waiting for message...` (Provided.)
fn say_waiting(cpid: Pid) -> Result<(), Failure> {
    print_line(&[format!("child {cpid}: waiting for message...").as_bytes()])
}

/// `child CPID reading from shmem: MSG` (Provided.)
fn say_reading(cpid: Pid, msg: &[u8]) -> Result<(), Failure> {
    print_line(&[format!("child {cpid} reading from shmem: ").as_bytes(), msg])
}

/// `child CPID writing to shmem: MSG` (Provided.)
fn say_writing(cpid: Pid, msg: &[u8]) -> Result<(), Failure> {
    print_line(&[format!("child {cpid} writing to shmem: ").as_bytes(), msg])
}

/// `Message from child CPID: MSG` (Provided.)
fn say_reply(cpid: Pid, msg: &[u8]) -> Result<(), Failure> {
    print_line(&[format!("Message from child {cpid}: ").as_bytes(), msg])
}

/// The child's answer: `Got it [PPID] -- exiting`. (Provided.)
fn reply_text(ppid: Pid) -> Vec<u8> {
    format!("Got it [{ppid}] -- exiting").into_bytes()
}

/// The parent's message when none is given:
/// `Parent PPID sending message to child CPID`. (Provided.)
fn default_message(ppid: Pid, cpid: Pid) -> Vec<u8> {
    format!("Parent {ppid} sending message to child {cpid}").into_bytes()
}

// ---------------------------------------------------------------------------
// The handshake — your part
// ---------------------------------------------------------------------------

/// TODO 4 — make sure a SIGUSR1 sent to the child at any moment is neither
/// lost nor deadly; return the set of signals the child will wait for.
///
/// What it must achieve: from the moment this returns, SIGUSR1 is *held*
/// by the kernel instead of being delivered: it stays pending until the
/// process takes it. Done before `fork`, the child inherits that state — so
/// a SIGUSR1 the parent sends at once, before the child has run a single
/// instruction, simply waits for it (`race`).
///
/// Why not like the slide (`signal (SIGUSR1, child_handler)` + a flag)?
/// - A handler installed by the child *after* `fork` comes too late when
///   the parent is quick: SIGUSR1's default action *terminates* the child
///   (measured: 194 of 200 children killed).
/// - A handler installed before `fork` survives that, but then the child
///   must notice the flag: polling it (`usleep`) is busy waiting, and
///   `while (!flag) pause ();` loses the wake-up if the signal comes between
///   the test and `pause` — the child sleeps forever.
///
/// The parent holds SIGUSR1 too; that is harmless (the slide sets
/// `SIG_IGN` in the parent so that a stray SIGUSR1 cannot kill it).
///
/// Look up: "blocked" and "pending" in `man 7 signal`; `man 2 sigprocmask`;
/// `nix::sys::signal::{SigSet, sigprocmask, SigmaskHow}`.
fn block_sigusr1() -> Result<SigSet, Failure> {
    todo!("TODO 4: hold SIGUSR1")
}

/// TODO 5 — set the stage, fork, and play both parts. Only the parent
/// returns.
///
/// What it must achieve: one shared mapping of [`SHM_SIZE`] bytes and
/// SIGUSR1 held (TODO 1, TODO 4), then a `fork`. The child runs [`child`],
/// has its failure (if any) printed by [`report`] and exits with that
/// status; the parent runs [`parent`] and returns its result.
///
/// The order is the point: the mapping must exist before `fork` (the child
/// inherits it; a mapping made after `fork` is a separate one in each
/// process), and SIGUSR1 must be held before `fork` (see
/// [`block_sigusr1`]). Flush std's stdout before forking: bytes still in
/// its buffer would be copied into the child and printed twice.
///
/// Pitfall: the child must never *return* from here — it would run the
/// parent's code in `main` a second time. It ends the process itself.
///
/// `fork` is `unsafe` in nix: after it only the calling thread exists in
/// the child. This program has one thread, so the child may do anything —
/// say so in a `// SAFETY:` comment.
///
/// Look up: `nix::unistd::{fork, ForkResult}`, `man 2 fork`;
/// `std::process::exit`; `std::io::Write::flush`.
fn run(config: Config) -> Result<(), Failure> {
    todo!("TODO 5: map, hold SIGUSR1, fork")
}

/// TODO 6 — the child: announce, wait for the parent's signal, read the
/// message, write the reply.
///
/// What it must achieve, in this order (the provided `say_*` helpers print
/// the lines):
/// 1. `child CPID: waiting for message...`;
/// 2. wait until the parent's SIGUSR1 has come — asleep, using no CPU,
///    without a handler; if it came already, go on at once;
/// 3. `child CPID reading from shmem: MSG`, MSG read from the shared memory
///    (the parent wrote it *before* signalling, so it is complete);
/// 4. the reply [`reply_text`] written into the shared memory;
/// 5. `child CPID writing to shmem: REPLY`, read back from the shared
///    memory like the slide's `printf (…, shmem)`.
///
/// Then return; [`run`] exits the child, and that exit is the parent's
/// notification that the reply is there.
///
/// Not like the slide: `while (!message) usleep (1000);` wakes up a
/// thousand times a second to look at a flag — polling, the costly busy
/// waiting the slide *Implizite Kommunikation* warns about ("Aufwendiges
/// busy-waiting"; `no-busy-wait`, `no-polling`).
///
/// Take a fresh slice of the shared memory after each wait (see
/// [`SharedMemory::bytes`]).
///
/// Look up: `man 3 sigwait`; the waiting methods of
/// `nix::sys::signal::SigSet`; `nix::unistd::{getpid, getppid}`.
fn child(shm: &mut SharedMemory, usr1: &SigSet) -> Result<(), Failure> {
    todo!("TODO 6: the child's part")
}

/// TODO 7 — the parent: wait the configured delay, write the message,
/// notify the child, wait for its answer, print the reply.
///
/// What it must achieve:
/// 1. sleep `config.delay` (`--delay-ms`, default 0: the signal may then
///    come before the child has even started — TODO 4 makes that safe);
/// 2. write the message — `config.message`, or [`default_message`] when
///    there is none — into the shared memory;
/// 3. only then notify the child with SIGUSR1: payload first, notification
///    second;
/// 4. wait until the child has exited: then its reply is in the shared
///    memory, and the child is reaped, not left behind as a zombie
///    (`reaped`). A child that exited with a status other than 0, or was
///    killed, is a [`Failure`] (the variants say which);
/// 5. `Message from child CPID: REPLY` ([`say_reply`]).
///
/// Without the wait, the parent reads the shared memory before the child
/// has answered — and finds its own message there.
///
/// Look up: `nix::sys::signal::kill`, `man 2 kill`; [`wait_for`] and
/// `nix::sys::wait::WaitStatus`; `std::thread::sleep`.
fn parent(shm: &mut SharedMemory, child: Pid, config: Config) -> Result<(), Failure> {
    todo!("TODO 7: the parent's part")
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

/// What to do, from the command line. (Provided.)
struct Config {
    /// How long the parent sleeps before writing and signalling.
    delay: Duration,
    /// The message; `None`: the default message (it names the child's pid,
    /// known only after the fork).
    message: Option<Vec<u8>>,
}

/// (Provided.)
enum Command {
    Run(Config),
    Help,
}

/// Parses `[--delay-ms N] [--] [MESSAGE]` (also `--delay-ms=N`) and
/// `--help`; refuses a MESSAGE longer than [`MAX_MESSAGE`] bytes. MESSAGE is
/// taken as raw bytes, so any argument — UTF-8 or not — is copied exactly;
/// one starting with `-` needs a `--` before it. (Provided.)
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Failure> {
    let mut delay = Duration::ZERO;
    let mut message: Option<Vec<u8>> = None;
    let mut options_done = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if !options_done && bytes.len() > 1 && bytes[0] == b'-' {
            if bytes == b"--" {
                options_done = true;
            } else if bytes == b"-h" || bytes == b"--help" {
                return Ok(Command::Help);
            } else if bytes == b"--delay-ms" {
                let value = args.next().ok_or_else(|| Failure::Usage("--delay-ms needs a value".into()))?;
                delay = parse_delay(value.as_bytes())?;
            } else if let Some(value) = bytes.strip_prefix(b"--delay-ms=") {
                delay = parse_delay(value)?;
            } else {
                return Err(Failure::Usage(format!("unknown option {arg:?}")));
            }
        } else if message.is_none() {
            message = Some(bytes.to_vec());
        } else {
            return Err(Failure::Usage(format!("unexpected argument {arg:?} (only one MESSAGE)")));
        }
    }
    if let Some(msg) = &message {
        if msg.len() > MAX_MESSAGE {
            return Err(Failure::Usage(format!(
                "MESSAGE is {} bytes long, at most {MAX_MESSAGE} bytes are allowed",
                msg.len()
            )));
        }
    }
    Ok(Command::Run(Config { delay, message }))
}

/// (Provided.)
fn parse_delay(value: &[u8]) -> Result<Duration, Failure> {
    std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok()).map(Duration::from_millis).ok_or_else(|| {
        Failure::Usage(format!(
            "--delay-ms expects a whole number of milliseconds, got {:?}",
            String::from_utf8_lossy(value)
        ))
    })
}

/// (Provided.)
fn main() -> ExitCode {
    let result = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Run(config)) => run(config),
        Ok(Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            Ok(())
        }
        Err(failure) => Err(failure),
    };
    ExitCode::from(report(result))
}
