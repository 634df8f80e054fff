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

use super::support::{measure_idle, not_before, time_left};
use crate::check::{same, same_line, Check, Ctx, Exercise};
use crate::harness::procfs::{self, Status};
use crate::harness::{Failure, Kind, Program, Step};

const BIN: &str = "sigecho";

pub fn exercise() -> Exercise {
    Exercise {
        id: "signals",
        title: "Signals: a line echo that handles SIGINT, SIGALRM and SIGTERM",
        slides: "„Bandbreite des Kommunikationskanals“ (Signale) and „Beispiel“ (sighandler)",
        bins: &[BIN],
        checks: vec![
            Check::new(
                "ready",
                5,
                "prints `ready PID` once its three handlers are installed",
                "Install the handlers for SIGINT, SIGALRM and SIGTERM with `sigaction`, arm the alarm, \
                 and only then print `ready <pid>` (pid from `nix::unistd::getpid()`) and flush it.",
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
            Check::new(
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

fn ready(cx: &Ctx) -> Step {
    let p = start(cx, "0")?;
    let status = procfs::status(p.pid()).ok_or_else(|| Failure::grader("cannot read /proc/PID/status"))?;
    cx.did("read SigCgt in /proc/PID/status");
    let missing: Vec<&str> = [(libc::SIGINT, "SIGINT"), (libc::SIGALRM, "SIGALRM"), (libc::SIGTERM, "SIGTERM")]
        .into_iter()
        .filter(|&(sig, _)| !Status::has(status.sig_cgt, sig))
        .map(|(_, name)| name)
        .collect();
    if !missing.is_empty() {
        return Err(Failure::wrong(
            format!("no handler for {} when `ready` was printed (SigCgt {:016x})", missing.join(", "), status.sig_cgt),
            "handlers for SIGINT, SIGALRM and SIGTERM installed before `ready`",
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
    let line = p.line(&format!("`{want}` promptly"), cx.secs(2.0)).map_err(|f| {
        if f.kind == Kind::TimedOut && f.got.contains("pipe_read") {
            f.with_hint(
                "the signal came, but the program is back in `read` and did not notice: a handler with \
                 SA_RESTART (or std's `read_line`/`read`, which retry EINTR) restarts the read",
            )
        } else {
            f
        }
    })?;
    same_line(&line, &want)
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
        let line = p.line(&format!("`Caught signal 14` number {k}, {k} s after the start"), left)?;
        let at = p.elapsed();
        same_line(&line, "Caught signal 14")?;
        not_before(&format!("alarm number {k}"), at, earliest, "the start")?;
        cx.did(format!("saw alarm number {k} at {:.2} s", at.as_secs_f64()));
    }
    Ok(())
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
    let mut input = Vec::with_capacity(LINES * 48);
    for i in 0..LINES {
        let pad = "x".repeat(i % 61);
        input.extend_from_slice(format!("line {i:05} {pad}\n").as_bytes());
    }
    p.send(&input);
    let mut sent = 0;
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
    })?;
    cx.did(format!("sent {SIGNALS} × SIGINT while it echoed"));
    p.close_stdin();
    p.expect_exit(0, "the whole echo, `Exiting` and exit status 0", cx.secs(20.0))?;
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
    same("the echo (with the `Caught signal 2` lines taken out)", &echoed, &input)?;
    if caught == 0 {
        return Err(Failure::wrong("not one `Caught signal 2` line", "at least one (signals coalesce, but not all)"));
    }
    cx.did(format!("counted {caught} `Caught signal 2` lines"));
    Ok(())
}

fn idle_cpu(cx: &Ctx) -> Step {
    let mut p = start(cx, "0")?;
    let pid = p.pid();
    let usage = measure_idle(&mut p, pid, BIN, Duration::from_millis(500), "without input")?;
    usage.expect_no_cpu("a blocked read uses no CPU")?;
    usage.expect_no_polling("a blocked read sleeps until something happens")?;
    finish(cx, &mut p)
}
