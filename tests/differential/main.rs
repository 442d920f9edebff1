//! A seeded, randomized differential test of the backends.
//!
//! Random sequences of operations on a few pipes and wakers (create, clone,
//! register, reregister, deregister, write, read, drop, wake, poll) run on
//! every backend this host has. Every poll is checked against a small model
//! of the *documented* contract, not of what the code happens to do:
//!
//! - `src/pipe/mod.rs`, "Events": the flags of each end; "Interest": an end
//!   registers only its own direction, an interest with none of them is
//!   `InvalidInput` and changes nothing; "Edge mode and the
//!   short-read guarantee": when an edge registration is re-armed, and that
//!   the event saying closed is the last one; "Lifetimes": dropping a
//!   registered end ends its registration, even while a clone keeps the
//!   pipe open;
//! - `src/interest.rs`, "Trigger modes": edge, level and oneshot, and that
//!   extra edge reports may come but must not be relied on;
//! - `src/event/event.rs`, "Closed peers"; `src/waker.rs`; the error kinds
//!   in `Registry`'s docs.
//!
//! For every registration the model says, at each poll, whether a report is
//! required, allowed or forbidden, and which flags it must carry. A failing
//! sequence is shrunk (fewer ops, then smaller sizes) and printed with the
//! command that reruns exactly that case.
//!
//! Environment:
//! - `PIPELOOP_DIFF_SEED`: the base seed, decimal or `0x` hex (default
//!   fixed, so that `cargo test` always runs the same cases);
//! - `PIPELOOP_DIFF_CASES`: how many sequences to run (default
//!   [`DEFAULT_CASES`]).
//!
//! Case `i` runs with seed `base + i * GOLDEN`, so a case found among many
//! runs alone with its own seed and `PIPELOOP_DIFF_CASES=1`.
//!
//! The files, one mechanism each:
//! - `ops.rs`: the operations, and how they are printed;
//! - `generate.rs`: the PRNG and the sequence generator;
//! - `model.rs`: the documented state of pipes, handles, registrations and
//!   wakers, and what each op does to it;
//! - `expect.rs`: what the model requires, allows and forbids at a poll;
//! - `runner.rs`: the ops on a real `Poll`, checked step by step;
//! - `shrink.rs`: making a failing sequence small;
//! - `failure.rs`: what a disagreement is.

mod expect;
mod failure;
mod generate;
mod model;
mod ops;
mod runner;
mod shrink;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pipeloop::Backend;

use failure::{Failure, Kind};
use generate::{GOLDEN, generate};
use ops::{Op, render};

/// The base seed when `PIPELOOP_DIFF_SEED` is unset.
const DEFAULT_SEED: u64 = 0x00C0_FFEE_D1FF_5EED;
/// Sequences run when `PIPELOOP_DIFF_CASES` is unset: a few seconds in a
/// debug build on two cores.
const DEFAULT_CASES: u64 = 10_000;
/// How many distinct failures are shrunk and printed.
const MAX_SHOWN: usize = 6;

#[test]
fn backends_follow_the_documented_contract() {
    let base = env_u64("PIPELOOP_DIFF_SEED", DEFAULT_SEED);
    let cases = env_u64("PIPELOOP_DIFF_CASES", DEFAULT_CASES);
    let started = Instant::now();
    let failures: Vec<CaseFailure> = (0..cases)
        .flat_map(|i| run_case(case_seed(base, i)))
        .collect();
    if !failures.is_empty() {
        panic!("{}", report(&failures, cases, started.elapsed()));
    }
}

/// The generator is a pure function of the seed: what makes a printed seed
/// a reproduction.
#[test]
fn the_same_seed_makes_the_same_sequence() {
    for i in 0..50 {
        let seed = case_seed(DEFAULT_SEED, i);
        assert_eq!(generate(seed), generate(seed), "seed {seed:#x}");
    }
}

/// Sequences `every_backend_sees_the_same_in_level_mode` compares.
const SAME_CASES: u64 = 2_000;

/// "Every backend honours the same contract", compared backend against
/// backend rather than each against the model: where the contract leaves
/// no freedom, the same sequence must give the same transcript (each
/// call's result, byte counts, and each poll's events with their flags) on
/// every backend. That is the generated sequences with every registration
/// level-triggered (reported exactly while ready) and no waker dropped (a
/// dropped waker's last wake "may be lost"); edge and oneshot allow extra
/// reports, so they are left to the model.
#[test]
fn every_backend_sees_the_same_in_level_mode() {
    let backends = Backend::available();
    if backends.len() < 2 {
        return; // nothing to compare
    }
    let base = env_u64("PIPELOOP_DIFF_SEED", DEFAULT_SEED);
    for i in 0..SAME_CASES {
        let seed = case_seed(base, i);
        let ops = level_only(generate(seed));
        let runs: Vec<Vec<String>> = backends
            .iter()
            .map(|&backend| {
                runner::transcript(&ops, backend).unwrap_or_else(|failure| {
                    panic!(
                        "[backend {backend}] seed {seed:#x}, step {}: {}",
                        failure.step, failure.detail
                    )
                })
            })
            .collect();
        for (backend, run) in backends.iter().zip(&runs).skip(1) {
            if let Some(step) = (0..ops.len()).find(|&i| run[i] != runs[0][i]) {
                let lines = render(&ops);
                let mut out = format!(
                    "seed {seed:#x}: {} and {backend} differ at step {step}:\n",
                    backends[0]
                );
                for (i, line) in lines.iter().enumerate().take(step + 1) {
                    let _ = writeln!(
                        out,
                        "  {i:>3}  {line:<60} {}: {} / {backend}: {}",
                        backends[0], runs[0][i], run[i]
                    );
                }
                panic!("{out}");
            }
        }
    }
}

/// `ops` with every (re)registration level-triggered and no waker dropped.
fn level_only(ops: Vec<Op>) -> Vec<Op> {
    ops.into_iter()
        .filter(|op| !matches!(op, Op::DropWaker { .. }))
        .map(|op| match op {
            Op::Register { h, token, want } => Op::Register {
                h,
                token,
                want: ops::Want {
                    mode: ops::Mode::Level,
                    ..want
                },
            },
            Op::Reregister { h, token, want } => Op::Reregister {
                h,
                token,
                want: ops::Want {
                    mode: ops::Mode::Level,
                    ..want
                },
            },
            other => other,
        })
        .collect()
}

/// One backend's failure on one case.
struct CaseFailure {
    seed: u64,
    backend: Backend,
    ops: Vec<Op>,
    failure: Failure,
}

fn case_seed(base: u64, i: u64) -> u64 {
    base.wrapping_add(i.wrapping_mul(GOLDEN))
}

fn run_case(seed: u64) -> Vec<CaseFailure> {
    let ops = generate(seed);
    Backend::available()
        .iter()
        .filter_map(|&backend| {
            let failure = runner::run(&ops, backend).err()?;
            Some(CaseFailure {
                seed,
                backend,
                ops: ops.clone(),
                failure,
            })
        })
        .collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    let Ok(text) = std::env::var(name) else {
        return default;
    };
    let text = text.trim();
    if text.is_empty() {
        return default;
    }
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("{name}={text:?} is not a number (decimal or 0x hex)"))
}

/// Counts the failures by backend and kind, then shrinks and prints the
/// first case of each.
fn report(failures: &[CaseFailure], cases: u64, elapsed: Duration) -> String {
    let failed: BTreeSet<u64> = failures.iter().map(|f| f.seed).collect();
    let mut groups: BTreeMap<(&str, Kind), Vec<&CaseFailure>> = BTreeMap::new();
    for f in failures {
        groups
            .entry((f.backend.name(), f.failure.kind))
            .or_default()
            .push(f);
    }
    let mut out = format!(
        "{} of {cases} cases failed (in {elapsed:.1?}); by backend and kind:\n",
        failed.len()
    );
    for ((backend, kind), list) in &groups {
        let _ = writeln!(out, "  {backend}: {} x {kind:?}", list.len());
    }
    for list in groups.values().take(MAX_SHOWN) {
        out.push_str(&describe(list[0]));
    }
    out
}

/// Shrinks one failing case and prints it with its reproduction.
fn describe(case: &CaseFailure) -> String {
    let kind = case.failure.kind;
    let (ops, failure) = shrink::shrink(case.ops.clone(), case.backend, kind);
    let mut out = format!("\n=== [backend {}] {kind:?}\n", case.backend);
    let _ = writeln!(out, "{}", failure.detail);
    let _ = writeln!(
        out,
        "minimal sequence: {} ops (shrunk from {}), failing at step {}:",
        ops.len(),
        case.ops.len(),
        failure.step
    );
    for (i, line) in render(&ops).iter().enumerate() {
        let mark = if i == failure.step { ">>" } else { "  " };
        let _ = writeln!(out, "{mark} {i:>3}  {line}");
    }
    let _ = writeln!(
        out,
        "reproduce: PIPELOOP_DIFF_SEED={:#x} PIPELOOP_DIFF_CASES=1 \
         cargo test --test differential",
        case.seed
    );
    out
}
