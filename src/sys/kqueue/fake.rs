//! A scripted kernel for the kqueue backend's unit tests: it answers
//! `kevent` as each OS's sources say it does (docs/kqueue.md has the
//! source lines), with pipes whose bytes are only counted.
//!
//! The model follows FreeBSD's `kern_event.c`, which the others share in
//! outline: a knote is *active* when its filter said so at a wake-up, and
//! *queued* (reported at the next scan) while it is also enabled; a scan
//! asks the filter again, drops the knote from the queue if the answer is
//! now no, and otherwise reports it and then clears (`EV_CLEAR`), disables
//! (`EV_DISPATCH`), deletes (`EV_ONESHOT`) or keeps it queued (level).
//! Where the OSes differ, an [`Os`] says which way each one goes. Every OS
//! uses FreeBSD's constants here: the translations are tested with
//! FreeBSD's and NetBSD's numbering in `kevent.rs`; the per-OS widths are
//! converted in `kqueue/mod.rs`, which is only type-checked.
//!
//! One simplification: every read and write wakes the lists it would wake,
//! whatever it moved. The kernels wake fewer times (FreeBSD only after a
//! read that took bytes, DragonFly a writer only once the buffer drained
//! below half, ...), never more, so the fake reports at least as many
//! repeats as a real kernel: the hold-back tests are stricter here, not
//! weaker.

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::core::Kernel;
use super::kevent::{Consts, FREEBSD, Kev};

const C: Consts = FREEBSD;
const PIPE_BUF: i64 = 512;
pub(super) const PIPE_SIZE: usize = 16_384;

/// What `kevent` with no timeout returns when a real kernel would sleep
/// forever: the tests' "this would hang".
pub(super) const WOULD_HANG: &str = "fake kernel: kevent would sleep forever";

/// What a filter on the direction a pipe end cannot do gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reverse {
    /// Attached; reports writable (FreeBSD's both-way pipes, OpenBSD's
    /// reverse buffer, DragonFly's full-duplex pipes).
    Writable,
    /// Attached; quiet until the pipe closes, then `EV_EOF` (xnu, NetBSD
    /// 10).
    QuietUntilEof,
    /// Attached; never reported, not even at end of file (NetBSD's newest
    /// `sys_pipe.c`, 1.182: `filt_pipewrongend`).
    Never,
    /// Refused with this errno (NetBSD's 2023 rewrite, `sys_pipe.c` 1.165:
    /// `EINVAL`).
    Refused(i32),
}

/// How one OS's kernel differs from another's, as far as this backend goes.
#[derive(Debug)]
pub(super) struct Os {
    pub(super) name: &'static str,
    /// A direction's `EVFILT_READ` and `EVFILT_WRITE` knotes hang on one
    /// list, which reads and writes both wake (FreeBSD, xnu, OpenBSD,
    /// NetBSD 10): a reader's own read asks its knote again (reported again
    /// if bytes are left, or the writer is gone), and a writer's own write
    /// asks its knote again (reported again if room is left). Otherwise a
    /// read wakes only the writer's list and a write only the reader's
    /// (NetBSD newest, DragonFly).
    shared_list: bool,
    /// Adding `EVFILT_WRITE` to a write end whose reader is gone: refused
    /// with this errno, or (0) attached, reporting `EV_EOF`.
    pub(super) write_to_gone_reader: i32,
    /// The reader's close turns the writer's write knotes into `EV_ONESHOT`
    /// ones (FreeBSD's `knlist_clear`): reported once, then deleted.
    pub(super) gone_reader_deletes: bool,
    /// `EV_EOF` on a write filter carries the room last seen (FreeBSD)
    /// rather than 0.
    stale_eof_data: bool,
    /// `EVFILT_WRITE` on a read end.
    pub(super) write_on_read_end: Reverse,
    /// An error entry keeps the change's flags besides `EV_ERROR` (xnu).
    error_keeps_flags: bool,
    /// Any change to an existing fd knote that is not a delete re-runs its
    /// filter and overwrites its `udata` (FreeBSD, xnu, NetBSD, DragonFly);
    /// on OpenBSD only `EV_ADD` does both, and the `EV_ENABLE` of a
    /// disabled knote re-runs the filter (`kqueue_register`: `if
    /// ((kev->flags & EV_ENABLE) && (kn->kn_status & KN_DISABLED))`).
    /// (`EVFILT_USER` knotes: see `user_keeps_udata`.)
    touch_reevaluates: bool,
    /// An `EVFILT_USER` knote keeps its `udata` through every change, an
    /// `EV_ADD` too (DragonFly's `kqueue_register` hands both to
    /// `filt_usertouch`, which leaves it alone); elsewhere every change but
    /// a delete overwrites it, a trigger too (OpenBSD's `kqueue_register`
    /// sends a change without `EV_ADD` to `filt_usermodify`, which sets
    /// `kn->kn_udata = kev->udata`).
    user_keeps_udata: bool,
    /// `EV_RECEIPT` is understood.
    receipts: bool,
    /// An error or receipt with no room left is written past the event
    /// list (DragonFly's `kern_kevent` does not check); the fake panics.
    overflows: bool,
    /// A receipt with no room left is dropped and the rest of the
    /// changelist applied (xnu's `kevent_internal`); an error with no room
    /// still fails the call. Elsewhere the call returns at once: with the
    /// change's errno, or 0 for a receipt, the rest not applied.
    drops_receipts: bool,
    /// A change without `EV_ADD` looks for the knote before it looks up the
    /// fd (xnu's `kevent_register`), so for a closed fd it finds none and
    /// answers `ENOENT`; the others look up the fd first and answer
    /// `EBADF`.
    closed_fd_enoent: bool,
}

pub(super) const FREEBSD_OS: Os = Os {
    name: "FreeBSD",
    shared_list: true,
    write_to_gone_reader: libc::EPIPE,
    gone_reader_deletes: true,
    stale_eof_data: true,
    write_on_read_end: Reverse::Writable,
    error_keeps_flags: false,
    touch_reevaluates: true,
    user_keeps_udata: false,
    receipts: true,
    overflows: false,
    drops_receipts: false,
    closed_fd_enoent: false,
};

pub(super) const MACOS: Os = Os {
    name: "macOS",
    shared_list: true,
    write_to_gone_reader: 0,
    gone_reader_deletes: false,
    stale_eof_data: false,
    write_on_read_end: Reverse::QuietUntilEof,
    error_keeps_flags: true,
    touch_reevaluates: true,
    user_keeps_udata: false,
    receipts: true,
    overflows: false,
    drops_receipts: true,
    closed_fd_enoent: true,
};

/// NetBSD 10 (`sys_pipe.c` 1.160).
pub(super) const NETBSD_OS: Os = Os {
    name: "NetBSD 10",
    shared_list: true,
    write_to_gone_reader: libc::EBADF,
    gone_reader_deletes: false,
    stale_eof_data: false,
    write_on_read_end: Reverse::QuietUntilEof,
    error_keeps_flags: false,
    touch_reevaluates: true,
    user_keeps_udata: false,
    receipts: true,
    overflows: false,
    drops_receipts: false,
    closed_fd_enoent: false,
};

/// NetBSD's short-lived 2023 pipe rewrite (`sys_pipe.c` 1.165), which
/// refused a write filter on a read end.
pub(super) const NETBSD_1165: Os = Os {
    name: "NetBSD 1.165",
    write_on_read_end: Reverse::Refused(libc::EINVAL),
    ..NETBSD_OS
};

/// NetBSD's newest `sys_pipe.c` (1.182): each end's knotes on a list of
/// its own, and a write filter attached with `EV_EOF` once the reader is
/// gone.
pub(super) const NETBSD_NEWEST: Os = Os {
    name: "NetBSD newest",
    shared_list: false,
    write_to_gone_reader: 0,
    write_on_read_end: Reverse::Never,
    ..NETBSD_OS
};

pub(super) const OPENBSD: Os = Os {
    name: "OpenBSD",
    shared_list: true,
    write_to_gone_reader: 0,
    gone_reader_deletes: false,
    stale_eof_data: false,
    write_on_read_end: Reverse::Writable,
    error_keeps_flags: false,
    touch_reevaluates: false,
    user_keeps_udata: false,
    receipts: true,
    overflows: false,
    drops_receipts: false,
    closed_fd_enoent: false,
};

pub(super) const DRAGONFLY: Os = Os {
    name: "DragonFly",
    shared_list: false,
    write_to_gone_reader: libc::EPIPE,
    gone_reader_deletes: false,
    stale_eof_data: false,
    write_on_read_end: Reverse::Writable,
    error_keeps_flags: false,
    touch_reevaluates: true,
    user_keeps_udata: true,
    receipts: true,
    overflows: true,
    drops_receipts: false,
    closed_fd_enoent: false,
};

/// DragonFly before `EV_RECEIPT`: errors of changes only.
pub(super) const OLD_DRAGONFLY: Os = Os {
    name: "old DragonFly",
    receipts: false,
    ..DRAGONFLY
};

pub(super) const EVERY_OS: [&Os; 6] = [
    &FREEBSD_OS,
    &MACOS,
    &NETBSD_OS,
    &NETBSD_NEWEST,
    &OPENBSD,
    &DRAGONFLY,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Read(usize),
    Write(usize),
}

#[derive(Debug)]
struct Pipe {
    buffered: usize,
    reader: bool,
    writer: bool,
    /// The room when the reader closed: FreeBSD's write filter stops
    /// updating `data` then.
    last_room: i64,
}

#[derive(Debug)]
struct Knote {
    ident: usize,
    filter: i32,
    udata: usize,
    /// `EV_CLEAR`, `EV_DISPATCH` and `EV_ONESHOT`, as created.
    mode: u32,
    disabled: bool,
    active: bool,
    /// `NOTE_TRIGGER` seen (`EVFILT_USER`).
    triggered: bool,
}

#[derive(Debug, Default)]
struct World {
    files: HashMap<RawFd, End>,
    pipes: Vec<Pipe>,
    knotes: Vec<Knote>,
    next_fd: RawFd,
    /// `kevent` calls so far.
    calls: usize,
    /// The timeout of each wait so far.
    waits: Vec<Option<Duration>>,
}

#[derive(Debug)]
pub(super) struct Fake {
    os: &'static Os,
    world: Mutex<World>,
    /// Runs once, at the start of the next `kevent` whose changes carry no
    /// receipts (a wait): another thread acting while the poller is on its
    /// way into the kernel.
    pub(super) hook: Mutex<Hook>,
    /// Runs once, right after the next `kevent` whose changes carry
    /// receipts (a registration change) has returned to the backend's code.
    after_change: Mutex<Hook>,
}

/// Something another thread does (see `Fake::hook`).
#[derive(Default)]
pub(super) struct Hook(pub(super) Option<Box<dyn FnOnce() + Send>>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl Fake {
    pub(super) fn new(os: &'static Os) -> Fake {
        Fake {
            os,
            world: Mutex::new(World {
                next_fd: 3,
                ..World::default()
            }),
            hook: Mutex::default(),
            after_change: Mutex::default(),
        }
    }

    /// Sets what another thread does right after the next registration
    /// change's `kevent` (while the backend still holds its lock).
    pub(super) fn after_change(&self, hook: impl FnOnce() + Send + 'static) {
        *self
            .after_change
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Hook(Some(Box::new(hook)));
    }

    /// Sets what another thread does at the start of the next wait.
    pub(super) fn meanwhile(&self, hook: impl FnOnce() + Send + 'static) {
        self.hook.lock().unwrap_or_else(PoisonError::into_inner).0 = Some(Box::new(hook));
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new pipe: (read end, write end).
    pub(super) fn pipe(&self) -> (RawFd, RawFd) {
        let mut w = self.world();
        let p = w.pipes.len();
        w.pipes.push(Pipe {
            buffered: 0,
            reader: true,
            writer: true,
            last_room: PIPE_SIZE as i64,
        });
        let (r, wr) = (w.next_fd, w.next_fd + 1);
        w.next_fd += 2;
        w.files.insert(r, End::Read(p));
        w.files.insert(wr, End::Write(p));
        (r, wr)
    }

    /// Writes up to `n` bytes into the pipe of write end `fd`, as much as
    /// there is room for; returns how many.
    pub(super) fn write(&self, fd: RawFd, n: usize) -> usize {
        let mut w = self.world();
        let Some(&End::Write(p)) = w.files.get(&fd) else {
            panic!("{fd} is not a write end");
        };
        let put = n.min(PIPE_SIZE - w.pipes[p].buffered);
        w.pipes[p].buffered += put;
        // As the kernels' `if (wpipe->pipe_buffer.cnt)`: bytes are there.
        if w.pipes[p].buffered > 0 {
            w.wake(self.os, End::Read(p));
            if self.os.shared_list {
                w.wake(self.os, End::Write(p));
            }
        }
        put
    }

    /// Reads up to `n` bytes from read end `fd`; returns how many.
    pub(super) fn read(&self, fd: RawFd, n: usize) -> usize {
        let mut w = self.world();
        let Some(&End::Read(p)) = w.files.get(&fd) else {
            panic!("{fd} is not a read end");
        };
        let got = n.min(w.pipes[p].buffered);
        w.pipes[p].buffered -= got;
        w.wake(self.os, End::Write(p));
        if self.os.shared_list {
            w.wake(self.os, End::Read(p));
        }
        got
    }

    /// Closes `fd`: its knotes go (`knote_fdclose`), and the pipe's other
    /// side hears of it.
    pub(super) fn close(&self, fd: RawFd) {
        let mut w = self.world();
        let end = w.files.remove(&fd).expect("closing an open fd");
        w.knotes
            .retain(|k| !(k.ident == fd as usize && is_fd_filter(k.filter)));
        match end {
            End::Read(p) => {
                // The room a FreeBSD write filter reports from now on: what
                // `pipeclose` computed before freeing the buffer.
                w.pipes[p].last_room = (PIPE_SIZE - w.pipes[p].buffered) as i64;
                w.pipes[p].reader = false;
                if self.os.gone_reader_deletes {
                    let writers: Vec<usize> = w
                        .files
                        .iter()
                        .filter(|&(_, &e)| e == End::Write(p))
                        .map(|(&fd, _)| fd as usize)
                        .collect();
                    for k in w.knotes.iter_mut() {
                        if k.filter == C.evfilt_write && writers.contains(&k.ident) {
                            k.mode |= C.ev_oneshot;
                        }
                    }
                }
                w.wake(self.os, End::Write(p));
            }
            End::Write(p) => {
                w.pipes[p].writer = false;
                w.wake(self.os, End::Read(p));
            }
        }
    }

    /// `dup2`: `fd` now names a new pipe's read end (its old file, if it
    /// had one, closed).
    pub(super) fn reuse_as_new_reader(&self, fd: RawFd) -> RawFd {
        self.close_if_open(fd);
        let (r, wr) = self.pipe();
        let mut w = self.world();
        let end = w.files.remove(&r).unwrap();
        w.files.insert(fd, end);
        wr
    }

    /// `dup2`: `fd` now names a new pipe's write end (its old file, if it
    /// had one, closed).
    pub(super) fn reuse_as_new_writer(&self, fd: RawFd) -> RawFd {
        self.close_if_open(fd);
        let (r, wr) = self.pipe();
        let mut w = self.world();
        let end = w.files.remove(&wr).unwrap();
        w.files.insert(fd, end);
        r
    }

    fn close_if_open(&self, fd: RawFd) {
        if self.is_open(fd) {
            self.close(fd);
        }
    }

    pub(super) fn calls(&self) -> usize {
        self.world().calls
    }

    /// The timeout of each wait so far.
    pub(super) fn waits(&self) -> Vec<Option<Duration>> {
        self.world().waits.clone()
    }

    pub(super) fn os(&self) -> &'static Os {
        self.os
    }
}

fn is_fd_filter(filter: i32) -> bool {
    filter == C.evfilt_read || filter == C.evfilt_write
}

impl World {
    fn knote(&self, ident: usize, filter: i32) -> Option<usize> {
        self.knotes
            .iter()
            .position(|k| k.ident == ident && k.filter == filter)
    }

    /// What the filter says now: `Some((data, eof))` if it would fire.
    fn filter(&self, os: &Os, k: &Knote) -> Option<(i64, bool)> {
        if k.filter == C.evfilt_user {
            return k.triggered.then_some((0, false));
        }
        if k.filter == C.evfilt_timer {
            // Expired at once: the wake-up timer's 1 ms is over by the time
            // anyone looks (the receipt probe's timer is added disabled).
            return Some((1, false));
        }
        if !is_fd_filter(k.filter) {
            return None;
        }
        let end = *self.files.get(&(k.ident as RawFd))?;
        match (end, k.filter == C.evfilt_read) {
            (End::Read(p), true) => {
                let pipe = &self.pipes[p];
                let eof = !pipe.writer;
                (pipe.buffered > 0 || eof).then_some((pipe.buffered as i64, eof))
            }
            (End::Write(p), false) => {
                let pipe = &self.pipes[p];
                if !pipe.reader {
                    let data = if os.stale_eof_data { pipe.last_room } else { 0 };
                    return Some((data, true));
                }
                let room = (PIPE_SIZE - pipe.buffered) as i64;
                (room >= PIPE_BUF).then_some((room, false))
            }
            // The reverse directions: nothing is readable on a write end.
            (End::Read(p), false) => match os.write_on_read_end {
                Reverse::QuietUntilEof => (!self.pipes[p].writer).then_some((0, true)),
                Reverse::Never | Reverse::Refused(_) => None,
                Reverse::Writable => Some((PIPE_BUF, false)),
            },
            (End::Write(_), true) => None,
        }
    }

    /// A wake-up of the knotes on `end`'s side: each is asked its filter,
    /// and becomes active if it says yes (queued, if it is enabled).
    fn wake(&mut self, os: &Os, end: End) {
        let wanted = match end {
            End::Read(_) => C.evfilt_read,
            End::Write(_) => C.evfilt_write,
        };
        for i in 0..self.knotes.len() {
            let k = &self.knotes[i];
            let on_side = k.filter == wanted && self.files.get(&(k.ident as RawFd)) == Some(&end);
            if on_side && self.filter(os, k).is_some() {
                self.knotes[i].active = true;
            }
        }
    }

    /// `kqueue_register`: one change.
    fn change(&mut self, os: &Os, ch: &Kev) -> Result<(), i32> {
        if is_fd_filter(ch.filter) && !self.files.contains_key(&(ch.ident as RawFd)) {
            // The close dropped the fd's knotes, so a search finds none.
            let searched_first = os.closed_fd_enoent && ch.flags & C.ev_add == 0;
            return Err(if searched_first {
                libc::ENOENT
            } else {
                libc::EBADF
            });
        }
        let Some(i) = self.knote(ch.ident, ch.filter) else {
            if ch.flags & C.ev_add == 0 {
                return Err(libc::ENOENT);
            }
            return self.attach(os, ch);
        };
        if ch.flags & C.ev_delete != 0 {
            self.knotes.remove(i);
            return Ok(());
        }
        let k = &mut self.knotes[i];
        let added = ch.flags & C.ev_add != 0;
        let user = k.filter == C.evfilt_user;
        // The mode stays as created; the token is updated.
        let rewrites = if user {
            !os.user_keeps_udata
        } else {
            added || os.touch_reevaluates
        };
        if rewrites {
            k.udata = ch.udata;
        }
        let enabled = ch.flags & C.ev_enable != 0 && k.disabled;
        if ch.flags & C.ev_enable != 0 {
            k.disabled = false;
        } else if ch.flags & C.ev_disable != 0 {
            k.disabled = true;
        }
        if ch.fflags & C.note_trigger != 0 {
            k.triggered = true;
        }
        let k = &self.knotes[i];
        let asked = added || enabled || os.touch_reevaluates || k.filter == C.evfilt_user;
        if asked && !k.disabled && self.filter(os, k).is_some() {
            self.knotes[i].active = true;
        }
        Ok(())
    }

    fn attach(&mut self, os: &Os, ch: &Kev) -> Result<(), i32> {
        let end = self.files.get(&(ch.ident as RawFd)).copied();
        if ch.filter == C.evfilt_write {
            match end {
                Some(End::Write(p)) if !self.pipes[p].reader && os.write_to_gone_reader != 0 => {
                    return Err(os.write_to_gone_reader);
                }
                Some(End::Read(_)) => {
                    if let Reverse::Refused(errno) = os.write_on_read_end {
                        return Err(errno);
                    }
                }
                _ => {}
            }
        }
        let k = Knote {
            ident: ch.ident,
            filter: ch.filter,
            udata: ch.udata,
            mode: ch.flags & (C.ev_clear | C.ev_dispatch | C.ev_oneshot),
            disabled: ch.flags & C.ev_disable != 0,
            active: false,
            triggered: false,
        };
        let fires = !k.disabled && self.filter(os, &k).is_some();
        self.knotes.push(Knote { active: fires, ..k });
        Ok(())
    }

    /// `kqueue_scan`: reports the queued knotes, up to `out.len()`.
    fn scan(&mut self, os: &Os, out: &mut [MaybeUninit<Kev>]) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.knotes.len() && n < out.len() {
            let k = &self.knotes[i];
            if !k.active || k.disabled {
                i += 1;
                continue;
            }
            let Some((data, eof)) = self.filter(os, k) else {
                self.knotes[i].active = false;
                i += 1;
                continue;
            };
            let eof_flag = if eof { C.ev_eof } else { 0 };
            out[n].write(Kev {
                ident: k.ident,
                filter: k.filter,
                flags: k.mode | eof_flag,
                fflags: 0,
                data,
                udata: k.udata,
            });
            n += 1;
            let k = &mut self.knotes[i];
            k.triggered = false;
            if k.mode & C.ev_oneshot != 0 {
                self.knotes.remove(i);
                continue;
            }
            if k.mode & C.ev_dispatch != 0 {
                k.disabled = true;
                k.active = false;
            } else if k.mode & C.ev_clear != 0 {
                k.active = false;
            }
            i += 1;
        }
        n
    }
}

impl Kernel for Fake {
    const C: Consts = C;
    type Raw = Kev;

    fn to_raw(k: &Kev) -> Kev {
        *k
    }

    fn from_raw(r: &Kev) -> Kev {
        *r
    }

    fn kevent(
        &self,
        changes: &[Kev],
        out: &mut [MaybeUninit<Kev>],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let waiting = changes.iter().all(|c| c.flags & C.ev_receipt == 0);
        if waiting {
            run(&self.hook);
            self.world().waits.push(timeout);
        }
        let result = self.apply_and_scan(changes, out, timeout);
        if !waiting {
            run(&self.after_change);
        }
        result
    }

    fn is_open(&self, fd: RawFd) -> bool {
        self.world().files.contains_key(&fd)
    }

    fn gone_reader_is_ebadf(&self) -> bool {
        self.os.write_to_gone_reader == libc::EBADF
    }

    fn gone_reader_deletes_write_filter(&self) -> bool {
        self.os.gone_reader_deletes
    }
}

/// Runs (and removes) the hook in `slot`, if any.
fn run(slot: &Mutex<Hook>) {
    let hook = slot.lock().unwrap_or_else(PoisonError::into_inner).0.take();
    if let Some(hook) = hook {
        hook();
    }
}

impl Fake {
    /// `kevent` itself: the changes, then the receipts and errors or, if
    /// there are none, a scan.
    fn apply_and_scan(
        &self,
        changes: &[Kev],
        out: &mut [MaybeUninit<Kev>],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let os = self.os;
        let mut w = self.world();
        w.calls += 1;
        let mut n = 0;
        for ch in changes {
            let result = w.change(os, ch);
            let receipt = os.receipts && ch.flags & C.ev_receipt != 0;
            if result.is_ok() && !receipt {
                continue;
            }
            let errno = result.err().unwrap_or(0);
            if n == out.len() {
                assert!(!os.overflows, "{} would write past the event list", os.name);
                if os.drops_receipts && errno == 0 {
                    continue;
                }
                // No room for the answer: the rest is not applied, and the
                // call returns the errno, or 0 however many were written.
                return match errno {
                    0 => Ok(0),
                    e => Err(io::Error::from_raw_os_error(e)),
                };
            }
            let kept = if os.error_keeps_flags { ch.flags } else { 0 };
            out[n].write(Kev {
                flags: C.ev_error | kept,
                data: i64::from(errno),
                ..*ch
            });
            n += 1;
        }
        // Errors and receipts come back at once, without a scan.
        if n > 0 {
            return Ok(n);
        }
        let n = w.scan(os, out);
        if n == 0 && timeout.is_none() {
            return Err(io::Error::other(WOULD_HANG));
        }
        Ok(n)
    }
}
