//! What the benchmark programs (pingpong, reactor, signals) share: measuring
//! rows side by side (calibration, interleaved repetitions), the summary
//! statistics (nanoseconds per operation, one value per repetition), the
//! tables' ratios, the machine line, and how a run ends.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

/// How many operations each row times, and how often.
pub struct Plan {
    /// Fixed number of timed rounds per repetition; `None` calibrates each
    /// row to `target`.
    pub rounds: Option<u64>,
    /// Untimed rounds before each repetition; `None`: 1,000 with fixed
    /// rounds, else a quarter of the calibrated rounds, at most 1,000.
    pub warmup: Option<u64>,
    /// Time per repetition per row when calibrating.
    pub target: Duration,
    /// Repetitions of every row.
    pub reps: usize,
}

/// Calibration gives a row at least this many rounds, however slow it is,
/// and at most `MAX_ROUNDS`, however fast.
const MIN_ROUNDS: u64 = 100;
const MAX_ROUNDS: u64 = 10_000_000;

/// Runs `warmup` untimed operations, then `rounds` timed ones, and returns
/// the time the timed ones took.
pub type RunFn<'a> = Box<dyn FnMut(u64, u64) -> io::Result<Duration> + 'a>;

/// One row to measure.
pub struct Runner<'a> {
    pub name: &'static str,
    /// How the row does its work, for the tables that have a column for it.
    pub idiom: Option<&'static str>,
    pub run: RunFn<'a>,
}

impl<'a> Runner<'a> {
    pub fn new(name: &'static str, run: impl FnMut(u64, u64) -> io::Result<Duration> + 'a) -> Self {
        Runner {
            name,
            idiom: None,
            run: Box::new(run),
        }
    }

    pub fn with_idiom(self, idiom: &'static str) -> Self {
        Runner {
            idiom: Some(idiom),
            ..self
        }
    }
}

/// Timing of one row: ns per operation, one value per repetition.
pub struct Timing {
    pub name: &'static str,
    pub idiom: Option<&'static str>,
    pub ns: Vec<f64>,
    /// Operations and time over every repetition, for the mean.
    pub ops: u64,
    pub total: Duration,
}

impl Timing {
    pub fn median(&self) -> f64 {
        median(&self.ns)
    }

    pub fn min(&self) -> f64 {
        min(&self.ns)
    }

    pub fn max(&self) -> f64 {
        max(&self.ns)
    }

    /// Every operation of every repetition: what an occasional slow one
    /// (a rebuild) costs spread over all of them, which the median hides.
    pub fn mean(&self) -> f64 {
        self.total.as_nanos() as f64 / self.ops.max(1) as f64
    }
}

/// Calibrates each runner to the plan's target time (unless it fixes the
/// rounds), then runs the repetitions, rotating the order every repetition
/// so that a busy moment on the machine hits every row alike.
pub fn measure(plan: &Plan, mut runners: Vec<Runner<'_>>) -> io::Result<Vec<Timing>> {
    let mut counts = Vec::new();
    for runner in &mut runners {
        let (rounds, warmup) = match plan.rounds {
            Some(rounds) => (rounds, plan.warmup.unwrap_or(1_000)),
            None => {
                let probe = 200;
                let took = (runner.run)(50, probe)?;
                let per = took.as_secs_f64() / probe as f64;
                let rounds = (plan.target.as_secs_f64() / per.max(1e-9)) as u64;
                let rounds = rounds.clamp(MIN_ROUNDS, MAX_ROUNDS);
                (rounds, plan.warmup.unwrap_or((rounds / 4).min(1_000)))
            }
        };
        eprintln!("  {}: {rounds} rounds x {} reps", runner.name, plan.reps);
        counts.push((rounds, warmup));
    }
    let mut timings: Vec<Timing> = runners
        .iter()
        .map(|runner| Timing {
            name: runner.name,
            idiom: runner.idiom,
            ns: Vec::with_capacity(plan.reps),
            ops: 0,
            total: Duration::ZERO,
        })
        .collect();
    for rep in 0..plan.reps {
        for j in 0..runners.len() {
            let i = (j + rep) % runners.len();
            let (rounds, warmup) = counts[i];
            let took = (runners[i].run)(warmup, rounds)?;
            timings[i].ns.push(took.as_nanos() as f64 / rounds as f64);
            timings[i].ops += rounds;
            timings[i].total += took;
        }
    }
    Ok(timings)
}

/// The row called `name`, if it ran.
pub fn find<'a>(timings: &'a [Timing], name: &str) -> Option<&'a Timing> {
    timings.iter().find(|t| t.name == name)
}

/// `a ÷ b` to two decimals, or `-` when either is missing (or `b` is 0).
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// The kernel, its release, the architecture and the CPUs available, as
/// `uname` gives them.
pub fn machine() -> String {
    // SAFETY: utsname is plain data; all-zero is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid utsname to fill.
    let kernel = if unsafe { libc::uname(&mut uts) } == 0 {
        let field = |f: &[libc::c_char]| {
            let bytes: Vec<u8> = f
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        format!(
            "{} {} {}",
            field(&uts.sysname),
            field(&uts.release),
            field(&uts.machine)
        )
    } else {
        "unknown kernel".into()
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{kernel}, {cpus} CPU(s) available")
}

pub fn median(ns: &[f64]) -> f64 {
    let mut v = ns.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

pub fn min(ns: &[f64]) -> f64 {
    ns.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn max(ns: &[f64]) -> f64 {
    ns.iter().copied().fold(0.0, f64::max)
}

/// Ends a benchmark program: 2 for bad arguments (already explained by
/// `parsed`'s error), 0 after `--list` or `--help` (`Ok(None)`) or a good
/// run, 1 when a run failed (a wrong result is a failure, not a timing).
pub fn exit_code<A>(
    program: &str,
    parsed: Result<Option<A>, String>,
    run: impl FnOnce(&A) -> io::Result<()>,
) -> ExitCode {
    let args = match parsed {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}
