//! `Poll`, `Registry` and `Backend`: the rules every backend shares.

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::Source;
use crate::{Events, Interest, Token, sys};

/// The environment variable that overrides [`Poll::new`]'s choice.
pub const BACKEND_ENV: &str = "PIPELOOP_BACKEND";

/// The OS mechanism a [`Poll`] waits with.
///
/// Every backend honours the same contract for pipeloop's sources: the same
/// error kinds, the same trigger modes (edge, level, oneshot), the same
/// closed-peer flags for pipes (but one: a sender whose reader is gone is
/// also writable on kqueue when its pipe is full). Beyond that they differ
/// in speed, since epoll and kqueue cost O(ready) per wait and poll(2)
/// O(registered), and in what they accept as a raw [`SourceFd`]: epoll
/// refuses a regular file with `EPERM`, poll(2) accepts it and reports it
/// always ready.
///
/// [`SourceFd`]: crate::SourceFd
///
/// # Examples
///
/// ```
/// use pipeloop::{Backend, Poll};
///
/// for &backend in Backend::available() {
///     let poll = Poll::with_backend(backend)?;
///     assert_eq!(poll.backend(), backend);
/// }
/// assert_eq!("poll".parse::<Backend>().unwrap(), Backend::Poll);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// epoll(7): Linux and Android.
    Epoll,
    /// kqueue(2): macOS, iOS and the BSDs.
    Kqueue,
    /// poll(2): every Unix.
    Poll,
}

impl Backend {
    /// The backends this system has, best first; [`Poll::new`] picks the
    /// first unless [`PIPELOOP_BACKEND`](BACKEND_ENV) says otherwise.
    pub fn available() -> &'static [Backend] {
        sys::BACKENDS
    }

    /// The name used by `PIPELOOP_BACKEND` and `Display`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Epoll => "epoll",
            Backend::Kqueue => "kqueue",
            Backend::Poll => "poll",
        }
    }

    /// Reads `PIPELOOP_BACKEND`; `None` when it is unset or empty.
    fn from_env() -> io::Result<Option<Backend>> {
        match std::env::var(BACKEND_ENV) {
            Ok(value) if value.is_empty() => Ok(None),
            Ok(value) => value
                .parse()
                .map(Some)
                .map_err(|e: io::Error| io::Error::new(e.kind(), format!("{BACKEND_ENV}: {e}"))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(value)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{BACKEND_ENV}={value:?} is not a backend name (expected epoll, kqueue or poll)"
                ),
            )),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = io::Error;

    /// Parses `epoll`, `kqueue` or `poll` (as in `PIPELOOP_BACKEND`).
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput), naming the value, for
    /// anything else. Whether the backend exists here is checked later, by
    /// [`Poll::with_backend`].
    fn from_str(s: &str) -> io::Result<Backend> {
        match s {
            "epoll" => Ok(Backend::Epoll),
            "kqueue" => Ok(Backend::Kqueue),
            "poll" => Ok(Backend::Poll),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{other:?} is not a backend name (expected epoll, kqueue or poll)"),
            )),
        }
    }
}

/// Waits for readiness events on registered sources.
///
/// A `Poll` owns the backend's kernel object (an epoll fd, a kqueue, or the
/// poll(2) table); its [`Registry`] adds and removes sources, from any
/// thread.
///
/// # After `fork`
///
/// A `Poll` belongs to the process that made it; make a new one in a forked
/// child. What the child's copy does differs by backend: a kqueue is not
/// inherited at all, so on kqueue every call in the child fails (an error of
/// kind `Other`) and dropping it closes nothing (the number may name
/// another file there); an epoll instance is shared with the parent, so
/// changes the child makes change the parent's registrations (though
/// dropping a registered pipe end in the child leaves them alone); the
/// poll(2) table is a private copy.
///
/// # Examples
///
/// ```
/// use pipeloop::{Events, Interest, Poll, Token};
/// use std::io::{Read, Write};
///
/// let mut poll = Poll::new()?;
/// let (mut sender, mut receiver) = pipeloop::pipe::new()?;
/// poll.registry().register(&mut receiver, Token(0), Interest::READABLE)?;
///
/// sender.write_all(b"ping")?;
/// let mut events = Events::with_capacity(16);
/// poll.poll(&mut events, None)?;
/// for event in &events {
///     assert_eq!(event.token(), Token(0));
///     assert!(event.is_readable());
/// }
/// let mut buf = [0; 16];
/// assert_eq!(receiver.read(&mut buf)?, 4);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Poll {
    registry: Registry,
}

impl Poll {
    /// A `Poll` on this platform's best backend (epoll on Linux and Android,
    /// kqueue on macOS, iOS and the BSDs, poll(2) elsewhere), or on the one
    /// `PIPELOOP_BACKEND` names.
    ///
    /// Without `PIPELOOP_BACKEND`, a backend the running kernel turns out not
    /// to support (kqueue on NetBSD before 10, or on a kernel without
    /// `EV_RECEIPT`) is passed over for the next
    /// best; the choice is logged at `debug` level. A backend named in
    /// `PIPELOOP_BACKEND` is never replaced by another.
    ///
    /// # Errors
    ///
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput) if `PIPELOOP_BACKEND`
    ///   is set to something other than `epoll`, `kqueue` or `poll`;
    /// - [`Unsupported`](io::ErrorKind::Unsupported) if it names a backend
    ///   this system lacks (there is no silent fallback);
    /// - the OS error if the kernel object cannot be made (e.g. `EMFILE`).
    pub fn new() -> io::Result<Poll> {
        if let Some(backend) = Backend::from_env()? {
            return Poll::with_backend(backend).map(|poll| Self::chosen(poll, BACKEND_ENV));
        }
        // The best backend this kernel supports: a build can carry one the
        // running kernel is too old for (kqueue on NetBSD before 10). Only
        // `Unsupported` moves on; any other error is returned.
        // `available()` always ends with poll(2), which every Unix has.
        let (&last, better) = Backend::available()
            .split_last()
            .expect("poll(2) is always available");
        for &backend in better {
            match Poll::with_backend(backend) {
                Ok(poll) => return Ok(Self::chosen(poll, "platform default")),
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    log::debug!("pipeloop: the {backend} backend is unsupported here ({e})");
                }
                Err(e) => return Err(e),
            }
        }
        Poll::with_backend(last).map(|poll| Self::chosen(poll, "platform default"))
    }

    fn chosen(poll: Poll, why: &str) -> Poll {
        log::debug!("pipeloop: using the {} backend ({why})", poll.backend());
        poll
    }

    /// A `Poll` on the given backend.
    ///
    /// # Errors
    ///
    /// [`Unsupported`](io::ErrorKind::Unsupported), naming the backend, if
    /// this system does not have it; the OS error if it cannot be made.
    pub fn with_backend(backend: Backend) -> io::Result<Poll> {
        let selector = sys::Selector::new(backend)?;
        log::trace!("pipeloop: created the {backend} poller");
        Ok(Poll {
            registry: Registry {
                selector: Arc::new(selector),
            },
        })
    }

    /// The backend this `Poll` waits with.
    pub fn backend(&self) -> Backend {
        self.registry.selector.backend()
    }

    /// The registry, to add, change and remove sources.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Waits until a registered source is ready or the timeout passes, and
    /// fills `events` (clearing what it held).
    ///
    /// - `None` waits until something is ready; `Some(Duration::ZERO)` only
    ///   collects what is ready now.
    /// - It returns at most [`events.capacity()`](Events::capacity) events;
    ///   the rest come with the next call.
    /// - It never returns before the timeout with no events, and a
    ///   sub-millisecond timeout sleeps instead of spinning. How finely the
    ///   timeout is kept depends on the backend and the OS:
    ///   - **epoll** (Linux 5.11 and later): to the nanosecond, with
    ///     `epoll_pwait2`; on older kernels (or where a seccomp filter
    ///     refuses that call) rounded up to the next millisecond, with
    ///     `epoll_wait`.
    ///   - **poll(2)**: to the nanosecond, with `ppoll`, on Linux, Android,
    ///     FreeBSD, NetBSD, OpenBSD, DragonFly and illumos; rounded up to
    ///     the next millisecond on macOS and other systems without `ppoll`.
    ///   - **kqueue**: to the nanosecond (`kevent` takes a timespec).
    ///
    ///   The kernel then adds its own timer slack or tick (on Linux, a
    ///   thread's timer slack, 50 µs by default); a wait never ends before
    ///   the timeout.
    ///
    /// # Errors
    ///
    /// - [`Interrupted`](io::ErrorKind::Interrupted) if a signal arrived
    ///   during the wait (EINTR); call again. A signal handler installed with
    ///   `SA_RESTART` does not change this: the kernel never restarts
    ///   `epoll_wait`, `poll` or a `kevent` that sleeps.
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput) if `events` has
    ///   capacity 0.
    #[inline]
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        if events.capacity() == 0 {
            return Err(zero_capacity());
        }
        if log::log_enabled!(log::Level::Trace) {
            return self.poll_traced(events, timeout);
        }
        self.wait(events, timeout)
    }

    /// The wait itself: one `select`. No backend returns early with nothing
    /// (poll(2), which wakes for its own reasons, waits again by itself), so
    /// no clock is read here, except for a timeout longer than one kernel
    /// wait can take.
    #[inline]
    fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let selector = &*self.registry.selector;
        match timeout {
            Some(t) if t.as_secs() >= sys::LONGEST_WAIT_SECS => wait_long(selector, events, t),
            _ => selector.select(&mut events.inner, timeout),
        }
    }

    /// `wait`, logging how long it slept and what it brought.
    #[cold]
    fn poll_traced(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let started = Instant::now();
        let result = self.wait(events, timeout);
        log::trace!(
            "pipeloop: {} woke with {} event(s) after {:?}",
            self.backend(),
            events.len(),
            started.elapsed()
        );
        result
    }
}

/// Waits for a timeout longer than `sys::LONGEST_WAIT` (about 24.8 days,
/// the most milliseconds a `c_int` holds) in waits of at most that long.
#[cold]
fn wait_long(selector: &sys::Selector, events: &mut Events, timeout: Duration) -> io::Result<()> {
    // Too far away to represent: the same as no timeout.
    let Some(deadline) = Instant::now().checked_add(timeout) else {
        return selector.select(&mut events.inner, None);
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        selector.select(&mut events.inner, Some(left.min(sys::LONGEST_WAIT)))?;
        if !events.is_empty() || left <= sys::LONGEST_WAIT {
            return Ok(());
        }
    }
}

#[cold]
fn zero_capacity() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "Events has capacity 0: there is no room for any event",
    )
}

impl fmt::Debug for Poll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poll")
            .field("backend", &self.backend())
            .finish()
    }
}

/// Registers sources with a [`Poll`]: obtained from
/// [`Poll::registry`], cloned with [`try_clone`](Registry::try_clone), and
/// usable from any thread. A change made while another thread is blocked in
/// [`Poll::poll`] takes effect during that wait.
///
/// The errors are the same on every backend: registering an fd that is
/// already registered is [`AlreadyExists`](io::ErrorKind::AlreadyExists);
/// reregistering or deregistering one that is not is
/// [`NotFound`](io::ErrorKind::NotFound); a closed or invalid fd is the OS
/// error `EBADF`.
///
/// # Examples
///
/// ```
/// use pipeloop::{Interest, Poll, Token};
/// use std::io::ErrorKind;
///
/// let poll = Poll::new()?;
/// let (_sender, mut receiver) = pipeloop::pipe::new()?;
/// let registry = poll.registry();
///
/// registry.register(&mut receiver, Token(1), Interest::READABLE)?;
/// let again = registry.register(&mut receiver, Token(1), Interest::READABLE);
/// assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);
///
/// registry.reregister(&mut receiver, Token(2), Interest::READABLE.level())?;
/// registry.deregister(&mut receiver)?;
/// let gone = registry.deregister(&mut receiver);
/// assert_eq!(gone.unwrap_err().kind(), ErrorKind::NotFound);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Registry {
    selector: Arc<sys::Selector>,
}

impl Registry {
    /// Registers `source` for `interests`, reported under `token`.
    ///
    /// The trigger mode rides in `interests` (edge unless
    /// [`level`](Interest::level) or [`oneshot`](Interest::oneshot)).
    ///
    /// A pipe end registers only its own direction (readable for a
    /// [`Receiver`](crate::pipe::Receiver), writable for a
    /// [`Sender`](crate::pipe::Sender)): the others are dropped from
    /// `interests`, the mode kept. Unlike mio, which passes the interest
    /// through; see the [`pipe` module](crate::pipe#interest) for why.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if `source` is a pipe
    /// end and `interests` has none of its directions (checked first);
    /// [`AlreadyExists`](io::ErrorKind::AlreadyExists) if the source is
    /// already registered here; `EBADF` for a closed or invalid fd; other OS
    /// errors as the backend reports them (epoll refuses regular files with
    /// `EPERM`).
    pub fn register<S>(&self, source: &mut S, token: Token, interests: Interest) -> io::Result<()>
    where
        S: Source + ?Sized,
    {
        source.register(self, token, interests)
    }

    /// Replaces the token and interest of a registered source, and re-arms a
    /// oneshot registration. A pipe end takes only its own direction, as in
    /// [`register`](Registry::register).
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if `source` is a pipe
    /// end and `interests` has none of its directions (checked first; the
    /// registration stays as it was); [`NotFound`](io::ErrorKind::NotFound)
    /// if the source is not registered here; `EBADF` for a closed or
    /// invalid fd. epoll and poll(2) change nothing when they refuse. On
    /// kqueue, which changes each direction's filter on its own, another OS
    /// error (a kernel refusing one filter, or out of memory) may leave the
    /// registration half-changed: the old token is kept, but its directions
    /// and mode may be partly new until a `reregister` succeeds.
    pub fn reregister<S>(&self, source: &mut S, token: Token, interests: Interest) -> io::Result<()>
    where
        S: Source + ?Sized,
    {
        source.reregister(self, token, interests)
    }

    /// Removes a source; no event is reported for it afterwards.
    ///
    /// # Errors
    ///
    /// [`NotFound`](io::ErrorKind::NotFound) if the source is not registered
    /// here; `EBADF` for a closed or invalid fd.
    pub fn deregister<S>(&self, source: &mut S) -> io::Result<()>
    where
        S: Source + ?Sized,
    {
        source.deregister(self)
    }

    /// Another handle on the same poller, e.g. for another thread.
    ///
    /// # Errors
    ///
    /// None today; the `Result` is kept for mio compatibility.
    pub fn try_clone(&self) -> io::Result<Registry> {
        Ok(Registry {
            selector: Arc::clone(&self.selector),
        })
    }

    pub(crate) fn selector(&self) -> &sys::Selector {
        &self.selector
    }

    /// Runs one registration change for `fd` on the backend and logs it,
    /// after `change` has released every lock it took: a logger may write
    /// into a registered pipe, whose re-arming takes those locks. `change`
    /// says whether it replaced a stale entry for `fd`'s number (an fd
    /// closed while registered, the number reused for another file).
    pub(crate) fn traced(
        &self,
        what: &str,
        fd: RawFd,
        to: Option<(Token, Interest)>,
        change: impl FnOnce(&sys::Selector) -> io::Result<bool>,
    ) -> io::Result<()> {
        let result = change(&self.selector);
        log_change(what, fd, to, &result);
        if let Ok(true) = result {
            log::debug!(
                "pipeloop: {}: fd {fd} was closed while registered and now names another file; replaced",
                self.selector.backend()
            );
        }
        result.map(drop)
    }
}

fn log_change<T>(what: &str, fd: RawFd, to: Option<(Token, Interest)>, result: &io::Result<T>) {
    match (to, result) {
        (Some((token, interests)), Ok(_)) => {
            log::trace!("pipeloop: {what} fd {fd} as {token:?} for {interests:?}")
        }
        (None, Ok(_)) => log::trace!("pipeloop: {what} fd {fd}"),
        (_, Err(e)) => log::trace!("pipeloop: {what} fd {fd} failed: {e}"),
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("selector", &self.selector)
            .finish()
    }
}
