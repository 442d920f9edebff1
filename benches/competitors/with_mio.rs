//! mio 1.x, as its documentation says to use it: edge-triggered, so every
//! readiness event is followed by reads until `WouldBlock`.

use std::io::{self, ErrorKind, Read, Write};
use std::time::Duration;

use mio::unix::pipe;
use mio::{Events, Interest, Poll, Token, Waker};

use super::{BUF, Rounds, check};

/// The backend mio was built with: it cannot be asked at run time, so this
/// follows the cfg that forces its poll(2) selector.
pub fn backend() -> &'static str {
    if cfg!(mio_unsupported_force_poll_poll) {
        "poll(2) (cfg mio_unsupported_force_poll_poll)"
    } else {
        "epoll (default on Linux; cfg mio_unsupported_force_poll_poll not set)"
    }
}

pub struct Pipes {
    poll: Poll,
    timeout: Option<Duration>,
    events: Events,
    senders: Vec<pipe::Sender>,
    receivers: Vec<pipe::Receiver>,
    buf: [u8; BUF],
}

impl Pipes {
    pub fn new(n: usize, timeout: Option<Duration>) -> io::Result<Pipes> {
        let poll = Poll::new()?;
        let mut senders = Vec::with_capacity(n);
        let mut receivers = Vec::with_capacity(n);
        for k in 0..n {
            let (sender, mut receiver) = pipe::new()?;
            poll.registry()
                .register(&mut receiver, Token(k), Interest::READABLE)?;
            senders.push(sender);
            receivers.push(receiver);
        }
        Ok(Pipes {
            poll,
            timeout,
            events: Events::with_capacity(64),
            senders,
            receivers,
            buf: [0; BUF],
        })
    }
}

impl Rounds for Pipes {
    #[inline]
    fn round(&mut self, k: usize, byte: u8) -> io::Result<()> {
        let wrote = (&self.senders[k]).write(&[byte])?;
        check(wrote == 1, "mio: write")?;

        self.poll.poll(&mut self.events, self.timeout)?;
        let mut seen = 0;
        for event in &self.events {
            check(
                event.token() == Token(k) && event.is_readable(),
                "mio: event",
            )?;
            seen += 1;
        }
        check(seen == 1, "mio: one event")?;

        // mio: "read until WouldBlock" after every edge.
        let mut got = 0;
        loop {
            match (&self.receivers[k]).read(&mut self.buf[got..]) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        check(got == 1 && self.buf[0] == byte, "mio: read back")
    }
}

pub struct Wake {
    poll: Poll,
    events: Events,
    waker: Waker,
}

impl Wake {
    pub fn new() -> io::Result<Wake> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), Token(0))?;
        Ok(Wake {
            poll,
            events: Events::with_capacity(64),
            waker,
        })
    }
}

impl Rounds for Wake {
    #[inline]
    fn round(&mut self, _k: usize, _byte: u8) -> io::Result<()> {
        self.waker.wake()?;
        self.poll.poll(&mut self.events, None)?;
        let mut seen = 0;
        for event in &self.events {
            check(
                event.token() == Token(0) && event.is_readable(),
                "mio: wake event",
            )?;
            seen += 1;
        }
        check(seen == 1, "mio: one wake event")
    }
}
