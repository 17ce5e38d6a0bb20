#!/usr/bin/env bash
# Installs what clawgate's build, tests and benchmarks need on Debian 12.
# Debian packages only (apt-get, as root), plus the official `openai` npm
# client into tests/e2e/node/ (a local folder, never global) for the
# client-compatibility tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each need is "check|package": a pkg-config module (pc:), a command (cmd:) or
# a file (file:). Commands count wherever they come from (a machine may ship
# its own Node.js or Python), so only what is truly absent is installed.
needs=(
    "cmd:make|make" "cmd:gcc|gcc" "cmd:pkg-config|pkg-config" "cmd:git|git"
    "pc:ck|libck-dev" "pc:msgpack|libmsgpack-dev" "pc:libcurl|libcurl4-openssl-dev"
    "pc:sqlite3|libsqlite3-dev" "pc:libmicrohttpd|libmicrohttpd-dev" "pc:json-c|libjson-c-dev"
    "cmd:clang|clang" "file:/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a|libclang-rt-14-dev"
    "cmd:clang-format|clang-format"
    "cmd:python3|python3" "cmd:node|nodejs" "cmd:npm|npm" "cmd:sqlite3|sqlite3" "cmd:curl|curl"
    "cmd:wrk|wrk" "cmd:nginx|nginx-light"
)

missing=()
for need in "${needs[@]}"; do
    check=${need%%|*}
    pkg=${need#*|}
    case "$check" in
    pc:*) pkg-config --exists "${check#pc:}" 2>/dev/null && continue ;;
    cmd:*) command -v "${check#cmd:}" >/dev/null 2>&1 && continue ;;
    file:*) [ -e "${check#file:}" ] && continue ;;
    esac
    missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "make deps: missing packages: ${missing[*]}; run 'make deps' as root" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
    # nginx-light's package starts a system nginx on :80; the benchmark runs
    # its own instance on loopback, so the system one is not wanted.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
    if [ -f /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
fi

if [ -f tests/e2e/node/package.json ] && [ ! -d tests/e2e/node/node_modules/openai ]; then
    (cd tests/e2e/node && npm install --no-audit --no-fund --loglevel=error)
fi
echo "make deps: ok"
