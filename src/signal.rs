//! Unix signals as readiness events, through the self-pipe trick.
//!
//! [`Signals`] watches a set of signals and is a [`Source`](crate::event::Source): it becomes
//! readable when one of them arrives, and [`Signals::pending`] says which.
//! SIGINT, SIGTERM and SIGCHLD become ordinary events in the loop, handled
//! with ordinary code instead of inside a signal handler.
//!
//! # Why a self-pipe
//!
//! A signal handler interrupts the program at an arbitrary instruction, on an
//! arbitrary thread, perhaps one holding the allocator's lock. So a handler
//! may only do what POSIX calls *async-signal-safe*: no allocation, no
//! locks, no `println!`. It cannot run your shutdown logic. And an event loop
//! asleep in `epoll_wait` does not notice a flag set by a handler: it needs
//! an fd to become readable.
//!
//! The self-pipe trick bridges the two. pipeloop's handler sets an atomic
//! flag for the signal and writes one byte to a pipe; the pipe's read end is
//! what you register. The loop wakes, and your code, now in normal context,
//! reads which signals arrived and acts.
//!
//! # Why not signalfd
//!
//! Linux's `signalfd` delivers signals through an fd directly, but only
//! signals that are *blocked*, and blocked in every thread of the process
//! (otherwise the kernel delivers to a thread that does not block it, and the
//! signalfd never sees it). Threads started by libraries, or before the
//! mask was set, break that silently. It also does not exist on the BSDs and
//! macOS. A handler plus a pipe works with any threads, everywhere.
//!
//! # Coalescing
//!
//! Standard signals are not queued: if SIGUSR1 arrives twice before anything
//! reads it, the second is merged into the first, in the kernel and again in
//! the per-signal flag here. So `pending()` reports each signal *at least
//! once* after it arrived, never more often than it arrived, and never one
//! that did not arrive; it does not count them. Count with your own state
//! if you must (and prefer pipes or sockets for messages).
//!
//! # Drain, then act
//!
//! `pending()` first empties the pipe, then takes the flags. In that order a
//! signal that arrives in between is never lost: its flag is taken now, or
//! its byte (written after its flag) wakes the loop again. The other order
//! could take the flags, then eat the byte of a signal that arrived in
//! between, and sleep with its flag set.
//!
//! # `SA_RESTART` and `EINTR`
//!
//! The handler is installed with `SA_RESTART` (unless it chains to an
//! earlier handler that was installed without it), so most slow system calls
//! (a blocking `read`, `write`, `wait`) that a signal interrupts are
//! restarted by the kernel instead of failing with `EINTR`. A few never
//! are, whatever the flags: `epoll_wait`, `poll`, `nanosleep`, and
//! `kevent` whenever it sleeps (with no timeout or a non-zero one; the
//! FreeBSD, NetBSD, OpenBSD, DragonFly and xnu sources turn `ERESTART`
//! into `EINTR` there, "don't restart after signals", see
//! `docs/kqueue.md`). So [`Poll::poll`](crate::Poll::poll) can return
//! [`ErrorKind::Interrupted`](io::ErrorKind::Interrupted) when a signal
//! arrives while it sleeps; call it again.
//! [`EventLoop`](crate::reactor::EventLoop) does: for it an interrupted
//! poll is a turn with no events.
//!
//! # Other handlers
//!
//! Several `Signals`, on the same or different `Poll`s and threads, may
//! watch the same signal; each one sees it. A handler that was installed
//! before the first `Signals` watched a signal (by the program or another
//! library) keeps working: pipeloop's handler calls it after its own work.
//! When the last `Signals` watching a signal stops (`remove` or drop), the
//! disposition that was there before is restored, as soon as pipeloop's
//! handler is the one installed (see [Living with other signal
//! code](self#living-with-other-signal-code)).
//!
//! While a signal is watched its default action does not happen: SIGINT no
//! longer ends the program; your loop decides. For SIGCHLD that also means
//! exited children are no longer reaped automatically if SIGCHLD was set to
//! `SIG_IGN`: wait for them (`Child::try_wait`) when SIGCHLD arrives.
//!
//! If an earlier handler function was installed, pipeloop runs it after its
//! own work, installed with that handler's signal mask and its
//! `SA_RESTART`/`SA_ONSTACK`/`SA_NOCLDSTOP` flags (`SA_RESETHAND` is not
//! emulated: a one-shot earlier handler runs on every signal while pipeloop
//! watches).
//!
//! # Living with other signal code
//!
//! Other libraries install handlers too (signal-hook, which tokio's signal
//! support uses; C libraries that save the previous handler and chain to
//! it), and nobody removes them in the reverse order of installing. So:
//!
//! - Installing is one atomic `sigaction` swap: a handler installed by
//!   another thread at the same moment is chained to, never lost.
//!   Restoring checks that pipeloop's handler is on top, then swaps; a
//!   handler installed by another thread between the two calls is put
//!   back at once (a signal arriving in that instant reaches the restored
//!   disposition instead of it).
//! - Once another handler sits above pipeloop's, pipeloop's stays valid: a
//!   plain function that, when the other one calls it, notifies the
//!   watchers and chains on.
//! - pipeloop does not install itself above a handler that may chain back
//!   to it (the two would call each other until the stack overflows).
//!   While its handler is in the chain, a new `Signals` relies on being
//!   called through it and installs nothing, unless the disposition shows
//!   pipeloop is out of the chain for sure: `SIG_DFL`, `SIG_IGN`, or the
//!   handler pipeloop had replaced (put back over it). The price: a handler
//!   that replaces pipeloop's *without* chaining to it takes the signal away
//!   from pipeloop's watchers, and pipeloop cannot tell.
//! - A library can still put back, out of order, a stale handler that
//!   chains to pipeloop's after pipeloop has left the chain, and pipeloop
//!   then installs itself over it. So the handler also guards itself:
//!   called back, on the same thread, from inside the handler it chains to,
//!   it notifies its watchers but does not chain again.
//! - The earlier disposition is restored when the last watcher goes, if
//!   pipeloop's handler is the one installed. If another handler sits above
//!   it, restoring would throw that one away, so the restore waits until
//!   pipeloop's handler is back on top (that library put it back). Then
//!   whichever comes first completes it: the next `Signals` that stops
//!   watching the signal, or the next such signal, which the handler
//!   delivers as the restored disposition says (to the earlier handler, or
//!   raised again under `SIG_DFL`, so a SIGTERM that was `SIG_DFL` still
//!   terminates). A new `Signals` for the signal cancels a waiting restore
//!   instead. A library that never removes its handler (signal-hook) keeps
//!   pipeloop's in its chain for good, and the restore never comes.
//! - One race is left: a signal whose restore is waiting, handled on one
//!   thread just as another thread creates a `Signals` for it, can reach
//!   neither (the new watcher's bit is not yet set, and the handler, finding
//!   the disposition being changed, only chains, to nothing for `SIG_DFL`).
//!   The window is a few instructions wide.
//!
//! # `fork` and `exec`
//!
//! A program started with `exec` (a [`Command`](std::process::Command))
//! gets `SIG_DFL` for every signal pipeloop handles (the kernel resets
//! handled signals; ignored ones stay ignored, and the signal mask is
//! inherited), and none of pipeloop's fds: they are close-on-exec. That
//! includes a signal whose restore is waiting: a signal that was `SIG_IGN`
//! before pipeloop (SIGHUP under `nohup`, say) is `SIG_DFL` in programs
//! started meanwhile.
//!
//! A child forked *without* `exec` inherits each `Signals` and pipeloop's
//! handler, and shares each `Signals`' pipe with the parent: one open file
//! in both processes. A signal to the child writes a byte the parent's loop
//! sees (a wake-up with nothing pending), and a child that reads the pipe
//! (`pending()`) can eat the byte of a signal sent to the parent, which then
//! sees it only with the next one. Drop the inherited `Signals` in such a
//! child before relying on either side; that is safe even if another thread
//! of the parent was inside the handler at the `fork` (pipeloop's
//! `pthread_atfork` handlers see to it).
//!
//! SIGKILL and SIGSTOP cannot be caught; SIGSEGV, SIGILL, SIGFPE and SIGBUS
//! come from faults that re-occur when the handler returns. Asking for any
//! of them is an [`InvalidInput`](io::ErrorKind::InvalidInput) error.
//!
//! # Examples
//!
//! ```
//! use pipeloop::signal::Signals;
//! use pipeloop::{Events, Interest, Poll, Token};
//!
//! let mut poll = Poll::new()?;
//! let mut signals = Signals::new(&[libc::SIGUSR1])?;
//! poll.registry().register(&mut signals, Token(0), Interest::READABLE)?;
//!
//! // SAFETY: raise only sends a signal to this thread.
//! unsafe { libc::raise(libc::SIGUSR1) };
//!
//! let mut events = Events::with_capacity(4);
//! poll.poll(&mut events, None)?;
//! let arrived: Vec<_> = signals.pending().collect();
//! assert_eq!(arrived, [libc::SIGUSR1]);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::event::delegate_source;
use crate::pipe::Receiver;
use crate::sys;
use crate::sys::signal::{self as os, SigBits};

/// The usual name of a signal (`"SIGINT"`), if it has one.
///
/// # Examples
///
/// ```
/// assert_eq!(pipeloop::signal::name(libc::SIGTERM), Some("SIGTERM"));
/// ```
pub fn name(signal: libc::c_int) -> Option<&'static str> {
    os::name(signal)
}

/// A [`Source`](crate::event::Source) that is readable when one of its signals arrived.
///
/// See the [module documentation](self) for how it works and what it
/// promises.
///
/// # Events
///
/// Readable when a watched signal arrived and [`pending`](Signals::pending)
/// has not yet reported it. Now and then it is readable with nothing
/// pending: a signal whose flag `pending()` already took can leave its byte
/// in the pipe (the price of never losing one). Register it for [`Interest::READABLE`](crate::Interest::READABLE) (any
/// mode); `pending()` drains what makes it readable, so in edge mode call it
/// on every event. It is registered as its pipe's [`Receiver`] is: other
/// directions are dropped, and an interest without readable is
/// [`InvalidInput`](io::ErrorKind::InvalidInput) (see the
/// [`pipe` module](crate::pipe#interest)).
///
/// # Examples
///
/// ```
/// use pipeloop::signal::Signals;
/// use pipeloop::{Events, Interest, Poll, Token};
///
/// let mut poll = Poll::new()?;
/// let mut signals = Signals::new(&[libc::SIGUSR2])?;
/// signals.add(libc::SIGWINCH)?;
/// poll.registry().register(&mut signals, Token(7), Interest::READABLE)?;
///
/// // SAFETY: raise only sends a signal to this thread, and pipeloop's
/// // handler for it is installed.
/// unsafe { libc::raise(libc::SIGWINCH) };
///
/// let mut events = Events::with_capacity(4);
/// poll.poll(&mut events, None)?;
/// assert!(events.iter().any(|e| e.token() == Token(7) && e.is_readable()));
/// assert_eq!(signals.pending().collect::<Vec<_>>(), [libc::SIGWINCH]);
///
/// // No longer watched: its earlier disposition is back.
/// signals.remove(libc::SIGWINCH)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Signals {
    /// The pipe's read end: what is registered.
    receiver: Receiver,
    /// The write end, which the handler writes to; closed only after the
    /// slot is released.
    _sender: OwnedFd,
    /// This watcher's slot in the handler's table.
    slot: usize,
    /// The signals this `Signals` watches.
    watched: SigBits,
}

impl Signals {
    /// Watches `signals`.
    ///
    /// # Errors
    ///
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput), naming the signal,
    ///   for one that cannot be caught safely (SIGKILL, SIGSTOP, SIGSEGV,
    ///   SIGILL, SIGFPE, SIGBUS) or is not a signal; nothing is installed;
    /// - [`OutOfMemory`](io::ErrorKind::OutOfMemory) when 128 `Signals`
    ///   already exist;
    /// - the OS error from `pipe` (e.g. `EMFILE`) or `sigaction`.
    pub fn new(signals: &[libc::c_int]) -> io::Result<Signals> {
        for &signal in signals {
            os::validate(signal)?;
        }
        let (read, write) = sys::new_pipe()?;
        let slot = os::claim(write.as_raw_fd())?;
        let mut this = Signals {
            receiver: Receiver::from(read),
            _sender: write,
            slot,
            watched: SigBits::default(),
        };
        for &signal in signals {
            this.add(signal)?;
        }
        Ok(this)
    }

    /// Watches one more signal (nothing happens if it is watched already).
    ///
    /// # Errors
    ///
    /// As [`new`](Signals::new).
    pub fn add(&mut self, signal: libc::c_int) -> io::Result<()> {
        let index = os::validate(signal)?;
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if self.watched[word] & bit == 0 {
            os::watch(self.slot, index, signal)?;
            self.watched[word] |= bit;
        }
        Ok(())
    }

    /// Stops watching a signal (nothing happens if it was not watched). If no
    /// other `Signals` watches it, its earlier disposition is restored (if
    /// another library's handler sits above pipeloop's, later: see [Living
    /// with other signal code](self#living-with-other-signal-code)).
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for a signal that
    /// could never be watched.
    pub fn remove(&mut self, signal: libc::c_int) -> io::Result<()> {
        let index = os::validate(signal)?;
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if self.watched[word] & bit != 0 {
            self.watched[word] &= !bit;
            os::unwatch(self.slot, index, signal);
        }
        Ok(())
    }

    /// The signals that arrived since the last call, each once, in
    /// ascending order of number.
    ///
    /// Empties the pipe first, then takes the flags (see [drain, then
    /// act](self#drain-then-act)), so call it whenever the `Signals` is
    /// reported readable.
    pub fn pending(&mut self) -> Pending {
        let mut buf = [0u8; 64];
        loop {
            match self.receiver.read(&mut buf) {
                Ok(n) if n == buf.len() => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Short, WouldBlock, or an error that would repeat: the
                // pipe is empty as far as it can be emptied.
                _ => break,
            }
        }
        let mut bits = os::take_pending(self.slot);
        // A handler that saw a signal just before `remove` may set its flag
        // just after; report only what is still watched.
        for (bit, watched) in bits.iter_mut().zip(&self.watched) {
            *bit &= watched;
        }
        Pending { bits }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // Unwatches everything and waits until no handler uses the write
        // end; the fds close afterwards, with the fields.
        os::release(self.slot, &self.watched);
    }
}

delegate_source!(Signals => receiver);

/// The read end of the pipe, the fd that is registered.
impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.receiver.as_fd()
    }
}

/// The read end of the pipe, the fd that is registered.
impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.receiver.as_raw_fd()
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = os::signals_in(&self.watched)
            .map(|(_, signal)| os::describe(signal))
            .collect();
        f.debug_struct("Signals")
            .field("fd", &self.receiver.as_raw_fd())
            .field("watched", &names)
            .finish()
    }
}

/// The iterator returned by [`Signals::pending`]: signal numbers, each
/// once however often it arrived, in ascending order.
///
/// # Examples
///
/// ```
/// use pipeloop::signal::{self, Signals};
///
/// let mut signals = Signals::new(&[libc::SIGUSR1, libc::SIGUSR2])?;
/// assert_eq!(signals.pending().next(), None);
///
/// // SAFETY: raise only sends a signal to this thread, and pipeloop's
/// // handler for each is installed.
/// unsafe {
///     libc::raise(libc::SIGUSR2);
///     libc::raise(libc::SIGUSR1);
///     libc::raise(libc::SIGUSR2);
/// }
/// let names: Vec<_> = signals.pending().filter_map(signal::name).collect();
/// assert_eq!(names, ["SIGUSR1", "SIGUSR2"]);
/// assert_eq!(signals.pending().next(), None);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pending {
    bits: SigBits,
}

impl Iterator for Pending {
    type Item = libc::c_int;

    fn next(&mut self) -> Option<libc::c_int> {
        // Only the set bits are visited: lowest first, each cleared once
        // taken.
        for (w, word) in self.bits.iter_mut().enumerate() {
            if *word != 0 {
                let bit = word.trailing_zeros() as usize;
                *word &= *word - 1;
                return Some((w * 64 + bit) as libc::c_int);
            }
        }
        None
    }
}
