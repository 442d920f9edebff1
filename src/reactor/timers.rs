//! Timers: what a user asks for ([`Timer`]), and the queue of deadlines the
//! loop keeps: a 4-ary min-heap that knows where each timer's entry is.
//!
//! A waiting timer has exactly one entry in the heap, and `slots`, indexed
//! by the timer's slab index, says where: every move in the heap updates
//! it. Removing a timer therefore takes its entry out at once, without a
//! search: the last entry fills the hole and sifts up or down from there,
//! O(log n). Nothing dead is left behind, so nothing needs rebuilding: the
//! heap holds the waiting timers and no more, and a million insert+remove
//! pairs leave it as they found it. (A timer whose handler runs, or which a
//! firing pass holds back for the next one, has no entry meanwhile.)
//!
//! Four children per node rather than two: half as many levels for an
//! insert to climb, and the children a sift-down compares sit side by side
//! in memory (measured at a million timers: 483 instructions per
//! insert+remove pair against 666, 73 ns against 97). The heap and `slots`
//! keep their memory when timers go, as a `Vec` does: what they hold is
//! bounded by the most timers (and slab entries) the loop had at once, not
//! by how many were inserted and removed.
//!
//! An entry keeps its deadline as an `Instant`: 32 bytes with its `seq`
//! and slab index. Nanoseconds from an epoch in a `u64` would make it 24
//! bytes and a comparison a single one, but converting each deadline costs
//! more than that saves (measured: 499 instructions per pair against 480,
//! and no faster).

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

    /// The first deadline, for a timer inserted now. Only a delay reads the
    /// clock: a deadline given as an instant needs no `now`.
    pub(super) fn first_deadline(&self) -> Instant {
        match self.start {
            Start::After(delay) => Instant::now().checked_add(delay).unwrap_or_else(far_future),
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
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Scheduled {
    pub(super) deadline: Instant,
    pub(super) seq: u64,
    pub(super) index: usize,
}

impl Scheduled {
    /// Whether this one fires before `other`. (Not `Ord`, which would
    /// compare `index` too: `seq` is never equal, so it need not.)
    #[inline]
    fn before(&self, other: &Scheduled) -> bool {
        (self.deadline, self.seq) < (other.deadline, other.seq)
    }
}

/// Children per node: a 4-ary heap is half as deep as a binary one, and a
/// node's children sit side by side in memory.
const ARITY: usize = 4;

/// In `slots`: the timer has no entry in the heap.
const NOWHERE: u32 = u32::MAX;

#[derive(Debug, Default)]
pub(super) struct TimerQueue {
    /// A min-heap of the waiting timers' entries, one per timer.
    heap: Vec<Scheduled>,
    /// `slots[index]`: where the entry of the timer at slab `index` is in
    /// `heap`, or `NOWHERE`. Kept up to date by every move, so that removing
    /// a timer finds its entry without a search.
    slots: Vec<u32>,
    next_seq: u64,
}

impl TimerQueue {
    /// Schedules the timer at slab `index` (which has no entry) for
    /// `deadline`; the caller records the returned entry in its timer.
    #[inline]
    pub(super) fn schedule(&mut self, deadline: Instant, index: usize) -> Scheduled {
        let scheduled = Scheduled {
            deadline,
            seq: self.next_seq,
            index,
        };
        self.next_seq += 1;
        self.push(scheduled);
        scheduled
    }

    /// Puts back an entry taken with `pop` (a deferred one), as it was.
    pub(super) fn push_back(&mut self, scheduled: Scheduled) {
        self.push(scheduled);
    }

    /// Takes the entry of the timer at slab `index` out of the heap, if it
    /// has one there (a timer being fired, or deferred, has none).
    #[inline]
    pub(super) fn remove(&mut self, index: usize) -> Option<Scheduled> {
        let slot = self.slot_of(index)?;
        Some(self.remove_at(slot))
    }

    /// The earliest entry.
    #[inline]
    pub(super) fn peek(&self) -> Option<Scheduled> {
        self.heap.first().copied()
    }

    /// Takes the earliest entry out.
    pub(super) fn pop(&mut self) -> Option<Scheduled> {
        if self.heap.is_empty() {
            return None;
        }
        Some(self.remove_at(0))
    }

    /// The sequence number the next `schedule` will get: entries below it
    /// were scheduled before.
    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    #[inline]
    fn push(&mut self, scheduled: Scheduled) {
        debug_assert_eq!(self.slot_of(scheduled.index), None, "one entry per timer");
        if scheduled.index >= self.slots.len() {
            self.slots.resize(scheduled.index + 1, NOWHERE);
        }
        let hole = self.heap.len();
        // Slots fit in a `u32` (and are never `NOWHERE`): half the memory of
        // a `usize`, for a bound no loop reaches (its slab would take
        // hundreds of GB first).
        assert!(hole < NOWHERE as usize, "more than 2^32 - 1 timers");
        self.heap.push(scheduled);
        self.sift_up(hole, scheduled);
    }

    /// Takes out the entry at `slot`. Most often it is the last (a timer
    /// inserted late, that climbed nowhere), and nothing else moves.
    #[inline]
    fn remove_at(&mut self, slot: usize) -> Scheduled {
        let removed = self.heap.swap_remove(slot);
        self.slots[removed.index] = NOWHERE;
        if slot < self.heap.len() {
            self.refill(slot);
        }
        removed
    }

    /// The last entry was moved into `slot`: moves it up or down from
    /// there to where it belongs.
    fn refill(&mut self, slot: usize) {
        let moved = self.heap[slot];
        if slot > 0 && moved.before(&self.heap[parent(slot)]) {
            self.sift_up(slot, moved);
        } else {
            self.sift_down(slot, moved);
        }
    }

    /// Places `entry` at or above `hole`, moving later parents down.
    #[inline]
    fn sift_up(&mut self, mut hole: usize, entry: Scheduled) {
        while hole > 0 {
            let up = parent(hole);
            let above = self.heap[up];
            if !entry.before(&above) {
                break;
            }
            self.place(hole, above);
            hole = up;
        }
        self.place(hole, entry);
    }

    /// Places `entry` at or below `hole`, moving earlier children up.
    fn sift_down(&mut self, mut hole: usize, entry: Scheduled) {
        while let Some(child) = self.earliest_child(hole) {
            let below = self.heap[child];
            if !below.before(&entry) {
                break;
            }
            self.place(hole, below);
            hole = child;
        }
        self.place(hole, entry);
    }

    /// The slot of the earliest child of `slot`, if it has children.
    #[inline]
    fn earliest_child(&self, slot: usize) -> Option<usize> {
        let first = slot * ARITY + 1;
        let end = self.heap.len().min(first + ARITY);
        let mut earliest = first;
        for child in first + 1..end {
            if self.heap[child].before(&self.heap[earliest]) {
                earliest = child;
            }
        }
        (first < end).then_some(earliest)
    }

    #[inline]
    fn place(&mut self, slot: usize, entry: Scheduled) {
        self.heap[slot] = entry;
        self.slots[entry.index] = slot as u32;
    }

    /// Where the entry of the timer at slab `index` is, if it has one.
    fn slot_of(&self, index: usize) -> Option<usize> {
        match self.slots.get(index) {
            Some(&slot) if slot != NOWHERE => Some(slot as usize),
            _ => None,
        }
    }

    /// Entries held.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.heap.len()
    }
}

#[inline]
fn parent(slot: usize) -> usize {
    (slot - 1) / ARITY
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
            q.schedule(t, index);
        }
        let order: Vec<usize> = std::iter::from_fn(|| q.pop()).map(|s| s.index).collect();
        assert_eq!(order, [5, 3, 9]);
    }

    /// xorshift64: random enough for operation sequences, no dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Checks the queue against what it should hold: the heap order, every
    /// entry's slot, and no slot for a timer without an entry.
    fn check(q: &TimerQueue, model: &[Scheduled]) {
        assert_eq!(q.held(), model.len(), "one entry per live timer");
        for (slot, s) in q.heap.iter().enumerate() {
            assert_eq!(q.slot_of(s.index), Some(slot), "slot of timer {}", s.index);
            if slot > 0 {
                assert!(q.heap[parent(slot)].before(s), "heap order at slot {slot}");
            }
        }
        let with_slot = (0..q.slots.len()).filter(|&i| q.slot_of(i).is_some());
        assert_eq!(with_slot.count(), model.len(), "slots of timers gone");
    }

    /// Random schedules, removals, pops and deferrals (pop, then push back),
    /// against a model that is a plain list: the queue gives the earliest
    /// of the list, by deadline then order scheduled, every time.
    #[test]
    fn random_operations_agree_with_a_sorted_model() {
        let base = Instant::now();
        for seed in 1..=20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut q = TimerQueue::default();
            let mut model: Vec<Scheduled> = Vec::new();
            // Slab indices, reused once free as the slab reuses them.
            let mut free: Vec<usize> = Vec::new();
            let mut next_index = 0;
            for step in 0..3000 {
                match rng.below(10) {
                    // More schedules than removals: the heap grows deep.
                    0..=4 => {
                        let index = free.pop().unwrap_or_else(|| {
                            next_index += 1;
                            next_index - 1
                        });
                        // Few distinct deadlines: many ties.
                        let deadline = base + Duration::from_millis(rng.below(20));
                        model.push(q.schedule(deadline, index));
                    }
                    5..=7 if !model.is_empty() => {
                        let gone = model.swap_remove(rng.below(model.len() as u64) as usize);
                        assert_eq!(q.remove(gone.index), Some(gone), "step {step}");
                        assert_eq!(q.remove(gone.index), None, "removed twice");
                        free.push(gone.index);
                    }
                    8 => {
                        let earliest = model.iter().min_by_key(|s| (s.deadline, s.seq)).copied();
                        assert_eq!(q.peek(), earliest, "step {step}");
                        assert_eq!(q.pop(), earliest, "step {step}");
                        if let Some(e) = earliest {
                            model.retain(|s| *s != e);
                            free.push(e.index);
                        }
                    }
                    _ => {
                        if let Some(top) = q.pop() {
                            assert_eq!(q.remove(top.index), None, "popped: not held");
                            q.push_back(top);
                        }
                    }
                }
                check(&q, &model);
            }
            model.sort_by_key(|s| (s.deadline, s.seq));
            let order: Vec<Scheduled> = std::iter::from_fn(|| q.pop()).collect();
            assert_eq!(order, model, "seed {seed}");
            check(&q, &[]);
        }
    }

    /// A million pairs in the loop's test; here the queue alone, checked
    /// after every pair: it holds the live timers and nothing else.
    #[test]
    fn insert_remove_pairs_leave_only_the_live_timers() {
        let mut q = TimerQueue::default();
        let t = Instant::now();
        let mut rng = Rng(7);
        let live: Vec<Scheduled> = (0..1000)
            .map(|i| q.schedule(t + Duration::from_millis(rng.below(1000)), i))
            .collect();
        for _ in 0..100_000 {
            let s = q.schedule(t + Duration::from_millis(rng.below(1000)), 1000);
            assert_eq!(q.remove(1000), Some(s));
            assert_eq!(q.held(), 1000);
        }
        check(&q, &live);
        assert!(
            q.heap.capacity() < 2 * 1024,
            "{} held room",
            q.heap.capacity()
        );
        for s in &live {
            assert_eq!(q.remove(s.index), Some(*s));
        }
        assert_eq!(q.held(), 0, "every timer gone: nothing held");
        check(&q, &[]);
    }
}
