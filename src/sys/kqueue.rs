//! The kqueue(2) backend: macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly.
//!
//! Compile-checked on Linux for every one of those targets
//! (`scripts/check-targets.sh`), not run: no BSD machine is at hand.
//!
//! - **The kqueue fd** is close-on-exec: `kqueue1(O_CLOEXEC)` on NetBSD,
//!   `kqueue()` and then `fcntl(F_SETFD, FD_CLOEXEC)` elsewhere. (A kqueue is
//!   not inherited by `fork` children in any case; the flag matters for
//!   `exec` without `fork`.)
//! - **Filters**: `EVFILT_READ` and `EVFILT_WRITE`, one per direction.
//!   `EV_CLEAR` for edge, nothing for level, `EV_DISPATCH` for oneshot; see
//!   `kevent.rs` for the translations both ways.
//! - **Errors like epoll's.** kqueue accepts a second `EV_ADD` silently (it
//!   updates the filter), so this backend keeps a record of which filters
//!   each registered fd has, and answers `AlreadyExists` and `NotFound` from
//!   it. Every change is submitted with `EV_RECEIPT`, so each change's error
//!   comes back on its own, and a register that fails half-way is undone.
//!   The kernel drops an fd's filters when the fd is closed; pipeloop's own
//!   pipe ends drop the record then too, and a record for a number that now
//!   names another file is treated as stale (as in the poll(2) backend).
//! - **Wakers**: `EVFILT_USER` with `NOTE_TRIGGER` on macOS, FreeBSD,
//!   NetBSD and DragonFly, each waker with its own ident; a pipe on OpenBSD
//!   (whose `EVFILT_USER` is too recent, 2025, to rely on).
//! - **Mode changes**: a kernel keeps a filter's `EV_CLEAR`/`EV_DISPATCH`
//!   from when it was created, so a reregister that changes the mode deletes
//!   and re-adds the filter (see `kevent::changes`).
//!
//! What differs per OS, and where it is handled:
//!
//! | | macOS / iOS | FreeBSD | NetBSD | OpenBSD | DragonFly |
//! |---|---|---|---|---|---|
//! | `filter` / `flags` types | `i16` / `u16` | `i16` / `u16` | `u32` / `u32` | `i16` / `u16` | `i16` / `u16` |
//! | `nchanges` type | `c_int` | `c_int` | `size_t` | `c_int` | `c_int` |
//! | extra fields | | `ext[4]` (12+) | | | |
//! | close-on-exec kqueue | `fcntl` | `fcntl` | `kqueue1` | `fcntl` | `fcntl` |
//! | waker | `EVFILT_USER` | `EVFILT_USER` | `EVFILT_USER` | pipe | `EVFILT_USER` |
//! | oldest kernel | any | any | 10.0 (`EV_RECEIPT`; older: `Unsupported`) | any | any |
//! | write filter on a pipe whose reader is gone | reports `EV_EOF` | adding it fails `EPIPE` (ignored); an existing one reports `EV_EOF` once | reports `EV_EOF` | reports `EV_EOF` | adding it fails `EPIPE` (ignored) |
//! | timeouts | at most `INT32_MAX` s per wait (longer waits are split) | | | | |
//!
//! The widths are converted in `kev` and the accessors next to it, and
//! nowhere else.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use super::event::{self, EventBuf};
use super::kevent::{self, Change, OS};
use super::{FdMap, FileId, cvt, owned};
use crate::{Interest, Token};

#[derive(Debug)]
pub(crate) struct Selector {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kq: OwnedFd,
    table: Mutex<Table>,
    /// Idents for `EVFILT_USER` wakers: a namespace of their own, not fds.
    #[cfg_attr(not(pipeloop_evfilt_user), allow(dead_code))]
    next_user_ident: AtomicUsize,
}

/// Which filters each registered fd has.
#[derive(Debug, Default)]
struct Table {
    fds: FdMap<Slot>,
    next_id: u64,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// What the fd is registered for: its filters and their mode.
    interest: Interest,
    /// Tells one registration of an fd number from a later one.
    id: u64,
    file: FileId,
}

/// A zeroed kevent with these fields, in this OS's widths: the one place
/// where the per-OS types meet pipeloop's.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn kev(ident: usize, filter: i32, flags: u32, fflags: u32, udata: usize) -> libc::kevent {
    // SAFETY: kevent is plain data, for which all zeroes is a valid value
    // (a null udata; FreeBSD's `ext` words zero).
    let mut k: libc::kevent = unsafe { std::mem::zeroed() };
    k.ident = ident as _;
    k.filter = filter as _;
    k.flags = flags as _;
    k.fflags = fflags as _;
    k.udata = udata as _;
    k
}

#[allow(clippy::unnecessary_cast)]
fn parts(k: &libc::kevent) -> (Token, i32, u32, u32, i64) {
    (
        Token(k.udata as usize),
        k.filter as i32,
        k.flags as u32,
        k.fflags as u32,
        k.data as i64,
    )
}

/// `kevent(2)`: submits `changes`, then collects up to `out_len` events
/// into `out`.
///
/// # Safety
///
/// `out` must be valid for writes of `out_len` kevents.
unsafe fn kevent_call(
    kq: RawFd,
    changes: &[libc::kevent],
    out: *mut libc::kevent,
    out_len: usize,
    timeout: Option<&libc::timespec>,
) -> io::Result<usize> {
    let timeout = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `changes` is a valid slice and the caller vouches for `out`;
    // the kernel writes at most `out_len` events.
    let n = cvt(unsafe {
        libc::kevent(
            kq,
            changes.as_ptr(),
            changes.len() as _,
            out,
            out_len as _,
            timeout,
        )
    })?;
    Ok(n as usize)
}

const NO_WAIT: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        // macOS refuses more than INT32_MAX seconds (EINVAL); a shorter wait
        // is fine, as `Poll::poll` waits again for what is left.
        tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as _,
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Submits changes for `ident` with receipts and returns the first
    /// change's error, if any. Two errors are not errors:
    ///
    /// - `ENOENT` from a delete: the filter is gone, which is what was asked;
    /// - `EPIPE` from adding `EVFILT_WRITE` to a pipe whose reader is closed
    ///   (FreeBSD, DragonFly): the record is kept, and the closed reader is
    ///   seen as `is_write_closed` on a write, as on the other systems (mio
    ///   does the same).
    fn apply(&self, ident: usize, token: Token, changes: &[Change]) -> io::Result<()> {
        let zero = kev(0, 0, 0, 0, 0);
        let mut list = [zero; kevent::MAX_CHANGES];
        for (k, change) in list.iter_mut().zip(changes) {
            *k = kev(ident, change.filter, change.flags, 0, token.0);
        }
        let list = &list[..changes.len()];
        let mut receipts = [zero; kevent::MAX_CHANGES];
        // SAFETY: `receipts` has room for one receipt per change.
        let n = unsafe {
            kevent_call(
                self.kq.as_raw_fd(),
                list,
                receipts.as_mut_ptr(),
                list.len(),
                Some(&NO_WAIT),
            )
        }?;
        // With EV_RECEIPT each change comes back with EV_ERROR set and its
        // errno in `data` (0 when it worked), and nothing else is returned.
        for (receipt, change) in receipts[..n].iter().zip(changes) {
            let (_, _, flags, _, data) = parts(receipt);
            if flags & OS.ev_error == 0 {
                // A pending event instead of a receipt: this kernel ignores
                // EV_RECEIPT, and the event would be lost.
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this kqueue does not support EV_RECEIPT",
                ));
            }
            let errno = data as i32;
            let deleting = change.flags & OS.ev_delete != 0;
            let write_to_closed = change.filter == OS.evfilt_write && errno == libc::EPIPE;
            match errno {
                0 => {}
                libc::ENOENT if deleting => {}
                _ if write_to_closed && !deleting => {}
                _ => return Err(io::Error::from_raw_os_error(errno)),
            }
        }
        Ok(())
    }

    fn registration(self: &Arc<Inner>, fd: RawFd, id: u64) -> super::Registration {
        super::Registration::kqueue(Registration {
            inner: Arc::downgrade(self),
            fd,
            id,
        })
    }
}

impl Table {
    /// Forgets `fd` if its record was made for another file (the old fd was
    /// closed without deregistering, and the kernel dropped its filters).
    fn drop_stale(&mut self, fd: RawFd, file: FileId) -> bool {
        match self.fds.get(fd) {
            Some(slot) if slot.file != file => self.fds.remove(fd).is_some(),
            _ => false,
        }
    }

    fn registered(&self, fd: RawFd) -> io::Result<Slot> {
        self.fds
            .get(fd)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
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
        super::fd::set_cloexec(kq.as_raw_fd())?;
        Ok(kq)
    }
}

/// NetBSD gained `EV_RECEIPT`, `EV_DISPATCH` and `EVFILT_USER` in 10.0;
/// before that this backend cannot keep its contract (a change's error could
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

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        check_kernel()?;
        let inner = Inner {
            kq: new_kqueue()?,
            table: Mutex::new(Table::default()),
            next_user_ident: AtomicUsize::new(0),
        };
        Ok(Selector {
            inner: Arc::new(inner),
        })
    }

    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<super::Registration> {
        let file = FileId::of(fd)?;
        // The lock is held across the kevent call so that two threads
        // registering one fd cannot both pass the check below.
        let mut table = self.inner.lock();
        let stale = table.drop_stale(fd, file);
        if table.fds.get(fd).is_some() {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        let (add, n) = kevent::changes(None, Some(interest), &OS);
        if let Err(e) = self.inner.apply(fd as usize, token, &add[..n]) {
            // Undo the filters that were added before the failing one.
            let (undo, m) = kevent::changes(Some(interest), None, &OS);
            let _ = self.inner.apply(fd as usize, token, &undo[..m]);
            return Err(e);
        }
        table.next_id += 1;
        let slot = Slot {
            interest,
            id: table.next_id,
            file,
        };
        table.fds.set(fd, slot);
        drop(table);
        let mut reg = self.inner.registration(fd, slot.id);
        reg.replaced_stale = stale;
        Ok(reg)
    }

    pub(crate) fn reregister(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<super::Registration> {
        let file = FileId::of(fd)?;
        let mut table = self.inner.lock();
        table.drop_stale(fd, file);
        let slot = table.registered(fd)?;
        let (list, n) = kevent::changes(Some(slot.interest), Some(interest), &OS);
        // On a failure half-way the record keeps the old interest while the
        // kernel may have some of the new filters; the next reregister or
        // deregister sends every filter of both, and deletes that find
        // nothing are not errors, so the two converge.
        self.inner.apply(fd as usize, token, &list[..n])?;
        let slot = Slot { interest, ..slot };
        table.fds.set(fd, slot);
        drop(table);
        Ok(self.inner.registration(fd, slot.id))
    }

    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        let file = FileId::of(fd)?;
        let mut table = self.inner.lock();
        table.drop_stale(fd, file);
        let slot = table.registered(fd)?;
        table.fds.remove(fd);
        let (list, n) = kevent::changes(Some(slot.interest), None, &OS);
        self.inner.apply(fd as usize, Token(0), &list[..n])
    }

    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    pub(crate) fn select(&self, buf: &mut EventBuf, timeout: Option<Duration>) -> io::Result<()> {
        buf.events.clear();
        let kevents = &mut buf.kevents.0;
        kevents.clear();
        let ts = timeout.map(timespec);
        // No more than `events` can take without growing.
        let capacity = kevents
            .capacity()
            .min(buf.events.capacity())
            .min(libc::c_int::MAX as usize);
        // SAFETY: the vector's buffer has room for `capacity` kevents.
        let n = unsafe {
            kevent_call(
                self.inner.kq.as_raw_fd(),
                &[],
                kevents.as_mut_ptr(),
                capacity,
                ts.as_ref(),
            )
        }?;
        // SAFETY: kevent initialised the first `n` (<= capacity) entries.
        unsafe { kevents.set_len(n) };
        for k in kevents.iter() {
            let (token, filter, flags, fflags, data) = parts(k);
            let bits = kevent::event_flags(filter, flags, fflags, data, &OS);
            buf.events.push(event::new(token, bits));
        }
        Ok(())
    }
}

/// A pipe end's handle on its record, to forget it when the fd closes. It
/// refers to the backend weakly, so it never keeps the kqueue fd open.
#[derive(Debug)]
pub(crate) struct Registration {
    inner: Weak<Inner>,
    fd: RawFd,
    id: u64,
}

impl Registration {
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn backend(&self) -> usize {
        self.inner.as_ptr() as usize
    }

    /// The fd is about to be closed, and the kernel drops its filters then;
    /// drop the record too, if it is still this registration's.
    pub(crate) fn release(self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut table = inner.lock();
        if table
            .fds
            .get(self.fd)
            .is_some_and(|slot| slot.id == self.id)
        {
            table.fds.remove(self.fd);
        }
    }
}

/// Wakes a blocked `kevent`: an `EVFILT_USER` event of its own, triggered
/// with `NOTE_TRIGGER` and cleared on delivery (`EV_CLEAR`), so a wake is
/// one syscall and nothing is drained.
///
/// It refers to the kqueue weakly, as registrations do: it never keeps a
/// dropped `Poll`'s kqueue fd open, and a wake after the `Poll` is gone does
/// nothing.
#[cfg(pipeloop_evfilt_user)]
#[derive(Debug)]
pub(crate) struct Waker {
    inner: Weak<Inner>,
    ident: usize,
}

#[cfg(pipeloop_evfilt_user)]
impl Waker {
    pub(crate) fn new(selector: &Selector, token: Token) -> io::Result<Waker> {
        let inner = Arc::clone(&selector.inner);
        let ident = inner
            .next_user_ident
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let add = Change {
            filter: OS.evfilt_user,
            flags: OS.ev_add | OS.ev_clear | OS.ev_receipt,
        };
        inner.apply(ident, token, &[add])?;
        Ok(Waker {
            inner: Arc::downgrade(&inner),
            ident,
        })
    }

    pub(crate) fn wake(&self) -> io::Result<()> {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(());
        };
        #[allow(clippy::unnecessary_cast)] // u32 on most systems, not all
        let trigger = kev(self.ident, OS.evfilt_user, 0, libc::NOTE_TRIGGER as u32, 0);
        // SAFETY: no events are collected (`out_len` 0).
        unsafe {
            kevent_call(
                inner.kq.as_raw_fd(),
                &[trigger],
                std::ptr::null_mut(),
                0,
                Some(&NO_WAIT),
            )
        }
        .map(drop)
    }
}

#[cfg(pipeloop_evfilt_user)]
impl Drop for Waker {
    fn drop(&mut self) {
        let delete = Change {
            filter: OS.evfilt_user,
            flags: OS.ev_delete | OS.ev_receipt,
        };
        if let Some(inner) = self.inner.upgrade() {
            let _ = inner.apply(self.ident, Token(0), &[delete]);
        }
    }
}

/// Wakes a blocked `kevent` where `EVFILT_USER` is not used: a pipe whose
/// read end is registered edge-triggered (`EV_CLEAR`). Its record is
/// forgotten before the pipe closes (see `Drop`).
#[cfg(not(pipeloop_evfilt_user))]
#[derive(Debug)]
pub(crate) struct Waker {
    reg: super::Registration,
    pipe: super::PipeWaker,
}

#[cfg(not(pipeloop_evfilt_user))]
impl Waker {
    pub(crate) fn new(selector: &Selector, token: Token) -> io::Result<Waker> {
        let pipe = super::PipeWaker::new()?;
        let reg = selector.register(pipe.read_fd(), token, Interest::READABLE)?;
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
