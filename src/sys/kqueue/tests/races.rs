//! The kqueue backend's logic when other threads act meanwhile: a poll
//! on its way into `kevent` or asleep in it, while a pipe end is read,
//! re-armed, dropped, registered or reregistered elsewhere.

use std::sync::Arc;
use std::time::Duration;

use super::rig;
use crate::sys::kqueue::core::Kernel;
use crate::sys::kqueue::fake::{self, EVERY_OS};
use crate::{Interest, Token};

/// Decision 1: A write that lands between a reader's last (short) read and its
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

/// Decision 3: A sender registered from another thread while the poller sleeps
/// in `kevent` must wake it, as epoll reports a new registration's state at
/// once: where the kernel refuses the filter (FreeBSD, NetBSD 10,
/// DragonFly) it has nothing to report by itself.
#[test]
fn registering_a_write_closed_sender_wakes_a_sleeping_poller() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (r, w) = rig.fake().pipe();
        rig.fake().close(r);
        // The poller has entered `kevent(None)`.
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

/// Decisions 3 and 4: FreeBSD deletes the writer's knote once it reported
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
            core.register(w, Token(6), Interest::WRITABLE, true)
                .unwrap(); // and the new Sender registered.
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

/// Decision 1: a poller asleep in `kevent` that collects a new registration's
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

/// Decision 3: `EBADF` from adding a write filter means "the reader is gone"
/// only on NetBSD 10, and there too it may mean "the fd was closed". A
/// sender closed when `register` ran, its number reused by a new sender
/// before the backend looks again, is `EBADF`, as on epoll; not the new
/// file registered write-closed without a kernel filter.
#[test]
fn registering_a_closed_fd_whose_number_is_reused_meanwhile_is_ebadf() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (_r, w) = rig.fake().pipe();
        rig.fake().close(w);
        reuse_as_a_new_sender_after_the_next_change(&rig, w);
        let got = rig.core.register(w, Token(5), Interest::WRITABLE, true);
        assert_ebadf_and_nothing_reported(&mut rig, got);
        rig.register_end(w, 6, Interest::WRITABLE)
            .unwrap_or_else(|e| panic!("[{}] the new sender: {e}", os.name));
        assert_eq!(rig.now(), ["6:w"], "[{}] the new sender", os.name);
    }
}

/// Decision 4: the same for a reregister of a sender registered writable
/// only. xnu answers the probe of a closed fd with `ENOENT`, as for a stale
/// record, and the add of its write filter with `EBADF`: the fd was closed,
/// whatever the number names by the time the backend looks.
#[test]
fn reregistering_a_closed_sender_whose_number_is_reused_meanwhile_is_ebadf() {
    for os in EVERY_OS {
        let mut rig = rig(os);
        let (_r, w) = rig.fake().pipe();
        rig.register_raw(w, 5, Interest::WRITABLE).unwrap();
        rig.fake().close(w); // without deregistering
        reuse_as_a_new_sender_after_the_next_change(&rig, w);
        let got = rig.core.reregister(w, Token(6), Interest::WRITABLE, false);
        assert_ebadf_and_nothing_reported(&mut rig, got);
        rig.register_raw(w, 7, Interest::WRITABLE)
            .unwrap_or_else(|e| panic!("[{}] the new sender: {e}", os.name));
        assert_eq!(rig.now(), ["7:w"], "[{}] the new sender", os.name);
    }
}

/// Another thread's `close` and `pipe` racing the backend: right after the
/// next change reaches the kernel, `w`'s number names a new sender.
fn reuse_as_a_new_sender_after_the_next_change(rig: &super::Rig, w: std::os::fd::RawFd) {
    let core = Arc::downgrade(&rig.core);
    rig.fake().after_change(move || {
        let _reader = core.upgrade().unwrap().kernel().reuse_as_new_writer(w);
    });
}

/// `got` is `EBADF`, as on epoll, and nothing is reported for the file.
fn assert_ebadf_and_nothing_reported<T: std::fmt::Debug>(
    rig: &mut super::Rig,
    got: std::io::Result<T>,
) {
    let os = rig.os();
    assert_eq!(
        got.err().and_then(|e| e.raw_os_error()),
        Some(libc::EBADF),
        "[{os}]"
    );
    assert_eq!(rig.now(), Vec::<String>::new(), "[{os}] nothing");
}

/// A timed poll that goes round again waits for what is left of its
/// timeout, counted from its start, also when nothing was held back when it
/// began: here the wake-up timer of a write-closed report (which another
/// thread may add at any time, and take back by deregistering) wakes it
/// with nothing to report after a while.
#[test]
fn a_timed_poll_that_goes_round_again_waits_only_for_the_rest() {
    let timeout = Duration::from_secs(10);
    let slept = Duration::from_millis(20);
    for os in EVERY_OS {
        let mut rig = rig(os);
        let core = Arc::downgrade(&rig.core);
        rig.fake().meanwhile(move || {
            std::thread::sleep(slept); // asleep in kevent...
            core.upgrade().unwrap().wake_poller(); // ...until the timer fires
        });
        let got = rig.poll(Some(timeout)).unwrap();
        assert_eq!(got, Vec::<String>::new(), "[{}]", os.name);
        let waits = rig.fake().waits();
        assert_eq!(waits.len(), 2, "[{}] {waits:?}", os.name);
        let rest = waits[1].unwrap();
        assert!(
            rest <= timeout - slept,
            "[{}] waited again {rest:?}",
            os.name
        );
    }
}
