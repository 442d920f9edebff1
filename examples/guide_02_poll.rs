//! The guide, chapter 2: readiness by hand with poll(2) (docs/guide/02-poll.md).
//!
//! ```text
//! cargo run --example guide_02_poll
//! ```
//!
//! Two parts, both calling `libc::poll` directly on pipeloop's pipes (which
//! are non-blocking already):
//!
//! 1. a hand-written loop serving two pipes, each fed by a thread that
//!    writes at its own pace;
//! 2. what "ready" means for a pipe: each row of the pipe-events table,
//!    made to happen, with the `revents` poll(2) returns for it.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::thread;
use std::time::Duration;

use pipeloop::pipe::{self, Receiver};

fn main() -> io::Result<()> {
    a_loop_by_hand()?;
    what_ready_means()?;
    Ok(())
}

/// Part 1: one thread, two pipes, no blocking read.
fn a_loop_by_hand() -> io::Result<()> {
    println!("1. a loop by hand: two pipes, one poll(2)");
    let mut receivers: Vec<Receiver> = Vec::new();
    let mut writers = Vec::new();
    for (name, pause) in [("fast", 20), ("slow", 70)] {
        let (mut sender, receiver) = pipe::new()?;
        receivers.push(receiver);
        writers.push(thread::spawn(move || -> io::Result<()> {
            for i in 0..3 {
                thread::sleep(Duration::from_millis(pause));
                sender.write_all(format!("{name} {i}").as_bytes())?;
            }
            Ok(()) // dropping `sender` closes the write end
        }));
    }

    // The question poll(2) answers: which of these fds can make progress?
    let mut fds: Vec<libc::pollfd> = receivers
        .iter()
        .map(|r| pollfd(r.as_raw_fd(), libc::POLLIN))
        .collect();
    let mut open = fds.len();
    while open > 0 {
        // Sleeps until at least one fd is ready (or 5 s pass: a safety net).
        let ready = poll(&mut fds, 5_000)?;
        assert!(ready > 0, "no pipe became ready in 5 s");
        for (i, fd) in fds.iter_mut().enumerate() {
            if fd.revents == 0 {
                continue; // not ready: do not touch it
            }
            let mut buf = [0u8; 64];
            match receivers[i].read(&mut buf) {
                Ok(0) => {
                    println!("   pipe {i}: end of file ({})", names(fd.revents));
                    fd.fd = -1; // poll(2) skips negative fds
                    open -= 1;
                }
                Ok(n) => println!(
                    "   pipe {i}: {:?} ({})",
                    String::from_utf8_lossy(&buf[..n]),
                    names(fd.revents)
                ),
                // Readiness is a hint (chapter 1): try again on the next turn.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    for writer in writers {
        writer.join().expect("writer panicked")?;
    }
    Ok(())
}

/// Part 2: the pipe-events table, row by row.
fn what_ready_means() -> io::Result<()> {
    println!("2. what \"ready\" means for a pipe (revents for the receiver / the sender)");
    let (mut sender, mut receiver) = pipe::new()?;
    show("an empty pipe", &receiver, &sender)?;

    sender.write_all(b"bytes")?;
    show("bytes written", &receiver, &sender)?;

    let chunk = [0u8; 4096];
    while sender.write(&chunk).is_ok() {}
    show("the pipe is full", &receiver, &sender)?;
    let mut sink = vec![0u8; 1 << 20];
    while receiver.read(&mut sink).is_ok() {} // empty again

    sender.write_all(b"last words")?;
    drop(sender);
    show_one("every writer closed, bytes left", "receiver", &receiver)?;
    let n = receiver.read(&mut sink)?;
    println!("      (read {n} bytes)");
    show_one("every writer closed, pipe empty", "receiver", &receiver)?;
    println!("      (read returns {})", receiver.read(&mut sink)?);

    let (mut sender, receiver) = pipe::new()?;
    drop(receiver);
    show_one("every reader closed, room left", "sender", &sender)?;
    match sender.write(b"x") {
        Err(e) => println!("      (write fails: {:?})", e.kind()),
        Ok(n) => panic!("wrote {n} bytes with no reader"),
    }

    let (mut sender, receiver) = pipe::new()?;
    while sender.write(&chunk).is_ok() {}
    drop(receiver);
    show_one("every reader closed, pipe full", "sender", &sender)?;
    Ok(())
}

/// Asks poll(2), without waiting, what each end of one pipe is ready for.
fn show(what: &str, receiver: &Receiver, sender: &pipe::Sender) -> io::Result<()> {
    let mut fds = [
        pollfd(receiver.as_raw_fd(), libc::POLLIN),
        pollfd(sender.as_raw_fd(), libc::POLLOUT),
    ];
    poll(&mut fds, 0)?;
    println!(
        "   {what:<34} {:<22} / {}",
        names(fds[0].revents),
        names(fds[1].revents)
    );
    Ok(())
}

/// The same for one end, the other being closed.
fn show_one(what: &str, end: &str, fd: &impl AsRawFd) -> io::Result<()> {
    let events = if end == "receiver" {
        libc::POLLIN
    } else {
        libc::POLLOUT
    };
    let mut fds = [pollfd(fd.as_raw_fd(), events)];
    poll(&mut fds, 0)?;
    println!("   {what:<34} {end}: {}", names(fds[0].revents));
    Ok(())
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// poll(2) itself: the kernel fills in each entry's `revents`.
fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    loop {
        // SAFETY: the pointer and length describe `fds`, which outlives the
        // call; the kernel writes only the `revents` fields.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn names(revents: libc::c_short) -> String {
    let names: Vec<&str> = [
        (libc::POLLIN, "POLLIN"),
        (libc::POLLOUT, "POLLOUT"),
        (libc::POLLHUP, "POLLHUP"),
        (libc::POLLERR, "POLLERR"),
        (libc::POLLNVAL, "POLLNVAL"),
    ]
    .iter()
    .filter(|(bit, _)| revents & bit != 0)
    .map(|&(_, name)| name)
    .collect();
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(" | ")
    }
}
