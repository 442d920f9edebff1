//! The poll(2) backend's table: the `pollfd` array handed to the kernel,
//! pipeloop's entry for each slot, and the edge emulation applied to them.
//! Everything here runs under the table's lock (see `handoff.rs`), except
//! the re-arm requests, which arrive through [`Rearm`] cells without it.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering::Relaxed, Ordering::SeqCst};

use crate::sys::event::{self, flags};
use crate::sys::{FdMap, FileId, RawEvent};
use crate::{Interest, Token};

/// Re-arm requests for one edge-triggered entry: poll(2) bits that its
/// source's handles found used up (`WouldBlock` or a short transfer), set
/// from any thread without the table's lock and taken by the poller before
/// its next wait. Shared by the entry and its `Registration`, so a handle
/// whose entry is gone (deregistered, its number reused) sets bits nobody
/// reads.
pub(super) type Rearm = Arc<AtomicU16>;

pub(super) struct State {
    /// What poll(2) is given. `pollfds[0]` is the notifier; `pollfds[i]`
    /// belongs to `entries[i]` for `i >= 1`.
    pub(super) pollfds: Vec<libc::pollfd>,
    entries: Vec<Entry>,
    /// Position of each registered fd in `pollfds` and `entries`, indexed
    /// by fd number: fds are small, dense integers, so a direct table beats
    /// hashing.
    index: FdMap<u32>,
    pub(super) wakers: Vec<Arc<WakerSlot>>,
    /// Where the next delivery starts, so that a small `Events` does not
    /// starve the fds near the end of the array.
    cursor: usize,
    /// The same for `wakers`.
    waker_cursor: usize,
    /// Whether the last delivery put wakers before fds.
    wakers_go_first: bool,
    next_id: u64,
    /// Entries dropped after POLLNVAL by the last wait, to be logged once the
    /// lock is released: nothing that could call back into pipeloop (a
    /// logger writing to a registered pipe) runs under the lock.
    pub(super) forgotten: usize,
}

struct Entry {
    fd: RawFd,
    token: Token,
    interest: Interest,
    /// poll(2) bits still armed; a subset of `all_events(interest)`.
    armed: libc::c_short,
    /// Out of the wait (fd -1 in the array): a fired oneshot, or a hang-up
    /// or error already reported in edge mode.
    parked: bool,
    /// poll(2) said POLLNVAL: the fd was closed without being deregistered.
    closed: bool,
    /// Tells one registration of an fd number from a later one.
    id: u64,
    /// The file the fd referred to when registered.
    file: FileId,
    /// Re-arm requests from the source's handles (edge mode).
    rearm: Rearm,
}

#[derive(Debug)]
pub(super) struct WakerSlot {
    pub(super) token: Token,
    pub(super) pending: AtomicBool,
}

#[cfg(pipeloop_linux)]
const READ_EVENTS: libc::c_short = libc::POLLIN | libc::POLLRDHUP;
#[cfg(not(pipeloop_linux))]
const READ_EVENTS: libc::c_short = libc::POLLIN;

/// The poll(2) bits an interest asks for.
pub(super) fn all_events(interest: Interest) -> libc::c_short {
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

/// Translates poll(2)'s `revents` (only the bits `Entry::deliver` lets
/// through) into the shared event flags: a cast, because they are the same
/// numbers. Where epoll exists its `EPOLL*` bits equal Linux's `POLL*`
/// ones; elsewhere the shared flags are poll(2)'s own. Checked below.
fn revents_to_flags(revents: libc::c_short) -> u32 {
    u32::from(revents as u16)
}

const _: () = {
    assert!(libc::POLLIN as u32 == flags::IN);
    assert!(libc::POLLPRI as u32 == flags::PRI);
    assert!(libc::POLLOUT as u32 == flags::OUT);
    assert!(libc::POLLERR as u32 == flags::ERR);
    assert!(libc::POLLHUP as u32 == flags::HUP);
    #[cfg(pipeloop_linux)]
    assert!(libc::POLLRDHUP as u32 == flags::RDHUP);
};

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
    /// A table whose first slot is the notifier's read end, `notifier`.
    pub(super) fn new(notifier: RawFd) -> io::Result<State> {
        let placeholder = Entry {
            fd: notifier,
            token: Token(usize::MAX),
            interest: Interest::READABLE.level(),
            armed: libc::POLLIN,
            parked: false,
            closed: false,
            id: 0,
            file: FileId::of(notifier)?,
            rearm: Rearm::default(),
        };
        Ok(State {
            pollfds: vec![placeholder.pollfd()],
            entries: vec![placeholder],
            index: FdMap::default(),
            wakers: Vec::new(),
            cursor: 1,
            waker_cursor: 0,
            wakers_go_first: false,
            next_id: 0,
            forgotten: 0,
        })
    }

    /// How many fds are registered (the notifier's slot aside).
    pub(super) fn registered(&self) -> usize {
        self.entries.len() - 1
    }

    /// Where `fd` is in `pollfds` and `entries`.
    fn slot(&self, fd: RawFd) -> Option<usize> {
        self.index.get(fd).map(|i| i as usize)
    }

    fn position(&self, fd: RawFd) -> io::Result<usize> {
        self.slot(fd)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    /// Adds `fd`, returning its id and re-arm cell; also says whether a
    /// stale entry for its number (another file) was dropped, for the
    /// caller to log once the lock is released.
    pub(super) fn insert(
        &mut self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        file: FileId,
    ) -> io::Result<(u64, Rearm, bool)> {
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
            rearm: Rearm::default(),
        };
        let registered = (entry.id, Arc::clone(&entry.rearm), stale);
        self.index.set(fd, self.entries.len() as u32);
        self.pollfds.push(entry.pollfd());
        self.entries.push(entry);
        Ok(registered)
    }

    /// Removes the entry for `fd` if it was made for another file: its fd
    /// was closed without being deregistered and the number reused. epoll
    /// would have forgotten it (unless another fd kept the old file open);
    /// so does this backend, at the next change that names the number.
    fn drop_stale(&mut self, fd: RawFd, file: FileId) -> bool {
        match self.slot(fd) {
            Some(i) if self.entries[i].file != file => self.remove(fd).is_ok(),
            _ => false,
        }
    }

    /// Changes `fd`'s token and interest and arms it fully; returns its id
    /// and re-arm cell (the same as before: the handles keep re-arming it).
    pub(super) fn update(
        &mut self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        file: FileId,
    ) -> io::Result<(u64, Rearm)> {
        self.drop_stale(fd, file);
        let i = self.position(fd)?;
        let entry = &mut self.entries[i];
        entry.token = token;
        entry.interest = interest;
        entry.armed = all_events(interest);
        entry.parked = false;
        self.pollfds[i] = entry.pollfd();
        Ok((entry.id, Arc::clone(&entry.rearm)))
    }

    /// Removes `fd` if it is registered for `file` (`NotFound` otherwise).
    pub(super) fn remove_file(&mut self, fd: RawFd, file: FileId) -> io::Result<()> {
        self.drop_stale(fd, file);
        self.remove(fd)
    }

    pub(super) fn remove(&mut self, fd: RawFd) -> io::Result<()> {
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
    pub(super) fn current(&self, fd: RawFd, id: u64) -> Option<usize> {
        self.slot(fd).filter(|&i| self.entries[i].id == id)
    }

    /// Applies the re-arm requests that arrived since the last wait. Called
    /// only when some did (one flag says so), so the walk is not paid on
    /// every wait.
    pub(super) fn apply_rearms(&mut self) {
        for i in 1..self.entries.len() {
            let entry = &mut self.entries[i];
            if entry.rearm.load(Relaxed) == 0 {
                continue;
            }
            let bits = entry.rearm.swap(0, SeqCst) as libc::c_short;
            if entry.interest.is_edge() && !entry.parked {
                entry.armed |= bits & all_events(entry.interest);
                self.pollfds[i].events = entry.armed;
            }
        }
    }

    /// Reports flagged wakers, starting where the last full buffer
    /// stopped; returns whether some did not fit.
    pub(super) fn deliver_wakers(&mut self, events: &mut Vec<RawEvent>) -> bool {
        let n = self.wakers.len();
        let mut i = if self.waker_cursor < n {
            self.waker_cursor
        } else {
            0
        };
        for _ in 0..n {
            if events.len() == events.capacity() {
                self.waker_cursor = i;
                return self.wakers.iter().any(|w| w.pending.load(SeqCst));
            }
            let slot = &self.wakers[i];
            if slot.pending.swap(false, SeqCst) {
                events.push(event::new(slot.token, flags::IN));
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        false
    }

    /// Whether wakers go before fds in this delivery: the order alternates,
    /// so that with a small `Events` neither kind can starve the other (a
    /// waker woken before every poll, or a busy fd).
    pub(super) fn wakers_first(&mut self) -> bool {
        self.wakers_go_first = !self.wakers_go_first;
        self.wakers_go_first
    }

    /// Walks the array from the cursor and reports up to `ready` fds.
    pub(super) fn deliver_fds(&mut self, mut ready: usize, events: &mut Vec<RawEvent>) {
        let len = self.pollfds.len();
        // The cursor may point past the end after removals: start over.
        let mut i = if self.cursor < len {
            self.cursor.max(1)
        } else {
            1
        };
        let mut closed = false;
        // Slots `cursor..len`, then `1..cursor`: each once at most.
        for _ in 1..len {
            if ready == 0 {
                break;
            }
            if events.len() == events.capacity() {
                self.cursor = i;
                break;
            }
            let slot = i;
            i = if i + 1 == len { 1 } else { i + 1 };
            let revents = self.pollfds[slot].revents;
            if revents == 0 {
                continue;
            }
            ready -= 1;
            if revents & libc::POLLNVAL != 0 {
                self.entries[slot].closed = true;
                closed = true;
                continue;
            }
            let entry = &mut self.entries[slot];
            let revents = entry.probe_full(revents);
            let flags = entry.deliver(revents);
            self.pollfds[slot] = entry.pollfd();
            if flags != 0 {
                events.push(event::new(entry.token, flags));
            }
        }
        if closed {
            self.forgotten += self.forget_closed();
        }
    }

    /// Drops registrations whose fd was closed without deregistering (epoll
    /// forgets those by itself, unless another fd keeps the file open) and
    /// returns how many. Rare, so a second walk is fine.
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
