//! The reactor after a handler's error, `stop` and the before-sleep hook:
//! kept events never reach a later entry in their slot, and `stop` ends
//! only the run it was asked in. (Each of these failed before its fix; they
//! came from a second reader's review.)

mod util;

use std::cell::RefCell;
use std::io::{self, ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use pipeloop::reactor::{EventLoop, Flow, Timer};
use pipeloop::{Backend, Interest, pipe};

fn each_backend<T>(scenario: impl Fn(Backend, EventLoop<T>)) {
    for &backend in Backend::available() {
        let ev = EventLoop::with_backend(backend).unwrap();
        util::naming_backend(backend, || scenario(backend, ev));
    }
}

fn drain(rx: &mut pipe::Receiver) -> io::Result<usize> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match rx.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                total += n;
                if n < buf.len() {
                    return Ok(total);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(total),
            Err(e) => return Err(e),
        }
    }
}

/// Tokens carry no serial, and events kept by `resume_at` outlive their
/// turn: a slot freed between the failing turn and the resumed one (here by
/// `EventLoop::remove` + `insert`, both legal between runs) must not be
/// reused before the kept events are dispatched. Before the fix it was, and
/// the kept event reached the new entry's handler: a hang-up it never had.
#[test]
fn an_event_kept_by_an_error_never_reaches_a_new_entry_in_its_slot() {
    each_backend(|_, mut ev: EventLoop<Vec<String>>| {
        let keys = Rc::new(RefCell::new(Vec::new()));
        let mut senders = Vec::new();
        for i in 0..2 {
            let (tx, rx) = pipe::new().unwrap();
            let key = ev
                .insert(
                    rx,
                    Interest::READABLE,
                    move |cx, rx: &mut pipe::Receiver, _| {
                        drain(rx)?;
                        cx.data.push(format!("old {i}"));
                        Err(io::Error::other("fail"))
                    },
                )
                .unwrap();
            keys.borrow_mut().push(key);
            senders.push(tx);
        }
        // Both readable, the second also hung up.
        senders[0].write_all(b"x").unwrap();
        senders[1].write_all(b"x").unwrap();
        drop(senders.pop());
        let mut seen = Vec::new();
        assert!(
            ev.run_once(&mut seen, Some(Duration::from_secs(5)))
                .is_err()
        );
        assert_eq!(seen.len(), 1, "one handler ran: {seen:?}");
        // The one that has not run yet: its event is kept for the next turn.
        let ran: usize = seen[0].strip_prefix("old ").unwrap().parse().unwrap();
        let waiting = keys.borrow()[1 - ran];
        assert!(ev.remove(waiting));
        let (_new_tx, new_rx) = pipe::new().unwrap(); // its writer stays open
        let new_key = ev
            .insert(
                new_rx,
                Interest::READABLE,
                |cx, _: &mut pipe::Receiver, event| {
                    cx.data.push(format!("new: {event:?}"));
                    Ok(Flow::Continue)
                },
            )
            .unwrap();
        assert_ne!(new_key, waiting);
        seen.clear();
        let _ = ev.run_once(&mut seen, Some(Duration::from_millis(50)));
        assert!(
            seen.iter().all(|s| !s.starts_with("new")),
            "a removed entry's event reached the entry that reused its slot: {seen:?}"
        );
    });
}

/// The same without any call between runs: a handler removes a source whose
/// event is still to come and fails; in the resumed turn a handler inserts
/// a source. Before the fix the quarantine ended with the failing turn, so
/// the new source took the freed slot and got the removed source's event.
#[test]
fn a_slot_freed_by_the_failing_turn_is_not_reused_by_the_resumed_one() {
    let claims = std::cell::Cell::new(0);
    each_backend(|_, mut ev: EventLoop<Vec<String>>| {
        // Sources 0, 1, 2 written in that order: a batch is dispatched in
        // that order on every backend here (checked below).
        let keys = Rc::new(RefCell::new(Vec::new()));
        let mut senders = Vec::new();
        for i in 0..3usize {
            let (tx, rx) = pipe::new().unwrap();
            let keys2 = Rc::clone(&keys);
            let key = ev
                .insert(
                    rx,
                    Interest::READABLE,
                    move |cx, rx: &mut pipe::Receiver, _| {
                        drain(rx)?;
                        cx.data.push(format!("old {i}"));
                        match i {
                            0 => {
                                let third = keys2.borrow()[2];
                                assert!(cx.remove(third));
                                Err(io::Error::other("first fails"))
                            }
                            1 => {
                                let (tx, rx) = pipe::new().unwrap();
                                std::mem::forget(tx); // the new source's writer stays open
                                cx.insert(
                                    rx,
                                    Interest::READABLE,
                                    |cx, _: &mut pipe::Receiver, event| {
                                        cx.data.push(format!("new: {event:?}"));
                                        Ok(Flow::Continue)
                                    },
                                )?;
                                Ok(Flow::Continue)
                            }
                            _ => Ok(Flow::Continue),
                        }
                    },
                )
                .unwrap();
            keys.borrow_mut().push(key);
            senders.push(tx);
        }
        for tx in &mut senders {
            tx.write_all(b"x").unwrap();
        }
        let mut seen = Vec::new();
        assert!(
            ev.run_once(&mut seen, Some(Duration::from_secs(5)))
                .is_err()
        );
        if seen != ["old 0"] {
            return; // this backend dispatched in another order: no claim
        }
        claims.set(claims.get() + 1);
        ev.run_once(&mut seen, Some(Duration::from_millis(50)))
            .unwrap();
        assert_eq!(seen[1], "old 1");
        assert!(
            seen.iter().all(|s| !s.starts_with("new")),
            "the removed source's event reached the source inserted in its slot: {seen:?}"
        );
    });
    assert!(
        claims.get() > 0,
        "no backend dispatched in the order needed"
    );
}

/// A `cx.stop()` under `run_once` is for that turn only. Before the fix only
/// `run` cleared it, so every later `run_once` ended after its first event
/// and skipped the timers: a due timer starved while I/O kept coming.
#[test]
fn a_stop_under_run_once_does_not_starve_later_turns() {
    each_backend(|_, mut ev: EventLoop<(u32, u32)>| {
        let (mut tx, rx) = pipe::new().unwrap();
        ev.insert(rx, Interest::READABLE, |cx, rx: &mut pipe::Receiver, _| {
            drain(rx)?;
            cx.data.0 += 1;
            if cx.data.0 == 1 {
                cx.stop(); // e.g. a handler written for `run`
            }
            Ok(Flow::Continue)
        })
        .unwrap();
        tx.write_all(b"x").unwrap();
        let mut data = (0, 0);
        ev.run_once(&mut data, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(data.0, 1);
        ev.insert_timer(Timer::after(Duration::ZERO), |cx| {
            cx.data.1 += 1;
            Ok(Flow::Continue)
        })
        .unwrap();
        for _ in 0..5 {
            tx.write_all(b"x").unwrap();
            ev.run_once(&mut data, Some(Duration::from_secs(5)))
                .unwrap();
        }
        assert_eq!(data.0, 6);
        assert_eq!(
            data.1, 1,
            "a due timer never fired in 5 turns after a stale stop"
        );
    });
}

/// A `cx.stop()` from the before-sleep hook, which runs after `run` checked
/// `stop`, ends `run` without a poll. Before the fix the poll that followed
/// blocked regardless, and the stop was seen only after the next event or
/// timer.
#[test]
fn a_stop_from_before_sleep_ends_run_without_sleeping() {
    // (hooks run, whether the timer fired)
    each_backend(|_, mut ev: EventLoop<(u32, bool)>| {
        // What a poll after the stop would sleep until; a timer rather
        // than a bound on the wall clock, so that a slow machine cannot
        // fail the test.
        ev.insert_timer(Timer::after(Duration::from_secs(5)), |cx| {
            cx.data.1 = true;
            Ok(Flow::Continue)
        })
        .unwrap();
        ev.before_sleep(|cx| {
            cx.data.0 += 1;
            cx.stop();
            Ok(())
        });
        let mut seen = (0, false);
        ev.run(&mut seen).unwrap();
        assert_eq!(seen, (1, false), "run slept after the hook stopped it");
    });
}
