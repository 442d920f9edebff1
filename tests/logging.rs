//! pipeloop's logging, in its own test binary because a logger is global.
//!
//! The logger here makes every log call do what may deadlock a library that
//! logs while holding a lock of its own: it writes into a full pipeloop
//! pipe registered with the very `Poll` being logged about (each write hits
//! `WouldBlock` and re-arms, taking the pipe end's list lock), and it makes
//! and drops a `Waker` on that `Poll` (taking the table's lock on poll(2)).
//! pipeloop once logged under its table lock, and once under a pipe end's
//! list lock; either would deadlock here.
//!
//! A *hook* runs an action in the thread whose log line contains a needle,
//! once: to hold that thread inside one log call, or to act from inside it.

use std::io::Read;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, Once, OnceLock};
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};
use pipeloop::pipe::{Receiver, Sender};
use pipeloop::{Backend, Events, Interest, Poll, Registry, SourceFd, Token, Waker};

struct PipeLogger {
    lines: Mutex<Vec<String>>,
    sink: OnceLock<Sender>,
    /// The registry of the `Poll` being logged about, to make wakers on.
    registry: OnceLock<Registry>,
    hook: Mutex<Option<Hook>>,
}

/// An action run once, inside the log call of the line containing `needle`.
struct Hook {
    needle: String,
    action: Box<dyn FnOnce() + Send>,
}

impl Hook {
    fn arm(needle: String, action: impl FnOnce() + Send + 'static) {
        let hook = Hook {
            needle,
            action: Box::new(action),
        };
        *LOGGER.hook.lock().unwrap() = Some(hook);
    }

    /// Holds the thread that logs `needle` until the test lets it go;
    /// returns the ends the test keeps: "a thread is held", "let it go".
    fn gate(needle: String) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (entered, held) = mpsc::channel();
        let (go, release) = mpsc::channel::<()>();
        Hook::arm(needle, move || {
            entered.send(()).unwrap();
            let _ = release.recv_timeout(Duration::from_secs(30));
        });
        (held, go)
    }

    /// Called for every line: runs the action if the line matches.
    fn pass(line: &str) {
        let mut slot = LOGGER.hook.lock().unwrap();
        if !slot.as_ref().is_some_and(|h| line.contains(&h.needle)) {
            return;
        }
        let hook = slot.take().unwrap();
        drop(slot);
        (hook.action)();
    }
}

fn install_logger() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&LOGGER).unwrap();
        log::set_max_level(LevelFilter::Trace);
    });
}

/// One test at a time: the logger and its hook are global, and one test
/// puts a pipe on a chosen fd number.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Some log call is doing the writes and the waker (which log too): the
/// nested calls skip them, and so, rarely, does a concurrent one.
static ACTING: AtomicBool = AtomicBool::new(false);

impl Log for PipeLogger {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        if !ACTING.swap(true, SeqCst) {
            if let Some(sink) = self.sink.get() {
                // Usually WouldBlock: the pipe is kept full on purpose.
                let _ = (&*sink).write(line.as_bytes());
            }
            if let Some(registry) = self.registry.get() {
                drop(Waker::new(registry, Token(99)).unwrap());
            }
            ACTING.store(false, SeqCst);
        }
        Hook::pass(&line);
        self.lines.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

static LOGGER: PipeLogger = PipeLogger {
    lines: Mutex::new(Vec::new()),
    sink: OnceLock::new(),
    registry: OnceLock::new(),
    hook: Mutex::new(None),
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
    let registry = poll.registry().try_clone().unwrap();
    assert!(LOGGER.registry.set(registry).is_ok(), "set once");

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
    let _serial = serial();
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
        lines_matching(Level::Debug, "closed while registered (POLLNVAL)"),
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
/// receiver's handles knew they had a registration to re-arm, and traced
/// the change in between. A short read through a clone in that gap (here:
/// while the registering thread is held in that trace) skipped the re-arm,
/// and the edge was lost for good. Now the table and the handles' list
/// change together under the list's lock, with the re-arm flag published
/// first, and the trace comes after both, so this sequence can no longer
/// reach the gap (nothing in it waits); the test keeps the behaviour: a
/// clone's short read while `register` finishes on another thread re-arms.
#[test]
fn a_short_read_through_a_clone_while_register_finishes_rearms() {
    let _serial = serial();
    install_logger();
    let mut poll = Poll::with_backend(Backend::Poll).unwrap();
    let (mut sender, mut receiver) = pipeloop::pipe::new().unwrap();
    let mut clone = receiver.try_clone().unwrap();
    sender.write_all(b"first").unwrap();

    let needle = format!("register fd {} as Token(5)", receiver.as_raw_fd());
    let (held, go) = Hook::gate(needle);
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

/// Regression: registering over a stale entry (an fd closed while
/// registered, its number now another file's) logged that from inside the
/// backend, while the registering end's list lock was held. A logger that
/// reads through a clone of that very end (`WouldBlock`: a re-arm, which
/// takes the list lock) deadlocked. The message is logged after the locks
/// are released now.
#[test]
fn logging_a_replaced_stale_entry_happens_outside_the_ends_lock() {
    if cfg!(any(target_os = "netbsd", target_os = "openbsd")) {
        // Every pipe has inode 0 there, so poll(2) cannot see that the
        // number names another file, and this path is never taken (the
        // limit `SourceFd`'s docs state).
        return;
    }
    let _serial = serial();
    install_logger();
    let poll = Poll::with_backend(Backend::Poll).unwrap();
    let (stale, _stale_writer) = std::io::pipe().unwrap();
    let number = stale.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&number), Token(1), Interest::READABLE.level())
        .unwrap();
    drop(stale);
    let (_sender, mut receiver) = pipe_end_at(number);
    let clone = receiver.try_clone().unwrap();
    Hook::arm("names another file".to_owned(), move || {
        let _ = (&clone).read(&mut [0u8; 8]); // WouldBlock: re-arms
    });

    let registry = poll.registry().try_clone().unwrap();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let result = registry.register(&mut receiver, Token(2), Interest::READABLE);
        let _ = done.send(result.map(|()| receiver));
    });
    let registered = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("register returned (no deadlock)");
    assert!(registered.is_ok(), "{registered:?}");
    assert!(lines_matching(Level::Debug, "names another file") >= 1);
}

/// A new pipe whose read end has the fd number `number` (free, as the
/// caller just closed it; `serial` keeps other tests from taking it).
fn pipe_end_at(number: std::os::fd::RawFd) -> (Sender, Receiver) {
    let (sender, receiver) = pipeloop::pipe::new().unwrap();
    if receiver.as_raw_fd() == number {
        return (sender, receiver);
    }
    // SAFETY: F_DUPFD_CLOEXEC makes the lowest free fd from `number` up,
    // which is `number` (just closed, and kept free by `serial`); the new
    // fd is owned by the OwnedFd at once.
    let fd = unsafe { libc::fcntl(receiver.as_raw_fd(), libc::F_DUPFD_CLOEXEC, number) };
    assert_eq!(
        fd,
        number,
        "F_DUPFD_CLOEXEC: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` was just made and nothing else owns it.
    let moved = Receiver::from(unsafe { OwnedFd::from_raw_fd(fd) });
    (sender, moved)
}
