//! Graceful shutdown driven by signals, as ordinary events.
//!
//! ```text
//! cargo run --example signals            # then press Ctrl-C (twice to force)
//! cargo run --example signals -- --demo  # sends itself the signals: runs unattended
//! ```
//!
//! The program starts a child (`sleep`) and waits. SIGCHLD tells it the
//! child has exited: it reaps it there and then, in normal code, not in a
//! signal handler. The first Ctrl-C (SIGINT) or a SIGTERM starts a graceful
//! shutdown: stop the child, wait for it (at most `GRACE`), exit 0. A second
//! Ctrl-C during the shutdown exits at once with status 130.

use std::io::{self, ErrorKind};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use pipeloop::signal::{self, Signals};
use pipeloop::{Events, Interest, Poll, Token};

const SIGNALS: Token = Token(0);
/// How long a graceful shutdown may take before the program gives up.
const GRACE: Duration = Duration::from_secs(5);

fn main() -> io::Result<ExitCode> {
    let demo = std::env::args().any(|a| a == "--demo");
    let mut poll = Poll::new()?;
    let mut signals = Signals::new(&[libc::SIGINT, libc::SIGTERM, libc::SIGCHLD])?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)?;

    let mut child = Some(
        Command::new("sleep")
            .arg(if demo { "0.2" } else { "30" })
            .spawn()?,
    );
    println!(
        "pid {}: watching a child; press Ctrl-C or run `kill -TERM {}` to stop (Ctrl-C twice forces)",
        std::process::id(),
        std::process::id()
    );

    let mut shutdown_started: Option<Instant> = None;
    let mut events = Events::with_capacity(8);
    loop {
        // While shutting down, sleep no longer than the grace period left.
        let timeout = shutdown_started.map(|t| GRACE.saturating_sub(t.elapsed()));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            // A signal may interrupt the wait itself: just wait again.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if events.iter().any(|e| e.token() == SIGNALS) {
            for sig in signals.pending() {
                let name = signal::name(sig).unwrap_or("?");
                match sig {
                    libc::SIGCHLD => reap(&mut child, demo),
                    libc::SIGINT if shutdown_started.is_some() => {
                        eprintln!("{name} again: exiting now");
                        return Ok(ExitCode::from(130));
                    }
                    _ => {
                        println!("{name}: shutting down gracefully (Ctrl-C again to force)");
                        shutdown_started.get_or_insert_with(Instant::now);
                        stop(&child);
                    }
                }
            }
        }
        if let Some(started) = shutdown_started {
            if child.is_none() {
                println!("clean shutdown after {:?}", started.elapsed());
                return Ok(ExitCode::SUCCESS);
            }
            if started.elapsed() >= GRACE {
                eprintln!("the child did not stop within {GRACE:?}; giving up");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
}

/// SIGCHLD says "some child changed state", coalesced: check ours without
/// blocking.
fn reap(child: &mut Option<Child>, demo: bool) {
    let Some(running) = child else { return };
    match running.try_wait() {
        Ok(Some(status)) => {
            println!("SIGCHLD: child {} exited ({status})", running.id());
            *child = None;
            if demo {
                // What a user's Ctrl-C would do.
                // SAFETY: raise only sends a signal to this thread.
                unsafe { libc::raise(libc::SIGINT) };
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("waiting for the child: {e}"),
    }
}

/// Asks the child to stop; its exit arrives as SIGCHLD.
fn stop(child: &Option<Child>) {
    if let Some(child) = child {
        // SAFETY: kill only sends a signal; the pid is our unreaped child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    }
}
