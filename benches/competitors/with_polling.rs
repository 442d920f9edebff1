//! polling 3.x, as its documentation says to use it: `Event::readable` is
//! oneshot, so after handling an event the source is re-armed with
//! `modify`. One read is enough: if bytes were left, the re-armed
//! registration reports them again.

use std::fs::File;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::time::Duration;

use polling::{Event, Events, Poller};

use super::{BUF, Rounds, check, raw};

/// Which backend polling uses: asked at run time where polling tells
/// (`supports_edge` is false only on its poll(2) backend), and the cfg that
/// forces the poll(2) backend.
pub fn backend() -> String {
    let cfg = if cfg!(polling_test_poll_backend) {
        "cfg polling_test_poll_backend set"
    } else {
        "cfg polling_test_poll_backend not set"
    };
    match Poller::new() {
        Ok(p) if p.supports_edge() => format!("epoll (supports_edge() = true; {cfg})"),
        Ok(_) => format!("poll(2) (supports_edge() = false; {cfg})"),
        Err(e) => format!("unknown ({e}; {cfg})"),
    }
}

fn events() -> Events {
    Events::with_capacity(NonZeroUsize::new(64).expect("64 is not zero"))
}

pub struct Pipes {
    poller: Poller,
    timeout: Option<Duration>,
    events: Events,
    senders: Vec<File>,
    receivers: Vec<File>,
    buf: [u8; BUF],
}

impl Pipes {
    pub fn new(n: usize, timeout: Option<Duration>) -> io::Result<Pipes> {
        let poller = Poller::new()?;
        let mut pipes = Pipes {
            poller,
            timeout,
            events: events(),
            senders: Vec::with_capacity(n),
            receivers: Vec::with_capacity(n),
            buf: [0; BUF],
        };
        for k in 0..n {
            let (read, write) = raw::pipe()?;
            let receiver = File::from(read);
            // SAFETY: the receiver is deleted from the poller in `drop`,
            // before it is closed.
            unsafe { pipes.poller.add(&receiver, Event::readable(k))? };
            pipes.senders.push(File::from(write));
            pipes.receivers.push(receiver);
        }
        Ok(pipes)
    }
}

impl Drop for Pipes {
    fn drop(&mut self) {
        for receiver in &self.receivers {
            let _ = self.poller.delete(receiver);
        }
    }
}

impl Rounds for Pipes {
    #[inline]
    fn round(&mut self, k: usize, byte: u8) -> io::Result<()> {
        let wrote = (&self.senders[k]).write(&[byte])?;
        check(wrote == 1, "polling: write")?;

        self.events.clear();
        self.poller.wait(&mut self.events, self.timeout)?;
        let mut seen = 0;
        for event in self.events.iter() {
            check(event.key == k && event.readable, "polling: event")?;
            seen += 1;
        }
        check(seen == 1, "polling: one event")?;

        let got = (&self.receivers[k]).read(&mut self.buf)?;
        check(got == 1 && self.buf[0] == byte, "polling: read back")?;
        self.poller.modify(&self.receivers[k], Event::readable(k))
    }
}

pub struct Wake {
    poller: Poller,
    events: Events,
}

impl Wake {
    pub fn new() -> io::Result<Wake> {
        Ok(Wake {
            poller: Poller::new()?,
            events: events(),
        })
    }
}

impl Rounds for Wake {
    #[inline]
    fn round(&mut self, _k: usize, _byte: u8) -> io::Result<()> {
        self.poller.notify()?;
        self.events.clear();
        // A notification produces no event: `wait` returning is the proof
        // (without it, a wait with no timeout would never return).
        let n = self.poller.wait(&mut self.events, None)?;
        check(n == 0, "polling: notify gives no event")
    }
}
