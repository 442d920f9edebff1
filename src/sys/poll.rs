//! The poll(2) backend: available on every Unix, selectable at run time.
//!
//! poll(2) keeps no state in the kernel, so this backend keeps the
//! registrations itself, as a `pollfd` array that is handed to the kernel on
//! every wait. Three things make it honour the same contract as epoll:
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
//! - **Wakers** need no fd of their own: `wake` sets the waker's flag and,
//!   only if the poller is (or is about to be) asleep in poll(2), writes to
//!   the internal pipe; the poller reports each flagged waker. A wake on the
//!   polling thread itself therefore costs no syscall.
//!
//! Costs: a wait is O(n) in registered fds, as poll(2) itself is. Finding an
//! fd for a change is one lookup in a table indexed by fd, removal is `swap_remove`, and delivery
//! walks the array once, stopping when every ready fd is found; nothing is
//! allocated per wait.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::event::{self, flags};
use super::handoff::{Handoff, Notifier};
use super::{FdMap, FileId, RawEvent, cvt};
use crate::{Interest, Token};

#[derive(Debug)]
pub(crate) struct Selector {
    shared: Arc<Shared>,
}

struct Shared {
    /// The table, and the way to change it while the poller waits on it.
    handoff: Handoff<State>,
    /// The poller is in poll(2), or about to be: a wake must write to the
    /// notifier. Otherwise the flag below is enough, and a wake costs no
    /// syscall.
    sleeping: AtomicBool,
    /// Some waker's flag is set (or was, and a poll is about to see it).
    woken: AtomicBool,
}

struct State {
    /// What poll(2) is given. `pollfds[0]` is the notifier; `pollfds[i]`
    /// belongs to `entries[i]` for `i >= 1`.
    pollfds: Vec<libc::pollfd>,
    entries: Vec<Entry>,
    /// Position of each registered fd in `pollfds` and `entries`, indexed
    /// by fd number: fds are small, dense integers, so a direct table beats
    /// hashing (this lookup is on the path of every edge re-arm).
    index: FdMap<u32>,
    wakers: Vec<Arc<WakerSlot>>,
    /// Where the next delivery starts, so that a small `Events` does not
    /// starve the fds near the end of the array.
    cursor: usize,
    next_id: u64,
    /// Entries dropped after POLLNVAL by the last wait, to be logged once the
    /// lock is released: nothing that could call back into pipeloop (a
    /// logger writing to a registered pipe) runs under the lock.
    forgotten: usize,
}

#[derive(Clone, Copy)]
struct Entry {
    fd: RawFd,
    token: Token,
    interest: Interest,
    /// poll(2) bits still armed; a subset of `all_events(interest)`.
    armed: libc::c_short,
    /// Taken out of the array: a fired oneshot, or a hang-up or error already
    /// reported in edge mode.
    parked: bool,
    /// poll(2) said POLLNVAL: the fd was closed without being deregistered.
    closed: bool,
    /// Tells one registration of an fd number from a later one.
    id: u64,
    /// The file the fd referred to when registered.
    file: FileId,
}

#[derive(Debug)]
struct WakerSlot {
    token: Token,
    pending: AtomicBool,
}

#[cfg(pipeloop_linux)]
const READ_EVENTS: libc::c_short = libc::POLLIN | libc::POLLRDHUP;
#[cfg(not(pipeloop_linux))]
const READ_EVENTS: libc::c_short = libc::POLLIN;

/// The poll(2) bits an interest asks for.
fn all_events(interest: Interest) -> libc::c_short {
    let mut events = 0;
    if interest.is_readable() {
        events |= READ_EVENTS;
    }
    if interest.is_writable() {
        events |= libc::POLLOUT;
    }
    if interest.is_priority() {
        events |= libc::POLLPRI;
    }
    events
}

/// Translates poll(2)'s `revents` into the shared event flags.
fn revents_to_flags(revents: libc::c_short) -> u32 {
    let mut out = 0;
    for (poll_bit, flag) in [
        (libc::POLLIN, flags::IN),
        (libc::POLLPRI, flags::PRI),
        (libc::POLLOUT, flags::OUT),
        (libc::POLLERR, flags::ERR),
        (libc::POLLHUP, flags::HUP),
        #[cfg(pipeloop_linux)]
        (libc::POLLRDHUP, flags::RDHUP),
    ] {
        if revents & poll_bit != 0 {
            out |= flag;
        }
    }
    out
}

impl Entry {
    fn pollfd(&self) -> libc::pollfd {
        libc::pollfd {
            fd: if self.parked { -1 } else { self.fd },
            events: self.armed,
            revents: 0,
        }
    }

    /// On a hang-up, asks poll(2) once more, without waiting, for the
    /// directions that edge mode had disarmed: epoll reports a hang-up
    /// together with everything that is ready (`EPOLLIN | EPOLLHUP` while
    /// bytes are left), and so must this backend. Hang-ups are rare, so the
    /// extra syscall is too.
    fn probe_full(&self, revents: libc::c_short) -> libc::c_short {
        let all = all_events(self.interest);
        if revents & HANGUP == 0 || self.armed == all {
            return revents;
        }
        let mut probe = libc::pollfd {
            fd: self.fd,
            events: all,
            revents: 0,
        };
        // SAFETY: one valid pollfd, and a zero timeout.
        match unsafe { libc::poll(&mut probe, 1, 0) } {
            1 => revents | probe.revents,
            _ => revents,
        }
    }

    /// What to report for `revents`, and the re-arming that follows.
    fn deliver(&mut self, revents: libc::c_short) -> u32 {
        // poll(2) adds hang-ups and errors to what was asked for. A hang-up
        // is reported with the whole readiness, as epoll does (`probe_full`
        // filled in the disarmed bits).
        let mask = if revents & HANGUP != 0 {
            all_events(self.interest)
        } else {
            self.armed
        };
        let reported = revents & (mask | HANGUP);
        if reported == 0 {
            return 0;
        }
        if self.interest.is_oneshot() {
            self.parked = true;
        } else if self.interest.is_edge() {
            if reported & HANGUP != 0 {
                self.parked = true;
            }
            self.armed &= !disarmed_by(reported);
        }
        revents_to_flags(reported)
    }
}

const HANGUP: libc::c_short = libc::POLLHUP | libc::POLLERR;

/// The armed bits an edge-triggered report uses up.
fn disarmed_by(reported: libc::c_short) -> libc::c_short {
    let mut used = 0;
    if reported & READ_EVENTS != 0 {
        used |= READ_EVENTS;
    }
    used | (reported & (libc::POLLOUT | libc::POLLPRI))
}

impl State {
    fn set(&mut self, i: usize, entry: Entry) {
        self.pollfds[i] = entry.pollfd();
        self.entries[i] = entry;
    }

    /// Where `fd` is in `pollfds` and `entries`.
    fn slot(&self, fd: RawFd) -> Option<usize> {
        self.index.get(fd).map(|i| i as usize)
    }

    fn position(&self, fd: RawFd) -> io::Result<usize> {
        self.slot(fd)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    /// Adds `fd`; also says whether a stale entry for its number (another
    /// file) was dropped, for the caller to log once the lock is released.
    fn insert(
        &mut self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        file: FileId,
    ) -> io::Result<(u64, bool)> {
        let stale = self.drop_stale(fd, file);
        if self.slot(fd).is_some() {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        self.next_id += 1;
        let entry = Entry {
            fd,
            token,
            interest,
            armed: all_events(interest),
            parked: false,
            closed: false,
            id: self.next_id,
            file,
        };
        self.index.set(fd, self.entries.len() as u32);
        self.pollfds.push(entry.pollfd());
        self.entries.push(entry);
        Ok((entry.id, stale))
    }

    /// Removes the entry for `fd` if it was made for another file: its fd
    /// was closed without being deregistered and the number reused. epoll
    /// would have forgotten it; so does this backend, at the next change
    /// that names the number.
    fn drop_stale(&mut self, fd: RawFd, file: FileId) -> bool {
        match self.slot(fd) {
            Some(i) if self.entries[i].file != file => self.remove(fd).is_ok(),
            _ => false,
        }
    }

    fn update(
        &mut self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        file: FileId,
    ) -> io::Result<u64> {
        self.drop_stale(fd, file);
        let i = self.position(fd)?;
        let entry = Entry {
            token,
            interest,
            armed: all_events(interest),
            parked: false,
            ..self.entries[i]
        };
        self.set(i, entry);
        Ok(entry.id)
    }

    /// Removes `fd` if it is registered for `file` (`NotFound` otherwise).
    fn remove_file(&mut self, fd: RawFd, file: FileId) -> io::Result<()> {
        self.drop_stale(fd, file);
        self.remove(fd)
    }

    fn remove(&mut self, fd: RawFd) -> io::Result<()> {
        let i = self.position(fd)?;
        self.index.remove(fd);
        self.pollfds.swap_remove(i);
        self.entries.swap_remove(i);
        if let Some(moved) = self.entries.get(i) {
            self.index.set(moved.fd, i as u32);
        }
        Ok(())
    }

    /// The position of `fd` if it is still the registration `id`.
    fn current(&self, fd: RawFd, id: u64) -> Option<usize> {
        self.slot(fd).filter(|&i| self.entries[i].id == id)
    }

    fn rearm(&mut self, fd: RawFd, id: u64, interest: Interest) {
        if let Some(i) = self.current(fd, id) {
            let mut entry = self.entries[i];
            if entry.interest.is_edge() && !entry.parked {
                entry.armed |= all_events(interest) & all_events(entry.interest);
                self.set(i, entry);
            }
        }
    }

    /// Reports flagged wakers; returns whether some did not fit.
    fn deliver_wakers(&self, events: &mut Vec<RawEvent>) -> bool {
        for slot in &self.wakers {
            if events.len() == events.capacity() {
                return self.wakers.iter().any(|w| w.pending.load(SeqCst));
            }
            if slot.pending.swap(false, SeqCst) {
                events.push(event::new(slot.token, flags::IN));
            }
        }
        false
    }

    /// Walks the array from the cursor and reports up to `ready` fds.
    fn deliver_fds(&mut self, mut ready: usize, events: &mut Vec<RawEvent>) {
        let len = self.pollfds.len();
        let start = self.cursor.clamp(1, len.max(1));
        let mut closed = false;
        for i in (start..len).chain(1..start) {
            if ready == 0 {
                break;
            }
            if events.len() == events.capacity() {
                self.cursor = i;
                break;
            }
            let revents = self.pollfds[i].revents;
            if revents == 0 {
                continue;
            }
            ready -= 1;
            if revents & libc::POLLNVAL != 0 {
                self.entries[i].closed = true;
                closed = true;
                continue;
            }
            let mut entry = self.entries[i];
            let revents = entry.probe_full(revents);
            let flags = entry.deliver(revents);
            self.set(i, entry);
            if flags != 0 {
                events.push(event::new(entry.token, flags));
            }
        }
        if closed {
            self.forgotten += self.forget_closed();
        }
    }

    /// Drops registrations whose fd was closed without deregistering (epoll
    /// forgets those by itself) and returns how many. Rare, so a second walk
    /// is fine.
    fn forget_closed(&mut self) -> usize {
        let mut forgotten = 0;
        let mut i = 1;
        while i < self.entries.len() {
            if self.entries[i].closed {
                let fd = self.entries[i].fd;
                let _ = self.remove(fd);
                forgotten += 1;
            } else {
                i += 1;
            }
        }
        forgotten
    }
}

impl Shared {
    fn notifier(&self) -> &Notifier {
        self.handoff.notifier()
    }
}

fn log_stale(fd: RawFd) {
    log::debug!(
        "poll(2): fd {fd} was closed while registered and now names another file; replaced"
    );
}

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        let notifier = Notifier::new()?;
        let first = libc::pollfd {
            fd: notifier.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let placeholder = Entry {
            fd: notifier.fd(),
            token: Token(usize::MAX),
            interest: Interest::READABLE.level(),
            armed: libc::POLLIN,
            parked: false,
            closed: false,
            id: 0,
            file: FileId::of(notifier.fd())?,
        };
        let state = State {
            pollfds: vec![first],
            entries: vec![placeholder],
            index: FdMap::default(),
            wakers: Vec::new(),
            cursor: 1,
            next_id: 0,
            forgotten: 0,
        };
        let shared = Shared {
            handoff: Handoff::new(state, notifier),
            sleeping: AtomicBool::new(false),
            woken: AtomicBool::new(false),
        };
        Ok(Selector {
            shared: Arc::new(shared),
        })
    }

    pub(crate) fn register(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<super::Registration> {
        let file = FileId::of(fd)?;
        let (id, stale) = self
            .shared
            .handoff
            .change(|s| s.insert(fd, token, interest, file))?;
        if stale {
            log_stale(fd);
        }
        Ok(self.registration(fd, id))
    }

    pub(crate) fn reregister(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<super::Registration> {
        let file = FileId::of(fd)?;
        let id = self
            .shared
            .handoff
            .change(|s| s.update(fd, token, interest, file))?;
        Ok(self.registration(fd, id))
    }

    pub(crate) fn deregister(&self, fd: RawFd) -> io::Result<()> {
        let file = FileId::of(fd)?;
        self.shared.handoff.change(|s| s.remove_file(fd, file))
    }

    fn registration(&self, fd: RawFd, id: u64) -> super::Registration {
        super::Registration::poll(Registration {
            shared: Arc::downgrade(&self.shared),
            fd,
            id,
        })
    }

    /// Waits until something can be reported or `timeout` has passed.
    ///
    /// Unlike epoll, poll(2) returns for reasons of this backend's own (the
    /// notifier, an entry it then does not report), so this loops until it
    /// has events for the caller, reading the clock only after such an
    /// empty return.
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
        // Announce the sleep before looking at `woken`; `Waker::wake` sets
        // `woken` before looking at `sleeping`. With both sequentially
        // consistent, either this poll sees the wake and does not block, or
        // the waker sees the sleep and writes to the notifier.
        self.shared.sleeping.store(true, SeqCst);
        let ms = if self.shared.woken.load(SeqCst) {
            0
        } else {
            super::timeout_ms(timeout)
        };
        let len = state.pollfds.len() as libc::nfds_t;
        // SAFETY: the array holds `len` initialised pollfds and stays locked
        // (so unchanged) for the whole call.
        let result = cvt(unsafe { libc::poll(state.pollfds.as_mut_ptr(), len, ms) });
        self.shared.sleeping.store(false, SeqCst);
        let mut left = result? as usize;
        let expired = left == 0 && ms > 0;
        if state.pollfds[0].revents != 0 {
            left -= 1;
            self.shared.notifier().reset();
        }
        if self.shared.woken.swap(false, SeqCst) && state.deliver_wakers(events) {
            // Some did not fit: the next poll must not block.
            self.shared.woken.store(true, SeqCst);
        }
        state.deliver_fds(left, events);
        let forgotten = std::mem::take(&mut state.forgotten);
        drop(state);
        if forgotten > 0 {
            log::debug!("poll(2): forgot {forgotten} fd(s) closed while registered (POLLNVAL)");
        }
        Ok(expired)
    }

    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
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
            slot,
        }
    }
}

/// A pipeloop source's handle on its entry, for re-arming and forgetting.
/// It refers to the table weakly: nothing keeps a dropped `Poll`'s table
/// and notifier fds alive, and once it is gone there is nothing to do.
#[derive(Debug)]
pub(crate) struct Registration {
    shared: Weak<Shared>,
    fd: RawFd,
    id: u64,
}

impl Registration {
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn backend(&self) -> usize {
        self.shared.as_ptr() as usize
    }

    pub(crate) fn rearm(&self, interest: Interest) {
        if let Some(shared) = self.shared.upgrade() {
            shared
                .handoff
                .change(|s| s.rearm(self.fd, self.id, interest));
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
    slot: Arc<WakerSlot>,
}

impl Waker {
    /// Flags the waker; writes to the notifier only if the poller may be
    /// asleep in poll(2) (see `Selector::select` for the ordering). A wake
    /// after the `Poll` is gone does nothing.
    pub(crate) fn wake(&self) -> io::Result<()> {
        self.slot.pending.store(true, SeqCst);
        if let Some(shared) = self.shared.upgrade() {
            shared.woken.store(true, SeqCst);
            if shared.sleeping.load(SeqCst) {
                shared.notifier().notify();
            }
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
                .field("registered", &(state.entries.len() - 1))
                .field("wakers", &state.wakers.len())
                .finish(),
            None => f.write_str("poll::Selector { <in poll> }"),
        }
    }
}
