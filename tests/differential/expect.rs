//! What a poll must, may and must not report, by the model, and the check
//! of one poll's events against it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use pipeloop::Event;

use crate::failure::{Failure, Kind};
use crate::model::{Model, PipeModel, Reg};
use crate::ops::{Mode, P, Side};

/// An event as reported, reduced to what the contract talks about.
pub struct Seen {
    token: usize,
    flags: [(&'static str, bool); 5],
    debug: String,
}

impl Seen {
    pub fn of(event: &Event) -> Seen {
        Seen {
            token: event.token().0,
            flags: [
                ("readable", event.is_readable()),
                ("writable", event.is_writable()),
                ("error", event.is_error()),
                ("read_closed", event.is_read_closed()),
                ("write_closed", event.is_write_closed()),
            ],
            debug: format!("{event:?}"),
        }
    }

    /// The token and the flags set, for a transcript.
    pub fn summary(&self) -> String {
        let set: Vec<&str> = self
            .flags
            .iter()
            .filter(|&&(_, set)| set)
            .map(|&(name, _)| name)
            .collect();
        format!("Token({}) {}", self.token, set.join("|"))
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|&(n, set)| n == name && set)
    }
}

/// What the model says about one token at one poll.
struct Expect {
    who: String,
    verdict: Verdict,
    /// The documented flags a report must carry.
    flags: Vec<(&'static str, bool)>,
    /// The peer is gone: in edge mode, this report is the last one.
    closed: bool,
}

#[derive(Clone, Copy, Debug)]
enum Verdict {
    Required(&'static str),
    Allowed(&'static str),
    Forbidden(&'static str),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Required(why) => write!(f, "required ({why})"),
            Verdict::Allowed(why) => write!(f, "allowed ({why})"),
            Verdict::Forbidden(why) => write!(f, "forbidden ({why})"),
        }
    }
}

/// An end's readiness at a poll.
struct EndState {
    ready: bool,
    closed: bool,
    flags: Vec<(&'static str, bool)>,
}

/// The pipe/mod.rs events table. `room` is the kernel's word (see
/// `runner::kernel_room`); every other field follows from the model.
fn end_state(side: Side, pipe: &PipeModel, room: Option<bool>) -> EndState {
    match side {
        Side::Receiver => {
            // "an empty pipe whose writer is gone is *not* readable"
            let bytes = pipe.buffered > 0;
            let closed = pipe.writers == 0;
            EndState {
                ready: bytes || closed,
                closed,
                flags: vec![("readable", bytes), ("read_closed", closed)],
            }
        }
        Side::Sender => {
            // "is_error and is_write_closed, and writable unless the pipe
            // is full"
            let room = room.expect("room is asked of every pipe with a live sender");
            let closed = pipe.readers == 0;
            EndState {
                ready: room || closed,
                closed,
                flags: vec![
                    ("writable", room),
                    ("write_closed", closed),
                    ("error", closed),
                ],
            }
        }
    }
}

impl Reg {
    /// interest.rs, "Trigger modes", and pipe/mod.rs, "Edge mode".
    fn verdict(&self, end: &EndState, activity: u64) -> Verdict {
        use Verdict::{Allowed, Forbidden, Required};
        if !end.ready {
            return Forbidden("its end is not ready");
        }
        match self.mode {
            Mode::Level => Required("level, and ready"),
            Mode::Oneshot if self.armed => Required("oneshot, armed and ready"),
            Mode::Oneshot => Forbidden("oneshot, already reported and not reregistered since"),
            Mode::Edge if self.closed_reported => Forbidden(
                "edge, and the event that said closed was the last one (pipe/mod.rs, event.rs)",
            ),
            Mode::Edge if self.armed => {
                Required("edge, armed (not reported since used up or registered) and ready")
            }
            // The events table promises the closed event; being the last
            // one, it must come even if the direction was not used up.
            Mode::Edge if end.closed => Required("edge, and its peer closed, not yet reported"),
            Mode::Edge if activity > self.seen => {
                Allowed("edge, not re-armed, but the pipe saw activity since the last report")
            }
            Mode::Edge => Forbidden(
                "edge, not re-armed, and nothing happened on the pipe since its last report",
            ),
        }
    }

    fn reported(&mut self, closed: bool, activity: u64) {
        match self.mode {
            Mode::Level => {}
            Mode::Oneshot => self.armed = false,
            Mode::Edge => {
                self.armed = false;
                self.closed_reported |= closed;
                self.seen = activity;
            }
        }
    }
}

/// Polls.
impl Model {
    /// The two things about room that are certain (an empty pipe has room;
    /// a pipe is full after a short write or a `WouldBlock` until something
    /// is read) against what the kernel says: a disagreement is the model's
    /// mistake, not a backend's.
    pub fn check_room(&self, room: &BTreeMap<P, bool>) -> Result<(), Failure> {
        for (p, &has_room) in room {
            let pipe = &self.pipes[p];
            let wrong = match (pipe.buffered, pipe.known_full, has_room) {
                (0, _, false) => "the pipe is empty, yet the kernel says it has no room",
                (_, true, true) => {
                    "the last write was short or WouldBlock and nothing was read since, yet the kernel says there is room"
                }
                _ => continue,
            };
            return Err(Failure::new(Kind::Model, format!("{p}: {wrong}")));
        }
        Ok(())
    }

    /// Checks one poll's events, then updates the registrations that were
    /// reported.
    pub fn check_poll(&mut self, seen: &[Seen], room: &BTreeMap<P, bool>) -> Result<(), Failure> {
        let expect = self.expectations(room);
        if let Err(failure) = self.judge(seen, &expect) {
            let detail = format!("{}\n{}", failure.detail, poll_context(seen, &expect));
            return Err(Failure { detail, ..failure });
        }
        self.after_poll(seen, &expect);
        Ok(())
    }

    /// What the model says about every token that may be reported.
    fn expectations(&self, room: &BTreeMap<P, bool>) -> BTreeMap<usize, Expect> {
        let mut all = BTreeMap::new();
        for (&h, reg) in &self.regs {
            let handle = self.handles[&h];
            let pipe = &self.pipes[&handle.pipe];
            let end = end_state(handle.side, pipe, room.get(&handle.pipe).copied());
            let expect = Expect {
                who: format!("{h} ({:?} of {}, {:?})", handle.side, handle.pipe, reg.mode),
                verdict: reg.verdict(&end, pipe.activity),
                flags: end.flags,
                closed: end.closed,
            };
            all.insert(reg.token, expect);
        }
        for (&w, waker) in &self.wakers {
            let verdict = if waker.pending {
                Verdict::Required("woken since its last report")
            } else {
                Verdict::Forbidden("not woken since its last report")
            };
            all.insert(waker.token, waker_expect(format!("{w} (waker)"), verdict));
        }
        for &token in &self.dropped_wakes {
            let verdict =
                Verdict::Allowed("its waker was dropped with a wake pending, which may be lost");
            all.insert(
                token,
                waker_expect(format!("Token({token}) (dropped waker)"), verdict),
            );
        }
        all
    }

    fn judge(&self, seen: &[Seen], expect: &BTreeMap<usize, Expect>) -> Result<(), Failure> {
        let mut reported = BTreeSet::new();
        for event in seen {
            if !reported.insert(event.token) {
                let detail = format!("Token({}) reported twice in one poll", event.token);
                return Err(Failure::new(Kind::Duplicate, detail));
            }
            match expect.get(&event.token) {
                Some(e) => check_event(event, e)?,
                None => return Err(self.stray(event)),
            }
        }
        for (token, e) in expect {
            if let (Verdict::Required(why), false) = (e.verdict, reported.contains(token)) {
                let detail = format!(
                    "Token({token}) {} was not reported, but must be: {why}",
                    e.who
                );
                return Err(Failure::new(Kind::Missed, detail));
            }
        }
        Ok(())
    }

    /// A report for a token no live registration has.
    fn stray(&self, event: &Seen) -> Failure {
        let token = event.token;
        match self.gone.get(&token) {
            Some(gone) => {
                Failure::new(Kind::Ended, format!("Token({token}) reported after {gone}"))
            }
            None => Failure::new(
                Kind::Unknown,
                format!("Token({token}) was never registered"),
            ),
        }
    }

    fn after_poll(&mut self, seen: &[Seen], expect: &BTreeMap<usize, Expect>) {
        let reported: BTreeSet<usize> = seen.iter().map(|e| e.token).collect();
        for (h, reg) in self.regs.iter_mut() {
            if reported.contains(&reg.token) {
                let activity = self.pipes[&self.handles[h].pipe].activity;
                reg.reported(expect[&reg.token].closed, activity);
            }
        }
        for waker in self.wakers.values_mut() {
            waker.pending &= !reported.contains(&waker.token);
        }
        self.dropped_wakes.clear();
    }
}

/// waker.rs: "that poll returns a readable event with the waker's token".
fn waker_expect(who: String, verdict: Verdict) -> Expect {
    Expect {
        who,
        verdict,
        flags: vec![("readable", true)],
        closed: false,
    }
}

fn check_event(event: &Seen, e: &Expect) -> Result<(), Failure> {
    let token = event.token;
    if let Verdict::Forbidden(why) = e.verdict {
        let detail = format!("Token({token}) {} was reported, but {why}", e.who);
        return Err(Failure::new(Kind::Unexpected, detail));
    }
    let wrong: Vec<String> = e
        .flags
        .iter()
        .filter(|&&(name, want)| event.flag(name) != want)
        .map(|&(name, want)| format!("{name} should be {want}"))
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    let detail = format!("Token({token}) {}: {}", e.who, wrong.join(", "));
    Err(Failure::new(Kind::Flags, detail))
}

/// Everything a poll failure needs to be understood: what came, and what
/// the model said about each token.
fn poll_context(seen: &[Seen], expect: &BTreeMap<usize, Expect>) -> String {
    let mut out = String::from("  events:");
    if seen.is_empty() {
        out.push_str(" none");
    }
    for event in seen {
        let _ = write!(out, "\n    {}", event.debug);
    }
    out.push_str("\n  model:");
    for (token, e) in expect {
        let flags: Vec<String> = e.flags.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let _ = write!(
            out,
            "\n    Token({token}) {}: {} [{}]",
            e.who,
            e.verdict,
            flags.join(" ")
        );
    }
    out
}
