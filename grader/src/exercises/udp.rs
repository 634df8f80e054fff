//! `udp` — binaries `udp-server` and `udp-client` (exercises/udp/README.md; slides
//! „Ports“, „Ports (2)“, „Socket erzeugen“ — „SOCK_DGRAM: UDP =
//! nachrichtenbasierte Kommunikation“, „Achtung: UDP ist unzuverlässig!“ —,
//! „Passives Warten“, „Senden von Daten“, „Empfangen von Daten“, „Timeouts
//! (1)“, „Timeouts (2)“).
//!
//! The grader plays a lossy network. For `udp-server` it is the clients:
//! bursts, several source addresses, retransmitted and old requests, short
//! datagrams. For `udp-client` it is the server: it drops transmissions,
//! answers late and twice, sends stale and foreign datagrams, closes its
//! port for a while, and never answers at all — and it measures every
//! retransmission between the kernel's arrival stamps.
//!
//! Datagrams appear in the transcript as `[SEQ] \`PAYLOAD\``. Every
//! exchange has a deadline and waits for an event on a socket (or the
//! program's exit); bursts stay at 40 datagrams per socket, far below what
//! a loopback receive buffer holds, so no correct program ever loses a
//! datagram to the grader's own load.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;

use super::support::{measure_idle, start_server};
use crate::check::{same, Check, Ctx, Exercise};
use crate::harness::udp::{Datagram, Udp, Wait};
use crate::harness::{show, Exit, Failure, Kind, Program, Step};

const SERVER: &str = "udp-server";
const CLIENT: &str = "udp-client";

/// Where the grader's sockets live: loopback, any free port.
const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Lower bounds are strict up to the contract's own unit: timeouts are
/// given in milliseconds, and the kernel stamps (CLOCK_REALTIME) may be
/// slewed by NTP by a fraction of that.
const TOLERANCE: Duration = Duration::from_millis(1);

pub fn exercise() -> Exercise {
    Exercise {
        id: "udp",
        title: "UDP: an at-most-once counter server and a client that retransmits with backoff",
        slides: "„Ports“, „Ports (2)“, „Socket erzeugen“ (SOCK_DGRAM), „Passives Warten“, „Senden von Daten“, \
                 „Empfangen von Daten“, „Timeouts (1)“, „Timeouts (2)“",
        bins: &[SERVER, CLIENT],
        hints: include_str!("../../hints/udp.toml"),
        checks: vec![
            Check::new("server-counter", 7, "server: `listening on`, then ADD, GET and unknown commands, each reply with the request's number",
                "One datagram socket (SOCK_DGRAM), `bind`, print what `getsockname` says. Each `recvfrom` gives \
                 one whole request and its sender; the reply repeats the request's 4-byte sequence number and goes \
                 back with `sendto` to that sender. `ADD N` takes decimal N below 2^31 only.", server_counter),
            Check::new("server-boundaries", 6, "server: 40 requests back to back get 40 replies, one datagram each, none cut off",
                "UDP keeps message boundaries: one `recvfrom` returns exactly one datagram, however many are \
                 queued, and one `sendto` sends exactly one. A receive buffer smaller than the datagram cuts it \
                 off and the rest is discarded: make it large enough for 4 + 1400 bytes (or simply 64 KiB).", server_boundaries),
            Check::new("server-per-address", 7, "server: every source address (IP and port) has its own total",
                "The only thing that tells UDP clients apart is the address `recvfrom` reports (slide „Ports \
                 (2)“: the 5-tuple). Keep the state — total, last sequence number, last reply — in a map keyed \
                 by that address.", server_per_address),
            Check::new("server-at-most-once", 9, "server: a retransmitted request gets the stored reply again and is not executed twice",
                "„UDP ist unzuverlässig“: a client sends a request again when the reply was lost. Same address, \
                 same sequence number as the last executed request: send the stored reply, do not add again. \
                 Compare sequence numbers as numbers in network byte order (`ntohl`), not as they lie in memory.", server_at_most_once),
            Check::new("server-ignores", 7, "server: older sequence numbers and datagrams under 4 bytes get no reply and change nothing",
                "A smaller sequence number than the last one seen from that address is an old copy still on \
                 its way: no reply, no effect. A datagram shorter than 4 bytes (even 0 bytes) is no request at \
                 all: ignore it — never index past its end, never take `recvfrom` returning 0 for an end of file.", server_ignores),
            Check::new("server-many-clients", 5, "server: 256 clients, each remembered separately",
                "The contract asks for state for at least 1024 addresses: a growing map, not a small fixed \
                 array.", server_many_clients),
            Check::new("server-idle-signals", 4, "server: no CPU while idle; SIGTERM and SIGINT end it with status 0",
                "Wait in one blocking `poll`/`select` (or a blocking `recvfrom`) — never spin. For the signals: \
                 a `signalfd` in the same poll, or a handler installed without SA_RESTART that sets a flag the \
                 loop checks when `recvfrom`/`poll` fails with EINTR.", server_idle_signals),
            Check::new("server-bind-conflict", 3, "server: a taken port gives the stated message and status 1",
                "On a failed `bind` print `udp-server: cannot bind ADDR:PORT: REASON` and exit 1 — no panic. \
                 (No SO_REUSEADDR: on a UDP socket it would let two servers share the port.)", server_bind_conflict),
            Check::new("client-lines", 7, "client: one request per line, numbered 1, 2, 3 in network byte order; each reply printed",
                "Each line (without its newline; empty lines too) is one datagram: the sequence number as 4 \
                 bytes big-endian (`htonl`), then the line. Wait for its reply, print the payload and a newline, \
                 then read the next line. Empty input: exit 0 at once.", client_lines),
            Check::timed("client-backoff", 10, "client: with the first three transmissions lost, retransmissions come T, 2T and 4T after the previous one",
                "After each transmission the wait is `now + timeout` as an absolute deadline (slide „Timeouts \
                 (1)“); when it passes, send the same datagram again and double the timeout. Never early: take \
                 the time after the send, and give `poll` the time left rounded up to whole milliseconds.", client_backoff),
            Check::new("client-late-reply", 7, "client: a late reply arriving after a retransmission is printed once; its duplicate is ignored",
                "After a retransmission two replies to the same request may come (one per transmission). Print \
                 the first; the second arrives while you wait for the next request and carries an older \
                 sequence number: drop it.", client_late_reply),
            Check::timed("client-ignores-others", 8, "client: wrong sequence numbers, short and foreign datagrams are ignored and do not move the deadline",
                "Accept only a datagram from the server's address whose sequence number is the one you wait for. \
                 Anything else is dropped and the wait goes on towards the *same* deadline: a full new timeout \
                 after every ignored datagram postpones the retransmission forever.", client_ignores_others),
            Check::timed("client-refused", 7, "client: ECONNREFUSED while the server's port is closed is a lost datagram; it keeps retransmitting",
                "On a connected UDP socket the kernel reports an ICMP „port unreachable“ for an earlier \
                 datagram as ECONNREFUSED on the next `recv` (or `send`). The server may be back in a moment: \
                 count it as a lost datagram and keep waiting for the timeout.", client_refused),
            Check::timed("client-gives-up", 8, "client: after R retransmissions and the last wait, the stated message and status 3",
                "R retransmissions means R + 1 transmissions; after the last one wait its full timeout (2^R · T) \
                 for a reply, then print `udp-client: no reply to request SEQ after R retransmissions` on stderr \
                 and exit 3.", client_gives_up),
            Check::new("client-idle-cpu", 5, "client: waiting for a reply uses no CPU and no wake-ups",
                "All waiting is one `poll`/`select` with the time left (or SO_RCVTIMEO): no loop around a \
                 zero timeout (the slide's „(0, 0) == Busy Waiting“), no sleeping in small steps.", client_idle_cpu),
        ],
    }
}

// ----- datagrams ----------------------------------------------------------------

/// A request or reply: the sequence number in network byte order, then the
/// payload.
fn datagram(seq: u32, payload: &str) -> Vec<u8> {
    let mut d = seq.to_be_bytes().to_vec();
    d.extend_from_slice(payload.as_bytes());
    d
}

/// `[7] \`OK 5\``, or the bytes of a datagram too short for a number.
fn describe(bytes: &[u8]) -> String {
    match bytes.split_first_chunk::<4>() {
        Some((seq, payload)) => format!("[{}] {}", u32::from_be_bytes(*seq), show(payload)),
        None => {
            let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("{} bytes `{}` (shorter than a sequence number)", bytes.len(), hex.join(" "))
        }
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ----- waiting on a socket while watching a program --------------------------------

/// The next datagram on `sock` within `timeout`; if `p` exits first, why.
fn next(cx: &Ctx, p: &mut Program, sock: &Udp, what: &str, timeout: Duration) -> Step<Datagram> {
    match sock.recv(Instant::now() + timeout, Some(p.exit_fd())) {
        Wait::Got(d) => Ok(d),
        Wait::Exited => Err(ended(cx, p, what)),
        Wait::Deadline => {
            let w = p.whereabouts();
            Err(Failure::new(
                Kind::TimedOut,
                format!("nothing on {}'s socket within {:.1} s; {w}", sock.name, timeout.as_secs_f64()),
                what,
            ))
        }
    }
}

/// `p` has exited while the grader waited for `what`: how (a panic, a
/// `todo!()`, a status and its stderr).
fn ended(cx: &Ctx, p: &mut Program, what: &str) -> Failure {
    match p.wait_exit(what, cx.secs(2.0)) {
        Ok(exit) => p.classify(exit, what),
        Err(f) => f,
    }
}

// ----- the grader as client (grading udp-server) -----------------------------------

fn socket(cx: &Ctx, name: &str) -> Step<Udp> {
    Udp::bind(name, LOOPBACK, cx.log.clone())
}

/// Expect the next datagram on `sock` to be the reply `[seq] want` from
/// `server`.
fn expect_reply(cx: &Ctx, p: &mut Program, sock: &Udp, server: SocketAddr, seq: u32, want: &str) -> Step {
    let what = format!("the reply [{seq}] `{want}` on {}", sock.name);
    let d = next(cx, p, sock, &what, cx.secs(5.0))?;
    if d.from != server {
        return Err(Failure::wrong(
            format!("{} from {}, not from the server's {server}", describe(&d.bytes), d.from),
            what,
        ));
    }
    if d.bytes != datagram(seq, want) {
        return Err(Failure::wrong(format!("{} received {}", sock.name, describe(&d.bytes)), what));
    }
    Ok(())
}

/// Send `[seq] payload` from `sock` and expect `[seq] want` back.
fn ask(cx: &Ctx, p: &mut Program, sock: &Udp, server: SocketAddr, seq: u32, payload: &str, want: &str) -> Step {
    sock.send_to(&format!("[{seq}] `{payload}`"), &datagram(seq, payload), server)?;
    expect_reply(cx, p, sock, server, seq, want)
}

fn server_counter(cx: &Ctx) -> Step {
    let (mut p, server) = start_server(cx, SERVER, &["--port", "0"])?;
    if server.ip() != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        return Err(Failure::wrong(format!("listening on {server}"), "the default address 127.0.0.1"));
    }
    let a = socket(cx, "client A")?;
    let script = [
        (1, "ADD 5", "OK 5"),
        (2, "ADD 7", "OK 12"),
        (3, "GET", "OK 12"),
        (4, "HELLO", "ERR unknown command"),
        (5, "ADD 2147483648", "ERR unknown command"),
        (6, "ADD seven", "ERR unknown command"),
        (7, "ADD 007", "OK 19"),
        (8, "GET", "OK 19"),
    ];
    for (seq, request, want) in script {
        ask(cx, &mut p, &a, server, seq, request, want)?;
    }
    Ok(())
}

fn server_boundaries(cx: &Ctx) -> Step {
    const N: u32 = 40;
    const LONG_AT: u32 = 20;
    let (mut p, server) = start_server(cx, SERVER, &["--port", "0"])?;
    let a = socket(cx, "client A")?;
    // Request LONG_AT is the longest the contract allows: `ADD 000…01`,
    // 1400 bytes of payload. A receive buffer that cuts it off loses the 1.
    let long = format!("ADD {:0>1396}", 1);
    for seq in 1..=N {
        let payload = if seq == LONG_AT { long.as_str() } else { "ADD 1" };
        a.send_to_quiet(&datagram(seq, payload), server)?;
    }
    cx.did(format!(
        "client A sent {N} requests back to back: [1] … [{N}] `ADD 1`, except [{LONG_AT}], `ADD 000…001` \
         with 1400 bytes of payload"
    ));
    let mut got: Vec<Option<Vec<u8>>> = vec![None; N as usize + 1];
    for n in 0..N {
        let what = format!("{N} replies, [1] `OK 1` … [{N}] `OK {N}`");
        let d = next(cx, &mut p, &a, &what, cx.secs(5.0)).map_err(|mut f| {
            f.got = format!("{n} replies, then {}", f.got);
            f
        })?;
        let seq = d.bytes.split_first_chunk::<4>().map(|(s, _)| u32::from_be_bytes(*s));
        match seq {
            Some(s @ 1..=N) if got[s as usize].is_none() => got[s as usize] = Some(d.bytes),
            _ => {
                return Err(Failure::wrong(
                    format!("after {n} replies: {}", describe(&d.bytes)),
                    format!("one reply to each of the requests [1] … [{N}]"),
                ))
            }
        }
    }
    for seq in 1..=N {
        let reply = got[seq as usize].as_deref().unwrap_or_default();
        let want = datagram(seq, &format!("OK {seq}"));
        if reply != want {
            let f = Failure::wrong(format!("the reply to [{seq}] was {}", describe(reply)), describe(&want));
            return Err(if seq >= LONG_AT && reply.len() == want.len() {
                f.diagnosed(
                    "the reply has the right length, but the 1400-byte request added less than it said: it was cut \
                     off",
                    "receive into a buffer large enough for the largest datagram: `recv_from` drops what does not fit",
                )
            } else {
                f
            });
        }
    }
    cx.did(format!("client A received {N} replies, one per request, each with its own number and total"));
    Ok(())
}

fn server_per_address(cx: &Ctx) -> Step {
    let (mut p, server) = start_server(cx, SERVER, &["--port", "0"])?;
    let a = socket(cx, "client A")?;
    let b = socket(cx, "client B")?;
    let one_total = |f: Failure| {
        f.diagnosed(
            "client A's total counts client B's additions: one total for everybody",
            "each source address (IP and port) has its own total",
        )
    };
    ask(cx, &mut p, &a, server, 1, "ADD 3", "OK 3")?;
    ask(cx, &mut p, &b, server, 1, "ADD 10", "OK 10").map_err(|f| {
        if f.got.contains("`OK 13`") {
            one_total(f)
        } else if f.got.contains("`OK 3`") {
            f.diagnosed(
                "client B got client A's stored reply: the last sequence number is kept for everybody",
                "keep the last sequence number and its reply per address, too",
            )
        } else {
            f
        }
    })?;
    ask(cx, &mut p, &a, server, 2, "GET", "OK 3").map_err(|f| {
        if f.kind == Kind::WrongOutput && f.diagnosis.is_none() {
            one_total(f)
        } else {
            f
        }
    })?;
    ask(cx, &mut p, &b, server, 2, "ADD 1", "OK 11")?;
    ask(cx, &mut p, &a, server, 3, "ADD 4", "OK 7")?;
    Ok(())
}

fn server_at_most_once(cx: &Ctx) -> Step {
    let (mut p, server) = start_server(cx, SERVER, &["--port", "0"])?;
    let a = socket(cx, "client A")?;
    let b = socket(cx, "client B")?;
    let twice = |f: Failure| {
        if f.kind != Kind::WrongOutput || f.diagnosis.is_some() {
            return f;
        }
        f.diagnosed(
            "the retransmission was executed again",
            "the same address and sequence number as the last request means the stored reply, not a second ADD",
        )
    };
    ask(cx, &mut p, &a, server, 255, "ADD 5", "OK 5")?;
    cx.did("client A sends the same request again (as if the reply had been lost)");
    ask(cx, &mut p, &a, server, 255, "ADD 5", "OK 5").map_err(twice)?;
    ask(cx, &mut p, &a, server, 256, "GET", "OK 5").map_err(|f| {
        if f.kind == Kind::TimedOut {
            f.diagnosed(
                "[256] after [255] got no reply: as bytes 00 00 01 00 after 00 00 00 ff, so the sequence numbers \
                 were probably compared in the wrong byte order",
                "convert with `ntohl` / `u32::from_be_bytes` before comparing",
            )
        } else {
            f
        }
    })?;
    ask(cx, &mut p, &a, server, 257, "ADD 2", "OK 7")?;
    ask(cx, &mut p, &b, server, 257, "ADD 1", "OK 1")?;
    cx.did("client A sends [257] twice more");
    ask(cx, &mut p, &a, server, 257, "ADD 2", "OK 7").map_err(twice)?;
    ask(cx, &mut p, &a, server, 257, "ADD 2", "OK 7").map_err(twice)?;
    ask(cx, &mut p, &a, server, 258, "GET", "OK 7")
}

fn server_ignores(cx: &Ctx) -> Step {
    let (mut p, server) = start_server(cx, SERVER, &["--port", "0"])?;
    let a = socket(cx, "client A")?;
    ask(cx, &mut p, &a, server, 10, "ADD 1", "OK 1")?;
    a.send_to("[9] `ADD 100` (older than [10])", &datagram(9, "ADD 100"), server)?;
    a.send_to("[1] `GET` (older)", &datagram(1, "GET"), server)?;
    for short in [&[][..], &[0], &[0, 0], &[0, 0, 11]] {
        a.send_to(&describe(short), short, server)?;
    }
    cx.did("client A sends [11] `GET`: the server handles its datagrams in order, so the next reply tells");
    a.send_to("[11] `GET`", &datagram(11, "GET"), server)?;
    expect_reply(cx, &mut p, &a, server, 11, "OK 1").map_err(|f| {
        if f.got.contains("[9]") || f.got.contains("[1]") {
            f.diagnosed(
                "the server answered an older sequence number than the last one seen from that address",
                "an older sequence number gets no reply at all",
            )
        } else if f.got.contains("`OK 101`") {
            f.diagnosed("the old request [9] was executed", "an older sequence number changes nothing: ignore it")
        } else {
            f
        }
    })
}

fn server_many_clients(cx: &Ctx) -> Step {
    const N: usize = 256;
    const WAVE: usize = 32;
    let (mut p, server) = start_server(cx, SERVER, &["--port", "0"])?;
    let log = std::rc::Rc::new(std::cell::RefCell::new(crate::harness::Transcript::default()));
    let mut clients = Vec::with_capacity(N);
    for n in 1..=N {
        clients.push(Udp::bind(&format!("client {n}"), LOOPBACK, log.clone())?);
    }
    cx.did(format!("{N} clients, each on its own port, send in waves of {WAVE}: first [1] `ADD n`, then [2] `GET`"));
    for (seq, request) in [(1, "ADD"), (2, "GET")] {
        for wave in clients.chunks(WAVE).enumerate() {
            let (w, socks) = wave;
            for (i, c) in socks.iter().enumerate() {
                let n = w * WAVE + i + 1;
                let payload = if request == "ADD" { format!("ADD {n}") } else { "GET".to_string() };
                c.send_to_quiet(&datagram(seq, &payload), server)?;
            }
            for (i, c) in socks.iter().enumerate() {
                let n = w * WAVE + i + 1;
                expect_reply(cx, &mut p, c, server, seq, &format!("OK {n}"))?;
            }
        }
    }
    cx.did(format!("each of the {N} clients got its own total back, twice"));
    Ok(())
}

fn server_idle_signals(cx: &Ctx) -> Step {
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let (mut p, server) = start_server(cx, SERVER, &["--port", "0"])?;
        let a = socket(cx, "client A")?;
        ask(cx, &mut p, &a, server, 1, "ADD 1", "OK 1")?;
        if sig == Signal::SIGTERM {
            let pid = p.pid();
            measure_idle(&mut p, pid, "udp-server", Duration::from_secs(1), "without requests")?
                .expect_no_cpu("block in `poll`/`recvfrom` until a datagram or a signal comes")?;
        }
        p.signal(sig);
        p.expect_exit(0, &format!("exit status 0 promptly after {sig}"), cx.secs(2.0))?;
    }
    Ok(())
}

fn server_bind_conflict(cx: &Ctx) -> Step {
    let holder = socket(cx, "the grader")?;
    let port = holder.addr().port().to_string();
    let mut p = cx.start(SERVER, &["--port", &port])?;
    p.expect_exit(1, "exit status 1 for a port that is taken", cx.secs(5.0))?;
    let err = String::from_utf8_lossy(p.stderr()).into_owned();
    let prefix = format!("udp-server: cannot bind 127.0.0.1:{port}: ");
    match err.lines().collect::<Vec<_>>().as_slice() {
        [line] if line.starts_with(&prefix) && line.len() > prefix.len() => Ok(()),
        _ => Err(Failure::wrong(format!("stderr {}", show(p.stderr())), format!("one line `{prefix}REASON`"))),
    }
}

// ----- the grader as server (grading udp-client) -----------------------------------

/// Bind the grader's server socket, start `udp-client 127.0.0.1 PORT
/// --timeout-ms T --retries R` with `stdin` (then EOF).
fn start_client(cx: &Ctx, stdin: &[u8], timeout_ms: u64, retries: u32) -> Step<(Program, Udp)> {
    let sock = socket(cx, "the grader's server")?;
    let port = sock.addr().port().to_string();
    let (t, r) = (timeout_ms.to_string(), retries.to_string());
    let mut p = cx.start(CLIENT, &["127.0.0.1", &port, "--timeout-ms", &t, "--retries", &r])?;
    if !stdin.is_empty() {
        p.send(stdin);
    }
    p.close_stdin();
    Ok((p, sock))
}

/// The datagram must be exactly `want` (a transmission of a known request).
fn same_request(d: &Datagram, want: &[u8]) -> Step {
    if d.bytes == want {
        return Ok(());
    }
    let f = Failure::wrong(format!("the request {}", describe(&d.bytes)), describe(want));
    let swapped = want.get(..4).map(|s| s.iter().rev().copied().collect::<Vec<u8>>());
    Err(match (d.bytes.get(..4), swapped) {
        (Some(got), Some(rev)) if got == rev.as_slice() && got != &want[..4] => f.diagnosed(
            "the sequence number is in the machine's byte order (little-endian on x86)",
            "the wire wants network byte order, big-endian (`htonl`, `u32::to_be_bytes`)",
        ),
        _ => f,
    })
}

/// Wait for a request that must be exactly `want`, and log it.
fn request_arrives(cx: &Ctx, p: &mut Program, sock: &Udp, want: &[u8], timeout: Duration) -> Step<Datagram> {
    let d = next(cx, p, sock, &format!("the request {}", describe(want)), timeout)?;
    same_request(&d, want)?;
    cx.did(format!("the grader's server received {}", describe(want)));
    Ok(d)
}

/// After the last reply: exit 0 with exactly `want` on stdout.
fn finish(cx: &Ctx, p: &mut Program, want: &[u8]) -> Step {
    p.expect_exit(0, "exit status 0 after the reply to the last line", cx.secs(3.0))?;
    same("udp-client's stdout", p.stdout(), want)
}

/// A retransmission `took` after the previous transmission, where `gap`
/// (never less) and at most `slack` more were expected.
fn judge_gap(k: u32, took: Duration, gap: Duration, slack: Duration) -> Step {
    if took + TOLERANCE < gap {
        return Err(Failure::wrong(
            format!("retransmission {k} arrived {} ms after the previous transmission", ms(took)),
            format!("not before {} ms", ms(gap)),
        ));
    }
    if took > gap + slack {
        return Err(Failure::wrong(
            format!("retransmission {k} arrived {} ms after the previous transmission", ms(took)),
            format!("{} ms after it, give or take {} ms", ms(gap), ms(slack)),
        ));
    }
    Ok(())
}

fn client_lines(cx: &Ctx) -> Step {
    {
        let (mut p, sock) = start_client(cx, b"", 200, 5)?;
        p.expect_exit(0, "exit status 0 at once for empty input", cx.secs(3.0))?;
        same("udp-client's stdout for empty input", p.stdout(), b"")?;
        if let Some(d) = sock.try_recv() {
            return Err(Failure::wrong(format!("a request {} for empty input", describe(&d.bytes)), "no request"));
        }
    }
    // The last line has no newline: it is a line all the same.
    let (mut p, sock) = start_client(cx, b"ADD 5\n\nhello, world", 200, 5)?;
    let replies = ["OK 5", "", "ERR unknown command"];
    for (i, (line, reply)) in ["ADD 5", "", "hello, world"].iter().zip(replies).enumerate() {
        let seq = i as u32 + 1;
        let want = datagram(seq, line);
        let d = request_arrives(cx, &mut p, &sock, &want, cx.secs(5.0))?;
        sock.send_to(&format!("[{seq}] `{reply}`"), &datagram(seq, reply), d.from)?;
    }
    finish(cx, &mut p, b"OK 5\n\nERR unknown command\n")
}

fn client_backoff(cx: &Ctx) -> Step {
    const T: u64 = 100;
    let (mut p, sock) = start_client(cx, b"GET\n", T, 5)?;
    let want = datagram(1, "GET");
    let first = request_arrives(cx, &mut p, &sock, &want, cx.secs(5.0))?;
    cx.did("the grader drops it");
    let slack = cx.secs(0.3);
    let mut prev = first;
    for k in 1..=3 {
        let gap = Duration::from_millis(T << (k - 1));
        let what = format!("retransmission {k} of request 1, {} ms after the previous transmission", ms(gap));
        let d = next(cx, &mut p, &sock, &what, gap + slack)?;
        same_request(&d, &want)?;
        let took = d.since(&prev);
        cx.did(format!(
            "received retransmission {k} {} ms after the previous transmission{}",
            ms(took),
            if k < 3 { "; the grader drops it" } else { "" }
        ));
        judge_gap(k, took, gap, slack).map_err(|f| {
            if took + TOLERANCE < gap && k > 1 && took.abs_diff(Duration::from_millis(T)) < Duration::from_millis(T / 4)
            {
                f.diagnosed(
                    "every retransmission came after T: the timeout stays the same",
                    "double the timeout each time (T, 2T, 4T …)",
                )
            } else {
                f
            }
        })?;
        prev = d;
    }
    sock.send_to("[1] `OK 0` (answering retransmission 3)", &datagram(1, "OK 0"), prev.from)?;
    finish(cx, &mut p, b"OK 0\n")
}

fn client_late_reply(cx: &Ctx) -> Step {
    const T: u64 = 150;
    let (mut p, sock) = start_client(cx, b"ADD 1\nADD 2\n", T, 5)?;
    let one = datagram(1, "ADD 1");
    request_arrives(cx, &mut p, &sock, &one, cx.secs(5.0))?;
    cx.did("the grader holds back the reply to this first transmission");
    let again = request_arrives(cx, &mut p, &sock, &one, Duration::from_millis(T) + cx.secs(1.0))?;
    let reply = datagram(1, "OK 1");
    sock.send_to("[1] `OK 1` (the late reply to the first transmission)", &reply, again.from)?;
    sock.send_to("[1] `OK 1` (the reply to the retransmission)", &reply, again.from)?;
    let two = datagram(2, "ADD 2");
    let d = loop {
        let d = next(cx, &mut p, &sock, "request [2] `ADD 2`", cx.secs(5.0))?;
        if d.bytes != one {
            break d;
        }
        cx.did("received another transmission of request 1");
    };
    same_request(&d, &two)?;
    sock.send_to("[2] `OK 3`", &datagram(2, "OK 3"), d.from)?;
    finish(cx, &mut p, b"OK 1\nOK 3\n").map_err(|f| {
        if String::from_utf8_lossy(p.stdout()).starts_with("OK 1\nOK 1") {
            f.diagnosed(
                "the second `OK 1` is the duplicate reply [1], read while waiting for [2]",
                "drop a reply whose sequence number is not the one you wait for",
            )
        } else {
            f
        }
    })
}

fn client_ignores_others(cx: &Ctx) -> Step {
    const T: u64 = 200;
    const EVERY: Duration = Duration::from_millis(40);
    let (mut p, sock) = start_client(cx, b"GET\n", T, 3)?;
    let other = socket(cx, "another socket of the grader's")?;
    let want = datagram(1, "GET");
    let first = request_arrives(cx, &mut p, &sock, &want, cx.secs(5.0))?;
    let client = first.from;
    let junk: [(&Udp, &str, Vec<u8>); 4] = [
        (&sock, "[2] `wrong number` (not the number it waits for)", datagram(2, "wrong number")),
        (&sock, "3 bytes `00 00 01` (too short for a sequence number)", vec![0, 0, 1]),
        (&sock, "[0] `stale` (an older number)", datagram(0, "stale")),
        (&other, "[1] `foreign` (the right number, from another port)", datagram(1, "foreign")),
    ];
    let listed: Vec<&str> = junk.iter().map(|(_, what, _)| *what).collect();
    cx.did(format!(
        "the grader drops it; until the retransmission comes it sends one of these every {} ms, in turn: {}",
        ms(EVERY),
        listed.join("; ")
    ));
    let slack = cx.secs(0.3);
    let limit = Instant::now() + Duration::from_millis(T) + slack;
    let mut sent = 0;
    let again = loop {
        let (from, _, bytes) = &junk[sent % junk.len()];
        from.send_to_quiet(bytes, client)?;
        sent += 1;
        match sock.recv((Instant::now() + EVERY).min(limit), Some(p.exit_fd())) {
            Wait::Got(d) => break d,
            Wait::Exited => {
                let f = ended(cx, &mut p, "udp-client to keep waiting for the reply [1]");
                let out = String::from_utf8_lossy(p.stdout()).into_owned();
                let (means, hint) = if out.contains("foreign") {
                    (
                        "it printed a datagram from another port",
                        "only the server's address counts (connect the socket, or compare the address `recvfrom` \
                         reports)",
                    )
                } else if out.contains("wrong number") || out.contains("stale") {
                    (
                        "it printed a reply with another sequence number",
                        "compare the reply's sequence number with the number you sent",
                    )
                } else if f.diagnosis.is_some() {
                    return Err(f);
                } else {
                    (
                        "it ended while the grader sent datagrams that were not the reply",
                        "every datagram that is not the reply is to be ignored, also one shorter than 4 bytes",
                    )
                };
                return Err(f.diagnosed(means, hint));
            }
            Wait::Deadline if Instant::now() >= limit => {
                return Err(Failure::new(
                    Kind::TimedOut,
                    format!(
                        "no retransmission within {} ms of the first transmission, while the grader sent {sent} \
                         datagrams to be ignored",
                        ms(Duration::from_millis(T) + slack)
                    ),
                    format!("retransmission 1 about {T} ms after the first transmission"),
                )
                .diagnosed(
                    "the wait started over after every ignored datagram",
                    "keep the absolute deadline and give `poll` only the time left",
                ));
            }
            Wait::Deadline => {}
        }
    };
    same_request(&again, &want)?;
    let took = again.since(&first);
    cx.did(format!(
        "received retransmission 1 {} ms after the first transmission ({sent} datagrams sent meanwhile)",
        ms(took)
    ));
    judge_gap(1, took, Duration::from_millis(T), slack).map_err(|f| {
        f.diagnosed(
            "the datagrams to be ignored moved the retransmission: one of them ended or restarted the wait",
            "an ignored datagram must neither end nor restart the wait: keep the absolute deadline",
        )
    })?;
    sock.send_to("[1] `OK right`", &datagram(1, "OK right"), again.from)?;
    finish(cx, &mut p, b"OK right\n")
}

fn client_refused(cx: &Ctx) -> Step {
    const T: u64 = 150;
    let (mut p, sock) = start_client(cx, b"GET\n", T, 5)?;
    let want = datagram(1, "GET");
    request_arrives(cx, &mut p, &sock, &want, cx.secs(5.0))?;
    let closed = Instant::now();
    let port = sock.addr();
    sock.close("nobody listens there now: retransmission 1, due after T, meets a closed port");
    let reopen = closed + Duration::from_millis(2 * T);
    p.observe(reopen.saturating_duration_since(Instant::now()), "udp-client to keep waiting while the port is closed")
        .map_err(|f| {
            if f.got.contains("refused") || f.got.contains("ECONNREFUSED") {
                f.diagnosed(
                    "it gave up on ECONNREFUSED: the ICMP „port unreachable“ for an earlier datagram",
                    "that is a lost datagram, not an error: keep waiting for the timeout",
                )
            } else {
                f
            }
        })?;
    let sock = Udp::bind("the grader's server (back on the same port)", port, cx.log.clone())?;
    let d = next(
        cx,
        &mut p,
        &sock,
        "a retransmission of request 1 once the port is open again",
        Duration::from_millis(4 * T) + cx.secs(1.0),
    )?;
    same_request(&d, &want)?;
    sock.send_to("[1] `OK 0`", &datagram(1, "OK 0"), d.from)?;
    finish(cx, &mut p, b"OK 0\n")
}

fn client_gives_up(cx: &Ctx) -> Step {
    const T: u64 = 50;
    const R: u32 = 3;
    let (mut p, sock) = start_client(cx, b"ADD 1\nGET\n", T, R)?;
    let d = request_arrives(cx, &mut p, &sock, &datagram(1, "ADD 1"), cx.secs(5.0))?;
    sock.send_to("[1] `OK 1`", &datagram(1, "OK 1"), d.from)?;
    cx.did("the grader never answers request 2");
    let want = datagram(2, "GET");
    let all = Duration::from_millis(T * ((1 << (R + 1)) - 1));
    let deadline = Instant::now() + all + cx.secs(2.0);
    let mut copies: Vec<Datagram> = Vec::new();
    let exited_at = loop {
        match sock.recv(deadline, Some(p.exit_fd())) {
            Wait::Got(d) => {
                same_request(&d, &want)?;
                copies.push(d);
            }
            Wait::Exited => break SystemTime::now(),
            Wait::Deadline => {
                return Err(Failure::new(
                    Kind::TimedOut,
                    format!(
                        "still running {:.1} s after request 2 was first sent, {} transmissions so far",
                        (all + cx.secs(2.0)).as_secs_f64(),
                        copies.len()
                    ),
                    format!("to give up after {R} retransmissions and the last wait, {} ms in all", ms(all)),
                ));
            }
        }
    };
    let gaps: Vec<String> = copies.windows(2).map(|w| format!("{} ms", ms(w[1].since(&w[0])))).collect();
    cx.did(format!(
        "received {} transmissions of request 2 (gaps: {}), then udp-client exited",
        copies.len(),
        if gaps.is_empty() { "none".to_string() } else { gaps.join(", ") }
    ));
    let n = copies.len();
    if n != R as usize + 1 {
        let f = Failure::wrong(
            format!("{n} transmissions of request 2 (the first and {} retransmissions)", n.saturating_sub(1)),
            format!("{} (the first and `--retries {R}` retransmissions)", R + 1),
        );
        return Err(if n == R as usize {
            f.diagnosed("one retransmission short", "R counts the *re*transmissions, after the first transmission")
        } else {
            f
        });
    }
    for k in 1..n {
        let gap = Duration::from_millis(T << (k - 1));
        judge_gap(k as u32, copies[k].since(&copies[k - 1]), gap, cx.secs(0.3))?;
    }
    let last_wait = Duration::from_millis(T << R);
    let waited = exited_at.duration_since(copies[n - 1].at).unwrap_or_default();
    if waited + TOLERANCE < last_wait {
        return Err(Failure::wrong(
            format!("it exited {} ms after the last retransmission", ms(waited)),
            format!("a last wait of {} ms (2^R · T) for a reply before giving up", ms(last_wait)),
        ));
    }
    let exit = p.wait_exit("udp-client to end", cx.secs(2.0))?;
    if exit != Exit::Code(3) {
        return Err(p.classify(exit, "exit status 3 when request 2 stays unanswered"));
    }
    let message = format!("udp-client: no reply to request 2 after {R} retransmissions");
    let err = String::from_utf8_lossy(p.stderr()).into_owned();
    if err.lines().collect::<Vec<_>>() != [message.as_str()] {
        return Err(Failure::wrong(format!("stderr {}", show(p.stderr())), format!("one line `{message}`")));
    }
    same("udp-client's stdout", p.stdout(), b"OK 1\n")
}

fn client_idle_cpu(cx: &Ctx) -> Step {
    let (mut p, sock) = start_client(cx, b"GET\n", 5000, 1)?;
    request_arrives(cx, &mut p, &sock, &datagram(1, "GET"), cx.secs(5.0))?;
    let pid = p.pid();
    let usage = measure_idle(&mut p, pid, "udp-client", Duration::from_secs(1), "waiting for a reply (timeout 5 s)")?;
    usage.expect_no_cpu("one `poll` with the time left until the deadline: a loop around `poll` with timeout 0 (or a non-blocking `recv`) is busy waiting")?;
    usage.expect_no_polling(
        "one `poll` with the whole time left: sleeping in small steps and looking again is polling with extra delay",
    )?;
    Ok(())
}
