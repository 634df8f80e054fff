//! `framing` — binary `pipeframe` (contract: exercises/framing/README.md;
//! slides „Streams“, „Pipes“, „Bidirektionale Pipes“ with
//! `sendData`/`receiveData`, „Konvertierungsfunktionen (2)“ and „Pipes,
//! Sockets und Prozesse (5)“).
//!
//! The test plan: the bytes on the wire (big-endian length); the decoder
//! under every split of its input (one byte at a time, everything at once,
//! empty frames, the largest frame, a stream cut inside a frame); the relay
//! over a real pipe between two processes, where EOF only arrives if every
//! process closed the end it does not use, and EPIPE arrives once the reader
//! is gone.

use nix::unistd::Pid;

use super::support::{expect_diagnostic, expect_some_stderr, live_children, who_holds_pipe, WatchedChild};
use crate::check::{same, same_line, Check, CheckFn, Ctx, Exercise};
use crate::harness::procfs::{self, PipeEnd};
use crate::harness::{show, Exit, Failure, Kind, Program, Step};

const BIN: &str = "pipeframe";

pub fn exercise() -> Exercise {
    Exercise {
        id: "framing",
        title: "Framing: length-prefixed messages over pipes",
        slides: "„Streams“, „Bidirektionale Pipes“ (sendData/receiveData with htons), „Konvertierungsfunktionen (2)“, „Pipes, Sockets und Prozesse (5)“",
        bins: &[BIN],
        hints: include_str!("../../hints/framing.toml"),
        checks: vec![
            Check::new(
                "encode-bytes",
                10,
                "encode: a 16-bit big-endian length, then the payload",
                "The length goes on the wire in network byte order (big-endian): `u16::try_from(len)` \
                 then `.to_be_bytes()`, the `htons` of the slide. A 258-byte line starts `01 02`; little-endian would give `02 01`.",
                encode_bytes
            ),
            Check::new(
                "decode-basic",
                10,
                "decode: each payload printed as a line, bytes exact",
                "Read the 2-byte header, convert with `u16::from_be_bytes` (ntohs), then read exactly that \
                 many payload bytes and print them followed by `\\n`. Payloads are bytes, not UTF-8 text.",
                decode_basic
            ),
            Check::new(
                "decode-drip",
                10,
                "decode: frames arriving one byte at a time",
                "A read returns what is there, possibly 1 byte: a pipe is a byte stream without message \
                 boundaries (slide „Streams“). Keep reading until you have the whole header, then the whole \
                 payload — and print a frame as soon as it is complete, not at EOF.",
                decode_drip
            ),
            Check::new(
                "decode-packed",
                10,
                "decode: 1000 frames in one write",
                "One read can return many frames (and a piece of the next). Keep the bytes after a frame \
                 for the next one instead of discarding the rest of the buffer.",
                decode_packed
            ),
            Check::new(
                "zero-length",
                5,
                "zero-length frames and empty lines are data, not EOF",
                "A frame of length 0 is an empty line. EOF is `read` returning 0 bytes, not a header \
                 saying 0.",
                zero_length
            ),
            Check::new(
                "max-length",
                10,
                "65535 bytes fit in a frame; 65536 is refused with status 2",
                "A u16 holds at most 65535. Check the length before casting: `len as u16` silently \
                 wraps 65536 to 0.",
                max_length
            ),
            Check::new(
                "truncated",
                10,
                "EOF inside a frame: `truncated frame`, status 3",
                "EOF between frames is the normal end; EOF after part of a header or payload means the \
                 stream was cut: say `truncated frame` on stderr and exit 3.",
                truncated
            ),
            Check::new(
                "relay-eof",
                15,
                "relay: parent encodes into a pipe, child decodes; both end at EOF",
                "After `fork` both processes hold both pipe ends. The reader sees EOF only when every \
                 write end is closed — also the copy in the child (slide „Pipes, Sockets und \
                 Prozesse (5)“). Close the end you do not use right after the fork; the parent closes the \
                 write end at stdin EOF and waits for the child.",
                relay_eof
            ),
            Check::new(
                "relay-child-max",
                10,
                "relay --child-max: the parent's write fails with EPIPE, it reaps the child, status 4",
                "Writing into a pipe with no reader fails with EPIPE (or kills with SIGPIPE) — but only if \
                 no process holds the read end any more, the parent included. Close the read end in the \
                 parent, handle EPIPE, `waitpid` the child, exit 4.",
                relay_child_max
            ),
            Check::new(
                "encode-reader-gone",
                10,
                "encode: reader gone → stops at once (SIGPIPE, or status 4 and one line)",
                "Rust ignores SIGPIPE, so `write` returns EPIPE: stop reading input, print one line to \
                 stderr and exit 4. `println!` panics on EPIPE, and ignoring the error loops forever.",
                encode_reader_gone
            ),
        ],
    }
}

/// A frame as the contract defines it.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

fn frames(payloads: &[&[u8]]) -> Vec<u8> {
    payloads.iter().flat_map(|p| frame(p)).collect()
}

fn lines(payloads: &[&[u8]]) -> Vec<u8> {
    payloads.iter().flat_map(|p| [*p, b"\n"].concat()).collect()
}

/// Run `pipeframe ARGS` on `input` to completion; return the program. One
/// that stops taking input and printing is given up on after
/// [`STALL_SECS`](crate::check::STALL_SECS), not after the whole deadline.
fn run_to_end(cx: &Ctx, args: &[&str], input: &[u8], status: i32, what: &str) -> Step<Program> {
    let mut p = cx.start(BIN, args)?;
    p.send(input);
    p.close_stdin();
    cx.expect_exit(&mut p, status, what, 10.0)?;
    Ok(p)
}

/// Every diagnostic is one line on stderr starting with `pipeframe:`.
fn expect_stderr_line(p: &Program, containing: &str) -> Step {
    expect_diagnostic(p, &format!("{BIN}:"), containing)
}

fn encode_bytes(cx: &Ctx) -> Step {
    let long = vec![b'b'; 258];
    let mut input = b"a\n\n".to_vec();
    input.extend_from_slice(&long);
    input.extend_from_slice(b"\nxyz");
    let p = run_to_end(cx, &["encode"], &input, 0, "exit status 0 after encoding")?;
    same("the encoded bytes", p.stdout(), &frames(&[b"a", b"", &long, b"xyz"]))
}

fn decode_basic(cx: &Ctx) -> Step {
    let payloads: [&[u8]; 4] = [b"hello", b"bytes \xff\x00\x80 kept", b"", b"Wello, world"];
    let p = run_to_end(cx, &["decode"], &frames(&payloads), 0, "exit status 0 after decoding")?;
    same("the decoded lines", p.stdout(), &lines(&payloads))
}

fn decode_drip(cx: &Ctx) -> Step {
    let long = vec![b'L'; 300];
    let payloads: [&[u8]; 4] = [b"drip", b"", b"split", &long];
    let mut p = cx.start(BIN, &["decode"])?;
    for (k, payload) in payloads.iter().enumerate() {
        let f = frame(payload);
        // The short frames one byte at a time; the long one in three pieces
        // that cut its header.
        let pieces: Vec<&[u8]> =
            if f.len() > 20 { vec![&f[..1], &f[1..100], &f[100..]] } else { f.chunks(1).collect() };
        let last = pieces.len() - 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            p.send(piece);
            if i < last {
                p.wait_idle("pipeframe to block reading the rest of the frame", cx.secs(5.0))?;
                if !p.stdout_pending().is_empty() {
                    return Err(Failure::wrong(
                        format!("{} printed before frame {} was complete", show(p.stdout_pending()), k + 1),
                        "nothing until the frame's last byte has arrived",
                    ));
                }
            }
        }
        let line =
            p.line(&format!("the line of frame {} as soon as it is complete (stdin still open)", k + 1), cx.secs(5.0))?;
        same(&format!("the line of frame {}", k + 1), &line, payload)?;
    }
    cx.did("sent the frames byte by byte, waiting each time until pipeframe blocked in read");
    p.close_stdin();
    p.expect_exit(0, "exit status 0 at EOF between frames", cx.secs(5.0))?;
    same("stdout after the last frame", p.stdout_pending(), b"")
}

fn decode_packed(cx: &Ctx) -> Step {
    let owned: Vec<Vec<u8>> = (0..1000).map(|i| format!("frame {i:04} {}", "p".repeat(i % 300)).into_bytes()).collect();
    let payloads: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let p = run_to_end(cx, &["decode"], &frames(&payloads), 0, "exit status 0 after 1000 frames")?;
    same("the 1000 decoded lines", p.stdout(), &lines(&payloads))
}

fn zero_length(cx: &Ctx) -> Step {
    let payloads: [&[u8]; 6] = [b"", b"a", b"", b"", b"b", b""];
    let cases = [
        ("decode: empty frames are empty lines", ("decode", frames(&payloads), lines(&payloads))),
        ("encode: empty lines are empty frames", ("encode", b"\n\nx\n\n".to_vec(), frames(&[b"", b"", b"x", b""]))),
    ];
    cx.cases(&cases, |(mode, input, want)| {
        let p = run_to_end(cx, &[mode], input, 0, &format!("exit status 0 after {mode}"))?;
        same(&format!("the output of {mode}"), p.stdout(), want)
    })
}

fn max_length(cx: &Ctx) -> Step {
    let cases: [(&str, CheckFn); 2] = [
        ("encode: a 65535-byte line, then a 65536-byte one", encode_too_long),
        ("decode: a 65535-byte frame", decode_longest),
    ];
    cx.cases(&cases, |case| case(cx))
}

fn encode_too_long(cx: &Ctx) -> Step {
    let biggest = vec![b'm'; 65535];
    let mut input = biggest.clone();
    input.push(b'\n');
    input.extend(std::iter::repeat_n(b'n', 65536));
    input.extend_from_slice(b"\nafter\n");
    let p = run_to_end(cx, &["encode"], &input, 2, "exit status 2 for the 65536-byte line")?;
    same("stdout (the 65535-byte frame, written before the refused line)", p.stdout(), &frame(&biggest))?;
    expect_some_stderr(&p, "a message saying the line is too long")
}

fn decode_longest(cx: &Ctx) -> Step {
    let biggest = vec![b'm'; 65535];
    let p = run_to_end(cx, &["decode"], &frame(&biggest), 0, "exit status 0 after a 65535-byte frame")?;
    same("the decoded 65535-byte line", p.stdout(), &lines(&[&biggest]))
}

fn truncated(cx: &Ctx) -> Step {
    let cuts: [(&str, &[u8]); 2] = [("EOF inside a header", b"\x00"), ("EOF inside a payload", b"\x00\x05abc")];
    cx.cases(&cuts, |tail| {
        let mut input = frame(b"ok");
        input.extend_from_slice(tail);
        let p = run_to_end(cx, &["decode"], &input, 3, "exit status 3 for EOF inside a frame")?;
        same("the frame before the cut", p.stdout(), b"ok\n")?;
        expect_stderr_line(&p, "truncated frame")
    })
}

fn relay_eof(cx: &Ctx) -> Step {
    let mut p = cx.start(BIN, &["relay"])?;
    p.send(b"hello\n");
    let line = p.line("`5 hello` from the child", cx.secs(5.0))?;
    same_line(&line, "5 hello")?;
    let child =
        p.wait_for("a child process (relay forks)", cx.secs(2.0), true, |p| live_children(p.pid()).first().copied())?;
    let shown = p.shown(child);
    cx.did(format!("saw pipeframe's child (pid {shown})"));
    let watched = WatchedChild::new(child);
    let body: Vec<u8> = (0..300).flat_map(|i| format!("line {i:03} {}\n", "r".repeat(60)).into_bytes()).collect();
    p.send(b"\n");
    p.send(&body);
    p.close_stdin();
    p.expect_exit(0, "exit status 0 once stdin ended (the child must see EOF on the pipe)", cx.secs(5.0))
        .map_err(|f| pipe_held_open(&p, f))?;
    let mut want = b"0 \n".to_vec();
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        want.extend_from_slice(format!("{} ", line.len()).as_bytes());
        want.extend_from_slice(line);
        want.push(b'\n');
    }
    watched
        .expect_reaped(
            format!("the parent exited, but its child (pid {shown}) had not been reaped by it"),
            "the parent to close its write end, then `waitpid` for the child before exiting",
        )
        .map_err(|f| {
            f.diagnosed(
                "the parent exited without `waitpid`: its child was left running or a zombie",
                "the parent closes its write end, then waits for the child with `waitpid` before it exits",
            )
        })?;
    // The child may still be printing if the parent did not wait: compare
    // only once it is gone.
    same("the child's lines", p.stdout_pending(), &want)
}

/// The relay's processes by name: the parent is the program itself.
fn relay_name(p: &Program, pid: Pid) -> String {
    let seen = p.shown(pid);
    if pid == p.pid() {
        format!("{BIN} (pid {seen})")
    } else {
        format!("{BIN}'s child (pid {seen})")
    }
}

/// A relay that hangs after stdin ended: when a process of it waits on a
/// pipe whose other end is kept open, say who keeps it.
fn pipe_held_open(p: &Program, f: Failure) -> Failure {
    if f.kind != Kind::TimedOut {
        return f;
    }
    let Some(held) = who_holds_pipe(p, |pid| relay_name(p, pid)) else { return f };
    let hint = if held.holder == held.blocked {
        "in the child, close the write end right after `fork`: it only reads, and a pipe reports EOF only when \
         every write end is closed, its own copy included"
    } else if held.holder == p.pid() {
        "the parent closes its write end as soon as stdin ends, before it waits for the child"
    } else {
        "close every pipe end a process does not use right after `fork`"
    };
    f.diagnosed(held.what_it_means, hint)
}

/// A relay that goes on after its child (`child`, gone, as the program
/// sees it) stopped reading:
/// when the parent still holds the read end of the pipe it writes into,
/// that pipe never lost its reader.
fn reader_kept(p: &Program, child: Pid, f: Failure) -> Failure {
    if f.kind != Kind::TimedOut {
        return f;
    }
    let parent = p.pid();
    let pipes: Vec<(i32, u64, PipeEnd)> = procfs::fds(parent)
        .into_iter()
        .filter_map(|(fd, target)| Some((fd, procfs::pipe_inode(&target)?, procfs::pipe_end(parent, fd)?)))
        .collect();
    let kept = pipes.iter().filter(|p| p.2 == PipeEnd::Read).find_map(|&(read_fd, inode, _)| {
        pipes.iter().find(|w| w.1 == inode && w.2 == PipeEnd::Write).map(|w| (read_fd, w.0))
    });
    let Some((read_fd, write_fd)) = kept else { return f };
    f.diagnosed(
        format!(
            "{BIN} (pid {}) still holds the read end (fd {read_fd}) of the pipe it writes into (fd {write_fd}): \
             with its child (pid {child}) gone, the pipe still has a reader, so the write succeeds instead of \
             failing with EPIPE",
            p.seen_pid()
        ),
        "the parent closes the read end right after `fork`: only the child reads",
    )
}

fn relay_child_max(cx: &Ctx) -> Step {
    let mut p = cx.start(BIN, &["relay", "--child-max", "2"])?;
    p.send(b"one\ntwo\n");
    for want in ["3 one", "3 two"] {
        let line = p.line(&format!("`{want}` from the child"), cx.secs(5.0))?;
        same_line(&line, want)?;
    }
    let child = p.wait_for("the child to exit after 2 frames", cx.secs(5.0), true, |p| {
        let kids = procfs::children(p.pid());
        (kids.len() == 1 && live_children(p.pid()).is_empty()).then(|| kids[0])
    })?;
    let shown = p.shown(child);
    cx.did(format!("waited until the child (pid {shown}) had exited"));
    let watched = WatchedChild::new(child);
    p.send(b"three\n");
    let exit = p
        .wait_exit("exit status 4 after the write into the pipe without reader (stdin still open)", cx.secs(5.0))
        .map_err(|f| reader_kept(&p, shown, f))?;
    match exit {
        Exit::Code(4) => expect_stderr_line(&p, "")?,
        other => return Err(p.classify(other, "exit status 4 (EPIPE) after reaping the child")),
    }
    watched.expect_reaped(
        format!("the parent exited with status 4 but never reaped its child (pid {shown} was left a zombie)"),
        "`waitpid` for the child before exiting",
    )
}

fn encode_reader_gone(cx: &Ctx) -> Step {
    let mut p = cx.start(BIN, &["encode"])?;
    p.send(b"first line\n");
    p.wait_for("the first frame on stdout", cx.secs(5.0), false, |p| (p.stdout().len() >= 12).then_some(()))?;
    p.close_stdout();
    let more: Vec<u8> = (0..20_000).flat_map(|i| format!("more input {i}\n").into_bytes()).collect();
    p.send(&more);
    let exit = p.wait_exit("pipeframe to stop at once (stdin kept open and fed)", cx.secs(5.0))?;
    match exit {
        Exit::Signal(libc::SIGPIPE) => Ok(()),
        Exit::Code(4) => expect_stderr_line(&p, ""),
        other => Err(p.classify(other, "death by SIGPIPE, or exit status 4 with one line on stderr")),
    }
}
