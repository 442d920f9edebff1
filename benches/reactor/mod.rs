//! The reactor benchmark's driver: arguments and the cases (stats.rs
//! measures the rows, as for pingpong).

mod dispatch;
mod lateness;
mod timers;

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use crate::stats::{Chosen, CommandLine, Plan, machine};

pub const CASES: [&str; 5] = ["dispatch", "dispatch-timer", "timers", "fill", "lateness"];

pub struct Args {
    pub quick: bool,
    only: Chosen,
    libs: Chosen,
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

fn list() {
    println!("cases: {}", CASES.join(", "));
    println!("dispatch libraries: {}", dispatch::NAMES.join(", "));
    println!("timers and fill libraries: {}", timers::NAMES.join(", "));
    println!("lateness rows: {}", lateness::NAMES.join(", "));
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        quick: false,
        only: Chosen::default(),
        libs: Chosen::default(),
        plan: Plan::default(),
        live: vec![100, 10_000, 1_000_000],
        // 100,000 takes calloop ~10 s to fill on a 2-core VM (--calloop-max).
        calloop_max: 10_000,
        fill: 1_000_000,
        samples: 1_000,
    };
    let mut calloop_max = None;
    let mut samples = None;
    let mut line = CommandLine::new(USAGE, list);
    while let Some(arg) = line.next_option()? {
        match arg.as_str() {
            "--quick" => {
                args.quick = true;
                line.quick(Duration::from_millis(2));
                calloop_max = calloop_max.or(Some(1_000));
                samples = samples.or(Some(40));
            }
            "--only" => args.only.extend(line.list(&arg)?),
            "--lib" => args.libs.extend(line.list(&arg)?),
            "--n" => args.live = line.numbers(&arg)?,
            "--calloop-max" => calloop_max = Some(line.number(&arg)? as usize),
            "--fill" => args.fill = line.number(&arg)? as usize,
            "--samples" => samples = Some(line.number(&arg)? as usize),
            other => return Err(line.unknown(other)),
        }
    }
    let Some(plan) = line.plan() else {
        return Ok(None);
    };
    args.plan = plan;
    args.only.check_cases(&CASES)?;
    let rows = [
        &dispatch::NAMES[..],
        &timers::NAMES[..],
        &lateness::NAMES[..],
    ];
    args.libs
        .check_libraries(|l| rows.iter().any(|names| names.contains(&l)))?;
    args.calloop_max = calloop_max.unwrap_or(args.calloop_max);
    args.samples = samples.unwrap_or(args.samples);
    if args.plan.reps == 0
        || args.plan.rounds == Some(0)
        || args.live.contains(&0)
        || args.fill == 0
        || args.samples == 0
    {
        return Err("--reps, --rounds, --n, --fill and --samples must be at least 1".into());
    }
    Ok(Some(args))
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
    println!("{}", args.plan.header("per row, interleaved; medians"));
    if args.only.includes("dispatch") {
        dispatch::run(args, false)?;
    }
    if args.only.includes("dispatch-timer") {
        dispatch::run(args, true)?;
    }
    if args.only.includes("timers") {
        timers::pairs(args)?;
    }
    if args.only.includes("fill") {
        timers::fill(args)?;
    }
    if args.only.includes("lateness") {
        lateness::run(args)?;
    }
    Ok(())
}

pub fn main() -> ExitCode {
    crate::stats::exit_code("reactor", parse_args(), run)
}
