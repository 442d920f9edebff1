//! The translations between pipeloop's interests and events and kqueue's
//! filters and flags, as plain functions over integers.
//!
//! The kqueue backend's system calls only compile on macOS and the BSDs, but
//! these functions (and `core.rs`, which uses them) compile everywhere, so
//! that `cargo test` checks them on Linux too, with the constants of the
//! BSDs written out in the tests.
//!
//! The per-OS types (NetBSD's `filter` and `flags` are `u32` where the others
//! have `i16`/`u16`) are widened here to `i32` and `u32` ([`Kev`]);
//! `kqueue/mod.rs` converts them back in one place.

use super::super::event::flags;
use crate::Interest;

/// One kevent in widths that hold every OS's fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Kev {
    pub(crate) ident: usize,
    pub(crate) filter: i32,
    pub(crate) flags: u32,
    pub(crate) fflags: u32,
    pub(crate) data: i64,
    pub(crate) udata: usize,
}

/// kqueue's constants, as this backend needs them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Consts {
    pub(crate) evfilt_read: i32,
    pub(crate) evfilt_write: i32,
    pub(crate) evfilt_user: i32,
    pub(crate) evfilt_timer: i32,
    pub(crate) ev_add: u32,
    pub(crate) ev_delete: u32,
    pub(crate) ev_enable: u32,
    pub(crate) ev_disable: u32,
    pub(crate) ev_oneshot: u32,
    pub(crate) ev_clear: u32,
    pub(crate) ev_dispatch: u32,
    pub(crate) ev_receipt: u32,
    pub(crate) ev_eof: u32,
    pub(crate) ev_error: u32,
    pub(crate) note_trigger: u32,
}

/// This system's values.
#[cfg(pipeloop_kqueue)]
#[allow(clippy::unnecessary_cast)] // the widths differ per OS
pub(crate) const OS: Consts = Consts {
    evfilt_read: libc::EVFILT_READ as i32,
    evfilt_write: libc::EVFILT_WRITE as i32,
    evfilt_user: libc::EVFILT_USER as i32,
    evfilt_timer: libc::EVFILT_TIMER as i32,
    ev_add: libc::EV_ADD as u32,
    ev_delete: libc::EV_DELETE as u32,
    ev_enable: libc::EV_ENABLE as u32,
    ev_disable: libc::EV_DISABLE as u32,
    ev_oneshot: libc::EV_ONESHOT as u32,
    ev_clear: libc::EV_CLEAR as u32,
    ev_dispatch: libc::EV_DISPATCH as u32,
    ev_receipt: libc::EV_RECEIPT as u32,
    ev_eof: libc::EV_EOF as u32,
    ev_error: libc::EV_ERROR as u32,
    #[cfg(pipeloop_evfilt_user)]
    note_trigger: libc::NOTE_TRIGGER as u32,
    #[cfg(not(pipeloop_evfilt_user))]
    note_trigger: 0,
};

/// FreeBSD's values (sys/event.h); macOS, OpenBSD and DragonFly share the
/// flags and the read/write filters. The scripted kernel uses them.
#[cfg(test)]
pub(crate) const FREEBSD: Consts = Consts {
    evfilt_read: -1,
    evfilt_write: -2,
    evfilt_timer: -7,
    evfilt_user: -11,
    ev_add: 0x0001,
    ev_delete: 0x0002,
    ev_enable: 0x0004,
    ev_disable: 0x0008,
    ev_oneshot: 0x0010,
    ev_clear: 0x0020,
    ev_receipt: 0x0040,
    ev_dispatch: 0x0080,
    ev_eof: 0x8000,
    ev_error: 0x4000,
    note_trigger: 0x0100_0000,
};

/// NetBSD's: unsigned filters numbered from 0.
#[cfg(test)]
pub(crate) const NETBSD: Consts = Consts {
    evfilt_read: 0,
    evfilt_write: 1,
    evfilt_timer: 6,
    evfilt_user: 8,
    ..FREEBSD
};

/// The filters a registration has, as bits.
pub(crate) const READ: u8 = 1;
pub(crate) const WRITE: u8 = 2;

/// The filters `interest` needs. kqueue has no priority filter for
/// pipes, and `Interest::PRIORITY` does not exist on these systems.
pub(crate) fn filters_of(interest: Interest) -> u8 {
    let mut set = 0;
    if interest.is_readable() {
        set |= READ;
    }
    if interest.is_writable() {
        set |= WRITE;
    }
    set
}

/// The filter for one bit of a filter set.
pub(crate) fn filter(bit: u8, c: &Consts) -> i32 {
    if bit == READ {
        c.evfilt_read
    } else {
        c.evfilt_write
    }
}

/// The mode flags a filter is created with: `EV_CLEAR` for edge (as mio;
/// for pipeloop's own pipe ends the backend holds back what is not news,
/// see `core::Slot::is_filtered`), nothing for level, `EV_DISPATCH` for
/// oneshot (reported once, then disabled but kept, like `EPOLLONESHOT`;
/// `EV_ONESHOT` would delete it, so a reregister could not tell it from an
/// unknown fd). Never `EV_CLEAR | EV_DISPATCH`: NetBSD's scan tests
/// `EV_CLEAR` first and would never disable it.
pub(crate) fn mode_flags(interest: Interest, c: &Consts) -> u32 {
    if interest.is_oneshot() {
        c.ev_dispatch
    } else if interest.is_edge() {
        c.ev_clear
    } else {
        0
    }
}

/// The pipeloop event flags for one kevent, so that `Event` means the same
/// as on epoll and poll(2):
///
/// - `EVFILT_READ`: readable, unless `EV_EOF` says the writer is gone with
///   nothing left (`data`, the bytes left, is 0): then only read-closed, as
///   epoll's bare `EPOLLHUP`. With bytes left, both.
/// - `EVFILT_WRITE`: writable; with `EV_EOF` (the reader is gone) also an
///   error, so that `is_write_closed` and `is_error` hold, as epoll's
///   `EPOLLOUT | EPOLLERR`.
/// - `EVFILT_USER` (a waker): readable.
/// - `EV_ERROR`, or `EV_EOF` with an error in `fflags` (sockets): error.
pub(crate) fn event_flags(filter: i32, kflags: u32, fflags: u32, data: i64, c: &Consts) -> u32 {
    let eof = kflags & c.ev_eof != 0;
    let mut out = 0;
    if filter == c.evfilt_read {
        if eof {
            out |= flags::HUP;
        }
        if !eof || data > 0 {
            out |= flags::IN;
        }
    } else if filter == c.evfilt_write {
        out |= flags::OUT;
        if eof {
            out |= flags::ERR;
        }
    } else if filter == c.evfilt_user {
        out |= flags::IN;
    }
    if kflags & c.ev_error != 0 || (eof && fflags != 0) {
        out |= flags::ERR;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Token;
    use crate::event::Event;
    use crate::sys::event as raw;

    /// What `Event` says of these flags.
    #[derive(Debug)]
    struct Seen {
        readable: bool,
        writable: bool,
        error: bool,
        read_closed: bool,
        write_closed: bool,
    }

    impl Seen {
        fn is_readable(&self) -> bool {
            self.readable
        }
        fn is_writable(&self) -> bool {
            self.writable
        }
        fn is_error(&self) -> bool {
            self.error
        }
        fn is_read_closed(&self) -> bool {
            self.read_closed
        }
        fn is_write_closed(&self) -> bool {
            self.write_closed
        }
    }

    fn event(flags: u32) -> Seen {
        let raw = raw::new(Token(7), flags);
        let e = Event::from_raw(&raw);
        Seen {
            readable: e.is_readable(),
            writable: e.is_writable(),
            error: e.is_error(),
            read_closed: e.is_read_closed(),
            write_closed: e.is_write_closed(),
        }
    }

    #[test]
    fn modes_pick_clear_nothing_or_dispatch() {
        for c in [FREEBSD, NETBSD] {
            let edge = Interest::READABLE;
            assert_eq!(mode_flags(edge, &c), c.ev_clear);
            assert_eq!(mode_flags(edge.level(), &c), 0);
            assert_eq!(mode_flags(edge.oneshot(), &c), c.ev_dispatch);
        }
    }

    #[test]
    fn a_closed_writer_is_read_closed_and_readable_only_with_bytes_left() {
        for c in [FREEBSD, NETBSD] {
            // End of file with 0 bytes: only read-closed. Never writable,
            // although the write filter sets writable with every EV_EOF.
            let empty = event(event_flags(c.evfilt_read, c.ev_eof, 0, 0, &c));
            assert!(empty.is_read_closed() && !empty.is_readable() && !empty.is_error());
            assert!(!empty.is_writable(), "{empty:?}");
            let left = event(event_flags(c.evfilt_read, c.ev_eof, 0, 5, &c));
            assert!(left.is_read_closed() && left.is_readable());
            assert!(!left.is_writable() && !left.is_error(), "{left:?}");
            let data = event(event_flags(c.evfilt_read, 0, 0, 5, &c));
            assert!(data.is_readable() && !data.is_read_closed() && !data.is_writable());
        }
    }

    #[test]
    fn a_closed_reader_is_write_closed_and_an_error() {
        for c in [FREEBSD, NETBSD] {
            let open = event(event_flags(c.evfilt_write, 0, 0, 4096, &c));
            assert!(open.is_writable() && !open.is_write_closed() && !open.is_error());
            // No room (data 0) and the reader gone: still writable, as
            // src/pipe documents for kqueue.
            let closed = event(event_flags(c.evfilt_write, c.ev_eof, 0, 0, &c));
            assert!(closed.is_write_closed() && closed.is_error());
            assert!(closed.is_writable(), "{closed:?}");
            assert!(!closed.is_readable() && !closed.is_read_closed());
        }
    }

    #[test]
    fn ev_error_and_a_socket_error_with_eof_are_errors() {
        let c = FREEBSD;
        assert!(event(event_flags(c.evfilt_read, c.ev_error, 0, 0, &c)).is_error());
        let reset = event(event_flags(
            c.evfilt_read,
            c.ev_eof,
            libc::ECONNRESET as u32,
            0,
            &c,
        ));
        assert!(reset.is_error() && reset.is_read_closed());
    }

    #[test]
    fn a_user_event_is_a_readable_wake() {
        for c in [FREEBSD, NETBSD] {
            let wake = event(event_flags(c.evfilt_user, c.ev_clear, 0, 0, &c));
            assert!(wake.is_readable() && !wake.is_writable() && !wake.is_error());
        }
    }
}
