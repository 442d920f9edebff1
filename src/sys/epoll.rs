//! The epoll(7) backend (Linux, Android).
//!
//! The kernel keeps every registration; this side keeps no state per fd. The
//! trigger mode maps straight onto epoll's flags: `EPOLLET` for edge, nothing
//! for level, `EPOLLONESHOT` for oneshot. Readable interest also asks for
//! `EPOLLRDHUP`, so a peer that shut down its writing side is seen without a
//! read.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{PipeWaker, Registration, cvt, owned};
use crate::{Interest, Token};

#[derive(Debug)]
pub(crate) struct Selector {
    ep: OwnedFd,
}

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        // SAFETY: epoll_create1 takes only flags.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Selector { ep: owned(ep) })
    }

    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<Registration> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, Some((token, interest)))?;
        Ok(Registration::NONE)
    }

    pub(crate) fn reregister(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<Registration> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, Some((token, interest)))?;
        Ok(Registration::NONE)
    }

    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, None)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, what: Option<(Token, Interest)>) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: what.map_or(0, |(_, interest)| interest_flags(interest)),
            u64: what.map_or(0, |(token, _)| token.0 as u64),
        };
        // SAFETY: `event` is a valid epoll_event for the duration of the call
        // (ignored by EPOLL_CTL_DEL); bad fds are reported as errors.
        cvt(unsafe { libc::epoll_ctl(self.ep.as_raw_fd(), op, fd, &mut event) })?;
        Ok(())
    }

    pub(crate) fn select(
        &self,
        buf: &mut super::event::EventBuf,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let events = &mut buf.events;
        events.clear();
        let max = events.capacity().min(libc::c_int::MAX as usize) as libc::c_int;
        // SAFETY: the buffer has room for `max` events; epoll_wait writes at
        // most that many and returns how many it wrote.
        let n = cvt(unsafe {
            libc::epoll_wait(
                self.ep.as_raw_fd(),
                events.as_mut_ptr(),
                max,
                super::timeout_ms(timeout),
            )
        })?;
        // SAFETY: epoll_wait initialised the first `n` (<= capacity) entries.
        unsafe { events.set_len(n as usize) };
        Ok(())
    }
}

/// The epoll flags for an interest.
pub(crate) fn interest_flags(interest: Interest) -> u32 {
    let mut flags = 0;
    if interest.is_readable() {
        flags |= libc::EPOLLIN | libc::EPOLLRDHUP;
    }
    if interest.is_writable() {
        flags |= libc::EPOLLOUT;
    }
    if interest.is_priority() {
        flags |= libc::EPOLLPRI;
    }
    if interest.is_oneshot() {
        flags |= libc::EPOLLONESHOT;
    } else if interest.is_edge() {
        flags |= libc::EPOLLET;
    }
    flags as u32
}

/// Wakes a blocked `epoll_wait`: an eventfd (or a pipe) registered
/// edge-triggered under the waker's token.
///
/// Every write to an eventfd is a new edge for epoll, so `wake` is one
/// `write` and nothing is read on the polling side: waking and seeing the
/// wake costs two syscalls. The counter is only reset when a write would
/// overflow it (`EAGAIN`), which takes 2^64 - 2 wakes. The pipe variant
/// drains itself when the pipe is full, for the same reason; it relies on
/// every pipe write waking epoll, which Linux did not do between 5.5 and
/// 5.15 (only the write into an empty pipe woke it there). That is one more
/// reason the eventfd is the default, and the pipe is kept only to measure
/// against.
#[derive(Debug)]
pub(crate) enum Waker {
    EventFd(OwnedFd),
    Pipe(PipeWaker),
}

impl Waker {
    pub(crate) fn new(selector: &Selector, token: Token) -> io::Result<Waker> {
        // SAFETY: eventfd takes an initial value and flags.
        let fd = owned(cvt(unsafe {
            libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK)
        })?);
        selector
            .register(fd.as_raw_fd(), token, Interest::READABLE)?
            .detach();
        Ok(Waker::EventFd(fd))
    }

    pub(crate) fn new_pipe(selector: &Selector, token: Token) -> io::Result<Waker> {
        let pipe = PipeWaker::new()?;
        selector
            .register(pipe.read_fd(), token, Interest::READABLE)?
            .detach();
        Ok(Waker::Pipe(pipe))
    }

    pub(crate) fn wake(&self) -> io::Result<()> {
        match self {
            Waker::EventFd(fd) => {
                let one = 1u64.to_ne_bytes();
                match super::write(fd.as_raw_fd(), &one) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // The counter is full: empty it, then wake.
                        let mut buf = [0u8; 8];
                        let _ = super::read(fd.as_raw_fd(), &mut buf);
                        super::write(fd.as_raw_fd(), &one).map(drop)
                    }
                    other => other.map(drop),
                }
            }
            Waker::Pipe(pipe) => pipe.wake(),
        }
    }
}
