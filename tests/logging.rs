//! pipeloop's logging, in its own test binary because a logger is global.
//!
//! The logger here writes every record into a pipeloop pipe that is
//! registered with the very `Poll` being logged about, and whose pipe is full:
//! each log call then hits `WouldBlock` and re-arms its registration. The
//! poll(2) backend used to log while holding its table lock, so such a logger
//! deadlocked it; now nothing is logged under the lock.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};
use pipeloop::pipe::Sender;
use pipeloop::{Backend, Events, Interest, Poll, SourceFd, Token};

struct PipeLogger {
    lines: Mutex<Vec<String>>,
    sink: OnceLock<Sender>,
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
        self.lines.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

static LOGGER: PipeLogger = PipeLogger {
    lines: Mutex::new(Vec::new()),
    sink: OnceLock::new(),
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
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(LevelFilter::Trace);

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
