//! A pipe end's fd and its registrations: what `Sender` and `Receiver`
//! share, and the one place that ties a registration's end to the fd's.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::{Interest, Registry, Token, sys};

/// What both ends share: the fd, and its registrations, shared with clones
/// (see `sys::Registrations`).
///
/// Dropping an end ends its registrations *before* its fd closes (`Drop`
/// runs before the fields are dropped): on epoll a registration otherwise
/// outlives the fd while a clone, a `dup` or a forked child keeps the pipe
/// open, and on poll(2) the number must be free to register again at once.
pub(super) struct End {
    /// The fd's number, for the hot paths (the same as `fd`'s).
    raw: RawFd,
    /// `None` only once `into_fd` has taken it.
    fd: Option<OwnedFd>,
    regs: sys::Registrations,
}

impl Drop for End {
    fn drop(&mut self) {
        self.regs.release_own();
    }
}

impl End {
    pub(super) fn raw(&self) -> RawFd {
        self.raw
    }

    pub(super) fn owned(&self) -> &OwnedFd {
        self.fd
            .as_ref()
            .expect("only into_fd takes the fd, and it consumes the End")
    }

    /// Re-arms `direction` if `result` proves it was used up: `WouldBlock`,
    /// or a transfer shorter than `asked` (and not 0, which is end of file or
    /// an empty buffer).
    #[inline(always)]
    pub(super) fn after(&self, direction: Interest, asked: usize, result: &io::Result<usize>) {
        // On epoll, and for level and oneshot registrations, there is
        // nothing to re-arm: one load and a branch. (The result goes on by
        // value: taking its address would keep it in memory on that path
        // too.)
        if self.regs.needs_rearm() {
            let outcome = match result {
                Ok(n) => Ok(*n),
                Err(e) => Err(e.kind()),
            };
            self.rearm_if_used_up(direction, asked, outcome);
        }
    }

    /// Only edge registrations on poll(2) and kqueue get here: kept out of
    /// line, so that the epoll path of every read and write stays small
    /// enough to inline.
    #[inline(never)]
    fn rearm_if_used_up(
        &self,
        direction: Interest,
        asked: usize,
        outcome: Result<usize, io::ErrorKind>,
    ) {
        let used_up = match outcome {
            Ok(n) => n > 0 && n < asked,
            Err(kind) => kind == io::ErrorKind::WouldBlock,
        };
        if used_up {
            self.regs.rearm(direction);
        }
    }

    pub(super) fn try_io<F, T>(&self, direction: Interest, f: F) -> io::Result<T>
    where
        F: FnOnce() -> io::Result<T>,
    {
        let result = f();
        if self.regs.needs_rearm()
            && matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        {
            self.regs.rearm(direction);
        }
        result
    }

    /// A clone shares the registrations, so that reading or writing through
    /// it re-arms them too.
    pub(super) fn try_clone(&self) -> io::Result<End> {
        let fd = self.owned().try_clone()?;
        let regs = self.regs.share(fd.as_raw_fd());
        Ok(End {
            raw: fd.as_raw_fd(),
            fd: Some(fd),
            regs,
        })
    }

    pub(super) fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        registry.traced("register", self.raw, Some((token, interests)), |s| {
            self.regs.register(s, token, interests)
        })
    }

    pub(super) fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        registry.traced("reregister", self.raw, Some((token, interests)), |s| {
            self.regs.reregister(s, token, interests)
        })
    }

    pub(super) fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.traced("deregister", self.raw, None, |s| self.regs.deregister(s))
    }

    /// The fd, still registered if it was: the caller takes over the
    /// registration with the fd.
    pub(super) fn into_fd(mut self) -> OwnedFd {
        self.regs.detach_own();
        self.fd
            .take()
            .expect("only into_fd takes the fd, and it consumes the End")
    }
}

impl From<OwnedFd> for End {
    fn from(fd: OwnedFd) -> End {
        End {
            raw: fd.as_raw_fd(),
            regs: sys::Registrations::new(fd.as_raw_fd()),
            fd: Some(fd),
        }
    }
}

/// Converts a std pipe end, making it non-blocking.
pub(super) fn nonblocking_end(fd: OwnedFd) -> End {
    // F_GETFL/F_SETFL cannot fail on an open fd that we own, and a `From`
    // has no way to report it; a failure would leave the fd blocking, which
    // `set_nonblocking` can still fix.
    let _ = sys::set_nonblocking(fd.as_raw_fd(), true);
    End::from(fd)
}
