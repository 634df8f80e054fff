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

/// TODO 1 — start one process per command, connected by pipes; wait for all
/// of them; return the exit status (the last stage's).
///
/// The simplest way to get the descriptors right is the shell's: create
/// pipe *i* just before forking stage *i*, and close the parent's copies
/// right after each `fork`. Keep one variable across the iterations,
/// `input: Option<OwnedFd>`: the read end of the pipe the previous stage
/// writes into (`None` before the first stage, which reads our own stdin).
/// For each command `argv` (at index `i`):
///
/// 1. Unless it is the last command: `let (read_end, write_end) = pipe()`
///    (`nix::unistd::pipe`; error → `Failure::Sys("pipe", errno)`): the
///    pipe from this stage to the next. Keep it as
///    `output: Option<(OwnedFd, OwnedFd)>` (`None` for the last stage, which
///    writes our stdout).
/// 2. `std::io::stdout().flush()` — a habit before every `fork` (buffered
///    output would be printed twice; we print nothing, but still).
/// 3. `match unsafe { fork() }` (write a `// SAFETY:` comment: we are
///    single-threaded):
///    - `Ok(ForkResult::Child)` → `stage_child(argv, input, output)`. It
///      never returns (its type is `!`).
///    - `Ok(ForkResult::Parent { child })` → remember `child` (a `Vec<Pid>`
///      in pipeline order). Then **close what the parent does not need**:
///      `drop(input)` (the child has its own copy; we never read it) and
///      the new pipe's write end (only the child writes into it). Keep the
///      new pipe's read end as `input` for the next stage.
///    - `Err(errno)` → `Failure::Sys("fork", errno)`.
/// 4. After the loop: [`wait_all`], then [`exit_code`] of the last stage.
///
/// Why close in the parent? (slide "Pipes, Sockets und Prozesse (5)")
/// - a write end the parent keeps is a writer that never writes and never
///   closes: the stage reading that pipe never sees EOF, `pipeline cat cat`
///   never ends;
/// - a read end the parent keeps is a reader that never reads: when `head`
///   exits, `yes` does not get SIGPIPE but blocks on a full pipe forever;
/// - and every child forked later would inherit the leftovers.
///
/// `pipe()` returns two `OwnedFd`s, and an `OwnedFd` is closed when it is
/// dropped: `drop(fd)` is `close(fd)`. The other way round, one that is
/// still in scope is still open — also in the child across `execvp`, which
/// runs no destructors.
///
/// (Alternative: create all pipes up front. Then every child must close
/// every end except its two, and the parent all of them after the last
/// fork; `pipe2(OFlag::O_CLOEXEC)` helps with the children, since the
/// copies `dup2` makes on 0 and 1 do not inherit the flag. More work — the
/// way above needs neither.)
///
/// If `pipe` or `fork` fails half-way, do not simply return: close your
/// ends and still [`wait_all`] for the stages already started, then return
/// the failure.
fn run(commands: &[Vec<CString>]) -> Result<u8, Failure> {
    todo!("run: for each command pipe (unless last), fork, close the parent's copies; then wait_all")
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
/// What to do:
/// 1. [`connect_stdio`]`(input, output)`; on error
///    `child_fail(&format!("dup2: {errno}"), SETUP_FAILED)`.
/// 2. [`reset_sigpipe`]`()`; on error `child_fail(.., SETUP_FAILED)`.
/// 3. `execvp(&argv[0], argv)` (`nix::unistd::execvp`: searches PATH like
///    the shell; `argv[0]` is the command's name and also its first
///    argument). On success it does **not return**: this process now *is*
///    the command, with our descriptors 0, 1, 2. It returns only with an
///    error — its type is `Result<Infallible>`, so
///    `let Err(errno) = execvp(..);` compiles.
/// 4. It failed (not found, not executable, …): print
///    `pipeline: NAME: command not found` (NAME = `argv[0]`, e.g. via
///    `String::from_utf8_lossy(argv[0].as_bytes())`) and exit with status
///    127 — both done by [`child_fail`]`(&format!("{name}: command not
///    found"), NOT_FOUND)`.
///
/// Pitfalls:
/// - **Never return from here**, not even after a failed `execvp`. The
///   child is a copy of the parent: returning continues the parent's loop
///   in [`run`] *inside the child*, which then forks the remaining stages a
///   second time (`pipeline nosuchcmd 'echo hi'` prints `hi` twice) and
///   waits for children that are not its own.
/// - Leave with `libc::_exit` (what [`child_fail`] does), not
///   `std::process::exit`: this process is a copy of the parent, and
///   nothing of the parent's (stdio buffers, `atexit` handlers) should run
///   a second time.
fn stage_child(argv: &[CString], input: Option<OwnedFd>, output: Option<(OwnedFd, OwnedFd)>) -> ! {
    todo!("stage_child: connect_stdio, reset_sigpipe, execvp; if it returns: command not found, _exit(127)")
}

/// TODO 3 — moves the stage's pipe ends onto descriptors 0 and 1 and closes
/// every other pipe descriptor this child holds.
///
/// What to do:
/// 1. `output`: close (`drop`) its **read end** — it belongs to the next
///    stage. Kept open here, the pipe stays readable through us: when the
///    next stage exits early (`head`), our command blocks on a full pipe
///    instead of getting SIGPIPE.
/// 2. `input` (if any): `dup2_stdin(&read_end)?` — that is `dup2(fd, 0)`:
///    descriptor 0 now refers to the same pipe end (its reference count
///    goes up by one). Then close the original: `drop(read_end)`.
/// 3. `output`'s **write end** (if any): `dup2_stdout(&write_end)?`, then
///    `drop(write_end)`.
///
/// Why close the originals? After `dup2` the command reaches the pipe
/// through 0 or 1; the original descriptor (3, 4, …) is an extra reference
/// it knows nothing about and never closes before it exits. The grader's
/// probe stage lists every descriptor it inherited: only 0, 1, 2 may be
/// open.
///
/// (`nix::unistd::dup2(old, &mut new)` wants the target as an `OwnedFd`,
/// which we do not have for 0 and 1; `dup2_stdin` / `dup2_stdout` are the
/// same system call with the target fixed. And in C you would check
/// `fd != 0` before that `close`: in a program started with stdin closed,
/// `pipe()` can hand out descriptor 0 itself. Rust's runtime opens
/// `/dev/null` on any of 0, 1, 2 that is closed at startup, so here a pipe
/// end is never 0, 1 or 2.)
fn connect_stdio(input: Option<OwnedFd>, output: Option<(OwnedFd, OwnedFd)>) -> nix::Result<()> {
    todo!("connect_stdio: close output's read end; dup2 input onto 0, output's write end onto 1; close the originals")
}

/// TODO 4 — puts SIGPIPE back to its default action (terminate).
///
/// `unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }` (`nix::sys::
/// signal::signal`, the C `signal(SIGPIPE, SIG_DFL)`), mapped to `()`
/// (`.map(drop)`). `unsafe` because `signal` can install handler functions;
/// `SigDfl` installs none — say so in a `// SAFETY:` comment.
///
/// Why? Rust's runtime sets SIGPIPE to "ignore" before `main`, so that a
/// Rust program gets `EPIPE` from `write` instead of being killed. A
/// handler cannot survive `execvp`, but "ignore" *does*: every command you
/// start would ignore SIGPIPE too. Then in `pipeline yes 'head -n 3'`,
/// `yes` is not killed when `head` exits (slide "Pipes, Sockets und
/// Prozesse": *Linux-Signal: SIGPIPE*) but gets `EPIPE` and complains
/// `yes: standard output: Broken pipe`. `std::process::Command` does this
/// reset for you; with `fork` + `execvp` it is your job. Do it in the child
/// (before `execvp`), not in the parent: the parent wants `EPIPE`, not
/// death, if its stderr goes away.
///
/// Do not block any signal anywhere: the signal mask is inherited across
/// `fork` and `execvp` too, and the probe stage checks it is empty.
fn reset_sigpipe() -> nix::Result<()> {
    todo!("reset_sigpipe: signal(SIGPIPE, SigDfl)")
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

/// TODO 5 — reaps every child in `children` and returns the wait status of
/// the last one (the last stage), or `None` if `children` is empty.
///
/// Reap each stage **as soon as it finishes**, whatever the order: call
/// `waitpid(None, None)` — `None` is `waitpid(-1, ..)`, "any child" — in a
/// loop until all `children.len()` of them have come back.
/// - `Ok(status)`: `status.pid()` says which child; if it is one of ours,
///   count it, and if it is `children.last()`, remember `status`. (Ignore a
///   child that is not in `children`: a process can inherit children from
///   before its `exec`.)
/// - `Err(Errno::EINTR)`: a signal interrupted the wait; just wait again.
/// - any other error: `Failure::Sys("waitpid", errno)`.
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
fn wait_all(children: &[Pid]) -> Result<Option<WaitStatus>, Failure> {
    todo!("wait_all: waitpid(None, None) until every child is reaped; keep the last stage's status")
}

/// TODO 6 — the shell's exit status for a child's wait status.
///
/// - `WaitStatus::Exited(_, code)`: `code` (0..=255; `u8::try_from`).
/// - `WaitStatus::Signaled(_, signal, _)`: `128 + signal as i32` — killed by
///   SIGTERM (15) gives 143, by SIGPIPE (13) 141 — exactly what `sh` prints
///   for `echo $?`.
/// - anything else (stopped/continued: not reported without `WUNTRACED` /
///   `WCONTINUED`): 1.
fn exit_code(status: WaitStatus) -> u8 {
    todo!("exit_code: Exited → code, Signaled → 128 + N")
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
