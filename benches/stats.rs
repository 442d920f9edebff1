//! What the benchmark programs share: summary statistics (nanoseconds per
//! operation, one value per repetition) and how a run ends.

use std::io;
use std::process::ExitCode;

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
