#!/usr/bin/env bash
# HTTP benchmark: clawgate against a plain nginx proxy hop, both in front of the same zero-delay
# upstream (nginx answering fixed replies). For each scenario it loads three targets with wrk,
# same connections and duration:
#
#   direct    wrk -> upstream                      (the floor: client + upstream cost)
#   nginx     wrk -> nginx proxy -> upstream       (the yardstick)
#   clawgate  wrk -> clawgate -> upstream          (what we measure)
#
# and prints, per target: req/s, p50/p99 latency, CPU per request of the hop's own process, and
# the p50 latency it adds over direct; then the line
#   clawgate/nginx overhead ratio: added-p50 X.Xx, CPU/req X.Xx
# and one machine-readable line per scenario starting with "BENCH_JSON ".
#
# Budgets (docs/benchmarks.md): clawgate adds < 100 us at p50, CPU/request within 2x of nginx.
# Nothing here asserts a time: the machine is shared, figures are for reading.
#
# Scenarios: small (333 B non-streaming chat request), openclaw (36 KB OpenClaw request,
# non-streaming), small-stream (333 B, stream: true, 21-chunk SSE reply + usage + [DONE]);
# openclaw-stream is available but not in the default set.
#
# Exit status: 0 all targets ran without errors; 1 a target failed or returned errors;
# 2 clawgate was skipped (not built, failed to start or to answer) -- direct and nginx still run.
#
# Environment (all optional):
#   BUILD=build                   build directory holding clawgate
#   CLAWGATE_BIN=$BUILD/clawgate  gateway binary
#   BENCH_DURATION=10s            each measured run; BENCH_WARMUP=2s before each target
#   BENCH_CONNS=8                 connections of the throughput run (the latency run uses 1)
#   BENCH_SCENARIOS="small openclaw small-stream"
#   BENCH_TARGETS="direct nginx clawgate"
#   BENCH_API_KEY=sk-bench        bearer token sent by wrk (clawgate tenants, if configured)
#   BENCH_JSON_OUT=FILE           also append the JSON lines (without the prefix) to FILE
#   BENCH_STORE=false             run clawgate without its session store (the hop alone)
#   BENCH_KEEP_TMP=1              keep the temp dir (configs, logs) after a successful run
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

BUILD=${BUILD:-build}
CLAWGATE_BIN=${CLAWGATE_BIN:-$BUILD/clawgate}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNS=${BENCH_CONNS:-8}
SCENARIOS=${BENCH_SCENARIOS:-small openclaw small-stream}
TARGETS=${BENCH_TARGETS:-direct nginx clawgate}
API_KEY=${BENCH_API_KEY:-sk-bench}
JSON_OUT=${BENCH_JSON_OUT:-}
PATH_CC=/v1/chat/completions

log() { printf '%s\n' "$*" >&2; }
die() {
    log "http.sh: $*"
    exit 1
}

for tool in wrk nginx curl ss awk; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install wrk nginx-light curl iproute2)"
done
CLK_TCK=$(getconf CLK_TCK)

# --- processes: everything started here is stopped here, by pid ---------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clawgate-bench.XXXXXX") || die "mktemp failed"
chmod 755 "$TMP" # nginx workers run as 'nobody' when started by root and need to reach it
PIDS=()
WRK_PID=
FAILED=0
CLAWGATE_PID=
CLAWGATE_SKIP=
LAST_ANSWER= # what the last check_answer saw, for messages

alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $st != Z* ]]
}

stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        alive "$pid" || break
        sleep 0.1
    done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    [ -n "$WRK_PID" ] && stop_pid "$WRK_PID"
    for pid in "${PIDS[@]}"; do
        [ -n "$pid" ] && stop_pid "$pid"
    done
    # Keep configs and logs when they can explain something: a failure, or a clawgate that was
    # built but did not serve. A missing binary alone leaves nothing worth reading.
    if [ "${BENCH_KEEP_TMP:-0}" = 1 ] || [ "$FAILED" != 0 ] ||
        { [ -n "$CLAWGATE_SKIP" ] && [ -e "$TMP/clawgate.log" ]; } ||
        { [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && [ "$rc" -ne 130 ]; }; then
        log "http.sh: configs and logs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "http.sh: interrupted"; exit 130' INT TERM

# --- ports ------------------------------------------------------------------------------------
USED_PORTS=" $(ss -Htln 2>/dev/null | awk '{n = split($4, a, ":"); printf "%s ", a[n]}') "
# pick_port VAR: a port nobody listens on (and not handed out before) into VAR.
pick_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        case $USED_PORTS in *" $p "*) continue ;; esac
        USED_PORTS+="$p "
        printf -v "$1" %s "$p"
        return
    done
}
pick_port U1 # upstream, non-streaming
pick_port U2 # upstream, SSE
pick_port P1 # nginx proxy -> U1
pick_port P2 # nginx proxy -> U2
pick_port CG # clawgate

# --- scenarios --------------------------------------------------------------------------------
scenario_body() {
    case $1 in
    small) echo "$ROOT/bench/bodies/small.json" ;;
    small-stream) echo "$ROOT/bench/bodies/small-stream.json" ;;
    openclaw) echo "$ROOT/bench/bodies/openclaw.json" ;;
    openclaw-stream) echo "$ROOT/bench/bodies/openclaw-stream.json" ;;
    *) return 1 ;;
    esac
}
scenario_stream() { case $1 in *-stream) echo 1 ;; *) echo 0 ;; esac }

for s in $SCENARIOS; do
    b=$(scenario_body "$s") || die "unknown scenario '$s'"
    [ -r "$b" ] || die "missing body $b"
done

target_url() { # target stream
    local port
    case $1 in
    direct) [ "$2" = 1 ] && port=$U2 || port=$U1 ;;
    nginx) [ "$2" = 1 ] && port=$P2 || port=$P1 ;;
    clawgate) port=$CG ;;
    esac
    echo "http://127.0.0.1:$port$PATH_CC"
}

# check_answer URL BODY STREAM: one request; 0 if it is a 200 with a chat completion or, when
# streaming, an SSE stream of chunks ending in [DONE], with a usage chunk if the body asked for
# one (a gateway that adds include_usage upstream for its own accounting should not pass the
# usage chunk to a client that did not ask).
check_answer() {
    LAST_ANSWER="no connection"
    LAST_ANSWER=$(curl -sS -m 5 -o "$TMP/check.out" -w 'HTTP %{http_code}' \
        -H 'Content-Type: application/json' -H "Authorization: Bearer $API_KEY" \
        --data-binary "@$2" "$1" 2>"$TMP/check.err") || return 1
    [ "$LAST_ANSWER" = "HTTP 200" ] || return 1
    LAST_ANSWER="HTTP 200 with an unexpected body"
    if [ "$3" = 1 ]; then
        grep -q '^data: \[DONE\]' "$TMP/check.out" || return 1
        grep -q 'chat\.completion\.chunk' "$TMP/check.out" || return 1
        if grep -q '"include_usage": *true' "$2"; then
            grep -q '"usage"' "$TMP/check.out" || return 1
        fi
    else
        grep -q 'chat\.completion' "$TMP/check.out" && grep -q '"choices"' "$TMP/check.out"
    fi
}

# wait_answer PID URL BODY STREAM: retry check_answer for up to 10 s while PID lives.
wait_answer() {
    for _ in $(seq 100); do
        check_answer "$2" "$3" "$4" && return 0
        alive "$1" || return 1
        sleep 0.1
    done
    return 1
}

# --- servers ----------------------------------------------------------------------------------
# start_nginx NAME: render bench/nginx-NAME.conf.in, start it in the foreground of a background
# job (so $! is the master), wait for its single worker; sets NAME_MASTER and NAME_WORKER.
start_nginx() {
    local name=$1 master worker="" d
    for d in body proxy fastcgi uwsgi scgi; do mkdir -p "$TMP/$name/$d"; done
    sed -e "s#@TMP@#$TMP#g" -e "s#@U1@#$U1#g" -e "s#@U2@#$U2#g" -e "s#@P1@#$P1#g" \
        -e "s#@P2@#$P2#g" "$ROOT/bench/nginx-$name.conf.in" >"$TMP/nginx-$name.conf"
    nginx -p "$TMP/$name/" -c "$TMP/nginx-$name.conf" -g "daemon off; pid $TMP/$name.pid;" \
        >"$TMP/$name.out" 2>&1 &
    master=$!
    PIDS+=("$master")
    for _ in $(seq 50); do
        alive "$master" || break
        worker=$(ps -o pid= --ppid "$master" | awk 'NR == 1 {print $1}')
        [ -n "$worker" ] && break
        sleep 0.1
    done
    if [ -z "$worker" ]; then
        cat "$TMP/$name.out" "$TMP/$name.error.log" >&2 2>/dev/null
        die "nginx ($name) did not start"
    fi
    printf -v "${name^^}_MASTER" %s "$master"
    printf -v "${name^^}_WORKER" %s "$worker"
}

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "== clawgate HTTP benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $START_LOAD"
log "   $(nginx -v 2>&1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
log "   wrk -t1 -c$CONNS (throughput) and -c1 (latency), $DURATION each after a $WARMUP warm-up"

start_nginx upstream
wait_answer "$UPSTREAM_MASTER" "http://127.0.0.1:$U1$PATH_CC" "$ROOT/bench/bodies/small.json" 0 ||
    die "upstream :$U1 does not answer a chat completion"
wait_answer "$UPSTREAM_MASTER" "http://127.0.0.1:$U2$PATH_CC" "$ROOT/bench/bodies/small.json" 1 ||
    die "upstream :$U2 does not answer an SSE stream"
log "   upstream nginx :$U1 (json) :$U2 (sse), worker pid $UPSTREAM_WORKER"

WANT_NGINX=0
WANT_CLAWGATE=0
case " $TARGETS " in *" nginx "*) WANT_NGINX=1 ;; esac
case " $TARGETS " in *" clawgate "*) WANT_CLAWGATE=1 ;; esac

if [ "$WANT_NGINX" = 1 ]; then
    start_nginx proxy
    wait_answer "$PROXY_MASTER" "http://127.0.0.1:$P1$PATH_CC" "$ROOT/bench/bodies/small.json" 0 ||
        die "nginx proxy :$P1 does not answer"
    wait_answer "$PROXY_MASTER" "http://127.0.0.1:$P2$PATH_CC" "$ROOT/bench/bodies/small.json" 1 ||
        die "nginx proxy :$P2 does not answer"
    log "   nginx proxy :$P1 -> :$U1, :$P2 -> :$U2, worker pid $PROXY_WORKER"
fi

if [ "$WANT_CLAWGATE" = 1 ]; then
    cat >"$TMP/clawgate.json5" <<EOF
// Generated by bench/http.sh: two providers on the zero-delay upstream, one per reply kind
// (nginx cannot read the body, so the upstream's port decides JSON or SSE).
{
  agents: { defaults: { model: { primary: "bench/m1" } } },
  models: {
    mode: "replace",
    providers: {
      bench: {
        baseUrl: "http://127.0.0.1:$U1/v1",
        apiKey: "sk-upstream",
        api: "openai-completions",
        models: [{ id: "m1", name: "bench m1 (json)", contextWindow: 200000, maxTokens: 8192 }],
      },
      benchs: {
        baseUrl: "http://127.0.0.1:$U2/v1",
        apiKey: "sk-upstream",
        api: "openai-completions",
        models: [{ id: "m1", name: "bench m1 (sse)", contextWindow: 200000, maxTokens: 8192 }],
      },
    },
  },
  clawgate: {
    listen: "127.0.0.1:$CG",
    store: { path: "$TMP/clawgate.db", enabled: ${BENCH_STORE:-true} },
    health: { intervalSeconds: -1 },
  },
}
EOF
    if [ ! -x "$CLAWGATE_BIN" ]; then
        CLAWGATE_SKIP="$CLAWGATE_BIN not built (make all)"
    else
        "$CLAWGATE_BIN" serve --config "$TMP/clawgate.json5" >"$TMP/clawgate.log" 2>&1 &
        CLAWGATE_PID=$!
        PIDS+=("$CLAWGATE_PID")
        if ! wait_answer "$CLAWGATE_PID" "http://127.0.0.1:$CG$PATH_CC" \
            "$ROOT/bench/bodies/small.json" 0; then
            if alive "$CLAWGATE_PID"; then
                CLAWGATE_SKIP="clawgate :$CG did not answer a chat completion within 10 s"
                CLAWGATE_SKIP+=" (last: $LAST_ANSWER)"
            else
                CLAWGATE_SKIP="clawgate exited at start"
            fi
            log "   --- last lines of $TMP/clawgate.log:"
            tail -n 20 "$TMP/clawgate.log" >&2
            log "   --- last answer:"
            head -c 600 "$TMP/check.out" "$TMP/check.err" >&2 2>/dev/null
            log ""
            stop_pid "$CLAWGATE_PID"
            # Reaped: forget the pid, so that cleanup can never signal a process reusing it.
            local_pids=()
            for p in "${PIDS[@]}"; do [ "$p" = "$CLAWGATE_PID" ] || local_pids+=("$p"); done
            PIDS=("${local_pids[@]}")
            CLAWGATE_PID=
        else
            log "   clawgate :$CG (pid $CLAWGATE_PID, $CLAWGATE_BIN)"
        fi
    fi
    [ -n "$CLAWGATE_SKIP" ] && log "   *** clawgate SKIPPED: $CLAWGATE_SKIP"
fi

# --- measurement ------------------------------------------------------------------------------
declare -A R # R[scenario.target.field]

# cpu_ticks PID: utime + stime of the whole process (all threads, live and exited), in ticks.
cpu_ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo -1
        return
    }
    s=${s##*) } # the command name may hold spaces; fields restart after its ')'
    # shellcheck disable=SC2086
    set -- $s
    echo $((${12} + ${13}))
}

# run_wrk KEY CONNS DURATION URL BODY PID: one wrk run; stores KEY.{requests,rps,p50_us,...,
# cpu_us_per_req (PID's), up_cpu_us_per_req (upstream worker's)} in R.
run_wrk() {
    local key=$1 conns=$2 dur=$3 url=$4 body=$5 pid=$6 c0 c1 u0 u1 line kv out="$TMP/wrk.out"
    c0=$(cpu_ticks "$pid")
    u0=$(cpu_ticks "$UPSTREAM_WORKER")
    wrk -t1 -c"$conns" -d"$dur" --timeout 5s -s "$ROOT/bench/post.lua" "$url" \
        -- "$body" "$API_KEY" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID"
    WRK_PID=
    c1=$(cpu_ticks "$pid")
    u1=$(cpu_ticks "$UPSTREAM_WORKER")
    line=$(grep '^WRK_RESULT ' "$out")
    if [ -z "$line" ]; then
        log "   wrk failed for $key:"
        cat "$out" >&2
        R[$key.requests]=0
        R[$key.errors]=1
        return 1
    fi
    for kv in $line; do
        case $kv in *=*) R[$key.${kv%%=*}]=${kv#*=} ;; esac
    done
    R[$key.rps]=$(awk -v n="${R[$key.requests]}" -v d="${R[$key.duration_us]}" \
        'BEGIN { printf "%.0f", (d > 0 ? n * 1e6 / d : 0) }')
    R[$key.cpu_us_per_req]=$(per_req "$c0" "$c1" "${R[$key.requests]}")
    R[$key.up_cpu_us_per_req]=$(per_req "$u0" "$u1" "${R[$key.requests]}")
    return 0
}

# per_req T0 T1 N: microseconds of CPU per request from two tick readings, or "null".
per_req() {
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" \
        'BEGIN { if (a < 0 || b < 0 || n <= 0) print "null"; else printf "%.1f", (b - a) * 1e6 / hz / n }'
}

# measure SCENARIO TARGET: warm-up, throughput run at -c$CONNS, latency run at -c1.
measure() {
    local scen=$1 target=$2 body stream url pid k="$1.$2" e
    body=$(scenario_body "$scen")
    stream=$(scenario_stream "$scen")
    url=$(target_url "$target" "$stream")
    case $target in
    direct) pid=$UPSTREAM_WORKER ;;
    nginx) pid=$PROXY_WORKER ;;
    clawgate) pid=$CLAWGATE_PID ;;
    esac
    if ! check_answer "$url" "$body" "$stream"; then
        log "   $target: bad answer to the $scen request ($LAST_ANSWER), not measured:"
        head -c 600 "$TMP/check.out" "$TMP/check.err" >&2 2>/dev/null
        log ""
        R[$k.status]="bad answer ($LAST_ANSWER)"
        FAILED=1
        return
    fi
    log "   $scen / $target: warm-up $WARMUP, -c$CONNS $DURATION, -c1 $DURATION"
    run_wrk "$k.warm" "$CONNS" "$WARMUP" "$url" "$body" "$pid"
    if ! run_wrk "$k.c8" "$CONNS" "$DURATION" "$url" "$body" "$pid" ||
        ! run_wrk "$k.c1" 1 "$DURATION" "$url" "$body" "$pid"; then
        R[$k.status]="wrk failed (see its output above)"
        FAILED=1
        return
    fi
    e=$((${R[$k.c8.errors]:-0} + ${R[$k.c8.status_errors]:-0} + ${R[$k.c1.errors]:-0} + \
        ${R[$k.c1.status_errors]:-0}))
    R[$k.errors]=$e
    [ "$e" -gt 0 ] && FAILED=1
    R[$k.status]=ok
}

# --- report -----------------------------------------------------------------------------------
num() { # value or "null" -> for printf
    [ -z "${1:-}" ] || [ "$1" = null ] && echo "-" || echo "$1"
}
sub() { # a - b, or null
    awk -v a="${1:-null}" -v b="${2:-null}" \
        'BEGIN { if (a == "null" || b == "null" || a == "" || b == "") print "null"; else printf "%.0f", a - b }'
}
ratio() { # a / b as X.X, or null when b <= 0
    awk -v a="${1:-null}" -v b="${2:-null}" \
        'BEGIN { if (a == "null" || b == "null" || a == "" || b == "" || b + 0 <= 0) print "null"; else printf "%.1f", a / b }'
}

REPORT=""
JSON_LINES=""
report_scenario() {
    local scen=$1 t k body bytes stream line json tj first=1 a_cg
    body=$(scenario_body "$scen")
    bytes=$(wc -c <"$body")
    stream=$(scenario_stream "$scen")
    line=$(printf '\n%s: %s B request, %s; wrk -t1, -c%s and -c1, %s each; load at start %s\n' \
        "$scen" "$bytes" "$([ "$stream" = 1 ] && echo "stream: true (SSE)" || echo "non-streaming")" \
        "$CONNS" "$DURATION" "$START_LOAD")
    line+=$(printf '\n%-9s %8s %7s %7s %8s %8s %8s %8s %9s %6s' target "req/s" p50 p99 \
        "p50@c$CONNS" "p99@c$CONNS" "cpu/req" "cpu@c1" "added-p50" errors)
    json="{\"scenario\":\"$scen\",\"body_bytes\":$bytes,\"stream\":$([ "$stream" = 1 ] && echo true || echo false)"
    json+=",\"conns\":$CONNS,\"duration\":\"$DURATION\",\"cores\":$(nproc),\"load\":\"$START_LOAD\",\"targets\":{"
    for t in direct nginx clawgate; do
        k="$scen.$t"
        if [ "${R[$k.status]:-}" != ok ]; then
            local why=${R[$k.status]:-not run}
            [ "$t" = clawgate ] && [ -n "$CLAWGATE_SKIP" ] && why="skipped: $CLAWGATE_SKIP"
            case " $TARGETS " in *" $t "*) ;; *) why="not selected" ;; esac
            line+=$(printf '\n%-9s %s' "$t" "$why")
            continue
        fi
        R[$k.added_p50_us]=$(sub "${R[$k.c1.p50_us]}" "${R[$scen.direct.c1.p50_us]:-null}")
        R[$k.added_p50_c8_us]=$(sub "${R[$k.c8.p50_us]}" "${R[$scen.direct.c8.p50_us]:-null}")
        line+=$(printf '\n%-9s %8s %7s %7s %8s %8s %8s %8s %9s %6s' "$t" "${R[$k.c8.rps]}" \
            "${R[$k.c1.p50_us]}" "${R[$k.c1.p99_us]}" "${R[$k.c8.p50_us]}" "${R[$k.c8.p99_us]}" \
            "$(num "${R[$k.c8.cpu_us_per_req]}")" "$(num "${R[$k.c1.cpu_us_per_req]}")" \
            "$([ "$t" = direct ] && echo "-" || num "${R[$k.added_p50_us]}")" "${R[$k.errors]}")
        tj="\"$t\":{\"rps\":${R[$k.c8.rps]},\"p50_us\":${R[$k.c1.p50_us]},\"p99_us\":${R[$k.c1.p99_us]}"
        tj+=",\"p50_c${CONNS}_us\":${R[$k.c8.p50_us]},\"p99_c${CONNS}_us\":${R[$k.c8.p99_us]}"
        tj+=",\"rps_c1\":${R[$k.c1.rps]},\"cpu_us_per_req\":${R[$k.c8.cpu_us_per_req]}"
        tj+=",\"cpu_us_per_req_c1\":${R[$k.c1.cpu_us_per_req]}"
        tj+=",\"upstream_cpu_us_per_req\":${R[$k.c8.up_cpu_us_per_req]}"
        if [ "$t" != direct ]; then
            tj+=",\"added_p50_us\":${R[$k.added_p50_us]},\"added_p50_c${CONNS}_us\":${R[$k.added_p50_c8_us]}"
        fi
        tj+=",\"requests\":$((${R[$k.c8.requests]} + ${R[$k.c1.requests]})),\"errors\":${R[$k.errors]}}"
        [ $first = 1 ] && first=0 || json+=","
        json+=$tj
    done
    a_cg=$(ratio "${R[$scen.clawgate.added_p50_us]:-null}" "${R[$scen.nginx.added_p50_us]:-null}")
    local c_cg c1_cg
    c_cg=$(ratio "${R[$scen.clawgate.c8.cpu_us_per_req]:-null}" "${R[$scen.nginx.c8.cpu_us_per_req]:-null}")
    c1_cg=$(ratio "${R[$scen.clawgate.c1.cpu_us_per_req]:-null}" "${R[$scen.nginx.c1.cpu_us_per_req]:-null}")
    json+="},\"ratio_clawgate_nginx\":{\"added_p50\":$a_cg,\"cpu_per_req\":$c_cg"
    json+=",\"cpu_per_req_c1\":$c1_cg}"
    local skip=${CLAWGATE_SKIP//\"/}
    [ -n "$skip" ] && json+=",\"clawgate_skipped\":\"$skip\""
    json+="}"
    if [ "${R[$scen.clawgate.status]:-}" = ok ] && [ "${R[$scen.nginx.status]:-}" = ok ]; then
        line+=$(printf '\nclawgate/nginx overhead ratio: added-p50 %sx, CPU/req %sx (CPU/req at -c1: %sx)' \
            "$(num "$a_cg")" "$(num "$c_cg")" "$(num "$c1_cg")")
    else
        line+=$(printf '\nclawgate/nginx overhead ratio: n/a (clawgate or nginx not measured)')
    fi
    REPORT+="$line"$'\n'
    JSON_LINES+="BENCH_JSON $json"$'\n'
}

for scen in $SCENARIOS; do
    for t in $TARGETS; do
        case $t in
        direct) ;;
        nginx) [ "$WANT_NGINX" = 1 ] || continue ;;
        clawgate)
            [ -n "$CLAWGATE_PID" ] || continue
            if ! alive "$CLAWGATE_PID"; then
                CLAWGATE_SKIP="clawgate died during the run (see $TMP/clawgate.log)"
                CLAWGATE_PID=
                FAILED=1
                continue
            fi
            ;;
        *) die "unknown target '$t'" ;;
        esac
        measure "$scen" "$t"
    done
    report_scenario "$scen"
done

END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "== results (latencies in us; req/s and p50/p99@c$CONNS from the -c$CONNS run, p50/p99 from -c1)"
echo "   cpu/req: us of CPU per request (utime+stime) of the hop itself at -c$CONNS (cpu@c1: at -c1):"
echo "   direct = upstream nginx worker, nginx = proxy worker, clawgate = whole clawgate process."
echo "   added-p50 = p50 - p50(direct) at -c1. wrk, servers and any other load share $(nproc) cores;"
echo "   load average at start $START_LOAD, at end $END_LOAD."
printf '%s' "$REPORT"
echo
printf '%s' "$JSON_LINES"
[ -n "$JSON_OUT" ] && printf '%s' "$JSON_LINES" | sed 's/^BENCH_JSON //' >>"$JSON_OUT"

if [ "$WANT_CLAWGATE" = 1 ] && [ -n "$CLAWGATE_SKIP" ]; then
    echo
    echo "*** clawgate was SKIPPED: $CLAWGATE_SKIP -- only direct and nginx were measured."
    exit 2
fi
[ "$FAILED" = 0 ] || {
    echo "*** some runs failed or returned errors (see above)"
    exit 1
}
exit 0
