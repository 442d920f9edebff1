//! Running the real `poller` binary from tests.

#![allow(dead_code)] // each test binary uses part of it

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Longer than any test should take, even on a loaded 2-core machine: a
/// bound that turns a hang into a failure, not a timing assertion.
pub const HANG: Duration = Duration::from_secs(120);

pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn code(&self) -> i32 {
        self.status.code().expect("poller exited, not killed")
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The stdout lines, sorted (commands run at once: order is theirs).
    pub fn sorted_stdout(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.stdout().lines().map(str::to_owned).collect();
        lines.sort();
        lines
    }
}

pub fn poller() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_poller"));
    command.env_remove("NO_COLOR").env_remove("RUST_LOG");
    command
}

/// Runs poller with `args` to the end; panics if it takes longer than
/// [`HANG`].
pub fn run(args: &[&str]) -> Output {
    let mut command = poller();
    command.args(args);
    finish(spawn(&mut command))
}

pub fn spawn(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("poller starts")
}

/// Reads both streams to the end and waits, killing poller past [`HANG`].
pub fn finish(mut child: Child) -> Output {
    let readers = [
        child.stdout.take().map(drain),
        child.stderr.take().map(drain),
    ];
    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("poller hung for {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let [stdout, stderr] = readers.map(|r| r.map(|h| h.join().unwrap()).unwrap_or_default());
    Output {
        status,
        stdout,
        stderr,
    }
}

fn drain<R: Read + Send + 'static>(mut from: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = from.read_to_end(&mut all);
        all
    })
}

/// A fresh, empty directory of this test's own (removed when dropped).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("poller-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether a process with this pid is still there (a zombie counts).
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the pid exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Strips `prefix` from every line; the lines without it are an error.
pub fn strip(output: &[u8], prefix: &[u8]) -> Vec<u8> {
    let mut back = Vec::with_capacity(output.len());
    for line in output.split_inclusive(|&b| b == b'\n') {
        match line.strip_prefix(prefix) {
            Some(rest) => back.extend_from_slice(rest),
            None => panic!("a line without {:?}", String::from_utf8_lossy(prefix)),
        }
    }
    back
}

/// Whether a pipe's write end has room now (poll(2) with a zero timeout).
pub fn has_room(sender: &impl std::os::fd::AsRawFd) -> bool {
    let mut fd = libc::pollfd {
        fd: sender.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and a zero timeout.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    fd.revents & libc::POLLOUT != 0
}
