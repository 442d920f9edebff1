//! Threads and time: changes made while another thread is blocked in
//! `poll`, wakers, small `Events` buffers, and timeouts. Every scenario runs
//! on every backend.

mod util;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use pipeloop::pipe::{self, Receiver, Sender};
use pipeloop::{Events, Interest, Poll, Registry, Token, Waker};
use util::{
    Expect, PATIENCE, Poller, drain, expect_events, expect_no_event_for, expect_no_events,
    for_each_backend, tokens,
};

const WAKE: usize = 50;
const WAKE2: usize = 51;

/// Compile-time: the types the docs say can cross threads.
#[test]
fn send_and_sync_where_promised() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}

    assert_send::<Poll>();
    assert_send::<Events>();
    assert_send::<Sender>();
    assert_send::<Receiver>();
    assert_send_sync::<Registry>();
    assert_send_sync::<Waker>();
    assert_send_sync::<Token>();
    assert_send_sync::<Interest>();
}

/// The main thread blocks in `poll`; another thread registers a receiver
/// whose pipe already holds bytes. That blocked poll must return it.
#[test]
fn register_from_another_thread_wakes_a_blocked_poll() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipe::new().unwrap();
        sender.write_all(b"already here").unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let poller = Poller::current();
        let mut events = Events::with_capacity(8);

        let receiver = thread::scope(|s| {
            let other = s.spawn(move || {
                poller.wait_until_blocked();
                registry
                    .register(&mut receiver, Token(1), Interest::READABLE)
                    .unwrap();
                receiver
            });
            poll.poll(&mut events, Some(PATIENCE)).unwrap();
            other.join().unwrap()
        });
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.token().0, e.is_readable()))
            .collect();
        assert_eq!(got, [(1, true)]);
        assert_eq!(drain(&receiver), b"already here");
    });
}

/// A sender whose oneshot registration was used up is armed again, under a
/// new token, while the poll is blocked.
#[test]
fn reregister_from_another_thread_takes_effect_during_a_blocked_poll() {
    for_each_backend(|poll| {
        let (mut sender, _receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(1), Interest::WRITABLE.oneshot())
            .unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let poller = Poller::current();
        let mut events = Events::with_capacity(8);
        expect_events(poll, &mut events, &[Expect::writable(1)]);
        expect_no_events(poll, &mut events);

        let _sender = thread::scope(|s| {
            let other = s.spawn(move || {
                poller.wait_until_blocked();
                registry
                    .reregister(&mut sender, Token(2), Interest::WRITABLE)
                    .unwrap();
                sender
            });
            poll.poll(&mut events, Some(PATIENCE)).unwrap();
            other.join().unwrap()
        });
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.token().0, e.is_writable()))
            .collect();
        assert_eq!(got, [(2, true)]);
    });
}

/// A oneshot that already fired is re-armed from another thread while the
/// poll is blocked; the bytes waiting are reported at once.
#[test]
fn oneshot_rearmed_from_another_thread_reports_waiting_bytes() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) =
            util::registered_pipe(poll, 1, Interest::READABLE.oneshot());
        let mut events = Events::with_capacity(8);
        sender.write_all(b"x").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(1)]);

        let registry = poll.registry().try_clone().unwrap();
        let poller = Poller::current();
        let _receiver = thread::scope(|s| {
            let other = s.spawn(move || {
                poller.wait_until_blocked();
                registry
                    .reregister(&mut receiver, Token(3), Interest::READABLE.oneshot())
                    .unwrap();
                receiver
            });
            poll.poll(&mut events, Some(PATIENCE)).unwrap();
            other.join().unwrap()
        });
        assert_eq!(tokens(&events), [3]);
    });
}

/// Edge mode across threads: the poll that reported readable blocks again;
/// another thread drains the pipe (re-arming it) and then writes. The
/// blocked poll must see that write: no lost wakeup between re-arm and wait.
#[test]
fn edge_rearm_from_another_thread_reaches_a_blocked_poll() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = util::registered_pipe(poll, 1, Interest::READABLE);
        let mut events = Events::with_capacity(8);
        let poller = Poller::current();

        for round in 0..5u8 {
            sender.write_all(&[round; 3]).unwrap();
            expect_events(poll, &mut events, &[Expect::readable(1)]);
            thread::scope(|s| {
                let (sender, receiver) = (&sender, &receiver);
                let other = s.spawn(move || {
                    poller.wait_until_blocked();
                    assert_eq!(drain(receiver), [round; 3]);
                    let mut sender = sender;
                    sender.write_all(b"next").unwrap();
                });
                poll.poll(&mut events, Some(PATIENCE)).unwrap();
                other.join().unwrap();
            });
            assert_eq!(tokens(&events), [1], "round {round}");
            assert_eq!(drain(&receiver), b"next");
        }
    });
}

#[test]
fn registry_try_clone_works_from_another_thread() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipe::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let (sender_back, receiver_back) = thread::spawn(move || {
            registry
                .register(&mut sender, Token(1), Interest::WRITABLE)
                .unwrap();
            registry
                .register(&mut receiver, Token(2), Interest::READABLE)
                .unwrap();
            (sender, receiver)
        })
        .join()
        .unwrap();
        let (mut sender, mut receiver) = (sender_back, receiver_back);
        let mut events = Events::with_capacity(8);
        expect_events(poll, &mut events, &[Expect::writable(1)]);
        sender.write_all(b"cross-thread").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(2)]);
        assert_eq!(drain(&receiver), b"cross-thread");

        // Deregistering from another thread holds too.
        let registry = poll.registry().try_clone().unwrap();
        let mut receiver = thread::spawn(move || {
            registry.deregister(&mut receiver).unwrap();
            receiver
        })
        .join()
        .unwrap();
        sender.write_all(b"unseen").unwrap();
        expect_no_event_for(poll, &mut events, 2);
        assert_eq!(drain(&mut receiver), b"unseen");
    });
}

/// Runs `scenario` with `Waker::new` and, on Linux, with the pipe waker too.
fn for_each_waker(scenario: impl Fn(&mut Poll, &dyn Fn(&Registry, Token) -> Waker)) {
    let plain = |r: &Registry, t: Token| Waker::new(r, t).unwrap();
    for_each_backend(|poll| scenario(poll, &plain));
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let piped = |r: &Registry, t: Token| Waker::with_pipe(r, t).unwrap();
        for_each_backend(|poll| scenario(poll, &piped));
    }
}

#[test]
fn waker_woken_before_polling_is_reported() {
    for_each_waker(|poll, make| {
        let waker = make(poll.registry(), Token(WAKE));
        let mut events = Events::with_capacity(8);
        expect_no_events(poll, &mut events);

        waker.wake().unwrap();
        let seen = expect_events(poll, &mut events, &[Expect::readable(WAKE)]);
        assert_eq!(seen.len(), 1, "{seen:?}");
        expect_no_events(poll, &mut events);

        // Nothing needs to be read: the waker stays armed.
        for _ in 0..3 {
            waker.wake().unwrap();
            expect_events(poll, &mut events, &[Expect::readable(WAKE)]);
        }
    });
}

#[test]
fn waker_woken_from_another_thread_wakes_a_blocked_poll() {
    for_each_waker(|poll, make| {
        let waker = make(poll.registry(), Token(WAKE));
        let poller = Poller::current();
        let mut events = Events::with_capacity(8);

        for _ in 0..3 {
            let started = Instant::now();
            thread::scope(|s| {
                let other = s.spawn(|| {
                    poller.wait_until_blocked();
                    waker.wake().unwrap();
                });
                poll.poll(&mut events, Some(PATIENCE)).unwrap();
                other.join().unwrap();
            });
            // A lost wake shows as the poll sleeping its whole timeout (the
            // event itself may come along when it times out).
            assert!(started.elapsed() < PATIENCE, "the wake was lost");
            let got: Vec<_> = events
                .iter()
                .map(|e| (e.token().0, e.is_readable()))
                .collect();
            assert_eq!(got, [(WAKE, true)]);
        }
    });
}

#[test]
fn two_wakers_on_one_poll_are_both_reported() {
    for_each_waker(|poll, make| {
        let first = make(poll.registry(), Token(WAKE));
        let second = make(poll.registry(), Token(WAKE2));
        let mut events = Events::with_capacity(8);

        first.wake().unwrap();
        second.wake().unwrap();
        expect_events(
            poll,
            &mut events,
            &[Expect::readable(WAKE), Expect::readable(WAKE2)],
        );
        expect_no_events(poll, &mut events);

        // Each one alone reports only its own token.
        second.wake().unwrap();
        let seen = expect_events(poll, &mut events, &[Expect::readable(WAKE2)]);
        assert!(seen.iter().all(|e| e.contains("Token(51)")), "{seen:?}");

        // A waker dropped leaves the other working.
        drop(first);
        second.wake().unwrap();
        expect_events(poll, &mut events, &[Expect::readable(WAKE2)]);
    });
}

/// Wakes coalesce: many wakes before a poll give at least one event and at
/// most one per poll for that token, and nothing is left over afterwards.
#[test]
fn waker_wakes_coalesce() {
    for_each_waker(|poll, make| {
        let waker = make(poll.registry(), Token(WAKE));
        let mut events = Events::with_capacity(8);

        for _ in 0..100 {
            waker.wake().unwrap();
        }
        poll.poll(&mut events, Some(PATIENCE)).unwrap();
        let woken = tokens(&events).iter().filter(|&&t| t == WAKE).count();
        assert_eq!(woken, 1, "{events:?}");
        expect_no_event_for(poll, &mut events, WAKE);
    });
}

/// Many threads wake at once while the poll sleeps. Each round, the poller
/// meets the waking threads at a barrier and then blocks (no zero timeout):
/// each thread wakes once after the barrier, so a round's wakes race with
/// the poller going to sleep, and none of them can have been taken by an
/// earlier poll. The blocked poll must return with the token (a lost wake
/// leaves it asleep until `PATIENCE`), reported at most once per poll.
/// Afterwards, what is left over is taken, nothing more may come, and a
/// wake sent while the poll is blocked must still arrive.
#[test]
fn concurrent_wakes_are_never_lost() {
    const ROUNDS: usize = 300;
    for_each_waker(|poll, make| {
        let waker = make(poll.registry(), Token(WAKE));
        let threads = 4;
        let barrier = Barrier::new(threads + 1);
        let mut events = Events::with_capacity(8);
        let mut failure = None;

        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..ROUNDS {
                        barrier.wait();
                        waker.wake().unwrap();
                    }
                });
            }
            // A failure is kept until the scope ends: the other threads
            // wait at the barrier for every round.
            for round in 0..ROUNDS {
                barrier.wait();
                if failure.is_some() {
                    continue;
                }
                let started = Instant::now();
                poll.poll(&mut events, Some(PATIENCE)).unwrap();
                let woken = tokens(&events).iter().filter(|&&t| t == WAKE).count();
                // A lost wake shows as the poll sleeping its whole timeout
                // (the event itself may come along when it times out).
                if started.elapsed() >= PATIENCE {
                    failure = Some(format!(
                        "round {round}: the wakes were lost, the poll slept"
                    ));
                } else if woken != 1 {
                    failure = Some(format!("round {round}: {woken} wake events: {events:?}"));
                }
            }
        });
        if let Some(failure) = failure {
            panic!("{failure}");
        }
        // Every thread is done. A wake of the last round may still be
        // pending: take it, then nothing more may be reported.
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        expect_no_events(poll, &mut events);
        // So only a new wake, sent while the poll sleeps, can end this one.
        let poller = Poller::current();
        let started = Instant::now();
        thread::scope(|s| {
            s.spawn(|| {
                poller.wait_until_blocked();
                waker.wake().unwrap();
            });
            poll.poll(&mut events, Some(PATIENCE)).unwrap();
        });
        assert!(started.elapsed() < PATIENCE, "the last wake was lost");
        assert_eq!(tokens(&events), [WAKE]);
    });
}

/// The pipe waker fills its pipe after 65,536 unpolled wakes; `wake` then
/// drains it and writes again. The wake must still be reported, and so must
/// the next one.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn pipe_waker_woken_100_000_times_without_polling_still_wakes() {
    for_each_backend(|poll| {
        let waker = Waker::with_pipe(poll.registry(), Token(WAKE)).unwrap();
        let mut events = Events::with_capacity(8);
        for _ in 0..100_000 {
            waker.wake().unwrap();
        }
        expect_events(poll, &mut events, &[Expect::readable(WAKE)]);
        expect_no_event_for(poll, &mut events, WAKE);
        waker.wake().unwrap();
        expect_events(poll, &mut events, &[Expect::readable(WAKE)]);
    });
}

/// Five ready pipes and room for two events: the first poll returns two,
/// the next polls the rest, and every token is seen within three polls.
#[test]
fn events_smaller_than_the_ready_set_deliver_the_rest_next_time() {
    for interest in [Interest::READABLE, Interest::READABLE.level()] {
        for_each_backend(|poll| {
            let mut pipes: Vec<_> = (0..5).map(|_| pipe::new().unwrap()).collect();
            for (i, (sender, receiver)) in pipes.iter_mut().enumerate() {
                sender.write_all(b"ready").unwrap();
                poll.registry()
                    .register(receiver, Token(i), interest)
                    .unwrap();
            }
            let mut events = Events::with_capacity(2);
            let mut seen = HashSet::new();

            poll.poll(&mut events, Some(PATIENCE)).unwrap();
            assert_eq!(events.len(), 2, "{interest:?}: {events:?}");
            seen.extend(tokens(&events));
            for _ in 0..2 {
                poll.poll(&mut events, Some(PATIENCE)).unwrap();
                assert!(events.len() <= 2);
                seen.extend(tokens(&events));
            }
            assert_eq!(seen, (0..5).collect(), "{interest:?}");

            if interest.is_edge() {
                expect_no_events(poll, &mut events);
            }
        });
    }
}

/// A waker and ready fds compete for a one-event buffer: both kinds get
/// through within a few polls.
#[test]
fn events_of_capacity_one_still_deliver_wakers_and_fds() {
    for_each_backend(|poll| {
        let (mut sender, _receiver) = util::registered_pipe(poll, 1, Interest::READABLE);
        let waker = Waker::new(poll.registry(), Token(WAKE)).unwrap();
        let second = Waker::new(poll.registry(), Token(WAKE2)).unwrap();
        sender.write_all(b"fd").unwrap();
        waker.wake().unwrap();
        second.wake().unwrap();

        let mut events = Events::with_capacity(1);
        let mut seen = Vec::new();
        for _ in 0..3 {
            poll.poll(&mut events, Some(PATIENCE)).unwrap();
            assert_eq!(events.len(), 1);
            seen.extend(tokens(&events));
        }
        seen.sort_unstable();
        assert_eq!(seen, [1, WAKE, WAKE2]);
        expect_no_events(poll, &mut events);
    });
}

/// Regression (poll(2)): wakers were always delivered first, from the
/// first one, so with a small `Events` a waker woken before every poll
/// starved every fd and every later waker. Here one is woken before each of
/// a few polls into a one-event buffer: the ready fd and the other waker
/// must get through too.
#[test]
fn a_waker_woken_before_every_poll_starves_neither_fds_nor_other_wakers() {
    for_each_backend(|poll| {
        let (mut sender, _receiver) = util::registered_pipe(poll, 1, Interest::READABLE.level());
        let busy = Waker::new(poll.registry(), Token(WAKE)).unwrap();
        let other = Waker::new(poll.registry(), Token(WAKE2)).unwrap();
        sender.write_all(b"ready").unwrap();
        other.wake().unwrap();

        let mut events = Events::with_capacity(1);
        let mut seen = HashSet::new();
        for _ in 0..6 {
            busy.wake().unwrap();
            poll.poll(&mut events, Some(PATIENCE)).unwrap();
            seen.extend(tokens(&events));
        }
        assert!(seen.contains(&1), "the fd starved: {seen:?}");
        assert!(seen.contains(&WAKE2), "the other waker starved: {seen:?}");
    });
}

#[test]
fn zero_timeout_returns_ready_events() {
    for_each_backend(|poll| {
        let (mut sender, _receiver) = util::registered_pipe(poll, 1, Interest::READABLE);
        let waker = Waker::new(poll.registry(), Token(WAKE)).unwrap();
        let mut events = Events::with_capacity(8);

        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty(), "{events:?}");

        sender.write_all(b"now").unwrap();
        waker.wake().unwrap();
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        let mut got = tokens(&events);
        got.sort_unstable();
        assert_eq!(got, [1, WAKE]);
    });
}

/// Never early: a poll that times out has waited at least its timeout,
/// including one under a millisecond (which must sleep, not return at 0).
#[test]
fn timed_out_poll_never_returns_early() {
    for_each_backend(|poll| {
        let (_sender, mut receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(1), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);
        for timeout in [
            Duration::from_millis(30),
            Duration::from_micros(200),
            Duration::from_micros(1),
            Duration::from_nanos(1_500_000),
        ] {
            let started = Instant::now();
            poll.poll(&mut events, Some(timeout)).unwrap();
            let elapsed = started.elapsed();
            assert!(events.is_empty(), "{events:?}");
            assert!(
                elapsed >= timeout,
                "{timeout:?} timeout returned after {elapsed:?}"
            );
        }
    });
}

/// A sub-millisecond timeout sleeps instead of spinning: a wait rounded
/// down to 0 would still end after its timeout (each backend waits again
/// until the deadline), so the test counts instead of timing: a poll that
/// sleeps is a voluntary context switch of this thread, a spin of zero
/// timeouts is none.
#[cfg(target_os = "linux")]
#[test]
fn a_sub_millisecond_timeout_sleeps_instead_of_spinning() {
    fn voluntary_switches() -> libc::c_long {
        // SAFETY: all-zero is a valid rusage, which getrusage fills.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid rusage to write.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
        usage.ru_nvcsw
    }
    for_each_backend(|poll| {
        let (_sender, _receiver) = util::registered_pipe(poll, 1, Interest::READABLE);
        let mut events = Events::with_capacity(8);
        for timeout in [Duration::from_micros(200), Duration::from_nanos(1_500_000)] {
            let before = voluntary_switches();
            for _ in 0..20 {
                poll.poll(&mut events, Some(timeout)).unwrap();
                assert!(events.is_empty(), "{events:?}");
            }
            // Each sleep is one; a few may be lost to a timer that expired
            // before the thread got to sleep, never all of them.
            let slept = voluntary_switches() - before;
            assert!(slept >= 1, "20 polls of {timeout:?} never slept: a spin");
        }
    });
}

#[test]
fn events_of_capacity_zero_is_invalid_input() {
    for_each_backend(|poll| {
        let mut events = Events::with_capacity(0);
        let err = poll.poll(&mut events, Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    });
}

/// A waker shared through an `Arc` with a thread that outlives many polls.
#[test]
fn waker_in_an_arc_wakes_from_a_long_lived_thread() {
    for_each_backend(|poll| {
        let waker = Arc::new(Waker::new(poll.registry(), Token(WAKE)).unwrap());
        let (go_tx, go_rx) = std::sync::mpsc::channel::<bool>();
        let remote = Arc::clone(&waker);
        let handle = thread::spawn(move || {
            while go_rx.recv().unwrap() {
                remote.wake().unwrap();
            }
        });
        let mut events = Events::with_capacity(8);
        for _ in 0..20 {
            go_tx.send(true).unwrap();
            expect_events(poll, &mut events, &[Expect::readable(WAKE)]);
        }
        go_tx.send(false).unwrap();
        handle.join().unwrap();
    });
}

/// Regression: on poll(2), a change made while the poller held the table
/// counted itself out only after releasing the lock, so its notification
/// could land before the poller parked; the poller then waited for it with
/// no deadline, for good. Changer threads reregister in a tight loop
/// (alternating edge and level) while the poller polls with 20 ms timeouts:
/// every poll must come back. The poller runs on its own thread so that a
/// hang is reported as a failure instead of hanging the suite.
///
/// The timeout must also hold while the table keeps changing; how closely is
/// a matter for measurement (run with `--nocapture` to see the slowest
/// poll), so the bound asserted here is only a generous one.
#[test]
fn polls_keep_returning_while_other_threads_reregister() {
    for changers in [1, 4] {
        for &backend in pipeloop::Backend::available() {
            let mut took = poll_while_reregistering(backend, changers, Duration::from_millis(1500));
            took.sort_unstable();
            let (median, slowest) = (took[took.len() / 2], took[took.len() - 1]);
            eprintln!(
                "[{backend}, {changers} changers] {} polls of 20 ms: median {median:?}, slowest {slowest:?}",
                took.len()
            );
            assert!(
                slowest < Duration::from_secs(2),
                "[{backend}] a 20 ms poll took {slowest:?}"
            );
        }
    }
}

/// Polls with a 20 ms timeout for `run`, on a thread of its own, while
/// `changers` threads reregister their receivers; returns how long each poll
/// took. Panics if one poll does not return within `PATIENCE`.
fn poll_while_reregistering(
    backend: pipeloop::Backend,
    changers: usize,
    run: Duration,
) -> Vec<Duration> {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::mpsc;

    let mut poll = Poll::with_backend(backend).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for i in 0..changers {
        let (sender, mut receiver) = pipe::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        registry
            .register(&mut receiver, Token(i), Interest::READABLE)
            .unwrap();
        let stop = Arc::clone(&stop);
        handles.push(thread::spawn(move || {
            let modes = [Interest::READABLE.level(), Interest::READABLE];
            let mut n = 0usize;
            while !stop.load(Relaxed) {
                registry
                    .reregister(&mut receiver, Token(i), modes[n % 2])
                    .unwrap();
                n += 1;
            }
            drop(sender);
        }));
    }
    let (tick, ticks) = mpsc::channel();
    let poller = thread::spawn(move || {
        let mut events = Events::with_capacity(8);
        let started = Instant::now();
        while started.elapsed() < run {
            let began = Instant::now();
            poll.poll(&mut events, Some(Duration::from_millis(20)))
                .unwrap();
            if tick.send(began.elapsed()).is_err() {
                return;
            }
        }
    });
    let mut took = Vec::new();
    loop {
        match ticks.recv_timeout(PATIENCE) {
            Ok(t) => took.push(t),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                stop.store(true, Relaxed);
                panic!(
                    "[{backend}, {changers} changers] poll stopped returning after {} polls",
                    took.len()
                );
            }
        }
    }
    stop.store(true, Relaxed);
    // A poll that failed or panicked ends the ticks early too: say so.
    poller.join().expect("the polling thread panicked");
    for handle in handles {
        handle.join().unwrap();
    }
    assert!(
        !took.is_empty(),
        "[{backend}, {changers} changers] no poll returned"
    );
    took
}
