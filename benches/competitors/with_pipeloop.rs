//! pipeloop, as its documentation says to use it.

use std::io::{self, ErrorKind, Read, Write};
use std::time::Duration;

use pipeloop::{Backend, Events, Interest, Poll, Token, Waker, pipe};

use super::{BUF, Rounds, check};

pub struct Pipes {
    poll: Poll,
    timeout: Option<Duration>,
    events: Events,
    senders: Vec<pipe::Sender>,
    receivers: Vec<pipe::Receiver>,
    buf: [u8; BUF],
}

impl Pipes {
    pub fn new(
        backend: Backend,
        interest: Interest,
        n: usize,
        timeout: Option<Duration>,
    ) -> io::Result<Pipes> {
        let poll = Poll::with_backend(backend)?;
        let mut senders = Vec::with_capacity(n);
        let mut receivers = Vec::with_capacity(n);
        for k in 0..n {
            let (sender, mut receiver) = pipe::new()?;
            poll.registry()
                .register(&mut receiver, Token(k), interest)?;
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
        check(wrote == 1, "pipeloop: write")?;

        self.poll.poll(&mut self.events, self.timeout)?;
        let mut seen = 0;
        for event in &self.events {
            check(
                event.token() == Token(k) && event.is_readable(),
                "pipeloop: event",
            )?;
            seen += 1;
        }
        check(seen == 1, "pipeloop: one event")?;

        // Edge mode: drain until a short read (the documented guarantee that
        // saves the read that would only say WouldBlock) or WouldBlock. In
        // level mode the same code does one read, as a level user would.
        let mut got = 0;
        loop {
            match (&self.receivers[k]).read(&mut self.buf) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    got += n;
                    if n < BUF {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        check(got == 1 && self.buf[0] == byte, "pipeloop: read back")
    }
}

pub struct Wake {
    poll: Poll,
    events: Events,
    waker: Waker,
}

impl Wake {
    pub fn new(backend: Backend, pipe: bool) -> io::Result<Wake> {
        let poll = Poll::with_backend(backend)?;
        let waker = if pipe {
            Waker::with_pipe(poll.registry(), Token(0))?
        } else {
            Waker::new(poll.registry(), Token(0))?
        };
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
                "pipeloop: wake event",
            )?;
            seen += 1;
        }
        check(seen == 1, "pipeloop: one wake event")
    }
}
