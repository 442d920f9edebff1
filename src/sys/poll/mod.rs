//! The poll(2) backend: available on every Unix, selectable at run time.
//!
//! poll(2) keeps no state in the kernel, so this backend keeps the
//! registrations itself, as a `pollfd` array that is handed to the kernel on
//! every wait (`table.rs`). Three things make it honour the same contract as
//! epoll:
//!
//! - **Changes while another thread waits.** The poller holds the table's
//!   lock while it sits in poll(2). A thread that wants to change the table
//!   and finds it locked takes a ticket, writes a byte to an internal pipe
//!   that is always in the array (the self-pipe trick), and takes the lock
//!   once the poller has returned; the poller lets the ticket holders go
//!   first before it waits again. `handoff.rs` holds that protocol.
//! - **Trigger modes.** Level is what poll(2) does. Edge is emulated: once a
//!   direction is reported it is disarmed (left out of `events`) until the
//!   source re-arms it after `WouldBlock` or a short transfer, or is
//!   reregistered. A hang-up or error is reported once, then the fd leaves
//!   the array until it is reregistered. Oneshot disarms everything.
//! - **Wakers and re-arms** do not take the table's lock: a wake sets the
//!   waker's flag, a re-arm sets bits in the entry's cell, and either one
//!   writes to the internal pipe only if the poller is (or is about to be)
//!   asleep in poll(2). The poller looks at them before every wait. So a
//!   wake or a re-arm on the polling thread itself costs no syscall and
//!   never waits for the poller. (A pipe end's re-arm takes its own list
//!   lock, shared only with its clones, to find its registrations.)
//!
//! Timeouts: a timeout with a part finer than a millisecond goes to
//! ppoll(2), which takes a timespec, where the system has it (Linux,
//! Android, the BSDs, illumos: `pipeloop_ppoll`); elsewhere (macOS) poll(2)
//! takes it rounded up to whole milliseconds. Either way `select` waits
//! again for what is left when it woke for its own reasons, so it never
//! returns early with nothing.
//!
//! Costs: a wait is O(n) in registered fds, as poll(2) itself is. Finding an
//! fd for a change is one lookup in a table indexed by fd, removal is
//! `swap_remove`, and delivery walks the array once, stopping when every
//! ready fd is found; nothing is allocated per wait.

mod handoff;
mod table;

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::Release, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use handoff::{Handoff, Notifier};
use table::{Rearm, State, WakerSlot, all_events};

use super::{FileId, RawEvent, cvt};
use crate::{Interest, Token};

#[derive(Debug)]
pub(crate) struct Selector {
    shared: Arc<Shared>,
}

struct Shared {
    /// The table, and the way to change it while the poller waits on it.
    handoff: Handoff<State>,
    bell: Arc<Doorbell>,
}

/// How wakers and re-arms reach the poller without the table's lock. Shared
/// (strongly) with every `Waker` and `Registration`: it holds no fd, so it
/// keeps nothing open after the `Poll` is gone.
///
/// Either side stores its own flag, then reads the other's, all
/// sequentially consistent, so the two cannot miss each other (the classic
/// store-then-load pattern): either the poller sees `woken` or `rearms`
/// before it sleeps and acts on it, or the waker or re-armer sees
/// `sleeping` and writes to the notifier, whose byte makes poll(2) return.
#[derive(Debug, Default)]
struct Doorbell {
    /// The poller is in poll(2), or about to be.
    sleeping: AtomicBool,
    /// Some waker's flag is set (or was, and a poll is about to see it).
    woken: AtomicBool,
    /// Some entry's re-arm cell has bits set.
    rearms: AtomicBool,
}

impl Shared {
    fn notifier(&self) -> &Notifier {
        self.handoff.notifier()
    }
}

/// Writes to the notifier of the table `shared` refers to, if it still
/// exists: the poller was seen asleep (see `Doorbell`).
#[cold]
fn ring(shared: &Weak<Shared>) {
    if let Some(shared) = shared.upgrade() {
        shared.notifier().notify();
    }
}

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        let notifier = Notifier::new()?;
        let state = State::new(notifier.fd())?;
        let shared = Shared {
            handoff: Handoff::new(state, notifier),
            bell: Arc::default(),
        };
        Ok(Selector {
            shared: Arc::new(shared),
        })
    }

    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<super::Registration> {
        let file = FileId::of(fd)?;
        let (id, rearm, stale) = self
            .shared
            .handoff
            .change(|s| s.insert(fd, token, interest, file))?;
        let mut reg = self.registration(fd, id, rearm, interest);
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
        let (id, rearm) = self
            .shared
            .handoff
            .change(|s| s.update(fd, token, interest, file))?;
        Ok(self.registration(fd, id, rearm, interest))
    }

    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        let file = FileId::of(fd)?;
        self.shared.handoff.change(|s| s.remove_file(fd, file))
    }

    fn registration(
        &self,
        fd: RawFd,
        id: u64,
        rearm: Rearm,
        interest: Interest,
    ) -> super::Registration {
        super::Registration::poll(Registration {
            shared: Arc::downgrade(&self.shared),
            bell: Arc::clone(&self.shared.bell),
            rearm,
            fd,
            id,
            edge: interest.is_edge(),
        })
    }

    /// Waits until something can be reported or `timeout` has passed.
    ///
    /// Unlike epoll, poll(2) returns for reasons of this backend's own (the
    /// notifier, an entry it then does not report), so this loops until it
    /// has events for the caller or the deadline has passed. The clock is
    /// read for the deadline only when the timeout is neither none nor zero.
    pub(crate) fn select(
        &self,
        buf: &mut super::event::EventBuf,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let events = &mut buf.events;
        if timeout == Some(Duration::ZERO) {
            return self.select_once(events, timeout, None).map(drop);
        }
        // A deadline too far away to represent is no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut wait = timeout.filter(|_| deadline.is_some());
        loop {
            let expired = self.select_once(events, wait, deadline)?;
            if !events.is_empty() || expired {
                return Ok(());
            }
            if let Some(deadline) = deadline {
                match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => wait = Some(left),
                    _ => return Ok(()),
                }
            }
        }
    }

    /// One poll(2): waits at most `timeout` (less if the changers it let
    /// through first took time: then until `deadline`). Returns whether it
    /// slept its whole timeout.
    fn select_once(
        &self,
        events: &mut Vec<RawEvent>,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> io::Result<bool> {
        events.clear();
        let (mut state, waited) = self.shared.handoff.lock_for_wait(deadline);
        let timeout = match deadline {
            Some(deadline) if waited => Some(deadline.saturating_duration_since(Instant::now())),
            _ => timeout,
        };
        let bell = &*self.shared.bell;
        // Announce the sleep, then look at wakes and re-arms (see
        // `Doorbell`).
        bell.sleeping.store(true, SeqCst);
        if bell.rearms.load(SeqCst) && bell.rearms.swap(false, SeqCst) {
            state.apply_rearms();
        }
        let wait = if bell.woken.load(SeqCst) {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        // The array stays locked (so unchanged) for the whole call.
        let result = poll(&mut state.pollfds, wait);
        // No ordering needed to say it is awake: a waker that still sees
        // `sleeping` only writes a byte more, which the next wait drains.
        bell.sleeping.store(false, Release);
        let mut left = result? as usize;
        let expired = left == 0 && wait.is_some_and(|w| !w.is_zero());
        if state.pollfds[0].revents != 0 {
            left -= 1;
            self.shared.notifier().reset();
        }
        // A load first: the swap's locked instruction only when woken.
        let woken = bell.woken.load(SeqCst) && bell.woken.swap(false, SeqCst);
        let deliver_wakers = |state: &mut State, events: &mut Vec<RawEvent>| {
            if woken && state.deliver_wakers(events) {
                // Some did not fit: the next poll must not block.
                bell.woken.store(true, SeqCst);
            }
        };
        if state.wakers_first() {
            deliver_wakers(&mut state, events);
            state.deliver_fds(left, events);
        } else {
            state.deliver_fds(left, events);
            deliver_wakers(&mut state, events);
        }
        let forgotten = std::mem::take(&mut state.forgotten);
        drop(state);
        if forgotten > 0 {
            log::debug!("poll(2): forgot {forgotten} fd(s) closed while registered (POLLNVAL)");
        }
        Ok(expired)
    }

    pub(crate) fn waker(&self, token: Token) -> Waker {
        let slot = Arc::new(WakerSlot {
            token,
            pending: AtomicBool::new(false),
        });
        self.shared
            .handoff
            .change(|s| s.wakers.push(Arc::clone(&slot)));
        Waker {
            shared: Arc::downgrade(&self.shared),
            bell: Arc::clone(&self.shared.bell),
            slot,
        }
    }
}

/// One wait on `fds` of at most `timeout` (`None`: no limit): ppoll with
/// the timeout to the nanosecond where it has a finer part than whole
/// milliseconds and the system has ppoll, otherwise poll(2) with it rounded
/// up to milliseconds (exact for whole ones, and the cheaper call).
#[inline]
fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<libc::c_int> {
    let len = fds.len() as libc::nfds_t;
    #[cfg(pipeloop_ppoll)]
    if let Some(t) = timeout.filter(|&t| super::finer_than_ms(t)) {
        return ppoll(fds, t);
    }
    // SAFETY: the slice holds `len` initialised pollfds, which poll(2)
    // reads and whose `revents` it writes.
    cvt(unsafe { libc::poll(fds.as_mut_ptr(), len, super::timeout_ms(timeout)) })
}

/// ppoll with `timeout` (which the caller has split to at most
/// `LONGEST_WAIT`) and no signal mask change. Out of line: it is not the
/// ping-pong's path.
#[cfg(pipeloop_ppoll)]
#[inline(never)]
fn ppoll(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<libc::c_int> {
    let ts = super::timespec(timeout);
    let len = fds.len() as libc::nfds_t;
    // SAFETY: the slice holds `len` initialised pollfds, which ppoll reads
    // and whose `revents` it writes; `ts` outlives the call; a null signal
    // mask leaves the mask alone.
    cvt(unsafe { sys_ppoll(fds.as_mut_ptr(), len, &ts, std::ptr::null()) })
}

#[cfg(all(pipeloop_ppoll, not(target_os = "illumos")))]
use libc::ppoll as sys_ppoll;

// illumos has ppoll (poll.h), but the libc crate does not bind it.
#[cfg(all(pipeloop_ppoll, target_os = "illumos"))]
unsafe extern "C" {
    #[link_name = "ppoll"]
    fn sys_ppoll(
        fds: *mut libc::pollfd,
        nfds: libc::nfds_t,
        timeout: *const libc::timespec,
        sigmask: *const libc::sigset_t,
    ) -> libc::c_int;
}

/// A pipeloop source's handle on its entry, for re-arming and forgetting.
/// It refers to the table weakly: nothing keeps a dropped `Poll`'s table
/// and notifier fds alive, and once it is gone there is nothing to do.
#[derive(Debug)]
pub(crate) struct Registration {
    shared: Weak<Shared>,
    bell: Arc<Doorbell>,
    /// The entry's re-arm cell: once the entry is gone (deregistered,
    /// dropped, replaced), nobody reads it, so a stale handle does nothing.
    rearm: Rearm,
    fd: RawFd,
    /// Tells this registration of `fd` from a later one, for `release`.
    id: u64,
    /// Registered edge-triggered: the only mode whose emulation needs to
    /// hear about short transfers.
    edge: bool,
}

impl Registration {
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn backend(&self) -> usize {
        self.shared.as_ptr() as usize
    }

    pub(crate) fn needs_rearm(&self) -> bool {
        self.edge
    }

    /// Asks the poller to re-arm `interest`'s directions before its next
    /// wait, waking it if it is asleep. No lock: a few atomics (and, only
    /// when the poller sleeps, a write to the notifier).
    pub(crate) fn rearm(&self, interest: Interest) {
        let bits = all_events(interest) as u16;
        if self.rearm.load(SeqCst) & bits == bits {
            return; // asked already, and the poller not yet at it
        }
        self.rearm.fetch_or(bits, SeqCst);
        self.bell.rearms.store(true, SeqCst);
        if self.bell.sleeping.load(SeqCst) {
            ring(&self.shared);
        }
    }

    pub(crate) fn release(self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.handoff.change(|s| {
                if s.current(self.fd, self.id).is_some() {
                    let _ = s.remove(self.fd);
                }
            });
        }
    }
}

/// A waker's slot in the table, which it refers to weakly (as
/// `Registration` does).
#[derive(Debug)]
pub(crate) struct Waker {
    shared: Weak<Shared>,
    bell: Arc<Doorbell>,
    slot: Arc<WakerSlot>,
}

impl Waker {
    /// Flags the waker; writes to the notifier only if the poller may be
    /// asleep in poll(2) (see `Doorbell`). A wake after the `Poll` is gone
    /// does nothing.
    pub(crate) fn wake(&self) -> io::Result<()> {
        self.slot.pending.store(true, SeqCst);
        self.bell.woken.store(true, SeqCst);
        if self.bell.sleeping.load(SeqCst) {
            ring(&self.shared);
        }
        Ok(())
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared
                .handoff
                .change(|s| s.wakers.retain(|w| !Arc::ptr_eq(w, &self.slot)));
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.handoff.try_lock() {
            Some(state) => f
                .debug_struct("poll::Selector")
                .field("registered", &state.registered())
                .field("wakers", &state.wakers.len())
                .finish(),
            None => f.write_str("poll::Selector { <in poll> }"),
        }
    }
}
