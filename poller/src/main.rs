//! `poller`: run several commands at once and stream their output, on
//! pipeloop's reactor; or watch that reactor at work (`demo`, `bench`).
//!
//! ```text
//! poller run 'make web' 'make worker'        # prefixed lines from both
//! poller run -j 2 --fail-fast -- 'test a' 'test b' 'test c'
//! poller demo                                # what the loop does, and why
//! poller bench --plot backends.svg           # epoll against poll(2)
//! ```
//!
//! Bad arguments end with a message on stderr and status 2, before
//! anything starts.

mod bench;
mod cli;
mod demo;
mod output;
mod plan;
mod run;
mod trace;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use pipeloop::reactor::EventLoop;

use cli::{Cli, Color, Command, Common, RunArgs, usage_error};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Run(args) => run(args),
        Command::Demo(args) => demo::run(&args.common),
        Command::Bench(args) => bench::run(&args),
    };
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

fn run(args: RunArgs) -> i32 {
    let jobs = match &args.procfile {
        Some(path) => plan::from_procfile(path),
        None => plan::from_args(&args.commands, args.names.as_deref()),
    };
    let jobs = jobs.unwrap_or_else(|e| usage_error(e));
    let ev = new_loop(&args.common);
    trace::init(args.common.trace);
    raise_fd_limit(); // 200 commands at once need 600 fds
    let config = run::Config {
        parallel: args.jobs.unwrap_or(jobs.len()),
        jobs,
        fail_fast: args.fail_fast,
        restart: args.restart,
        max_restarts: args.max_restarts,
        kill_after: args.kill_after,
        timeout: args.timeout,
        quiet: args.quiet,
        color_out: colored(args.color, std::io::stdout().is_terminal()),
        color_err: colored(args.color, std::io::stderr().is_terminal()),
        timestamps: args.timestamps,
    };
    // An error of the loop itself was said on stderr already.
    run::run(ev, config).unwrap_or(1)
}

/// The loop on the backend asked for; one this system lacks is a usage
/// error, before anything starts.
pub fn new_loop<T>(common: &Common) -> EventLoop<T> {
    let made = match common.backend {
        Some(backend) => EventLoop::with_backend(backend.backend()),
        None => EventLoop::new(),
    };
    made.unwrap_or_else(|e| match common.backend {
        Some(backend) => usage_error(format!("backend {backend:?} is not available here: {e}")),
        None => {
            eprintln!("poller: cannot make an event loop: {e}");
            std::process::exit(1)
        }
    })
}

/// Whether names are coloured on a stream that is (or is not) a terminal.
/// A `NO_COLOR` that is set and not empty turns `auto` off; an empty one
/// counts as unset, as no-color.org says.
fn colored(color: Color, terminal: bool) -> bool {
    match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// Lets poller hold the pipes of a few hundred commands (three fds each):
/// the soft limit on open files (often 1,024) goes up towards the hard one,
/// to 65,536 at most, since the commands inherit it and some programs
/// close every fd up to it. Returns the soft limit it leaves (1,024 if it
/// cannot be read).
pub fn raise_fd_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    let wanted = limit.rlim_max.min(1 << 16);
    if wanted > limit.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            ..limit
        };
        // SAFETY: setrlimit reads the struct it is given. A refusal leaves
        // the old limit, which is only tighter.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}
