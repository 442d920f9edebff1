use std::fmt;

use crate::Token;
use crate::sys::RawEvent;
use crate::sys::event::{self as raw, flags};

/// A readiness event: which [`Token`] is ready, and for what.
///
/// Events are read from [`Events`](crate::Events) after
/// [`Poll::poll`](crate::Poll::poll). Readiness is a hint, not a promise:
/// after `is_readable` a read can still return
/// [`WouldBlock`](std::io::ErrorKind::WouldBlock), and the caller must be
/// ready for that.
///
/// # Closed peers
///
/// For pipes the closed flags mean the same on every backend: when every
/// writer is gone the receiver gets [`is_read_closed`](Event::is_read_closed)
/// (reads then return the remaining bytes and then 0); when every reader is
/// gone the sender gets [`is_write_closed`](Event::is_write_closed) and
/// [`is_error`](Event::is_error) (writes then fail with
/// [`BrokenPipe`](std::io::ErrorKind::BrokenPipe)). In edge mode that event
/// is the last one for the source.
///
/// # Examples
///
/// ```
/// use pipeloop::{Events, Interest, Poll, Token};
///
/// let mut poll = Poll::new()?;
/// let (mut sender, receiver) = pipeloop::pipe::new()?;
/// poll.registry().register(&mut sender, Token(1), Interest::WRITABLE)?;
/// drop(receiver);
///
/// let mut events = Events::with_capacity(4);
/// poll.poll(&mut events, None)?;
/// let event = events.iter().next().unwrap();
/// assert_eq!(event.token(), Token(1));
/// assert!(event.is_write_closed() && event.is_error());
/// # Ok::<(), std::io::Error>(())
/// ```
#[repr(transparent)]
pub struct Event {
    inner: RawEvent,
}

impl Event {
    pub(crate) fn from_raw(raw: &RawEvent) -> &Event {
        // SAFETY: `Event` is `repr(transparent)` over `RawEvent`.
        unsafe { &*(raw as *const RawEvent).cast::<Event>() }
    }

    fn flags(&self) -> u32 {
        raw::bits(&self.inner)
    }

    /// The token the source was registered with.
    pub fn token(&self) -> Token {
        raw::token(&self.inner)
    }

    /// The source has bytes to read (`EPOLLIN`, `POLLIN`) or priority data.
    ///
    /// An empty pipe whose writer is gone is not readable but
    /// [`is_read_closed`](Event::is_read_closed); a read returns 0 at once.
    pub fn is_readable(&self) -> bool {
        self.flags() & (flags::IN | flags::PRI) != 0
    }

    /// The source can be written to.
    pub fn is_writable(&self) -> bool {
        self.flags() & flags::OUT != 0
    }

    /// An error is pending on the source (`EPOLLERR`, `POLLERR`). For a pipe
    /// sender this comes with [`is_write_closed`](Event::is_write_closed).
    pub fn is_error(&self) -> bool {
        self.flags() & flags::ERR != 0
    }

    /// The reading side is closed: for a pipe receiver, every writer is gone.
    pub fn is_read_closed(&self) -> bool {
        let f = self.flags();
        // Only epoll (and poll(2) on Linux) has RDHUP: the peer shut down
        // its writing side, reported with readable.
        #[cfg(pipeloop_epoll)]
        let rdhup = f & flags::IN != 0 && f & flags::RDHUP != 0;
        #[cfg(not(pipeloop_epoll))]
        let rdhup = false;
        f & flags::HUP != 0 || rdhup
    }

    /// The writing side is closed: for a pipe sender, every reader is gone.
    pub fn is_write_closed(&self) -> bool {
        let f = self.flags();
        f & flags::HUP != 0 || (f & flags::OUT != 0 && f & flags::ERR != 0) || f == flags::ERR
    }

    /// Priority data is ready (`EPOLLPRI`, `POLLPRI`).
    pub fn is_priority(&self) -> bool {
        self.flags() & flags::PRI != 0
    }

    /// An AIO operation completed: always `false`. mio has this on every
    /// platform (true only for kqueue's `EVFILT_AIO`, which pipeloop never
    /// registers); it is kept so that code written for mio compiles
    /// unchanged.
    pub fn is_aio(&self) -> bool {
        false
    }

    /// An LIO operation completed: always `false`, as
    /// [`is_aio`](Event::is_aio) and for the same reason.
    pub fn is_lio(&self) -> bool {
        false
    }
}

/// Prints the flag names, as in `EPOLLIN | EPOLLRDHUP`.
struct FlagNames(u32);

impl fmt::Debug for FlagNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (bit, name) in flags::NAMES {
            if bit != 0 && self.0 & bit != 0 {
                write!(f, "{sep}{name}")?;
                sep = " | ";
            }
        }
        if sep.is_empty() {
            write!(f, "(empty)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("token", &self.token())
            .field("readable", &self.is_readable())
            .field("writable", &self.is_writable())
            .field("error", &self.is_error())
            .field("read_closed", &self.is_read_closed())
            .field("write_closed", &self.is_write_closed())
            .field("priority", &self.is_priority())
            .field("flags", &FlagNames(self.flags()))
            .finish()
    }
}
