//! `Remote`: other threads' handle on a loop, to wake it or send it work.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Cx;
use crate::Waker;

/// Work sent to a loop: run on the loop's thread, with its `Cx`.
pub(super) type Job<T> = Box<dyn FnOnce(&mut Cx<'_, T>) + Send>;

pub(super) struct Shared<T> {
    jobs: Mutex<VecDeque<Job<T>>>,
    /// `jobs` is not empty: read on every turn without the lock.
    queued: AtomicBool,
    /// The loop is gone: `send` fails.
    closed: AtomicBool,
    /// `Remote`s alive. The last one to go wakes the loop, so that a `run`
    /// asleep for want of nothing but remotes sees that it can return.
    remotes: AtomicUsize,
    waker: Waker,
}

impl<T> Shared<T> {
    pub(super) fn new(waker: Waker) -> Shared<T> {
        Shared {
            jobs: Mutex::new(VecDeque::new()),
            queued: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            remotes: AtomicUsize::new(0),
            waker,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Job<T>>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether any `Remote` is alive.
    pub(super) fn has_remotes(&self) -> bool {
        self.remotes.load(Ordering::Acquire) > 0
    }

    #[inline]
    pub(super) fn has_jobs(&self) -> bool {
        self.queued.load(Ordering::Acquire)
    }

    /// Moves the queued jobs into `batch` (empty, its memory kept from the
    /// last time), so that they run without the lock held.
    pub(super) fn take_jobs(&self, batch: &mut VecDeque<Job<T>>) {
        let mut jobs = self.lock();
        std::mem::swap(&mut *jobs, batch);
        self.queued.store(false, Ordering::Release);
    }

    /// The loop is being dropped: later sends fail, and what is queued is
    /// dropped with the loop.
    pub(super) fn close(&self) {
        let mut jobs = self.lock();
        self.closed.store(true, Ordering::Release);
        jobs.clear();
    }
}

/// Another thread's handle on an [`EventLoop`](super::EventLoop): it wakes
/// the loop, or sends it a closure to run on the loop's thread with the
/// loop's [`Cx`]. `Send`, `Sync` and `Clone`.
///
/// Closures sent from one thread run in the order they were sent, at the end
/// of a turn. While any `Remote` is alive, [`run`](super::EventLoop::run)
/// does not return for want of things to wait for: the remote may still send
/// work.
///
/// # Examples
///
/// ```
/// use pipeloop::reactor::EventLoop;
///
/// let mut ev: EventLoop<u32> = EventLoop::new()?;
/// let remote = ev.remote();
/// let sender = std::thread::spawn(move || {
///     for _ in 0..3 {
///         remote.send(|cx| *cx.data += 1).unwrap();
///     }
/// }); // the thread ends and drops the remote: `run` returns once all ran
/// let mut total = 0;
/// ev.run(&mut total)?;
/// sender.join().unwrap();
/// assert_eq!(total, 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Remote<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Remote<T> {
    pub(super) fn new(shared: &Arc<Shared<T>>) -> Remote<T> {
        shared.remotes.fetch_add(1, Ordering::AcqRel);
        Remote {
            shared: Arc::clone(shared),
        }
    }
}

impl<T> Drop for Remote<T> {
    /// The last remote to go wakes the loop: its work was queued before
    /// (and is seen with the count), and `run` may now have nothing left to
    /// wait for.
    fn drop(&mut self) {
        if self.shared.remotes.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.shared.waker.wake();
        }
    }
}

impl<T> Remote<T> {
    /// Sends `work` to run on the loop's thread, and wakes the loop.
    ///
    /// # Errors
    ///
    /// [`NotConnected`](io::ErrorKind::NotConnected) if the loop is gone;
    /// the error of waking it otherwise (which leaves the work queued).
    pub fn send<F>(&self, work: F) -> io::Result<()>
    where
        F: FnOnce(&mut Cx<'_, T>) + Send + 'static,
    {
        {
            // Checked under the lock that `close` takes: a send that saw the
            // loop alive queued its work before the loop dropped the queue,
            // or sees it closed.
            let mut jobs = self.shared.lock();
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(gone());
            }
            jobs.push_back(Box::new(work));
            self.shared.queued.store(true, Ordering::Release);
        }
        self.shared.waker.wake()
    }

    /// Wakes the loop: its `run_once` returns (after a turn with nothing
    /// else to do), and `run` goes round once more.
    ///
    /// # Errors
    ///
    /// [`NotConnected`](io::ErrorKind::NotConnected) if the loop is gone.
    pub fn wake(&self) -> io::Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(gone());
        }
        self.shared.waker.wake()
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the event loop is gone")
}

impl<T> Clone for Remote<T> {
    fn clone(&self) -> Remote<T> {
        Remote::new(&self.shared)
    }
}

impl<T> fmt::Debug for Remote<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
