//! A tour of pipeloop: a pipe, a waker and a poll loop, on every backend.
//!
//! ```text
//! cargo run --example tour            # every backend this system has
//! cargo run --example tour -- poll    # only one (epoll | poll)
//! ```
//!
//! A producer thread writes a few lines into a pipe, wakes the loop with a
//! `Waker`, and closes its end. The loop prints every event it gets and stops
//! once the writer is gone (and the wake has been seen).

use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pipeloop::pipe::Receiver;
use pipeloop::{Backend, Events, Interest, Poll, Token, Waker};

const PIPE: Token = Token(0);
const WAKE: Token = Token(1);

const MESSAGES: [&str; 4] = ["hello\n", "from the producer\n", "over a pipe\n", "bye\n"];

/// Never reached when things work; it turns a lost event into an error
/// instead of a hang.
const PATIENCE: Duration = Duration::from_secs(5);

fn main() {
    if let Err(e) = run() {
        eprintln!("tour: {e}");
        std::process::exit(1);
    }
}

fn run() -> io::Result<()> {
    let backends: Vec<Backend> = match std::env::args().nth(1) {
        // An unknown name is InvalidInput; a backend this system lacks is
        // Unsupported when the Poll is made. Neither falls back silently.
        Some(name) => vec![name.parse()?],
        None => Backend::available().to_vec(),
    };
    for backend in backends {
        tour(backend)?;
    }
    Ok(())
}

fn tour(backend: Backend) -> io::Result<()> {
    let started = Instant::now();
    let mut poll = Poll::with_backend(backend)?;
    println!("== {backend} == ({PIPE:?}: the pipe, {WAKE:?}: the waker)");
    let (mut sender, mut receiver) = pipeloop::pipe::new()?;
    // Edge-triggered (the default): each new readiness is reported once, so
    // the loop must use it up before polling again. See `drain`.
    poll.registry()
        .register(&mut receiver, PIPE, Interest::READABLE)?;
    // Arc, so that this side keeps the Waker alive: a Waker dropped before
    // its wake is seen can take the wake with it.
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);

    let remote = Arc::clone(&waker);
    let producer = thread::spawn(move || -> io::Result<()> {
        for message in MESSAGES {
            // 40 bytes fit in any pipe, so this never meets WouldBlock; a
            // producer that can fill the pipe registers its Sender for
            // WRITABLE. The reader may get several messages in one read, or
            // half of one: a pipe is a byte stream, not a message queue.
            sender.write_all(message.as_bytes())?;
        }
        remote.wake()?;
        // Dropping the last Sender is what the reader sees as "read closed".
        drop(sender);
        Ok(())
    });

    // Allocated once; `poll` reuses it and never allocates.
    let mut events = Events::with_capacity(8);
    let mut received = Vec::new();
    let (mut polls, mut seen) = (0, 0);
    let (mut woken, mut closed) = (false, false);
    // The producer wakes before it closes, so once the pipe is closed the
    // wake is guaranteed to arrive, in this poll or the next one.
    while !(closed && woken) {
        poll.poll(&mut events, Some(PATIENCE))?;
        polls += 1;
        if events.is_empty() {
            return Err(io::Error::new(ErrorKind::TimedOut, "no event in 5 s"));
        }
        for event in &events {
            seen += 1;
            println!(
                "  event {:?} readable={:<5} read_closed={}",
                event.token(),
                event.is_readable(),
                event.is_read_closed()
            );
            match event.token() {
                // A wake carries no data and leaves nothing to read: it
                // only means "look at your own state".
                WAKE => woken = true,
                // Read on every pipe event, not only readable ones: a writer
                // that closes an empty pipe gives read_closed alone.
                PIPE => closed |= drain(&mut receiver, &mut received, event.is_read_closed())?,
                _ => unreachable!("only two tokens are registered"),
            }
        }
    }
    producer.join().expect("producer panicked")?;

    let text = String::from_utf8_lossy(&received);
    println!(
        "  summary: {} bytes ({} lines), {seen} events from {polls} poll(s), woken: {woken}, took {:?}",
        received.len(),
        text.lines().count(),
        started.elapsed()
    );
    assert_eq!(text, MESSAGES.concat(), "bytes lost or reordered");
    Ok(())
}

/// Reads what the pipe holds; returns whether end of file was reached.
///
/// The short-read rule: a read that returns fewer bytes than the buffer
/// holds proves the pipe was empty at that moment, so any later write is a
/// new edge and a new event. There is no need for one more read just to see
/// `WouldBlock`; pipeloop's pipes re-arm themselves on every backend.
fn drain(receiver: &mut Receiver, into: &mut Vec<u8>, writer_gone: bool) -> io::Result<bool> {
    // Small on purpose, so the output shows full reads followed by a short
    // one. Real programs use a few KiB.
    let mut buf = [0u8; 16];
    loop {
        match receiver.read(&mut buf) {
            Ok(0) => {
                println!("    read  0 bytes: end of file, the writer is gone");
                return Ok(true);
            }
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                let short = n < buf.len();
                let note = if short { " (short)" } else { "" };
                println!("    read {n:>2} bytes{note}");
                // Once the writer is gone nothing more can arrive and no new
                // edge will come: read on until end of file.
                if short && !writer_gone {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
