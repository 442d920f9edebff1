//! Pipes as event sources: closed peers, a real child process, the I/O
//! traits, and every way of making and taking apart a pipe end. Every
//! scenario runs on every backend.

mod util;

use std::io::{ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Instant;

use pipeloop::pipe::{self, Receiver, Sender};
use pipeloop::{Events, Interest, Token};
use util::{
    Expect, PATIENCE, assert_cloexec, assert_error_kind, assert_nonblocking, assert_would_block,
    drain, expect_events, expect_no_event_for, expect_one_event, fill, for_each_backend,
};

const SENDER: usize = 0;
const RECEIVER: usize = 1;

/// The writer is gone; whether `readable` is set too is checked where it
/// matters.
fn read_closed(token: usize) -> Expect {
    Expect {
        read_closed: Some(true),
        ..Expect::any(token)
    }
}

fn readable_and_read_closed(token: usize) -> Expect {
    Expect {
        readable: Some(true),
        ..read_closed(token)
    }
}

fn write_closed(token: usize) -> Expect {
    Expect {
        error: Some(true),
        write_closed: Some(true),
        ..Expect::any(token)
    }
}

#[test]
fn dropped_sender_makes_receiver_read_closed_then_end_of_file() {
    for_each_backend(|poll| {
        let (sender, mut receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(RECEIVER), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);

        drop(sender);
        expect_events(poll, &mut events, &[read_closed(RECEIVER)]);
        assert_eq!(receiver.read(&mut [0; 16]).unwrap(), 0, "end of file");
    });
}

/// mio's semantics, kept on purpose: `is_readable` means bytes are there, so
/// an empty pipe whose writer is gone is read-closed but not readable.
#[test]
fn dropped_sender_makes_empty_receiver_read_closed_not_readable() {
    for_each_backend(|poll| {
        let (sender, mut receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(RECEIVER), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);

        drop(sender);
        let closed = Expect {
            readable: Some(false),
            read_closed: Some(true),
            ..Expect::any(RECEIVER)
        };
        expect_events(poll, &mut events, &[closed]);
        assert_eq!(receiver.read(&mut [0; 16]).unwrap(), 0, "end of file");
    });
}

#[test]
fn dropped_sender_with_bytes_unread_reports_readable_and_read_closed() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut events = Events::with_capacity(8);

        sender.write_all(b"left behind").unwrap();
        drop(sender);
        // One event carries both. (Not asserted to be the first: a child
        // forked by another test may hold the write end until it execs.)
        expect_one_event(poll, &mut events, readable_and_read_closed(RECEIVER));

        let mut buf = [0u8; 64];
        let n = receiver.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"left behind");
        assert_eq!(receiver.read(&mut buf).unwrap(), 0, "then end of file");
    });
}

/// The readable edge was already reported (and the bytes not read) when the
/// writer closes: the hang-up must still come with readable, as on epoll.
/// On poll(2) this is the path where the disarmed direction is probed again.
#[test]
fn hangup_after_unread_readable_edge_still_reports_readable() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut events = Events::with_capacity(8);

        sender.write_all(b"abc").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        drop(sender);
        expect_events(poll, &mut events, &[readable_and_read_closed(RECEIVER)]);
        assert_eq!(drain(&receiver), b"abc");
    });
}

#[test]
fn hangup_is_reported_once_in_edge_mode() {
    for_each_backend(|poll| {
        let (sender, mut receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(RECEIVER), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);

        drop(sender);
        expect_events(poll, &mut events, &[read_closed(RECEIVER)]);
        expect_no_event_for(poll, &mut events, RECEIVER);
        expect_no_event_for(poll, &mut events, RECEIVER);
    });
}

/// The writer wrote and closed before the poll: one event carries both
/// readable and the hang-up, and nothing follows it in edge mode. A short
/// read does not bring another event here, so a loop that stops at a short
/// read must not stop when the event said `is_read_closed`.
#[test]
fn hangup_with_bytes_is_one_event_so_a_short_read_must_continue_to_eof() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut events = Events::with_capacity(8);

        sender.write_all(b"last words").unwrap();
        drop(sender);
        expect_one_event(poll, &mut events, readable_and_read_closed(RECEIVER));
        let mut buf = [0u8; 64];
        let n = receiver.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"last words", "a short read");
        expect_no_event_for(poll, &mut events, RECEIVER);
        assert_eq!(receiver.read(&mut buf).unwrap(), 0, "end of file");
    });
}

#[test]
fn dropped_receiver_makes_sender_write_closed_with_error_and_broken_pipe() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);

        let seen = expect_events(poll, &mut events, &[Expect::writable(SENDER)]);
        assert!(
            !seen[0].contains("write_closed: true"),
            "closed too early: {seen:?}"
        );
        drop(receiver);
        // Room is left: writable on every backend.
        let closed = Expect {
            writable: Some(true),
            ..write_closed(SENDER)
        };
        expect_one_event(poll, &mut events, closed);
        assert_error_kind(sender.write(b"x"), ErrorKind::BrokenPipe);
    });
}

/// The pipe is full when the reader goes: on epoll and poll(2) there is no
/// writable bit, only the error, and that alone must read as write-closed;
/// kqueue sets writable on every write-filter event (src/pipe docs).
#[test]
fn dropped_receiver_of_a_full_pipe_makes_sender_write_closed() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);

        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);
        assert!(fill(&sender) > 0);
        drop(receiver);
        let closed = Expect {
            writable: Some(poll.backend() == pipeloop::Backend::Kqueue),
            ..write_closed(SENDER)
        };
        expect_one_event(poll, &mut events, closed);
        assert_error_kind(sender.write(b"x"), ErrorKind::BrokenPipe);
    });
}

/// A `cat` child driven through the loop: the parent's ends of its stdin
/// and stdout become a non-blocking `Sender` and `Receiver`, more bytes than
/// a pipe holds go through, and stopping at a short read or write (the
/// documented shortcut) never loses an event, as long as an event that says
/// `is_read_closed` is read to the end.
#[test]
fn cat_child_echoes_bytes_through_the_loop() {
    for_each_backend(|poll| {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn cat");
        let mut stdin = Some(Sender::from(child.stdin.take().unwrap()));
        let mut stdout = Receiver::from(child.stdout.take().unwrap());
        assert_nonblocking(stdin.as_ref().unwrap());
        assert_nonblocking(&stdout);

        poll.registry()
            .register(stdin.as_mut().unwrap(), Token(SENDER), Interest::WRITABLE)
            .unwrap();
        poll.registry()
            .register(&mut stdout, Token(RECEIVER), Interest::READABLE)
            .unwrap();

        let input: Vec<u8> = (0..300 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut written = 0;
        let mut output = Vec::with_capacity(input.len());
        let mut eof = false;
        let mut events = Events::with_capacity(8);
        let deadline = Instant::now() + PATIENCE;

        while !eof {
            let now = Instant::now();
            assert!(
                now < deadline,
                "stuck: wrote {written}, read {}",
                output.len()
            );
            poll.poll(&mut events, Some(deadline - now)).unwrap();
            for event in events.iter() {
                match event.token().0 {
                    SENDER => {
                        let sender = stdin.as_mut().expect("event for a closed stdin");
                        while written < input.len() {
                            let chunk = &input[written..input.len().min(written + 16 * 1024)];
                            match sender.write(chunk) {
                                Ok(n) => {
                                    written += n;
                                    if n < chunk.len() {
                                        break; // short: the pipe is full
                                    }
                                }
                                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                                Err(e) => panic!("write to cat: {e}"),
                            }
                        }
                        if written == input.len() {
                            let mut sender = stdin.take().unwrap();
                            poll.registry().deregister(&mut sender).unwrap();
                            drop(sender); // cat sees end of file
                        }
                    }
                    RECEIVER => {
                        let mut buf = [0u8; 4096];
                        loop {
                            match stdout.read(&mut buf) {
                                Ok(0) => {
                                    eof = true;
                                    break;
                                }
                                Ok(n) => {
                                    output.extend_from_slice(&buf[..n]);
                                    // Short: the pipe is empty, a later write
                                    // is a new event. Not after a hang-up:
                                    // that is reported once, so read to EOF.
                                    if n < buf.len() && !event.is_read_closed() {
                                        break;
                                    }
                                }
                                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                                Err(e) => panic!("read from cat: {e}"),
                            }
                        }
                    }
                    other => panic!("unexpected token {other}"),
                }
            }
        }

        assert_eq!(written, input.len());
        assert!(output == input, "cat returned different bytes");
        assert!(child.wait().unwrap().success());
    });
}

#[test]
fn read_and_write_work_through_shared_references() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut events = Events::with_capacity(8);

        let mut shared_sender: &Sender = &sender;
        shared_sender.write_all(b"by reference").unwrap();
        shared_sender.flush().unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);

        let mut shared_receiver: &Receiver = &receiver;
        let mut buf = [0u8; 64];
        let n = shared_receiver.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"by reference");
        assert_would_block(shared_receiver.read(&mut buf));

        // The short read and the WouldBlock went through `&Receiver`: the
        // next write is reported.
        (&sender).write_all(b"again").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        assert_eq!(drain(&receiver), b"again");
        sender.flush().unwrap();
    });
}

#[test]
fn vectored_write_and_read_move_every_slice() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut events = Events::with_capacity(8);

        let n = sender
            .write_vectored(&[
                IoSlice::new(b"one "),
                IoSlice::new(b""),
                IoSlice::new(b"two "),
                IoSlice::new(b"three"),
            ])
            .unwrap();
        assert_eq!(n, 13);
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);

        let (mut a, mut b, mut c) = ([0u8; 4], [0u8; 4], [0u8; 16]);
        let n = receiver
            .read_vectored(&mut [
                IoSliceMut::new(&mut a),
                IoSliceMut::new(&mut b),
                IoSliceMut::new(&mut c),
            ])
            .unwrap();
        assert_eq!(n, 13);
        assert_eq!((&a, &b, &c[..5]), (b"one ", b"two ", &b"three"[..]));

        // That read was short (13 of 24): the next write is reported, through
        // `&Sender`/`&Receiver` this time.
        let n = (&sender)
            .write_vectored(&[IoSlice::new(b"x"), IoSlice::new(b"yz")])
            .unwrap();
        assert_eq!(n, 3);
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        let mut d = [0u8; 8];
        let n = (&receiver)
            .read_vectored(&mut [IoSliceMut::new(&mut d)])
            .unwrap();
        assert_eq!(&d[..n], b"xyz");
    });
}

#[test]
fn std_io_pipe_ends_become_nonblocking_sources() {
    for_each_backend(|poll| {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut sender = Sender::from(writer);
        let mut receiver = Receiver::from(reader);
        assert_nonblocking(&sender);
        assert_nonblocking(&receiver);
        assert_would_block(receiver.read(&mut [0; 8]));

        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE)
            .unwrap();
        poll.registry()
            .register(&mut receiver, Token(RECEIVER), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);

        sender.write_all(b"from std").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        assert_eq!(drain(&receiver), b"from std");

        assert!(fill(&sender) > 0, "a non-blocking sender stops when full");
    });
}

#[test]
fn raw_fd_round_trip_keeps_a_working_pipe() {
    for_each_backend(|poll| {
        let (sender, receiver) = pipe::new().unwrap();
        let (write_fd, read_fd) = (sender.into_raw_fd(), receiver.into_raw_fd());
        // SAFETY: both fds were just released by their owners and are open.
        let (mut sender, mut receiver) = unsafe {
            (
                Sender::from_raw_fd(write_fd),
                Receiver::from_raw_fd(read_fd),
            )
        };
        assert_eq!(
            (sender.as_raw_fd(), receiver.as_raw_fd()),
            (write_fd, read_fd)
        );
        assert_nonblocking(&sender);
        assert_cloexec(&receiver);

        poll.registry()
            .register(&mut receiver, Token(RECEIVER), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);
        sender.write_all(b"raw").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        assert_eq!(drain(&receiver), b"raw");
        poll.registry().deregister(&mut receiver).unwrap();
    });
}

#[test]
fn owned_fd_round_trip_keeps_a_working_pipe() {
    for_each_backend(|poll| {
        let (sender, receiver) = pipe::new().unwrap();
        let (write_fd, read_fd) = (sender.as_raw_fd(), receiver.as_raw_fd());
        let (write, read): (OwnedFd, OwnedFd) = (sender.into(), receiver.into());
        assert_eq!((write.as_raw_fd(), read.as_raw_fd()), (write_fd, read_fd));
        let mut sender = Sender::from(write);
        let mut receiver = Receiver::from(read);

        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE)
            .unwrap();
        poll.registry()
            .register(&mut receiver, Token(RECEIVER), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);
        sender.write_all(b"owned").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        assert_eq!(drain(&receiver), b"owned");

        drop(sender);
        expect_events(poll, &mut events, &[read_closed(RECEIVER)]);
    });
}

/// Taking the fd out of a registered receiver leaves it registered (as
/// epoll would). The receiver rebuilt from it does not know that; a
/// `reregister` hands it the registration back, after which edge mode is
/// re-armed by its own reads on every backend.
#[test]
fn registered_end_rebuilt_from_raw_fd_rearms_after_reregister() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut events = Events::with_capacity(8);
        sender.write_all(b"first").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);

        let fd = receiver.into_raw_fd();
        // SAFETY: `fd` was just released by its owner and is open.
        let mut receiver = unsafe { Receiver::from_raw_fd(fd) };
        poll.registry()
            .reregister(&mut receiver, Token(RECEIVER), Interest::READABLE)
            .unwrap();
        assert_eq!(drain(&receiver), b"first");

        for round in 0..3 {
            let message = format!("round {round}");
            sender.write_all(message.as_bytes()).unwrap();
            expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
            assert_eq!(drain(&receiver), message.as_bytes());
        }
        poll.registry().deregister(&mut receiver).unwrap();
    });
}

#[test]
fn try_cloned_ends_share_the_pipe_and_work_in_the_loop() {
    for_each_backend(|poll| {
        let (sender, receiver) = pipe::new().unwrap();
        let sender_clone = sender.try_clone().unwrap();
        let mut receiver_clone = receiver.try_clone().unwrap();
        assert_ne!(sender_clone.as_raw_fd(), sender.as_raw_fd());
        assert_cloexec(&sender_clone);
        assert_cloexec(&receiver_clone);
        assert_nonblocking(&receiver_clone);

        poll.registry()
            .register(&mut receiver_clone, Token(RECEIVER), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);

        (&sender_clone).write_all(b"via clone").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        assert_eq!(drain(&receiver_clone), b"via clone");

        // The original receiver reads the same pipe, and its read to
        // WouldBlock re-arms the clone's registration (clones share it):
        // the next write is reported.
        (&sender).write_all(b"via original").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        assert_eq!(drain(&receiver), b"via original");
        (&sender).write_all(b"again").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        assert_eq!(drain(&receiver_clone), b"again");

        // The pipe stays open for writing while one writer is left.
        drop(sender);
        expect_no_event_for(poll, &mut events, RECEIVER);
        drop(sender_clone);
        expect_events(poll, &mut events, &[read_closed(RECEIVER)]);
        assert_eq!(receiver_clone.read(&mut [0; 8]).unwrap(), 0);
    });
}

/// A number from `/proc/sys/fs/<name>`, if this host has it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn fs_limit(name: &str) -> Option<usize> {
    std::fs::read_to_string(format!("/proc/sys/fs/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A pipe's capacity is a power-of-two number of pages (64 KiB by default,
/// one page for a user over `pipe-user-pages-soft`), both ends see the
/// same, and it grows to at least what was asked, up to `pipe-max-size`
/// (a host may lower the 1 MiB default, or refuse a user over its pipe
/// page limits: then the growth is skipped, said on stderr).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn pipe_capacity_is_whole_pages_and_can_grow() {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let (sender, receiver) = pipe::new().unwrap();
    let capacity = receiver.capacity().unwrap();
    assert_eq!(
        sender.capacity().unwrap(),
        capacity,
        "both ends see one pipe"
    );
    assert!(
        capacity >= page && (capacity / page).is_power_of_two() && capacity % page == 0,
        "capacity {capacity} is not a power-of-two number of {page}-byte pages"
    );
    if fs_limit("pipe-user-pages-soft").is_none_or(|soft| soft == 0) {
        // No per-user limit in force: the kernel default, 16 pages.
        assert_eq!(capacity, 16 * page);
    }

    let max = fs_limit("pipe-max-size").unwrap_or(1 << 20);
    let want = max.min(1 << 20).max(2 * capacity);
    let chosen = match receiver.set_capacity(want) {
        Ok(chosen) => chosen,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            eprintln!("skipped: growing a pipe to {want} bytes: {e} (pipe limits of this host)");
            return;
        }
        Err(e) => panic!("set_capacity({want}): {e}"),
    };
    assert!(chosen >= want, "set_capacity({want}) chose {chosen}");
    assert_eq!(receiver.capacity().unwrap(), chosen);
    assert_eq!(sender.capacity().unwrap(), chosen, "both ends see it");

    // The pipe really holds that much now, and cannot shrink under it.
    assert!(fill(&sender) >= chosen);
    assert_error_kind(sender.set_capacity(page), ErrorKind::ResourceBusy);
}

/// `readv` is given at most 1024 buffers. Filling all of them is a full
/// read, not a short one: it must not re-arm edge mode (the poll(2) backend
/// used to count every buffer and report a spurious event).
#[test]
fn a_full_readv_of_more_than_1024_buffers_is_not_a_short_read() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut events = Events::with_capacity(4);
        sender.write_all(&[7u8; 2000]).unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);

        let mut storage = vec![[0u8; 1]; 2000];
        let mut bufs: Vec<IoSliceMut<'_>> =
            storage.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        assert_eq!(receiver.read_vectored(&mut bufs).unwrap(), 1024);
        expect_no_event_for(poll, &mut events, RECEIVER);
        assert_eq!(util::drain(&mut receiver).len(), 2000 - 1024);
    });
}
