//! pipeloop's reactor (`pipeloop::reactor::EventLoop`) side by side with what
//! it is built on and with calloop, in one process. See docs/benchmarks.md,
//! section "Reactor", for what each case measures.
//!
//! ```text
//! cargo bench --bench reactor                       # everything, ~30 s
//! cargo bench --bench reactor -- --quick            # CI smoke: a few seconds
//! cargo bench --bench reactor -- --only dispatch    # one case: dispatch,
//!                       # dispatch-timer, timers, fill, lateness (comma list)
//! cargo bench --bench reactor -- --only dispatch --lib eventloop-epoll --rounds 2000
//!                                                   # fixed count, for strace/callgrind
//! cargo bench --bench reactor -- --only timers --n 100,10000 --calloop-max 10000
//! ```
//!
//! Options: `--quick`, `--only CASE[,CASE]`, `--lib NAME[,NAME]`, `--list`,
//! `--rounds R` (round trips or insert+remove pairs per repetition: no
//! calibration, one repetition unless `--reps`), `--reps R`, `--target-ms T`,
//! `--warmup W`, `--n N[,N]` (live timers in the timers case),
//! `--calloop-max N` (calloop's live timers at most), `--fill N` (timers the
//! fill case inserts), `--samples S` (timers per row in the lateness case).
//!
//! Linux only, as benches/pingpong.rs, whose rows it reuses as baselines
//! (they include raw epoll). Elsewhere the program only says so.

#[cfg(target_os = "linux")]
#[allow(dead_code)] // pingpong's wakers, idle cases and peers: unused here
mod competitors;
#[cfg(target_os = "linux")]
mod stats;

#[cfg(target_os = "linux")]
#[path = "reactor/mod.rs"]
mod bench;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    bench::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the reactor benchmark runs on Linux only (its baselines include raw epoll)");
}
