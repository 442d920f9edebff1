//! Installing pipeloop's handler for a signal, chaining to what it
//! replaced, and putting that back: in a process where other code (signal
//! -hook-registry, C libraries that chain) installs handlers too, and
//! nobody unwinds them in LIFO order.
//!
//! # The rules
//!
//! - **Swap, never read-then-write.** Each change is one
//!   `sigaction(new, &old)`, so a handler installed by another thread at the
//!   same moment is never lost, only chained to.
//! - **Not above a handler that may chain back.** Once pipeloop's handler
//!   has been installed and another handler went above it, that one may
//!   have saved pipeloop's and call it. Installing pipeloop's again on top
//!   would make the two call each other until the stack overflows. So while
//!   pipeloop's handler is *in the chain* (`OURS`: installed, not yet
//!   restored), a new watcher relies on it being called and installs
//!   nothing, unless the disposition shows pipeloop's handler is out of the
//!   chain for sure: `SIG_DFL` or `SIG_IGN` (nobody above chains), or the
//!   very handler pipeloop had replaced (it was put back over pipeloop's,
//!   and it is older than pipeloop's, so it does not chain to it).
//! - **Guard anyway.** After pipeloop has restored and left the chain, a
//!   library can still put back, out of order, a stale handler that chains
//!   to pipeloop's; the next watcher then installs over it. So `chain`
//!   records the threads inside the chained-to handler (`CHAINING`), and a
//!   call back into pipeloop's handler on such a thread does not chain
//!   again.
//! - **Stay valid.** pipeloop's handler is a plain function that is never
//!   unloaded; whoever calls it, it notifies the watchers and chains to what
//!   it replaced.
//! - **Restore only from the top.** When the last watcher goes, the saved
//!   disposition is put back if pipeloop's handler is the one installed.
//!   If another sits above, restoring would throw that one away, so the
//!   restore is left pending, and finished by whichever comes first: the
//!   next unwatch that takes the count to 0 again and finds pipeloop's
//!   handler back on top, or the handler itself when it runs with nobody
//!   watching and finds itself on top. The handler then restores and
//!   delivers that signal as the restored disposition would: to the earlier
//!   handler, or, for `SIG_DFL`, raised again so that the default action
//!   (terminating, say) happens once the handler returns. So a signal is
//!   never swallowed because the other library put pipeloop's handler back
//!   after pipeloop's watchers were gone. (A new watcher cancels a pending
//!   restore: pipeloop's handler is wanted again.)
//!
//! One race is left, and documented in `pipeloop::signal`: a signal with a
//! pending restore whose handler looked for watchers just before another
//! thread's `watch` set its watcher's bit, and then found that `watch`
//! holding `BUSY`, only chains: to nothing, if the saved disposition was
//! `SIG_DFL`.
//!
//! # Who may change what
//!
//! Per signal, one atomic word holds the watcher count, `OURS`, and `BUSY`,
//! a try-lock over the disposition and the saved action. Registration code
//! takes `BUSY` (waiting, briefly, for a handler that holds it on another
//! thread); the handler only *tries* it and, failing, just chains, so it
//! never waits. The saved action is read and written only under `BUSY`.

use std::cell::UnsafeCell;
use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};

use super::{MAX_SIGNAL, back_off, describe, handler, this_thread};
use crate::sys::cvt;

/// `BUSY`: someone is changing this signal's disposition or saved action.
const BUSY: u32 = 1 << 31;
/// pipeloop's handler is installed (somewhere in the chain) and the saved
/// disposition not yet restored.
const OURS: u32 = 1 << 30;
/// The rest of the word: how many watchers watch the signal.
const COUNT: u32 = OURS - 1;

/// Above every user-space address on the 64- and 32-bit targets: marks a
/// previous handler that takes `siginfo_t` (`SA_SIGINFO`).
const SIGINFO_BIT: u64 = 1 << 63;

struct Signal {
    state: AtomicU32,
    /// The handler to chain to: its address (0 for none, `SIG_DFL` or
    /// `SIG_IGN`), with `SIGINFO_BIT` if it takes `siginfo_t`. One word, so
    /// that a handler never reads the address of one with the flag of
    /// another. Read by the handler without `BUSY`.
    previous: AtomicU64,
    /// The disposition pipeloop's handler replaced. Only touched under
    /// `BUSY`.
    saved: UnsafeCell<MaybeUninit<libc::sigaction>>,
}

// SAFETY: `saved` is only read or written by the holder of the `BUSY` bit
// of `state`, which one thread holds at a time; the rest is atomics.
unsafe impl Sync for Signal {}

static SIGNALS: [Signal; MAX_SIGNAL] = [const {
    Signal {
        state: AtomicU32::new(0),
        previous: AtomicU64::new(0),
        saved: UnsafeCell::new(MaybeUninit::uninit()),
    }
}; MAX_SIGNAL];

fn ours() -> libc::sighandler_t {
    handler as *const () as libc::sighandler_t
}

/// `BUSY` for one signal, held by registration code.
struct Busy(usize);

impl Busy {
    /// Waits for a handler on another thread that holds it: a few syscalls.
    fn take(index: usize) -> Busy {
        let state = &SIGNALS[index].state;
        let mut spins = 0;
        while state.fetch_or(BUSY, SeqCst) & BUSY != 0 {
            back_off(&mut spins);
        }
        Busy(index)
    }

    fn signal(&self) -> &'static Signal {
        &SIGNALS[self.0]
    }

    fn state(&self) -> u32 {
        self.signal().state.load(SeqCst) & !BUSY
    }

    fn set_state(&self, state: u32) {
        self.signal().state.store(state | BUSY, SeqCst);
    }

    fn saved(&self) -> libc::sigaction {
        // SAFETY: `BUSY` is held; `saved` was written before `OURS` was
        // first set, and is only read by code that found `OURS` set (it is
        // never uninitialised again).
        unsafe { (*self.signal().saved.get()).assume_init() }
    }

    fn save(&self, action: &libc::sigaction) {
        // SAFETY: `BUSY` is held.
        unsafe { (*self.signal().saved.get()).write(*action) };
        self.signal().previous.store(chain_target(action), SeqCst);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.signal().state.fetch_and(!BUSY, SeqCst);
    }
}

/// A disposition change, for the caller to log once its locks are
/// released.
#[derive(Clone, Copy, Debug)]
pub(super) enum Change {
    Installed { chaining: bool },
    Restored,
    RestoreLater,
}

impl Change {
    pub(super) fn log(self, signal: libc::c_int) {
        match self {
            Change::Installed { chaining } => {
                log::debug!(
                    "pipeloop: handling {} (chaining: {chaining})",
                    describe(signal)
                )
            }
            Change::Restored => {
                log::debug!("pipeloop: restored the disposition of {}", describe(signal))
            }
            Change::RestoreLater => log::debug!(
                "pipeloop: {} has another handler above pipeloop's; restoring later",
                describe(signal)
            ),
        }
    }
}

/// Counts a new watcher of `signal` and makes sure pipeloop's handler will
/// be called for it. The caller has published the watcher's bit already, so
/// no signal that arrives once the handler is in place is missed.
pub(super) fn watch(index: usize, signal: libc::c_int) -> io::Result<Option<Change>> {
    let busy = Busy::take(index);
    let state = busy.state();
    let (state, change) = if state & OURS == 0 || out_of_chain(&busy, signal)? {
        let chaining = install(&busy, signal)?;
        (state | OURS, Some(Change::Installed { chaining }))
    } else {
        (state, None)
    };
    busy.set_state(state + 1);
    Ok(change)
}

/// Uncounts a watcher of `signal`; the last one restores the saved
/// disposition if pipeloop's handler is on top (the restore waits
/// otherwise, see the module docs).
pub(super) fn unwatch(index: usize, signal: libc::c_int) -> Option<Change> {
    let busy = Busy::take(index);
    let state = busy.state() - 1;
    busy.set_state(state);
    if state & COUNT != 0 || state & OURS == 0 {
        return None;
    }
    if swap_back_if_on_top(&busy, signal) {
        busy.set_state(state & !OURS);
        Some(Change::Restored)
    } else {
        Some(Change::RestoreLater)
    }
}

/// Whether pipeloop's handler, marked as in the chain, certainly is not:
/// the disposition is `SIG_DFL`, `SIG_IGN`, or the handler it had replaced.
fn out_of_chain(busy: &Busy, signal: libc::c_int) -> io::Result<bool> {
    let now = current(signal)?.sa_sigaction;
    Ok(now != ours()
        && (now == libc::SIG_DFL || now == libc::SIG_IGN || now == busy.saved().sa_sigaction))
}

/// Installs pipeloop's handler over whatever is there, saving it for
/// chaining and restoring; says whether it chains to a handler.
fn install(busy: &Busy, signal: libc::c_int) -> io::Result<bool> {
    // Publish what will be replaced before the handler can run, so that no
    // signal skips it; the swap then says what really was replaced.
    let old = current(signal)?;
    busy.save(&old);
    let replaced = swap(signal, &our_action(&old))?;
    if !same(&replaced, &old) {
        // Another thread changed the disposition between the two calls:
        // chain to and restore what was really replaced. (It runs with the
        // mask and flags of the one read first; rare, and harmless.)
        busy.save(&replaced);
    }
    Ok(busy.signal().previous.load(SeqCst) != 0)
}

/// Puts the saved disposition back if pipeloop's handler is on top;
/// returns whether it did. Also run inside the handler: only sigaction
/// calls.
fn swap_back_if_on_top(busy: &Busy, signal: libc::c_int) -> bool {
    if current(signal).map_or(true, |now| now.sa_sigaction != ours()) {
        return false;
    }
    let Ok(replaced) = swap(signal, &busy.saved()) else {
        return false;
    };
    if replaced.sa_sigaction != ours() {
        // Installed over pipeloop's between the two calls: put it back.
        let _ = swap(signal, &replaced);
        return false;
    }
    true
}

/// What the handler does with a signal after notifying the watchers.
pub(super) enum Then {
    /// Call the saved handler, if there is one.
    Chain,
    /// The default action was just restored: raise the signal again, so
    /// that it happens once the handler returns.
    Raise,
}

/// Called by the handler: finishes a pending restore if nobody watches the
/// signal and pipeloop's handler is on top. Async-signal-safe: atomics,
/// `sigaction` and `pthread_sigmask` only, and it never waits.
pub(super) fn after_notify(index: usize, signal: libc::c_int) -> Then {
    let state = &SIGNALS[index].state;
    let seen = state.load(SeqCst);
    if seen & (COUNT | BUSY) != 0 || seen & OURS == 0 {
        return Then::Chain;
    }
    if state
        .compare_exchange(seen, seen | BUSY, SeqCst, SeqCst)
        .is_err()
    {
        return Then::Chain;
    }
    let busy = Busy(index);
    if !with_signals_blocked(|| swap_back_if_on_top(&busy, signal)) {
        return Then::Chain;
    }
    busy.set_state(seen & !OURS);
    if busy.saved().sa_sigaction == libc::SIG_DFL {
        Then::Raise
    } else {
        // A handler function is chained to; `SIG_IGN` chains to nothing.
        Then::Chain
    }
}

/// Runs `f` with every signal blocked on this thread, so that no nested
/// handler can leave (`siglongjmp`) while `BUSY` is held. Only
/// `pthread_sigmask`, which is async-signal-safe.
fn with_signals_blocked<R>(f: impl FnOnce() -> R) -> R {
    let mut all = MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises `all`; pthread_sigmask reads it and
    // writes the previous mask into `old`, which is then put back.
    unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, all.as_ptr(), old.as_mut_ptr());
    }
    let result = f();
    // SAFETY: `old` was filled by the call above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut()) };
    result
}

/// How many threads at once a signal's re-entry guard tracks.
const GUARDED: usize = 4;

/// The threads (`pthread_self`) now inside the handler pipeloop's chains to,
/// per signal. If pipeloop's handler is entered again on such a thread, it
/// is being called back by that handler: a library that saved pipeloop's
/// handler (or put it back) while pipeloop chains to it. pipeloop avoids
/// installing itself over such a handler, but a library can reinstall a
/// stale saved handler later, out of order; this guard keeps the two from
/// calling each other until the stack overflows, whatever the order.
static CHAINING: [[AtomicUsize; GUARDED]; MAX_SIGNAL] =
    [const { [const { AtomicUsize::new(0) }; GUARDED] }; MAX_SIGNAL];

/// Calls the handler pipeloop's replaced, if it is a function, unless this
/// thread is already inside it for this signal (see `CHAINING`).
pub(super) fn chain(
    index: usize,
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let word = SIGNALS[index].previous.load(SeqCst);
    if word & !SIGINFO_BIT == 0 {
        return;
    }
    let me = this_thread();
    let slots = &CHAINING[index];
    if slots.iter().any(|s| s.load(SeqCst) == me) {
        return;
    }
    // With every slot taken (more threads chaining the signal at once than
    // tracked), chain unguarded.
    let claimed = slots
        .iter()
        .find(|s| s.compare_exchange(0, me, SeqCst, SeqCst).is_ok());
    call_previous(word, signal, info, context);
    if let Some(slot) = claimed {
        slot.store(0, SeqCst);
    }
}

fn call_previous(
    word: u64,
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let address = (word & !SIGINFO_BIT) as usize;
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

/// In a child just forked: no handler of the parent's other threads runs
/// here, so none holds `BUSY` or is chaining (and a thread created later
/// may get one of their `pthread_self` values).
pub(super) fn reset_after_fork() {
    for signal in &SIGNALS {
        signal.state.fetch_and(!BUSY, SeqCst);
    }
    for slot in CHAINING.iter().flatten() {
        slot.store(0, SeqCst);
    }
}

/// The chain word for `action`: 0 unless it is a handler function, and
/// never pipeloop's own.
fn chain_target(action: &libc::sigaction) -> u64 {
    let address = action.sa_sigaction;
    if address == libc::SIG_DFL || address == libc::SIG_IGN || address == ours() {
        return 0;
    }
    let siginfo = if action.sa_flags & libc::SA_SIGINFO != 0 {
        SIGINFO_BIT
    } else {
        0
    };
    address as u64 | siginfo
}

/// pipeloop's action, over `old`.
fn our_action(old: &libc::sigaction) -> libc::sigaction {
    // SAFETY: all-zero is a valid sigaction (the mask is then set).
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = ours();
    if chain_target(old) != 0 {
        // The earlier handler runs inside ours, so give it what it asked
        // for: its blocked signals, its alternate stack, its SIGCHLD
        // filtering, and its choice about restarting system calls.
        new.sa_mask = old.sa_mask;
        new.sa_flags = libc::SA_SIGINFO
            | (old.sa_flags & (libc::SA_RESTART | libc::SA_ONSTACK | libc::SA_NOCLDSTOP));
    } else {
        new.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        // SAFETY: `sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
    }
    new
}

/// Whether two actions run the same handler the same way (masks aside).
fn same(a: &libc::sigaction, b: &libc::sigaction) -> bool {
    a.sa_sigaction == b.sa_sigaction && a.sa_flags == b.sa_flags
}

/// The action installed for `signal` now.
fn current(signal: libc::c_int) -> io::Result<libc::sigaction> {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null `act` only reads the current action into `old`.
    cvt(unsafe { libc::sigaction(signal, std::ptr::null(), old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded, so `old` is initialised.
    Ok(unsafe { old.assume_init() })
}

/// Installs `new` and returns what it replaced, in one call.
fn swap(signal: libc::c_int, new: &libc::sigaction) -> io::Result<libc::sigaction> {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: `new` is a complete action (pipeloop's async-signal-safe
    // handler, or one the OS gave back); `old` receives the previous one.
    cvt(unsafe { libc::sigaction(signal, new, old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded, so `old` is initialised.
    Ok(unsafe { old.assume_init() })
}
