//! pipeloop: a self-contained Unix event loop built around pipes.
//!
//! One crate owns the whole path from `pipe2(2)` to readiness dispatch:
//!
//! - [`pipe::new`] makes non-blocking, close-on-exec pipes whose ends are
//!   event [`Source`](event::Source)s;
//! - [`Poll`] waits on hand-written backends: epoll on Linux and Android,
//!   kqueue on macOS and the BSDs, poll(2) everywhere (chosen at run time,
//!   see [`Backend`]);
//! - [`Registry`], [`Token`], [`Interest`] and [`Events`] follow mio 1.x's
//!   names and signatures, so mio code ports by changing paths. The trigger
//!   mode (edge, level, oneshot) rides in the [`Interest`] and every backend
//!   honours all three;
//! - [`Waker`] wakes a blocked poll from any thread;
//! - [`signal::Signals`] turns Unix signals into readable events through the
//!   self-pipe trick;
//! - [`reactor::EventLoop`] runs handlers for sources, timers, signals and
//!   child processes, and work sent from other threads, on top of all that.
//!
//! Runtime dependencies are `libc`, `slab` and `log`, nothing else.
//!
//! # Example
//!
//! A pipe, a waker and a poll loop:
//!
//! ```
//! use pipeloop::{Events, Interest, Poll, Token, Waker};
//! use std::io::{ErrorKind, Read, Write};
//! use std::time::Duration;
//!
//! const PIPE: Token = Token(0);
//! const WAKE: Token = Token(1);
//!
//! let mut poll = Poll::new()?;
//! let (mut sender, mut receiver) = pipeloop::pipe::new()?;
//! poll.registry().register(&mut receiver, PIPE, Interest::READABLE)?;
//! let waker = Waker::new(poll.registry(), WAKE)?;
//!
//! sender.write_all(b"hello")?;
//! waker.wake()?;
//!
//! let mut events = Events::with_capacity(8);
//! let mut seen = Vec::new();
//! while seen.len() < 2 {
//!     poll.poll(&mut events, Some(Duration::from_secs(5)))?;
//!     for event in &events {
//!         match event.token() {
//!             PIPE => {
//!                 let mut buf = [0; 64];
//!                 // Edge-triggered: read until a short read or WouldBlock.
//!                 loop {
//!                     match receiver.read(&mut buf) {
//!                         Ok(n) if n < buf.len() => { seen.push(&buf[..n] == b"hello"); break; }
//!                         Ok(_) => continue,
//!                         Err(e) if e.kind() == ErrorKind::WouldBlock => break,
//!                         Err(e) => return Err(e),
//!                     }
//!                 }
//!             }
//!             WAKE => seen.push(true),
//!             _ => unreachable!(),
//!         }
//!     }
//! }
//! assert_eq!(seen, [true, true]);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Porting from mio
//!
//! Code written for mio 1.x's `Poll`, `Registry`, `Token`, `Interest`,
//! `Events`, `event::Source`, `unix::SourceFd`, `unix::pipe` and `Waker`
//! compiles by changing paths (`mio::unix::SourceFd` is
//! [`pipeloop::SourceFd`](SourceFd); `Interest`'s `Debug` output and the
//! `is_aio`/`is_lio` methods match too). The differences are deliberate:
//!
//! - mio's debug builds allow one `Waker` per `Poll` and register a source
//!   with one `Poll` only; pipeloop allows several wakers per `Poll`, each
//!   reported under its own token, and a pipe end registered with several
//!   `Poll`s (each sees its events);
//! - the trigger mode rides in the [`Interest`]: edge by default, as mio's
//!   only mode is, with [`level`](Interest::level) and
//!   [`oneshot`](Interest::oneshot) on every backend;
//! - dropping a registered pipe end or [`Waker`] ends its registration on
//!   every backend (mio leaves that to the kernel, and epoll keeps it while a
//!   duplicate of the fd lives);
//! - [`Poll::new`] honours the `PIPELOOP_BACKEND` environment variable.
//!
//! # Logging
//!
//! pipeloop logs through the [`log`] crate: `debug!` for the backend chosen,
//! `trace!` for every registration change and every wake-up of `poll` (how
//! many events, how long it slept). With no logger installed this costs a
//! branch.

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

#[cfg(not(unix))]
compile_error!("pipeloop supports Unix systems only");

pub mod event;
mod interest;
pub mod pipe;
mod poll;
pub mod reactor;
pub mod signal;
mod source_fd;
mod sys;
mod token;
mod waker;

pub use event::{Event, Events};
pub use interest::Interest;
pub use poll::{BACKEND_ENV, Backend, Poll, Registry};
pub use source_fd::SourceFd;
pub use token::Token;
pub use waker::Waker;
