//! Names the OS groups once, as `cfg` aliases, so the rest of the crate says
//! `#[cfg(pipeloop_kqueue)]` instead of repeating a list of operating
//! systems. Adding an OS to a group is one line here (and the cfg names are
//! declared to rustc in the same table, so a typo is a warning).

use std::env;

const APPLE: [&str; 5] = ["macos", "ios", "tvos", "watchos", "visionos"];

/// Each group: its cfg name and the `target_os` values in it.
fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        // Linux and its relatives: F_SETPIPE_SZ, POLLRDHUP, EPOLLPRI.
        ("pipeloop_linux", vec!["linux", "android"]),
        // Systems with epoll(7).
        ("pipeloop_epoll", vec!["linux", "android"]),
        // Systems with kqueue(2).
        (
            "pipeloop_kqueue",
            [&APPLE[..], &["freebsd", "netbsd", "openbsd", "dragonfly"]].concat(),
        ),
        // kqueue systems whose EVFILT_USER the waker uses; OpenBSD (which
        // has it only since 2025) gets a pipe.
        (
            "pipeloop_evfilt_user",
            [&APPLE[..], &["freebsd", "netbsd", "dragonfly"]].concat(),
        ),
        // kqueue1(O_CLOEXEC) in libc; elsewhere kqueue() then F_SETFD.
        ("pipeloop_kqueue1", vec!["netbsd"]),
        // Systems with ppoll(2), which takes a timespec: the poll(2)
        // backend sleeps finer than a millisecond there. macOS has none.
        (
            "pipeloop_ppoll",
            vec![
                "linux",
                "android",
                "freebsd",
                "netbsd",
                "openbsd",
                "dragonfly",
                "illumos",
            ],
        ),
        // Systems with pipe2(2); the rest use pipe(2) and fcntl(2).
        (
            "pipeloop_pipe2",
            vec![
                "linux",
                "android",
                "freebsd",
                "netbsd",
                "openbsd",
                "dragonfly",
                "illumos",
                "solaris",
                "redox",
                "hurd",
            ],
        ),
    ]
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    for (name, members) in groups() {
        println!("cargo::rustc-check-cfg=cfg({name})");
        if members.contains(&os.as_str()) {
            println!("cargo::rustc-cfg={name}");
        }
    }
}
