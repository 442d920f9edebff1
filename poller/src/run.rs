//! `poller run`: the supervisor, as handlers on one `EventLoop`.
//!
//! Everything happens in handlers, on the loop's thread:
//!
//! - a zero timer starts the first commands (up to `--jobs`);
//! - each child's handler prints its output as lines and, at its `Exit`,
//!   decides: restart it after a backoff timer, or count it done and start
//!   the next queued command;
//! - SIGINT, SIGTERM, SIGHUP and SIGQUIT, the `--timeout` timer,
//!   `--fail-fast` and a reader that went away all begin the same
//!   shutdown: nothing new starts, the running commands' process groups
//!   get the signal, and a `--kill-after` timer sends SIGKILL to what is
//!   left;
//! - the loop stops when no command is running or waiting to restart.
//!
//! Each command runs in a process group of its own (`process_group(0)`), so
//! a terminal's Ctrl-C reaches only poller, which forwards it; and a
//! signal for a command reaches what it started too.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use pipeloop::reactor::{ChildEvent, Cx, EventLoop, Flow, Key, Timer};

use crate::cli::Restart;
use crate::output::{self, Lines, Prefix, Sink};
use crate::plan::Job;

/// How `poller run` is asked to behave.
pub struct Config {
    pub jobs: Vec<Job>,
    /// Commands running (or waiting to restart) at once, at most.
    pub parallel: usize,
    pub fail_fast: bool,
    pub restart: Restart,
    pub max_restarts: u32,
    pub kill_after: Duration,
    pub timeout: Option<Duration>,
    pub quiet: bool,
    pub color_out: bool,
    pub color_err: bool,
    pub timestamps: bool,
}

/// How long after SIGKILL the commands whose pipes are still open are given
/// up (see `kill_now`).
const ABANDON_AFTER: Duration = Duration::from_millis(200);

/// The first backoff before a restart; each next one doubles, up to
/// [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Colours for names, in turn (ANSI: green, yellow, blue, magenta, cyan,
/// red).
const COLORS: [u8; 6] = [32, 33, 34, 35, 36, 31];

/// Why the run is being stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shutdown {
    /// SIGINT, SIGTERM, SIGHUP or SIGQUIT to poller: exits 128 + N.
    Signal(libc::c_int),
    /// `--timeout` passed: exits 124, as timeout(1).
    Timeout,
    /// `--fail-fast` and a command failed: exits with its status.
    FailFast,
    /// poller's stdout or stderr could not be written: exits 141 for a
    /// reader that went away (as SIGPIPE would), 1 otherwise.
    Output(i32),
}

#[derive(Debug)]
enum State {
    Queued,
    Running {
        key: Key,
        pid: u32,
        since: Instant,
    },
    /// Waiting out the backoff before a restart, after exiting with
    /// `status`.
    Backoff {
        timer: Key,
        status: i32,
    },
    /// Exited for good, with this status (128 + N for signal N).
    Done(i32),
    /// Never started: the run was stopped first.
    Skipped,
}

/// One command and what became of it.
struct Task {
    job: Job,
    stdout: Lines,
    stderr: Lines,
    state: State,
    restarts: u32,
    /// Bytes of output, over every run.
    bytes: u64,
    /// Time spent running, over every run.
    wall: Duration,
}

impl Task {
    /// Adds the run that ends `now` to the command's wall time.
    fn count_wall_time(&mut self, now: Instant) {
        if let State::Running { since, .. } = self.state {
            self.wall += now.saturating_duration_since(since);
        }
    }
}

/// The widest of `names`, in characters: what the prefixes pad to.
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(|name| name.chars().count()).max().unwrap_or(0)
}

/// The loop's data: every command, and the run's state.
pub struct Supervisor {
    config: Config,
    tasks: Vec<Task>,
    queue: VecDeque<usize>,
    /// Commands running or waiting to restart.
    active: usize,
    /// The status of the first command to fail for good, in time order.
    first_failure: Option<i32>,
    shutdown: Option<Shutdown>,
    timeout: Option<Key>,
    kill_timer: Option<Key>,
    /// SIGINT, SIGTERM, SIGHUP and SIGQUIT received: the second kills.
    user_signals: u32,
    stdout: Sink,
    stderr: Sink,
    /// The local time of the chunk being printed (`--timestamps`).
    stamp: Vec<u8>,
}

impl Supervisor {
    pub fn new(config: Config) -> Supervisor {
        let width = name_width(config.jobs.iter().map(|j| j.name.as_str()));
        let tasks = config
            .jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let color = COLORS[i % COLORS.len()];
                let prefix = |on: bool| Prefix::new(&job.name, width, on.then_some(color));
                Task {
                    job: job.clone(),
                    stdout: Lines::new(prefix(config.color_out)),
                    stderr: Lines::new(prefix(config.color_err)),
                    state: State::Queued,
                    restarts: 0,
                    bytes: 0,
                    wall: Duration::ZERO,
                }
            })
            .collect();
        Supervisor {
            queue: (0..config.jobs.len()).collect(),
            stdout: Sink::fd(1),
            stderr: Sink::fd(2),
            config,
            tasks,
            active: 0,
            first_failure: None,
            shutdown: None,
            timeout: None,
            kill_timer: None,
            user_signals: 0,
            stamp: Vec::new(),
        }
    }

    /// poller's exit status once the loop has stopped.
    pub fn exit_status(&self) -> i32 {
        match self.shutdown {
            Some(Shutdown::Signal(signal)) => 128 + signal,
            Some(Shutdown::Timeout) => 124,
            Some(Shutdown::Output(status)) => status,
            Some(Shutdown::FailFast) | None => self.first_failure.unwrap_or(0),
        }
    }

    /// One line per command on stderr: name, status, restarts, wall time,
    /// bytes of output.
    pub fn print_summary(&mut self) {
        if self.config.quiet {
            return;
        }
        let width = name_width(self.tasks.iter().map(|t| t.job.name.as_str()));
        let mut text = String::new();
        for task in &self.tasks {
            let status = match task.state {
                State::Done(status) => format!("exit {status:<3}"),
                _ => "not run ".to_owned(),
            };
            text += &format!(
                "poller: {:<width$}  {status}  restarts {}  {:.3}s  {} bytes\n",
                task.job.name,
                task.restarts,
                task.wall.as_secs_f64(),
                task.bytes,
            );
        }
        self.say(&text);
    }

    /// poller's own message on stderr, between whole lines of output. A
    /// stderr that cannot be written loses it (the commands' stderr lines
    /// going there start the shutdown; see `output_failed`).
    fn say(&mut self, text: &str) {
        let _ = self.stderr.flush();
        let _ = io::stderr().write_all(text.as_bytes());
    }

    /// Sends `signal` to every running command's process group, and
    /// SIGCONT after it, as timeout(1) does: a stopped command acts on it
    /// at once.
    fn signal_all(&self, signal: libc::c_int) {
        for task in &self.tasks {
            if let State::Running { pid, .. } = task.state {
                kill_group(pid, signal);
                if signal != libc::SIGKILL {
                    kill_group(pid, libc::SIGCONT);
                }
            }
        }
    }
}

/// No command outlives poller, whichever way `run` ends (a loop error, a
/// panic unwinding through it): what still runs when the supervisor goes
/// is killed, process group and all. After a normal end nothing runs.
impl Drop for Supervisor {
    fn drop(&mut self) {
        for task in &self.tasks {
            if let State::Running { pid, .. } = task.state {
                kill_group(pid, libc::SIGKILL);
            }
        }
    }
}

/// Runs the supervisor on `ev` until every command is done; returns
/// poller's exit status.
pub fn run(mut ev: EventLoop<Supervisor>, config: Config) -> io::Result<i32> {
    let timeout = config.timeout;
    let mut sup = Supervisor::new(config);
    ev.insert_signals(&STOP_SIGNALS, on_signal)?;
    ev.insert_timer(Timer::after(Duration::ZERO), |cx| {
        fill_slots(cx);
        Ok(Flow::Continue)
    })?;
    if let Some(timeout) = timeout {
        sup.timeout = Some(ev.insert_timer(Timer::after(timeout), |cx| {
            log::info!(target: "poller", "poller: --timeout passed: stopping the commands");
            cx.data.timeout = None;
            begin_shutdown(cx, Shutdown::Timeout, libc::SIGTERM);
            Ok(Flow::Continue)
        })?);
    }
    let result = ev.run(&mut sup);
    if let Err(e) = &result {
        sup.say(&format!("poller: the event loop failed: {e}\n"));
    }
    drop(ev); // kills and reaps any command still in it (not its group)
    sup.print_summary();
    result.map(|()| sup.exit_status())
}

/// Starts queued commands while there are free slots.
fn fill_slots(cx: &mut Cx<'_, Supervisor>) {
    while cx.data.active < cx.data.config.parallel && cx.data.shutdown.is_none() {
        let Some(i) = cx.data.queue.pop_front() else {
            break;
        };
        cx.data.active += 1;
        start(cx, i);
    }
    stop_when_done(cx);
}

/// Spawns command `i` (first run or a restart); a command that cannot be
/// spawned counts as failed with 127, as `sh` reports a missing command.
fn start(cx: &mut Cx<'_, Supervisor>, i: usize) {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("--") // a command starting with `-` is a command, not an option
        .arg(&cx.data.tasks[i].job.command)
        .stdin(Stdio::null())
        .process_group(0);
    match cx.spawn(&mut command, move |cx, event| on_child(cx, i, event)) {
        Ok(key) => {
            let pid = cx.pid(key).unwrap_or(0);
            let since = cx.now();
            log::info!(target: "poller", "poller: started {} as pid {pid}", cx.data.tasks[i].job.name);
            cx.data.tasks[i].state = State::Running { key, pid, since };
        }
        Err(e) => {
            let name = cx.data.tasks[i].job.name.clone();
            cx.data.say(&format!("poller: {name}: cannot start: {e}\n"));
            done(cx, i, 127);
        }
    }
}

fn on_child(cx: &mut Cx<'_, Supervisor>, i: usize, event: ChildEvent<'_>) -> io::Result<Flow> {
    let sup = &mut *cx.data;
    if sup.config.timestamps {
        sup.stamp = output::timestamp();
    }
    let task = &mut sup.tasks[i];
    let written = match event {
        ChildEvent::Stdout(chunk) => {
            task.bytes += chunk.len() as u64;
            task.stdout.push(&mut sup.stdout, &sup.stamp, chunk);
            sup.stdout.flush()
        }
        ChildEvent::Stderr(chunk) => {
            task.bytes += chunk.len() as u64;
            task.stderr.push(&mut sup.stderr, &sup.stamp, chunk);
            sup.stderr.flush()
        }
        ChildEvent::Exit(status) => {
            task.stdout.finish(&mut sup.stdout, &sup.stamp);
            task.stderr.finish(&mut sup.stderr, &sup.stamp);
            let written = sup.stdout.flush().and(sup.stderr.flush());
            exited(cx, i, status);
            written
        }
    };
    if let Err(e) = written {
        output_failed(cx, &e);
    }
    Ok(Flow::Continue)
}

/// poller's own output failed: stop, as a program killed by SIGPIPE would
/// (but letting the commands end first, and with the summary).
fn output_failed(cx: &mut Cx<'_, Supervisor>, e: &io::Error) {
    if cx.data.shutdown.is_some() {
        return;
    }
    let status = if e.kind() == io::ErrorKind::BrokenPipe {
        128 + libc::SIGPIPE
    } else {
        cx.data
            .say(&format!("poller: cannot write the output: {e}\n"));
        1
    };
    begin_shutdown(cx, Shutdown::Output(status), libc::SIGTERM);
}

/// Command `i` exited: restart it, or count it done.
fn exited(cx: &mut Cx<'_, Supervisor>, i: usize, status: ExitStatus) {
    let code = status_code(status);
    let now = cx.now();
    let sup = &mut *cx.data;
    let task = &mut sup.tasks[i];
    task.count_wall_time(now);
    log::info!(target: "poller", "poller: {} exited with status {code}", task.job.name);
    let wanted = match sup.config.restart {
        Restart::Never => false,
        Restart::OnFailure => code != 0,
        Restart::Always => true,
    };
    if !wanted || sup.shutdown.is_some() || task.restarts >= sup.config.max_restarts {
        done(cx, i, code);
        return;
    }
    task.restarts += 1;
    let delay = backoff(task.restarts);
    if !sup.config.quiet {
        let text = format!(
            "poller: {} exited with status {code}; restart {} of {} in {delay:?}\n",
            task.job.name, task.restarts, sup.config.max_restarts
        );
        sup.say(&text);
    }
    match cx.insert_timer(Timer::after(delay), move |cx| {
        start(cx, i);
        Ok(Flow::Continue)
    }) {
        Ok(timer) => {
            cx.data.tasks[i].state = State::Backoff {
                timer,
                status: code,
            }
        }
        Err(_) => done(cx, i, code),
    }
}

/// 100 ms before the first restart, doubling each time, 10 s at most.
fn backoff(restart: u32) -> Duration {
    let doublings = restart.saturating_sub(1).min(16);
    (BACKOFF_FIRST * (1 << doublings)).min(BACKOFF_MAX)
}

/// Command `i` is done for good, with `code`.
fn done(cx: &mut Cx<'_, Supervisor>, i: usize, code: i32) {
    let sup = &mut *cx.data;
    sup.tasks[i].state = State::Done(code);
    sup.active -= 1;
    if code != 0 && sup.shutdown.is_none() {
        sup.first_failure.get_or_insert(code);
        if sup.config.fail_fast {
            let name = sup.tasks[i].job.name.clone();
            log::info!(target: "poller", "poller: --fail-fast: {name} failed, stopping the others");
            begin_shutdown(cx, Shutdown::FailFast, libc::SIGTERM);
        }
    }
    fill_slots(cx);
}

/// Stops the run: nothing new starts, running commands get `signal`, and
/// SIGKILL after `--kill-after`.
fn begin_shutdown(cx: &mut Cx<'_, Supervisor>, why: Shutdown, signal: libc::c_int) {
    cx.data.shutdown = Some(why);
    for i in std::mem::take(&mut cx.data.queue) {
        cx.data.tasks[i].state = State::Skipped;
    }
    if let Some(timer) = cx.data.timeout.take() {
        cx.remove(timer);
    }
    cancel_restarts(cx);
    cx.data.signal_all(signal);
    let kill_after = cx.data.config.kill_after;
    let kill = cx.insert_timer(Timer::after(kill_after), |cx| {
        log::info!(target: "poller", "poller: --kill-after passed: SIGKILL to what is left");
        cx.data.kill_timer = None;
        kill_now(cx);
        Ok(Flow::Continue)
    });
    // Without the timer, kill now rather than wait without bound.
    match kill {
        Ok(key) => cx.data.kill_timer = Some(key),
        Err(_) => kill_now(cx),
    }
    stop_when_done(cx);
}

/// SIGKILL to every running command's group; then, after [`ABANDON_AFTER`]
/// (time for the pipes of what died to drain), the commands whose pipes are
/// still open are given up: their entries removed, their status 137. That
/// ends the run even when a process that left the command's group (`setsid`,
/// a daemon) keeps its stdout open.
fn kill_now(cx: &mut Cx<'_, Supervisor>) {
    cx.data.signal_all(libc::SIGKILL);
    let abandoned = cx.insert_timer(Timer::after(ABANDON_AFTER), |cx| {
        abandon_running(cx);
        Ok(Flow::Continue)
    });
    if abandoned.is_err() {
        abandon_running(cx);
    }
}

fn abandon_running(cx: &mut Cx<'_, Supervisor>) {
    for i in 0..cx.data.tasks.len() {
        if let State::Running { key, .. } = cx.data.tasks[i].state {
            let name = &cx.data.tasks[i].job.name;
            log::info!(target: "poller", "poller: {name}: its pipes are still open; giving it up");
            cx.remove(key); // kills and reaps its `sh`, closes the pipes
            let now = cx.now();
            cx.data.tasks[i].count_wall_time(now);
            done(cx, i, 128 + libc::SIGKILL);
        }
    }
}

/// Commands waiting to restart are done, with the status they last had.
fn cancel_restarts(cx: &mut Cx<'_, Supervisor>) {
    for i in 0..cx.data.tasks.len() {
        if let State::Backoff { timer, status } = cx.data.tasks[i].state {
            cx.remove(timer);
            cx.data.tasks[i].state = State::Done(status);
            cx.data.active -= 1;
        }
    }
}

/// The signals that stop poller: each is forwarded to the commands, and
/// poller exits 128 + N. SIGHUP is among them because the commands, in
/// process groups of their own, do not get a terminal's hang-up themselves.
const STOP_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

fn on_signal(cx: &mut Cx<'_, Supervisor>, signal: libc::c_int) -> io::Result<Flow> {
    let name = pipeloop::signal::name(signal).unwrap_or("a signal");
    cx.data.user_signals += 1;
    if cx.data.user_signals > 1 {
        log::info!(target: "poller", "poller: {name}, a second stop signal: SIGKILL to every command");
        kill_now(cx);
    } else if cx.data.shutdown.is_none() {
        log::info!(target: "poller", "poller: {name}: forwarding it to every command");
        begin_shutdown(cx, Shutdown::Signal(signal), signal);
    } else {
        // Stopping already (a timeout, --fail-fast): the exit status stays
        // that reason's; the signal still reaches the commands.
        log::info!(target: "poller", "poller: {name} while stopping: forwarding it");
        cx.data.signal_all(signal);
    }
    Ok(Flow::Continue)
}

/// Ends the loop once nothing runs or waits to restart, and nothing waits
/// in the queue that could still start.
fn stop_when_done(cx: &mut Cx<'_, Supervisor>) {
    let sup = &mut *cx.data;
    if sup.active == 0 && (sup.queue.is_empty() || sup.shutdown.is_some()) {
        if let Some(timer) = sup.kill_timer.take() {
            cx.remove(timer);
        }
        cx.stop();
    }
}

/// An exit status as a shell reports it: the code, or 128 + N for a
/// command killed by signal N.
fn status_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

/// Sends `signal` to the process group `pid` leads.
fn kill_group(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 0 {
        return; // never the caller's own group, nor every process
    }
    // SAFETY: kill with a negative pid signals that process group; it
    // touches no memory.
    unsafe { libc::kill(-pid, signal) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_up_to_10s() {
        let delays: Vec<u64> = (1..=10).map(|r| backoff(r).as_millis() as u64).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
