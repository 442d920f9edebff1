//! Commands' output as prefixed lines on poller's stdout and stderr.
//!
//! Each chunk a command writes is cut into lines as it arrives; each
//! complete line is copied, after its command's prefix, into the stream's
//! buffer, which is written out (blocking) before the next chunk is read.
//! What follows a chunk's last newline waits in that command's partial
//! line until the rest comes, up to [`MAX_LINE`] bytes, beyond which it is
//! printed as a line of its own. So a line is always written whole, by one
//! process, and lines of different commands never interleave mid-line.

use std::fs::File;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd};

/// The longest line held back waiting for its newline.
pub const MAX_LINE: usize = 64 * 1024;

/// One of poller's output streams (fd 1 or 2).
pub struct Sink {
    out: Box<dyn Write>,
    buf: Vec<u8>,
    /// Where the newlines are in the chunk being cut (kept for its memory).
    ends: Vec<u32>,
    /// The stamp and prefix of the lines being copied.
    head: Vec<u8>,
    /// Set once a write failed: the rest is dropped.
    failed: bool,
}

impl Sink {
    /// poller's stdout (`fd` 1) or stderr (2), unbuffered by std: a
    /// chunk's lines go out together, in one `write_all`. The fd stays open
    /// when the sink goes.
    pub fn fd(fd: i32) -> Sink {
        assert!(fd == 1 || fd == 2, "only stdout and stderr");
        // SAFETY: fds 1 and 2 are open for the life of the process; the
        // ManuallyDrop keeps the File from closing them.
        let file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
        Sink::new(Box::new(FdWriter(file)))
    }

    fn new(out: Box<dyn Write>) -> Sink {
        Sink {
            out,
            buf: Vec::with_capacity(2 * MAX_LINE),
            ends: Vec::new(),
            head: Vec::new(),
            failed: false,
        }
    }

    /// Writes out what is buffered. A failure (say `EPIPE`: the reader is
    /// gone) is returned once; after it, output to this stream is dropped.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = if self.failed {
            Ok(())
        } else {
            self.out.write_all(&self.buf)
        };
        self.buf.clear();
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

/// A file that is not closed when dropped, written to as if blocking.
struct FdWriter(ManuallyDrop<File>);

impl Write for FdWriter {
    /// stdout and stderr are open files shared with whoever started poller,
    /// who may have made them non-blocking (the flag belongs to the file,
    /// not to the fd). A write that finds no room then fails with EAGAIN;
    /// this waits for room instead, as a blocking write would.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_for_room(&self.0)?,
                written => return written,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Blocks until `file` can be written to. A signal interrupting the wait
/// is not an error: the caller writes again.
fn wait_for_room(file: &File) -> io::Result<()> {
    let mut fd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd; -1 waits without a timeout.
    if unsafe { libc::poll(&mut fd, 1, -1) } < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// How one command's lines start on one stream: an optional timestamp,
/// then the name padded and ` | `.
pub struct Prefix {
    bytes: Vec<u8>,
}

impl Prefix {
    /// `name` padded to `width`, coloured with `color` (an ANSI SGR colour
    /// number) if given: only colour escapes are added.
    pub fn new(name: &str, width: usize, color: Option<u8>) -> Prefix {
        let padded = format!("{name:<width$} |");
        let bytes = match color {
            Some(c) => format!("\x1b[{c}m{padded}\x1b[0m "),
            None => format!("{padded} "),
        };
        Prefix {
            bytes: bytes.into_bytes(),
        }
    }
}

/// A command's stream: its prefix and the line it has not finished.
pub struct Lines {
    prefix: Prefix,
    partial: Vec<u8>,
}

impl Lines {
    pub fn new(prefix: Prefix) -> Lines {
        Lines {
            prefix,
            partial: Vec::new(),
        }
    }

    /// Copies the complete lines of `chunk` into `sink`, prefixed (with
    /// `stamp` first, if any); keeps the unfinished rest.
    pub fn push(&mut self, sink: &mut Sink, stamp: &[u8], chunk: &[u8]) {
        let mut ends = std::mem::take(&mut sink.ends);
        newlines(chunk, &mut ends);
        let mut start = 0;
        let mut lines = &ends[..];
        // A line that completes the held one, or is too long, goes the slow
        // way; the rest (nearly always all) are copied in one pass.
        while let Some((&end, rest)) = lines.split_first() {
            let len = end as usize + 1 - start;
            if self.partial.is_empty() && len <= MAX_LINE + 1 {
                // Lines that end within MAX_LINE + 1 bytes of this one's
                // end are short enough (a pipe read, 64 KiB at most, is
                // all of them).
                let fast = rest
                    .iter()
                    .take_while(|&&e| e as usize - end as usize <= MAX_LINE + 1);
                let count = 1 + fast.count();
                start = self.copy_lines(sink, stamp, chunk, start, &lines[..count]);
                lines = &lines[count..];
            } else {
                self.hold(sink, stamp, &chunk[start..end as usize]);
                self.finish(sink, stamp);
                start = end as usize + 1;
                lines = rest;
            }
        }
        self.hold(sink, stamp, &chunk[start..]);
        sink.ends = ends;
    }

    /// Copies the lines of `chunk` from `start` to each of `ends` into
    /// `sink`, each after the prefix; returns where the next line starts.
    ///
    /// This is poller's inner loop (one pass per line of output), so it
    /// writes into reserved memory directly: a `Vec::extend_from_slice`
    /// per piece costs a capacity check and length update each, about as
    /// much as the copy of a 60-byte line itself.
    fn copy_lines(
        &self,
        sink: &mut Sink,
        stamp: &[u8],
        chunk: &[u8],
        start: usize,
        ends: &[u32],
    ) -> usize {
        let head = &mut sink.head;
        head.clear();
        head.extend_from_slice(stamp);
        head.extend_from_slice(&self.prefix.bytes);
        let last = ends[ends.len() - 1] as usize;
        assert!(
            last < chunk.len() && start <= last,
            "line ends inside the chunk"
        );
        let size = (last + 1 - start) + ends.len() * head.len();
        let buf = &mut sink.buf;
        buf.reserve(size);
        let mut at = buf.len();
        let mut from = start;
        for &end in ends {
            let line = &chunk[from..=end as usize];
            // SAFETY: `reserve(size)` made room for `size` bytes after the
            // old length; these copies write exactly `size` bytes in all
            // (every line from `start` to `last`, and one head per line),
            // each from a slice that does not overlap the buffer.
            unsafe {
                let to = buf.as_mut_ptr().add(at);
                std::ptr::copy_nonoverlapping(head.as_ptr(), to, head.len());
                std::ptr::copy_nonoverlapping(line.as_ptr(), to.add(head.len()), line.len());
            }
            at += head.len() + line.len();
            from = end as usize + 1;
        }
        // SAFETY: the bytes up to `at` were written just above.
        unsafe { buf.set_len(at) };
        from
    }

    /// Prints the unfinished line, with a newline added (at end of file).
    pub fn finish(&mut self, sink: &mut Sink, stamp: &[u8]) {
        if self.partial.is_empty() {
            return;
        }
        self.partial.push(b'\n');
        let line = std::mem::take(&mut self.partial);
        self.emit(sink, stamp, &line);
        self.partial = line;
        self.partial.clear();
    }

    /// Adds `bytes` (no newline among them) to the unfinished line,
    /// printing MAX_LINE bytes of it each time more than that is held: a
    /// line of exactly MAX_LINE bytes waits for its newline like any other.
    fn hold(&mut self, sink: &mut Sink, stamp: &[u8], mut bytes: &[u8]) {
        while self.partial.len() + bytes.len() > MAX_LINE {
            let (now, later) = bytes.split_at(MAX_LINE - self.partial.len());
            self.partial.extend_from_slice(now);
            self.finish(sink, stamp);
            bytes = later;
        }
        self.partial.extend_from_slice(bytes);
    }

    #[inline]
    fn emit(&self, sink: &mut Sink, stamp: &[u8], line: &[u8]) {
        let buf = &mut sink.buf;
        if !stamp.is_empty() {
            buf.extend_from_slice(stamp);
        }
        buf.extend_from_slice(&self.prefix.bytes);
        buf.extend_from_slice(line);
    }
}

/// Sets `ends` to the offsets of the newlines in `chunk`.
///
/// On x86_64, 16 bytes at a time with SSE2 (which every x86_64 has): for
/// lines of a few dozen bytes this is several times cheaper than a
/// `memchr` call per line, whose setup outweighs its search (callgrind: 76
/// instructions per 62-byte line, against about 20 here).
#[cfg(target_arch = "x86_64")]
fn newlines(chunk: &[u8], ends: &mut Vec<u32>) {
    ends.clear();
    // SAFETY: SSE2 is part of x86_64 itself: every x86_64 CPU has it.
    unsafe { newlines_sse2(chunk, ends) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn newlines_sse2(chunk: &[u8], ends: &mut Vec<u32>) {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};

    let newline = _mm_set1_epi8(b'\n' as i8);
    let mut blocks = chunk.chunks_exact(16);
    let mut base = 0u32;
    for block in &mut blocks {
        // SAFETY: `block` is 16 readable bytes, and an unaligned load
        // (`loadu`) needs no alignment.
        let bytes = unsafe { _mm_loadu_si128(block.as_ptr().cast()) };
        let mut found = _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, newline)) as u32;
        while found != 0 {
            ends.push(base + found.trailing_zeros());
            found &= found - 1;
        }
        base += 16;
    }
    for (i, &byte) in blocks.remainder().iter().enumerate() {
        if byte == b'\n' {
            ends.push(base + i as u32);
        }
    }
}

/// Sets `ends` to the offsets of the newlines in `chunk`.
#[cfg(not(target_arch = "x86_64"))]
fn newlines(chunk: &[u8], ends: &mut Vec<u32>) {
    ends.clear();
    ends.extend(memchr::memchr_iter(b'\n', chunk).map(|i| i as u32));
}

/// `HH:MM:SS.mmm ` in local time, now.
pub fn timestamp() -> Vec<u8> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to fill.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; localtime_r is the
    // thread-safe form.
    unsafe { libc::localtime_r(&now.tv_sec, &mut tm) };
    format!(
        "{:02}:{:02}:{:02}.{:03} ",
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.tv_nsec / 1_000_000
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink whose buffer the tests look at (it is never flushed).
    fn sink() -> Sink {
        Sink::new(Box::new(io::sink()))
    }

    fn lines() -> Lines {
        Lines::new(Prefix::new("web", 5, None))
    }

    /// The length of each line in the sink's buffer (the last is what
    /// follows the last newline).
    fn line_lengths(sink: &Sink) -> Vec<usize> {
        sink.buf.split(|&b| b == b'\n').map(<[u8]>::len).collect()
    }

    #[test]
    fn complete_lines_are_prefixed_and_the_rest_waits() {
        let (mut sink, mut lines) = (sink(), lines());
        lines.push(&mut sink, b"", b"one\ntw");
        assert_eq!(sink.buf, b"web   | one\n");
        lines.push(&mut sink, b"", b"o\nthree");
        assert_eq!(sink.buf, b"web   | one\nweb   | two\n");
        lines.finish(&mut sink, b"");
        assert_eq!(sink.buf, b"web   | one\nweb   | two\nweb   | three\n");
    }

    #[test]
    fn stamps_and_colours_only_add_to_the_front() {
        let mut sink = sink();
        let mut lines = Lines::new(Prefix::new("a", 1, Some(32)));
        lines.push(&mut sink, b"12:00:00.000 ", b"x\n");
        assert_eq!(sink.buf, b"12:00:00.000 \x1b[32ma |\x1b[0m x\n");
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_through() {
        let (mut sink, mut lines) = (sink(), lines());
        lines.push(&mut sink, b"", b"\xff\xfe\0\n");
        assert_eq!(sink.buf, b"web   | \xff\xfe\0\n");
    }

    #[test]
    fn a_line_longer_than_the_limit_is_split() {
        let (mut sink, mut lines) = (sink(), lines());
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        // In pieces, as a pipe delivers it, then the newline and more.
        for piece in long.chunks(5000) {
            lines.push(&mut sink, b"", piece);
        }
        lines.push(&mut sink, b"", b"\nnext\n");
        let text = line_lengths(&sink);
        let prefix = "web   | ".len();
        assert_eq!(
            text,
            [
                prefix + MAX_LINE,
                prefix + MAX_LINE,
                prefix + 10,
                prefix + 4,
                0
            ]
        );
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_not_split() {
        // Its newline in the next read, as a 65,537-byte write arrives.
        let (mut out, mut exact) = (sink(), lines());
        exact.push(&mut out, b"", &vec![b'x'; MAX_LINE]);
        exact.push(&mut out, b"", b"\nnext\n");
        let text = line_lengths(&out);
        let p = "web   | ".len();
        assert_eq!(text, [p + MAX_LINE, p + 4, 0]);
        // One byte more is split: MAX_LINE, then 1.
        let (mut sink, mut more) = (super::tests::sink(), super::tests::lines());
        more.push(&mut sink, b"", &vec![b'x'; MAX_LINE + 1]);
        more.push(&mut sink, b"", b"\n");
        let text = line_lengths(&sink);
        assert_eq!(text, [p + MAX_LINE, p + 1, 0]);
    }

    #[test]
    fn a_long_line_inside_one_chunk_is_split_too() {
        let (mut sink, mut lines) = (sink(), lines());
        let mut chunk = b"a\n".to_vec();
        chunk.extend(vec![b'y'; MAX_LINE + 3]);
        chunk.extend(b"\nb\nc");
        lines.push(&mut sink, b"", &chunk);
        lines.finish(&mut sink, b"");
        let text = line_lengths(&sink);
        let p = "web   | ".len();
        assert_eq!(text, [p + 1, p + MAX_LINE, p + 3, p + 1, p + 1, 0]);
    }

    #[test]
    fn inside_one_chunk_a_line_of_the_limit_is_whole_and_one_more_is_split() {
        // Each first after a short line (where the one-pass copy takes it
        // or not), then first in the chunk's rest.
        let (mut sink, mut lines) = (sink(), lines());
        let mut chunk = b"a\n".to_vec();
        chunk.extend(vec![b'y'; MAX_LINE + 1]);
        chunk.push(b'\n');
        chunk.extend(vec![b'x'; MAX_LINE]);
        chunk.extend(b"\nb\n");
        lines.push(&mut sink, b"", &chunk);
        let text = line_lengths(&sink);
        let p = "web   | ".len();
        assert_eq!(text, [p + 1, p + MAX_LINE, p + 1, p + MAX_LINE, p + 1, 0]);
    }

    #[test]
    fn the_bytes_survive_any_chunking() {
        // Whatever the chunk boundaries, stripping the prefixes gives back
        // the input.
        let input: Vec<u8> = (0..200_000u32)
            .map(|i| if i % 61 == 60 { b'\n' } else { (i % 251) as u8 })
            .chain(std::iter::once(b'z'))
            .collect();
        for size in [1, 7, 61, 4096, 65_536] {
            let (mut sink, mut lines) = (sink(), lines());
            for chunk in input.chunks(size) {
                lines.push(&mut sink, b"", chunk);
            }
            lines.finish(&mut sink, b"");
            let mut back = Vec::new();
            for line in sink.buf.split_inclusive(|&b| b == b'\n') {
                back.extend_from_slice(line.strip_prefix(b"web   | ").expect("prefixed"));
            }
            assert_eq!(back.pop(), Some(b'\n'), "the last line gets a newline");
            assert!(back == input, "chunks of {size}");
        }
    }
}
