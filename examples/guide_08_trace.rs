//! The guide, chapter 8: watching the loop live (docs/guide/08-watching.md).
//!
//! ```text
//! cargo run --example guide_08_trace
//! ```
//!
//! pipeloop logs every registration change, every wake-up of the poll,
//! every event it dispatches and every timer it fires, through the `log`
//! crate. This program installs a `log::Log` of a dozen lines (no
//! env_logger, no poller) before it makes its loop, so the trace starts
//! with the loop's birth, then runs a small loop:
//!
//! 1. a timer 20 ms away writes "ping" into a pipe the loop watches;
//! 2. the pipe's handler reads it and spawns `echo hi`;
//! 3. the child's output, end of file and exit arrive as events;
//! 4. nothing is left, and `run` returns.
//!
//! Its own lines (`>>`) and pipeloop's (`[...]`) go to stdout, in order.

use std::io::{self, ErrorKind, Read, Write};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use log::{LevelFilter, Log, Metadata, Record};
use pipeloop::reactor::{ChildEvent, EventLoop, Flow, Timer};
use pipeloop::{Interest, pipe};

/// Prints pipeloop's records with the time since the program started.
struct Trace;

static STARTED: OnceLock<Instant> = OnceLock::new();

fn since_start() -> Duration {
    STARTED.get_or_init(Instant::now).elapsed()
}

impl Log for Trace {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("pipeloop")
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let ms = since_start().as_secs_f64() * 1000.0;
            println!("[{ms:>6.2} ms {:<5}] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

static TRACE: Trace = Trace;

fn say(text: &str) {
    let ms = since_start().as_secs_f64() * 1000.0;
    println!(">> {ms:>6.2} ms  {text}");
}

struct App {
    tx: Option<pipe::Sender>,
}

fn main() -> io::Result<()> {
    since_start();
    // Only fails if a logger is installed already, which nothing here does.
    log::set_logger(&TRACE).map_err(|e| io::Error::other(e.to_string()))?;
    log::set_max_level(LevelFilter::Trace);

    say("making the loop");
    let mut ev: EventLoop<App> = EventLoop::new()?;
    let (tx, rx) = pipe::new()?;
    say("inserting a pipe's read end for READABLE");
    ev.insert(rx, Interest::READABLE, on_ping)?;
    say("inserting a timer 20 ms away");
    ev.insert_timer(Timer::after(Duration::from_millis(20)), |cx| {
        say("timer: writing \"ping\" and closing the pipe");
        let mut tx = cx.data.tx.take().expect("the sender");
        tx.write_all(b"ping")?;
        Ok(Flow::Continue) // `tx` goes here: the reader gets end of file
    })?;
    say("run()");
    ev.run(&mut App { tx: Some(tx) })?;
    say("run returned: nothing left to wait for");
    Ok(())
}

/// Reads the pipe; at "ping", spawns a child; at end of file, goes.
fn on_ping(
    cx: &mut pipeloop::reactor::Cx<'_, App>,
    rx: &mut pipe::Receiver,
    _event: &pipeloop::event::Event,
) -> io::Result<Flow> {
    let mut buf = [0; 64];
    loop {
        match rx.read(&mut buf) {
            Ok(0) => {
                say("pipe: end of file, Flow::Remove");
                return Ok(Flow::Remove);
            }
            Ok(n) => {
                say(&format!(
                    "pipe: read {:?}; spawning `echo hi`",
                    String::from_utf8_lossy(&buf[..n])
                ));
                cx.spawn(Command::new("echo").arg("hi"), |_cx, event| {
                    match event {
                        ChildEvent::Stdout(out) | ChildEvent::Stderr(out) => {
                            say(&format!("child: {:?}", String::from_utf8_lossy(out)))
                        }
                        ChildEvent::Exit(status) => say(&format!("child: {status}")),
                    }
                    Ok(Flow::Continue)
                })?;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Flow::Continue),
            Err(e) => return Err(e),
        }
    }
}
