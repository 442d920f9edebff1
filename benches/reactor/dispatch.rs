//! Dispatch overhead: pingpong's one-pipe round trip (write 1 byte, poll,
//! read it back) driven by `EventLoop` handlers, against the same round
//! through a bare `Poll` (pingpong's own pipeloop rows, the same code).

use std::io::{self, ErrorKind, Read, Write};
use std::time::Duration;

use pipeloop::reactor::{EventLoop, Flow, Timer};
use pipeloop::{Backend, Interest, pipe};

use super::Args;
use crate::competitors::{Active, BUF, PipeLib, Rounds, check, drive};
use crate::stats::{Runner, find, measure, ratio};

/// The rows, in the order they are printed.
pub const NAMES: [&str; 5] = [
    "eventloop-epoll",
    "poll-epoll",
    "eventloop-poll",
    "poll-poll",
    "raw-epoll-edge",
];

/// The timeout the bare loops pass in dispatch-timer: as in pingpong's
/// pingpong-timeout case, long enough never to expire.
const BARE_TIMEOUT: Duration = Duration::from_secs(1);
/// The timer the loop holds in dispatch-timer, so that every turn computes
/// a timeout from it.
const FAR_TIMER: Duration = Duration::from_secs(3600);

/// What the handler sees and reports through `cx.data`.
struct Round {
    byte: u8,
    seen: u32,
}

/// A loop holding one pipe's read end, whose handler reads back and checks.
struct Reactor {
    ev: EventLoop<Round>,
    round: Round,
    sender: pipe::Sender,
}

impl Reactor {
    fn new(backend: Backend, with_timer: bool) -> io::Result<Reactor> {
        let mut ev: EventLoop<Round> = EventLoop::with_backend(backend)?;
        let (sender, receiver) = pipe::new()?;
        // Edge (the default), read until a short read or WouldBlock: the
        // idiom of pingpong's pipeloop-*-edge rows, in a handler.
        ev.insert(
            receiver,
            Interest::READABLE,
            |cx, rx: &mut pipe::Receiver, event| {
                check(event.is_readable(), "eventloop: event")?;
                let mut buf = [0; BUF];
                let mut got = 0;
                loop {
                    match rx.read(&mut buf) {
                        Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                        Ok(n) => {
                            got += n;
                            if n < BUF {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                check(got == 1 && buf[0] == cx.data.byte, "eventloop: read back")?;
                cx.data.seen += 1;
                Ok(Flow::Continue)
            },
        )?;
        if with_timer {
            ev.insert_timer(Timer::after(FAR_TIMER), |_| Ok(Flow::Continue))?;
        }
        Ok(Reactor {
            ev,
            round: Round { byte: 0, seen: 0 },
            sender,
        })
    }
}

impl Rounds for Reactor {
    #[inline]
    fn round(&mut self, _k: usize, byte: u8) -> io::Result<()> {
        let wrote = (&self.sender).write(&[byte])?;
        check(wrote == 1, "eventloop: write")?;
        self.round.byte = byte;
        self.round.seen = 0;
        self.ev.run_once(&mut self.round, None)?;
        check(self.round.seen == 1, "eventloop: one event")
    }
}

fn run_row(name: &str, with_timer: bool, warmup: u64, rounds: u64) -> io::Result<Duration> {
    let bare_timeout = with_timer.then_some(BARE_TIMEOUT);
    let bare = |lib: PipeLib| lib.run(1, Active::Rotating, bare_timeout, warmup, rounds);
    let reactor = |backend| {
        let mut state = Reactor::new(backend, with_timer)?;
        drive(&mut state, 1, Active::Rotating, warmup, rounds)
    };
    match name {
        "eventloop-epoll" => reactor(Backend::Epoll),
        "eventloop-poll" => reactor(Backend::Poll),
        "poll-epoll" => bare(PipeLib::PipeloopEpollEdge),
        "poll-poll" => bare(PipeLib::PipeloopPollEdge),
        "raw-epoll-edge" => bare(PipeLib::RawEpollEdge),
        _ => unreachable!("a row of NAMES"),
    }
}

fn idiom(name: &str, with_timer: bool) -> &'static str {
    match (name, with_timer) {
        ("eventloop-epoll" | "eventloop-poll", false) => {
            "EventLoop::insert (edge), handler reads until short read; run_once(None)"
        }
        ("eventloop-epoll" | "eventloop-poll", true) => {
            "the same, the loop also holds Timer::after(1 h); run_once(None)"
        }
        ("poll-epoll" | "poll-poll", false) => "pingpong's pipeloop-*-edge: Poll::poll(None)",
        ("poll-epoll" | "poll-poll", true) => "pingpong's pipeloop-*-edge: Poll::poll(1 s)",
        ("raw-epoll-edge", false) => "libc epoll_wait(-1), EPOLLET",
        _ => "libc epoll_wait(1000), EPOLLET",
    }
}

/// The dispatch case (`with_timer`: dispatch-timer).
pub fn run(args: &Args, with_timer: bool) -> io::Result<()> {
    let names = args.libs.pick(&NAMES);
    if names.is_empty() {
        return Ok(());
    }
    let case = if with_timer {
        "dispatch-timer"
    } else {
        "dispatch"
    };
    eprintln!("{case}: calibrating");
    let runners = names
        .iter()
        .map(|&name| {
            Runner::new(name, move |w, r| run_row(name, with_timer, w, r))
                .with_idiom(idiom(name, with_timer))
        })
        .collect();
    let t = measure(&args.plan, runners)?;
    let median = |name| find(&t, name).map(|t| t.median());
    println!(
        "\n## {case}: one pipe, write 1 byte + one turn + read, {} (ns per round trip)\n",
        if with_timer {
            "the loop holding one far timer, the bare loops polling with a 1 s timeout"
        } else {
            "no timeout"
        }
    );
    println!("| row | median | min | max | ÷ poll-epoll | ÷ poll-poll | idiom |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for row in &t {
        let m = Some(row.median());
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
            row.name,
            row.median(),
            row.min(),
            row.max(),
            ratio(m, median("poll-epoll")),
            ratio(m, median("poll-poll")),
            row.idiom.unwrap_or_default(),
        );
    }
    println!(
        "\nEventLoop ÷ bare Poll, same backend (goal: under 1.10): epoll {}, poll(2) {}",
        ratio(median("eventloop-epoll"), median("poll-epoll")),
        ratio(median("eventloop-poll"), median("poll-poll")),
    );
    Ok(())
}
