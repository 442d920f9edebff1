//! Signal tests. Dispositions are process-wide, so these run one after the
//! other in a single-threaded binary (`harness = false`), each on every
//! backend. The last line is "N passed, N failed".

mod util;

use std::collections::HashSet;
use std::io::{self, ErrorKind};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pipeloop::signal::Signals;
use pipeloop::{Events, Interest, Poll, Token};
use util::{PATIENCE, assert_cloexec, assert_nonblocking, for_each_backend, open_fds};

const SIGNALS: Token = Token(7);

/// Polls until the `Signals` has reported `wanted` (collecting everything
/// `pending()` returned meanwhile), or `PATIENCE` runs out.
fn wait_for(poll: &mut Poll, signals: &mut Signals, wanted: libc::c_int) -> Vec<libc::c_int> {
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while !seen.contains(&wanted) {
        let now = Instant::now();
        assert!(now < deadline, "{wanted} did not arrive; saw {seen:?}");
        match poll.poll(&mut events, Some(deadline - now)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("poll: {e}"),
        }
        if events.iter().any(|e| e.token() == SIGNALS) {
            seen.extend(signals.pending());
        }
    }
    seen
}

fn registered(poll: &mut Poll, list: &[libc::c_int]) -> Signals {
    let mut signals = Signals::new(list).expect("Signals::new");
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .expect("register");
    signals
}

fn raise(signal: libc::c_int) {
    // SAFETY: raise sends a signal to the calling thread; no memory is
    // involved.
    assert_eq!(unsafe { libc::raise(signal) }, 0, "raise");
}

/// The current handler address of `signal`.
fn disposition(signal: libc::c_int) -> libc::sighandler_t {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null `act` only reads the current action.
    let rc = unsafe { libc::sigaction(signal, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0, "sigaction: {}", io::Error::last_os_error());
    // SAFETY: sigaction succeeded.
    unsafe { old.assume_init() }.sa_sigaction
}

fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) -> libc::sigaction {
    // SAFETY: all-zero is a valid sigaction; the mask is then emptied.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = handler;
    // SAFETY: `sa_mask` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: `new` is complete; `old` receives the previous action.
    let rc = unsafe { libc::sigaction(signal, &new, old.as_mut_ptr()) };
    assert_eq!(rc, 0, "sigaction: {}", io::Error::last_os_error());
    // SAFETY: sigaction succeeded.
    unsafe { old.assume_init() }
}

fn raise_gives_one_readable_event_and_pending_reports_it_once() {
    for_each_backend(|poll| {
        let mut signals = registered(poll, &[libc::SIGUSR1]);
        raise(libc::SIGUSR1);
        let seen = wait_for(poll, &mut signals, libc::SIGUSR1);
        assert_eq!(seen, [libc::SIGUSR1]);
        assert_eq!(signals.pending().count(), 0, "reported once");
    });
}

fn a_signal_from_a_child_process_arrives() {
    for_each_backend(|poll| {
        let mut signals = registered(poll, &[libc::SIGUSR2]);
        let status = Command::new("sh")
            .args(["-c", "kill -USR2 $PPID"])
            .status()
            .expect("run sh");
        assert!(status.success(), "kill failed: {status}");
        wait_for(poll, &mut signals, libc::SIGUSR2);
    });
}

fn two_signals_watching_one_signal_both_see_it() {
    for_each_backend(|poll| {
        let mut first = registered(poll, &[libc::SIGUSR1]);
        let mut other_poll = Poll::with_backend(poll.backend()).unwrap();
        let mut second = registered(&mut other_poll, &[libc::SIGUSR1, libc::SIGUSR2]);
        raise(libc::SIGUSR1);
        wait_for(poll, &mut first, libc::SIGUSR1);
        wait_for(&mut other_poll, &mut second, libc::SIGUSR1);
    });
}

/// 10,000 signals from another thread while this one polls: it must end
/// having seen the last one (SIGUSR2, sent after the storm), in bounded time.
fn a_storm_of_signals_ends_with_the_last_one_observed() {
    for_each_backend(|poll| {
        let mut signals = registered(poll, &[libc::SIGUSR1, libc::SIGUSR2]);
        let started = Instant::now();
        let storm = std::thread::spawn(|| {
            // SAFETY: getpid and kill only send signals to this process.
            let me = unsafe { libc::getpid() };
            for _ in 0..10_000 {
                // SAFETY: as above.
                unsafe { libc::kill(me, libc::SIGUSR1) };
            }
            // SAFETY: as above.
            unsafe { libc::kill(me, libc::SIGUSR2) };
        });
        let seen = wait_for(poll, &mut signals, libc::SIGUSR2);
        storm.join().unwrap();
        assert!(
            seen.contains(&libc::SIGUSR1),
            "the storm was seen: {seen:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "bounded run time"
        );
    });
}

fn dropping_the_last_watcher_restores_the_earlier_disposition() {
    let before = disposition(libc::SIGUSR1);
    let first = Signals::new(&[libc::SIGUSR1]).unwrap();
    let mut second = Signals::new(&[libc::SIGUSR1]).unwrap();
    let ours = disposition(libc::SIGUSR1);
    assert_ne!(ours, before, "pipeloop's handler is installed");
    drop(first);
    assert_eq!(
        disposition(libc::SIGUSR1),
        ours,
        "still watched by the second"
    );
    second.remove(libc::SIGUSR1).unwrap();
    assert_eq!(disposition(libc::SIGUSR1), before, "restored by remove");
    second.add(libc::SIGUSR1).unwrap();
    drop(second);
    assert_eq!(disposition(libc::SIGUSR1), before, "restored by drop");

    // The same with SIG_IGN as the earlier disposition.
    let old = set_disposition(libc::SIGUSR2, libc::SIG_IGN);
    drop(Signals::new(&[libc::SIGUSR2]).unwrap());
    assert_eq!(disposition(libc::SIGUSR2), libc::SIG_IGN);
    // SAFETY: `old` is the action sigaction returned for SIGUSR2.
    unsafe { libc::sigaction(libc::SIGUSR2, &old, std::ptr::null_mut()) };
}

static EARLIER_RAN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn earlier_handler(_: libc::c_int) {
    EARLIER_RAN.fetch_add(1, Ordering::SeqCst);
}

/// pipeloop chains to a handler installed before it (its documented
/// choice), so both see the signal.
fn a_handler_installed_earlier_still_runs() {
    let old = set_disposition(
        libc::SIGUSR1,
        earlier_handler as *const () as libc::sighandler_t,
    );
    for_each_backend(|poll| {
        let before = EARLIER_RAN.load(Ordering::SeqCst);
        let mut signals = registered(poll, &[libc::SIGUSR1]);
        raise(libc::SIGUSR1);
        wait_for(poll, &mut signals, libc::SIGUSR1);
        assert_eq!(
            EARLIER_RAN.load(Ordering::SeqCst),
            before + 1,
            "chained once"
        );
        drop(signals);
        assert_eq!(
            disposition(libc::SIGUSR1),
            earlier_handler as *const () as libc::sighandler_t,
            "the earlier handler is back"
        );
    });
    // SAFETY: `old` is the action sigaction returned for SIGUSR1.
    unsafe { libc::sigaction(libc::SIGUSR1, &old, std::ptr::null_mut()) };
}

/// Another library installs its handler over pipeloop's (saving pipeloop's
/// as "previous"), and puts pipeloop's back later. pipeloop must leave the
/// other handler in place when its last watcher goes, and must never chain
/// to its own handler (that recursed until the stack overflowed).
fn a_handler_installed_over_pipeloops_is_left_and_never_chained_to_itself() {
    let original = disposition(libc::SIGUSR1);
    let first = Signals::new(&[libc::SIGUSR1]).unwrap();
    let pipeloops = disposition(libc::SIGUSR1);
    let theirs = earlier_handler as *const () as libc::sighandler_t;
    let saved_by_them = set_disposition(libc::SIGUSR1, theirs);
    drop(first);
    assert_eq!(disposition(libc::SIGUSR1), theirs, "left in place");

    // They uninstall, putting back what they saved: pipeloop's handler.
    // SAFETY: `saved_by_them` is the action sigaction returned.
    unsafe { libc::sigaction(libc::SIGUSR1, &saved_by_them, std::ptr::null_mut()) };
    assert_eq!(disposition(libc::SIGUSR1), pipeloops);

    for_each_backend(|poll| {
        let mut signals = registered(poll, &[libc::SIGUSR1]);
        raise(libc::SIGUSR1);
        wait_for(poll, &mut signals, libc::SIGUSR1);
    });
    set_disposition(libc::SIGUSR1, original);
}

fn forbidden_and_invalid_signals_are_rejected_and_nothing_is_installed() {
    let segv_before = disposition(libc::SIGSEGV);
    for (signal, needle) in [
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGBUS, "SIGBUS"),
        (0, "signal 0"),
        (-3, "signal -3"),
        (1000, "signal 1000"),
    ] {
        let usr1_before = disposition(libc::SIGUSR1);
        // A valid signal first in the list: the bad one must stop it too.
        let err = Signals::new(&[libc::SIGUSR1, signal]).expect_err("rejected");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{signal}: {err}");
        assert!(err.to_string().contains(needle), "{err} names {needle}");
        assert_eq!(disposition(libc::SIGUSR1), usr1_before, "nothing installed");
    }
    assert_eq!(disposition(libc::SIGSEGV), segv_before);
    let mut signals = Signals::new(&[]).unwrap();
    assert_eq!(
        signals.add(libc::SIGKILL).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

fn the_pipe_fds_are_close_on_exec_and_non_blocking() {
    let before: HashSet<_> = open_fds();
    let signals = Signals::new(&[libc::SIGUSR1]).unwrap();
    let after: HashSet<_> = open_fds();
    let new: Vec<_> = after.difference(&before).copied().collect();
    assert_eq!(new.len(), 2, "one pipe: {new:?}");
    assert!(
        new.contains(&signals.as_raw_fd()),
        "{new:?} vs {}",
        signals.as_raw_fd()
    );
    for fd in new {
        // SAFETY: the fd is open for as long as `signals` lives.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        assert_cloexec(&borrowed);
        assert_nonblocking(&borrowed);
    }
}

fn no_fd_grows_over_1000_create_drop_cycles() {
    let before = open_fds().len();
    for _ in 0..1000 {
        let mut signals = Signals::new(&[libc::SIGUSR1, libc::SIGTERM]).unwrap();
        signals.add(libc::SIGUSR2).unwrap();
    }
    assert_eq!(open_fds().len(), before);
}

fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "raise_gives_one_readable_event_and_pending_reports_it_once",
            raise_gives_one_readable_event_and_pending_reports_it_once,
        ),
        (
            "a_signal_from_a_child_process_arrives",
            a_signal_from_a_child_process_arrives,
        ),
        (
            "two_signals_watching_one_signal_both_see_it",
            two_signals_watching_one_signal_both_see_it,
        ),
        (
            "a_storm_of_signals_ends_with_the_last_one_observed",
            a_storm_of_signals_ends_with_the_last_one_observed,
        ),
        (
            "dropping_the_last_watcher_restores_the_earlier_disposition",
            dropping_the_last_watcher_restores_the_earlier_disposition,
        ),
        (
            "a_handler_installed_earlier_still_runs",
            a_handler_installed_earlier_still_runs,
        ),
        (
            "a_handler_installed_over_pipeloops_is_left_and_never_chained_to_itself",
            a_handler_installed_over_pipeloops_is_left_and_never_chained_to_itself,
        ),
        (
            "forbidden_and_invalid_signals_are_rejected_and_nothing_is_installed",
            forbidden_and_invalid_signals_are_rejected_and_nothing_is_installed,
        ),
        (
            "the_pipe_fds_are_close_on_exec_and_non_blocking",
            the_pipe_fds_are_close_on_exec_and_non_blocking,
        ),
        (
            "no_fd_grows_over_1000_create_drop_cycles",
            no_fd_grows_over_1000_create_drop_cycles,
        ),
    ];
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match std::panic::catch_unwind(test) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
