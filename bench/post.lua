-- wrk script for bench/http.sh: POST one JSON body on every request and print a summary line
-- the shell script can parse (wrk's own report rounds latencies to two digits and mixes units).
--
--   wrk -t1 -c8 -d10s -s bench/post.lua http://127.0.0.1:PORT/v1/chat/completions -- BODY [KEY]
--
-- BODY is a file read once per wrk thread; KEY, if given and not empty, is sent as a bearer token.
-- No response() callback: calling into Lua per response would make wrk itself slower and it
-- shares the two cores with the servers being measured. Non-2xx answers still show up in
-- summary.errors.status (wrk counts every status >= 400).

local function slurp(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

function init(args)
    assert(args[1], "usage: -s post.lua URL -- BODY_FILE [API_KEY]")
    wrk.method = "POST"
    wrk.body = slurp(args[1])
    wrk.headers["Content-Type"] = "application/json"
    if args[2] and args[2] ~= "" then
        wrk.headers["Authorization"] = "Bearer " .. args[2]
    end
end

-- Latencies are in microseconds. One line, key=value, all integers but mean.
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "WRK_RESULT requests=%d duration_us=%d bytes=%d errors=%d status_errors=%d " ..
        "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f\n",
        summary.requests, summary.duration, summary.bytes,
        e.connect + e.read + e.write + e.timeout, e.status,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.max, latency.mean))
end
