//! The machine's IPC objects, read from where the kernel shows them, and
//! how each is removed.
//!
//! - POSIX shared memory and named semaphores: files in `/dev/shm`
//!   (`shm_open("/x")` is `/dev/shm/x`, `sem_open("/x")` is
//!   `/dev/shm/sem.x`); `shm_unlink`/`sem_unlink` is `unlink`.
//! - POSIX message queues: files in the `mqueue` file system, wherever it is
//!   mounted (usually `/dev/mqueue`). Where it is not mounted, queues cannot
//!   be listed at all, and this kind is not observed.
//! - System V shared memory, semaphore sets and message queues:
//!   `/proc/sysvipc/{shm,sem,msg}`, removed with `IPC_RMID`.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::unistd::Pid;

use crate::harness::procfs;

/// Where POSIX shared memory objects and named semaphores live.
const SHM_DIR: &str = "/dev/shm";

/// How far a file's birth time may lag the real moment of creation: inode
/// times come from the kernel's coarse clock, which is up to one tick
/// (1–10 ms) behind the clock the grader reads.
const COARSE_CLOCK_LAG: Duration = Duration::from_millis(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sort {
    PosixShm,
    PosixSem,
    PosixMq,
    SysvShm,
    SysvSem,
    SysvMsg,
}

impl Sort {
    /// What it is, for a message.
    pub fn noun(self) -> &'static str {
        match self {
            Sort::PosixShm => "POSIX shared memory object",
            Sort::PosixSem => "POSIX named semaphore",
            Sort::PosixMq => "POSIX message queue",
            Sort::SysvShm => "System V shared memory segment",
            Sort::SysvSem => "System V semaphore set",
            Sort::SysvMsg => "System V message queue",
        }
    }

    /// How a program releases it: what the expected behaviour says.
    pub fn release(self) -> &'static str {
        match self {
            Sort::PosixShm => "`shm_unlink` a POSIX shared memory object once both processes have mapped it",
            Sort::PosixSem => "`sem_unlink` a named semaphore once both processes have opened it",
            Sort::PosixMq => "`mq_unlink` a message queue once both ends have opened it",
            Sort::SysvShm => {
                "`shmctl(id, IPC_RMID, NULL)` a System V segment once both processes have attached it \
                 (it goes when the last one detaches)"
            }
            Sort::SysvSem => "`semctl(id, 0, IPC_RMID)` a System V semaphore set when done",
            Sort::SysvMsg => "`msgctl(id, IPC_RMID, NULL)` a System V message queue when done",
        }
    }
}

/// What identifies an object while it exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    /// A file: its path and inode (a name removed and made again is a new
    /// object).
    File { path: PathBuf, ino: u64 },
    /// A System V object: its id and key.
    Sysv { sort: Sort, id: i32, key: i32 },
}

/// When an object was made, as an interval that contains the real moment:
/// inode and System V times are coarser than the grader's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Made {
    pub earliest: SystemTime,
    pub latest: SystemTime,
}

impl Made {
    /// From an inode time with nanoseconds (read from the coarse clock).
    pub fn fine(t: SystemTime) -> Made {
        Made { earliest: t, latest: t + COARSE_CLOCK_LAG }
    }

    /// From a time in whole seconds.
    pub fn seconds(secs: i64) -> Made {
        let t = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
        Made { earliest: t, latest: t + Duration::from_secs(1) }
    }
}

/// One IPC object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub id: Id,
    pub sort: Sort,
    /// The name a program used (`/x`); empty for System V objects.
    pub name: String,
    /// The uid that created it (System V `cuid`; a file's owner).
    pub uid: u32,
    /// Its birth time where the kernel keeps one; else its last change
    /// (System V `ctime`, an inode's ctime), which is never earlier.
    pub made: Made,
    /// Pids the kernel recorded for it, the creator first: System V `cpid`
    /// and `lpid`, `lspid` and `lrpid`, a semaphore's last operator.
    pub pids: Vec<i32>,
    /// Who has it open, mapped or attached right now.
    pub held: Held,
    /// Size in bytes (shm), semaphores in the set, or messages queued.
    pub size: u64,
}

impl Object {
    /// `POSIX shared memory object `/x``, `System V … (shmid 3, key 0x…)`.
    pub fn describe(&self) -> String {
        match &self.id {
            Id::File { .. } => format!("{} `{}`", self.sort.noun(), self.name),
            Id::Sysv { id, key, sort } => {
                let what = match sort {
                    Sort::SysvShm => "shmid",
                    Sort::SysvSem => "semid",
                    _ => "msqid",
                };
                let key = if *key == 0 { "IPC_PRIVATE".to_string() } else { format!("key {:#010x}", *key as u32) };
                format!("{} ({what} {id}, {key})", self.sort.noun())
            }
        }
    }
}

/// Every IPC object of every kind observable here. POSIX message queues
/// are not, where no mqueue file system is mounted (the grader mounts
/// none); an unreadable `/proc/sysvipc` table hides its kind too.
pub fn snapshot() -> Vec<Object> {
    let mut out = Vec::new();
    files(Path::new(SHM_DIR), &mut out, |name| match name.strip_prefix("sem.") {
        Some(sem) => (Sort::PosixSem, format!("/{sem}")),
        None => (Sort::PosixShm, format!("/{name}")),
    });
    if let Some(dir) = mqueue_mount() {
        files(&dir, &mut out, |name| (Sort::PosixMq, format!("/{name}")));
    }
    for sort in [Sort::SysvShm, Sort::SysvSem, Sort::SysvMsg] {
        if let Ok(text) = fs::read_to_string(sysv_path(sort)) {
            out.extend(parse_sysv(sort, &text));
        }
    }
    out
}

/// The regular files of `dir` as objects; `sort_and_name` classifies them.
fn files(dir: &Path, out: &mut Vec<Object>, sort_and_name: impl Fn(&str) -> (Sort, String)) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if !meta.file_type().is_file() {
            continue;
        }
        let (sort, name) = sort_and_name(&entry.file_name().to_string_lossy());
        out.push(Object {
            id: Id::File { path, ino: meta.ino() },
            sort,
            name,
            uid: meta.uid(),
            made: file_made(&meta),
            pids: Vec::new(),
            held: Held::No,
            size: meta.len(),
        });
    }
}

/// A file's birth time (tmpfs keeps one); else its ctime — in whole seconds
/// where the file system keeps no more (mqueue).
fn file_made(meta: &fs::Metadata) -> Made {
    if let Ok(born) = meta.created() {
        return Made::fine(born);
    }
    if meta.ctime_nsec() == 0 {
        Made::seconds(meta.ctime())
    } else {
        Made::fine(UNIX_EPOCH + Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec() as u32))
    }
}

/// Where the `mqueue` file system is mounted, if it is.
fn mqueue_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        // `36 35 0:20 / /dev/mqueue rw,relatime shared:8 - mqueue mqueue rw`
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split(' ').nth(4)?;
        (right.split_whitespace().next()? == "mqueue").then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// Mount points in mountinfo escape space, tab, newline and `\` as octal.
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn sysv_path(sort: Sort) -> &'static str {
    match sort {
        Sort::SysvShm => "/proc/sysvipc/shm",
        Sort::SysvSem => "/proc/sysvipc/sem",
        _ => "/proc/sysvipc/msg",
    }
}

/// Parse one of `/proc/sysvipc/{shm,sem,msg}`: a header line naming the
/// columns, then one line per object. Columns are found by name (kernels
/// have added some, e.g. `rss` and `swap`).
pub fn parse_sysv(sort: Sort, text: &str) -> Vec<Object> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let columns: HashMap<&str, usize> = header.split_whitespace().enumerate().map(|(i, c)| (c, i)).collect();
    let (id_col, size_col, pid_cols): (&str, &str, &[&str]) = match sort {
        Sort::SysvShm => ("shmid", "size", &["cpid", "lpid"]),
        Sort::SysvSem => ("semid", "nsems", &[]),
        _ => ("msqid", "qnum", &["lspid", "lrpid"]),
    };
    let mut out = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let get = |name: &str| columns.get(name).and_then(|&i| fields.get(i)).and_then(|v| v.parse::<i64>().ok());
        let (Some(key), Some(id), Some(uid), Some(ctime)) = (get("key"), get(id_col), get("cuid"), get("ctime")) else {
            continue;
        };
        let pids: Vec<i32> = pid_cols.iter().filter_map(|c| get(c)).filter(|&p| p > 0).map(|p| p as i32).collect();
        out.push(Object {
            id: Id::Sysv { sort, id: id as i32, key: key as i32 },
            sort,
            name: String::new(),
            uid: uid as u32,
            made: Made::seconds(ctime),
            pids,
            held: if get("nattch").unwrap_or(0) > 0 { Held::Unknown } else { Held::No },
            size: get(size_col).unwrap_or(0).max(0) as u64,
        });
    }
    out
}

/// Fill in what is costly to learn and only needed for new objects: which
/// files a living process has open or mapped (and whose it is: `token_prefix`
/// marks this grader's programs), and which processes last operated on each
/// semaphore of a System V set.
pub fn look_closer(objects: &mut [Object], token_prefix: &str) {
    let mut wanted: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, o) in objects.iter_mut().enumerate() {
        match &o.id {
            Id::File { path, .. } => {
                wanted.entry(path.to_string_lossy().into_owned()).or_default().push(i);
                if o.sort == Sort::PosixMq {
                    // A queue's descriptor links to its name inside the
                    // mqueue file system: `/q`.
                    wanted.entry(o.name.clone()).or_default().push(i);
                }
            }
            Id::Sysv { sort: Sort::SysvSem, id, .. } => {
                for pid in semaphore_pids(*id, o.size) {
                    if !o.pids.contains(&pid) {
                        o.pids.push(pid);
                    }
                }
            }
            Id::Sysv { .. } => {}
        }
    }
    if wanted.is_empty() {
        return;
    }
    for (target, holder) in holders(&wanted.keys().cloned().collect(), token_prefix) {
        for &i in &wanted[&target] {
            objects[i].held = match (objects[i].held, holder) {
                (Held::ByOthers, _) | (_, Life::Foreign) => Held::ByOthers,
                _ => Held::ByOurs,
            };
        }
    }
}

/// The pids that last changed each semaphore of set `id` (`GETPID`; 0 =
/// none yet), at most the first 64.
fn semaphore_pids(id: i32, nsems: u64) -> Vec<i32> {
    let mut out = Vec::new();
    for n in 0..nsems.min(64) as i32 {
        // SAFETY: semctl(GETPID) reads one integer from the kernel and takes
        // no argument buffer; nix 0.32 has no System V wrapper. A set removed
        // meanwhile makes it fail with -1.
        let pid = unsafe { libc::semctl(id, n, libc::GETPID) };
        if pid > 0 && !out.contains(&pid) {
            out.push(pid);
        }
    }
    out
}

/// Which of `targets` (paths as `/proc/PID/fd` links and `/proc/PID/maps`
/// show them) living processes other than the grader have open or mapped,
/// each with one holder: [`Life::Foreign`] if any holder is not a program
/// of this grader.
fn holders(targets: &HashSet<String>, token_prefix: &str) -> Vec<(String, Life)> {
    let me = std::process::id() as i32;
    let mut found: HashMap<String, Life> = HashMap::new();
    for pid in procfs::all_pids() {
        if pid.as_raw() == me {
            continue;
        }
        let mut hits: Vec<String> =
            procfs::fds(pid).into_iter().map(|(_, t)| t).filter(|t| targets.contains(t)).collect();
        if let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) {
            // `start-end perms offset dev inode   path`
            hits.extend(
                maps.lines()
                    .filter_map(|line| line.splitn(6, ' ').nth(5).map(str::trim_start))
                    .filter(|path| targets.contains(*path))
                    .map(String::from),
            );
        }
        if hits.is_empty() {
            continue;
        }
        let whose = match life(pid.as_raw(), token_prefix) {
            // It ended after its maps were read: it holds nothing now. (Not
            // "someone else's": that verdict is final, and a program of a
            // check ending beside this one would keep its leak unjudged.)
            Life::Gone => continue,
            whose => whose,
        };
        for hit in hits {
            let entry = found.entry(hit).or_insert(whose);
            if whose == Life::Foreign {
                *entry = Life::Foreign;
            }
        }
    }
    found.into_iter().collect()
}

/// The uid the grader runs as (the effective one, from `/proc/self/status`).
pub fn euid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Who uses an object right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Nobody.
    No,
    /// Only running programs of this grader.
    ByOurs,
    /// Some other process.
    ByOthers,
    /// Someone: a System V segment with attachments (not traced to pids).
    Unknown,
}

/// What a pid recorded for an object tells about who made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Gone (or a zombie): it tells nothing more.
    Gone,
    /// A running program of this grader (it carries the grader's token).
    Ours,
    /// A running process of someone else.
    Foreign,
}

/// Whether `pid` runs, and whose it is: `token_prefix` is
/// `IPC_LAB_TOKEN=<grader pid>-`.
pub fn life(pid: i32, token_prefix: &str) -> Life {
    let p = Pid::from_raw(pid);
    let running = || !matches!(procfs::state(p), None | Some('Z') | Some('X'));
    if !running() {
        return Life::Gone;
    }
    match fs::read(format!("/proc/{pid}/environ")) {
        // A process that is exiting has released its memory, and with it
        // its environment and its mappings (a kernel thread has none).
        Ok(env) if env.is_empty() => Life::Gone,
        Ok(env) if env.split(|&b| b == 0).any(|e| e.starts_with(token_prefix.as_bytes())) => Life::Ours,
        // Someone else's — unless it ended while we looked: "foreign" is
        // final, so it needs a process that still runs.
        _ if running() => Life::Foreign,
        _ => Life::Gone,
    }
}

/// Remove `o`, if it is still the same object: `Ok(false)` when it was
/// gone already (another grader removed it).
pub fn remove(o: &Object) -> Result<bool, String> {
    let gone =
        |e: std::io::Error| if e.kind() == std::io::ErrorKind::NotFound { Ok(false) } else { Err(e.to_string()) };
    match &o.id {
        Id::File { path, ino } => {
            let meta = match fs::symlink_metadata(path) {
                Ok(meta) => meta,
                Err(e) => return gone(e),
            };
            if meta.ino() != *ino {
                return Ok(false);
            }
            fs::remove_file(path).map(|()| true).or_else(gone)
        }
        Id::Sysv { sort, id, .. } => {
            let text = fs::read_to_string(sysv_path(*sort)).map_err(|e| e.to_string())?;
            if !parse_sysv(*sort, &text).into_iter().any(|now| now.id == o.id && now.uid == o.uid) {
                return Ok(false);
            }
            // SAFETY: the System V `*ctl` calls with IPC_RMID take no buffer
            // (NULL is allowed) and only remove the object `id`; nix 0.32 has
            // no wrapper for them.
            let rc = unsafe {
                match sort {
                    Sort::SysvShm => libc::shmctl(*id, libc::IPC_RMID, std::ptr::null_mut()),
                    Sort::SysvSem => libc::semctl(*id, 0, libc::IPC_RMID),
                    _ => libc::msgctl(*id, libc::IPC_RMID, std::ptr::null_mut()),
                }
            };
            match rc {
                0 => Ok(true),
                // No such id (any more): removed by its program or another
                // grader between the look at /proc/sysvipc and this call.
                _ => match std::io::Error::last_os_error() {
                    e if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => Ok(false),
                    e => gone(e),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHM: &str = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
         0         32       600                  4096  4242  4243      0     0     0     0     0 1765072000 1765072001 1765071999                  4096                     0
1234567890         33      1666                  8192   100   100      2  1000  1000  1000  1000          0          0 1765071000                     0                     0
";

    #[test]
    fn a_process_is_foreign_only_while_it_runs_without_the_token() {
        let mut child = std::process::Command::new("sleep").arg("30").env("IPC_LAB_TEST_MARK", "x").spawn().unwrap();
        let pid = child.id() as i32;
        // `spawn` returns once `exec` is past its point of no return; the
        // new environment is in place a moment later (until then it reads
        // empty: gone, which holds nothing either).
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while life(pid, "IPC_LAB_TEST_MARK=") != Life::Ours {
            assert!(std::time::Instant::now() < until, "the child never showed its environment");
            std::thread::yield_now();
        }
        assert_eq!(life(pid, "IPC_LAB_TOKEN=0-"), Life::Foreign);
        child.kill().unwrap();
        // Killed but not reaped: a zombie holds nothing and is no one's.
        while procfs::state(Pid::from_raw(pid)) != Some('Z') {
            assert!(std::time::Instant::now() < until, "the killed child never became a zombie");
            std::thread::yield_now();
        }
        assert_eq!(life(pid, "IPC_LAB_TOKEN=0-"), Life::Gone);
        child.wait().unwrap();
        assert_eq!(life(pid, "IPC_LAB_TOKEN=0-"), Life::Gone);
    }

    #[test]
    fn sysv_shm_lines_give_id_key_creator_and_attachments() {
        let objs = parse_sysv(Sort::SysvShm, SHM);
        assert_eq!(objs.len(), 2);
        let a = &objs[0];
        assert_eq!(a.id, Id::Sysv { sort: Sort::SysvShm, id: 32, key: 0 });
        assert_eq!((a.uid, a.size, a.held), (0, 4096, Held::No));
        assert_eq!(a.pids, vec![4242, 4243], "cpid first, then lpid");
        assert_eq!(a.made, Made::seconds(1765071999));
        assert_eq!(a.describe(), "System V shared memory segment (shmid 32, IPC_PRIVATE)");
        let b = &objs[1];
        assert_eq!(
            (b.id.clone(), b.uid, b.held),
            (Id::Sysv { sort: Sort::SysvShm, id: 33, key: 1234567890 }, 1000, Held::Unknown)
        );
        assert_eq!(b.describe(), "System V shared memory segment (shmid 33, key 0x499602d2)");
    }

    #[test]
    fn sysv_lines_of_older_kernels_without_rss_and_swap_parse_too() {
        let old = "       key      shmid perms       size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime\n\
                   -559038737      5       600       1024    77     0      0     0     0     0     0          0          0 1700000000\n";
        let objs = parse_sysv(Sort::SysvShm, old);
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].id, Id::Sysv { sort: Sort::SysvShm, id: 5, key: -559038737 });
        assert_eq!(objs[0].pids, vec![77], "an lpid of 0 records nobody");
        assert_eq!(objs[0].describe(), "System V shared memory segment (shmid 5, key 0xdeadbeef)");
    }

    #[test]
    fn sysv_semaphore_and_message_queue_lines() {
        let sem = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n\
                            0          7       600          2     0     0     0     0          0 1765072100\n";
        let s = &parse_sysv(Sort::SysvSem, sem)[0];
        assert_eq!((s.id.clone(), s.size, s.pids.len()), (Id::Sysv { sort: Sort::SysvSem, id: 7, key: 0 }, 2, 0));
        assert_eq!(s.made, Made::seconds(1765072100));
        let msg = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n\
                         4660          9       666          12          1   300     0  1000  1000  1000  1000 1765072200          0 1765072150\n";
        let m = &parse_sysv(Sort::SysvMsg, msg)[0];
        assert_eq!((m.id.clone(), m.uid, m.size), (Id::Sysv { sort: Sort::SysvMsg, id: 9, key: 4660 }, 1000, 1));
        assert_eq!(m.pids, vec![300], "the last sender; no receiver yet");
        assert_eq!(m.describe(), "System V message queue (msqid 9, key 0x00001234)");
    }

    #[test]
    fn broken_or_empty_tables_give_no_objects() {
        assert!(parse_sysv(Sort::SysvShm, "").is_empty());
        assert!(parse_sysv(Sort::SysvMsg, "key msqid\nnot numbers at all\n").is_empty());
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape(r"/dev/mqueue"), "/dev/mqueue");
        assert_eq!(unescape(r"/mnt/my\040queues"), "/mnt/my queues");
    }
}
