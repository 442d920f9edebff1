//! Timers: what a user asks for ([`Timer`]), and the queue of deadlines the
//! loop keeps: a binary heap with lazy deletion.
//!
//! Removing a timer does not search the heap (O(n)); it leaves the entry
//! there, and the entry is skipped when it comes to the top, because its
//! timer's record no longer matches it. So that removed entries cannot pile
//! up (a million insert+remove pairs would otherwise leave a million dead
//! entries, and a loop that slows down over time), the heap is rebuilt from
//! its live entries whenever the dead ones outnumber them: O(n) work once
//! per n removals, O(1) amortised, and at most twice the live timers held.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// When a timer fires: once, after a delay or at a deadline, or again and
/// again with a period.
///
/// ```
/// use pipeloop::reactor::Timer;
/// use std::time::{Duration, Instant};
///
/// let once = Timer::after(Duration::from_millis(5));
/// let at = Timer::at(Instant::now() + Duration::from_secs(1));
/// let tick = Timer::every(Duration::from_millis(10)); // first after 10 ms
/// # let _ = (once, at, tick);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    pub(super) start: Start,
    pub(super) period: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Start {
    After(Duration),
    At(Instant),
}

impl Timer {
    /// Fires once, `delay` after it is inserted.
    pub fn after(delay: Duration) -> Timer {
        Timer {
            start: Start::After(delay),
            period: None,
        }
    }

    /// Fires once, at `deadline` (at once if that has passed).
    pub fn at(deadline: Instant) -> Timer {
        Timer {
            start: Start::At(deadline),
            period: None,
        }
    }

    /// Fires `period` after it is inserted, then every `period` after that
    /// deadline (not after the handler ran, so the cadence does not drift).
    /// A loop held up past several periods fires it once and goes on with
    /// the cadence, rather than firing the missed periods in a burst. A zero
    /// period is refused when the timer is inserted.
    pub fn every(period: Duration) -> Timer {
        Timer {
            start: Start::After(period),
            period: Some(period),
        }
    }

    /// The first deadline, for a timer inserted at `now`.
    pub(super) fn first_deadline(&self, now: Instant) -> Instant {
        match self.start {
            Start::After(delay) => now.checked_add(delay).unwrap_or_else(far_future),
            Start::At(deadline) => deadline,
        }
    }
}

/// A deadline no timer reaches: used when `now + delay` overflows.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// The deadline after `deadline` for a timer of `period` that fired at
/// `now`: the first of `deadline + k * period` (k >= 1) after `now`.
pub(super) fn next_deadline(deadline: Instant, period: Duration, now: Instant) -> Instant {
    let next = deadline.checked_add(period).unwrap_or_else(far_future);
    if next > now {
        return next;
    }
    // Held up past several periods: skip them, keeping the phase.
    let late = now.duration_since(deadline).as_nanos();
    let periods = late / period.as_nanos() + 1;
    let skip = Duration::from_nanos(u64::try_from(periods * period.as_nanos()).unwrap_or(u64::MAX));
    deadline.checked_add(skip).unwrap_or_else(far_future)
}

/// One scheduled deadline: ordered by deadline, then by `seq` (the order
/// deadlines were scheduled in), so equal deadlines fire in insertion order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) struct Scheduled {
    pub(super) deadline: Instant,
    pub(super) seq: u64,
    pub(super) index: usize,
}

#[derive(Debug, Default)]
pub(super) struct TimerQueue {
    heap: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    /// Live timers (each has exactly one live entry in the heap).
    live: usize,
}

impl TimerQueue {
    /// Schedules a new deadline; the caller records the returned entry in
    /// its timer, which is what makes the entry live.
    pub(super) fn schedule(&mut self, deadline: Instant, index: usize) -> Scheduled {
        let scheduled = Scheduled {
            deadline,
            seq: self.next_seq,
            index,
        };
        self.next_seq += 1;
        self.heap.push(Reverse(scheduled));
        scheduled
    }

    /// A timer was added (`schedule` follows).
    pub(super) fn added(&mut self) {
        self.live += 1;
    }

    /// A timer went: its entry is dead now. Rebuilds the heap from its live
    /// entries (`is_live`) once the dead outnumber them.
    pub(super) fn removed(&mut self, is_live: impl Fn(&Scheduled) -> bool) {
        self.live -= 1;
        // (A timer whose entry was popped to fire has none in the heap.)
        let dead = self.heap.len().saturating_sub(self.live);
        if self.live == 0 {
            self.heap.clear();
        } else if dead > self.live.max(32) {
            self.heap.retain(|Reverse(s)| is_live(s));
        }
    }

    /// The earliest entry, dead or alive.
    #[inline]
    pub(super) fn peek(&self) -> Option<Scheduled> {
        self.heap.peek().map(|Reverse(s)| *s)
    }

    /// Puts back an entry taken with `pop` (a deferred one).
    pub(super) fn push_back(&mut self, scheduled: Scheduled) {
        self.heap.push(Reverse(scheduled));
    }

    pub(super) fn pop(&mut self) -> Option<Scheduled> {
        self.heap.pop().map(|Reverse(s)| s)
    }

    /// The sequence number the next `schedule` will get: entries below it
    /// were scheduled before.
    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Entries held, dead ones included.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_deadline_keeps_the_cadence_and_skips_missed_periods() {
        let t0 = Instant::now();
        let p = Duration::from_millis(10);
        assert_eq!(next_deadline(t0, p, t0), t0 + p);
        assert_eq!(next_deadline(t0, p, t0 + Duration::from_millis(3)), t0 + p);
        // Held up 35 ms: fires once, next at 40 ms, not at 10, 20, 30.
        let late = t0 + Duration::from_millis(35);
        assert_eq!(next_deadline(t0, p, late), t0 + Duration::from_millis(40));
        // Exactly on a later deadline: the one after it.
        let on = t0 + Duration::from_millis(20);
        assert_eq!(next_deadline(t0, p, on), t0 + Duration::from_millis(30));
    }

    #[test]
    fn equal_deadlines_come_out_in_the_order_scheduled() {
        let mut q = TimerQueue::default();
        let t = Instant::now();
        for index in [5, 3, 9] {
            q.added();
            q.schedule(t, index);
        }
        let order: Vec<usize> = std::iter::from_fn(|| q.pop()).map(|s| s.index).collect();
        assert_eq!(order, [5, 3, 9]);
    }

    #[test]
    fn dead_entries_never_outnumber_the_live_ones_for_long() {
        let mut q = TimerQueue::default();
        let t = Instant::now();
        let mut live = std::collections::HashSet::new();
        for i in 0..1000 {
            q.added();
            live.insert(q.schedule(t + Duration::from_secs(i), i as usize).seq);
        }
        for round in 0..100_000u64 {
            q.added();
            q.schedule(t + Duration::from_secs(round % 7), usize::MAX);
            q.removed(|e| live.contains(&e.seq));
            assert!(q.held() <= 2 * 1000 + 1, "{} held", q.held());
        }
        let seqs: Vec<u64> = live.iter().copied().collect();
        for seq in seqs {
            live.remove(&seq);
            q.removed(|e| live.contains(&e.seq));
        }
        assert_eq!(q.held(), 0, "every timer gone: nothing held");
    }
}
