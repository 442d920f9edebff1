#!/usr/bin/env bash
# Syscalls (strace -c) and user-space instructions (callgrind) per operation
# for every library in benches/pingpong.rs, or (--reactor) for the rows of
# benches/reactor.rs; optionally the timings too.
#
# Each figure is a difference of two runs of the same case with different
# round counts, divided by the difference in rounds, so setup, warm-up and
# teardown cancel and what is left is the cost of one round trip (or wake).
# Both figures are deterministic: unlike the timings they do not depend on
# how busy the machine is.
#
#   scripts/bench-syscalls.sh               syscalls + callgrind, default build
#   scripts/bench-syscalls.sh --poll-build  also the build that forces mio's
#                                           and polling's poll(2) backends
#   scripts/bench-syscalls.sh --timings     also the full timing runs
#   scripts/bench-syscalls.sh --all         all of the above, both builds
#   scripts/bench-syscalls.sh --no-callgrind
#   scripts/bench-syscalls.sh --reactor     benches/reactor.rs instead: the
#                                           EventLoop's dispatch against a
#                                           bare Poll, and timer pairs against
#                                           calloop (with --timings, its full
#                                           timing run too)
#
# Environment: SHORT, LONG (round counts for strace, default 2000/4000),
# CG_SHORT, CG_LONG (for callgrind, default 2000/4000), IDLE_N (pipes for
# the idle case, default 1000), TIMERS_N (live timers for the reactor's
# timer pairs, default "100 10000"), BENCH_TARGET_DIR (default
# target/bench; the poll(2) build goes to "$BENCH_TARGET_DIR-poll").
#
# Needs: cargo, strace; valgrind for the callgrind section (skipped if
# missing). Linux only.
set -euo pipefail

SHORT=${SHORT:-2000}
LONG=${LONG:-4000}
CG_SHORT=${CG_SHORT:-2000}
CG_LONG=${CG_LONG:-4000}
IDLE_N=${IDLE_N:-1000}
TIMERS_N=${TIMERS_N:-100 10000}
POLL_CFGS="--cfg mio_unsupported_force_poll_poll --cfg polling_test_poll_backend"
# The rows of the two ping-pong cases, in both sections.
PINGPONG_LIBS="pipeloop-epoll-edge pipeloop-epoll-level pipeloop-poll-edge pipeloop-poll-level
    mio polling raw-epoll raw-epoll-edge raw-poll"

poll_build=0
timings=0
callgrind=1
reactor=0
for arg in "$@"; do
    case "$arg" in
        --poll-build) poll_build=1 ;;
        --timings) timings=1 ;;
        --all) poll_build=1 timings=1 ;;
        --no-callgrind) callgrind=0 ;;
        --reactor) reactor=1 ;;
        -h | --help)
            sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown argument: $arg (see --help)" >&2
            exit 2
            ;;
    esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${BENCH_TARGET_DIR:-$repo/target/bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v strace >/dev/null || {
    echo "strace is required (apt-get install strace)" >&2
    exit 1
}
if [ "$callgrind" = 1 ] && ! command -v valgrind >/dev/null; then
    echo "note: valgrind not found, skipping callgrind" >&2
    callgrind=0
fi

# Builds bench $3 (default pingpong) into target dir $1 with extra
# RUSTFLAGS $2 and prints its path.
build() {
    local dir=$1 flags=$2 bench=${3:-pingpong}
    (
        cd "$repo"
        CARGO_TARGET_DIR=$dir RUSTFLAGS="${RUSTFLAGS:-} $flags" \
            cargo bench --bench "$bench" --no-run --message-format=json 2>/dev/null
    ) | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1
}

# Prints "calls errors" per syscall from an strace -c summary, one per line.
calls() {
    awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $NF, $4, (NF == 6 ? $5 : 0) }' "$1"
}

# strace_case BIN CASE LIB [EXTRA ARGS...]: one table row.
strace_case() {
    local bin=$1 case=$2 lib=$3
    shift 3
    local s=$work/short.txt l=$work/long.txt
    strace -c -f -o "$s" "$bin" --only "$case" --lib "$lib" --rounds "$SHORT" "$@" >/dev/null 2>&1
    strace -c -f -o "$l" "$bin" --only "$case" --lib "$lib" --rounds "$LONG" "$@" >/dev/null 2>&1
    calls "$s" >"$s.calls"
    calls "$l" >"$l.calls"
    # Per-op delta for each syscall, biggest first, then one table row.
    awk -v d=$((LONG - SHORT)) '
        FNR == NR { c[$1] -= $2; e[$1] -= $3; next }
        { c[$1] += $2; e[$1] += $3 }
        END { for (name in c) printf "%s %.4f %.4f\n", name, c[name] / d, e[name] / d }
    ' "$s.calls" "$l.calls" | sort -k2,2nr -k1,1 |
        awk -v lib="$lib" '
            { total += $2 }
            $2 >= 0.005 || $2 <= -0.005 {
                part = sprintf("%s %.2f", $1, $2)
                if ($3 >= 0.005) part = part sprintf(" (%.2f failed)", $3)
                parts = parts (parts == "" ? "" : ", ") part
            }
            END { printf "| %s | %.2f | %s |\n", lib, total, parts }'
}

syscalls() {
    local bin=$1 label=$2
    echo
    echo "## Syscalls per operation ($label): (calls in $LONG rounds - calls in $SHORT) / $((LONG - SHORT))"
    echo
    for case in pingpong pingpong-timeout; do
        echo "### $case (per round trip)"
        echo
        echo "| library | syscalls | breakdown |"
        echo "|---|---:|---|"
        for lib in $PINGPONG_LIBS; do
            strace_case "$bin" "$case" "$lib"
        done
        echo
    done
    echo
    echo "### idle, N = $IDLE_N, rotating (per event)"
    echo
    echo "| library | syscalls | breakdown |"
    echo "|---|---:|---|"
    for lib in pipeloop-epoll-edge pipeloop-poll-edge mio polling raw-epoll raw-poll; do
        strace_case "$bin" idle "$lib" --n "$IDLE_N"
    done
    echo
    echo "### waker (per wake + poll)"
    echo
    echo "| waker | syscalls | breakdown |"
    echo "|---|---:|---|"
    for lib in pipeloop-epoll-eventfd pipeloop-epoll-pipe pipeloop-poll mio polling-notify; do
        strace_case "$bin" waker "$lib"
    done
}

# Extra valgrind options for `instructions`: the timer pairs count only
# the pairs (see reactor_section).
cg_opts=()

# Total instructions valgrind counted (user space only).
instructions() {
    valgrind --tool=callgrind ${cg_opts[@]+"${cg_opts[@]}"} \
        --callgrind-out-file="$work/cg.out" "$@" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

# cg_per_op BIN CASE LIB [EXTRA ARGS...]: instructions per operation.
cg_per_op() {
    local bin=$1 case=$2 lib=$3 a b
    shift 3
    a=$(instructions "$bin" --only "$case" --lib "$lib" --rounds "$CG_SHORT" "$@")
    b=$(instructions "$bin" --only "$case" --lib "$lib" --rounds "$CG_LONG" "$@")
    awk -v a="$a" -v b="$b" -v d=$((CG_LONG - CG_SHORT)) 'BEGIN { printf "%.0f", (b - a) / d }'
}

# cg_row BIN CASE LIB: one table row of instructions per operation.
cg_row() {
    echo "| $3 | $(cg_per_op "$@") |"
}

callgrind_section() {
    local bin=$1 label=$2
    echo
    echo "## Instructions per operation ($label): callgrind, user space only"
    echo
    echo "(Ir in $CG_LONG rounds - Ir in $CG_SHORT) / $((CG_LONG - CG_SHORT)); the kernel's work is not counted."
    echo
    for case in pingpong pingpong-timeout; do
        echo "| $case (per round trip) | instructions |"
        echo "|---|---:|"
        for lib in $PINGPONG_LIBS; do
            cg_row "$bin" "$case" "$lib"
        done
        echo
    done
    echo
    echo "| waker (per wake + poll) | instructions |"
    echo "|---|---:|"
    for lib in pipeloop-epoll-eventfd pipeloop-epoll-pipe pipeloop-poll mio polling-notify; do
        cg_row "$bin" waker "$lib"
    done
}

# The rows of benches/reactor.rs: each EventLoop row next to the bare Poll
# loop of the same backend, syscalls and instructions per round trip, and
# the instructions of a timer insert + remove pair.
REACTOR_DISPATCH="eventloop-epoll:poll-epoll eventloop-poll:poll-poll raw-epoll-edge:"

reactor_section() {
    local bin=$1 case pair loop bare s_loop s_bare i_loop i_bare n lib
    for case in dispatch dispatch-timer; do
        echo
        echo "## $case: per round trip, EventLoop against a bare Poll"
        echo
        echo "Syscalls: (calls in $LONG rounds - calls in $SHORT) / $((LONG - SHORT)), strace -c."
        echo
        echo "| row | syscalls | breakdown |"
        echo "|---|---:|---|"
        for pair in $REACTOR_DISPATCH; do
            for loop in ${pair%%:*} ${pair#*:}; do
                strace_case "$bin" "$case" "$loop"
            done
        done
        [ "$callgrind" = 1 ] || continue
        echo
        echo "Instructions: (Ir in $CG_LONG rounds - Ir in $CG_SHORT) / $((CG_LONG - CG_SHORT)), callgrind, user space only."
        echo
        echo "| row | instructions | bare Poll row | its instructions | EventLoop - bare |"
        echo "|---|---:|---|---:|---:|"
        for pair in $REACTOR_DISPATCH; do
            loop=${pair%%:*} bare=${pair#*:}
            i_loop=$(cg_per_op "$bin" "$case" "$loop")
            if [ -n "$bare" ]; then
                i_bare=$(cg_per_op "$bin" "$case" "$bare")
                echo "| $loop | $i_loop | $bare | $i_bare | $((i_loop - i_bare)) |"
            else
                echo "| $loop | $i_loop | | | |"
            fi
        done
    done
    [ "$callgrind" = 1 ] || return 0
    echo
    echo "## timers: instructions per insert + remove pair, N timers live"
    echo
    echo "(Ir in $CG_LONG pairs - Ir in $CG_SHORT) / $((CG_LONG - CG_SHORT)), after filling N and 1,000 pairs of warm-up,"
    echo "counting only the pairs (callgrind --toggle-collect): filling the loop takes a few more or fewer"
    echo "instructions from run to run (its deadlines are instants read from the clock), which at large N"
    echo "outweighs the difference."
    echo
    echo "| N live | pipeloop | calloop |"
    echo "|---:|---:|---:|"
    cg_opts=(--toggle-collect='reactor::bench::timers::pairs::{{closure}}*')
    for n in $TIMERS_N; do
        echo "| $n | $(cg_per_op "$bin" timers pipeloop --n "$n" --warmup 1000) | $(cg_per_op "$bin" timers calloop --n "$n" --calloop-max "$n" --warmup 1000) |"
    done
    cg_opts=()
}

if [ "$reactor" = 1 ]; then
    echo "building the reactor benchmark into $target_dir ..." >&2
    bin=$(build "$target_dir" "" reactor)
    [ -x "$bin" ] || {
        echo "could not build benches/reactor.rs" >&2
        exit 1
    }
    echo "# pipeloop reactor benchmark: syscalls and instructions"
    echo
    echo "- $(uname -srm), $(nproc) CPU(s), $(date -u +%Y-%m-%d)"
    echo "- $(strace -V | head -n 1)"
    reactor_section "$bin"
    if [ "$timings" = 1 ]; then
        echo
        echo "# Timings"
        "$bin"
    fi
    exit 0
fi

echo "building the default benchmark into $target_dir ..." >&2
bin=$(build "$target_dir" "")
[ -x "$bin" ] || {
    echo "could not build benches/pingpong.rs" >&2
    exit 1
}
if [ "$poll_build" = 1 ]; then
    echo "building the forced-poll(2) benchmark into $target_dir-poll ..." >&2
    poll_bin=$(build "$target_dir-poll" "$POLL_CFGS")
    [ -x "$poll_bin" ] || {
        echo "could not build the poll(2) variant" >&2
        exit 1
    }
fi

echo "# pipeloop benchmark: syscalls and instructions"
echo
echo "- $(uname -srm), $(nproc) CPU(s), $(date -u +%Y-%m-%d)"
echo "- $(strace -V | head -n 1)"
syscalls "$bin" "default build: mio and polling on epoll"
if [ "$callgrind" = 1 ]; then
    callgrind_section "$bin" "default build"
fi
if [ "$poll_build" = 1 ]; then
    syscalls "$poll_bin" "RUSTFLAGS='$POLL_CFGS': mio and polling on poll(2)"
    if [ "$callgrind" = 1 ]; then
        callgrind_section "$poll_bin" "forced poll(2) build"
    fi
fi
if [ "$timings" = 1 ]; then
    echo
    echo "# Timings, default build"
    "$bin"
    if [ "$poll_build" = 1 ]; then
        echo
        echo "# Timings, RUSTFLAGS='$POLL_CFGS'"
        "$poll_bin"
    fi
fi
