//! The guide, chapter 6: one turn of the reactor (docs/guide/06-reactor-turn.md).
//!
//! ```text
//! cargo run --example guide_06_turn
//! ```
//!
//! An `EventLoop` driven one turn at a time with `run_once`, each handler
//! printing what it does, so the order inside a turn shows:
//!
//! 1. a turn with everything ready at once: I/O is dispatched first, then
//!    the due timer fires, then remote work runs; the poll did not block,
//!    so the before-sleep hook did not run;
//! 2. a turn that sleeps: before-sleep, then a poll whose timeout is the
//!    nearest timer's deadline;
//! 3. a turn cut short: another thread's `Remote::send` wakes the poll long
//!    before the next timer;
//! 4. `run`: it returns when a handler calls `cx.stop()`, and, run again,
//!    when nothing is left to wait for.

use std::io::{self, ErrorKind, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use pipeloop::reactor::{EventLoop, Flow, Timer};
use pipeloop::{Interest, pipe};

/// The loop's data: every handler gets it as `cx.data`.
struct Turns {
    started: Instant,
    /// The pipe's write end; dropping it gives the reader end of file.
    tx: Option<pipe::Sender>,
    ticks: u32,
}

impl Turns {
    fn say(&self, text: &str) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        println!("{ms:>7.1} ms    {text}");
    }
}

fn main() -> io::Result<()> {
    let mut ev: EventLoop<Turns> = EventLoop::new()?;
    let (tx, rx) = pipe::new()?;
    let mut data = Turns {
        started: Instant::now(),
        tx: Some(tx),
        ticks: 0,
    };
    println!("an EventLoop on the {} backend", ev.backend());

    ev.insert(
        rx,
        Interest::READABLE,
        |cx, rx: &mut pipe::Receiver, _event| {
            let mut buf = [0; 64];
            loop {
                match rx.read(&mut buf) {
                    Ok(0) => {
                        cx.data.say("  dispatch I/O: end of file; Flow::Remove");
                        return Ok(Flow::Remove);
                    }
                    Ok(n) => cx.data.say(&format!("  dispatch I/O: read {n} bytes")),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Flow::Continue),
                    Err(e) => return Err(e),
                }
            }
        },
    )?;
    ev.before_sleep(|cx| {
        cx.data.say("  before-sleep: the poll may block now");
        Ok(())
    });

    println!("\n1. bytes in the pipe, a timer due now, remote work queued");
    data.tx.as_mut().expect("the sender").write_all(b"hello")?;
    ev.insert_timer(Timer::after(Duration::ZERO), |cx| {
        cx.data.say("  due timer: the zero timer fires");
        Ok(Flow::Continue) // a one-shot timer goes all the same
    })?;
    let remote = ev.remote();
    remote.send(|cx| cx.data.say("  remote work: the closure runs"))?;
    ev.run_once(&mut data, None)?;

    println!("\n2. nothing ready; a timer 60 ms away");
    ev.insert_timer(Timer::after(Duration::from_millis(60)), |cx| {
        cx.data.say("  due timer: the 60 ms timer fires");
        Ok(Flow::Continue)
    })?;
    data.say("run_once begins");
    ev.run_once(&mut data, None)?;

    println!("\n3. a timer 300 ms away; another thread sends work after 40 ms");
    ev.insert_timer(Timer::after(Duration::from_millis(300)), |cx| {
        cx.data
            .say("  due timer: 300 ms; dropping the pipe's write end");
        cx.data.tx = None;
        Ok(Flow::Continue)
    })?;
    let worker = thread::spawn(move || {
        thread::sleep(Duration::from_millis(40));
        remote.send(|cx| cx.data.say("  remote work: sent from another thread"))
        // `remote`, the last one, goes here: the loop no longer waits for it.
    });
    data.say("run_once begins");
    ev.run_once(&mut data, None)?;
    worker.join().expect("the worker thread")?;

    println!("\n4. run(): a ticker every 20 ms calls cx.stop() on its second tick");
    let ticker = ev.insert_timer(Timer::every(Duration::from_millis(20)), |cx| {
        cx.data.ticks += 1;
        cx.data.say(&format!("  due timer: tick {}", cx.data.ticks));
        if cx.data.ticks == 2 {
            cx.stop();
        }
        Ok(Flow::Continue)
    })?;
    ev.run(&mut data)?;
    data.say(&format!(
        "run returned after cx.stop(); the loop still holds {} entries",
        ev.len()
    ));
    ev.remove(ticker);
    data.say("ticker removed; run() again");
    ev.run(&mut data)?;
    data.say(&format!(
        "run returned: nothing left to wait for (len {})",
        ev.len()
    ));
    Ok(())
}
