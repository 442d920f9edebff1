//! `Poll::poll` allocates nothing once the `Events` buffer exists: a counting
//! global allocator watches every poll, from the very first one after
//! registration, with events ready and without, on every backend.
//!
//! Only allocations made by the current thread while it is counting are
//! seen, so the other tests of this binary and the harness do not disturb
//! the count.

// Debian's clippy 1.96 (used by scripts/check-targets.sh) flags the
// `thread_local!` below although its initialisers are already `const`.
#![allow(clippy::missing_const_for_thread_local)]

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::time::Duration;

use pipeloop::{Events, Interest, Token, Waker, pipe};
use util::for_each_backend;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static FREES: Cell<usize> = const { Cell::new(0) };
}

fn note(counter: &'static std::thread::LocalKey<Cell<usize>>) {
    // `try_with`: a thread being torn down may still allocate.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = counter.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counting
// touches only const-initialised thread-locals without destructors, which
// never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(&ALLOCS);
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(&FREES);
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f`, counting this thread's allocations and frees during it.
fn count<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
    ALLOCS.set(0);
    FREES.set(0);
    COUNTING.set(true);
    let result = f();
    COUNTING.set(false);
    (result, ALLOCS.get(), FREES.get())
}

#[test]
fn the_counter_sees_allocations() {
    let (v, allocs, frees) = count(|| std::hint::black_box(vec![1u8; 64]).len());
    assert_eq!(v, 64);
    assert_eq!((allocs, frees), (1, 1));
}

const PIPES: usize = 3;
const WAKE: Token = Token(PIPES);
const ROUNDS: usize = 500;

/// What the counted loop saw; filled without allocating, checked after.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    pipe_events: [usize; PIPES],
    wake_events: usize,
    stray_events: usize,
    quiet_polls_with_events: usize,
    errors: usize,
}

#[test]
fn poll_does_not_allocate_once_events_exist() {
    for_each_backend(|poll| {
        let mut ends = Vec::new();
        for i in 0..PIPES {
            let (sender, mut receiver) = pipe::new().unwrap();
            poll.registry()
                .register(&mut receiver, Token(i), Interest::READABLE)
                .unwrap();
            ends.push((sender, receiver));
        }
        let waker = Waker::new(poll.registry(), WAKE).unwrap();
        let mut events = Events::with_capacity(16);

        // No warm-up poll: counting starts with the very first one.
        let (tally, allocs, frees) = count(|| {
            let mut tally = Tally::default();
            let tally_events = |events: &Events, tally: &mut Tally| {
                for event in events {
                    match event.token() {
                        Token(i) if i < PIPES && event.is_readable() => tally.pipe_events[i] += 1,
                        WAKE if event.is_readable() => tally.wake_events += 1,
                        _ => tally.stray_events += 1,
                    }
                }
            };
            for round in 0..ROUNDS {
                // Nothing ready, zero timeout.
                if poll.poll(&mut events, Some(Duration::ZERO)).is_err() {
                    tally.errors += 1;
                }
                tally.quiet_polls_with_events += usize::from(!events.is_empty());

                // A byte on one pipe, seen by a poll with a timeout (or none).
                let (sender, receiver) = &mut ends[round % PIPES];
                if sender.write(b"x").is_err() {
                    tally.errors += 1;
                }
                let timeout = [None, Some(Duration::from_secs(10)), Some(Duration::ZERO)]
                    [(round / PIPES) % 3];
                if poll.poll(&mut events, timeout).is_err() {
                    tally.errors += 1;
                }
                tally_events(&events, &mut tally);
                // A short read re-arms the edge.
                let mut buf = [0u8; 16];
                if receiver.read(&mut buf).ok() != Some(1) {
                    tally.errors += 1;
                }

                // A wake, seen by a blocking poll.
                if waker.wake().is_err() {
                    tally.errors += 1;
                }
                if poll
                    .poll(&mut events, Some(Duration::from_secs(10)))
                    .is_err()
                {
                    tally.errors += 1;
                }
                tally_events(&events, &mut tally);

                // Now and then, a real sleep that times out.
                if round % 100 == 0 {
                    if poll
                        .poll(&mut events, Some(Duration::from_millis(1)))
                        .is_err()
                    {
                        tally.errors += 1;
                    }
                    tally.quiet_polls_with_events += usize::from(!events.is_empty());
                }
            }
            tally
        });

        let expected = Tally {
            pipe_events: [ROUNDS / PIPES + 1, ROUNDS / PIPES + 1, ROUNDS / PIPES],
            wake_events: ROUNDS,
            ..Tally::default()
        };
        assert_eq!(
            tally, expected,
            "the counted loop did not see what it should"
        );
        assert_eq!(
            (allocs, frees),
            (0, 0),
            "allocations and frees during {} polls",
            ROUNDS * 3 + ROUNDS / 100
        );
    });
}

/// The reactor allocates nothing per turn once warm: dispatching I/O events
/// to handlers and firing an already-scheduled repeating timer, on every
/// backend. (Delivering signals is counted in `reactor_process.rs`, whose
/// single thread may change dispositions.)
#[test]
fn a_reactor_turn_does_not_allocate_once_warm() {
    use pipeloop::reactor::{EventLoop, Flow, Timer};

    #[derive(Default)]
    struct Seen {
        bytes: usize,
        ticks: usize,
    }

    for &backend in pipeloop::Backend::available() {
        let mut ev: EventLoop<Seen> = EventLoop::with_backend(backend).unwrap();
        let (mut tx, rx) = pipe::new().unwrap();
        ev.insert(rx, Interest::READABLE, |cx, rx: &mut pipe::Receiver, _| {
            let mut buf = [0u8; 64];
            while let Ok(n) = rx.read(&mut buf) {
                cx.data.bytes += n;
                if n < buf.len() {
                    break;
                }
            }
            Ok(Flow::Continue)
        })
        .unwrap();
        ev.insert_timer(Timer::every(Duration::from_micros(200)), |cx| {
            cx.data.ticks += 1;
            Ok(Flow::Continue)
        })
        .unwrap();
        let mut seen = Seen::default();
        // Warm up: the first turns size the loop's buffers.
        for _ in 0..20 {
            tx.write_all(b"x").unwrap();
            ev.run_once(&mut seen, Some(Duration::from_millis(5)))
                .unwrap();
        }
        let before = (seen.bytes, seen.ticks);
        let (_, allocs, frees) = count(|| {
            for _ in 0..200 {
                tx.write_all(b"x").unwrap();
                ev.run_once(&mut seen, Some(Duration::from_millis(5)))
                    .unwrap();
            }
        });
        assert!(
            seen.bytes > before.0 && seen.ticks > before.1,
            "[{backend}] events and ticks during the count"
        );
        assert_eq!(
            (allocs, frees),
            (0, 0),
            "[{backend}] allocations in 200 turns"
        );
    }
}
