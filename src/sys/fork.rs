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

/// An fd that only the process that made it may use or close: a kqueue,
/// which a `fork` child does not inherit (FreeBSD's `fdcopy` skips files
/// that are not passable, xnu marks kqueues close-on-fork; see
/// docs/kqueue.md). In a child the number is closed, or names whatever the
/// child opened since, so `get` refuses and `Drop` leaves it alone: closing
/// it would close someone else's fd (and abort a debug build, whose std
/// checks that an `OwnedFd` it closes is open).
#[cfg(any(pipeloop_kqueue, test))]
#[derive(Debug)]
pub(crate) struct ProcessFd {
    fd: std::mem::ManuallyDrop<std::os::fd::OwnedFd>,
    made_in: u64,
}

#[cfg(any(pipeloop_kqueue, test))]
impl ProcessFd {
    pub(crate) fn new(fd: std::os::fd::OwnedFd) -> ProcessFd {
        count_forks();
        ProcessFd {
            fd: std::mem::ManuallyDrop::new(fd),
            made_in: generation(),
        }
    }

    /// The fd, in the process that made it; an error in a forked child.
    #[inline]
    pub(crate) fn get(&self) -> std::io::Result<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        if generation() == self.made_in {
            Ok(self.fd.as_raw_fd())
        } else {
            Err(std::io::Error::other(
                "this Poll was made before fork(): a kqueue is not inherited by a child \
                 process; make a new Poll in the child",
            ))
        }
    }
}

#[cfg(any(pipeloop_kqueue, test))]
impl Drop for ProcessFd {
    fn drop(&mut self) {
        if generation() == self.made_in {
            // SAFETY: `fd` is not used again.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProcessFd;
    use std::os::fd::AsRawFd;

    /// In a forked child, the fd a `ProcessFd` holds is refused and left
    /// open when it is dropped: on kqueue systems the number is not the
    /// parent's kqueue there.
    #[test]
    fn a_forked_child_neither_uses_nor_closes_the_fd() {
        let (read, _write) = crate::sys::new_pipe().unwrap();
        let raw = read.as_raw_fd();
        let fd = ProcessFd::new(read);
        assert_eq!(fd.get().unwrap(), raw);
        // Allocating is not async-signal-safe after fork in a threaded
        // process (the test harness is one): the child's allocation relies
        // on the C library keeping malloc usable there, as glibc's fork
        // does by resetting malloc's locks.
        // SAFETY: the child calls async-signal-safe functions (fcntl,
        // _exit), reads an atomic, and allocates and frees `get`'s error.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let refused = fd.get().is_err();
            drop(fd);
            // SAFETY: F_GETFD on any number is harmless.
            let open = unsafe { libc::fcntl(raw, libc::F_GETFD) } != -1;
            // SAFETY: ends the child without running the parent's test
            // harness again.
            unsafe { libc::_exit(if refused && open { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child used or closed the fd (status {status:#x})"
        );
        assert_eq!(fd.get().unwrap(), raw, "the parent still has it");
    }
}
