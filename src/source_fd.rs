use std::io;
use std::os::fd::RawFd;

use crate::event::Source;
use crate::{Interest, Registry, Token};

/// Registers any fd the caller owns, as mio's `SourceFd` does.
///
/// `SourceFd` borrows the fd number; the caller keeps the fd open while it is
/// registered and deregisters it before closing it.
///
/// # Edge mode on the poll(2) and kqueue backends
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
/// On kqueue an edge-triggered `SourceFd` is `EV_CLEAR`, as in mio, and gets
/// what the kernel reports: FreeBSD, macOS, OpenBSD and NetBSD 10 wake a
/// pipe reader's own filter on its reads, so a read that leaves bytes (or,
/// after end of file, any read) reports the fd again (`docs/kqueue.md` in
/// the repository has the kernels' source lines).
/// pipeloop's own ends hold those reports back, because they say when
/// they used a direction up.
///
/// # Interest is passed through
///
/// pipeloop does not know what a raw fd is, so a `SourceFd` hands the
/// interest to the backend unchanged. For a pipe end registered for the
/// direction it cannot do, that means different events on each system:
///
/// | backend, system | interest in a pipe end's other direction |
/// |---|---|
/// | epoll or poll(2), Linux | accepted, never reported |
/// | kqueue, FreeBSD and OpenBSD | a read end is reported writable: both ends are opened read-write, with a small buffer the other way |
/// | kqueue, DragonFly | both directions are real: its pipes are full-duplex |
/// | kqueue, NetBSD | depends on the release: refused (`EINVAL`), quiet until end of file, or never reported |
/// | kqueue, macOS | quiet until the pipe closes, then an `EV_EOF` event |
///
/// pipeloop's own [`pipe::Sender`](crate::pipe::Sender) and
/// [`pipe::Receiver`](crate::pipe::Receiver) avoid this: they register only
/// their own direction (see the [`pipe` module](crate::pipe#interest)).
///
/// # Deregister before closing
///
/// pipeloop's own sources end their registrations when dropped; a
/// `SourceFd` cannot, because pipeloop does not own the fd. Closing a
/// registered fd without deregistering it does different things on each
/// backend, all of them unwelcome:
///
/// | | the closed fd's token | its fd number, reused |
/// |---|---|---|
/// | epoll | keeps being reported for as long as another fd (a `dup`, a forked child's copy) keeps the same open file alive; nothing once the last one closes | can be registered; the old registration can no longer be removed |
/// | poll(2) | nothing: poll(2) says the fd is invalid and the entry is dropped (logged at `debug`) | until that happens, poll(2) polls **the new file and reports it under the old token and interest**; registering the new file replaces the stale entry, but a new fd for the *same* file (a pipe's other end, the same file opened again) is refused with `AlreadyExists` until the entry is dropped. The backend tells files apart by `fstat`'s device and inode, which only Linux and FreeBSD make unique for pipes: NetBSD and OpenBSD give every pipe inode 0, so there **any other pipe counts as the same file**; macOS and DragonFly reuse a freed pipe's number, so there a pipe that took over a freed one's number does |
/// | kqueue | nothing: the kernel drops the fd's filters when it is closed | can be registered (the stale record is replaced: the backend asks the kernel whether the record's filters still exist) |
///
/// None of this is detected per event, which would cost a syscall per event
/// on poll(2). Deregister first, or wrap the fd in a type whose `Drop`
/// deregisters it.
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

/// The registration is left to the caller (`detach`): pipeloop does not own
/// the fd, so it cannot end the registration when the fd closes.
impl Source for SourceFd<'_> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        let fd = *self.0;
        registry.traced("register", fd, Some((token, interests)), |s| {
            s.register(fd, token, interests, false).map(|r| r.detach())
        })
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        let fd = *self.0;
        registry.traced("reregister", fd, Some((token, interests)), |s| {
            s.reregister(fd, token, interests, false)
                .map(|r| r.detach())
        })
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        let fd = *self.0;
        registry.traced("deregister", fd, None, |s| s.deregister(fd).map(|()| false))
    }
}
