//! The guide, chapter 1: blocking and non-blocking I/O (docs/guide/01-blocking.md).
//!
//! ```text
//! cargo run --example guide_01_blocking
//! ```
//!
//! Three short scenes on plain pipes from `std::io::pipe`:
//!
//! 1. a blocking read on an empty pipe sleeps until someone writes;
//! 2. with `O_NONBLOCK` set, the same read returns `WouldBlock` (`EAGAIN`)
//!    at once, and a write into a full pipe does too;
//! 3. a loop that was told "ready" but guessed wrong: the bytes were gone,
//!    and the non-blocking read says so instead of hanging.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::thread;
use std::time::{Duration, Instant};

fn main() -> io::Result<()> {
    blocking_read()?;
    nonblocking_read_and_write()?;
    wrong_guess()?;
    Ok(())
}

/// Scene 1: `read` on an empty, blocking pipe puts the thread to sleep.
fn blocking_read() -> io::Result<()> {
    println!("1. a blocking read on an empty pipe");
    let (mut reader, mut writer) = io::pipe()?;
    let started = Instant::now();
    // A thread that writes later. Without it, this read would sleep forever,
    // and so would every other fd this thread was meant to serve.
    let late_writer = thread::spawn(move || -> io::Result<()> {
        thread::sleep(Duration::from_millis(200));
        writer.write_all(b"hello")
    });
    let mut buf = [0u8; 64];
    let n = reader.read(&mut buf)?;
    println!(
        "   read returned {n} bytes ({:?}) after {} ms: the thread slept in read(2) until the write",
        String::from_utf8_lossy(&buf[..n]),
        started.elapsed().as_millis()
    );
    late_writer.join().expect("writer panicked")?;
    Ok(())
}

/// Scene 2: the same calls with `O_NONBLOCK` set on both ends.
fn nonblocking_read_and_write() -> io::Result<()> {
    println!("2. the same pipe with O_NONBLOCK");
    let (mut reader, mut writer) = io::pipe()?;
    set_nonblocking(reader.as_raw_fd())?;
    set_nonblocking(writer.as_raw_fd())?;

    let mut buf = [0u8; 64];
    let started = Instant::now();
    match reader.read(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => println!(
            "   read on the empty pipe: {:?} (errno EAGAIN = {}) after {} µs",
            e.kind(),
            e.raw_os_error() == Some(libc::EAGAIN),
            started.elapsed().as_micros()
        ),
        other => panic!("expected WouldBlock, got {other:?}"),
    }

    // Fill the pipe: each write takes what fits, until none fits.
    let chunk = [b'x'; 4096];
    let mut written = 0;
    let full = loop {
        match writer.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break e,
            Err(e) => return Err(e),
        }
    };
    println!(
        "   wrote {written} bytes, then the write returned {:?}: the pipe is full",
        full.kind()
    );

    // A read makes room; the write goes through again. (Read a whole 4 KiB:
    // Linux frees a pipe's room a page at a time, so 64 bytes read from a
    // full pipe may not make room for a 64-byte write.)
    let mut page = [0u8; 4096];
    let n = reader.read(&mut page)?;
    let m = writer.write(&chunk)?;
    println!("   read {n} bytes to make room, and the next write took {m}");
    Ok(())
}

/// Scene 3: readiness is a hint. Two readers share one pipe (as two
/// processes can); both learned "readable", one was faster.
fn wrong_guess() -> io::Result<()> {
    println!("3. a wrong guess");
    let (mut reader, mut writer) = io::pipe()?;
    let mut other_reader = reader.try_clone()?; // the same pipe, another fd
    set_nonblocking(reader.as_raw_fd())?; // the flag is shared by both
    writer.write_all(b"one message")?;

    // Suppose the loop has just been told that `reader` is readable. Before
    // it gets round to reading, someone else takes the bytes.
    let mut buf = [0u8; 64];
    let n = other_reader.read(&mut buf)?;
    println!("   the other reader took {n} bytes first");
    match reader.read(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => println!(
            "   our read: {:?}; blocking, it would have hung here until the next write",
            e.kind()
        ),
        other => panic!("expected WouldBlock, got {other:?}"),
    }
    Ok(())
}

/// Sets `O_NONBLOCK` on `fd`: a status flag, so `F_GETFL`/`F_SETFL`.
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument; a bad fd is reported as EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETFL takes an int of status flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
