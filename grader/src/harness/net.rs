//! The grader's side of a TCP connection to a student's server.
//!
//! Like [`super::Program`], every wait is one loop (`Conn::pump`) around a
//! [`deadline::wait`] on the socket; bytes are read as they come, kept up to
//! a cap. Loopback only: the grader connects to the address the server
//! printed.

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags};

use super::capture::Capture;
use super::deadline::{self, Deadline};
use super::failure::{show, size, Failure, Kind, Step};
use super::program::SharedTranscript;

/// Parse the `listening on SOCKADDR` line of a server. Only an address of
/// this machine is accepted — loopback (`127.0.0.0/8`, `::1`) or the
/// wildcard (`0.0.0.0`, `::`), which Linux connects to the local host: the
/// grader connects to what the line says, and a program must not make it
/// connect anywhere else.
pub fn listening_addr(line: &[u8]) -> Step<SocketAddr> {
    let text = String::from_utf8_lossy(line);
    let addr = text
        .strip_prefix("listening on ")
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .ok_or_else(|| Failure::wrong(format!("the line {}", show(line)), "`listening on ADDR:PORT`"))?;
    let ip = addr.ip().to_canonical();
    if !ip.is_loopback() && !ip.is_unspecified() {
        return Err(Failure::wrong(
            format!("`listening on {addr}`: {ip} is not a loopback address, so the grader did not connect to it"),
            "a loopback address (127.0.0.1 unless --bind says otherwise)",
        ));
    }
    Ok(addr)
}

/// One connection, from the grader to the program.
pub struct Conn {
    pub name: String,
    stream: TcpStream,
    data: Capture,
    log: SharedTranscript,
}

impl Conn {
    fn new(name: &str, stream: TcpStream, log: SharedTranscript) -> Step<Conn> {
        stream.set_nonblocking(true).map_err(|e| Failure::grader(format!("set_nonblocking: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn { name: name.into(), stream, data: Capture::new(64 << 20), log })
    }

    /// Connect `name` (e.g. `client 1`) to `addr` within `timeout`.
    pub fn connect(name: &str, addr: SocketAddr, timeout: Duration, log: SharedTranscript) -> Step<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
            Failure::new(Kind::WrongOutput, format!("{name} could not connect to {addr}: {e}"), "the server to accept")
        })?;
        log.borrow_mut().did(format!("{name} connected to {addr}"));
        Conn::new(name, stream, log)
    }

    /// Start `n` connections to `addr` at once, without waiting for any,
    /// then wait (as long as `timeout`) until every handshake is done.
    /// Returns the connections whose handshake completed, in the order they
    /// were started, and how many did not complete. On loopback the kernel
    /// completes a handshake inside `connect` itself, whether the server
    /// runs or not, as long as its listen backlog has room: one that does
    /// not complete had its SYN dropped because the backlog was full, and
    /// is retried by the kernel only after a second or more.
    pub fn connect_burst(
        name: &str,
        n: usize,
        addr: SocketAddr,
        timeout: Duration,
        log: SharedTranscript,
    ) -> Step<(Vec<Conn>, usize)> {
        use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};
        let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        let to = SockaddrStorage::from(addr);
        let mut pending = Vec::with_capacity(n);
        for _ in 0..n {
            let fd = socket(family, SockType::Stream, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)
                .map_err(|e| Failure::grader(format!("socket: {e}")))?;
            match connect(fd.as_raw_fd(), &to) {
                Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => pending.push(fd),
                Err(e) => {
                    return Err(Failure::new(
                        Kind::WrongOutput,
                        format!("{name}: a connection to {addr} failed: {e}"),
                        "the server to accept",
                    ))
                }
            }
        }
        let until = Deadline::after(timeout);
        let done = |fd: &std::os::fd::OwnedFd| {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(1))
        };
        loop {
            let open = pending.iter().filter(|fd| !done(fd)).count();
            if open == 0 || until.passed() {
                break;
            }
            let first = pending.iter().find(|fd| !done(fd)).expect("one is open");
            deadline::wait(&mut [PollFd::new(first.as_fd(), PollFlags::POLLOUT)], until);
        }
        let mut conns = Vec::new();
        let mut left = 0;
        for fd in pending {
            let error = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::SocketError).unwrap_or(0);
            if done(&fd) && error == 0 {
                let k = conns.len() + 1;
                conns.push(Conn::new(&format!("{name} {k}"), TcpStream::from(fd), log.clone())?);
            } else {
                left += 1;
            }
        }
        log.borrow_mut().did(format!("started {n} connections to {addr} at once; {} completed", conns.len()));
        Ok((conns, left))
    }

    /// Send all of `bytes` (waiting for room as long as `timeout`), reading
    /// whatever arrives meanwhile so the two sides never deadlock.
    pub fn send(&mut self, bytes: &[u8], timeout: Duration) -> Step {
        let template = format!("{} sent {{}}", self.name);
        self.log.borrow_mut().sent(&template, bytes);
        self.send_quiet(bytes, timeout)
    }

    pub fn send_quiet(&mut self, bytes: &[u8], timeout: Duration) -> Step {
        let mut off = 0;
        let sent = self.pump(Deadline::after(timeout), true, |c| loop {
            if off == bytes.len() {
                return Some(Ok(()));
            }
            match c.stream.write(&bytes[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) => {
                    return Some(Err(Failure::wrong(
                        format!("{}'s send failed after {}: {e}", c.name, size(off)),
                        "the connection to stay open",
                    )))
                }
            }
        });
        sent.unwrap_or_else(|| {
            Err(Failure::new(
                Kind::TimedOut,
                format!(
                    "{} could send only {} of {} in {:.1} s: the server stopped reading",
                    self.name,
                    size(off),
                    size(bytes.len()),
                    timeout.as_secs_f64()
                ),
                "the server to keep reading (and echoing) while the client sends",
            ))
        })
    }

    /// One non-blocking attempt to send from `bytes`; returns how many went
    /// out (0 when the socket buffer is full). For loops that drive a
    /// program and a connection at the same time.
    pub fn send_some(&mut self, bytes: &[u8]) -> Step<usize> {
        match self.stream.write(bytes) {
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => Ok(0),
            Err(e) => Err(Failure::wrong(format!("{}'s send failed: {e}", self.name), "the connection to stay open")),
        }
    }

    /// Send `bytes` for up to `stall` without reading anything (a reader that
    /// stalls: the peer's writes block once our receive buffer is full);
    /// returns how many bytes went out.
    pub fn send_stalled(&mut self, bytes: &[u8], stall: Duration) -> usize {
        self.log.borrow_mut().did(format!("{} sent without reading for {:.1} s", self.name, stall.as_secs_f64()));
        let until = Deadline::after(stall);
        let mut off = 0;
        while off < bytes.len() {
            match self.stream.write(&bytes[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if until.passed() {
                        break;
                    }
                    deadline::wait(&mut [PollFd::new(self.stream.as_fd(), PollFlags::POLLOUT)], until);
                }
                Err(_) => break,
            }
        }
        off
    }

    /// Stop sending: the server reads EOF.
    pub fn shutdown_write(&mut self) {
        self.log.borrow_mut().did(format!("{} shut down its sending side (half-close)", self.name));
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Close with a reset (SO_LINGER 0): the server's next read or write fails
    /// with ECONNRESET.
    pub fn reset(self) {
        self.log.borrow_mut().did(format!("{} reset the connection (SO_LINGER 0, close)", self.name));
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        let _ = nix::sys::socket::setsockopt(&self.stream, nix::sys::socket::sockopt::Linger, &linger);
    }

    /// Close normally.
    pub fn close(self) {
        self.log.borrow_mut().did(format!("{} closed the connection", self.name));
    }

    /// The one wait loop of a connection: read what came, ask `turn` whether
    /// the wait is over, else wait for the next bytes (or, with
    /// `want_write`, for room to send). `None` when `until` passed first.
    fn pump<T>(
        &mut self,
        until: Deadline,
        want_write: bool,
        mut turn: impl FnMut(&mut Conn) -> Option<Step<T>>,
    ) -> Option<Step<T>> {
        let flags = if want_write { PollFlags::POLLIN | PollFlags::POLLOUT } else { PollFlags::POLLIN };
        loop {
            self.drain();
            if let Some(outcome) = turn(self) {
                return Some(outcome);
            }
            if until.passed() {
                return None;
            }
            deadline::wait(&mut [PollFd::new(self.stream.as_fd(), flags)], until);
        }
    }

    /// Read what is there without blocking.
    pub fn drain(&mut self) {
        self.data.drain_from(&mut self.stream);
    }

    /// Bytes received and not yet taken.
    pub fn pending(&self) -> &[u8] {
        self.data.pending()
    }

    pub fn take_all(&mut self) -> Vec<u8> {
        self.data.take_all()
    }

    pub fn received(&self) -> usize {
        self.data.total
    }

    pub fn at_eof(&self) -> bool {
        self.data.eof
    }

    pub fn try_line(&mut self) -> Option<Vec<u8>> {
        self.data.try_line()
    }

    /// Read until `cond` holds, EOF without it, or `timeout`.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&mut Conn) -> Option<T>,
    ) -> Step<T> {
        let outcome = self.pump(Deadline::after(timeout), false, |c| {
            if let Some(v) = cond(c) {
                return Some(Ok(v));
            }
            let closed = |c: &Conn| format!("{}, then the server closed it", c.got());
            c.data.eof.then(|| Err(Failure::wrong(closed(c), what)))
        });
        outcome.unwrap_or_else(|| {
            Err(Failure::new(Kind::TimedOut, format!("{} within {:.1} s", self.got(), timeout.as_secs_f64()), what))
        })
    }

    /// What arrived, for messages: all of it, taken and not yet taken.
    fn got(&self) -> String {
        self.data.describe(&format!("on {}'s connection", self.name))
    }

    pub fn line(&mut self, what: &str, timeout: Duration) -> Step<Vec<u8>> {
        self.wait_for(what, timeout, |c| c.try_line())
    }

    /// Expect the next line to be `want`.
    pub fn expect_line(&mut self, want: &str, timeout: Duration) -> Step {
        let what = format!("`{want}` on {}'s connection", self.name);
        let line = self.line(&what, timeout)?;
        if line == want.as_bytes() {
            Ok(())
        } else {
            Err(Failure::wrong(format!("{} received {}", self.name, show(&line)), what))
        }
    }

    /// Expect EOF with nothing more before it.
    pub fn expect_eof(&mut self, what: &str, timeout: Duration) -> Step {
        let outcome = self.pump(Deadline::after(timeout), false, |c| {
            if !c.pending().is_empty() {
                return Some(Err(Failure::wrong(format!("{} received {}", c.name, show(c.pending())), what)));
            }
            c.data.eof.then_some(Ok(()))
        });
        outcome.unwrap_or_else(|| {
            Err(Failure::new(
                Kind::TimedOut,
                format!("{}'s connection still open after {:.1} s", self.name, timeout.as_secs_f64()),
                what,
            ))
        })
    }
}

/// A listening socket of the grader's, for grading clients.
pub struct Listener {
    listener: std::net::TcpListener,
    log: SharedTranscript,
}

impl Listener {
    /// Listen on `ip` port 0 (the kernel picks a free port).
    pub fn bind(ip: std::net::IpAddr, log: SharedTranscript) -> std::io::Result<Listener> {
        let listener = std::net::TcpListener::bind((ip, 0))?;
        listener.set_nonblocking(true)?;
        Ok(Listener { listener, log })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound")
    }

    /// Wait for the program to connect; give up early when `exit_fd` (a
    /// pidfd of the program) reports that it exited.
    pub fn accept(&self, name: &str, exit_fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> Step<Conn> {
        let until = Deadline::after(timeout);
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    self.log.borrow_mut().did(format!("the grader's server accepted {name} from {peer}"));
                    return Conn::new(name, stream, self.log.clone());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                    if until.passed() {
                        return Err(Failure::new(
                            Kind::TimedOut,
                            format!("no connection to {} within {:.1} s", self.addr(), timeout.as_secs_f64()),
                            format!("{name} to connect"),
                        ));
                    }
                    let mut fds = [
                        PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                        PollFd::new(exit_fd, PollFlags::POLLIN),
                    ];
                    deadline::wait(&mut fds, until);
                    if fds[1].any().unwrap_or(false) && !fds[0].any().unwrap_or(false) {
                        return Err(Failure::new(
                            Kind::WrongOutput,
                            "it exited without connecting",
                            format!("{name} to connect to {}", self.addr()),
                        ));
                    }
                }
                Err(e) => return Err(Failure::grader(format!("accept: {e}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_of_this_machine_are_connected_to() {
        for ok in ["127.0.0.1:4000", "127.1.2.3:80", "[::1]:4000", "0.0.0.0:4000", "[::]:1", "[::ffff:127.0.0.1]:9"] {
            let line = format!("listening on {ok}");
            assert_eq!(listening_addr(line.as_bytes()).unwrap(), ok.parse().unwrap(), "{ok}");
        }
        for remote in ["10.1.2.3:80", "[2001:db8::1]:80", "[::ffff:10.0.0.1]:80", "192.168.1.1:22"] {
            let f = listening_addr(format!("listening on {remote}").as_bytes()).unwrap_err();
            assert!(f.got.contains("is not a loopback address, so the grader did not connect to it"), "{}", f.got);
        }
        assert!(listening_addr(b"listening on nowhere").unwrap_err().expected.contains("ADDR:PORT"));
    }
}
