//! The reactor benchmark's driver: arguments and the cases (stats.rs
//! measures the rows, as for pingpong).

mod dispatch;
mod lateness;
mod timers;

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use crate::stats::{Plan, machine};

pub const CASES: [&str; 5] = ["dispatch", "dispatch-timer", "timers", "fill", "lateness"];

pub struct Args {
    pub quick: bool,
    only: Vec<String>,
    libs: Vec<String>,
    /// Rounds (or pairs) per repetition, and repetitions.
    pub plan: Plan,
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
        plan: Plan {
            rounds: None,
            warmup: None,
            target: Duration::from_millis(50),
            reps: 11,
        },
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
                args.plan.target = Duration::from_millis(2);
                reps = reps.or(Some(3));
                calloop_max = calloop_max.or(Some(1_000));
                samples = samples.or(Some(40));
            }
            "--only" => args.only.extend(list(value()?)),
            "--lib" => args.libs.extend(list(value()?)),
            "--rounds" => args.plan.rounds = Some(number(value()?)?),
            "--reps" => reps = Some(number(value()?)? as usize),
            "--target-ms" => args.plan.target = Duration::from_millis(number(value()?)?),
            "--warmup" => args.plan.warmup = Some(number(value()?)?),
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
    let plan = &mut args.plan;
    plan.reps = reps.unwrap_or(if plan.rounds.is_some() { 1 } else { plan.reps });
    args.calloop_max = calloop_max.unwrap_or(args.calloop_max);
    args.samples = samples.unwrap_or(args.samples);
    if plan.reps == 0
        || plan.rounds == Some(0)
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

fn run(args: &Args) -> io::Result<()> {
    println!("# pipeloop reactor benchmark\n");
    println!("- machine: {}", machine());
    match args.plan.rounds {
        Some(r) => println!("- fixed {r} rounds, {} repetition(s)", args.plan.reps),
        None => println!(
            "- {} repetitions of ~{} ms per row, interleaved; medians",
            args.plan.reps,
            args.plan.target.as_millis()
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
