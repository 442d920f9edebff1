//! The kqueue backend's logic, over a [`Kernel`]: the one seam between it
//! and `kevent(2)`.
//!
//! `kqueue/mod.rs` implements `Kernel` with the real system call on macOS
//! and the BSDs; the unit tests implement it with a scripted kernel
//! (`fake.rs`) that answers as each OS's sources say it does, so that this
//! file, which no machine here can run for real, runs on Linux under test.
//! What each kernel does, with the source lines, is in docs/kqueue.md.
//!
//! What the logic adds to the kernel, so that the contract is the same as on
//! epoll:
//!
//! - **A record** of each fd's filters, mode and token, because kqueue
//!   takes a second `EV_ADD` as an update: it answers `AlreadyExists` and
//!   `NotFound`. Whether a record is still the fd's (or the fd was closed
//!   and its number reused) is asked of the kernel, which dropped the
//!   filters at the close: `fstat` cannot say (`st_ino` is 0 for every pipe
//!   on NetBSD and OpenBSD, shared by both ends and kept when a pipe is
//!   recycled on DragonFly, and reused after free on macOS).
//! - **Edge mode holds back what is not news**: edge is `EV_CLEAR`, and for
//!   pipeloop's own pipe ends, which report when they used a direction up,
//!   a direction is delivered once and then held back until that report
//!   (most kernels also report a pipe end's own reads and writes); a
//!   hang-up always gets through, once.
//! - **Write-closed reported here**: when a sender's reader is gone the
//!   kernels disagree (the filter cannot be added, or reports `EV_EOF` once
//!   and is deleted, or keeps reporting it), so the backend deletes the
//!   kernel filter and reports write-closed itself, once or on every poll as
//!   the mode says.
//! - **Oneshot covers both directions**: `EV_DISPATCH` disables only the
//!   filter that fired, so the backend disables the other one.
//! - **A failed change leaves the record "unknown"**, and the next change
//!   deletes both filters and adds afresh, so record and kernel converge.
//!   Meanwhile the filters keep the record's token, so that their events
//!   still find the record.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use super::kevent::{self, Consts, Kev, READ, WRITE};
use super::plan::{Answers, MAX_STEPS, Plan};
use crate::sys::FdMap;
use crate::{Interest, Token};

/// The system call, as the backend sees it.
pub(crate) trait Kernel: Send + Sync + Sized + 'static {
    /// This OS's constants.
    const C: Consts;
    /// The kernel's own `struct kevent`.
    type Raw: Copy;

    fn to_raw(k: &Kev) -> Self::Raw;
    fn from_raw(r: &Self::Raw) -> Kev;

    /// `kevent(2)`: applies `changes`, then writes up to `out.len()` entries
    /// (errors of changes, receipts, events) and returns how many, waiting
    /// up to `timeout` (`None`: without limit) when there is nothing to
    /// return. `EINTR` is returned as an error.
    fn kevent(
        &self,
        changes: &[Self::Raw],
        out: &mut [MaybeUninit<Self::Raw>],
        timeout: Option<Duration>,
    ) -> io::Result<usize>;

    /// Whether `fd` is open (`fcntl(F_GETFD)`).
    fn is_open(&self, fd: RawFd) -> bool;

    /// Whether adding `EVFILT_WRITE` for a pipe whose reader is gone may be
    /// refused with `EBADF`, the errno of a closed fd (NetBSD 10).
    fn gone_reader_is_ebadf(&self) -> bool;

    /// Whether the kernel deletes a sender's `EVFILT_WRITE` itself once it
    /// reported the reader gone (FreeBSD's `knlist_clear`), so that a
    /// missing write filter may still be the record's own.
    fn gone_reader_deletes_write_filter(&self) -> bool;
}

/// The EVFILT_TIMER ident and period of the receipt probe (never fires: it
/// is disabled from its creation or right after, and deleted in the same
/// call).
const PROBE_IDENT: usize = 0;
const PROBE_MS: i64 = 60_000;

/// The EVFILT_TIMER ident that wakes a sleeping poller (see `wake_poller`).
pub(super) const WAKE_IDENT: usize = 1;

pub(crate) struct Core<K: Kernel> {
    pub(super) kernel: K,
    state: Mutex<State>,
    /// A poller is in (or on its way into) `kevent`: a write-closed report
    /// added meanwhile must wake it (`wake_poller`).
    pub(super) waiting: AtomicBool,
    /// `State::synthetic` has fds: set under the lock, read without it.
    pub(super) due: Arc<AtomicBool>,
    /// Records whose events need bookkeeping in `select` (edge mode of a
    /// pipe end, oneshot pairs): while there are none, `select` takes no
    /// lock unless a pipe hangs up.
    pub(super) watched: AtomicUsize,
    /// Idents for `EVFILT_USER` wakers: a namespace of their own, not fds.
    #[cfg_attr(not(any(pipeloop_evfilt_user, test)), allow(dead_code))]
    pub(super) next_user_ident: AtomicUsize,
}

impl<K: Kernel> std::fmt::Debug for Core<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) fds: FdMap<Slot>,
    pub(super) next_id: u64,
    /// fds whose write-closed is due to be reported by this backend.
    pub(super) synthetic: Due,
}

/// The fds whose write-closed this backend is due to report, and a flag
/// that says whether there are any, which a poller reads without the lock
/// (`Core::due`, the same flag). Every change goes through here, so the flag
/// cannot disagree with the list.
#[derive(Default)]
pub(super) struct Due {
    fds: Vec<RawFd>,
    any: Arc<AtomicBool>,
}

impl Due {
    fn set(&mut self) {
        self.any.store(!self.fds.is_empty(), Ordering::SeqCst);
    }

    pub(super) fn fds(&self) -> &[RawFd] {
        &self.fds
    }

    /// Adds `fd` if it is not there yet.
    pub(super) fn add(&mut self, fd: RawFd) {
        if !self.fds.contains(&fd) {
            self.fds.push(fd);
            self.set();
        }
    }

    pub(super) fn drop_fd(&mut self, fd: RawFd) {
        self.fds.retain(|&f| f != fd);
        self.set();
    }

    pub(super) fn take(&mut self, i: usize) {
        self.fds.swap_remove(i);
        self.set();
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    pub(super) token: Token,
    pub(super) interest: Interest,
    /// The source reports used-up directions (pipeloop's pipe ends), so
    /// edge mode holds back what is not news (see `is_filtered`).
    pub(super) rearms: bool,
    /// Tells one registration of an fd number from a later one.
    pub(super) id: u64,
    /// A change failed half-way: which filters the kernel has is not known,
    /// so the next change deletes both before adding.
    pub(super) unknown: bool,
    /// Edge, filtered: end of file was reported, which is the last event.
    pub(super) read_closed: bool,
    /// The reader is gone: the kernel has (or soon has) no write filter and
    /// this backend reports write-closed.
    pub(super) write_closed: bool,
    /// Edge, filtered: the directions whose next event is delivered; a
    /// delivery clears its bit, the source's report of a used-up direction
    /// sets it again.
    pub(super) armed: u8,
    /// Edge, filtered: directions whose events were held back since they
    /// were last delivered; re-arming one asks the kernel again.
    pub(super) held: u8,
    /// Oneshot for both directions: one of them was reported, so nothing
    /// more is until a reregister (the other filter is disabled too, but
    /// may have fired in the same scan).
    pub(super) fired: bool,
}

impl Slot {
    /// The filters the kernel should have for this record.
    pub(super) fn kernel_set(&self) -> u8 {
        let set = kevent::filters_of(self.interest);
        if self.write_closed { set & !WRITE } else { set }
    }

    pub(super) fn mode(&self, c: &Consts) -> u32 {
        kevent::mode_flags(self.interest, c)
    }

    pub(super) fn is_oneshot_pair(&self) -> bool {
        is_oneshot_pair(self.interest)
    }

    /// Edge mode of a source that reports used-up directions: `EV_CLEAR`
    /// reports more than the contract's edges (FreeBSD, xnu, OpenBSD and
    /// NetBSD 10 wake a reader's own knote on its reads, and a writer's on
    /// its writes), so each
    /// direction is delivered once and then held back until the source
    /// used it up. A hang-up always gets through, as on epoll.
    pub(super) fn is_filtered(&self) -> bool {
        self.rearms && self.interest.is_edge()
    }

    fn is_watched(&self) -> bool {
        is_watched(self.interest, self.rearms)
    }

    /// A change of one of this record's filters.
    pub(super) fn change(&self, fd: RawFd, bit: u8, flags: u32, c: &Consts) -> Kev {
        Kev {
            ident: fd as usize,
            filter: kevent::filter(bit, c),
            flags,
            udata: self.token.0,
            ..Kev::default()
        }
    }
}

fn is_oneshot_pair(interest: Interest) -> bool {
    interest.is_oneshot() && kevent::filters_of(interest) == READ | WRITE
}

/// Whether a registration's events need its record in `select`: edge mode
/// of a source that reports used-up directions, or a oneshot pair.
pub(super) fn is_watched(interest: Interest, rearms: bool) -> bool {
    (rearms && interest.is_edge()) || is_oneshot_pair(interest)
}

impl<K: Kernel> Core<K> {
    /// Takes the kernel's kqueue, after checking that it answers changes
    /// with receipts.
    pub(crate) fn new(kernel: K) -> io::Result<Core<K>> {
        let state = State::default();
        let core = Core {
            kernel,
            due: Arc::clone(&state.synthetic.any),
            state: Mutex::new(state),
            waiting: AtomicBool::new(false),
            watched: AtomicUsize::new(0),
            next_user_ident: AtomicUsize::new(0),
        };
        core.check_receipts()?;
        Ok(core)
    }

    #[cfg(test)]
    pub(crate) fn kernel(&self) -> &K {
        &self.kernel
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Pairing each change with its error by position needs `EV_RECEIPT`
    /// (old DragonFly lacks it and returns errors only; NetBSD before 10 is
    /// refused earlier, by version), so it is tried once: a disabled timer
    /// added and deleted in one call, with room for two answers, must come
    /// back as two receipts.
    fn check_receipts(&self) -> io::Result<()> {
        let c = K::C;
        let timer = |flags| Kev {
            ident: PROBE_IDENT,
            filter: c.evfilt_timer,
            flags: flags | c.ev_receipt,
            data: PROBE_MS,
            ..Kev::default()
        };
        let changes = [
            K::to_raw(&timer(c.ev_add | c.ev_disable)),
            K::to_raw(&timer(c.ev_delete)),
        ];
        let mut out = [MaybeUninit::uninit(); 2];
        let n = self
            .kernel
            .kevent(&changes, &mut out, Some(Duration::ZERO))?;
        let receipts = out[..n]
            .iter()
            // SAFETY: the kernel initialised the first `n` entries.
            .map(|k| K::from_raw(unsafe { k.assume_init_ref() }))
            .filter(|k| k.flags & c.ev_error != 0 && k.data == 0)
            .count();
        if receipts == 2 {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this kqueue does not return receipts (EV_RECEIPT), so a change's error \
                 cannot be told from another's; use the poll backend",
            ))
        }
    }

    /// Submits a plan's steps for `fd` in one call and returns each one's
    /// errno (0 when it worked).
    pub(super) fn submit(&self, fd: RawFd, token: Token, plan: &Plan) -> io::Result<Answers> {
        let c = K::C;
        let zero = K::to_raw(&Kev::default());
        let mut list = [zero; MAX_STEPS];
        for (k, step) in list.iter_mut().zip(plan.steps()) {
            *k = K::to_raw(&Kev {
                ident: fd as usize,
                filter: kevent::filter(step.bit, &c),
                flags: step.flags,
                udata: token.0,
                ..Kev::default()
            });
        }
        let errnos = self.receipts(&list[..plan.len])?;
        Ok(Answers { errnos })
    }

    /// Submits changes that all ask for receipts, and returns their errnos.
    pub(super) fn receipts(&self, list: &[K::Raw]) -> io::Result<[i32; MAX_STEPS]> {
        let c = K::C;
        let mut out = [MaybeUninit::uninit(); MAX_STEPS];
        let n = self
            .kernel
            .kevent(list, &mut out[..list.len()], Some(Duration::ZERO))?;
        let mut errnos = [0; MAX_STEPS];
        if n != list.len() {
            return Err(io::Error::other(format!(
                "kevent returned {n} receipts for {} changes",
                list.len()
            )));
        }
        for (errno, k) in errnos.iter_mut().zip(&out[..n]) {
            // SAFETY: the kernel initialised the first `n` entries.
            let k = K::from_raw(unsafe { k.assume_init_ref() });
            if k.flags & c.ev_error == 0 {
                return Err(io::Error::other(
                    "kevent returned an event instead of a receipt",
                ));
            }
            *errno = k.data as i32;
        }
        Ok(errnos)
    }

    pub(super) fn registration(self: &Arc<Self>, fd: RawFd, slot: &Slot) -> Registration<K> {
        Registration {
            core: Arc::downgrade(self),
            fd,
            id: slot.id,
            rearms: slot.is_filtered(),
        }
    }

    /// Records `slot` for `fd`, with what follows from it: every direction
    /// armed, and a write-closed state due to be reported.
    pub(super) fn insert(&self, st: &mut State, fd: RawFd, mut slot: Slot) {
        slot.armed = slot.kernel_set();
        slot.held = 0;
        slot.fired = false;
        if slot.is_watched() {
            self.watched.fetch_add(1, Ordering::Relaxed);
        }
        if slot.write_closed && slot.interest.is_writable() {
            // Reported at the next poll, as epoll reports a new
            // registration's state at once.
            st.synthetic.add(fd);
            self.wake_poller();
        }
        st.fds.set(fd, slot);
    }

    /// Wakes a poller asleep in `kevent` (if one is) so that it reports what
    /// this backend added meanwhile: a one-shot timer of 1 ms, which every
    /// kqueue has (OpenBSD has no `EVFILT_USER` to rely on) and which costs
    /// no fd. Its event is not reported; the poller then finds the rest.
    pub(super) fn wake_poller(&self) {
        if self.waiting.load(Ordering::SeqCst) {
            let c = K::C;
            self.submit_now(Kev {
                ident: WAKE_IDENT,
                filter: c.evfilt_timer,
                flags: c.ev_add | c.ev_oneshot,
                data: 1,
                ..Kev::default()
            });
        }
    }

    /// Drops `fd`'s record and the write-closed report due for it.
    pub(super) fn remove(&self, st: &mut State, fd: RawFd) -> Option<Slot> {
        let slot = st.fds.remove(fd)?;
        if slot.is_watched() {
            self.watched.fetch_sub(1, Ordering::Relaxed);
        }
        st.synthetic.drop_fd(fd);
        Some(slot)
    }

    pub(super) fn forget(&self, st: &mut State, fd: RawFd) {
        self.remove(st, fd);
    }

    /// Sends a change for a recorded fd to the kernel now, under the state
    /// lock: a pipe end drops its record under that lock before its fd
    /// closes, so the change reaches the file the record is for, never one
    /// that reuses the number. (Riding in the next wait's changelist would
    /// save a system call, but the fd could be closed and its number reused
    /// between taking the change and the kernel applying it.) Such changes
    /// are rare: asks after a held-back event, sibling disables, deletes of
    /// a gone reader's write filter.
    pub(super) fn change_now(&self, _st: &mut State, change: Kev) {
        self.submit_now(change);
    }

    /// The source of the registration (`fd`, `id`) used `direction` up: its
    /// next event is news again. If one was held back meanwhile, the kernel
    /// is asked again: a write between the source's last read and this call
    /// may be what was held. The asking is an `EV_ADD` of the same filter,
    /// which re-runs it on every OS (`EV_ENABLE` would not on OpenBSD, which
    /// re-runs only a disabled knote's), keeps its mode and creates nothing:
    /// the fd is open, since its end releases this record before closing.
    fn rearm(&self, fd: RawFd, id: u64, direction: Interest) {
        let mut st = self.lock();
        let Some(mut slot) = st.fds.get(fd).filter(|s| s.id == id) else {
            return;
        };
        // (An unknown record re-arms too: its asks re-create what a failed
        // reregister may have deleted, in the record's mode.)
        if !slot.is_filtered() {
            return;
        }
        let mut set = slot.kernel_set() & kevent::filters_of(direction) & !slot.armed;
        if slot.read_closed {
            set &= !READ;
        }
        if set == 0 {
            return;
        }
        slot.armed |= set;
        let ask = slot.held & set;
        slot.held &= !set;
        st.fds.set(fd, slot);
        for bit in [READ, WRITE] {
            if ask & bit != 0 {
                let ask = slot.change(fd, bit, K::C.ev_add | slot.mode(&K::C), &K::C);
                self.change_now(&mut st, ask);
            }
        }
    }

    fn stop_holding_back(&self, fd: RawFd, id: u64) {
        let mut st = self.lock();
        if let Some(slot) = st.fds.get(fd).filter(|s| s.id == id) {
            let was_watched = slot.is_watched();
            let slot = Slot {
                rearms: false,
                ..slot
            };
            if was_watched && !slot.is_watched() {
                self.watched.fetch_sub(1, Ordering::Relaxed);
            }
            st.fds.set(fd, slot);
        }
    }

    fn release(&self, fd: RawFd, id: u64) {
        let mut st = self.lock();
        if st.fds.get(fd).is_some_and(|slot| slot.id == id) {
            self.remove(&mut st, fd);
        }
    }
}

/// A pipe end's handle on its record: to report a used-up direction, and
/// to forget the record when the fd closes. It refers to the backend
/// weakly, so it never keeps the kqueue fd open.
#[derive(Debug)]
pub(crate) struct Registration<K: Kernel> {
    core: Weak<Core<K>>,
    fd: RawFd,
    id: u64,
    /// Edge mode, whose held-back directions the source re-arms.
    rearms: bool,
}

impl<K: Kernel> Registration<K> {
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    #[cfg_attr(not(pipeloop_kqueue), allow(dead_code))] // used by the real backend
    pub(crate) fn backend(&self) -> usize {
        self.core.as_ptr() as *const u8 as usize
    }

    pub(crate) fn needs_rearm(&self) -> bool {
        self.rearms
    }

    /// The source used `direction` up: its next event is news again.
    pub(crate) fn rearm(&self, direction: Interest) {
        if let Some(core) = self.core.upgrade() {
            core.rearm(self.fd, self.id, direction);
        }
    }

    /// The fd is handed out as a raw fd (`into_fd`): the registration stays,
    /// but nothing will report used-up directions any more, so edge mode
    /// stops holding events back (it is plain `EV_CLEAR` now, as for a
    /// `SourceFd`).
    pub(crate) fn hand_over(self) {
        if let Some(core) = self.core.upgrade() {
            core.stop_holding_back(self.fd, self.id);
        }
    }

    /// The fd is about to be closed, and the kernel drops its filters then;
    /// drop the record too, if it is still this registration's.
    pub(crate) fn release(self) {
        if let Some(core) = self.core.upgrade() {
            core.release(self.fd, self.id);
        }
    }
}
