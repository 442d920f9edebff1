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
use util::{
    PATIENCE, assert_cloexec, assert_nonblocking, can_list_fds, for_each_backend, live_fds,
    set_disposition,
};

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

/// The current action of `signal`.
fn action(signal: libc::c_int) -> libc::sigaction {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null `act` only reads the current action.
    let rc = unsafe { libc::sigaction(signal, std::ptr::null(), old.as_mut_ptr()) };
    assert_eq!(rc, 0, "sigaction: {}", io::Error::last_os_error());
    // SAFETY: sigaction succeeded.
    unsafe { old.assume_init() }
}

/// The current handler address of `signal`.
fn disposition(signal: libc::c_int) -> libc::sighandler_t {
    action(signal).sa_sigaction
}

fn raise_gives_one_readable_event_and_pending_reports_it_once() {
    for_each_backend(|poll| {
        let mut signals = registered(poll, &[libc::SIGUSR1]);
        raise(libc::SIGUSR1);
        // The handler has run when raise returns: the first poll has it,
        // as one readable event.
        let mut events = Events::with_capacity(8);
        poll.poll(&mut events, Some(PATIENCE)).expect("poll");
        let ours: Vec<_> = events.iter().filter(|e| e.token() == SIGNALS).collect();
        assert_eq!(ours.len(), 1, "one event: {events:?}");
        assert!(ours[0].is_readable(), "{events:?}");
        assert_eq!(signals.pending().collect::<Vec<_>>(), [libc::SIGUSR1]);
        assert_eq!(signals.pending().count(), 0, "reported once");
        poll.poll(&mut events, Some(util::QUIET)).expect("poll");
        assert!(
            events.iter().all(|e| e.token() != SIGNALS),
            "an event after pending() took the signal: {events:?}"
        );
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

/// `Signals` registers as its pipe's receiver does (pipe/mod.rs,
/// "Interest"): writable alone is refused, writable with readable is
/// dropped.
fn signals_register_only_readable() {
    for_each_backend(|poll| {
        let mut signals = Signals::new(&[libc::SIGUSR2]).unwrap();
        let refused = poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::WRITABLE);
        assert_eq!(refused.unwrap_err().kind(), ErrorKind::InvalidInput);
        poll.registry()
            .register(
                &mut signals,
                SIGNALS,
                Interest::READABLE | Interest::WRITABLE,
            )
            .expect("writable dropped, readable registered");
        raise(libc::SIGUSR2);
        assert_eq!(wait_for(poll, &mut signals, libc::SIGUSR2), [libc::SIGUSR2]);
    });
}

fn the_pipe_fds_are_close_on_exec_and_non_blocking() {
    if !can_list_fds("the_pipe_fds_are_close_on_exec_and_non_blocking") {
        return;
    }
    let before: HashSet<_> = live_fds();
    let signals = Signals::new(&[libc::SIGUSR1]).unwrap();
    let after: HashSet<_> = live_fds();
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
    if !can_list_fds("no_fd_grows_over_1000_create_drop_cycles") {
        return;
    }
    let before = live_fds().len();
    for _ in 0..1000 {
        let mut signals = Signals::new(&[libc::SIGUSR1, libc::SIGTERM]).unwrap();
        signals.add(libc::SIGUSR2).unwrap();
    }
    assert_eq!(live_fds().len(), before);
}

/// How a forked child ended.
#[derive(Debug, PartialEq)]
enum Ended {
    Exited(libc::c_int),
    Killed(libc::c_int),
}

/// Runs `f` in a forked child (this binary is single-threaded, so the child
/// may do anything) and says how the child ended: exit 0 if `f` returned,
/// 1 if it panicked, or the signal that killed it (a stack overflow is
/// SIGSEGV or SIGABRT).
fn in_child(f: fn()) -> Ended {
    // SAFETY: fork in a single-threaded process; the child runs `f` and
    // leaves with _exit, never returning into the test runner.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", io::Error::last_os_error()),
        0 => {
            let code = match std::panic::catch_unwind(f) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: ends the child without running the parent's cleanup.
            unsafe { libc::_exit(code) }
        }
        pid => wait_child(pid, PATIENCE).expect("the child finished"),
    }
}

/// Waits for `pid` up to `patience`; kills it (and says `None`) if it is
/// still running then.
fn wait_child(pid: libc::pid_t, patience: Duration) -> Option<Ended> {
    let deadline = Instant::now() + patience;
    let mut status = 0;
    loop {
        // SAFETY: polls our own child.
        match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
            0 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            0 => {
                // SAFETY: kills and reaps our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                return None;
            }
            reaped if reaped == pid && libc::WIFEXITED(status) => {
                return Some(Ended::Exited(libc::WEXITSTATUS(status)));
            }
            reaped if reaped == pid => return Some(Ended::Killed(libc::WTERMSIG(status))),
            _ => panic!("waitpid: {}", io::Error::last_os_error()),
        }
    }
}

/// A hand-written "library" handler that saves the disposition it replaces
/// (with one swap), chains to it, and puts it back when it uninstalls,
/// whatever is installed by then, as C libraries do. One module per
/// library, so that several can be stacked in any order.
macro_rules! chaining_library {
    ($name:ident) => {
        mod $name {
            use std::mem::MaybeUninit;
            use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

            pub static CALLS: AtomicUsize = AtomicUsize::new(0);
            static SAVED: AtomicUsize = AtomicUsize::new(0);
            static SAVED_SIGINFO: AtomicUsize = AtomicUsize::new(0);
            static mut SAVED_ACTION: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();

            extern "C" fn handler(
                signal: libc::c_int,
                info: *mut libc::siginfo_t,
                ctx: *mut libc::c_void,
            ) {
                CALLS.fetch_add(1, SeqCst);
                let previous = SAVED.load(SeqCst);
                if previous == libc::SIG_DFL || previous == libc::SIG_IGN {
                    return;
                }
                type Full = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
                if SAVED_SIGINFO.load(SeqCst) != 0 {
                    // SAFETY: `previous` was installed with SA_SIGINFO.
                    let f: Full = unsafe { std::mem::transmute(previous) };
                    f(signal, info, ctx);
                } else {
                    // SAFETY: `previous` was installed without SA_SIGINFO.
                    let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(previous) };
                    f(signal);
                }
            }

            pub fn install(signal: libc::c_int) {
                // SAFETY: all-zero is a valid sigaction; the mask is emptied.
                let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
                new.sa_sigaction = handler as *const () as libc::sighandler_t;
                new.sa_flags = libc::SA_SIGINFO;
                // SAFETY: single-threaded test child; `new` is complete and
                // SAVED_ACTION receives the replaced action.
                unsafe {
                    libc::sigemptyset(&mut new.sa_mask);
                    let old = &raw mut SAVED_ACTION;
                    assert_eq!(libc::sigaction(signal, &new, (*old).as_mut_ptr()), 0);
                    let old = (*old).assume_init();
                    SAVED.store(old.sa_sigaction, SeqCst);
                    let siginfo = old.sa_flags & libc::SA_SIGINFO != 0;
                    SAVED_SIGINFO.store(usize::from(siginfo), SeqCst);
                }
            }

            pub fn uninstall(signal: libc::c_int) {
                // SAFETY: puts back the action `install` saved.
                unsafe {
                    let old = &raw const SAVED_ACTION;
                    libc::sigaction(signal, (*old).as_ptr(), std::ptr::null_mut());
                }
            }
        }
    };
}

chaining_library!(chaining_library);
chaining_library!(library_y);
chaining_library!(library_z);

/// Waits for `signal` on a fresh `Poll` of the default backend.
fn observe(signals: &mut Signals, signal: libc::c_int) {
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(signals, SIGNALS, Interest::READABLE)
        .unwrap();
    wait_for(&mut poll, signals, signal);
}

/// The recursion the issue saw: pipeloop installed itself over
/// signal-hook-registry's handler, which chains back to pipeloop's, and the
/// two called each other until the stack overflowed.
fn pipeloop_never_installs_itself_over_signal_hook_which_chains_back() {
    let ended = in_child(|| {
        static HOOK_RAN: AtomicUsize = AtomicUsize::new(0);
        let first = Signals::new(&[libc::SIGUSR1]).unwrap();
        // SAFETY: the action only increments an atomic.
        unsafe {
            signal_hook_registry::register(libc::SIGUSR1, || {
                HOOK_RAN.fetch_add(1, Ordering::SeqCst);
            })
        }
        .unwrap();
        drop(first);
        let mut second = Signals::new(&[libc::SIGUSR1]).unwrap();
        raise(libc::SIGUSR1);
        observe(&mut second, libc::SIGUSR1);
        assert_eq!(
            HOOK_RAN.load(Ordering::SeqCst),
            1,
            "signal-hook's action ran once"
        );
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// The same with a hand-written handler that saves and chains to the
/// previous one.
fn pipeloop_never_installs_itself_over_a_handler_that_chains_back() {
    let ended = in_child(|| {
        let first = Signals::new(&[libc::SIGUSR1]).unwrap();
        chaining_library::install(libc::SIGUSR1);
        drop(first);
        let mut second = Signals::new(&[libc::SIGUSR1]).unwrap();
        raise(libc::SIGUSR1);
        observe(&mut second, libc::SIGUSR1);
        assert_eq!(chaining_library::CALLS.load(Ordering::SeqCst), 1);
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// SIGTERM is `SIG_DFL`; a `Signals` watches it; library X installs over
/// pipeloop's handler; the `Signals` goes (pipeloop cannot restore: X is
/// on top); X uninstalls, putting pipeloop's handler back. SIGTERM must
/// terminate again, not be swallowed by a handler nobody listens to.
fn sigterm_terminates_after_another_library_puts_pipeloops_handler_back() {
    let ended = in_child(|| {
        set_disposition(libc::SIGTERM, libc::SIG_DFL);
        let signals = Signals::new(&[libc::SIGTERM]).unwrap();
        chaining_library::install(libc::SIGTERM);
        drop(signals);
        chaining_library::uninstall(libc::SIGTERM);
        raise(libc::SIGTERM);
        // Still alive: the signal was swallowed.
    });
    assert_eq!(ended, Ended::Killed(libc::SIGTERM));
}

static H_RAN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn handler_h(_: libc::c_int) {
    H_RAN.fetch_add(1, Ordering::SeqCst);
}

/// The same sequence over an earlier handler H: H must keep running while a
/// new `Signals` watches, and come back when it goes.
fn an_earlier_handler_survives_another_library_putting_pipeloops_back() {
    let ended = in_child(|| {
        let h = handler_h as *const () as libc::sighandler_t;
        set_disposition(libc::SIGUSR2, h);
        let first = Signals::new(&[libc::SIGUSR2]).unwrap();
        chaining_library::install(libc::SIGUSR2);
        drop(first);
        chaining_library::uninstall(libc::SIGUSR2);

        let mut second = Signals::new(&[libc::SIGUSR2]).unwrap();
        raise(libc::SIGUSR2);
        observe(&mut second, libc::SIGUSR2);
        assert_eq!(H_RAN.load(Ordering::SeqCst), 1, "H ran");
        drop(second);
        assert_eq!(disposition(libc::SIGUSR2), h, "H is restored");
        raise(libc::SIGUSR2);
        assert_eq!(H_RAN.load(Ordering::SeqCst), 2, "H runs alone");
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// Two chaining libraries, Y then Z, removed in the order they were
/// installed (not the reverse): Z's removal puts back Y, which still
/// chains to pipeloop's handler, after pipeloop had restored the earlier
/// handler H and left the chain. pipeloop then installs itself over Y; the
/// two must not call each other until the stack overflows.
fn stale_chaining_handlers_put_back_out_of_order_never_recurse() {
    let ended = in_child(|| {
        let h = handler_h as *const () as libc::sighandler_t;
        set_disposition(libc::SIGUSR1, h);
        let first = Signals::new(&[libc::SIGUSR1]).unwrap();
        library_y::install(libc::SIGUSR1);
        library_z::install(libc::SIGUSR1);
        drop(first); // Z is on top: the restore waits
        library_y::uninstall(libc::SIGUSR1); // puts pipeloop's back on top
        drop(Signals::new(&[libc::SIGUSR1]).unwrap()); // restores H
        assert_eq!(disposition(libc::SIGUSR1), h);
        library_z::uninstall(libc::SIGUSR1); // puts Y back: Y chains to pipeloop's

        let mut third = Signals::new(&[libc::SIGUSR1]).unwrap();
        raise(libc::SIGUSR1);
        observe(&mut third, libc::SIGUSR1);
        assert_eq!(library_y::CALLS.load(Ordering::SeqCst), 1, "Y ran once");
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// While pipeloop's restore waits (another handler above it), the program
/// sets SIGUSR1 back to `SIG_DFL` itself: pipeloop's handler is out of the
/// chain for sure, so a new `Signals` must install it again rather than
/// rely on a chain that no longer reaches it.
fn a_disposition_reset_under_a_pending_restore_is_noticed() {
    let ended = in_child(|| {
        let first = Signals::new(&[libc::SIGUSR1]).unwrap();
        chaining_library::install(libc::SIGUSR1);
        drop(first);
        set_disposition(libc::SIGUSR1, libc::SIG_DFL);
        let mut second = Signals::new(&[libc::SIGUSR1]).unwrap();
        raise(libc::SIGUSR1); // SIG_DFL would end the child
        observe(&mut second, libc::SIGUSR1);
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// The same, but the program puts back the handler H that pipeloop had
/// replaced. H is older than pipeloop's handler, so it does not chain to
/// it: a new `Signals` must install pipeloop's again (chaining to H) rather
/// than rely on being called.
fn the_replaced_handler_put_back_under_a_pending_restore_is_noticed() {
    let ended = in_child(|| {
        let h = handler_h as *const () as libc::sighandler_t;
        set_disposition(libc::SIGUSR2, h);
        let first = Signals::new(&[libc::SIGUSR2]).unwrap();
        chaining_library::install(libc::SIGUSR2);
        drop(first); // the library is on top: the restore waits
        set_disposition(libc::SIGUSR2, h);
        let mut second = Signals::new(&[libc::SIGUSR2]).unwrap();
        raise(libc::SIGUSR2);
        observe(&mut second, libc::SIGUSR2);
        assert_eq!(H_RAN.load(Ordering::SeqCst), 1, "H ran once");
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// pipeloop's handler runs the earlier one inside it, so it is installed
/// with what that one asked for: its mask, and its `SA_RESTART`,
/// `SA_ONSTACK` and `SA_NOCLDSTOP` choices. Over no handler it restarts
/// interrupted calls (`SA_RESTART`) and blocks nothing more.
fn pipeloops_action_keeps_the_earlier_handlers_mask_and_flags() {
    const FLAGS: libc::c_int =
        libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK | libc::SA_NOCLDSTOP;
    let ended = in_child(|| {
        // SAFETY: all-zero is a valid sigaction; the fields are set below.
        let mut earlier: libc::sigaction = unsafe { std::mem::zeroed() };
        earlier.sa_sigaction = handler_h as *const () as libc::sighandler_t;
        earlier.sa_flags = libc::SA_ONSTACK | libc::SA_NOCLDSTOP;
        // SAFETY: `earlier` is complete once its mask is set; the child
        // has no children, so SIGCHLD does not come.
        unsafe {
            libc::sigemptyset(&mut earlier.sa_mask);
            libc::sigaddset(&mut earlier.sa_mask, libc::SIGUSR1);
            assert_eq!(
                libc::sigaction(libc::SIGCHLD, &earlier, std::ptr::null_mut()),
                0
            );
        }
        let _chaining = Signals::new(&[libc::SIGCHLD]).unwrap();
        let now = action(libc::SIGCHLD);
        assert_ne!(now.sa_sigaction, earlier.sa_sigaction, "installed");
        assert_eq!(
            now.sa_flags & FLAGS,
            libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NOCLDSTOP
        );
        // SAFETY: `now.sa_mask` is a valid set.
        assert_eq!(unsafe { libc::sigismember(&now.sa_mask, libc::SIGUSR1) }, 1);

        set_disposition(libc::SIGUSR2, libc::SIG_DFL);
        let _alone = Signals::new(&[libc::SIGUSR2]).unwrap();
        let now = action(libc::SIGUSR2);
        assert_eq!(now.sa_flags & FLAGS, libc::SA_SIGINFO | libc::SA_RESTART);
        // SAFETY: `now.sa_mask` is a valid set.
        assert_eq!(unsafe { libc::sigismember(&now.sa_mask, libc::SIGUSR1) }, 0);
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// The restore left waiting is finished by the handler itself, once the
/// other library has put pipeloop's handler back and nobody watches: the
/// signal goes to the earlier handler, which is installed again.
fn a_pending_restore_to_an_earlier_handler_finishes_in_the_handler() {
    let ended = in_child(|| {
        let h = handler_h as *const () as libc::sighandler_t;
        set_disposition(libc::SIGUSR2, h);
        let signals = Signals::new(&[libc::SIGUSR2]).unwrap();
        chaining_library::install(libc::SIGUSR2);
        drop(signals);
        chaining_library::uninstall(libc::SIGUSR2);
        raise(libc::SIGUSR2);
        assert_eq!(H_RAN.load(Ordering::SeqCst), 1, "H ran");
        assert_eq!(disposition(libc::SIGUSR2), h, "H is installed again");
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// The same with `SIG_IGN` as the earlier disposition: the signal is
/// ignored, and `SIG_IGN` is installed again.
fn a_pending_restore_to_sig_ign_finishes_in_the_handler() {
    let ended = in_child(|| {
        set_disposition(libc::SIGUSR2, libc::SIG_IGN);
        let signals = Signals::new(&[libc::SIGUSR2]).unwrap();
        chaining_library::install(libc::SIGUSR2);
        drop(signals);
        chaining_library::uninstall(libc::SIGUSR2);
        raise(libc::SIGUSR2);
        assert_eq!(disposition(libc::SIGUSR2), libc::SIG_IGN);
    });
    assert_eq!(ended, Ended::Exited(0));
}

/// A threaded program forks while its other thread is inside pipeloop's
/// handler: the child's `drop(Signals)` waited forever for that thread's
/// `active` count. Forks many times while a thread raises the signal in a
/// loop; every child must drop its `Signals` and exit.
fn fork_while_another_thread_handles_a_signal_never_hangs_the_child() {
    // In a child of its own: the raising thread must not outlive the test
    // in this process, whose other tests fork assuming one thread.
    assert_eq!(in_child(forks_while_a_thread_raises), Ended::Exited(0));
}

fn forks_while_a_thread_raises() {
    use std::sync::atomic::AtomicBool;
    let signals = Signals::new(&[libc::SIGUSR1]).unwrap();
    static STOP: AtomicBool = AtomicBool::new(false);
    STOP.store(false, Ordering::SeqCst);
    let raiser = std::thread::spawn(|| {
        while !STOP.load(Ordering::SeqCst) {
            // SAFETY: raise signals only this thread.
            unsafe { libc::raise(libc::SIGUSR1) };
        }
    });
    let mut hung = 0;
    for _ in 0..1000 {
        // SAFETY: the child only drops the `Signals` (atomics, sigaction,
        // close) and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop(signals);
            // SAFETY: leaves the child at once.
            unsafe { libc::_exit(0) };
        }
        assert!(pid > 0, "fork: {}", io::Error::last_os_error());
        match wait_child(pid, Duration::from_secs(2)) {
            Some(Ended::Exited(0)) => {}
            None => {
                hung += 1;
                break;
            }
            other => panic!("child ended {other:?}"),
        }
    }
    STOP.store(true, Ordering::SeqCst);
    raiser.join().unwrap();
    drop(signals);
    assert_eq!(hung, 0, "a child hung in drop(Signals)");
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
            "signals_register_only_readable",
            signals_register_only_readable,
        ),
        (
            "the_pipe_fds_are_close_on_exec_and_non_blocking",
            the_pipe_fds_are_close_on_exec_and_non_blocking,
        ),
        (
            "no_fd_grows_over_1000_create_drop_cycles",
            no_fd_grows_over_1000_create_drop_cycles,
        ),
        (
            "pipeloop_never_installs_itself_over_signal_hook_which_chains_back",
            pipeloop_never_installs_itself_over_signal_hook_which_chains_back,
        ),
        (
            "pipeloop_never_installs_itself_over_a_handler_that_chains_back",
            pipeloop_never_installs_itself_over_a_handler_that_chains_back,
        ),
        (
            "sigterm_terminates_after_another_library_puts_pipeloops_handler_back",
            sigterm_terminates_after_another_library_puts_pipeloops_handler_back,
        ),
        (
            "an_earlier_handler_survives_another_library_putting_pipeloops_back",
            an_earlier_handler_survives_another_library_putting_pipeloops_back,
        ),
        (
            "stale_chaining_handlers_put_back_out_of_order_never_recurse",
            stale_chaining_handlers_put_back_out_of_order_never_recurse,
        ),
        (
            "a_disposition_reset_under_a_pending_restore_is_noticed",
            a_disposition_reset_under_a_pending_restore_is_noticed,
        ),
        (
            "the_replaced_handler_put_back_under_a_pending_restore_is_noticed",
            the_replaced_handler_put_back_under_a_pending_restore_is_noticed,
        ),
        (
            "pipeloops_action_keeps_the_earlier_handlers_mask_and_flags",
            pipeloops_action_keeps_the_earlier_handlers_mask_and_flags,
        ),
        (
            "a_pending_restore_to_an_earlier_handler_finishes_in_the_handler",
            a_pending_restore_to_an_earlier_handler_finishes_in_the_handler,
        ),
        (
            "a_pending_restore_to_sig_ign_finishes_in_the_handler",
            a_pending_restore_to_sig_ign_finishes_in_the_handler,
        ),
        (
            "fork_while_another_thread_handles_a_signal_never_hangs_the_child",
            fork_while_another_thread_handles_a_signal_never_hangs_the_child,
        ),
    ];
    util::run_cases(tests);
}
