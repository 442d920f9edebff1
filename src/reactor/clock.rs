//! The turn's time: when the loop reads the clock, and the timeout it
//! gives the poll for a timer's deadline.
//!
//! A clock read costs tens of nanoseconds, a good part of a turn that
//! handles one event, so the loop reads the clock only when something needs
//! it: the timeout, when the loop holds a timer; a handler's `cx.now()`;
//! the timer step after a poll that brought nothing, or when a timer was
//! due already before the poll. See the module docs of `reactor`, one turn
//! of the loop.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The time of the current turn, read once something needs it. Its
/// methods are the only way to it: `begin_turn` and `poll_returned` mark
/// where readings stop being the turn's time.
#[derive(Debug, Default)]
pub(super) struct TurnClock {
    /// The last reading of this turn, if any.
    read: Cell<Option<Instant>>,
    /// `read` was taken before the poll, which brought events: it is not
    /// the time of what comes after, but the timer step may filter with it
    /// (see `for_timers`).
    before_poll: Cell<bool>,
}

impl TurnClock {
    /// A turn begins: nothing read yet.
    #[inline]
    pub(super) fn begin_turn(&self) {
        self.read.set(None);
        self.before_poll.set(false);
    }

    /// The turn's time: the reading taken since the poll returned (or, before
    /// the poll, since the turn began), or the clock now, which is then the
    /// turn's time. So every ask after the poll gets the same instant, and
    /// what runs before the poll (work left by errors, the before-sleep hook)
    /// never shares one with what runs after it.
    #[inline]
    pub(super) fn now(&self) -> Instant {
        match self.read.get() {
            Some(now) if !self.before_poll.get() => now,
            _ => self.read_now(),
        }
    }

    /// Reads the clock; the reading is the turn's time from now on.
    #[inline]
    pub(super) fn read_now(&self) -> Instant {
        let now = Instant::now();
        self.read.set(Some(now));
        self.before_poll.set(false);
        now
    }

    /// The turn's time, if something read it since the poll (for `Debug`).
    pub(super) fn if_read(&self) -> Option<Instant> {
        self.read.get().filter(|_| !self.before_poll.get())
    }

    /// The poll returned. What was read before it is not the time of what
    /// comes after; if the poll brought events it is kept for the timer
    /// step to filter with (`for_timers`), and if not it is forgotten: the
    /// poll may have slept until a timer's deadline.
    #[inline]
    pub(super) fn poll_returned(&self, brought_events: bool) {
        if brought_events {
            self.before_poll.set(true);
        } else {
            self.read.set(None);
        }
    }

    /// An instant no later than now, for the timer step to see whether any
    /// timer is due, reading the clock only if there is none: the turn's
    /// time, or the one read before a poll that brought events. A timer due
    /// by the latter is due now; one that came due during that poll fires
    /// in the next turn, whose timeout is then zero.
    #[inline]
    pub(super) fn for_timers(&self) -> Instant {
        match self.read.get() {
            Some(known) => known,
            None => self.read_now(),
        }
    }
}

/// Waits for a timer at least this long are cut to whole milliseconds.
const COARSE: Duration = Duration::from_secs(1);

/// `timeout` cut to the time left from `now` until `deadline`.
///
/// A wait of a second or more is cut to whole milliseconds, rounded down
/// (see `coarse`); a shorter one keeps every nanosecond.
#[inline]
pub(super) fn cut(timeout: Option<Duration>, deadline: Instant, now: Instant) -> Option<Duration> {
    let until = coarse(deadline.saturating_duration_since(now));
    Some(timeout.map_or(until, |t| t.min(until)))
}

/// `until` rounded down to whole milliseconds if it is `COARSE` or more.
///
/// A timeout with a part finer than a millisecond takes the timespec calls
/// (`epoll_pwait2`, `ppoll`), which cost about 100 and 200 ns more per call
/// than `epoll_wait` and `poll(2)` with whole milliseconds (measured on
/// Linux 6.18 with a ready fd; every turn of a busy loop holding a timer
/// pays it). A wait that long gains nothing from the finer part: Linux
/// gives it a slack of 0.1 % of the timeout (so a millisecond or more;
/// the 50 µs floor is for short waits), and rounding down never makes a
/// timer late. If the poll wakes before the deadline, the next turn sleeps
/// what is left, to the nanosecond. (kqueue takes a timespec either way: it
/// gains nothing, and such a wait may take that one more wake-up.)
#[inline]
fn coarse(until: Duration) -> Duration {
    if until < COARSE {
        return until;
    }
    Duration::new(until.as_secs(), until.subsec_millis() * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_of_a_second_or_more_are_cut_to_whole_milliseconds_rounded_down() {
        let fine = [
            Duration::from_micros(300),
            Duration::from_micros(1_300),
            Duration::new(0, 999_999_999),
        ];
        for until in fine {
            assert_eq!(coarse(until), until, "under a second: every nanosecond");
        }
        assert_eq!(coarse(Duration::new(1, 0)), Duration::new(1, 0));
        assert_eq!(coarse(Duration::new(1, 999_999)), Duration::new(1, 0));
        assert_eq!(
            coarse(Duration::new(3599, 990_999_999)),
            Duration::new(3599, 990_000_000)
        );
        let now = Instant::now();
        let far = now + Duration::new(2, 1_500_000);
        assert_eq!(cut(None, far, now), Some(Duration::new(2, 1_000_000)));
        assert_eq!(
            cut(Some(Duration::from_micros(10)), far, now),
            Some(Duration::from_micros(10)),
            "the caller's shorter timeout stands"
        );
        assert_eq!(cut(None, now, far), Some(Duration::ZERO), "past: zero");
    }

    #[test]
    fn the_turns_time_is_read_once_and_not_carried_over_the_poll() {
        let clock = TurnClock::default();
        clock.begin_turn();
        assert_eq!(clock.if_read(), None);
        let before = clock.now();
        assert_eq!(clock.now(), before, "one reading until the poll");
        clock.poll_returned(true);
        assert_eq!(clock.if_read(), None, "not the time after the poll");
        assert_eq!(
            clock.for_timers(),
            before,
            "but the timers may filter with it"
        );
        let after = clock.now();
        assert!(after >= before);
        assert_eq!(clock.for_timers(), after);
        clock.begin_turn();
        clock.now();
        clock.poll_returned(false);
        assert_eq!(clock.if_read(), None);
        assert!(clock.for_timers() >= after, "an empty poll forgets it");
    }
}
