//! `poller bench`: this machine's backends side by side, on a byte passed
//! back and forth between two pipes with N other pipes registered and
//! idle, for N from 1 to 10,000 (fewer if the open-file limit is lower).
//! It teaches why O(ready) matters: epoll and kqueue hand back only the
//! pipes that are ready, so a round trip costs the same with 10,000 idle
//! pipes as with one; poll(2) hands the kernel the whole table on every
//! call, so its cost grows with N.
//!
//! Each row is the median of a few runs, each run timing a fixed number of
//! round trips through `EventLoop` handlers (one event per pipe per hop).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use pipeloop::pipe::{self, Receiver, Sender};
use pipeloop::reactor::{Cx, EventLoop, Flow};
use pipeloop::{Backend, Interest};

use crate::cli::BenchArgs;

/// The idle pipes beside the ping-pong pair, per row.
const SIZES: [usize; 5] = [1, 10, 100, 1_000, 10_000];

/// One measured row: a backend with `idle` idle pipes.
pub struct Row {
    pub backend: Backend,
    pub idle: usize,
    /// Median nanoseconds per event (half a round trip).
    pub ns_per_event: f64,
}

pub fn run(args: &BenchArgs) -> i32 {
    crate::trace::init(false); // RUST_LOG, if set
    let fd_limit = crate::raise_fd_limit();
    let backends = match args.backend {
        Some(backend) => {
            // Refused before anything is printed, as `run` refuses it.
            drop(crate::new_loop::<()>(&crate::cli::Common {
                trace: false,
                backend: Some(backend),
            }));
            vec![backend.backend()]
        }
        None => available_backends(),
    };
    let sizes = sizes_that_fit(fd_limit);
    match measure_all(args, &backends, &sizes, &mut io::stdout().lock()) {
        Ok(()) => 0,
        // A reader that went away (`| head`): stop quietly, as SIGPIPE would.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 128 + libc::SIGPIPE,
        Err(e) => {
            let _ = writeln!(io::stderr(), "poller: bench: {e}");
            1
        }
    }
}

/// Measures every row, printing each as it comes, then draws the chart.
fn measure_all(
    args: &BenchArgs,
    backends: &[Backend],
    sizes: &[usize],
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(
        out,
        "a byte passed between two pipes through EventLoop handlers, with N more pipes \
         registered and idle\n\
         (ns per event: median of {} runs; x N=1: how the cost grows with N)\n",
        runs(args.quick)
    )?;
    writeln!(
        out,
        "{:<8} {:>7} {:>12} {:>9}",
        "backend", "N", "ns/event", "x N=1"
    )?;
    let mut rows: Vec<Row> = Vec::new();
    for &backend in backends {
        for &idle in sizes {
            let ns = measure(backend, idle, args.quick).map_err(|e| {
                io::Error::new(e.kind(), format!("{backend} with {idle} pipes: {e}"))
            })?;
            let first = rows.iter().find(|r| r.backend == backend);
            let growth = ns / first.map_or(ns, |r| r.ns_per_event);
            writeln!(
                out,
                "{:<8} {idle:>7} {ns:>12.0} {growth:>9.2}",
                backend.to_string()
            )?;
            rows.push(Row {
                backend,
                idle,
                ns_per_event: ns,
            });
        }
    }
    if sizes.last() != SIZES.last() {
        let most = sizes.last().copied().unwrap_or(0);
        writeln!(
            out,
            "\n(the open-file limit allows {most} idle pipes at most here: 2 fds each)"
        )?;
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, plot(&rows)).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
        writeln!(out, "\nwrote {}", path.display())?;
    }
    Ok(())
}

/// The backends this system has, the kernel's own first.
fn available_backends() -> Vec<Backend> {
    [Backend::Epoll, Backend::Kqueue, Backend::Poll]
        .into_iter()
        .filter(|&b| EventLoop::<()>::with_backend(b).is_ok())
        .collect()
}

/// The sizes of SIZES that `fd_limit` open files allow (2 fds per pipe,
/// and some to spare), the last one cut to fit.
fn sizes_that_fit(fd_limit: usize) -> Vec<usize> {
    let fit = (fd_limit.saturating_sub(64) / 2).max(1);
    let mut sizes: Vec<usize> = SIZES.iter().map(|&n| n.min(fit)).collect();
    sizes.dedup();
    sizes
}

fn runs(quick: bool) -> usize {
    if quick { 3 } else { 7 }
}

/// The median ns per event over `runs` runs of `backend` with `idle` idle
/// pipes.
fn measure(backend: Backend, idle: usize, quick: bool) -> io::Result<f64> {
    let mut bench = PingPong::new(backend, idle)?;
    let round_trips = bench.calibrate(if quick { 20 } else { 150 })?;
    let mut times: Vec<f64> = (0..runs(quick))
        .map(|_| bench.time(round_trips))
        .collect::<io::Result<_>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The loop's data: the two senders the handlers write to, and the count.
struct Hops {
    to_a: Sender,
    to_b: Sender,
    events: u64,
    target: u64,
}

/// Two pipes, A and B, whose handlers pass a byte back and forth, and the
/// idle pipes (their senders kept open, so they never report anything).
struct PingPong {
    ev: EventLoop<Hops>,
    hops: Hops,
    _idle: Vec<Sender>,
}

impl PingPong {
    fn new(backend: Backend, idle: usize) -> io::Result<PingPong> {
        let mut ev = EventLoop::with_backend(backend)?;
        let (to_a, rx_a) = pipe::new()?;
        let (to_b, rx_b) = pipe::new()?;
        ev.insert(rx_a, Interest::READABLE, |cx, rx, _| hop(cx, rx, Side::B))?;
        ev.insert(rx_b, Interest::READABLE, |cx, rx, _| hop(cx, rx, Side::A))?;
        let mut senders = Vec::with_capacity(idle);
        for _ in 0..idle {
            let (tx, rx) = pipe::new()?;
            ev.insert(rx, Interest::READABLE, |_, _, _| Ok(Flow::Continue))?;
            senders.push(tx);
        }
        let hops = Hops {
            to_a,
            to_b,
            events: 0,
            target: 0,
        };
        Ok(PingPong {
            ev,
            hops,
            _idle: senders,
        })
    }

    /// Round trips that take about `ms` milliseconds.
    fn calibrate(&mut self, ms: u64) -> io::Result<u64> {
        let mut round_trips = 100;
        loop {
            let started = Instant::now();
            self.time(round_trips)?;
            let took = started.elapsed();
            if took >= Duration::from_millis(ms / 4) || round_trips >= 1 << 30 {
                let per = took.as_secs_f64() / round_trips as f64;
                return Ok(((ms as f64 / 1000.0) / per).max(100.0) as u64);
            }
            round_trips *= 4;
        }
    }

    /// Runs `round_trips` round trips; ns per event.
    fn time(&mut self, round_trips: u64) -> io::Result<f64> {
        self.hops.events = 0;
        self.hops.target = 2 * round_trips;
        let started = Instant::now();
        self.hops.to_a.write_all(b"x")?;
        self.ev.run(&mut self.hops)?;
        let took = started.elapsed();
        Ok(took.as_nanos() as f64 / self.hops.events as f64)
    }
}

#[derive(Clone, Copy)]
enum Side {
    A,
    B,
}

/// One hop: takes the byte from this pipe and passes it to the other one,
/// until the round trips are done.
///
/// The read asks for more than the one byte there is: a short read tells
/// the backend that the pipe is used up, as edge mode requires (a full
/// read would leave the pipe's next event held back on poll(2) and kqueue,
/// until a read reports it empty).
fn hop(cx: &mut Cx<'_, Hops>, rx: &mut Receiver, next: Side) -> io::Result<Flow> {
    let mut buf = [0; 16];
    match rx.read(&mut buf) {
        Ok(1) => {}
        Ok(_) => return Ok(Flow::Continue),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flow::Continue),
        Err(e) => return Err(e),
    }
    let hops = &mut *cx.data;
    hops.events += 1;
    if hops.events >= hops.target {
        cx.stop();
        return Ok(Flow::Continue);
    }
    match next {
        Side::A => hops.to_a.write_all(b"x")?,
        Side::B => hops.to_b.write_all(b"x")?,
    }
    Ok(Flow::Continue)
}

/// A chart of the rows: ns per event against N (log scale), one line per
/// backend, as a plain SVG document.
pub fn plot(rows: &[Row]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 400.0;
    const M: f64 = 60.0;
    let max_ns = rows.iter().map(|r| r.ns_per_event).fold(1.0, f64::max) * 1.1;
    let max_n = rows.iter().map(|r| r.idle).max().unwrap_or(10).max(10) as f64;
    let x = |n: usize| M + (n.max(1) as f64).log10() / max_n.log10() * (W - 2.0 * M);
    let y = |ns: f64| H - M - ns / max_ns * (H - 2.0 * M);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{M}\" y=\"24\" font-size=\"14\">ns per event, two busy pipes and N idle ones</text>\n\
         <line x1=\"{M}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{M}\" y1=\"{M}\" x2=\"{M}\" y2=\"{b}\" stroke=\"black\"/>\n",
        b = H - M,
        r = W - M,
    );
    let mut n = 1;
    while n as f64 <= max_n {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>\n",
            x(n),
            H - M + 18.0
        );
        n *= 10;
    }
    for tick in 0..=4 {
        let ns = max_ns * f64::from(tick) / 4.0;
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{ns:.0}</text>\n",
            M - 6.0,
            y(ns) + 4.0
        );
    }
    svg += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">N idle pipes (log scale)</text>\n",
        W / 2.0,
        H - 16.0
    );
    let colors = ["#1f77b4", "#d62728", "#2ca02c"];
    let mut backends: Vec<Backend> = rows.iter().map(|r| r.backend).collect();
    backends.dedup();
    for (i, backend) in backends.iter().enumerate() {
        let color = colors[i % colors.len()];
        let points: Vec<String> = rows
            .iter()
            .filter(|r| r.backend == *backend)
            .map(|r| format!("{:.1},{:.1}", x(r.idle), y(r.ns_per_event)))
            .collect();
        svg += &format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">{backend}</text>\n",
            points.join(" "),
            W - M - 80.0,
            M + 16.0 * i as f64 + 10.0,
        );
    }
    svg + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_pong_counts_every_event() {
        let mut bench = PingPong::new(Backend::Poll, 3).unwrap();
        let ns = bench.time(50).unwrap();
        assert_eq!(bench.hops.events, 100);
        assert!(ns > 0.0);
        // The loop can run again: the byte was consumed, none is left over.
        bench.time(10).unwrap();
        assert_eq!(bench.hops.events, 20);
    }

    #[test]
    fn the_plot_has_one_line_per_backend() {
        let rows: Vec<Row> = [Backend::Epoll, Backend::Poll]
            .into_iter()
            .flat_map(|backend| {
                SIZES.iter().map(move |&idle| Row {
                    backend,
                    idle,
                    ns_per_event: idle as f64,
                })
            })
            .collect();
        let svg = plot(&rows);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">epoll<") && svg.contains(">poll<"), "{svg}");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
