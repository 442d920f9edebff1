//! The translations between pipeloop's interests and events and kqueue's
//! filters and flags, as plain functions over integers.
//!
//! The kqueue backend (`kqueue.rs`) only compiles on macOS and the BSDs, but
//! these functions compile everywhere, so that `cargo test` checks them on
//! Linux too, with the constants of the BSDs written out in the tests.
//!
//! The per-OS types (NetBSD's `filter` and `flags` are `u32` where the others
//! have `i16`/`u16`) are widened here to `i32` and `u32`; `kqueue.rs`
//! converts them back in one place.

use super::event::flags;
use crate::Interest;

/// kqueue's constants, as this module needs them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Consts {
    pub(crate) evfilt_read: i32,
    pub(crate) evfilt_write: i32,
    pub(crate) evfilt_user: i32,
    pub(crate) ev_add: u32,
    pub(crate) ev_delete: u32,
    pub(crate) ev_enable: u32,
    pub(crate) ev_clear: u32,
    pub(crate) ev_dispatch: u32,
    pub(crate) ev_receipt: u32,
    pub(crate) ev_eof: u32,
    pub(crate) ev_error: u32,
}

/// This system's values.
#[cfg(pipeloop_kqueue)]
#[allow(clippy::unnecessary_cast)] // the widths differ per OS
pub(crate) const OS: Consts = Consts {
    evfilt_read: libc::EVFILT_READ as i32,
    evfilt_write: libc::EVFILT_WRITE as i32,
    evfilt_user: libc::EVFILT_USER as i32,
    ev_add: libc::EV_ADD as u32,
    ev_delete: libc::EV_DELETE as u32,
    ev_enable: libc::EV_ENABLE as u32,
    ev_clear: libc::EV_CLEAR as u32,
    ev_dispatch: libc::EV_DISPATCH as u32,
    ev_receipt: libc::EV_RECEIPT as u32,
    ev_eof: libc::EV_EOF as u32,
    ev_error: libc::EV_ERROR as u32,
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

/// One change for `kevent`: a filter and its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) filter: i32,
    pub(crate) flags: u32,
}

/// The most changes one registration change needs: a delete and an add
/// per filter.
pub(crate) const MAX_CHANGES: usize = 4;

/// The changes that take an fd from the registration `old` to `new` (`None`:
/// not registered). Every change asks for a receipt (`EV_RECEIPT`), so each
/// one's error comes back on its own.
///
/// Adding a filter that exists updates its token and re-enables it, but the
/// kernels (FreeBSD, macOS, OpenBSD, DragonFly) keep the `EV_CLEAR` and
/// `EV_DISPATCH` it was created with. So when the mode changes, a kept
/// filter is deleted and added again; the new one is evaluated at once, as
/// epoll's `EPOLL_CTL_MOD` does.
pub(crate) fn changes(
    old: Option<Interest>,
    new: Option<Interest>,
    c: &Consts,
) -> ([Change; MAX_CHANGES], usize) {
    let had = old.map_or(0, filters_of);
    let wanted = new.map_or(0, filters_of);
    let mode_changed = match (old, new) {
        (Some(old), Some(new)) => add_flags(old, c) != add_flags(new, c),
        _ => false,
    };
    let delete = c.ev_delete | c.ev_receipt;
    let mut out = [Change {
        filter: 0,
        flags: 0,
    }; MAX_CHANGES];
    let mut n = 0;
    let mut push = |filter, flags| {
        out[n] = Change { filter, flags };
        n += 1;
    };
    for (bit, filter) in [(READ, c.evfilt_read), (WRITE, c.evfilt_write)] {
        match new {
            Some(interest) if wanted & bit != 0 => {
                if had & bit != 0 && mode_changed {
                    push(filter, delete);
                }
                push(filter, add_flags(interest, c));
            }
            _ if had & bit != 0 => push(filter, delete),
            _ => {}
        }
    }
    (out, n)
}

/// The flags that add (or update, or re-enable) one filter in `interest`'s
/// mode: `EV_CLEAR` for edge, nothing for level, `EV_DISPATCH` for oneshot
/// (reported once, then disabled but kept, like `EPOLLONESHOT`; `EV_ONESHOT`
/// would delete it, so a reregister could not tell it from an unknown fd).
pub(crate) fn add_flags(interest: Interest, c: &Consts) -> u32 {
    let mode = if interest.is_oneshot() {
        c.ev_dispatch
    } else if interest.is_edge() {
        c.ev_clear
    } else {
        0
    };
    c.ev_add | c.ev_enable | c.ev_receipt | mode
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

    /// FreeBSD's values (sys/event.h); macOS, OpenBSD and DragonFly share
    /// the flags and the read/write filters.
    const FREEBSD: Consts = Consts {
        evfilt_read: -1,
        evfilt_write: -2,
        evfilt_user: -11,
        ev_add: 0x0001,
        ev_delete: 0x0002,
        ev_enable: 0x0004,
        ev_clear: 0x0020,
        ev_dispatch: 0x0080,
        ev_receipt: 0x0040,
        ev_eof: 0x8000,
        ev_error: 0x4000,
    };

    /// NetBSD's: unsigned filters numbered from 0.
    const NETBSD: Consts = Consts {
        evfilt_read: 0,
        evfilt_write: 1,
        evfilt_user: 8,
        ..FREEBSD
    };

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
    fn edge_level_and_oneshot_pick_clear_nothing_and_dispatch() {
        for c in [FREEBSD, NETBSD] {
            let base = c.ev_add | c.ev_enable | c.ev_receipt;
            assert_eq!(add_flags(Interest::READABLE, &c), base | c.ev_clear);
            assert_eq!(add_flags(Interest::READABLE.level(), &c), base);
            assert_eq!(
                add_flags(Interest::READABLE.oneshot(), &c),
                base | c.ev_dispatch
            );
        }
    }

    #[test]
    fn register_adds_one_filter_per_direction() {
        let c = FREEBSD;
        let both = Interest::READABLE | Interest::WRITABLE;
        let (list, n) = changes(None, Some(both), &c);
        assert_eq!(n, 2);
        assert_eq!(list[0].filter, c.evfilt_read);
        assert_eq!(list[1].filter, c.evfilt_write);
        assert!(
            list[..n]
                .iter()
                .all(|ch| ch.flags & c.ev_add != 0 && ch.flags & c.ev_receipt != 0)
        );

        let (list, n) = changes(None, Some(Interest::WRITABLE.level()), &NETBSD);
        assert_eq!((n, list[0].filter), (1, NETBSD.evfilt_write));
    }

    #[test]
    fn reregister_deletes_the_filters_no_longer_wanted() {
        let c = FREEBSD;
        let (list, n) = changes(Some(Interest::READABLE), Some(Interest::WRITABLE), &c);
        assert_eq!(n, 2);
        assert_eq!(
            list[0],
            Change {
                filter: c.evfilt_read,
                flags: c.ev_delete | c.ev_receipt
            }
        );
        assert_eq!(list[1].filter, c.evfilt_write);
        assert_ne!(list[1].flags & c.ev_add, 0);
    }

    #[test]
    fn deregister_deletes_every_registered_filter() {
        let c = NETBSD;
        let both = Interest::READABLE | Interest::WRITABLE;
        let (list, n) = changes(Some(both), None, &c);
        assert_eq!(n, 2);
        for ch in &list[..n] {
            assert_eq!(ch.flags, c.ev_delete | c.ev_receipt);
        }
        assert_eq!(changes(None, None, &c).1, 0);
    }

    /// The kernels keep a filter's EV_CLEAR/EV_DISPATCH from its creation,
    /// so a mode change must delete and re-add it.
    #[test]
    fn a_mode_change_deletes_and_re_adds_the_filter() {
        let c = FREEBSD;
        let delete = c.ev_delete | c.ev_receipt;
        let (list, n) = changes(
            Some(Interest::READABLE),
            Some(Interest::READABLE.oneshot()),
            &c,
        );
        assert_eq!(n, 2);
        assert_eq!(
            list[0],
            Change {
                filter: c.evfilt_read,
                flags: delete
            }
        );
        assert_eq!(list[1].flags, add_flags(Interest::READABLE.oneshot(), &c));

        // Same mode: a plain update (new token), no delete.
        let (list, n) = changes(Some(Interest::READABLE), Some(Interest::READABLE), &c);
        assert_eq!((n, list[0].flags & c.ev_delete), (1, 0));

        // Both filters, edge to level: delete and add each.
        let both = Interest::READABLE | Interest::WRITABLE;
        let (list, n) = changes(Some(both), Some(both.level()), &c);
        assert_eq!(n, MAX_CHANGES);
        assert_eq!(
            list[2],
            Change {
                filter: c.evfilt_write,
                flags: delete
            }
        );
    }

    #[test]
    fn a_closed_writer_is_read_closed_and_readable_only_with_bytes_left() {
        for c in [FREEBSD, NETBSD] {
            let empty = event(event_flags(c.evfilt_read, c.ev_eof, 0, 0, &c));
            assert!(empty.is_read_closed() && !empty.is_readable() && !empty.is_error());
            let left = event(event_flags(c.evfilt_read, c.ev_eof, 0, 5, &c));
            assert!(left.is_read_closed() && left.is_readable());
            let data = event(event_flags(c.evfilt_read, 0, 0, 5, &c));
            assert!(data.is_readable() && !data.is_read_closed() && !data.is_writable());
        }
    }

    #[test]
    fn a_closed_reader_is_write_closed_and_an_error() {
        for c in [FREEBSD, NETBSD] {
            let open = event(event_flags(c.evfilt_write, 0, 0, 4096, &c));
            assert!(open.is_writable() && !open.is_write_closed() && !open.is_error());
            let closed = event(event_flags(c.evfilt_write, c.ev_eof, 0, 0, &c));
            assert!(closed.is_write_closed() && closed.is_error());
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
