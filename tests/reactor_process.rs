//! The reactor's signals and children, which change process-wide state (a
//! signal's disposition, `SIGCHLD`, waiting for children): one thread, its
//! own binary (`harness = false`), cases one after another. The child cases
//! run twice: watched through pidfds (Linux's default) and through
//! `SIGCHLD` (what macOS and the BSDs use), chosen with
//! `PIPELOOP_CHILD_WATCH`.

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pipeloop::reactor::{CHILD_WATCH_ENV, ChildEvent, EventLoop, Flow};
use pipeloop::{Backend, signal};

const PATIENCE: Duration = Duration::from_secs(30);

/// Counts allocations while `COUNTING` is set (this binary runs one thread).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; counting touches
// only atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Delivering signals to a handler allocates nothing once the loop is warm.
fn delivering_signals_does_not_allocate(backend: Backend) {
    let mut ev: EventLoop<usize> = EventLoop::with_backend(backend).unwrap();
    ev.insert_signals(&[libc::SIGUSR1], |cx, _| {
        *cx.data += 1;
        Ok(Flow::Continue)
    })
    .unwrap();
    let mut seen = 0;
    let raise_and_turn = |ev: &mut EventLoop<usize>, seen: &mut usize| {
        // SAFETY: raise only sends a signal to this thread; pipeloop's
        // handler is installed for it.
        unsafe { libc::raise(libc::SIGUSR1) };
        let want = *seen + 1;
        while *seen < want {
            ev.run_once(seen, Some(PATIENCE)).unwrap();
        }
    };
    for _ in 0..5 {
        raise_and_turn(&mut ev, &mut seen);
    }
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for _ in 0..50 {
        raise_and_turn(&mut ev, &mut seen);
    }
    COUNTING.store(false, Ordering::Relaxed);
    assert_eq!(seen, 55);
    assert_eq!(
        ALLOCS.load(Ordering::Relaxed),
        0,
        "allocations delivering 50 signals"
    );
}

/// Runs turns until `done` holds, failing after `PATIENCE`, so that a case
/// that would hang fails instead.
fn run_until<T>(ev: &mut EventLoop<T>, data: &mut T, done: impl Fn(&T) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(data) {
        assert!(Instant::now() < deadline, "not done after {PATIENCE:?}");
        ev.run_once(data, Some(Duration::from_millis(100))).unwrap();
    }
}

fn a_signal_handler_stops_the_loop(backend: Backend) {
    let mut ev: EventLoop<Vec<libc::c_int>> = EventLoop::with_backend(backend).unwrap();
    ev.insert_signals(&[libc::SIGUSR1, libc::SIGUSR2], |cx, signal| {
        cx.data.push(signal);
        if signal == libc::SIGUSR2 {
            cx.stop();
        }
        Ok(Flow::Continue)
    })
    .unwrap();
    // SAFETY: raise only sends a signal to this thread; pipeloop's handler
    // is installed for both.
    unsafe {
        libc::raise(libc::SIGUSR1);
        libc::raise(libc::SIGUSR2);
    }
    let mut seen = Vec::new();
    ev.run(&mut seen).unwrap(); // returns: the handler stops it
    seen.sort();
    assert_eq!(
        seen,
        [libc::SIGUSR1, libc::SIGUSR2],
        "{:?}",
        seen.iter().map(|&s| signal::name(s)).collect::<Vec<_>>()
    );
}

#[derive(Default)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The status, and how many output bytes had come before it.
    exit: Option<(ExitStatus, usize)>,
    /// Events after `Exit` (there must be none).
    after_exit: usize,
}

fn record(out: &mut Output, event: ChildEvent<'_>) {
    if out.exit.is_some() {
        out.after_exit += 1;
    }
    match event {
        ChildEvent::Stdout(bytes) => out.stdout.extend_from_slice(bytes),
        ChildEvent::Stderr(bytes) => out.stderr.extend_from_slice(bytes),
        ChildEvent::Exit(status) => out.exit = Some((status, out.stdout.len() + out.stderr.len())),
    }
}

/// FNV-1a, to compare 10 MB without keeping two copies around.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn ten_megabytes_of_output_arrive_intact_before_exit(backend: Backend) {
    const SIZE: usize = 10 * 1024 * 1024;
    let mut ev: EventLoop<Output> = EventLoop::with_backend(backend).unwrap();
    let script = format!("yes 0123456789abcdef | head -c {SIZE}; echo done >&2; exit 3");
    let key = ev
        .spawn(Command::new("sh").arg("-c").arg(script), |cx, event| {
            record(cx.data, event);
            Ok(Flow::Continue)
        })
        .unwrap();
    assert!(ev.pid(key).is_some());
    let mut out = Output::default();
    run_until(&mut ev, &mut out, |out| out.exit.is_some());
    ev.run_once(&mut out, Some(Duration::from_millis(20)))
        .unwrap();
    let expected: Vec<u8> = b"0123456789abcdef\n"
        .iter()
        .copied()
        .cycle()
        .take(SIZE)
        .collect();
    assert_eq!(out.stdout.len(), SIZE);
    assert_eq!(checksum(&out.stdout), checksum(&expected), "stdout intact");
    assert_eq!(out.stderr, b"done\n");
    let (status, before) = out.exit.expect("an exit");
    assert_eq!(status.code(), Some(3));
    assert_eq!(before, SIZE + 5, "every byte came before Exit");
    assert_eq!(out.after_exit, 0, "Exit is the last event");
    assert_eq!(ev.pid(key), None, "the entry went after Exit");
}

/// Both children have exited before the loop first looks: under `SIGCHLD`
/// their two signals coalesce into one, and that one must find both.
fn two_children_exiting_together_are_both_reported(backend: Backend) {
    let mut ev: EventLoop<Vec<(usize, i32)>> = EventLoop::with_backend(backend).unwrap();
    let mut pids = Vec::new();
    for (i, code) in [(0, 3), (1, 5)] {
        let key = ev
            .spawn(
                Command::new("sh").arg("-c").arg(format!("exit {code}")),
                move |cx, event| {
                    if let ChildEvent::Exit(status) = event {
                        cx.data.push((i, status.code().unwrap()));
                    }
                    Ok(Flow::Continue)
                },
            )
            .unwrap();
        pids.push(ev.pid(key).unwrap());
    }
    for pid in pids {
        util::wait_exited_not_reaped(pid);
    }
    let mut exits = Vec::new();
    run_until(&mut ev, &mut exits, |exits| exits.len() == 2);
    exits.sort();
    assert_eq!(exits, [(0, 3), (1, 5)]);
}

fn a_child_killed_by_a_signal_says_so(backend: Backend) {
    let mut ev: EventLoop<Option<ExitStatus>> = EventLoop::with_backend(backend).unwrap();
    ev.spawn(
        Command::new("sh").arg("-c").arg("kill -TERM $$"),
        |cx, event| {
            if let ChildEvent::Exit(status) = event {
                *cx.data = Some(status);
            }
            Ok(Flow::Continue)
        },
    )
    .unwrap();
    let mut status = None;
    run_until(&mut ev, &mut status, Option::is_some);
    assert_eq!(status.unwrap().signal(), Some(libc::SIGTERM));
}

/// A child of this process that the loop did not spawn is never reaped by
/// it: its own `wait` still gets its status afterwards.
fn an_unrelated_child_is_never_reaped(backend: Backend) {
    let mut unrelated = Command::new("sh").arg("-c").arg("exit 7").spawn().unwrap();
    // It exits first, so that a loop reaping every child would take it.
    util::wait_exited_not_reaped(unrelated.id());
    let mut ev: EventLoop<u32> = EventLoop::with_backend(backend).unwrap();
    ev.spawn(Command::new("sh").arg("-c").arg("exit 0"), |cx, event| {
        if let ChildEvent::Exit(_) = event {
            *cx.data += 1;
        }
        Ok(Flow::Continue)
    })
    .unwrap();
    let mut exits = 0;
    run_until(&mut ev, &mut exits, |&n| n == 1);
    let status = unrelated
        .wait()
        .expect("the unrelated child was not reaped by the loop");
    assert_eq!(status.code(), Some(7));
}

/// Removing a child's key before its exit kills and reaps it: no child
/// outlives its entry, and none is left a zombie. The same when its handler
/// returns `Flow::Remove`.
fn removing_a_child_kills_and_reaps_it(backend: Backend) {
    let mut ev: EventLoop<()> = EventLoop::with_backend(backend).unwrap();
    let key = ev
        .spawn(Command::new("sleep").arg("30"), |_, _| Ok(Flow::Continue))
        .unwrap();
    let pid = ev.pid(key).unwrap();
    let started = Instant::now();
    assert!(ev.remove(key));
    // Not killed, the child would make `remove` wait out its 30 s.
    assert_killed_and_reaped(pid, started, "remove");
    assert!(ev.is_empty());

    let mut ev: EventLoop<bool> = EventLoop::with_backend(backend).unwrap();
    let key = ev
        .spawn(
            Command::new("sh").args(["-c", "echo hi; exec sleep 30"]),
            |cx, _| {
                *cx.data = true;
                Ok(Flow::Remove)
            },
        )
        .unwrap();
    let pid = ev.pid(key).unwrap();
    let started = Instant::now();
    let mut removed = false;
    run_until(&mut ev, &mut removed, |&removed| removed);
    assert!(
        started.elapsed() < PATIENCE / 3,
        "Flow::Remove waited for the child"
    );
    assert!(
        ev.is_empty(),
        "the handler's Flow::Remove removed the entry"
    );
    assert!(util::process_is_gone(pid), "pid {pid} is still there");
}

/// Dropping the loop kills and reaps the children it holds.
fn dropping_the_loop_kills_and_reaps_its_children(backend: Backend) {
    let mut ev: EventLoop<()> = EventLoop::with_backend(backend).unwrap();
    let key = ev
        .spawn(Command::new("sleep").arg("30"), |_, _| Ok(Flow::Continue))
        .unwrap();
    let pid = ev.pid(key).unwrap();
    let started = Instant::now();
    drop(ev);
    assert_killed_and_reaped(pid, started, "the drop");
}

/// `Exit` comes after end of file on both pipes, not with the exit: here a
/// grandchild holds them open after the child exited, and writes a line
/// once the test lets it. The loop has seen the exit (a turn took its pidfd
/// The `sleep 30` child `pid` is gone, not even a zombie, and `what`
/// (started at `started`) did not wait for it to end by itself.
#[track_caller]
fn assert_killed_and_reaped(pid: u32, started: Instant, what: &str) {
    assert!(
        started.elapsed() < PATIENCE / 3,
        "{what} waited for the child"
    );
    assert!(
        util::process_is_gone(pid),
        "pid {pid} is still there (running or a zombie)"
    );
}

/// or `SIGCHLD` event) long before.
fn exit_waits_for_a_grandchild_that_holds_the_pipes(backend: Backend) {
    let mut ev: EventLoop<Output> = EventLoop::with_backend(backend).unwrap();
    let (go, go_writer) = io::pipe().unwrap();
    // An asynchronous list's stdin is /dev/null in a shell without job
    // control: the grandchild reads the pipe through fd 3.
    let script = "exec 3<&0; (read go <&3; echo late) & exit 0";
    let key = ev
        .spawn(
            Command::new("sh").args(["-c", script]).stdin(go),
            |cx, event| {
                record(cx.data, event);
                Ok(Flow::Continue)
            },
        )
        .unwrap();
    let pid = ev.pid(key).unwrap();
    util::wait_exited_not_reaped(pid);
    let mut out = Output::default();
    // The exit's event is ready: this turn takes it (the loop reaps the
    // child and keeps its status), and there is nothing else to wait for.
    ev.run_once(&mut out, Some(PATIENCE)).unwrap();
    assert!(util::process_is_gone(pid), "the turn did not take the exit");
    assert!(out.exit.is_none(), "Exit before end of file on the pipes");
    drop(go_writer); // the grandchild reads end of file: `echo late`
    run_until(&mut ev, &mut out, |out| out.exit.is_some());
    assert_eq!(out.stdout, b"late\n");
    let (status, before) = out.exit.unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(before, 5, "the grandchild's line came before Exit");
}

/// `describe` shows a child with its pid and every fd the loop watches for
/// it, each with its token: the learner can match them to the trace.
fn describe_lists_a_childs_fds(backend: Backend) {
    let mut ev: EventLoop<()> = EventLoop::with_backend(backend).unwrap();
    let key = ev
        .spawn(Command::new("sleep").arg("30"), |_, _| Ok(Flow::Continue))
        .unwrap();
    let pid = ev.pid(key).unwrap();
    let text = ev.describe().to_string();
    assert!(
        text.starts_with(&format!("event loop on {backend}: 1 entries")),
        "{text}"
    );
    assert!(
        text.contains(&format!("child  pid {pid}  stdout token ")),
        "{text}"
    );
    assert!(text.contains(", stderr token "), "{text}");
    let pidfd = std::env::var_os(CHILD_WATCH_ENV).is_none() && cfg!(target_os = "linux");
    assert_eq!(text.contains(", exit token "), pidfd, "{text}");
    assert!(ev.remove(key));
}

/// The contract for the reactor's API, as written there (with the
/// elided parts filled in): it must compile and behave as its comments say.
fn the_api_contract_compiles_and_behaves(backend: Backend) {
    use pipeloop::reactor::{Cx, Key, Timer};
    use pipeloop::{Interest, pipe};
    use std::io::{Read, Write};

    struct App {
        bytes: usize,
        ticks: u32,
    }

    let mut ev: EventLoop<App> = EventLoop::with_backend(backend).unwrap();
    let ev2: EventLoop<App> = EventLoop::with_backend(Backend::Poll).unwrap();
    drop(ev2);
    let (mut tx, rx) = pipe::new().unwrap();

    let k: Key = ev
        .insert(
            rx,
            Interest::READABLE,
            |cx: &mut Cx<'_, App>, rx: &mut pipe::Receiver, event| {
                let mut buf = [0u8; 256];
                let n = rx.read(&mut buf)?;
                assert!(event.is_readable() || event.is_read_closed());
                cx.data.bytes += n;
                Ok(Flow::Continue)
            },
        )
        .unwrap();

    let _t: Key = ev
        .insert_timer(Timer::every(Duration::from_millis(10)), |cx| {
            cx.data.ticks += 1;
            // (The remote adds 100 whenever its work runs.)
            if cx.data.ticks % 100 == 3 {
                cx.stop();
            }
            Ok(Flow::Continue)
        })
        .unwrap();
    let d = Duration::from_millis(7);
    ev.insert_timer(Timer::after(Duration::from_millis(5)), |_cx| {
        Ok(Flow::Continue)
    })
    .unwrap();
    ev.insert_timer(Timer::at(Instant::now() + d), |_cx| Ok(Flow::Continue))
        .unwrap();

    ev.insert_signals(
        &[libc::SIGINT, libc::SIGTERM],
        |cx, _signal: libc::c_int| {
            cx.stop();
            Ok(Flow::Continue)
        },
    )
    .unwrap();

    let child: Key = ev
        .spawn(
            Command::new("sh")
                .arg("-c")
                .arg("echo hi; echo oops >&2; exit 3"),
            |cx, event: ChildEvent<'_>| {
                match event {
                    ChildEvent::Stdout(bytes) | ChildEvent::Stderr(bytes) => {
                        cx.data.bytes += bytes.len()
                    }
                    ChildEvent::Exit(status) => assert_eq!(status.code(), Some(3)),
                }
                Ok(Flow::Continue)
            },
        )
        .unwrap();
    assert!(ev.pid(child).is_some());

    let remote = ev.remote();
    let thread =
        std::thread::spawn(move || remote.send(|cx: &mut Cx<'_, App>| cx.data.ticks += 100));

    tx.write_all(b"abc").unwrap();
    let mut app = App { bytes: 0, ticks: 0 };
    ev.run(&mut app).unwrap(); // the timer stops it at its third tick
    thread.join().unwrap().unwrap();
    ev.run_once(&mut app, Some(Duration::ZERO)).unwrap();
    assert!(ev.remove(k));
    assert!(!ev.remove(k), "a stale key is false, never a panic");
    assert!(app.bytes >= 3, "the pipe's bytes: {}", app.bytes);
    assert!(
        app.ticks >= 3,
        "three ticks (and maybe the remote's 100): {}",
        app.ticks
    );
}

type Case = fn(Backend);

const SIGNAL_CASES: &[(&str, Case)] = &[
    (
        "a_signal_handler_stops_the_loop",
        a_signal_handler_stops_the_loop,
    ),
    (
        "delivering_signals_does_not_allocate",
        delivering_signals_does_not_allocate,
    ),
    (
        "the_api_contract_compiles_and_behaves",
        the_api_contract_compiles_and_behaves,
    ),
];

const CHILD_CASES: &[(&str, Case)] = &[
    (
        "ten_megabytes_of_output_arrive_intact_before_exit",
        ten_megabytes_of_output_arrive_intact_before_exit,
    ),
    (
        "two_children_exiting_together_are_both_reported",
        two_children_exiting_together_are_both_reported,
    ),
    (
        "a_child_killed_by_a_signal_says_so",
        a_child_killed_by_a_signal_says_so,
    ),
    (
        "an_unrelated_child_is_never_reaped",
        an_unrelated_child_is_never_reaped,
    ),
    (
        "removing_a_child_kills_and_reaps_it",
        removing_a_child_kills_and_reaps_it,
    ),
    (
        "dropping_the_loop_kills_and_reaps_its_children",
        dropping_the_loop_kills_and_reaps_its_children,
    ),
    (
        "exit_waits_for_a_grandchild_that_holds_the_pipes",
        exit_waits_for_a_grandchild_that_holds_the_pipes,
    ),
    ("describe_lists_a_childs_fds", describe_lists_a_childs_fds),
];

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut ran = 0;
    let watches: &[Option<&str>] = if cfg!(target_os = "linux") {
        &[None, Some("sigchld")]
    } else {
        &[None]
    };
    for &backend in Backend::available() {
        for (name, case) in SIGNAL_CASES {
            ran += run(name, backend, "", *case, filter.as_deref());
        }
        for &watch in watches {
            // SAFETY: this binary runs one thread, so nothing reads the
            // environment while it changes.
            unsafe {
                match watch {
                    Some(value) => std::env::set_var(CHILD_WATCH_ENV, value),
                    None => std::env::remove_var(CHILD_WATCH_ENV),
                }
            }
            let label = watch.map_or("", |_| " (SIGCHLD)");
            for (name, case) in CHILD_CASES {
                ran += run(name, backend, label, *case, filter.as_deref());
            }
        }
    }
    println!("{ran} passed, 0 failed");
}

fn run(name: &str, backend: Backend, label: &str, case: Case, filter: Option<&str>) -> usize {
    if filter.is_some_and(|f| !name.contains(f)) {
        return 0;
    }
    print!("test {name} [{backend}{label}] ... ");
    case(backend);
    println!("ok");
    1
}
