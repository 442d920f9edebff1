//! Timer lateness: how long after its deadline a timer's handler runs, in a
//! loop with nothing else, against a bare `Poll` given the whole
//! milliseconds (rounded up) left to the same deadline.
//!
//! It measures whatever the library does: since `epoll_pwait2` and `ppoll`,
//! a wait this short sleeps to the nanosecond on epoll and poll(2), against
//! the bare loop's whole milliseconds.

use std::io;
use std::time::{Duration, Instant};

use pipeloop::reactor::{EventLoop, Flow, Timer};
use pipeloop::{Backend, Events, Poll};

use super::Args;

pub const NAMES: [&str; 4] = [
    "eventloop-epoll",
    "poll-epoll-ms",
    "eventloop-poll",
    "poll-poll-ms",
];

const DELAYS: [Duration; 2] = [Duration::from_micros(300), Duration::from_micros(1_300)];

/// One row: takes one sample, the lateness of one timer of `delay`.
trait Sampler {
    fn sample(&mut self, delay: Duration) -> io::Result<Duration>;
}

/// An `EventLoop` with nothing in it but the timer of each sample.
struct Reactor {
    ev: EventLoop<Option<Instant>>,
}

impl Sampler for Reactor {
    fn sample(&mut self, delay: Duration) -> io::Result<Duration> {
        let mut fired = None;
        // Read before the insert, which reads the clock again for the
        // deadline: the lateness measured is at most the insert's few tens
        // of ns more than the true one.
        let deadline = Instant::now() + delay;
        self.ev.insert_timer(Timer::after(delay), |cx| {
            *cx.data = Some(Instant::now());
            Ok(Flow::Continue)
        })?;
        while fired.is_none() {
            self.ev.run_once(&mut fired, None)?;
        }
        let fired = fired.expect("the loop ran until the timer fired");
        // A timer never fires early; if it did, this shows it as 0.
        Ok(fired.saturating_duration_since(deadline))
    }
}

/// A bare `Poll` with no source: polls with the whole milliseconds left,
/// rounded up, until the deadline has passed.
struct Bare {
    poll: Poll,
    events: Events,
}

impl Sampler for Bare {
    fn sample(&mut self, delay: Duration) -> io::Result<Duration> {
        let deadline = Instant::now() + delay;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(now - deadline);
            }
            let left = deadline - now;
            let ms = left.as_nanos().div_ceil(1_000_000) as u64;
            match self
                .poll
                .poll(&mut self.events, Some(Duration::from_millis(ms)))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn sampler(name: &str) -> io::Result<Box<dyn Sampler>> {
    let reactor = |backend| -> io::Result<Box<dyn Sampler>> {
        Ok(Box::new(Reactor {
            ev: EventLoop::with_backend(backend)?,
        }))
    };
    let bare = |backend| -> io::Result<Box<dyn Sampler>> {
        Ok(Box::new(Bare {
            poll: Poll::with_backend(backend)?,
            events: Events::with_capacity(64),
        }))
    };
    match name {
        "eventloop-epoll" => reactor(Backend::Epoll),
        "eventloop-poll" => reactor(Backend::Poll),
        "poll-epoll-ms" => bare(Backend::Epoll),
        "poll-poll-ms" => bare(Backend::Poll),
        _ => unreachable!("a row of NAMES"),
    }
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn run(args: &Args) -> io::Result<()> {
    let names = args.libs.pick(&NAMES);
    if names.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<Box<dyn Sampler>> = names
        .iter()
        .map(|n| sampler(n))
        .collect::<io::Result<_>>()?;
    println!(
        "\n## lateness: a timer's handler run minus its deadline, nothing else in the loop \
         ({} timers per row and delay, interleaved; µs)\n",
        args.samples
    );
    println!("| row | delay | median | p99 | min | max | how it waits |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for delay in DELAYS {
        eprintln!("lateness {delay:?}: {} samples per row", args.samples);
        let mut late: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
        // Warm-up: one untimed timer each.
        for row in &mut rows {
            row.sample(delay)?;
        }
        for i in 0..args.samples {
            for j in 0..rows.len() {
                let k = (i + j) % rows.len();
                late[k].push(rows[k].sample(delay)?.as_secs_f64() * 1e6);
            }
        }
        for (name, v) in names.iter().zip(&mut late) {
            v.sort_by(f64::total_cmp);
            let how = if name.starts_with("eventloop") {
                "Timer::after(delay), run_once(None) until it fired"
            } else {
                "Poll::poll(whole ms left, rounded up) until the deadline passed"
            };
            println!(
                "| {name} | {:.1} ms | {:.0} | {:.0} | {:.0} | {:.0} | {how} |",
                delay.as_secs_f64() * 1e3,
                crate::stats::median(v),
                quantile(v, 0.99),
                v[0],
                v[v.len() - 1],
            );
        }
    }
    Ok(())
}
