//! Timers: an insert + remove pair of a far timer in a loop already holding
//! N live timers, pipeloop's `EventLoop` against calloop's `Timer` source;
//! and filling a loop with timers.
//!
//! Both libraries get the same deadlines, from the same pseudo-random
//! sequence: the live timers spread over N ms an hour from the start, each
//! pair's timer somewhere in the same span, so that neither queue sees only
//! insertions at its end. Deadlines are instants (`Timer::at`,
//! `Timer::from_deadline`) fixed when the loop is filled, not delays from
//! now: where a timer lands in the queue then does not depend on how fast
//! the run goes, and callgrind's counts repeat.

use std::io;
use std::time::{Duration, Instant};

use pipeloop::reactor::{EventLoop, Flow, Key, Timer};

use super::{Args, thousands};
use crate::competitors::check;
use crate::stats::{Runner, Timing, find, measure, ratio};

pub const NAMES: [&str; 2] = ["pipeloop", "calloop"];

/// How far away every timer is: none fires during the benchmark.
const FAR: Duration = Duration::from_secs(3600);

/// The deadlines, from xorshift64: the same for both libraries, no
/// dependency.
struct Deadlines {
    base: Instant,
    state: u64,
    span_us: u64,
}

impl Deadlines {
    fn new(live: usize) -> Deadlines {
        Deadlines {
            base: Instant::now() + FAR,
            state: 0x9e37_79b9_7f4a_7c15,
            span_us: live as u64 * 1_000,
        }
    }

    #[inline]
    fn next(&mut self) -> Instant {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        self.base + Duration::from_micros(x % self.span_us)
    }
}

/// One library's loop with its live timers.
trait Timers {
    /// A loop holding `live` timers, at the next `live` deadlines.
    fn filled(live: usize, deadlines: &mut Deadlines) -> io::Result<Self>
    where
        Self: Sized;
    /// Inserts one timer at `deadline` and removes it again.
    fn pair(&mut self, deadline: Instant) -> io::Result<()>;
}

struct Pipeloop {
    ev: EventLoop<()>,
}

impl Pipeloop {
    #[inline]
    fn insert(ev: &mut EventLoop<()>, deadline: Instant) -> io::Result<Key> {
        ev.insert_timer(Timer::at(deadline), |_| Ok(Flow::Continue))
    }
}

impl Timers for Pipeloop {
    fn filled(live: usize, deadlines: &mut Deadlines) -> io::Result<Pipeloop> {
        let mut ev = EventLoop::new()?;
        for _ in 0..live {
            Pipeloop::insert(&mut ev, deadlines.next())?;
        }
        // One turn, as a loop that runs would have had.
        ev.run_once(&mut (), Some(Duration::ZERO))?;
        Ok(Pipeloop { ev })
    }

    #[inline]
    fn pair(&mut self, deadline: Instant) -> io::Result<()> {
        let key = Pipeloop::insert(&mut self.ev, deadline)?;
        check(self.ev.remove(key), "pipeloop: remove")
    }
}

struct Calloop {
    handle: calloop::LoopHandle<'static, ()>,
    /// Kept alive: nothing fires, so it is never dispatched again.
    _ev: calloop::EventLoop<'static, ()>,
}

impl Calloop {
    #[inline]
    fn insert(
        handle: &calloop::LoopHandle<'static, ()>,
        deadline: Instant,
    ) -> io::Result<calloop::RegistrationToken> {
        use calloop::timer::{TimeoutAction, Timer};
        handle
            .insert_source(Timer::from_deadline(deadline), |_, _, _| {
                TimeoutAction::Drop
            })
            .map_err(|e| io::Error::other(e.error))
    }
}

impl Timers for Calloop {
    fn filled(live: usize, deadlines: &mut Deadlines) -> io::Result<Calloop> {
        let mut ev = calloop::EventLoop::try_new().map_err(io::Error::other)?;
        let handle = ev.handle();
        for _ in 0..live {
            Calloop::insert(&handle, deadlines.next())?;
        }
        ev.dispatch(Some(Duration::ZERO), &mut ())
            .map_err(io::Error::other)?;
        Ok(Calloop { handle, _ev: ev })
    }

    #[inline]
    fn pair(&mut self, deadline: Instant) -> io::Result<()> {
        let token = Calloop::insert(&self.handle, deadline)?;
        self.handle.remove(token);
        Ok(())
    }
}

/// `warmup` then `rounds` timed pairs on `state`, each at the next deadline.
fn pairs_on(
    state: &mut impl Timers,
    deadlines: &mut Deadlines,
    warmup: u64,
    rounds: u64,
) -> io::Result<Duration> {
    for _ in 0..warmup {
        state.pair(deadlines.next())?;
    }
    let start = Instant::now();
    for _ in 0..rounds {
        state.pair(deadlines.next())?;
    }
    Ok(start.elapsed())
}

/// The timers case: for each N, both loops filled once, then interleaved
/// repetitions of pairs.
pub fn pairs(args: &Args) -> io::Result<()> {
    let pipeloop = args.libs.includes("pipeloop");
    let calloop = args.libs.includes("calloop");
    if !pipeloop && !calloop {
        return Ok(());
    }
    let mut rows: Vec<(usize, usize, Vec<Timing>)> = Vec::new();
    for &live in &args.live {
        let calloop_live = live.min(args.calloop_max);
        eprintln!(
            "timers N={live}: filling (calloop: {})",
            thousands(calloop_live)
        );
        let mut runners = Vec::new();
        if pipeloop {
            // The pairs' deadlines follow on from the fill's.
            let mut deadlines = Deadlines::new(live);
            let mut state = Pipeloop::filled(live, &mut deadlines)?;
            runners.push(Runner::new("pipeloop", move |w, r| {
                pairs_on(&mut state, &mut deadlines, w, r)
            }));
        }
        if calloop {
            let mut deadlines = Deadlines::new(calloop_live);
            let mut state = Calloop::filled(calloop_live, &mut deadlines)?;
            runners.push(Runner::new("calloop", move |w, r| {
                pairs_on(&mut state, &mut deadlines, w, r)
            }));
        }
        rows.push((live, calloop_live, measure(&args.plan, runners)?));
    }
    println!(
        "\n## timers: insert + remove of a timer ~1 h away (`Timer::at`, `Timer::from_deadline`), N timers live (ns per pair)\n"
    );
    println!(
        "Median of the repetitions, min and max; \"all pairs\" is the total time over every \
         pair of every repetition, which shows what an occasional slow pair (a rebuild, a \
         vector growing) costs spread over all of them: the median hides it."
    );
    if calloop && rows.iter().any(|(live, cl, _)| live != cl) {
        println!(
            "\n**calloop's live timers are capped at {}** (`--calloop-max`): its remove \
             searches the whole heap and filling it is quadratic. Its rows at a larger N are \
             measured at the cap, and no ratio is given for them.",
            thousands(args.calloop_max)
        );
    }
    println!(
        "\n| N live | pipeloop median | min | max | all pairs | calloop N | calloop median | min | max | calloop ÷ pipeloop |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (live, calloop_live, t) in &rows {
        let cells = |name| match find(t, name) {
            Some(t) => format!("{:.0} | {:.0} | {:.0}", t.median(), t.min(), t.max()),
            None => "- | - | -".into(),
        };
        let p = find(t, "pipeloop");
        let c = find(t, "calloop");
        // calloop ÷ pipeloop: pipeloop ÷ calloop rounds to 0.00 at N = 10,000.
        let r = if live == calloop_live {
            ratio(c.map(Timing::median), p.map(Timing::median))
        } else {
            "-".into()
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            thousands(*live),
            cells("pipeloop"),
            p.map_or("-".into(), |p| format!("{:.0}", p.mean())),
            if c.is_some() {
                thousands(*calloop_live)
            } else {
                "-".into()
            },
            cells("calloop"),
            r
        );
    }
    if let Some((live, _, t)) = rows.iter().max_by_key(|(live, _, _)| *live) {
        if let Some(p) = find(t, "pipeloop") {
            println!(
                "\npipeloop at N = {} (goal: under 100 ns per pair): median {:.0}, all pairs {:.0}",
                thousands(*live),
                p.median(),
                p.mean()
            );
        }
    }
    Ok(())
}

/// Times filling a fresh loop with `n` timers, and dropping it.
fn fill_once<S: Timers>(n: usize) -> io::Result<(Duration, Duration)> {
    let mut deadlines = Deadlines::new(n);
    let start = Instant::now();
    let state = S::filled(n, &mut deadlines)?;
    let filled = start.elapsed();
    let start = Instant::now();
    drop(state);
    Ok((filled, start.elapsed()))
}

/// The fill case: pipeloop filling `--fill` timers; both libraries filling
/// calloop's cap, for scale.
pub fn fill(args: &Args) -> io::Result<()> {
    let reps = if args.quick { 1 } else { args.plan.reps.min(5) };
    let mut sizes = vec![args.fill];
    if args.calloop_max < args.fill {
        sizes.push(args.calloop_max);
    }
    println!("\n## fill: insert N timers ~1 h away into a fresh loop (median of {reps})\n");
    println!("| row | N | fill, ms | ns per timer | drop, ms |");
    println!("|---|---:|---:|---:|---:|");
    for &n in &sizes {
        for name in NAMES {
            if !args.libs.includes(name) || (name == "calloop" && n > args.calloop_max) {
                continue;
            }
            eprintln!("fill: {name} N={n}");
            let mut filled = Vec::new();
            let mut dropped = Vec::new();
            for _ in 0..reps {
                let (f, d) = match name {
                    "pipeloop" => fill_once::<Pipeloop>(n)?,
                    _ => fill_once::<Calloop>(n)?,
                };
                filled.push(f.as_secs_f64() * 1e3);
                dropped.push(d.as_secs_f64() * 1e3);
            }
            let f = crate::stats::median(&filled);
            println!(
                "| {name} | {} | {:.1} | {:.0} | {:.1} |",
                thousands(n),
                f,
                f * 1e6 / n as f64,
                crate::stats::median(&dropped)
            );
        }
    }
    if args.calloop_max < args.fill && args.libs.includes("calloop") {
        println!(
            "\n(calloop is not filled with {}: it would take minutes; see --calloop-max.)",
            thousands(args.fill)
        );
    }
    Ok(())
}
