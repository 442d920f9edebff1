//! What pipeloop's own sources (pipe ends, and so `Signals`) keep about
//! their registrations, so that a registration ends with the source on every
//! backend.
//!
//! - **epoll** keeps a registration until the last fd of the *open file* is
//!   closed, not the registered fd: while a clone, a `dup` or a forked child
//!   keeps the pipe open, closing the registered fd removes nothing and its
//!   events keep coming. So a pipe end deletes its registration
//!   (`EPOLL_CTL_DEL`) before its fd closes.
//! - **poll(2)** keeps its table in user space: a pipe end removes its entry
//!   before its fd closes (so the number can be registered again at once),
//!   and tells it when an edge-triggered direction was used up
//!   (`WouldBlock` or a short transfer), so that it can re-arm it.
//! - **kqueue** drops an fd's filters when that fd is closed, but the
//!   backend's own record of which filters the fd has (how it tells
//!   `AlreadyExists` from `NotFound`) must go too. And like poll(2) it hears
//!   when an edge-triggered direction was used up: its kernels report more
//!   than epoll's edges, and the backend holds the rest back until then.
//!
//! Each backend hands back a [`Registration`] for that: it refers to its
//! backend weakly, so it never keeps a dropped `Poll`'s fds open.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

#[cfg(pipeloop_epoll)]
use super::epoll;
#[cfg(pipeloop_kqueue)]
use super::kqueue;
use super::{Selector, poll};
use crate::{Interest, Token};

/// One registration of one fd with one backend. Dropping it ends the
/// registration; [`detach`](Registration::detach) leaves it in place (for
/// a `SourceFd`, whose owner manages it).
#[derive(Debug, Default)]
#[must_use = "dropping a Registration deregisters the fd; call detach() to keep it"]
pub(crate) struct Registration {
    tracked: Option<Tracked>,
    /// Registering it first dropped a stale entry for the same fd number (a
    /// fd closed while registered, its number reused for another file), for
    /// the caller to log once its locks are released.
    pub(crate) replaced_stale: bool,
}

#[derive(Debug)]
enum Tracked {
    #[cfg(pipeloop_epoll)]
    Epoll(epoll::Registration),
    #[cfg(pipeloop_kqueue)]
    Kqueue(kqueue::Registration),
    Poll(poll::Registration),
}

/// Runs `$call` with `$reg` bound to whichever backend's registration
/// `$tracked` holds.
macro_rules! each {
    ($tracked:expr, $reg:ident => $call:expr) => {
        match $tracked {
            #[cfg(pipeloop_epoll)]
            Tracked::Epoll($reg) => $call,
            #[cfg(pipeloop_kqueue)]
            Tracked::Kqueue($reg) => $call,
            Tracked::Poll($reg) => $call,
        }
    };
}

impl Registration {
    fn new(tracked: Tracked) -> Registration {
        Registration {
            tracked: Some(tracked),
            replaced_stale: false,
        }
    }

    #[cfg(pipeloop_epoll)]
    pub(super) fn epoll(reg: epoll::Registration) -> Registration {
        Registration::new(Tracked::Epoll(reg))
    }

    #[cfg(pipeloop_kqueue)]
    pub(super) fn kqueue(reg: kqueue::Registration) -> Registration {
        Registration::new(Tracked::Kqueue(reg))
    }

    pub(super) fn poll(reg: poll::Registration) -> Registration {
        Registration::new(Tracked::Poll(reg))
    }

    /// Whether short transfers must be reported: poll(2) emulates edges and
    /// kqueue holds back repeats until then, and only edge-triggered
    /// registrations need to hear of them.
    fn needs_rearm(&self) -> bool {
        match &self.tracked {
            #[cfg(pipeloop_epoll)]
            Some(Tracked::Epoll(_)) => false,
            #[cfg(pipeloop_kqueue)]
            Some(Tracked::Kqueue(reg)) => reg.needs_rearm(),
            Some(Tracked::Poll(reg)) => reg.needs_rearm(),
            None => false,
        }
    }

    /// Leaves the registration in the backend for a raw fd's owner: like
    /// `detach`, and the backend stops relying on the source's reports of
    /// used-up directions (kqueue; poll(2) documents that a raw fd's owner
    /// reregisters instead).
    fn hand_over(mut self) {
        match self.tracked.take() {
            #[cfg(pipeloop_kqueue)]
            Some(Tracked::Kqueue(reg)) => reg.hand_over(),
            _ => {}
        }
    }

    /// Stops tracking the registration, leaving it in the backend; says
    /// whether registering it replaced a stale entry.
    pub(crate) fn detach(mut self) -> bool {
        self.tracked = None;
        self.replaced_stale
    }

    fn rearm(&self, interest: Interest) {
        match &self.tracked {
            #[cfg(pipeloop_kqueue)]
            Some(Tracked::Kqueue(reg)) => reg.rearm(interest),
            Some(Tracked::Poll(reg)) => reg.rearm(interest),
            _ => {}
        }
    }

    /// Whether both name the same fd in the same backend.
    fn same_entry(&self, other: &Registration) -> bool {
        self.tracked.is_some() && self.fd() == other.fd() && self.backend() == other.backend()
    }

    fn belongs_to(&self, selector: &Selector) -> bool {
        self.tracked.is_some() && self.backend() == selector.id()
    }

    fn fd(&self) -> Option<RawFd> {
        self.tracked.as_ref().map(|t| each!(t, reg => reg.fd()))
    }

    /// The address of the backend's shared state: tells backends apart.
    fn backend(&self) -> usize {
        self.tracked
            .as_ref()
            .map_or(0, |t| each!(t, reg => reg.backend()))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(tracked) = self.tracked.take() {
            each!(tracked, reg => reg.release());
        }
    }
}

/// The registrations of a pipe end, shared with its clones
/// (`try_clone`): whichever handle sees `WouldBlock` or a short transfer
/// re-arms them all, and each handle ends its own registrations when it
/// goes ([`release_own`](Registrations::release_own)). A list, because one
/// end may be registered with several `Poll`s, and its clones too.
///
/// Registering, reregistering and deregistering change the backend and the
/// list together, under the list's lock, so a clone that re-arms meanwhile
/// waits for the list to hold the new registration instead of missing it.
/// Lock order: this list, then the backend's lock; never the other way.
#[derive(Debug)]
pub(crate) struct Registrations {
    /// This handle's fd: the registrations naming it are this handle's own.
    fd: RawFd,
    shared: OnceLock<Arc<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    /// `list` has a registration that wants re-arming (edge mode on poll(2)
    /// or kqueue); read on every short transfer, so kept apart from the
    /// lock. Set *before* such a registration becomes visible to its
    /// poller.
    rearm: AtomicBool,
    list: Mutex<Vec<Registration>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<Registration>> {
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update_rearm(&self, list: &[Registration]) {
        let rearm = list.iter().any(Registration::needs_rearm);
        self.rearm.store(rearm, Ordering::Release);
    }
}

impl Registrations {
    pub(crate) fn new(fd: RawFd) -> Registrations {
        Registrations {
            fd,
            shared: OnceLock::new(),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        self.shared.get_or_init(Default::default)
    }

    /// The registrations for a clone of this end, whose fd is `fd`.
    pub(crate) fn share(&self, fd: RawFd) -> Registrations {
        let shared = OnceLock::new();
        let _ = shared.set(Arc::clone(self.shared()));
        Registrations { fd, shared }
    }

    /// Whether anything needs re-arming: one load and a branch, false on
    /// epoll and for level and oneshot registrations.
    #[inline(always)]
    pub(crate) fn needs_rearm(&self) -> bool {
        self.shared
            .get()
            .is_some_and(|s| s.rearm.load(Ordering::Acquire))
    }

    pub(crate) fn rearm(&self, interest: Interest) {
        if let Some(shared) = self.shared.get() {
            for reg in shared.lock().iter().filter(|r| r.needs_rearm()) {
                reg.rearm(interest);
            }
        }
    }

    /// Registers this handle's fd with `selector` and keeps the
    /// registration; says whether a stale entry was replaced.
    pub(crate) fn register(
        &self,
        selector: &Selector,
        token: Token,
        interest: Interest,
    ) -> io::Result<bool> {
        self.change(selector, interest, |s| {
            s.register(self.fd, token, interest, true)
        })
    }

    /// Changes this handle's registration with `selector` and keeps the new
    /// one.
    pub(crate) fn reregister(
        &self,
        selector: &Selector,
        token: Token,
        interest: Interest,
    ) -> io::Result<bool> {
        self.change(selector, interest, |s| {
            s.reregister(self.fd, token, interest, true)
        })
    }

    fn change(
        &self,
        selector: &Selector,
        interest: Interest,
        change: impl FnOnce(&Selector) -> io::Result<Registration>,
    ) -> io::Result<bool> {
        let shared = self.shared();
        let mut list = shared.lock();
        if selector.rearms_edges() && interest.is_edge() {
            // Before the entry is visible: a clone that reads short once the
            // poller has reported it must find something to re-arm.
            shared.rearm.store(true, Ordering::SeqCst);
        }
        match change(selector) {
            Ok(reg) => {
                let replaced_stale = reg.replaced_stale;
                match list.iter_mut().find(|r| r.same_entry(&reg)) {
                    Some(old) => _ = std::mem::replace(old, reg).detach(),
                    None => list.push(reg),
                }
                // Clears the flag if this was the last edge registration.
                shared.update_rearm(&list);
                Ok(replaced_stale)
            }
            Err(e) => {
                shared.update_rearm(&list);
                Err(e)
            }
        }
    }

    /// Deregisters this handle's fd from `selector` and forgets the
    /// registration.
    pub(crate) fn deregister(&self, selector: &Selector) -> io::Result<bool> {
        let Some(shared) = self.shared.get() else {
            return selector.deregister(self.fd).map(|()| false);
        };
        let mut list = shared.lock();
        selector.deregister(self.fd)?;
        let ours = |r: &Registration| r.fd() == Some(self.fd) && r.belongs_to(selector);
        if let Some(i) = list.iter().position(ours) {
            _ = list.swap_remove(i).detach();
        }
        shared.update_rearm(&list);
        Ok(false)
    }

    /// Ends this handle's registrations (its fd is about to close), after
    /// the list lock is released.
    pub(crate) fn release_own(&self) {
        drop(self.take_own());
    }

    /// Stops tracking this handle's registrations but leaves them in their
    /// backends (the fd is handed out as a raw fd, whose owner will not
    /// report used-up directions).
    pub(crate) fn detach_own(&self) {
        for reg in self.take_own() {
            reg.hand_over();
        }
    }

    fn take_own(&self) -> Vec<Registration> {
        let Some(shared) = self.shared.get() else {
            return Vec::new();
        };
        let mut list = shared.lock();
        let (own, others) = std::mem::take(&mut *list)
            .into_iter()
            .partition(|r| r.fd() == Some(self.fd));
        *list = others;
        shared.update_rearm(&list);
        own
    }
}
