//! The documented state of one sequence's pipes, handles, registrations and
//! wakers, and what each op does to it. What a poll must then report is in
//! `expect.rs`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, ErrorKind};

use crate::failure::{Failure, Kind};
use crate::ops::{Ask, H, Mode, P, Side, W, Want};

/// The documented contract for the pipes, handles, registrations and wakers
/// of one sequence.
#[derive(Default)]
pub struct Model {
    pub pipes: HashMap<P, PipeModel>,
    pub handles: HashMap<H, HandleModel>,
    /// At most one registration per handle (a second is `AlreadyExists`).
    pub regs: BTreeMap<H, Reg>,
    pub wakers: BTreeMap<W, WakerModel>,
    /// Tokens that must not be reported any more, and why.
    pub gone: HashMap<usize, Gone>,
    /// Tokens of wakers dropped with a wake not yet reported. waker.rs: "if
    /// the `Waker` is dropped before a poll has seen its wake, that wake may
    /// be lost", so one report at the next poll is allowed, not required.
    pub dropped_wakes: Vec<usize>,
}

#[derive(Debug, Default)]
pub struct PipeModel {
    /// Bytes in the pipe, from what reads and writes returned.
    pub buffered: usize,
    /// The last write was short or `WouldBlock` and nothing was read since,
    /// so the pipe is full (pipe/mod.rs: "A short write likewise proves the pipe
    /// was full").
    pub known_full: bool,
    pub readers: usize,
    pub writers: usize,
    /// Counts what happened on the pipe: a write call (whatever it
    /// returned), a read that moved bytes, a handle closed. An edge
    /// registration may be reported again without being re-armed once this
    /// moved past what it was at its last report (interest.rs: "a backend
    /// may or may not report more (epoll reports every write to a pipe,
    /// poll(2) does not)"; Linux wakes epoll even for a write that fails
    /// with `WouldBlock`). Never a reason to *require* a report.
    pub activity: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct HandleModel {
    pub pipe: P,
    pub side: Side,
}

#[derive(Debug)]
pub struct Reg {
    pub token: usize,
    pub mode: Mode,
    /// Edge and oneshot: must be reported once ready (level ignores it).
    /// Set by (re)register; for edge also when the direction is used up (a
    /// `WouldBlock`, a short read, a short write), through any clone of the
    /// end.
    pub armed: bool,
    /// Edge: an event that said closed was reported, and pipe/mod.rs says that
    /// one is the last ("nothing more is reported"), until a reregister.
    pub closed_reported: bool,
    /// The pipe's `activity` at the last report or (re)registration.
    pub seen: u64,
}

#[derive(Debug)]
pub struct WakerModel {
    pub token: usize,
    /// Woken since its last report.
    pub pending: bool,
}

/// Why a token must not be reported any more.
#[derive(Clone, Copy, Debug)]
pub enum Gone {
    Deregistered,
    Replaced,
    HandleDropped(H),
    WakerDropped,
}

impl fmt::Display for Gone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gone::Deregistered => write!(f, "it was deregistered"),
            Gone::Replaced => write!(f, "a reregister gave the registration another token"),
            Gone::HandleDropped(h) => write!(f, "its handle {h} was dropped"),
            Gone::WakerDropped => write!(f, "its waker was dropped"),
        }
    }
}

/// What a registry call does, for the model and the runner alike.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    Register(usize, Want),
    Reregister(usize, Want),
    Deregister,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::Register(..) => "register",
            Call::Reregister(..) => "reregister",
            Call::Deregister => "deregister",
        }
    }
}

impl Reg {
    pub fn new(token: usize, mode: Mode, activity: u64) -> Reg {
        Reg {
            token,
            mode,
            armed: true,
            closed_reported: false,
            seen: activity,
        }
    }
}

/// Pipes and registry calls.
impl Model {
    pub fn new_pipe(&mut self, p: P, sender: H, receiver: H) {
        let pipe = PipeModel {
            readers: 1,
            writers: 1,
            ..PipeModel::default()
        };
        self.pipes.insert(p, pipe);
        let handle = |side| HandleModel { pipe: p, side };
        self.handles.insert(sender, handle(Side::Sender));
        self.handles.insert(receiver, handle(Side::Receiver));
    }

    /// A clone is one more handle on the same end, not registered.
    pub fn cloned(&mut self, of: H, new: H) {
        let handle = self.handles[&of];
        let pipe = self.pipes.get_mut(&handle.pipe).expect("live pipe");
        match handle.side {
            Side::Sender => pipe.writers += 1,
            Side::Receiver => pipe.readers += 1,
        }
        self.handles.insert(new, handle);
    }

    /// Registry's docs: an interest with none of a pipe end's directions
    /// is `InvalidInput`, checked first; registering a registered source is
    /// `AlreadyExists`, reregistering or deregistering one that is not is
    /// `NotFound`. (`Ask::Both` registers the end's own direction:
    /// pipe/mod.rs, "Interest".)
    pub fn expected(&self, h: H, call: Call) -> Result<(), ErrorKind> {
        match (call, self.regs.contains_key(&h)) {
            (Call::Register(_, want) | Call::Reregister(_, want), _) if want.ask == Ask::Other => {
                Err(ErrorKind::InvalidInput)
            }
            (Call::Register(..), true) => Err(ErrorKind::AlreadyExists),
            (Call::Register(..), false) | (_, true) => Ok(()),
            (_, false) => Err(ErrorKind::NotFound),
        }
    }

    /// Applies a registry call that succeeded. (Re)registering arms the
    /// registration and forgets what an edge registration had reported.
    pub fn apply(&mut self, h: H, call: Call) {
        let activity = self.pipes[&self.handles[&h].pipe].activity;
        let old = match call {
            Call::Register(token, want) | Call::Reregister(token, want) => {
                self.regs.insert(h, Reg::new(token, want.mode, activity))
            }
            Call::Deregister => self.regs.remove(&h),
        };
        let Some(old) = old else { return };
        match self.regs.get(&h) {
            Some(new) if new.token == old.token => {}
            Some(_) => {
                self.gone.insert(old.token, Gone::Replaced);
            }
            None => {
                self.gone.insert(old.token, Gone::Deregistered);
            }
        }
    }

    /// Re-arms the edge registrations of every handle on `side` of `p`:
    /// pipe/mod.rs, "Clones made with try_clone share the registration: reading
    /// or writing through any of them re-arms it."
    fn rearm(&mut self, p: P, side: Side) {
        for (h, reg) in self.regs.iter_mut() {
            let handle = self.handles[h];
            if handle.pipe == p && handle.side == side && reg.mode == Mode::Edge {
                reg.armed = true;
            }
        }
    }
}

/// Reads, writes, drops and wakers.
impl Model {
    /// pipe/mod.rs: with every reader gone "writes fail with BrokenPipe";
    /// otherwise a non-blocking write takes 1..=len bytes or, only when the
    /// pipe holds something, fails with `WouldBlock`. A short write or a
    /// `WouldBlock` uses the direction up.
    pub fn wrote(&mut self, h: H, len: usize, result: &io::Result<usize>) -> Result<(), Failure> {
        let p = self.handles[&h].pipe;
        let pipe = self.pipes.get_mut(&p).expect("live pipe");
        pipe.activity += 1;
        let used_up = match result {
            Err(e) if pipe.readers == 0 && e.kind() == ErrorKind::BrokenPipe => false,
            Ok(n) if pipe.readers > 0 && (1..=len).contains(n) => {
                pipe.buffered += n;
                *n < len
            }
            Err(e)
                if pipe.readers > 0 && pipe.buffered > 0 && e.kind() == ErrorKind::WouldBlock =>
            {
                true
            }
            other => {
                return Err(Failure::new(
                    Kind::OpResult,
                    format!(
                        "{h}.write of {len} bytes, with {} bytes buffered and {} reader(s): got {other:?}",
                        pipe.buffered, pipe.readers
                    ),
                ));
            }
        };
        if used_up {
            pipe.known_full = true;
            self.rearm(p, Side::Sender);
        }
        Ok(())
    }

    /// pipe/mod.rs: reads return the bytes buffered, then 0 once every writer is
    /// gone; an empty pipe with a writer is `WouldBlock`. A `WouldBlock` or a
    /// read shorter than asked (but not 0) uses the direction up.
    pub fn read(&mut self, h: H, len: usize, result: &io::Result<usize>) -> Result<(), Failure> {
        let p = self.handles[&h].pipe;
        let pipe = self.pipes.get_mut(&p).expect("live pipe");
        let expected = match (pipe.buffered, pipe.writers) {
            (0, 0) => Ok(0),
            (0, _) => Err(ErrorKind::WouldBlock),
            (buffered, _) => Ok(len.min(buffered)),
        };
        let got = result.as_ref().map(|&n| n).map_err(io::Error::kind);
        if got != expected {
            return Err(Failure::new(
                Kind::OpResult,
                format!(
                    "{h}.read into {len} bytes, with {} buffered and {} writer(s): expected {expected:?}, got {result:?}",
                    pipe.buffered, pipe.writers
                ),
            ));
        }
        let used_up = match got {
            Ok(0) => false,
            Ok(n) => {
                pipe.buffered -= n;
                pipe.known_full = false;
                pipe.activity += 1;
                n < len
            }
            Err(_) => true,
        };
        if used_up {
            self.rearm(p, Side::Receiver);
        }
        Ok(())
    }

    /// The pipe loses a reader or writer, and the handle's registration
    /// ends (pipe/mod.rs, "Lifetimes": dropping a registered end ends its
    /// registrations on every backend, even while a clone keeps the pipe
    /// open). So its token must not be reported again, and a later handle
    /// that gets its fd number registers afresh.
    pub fn drop_handle(&mut self, h: H) {
        let handle = self.handles.remove(&h).expect("live handle");
        let pipe = self.pipes.get_mut(&handle.pipe).expect("live pipe");
        match handle.side {
            Side::Sender => pipe.writers -= 1,
            Side::Receiver => pipe.readers -= 1,
        }
        pipe.activity += 1;
        if let Some(reg) = self.regs.remove(&h) {
            self.gone.insert(reg.token, Gone::HandleDropped(h));
        }
    }

    pub fn new_waker(&mut self, w: W, token: usize) {
        let pending = false;
        self.wakers.insert(w, WakerModel { token, pending });
    }

    pub fn wake(&mut self, w: W) {
        self.wakers.get_mut(&w).expect("live waker").pending = true;
    }

    pub fn drop_waker(&mut self, w: W) {
        let waker = self.wakers.remove(&w).expect("live waker");
        if waker.pending {
            self.dropped_wakes.push(waker.token);
        }
        self.gone.insert(waker.token, Gone::WakerDropped);
    }
}
