//! The operations a sequence is made of, and how they are printed.

use std::collections::HashMap;
use std::fmt;

use pipeloop::Interest;

/// A pipe, named by the op that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct P(pub u32);

/// A pipe end handle (an original or a clone), named by the op that made
/// it. Names never change, so removing ops while shrinking leaves the others
/// meaningful: an op whose handle does not exist (any more) is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct H(pub u32);

/// A waker, named the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct W(pub u32);

impl fmt::Display for P {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl fmt::Display for H {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}

impl fmt::Display for W {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Sender,
    Receiver,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Edge,
    Level,
    Oneshot,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Edge, Mode::Level, Mode::Oneshot];
}

/// The directions a (re)register asks for, next to the end's own
/// (pipe/mod.rs, "Interest": an end registers its own direction only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// The end's own direction: receivers read, senders write.
    Own,
    /// Readable and writable: the other direction is dropped, so the same
    /// as `Own`.
    Both,
    /// Only the direction the end cannot do: `InvalidInput`, and nothing
    /// changes.
    Other,
}

/// What a (re)register asks for: which directions, in which mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    pub ask: Ask,
    pub mode: Mode,
}

impl Want {
    /// The interest this names for an end on `side`.
    pub fn interest(self, side: Side) -> Interest {
        let (own, other) = match side {
            Side::Sender => (Interest::WRITABLE, Interest::READABLE),
            Side::Receiver => (Interest::READABLE, Interest::WRITABLE),
        };
        let directions = match self.ask {
            Ask::Own => own,
            Ask::Both => own | other,
            Ask::Other => other,
        };
        match self.mode {
            Mode::Edge => directions,
            Mode::Level => directions.level(),
            Mode::Oneshot => directions.oneshot(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    NewPipe { pipe: P, sender: H, receiver: H },
    TryClone { of: H, new: H },
    Register { h: H, token: usize, want: Want },
    Reregister { h: H, token: usize, want: Want },
    Deregister { h: H },
    Write { h: H, len: usize },
    Read { h: H, len: usize },
    Drop { h: H },
    NewWaker { w: W, token: usize },
    Wake { w: W },
    DropWaker { w: W },
    Poll,
}

/// The ops as pseudo-Rust, one line each, for failure messages.
pub fn render(ops: &[Op]) -> Vec<String> {
    let mut sides = HashMap::new();
    ops.iter().map(|&op| render_op(op, &mut sides)).collect()
}

/// `sides` remembers which end each handle is, so that an interest can be
/// printed with the direction the runner uses.
fn render_op(op: Op, sides: &mut HashMap<H, Side>) -> String {
    let interest = |h: &H, want: Want| interest_text(sides.get(h).copied(), want);
    match op {
        Op::NewPipe {
            pipe,
            sender,
            receiver,
        } => {
            sides.insert(sender, Side::Sender);
            sides.insert(receiver, Side::Receiver);
            format!("let ({sender}, {receiver}) = pipe::new(); // {pipe}")
        }
        Op::TryClone { of, new } => {
            if let Some(&side) = sides.get(&of) {
                sides.insert(new, side);
            }
            format!("let {new} = {of}.try_clone();")
        }
        Op::Register { h, token, want } => {
            format!(
                "register(&mut {h}, Token({token}), {});",
                interest(&h, want)
            )
        }
        Op::Reregister { h, token, want } => {
            format!(
                "reregister(&mut {h}, Token({token}), {});",
                interest(&h, want)
            )
        }
        Op::Deregister { h } => format!("deregister(&mut {h});"),
        Op::Write { h, len } => format!("{h}.write(&[0; {len}]);"),
        Op::Read { h, len } => format!("{h}.read(&mut [0; {len}]);"),
        Op::Drop { h } => format!("drop({h});"),
        Op::NewWaker { w, token } => format!("let {w} = Waker::new(registry, Token({token}));"),
        Op::Wake { w } => format!("{w}.wake();"),
        Op::DropWaker { w } => format!("drop({w});"),
        Op::Poll => "poll(&mut events, Some(Duration::ZERO));".to_string(),
    }
}

fn interest_text(side: Option<Side>, want: Want) -> String {
    let (own, other) = match side {
        Some(Side::Sender) => ("Interest::WRITABLE", "Interest::READABLE"),
        _ => ("Interest::READABLE", "Interest::WRITABLE"),
    };
    let direction = match want.ask {
        Ask::Own => own.to_string(),
        Ask::Both => format!("({own} | {other})"),
        Ask::Other => other.to_string(),
    };
    match want.mode {
        Mode::Edge => direction.to_string(),
        Mode::Level => format!("{direction}.level()"),
        Mode::Oneshot => format!("{direction}.oneshot()"),
    }
}
