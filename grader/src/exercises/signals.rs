//! `signals` — binary `sigecho` (contract: exercises/signals/README.md;
//! slides „Bandbreite des Kommunikationskanals“ and „Beispiel“ with the
//! `sighandler` program).
//!
//! The test plan: the echo itself; then each signal while the program sits
//! blocked in `read` (the case the slide's `printf`-in-handler version gets
//! away with and a SA_RESTART version gets wrong); input kept across EINTR;
//! the periodic alarm with a strict lower bound; a storm of signals during
//! heavy echo; and no CPU burnt while idle.

use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::support::{measure_idle, not_before, settle, time_left};
use crate::check::{same, same_line, Check, Ctx, Exercise};
use crate::harness::failure::{excerpt, grouped, signal_name};
use crate::harness::procfs::{self, PipeEnd, Status};
use crate::harness::{Failure, Kind, Program, Step};

const BIN: &str = "sigecho";

pub fn exercise() -> Exercise {
    Exercise {
        id: "signals",
        title: "Signals: a line echo that handles SIGINT, SIGALRM and SIGTERM",
        slides: "„Bandbreite des Kommunikationskanals“ (Signale) and „Beispiel“ (sighandler)",
        bins: &[BIN],
        hints: include_str!("../../hints/signals.toml"),
        checks: vec![
            Check::new(
                "ready",
                5,
                "prints `ready PID` once SIGINT, SIGALRM and SIGTERM are caught (or blocked for signalfd/sigwait)",
                "Install the handlers for SIGINT, SIGALRM and SIGTERM with `sigaction` (or block the three in \
                 every thread and take them with `signalfd`/`sigwait`), arm the alarm, and only then print \
                 `ready <pid>` (pid from `nix::unistd::getpid()`) and flush it.",
                ready,
            ),
            Check::new(
                "echo",
                10,
                "echoes lines byte-exactly, the last one even without newline, then `Exiting`",
                "Treat input as bytes, not text (a NUL or an invalid UTF-8 byte is data). Write each line \
                 when its `\\n` arrives; at EOF write a pending partial line plus `\\n`, then `Exiting`.",
                echo,
            ),
            Check::new(
                "exit-line",
                5,
                "a line exactly `exit` ends with status 0; `exitfoo` is just echoed",
                "Compare the whole line. The slide's `strcmp(buffer, \"exit\", 4)` is a bug: it also \
                 matches `exitfoo` (and `strcmp` takes no length at all).",
                exit_line,
            ),
            Check::new(
                "eof",
                5,
                "empty input: `ready`, `Exiting`, status 0",
                "`read` returning 0 means EOF: print `Exiting` and exit 0.",
                eof,
            ),
            Check::new(
                "sigint-idle",
                15,
                "SIGINT while blocked in `read` is answered at once, and it keeps running",
                "A handler installed with SA_RESTART (or std's `read_line`, which retries EINTR) sends the \
                 program straight back into `read`: the flag is seen only when the next input comes. \
                 Install the handler without SA_RESTART, so `nix::unistd::read` returns `Errno::EINTR`, \
                 and handle the pending signal there.",
                sigint_idle,
            ),
            Check::new(
                "sigint-mid-line",
                10,
                "input read before a SIGINT is kept: `abc`, SIGINT, `def` gives `abcdef`",
                "EINTR is not EOF and not an error: keep the partial line you have buffered, print the \
                 signal message as a whole line, and go on reading.",
                sigint_mid_line,
            ),
            Check::timed(
                "alarm-periodic",
                15,
                "`--alarm 1`: `Caught signal 14` every second, never early",
                "`alarm` fires once. Re-arm it each time SIGALRM was caught (`alarm::set`), so it repeats.",
                alarm_periodic,
            ),
            Check::new(
                "sigterm",
                10,
                "SIGTERM: `Caught signal 15`, then exit status 0",
                "Catch SIGTERM like the others; after printing the message exit with status 0 instead of \
                 being killed by the signal.",
                sigterm,
            ),
            Check::heavy(
                "signal-storm",
                15,
                "thousands of SIGINTs during heavy echo: nothing lost, corrupted, crashed or hung",
                "A handler may only do async-signal-safe work: set an atomic flag (or write to a \
                 self-pipe). `println!` in a handler deadlocks or aborts when the signal hits while \
                 the main loop holds stdout; print from the main loop, between whole lines.",
                signal_storm,
            ),
            Check::new(
                "idle-cpu",
                10,
                "no CPU and no polling while waiting for input",
                "Block in `read` (it returns on data, EOF or a signal). A loop around a non-blocking read, \
                 `sleep`, or a flag check spins the CPU or wakes up hundreds of times a second.",
                idle_cpu,
            ),
        ],
    }
}

/// Start `sigecho` with `--alarm ALARM` and take its `ready PID` line.
fn start(cx: &Ctx, alarm: &str) -> Step<Program> {
    let mut p = cx.start(BIN, &["--alarm", alarm])?;
    let want = format!("ready {}", p.seen_pid());
    let line = p.line(&format!("`{want}` as the first line"), cx.secs(5.0))?;
    same_line(&line, &want)?;
    Ok(p)
}

/// Wait until the program blocks waiting for input.
fn wait_blocked(cx: &Ctx, p: &mut Program) -> Step {
    p.wait_idle("sigecho to block reading its stdin", cx.secs(5.0))?;
    cx.did("waited until sigecho was blocked reading stdin");
    Ok(())
}

/// Close stdin and expect `Exiting` and status 0 with nothing else.
fn finish(cx: &Ctx, p: &mut Program) -> Step {
    p.close_stdin();
    let line = p.line("`Exiting` after stdin was closed", cx.secs(5.0))?;
    same_line(&line, "Exiting")?;
    p.expect_exit(0, "exit status 0 after `Exiting`", cx.secs(5.0))?;
    same("stdout after `Exiting`", p.stdout_pending(), b"")
}

/// SIGINT, SIGALRM and SIGTERM that process `pid` neither catches nor
/// blocks in every thread, with its SigCgt and SigBlk.
fn unprepared(pid: Pid) -> (Vec<&'static str>, u64, u64) {
    let caught = procfs::status(pid).map_or(0, |s| s.sig_cgt);
    let blocked = procfs::blocked_in_every_thread(pid).unwrap_or(0);
    let missing = [(libc::SIGINT, "SIGINT"), (libc::SIGALRM, "SIGALRM"), (libc::SIGTERM, "SIGTERM")]
        .into_iter()
        .filter(|&(sig, _)| !Status::has(caught, sig) && !Status::has(blocked, sig))
        .map(|(_, name)| name)
        .collect();
    (missing, caught, blocked)
}

fn ready(cx: &Ctx) -> Step {
    let mut p = start(cx, "0")?;
    let pid = p.pid();
    // Caught by a handler, or blocked in every thread: then only `sigwait`
    // or a `signalfd` takes it, and the default action never runs. A thread
    // on its way into `sigwait` shows the signals as unblocked a moment
    // before it sleeps there: while some thread still runs, look again.
    let runs = |pid| procfs::tasks(pid).iter().any(|t| t.state == 'R');
    settle(&mut p, "the signals to be caught or blocked", cx.secs(1.0), |_| {
        (unprepared(pid).0.is_empty() || !runs(pid)).then_some(())
    })?;
    cx.did("read SigCgt in /proc/PID/status and SigBlk of every thread in /proc/PID/task/*/status");
    let (missing, caught, blocked) = unprepared(pid);
    if !missing.is_empty() {
        return Err(Failure::wrong(
            format!(
                "{} neither caught nor blocked in every thread when `ready` was printed (SigCgt {caught:016x}, \
                 SigBlk {blocked:016x})",
                missing.join(", "),
            ),
            "a handler for SIGINT, SIGALRM and SIGTERM (or each blocked in every thread, for signalfd/sigwait) \
             before `ready`",
        ));
    }
    Ok(())
}

fn echo(cx: &Ctx) -> Step {
    let mut p = start(cx, "0")?;
    let input: &[u8] = b"hello, world\n\nbytes \xff\xfe\x00 kept\ntab\there\nexit now\nlast line without newline";
    p.send(input);
    p.close_stdin();
    p.expect_exit(0, "the echo, `Exiting` and exit status 0", cx.secs(5.0))?;
    let mut want = input.to_vec();
    want.extend_from_slice(b"\nExiting\n");
    same("the echo", p.stdout_pending(), &want)
}

fn exit_line(cx: &Ctx) -> Step {
    let mut p = start(cx, "0")?;
    p.send(b"exitfoo\nexit\nthis line must not be echoed\n");
    p.expect_exit(0, "exit status 0 right after the line `exit` (stdin still open)", cx.secs(5.0))?;
    same("stdout after `ready`", p.stdout_pending(), b"exitfoo\n")
}

fn eof(cx: &Ctx) -> Step {
    let mut p = start(cx, "0")?;
    finish(cx, &mut p)
}

fn expect_caught(cx: &Ctx, p: &mut Program, sig: i32) -> Step {
    let want = format!("Caught signal {sig}");
    let line = p.line(&format!("`{want}` promptly"), cx.secs(2.0)).map_err(|f| unnoticed(p, sig, f))?;
    same_line(&line, &want)
}

/// The hint for a handler that ran while the program went back into
/// `read`.
const RESTARTED: &str = "a handler installed with SA_RESTART makes the kernel restart the `read`, and so do std's \
                         `read_line`, `lines`, `read_to_end` and `read_exact`, which retry EINTR (plain \
                         `Read::read` does not: it returns `ErrorKind::Interrupted`). Install the handler without \
                         SA_RESTART, so `nix::unistd::read` fails with `Errno::EINTR`, and print the message then";

/// A signal `sig` sent while the program sat in `read`, and no answer: what
/// its signal masks in `/proc` say became of the signal.
fn unnoticed(p: &Program, sig: i32, f: Failure) -> Failure {
    let in_read = procfs::pipe_wait(p.pid()).is_some_and(|(end, _)| end == PipeEnd::Read);
    let Some(m) = procfs::signal_masks(p.pid()).filter(|_| f.kind == Kind::TimedOut && in_read) else { return f };
    let name = signal_name(sig);
    if Status::has(m.pending & m.blocked, sig) {
        f.diagnosed(
            format!("{name} is still pending: {BIN} blocks it and waits in `read`, which it does not interrupt"),
            "a blocked signal waits until it is unblocked or taken with `sigwait` or a `signalfd`: wait for stdin \
             and the signal together (`poll` on stdin and the signalfd), or leave it unblocked",
        )
    } else if Status::has(m.caught, sig) {
        f.diagnosed(
            format!(
                "the signal arrived ({BIN} has a handler for {name}, and it is not pending), and {BIN} went back \
                 into `read` without printing"
            ),
            RESTARTED,
        )
    } else if Status::has(m.ignored, sig) {
        f.diagnosed(format!("{BIN} ignores {name} (SIG_IGN): it arrives and nothing happens"), "install a handler")
    } else {
        f
    }
}

fn sigint_idle(cx: &Ctx) -> Step {
    let mut p = start(cx, "0")?;
    // Twice: a program that only looks at its flag before blocking may get
    // the first one right by luck of timing, not the second.
    for _ in 0..2 {
        wait_blocked(cx, &mut p)?;
        p.signal(Signal::SIGINT);
        expect_caught(cx, &mut p, 2)?;
    }
    p.send(b"still here\n");
    let line = p.line("the echo of `still here` (it must keep running after SIGINT)", cx.secs(5.0))?;
    same_line(&line, "still here")?;
    finish(cx, &mut p)
}

fn sigint_mid_line(cx: &Ctx) -> Step {
    let mut p = start(cx, "0")?;
    p.send(b"abc");
    wait_blocked(cx, &mut p)?;
    p.signal(Signal::SIGINT);
    expect_caught(cx, &mut p, 2)?;
    p.send(b"def\n");
    let line = p.line("`abcdef` (the bytes read before the signal kept)", cx.secs(5.0))?;
    same_line(&line, "abcdef")?;
    finish(cx, &mut p)
}

fn alarm_periodic(cx: &Ctx) -> Step {
    let mut p = start(cx, "1")?;
    for k in 1..=2u64 {
        let earliest = Duration::from_secs(k);
        let left = time_left(cx, p.elapsed(), earliest, 1.0);
        let line = p
            .line(&format!("`Caught signal 14` number {k}, {k} s after the start"), left)
            .map_err(|f| alarm_missing(cx, &mut p, k, f))?;
        let at = p.elapsed();
        same_line(&line, "Caught signal 14")?;
        not_before(&format!("alarm number {k}"), at, earliest, "the start")?;
        cx.did(format!("saw alarm number {k} at {:.2} s", at.as_secs_f64()));
    }
    Ok(())
}

/// Alarm number `k` did not come: send a SIGALRM by hand, to tell an alarm
/// that never fired from one that fired and went unnoticed.
fn alarm_missing(cx: &Ctx, p: &mut Program, k: u64, f: Failure) -> Failure {
    if f.kind != Kind::TimedOut || p.exit().is_some() {
        return f;
    }
    p.signal(Signal::SIGALRM);
    match p.line("`Caught signal 14` for the SIGALRM the grader sent", cx.secs(1.0)) {
        Ok(line) if line == b"Caught signal 14" && k == 1 => f.diagnosed(
            format!("no alarm came, but {BIN} answered a SIGALRM the grader sent itself: the alarm was not armed"),
            "arm it with `alarm::set` once the handlers are installed, before `ready`",
        ),
        Ok(line) if line == b"Caught signal 14" => f.diagnosed(
            format!(
                "the first alarm came, and {BIN} answered a SIGALRM the grader sent itself, but no second alarm \
                 came: `alarm` fires once"
            ),
            "re-arm it each time SIGALRM was caught (`alarm::set`), so it repeats",
        ),
        Ok(_) => f,
        Err(probe) => match unnoticed(p, libc::SIGALRM, probe).diagnosis {
            Some(d) => f.diagnosed(
                format!("no answer to the alarm, nor to a SIGALRM the grader sent itself: {}", d.what_it_means),
                d.hint,
            ),
            None => f,
        },
    }
}

fn sigterm(cx: &Ctx) -> Step {
    let mut p = start(cx, "0")?;
    wait_blocked(cx, &mut p)?;
    p.signal(Signal::SIGTERM);
    expect_caught(cx, &mut p, 15)?;
    p.expect_exit(0, "exit status 0 after `Caught signal 15`", cx.secs(2.0))
}

fn signal_storm(cx: &Ctx) -> Step {
    const LINES: usize = 40_000;
    const SIGNALS: usize = 5_000;
    let mut p = start(cx, "0")?;
    let _heavy = cx.heavy();
    let mut input = Vec::with_capacity(LINES * 48);
    for i in 0..LINES {
        let pad = "x".repeat(i % 61);
        input.extend_from_slice(format!("line {i:05} {pad}\n").as_bytes());
    }
    p.send(&input);
    // First the one moment that is sure to show a handler that prints: the
    // grader stops reading, the program blocks in the `write` of a line
    // (inside its output library's lock), and then the signal comes.
    p.hold_stdout(true);
    let mut asleep = 0;
    p.wait_for("sigecho to block writing its stdout (the grader stopped reading it)", cx.secs(10.0), true, |p| {
        match p.stdout_stalled() {
            Some(true) => return Some(()),
            // Asleep elsewhere (a `poll` for a writable stdout): seen twice
            // in a row, so a passing pause does not count.
            Some(false) => asleep += 1,
            None => asleep = 0,
        }
        (asleep >= 2).then_some(())
    })
    .map_err(storm_broke)?;
    p.signal(Signal::SIGINT);
    p.hold_stdout(false);
    let mut sent = 1;
    // Sampled, so the bursts go on even while the program prints nothing.
    p.wait_for("the echo of all input while signals arrive", cx.secs(20.0), true, |p| {
        // A burst per wake-up, so the signals land all through the echo.
        for _ in 0..25 {
            if sent < SIGNALS {
                p.signal_quiet(Signal::SIGINT);
                sent += 1;
            }
        }
        (sent == SIGNALS && p.stdin_backlog() == 0).then_some(())
    })
    .map_err(storm_broke)?;
    cx.did(format!("sent {SIGNALS} × SIGINT while it echoed"));
    p.close_stdin();
    p.expect_exit(0, "the whole echo, `Exiting` and exit status 0", cx.secs(20.0)).map_err(storm_broke)?;
    let out = p.take_stdout();
    let mut echoed = Vec::with_capacity(out.len());
    let mut caught = 0;
    for line in out.split_inclusive(|&b| b == b'\n') {
        if line == b"Caught signal 2\n" {
            caught += 1;
        } else {
            echoed.extend_from_slice(line);
        }
    }
    input.extend_from_slice(b"Exiting\n");
    same("the echo (with the `Caught signal 2` lines taken out)", &echoed, &input).map_err(|f| {
        let Some(at) = inside_a_line(&out, b"Caught signal ") else { return f };
        f.diagnosed(
            format!(
                "the output has `Caught signal` inside an echoed line, at byte {} ({}): it was written while the \
                 main loop was in the middle of a line, so the handler prints",
                grouped(at),
                excerpt(&out, at.saturating_sub(20), at + 16)
            ),
            STORM,
        )
    })?;
    if caught == 0 {
        return Err(Failure::wrong("not one `Caught signal 2` line", "at least one (signals coalesce, but not all)"));
    }
    cx.did(format!("counted {caught} `Caught signal 2` lines"));
    Ok(())
}

/// The hint for a handler that prints.
const STORM: &str = "the handler runs wherever the signal interrupts the main loop: inside its `write` of a \
                     line, inside std's stdout lock. Even a raw `write(2)`, async-signal-safe as it is, lands in \
                     the middle of a line. Set a flag in the handler and print from the main loop, between whole \
                     lines";

/// A crash or a hang during the signal storm, when it shows a handler that
/// prints: a panic in std's stdout, an abort, a deadlock in a lock.
fn storm_broke(f: Failure) -> Failure {
    let means = match f.kind {
        Kind::Panicked if f.got.contains("already borrowed") => format!(
            "{BIN} panicked inside std's stdout (`already borrowed`): a signal handler printed while the main \
             loop was printing"
        ),
        Kind::Crashed if f.got.contains("SIGABRT") => format!(
            "{BIN} aborted during the signal storm: a handler that prints or allocates, entered while the main \
             loop held the same lock, takes the process down"
        ),
        Kind::TimedOut if f.got.contains("futex") => format!(
            "{BIN} hung in a lock (futex) during the signal storm: a handler waits for a lock that the main loop \
             it interrupted holds"
        ),
        _ => return f,
    };
    f.diagnosed(means, STORM)
}

/// Where `needle` starts in `out` other than at the start of a line.
fn inside_a_line(out: &[u8], needle: &[u8]) -> Option<usize> {
    (1..out.len()).find(|&i| out[i - 1] != b'\n' && out[i..].starts_with(needle))
}

fn idle_cpu(cx: &Ctx) -> Step {
    let mut p = start(cx, "0")?;
    let pid = p.pid();
    let usage = measure_idle(&mut p, pid, BIN, Duration::from_millis(500), "without input")?;
    usage.expect_no_cpu("a blocked read uses no CPU")?;
    usage.expect_no_polling("a blocked read sleeps until something happens")?;
    finish(cx, &mut p)
}
