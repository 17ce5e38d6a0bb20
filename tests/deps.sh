#!/usr/bin/env bash
# Installs what clawgate's build, tests and benchmarks need on Debian 12.
# Debian packages only (apt-get, as root), plus the official `openai` npm
# client into tests/e2e/node/ (a local folder, never global) for the
# client-compatibility tests.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(make gcc pkg-config git
      libck-dev libmsgpack-dev libcurl4-openssl-dev libsqlite3-dev libmicrohttpd-dev libjson-c-dev
      clang libclang-rt-14-dev clang-format
      python3 nodejs npm sqlite3 curl
      wrk nginx-light)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
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
