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
        // pipeloop asks for POLLRDHUP only on Linux (FreeBSD and illumos
        // have one too, with another value); elsewhere a closed writer is
        // POLLHUP. Nothing reads this bit where it is 0 (see
        // `Event::is_read_closed`).
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

/// What `Events` holds: the events in the shared format and, for kqueue,
/// the kernel's buffer they are translated from. Both are allocated once, at
/// `Events::with_capacity`, so polling never allocates.
pub(crate) struct EventBuf {
    pub(crate) events: Vec<RawEvent>,
    #[cfg(pipeloop_kqueue)]
    pub(crate) kevents: KeventBuf,
}

impl EventBuf {
    pub(crate) fn with_capacity(capacity: usize) -> EventBuf {
        EventBuf {
            events: Vec::with_capacity(capacity),
            #[cfg(pipeloop_kqueue)]
            kevents: KeventBuf(Vec::with_capacity(capacity)),
        }
    }
}

/// kevent's `udata` is a pointer, which makes `Vec<kevent>` neither `Send`
/// nor `Sync`; pipeloop only ever stores a token in it.
#[cfg(pipeloop_kqueue)]
pub(crate) struct KeventBuf(pub(crate) Vec<libc::kevent>);

// SAFETY: `udata` holds a token number and is never dereferenced, so the
// buffer is plain data.
#[cfg(pipeloop_kqueue)]
unsafe impl Send for KeventBuf {}
// SAFETY: as above.
#[cfg(pipeloop_kqueue)]
unsafe impl Sync for KeventBuf {}

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
