//! Every wait of the grader: a [`Deadline`] and one [`wait`] on descriptors.
//!
//! The grader never sleeps to let time pass; it waits for an event (output,
//! an exit, room in a pipe) and bounds that wait by a deadline, so a broken
//! program costs a check its time-out and no more. Checking the deadline,
//! turning what is left of it into `poll`'s milliseconds, and retrying after
//! an interrupted or capped `poll` happen here and nowhere else.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollTimeout};

/// A point in time by which a wait must be over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// `span` from now.
    pub fn after(span: Duration) -> Deadline {
        Deadline(Instant::now() + span)
    }

    pub fn at(instant: Instant) -> Deadline {
        Deadline(instant)
    }

    /// Time left; zero once passed.
    pub fn left(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }

    /// This deadline, or `span` from now if that comes first: for conditions
    /// that are sampled (from `/proc`) as well as woken by events.
    pub fn sooner(self, span: Duration) -> Deadline {
        self.min(Deadline::after(span))
    }

    /// The time left in `poll`'s milliseconds: rounded up, so a wait of less
    /// than a millisecond does not turn into a busy loop; capped at a minute
    /// (`poll` takes at most `i32` ms; [`wait`] polls again after that).
    fn poll_timeout(&self) -> PollTimeout {
        let left = self.left();
        let ms = left.as_millis().clamp(if left.is_zero() { 0 } else { 1 }, 60_000);
        PollTimeout::from(ms as u16)
    }
}

/// Wait until one of `fds` is ready or `deadline` passes; returns how many
/// are ready (their `revents` say which), 0 once the deadline has passed.
/// An interrupted `poll` is resumed; any other error of `poll` ends the wait
/// early with 0, and the caller's loop decides what to do next.
pub fn wait(fds: &mut [PollFd], deadline: Deadline) -> usize {
    loop {
        match poll(fds, deadline.poll_timeout()) {
            Ok(n) if n > 0 => return n as usize,
            Ok(_) | Err(Errno::EINTR) if !deadline.passed() => {}
            _ => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::fd::AsFd;

    use nix::poll::PollFlags;

    #[test]
    fn a_wait_ends_at_the_deadline_without_an_event() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        let started = Instant::now();
        let n = wait(&mut [PollFd::new(r.as_fd(), PollFlags::POLLIN)], Deadline::after(Duration::from_millis(30)));
        assert_eq!(n, 0);
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn a_wait_ends_at_the_event() {
        let (r, w) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&w, b"x").unwrap();
        let started = Instant::now();
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        assert_eq!(wait(&mut fds, Deadline::after(Duration::from_secs(10))), 1);
        assert!(fds[0].any().unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn poll_timeouts_round_up_and_are_capped() {
        let ms = |d: Deadline| i32::from(d.poll_timeout());
        assert_eq!(ms(Deadline::at(Instant::now())), 0);
        assert_eq!(ms(Deadline::after(Duration::from_micros(10))), 1);
        assert_eq!(ms(Deadline::after(Duration::from_secs(3600))), 60_000);
        let soon = Deadline::after(Duration::from_secs(3600)).sooner(Duration::from_millis(5));
        assert!(soon.left() <= Duration::from_millis(5));
    }
}
