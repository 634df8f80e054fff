//! `pipeline` — reference solution of the ipc-lab exercise `pipeline`; its
//! contract is `exercises/pipeline/README.md`.
//!
//! ```text
//! pipeline CMD [CMD ...]        e.g.  pipeline 'seq 1 100' 'grep 7' 'wc -l'
//! ```
//!
//! Each argument is one command, split on whitespace (no quoting). The
//! commands run as separate processes connected by pipes, exactly like
//! `sh -c 'seq 1 100 | grep 7 | wc -l'` — the slide "Pipes" (`cat datei | wc
//! -l`: *Prozess1.stdout → Prozess2.stdin*), built from `pipe`, `fork`,
//! `dup2` and `execvp`:
//!
//! ```text
//!   our stdin ─▶ [stage 0] ─pipe 1─▶ [stage 1] ─pipe 2─▶ [stage 2] ─▶ our stdout
//! ```
//!
//! The whole difficulty is the slides "Pipes, Sockets und Prozesse" (2)–(5):
//! a pipe end is a kernel object with a *reference counter*; every
//! descriptor that refers to it, in any process, counts. `fork` copies all
//! descriptors, so after a `fork` both processes hold both ends. The reader
//! only sees EOF once *no* process holds the write end any more, and a
//! writer only gets SIGPIPE/EPIPE once *no* process holds the read end:
//! "Wichtig: Deskriptoren schließen, die in einem Prozess nicht mehr gebraucht
//! werden (z.B. in einer Shell mit Pipes)". This program is that shell.
//!
//! How the descriptors are kept in check (the way shells do it): pipe *i* is
//! created just before stage *i* is forked, and the parent closes its copies
//! right after each `fork`, so at any moment it holds at most three pipe
//! ends, and a new child inherits only the ends that concern it. Each child
//! moves its two ends onto descriptors 0 and 1 with `dup2`, closes the
//! originals and the end it does not use, and `execvp`s the command, which
//! then sees descriptors 0, 1, 2 and nothing else.
//!
//! Exit status: the last stage's (128 + N if it was killed by signal N), like
//! `sh`. A stage whose command cannot be executed prints
//! `pipeline: NAME: command not found` and exits 127. Bad arguments: usage on
//! stderr, exit 1.

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
// Errors and exit codes
// ---------------------------------------------------------------------------

/// Everything that ends the parent early: one line on stderr (prefixed
/// `pipeline: `), exit status 1.
#[derive(Debug)]
enum Failure {
    /// Bad command line.
    Usage(String),
    /// A system call of the parent failed (`pipe`, `fork`, `waitpid`).
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
// The parent: build the pipeline
// ---------------------------------------------------------------------------

/// Starts one process per command, connected by pipes, waits for all of them
/// and returns the exit status (the last stage's).
///
/// The loop keeps one descriptor across iterations: `input`, the read end of
/// the pipe the previous stage writes into (`None` before the first stage,
/// which reads our own stdin). For stage *i*:
///
/// 1. unless it is the last stage, `pipe()` creates the pipe to stage *i+1*
///    (`output`: read end, write end);
/// 2. `fork()`; the child becomes the stage ([`stage_child`], never returns);
/// 3. the parent closes what it does not need: `input` (stage *i* has its
///    own copy now, and we never read from it) and the new pipe's write end
///    (stage *i* is its only writer). It keeps only the new pipe's read end,
///    as `input` for stage *i+1*.
///
/// Step 3 is the reference counting of the slides at work. If the parent
/// kept a write end, the stage reading that pipe would never see EOF
/// (`pipeline cat cat cat` would hang when stdin ends). If it kept a read
/// end, a writer whose reader has exited would never get SIGPIPE
/// (`pipeline yes 'head -n 1'` would hang with a full pipe). And every
/// later child would inherit the leftovers. With step 3 the parent holds at
/// most one read end between forks, so a child inherits exactly the ends it
/// needs (plus the next stage's read end, which it closes itself).
///
/// No `O_CLOEXEC` (`pipe2`) is needed that way. (With all pipes created up
/// front, `pipe2(OFlag::O_CLOEXEC)` would be the safety net: the copies
/// `dup2` makes on 0 and 1 do not carry the flag and survive `execvp`, every
/// other end closes itself at `execvp`. The parent still has to close its
/// own ends, or EOF never comes.)
///
/// If `pipe` or `fork` fails half-way, the stages already started are left
/// to end the way they would in a shell whose neighbour stage died: we close
/// our ends (the last started stage gets SIGPIPE when it writes), reap them
/// all, and report the failure (exit 1).
fn run(commands: &[Vec<CString>]) -> Result<u8, Failure> {
    let mut children: Vec<Pid> = Vec::with_capacity(commands.len());
    let mut input: Option<OwnedFd> = None;
    let mut failure = None;

    for (i, argv) in commands.iter().enumerate() {
        let is_last = i + 1 == commands.len();
        let output = if is_last {
            None // the last stage writes our stdout
        } else {
            match pipe() {
                Ok(ends) => Some(ends),
                Err(errno) => {
                    failure = Some(Failure::Sys("pipe", errno));
                    break;
                }
            }
        };

        // Anything still in std's stdout buffer would be copied into the
        // child and printed twice. We print nothing, but the habit is cheap.
        let _ = std::io::stdout().flush();

        // SAFETY: this program is single-threaded, so the child may run any
        // code after `fork` (no lock can be held by a thread that does not
        // exist in the child); it soon calls `execvp` or `_exit` anyway.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => stage_child(argv, input, output),
            Ok(ForkResult::Parent { child }) => {
                children.push(child);
                // The child has its own copies now. Close ours:
                // the previous pipe's read end (only stage i reads it)…
                drop(input);
                // …and the new pipe's write end (only stage i writes it);
                // its read end is for stage i + 1.
                input = output.map(|(read_end, write_end)| {
                    drop(write_end);
                    read_end
                });
            }
            Err(errno) => {
                failure = Some(Failure::Sys("fork", errno));
                break;
            }
        }
    }
    // `None` unless we stopped half-way: the last stage got no new pipe.
    drop(input);

    let last = wait_all(&children)?;
    match (failure, last) {
        (Some(failure), _) => Err(failure),
        (None, Some(status)) => Ok(exit_code(status)),
        (None, None) => Ok(0), // unreachable: there is at least one command
    }
}

// ---------------------------------------------------------------------------
// The child: become one stage
// ---------------------------------------------------------------------------

/// Runs in the child after `fork`: wires the pipe ends onto stdin/stdout,
/// resets SIGPIPE and replaces itself with the command (`execvp`). Never
/// returns.
///
/// - `input`: the read end of the pipe from the previous stage, or `None`
///   for the first stage (which keeps our stdin).
/// - `output`: the pipe to the next stage (read end, write end), or `None`
///   for the last stage (which keeps our stdout).
///
/// If `execvp` returns, it failed: print `pipeline: NAME: command not found`
/// and leave with `_exit(127)`. The child must never return from here: it
/// would continue in the parent's loop in [`run`], fork the remaining stages
/// a second time and wait for children that are not its own. And `_exit`,
/// not `exit`: this process is a copy of the parent, its job is done, and
/// nothing of the parent's (stdio buffers, `atexit` handlers) should run
/// twice.
fn stage_child(argv: &[CString], input: Option<OwnedFd>, output: Option<(OwnedFd, OwnedFd)>) -> ! {
    if let Err(errno) = connect_stdio(input, output) {
        child_fail(&format!("dup2: {errno}"), SETUP_FAILED);
    }
    if let Err(errno) = reset_sigpipe() {
        child_fail(&format!("signal: {errno}"), SETUP_FAILED);
    }

    // On success `execvp` does not return: this process now runs the
    // command, with our descriptors 0, 1, 2 and SIGPIPE at its default.
    // It searches PATH like the shell; argv[0] is the command's name.
    // `parse_args` guarantees at least one word per command.
    let Err(_errno) = execvp(&argv[0], argv);

    // Whatever the reason (ENOENT, EACCES, ENOEXEC, …): the contract
    // (exercises/pipeline/README.md) wants this one line and status 127.
    let name = String::from_utf8_lossy(argv[0].as_bytes());
    child_fail(&format!("{name}: command not found"), NOT_FOUND)
}

/// Moves the stage's pipe ends onto descriptors 0 and 1 and closes every
/// other pipe descriptor this child holds.
///
/// `dup2_stdin(&fd)` is `dup2(fd, 0)`: descriptor 0 now refers to the same
/// pipe end as `fd` (the reference count of that end goes up by one). The
/// original `fd` must be closed afterwards: the command knows nothing about
/// it, and a forgotten write end keeps the next stage from ever seeing EOF,
/// a forgotten read end keeps the previous stage from ever getting SIGPIPE.
///
/// `nix::unistd::dup2` itself wants the target as `&mut OwnedFd`, which we
/// do not have for 0 and 1; `dup2_stdin` / `dup2_stdout` are the same system
/// call with the target fixed.
///
/// (In C you would check `fd != 0` before that `close`: in a program started
/// with stdin closed, `pipe()` can hand out descriptor 0 itself, `dup2(0, 0)`
/// does nothing, and the `close` would take the new stdin away again. Rust's
/// runtime opens `/dev/null` on any of 0, 1, 2 that is closed at startup, so
/// here a pipe end is never 0, 1 or 2.)
fn connect_stdio(input: Option<OwnedFd>, output: Option<(OwnedFd, OwnedFd)>) -> nix::Result<()> {
    // The read end of our output pipe belongs to the next stage. Keep it
    // open here and we keep the pipe readable ourselves: when the next
    // stage exits early (`head`), our command would block on a full pipe
    // instead of getting SIGPIPE.
    let write_end = output.map(|(read_end, write_end)| {
        drop(read_end);
        write_end
    });
    if let Some(read_end) = input {
        dup2_stdin(&read_end)?;
        drop(read_end); // close the original: fd 0 is the way in now
    }
    if let Some(write_end) = write_end {
        dup2_stdout(&write_end)?;
        drop(write_end); // close the original: fd 1 is the way out now
    }
    Ok(())
}

/// Puts SIGPIPE back to its default action (terminate the process).
///
/// Rust's runtime sets SIGPIPE to "ignore" before `main`, so that a Rust
/// program gets `EPIPE` back from `write` instead of being killed. An ignored
/// signal *stays ignored across `execvp`* (a handler cannot survive exec, an
/// "ignore" can). Without this reset every command we start would ignore
/// SIGPIPE too: in `pipeline yes 'head -n 3'`, `yes` would not die when
/// `head` exits but see `EPIPE` and complain `yes: standard output: Broken
/// pipe` (slide "Pipes, Sockets und Prozesse": *Linux-Signal: SIGPIPE*).
/// `std::process::Command` does this reset for you; with `fork` + `execvp`
/// it is your job. We block no signal, so the signal mask the commands
/// inherit is the (empty) one we were started with.
fn reset_sigpipe() -> nix::Result<()> {
    // SAFETY: installs no handler function, only the default action.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map(drop)
}

/// Prints `pipeline: MESSAGE` on stderr and ends the child with `_exit`.
///
/// The line goes out in one `write` so that the messages of several stages
/// failing at once do not interleave.
fn child_fail(message: &str, code: i32) -> ! {
    let _ = std::io::stderr().write_all(format!("pipeline: {message}\n").as_bytes());
    // SAFETY: `_exit` ends the process at once; nothing is left to clean up.
    unsafe { libc::_exit(code) }
}

// ---------------------------------------------------------------------------
// The parent again: wait
// ---------------------------------------------------------------------------

/// Reaps every child in `children` and returns the status of the last one
/// (the last stage), or `None` if there is none.
///
/// `waitpid(None, ..)` is `waitpid(-1, ..)`: it returns as soon as *any*
/// child has ended, so each stage is reaped when it finishes, in whatever
/// order that happens. Waiting for the pids one by one in pipeline order is
/// correct as well (the contract asks only that every stage is reaped before
/// we exit), but a stage that ends early (`echo`, or `head` in
/// `yes | head -n 3`) then stays a zombie while we sit in `waitpid` for an
/// earlier one.
/// A child we did not start (our process could have inherited one before
/// `exec`) is reaped and ignored.
fn wait_all(children: &[Pid]) -> Result<Option<WaitStatus>, Failure> {
    let mut last_status = None;
    let mut running = children.len();
    while running > 0 {
        match waitpid(None, None) {
            Ok(status) => {
                let Some(pid) = status.pid() else { continue };
                if children.contains(&pid) {
                    running -= 1;
                    if children.last() == Some(&pid) {
                        last_status = Some(status);
                    }
                }
            }
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(Failure::Sys("waitpid", errno)),
        }
    }
    Ok(last_status)
}

/// The shell's exit status for a child's wait status: its exit code, or
/// 128 + N if it was killed by signal N (SIGTERM: 143, SIGPIPE: 141).
fn exit_code(status: WaitStatus) -> u8 {
    match status {
        WaitStatus::Exited(_, code) => u8::try_from(code).unwrap_or(1),
        WaitStatus::Signaled(_, signal, _) => u8::try_from(128 + signal as i32).unwrap_or(1),
        _ => 1, // stopped/continued: not reported without WUNTRACED/WCONTINUED
    }
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// Splits each argument on whitespace into the words of one command
/// (`argv` for `execvp`). No quoting, no globbing, no variables.
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

fn main() -> ExitCode {
    let code = report(parse_args(std::env::args_os().skip(1)).and_then(|commands| run(&commands)));
    ExitCode::from(code)
}
