//! Names the OS groups once, as `cfg` aliases, so the rest of the crate says
//! `#[cfg(pipeloop_epoll)]` instead of repeating a list of operating systems.
//! Adding an OS to a group is one line here.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(pipeloop_linux)");
    println!("cargo::rustc-check-cfg=cfg(pipeloop_epoll)");
    println!("cargo::rustc-check-cfg=cfg(pipeloop_pipe2)");

    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();

    // Linux and its relatives: F_SETPIPE_SZ, POLLRDHUP, EPOLLPRI interest.
    let linux = ["linux", "android"];
    // Systems with epoll(7).
    let epoll = ["linux", "android"];
    // Systems with pipe2(2); the rest use pipe(2) and fcntl(2).
    let pipe2 = [
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
    ];

    if linux.contains(&os.as_str()) {
        println!("cargo::rustc-cfg=pipeloop_linux");
    }
    if epoll.contains(&os.as_str()) {
        println!("cargo::rustc-cfg=pipeloop_epoll");
    }
    if pipe2.contains(&os.as_str()) {
        println!("cargo::rustc-cfg=pipeloop_pipe2");
    }
}
