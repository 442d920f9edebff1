//! `poller demo`: one loop doing each of the reactor's jobs in turn, with
//! the trace on, and one line per phase (on stdout) saying what the loop is
//! doing and why. It needs no arguments and takes about 1.3 seconds: 0.2 s
//! of children, two ticks of 500 ms, and 100 ms before the thread's message.
//!
//! The phases, each started by the one before:
//!
//! 1. two children: their output arrives as readiness events on pipes;
//! 2. a repeating timer: its deadline bounds how long the loop sleeps;
//! 3. a `Remote` message from another thread: it wakes the sleeping loop;
//! 4. a signal to poller itself: the self-pipe turns it into an event;
//! 5. nothing left to wait for: `run` returns.

use std::io::{self, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use pipeloop::reactor::{ChildEvent, Cx, EventLoop, Flow, Key, Timer};

use crate::cli::Common;

/// How often the phase-2 timer ticks.
const TICK: Duration = Duration::from_millis(500);

/// What the demo's handlers share.
struct Demo {
    started: Instant,
    ticks: u32,
    children_left: u32,
    tick: Option<Key>,
    signals: Option<Key>,
}

impl Demo {
    /// One line of narration, on stdout, with the time since the start.
    fn say(&self, text: &str) {
        let at = self.started.elapsed();
        let mut out = io::stdout().lock();
        let _ = writeln!(
            out,
            "demo {:>4}.{:03}s  {text}",
            at.as_secs(),
            at.subsec_millis()
        );
        let _ = out.flush();
    }
}

pub fn run(common: &Common) -> i32 {
    let mut ev: EventLoop<Demo> = crate::new_loop(common);
    // The demo is the trace: on unless RUST_LOG says otherwise.
    crate::trace::init(std::env::var_os("RUST_LOG").is_none() || common.trace);
    let mut demo = Demo {
        started: Instant::now(),
        ticks: 0,
        children_left: 2,
        tick: None,
        signals: None,
    };
    demo.say(&format!(
        "a loop on the {} backend. Lines in [brackets] on stderr are its trace.",
        ev.backend()
    ));
    match start(&mut ev).and_then(|()| ev.run(&mut demo)) {
        Ok(()) => {
            demo.say(
                "5. nothing left to wait for (no source, timer, signal or child): run() returned.",
            );
            0
        }
        Err(e) => {
            eprintln!("poller: demo: {e}");
            1
        }
    }
}

/// Phase 1, from a zero timer so that it runs inside the loop.
fn start(ev: &mut EventLoop<Demo>) -> io::Result<()> {
    ev.insert_timer(Timer::after(Duration::ZERO), |cx| {
        cx.data.say(
            "1. spawning two children. The loop registers each child's stdout and stderr pipes \
             for READABLE; every chunk they write wakes poll with an event for that pipe.",
        );
        spawn(
            cx,
            "printf 'one\\n'; sleep 0.1; printf 'two\\n'; sleep 0.1; printf 'three\\n'",
        )?;
        spawn(cx, "echo 'to stderr' >&2; exit 3")?;
        Ok(Flow::Continue)
    })?;
    Ok(())
}

fn spawn(cx: &mut Cx<'_, Demo>, script: &str) -> io::Result<()> {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    let key = cx.spawn(&mut command, on_child)?;
    let pid = cx.pid(key).unwrap_or(0);
    cx.data.say(&format!("   pid {pid} runs: {script}"));
    Ok(())
}

fn on_child(cx: &mut Cx<'_, Demo>, event: ChildEvent<'_>) -> io::Result<Flow> {
    match event {
        ChildEvent::Stdout(bytes) | ChildEvent::Stderr(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            cx.data
                .say(&format!("   a chunk of {} bytes: {:?}", bytes.len(), text));
        }
        ChildEvent::Exit(status) => {
            cx.data.say(&format!(
                "   {status}: reported last, after end of file on both pipes and the exit itself."
            ));
            cx.data.children_left -= 1;
            if cx.data.children_left == 0 {
                start_ticking(cx)?;
            }
        }
    }
    Ok(Flow::Continue)
}

/// Phase 2.
fn start_ticking(cx: &mut Cx<'_, Demo>) -> io::Result<()> {
    cx.data.say(&format!(
        "2. a timer every {TICK:?}. With nothing else to do, the loop sleeps in poll exactly until \
         the nearest deadline: the timeout is computed from the timer queue."
    ));
    let key = cx.insert_timer(Timer::every(TICK), on_tick)?;
    cx.data.tick = Some(key);
    Ok(())
}

fn on_tick(cx: &mut Cx<'_, Demo>) -> io::Result<Flow> {
    cx.data.ticks += 1;
    let late = cx.now().saturating_duration_since(cx.data.started);
    cx.data.say(&format!(
        "   tick {} (the turn began {late:?} after the start)",
        cx.data.ticks
    ));
    if cx.data.ticks == 2 {
        send_from_a_thread(cx);
    }
    Ok(Flow::Continue)
}

/// Phase 3: the thread's message, which starts phase 4.
fn send_from_a_thread(cx: &mut Cx<'_, Demo>) {
    cx.data.say(
        "3. another thread sends a closure through a Remote. It queues the closure and wakes the \
         loop through its Waker; the closure runs on the loop's thread, with the loop's data.",
    );
    let remote = cx.remote();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let _ = remote.send(|cx| {
            cx.data.say("   the closure runs on the loop's thread.");
            signal_self(cx);
        });
    });
}

/// Phase 4.
fn signal_self(cx: &mut Cx<'_, Demo>) {
    cx.data.say(
        "4. poller sends itself SIGUSR1. The signal handler only writes a byte to a self-pipe; the \
         loop reads it and runs the signal's handler as an ordinary event, outside the handler.",
    );
    match cx.insert_signals(&[libc::SIGUSR1], on_signal) {
        Ok(key) => {
            cx.data.signals = Some(key);
            // SAFETY: raise sends a signal to this thread; the disposition
            // was just installed by insert_signals.
            unsafe { libc::raise(libc::SIGUSR1) };
        }
        Err(e) => {
            cx.data.say(&format!("   cannot watch SIGUSR1: {e}"));
            finish(cx);
        }
    }
}

fn on_signal(cx: &mut Cx<'_, Demo>, signal: libc::c_int) -> io::Result<Flow> {
    let name = pipeloop::signal::name(signal).unwrap_or("a signal");
    cx.data.say(&format!(
        "   {name} arrived as an event. Removing the timer and the signal watcher."
    ));
    finish(cx);
    Ok(Flow::Continue)
}

fn finish(cx: &mut Cx<'_, Demo>) {
    for key in [cx.data.tick.take(), cx.data.signals.take()]
        .into_iter()
        .flatten()
    {
        cx.remove(key);
    }
}
