#!/usr/bin/env python3
"""End-to-end: the real gateway in front of the fake upstream. Chat
completions (plain and streamed) pass through verbatim, models resolve,
upstream failures become OpenAI-shaped errors, streams are cancelled when the
client goes away, slow clients are dropped, connections are kept alive, and
the process exits 0 on SIGTERM (ASan build: no leaks)."""

import glob
import json
import re
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HERE, Gateway, check, check_error, eq, fake_config, free_port,  # noqa: E402
                     json_body, main, setup, start_fake, strip)

USER = {"role": "user", "content": "hello there world"}


def chat(model="fake/m1", **kw):
    body = {"messages": [{"role": "system", "content": "be brief"}, USER], "temperature": 0.2}
    if model is not None:
        body["model"] = model
    body.update(kw)
    return body


def sse_bytes(events):
    return b"".join(b"data: %s\n\n" % e.encode() for e in events)


def _strip_nulls(v):
    if isinstance(v, dict):
        return {k: _strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_strip_nulls(x) for x in v]
    return v


def same_events(got, sent, what):
    """Plain text chunks pass through byte for byte; chunks the gateway must
    re-encode (reasoning split from <think> text, tool calls, text that may
    open a tag) carry the same deltas, ids and finish reasons, with null
    fields possibly left out."""
    eq(len(got), len(sent), what + ": event count")
    for i, (g, s) in enumerate(zip(got, sent)):
        if g == s:
            continue
        check(g != "[DONE]" and s != "[DONE]", "%s: event %d differs: %r vs %r" % (what, i, g, s))
        eq(_strip_nulls(json.loads(g)), _strip_nulls(json.loads(s)), "%s: event %d" % (what, i))


def without_usage_chunk(events):
    out = []
    for e in events:
        if e != "[DONE]" and json.loads(e).get("choices") == []:
            continue
        out.append(e)
    return out


def test_health_and_ready():
    _, gw = setup()
    for path in ("/healthz", "/readyz"):
        st, h, _ = gw.request("GET", path)
        eq(st, 200, path)
        check(h.get("x-request-id"), "x-request-id on " + path)


def test_models_list():
    _, gw = setup(fake_models=["m1", "m2"])
    st, h, body = gw.request("GET", "/v1/models")
    eq(st, 200, "status")
    check(h.get("x-request-id"), "x-request-id")
    j = json_body(body)
    eq(j.get("object"), "list", "object")
    ids = [m.get("id") for m in j["data"]]
    for want in ("fake/m1", "fake/m2", "Fast"):
        check(want in ids, "%s in %r" % (want, ids))
    check(all(m.get("object") == "model" for m in j["data"]), "every entry is a model: %r" % j)


def test_plain_passthrough():
    fake, gw = setup()
    st, h, body = gw.request("POST", "/v1/chat/completions", chat())
    eq(st, 200, "status")
    check((h.get("content-type") or "").startswith("application/json"), "content-type")
    rid = h.get("x-request-id") or ""
    check(re.fullmatch(r"req_[0-9a-f]{18}", rid), "x-request-id is req_ and 18 hex digits: %r" % rid)
    eq(h.get("x-clawgate-attempts"), "fake/m1;ok;200", "x-clawgate-attempts")
    eq(h.get("x-clawgate-model"), "fake/m1", "x-clawgate-model")
    e = fake.last()
    check(e is not None, "the fake got the request")
    eq(body, e["response_body"], "body byte for byte")
    eq(e["json"]["model"], "m1", "provider-local model id upstream")
    eq(e["headers"].get("authorization"), "Bearer sk-test", "upstream Authorization")
    eq(strip(e["json"]), strip(chat()), "client fields untouched")
    eq(json_body(body)["choices"][0]["message"]["content"], "echo: hello there world", "reply")
    _, h2, _ = gw.request("POST", "/v1/chat/completions", chat())
    rid2 = h2.get("x-request-id") or ""
    check(rid2 != rid and rid2[:16] == rid[:16], "ids differ, same prefix: %r %r" % (rid, rid2))


def test_model_forms():
    fake, gw = setup(fake_models=["m1", "m2"])
    cases = [("fake/m1", "m1"), ("fast", "m1"), ("FAST", "m1"), ("Fast", "m1"), ("m1", "m1"),
             (None, "m1"), ("fake/m2", "m2"), ("m2", "m2")]
    for asked, upstream in cases:
        st, h, body = gw.request("POST", "/v1/chat/completions", chat(model=asked))
        eq(st, 200, "status for model %r (%r)" % (asked, body[:200]))
        eq(h.get("x-clawgate-model"), "fake/" + upstream, "x-clawgate-model for %r" % asked)
        eq(fake.last()["json"]["model"], upstream, "upstream model for %r" % asked)


def test_stream_passthrough():
    fake, gw = setup()
    r = gw.sse("POST", "/v1/chat/completions", chat(stream=True))
    eq(r.status, 200, "status")
    check((r.headers.get("content-type") or "").startswith("text/event-stream"), "content-type")
    check(r.headers.get("x-request-id"), "x-request-id")
    eq(r.headers.get("x-clawgate-model"), "fake/m1", "x-clawgate-model")
    e = fake.last()
    so = e["json"].get("stream_options") or {}
    eq(so.get("include_usage"), True, "upstream always asked for usage")
    eq(strip(e["json"]), strip(chat(stream=True)), "client fields untouched")
    want = without_usage_chunk(e["events"])
    eq(r.data, want, "events verbatim, no usage chunk (client did not ask)")
    eq(r.raw, sse_bytes(want), "wire format data: <json>\\n\\n ... data: [DONE]\\n\\n")
    check(r.done and r.clean, "ended cleanly: %r" % r)


def test_stream_framing():
    """A stream whose model is still writing goes out chunked, token by token;
    one that is complete when the head is due may go out whole, with a length.
    Either way the client reads the same events."""
    fake, gw = setup()
    fake.script({"token_delay": 0.05, "text": "one two three four"})
    seen = []
    r = gw.sse("POST", "/v1/chat/completions", chat(stream=True),
               on_event=lambda res: seen.append(len(res.data)))
    eq(r.status, 200, "slow stream: status")
    eq((r.headers.get("transfer-encoding") or "").lower(), "chunked", "slow stream is chunked")
    check(r.headers.get("content-length") is None, "slow stream has no Content-Length")
    check(len(set(seen)) > 3, "slow stream arrived in pieces: %r" % seen)
    slow = r.data
    # The fake upstream writes a fast stream in one piece, so the gateway
    # normally reads all of it in one loop turn and sends it whole. TCP may
    # still split it: one whole stream in five tries is asked for. (Every one
    # going out chunked is the regression this catches: the end of the
    # stream, released after the pending-log write of the turn, must be
    # known before the head is sent.)
    whole = 0
    for _ in range(5):
        r = gw.sse("POST", "/v1/chat/completions", chat(stream=True))
        eq(r.status, 200, "fast stream: status")
        eq(r.data, without_usage_chunk(fake.last()["events"]), "fast stream: events verbatim")
        check(r.done and r.clean, "fast stream ended cleanly")
        cl = r.headers.get("content-length")
        if cl is not None:
            eq(int(cl), len(r.raw), "whole stream: Content-Length is the body's length")
            whole += 1
            break
    check(whole == 1, "a fast stream goes out whole, with a Content-Length")
    check(slow[-1] == "[DONE]", "the slow stream ended cleanly")


def test_stream_with_usage():
    fake, gw = setup()
    body = chat(stream=True, stream_options={"include_usage": True})
    r = gw.sse("POST", "/v1/chat/completions", body)
    eq(r.status, 200, "status")
    e = fake.last()
    eq(r.data, e["events"], "every event verbatim, usage chunk included")
    eq(r.json()[-1]["choices"], [], "usage chunk last")
    check(r.json()[-1]["usage"]["total_tokens"] > 0, "usage numbers")
    eq(r.raw, sse_bytes(e["events"]), "wire format")


def test_stream_reasoning_and_tool_calls():
    fake, gw = setup()
    fake.script({"reasoning": "let me think", "text": "done thinking"},
                {"tool_calls": [{"id": "call_1", "name": "ls", "arguments": '{"path": "."}'}]})
    for _ in range(2):
        r = gw.sse("POST", "/v1/chat/completions", chat(stream=True))
        eq(r.status, 200, "status")
        same_events(r.data, without_usage_chunk(fake.last()["events"]), "events")
        check(r.done, "[DONE]")


def load_fixtures():
    out = []
    for path in sorted(glob.glob(os.path.join(HERE, "fixtures", "openai-completions*.json"))):
        with open(path) as f:
            out.append((os.path.basename(path), json.load(f)))
    return out


# Hop-by-hop and transport headers the test's own HTTP client sets itself.
SKIP_HEADERS = {"host", "content-length", "connection", "accept-encoding"}


def test_openclaw_fixtures():
    fixtures = load_fixtures()
    check(len(fixtures) >= 4, "fixtures copied into tests/e2e/fixtures: %d" % len(fixtures))
    # OpenClaw's captures ask for "mock-model" and "mock-reasoner" (bare ids):
    # give the fake provider those ids; the reasoner answers with reasoning.
    fake, gw = setup(fake_models={"m1": None, "mock-model": None,
                                  "mock-reasoner": {"reasoning": "thinking it over"}})
    for name, fx in fixtures:
        method, path = fx["request"].split(" ", 1)
        headers = {k: v for k, v in fx["headers"].items() if k.lower() not in SKIP_HEADERS}
        body = fx["body"]
        n = len(fake.chat_requests())
        if body.get("stream"):
            r = gw.sse(method, path, body, headers)
            eq(r.status, 200, name + " status (%r)" % r.raw[:300])
            check(r.done, name + ": stream ended with [DONE]: %r" % r)
            got = fake.chat_requests()
            eq(len(got), n + 1, name + ": one upstream request")
            same_events(r.data, got[-1]["events"], name + ": events")
        else:
            st, _, _ = gw.request(method, path, body, headers)
            eq(st, 200, name + " status")
            got = fake.chat_requests()
        up = got[-1]["json"]
        eq(up["model"], body["model"], name + ": upstream model")
        eq(strip(up), strip(body), name + ": every other field unchanged")
        if body.get("stream"):
            eq(up["stream_options"].get("include_usage"), True, name + ": include_usage")


def test_keep_alive():
    _, gw = setup()
    c = gw.client()
    ports = set()
    for i in range(3):
        st, h, _ = c.request("POST", "/v1/chat/completions", chat())
        eq(st, 200, "request %d" % i)
        check((h.get("connection") or "").lower() != "close", "server keeps the connection")
        ports.add(c.local_port())
    r = c.sse("POST", "/v1/chat/completions", chat(stream=True))
    check(r.done and r.clean, "stream on a kept-alive connection: %r" % r)
    ports.add(c.local_port())
    st, _, _ = c.request("POST", "/v1/chat/completions", chat(model="nope/nope"))
    eq(st, 404, "error on the same connection")
    ports.add(c.local_port())
    st, _, _ = c.request("GET", "/v1/models")
    eq(st, 200, "after an error")
    ports.add(c.local_port())
    eq(len(ports), 1, "all on one connection")


def test_request_ids_unique():
    _, gw = setup()
    ids = set()
    for _ in range(5):
        _, h, _ = gw.request("POST", "/v1/chat/completions", chat())
        ids.add(h.get("x-request-id"))
    eq(len(ids), 5, "distinct x-request-id values")


def test_upstream_500():
    fake, gw = setup()
    fake.script({"status": 500})
    resp = gw.request("POST", "/v1/chat/completions", chat())
    check_error(resp, range(500, 600), code="timeout", etype="upstream_error")


def test_upstream_500_stream_before_first_byte():
    # Nothing reached the client yet: a plain JSON error with a real status.
    fake, gw = setup()
    fake.script({"status": 500, "body": {"error": {"message": "boom", "type": "server_error"}}})
    resp = gw.request("POST", "/v1/chat/completions", chat(stream=True))
    check_error(resp, range(500, 600), code="timeout", etype="upstream_error")


def test_upstream_429_retry_after():
    fake, gw = setup()
    fake.script({"status": 429, "headers": {"Retry-After": "7"},
                 "body": {"error": {"message": "slow down", "type": "rate_limit_error",
                                    "code": "rate_limit_exceeded"}}})
    resp = gw.request("POST", "/v1/chat/completions", chat())
    check_error(resp, 429, code="rate_limit", etype="upstream_error")
    # The model now cools down for at least the upstream's Retry-After (and
    # at least the first 30 s step): the client is told when clawgate will
    # try that model again.
    ra = int(resp[1].get("retry-after") or 0)
    check(7 <= ra <= 31, "retry-after %r: between the upstream's 7 s and the 30 s cooldown" % ra)


def test_upstream_refused():
    # Alone, a provider whose port refuses connections is a timeout-class error.
    dead_port = free_port()
    cfg = {"agents": {"defaults": {"model": {"primary": "dead/x"}}},
           "models": {"mode": "replace", "providers": {"dead": {
               "baseUrl": "http://127.0.0.1:%d/v1" % dead_port, "apiKey": "sk-dead",
               "api": "openai-completions", "models": [{"id": "x", "name": "X"}]}}},
           "clawgate": {"health": {"intervalSeconds": -1}}}
    gw = Gateway(cfg)
    for stream in (False, True):
        resp = gw.request("POST", "/v1/chat/completions", chat(model="dead/x", stream=stream))
        e = check_error(resp, (502, 504), code="timeout", etype="upstream_error")
        check("dead/x" in e["message"], "the error names the attempt: %r" % e["message"])
    gw.stop()
    # With a working primary configured, a request for the dead model falls
    # over to it (OpenClaw's order: the requested model, fallbacks, primary).
    fake = start_fake()
    dead = {"dead": {"baseUrl": "http://127.0.0.1:%d/v1" % free_port(), "apiKey": "sk-dead",
                     "api": "openai-completions", "models": [{"id": "x", "name": "X"}]}}
    gw = Gateway(fake_config(fake, ["m1"], extra_providers=dead))
    st, h, body = gw.request("POST", "/v1/chat/completions", chat(model="dead/x"))
    eq(st, 200, "fell over to the primary")
    eq(h.get("x-clawgate-model"), "fake/m1", "x-clawgate-model names the model that answered")
    check(h.get("x-clawgate-attempts", "").startswith("dead/x;timeout;0"),
          "x-clawgate-attempts lists the failed attempt: %r" % h.get("x-clawgate-attempts"))


def test_stream_cut_after_first_byte():
    fake, gw = setup()
    for beh in ({"cut_after": 3}, {"cut_mid_event_after": 2}):
        fake.script(beh)
        r = gw.sse("POST", "/v1/chat/completions", chat(stream=True))
        eq(r.status, 200, "%r: status (headers were out)" % beh)
        sent = fake.last()["events"]
        eq(r.data[: len(sent)], sent, "%r: whole events verbatim" % beh)
        eq(len(r.data), len(sent) + 1, "%r: exactly one event after them: %r" % (beh, r.data))
        last = json.loads(r.data[-1])
        check(isinstance(last.get("error"), dict), "%r: final error event: %r" % (beh, last))
        check(isinstance(last["error"].get("message"), str), "%r: error message" % beh)
        check(not r.done, "%r: no [DONE]" % beh)
        check(b"data: [DONE]" not in r.raw, "%r: no data: [DONE] line" % beh)


def test_client_disconnect_cancels_upstream():
    slow = {"token_delay": 0.2, "text": " ".join(["tok"] * 300)}  # a minute of tokens
    fake, gw = setup(fake_models={"m1": None, "slow": slow})
    r = gw.sse("POST", "/v1/chat/completions", chat(model="fake/slow", stream=True), max_events=3)
    eq(r.status, 200, "status")
    eq(len(r.data), 3, "read three events, then closed")
    got = fake.wait_for(lambda es: [e for e in es if e["client_closed"]], 10)
    check(got, "upstream socket closed after the client left: %r" % [
        (e["path"], len(e["events"]), e["client_closed"]) for e in fake.requests()])
    sent = len(got[0]["events"])
    check(sent < 100, "the upstream stopped early: %d events" % sent)
    eq(gw.request("GET", "/healthz")[0], 200, "gateway still fine")


def wait_closed(sock, limit):
    """Read until EOF or reset; True if the server closed within limit seconds
    (any bytes it sends first, e.g. a 408, are fine)."""
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_slow_client_dropped():
    _, gw = setup(clawgate={"timeouts": {"clientSeconds": 2}})
    partial = [
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Ty",  # half the headers
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n{\"model\": \"fake/m1\", \"mess",  # half the body
    ]
    for data in partial:
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        try:
            s.sendall(data)
            check(wait_closed(s, 20), "stalled client %r not dropped within 20 s" % data[-12:])
        finally:
            s.close()
    eq(gw.request("GET", "/healthz")[0], 200, "gateway still serves")


def test_first_token_timeout():
    # Design: a TTFT timeout is class `timeout`; the upstream transfer is dropped.
    fake, gw = setup(fake_models={"m1": None, "stuck": {"hang": True}},
                     clawgate={"timeouts": {"firstTokenSeconds": 2}})
    # Alone (the stuck model is the primary), the client gets a timeout error.
    fake, gw = setup(fake_models={"stuck": {"hang": True}},
                     clawgate={"timeouts": {"firstTokenSeconds": 2}})
    resp = gw.request("POST", "/v1/chat/completions", chat(model="fake/stuck"), timeout=30)
    check_error(resp, range(500, 600), code="timeout", etype="upstream_error")
    got = fake.wait_for(lambda es: [e for e in es if e["client_closed"]], 10)
    check(got, "upstream connection closed after the timeout")
    gw.stop()
    # With a primary that works, the cold-start hang falls over to it silently.
    fake, gw = setup(fake_models={"m1": None, "stuck": {"hang": True}},
                     clawgate={"timeouts": {"firstTokenSeconds": 2}})
    st, h, body = gw.request("POST", "/v1/chat/completions", chat(model="fake/stuck"), timeout=30)
    eq(st, 200, "fell over to the primary")
    eq(h.get("x-clawgate-model"), "fake/m1", "x-clawgate-model")
    check(h.get("x-clawgate-attempts", "").startswith("fake/stuck;timeout;0"),
          "attempts header: %r" % h.get("x-clawgate-attempts"))


def test_json5_text_config():
    # The config as people write it: comments, unquoted keys, trailing commas.
    fake = start_fake(models=["m1"])
    text = """// clawgate e2e: JSON5 as written by hand
{
  agents: { defaults: {
    model: { primary: 'fake/m1', },
    models: { 'fake/m1': { alias: 'Quick' } },
  } },
  models: { mode: 'replace', providers: {
    fake: {
      baseUrl: '%s', apiKey: 'sk-test', api: 'openai-completions',
      models: [ { id: 'm1', name: 'M1', contextWindow: 0x8000, }, ],
    },
  } },
  clawgate: { listen: '@LISTEN@', store: { path: '@STORE@' } },
}
""" % fake.base_url
    gw = Gateway(text)
    st, h, _ = gw.request("POST", "/v1/chat/completions", chat(model="quick"))
    eq(st, 200, "status")
    eq(h.get("x-clawgate-model"), "fake/m1", "alias from the JSON5 file")


def test_sigterm_exit_zero():
    _, gw = setup()
    c = gw.client()
    eq(c.request("POST", "/v1/chat/completions", chat())[0], 200, "one request")
    eq(gw.sse("POST", "/v1/chat/completions", chat(stream=True)).status, 200, "one stream")
    # c's connection stays open (idle keep-alive) across the shutdown.
    eq(gw.stop(), 0, "exit code after SIGTERM")


if __name__ == "__main__":
    main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
