//! The guide, chapter 5: waking a loop, and signals as events
//! (docs/guide/05-waking.md).
//!
//! ```text
//! cargo run --example guide_05_waking
//! ```
//!
//! Four short scenes on one `Poll`:
//!
//! 1. another thread queues three messages and calls `Waker::wake` after
//!    each, before the loop polls: one poll, one event, three messages;
//! 2. the loop is asleep in `poll` with no timeout; a thread's wake ends
//!    the sleep;
//! 3. a signal raised four times (two kinds) comes out of
//!    `Signals::pending` once per kind: signals coalesce;
//! 4. a signal sent to the process while the loop sleeps wakes it, through
//!    the self-pipe; the wait may also end with `EINTR`.

use std::io::{self, ErrorKind};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pipeloop::signal::{self, Signals};
use pipeloop::{Events, Interest, Poll, Token, Waker};

const WAKE: Token = Token(0);
const SIGNALS: Token = Token(1);

/// What other threads hand the loop: the waker only says "look here".
type Inbox = Arc<Mutex<Vec<String>>>;

fn main() -> io::Result<()> {
    let mut poll = Poll::new()?;
    println!("a Poll on the {} backend", poll.backend());
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let inbox: Inbox = Arc::default();
    let mut events = Events::with_capacity(8);

    coalesced_wakes(&mut poll, &mut events, &waker, &inbox)?;
    wake_a_sleeping_poll(&mut poll, &mut events, &waker, &inbox)?;

    let mut signals = Signals::new(&[libc::SIGUSR1, libc::SIGUSR2])?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)?;
    coalesced_signals(&mut poll, &mut events, &mut signals)?;
    signal_wakes_the_loop(&mut poll, &mut events, &mut signals)?;
    // Dropping `signals` restores SIGUSR1's and SIGUSR2's dispositions.
    Ok(())
}

/// Scene 1: three wakes before the poll, one event.
fn coalesced_wakes(
    poll: &mut Poll,
    events: &mut Events,
    waker: &Arc<Waker>,
    inbox: &Inbox,
) -> io::Result<()> {
    println!("\n1. three messages, a wake() after each, all before the loop polls");
    let sender = {
        let (waker, inbox) = (Arc::clone(waker), Arc::clone(inbox));
        thread::spawn(move || -> io::Result<()> {
            for i in 1..=3 {
                inbox.lock().unwrap().push(format!("message {i}"));
                waker.wake()?;
            }
            Ok(())
        })
    };
    sender.join().expect("the sender thread")?;
    poll.poll(events, Some(Duration::from_secs(1)))?;
    let wakes = events.iter().filter(|e| e.token() == WAKE).count();
    println!("   one poll: {wakes} event(s) with the waker's token");
    let got = std::mem::take(&mut *inbox.lock().unwrap());
    println!(
        "   the inbox, checked on the event, holds {}: {got:?}",
        got.len()
    );
    Ok(())
}

/// Scene 2: a poll with no timeout, ended by another thread.
fn wake_a_sleeping_poll(
    poll: &mut Poll,
    events: &mut Events,
    waker: &Arc<Waker>,
    inbox: &Inbox,
) -> io::Result<()> {
    println!("\n2. the loop sleeps in poll(None); a thread wakes it 100 ms later");
    let sender = {
        let (waker, inbox) = (Arc::clone(waker), Arc::clone(inbox));
        thread::spawn(move || -> io::Result<()> {
            thread::sleep(Duration::from_millis(100));
            inbox.lock().unwrap().push("hello from a thread".to_owned());
            waker.wake()
        })
    };
    let started = Instant::now();
    poll.poll(events, None)?; // no timeout: only an event ends this
    let slept = started.elapsed();
    let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
    println!("   poll returned after {slept:.0?} with {tokens:?}");
    println!(
        "   the inbox holds {:?}",
        std::mem::take(&mut *inbox.lock().unwrap())
    );
    sender.join().expect("the sender thread")
}

/// Scene 3: SIGUSR2, SIGUSR1, SIGUSR2, SIGUSR1 raised, two signals reported.
fn coalesced_signals(
    poll: &mut Poll,
    events: &mut Events,
    signals: &mut Signals,
) -> io::Result<()> {
    println!("\n3. SIGUSR2, SIGUSR1, SIGUSR2, SIGUSR1 raised before the loop polls");
    for sig in [libc::SIGUSR2, libc::SIGUSR1, libc::SIGUSR2, libc::SIGUSR1] {
        // SAFETY: raise only sends a signal to this thread, and pipeloop's
        // handler for it is installed (it sets a flag and writes a byte).
        unsafe { libc::raise(sig) };
    }
    poll.poll(events, Some(Duration::from_secs(1)))?;
    let readable = events
        .iter()
        .filter(|e| e.token() == SIGNALS && e.is_readable())
        .count();
    println!("   one poll: {readable} readable event(s) for the signal pipe");
    let names: Vec<&str> = signals.pending().filter_map(signal::name).collect();
    println!("   pending(): {names:?} (each once, in ascending number)");
    Ok(())
}

/// Scene 4: `kill` from another thread while the loop sleeps.
fn signal_wakes_the_loop(
    poll: &mut Poll,
    events: &mut Events,
    signals: &mut Signals,
) -> io::Result<()> {
    println!("\n4. the loop sleeps in poll(None); a thread sends the process SIGUSR1");
    let killer = thread::spawn(|| {
        thread::sleep(Duration::from_millis(50));
        // SAFETY: kill sends SIGUSR1 to this process, which handles it
        // (pipeloop's handler; the kernel picks the thread that runs it).
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
    });
    let started = Instant::now();
    loop {
        match poll.poll(events, None) {
            Ok(()) => break,
            // The handler ran on this thread, inside the wait: the wait
            // ends early with no events. The byte is in the pipe; poll again.
            Err(e) if e.kind() == ErrorKind::Interrupted => {
                println!("   poll was interrupted (EINTR); polling again");
            }
            Err(e) => return Err(e),
        }
    }
    let names: Vec<&str> = signals.pending().filter_map(signal::name).collect();
    println!(
        "   woken after {:.0?}: {names:?}, handled here, outside the signal handler",
        started.elapsed()
    );
    killer.join().expect("the killer thread");
    Ok(())
}
