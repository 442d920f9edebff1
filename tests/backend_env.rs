//! `PIPELOOP_BACKEND` picks `Poll::new()`'s backend; a bad value is an
//! error, never a silent fallback.
//!
//! This binary holds ONE test because it sets environment variables, which
//! must not race with another thread reading the environment.

use std::ffi::OsString;
use std::io::ErrorKind;

use pipeloop::{BACKEND_ENV, Backend, Poll};

/// Sets (or, with `None`, removes) `PIPELOOP_BACKEND`.
fn set_backend_env(value: Option<&std::ffi::OsStr>) {
    // SAFETY: this is the only test in this binary, so no other thread of
    // the process reads or writes the environment meanwhile (the test
    // harness's main thread only waits for this one).
    unsafe {
        match value {
            Some(value) => std::env::set_var(BACKEND_ENV, value),
            None => std::env::remove_var(BACKEND_ENV),
        }
    }
}

/// Puts the variable back as it was, also when the test fails.
struct Restore(Option<OsString>);

impl Drop for Restore {
    fn drop(&mut self) {
        set_backend_env(self.0.as_deref());
    }
}

fn poll_with(value: &str) -> std::io::Result<Poll> {
    set_backend_env(Some(value.as_ref()));
    Poll::new()
}

#[test]
fn pipeloop_backend_selects_or_refuses() {
    assert_eq!(BACKEND_ENV, "PIPELOOP_BACKEND");
    let _restore = Restore(std::env::var_os(BACKEND_ENV));
    let default = Backend::available()[0];

    set_backend_env(None);
    assert_eq!(Poll::new().unwrap().backend(), default, "unset");

    assert_eq!(poll_with("").unwrap().backend(), default, "empty");
    assert_eq!(poll_with("poll").unwrap().backend(), Backend::Poll);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        assert_eq!(default, Backend::Epoll);
        assert_eq!(poll_with("epoll").unwrap().backend(), Backend::Epoll);
    }

    let err = poll_with("bogus").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let message = err.to_string();
    assert!(message.contains("bogus"), "{message}");
    assert!(message.contains("PIPELOOP_BACKEND"), "{message}");

    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let err = poll_with("kqueue").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains("kqueue"), "{err}");
    }

    // Not Unicode: refused as well, naming the variable.
    {
        use std::os::unix::ffi::OsStrExt;
        set_backend_env(Some(std::ffi::OsStr::from_bytes(b"po\xffll")));
        let err = Poll::new().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("PIPELOOP_BACKEND"), "{err}");
    }

    // Poll::with_backend ignores the variable.
    set_backend_env(Some("bogus".as_ref()));
    for &backend in Backend::available() {
        assert_eq!(Poll::with_backend(backend).unwrap().backend(), backend);
    }
}
