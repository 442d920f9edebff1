#!/usr/bin/env bash
# Throughput of `poller run`: 1 GiB of ~60-byte lines from 4 commands
# (`yes LINE | head -c 256M` each) to /dev/null, side by side in one run with
#
#   cat       each generator piped through its own `cat` (the ceiling for a
#             program that copies: no merging, no prefixes);
#   parallel  GNU parallel --line-buffer, untagged and tagged (--tag);
#   poller    poller run -q, prefixes on.
#
# The cases take turns, ROUNDS times (default 5); each is reported as the
# median MB/s (MB = 10^6 bytes), and as a ratio to untagged parallel from
# the same rounds. Installs GNU parallel (Debian package `parallel`) if it
# is missing. Linux or any Unix with GNU parallel.
#
#   scripts/bench-poller.sh              # all cases, 5 rounds
#   ROUNDS=9 scripts/bench-poller.sh
#   CASES="cat poller" scripts/bench-poller.sh
#   SIZE=64M scripts/bench-poller.sh     # per generator (default 256M)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-5}
SIZE=${SIZE:-256M}
CASES=${CASES:-cat parallel parallel-tag poller}
LINE='poller benchmark line: the quick brown fox jumps over the dog'
GEN="yes '$LINE' | head -c $SIZE"

if ! command -v parallel >/dev/null 2>&1; then
    echo "==> installing GNU parallel"
    if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get install -y parallel >/dev/null 2>&1 ||
        { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y parallel >/dev/null; }
fi

echo "==> cargo build --release -p poller"
cargo build --release -q -p poller
poller=target/release/poller

bytes=$(numfmt --from=iec "$SIZE")
total=$((4 * bytes))

run_case() {
    case "$1" in
    cat)
        for _ in 1 2 3 4; do sh -c "$GEN | cat" >/dev/null & done
        wait
        ;;
    parallel) parallel --will-cite --line-buffer ::: "$GEN" "$GEN" "$GEN" "$GEN" >/dev/null ;;
    parallel-tag) parallel --will-cite --line-buffer --tag ::: "$GEN" "$GEN" "$GEN" "$GEN" >/dev/null ;;
    poller) "$poller" run -q "$GEN" "$GEN" "$GEN" "$GEN" >/dev/null ;;
    esac
}

# Checks first that poller loses nothing: every line, prefixed, once.
lines=$("$poller" run -q "$GEN" "$GEN" "$GEN" "$GEN" | wc -l)
expected=$((4 * ((bytes + ${#LINE}) / (${#LINE} + 1))))
if [ "$lines" -ne "$expected" ]; then
    echo "poller printed $lines lines, expected $expected" >&2
    exit 1
fi

declare -A times
for round in $(seq "$ROUNDS"); do
    for c in $CASES; do
        start=$(date +%s.%N)
        run_case "$c"
        end=$(date +%s.%N)
        times[$c]+="$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}') "
    done
    echo "round $round done"
done

median() {
    tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

echo
echo "$((total / 1048576)) MiB = 4 x $SIZE of ${#LINE}-byte lines, $ROUNDS rounds, median; machine: $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')"
printf '%-14s %10s %10s %16s\n' case seconds MB/s "x parallel"
base=""
[ -n "${times[parallel]:-}" ] && base=$(median "${times[parallel]}")
for c in $CASES; do
    m=$(median "${times[$c]}")
    rate=$(awk -v t="$total" -v m="$m" 'BEGIN {printf "%d", t / m / 1e6}')
    ratio="-"
    [ -n "$base" ] && ratio=$(awk -v b="$base" -v m="$m" 'BEGIN {printf "%.2f", b / m}')
    printf '%-14s %10.3f %10s %16s\n' "$c" "$m" "$rate" "$ratio"
done
