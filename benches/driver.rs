//! The benchmark's driver: arguments, the cases and their tables (stats.rs
//! measures the rows). Linux only (the raw baselines use epoll directly);
//! see pingpong.rs.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use crate::competitors::{Active, PipeLib, WakerLib, with_mio, with_polling};
use crate::stats::{Chosen, CommandLine, Plan, Runner, Timing, find, machine, measure, ratio};

const CASES: [&str; 5] = [
    "pingpong",
    "pingpong-timeout",
    "idle",
    "idle-fixed",
    "waker",
];
/// The timeout every library passes in the pingpong-timeout case: long
/// enough never to expire, as in a loop that also runs timers.
const PINGPONG_TIMEOUT: Duration = Duration::from_secs(1);
const IDLE_N: [usize; 4] = [1, 100, 1_000, 10_000];

struct Args {
    only: Chosen,
    libs: Chosen,
    idle_n: Vec<usize>,
    plan: Plan,
}

const USAGE: &str = "usage: pingpong [--quick] [--only pingpong,pingpong-timeout,idle,idle-fixed,waker] [--lib NAME,..] \
[--n N,..] [--rounds R] [--reps R] [--target-ms T] [--warmup W] [--list]";

fn list() {
    println!("cases: {}", CASES.join(", "));
    let pipes: Vec<_> = PipeLib::ALL.iter().map(|l| l.name()).collect();
    let idle: Vec<_> = PipeLib::IDLE.iter().map(|l| l.name()).collect();
    let wakers: Vec<_> = WakerLib::ALL.iter().map(|l| l.name()).collect();
    println!("pingpong libraries: {}", pipes.join(", "));
    println!("idle libraries: {}", idle.join(", "));
    println!("waker libraries: {}", wakers.join(", "));
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        only: Chosen::default(),
        libs: Chosen::default(),
        idle_n: IDLE_N.to_vec(),
        plan: Plan::default(),
    };
    let mut line = CommandLine::new(USAGE, list);
    while let Some(arg) = line.next_option()? {
        match arg.as_str() {
            "--quick" => line.quick(Duration::from_millis(2)),
            "--only" => args.only.extend(line.list(&arg)?),
            "--lib" => args.libs.extend(line.list(&arg)?),
            "--n" => args.idle_n = line.numbers(&arg)?,
            other => return Err(line.unknown(other)),
        }
    }
    let Some(plan) = line.plan() else {
        return Ok(None);
    };
    args.plan = plan;
    args.only.check_cases(&CASES)?;
    args.libs
        .check_libraries(|l| PipeLib::from_name(l).is_some() || WakerLib::from_name(l).is_some())?;
    if args.plan.reps == 0 || args.idle_n.contains(&0) || args.plan.rounds == Some(0) {
        return Err("--reps, --n and --rounds must be at least 1".into());
    }
    Ok(Some(args))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (and, if that is below
/// what the largest idle case needs, tries to raise the hard limit too,
/// which root may). Returns how many pipes fit.
fn raise_fd_limit(wanted_pipes: usize) -> io::Result<(usize, String)> {
    // Fds besides the pipes: stdio, the poller's own, slack.
    const SPARE: u64 = 32;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = (lim.rlim_cur, lim.rlim_max);
    let needed = wanted_pipes as u64 * 2 + SPARE;
    if lim.rlim_max < needed {
        let raised = libc::rlimit {
            rlim_cur: needed,
            rlim_max: needed,
        };
        // SAFETY: a valid rlimit; failure (EPERM without CAP_SYS_RESOURCE)
        // leaves the limit unchanged.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    let soft = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: a valid rlimit whose soft limit is the hard limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        // Valgrind, for one, refuses; carry on with the soft limit.
        lim.rlim_cur = soft;
    }
    let fit = (lim.rlim_cur.saturating_sub(SPARE) / 2).min(usize::MAX as u64) as usize;
    let note = format!(
        "RLIMIT_NOFILE soft/hard {}/{} -> {}/{}: room for {} pipes",
        before.0, before.1, lim.rlim_cur, lim.rlim_max, fit
    );
    Ok((fit, note))
}

fn log_progress(msg: &str) {
    eprintln!("{msg}");
}

/// The ping-pong case, every poll waiting at most `timeout`: `None` (wait
/// for the event) or `Some` (as most loops pass one).
fn pingpong(args: &Args, timeout: Option<Duration>) -> io::Result<()> {
    let libs: Vec<PipeLib> = PipeLib::ALL
        .into_iter()
        .filter(|l| args.libs.includes(l.name()))
        .collect();
    if libs.is_empty() {
        return Ok(());
    }
    log_progress("pingpong: calibrating");
    let runners = libs
        .iter()
        .map(|&lib| {
            Runner::new(lib.name(), move |w, r| {
                lib.run(1, Active::Rotating, timeout, w, r)
            })
            .with_idiom(lib.idiom())
        })
        .collect();
    let t = measure(&args.plan, runners)?;
    let median = |name| find(&t, name).map(Timing::median);
    let waits = match timeout {
        None => "poll without a timeout".to_owned(),
        Some(t) => format!("poll with a {t:?} timeout"),
    };
    println!("\n## pingpong: one pipe, write 1 byte + {waits} + read (ns per round trip)\n");
    println!(
        "| library | median | min | max | ÷ mio | ÷ raw-epoll | ÷ raw-epoll-edge | ÷ raw-poll | idiom |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in &t {
        let m = Some(row.median());
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} |",
            row.name,
            row.median(),
            row.min(),
            row.max(),
            ratio(m, median("mio")),
            ratio(m, median("raw-epoll")),
            ratio(m, median("raw-epoll-edge")),
            ratio(m, median("raw-poll")),
            row.idiom.unwrap_or_default()
        );
    }
    Ok(())
}

fn idle(args: &Args, max_pipes: usize, active: Active) -> io::Result<()> {
    let libs: Vec<PipeLib> = PipeLib::IDLE
        .into_iter()
        .filter(|l| args.libs.includes(l.name()))
        .collect();
    if libs.is_empty() {
        return Ok(());
    }
    let mut ns = Vec::new();
    for &asked in &args.idle_n {
        let n = asked.min(max_pipes);
        if n != asked {
            println!("\nnote: N = {asked} capped to {n} by RLIMIT_NOFILE (2 fds per pipe)");
        }
        if !ns.contains(&n) {
            ns.push(n);
        }
    }
    let mut columns = Vec::new();
    for &n in &ns {
        log_progress(&format!("idle N={n} ({active:?}): calibrating"));
        let runners = libs
            .iter()
            .map(|&lib| {
                Runner::new(lib.name(), move |w, r| lib.run(n, active, None, w, r))
                    .with_idiom(lib.idiom())
            })
            .collect();
        columns.push(measure(&args.plan, runners)?);
    }
    match active {
        Active::Rotating => println!(
            "\n## idle: N registered pipes, a different one active each round (ns per event, median)\n"
        ),
        Active::Last => println!(
            "\n## idle-fixed: N registered pipes, always the last one active (ns per event, median)\n"
        ),
    }
    let head: Vec<String> = ns.iter().map(|n| format!("N={n}")).collect();
    println!("| library | {} |", head.join(" | "));
    println!("|---|{}", "---:|".repeat(ns.len()));
    for (i, lib) in libs.iter().enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| format!("{:.0}", c[i].median()))
            .collect();
        println!("| {} | {} |", lib.name(), cells.join(" | "));
    }
    let row = |label: &str, a: &str, b: &str| {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| {
                ratio(
                    find(c, a).map(Timing::median),
                    find(c, b).map(Timing::median),
                )
            })
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    row("pipeloop-epoll-edge ÷ mio", "pipeloop-epoll-edge", "mio");
    row(
        "pipeloop-epoll-edge ÷ raw-epoll",
        "pipeloop-epoll-edge",
        "raw-epoll",
    );
    row("pipeloop-poll-edge ÷ mio", "pipeloop-poll-edge", "mio");
    row(
        "pipeloop-poll-edge ÷ polling",
        "pipeloop-poll-edge",
        "polling",
    );
    row(
        "pipeloop-poll-edge ÷ raw-poll",
        "pipeloop-poll-edge",
        "raw-poll",
    );
    let first = |name| {
        columns
            .first()
            .and_then(|c| find(c, name))
            .map(Timing::median)
    };
    for name in ["pipeloop-epoll-edge", "mio", "raw-epoll"] {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| ratio(find(c, name).map(Timing::median), first(name)))
            .collect();
        println!("| {name}: ÷ its N={} | {} |", ns[0], cells.join(" | "));
    }
    Ok(())
}

fn waker(args: &Args) -> io::Result<()> {
    let libs: Vec<WakerLib> = WakerLib::ALL
        .into_iter()
        .filter(|l| args.libs.includes(l.name()))
        .collect();
    if libs.is_empty() {
        return Ok(());
    }
    log_progress("waker: calibrating");
    let runners = libs
        .iter()
        .map(|&lib| Runner::new(lib.name(), move |w, r| lib.run(w, r)).with_idiom(lib.idiom()))
        .collect();
    let t = measure(&args.plan, runners)?;
    let median = |name| find(&t, name).map(Timing::median);
    println!("\n## waker: wake() + the poll that sees it (ns per wake)\n");
    println!("| waker | median | min | max | ÷ mio | idiom |");
    println!("|---|---:|---:|---:|---:|---|");
    for row in &t {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} |",
            row.name,
            row.median(),
            row.min(),
            row.max(),
            ratio(Some(row.median()), median("mio")),
            row.idiom.unwrap_or_default()
        );
    }
    println!(
        "\neventfd ÷ pipe (pipeloop epoll wakers): {}",
        ratio(
            median("pipeloop-epoll-eventfd"),
            median("pipeloop-epoll-pipe")
        )
    );
    Ok(())
}

fn run(args: &Args) -> io::Result<()> {
    let wanted = if args.only.includes("idle") || args.only.includes("idle-fixed") {
        args.idle_n.iter().copied().max().unwrap_or(1)
    } else {
        1
    };
    let (max_pipes, fd_note) = raise_fd_limit(wanted)?;
    println!("# pipeloop ping-pong benchmark\n");
    println!("- machine: {}", machine());
    println!("- {fd_note}");
    println!("- pipeloop backends: each row names its own (Poll::with_backend)");
    println!("- mio backend: {}", with_mio::backend());
    println!("- polling backend: {}", with_polling::backend());
    let calibrated = "per library, interleaved; ns per operation";
    println!("{}", args.plan.header(calibrated));
    if args.only.includes("pingpong") {
        pingpong(args, None)?;
    }
    if args.only.includes("pingpong-timeout") {
        pingpong(args, Some(PINGPONG_TIMEOUT))?;
    }
    if args.only.includes("idle") {
        idle(args, max_pipes, Active::Rotating)?;
    }
    if args.only.includes("idle-fixed") {
        idle(args, max_pipes, Active::Last)?;
    }
    if args.only.includes("waker") {
        waker(args)?;
    }
    Ok(())
}

pub fn main() -> ExitCode {
    crate::stats::exit_code("pingpong", parse_args(), run)
}
