use std::io;
use std::os::fd::RawFd;

use crate::event::Source;
use crate::{Interest, Registry, Token};

/// Registers any fd the caller owns, as mio's `SourceFd` does.
///
/// `SourceFd` borrows the fd number; the caller keeps the fd open while it is
/// registered and deregisters it before closing it.
///
/// # Edge mode on the poll(2) backend
///
/// epoll and kqueue see every new edge in the kernel. poll(2) cannot, so the
/// poll backend emulates edge mode by reporting a direction once and then
/// waiting to be told that the fd was drained. pipeloop's own sources
/// ([`pipe::Sender`](crate::pipe::Sender),
/// [`pipe::Receiver`](crate::pipe::Receiver), [`Waker`](crate::Waker)) do
/// that themselves. For a raw fd, call
/// [`Registry::reregister`] after an operation returns
/// [`WouldBlock`](io::ErrorKind::WouldBlock); it is harmless on the other
/// backends. Without it an edge-triggered `SourceFd` on the poll(2) backend
/// is reported once and then stays quiet. Level and oneshot registrations
/// need nothing extra.
///
/// Close a registered fd only after deregistering it. epoll forgets a closed
/// fd by itself; the poll(2) backend forgets it when poll(2) reports it
/// invalid, or when another file is registered under the same fd number. A
/// new fd for the *same* file under the same number (a pipe's other end, or
/// the same file opened again) is refused with `AlreadyExists` until then.
///
/// # Examples
///
/// ```
/// use pipeloop::{Events, Interest, Poll, SourceFd, Token};
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
///
/// let mut poll = Poll::new()?;
/// let (_reader, writer) = std::io::pipe()?;
/// let fd = writer.as_raw_fd();
/// poll.registry().register(&mut SourceFd(&fd), Token(3), Interest::WRITABLE.level())?;
///
/// let mut events = Events::with_capacity(4);
/// poll.poll(&mut events, Some(Duration::from_secs(5)))?;
/// assert!(events.iter().any(|e| e.token() == Token(3) && e.is_writable()));
/// poll.registry().deregister(&mut SourceFd(&fd))?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SourceFd<'a>(pub &'a RawFd);

impl Source for SourceFd<'_> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        registry
            .register_fd(*self.0, token, interests)
            .map(|r| r.detach())
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        registry
            .reregister_fd(*self.0, token, interests)
            .map(|r| r.detach())
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister_fd(*self.0)
    }
}
