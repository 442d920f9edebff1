//! Promises the docs make that no other test held the code to, each checked
//! on every backend this host has, each written so that breaking the
//! promise makes it fail (issue 11, section 3):
//!
//! - a registration made from another thread while a poll is blocked takes
//!   effect in that same poll: "the poller never goes back to sleep on the
//!   old table while a change is pending" (docs/poll-backend.md);
//! - a source deregistered, or its end dropped, from another thread while a
//!   poll is blocked: "no event is reported for it afterwards";
//! - "a sub-millisecond timeout sleeps instead of spinning" (`Poll::poll`).
//!
//! The signal handler's promise, "errno is saved and restored", changes a
//! disposition, so it lives in its own binary: tests/signal_errno.rs.

mod util;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use pipeloop::pipe;
use pipeloop::{Events, Interest, Poll, Token, Waker};
use util::{PATIENCE, Poller, QUIET, for_each_backend, tokens};

const PIPE: Token = Token(1);
const WAKER: Token = Token(9);

/// How many times each cross-thread scenario runs per backend: the broken
/// hand-off it guards against loses a race, which one round might not run.
const ROUNDS: usize = 5;

/// docs/poll-backend.md: a changer that finds the poller asleep takes a
/// ticket and wakes it, and the poller "never goes back to sleep on the old
/// table while a change it was woken for is pending". So a receiver that is
/// already readable, registered from another thread while this one is
/// blocked in a long poll, is reported by that same poll. Were the poller to
/// take the table back first, it would sleep out the whole `PATIENCE` on
/// the old table and return with nothing.
#[test]
fn a_registration_made_while_a_poll_is_blocked_is_reported_by_that_poll() {
    for_each_backend(|poll| {
        for round in 0..ROUNDS {
            let registry = poll.registry().try_clone().expect("Registry::try_clone");
            let (mut sender, mut receiver) = pipe::new().expect("pipe::new");
            sender.write_all(b"x").expect("write");
            let poller = Poller::current();
            let mut events = Events::with_capacity(8);
            thread::scope(|s| {
                let changer = s.spawn(move || {
                    poller.wait_until_blocked();
                    registry
                        .register(&mut receiver, PIPE, Interest::READABLE)
                        .expect("register while the poll is blocked");
                    // Kept registered until the poll has been checked.
                    receiver
                });
                let started = Instant::now();
                poll.poll(&mut events, Some(PATIENCE)).expect("poll");
                let took = started.elapsed();
                let receiver = changer.join().expect("the changer panicked");
                assert!(
                    events.iter().any(|e| e.token() == PIPE && e.is_readable()),
                    "round {round}: the blocked poll returned after {took:?} without the \
                     receiver registered meanwhile; got {:?}",
                    tokens(&events)
                );
                drop(receiver);
            });
        }
    });
}

/// Which way the registration ends in `no_event_after_the_registration_ends`.
#[derive(Clone, Copy, Debug)]
enum End {
    Deregister,
    /// Drop the registered receiver while a clone keeps the pipe open (so
    /// on epoll the kernel would keep the registration without pipeloop's
    /// `EPOLL_CTL_DEL`), then open a new pipe, which most likely reuses the
    /// fd number (so on poll(2) a leftover entry would watch it).
    Drop,
}

/// `Registry`'s docs: a change made while another thread is blocked in
/// `Poll::poll` takes effect during that wait; a deregistered source (or a
/// dropped pipe end) is then never reported again. The receiver is
/// level-triggered, so if its registration outlived the change, the byte
/// written after it would be reported by the blocked poll or the next one.
/// A waker ends the blocked poll, after the write.
fn no_event_after_the_registration_ends(poll: &mut Poll, how: End) {
    for round in 0..ROUNDS {
        let registry = poll.registry().try_clone().expect("Registry::try_clone");
        let waker = Waker::new(poll.registry(), WAKER).expect("Waker::new");
        let (mut sender, mut receiver) = pipe::new().expect("pipe::new");
        let keep_open = receiver.try_clone().expect("Receiver::try_clone");
        poll.registry()
            .register(&mut receiver, PIPE, Interest::READABLE.level())
            .expect("register");
        let poller = Poller::current();
        let mut events = Events::with_capacity(8);
        // Borrowed, not moved: a waker dropped before the poll sees its
        // wake may lose it.
        let waker = &waker;
        let reused = thread::scope(|s| {
            let changer = s.spawn(move || {
                poller.wait_until_blocked();
                let reused = match how {
                    End::Deregister => {
                        registry.deregister(&mut receiver).expect("deregister");
                        None
                    }
                    End::Drop => {
                        drop(receiver);
                        // Most likely takes the dropped end's fd number: a
                        // registration that outlived the end would now
                        // watch this pipe, which is made readable too.
                        let (mut sender, receiver) = pipe::new().expect("pipe::new");
                        sender.write_all(b"x").expect("write");
                        Some((sender, receiver))
                    }
                };
                sender.write_all(b"x").expect("write");
                waker.wake().expect("wake");
                reused
            });
            poll.poll(&mut events, Some(PATIENCE)).expect("poll");
            changer.join().expect("the changer panicked")
        });
        let first = tokens(&events);
        assert!(
            first.contains(&WAKER.0) && !first.contains(&PIPE.0),
            "round {round}, {how:?}: the blocked poll reported {first:?}; \
             wanted the waker and not the pipe"
        );
        for _ in 0..2 {
            poll.poll(&mut events, Some(QUIET)).expect("poll");
            let later = tokens(&events);
            assert!(
                !later.contains(&PIPE.0),
                "round {round}, {how:?}: Token({}) reported after its registration \
                 ended: {later:?}",
                PIPE.0
            );
        }
        drop((keep_open, reused));
    }
}

#[test]
fn a_source_deregistered_while_a_poll_is_blocked_is_never_reported() {
    for_each_backend(|poll| no_event_after_the_registration_ends(poll, End::Deregister));
}

#[test]
fn a_pipe_end_dropped_while_a_poll_is_blocked_is_never_reported() {
    for_each_backend(|poll| no_event_after_the_registration_ends(poll, End::Drop));
}

/// This thread's CPU time (user and system).
fn thread_cpu_time() -> Duration {
    // SAFETY: all-zero is a valid timespec, which clock_gettime fills.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// How many times this thread has given up the CPU by itself (blocked,
/// slept), as opposed to being preempted: a thread that spins never does.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn voluntary_switches() -> Option<i64> {
    // SAFETY: all-zero is a valid rusage, which getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    Some(usage.ru_nvcsw as i64)
}

/// Elsewhere only the CPU time is checked.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn voluntary_switches() -> Option<i64> {
    None
}

/// `Poll::poll`: "a sub-millisecond timeout sleeps instead of spinning".
/// tests/timeouts.rs checks that such a poll never returns early, which a
/// loop of zero-timeout waits until the deadline also passes. Here the
/// thread must really sleep: across `POLLS` polls of 0.3 ms, it gives up
/// the CPU by itself at least once for every other poll (Linux, where the
/// count is per thread), and spends less than half of the time asked for on
/// the CPU. Neither depends on how loaded the machine is: a sleeping poll
/// costs microseconds of CPU; a spinning one neither blocks nor sleeps,
/// and burns the CPU whenever it runs.
#[test]
fn a_sub_millisecond_timeout_sleeps_instead_of_spinning() {
    const TIMEOUT: Duration = Duration::from_micros(300);
    const POLLS: u32 = 200;
    for_each_backend(|poll| {
        // An empty registered pipe: the waits have something to watch.
        let (_sender, mut receiver) = pipe::new().expect("pipe::new");
        poll.registry()
            .register(&mut receiver, PIPE, Interest::READABLE)
            .expect("register");
        let mut events = Events::with_capacity(8);
        let switches = voluntary_switches();
        let cpu = thread_cpu_time();
        let started = Instant::now();
        for _ in 0..POLLS {
            poll.poll(&mut events, Some(TIMEOUT)).expect("poll");
            assert!(events.is_empty(), "{:?}", tokens(&events));
        }
        let elapsed = started.elapsed();
        let cpu = thread_cpu_time() - cpu;
        let asked = TIMEOUT * POLLS;
        assert!(
            elapsed >= asked,
            "{POLLS} polls of {TIMEOUT:?} returned after {elapsed:?} in all"
        );
        if let (Some(before), Some(after)) = (switches, voluntary_switches()) {
            let slept = after - before;
            assert!(
                slept >= i64::from(POLLS / 2),
                "{POLLS} polls of {TIMEOUT:?} gave up the CPU only {slept} times \
                 (CPU time {cpu:?}, elapsed {elapsed:?}): they spun"
            );
        }
        assert!(
            cpu < asked / 2,
            "{POLLS} polls of {TIMEOUT:?} used {cpu:?} of CPU in {elapsed:?}: they spun"
        );
        poll.registry()
            .deregister(&mut receiver)
            .expect("deregister");
    });
}
