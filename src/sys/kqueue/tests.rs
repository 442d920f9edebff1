//! The kqueue backend's logic against the scripted kernel (`fake.rs`), one
//! test per kernel behaviour in docs/kqueue.md, on every OS that has it.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::core::{Core, Kernel, Registration};
use super::fake::{self, EVERY_OS, Fake, Os};
use super::kevent::Kev;
use crate::event::Event;
use crate::sys::RawEvent;
use crate::{Interest, Token};

/// A backend on a scripted kernel, with a buffer to poll into.
struct Rig {
    core: Arc<Core<Fake>>,
    out: Vec<Kev>,
    events: Vec<RawEvent>,
    /// Registrations kept alive (dropping one forgets its record).
    regs: Vec<Registration<Fake>>,
}

fn rig(os: &'static Os) -> Rig {
    Rig {
        core: Arc::new(Core::new(Fake::new(os)).expect("a kernel with receipts")),
        out: Vec::with_capacity(16),
        events: Vec::with_capacity(16),
        regs: Vec::new(),
    }
}

impl Rig {
    fn fake(&self) -> &Fake {
        self.core.kernel()
    }

    fn os(&self) -> &'static str {
        self.fake().os().name
    }

    /// Registers `fd` as a pipeloop pipe end would (it reports used-up
    /// directions) and keeps the registration.
    fn register_end(&mut self, fd: i32, token: usize, interest: Interest) -> io::Result<()> {
        let (reg, _) = self.core.register(fd, Token(token), interest, true)?;
        self.regs.push(reg);
        Ok(())
    }

    /// Registers `fd` as a `SourceFd` would: nothing re-arms it.
    fn register_raw(&mut self, fd: i32, token: usize, interest: Interest) -> io::Result<()> {
        let (reg, _) = self.core.register(fd, Token(token), interest, false)?;
        self.regs.push(reg);
        Ok(())
    }

    fn reregister_end(&mut self, fd: i32, token: usize, interest: Interest) -> io::Result<()> {
        let reg = self.core.reregister(fd, Token(token), interest, true)?;
        self.regs.push(reg);
        Ok(())
    }

    fn reregister_raw(&mut self, fd: i32, token: usize, interest: Interest) -> io::Result<()> {
        let reg = self.core.reregister(fd, Token(token), interest, false)?;
        self.regs.push(reg);
        Ok(())
    }

    /// What a pipe end does after a read of `asked` bytes: re-arms if it
    /// came back short.
    fn read(&self, fd: i32, asked: usize) -> usize {
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

    /// One poll: the events as "token:flags" strings, or the error.
    fn poll(&mut self, timeout: Option<Duration>) -> io::Result<Vec<String>> {
        self.core.select(&mut self.out, &mut self.events, timeout)?;
        Ok(self.events.iter().map(describe).collect())
    }

    /// A poll that returns at once.
    fn now(&mut self) -> Vec<String> {
        self.poll(Some(Duration::ZERO)).unwrap()
    }

    /// A poll without a timeout, which must not be one that would hang.
    fn wait(&mut self) -> Vec<String> {
        match self.poll(None) {
            Ok(events) => events,
            Err(e) => panic!("[{}] poll(None): {e}", self.os()),
        }
    }
}

/// "token:" and the flags `Event` reports: r(eadable), w(ritable),
/// rc (read closed), wc (write closed), e(rror).
fn describe(raw: &RawEvent) -> String {
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

/// Item 1: Edge mode on a pipe end is reported once, and again only after a
/// read used the pipe up, although FreeBSD, xnu and OpenBSD wake the
/// reader's own knote on every read.
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

/// Item 1: A write that lands between a reader's last (short) read and its
/// re-arm, and whose event a poll in another thread held back, is reported
/// once the re-arm asks the kernel again. `EV_ENABLE` would not do: OpenBSD
/// re-runs the filter only for a disabled knote; `EV_ADD` re-runs it on
/// every OS.
#[test]
fn a_write_held_back_before_the_rearm_is_reported_after_it() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(r, 1, Interest::READABLE).unwrap();
        rig.fake().write(w, 10);
        assert_eq!(rig.wait(), ["1:r"], "[{}]", os.name);
        // The reader's short read, before it gets to report it...
        assert_eq!(rig.fake().read(r, 100), 10);
        // ...a write, and a poll on another thread, which holds it back.
        rig.fake().write(w, 5);
        assert_eq!(rig.now(), Vec::<String>::new(), "[{}] held back", os.name);
        rig.regs[0].rearm(Interest::READABLE);
        assert_eq!(rig.now(), ["1:r"], "[{}] after the re-arm", os.name);
    }
}

/// Item 1: After end of file is reported, reads that come back short do not
/// report it again: that event is the last one (on xnu a registered
/// receiver otherwise reports end of file after every read).
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

/// Item 2: Whether a record is still its fd's is asked of the kernel (which
/// dropped the closed fd's filters), not of `fstat`, whose `st_ino` is 0
/// for every pipe on NetBSD, OpenBSD and DragonFly.
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

/// Item 3: A sender registered after its reader is gone is write-closed at
/// once, whether the kernel refuses the filter (EPIPE on FreeBSD and
/// OpenBSD, EBADF on NetBSD) or attaches it with `EV_EOF` (xnu,
/// DragonFly).
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

/// Item 3: A sender registered from another thread while the poller sleeps
/// in `kevent` must wake it, as epoll reports a new registration's state at
/// once: where the kernel refuses the filter (FreeBSD, NetBSD, DragonFly)
/// it has nothing to report by itself.
#[test]
fn registering_a_write_closed_sender_wakes_a_sleeping_poller() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.fake().close(r);
        // The poller has entered `kevent(None)`, its changelist applied.
        rig.core
            .waiting
            .store(true, std::sync::atomic::Ordering::SeqCst);
        rig.register_end(w, 5, Interest::WRITABLE).unwrap();
        let mut out = [std::mem::MaybeUninit::uninit(); 4];
        let woken = rig.fake().kevent(&[], &mut out, None);
        assert!(
            woken.is_ok(),
            "[{}] the sleeping poller: {woken:?}",
            os.name
        );
        // (What it collected would be translated by its `select`; the
        // reports themselves are checked by the tests above and below.)
    }
}

/// Item 8: Write-closed persists as the mode says, on every OS: on every poll
/// in level mode (FreeBSD reports it once and deletes the filter), once in
/// edge and oneshot mode (xnu, NetBSD, OpenBSD and DragonFly would keep
/// reporting it), and again after a oneshot is reregistered.
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

/// Item 5: Oneshot covers both directions: once one filter fired, the other
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
        assert_eq!(
            rig.now(),
            Vec::<String>::new(),
            "[{}] read is disabled too",
            os.name
        );
        rig.reregister_raw(r, 7, Interest::READABLE.oneshot())
            .unwrap();
        assert_eq!(rig.now(), ["7:r"], "[{}] after reregister", os.name);
    }
}

/// Item 6: A reregister that fails half-way leaves the record unknown, and the
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

/// Item 9: A kernel without `EV_RECEIPT` (old DragonFly) would have its errors
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

/// Item 4: What a raw fd gets when it asks for a pipe end's other direction
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
            fake::Reverse::QuietUntilEof => {
                got.unwrap();
                assert_eq!(rig.now(), Vec::<String>::new(), "[{}]", os.name);
            }
        }
    }
}

/// A record dropped with its pipe end (before the fd closes) leaves
/// nothing queued for the number.
#[test]
fn releasing_a_registration_forgets_its_record() {
    let mut rig = rig(&fake::FREEBSD_OS);
    let (r, w) = rig.fake().pipe();
    rig.register_end(r, 1, Interest::READABLE).unwrap();
    rig.fake().write(w, 1);
    assert_eq!(rig.wait(), ["1:r"]);
    assert_eq!(rig.read(r, 10), 1, "short: a re-enable is queued");
    rig.regs.pop().unwrap().release();
    rig.fake().close(r);
    let missing = rig.core.deregister(r);
    assert_eq!(
        missing.err().and_then(|e| e.raw_os_error()),
        Some(libc::EBADF)
    );
    let calls = rig.fake().calls();
    assert_eq!(rig.now(), Vec::<String>::new());
    assert_eq!(
        rig.fake().calls(),
        calls + 1,
        "one wait, nothing failed and retried"
    );
}

/// A waker's `EVFILT_USER` event: triggered from anywhere, reported once
/// per trigger, gone when deleted.
#[test]
fn a_user_event_wakes_once_per_trigger() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let ident = rig.core.add_user(Token(42)).unwrap();
        assert_eq!(rig.now(), Vec::<String>::new(), "[{}]", os.name);
        rig.core.trigger_user(ident).unwrap();
        rig.core.trigger_user(ident).unwrap();
        assert_eq!(rig.wait(), ["42:r"], "[{}]", os.name);
        assert_eq!(rig.now(), Vec::<String>::new(), "[{}] cleared", os.name);
        rig.core.delete_user(ident);
        let gone = rig.core.trigger_user(ident);
        assert_eq!(
            gone.err().and_then(|e| e.raw_os_error()),
            Some(libc::ENOENT)
        );
    }
}

/// Item 2 and 8: FreeBSD deletes the writer's knote once it reported
/// `EV_EOF` (the reader's close made it `EV_ONESHOT`). A reregister from
/// another thread between that report and the poller's bookkeeping finds no
/// write filter, which must not make the live registration stale.
#[test]
fn a_reregister_racing_the_end_of_file_report_keeps_the_registration() {
    let mut rig = rig(&fake::FREEBSD_OS);
    let (r, w) = rig.fake().pipe();
    rig.register_end(w, 5, Interest::WRITABLE.level()).unwrap();
    assert_eq!(rig.now(), ["5:w"]);
    rig.fake().close(r);
    // The poller's kevent returns the report; it has not looked at it yet.
    let mut out = [std::mem::MaybeUninit::uninit(); 4];
    let n = rig
        .fake()
        .kevent(&[], &mut out, Some(Duration::ZERO))
        .unwrap();
    assert_eq!(n, 1, "the EV_EOF report");
    rig.reregister_end(w, 6, Interest::WRITABLE.level())
        .expect("the registration is live");
    for _ in 0..2 {
        assert_eq!(rig.now(), ["6:w,wc,e"], "write-closed, level");
    }
    rig.core.deregister(w).expect("still registered");
}

/// Item 5: a oneshot registration for both directions whose two filters
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

/// Item 1: a pipe end handed out as a raw fd (`into_fd`) keeps its
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

/// What the backend sends the kernel for a registration must reach that
/// registration's file. Here the end whose reader is gone is dropped and its
/// number reused for a new sender, registered, while the poller is on its
/// way into `kevent`: the old record's changes must not touch the new one.
#[test]
fn changes_for_a_dropped_end_never_reach_the_file_that_reuses_its_number() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(w, 5, Interest::WRITABLE).unwrap();
        assert_eq!(rig.now(), ["5:w"], "[{}]", os.name);
        rig.fake().close(r);
        assert_eq!(rig.now(), ["5:w,wc,e"], "[{}]", os.name);
        let core = Arc::downgrade(&rig.core);
        let old = rig.regs.pop().unwrap();
        rig.fake().meanwhile(move || {
            let core = core.upgrade().unwrap();
            old.release(); // the Sender is dropped,
            let _reader = core.kernel().reuse_as_new_writer(w); // w is reused,
            let (reg, _) = core
                .register(w, Token(6), Interest::WRITABLE, true)
                .unwrap();
            std::mem::forget(reg); // and the new Sender registered.
        });
        assert_eq!(rig.now(), ["6:w"], "[{}] the new sender's event", os.name);
        rig.core.deregister(w).expect("its filter is still there");
    }
}

/// The same with a re-arm's ask: it must not create a filter on a file that
/// reuses the number and that nobody registered.
#[test]
fn a_rearm_never_creates_a_filter_on_a_reused_number() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.register_end(r, 1, Interest::READABLE).unwrap();
        rig.fake().write(w, 10);
        assert_eq!(rig.wait(), ["1:r"]);
        rig.fake().read(r, 4);
        rig.fake().write(w, 1);
        let _ = rig.now(); // held back (or nothing, where reads do not re-fire)
        assert_eq!(
            rig.read(r, 100),
            7,
            "short: re-armed, the kernel asked again"
        );
        let core = Arc::downgrade(&rig.core);
        let old = rig.regs.pop().unwrap();
        let new_writer = Arc::new(std::sync::Mutex::new(None));
        let slot = Arc::clone(&new_writer);
        rig.fake().meanwhile(move || {
            let core = core.upgrade().unwrap();
            old.release();
            *slot.lock().unwrap() = Some(core.kernel().reuse_as_new_reader(r));
        });
        assert_eq!(rig.now(), Vec::<String>::new(), "[{}]", os.name);
        let w2 = new_writer.lock().unwrap().unwrap();
        rig.fake().write(w2, 5);
        assert_eq!(
            rig.now(),
            Vec::<String>::new(),
            "[{}] an unregistered file",
            os.name
        );
    }
}

/// Item 1: a poller asleep in `kevent` that collects a new registration's
/// first event while the registration is still being made (the kernel has
/// the filter, the record is not written yet) must still account for it:
/// otherwise, where reads wake the reader's own filter, the next partial
/// read reports the pipe a second time.
#[test]
fn the_first_event_of_a_registration_in_the_making_is_accounted_for() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.fake().write(w, 10);
        let core = Arc::clone(&rig.core);
        let registrar = Arc::new(std::sync::Mutex::new(None));
        let handle = Arc::clone(&registrar);
        // While this thread's poll is in `kevent`, another thread registers
        // `r`, and stops right after the kernel call: this poll's scan and
        // translation happen then. A poll that waits for the record keeps
        // the other thread waiting, so it gives up on that after a while.
        rig.fake().meanwhile(move || {
            let (added, told) = std::sync::mpsc::channel();
            let (go, gone) = std::sync::mpsc::channel::<()>();
            let other = Arc::clone(&core);
            core.kernel().after_change(move || {
                let _ = added.send(());
                let _ = gone.recv_timeout(Duration::from_millis(100));
            });
            *handle.lock().unwrap() = Some((
                std::thread::spawn(move || {
                    let (reg, _) = other
                        .register(r, Token(1), Interest::READABLE, true)
                        .unwrap();
                    reg
                }),
                go,
            ));
            told.recv().unwrap();
        });
        assert_eq!(
            rig.now(),
            ["1:r"],
            "[{}] the new registration's event",
            os.name
        );
        let (thread, go) = registrar.lock().unwrap().take().unwrap();
        drop(go);
        rig.regs.push(thread.join().unwrap());
        assert_eq!(rig.read(r, 4), 4, "a full read: not used up");
        assert_eq!(
            rig.now(),
            Vec::<String>::new(),
            "[{}] reported once",
            os.name
        );
    }
}
