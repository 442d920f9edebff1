//! The guide, chapter 4: edge, level and oneshot (docs/guide/04-modes.md).
//!
//! ```text
//! cargo run --example guide_04_modes
//! ```
//!
//! 1. One pipe, registered in each mode in turn (`reregister` changes the
//!    mode), on every backend this system has: which polls report it.
//! 2. Starving a pipe: a loop that drains one busy pipe "until WouldBlock"
//!    never gets to the next one; a budget per turn fixes it.

use std::io::{self, ErrorKind, Read, Write};
use std::time::Duration;

use pipeloop::pipe::{self, Receiver, Sender};
use pipeloop::{Backend, Events, Interest, Poll, Token};

const PIPE: Token = Token(0);

fn main() -> io::Result<()> {
    for &backend in Backend::available() {
        println!("1. three modes on one pipe ({backend})");
        modes(backend)?;
    }
    println!("2. starving a pipe");
    starving()?;
    Ok(())
}

/// Part 1: the timelines of the chapter, step by step.
fn modes(backend: Backend) -> io::Result<()> {
    let mut poll = Poll::with_backend(backend)?;
    let (mut tx, mut rx) = pipe::new()?;
    let mut events = Events::with_capacity(8);

    println!("   level: reported on every poll while it lasts");
    poll.registry()
        .register(&mut rx, PIPE, Interest::READABLE.level())?;
    write(&mut tx, 10)?;
    expect(&mut poll, &mut events, true)?;
    read(&mut rx, 4)?;
    expect(&mut poll, &mut events, true)?; // 6 bytes still there
    read(&mut rx, 64)?;
    expect(&mut poll, &mut events, false)?; // empty

    println!("   edge: reported when it appears, then again after it was used up");
    poll.registry()
        .reregister(&mut rx, PIPE, Interest::READABLE)?;
    write(&mut tx, 10)?;
    expect(&mut poll, &mut events, true)?;
    read(&mut rx, 4)?; // a full read: the edge is not used up
    expect(&mut poll, &mut events, false)?; // 6 bytes wait, unannounced
    read(&mut rx, 64)?; // a short read: used up
    write(&mut tx, 5)?;
    expect(&mut poll, &mut events, true)?; // a new edge
    read(&mut rx, 64)?;

    println!("   oneshot: reported once, then disabled until reregister");
    poll.registry()
        .reregister(&mut rx, PIPE, Interest::READABLE.oneshot())?;
    write(&mut tx, 10)?;
    expect(&mut poll, &mut events, true)?; // now disabled
    read(&mut rx, 64)?;
    write(&mut tx, 5)?;
    expect(&mut poll, &mut events, false)?; // bytes, but disabled
    println!("      reregister(.., READABLE.oneshot())");
    poll.registry()
        .reregister(&mut rx, PIPE, Interest::READABLE.oneshot())?;
    expect(&mut poll, &mut events, true)?; // ready when re-armed: at once
    Ok(())
}

fn write(tx: &mut Sender, n: usize) -> io::Result<()> {
    tx.write_all(&vec![b'x'; n])?;
    println!("      writer writes {n} bytes");
    Ok(())
}

fn read(rx: &mut Receiver, size: usize) -> io::Result<()> {
    let mut buf = vec![0u8; size];
    let n = rx.read(&mut buf)?;
    let note = if n < size { "short read" } else { "full read" };
    println!("      read {n} bytes into a {size}-byte buffer ({note})");
    Ok(())
}

/// Polls and checks whether the pipe was reported. A poll that should
/// report nothing waits 20 ms to give the event every chance to show.
fn expect(poll: &mut Poll, events: &mut Events, readable: bool) -> io::Result<()> {
    let timeout = if readable { 5_000 } else { 20 };
    poll.poll(events, Some(Duration::from_millis(timeout)))?;
    let got = events.iter().any(|e| e.token() == PIPE && e.is_readable());
    println!("      poll -> {}", if got { "readable" } else { "nothing" });
    assert_eq!(got, readable, "{} broke its mode", poll.backend());
    Ok(())
}

/// Part 2: a busy pipe `A` and a quiet pipe `B`, both level-triggered.
///
/// `A`'s peer writes as fast as the loop reads. A thread on another core
/// would do that; here the loop writes the peer's bytes itself, just
/// before each read, so that every run prints the same.
fn starving() -> io::Result<()> {
    for budget in [None, Some(16)] {
        match budget {
            None => println!("   without a budget: read A until WouldBlock"),
            Some(n) => println!("   with a budget: at most {n} reads per fd per turn"),
        }
        let mut poll = Poll::new()?;
        let (mut a_tx, mut a_rx) = pipe::new()?;
        let (mut b_tx, mut b_rx) = pipe::new()?;
        let level = Interest::READABLE.level();
        poll.registry().register(&mut a_rx, Token(0), level)?;
        poll.registry().register(&mut b_rx, Token(1), level)?;
        a_tx.write_all(&[0; 1024])?; // A is busy from the start

        let mut events = Events::with_capacity(8);
        let mut a_reads = 0u32;
        let mut served_b = false;
        'turns: for turn in 1..=3 {
            poll.poll(&mut events, Some(Duration::from_secs(5)))?;
            for event in &events {
                if event.token() == Token(1) {
                    let mut buf = [0u8; 64];
                    let n = b_rx.read(&mut buf)?;
                    println!(
                        "      turn {turn}: B served: {:?}",
                        String::from_utf8_lossy(&buf[..n])
                    );
                    served_b = true;
                    break 'turns;
                }
                // A's handler.
                let mut buf = [0u8; 1024];
                let mut this_turn = 0;
                loop {
                    if budget == Some(this_turn) {
                        println!(
                            "      turn {turn}: A read {this_turn} times; budget spent, A still ready"
                        );
                        break;
                    }
                    if a_reads == 1_000 {
                        println!(
                            "      turn {turn}: A read {a_reads} times and never saw WouldBlock; giving up (a real loop would not)"
                        );
                        break 'turns;
                    }
                    if a_reads == 10 {
                        b_tx.write_all(b"hello from B")?; // B becomes ready
                    }
                    a_tx.write_all(&[0; 1024])?; // A's fast peer
                    match a_rx.read(&mut buf) {
                        Ok(_) => {
                            a_reads += 1;
                            this_turn += 1;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if !served_b {
            println!("      B's message, written at A's 10th read, was never read");
        }
    }
    Ok(())
}
