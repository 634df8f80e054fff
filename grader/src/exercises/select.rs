//! `select` — binary `evloop` (contract: exercises/select/README.md; slides
//! „I/O-Multiplexing“, „I/O Multiplexing (poll)“, „Timeouts (1)“ and
//! „Timeouts (2)“).
//!
//! The grader plays every client. The test plan: the commands; input split
//! and packed any way; lines of any length up to the contract's 64 KiB;
//! one stalled client never delays another; timers in deadline order, never
//! early; the idle timeout and its reset; timers of a closed client dropped
//! however it went (idle, `QUIT`, reset), also for the next client on the
//! same descriptor; one thread in one process, no CPU while idle;
//! disconnects and resets; 500 clients; and shutdown from stdin.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::support::{
    descriptors, measure_idle, not_before, pattern, settle, start_server, time_left, with_whereabouts,
};
use crate::check::{same, Check, Ctx, Exercise};
use crate::harness::{procfs, show, Conn, Failure, Program, Step};

const BIN: &str = "evloop";

pub fn exercise() -> Exercise {
    Exercise {
        id: "select",
        title: "Event loop: one thread, one poll, many clients and timers",
        slides:
            "„I/O-Multiplexing“, „I/O-Multiplexing: select“, „I/O Multiplexing (poll)“, „Timeouts (1)“, „Timeouts (2)“",
        bins: &[BIN],
        hints: include_str!("../../hints/select.toml"),
        checks: vec![
            Check::new(
                "welcome",
                5,
                "each new client gets `welcome ID`, ids 1, 2, … in accept order",
                "Put the listening socket into the poll set; when it is readable, `accept`, add the new \
                 socket to the set and send `welcome N`.",
                welcome,
            ),
            Check::new(
                "echo",
                6,
                "ECHO, unknown commands and QUIT",
                "`ECHO TEXT` → `TEXT`; anything unknown → `ERR unknown command`; `QUIT` → `BYE`, then close.",
                echo,
            ),
            Check::new(
                "split-and-packed",
                8,
                "commands packed into one segment, and one split byte by byte",
                "TCP is a byte stream: one `read` can hold several commands or half of one. Keep a buffer per \
                 client, append what you read, and handle every complete line in it; keep the rest.",
                split_and_packed,
            ),
            Check::new(
                "long-lines",
                5,
                "`ECHO` of a 10 000-byte text, and of a 60 000-byte one sent in pieces, comes back whole",
                "A line may be as long as 64 KiB (the contract's limit): grow the client's input buffer as \
                 bytes arrive (a `Vec`), or size a fixed one for the whole limit. A 4 KiB buffer cuts long \
                 lines.",
                long_lines,
            ),
            Check::new(
                "stalled-client",
                8,
                "a client stalled mid-line does not delay another",
                "Never block on one client: read only from sockets `poll` reported readable, with one `read` \
                 each (non-blocking sockets), and never wait for the rest of a line.",
                stalled_client,
            ),
            Check::new(
                "say",
                8,
                "SAY reaches every other client, not the sender",
                "`SAY TEXT` → `ID: TEXT` to each connected client except the sender.",
                say,
            ),
            Check::timed(
                "timers",
                9,
                "TIMER 300/100/200 fire in deadline order, never early",
                "Keep the deadlines as absolute times in a sorted list (slide „Timeouts (1)“); before each \
                 `poll`, fire what is due and pass the time until the earliest one as the timeout.",
                timers,
            ),
            Check::timed(
                "idle-timeout",
                8,
                "`BYE idle` after T ms without input, not before; input resets it",
                "Each client has an idle deadline in the same sorted list: `last input + T`. Move it whenever \
                 bytes arrive from that client.",
                idle_timeout,
            ),
            Check::timed(
                "idle-drops-timers",
                6,
                "an idle-closed client's timers are dropped, also for the next client on its descriptor",
                "Descriptor numbers are reused at once. Key timers by a client id (or a generation number), \
                 not by the descriptor, and drop or ignore them when the client is closed.",
                idle_drops_timers,
            ),
            Check::timed(
                "quit-drops-timers",
                6,
                "timers of a client that sent `QUIT` or reset its connection are dropped, also for the next \
                 client on its descriptor",
                "However a client goes — `QUIT`, EOF, a reset, idle — its timers go with it: close every \
                 client in one place that also drops (or invalidates, by client id) its deadlines.",
                quit_drops_timers,
            ),
            Check::new(
                "single-thread",
                5,
                "exactly one thread, in one process",
                "The point of `poll`/`select` is to serve everybody from one thread: no worker threads, and no \
                 helper process that does the serving for the process the grader started.",
                single_thread,
            ),
            Check::new(
                "idle-cpu",
                5,
                "no CPU while nothing happens",
                "`poll` with timeout 0 (or `select` with a zero `timeval`, or one reused after select \
                 changed it) returns at once: busy waiting. Without deadlines, wait with timeout -1.",
                idle_cpu,
            ),
            Check::new(
                "disconnects",
                6,
                "abrupt disconnects and resets leave the others working, descriptors back at baseline",
                "`read` returning 0 (EOF) or ECONNRESET closes that client only: remove it from the set, \
                 close its descriptor, drop its deadlines.",
                disconnects,
            ),
            Check::heavy(
                "many-clients",
                7,
                "500 clients at once",
                "`select`'s fd_set holds descriptors below 1024 only (FD_SETSIZE); `poll` has no such limit. \
                 A listen backlog of 10 (the slide's) is too small for a burst of connections.",
                many_clients,
            ),
            Check::new(
                "shutdown",
                8,
                "`quit` or EOF on stdin: `BYE shutdown` to every client, exit 0",
                "Put stdin (fd 0) into the poll set too; on `quit` or EOF send `BYE shutdown` to every \
                 client, close them all and exit 0.",
                shutdown,
            ),
        ],
    }
}

/// Connect client `n` to the server `p` at `addr` and take its welcome
/// line.
fn client(cx: &Ctx, p: &Program, addr: SocketAddr, n: usize) -> Step<Conn> {
    let mut c = cx.connect(&format!("client {n}"), addr).map_err(with_whereabouts(p))?;
    c.expect_line(&format!("welcome {n}"), cx.secs(5.0)).map_err(with_whereabouts(p))?;
    Ok(c)
}

fn welcome(cx: &Ctx) -> Step {
    let (p, addr) = start_server(cx, BIN, &[])?;
    let _c1 = client(cx, &p, addr, 1)?;
    let _c2 = client(cx, &p, addr, 2)?;
    Ok(())
}

fn echo(cx: &Ctx) -> Step {
    let (p, addr) = start_server(cx, BIN, &[])?;
    let mut c = client(cx, &p, addr, 1)?;
    let t = cx.secs(5.0);
    let run = |c: &mut Conn| -> Step {
        c.send(b"ECHO hello, event loop\n", t)?;
        c.expect_line("hello, event loop", t)?;
        c.send(b"FROBNICATE\n", t)?;
        c.expect_line("ERR unknown command", t)?;
        c.send(b"QUIT\n", t)?;
        c.expect_line("BYE", t)?;
        c.expect_eof("the connection closed after `BYE`", t)
    };
    run(&mut c).map_err(with_whereabouts(&p))
}

fn split_and_packed(cx: &Ctx) -> Step {
    let (mut p, addr) = start_server(cx, BIN, &[])?;
    let mut c = client(cx, &p, addr, 1)?;
    let t = cx.secs(5.0);
    c.send(b"ECHO one\nECHO two\nBOGUS\nECHO three\n", t)?;
    for want in ["one", "two", "ERR unknown command", "three"] {
        c.expect_line(want, t).map_err(with_whereabouts(&p))?;
    }
    let cmd = b"ECHO split\n";
    for (i, b) in cmd.iter().enumerate() {
        c.send_quiet(&[*b], t)?;
        if i + 1 < cmd.len() {
            p.wait_idle("evloop to wait for more input", t)?;
            c.drain();
            if !c.pending().is_empty() {
                return Err(Failure::wrong(
                    format!("client 1 received {} before the line was complete", show(c.pending())),
                    "nothing until the newline arrives",
                ));
            }
        }
    }
    cx.did("client 1 sent `ECHO split\\n` one byte at a time, waiting for evloop to block in between");
    c.expect_line("split", t).map_err(with_whereabouts(&p))
}

/// Printable text of `len` bytes, without `\n` or `\r`: a line's body.
fn text(len: usize, seed: u32) -> Vec<u8> {
    pattern(len, seed).into_iter().map(|b| b' ' + b % 95).collect()
}

fn long_lines(cx: &Ctx) -> Step {
    let (mut p, addr) = start_server(cx, BIN, &[])?;
    let mut c = client(cx, &p, addr, 1)?;
    let t = cx.secs(5.0);
    // Both well below the contract's 64 KiB; the second comes in pieces,
    // each read by the server before the next is sent.
    let cases = [("10 000 bytes in one write", (10_000, 1)), ("60 000 bytes in 12 pieces", (60_000, 12))];
    cx.cases(&cases, |&(len, pieces)| {
        let body = text(len, len as u32);
        let line = [b"ECHO ".as_slice(), &body, b"\n"].concat();
        for (i, piece) in line.chunks(line.len().div_ceil(pieces)).enumerate() {
            c.send_quiet(piece, t)?;
            if i + 1 < pieces {
                p.wait_idle("evloop to wait for the rest of the line", t)?;
            }
        }
        let how = if pieces == 1 { "in one write".to_string() } else { format!("in {pieces} pieces") };
        cx.did(format!("client 1 sent `ECHO` with a {len}-byte text {how}"));
        let got = c.line(&format!("the {len}-byte text back"), t).map_err(with_whereabouts(&p))?;
        same(&format!("the answer to the {len}-byte ECHO"), &got, &body).map_err(|mut f| {
            f.expected = format!("all {len} bytes back: lines up to 64 KiB are commands like any other");
            f
        })
    })
}

fn stalled_client(cx: &Ctx) -> Step {
    let (p, addr) = start_server(cx, BIN, &[])?;
    let t = cx.secs(5.0);
    let mut slow = client(cx, &p, addr, 1)?;
    let mut fast = client(cx, &p, addr, 2)?;
    slow.send(b"ECHO half a li", t)?;
    fast.send(b"ECHO quick\n", t)?;
    fast.expect_line("quick", cx.secs(1.0)).map_err(with_whereabouts(&p))?;
    slow.send(b"ne\n", t)?;
    slow.expect_line("half a line", t).map_err(with_whereabouts(&p))
}

fn say(cx: &Ctx) -> Step {
    let (p, addr) = start_server(cx, BIN, &[])?;
    let t = cx.secs(5.0);
    let mut c1 = client(cx, &p, addr, 1)?;
    let mut c2 = client(cx, &p, addr, 2)?;
    let mut c3 = client(cx, &p, addr, 3)?;
    c1.send(b"SAY hi all\n", t)?;
    c2.expect_line("1: hi all", t).map_err(with_whereabouts(&p))?;
    c3.expect_line("1: hi all", t).map_err(with_whereabouts(&p))?;
    // The sender must not get its own message: the next thing it receives
    // is the answer to this ECHO.
    c1.send(b"ECHO marker\n", t)?;
    let line = c1.line("`marker` (and not its own SAY)", t).map_err(with_whereabouts(&p))?;
    same("client 1's next line after its SAY", &line, b"marker")
}

fn timers(cx: &Ctx) -> Step {
    let (p, addr) = start_server(cx, BIN, &[])?;
    let mut c = client(cx, &p, addr, 1)?;
    let sent = Instant::now();
    c.send(b"TIMER 300 a\nTIMER 100 b\nTIMER 200 c\n", cx.secs(5.0))?;
    for (label, ms) in [("b", 100u64), ("c", 200), ("a", 300)] {
        let earliest = Duration::from_millis(ms);
        let left = time_left(cx, sent.elapsed(), earliest, 0.5);
        let line =
            c.line(&format!("`TIMER {label}` about {ms} ms after the request"), left).map_err(with_whereabouts(&p))?;
        let when = sent.elapsed();
        same("the next timer", &line, format!("TIMER {label}").as_bytes())?;
        not_before(&format!("`TIMER {label}`"), when, earliest, "the request")?;
        cx.did(format!("received `TIMER {label}` after {} ms", when.as_millis()));
    }
    Ok(())
}

fn idle_timeout(cx: &Ctx) -> Step {
    let idle = cx.secs(0.3);
    let idle_ms = idle.as_millis().to_string();
    let (mut p, addr) = start_server(cx, BIN, &["--idle-ms", &idle_ms])?;
    let connected = Instant::now();
    let mut c1 = client(cx, &p, addr, 1)?;
    let mut c2 = client(cx, &p, addr, 2)?;
    // Client 2 speaks after a third of the idle time; client 1 never does.
    p.observe(idle / 3, "evloop to keep running")?;
    let spoke = Instant::now();
    c2.send(b"ECHO still here\n", cx.secs(5.0))?;
    c2.expect_line("still here", cx.secs(5.0)).map_err(with_whereabouts(&p))?;
    c1.expect_line("BYE idle", idle + cx.secs(1.0)).map_err(with_whereabouts(&p))?;
    not_before("client 1's `BYE idle`", connected.elapsed(), idle, "it connected")?;
    c1.expect_eof("client 1's connection closed after `BYE idle`", cx.secs(2.0))?;
    c2.expect_line("BYE idle", idle + cx.secs(1.0)).map_err(with_whereabouts(&p))?;
    not_before("client 2's `BYE idle`", spoke.elapsed(), idle, "its last input (input resets the idle time)")
}

fn idle_drops_timers(cx: &Ctx) -> Step {
    let idle = cx.secs(0.4);
    let timer = cx.secs(0.5);
    let (idle_ms, timer_ms) = (idle.as_millis().to_string(), timer.as_millis());
    let (mut p, addr) = start_server(cx, BIN, &["--idle-ms", &idle_ms])?;
    let mut c1 = client(cx, &p, addr, 1)?;
    let t0 = Instant::now();
    c1.send(format!("TIMER {timer_ms} late\n").as_bytes(), cx.secs(5.0))?;
    c1.expect_line("BYE idle", idle + cx.secs(1.0)).map_err(with_whereabouts(&p))?;
    c1.expect_eof("client 1's connection closed after `BYE idle`", cx.secs(2.0))?;
    // The next client most likely gets the same descriptor number.
    let mut c2 = client(cx, &p, addr, 2)?;
    // Keep client 2 busy until well after client 1's timer was due.
    let mut n = 0;
    while t0.elapsed() < timer + idle / 4 {
        n += 1;
        c2.send_quiet(format!("ECHO keep {n}\n").as_bytes(), cx.secs(5.0))?;
        let line = c2.line("the ECHO answer", cx.secs(5.0)).map_err(with_whereabouts(&p))?;
        same("client 2's next line", &line, format!("keep {n}").as_bytes()).map_err(|f| {
            f.diagnosed(
                "client 1's timer was delivered to client 2 on the reused descriptor",
                "drop a client's timers when it goes: the next client gets its descriptor number",
            )
        })?;
        p.observe(idle / 8, "evloop to keep running")?;
    }
    cx.did(format!("client 2 sent {n} ECHOs until client 1's timer was long due"));
    Ok(())
}

/// A client whose timer must never fire: it went (how) before the timer
/// was due.
struct Gone {
    n: usize,
    label: &'static str,
    how: &'static str,
}

fn quit_drops_timers(cx: &Ctx) -> Step {
    // No idle closing: only `QUIT` and the reset end a client here.
    let (mut p, addr) = start_server(cx, BIN, &["--idle-ms", "600000"])?;
    let t = cx.secs(5.0);
    let timer = cx.secs(0.6);
    let ms = timer.as_millis();
    let gone = [
        Gone { n: 1, label: "after-quit", how: "sent `QUIT`" },
        Gone { n: 3, label: "after-reset", how: "reset its connection" },
    ];
    let mut c1 = client(cx, &p, addr, 1)?;
    let first_set = Instant::now();
    c1.send(format!("TIMER {ms} {}\nQUIT\n", gone[0].label).as_bytes(), t)?;
    c1.expect_line("BYE", t).map_err(with_whereabouts(&p))?;
    c1.expect_eof("client 1's connection closed after `BYE`", t)?;
    // The next client most likely gets client 1's descriptor number.
    let mut c2 = client(cx, &p, addr, 2)?;
    let baseline = descriptors(&p);
    let mut c3 = client(cx, &p, addr, 3)?;
    let last_set = Instant::now();
    c3.send(format!("TIMER {ms} {}\nECHO armed\n", gone[1].label).as_bytes(), t)?;
    c3.expect_line("armed", t).map_err(with_whereabouts(&p))?;
    c3.reset();
    let closed = settle(&mut p, "evloop to close client 3's connection after its reset", cx.secs(3.0), |p| {
        (descriptors(p) <= baseline).then_some(())
    })?;
    if closed.is_none() {
        return Err(Failure::wrong(
            format!("{} descriptors open after client 3's reset, {baseline} before it came", descriptors(&p)),
            format!("back to {baseline}: a reset (ECONNRESET) closes that client"),
        ));
    }
    // The next client most likely gets client 3's descriptor number.
    let mut c4 = client(cx, &p, addr, 4)?;
    // Keep clients 2 and 4 busy until well after both timers were due.
    let until = last_set.max(first_set) + timer + timer / 4;
    let mut sent = 0;
    while Instant::now() < until {
        for (n, c) in [(2, &mut c2), (4, &mut c4)] {
            sent += 1;
            c.send_quiet(format!("ECHO keep {sent}\n").as_bytes(), t)?;
            let line = c.line("the ECHO answer", t).map_err(with_whereabouts(&p))?;
            if let Some(g) = gone.iter().find(|g| line == format!("TIMER {}", g.label).as_bytes()) {
                return Err(Failure::wrong(
                    format!(
                        "client {n} received {}, the timer client {} set before it {}: delivered on the reused \
                         descriptor",
                        show(&line),
                        g.n,
                        g.how
                    ),
                    "no timer of a client that has gone, ever, however it went (`QUIT`, EOF, reset, idle)",
                ));
            }
            same(&format!("client {n}'s next line"), &line, format!("keep {sent}").as_bytes())?;
        }
        p.observe(timer / 10, "evloop to keep running")?;
    }
    cx.did(format!("clients 2 and 4 sent {sent} ECHOs until both timers were long due"));
    Ok(())
}

fn single_thread(cx: &Ctx) -> Step {
    let (p, addr) = start_server(cx, BIN, &[])?;
    let mut conns = Vec::new();
    for n in 1..=5 {
        let mut c = client(cx, &p, addr, n)?;
        c.send_quiet(b"ECHO x\n", cx.secs(5.0))?;
        c.expect_line("x", cx.secs(5.0)).map_err(with_whereabouts(&p))?;
        conns.push(c);
    }
    // Every process counts: a helper process with threads that serves for
    // the started one is the same design as worker threads.
    let counts: Vec<(Pid, usize)> = p.processes().into_iter().map(|pid| (pid, procfs::tasks(pid).len())).collect();
    let threads: usize = counts.iter().map(|&(_, n)| n).sum();
    cx.did("counted the threads of every process of evloop (/proc/PID/task) with 5 clients connected");
    if threads == 1 {
        return Ok(());
    }
    let got = if counts.len() == 1 {
        format!("{threads} threads")
    } else {
        let each: Vec<String> =
            counts.iter().map(|&(pid, n)| format!("{} (pid {}) has {n}", procfs::comm(pid), p.shown(pid))).collect();
        format!("{threads} threads in {} processes: {}", counts.len(), each.join(", "))
    };
    Err(Failure::wrong(
        got,
        "exactly one thread in one process: the exercise requires one thread doing all the waiting in one \
         poll/select call",
    ))
}

fn idle_cpu(cx: &Ctx) -> Step {
    let (mut p, addr) = start_server(cx, BIN, &[])?;
    let _c1 = client(cx, &p, addr, 1)?;
    let _c2 = client(cx, &p, addr, 2)?;
    let pid = p.pid();
    let usage = measure_idle(&mut p, pid, BIN, Duration::from_secs(1), "with two idle clients")?;
    usage.expect_no_cpu("`poll` without a due deadline waits in the kernel")
}

fn disconnects(cx: &Ctx) -> Step {
    // A long idle time, so that idle closing cannot stand in for closing on
    // EOF.
    let (mut p, addr) = start_server(cx, BIN, &["--idle-ms", "600000"])?;
    let t = cx.secs(5.0);
    let mut keep = client(cx, &p, addr, 1)?;
    let baseline = descriptors(&p);
    let mut c2 = client(cx, &p, addr, 2)?;
    c2.send(b"ECHO cut off in the mid", t)?;
    c2.close();
    let mut c3 = client(cx, &p, addr, 3)?;
    c3.send(b"ECHO x\n", t)?;
    c3.reset();
    let mut c4 = client(cx, &p, addr, 4)?;
    c4.shutdown_write();
    let c5 = client(cx, &p, addr, 5)?;
    c5.reset();
    keep.send(b"ECHO still served\n", t)?;
    keep.expect_line("still served", t).map_err(with_whereabouts(&p))?;
    c4.close();
    let settled = settle(&mut p, "evloop's descriptors back at the baseline", cx.secs(3.0), |p| {
        (descriptors(p) <= baseline).then_some(())
    })?;
    if settled.is_none() {
        return Err(Failure::wrong(
            format!("{} descriptors open, {baseline} before the four clients came and went", descriptors(&p)),
            format!("back to {baseline}: close each client's socket when it goes"),
        ));
    }
    Ok(())
}

fn many_clients(cx: &Ctx) -> Step {
    const N: usize = 500;
    // Clients that arrive while the server is busy elsewhere wait in the
    // listen backlog. A stopped server is the busy server made certain:
    // the kernel completes each handshake by itself as long as the backlog
    // has room, and drops the SYN once it is full.
    const AT_ONCE: usize = 64;
    let (mut p, addr) = start_server(cx, BIN, &[])?;
    let _heavy = cx.heavy();
    let t = cx.secs(10.0);
    p.signal(Signal::SIGSTOP);
    p.wait_for(&format!("{BIN} to stop (SIGSTOP)"), cx.secs(5.0), true, |p| {
        let tasks = procfs::tasks(p.pid());
        (!tasks.is_empty() && tasks.iter().all(|t| t.state == 'T')).then_some(())
    })?;
    let burst = Conn::connect_burst("client", AT_ONCE, addr, cx.secs(1.0), cx.log.clone());
    p.signal(Signal::SIGCONT);
    let (mut conns, dropped) = burst?;
    if dropped > 0 {
        return Err(Failure::wrong(
            format!(
                "with {BIN} stopped, {AT_ONCE} clients connected at once and {} handshakes completed; {dropped} \
                 had their SYN dropped",
                AT_ONCE - dropped
            ),
            format!("all {AT_ONCE} handshakes completed by the kernel, waiting in the listen backlog"),
        )
        .diagnosed(
            format!(
                "the listen backlog held only {} connections: clients that arrive while the server is busy \
                 beyond that are dropped, and their kernel retries only a second or more later",
                AT_ONCE - dropped
            ),
            "a backlog like the slide's `listen(s, 10)` is too small for hundreds of clients: pass \
             `Backlog::MAXCONN` (SOMAXCONN) to `listen`",
        ));
    }
    // The backlog is a queue, but which of the simultaneous handshakes the
    // kernel finished first is its business: the burst's ids are 1..=64 in
    // some order.
    let mut ids = Vec::with_capacity(AT_ONCE);
    for c in conns.iter_mut() {
        let line = c.line("`welcome ID`", t).map_err(with_whereabouts(&p))?;
        let text = String::from_utf8_lossy(&line);
        match text.strip_prefix("welcome ").and_then(|n| n.parse::<usize>().ok()) {
            Some(id) if (1..=AT_ONCE).contains(&id) && !ids.contains(&id) => ids.push(id),
            _ => {
                return Err(Failure::wrong(
                    format!("{} got {} (ids so far: {ids:?})", c.name, show(&line)),
                    format!("`welcome ID`, the ids of the first {AT_ONCE} clients 1 to {AT_ONCE}, each once"),
                ))
            }
        }
    }
    cx.did(format!("the {AT_ONCE} clients got their welcome, ids 1 to {AT_ONCE}"));
    for n in AT_ONCE + 1..=N {
        conns.push(Conn::connect(&format!("client {n}"), addr, t, Default::default())?);
    }
    cx.did(format!("connected {N} clients"));
    for (i, c) in conns.iter_mut().enumerate() {
        if i >= AT_ONCE {
            c.expect_line(&format!("welcome {}", i + 1), t).map_err(with_whereabouts(&p))?;
        }
        c.send_quiet(format!("ECHO {}\n", i + 1).as_bytes(), t)?;
    }
    for (i, c) in conns.iter_mut().enumerate() {
        c.expect_line(&format!("{}", i + 1), t).map_err(with_whereabouts(&p))?;
    }
    cx.did(format!("each of the {N} clients got its welcome and its ECHO answer"));
    Ok(())
}

fn shutdown(cx: &Ctx) -> Step {
    cx.cases(&[("`quit` on stdin", "quit"), ("EOF on stdin", "EOF")], |&how| {
        let (mut p, addr) = start_server(cx, BIN, &[])?;
        let t = cx.secs(5.0);
        let mut c1 = client(cx, &p, addr, 1)?;
        let mut c2 = client(cx, &p, addr, 2)?;
        if how == "quit" {
            p.send(b"quit\n");
        } else {
            p.close_stdin();
        }
        for c in [&mut c1, &mut c2] {
            c.expect_line("BYE shutdown", t).map_err(with_whereabouts(&p))?;
            c.expect_eof("the connection closed after `BYE shutdown`", t)?;
        }
        p.expect_exit(0, &format!("exit status 0 after {how} on stdin"), t)
    })
}
