//! Other graders on this machine, as far as IPC objects are concerned.
//!
//! An object whose creator the kernel did not record is judged by the time
//! it was made. That is only safe while no other grader runs checks: its
//! programs make objects with the same uid at the same time (`cargo test`
//! runs graders side by side, `grader gradebook` runs one per submission).
//! So every grader that runs checks holds a read lock on one byte of a
//! shared lock file for as long as it lives (open file description locks,
//! released by the kernel however the grader ends), and counts itself in
//! the file's first eight bytes when it arrives. A check ran alone if, at
//! its start and at its end, nobody else held a byte and the count had not
//! changed.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};

use nix::fcntl::{fcntl, FcntlArg};

/// Bytes 0–7: how many graders have arrived, little-endian.
const COUNT_LEN: i64 = 8;

/// What one look at the lock file shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// Graders that have arrived so far, ever.
    arrived: u64,
    /// Another grader is here right now.
    others: bool,
}

/// Did a check between looks `first` and `last` run alone? Unknown counts
/// as no.
pub fn alone(first: Option<Look>, last: Option<Look>) -> bool {
    matches!((first, last), (Some(a), Some(b)) if !a.others && !b.others && a.arrived == b.arrived)
}

/// This grader's seat: the lock file, with its byte locked.
pub struct Seat(Option<File>);

impl Seat {
    /// Arrive: count in and lock this grader's byte. Without a usable lock
    /// file every look is unknown.
    pub fn take() -> Seat {
        Seat(open().filter(|f| arrive(f).is_ok()))
    }

    pub fn look(&self) -> Option<Look> {
        let f = self.0.as_ref()?;
        Some(Look { arrived: count(f).ok()?, others: held_by_others(f).ok()? })
    }

    /// Leave (at exit): from now on this grader is not "another grader" to
    /// anyone.
    pub fn leave(&mut self) {
        self.0 = None;
    }
}

/// Whether another grader is here now, through a descriptor of our own
/// (after [`Seat::leave`]). Unknown counts as no: this decides only whether
/// an unclaimed object is removed at exit, and leaving it would be the
/// greater harm.
pub fn others_here() -> bool {
    open().is_some_and(|f| held_by_others(&f).unwrap_or(false))
}

fn open() -> Option<File> {
    let uid = super::objects::euid()?;
    let path = std::env::temp_dir().join(format!("ipc-lab-graders-{uid}.lock"));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    // A file planted by another user must not steer us.
    let meta = f.metadata().ok()?;
    (meta.is_file() && meta.uid() == uid).then_some(f)
}

fn lock(kind: i32, start: i64, len: i64) -> libc::flock {
    libc::flock { l_type: kind as i16, l_whence: libc::SEEK_SET as i16, l_start: start, l_len: len, l_pid: 0 }
}

fn arrive(f: &File) -> nix::Result<()> {
    fcntl(f, FcntlArg::F_OFD_SETLKW(&lock(libc::F_WRLCK, 0, COUNT_LEN)))?;
    let n = read_count(f);
    let wrote = f.write_at(&(n + 1).to_le_bytes(), 0);
    fcntl(f, FcntlArg::F_OFD_SETLK(&lock(libc::F_UNLCK, 0, COUNT_LEN)))?;
    wrote.map_err(|_| nix::errno::Errno::EIO)?;
    let seat = COUNT_LEN + i64::from(std::process::id());
    fcntl(f, FcntlArg::F_OFD_SETLK(&lock(libc::F_RDLCK, seat, 1))).map(drop)
}

fn count(f: &File) -> nix::Result<u64> {
    fcntl(f, FcntlArg::F_OFD_SETLKW(&lock(libc::F_RDLCK, 0, COUNT_LEN)))?;
    let n = read_count(f);
    fcntl(f, FcntlArg::F_OFD_SETLK(&lock(libc::F_UNLCK, 0, COUNT_LEN)))?;
    Ok(n)
}

fn read_count(f: &File) -> u64 {
    let mut b = [0u8; 8];
    match f.read_at(&mut b, 0) {
        Ok(8) => u64::from_le_bytes(b),
        _ => 0,
    }
}

/// Does a lock of another open file description sit on any seat? (Our own
/// seat, locked through `f`, does not conflict with `f`.)
fn held_by_others(f: &File) -> nix::Result<bool> {
    let mut probe = lock(libc::F_WRLCK, COUNT_LEN, 0);
    fcntl(f, FcntlArg::F_OFD_GETLK(&mut probe))?;
    Ok(i32::from(probe.l_type) != libc::F_UNLCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_runs_alone_only_if_nobody_was_there_or_arrived() {
        let quiet = Look { arrived: 3, others: false };
        assert!(alone(Some(quiet), Some(quiet)));
        assert!(!alone(Some(quiet), Some(Look { arrived: 4, others: false })), "one came and went");
        assert!(!alone(Some(Look { others: true, ..quiet }), Some(quiet)), "one was there at the start");
        assert!(!alone(Some(quiet), Some(Look { others: true, ..quiet })), "one is there at the end");
        assert!(!alone(None, Some(quiet)), "unknown is not alone");
    }

    #[test]
    fn a_second_seat_is_another_grader_and_leaving_frees_it() {
        // Two seats in one process stand for two graders: each is its own
        // open file description. (Both use this process's byte, which is
        // enough: a read lock does not conflict with a read lock.)
        let mut first = Seat::take();
        let Some(before) = first.look() else { return }; // no usable temp dir
        let mut second = Seat::take();
        let with_two = first.look().unwrap();
        assert!(with_two.others, "the second seat is seen");
        assert!(with_two.arrived > before.arrived, "and counted");
        second.leave();
        first.leave();
        assert!(first.look().is_none());
    }
}
