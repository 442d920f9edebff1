//! What pipeloop's own sources (pipe ends) keep about their registrations.
//!
//! epoll needs nothing: the kernel keeps every registration and forgets it
//! when the last fd of the open file is closed. The poll(2) backend keeps its
//! table in user space, so a pipe end must tell it two things: that an
//! edge-triggered direction was used up (`WouldBlock` or a short transfer,
//! so it can re-arm it), and that the registered fd is being closed (so it
//! can forget it before the number is reused). kqueue needs only the second:
//! the kernel drops an fd's filters when it is closed, but the backend's own
//! record of which filters the fd has (how it tells `AlreadyExists` from
//! `NotFound`) must go too.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

#[cfg(pipeloop_kqueue)]
use super::kqueue;
use super::{Selector, poll};
use crate::Interest;

/// One registration of one fd with a backend that keeps state for it
/// (poll(2), kqueue); empty on epoll. Dropping it forgets the fd in that
/// backend; [`detach`](Registration::detach) keeps it registered.
#[derive(Debug, Default)]
#[must_use = "dropping a Registration deregisters the fd on the poll(2) and kqueue backends; call detach() to keep it"]
pub(crate) struct Registration(Option<Tracked>);

#[derive(Debug)]
enum Tracked {
    Poll(poll::Registration),
    #[cfg(pipeloop_kqueue)]
    Kqueue(kqueue::Registration),
}

impl Registration {
    /// What epoll returns: nothing to keep.
    #[cfg(pipeloop_epoll)]
    pub(crate) const NONE: Registration = Registration(None);

    pub(super) fn poll(reg: poll::Registration) -> Registration {
        Registration(Some(Tracked::Poll(reg)))
    }

    #[cfg(pipeloop_kqueue)]
    pub(super) fn kqueue(reg: kqueue::Registration) -> Registration {
        Registration(Some(Tracked::Kqueue(reg)))
    }

    /// Whether short transfers must be reported (only poll(2) emulates
    /// edges).
    fn needs_rearm(&self) -> bool {
        matches!(self.0, Some(Tracked::Poll(_)))
    }

    /// Stops tracking the registration, leaving it in the backend.
    pub(crate) fn detach(mut self) {
        self.0 = None;
    }

    fn rearm(&self, interest: Interest) {
        if let Some(Tracked::Poll(reg)) = &self.0 {
            reg.rearm(interest);
        }
    }

    /// Whether both name the same fd in the same backend table.
    fn same_entry(&self, other: &Registration) -> bool {
        match (&self.0, &other.0) {
            (Some(Tracked::Poll(a)), Some(Tracked::Poll(b))) => a.same_entry(b),
            #[cfg(pipeloop_kqueue)]
            (Some(Tracked::Kqueue(a)), Some(Tracked::Kqueue(b))) => a.same_entry(b),
            _ => false,
        }
    }

    fn belongs_to(&self, selector: &Selector) -> bool {
        match (&self.0, selector) {
            (Some(Tracked::Poll(reg)), Selector::Poll(s)) => s.owns(reg),
            #[cfg(pipeloop_kqueue)]
            (Some(Tracked::Kqueue(reg)), Selector::Kqueue(s)) => s.owns(reg),
            _ => false,
        }
    }

    fn fd(&self) -> Option<RawFd> {
        match &self.0 {
            Some(Tracked::Poll(reg)) => Some(reg.fd()),
            #[cfg(pipeloop_kqueue)]
            Some(Tracked::Kqueue(reg)) => Some(reg.fd()),
            None => None,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        match self.0.take() {
            Some(Tracked::Poll(reg)) => reg.release(),
            #[cfg(pipeloop_kqueue)]
            Some(Tracked::Kqueue(reg)) => reg.release(),
            None => {}
        }
    }
}

/// The registrations of a pipe end, shared with its clones
/// (`try_clone`): whichever handle sees `WouldBlock` or a short transfer
/// re-arms them all, and the one whose fd is closed releases its own.
/// A list, because one end may be registered with several `Poll`s.
#[derive(Debug)]
pub(crate) struct Registrations {
    /// This handle's fd: the registrations naming it are released when this
    /// handle is dropped.
    fd: RawFd,
    shared: OnceLock<Arc<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    /// `list` has a poll(2) registration, which wants re-arming; read on
    /// every short transfer, so kept apart from the lock.
    rearm: AtomicBool,
    list: Mutex<Vec<Registration>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<Registration>> {
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Registrations {
    pub(crate) fn new(fd: RawFd) -> Registrations {
        Registrations {
            fd,
            shared: OnceLock::new(),
        }
    }

    /// The registrations for a clone of this end, whose fd is `fd`.
    pub(crate) fn share(&self, fd: RawFd) -> Registrations {
        let shared = OnceLock::new();
        let _ = shared.set(Arc::clone(self.shared.get_or_init(Default::default)));
        Registrations { fd, shared }
    }

    /// Whether anything needs re-arming: one load and a branch, false on
    /// epoll.
    #[inline(always)]
    pub(crate) fn needs_rearm(&self) -> bool {
        self.shared.get().is_some_and(|s| s.rearm.load(Relaxed))
    }

    pub(crate) fn rearm(&self, interest: Interest) {
        if let Some(shared) = self.shared.get() {
            for reg in shared.lock().iter() {
                reg.rearm(interest);
            }
        }
    }

    /// Keeps `reg` (from register or reregister of this handle's fd),
    /// replacing an older one for the same entry.
    pub(crate) fn track(&self, reg: Registration) {
        if reg.0.is_none() {
            return;
        }
        let shared = self.shared.get_or_init(Default::default);
        let mut list = shared.lock();
        if reg.needs_rearm() {
            shared.rearm.store(true, Relaxed);
        }
        match list.iter_mut().find(|r| r.same_entry(&reg)) {
            Some(old) => std::mem::replace(old, reg).detach(),
            None => list.push(reg),
        }
    }

    /// Forgets this handle's registration with `selector`, which the caller
    /// has just removed from it.
    pub(crate) fn untrack(&self, selector: &Selector) {
        self.remove_where(|r| r.fd() == Some(self.fd) && r.belongs_to(selector))
            .into_iter()
            .for_each(Registration::detach);
    }

    /// Stops tracking this handle's registrations but leaves them in their
    /// backends (the fd is handed out as a raw fd).
    pub(crate) fn detach_own(self) {
        self.take_own().into_iter().for_each(Registration::detach);
    }

    fn take_own(&self) -> Vec<Registration> {
        self.remove_where(|r| r.fd() == Some(self.fd))
    }

    fn remove_where(&self, mut pred: impl FnMut(&Registration) -> bool) -> Vec<Registration> {
        let Some(shared) = self.shared.get() else {
            return Vec::new();
        };
        let mut list = shared.lock();
        let mut taken = Vec::new();
        let mut i = 0;
        while i < list.len() {
            if pred(&list[i]) {
                taken.push(list.swap_remove(i));
            } else {
                i += 1;
            }
        }
        shared
            .rearm
            .store(list.iter().any(Registration::needs_rearm), Relaxed);
        taken
    }
}

impl Drop for Registrations {
    /// Releases this handle's registrations (its fd is about to close), after
    /// the list lock is dropped: releasing takes the backend's lock.
    fn drop(&mut self) {
        drop(self.take_own());
    }
}
