use std::fmt;

use crate::event::Event;
use crate::sys::RawEvent;
use crate::sys::event::EventBuf;

/// A buffer that [`Poll::poll`](crate::Poll::poll) fills with events.
///
/// The capacity is fixed at creation; a poll returns at most that many
/// events, and the rest are returned by the next poll. Polling never
/// allocates: the buffer is reused.
///
/// # Examples
///
/// ```
/// use pipeloop::{Events, Poll};
/// use std::time::Duration;
///
/// let mut poll = Poll::new()?;
/// let mut events = Events::with_capacity(128);
/// poll.poll(&mut events, Some(Duration::ZERO))?;
/// assert!(events.is_empty());
/// for event in events.iter() {
///     println!("{:?}", event.token());
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Events {
    pub(crate) inner: EventBuf,
}

impl Events {
    /// A buffer for up to `capacity` events per poll.
    ///
    /// A capacity of 0 is allowed here, but polling with it is an
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput) error.
    pub fn with_capacity(capacity: usize) -> Events {
        Events {
            inner: EventBuf::with_capacity(capacity),
        }
    }

    /// How many events a poll can return at most.
    pub fn capacity(&self) -> usize {
        self.inner.events.capacity()
    }

    /// How many events the last poll returned.
    pub fn len(&self) -> usize {
        self.inner.events.len()
    }

    /// Whether the last poll returned no events.
    pub fn is_empty(&self) -> bool {
        self.inner.events.is_empty()
    }

    /// The events of the last poll.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.inner.events.iter(),
        }
    }

    /// Forgets the events (polling does this itself).
    pub fn clear(&mut self) {
        self.inner.events.clear();
    }
}

/// The iterator returned by [`Events::iter`] (and by `&Events` in a `for`
/// loop): the events of the last poll, in the order the backend returned
/// them. It knows how many are left.
///
/// # Examples
///
/// ```
/// use pipeloop::event::Iter;
/// use pipeloop::{Events, Interest, Poll, Token};
/// use std::io::Write;
///
/// let mut poll = Poll::new()?;
/// let (mut sender, mut receiver) = pipeloop::pipe::new()?;
/// poll.registry().register(&mut receiver, Token(1), Interest::READABLE)?;
/// sender.write_all(b"x")?;
///
/// let mut events = Events::with_capacity(8);
/// poll.poll(&mut events, None)?;
/// let mut iter: Iter<'_> = events.iter();
/// assert_eq!(iter.len(), 1);
/// let event = iter.next().unwrap();
/// assert_eq!(event.token(), Token(1));
/// assert!(event.is_readable());
/// assert!(iter.next().is_none());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, RawEvent>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Event;

    fn next(&mut self) -> Option<&'a Event> {
        self.inner.next().map(Event::from_raw)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("remaining", &self.inner.len())
            .finish()
    }
}
