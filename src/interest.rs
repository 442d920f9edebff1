use std::num::NonZeroU8;
use std::{fmt, ops};

// Direction bits.
const READABLE: u8 = 0b0000_0001;
const WRITABLE: u8 = 0b0000_0010;
#[cfg(pipeloop_linux)]
const PRIORITY: u8 = 0b0000_0100;
const DIRECTIONS: u8 = 0b0000_0111;
// Trigger-mode bits; neither set means edge-triggered.
const LEVEL: u8 = 0b0100_0000;
const ONESHOT: u8 = 0b1000_0000;
const MODES: u8 = LEVEL | ONESHOT;

/// The readiness a [`Source`](crate::event::Source) is registered for, and
/// how it is reported (the trigger mode).
///
/// The directions are [`READABLE`](Interest::READABLE),
/// [`WRITABLE`](Interest::WRITABLE) and, on Linux and Android,
/// [`PRIORITY`](Interest::PRIORITY); combine them with `|` or
/// [`add`](Interest::add). An `Interest` always names at least one direction,
/// so an empty interest cannot be built.
///
/// # Trigger modes
///
/// The mode rides inside the interest so that
/// [`Source`](crate::event::Source) keeps mio's signature. Every backend
/// honours all three:
///
/// - **edge** (the default, as in mio): readiness is reported when it
///   appears. Once an operation on the source returned
///   [`WouldBlock`](std::io::ErrorKind::WouldBlock) (or, for pipeloop's own
///   pipes, after a short read or write, see [`pipe`](crate::pipe)), the next
///   readiness is reported again: drain the source before polling again.
///   Before that, a backend may or may not report more (epoll reports
///   every write to a pipe on most Linux kernels, though not between 5.5
///   and 5.15; poll(2) does not); never rely on such extra events.
/// - **level** ([`level`](Interest::level)): readiness is reported on every
///   poll for as long as it lasts.
/// - **oneshot** ([`oneshot`](Interest::oneshot)): readiness is reported
///   once, then the registration is disabled until
///   [`Registry::reregister`](crate::Registry::reregister) arms it again. If
///   the source is ready when (re)armed it is reported at once.
///
/// If modes are combined (`a | b`), oneshot wins over level, and level over
/// edge.
///
/// # Examples
///
/// ```
/// use pipeloop::Interest;
///
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable() && both.is_edge());
///
/// let level = Interest::READABLE.level();
/// assert!(level.is_level() && !level.is_writable());
///
/// assert_eq!(both.remove(Interest::WRITABLE), Some(Interest::READABLE));
/// assert_eq!(Interest::READABLE.remove(Interest::READABLE), None);
/// ```
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interest(NonZeroU8);

impl Interest {
    /// Interest in readable events.
    pub const READABLE: Interest = Interest::from_bits(READABLE);
    /// Interest in writable events.
    pub const WRITABLE: Interest = Interest::from_bits(WRITABLE);
    /// Interest in priority events (`EPOLLPRI`, `POLLPRI`): out-of-band data
    /// on sockets, state changes on some `/proc` and `/sys` files.
    #[cfg(pipeloop_linux)]
    pub const PRIORITY: Interest = Interest::from_bits(PRIORITY);

    const fn from_bits(bits: u8) -> Interest {
        match NonZeroU8::new(bits) {
            Some(bits) => Interest(bits),
            None => panic!("an Interest has at least one direction"),
        }
    }

    const fn bits(self) -> u8 {
        self.0.get()
    }

    /// Adds the directions (and mode) of `other` to `self`; the same as `|`.
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        Interest::from_bits(self.bits() | other.bits())
    }

    /// Removes the directions of `other` from `self`, keeping `self`'s mode.
    ///
    /// Returns `None` if no direction would be left, because an interest in
    /// nothing cannot be registered.
    #[must_use]
    pub const fn remove(self, other: Interest) -> Option<Interest> {
        let left = self.bits() & !(other.bits() & DIRECTIONS);
        if left & DIRECTIONS == 0 {
            None
        } else {
            Some(Interest::from_bits(left))
        }
    }

    /// The directions of `self` that are also in `directions`, in `self`'s
    /// mode (`directions`' mode is ignored).
    ///
    /// Returns `None` if they share no direction. What a pipe end registers:
    /// see `pipe::direction`.
    pub(crate) const fn keep(self, directions: Interest) -> Option<Interest> {
        let left = self.bits() & ((directions.bits() & DIRECTIONS) | MODES);
        if left & DIRECTIONS == 0 {
            None
        } else {
            Some(Interest::from_bits(left))
        }
    }

    /// The same directions, edge-triggered (the default).
    #[must_use]
    pub const fn edge(self) -> Interest {
        Interest::from_bits(self.bits() & !MODES)
    }

    /// The same directions, level-triggered: reported on every poll while
    /// the readiness lasts.
    #[must_use]
    pub const fn level(self) -> Interest {
        Interest::from_bits((self.bits() & !MODES) | LEVEL)
    }

    /// The same directions, oneshot: reported once, then disabled until the
    /// source is reregistered.
    #[must_use]
    pub const fn oneshot(self) -> Interest {
        Interest::from_bits((self.bits() & !MODES) | ONESHOT)
    }

    /// Whether the interest includes readable.
    pub const fn is_readable(self) -> bool {
        self.bits() & READABLE != 0
    }

    /// Whether the interest includes writable.
    pub const fn is_writable(self) -> bool {
        self.bits() & WRITABLE != 0
    }

    /// Whether the interest includes AIO readiness: always `false`. mio has
    /// it on every platform (`Interest::AIO` on FreeBSD, DragonFly and
    /// Apple's systems); pipeloop has no AIO interest, and keeps the method
    /// so that code written for mio compiles unchanged.
    pub const fn is_aio(self) -> bool {
        false
    }

    /// Whether the interest includes LIO readiness: always `false`, as
    /// [`is_aio`](Interest::is_aio) and for the same reason (mio's
    /// `Interest::LIO` exists on FreeBSD only).
    pub const fn is_lio(self) -> bool {
        false
    }

    /// Whether the interest includes priority (always `false` where
    /// [`PRIORITY`](Interest::PRIORITY) does not exist).
    pub const fn is_priority(self) -> bool {
        #[cfg(pipeloop_linux)]
        {
            self.bits() & PRIORITY != 0
        }
        #[cfg(not(pipeloop_linux))]
        {
            false
        }
    }

    /// Whether readiness is edge-triggered (neither level nor oneshot).
    pub const fn is_edge(self) -> bool {
        self.bits() & MODES == 0
    }

    /// Whether readiness is level-triggered.
    pub const fn is_level(self) -> bool {
        self.bits() & MODES == LEVEL
    }

    /// Whether the registration is oneshot.
    pub const fn is_oneshot(self) -> bool {
        self.bits() & ONESHOT != 0
    }
}

impl ops::BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, other: Interest) {
        *self = self.add(other);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (set, name) in [
            (self.is_readable(), "READABLE"),
            (self.is_writable(), "WRITABLE"),
            (self.is_priority(), "PRIORITY"),
        ] {
            if set {
                write!(f, "{sep}{name}")?;
                sep = " | ";
            }
        }
        // mio's format (`READABLE | WRITABLE`); the mode only when it is
        // not the default.
        if self.is_oneshot() {
            f.write_str(", oneshot")
        } else if self.is_level() {
            f.write_str(", level")
        } else {
            Ok(())
        }
    }
}
