//! The floor: hand-written libc loops, level-triggered, no library at all.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{BUF, Rounds, check};

/// Turns a `-1` return into the `errno` error.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful syscall and nothing else
    // owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// A timeout for epoll_wait and poll: milliseconds, rounded up; -1 for none.
fn millis(timeout: Option<Duration>) -> libc::c_int {
    timeout.map_or(-1, |t| {
        t.as_nanos()
            .div_ceil(1_000_000)
            .min(libc::c_int::MAX as u128) as libc::c_int
    })
}

fn write_byte(fd: RawFd, byte: u8) -> io::Result<()> {
    // SAFETY: one valid byte on the stack.
    let n = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    check(n == 1, "raw: write")
}

fn read_check(fd: RawFd, buf: &mut [u8; BUF], byte: u8) -> io::Result<()> {
    // SAFETY: `buf` is valid for BUF bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), BUF) };
    check(n == 1 && buf[0] == byte, "raw: read back")
}

pub struct EpollPipes {
    ep: OwnedFd,
    timeout_ms: libc::c_int,
    events: Vec<libc::epoll_event>,
    pipes: Vec<(OwnedFd, OwnedFd)>,
    buf: [u8; BUF],
}

impl EpollPipes {
    /// `edge`: `EPOLLET`, where one short read is enough (the pipe is then
    /// empty, so the next write is a new edge); otherwise level-triggered.
    pub fn new(n: usize, timeout: Option<Duration>, edge: bool) -> io::Result<EpollPipes> {
        // SAFETY: epoll_create1 takes only flags.
        let ep = owned(cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?);
        let mut pipes = Vec::with_capacity(n);
        let mode = if edge { libc::EPOLLET } else { 0 };
        for k in 0..n {
            let (read, write) = pipe()?;
            let mut event = libc::epoll_event {
                events: (libc::EPOLLIN | mode) as u32,
                u64: k as u64,
            };
            // SAFETY: `event` is valid for the call; the fd is open.
            cvt(unsafe {
                libc::epoll_ctl(
                    ep.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    read.as_raw_fd(),
                    &mut event,
                )
            })?;
            pipes.push((read, write));
        }
        Ok(EpollPipes {
            ep,
            timeout_ms: millis(timeout),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 64],
            pipes,
            buf: [0; BUF],
        })
    }
}

impl Rounds for EpollPipes {
    #[inline]
    fn round(&mut self, k: usize, byte: u8) -> io::Result<()> {
        let (read, write) = &self.pipes[k];
        write_byte(write.as_raw_fd(), byte)?;
        // SAFETY: the buffer holds `len` epoll_events.
        let n = cvt(unsafe {
            libc::epoll_wait(
                self.ep.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as libc::c_int,
                self.timeout_ms,
            )
        })?;
        check(
            n == 1 && { self.events[0].u64 } == k as u64,
            "raw-epoll: event",
        )?;
        read_check(read.as_raw_fd(), &mut self.buf, byte)
    }
}

pub struct PollPipes {
    pollfds: Vec<libc::pollfd>,
    timeout_ms: libc::c_int,
    pipes: Vec<(OwnedFd, OwnedFd)>,
    buf: [u8; BUF],
}

impl PollPipes {
    pub fn new(n: usize, timeout: Option<Duration>) -> io::Result<PollPipes> {
        let mut pipes = Vec::with_capacity(n);
        let mut pollfds = Vec::with_capacity(n);
        for _ in 0..n {
            let (read, write) = pipe()?;
            pollfds.push(libc::pollfd {
                fd: read.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            pipes.push((read, write));
        }
        Ok(PollPipes {
            pollfds,
            timeout_ms: millis(timeout),
            pipes,
            buf: [0; BUF],
        })
    }
}

impl Rounds for PollPipes {
    #[inline]
    fn round(&mut self, k: usize, byte: u8) -> io::Result<()> {
        let (read, write) = &self.pipes[k];
        write_byte(write.as_raw_fd(), byte)?;
        let len = self.pollfds.len() as libc::nfds_t;
        // SAFETY: the array holds `len` initialised pollfds.
        let ready = cvt(unsafe { libc::poll(self.pollfds.as_mut_ptr(), len, self.timeout_ms) })?;
        check(ready == 1, "raw-poll: one ready")?;
        // The scan every poll(2) user pays: find who is ready.
        let mut found = usize::MAX;
        for (i, p) in self.pollfds.iter().enumerate() {
            if p.revents != 0 {
                found = i;
                break;
            }
        }
        check(found == k, "raw-poll: event")?;
        read_check(read.as_raw_fd(), &mut self.buf, byte)
    }
}
