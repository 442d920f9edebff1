#!/usr/bin/env bash
# Type-checks pipeloop (library, tests, examples, benches) and runs clippy
# for the Unix targets it claims but this Linux machine cannot run: macOS
# (x86_64 and aarch64), FreeBSD, NetBSD, OpenBSD and DragonFly (the kqueue
# backend), Linux musl, and illumos, which has neither epoll (for pipeloop)
# nor kqueue and so must fall back to poll(2).
#
# Debian's rustc-web 1.96 ships with the matching std source
# (rust-web-src), so `-Zbuild-std` compiles std itself for targets whose
# prebuilt std is not installed. Nothing is linked or run. Warnings are
# errors. The first run compiles std for every target (a few minutes on 2
# cores); later runs reuse target/cross.
#
# Usage: scripts/check-targets.sh [TARGET...]   (default: all of them)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

targets=(
    x86_64-apple-darwin
    aarch64-apple-darwin
    x86_64-unknown-freebsd
    x86_64-unknown-netbsd
    x86_64-unknown-openbsd
    x86_64-unknown-dragonfly
    x86_64-unknown-linux-musl
    x86_64-unknown-illumos
)
if (($#)); then
    targets=("$@")
fi

# The Debian toolchain, installed when missing.
need=()
[ -x /usr/bin/rustc ] && /usr/bin/rustc --version | grep -q '^rustc 1\.9[6-9]' || need+=(rustc-web)
[ -x /usr/bin/cargo ] || need+=(cargo-web)
[ -d /usr/lib/rustlib/src/rust/library ] || need+=(rust-web-src)
[ -x /usr/bin/clippy-driver ] || need+=(rust-web-clippy)
if ((${#need[@]})); then
    echo "==> apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The rustup toolchain (1.95) cannot build the 1.96 std source, so every
# tool here is Debian's, and it gets its own target dir.
export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
# cargo finds `cargo-clippy` (and it `clippy-driver`) on PATH: Debian's first.
export PATH="/usr/bin:$PATH"
export CARGO_TARGET_DIR=target/cross
export RUSTFLAGS="-D warnings"
cargo=/usr/bin/cargo

target_args=()
for t in "${targets[@]}"; do
    target_args+=(--target "$t")
done

echo "==> cargo check --all-targets for ${targets[*]}"
"$cargo" check -q -Zbuild-std=std,panic_abort "${target_args[@]}" --workspace --all-targets

echo "==> cargo clippy --all-targets for ${targets[*]}"
"$cargo" clippy -q -Zbuild-std=std,panic_abort "${target_args[@]}" --workspace --all-targets -- -D warnings

echo "==> every target type-checks and is clippy-clean"
