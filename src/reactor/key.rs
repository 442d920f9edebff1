//! Keys: how the loop names what was inserted, and the tokens it registers
//! sources under.

use crate::Token;

/// Names one thing inserted into an [`EventLoop`](super::EventLoop): a
/// source, a timer, a signal watcher or a child.
///
/// A key is a slab index with a serial number. An index is reused after its
/// entry is removed (once no event collected before can name it), but never
/// the serial, so a key kept after its entry was removed stays *stale* for
/// good: [`remove`](super::EventLoop::remove)
/// answers `false` for it, and it never names a later entry.
///
/// # Examples
///
/// ```
/// use pipeloop::reactor::{EventLoop, Flow, Timer};
/// use std::time::Duration;
///
/// let mut ev: EventLoop<()> = EventLoop::new()?;
/// let hour = Timer::after(Duration::from_secs(3600));
/// let key = ev.insert_timer(hour, |_| Ok(Flow::Continue))?;
/// assert!(ev.remove(key));
/// assert!(!ev.remove(key)); // stale for good
///
/// // The slab index may be reused; the key is not.
/// let later = ev.insert_timer(hour, |_| Ok(Flow::Continue))?;
/// assert_ne!(key, later);
/// assert!(!ev.remove(key));
/// assert_eq!(ev.len(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Key {
    pub(super) index: usize,
    pub(super) serial: u64,
}

/// Which of an entry's registrations a token is for: a child has three.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Part {
    /// The source, the signal pipe, or a child's stdout.
    Main = 0,
    /// A child's stderr.
    Stderr = 1,
    /// A child's pidfd (Linux).
    Exit = 2,
}

/// Tokens the loop keeps for itself, above every entry's.
pub(super) const REMOTE: Token = Token(usize::MAX);
pub(super) const SIGCHLD: Token = Token(usize::MAX - 1);

/// The token for `part` of the entry at `index`. It holds no serial: an
/// index freed during a turn is not reused before the turn ends, nor before
/// the events a stop or an error kept for the next turn are dispatched, so
/// an index names one entry for as long as any event that carries it.
pub(super) fn token(index: usize, part: Part) -> Token {
    Token(index << 2 | part as usize)
}

/// The entry index and part a token names; `None` for the loop's own.
pub(super) fn parse(token: Token) -> Option<(usize, Part)> {
    if token == REMOTE || token == SIGCHLD {
        return None;
    }
    let part = match token.0 & 3 {
        0 => Part::Main,
        1 => Part::Stderr,
        _ => Part::Exit,
    };
    Some((token.0 >> 2, part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_stay_clear_of_the_loops_own() {
        for index in [0, 1, 7, 1 << 20] {
            for part in [Part::Main, Part::Stderr, Part::Exit] {
                assert_eq!(parse(token(index, part)), Some((index, part)));
                assert_ne!(token(index, part), REMOTE);
                assert_ne!(token(index, part), SIGCHLD);
            }
        }
        assert_eq!(parse(REMOTE), None);
        assert_eq!(parse(SIGCHLD), None);
    }
}
