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
//! 1. [`on_signal`] — the handler: record that a signal arrived,
//! 2. [`install_handlers`] — make the three signals run it,
//! 3. [`report_signals`] — the main loop's side: report what was recorded,
//! 4. [`assemble_lines`] — cut the bytes you read into lines,
//! 5. [`echo_loop`] — read, echo, report; and wake up for a signal.
//!
//! The big idea: a signal handler may run between *any* two instructions of
//! your program, so it must not print or allocate. It only records "signal N
//! arrived"; the main loop notices the record and does the printing. The
//! hard part is the noticing: while the main loop sleeps in `read(2)`, the
//! handler runs and returns — and then? Whether `read` goes on waiting or
//! hands control back to your loop is decided when you install the handler.
//!
//! Each TODO's doc comment says what it must achieve and why. Stuck? Ask for
//! a hint: `cargo grade --hint signals` (the concept), then `--level 2` (the
//! API) and `--level 3` (nearly the code); `--check ID` for one check.

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
/// arrived". Set by [`on_signal`], taken — read and cleared in one
/// indivisible step — by [`report_signals`].
///
/// Keep it an atomic. A `static mut FLAG: bool` polled in a loop "works" in
/// debug builds and hangs in release builds: the optimiser sees nothing in
/// the loop that writes the variable, loads it once and keeps it in a
/// register. Atomic operations happen every time, and the read-modify-write
/// ones update indivisibly, so a signal arriving in between is never lost.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// TODO 1 — the signal handler, installed for all three signals.
///
/// What it must achieve: record that signal `signo` arrived, so that the
/// main loop can report it later — and nothing else. Several different
/// signals may arrive before the main loop looks: each leaves its own mark
/// in [`PENDING`], none erases another's.
///
/// Why so little: the handler interrupts the main program wherever it
/// happens to be — possibly inside `println!` while it holds the stdout
/// lock, or inside `malloc`. Only *async-signal-safe* operations are allowed
/// here (`man 7 signal-safety`). Printing, formatting or allocating can
/// deadlock or abort the process; the slide's `printf` in `sighandler` has
/// exactly this bug, and `signal-storm` finds it.
///
/// Look up: the atomic read-modify-write operations of
/// `std::sync::atomic::AtomicU64`; `man 7 signal-safety`.
///
/// Do not leave the `todo!()` in here once the handlers are installed: a
/// panic inside an `extern "C"` function aborts the whole process.
extern "C" fn on_signal(signo: c_int) {
    todo!("TODO 1: record that signal `signo` arrived")
}

/// TODO 2 — make SIGINT, SIGALRM and SIGTERM run [`on_signal`].
///
/// What it must achieve: from now on each of the three signals runs the
/// handler — at every delivery, not just the first — and a signal that
/// arrives while the main loop is blocked in `read` gives the loop control
/// back at once (`sigint-idle`, `sigterm`, `alarm-periodic`). A handler that
/// merely *runs* is not enough: installed one way, the kernel resumes the
/// interrupted `read` as if nothing had happened, and the message appears
/// only after the next line of input. Find out which way is which in
/// `man 7 signal` ("Interruption of system calls and library functions by
/// signal handlers").
///
/// Why not like the slide: it calls `signal()`, whose flags glibc chooses
/// for you, and re-installs the handler inside the handler, an old System V
/// habit. Use the call with which *you* decide the flags and the signals
/// blocked while the handler runs.
///
/// `unsafe`: the compiler cannot check that a handler is
/// async-signal-safe; installing one is your promise (say why in a
/// `// SAFETY:` comment).
///
/// Look up: `nix::sys::signal::{sigaction, SigAction, SigHandler, SaFlags,
/// SigSet}`; `man 2 sigaction` (the flags), `man 7 signal`.
fn install_handlers() -> nix::Result<()> {
    todo!("TODO 2: install on_signal for SIGINT, SIGALRM and SIGTERM")
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

/// TODO 3 — report every signal recorded since the last call.
///
/// What it must achieve: for each signal of [`CAUGHT`] that arrived, in that
/// order, one line `Caught signal N` (N its number) through [`write_all`].
/// After SIGALRM the next alarm is scheduled: the contract wants one every
/// `alarm_secs` seconds, and `alarm(2)` fires once. After SIGTERM the caller
/// is told to exit — status 0, because the signal was *handled*. Every
/// recorded signal is reported once, and the record is left empty.
///
/// The pitfall: the handler may run again at any moment — also between your
/// looking at [`PENDING`] and your clearing it. A signal that arrives in
/// that gap must not be lost: looking and clearing must be one indivisible
/// step.
///
/// Why here and not in the handler: the main loop calls this only between
/// complete output lines, so a message never lands inside an echoed line.
///
/// Look up: the atomic operations of `AtomicU64` again; [`arm_alarm`];
/// [`Flow`].
fn report_signals(alarm_secs: u32) -> Result<Flow, Failure> {
    todo!("TODO 3: report the recorded signals")
}

/// TODO 4 — add the bytes just read (`chunk`) to the line being assembled.
///
/// What it must achieve: every line that `chunk` completes goes to `out`,
/// newline included; the bytes after the last newline wait in `partial` for
/// the rest of their line — also across signals (`abc`, SIGINT, `def⏎` must
/// give `abcdef`). A line that is exactly `exit` (without its newline)
/// returns [`Flow::Exit`]: the lines before it are in `out`, nothing after
/// it counts. Otherwise the result is [`Flow::Continue`].
///
/// Why: `read` returns whatever is there — half a line, many lines, a line
/// and a half. Finding line boundaries is your job.
///
/// Pitfalls, all in the slide: its `strcmp (buffer, "exit", 4)` (really
/// `strncmp`) also accepts `exitfoo`; its `buffer` still holds the newline;
/// its `strlen` stops at the first NUL byte. Work on bytes (`&[u8]`,
/// `Vec<u8>`), not `String`: the input need not be UTF-8 and is copied
/// exactly (`echo`, `exit-line`).
///
/// Look up: the slice methods that find a byte; `Vec::extend_from_slice`.
fn assemble_lines(partial: &mut Vec<u8>, chunk: &[u8], out: &mut Vec<u8>) -> Flow {
    todo!("TODO 4: cut the bytes into lines")
}

/// TODO 5 — the main loop: report signals, read stdin, echo complete lines;
/// until `exit`, EOF or SIGTERM.
///
/// What it must achieve:
/// - every signal is reported promptly: while the program is blocked
///   waiting for input, and also when it never blocks because input keeps
///   coming (`signal-storm`);
/// - input already read is never lost because a signal arrived;
/// - at EOF the unterminated last line is still a line (written with a
///   newline added, unless it is exactly `exit`), then `Exiting`;
/// - it returns `Ok(())` after `exit` (the lines before it written), after
///   EOF and after SIGTERM; a read error that is not an interruption is a
///   [`Failure::Read`];
/// - while nothing happens it sleeps in the kernel: no CPU, no polling
///   (`idle-cpu`).
///
/// The pitfalls: std's line readers (`read_line`, `lines`) and
/// `read_to_end`/`read_exact` retry an interrupted read internally, so your
/// loop would not see a signal until the next input — read the raw
/// descriptor instead (plain `Read::read` does not retry either way: it
/// reports the interruption). A read interrupted by a
/// signal is neither EOF nor an error: nothing was read, nothing is lost
/// (the slide's `perror` + `continue` has the right idea). Making stdin
/// non-blocking and looping around it is busy waiting.
///
/// Look up: `nix::unistd::read`, `nix::errno::Errno`, `man 2 read`
/// (ERRORS); `std::os::fd::AsFd` for the descriptor of `std::io::stdin()`.
fn echo_loop(alarm_secs: u32) -> Result<(), Failure> {
    todo!("TODO 5: the read loop")
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
