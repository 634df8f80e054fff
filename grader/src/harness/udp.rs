//! The grader's side of UDP: a datagram socket on loopback, for talking to a
//! student's server (the grader as client) or answering a student's client
//! (the grader as server, playing a lossy network).
//!
//! Like [`super::Program`] and [`super::net::Conn`], every wait is one
//! `poll` with a deadline — on the socket and, optionally, a program's
//! pidfd, so a program that dies ends the wait at once. Each datagram
//! carries the time the *kernel* queued it on the grader's socket
//! (SO_TIMESTAMPNS): intervals between a client's transmissions are measured
//! between arrivals, not between the moments the grader happened to be
//! scheduled to read them, so a loaded machine cannot make a correct
//! client look early.

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::cmsg_space;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage};
use nix::sys::time::TimeSpec;

use super::failure::{Failure, Step};
use super::program::SharedTranscript;

/// The largest datagram UDP carries; the receive buffer never cuts one off.
const MAX_DATAGRAM: usize = 65_536;

/// One datagram the grader received.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub bytes: Vec<u8>,
    pub from: SocketAddr,
    /// When the kernel queued it on the grader's socket (CLOCK_REALTIME, as
    /// SO_TIMESTAMPNS reports it; the receive time if there was no stamp).
    pub at: SystemTime,
}

impl Datagram {
    /// Time from `earlier`'s arrival to this one's, both stamped by the
    /// kernel (zero if `earlier` arrived later).
    pub fn since(&self, earlier: &Datagram) -> Duration {
        self.at.duration_since(earlier.at).unwrap_or_default()
    }
}

/// How a wait on the socket ended.
#[derive(Debug)]
pub enum Wait {
    Got(Datagram),
    /// The program whose pidfd was given exited (and nothing was queued).
    Exited,
    Deadline,
}

/// A UDP socket of the grader's, bound on loopback.
pub struct Udp {
    /// For the transcript: `client A`, `the grader's server`.
    pub name: String,
    sock: UdpSocket,
    log: SharedTranscript,
}

impl Udp {
    /// Bind `name` to `addr` (port 0: the kernel picks a free one),
    /// non-blocking, with kernel receive timestamps — on port 0 taking
    /// effect before this returns.
    pub fn bind(name: &str, addr: SocketAddr, log: SharedTranscript) -> Step<Udp> {
        let sock = UdpSocket::bind(addr).map_err(|e| Failure::grader(format!("{name} cannot bind {addr}: {e}")))?;
        sock.set_nonblocking(true).map_err(|e| Failure::grader(format!("set_nonblocking: {e}")))?;
        setsockopt(&sock, sockopt::ReceiveTimestampns, &true)
            .map_err(|e| Failure::grader(format!("setsockopt(SO_TIMESTAMPNS): {e}")))?;
        let udp = Udp { name: name.to_string(), sock, log };
        // On a port of its own choosing nobody else sends to it yet, so
        // every datagram there is its own.
        if addr.port() == 0 {
            udp.stamps_on()?;
        }
        udp.log.borrow_mut().did(format!("{} bound {}", udp.name, udp.addr()));
        Ok(udp)
    }

    /// Make sure the kernel stamps datagrams as they arrive. It does so
    /// only once stamping is on for the whole system, which it turns on a
    /// moment after the first socket asks for it (a deferred work item,
    /// late on a busy machine); a datagram arriving before is stamped when
    /// it is read — late, so the gap to the next one looks short and a
    /// correct client retransmits "early". So the socket sends itself a
    /// datagram until one comes back stamped before it was read: from then
    /// on, while it is open, stamping stays on.
    fn stamps_on(&self) -> Step {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            self.send_to_quiet(b"stamp?", self.addr())?;
            // Loopback queues (and stamps) the datagram inside the send.
            let sent = SystemTime::now();
            match self.recv(deadline, None) {
                Wait::Got(d) if d.at <= sent => return Ok(()),
                Wait::Got(_) => {}
                Wait::Exited | Wait::Deadline => break,
            }
            // Give the kernel's work item a moment: wait 1 ms for nothing
            // (nobody knows this socket's port yet).
            let _ = self.recv(Instant::now() + Duration::from_millis(1), None);
        }
        Err(Failure::grader(format!("{}: the kernel does not stamp arriving datagrams (SO_TIMESTAMPNS)", self.name)))
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("a bound socket has an address")
    }

    /// Send one datagram to `to`, logged as "NAME sent WHAT to TO".
    pub fn send_to(&self, what: &str, bytes: &[u8], to: SocketAddr) -> Step {
        self.log.borrow_mut().did(format!("{} sent {what} to {to}", self.name));
        self.send_to_quiet(bytes, to)
    }

    /// Send one datagram without logging it (bursts log one summary line).
    pub fn send_to_quiet(&self, bytes: &[u8], to: SocketAddr) -> Step {
        match self.sock.send_to(bytes, to) {
            Ok(_) => Ok(()),
            Err(e) => Err(Failure::grader(format!("{} could not send to {to}: {e}", self.name))),
        }
    }

    /// Take one queued datagram, if there is one.
    pub fn try_recv(&self) -> Option<Datagram> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut cmsg = cmsg_space!(TimeSpec);
        let (n, from, stamp) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = loop {
                match recvmsg::<SockaddrStorage>(
                    self.sock.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(msg) => break msg,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return None,
                }
            };
            let stamp = msg.cmsgs().ok()?.find_map(|c| match c {
                ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
                _ => None,
            });
            (msg.bytes, msg.address.and_then(socket_addr), stamp)
        };
        buf.truncate(n);
        let at = stamp
            .map(|ts| UNIX_EPOCH + Duration::new(ts.tv_sec().max(0) as u64, ts.tv_nsec().max(0) as u32))
            .unwrap_or_else(SystemTime::now);
        Some(Datagram { bytes: buf, from: from?, at })
    }

    /// Wait for the next datagram until `deadline`; with `exit`, a
    /// program's pidfd, stop as soon as that program has exited (a datagram
    /// it sent before exiting is still returned first).
    pub fn recv(&self, deadline: Instant, exit: Option<BorrowedFd<'_>>) -> Wait {
        loop {
            if let Some(d) = self.try_recv() {
                return Wait::Got(d);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wait::Deadline;
            }
            let mut fds = vec![PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            if let Some(fd) = exit {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            // Rounded up: a wait that ends before the deadline only loops.
            let ms = left.as_nanos().div_ceil(1_000_000).min(60_000) as u16;
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                // Not possible on two valid descriptors; never spin on it.
                Err(_) => return Wait::Deadline,
            }
            let exited = fds.get(1).and_then(|f| f.any()).unwrap_or(false);
            let readable = fds[0].any().unwrap_or(false);
            if exited && !readable {
                return match self.try_recv() {
                    Some(d) => Wait::Got(d),
                    None => Wait::Exited,
                };
            }
        }
    }

    /// Close the socket: nothing listens on its port any more, and a
    /// datagram sent there makes the kernel answer with an ICMP port
    /// unreachable (a connected sender's next `recv` or `send` fails with
    /// ECONNREFUSED).
    pub fn close(self, why: &str) {
        self.log.borrow_mut().did(format!("{} closed its socket {} ({why})", self.name, self.addr()));
    }
}

fn socket_addr(s: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    s.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[test]
    fn stamps_are_arrival_times_and_waits_end() {
        let log = SharedTranscript::default();
        let a = Udp::bind("a", loopback(), log.clone()).unwrap();
        let b = Udp::bind("b", loopback(), log.clone()).unwrap();
        let before = SystemTime::now();
        a.send_to("[1] `x`", b"\0\0\0\x01x", b.addr()).unwrap();
        // Loopback delivers inside `send`: the datagram is queued (and
        // stamped) before the call returns, whenever it is read.
        let sent = SystemTime::now();
        let Wait::Got(d) = b.recv(Instant::now() + Duration::from_secs(5), None) else { panic!("no datagram") };
        assert_eq!(d.bytes, b"\0\0\0\x01x");
        assert_eq!(d.from, a.addr());
        assert!(before <= d.at && d.at <= sent, "stamp {:?} not within the send ({before:?}..{sent:?})", d.at);
        let t = Instant::now();
        assert!(matches!(b.recv(t + Duration::from_millis(20), None), Wait::Deadline));
        assert!(t.elapsed() >= Duration::from_millis(20));
        assert_eq!(log.borrow().steps.len(), 3, "{:?}", log.borrow().steps);
    }
}
