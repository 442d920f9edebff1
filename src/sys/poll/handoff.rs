//! The hand-off between the thread that sleeps in poll(2) holding the
//! backend's table and the threads that want to change it meanwhile.
//!
//! poll(2) reads its array for the whole wait, so the poller holds the lock
//! on the table while it sleeps. A changer that finds the lock taken must
//! (1) wake the poller, and (2) get the table before the poller sleeps on it
//! again. [`Handoff`] is the only way to the table, and its two methods are
//! the two sides of that protocol:
//!
//! - [`change`](Handoff::change): take the lock if it is free; otherwise
//!   take a *ticket*, write a byte to the internal self-pipe (the notifier,
//!   which is in every wait) and block on the lock. Once it has the lock it
//!   counts itself *served* and signals the condition variable, then
//!   changes the table.
//! - [`lock_for_wait`](Handoff::lock_for_wait): take the lock, then, while
//!   fewer changers have been served than had taken a ticket when the poller
//!   came back, wait on the condition variable (which releases the lock).
//!
//! Why nothing is lost, by construction rather than by ordering of calls:
//!
//! - `served` lives inside the mutex, next to the table, so it can only
//!   change while the lock is held, and the poller tests it under the same
//!   lock; a changer's signal therefore cannot fall between the poller's
//!   test and its wait (the classic lost wake-up of a condition variable).
//! - The changer counts itself served and signals *before* it runs its
//!   change: a change that panics has still been counted and signalled.
//! - The poller waits only for the tickets taken before it came back, so a
//!   stream of changers cannot hold it back forever; one that arrives later
//!   has written to the notifier, so the next poll(2) returns at once and
//!   the poller lets it through then.
//! - A wait *for changers* ends at the caller's deadline. Once it passes,
//!   the poller stops waiting for them and polls once without sleeping (a
//!   changer still blocked on the lock waits only for that poll(2) to
//!   return). A poll with no timeout has no deadline, and neither has one
//!   with a zero timeout, which reads no clock: those wait until the ticket
//!   holders have had the lock. Taking the mutex itself has no deadline,
//!   but it is only ever held for a poll(2) or for one small change.

use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Instant;

use crate::sys::{drain, new_pipe, write};

pub(crate) struct Handoff<T> {
    turns: Mutex<Turns<T>>,
    /// Changers that found the lock taken: each takes one ticket before it
    /// notifies the poller.
    tickets: AtomicU64,
    /// Signalled by each ticket holder once it holds the lock.
    served_cv: Condvar,
    notifier: Notifier,
}

/// What the mutex guards: the table, and how many ticket holders have had
/// the lock.
struct Turns<T> {
    table: T,
    served: u64,
}

/// The lock on the table, held by the poller or by one changer.
pub(crate) struct Guard<'a, T>(MutexGuard<'a, Turns<T>>);

impl<T> Deref for Guard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.table
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0.table
    }
}

/// A panic never leaves the table half-changed (changes are small and
/// panic-free), so a poisoned lock still guards a consistent table.
fn unpoison<G>(result: Result<G, PoisonError<G>>) -> G {
    result.unwrap_or_else(PoisonError::into_inner)
}

impl<T> Handoff<T> {
    pub(crate) fn new(table: T, notifier: Notifier) -> Handoff<T> {
        Handoff {
            turns: Mutex::new(Turns { table, served: 0 }),
            tickets: AtomicU64::new(0),
            served_cv: Condvar::new(),
            notifier,
        }
    }

    /// Runs `change` on the table, interrupting the poller if it holds it.
    pub(crate) fn change<R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
        let mut turns = match self.turns.try_lock() {
            Ok(turns) => turns,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => self.wait_turn(),
        };
        change(&mut turns.table)
    }

    /// The lock for a changer that found it taken: ticket, notify, lock,
    /// then count itself served (see the module docs for why in this order).
    #[cold]
    fn wait_turn(&self) -> MutexGuard<'_, Turns<T>> {
        self.tickets.fetch_add(1, SeqCst);
        self.notifier.notify();
        let mut turns = unpoison(self.turns.lock());
        turns.served += 1;
        self.served_cv.notify_all();
        turns
    }

    /// The table, for a wait: once the changers that were waiting for it
    /// when this was called have had it, or once `deadline` has passed.
    /// Also says whether it had to wait, so the caller knows whether time
    /// passed.
    pub(crate) fn lock_for_wait(&self, deadline: Option<Instant>) -> (Guard<'_, T>, bool) {
        let mut turns = unpoison(self.turns.lock());
        let due = self.tickets.load(SeqCst);
        let mut waited = false;
        while turns.served < due {
            waited = true;
            turns = match deadline {
                None => unpoison(self.served_cv.wait(turns)),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        break;
                    };
                    unpoison(self.served_cv.wait_timeout(turns, left)).0
                }
            };
        }
        (Guard(turns), waited)
    }

    pub(crate) fn try_lock(&self) -> Option<Guard<'_, T>> {
        self.turns.try_lock().ok().map(Guard)
    }

    pub(crate) fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}

/// The internal self-pipe that interrupts a poll(2) in progress; the
/// backend keeps its read end in every wait.
pub(crate) struct Notifier {
    read: OwnedFd,
    write: OwnedFd,
    /// A byte is in the pipe (or about to be): further notifications can be
    /// skipped until the poller has drained it.
    pending: AtomicBool,
}

impl Notifier {
    pub(crate) fn new() -> std::io::Result<Notifier> {
        let (read, write) = new_pipe()?;
        Ok(Notifier {
            read,
            write,
            pending: AtomicBool::new(false),
        })
    }

    /// The fd to wait on for `POLLIN`.
    pub(crate) fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    pub(crate) fn notify(&self) {
        if !self.pending.swap(true, SeqCst) {
            // A full pipe is as good as a byte: the poller will wake.
            let _ = write(self.write.as_raw_fd(), &[1]);
        }
    }

    /// Empties the pipe, then allows the next notification. In that order: a
    /// notification skipped while `pending` was still set is seen by the
    /// poller's look at tickets and wakers that follows this reset.
    pub(crate) fn reset(&self) {
        drain(&self.read);
        self.pending.store(false, SeqCst);
    }
}
