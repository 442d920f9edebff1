//! Signal delivery: `pipeloop::signal::Signals` against `signal-hook` +
//! `signal-hook-mio` on mio 1.x, side by side in one process. See the
//! "Signals" section of docs/benchmarks.md for the results.
//!
//! ```text
//! cargo bench --bench signals                        # ~11 x 50 ms per library
//! cargo bench --bench signals -- --quick             # CI smoke: a few ms each
//! cargo bench --bench signals -- --lib pipeloop-epoll --rounds 2000
//!                                                    # fixed count (strace, callgrind)
//! ```
//!
//! Options: `--quick`, `--lib NAME[,NAME]`, `--rounds R` (fixed round count:
//! no calibration, one repetition unless `--reps`), `--reps R`,
//! `--target-ms T` (time per repetition per library when calibrating),
//! `--warmup W`, `--list`.
//!
//! One round, single-threaded: `raise(sig)`, then the poll that sees the
//! event, then asking which signals arrived. The signal is delivered to this
//! thread before `raise` returns, so the handler has run (and written its
//! byte) by the time the loop polls: the round measures the whole chain
//! (tgkill, the kernel's delivery, the handler, sigreturn, the wait, the
//! drain), not a sleep. Every round checks that exactly one event came back,
//! for the right token, and that exactly the raised signal was reported; a
//! wrong result stops the benchmark (a check, not a timing assertion).
//!
//! # One handler at a time
//!
//! Two libraries handling the same signal would chain to each other (each
//! calls the handler that was installed before it), and every round would
//! pay for both. So:
//!
//! - the libraries use different signals: SIGUSR1 for pipeloop, SIGUSR2 for
//!   signal-hook. signal-hook never uninstalls its handler (dropping its
//!   `Signals` only unregisters the action), so creating and dropping alone
//!   would not keep it off pipeloop's signal;
//! - each repetition creates its `Poll` and watcher and drops them after the
//!   timed loop, so at any time only one watcher exists: pipeloop's two
//!   cases never both receive SIGUSR1 (the idle one's pipe would take a
//!   write every round, and its handler walk one more slot). pipeloop
//!   restores SIGUSR1's default disposition on drop.
//!
//! Linux only (the epoll case). Elsewhere the program only says so.

#[cfg(target_os = "linux")]
#[allow(dead_code)] // Chosen, CommandLine::numbers, Timing::mean: the others'
mod stats;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    bench::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the signals benchmark runs on Linux only (it compares on epoll)");
}

#[cfg(target_os = "linux")]
mod bench {
    use std::io;
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use crate::stats::{CommandLine, Plan, Runner, Timing, find, machine, measure, ratio};

    /// The signal pipeloop watches.
    const PIPELOOP_SIGNAL: libc::c_int = libc::SIGUSR1;
    /// The signal signal-hook watches (not pipeloop's: see the module doc).
    const SIGNAL_HOOK_SIGNAL: libc::c_int = libc::SIGUSR2;

    /// The libraries under test.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Lib {
        PipeloopEpoll,
        PipeloopPoll,
        SignalHookMio,
    }

    impl Lib {
        const ALL: [Lib; 3] = [Lib::PipeloopEpoll, Lib::PipeloopPoll, Lib::SignalHookMio];

        fn name(self) -> &'static str {
            match self {
                Lib::PipeloopEpoll => "pipeloop-epoll",
                Lib::PipeloopPoll => "pipeloop-poll",
                Lib::SignalHookMio => "signal-hook-mio",
            }
        }

        fn idiom(self) -> &'static str {
            match self {
                Lib::PipeloopEpoll | Lib::PipeloopPoll => {
                    "Signals::new(&[SIGUSR1]), READABLE (edge); poll, then pending() on the event"
                }
                Lib::SignalHookMio => {
                    "v1_0::Signals::new([SIGUSR2]), READABLE (edge); mio poll, then pending() on the event"
                }
            }
        }

        fn from_name(name: &str) -> Option<Lib> {
            Lib::ALL.into_iter().find(|l| l.name() == name)
        }

        /// Sets up, runs `warmup` untimed rounds and `rounds` timed ones,
        /// tears down; returns the time of the timed rounds.
        fn run(self, warmup: u64, rounds: u64) -> io::Result<Duration> {
            match self {
                Lib::PipeloopEpoll => with_pipeloop(pipeloop::Backend::Epoll, warmup, rounds),
                Lib::PipeloopPoll => with_pipeloop(pipeloop::Backend::Poll, warmup, rounds),
                Lib::SignalHookMio => with_signal_hook_mio(warmup, rounds),
            }
        }
    }

    /// Runs `warmup` untimed rounds, then times `rounds` more.
    fn time_rounds(
        warmup: u64,
        rounds: u64,
        mut round: impl FnMut() -> io::Result<()>,
    ) -> io::Result<Duration> {
        for _ in 0..warmup {
            round()?;
        }
        let start = Instant::now();
        for _ in 0..rounds {
            round()?;
        }
        Ok(start.elapsed())
    }

    fn check(ok: bool, what: &str) -> io::Result<()> {
        if ok {
            Ok(())
        } else {
            Err(io::Error::other(format!("wrong result: {what}")))
        }
    }

    /// Sends `signal` to this thread; it is handled before this returns.
    fn raise(signal: libc::c_int) -> io::Result<()> {
        // SAFETY: raise only sends a signal to the calling thread; the
        // signal has a handler installed by the library under test.
        if unsafe { libc::raise(signal) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// pipeloop, as `pipeloop::signal`'s documentation shows it: register
    /// `Signals` for READABLE (edge, the default), and on its event call
    /// `pending()`, which drains the pipe and takes the flags.
    fn with_pipeloop(backend: pipeloop::Backend, warmup: u64, rounds: u64) -> io::Result<Duration> {
        use pipeloop::signal::Signals;
        use pipeloop::{Events, Interest, Poll, Token};

        const TOKEN: Token = Token(7);
        let mut poll = Poll::with_backend(backend)?;
        let mut signals = Signals::new(&[PIPELOOP_SIGNAL])?;
        poll.registry()
            .register(&mut signals, TOKEN, Interest::READABLE)?;
        let mut events = Events::with_capacity(64);

        let round = || -> io::Result<()> {
            raise(PIPELOOP_SIGNAL)?;
            loop {
                match poll.poll(&mut events, None) {
                    Ok(()) => break,
                    // A signal during the wait; not expected here (it is
                    // delivered before the wait), but the idiom retries.
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            let mut seen = 0;
            for event in &events {
                check(
                    event.token() == TOKEN && event.is_readable(),
                    "pipeloop: event",
                )?;
                seen += 1;
            }
            check(seen == 1, "pipeloop: one event")?;
            let mut arrived = 0;
            for signal in signals.pending() {
                check(signal == PIPELOOP_SIGNAL, "pipeloop: the raised signal")?;
                arrived += 1;
            }
            check(arrived == 1, "pipeloop: one signal")
        };
        time_rounds(warmup, rounds, round)
    }

    /// signal-hook-mio, as its `v1_0` documentation shows it: register
    /// `Signals` for READABLE, retry `poll` on `Interrupted` (clearing the
    /// events), and on its event call `pending()`.
    fn with_signal_hook_mio(warmup: u64, rounds: u64) -> io::Result<Duration> {
        use mio::{Events, Interest, Poll, Token};
        use signal_hook_mio::v1_0::Signals;

        const TOKEN: Token = Token(7);
        let mut poll = Poll::new()?;
        let mut signals = Signals::new([SIGNAL_HOOK_SIGNAL])?;
        poll.registry()
            .register(&mut signals, TOKEN, Interest::READABLE)?;
        let mut events = Events::with_capacity(64);

        let round = || -> io::Result<()> {
            raise(SIGNAL_HOOK_SIGNAL)?;
            loop {
                match poll.poll(&mut events, None) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                        events.clear();
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let mut seen = 0;
            for event in events.iter() {
                check(
                    event.token() == TOKEN && event.is_readable(),
                    "signal-hook-mio: event",
                )?;
                seen += 1;
            }
            check(seen == 1, "signal-hook-mio: one event")?;
            let mut arrived = 0;
            for signal in signals.pending() {
                check(
                    signal == SIGNAL_HOOK_SIGNAL,
                    "signal-hook-mio: the raised signal",
                )?;
                arrived += 1;
            }
            check(arrived == 1, "signal-hook-mio: one signal")
        };
        time_rounds(warmup, rounds, round)
    }

    struct Args {
        libs: Vec<Lib>,
        plan: Plan,
    }

    const USAGE: &str = "usage: signals [--quick] [--lib NAME,..] [--rounds R] [--reps R] \
[--target-ms T] [--warmup W] [--list]";

    fn list() {
        for lib in Lib::ALL {
            println!("{}: {}", lib.name(), lib.idiom());
        }
    }

    fn parse_args() -> Result<Option<Args>, String> {
        let mut args = Args {
            libs: Vec::new(),
            plan: Plan::default(),
        };
        let mut line = CommandLine::new(USAGE, list);
        while let Some(arg) = line.next_option()? {
            match arg.as_str() {
                "--quick" => line.quick(Duration::from_millis(3)),
                "--lib" => {
                    for name in line.list(&arg)? {
                        let lib = Lib::from_name(&name)
                            .ok_or(format!("unknown library {name:?} (see --list)"))?;
                        args.libs.push(lib);
                    }
                }
                other => return Err(line.unknown(other)),
            }
        }
        let Some(plan) = line.plan() else {
            return Ok(None);
        };
        args.plan = plan;
        if args.libs.is_empty() {
            args.libs = Lib::ALL.to_vec();
        }
        if args.plan.reps == 0 || args.plan.rounds == Some(0) {
            return Err("--reps and --rounds must be at least 1".into());
        }
        Ok(Some(args))
    }

    fn run(args: &Args) -> io::Result<()> {
        println!("# pipeloop signals benchmark\n");
        println!("- machine: {}", machine());
        println!(
            "- one round: raise(sig), poll until the event, pending(); \
pipeloop on SIGUSR1, signal-hook on SIGUSR2"
        );
        println!(
            "- mio backend: {}",
            if cfg!(mio_unsupported_force_poll_poll) {
                "poll(2) (cfg mio_unsupported_force_poll_poll)"
            } else {
                "epoll"
            }
        );
        println!("{}", args.plan.header("per library, interleaved"));
        eprintln!("signals: calibrating");
        let runners = args
            .libs
            .iter()
            .map(|&lib| Runner::new(lib.name(), move |w, r| lib.run(w, r)).with_idiom(lib.idiom()))
            .collect();
        let t = measure(&args.plan, runners)?;
        let peer = find(&t, Lib::SignalHookMio.name()).map(Timing::median);
        println!("\n## raise + poll + pending (ns per round trip)\n");
        println!("| library | median | min | max | ÷ signal-hook-mio | idiom |");
        println!("|---|---:|---:|---:|---:|---|");
        for row in &t {
            println!(
                "| {} | {:.0} | {:.0} | {:.0} | {} | {} |",
                row.name,
                row.median(),
                row.min(),
                row.max(),
                ratio(Some(row.median()), peer),
                row.idiom.unwrap_or_default()
            );
        }
        Ok(())
    }

    pub fn main() -> ExitCode {
        crate::stats::exit_code("signals", parse_args(), run)
    }
}
