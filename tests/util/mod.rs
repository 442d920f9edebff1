//! Helpers shared by the integration tests. Each test file does `mod util;`
//! and may use only part of this, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use pipeloop::{Backend, Event, Events, Poll, Token};

/// A generous bound for "this should arrive": only reached if the test
/// fails, so it may be long without slowing the suite.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How long to wait when checking that nothing arrives.
pub const QUIET: Duration = Duration::from_millis(50);

/// Runs `scenario` once per backend this host has, with a fresh `Poll`; a
/// failure names the backend.
#[track_caller]
pub fn for_each_backend(scenario: impl Fn(&mut Poll)) {
    for &backend in Backend::available() {
        let mut poll = Poll::with_backend(backend)
            .unwrap_or_else(|e| panic!("creating a {backend} Poll: {e}"));
        naming_backend(backend, || scenario(&mut poll));
    }
}

/// Runs `scenario`; a panic in it is raised again with `[backend NAME]`
/// in front of its message, so that a failure says which backend it was.
#[track_caller]
pub fn naming_backend<R>(backend: Backend, scenario: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(scenario)) {
        Ok(value) => value,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panic!("[backend {backend}] {msg}");
        }
    }
}

/// Installs `handler` for `signal` (no flags, empty mask), returning the
/// action it replaced.
pub fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) -> libc::sigaction {
    // SAFETY: all-zero is a valid sigaction; the mask is then emptied.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = handler;
    // SAFETY: `sa_mask` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: `new` is complete; `old` receives the previous action.
    let rc = unsafe { libc::sigaction(signal, &new, old.as_mut_ptr()) };
    assert_eq!(rc, 0, "sigaction: {}", io::Error::last_os_error());
    // SAFETY: sigaction succeeded.
    unsafe { old.assume_init() }
}

/// What an expected event must say; `None` fields are not checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expect {
    pub token: usize,
    pub readable: Option<bool>,
    pub writable: Option<bool>,
    pub error: Option<bool>,
    pub read_closed: Option<bool>,
    pub write_closed: Option<bool>,
}

impl Expect {
    pub fn readable(token: usize) -> Expect {
        Expect {
            token,
            readable: Some(true),
            ..Expect::default()
        }
    }

    pub fn writable(token: usize) -> Expect {
        Expect {
            token,
            writable: Some(true),
            ..Expect::default()
        }
    }

    pub fn any(token: usize) -> Expect {
        Expect {
            token,
            ..Expect::default()
        }
    }

    fn matches(&self, event: &Event) -> bool {
        let check = |want: Option<bool>, got: bool| want.is_none_or(|w| w == got);
        event.token() == Token(self.token)
            && check(self.readable, event.is_readable())
            && check(self.writable, event.is_writable())
            && check(self.error, event.is_error())
            && check(self.read_closed, event.is_read_closed())
            && check(self.write_closed, event.is_write_closed())
    }
}

/// Polls until every expected event has been seen (in any order, possibly
/// across several polls) or `PATIENCE` runs out. Returns every event seen.
/// A poll that sleeps until then fails it even if it brings the events: it
/// returned only because its timeout ran out, so a wake-up was lost.
#[track_caller]
pub fn expect_events(poll: &mut Poll, events: &mut Events, expected: &[Expect]) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    let mut missing: Vec<Expect> = expected.to_vec();
    let mut seen = Vec::new();
    while !missing.is_empty() {
        let now = Instant::now();
        assert!(
            now < deadline,
            "timed out waiting for {missing:?}; saw {seen:?}"
        );
        poll.poll(events, Some(deadline - now)).expect("poll");
        assert_woke_before(deadline, events);
        for event in events.iter() {
            seen.push(format!("{event:?}"));
            if let Some(i) = missing.iter().position(|e| e.matches(event)) {
                missing.swap_remove(i);
            }
        }
    }
    seen
}

/// Polls until one event matches `expected` (as [`expect_events`]), and
/// asserts that the poll which reported it reported nothing else for that
/// token: one event, not two that together say the same. Returns every
/// event seen.
#[track_caller]
pub fn expect_one_event(poll: &mut Poll, events: &mut Events, expected: Expect) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let now = Instant::now();
        assert!(
            now < deadline,
            "timed out waiting for {expected:?}; saw {seen:?}"
        );
        poll.poll(events, Some(deadline - now)).expect("poll");
        assert_woke_before(deadline, events);
        let this: Vec<String> = events
            .iter()
            .filter(|e| e.token() == Token(expected.token))
            .map(|e| format!("{e:?}"))
            .collect();
        let found = events.iter().any(|e| expected.matches(e));
        seen.extend(events.iter().map(|e| format!("{e:?}")));
        if found {
            assert_eq!(
                this.len(),
                1,
                "more than one event for {expected:?}: {this:?}"
            );
            return seen;
        }
    }
}

/// Asserts that a poll whose timeout ran until `deadline` returned before
/// it: one that slept its whole timeout missed the wake-up it waited for,
/// even if the events came along when it timed out.
#[track_caller]
fn assert_woke_before(deadline: Instant, events: &Events) {
    assert!(
        Instant::now() < deadline,
        "the poll slept its whole timeout ({PATIENCE:?}): a wake-up was lost \
         (it returned {events:?})"
    );
}

/// Polls once for `QUIET` and asserts that nothing was reported.
#[track_caller]
pub fn expect_no_events(poll: &mut Poll, events: &mut Events) {
    poll.poll(events, Some(QUIET)).expect("poll");
    let got: Vec<_> = events.iter().map(|e| format!("{e:?}")).collect();
    assert!(got.is_empty(), "expected no events, got {got:?}");
}

/// Polls once for `QUIET` and asserts that `token` was not reported.
#[track_caller]
pub fn expect_no_event_for(poll: &mut Poll, events: &mut Events, token: usize) {
    poll.poll(events, Some(QUIET)).expect("poll");
    let got: Vec<_> = events
        .iter()
        .filter(|e| e.token() == Token(token))
        .map(|e| format!("{e:?}"))
        .collect();
    assert!(
        got.is_empty(),
        "expected no event for Token({token}), got {got:?}"
    );
}

/// Asserts that `result` is a `WouldBlock` error.
#[track_caller]
pub fn assert_would_block<T: std::fmt::Debug>(result: io::Result<T>) {
    match result {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("expected WouldBlock, got {other:?}"),
    }
}

/// Asserts that `result` is an error of `kind`.
#[track_caller]
pub fn assert_error_kind<T: std::fmt::Debug>(result: io::Result<T>, kind: ErrorKind) {
    match result {
        Err(e) if e.kind() == kind => {}
        other => panic!("expected an error of kind {kind:?}, got {other:?}"),
    }
}

/// Reads `fd`'s fd flags (`F_GETFD`).
pub fn fd_flags(fd: RawFd) -> libc::c_int {
    // SAFETY: F_GETFD takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(
        flags >= 0,
        "fcntl(F_GETFD) on fd {fd}: {}",
        io::Error::last_os_error()
    );
    flags
}

/// Reads `fd`'s status flags (`F_GETFL`).
pub fn status_flags(fd: RawFd) -> libc::c_int {
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(
        flags >= 0,
        "fcntl(F_GETFL) on fd {fd}: {}",
        io::Error::last_os_error()
    );
    flags
}

#[track_caller]
pub fn assert_cloexec(fd: &impl AsRawFd) {
    let fd = fd.as_raw_fd();
    assert!(
        fd_flags(fd) & libc::FD_CLOEXEC != 0,
        "fd {fd} is not close-on-exec"
    );
}

#[track_caller]
pub fn assert_nonblocking(fd: &impl AsRawFd) {
    let fd = fd.as_raw_fd();
    assert!(
        status_flags(fd) & libc::O_NONBLOCK != 0,
        "fd {fd} is not non-blocking"
    );
}

/// The fds open in this process, from `/proc/self/fd` (without the one the
/// directory listing itself used, which is closed by the time it returns),
/// or `None` where there is no `/proc/self/fd` (macOS, the BSDs without
/// linprocfs): a test that counts fds then skips, through [`skip`].
pub fn open_fds() -> Option<HashSet<RawFd>> {
    let listed: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => panic!("read /proc/self/fd: {e}"),
    };
    // Checked after the listing is done, so that its own fd is closed.
    Some(
        listed
            .into_iter()
            // SAFETY: F_GETFD only asks whether the fd is open.
            .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
            .collect(),
    )
}

/// Whether this host lists open fds; if not, says on stderr that `test` is
/// skipped. A test that counts fds starts with
/// `if !can_list_fds("name") { return; }` and then uses [`live_fds`].
pub fn can_list_fds(test: &str) -> bool {
    let can = open_fds().is_some();
    if !can {
        eprintln!("skipped: {test}: /proc/self/fd is absent, so open fds cannot be listed");
    }
    can
}

/// [`open_fds`] in a test that has checked [`can_list_fds`].
#[track_caller]
pub fn live_fds() -> HashSet<RawFd> {
    open_fds().expect("/proc/self/fd went away")
}

/// Reads from a non-blocking reader until `WouldBlock` (or end of file),
/// returning the bytes.
#[track_caller]
pub fn drain(mut reader: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return out,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// The tokens of the last poll's events, in order, for assertions about
/// what one poll returned.
pub fn tokens(events: &Events) -> Vec<usize> {
    events.iter().map(|e| e.token().0).collect()
}

/// Polls once with `timeout` and returns the tokens reported.
#[track_caller]
pub fn poll_tokens(poll: &mut Poll, events: &mut Events, timeout: Duration) -> Vec<usize> {
    poll.poll(events, Some(timeout)).expect("poll");
    tokens(events)
}

/// Writes into a non-blocking writer until it would block; returns how many
/// bytes went in.
#[track_caller]
pub fn fill(mut writer: impl io::Write) -> usize {
    let chunk = [0xA5u8; 16 * 1024];
    let mut total = 0;
    loop {
        match writer.write(&chunk) {
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return total,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("write: {e}"),
        }
    }
}

/// A thread that is about to block in `Poll::poll`, so that another thread
/// can act only once it really is blocked (instead of sleeping and hoping).
#[derive(Clone, Copy, Debug)]
pub struct Poller {
    #[cfg(target_os = "linux")]
    tid: libc::pid_t,
}

/// The syscalls a blocked `Poll::poll` sits in, on either backend.
#[cfg(target_os = "linux")]
const POLL_SYSCALLS: &[libc::c_long] = &[
    #[cfg(target_arch = "x86_64")]
    libc::SYS_poll,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_epoll_wait,
    libc::SYS_ppoll,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
];

impl Poller {
    /// The calling thread.
    pub fn current() -> Poller {
        Poller {
            // SAFETY: gettid has no preconditions.
            #[cfg(target_os = "linux")]
            tid: unsafe { libc::gettid() },
        }
    }

    /// Returns once the thread is asleep in epoll_wait or poll, read from
    /// `/proc/self/task/<tid>/syscall`. Where that cannot be read (not
    /// Linux, or a kernel without it), no portable call says whether
    /// another thread is blocked: it then waits `QUIET` and says so on
    /// stderr, once per process, because the scenarios stay correct but
    /// their "while blocked" path is then not certain to run. With
    /// `PIPELOOP_TEST_REQUIRE_BLOCKED` set, it panics instead.
    #[track_caller]
    pub fn wait_until_blocked(self) {
        #[cfg(target_os = "linux")]
        {
            let path = format!("/proc/self/task/{}/syscall", self.tid);
            let deadline = Instant::now() + PATIENCE;
            loop {
                let text = match std::fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(e) => return guess_blocked(&format!("{path}: {e}")),
                };
                let nr = text.split_whitespace().next().and_then(|n| n.parse().ok());
                if nr.is_some_and(|nr: libc::c_long| POLL_SYSCALLS.contains(&nr)) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "thread {} never blocked in poll (last: {text:?})",
                    self.tid
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        #[cfg(not(target_os = "linux"))]
        guess_blocked("no /proc/self/task/<tid>/syscall on this OS");
    }
}

/// The fallback of [`Poller::wait_until_blocked`], made loud: a fixed wait,
/// announced once, or a panic if the run asked for certainty.
#[track_caller]
fn guess_blocked(why: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    assert!(
        std::env::var_os("PIPELOOP_TEST_REQUIRE_BLOCKED").is_none(),
        "cannot see that the polling thread is blocked ({why})"
    );
    ONCE.call_once(|| {
        eprintln!(
            "note: cannot see that the polling thread is blocked ({why}); \
             waiting {QUIET:?} instead, so the \"while blocked\" paths may not run"
        );
    });
    std::thread::sleep(QUIET);
}

/// A new pipe whose receiver is registered with `poll` under `token`.
#[track_caller]
pub fn registered_pipe(
    poll: &pipeloop::Poll,
    token: usize,
    interest: pipeloop::Interest,
) -> (pipeloop::pipe::Sender, pipeloop::pipe::Receiver) {
    let (sender, mut receiver) = pipeloop::pipe::new().expect("pipe::new");
    poll.registry()
        .register(&mut receiver, Token(token), interest)
        .expect("register the receiver");
    (sender, receiver)
}

/// The `main` of a `harness = false` test binary: runs `cases` one after
/// another on this one thread (a filter argument picks those whose name
/// contains it), prints a line per case and "N passed, N failed", and
/// exits 1 if any failed.
pub fn run_cases(cases: &[(&str, fn())]) {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match std::panic::catch_unwind(case) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Blocks until this process's child `pid` has exited, and leaves it for
/// its owner to reap (`waitid` with `WNOWAIT`): how a test knows that a
/// child an `EventLoop` owns is gone, without taking its status. Only for
/// children that exit by themselves: it waits as long as they run.
pub fn wait_exited_not_reaped(pid: u32) {
    // `id_t` is u32 on Linux, i64 on FreeBSD: either holds every pid.
    let pid = pid as libc::id_t;
    loop {
        // SAFETY: all-zero is a valid `siginfo_t`, which waitid fills.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid only reads the child's state into `info`; with
        // WNOWAIT the child stays waitable.
        let rc =
            unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 {
            return;
        }
        let err = io::Error::last_os_error();
        // A signal (SIGCHLD, to a loop's handler) cuts the wait short.
        assert_eq!(err.kind(), ErrorKind::Interrupted, "waitid({pid}): {err}");
    }
}

/// Whether no process `pid` exists, not even a zombie (`kill(pid, 0)`
/// fails with `ESRCH`).
pub fn process_is_gone(pid: u32) -> bool {
    let pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill with signal 0 only asks whether `pid` exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}
