//! Unix pipes as event sources: the heart of pipeloop.
//!
//! [`new`] makes a pipe whose ends are non-blocking and close-on-exec, as a
//! [`Sender`] (the write end) and a [`Receiver`] (the read end). Both are
//! [`Source`]s, implement [`Read`]/[`Write`] (also through `&`), convert to
//! and from [`OwnedFd`], and can be made from the pipes of a
//! [`std::process::Child`] or from [`std::io::pipe`].
//!
//! # Events
//!
//! | what happened | event on the [`Receiver`] | event on the [`Sender`] |
//! |---|---|---|
//! | bytes written | readable | |
//! | room freed by a read (the pipe was full) | | writable |
//! | every `Sender` (and every other writer) closed | [`is_read_closed`](crate::Event::is_read_closed), and readable if bytes are left; reads return them, then 0 | |
//! | every `Receiver` (and every other reader) closed | | [`is_error`](crate::Event::is_error) and [`is_write_closed`](crate::Event::is_write_closed), and writable unless the pipe is full (on kqueue always: the kernels do not say how full it is); writes fail with [`BrokenPipe`](io::ErrorKind::BrokenPipe) |
//!
//! These flags are the same on every backend (but for that one "writable"),
//! and so is how often they come: a hang-up is reported once in edge mode,
//! on every poll in level mode. As in mio, `is_readable` and
//! `is_writable` say whether bytes or room are there, so an empty pipe whose
//! writer is gone is *not* readable: check `is_read_closed` too (a read then
//! returns 0 at once).
//!
//! # Interest
//!
//! An end is registered for its own direction only: a [`Receiver`] for
//! readable, a [`Sender`] for writable. Other directions (and
//! `Interest::PRIORITY` on Linux) are dropped before the interest reaches
//! the backend, the mode kept: `READABLE | WRITABLE` registers a receiver as
//! `READABLE`. An interest with none of the end's directions (a receiver
//! registered for `WRITABLE`) is [`InvalidInput`](io::ErrorKind::InvalidInput),
//! and a refused `reregister` leaves the registration as it was. mio passes
//! the interest through, and each OS does something else with the other
//! direction (see [`SourceFd`](crate::SourceFd), which passes it through
//! too); never asking for it keeps the events the same everywhere.
//!
//! ```
//! use pipeloop::{Events, Interest, Poll, Token};
//! use std::io::{ErrorKind, Write};
//!
//! let mut poll = Poll::new()?;
//! let (mut sender, mut receiver) = pipeloop::pipe::new()?;
//! let registry = poll.registry();
//!
//! // A receiver never writes: writable alone is refused.
//! let refused = registry.register(&mut receiver, Token(0), Interest::WRITABLE);
//! assert_eq!(refused.unwrap_err().kind(), ErrorKind::InvalidInput);
//!
//! // With readable, writable is dropped and the level mode kept.
//! let interest = Interest::WRITABLE | Interest::READABLE.level();
//! registry.register(&mut receiver, Token(0), interest)?;
//! sender.write_all(b"x")?;
//! let mut events = Events::with_capacity(4);
//! for _ in 0..2 {
//!     poll.poll(&mut events, None)?; // level: reported on every poll
//!     let event = events.iter().next().unwrap();
//!     assert!(event.is_readable() && !event.is_writable());
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Edge mode and the short-read guarantee
//!
//! Registered edge-triggered (the default), a direction is reported once and
//! then again only after it was used up. For pipes that means either of:
//!
//! - an operation returned [`WouldBlock`](io::ErrorKind::WouldBlock), or
//! - **a read returned fewer bytes than asked for (but more than 0), or a
//!   write wrote fewer bytes than given.** A short read proves the pipe was
//!   empty at that moment, so any later write produces a new event. There is
//!   no need to read again just to see `WouldBlock`, which saves a syscall per
//!   message. A short write likewise proves the pipe was full.
//!
//! This holds on every backend. `Sender` and `Receiver` tell the backend
//! when these cases happen: poll(2) emulates edges with it, and kqueue uses
//! it to hold back what its kernels report beyond the contract (most of
//! them report a pipe again after every read that leaves bytes; see
//! `docs/kqueue.md`). On epoll it costs one load and a branch. Only a
//! read into an empty buffer (which returns 0 and says nothing) or one that
//! returns 0 at end of file (nothing more can arrive) does not count.
//!
//! The one exception: an event that says
//! [`is_read_closed`](crate::Event::is_read_closed) is the last one. The
//! writer is gone, nothing more can arrive and nothing more is reported, so
//! read until end of file (a read that returns 0) instead of stopping at a
//! short read. (A named pipe, a FIFO, can get a new writer later; to hear
//! from it, reregister the receiver after end of file.)
//!
//! Clones made with [`try_clone`](Receiver::try_clone) share the
//! registration: reading or writing through any of them re-arms it.
//!
//! # Atomic writes: `PIPE_BUF`
//!
//! A write of at most [`PIPE_BUF`] bytes is atomic: it is never interleaved
//! with other writers' bytes, and on a non-blocking pipe it either writes
//! everything or fails with `WouldBlock`. Larger writes may be split and
//! interleaved, and may be short. Several processes can therefore share one
//! pipe for messages of up to `PIPE_BUF` bytes.
//!
//! # `O_NONBLOCK` belongs to the open file, not the fd
//!
//! [`set_nonblocking`](Receiver::set_nonblocking) changes the open file
//! description, which is shared by every duplicate of the fd
//! ([`try_clone`](Receiver::try_clone), `dup`, `fork`) and by every process
//! the end was handed to. Making an end non-blocking while another process
//! still uses that same end (an inherited stdin, say) makes *its* reads fail
//! with `EAGAIN` too. The two ends of one pipe are separate descriptions: a
//! child that holds the other end is not affected, which is why converting
//! a [`ChildStdout`] and making it non-blocking is safe.
//!
//! # Threads
//!
//! `Sender` and `Receiver` are `Send` and `Sync`: several threads may read or
//! write through `&Receiver` / `&Sender` at once (each call is one syscall;
//! see `PIPE_BUF` for when writes do not interleave).
//!
//! # Lifetimes
//!
//! **Dropping a registered end ends its registrations**, with every `Poll`
//! it was registered with and on every backend, before its fd closes, even
//! while a [`try_clone`](Receiver::try_clone), a `dup` or a forked child
//! keeps the pipe open. (epoll by itself would keep reporting the dropped
//! end's token until the last of those closed; see
//! [`SourceFd`](crate::SourceFd) for what a raw fd gets.) A clone is
//! registered on its own: dropping the original does not end the clone's
//! registration, nor the other way round. A registration is ended only by
//! the process that made it: a forked child that drops its copy of an end
//! (the usual "close the end you do not use") leaves the parent's
//! registration alone, although it shares the parent's epoll instance.
//!
//! A registered end does not keep its `Poll`'s fds open: dropping the `Poll`
//! closes them at once, and the end then simply has nothing to deregister.
//!
//! # Giving the fd away
//!
//! [`IntoRawFd`] and `OwnedFd::from` hand over the fd as it is: if it was
//! registered, it stays registered, and from then on it is a raw fd like any
//! other (see [`SourceFd`](crate::SourceFd) for edge mode on raw fds, and
//! for what closing one without deregistering does): on kqueue its edge
//! mode stops holding back what its kernel reports beyond the contract. A
//! `Sender` or `Receiver` rebuilt from that fd does not know about the
//! registration, so on the poll(2) backend it cannot re-arm edge mode, and
//! dropping it does not end the registration: reregister it (through the
//! new value) to take the registration back. Deregister first if the fd
//! leaves your program's control.
//!
//! # `SIGPIPE`
//!
//! Writing to a pipe with no reader raises `SIGPIPE`, whose default action
//! kills the process. Rust programs ignore `SIGPIPE` before `main`, so the
//! write fails with [`BrokenPipe`](io::ErrorKind::BrokenPipe) instead. A
//! host that does not (a C program loading a Rust library, say) must ignore
//! `SIGPIPE` itself (`signal(SIGPIPE, SIG_IGN)`) to get that error.
//!
//! # Examples
//!
//! ```
//! use pipeloop::{Events, Interest, Poll, Token};
//! use std::io::{Read, Write};
//!
//! let mut poll = Poll::new()?;
//! let (mut sender, mut receiver) = pipeloop::pipe::new()?;
//! poll.registry().register(&mut receiver, Token(0), Interest::READABLE)?;
//!
//! sender.write_all(b"hello")?;
//! drop(sender);
//!
//! let mut events = Events::with_capacity(4);
//! poll.poll(&mut events, None)?;
//! let event = events.iter().next().unwrap();
//! assert!(event.is_readable() && event.is_read_closed());
//!
//! let mut text = String::new();
//! receiver.read_to_string(&mut text)?; // reads to end of file
//! assert_eq!(text, "hello");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::process::{ChildStderr, ChildStdin, ChildStdout};

mod direction;
mod end;

use direction::Direction;
use end::{End, nonblocking_end};

use crate::event::Source;
use crate::{Interest, Registry, Token, sys};

/// The largest write that is atomic on a pipe (`PIPE_BUF`): 4096 on Linux,
/// and POSIX's guaranteed minimum, 512, elsewhere.
#[cfg(pipeloop_linux)]
pub const PIPE_BUF: usize = libc::PIPE_BUF;
/// The largest write that is atomic on a pipe (`PIPE_BUF`): 4096 on Linux,
/// and POSIX's guaranteed minimum, 512, elsewhere.
#[cfg(not(pipeloop_linux))]
pub const PIPE_BUF: usize = 512;

/// Creates a pipe: a non-blocking, close-on-exec [`Sender`] and
/// [`Receiver`].
///
/// Uses `pipe2(O_CLOEXEC | O_NONBLOCK)` where it exists; elsewhere `pipe`
/// followed by `fcntl(F_SETFD, FD_CLOEXEC)` and `fcntl(F_SETFL, O_NONBLOCK)`
/// on each end. Either way, if any step fails no fd stays open.
///
/// # Errors
///
/// The OS error: `EMFILE` or `ENFILE` when the process or system is out of
/// file descriptors.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
///
/// let (mut sender, mut receiver) = pipeloop::pipe::new()?;
/// sender.write_all(b"x")?;
/// let mut buf = [0; 1];
/// receiver.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"x");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn new() -> io::Result<(Sender, Receiver)> {
    let (read, write) = sys::new_pipe()?;
    Ok((Sender::from(write), Receiver::from(read)))
}

/// The writing end of a pipe. See the [module documentation](self) for the
/// events it produces.
///
/// # Examples
///
/// Writing until the pipe is full, then waiting for room:
///
/// ```
/// use pipeloop::{Events, Interest, Poll, Token};
/// use std::io::{ErrorKind, Read, Write};
///
/// let mut poll = Poll::new()?;
/// let (mut sender, mut receiver) = pipeloop::pipe::new()?;
/// poll.registry().register(&mut sender, Token(0), Interest::WRITABLE)?;
///
/// let chunk = [0u8; 4096];
/// let mut written = 0;
/// loop {
///     match sender.write(&chunk) {
///         Ok(n) => written += n,
///         Err(e) if e.kind() == ErrorKind::WouldBlock => break,
///         Err(e) => return Err(e),
///     }
/// }
/// // Make room; the sender becomes writable again.
/// let mut buf = vec![0u8; written];
/// receiver.read_exact(&mut buf)?;
///
/// let mut events = Events::with_capacity(4);
/// poll.poll(&mut events, None)?;
/// assert!(events.iter().any(|e| e.token() == Token(0) && e.is_writable()));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Sender {
    inner: End,
}

/// The reading end of a pipe. See the [module documentation](self) for the
/// events it produces.
///
/// # Examples
///
/// Streaming a child process's output (the short-read rule ends the drain):
///
/// ```
/// use pipeloop::pipe::Receiver;
/// use pipeloop::{Events, Interest, Poll, Token};
/// use std::io::{ErrorKind, Read};
/// use std::process::{Command, Stdio};
///
/// let mut child = Command::new("echo").arg("hello").stdout(Stdio::piped()).spawn()?;
/// let mut out = Receiver::from(child.stdout.take().unwrap());
///
/// let mut poll = Poll::new()?;
/// poll.registry().register(&mut out, Token(0), Interest::READABLE)?;
/// let mut events = Events::with_capacity(4);
/// let mut text = Vec::new();
/// let mut buf = [0u8; 1024];
/// 'outer: loop {
///     poll.poll(&mut events, None)?;
///     // Once the writer is gone no further event comes: read to the end.
///     let closed = events.iter().any(|e| e.is_read_closed());
///     loop {
///         match out.read(&mut buf) {
///             Ok(0) => break 'outer, // the child closed its stdout
///             Ok(n) => {
///                 text.extend_from_slice(&buf[..n]);
///                 if n < buf.len() && !closed {
///                     break; // short read: the pipe is empty, wait for the next event
///                 }
///             }
///             Err(e) if e.kind() == ErrorKind::WouldBlock => break,
///             Err(e) => return Err(e),
///         }
///     }
/// }
/// assert_eq!(text, b"hello\n");
/// child.wait()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Receiver {
    inner: End,
}

macro_rules! common_impls {
    ($ty:ident, $direction:expr) => {
        impl $ty {
            /// Switches the end between non-blocking (how [`new`] makes it)
            /// and blocking mode.
            ///
            /// This changes the open file description, shared with every
            /// duplicate of the fd and every process holding it; see the
            /// [module documentation](self#o_nonblock-belongs-to-the-open-file-not-the-fd).
            ///
            /// # Errors
            ///
            /// The OS error from `fcntl`.
            pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
                sys::set_nonblocking(self.inner.raw(), nonblocking)
            }

            /// Runs an I/O operation of your own on the fd (through
            /// [`as_raw_fd`](AsRawFd::as_raw_fd)) and, if it returns
            /// [`WouldBlock`](io::ErrorKind::WouldBlock), re-arms edge mode
            /// on the poll(2) backend as the built-in `Read`/`Write` do.
            ///
            /// # Errors
            ///
            /// Whatever `f` returns.
            pub fn try_io<F, T>(&self, f: F) -> io::Result<T>
            where
                F: FnOnce() -> io::Result<T>,
            {
                self.inner.try_io($direction.interest(), f)
            }

            /// A second handle on the same end (`F_DUPFD_CLOEXEC`). It shares
            /// the open file description, so the `O_NONBLOCK` flag too, and
            /// is not registered anywhere.
            ///
            /// # Errors
            ///
            /// The OS error, e.g. `EMFILE`.
            pub fn try_clone(&self) -> io::Result<$ty> {
                Ok($ty {
                    inner: self.inner.try_clone()?,
                })
            }

            /// The pipe's capacity in bytes (`F_GETPIPE_SZ`); 65,536 by
            /// default on Linux.
            ///
            /// # Errors
            ///
            /// The OS error from `fcntl`.
            #[cfg(pipeloop_linux)]
            pub fn capacity(&self) -> io::Result<usize> {
                sys::pipe_capacity(self.inner.raw())
            }

            /// Sets the pipe's capacity (`F_SETPIPE_SZ`) and returns the
            /// capacity the kernel chose: at least `size`, rounded up to a
            /// power-of-two number of pages.
            ///
            /// # Errors
            ///
            /// - [`InvalidInput`](io::ErrorKind::InvalidInput) for a size the
            ///   kernel cannot take (over `i32::MAX`, or `EINVAL` from it);
            /// - [`PermissionDenied`](io::ErrorKind::PermissionDenied)
            ///   (`EPERM`) above `/proc/sys/fs/pipe-max-size` without
            ///   `CAP_SYS_RESOURCE`;
            /// - [`ResourceBusy`](io::ErrorKind::ResourceBusy) (`EBUSY`) when
            ///   shrinking below what the pipe holds.
            #[cfg(pipeloop_linux)]
            pub fn set_capacity(&self, size: usize) -> io::Result<usize> {
                sys::set_pipe_capacity(self.inner.raw(), size)
            }
        }

        /// Registers only the end's own direction: see the
        /// [module documentation](self#interest).
        impl Source for $ty {
            // Unlike mio, which hands the interest to the kernel as it is:
            // what the kernels do with the direction an end cannot do
            // differs per OS (see `direction.rs`), so it never reaches them.
            fn register(
                &mut self,
                registry: &Registry,
                token: Token,
                interests: Interest,
            ) -> io::Result<()> {
                let interests = $direction.registrable(interests)?;
                self.inner.register(registry, token, interests)
            }

            fn reregister(
                &mut self,
                registry: &Registry,
                token: Token,
                interests: Interest,
            ) -> io::Result<()> {
                let interests = $direction.registrable(interests)?;
                self.inner.reregister(registry, token, interests)
            }

            fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
                self.inner.deregister(registry)
            }
        }

        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.owned().as_fd()
            }
        }

        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.inner.raw()
            }
        }

        /// Takes ownership of `fd` without changing its flags.
        impl FromRawFd for $ty {
            /// # Safety
            ///
            /// `fd` must be an open pipe end that nothing else owns or
            /// closes.
            unsafe fn from_raw_fd(fd: RawFd) -> $ty {
                // SAFETY: the caller guarantees `fd` is open and ours.
                $ty::from(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        }

        impl IntoRawFd for $ty {
            fn into_raw_fd(self) -> RawFd {
                self.inner.into_fd().into_raw_fd()
            }
        }

        /// Takes ownership of `fd` without changing its flags (call
        /// `set_nonblocking(true)` if it may be blocking).
        impl From<OwnedFd> for $ty {
            fn from(fd: OwnedFd) -> $ty {
                $ty {
                    inner: End::from(fd),
                }
            }
        }

        impl From<$ty> for OwnedFd {
            fn from(end: $ty) -> OwnedFd {
                end.inner.into_fd()
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("fd", &self.inner.raw())
                    .finish()
            }
        }
    };
}

common_impls!(Sender, Direction::Write);
common_impls!(Receiver, Direction::Read);

impl Sender {
    #[inline]
    fn write_fd(&self, buf: &[u8]) -> io::Result<usize> {
        let result = sys::write(self.inner.raw(), buf);
        self.inner.after(Interest::WRITABLE, buf.len(), &result);
        result
    }

    #[inline]
    fn write_vectored_fd(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let result = sys::writev(self.inner.raw(), bufs);
        let asked = sys::iov_len(bufs);
        self.inner.after(Interest::WRITABLE, asked, &result);
        result
    }
}

impl Receiver {
    #[inline]
    fn read_fd(&self, buf: &mut [u8]) -> io::Result<usize> {
        let asked = buf.len();
        let result = sys::read(self.inner.raw(), buf);
        self.inner.after(Interest::READABLE, asked, &result);
        result
    }

    #[inline]
    fn read_vectored_fd(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let asked = sys::iov_len(bufs);
        let result = sys::readv(self.inner.raw(), bufs);
        self.inner.after(Interest::READABLE, asked, &result);
        result
    }
}

impl Write for Sender {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_fd(buf)
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_fd(bufs)
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &Sender {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_fd(buf)
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_fd(bufs)
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Receiver {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_fd(buf)
    }

    #[inline]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_vectored_fd(bufs)
    }
}

impl Read for &Receiver {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_fd(buf)
    }

    #[inline]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_vectored_fd(bufs)
    }
}

/// Takes the parent's end of a child's stdin and makes it non-blocking (the
/// child's end is a different open file, so the child is not affected).
impl From<ChildStdin> for Sender {
    fn from(stdin: ChildStdin) -> Sender {
        Sender {
            inner: nonblocking_end(stdin.into()),
        }
    }
}

/// Takes the parent's end of a child's stdout and makes it non-blocking.
impl From<ChildStdout> for Receiver {
    fn from(stdout: ChildStdout) -> Receiver {
        Receiver {
            inner: nonblocking_end(stdout.into()),
        }
    }
}

/// Takes the parent's end of a child's stderr and makes it non-blocking.
impl From<ChildStderr> for Receiver {
    fn from(stderr: ChildStderr) -> Receiver {
        Receiver {
            inner: nonblocking_end(stderr.into()),
        }
    }
}

/// Takes a [`std::io::pipe`] writer and makes it non-blocking (see the
/// [`O_NONBLOCK` pitfall](self#o_nonblock-belongs-to-the-open-file-not-the-fd)
/// if a clone of it was handed to another process).
impl From<io::PipeWriter> for Sender {
    fn from(writer: io::PipeWriter) -> Sender {
        Sender {
            inner: nonblocking_end(writer.into()),
        }
    }
}

/// Takes a [`std::io::pipe`] reader and makes it non-blocking (see the
/// [`O_NONBLOCK` pitfall](self#o_nonblock-belongs-to-the-open-file-not-the-fd)
/// if a clone of it was handed to another process).
impl From<io::PipeReader> for Receiver {
    fn from(reader: io::PipeReader) -> Receiver {
        Receiver {
            inner: nonblocking_end(reader.into()),
        }
    }
}
