//! The reactor's signals and children after a handler's error, and a
//! before-sleep hook that removes the last entry: nothing is lost and `run`
//! returns. One thread, cases one after another; a case that would hang
//! fails after `PATIENCE` instead. (Each of these failed before its fix;
//! they came from a second reader's review.)

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pipeloop::Backend;
use pipeloop::reactor::{CHILD_WATCH_ENV, ChildEvent, EventLoop, Flow, Timer};

const PATIENCE: Duration = Duration::from_secs(30);

/// Turns until `done`, ignoring handler errors (the loop is meant to be run
/// again after one); panics after `PATIENCE`.
fn run_until<T>(ev: &mut EventLoop<T>, data: &mut T, what: &str, done: impl Fn(&T) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(data) {
        assert!(
            Instant::now() < deadline,
            "{what}: not done after {PATIENCE:?}"
        );
        let _ = ev.run_once(data, Some(Duration::from_millis(100)));
    }
}

/// `dispatch_signals` takes every pending signal at once; when the handler
/// fails on one, the signals after it are delivered in the next turn.
/// Before the fix they were taken and never delivered.
fn a_signal_handler_error_loses_no_pending_signal(backend: Backend) {
    let mut ev = failing_on_the_first_of_two_signals(backend, Flow::Continue);
    let mut seen = Vec::new();
    run_until(&mut ev, &mut seen, "SIGUSR2 after a failed SIGUSR1", |s| {
        s.len() == 2
    });
}

/// What `a_stop_from_work_an_error_left_*` records.
#[derive(Default)]
struct Stopped {
    signals: Vec<libc::c_int>,
    guard_fired: bool,
}

/// A stop asked by work an error left for the next turn (here: the second
/// of two pending signals, after the first one's handler failed) ends that
/// turn before its poll, as a stop from the before-sleep hook does. Before
/// the fix the turn polled all the same: with nothing else to come, `run`
/// slept until the guard timer (or for ever without one).
fn a_stop_from_work_an_error_left_ends_run_without_polling(backend: Backend) {
    let mut ev: EventLoop<Stopped> = EventLoop::with_backend(backend).unwrap();
    ev.insert_signals(&[libc::SIGUSR1, libc::SIGUSR2], |cx, signal| {
        cx.data.signals.push(signal);
        if cx.data.signals.len() == 1 {
            return Err(std::io::Error::other("first signal fails"));
        }
        cx.stop();
        Ok(Flow::Continue)
    })
    .unwrap();
    // Only reached if the turn polls after the stop.
    ev.insert_timer(Timer::after(PATIENCE / 6), |cx| {
        cx.data.guard_fired = true;
        Ok(Flow::Continue)
    })
    .unwrap();
    raise_usr1_and_usr2();
    let mut data = Stopped::default();
    assert!(
        ev.run(&mut data).is_err(),
        "the first signal's handler fails"
    );
    assert_eq!(data.signals.len(), 1);
    ev.run(&mut data).unwrap();
    assert_eq!(data.signals.len(), 2, "the second signal, left over");
    assert!(
        !data.guard_fired,
        "run slept after the left-over work stopped it"
    );
}

/// Work an error left (the rest of an event: here the second of two
/// signals taken from the self-pipe) is done before the events kept after
/// that event, in the next turn. Before the fix a turn that dispatched kept
/// events skipped it, and it came a turn later, after events that came
/// after it.
fn work_an_error_left_comes_before_the_events_kept_after_it(backend: Backend) {
    let mut ev: EventLoop<Vec<String>> = EventLoop::with_backend(backend).unwrap();
    ev.insert_signals(&[libc::SIGUSR1, libc::SIGUSR2], |cx, signal| {
        cx.data.push(format!("signal {signal}"));
        if cx.data.len() == 1 {
            return Err(std::io::Error::other("first signal fails"));
        }
        Ok(Flow::Continue)
    })
    .unwrap();
    let (mut tx, rx) = pipeloop::pipe::new().unwrap();
    ev.insert(
        rx,
        pipeloop::Interest::READABLE,
        |cx, rx: &mut pipeloop::pipe::Receiver, _| {
            use std::io::Read;
            let mut buf = [0u8; 16];
            while rx.read(&mut buf).is_ok_and(|n| n > 0) {}
            cx.data.push("pipe".to_owned());
            Ok(Flow::Continue)
        },
    )
    .unwrap();
    // The signals first, then the pipe: one batch, in that order on Linux's
    // backends (a backend elsewhere that orders it otherwise makes no claim).
    raise_usr1_and_usr2();
    std::io::Write::write_all(&mut tx, b"x").unwrap();
    let mut seen = Vec::new();
    assert!(ev.run_once(&mut seen, Some(PATIENCE)).is_err());
    let first = format!("signal {}", libc::SIGUSR1);
    if seen != [first.clone()] {
        if cfg!(target_os = "linux") {
            panic!("the pipe came first: {seen:?}");
        }
        println!("(dispatched in another order: {seen:?}; no claim) ");
        return;
    }
    ev.run_once(&mut seen, Some(PATIENCE)).unwrap();
    let second = format!("signal {}", libc::SIGUSR2);
    assert_eq!(seen, [first, second, "pipe".to_owned()]);
}

#[derive(Default)]
struct Out {
    stdout: usize,
    exit: bool,
    failed: bool,
}

/// This binary as a child: grows its stdout pipe to 1 MiB, writes `size`
/// bytes in one go (all buffered: no later write makes a new edge), creates
/// the file `written`, then sleeps `secs` and exits.
fn writer(size: usize, secs: u32, written: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.env("REVIEW_CHILD", format!("{size}:{secs}"));
    command.env("REVIEW_CHILD_WRITTEN", written);
    command
}

/// A path for `writer`'s file, not there yet.
fn written_path(case: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("pipeloop-{case}-{}-written", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Waits until `writer` has written all it writes (its file is there).
fn wait_until_written(path: &Path) {
    let deadline = Instant::now() + PATIENCE;
    while !path.exists() {
        assert!(Instant::now() < deadline, "the child wrote nothing");
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(path);
}

fn child_main(spec: &str) -> ! {
    let (size, secs) = spec.split_once(':').unwrap();
    let (size, secs): (usize, u64) = (size.parse().unwrap(), secs.parse().unwrap());
    // Linux can grow the pipe so that one write buffers everything (no later
    // write makes a new edge: the case the test is about). Elsewhere the
    // writes come in pieces, and all of it must still be read.
    #[cfg(target_os = "linux")]
    {
        // SAFETY: fcntl on fd 1, which this process owns.
        let grown = unsafe { libc::fcntl(1, libc::F_SETPIPE_SZ, 1 << 20) };
        assert!(grown >= size as i32, "F_SETPIPE_SZ: {grown}");
    }
    use std::io::Write;
    std::io::stdout().write_all(&vec![b'x'; size]).unwrap();
    std::io::stdout().flush().unwrap();
    std::fs::write(std::env::var_os("REVIEW_CHILD_WRITTEN").unwrap(), "").unwrap();
    std::thread::sleep(Duration::from_secs(secs));
    std::process::exit(0);
}

fn fail_first(
    cx: &mut pipeloop::reactor::Cx<'_, Out>,
    event: ChildEvent<'_>,
) -> std::io::Result<Flow> {
    match event {
        ChildEvent::Stdout(b) => cx.data.stdout += b.len(),
        ChildEvent::Exit(_) => cx.data.exit = true,
        ChildEvent::Stderr(_) => {}
    }
    if !cx.data.failed {
        cx.data.failed = true;
        return Err(std::io::Error::other("first chunk fails"));
    }
    Ok(Flow::Continue)
}

/// `read_chunks` returns on the handler's error after a full 64 KiB chunk,
/// leaving bytes in the pipe, and in edge mode no event comes for that pipe
/// again (the last read was not short, and the child writes no more): the
/// next turn reads on. Before the fix the rest was not read while the child
/// lived.
fn a_child_handler_error_leaves_no_output_unread(backend: Backend) {
    const SIZE: usize = 300_000;
    let mut ev: EventLoop<Out> = EventLoop::with_backend(backend).unwrap();
    let written = written_path("unread");
    // It outlives `PATIENCE`: its hang-up must not be what gets the rest
    // read (it was, at 30 s, when it lived as long as `PATIENCE`).
    let key = ev
        .spawn(&mut writer(SIZE, 300, &written), fail_first)
        .unwrap();
    wait_until_written(&written); // all of it buffered before the first poll
    let mut out = Out::default();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_until(&mut ev, &mut out, "output after a failed chunk", |o| {
            o.stdout == SIZE
        })
    }));
    ev.remove(key); // kills the child
    if let Err(panic) = result {
        println!("(read {} of {SIZE})", out.stdout);
        std::panic::resume_unwind(panic);
    }
}

/// The same after a hang-up, a pipe's last event: the child exited with
/// more than a chunk buffered, and the handler fails on the first chunk.
/// Before the fix the rest was never read and `Exit` never came.
fn a_child_handler_error_after_a_hang_up_leaves_no_output_unread(backend: Backend) {
    const SIZE: usize = 300_000;
    let mut ev: EventLoop<Out> = EventLoop::with_backend(backend).unwrap();
    let written = written_path("hang-up");
    let key = ev
        .spawn(&mut writer(SIZE, 0, &written), fail_first)
        .unwrap();
    // Written and exited before the first poll: its first event is the hang-up.
    util::wait_exited_not_reaped(ev.pid(key).unwrap());
    let _ = std::fs::remove_file(&written);
    let mut out = Out::default();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_until(
            &mut ev,
            &mut out,
            "Exit after a failed chunk (hang-up)",
            |o| o.exit,
        )
    }));
    if let Err(panic) = result {
        println!("(read {} of {SIZE})", out.stdout);
        std::panic::resume_unwind(panic);
    }
    assert_eq!(out.stdout, SIZE);
}

/// (`SIGCHLD` watch) `children_exited` stops at the first child's `Exit`
/// error; the children it was about to ask are asked in the next turn, as
/// their pipes reached end of file long ago and nothing else asks again.
/// Before the fix they were not, and a child's `Exit` was lost for good.
fn an_exit_handler_error_does_not_lose_the_other_childs_exit(backend: Backend) {
    let mut ev: EventLoop<Vec<i32>> = EventLoop::with_backend(backend).unwrap();
    let (go, go_writer) = std::io::pipe().unwrap();
    let mut pids = Vec::new();
    for code in [3, 5] {
        let key = ev
            .spawn(
                // Output closed at once, exit when the test says: only
                // SIGCHLD reports it.
                Command::new("sh")
                    .arg("-c")
                    .arg(format!("exec >/dev/null 2>&1; read go; exit {code}"))
                    .stdin(go.try_clone().unwrap()),
                move |cx, event| {
                    if let ChildEvent::Exit(status) = event {
                        cx.data.push(status.code().unwrap());
                        if cx.data.len() == 1 {
                            return Err(std::io::Error::other("first exit fails"));
                        }
                    }
                    Ok(Flow::Continue)
                },
            )
            .unwrap();
        pids.push(ev.pid(key).unwrap());
    }
    drop(go);
    let mut exits = Vec::new();
    // Take the hang-ups now (`describe` lists a pipe with its token until
    // its end of file; under SIGCHLD nothing else has one); then let both
    // children exit before the loop looks again, so that one SIGCHLD turn
    // sees both.
    let deadline = Instant::now() + PATIENCE;
    while ev.describe().to_string().contains(" token ") {
        assert!(Instant::now() < deadline, "the pipes never hung up");
        let _ = ev.run_once(&mut exits, Some(Duration::from_millis(100)));
    }
    drop(go_writer);
    for pid in pids {
        util::wait_exited_not_reaped(pid);
    }
    assert!(exits.is_empty(), "an exit before the children were let go");
    run_until(&mut ev, &mut exits, "both exits", |e| e.len() == 2);
}

/// `run` checks for idleness before the before-sleep hook, so a hook that
/// removes the last entry must keep the turn from polling. Before the fix
/// `wait` polled with no timeout and nothing registered, and `run` never
/// returned.
fn before_sleep_removing_the_last_entry_lets_run_return(backend: Backend) {
    let mut ev: EventLoop<Option<pipeloop::reactor::Key>> =
        EventLoop::with_backend(backend).unwrap();
    let key = ev
        .insert_timer(Timer::after(Duration::from_secs(3600)), |_| {
            Ok(Flow::Continue)
        })
        .unwrap();
    ev.before_sleep(|cx| {
        if let Some(key) = cx.data.take() {
            cx.remove(key);
        }
        Ok(())
    });
    let mut data = Some(key);
    returns_within_patience("run after the hook removed the last entry", || {
        ev.run(&mut data).unwrap()
    });
}

/// Left-over work (the second of two signals, after the first one's
/// handler failed) that removes the last entry lets `run` return: nothing
/// is left to wait for. Before the fix the turn polled without a timeout,
/// with nothing that could end the wait.
fn left_over_work_removing_the_last_entry_lets_run_return(backend: Backend) {
    let mut ev = failing_on_the_first_of_two_signals(backend, Flow::Remove);
    let mut seen = Vec::new();
    assert!(
        ev.run(&mut seen).is_err(),
        "the first signal's handler fails"
    );
    returns_within_patience("run after left-over work removed the last entry", || {
        ev.run(&mut seen).unwrap()
    });
    assert_eq!(seen, [libc::SIGUSR1, libc::SIGUSR2]);
    assert!(ev.is_empty());
}

/// The same when the caller removes the failed entry between the runs, a
/// natural way to recover from an error: the work it left finds its key
/// stale and does nothing, and `run` returns.
fn left_over_work_of_a_removed_entry_lets_run_return(backend: Backend) {
    let mut ev: EventLoop<Vec<libc::c_int>> = EventLoop::with_backend(backend).unwrap();
    let key = ev
        .insert_signals(&[libc::SIGUSR1, libc::SIGUSR2], |cx, signal| {
            cx.data.push(signal);
            Err(std::io::Error::other("every signal fails"))
        })
        .unwrap();
    raise_usr1_and_usr2();
    let mut seen = Vec::new();
    assert!(
        ev.run(&mut seen).is_err(),
        "the first signal's handler fails"
    );
    ev.remove(key);
    returns_within_patience("run after the failed entry was removed", || {
        ev.run(&mut seen).unwrap()
    });
    assert_eq!(seen, [libc::SIGUSR1], "the removed handler ran again");
}

/// A loop watching SIGUSR1 and SIGUSR2, both raised: its handler records
/// each signal, fails on the first and returns `then` after it.
fn failing_on_the_first_of_two_signals(
    backend: Backend,
    then: Flow,
) -> EventLoop<Vec<libc::c_int>> {
    let mut ev: EventLoop<Vec<libc::c_int>> = EventLoop::with_backend(backend).unwrap();
    ev.insert_signals(&[libc::SIGUSR1, libc::SIGUSR2], move |cx, signal| {
        cx.data.push(signal);
        if cx.data.len() == 1 {
            return Err(std::io::Error::other("first signal fails"));
        }
        Ok(then)
    })
    .unwrap();
    raise_usr1_and_usr2();
    ev
}

fn raise_usr1_and_usr2() {
    // SAFETY: raise sends a signal to this thread; the test's watcher has
    // pipeloop's handler installed for both.
    unsafe {
        libc::raise(libc::SIGUSR1);
        libc::raise(libc::SIGUSR2);
    }
}

/// Runs `f`, ending the whole process as failed if it has not returned
/// after `PATIENCE`: a hang cannot be caught as a panic. (So the cases that
/// use it come last.)
fn returns_within_patience(what: &str, f: impl FnOnce()) {
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        let what = what.to_owned();
        std::thread::spawn(move || {
            std::thread::sleep(PATIENCE);
            if !done.load(Ordering::SeqCst) {
                println!("FAILED: {what} never returned");
                std::process::exit(101);
            }
        })
    };
    f();
    done.store(true, Ordering::SeqCst);
    drop(watchdog);
}

type Case = fn(Backend);

const CASES: &[(&str, Case, bool)] = &[
    (
        "a_signal_handler_error_loses_no_pending_signal",
        a_signal_handler_error_loses_no_pending_signal,
        false,
    ),
    (
        "a_child_handler_error_leaves_no_output_unread",
        a_child_handler_error_leaves_no_output_unread,
        false,
    ),
    (
        "a_child_handler_error_after_a_hang_up_leaves_no_output_unread",
        a_child_handler_error_after_a_hang_up_leaves_no_output_unread,
        false,
    ),
    (
        "an_exit_handler_error_does_not_lose_the_other_childs_exit",
        an_exit_handler_error_does_not_lose_the_other_childs_exit,
        true,
    ),
    (
        "a_stop_from_work_an_error_left_ends_run_without_polling",
        a_stop_from_work_an_error_left_ends_run_without_polling,
        false,
    ),
    (
        "work_an_error_left_comes_before_the_events_kept_after_it",
        work_an_error_left_comes_before_the_events_kept_after_it,
        false,
    ),
    // Last: they end the process if they hang.
    (
        "before_sleep_removing_the_last_entry_lets_run_return",
        before_sleep_removing_the_last_entry_lets_run_return,
        false,
    ),
    (
        "left_over_work_removing_the_last_entry_lets_run_return",
        left_over_work_removing_the_last_entry_lets_run_return,
        false,
    ),
    (
        "left_over_work_of_a_removed_entry_lets_run_return",
        left_over_work_of_a_removed_entry_lets_run_return,
        false,
    ),
];

fn main() {
    if let Ok(spec) = std::env::var("REVIEW_CHILD") {
        child_main(&spec);
    }
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    for &(name, case, sigchld) in CASES {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        for &backend in Backend::available() {
            // SAFETY: one thread here, nothing reads the environment meanwhile.
            unsafe {
                if sigchld {
                    std::env::set_var(CHILD_WATCH_ENV, "sigchld");
                } else {
                    std::env::remove_var(CHILD_WATCH_ENV);
                }
            }
            print!("test {name} [{backend}] ... ");
            match std::panic::catch_unwind(|| case(backend)) {
                Ok(()) => {
                    println!("ok");
                    passed += 1;
                }
                Err(_) => {
                    println!("FAILED");
                    failed += 1;
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(101);
    }
}
