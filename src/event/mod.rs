//! Readiness events and the [`Source`] trait.

// `event::Event` lives in `event/event.rs`, as in mio.
#[allow(clippy::module_inception)]
mod event;
mod events;
mod source;

pub use event::Event;
pub use events::{Events, Iter};
pub use source::Source;
pub(crate) use source::delegate_source;
