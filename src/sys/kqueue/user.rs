//! Wakers' `EVFILT_USER` events, on the kqueue backend's logic.

use std::io;
use std::sync::atomic::Ordering;

use super::core::{Core, Kernel};
use super::kevent::Kev;
use super::plan::os_error;
use crate::Token;

/// Wakers' `EVFILT_USER` events (OpenBSD's waker is a pipe instead).
#[cfg_attr(not(any(pipeloop_evfilt_user, test)), allow(dead_code))]
impl<K: Kernel> Core<K> {
    /// Adds an `EVFILT_USER` event for a waker; returns its ident.
    pub(crate) fn add_user(&self, token: Token) -> io::Result<usize> {
        let c = K::C;
        let ident = self.next_user_ident.fetch_add(1, Ordering::Relaxed);
        let add = K::to_raw(&Kev {
            ident,
            filter: c.evfilt_user,
            flags: c.ev_add | c.ev_clear | c.ev_receipt,
            udata: token.0,
            ..Kev::default()
        });
        match self.receipts(&[add])?[0] {
            0 => Ok(ident),
            errno => Err(os_error(errno)),
        }
    }

    /// Triggers a waker's `EVFILT_USER` event: one system call. With a
    /// receipt and room for it, so that the call never scans (and steals a
    /// poller's events) and a failure is never written past the list
    /// (DragonFly writes errors without checking the room). With the
    /// waker's token too: every kernel but DragonFly's overwrites an
    /// `EVFILT_USER` knote's `udata` with every change that is not a delete
    /// (OpenBSD's too, in `filt_usermodify`, though its waker here is a
    /// pipe), so a trigger without it would report the wake under token 0.
    pub(crate) fn trigger_user(&self, ident: usize, token: Token) -> io::Result<()> {
        let trigger = K::to_raw(&Kev {
            ident,
            filter: K::C.evfilt_user,
            flags: K::C.ev_receipt,
            fflags: K::C.note_trigger,
            udata: token.0,
            ..Kev::default()
        });
        match self.receipts(&[trigger])?[0] {
            0 => Ok(()),
            errno => Err(os_error(errno)),
        }
    }

    pub(crate) fn delete_user(&self, ident: usize) {
        let delete = K::to_raw(&Kev {
            ident,
            filter: K::C.evfilt_user,
            flags: K::C.ev_delete | K::C.ev_receipt,
            ..Kev::default()
        });
        let _ = self.receipts(&[delete]);
    }
}
