//! A signal caught while `Poll::poll` sleeps ends the poll with
//! `ErrorKind::Interrupted`, and "SA_RESTART changes nothing": the kernels
//! do not restart `epoll_wait`, `poll` or a sleeping `kevent`, whatever the
//! handler's flags. Both ways are tried, on every backend.
//!
//! The cases change SIGUSR1's disposition, which is process-wide, so this is
//! a single-threaded binary (`harness = false`) of its own. The last line is
//! "N passed, N failed".

mod util;

use std::io::{self, ErrorKind};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pipeloop::{Events, Interest, Token, Waker, pipe};
use util::{Expect, PATIENCE, expect_events, for_each_backend};

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Installs a no-op SIGUSR1 handler, with `SA_RESTART` or without, and puts
/// the old disposition back on drop.
struct Sigusr1Handler {
    old: libc::sigaction,
}

impl Sigusr1Handler {
    fn install(restart: bool) -> Sigusr1Handler {
        // SAFETY: sigaction is plain data; all-zero is a valid value that is
        // filled in below (or by sigaction for `old`).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = if restart { libc::SA_RESTART } else { 0 };
        // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: as above.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid; the handler is async-signal-safe
        // (it does nothing).
        let rc = unsafe { libc::sigaction(libc::SIGUSR1, &action, &mut old) };
        assert_eq!(rc, 0, "sigaction: {}", io::Error::last_os_error());
        Sigusr1Handler { old }
    }
}

impl Drop for Sigusr1Handler {
    fn drop(&mut self) {
        // SAFETY: `old` is the disposition sigaction returned earlier.
        unsafe { libc::sigaction(libc::SIGUSR1, &self.old, std::ptr::null_mut()) };
    }
}

/// A `pthread_t` to send to another thread: a pointer on some systems
/// (macOS, the BSDs), which makes it `!Send` there.
struct ThreadId(libc::pthread_t);

// SAFETY: a thread id is a handle value for pthread_kill, never dereferenced
// by this test.
unsafe impl Send for ThreadId {}

/// A signal caught while a poll sleeps ends it with `Interrupted`, whether
/// its handler asked for `SA_RESTART` or not: the kernels never restart
/// `epoll_wait`, `poll` or a sleeping `kevent` (see `Poll::poll`).
fn a_signal_during_poll_is_interrupted(restart: bool) {
    let _handler = Sigusr1Handler::install(restart);
    for_each_backend(|poll| {
        // A registered pipe that never becomes ready, and a waker to end the
        // wait if the test fails.
        let (_sender, mut receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(0), Interest::READABLE)
            .unwrap();
        let waker = Waker::new(poll.registry(), Token(1)).unwrap();

        let (tid_tx, tid_rx) = mpsc::channel();
        let (result_tx, result_rx) = mpsc::channel();
        let result = std::thread::scope(|scope| {
            let poller = scope.spawn(|| {
                // SAFETY: pthread_self has no preconditions.
                tid_tx
                    .send(ThreadId(unsafe { libc::pthread_self() }))
                    .unwrap();
                let mut events = Events::with_capacity(4);
                let result = poll.poll(&mut events, Some(Duration::from_secs(60)));
                let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
                result_tx.send((result, tokens)).unwrap();
            });
            let ThreadId(tid) = tid_rx.recv().unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            let result = loop {
                // SAFETY: `tid` is the poller thread, which is joined only
                // below, so the id stays valid even if the thread has just
                // finished (then the call is 0 or ESRCH, and harmless).
                let rc = unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
                assert!(
                    rc == 0 || rc == libc::ESRCH,
                    "pthread_kill: {}",
                    io::Error::from_raw_os_error(rc)
                );
                match result_rx.recv_timeout(Duration::from_millis(5)) {
                    Ok(result) => break Some(result),
                    Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                    Err(_) => {
                        // No EINTR in time: unblock the poller so that the
                        // scope can end, and report what it saw.
                        waker.wake().unwrap();
                        break result_rx.recv_timeout(PATIENCE).ok();
                    }
                }
            };
            poller.join().unwrap();
            result
        });
        let (result, tokens) = result.expect("the poll thread reported");
        match result {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            other => panic!("expected Interrupted, got {other:?} with events {tokens:?}"),
        }

        // The Poll is still usable after EINTR.
        waker.wake().unwrap();
        let mut events = Events::with_capacity(4);
        expect_events(poll, &mut events, &[Expect::readable(1)]);
    });
}

fn without_sa_restart() {
    a_signal_during_poll_is_interrupted(false);
}

fn with_sa_restart() {
    a_signal_during_poll_is_interrupted(true);
}

fn main() {
    util::run_cases(&[
        (
            "a_signal_during_poll_is_interrupted_without_sa_restart",
            without_sa_restart,
        ),
        (
            "a_signal_during_poll_is_interrupted_with_sa_restart",
            with_sa_restart,
        ),
    ]);
}
