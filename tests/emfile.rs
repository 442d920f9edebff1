//! Running out of file descriptors is an `EMFILE` error that leaves nothing
//! half-open, never a panic.
//!
//! This binary holds ONE test because it lowers `RLIMIT_NOFILE` for the
//! whole process; a second test running in parallel would fail at random.

mod util;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use pipeloop::{Backend, Events, Poll, Token, Waker, pipe};
use util::{Expect, can_list_fds, expect_events, for_each_backend, live_fds};

fn get_nofile() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    limit
}

fn set_nofile(limit: &libc::rlimit) {
    // SAFETY: `limit` is a valid rlimit; lowering the soft limit needs no
    // privilege.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}

fn dev_null() -> io::Result<File> {
    File::open("/dev/null")
}

#[track_caller]
fn assert_emfile<T: std::fmt::Debug>(result: io::Result<T>, what: &str) {
    match result {
        Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {}
        other => panic!("{what}: expected EMFILE, got {other:?}"),
    }
}

/// While alive, the process can open exactly one more fd: the soft
/// `RLIMIT_NOFILE` sits just above the highest open fd and every lower free
/// number is taken by a filler. Dropping it closes the fillers and restores
/// the limit (also when a test fails).
struct OneFdFree {
    old: libc::rlimit,
    fillers: Vec<File>,
}

impl OneFdFree {
    fn new() -> OneFdFree {
        let old = get_nofile();
        let highest = live_fds().into_iter().max().expect("some fd is open");
        let soft = highest as libc::rlim_t + 2;
        assert!(soft < old.rlim_cur, "RLIMIT_NOFILE is already tiny");
        set_nofile(&libc::rlimit {
            rlim_cur: soft,
            rlim_max: old.rlim_max,
        });
        let mut squeeze = OneFdFree {
            old,
            fillers: Vec::new(),
        };
        // Fill every free number up to the limit, then give one back.
        loop {
            match dev_null() {
                Ok(file) => squeeze.fillers.push(file),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
                Err(e) => panic!("open /dev/null: {e}"),
            }
        }
        let last = squeeze.fillers.pop().expect("at least one fd was free");
        assert_eq!(last.as_raw_fd(), highest + 1);
        drop(last);

        // Check the premise: one open succeeds, a second does not.
        let one = dev_null().expect("the one free fd");
        assert_emfile(dev_null(), "a second fd");
        drop(one);
        squeeze
    }

    /// Takes the last free fd too, until the returned file is dropped.
    fn take_last(&self) -> File {
        let file = dev_null().expect("the one free fd");
        assert_emfile(dev_null(), "an fd beyond the limit");
        file
    }
}

impl Drop for OneFdFree {
    fn drop(&mut self) {
        self.fillers.clear();
        set_nofile(&self.old);
    }
}

#[test]
fn out_of_fds_is_emfile_and_leaves_nothing_open() {
    if !can_list_fds("out_of_fds_is_emfile_and_leaves_nothing_open") {
        return;
    }
    let limit_before = get_nofile();
    let fds_before = live_fds();

    for_each_backend(|poll| {
        let backend = poll.backend();
        let mut events = Events::with_capacity(4);
        let (sender, _receiver) = pipe::new().unwrap();

        let squeeze = OneFdFree::new();
        let at_limit = live_fds();

        // A pipe needs two fds: EMFILE, and neither end is left open.
        assert_emfile(pipe::new(), "pipe::new with one fd free");
        assert_eq!(live_fds(), at_limit, "pipe::new left an fd open");

        // A duplicate needs one: fine now, EMFILE with none free.
        let clone = sender.try_clone().expect("try_clone with one fd free");
        assert_emfile(sender.try_clone(), "try_clone with no fd free");
        drop(clone);
        assert_eq!(live_fds(), at_limit);

        // A Poll: epoll needs one fd, the poll(2) backend a self-pipe (two).
        match Poll::with_backend(backend) {
            Ok(other) => assert_eq!(backend, Backend::Epoll, "{other:?} fit in one fd"),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}"),
        }
        assert_eq!(live_fds(), at_limit, "Poll::with_backend left an fd open");
        {
            let last = squeeze.take_last();
            assert_emfile(
                Poll::with_backend(backend),
                "Poll::with_backend with no fd free",
            );
            assert_emfile(Poll::new(), "Poll::new with no fd free");
            assert_emfile(pipe::new(), "pipe::new with no fd free");

            // A Waker: an eventfd on epoll; no fd of its own on poll(2),
            // where it must work even now.
            match Waker::new(poll.registry(), Token(9)) {
                Ok(waker) => {
                    assert_eq!(backend, Backend::Poll, "an epoll Waker needs an fd");
                    waker.wake().unwrap();
                    expect_events(poll, &mut events, &[Expect::readable(9)]);
                }
                Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}"),
            }
            drop(last);
        }
        assert_eq!(live_fds(), at_limit, "something was left open at the limit");

        // With the one free fd, an epoll Waker fits.
        let waker = Waker::new(poll.registry(), Token(10)).expect("Waker with one fd free");
        waker.wake().unwrap();
        expect_events(poll, &mut events, &[Expect::readable(10)]);
        drop(waker);
        assert_eq!(live_fds(), at_limit);

        drop(squeeze);
        // Once fds are free again, everything works.
        let (_s, _r) = pipe::new().expect("pipe::new after the limit is lifted");
        let _other = Poll::with_backend(backend).expect("Poll after the limit is lifted");
    });

    let limit_after = get_nofile();
    assert_eq!(
        (limit_after.rlim_cur, limit_after.rlim_max),
        (limit_before.rlim_cur, limit_before.rlim_max),
        "the limit was not restored"
    );
    assert_eq!(live_fds(), fds_before, "fds left open");
}
