//! The guide, chapter 3: epoll, kqueue and why O(ready) matters
//! (docs/guide/03-epoll-kqueue.md).
//!
//! ```text
//! cargo run --example guide_03_epoll_kqueue
//! cargo run --release --example guide_03_epoll_kqueue   # closer to poller bench
//! ```
//!
//! For each backend this system has (`Backend::available()`: epoll and
//! poll(2) on Linux, kqueue and poll(2) on macOS and the BSDs), one byte
//! goes back and forth between two pipes while N other pipes sit registered
//! and idle. Every poll returns exactly one event, whatever N is; what it
//! costs to find that one event is what differs. The times are a rough
//! single run, on whatever else this machine is doing: `poller bench`
//! measures properly (docs/guide/03-epoll-kqueue.md shows its figures).

use std::io::{self, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use pipeloop::pipe::{self, Receiver, Sender};
use pipeloop::{Backend, Events, Interest, Poll, Token};

/// The idle pipes beside the ping-pong pair, per row (cut to fit the
/// open-file limit: two fds per pipe).
const SIZES: [usize; 3] = [1, 100, 1_000];
/// Round trips per row; two events each.
const ROUND_TRIPS: u32 = 400;

const PING: Token = Token(0);
const PONG: Token = Token(1);

fn main() -> io::Result<()> {
    let most = most_idle_pipes();
    println!("backend   idle pipes   events per poll   µs per event (one rough run)");
    for &backend in Backend::available() {
        let mut first = None;
        for idle in SIZES {
            let idle = idle.min(most);
            let (per_poll, per_event) = ping_pong(backend, idle)?;
            let first = *first.get_or_insert(per_event);
            println!(
                "{:<9} {idle:>10}   {per_poll:>15.1}   {:>8.1}   ({:.1} × the first row)",
                backend.name(),
                per_event.as_secs_f64() * 1e6,
                per_event.as_secs_f64() / first.as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Times `ROUND_TRIPS` round trips on `backend` with `idle` idle pipes;
/// returns the events per poll and the time per event.
fn ping_pong(backend: Backend, idle: usize) -> io::Result<(f64, Duration)> {
    let mut poll = Poll::with_backend(backend)?;
    let registry = poll.registry();

    // The idle pipes: registered, their senders kept open, never written.
    let mut parked: Vec<(Sender, Receiver)> = Vec::with_capacity(idle);
    for i in 0..idle {
        let (sender, mut receiver) = pipe::new()?;
        registry.register(&mut receiver, Token(2 + i), Interest::READABLE)?;
        parked.push((sender, receiver));
    }

    // The pair that does the work.
    let (mut ping_tx, mut ping_rx) = pipe::new()?;
    let (mut pong_tx, mut pong_rx) = pipe::new()?;
    registry.register(&mut ping_rx, PING, Interest::READABLE)?;
    registry.register(&mut pong_rx, PONG, Interest::READABLE)?;

    let mut events = Events::with_capacity(64);
    let (mut polls, mut seen) = (0u32, 0u32);
    let started = Instant::now();
    ping_tx.write_all(b"!")?;
    while seen < 2 * ROUND_TRIPS {
        poll.poll(&mut events, Some(Duration::from_secs(5)))?;
        polls += 1;
        assert!(!events.is_empty(), "{backend}: no event in 5 s");
        for event in &events {
            seen += 1;
            // One byte into a bigger buffer: a short read, which uses up
            // the edge on every backend (chapter 4), so no second read.
            let mut byte = [0u8; 8];
            let (from, to) = match event.token() {
                PING => (&mut ping_rx, &mut pong_tx),
                PONG => (&mut pong_rx, &mut ping_tx),
                token => unreachable!("idle pipe {token:?} fired"),
            };
            match from.read(&mut byte) {
                Ok(1) => to.write_all(b"!")?,
                Ok(n) => panic!("{backend}: read {n} bytes, expected 1"),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    let elapsed = started.elapsed();
    Ok((f64::from(seen) / f64::from(polls), elapsed / seen))
}

/// How many idle pipes fit under the open-file limit, with room to spare.
fn most_idle_pipes() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 100;
    }
    let soft = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
    let most = soft.saturating_sub(64) / 2;
    if most < SIZES[SIZES.len() - 1] {
        println!("(the open-file limit is {soft}: rows are cut to {most} idle pipes)");
    }
    most
}
