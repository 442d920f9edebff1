//! Telling a forked child from the process that made a registration,
//! without a syscall: a generation number that a `pthread_atfork` child
//! handler bumps.
//!
//! An epoll instance is shared across `fork`, and `EPOLL_CTL_DEL` names the
//! registration by fd number and file, both of which the child has too. So
//! a child dropping its copy of a registered pipe end must not delete the
//! parent's registration: a registration remembers the generation it was
//! made in, and only that generation ends it.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn in_child() {
    GENERATION.fetch_add(1, Relaxed);
}

/// Makes `generation` count forks from now on (once per process).
pub(crate) fn count_forks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: the child handler only increments an atomic.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        if rc != 0 {
            log::debug!("pipeloop: pthread_atfork failed ({rc}); a forked child may end its parent's epoll registrations");
        }
    });
}

/// Which process this is, as far as registrations go: it changes in a child
/// at every `fork` once `count_forks` was called.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Relaxed)
}
