use std::io;

use crate::{Interest, Registry, Token};

/// Something that can be registered with a [`Registry`]: a pipe end, a
/// [`SourceFd`](crate::SourceFd), or your own type.
///
/// The signature is mio's, so a `Source` written for mio ports by changing
/// the paths. Implementations forward to an inner source (usually a
/// [`SourceFd`](crate::SourceFd)); callers use
/// [`Registry::register`] and friends rather than calling these methods.
///
/// # Examples
///
/// ```
/// use pipeloop::event::Source;
/// use pipeloop::{Interest, Registry, SourceFd, Token};
/// use std::io;
/// use std::os::fd::{AsRawFd, OwnedFd};
///
/// struct MyFd(OwnedFd);
///
/// impl Source for MyFd {
///     fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
///         SourceFd(&self.0.as_raw_fd()).register(registry, token, interests)
///     }
///     fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
///         SourceFd(&self.0.as_raw_fd()).reregister(registry, token, interests)
///     }
///     fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
///         SourceFd(&self.0.as_raw_fd()).deregister(registry)
///     }
/// }
///
/// let poll = pipeloop::Poll::new()?;
/// let (_reader, writer) = std::io::pipe()?;
/// let mut mine = MyFd(writer.into());
/// poll.registry().register(&mut mine, Token(0), Interest::WRITABLE)?;
/// poll.registry().deregister(&mut mine)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Source {
    /// Registers `self` with `registry`; see [`Registry::register`].
    ///
    /// # Errors
    ///
    /// As [`Registry::register`].
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()>;

    /// Changes the token and interest; see [`Registry::reregister`].
    ///
    /// # Errors
    ///
    /// As [`Registry::reregister`].
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()>;

    /// Removes `self` from `registry`; see [`Registry::deregister`].
    ///
    /// # Errors
    ///
    /// As [`Registry::deregister`].
    fn deregister(&mut self, registry: &Registry) -> io::Result<()>;
}

impl<T: Source + ?Sized> Source for &mut T {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        (**self).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        (**self).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        (**self).deregister(registry)
    }
}

impl<T: Source + ?Sized> Source for Box<T> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        (**self).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        (**self).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        (**self).deregister(registry)
    }
}

/// Implements [`Source`] for `$ty` by forwarding every method to its field
/// `$field` (anything with the same three methods: a source, or a pipe's
/// inner end).
macro_rules! delegate_source {
    ($ty:ty => $field:ident) => {
        impl $crate::event::Source for $ty {
            fn register(
                &mut self,
                registry: &$crate::Registry,
                token: $crate::Token,
                interests: $crate::Interest,
            ) -> ::std::io::Result<()> {
                self.$field.register(registry, token, interests)
            }

            fn reregister(
                &mut self,
                registry: &$crate::Registry,
                token: $crate::Token,
                interests: $crate::Interest,
            ) -> ::std::io::Result<()> {
                self.$field.reregister(registry, token, interests)
            }

            fn deregister(&mut self, registry: &$crate::Registry) -> ::std::io::Result<()> {
                self.$field.deregister(registry)
            }
        }
    };
}
pub(crate) use delegate_source;
