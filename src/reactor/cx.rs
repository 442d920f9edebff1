//! `Cx`: what a handler gets besides its event, to change the loop while it
//! dispatches.

use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Instant;

use super::inner::Inner;
use super::{ChildEvent, Flow, Key, Remote, Timer};
use crate::Interest;
use crate::event::{Event, Source};

/// A handler's view of the loop: the loop's data (`cx.data`, the `&mut T`
/// passed to [`run`](super::EventLoop::run)), and the loop itself, to insert
/// and remove things, stop it, or read the time.
///
/// Changes take effect at once: a source removed here gets no further event,
/// even one collected in this turn already; a source inserted here gets
/// nothing from events collected before it existed.
///
/// # Examples
///
/// ```
/// use pipeloop::reactor::{EventLoop, Flow, Timer};
/// use std::time::Duration;
///
/// let mut ev: EventLoop<Vec<&'static str>> = EventLoop::new()?;
/// ev.insert_timer(Timer::after(Duration::ZERO), |cx| {
///     cx.data.push("first");
///     // A handler inserts into the loop that runs it.
///     cx.insert_timer(Timer::after(Duration::from_millis(1)), |cx| {
///         cx.data.push("second");
///         cx.stop();
///         Ok(Flow::Continue)
///     })?;
///     Ok(Flow::Continue)
/// })?;
/// let mut log = Vec::new();
/// ev.run(&mut log)?;
/// assert_eq!(log, ["first", "second"]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Cx<'a, T> {
    /// The loop's data: one `&mut T` for every handler, so no
    /// `Rc<RefCell<_>>` is needed to share state between them.
    pub data: &'a mut T,
    inner: &'a mut Inner<T>,
    key: Option<Key>,
}

impl<'a, T> Cx<'a, T> {
    pub(super) fn new(data: &'a mut T, inner: &'a mut Inner<T>, key: Option<Key>) -> Cx<'a, T> {
        Cx { data, inner, key }
    }

    /// The key of the entry whose handler runs (`None` for remote work and
    /// the before-sleep hook).
    pub fn key(&self) -> Option<Key> {
        self.key
    }

    /// Inserts a source, as [`EventLoop::insert`](super::EventLoop::insert).
    pub fn insert<S, F>(&mut self, source: S, interest: Interest, handler: F) -> io::Result<Key>
    where
        S: Source + AsRawFd + 'static,
        F: FnMut(&mut Cx<'_, T>, &mut S, &Event) -> io::Result<Flow> + 'static,
    {
        self.inner.insert_io(source, interest, handler)
    }

    /// Inserts a timer, as
    /// [`EventLoop::insert_timer`](super::EventLoop::insert_timer).
    pub fn insert_timer<F>(&mut self, timer: Timer, handler: F) -> io::Result<Key>
    where
        F: FnMut(&mut Cx<'_, T>) -> io::Result<Flow> + 'static,
    {
        self.inner.insert_timer(timer, Box::new(handler))
    }

    /// Watches signals, as
    /// [`EventLoop::insert_signals`](super::EventLoop::insert_signals).
    pub fn insert_signals<F>(&mut self, signals: &[libc::c_int], handler: F) -> io::Result<Key>
    where
        F: FnMut(&mut Cx<'_, T>, libc::c_int) -> io::Result<Flow> + 'static,
    {
        self.inner.insert_signals(signals, Box::new(handler))
    }

    /// Spawns a child, as [`EventLoop::spawn`](super::EventLoop::spawn).
    pub fn spawn<F>(&mut self, command: &mut Command, handler: F) -> io::Result<Key>
    where
        F: FnMut(&mut Cx<'_, T>, ChildEvent<'_>) -> io::Result<Flow> + 'static,
    {
        self.inner.spawn(command, Box::new(handler))
    }

    /// Removes what `key` names, this handler's own entry included; `false`
    /// for a stale key.
    pub fn remove(&mut self, key: Key) -> bool {
        self.inner.remove(key)
    }

    /// The pid of the child `key` names, while its entry is there.
    pub fn pid(&self, key: Key) -> Option<u32> {
        self.inner.child_pid(key)
    }

    /// Makes [`run`](super::EventLoop::run) return after this turn, or
    /// before the rest of it. From an I/O, signal or child handler: once the
    /// event being dispatched is done (a child's event may run its handler
    /// for several chunks first); the turn's other events, due timers and
    /// remote work wait for the next run, none lost. The same from work an
    /// error left for the start of the next turn (the rest of a child's
    /// pipe, a signal left over): that turn ends there, before its poll.
    /// From a timer or remote work: at the end of the turn (its other due
    /// timers and queued remote work still run). From the before-sleep hook:
    /// the loop does not poll, and the turn goes on with no events (queued
    /// remote work still runs).
    pub fn stop(&mut self) {
        self.inner.stop = true;
    }

    /// The time of this turn: the same instant for every handler that asks
    /// after the turn's poll returned (for I/O events, timers, remote
    /// work), read from the clock when one first asks or when the loop
    /// needs it to fire timers. So it is never earlier than the poll's
    /// return, nor later than the call; a timer's handler always gets one at
    /// or after its deadline, as the timers are compared with it. A turn in
    /// which nothing needs it reads no clock for it.
    ///
    /// Handlers that run before the poll (the
    /// [before-sleep hook](super::EventLoop::before_sleep), and work a
    /// handler's error left for the next turn) get a time read before it,
    /// not the one the handlers after it see.
    pub fn now(&self) -> Instant {
        self.inner.clock.now()
    }

    /// A handle for other threads (see [`Remote`]).
    pub fn remote(&self) -> Remote<T> {
        Remote::new(&self.inner.remote)
    }
}

impl<T> std::fmt::Debug for Cx<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx")
            .field("key", &self.key)
            .field("now", &self.inner.clock.if_read())
            .finish_non_exhaustive()
    }
}
