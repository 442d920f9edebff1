//! The ops on a real `Poll`, each checked against the model as it runs.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use pipeloop::event::Source;
use pipeloop::pipe::{self, Receiver, Sender};
use pipeloop::{Backend, Events, Poll, Token, Waker};

use crate::expect::Seen;
use crate::failure::{Failure, Kind};
use crate::generate::MAX_TRANSFER;
use crate::model::{Call, Model};
use crate::ops::{H, Op, P, Side, W};

/// Far more than a sequence can register, so every event fits in one poll.
const EVENTS_CAPACITY: usize = 64;

/// What every write writes (the bytes do not matter, only how many).
static ZEROS: [u8; MAX_TRANSFER] = [0; MAX_TRANSFER];

/// Runs `ops` on a fresh `Poll` of `backend`, checking each step against the
/// model; stops at the first disagreement.
pub fn run(ops: &[Op], backend: Backend) -> Result<(), Failure> {
    let mut runner = Runner::new(backend);
    for (step, &op) in ops.iter().enumerate() {
        runner.step(op).map_err(|failure| failure.at(step))?;
    }
    Ok(())
}

/// Runs `ops` as `run` does, and returns what the program saw, one line
/// per op: each call's result (error kinds, byte counts) and each poll's
/// events (sorted by token, with their flags); stops at the first
/// disagreement with the model.
pub fn transcript(ops: &[Op], backend: Backend) -> Result<Vec<String>, Failure> {
    let mut runner = Runner::new(backend);
    for (step, &op) in ops.iter().enumerate() {
        runner.step(op).map_err(|failure| failure.at(step))?;
        runner.transcript.push(std::mem::take(&mut runner.line));
    }
    Ok(runner.transcript)
}

enum End {
    Sender(Sender),
    Receiver(Receiver),
}

impl End {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            End::Sender(s) => s,
            End::Receiver(r) => r,
        }
    }

    fn side(&self) -> Side {
        match self {
            End::Sender(_) => Side::Sender,
            End::Receiver(_) => Side::Receiver,
        }
    }

    fn try_clone(&self) -> End {
        match self {
            End::Sender(s) => End::Sender(s.try_clone().expect("try_clone")),
            End::Receiver(r) => End::Receiver(r.try_clone().expect("try_clone")),
        }
    }
}

struct Runner {
    poll: Poll,
    events: Events,
    ends: HashMap<H, End>,
    wakers: HashMap<W, Waker>,
    model: Model,
    read_buf: Vec<u8>,
    /// What the program saw, one line per op (see `transcript`).
    transcript: Vec<String>,
    line: String,
}

impl Runner {
    fn new(backend: Backend) -> Runner {
        let poll = Poll::with_backend(backend)
            .unwrap_or_else(|e| panic!("creating a {backend} Poll: {e}"));
        Runner {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            ends: HashMap::new(),
            wakers: HashMap::new(),
            model: Model::default(),
            read_buf: vec![0; MAX_TRANSFER],
            transcript: Vec::new(),
            line: String::new(),
        }
    }

    fn step(&mut self, op: Op) -> Result<(), Failure> {
        match op {
            Op::NewPipe {
                pipe,
                sender,
                receiver,
            } => self.new_pipe(pipe, sender, receiver),
            Op::TryClone { of, new } => self.try_clone(of, new),
            Op::Register { h, token, want } => return self.call(h, Call::Register(token, want)),
            Op::Reregister { h, token, want } => {
                return self.call(h, Call::Reregister(token, want));
            }
            Op::Deregister { h } => return self.call(h, Call::Deregister),
            Op::Write { h, len } => return self.write(h, len),
            Op::Read { h, len } => return self.read(h, len),
            Op::Drop { h } => self.drop_handle(h),
            Op::NewWaker { w, token } => self.new_waker(w, token),
            Op::Wake { w } => self.wake(w),
            Op::DropWaker { w } => self.drop_waker(w),
            Op::Poll => return self.poll(),
        }
        Ok(())
    }

    fn new_pipe(&mut self, p: P, sender: H, receiver: H) {
        let (s, r) = pipe::new().expect("pipe::new");
        self.ends.insert(sender, End::Sender(s));
        self.ends.insert(receiver, End::Receiver(r));
        self.model.new_pipe(p, sender, receiver);
    }

    fn try_clone(&mut self, of: H, new: H) {
        let Some(end) = self.ends.get(&of) else {
            return;
        };
        self.ends.insert(new, end.try_clone());
        self.model.cloned(of, new);
    }

    /// register, reregister or deregister, and the error kind the docs
    /// promise.
    fn call(&mut self, h: H, call: Call) -> Result<(), Failure> {
        let Some(end) = self.ends.get_mut(&h) else {
            return Ok(());
        };
        let side = end.side();
        let registry = self.poll.registry();
        let got = match call {
            Call::Register(token, want) => {
                registry.register(end.source(), Token(token), want.interest(side))
            }
            Call::Reregister(token, want) => {
                registry.reregister(end.source(), Token(token), want.interest(side))
            }
            Call::Deregister => registry.deregister(end.source()),
        };
        self.line = outcome(&got);
        let expected = self.model.expected(h, call);
        match (&expected, &got) {
            (Ok(()), Ok(())) => self.model.apply(h, call),
            (Err(want), Err(e)) if e.kind() == *want => {}
            _ => {
                let detail = format!("{} of {h}: expected {expected:?}, got {got:?}", call.name());
                return Err(Failure::new(Kind::OpResult, detail));
            }
        }
        Ok(())
    }

    fn write(&mut self, h: H, len: usize) -> Result<(), Failure> {
        let Some(End::Sender(sender)) = self.ends.get_mut(&h) else {
            return Ok(());
        };
        let result = sender.write(&ZEROS[..len]);
        self.line = outcome(&result);
        self.model.wrote(h, len, &result)
    }

    fn read(&mut self, h: H, len: usize) -> Result<(), Failure> {
        let Some(End::Receiver(receiver)) = self.ends.get_mut(&h) else {
            return Ok(());
        };
        let result = receiver.read(&mut self.read_buf[..len]);
        self.line = outcome(&result);
        self.model.read(h, len, &result)
    }

    fn drop_handle(&mut self, h: H) {
        if self.ends.remove(&h).is_some() {
            self.model.drop_handle(h);
        }
    }

    fn new_waker(&mut self, w: W, token: usize) {
        let waker = Waker::new(self.poll.registry(), Token(token)).expect("Waker::new");
        self.wakers.insert(w, waker);
        self.model.new_waker(w, token);
    }

    fn wake(&mut self, w: W) {
        let Some(waker) = self.wakers.get(&w) else {
            return;
        };
        waker.wake().expect("wake");
        self.model.wake(w);
    }

    fn drop_waker(&mut self, w: W) {
        if self.wakers.remove(&w).is_some() {
            self.model.drop_waker(w);
        }
    }

    fn poll(&mut self) -> Result<(), Failure> {
        let room = self.room();
        self.model.check_room(&room)?;
        self.poll
            .poll(&mut self.events, Some(Duration::ZERO))
            .expect("poll");
        let seen: Vec<Seen> = self.events.iter().map(Seen::of).collect();
        let mut lines: Vec<String> = seen.iter().map(Seen::summary).collect();
        lines.sort();
        self.line = lines.join(", ");
        self.model.check_poll(&seen, &room)
    }

    /// Whether each pipe that has a sender has room, asked of the kernel.
    fn room(&self) -> BTreeMap<P, bool> {
        let mut room = BTreeMap::new();
        for (h, end) in &self.ends {
            if let End::Sender(sender) = end {
                let p = self.model.handles[h].pipe;
                room.entry(p).or_insert_with(|| kernel_room(sender));
            }
        }
        room
    }
}

/// An op's result as the transcript shows it: the value, or the error kind.
fn outcome<T: std::fmt::Debug>(result: &io::Result<T>) -> String {
    match result {
        Ok(value) => format!("Ok({value:?})"),
        Err(e) => format!("Err({:?})", e.kind()),
    }
}

/// Room in a pipe is the one thing the model takes from the kernel rather
/// than working out: Linux counts it in page buffers (a pipe is a ring of
/// 16 by default), and writes are merged into the last page or not
/// depending on their size, so a pipe holding far less than 65,536 bytes
/// may be full, and a read frees room only when it empties a page. A
/// `poll(2)` of the write end with a zero timeout says whether a write
/// would take something now; the pipe/mod.rs table ("writable unless the pipe
/// is full") is about exactly that. `Model::check_room` holds it to what is
/// certain.
fn kernel_room(sender: &Sender) -> bool {
    let mut fd = libc::pollfd {
        fd: sender.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and a zero timeout.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    assert!(
        n >= 0,
        "poll(2) of a sender: {}",
        io::Error::last_os_error()
    );
    fd.revents & libc::POLLOUT != 0
}
