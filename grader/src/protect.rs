//! The grader's own process, kept out of reach of the programs it runs.
//!
//! Student programs run as the grader's user. Without more, any of them
//! could `ptrace` the grader, read its memory and environment, or open its
//! descriptors through `/proc/<grader>/{mem,environ,fd}` — and so forge or
//! rewrite its verdict. A process that is not *dumpable* allows none of
//! that to processes of the same user (only to a privileged one), and
//! writes no core dump.
//!
//! The grader's own reads of `/proc/self/…` are unaffected (the kernel
//! always lets a process see itself). Its programs, and `grader __probe`,
//! are new executables: `execve` makes them dumpable again, so the grader
//! still reads their `/proc` entries as before.

/// Make this process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`), or warn.
pub fn make_undumpable() {
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("grader: warning: cannot make the grader non-dumpable ({e}); its programs could ptrace it");
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    /// As root every `/proc` entry is readable anyway: the child runs as
    /// `nobody` then, where dumpability decides.
    #[test]
    fn the_grader_still_reads_its_own_proc_entries_and_its_programs() {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "protect::tests::undumpable_child", "--nocapture", "--ignored"])
            .env("IPC_LAB_UNDUMPABLE_CHILD", "1");
        if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
            cmd.uid(65534).gid(65534);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run by the test above only.
    #[test]
    #[ignore = "run in a child process by the_grader_still_reads_its_own_proc_entries_and_its_programs"]
    fn undumpable_child() {
        assert_eq!(std::env::var("IPC_LAB_UNDUMPABLE_CHILD").as_deref(), Ok("1"));
        super::make_undumpable();
        assert_eq!(nix::sys::prctl::get_dumpable(), Ok(false));
        let me = std::process::id();
        assert!(std::fs::read_dir("/proc/self/fd").unwrap().count() >= 3);
        assert!(std::fs::read_dir(format!("/proc/{me}/fd")).unwrap().count() >= 3);
        assert!(std::fs::read_to_string("/proc/self/status").unwrap().contains("SigBlk"));
        assert!(std::fs::read_link("/proc/self/exe").is_ok());
        // A program it starts is dumpable again: its environment is
        // readable, as the grader's leash needs.
        let mut cat = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        // Once it echoes a line, it runs its own image.
        cat.stdin.as_mut().unwrap().write_all(b"up\n").unwrap();
        let mut line = [0u8; 3];
        cat.stdout.as_mut().unwrap().read_exact(&mut line).unwrap();
        let environ = std::fs::read(format!("/proc/{}/environ", cat.id()));
        drop(cat.stdin.take());
        let _ = cat.wait();
        assert!(environ.unwrap().windows(24).any(|w| w == b"IPC_LAB_UNDUMPABLE_CHILD"));
    }
}
