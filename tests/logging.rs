//! pipeloop's logging, in its own test binary because a logger is global.
//!
//! The logger here writes every record into a pipeloop pipe that is
//! registered with the very `Poll` being logged about, and whose pipe is full:
//! each log call then hits `WouldBlock` and re-arms its registration. The
//! poll(2) backend used to log while holding its table lock, so such a logger
//! deadlocked it; now nothing is logged under the lock.
//!
//! The logger can also hold a thread inside one log call (a *gate*), which
//! opens the moment between a registration change and its trace to other
//! threads.

use std::io::Read;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};
use pipeloop::pipe::Sender;
use pipeloop::{Backend, Events, Interest, Poll, SourceFd, Token};

struct PipeLogger {
    lines: Mutex<Vec<String>>,
    sink: OnceLock<Sender>,
    gate: Mutex<Option<Gate>>,
}

/// Holds the thread whose log line contains `needle`, once: it says so
/// through `entered`, then waits for `release`.
struct Gate {
    needle: String,
    entered: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

impl Gate {
    /// Arms a gate; returns the ends the test keeps: "a thread is held",
    /// and "let it go".
    fn arm(needle: String) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (entered, held) = mpsc::channel();
        let (go, release) = mpsc::channel();
        let gate = Gate {
            needle,
            entered,
            release,
        };
        *LOGGER.gate.lock().unwrap() = Some(gate);
        (held, go)
    }

    /// Called for every line: holds the thread if the line matches.
    fn pass(line: &str) {
        let mut slot = LOGGER.gate.lock().unwrap();
        if !slot.as_ref().is_some_and(|g| line.contains(&g.needle)) {
            return;
        }
        let gate = slot.take().unwrap();
        drop(slot);
        gate.entered.send(()).unwrap();
        let _ = gate.release.recv_timeout(Duration::from_secs(30));
    }
}

fn install_logger() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&LOGGER).unwrap();
        log::set_max_level(LevelFilter::Trace);
    });
}

impl Log for PipeLogger {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        if let Some(sink) = self.sink.get() {
            // Usually WouldBlock: the pipe is kept full on purpose.
            let _ = (&*sink).write(line.as_bytes());
        }
        Gate::pass(&line);
        self.lines.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

static LOGGER: PipeLogger = PipeLogger {
    lines: Mutex::new(Vec::new()),
    sink: OnceLock::new(),
    gate: Mutex::new(None),
};

fn lines_matching(level: Level, needle: &str) -> usize {
    let prefix = level.to_string();
    LOGGER
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with(&prefix) && l.contains(needle))
        .count()
}

/// The scenario, run on a thread so that a deadlock fails the test instead
/// of hanging it.
fn log_into_a_registered_full_pipe(backend: Backend) {
    let mut poll = Poll::with_backend(backend).unwrap();
    let (mut sink, _reader) = pipeloop::pipe::new().unwrap();
    poll.registry()
        .register(&mut sink, Token(0), Interest::WRITABLE)
        .unwrap();
    while (&sink).write(&[0u8; 4096]).is_ok() {}
    assert!(LOGGER.sink.set(sink).is_ok(), "one backend uses the sink");

    // A SourceFd closed without deregistering: the poll(2) backend forgets
    // it after POLLNVAL, and logs that.
    let (reader, _writer) = std::io::pipe().unwrap();
    let fd = reader.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&fd), Token(1), Interest::READABLE.level())
        .unwrap();
    drop(reader);
    let mut events = Events::with_capacity(8);
    poll.poll(&mut events, Some(Duration::from_millis(20)))
        .unwrap();
}

#[test]
fn logging_reports_changes_and_wakeups_and_never_deadlocks_the_poll() {
    install_logger();

    // Only the poll(2) backend: the sink can be set once per process.
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        log_into_a_registered_full_pipe(Backend::Poll);
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the poll finished (no deadlock)");

    assert!(
        lines_matching(Level::Trace, "register fd") >= 2,
        "registrations are traced"
    );
    assert!(
        lines_matching(Level::Trace, "woke with") >= 1,
        "wake-ups are traced"
    );
    assert_eq!(
        lines_matching(Level::Debug, "closed while registered"),
        1,
        "the forgotten fd is logged once"
    );

    // In the same test, not a second one: a second test's fds could reuse
    // the number of the fd closed above before poll(2) reports it.
    let poll = Poll::new().unwrap();
    let needle = format!("using the {} backend", poll.backend());
    assert!(
        lines_matching(Level::Debug, &needle) >= 1,
        "no debug line {needle:?}"
    );
}

/// Regression: on poll(2), `register` put the entry in the table before the
/// receiver's handles knew they had a registration to re-arm. A short read
/// through a clone in that gap (here: while the registering thread is held
/// in the trace of its `register`) skipped the re-arm, and the edge was
/// lost for good. Now the table and the handles' list change together, and
/// the trace comes after both.
#[test]
fn a_short_read_through_a_clone_while_register_finishes_rearms() {
    install_logger();
    let mut poll = Poll::with_backend(Backend::Poll).unwrap();
    let (mut sender, mut receiver) = pipeloop::pipe::new().unwrap();
    let mut clone = receiver.try_clone().unwrap();
    sender.write_all(b"first").unwrap();

    let needle = format!("register fd {} as Token(5)", receiver.as_raw_fd());
    let (held, go) = Gate::arm(needle);
    let registry = poll.registry().try_clone().unwrap();
    let registering = std::thread::spawn(move || {
        registry
            .register(&mut receiver, Token(5), Interest::READABLE)
            .unwrap();
        receiver
    });
    held.recv_timeout(Duration::from_secs(30))
        .expect("register traced");

    let mut events = Events::with_capacity(8);
    poll.poll(&mut events, Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.token()).collect::<Vec<_>>(),
        [Token(5)]
    );
    let mut buf = [0u8; 64];
    assert_eq!(
        clone.read(&mut buf).unwrap(),
        5,
        "a short read: the pipe is empty"
    );
    sender.write_all(b"second").unwrap();
    go.send(()).unwrap();
    let _receiver = registering.join().unwrap();

    poll.poll(&mut events, Some(Duration::from_secs(10)))
        .unwrap();
    let got: Vec<_> = events.iter().map(|e| e.token()).collect();
    assert_eq!(got, [Token(5)], "the write after the short read was lost");
}
