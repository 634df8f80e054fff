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
use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage};
use nix::sys::time::TimeSpec;

use super::deadline::{wait, Deadline};
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
    /// non-blocking, with kernel receive timestamps.
    pub fn bind(name: &str, addr: SocketAddr, log: SharedTranscript) -> Step<Udp> {
        let sock = UdpSocket::bind(addr).map_err(|e| Failure::grader(format!("{name} cannot bind {addr}: {e}")))?;
        sock.set_nonblocking(true).map_err(|e| Failure::grader(format!("set_nonblocking: {e}")))?;
        setsockopt(&sock, sockopt::ReceiveTimestampns, &true)
            .map_err(|e| Failure::grader(format!("setsockopt(SO_TIMESTAMPNS): {e}")))?;
        let udp = Udp { name: name.to_string(), sock, log };
        stamps_at_arrival();
        udp.log.borrow_mut().did(format!("{} bound {}", udp.name, udp.addr()));
        Ok(udp)
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
        let deadline = Deadline::at(deadline);
        loop {
            if let Some(d) = self.try_recv() {
                return Wait::Got(d);
            }
            if deadline.passed() {
                return Wait::Deadline;
            }
            let mut fds = vec![PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            if let Some(fd) = exit {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            wait(&mut fds, deadline);
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

/// Make sure the kernel stamps datagrams when they are queued, before any
/// gap is measured. The first SO_TIMESTAMPNS socket of a process switches
/// the stamping on through a static key that the kernel flips from a work
/// queue, a little later; until then a datagram carries no stamp and is
/// stamped when it is *read* — as late as the grader happened to run,
/// which would make a correct client's retransmission look early. So send
/// datagrams to a socket of our own until one comes back stamped before
/// its `send` returned: the observable sign that stamping at arrival is
/// on. Once per process, bounded (then the grader only warns); the probe
/// socket stays open for the life of the process, so the key stays on even
/// between checks that have no socket of their own.
fn stamps_at_arrival() {
    static PROBE: std::sync::OnceLock<Option<UdpSocket>> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| {
        let sock = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).ok()?;
        let me = sock.local_addr().ok()?;
        setsockopt(&sock, sockopt::ReceiveTimestampns, &true).ok()?;
        sock.set_nonblocking(true).ok()?;
        let probe = Udp { name: String::new(), sock, log: SharedTranscript::default() };
        let until = Deadline::after(Duration::from_secs(2));
        while !until.passed() {
            probe.sock.send_to(b"stamp?", me).ok()?;
            let sent = SystemTime::now();
            if let Wait::Got(d) = probe.recv(Instant::now() + Duration::from_millis(100), None) {
                if d.at <= sent {
                    return Some(probe.sock);
                }
            }
        }
        eprintln!("grader: warning: the kernel does not stamp UDP datagrams on arrival; retransmission gaps are measured when read");
        Some(probe.sock)
    });
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
