//! The reactor (`pipeloop::reactor`) on every backend of this machine:
//! dispatch to the right handler, stale keys and events, handlers that change
//! the loop while it dispatches, timers, remote work, errors, and when `run`
//! returns. Signals and children change process-wide state and are tested in
//! `reactor_process.rs`, a single-threaded binary.

mod util;

use std::io::{self, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use pipeloop::reactor::{Cx, EventLoop, Flow, Key, Timer};
use pipeloop::{Backend, Interest, pipe};
use util::PATIENCE;

/// Runs `scenario` on a fresh loop of every backend, naming the backend in
/// a failure.
fn each_backend<T>(scenario: impl Fn(EventLoop<T>)) {
    for &backend in Backend::available() {
        let ev = EventLoop::with_backend(backend).unwrap();
        util::naming_backend(backend, || scenario(ev));
    }
}

/// Reads `rx` until it is used up; returns the bytes.
fn read_all(rx: &mut pipe::Receiver) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rx.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if n < buf.len() {
                    return Ok(out);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// Turns until `done` holds, failing after `PATIENCE`.
fn turn_until<T>(ev: &mut EventLoop<T>, data: &mut T, done: impl Fn(&T) -> bool) {
    turn_until_with(ev, data, Duration::from_millis(100), done);
}

/// The same, with `timeout` for each turn.
fn turn_until_with<T>(
    ev: &mut EventLoop<T>,
    data: &mut T,
    timeout: Duration,
    done: impl Fn(&T) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    while !done(data) {
        assert!(Instant::now() < deadline, "not done after {PATIENCE:?}");
        ev.run_once(data, Some(timeout)).unwrap();
    }
}

#[test]
fn each_event_reaches_its_own_handler_among_hundreds() {
    each_backend(|mut ev: EventLoop<Vec<(usize, Vec<u8>)>>| {
        let mut senders = Vec::new();
        for i in 0..300 {
            let (tx, rx) = pipe::new().unwrap();
            ev.insert(
                rx,
                Interest::READABLE,
                move |cx, rx: &mut pipe::Receiver, _| {
                    cx.data.push((i, read_all(rx)?));
                    Ok(Flow::Continue)
                },
            )
            .unwrap();
            senders.push(tx);
        }
        for i in (0..300).step_by(7) {
            senders[i].write_all(format!("to {i}").as_bytes()).unwrap();
        }
        let mut got = Vec::new();
        turn_until(&mut ev, &mut got, |got| got.len() == 43);
        got.sort();
        for (i, bytes) in got {
            assert_eq!(bytes, format!("to {i}").into_bytes(), "handler {i}");
        }
    });
}

#[test]
fn a_stale_key_names_nothing_and_is_never_a_panic() {
    each_backend(|mut ev: EventLoop<u32>| {
        let (_tx, rx) = pipe::new().unwrap();
        let key = ev
            .insert(rx, Interest::READABLE, |_, _: &mut pipe::Receiver, _| {
                Ok(Flow::Continue)
            })
            .unwrap();
        assert!(ev.remove(key));
        assert!(!ev.remove(key), "removed already");
        // The index is reused, the key stays stale.
        let (_tx2, rx2) = pipe::new().unwrap();
        let newer = ev
            .insert(rx2, Interest::READABLE, |_, _: &mut pipe::Receiver, _| {
                Ok(Flow::Continue)
            })
            .unwrap();
        assert_ne!(key, newer);
        assert!(
            !ev.remove(key),
            "a stale key does not remove the newer entry"
        );
        assert_eq!(ev.len(), 1);
        assert!(ev.remove(newer));
        assert!(ev.is_empty());
    });
}

/// Two sources are ready in one poll. Whichever handler runs first removes
/// the other, whose event was collected in the same batch: that event is not
/// delivered. Then it inserts a new source (into the slot the removed one
/// would free), which gets nothing from the events collected before it
/// existed: its pipe is empty, so its handler must not run.
#[test]
fn removing_and_inserting_during_dispatch_never_misdelivers() {
    type State = (Vec<Key>, Vec<&'static str>, Vec<pipe::Sender>);
    each_backend(|mut ev: EventLoop<State>| {
        fn handler(
            name: &'static str,
        ) -> impl FnMut(&mut Cx<'_, State>, &mut pipe::Receiver, &pipeloop::Event) -> io::Result<Flow>
        {
            move |cx, rx, _| {
                read_all(rx)?;
                cx.data.1.push(name);
                let own = cx.key().unwrap();
                let others: Vec<Key> = cx.data.0.drain(..).filter(|&k| k != own).collect();
                for other in others {
                    assert!(cx.remove(other));
                    let (tx, rx) = pipe::new()?;
                    cx.data.2.push(tx); // kept open: no hang-up to report
                    cx.insert(rx, Interest::READABLE, |cx, _: &mut pipe::Receiver, _| {
                        cx.data.1.push("inserted");
                        Ok(Flow::Continue)
                    })?;
                }
                Ok(Flow::Continue)
            }
        }
        let (mut tx_a, rx_a) = pipe::new().unwrap();
        let (mut tx_b, rx_b) = pipe::new().unwrap();
        let a = ev.insert(rx_a, Interest::READABLE, handler("a")).unwrap();
        let b = ev.insert(rx_b, Interest::READABLE, handler("b")).unwrap();
        tx_a.write_all(b"a").unwrap();
        tx_b.write_all(b"b").unwrap();
        let mut state = (vec![a, b], Vec::new(), Vec::new());
        ev.run_once(&mut state, Some(PATIENCE)).unwrap();
        ev.run_once(&mut state, Some(Duration::from_millis(20)))
            .unwrap();
        let log = state.1;
        assert_eq!(log.len(), 1, "one handler ran, nothing else: {log:?}");
        assert_eq!(ev.len(), 2, "the survivor and the new source");
    });
}

#[test]
fn a_handler_may_remove_itself_and_its_source_is_dropped() {
    each_backend(|mut ev: EventLoop<u32>| {
        let (mut tx, rx) = pipe::new().unwrap();
        ev.insert(rx, Interest::READABLE, |cx, rx: &mut pipe::Receiver, _| {
            read_all(rx)?;
            *cx.data += 1;
            let own = cx.key().unwrap();
            assert!(cx.remove(own));
            Ok(Flow::Continue)
        })
        .unwrap();
        tx.write_all(b"x").unwrap();
        let mut runs = 0;
        // One turn (not `run`, which would never return if the handler
        // were put back into its entry after all).
        ev.run_once(&mut runs, Some(PATIENCE)).unwrap();
        assert_eq!(runs, 1);
        assert!(ev.is_empty());
        ev.run(&mut runs).unwrap(); // nothing left: returns at once
        // The receiver was dropped: the pipe has no reader now.
        let err = tx.write_all(b"y").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    });
}

#[test]
fn flow_remove_deregisters_and_drops_the_source() {
    each_backend(|mut ev: EventLoop<u32>| {
        let (mut tx, rx) = pipe::new().unwrap();
        ev.insert(rx, Interest::READABLE, |cx, rx: &mut pipe::Receiver, _| {
            read_all(rx)?;
            *cx.data += 1;
            Ok(Flow::Remove)
        })
        .unwrap();
        tx.write_all(b"x").unwrap();
        let mut runs = 0;
        ev.run_once(&mut runs, Some(PATIENCE)).unwrap();
        assert_eq!((runs, ev.len()), (1, 0));
        ev.run(&mut runs).unwrap(); // nothing left: returns at once
        assert_eq!(
            tx.write_all(b"y").unwrap_err().kind(),
            ErrorKind::BrokenPipe
        );
    });
}

/// `cx.now()` is one instant per turn: the sources' handlers and the timer
/// that fire in one turn all get the same, which is not before the turn
/// began, and the due timer's deadline is not after it.
#[test]
fn every_handler_and_timer_of_a_turn_gets_the_same_now() {
    each_backend(|mut ev: EventLoop<Vec<(&'static str, Instant)>>| {
        let mut senders = Vec::new();
        for name in ["a", "b"] {
            let (mut tx, rx) = pipe::new().unwrap();
            ev.insert(
                rx,
                Interest::READABLE,
                move |cx, rx: &mut pipe::Receiver, _| {
                    read_all(rx)?;
                    cx.data.push((name, cx.now()));
                    // Time passes within the turn; its time does not.
                    std::thread::sleep(Duration::from_millis(2));
                    Ok(Flow::Continue)
                },
            )
            .unwrap();
            tx.write_all(b"x").unwrap();
            senders.push(tx);
        }
        let due = Instant::now();
        ev.insert_timer(Timer::at(due), |cx| {
            cx.data.push(("timer", cx.now()));
            Ok(Flow::Continue)
        })
        .unwrap();
        let mut seen = Vec::new();
        let began = Instant::now();
        ev.run_once(&mut seen, Some(PATIENCE)).unwrap();
        let names: Vec<&str> = seen.iter().map(|&(name, _)| name).collect();
        assert_eq!(names.len(), 3, "one turn ran all three: {names:?}");
        assert_eq!(names[2], "timer", "timers after the events: {names:?}");
        let now = seen[0].1;
        assert!(
            seen.iter().all(|&(_, t)| t == now),
            "one time per turn: {seen:?}"
        );
        assert!(now >= began && now >= due);
    });
}

/// A timer already due when the turn began fires after the events of its
/// poll, and its handler gets a time read after that poll, though no
/// handler asked for one before it and the loop read the clock before the
/// poll (for the timeout).
#[test]
fn a_timers_now_is_read_after_the_poll() {
    each_backend(|mut ev: EventLoop<Vec<(&'static str, Instant)>>| {
        let (mut tx, rx) = pipe::new().unwrap();
        ev.insert(rx, Interest::READABLE, |cx, rx: &mut pipe::Receiver, _| {
            read_all(rx)?;
            cx.data.push(("source", Instant::now()));
            Ok(Flow::Continue)
        })
        .unwrap();
        ev.insert_timer(Timer::at(Instant::now()), |cx| {
            cx.data.push(("timer", cx.now()));
            Ok(Flow::Continue)
        })
        .unwrap();
        tx.write_all(b"x").unwrap();
        let mut seen = Vec::new();
        ev.run_once(&mut seen, Some(PATIENCE)).unwrap();
        let names: Vec<&str> = seen.iter().map(|&(name, _)| name).collect();
        assert_eq!(names, ["source", "timer"]);
        assert!(
            seen[1].1 >= seen[0].1,
            "the timer got a time from before the poll returned"
        );
    });
}

/// What runs before the poll (the before-sleep hook) asks for the time,
/// then the poll sleeps until another thread writes: the handler of that
/// write gets a time read after the poll returned, not the hook's. (The
/// hook's own time is its turn's, not the last turn's: before the clock
/// was read lazily it was the time of the previous turn, or of the loop's
/// creation.)
#[test]
fn the_time_read_before_the_poll_is_not_the_time_after_it() {
    each_backend(|mut ev: EventLoop<Vec<(&'static str, Instant)>>| {
        ev.before_sleep(|cx| {
            cx.data.push(("hook", cx.now()));
            Ok(())
        });
        let (tx, rx) = pipe::new().unwrap();
        ev.insert(rx, Interest::READABLE, |cx, rx: &mut pipe::Receiver, _| {
            read_all(rx)?;
            cx.data.push(("source", cx.now()));
            Ok(Flow::Continue)
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(5)); // the loop is older
        let began = Instant::now();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let wrote = Instant::now();
            (&tx).write_all(b"x").unwrap();
            (wrote, tx)
        });
        let mut seen = Vec::new();
        ev.run_once(&mut seen, Some(PATIENCE)).unwrap();
        let (wrote, _tx) = writer.join().unwrap();
        let names: Vec<&str> = seen.iter().map(|&(name, _)| name).collect();
        assert_eq!(names, ["hook", "source"]);
        assert!(seen[0].1 >= began, "the hook got an earlier turn's time");
        assert!(
            seen[1].1 >= wrote,
            "the handler got a time from before the poll returned"
        );
    });
}

/// A turn whose poll sleeps until a timer's deadline (nothing else to
/// wake it) fires that timer itself: `run_once` does not return with it
/// still pending.
#[test]
fn a_turn_that_sleeps_until_a_timer_fires_it() {
    each_backend(|mut ev: EventLoop<u32>| {
        ev.insert_timer(Timer::after(Duration::from_millis(5)), |cx| {
            *cx.data += 1;
            Ok(Flow::Continue)
        })
        .unwrap();
        let mut fired = 0;
        ev.run_once(&mut fired, None).unwrap();
        assert_eq!(fired, 1);
    });
}

/// A timer that comes due while a turn handles events (here: a handler
/// that takes longer than the timer's delay) fires in that turn if a
/// handler read the time after the poll, and otherwise by the next turn,
/// whose poll does not wait: the deadline has passed.
#[test]
fn a_timer_due_during_the_events_fires_by_the_next_turn_without_waiting() {
    for ask in [false, true] {
        each_backend(|mut ev: EventLoop<Vec<&'static str>>| {
            let (mut tx, rx) = pipe::new().unwrap();
            ev.insert(
                rx,
                Interest::READABLE,
                move |cx, rx: &mut pipe::Receiver, _| {
                    read_all(rx)?;
                    std::thread::sleep(Duration::from_millis(20));
                    if ask {
                        let _ = cx.now();
                    }
                    cx.data.push("source");
                    Ok(Flow::Continue)
                },
            )
            .unwrap();
            let delay = Duration::from_millis(5);
            let inserted = Instant::now();
            ev.insert_timer(Timer::after(delay), move |cx| {
                assert!(cx.now() >= inserted + delay, "fired early");
                cx.data.push("timer");
                Ok(Flow::Continue)
            })
            .unwrap();
            tx.write_all(b"x").unwrap();
            let mut seen = Vec::new();
            ev.run_once(&mut seen, Some(PATIENCE)).unwrap();
            if ask {
                assert_eq!(seen, ["source", "timer"], "the turn knew the time");
            }
            if seen.len() == 2 {
                return; // (firing it in the first turn is right too)
            }
            let began = Instant::now();
            ev.run_once(&mut seen, Some(PATIENCE)).unwrap();
            assert_eq!(seen, ["source", "timer"]);
            assert!(
                began.elapsed() < PATIENCE / 2,
                "the second turn waited for its poll's timeout"
            );
        });
    }
}

#[test]
fn timers_fire_in_deadline_order_ties_in_insertion_order_never_early() {
    each_backend(|mut ev: EventLoop<Vec<(u32, Instant)>>| {
        let start = Instant::now();
        let at = start + Duration::from_millis(30);
        let plan = [
            (1, Timer::at(at)),
            (2, Timer::after(Duration::from_millis(10))),
            (3, Timer::at(at)),
            (4, Timer::at(start)), // due already
            (5, Timer::at(at)),
        ];
        let mut deadlines = Vec::new();
        for (id, timer) in plan {
            deadlines.push(match id {
                2 => start + Duration::from_millis(10),
                4 => start,
                _ => at,
            });
            ev.insert_timer(timer, move |cx| {
                cx.data.push((id, Instant::now()));
                Ok(Flow::Continue)
            })
            .unwrap();
        }
        let mut fired = Vec::new();
        ev.run(&mut fired).unwrap();
        let order: Vec<u32> = fired.iter().map(|&(id, _)| id).collect();
        assert_eq!(order, [4, 2, 1, 3, 5]);
        for &(id, when) in &fired {
            let due = deadlines[id as usize - 1];
            assert!(when >= due, "timer {id} fired {:?} early", due - when);
        }
        assert!(ev.is_empty(), "one-shot timers go once fired");
    });
}

/// Timers a millisecond apart, and a loop that wakes every 200 µs (the
/// caller's timeout): each turn that comes near a deadline compares it with
/// the time, and none fires a timer early, the first due nor the ones due
/// soon after it. The time a timer's handler gets is not before its
/// deadline either.
#[test]
fn a_timer_never_fires_early_however_often_the_loop_wakes() {
    each_backend(|mut ev: EventLoop<Vec<(usize, Instant, Instant)>>| {
        let start = Instant::now() + Duration::from_millis(20);
        let deadlines: Vec<Instant> = (0..5u32)
            .map(|i| start + Duration::from_millis(i.into()))
            .collect();
        for (i, &deadline) in deadlines.iter().enumerate() {
            ev.insert_timer(Timer::at(deadline), move |cx| {
                cx.data.push((i, cx.now(), Instant::now()));
                Ok(Flow::Continue)
            })
            .unwrap();
        }
        let mut fired = Vec::new();
        turn_until_with(&mut ev, &mut fired, Duration::from_micros(200), |f| {
            f.len() == deadlines.len()
        });
        for &(i, now, wall) in &fired {
            assert!(
                now >= deadlines[i] && wall >= deadlines[i],
                "timer {i} fired {:?} early",
                deadlines[i] - now
            );
        }
    });
}

#[test]
fn a_repeating_timer_keeps_its_cadence_and_skips_what_a_stall_missed() {
    each_backend(|mut ev: EventLoop<Vec<Instant>>| {
        let period = Duration::from_millis(20);
        let start = Instant::now();
        ev.insert_timer(Timer::every(period), move |cx| {
            cx.data.push(cx.now());
            if cx.data.len() == 2 {
                // A stall of more than three periods.
                std::thread::sleep(period * 3 + period / 2);
            }
            if cx.data.len() == 5 {
                cx.stop();
            }
            Ok(Flow::Continue)
        })
        .unwrap();
        let mut ticks = Vec::new();
        ev.run(&mut ticks).unwrap();
        // Never early. After the stall the missed periods fire once, not
        // in a burst: the next tick lands on the cadence (maybe soon after,
        // as the phase is kept), and the one after a period later. A burst
        // would fire three ticks back to back.
        assert!(ticks[0] >= start + period);
        let gaps: Vec<Duration> = ticks.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[1] >= period * 3, "the stall: {gaps:?}");
        let quick = gaps[2..].iter().filter(|&&gap| gap < period / 2).count();
        assert!(quick <= 1, "a burst after the stall: {gaps:?}");
        // The phase is kept: every tick is on a multiple of the period from
        // the start, give or take the time it took the loop to wake.
        let last = ticks[4] - start;
        let periods = last.as_nanos() / period.as_nanos();
        assert!(periods >= 5, "{last:?} is at least five periods in");
    });
}

/// What the handlers of `handlers_remove_due_and_deferred_timers_*` see and
/// change.
#[derive(Default)]
struct Removals {
    fired: Vec<&'static str>,
    /// Inserted by `a` while the timers fire, due before `b`: taken out and
    /// deferred to the next pass; removed by `b` meanwhile.
    x: Option<Key>,
    /// Due in the same pass as `a`, after it; removed by `a`.
    c: Option<Key>,
}

#[test]
fn handlers_remove_due_and_deferred_timers_and_those_never_fire() {
    each_backend(|mut ev: EventLoop<Removals>| {
        // Deadlines in the past, a microsecond apart: all due in the first
        // pass, in this order.
        let due = Instant::now();
        let later = |us| due + Duration::from_micros(us);
        std::thread::sleep(Duration::from_millis(1));
        ev.insert_timer(Timer::at(due), move |cx| {
            cx.data.fired.push("a");
            let x = cx.insert_timer(Timer::at(due), |cx| {
                cx.data.fired.push("x");
                Ok(Flow::Continue)
            })?;
            cx.data.x = Some(x);
            let c = cx.data.c.take().unwrap();
            assert!(cx.remove(c), "c is due and has not fired");
            Ok(Flow::Continue)
        })
        .unwrap();
        ev.insert_timer(Timer::at(later(1)), |cx| {
            cx.data.fired.push("b");
            let x = cx.data.x.take().unwrap();
            assert!(cx.remove(x), "x waits for the next pass");
            Ok(Flow::Continue)
        })
        .unwrap();
        let c = ev
            .insert_timer(Timer::at(later(2)), |cx| {
                cx.data.fired.push("c");
                Ok(Flow::Continue)
            })
            .unwrap();
        // A repeating timer that removes itself on its third tick.
        ev.insert_timer(Timer::every(Duration::from_millis(1)), |cx| {
            cx.data.fired.push("d");
            if cx.data.fired.iter().filter(|&&f| f == "d").count() == 3 {
                let me = cx.key().unwrap();
                assert!(cx.remove(me));
            }
            Ok(Flow::Continue)
        })
        .unwrap();
        let mut seen = Removals {
            c: Some(c),
            ..Removals::default()
        };
        ev.run(&mut seen).unwrap(); // until nothing is left
        assert_eq!(seen.fired, ["a", "b", "d", "d", "d"]);
        assert!(ev.is_empty());
    });
}

#[test]
fn a_million_timer_insert_remove_pairs_leave_nothing_behind() {
    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let far = Timer::after(Duration::from_secs(3600));
    // Some live ones, as a loop would have.
    let live: Vec<Key> = (0..100)
        .map(|_| ev.insert_timer(far, |_| Ok(Flow::Continue)).unwrap())
        .collect();
    let start = Instant::now();
    for _ in 0..1_000_000 {
        let key = ev.insert_timer(far, |_| Ok(Flow::Continue)).unwrap();
        assert!(ev.remove(key));
    }
    let took = start.elapsed();
    assert_eq!(ev.len(), 100);
    for key in live {
        assert!(ev.remove(key));
    }
    assert!(ev.is_empty());
    // A generous bound: this is about not slowing down (a scan per insert
    // would take minutes), not a benchmark.
    assert!(took < Duration::from_secs(60), "took {took:?}");
    // And the loop still runs (nothing left: `run` returns at once).
    ev.run(&mut ()).unwrap();
}

#[test]
fn remote_messages_from_8_threads_arrive_once_each_in_order_per_thread() {
    each_backend(|mut ev: EventLoop<Vec<Vec<u32>>>| {
        const THREADS: usize = 8;
        const EACH: u32 = 10_000;
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let remote = ev.remote();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        remote.send(move |cx| cx.data[t].push(i)).unwrap();
                    }
                })
            })
            .collect();
        let mut got = vec![Vec::new(); THREADS];
        // `run` returns once every thread has ended (its remote dropped)
        // and all work ran.
        ev.run(&mut got).unwrap();
        for thread in threads {
            thread.join().unwrap();
        }
        for (t, seen) in got.iter().enumerate() {
            assert_eq!(seen.len(), EACH as usize, "thread {t}");
            assert!(
                seen.iter().copied().eq(0..EACH),
                "thread {t}: out of order or doubled"
            );
        }
    });
}

#[test]
fn sending_to_a_loop_that_is_gone_is_an_error() {
    let ev: EventLoop<()> = EventLoop::new().unwrap();
    let remote = ev.remote();
    drop(ev);
    let err = remote.send(|_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    assert_eq!(remote.wake().unwrap_err().kind(), ErrorKind::NotConnected);
}

#[test]
fn run_returns_when_nothing_is_left_to_wait_for() {
    each_backend(|mut ev: EventLoop<u32>| {
        ev.run(&mut 0).unwrap(); // empty: at once
        ev.insert_timer(Timer::after(Duration::from_millis(5)), |cx| {
            *cx.data += 1;
            Ok(Flow::Continue)
        })
        .unwrap();
        let mut fired = 0;
        ev.run(&mut fired).unwrap(); // the timer, then nothing is left
        assert_eq!(fired, 1);
        // A remote keeps it running: work from it arrives, and once the
        // remote is dropped, `run` returns.
        let remote = ev.remote();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            remote.send(|cx| *cx.data += 10).unwrap();
        });
        ev.run(&mut fired).unwrap();
        sender.join().unwrap();
        assert_eq!(fired, 11);
    });
}

/// What the handlers of a turn that a stop or an error ends record: the
/// sources that ran, and whether the turn's due timer and remote work ran.
#[derive(Default)]
struct Ended {
    sources: Vec<usize>,
    timer: bool,
    remote: bool,
}

/// Inserts a timer that is due at once and queues remote work, each
/// recording in `Ended` that it ran.
fn due_timer_and_remote_work(ev: &mut EventLoop<Ended>) {
    ev.insert_timer(Timer::at(Instant::now()), |cx| {
        cx.data.timer = true;
        Ok(Flow::Continue)
    })
    .unwrap();
    ev.remote().send(|cx| cx.data.remote = true).unwrap();
}

/// A handler's error ends `run_once` after that handler: the turn's other
/// events, its due timer and its remote work wait. The events of the batch
/// not dispatched yet are kept, so the next run delivers them.
#[test]
fn a_handler_error_ends_the_turn_and_loses_no_event() {
    each_backend(|mut ev: EventLoop<Ended>| {
        let mut senders = Vec::new();
        for i in 0..4 {
            let (tx, rx) = pipe::new().unwrap();
            ev.insert(
                rx,
                Interest::READABLE,
                move |cx, rx: &mut pipe::Receiver, _| {
                    read_all(rx)?;
                    cx.data.sources.push(i);
                    if cx.data.sources.len() == 1 {
                        return Err(io::Error::other("the first handler fails"));
                    }
                    Ok(Flow::Continue)
                },
            )
            .unwrap();
            senders.push(tx);
        }
        due_timer_and_remote_work(&mut ev);
        for tx in &mut senders {
            tx.write_all(b"x").unwrap();
        }
        let mut seen = Ended::default();
        let err = ev.run_once(&mut seen, Some(PATIENCE)).unwrap_err();
        assert_eq!(err.to_string(), "the first handler fails");
        assert_eq!(
            seen.sources.len(),
            1,
            "the turn ended after the failing handler"
        );
        assert!(!seen.timer, "the due timer fired after the error");
        assert!(!seen.remote, "remote work ran after the error");
        assert_eq!(ev.len(), 5, "the sources and the timer stay");
        turn_until(&mut ev, &mut seen, |seen| {
            seen.sources.len() >= 4 && seen.timer && seen.remote
        });
        seen.sources.sort();
        assert_eq!(seen.sources, [0, 1, 2, 3], "each edge event delivered once");
    });
}

/// A stop from a source's handler ends `run` once that event is
/// dispatched: the batch's other events are kept, one per run here, and the
/// due timer and remote work wait for a turn that does not stop first.
#[test]
fn stop_returns_after_the_handler_and_keeps_the_rest_for_the_next_run() {
    each_backend(|mut ev: EventLoop<Ended>| {
        let mut senders = Vec::new();
        for i in 0..3 {
            let (tx, rx) = pipe::new().unwrap();
            ev.insert(
                rx,
                Interest::READABLE,
                move |cx, rx: &mut pipe::Receiver, _| {
                    read_all(rx)?;
                    cx.data.sources.push(i);
                    cx.stop();
                    Ok(Flow::Continue)
                },
            )
            .unwrap();
            senders.push(tx);
        }
        due_timer_and_remote_work(&mut ev);
        // A lost event would leave `run` waiting: this ends the wait.
        let guard = ev
            .insert_timer(Timer::after(PATIENCE), |_| {
                panic!("run waited for an event a stop should have kept")
            })
            .unwrap();
        for tx in &mut senders {
            tx.write_all(b"x").unwrap();
        }
        let mut seen = Ended::default();
        for round in 1..=3 {
            ev.run(&mut seen).unwrap();
            assert_eq!(
                seen.sources.len(),
                round,
                "one handler per run: {:?}",
                seen.sources
            );
            assert!(!seen.timer, "round {round}: the due timer fired");
            assert!(!seen.remote, "round {round}: remote work ran");
        }
        ev.run_once(&mut seen, Some(Duration::ZERO)).unwrap();
        assert!(seen.timer && seen.remote, "they ran in the next turn");
        assert!(ev.remove(guard));
    });
}

/// A stop from a timer or from remote work lets the turn finish: the other
/// due timers fire and the other queued work runs, then `run` returns.
#[test]
fn a_stop_from_a_timer_or_remote_work_lets_the_turn_finish() {
    each_backend(|mut ev: EventLoop<Vec<&'static str>>| {
        // Keeps `run` from returning for want of things to wait for.
        let far = ev
            .insert_timer(Timer::after(PATIENCE), |_| Ok(Flow::Continue))
            .unwrap();
        let due = Instant::now();
        for name in ["timer 1", "timer 2"] {
            ev.insert_timer(Timer::at(due), move |cx| {
                cx.data.push(name);
                if name == "timer 1" {
                    cx.stop();
                }
                Ok(Flow::Continue)
            })
            .unwrap();
        }
        let remote = ev.remote();
        remote.send(|cx| cx.data.push("work 1")).unwrap();
        let mut seen = Vec::new();
        ev.run(&mut seen).unwrap();
        assert_eq!(seen, ["timer 1", "timer 2", "work 1"]);

        remote
            .send(|cx| {
                cx.data.push("work 2");
                cx.stop();
            })
            .unwrap();
        remote.send(|cx| cx.data.push("work 3")).unwrap();
        ev.run(&mut seen).unwrap();
        assert_eq!(seen[3..], ["work 2", "work 3"]);
        drop(remote);
        assert!(ev.remove(far));
    });
}

#[test]
fn before_sleep_runs_when_the_loop_is_about_to_block() {
    each_backend(|mut ev: EventLoop<(u32, u32)>| {
        ev.before_sleep(|cx| {
            cx.data.0 += 1;
            Ok(())
        });
        let ticker = ev
            .insert_timer(Timer::every(Duration::from_millis(5)), |cx| {
                cx.data.1 += 1;
                if cx.data.1 == 3 {
                    cx.stop();
                }
                Ok(Flow::Continue)
            })
            .unwrap();
        let mut counts = (0, 0);
        ev.run(&mut counts).unwrap();
        assert!(counts.0 >= 3, "before each sleep: {counts:?}");
        // A zero-timeout turn does not sleep, so the hook does not run.
        let before = counts.0;
        ev.run_once(&mut counts, Some(Duration::ZERO)).unwrap();
        assert_eq!(counts.0, before);
        assert!(ev.remove(ticker));
        // Nor does a turn whose timeout a due timer cut to zero.
        ev.insert_timer(Timer::at(Instant::now()), |_| Ok(Flow::Continue))
            .unwrap();
        ev.run_once(&mut counts, None).unwrap();
        assert_eq!(counts.0, before, "the hook ran with a timer due");
        // Remote work cuts the wait to zero after the hook ran: it runs.
        ev.remote().send(|cx| cx.data.1 += 100).unwrap();
        ev.run_once(&mut counts, Some(PATIENCE)).unwrap();
        assert!(counts.1 >= 100, "the remote work ran: {counts:?}");
        assert_eq!(counts.0, before + 1, "the hook before remote work");
    });
}

#[test]
fn dropping_the_loop_closes_every_fd_it_held() {
    if !util::can_list_fds("dropping_the_loop_closes_every_fd_it_held") {
        return;
    }
    each_backend(|ev: EventLoop<()>| {
        drop(ev); // the backend's own fds, counted apart from this
        let before = util::live_fds();
        let mut ev: EventLoop<()> = EventLoop::new().unwrap();
        let mut senders = Vec::new();
        for _ in 0..10 {
            let (tx, rx) = pipe::new().unwrap();
            ev.insert(rx, Interest::READABLE, |_, _: &mut pipe::Receiver, _| {
                Ok(Flow::Continue)
            })
            .unwrap();
            senders.push(tx);
        }
        ev.insert_timer(Timer::after(PATIENCE), |_| Ok(Flow::Continue))
            .unwrap();
        drop(ev);
        drop(senders);
        let after = util::live_fds();
        assert_eq!(before, after, "fds left open");
    });
}

/// `describe` prints a header and one line per entry: a source with its
/// key, token, fd and interest, a timer with its key, the time to its next
/// deadline and its period. A removed entry is not listed.
#[test]
fn describe_lists_what_the_loop_holds() {
    use std::os::fd::AsRawFd;

    let mut ev: EventLoop<()> = EventLoop::new().unwrap();
    let gone = ev
        .insert_timer(Timer::after(PATIENCE), |_| Ok(Flow::Continue))
        .unwrap();
    let (_tx, rx) = pipe::new().unwrap();
    let fd = rx.as_raw_fd();
    let source = ev
        .insert(
            rx,
            Interest::READABLE.level(),
            |_, _: &mut pipe::Receiver, _| Ok(Flow::Continue),
        )
        .unwrap();
    let timer = ev
        .insert_timer(Timer::every(Duration::from_secs(1)), |_| Ok(Flow::Continue))
        .unwrap();
    assert!(ev.remove(gone));
    let text = ev.describe().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        format!("event loop on {}: 2 entries", ev.backend())
    );
    // The source is in slot 1 (the removed timer had slot 0): token 1 << 2.
    assert_eq!(
        lines[1],
        format!("  {source:?}  source  token 4  fd {fd}  READABLE, level"),
        "{text}"
    );
    let timer_line = format!("  {timer:?}  timer  next in ");
    assert!(
        lines[2].starts_with(&timer_line) && lines[2].ends_with(", every 1s"),
        "{text}"
    );
}

/// The last `Remote` to go wakes the loop: a `run` asleep only because a
/// remote was alive must notice that nothing is left, not sleep on.
#[test]
fn dropping_the_last_remote_wakes_the_loop() {
    each_backend(|mut ev: EventLoop<()>| {
        let remote = ev.remote();
        let copy = remote.clone();
        drop(remote); // not the last one: no wake needed
        let dropper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(copy);
        });
        let start = Instant::now();
        ev.run_once(&mut (), Some(PATIENCE)).unwrap();
        let slept = start.elapsed();
        dropper.join().unwrap();
        assert!(
            slept < PATIENCE / 2,
            "slept {slept:?}: the drop did not wake the loop"
        );
        ev.run(&mut ()).unwrap(); // nothing left: returns at once
    });
}
