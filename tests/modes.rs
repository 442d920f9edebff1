//! Trigger modes (edge, level, oneshot), reregister and deregister, and the
//! `Interest` API. Every scenario runs on every backend: poll(2) emulates
//! what epoll does in the kernel, and these tests pin that they agree.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;

use pipeloop::{Events, Interest, SourceFd, Token, pipe};
use util::{
    Expect, assert_error_kind, assert_would_block, drain, expect_events, expect_no_event_for,
    expect_no_events, fill, for_each_backend, poll_tokens,
};

const SENDER: usize = 0;
const RECEIVER: usize = 1;

#[test]
fn edge_readable_is_reported_again_only_after_would_block() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut events = Events::with_capacity(8);

        sender.write_all(b"12345678").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);

        // A full (not short) read: bytes are left and nothing was used up.
        let mut half = [0u8; 4];
        assert_eq!(receiver.read(&mut half).unwrap(), 4);
        assert_eq!(&half, b"1234");
        expect_no_events(poll, &mut events);

        assert_eq!(drain(&receiver), b"5678");
        assert_would_block(receiver.read(&mut half));
        expect_no_events(poll, &mut events);

        sender.write_all(b"more").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        assert_eq!(drain(&receiver), b"more");
    });
}

/// A read that returns fewer bytes than asked (but more than 0) proves the
/// pipe was empty: the next write is reported without a second read to
/// reach `WouldBlock`.
#[test]
fn edge_short_read_rearms_without_a_second_read() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut events = Events::with_capacity(8);
        let mut buf = [0u8; 64];

        for round in 0..5u8 {
            let message = [b'a' + round; 10];
            sender.write_all(&message).unwrap();
            expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
            let n = receiver.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], &message, "round {round}");
            // No read until WouldBlock here, on purpose.
        }
    });
}

/// A write that takes fewer bytes than given proves the pipe was full: once
/// the reader makes room, writable is reported again without a `WouldBlock`.
#[test]
fn edge_short_write_rearms_writable() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);

        let big = vec![7u8; 1 << 20];
        let n = sender.write(&big).unwrap();
        assert!(n > 0 && n < big.len(), "expected a short write, got {n}");
        expect_no_event_for(poll, &mut events, SENDER);

        assert_eq!(drain(&receiver).len(), n);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);
    });
}

#[test]
fn edge_writable_is_reported_again_after_would_block_and_room() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);
        expect_no_event_for(poll, &mut events, SENDER);

        let written = fill(&sender);
        assert_would_block(sender.write(b"x"));
        expect_no_event_for(poll, &mut events, SENDER);

        assert_eq!(drain(&receiver).len(), written);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);
    });
}

#[test]
fn level_readable_is_reported_on_every_poll_until_drained() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) =
            util::registered_pipe(poll, RECEIVER, Interest::READABLE.level());
        let mut events = Events::with_capacity(8);

        sender.write_all(b"level").unwrap();
        for i in 0..3 {
            let got = poll_readable(poll, &mut events);
            assert_eq!(got, [(RECEIVER, true)], "poll {i}: one report per poll");
        }
        // A partial read leaves bytes, so it is still reported.
        let mut two = [0u8; 2];
        receiver.read_exact(&mut two).unwrap();
        for i in 0..2 {
            let got = poll_readable(poll, &mut events);
            assert_eq!(got, [(RECEIVER, true)], "after a partial read, poll {i}");
        }

        assert_eq!(drain(&receiver), b"vel");
        expect_no_events(poll, &mut events);
        expect_no_events(poll, &mut events);
    });
}

#[test]
fn level_writable_is_reported_on_every_poll_while_there_is_room() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE.level())
            .unwrap();
        let mut events = Events::with_capacity(8);

        for i in 0..3 {
            let got = poll_writable(poll, &mut events);
            assert_eq!(got, [(SENDER, true)], "poll {i}: one report per poll");
        }
        fill(&sender);
        expect_no_events(poll, &mut events);
        drain(&receiver);
        for i in 0..2 {
            let got = poll_writable(poll, &mut events);
            assert_eq!(got, [(SENDER, true)], "after a drain, poll {i}");
        }
    });
}

#[test]
fn oneshot_is_reported_once_until_reregistered() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) =
            util::registered_pipe(poll, RECEIVER, Interest::READABLE.oneshot());
        let mut events = Events::with_capacity(8);

        sender.write_all(b"one").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        expect_no_events(poll, &mut events);

        // Neither draining (WouldBlock) nor new bytes re-arm a oneshot.
        assert_eq!(drain(&receiver), b"one");
        sender.write_all(b"two").unwrap();
        expect_no_events(poll, &mut events);

        // Reregistering with bytes waiting reports them at once.
        poll.registry()
            .reregister(&mut receiver, Token(RECEIVER), Interest::READABLE.oneshot())
            .unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        expect_no_events(poll, &mut events);
        assert_eq!(drain(&receiver), b"two");

        // Armed again with nothing waiting: the next write is reported, once.
        poll.registry()
            .reregister(&mut receiver, Token(RECEIVER), Interest::READABLE.oneshot())
            .unwrap();
        expect_no_events(poll, &mut events);
        sender.write_all(b"three").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        expect_no_events(poll, &mut events);
    });
}

#[test]
fn reregister_with_data_waiting_reports_it_immediately_in_every_mode() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut events = Events::with_capacity(8);
        sender.write_all(b"waiting").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
        expect_no_events(poll, &mut events);

        for (i, interest) in [
            Interest::READABLE,
            Interest::READABLE.level(),
            Interest::READABLE.oneshot(),
        ]
        .into_iter()
        .enumerate()
        {
            let token = 10 + i;
            poll.registry()
                .reregister(&mut receiver, Token(token), interest)
                .unwrap();
            expect_events(poll, &mut events, &[Expect::readable(token)]);
        }
        assert_eq!(drain(&receiver), b"waiting");
    });
}

#[test]
fn reregister_replaces_token_and_interest() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = util::registered_pipe(poll, 1, Interest::READABLE);
        let mut events = Events::with_capacity(8);
        sender.write_all(b"x").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(1)]);

        // The new interest is level-triggered readable under a new token.
        poll.registry()
            .reregister(&mut receiver, Token(2), Interest::READABLE.level())
            .unwrap();
        for _ in 0..3 {
            let got = poll_readable(poll, &mut events);
            assert_eq!(got, [(2, true)], "only the new token, every poll");
        }
        drain(&receiver);
        expect_no_events(poll, &mut events);

        sender.write_all(b"y").unwrap();
        let seen = expect_events(poll, &mut events, &[Expect::readable(2)]);
        assert!(seen.iter().all(|e| e.contains("Token(2)")), "{seen:?}");
    });
}

/// A sender only writes: reregistering it for readable is refused and
/// leaves it as it was; writable under a new token is taken.
#[test]
fn reregister_cannot_switch_a_sender_to_readable() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);

        assert_error_kind(
            poll.registry()
                .reregister(&mut sender, Token(7), Interest::READABLE),
            ErrorKind::InvalidInput,
        );
        // Still edge under the old token: not re-armed by the failed call,
        // and reported again once the pipe was full and room is made.
        expect_no_events(poll, &mut events);
        fill(&sender);
        drain(&receiver);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);

        poll.registry()
            .reregister(&mut sender, Token(7), Interest::WRITABLE)
            .unwrap();
        expect_events(poll, &mut events, &[Expect::writable(7)]);
        expect_no_events(poll, &mut events);
    });
}

/// pipe/mod.rs, "Interest": a receiver cannot be registered for writable
/// alone, in any mode; nothing is registered, so the right interest can
/// then be.
#[test]
fn a_receiver_registered_for_writable_only_is_invalid_input() {
    for_each_backend(|poll| {
        let (_sender, mut receiver) = pipe::new().unwrap();
        for interest in [
            Interest::WRITABLE,
            Interest::WRITABLE.level(),
            Interest::WRITABLE.oneshot(),
        ] {
            let err = poll
                .registry()
                .register(&mut receiver, Token(RECEIVER), interest)
                .expect_err("a receiver registered for writable");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{interest:?}: {err}");
            let text = err.to_string();
            assert!(
                text.contains("Receiver") && text.contains("READABLE"),
                "names the end and what to register: {text}"
            );
        }
        poll.registry()
            .register(&mut receiver, Token(RECEIVER), Interest::READABLE)
            .expect("nothing was registered by the refused calls");
    });
}

#[test]
fn a_sender_registered_for_readable_only_is_invalid_input() {
    for_each_backend(|poll| {
        let (mut sender, _receiver) = pipe::new().unwrap();
        for interest in [
            Interest::READABLE,
            Interest::READABLE.level(),
            Interest::READABLE.oneshot(),
        ] {
            let err = poll
                .registry()
                .register(&mut sender, Token(SENDER), interest)
                .expect_err("a sender registered for readable");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{interest:?}: {err}");
            let text = err.to_string();
            assert!(
                text.contains("Sender") && text.contains("WRITABLE"),
                "names the end and what to register: {text}"
            );
        }
        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE)
            .expect("nothing was registered by the refused calls");
    });
}

/// Priority is not a pipe direction: alone it is refused, with a
/// direction of the end it is dropped.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn priority_on_a_pipe_end_is_dropped_or_invalid_input() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipe::new().unwrap();
        assert_error_kind(
            poll.registry()
                .register(&mut receiver, Token(RECEIVER), Interest::PRIORITY),
            ErrorKind::InvalidInput,
        );
        assert_error_kind(
            poll.registry()
                .register(&mut sender, Token(SENDER), Interest::PRIORITY),
            ErrorKind::InvalidInput,
        );
        poll.registry()
            .register(
                &mut receiver,
                Token(RECEIVER),
                Interest::PRIORITY | Interest::READABLE.level(),
            )
            .unwrap();
        let mut events = Events::with_capacity(8);
        sender.write_all(b"pri").unwrap();
        for _ in 0..3 {
            let got = poll_readable(poll, &mut events);
            assert_eq!(got, [(RECEIVER, true)], "level readable, every poll");
        }
    });
}

/// A failed reregister changes nothing: the level registration under the
/// old token is still reported on every poll.
#[test]
fn a_refused_reregister_keeps_the_old_token_and_mode() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) =
            util::registered_pipe(poll, RECEIVER, Interest::READABLE.level());
        let mut events = Events::with_capacity(8);
        for interest in [Interest::WRITABLE, Interest::WRITABLE.oneshot()] {
            assert_error_kind(
                poll.registry()
                    .reregister(&mut receiver, Token(9), interest),
                ErrorKind::InvalidInput,
            );
        }
        sender.write_all(b"kept").unwrap();
        for _ in 0..3 {
            let got = poll_readable(poll, &mut events);
            assert_eq!(got, [(RECEIVER, true)], "old token, level: every poll");
        }
        assert_eq!(drain(&receiver), b"kept");
        expect_no_events(poll, &mut events);
    });
}

/// `READABLE | WRITABLE` on a receiver registers as `READABLE`, edge: one
/// report per new write, never writable, and nothing more until used up.
#[test]
fn readable_and_writable_on_a_receiver_works_like_readable() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) =
            util::registered_pipe(poll, RECEIVER, Interest::READABLE | Interest::WRITABLE);
        let mut events = Events::with_capacity(8);
        expect_no_events(poll, &mut events);
        for round in 0..3u8 {
            sender.write_all(&[round]).unwrap();
            let got = poll_readable(poll, &mut events);
            assert_eq!(got, [(RECEIVER, true)], "round {round}");
            assert!(events.iter().all(|e| !e.is_writable()), "{events:?}");
            let mut buf = [0u8; 8];
            assert_eq!(receiver.read(&mut buf).unwrap(), 1, "a short read");
            expect_no_events(poll, &mut events);
        }
    });
}

/// `READABLE | WRITABLE` on a sender registers as `WRITABLE`: the reader
/// gone is the same event as for `WRITABLE` alone.
#[test]
fn readable_and_writable_on_a_sender_works_like_writable() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = pipe::new().unwrap();
        poll.registry()
            .register(
                &mut sender,
                Token(SENDER),
                Interest::READABLE | Interest::WRITABLE,
            )
            .unwrap();
        let mut events = Events::with_capacity(8);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);
        expect_no_events(poll, &mut events);
        drop(receiver);
        let closed = Expect {
            error: Some(true),
            write_closed: Some(true),
            readable: Some(false),
            ..Expect::writable(SENDER)
        };
        expect_events(poll, &mut events, &[closed]);
    });
}

/// The mode rides along when a direction is dropped: with the writable
/// part dropped, `WRITABLE | READABLE.level()` is level readable, reported
/// on every poll.
#[test]
fn writable_or_level_readable_on_a_receiver_stays_level() {
    for_each_backend(|poll| {
        let interest = Interest::WRITABLE | Interest::READABLE.level();
        let (mut sender, receiver) = util::registered_pipe(poll, RECEIVER, interest);
        let mut events = Events::with_capacity(8);
        sender.write_all(b"level").unwrap();
        for _ in 0..3 {
            let got = poll_readable(poll, &mut events);
            assert_eq!(got, [(RECEIVER, true)], "level: every poll");
        }
        assert_eq!(drain(&receiver), b"level");
        expect_no_events(poll, &mut events);
    });
}

/// Polls once (waiting up to `PATIENCE`) and returns each event's token and
/// whether it was readable: one poll, for claims about every poll.
#[track_caller]
fn poll_readable(poll: &mut pipeloop::Poll, events: &mut Events) -> Vec<(usize, bool)> {
    poll.poll(events, Some(util::PATIENCE)).expect("poll");
    events
        .iter()
        .map(|e| (e.token().0, e.is_readable()))
        .collect()
}

/// As `poll_readable`, for writable.
#[track_caller]
fn poll_writable(poll: &mut pipeloop::Poll, events: &mut Events) -> Vec<(usize, bool)> {
    poll.poll(events, Some(util::PATIENCE)).expect("poll");
    events
        .iter()
        .map(|e| (e.token().0, e.is_writable()))
        .collect()
}

#[test]
fn deregistered_source_gets_no_events() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) =
            util::registered_pipe(poll, RECEIVER, Interest::READABLE.level());
        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE.level())
            .unwrap();
        let mut events = Events::with_capacity(8);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);

        poll.registry().deregister(&mut receiver).unwrap();
        poll.registry().deregister(&mut sender).unwrap();
        sender.write_all(b"after deregister").unwrap();
        expect_no_events(poll, &mut events);
        drop(sender);
        expect_no_events(poll, &mut events);
        assert_eq!(drain(&receiver), b"after deregister");
    });
}

#[test]
fn register_again_after_deregister_works() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipe::new().unwrap();
        let mut events = Events::with_capacity(8);
        for round in 0..3 {
            let token = 100 + round;
            poll.registry()
                .register(&mut receiver, Token(token), Interest::READABLE)
                .unwrap();
            sender.write_all(b"hi").unwrap();
            expect_events(poll, &mut events, &[Expect::readable(token)]);
            assert_eq!(drain(&receiver), b"hi");
            poll.registry().deregister(&mut receiver).unwrap();
            expect_no_events(poll, &mut events);
        }

        // Registered again with bytes already waiting: reported at once.
        sender.write_all(b"early").unwrap();
        poll.registry()
            .register(&mut receiver, Token(9), Interest::READABLE)
            .unwrap();
        expect_events(poll, &mut events, &[Expect::readable(9)]);
    });
}

/// A raw fd cannot tell the poll(2) backend that it was drained; the
/// documented cooperation is a `reregister` after `WouldBlock`, harmless on
/// epoll. With it, an edge-triggered `SourceFd` works on every backend.
#[test]
fn edge_source_fd_is_reported_again_after_would_block_and_reregister() {
    for_each_backend(|poll| {
        let (mut reader, mut writer) = std::io::pipe().unwrap();
        let fd = reader.as_raw_fd();
        set_nonblocking(fd);
        poll.registry()
            .register(&mut SourceFd(&fd), Token(RECEIVER), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);

        for round in 0..3 {
            let message = format!("raw {round}");
            writer.write_all(message.as_bytes()).unwrap();
            expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
            expect_no_events(poll, &mut events);

            assert_eq!(drain(&mut reader), message.as_bytes());
            assert_would_block(reader.read(&mut [0; 8]));
            poll.registry()
                .reregister(&mut SourceFd(&fd), Token(RECEIVER), Interest::READABLE)
                .unwrap();
            expect_no_events(poll, &mut events);
        }
        poll.registry().deregister(&mut SourceFd(&fd)).unwrap();
    });
}

#[test]
fn level_source_fd_needs_no_reregister() {
    for_each_backend(|poll| {
        let (mut reader, mut writer) = std::io::pipe().unwrap();
        let fd = reader.as_raw_fd();
        set_nonblocking(fd);
        poll.registry()
            .register(
                &mut SourceFd(&fd),
                Token(RECEIVER),
                Interest::READABLE.level(),
            )
            .unwrap();
        let mut events = Events::with_capacity(8);

        for round in 0..3 {
            writer.write_all(b"lvl").unwrap();
            for i in 0..2 {
                let got = poll_readable(poll, &mut events);
                assert_eq!(got, [(RECEIVER, true)], "round {round}, poll {i}");
            }
            assert_eq!(drain(&mut reader), b"lvl", "round {round}");
            expect_no_events(poll, &mut events);
        }
        poll.registry().deregister(&mut SourceFd(&fd)).unwrap();
    });
}

fn set_nonblocking(fd: std::os::fd::RawFd) {
    // SAFETY: F_GETFL takes no argument; `fd` is open for the whole test.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL: {}", std::io::Error::last_os_error());
    // SAFETY: F_SETFL takes an int of status flags.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    assert_eq!(rc, 0, "F_SETFL: {}", std::io::Error::last_os_error());
}

#[test]
fn many_sources_in_one_poll_keep_their_own_tokens() {
    for_each_backend(|poll| {
        let mut pipes: Vec<_> = (0..4).map(|_| pipe::new().unwrap()).collect();
        for (i, (_, receiver)) in pipes.iter_mut().enumerate() {
            poll.registry()
                .register(receiver, Token(i), Interest::READABLE)
                .unwrap();
        }
        let mut events = Events::with_capacity(8);
        for i in [2, 0] {
            pipes[i].0.write_all(&[i as u8]).unwrap();
        }
        expect_events(
            poll,
            &mut events,
            &[Expect::readable(0), Expect::readable(2)],
        );
        let got = poll_tokens(poll, &mut events, util::QUIET);
        assert!(got.is_empty(), "edge: nothing more, got {got:?}");
        for i in [0, 2] {
            assert_eq!(drain(&pipes[i].1), [i as u8]);
        }
    });
}

#[test]
fn interest_add_and_remove() {
    let both = Interest::READABLE.add(Interest::WRITABLE);
    assert_eq!(both, Interest::READABLE | Interest::WRITABLE);
    assert!(both.is_readable() && both.is_writable());
    assert_eq!(both.remove(Interest::READABLE), Some(Interest::WRITABLE));
    assert_eq!(both.remove(Interest::WRITABLE), Some(Interest::READABLE));
    assert_eq!(both.remove(both), None, "nothing left");
    assert_eq!(Interest::READABLE.remove(Interest::READABLE), None);
    assert_eq!(
        Interest::READABLE.remove(Interest::WRITABLE),
        Some(Interest::READABLE),
        "removing what is not there changes nothing"
    );

    let mut grown = Interest::READABLE;
    grown |= Interest::WRITABLE;
    assert_eq!(grown, both);

    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let pri = Interest::PRIORITY | Interest::READABLE;
        assert!(pri.is_priority() && pri.is_readable() && !pri.is_writable());
        assert_eq!(pri.remove(Interest::PRIORITY), Some(Interest::READABLE));
    }
    assert!(!both.is_priority());
}

#[test]
fn interest_modes_are_edge_by_default_and_exclusive() {
    let edge = Interest::READABLE;
    assert!(edge.is_edge() && !edge.is_level() && !edge.is_oneshot());

    let level = Interest::READABLE.level();
    assert!(level.is_level() && !level.is_edge() && !level.is_oneshot());
    assert!(level.is_readable() && !level.is_writable());

    let oneshot = Interest::WRITABLE.oneshot();
    assert!(oneshot.is_oneshot() && !oneshot.is_edge() && !oneshot.is_level());
    assert!(oneshot.is_writable() && !oneshot.is_readable());

    // Switching modes replaces the mode and keeps the directions.
    assert_eq!(level.oneshot(), Interest::READABLE.oneshot());
    assert_eq!(oneshot.level(), Interest::WRITABLE.level());
    assert_eq!(level.edge(), Interest::READABLE);
    assert_ne!(level, edge);

    // Combined: oneshot wins over level, level over edge.
    assert!((level | oneshot).is_oneshot());
    assert!((edge | level).is_level());
    // remove keeps the mode of `self`.
    let both_level = (Interest::READABLE | Interest::WRITABLE).level();
    assert_eq!(
        both_level.remove(Interest::WRITABLE),
        Some(Interest::READABLE.level())
    );
}

/// As mio prints it (`READABLE`), with the mode only when it is not the
/// default.
#[test]
fn interest_debug_names_directions_and_mode() {
    assert_eq!(format!("{:?}", Interest::READABLE), "READABLE");
    assert_eq!(
        format!("{:?}", Interest::READABLE | Interest::WRITABLE),
        "READABLE | WRITABLE"
    );
    assert_eq!(
        format!("{:?}", (Interest::READABLE | Interest::WRITABLE).level()),
        "READABLE | WRITABLE, level"
    );
    assert_eq!(
        format!("{:?}", Interest::WRITABLE.oneshot()),
        "WRITABLE, oneshot"
    );
    #[cfg(any(target_os = "linux", target_os = "android"))]
    assert_eq!(format!("{:?}", Interest::PRIORITY), "PRIORITY");
}

/// mio has these on every platform; pipeloop registers no AIO or LIO
/// filters, so they are always false.
#[test]
fn aio_and_lio_exist_and_are_false() {
    for interest in [Interest::READABLE, Interest::WRITABLE.level()] {
        assert!(!interest.is_aio() && !interest.is_lio(), "{interest:?}");
    }
    for_each_backend(|poll| {
        let (mut sender, _receiver) = util::registered_pipe(poll, 1, Interest::READABLE);
        sender.write_all(b"x").unwrap();
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(util::PATIENCE)).unwrap();
        let event = events.iter().next().expect("an event");
        assert!(!event.is_aio() && !event.is_lio(), "{event:?}");
    });
}

/// Reading through a `try_clone` of a registered receiver used up the edge
/// of the registered one without re-arming it, so the poll(2) backend lost
/// every later write. Clones now share the registration.
#[test]
fn a_short_read_through_a_clone_rearms_the_registered_receiver() {
    for_each_backend(|poll| {
        let (mut sender, receiver) = util::registered_pipe(poll, RECEIVER, Interest::READABLE);
        let mut clone = receiver.try_clone().unwrap();
        let mut events = Events::with_capacity(4);
        for round in 0..3u8 {
            sender.write_all(&[round]).unwrap();
            expect_events(poll, &mut events, &[Expect::readable(RECEIVER)]);
            let mut buf = [0u8; 16];
            assert_eq!(
                clone.read(&mut buf).unwrap(),
                1,
                "a short read, round {round}"
            );
        }
    });
}

/// The writing side of the same: a clone fills the pipe (`WouldBlock`), the
/// reader drains it, and the registered sender must hear that it is writable.
#[test]
fn would_block_through_a_clone_rearms_the_registered_sender() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(SENDER), Interest::WRITABLE)
            .unwrap();
        let mut events = Events::with_capacity(4);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);

        let clone = sender.try_clone().unwrap();
        fill(&clone);
        drain(&mut receiver);
        expect_events(poll, &mut events, &[Expect::writable(SENDER)]);
    });
}

/// One receiver registered with two `Poll`s: a short read re-arms it in both
/// (registering with the second used to drop the first's re-arm).
#[test]
fn a_receiver_registered_with_two_polls_is_rearmed_in_both() {
    for_each_backend(|first| {
        let mut second = pipeloop::Poll::with_backend(pipeloop::Backend::Poll).unwrap();
        let (mut sender, mut receiver) = util::registered_pipe(first, 1, Interest::READABLE);
        second
            .registry()
            .register(&mut receiver, Token(2), Interest::READABLE)
            .unwrap();
        let (mut a, mut b) = (Events::with_capacity(4), Events::with_capacity(4));
        for round in 0..3u8 {
            sender.write_all(&[round]).unwrap();
            expect_events(first, &mut a, &[Expect::readable(1)]);
            expect_events(&mut second, &mut b, &[Expect::readable(2)]);
            let mut buf = [0u8; 16];
            assert_eq!(receiver.read(&mut buf).unwrap(), 1, "round {round}");
        }
        second.registry().deregister(&mut receiver).unwrap();
        sender.write_all(b"x").unwrap();
        expect_events(first, &mut a, &[Expect::readable(1)]);
        expect_no_events(&mut second, &mut b);
    });
}
