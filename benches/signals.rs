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
#[allow(dead_code)] // measure and its rows: pingpong's and the reactor's
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
        /// Fixed number of timed rounds; `None` calibrates to `target`.
        rounds: Option<u64>,
        reps: usize,
        target: Duration,
        warmup: Option<u64>,
    }

    const USAGE: &str = "usage: signals [--quick] [--lib NAME,..] [--rounds R] [--reps R] \
[--target-ms T] [--warmup W] [--list]";

    fn parse_args() -> Result<Option<Args>, String> {
        let mut args = Args {
            libs: Vec::new(),
            rounds: None,
            reps: 11,
            target: Duration::from_millis(50),
            warmup: None,
        };
        let mut reps = None;
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
            let number = |v: String| v.parse::<u64>().map_err(|e| format!("{v:?}: {e}"));
            match arg.as_str() {
                // `cargo bench` passes `--bench` to harness = false binaries.
                "--bench" => {}
                "--quick" => {
                    args.target = Duration::from_millis(3);
                    reps = reps.or(Some(3));
                }
                "--lib" => {
                    for name in value()?.split(',') {
                        let lib = Lib::from_name(name)
                            .ok_or(format!("unknown library {name:?} (see --list)"))?;
                        args.libs.push(lib);
                    }
                }
                "--rounds" => args.rounds = Some(number(value()?)?),
                "--reps" => reps = Some(number(value()?)? as usize),
                "--target-ms" => args.target = Duration::from_millis(number(value()?)?),
                "--warmup" => args.warmup = Some(number(value()?)?),
                "--list" => {
                    for lib in Lib::ALL {
                        println!("{}: {}", lib.name(), lib.idiom());
                    }
                    return Ok(None);
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    return Ok(None);
                }
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        if args.libs.is_empty() {
            args.libs = Lib::ALL.to_vec();
        }
        args.reps = reps.unwrap_or(if args.rounds.is_some() { 1 } else { args.reps });
        if args.reps == 0 || args.rounds == Some(0) {
            return Err("--reps and --rounds must be at least 1".into());
        }
        Ok(Some(args))
    }

    /// ns per round trip of one library, one value per repetition.
    struct Timing {
        lib: Lib,
        ns: Vec<f64>,
    }

    impl Timing {
        fn median(&self) -> f64 {
            crate::stats::median(&self.ns)
        }

        fn min(&self) -> f64 {
            crate::stats::min(&self.ns)
        }

        fn max(&self) -> f64 {
            crate::stats::max(&self.ns)
        }
    }

    /// Calibrates each library to the target time (unless `--rounds`), then
    /// runs the repetitions interleaved, rotating the order every time, so
    /// that a busy moment on the machine hits every library alike.
    fn measure(args: &Args) -> io::Result<Vec<Timing>> {
        let mut plans = Vec::new();
        for &lib in &args.libs {
            let (rounds, warmup) = match args.rounds {
                Some(rounds) => (rounds, args.warmup.unwrap_or(1_000)),
                None => {
                    let probe = 200;
                    let per = lib.run(50, probe)?.as_secs_f64() / probe as f64;
                    let rounds = (args.target.as_secs_f64() / per.max(1e-9)) as u64;
                    let rounds = rounds.clamp(100, 10_000_000);
                    (rounds, args.warmup.unwrap_or((rounds / 4).min(1_000)))
                }
            };
            eprintln!("  {}: {rounds} rounds x {} reps", lib.name(), args.reps);
            plans.push((rounds, warmup));
        }
        let mut timings: Vec<Timing> = args
            .libs
            .iter()
            .map(|&lib| Timing {
                lib,
                ns: Vec::new(),
            })
            .collect();
        for rep in 0..args.reps {
            for j in 0..args.libs.len() {
                let i = (j + rep) % args.libs.len();
                let (rounds, warmup) = plans[i];
                let took = args.libs[i].run(warmup, rounds)?;
                timings[i].ns.push(took.as_nanos() as f64 / rounds as f64);
            }
        }
        Ok(timings)
    }

    fn machine() -> String {
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
            format!("{} {}", field(&uts.release), field(&uts.machine))
        } else {
            "unknown kernel".into()
        };
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        format!("Linux {kernel}, {cpus} CPU(s) available")
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
        match args.rounds {
            Some(r) => println!("- fixed {r} rounds, {} repetition(s)", args.reps),
            None => println!(
                "- {} repetitions of ~{} ms per library, interleaved",
                args.reps,
                args.target.as_millis()
            ),
        }
        eprintln!("signals: calibrating");
        let t = measure(args)?;
        let peer = t
            .iter()
            .find(|t| t.lib == Lib::SignalHookMio)
            .map(Timing::median);
        println!("\n## raise + poll + pending (ns per round trip)\n");
        println!("| library | median | min | max | ÷ signal-hook-mio | idiom |");
        println!("|---|---:|---:|---:|---:|---|");
        for row in &t {
            let ratio = match peer {
                Some(p) if p > 0.0 => format!("{:.2}", row.median() / p),
                _ => "-".into(),
            };
            println!(
                "| {} | {:.0} | {:.0} | {:.0} | {ratio} | {} |",
                row.lib.name(),
                row.median(),
                row.min(),
                row.max(),
                row.lib.idiom()
            );
        }
        Ok(())
    }

    pub fn main() -> ExitCode {
        crate::stats::exit_code("signals", parse_args(), run)
    }
}
