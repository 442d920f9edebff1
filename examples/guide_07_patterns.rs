//! The guide, chapter 7: patterns (docs/guide/07-patterns.md).
//!
//! ```text
//! cargo run --example guide_07_patterns
//! ```
//!
//! Three scenes:
//!
//! 1. a server for three "connections" (a pair of pipes each), on a bare
//!    `Poll`: each token names a slab index and a part, the slab holds each
//!    connection's state, and a response too big for the pipe is sent with
//!    `WRITABLE` registered only while output waits;
//! 2. a regular file on each backend this system has: epoll refuses it
//!    (`EPERM`), poll(2) calls it ready on every poll;
//! 3. two children on an `EventLoop`, their output split into lines with
//!    per-child state kept under each child's `Key`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use pipeloop::reactor::{ChildEvent, EventLoop, Flow, Key};
use pipeloop::{Backend, Events, Interest, Poll, Registry, SourceFd, Token, pipe};
use slab::Slab;

fn main() -> io::Result<()> {
    connections()?;
    files()?;
    children()
}

// ---- 1. a token mapped to per-connection state -------------------------

/// The parts of a connection, each registered under its own token.
const REQUEST: usize = 0;
const RESPONSE: usize = 1;
const CLIENT: usize = 2;
const PARTS: usize = 3;

fn token(index: usize, part: usize) -> Token {
    Token(index * PARTS + part)
}

/// How big each response is: several times a pipe's 64 KiB buffer.
const RESPONSE_LEN: usize = 200_000;

/// One connection: everything an event for it needs, found by its token.
struct Conn {
    id: usize,
    /// The server reads the request here, to end of file.
    requests: pipe::Receiver,
    request: Vec<u8>,
    /// The server writes the response here; `None` once all of it is sent
    /// (dropping it gives the client end of file).
    responses: Option<pipe::Sender>,
    /// The response, and how much of it the pipe has taken.
    out: Vec<u8>,
    sent: usize,
    /// Whether `responses` is registered for WRITABLE now.
    writable: bool,
    writable_events: u32,
    /// The client's end of the response pipe (read in this loop too, to
    /// keep the example in one thread) and what it got.
    client: pipe::Receiver,
    received: usize,
}

fn connections() -> io::Result<()> {
    println!("1. three connections on one Poll; a token names (slab index, part)");
    let mut poll = Poll::new()?;
    let mut conns: Slab<Conn> = Slab::new();
    for id in 0..3 {
        let (mut req_tx, mut requests) = pipe::new()?;
        let (responses, mut client) = pipe::new()?;
        let entry = conns.vacant_entry();
        let index = entry.key();
        poll.registry()
            .register(&mut requests, token(index, REQUEST), Interest::READABLE)?;
        poll.registry()
            .register(&mut client, token(index, CLIENT), Interest::READABLE)?;
        // The response pipe is not registered: nothing waits to be written.
        entry.insert(Conn {
            id,
            requests,
            request: Vec::new(),
            responses: Some(responses),
            out: Vec::new(),
            sent: 0,
            writable: false,
            writable_events: 0,
            client,
            received: 0,
        });
        // The client's request; dropping its end ends the request.
        write!(req_tx, "request {id}; ")?;
    }

    let mut events = Events::with_capacity(16);
    while !conns.is_empty() {
        poll.poll(&mut events, Some(Duration::from_secs(5)))?;
        if events.is_empty() {
            return Err(io::Error::new(ErrorKind::TimedOut, "no event in 5 s"));
        }
        for event in &events {
            let (index, part) = (event.token().0 / PARTS, event.token().0 % PARTS);
            // A connection removed earlier in this batch gets nothing.
            let Some(conn) = conns.get_mut(index) else {
                continue;
            };
            let registry = poll.registry();
            let done = match part {
                REQUEST => read_request(registry, index, conn)?,
                RESPONSE => {
                    conn.writable_events += 1;
                    send(registry, index, conn)?;
                    false
                }
                _ => read_response(conn)?,
            };
            if done {
                let conn = conns.remove(index); // its pipe ends deregister as they drop
                println!(
                    "   conn {}: the client got {} bytes, then end of file; state removed",
                    conn.id, conn.received
                );
            }
        }
    }
    Ok(())
}

/// Reads the request to end of file, then starts the response.
fn read_request(registry: &Registry, index: usize, conn: &mut Conn) -> io::Result<bool> {
    let mut buf = [0; 256];
    loop {
        match conn.requests.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => conn.request.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    registry.deregister(&mut conn.requests)?;
    conn.out = conn.request.repeat(RESPONSE_LEN / conn.request.len() + 1);
    conn.out.truncate(RESPONSE_LEN);
    println!(
        "   conn {}: read {:?}; {} bytes to send",
        conn.id,
        String::from_utf8_lossy(&conn.request),
        conn.out.len()
    );
    send(registry, index, conn)?;
    Ok(false)
}

/// Writes what waits until the pipe is full or nothing waits; registers
/// WRITABLE while something waits, and only then.
fn send(registry: &Registry, index: usize, conn: &mut Conn) -> io::Result<()> {
    let Some(tx) = conn.responses.as_mut() else {
        return Ok(());
    };
    while conn.sent < conn.out.len() {
        match tx.write(&conn.out[conn.sent..]) {
            Ok(n) => conn.sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if !conn.writable {
                    registry.register(tx, token(index, RESPONSE), Interest::WRITABLE)?;
                    conn.writable = true;
                    println!(
                        "   conn {}: {} bytes sent, the pipe is full: register WRITABLE",
                        conn.id, conn.sent
                    );
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
    if conn.writable {
        registry.deregister(tx)?;
        conn.writable = false;
    }
    println!(
        "   conn {}: all sent after {} WRITABLE event(s): deregistered, closing",
        conn.id, conn.writable_events
    );
    conn.responses = None;
    Ok(())
}

/// The client's side: reads what came; `true` at end of file.
fn read_response(conn: &mut Conn) -> io::Result<bool> {
    let mut buf = vec![0; 64 * 1024];
    loop {
        match conn.client.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => conn.received += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

// ---- 2. files cannot be polled -----------------------------------------

fn files() -> io::Result<()> {
    println!("\n2. a regular file, registered for READABLE on each backend");
    let path = std::env::temp_dir().join(format!("pipeloop-guide-07-{}", std::process::id()));
    fs::write(&path, "a regular file\n")?;
    let file = File::open(&path);
    fs::remove_file(&path)?; // the open file stays readable
    let file = file?;
    let fd = file.as_raw_fd();
    for &backend in Backend::available() {
        let mut poll = Poll::with_backend(backend)?;
        let registered =
            poll.registry()
                .register(&mut SourceFd(&fd), Token(0), Interest::READABLE.level());
        match registered {
            Err(e) => println!("   {backend}: register refused: {e}"),
            Ok(()) => {
                let mut events = Events::with_capacity(4);
                let mut ready = 0;
                for _ in 0..3 {
                    poll.poll(&mut events, Some(Duration::ZERO))?;
                    ready += events.iter().filter(|e| e.is_readable()).count();
                }
                println!("   {backend}: accepted; readable on {ready} of 3 polls, always");
                poll.registry().deregister(&mut SourceFd(&fd))?;
            }
        }
    }
    Ok(())
}

// ---- 3. children and their output --------------------------------------

/// A child's state, kept in the loop's data under its key.
struct Output {
    name: &'static str,
    /// Output not ended by a newline yet.
    partial: Vec<u8>,
    lines: u32,
}

fn children() -> io::Result<()> {
    println!("\n3. two children on an EventLoop; their state is found by Key");
    let mut ev: EventLoop<HashMap<Key, Output>> = EventLoop::new()?;
    let mut by_key = HashMap::new();
    let scripts = [
        ("first", "echo one; sleep 0.05; echo two >&2; echo three"),
        ("second", "printf 'no newline'; exit 4"),
    ];
    for (name, script) in scripts {
        let key = ev.spawn(Command::new("sh").args(["-c", script]), on_child)?;
        println!("   {name}: pid {}: {script}", ev.pid(key).unwrap_or(0));
        by_key.insert(
            key,
            Output {
                name,
                partial: Vec::new(),
                lines: 0,
            },
        );
    }
    ev.run(&mut by_key)?; // returns once both Exit events were handled
    println!("   run returned; states left: {}", by_key.len());
    Ok(())
}

fn on_child(
    cx: &mut pipeloop::reactor::Cx<'_, HashMap<Key, Output>>,
    event: ChildEvent<'_>,
) -> io::Result<Flow> {
    let key = cx.key().expect("a child's handler runs with its key");
    let out = cx.data.get_mut(&key).expect("inserted after spawn");
    match event {
        ChildEvent::Stdout(chunk) | ChildEvent::Stderr(chunk) => {
            out.partial.extend_from_slice(chunk);
            while let Some(end) = out.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = out.partial.drain(..=end).collect();
                out.lines += 1;
                print!("   {} | {}", out.name, String::from_utf8_lossy(&line));
            }
        }
        ChildEvent::Exit(status) => {
            if !out.partial.is_empty() {
                out.lines += 1;
                println!(
                    "   {} | {}",
                    out.name,
                    String::from_utf8_lossy(&out.partial)
                );
            }
            println!("   {}: {status} after {} line(s)", out.name, out.lines);
            cx.data.remove(&key);
        }
    }
    Ok(Flow::Continue)
}
