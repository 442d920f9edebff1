//! pipeloop against mio, polling and hand-written libc loops, side by side in
//! one process. See docs/benchmarks.md for what each case measures.
//!
//! ```text
//! cargo bench --bench pingpong                      # everything, ~1 minute
//! cargo bench --bench pingpong -- --quick           # CI smoke: few iterations
//! cargo bench --bench pingpong -- --only pingpong   # one case: pingpong,
//!                              # pingpong-timeout, idle, idle-fixed, waker
//! cargo bench --bench pingpong -- --only waker --lib mio,pipeloop-epoll-eventfd
//! cargo bench --bench pingpong -- --only pingpong --lib mio --rounds 10000
//!                                                   # fixed count, no calibration
//! ```
//!
//! Options: `--quick`, `--only CASE[,CASE]`, `--lib NAME[,NAME]`,
//! `--n N[,N]` (idle case), `--rounds R` (fixed round count: no calibration,
//! one repetition unless `--reps`), `--reps R`, `--target-ms T` (time per
//! repetition per library when calibrating), `--warmup W`, `--list`.

//!
//! Linux only: the raw baselines use epoll directly. Elsewhere
//! the program only says so (it still compiles, so that every target
//! type-checks).

#[cfg(target_os = "linux")]
mod competitors;
#[cfg(target_os = "linux")]
mod driver;
#[cfg(target_os = "linux")]
#[allow(dead_code)] // Chosen::pick, Timing::mean: the reactor's
mod stats;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    driver::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the pingpong benchmark runs on Linux only (it compares against raw epoll)");
}
