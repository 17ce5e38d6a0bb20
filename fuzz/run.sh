#!/usr/bin/env bash
# Runs every built fuzz target: "smoke" for a few seconds each (part of
# make test), "long" for minutes each (make fuzz). Seeds live in
# fuzz/corpus/<target>/; new inputs found go to build-fuzz/corpus-<target>/.
# Prints "ok - fuzz:<target>" or "not ok - fuzz:<target>" per target.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-smoke}
case "$mode" in
smoke) secs=${FUZZ_SECONDS:-8} ;;
long) secs=${FUZZ_SECONDS:-300} ;;
*) echo "usage: fuzz/run.sh smoke|long" >&2; exit 2 ;;
esac
rc=0
for bin in build-fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    seeds="fuzz/corpus/$name"
    work="build-fuzz/corpus-$name"
    mkdir -p "$work"
    args=("$work")
    [ -d "$seeds" ] && args+=("$seeds")
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
        -artifact_prefix="build-fuzz/$name-" "${args[@]}" >"build-fuzz/$name.log" 2>&1; then
        echo "ok - fuzz:$name ($(grep -c . "build-fuzz/$name.log") log lines)"
    else
        echo "not ok - fuzz:$name"
        tail -n 40 "build-fuzz/$name.log"
        rc=1
    fi
done
exit $rc
