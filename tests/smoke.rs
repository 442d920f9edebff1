//! The first thing to check: a pipe is writable, then readable with the same
//! bytes, on every backend.

mod util;

use std::io::{Read, Write};

use pipeloop::{Events, Interest, Token, pipe};
use util::{Expect, expect_events, for_each_backend};

#[test]
fn pipe_smoke_writable_write_readable_read() {
    for_each_backend(|poll| {
        let (mut sender, mut receiver) = pipe::new().unwrap();
        poll.registry()
            .register(&mut sender, Token(0), Interest::WRITABLE)
            .unwrap();
        poll.registry()
            .register(&mut receiver, Token(1), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);

        expect_events(poll, &mut events, &[Expect::writable(0)]);
        sender.write_all(b"hello, pipe").unwrap();
        expect_events(poll, &mut events, &[Expect::readable(1)]);

        let mut buf = [0u8; 64];
        let n = receiver.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello, pipe");
    });
}
