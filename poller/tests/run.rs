//! `poller run`, through the real binary: output, status, supervision.

mod util;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use util::{TempDir, alive, finish, poller, run, spawn, strip};

#[test]
fn two_commands_are_prefixed_on_the_right_streams() {
    let out = run(&["run", "-n", "a,bb", "echo out1; echo err1 >&2", "echo out2"]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(out.sorted_stdout(), ["a  | out1", "bb | out2"]);
    let stderr = out.stderr();
    assert!(stderr.contains("a  | err1\n"), "{stderr}");
    assert!(!out.stdout().contains("err1"));
    // The summary: one line per command, on stderr.
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("poller: ")).count(),
        2,
        "{stderr}"
    );
}

#[test]
fn default_names_are_first_words_numbered() {
    let out = run(&["run", "echo a", "echo b", "true"]);
    assert_eq!(out.sorted_stdout(), ["echo   | a", "echo#2 | b"]);
}

#[test]
fn the_status_is_the_first_failure_in_time_order() {
    let out = run(&["run", "-q", "sleep 0.5; exit 4", "exit 3", "true"]);
    assert_eq!(out.code(), 3);
    let out = run(&["run", "-q", "true", "true"]);
    assert_eq!(out.code(), 0);
    // Killed by a signal: 128 + N, as a shell says.
    let out = run(&["run", "-q", "kill -9 $$"]);
    assert_eq!(out.code(), 137);
}

#[test]
fn a_command_that_cannot_start_is_a_failed_command() {
    let out = run(&["run", "-q", "no-such-command-poller-test", "echo fine"]);
    assert_eq!(out.code(), 127);
    let width = "no-such-command-poller-test".len();
    assert_eq!(out.stdout(), format!("{:<width$} | fine\n", "echo"));
}

#[test]
fn fail_fast_stops_the_others_and_keeps_the_first_status() {
    let started = Instant::now();
    let out = run(&[
        "run",
        "--fail-fast",
        "sleep 0.2; exit 5",
        "sleep 60",
        "sleep 60",
    ]);
    assert_eq!(out.code(), 5);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the sleeps were stopped"
    );
    let stderr = out.stderr();
    assert_eq!(stderr.matches("exit 143").count(), 2, "{stderr}");
}

#[test]
fn jobs_limits_how_many_run_at_once() {
    let dir = TempDir::new();
    // Each command leaves a file while it runs and prints how many it saw.
    let script = format!(
        "touch {d}/$$; ls {d} | wc -l; sleep 0.1; rm {d}/$$",
        d = dir.str()
    );
    let commands: Vec<&str> = (0..6).map(|_| script.as_str()).collect();
    let mut args = vec!["run", "-q", "-j", "2", "-n", "a,b,c,d,e,f"];
    args.extend(&commands);
    let out = run(&args);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let seen: Vec<usize> = out
        .stdout()
        .lines()
        .map(|l| l.split('|').nth(1).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(seen.len(), 6, "every command ran");
    assert!(seen.iter().all(|&n| (1..=2).contains(&n)), "{seen:?}");
}

#[test]
fn restart_on_failure_stops_at_the_limit() {
    let out = run(&[
        "run",
        "--restart",
        "on-failure",
        "--max-restarts",
        "2",
        "echo run; exit 1",
    ]);
    assert_eq!(out.code(), 1);
    assert_eq!(out.stdout().matches("run").count(), 3, "2 restarts: 3 runs");
    assert_eq!(
        out.stderr().matches("restart ").count(),
        2,
        "{}",
        out.stderr()
    );
    assert!(out.stderr().contains("restarts 2"), "{}", out.stderr());
    // Success is not restarted on-failure...
    let out = run(&["run", "-q", "--restart", "on-failure", "echo once"]);
    assert_eq!(out.stdout().matches("once").count(), 1);
    // ...but is with always, within the same bound.
    let out = run(&[
        "run",
        "-q",
        "--restart",
        "always",
        "--max-restarts",
        "1",
        "echo again",
    ]);
    assert_eq!((out.code(), out.stdout().matches("again").count()), (0, 2));
    assert_eq!(out.stderr(), "", "-q: no announcements, no summary");
}

#[test]
fn a_restarted_command_that_succeeds_leaves_no_failure() {
    let dir = TempDir::new();
    let flag = dir.path("failed-once");
    let script = format!(
        "if [ -e {f} ]; then exit 0; fi; touch {f}; exit 9",
        f = flag.display()
    );
    let out = run(&["run", "-q", "--restart", "on-failure", &script]);
    assert_eq!(out.code(), 0);
}

/// The pid a command printed as its first line (`name | 1234`).
fn printed_pid(out: &util::Output) -> i32 {
    let line = out.stdout();
    let value = line.lines().next().and_then(|l| l.split('|').nth(1));
    value.expect("a printed pid").trim().parse().expect("a pid")
}

/// Starts poller on `args` and waits for its first stdout line (an event,
/// not a sleep); the rest of stdout is read by the returned thread.
fn start_and_wait_for_a_line(
    args: &[&str],
) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    let mut child = spawn(poller().args(args));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let rest = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut all);
        all
    });
    (child, line, rest)
}

#[test]
fn sigint_reaches_the_commands_and_poller_exits_130() {
    let script = "trap 'echo got INT; exit 0' INT; echo ready; while :; do sleep 0.05; done";
    let (child, line, _) = start_and_wait_for_a_line(&["run", "-n", "t", script]);
    assert_eq!(line, "t | ready\n");
    // SAFETY: kill sends a signal to poller's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = finish(child);
    assert_eq!(out.code(), 130, "{}", out.stderr());
    assert!(
        out.stderr().contains("t  exit 0"),
        "it handled INT: {}",
        out.stderr()
    );
}

#[test]
fn sighup_is_forwarded_too() {
    // The commands, in groups of their own, get no hang-up from a terminal:
    // poller passes it on.
    let script = "trap 'echo got HUP; exit 0' HUP; echo ready; while :; do sleep 0.05; done";
    let (child, _, rest) = start_and_wait_for_a_line(&["run", "-n", "t", script]);
    // SAFETY: kill sends a signal to poller's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let out = finish(child);
    assert_eq!(out.code(), 128 + libc::SIGHUP);
    assert_eq!(rest.join().unwrap(), "t | got HUP\n");
}

#[test]
fn a_first_sigint_during_a_timeout_is_forwarded_not_a_kill() {
    // After the timeout's SIGTERM (ignored), one SIGINT reaches the command,
    // which ends cleanly: no SIGKILL, and the status stays the timeout's.
    let script = "trap '' TERM; trap 'exit 0' INT; echo ready; while :; do sleep 0.05; done";
    let mut child = spawn(poller().args([
        "run",
        "--trace",
        "--timeout",
        "200ms",
        "--kill-after",
        "100s",
        script,
    ]));
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("--timeout passed") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no timeout in the trace"
        );
    }
    // SAFETY: kill sends a signal to poller's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let rest = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut all);
        all
    });
    let out = finish(child);
    assert_eq!(out.code(), 124);
    let summary = rest.join().unwrap();
    assert!(summary.contains("exit 0 "), "{summary}");
}

#[test]
fn a_process_that_escapes_the_group_does_not_hold_the_shutdown() {
    // `setsid` takes the sleep out of the command's group: no signal of
    // poller's reaches it, and it keeps the stdout pipe open.
    let script = "setsid sh -c 'echo $$; exec sleep 60'; echo done";
    let started = Instant::now();
    let out = run(&[
        "run",
        "--timeout",
        "200ms",
        "--kill-after",
        "200ms",
        "-n",
        "s",
        script,
    ]);
    assert_eq!(out.code(), 124);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for the escaped sleep"
    );
    assert!(out.stderr().contains("exit 137"), "{}", out.stderr());
    let pid = printed_pid(&out);
    // SAFETY: kill sends a signal to the escaped sleep, ours to end.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn a_closed_stderr_stops_poller_without_a_panic() {
    let mut child = poller()
        .args([
            "run",
            "echo x >&2; sleep 0.2; echo y >&2",
            "echo $$; exec sleep 1000",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader goes away
    let started = Instant::now();
    let out = finish(child);
    assert_eq!(out.code(), 128 + libc::SIGPIPE, "not a panic (101)");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the sleep was stopped"
    );
}

#[test]
fn a_command_starting_with_a_dash_is_a_command() {
    let out = run(&["run", "-q", "-n", "d", "--", "-x"]);
    assert_eq!(out.code(), 127, "sh looked for a command named -x");
}

#[test]
fn a_second_sigint_kills_at_once() {
    let script = "trap '' INT TERM; echo ready; while :; do sleep 0.05; done";
    let started = Instant::now();
    let (child, _, _) = start_and_wait_for_a_line(&["run", "--kill-after", "100s", script]);
    for _ in 0..2 {
        // SAFETY: kill sends a signal to poller's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = finish(child);
    assert_eq!(out.code(), 130);
    assert!(out.stderr().contains("exit 137"), "{}", out.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "not after --kill-after"
    );
}

#[test]
fn timeout_exits_124_and_leaves_no_child() {
    let started = Instant::now();
    let out = run(&["run", "--timeout", "300ms", "echo $$; exec sleep 1000"]);
    assert_eq!(out.code(), 124);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the sleep was stopped"
    );
    let pid = printed_pid(&out);
    assert!(!alive(pid), "the sleep was killed and reaped");
}

#[test]
fn a_command_ignoring_sigterm_is_killed_after_kill_after() {
    // The shell ignores TERM; its sleeps do not, so the loop goes on until
    // SIGKILL.
    let script = "trap '' TERM; echo $$; while :; do sleep 0.05; done";
    let started = Instant::now();
    let out = run(&["run", "--timeout", "200ms", "--kill-after", "300ms", script]);
    assert_eq!(out.code(), 124);
    // Well before the default --kill-after of 5 s would have come.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(out.stderr().contains("exit 137"), "{}", out.stderr());
    let pid = printed_pid(&out);
    assert!(!alive(pid));
}

#[test]
fn two_hundred_commands_at_once() {
    // Each waits a second, so all 200 (600 fds of pipes and pidfds) are
    // there together.
    let commands: Vec<String> = (0..200).map(|i| format!("sleep 1; echo {i}")).collect();
    let mut args = vec!["run", "-q"];
    args.extend(commands.iter().map(String::as_str));
    let out = run(&args);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let mut numbers: Vec<u32> = out
        .stdout()
        .lines()
        .map(|l| l.split('|').nth(1).unwrap().trim().parse().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (0..200).collect::<Vec<_>>());
}

#[test]
fn a_hundred_megabytes_arrive_intact() {
    let dir = TempDir::new();
    let data = dir.path("data");
    // Random bytes: lines of every length, every byte value, no final newline.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 100000000 /dev/urandom > {}",
            data.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let mut expected = std::fs::read(&data).unwrap();
    if expected.last() != Some(&b'\n') {
        expected.push(b'\n'); // poller ends a partial last line
    }
    let out = run(&["run", "-q", "-n", "big", &format!("cat {}", data.display())]);
    assert_eq!(out.code(), 0);
    let back = strip(&out.stdout, b"big | ");
    assert!(
        back == expected,
        "{} bytes back of {}",
        back.len(),
        expected.len()
    );
}

#[test]
fn a_partial_last_line_and_invalid_utf8_pass_through() {
    let out = run(&["run", "-n", "x", r"printf 'a\n\377\376b\nlast'"]);
    assert_eq!(out.stdout, b"x | a\nx | \xff\xfeb\nx | last\n");
}

#[test]
fn a_command_closing_stdout_early_still_runs_to_its_end() {
    let out = run(&["run", "-n", "c", "exec >&-; sleep 0.2; echo done >&2"]);
    assert_eq!(out.code(), 0);
    assert!(out.stderr().starts_with("c | done\n"), "{}", out.stderr());
}

#[test]
fn a_procfile_names_its_commands() {
    let dir = TempDir::new();
    let procfile = dir.path("Procfile");
    std::fs::write(
        &procfile,
        "# comment\n\nweb: echo serving\nworker: echo working\n",
    )
    .unwrap();
    let out = run(&["run", "-q", "--procfile", procfile.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(
        out.sorted_stdout(),
        ["web    | serving", "worker | working"]
    );
}

#[test]
fn colours_and_timestamps_only_add_to_the_front() {
    let out = run(&["run", "-q", "--color", "always", "-n", "a", "echo hi"]);
    assert_eq!(out.stdout(), "\x1b[32ma |\x1b[0m hi\n");
    // auto on a pipe: no colour; never: none.
    for color in ["auto", "never"] {
        let out = run(&["run", "-q", "--color", color, "-n", "a", "echo hi"]);
        assert_eq!(out.stdout(), "a | hi\n", "--color {color}");
    }
    let out = run(&["run", "-q", "--timestamps", "-n", "a", "echo hi"]);
    let line = out.stdout();
    let (stamp, rest) = line.split_at(13);
    assert_eq!(rest, "a | hi\n");
    let shape: String = stamp
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "99:99:99.999 ");
}

#[test]
fn trace_shows_the_loop_at_work() {
    let out = run(&["run", "-q", "--trace", "-n", "a", "echo hi"]);
    assert_eq!(out.stdout(), "a | hi\n");
    let stderr = out.stderr();
    for what in ["event Event", "spawned pid", "exited"] {
        assert!(stderr.contains(what), "no {what:?} in:\n{stderr}");
    }
}

#[test]
fn every_backend_here_runs_commands() {
    let backends: &[&str] = if cfg!(target_os = "linux") {
        &["epoll", "poll"]
    } else {
        &["kqueue", "poll"]
    };
    for backend in backends {
        let out = run(&[
            "run",
            "-q",
            "--backend",
            backend,
            "-n",
            "a",
            "echo hi; exit 2",
        ]);
        assert_eq!(
            (out.code(), out.stdout()),
            (2, "a | hi\n".to_owned()),
            "{backend}"
        );
    }
}
