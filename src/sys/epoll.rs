//! The epoll(7) backend (Linux, Android).
//!
//! The kernel keeps every registration; this side keeps no state per fd. The
//! trigger mode maps straight onto epoll's flags: `EPOLLET` for edge, nothing
//! for level, `EPOLLONESHOT` for oneshot. Readable interest also asks for
//! `EPOLLRDHUP`, so a peer that shut down its writing side is seen without a
//! read.
//!
//! A wait takes its timeout to the nanosecond where the kernel allows:
//! `epoll_wait` takes whole milliseconds, so a timeout with a part finer
//! than that goes to `epoll_pwait2` (Linux 5.11), which takes a timespec.
//! Where that is missing (`ENOSYS` from an older kernel, or `EPERM` from a
//! seccomp filter that does not know it), the wait falls back to
//! `epoll_wait` with the timeout rounded up to whole milliseconds, and the
//! process remembers it, so the failed call is paid once.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{PipeWaker, cvt, fork, owned};
use crate::{Interest, Token};

#[derive(Debug)]
pub(crate) struct Selector {
    /// Shared with the `Registration`s it hands out, weakly: they delete
    /// themselves while the epoll fd is open, and need nothing once it is
    /// closed.
    ep: Arc<OwnedFd>,
    /// `ep`'s number, for `epoll_wait` without a load through the `Arc`.
    raw: RawFd,
}

/// The most events one `epoll_wait` takes: the kernel refuses more with
/// `EINVAL` (`EP_MAX_EVENTS` in fs/eventpoll.c is
/// `INT_MAX / sizeof(struct epoll_event)`).
const MAX_EVENTS: usize = libc::c_int::MAX as usize / std::mem::size_of::<libc::epoll_event>();

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        // SAFETY: epoll_create1 takes only flags.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        fork::count_forks();
        Ok(Selector {
            ep: Arc::new(owned(ep)),
            raw: ep,
        })
    }

    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.ep) as usize
    }

    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<super::Registration> {
        ctl(&self.ep, libc::EPOLL_CTL_ADD, fd, Some((token, interest)))?;
        Ok(self.registration(fd))
    }

    pub(crate) fn reregister(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<super::Registration> {
        ctl(&self.ep, libc::EPOLL_CTL_MOD, fd, Some((token, interest)))?;
        Ok(self.registration(fd))
    }

    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        ctl(&self.ep, libc::EPOLL_CTL_DEL, fd, None)
    }

    fn registration(&self, fd: RawFd) -> super::Registration {
        super::Registration::epoll(Registration {
            ep: Arc::downgrade(&self.ep),
            fd,
            made_in: fork::generation(),
        })
    }

    #[inline]
    pub(crate) fn select(
        &self,
        buf: &mut super::event::EventBuf,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let events = &mut buf.events;
        if let Some(t) = timeout.filter(|&t| super::finer_than_ms(t)) {
            // Out of line, so that this stays small enough to inline.
            return PWAIT2.select(self.raw, events, t);
        }
        events.clear();
        let max = events.capacity().min(MAX_EVENTS) as libc::c_int;
        let n = epoll_wait(self.raw, events, max, super::timeout_ms(timeout))?;
        // SAFETY: epoll_wait initialised the first `n` (<= capacity) entries.
        unsafe { events.set_len(n as usize) };
        Ok(())
    }
}

/// One `epoll_wait` of at most `ms` milliseconds (`-1`: no limit) for up
/// to `max` (at most `events`' capacity) events into `events`' spare room;
/// returns how many the kernel wrote.
#[inline]
fn epoll_wait(
    ep: RawFd,
    events: &mut Vec<libc::epoll_event>,
    max: libc::c_int,
    ms: libc::c_int,
) -> io::Result<libc::c_int> {
    debug_assert!(max as usize <= events.capacity());
    // SAFETY: the buffer has room for `max` events; epoll_wait writes at
    // most that many and returns how many it wrote.
    cvt(unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), max, ms) })
}

/// The process's `epoll_pwait2`, while it is known to work.
static PWAIT2: Pwait2 = Pwait2 {
    nr: libc::SYS_epoll_pwait2,
    missing: AtomicBool::new(false),
};

/// `epoll_pwait2` by syscall number (libc has a wrapper only for glibc
/// 2.35 and later), and whether it was found missing.
struct Pwait2 {
    /// The syscall number: `SYS_epoll_pwait2`, or one that no kernel has
    /// in the tests of the fallback.
    nr: libc::c_long,
    /// Set once the kernel refused the call: every later wait with a
    /// sub-millisecond part goes straight to `epoll_wait`. Relaxed: it
    /// guards no other memory, and a thread that reads it late only makes
    /// the refused call once more.
    missing: AtomicBool,
}

/// `struct __kernel_timespec`: 64-bit fields on every architecture, which
/// `libc::timespec` is not on 32-bit ones (the raw syscall gets no
/// translation from libc).
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

impl Pwait2 {
    /// `Selector::select` with `timeout` (which the caller has split to at
    /// most `LONGEST_WAIT`) to the nanosecond, or rounded up to whole
    /// milliseconds once `epoll_pwait2` was found missing: fills `events`
    /// (cleared first) up to its capacity.
    #[inline(never)]
    fn select(
        &self,
        ep: RawFd,
        events: &mut Vec<libc::epoll_event>,
        timeout: Duration,
    ) -> io::Result<()> {
        events.clear();
        let max = events.capacity().min(MAX_EVENTS) as libc::c_int;
        let n = self.wait(ep, events, max, timeout)?;
        // SAFETY: the wait initialised the first `n` (<= capacity) entries.
        unsafe { events.set_len(n as usize) };
        Ok(())
    }

    /// One wait of at most `timeout` for up to `max` (at most `events`'
    /// capacity) events into `events`' spare room; returns how many the
    /// kernel wrote.
    fn wait(
        &self,
        ep: RawFd,
        events: &mut Vec<libc::epoll_event>,
        max: libc::c_int,
        timeout: Duration,
    ) -> io::Result<libc::c_int> {
        debug_assert!(max as usize <= events.capacity());
        if !self.missing.load(Relaxed) {
            let ts = KernelTimespec {
                tv_sec: timeout.as_secs().min(super::LONGEST_WAIT_SECS) as i64,
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            // SAFETY: the buffer has room for `max` events, which the
            // kernel writes at most; `ts` outlives the call; a null signal
            // mask leaves the mask alone (and its size is then unread).
            let result = cvt(unsafe {
                libc::syscall(
                    self.nr,
                    ep,
                    events.as_mut_ptr(),
                    max,
                    &ts as *const KernelTimespec,
                    std::ptr::null::<libc::sigset_t>(),
                    std::mem::size_of::<libc::sigset_t>(),
                )
            });
            match result {
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                    self.missing.store(true, Relaxed);
                    log::debug!(
                        "pipeloop: epoll_pwait2 is unavailable ({e}); \
                         epoll waits round timeouts up to whole milliseconds"
                    );
                }
                // At most `max` events: the count fits a c_int.
                other => return other.map(|n| n as libc::c_int),
            }
        }
        epoll_wait(ep, events, max, super::timeout_ms(Some(timeout)))
    }
}

fn ctl(
    ep: &OwnedFd,
    op: libc::c_int,
    fd: RawFd,
    what: Option<(Token, Interest)>,
) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: what.map_or(0, |(_, interest)| interest_flags(interest)),
        u64: what.map_or(0, |(token, _)| token.0 as u64),
    };
    // SAFETY: `event` is a valid epoll_event for the duration of the call
    // (ignored by EPOLL_CTL_DEL); bad fds are reported as errors.
    cvt(unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &mut event) })?;
    Ok(())
}

/// A pipeloop source's registration: deleted before the source's fd
/// closes, because epoll would keep it for as long as any other fd (a
/// clone, a `dup`, a forked child's copy) keeps the open file alive. Only
/// by the process that made it: a forked child shares the epoll instance,
/// and its copy of the source going away must not end the parent's
/// registration (see `fork.rs`).
#[derive(Debug)]
pub(crate) struct Registration {
    ep: Weak<OwnedFd>,
    fd: RawFd,
    /// `fork::generation()` when it was made.
    made_in: u64,
}

impl Registration {
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn backend(&self) -> usize {
        self.ep.as_ptr() as usize
    }

    /// Deletes the registration, if the epoll fd is still open. `ENOENT`
    /// (deregistered some other way meanwhile) is what was wanted anyway.
    pub(crate) fn release(self) {
        if self.made_in != fork::generation() {
            return; // a forked child's copy: the registration is the parent's
        }
        if let Some(ep) = self.ep.upgrade() {
            let _ = ctl(&ep, libc::EPOLL_CTL_DEL, self.fd, None);
        }
    }
}

/// The epoll flags for an interest.
pub(crate) fn interest_flags(interest: Interest) -> u32 {
    let mut flags = 0;
    if interest.is_readable() {
        flags |= libc::EPOLLIN | libc::EPOLLRDHUP;
    }
    if interest.is_writable() {
        flags |= libc::EPOLLOUT;
    }
    if interest.is_priority() {
        flags |= libc::EPOLLPRI;
    }
    if interest.is_oneshot() {
        flags |= libc::EPOLLONESHOT;
    } else if interest.is_edge() {
        flags |= libc::EPOLLET;
    }
    flags as u32
}

/// Wakes a blocked `epoll_wait`: an eventfd (or a pipe) registered
/// edge-triggered under the waker's token.
///
/// Every write to an eventfd is a new edge for epoll, so `wake` is one
/// `write` and nothing is read on the polling side: waking and seeing the
/// wake costs two syscalls. The counter is only reset when a write would
/// overflow it (`EAGAIN`), which takes 2^64 - 2 wakes. The pipe variant
/// drains itself when the pipe is full, for the same reason; it relies on
/// every pipe write waking epoll, which Linux did not do from 5.5 until
/// 5.14 restored it (only the write into an empty pipe woke it there). That
/// is one more reason the eventfd is the default, and the pipe is kept only
/// to measure against.
///
/// Its registration is deleted before its fd closes (see `Drop`): a forked
/// child's copy of the fd would otherwise keep it alive.
#[derive(Debug)]
pub(crate) struct Waker {
    fd: WakeFd,
    reg: super::Registration,
}

#[derive(Debug)]
enum WakeFd {
    EventFd(OwnedFd),
    Pipe(PipeWaker),
}

impl Waker {
    pub(crate) fn new(selector: &Selector, token: Token) -> io::Result<Waker> {
        // SAFETY: eventfd takes an initial value and flags.
        let fd = owned(cvt(unsafe {
            libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK)
        })?);
        let reg = selector.register(fd.as_raw_fd(), token, Interest::READABLE)?;
        Ok(Waker {
            fd: WakeFd::EventFd(fd),
            reg,
        })
    }

    pub(crate) fn new_pipe(selector: &Selector, token: Token) -> io::Result<Waker> {
        let pipe = PipeWaker::new()?;
        let reg = selector.register(pipe.read_fd(), token, Interest::READABLE)?;
        Ok(Waker {
            fd: WakeFd::Pipe(pipe),
            reg,
        })
    }

    pub(crate) fn wake(&self) -> io::Result<()> {
        match &self.fd {
            WakeFd::EventFd(fd) => {
                let one = 1u64.to_ne_bytes();
                match super::write(fd.as_raw_fd(), &one) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // The counter is full: empty it, then wake.
                        let mut buf = [0u8; 8];
                        let _ = super::read(fd.as_raw_fd(), &mut buf);
                        super::write(fd.as_raw_fd(), &one).map(drop)
                    }
                    other => other.map(drop),
                }
            }
            WakeFd::Pipe(pipe) => pipe.wake(),
        }
    }
}

impl Drop for Waker {
    /// Ends the registration before the fields (the fd) are dropped.
    fn drop(&mut self) {
        drop(std::mem::take(&mut self.reg));
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    use super::*;

    /// A syscall number past every kernel's table: the kernel answers
    /// `ENOSYS`, as one older than 5.11 does for `epoll_pwait2`.
    const NO_SUCH_SYSCALL: libc::c_long = 999_999;

    /// The `ENOSYS` fallback: the wait still works (an event is seen, a
    /// timeout is never cut short), and the refusal is remembered, so that
    /// later waits go to `epoll_wait` without trying again.
    #[test]
    fn pwait2_missing_falls_back_to_epoll_wait_and_remembers() {
        let missing = Pwait2 {
            nr: NO_SUCH_SYSCALL,
            missing: AtomicBool::new(false),
        };
        let selector = Selector::new().unwrap();
        let (read, write) = super::super::new_pipe().unwrap();
        let _reg = selector
            .register(read.as_raw_fd(), Token(7), Interest::READABLE)
            .unwrap();
        let mut events = Vec::with_capacity(4);
        let timeout = Duration::from_micros(300);

        let started = Instant::now();
        missing.select(selector.raw, &mut events, timeout).unwrap();
        assert!(events.is_empty());
        assert!(started.elapsed() >= timeout, "{:?}", started.elapsed());
        assert!(missing.missing.load(Relaxed), "ENOSYS was not remembered");

        super::super::write(write.as_raw_fd(), b"x").unwrap();
        missing.select(selector.raw, &mut events, timeout).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!({ events[0].u64 }, 7);
    }

    /// The real `epoll_pwait2` on a kernel that has it (5.11 and later):
    /// a timed-out wait is not cut short, and nothing is marked missing,
    /// not even by an error that is not a refusal of the call.
    #[test]
    fn pwait2_waits_at_least_its_timeout() {
        let pwait2 = Pwait2 {
            nr: libc::SYS_epoll_pwait2,
            missing: AtomicBool::new(false),
        };
        let selector = Selector::new().unwrap();
        let mut events = Vec::with_capacity(4);
        for timeout in [Duration::from_nanos(1), Duration::from_micros(300)] {
            let started = Instant::now();
            pwait2.select(selector.raw, &mut events, timeout).unwrap();
            assert!(events.is_empty());
            assert!(started.elapsed() >= timeout, "{:?}", started.elapsed());
        }
        // Asked of the kernel directly, not through `Pwait2`: where the
        // kernel (or a seccomp filter) refuses the call, the fallback is
        // right and the rest does not apply.
        let zero = KernelTimespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: room for 4 events; `zero` outlives the call; a null mask.
        let probe = cvt(unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                selector.raw,
                events.as_mut_ptr(),
                4,
                &zero as *const KernelTimespec,
                std::ptr::null::<libc::sigset_t>(),
                0,
            )
        });
        if let Err(e) = &probe
            && matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM))
        {
            return;
        }
        assert!(!pwait2.missing.load(Relaxed), "marked missing");
        // `maxevents` 0 is EINVAL: returned, and not taken for a refusal.
        let err = pwait2
            .wait(selector.raw, &mut events, 0, Duration::from_micros(300))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        assert!(!pwait2.missing.load(Relaxed), "EINVAL marked it missing");
    }
}
