//! `poller demo` and `poller bench`, through the real binary: what the
//! guide and docs/poller.md quote of them.

mod util;

use std::process::Command;

use util::{TempDir, finish, run, spawn};

#[test]
fn the_demo_narrates_its_five_phases_in_order() {
    let out = run(&["demo"]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let stdout = out.stdout();
    let phases = [
        "1. spawning two children",
        "exit status: 3: reported last",
        "exit status: 0: reported last",
        "2. a timer every 500ms",
        "tick 1 ",
        "tick 2 ",
        "3. another thread sends a closure",
        "the closure runs on the loop's thread",
        "4. poller sends itself SIGUSR1",
        "SIGUSR1 arrived as an event",
        "5. nothing left to wait for",
    ];
    let mut rest = stdout.as_str();
    for phase in phases {
        let at = rest
            .find(phase)
            .unwrap_or_else(|| panic!("no {phase:?} after the lines before it:\n{stdout}"));
        rest = &rest[at..];
    }
    // The trace is on by itself, on stderr.
    let stderr = out.stderr();
    assert!(stderr.contains(" woke with "), "{stderr}");
    assert!(stderr.contains("signal 10 for Key"), "{stderr}");
}

#[test]
fn a_quick_bench_prints_a_row_per_size_and_draws_the_plot() {
    let dir = TempDir::new();
    let svg = dir.path("backends.svg");
    let args = ["bench", "--quick", "--backend", "poll", "--plot"];
    let out = run(&[&args[..], &[svg.to_str().unwrap()]].concat());
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let stdout = out.stdout();
    let sizes = poll_row_sizes(&stdout);
    assert_eq!(sizes.first(), Some(&"1"), "{stdout}");
    // 10,000 unless the open-file limit cut the last rows, which it says.
    match sizes.last() {
        Some(&"10000") => assert_eq!(sizes, ["1", "10", "100", "1000", "10000"]),
        _ => assert!(stdout.contains("the open-file limit allows"), "{stdout}"),
    }
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(
        plot.starts_with("<svg") && plot.contains(">poll<"),
        "{plot}"
    );
}

#[test]
fn bench_cuts_n_to_the_open_file_limit_and_says_so() {
    // 200 open files at most, soft and hard: (200 - 64 kept) / 2 fds a pipe.
    let bench = format!(
        "ulimit -n 200 && exec {} bench --quick --backend poll",
        env!("CARGO_BIN_EXE_poller")
    );
    let out = finish(spawn(Command::new("sh").args(["-c", &bench])));
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let stdout = out.stdout();
    let sizes = poll_row_sizes(&stdout);
    assert_eq!(sizes, ["1", "10", "68"], "{stdout}");
    assert!(
        stdout.contains("the open-file limit allows 68 idle pipes at most here"),
        "{stdout}"
    );
}

/// The N of each row `poller bench --backend poll` printed.
fn poll_row_sizes(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.starts_with("poll "))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect()
}
