//! What the loop holds besides its `Poll` and `Events`: the entries, the
//! timer queue, the remote queue. Handlers get it through `Cx`, so that
//! they can change the loop while it dispatches.
//!
//! A handler runs *taken out* of its entry (the entry holds `None`
//! meanwhile), so the handler can reach the entries through `Cx` without
//! two borrows of one thing. When it returns, it goes back only if its entry
//! is still there under the same serial; otherwise the entry was removed
//! while it ran, and the dispatcher ends it (deregisters its source).
//!
//! An index freed during a turn is not reused before the turn ends (the
//! entry turns `Vacant` and waits in `quarantine`), nor, while events are
//! kept for the next turn (`events_kept`), before those are dispatched: so
//! an event never reaches an entry inserted after it was collected.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use super::child::{ChildEntry, ChildWatch};
use super::clock::{TurnClock, cut};
use super::key::{self, Key, Part};
use super::remote::{Job, Shared};
use super::timers::{Scheduled, Timer, TimerQueue, next_deadline};
use super::{Cx, Flow};
use crate::event::{Event, Source};
use crate::signal::{Pending, Signals};
use crate::{Interest, Registry};

pub(super) type TimerFn<T> = Box<dyn FnMut(&mut Cx<'_, T>) -> io::Result<Flow>>;
pub(super) type SignalFn<T> = Box<dyn FnMut(&mut Cx<'_, T>, libc::c_int) -> io::Result<Flow>>;
pub(super) type SleepFn<T> = Box<dyn FnMut(&mut Cx<'_, T>) -> io::Result<()>>;

/// A source and its handler, behind one object so that entries need not
/// know the source's type.
pub(super) trait IoEntry<T> {
    fn dispatch(&mut self, cx: &mut Cx<'_, T>, event: &Event) -> io::Result<Flow>;
    fn deregister(&mut self, registry: &Registry);
    fn fd(&self) -> i32;
    fn interest(&self) -> Interest;
}

pub(super) struct Io<S, F> {
    pub(super) source: S,
    pub(super) handler: F,
    pub(super) interest: Interest,
}

impl<T, S, F> IoEntry<T> for Io<S, F>
where
    S: Source + AsRawFd,
    F: FnMut(&mut Cx<'_, T>, &mut S, &Event) -> io::Result<Flow>,
{
    fn dispatch(&mut self, cx: &mut Cx<'_, T>, event: &Event) -> io::Result<Flow> {
        (self.handler)(cx, &mut self.source, event)
    }

    fn deregister(&mut self, registry: &Registry) {
        // The source is dropped next; pipeloop's own ends would deregister
        // themselves then, other sources may not.
        let _ = registry.deregister(&mut self.source);
    }

    fn fd(&self) -> i32 {
        self.source.as_raw_fd()
    }

    fn interest(&self) -> Interest {
        self.interest
    }
}

pub(super) struct TimerEntry<T> {
    pub(super) handler: Option<TimerFn<T>>,
    pub(super) period: Option<Duration>,
    /// Its live entry in the timer queue.
    pub(super) scheduled: Scheduled,
}

pub(super) struct SignalEntry<T> {
    pub(super) signals: Signals,
    pub(super) watched: Vec<libc::c_int>,
    pub(super) handler: Option<SignalFn<T>>,
    /// Signals taken from the pipe but not handled yet: a handler failed
    /// on the one before (see `Redo::Signals`).
    pub(super) left: Option<Pending>,
}

/// Work a handler's error left unfinished, which no event will come back
/// for: the next turn does it first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Redo {
    /// Read on from a child's pipe (`true`: after its hang-up).
    Read(Key, Part, bool),
    /// Ask the loop's children again whether they exited (`SIGCHLD`).
    AskChildren,
    /// Deliver a watcher's signals left over.
    Signals(Key),
}

pub(super) enum Kind<T> {
    /// `None` while its handler runs.
    Io(Option<Box<dyn IoEntry<T>>>),
    Timer(TimerEntry<T>),
    /// Boxed, as a child is: the largest kind, it would make every entry
    /// (a timer's too) as large as itself.
    Signals(Box<SignalEntry<T>>),
    Child(Box<ChildEntry<T>>),
    /// Removed during this turn: the index is freed when the turn ends.
    Vacant,
}

pub(super) struct Entry<T> {
    pub(super) serial: u64,
    pub(super) kind: Kind<T>,
}

pub(super) struct Inner<T> {
    pub(super) registry: Registry,
    pub(super) entries: Slab<Entry<T>>,
    next_serial: u64,
    pub(super) timers: TimerQueue,
    /// Due timers scheduled during the current firing pass, which wait for
    /// the next one (kept to reuse its memory).
    deferred: Vec<Scheduled>,
    quarantine: Vec<usize>,
    in_turn: bool,
    /// Events of a turn are kept for the next one (`EventLoop::resume_at`):
    /// freed indices stay in quarantine until those are dispatched too.
    pub(super) events_kept: bool,
    /// Work for the start of the next turn. At most one: the error that
    /// leaves it ends the turn, and the next turn does it before anything
    /// else (see `leave`).
    pub(super) redo: Option<Redo>,
    pub(super) stop: bool,
    /// The turn's time, read when something needs it.
    pub(super) clock: TurnClock,
    pub(super) remote: Arc<Shared<T>>,
    remote_batch: VecDeque<Job<T>>,
    pub(super) children: ChildWatch,
    /// Where child output is read into (taken out while a child's handler
    /// runs).
    pub(super) buf: Vec<u8>,
    pub(super) before_sleep: Option<SleepFn<T>>,
}

impl<T> Inner<T> {
    pub(super) fn new(registry: Registry, remote: Arc<Shared<T>>) -> Inner<T> {
        Inner {
            registry,
            entries: Slab::new(),
            next_serial: 0,
            timers: TimerQueue::default(),
            deferred: Vec::new(),
            quarantine: Vec::new(),
            in_turn: false,
            events_kept: false,
            redo: None,
            stop: false,
            clock: TurnClock::default(),
            remote,
            remote_batch: VecDeque::new(),
            children: ChildWatch::default(),
            buf: Vec::new(),
            before_sleep: None,
        }
    }

    /// The key the next insert will get, and its token for `part`.
    pub(super) fn vacant_key(&mut self) -> Key {
        Key {
            index: self.entries.vacant_key(),
            serial: self.next_serial,
        }
    }

    pub(super) fn add(&mut self, kind: Kind<T>) -> Key {
        let key = self.vacant_key();
        self.next_serial += 1;
        let index = self.entries.insert(Entry {
            serial: key.serial,
            kind,
        });
        debug_assert_eq!(index, key.index);
        log::trace!("pipeloop::reactor: inserted {key:?}");
        key
    }

    /// Whether `key` names an entry that is there (not removed).
    pub(super) fn is_current(&self, key: Key) -> bool {
        self.entries
            .get(key.index)
            .is_some_and(|e| e.serial == key.serial && !matches!(e.kind, Kind::Vacant))
    }

    pub(super) fn insert_io<S, F>(
        &mut self,
        mut source: S,
        interest: Interest,
        handler: F,
    ) -> io::Result<Key>
    where
        S: Source + AsRawFd + 'static,
        F: FnMut(&mut Cx<'_, T>, &mut S, &Event) -> io::Result<Flow> + 'static,
    {
        let key = self.vacant_key();
        self.registry
            .register(&mut source, key::token(key.index, Part::Main), interest)?;
        let io = Io {
            source,
            handler,
            interest,
        };
        Ok(self.add(Kind::Io(Some(Box::new(io)))))
    }

    pub(super) fn insert_timer(&mut self, timer: Timer, handler: TimerFn<T>) -> io::Result<Key> {
        if timer.period == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a repeating timer needs a period longer than zero",
            ));
        }
        let key = self.vacant_key();
        let scheduled = self.timers.schedule(timer.first_deadline(), key.index);
        let entry = TimerEntry {
            handler: Some(handler),
            period: timer.period,
            scheduled,
        };
        Ok(self.add(Kind::Timer(entry)))
    }

    pub(super) fn insert_signals(
        &mut self,
        signals: &[libc::c_int],
        handler: SignalFn<T>,
    ) -> io::Result<Key> {
        let mut watcher = Signals::new(signals)?;
        let key = self.vacant_key();
        self.registry.register(
            &mut watcher,
            key::token(key.index, Part::Main),
            Interest::READABLE,
        )?;
        let entry = SignalEntry {
            signals: watcher,
            watched: signals.to_vec(),
            handler: Some(handler),
            left: None,
        };
        Ok(self.add(Kind::Signals(Box::new(entry))))
    }

    /// Removes what `key` names; `false` for a stale key. What was being
    /// dispatched is ended by its dispatcher when its handler returns.
    pub(super) fn remove(&mut self, key: Key) -> bool {
        if !self.is_current(key) {
            return false;
        }
        match self.take(key.index) {
            Kind::Io(Some(mut io)) => io.deregister(&self.registry),
            Kind::Io(None) => {}
            Kind::Timer(_) => {
                // `None` while it fires or waits in `deferred`: nothing to take.
                self.timers.remove(key.index);
            }
            Kind::Signals(mut s) => {
                let _ = self.registry.deregister(&mut s.signals);
            }
            Kind::Child(mut child) => child.end(&self.registry),
            Kind::Vacant => unreachable!("is_current checked"),
        }
        log::trace!("pipeloop::reactor: removed {key:?}");
        true
    }

    /// Takes what the entry at `index` holds and frees the index, as `free`
    /// does (in one move of the entry when it goes at once).
    fn take(&mut self, index: usize) -> Kind<T> {
        if self.holds_freed() {
            self.quarantine.push(index);
            std::mem::replace(&mut self.entries[index].kind, Kind::Vacant)
        } else {
            self.entries.remove(index).kind
        }
    }

    /// Frees the index of an entry that is `Vacant` now: at once between
    /// turns, when the turn ends during one, and not while events collected
    /// before are kept for the next turn: until they are dispatched, an
    /// index must name the entry it named when they were collected, or
    /// nothing.
    pub(super) fn free(&mut self, index: usize) {
        if self.holds_freed() {
            self.quarantine.push(index);
        } else {
            self.entries.remove(index);
        }
    }

    /// Whether a freed index waits in quarantine (see `free`).
    fn holds_freed(&self) -> bool {
        self.in_turn || self.events_kept
    }

    pub(super) fn begin_turn(&mut self) {
        self.in_turn = true;
        self.clock.begin_turn();
    }

    #[inline]
    pub(super) fn end_turn(&mut self) {
        self.in_turn = false;
        if !self.events_kept && !self.quarantine.is_empty() {
            for index in self.quarantine.drain(..) {
                self.entries.remove(index);
            }
        }
    }

    /// Entries that are there (not removed this turn).
    pub(super) fn live_entries(&self) -> usize {
        self.entries.len() - self.quarantine.len()
    }

    /// Runs the before-sleep hook (taken out while it runs, as handlers are).
    pub(super) fn run_before_sleep(&mut self, data: &mut T) -> io::Result<()> {
        let Some(mut hook) = self.before_sleep.take() else {
            return Ok(());
        };
        let result = hook(&mut Cx::new(data, self, None));
        // A hook that set a new hook meanwhile is replaced by it.
        self.before_sleep.get_or_insert(hook);
        result
    }

    /// Whether nothing is left to wait for: no entry, no work left over, no
    /// `Remote` alive and no remote work queued.
    pub(super) fn is_idle(&self) -> bool {
        if self.live_entries() != 0 || self.redo.is_some() {
            return false; // the common answer, without atomics
        }
        // A remote queues its work before it goes (the count drops with a
        // release, read here with an acquire): seen gone, its work is seen.
        !self.remote.has_remotes() && !self.remote.has_jobs()
    }

    /// Leaves `work` for the next turn: a handler failed before finishing
    /// what an event brought, and no event will come back for the rest.
    pub(super) fn leave(&mut self, work: Redo) {
        // The error ends the turn, and the next one starts with `run_redo`,
        // which takes the work out before doing it.
        debug_assert!(self.redo.is_none(), "{:?} left after {:?}", work, self.redo);
        self.redo = Some(work);
    }

    /// Does the work an earlier handler error left, if any; a new error
    /// leaves what is still undone again.
    pub(super) fn run_redo(&mut self, data: &mut T) -> io::Result<()> {
        match self.redo.take() {
            Some(Redo::Read(key, part, hung_up)) => self.dispatch_child(data, key, part, hung_up),
            Some(Redo::AskChildren) => self.children_exited(data),
            Some(Redo::Signals(key)) if self.is_current(key) => self.dispatch_signals(data, key),
            Some(Redo::Signals(_)) | None => Ok(()),
        }
    }

    /// How long the poll may wait: the caller's timeout, cut to the nearest
    /// timer's deadline.
    #[inline]
    pub(super) fn poll_timeout(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        match self.timers.peek() {
            Some(nearest) => cut(timeout, nearest.deadline, self.clock.read_now()),
            None => timeout,
        }
    }

    /// Dispatches one event to the entry its token names, if that entry is
    /// still there. A source's event, the common case, is handled here,
    /// inline in the turn's loop; the rest goes to `dispatch_other`.
    #[inline]
    pub(super) fn dispatch(&mut self, data: &mut T, event: &Event) -> io::Result<()> {
        log::trace!("pipeloop::reactor: event {event:?}");
        if let Some((index, Part::Main)) = key::parse(event.token()) {
            if let Some(Entry {
                serial,
                kind: Kind::Io(slot),
            }) = self.entries.get_mut(index)
            {
                let key = Key {
                    index,
                    serial: *serial,
                };
                return match slot.take() {
                    Some(io) => self.dispatch_io(data, key, io, event),
                    None => Ok(()), // its handler is running
                };
            }
        }
        self.dispatch_other(data, event)
    }

    /// An event for anything but a source: a signal watcher, a child, the
    /// loop's `SIGCHLD` or a remote's wake-up, or an entry that is gone.
    #[inline(never)]
    fn dispatch_other(&mut self, data: &mut T, event: &Event) -> io::Result<()> {
        let token = event.token();
        if token == key::SIGCHLD {
            return self.children_exited(data);
        }
        let Some((index, part)) = key::parse(token) else {
            return Ok(()); // a remote's wake-up: its work runs at the end of the turn
        };
        let Some(entry) = self.entries.get_mut(index) else {
            return Ok(());
        };
        let key = Key {
            index,
            serial: entry.serial,
        };
        match &mut entry.kind {
            Kind::Signals(_) => self.dispatch_signals(data, key),
            Kind::Child(_) => self.dispatch_child(data, key, part, event.is_read_closed()),
            Kind::Io(_) | Kind::Timer(_) | Kind::Vacant => Ok(()),
        }
    }

    /// Runs a source's handler, taken out of its entry, and puts it back if
    /// the handler keeps it and its entry is still there (one look-up);
    /// otherwise `end_io` ends it.
    #[inline]
    fn dispatch_io(
        &mut self,
        data: &mut T,
        key: Key,
        mut io: Box<dyn IoEntry<T>>,
        event: &Event,
    ) -> io::Result<()> {
        let result = io.dispatch(&mut Cx::new(data, self, Some(key)), event);
        if matches!(result, Ok(Flow::Continue) | Err(_)) {
            if let Some(Entry {
                serial,
                kind: Kind::Io(slot),
            }) = self.entries.get_mut(key.index)
            {
                if *serial == key.serial {
                    // Empty since `dispatch` took the handler out: nothing
                    // else puts one into an entry under this serial.
                    debug_assert!(slot.is_none(), "a second handler for {key:?}");
                    *slot = Some(io);
                    return result.map(drop);
                }
            }
        }
        self.end_io(key, io);
        result.map(drop)
    }

    /// A source whose handler removed it (`Flow::Remove`, or `cx.remove` of
    /// its own key, which left the entry `Vacant`): ends it here, where it
    /// is.
    #[inline(never)]
    fn end_io(&mut self, key: Key, mut io: Box<dyn IoEntry<T>>) {
        io.deregister(&self.registry);
        if self.is_current(key) {
            self.entries[key.index].kind = Kind::Vacant;
            self.free(key.index);
        }
    }

    pub(super) fn dispatch_signals(&mut self, data: &mut T, key: Key) -> io::Result<()> {
        let Kind::Signals(entry) = &mut self.entries[key.index].kind else {
            unreachable!("dispatch matched a signal entry")
        };
        // What a failed handler left first; the pipe was drained then, so
        // what came since will come with an event of its own.
        let mut pending = match entry.left.take() {
            Some(left) => left,
            None => entry.signals.pending(),
        };
        let Some(mut handler) = entry.handler.take() else {
            return Ok(());
        };
        let mut result = Ok(Flow::Continue);
        for signal in pending.by_ref() {
            log::trace!("pipeloop::reactor: signal {signal} for {key:?}");
            result = handler(&mut Cx::new(data, self, Some(key)), signal);
            if !matches!(result, Ok(Flow::Continue)) || !self.is_current(key) {
                break;
            }
        }
        if self.is_current(key) {
            if let Kind::Signals(entry) = &mut self.entries[key.index].kind {
                entry.handler = Some(handler);
                if result.is_err() {
                    // No event will come back for these: the next turn
                    // delivers them.
                    entry.left = Some(pending);
                    self.leave(Redo::Signals(key));
                }
            }
            if matches!(result, Ok(Flow::Remove)) {
                self.remove(key);
            }
        }
        result.map(drop)
    }

    /// Fires the timers that are due by the turn's time, earliest first
    /// (equal deadlines in the order they were scheduled), if any was due by
    /// what `TurnClock::for_timers` knows. A timer scheduled while they fire
    /// waits for the next turn, so a handler that inserts a timer that is
    /// due at once cannot keep this loop going.
    #[inline]
    pub(super) fn fire_timers(&mut self, data: &mut T) -> io::Result<()> {
        let Some(top) = self.timers.peek() else {
            return Ok(());
        };
        if top.deadline > self.clock.for_timers() {
            return Ok(());
        }
        self.fire_all_due(data)
    }

    fn fire_all_due(&mut self, data: &mut T) -> io::Result<()> {
        let limit = self.timers.next_seq();
        let result = self.fire_due(data, limit);
        for scheduled in self.deferred.drain(..) {
            // A handler may have removed it while it waited out here.
            if is_live_timer(&self.entries, &scheduled) {
                self.timers.push_back(scheduled);
            }
        }
        result
    }

    fn fire_due(&mut self, data: &mut T, limit: u64) -> io::Result<()> {
        while let Some(top) = self.timers.peek() {
            if top.deadline > self.clock.now() {
                break;
            }
            self.timers.pop();
            debug_assert!(
                is_live_timer(&self.entries, &top),
                "removal takes the entry"
            );
            if top.seq >= limit {
                self.deferred.push(top);
                continue;
            }
            self.fire(data, top)?;
        }
        Ok(())
    }

    fn fire(&mut self, data: &mut T, due: Scheduled) -> io::Result<()> {
        let entry = &mut self.entries[due.index];
        let key = Key {
            index: due.index,
            serial: entry.serial,
        };
        let Kind::Timer(timer) = &mut entry.kind else {
            unreachable!("a live timer entry")
        };
        let Some(mut handler) = timer.handler.take() else {
            return Ok(());
        };
        let period = timer.period;
        log::trace!("pipeloop::reactor: timer {key:?} due {:?}", due.deadline);
        let result = handler(&mut Cx::new(data, self, Some(key)));
        if !self.is_current(key) {
            return result.map(drop); // it removed itself
        }
        let again = match (&result, period) {
            (Ok(Flow::Continue) | Err(_), Some(period)) => Some(period),
            _ => None,
        };
        match again {
            Some(period) => {
                let next = next_deadline(due.deadline, period, self.clock.now());
                let scheduled = self.timers.schedule(next, key.index);
                if let Kind::Timer(timer) = &mut self.entries[key.index].kind {
                    timer.handler = Some(handler);
                    timer.scheduled = scheduled;
                }
            }
            None => {
                self.remove(key);
            }
        }
        result.map(drop)
    }

    /// Runs the closures that `Remote`s sent, in the order sent.
    #[inline]
    pub(super) fn run_remote(&mut self, data: &mut T) {
        if self.remote.has_jobs() {
            self.run_jobs(data);
        }
    }

    fn run_jobs(&mut self, data: &mut T) {
        let mut batch = std::mem::take(&mut self.remote_batch);
        self.remote.take_jobs(&mut batch);
        for job in batch.drain(..) {
            job(&mut Cx::new(data, self, None));
        }
        self.remote_batch = batch;
    }
}

/// Whether `scheduled` is its timer's live entry: what an entry taken out of
/// the queue (deferred) is checked with before it goes back.
pub(super) fn is_live_timer<T>(entries: &Slab<Entry<T>>, scheduled: &Scheduled) -> bool {
    match entries.get(scheduled.index) {
        Some(Entry {
            kind: Kind::Timer(timer),
            ..
        }) => timer.scheduled.seq == scheduled.seq,
        _ => false,
    }
}
