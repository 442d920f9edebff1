//! Child processes: their stdout and stderr as pipeloop pipes, and their
//! exit, reported last.
//!
//! Exit is seen without ever reaping a process the loop did not spawn:
//! `waitpid` is only called on the loop's own children's pids (through
//! `Child::try_wait`). What says *when* to call it:
//!
//! - on Linux, a pidfd per child (`pidfd_open`, 5.3+), readable once the
//!   child has exited;
//! - elsewhere, or where `pidfd_open` fails, `SIGCHLD` through
//!   `pipeloop::signal` (a self-pipe), after which every child of the loop
//!   that has not exited yet is asked. Two children exiting at once send
//!   one coalesced signal; both are found.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::{Child, Command, ExitStatus, Stdio};

use super::inner::{Inner, Kind, Redo};
use super::key::{self, Key, Part};
use super::{Cx, Flow};
use crate::pipe::Receiver;
use crate::signal::Signals;
use crate::{Interest, Registry, SourceFd};

/// What a child spawned with [`EventLoop::spawn`](super::EventLoop::spawn)
/// did: a chunk of its output, as read (not split into lines), or its exit,
/// which is always its last event: after its exit *and* end of file on both
/// of its pipes (a grandchild that keeps them open delays it).
///
/// # Examples
///
/// ```
/// use pipeloop::reactor::{ChildEvent, EventLoop, Flow};
/// use std::process::Command;
///
/// let mut ev: EventLoop<(Vec<u8>, Option<i32>)> = EventLoop::new()?;
/// ev.spawn(Command::new("sh").args(["-c", "echo hi"]), |cx, event| {
///     match event {
///         ChildEvent::Stdout(bytes) => cx.data.0.extend_from_slice(bytes),
///         ChildEvent::Stderr(_) => {}
///         ChildEvent::Exit(status) => cx.data.1 = status.code(),
///     }
///     Ok(Flow::Continue)
/// })?;
/// let mut got = (Vec::new(), None);
/// ev.run(&mut got)?; // the entry goes after `Exit`: nothing is left
/// assert_eq!(got, (b"hi\n".to_vec(), Some(0)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum ChildEvent<'a> {
    /// Bytes the child wrote to its stdout.
    Stdout(&'a [u8]),
    /// Bytes the child wrote to its stderr.
    Stderr(&'a [u8]),
    /// How the child ended (128 + N in a shell for a signal N: see
    /// [`ExitStatusExt::signal`](std::os::unix::process::ExitStatusExt::signal)).
    Exit(ExitStatus),
}

pub(super) type ChildFn<T> = Box<dyn FnMut(&mut Cx<'_, T>, ChildEvent<'_>) -> io::Result<Flow>>;

/// How much of a child's output one read takes.
const CHUNK: usize = 64 * 1024;

pub(super) struct ChildEntry<T> {
    child: Child,
    stdout: Option<Receiver>,
    stderr: Option<Receiver>,
    /// Readable once the child has exited (Linux).
    pidfd: Option<OwnedFd>,
    status: Option<ExitStatus>,
    pub(super) handler: Option<ChildFn<T>>,
}

impl<T> ChildEntry<T> {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The fds the loop watches for this child, each with its part of the
    /// key and a name: its pipes until their end of file, its pidfd until
    /// its exit.
    pub(super) fn watched_fds(&self) -> impl Iterator<Item = (Part, &'static str, RawFd)> + '_ {
        let pipes = [
            (
                Part::Main,
                "stdout",
                self.stdout.as_ref().map(AsRawFd::as_raw_fd),
            ),
            (
                Part::Stderr,
                "stderr",
                self.stderr.as_ref().map(AsRawFd::as_raw_fd),
            ),
            (
                Part::Exit,
                "exit",
                self.pidfd.as_ref().map(AsRawFd::as_raw_fd),
            ),
        ];
        pipes
            .into_iter()
            .filter_map(|(part, name, fd)| Some((part, name, fd?)))
    }

    /// Ends the entry (removed, or the loop dropped): deregisters its pipes
    /// and pidfd, and, if the child is still running, kills and reaps it,
    /// so that no child outlives its entry and none is left a zombie.
    pub(super) fn end(&mut self, registry: &Registry) {
        for rx in [self.stdout.take(), self.stderr.take()]
            .into_iter()
            .flatten()
        {
            drop(rx); // pipe ends end their registrations when dropped
        }
        if let Some(pidfd) = self.pidfd.take() {
            let _ = registry.deregister(&mut SourceFd(&pidfd.as_raw_fd()));
        }
        self.reap();
    }

    fn reap(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Whether everything before `Exit` has been reported.
    fn done(&self) -> Option<ExitStatus> {
        match (&self.stdout, &self.stderr) {
            (None, None) => self.status,
            _ => None,
        }
    }

    /// Asks whether the child has exited (`waitpid` on its pid only).
    fn poll_exit(&mut self) -> io::Result<()> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(())
    }
}

impl<T> Drop for ChildEntry<T> {
    fn drop(&mut self) {
        self.reap();
    }
}

/// How the loop learns that its children exited.
#[derive(Default)]
pub(super) struct ChildWatch {
    /// `SIGCHLD`, where pidfds are not used; made at the first spawn.
    sigchld: Option<Signals>,
    /// Whether `pidfd_open` works here (asked at the first spawn).
    pidfds: Option<bool>,
    /// Keys of children to ask after a `SIGCHLD` (kept to reuse memory).
    asking: Vec<Key>,
}

impl ChildWatch {
    fn use_pidfds(&mut self) -> bool {
        *self.pidfds.get_or_insert_with(pidfds_work)
    }

    /// Watches `SIGCHLD` (before the first child is spawned, so that no
    /// exit can come before the watch).
    fn watch_sigchld(&mut self, registry: &Registry) -> io::Result<()> {
        if self.sigchld.is_none() {
            let mut signals = Signals::new(&[libc::SIGCHLD])?;
            registry.register(&mut signals, key::SIGCHLD, Interest::READABLE)?;
            self.sigchld = Some(signals);
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new fd (with
    // close-on-exec set) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(crate::sys::owned(fd as i32))
}

#[cfg(not(target_os = "linux"))]
fn pidfd_open(_pid: u32) -> io::Result<OwnedFd> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// The environment variable that makes loops watch their children through
/// `SIGCHLD` even where pidfds work (`PIPELOOP_CHILD_WATCH=sigchld`): to
/// try the path macOS and the BSDs take, on Linux.
pub const CHILD_WATCH_ENV: &str = "PIPELOOP_CHILD_WATCH";

/// Whether this kernel has `pidfd_open` (Linux 5.3+; a seccomp filter may
/// still forbid it), and `CHILD_WATCH_ENV` does not ask for `SIGCHLD`.
fn pidfds_work() -> bool {
    if std::env::var_os(CHILD_WATCH_ENV).is_some_and(|v| v == "sigchld") {
        log::debug!(
            "pipeloop::reactor: {CHILD_WATCH_ENV}=sigchld: children are watched through SIGCHLD"
        );
        return false;
    }
    match pidfd_open(std::process::id()) {
        Ok(_) => true,
        Err(e) => {
            log::debug!("pipeloop::reactor: no pidfds ({e}); children are watched through SIGCHLD");
            false
        }
    }
}

impl<T> Inner<T> {
    /// Spawns `command` with its stdout and stderr piped to the loop.
    pub(super) fn spawn(&mut self, command: &mut Command, handler: ChildFn<T>) -> io::Result<Key> {
        let pidfds = self.children.use_pidfds();
        if !pidfds {
            self.children.watch_sigchld(&self.registry)?;
        }
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let key = self.vacant_key();
        let mut entry = ChildEntry {
            stdout: child.stdout.take().map(Receiver::from),
            stderr: child.stderr.take().map(Receiver::from),
            pidfd: None,
            status: None,
            handler: Some(handler),
            child,
        };
        if let Err(e) = self.watch_child(key, &mut entry, pidfds) {
            entry.end(&self.registry);
            return Err(e);
        }
        log::debug!("pipeloop::reactor: spawned pid {} as {key:?}", entry.pid());
        Ok(self.add(Kind::Child(Box::new(entry))))
    }

    fn watch_child(&mut self, key: Key, entry: &mut ChildEntry<T>, pidfds: bool) -> io::Result<()> {
        let registry = &self.registry;
        if let Some(rx) = &mut entry.stdout {
            registry.register(rx, key::token(key.index, Part::Main), Interest::READABLE)?;
        }
        if let Some(rx) = &mut entry.stderr {
            registry.register(rx, key::token(key.index, Part::Stderr), Interest::READABLE)?;
        }
        if pidfds {
            let pidfd = pidfd_open(entry.pid())?;
            let token = key::token(key.index, Part::Exit);
            registry.register(&mut SourceFd(&pidfd.as_raw_fd()), token, Interest::READABLE)?;
            entry.pidfd = Some(pidfd);
        }
        Ok(())
    }

    pub(super) fn child_pid(&self, key: Key) -> Option<u32> {
        match &self.entries.get(key.index)?.kind {
            Kind::Child(child) if self.is_current(key) => Some(child.pid()),
            _ => None,
        }
    }

    /// An event for one of a child's pipes or its pidfd.
    pub(super) fn dispatch_child(
        &mut self,
        data: &mut T,
        key: Key,
        part: Part,
        hung_up: bool,
    ) -> io::Result<()> {
        match part {
            Part::Exit => {
                // The child exited: its pidfd has said all it will.
                let Some(child) = self.child_mut(key) else {
                    return Ok(());
                };
                let pidfd = child.pidfd.take();
                let asked = child.poll_exit();
                if let Some(pidfd) = pidfd {
                    let _ = self.registry.deregister(&mut SourceFd(&pidfd.as_raw_fd()));
                }
                asked?;
            }
            // Output is no news about the exit: that comes from the pidfd
            // or SIGCHLD, so reading asks no `waitpid` of its own.
            Part::Main | Part::Stderr => self.read_output(data, key, part, hung_up)?,
        }
        self.report_exit(data, key)
    }

    fn child_mut(&mut self, key: Key) -> Option<&mut ChildEntry<T>> {
        if !self.is_current(key) {
            return None;
        }
        match &mut self.entries[key.index].kind {
            Kind::Child(child) => Some(child),
            _ => None,
        }
    }

    /// Reads one of a child's pipes until it is used up (to end of file if
    /// the event was a hang-up, the pipe's last), handing each chunk to the
    /// handler; at end of file the pipe is closed.
    fn read_output(&mut self, data: &mut T, key: Key, part: Part, hung_up: bool) -> io::Result<()> {
        let Some(mut handler) = self.child_mut(key).and_then(|c| c.handler.take()) else {
            return Ok(());
        };
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(CHUNK, 0);
        let result = self.read_chunks(data, key, part, hung_up, &mut handler, &mut buf);
        self.buf = buf;
        if let Some(child) = self.child_mut(key) {
            child.handler = Some(handler);
            if result.is_err() {
                // The handler failed mid-way: no event comes back for what
                // is left in the pipe, so the next turn reads on.
                self.leave(Redo::Read(key, part, hung_up));
            }
        }
        match result {
            Ok(Flow::Remove) => {
                self.remove(key);
                Ok(())
            }
            other => other.map(drop),
        }
    }

    fn read_chunks(
        &mut self,
        data: &mut T,
        key: Key,
        part: Part,
        hung_up: bool,
        handler: &mut ChildFn<T>,
        buf: &mut [u8],
    ) -> io::Result<Flow> {
        loop {
            let Some(child) = self.child_mut(key) else {
                return Ok(Flow::Continue); // removed by the handler
            };
            let pipe = if part == Part::Main {
                &mut child.stdout
            } else {
                &mut child.stderr
            };
            let Some(rx) = pipe else {
                return Ok(Flow::Continue);
            };
            let n = match rx.read(buf) {
                Ok(0) => {
                    *pipe = None; // end of file: the end deregisters as it drops
                    return Ok(Flow::Continue);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flow::Continue),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = &buf[..n];
            let event = if part == Part::Main {
                ChildEvent::Stdout(chunk)
            } else {
                ChildEvent::Stderr(chunk)
            };
            let flow = handler(&mut Cx::new(data, self, Some(key)), event)?;
            // A short read used the pipe up: its next event is news. After a
            // hang-up there is no next event, so read on to end of file.
            if flow == Flow::Remove || (n < buf.len() && !hung_up) {
                return Ok(flow);
            }
        }
    }

    /// Reports `Exit` once the child has exited and both of its pipes are
    /// at end of file, then removes its entry: `Exit` is its last event.
    fn report_exit(&mut self, data: &mut T, key: Key) -> io::Result<()> {
        let Some(child) = self.child_mut(key) else {
            return Ok(());
        };
        let Some(status) = child.done() else {
            return Ok(());
        };
        let Some(mut handler) = child.handler.take() else {
            return Ok(());
        };
        log::debug!("pipeloop::reactor: {key:?} exited: {status}");
        let result = handler(
            &mut Cx::new(data, self, Some(key)),
            ChildEvent::Exit(status),
        );
        self.remove(key);
        result.map(drop)
    }

    /// `SIGCHLD`: asks each of the loop's children that has not exited.
    pub(super) fn children_exited(&mut self, data: &mut T) -> io::Result<()> {
        if let Some(signals) = &mut self.children.sigchld {
            for _ in signals.pending() {}
        }
        let mut asking = std::mem::take(&mut self.children.asking);
        asking.clear();
        for (index, entry) in self.entries.iter() {
            if let Kind::Child(_) = entry.kind {
                asking.push(Key {
                    index,
                    serial: entry.serial,
                });
            }
        }
        let mut result = Ok(());
        for &key in &asking {
            let asked = match self.child_mut(key) {
                Some(child) => child.poll_exit(),
                None => Ok(()),
            };
            if let Err(e) = asked.and_then(|()| self.report_exit(data, key)) {
                // The children not asked yet (and one whose status could not
                // be read) are asked again next turn: the signal that
                // brought them here is spent.
                self.leave(Redo::AskChildren);
                result = Err(e);
                break;
            }
        }
        self.children.asking = asking;
        result
    }
}
