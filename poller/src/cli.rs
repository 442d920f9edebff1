//! The command line: subcommands, options and the parsers of their values.
//!
//! clap reports what it can see on its own (an unknown option or subcommand,
//! a value that does not parse); what needs several options at once (no
//! command, `--names` of the wrong length, a Procfile) is checked in
//! [`crate::plan`], through [`usage_error`], so that every bad input ends
//! the same way: a short message on stderr, nothing on stdout, status 2.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Run several commands at once and stream their output, on pipeloop's
/// reactor; or watch that reactor work (`demo`, `bench`).
#[derive(Debug, Parser)]
#[command(name = "poller", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run commands at once, each line of their output prefixed with the
    /// command's name.
    Run(RunArgs),
    /// Start a few children, a timer, a message from another thread and a
    /// signal, and explain what the loop does with each (about 1.3 seconds).
    Demo(DemoArgs),
    /// Compare this machine's backends: a byte passed between two pipes,
    /// with N more pipes registered and idle.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The commands, each one argument, run with `sh -c`.
    #[arg(value_name = "CMD")]
    pub commands: Vec<String>,

    /// Names for the commands, comma-separated, one per command (default:
    /// each command's first word, with #2, #3 added to repeats).
    #[arg(short, long, value_name = "A,B,..", value_delimiter = ',')]
    pub names: Option<Vec<String>>,

    /// Run the `name: command` lines of a Procfile instead of CMD
    /// arguments.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["commands", "names"])]
    pub procfile: Option<PathBuf>,

    /// Run at most N commands at once; the rest start in order as slots
    /// free up (a command waiting to restart keeps its slot).
    #[arg(short, long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,

    /// Stop the other commands at the first failure.
    #[arg(long)]
    pub fail_fast: bool,

    /// When to start a command again after it exits (after 100 ms, then
    /// twice as long each time, 10 s at most).
    #[arg(long, value_enum, default_value_t = Restart::Never, value_name = "WHEN")]
    pub restart: Restart,

    /// Restarts per command at most (N restarts: at most N+1 runs).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_restarts: u32,

    /// How long commands get to finish, once told to stop, before SIGKILL:
    /// after the SIGINT, SIGTERM, SIGHUP or SIGQUIT poller got and
    /// forwarded, or the SIGTERM of --timeout, --fail-fast or a failed
    /// write of poller's own output.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DUR")]
    pub kill_after: Duration,

    /// A deadline for the whole run; then the commands are stopped and
    /// poller exits 124.
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub timeout: Option<Duration>,

    /// No summary at the end, no restart announcements.
    #[arg(short, long)]
    pub quiet: bool,

    /// Colour each name (auto: on a terminal, unless NO_COLOR is set and not
    /// empty).
    #[arg(long, value_enum, default_value_t = Color::Auto, value_name = "WHEN")]
    pub color: Color,

    /// Print HH:MM:SS.mmm (local time) before each name.
    #[arg(long)]
    pub timestamps: bool,

    #[command(flatten)]
    pub common: Common,
}

/// Options every subcommand that runs a loop takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Show every readiness event, timer, signal and child exit the
    /// reactor handles, with timestamps, on stderr.
    #[arg(long)]
    pub trace: bool,

    /// The readiness backend (default: the one PIPELOOP_BACKEND names, else
    /// epoll on Linux, kqueue on macOS and the BSDs, poll elsewhere).
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub backend: Option<BackendArg>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Also draw the results as an SVG chart into FILE.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// A short run (a second or two), for smoke tests.
    #[arg(long)]
    pub quick: bool,

    /// Only this backend (default: every backend this machine has).
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub backend: Option<BackendArg>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Restart {
    /// Never.
    Never,
    /// After a failure (exit status other than 0).
    OnFailure,
    /// After every exit.
    Always,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Epoll,
    Kqueue,
    Poll,
}

impl BackendArg {
    pub fn backend(self) -> pipeloop::Backend {
        match self {
            BackendArg::Epoll => pipeloop::Backend::Epoll,
            BackendArg::Kqueue => pipeloop::Backend::Kqueue,
            BackendArg::Poll => pipeloop::Backend::Poll,
        }
    }
}

/// Ends the program as clap ends it for a bad argument: `message` on stderr
/// with the usage line, status 2.
pub fn usage_error(message: impl std::fmt::Display) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `500ms`, `5s`, `2m`, or a bare number of seconds (fractions allowed).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => s.split_at(at),
        None => (s, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (use ms, s or m)")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (500ms, 5s, 2m or seconds)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_each_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn malformed_durations_are_refused() {
        for bad in ["", "s", "5x", "five", "1.2.3s", "-1s", "5 s", "1e999"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
