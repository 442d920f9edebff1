//! The sequence generator, and the PRNG behind it.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use crate::ops::{Ask, H, Mode, Op, P, Side, W, Want};

/// splitmix64's increment; also the step between case seeds.
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// The largest read or write: twice Linux's default pipe capacity (65,536),
/// so that one write can fill an empty pipe and come back short.
pub const MAX_TRANSFER: usize = 128 * 1024;
/// Pipes alive at once.
const MAX_PIPES: usize = 3;
/// Wakers alive at once.
const MAX_WAKERS: usize = 2;
/// Ops per sequence, before the final poll.
const SEQUENCE_LEN: RangeInclusive<usize> = 10..=40;
/// Chance (percent) that a registry op picks any handle instead of a
/// fitting one, to exercise `AlreadyExists` and `NotFound`.
const STRAY_PERCENT: u64 = 12;
/// Chance (percent) that a (re)register asks for both directions, and
/// again that it asks only for the one the end cannot do (`InvalidInput`).
const ASK_BOTH_PERCENT: u64 = 8;
const ASK_OTHER_PERCENT: u64 = 8;

/// splitmix64 (Steele, Lea and Flood, 2014): tiny, well mixed, and its whole
/// state is the seed, so one number names a case.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `0..n` (`n > 0`); the modulo bias is far below anything a test
    /// could notice.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn range(&mut self, range: RangeInclusive<usize>) -> usize {
        range.start() + self.below(range.end() - range.start() + 1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next_u64() % 100 < p
    }

    /// An index into a list of `len` items, if there are any.
    fn index(&mut self, len: usize) -> Option<usize> {
        (len > 0).then(|| self.below(len))
    }
}

/// The ops of the case named `seed`: a pure function of it, so that a
/// printed seed reruns the same sequence.
pub fn generate(seed: u64) -> Vec<Op> {
    let mut rng = Rng(seed);
    // Half the cases stay mostly on one pipe, where the steps that make
    // edge mode interesting (report, use up, make ready again) meet more
    // often; the other half spread over several.
    let mut shape = Shape {
        focused: rng.percent(50),
        ..Shape::default()
    };
    let len = rng.range(SEQUENCE_LEN);
    let mut ops: Vec<Op> = (0..len).map(|_| shape.next_op(&mut rng)).collect();
    // End on a poll, so that the state a sequence leaves is checked too.
    ops.push(Op::Poll);
    ops
}

/// What the generator knows of a sequence so far: enough to pick ops that
/// mostly apply. It does not need to be exact (the runner skips ops on
/// handles that are gone, and the model decides what each op should do).
#[derive(Default)]
struct Shape {
    /// Open a second and third pipe only now and then.
    focused: bool,
    handles: Vec<ShapeHandle>,
    wakers: Vec<W>,
    next_name: u32,
    next_token: usize,
}

#[derive(Clone, Copy)]
struct ShapeHandle {
    h: H,
    pipe: P,
    side: Side,
    /// The token it is registered with, if it is.
    token: Option<usize>,
}

impl Shape {
    fn next_op(&mut self, rng: &mut Rng) -> Op {
        loop {
            // Weights in percent; a kind that does not apply now (no pipe
            // yet, say) draws again. Poll always applies.
            let op = match rng.below(100) {
                0..=7 => self.new_pipe(rng),
                8..=13 => self.try_clone(rng),
                14..=27 => self.register(rng),
                28..=34 => self.reregister(rng),
                35..=38 => self.deregister(rng),
                39..=51 => self.transfer(rng, Side::Sender),
                52..=64 => self.transfer(rng, Side::Receiver),
                65..=70 => self.drop_handle(rng),
                71..=79 => self.waker_op(rng),
                _ => Some(Op::Poll),
            };
            if let Some(op) = op {
                return op;
            }
        }
    }

    fn name(&mut self) -> u32 {
        self.next_name += 1;
        self.next_name - 1
    }

    /// A token no registration of this sequence had before, so that every
    /// event can be attributed.
    fn token(&mut self) -> usize {
        self.next_token += 1;
        self.next_token - 1
    }

    fn new_pipe(&mut self, rng: &mut Rng) -> Option<Op> {
        let live: BTreeSet<P> = self.handles.iter().map(|h| h.pipe).collect();
        let another = live.is_empty() || !self.focused || rng.percent(20);
        if live.len() >= MAX_PIPES || !another {
            return None;
        }
        let (pipe, sender, receiver) = (P(self.name()), H(self.name()), H(self.name()));
        for (h, side) in [(sender, Side::Sender), (receiver, Side::Receiver)] {
            let token = None;
            self.handles.push(ShapeHandle {
                h,
                pipe,
                side,
                token,
            });
        }
        Some(Op::NewPipe {
            pipe,
            sender,
            receiver,
        })
    }

    /// The position of a live handle for which `want` holds; now and then
    /// (or when none does) any live handle.
    fn pick(&self, rng: &mut Rng, want: impl Fn(&ShapeHandle) -> bool) -> Option<usize> {
        let fitting: Vec<usize> = (0..self.handles.len())
            .filter(|&i| want(&self.handles[i]))
            .collect();
        if fitting.is_empty() || rng.percent(STRAY_PERCENT) {
            return rng.index(self.handles.len());
        }
        Some(fitting[rng.below(fitting.len())])
    }

    fn try_clone(&mut self, rng: &mut Rng) -> Option<Op> {
        let original = self.handles[rng.index(self.handles.len())?];
        let new = H(self.name());
        self.handles.push(ShapeHandle {
            h: new,
            token: None,
            ..original
        });
        Some(Op::TryClone {
            of: original.h,
            new,
        })
    }

    /// A refused register (`Ask::Other`) leaves the handle unregistered.
    fn register(&mut self, rng: &mut Rng) -> Option<Op> {
        let i = self.pick(rng, |h| h.token.is_none())?;
        let token = self.token();
        let want = want(rng);
        let handle = &mut self.handles[i];
        if want.ask != Ask::Other {
            handle.token = handle.token.or(Some(token));
        }
        Some(Op::Register {
            h: handle.h,
            token,
            want,
        })
    }

    /// Half the time with the same token, half with a new one (after which
    /// the old one must never be reported again). A refused reregister
    /// (`Ask::Other`) keeps the old token.
    fn reregister(&mut self, rng: &mut Rng) -> Option<Op> {
        let i = self.pick(rng, |h| h.token.is_some())?;
        let token = match self.handles[i].token {
            Some(old) if rng.percent(50) => old,
            _ => self.token(),
        };
        let want = want(rng);
        let handle = &mut self.handles[i];
        if want.ask != Ask::Other {
            handle.token = handle.token.map(|_| token);
        }
        Some(Op::Reregister {
            h: handle.h,
            token,
            want,
        })
    }

    fn deregister(&mut self, rng: &mut Rng) -> Option<Op> {
        let i = self.pick(rng, |h| h.token.is_some())?;
        self.handles[i].token = None;
        Some(Op::Deregister {
            h: self.handles[i].h,
        })
    }

    fn transfer(&mut self, rng: &mut Rng, side: Side) -> Option<Op> {
        let ends: Vec<H> = self
            .handles
            .iter()
            .filter(|h| h.side == side)
            .map(|h| h.h)
            .collect();
        let h = ends[rng.index(ends.len())?];
        let len = transfer_len(rng);
        Some(match side {
            Side::Sender => Op::Write { h, len },
            Side::Receiver => Op::Read { h, len },
        })
    }

    fn drop_handle(&mut self, rng: &mut Rng) -> Option<Op> {
        let i = rng.index(self.handles.len())?;
        Some(Op::Drop {
            h: self.handles.swap_remove(i).h,
        })
    }

    fn waker_op(&mut self, rng: &mut Rng) -> Option<Op> {
        if self.wakers.len() < MAX_WAKERS && (self.wakers.is_empty() || rng.percent(25)) {
            let w = W(self.name());
            self.wakers.push(w);
            let token = self.token();
            return Some(Op::NewWaker { w, token });
        }
        let i = rng.index(self.wakers.len())?;
        if rng.percent(85) {
            return Some(Op::Wake { w: self.wakers[i] });
        }
        Some(Op::DropWaker {
            w: self.wakers.swap_remove(i),
        })
    }
}

/// Any mode; mostly the end's own direction, now and then both, or only
/// the other.
fn want(rng: &mut Rng) -> Want {
    let ask = match rng.next_u64() % 100 {
        n if n < ASK_BOTH_PERCENT => Ask::Both,
        n if n < ASK_BOTH_PERCENT + ASK_OTHER_PERCENT => Ask::Other,
        _ => Ask::Own,
    };
    let mode = Mode::ALL[rng.below(3)];
    Want { ask, mode }
}

/// Mostly small, sometimes around a page, sometimes more than a pipe holds
/// (so that writes come back short and the pipe fills, and reads drain it).
fn transfer_len(rng: &mut Rng) -> usize {
    const PAGE: usize = 4096;
    match rng.below(10) {
        0..=2 => rng.range(1..=16),
        3..=5 => rng.range(17..=2 * PAGE),
        6..=7 => rng.range(2 * PAGE..=64 * 1024),
        _ => rng.range(64 * 1024 + 1..=MAX_TRANSFER),
    }
}
