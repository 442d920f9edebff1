//! The one in-memory event format every backend writes.
//!
//! Where epoll exists it is `libc::epoll_event`, so `epoll_wait` fills the
//! `Events` buffer directly; elsewhere a struct of the same shape. The flag
//! bits are epoll's where epoll exists and poll(2)'s elsewhere; backends
//! refer to them only by the names in [`flags`].

use crate::Token;

#[cfg(pipeloop_epoll)]
pub(crate) type RawEvent = libc::epoll_event;

/// An event: flag bits and the token, as in `epoll_event`.
#[cfg(not(pipeloop_epoll))]
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct RawEvent {
    pub(crate) events: u32,
    pub(crate) u64: u64,
}

pub(crate) mod flags {
    #[cfg(pipeloop_epoll)]
    mod bits {
        pub(crate) const IN: u32 = libc::EPOLLIN as u32;
        pub(crate) const PRI: u32 = libc::EPOLLPRI as u32;
        pub(crate) const OUT: u32 = libc::EPOLLOUT as u32;
        pub(crate) const ERR: u32 = libc::EPOLLERR as u32;
        pub(crate) const HUP: u32 = libc::EPOLLHUP as u32;
        pub(crate) const RDHUP: u32 = libc::EPOLLRDHUP as u32;
    }

    #[cfg(not(pipeloop_epoll))]
    mod bits {
        pub(crate) const IN: u32 = libc::POLLIN as u32;
        pub(crate) const PRI: u32 = libc::POLLPRI as u32;
        pub(crate) const OUT: u32 = libc::POLLOUT as u32;
        pub(crate) const ERR: u32 = libc::POLLERR as u32;
        pub(crate) const HUP: u32 = libc::POLLHUP as u32;
        // Only Linux has POLLRDHUP; elsewhere a closed writer is POLLHUP.
        pub(crate) const RDHUP: u32 = 0;
    }

    pub(crate) use bits::*;

    /// The flag names for `Debug` output, e.g. `EPOLLIN | EPOLLRDHUP`.
    pub(crate) const NAMES: [(u32, &str); 6] = [
        (
            IN,
            if cfg!(pipeloop_epoll) {
                "EPOLLIN"
            } else {
                "POLLIN"
            },
        ),
        (
            PRI,
            if cfg!(pipeloop_epoll) {
                "EPOLLPRI"
            } else {
                "POLLPRI"
            },
        ),
        (
            OUT,
            if cfg!(pipeloop_epoll) {
                "EPOLLOUT"
            } else {
                "POLLOUT"
            },
        ),
        (
            ERR,
            if cfg!(pipeloop_epoll) {
                "EPOLLERR"
            } else {
                "POLLERR"
            },
        ),
        (
            HUP,
            if cfg!(pipeloop_epoll) {
                "EPOLLHUP"
            } else {
                "POLLHUP"
            },
        ),
        (
            RDHUP,
            if cfg!(pipeloop_epoll) {
                "EPOLLRDHUP"
            } else {
                "POLLRDHUP"
            },
        ),
    ];
}

pub(crate) fn new(token: Token, flags: u32) -> RawEvent {
    RawEvent {
        events: flags,
        u64: token.0 as u64,
    }
}

pub(crate) fn token(event: &RawEvent) -> Token {
    // Braces copy the field out: `epoll_event` is packed on x86_64.
    Token({ event.u64 } as usize)
}

pub(crate) fn bits(event: &RawEvent) -> u32 {
    event.events
}
