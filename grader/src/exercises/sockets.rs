//! `sockets` — binaries `tcp-server` and `tcp-client` (contract:
//! exercises/sockets/README.md; slides „Sockets“, „Socket-Programmierung“, „Ablauf: Server“, „Anlauf: Client“,
//! „Verbindungen (TCP)“, „Weitere Funktionen“, „Beispiel: Client/Server“,
//! „Pipes, Sockets und Prozesse“).
//!
//! The grader is the client when it grades `tcp-server` and the server when
//! it grades `tcp-client`, so each binary is graded on its own. Loopback
//! only, port 0 everywhere: the server's port is read from its
//! `listening on` line, so checks run in parallel without clashes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::support::{
    descriptors, expect_diagnostic, pattern, settle, start_server, with_whereabouts, zombie_children,
};
use crate::check::{same, Check, Ctx, Exercise};
use crate::harness::net::Listener;
use crate::harness::{show, Conn, Failure, Program, Step};

const SERVER: &str = "tcp-server";
const CLIENT: &str = "tcp-client";
const GREETING: &[u8] = b"Message from Server\n";
/// More than loopback's socket buffers hold in both directions (about
/// 4 MB each here): a server that drops the rest of a short write is seen.
const BIG: usize = 16 << 20;

pub fn exercise() -> Exercise {
    Exercise {
        id: "sockets",
        title: "Sockets: a concurrent TCP echo server and a full-duplex client",
        slides: "„Sockets“, „Socket-Programmierung“, „Ablauf: Server“, „Anlauf: Client“, „Verbindungen (TCP)“, \
                 „Weitere Funktionen“, „Beispiel: Client“, „Beispiel: Server“",
        bins: &[SERVER, CLIENT],
        hints: include_str!("../../hints/sockets.toml"),
        checks: vec![
            Check::new(
                "server-greeting",
                6,
                "server: `listening on` with the real port, then the greeting",
                "socket, SO_REUSEADDR, bind, listen; print the address `getsockname` gives back (with `--port 0` \
                 the kernel picks the port). Each accepted client first gets `Message from Server\\n`.",
                server_greeting,
            ),
            Check::new(
                "server-echo-large",
                8,
                "server: 16 MiB echoed byte-exact while the client stalls reading",
                "`send`/`write` may write fewer bytes than asked: loop until everything is out. A reader that \
                 stalls makes your writes block or come up short.",
                server_echo_large,
            ),
            Check::new(
                "server-half-close",
                6,
                "server: after the client's half-close, the rest of the echo, then EOF",
                "`read` returning 0 means the client shut down its sending side: finish echoing, then close.",
                server_half_close,
            ),
            Check::new(
                "server-concurrent",
                8,
                "server: an idle client never delays 20 others",
                "Serve each connection in its own thread (or process): the slide's server handles one client \
                 at a time.",
                server_concurrent,
            ),
            Check::new(
                "server-survives-resets",
                6,
                "server: clients that reset or vanish do not take it down",
                "Writing to a connection the peer has closed raises SIGPIPE (default: death) or returns \
                 EPIPE/ECONNRESET. Keep SIGPIPE ignored (Rust's default) and end only that connection.",
                server_survives_resets,
            ),
            Check::new(
                "server-restart",
                6,
                "server: restarts on the same port at once (TIME_WAIT)",
                "The side that closes first keeps the port in TIME_WAIT for a minute; bind fails with EADDRINUSE \
                 unless SO_REUSEADDR is set before bind (`setsockopt(&fd, sockopt::ReuseAddr, &true)`).",
                server_restart,
            ),
            Check::new(
                "server-ipv6",
                5,
                "server: `--bind ::1`",
                "Pick the address family from the address: `AddressFamily::Inet6` and `SockaddrIn6` for IPv6.",
                server_ipv6,
            ),
            Check::new(
                "server-bind-conflict",
                5,
                "server: a taken port gives the stated message and status 1",
                "On a failed bind print `tcp-server: cannot bind ADDR:PORT: REASON` and exit 1 — no panic.",
                server_bind_conflict,
            ),
            Check::new(
                "server-signals",
                5,
                "server: SIGTERM and SIGINT end it with status 0, also with a client connected",
                "Catch SIGINT and SIGTERM (a flag plus a self-pipe or a waiting thread) and exit 0; a thread \
                 blocked in `accept` or `read` must not keep the process alive.",
                server_signals,
            ),
            Check::new(
                "server-no-leaks",
                5,
                "server: 100 clients later, no extra descriptors, no zombies",
                "Close every accepted socket when its client is done (drop the `OwnedFd`), and reap children \
                 if you fork per connection.",
                server_no_leaks,
            ),
            Check::new(
                "client-greeting",
                6,
                "client: prints everything the server sends",
                "Copy every byte from the socket to stdout, as bytes (the slide's `printf(\"%s\\n\", rb)` adds \
                 newlines and stops at NUL).",
                client_greeting,
            ),
            Check::heavy(
                "client-duplex",
                10,
                "client: 16 MiB up and 16 MiB down at the same time",
                "Copy both directions at once (`poll` over stdin and the socket, or two threads). A client \
                 that sends all of stdin before reading deadlocks as soon as both socket buffers are full.",
                client_duplex,
            ),
            Check::new(
                "client-half-close",
                8,
                "client: at stdin EOF it half-closes, then prints the reply",
                "At EOF on stdin call `shutdown(fd, Shutdown::Write)`: the server reads EOF but can still \
                 answer. Keep reading until the server closes.",
                client_half_close,
            ),
            Check::new(
                "client-server-closes-first",
                6,
                "client: exits 0 when the server closes, stdin still open",
                "When the socket reads EOF, write what you received and exit 0 — do not wait for stdin.",
                client_server_closes_first,
            ),
            Check::new(
                "client-refused",
                5,
                "client: nobody listening → the stated message and status 1",
                "Try each address from `ToSocketAddrs`; if none connects print `tcp-client: cannot connect to \
                 HOST:PORT: REASON` and exit 1.",
                client_refused,
            ),
            Check::new(
                "client-names",
                5,
                "client: `localhost` and the IPv6 literal `::1`",
                "Resolve with std's `(host, port).to_socket_addrs()` and create the socket in the family of \
                 each address.",
                client_names,
            ),
        ],
    }
}

// ----- the grader as client -------------------------------------------------

fn greeted(cx: &Ctx, p: &Program, addr: SocketAddr, name: &str) -> Step<Conn> {
    let mut c = cx.connect(name, addr).map_err(with_whereabouts(p))?;
    c.wait_for("`Message from Server` first", cx.secs(5.0), |c| (c.pending().len() >= GREETING.len()).then_some(()))
        .map_err(with_whereabouts(p))?;
    let got = c.take_all();
    same("the greeting", &got[..GREETING.len().min(got.len())], GREETING)?;
    if got.len() > GREETING.len() {
        return Err(Failure::wrong(
            format!("extra bytes after the greeting: {}", show(&got[GREETING.len()..])),
            "only the greeting",
        ));
    }
    Ok(c)
}

/// Read until the peer closes (`what` names what should come first).
fn until_eof(c: &mut Conn, what: &str, timeout: Duration) -> Step {
    c.wait_for(what, timeout, |c| c.at_eof().then_some(()))
}

/// Send `data`, half-close, and expect exactly `data` back, then EOF.
fn echo_round(cx: &Ctx, p: &Program, c: &mut Conn, data: &[u8]) -> Step {
    c.send(data, cx.secs(10.0)).map_err(with_whereabouts(p))?;
    c.shutdown_write();
    until_eof(c, "the echo, then EOF", cx.secs(10.0)).map_err(with_whereabouts(p))?;
    same("the echo", &c.take_all(), data)
}

fn server_greeting(cx: &Ctx) -> Step {
    let (p, addr) = start_server(cx, SERVER, &["--port", "0"])?;
    if addr.ip() != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        return Err(Failure::wrong(format!("listening on {addr}"), "the default address 127.0.0.1"));
    }
    greeted(cx, &p, addr, "client 1")?;
    Ok(())
}

fn server_echo_large(cx: &Ctx) -> Step {
    let (p, addr) = start_server(cx, SERVER, &["--port", "0"])?;
    let mut c = greeted(cx, &p, addr, "client 1")?;
    let data = pattern(BIG, 1);
    // The stall is waiting (filling the socket buffers first takes a few
    // milliseconds of copying); the transfer after it is the heavy phase.
    let sent = c.send_stalled(&data, Duration::from_secs(1));
    let _heavy = cx.heavy();
    c.send(&data[sent..], cx.secs(20.0)).map_err(with_whereabouts(&p))?;
    c.shutdown_write();
    until_eof(&mut c, "all 16 MiB echoed, then EOF", cx.secs(20.0)).map_err(with_whereabouts(&p))?;
    same("the 16 MiB echo", &c.take_all(), &data)
}

fn server_half_close(cx: &Ctx) -> Step {
    let (p, addr) = start_server(cx, SERVER, &["--port", "0"])?;
    let mut c = greeted(cx, &p, addr, "client 1")?;
    echo_round(cx, &p, &mut c, b"half-close me\nand a partial line")
}

fn server_concurrent(cx: &Ctx) -> Step {
    let (p, addr) = start_server(cx, SERVER, &["--port", "0"])?;
    let _idle = greeted(cx, &p, addr, "idle client")?;
    cx.did("the idle client stays connected and sends nothing");
    let mut conns = Vec::new();
    for n in 1..=20 {
        conns.push(cx.connect(&format!("client {n}"), addr).map_err(with_whereabouts(&p))?);
    }
    for (n, c) in conns.iter_mut().enumerate() {
        c.send_quiet(format!("client {}\n", n + 1).as_bytes(), cx.secs(5.0))?;
        c.shutdown_write();
    }
    for (n, c) in conns.iter_mut().enumerate() {
        let mut want = GREETING.to_vec();
        want.extend_from_slice(format!("client {}\n", n + 1).as_bytes());
        until_eof(c, "the greeting and the echo, then EOF, while the idle client waits", cx.secs(5.0))
            .map_err(with_whereabouts(&p))?;
        same(&format!("client {}'s bytes", n + 1), &c.take_all(), &want)?;
    }
    cx.did("all 20 clients were served");
    Ok(())
}

fn server_survives_resets(cx: &Ctx) -> Step {
    let (mut p, addr) = start_server(cx, SERVER, &["--port", "0"])?;
    // Stop the server while the clients come and go: the kernel completes
    // their connections in the listen queue, and the server meets them only
    // afterwards — already closed. A client that sent data and its FIN and
    // then reset leaves the socket with EPIPE pending: the server's very
    // first write raises SIGPIPE (or fails with EPIPE, if it is ignored).
    p.signal(Signal::SIGSTOP);
    let chunk = vec![b'r'; 16 << 10];
    for n in 1..=5 {
        let mut c = cx.connect(&format!("vanishing client {n}"), addr).map_err(with_whereabouts(&p))?;
        c.send_quiet(&chunk, cx.secs(5.0))?;
        c.shutdown_write();
        c.reset();
        let r = cx.connect(&format!("resetting client {n}"), addr).map_err(with_whereabouts(&p))?;
        r.reset();
    }
    p.signal(Signal::SIGCONT);
    // Let the server run into the closed connections.
    p.observe(Duration::from_millis(200), "the server to keep running after meeting the closed connections")?;
    let mut c = greeted(cx, &p, addr, "a normal client")?;
    echo_round(cx, &p, &mut c, b"still serving?\n")?;
    if let Some(exit) = p.exit() {
        return Err(p.classify(exit, "the server to keep running"));
    }
    Ok(())
}

fn server_restart(cx: &Ctx) -> Step {
    let (mut p, addr) = start_server(cx, SERVER, &["--port", "0"])?;
    let mut c = greeted(cx, &p, addr, "client 1")?;
    c.send(b"ping\n", cx.secs(5.0))?;
    c.wait_for("the echo `ping`", cx.secs(5.0), |c| (c.pending() == b"ping\n").then_some(()))
        .map_err(with_whereabouts(&p))?;
    p.signal(Signal::SIGTERM);
    p.expect_exit(0, "exit status 0 after SIGTERM", cx.secs(5.0))?;
    // The server closed first: once the client closes too, the server's
    // side of the connection sits in TIME_WAIT on the port.
    until_eof(&mut c, "the connection closed by the stopped server", cx.secs(5.0))?;
    c.close();
    drop(p);
    let port = addr.port().to_string();
    let mut p2 = cx.start(SERVER, &["--port", &port])?;
    let line = p2.line(&format!("`listening on 127.0.0.1:{port}` from the restarted server"), cx.secs(5.0))?;
    same("the restarted server's line", &line, format!("listening on 127.0.0.1:{port}").as_bytes())?;
    greeted(cx, &p2, addr, "client 2")?;
    Ok(())
}

fn ipv6_available() -> bool {
    std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

fn server_ipv6(cx: &Ctx) -> Step {
    if !ipv6_available() {
        return Err(Failure::skipped("this machine cannot bind [::1] (no IPv6 loopback)"));
    }
    let (p, addr) = start_server(cx, SERVER, &["--bind", "::1", "--port", "0"])?;
    if addr.ip() != IpAddr::V6(Ipv6Addr::LOCALHOST) {
        return Err(Failure::wrong(format!("listening on {addr}"), "`listening on [::1]:PORT`"));
    }
    let mut c = greeted(cx, &p, addr, "client 1")?;
    echo_round(cx, &p, &mut c, b"over IPv6\n")
}

fn server_bind_conflict(cx: &Ctx) -> Step {
    let holder = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Failure::grader(format!("cannot bind a port to hold: {e}")))?;
    let port = holder.local_addr().map_err(|e| Failure::grader(e.to_string()))?.port().to_string();
    cx.did(format!("the grader holds 127.0.0.1:{port} (listening)"));
    let mut p = cx.start(SERVER, &["--port", &port])?;
    p.expect_exit(1, "exit status 1 for a port that is taken", cx.secs(5.0))?;
    expect_diagnostic(&p, &format!("{SERVER}: cannot bind 127.0.0.1:{port}: "), "")
}

fn server_signals(cx: &Ctx) -> Step {
    cx.cases(&[("SIGTERM", Signal::SIGTERM), ("SIGINT", Signal::SIGINT)], |&sig| {
        let (mut p, addr) = start_server(cx, SERVER, &["--port", "0"])?;
        let _c = greeted(cx, &p, addr, "client 1")?;
        p.signal(sig);
        p.expect_exit(0, &format!("exit status 0 promptly after {sig}, a client still connected"), cx.secs(2.0))
    })
}

fn server_no_leaks(cx: &Ctx) -> Step {
    let (mut p, addr) = start_server(cx, SERVER, &["--port", "0"])?;
    let mut c = greeted(cx, &p, addr, "client 0")?;
    echo_round(cx, &p, &mut c, b"warm up\n")?;
    drop(c);
    // The server may close its side a moment after our EOF: settle first.
    p.observe(Duration::from_millis(100), "the server to keep running")?;
    let baseline = descriptors(&p);
    for n in 1..=100 {
        let mut c = cx.connect(&format!("client {n}"), addr).map_err(with_whereabouts(&p))?;
        c.send_quiet(b"x", cx.secs(5.0))?;
        c.shutdown_write();
        until_eof(&mut c, "greeting, echo and EOF", cx.secs(5.0)).map_err(with_whereabouts(&p))?;
    }
    cx.did(format!(
        "100 clients connected, sent a byte, half-closed and read the echo (baseline: {baseline} descriptors)"
    ));
    let settled = settle(&mut p, "descriptors back at the baseline and no zombie", cx.secs(3.0), |p| {
        (descriptors(p) <= baseline && zombie_children(p.pid()) == 0).then_some(())
    })?;
    if settled.is_none() {
        let (fds, zombies) = (descriptors(&p), zombie_children(p.pid()));
        return Err(Failure::wrong(
            format!("{fds} descriptors (baseline {baseline}) and {zombies} zombie children after 100 clients"),
            format!("{baseline} descriptors and no zombies"),
        ));
    }
    Ok(())
}

// ----- the grader as server -------------------------------------------------

/// Listen on `ip`, start `tcp-client HOST PORT`, accept it.
fn start_client(cx: &Ctx, ip: IpAddr, host: &str, cap: usize) -> Step<(Program, Conn)> {
    let listener =
        Listener::bind(ip, cx.log.clone()).map_err(|e| Failure::grader(format!("cannot listen on {ip}: {e}")))?;
    let port = listener.addr().port().to_string();
    let p = cx.start_with(CLIENT, &[host, &port], |_, o| o.output_cap = cap)?;
    let mut p = p;
    let accepted = listener.accept("tcp-client", p.exit_fd(), cx.secs(5.0));
    let c = match accepted {
        Ok(c) => c,
        // A client that ended before connecting: say how (a panic, a todo!()).
        Err(_) if p.exit().is_some() => {
            let exit = p.wait_exit("tcp-client to end", cx.secs(2.0))?;
            return Err(p.classify(exit, "tcp-client to connect"));
        }
        Err(f) => return Err(with_whereabouts(&p)(f)),
    };
    expect_own_work(&p)?;
    Ok((p, c))
}

/// Every process of the client runs the executable the grader started.
/// One that execs `python3 -c …`, `nc` or `socat` gets every byte right
/// without doing the exercise: the socket work must be the client's own.
fn expect_own_work(p: &Program) -> Step {
    let others = p.other_executables();
    if others.is_empty() {
        return Ok(());
    }
    let list: Vec<String> =
        others.iter().map(|&(pid, ref exe)| format!("pid {} runs {}", p.shown(pid), exe.display())).collect();
    Err(Failure::wrong(
        format!("{CLIENT} connected, but not as the graded executable: {}", list.join(", ")),
        "every process of tcp-client running the graded program: the client must do the socket work itself, not \
         hand it to another program (python3, nc, socat)",
    ))
}

fn client_greeting(cx: &Ctx) -> Step {
    let (mut p, mut c) = start_client(cx, IpAddr::V4(Ipv4Addr::LOCALHOST), "127.0.0.1", 1 << 20)?;
    let data = b"Message from Server\nbytes \x00\xff kept\nno newline at the end";
    c.send(data, cx.secs(5.0))?;
    p.close_stdin();
    until_eof(&mut c, "the client's EOF (it half-closes at stdin EOF)", cx.secs(5.0))?;
    c.close();
    p.expect_exit(0, "exit status 0 after the server closed", cx.secs(5.0))?;
    same("the client's stdout", p.stdout(), data)
}

fn client_duplex(cx: &Ctx) -> Step {
    let (mut p, mut c) = start_client(cx, IpAddr::V4(Ipv4Addr::LOCALHOST), "127.0.0.1", BIG + (1 << 20))?;
    let (down, up) = (pattern(BIG, 2), pattern(BIG, 3));
    let _heavy = cx.heavy();
    p.send(&up);
    cx.did("the grader's server sends 16 MiB down while reading what comes up; stdin stays open");
    let mut off = 0;
    let mut sock_err = None;
    let started = Instant::now();
    let done = p.wait_for(
        "16 MiB on stdout and 16 MiB received from the client, stdin still open",
        cx.secs(30.0),
        true,
        |p| {
            if off < down.len() && sock_err.is_none() {
                match c.send_some(&down[off..]) {
                    Ok(n) => off += n,
                    Err(f) => sock_err = Some(f),
                }
            }
            c.drain();
            (p.stdout_len() >= BIG && c.received() >= BIG || sock_err.is_some()).then_some(())
        },
    );
    if let Some(f) = sock_err {
        return Err(f);
    }
    if let Err(mut f) = done {
        f.got = format!(
            "after {:.1} s: {} of 16 MiB on stdout, {} of 16 MiB received from the client, {} sent down; {}",
            started.elapsed().as_secs_f64(),
            crate::harness::size(p.stdout_len()),
            crate::harness::size(c.received()),
            crate::harness::size(off),
            p.whereabouts()
        );
        return Err(f.diagnosed(
            "the data stopped moving before 16 MiB had gone each way",
            "a client that sends all of stdin before it reads deadlocks here: send and receive at the same time",
        ));
    }
    same("the 16 MiB the client printed", p.stdout(), &down)?;
    same("the 16 MiB the client sent", &c.take_all(), &up)?;
    p.close_stdin();
    until_eof(&mut c, "the client's EOF after its stdin ended", cx.secs(5.0))?;
    c.close();
    p.expect_exit(0, "exit status 0 after the server closed", cx.secs(5.0))
}

fn client_half_close(cx: &Ctx) -> Step {
    let (mut p, mut c) = start_client(cx, IpAddr::V4(Ipv4Addr::LOCALHOST), "127.0.0.1", 1 << 20)?;
    p.send(b"question\n");
    p.close_stdin();
    until_eof(&mut c, "`question\\n`, then EOF (the client half-closes at stdin EOF)", cx.secs(5.0))?;
    same("what the client sent", &c.take_all(), b"question\n")?;
    c.send(b"answer after your EOF\n", cx.secs(5.0))?;
    c.close();
    p.expect_exit(0, "exit status 0 after the server closed", cx.secs(5.0))?;
    same("the client's stdout", p.stdout(), b"answer after your EOF\n")
}

fn client_server_closes_first(cx: &Ctx) -> Step {
    let (mut p, mut c) = start_client(cx, IpAddr::V4(Ipv4Addr::LOCALHOST), "127.0.0.1", 1 << 20)?;
    c.send(b"goodbye\n", cx.secs(5.0))?;
    c.close();
    cx.did("the client's stdin stays open");
    p.expect_exit(0, "exit status 0 once the server closed, although stdin is still open", cx.secs(3.0))?;
    same("the client's stdout", p.stdout(), b"goodbye\n")
}

fn client_refused(cx: &Ctx) -> Step {
    // A port that was free a moment ago and has no listener now.
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| Failure::grader(format!("cannot find a free port: {e}")))?
        .port()
        .to_string();
    let mut p = cx.start(CLIENT, &["127.0.0.1", &port])?;
    p.expect_exit(1, "exit status 1 when nobody listens", cx.secs(5.0))?;
    expect_diagnostic(&p, &format!("{CLIENT}: cannot connect to 127.0.0.1:{port}: "), "")
}

fn client_names(cx: &Ctx) -> Step {
    let mut cases = vec![("localhost", IpAddr::V4(Ipv4Addr::LOCALHOST))];
    if ipv6_available() {
        cases.push(("::1", IpAddr::V6(Ipv6Addr::LOCALHOST)));
    } else {
        cx.did("skipped `::1`: no IPv6 loopback on this machine");
    }
    let hosts: Vec<(&str, (&str, IpAddr))> = cases.iter().map(|&(host, ip)| (host, (host, ip))).collect();
    cx.cases(&hosts, |&(host, ip)| {
        let (mut p, mut c) = start_client(cx, ip, host, 1 << 20)?;
        c.send(format!("hello {host}\n").as_bytes(), cx.secs(5.0))?;
        c.close();
        p.expect_exit(0, &format!("exit status 0 (connected to `{host}`)"), cx.secs(5.0))?;
        same("the client's stdout", p.stdout(), format!("hello {host}\n").as_bytes())
    })
}
