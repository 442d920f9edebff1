//! What pipeloop's own sources (pipe ends) keep about their registrations.
//!
//! epoll needs nothing: the kernel keeps every registration and forgets it
//! when the last fd of the open file is closed. The poll(2) backend keeps its
//! table in user space, so a pipe end must tell it two things: that an
//! edge-triggered direction was used up (`WouldBlock` or a short transfer,
//! so it can re-arm it), and that the registered fd is being closed (so it
//! can forget it before the number is reused).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::{Selector, poll};
use crate::Interest;

/// One registration of one fd with a backend that needs help (poll(2));
/// empty otherwise. Dropping it forgets the fd in that backend;
/// [`detach`](Registration::detach) keeps it registered.
#[derive(Debug, Default)]
#[must_use = "dropping a Registration deregisters the fd on the poll(2) backend; call detach() to keep it"]
pub(crate) struct Registration(pub(super) Option<poll::Registration>);

impl Registration {
    pub(crate) const NONE: Registration = Registration(None);

    /// Stops tracking the registration, leaving it in the backend.
    pub(crate) fn detach(mut self) {
        self.0 = None;
    }

    fn rearm(&self, interest: Interest) {
        if let Some(reg) = &self.0 {
            reg.rearm(interest);
        }
    }

    /// Whether both name the same fd in the same backend table.
    fn same_entry(&self, other: &Registration) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => a.same_entry(b),
            _ => false,
        }
    }

    fn belongs_to(&self, selector: &Selector) -> bool {
        match (&self.0, selector) {
            (Some(reg), Selector::Poll(s)) => s.owns(reg),
            _ => false,
        }
    }

    fn fd(&self) -> Option<RawFd> {
        self.0.as_ref().map(poll::Registration::fd)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(reg) = self.0.take() {
            reg.release();
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
    /// `list` is not empty; read on every short transfer, so kept apart.
    any: AtomicBool,
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
        self.shared.get().is_some_and(|s| s.any.load(Relaxed))
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
        match list.iter_mut().find(|r| r.same_entry(&reg)) {
            Some(old) => std::mem::replace(old, reg).detach(),
            None => list.push(reg),
        }
        shared.any.store(true, Relaxed);
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
        shared.any.store(!list.is_empty(), Relaxed);
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
