use std::io;

use crate::{Registry, Token, sys};

/// Wakes a thread blocked in [`Poll::poll`](crate::Poll::poll), from any
/// thread: that poll returns a readable event with the waker's token.
///
/// Several wakers may share one `Poll`, each with its own token. Wakes
/// coalesce: several `wake` calls before the poll that sees them may produce
/// a single event, so treat the event as "something asked for attention" and
/// check your own queue or flags, not as a count.
///
/// Nothing needs to be read after the event: the waker stays armed.
///
/// A wake belongs to the waker: if the `Waker` is dropped before a poll has
/// seen its wake, that wake may be lost. Keep the waker alive (in an `Arc`
/// shared with the threads that wake) for as long as the `Poll` polls.
///
/// # How it works
///
/// - **epoll**: an eventfd registered edge-triggered. `wake` is one `write`,
///   and every write is a new edge, so a wake plus the poll that sees it costs
///   two syscalls and nothing is drained.
/// - **poll(2)**: no fd of its own. `wake` sets the waker's flag and, only
///   if the poller is asleep in poll(2) (or about to be), writes a byte to
///   the backend's internal self-pipe (once, until the poller has seen it);
///   the poller reports every flagged waker. A wake from the polling thread
///   itself costs no syscall.
/// - **kqueue**: an `EVFILT_USER` event of its own (a pipe on OpenBSD).
///
/// Dropping a `Waker` ends its registration on every backend, even while a
/// forked child still holds a copy of its fd. It does not keep the `Poll`'s
/// own fds open; a wake after the `Poll` is gone does nothing.
///
/// # Examples
///
/// ```
/// use pipeloop::{Events, Poll, Token, Waker};
/// use std::sync::Arc;
/// use std::thread;
///
/// const WAKE: Token = Token(10);
///
/// let mut poll = Poll::new()?;
/// let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
///
/// let remote = Arc::clone(&waker);
/// let handle = thread::spawn(move || remote.wake().expect("wake"));
///
/// let mut events = Events::with_capacity(4);
/// poll.poll(&mut events, None)?;
/// assert!(events.iter().any(|e| e.token() == WAKE && e.is_readable()));
/// handle.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Waker {
    inner: sys::Waker,
}

impl Waker {
    /// A waker whose wakes are reported under `token` by the `Poll` that owns
    /// `registry`.
    ///
    /// The token should not be used by another source of the same `Poll`.
    ///
    /// # Errors
    ///
    /// The OS error if the waker's fd cannot be made or registered
    /// (e.g. `EMFILE`).
    pub fn new(registry: &Registry, token: Token) -> io::Result<Waker> {
        let inner = sys::Waker::new(registry.selector(), token)?;
        log::trace!("pipeloop: waker for {token:?} created");
        Ok(Waker { inner })
    }

    /// The same, built on a pipe instead of an eventfd on epoll (identical
    /// elsewhere). Kept for the benchmark that chose eventfd and for the
    /// tests that check both; not part of the stable API.
    #[doc(hidden)]
    #[cfg(pipeloop_epoll)]
    pub fn with_pipe(registry: &Registry, token: Token) -> io::Result<Waker> {
        let inner = sys::Waker::new_pipe(registry.selector(), token)?;
        Ok(Waker { inner })
    }

    /// Wakes the `Poll`: its current or next `poll` returns an event for this
    /// waker's token.
    ///
    /// # Errors
    ///
    /// The OS error from `write` (none is expected in practice).
    pub fn wake(&self) -> io::Result<()> {
        self.inner.wake()
    }
}
