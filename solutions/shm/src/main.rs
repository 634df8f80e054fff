//! `shm-handshake` — reference solution of the ipc-lab exercise `shm`; its
//! contract is `exercises/shm/README.md`.
//!
//! Lecture: slide *Implizite Kommunikation* and the slides *Beispiel:
//! Gemeinsamer Speicher (1/2)* and *(2/2)* (the C program with `mmap`,
//! `signal (SIGUSR1, child_handler)`, `while (!message) usleep (1000);`,
//! `kill (pid, SIGUSR1)` and `wait (NULL)`).
//!
//! ```text
//! shm-handshake [--delay-ms N] [--] [MESSAGE]
//! ```
//!
//! * maps 4096 bytes `MAP_SHARED | MAP_ANONYMOUS`, blocks SIGUSR1, forks;
//! * the child prints `child CPID: waiting for message...`, waits for
//!   SIGUSR1, prints `child CPID reading from shmem: MSG`, writes
//!   `Got it [PPID] -- exiting` into the shared memory, prints
//!   `child CPID writing to shmem: Got it [PPID] -- exiting` and exits 0;
//! * the parent sleeps N ms (default 0), writes MSG into the shared memory
//!   (default `Parent PPID sending message to child CPID`), sends SIGUSR1 to
//!   the child, waits for it, prints
//!   `Message from child CPID: Got it [PPID] -- exiting` and exits 0.
//!
//! A MESSAGE longer than 2048 bytes is a usage error (exit 1, before the
//! fork). Any bytes of the argument are copied exactly (also non-UTF-8).
//!
//! # The design, and why
//!
//! **Two channels, two jobs.** Shared memory is *implicit* communication
//! (slide *Implizite Kommunikation*): both processes see the same physical
//! page, so the message needs no copying between address spaces — but
//! nothing tells the reader *when* the bytes are ready: "Weitere
//! (schmalbandige) Synchronisation ist notwendig". Here the signal is that
//! narrow-band synchronisation: SIGUSR1 carries no data, only "the message is
//! there". So: the shared memory is the payload, the signal is the
//! notification, and `exit`/`waitpid` is the notification back.
//!
//! **`MAP_SHARED`, not `MAP_PRIVATE`.** `fork` copies the address space;
//! a `MAP_PRIVATE` mapping becomes two copy-on-write copies, and what the
//! parent writes after the fork is invisible to the child (and the other way
//! round). Only a `MAP_SHARED` mapping stays one set of pages in both
//! processes. `MAP_ANONYMOUS`: no file behind it, the pages start zeroed.
//!
//! **Block SIGUSR1 before `fork`, then wait with `sigwait`.** The slide
//! installs a handler before the fork (right: a handler installed by the
//! child after the fork may come too late — SIGUSR1's default action
//! *terminates* the child; measured: 194 of 200 children killed when the
//! parent signals at once) and then polls a flag with `usleep (1000)`. We do
//! better: SIGUSR1 is *blocked* before the fork. A blocked signal is not
//! delivered, the kernel keeps it *pending*; the signal mask is inherited by
//! `fork`, so the child is born with SIGUSR1 blocked — there is no instant at
//! which the signal could kill it or slip by. `sigwait` then sleeps until
//! SIGUSR1 is pending and takes it, whether it was sent long before (it is
//! returned at once) or arrives later (the child sleeps until then). No
//! handler, no flag, no lost wake-up, and no CPU used while waiting.
//!
//! Compare the alternatives the slide and common practice suggest:
//! * `while (!message) usleep (1000);` — *polling*: wakes up 1000 times a
//!   second for nothing ("Aufwendiges busy-waiting kann auftreten", says the
//!   slide itself), and answers up to 1 ms late; `while (!message);` without
//!   the sleep burns a whole CPU.
//! * `while (!message) pause ();` — looks right, but has a *lost wake-up*
//!   race: if the signal arrives after the test and before `pause` starts,
//!   the handler sets the flag and `pause` then sleeps forever, waiting for a
//!   signal that has already come. `sigsuspend(old_mask)` with the signal
//!   blocked closes that gap (it unblocks and sleeps in one atomic step);
//!   `sigwait` does the same without a handler.
//!
//! **Why the parent must `wait`.** The child's reply is in the shared memory
//! only once the child has written it; `waitpid` returns only after the child
//! has exited, so everything the child wrote is there. Reading earlier gives
//! back the parent's own message (or half of the reply). `waitpid` also reaps
//! the child: no zombie is left behind.
//!
//! **Ordering.** Each handover goes through the kernel: the parent writes,
//! then calls `kill`; the child's `sigwait` returns only after that `kill`,
//! then it reads. The child writes, then calls `exit`; the parent's
//! `waitpid` returns only after that, then it reads. System calls are full
//! barriers for the CPU, and for the compiler they are calls into unknown
//! code that might read or write any memory whose address has escaped — and
//! the mapping's address came *from* `mmap`. So plain reads and writes are
//! correct here, without atomics or `volatile`, on one condition: no Rust
//! reference to the shared bytes may live across those calls (a `&mut [u8]`
//! promises the compiler that nobody else changes the bytes while it lives).
//! [`SharedMemory`] therefore hands out short borrows only.
//!
//! **Terminating the message.** The slide's `sprintf` writes a NUL after the
//! text and `printf ("%s", shmem)` reads up to it. We do the same: without
//! the terminator, the child's short reply written over a longer message
//! would be read back with the rest of that message still attached.
//! (Command-line arguments cannot contain NUL bytes, so NUL can end any
//! MESSAGE; arbitrary binary data would need a length field instead.)

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

/// The longest MESSAGE accepted. With its NUL terminator it fits in the
/// mapping with room to spare, and every output line stays below `PIPE_BUF`
/// (4096 bytes), so each line reaches a pipe in one indivisible `write`.
const MAX_MESSAGE: usize = 2048;

const USAGE: &str = "usage: shm-handshake [--delay-ms N] [--] [MESSAGE]";

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Everything that ends the program early; each becomes one line on stderr
/// (prefixed `shm-handshake: `) and exit status 1.
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
/// line on stderr. `writeln!` with the result ignored, not `eprintln!`, which
/// panics when stderr is closed.
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
///
/// It is never unmapped explicitly: both processes end soon, and `exit`
/// unmaps everything.
struct SharedMemory {
    base: NonNull<u8>,
    len: usize,
}

impl SharedMemory {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)`
    /// — the slide's call. `mmap_anonymous` adds `MAP_ANONYMOUS` itself.
    ///
    /// The slide compares the result with `NULL`; `mmap` reports failure
    /// with `MAP_FAILED` (`(void *) -1`), never `NULL`. nix turns it into an
    /// `Err`.
    fn map(len: NonZeroUsize) -> Result<SharedMemory, Failure> {
        // SAFETY: we ask for a fresh mapping at an address of the kernel's
        // choosing (`None`), so no existing memory is affected.
        let base =
            unsafe { mmap_anonymous(None, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED) }
                .map_err(|errno| Failure::Sys("mmap", errno))?;
        Ok(SharedMemory { base: base.cast(), len: len.get() })
    }

    /// The shared bytes, to read. Keep the borrow short: never hold it
    /// across `kill`, `sigwait`, `waitpid` (see the module docs).
    fn bytes(&self) -> &[u8] {
        // SAFETY: `base` points to `len` readable bytes that stay mapped for
        // the life of the process. The other process writes them only while
        // this one is waiting (sigwait / waitpid), never while a borrow
        // handed out here is in use.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }

    /// The shared bytes, to write. Keep the borrow short (see [`Self::bytes`]).
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes the borrow unique within
        // this process, and the other process does not touch the bytes while
        // we write (it is blocked in sigwait, or not yet signalled).
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), self.len) }
    }
}

/// Writes `msg` into `shm` as a C string: the bytes, then a NUL terminator
/// (what the slide's `sprintf` does). Without the terminator a short message
/// written over a longer one would be read back with the longer one's tail.
///
/// Callers pass at most [`MAX_MESSAGE`] bytes, far less than the mapping;
/// should `msg` not fit anyway it is cut short rather than panicking.
fn write_message(shm: &mut [u8], msg: &[u8]) {
    let n = msg.len().min(shm.len().saturating_sub(1));
    shm[..n].copy_from_slice(&msg[..n]);
    if let Some(terminator) = shm.get_mut(n) {
        *terminator = 0;
    }
}

/// Reads the message in `shm`: the bytes before the first NUL (all of them
/// if there is none — never beyond the mapping).
fn read_message(shm: &[u8]) -> &[u8] {
    let end = shm.iter().position(|&b| b == 0).unwrap_or(shm.len());
    &shm[..end]
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// Writes the concatenation of `parts` and a newline to stdout as one
/// `write`, and flushes it at once.
///
/// One `write` per line: parent and child share the same stdout, and a write
/// of at most `PIPE_BUF` bytes to a pipe is never mixed with another
/// process's write — lines never interleave.
fn print_line(parts: &[&[u8]]) -> Result<(), Failure> {
    let mut line = Vec::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 1);
    for part in parts {
        line.extend_from_slice(part);
    }
    line.push(b'\n');
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&line).and_then(|()| stdout.flush()).map_err(Failure::Output)
}

/// `child CPID: waiting for message...`
fn say_waiting(cpid: Pid) -> Result<(), Failure> {
    print_line(&[format!("child {cpid}: waiting for message...").as_bytes()])
}

/// `child CPID reading from shmem: MSG`
fn say_reading(cpid: Pid, msg: &[u8]) -> Result<(), Failure> {
    print_line(&[format!("child {cpid} reading from shmem: ").as_bytes(), msg])
}

/// `child CPID writing to shmem: MSG`
fn say_writing(cpid: Pid, msg: &[u8]) -> Result<(), Failure> {
    print_line(&[format!("child {cpid} writing to shmem: ").as_bytes(), msg])
}

/// `Message from child CPID: MSG`
fn say_reply(cpid: Pid, msg: &[u8]) -> Result<(), Failure> {
    print_line(&[format!("Message from child {cpid}: ").as_bytes(), msg])
}

/// The child's answer: `Got it [PPID] -- exiting`.
fn reply_text(ppid: Pid) -> Vec<u8> {
    format!("Got it [{ppid}] -- exiting").into_bytes()
}

/// The parent's message when none is given:
/// `Parent PPID sending message to child CPID`.
fn default_message(ppid: Pid, cpid: Pid) -> Vec<u8> {
    format!("Parent {ppid} sending message to child {cpid}").into_bytes()
}

// ---------------------------------------------------------------------------
// The handshake
// ---------------------------------------------------------------------------

/// Blocks SIGUSR1 in this process and returns the set `{SIGUSR1}` to wait
/// on.
///
/// Called *before* `fork`: the child inherits the mask, so from its first
/// instruction on a SIGUSR1 from the parent is held pending by the kernel
/// instead of killing it (SIGUSR1's default action) — however soon the
/// parent sends it. (`sigprocmask` is `pthread_sigmask` for the only thread
/// we have; nix also offers it as `SigSet::thread_block`.)
///
/// The parent keeps SIGUSR1 blocked too; a stray SIGUSR1 cannot kill it
/// (the slide sets `SIG_IGN` in the parent for that).
fn block_sigusr1() -> Result<SigSet, Failure> {
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&usr1), None).map_err(|errno| Failure::Sys("sigprocmask", errno))?;
    Ok(usr1)
}

/// Maps the memory, blocks SIGUSR1, forks; then each process plays its
/// part. Only the parent returns.
fn run(config: Config) -> Result<(), Failure> {
    let mut shm = SharedMemory::map(SHM_SIZE)?;
    let usr1 = block_sigusr1()?;

    // Anything still buffered in std's stdout would be copied into the child
    // and printed twice. We print nothing before the fork; flushing is the
    // habit that keeps it that way.
    std::io::stdout().flush().map_err(Failure::Output)?;

    // SAFETY: the program is single-threaded, so the child may run any code
    // after `fork` (no lock can be held by a thread that does not exist in
    // the child).
    match unsafe { fork() }.map_err(|errno| Failure::Sys("fork", errno))? {
        ForkResult::Child => {
            let code = report(child(&mut shm, &usr1));
            // Never return into `main`: that is the parent's code path. Our
            // output is flushed; `exit` ends this process only.
            std::process::exit(i32::from(code));
        }
        ForkResult::Parent { child } => parent(&mut shm, child, config),
    }
}

/// The child: announce, wait for the notification, read, reply.
fn child(shm: &mut SharedMemory, usr1: &SigSet) -> Result<(), Failure> {
    let me = getpid();
    say_waiting(me)?;

    // sigwait: sleep until SIGUSR1 is pending, then take it. It was blocked
    // before the fork, so it is either pending already (returned at once) or
    // still to come (we sleep, using no CPU). No handler runs, and nothing
    // can get lost between "is it here?" and "go to sleep".
    usr1.wait().map_err(|errno| Failure::Sys("sigwait", errno))?;

    // The parent wrote the message before its `kill`, and we return from
    // `sigwait` only after that `kill`: the message is complete.
    say_reading(me, read_message(shm.bytes()))?;

    write_message(shm.bytes_mut(), &reply_text(getppid()));
    // Read back from the shared memory, like the slide's `printf (…, shmem)`.
    say_writing(me, read_message(shm.bytes()))
    // Returning ends the child (see `run`): `exit` is what the parent's
    // `waitpid` waits for, and it comes after our write.
}

/// The parent: wait the requested delay, write the message, notify the
/// child, wait for it to exit, print its reply.
fn parent(shm: &mut SharedMemory, child: Pid, config: Config) -> Result<(), Failure> {
    // The delay only makes the child's waiting observable (does it sleep,
    // spin or poll?); with 0 the signal comes right after the fork — while
    // the child may not even have started. Blocking before the fork is what
    // makes that safe.
    std::thread::sleep(config.delay);

    let message = config.message.unwrap_or_else(|| default_message(getpid(), child));
    // First the payload, then the notification: once the child has the
    // signal it may read at any moment.
    write_message(shm.bytes_mut(), &message);
    // `kill` on our own child that we have not reaped yet cannot fail (at
    // worst it is a zombie); if it did, the child could never be woken, so
    // do not wait for it.
    kill(child, Signal::SIGUSR1).map_err(|errno| Failure::Sys("kill", errno))?;

    // Wait for the child to exit: only then is its reply in the shared
    // memory (and it is reaped, not left behind as a zombie).
    match wait_for(child)? {
        WaitStatus::Exited(_, 0) => {}
        WaitStatus::Exited(_, code) => return Err(Failure::ChildFailed(u8::try_from(code).unwrap_or(1))),
        other => return Err(Failure::Child(other)),
    }
    say_reply(child, read_message(shm.bytes()))
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

/// What to do, from the command line.
struct Config {
    /// How long the parent sleeps before writing and signalling.
    delay: Duration,
    /// The message; `None`: the default message (it names the child's pid,
    /// known only after the fork).
    message: Option<Vec<u8>>,
}

enum Command {
    Run(Config),
    Help,
}

/// Parses `[--delay-ms N] [--] [MESSAGE]` (also `--delay-ms=N`) and
/// `--help`. MESSAGE is taken as raw bytes, so any argument — UTF-8 or not —
/// is copied exactly; one starting with `-` needs a `--` before it.
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

fn parse_delay(value: &[u8]) -> Result<Duration, Failure> {
    std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok()).map(Duration::from_millis).ok_or_else(|| {
        Failure::Usage(format!(
            "--delay-ms expects a whole number of milliseconds, got {:?}",
            String::from_utf8_lossy(value)
        ))
    })
}

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
