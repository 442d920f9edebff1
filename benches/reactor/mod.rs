//! The reactor benchmark's driver: arguments, calibration and interleaved
//! repetitions (as benches/driver.rs does for pingpong), and the cases.

mod dispatch;
mod lateness;
mod timers;

use std::io;
use std::process::ExitCode;
use std::time::Duration;

pub const CASES: [&str; 5] = ["dispatch", "dispatch-timer", "timers", "fill", "lateness"];

pub struct Args {
    pub quick: bool,
    only: Vec<String>,
    libs: Vec<String>,
    /// Fixed rounds (or pairs) per repetition; `None` calibrates to `target`.
    pub rounds: Option<u64>,
    pub reps: usize,
    pub target: Duration,
    pub warmup: Option<u64>,
    /// Live timers in the timers case.
    pub live: Vec<usize>,
    /// calloop's live timers at most: filling it is quadratic.
    pub calloop_max: usize,
    /// Timers the fill case inserts.
    pub fill: usize,
    /// Timers per row and delay in the lateness case.
    pub samples: usize,
}

const USAGE: &str = "usage: reactor [--quick] [--only dispatch,dispatch-timer,timers,fill,lateness] \
[--lib NAME,..] [--rounds R] [--reps R] [--target-ms T] [--warmup W] [--n N,..] \
[--calloop-max N] [--fill N] [--samples S] [--list]";

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        quick: false,
        only: Vec::new(),
        libs: Vec::new(),
        rounds: None,
        reps: 11,
        target: Duration::from_millis(50),
        warmup: None,
        live: vec![100, 10_000, 1_000_000],
        // 100,000 takes calloop ~10 s to fill on a 2-core VM (--calloop-max).
        calloop_max: 10_000,
        fill: 1_000_000,
        samples: 1_000,
    };
    let mut reps = None;
    let mut calloop_max = None;
    let mut samples = None;
    let mut it = std::env::args().skip(1);
    let list = |v: String| -> Vec<String> { v.split(',').map(str::to_owned).collect() };
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{v:?}: {e}"));
        match arg.as_str() {
            // `cargo bench` passes `--bench` to harness = false binaries.
            "--bench" => {}
            "--quick" => {
                args.quick = true;
                args.target = Duration::from_millis(2);
                reps = reps.or(Some(3));
                calloop_max = calloop_max.or(Some(1_000));
                samples = samples.or(Some(40));
            }
            "--only" => args.only.extend(list(value()?)),
            "--lib" => args.libs.extend(list(value()?)),
            "--rounds" => args.rounds = Some(number(value()?)?),
            "--reps" => reps = Some(number(value()?)? as usize),
            "--target-ms" => args.target = Duration::from_millis(number(value()?)?),
            "--warmup" => args.warmup = Some(number(value()?)?),
            "--n" => {
                args.live = list(value()?)
                    .into_iter()
                    .map(|v| number(v).map(|n| n as usize))
                    .collect::<Result<_, _>>()?
            }
            "--calloop-max" => calloop_max = Some(number(value()?)? as usize),
            "--fill" => args.fill = number(value()?)? as usize,
            "--samples" => samples = Some(number(value()?)? as usize),
            "--list" => {
                println!("cases: {}", CASES.join(", "));
                println!("dispatch libraries: {}", dispatch::NAMES.join(", "));
                println!("timers and fill libraries: {}", timers::NAMES.join(", "));
                println!("lateness rows: {}", lateness::NAMES.join(", "));
                return Ok(None);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    for case in &args.only {
        if !CASES.contains(&case.as_str()) {
            return Err(format!("unknown case {case:?} (expected one of {CASES:?})"));
        }
    }
    let known = |l: &String| {
        [
            &dispatch::NAMES[..],
            &timers::NAMES[..],
            &lateness::NAMES[..],
        ]
        .iter()
        .any(|names| names.contains(&l.as_str()))
    };
    if let Some(lib) = args.libs.iter().find(|l| !known(l)) {
        return Err(format!("unknown library {lib:?} (see --list)"));
    }
    args.reps = reps.unwrap_or(if args.rounds.is_some() { 1 } else { args.reps });
    args.calloop_max = calloop_max.unwrap_or(args.calloop_max);
    args.samples = samples.unwrap_or(args.samples);
    if args.reps == 0
        || args.rounds == Some(0)
        || args.live.contains(&0)
        || args.fill == 0
        || args.samples == 0
    {
        return Err("--reps, --rounds, --n, --fill and --samples must be at least 1".into());
    }
    Ok(Some(args))
}

impl Args {
    fn runs(&self, case: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|c| c == case)
    }

    pub fn wants(&self, name: &str) -> bool {
        self.libs.is_empty() || self.libs.iter().any(|l| l == name)
    }
}

/// Timing of one row: ns per operation, one value per repetition.
pub struct Timing {
    pub name: &'static str,
    pub ns: Vec<f64>,
    /// Operations and time over every repetition, for the mean.
    pub ops: u64,
    pub total: Duration,
}

impl Timing {
    pub fn median(&self) -> f64 {
        crate::stats::median(&self.ns)
    }

    pub fn min(&self) -> f64 {
        crate::stats::min(&self.ns)
    }

    pub fn max(&self) -> f64 {
        crate::stats::max(&self.ns)
    }

    /// Every operation of every repetition: what an occasional slow one
    /// (a rebuild) costs spread over all of them, which the median hides.
    pub fn mean(&self) -> f64 {
        self.total.as_nanos() as f64 / self.ops.max(1) as f64
    }
}

/// Runs `warmup` untimed operations, then `rounds` timed ones.
pub type RunFn<'a> = Box<dyn FnMut(u64, u64) -> io::Result<Duration> + 'a>;

/// Calibrates each runner to the target time (unless `--rounds`), then runs
/// the repetitions, rotating the order every repetition so that a busy
/// moment on the machine hits every row alike (as benches/driver.rs).
pub fn measure(
    args: &Args,
    mut runners: Vec<(&'static str, RunFn<'_>)>,
) -> io::Result<Vec<Timing>> {
    let mut plans = Vec::new();
    for (name, run) in &mut runners {
        let (rounds, warmup) = match args.rounds {
            Some(rounds) => (rounds, args.warmup.unwrap_or(1_000)),
            None => {
                let probe = 200;
                let took = run(50, probe)?;
                let per = took.as_secs_f64() / probe as f64;
                let rounds = (args.target.as_secs_f64() / per.max(1e-9)) as u64;
                let rounds = rounds.clamp(20, 10_000_000);
                (rounds, args.warmup.unwrap_or((rounds / 4).min(1_000)))
            }
        };
        eprintln!("  {name}: {rounds} rounds x {} reps", args.reps);
        plans.push((rounds, warmup));
    }
    let mut timings: Vec<Timing> = runners
        .iter()
        .map(|(name, _)| Timing {
            name,
            ns: Vec::new(),
            ops: 0,
            total: Duration::ZERO,
        })
        .collect();
    for rep in 0..args.reps {
        for j in 0..runners.len() {
            let i = (j + rep) % runners.len();
            let (rounds, warmup) = plans[i];
            let took = (runners[i].1)(warmup, rounds)?;
            timings[i].ns.push(took.as_nanos() as f64 / rounds as f64);
            timings[i].ops += rounds;
            timings[i].total += took;
        }
    }
    Ok(timings)
}

pub fn find<'a>(timings: &'a [Timing], name: &str) -> Option<&'a Timing> {
    timings.iter().find(|t| t.name == name)
}

pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "Linux {kernel} {}, {cpus} CPU(s) available",
        std::env::consts::ARCH
    )
}

fn run(args: &Args) -> io::Result<()> {
    println!("# pipeloop reactor benchmark\n");
    println!("- machine: {}", machine());
    match args.rounds {
        Some(r) => println!("- fixed {r} rounds, {} repetition(s)", args.reps),
        None => println!(
            "- {} repetitions of ~{} ms per row, interleaved; medians",
            args.reps,
            args.target.as_millis()
        ),
    }
    if args.runs("dispatch") {
        dispatch::run(args, false)?;
    }
    if args.runs("dispatch-timer") {
        dispatch::run(args, true)?;
    }
    if args.runs("timers") {
        timers::pairs(args)?;
    }
    if args.runs("fill") {
        timers::fill(args)?;
    }
    if args.runs("lateness") {
        lateness::run(args)?;
    }
    Ok(())
}

pub fn main() -> ExitCode {
    crate::stats::exit_code("reactor", parse_args(), run)
}
