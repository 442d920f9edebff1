//! Small fd helpers shared by the backends and the sources.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{OwnedFd, RawFd};

use super::{cvt, owned};

/// Creates a pipe whose two ends are non-blocking and close-on-exec:
/// `(read end, write end)`. Nothing stays open if any step fails.
pub(crate) fn new_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];

    #[cfg(pipeloop_pipe2)]
    {
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
        Ok((owned(fds[0]), owned(fds[1])))
    }

    #[cfg(not(pipeloop_pipe2))]
    {
        // SAFETY: `fds` is a valid array of two ints for pipe to fill.
        cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        // Owned at once, so the early returns below close both ends.
        let (read, write) = (owned(fds[0]), owned(fds[1]));
        for fd in [&read, &write] {
            use std::os::fd::AsRawFd;
            set_cloexec(fd.as_raw_fd())?;
            set_nonblocking(fd.as_raw_fd(), true)?;
        }
        Ok((read, write))
    }
}

// Used where pipe2 is missing (and by kqueue where kqueue1 is missing).
#[cfg_attr(pipeloop_pipe2, allow(dead_code))]
/// Sets `FD_CLOEXEC` with `F_SETFD` (not `F_SETFL`, where it does nothing).
pub(crate) fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD takes no argument; a bad fd is reported as EBADF.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    if flags & libc::FD_CLOEXEC == 0 {
        // SAFETY: F_SETFD takes an int of fd flags.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    }
    Ok(())
}

/// Sets or clears `O_NONBLOCK` with `F_SETFL`.
///
/// `O_NONBLOCK` belongs to the open file description, not the fd: every
/// duplicate and every process sharing the description sees the change.
pub(crate) fn set_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument; a bad fd is reported as EBADF.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let wanted = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if wanted != flags {
        // SAFETY: F_SETFL takes an int of status flags.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) })?;
    }
    Ok(())
}

#[inline]
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let n = cvt(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })?;
    Ok(n as usize)
}

#[inline]
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let n = cvt(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })?;
    Ok(n as usize)
}

/// How many buffers one `readv`/`writev` is given. More than the system's
/// `IOV_MAX` is EINVAL; it is 1024 on Linux, macOS and the BSDs. Passing the
/// first 1024 and transferring less is what `Read`/`Write` allow.
const IOV_MAX: usize = 1024;

fn iov_count(len: usize) -> libc::c_int {
    len.min(IOV_MAX) as libc::c_int
}

/// The bytes a `readv`/`writev` of `bufs` asks for: only the buffers it is
/// really given count, so that a full transfer is not mistaken for a short
/// one.
pub(crate) fn iov_len<B: std::ops::Deref<Target = [u8]>>(bufs: &[B]) -> usize {
    bufs.iter()
        .take(IOV_MAX)
        .fold(0, |sum, buf| sum.saturating_add(buf.len()))
}

#[inline]
pub(crate) fn readv(fd: RawFd, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    // SAFETY: `IoSliceMut` is ABI-compatible with `iovec`, and the slices
    // outlive the call.
    let n = cvt(unsafe { libc::readv(fd, bufs.as_mut_ptr().cast(), iov_count(bufs.len())) })?;
    Ok(n as usize)
}

#[inline]
pub(crate) fn writev(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: `IoSlice` is ABI-compatible with `iovec`, and the slices outlive
    // the call.
    let n = cvt(unsafe { libc::writev(fd, bufs.as_ptr().cast(), iov_count(bufs.len())) })?;
    Ok(n as usize)
}

#[cfg(pipeloop_linux)]
pub(crate) fn pipe_capacity(fd: RawFd) -> io::Result<usize> {
    // SAFETY: F_GETPIPE_SZ takes no argument; a non-pipe fd is EBADF/EINVAL.
    let n = cvt(unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) })?;
    Ok(n as usize)
}

#[cfg(pipeloop_linux)]
pub(crate) fn set_pipe_capacity(fd: RawFd, size: usize) -> io::Result<usize> {
    let Ok(arg) = libc::c_int::try_from(size) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "pipe capacity {size} is larger than the kernel accepts (at most {})",
                libc::c_int::MAX
            ),
        ));
    };
    // SAFETY: F_SETPIPE_SZ takes an int; the kernel checks its range.
    let n = cvt(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, arg) })?;
    Ok(n as usize)
}

/// Where the calling thread's `errno` lives: the one per-OS list of these
/// functions in the crate. Only the signal handler needs it, to put `errno`
/// back as it found it.
fn errno_location() -> *mut libc::c_int {
    #[cfg(any(
        target_os = "linux",
        target_os = "dragonfly",
        target_os = "hurd",
        target_os = "emscripten"
    ))]
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

pub(crate) fn errno() -> libc::c_int {
    // SAFETY: the location is valid for the calling thread.
    unsafe { *errno_location() }
}

pub(crate) fn set_errno(value: libc::c_int) {
    // SAFETY: as above.
    unsafe { *errno_location() = value };
}
