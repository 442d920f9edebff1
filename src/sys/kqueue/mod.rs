//! The kqueue(2) backend: macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly.
//!
//! Compile-checked on Linux for every one of those targets
//! (`scripts/check-targets.sh`), not run: no BSD machine is at hand. Its
//! logic lives in `core.rs`, behind a seam (`core::Kernel`) that this file
//! implements with the real system call and the unit tests with a scripted
//! kernel (`fake.rs`) that answers as each OS's sources say it does. What
//! each kernel does, with the source lines, is in docs/kqueue.md.
//!
//! - **The kqueue fd** is close-on-exec: `kqueue1(O_CLOEXEC)` on NetBSD,
//!   `kqueue()` and then `fcntl(F_SETFD, FD_CLOEXEC)` elsewhere. A `fork`
//!   child does not inherit it, so the `Poll` remembers which process made
//!   it and refuses to work (or to close the number) in any other.
//! - **Filters**: `EVFILT_READ` and `EVFILT_WRITE`, one per direction; see
//!   `kevent.rs` for the translations both ways and `core.rs` for how each
//!   mode is built on them.
//! - **Errors like epoll's**: a record of each fd's filters answers
//!   `AlreadyExists` and `NotFound`; every change is submitted with
//!   `EV_RECEIPT` (checked to work when the `Poll` is made), so each
//!   change's error comes back on its own.
//! - **Wakers**: `EVFILT_USER` with `NOTE_TRIGGER` on macOS, FreeBSD,
//!   NetBSD and DragonFly, each waker with its own ident; a pipe on OpenBSD
//!   (whose `EVFILT_USER` is too recent, 2025, to rely on).
//!
//! What differs per OS in the interface, and where it is handled:
//!
//! | | macOS / iOS | FreeBSD | NetBSD | OpenBSD | DragonFly |
//! |---|---|---|---|---|---|
//! | `filter` / `flags` types | `i16` / `u16` | `i16` / `u16` | `u32` / `u32` | `i16` / `u16` | `i16` / `u16` |
//! | `nchanges` type | `c_int` | `c_int` | `size_t` | `c_int` | `c_int` |
//! | extra fields | | `ext[4]` (12+) | | | |
//! | close-on-exec kqueue | `fcntl` | `fcntl` | `kqueue1` | `fcntl` | `fcntl` |
//! | waker | `EVFILT_USER` | `EVFILT_USER` | `EVFILT_USER` | pipe | `EVFILT_USER` |
//! | oldest kernel | any | any | 10.0 (`EV_RECEIPT`; older: `Unsupported`) | any | with `EV_RECEIPT` |
//! | timeouts | a timespec, to the nanosecond (no rounding to milliseconds, unlike epoll_wait and poll); at most `LONGEST_WAIT` (about 24.8 days) per wait: `Poll::poll` splits longer ones | | | | |
//!
//! The widths are converted in `Kq::to_raw`/`from_raw`, and nowhere else.

pub(crate) mod kevent;

#[cfg(any(pipeloop_kqueue, test))]
mod core;
#[cfg(any(pipeloop_kqueue, test))]
mod events;
#[cfg(test)]
mod fake;
#[cfg(any(pipeloop_kqueue, test))]
mod plan;
#[cfg(any(pipeloop_kqueue, test))]
mod registry;
#[cfg(test)]
mod tests;
#[cfg(any(pipeloop_kqueue, test))]
mod user;

#[cfg(pipeloop_kqueue)]
pub(crate) use real::*;

#[cfg(pipeloop_kqueue)]
mod real {
    use std::io;
    use std::mem::MaybeUninit;
    #[cfg(not(pipeloop_kqueue1))]
    use std::os::fd::AsRawFd;
    use std::os::fd::{OwnedFd, RawFd};
    use std::sync::Arc;
    #[cfg(pipeloop_evfilt_user)]
    use std::sync::Weak;
    use std::time::Duration;

    use super::core::{self, Core, Kernel};
    use super::kevent::{Consts, Kev, OS};
    use crate::sys::event::EventBuf;
    use crate::sys::fork::ProcessFd;
    use crate::sys::{cvt, owned};
    use crate::{Interest, Token};

    /// The real kernel: this process's kqueue.
    #[derive(Debug)]
    pub(crate) struct Kq {
        kq: ProcessFd,
    }

    impl Kernel for Kq {
        const C: Consts = OS;
        type Raw = libc::kevent;

        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        fn to_raw(k: &Kev) -> libc::kevent {
            // SAFETY: kevent is plain data, for which all zeroes is a valid
            // value (a null udata; FreeBSD's `ext` words zero).
            let mut raw: libc::kevent = unsafe { std::mem::zeroed() };
            raw.ident = k.ident as _;
            raw.filter = k.filter as _;
            raw.flags = k.flags as _;
            raw.fflags = k.fflags as _;
            raw.data = k.data as _;
            raw.udata = k.udata as _;
            raw
        }

        #[allow(clippy::unnecessary_cast)]
        fn from_raw(raw: &libc::kevent) -> Kev {
            Kev {
                ident: raw.ident as usize,
                filter: raw.filter as i32,
                flags: raw.flags as u32,
                fflags: raw.fflags as u32,
                data: raw.data as i64,
                udata: raw.udata as usize,
            }
        }

        fn kevent(
            &self,
            changes: &[libc::kevent],
            out: &mut [MaybeUninit<libc::kevent>],
            timeout: Option<Duration>,
        ) -> io::Result<usize> {
            let kq = self.kq.get()?;
            let ts = timeout.map(crate::sys::timespec);
            let ts = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `changes` and `out` are valid slices; the kernel
            // writes at most `out.len()` entries.
            let n = cvt(unsafe {
                libc::kevent(
                    kq,
                    changes.as_ptr(),
                    changes.len() as _,
                    out.as_mut_ptr().cast(),
                    out.len() as _,
                    ts,
                )
            })?;
            Ok(n as usize)
        }

        fn is_open(&self, fd: RawFd) -> bool {
            // SAFETY: F_GETFD on any number only reads its flags.
            unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
        }

        fn gone_reader_is_ebadf(&self) -> bool {
            // NetBSD 10 does; the newest `sys_pipe.c` attaches instead, but
            // which release that reached is not known.
            cfg!(target_os = "netbsd")
        }

        fn gone_reader_deletes_write_filter(&self) -> bool {
            cfg!(target_os = "freebsd")
        }
    }

    fn new_kqueue() -> io::Result<OwnedFd> {
        #[cfg(pipeloop_kqueue1)]
        {
            // SAFETY: kqueue1 takes only flags.
            Ok(owned(cvt(unsafe { libc::kqueue1(libc::O_CLOEXEC) })?))
        }
        #[cfg(not(pipeloop_kqueue1))]
        {
            // SAFETY: kqueue takes no arguments.
            let kq = owned(cvt(unsafe { libc::kqueue() })?);
            crate::sys::fd::set_cloexec(kq.as_raw_fd())?;
            Ok(kq)
        }
    }

    /// NetBSD 10.0 has `EV_RECEIPT`, `EV_DISPATCH` and `EVFILT_USER`
    /// (`EVFILT_USER` went in after netbsd-9 branched; for the other two the
    /// first release was not verified, docs/kqueue.md); before 10 this
    /// backend is not trusted to keep its contract (a change's error could
    /// not be told from a pending event), so it refuses, and poll(2) remains.
    #[cfg(target_os = "netbsd")]
    fn check_kernel() -> io::Result<()> {
        let mib = [libc::CTL_KERN, libc::KERN_OSREV];
        let mut revision: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>();
        // SAFETY: `mib` names an int-valued sysctl, and `revision`/`len` are
        // valid for writes of one int and its size.
        cvt(unsafe {
            libc::sysctl(
                mib.as_ptr(),
                2,
                (&mut revision as *mut libc::c_int).cast(),
                &mut len,
                std::ptr::null(),
                0,
            )
        })?;
        if revision < 1_000_000_000 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the kqueue backend needs NetBSD 10 or later (kern.osrevision is {revision}); use poll"
                ),
            ));
        }
        Ok(())
    }

    #[cfg(not(target_os = "netbsd"))]
    fn check_kernel() -> io::Result<()> {
        Ok(())
    }

    #[derive(Debug)]
    pub(crate) struct Selector {
        core: Arc<Core<Kq>>,
    }

    /// A pipe end's handle on its record (see `core::Registration`).
    pub(crate) type Registration = core::Registration<Kq>;

    impl Selector {
        pub(crate) fn new() -> io::Result<Selector> {
            check_kernel()?;
            let kq = Kq {
                kq: ProcessFd::new(new_kqueue()?),
            };
            Ok(Selector {
                core: Arc::new(Core::new(kq)?),
            })
        }

        pub(crate) fn register(
            &self,
            fd: RawFd,
            token: Token,
            interest: Interest,
            rearms: bool,
        ) -> io::Result<crate::sys::Registration> {
            let (reg, stale) = self.core.register(fd, token, interest, rearms)?;
            let mut reg = crate::sys::Registration::kqueue(reg);
            reg.replaced_stale = stale;
            Ok(reg)
        }

        pub(crate) fn reregister(
            &self,
            fd: RawFd,
            token: Token,
            interest: Interest,
            rearms: bool,
        ) -> io::Result<crate::sys::Registration> {
            let reg = self.core.reregister(fd, token, interest, rearms)?;
            Ok(crate::sys::Registration::kqueue(reg))
        }

        pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
            self.core.deregister(fd)
        }

        pub(crate) fn id(&self) -> usize {
            Arc::as_ptr(&self.core) as *const u8 as usize
        }

        #[inline]
        pub(crate) fn select(
            &self,
            buf: &mut EventBuf,
            timeout: Option<Duration>,
        ) -> io::Result<()> {
            self.core
                .select(&mut buf.kevents.0, &mut buf.events, timeout)
        }
    }

    /// Wakes a blocked `kevent`: an `EVFILT_USER` event of its own,
    /// triggered with `NOTE_TRIGGER` (and the token, which the trigger
    /// would otherwise overwrite) and cleared on delivery (`EV_CLEAR`), so
    /// a wake is one syscall and nothing is drained.
    ///
    /// It refers to the kqueue weakly, as registrations do: it never keeps a
    /// dropped `Poll`'s kqueue fd open, and a wake after the `Poll` is gone
    /// does nothing.
    #[cfg(pipeloop_evfilt_user)]
    #[derive(Debug)]
    pub(crate) struct Waker {
        core: Weak<Core<Kq>>,
        ident: usize,
        token: Token,
    }

    #[cfg(pipeloop_evfilt_user)]
    impl Waker {
        pub(crate) fn new(selector: &Selector, token: Token) -> io::Result<Waker> {
            let ident = selector.core.add_user(token)?;
            Ok(Waker {
                core: Arc::downgrade(&selector.core),
                ident,
                token,
            })
        }

        pub(crate) fn wake(&self) -> io::Result<()> {
            match self.core.upgrade() {
                Some(core) => core.trigger_user(self.ident, self.token),
                None => Ok(()),
            }
        }
    }

    #[cfg(pipeloop_evfilt_user)]
    impl Drop for Waker {
        fn drop(&mut self) {
            if let Some(core) = self.core.upgrade() {
                core.delete_user(self.ident);
            }
        }
    }

    /// Wakes a blocked `kevent` where `EVFILT_USER` is not used: a pipe
    /// whose read end is registered edge-triggered, as a raw fd (plain
    /// `EV_CLEAR`: nothing on the polling side reads it, so nothing would
    /// report it used up, and no event may wait for that). Its record is
    /// forgotten before the pipe closes (see `Drop`).
    #[cfg(not(pipeloop_evfilt_user))]
    #[derive(Debug)]
    pub(crate) struct Waker {
        reg: crate::sys::Registration,
        pipe: crate::sys::PipeWaker,
    }

    #[cfg(not(pipeloop_evfilt_user))]
    impl Waker {
        pub(crate) fn new(selector: &Selector, token: Token) -> io::Result<Waker> {
            let pipe = crate::sys::PipeWaker::new()?;
            let reg = selector.register(pipe.read_fd(), token, Interest::READABLE, false)?;
            Ok(Waker { reg, pipe })
        }

        pub(crate) fn wake(&self) -> io::Result<()> {
            self.pipe.wake()
        }
    }

    #[cfg(not(pipeloop_evfilt_user))]
    impl Drop for Waker {
        /// Ends the registration before the fields (the pipe) are dropped.
        fn drop(&mut self) {
            drop(std::mem::take(&mut self.reg));
        }
    }
}
