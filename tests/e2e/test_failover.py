#!/usr/bin/env python3
"""End-to-end: failover, health probing and supervision.

Two or three fake upstreams, each its own provider (`a`, `b`, `c`, one model
`m` each, primary a/m, fallbacks b/m then c/m), each answering with its own
words ("alpha ...", "bravo ...", "charlie ...") so a reply's origin is visible
in its text as well as in x-clawgate-model. Every test checks what the client
got AND what GET /v1/gateway/status says afterwards: cooldowns, classes,
provider states, the fallback order and the plan a request would walk now.

Health changes reach the status document through the supervisor's mailbox,
so tests poll it (bounded) rather than read it once. No test asserts a
duration; waits are bounded liveness limits.
"""

import email.utils
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Gateway, TestFailure, check, check_error, eq, free_port,  # noqa: E402
                     json_body, main, start_fake)

USER = {"role": "user", "content": "hello there world"}
WORDS = {"a": "alpha one two three four five", "b": "bravo one two three four five",
         "c": "charlie one two three four five"}
HOOKS = {"CLAWGATE_TEST_HOOKS": "1"}


def chat(model=None, **kw):
    body = {"messages": [{"role": "system", "content": "be brief"}, USER]}
    if model is not None:
        body["model"] = model
    body.update(kw)
    return body


def provider_cfg(url, name):
    return {"baseUrl": url, "apiKey": "sk-" + name, "api": "openai-completions",
            "models": [{"id": "m", "name": "M " + name}]}


def start_named_fake(name, models=None, port=0):
    """A fake upstream serving model `m` with provider `name`'s words."""
    return start_fake(models=models if models is not None else {"m": {"text": WORDS[name]}},
                      port=port)


def cluster(names=("a", "b"), dead=(), clawgate=None, env=None, fakes=None):
    """Fakes for `names` (except those in `dead`: a port nobody listens on)
    and a gateway with primary <first>/m and the others as fallbacks, in
    order. Returns (dict name -> fake or None, gateway)."""
    fakes = dict(fakes or {})
    providers = {}
    for n in names:
        if n in dead:
            fakes[n] = None
            url = "http://127.0.0.1:%d/v1" % free_port()
        else:
            if n not in fakes:
                fakes[n] = start_named_fake(n)
            url = fakes[n].base_url
        providers[n] = provider_cfg(url, n)
    cfg = {
        "agents": {"defaults": {"model": {"primary": "%s/m" % names[0],
                                          "fallbacks": ["%s/m" % n for n in names[1:]]}}},
        "models": {"mode": "replace", "providers": providers},
        "clawgate": {"health": {"intervalSeconds": -1}},
    }
    for k, v in (clawgate or {}).items():
        cfg["clawgate"][k] = v
    return fakes, Gateway(cfg, env=env)


def n_chat(fake):
    return len(fake.chat_requests())


def status(gw):
    st, _, body = gw.request("GET", "/v1/gateway/status", timeout=10)
    eq(st, 200, "GET /v1/gateway/status")
    s = json_body(body)
    eq(s.get("object"), "gateway.status", "status object")
    return s


def prov(s, name):
    for p in s["providers"]:
        if p["name"] == name:
            return p
    raise TestFailure("provider %s not in status: %s" % (name, json.dumps(s)[:1500]))


def model(s, ref):
    for m in s["models"]:
        if m["ref"] == ref:
            return m
    raise TestFailure("model %s not in status: %s" % (ref, json.dumps(s)[:1500]))


def brief(s):
    """The parts of a status document a failure message needs."""
    return json.dumps({
        "providers": {p["name"]: {k: p.get(k) for k in ("state", "restarts", "retry_at",
                                                          "last_error")}
                      for p in s["providers"]},
        "models": {m["ref"]: {k: m.get(k) for k in ("state", "cooldown_remaining_ms", "failures",
                                                      "last_class", "ewma_ttft_ms", "successes",
                                                      "inflight")}
                   for m in s["models"]},
        "fallback_order": s.get("fallback_order"), "plan": s.get("plan")})


def wait_status(gw, pred, what, timeout=10.0, interval=0.05):
    """Poll the status document until pred(s) is true; returns s."""
    deadline = time.monotonic() + timeout
    while True:
        s = status(gw)
        if pred(s):
            return s
        if time.monotonic() >= deadline:
            raise TestFailure("status never showed %s within %.0f s; last: %s"
                              % (what, timeout, brief(s)))
        time.sleep(interval)


def cooling(s, ref):
    m = model(s, ref)
    return m.get("cooldown_remaining_ms") is not None and m["cooldown_remaining_ms"] > 0


def content_of(body):
    return json_body(body)["choices"][0]["message"]["content"]


def stream_text(r):
    return "".join((e.get("choices") or [{}])[0].get("delta", {}).get("content") or ""
                   for e in r.json() if "choices" in e and e["choices"])


def answered_by(resp, name, attempts):
    """A plain 200 from provider `name` with exactly this x-clawgate-attempts."""
    st, h, body = resp
    eq(st, 200, "status (body %r)" % body[:300])
    eq(h.get("x-clawgate-model"), "%s/m" % name, "x-clawgate-model")
    eq(h.get("x-clawgate-attempts"), attempts, "x-clawgate-attempts")
    eq(content_of(body), WORDS[name], "reply text comes from %s" % name)


def stream_answered_by(r, fake, name, attempts):
    """A clean stream from provider `name`: every event is the fake's own,
    verbatim, then [DONE]."""
    eq(r.status, 200, "stream status (%r)" % r.raw[:300])
    eq(r.headers.get("x-clawgate-model"), "%s/m" % name, "x-clawgate-model")
    eq(r.headers.get("x-clawgate-attempts"), attempts, "x-clawgate-attempts")
    check(r.done and r.clean, "stream ended with [DONE]: %r" % r)
    sent = [e for e in fake.last()["events"] if e == "[DONE]" or json.loads(e).get("choices")]
    eq(r.data, sent, "events verbatim from %s" % name)
    eq(stream_text(r), WORDS[name], "streamed text from %s" % name)


# -- failures before the first byte: silent failover ------------------------


def test_refused_connection():
    fakes, gw = cluster(("a", "b"), dead=("a",))
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b",
                "a/m;timeout;0, b/m;ok;200")
    # Routing changes are published at once, statistics within a flush
    # period: wait for both.
    s = wait_status(gw, lambda s: prov(s, "a")["state"] == "down" and cooling(s, "a/m")
                    and model(s, "b/m")["successes"] == 1, "provider a down and a/m cooling")
    am = model(s, "a/m")
    eq(am["last_class"], "timeout", "a/m last_class")
    eq(am["failures"], 1, "a/m failures")
    check(prov(s, "a")["last_error"], "provider a has a last_error: %s" % brief(s))
    eq(model(s, "b/m")["state"], "up", "b/m state")
    eq(prov(s, "b")["state"], "up", "provider b state")
    eq(s["plan"], ["b/m"], "plan skips the refused provider")
    # The next request, streamed, goes straight to b.
    r = gw.sse("POST", "/v1/chat/completions", chat(stream=True), timeout=20)
    stream_answered_by(r, fakes["b"], "b", "b/m;ok;200")
    eq(n_chat(fakes["b"]), 2, "b served both requests")


def test_hang_before_first_byte():
    # A cold start: the upstream accepts and says nothing. firstTokenSeconds
    # bounds the wait; the request falls over without the client noticing.
    for stream in (False, True):
        fakes, gw = cluster(("a", "b"), clawgate={"timeouts": {"firstTokenSeconds": 1}})
        fakes["a"].set_models({"m": {"hang": True}})
        if stream:
            r = gw.sse("POST", "/v1/chat/completions", chat(stream=True), timeout=20)
            stream_answered_by(r, fakes["b"], "b", "a/m;timeout;0, b/m;ok;200")
        else:
            answered_by(gw.request("POST", "/v1/chat/completions", chat(), timeout=20), "b",
                        "a/m;timeout;0, b/m;ok;200")
        got = fakes["a"].wait_for(lambda es: [e for e in es if e["client_closed"]], 10)
        check(got, "stream=%s: the hanging upstream connection was dropped" % stream)
        s = wait_status(gw, lambda s: cooling(s, "a/m"), "a/m cooling after the hang")
        eq(model(s, "a/m")["last_class"], "timeout", "a/m last_class")
        check("a/m" not in s["plan"], "plan skips a/m: %s" % brief(s))
        eq(n_chat(fakes["a"]), 1, "a asked once")
        eq(gw.stop(), 0, "exit code")


def test_rate_limit_retry_after():
    fakes, gw = cluster(("a", "b", "c"))
    fakes["a"].script({"status": 429, "headers": {"Retry-After": "120"},
                       "body": {"error": {"message": "Rate limit reached, slow down",
                                          "type": "rate_limit_error",
                                          "code": "rate_limit_exceeded"}}})
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b",
                "a/m;rate_limit;429, b/m;ok;200")
    s = wait_status(gw, lambda s: cooling(s, "a/m"), "a/m cooling")
    am = model(s, "a/m")
    eq(am["last_class"], "rate_limit", "a/m last_class")
    # The first step of the cooldown ladder is 30 s: anything near 120 s is
    # the upstream's Retry-After honoured.
    check(am["cooldown_remaining_ms"] > 100000,
          "cooldown at least as long as Retry-After 120 s: %s" % brief(s))
    check(am["cooldown_until"] - s["now"] > 100000, "cooldown_until: %s" % am)
    eq(prov(s, "a")["state"], "cooling", "provider a state (it answered: not down)")
    eq(am["state"], "cooling", "a/m state")
    eq(s["plan"], ["b/m", "c/m"], "plan")
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b", "b/m;ok;200")
    eq(n_chat(fakes["a"]), 1, "a saw no second request while cooling")
    # Retry-After may also be an HTTP date.
    when = email.utils.formatdate(time.time() + 150, usegmt=True)
    fakes["b"].script({"status": 429, "headers": {"Retry-After": when},
                       "body": {"error": {"message": "Too many requests"}}})
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "c",
                "b/m;rate_limit;429, c/m;ok;200")
    s = wait_status(gw, lambda s: cooling(s, "b/m"), "b/m cooling")
    check(model(s, "b/m")["cooldown_remaining_ms"] > 120000,
          "cooldown honours Retry-After %s: %s" % (when, brief(s)))
    eq(s["plan"], ["c/m"], "plan")


def test_server_error_500():
    fakes, gw = cluster(("a", "b", "c"))
    fakes["a"].script({"status": 500})
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b",
                "a/m;timeout;500, b/m;ok;200")
    s = wait_status(gw, lambda s: cooling(s, "a/m"), "a/m cooling")
    am = model(s, "a/m")
    eq(am["last_class"], "timeout", "a/m last_class (500 is a timeout-class failure)")
    eq(am["failures"], 1, "a/m failures")
    check(20000 < am["cooldown_remaining_ms"] <= 30000, "first cooldown is 30 s: %s" % brief(s))
    eq(prov(s, "a")["state"], "cooling", "provider a state")
    eq(s["plan"], ["b/m", "c/m"], "plan")
    # Streamed: b answers 502 before its first byte; a is skipped (cooling).
    fakes["b"].script({"status": 502})
    r = gw.sse("POST", "/v1/chat/completions", chat(stream=True), timeout=20)
    stream_answered_by(r, fakes["c"], "c", "b/m;timeout;502, c/m;ok;200")
    s = wait_status(gw, lambda s: cooling(s, "b/m"), "b/m cooling")
    eq(s["plan"], ["c/m"], "plan after two failures")
    eq((n_chat(fakes["a"]), n_chat(fakes["b"]), n_chat(fakes["c"])), (1, 2, 1),
       "requests seen by a, b, c")


def test_garbage_200_body():
    fakes, gw = cluster(("a", "b", "c"))
    fakes["a"].script({"malformed": True})
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b",
                "a/m;unknown;200, b/m;ok;200")
    s = wait_status(gw, lambda s: cooling(s, "a/m"), "a/m cooling")
    eq(model(s, "a/m")["last_class"], "unknown", "a/m last_class")
    # An HTML page with 200 where an event stream was asked for.
    fakes["b"].script({"status": 200, "body": "<html><body>502 Bad Gateway</body></html>",
                       "content_type": "text/html"})
    r = gw.sse("POST", "/v1/chat/completions", chat(stream=True), timeout=20)
    stream_answered_by(r, fakes["c"], "c", "b/m;unknown;200, c/m;ok;200")
    check(b"<html>" not in r.raw, "the garbage never reached the client")
    s = wait_status(gw, lambda s: cooling(s, "b/m"), "b/m cooling")
    eq(model(s, "b/m")["last_class"], "unknown", "b/m last_class")
    eq(s["plan"], ["c/m"], "plan")


def test_stream_cut_before_first_byte():
    # Nothing reached the client: every one of these falls over silently.
    cases = [({"cut_after": 0}, "a/m;timeout;200"),            # 200, then closed
             ({"cut_mid_event_after": 0}, "a/m;timeout;200"),  # half a data: line
             ({"close": True}, "a/m;timeout;0"),               # no reply at all
             ({"status": 503}, "a/m;timeout;503"),             # an error status
             ({"error_after": 0}, "a/m;unknown;200")]          # 200, then an error event
    for beh, first in cases:
        fakes, gw = cluster(("a", "b"))
        fakes["a"].script(beh)
        r = gw.sse("POST", "/v1/chat/completions", chat(stream=True), timeout=20)
        stream_answered_by(r, fakes["b"], "b", first + ", b/m;ok;200")
        s = wait_status(gw, lambda s: cooling(s, "a/m"), "%r: a/m cooling" % beh)
        eq(model(s, "a/m")["last_class"], first.split(";")[1], "%r: a/m last_class" % beh)
        eq(n_chat(fakes["a"]), 1, "%r: a asked once" % beh)
        eq(gw.stop(), 0, "%r: exit code" % beh)


def test_stream_cut_after_first_byte_no_splice():
    # Cut after three events, cut inside the fourth, and silent after three
    # (idleSeconds 1 ends it).
    for beh in ({"cut_after": 3}, {"cut_mid_event_after": 3}, {"stall_after": 3},
                {"error_after": 3}):
        fakes, gw = cluster(("a", "b"), clawgate={"timeouts": {"idleSeconds": 1}})
        fakes["a"].script(dict(beh, text=WORDS["a"]))  # a script replaces the model's words
        r = gw.sse("POST", "/v1/chat/completions", chat(stream=True), timeout=20)
        eq(r.status, 200, "%r: status (headers were out)" % beh)
        eq(r.headers.get("x-clawgate-model"), "a/m", "%r: x-clawgate-model" % beh)
        sent = fakes["a"].last()["events"][:3]  # (error_after: its error event is the 4th)
        eq(len(sent), 3, "%r: the fake sent three whole events" % beh)
        eq(r.data[:3], sent, "%r: a's events verbatim" % beh)
        eq(len(r.data), 4, "%r: exactly one event after them: %r" % (beh, r.data))
        last = json.loads(r.data[-1])
        check(isinstance(last.get("error"), dict), "%r: final error event: %r" % (beh, last))
        eq(last["error"].get("type"), "upstream_error", "%r: error type" % beh)
        check("a/m" in last["error"].get("message", ""), "%r: names a/m: %r" % (beh, last))
        check(not r.done and b"data: [DONE]" not in r.raw, "%r: no [DONE]" % beh)
        # No splice: what was streamed is a prefix of a's answer and of
        # nobody else's, and b was never asked.
        text = stream_text(r)
        check(text and WORDS["a"].startswith(text), "%r: text %r is a's" % (beh, text))
        eq(n_chat(fakes["b"]), 0, "%r: b never asked" % beh)
        s = wait_status(gw, lambda s: model(s, "a/m")["failures_total"] >= 1,
                        "%r: the cut counted against a/m" % beh)
        eq(model(s, "a/m")["last_class"], "unknown" if "error_after" in beh else "timeout",
           "%r: a/m last_class" % beh)
        eq(gw.stop(), 0, "%r: exit code" % beh)


# -- health: unloaded models, format errors, cooldowns ------------------------


def test_unloaded_model_skipped():
    fa = start_fake(models={"other": None})  # a's /v1/models lacks `m`
    fakes, gw = cluster(("a", "b"), fakes={"a": fa},
                        clawgate={"health": {"intervalSeconds": 1, "timeoutSeconds": 2}})
    s = wait_status(gw, lambda s: model(s, "a/m")["state"] == "unloaded"
                    and prov(s, "b")["state"] == "up", "a/m unloaded and b up after probes")
    eq(prov(s, "a")["state"], "unloaded", "provider a state")
    eq(prov(s, "b")["state"], "up", "provider b state (probed)")
    eq(s["plan"], ["b/m"], "plan skips the unloaded model")
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b", "b/m;ok;200")
    eq(n_chat(fa), 0, "a got no chat request for a model it does not have")
    check(len(fa.requests("/v1/models")) >= 1, "a was probed")
    # The model gets loaded: the next probe puts it back in the plan.
    fa.set_models({"m": {"text": WORDS["a"]}, "other": None})
    s = wait_status(gw, lambda s: model(s, "a/m")["state"] == "up" and s["plan"][:1] == ["a/m"],
                    "a/m loaded again")
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "a", "a/m;ok;200")


def test_format_error_does_not_fall_over():
    fakes, gw = cluster(("a", "b"))
    bad = {"status": 400, "body": {"error": {"message": "Unrecognized request argument: frob",
                                             "type": "invalid_request_error", "code": None}}}
    fakes["a"].script(bad)
    resp = gw.request("POST", "/v1/chat/completions", chat())
    check_error(resp, 400, code="format", etype="upstream_error")
    eq(resp[1].get("x-clawgate-attempts"), "a/m;format;400", "x-clawgate-attempts")
    check(resp[1].get("x-clawgate-model") is None, "no x-clawgate-model on an error")
    fakes["a"].script(bad)
    resp = gw.request("POST", "/v1/chat/completions", chat(stream=True))
    check_error(resp, 400, code="format", etype="upstream_error")
    # A prompt too long for the model: compaction's business, never another model.
    fakes["a"].script({"status": 400, "body": {"error": {
        "message": "This model's maximum context length is 4096 tokens; you asked for 9000",
        "type": "invalid_request_error", "code": "context_length_exceeded"}}})
    resp = gw.request("POST", "/v1/chat/completions", chat())
    check_error(resp, 400, code="context_length_exceeded", etype="upstream_error")
    eq(resp[1].get("x-clawgate-attempts"), "a/m;context_overflow;400", "x-clawgate-attempts")
    eq(n_chat(fakes["b"]), 0, "b never asked")
    s = wait_status(gw, lambda s: model(s, "a/m")["failures_total"] == 3,
                    "three failures recorded on a/m")
    am = model(s, "a/m")
    eq(am["last_class"], "context_overflow", "a/m last_class")
    eq(am["cooldown_until"], None, "no cooldown: the request's fault, not the model's")
    eq(am["failures"], 0, "consecutive failures")
    check(am["state"] in ("up", "unknown"), "a/m state: %s" % brief(s))
    eq(s["plan"], ["a/m", "b/m"], "plan unchanged")
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "a", "a/m;ok;200")


def test_cooldown_skip():
    fakes, gw = cluster(("a", "b"))
    fakes["a"].script({"status": 500})
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b",
                "a/m;timeout;500, b/m;ok;200")
    wait_status(gw, lambda s: cooling(s, "a/m"), "a/m cooling")
    # Default model, streamed, and a/m named explicitly: all skip a/m.
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b", "b/m;ok;200")
    r = gw.sse("POST", "/v1/chat/completions", chat(stream=True), timeout=20)
    stream_answered_by(r, fakes["b"], "b", "b/m;ok;200")
    answered_by(gw.request("POST", "/v1/chat/completions", chat(model="a/m")), "b", "b/m;ok;200")
    eq(n_chat(fakes["a"]), 1, "the failing fake saw no second request while cooling")
    s = wait_status(gw, lambda s: model(s, "b/m")["successes"] == 4, "four successes on b/m")
    check(cooling(s, "a/m"), "a/m still cooling: %s" % brief(s))


def test_cooldown_is_per_model():
    # Two models behind one provider: a 500 on one cools that model only; the
    # provider stays routable and its other model answers.
    fa, fb = start_fake(models={"m": {"text": WORDS["a"]}, "m2": {"text": "alpha two"}}), \
        start_named_fake("b")
    cfg = {"agents": {"defaults": {"model": {"primary": "a/m", "fallbacks": ["a/m2", "b/m"]}}},
           "models": {"mode": "replace", "providers": {
               "a": dict(provider_cfg(fa.base_url, "a"),
                         models=[{"id": "m", "name": "M"}, {"id": "m2", "name": "M2"}]),
               "b": provider_cfg(fb.base_url, "b")}},
           "clawgate": {"health": {"intervalSeconds": -1}}}
    gw = Gateway(cfg)
    fa.script({"status": 500})
    st, h, body = gw.request("POST", "/v1/chat/completions", chat())
    eq(st, 200, "status")
    eq(h.get("x-clawgate-model"), "a/m2", "the same provider's other model answered")
    eq(h.get("x-clawgate-attempts"), "a/m;timeout;500, a/m2;ok;200", "attempts")
    eq(content_of(body), "alpha two", "reply")
    s = wait_status(gw, lambda s: cooling(s, "a/m") and model(s, "a/m2")["successes"] == 1,
                    "a/m cooling, a/m2 served")
    eq(model(s, "a/m2")["state"], "up", "a/m2 state")
    eq(prov(s, "a")["state"], "up", "provider a state: one model cooling is not the provider")
    eq(s["plan"], ["a/m2", "b/m"], "plan")
    eq(n_chat(fb), 0, "b never asked")


def test_all_failed_lists_attempts():
    fakes, gw = cluster(("a", "b", "c"), dead=("a",))
    fakes["b"].script({"status": 500})
    fakes["c"].script({"status": 429, "headers": {"Retry-After": "20"},
                       "body": {"error": {"message": "Rate limit reached",
                                          "type": "rate_limit_error"}}})
    resp = gw.request("POST", "/v1/chat/completions", chat())
    e = check_error(resp, 429, code="rate_limit", etype="upstream_error")
    h = resp[1]
    eq(h.get("x-clawgate-attempts"), "a/m;timeout;0, b/m;timeout;500, c/m;rate_limit;429",
       "x-clawgate-attempts")
    check(h.get("x-clawgate-model") is None, "no model answered: %r" % h.get("x-clawgate-model"))
    check("all 3 attempts failed" in e["message"], "message counts attempts: %r" % e["message"])
    for ref in ("a/m", "b/m", "c/m"):
        check(ref in e["message"], "message lists %s: %r" % (ref, e["message"]))
    check("cooldown ends" in e["message"], "message says when the first cooldown ends: %r"
          % e["message"])
    ra = h.get("retry-after")
    check(ra is not None and re.fullmatch(r"\d+", ra) and 1 <= int(ra) <= 31,
          "Retry-After (the soonest cooldown, <= 30 s): %r" % ra)
    s = wait_status(gw, lambda s: all(cooling(s, r) for r in ("a/m", "b/m", "c/m")),
                    "all three cooling")
    eq([model(s, r)["last_class"] for r in ("a/m", "b/m", "c/m")],
       ["timeout", "timeout", "rate_limit"], "classes")
    eq(len(s["plan"]), 1, "all cooling: the plan is the one due back first")


def test_all_failed_first_error_says_when_cooldown_ends():
    # Alone and failing for the first time: the error must say when the
    # cooldown this very failure started ends, and a 429's Retry-After must
    # agree with it.
    for beh, st, code in (({"status": 500}, 502, "timeout"),
                          ({"status": 429, "headers": {"Retry-After": "7"}}, 429, "rate_limit")):
        fakes, gw = cluster(("a",))
        fakes["a"].script(beh)
        resp = gw.request("POST", "/v1/chat/completions", chat())
        e = check_error(resp, st, code=code, etype="upstream_error")
        eq(resp[1].get("x-clawgate-attempts"), "a/m;%s;%d" % (code, beh["status"]), "attempts")
        m = re.search(r"the first cooldown ends at \S+ \(in (\d+)s\)", e["message"])
        check(m, "%r: the error says when the first cooldown ends: %r" % (beh, e["message"]))
        check(25 <= int(m.group(1)) <= 30, "%r: the 30 s cooldown: %r" % (beh, e["message"]))
        if st == 429:
            eq(resp[1].get("retry-after"), m.group(1), "Retry-After agrees with the message")
        s = wait_status(gw, lambda s: cooling(s, "a/m"), "a/m cooling")
        check(abs(model(s, "a/m")["cooldown_until"] / 1000.0 - (time.time() + int(m.group(1))))
              < 5, "the message's time is a/m's cooldown_until: %s" % brief(s))
        eq(gw.stop(), 0, "exit code")


def test_all_cooling_soonest_tried_once():
    fakes, gw = cluster(("a", "b"))
    fakes["a"].script({"status": 500}, {"status": 500})   # 30 s, then 60 s
    fakes["b"].script({"status": 429, "headers": {"Retry-After": "90"}})
    resp = gw.request("POST", "/v1/chat/completions", chat())
    e = check_error(resp, 429, code="rate_limit", etype="upstream_error")
    eq(resp[1].get("x-clawgate-attempts"), "a/m;timeout;500, b/m;rate_limit;429", "attempts")
    check("all 2 attempts failed" in e["message"], "message: %r" % e["message"])
    s = wait_status(gw, lambda s: cooling(s, "a/m") and cooling(s, "b/m"), "both cooling")
    check(model(s, "a/m")["cooldown_remaining_ms"] < model(s, "b/m")["cooldown_remaining_ms"],
          "a/m is due back first: %s" % brief(s))
    eq(s["plan"], ["a/m"], "plan: only the soonest")
    # Tried once, and it fails again: one attempt, no second candidate.
    resp = gw.request("POST", "/v1/chat/completions", chat())
    check_error(resp, 502, code="timeout", etype="upstream_error")
    eq(resp[1].get("x-clawgate-attempts"), "a/m;timeout;500", "one attempt only")
    s = wait_status(gw, lambda s: model(s, "a/m")["failures"] == 2, "a/m failed twice")
    eq(s["plan"], ["a/m"], "a/m (60 s) still due back before b/m (90 s)")
    # Tried once more, and it works now.
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "a", "a/m;ok;200")
    eq(n_chat(fakes["b"]), 1, "b asked only by the first request")
    s = wait_status(gw, lambda s: not cooling(s, "a/m"), "a/m recovered")
    eq(model(s, "a/m")["failures"], 0, "a success clears the failure count")
    check(cooling(s, "b/m"), "b/m still cooling: %s" % brief(s))
    eq(s["plan"], ["a/m"], "plan: a/m, b/m still skipped")


# -- supervision ---------------------------------------------------------------


def crash(gw, name):
    return gw.request("POST", "/v1/gateway/test/crash?provider=" + name, timeout=10)


def test_crash_hook_absent_without_env():
    fakes, gw = cluster(("a", "b"))
    check_error(crash(gw, "a"), 404)
    eq(prov(status(gw), "a")["restarts"], 0, "nothing crashed")
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "a", "a/m;ok;200")


def test_crash_restarts_then_intensity_exceeded():
    fakes, gw = cluster(("a", "b"), env=HOOKS,
                        clawgate={"supervisor": {"maxRestarts": 2, "periodSeconds": 30}})
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "a", "a/m;ok;200")
    # Two crashes within the intensity: restarted each time, keeps serving.
    for k in (1, 2):
        st, _, body = crash(gw, "a")
        eq(st, 200, "crash hook (%r)" % body[:200])
        s = wait_status(gw, lambda s: prov(s, "a")["restarts"] == k
                        and prov(s, "a")["state"] not in ("failed", "stopped"),
                        "a restarted %d time(s)" % k)
        answered_by(gw.request("POST", "/v1/chat/completions", chat()), "a", "a/m;ok;200")
    # The third within the period exceeds maxRestarts 2: failed, back-off 1 s.
    # Respawned, it is crashed again at once (still more than 2 in the
    # period): failed with the back-off doubled, 2 s, then 4 s.
    for k, backoff in ((3, 1), (4, 2), (5, 4)):
        eq(crash(gw, "a")[0], 200, "crash %d" % k)
        # restarts, the failed state and the log line come in one step
        s = wait_status(gw, lambda s: prov(s, "a")["restarts"] == k, "crash %d seen" % k,
                        interval=0.02)
        eq(gw.log().count("crashed more than 2 times"), k - 2, "crash %d: log says failed" % k)
        check(re.search(r"failed, next try in %d ms" % (backoff * 1000), gw.log()),
              "crash %d: back-off %d s in the log" % (k, backoff))
        if k < 5:
            wait_status(gw, lambda s: prov(s, "a")["state"] not in ("failed", "stopped"),
                        "a respawned after the back-off", interval=0.02)
    s = wait_status(gw, lambda s: prov(s, "a")["state"] == "failed", "a failed")
    pa = prov(s, "a")
    eq(pa["restarts"], 5, "restarts")
    check(pa["retry_at"] and pa["retry_at"] > s["now"], "retry_at in the future: %s" % brief(s))
    eq(model(s, "a/m")["state"], "failed", "a/m state")
    eq(s["plan"], ["b/m"], "plan skips the failed provider")
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b", "b/m;ok;200")
    check_error(crash(gw, "a"), 404)  # no actor to crash while failed
    eq(prov(status(gw), "b")["restarts"], 0, "b undisturbed")
    # And back: respawned after the back-off, serving again.
    s = wait_status(gw, lambda s: prov(s, "a")["state"] not in ("failed", "stopped")
                    and s["plan"][:1] == ["a/m"], "a back after the back-off", timeout=15)
    eq(prov(s, "a")["retry_at"], None, "no retry_at once running")
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "a", "a/m;ok;200")
    check("crashed more than 2 times" in gw.log(), "the log says why a failed")


def test_crash_fails_over_in_flight_request():
    fakes, gw = cluster(("a", "b"), env=HOOKS)
    fakes["a"].set_models({"m": {"first_byte_delay": 15, "text": WORDS["a"]}})
    out = {}

    def client():
        out["r"] = gw.sse("POST", "/v1/chat/completions", chat(stream=True), timeout=25)

    t = threading.Thread(target=client, daemon=True)
    t.start()
    check(fakes["a"].wait_for(lambda es: [e for e in es if e["path"] == "/v1/chat/completions"],
                              10), "the request reached a")
    eq(crash(gw, "a")[0], 200, "crash hook")
    t.join(20)
    check(not t.is_alive() and "r" in out, "the client got an answer")
    stream_answered_by(out["r"], fakes["b"], "b", "a/m;aborted;0, b/m;ok;200")
    # b's success was reported after a's failure (one front, one mailbox):
    # once it shows, a's failure has been applied too.
    s = wait_status(gw, lambda s: prov(s, "a")["restarts"] == 1
                    and prov(s, "a")["state"] not in ("failed", "stopped")
                    and model(s, "b/m")["successes"] == 1, "a restarted, b's success counted")
    eq(prov(s, "b")["restarts"], 0, "b undisturbed")
    got = fakes["a"].wait_for(lambda es: [e for e in es if e["client_closed"]], 10)
    check(got, "the crashed actor's upstream connection was closed")
    # The upstream did nothing wrong: the crash was ours. The restarted actor
    # serves the next request; a/m is not put into a cooldown for it.
    fakes["a"].set_models({"m": {"text": WORDS["a"]}})
    check(not cooling(s, "a/m"), "a/m not cooling after its actor crashed: %s" % brief(s))
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "a", "a/m;ok;200")


# -- latency-aware ordering and probes ------------------------------------------


def test_adaptive_ranking_prefers_fast_fallback():
    fakes = {"a": start_named_fake("a"),
             "b": start_named_fake("b", {"m": {"text": WORDS["b"], "first_byte_delay": 0.4}}),
             "c": start_named_fake("c")}
    _, gw = cluster(("a", "b", "c"), fakes=fakes,
                    clawgate={"routing": {"policy": "adaptive", "rerankSeconds": 1}})
    s = status(gw)
    eq(s["policy"], "adaptive", "policy")
    eq(s["fallback_order"], ["a/m", "b/m", "c/m"], "configured order before any sample")
    # Traffic to both fallbacks (named explicitly); the ranking must put the
    # fast one first within a few rounds.
    want = ["a/m", "c/m", "b/m"]
    rounds = 0
    for rounds in range(1, 7):
        answered_by(gw.request("POST", "/v1/chat/completions", chat(model="b/m")), "b",
                    "b/m;ok;200")
        answered_by(gw.request("POST", "/v1/chat/completions", chat(model="c/m")), "c",
                    "c/m;ok;200")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and status(gw)["fallback_order"] != want:
            time.sleep(0.1)
        if status(gw)["fallback_order"] == want:
            break
    s = status(gw)
    eq(s["fallback_order"], want, "ranked after %d rounds: %s" % (rounds, brief(s)))
    check(model(s, "b/m")["ewma_ttft_ms"] > model(s, "c/m")["ewma_ttft_ms"],
          "b/m slower than c/m: %s" % brief(s))
    # The primary fails: the request falls over to the fast fallback first.
    nb = n_chat(fakes["b"])
    fakes["a"].script({"status": 500})
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "c",
                "a/m;timeout;500, c/m;ok;200")
    eq(n_chat(fakes["b"]), nb, "the slow fallback was not asked")


def test_adaptive_demotes_clearly_slower_primary():
    fakes = {"a": start_named_fake("a", {"m": {"text": WORDS["a"], "first_byte_delay": 0.5}}),
             "b": start_named_fake("b")}
    _, gw = cluster(("a", "b"), fakes=fakes,
                    clawgate={"routing": {"policy": "adaptive", "rerankSeconds": 1,
                                          "primaryFactor": 2}})
    want = ["b/m", "a/m"]
    for rounds in range(1, 7):
        answered_by(gw.request("POST", "/v1/chat/completions", chat()), "a", "a/m;ok;200")
        answered_by(gw.request("POST", "/v1/chat/completions", chat(model="b/m")), "b",
                    "b/m;ok;200")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and status(gw)["fallback_order"] != want:
            time.sleep(0.1)
        if status(gw)["fallback_order"] == want:
            break
    s = status(gw)
    eq(s["fallback_order"], want, "the slow primary demoted after %d rounds: %s"
       % (rounds, brief(s)))
    eq(s["plan"], want, "plan")
    # A request for the default model now goes to the fast one first, no
    # failure needed; the primary is still there behind it.
    na = n_chat(fakes["a"])
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b", "b/m;ok;200")
    eq(n_chat(fakes["a"]), na, "the slow primary was not asked")
    s = wait_status(gw, lambda s: all(m["inflight"] == 0 for m in s["models"]),
                    "nothing in flight")


def test_inflight_released_on_client_disconnect():
    # In-flight counts weigh the adaptive score (ewma_ttft * (inflight + 1)):
    # a request whose client went away must not stay counted.
    fakes, gw = cluster(("a", "b"))
    fakes["a"].set_models({"m": {"token_delay": 0.3, "text": " ".join(["tok"] * 100)}})
    r = gw.sse("POST", "/v1/chat/completions", chat(stream=True), max_events=3)
    eq(len(r.data), 3, "read three events, then hung up")
    check(fakes["a"].wait_for(lambda es: [e for e in es if e["client_closed"]], 10),
          "upstream cancelled after the client left mid-stream")
    # And one that leaves before the first byte.
    fakes["a"].set_models({"m": {"first_byte_delay": 15}})
    c = gw.client(timeout=1)
    try:
        c.request("POST", "/v1/chat/completions", chat())
    except OSError:
        pass  # timed out waiting, as intended
    c.close()
    check(fakes["a"].wait_for(lambda es: len([e for e in es if e["client_closed"]]) == 2, 10),
          "upstream cancelled after the client left while waiting")
    s = wait_status(gw, lambda s: model(s, "a/m")["inflight"] == 0,
                    "a/m in-flight back to 0 after both clients left", timeout=5)
    eq(n_chat(fakes["b"]), 0, "no failover for a client that left")
    eq(model(s, "a/m")["cooldown_until"], None, "a client leaving is not the model's failure")


def test_keep_warm():
    # keepWarm sends the smallest completion to the model soon after start
    # (and every N minutes), with the provider's key; it is not a client
    # request and changes no routing.
    fakes, gw = cluster(("a", "b"), clawgate={"health": {"intervalSeconds": -1,
                                                         "keepWarm": {"b/m": 1}}})
    got = fakes["b"].wait_for(lambda es: [e for e in es if e["path"] == "/v1/chat/completions"], 5)
    check(got, "a keep-warm request reached b")
    w = got[0]
    eq(w["method"], "POST", "method")
    eq(w["json"].get("model"), "m", "model id upstream")
    eq(w["json"].get("max_tokens"), 1, "one token")
    eq(w["json"].get("stream"), False, "not streamed")
    eq(w["headers"].get("authorization"), "Bearer sk-b", "provider key")
    eq(n_chat(fakes["a"]), 0, "a (not kept warm) untouched")
    s = status(gw)
    eq(s["plan"], ["a/m", "b/m"], "routing unchanged")


def test_prober_marks_down_and_up():
    fakes, gw = cluster(("a", "b"), clawgate={"health": {"intervalSeconds": 1,
                                                         "timeoutSeconds": 1}})
    s = wait_status(gw, lambda s: prov(s, "a")["state"] == "up" and prov(s, "b")["state"] == "up",
                    "both probed up")
    check(prov(s, "a")["probe_latency_ms"] is not None, "probe latency: %s" % prov(s, "a"))
    port = fakes["a"].port
    fakes["a"].stop()
    s = wait_status(gw, lambda s: prov(s, "a")["state"] == "down", "a down after its fake stopped")
    check(prov(s, "a")["last_error"], "a's last_error: %s" % brief(s))
    eq(model(s, "a/m")["state"], "down", "a/m state")
    eq(s["plan"], ["b/m"], "plan skips the dead provider")
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "b", "b/m;ok;200")
    eq(n_chat(fakes["a"]), 0, "a (dead) got no request")
    # A new server on the same port: the prober notices.
    fa2 = start_named_fake("a", port=port)
    s = wait_status(gw, lambda s: prov(s, "a")["state"] == "up" and s["plan"][:1] == ["a/m"],
                    "a up again")
    eq(prov(s, "a")["last_error"], None, "last_error cleared")
    answered_by(gw.request("POST", "/v1/chat/completions", chat()), "a", "a/m;ok;200")
    eq(n_chat(fa2), 1, "the new server answered")


if __name__ == "__main__":
    main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
