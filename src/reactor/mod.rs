//! A reactor on top of [`Poll`]: handlers for sources, timers, signals and
//! child processes, and a [`Remote`] for other threads.
//!
//! mio stops at readiness: its users write the dispatch, the deadlines and
//! the signal plumbing themselves. [`EventLoop`] is that part, written once,
//! on pipeloop's own layers and nothing else.
//!
//! ```
//! use pipeloop::reactor::{EventLoop, Flow, Timer};
//! use pipeloop::{pipe, Interest};
//! use std::io::{Read, Write};
//! use std::time::Duration;
//!
//! struct App { bytes: usize, ticks: u32 }
//!
//! let mut ev: EventLoop<App> = EventLoop::new()?;
//! let (mut tx, rx) = pipe::new()?;
//! ev.insert(rx, Interest::READABLE, |cx, rx: &mut pipe::Receiver, event| {
//!     let mut buf = [0; 4096];
//!     loop {
//!         match rx.read(&mut buf) {
//!             Ok(0) => return Ok(Flow::Remove), // the writer is gone
//!             Ok(n) => {
//!                 cx.data.bytes += n;
//!                 // A short read used the pipe up, unless the writer is
//!                 // gone: that event is the last, so read on to the end.
//!                 if n < buf.len() && !event.is_read_closed() {
//!                     return Ok(Flow::Continue);
//!                 }
//!             }
//!             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(Flow::Continue),
//!             Err(e) => return Err(e),
//!         }
//!     }
//! })?;
//! ev.insert_timer(Timer::every(Duration::from_millis(10)), |cx| {
//!     cx.data.ticks += 1;
//!     if cx.data.ticks == 3 { cx.stop(); }
//!     Ok(Flow::Continue)
//! })?;
//! tx.write_all(b"hello")?;
//! let mut app = App { bytes: 0, ticks: 0 };
//! ev.run(&mut app)?;
//! assert_eq!((app.bytes, app.ticks), (5, 3));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # One turn of the loop
//!
//! [`run_once`](EventLoop::run_once) is one turn; [`run`](EventLoop::run)
//! repeats it. A turn:
//!
//! 1. **Computes the timeout**: the caller's, cut to the nearest timer's
//!    deadline (for which the clock is read), so that the poll wakes in time
//!    for it. A timer a second or more away is waited for in whole
//!    milliseconds, rounded down, which takes the cheaper `epoll_wait` /
//!    `poll` (the kernel's slack on such a wait is a millisecond or more
//!    anyway); if the poll wakes before the deadline, the next turn sleeps
//!    the rest to the nanosecond.
//! 2. **Runs the before-sleep hook**, if one is set and the timeout is not
//!    zero: the last chance to do work before the thread sleeps. (Remote
//!    work queued cuts the timeout to zero after the hook, in step 3.)
//! 3. **Polls**: one [`Poll::poll`], which sleeps until an event or the
//!    timeout. `EINTR` (a signal arrived) ends the wait early with no
//!    events; the turn goes on.
//! 4. **Dispatches I/O**: each event's token names an entry (slab index and
//!    part); an entry removed meanwhile gets nothing. A source's handler gets
//!    its source back, mutably, with the event; a signal watcher's runs once
//!    per pending signal; a child's gets its output, chunk by chunk, and
//!    its exit last.
//! 5. **Fires due timers**, earliest deadline first, equal deadlines in the
//!    order they were scheduled (inserted, or rescheduled by their last
//!    firing); never early. A repeating timer is rescheduled on its
//!    previous deadline plus its period. After a poll that brought nothing
//!    (its timeout passed) the clock is read and the timers due by then
//!    fire. After a poll that brought events the clock is read again only
//!    if a timer was due already by the time read in step 1 (or a handler
//!    has read it, [`Cx::now`]): a timer that came due while the poll
//!    waited for events fires in the next turn, whose poll does not wait,
//!    and a turn with events reads the clock once.
//! 6. **Runs remote work**: the closures [`Remote::send`] queued, in the
//!    order sent.
//!
//! Handlers may insert and remove anything during a turn. A handler's error
//! ends the turn after that handler returns, and `run` / `run_once` return
//! it; events of the turn not dispatched yet are kept for the next turn, so
//! none is lost, and the loop can be run again. What the error cut short
//! within its own event (the rest of a child's pipe, signals already taken
//! from the self-pipe, children still to ask after a `SIGCHLD`) is done
//! first in the next turn, before the kept events, or before step 1 if none
//! was kept. `trace!` logs every event
//! and firing timer, so a program that installs a logger (`poller --trace`
//! does, and honours `RUST_LOG=pipeloop=trace`) shows the loop at work;
//! [`describe`](EventLoop::describe) prints what it holds.

mod child;
mod clock;
mod cx;
mod describe;
mod inner;
mod key;
mod remote;
mod timers;

use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

pub use child::{CHILD_WATCH_ENV, ChildEvent};
pub use cx::Cx;
pub use describe::Describe;
pub use key::Key;
pub use remote::Remote;
pub use timers::Timer;

use crate::event::{Event, Source};
use crate::{Backend, Events, Interest, Poll, Waker};
use inner::Inner;

/// What a handler wants after it ran.
///
/// # Examples
///
/// ```
/// use pipeloop::reactor::{EventLoop, Flow, Timer};
/// use std::time::Duration;
///
/// let mut ev: EventLoop<u32> = EventLoop::new()?;
/// ev.insert_timer(Timer::every(Duration::from_millis(1)), |cx| {
///     *cx.data += 1;
///     Ok(if *cx.data == 3 { Flow::Remove } else { Flow::Continue })
/// })?;
/// let mut ticks = 0;
/// ev.run(&mut ticks)?; // returns once nothing is left to wait for
/// assert_eq!(ticks, 3);
/// assert!(ev.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep the entry (a one-shot timer is done all the same).
    Continue,
    /// Remove the entry: its source is deregistered and dropped, a child is
    /// killed and reaped (see [`EventLoop::spawn`]).
    Remove,
}

/// An event loop that owns its sources and runs a handler for each of
/// their events, its timers and signals, and its children's output; see the
/// [module docs](self) for one turn, step by step.
///
/// `T` is the loop's data: `run` takes a `&mut T` and every handler gets it
/// as `cx.data`.
///
/// # Examples
///
/// Work sent from another thread runs on the loop's thread; `run` returns
/// once it has run and no [`Remote`] is left:
///
/// ```
/// use pipeloop::reactor::EventLoop;
///
/// let mut ev: EventLoop<u32> = EventLoop::new()?;
/// let remote = ev.remote();
/// let worker = std::thread::spawn(move || remote.send(|cx| *cx.data = 42));
/// let mut answer = 0;
/// ev.run(&mut answer)?;
/// worker.join().unwrap()?;
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct EventLoop<T> {
    poll: Poll,
    events: Events,
    inner: Inner<T>,
    /// Events of the last turn that a handler's error or `stop` left
    /// undispatched: the next turn dispatches them instead of polling.
    resume_at: Option<usize>,
}

/// Events one poll takes at most.
const EVENTS: usize = 256;

impl<T> EventLoop<T> {
    /// A loop on the backend [`Poll::new`] picks.
    ///
    /// # Errors
    ///
    /// As [`Poll::new`], and the errors of making the loop's waker.
    pub fn new() -> io::Result<EventLoop<T>> {
        EventLoop::from_poll(Poll::new()?)
    }

    /// A loop on `backend`, as [`Poll::with_backend`].
    ///
    /// # Errors
    ///
    /// As [`Poll::with_backend`].
    pub fn with_backend(backend: Backend) -> io::Result<EventLoop<T>> {
        EventLoop::from_poll(Poll::with_backend(backend)?)
    }

    fn from_poll(poll: Poll) -> io::Result<EventLoop<T>> {
        let waker = Waker::new(poll.registry(), key::REMOTE)?;
        let registry = poll.registry().try_clone()?;
        let remote = Arc::new(remote::Shared::new(waker));
        Ok(EventLoop {
            inner: Inner::new(registry, remote),
            events: Events::with_capacity(EVENTS),
            poll,
            resume_at: None,
        })
    }

    /// The backend the loop polls with.
    pub fn backend(&self) -> Backend {
        self.poll.backend()
    }

    /// Registers `source` for `interest` and keeps it: `handler` gets it
    /// back, mutably, with each of its events. The loop owns it from now on;
    /// [`remove`](Self::remove) (or the handler's
    /// [`Flow::Remove`]) deregisters and drops it.
    ///
    /// In edge mode (the default) the handler must use a direction up (read
    /// until `WouldBlock` or a short read) before another event comes; see
    /// the [`pipe`](crate::pipe) docs.
    ///
    /// # Errors
    ///
    /// The errors of [`Registry::register`](crate::Registry::register).
    pub fn insert<S, F>(&mut self, source: S, interest: Interest, handler: F) -> io::Result<Key>
    where
        S: Source + AsRawFd + 'static,
        F: FnMut(&mut Cx<'_, T>, &mut S, &Event) -> io::Result<Flow> + 'static,
    {
        self.inner.insert_io(source, interest, handler)
    }

    /// Inserts a timer: `handler` runs when it is due (see [`Timer`]).
    /// Returning [`Flow::Continue`] keeps a repeating timer's cadence;
    /// [`Flow::Remove`] ends it.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for a repeating timer
    /// with a zero period.
    pub fn insert_timer<F>(&mut self, timer: Timer, handler: F) -> io::Result<Key>
    where
        F: FnMut(&mut Cx<'_, T>) -> io::Result<Flow> + 'static,
    {
        self.inner.insert_timer(timer, Box::new(handler))
    }

    /// Watches `signals` (through [`signal::Signals`](crate::signal::Signals)):
    /// `handler` runs once per pending signal per turn, with its number.
    ///
    /// # Errors
    ///
    /// As [`Signals::new`](crate::signal::Signals::new).
    pub fn insert_signals<F>(&mut self, signals: &[libc::c_int], handler: F) -> io::Result<Key>
    where
        F: FnMut(&mut Cx<'_, T>, libc::c_int) -> io::Result<Flow> + 'static,
    {
        self.inner.insert_signals(signals, Box::new(handler))
    }

    /// Spawns `command` with its stdout and stderr piped to the loop (any
    /// `stdout`/`stderr` set on it is replaced; stdin is left as set).
    /// `handler` gets each chunk of output as it is read, then
    /// [`ChildEvent::Exit`], always last: after the child exited and both
    /// pipes reached end of file. The entry goes after `Exit`.
    ///
    /// The loop reaps only its own children (`waitpid` on their pids), when a
    /// pidfd (Linux 5.3+) or `SIGCHLD` (elsewhere, where `pidfd_open` fails,
    /// or with [`CHILD_WATCH_ENV`] set to `sigchld`) says one exited. Its child's pid is
    /// [`pid`](Self::pid), to signal it or its process group.
    /// Removing the key before `Exit` (or dropping the loop) **kills the
    /// child** (`SIGKILL`) and reaps it, so that none outlives its entry or
    /// is left a zombie; to stop a child gently, signal it and wait for
    /// `Exit`.
    ///
    /// # Errors
    ///
    /// The errors of [`Command::spawn`], of watching the child's exit, and
    /// of registering its pipes (the child is then killed and reaped).
    pub fn spawn<F>(&mut self, command: &mut Command, handler: F) -> io::Result<Key>
    where
        F: FnMut(&mut Cx<'_, T>, ChildEvent<'_>) -> io::Result<Flow> + 'static,
    {
        self.inner.spawn(command, Box::new(handler))
    }

    /// Removes what `key` names: a source is deregistered and dropped, a
    /// timer cancelled, a signal watcher dropped, a child killed and reaped.
    /// `false` for a key that names nothing (any more): never a panic.
    pub fn remove(&mut self, key: Key) -> bool {
        self.inner.remove(key)
    }

    /// The pid of the child `key` names, while its entry is there.
    pub fn pid(&self, key: Key) -> Option<u32> {
        self.inner.child_pid(key)
    }

    /// A handle for other threads, to wake the loop or send it work.
    pub fn remote(&self) -> Remote<T> {
        Remote::new(&self.inner.remote)
    }

    /// Sets the hook that runs when the loop may block in `poll`, replacing
    /// any earlier one. It does not run when the turn's timeout is zero
    /// (`run_once(.., Some(ZERO))`, or a timer already due); it does run
    /// when remote work is queued, before that work cuts the wait to zero.
    /// Its error ends the turn, as a handler's does.
    pub fn before_sleep<F>(&mut self, hook: F)
    where
        F: FnMut(&mut Cx<'_, T>) -> io::Result<()> + 'static,
    {
        self.inner.before_sleep = Some(Box::new(hook));
    }

    /// How many things the loop holds: sources, timers, signal watchers and
    /// children.
    pub fn len(&self) -> usize {
        self.inner.live_entries()
    }

    /// Whether the loop holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs turns until a handler calls [`Cx::stop`], a handler fails, or
    /// nothing is left to wait for: no source, timer, signal watcher or
    /// child, no [`Remote`] alive, no remote work queued, and nothing an
    /// earlier turn left (work an error cut short, events kept undispatched)
    /// (libuv's rule: a loop with nothing to wait for returns instead of
    /// hanging).
    ///
    /// # Errors
    ///
    /// A handler's error, after that handler returned; the error of a poll
    /// (not `EINTR`: the turn goes on as after a poll with no events).
    pub fn run(&mut self, data: &mut T) -> io::Result<()> {
        loop {
            if self.resume_at.is_none() && self.inner.is_idle() {
                return Ok(());
            }
            self.run_once(data, None)?;
            if self.inner.stop {
                self.inner.stop = false;
                return Ok(());
            }
        }
    }

    /// One turn: poll for at most `timeout` (cut to the nearest timer),
    /// dispatch the events, fire the due timers, run remote work. With no
    /// timeout and nothing left to wait for (as [`run`](Self::run) says),
    /// it does not poll, rather than sleep for ever.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub fn run_once(&mut self, data: &mut T, timeout: Option<Duration>) -> io::Result<()> {
        // A stop asked in an earlier turn was for that turn (or for `run`,
        // which has seen it).
        self.inner.stop = false;
        self.inner.begin_turn();
        let result = self.turn(data, timeout);
        self.inner.events_kept = self.resume_at.is_some();
        self.inner.end_turn();
        result
    }

    fn turn(&mut self, data: &mut T, timeout: Option<Duration>) -> io::Result<()> {
        if self.inner.redo.is_some() {
            // What a handler error left: no event comes back for it. It is
            // the rest of an event dispatched before any kept one, so it
            // goes first; a stop there ends the turn, as one in step 4 does.
            self.inner.run_redo(data)?;
            if self.inner.stop {
                return Ok(());
            }
        }
        let first = match self.resume_at.take() {
            Some(first) => first,
            None => {
                self.wait(data, timeout)?;
                0
            }
        };
        for (i, event) in self.events.iter().enumerate().skip(first) {
            let result = self.inner.dispatch(data, event);
            if result.is_err() || self.inner.stop {
                let next = i + 1;
                self.resume_at = (next < self.events.len()).then_some(next);
                return result;
            }
        }
        self.inner.fire_timers(data)?;
        self.inner.run_remote(data);
        Ok(())
    }

    /// Steps 1 to 3 of a turn: the timeout, the before-sleep hook, the poll.
    fn wait(&mut self, data: &mut T, asked: Option<Duration>) -> io::Result<()> {
        let mut timeout = self.inner.poll_timeout(asked);
        if timeout != Some(Duration::ZERO) && self.inner.before_sleep.is_some() {
            self.inner.run_before_sleep(data)?;
            if self.inner.stop {
                self.events.clear();
                return Ok(());
            }
            // It may have inserted a timer.
            timeout = self.inner.poll_timeout(asked);
        }
        if timeout.is_none() && self.inner.is_idle() {
            // Nothing is left that could end a wait without a timeout (the
            // hook or left-over work removed the last entry, or found its
            // own removed): it would never return.
            self.events.clear();
            return Ok(());
        }
        if self.inner.remote.has_jobs() {
            // Queued work does not wait for its wake-up.
            timeout = Some(Duration::ZERO);
        }
        let polled = self.poll.poll(&mut self.events, timeout);
        // (`poll` empties `events` first, so an error leaves none.)
        self.inner.clock.poll_returned(!self.events.is_empty());
        match polled {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.events.clear();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A printable view of what the loop holds: each source with its key,
    /// token, fd and interest, each timer with the time to its next deadline
    /// and its period, each signal watcher with its signals, token and fd,
    /// each child with its pid and the fds it is watched through.
    pub fn describe(&self) -> Describe<'_, T> {
        Describe {
            inner: &self.inner,
            backend: self.backend(),
        }
    }
}

impl<T> Drop for EventLoop<T> {
    /// Makes remotes' `send` and `wake` fail from now on; sources, timers and
    /// children go with the loop (children still running are killed, and
    /// all are reaped).
    fn drop(&mut self) {
        self.inner.remote.close();
    }
}

impl<T> std::fmt::Debug for EventLoop<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("backend", &self.backend())
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::inner::Kind;
    use super::timers::Start;
    use super::*;
    use std::time::Instant;

    /// The deadline the timer `key` waits for.
    fn deadline_of<T>(ev: &EventLoop<T>, key: Key) -> Instant {
        match &ev.inner.entries[key.index].kind {
            Kind::Timer(timer) => timer.scheduled.deadline,
            _ => panic!("{key:?} is not a timer"),
        }
    }

    /// A repeating timer whose first deadline is `first`.
    fn every_from(first: Instant, period: Duration) -> Timer {
        Timer {
            start: Start::At(first),
            period: Some(period),
        }
    }

    /// A repeating timer goes back on its previous deadline plus its period,
    /// not on the time it fired (which would drift by each turn's lateness),
    /// and a loop held up past several periods skips them, keeping the
    /// phase, instead of firing them in a burst. Checked on the deadlines
    /// themselves: the integration tests only see when handlers ran.
    #[test]
    fn a_repeating_timer_is_rescheduled_on_its_deadline_plus_its_period() {
        let mut ev: EventLoop<u32> = EventLoop::new().unwrap();
        let hour = Duration::from_secs(3600);
        let first = Instant::now() - Duration::from_millis(1);
        let on_time = ev
            .insert_timer(every_from(first, hour), |cx| {
                *cx.data += 1;
                Ok(Flow::Continue)
            })
            .unwrap();
        // Held up three and a half periods (of a second: a clock that has
        // not run that long since boot cannot say so).
        let second = Duration::from_secs(1);
        let held_up = Instant::now().checked_sub(second * 7 / 2);
        let late = held_up.map(|start| {
            ev.insert_timer(every_from(start, second), |cx| {
                *cx.data += 1;
                Ok(Flow::Continue)
            })
            .unwrap()
        });
        let mut fired = 0;
        ev.run_once(&mut fired, Some(Duration::ZERO)).unwrap();
        assert_eq!(fired, 1 + u32::from(late.is_some()), "each fired once");
        assert_eq!(deadline_of(&ev, on_time), first + hour);
        if let (Some(late), Some(start)) = (late, held_up) {
            // The turn ran well within half a period of `held_up`: the next
            // deadline is the fourth period's end, not the first's (a burst)
            // nor a period after the turn's time (a drift).
            assert_eq!(deadline_of(&ev, late), start + second * 4);
        }
    }
}
