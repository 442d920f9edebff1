//! The kqueue backend's logic against the scripted kernel (`fake.rs`), on
//! every OS table that has the behaviour. "Decision N" refers to the
//! section "What each design decision answers" of docs/kqueue.md.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::core::{Core, Registration};
use super::fake::{self, EVERY_OS, Fake, Os};
use super::kevent::Kev;
use crate::event::Event;
use crate::sys::RawEvent;
use crate::{Interest, Token};

mod races;

/// A backend on a scripted kernel, with a buffer to poll into.
pub(super) struct Rig {
    pub(super) core: Arc<Core<Fake>>,
    out: Vec<Kev>,
    events: Vec<RawEvent>,
    /// The registrations made, for the re-arms of `read` and `write`.
    /// Dropping one does nothing: `release` forgets its record (what a
    /// pipe end's drop calls).
    pub(super) regs: Vec<Registration<Fake>>,
}

pub(super) fn rig(os: &'static Os) -> Rig {
    Rig {
        core: Arc::new(Core::new(Fake::new(os)).expect("a kernel with receipts")),
        out: Vec::with_capacity(16),
        events: Vec::with_capacity(16),
        regs: Vec::new(),
    }
}

impl Rig {
    pub(super) fn fake(&self) -> &Fake {
        self.core.kernel()
    }

    pub(super) fn os(&self) -> &'static str {
        self.fake().os().name
    }

    /// Registers `fd` as a pipeloop pipe end would (it reports used-up
    /// directions) and keeps the registration.
    pub(super) fn register_end(
        &mut self,
        fd: i32,
        token: usize,
        interest: Interest,
    ) -> io::Result<()> {
        let (reg, _) = self.core.register(fd, Token(token), interest, true)?;
        self.regs.push(reg);
        Ok(())
    }

    /// Registers `fd` as a `SourceFd` would: nothing re-arms it.
    pub(super) fn register_raw(
        &mut self,
        fd: i32,
        token: usize,
        interest: Interest,
    ) -> io::Result<()> {
        let (reg, _) = self.core.register(fd, Token(token), interest, false)?;
        self.regs.push(reg);
        Ok(())
    }

    pub(super) fn reregister_end(
        &mut self,
        fd: i32,
        token: usize,
        interest: Interest,
    ) -> io::Result<()> {
        let reg = self.core.reregister(fd, Token(token), interest, true)?;
        self.regs.push(reg);
        Ok(())
    }

    pub(super) fn reregister_raw(
        &mut self,
        fd: i32,
        token: usize,
        interest: Interest,
    ) -> io::Result<()> {
        let reg = self.core.reregister(fd, Token(token), interest, false)?;
        self.regs.push(reg);
        Ok(())
    }

    /// What a pipe end does after a read of `asked` bytes: re-arms if it
    /// came back short.
    pub(super) fn read(&self, fd: i32, asked: usize) -> usize {
        let got = self.fake().read(fd, asked);
        if got > 0 && got < asked {
            for reg in &self.regs {
                if reg.fd() == fd && reg.needs_rearm() {
                    reg.rearm(Interest::READABLE);
                }
            }
        }
        got
    }

    /// What a pipe end does after a write of `asked` bytes: re-arms if it
    /// came back short (a write that put nothing is `WouldBlock`, which
    /// re-arms too).
    pub(super) fn write(&self, fd: i32, asked: usize) -> usize {
        let put = self.fake().write(fd, asked);
        if put < asked {
            for reg in &self.regs {
                if reg.fd() == fd && reg.needs_rearm() {
                    reg.rearm(Interest::WRITABLE);
                }
            }
        }
        put
    }

    /// One poll: the events as "token:flags" strings, or the error.
    pub(super) fn poll(&mut self, timeout: Option<Duration>) -> io::Result<Vec<String>> {
        self.core.select(&mut self.out, &mut self.events, timeout)?;
        Ok(self.events.iter().map(describe).collect())
    }

    /// A poll that returns at once.
    pub(super) fn now(&mut self) -> Vec<String> {
        self.poll(Some(Duration::ZERO)).unwrap()
    }

    /// A poll without a timeout, which must not be one that would hang.
    pub(super) fn wait(&mut self) -> Vec<String> {
        match self.poll(None) {
            Ok(events) => events,
            Err(e) => panic!("[{}] poll(None): {e}", self.os()),
        }
    }
}

/// "token:" and the flags `Event` reports: r(eadable), w(ritable),
/// rc (read closed), wc (write closed), e(rror).
pub(super) fn describe(raw: &RawEvent) -> String {
    let e = Event::from_raw(raw);
    let mut s = format!("{}:", e.token().0);
    for (on, name) in [
        (e.is_readable(), "r"),
        (e.is_writable(), "w"),
        (e.is_read_closed(), "rc"),
        (e.is_write_closed(), "wc"),
        (e.is_error(), "e"),
    ] {
        if on {
            s.push_str(name);
            s.push(',');
        }
    }
    s.pop();
    s
}

fn would_hang(result: io::Result<Vec<String>>) -> bool {
    matches!(result, Err(e) if e.to_string() == fake::WOULD_HANG)
}

/// Decision 1: Edge mode on a pipe end is reported once, and again only
/// after a read used the pipe up, although FreeBSD, xnu, OpenBSD and
/// NetBSD 10 wake the reader's own knote on its reads.
#[test]
fn edge_reports_once_until_a_short_read_even_where_reads_wake_the_reader() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(r, 1, Interest::READABLE).unwrap();
        rig.fake().write(w, 10);
        assert_eq!(rig.wait(), ["1:r"], "[{}]", os.name);

        assert_eq!(rig.read(r, 4), 4, "a full read: not used up");
        assert_eq!(
            rig.now(),
            Vec::<String>::new(),
            "[{}] after a partial read",
            os.name
        );

        assert_eq!(rig.read(r, 100), 6, "a short read: used up");
        assert_eq!(rig.now(), Vec::<String>::new(), "[{}] nothing new", os.name);

        rig.fake().write(w, 3);
        assert_eq!(rig.wait(), ["1:r"], "[{}] new bytes", os.name);
    }
}

/// Decision 1: A wait without a timeout returns only with something to
/// report, as `Poll::poll` promises: a kernel event that edge mode holds
/// back (here the reader's own partial read, on the kernels that wake it)
/// sends it back to the kernel, where the scripted one would sleep forever.
#[test]
fn a_wait_without_timeout_goes_on_past_held_back_events() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(r, 1, Interest::READABLE).unwrap();
        rig.fake().write(w, 10);
        assert_eq!(rig.wait(), ["1:r"], "[{}]", os.name);
        assert_eq!(rig.read(r, 4), 4, "a full read: not used up");
        let got = rig.poll(None);
        assert!(would_hang(got), "[{}] returned with nothing", os.name);
    }
}

/// Decision 1: After end of file is reported, reads that come back short do not
/// report it again: that event is the last one (on xnu and OpenBSD a
/// registered receiver otherwise reports end of file after every read).
#[test]
fn edge_end_of_file_is_reported_once() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(r, 1, Interest::READABLE).unwrap();
        rig.fake().write(w, 10);
        rig.fake().close(w);
        assert_eq!(rig.wait(), ["1:r,rc,wc"], "[{}]", os.name);
        assert_eq!(rig.read(r, 4), 4);
        assert_eq!(rig.read(r, 100), 6, "short");
        assert_eq!(rig.read(r, 100), 0, "end of file");
        for _ in 0..3 {
            assert_eq!(
                rig.now(),
                Vec::<String>::new(),
                "[{}] after end of file",
                os.name
            );
        }
    }
}

/// Decision 1, the sending side: edge mode on a write end is reported
/// once, and again only after a write came back short, although a write
/// wakes the writer's own knote on FreeBSD, xnu, OpenBSD and NetBSD 10.
#[test]
fn edge_writable_reports_once_until_a_short_write_even_where_writes_wake_the_writer() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(w, 2, Interest::WRITABLE).unwrap();
        assert_eq!(rig.wait(), ["2:w"], "[{}]", os.name);

        assert_eq!(rig.write(w, 100), 100, "a full write: not used up");
        assert_eq!(
            rig.now(),
            Vec::<String>::new(),
            "[{}] after a write that left room",
            os.name
        );

        let rest = fake::PIPE_SIZE - 100;
        assert_eq!(rig.write(w, fake::PIPE_SIZE), rest, "short: used up");
        assert_eq!(rig.now(), Vec::<String>::new(), "[{}] full", os.name);

        assert_eq!(rig.fake().read(r, fake::PIPE_SIZE / 2), fake::PIPE_SIZE / 2);
        assert_eq!(rig.wait(), ["2:w"], "[{}] room again", os.name);
    }
}

/// On every OS a closed fd is `EBADF`, as the `Registry` docs promise,
/// also where the kernel answers a change for it with `ENOENT` (xnu looks
/// for the knote before it looks up the fd).
#[test]
fn a_closed_fd_is_ebadf_on_every_os() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, _w) = rig.fake().pipe();
        rig.register_raw(r, 1, Interest::READABLE).unwrap();
        rig.fake().close(r);
        let ebadf = Some(libc::EBADF);
        let again = rig.core.reregister(r, Token(1), Interest::READABLE, false);
        assert_eq!(
            again.err().and_then(|e| e.raw_os_error()),
            ebadf,
            "[{}]",
            os.name
        );
        let gone = rig.core.deregister(r);
        assert_eq!(
            gone.err().and_then(|e| e.raw_os_error()),
            ebadf,
            "[{}]",
            os.name
        );

        let (r2, w2) = rig.fake().pipe();
        rig.register_end(w2, 2, Interest::WRITABLE).unwrap();
        rig.fake().close(r2);
        assert_eq!(rig.now(), ["2:w,wc,e"], "[{}]", os.name);
        rig.fake().close(w2);
        let gone = rig.core.deregister(w2);
        assert_eq!(
            gone.err().and_then(|e| e.raw_os_error()),
            ebadf,
            "[{}]",
            os.name
        );
    }
}

/// A round trip of a pipe end in edge mode (a write, a wait, a read that
/// takes everything) costs the kernel one call: the wait. Nothing was held
/// back, so the re-arm asks nothing of the kernel.
#[test]
fn an_edge_round_trip_is_one_kernel_call() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(r, 1, Interest::READABLE).unwrap();
        for _ in 0..3 {
            rig.fake().write(w, 10);
            let calls = rig.fake().calls();
            assert_eq!(rig.wait(), ["1:r"], "[{}]", os.name);
            assert_eq!(rig.read(r, 100), 10);
            assert_eq!(rig.fake().calls(), calls + 1, "[{}] only the wait", os.name);
        }
    }
}

/// Level mode keeps reporting, and is not re-enabled by anything.
#[test]
fn level_reports_on_every_poll() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(r, 1, Interest::READABLE.level()).unwrap();
        rig.fake().write(w, 10);
        for _ in 0..3 {
            assert_eq!(rig.now(), ["1:r"], "[{}]", os.name);
        }
        assert_eq!(rig.read(r, 100), 10);
        assert_eq!(rig.now(), Vec::<String>::new(), "[{}] drained", os.name);
    }
}

/// Decision 4: Whether a record is still its fd's is asked of the kernel
/// (which dropped the closed fd's filters), not of `fstat`, whose `st_ino`
/// is 0 for every pipe on NetBSD and OpenBSD and recycled on macOS and
/// DragonFly.
#[test]
fn a_reused_number_is_told_from_a_live_registration_by_asking_the_kernel() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_raw(r, 1, Interest::READABLE.oneshot())
            .unwrap();
        let twice = rig.core.register(r, Token(9), Interest::READABLE, false);
        assert_eq!(
            twice.err().map(|e| e.kind()),
            Some(io::ErrorKind::AlreadyExists),
            "[{}] a live registration",
            os.name
        );
        rig.fake().write(w, 1);
        assert_eq!(rig.wait(), ["1:r"], "[{}] the first one kept", os.name);

        // The fd closed without deregistering, its number reused.
        let _w2 = rig.fake().reuse_as_new_reader(r);
        let again = rig.core.reregister(r, Token(2), Interest::READABLE, false);
        assert_eq!(
            again.err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound),
            "[{}]",
            os.name
        );
        let gone = rig.core.deregister(r);
        assert_eq!(
            gone.err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound),
            "[{}]",
            os.name
        );

        let (r3, _w3) = rig.fake().pipe();
        rig.register_raw(r3, 3, Interest::READABLE).unwrap();
        let _w4 = rig.fake().reuse_as_new_reader(r3);
        let (_, stale) = rig
            .core
            .register(r3, Token(4), Interest::READABLE, false)
            .expect("the new file under the reused number");
        assert!(stale, "[{}] the stale record was replaced", os.name);
    }
}

/// Decision 4: a sender's record whose number now names another sender,
/// one whose reader is gone, is stale: `NotFound`, also on NetBSD 10, which
/// refuses that sender's write filter with `EBADF`, a closed fd's errno,
/// and on DragonFly, which refuses it with `EPIPE` but keeps the filter of
/// a sender whose reader went. (On FreeBSD, which deletes that filter
/// itself, the new sender cannot be told from the record's own.)
#[test]
fn a_stale_sender_record_is_not_found_where_the_new_senders_reader_is_gone() {
    let keeps_the_filter = |os: &&&Os| !os.gone_reader_deletes;
    for os in EVERY_OS.iter().filter(keeps_the_filter) {
        let mut rig = rig(os);
        let (_r, w) = rig.fake().pipe();
        rig.register_raw(w, 5, Interest::WRITABLE).unwrap();
        let reader = rig.fake().reuse_as_new_writer(w);
        rig.fake().close(reader);
        let again = rig.core.reregister(w, Token(6), Interest::WRITABLE, false);
        assert_eq!(
            again.err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound),
            "[{}]",
            os.name
        );
    }
}

/// Decision 3: A sender registered after its reader is gone is
/// write-closed at once, whether the kernel refuses the filter (`EPIPE` on
/// FreeBSD and DragonFly, `EBADF` on NetBSD 10) or attaches it with
/// `EV_EOF` (xnu, OpenBSD, NetBSD newest).
#[test]
fn a_sender_whose_reader_is_gone_is_write_closed_at_once() {
    for os in EVERY_OS {
        for interest in [
            Interest::WRITABLE,
            Interest::WRITABLE.level(),
            Interest::WRITABLE.oneshot(),
        ] {
            let mut rig = rig(os);
            let (r, w) = rig.fake().pipe();
            rig.fake().close(r);
            rig.register_end(w, 5, interest)
                .unwrap_or_else(|e| panic!("[{}] register: {e}", os.name));
            assert_eq!(rig.wait(), ["5:w,wc,e"], "[{}] {interest:?}", os.name);
        }
    }
}

/// Decision 3: Write-closed persists as the mode says, on every OS: on
/// every poll in level mode (FreeBSD reports it once and deletes the
/// filter), once in edge and oneshot mode (xnu, NetBSD, OpenBSD and
/// DragonFly would keep reporting it), and again after a oneshot is
/// reregistered.
#[test]
fn write_closed_is_reported_as_the_mode_says() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(w, 5, Interest::WRITABLE.level()).unwrap();
        assert_eq!(rig.now(), ["5:w"], "[{}] room", os.name);
        rig.fake().close(r);
        for i in 0..3 {
            assert_eq!(rig.now(), ["5:w,wc,e"], "[{}] level, poll {i}", os.name);
        }

        for interest in [Interest::WRITABLE, Interest::WRITABLE.oneshot()] {
            let mut rig = self::rig(os);
            let (r, w) = rig.fake().pipe();
            rig.register_end(w, 6, interest).unwrap();
            assert_eq!(rig.now(), ["6:w"], "[{}] {interest:?}", os.name);
            rig.fake().close(r);
            if interest.is_edge() {
                assert_eq!(rig.now(), ["6:w,wc,e"], "[{}] {interest:?}", os.name);
            } else {
                assert_eq!(
                    rig.now(),
                    Vec::<String>::new(),
                    "[{}] oneshot fired",
                    os.name
                );
                rig.core.reregister(w, Token(6), interest, true).unwrap();
                assert_eq!(rig.now(), ["6:w,wc,e"], "[{}] reregistered", os.name);
            }
            for _ in 0..2 {
                assert_eq!(
                    rig.now(),
                    Vec::<String>::new(),
                    "[{}] {interest:?} once",
                    os.name
                );
            }
            assert!(
                would_hang(rig.poll(None)),
                "[{}] nothing left to report",
                os.name
            );
        }
    }
}

/// Decision 2: Oneshot covers both directions: once one filter fired, the other
/// stays quiet until a reregister, as with `EPOLLONESHOT`. (A pipe's read
/// end is "writable" through FreeBSD's reverse buffer, which gives a raw
/// fd both directions.)
#[test]
fn oneshot_for_both_directions_disables_the_other_one() {
    let writable = |os: &&&Os| os.write_on_read_end == fake::Reverse::Writable;
    for os in EVERY_OS.iter().filter(writable) {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        let both = (Interest::READABLE | Interest::WRITABLE).oneshot();
        rig.register_raw(r, 7, both).unwrap();
        assert_eq!(rig.now(), ["7:w"], "[{}] the reverse buffer", os.name);
        rig.fake().write(w, 1);
        // Disabled in the kernel, not only held back here: nothing wakes
        // a poller that waits without a timeout.
        assert!(
            would_hang(rig.poll(None)),
            "[{}] read is disabled too",
            os.name
        );
        rig.reregister_raw(r, 7, Interest::READABLE.oneshot())
            .unwrap();
        assert_eq!(rig.now(), ["7:r"], "[{}] after reregister", os.name);
    }
}

/// "Also: changes, waits and signals": A reregister that fails half-way leaves the record unknown, and the
/// next change deletes and re-adds, so the kernel ends up in the mode
/// asked for. (NetBSD's 2023 rewrite refused a write filter on a read end.)
#[test]
fn a_failed_reregister_converges_at_the_next_one() {
    let mut rig = rig(&fake::NETBSD_1165);
    let (r, w) = rig.fake().pipe();
    rig.register_raw(r, 1, Interest::READABLE.level()).unwrap();
    let both_edge = Interest::READABLE | Interest::WRITABLE;
    let failed = rig.reregister_raw(r, 1, both_edge);
    assert_eq!(
        failed.err().and_then(|e| e.raw_os_error()),
        Some(libc::EINVAL)
    );

    rig.reregister_raw(r, 1, Interest::READABLE.level())
        .unwrap();
    rig.fake().write(w, 1);
    for i in 0..3 {
        assert_eq!(rig.now(), ["1:r"], "level again, poll {i}");
    }
}

/// "Also: changes, waits and signals": a reregister to a new token that
/// fails half-way leaves the events under the old token, the record's, so
/// that the record's bookkeeping still applies to them: here edge mode's
/// hold-back, which skips an event whose token the record does not have.
#[test]
fn a_failed_reregister_keeps_the_old_token() {
    let mut rig = rig(&fake::NETBSD_1165);
    let (r, w) = rig.fake().pipe();
    rig.register_end(r, 1, Interest::READABLE).unwrap();
    let both_edge = Interest::READABLE | Interest::WRITABLE;
    let failed = rig.core.reregister(r, Token(2), both_edge, true);
    assert_eq!(
        failed.err().and_then(|e| e.raw_os_error()),
        Some(libc::EINVAL)
    );

    rig.fake().write(w, 10);
    assert_eq!(rig.wait(), ["1:r"], "the old token");
    assert_eq!(rig.read(r, 4), 4, "a full read: not used up");
    assert_eq!(rig.now(), Vec::<String>::new(), "held back");
}

/// Decision 5: A kernel without `EV_RECEIPT` (old DragonFly) would have its errors
/// paired with the wrong changes: the backend refuses to start there, so
/// `Poll::new()` moves on to poll(2).
#[test]
fn a_kernel_without_receipts_is_unsupported() {
    let err = Core::new(Fake::new(&fake::OLD_DRAGONFLY)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    for os in EVERY_OS {
        assert!(Core::new(Fake::new(os)).is_ok(), "[{}]", os.name);
    }
}

/// Row d of the tables: What a raw fd gets when it asks for a pipe end's other direction
/// differs per OS; pipeloop's own ends never ask (see `pipe`'s docs).
#[test]
fn the_other_direction_of_a_raw_pipe_end_differs_per_os() {
    for os in EVERY_OS.into_iter().chain([&fake::NETBSD_1165]) {
        let mut rig = rig(os);
        let (r, _w) = rig.fake().pipe();
        let got = rig.register_raw(r, 1, Interest::WRITABLE.level());
        match os.write_on_read_end {
            fake::Reverse::Refused(errno) => {
                assert_eq!(got.err().and_then(|e| e.raw_os_error()), Some(errno));
            }
            fake::Reverse::Writable => {
                got.unwrap();
                assert_eq!(rig.now(), ["1:w"], "[{}]", os.name);
            }
            fake::Reverse::QuietUntilEof | fake::Reverse::Never => {
                got.unwrap();
                assert_eq!(rig.now(), Vec::<String>::new(), "[{}]", os.name);
            }
        }
    }
}

/// A pipe end drops its record when it goes, before its fd closes: the
/// number is then unknown to the backend, as on epoll.
#[test]
fn releasing_a_registration_forgets_its_record() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(r, 1, Interest::READABLE).unwrap();
        rig.fake().write(w, 1);
        assert_eq!(rig.wait(), ["1:r"], "[{}]", os.name);
        rig.regs.pop().unwrap().release();
        // Still open (the end closes it next): only the record can answer.
        let again = rig.core.reregister(r, Token(1), Interest::READABLE, true);
        assert_eq!(
            again.err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound),
            "[{}] no record left",
            os.name
        );
        rig.fake().close(r);
        let missing = rig.core.deregister(r);
        assert_eq!(
            missing.err().and_then(|e| e.raw_os_error()),
            Some(libc::EBADF),
            "[{}]",
            os.name
        );
    }
}

/// A waker's `EVFILT_USER` event: triggered from anywhere, reported once
/// per trigger and under its own token (every kernel but DragonFly's
/// overwrites its `udata` with every change, the trigger too), gone when
/// deleted.
#[test]
fn a_user_event_wakes_once_per_trigger() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let ident = rig.core.add_user(Token(42)).unwrap();
        assert_eq!(rig.now(), Vec::<String>::new(), "[{}]", os.name);
        rig.core.trigger_user(ident, Token(42)).unwrap();
        rig.core.trigger_user(ident, Token(42)).unwrap();
        assert_eq!(rig.wait(), ["42:r"], "[{}]", os.name);
        assert_eq!(rig.now(), Vec::<String>::new(), "[{}] cleared", os.name);
        rig.core.delete_user(ident);
        let gone = rig.core.trigger_user(ident, Token(42));
        assert_eq!(
            gone.err().and_then(|e| e.raw_os_error()),
            Some(libc::ENOENT)
        );
    }
}

/// Decision 2: a oneshot registration for both directions whose two filters
/// are ready in the same scan reports once, as `EPOLLONESHOT` does.
#[test]
fn a_oneshot_pair_ready_both_ways_at_once_reports_once() {
    let writable = |os: &&&Os| os.write_on_read_end == fake::Reverse::Writable;
    for os in EVERY_OS.iter().filter(writable) {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.fake().write(w, 1);
        let both = (Interest::READABLE | Interest::WRITABLE).oneshot();
        rig.register_raw(r, 7, both).unwrap();
        let got = rig.now();
        assert_eq!(got.len(), 1, "[{}] one report, got {got:?}", os.name);
        assert_eq!(
            rig.now(),
            Vec::<String>::new(),
            "[{}] until reregister",
            os.name
        );
        rig.reregister_raw(r, 7, both).unwrap();
        assert_eq!(rig.now().len(), 1, "[{}] after reregister", os.name);
    }
}

/// Decision 1: a pipe end handed out as a raw fd (`into_fd`) keeps its
/// registration, but nothing reports its used-up directions any more: it is
/// a raw fd like any other, not held back.
#[test]
fn an_end_handed_out_as_a_raw_fd_is_not_held_back() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(r, 1, Interest::READABLE).unwrap();
        rig.regs.pop().unwrap().hand_over();
        rig.fake().write(w, 10);
        assert_eq!(rig.wait(), ["1:r"], "[{}]", os.name);
        assert_eq!(rig.fake().read(r, 100), 10);
        assert_eq!(rig.fake().read(r, 100), 0, "EAGAIN, which nobody reports");
        rig.fake().write(w, 3);
        assert_eq!(rig.now(), ["1:r"], "[{}] a raw fd like any other", os.name);
    }
}
