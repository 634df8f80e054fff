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
//! 1. [`SharedMemory::map`] — `mmap` a shared anonymous page,
//! 2. [`write_message`] — put a message into the shared bytes, terminated,
//! 3. [`read_message`] — get it out again,
//! 4. [`block_sigusr1`] — block SIGUSR1 (before the fork!),
//! 5. [`run`] — map, block, flush, `fork`,
//! 6. [`child`] — announce, `sigwait`, read, reply,
//! 7. [`parent`] — sleep, write, `kill`, `waitpid`, print the reply.
//!
//! The big idea: shared memory is *implicit* communication. Both processes
//! see the same bytes, no copying needed — but nobody tells the child *when*
//! the message is there ("Weitere (schmalbandige) Synchronisation ist
//! notwendig"). The signal SIGUSR1 is that notification: the shared memory
//! carries the payload, the signal only says "now". And the notification
//! back is the child's `exit`, which the parent's `waitpid` waits for.
//!
//! The trap: the parent may send the signal *before* the child is ready for
//! it — even before the child has run a single instruction. SIGUSR1's default
//! action kills the child. So block SIGUSR1 *before* `fork`: a blocked signal
//! is kept pending by the kernel, the child inherits the mask, and
//! `sigwait` collects the signal whenever the child gets there — no handler,
//! no flag, no busy waiting, nothing lost.

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
    /// TODO 1 — map `len` bytes of shared anonymous memory.
    ///
    /// The slide's `mmap (NULL, 1024, PROT_READ|PROT_WRITE,
    /// MAP_ANONYMOUS|MAP_SHARED, 0, 0)` is, in nix:
    ///
    /// ```ignore
    /// let base = unsafe { mmap_anonymous(None, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED) }
    ///     .map_err(|errno| Failure::Sys("mmap", errno))?;
    /// Ok(SharedMemory { base: base.cast(), len: len.get() })
    /// ```
    ///
    /// * `mmap_anonymous` adds `MAP_ANONYMOUS` itself (no file behind the
    ///   memory; it starts zeroed). You choose `MAP_SHARED` or
    ///   `MAP_PRIVATE` — and only **`MAP_SHARED`** works: `fork` turns a
    ///   private mapping into two copy-on-write copies, and what the parent
    ///   writes after the fork never reaches the child.
    /// * It returns a `NonNull<c_void>`; `.cast()` makes it a `NonNull<u8>`.
    /// * `unsafe`: `mmap` can replace existing memory when given an address;
    ///   with `None` the kernel picks a fresh one (say so in a `// SAFETY:`
    ///   comment).
    /// * The slide compares the result with `NULL`, but `mmap` fails with
    ///   `MAP_FAILED` (`-1`). nix gives you an `Err` instead.
    fn map(len: NonZeroUsize) -> Result<SharedMemory, Failure> {
        todo!("mmap_anonymous(None, len, PROT_READ | PROT_WRITE, MAP_SHARED)")
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

/// TODO 2 — write `msg` into the shared bytes `shm`, *terminated*.
///
/// Copy the bytes to the start of `shm` (`shm[..n].copy_from_slice(..)`)
/// and put a `0` byte right after them, like the slide's `sprintf`, which
/// ends every string with a NUL. ([`read_message`] stops there.)
///
/// Why the terminator matters: the memory still holds what was written
/// before. The child's reply `Got it [PPID] -- exiting` is shorter than a
/// long message; written over it without a terminator, the reply is read
/// back with the tail of the message still attached.
///
/// `msg` is at most [`MAX_MESSAGE`] bytes and `shm` is 4096, so it fits —
/// but do not panic if it ever did not: cut it short (`min`), index with
/// care (`shm.get_mut(n)`).
///
/// (A NUL can end any MESSAGE, because command-line arguments cannot contain
/// NUL bytes. Arbitrary binary data would need a length field instead.)
fn write_message(shm: &mut [u8], msg: &[u8]) {
    todo!("copy msg to the start of shm, then a 0 byte")
}

/// TODO 3 — the message in the shared bytes `shm`: the bytes before the
/// first `0` (`shm.iter().position(|&b| b == 0)`), or all of `shm` if there
/// is none — never more than `shm` itself (no `unwrap()`).
fn read_message(shm: &[u8]) -> &[u8] {
    todo!("the bytes of shm before the first 0 byte")
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

/// TODO 4 — block SIGUSR1 and return the set `{SIGUSR1}` (the child waits
/// on it).
///
/// ```ignore
/// let mut usr1 = SigSet::empty();
/// usr1.add(Signal::SIGUSR1);
/// sigprocmask(SigmaskHow::SIG_BLOCK, Some(&usr1), None).map_err(..)?;   // or usr1.thread_block()
/// ```
///
/// A *blocked* signal is not delivered: the kernel marks it *pending* and
/// keeps it until the process unblocks it or takes it with `sigwait`. The
/// signal mask is inherited by `fork`. So if you call this **before**
/// `fork`, the child is born with SIGUSR1 blocked, and a SIGUSR1 the parent
/// sends at once — before the child has run one instruction — simply waits
/// for it.
///
/// Why not like the slide (`signal (SIGUSR1, child_handler)` + a flag)?
/// - A handler installed by the child *after* `fork` comes too late when the
///   parent is quick: SIGUSR1's default action *terminates* the child
///   (measured: 194 of 200 children killed).
/// - A handler installed before `fork` survives that, but then the child
///   must notice the flag: polling it (`usleep`) is busy waiting, and
///   `while (!flag) pause ();` loses the wake-up if the signal comes between
///   the test and `pause` — the child sleeps forever.
///
/// The parent keeps SIGUSR1 blocked too; that is harmless (the slide sets
/// `SIG_IGN` in the parent so that a stray SIGUSR1 cannot kill it).
fn block_sigusr1() -> Result<SigSet, Failure> {
    todo!("SigSet with SIGUSR1, sigprocmask(SIG_BLOCK, ..)")
}

/// TODO 5 — map the memory, prepare SIGUSR1, fork, play both parts. Only
/// the parent returns.
///
/// ```text
/// let mut shm = SharedMemory::map(SHM_SIZE)?;
/// let usr1 = block_sigusr1()?;                    // BEFORE fork
/// flush stdout                                    // std::io::stdout().flush()
/// match unsafe { fork() } {
///     Child          => report(child(..)), then std::process::exit(code)
///     Parent { child } => parent(&mut shm, child, config)
/// }
/// ```
///
/// * The order is the point: the mapping must exist before `fork` (the child
///   inherits it — a mapping made after `fork` would be two separate ones),
///   and SIGUSR1 must be blocked before `fork` (see [`block_sigusr1`]).
/// * Flush std's stdout before `fork`: bytes still in its buffer would be
///   copied into the child and printed twice (map the error with
///   `Failure::Output`).
/// * `fork` is `unsafe` in nix: after it, only the calling thread exists in
///   the child. Our program has one thread, so the child may do anything
///   (write a `// SAFETY:` comment saying so).
/// * Child: `let code = report(child(&mut shm, &usr1));` then
///   `std::process::exit(i32::from(code))`. Never `return` from the child's
///   branch: it would run the parent's code in `main` a second time.
fn run(config: Config) -> Result<(), Failure> {
    todo!("map, block SIGUSR1, flush stdout, fork; child exits, parent returns")
}

/// TODO 6 — the child: announce, wait for SIGUSR1, read, reply.
///
/// 1. `say_waiting(getpid())?`
/// 2. Wait for the signal: `usr1.wait()` — that is `sigwait`: it sleeps
///    until SIGUSR1 is pending and takes it (map the error with
///    `Failure::Sys("sigwait", ..)`). If the parent's signal came already,
///    it returns at once; otherwise the child sleeps, using no CPU, until it
///    comes. No handler, no flag. (`sigsuspend` — `SigSet::suspend` — works
///    too, but only together with a handler, even a no-op one: it unblocks
///    SIGUSR1 for the moment of sleeping, and an unhandled SIGUSR1 would
///    then kill the child. `sigwait` needs none.)
/// 3. `say_reading(me, read_message(shm.bytes()))?` — the parent wrote the
///    message *before* its `kill`, so it is complete now.
/// 4. [`write_message`] the reply [`reply_text`]`(getppid())` into
///    `shm.bytes_mut()`.
/// 5. `say_writing(me, read_message(shm.bytes()))` — read back from the
///    shared memory, like the slide's `printf (…, shmem)`.
///
/// Then return; [`run`] exits the child. Its `exit` is the parent's
/// notification: the reply is written.
///
/// Not like the slide: `while (!message) usleep (1000);` wakes up a thousand
/// times a second to look at a flag — *polling*, the costly busy waiting the
/// slide *Implizite Kommunikation* warns about ("Aufwendiges busy-waiting");
/// `while (!message);` without the `usleep` burns a whole CPU. And a plain
/// `static mut` flag may be read once and never again by the optimiser.
fn child(shm: &mut SharedMemory, usr1: &SigSet) -> Result<(), Failure> {
    todo!("say_waiting, usr1.wait(), say_reading, write the reply, say_writing")
}

/// TODO 7 — the parent: sleep, write the message, notify, wait, print the
/// reply.
///
/// 1. `std::thread::sleep(config.delay)` — the delay (`--delay-ms`, default
///    0) only makes the child's waiting observable. With 0, the signal may
///    come before the child has even started: [`block_sigusr1`] before the
///    fork is what makes that safe.
/// 2. The message: `config.message`, or [`default_message`]`(getpid(), child)`
///    when it is `None`. [`write_message`] it into `shm.bytes_mut()`.
/// 3. Then — only then — `kill(child, Signal::SIGUSR1)` (map the error with
///    `Failure::Sys("kill", ..)`): payload first, notification second.
/// 4. [`wait_for`]`(child)?`: `waitpid` returns when the child has exited,
///    so its reply is in the shared memory — and the child is reaped, not
///    left behind as a zombie. Look at the status: `WaitStatus::Exited(_, 0)`
///    is success; `Exited(_, code)` → `Err(Failure::ChildFailed(u8::try_from(code).unwrap_or(1)))`
///    (the child has already said why); anything else (killed by a signal)
///    → `Err(Failure::Child(status))`.
/// 5. `say_reply(child, read_message(shm.bytes()))`.
///
/// Without the wait, the parent reads the shared memory before the child has
/// answered — and finds its own message there.
fn parent(shm: &mut SharedMemory, child: Pid, config: Config) -> Result<(), Failure> {
    todo!("sleep, write the message, kill SIGUSR1, waitpid, say_reply")
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
