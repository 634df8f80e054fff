//! `sigecho` — ipc-lab exercise `signals`. Read `README.md` next to this
//! crate first; grade with `cargo grade signals`.
//!
//! Lecture: slide *Bandbreite des Kommunikationskanals* (schmalbandige
//! Kanäle: Linux signals) and slide *Beispiel* (the C program with
//! `sighandler`). Your program does what that C program tries to do — echo
//! stdin and report signals — but correctly.
//!
//! ```text
//! sigecho [--alarm SECONDS]      (default 5; 0 disables the alarm)
//! ```
//!
//! The argument parsing, the output helper and `main` are done. Your work is
//! marked with `todo!()`:
//!
//! 1. [`on_signal`] — the signal handler (one line!),
//! 2. [`install_handlers`] — `sigaction` for SIGINT, SIGALRM, SIGTERM,
//! 3. [`report_signals`] — print `Caught signal N` for pending signals,
//! 4. [`assemble_lines`] — cut the bytes you read into lines,
//! 5. [`echo_loop`] — the `read` loop with `EINTR` handling.
//!
//! The big idea: a signal handler may run between *any* two instructions of
//! your program, so it must not print or allocate. It only records "signal N
//! arrived" in an atomic variable. The main loop notices the record and does
//! the printing. To notice it while blocked in `read(2)`, install the
//! handlers without `SA_RESTART`: then `read` returns `Err(Errno::EINTR)`
//! when a signal arrives, and your loop gets control back.

// Lets the unfinished skeleton compile without warnings.
// Delete this line when you are done.
#![allow(unused_variables, unused_mut, unused_imports, dead_code, clippy::ptr_arg)]

use std::ffi::{c_int, OsString};
use std::io::Write as _;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{alarm, getpid, read};

/// Alarm period when `--alarm` is not given (the slide uses `alarm (5)`).
const DEFAULT_ALARM_SECS: u32 = 5;

const USAGE: &str = "usage: sigecho [--alarm SECONDS]";

/// The signals to catch, in the order to report them when several are
/// pending at once (ascending signal number: 2, 14, 15).
const CAUGHT: [Signal; 3] = [Signal::SIGINT, Signal::SIGALRM, Signal::SIGTERM];

/// Signals caught but not yet reported: bit `n` set means "signal `n`
/// arrived". Set by [`on_signal`], taken (read and cleared in one step) by
/// [`report_signals`].
///
/// Keep it an atomic. A `static mut FLAG: bool` polled in a loop "works" in
/// debug builds and hangs in release builds: the optimiser sees nothing in
/// the loop that writes the variable, loads it once and keeps it in a
/// register. Atomic loads happen every time, and `fetch_or` / `swap` update
/// indivisibly, so a signal arriving in between is never lost.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// TODO 1 — the signal handler, used for all three signals.
///
/// Record that signal `signo` arrived: set bit `signo` of [`PENDING`]
/// (`PENDING.fetch_or(1 << signo, Ordering::SeqCst)`). Nothing else.
///
/// Why so little? The handler interrupts the main program wherever it
/// happens to be — possibly inside `println!` while it holds the stdout lock,
/// or inside `malloc`. Only *async-signal-safe* operations are allowed here
/// (`man 7 signal-safety`): atomics, `write(2)`, `_exit`… but not `println!`
/// (under a storm of signals it aborts: "RefCell already borrowed"), not
/// `format!`/`Vec`/`String` (allocation can deadlock or abort in `malloc`).
/// The slide's `printf` in `sighandler` has exactly this bug.
///
/// Do not leave the `todo!()` in here once handlers are installed: a panic
/// inside an `extern "C"` function aborts the whole process.
extern "C" fn on_signal(signo: c_int) {
    todo!("set bit `signo` in PENDING")
}

/// TODO 2 — install [`on_signal`] for SIGINT, SIGALRM and SIGTERM.
///
/// Build one action and install it for each signal in [`CAUGHT`]:
///
/// ```ignore
/// let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
/// unsafe { sigaction(signal, &action) }?;   // for each signal
/// ```
///
/// * `SaFlags::empty()` — deliberately **without** `SA_RESTART`. With
///   `SA_RESTART` the kernel silently restarts an interrupted `read`, so your
///   loop would stay blocked and only notice SIGINT/SIGTERM when the next
///   line of input arrives. glibc's `signal()` (the slide's call) sets
///   `SA_RESTART` behind your back — one reason to prefer `sigaction`.
/// * `SigSet::empty()` — no extra signals blocked while the handler runs.
/// * `unsafe`: `sigaction` cannot check that your handler is
///   async-signal-safe; that is your promise (write a `// SAFETY:` comment).
/// * Unlike the slide, no need to re-install the handler inside the handler:
///   a `sigaction` handler stays installed.
fn install_handlers() -> nix::Result<()> {
    todo!("sigaction(SIGINT/SIGALRM/SIGTERM, handler without SA_RESTART)")
}

/// Schedules the next SIGALRM in `secs` seconds; `0` means "no alarm".
/// (Provided.) `alarm::set(0)` panics in nix, hence the branch.
fn arm_alarm(secs: u32) {
    if secs == 0 {
        alarm::cancel();
    } else {
        alarm::set(secs);
    }
}

/// Why the program stopped early; `main` turns it into a message and a
/// status. (Provided.)
enum Failure {
    /// Installing the handlers failed.
    Setup(Errno),
    /// Reading stdin failed (other than `EINTR`, which is not a failure).
    Read(Errno),
    /// Writing stdout failed, e.g. `EPIPE` when the reader has gone.
    Write(std::io::Error),
}

/// What the caller should do next. (Provided.)
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

/// Writes `bytes` (whole lines) to stdout and flushes them at once.
/// (Provided.)
///
/// Use it for every output line, and only from the main loop — never from
/// the signal handler: it takes std's stdout lock, and a handler that
/// interrupts the main program while it holds that lock and then prints
/// itself makes the process abort. (std's `write_all` retries `EINTR` and
/// short writes by itself; for *output* that is exactly what we want.)
fn write_all(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|()| stdout.flush()).map_err(Failure::Write)
}

/// TODO 3 — report every signal caught since the last call.
///
/// * Take the pending bits *and* clear them in one step:
///   `PENDING.swap(0, Ordering::SeqCst)`. (A separate `load` and `store`
///   would lose a signal arriving in between.)
/// * For each signal in [`CAUGHT`] whose bit is set (`signal as c_int` is its
///   number): `write_all` the line `Caught signal N\n`, then
///   - SIGALRM: re-arm with [`arm_alarm`]`(alarm_secs)` — `alarm` fires only
///     once, periodic means arming it again;
///   - SIGTERM: return `Ok(Flow::Exit)` — we *handled* SIGTERM, so we exit
///     with status 0 instead of being killed by it.
/// * Otherwise return `Ok(Flow::Continue)`.
///
/// The main loop calls this only between complete output lines, so a signal
/// message never lands inside an echoed line.
fn report_signals(alarm_secs: u32) -> Result<Flow, Failure> {
    todo!("swap PENDING to 0, print `Caught signal N` lines, re-arm / exit")
}

/// TODO 4 — add the bytes just read (`chunk`) to the line being assembled.
///
/// `read` returns whatever is available: half a line, many lines, a line and
/// a half. So:
/// * for every newline in `chunk`: append the bytes before it to `partial`;
///   if `partial` is now exactly `b"exit"` return `Flow::Exit` (everything
///   after it is ignored); otherwise append `partial` and a `b'\n'` to `out`
///   and clear `partial`;
/// * append the bytes after the last newline to `partial` and return
///   `Flow::Continue`. They wait there until their newline arrives — also
///   across signals (`abc`, SIGINT, `def\n` must give `abcdef`).
///
/// Work on bytes (`&[u8]`, `Vec<u8>`), not `String`: the input need not be
/// UTF-8 and must be copied exactly. Compare the *whole* line with `exit` —
/// the slide's `strcmp (buffer, "exit", 4)` (really `strncmp`) also accepts
/// `exitfoo`, and its `strcmp` would fail because `buffer` still holds the
/// newline.
fn assemble_lines(partial: &mut Vec<u8>, chunk: &[u8], out: &mut Vec<u8>) -> Flow {
    todo!("split chunk at newlines; complete lines go to out, the rest stays in partial")
}

/// TODO 5 — the main loop: report signals, read, echo complete lines, repeat.
///
/// ```text
/// loop {
///     report_signals(alarm_secs)?   -> return Ok(()) on Flow::Exit
///     match read(stdin.as_fd(), &mut buf) {   // nix::unistd::read, fd 0
///         Err(Errno::EINTR) => continue        // a handler ran: go report it
///         Err(e)            => return Err(Failure::Read(e))
///         Ok(0)             => EOF: ...
///         Ok(n)             => assemble_lines(.., &buf[..n], ..), write_all(out) ...
///     }
/// }
/// ```
///
/// * Use `nix::unistd::read` on `std::io::stdin().as_fd()`, not
///   `read_line`/`BufRead::lines` (nor `read_to_end`/`read_exact`): std
///   retries `EINTR` inside them, so your loop would not see a signal until
///   the next input arrives. (Plain `Read::read` does not retry; it returns
///   `ErrorKind::Interrupted`.)
/// * `EINTR` is *not* EOF and not an error: nothing was read, nothing is
///   lost. (The slide prints `perror` and continues — the continuing is
///   right.)
/// * Check the pending signals before *every* `read`, also after a
///   successful one: a signal may arrive while you are busy echoing.
/// * EOF (`Ok(0)`): an unterminated last line is still a line — if it is
///   exactly `exit` just return, else write it plus `\n`. Then write
///   `Exiting\n` and return `Ok(())`.
/// * Return `Ok(())` too when [`assemble_lines`] says `Flow::Exit` — after
///   writing the lines that came before the `exit` line.
fn echo_loop(alarm_secs: u32) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    let mut buf = [0u8; 64 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    todo!("the read loop")
}

/// Installs the handlers, arms the alarm, announces itself, echoes.
/// (Provided.)
fn run(alarm_secs: u32) -> Result<(), Failure> {
    install_handlers().map_err(Failure::Setup)?;
    arm_alarm(alarm_secs);
    // Only now are we ready: a signal sent after this line is caught.
    write_all(format!("ready {}\n", getpid()).as_bytes())?;
    echo_loop(alarm_secs)
}

/// What the command line asks for. (Provided.)
enum Command {
    Run { alarm_secs: u32 },
    Help,
}

/// Parses `[--alarm SECONDS]` (also `--alarm=SECONDS`) and `--help`.
/// (Provided.)
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut alarm_secs = DEFAULT_ALARM_SECS;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy().into_owned();
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        } else if arg == "--alarm" {
            let value = args.next().ok_or("--alarm needs a value")?;
            alarm_secs = parse_seconds(&value.to_string_lossy())?;
        } else if let Some(value) = arg.strip_prefix("--alarm=") {
            alarm_secs = parse_seconds(value)?;
        } else {
            return Err(format!("unexpected argument '{arg}'"));
        }
    }
    Ok(Command::Run { alarm_secs })
}

fn parse_seconds(value: &str) -> Result<u32, String> {
    value.parse().map_err(|_| format!("--alarm expects a whole number of seconds, got '{value}'"))
}

/// One diagnostic line on stderr. Never panics (unlike `eprintln!`, which
/// panics when stderr is closed). (Provided.)
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "sigecho: {message}");
}

/// (Provided.)
fn main() -> ExitCode {
    let alarm_secs = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Run { alarm_secs }) => alarm_secs,
        Ok(Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            diagnose(&format!("{problem}; {USAGE}"));
            return ExitCode::from(1);
        }
    };

    match run(alarm_secs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Setup(e)) => {
            diagnose(&format!("cannot install signal handlers: {e}"));
            ExitCode::from(1)
        }
        Err(Failure::Read(e)) => {
            diagnose(&format!("reading stdin: {e}"));
            ExitCode::from(1)
        }
        Err(Failure::Write(e)) => {
            // Usually EPIPE: whoever read our output has gone. Rust ignores
            // SIGPIPE, so we get the error instead of being killed.
            diagnose(&format!("writing stdout: {e}"));
            ExitCode::from(4)
        }
    }
}
