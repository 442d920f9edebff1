//! The libraries under test, one module each, behind two small enums so the
//! runner in `pingpong.rs` can loop over them.
//!
//! Every library gets the same round: write one byte to pipe `k`, poll, check
//! that exactly one event came back for `k`, and read the byte back, checking
//! its value. What differs is only what each library's documentation asks for
//! around that (the "idiom"), listed in [`PipeLib::idiom`].

use std::io;
use std::time::{Duration, Instant};

pub mod raw;
pub mod with_mio;
pub mod with_pipeloop;
pub mod with_polling;

/// Size of the read buffer everyone reads into: bigger than one byte, so a
/// read that returns one byte is a short read.
pub const BUF: usize = 64;

/// One round of a benchmark.
pub trait Rounds {
    /// Writes `byte` to pipe `k` (or wakes), polls, reads back and checks.
    fn round(&mut self, k: usize, byte: u8) -> io::Result<()>;
}

/// Which pipe is written in round `i` of `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Active {
    /// `i % n`: every pipe in turn, so caches are cold at large `n`.
    Rotating,
    /// Always the last one registered (the worst place for poll(2) scans):
    /// only the poller's own cost grows with `n`.
    Last,
}

/// Runs `warmup` untimed rounds, then `rounds` timed ones, over `n` pipes.
/// Setup and teardown are the caller's, outside the timing.
pub fn drive(
    state: &mut impl Rounds,
    n: usize,
    active: Active,
    warmup: u64,
    rounds: u64,
) -> io::Result<Duration> {
    let n = n as u64;
    let pick = |i: u64| match active {
        Active::Rotating => (i % n) as usize,
        Active::Last => (n - 1) as usize,
    };
    for i in 0..warmup {
        state.round(pick(i), i as u8)?;
    }
    let start = Instant::now();
    for i in warmup..warmup + rounds {
        state.round(pick(i), i as u8)?;
    }
    Ok(start.elapsed())
}

/// Fails the benchmark on a wrong result (not a timing assertion). Inlined,
/// with the failure out of line, so the check costs a compare and a branch
/// in every library's loop alike.
#[inline(always)]
pub fn check(ok: bool, what: &'static str) -> io::Result<()> {
    if ok { Ok(()) } else { failed(what) }
}

#[cold]
#[inline(never)]
fn failed(what: &'static str) -> io::Result<()> {
    Err(io::Error::other(format!("benchmark check failed: {what}")))
}

/// A library (and mode) for the pipe cases: ping-pong and idle pipes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeLib {
    PipeloopEpollEdge,
    PipeloopEpollLevel,
    PipeloopPollEdge,
    PipeloopPollLevel,
    Mio,
    Polling,
    RawEpoll,
    RawEpollEdge,
    RawPoll,
}

impl PipeLib {
    pub const ALL: [PipeLib; 9] = [
        PipeLib::PipeloopEpollEdge,
        PipeLib::PipeloopEpollLevel,
        PipeLib::PipeloopPollEdge,
        PipeLib::PipeloopPollLevel,
        PipeLib::Mio,
        PipeLib::Polling,
        PipeLib::RawEpoll,
        PipeLib::RawEpollEdge,
        PipeLib::RawPoll,
    ];

    /// The subset run for the idle-pipes case (level variants of pipeloop
    /// add nothing there).
    pub const IDLE: [PipeLib; 6] = [
        PipeLib::PipeloopEpollEdge,
        PipeLib::PipeloopPollEdge,
        PipeLib::Mio,
        PipeLib::Polling,
        PipeLib::RawEpoll,
        PipeLib::RawPoll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PipeLib::PipeloopEpollEdge => "pipeloop-epoll-edge",
            PipeLib::PipeloopEpollLevel => "pipeloop-epoll-level",
            PipeLib::PipeloopPollEdge => "pipeloop-poll-edge",
            PipeLib::PipeloopPollLevel => "pipeloop-poll-level",
            PipeLib::Mio => "mio",
            PipeLib::Polling => "polling",
            PipeLib::RawEpoll => "raw-epoll",
            PipeLib::RawEpollEdge => "raw-epoll-edge",
            PipeLib::RawPoll => "raw-poll",
        }
    }

    pub fn idiom(self) -> &'static str {
        match self {
            PipeLib::PipeloopEpollEdge | PipeLib::PipeloopPollEdge => {
                "edge (default); read into 64 B until a short read or WouldBlock"
            }
            PipeLib::PipeloopEpollLevel | PipeLib::PipeloopPollLevel => {
                "READABLE.level(); one read into 64 B"
            }
            PipeLib::Mio => "mio::unix::pipe, edge; read into 64 B until WouldBlock",
            PipeLib::Polling => "Event::readable (oneshot); one read into 64 B, then modify()",
            PipeLib::RawEpoll => "libc epoll_wait, level; one read into 64 B",
            PipeLib::RawEpollEdge => "libc epoll_wait, EPOLLET; one (short) read into 64 B",
            PipeLib::RawPoll => "libc poll(2) over all fds, scan revents; one read into 64 B",
        }
    }

    pub fn from_name(name: &str) -> Option<PipeLib> {
        PipeLib::ALL.into_iter().find(|lib| lib.name() == name)
    }

    /// Sets up `n` registered pipes, runs the rounds (each poll waiting at
    /// most `timeout`), tears down.
    pub fn run(
        self,
        n: usize,
        active: Active,
        timeout: Option<Duration>,
        warmup: u64,
        rounds: u64,
    ) -> io::Result<Duration> {
        use pipeloop::{Backend, Interest};
        // A macro, not a closure: `drive` is generic over the state, so the
        // timed loop stays monomorphic for every library.
        macro_rules! run {
            ($state:expr) => {
                drive(&mut $state?, n, active, warmup, rounds)
            };
        }
        let edge = Interest::READABLE;
        let level = Interest::READABLE.level();
        let pipeloop = |backend, interest| with_pipeloop::Pipes::new(backend, interest, n, timeout);
        match self {
            PipeLib::PipeloopEpollEdge => run!(pipeloop(Backend::Epoll, edge)),
            PipeLib::PipeloopEpollLevel => run!(pipeloop(Backend::Epoll, level)),
            PipeLib::PipeloopPollEdge => run!(pipeloop(Backend::Poll, edge)),
            PipeLib::PipeloopPollLevel => run!(pipeloop(Backend::Poll, level)),
            PipeLib::Mio => run!(with_mio::Pipes::new(n, timeout)),
            PipeLib::Polling => run!(with_polling::Pipes::new(n, timeout)),
            PipeLib::RawEpoll => run!(raw::EpollPipes::new(n, timeout, false)),
            PipeLib::RawEpollEdge => run!(raw::EpollPipes::new(n, timeout, true)),
            PipeLib::RawPoll => run!(raw::PollPipes::new(n, timeout)),
        }
    }
}

/// A waker implementation for the waker case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakerLib {
    PipeloopEventfd,
    PipeloopPipe,
    PipeloopPoll,
    Mio,
    PollingNotify,
}

impl WakerLib {
    pub const ALL: [WakerLib; 5] = [
        WakerLib::PipeloopEventfd,
        WakerLib::PipeloopPipe,
        WakerLib::PipeloopPoll,
        WakerLib::Mio,
        WakerLib::PollingNotify,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WakerLib::PipeloopEventfd => "pipeloop-epoll-eventfd",
            WakerLib::PipeloopPipe => "pipeloop-epoll-pipe",
            WakerLib::PipeloopPoll => "pipeloop-poll",
            WakerLib::Mio => "mio",
            WakerLib::PollingNotify => "polling-notify",
        }
    }

    pub fn idiom(self) -> &'static str {
        match self {
            WakerLib::PipeloopEventfd => "Waker::new on epoll (eventfd, edge, never read)",
            WakerLib::PipeloopPipe => "Waker::with_pipe on epoll (pipe, edge, drained when full)",
            WakerLib::PipeloopPoll => "Waker::new on poll(2) (flag + internal self-pipe)",
            WakerLib::Mio => "mio::Waker (eventfd on Linux)",
            WakerLib::PollingNotify => "Poller::notify (no event; wait returns 0)",
        }
    }

    pub fn from_name(name: &str) -> Option<WakerLib> {
        WakerLib::ALL.into_iter().find(|lib| lib.name() == name)
    }

    pub fn run(self, warmup: u64, rounds: u64) -> io::Result<Duration> {
        use pipeloop::Backend;
        match self {
            WakerLib::PipeloopEventfd => {
                let mut s = with_pipeloop::Wake::new(Backend::Epoll, false)?;
                drive(&mut s, 1, Active::Rotating, warmup, rounds)
            }
            WakerLib::PipeloopPipe => {
                let mut s = with_pipeloop::Wake::new(Backend::Epoll, true)?;
                drive(&mut s, 1, Active::Rotating, warmup, rounds)
            }
            WakerLib::PipeloopPoll => {
                let mut s = with_pipeloop::Wake::new(Backend::Poll, false)?;
                drive(&mut s, 1, Active::Rotating, warmup, rounds)
            }
            WakerLib::Mio => drive(
                &mut with_mio::Wake::new()?,
                1,
                Active::Rotating,
                warmup,
                rounds,
            ),
            WakerLib::PollingNotify => drive(
                &mut with_polling::Wake::new()?,
                1,
                Active::Rotating,
                warmup,
                rounds,
            ),
        }
    }
}
