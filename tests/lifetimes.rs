//! A registration ends with the source, on every backend: dropping a
//! registered pipe end or `Waker` stops its events even while another fd (a
//! clone, a `dup`, a forked child's copy) keeps the file open, and a `Poll`
//! dropped first closes its fds at once.
//!
//! epoll keeps a registration for as long as the *open file* lives, not the
//! registered fd, so before pipeloop ended registrations itself these tests
//! saw the dropped source's token on epoll and nothing on poll(2).

mod util;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};

use pipeloop::{Events, Interest, Poll, Token, Waker};
use util::{
    Expect, assert_error_kind, can_list_fds, expect_events, expect_no_event_for, for_each_backend,
    live_fds,
};

/// One test at a time: one counts the process's fds, and the children
/// forked by others hold copies of every fd open at the time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The case from the issue: a registered clone is dropped while the
/// original keeps the pipe open.
#[test]
fn a_dropped_registered_clone_reports_nothing_and_leaves_nothing_registered() {
    let _serial = serial();
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipeloop::pipe::new().unwrap();
        let mut clone = receiver.try_clone().unwrap();
        poll.registry()
            .register(&mut clone, Token(7), Interest::READABLE)
            .unwrap();
        drop(clone);

        sender.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(8);
        expect_no_event_for(poll, &mut events, 7);
        assert_error_kind(
            poll.registry().deregister(&mut receiver),
            std::io::ErrorKind::NotFound,
        );
        // And the original can be registered, and is reported.
        poll.registry()
            .register(&mut receiver, Token(8), Interest::READABLE.level())
            .unwrap();
        expect_events(poll, &mut events, &[Expect::readable(8)]);
    });
}

#[test]
fn a_dropped_registered_end_reports_nothing_while_a_dup_keeps_the_pipe_open() {
    let _serial = serial();
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipeloop::pipe::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(1), Interest::READABLE.level())
            .unwrap();
        let dup = dup(receiver.as_raw_fd());
        drop(receiver);

        sender.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(8);
        expect_no_event_for(poll, &mut events, 1);
        drop(dup);
    });
}

/// A sender dropped while a dup of it keeps the pipe writable: the
/// receiver's reads must not produce events for the dropped sender.
#[test]
fn a_dropped_registered_sender_reports_nothing_while_a_dup_keeps_the_pipe_open() {
    let _serial = serial();
    for_each_backend(|poll| {
        let (mut sender, receiver) = pipeloop::pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(2), Interest::WRITABLE.level())
            .unwrap();
        let dup = dup(sender.as_raw_fd());
        drop(sender);
        drop(receiver); // a hang-up, which epoll reports whatever the interest

        let mut events = Events::with_capacity(8);
        expect_no_event_for(poll, &mut events, 2);
        drop(dup);
    });
}

#[test]
fn a_dropped_registered_end_reports_nothing_while_a_forked_child_holds_it() {
    let _serial = serial();
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipeloop::pipe::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(3), Interest::READABLE.level())
            .unwrap();
        let child = Child::fork(|| {});
        drop(receiver);

        sender.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(8);
        expect_no_event_for(poll, &mut events, 3);
        child.finish();
    });
}

/// A `Waker` dropped in the parent, then woken through the forked child's
/// copy: the parent's poll must not hear it.
#[test]
fn a_dropped_waker_reports_nothing_while_a_forked_child_holds_its_fd() {
    let _serial = serial();
    for_each_backend(|poll| {
        let waker = Waker::new(poll.registry(), Token(4)).unwrap();
        let mut child = Child::fork(|| {
            let _ = waker.wake();
        });
        drop(waker); // in the parent; the child wakes through its copy
        child.run();
        let mut events = Events::with_capacity(8);
        expect_no_event_for(poll, &mut events, 4);
        child.finish();
    });
}

/// The other direction: a forked child that drops its copy of a registered
/// end (the usual "close the end you do not use") must leave the parent's
/// registration alone. An epoll instance is shared across `fork`, so the
/// child's `EPOLL_CTL_DEL` used to delete it for the parent too.
#[test]
fn a_forked_child_dropping_its_copy_leaves_the_parents_registration() {
    let _serial = serial();
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipeloop::pipe::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(5), Interest::READABLE.level())
            .unwrap();
        let waker = Waker::new(poll.registry(), Token(6)).unwrap();
        let child = Child::fork(|| {
            // SAFETY: this process's copies of the parent's values, read
            // out once and dropped here; the child never touches them again
            // (it exits with _exit).
            unsafe {
                drop(std::ptr::read(&receiver));
                drop(std::ptr::read(&waker));
            }
        });
        child.finish();

        sender.write_all(b"x").unwrap();
        waker.wake().unwrap();
        let mut events = Events::with_capacity(8);
        expect_events(
            poll,
            &mut events,
            &[Expect::readable(5), Expect::readable(6)],
        );
    });
}

/// Dropping a `Poll` closes its fds even while registered ends and wakers
/// live on (they refer to the backend weakly), and they then drop cleanly.
#[test]
fn a_dropped_poll_closes_its_fds_while_registered_sources_live() {
    let _serial = serial();
    if !can_list_fds("a_dropped_poll_closes_its_fds_while_registered_sources_live") {
        return;
    }
    for &backend in pipeloop::Backend::available() {
        let (mut sender, mut receiver) = pipeloop::pipe::new().unwrap();
        let before = live_fds();
        let poll = Poll::with_backend(backend).unwrap();
        poll.registry()
            .register(&mut receiver, Token(1), Interest::READABLE)
            .unwrap();
        poll.registry()
            .register(&mut sender, Token(2), Interest::WRITABLE)
            .unwrap();
        let waker = Waker::new(poll.registry(), Token(3)).unwrap();
        drop(poll);
        waker.wake().unwrap();
        drop(waker);
        // Reading and writing still work, and try to re-arm nothing.
        sender.write_all(b"x").unwrap();
        assert_eq!(util::drain(&receiver), b"x");
        let after = live_fds();
        assert_eq!(
            before, after,
            "[{backend}] fds left open by the dropped Poll"
        );
    }
}

fn dup(fd: RawFd) -> OwnedFd {
    // SAFETY: F_DUPFD_CLOEXEC makes a new fd that nothing else owns.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    assert!(new >= 0, "dup: {}", std::io::Error::last_os_error());
    // SAFETY: `new` was just created and is ours.
    unsafe { OwnedFd::from_raw_fd(new) }
}

/// A forked child that keeps copies of every fd until it exits. It runs
/// `then` when the parent says [`run`](Child::run), and exits when the
/// parent says [`finish`](Child::finish); each is a byte through a pipe
/// (not end of file: children forked by other tests hold copies of it).
/// Killed if the test fails first, so that it does not hold the test's
/// output pipe open.
struct Child {
    pid: libc::pid_t,
    go: std::fs::File,
    done: std::fs::File,
    ran: bool,
    reaped: bool,
}

impl Child {
    /// `then` runs in the child, which has one thread: it must only make
    /// async-signal-safe calls (no allocation, no locks).
    fn fork(then: impl FnOnce()) -> Child {
        let (go_read, go_write) = std::io::pipe().unwrap();
        let (done_read, done_write) = std::io::pipe().unwrap();
        let byte_through = |from: &std::io::PipeReader, to: &std::io::PipeWriter| {
            let mut byte = 0u8;
            // SAFETY: blocking one-byte transfers through a local.
            unsafe {
                libc::read(from.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                libc::write(to.as_raw_fd(), (&byte as *const u8).cast(), 1);
            }
        };
        // SAFETY: the child only reads, writes, runs `then`
        // (async-signal-safe by contract) and calls _exit.
        match unsafe { libc::fork() } {
            -1 => panic!("fork: {}", std::io::Error::last_os_error()),
            0 => {
                byte_through(&go_read, &done_write);
                then();
                byte_through(&go_read, &done_write);
                // SAFETY: ends the child without running the parent's
                // destructors or atexit handlers.
                unsafe { libc::_exit(0) }
            }
            pid => Child {
                pid,
                go: OwnedFd::from(go_write).into(),
                done: OwnedFd::from(done_read).into(),
                ran: false,
                reaped: false,
            },
        }
    }

    /// Has the child run `then`, and waits until it has.
    fn run(&mut self) {
        self.go.write_all(&[1]).unwrap();
        std::io::Read::read_exact(&mut self.done, &mut [0]).unwrap();
        self.ran = true;
    }

    /// Lets the child exit (running `then` first if `run` was not called),
    /// and reaps it.
    fn finish(mut self) {
        if !self.ran {
            self.run();
        }
        self.go.write_all(&[1]).unwrap();
        let status = self.reap();
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status}"
        );
    }

    fn reap(&mut self) -> libc::c_int {
        let mut status = 0;
        // SAFETY: waits for our own child.
        let reaped = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(
            reaped,
            self.pid,
            "waitpid: {}",
            std::io::Error::last_os_error()
        );
        self.reaped = true;
        status
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: signals our own child, which has not been reaped.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.reap();
        }
    }
}
