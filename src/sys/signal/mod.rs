//! The OS side of `pipeloop::signal`: the handler, the table it reads, and
//! (in `disposition.rs`) installing and restoring dispositions.
//!
//! # The table the handler reads
//!
//! A signal handler may run at any instruction of any thread, including one
//! that holds a lock, so it must not lock or allocate. Every `Signals` is a
//! *watcher*: a slot in the fixed array `WATCHERS`, holding atomics only:
//! which signals it watches, which have arrived, and the write end of its
//! pipe. The handler walks the slots in use, and for each one that watches
//! the signal sets the signal's bit in `pending` and writes one byte to the
//! pipe. Nothing is ever freed, so there is nothing to reclaim.
//!
//! The one hazard is the pipe's fd: the handler must not write to it after
//! the watcher closed it (the number could by then belong to another file).
//! So the handler counts itself in `active` before it looks at `in_use`, and
//! a watcher going away clears `in_use` and then waits until `active` is 0
//! before the fd is closed. With both sides sequentially consistent, either
//! the handler sees `in_use` cleared, or the watcher sees it counted and
//! waits: the wait is as long as one `write(2)`. (A handler interrupting the
//! waiting thread itself finishes before that thread continues.)
//!
//! # Watching
//!
//! A watcher's bit for a signal is set *before* pipeloop's handler is
//! installed for it, and cleared only *after* the earlier disposition is
//! restored (or the restore was found to have to wait, pipeloop's handler
//! chaining meanwhile): a signal that arrives in between reaches one or the
//! other. (`disposition.rs` names the one race left.) Registration code
//! (claiming slots, watching, unwatching) is serialised by `REGISTRATION`,
//! a lock the handler never touches.
//!
//! # `fork`
//!
//! A child forked while another thread was inside pipeloop's handler would
//! inherit an `active` count (or a disposition lock) that no thread of its
//! own will ever release, and its first `drop(Signals)` would wait forever.
//! So an atfork handler, registered with the first watcher, takes
//! `REGISTRATION` before `fork` (no registration change is half made in the
//! child), releases it in both processes, and clears in the child what only
//! the parent's other threads could hold. A handler that forks while it
//! interrupts pipeloop's own registration code on the same thread skips the
//! lock rather than deadlock.

mod disposition;

use std::io;
use std::os::fd::RawFd;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

/// Signal numbers are below this (Linux's go up to 64, FreeBSD's real-time
/// signals up to 126).
pub(crate) const MAX_SIGNAL: usize = 128;
/// How many `Signals` can exist at once in a process.
pub(crate) const MAX_WATCHERS: usize = 128;

/// A set of signals, as bits.
pub(crate) type SigBits = [u64; MAX_SIGNAL / 64];

fn word_bit(signal: usize) -> (usize, u64) {
    (signal / 64, 1 << (signal % 64))
}

struct Watcher {
    /// The slot is handed out (registration code's view).
    claimed: AtomicBool,
    /// The slot belongs to a live `Signals` (the handler's view).
    in_use: AtomicBool,
    /// Handlers currently looking at this slot.
    active: AtomicUsize,
    /// The write end of the watcher's pipe.
    fd: AtomicI32,
    watched: [AtomicU64; MAX_SIGNAL / 64],
    pending: [AtomicU64; MAX_SIGNAL / 64],
}

impl Watcher {
    const fn new() -> Watcher {
        Watcher {
            claimed: AtomicBool::new(false),
            in_use: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            fd: AtomicI32::new(-1),
            watched: [const { AtomicU64::new(0) }; MAX_SIGNAL / 64],
            pending: [const { AtomicU64::new(0) }; MAX_SIGNAL / 64],
        }
    }
}

static WATCHERS: [Watcher; MAX_WATCHERS] = [const { Watcher::new() }; MAX_WATCHERS];
/// One past the highest slot ever used, so the handler walks only those.
static HIGH_WATER: AtomicUsize = AtomicUsize::new(0);

/// Serialises registration code: held by one thread at a time (its
/// `pthread_self`, 0 when free). Not a `Mutex`, so that the atfork handlers
/// can take it in the parent and release it in the child.
static REGISTRATION: AtomicUsize = AtomicUsize::new(0);
/// Set while the atfork handlers hold `REGISTRATION` across a `fork`.
static HELD_FOR_FORK: AtomicBool = AtomicBool::new(false);

pub(super) fn this_thread() -> usize {
    // SAFETY: pthread_self has no preconditions and only reads this
    // thread's own identifier.
    unsafe { libc::pthread_self() as usize }
}

/// One round of waiting for something another thread (or a handler on it)
/// holds for a few syscalls: yield at first, then sleep, in case that
/// thread can only run once this one sleeps (a lower real-time priority on
/// the same CPU).
pub(super) fn back_off(spins: &mut u32) {
    if *spins < 100 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
    *spins = spins.saturating_add(1);
}

/// `REGISTRATION`, held.
struct Registering;

impl Registering {
    fn lock() -> Registering {
        let me = this_thread();
        let mut spins = 0;
        while REGISTRATION
            .compare_exchange(0, me, SeqCst, SeqCst)
            .is_err()
        {
            back_off(&mut spins);
        }
        Registering
    }
}

impl Drop for Registering {
    fn drop(&mut self) {
        REGISTRATION.store(0, SeqCst);
    }
}

extern "C" fn before_fork() {
    // A signal handler forking while it interrupts this thread's own
    // registration code would wait for itself: skip the lock then.
    if REGISTRATION.load(SeqCst) != this_thread() {
        std::mem::forget(Registering::lock());
        HELD_FOR_FORK.store(true, SeqCst);
    }
}

extern "C" fn after_fork_in_parent() {
    if HELD_FOR_FORK.swap(false, SeqCst) {
        REGISTRATION.store(0, SeqCst);
    }
}

extern "C" fn after_fork_in_child() {
    // Only this thread exists here: no handler is running, so none is
    // counted in `active` or holds a disposition.
    for w in &WATCHERS {
        w.active.store(0, SeqCst);
    }
    disposition::reset_after_fork();
    after_fork_in_parent();
}

fn register_fork_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: the three handlers are plain functions that only touch
        // atomics (and yield while waiting for the lock before fork).
        let rc = unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_in_parent),
                Some(after_fork_in_child),
            )
        };
        if rc != 0 {
            log::debug!("pipeloop: pthread_atfork failed ({rc}); fork while a signal is handled may hang the child");
        }
    });
}

/// Signals that must not be turned into events: SIGKILL and SIGSTOP cannot
/// be caught at all; after SIGSEGV, SIGILL, SIGFPE or SIGBUS from a fault,
/// returning from the handler re-runs the faulting instruction forever.
const FORBIDDEN: [libc::c_int; 6] = [
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGSEGV,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGBUS,
];

/// Checks that `signal` may be watched.
pub(crate) fn validate(signal: libc::c_int) -> io::Result<usize> {
    let invalid = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} {why}", describe(signal)),
        )
    };
    if FORBIDDEN.contains(&signal) {
        return Err(invalid("cannot be caught safely, so it cannot be watched"));
    }
    let index = usize::try_from(signal)
        .ok()
        .filter(|&i| i > 0 && i < MAX_SIGNAL)
        .ok_or_else(|| invalid("is out of range"))?;
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset checks the number.
    let valid = unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), signal) == 0
    };
    if !valid {
        return Err(invalid("is not a signal on this system"));
    }
    Ok(index)
}

/// `SIGINT (2)`, or `signal 77`.
pub(crate) fn describe(signal: libc::c_int) -> String {
    match name(signal) {
        Some(name) => format!("{name} ({signal})"),
        None => format!("signal {signal}"),
    }
}

/// The usual name of a signal, for messages.
pub(crate) fn name(signal: libc::c_int) -> Option<&'static str> {
    const NAMES: &[(libc::c_int, &str)] = &[
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == signal)
        .map(|(_, name)| *name)
}

/// Takes a free slot for a watcher whose pipe's write end is `fd`.
pub(crate) fn claim(fd: RawFd) -> io::Result<usize> {
    register_fork_handlers();
    let _registering = Registering::lock();
    let Some(slot) = WATCHERS.iter().position(|w| !w.claimed.load(SeqCst)) else {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("at most {MAX_WATCHERS} Signals can exist at once"),
        ));
    };
    let w = &WATCHERS[slot];
    w.claimed.store(true, SeqCst);
    for word in w.watched.iter().chain(&w.pending) {
        word.store(0, SeqCst);
    }
    w.fd.store(fd, SeqCst);
    w.in_use.store(true, SeqCst);
    HIGH_WATER.fetch_max(slot + 1, SeqCst);
    Ok(slot)
}

/// Gives a slot back: after this returns, no handler touches its fd.
pub(crate) fn release(slot: usize, watched: &SigBits) {
    let mut changes = [None; MAX_SIGNAL];
    let registering = Registering::lock();
    for (index, signal) in signals_in(watched) {
        changes[index] = unwatch_locked(slot, index, signal);
    }
    wait_until_unused(slot);
    drop(registering);
    log_changes(&changes);
}

/// Logs what registration code changed, once `REGISTRATION` is released: a
/// logger's own lock must never be taken under it (a logger's atfork
/// handler could hold that lock and wait for `REGISTRATION` in `fork`).
fn log_changes(changes: &[Option<disposition::Change>]) {
    for (index, change) in changes.iter().enumerate() {
        if let Some(change) = change {
            change.log(index as libc::c_int);
        }
    }
}

/// Waits until no handler uses `slot`'s fd, and frees the slot.
fn wait_until_unused(slot: usize) {
    let w = &WATCHERS[slot];
    w.in_use.store(false, SeqCst);
    // A handler holds the slot for one write(2).
    let mut spins = 0;
    while w.active.load(SeqCst) != 0 {
        back_off(&mut spins);
    }
    w.fd.store(-1, SeqCst);
    w.claimed.store(false, SeqCst);
}

/// The signals in `bits`, as (index, number).
pub(crate) fn signals_in(bits: &SigBits) -> impl Iterator<Item = (usize, libc::c_int)> + '_ {
    (1..MAX_SIGNAL)
        .filter(|&i| {
            let (word, bit) = word_bit(i);
            bits[word] & bit != 0
        })
        .map(|i| (i, i as libc::c_int))
}

/// Starts delivering `signal` to the watcher in `slot`, installing the
/// handler if needed.
pub(crate) fn watch(slot: usize, index: usize, signal: libc::c_int) -> io::Result<()> {
    let registering = Registering::lock();
    let (word, bit) = word_bit(index);
    // First the bit, then the handler: a signal arriving as soon as the
    // handler is in place finds its watcher.
    WATCHERS[slot].watched[word].fetch_or(bit, SeqCst);
    let change = disposition::watch(index, signal).inspect_err(|_| {
        WATCHERS[slot].watched[word].fetch_and(!bit, SeqCst);
    })?;
    drop(registering);
    if let Some(change) = change {
        change.log(signal);
    }
    Ok(())
}

/// Stops delivering `signal` to `slot`, restoring the old disposition if
/// this was its last watcher.
pub(crate) fn unwatch(slot: usize, index: usize, signal: libc::c_int) {
    let registering = Registering::lock();
    let change = unwatch_locked(slot, index, signal);
    drop(registering);
    if let Some(change) = change {
        change.log(signal);
    }
}

fn unwatch_locked(slot: usize, index: usize, signal: libc::c_int) -> Option<disposition::Change> {
    // First the disposition, then the bit: a signal arriving in between
    // reaches the restored disposition or this watcher. (If the restore has
    // to wait, see `disposition`, pipeloop's handler goes on chaining.)
    let change = disposition::unwatch(index, signal);
    let (word, bit) = word_bit(index);
    WATCHERS[slot].watched[word].fetch_and(!bit, SeqCst);
    WATCHERS[slot].pending[word].fetch_and(!bit, SeqCst);
    change
}

/// The signals that arrived for `slot` since the last call.
pub(crate) fn take_pending(slot: usize) -> SigBits {
    let w = &WATCHERS[slot];
    let mut bits = [0; MAX_SIGNAL / 64];
    for (out, word) in bits.iter_mut().zip(&w.pending) {
        *out = word.swap(0, SeqCst);
    }
    bits
}

/// The signal handler.
///
/// Async-signal-safe, because it only:
/// - saves and restores `errno` (a `write` could change it under the
///   interrupted code's feet);
/// - loads, stores and updates atomics in static memory (lock-free on every
///   target pipeloop supports);
/// - calls `write(2)`, which POSIX lists as async-signal-safe, on a
///   non-blocking pipe, so it never blocks (a full pipe is already
///   readable, and the failed write is harmless);
/// - with nobody watching, may finish a pending restore: `sigaction`,
///   `pthread_sigmask` and `raise`, all async-signal-safe, under a lock it
///   only tries;
/// - calls the earlier handler, which was itself installed as a handler.
///
/// It never allocates, waits, logs or panics.
extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let saved = super::fd::errno();
    if let Some(index) = usize::try_from(signal).ok().filter(|&i| i < MAX_SIGNAL) {
        notify_watchers(index);
        match disposition::after_notify(index, signal) {
            disposition::Then::Chain => disposition::chain(index, signal, info, context),
            // SAFETY: raise only sends a signal to this thread; it stays
            // pending (the signal is blocked in its own handler) until the
            // handler returns, and then takes the restored default action.
            disposition::Then::Raise => unsafe {
                libc::raise(signal);
            },
        }
    }
    super::fd::set_errno(saved);
}

fn notify_watchers(index: usize) {
    let (word, bit) = word_bit(index);
    let high = HIGH_WATER.load(SeqCst).min(MAX_WATCHERS);
    for w in &WATCHERS[..high] {
        if !w.in_use.load(SeqCst) {
            continue;
        }
        w.active.fetch_add(1, SeqCst);
        if w.in_use.load(SeqCst) && w.watched[word].load(SeqCst) & bit != 0 {
            // Flag first, then wake: a reader that drains the pipe and then
            // takes the flags sees this signal now or on the next wake-up.
            w.pending[word].fetch_or(bit, SeqCst);
            let byte = 1u8;
            // SAFETY: the fd stays open while `active` counts this handler
            // and `in_use` was seen set after counting (see the module doc).
            unsafe { libc::write(w.fd.load(SeqCst), (&byte as *const u8).cast(), 1) };
        }
        // Never below 0: a handler that forks in between (chained, nested)
        // leaves a child whose counts were reset (`after_fork_in_child`).
        let _ = w
            .active
            .fetch_update(SeqCst, SeqCst, |active| active.checked_sub(1));
    }
}
