//! The kqueue backend's side of a wait: kevents become pipeloop's events,
//! edge mode holds back what the contract says is not news, and
//! write-closed events are added.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::core::{Core, Kernel, Slot, State};
use super::kevent::{self, Kev, READ, WRITE};
use crate::Token;
use crate::sys::event::{self as raw, RawEvent, flags};

impl<K: Kernel> Core<K> {
    /// Waits for events: turns kevents into pipeloop's events, and adds the
    /// write-closed events this backend reports itself.
    ///
    /// When a wait returns with nothing to report (events that edge mode
    /// holds back, or the timer that woke it for a write-closed report), it
    /// waits again for what is left of the timeout, counted from the call's
    /// start, or without limit if there is none: `Poll::poll(None)` returns
    /// only with events.
    pub(crate) fn select(
        &self,
        out: &mut Vec<K::Raw>,
        events: &mut Vec<RawEvent>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        events.clear();
        out.clear();
        // No more than `events` can take without growing.
        let capacity = out
            .capacity()
            .min(events.capacity())
            .min(libc::c_int::MAX as usize);
        // Any wait may go round again: another thread can register a
        // write-closed sender, whose report's timer wakes this one, at any
        // time. So a timed call reads the clock before it waits, once: what
        // is left of its timeout is counted from here, not from the end of
        // a wait that may have taken most of it.
        let now_only = timeout == Some(Duration::ZERO);
        let start = (timeout.is_some() && !now_only).then(Instant::now);
        let mut left = timeout;
        loop {
            let due = self.start_waiting();
            // Write-closed events are due: collect what the kernel has
            // without sleeping.
            let wait = if due { Some(Duration::ZERO) } else { left };
            let spare = &mut out.spare_capacity_mut()[..capacity];
            let got = self.kernel.kevent(&[], spare, wait);
            self.waiting.store(false, Ordering::SeqCst);
            let n = got?;
            // SAFETY: the kernel initialised the first `n` (<= capacity)
            // entries.
            unsafe { out.set_len(n) };
            let held = self.translate(out, events);
            if due {
                self.report_write_closed(events, capacity);
            }
            if !events.is_empty() || now_only || (held == 0 && !due) {
                return Ok(());
            }
            if let (Some(t), Some(start)) = (timeout, start) {
                let rest = (start + t).saturating_duration_since(Instant::now());
                if rest.is_zero() {
                    return Ok(());
                }
                left = Some(rest);
            }
            out.clear();
        }
    }

    /// Marks a poller waiting (from now on, `wake_poller` wakes it) and
    /// says whether write-closed events are due, without the lock: a thread
    /// that adds one sets `due` and then reads `waiting`, this one the other
    /// way round (both `SeqCst`), so either it sees the report or that
    /// thread wakes it.
    fn start_waiting(&self) -> bool {
        self.waiting.store(true, Ordering::SeqCst);
        self.due.load(Ordering::SeqCst)
    }

    /// Submits one change now, with a receipt so that nothing is scanned.
    /// Its error is dropped: `ENOENT` or `EBADF` mean the filter is gone
    /// already (a raw fd closed without deregistering, or a write filter
    /// that FreeBSD deleted itself after reporting its reader gone).
    pub(super) fn submit_now(&self, change: Kev) {
        let raw = K::to_raw(&Kev {
            flags: change.flags | K::C.ev_receipt,
            ..change
        });
        let mut out = [MaybeUninit::uninit()];
        let _ = self.kernel.kevent(&[raw], &mut out, Some(Duration::ZERO));
    }

    /// Translates `out` into `events`; returns how many entries were not
    /// delivered: events held back by edge mode, and the wake-up timer.
    fn translate(&self, out: &[K::Raw], events: &mut Vec<RawEvent>) -> usize {
        let c = K::C;
        // Without edge registrations of pipe ends or oneshot pairs, only
        // end of file needs the record; with them, every event does, and
        // the lock is taken once for the whole batch.
        let watched = self.watched.load(Ordering::Relaxed) > 0;
        let mut st = watched.then(|| self.lock());
        let mut held = 0;
        for raw in out {
            let k = K::from_raw(raw);
            // The timer that woke this poller for what the backend reports
            // itself.
            if k.filter == c.evfilt_timer {
                held += 1;
                continue;
            }
            let io = k.filter == c.evfilt_read || k.filter == c.evfilt_write;
            let eof = k.flags & c.ev_eof != 0;
            let deliver = match &mut st {
                Some(st) if io => self.bookkeep(st, &k),
                None if io && eof => self.bookkeep(&mut self.lock(), &k),
                _ => true,
            };
            if !deliver {
                held += 1;
                continue;
            }
            let bits = kevent::event_flags(k.filter, k.flags, k.fflags, k.data, &c);
            events.push(raw::new(Token(k.udata), bits));
        }
        held
    }

    /// Updates `k`'s record for its delivery, and says whether to deliver
    /// it:
    ///
    /// - **edge, pipe ends**: a direction is delivered, then held back until
    ///   the end reports it used up (most kernels also report an end's own
    ///   reads and writes); a hang-up always gets through, once;
    /// - **a gone reader**: write-closed moves here (the kernel filter is
    ///   deleted), so that it is reported as the mode says on every OS;
    /// - **oneshot pairs**: the other direction is disabled.
    fn bookkeep(&self, st: &mut State, k: &Kev) -> bool {
        let c = K::C;
        let fd = k.ident as RawFd;
        let Some(mut slot) = st.fds.get(fd).filter(|s| s.token.0 == k.udata) else {
            return true; // not (or no longer) recorded: as the kernel says
        };
        let eof = k.flags & c.ev_eof != 0;
        let bit = if k.filter == c.evfilt_read {
            READ
        } else {
            WRITE
        };
        let mut deliver = true;
        if slot.is_filtered() {
            deliver = if eof && bit == READ {
                // The last event: xnu and OpenBSD would report it after
                // every read.
                !std::mem::replace(&mut slot.read_closed, true)
            } else {
                eof || slot.armed & bit != 0
            };
            if deliver {
                slot.armed &= !bit;
            } else {
                slot.held |= bit;
            }
        }
        if eof && bit == WRITE {
            deliver &= !slot.write_closed;
            self.close_write(st, fd, &mut slot);
        }
        if slot.is_oneshot_pair() && deliver {
            deliver = !std::mem::replace(&mut slot.fired, true);
            self.disable_sibling(st, fd, &slot, bit);
        }
        st.fds.set(fd, slot);
        deliver
    }

    /// The reader of `fd`'s write end turned out to be gone, and the kernel's
    /// report of it (in flight to a poller, FreeBSD having deleted the filter
    /// already) will be held back as a repeat: report it from here, at least
    /// once, and wake a poller that sleeps.
    pub(super) fn latch_write_closed(&self, st: &mut State, fd: RawFd, slot: &mut Slot) {
        if !slot.write_closed {
            slot.write_closed = true;
            if slot.interest.is_writable() {
                st.synthetic.add(fd);
                self.wake_poller();
            }
        }
    }

    /// The reader of `fd` is gone. FreeBSD deletes the write filter itself
    /// (`EV_ONESHOT`), the others keep it and report again (on every poll in
    /// level mode); this backend deletes it and reports write-closed
    /// itself, on every OS alike.
    fn close_write(&self, st: &mut State, fd: RawFd, slot: &mut Slot) {
        if slot.write_closed {
            return;
        }
        slot.write_closed = true;
        let delete = slot.change(fd, WRITE, K::C.ev_delete, &K::C);
        self.change_now(st, delete);
        if !slot.interest.is_edge() && !slot.interest.is_oneshot() {
            st.synthetic.add(fd);
        }
    }

    /// A oneshot registration for both directions reported `bit`: the other
    /// direction must stay quiet until a reregister, as with
    /// `EPOLLONESHOT`.
    pub(super) fn disable_sibling(&self, st: &mut State, fd: RawFd, slot: &Slot, bit: u8) {
        let other = if bit == READ { WRITE } else { READ };
        if slot.kernel_set() & other != 0 {
            let disable = slot.change(fd, other, K::C.ev_disable, &K::C);
            self.change_now(st, disable);
        } else {
            st.synthetic.drop_fd(fd);
        }
    }

    /// Adds the write-closed events that are due: `OUT | ERR`, as the
    /// kernels' `EV_EOF` on a write filter translates. Level keeps
    /// reporting; edge and oneshot report once.
    fn report_write_closed(&self, events: &mut Vec<RawEvent>, capacity: usize) {
        let mut st = self.lock();
        let mut i = 0;
        while i < st.synthetic.fds().len() && events.len() < capacity {
            let fd = st.synthetic.fds()[i];
            let Some(mut slot) = st.fds.get(fd) else {
                st.synthetic.take(i);
                continue;
            };
            if slot.is_oneshot_pair() {
                st.synthetic.take(i);
                if !std::mem::replace(&mut slot.fired, true) {
                    events.push(raw::new(slot.token, flags::OUT | flags::ERR));
                    self.disable_sibling(&mut st, fd, &slot, WRITE);
                    st.fds.set(fd, slot);
                }
                continue;
            }
            events.push(raw::new(slot.token, flags::OUT | flags::ERR));
            if slot.interest.is_edge() || slot.interest.is_oneshot() {
                st.synthetic.take(i);
            } else {
                i += 1;
            }
        }
    }
}
