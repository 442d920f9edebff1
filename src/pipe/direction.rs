//! The one direction a pipe end moves bytes in, and the interest it
//! registers for.
//!
//! The kernels disagree about interest in the direction an end cannot do:
//! epoll and poll(2) on Linux never report it; FreeBSD and OpenBSD open both
//! ends `FREAD | FWRITE` with a small reverse buffer, so a read end
//! registered for writable is reported writable (DragonFly's pipes are
//! full-duplex); NetBSD refuses `EVFILT_WRITE` on a read end with `EINVAL`
//! or never fires it, depending on the release; macOS stays quiet until the
//! pipe closes, then reports `EV_EOF` (docs/kqueue.md, row d). mio passes the interest through, so the same program behaves
//! differently on each OS. pipeloop promises the same events on every
//! backend, so it never asks the kernel for that direction: it is dropped
//! here, before the backend is called.

use std::io;

use crate::Interest;

/// Which way a pipe end moves bytes: a `Receiver` reads, a `Sender` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    Read,
    Write,
}

impl Direction {
    /// The end's one direction as an interest (edge-triggered).
    pub(super) const fn interest(self) -> Interest {
        match self {
            Direction::Read => Interest::READABLE,
            Direction::Write => Interest::WRITABLE,
        }
    }

    /// `asked` without the directions this end cannot do (the other one,
    /// and `PRIORITY`, which no pipe has), in `asked`'s mode; `None` if none
    /// of this end's own is left.
    pub(super) const fn mask(self, asked: Interest) -> Option<Interest> {
        asked.keep(self.interest())
    }

    /// The interest a (re)registration of this end hands to the backend.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if `asked` has none of
    /// this end's directions. Nothing has reached the backend then, so a
    /// registration stays exactly as it was.
    pub(super) fn registrable(self, asked: Interest) -> io::Result<Interest> {
        self.mask(asked).ok_or_else(|| self.cannot_register(asked))
    }

    #[cold]
    fn cannot_register(self, asked: Interest) -> io::Error {
        let (end, does, own) = match self {
            Direction::Read => ("pipe::Receiver", "only reads", "Interest::READABLE"),
            Direction::Write => ("pipe::Sender", "only writes", "Interest::WRITABLE"),
        };
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a {end} {does}, so it cannot be registered for {asked:?}; \
                 register it for {own} (in any mode) instead"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::{self, Read, Write};
    use crate::Interest;

    const R: Interest = Interest::READABLE;
    const W: Interest = Interest::WRITABLE;

    #[test]
    fn mask_keeps_the_ends_own_direction_and_the_mode() {
        let table: &[(Direction, Interest, Option<Interest>)] = &[
            (Read, R, Some(R)),
            (Read, R.level(), Some(R.level())),
            (Read, R.add(W), Some(R)),
            (Read, R.add(W).oneshot(), Some(R.oneshot())),
            (Read, W.add(R.level()), Some(R.level())),
            (Read, W, None),
            (Read, W.level(), None),
            (Write, W, Some(W)),
            (Write, W.oneshot(), Some(W.oneshot())),
            (Write, R.add(W), Some(W)),
            (Write, R.add(W).level(), Some(W.level())),
            (Write, R, None),
            (Write, R.oneshot(), None),
        ];
        for &(direction, asked, want) in table {
            assert_eq!(direction.mask(asked), want, "{direction:?} asked {asked:?}");
        }
    }

    #[cfg(pipeloop_linux)]
    #[test]
    fn mask_drops_priority_which_no_pipe_has() {
        const P: Interest = Interest::PRIORITY;
        let table: &[(Direction, Interest, Option<Interest>)] = &[
            (Read, P, None),
            (Read, P.level(), None),
            (Read, P.add(R), Some(R)),
            (Read, P.add(R.level()), Some(R.level())),
            (Read, P.add(W), None),
            (Write, P, None),
            (Write, P.add(W).oneshot(), Some(W.oneshot())),
            (Write, P.add(R), None),
        ];
        for &(direction, asked, want) in table {
            assert_eq!(direction.mask(asked), want, "{direction:?} asked {asked:?}");
        }
    }

    #[test]
    fn registrable_refuses_an_interest_with_none_of_the_ends_directions() {
        for (direction, asked, end, own) in [
            (Read, W, "pipe::Receiver", "Interest::READABLE"),
            (Write, R.level(), "pipe::Sender", "Interest::WRITABLE"),
        ] {
            let err = direction.registrable(asked).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            let text = err.to_string();
            assert!(text.contains(end) && text.contains(own), "{text}");
        }
        assert_eq!(Read.registrable(R.add(W)).unwrap(), R);
    }
}
