//! Registering, reregistering and deregistering on the kqueue backend:
//! the plan of each change, the kernel's answers, and what they say about
//! the record (still its fd's, stale, or a write end whose reader is gone).

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::core::{Core, Kernel, Registration, Slot, is_watched};
use super::kevent::{self, WRITE};
use super::plan::{Answers, Liveness, Plan, Role, liveness, os_error};
use crate::{Interest, Token};

/// Counts a registration as watched from before its kernel change until
/// its record is written (which counts it for good): a poller that collects
/// the new filter's first event meanwhile then takes the lock, which the
/// change holds, and finds the record, instead of delivering the event
/// unaccounted.
struct WatchedAhead<'a>(Option<&'a AtomicUsize>);

impl<'a> WatchedAhead<'a> {
    fn new(watched: &'a AtomicUsize, interest: Interest, rearms: bool) -> WatchedAhead<'a> {
        WatchedAhead(is_watched(interest, rearms).then(|| {
            watched.fetch_add(1, Ordering::Relaxed);
            watched
        }))
    }
}

impl Drop for WatchedAhead<'_> {
    fn drop(&mut self) {
        if let Some(watched) = self.0 {
            watched.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<K: Kernel> Core<K> {
    /// Whether the record `slot` is still `fd`'s, from the answers to a
    /// plan's probes and deletes: `Ok(write_gone)` if it is (the reader of a
    /// write end turned out to be gone), else the errno to answer with:
    /// `EBADF` if the fd is not open, `ENOENT` if it is but the record's
    /// filters are gone (the fd was closed and its number reused). The
    /// kernel's errno alone does not tell these apart on xnu, which answers
    /// a change without `EV_ADD` for a closed fd with `ENOENT` (it looks for
    /// the knote before it looks up the fd); the others answer `EBADF`.
    ///
    /// A sender's missing write filter does not make its record stale by
    /// itself: FreeBSD deletes that filter once it reported that the reader
    /// is gone (`knlist_clear` makes it `EV_ONESHOT`), perhaps before this
    /// backend saw the report. An add of the filter tells them apart: refused
    /// with `EPIPE` (FreeBSD's answer for a gone reader), it is the record's
    /// write end; accepted, a file the record is not for. (DragonFly refuses
    /// with `EPIPE` too, but keeps the filter of a sender whose reader went,
    /// so there a missing filter is always another file's.) Refused with
    /// `EBADF`, the fd was closed when the add ran, whatever the number names
    /// now; but on NetBSD, which keeps a gone reader's filter, that may also
    /// be a new file whose reader is gone, so there it is `ENOENT`, as for
    /// any new file.
    fn verdict(
        &self,
        fd: RawFd,
        slot: &Slot,
        plan: &Plan,
        answers: &Answers,
    ) -> io::Result<Result<bool, i32>> {
        Ok(match liveness(plan, answers) {
            Liveness::Live => Ok(false),
            Liveness::Closed => Err(libc::EBADF),
            Liveness::Unknown | Liveness::Stale if !self.kernel.is_open(fd) => Err(libc::EBADF),
            Liveness::Unknown => Ok(false),
            Liveness::Stale if slot.kernel_set() == WRITE => {
                let add = answers
                    .of(plan)
                    .find(|(step, _)| step.role == Role::Add && step.bit == WRITE);
                let errno = match add {
                    Some((_, errno)) => errno,
                    None => self.add_write_and_delete(fd, slot.token)?,
                };
                match errno {
                    libc::EPIPE if self.kernel.gone_reader_deletes_write_filter() => Ok(true),
                    libc::EBADF if !self.kernel.gone_reader_is_ebadf() => Err(libc::EBADF),
                    _ => Err(libc::ENOENT),
                }
            }
            Liveness::Stale => Err(libc::ENOENT),
        })
    }

    /// Adds `fd`'s write filter disabled and deletes it again, in one call;
    /// returns the add's errno.
    fn add_write_and_delete(&self, fd: RawFd, token: Token) -> io::Result<i32> {
        let c = K::C;
        let mut plan = Plan::default();
        plan.push(WRITE, c.ev_add | c.ev_disable | c.ev_receipt, Role::Add);
        plan.push(WRITE, c.ev_delete | c.ev_receipt, Role::Cleanup);
        Ok(self.submit(fd, token, &plan)?.errnos[0])
    }

    /// Whether the record `slot` is still `fd`'s, asked of the kernel;
    /// `Ok(Some(write_gone))` if it is.
    fn is_live(&self, fd: RawFd, slot: &Slot) -> io::Result<Option<bool>> {
        let mut plan = Plan::default();
        plan.probe(slot, &K::C);
        let answers = self.submit(fd, slot.token, &plan)?;
        Ok(self.verdict(fd, slot, &plan, &answers)?.ok())
    }

    /// The error for a change to an fd that has no record.
    fn not_registered(&self, fd: RawFd) -> io::Error {
        if self.kernel.is_open(fd) {
            os_error(libc::ENOENT)
        } else {
            os_error(libc::EBADF)
        }
    }

    /// Whether `errno`, from adding `fd`'s `EVFILT_WRITE`, says that the
    /// pipe's reader is gone: FreeBSD and DragonFly refuse with `EPIPE`,
    /// NetBSD 10 with `EBADF`; the others attach and report `EV_EOF`
    /// (docs/kqueue.md, row c). `EBADF` also says that the fd was closed when
    /// the add ran, and another thread may have reused the number since; so
    /// where it can mean both, it means the reader only if the fd is open and
    /// a second add is refused the same way (anything else is a file that
    /// came after the first add; one that came after it and is itself a
    /// write end whose reader is gone still passes).
    fn reader_is_gone(&self, fd: RawFd, token: Token, errno: i32) -> io::Result<bool> {
        Ok(match errno {
            libc::EPIPE => true,
            libc::EBADF if self.kernel.gone_reader_is_ebadf() && self.kernel.is_open(fd) => {
                self.add_write_and_delete(fd, token)? == libc::EBADF
            }
            _ => false,
        })
    }

    /// Reads the answers to a plan's adds and deletes: `Ok(write_closed)`,
    /// or the first real error. Two errors are not errors: `ENOENT` from a
    /// delete (the filter is gone, as asked), and an add of `EVFILT_WRITE`
    /// refused because the pipe's reader is gone (`reader_is_gone`): the
    /// sender is write-closed.
    fn outcome(&self, fd: RawFd, token: Token, plan: &Plan, answers: &Answers) -> io::Result<bool> {
        let mut write_closed = false;
        for (step, errno) in answers.of(plan) {
            match (step.role, errno) {
                (_, 0) | (Role::Probe, _) => {}
                (Role::Delete | Role::Cleanup, libc::ENOENT) => {}
                (Role::Add, e) if step.bit == WRITE && self.reader_is_gone(fd, token, e)? => {
                    write_closed = true
                }
                _ => return Err(os_error(errno)),
            }
        }
        Ok(write_closed)
    }

    /// Deletes the filters a plan added, after the plan failed.
    fn undo_adds(&self, fd: RawFd, plan: &Plan, answers: &Answers) {
        let mut undo = Plan::default();
        for (step, errno) in answers.of(plan) {
            if step.role == Role::Add && errno == 0 {
                undo.push(step.bit, K::C.ev_delete | K::C.ev_receipt, Role::Cleanup);
            }
        }
        if undo.len > 0 {
            let _ = self.submit(fd, Token(0), &undo);
        }
    }

    /// After a reregister failed half-way: gives the filters it added the
    /// record's token back, so that their events still find the record
    /// (`bookkeep` goes by token). `EV_ADD` again, with the old token, keeps
    /// their mode and rewrites `udata` on every kernel. The filters its
    /// probe rewrote (everywhere but OpenBSD) were then added or deleted;
    /// such a step on a filter that exists is expected to fail only when
    /// the fd was closed, which takes the filter with it (not checked in
    /// every kernel's source).
    fn restore_token(&self, fd: RawFd, old: &Slot, plan: &Plan, answers: &Answers) {
        let mut restore = Plan::default();
        for (step, errno) in answers.of(plan) {
            if step.role == Role::Add && errno == 0 {
                restore.push(step.bit, K::C.ev_add | K::C.ev_receipt, Role::Add);
            }
        }
        if restore.len > 0 {
            let _ = self.submit(fd, old.token, &restore);
        }
    }

    pub(crate) fn register(
        self: &Arc<Self>,
        fd: RawFd,
        token: Token,
        interest: Interest,
        rearms: bool,
    ) -> io::Result<(Registration<K>, bool)> {
        let c = K::C;
        // The lock is held across the kevent calls so that two threads
        // registering one fd cannot both pass the check below.
        let mut st = self.lock();
        let mut stale = false;
        if let Some(mut slot) = st.fds.get(fd) {
            if let Some(write_gone) = self.is_live(fd, &slot)? {
                if write_gone {
                    self.latch_write_closed(&mut st, fd, &mut slot);
                    st.fds.set(fd, slot);
                }
                return Err(os_error(libc::EEXIST));
            }
            self.forget(&mut st, fd);
            stale = true;
        }
        let mode = kevent::mode_flags(interest, &c);
        let mut plan = Plan::default();
        plan.change(None, Some((kevent::filters_of(interest), mode)), &c);
        let _ahead = WatchedAhead::new(&self.watched, interest, rearms);
        let answers = self.submit(fd, token, &plan)?;
        let write_closed = match self.outcome(fd, token, &plan, &answers) {
            Ok(write_closed) => write_closed,
            Err(e) => {
                self.undo_adds(fd, &plan, &answers);
                return Err(e);
            }
        };
        st.next_id += 1;
        let slot = Slot {
            token,
            interest,
            rearms,
            id: st.next_id,
            unknown: false,
            read_closed: false,
            write_closed,
            armed: 0,
            held: 0,
            fired: false,
        };
        self.insert(&mut st, fd, slot);
        drop(st);
        Ok((self.registration(fd, &slot), stale))
    }

    pub(crate) fn reregister(
        self: &Arc<Self>,
        fd: RawFd,
        token: Token,
        interest: Interest,
        rearms: bool,
    ) -> io::Result<Registration<K>> {
        let c = K::C;
        let mut st = self.lock();
        let Some(old) = st.fds.get(fd) else {
            return Err(self.not_registered(fd));
        };
        let mode = kevent::mode_flags(interest, &c);
        let mut wanted = kevent::filters_of(interest);
        if old.write_closed {
            wanted &= !WRITE;
        }
        // Probe first: the changes after it act on whatever file the number
        // names now, and are undone if the probe says the record is stale.
        let mut plan = Plan::default();
        plan.probe(&old, &c);
        plan.change(Some(&old), Some((wanted, mode)), &c);
        let _ahead = WatchedAhead::new(&self.watched, interest, rearms);
        let answers = self.submit(fd, token, &plan)?;
        let write_gone = match self.verdict(fd, &old, &plan, &answers)? {
            Ok(write_gone) => write_gone,
            Err(errno) => {
                self.undo_adds(fd, &plan, &answers);
                self.forget(&mut st, fd);
                return Err(os_error(errno));
            }
        };
        let write_closed = match self.outcome(fd, token, &plan, &answers) {
            Ok(now) => old.write_closed || write_gone || now,
            Err(e) => {
                self.restore_token(fd, &old, &plan, &answers);
                let mut slot = old;
                slot.unknown = true;
                st.fds.set(fd, slot);
                return Err(e);
            }
        };
        let slot = Slot {
            token,
            interest,
            rearms,
            unknown: false,
            read_closed: false,
            write_closed,
            ..old
        };
        self.remove(&mut st, fd);
        self.insert(&mut st, fd, slot);
        drop(st);
        Ok(self.registration(fd, &slot))
    }

    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        let mut st = self.lock();
        let Some(slot) = st.fds.get(fd) else {
            return Err(self.not_registered(fd));
        };
        let mut plan = Plan::default();
        plan.change(Some(&slot), None, &K::C);
        let answers = self.submit(fd, slot.token, &plan)?;
        let live = self.verdict(fd, &slot, &plan, &answers)?;
        self.forget(&mut st, fd);
        live.map_err(os_error)?;
        self.outcome(fd, slot.token, &plan, &answers).map(drop)
    }
}
