#!/usr/bin/env python3
"""End-to-end: bad client input gets an OpenAI-shaped error with the right
status and an x-request-id, and never reaches the upstream."""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, check_error, eq, main, setup  # noqa: E402

OK_MSGS = [{"role": "user", "content": "hi"}]
JSON = {"Content-Type": "application/json"}


def nothing_upstream(fake):
    eq([e["path"] for e in fake.requests()], [], "requests that reached the upstream")


def test_unknown_model():
    fake, gw = setup()
    for model in ("nope", "fake/nope", "other/m1", "FAKE/M1x"):
        resp = gw.request("POST", "/v1/chat/completions", {"model": model, "messages": OK_MSGS})
        e = check_error(resp, 404, code="model_not_found")
        check(model in e["message"], "the message names the model %r: %r" % (model, e["message"]))
    nothing_upstream(fake)


def test_body_too_large():
    fake, gw = setup(clawgate={"limits": {"maxBodyBytes": 4096}})
    big = {"model": "fake/m1", "messages": [{"role": "user", "content": "x" * 10000}]}
    check_error(gw.request("POST", "/v1/chat/completions", big), 413)
    nothing_upstream(fake)
    # Exactly at the limit is fine.
    body = b'{"model": "fake/m1", "messages": [{"role": "user", "content": "%s"}]}'
    pad = 4096 - len(body % b"")
    exact = body % (b"y" * pad)
    eq(len(exact), 4096, "test body size")
    st, _, raw = gw.request("POST", "/v1/chat/completions", exact, JSON)
    eq(st, 200, "a body of exactly maxBodyBytes (%r)" % raw[:200])


def test_invalid_json_names_offset():
    fake, gw = setup()
    cases = [
        b'{"model": "fake/m1", "messages": [1, 2,, 3]}',
        b'{"model": "fake/m1", "messages": [}',
        b'{"model": "fake/m1", "messages": []} trailing',
        b'{"model": "fake/m1" "messages": []}',
        b'{"model": "fake/m1", "messages": [',
    ]
    for body in cases:
        where = bad_offset(body)
        resp = gw.request("POST", "/v1/chat/completions", body, JSON)
        e = check_error(resp, 400)
        m = re.search(r"byte (\d+)", e["message"])
        check(m, "message names the offset ('byte N'): %r" % e["message"])
        n = int(m.group(1))
        check(abs(n - where) <= 1, "%r: offset %d, want about %d (%r)" % (body, n, where,
                                                                         e["message"]))
    resp = gw.request("POST", "/v1/chat/completions", b"", JSON)
    check_error(resp, 400)
    nothing_upstream(fake)


def bad_offset(body):
    """Where a strict JSON parser must stop: Python's decoder reports the first
    byte that cannot continue a valid document (len(body) when cut short)."""
    try:
        json.loads(body)
    except json.JSONDecodeError as e:
        return e.pos
    raise AssertionError("test body %r is valid JSON" % body)


def test_wrong_types():
    fake, gw = setup()
    cases = [
        ({"model": "fake/m1", "messages": "hi"}, "messages"),
        ({"model": "fake/m1", "messages": {"role": "user"}}, "messages"),
        ({"model": 5, "messages": OK_MSGS}, "model"),
        ({"model": ["fake/m1"], "messages": OK_MSGS}, "model"),
        ({"model": "fake/m1", "messages": OK_MSGS, "stream": "yes"}, "stream"),
        ({"model": "fake/m1", "messages": OK_MSGS, "stream": 1}, "stream"),
        ({"model": "fake/m1"}, "messages"),
    ]
    for body, field in cases:
        e = check_error(gw.request("POST", "/v1/chat/completions", body), 400)
        check(field in e["message"], "%r: message names `%s`: %r" % (body, field, e["message"]))
    for body in ([], "just a string", 42, None):
        check_error(gw.request("POST", "/v1/chat/completions", json.dumps(body),
                               JSON), 400)
    nothing_upstream(fake)


def test_method_not_allowed():
    fake, gw = setup()
    check_error(gw.request("GET", "/v1/chat/completions"), 405)
    nothing_upstream(fake)


def test_unknown_path():
    fake, gw = setup()
    for method, path in (("GET", "/nope"), ("POST", "/v1/nothing"), ("GET", "/v2/models")):
        check_error(gw.request(method, path, {} if method == "POST" else None), 404)
    nothing_upstream(fake)


def test_errors_keep_connection_usable():
    fake, gw = setup()
    c = gw.client()
    check_error(c.request("POST", "/v1/chat/completions", b'{"messages": [', JSON), 400)
    check_error(c.request("POST", "/v1/chat/completions", {"model": "x/y", "messages": OK_MSGS}),
                404)
    st, _, _ = c.request("POST", "/v1/chat/completions", {"model": "fake/m1", "messages": OK_MSGS})
    eq(st, 200, "a good request after two bad ones")
    eq(len(fake.chat_requests()), 1, "only the good one went upstream")


if __name__ == "__main__":
    main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
