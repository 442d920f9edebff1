//! What a disagreement between a backend and the model is.

/// What went wrong; failures of one kind count as "the same" while
/// shrinking and when grouping the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A report the contract requires did not come.
    Missed,
    /// A report the contract forbids came.
    Unexpected,
    /// A report for a registration that had ended.
    Ended,
    /// A report for a token that was never registered.
    Unknown,
    /// Two reports for one token in one poll.
    Duplicate,
    /// A report whose flags disagree with the end's state.
    Flags,
    /// A registry call, read or write returned what the docs rule out.
    OpResult,
    /// The kernel disagrees with something the model takes as certain: the
    /// model is wrong, not a backend.
    Model,
}

#[derive(Clone, Debug)]
pub struct Failure {
    pub kind: Kind,
    pub detail: String,
    /// The op at which it failed.
    pub step: usize,
}

impl Failure {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Failure {
        Failure {
            kind,
            detail: detail.into(),
            step: 0,
        }
    }

    pub fn at(self, step: usize) -> Failure {
        Failure { step, ..self }
    }
}
