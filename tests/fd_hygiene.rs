//! Every fd pipeloop makes is close-on-exec (and, for pipe ends,
//! non-blocking), read back with `fcntl`; nothing leaks over thousands of
//! create/register/poll/drop cycles.
//!
//! The fd-counting tests compare `/proc/self/fd` before and after, so no
//! other test of this binary may open or close fds meanwhile: every test here
//! takes the `SERIAL` lock first.

mod util;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pipeloop::{Backend, Events, Interest, Poll, Token, Waker, pipe};
use util::{
    Expect, assert_cloexec, assert_nonblocking, can_list_fds, expect_events, for_each_backend,
    live_fds, status_flags,
};

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the tests of this binary one at a time (a failed test poisons the
/// lock, which must not fail the others).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fds in `after` that were not in `before`, sorted.
fn added(before: &HashSet<RawFd>, after: &HashSet<RawFd>) -> Vec<RawFd> {
    let mut fds: Vec<RawFd> = after.difference(before).copied().collect();
    fds.sort_unstable();
    fds
}

#[track_caller]
fn assert_blocking(fd: &impl AsRawFd) {
    let fd = fd.as_raw_fd();
    assert!(
        status_flags(fd) & libc::O_NONBLOCK == 0,
        "fd {fd} is still non-blocking"
    );
}

#[test]
fn pipe_ends_are_cloexec_and_nonblocking() {
    let _serial = serial();
    let (sender, receiver) = pipe::new().unwrap();
    assert_cloexec(&sender);
    assert_nonblocking(&sender);
    assert_cloexec(&receiver);
    assert_nonblocking(&receiver);
}

#[test]
fn cloned_ends_are_cloexec_and_share_nonblocking() {
    let _serial = serial();
    let (sender, receiver) = pipe::new().unwrap();
    let sender2 = sender.try_clone().unwrap();
    let receiver2 = receiver.try_clone().unwrap();
    assert_ne!(sender2.as_raw_fd(), sender.as_raw_fd());
    assert_ne!(receiver2.as_raw_fd(), receiver.as_raw_fd());
    assert_cloexec(&sender2);
    assert_cloexec(&receiver2);
    assert_nonblocking(&sender2);
    assert_nonblocking(&receiver2);

    // O_NONBLOCK belongs to the open file description, shared by the clone.
    receiver2.set_nonblocking(false).unwrap();
    assert_blocking(&receiver);
    receiver.set_nonblocking(true).unwrap();
    assert_nonblocking(&receiver2);
}

#[test]
fn set_nonblocking_reads_back() {
    let _serial = serial();
    let (sender, receiver) = pipe::new().unwrap();

    sender.set_nonblocking(false).unwrap();
    receiver.set_nonblocking(false).unwrap();
    assert_blocking(&sender);
    assert_blocking(&receiver);
    // Idempotent, and FD_CLOEXEC is a different flag set.
    sender.set_nonblocking(false).unwrap();
    assert_blocking(&sender);
    assert_cloexec(&sender);
    assert_cloexec(&receiver);

    sender.set_nonblocking(true).unwrap();
    receiver.set_nonblocking(true).unwrap();
    assert_nonblocking(&sender);
    assert_nonblocking(&receiver);
    sender.set_nonblocking(true).unwrap();
    assert_nonblocking(&sender);
}

#[test]
fn child_stdio_ends_are_nonblocking_and_pollable() {
    let _serial = serial();
    for_each_backend(|poll| {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cat");
        let mut stdin = pipe::Sender::from(child.stdin.take().unwrap());
        let mut stdout = pipe::Receiver::from(child.stdout.take().unwrap());
        let mut stderr = pipe::Receiver::from(child.stderr.take().unwrap());
        assert_nonblocking(&stdin);
        assert_nonblocking(&stdout);
        assert_nonblocking(&stderr);

        // Nothing there yet: a non-blocking read says so instead of hanging.
        util::assert_would_block(stdout.read(&mut [0u8; 8]));

        poll.registry()
            .register(&mut stdout, Token(1), Interest::READABLE)
            .unwrap();
        poll.registry()
            .register(&mut stderr, Token(2), Interest::READABLE)
            .unwrap();
        stdin.write_all(b"echo").unwrap();
        let mut events = Events::with_capacity(8);
        expect_events(poll, &mut events, &[Expect::readable(1)]);
        let mut buf = [0u8; 16];
        let n = stdout.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"echo");

        // Closing stdin ends cat: both outputs hang up.
        drop(stdin);
        let closed = |token| Expect {
            read_closed: Some(true),
            ..Expect::any(token)
        };
        expect_events(poll, &mut events, &[closed(1), closed(2)]);
        assert!(child.wait().unwrap().success());
    });
}

#[test]
fn std_io_pipe_ends_are_nonblocking() {
    let _serial = serial();
    let (reader, writer) = std::io::pipe().unwrap();
    let receiver = pipe::Receiver::from(reader);
    let sender = pipe::Sender::from(writer);
    assert_nonblocking(&receiver);
    assert_nonblocking(&sender);
    assert_cloexec(&receiver);
    assert_cloexec(&sender);
}

#[test]
fn poll_and_waker_fds_are_cloexec_and_closed_on_drop() {
    let _serial = serial();
    if !can_list_fds("poll_and_waker_fds_are_cloexec_and_closed_on_drop") {
        return;
    }
    for_each_backend(|poll| {
        let backend = poll.backend();

        let before = live_fds();
        let other = Poll::with_backend(backend).unwrap();
        let poll_fds = added(&before, &live_fds());
        assert!(
            !poll_fds.is_empty(),
            "a {backend} Poll opened no fd (epoll fd or self-pipe expected)"
        );
        for fd in &poll_fds {
            assert_cloexec(fd);
        }

        let before_waker = live_fds();
        let waker = Waker::new(other.registry(), Token(0)).unwrap();
        let waker_fds = added(&before_waker, &live_fds());
        match backend {
            // An eventfd of its own.
            Backend::Epoll => assert_eq!(waker_fds.len(), 1, "{waker_fds:?}"),
            // Documented: no fd of its own, it uses the poller's self-pipe.
            _ => assert!(waker_fds.is_empty(), "{waker_fds:?}"),
        }
        for fd in &waker_fds {
            assert_cloexec(fd);
        }

        #[cfg(any(target_os = "linux", target_os = "android"))]
        let pipe_waker = {
            let before_pipe_waker = live_fds();
            let pipe_waker = Waker::with_pipe(other.registry(), Token(1)).unwrap();
            let fds = added(&before_pipe_waker, &live_fds());
            for fd in &fds {
                assert_cloexec(fd);
            }
            pipe_waker
        };

        // The same from `Poll::new()`, whichever backend it picks.
        let before_new = live_fds();
        let default = Poll::new().unwrap();
        let new_fds = added(&before_new, &live_fds());
        assert!(!new_fds.is_empty());
        for fd in &new_fds {
            assert_cloexec(fd);
        }
        drop(default);

        #[cfg(any(target_os = "linux", target_os = "android"))]
        drop(pipe_waker);
        drop(waker);
        drop(other);
        assert_eq!(
            added(&live_fds(), &before),
            Vec::<RawFd>::new(),
            "closed an fd it did not own"
        );
        assert_eq!(
            added(&before, &live_fds()),
            Vec::<RawFd>::new(),
            "fds left open after dropping the Poll and its wakers"
        );
    });
}

const CYCLES: usize = 2_000;

#[test]
fn no_fd_growth_over_pipe_register_poll_drop_cycles() {
    let _serial = serial();
    if !can_list_fds("no_fd_growth_over_pipe_register_poll_drop_cycles") {
        return;
    }
    for_each_backend(|poll| {
        let mut events = Events::with_capacity(8);
        let before = live_fds();
        for i in 0..CYCLES {
            let (mut sender, mut receiver) = pipe::new().unwrap();
            // Registering reuses the fd numbers of the last cycle: a
            // registration left behind would make this AlreadyExists.
            poll.registry()
                .register(&mut receiver, Token(2 * i), Interest::READABLE)
                .unwrap_or_else(|e| panic!("cycle {i}: register receiver: {e}"));
            poll.registry()
                .register(&mut sender, Token(2 * i + 1), Interest::WRITABLE)
                .unwrap_or_else(|e| panic!("cycle {i}: register sender: {e}"));
            sender.write_all(b"ping").unwrap();
            expect_events(
                poll,
                &mut events,
                &[Expect::readable(2 * i), Expect::writable(2 * i + 1)],
            );
            let mut buf = [0u8; 8];
            assert_eq!(receiver.read(&mut buf).unwrap(), 4);
            if i % 2 == 0 {
                // Half explicitly deregistered, half just dropped.
                poll.registry().deregister(&mut receiver).unwrap();
                poll.registry().deregister(&mut sender).unwrap();
            }
        }
        // Nothing from the dropped pipes is reported any more.
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty(), "stale events: {events:?}");
        assert_eq!(
            added(&before, &live_fds()),
            Vec::<RawFd>::new(),
            "fds left open"
        );
        assert_eq!(live_fds(), before);
    });
}

#[test]
fn no_fd_growth_over_poll_and_waker_create_drop_cycles() {
    let _serial = serial();
    if !can_list_fds("no_fd_growth_over_poll_and_waker_create_drop_cycles") {
        return;
    }
    for_each_backend(|poll| {
        let backend = poll.backend();
        let mut events = Events::with_capacity(8);
        let before = live_fds();
        for i in 0..CYCLES {
            let mut other = Poll::with_backend(backend)
                .unwrap_or_else(|e| panic!("cycle {i}: Poll::with_backend: {e}"));
            let waker = Waker::new(other.registry(), Token(7))
                .unwrap_or_else(|e| panic!("cycle {i}: Waker::new: {e}"));
            waker.wake().unwrap();
            expect_events(&mut other, &mut events, &[Expect::readable(7)]);
            if i % 2 == 0 {
                // Either drop order.
                drop(waker);
                drop(other);
            } else {
                drop(other);
                drop(waker);
            }
        }
        assert_eq!(live_fds(), before, "fds left open by Poll and Waker");

        // Many wakers created and dropped on one Poll.
        for i in 0..CYCLES {
            let waker = Waker::new(poll.registry(), Token(i)).unwrap();
            waker.wake().unwrap();
            expect_events(poll, &mut events, &[Expect::readable(i)]);
        }
        assert_eq!(live_fds(), before, "fds left open by Waker");
    });
}
