//! `sigecho` — reference solution of the ipc-lab exercise `signals`.
//!
//! Lecture: slide *Bandbreite des Kommunikationskanals* (schmalbandige Kanäle:
//! Linux signals) and slide *Beispiel* (the C program with `sighandler`).
//!
//! ```text
//! sigecho [--alarm SECONDS]      (default 5; 0 disables the alarm)
//! ```
//!
//! * installs handlers for SIGINT, SIGALRM and SIGTERM, arms the alarm, then
//!   prints `ready PID`;
//! * echoes stdin to stdout line by line, byte-exact (a line is written when
//!   its newline arrives; an unterminated last line is written at EOF with a
//!   newline added);
//! * a line exactly `exit` ends the program (status 0, not echoed); EOF prints
//!   `Exiting` and ends it (status 0);
//! * SIGINT prints `Caught signal 2`, SIGALRM prints `Caught signal 14` and
//!   re-arms the alarm, SIGTERM prints `Caught signal 15` and exits 0.
//!
//! # The design, and why
//!
//! A signal handler runs *asynchronously*: the kernel may interrupt the main
//! program between any two instructions — in the middle of `println!` (while
//! it holds the stdout lock and its buffer is half updated), in the middle of
//! `malloc`, anywhere. A handler that prints or allocates can therefore
//! deadlock, corrupt the output or abort the process (with Rust's `println!`
//! under a storm of signals: "RefCell already borrowed", SIGABRT). So the
//! handler does the one thing that is always safe: it sets a bit in an
//! atomic variable ([`PENDING`]). Everything else — printing, re-arming the
//! alarm, exiting — happens in the main loop, at a point where the program is
//! in a consistent state (between two complete output lines).
//!
//! How does the main loop notice the bit while it sleeps in `read(2)` with no
//! input pending? The handlers are installed with `sigaction` *without*
//! `SA_RESTART`: then a signal that is caught while the process is blocked in
//! `read` makes `read` fail with `EINTR` after the handler has run. The main
//! loop treats `EINTR` as "a handler ran: look at the flags" and then simply
//! reads again. With `SA_RESTART` (which glibc's `signal()` — used on the
//! slide — sets implicitly) the kernel restarts the `read` silently and the
//! flag would only be noticed when the next input arrives.
//!
//! Input is read with `nix::unistd::read` directly: std's `read_line`,
//! `lines`, `read_to_end` and `read_exact` retry `EINTR` internally, so they
//! would hide exactly the event we are waiting for. (Plain `Read::read` does
//! not retry — it returns `ErrorKind::Interrupted` — and would do as well;
//! `nix::unistd::read` says `Errno::EINTR` in so many words.) Output may use
//! std (see [`write_all`]): there, retrying `EINTR` is what we want.

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

/// The signals we catch, in the order they are reported when several are
/// pending at once (ascending signal number: 2, 14, 15).
const CAUGHT: [Signal; 3] = [Signal::SIGINT, Signal::SIGALRM, Signal::SIGTERM];

/// Signals caught but not yet reported: bit `n` set means "signal `n`
/// arrived". Written by the handler, read-and-cleared by the main loop.
///
/// Why an atomic and not a `static mut bool`? The main loop reads the flag in
/// a loop in which (as far as the compiler can see) nothing writes it; with a
/// plain variable the optimiser may load it once and keep it in a register
/// forever (works in debug builds, hangs in release builds). An atomic load is
/// performed every time, and `fetch_or`/`swap` make "set a bit" and
/// "take all bits" indivisible, so no signal that arrives in between is lost.
///
/// A bit mask, not a counter: like the kernel (which keeps at most one
/// pending instance of each standard signal) we only promise "signal N
/// arrived at least once since the last report".
static PENDING: AtomicU64 = AtomicU64::new(0);

/// The signal handler, for all three signals.
///
/// It must be *async-signal-safe* (`man 7 signal-safety`): no printing, no
/// allocation, no locks — only the atomic update. It does not call anything
/// that could change `errno` either, so the interrupted code's `errno` stays
/// intact.
extern "C" fn on_signal(signo: c_int) {
    if (1..64).contains(&signo) {
        // Ordering hardly matters for a handler running on the same thread;
        // SeqCst is the simple, obviously correct choice.
        PENDING.fetch_or(1 << signo, Ordering::SeqCst);
    }
}

/// Installs [`on_signal`] for SIGINT, SIGALRM and SIGTERM.
///
/// `SaFlags::empty()` — deliberately *no* `SA_RESTART`, so that a blocking
/// `read` is interrupted (`EINTR`) when a signal arrives; see the module
/// docs. `SigSet::empty()`: no extra signals are blocked while the handler
/// runs (it is three instructions long and re-entrant anyway).
///
/// Unlike the slide, there is no need to re-install the handler inside the
/// handler: `sigaction` handlers stay installed (no `SA_RESETHAND`).
fn install_handlers() -> nix::Result<()> {
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
    for signal in CAUGHT {
        // SAFETY: `on_signal` only performs an atomic read-modify-write,
        // which is async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// Schedules the next SIGALRM in `secs` seconds; `0` means "no alarm".
///
/// `alarm::set(0)` panics in nix (it wants `alarm::cancel()` for that), hence
/// the branch.
fn arm_alarm(secs: u32) {
    if secs == 0 {
        alarm::cancel();
    } else {
        alarm::set(secs);
    }
}

/// Why the program stopped early; `main` turns it into a message and a status.
enum Failure {
    /// Installing the handlers failed.
    Setup(Errno),
    /// Reading stdin failed (other than `EINTR`, which is not a failure).
    Read(Errno),
    /// Writing stdout failed, e.g. `EPIPE` when the reader has gone.
    Write(std::io::Error),
}

/// What the caller should do next.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

/// Writes `bytes` (whole lines) to stdout and flushes them at once.
///
/// Only the main loop prints, so std's stdout is fine here. Two details:
/// * std's `write_all` retries by itself when `write(2)` writes only part of
///   the bytes (a nearly full pipe) or fails with `EINTR` (our handlers have
///   no `SA_RESTART`, so a signal arriving while we wait for room in a full
///   pipe interrupts the `write`). For *output* that retry is what we want —
///   the signal is reported by the main loop right after, between lines.
/// * `flush`: std's stdout is line-buffered; flushing makes "written" mean
///   "visible to the reader now", whatever is in `bytes`.
///
/// Never call this (or `println!`) from the signal handler: if the signal
/// interrupts the main loop while it holds the stdout lock, printing in the
/// handler re-enters it and the process aborts ("already borrowed").
fn write_all(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|()| stdout.flush()).map_err(Failure::Write)
}

/// Reports every signal caught since the last call, one whole line each.
///
/// Called by the main loop only between complete output lines, so a signal
/// message never ends up inside an echoed line. SIGALRM re-arms the alarm
/// (`alarm` is one-shot, periodic behaviour means arming it again); SIGTERM
/// asks the caller to exit (status 0: we *handled* the signal, we were not
/// killed by it).
fn report_signals(alarm_secs: u32) -> Result<Flow, Failure> {
    // Take all pending bits at once; a signal arriving right after this swap
    // sets its bit again and is reported on the next call.
    let pending = PENDING.swap(0, Ordering::SeqCst);
    if pending == 0 {
        return Ok(Flow::Continue);
    }
    for signal in CAUGHT {
        let signo = signal as c_int;
        if pending & (1 << signo) == 0 {
            continue;
        }
        write_all(format!("Caught signal {signo}\n").as_bytes())?;
        match signal {
            Signal::SIGALRM => arm_alarm(alarm_secs),
            Signal::SIGTERM => return Ok(Flow::Exit),
            _ => {}
        }
    }
    Ok(Flow::Continue)
}

/// Appends `chunk` (bytes just read) to the line being assembled in
/// `partial`; every line completed by a newline goes into `out`, newline
/// included.
///
/// `read` returns whatever bytes are available — half a line, many lines, a
/// line and a half — so line boundaries have to be found by us, and the
/// unfinished rest must be kept in `partial` until its newline arrives (also
/// across `EINTR`: bytes that were already read are never thrown away).
///
/// Returns [`Flow::Exit`] when a line is exactly `exit` (compared *without*
/// its newline, all four bytes and nothing more: `exitfoo` is an ordinary
/// line). The lines before it are in `out`; everything after it is ignored.
fn assemble_lines(partial: &mut Vec<u8>, chunk: &[u8], out: &mut Vec<u8>) -> Flow {
    let mut rest = chunk;
    while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
        partial.extend_from_slice(&rest[..newline]);
        rest = &rest[newline + 1..];
        if partial == b"exit" {
            return Flow::Exit;
        }
        out.extend_from_slice(partial);
        out.push(b'\n');
        partial.clear();
    }
    partial.extend_from_slice(rest);
    Flow::Continue
}

/// The main loop: report signals, read, echo complete lines, repeat.
///
/// Pending signals are looked at before every `read`: after `EINTR` (a signal
/// arrived while we were blocked) and also after a successful `read` (a
/// signal may arrive while we are busy echoing, not blocked at all — then no
/// `read` fails, but the bit is set all the same).
///
/// A known, small window remains: a signal that arrives after
/// [`report_signals`] looked but before `read` blocks only sets its bit; the
/// `read` is not interrupted (the handler already ran), so that message waits
/// until the next input, signal or EOF. Closing that window needs the signal
/// to be turned into something `read`/`poll` can wait for — the self-pipe
/// trick, `signalfd`, or `ppoll`/`pselect` with the signals blocked outside
/// the call (see the `select` exercise).
fn echo_loop(alarm_secs: u32) -> Result<(), Failure> {
    // We only use std's stdin for its file descriptor (0), never its
    // buffered reader.
    let stdin = std::io::stdin();
    let mut buf = [0u8; 64 * 1024];
    // The line read so far, not yet terminated by a newline.
    let mut partial: Vec<u8> = Vec::new();
    // Complete lines from one `read`, written with as few `write`s as possible.
    let mut out: Vec<u8> = Vec::new();

    loop {
        if report_signals(alarm_secs)? == Flow::Exit {
            return Ok(());
        }

        let n = match read(stdin.as_fd(), &mut buf) {
            Ok(n) => n,
            // Interrupted by one of our handlers: nothing was read, nothing
            // is lost; go round and report the signal.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Failure::Read(e)),
        };

        if n == 0 {
            // EOF: the unterminated last line still counts as a line.
            if !partial.is_empty() {
                if partial == b"exit" {
                    return Ok(());
                }
                partial.push(b'\n');
                write_all(&partial)?;
            }
            write_all(b"Exiting\n")?;
            return Ok(());
        }

        let flow = assemble_lines(&mut partial, &buf[..n], &mut out);
        write_all(&out)?;
        out.clear();
        if flow == Flow::Exit {
            return Ok(());
        }
    }
}

/// Installs the handlers, arms the alarm, announces itself, echoes.
fn run(alarm_secs: u32) -> Result<(), Failure> {
    install_handlers().map_err(Failure::Setup)?;
    arm_alarm(alarm_secs);
    // Only now are we ready: a signal sent after this line is caught.
    write_all(format!("ready {}\n", getpid()).as_bytes())?;
    echo_loop(alarm_secs)
}

/// What the command line asks for.
enum Command {
    Run { alarm_secs: u32 },
    Help,
}

/// Parses `[--alarm SECONDS]` (also `--alarm=SECONDS`) and `--help`.
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
/// panics when stderr is closed).
fn diagnose(message: &str) {
    let _ = writeln!(std::io::stderr(), "sigecho: {message}");
}

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
            // SIGPIPE, so we get the error instead of being killed; stop
            // with one line on stderr and a distinct status (no panic).
            diagnose(&format!("writing stdout: {e}"));
            ExitCode::from(4)
        }
    }
}
