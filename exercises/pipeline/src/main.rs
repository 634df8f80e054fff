//! `pipeline` — the ipc-lab exercise `pipeline`. **This is the file you edit.**
//!
//! Read `exercises/pipeline/README.md` first; grade with
//! `cargo grade pipeline`.
//!
//! ```text
//! pipeline CMD [CMD ...]        e.g.  pipeline 'seq 1 100' 'grep 7' 'wc -l'
//! ```
//!
//! Each argument is one command, split on whitespace (no quoting). Your
//! program runs the commands as separate processes connected by pipes,
//! exactly like `sh -c 'seq 1 100 | grep 7 | wc -l'` — the shell pipe of the
//! slide "Pipes" (`cat datei | wc -l`: *Prozess1.stdout → Prozess2.stdin*),
//! built by hand from `pipe`, `fork`, `dup2` and `execvp`:
//!
//! ```text
//!   our stdin ─▶ [stage 0] ─pipe 1─▶ [stage 1] ─pipe 2─▶ [stage 2] ─▶ our stdout
//! ```
//!
//! Starting the processes is the easy half. The hard half is the slides
//! "Pipes, Sockets und Prozesse" (2)–(5): a pipe end is a kernel object with
//! a *reference counter*, and every descriptor referring to it, in any
//! process, counts. `fork` copies all descriptors, so after a `fork` both
//! processes hold both ends. A reader sees EOF only when *no* process holds
//! the write end any more; a writer gets SIGPIPE only when *no* process
//! holds the read end. "Wichtig: Deskriptoren schließen, die in einem
//! Prozess nicht mehr gebraucht werden (z.B. in einer Shell mit Pipes)" —
//! and this program *is* that shell.
//!
//! What is done for you: argument parsing into one `argv` per command
//! ([`parse_args`]), error reporting and exit codes ([`Failure`],
//! [`report`]), and [`child_fail`]. What you write: every function whose
//! body is `todo!()`, TODO 1–6, in that order. Once [`run`],
//! [`stage_child`], [`connect_stdio`], [`wait_all`] and [`exit_code`] are
//! done, `cargo grade pipeline --check like-sh` should pass;
//! [`reset_sigpipe`] then fixes `--check sigpipe`.
//!
//! Rules of the game (the grader checks them from outside):
//! - every stage sees only descriptors 0, 1, 2;
//! - every stage starts with SIGPIPE at its default action;
//! - the parent reaps every stage as it finishes, and exits with the last
//!   stage's status;
//! - never `println!`, never `unwrap()`: a panic fails the check;
//! - all system calls through `nix` (`nix::unistd::{pipe, fork, dup2_stdin,
//!   dup2_stdout, execvp}`, `nix::sys::wait::waitpid`,
//!   `nix::sys::signal::signal`), except `libc::_exit`, which nix lacks.
//!
//! Each TODO's doc comment says what it must achieve and why. Stuck? Ask for
//! a hint: `cargo grade --hint pipeline` (the concept), then `--level 2` (the
//! API) and `--level 3` (nearly the code); `--check ID` for one check.

// Lets the untouched skeleton compile without warnings.
// Delete this line when you are done: the warnings it hides are useful.
#![allow(unused_variables, unused_imports, dead_code)]

use std::ffi::{CString, OsString};
use std::fmt;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use nix::errno::Errno;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2_stdin, dup2_stdout, execvp, fork, pipe, ForkResult, Pid};

const USAGE: &str =
    "usage: pipeline CMD [CMD ...]   (each CMD one argument, e.g. pipeline 'seq 1 100' 'grep 7' 'wc -l')";

/// Exit status of a stage whose command cannot be executed (as in `sh`).
const NOT_FOUND: i32 = 127;

/// Exit status of a stage that failed before it could even try `execvp`
/// (a failed `dup2` or `signal`; in practice this never happens).
const SETUP_FAILED: i32 = 1;

// ---------------------------------------------------------------------------
// Errors and exit codes (Provided.)
// ---------------------------------------------------------------------------

/// Everything that ends the parent early: one line on stderr (prefixed
/// `pipeline: `), exit status 1. (Provided.)
#[derive(Debug)]
enum Failure {
    /// Bad command line.
    Usage(String),
    /// A system call of the parent failed (`pipe`, `fork`, `waitpid`):
    /// `Failure::Sys("fork", errno)`.
    Sys(&'static str, Errno),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(why) => write!(f, "{why}; {USAGE}"),
            Failure::Sys(what, errno) => write!(f, "{what}: {errno}"),
        }
    }
}

/// Turns a result into an exit status, printing the failure (if any) as one
/// line on stderr. Uses `writeln!` and ignores its result instead of
/// `eprintln!`, which would panic if stderr itself were a broken pipe.
/// (Provided.)
fn report(result: Result<u8, Failure>) -> u8 {
    match result {
        Ok(code) => code,
        Err(failure) => {
            let _ = writeln!(std::io::stderr(), "pipeline: {failure}");
            1
        }
    }
}

// ---------------------------------------------------------------------------
// The parent: build the pipeline — your part starts here
// ---------------------------------------------------------------------------

/// TODO 1 — start one process per command, connected by pipes; wait for
/// all of them; return the exit status (the last stage's).
///
/// What it must achieve: stage *i*'s stdout is a pipe into stage *i+1*'s
/// stdin; the first stage reads our stdin, the last writes our stdout. Each
/// stage becomes its command in [`stage_child`]. When every stage has been
/// started, [`wait_all`] reaps them and [`exit_code`] turns the last
/// stage's status into ours. If `pipe` or `fork` fails half-way, the stages
/// already started are still reaped before the failure is returned.
///
/// The heart of the exercise (slide "Pipes, Sockets und Prozesse (5)"): a
/// pipe end is one kernel object with a *reference count*, `fork` copies
/// every descriptor, and each copy counts — the parent's included. So
/// after handing an end to a child, ask: does the parent still need it?
/// - a write end the parent keeps is a writer that never writes and never
///   closes: the stage reading that pipe never sees EOF — `pipeline cat cat`
///   never ends (`eof-propagation`);
/// - a read end the parent keeps is a reader that never reads: when `head`
///   exits, `yes` gets no SIGPIPE but blocks on a full pipe forever
///   (`sigpipe`);
/// - and every child forked later inherits the leftovers.
///
/// Count, at every moment, which process holds which end — that decides
/// when to create each pipe and when to close what.
///
/// `fork` is `unsafe` in nix; say in a `// SAFETY:` comment why it is fine
/// here (one thread). Flush std's stdout before each `fork`: buffered bytes
/// would be printed twice.
///
/// Look up: `nix::unistd::{pipe, fork, ForkResult, Pid}`, `man 2 pipe`,
/// `man 7 pipe`; `OwnedFd` (dropping one is `close`; one still in scope is
/// still open — also in a child across `execvp`, which runs no
/// destructors).
fn run(commands: &[Vec<CString>]) -> Result<u8, Failure> {
    todo!("TODO 1: start the stages, connected by pipes; wait")
}

// ---------------------------------------------------------------------------
// The child: become one stage
// ---------------------------------------------------------------------------

/// TODO 2 — runs in the child after `fork`: becomes one stage of the
/// pipeline. Never returns.
///
/// - `input`: the read end of the pipe from the previous stage, or `None`
///   for the first stage (it keeps our stdin).
/// - `output`: the pipe to the next stage `(read_end, write_end)`, or
///   `None` for the last stage (it keeps our stdout).
///
/// What it must achieve: the command runs with the pipe ends as its
/// descriptors 0 and 1 ([`connect_stdio`]) and SIGPIPE at its default
/// ([`reset_sigpipe`]); a failure of either ends the child with
/// [`SETUP_FAILED`]. The command is looked up in `PATH` like the shell does;
/// `argv[0]` is its name and its first argument. If it cannot be executed:
/// `pipeline: NAME: command not found` on stderr and exit status 127
/// (`not-found`) — [`child_fail`] prints and exits.
///
/// Pitfalls:
/// - **Never return from here**, not even after a failed exec. The child is
///   a copy of the parent: returning continues the parent's loop in [`run`]
///   *inside the child*, which then forks the remaining stages a second
///   time (`pipeline nosuchcmd 'echo hi'` prints `hi` twice) and waits for
///   children that are not its own.
/// - Leave with `_exit` (what [`child_fail`] does), not
///   `std::process::exit`: nothing of the parent's (stdio buffers, `atexit`
///   handlers) should run a second time.
///
/// Look up: `nix::unistd::execvp` (its return type says when it returns),
/// `man 3 execvp`; `String::from_utf8_lossy` for NAME.
fn stage_child(argv: &[CString], input: Option<OwnedFd>, output: Option<(OwnedFd, OwnedFd)>) -> ! {
    todo!("TODO 2: become the stage")
}

/// TODO 3 — put the stage's pipe ends on descriptors 0 and 1, and leave the
/// child holding no other pipe descriptor.
///
/// What it must achieve: with `input`, descriptor 0 reads from that pipe;
/// with `output`, descriptor 1 writes into its pipe; afterwards the child
/// holds no pipe descriptor but 0 and 1 — the grader's probe stage lists
/// every descriptor it inherited (`inherited-state`).
///
/// Why every other descriptor must go: the command knows nothing about a
/// descriptor 3 or 4 and never closes it before it exits. A spare write end
/// keeps the next stage from ever seeing EOF; a spare read end — `output`'s,
/// which belongs to the next stage — keeps the pipe readable through this
/// process, so when the next stage exits early (`head`), this command
/// blocks on a full pipe instead of getting SIGPIPE.
///
/// (In C you would also check `fd != 0` before closing the original: in a
/// program started with stdin closed, `pipe()` can hand out descriptor 0
/// itself. Rust's runtime opens `/dev/null` on any of 0, 1, 2 that is
/// closed at startup, so here a pipe end is never 0, 1 or 2.)
///
/// Look up: `man 2 dup2`; `nix::unistd::{dup2_stdin, dup2_stdout}` (the
/// same call with the target fixed — `nix::unistd::dup2` wants the target
/// as an `OwnedFd`, which you do not have for 0 and 1); `drop`.
fn connect_stdio(input: Option<OwnedFd>, output: Option<(OwnedFd, OwnedFd)>) -> nix::Result<()> {
    todo!("TODO 3: the pipe ends onto 0 and 1")
}

/// TODO 4 — give the command SIGPIPE's default action (terminate) back.
///
/// Why: Rust's runtime sets SIGPIPE to "ignore" before `main`, so that a
/// Rust program gets `EPIPE` from `write` instead of being killed. A handler
/// cannot survive an exec, but "ignore" *does*: every command you start
/// would ignore SIGPIPE too. Then in `pipeline yes 'head -n 3'`, `yes` is
/// not killed when `head` exits (slide "Pipes, Sockets und Prozesse":
/// *Linux-Signal: SIGPIPE*) but gets `EPIPE` and complains `yes: standard
/// output: Broken pipe` (`sigpipe`). `std::process::Command` does this reset
/// for you; with `fork` + `execvp` it is your job — in the child, before
/// the exec: the parent itself wants `EPIPE`, not death, if its stderr goes
/// away.
///
/// Do not block any signal anywhere: the signal mask is inherited across
/// `fork` and exec too, and the probe stage checks that it is empty.
///
/// `unsafe`: setting a disposition can install a handler function; say in
/// a `// SAFETY:` comment why yours installs none.
///
/// Look up: `nix::sys::signal::{signal, SigHandler, Signal}`, `man 2
/// signal`, `man 7 signal` ("Signal dispositions", and what `execve` keeps).
fn reset_sigpipe() -> nix::Result<()> {
    todo!("TODO 4: SIGPIPE back to its default")
}

/// Prints `pipeline: MESSAGE` on stderr and ends the child with `_exit`.
/// (Provided.)
///
/// The line goes out in one `write` so that the messages of several stages
/// failing at once do not interleave. `libc::_exit` ends the process at
/// once: no destructors, no flushing of buffers inherited from the parent,
/// no `atexit` handlers.
fn child_fail(message: &str, code: i32) -> ! {
    let _ = std::io::stderr().write_all(format!("pipeline: {message}\n").as_bytes());
    // SAFETY: `_exit` ends the process at once; nothing is left to clean up.
    unsafe { libc::_exit(code) }
}

// ---------------------------------------------------------------------------
// The parent again: wait
// ---------------------------------------------------------------------------

/// TODO 5 — reap every child in `children`; return the wait status of the
/// last one (the last stage), or `None` if `children` is empty.
///
/// What it must achieve: every stage is reaped before the pipeline exits
/// (`no-zombies`) — the function returns when all `children.len()` of them
/// are. Reaping each as it finishes keeps the process table clean while the
/// others run. A child that is not in
/// `children` (a process can inherit children from before its exec) is
/// reaped but does not count. A wait interrupted by a signal is simply
/// repeated; any other error is `Failure::Sys("waitpid", errno)`.
///
/// (Waiting for the pids one by one in pipeline order is correct too: a
/// later stage that finished first stays a **zombie** — slide: `ps` shows
/// `Z` — only until you get to it.)
///
/// Pitfalls:
/// - waiting only for the last stage (its status is the one you need)
///   leaves all the others unreaped;
/// - not waiting at all: the pipeline "ends" while its stages still run,
///   and its exit status means nothing.
///
/// Look up: `nix::sys::wait::{waitpid, WaitStatus}`, `man 2 waitpid` (what
/// `pid` -1 means; in nix, which argument stands for it);
/// `WaitStatus::pid`.
fn wait_all(children: &[Pid]) -> Result<Option<WaitStatus>, Failure> {
    todo!("TODO 5: reap every stage")
}

/// TODO 6 — the shell's exit status for a child's wait status.
///
/// What it must achieve: what `sh` prints for `echo $?` after the pipeline
/// (`exit-status`): a stage that exited gives its exit code (0 to 255); a
/// stage killed by signal N gives 128 + N — SIGTERM (15) gives 143, SIGPIPE
/// (13) gives 141. Anything else (stopped or continued, which `waitpid`
/// reports only when asked to) gives 1.
///
/// Look up: the variants of `nix::sys::wait::WaitStatus`; `u8::try_from`;
/// `man 1p sh` ("Exit Status and Errors").
fn exit_code(status: WaitStatus) -> u8 {
    todo!("TODO 6: the exit status")
}

// ---------------------------------------------------------------------------
// Command line (Provided.)
// ---------------------------------------------------------------------------

/// Splits each argument on whitespace into the words of one command
/// (`argv` for `execvp`). No quoting, no globbing, no variables.
/// (Provided.)
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Vec<Vec<CString>>, Failure> {
    let mut commands = Vec::new();
    for (i, arg) in args.into_iter().enumerate() {
        let words = arg
            .as_bytes()
            .split(u8::is_ascii_whitespace)
            .filter(|word| !word.is_empty())
            .map(|word| {
                CString::new(word).map_err(|_| Failure::Usage(format!("command {} contains a NUL byte", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if words.is_empty() {
            return Err(Failure::Usage(format!("command {} is empty", i + 1)));
        }
        commands.push(words);
    }
    if commands.is_empty() {
        return Err(Failure::Usage("missing command".into()));
    }
    Ok(commands)
}

/// (Provided.)
fn main() -> ExitCode {
    let code = report(parse_args(std::env::args_os().skip(1)).and_then(|commands| run(&commands)));
    ExitCode::from(code)
}
