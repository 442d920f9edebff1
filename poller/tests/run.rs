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
    // The first command fails only after poller has reaped the second (its
    // pid is gone), so the second fails first in time, last in order.
    let dir = TempDir::new();
    let pid = dir.path("pid");
    let later = format!(
        "until [ -s {p} ]; do sleep 0.01; done; \
         while kill -0 $(cat {p}) 2>/dev/null; do sleep 0.01; done; exit 4",
        p = pid.display()
    );
    let earlier = format!(
        "echo $$ > {p}.new && mv {p}.new {p}; exit 3",
        p = pid.display()
    );
    let out = run(&["run", "-q", &later, &earlier, "true"]);
    assert_eq!(out.code(), 3);
    let out = run(&["run", "-q", "true", "true"]);
    assert_eq!(out.code(), 0);
    // Killed by a signal: 128 + N, as a shell says.
    let out = run(&["run", "-q", "kill -9 $$"]);
    assert_eq!(out.code(), 137);
}

#[test]
fn a_command_sh_cannot_find_exits_127_and_counts_as_a_failure() {
    // sh starts and reports 127 (poller's own spawn failure is the next
    // test).
    let out = run(&["run", "-q", "no-such-command-poller-test", "echo fine"]);
    assert_eq!(out.code(), 127);
    let width = "no-such-command-poller-test".len();
    assert_eq!(out.stdout(), format!("{:<width$} | fine\n", "echo"));
}

#[test]
fn a_command_poller_cannot_spawn_counts_as_failed_with_127() {
    // No `sh` on this PATH: the spawn itself fails.
    let mut command = poller();
    command
        .env("PATH", "/nonexistent-poller-test")
        .args(["run", "-n", "x,y", "true", "true"]);
    let out = finish(spawn(&mut command));
    assert_eq!(out.code(), 127);
    let stderr = out.stderr();
    assert!(stderr.contains("poller: x: cannot start: "), "{stderr}");
    // The next one is still tried.
    assert!(stderr.contains("poller: y: cannot start: "), "{stderr}");
    assert!(stderr.contains("poller: x  exit 127 "), "{stderr}");
}

#[test]
fn fail_fast_stops_the_others_and_keeps_the_first_status() {
    // Two sleeps run beside the failure; a fourth command waits for a slot
    // (-j 3) and is never started.
    let dir = TempDir::new();
    let marker = dir.path("started");
    let touch = format!("touch {}", marker.display());
    let started = Instant::now();
    let out = run(&[
        "run",
        "--fail-fast",
        "-j",
        "3",
        "-n",
        "f,s1,s2,q",
        "exit 5",
        "sleep 60",
        "sleep 60",
        &touch,
    ]);
    assert_eq!(out.code(), 5);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the sleeps were stopped"
    );
    let stderr = out.stderr();
    assert_eq!(stderr.matches("exit 143").count(), 2, "{stderr}");
    assert!(stderr.contains("poller: q   not run "), "{stderr}");
    assert!(!marker.exists(), "the queued command was started");
}

#[test]
fn jobs_limits_how_many_run_at_once() {
    let dir = TempDir::new();
    // Each command leaves a file while it runs, waits (2 s at most) until
    // it sees a second one, and prints how many it saw.
    let script = format!(
        "touch {d}/$$; i=0; \
         while [ $(ls {d} | wc -l) -lt 2 ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; \
         ls {d} | wc -l; rm {d}/$$",
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
    // Not one at a time either.
    assert!(seen.contains(&2), "{seen:?}");
}

#[test]
fn a_command_waiting_to_restart_keeps_its_slot() {
    // -j 1: the second command starts only after the first has failed,
    // waited its backoff, and run again to its end.
    let dir = TempDir::new();
    let flag = dir.path("failed-once");
    let first = format!(
        "if [ -e {f} ]; then echo again; exit 0; fi; touch {f}; echo once; exit 1",
        f = flag.display()
    );
    let args = [
        "run",
        "-q",
        "-j",
        "1",
        "--restart",
        "on-failure",
        "-n",
        "a,b",
    ];
    let out = run(&[&args[..], &[&first, "echo next"]].concat());
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(out.stdout(), "a | once\na | again\nb | next\n");
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
fn restarts_wait_100ms_then_twice_as_long() {
    // Each run's line is stamped as poller reads it; the next run starts a
    // backoff after the exit that followed. Lower bounds only: a timer is
    // never early, however loaded the machine (stamps are to the ms).
    let out = run(&[
        "run",
        "--timestamps",
        "--restart",
        "always",
        "--max-restarts",
        "2",
        "-n",
        "r",
        "echo run",
    ]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let stamps: Vec<f64> = out
        .stdout()
        .lines()
        .map(|line| {
            assert_eq!(&line[12..], " r | run", "{line}");
            let hms: Vec<f64> = line[..12].split(':').map(|f| f.parse().unwrap()).collect();
            hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
        })
        .collect();
    assert_eq!(stamps.len(), 3, "{}", out.stdout());
    // Across midnight the clock starts again at 0.
    let gap = |a: f64, b: f64| (b - a).rem_euclid(24.0 * 3600.0);
    let (first, second) = (gap(stamps[0], stamps[1]), gap(stamps[1], stamps[2]));
    assert!(first >= 0.099, "first backoff {first}s");
    assert!(second >= 0.199, "second backoff {second}s");
    let stderr = out.stderr();
    assert!(stderr.contains("restart 1 of 2 in 100ms"), "{stderr}");
    assert!(stderr.contains("restart 2 of 2 in 200ms"), "{stderr}");
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
fn each_stop_signal_reaches_the_commands_and_sets_the_status() {
    // SIGINT (130 for Ctrl-C) and the rest: the commands, in groups of
    // their own, get neither a terminal's Ctrl-C nor its hang-up, so
    // poller passes each on, as it is.
    let signals = [
        (libc::SIGINT, "INT"),
        (libc::SIGTERM, "TERM"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGQUIT, "QUIT"),
    ];
    for (signal, name) in signals {
        // No core file from a sleep that SIGQUIT ends.
        let script = format!(
            "ulimit -c 0; trap 'echo got {name}; exit 0' {name}; echo ready; \
             while :; do sleep 0.05; done"
        );
        let (child, line, rest) = start_and_wait_for_a_line(&["run", "-n", "t", &script]);
        assert_eq!(line, "t | ready\n");
        // SAFETY: kill sends a signal to poller's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = finish(child);
        assert_eq!(out.code(), 128 + signal, "{name}: {}", out.stderr());
        assert_eq!(rest.join().unwrap(), format!("t | got {name}\n"));
        assert!(
            out.stderr().contains("t  exit 0 "),
            "{name}: the command ended by its trap: {}",
            out.stderr()
        );
    }
}

#[test]
fn a_stopped_command_is_continued_so_that_it_acts_on_the_signal() {
    // A stopped process runs no handler until it is continued: poller
    // sends SIGCONT after the SIGTERM. Without it, only the SIGKILL of
    // --kill-after (100 s away) would end the stopped shell. (A signal
    // that kills by default is fatal even to a stopped process on Linux,
    // so the shell handles it.)
    let script = "trap 'exit 0' TERM; echo $$; while :; do sleep 0.05; done";
    let args = ["run", "--kill-after", "100s", "-n", "s", script];
    let (child, line, _) = start_and_wait_for_a_line(&args);
    let pid: i32 = line["s | ".len()..].trim().parse().expect("a pid");
    // SAFETY: kill sends signals to the shell, then to poller. The shell is
    // stopped whichever comes first: SIGCONT discards a pending stop.
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = finish(child);
    assert_eq!(out.code(), 143);
    assert!(
        out.stderr().contains("s  exit 0 "),
        "its handler ran, no SIGKILL: {}",
        out.stderr()
    );
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
fn a_closed_stdout_or_stderr_stops_poller_with_141() {
    for fd in [1, 2] {
        let mut child = spawn(poller().args([
            "run",
            &format!("echo x >&{fd}; sleep 0.2; echo y >&{fd}"),
            "exec sleep 1000",
        ]));
        // The reader goes away.
        if fd == 1 {
            drop(child.stdout.take());
        } else {
            drop(child.stderr.take());
        }
        let out = finish(child);
        // 141, not a panic (101); and poller ended: the sleep was stopped.
        assert_eq!(out.code(), 128 + libc::SIGPIPE, "fd {fd}");
    }
}

/// stdout is an open file poller shares with whoever started it, and they
/// may have made it non-blocking (node does, for a pipe). A full pipe then
/// answers a write with EAGAIN: poller waits for room, as a blocking write
/// would, instead of failing the run.
#[test]
fn a_non_blocking_stdout_that_fills_up_is_waited_for() {
    // pipeloop's pipes are non-blocking: the sender is the shared stdout.
    let (sender, receiver) = pipeloop::pipe::new().unwrap();
    receiver.set_nonblocking(false).unwrap();
    let watch = sender.try_clone().unwrap();
    let mut command = poller();
    command.args(["run", "-q", "-n", "y", "yes | head -n 300000"]);
    command.stdout(std::os::fd::OwnedFd::from(sender));
    let child = command
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(command);
    // Read nothing until the pipe is full: poller's next write finds no room.
    let deadline = Instant::now() + util::HANG;
    while util::has_room(&watch) {
        assert!(Instant::now() < deadline, "the pipe never filled");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(watch);
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut &receiver, &mut all).unwrap();
        all
    });
    let out = finish(child);
    let stdout = reader.join().unwrap();
    assert_eq!(out.code(), 0, "stderr: {}", out.stderr());
    assert_eq!(stdout, b"y | y\n".repeat(300_000));
}

#[test]
fn a_command_starting_with_a_dash_is_a_command() {
    let out = run(&["run", "-q", "-n", "d", "--", "-x"]);
    assert_eq!(out.code(), 127, "sh looked for a command named -x");
}

#[test]
fn a_second_sigint_kills_at_once() {
    // The command outlives SIGINT (it says so) and ignores SIGTERM. The
    // second SIGINT is sent once the command said it got the first: two
    // sent at once could arrive as one.
    let script = "trap 'echo got INT' INT; trap '' TERM; echo ready; \
                  while :; do sleep 0.05; done";
    let started = Instant::now();
    let args = ["run", "--kill-after", "100s", "-n", "t", script];
    let mut child = spawn(poller().args(args));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut expect_line = |want: &str| {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, want);
    };
    expect_line("t | ready\n");
    // SAFETY: kill sends a signal to poller's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    expect_line("t | got INT\n");
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = finish(child);
    assert_eq!(out.code(), 130);
    assert!(out.stderr().contains("t  exit 137 "), "{}", out.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "killed at the second SIGINT, not after --kill-after"
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
    // SIGKILL. --kill-after is longer than its default (5 s), so that a
    // lower bound alone, which no load can break, tells the two apart.
    let script = "trap '' TERM; echo $$; while :; do sleep 0.05; done";
    let args = [
        "run",
        "--trace",
        "--timeout",
        "200ms",
        "--kill-after",
        "5500ms",
    ];
    let out = run(&[&args[..], &["-n", "t", script]].concat());
    assert_eq!(out.code(), 124);
    let stderr = out.stderr();
    assert!(stderr.contains("t  exit 137 "), "{stderr}");
    // Trace lines start `[   0.201234s INFO ]`: seconds since the start.
    let logged = |what: &str| -> f64 {
        let line = stderr.lines().find(|l| l.contains(what)).expect(what);
        line[1..line.find("s ").unwrap()].trim().parse().unwrap()
    };
    let waited = logged("--kill-after passed") - logged("--timeout passed");
    assert!(waited >= 5.499, "SIGKILL {waited}s after the SIGTERM"); // to the µs
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
    let script = r"printf 'a\n\377\376b\nlast'; printf 'no end' >&2";
    let out = run(&["run", "-n", "x", script]);
    assert_eq!(out.stdout, b"x | a\nx | \xff\xfeb\nx | last\n");
    // On stderr too, before the summary.
    assert!(out.stderr().starts_with("x | no end\n"), "{}", out.stderr());
}

#[test]
fn lines_of_different_commands_never_interleave() {
    // Four commands at once, each writing lines of 1,000 bytes, which the
    // pipe reads cut anywhere: every line out is one command's whole line.
    let names = ["a", "b", "c", "d"];
    let commands: Vec<String> = names
        .iter()
        .map(|name| format!("yes {} | head -n 2000", name.repeat(1000)))
        .collect();
    let mut args = vec!["run", "-q", "-n", "a,b,c,d"];
    args.extend(commands.iter().map(String::as_str));
    let out = run(&args);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let mut count = [0; 4];
    for line in out.stdout().lines() {
        let (name, text) = line.split_once(" | ").expect("a prefixed line");
        let i = names.iter().position(|n| *n == name).expect("a name");
        assert!(text == name.repeat(1000), "a mixed line: {line:.60}...");
        count[i] += 1;
    }
    assert_eq!(count, [2000; 4]);
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

/// Runs poller to its end with stdout on a terminal (a pty) and stderr on
/// a pipe, with `NO_COLOR` set to `no_color` if given; returns what the
/// terminal got and the stderr.
fn run_on_a_terminal(args: &[&str], no_color: Option<&str>) -> (Vec<u8>, String) {
    use std::fs::{File, OpenOptions};
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt;

    // SAFETY: posix_openpt returns a new fd, or -1.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    assert!(master >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: the fd was just opened, and nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    // SAFETY: grantpt, unlockpt and ptsname take the master's fd; ptsname's
    // static buffer is copied at once, and no other test calls it.
    let name = unsafe {
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0);
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0);
        let name = libc::ptsname(master.as_raw_fd());
        assert!(!name.is_null());
        std::ffi::CStr::from_ptr(name).to_str().unwrap().to_owned()
    };
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(name)
        .unwrap();
    let mut command = poller();
    command.args(args).stdout(terminal);
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let child = command
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(command); // its copy of the terminal: only poller holds it now
    // Read as it comes; once poller is gone, the read fails (EIO) or ends.
    let reader = std::thread::spawn(move || {
        let mut master = File::from(master);
        let (mut all, mut buf) = (Vec::new(), [0; 4096]);
        while let Ok(n @ 1..) = master.read(&mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    let out = finish(child);
    (reader.join().unwrap(), out.stderr())
}

#[test]
fn auto_colours_a_terminal_unless_no_color_is_set_and_not_empty() {
    let args = ["run", "-q", "-n", "a", "echo hi; echo err >&2"];
    // The terminal turns `\n` into `\r\n`.
    let colored = b"\x1b[32ma |\x1b[0m hi\r\n".to_vec();
    let (terminal, stderr) = run_on_a_terminal(&args, None);
    assert_eq!(
        terminal,
        colored,
        "{:?}",
        String::from_utf8_lossy(&terminal)
    );
    // Per stream: stderr is a pipe.
    assert_eq!(stderr, "a | err\n");
    let (terminal, _) = run_on_a_terminal(&args, Some("1"));
    assert_eq!(terminal, b"a | hi\r\n", "NO_COLOR=1");
    // An empty NO_COLOR counts as unset (no-color.org).
    let (terminal, _) = run_on_a_terminal(&args, Some(""));
    assert_eq!(terminal, colored, "NO_COLOR=");
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
            "--trace",
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
        // The trace names the backend that waited.
        let woke = format!("pipeloop: {backend} woke");
        assert!(out.stderr().contains(&woke), "{backend}: {}", out.stderr());
    }
}
