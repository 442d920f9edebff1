//! A printable view of a loop, for people learning from it.

use std::fmt;
use std::os::fd::AsRawFd;
use std::time::Instant;

use super::inner::{Inner, Kind};
use super::key::{self, Key, Part};

/// What [`EventLoop::describe`](super::EventLoop::describe) returns: prints
/// one line per thing the loop holds.
///
/// ```text
/// event loop on epoll: 4 entries
///   Key { index: 0, serial: 0 }  source  token 0  fd 5  READABLE
///   Key { index: 1, serial: 1 }  timer  next in 9.98ms, every 10ms
///   Key { index: 2, serial: 2 }  signals SIGINT, SIGTERM  token 8  fd 7
///   Key { index: 3, serial: 3 }  child  pid 4242  stdout token 12 fd 9, stderr token 13 fd 11, exit token 14 fd 12
/// ```
pub struct Describe<'a, T> {
    pub(super) inner: &'a Inner<T>,
    pub(super) backend: crate::Backend,
}

impl<T> fmt::Display for Describe<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner;
        writeln!(
            f,
            "event loop on {}: {} entries",
            self.backend,
            inner.live_entries()
        )?;
        let now = Instant::now();
        for (index, entry) in inner.entries.iter() {
            let key = Key {
                index,
                serial: entry.serial,
            };
            let token = key::token(index, Part::Main).0;
            match &entry.kind {
                Kind::Io(Some(io)) => writeln!(
                    f,
                    "  {key:?}  source  token {token}  fd {}  {:?}",
                    io.fd(),
                    io.interest()
                )?,
                Kind::Io(None) => writeln!(f, "  {key:?}  source  (its handler is running)")?,
                Kind::Timer(timer) => {
                    let left = timer.scheduled.deadline.saturating_duration_since(now);
                    write!(f, "  {key:?}  timer  next in {left:?}")?;
                    match timer.period {
                        Some(period) => writeln!(f, ", every {period:?}")?,
                        None => writeln!(f, ", once")?,
                    }
                }
                Kind::Signals(s) => {
                    let names: Vec<String> = s
                        .watched
                        .iter()
                        .map(|&n| crate::signal::name(n).map_or(n.to_string(), str::to_owned))
                        .collect();
                    let fd = s.signals.as_raw_fd();
                    let names = names.join(", ");
                    writeln!(f, "  {key:?}  signals {names}  token {token}  fd {fd}")?
                }
                Kind::Child(child) => {
                    write!(f, "  {key:?}  child  pid {}", child.pid())?;
                    let mut sep = " ";
                    for (part, name, fd) in child.watched_fds() {
                        let token = key::token(index, part).0;
                        write!(f, "{sep} {name} token {token} fd {fd}")?;
                        sep = ",";
                    }
                    writeln!(f)?
                }
                Kind::Vacant => {}
            }
        }
        Ok(())
    }
}

impl<T> fmt::Debug for Describe<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
