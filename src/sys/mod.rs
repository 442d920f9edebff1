//! The OS layer: one file per readiness mechanism, plus fd helpers.
//!
//! Every backend provides the same things, which this module wraps in one
//! enum each so that the backend can be chosen at run time:
//!
//! - `Selector::new() -> io::Result<Selector>`: the kernel object (or table)
//!   that holds registrations; its own fds are close-on-exec.
//! - `register(fd, token, interest) -> io::Result<Registration>`,
//!   `reregister(fd, token, interest) -> io::Result<Registration>`,
//!   `deregister(fd) -> io::Result<()>`: `AlreadyExists` when an fd is
//!   registered twice, `NotFound` for one that is not registered, the OS
//!   error (EBADF) for a bad fd. The `Registration` ends the registration
//!   when dropped (pipeloop's own sources keep it) unless detached
//!   (`SourceFd`).
//! - `select(&mut EventBuf, Option<Duration>) -> io::Result<()>`: returns
//!   when it has events or the timeout (at most `LONGEST_WAIT`) has passed,
//!   never earlier with nothing (a backend that wakes for its own reasons
//!   waits again itself), and fills the buffer up to its capacity without
//!   allocating; EINTR is returned as `Interrupted`. The timeout is kept to
//!   the nanosecond where the OS takes a timespec (epoll_pwait2, ppoll,
//!   kevent) and rounded up, never down, to whole milliseconds where it
//!   takes an int (epoll_wait before Linux 5.11, poll(2) on macOS).
//! - a waker: `Waker::new(&Selector, Token)` and `wake()`, from any thread.
//!
//! Rules that are the same for every backend (splitting long timeouts,
//! checking `Events` capacity, logging) live in `crate::poll`, not here.
//!
//! `RawEvent` is `libc::epoll_event` wherever epoll exists, and every backend
//! writes the same flag bits into it (epoll's where epoll exists, poll(2)'s
//! elsewhere; see `event.rs`), so that `Event` decodes one format.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::{Interest, Token};

#[cfg(pipeloop_epoll)]
pub(crate) mod epoll;
#[cfg(any(pipeloop_kqueue, test))]
pub(crate) mod kqueue;
pub(crate) mod poll;

pub(crate) mod event;
pub(crate) mod fd;
mod fd_map;
#[cfg(any(pipeloop_epoll, pipeloop_kqueue, test))]
mod fork;
mod registration;
pub(crate) mod signal;

pub(crate) use event::RawEvent;
pub(crate) use fd::{iov_len, new_pipe, read, readv, set_nonblocking, write, writev};
#[cfg(pipeloop_linux)]
pub(crate) use fd::{pipe_capacity, set_pipe_capacity};
pub(crate) use fd_map::{FdMap, FileId};
pub(crate) use registration::{Registration, Registrations};

use crate::Backend;

/// Turns a `-1` return into the `errno` error.
#[inline]
pub(crate) fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(crate) trait IsMinusOne {
    fn is_minus_one(&self) -> bool;
}

macro_rules! impl_is_minus_one {
    ($($t:ty)*) => {$(
        impl IsMinusOne for $t {
            fn is_minus_one(&self) -> bool {
                *self == -1
            }
        }
    )*};
}
impl_is_minus_one!(i32 isize i64);

/// Wraps an fd that a syscall just returned.
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    debug_assert!(fd >= 0);
    // SAFETY: callers pass an fd that a successful syscall just created and
    // that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The backend a `Selector` was built with, chosen at run time on systems
/// that have more than one.
#[derive(Debug)]
pub(crate) enum Selector {
    #[cfg(pipeloop_epoll)]
    Epoll(epoll::Selector),
    #[cfg(pipeloop_kqueue)]
    Kqueue(kqueue::Selector),
    Poll(poll::Selector),
}

/// Which backends this build has, best first. A new mechanism joins as
/// `sys/<syscall>.rs`: a cfg group in build.rs, a variant in `Selector` and
/// `Waker`, and an entry here ahead of poll(2).
pub(crate) const BACKENDS: &[Backend] = &[
    #[cfg(pipeloop_epoll)]
    Backend::Epoll,
    #[cfg(pipeloop_kqueue)]
    Backend::Kqueue,
    Backend::Poll,
];

macro_rules! dispatch {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            #[cfg(pipeloop_epoll)]
            Selector::Epoll($s) => $call,
            #[cfg(pipeloop_kqueue)]
            Selector::Kqueue($s) => $call,
            Selector::Poll($s) => $call,
        }
    };
}

impl Selector {
    pub(crate) fn new(backend: Backend) -> io::Result<Selector> {
        match backend {
            #[cfg(pipeloop_epoll)]
            Backend::Epoll => epoll::Selector::new().map(Selector::Epoll),
            #[cfg(pipeloop_kqueue)]
            Backend::Kqueue => kqueue::Selector::new().map(Selector::Kqueue),
            Backend::Poll => poll::Selector::new().map(Selector::Poll),
            #[allow(unreachable_patterns)]
            other => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the {other} backend is not available on this system"),
            )),
        }
    }

    /// Tells this selector from every other one alive: the address of its
    /// shared state, which its `Registration`s also know.
    pub(crate) fn id(&self) -> usize {
        dispatch!(self, s => s.id())
    }

    /// Whether edge mode is built from source reports, so that sources must
    /// say when they used a direction up: poll(2) emulates edges, and kqueue
    /// holds back the repeats its kernels report until then (see
    /// `kqueue/core.rs`).
    pub(crate) fn rearms_edges(&self) -> bool {
        match self {
            #[cfg(pipeloop_epoll)]
            Selector::Epoll(_) => false,
            #[cfg(pipeloop_kqueue)]
            Selector::Kqueue(_) => true,
            Selector::Poll(_) => true,
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            #[cfg(pipeloop_epoll)]
            Selector::Epoll(_) => Backend::Epoll,
            #[cfg(pipeloop_kqueue)]
            Selector::Kqueue(_) => Backend::Kqueue,
            Selector::Poll(_) => Backend::Poll,
        }
    }

    /// Registers `fd`. `rearms`: the source reports when it used a
    /// direction up (see `rearms_edges`); pipeloop's own pipe ends do, a
    /// `SourceFd` does not.
    #[cfg_attr(not(pipeloop_kqueue), allow(unused_variables))]
    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        rearms: bool,
    ) -> io::Result<Registration> {
        match self {
            #[cfg(pipeloop_epoll)]
            Selector::Epoll(s) => s.register(fd, token, interest),
            #[cfg(pipeloop_kqueue)]
            Selector::Kqueue(s) => s.register(fd, token, interest, rearms),
            // poll(2) needs the reports from every edge registration; a
            // `SourceFd` reregisters instead (see its docs).
            Selector::Poll(s) => s.register(fd, token, interest),
        }
    }

    #[cfg_attr(not(pipeloop_kqueue), allow(unused_variables))]
    pub(crate) fn reregister(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        rearms: bool,
    ) -> io::Result<Registration> {
        match self {
            #[cfg(pipeloop_epoll)]
            Selector::Epoll(s) => s.reregister(fd, token, interest),
            #[cfg(pipeloop_kqueue)]
            Selector::Kqueue(s) => s.reregister(fd, token, interest, rearms),
            // poll(2) needs the reports from every edge registration; a
            // `SourceFd` reregisters instead (see its docs).
            Selector::Poll(s) => s.reregister(fd, token, interest),
        }
    }

    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        dispatch!(self, s => s.deregister(fd))
    }

    #[inline]
    pub(crate) fn select(
        &self,
        buf: &mut event::EventBuf,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        dispatch!(self, s => s.select(buf, timeout))
    }
}

/// A waker of whichever backend the `Poll` has.
#[derive(Debug)]
pub(crate) enum Waker {
    #[cfg(pipeloop_epoll)]
    Epoll(epoll::Waker),
    #[cfg(pipeloop_kqueue)]
    Kqueue(kqueue::Waker),
    Poll(poll::Waker),
}

impl Waker {
    pub(crate) fn new(selector: &Selector, token: Token) -> io::Result<Waker> {
        match selector {
            #[cfg(pipeloop_epoll)]
            Selector::Epoll(s) => epoll::Waker::new(s, token).map(Waker::Epoll),
            #[cfg(pipeloop_kqueue)]
            Selector::Kqueue(s) => kqueue::Waker::new(s, token).map(Waker::Kqueue),
            Selector::Poll(s) => Ok(Waker::Poll(s.waker(token))),
        }
    }

    #[cfg(pipeloop_epoll)]
    pub(crate) fn new_pipe(selector: &Selector, token: Token) -> io::Result<Waker> {
        match selector {
            Selector::Epoll(s) => epoll::Waker::new_pipe(s, token).map(Waker::Epoll),
            Selector::Poll(s) => Ok(Waker::Poll(s.waker(token))),
        }
    }

    pub(crate) fn wake(&self) -> io::Result<()> {
        match self {
            #[cfg(pipeloop_epoll)]
            Waker::Epoll(w) => w.wake(),
            #[cfg(pipeloop_kqueue)]
            Waker::Kqueue(w) => w.wake(),
            Waker::Poll(w) => w.wake(),
        }
    }
}

/// The longest one wait of any backend can be: `c_int::MAX` milliseconds
/// (epoll_wait and poll(2) take an int; the timespec of epoll_pwait2, ppoll
/// and kevent takes more, but one limit for all keeps the fallbacks alike).
/// `Poll::poll` splits timeouts of `LONGEST_WAIT_SECS` whole seconds or
/// more (a test of one word on the hot path) into waits of at most
/// `LONGEST_WAIT`, so no backend gets more than that.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_millis(libc::c_int::MAX as u64);
pub(crate) const LONGEST_WAIT_SECS: u64 = LONGEST_WAIT.as_secs();

/// Whether `timeout` has a part finer than a millisecond, which only a
/// timespec carries: then epoll and poll(2) wait with epoll_pwait2 and
/// ppoll instead of epoll_wait and poll(2), which take milliseconds. A
/// whole number of milliseconds (the 1 s of most loops, and zero) keeps the
/// cheaper int call, which sleeps exactly as long.
#[cfg(any(pipeloop_epoll, pipeloop_ppoll))]
#[inline]
pub(crate) fn finer_than_ms(timeout: Duration) -> bool {
    !timeout.subsec_nanos().is_multiple_of(1_000_000)
}

/// `d` as a `timespec` for kevent and ppoll, at most `INT32_MAX` seconds, so
/// that the seconds fit a 32-bit `time_t`; a shorter wait is fine, as
/// `Poll::poll` waits again for what is left. Callers pass at most
/// `LONGEST_WAIT` (about 24.8 days) anyway: far below the 100,000,000 s
/// that an xnu kevent checking its timeout with `itimerfix` refuses
/// (EINVAL).
#[cfg(any(pipeloop_kqueue, pipeloop_ppoll))]
pub(crate) fn timespec(d: Duration) -> libc::timespec {
    // SAFETY: a timespec is plain integers (and, on some targets, padding),
    // for which zero is valid.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    ts.tv_sec = d.as_secs().min(i32::MAX as u64) as _;
    ts.tv_nsec = d.subsec_nanos() as _;
    ts
}

/// Milliseconds for epoll_wait and poll: `-1` for none, rounded up so that a
/// sub-millisecond timeout sleeps (instead of spinning at 0) and no wait ends
/// early. Exact for a whole number of milliseconds; a finer timeout gets
/// here only where the OS has no timespec call (poll(2) on macOS and the
/// like, epoll before Linux 5.11). The timeout is at most `LONGEST_WAIT`
/// (callers split longer ones): past it the count would not fit a `c_int`.
#[inline]
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            debug_assert!(t <= LONGEST_WAIT, "{t:?} is longer than LONGEST_WAIT");
            // Up to LONGEST_WAIT the sum below fits a c_int, so no
            // saturating arithmetic is needed; u64, because a u128 division
            // (`as_nanos`) costs a libcall.
            let secs = t.as_secs().min(LONGEST_WAIT_SECS);
            let ms = secs * 1000 + u64::from(t.subsec_nanos().div_ceil(1_000_000));
            ms as libc::c_int
        }
    }
}

/// A waker made of a pipe whose read end the backend watches,
/// edge-triggered: `wake` writes a byte, and nothing reads on the polling
/// side. When earlier wakes have filled the pipe, `wake` empties it first,
/// so a wake is never lost to `EAGAIN`.
#[cfg(any(pipeloop_epoll, all(pipeloop_kqueue, not(pipeloop_evfilt_user))))]
#[derive(Debug)]
pub(crate) struct PipeWaker {
    read: OwnedFd,
    write: OwnedFd,
}

#[cfg(any(pipeloop_epoll, all(pipeloop_kqueue, not(pipeloop_evfilt_user))))]
impl PipeWaker {
    pub(crate) fn new() -> io::Result<PipeWaker> {
        let (read, write) = new_pipe()?;
        Ok(PipeWaker { read, write })
    }

    /// The fd to register, readable, edge-triggered.
    pub(crate) fn read_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    pub(crate) fn wake(&self) -> io::Result<()> {
        match write(self.write.as_raw_fd(), &[1]) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                drain(&self.read);
                write(self.write.as_raw_fd(), &[1]).map(drop)
            }
            other => other.map(drop),
        }
    }
}

/// Empties the pipe `fd`, discarding the bytes: reads until a read comes
/// back short (the pipe was then empty) or fails (as it does with
/// `WouldBlock` once the pipe is empty).
pub(crate) fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 512];
    while let Ok(n) = read(fd.as_raw_fd(), &mut buf) {
        if n < buf.len() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rounding itself: up, never down, so that no sub-millisecond
    /// timeout becomes 0 (a spin) and no wait ends early.
    #[test]
    fn timeout_ms_rounds_up_to_whole_milliseconds() {
        let ms = |d| timeout_ms(Some(d));
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(ms(Duration::ZERO), 0);
        assert_eq!(ms(Duration::from_nanos(1)), 1);
        assert_eq!(ms(Duration::from_micros(200)), 1);
        assert_eq!(ms(Duration::from_micros(999)), 1);
        assert_eq!(ms(Duration::from_millis(1)), 1);
        assert_eq!(ms(Duration::from_nanos(1_000_001)), 2);
        assert_eq!(ms(Duration::from_nanos(1_500_000)), 2);
        assert_eq!(ms(Duration::from_millis(30)), 30);
        assert_eq!(ms(Duration::new(2, 1)), 2001);
        assert_eq!(ms(LONGEST_WAIT), libc::c_int::MAX);
    }
}
