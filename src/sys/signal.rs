//! The OS side of `pipeloop::signal`: the handler, the table it reads, and
//! installing and restoring dispositions.
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
//! # Installing
//!
//! Changes to dispositions (`sigaction`) are serialised by `INSTALLED`, a
//! mutex the handler never touches. The first watcher of a signal saves the
//! disposition that was there and installs the handler, with `SA_SIGINFO`
//! and `SA_RESTART`; the last one to go restores what was saved.
//!
//! An earlier *handler function* (installed by the program or another
//! library) is chained: it runs after pipeloop's, with the same arguments,
//! so it keeps working. pipeloop's handler is then installed with the
//! earlier one's mask and its `SA_RESTART`, `SA_ONSTACK` and `SA_NOCLDSTOP`
//! flags, so the earlier handler runs as it asked to (`SA_RESETHAND` is not
//! emulated: a one-shot earlier handler runs on every signal while pipeloop
//! watches). A handler that replaced pipeloop's while it watched is left in
//! place when pipeloop's watchers go. `SIG_DFL` and `SIG_IGN` are not "run": while
//! pipeloop watches a signal, its default action (terminating, for SIGINT)
//! does not happen; that is the point of watching it.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::cvt;

/// Signal numbers are below this (Linux has 64, the BSDs fewer).
pub(crate) const MAX_SIGNAL: usize = 128;
/// How many `Signals` can exist at once in a process.
pub(crate) const MAX_WATCHERS: usize = 128;

/// A set of signals, as bits.
pub(crate) type SigBits = [u64; MAX_SIGNAL / 64];

fn word_bit(signal: usize) -> (usize, u64) {
    (signal / 64, 1 << (signal % 64))
}

struct Watcher {
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

/// The handler that was installed before pipeloop's, to chain to: its
/// address (0 for none, `SIG_DFL` or `SIG_IGN`), with `SIGINFO_BIT` set if
/// it takes `siginfo_t` (`SA_SIGINFO`). One word, so that a handler never
/// reads the address of one handler with the flag of another.
static PREVIOUS: [AtomicU64; MAX_SIGNAL] = [const { AtomicU64::new(0) }; MAX_SIGNAL];
/// Above every user-space address on the 64- and 32-bit targets.
const SIGINFO_BIT: u64 = 1 << 63;

/// What only registration changes touch, under a lock.
struct Installed {
    /// How many watchers watch each signal.
    count: [u32; MAX_SIGNAL],
    /// The disposition to restore when the count drops to 0.
    saved: [Option<libc::sigaction>; MAX_SIGNAL],
    /// Slots handed out.
    taken: [bool; MAX_WATCHERS],
}

// SAFETY: `libc::sigaction` is plain data (a handler address, flags and a
// mask); moving it between threads is fine.
unsafe impl Send for Installed {}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed {
    count: [0; MAX_SIGNAL],
    saved: [const { None }; MAX_SIGNAL],
    taken: [false; MAX_WATCHERS],
});

fn installed() -> MutexGuard<'static, Installed> {
    INSTALLED.lock().unwrap_or_else(PoisonError::into_inner)
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
    let mut state = installed();
    let Some(slot) = state.taken.iter().position(|taken| !taken) else {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("at most {MAX_WATCHERS} Signals can exist at once"),
        ));
    };
    state.taken[slot] = true;
    let w = &WATCHERS[slot];
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
    let mut state = installed();
    for (index, signal) in signals_in(watched) {
        unwatch_locked(&mut state, slot, index, signal);
    }
    let w = &WATCHERS[slot];
    w.in_use.store(false, SeqCst);
    // A handler holds the slot for one write(2). Yield first; then sleep,
    // in case the handler's thread can only run once this one sleeps (a
    // lower real-time priority on the same CPU).
    let mut spins = 0u32;
    while w.active.load(SeqCst) != 0 {
        if spins < 100 {
            std::thread::yield_now();
            spins += 1;
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    w.fd.store(-1, SeqCst);
    state.taken[slot] = false;
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
/// handler if this is the signal's first watcher.
pub(crate) fn watch(slot: usize, index: usize, signal: libc::c_int) -> io::Result<()> {
    let mut state = installed();
    if state.count[index] == 0 {
        install(&mut state, index, signal)?;
    }
    state.count[index] += 1;
    let (word, bit) = word_bit(index);
    WATCHERS[slot].watched[word].fetch_or(bit, SeqCst);
    Ok(())
}

/// Stops delivering `signal` to `slot`, restoring the old disposition if
/// this was its last watcher.
pub(crate) fn unwatch(slot: usize, index: usize, signal: libc::c_int) {
    unwatch_locked(&mut installed(), slot, index, signal);
}

fn unwatch_locked(state: &mut Installed, slot: usize, index: usize, signal: libc::c_int) {
    let (word, bit) = word_bit(index);
    WATCHERS[slot].watched[word].fetch_and(!bit, SeqCst);
    WATCHERS[slot].pending[word].fetch_and(!bit, SeqCst);
    state.count[index] -= 1;
    if state.count[index] == 0 {
        restore(state, index, signal);
    }
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

fn install(state: &mut Installed, index: usize, signal: libc::c_int) -> io::Result<()> {
    // Read the current disposition first and publish it for chaining before
    // the handler can run, so that no signal skips the earlier handler.
    let old = current(signal)?;
    let previous = old.sa_sigaction;
    let ours = handler as *const () as libc::sighandler_t;
    // Never chain to ourselves: another library may have saved pipeloop's
    // handler and put it back after pipeloop restored what it had saved.
    let chain = previous != libc::SIG_DFL && previous != libc::SIG_IGN && previous != ours;
    let siginfo = if old.sa_flags & libc::SA_SIGINFO != 0 {
        SIGINFO_BIT
    } else {
        0
    };
    let word = if chain { previous as u64 | siginfo } else { 0 };
    PREVIOUS[index].store(word, SeqCst);

    // SAFETY: all-zero is a valid sigaction (the mask is then set).
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = ours;
    new.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    if chain {
        // The earlier handler runs inside ours, so give it what it asked
        // for: its blocked signals, its alternate stack, its SIGCHLD
        // filtering, and its choice about restarting system calls.
        new.sa_mask = old.sa_mask;
        new.sa_flags = libc::SA_SIGINFO
            | (old.sa_flags & (libc::SA_RESTART | libc::SA_ONSTACK | libc::SA_NOCLDSTOP));
    } else {
        // SAFETY: `sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
    }
    // SAFETY: `new` is a complete action whose handler is async-signal-safe.
    if let Err(e) = cvt(unsafe { libc::sigaction(signal, &new, std::ptr::null_mut()) }) {
        PREVIOUS[index].store(0, SeqCst);
        return Err(e);
    }
    state.saved[index] = Some(old);
    log::debug!(
        "pipeloop: handling {} (chaining: {chain})",
        describe(signal)
    );
    Ok(())
}

/// The action installed for `signal` now.
fn current(signal: libc::c_int) -> io::Result<libc::sigaction> {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null `act` only reads the current action into `old`.
    cvt(unsafe { libc::sigaction(signal, std::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded, so `old` is initialised.
    Ok(unsafe { old.assume_init() })
}

/// Puts back the disposition saved by `install`, unless someone replaced
/// pipeloop's handler since: theirs is left alone (pipeloop does not fight
/// over a signal). `PREVIOUS` is left as it is: a handler still running on
/// another thread may chain with it, which is right for a signal delivered
/// while pipeloop's handler was installed.
fn restore(state: &mut Installed, index: usize, signal: libc::c_int) {
    let Some(old) = state.saved[index].take() else {
        return;
    };
    let ours = handler as *const () as libc::sighandler_t;
    match current(signal) {
        Ok(now) if now.sa_sigaction == ours => {
            // SAFETY: `old` is the action sigaction gave us for this signal.
            unsafe { libc::sigaction(signal, &old, std::ptr::null_mut()) };
            log::debug!("pipeloop: restored the disposition of {}", describe(signal));
        }
        _ => log::debug!(
            "pipeloop: {} has another handler now; leaving it in place",
            describe(signal)
        ),
    }
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
/// - calls the earlier handler, which was itself installed as a handler.
///
/// It never allocates, locks, logs or panics.
extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let saved = super::fd::errno();
    if let Some(index) = usize::try_from(signal).ok().filter(|&i| i < MAX_SIGNAL) {
        notify_watchers(index);
        chain(index, signal, info, context);
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
        w.active.fetch_sub(1, SeqCst);
    }
}

fn chain(
    index: usize,
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let word = PREVIOUS[index].load(SeqCst);
    let address = (word & !SIGINFO_BIT) as usize;
    if address == 0 {
        return;
    }
    if word & SIGINFO_BIT != 0 {
        // SAFETY: `address` is a handler the OS gave back from sigaction,
        // registered with SA_SIGINFO, so it has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(address) };
        f(signal, info, context);
    } else {
        // SAFETY: as above, registered without SA_SIGINFO.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(address) };
        f(signal);
    }
}
