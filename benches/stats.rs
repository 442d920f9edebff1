//! What the benchmark programs (pingpong, reactor, signals) share: the
//! options they all take, measuring rows side by side (calibration,
//! interleaved repetitions), the summary statistics (nanoseconds per
//! operation, one value per repetition), the tables' ratios, the machine
//! line, and how a run ends.

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

impl Default for Plan {
    /// 11 repetitions of ~50 ms per row, calibrated.
    fn default() -> Self {
        Plan {
            rounds: None,
            warmup: None,
            target: Duration::from_millis(50),
            reps: 11,
        }
    }
}

impl Plan {
    /// The plan as a line of a report's header: the fixed rounds, or the
    /// repetitions and their target time, followed by `calibrated`.
    pub fn header(&self, calibrated: &str) -> String {
        match self.rounds {
            Some(r) => format!("- fixed {r} rounds, {} repetition(s)", self.reps),
            None => format!(
                "- {} repetitions of ~{} ms {calibrated}",
                self.reps,
                self.target.as_millis()
            ),
        }
    }
}

/// A benchmark program's command line, read one option at a time. It takes
/// what every program accepts itself: `--bench` (which `cargo bench` passes
/// to harness = false programs), `-h` or `--help` (prints the usage),
/// `--list` (calls the program's `list`), and the plan's `--rounds R`,
/// `--reps R`, `--target-ms T` and `--warmup W`.
pub struct CommandLine {
    usage: &'static str,
    list: fn(),
    args: std::iter::Skip<std::env::Args>,
    plan: Plan,
    /// `--reps`, or `--quick`'s if `--reps` has not said.
    reps: Option<usize>,
    /// After `--help` or `--list`: nothing to run.
    done: bool,
}

impl CommandLine {
    pub fn new(usage: &'static str, list: fn()) -> Self {
        CommandLine {
            usage,
            list,
            args: std::env::args().skip(1),
            plan: Plan::default(),
            reps: None,
            done: false,
        }
    }

    /// The next option the program takes itself; `None` at the end, and
    /// after `--help` or `--list`.
    pub fn next_option(&mut self) -> Result<Option<String>, String> {
        while let Some(arg) = self.args.next() {
            match arg.as_str() {
                "--bench" => {}
                "-h" | "--help" => {
                    println!("{}", self.usage);
                    self.done = true;
                    return Ok(None);
                }
                "--list" => {
                    (self.list)();
                    self.done = true;
                    return Ok(None);
                }
                "--rounds" => self.plan.rounds = Some(self.number(&arg)?),
                "--reps" => self.reps = Some(self.number(&arg)? as usize),
                "--target-ms" => self.plan.target = Duration::from_millis(self.number(&arg)?),
                "--warmup" => self.plan.warmup = Some(self.number(&arg)?),
                _ => return Ok(Some(arg)),
            }
        }
        Ok(None)
    }

    /// `--quick`: ~`target` per repetition, and 3 repetitions unless
    /// `--reps` says otherwise (before or after it).
    pub fn quick(&mut self, target: Duration) {
        self.plan.target = target;
        self.reps = self.reps.or(Some(3));
    }

    /// The value that follows the option `arg`.
    fn value(&mut self, arg: &str) -> Result<String, String> {
        self.args
            .next()
            .ok_or(format!("{arg} needs a value\n{}", self.usage))
    }

    pub fn number(&mut self, arg: &str) -> Result<u64, String> {
        number(self.value(arg)?)
    }

    /// A comma-separated value.
    pub fn list(&mut self, arg: &str) -> Result<Vec<String>, String> {
        Ok(self.value(arg)?.split(',').map(str::to_owned).collect())
    }

    /// A comma-separated list of numbers.
    pub fn numbers(&mut self, arg: &str) -> Result<Vec<usize>, String> {
        self.list(arg)?
            .into_iter()
            .map(|v| number(v).map(|n| n as usize))
            .collect()
    }

    /// The error for an option that no one takes.
    pub fn unknown(&self, arg: &str) -> String {
        format!("unknown argument {arg:?}\n{}", self.usage)
    }

    /// The plan the options gave (with fixed `--rounds`, one repetition
    /// unless `--reps` or `--quick` says otherwise); `None` after `--help`
    /// or `--list`.
    pub fn plan(self) -> Option<Plan> {
        if self.done {
            return None;
        }
        let plan = self.plan;
        let fixed = plan.rounds.is_some();
        let reps = self.reps.unwrap_or(if fixed { 1 } else { plan.reps });
        Some(Plan { reps, ..plan })
    }
}

/// The cases (`--only`) or libraries (`--lib`) a run was asked for; none
/// asked for means all of them.
#[derive(Default)]
pub struct Chosen(Vec<String>);

impl Chosen {
    pub fn extend(&mut self, names: Vec<String>) {
        self.0.extend(names);
    }

    pub fn includes(&self, name: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|n| n == name)
    }

    /// Those of `names` that were asked for, in their order.
    pub fn pick(&self, names: &[&'static str]) -> Vec<&'static str> {
        names.iter().copied().filter(|n| self.includes(n)).collect()
    }

    /// An error for the first of them that is not one of `cases`.
    pub fn check_cases(&self, cases: &[&str]) -> Result<(), String> {
        match self.0.iter().find(|c| !cases.contains(&c.as_str())) {
            Some(case) => Err(format!("unknown case {case:?} (expected one of {cases:?})")),
            None => Ok(()),
        }
    }

    /// An error for the first of them that `known` does not know.
    pub fn check_libraries(&self, known: impl Fn(&str) -> bool) -> Result<(), String> {
        match self.0.iter().find(|l| !known(l)) {
            Some(lib) => Err(format!("unknown library {lib:?} (see --list)")),
            None => Ok(()),
        }
    }
}

fn number(v: String) -> Result<u64, String> {
    v.parse::<u64>().map_err(|e| format!("{v:?}: {e}"))
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
