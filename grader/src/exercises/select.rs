//! `select` — binary `evloop` (SPEC §4.6; slides „I/O-Multiplexing“,
//! „I/O Multiplexing (poll)“, „Timeouts (1)“ and „Timeouts (2)“).
//!
//! The grader plays every client. The test plan: the commands; input split
//! and packed any way; one stalled client never delays another; timers in
//! deadline order, never early; the idle timeout and its reset; timers of a
//! closed client dropped, also for the next client on the same descriptor;
//! one thread, no CPU while idle; disconnects and resets; 500 clients; and
//! shutdown from stdin.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::check::{same, Check, Ctx, Exercise};
use crate::harness::net::listening_addr;
use crate::harness::{procfs, Conn, Failure, Kind, Program, Step};

const BIN: &str = "evloop";

pub fn exercise() -> Exercise {
    Exercise {
        id: "select",
        title: "Event loop: one thread, one poll, many clients and timers",
        slides:
            "„I/O-Multiplexing“, „I/O-Multiplexing: select“, „I/O Multiplexing (poll)“, „Timeouts (1)“, „Timeouts (2)“",
        bins: &[BIN],
        checks: vec![
            Check {
                id: "welcome",
                title: "each new client gets `welcome ID`, ids 1, 2, … in accept order",
                points: 6,
                timing: false,
                hint: "Put the listening socket into the poll set; when it is readable, `accept`, add the new \
                       socket to the set and send `welcome N`.",
                run: welcome,
            },
            Check {
                id: "echo",
                title: "ECHO, unknown commands and QUIT",
                points: 6,
                timing: false,
                hint: "`ECHO TEXT` → `TEXT`; anything unknown → `ERR unknown command`; `QUIT` → `BYE`, then close.",
                run: echo,
            },
            Check {
                id: "split-and-packed",
                title: "commands packed into one segment, and one split byte by byte",
                points: 10,
                timing: false,
                hint: "TCP is a byte stream: one `read` can hold several commands or half of one. Keep a buffer per \
                       client, append what you read, and handle every complete line in it; keep the rest.",
                run: split_and_packed,
            },
            Check {
                id: "stalled-client",
                title: "a client stalled mid-line does not delay another",
                points: 10,
                timing: false,
                hint: "Never block on one client: read only from sockets `poll` reported readable, with one `read` \
                       each (non-blocking sockets), and never wait for the rest of a line.",
                run: stalled_client,
            },
            Check {
                id: "say",
                title: "SAY reaches every other client, not the sender",
                points: 8,
                timing: false,
                hint: "`SAY TEXT` → `ID: TEXT` to each connected client except the sender.",
                run: say,
            },
            Check {
                id: "timers",
                title: "TIMER 300/100/200 fire in deadline order, never early",
                points: 11,
                timing: true,
                hint: "Keep the deadlines as absolute times in a sorted list (slide „Timeouts (1)“); before each \
                       `poll`, fire what is due and pass the time until the earliest one as the timeout.",
                run: timers,
            },
            Check {
                id: "idle-timeout",
                title: "`BYE idle` after T ms without input, not before; input resets it",
                points: 10,
                timing: true,
                hint: "Each client has an idle deadline in the same sorted list: `last input + T`. Move it whenever \
                       bytes arrive from that client.",
                run: idle_timeout,
            },
            Check {
                id: "idle-drops-timers",
                title: "an idle-closed client's timers are dropped, also for the next client on its descriptor",
                points: 8,
                timing: true,
                hint: "Descriptor numbers are reused at once. Key timers by a client id (or a generation number), \
                       not by the descriptor, and drop or ignore them when the client is closed.",
                run: idle_drops_timers,
            },
            Check {
                id: "single-thread",
                title: "exactly one thread",
                points: 5,
                timing: false,
                hint: "The point of `poll`/`select` is to serve everybody from one thread: no worker threads.",
                run: single_thread,
            },
            Check {
                id: "idle-cpu",
                title: "no CPU while nothing happens",
                points: 5,
                timing: false,
                hint: "`poll` with timeout 0 (or `select` with a zero `timeval`, or one reused after select \
                       changed it) returns at once: busy waiting. Without deadlines, wait with timeout -1.",
                run: idle_cpu,
            },
            Check {
                id: "disconnects",
                title: "abrupt disconnects and resets leave the others working, descriptors back at baseline",
                points: 6,
                timing: false,
                hint: "`read` returning 0 (EOF) or ECONNRESET closes that client only: remove it from the set, \
                       close its descriptor, drop its deadlines.",
                run: disconnects,
            },
            Check {
                id: "many-clients",
                title: "500 clients at once",
                points: 7,
                timing: false,
                hint: "`select`'s fd_set holds descriptors below 1024 only (FD_SETSIZE); `poll` has no such limit. \
                       A listen backlog of 10 (the slide's) is too small for a burst of connections.",
                run: many_clients,
            },
            Check {
                id: "shutdown",
                title: "`quit` or EOF on stdin: `BYE shutdown` to every client, exit 0",
                points: 8,
                timing: false,
                hint: "Put stdin (fd 0) into the poll set too; on `quit` or EOF send `BYE shutdown` to every \
                       client, close them all and exit 0.",
                run: shutdown,
            },
        ],
    }
}

/// Start `evloop ARGS` and read its address.
fn start(cx: &mut Ctx, args: &[&str]) -> Step<(Program, SocketAddr)> {
    let mut p = cx.start(BIN, args)?;
    let line = p.line("`listening on 127.0.0.1:PORT`", cx.secs(5.0))?;
    let addr = listening_addr(&line)?;
    Ok((p, addr))
}

/// Connect client `n` and take its welcome line.
fn client(cx: &Ctx, addr: SocketAddr, n: usize) -> Step<Conn> {
    let mut c = cx.connect(&format!("client {n}"), addr)?;
    c.expect_line(&format!("welcome {n}"), cx.secs(5.0))?;
    Ok(c)
}

/// On a failure while talking to the server, say where the server sat.
fn at(p: &Program) -> impl FnOnce(Failure) -> Failure + '_ {
    move |mut f| {
        if f.kind == Kind::TimedOut {
            let w = p.whereabouts();
            if !w.is_empty() {
                f.got.push_str(&format!("; {w}"));
            }
        }
        f
    }
}

fn welcome(cx: &mut Ctx) -> Step {
    let (p, addr) = start(cx, &[])?;
    let _c1 = client(cx, addr, 1).map_err(at(&p))?;
    let _c2 = client(cx, addr, 2).map_err(at(&p))?;
    Ok(())
}

fn echo(cx: &mut Ctx) -> Step {
    let (p, addr) = start(cx, &[])?;
    let mut c = client(cx, addr, 1).map_err(at(&p))?;
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
    run(&mut c).map_err(at(&p))
}

fn split_and_packed(cx: &mut Ctx) -> Step {
    let (mut p, addr) = start(cx, &[])?;
    let mut c = client(cx, addr, 1).map_err(at(&p))?;
    let t = cx.secs(5.0);
    c.send(b"ECHO one\nECHO two\nBOGUS\nECHO three\n", t)?;
    for want in ["one", "two", "ERR unknown command", "three"] {
        c.expect_line(want, t).map_err(at(&p))?;
    }
    let cmd = b"ECHO split\n";
    for (i, b) in cmd.iter().enumerate() {
        c.send_quiet(&[*b], t)?;
        if i + 1 < cmd.len() {
            p.wait_idle("evloop to wait for more input", t)?;
            c.drain();
            if !c.pending().is_empty() {
                return Err(Failure::wrong(
                    format!("client 1 received {} before the line was complete", crate::harness::show(c.pending())),
                    "nothing until the newline arrives",
                ));
            }
        }
    }
    cx.did("client 1 sent `ECHO split\\n` one byte at a time, waiting for evloop to block in between");
    c.expect_line("split", t).map_err(at(&p))
}

fn stalled_client(cx: &mut Ctx) -> Step {
    let (p, addr) = start(cx, &[])?;
    let t = cx.secs(5.0);
    let mut slow = client(cx, addr, 1).map_err(at(&p))?;
    let mut fast = client(cx, addr, 2).map_err(at(&p))?;
    slow.send(b"ECHO half a li", t)?;
    fast.send(b"ECHO quick\n", t)?;
    fast.expect_line("quick", cx.secs(1.0)).map_err(at(&p))?;
    slow.send(b"ne\n", t)?;
    slow.expect_line("half a line", t).map_err(at(&p))
}

fn say(cx: &mut Ctx) -> Step {
    let (p, addr) = start(cx, &[])?;
    let t = cx.secs(5.0);
    let mut c1 = client(cx, addr, 1).map_err(at(&p))?;
    let mut c2 = client(cx, addr, 2).map_err(at(&p))?;
    let mut c3 = client(cx, addr, 3).map_err(at(&p))?;
    c1.send(b"SAY hi all\n", t)?;
    c2.expect_line("1: hi all", t).map_err(at(&p))?;
    c3.expect_line("1: hi all", t).map_err(at(&p))?;
    // The sender must not get its own message: the next thing it receives
    // is the answer to this ECHO.
    c1.send(b"ECHO marker\n", t)?;
    let line = c1.line("`marker` (and not its own SAY)", t).map_err(at(&p))?;
    same("client 1's next line after its SAY", &line, b"marker")
}

fn timers(cx: &mut Ctx) -> Step {
    let (p, addr) = start(cx, &[])?;
    let mut c = client(cx, addr, 1).map_err(at(&p))?;
    let sent = Instant::now();
    c.send(b"TIMER 300 a\nTIMER 100 b\nTIMER 200 c\n", cx.secs(5.0))?;
    for (label, ms) in [("b", 100u64), ("c", 200), ("a", 300)] {
        let earliest = Duration::from_millis(ms);
        let latest = earliest + cx.secs(0.5);
        let left = latest.saturating_sub(sent.elapsed());
        let line = c.line(&format!("`TIMER {label}` about {ms} ms after the request"), left).map_err(at(&p))?;
        let when = sent.elapsed();
        same("the next timer", &line, format!("TIMER {label}").as_bytes())?;
        if when < earliest {
            return Err(Failure::wrong(
                format!("`TIMER {label}` after {} ms", when.as_millis()),
                format!("not before {ms} ms"),
            ));
        }
        cx.did(format!("received `TIMER {label}` after {} ms", when.as_millis()));
    }
    Ok(())
}

fn idle_timeout(cx: &mut Ctx) -> Step {
    let idle = cx.secs(0.3);
    let idle_ms = idle.as_millis().to_string();
    let (mut p, addr) = start(cx, &["--idle-ms", &idle_ms])?;
    let connected = Instant::now();
    let mut c1 = client(cx, addr, 1).map_err(at(&p))?;
    let mut c2 = client(cx, addr, 2).map_err(at(&p))?;
    // Client 2 speaks after a third of the idle time; client 1 never does.
    p.observe(idle / 3, "evloop to keep running")?;
    let spoke = Instant::now();
    c2.send(b"ECHO still here\n", cx.secs(5.0))?;
    c2.expect_line("still here", cx.secs(5.0)).map_err(at(&p))?;
    c1.expect_line("BYE idle", idle + cx.secs(1.0)).map_err(at(&p))?;
    let when = connected.elapsed();
    if when < idle {
        return Err(Failure::wrong(
            format!("client 1 got `BYE idle` {} ms after it connected", when.as_millis()),
            format!("not before {idle_ms} ms"),
        ));
    }
    c1.expect_eof("client 1's connection closed after `BYE idle`", cx.secs(2.0))?;
    c2.expect_line("BYE idle", idle + cx.secs(1.0)).map_err(at(&p))?;
    let when = spoke.elapsed();
    if when < idle {
        return Err(Failure::wrong(
            format!("client 2 got `BYE idle` {} ms after it last sent something", when.as_millis()),
            format!("not before {idle_ms} ms after its last input (input resets the idle time)"),
        ));
    }
    Ok(())
}

fn idle_drops_timers(cx: &mut Ctx) -> Step {
    let idle = cx.secs(0.4);
    let timer = cx.secs(0.5);
    let (idle_ms, timer_ms) = (idle.as_millis().to_string(), timer.as_millis());
    let (mut p, addr) = start(cx, &["--idle-ms", &idle_ms])?;
    let mut c1 = client(cx, addr, 1).map_err(at(&p))?;
    let t0 = Instant::now();
    c1.send(format!("TIMER {timer_ms} late\n").as_bytes(), cx.secs(5.0))?;
    c1.expect_line("BYE idle", idle + cx.secs(1.0)).map_err(at(&p))?;
    c1.expect_eof("client 1's connection closed after `BYE idle`", cx.secs(2.0))?;
    // The next client most likely gets the same descriptor number.
    let mut c2 = client(cx, addr, 2).map_err(at(&p))?;
    // Keep client 2 busy until well after client 1's timer was due.
    let mut n = 0;
    while t0.elapsed() < timer + idle / 4 {
        n += 1;
        c2.send_quiet(format!("ECHO keep {n}\n").as_bytes(), cx.secs(5.0))?;
        let line = c2.line("the ECHO answer", cx.secs(5.0)).map_err(at(&p))?;
        same("client 2's next line", &line, format!("keep {n}").as_bytes())
            .map_err(|f| f.with_hint("client 1's timer was delivered to client 2 on the reused descriptor"))?;
        p.observe(idle / 8, "evloop to keep running")?;
    }
    cx.did(format!("client 2 sent {n} ECHOs until client 1's timer was long due"));
    Ok(())
}

fn single_thread(cx: &mut Ctx) -> Step {
    let (p, addr) = start(cx, &[])?;
    let mut conns = Vec::new();
    for n in 1..=5 {
        let mut c = client(cx, addr, n).map_err(at(&p))?;
        c.send_quiet(b"ECHO x\n", cx.secs(5.0))?;
        c.expect_line("x", cx.secs(5.0)).map_err(at(&p))?;
        conns.push(c);
    }
    let threads = procfs::tasks(p.pid()).len();
    cx.did(format!("counted the threads in /proc/{}/task with 5 clients connected", p.pid()));
    if threads != 1 {
        return Err(Failure::wrong(format!("{threads} threads"), "exactly one thread"));
    }
    Ok(())
}

fn idle_cpu(cx: &mut Ctx) -> Step {
    let (mut p, addr) = start(cx, &[])?;
    let _c1 = client(cx, addr, 1).map_err(at(&p))?;
    let _c2 = client(cx, addr, 2).map_err(at(&p))?;
    let before = p.cpu_ticks();
    p.observe(Duration::from_secs(1), "evloop to keep running")?;
    let ticks = p.cpu_ticks() - before;
    cx.did("measured evloop's CPU time (/proc/PID/stat) over 1 s with two idle clients");
    if ticks > 3 {
        return Err(Failure::wrong(format!("{} ms of CPU time in an idle second", ticks * 10), "about 0 ms"));
    }
    Ok(())
}

fn fd_count(p: &Program) -> usize {
    procfs::fds(p.pid()).len()
}

fn disconnects(cx: &mut Ctx) -> Step {
    // A long idle time, so that idle closing cannot stand in for closing on
    // EOF.
    let (mut p, addr) = start(cx, &["--idle-ms", "600000"])?;
    let t = cx.secs(5.0);
    let mut keep = client(cx, addr, 1).map_err(at(&p))?;
    let baseline = fd_count(&p);
    let mut c2 = client(cx, addr, 2).map_err(at(&p))?;
    c2.send(b"ECHO cut off in the mid", t)?;
    c2.close();
    let mut c3 = client(cx, addr, 3).map_err(at(&p))?;
    c3.send(b"ECHO x\n", t)?;
    c3.reset();
    let mut c4 = client(cx, addr, 4).map_err(at(&p))?;
    c4.shutdown_write();
    let c5 = client(cx, addr, 5).map_err(at(&p))?;
    c5.reset();
    keep.send(b"ECHO still served\n", t)?;
    keep.expect_line("still served", t).map_err(at(&p))?;
    c4.close();
    let count = p.wait_for("evloop's descriptors back at the baseline", cx.secs(3.0), true, |p| {
        let n = fd_count(p);
        (n <= baseline).then_some(n)
    });
    if let Err(f) = count {
        if f.kind != Kind::TimedOut {
            return Err(f);
        }
        return Err(Failure::wrong(
            format!("{} descriptors open, {baseline} before the four clients came and went", fd_count(&p)),
            format!("back to {baseline}: close each client's socket when it goes"),
        ));
    }
    Ok(())
}

fn many_clients(cx: &mut Ctx) -> Step {
    const N: usize = 500;
    let (p, addr) = start(cx, &[])?;
    let t = cx.secs(10.0);
    let mut conns = Vec::with_capacity(N);
    for n in 1..=N {
        let c = Conn::connect(&format!("client {n}"), addr, t, Default::default())?;
        conns.push(c);
    }
    cx.did(format!("connected {N} clients"));
    for (i, c) in conns.iter_mut().enumerate() {
        c.expect_line(&format!("welcome {}", i + 1), t).map_err(at(&p))?;
        c.send_quiet(format!("ECHO {}\n", i + 1).as_bytes(), t)?;
    }
    for (i, c) in conns.iter_mut().enumerate() {
        c.expect_line(&format!("{}", i + 1), t).map_err(at(&p))?;
    }
    cx.did(format!("each of the {N} clients got its welcome and its ECHO answer"));
    Ok(())
}

fn shutdown(cx: &mut Ctx) -> Step {
    for how in ["quit", "EOF"] {
        let (mut p, addr) = start(cx, &[])?;
        let t = cx.secs(5.0);
        let mut c1 = client(cx, addr, 1).map_err(at(&p))?;
        let mut c2 = client(cx, addr, 2).map_err(at(&p))?;
        if how == "quit" {
            p.send(b"quit\n");
        } else {
            p.close_stdin();
        }
        for c in [&mut c1, &mut c2] {
            c.expect_line("BYE shutdown", t).map_err(at(&p))?;
            c.expect_eof("the connection closed after `BYE shutdown`", t)?;
        }
        p.expect_exit(0, &format!("exit status 0 after {how} on stdin"), t)?;
    }
    Ok(())
}
