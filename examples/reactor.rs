//! The reactor: a pipe, a repeating timer and a signal in one loop.
//!
//! ```text
//! cargo run --example reactor           # stops itself after a few ticks
//! cargo run --example reactor -- --wait # runs until Ctrl-C (SIGINT)
//! ```
//!
//! A thread writes a line into a pipe every 25 ms, and with every fourth
//! line sends the loop a closure through its `Remote`, which counts it on
//! the loop's thread; a timer ticks every 100 ms and prints the counts;
//! SIGINT and SIGTERM stop the loop. Each handler gets
//! the loop's data (`cx.data`) and may change the loop.

use std::io::{self, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use pipeloop::reactor::{EventLoop, Flow, Timer};
use pipeloop::{Interest, pipe};

#[derive(Debug, Default)]
struct Stats {
    lines: usize,
    ticks: u32,
    remote: u32,
}

fn main() -> io::Result<()> {
    let wait_for_signal = std::env::args().any(|a| a == "--wait");
    let mut ev: EventLoop<Stats> = EventLoop::new()?;
    println!("backend: {}", ev.backend());

    let (mut tx, rx) = pipe::new()?;
    ev.insert(
        rx,
        Interest::READABLE,
        |cx, rx: &mut pipe::Receiver, event| {
            let mut buf = [0u8; 1024];
            loop {
                match rx.read(&mut buf) {
                    Ok(0) => {
                        println!("pipe: the writer is gone");
                        return Ok(Flow::Remove);
                    }
                    Ok(n) => {
                        cx.data.lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
                        // Short: used up, unless this was the hang-up (the last
                        // event), after which we read on to end of file.
                        if n < buf.len() && !event.is_read_closed() {
                            return Ok(Flow::Continue);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Flow::Continue),
                    Err(e) => return Err(e),
                }
            }
        },
    )?;

    let start = Instant::now();
    ev.insert_timer(Timer::every(Duration::from_millis(100)), move |cx| {
        cx.data.ticks += 1;
        let at = cx.now() - start;
        println!("tick {} at {at:.1?}: {:?}", cx.data.ticks, cx.data);
        if cx.data.ticks == 5 && !wait_for_signal {
            cx.stop();
        }
        Ok(Flow::Continue)
    })?;

    ev.insert_signals(&[libc::SIGINT, libc::SIGTERM], |cx, signal| {
        println!(
            "signal {}: stopping",
            pipeloop::signal::name(signal).unwrap_or("?")
        );
        cx.stop();
        Ok(Flow::Continue)
    })?;

    let remote = ev.remote();
    let writer = std::thread::spawn(move || -> io::Result<()> {
        for i in 0.. {
            if tx.write_all(format!("line {i}\n").as_bytes()).is_err() {
                break; // the loop dropped the receiver
            }
            if i % 4 == 0 && remote.send(|cx| cx.data.remote += 1).is_err() {
                break; // the loop is gone
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(())
    });

    println!("{}", ev.describe());
    let mut stats = Stats::default();
    ev.run(&mut stats)?;
    println!("stopped: {stats:?}");
    drop(ev); // the receiver closes: the writer's next write fails
    writer.join().expect("the writer thread")?;
    Ok(())
}
