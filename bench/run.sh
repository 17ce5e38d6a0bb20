#!/usr/bin/env bash
# `make bench`: run every benchmark program built from bench/*.c ($BUILD/bench/*), then the HTTP
# benchmark (bench/http.sh: clawgate against an nginx proxy hop). Benchmarks print figures and
# never assert times; the exit status says only whether each one ran (non-zero if any failed,
# or if http.sh had to skip clawgate).
#
# Programs run one after another, never in parallel: they would measure each other. On a shared
# machine, read the figures as noisy (http.sh prints the load average with its results).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build}
rc=0
failed=()

for prog in "$BUILD"/bench/*; do
    if [ ! -f "$prog" ] || [ ! -x "$prog" ]; then
        continue
    fi
    echo "== $prog"
    "$prog"
    st=$?
    if [ "$st" -ne 0 ]; then
        echo "*** $prog exited $st"
        failed+=("$(basename "$prog") (exit $st)")
        rc=1
    fi
    echo
done

echo "== bench/http.sh"
BUILD=$BUILD bash bench/http.sh
st=$?
if [ "$st" -ne 0 ]; then
    failed+=("http.sh (exit $st$([ "$st" -eq 2 ] && echo ': clawgate skipped'))")
    rc=1
fi

echo
if [ "${#failed[@]}" -gt 0 ]; then
    echo "bench: not all benchmarks ran: ${failed[*]}"
else
    echo "bench: all benchmarks ran"
fi
exit "$rc"
