//! pipeloop's signal handler "saves and restores `errno`" (src/sys/signal):
//! a handler runs between any two instructions of the thread it interrupts,
//! which may be about to read `errno` from a call that just failed. These
//! tests set `errno` to a known value, `raise` the signal (the handler runs
//! in this thread before `raise` returns), and check `errno` afterwards,
//! with the handler made to change it on the way: its `write(2)` failing on
//! a full pipe, or an earlier handler it chains to setting `errno` itself.
//!
//! Dispositions are process-wide, so this is a single-threaded binary
//! (`harness = false`). The last line is "N passed, N failed".

mod util;

use std::io::{self, ErrorKind};

use pipeloop::signal::Signals;
use pipeloop::{Events, Interest, Token};
use util::{PATIENCE, for_each_backend, set_disposition};

const SIGNALS: Token = Token(7);

/// What `errno` holds when the signal arrives: no handler's work sets it.
const KNOWN: libc::c_int = libc::EDOM;

/// Where the calling thread's `errno` lives.
fn errno_location() -> *mut libc::c_int {
    #[cfg(any(target_os = "linux", target_os = "dragonfly"))]
    // SAFETY: takes no arguments, returns the calling thread's errno
    // address, and is async-signal-safe (as are the others below).
    return unsafe { libc::__errno_location() };
    #[cfg(any(target_os = "android", target_os = "netbsd", target_os = "openbsd"))]
    // SAFETY: as above.
    return unsafe { libc::__errno() };
    #[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
    // SAFETY: as above.
    return unsafe { libc::__error() };
    #[cfg(any(target_os = "illumos", target_os = "solaris"))]
    // SAFETY: as above.
    return unsafe { libc::___errno() };
}

fn errno() -> libc::c_int {
    // SAFETY: the location is valid for the calling thread.
    unsafe { *errno_location() }
}

fn set_errno(value: libc::c_int) {
    // SAFETY: as above.
    unsafe { *errno_location() = value };
}

/// Raises `signal` with `errno` set to `KNOWN`, and returns `errno` as the
/// handler left it. Nothing between the two accesses may set `errno`:
/// `raise` succeeds, and a successful call leaves it alone.
fn errno_across_raise(signal: libc::c_int) -> libc::c_int {
    set_errno(KNOWN);
    // SAFETY: raise sends a signal to the calling thread; its handler runs
    // before raise returns, as the signal is not blocked.
    let rc = unsafe { libc::raise(signal) };
    let after = errno();
    assert_eq!(rc, 0, "raise: {}", io::Error::last_os_error());
    after
}

fn restore_disposition(signal: libc::c_int, old: &libc::sigaction) {
    // SAFETY: `old` came from sigaction; the previous action is not asked
    // for.
    let rc = unsafe { libc::sigaction(signal, old, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "sigaction: {}", io::Error::last_os_error());
}

/// Polls until the `Signals` reports `signal` (proof that pipeloop's
/// handler ran), or `PATIENCE` runs out.
fn expect_signal(poll: &mut pipeloop::Poll, signals: &mut Signals, signal: libc::c_int) {
    let mut events = Events::with_capacity(8);
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "signal {signal} was never reported");
        match poll.poll(&mut events, Some(left)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("poll: {e}"),
        }
        if events.iter().any(|e| e.token() == SIGNALS) && signals.pending().any(|s| s == signal) {
            return;
        }
    }
}

/// How many signals fill the handler's pipe: more bytes than any pipe
/// pipeloop makes holds (64 KiB on Linux and the BSDs, unless grown).
const MORE_THAN_A_PIPE_HOLDS: usize = 1 << 17;

/// Once the watcher's pipe is full, the handler's `write(2)` fails with
/// `EAGAIN`, which sets `errno` inside the handler: it must be put back.
fn errno_survives_a_handler_whose_write_fails_on_a_full_pipe() {
    for_each_backend(|poll| {
        let mut signals = Signals::new(&[libc::SIGUSR1]).expect("Signals::new");
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .expect("register");
        for i in 0..MORE_THAN_A_PIPE_HOLDS {
            let after = errno_across_raise(libc::SIGUSR1);
            assert_eq!(
                after,
                KNOWN,
                "errno was {} ({}) after signal {} of {MORE_THAN_A_PIPE_HOLDS}, not {KNOWN} ({})",
                after,
                io::Error::from_raw_os_error(after),
                i + 1,
                io::Error::from_raw_os_error(KNOWN),
            );
        }
        expect_signal(poll, &mut signals, libc::SIGUSR1);
    });
}

/// The earlier handler pipeloop chains to: it clobbers `errno`, as a
/// careless handler (one that calls `write` without saving it) does.
extern "C" fn clobbering_handler(_: libc::c_int) {
    set_errno(libc::EIO);
}

/// pipeloop's handler calls the earlier handler inside its own save and
/// restore, so even a handler of someone else's that changes `errno` does
/// not leak it into the interrupted code.
fn errno_survives_an_earlier_handler_that_clobbers_it() {
    let earlier = set_disposition(
        libc::SIGUSR2,
        clobbering_handler as extern "C" fn(libc::c_int) as libc::sighandler_t,
    );
    for_each_backend(|poll| {
        let mut signals = Signals::new(&[libc::SIGUSR2]).expect("Signals::new");
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .expect("register");
        let after = errno_across_raise(libc::SIGUSR2);
        assert_eq!(
            after,
            KNOWN,
            "errno was {after} ({}) after the signal, not {KNOWN} ({})",
            io::Error::from_raw_os_error(after),
            io::Error::from_raw_os_error(KNOWN),
        );
        expect_signal(poll, &mut signals, libc::SIGUSR2);
    });
    restore_disposition(libc::SIGUSR2, &earlier);
}

fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "errno_survives_a_handler_whose_write_fails_on_a_full_pipe",
            errno_survives_a_handler_whose_write_fails_on_a_full_pipe,
        ),
        (
            "errno_survives_an_earlier_handler_that_clobbers_it",
            errno_survives_an_earlier_handler_that_clobbers_it,
        ),
    ];
    util::run_cases(tests);
}
