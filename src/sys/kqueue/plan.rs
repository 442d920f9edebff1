//! The steps of one registration change, and what the kernel's answers to
//! them mean: the part of the kqueue backend that is plain data.

use std::io;

use super::core::Slot;
use super::kevent::{Consts, READ, WRITE};

/// The most steps one registration change needs: a probe, a delete and an
/// add per filter.
pub(super) const MAX_STEPS: usize = 6;

/// What one step of a registration change is for, which says what its
/// result means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Flags with no action: `ENOENT` if the filter does not exist, else
    /// nothing. It asks whether a record is still its fd's.
    Probe,
    /// Deletes a filter the record says exists (its success also proves
    /// the record live).
    Delete,
    /// Deletes a filter that may or may not exist.
    Cleanup,
    Add,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Step {
    pub(super) bit: u8,
    pub(super) flags: u32,
    pub(super) role: Role,
}

/// The steps of one registration change, in order.
#[derive(Debug, Default)]
pub(super) struct Plan {
    steps: [Option<Step>; MAX_STEPS],
    pub(super) len: usize,
}

impl Plan {
    pub(super) fn push(&mut self, bit: u8, flags: u32, role: Role) {
        self.steps[self.len] = Some(Step { bit, flags, role });
        self.len += 1;
    }

    pub(super) fn steps(&self) -> impl Iterator<Item = Step> + '_ {
        self.steps[..self.len].iter().flatten().copied()
    }

    /// Probes each filter the record says the kernel has (both when it is
    /// unknown).
    pub(super) fn probe(&mut self, slot: &Slot, c: &Consts) {
        let set = if slot.unknown {
            READ | WRITE
        } else {
            slot.kernel_set()
        };
        for bit in [READ, WRITE] {
            if set & bit != 0 {
                self.push(bit, c.ev_receipt, Role::Probe);
            }
        }
    }

    /// The steps from `old` (`None`: not registered) to `new` (`None`:
    /// deregistered). A kernel keeps a filter's `EV_CLEAR`/`EV_DISPATCH`
    /// from its creation, so a filter whose mode changes is deleted and
    /// added again (and then evaluated at once, as `EPOLL_CTL_MOD` does).
    pub(super) fn change(&mut self, old: Option<&Slot>, new: Option<(u8, u32)>, c: &Consts) {
        let delete = c.ev_delete | c.ev_receipt;
        let (had, old_mode) = old.map_or((0, 0), |s| (s.kernel_set(), s.mode(c)));
        let unknown = old.is_some_and(|s| s.unknown);
        let stale_write = old.is_some_and(|s| s.write_closed);
        let (wanted, mode) = new.unwrap_or((0, 0));
        for bit in [READ, WRITE] {
            let kept = had & bit != 0 && wanted & bit != 0;
            if unknown || (bit == WRITE && stale_write) {
                self.push(bit, delete, Role::Cleanup);
            } else if had & bit != 0 && !(kept && mode == old_mode) {
                self.push(bit, delete, Role::Delete);
            }
            if wanted & bit != 0 {
                self.push(bit, c.ev_add | c.ev_enable | c.ev_receipt | mode, Role::Add);
            }
        }
    }
}

/// What the kernel answered to a plan: one errno per step.
pub(super) struct Answers {
    pub(super) errnos: [i32; MAX_STEPS],
}

impl Answers {
    pub(super) fn of<'a>(&'a self, plan: &'a Plan) -> impl Iterator<Item = (Step, i32)> + 'a {
        plan.steps().zip(self.errnos)
    }
}

/// Whether the record a plan was made from is still its fd's, by the
/// answers of the steps that can tell.
pub(super) enum Liveness {
    Live,
    /// The fd's filters are gone: it was closed (and maybe reused).
    Stale,
    /// The fd is not open.
    Closed,
    /// No step could tell: ask whether the fd is open.
    Unknown,
}

pub(super) fn liveness(plan: &Plan, answers: &Answers) -> Liveness {
    let mut told = Liveness::Unknown;
    for (step, errno) in answers.of(plan) {
        if !matches!(step.role, Role::Probe | Role::Delete) {
            continue;
        }
        match errno {
            0 => return Liveness::Live,
            libc::EBADF => told = Liveness::Closed,
            _ if !matches!(told, Liveness::Closed) => told = Liveness::Stale,
            _ => {}
        }
    }
    told
}

pub(super) fn os_error(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}
