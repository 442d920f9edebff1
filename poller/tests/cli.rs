//! Bad input: a short message on stderr, nothing on stdout, status 2, and
//! nothing started. And `--help` / `--version`.

mod util;

use util::{TempDir, run};

/// Runs poller with `args` (a `{marker}` in them is a file that a started
/// command would create) and checks that it refused them.
fn refused(args: &[&str], why: &str) {
    let dir = TempDir::new();
    let marker = dir.path("started");
    let touch = format!("touch {}", marker.display());
    let args: Vec<&str> = args
        .iter()
        .map(|&a| if a == "{touch}" { touch.as_str() } else { a })
        .collect();
    let out = run(&args);
    assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr());
    assert_eq!(out.stdout(), "", "{args:?}");
    let stderr = out.stderr();
    assert!(stderr.contains(why), "{args:?}: {why:?} not in {stderr:?}");
    assert!(stderr.lines().count() <= 8, "short: {stderr}");
    assert!(!marker.exists(), "{args:?} started a command");
}

#[test]
fn unknown_options_and_subcommands() {
    refused(&["run", "--nope", "{touch}"], "--nope");
    refused(&["frob"], "frob");
}

#[test]
fn no_subcommand_prints_the_help_on_stderr() {
    let out = run(&[]);
    assert_eq!((out.code(), out.stdout()), (2, String::new()));
    assert!(
        out.stderr().contains("Usage: poller <COMMAND>"),
        "{}",
        out.stderr()
    );
}

#[test]
fn no_command_or_an_empty_one() {
    refused(&["run"], "no command");
    refused(&["run", "{touch}", ""], "command 2 is empty");
    refused(&["run", "  "], "command 1 is empty");
}

#[test]
fn bad_values() {
    refused(&["run", "--jobs", "0", "{touch}"], "at least 1");
    refused(&["run", "--jobs", "many", "{touch}"], "many");
    refused(&["run", "--backend", "select", "{touch}"], "select");
    refused(&["run", "--timeout", "5x", "{touch}"], "5x");
    refused(&["run", "--kill-after", "soon", "{touch}"], "soon");
    refused(&["run", "--restart", "sometimes", "{touch}"], "sometimes");
    refused(&["run", "--color", "pink", "{touch}"], "pink");
}

#[test]
fn names_of_the_wrong_length() {
    refused(
        &["run", "--names", "a,b", "{touch}"],
        "2 names for 1 command",
    );
    refused(
        &["run", "-n", "a", "{touch}", "true"],
        "1 name for 2 commands",
    );
}

#[test]
fn a_backend_this_system_lacks() {
    let missing = if cfg!(target_os = "linux") {
        "kqueue"
    } else {
        "epoll"
    };
    refused(&["run", "--backend", missing, "{touch}"], "not available");
}

#[test]
fn unreadable_or_malformed_procfiles() {
    let dir = TempDir::new();
    let missing = dir.path("missing");
    refused(
        &["run", "--procfile", missing.to_str().unwrap()],
        "cannot read",
    );
    let bad = dir.path("Procfile");
    // The good line would leave a file behind if it were started.
    let marker = dir.path("started");
    let good = format!("web: touch {}\nthis line has no colon\n", marker.display());
    std::fs::write(&bad, good).unwrap();
    refused(&["run", "--procfile", bad.to_str().unwrap()], "line 2");
    assert!(!marker.exists(), "the good line was started");
    refused(
        &["run", "--procfile", bad.to_str().unwrap(), "{touch}"],
        "cannot be used with",
    );
}

#[test]
fn bench_on_a_backend_this_system_lacks() {
    let missing = if cfg!(target_os = "linux") {
        "kqueue"
    } else {
        "epoll"
    };
    refused(&["bench", "--backend", missing], "not available");
}

#[test]
fn help_names_every_option() {
    let out = run(&["run", "--help"]);
    assert_eq!(out.code(), 0);
    let help = out.stdout();
    for option in [
        "--names",
        "--procfile",
        "--jobs",
        "--fail-fast",
        "--restart",
        "--max-restarts",
        "--kill-after",
        "--timeout",
        "--quiet",
        "--color",
        "--timestamps",
        "--trace",
        "--backend",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
    for sub in ["demo", "bench"] {
        let out = run(&[sub, "--help"]);
        assert_eq!(out.code(), 0, "{sub} --help");
    }
    let out = run(&["bench", "--help"]);
    assert!(out.stdout().contains("--plot"));
    let out = run(&["--help"]);
    for sub in ["run", "demo", "bench"] {
        assert!(out.stdout().contains(sub), "{sub} missing from --help");
    }
}

#[test]
fn version() {
    let out = run(&["--version"]);
    assert_eq!(out.code(), 0);
    assert_eq!(
        out.stdout(),
        format!("poller {}\n", env!("CARGO_PKG_VERSION"))
    );
}
