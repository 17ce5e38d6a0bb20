#!/usr/bin/env bash
# Runs every test clawgate has and ends with one line "N passed, N failed".
#
#   format-check           one test
#   unit tests             every tests/*/test_*.c, built with ASan+UBSan
#   concurrency tests      the ones marked "tsan: yes" again, built with TSan
#   fuzz smoke             each fuzz/fuzz_*.c for a few seconds
#   end-to-end             tests/e2e/test_*.py against the ASan build of the
#                          real binary and a fake upstream on 127.0.0.1
#
# Each test prints "ok - name" or "not ok - name"; a binary that dies without
# reporting (signal, sanitizer abort, timeout) counts as one failure.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
log_dir=${CG_TEST_LOG_DIR:-build-test-logs}
rm -rf "$log_dir"; mkdir -p "$log_dir"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

# run_counted NAME TIMEOUT CMD...: run a test program, add its ok/not ok lines.
run_counted() {
    local name=$1 limit=$2; shift 2
    local out="$log_dir/$(echo "$name" | tr '/ ' '__').log"
    timeout -k 5 "$limit" "$@" >"$out" 2>&1
    local rc=$?
    local ok nok
    ok=$(grep -c '^ok - ' "$out")
    nok=$(grep -c '^not ok - ' "$out")
    passed=$((passed + ok))
    failed=$((failed + nok))
    if [ "$nok" -gt 0 ] || [ "$rc" -ne 0 ]; then
        if [ "$nok" -eq 0 ]; then
            failed=$((failed + 1))
            [ "$rc" -eq 124 ] && echo "not ok - $name: timed out after ${limit}s" || echo "not ok - $name: exited $rc"
        fi
        failures+=("$name")
        echo "--- $name (exit $rc): last lines of $out"
        grep -E '^(not ok|#)' "$out" | tail -n 20
        tail -n 40 "$out"
        echo "---"
    fi
    echo "$name: $ok passed, $nok failed"
}

step() { echo; echo "== $*"; }

step "format-check"
if make -s format-check; then passed=$((passed + 1)); echo "ok - format-check"; else failed=$((failed + 1)); failures+=(format-check); echo "not ok - format-check"; fi

step "build (ASan+UBSan, TSan)"
make -s -j2 asan >"$log_dir/build-asan.log" 2>&1 || { cat "$log_dir/build-asan.log"; echo "0 passed, 1 failed"; exit 1; }
make -s -j2 tsan >"$log_dir/build-tsan.log" 2>&1 || { cat "$log_dir/build-tsan.log"; echo "0 passed, 1 failed"; exit 1; }

step "unit tests (ASan+UBSan)"
for src in tests/*/test_*.c; do
    [ -e "$src" ] || continue
    bin="build-asan/${src%.c}"
    run_counted "asan:${src%.c}" 600 "$bin"
done

step "concurrency tests (TSan)"
for src in $(grep -l 'tsan: yes' tests/*/test_*.c 2>/dev/null); do
    bin="build-tsan/${src%.c}"
    run_counted "tsan:${src%.c}" 600 "$bin"
done

step "fuzz smoke"
if ls fuzz/fuzz_*.c >/dev/null 2>&1; then
    run_counted "fuzz-smoke" 900 make -s -j2 fuzz-smoke
fi

step "end-to-end"
export CLAWGATE_BIN=${CLAWGATE_BIN:-$PWD/build-asan/clawgate}
for t in tests/e2e/test_*.py; do
    [ -e "$t" ] || continue
    run_counted "e2e:$(basename "$t" .py)" 900 python3 "$t"
done
# Plain-HTTP upstreams (the fake one) go through the built-in client; run the chat and failover
# tests once more with every transfer on libcurl, the transport of https:// providers.
for t in test_chat test_failover; do
    run_counted "e2e:$t[curl]" 900 env CLAWGATE_HTTP_CLIENT=curl python3 "tests/e2e/$t.py"
done

echo
if [ ${#failures[@]} -gt 0 ]; then echo "failing: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
