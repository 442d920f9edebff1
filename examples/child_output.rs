//! Streams a command's output through the reactor, line by line, with a
//! prefix per stream, and ends with its exit status.
//!
//! ```text
//! cargo run --example child_output
//! cargo run --example child_output -- 'for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.1; done; exit 2'
//! ```

use std::io::{self, Write};
use std::process::{Command, ExitStatus};

use pipeloop::reactor::{ChildEvent, EventLoop, Flow};

/// Output not yet ended by a newline, per stream.
#[derive(Default)]
struct Lines {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<ExitStatus>,
}

/// Prints every complete line of `pending` + `chunk` with `prefix`, keeping
/// the unfinished rest.
fn print_lines(
    prefix: &str,
    pending: &mut Vec<u8>,
    chunk: &[u8],
    out: &mut impl Write,
) -> io::Result<()> {
    pending.extend_from_slice(chunk);
    while let Some(end) = pending.iter().position(|&b| b == b'\n') {
        out.write_all(prefix.as_bytes())?;
        out.write_all(&pending[..=end])?;
        pending.drain(..=end);
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let script = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "echo hello; echo oops >&2; printf 'no newline'; exit 3".to_owned());
    let mut ev: EventLoop<Lines> = EventLoop::new()?;
    let key = ev.spawn(Command::new("sh").arg("-c").arg(&script), |cx, event| {
        let lines = &mut *cx.data;
        match event {
            ChildEvent::Stdout(chunk) => {
                print_lines("out | ", &mut lines.stdout, chunk, &mut io::stdout())?
            }
            ChildEvent::Stderr(chunk) => {
                print_lines("err | ", &mut lines.stderr, chunk, &mut io::stderr())?
            }
            ChildEvent::Exit(status) => {
                // A last line without a newline is still a line.
                for (prefix, rest) in [("out | ", &lines.stdout), ("err | ", &lines.stderr)] {
                    if !rest.is_empty() {
                        println!("{prefix}{}", String::from_utf8_lossy(rest));
                    }
                }
                lines.status = Some(status);
            }
        }
        Ok(Flow::Continue)
    })?;
    println!(
        "spawned pid {} on {}",
        ev.pid(key).unwrap_or(0),
        ev.backend()
    );
    let mut lines = Lines::default();
    ev.run(&mut lines)?; // returns once the child's Exit was handled
    println!("exit: {}", lines.status.expect("Exit is always reported"));
    Ok(())
}
