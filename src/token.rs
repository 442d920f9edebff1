/// Associates readiness events with the [`Source`](crate::event::Source) that
/// caused them.
///
/// A `Token` is chosen by the caller when registering a source and handed back
/// in every [`Event`](crate::Event) for it. pipeloop never looks inside it and
/// reserves no values: every `usize` is yours, including `usize::MAX`.
///
/// # Examples
///
/// ```
/// use pipeloop::{Events, Interest, Poll, Token};
/// use std::io::Write;
///
/// const PIPE: Token = Token(7);
///
/// let mut poll = Poll::new()?;
/// let (mut sender, mut receiver) = pipeloop::pipe::new()?;
/// poll.registry().register(&mut receiver, PIPE, Interest::READABLE)?;
/// sender.write_all(b"x")?;
///
/// let mut events = Events::with_capacity(8);
/// poll.poll(&mut events, None)?;
/// assert_eq!(events.iter().next().map(|e| e.token()), Some(PIPE));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub usize);

impl From<Token> for usize {
    fn from(token: Token) -> usize {
        token.0
    }
}
