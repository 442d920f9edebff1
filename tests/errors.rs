//! Bad input is an `io::Error` a caller can match, never a panic: bad and
//! closed fds, double registration, unknown sources, a zero-capacity
//! `Events`, EINTR, a closed peer, absurd pipe sizes and unknown backends.
//! Also the compile-time `Send`/`Sync` promises.

mod util;

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use pipeloop::{Backend, Events, Interest, Poll, SourceFd, Token, Waker, pipe};
use util::{Expect, PATIENCE, assert_error_kind, expect_events, for_each_backend};

/// Asserts that `result` is the OS error `errno`.
#[track_caller]
fn assert_os_error<T: std::fmt::Debug>(result: io::Result<T>, errno: i32, what: &str) {
    match result {
        Err(e) if e.raw_os_error() == Some(errno) => {}
        other => panic!(
            "{what}: expected {}, got {other:?}",
            io::Error::from_raw_os_error(errno)
        ),
    }
}

/// An fd number that was open a moment ago and is closed now.
///
/// The tests of this binary run in parallel and open fds of their own, so a
/// just-closed low number could be reused by another thread before we use it.
/// fds are handed out lowest first, so a number far above anything in use
/// here stays free.
fn closed_fd() -> RawFd {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    let high = (limit.rlim_cur / 2).min(libc::c_int::MAX as libc::rlim_t) as libc::c_int;
    assert!(high > 64, "RLIMIT_NOFILE {} is too small", limit.rlim_cur);

    let (sender, _receiver) = pipe::new().unwrap();
    // SAFETY: F_DUPFD_CLOEXEC takes the lowest acceptable fd number.
    let fd = unsafe { libc::fcntl(sender.as_raw_fd(), libc::F_DUPFD_CLOEXEC, high) };
    assert!(
        fd >= high,
        "F_DUPFD_CLOEXEC: {}",
        io::Error::last_os_error()
    );
    // SAFETY: `fd` is the duplicate made above, owned by nothing else.
    let rc = unsafe { libc::close(fd) };
    assert_eq!(rc, 0, "close: {}", io::Error::last_os_error());
    fd
}

#[test]
fn invalid_fd_is_ebadf_on_register_reregister_deregister() {
    for_each_backend(|poll| {
        let registry = poll.registry();
        assert_os_error(
            registry.register(&mut SourceFd(&-1), Token(0), Interest::READABLE),
            libc::EBADF,
            "register(-1)",
        );
        assert_os_error(
            registry.reregister(&mut SourceFd(&-1), Token(0), Interest::READABLE),
            libc::EBADF,
            "reregister(-1)",
        );
        assert_os_error(
            registry.deregister(&mut SourceFd(&-1)),
            libc::EBADF,
            "deregister(-1)",
        );
    });
}

#[test]
fn closed_fd_is_ebadf_on_register_reregister_deregister() {
    for_each_backend(|poll| {
        let fd = closed_fd();
        let registry = poll.registry();
        assert_os_error(
            registry.register(&mut SourceFd(&fd), Token(0), Interest::READABLE),
            libc::EBADF,
            "register(closed fd)",
        );
        assert_os_error(
            registry.reregister(&mut SourceFd(&fd), Token(0), Interest::READABLE),
            libc::EBADF,
            "reregister(closed fd)",
        );
        assert_os_error(
            registry.deregister(&mut SourceFd(&fd)),
            libc::EBADF,
            "deregister(closed fd)",
        );
    });
}

#[test]
fn registering_a_receiver_twice_is_already_exists_and_keeps_the_first() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipe::new().unwrap();
        let registry = poll.registry();
        registry
            .register(&mut receiver, Token(1), Interest::READABLE)
            .unwrap();
        assert_error_kind(
            registry.register(&mut receiver, Token(2), Interest::READABLE),
            ErrorKind::AlreadyExists,
        );
        assert_error_kind(
            registry.register(&mut receiver, Token(1), Interest::READABLE.level()),
            ErrorKind::AlreadyExists,
        );

        // The first registration is untouched: its token is still reported.
        sender.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(4);
        let seen = expect_events(poll, &mut events, &[Expect::readable(1)]);
        assert!(
            !seen.iter().any(|e| e.contains("Token(2)")),
            "the refused token was reported: {seen:?}"
        );
        // And its mode: edge, not the refused level, so the byte left
        // unread is not reported again.
        util::expect_no_event_for(poll, &mut events, 1);
        let mut buf = [0u8; 8];
        assert_eq!(receiver.read(&mut buf).unwrap(), 1);
    });
}

#[test]
fn registering_a_source_fd_twice_is_already_exists() {
    for_each_backend(|poll| {
        let (sender, _receiver) = pipe::new().unwrap();
        let fd = sender.as_raw_fd();
        let registry = poll.registry();
        registry
            .register(&mut SourceFd(&fd), Token(3), Interest::WRITABLE)
            .unwrap();
        assert_error_kind(
            registry.register(&mut SourceFd(&fd), Token(3), Interest::WRITABLE),
            ErrorKind::AlreadyExists,
        );
        let mut events = Events::with_capacity(4);
        expect_events(poll, &mut events, &[Expect::writable(3)]);
        poll.registry().deregister(&mut SourceFd(&fd)).unwrap();
    });
}

#[test]
fn reregister_or_deregister_of_an_unregistered_source_is_not_found() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipe::new().unwrap();
        let registry = poll.registry();

        assert_error_kind(
            registry.reregister(&mut receiver, Token(0), Interest::READABLE),
            ErrorKind::NotFound,
        );
        assert_error_kind(registry.deregister(&mut receiver), ErrorKind::NotFound);
        assert_error_kind(
            registry.reregister(&mut sender, Token(0), Interest::WRITABLE),
            ErrorKind::NotFound,
        );
        assert_error_kind(registry.deregister(&mut sender), ErrorKind::NotFound);

        let fd = sender.as_raw_fd();
        assert_error_kind(
            registry.reregister(&mut SourceFd(&fd), Token(0), Interest::WRITABLE),
            ErrorKind::NotFound,
        );
        assert_error_kind(registry.deregister(&mut SourceFd(&fd)), ErrorKind::NotFound);

        // Once removed, it is unknown again.
        registry
            .register(&mut receiver, Token(0), Interest::READABLE)
            .unwrap();
        registry.deregister(&mut receiver).unwrap();
        assert_error_kind(registry.deregister(&mut receiver), ErrorKind::NotFound);
        assert_error_kind(
            registry.reregister(&mut receiver, Token(0), Interest::READABLE),
            ErrorKind::NotFound,
        );
    });
}

/// Regression: epoll refuses more than `INT_MAX / sizeof(epoll_event)`
/// events per wait (`EINVAL`), and pipeloop clamped at `INT_MAX`, so every
/// poll into a buffer this large failed. The buffer is reserved, not
/// touched, so it costs address space only.
#[test]
fn an_events_capacity_beyond_what_the_kernel_takes_still_polls() {
    const OVER_EPOLL_LIMIT: usize = (i32::MAX as usize / 12) + 1;
    for_each_backend(|poll| {
        let mut events = Events::with_capacity(OVER_EPOLL_LIMIT);
        assert!(events.capacity() >= OVER_EPOLL_LIMIT);
        let (mut sender, _receiver) = util::registered_pipe(poll, 0, Interest::READABLE);
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty(), "{events:?}");
        sender.write_all(b"x").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(0)]);
    });
}

#[test]
fn polling_with_zero_capacity_events_is_invalid_input() {
    for_each_backend(|poll| {
        // Something is ready, so a poll that wrongly went ahead would not
        // block; and the timeout bounds it anyway.
        let (mut sender, _receiver) = util::registered_pipe(poll, 0, Interest::READABLE);
        sender.write_all(b"x").unwrap();

        let mut empty = Events::with_capacity(0);
        assert_eq!(empty.capacity(), 0);
        assert_error_kind(
            poll.poll(&mut empty, Some(PATIENCE)),
            ErrorKind::InvalidInput,
        );
        assert_error_kind(
            poll.poll(&mut empty, Some(Duration::ZERO)),
            ErrorKind::InvalidInput,
        );
        assert!(empty.is_empty());

        // The refused polls consumed nothing: the event is still there.
        let mut events = Events::with_capacity(4);
        expect_events(poll, &mut events, &[Expect::readable(0)]);
    });
}

#[test]
fn sigpipe_is_ignored_in_test_binaries() {
    // SAFETY: all-zero is a valid sigaction for sigaction to fill.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries the disposition.
    let rc = unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current) };
    assert_eq!(rc, 0, "sigaction: {}", io::Error::last_os_error());
    assert_eq!(
        current.sa_sigaction,
        libc::SIG_IGN,
        "SIGPIPE is not ignored in this test binary"
    );
}

#[test]
fn writing_to_a_pipe_whose_reader_is_gone_is_broken_pipe() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(0), Interest::WRITABLE)
            .unwrap();
        drop(receiver);
        let mut events = Events::with_capacity(4);
        expect_events(
            poll,
            &mut events,
            &[Expect {
                write_closed: Some(true),
                ..Expect::any(0)
            }],
        );
        assert_error_kind(sender.write(b"x"), ErrorKind::BrokenPipe);
        assert_error_kind(
            sender.write_vectored(&[io::IoSlice::new(b"a"), io::IoSlice::new(b"b")]),
            ErrorKind::BrokenPipe,
        );
        assert_error_kind((&sender).write(b"y"), ErrorKind::BrokenPipe);
    });
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn absurd_pipe_capacities_are_errors_and_leave_the_pipe_working() {
    let (mut sender, mut receiver) = pipe::new().unwrap();
    let before = sender.capacity().unwrap();

    assert_error_kind(sender.set_capacity(usize::MAX), ErrorKind::InvalidInput);
    assert_error_kind(receiver.set_capacity(usize::MAX), ErrorKind::InvalidInput);
    // 1 << 31 does not fit in the C int that F_SETPIPE_SZ takes.
    assert_error_kind(sender.set_capacity(1 << 31), ErrorKind::InvalidInput);

    // An int-sized but absurd size (2 GiB once rounded up). The kernel says
    // EPERM without CAP_SYS_RESOURCE and otherwise usually ENOMEM; only that
    // it fails is asserted.
    let absurd = sender.set_capacity(i32::MAX as usize);
    assert!(
        absurd.is_err(),
        "set_capacity(i32::MAX) succeeded with {absurd:?}"
    );
    eprintln!("set_capacity(i32::MAX) -> {absurd:?}");

    assert_eq!(sender.capacity().unwrap(), before);
    sender.write_all(b"still works").unwrap();
    let mut buf = [0u8; 32];
    let n = receiver.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still works");
}

#[test]
fn an_unknown_backend_name_is_invalid_input_naming_it() {
    let err = "bogus".parse::<Backend>().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("bogus"), "{err}");
    for name in ["", "EPOLL", " poll", "poll "] {
        let err = name.parse::<Backend>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}");
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn kqueue_on_linux_is_unsupported_naming_it() {
    assert!(!Backend::available().contains(&Backend::Kqueue));
    let err = Poll::with_backend(Backend::Kqueue).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("kqueue"), "{err}");
}

// The thread-safety promises, checked at compile time.
const _: () = {
    const fn send<T: Send>() {}
    const fn send_sync<T: Send + Sync>() {}
    send::<Poll>();
    send_sync::<pipeloop::Registry>();
    send_sync::<Waker>();
    send_sync::<pipe::Sender>();
    send_sync::<pipe::Receiver>();
    send::<Events>();
};

/// Whether the backend can tell a pipe from another one at the same fd
/// number. The poll(2) backend compares `fstat`'s device and inode, and
/// NetBSD and OpenBSD give every pipe inode 0 (`pipe_stat`: "Left as 0");
/// `SourceFd`'s docs state the limit. (kqueue asks the kernel instead.)
fn tells_pipes_apart(poll: &Poll) -> bool {
    poll.backend() != Backend::Poll || !cfg!(any(target_os = "netbsd", target_os = "openbsd"))
}

/// A `SourceFd` whose fd was closed without deregistering (here replaced by
/// `dup2`, which closes and reuses the number at once) must not block a new
/// registration of another file under that number. epoll forgets the closed
/// file by itself; the poll(2) backend used to refuse with `AlreadyExists`
/// when the old entry was parked (a fired oneshot) and so never reported
/// `POLLNVAL`.
#[test]
fn a_reused_fd_number_naming_another_file_can_be_registered() {
    for_each_backend(|poll| {
        // std::io::pipe() returns (reader, writer).
        let (old_reader, mut old_writer) = std::io::pipe().unwrap();
        let (new_reader, mut new_writer) = std::io::pipe().unwrap();
        let fd = old_reader.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(1), Interest::READABLE.oneshot())
            .unwrap();
        old_writer.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(4);
        expect_events(poll, &mut events, &[Expect::readable(1)]);

        // SAFETY: both fds are open; dup2 closes `fd` (the old reader, which
        // `old_reader` still owns and will close again below, so forget it).
        let ret = unsafe { libc::dup2(new_reader.as_raw_fd(), fd) };
        assert_eq!(ret, fd, "dup2: {}", io::Error::last_os_error());
        std::mem::forget(old_reader);

        let again =
            poll.registry()
                .register(&mut SourceFd(&fd), Token(2), Interest::READABLE.level());
        if !tells_pipes_apart(poll) {
            // The documented limit: the stale entry looks like this pipe.
            assert_error_kind(again, ErrorKind::AlreadyExists);
            poll.registry().deregister(&mut SourceFd(&fd)).unwrap();
            // SAFETY: `fd` is the dup2 copy, owned by nothing else.
            unsafe { libc::close(fd) };
            return;
        }
        again.expect("registering the new file under the reused number");
        new_writer.write_all(b"y").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(2)]);
        poll.registry().deregister(&mut SourceFd(&fd)).unwrap();
        // SAFETY: `fd` is the dup2 copy, owned by nothing else.
        unsafe { libc::close(fd) };
    });
}

/// The same with reregister and deregister: the number now names a file that
/// was never registered, so both are `NotFound`, as on epoll (the poll(2)
/// backend used to change the stale entry and return Ok).
#[test]
fn reregister_of_a_reused_fd_number_naming_another_file_is_not_found() {
    for_each_backend(|poll| {
        let (old_reader, mut old_writer) = std::io::pipe().unwrap();
        let (new_reader, _new_writer) = std::io::pipe().unwrap();
        let fd = old_reader.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(1), Interest::READABLE.oneshot())
            .unwrap();
        old_writer.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(4);
        expect_events(poll, &mut events, &[Expect::readable(1)]);

        // SAFETY: both fds are open; dup2 closes `fd`, which `old_reader`
        // owns, so that value is forgotten instead of closing it again.
        let ret = unsafe { libc::dup2(new_reader.as_raw_fd(), fd) };
        assert_eq!(ret, fd, "dup2: {}", io::Error::last_os_error());
        std::mem::forget(old_reader);

        let again = poll
            .registry()
            .reregister(&mut SourceFd(&fd), Token(2), Interest::READABLE);
        let gone = poll.registry().deregister(&mut SourceFd(&fd));
        if tells_pipes_apart(poll) {
            assert_error_kind(again, ErrorKind::NotFound);
            assert_error_kind(gone, ErrorKind::NotFound);
        } else {
            // The documented limit: the stale entry is taken for this pipe.
            again.expect("the stale entry, changed");
            gone.expect("the stale entry, removed");
        }
        // SAFETY: `fd` is the dup2 copy, owned by nothing else.
        unsafe { libc::close(fd) };
    });
}
