//! Helpers shared by the integration tests. Each test file does `mod util;`
//! and may use only part of this, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use pipeloop::{Backend, Event, Events, Poll, Token};

/// A generous bound for "this should arrive": only reached if the test
/// fails, so it may be long without slowing the suite.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How long to wait when checking that nothing arrives.
pub const QUIET: Duration = Duration::from_millis(50);

/// Runs `scenario` once per backend this host has, with a fresh `Poll`; a
/// failure names the backend.
#[track_caller]
pub fn for_each_backend(scenario: impl Fn(&mut Poll)) {
    for &backend in Backend::available() {
        let mut poll = Poll::with_backend(backend)
            .unwrap_or_else(|e| panic!("creating a {backend} Poll: {e}"));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&mut poll)));
        if let Err(panic) = result {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panic!("[backend {backend}] {msg}");
        }
    }
}

/// What an expected event must say; `None` fields are not checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expect {
    pub token: usize,
    pub readable: Option<bool>,
    pub writable: Option<bool>,
    pub error: Option<bool>,
    pub read_closed: Option<bool>,
    pub write_closed: Option<bool>,
}

impl Expect {
    pub fn readable(token: usize) -> Expect {
        Expect {
            token,
            readable: Some(true),
            ..Expect::default()
        }
    }

    pub fn writable(token: usize) -> Expect {
        Expect {
            token,
            writable: Some(true),
            ..Expect::default()
        }
    }

    pub fn any(token: usize) -> Expect {
        Expect {
            token,
            ..Expect::default()
        }
    }

    fn matches(&self, event: &Event) -> bool {
        let check = |want: Option<bool>, got: bool| want.is_none_or(|w| w == got);
        event.token() == Token(self.token)
            && check(self.readable, event.is_readable())
            && check(self.writable, event.is_writable())
            && check(self.error, event.is_error())
            && check(self.read_closed, event.is_read_closed())
            && check(self.write_closed, event.is_write_closed())
    }
}

/// Polls until every expected event has been seen (in any order, possibly
/// across several polls) or `PATIENCE` runs out. Returns every event seen.
#[track_caller]
pub fn expect_events(poll: &mut Poll, events: &mut Events, expected: &[Expect]) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    let mut missing: Vec<Expect> = expected.to_vec();
    let mut seen = Vec::new();
    while !missing.is_empty() {
        let now = Instant::now();
        assert!(
            now < deadline,
            "timed out waiting for {missing:?}; saw {seen:?}"
        );
        poll.poll(events, Some(deadline - now)).expect("poll");
        for event in events.iter() {
            seen.push(format!("{event:?}"));
            if let Some(i) = missing.iter().position(|e| e.matches(event)) {
                missing.swap_remove(i);
            }
        }
    }
    seen
}

/// Polls once for `QUIET` and asserts that nothing was reported.
#[track_caller]
pub fn expect_no_events(poll: &mut Poll, events: &mut Events) {
    poll.poll(events, Some(QUIET)).expect("poll");
    let got: Vec<_> = events.iter().map(|e| format!("{e:?}")).collect();
    assert!(got.is_empty(), "expected no events, got {got:?}");
}

/// Polls once for `QUIET` and asserts that `token` was not reported.
#[track_caller]
pub fn expect_no_event_for(poll: &mut Poll, events: &mut Events, token: usize) {
    poll.poll(events, Some(QUIET)).expect("poll");
    let got: Vec<_> = events
        .iter()
        .filter(|e| e.token() == Token(token))
        .map(|e| format!("{e:?}"))
        .collect();
    assert!(
        got.is_empty(),
        "expected no event for Token({token}), got {got:?}"
    );
}

/// Asserts that `result` is a `WouldBlock` error.
#[track_caller]
pub fn assert_would_block<T: std::fmt::Debug>(result: io::Result<T>) {
    match result {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("expected WouldBlock, got {other:?}"),
    }
}

/// Asserts that `result` is an error of `kind`.
#[track_caller]
pub fn assert_error_kind<T: std::fmt::Debug>(result: io::Result<T>, kind: ErrorKind) {
    match result {
        Err(e) if e.kind() == kind => {}
        other => panic!("expected an error of kind {kind:?}, got {other:?}"),
    }
}

/// Reads `fd`'s fd flags (`F_GETFD`).
pub fn fd_flags(fd: RawFd) -> libc::c_int {
    // SAFETY: F_GETFD takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(
        flags >= 0,
        "fcntl(F_GETFD) on fd {fd}: {}",
        io::Error::last_os_error()
    );
    flags
}

/// Reads `fd`'s status flags (`F_GETFL`).
pub fn status_flags(fd: RawFd) -> libc::c_int {
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(
        flags >= 0,
        "fcntl(F_GETFL) on fd {fd}: {}",
        io::Error::last_os_error()
    );
    flags
}

#[track_caller]
pub fn assert_cloexec(fd: &impl AsRawFd) {
    let fd = fd.as_raw_fd();
    assert!(
        fd_flags(fd) & libc::FD_CLOEXEC != 0,
        "fd {fd} is not close-on-exec"
    );
}

#[track_caller]
pub fn assert_nonblocking(fd: &impl AsRawFd) {
    let fd = fd.as_raw_fd();
    assert!(
        status_flags(fd) & libc::O_NONBLOCK != 0,
        "fd {fd} is not non-blocking"
    );
}

/// The fds open in this process, from `/proc/self/fd`.
pub fn open_fds() -> HashSet<RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Reads from a non-blocking reader until `WouldBlock` (or end of file),
/// returning the bytes.
#[track_caller]
pub fn drain(mut reader: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return out,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}
