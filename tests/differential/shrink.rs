//! Making a failing sequence small while it still fails the same way.

use pipeloop::Backend;

use crate::failure::{Failure, Kind};
use crate::ops::Op;
use crate::runner::run;

/// Makes a failing sequence small while it still fails on `backend` with
/// the same `kind`: drops chunks of ops (halving the chunk size down to
/// single ops), then makes transfer sizes smaller, and repeats until
/// neither helps.
pub fn shrink(mut ops: Vec<Op>, backend: Backend, kind: Kind) -> (Vec<Op>, Failure) {
    let fails = |ops: &[Op]| run(ops, backend).err().filter(|f| f.kind == kind);
    let mut failure = fails(&ops).expect("the failure reproduces");
    loop {
        let before = (ops.len(), total_len(&ops));
        remove_chunks(&mut ops, &mut failure, &fails);
        shrink_lens(&mut ops, &mut failure, &fails);
        if (ops.len(), total_len(&ops)) == before {
            return (ops, failure);
        }
    }
}

fn total_len(ops: &[Op]) -> usize {
    ops.iter()
        .map(|op| match *op {
            Op::Write { len, .. } | Op::Read { len, .. } => len,
            _ => 0,
        })
        .sum()
}

fn remove_chunks(
    ops: &mut Vec<Op>,
    failure: &mut Failure,
    fails: &impl Fn(&[Op]) -> Option<Failure>,
) {
    let mut chunk = (ops.len() / 2).max(1);
    loop {
        let mut start = 0;
        while start < ops.len() {
            let end = (start + chunk).min(ops.len());
            let candidate = [&ops[..start], &ops[end..]].concat();
            match fails(&candidate) {
                Some(f) => (*ops, *failure) = (candidate, f),
                None => start += chunk,
            }
        }
        if chunk == 1 {
            return;
        }
        chunk /= 2;
    }
}

/// For each transfer, the smallest size that still fails: round sizes
/// first (1, a page, a pipe's worth), then a binary search below the size
/// it has (if failing is not monotonic in the size, this still ends on one
/// that fails).
fn shrink_lens(ops: &mut [Op], failure: &mut Failure, fails: &impl Fn(&[Op]) -> Option<Failure>) {
    for i in 0..ops.len() {
        let (Op::Write { len, .. } | Op::Read { len, .. }) = ops[i] else {
            continue;
        };
        let mut try_len = |new_len: usize| {
            let mut candidate = ops.to_vec();
            set_len(&mut candidate[i], new_len);
            let f = fails(&candidate)?;
            ops.copy_from_slice(&candidate);
            *failure = f;
            Some(())
        };
        let mut hi = [1, 16, 4096, 65536]
            .into_iter()
            .filter(|&n| n < len)
            .find(|&n| try_len(n).is_some())
            .unwrap_or(len);
        let mut lo = 1;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match try_len(mid) {
                Some(()) => hi = mid,
                None => lo = mid + 1,
            }
        }
    }
}

fn set_len(op: &mut Op, new_len: usize) {
    if let Op::Write { len, .. } | Op::Read { len, .. } = op {
        *len = new_len;
    }
}
