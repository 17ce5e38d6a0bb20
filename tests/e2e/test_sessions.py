#!/usr/bin/env python3
"""End-to-end: sessions in the store — stateless and stateful modes, the
query endpoints, the CLI on the same database, and a streamed reply in the
transcript."""

import json
import os
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Gateway, check, check_error, eq, main, setup  # noqa: E402


def user(text):
    return {"role": "user", "content": text}


def chat(gw, messages, key=None, mode=None, stream=False):
    headers = {}
    if key:
        headers["x-session-key"] = key
    if mode:
        headers["x-session-mode"] = mode
    body = {"model": "fake/m1", "messages": messages, "stream": stream}
    if stream:
        r = gw.sse("POST", "/v1/chat/completions", body, headers)
        eq(r.status, 200, "stream status")
        check(r.done, "stream ended with [DONE]")
        return r
    st, h, raw = gw.request("POST", "/v1/chat/completions", body, headers)
    eq(st, 200, "status: %r" % raw[:200])
    return json.loads(raw)


def get(gw, path):
    st, _, raw = gw.request("GET", path)
    eq(st, 200, "GET %s: %r" % (path, raw[:300]))
    return json.loads(raw)


def test_stateless_session_records_turns():
    fake, gw = setup()
    key = "agent:main:main"
    first = chat(gw, [user("hello one")], key=key)
    reply = first["choices"][0]["message"]
    chat(gw, [user("hello one"), reply, user("hello two")], key=key)
    s = get(gw, "/v1/sessions/" + urllib.parse.quote(key, safe=""))
    roles = [e["role"] for e in s["entries"]]
    eq(roles, ["user", "assistant", "user", "assistant"], "transcript roles")
    eq(s["entries"][0]["content"]["content"], "hello one", "first user message")
    check("hello two" in json.dumps(s["entries"][3]["content"]), "echo of the second turn")
    eq(len(s["exchanges"]), 2, "two exchanges")
    x = s["exchanges"][0]
    eq(x["model_answered"], "fake/m1", "model answered")
    eq(x["status"], "ok", "status")
    check(x["usage"]["prompt_tokens"] > 0, "usage recorded: %r" % x["usage"])
    lst = get(gw, "/v1/sessions")
    check(key in [d["key"] for d in lst["data"]], "listed: %r" % lst)
    found = get(gw, "/v1/sessions/search?q=" + urllib.parse.quote("hello two"))
    check(any(d["key"] == key for d in found["data"]), "search finds it: %r" % found)
    usage = get(gw, "/v1/usage?group_by=model")
    rows = {d.get("model"): d for d in usage["data"]}
    check("fake/m1" in rows and rows["fake/m1"]["requests"] == 2, "usage by model: %r" % usage)
    # Without a session key: an exchange, no session.
    chat(gw, [user("no session")])
    eq(get(gw, "/v1/usage?group_by=")["total"]["requests"], 3, "three exchanges in all")
    eq(len(get(gw, "/v1/sessions")["data"]), 1, "still one session")


def test_stateful_session_prepends_history():
    fake, gw = setup()
    key = "agent:bot:direct:42"
    chat(gw, [user("first question")], key=key, mode="stateful")
    eq(fake.last()["json"]["messages"], [user("first question")], "first turn as sent")
    chat(gw, [user("second question")], key=key, mode="stateful")
    sent = fake.last()["json"]["messages"]
    eq([m["role"] for m in sent], ["user", "assistant", "user"], "history prepended")
    eq(sent[0], user("first question"), "stored user turn")
    check("first question" in (sent[1].get("content") or ""), "stored reply: %r" % sent[1])
    eq(sent[2], user("second question"), "the new message last")
    s = get(gw, "/v1/sessions/" + urllib.parse.quote(key, safe=""))
    eq(len(s["entries"]), 4, "four entries (no duplicates of the prepended history)")


def test_streamed_reply_in_transcript():
    fake, gw = setup()
    key = "stream-session"
    chat(gw, [user("stream me")], key=key, stream=True)
    s = get(gw, "/v1/sessions/" + key)
    eq([e["role"] for e in s["entries"]], ["user", "assistant"], "roles")
    eq(s["entries"][1]["content"]["content"], "echo: stream me", "assembled streamed text")


def test_bad_session_headers():
    fake, gw = setup()
    body = {"model": "fake/m1", "messages": [user("x")]}
    check_error(gw.request("POST", "/v1/chat/completions", body, {"x-session-mode": "stateful"}),
                400, code="missing_session_key")
    check_error(gw.request("POST", "/v1/chat/completions", body,
                           {"x-session-key": "k", "x-session-mode": "sideways"}),
                400, code="invalid_session_mode")
    check_error(gw.request("GET", "/v1/sessions/nope"), 404)
    check_error(gw.request("GET", "/v1/sessions?limit=abc"), 400)
    eq([e["path"] for e in fake.requests()], [], "nothing reached the upstream")


def test_sessionless_exchanges_through_the_pending_log():
    """Without a session key the exchange is made durable in the store's
    pending log and committed in the background: a query right after sees
    every one, a restart neither loses nor doubles any, and the log files
    are emptied."""
    fake, gw = setup()
    n = 40
    for i in range(n):
        chat(gw, [user("logged %d" % i)])
    eq(get(gw, "/v1/usage?group_by=")["total"]["requests"], n, "a query sees every exchange")
    logs = [gw.store + "-pending.%d" % i for i in (0, 1)]
    check(all(os.path.exists(p) for p in logs), "pending log files next to the database")
    cfg = json.load(open(gw.config_path))
    eq(gw.stop(), 0, "gateway exit code")
    # The same database under a new gateway: the log is applied (or skipped,
    # what was committed already) before the port opens.
    cfg["clawgate"]["listen"] = "@LISTEN@"
    cfg["clawgate"]["store"] = {"path": gw.store}
    gw2 = Gateway(json.dumps(cfg))
    eq(get(gw2, "/v1/usage?group_by=")["total"]["requests"], n, "none lost, none doubled")
    eq([os.path.getsize(p) for p in logs], [0, 0], "log files emptied at start-up")
    chat(gw2, [user("after restart")])
    eq(get(gw2, "/v1/usage?group_by=")["total"]["requests"], n + 1, "and it goes on")
    eq(gw2.stop(), 0, "second gateway exit code")


def test_cli_reads_the_same_database():
    fake, gw = setup()
    chat(gw, [user("cli check")], key="cli:key")
    binary = gw.bin
    out = subprocess.run([binary, "sessions", "list", "--db", gw.store], capture_output=True,
                         text=True, timeout=30)
    eq(out.returncode, 0, "sessions list exit: %s" % out.stderr)
    check("cli:key" in out.stdout, "key in the table: %r" % out.stdout)
    out = subprocess.run([binary, "usage", "--by", "model", "--json", "--db", gw.store],
                         capture_output=True, text=True, timeout=30)
    eq(out.returncode, 0, "usage exit: %s" % out.stderr)
    check("fake/m1" in out.stdout, "usage json names the model: %r" % out.stdout)
    out = subprocess.run([binary, "sessions", "show", "cli:key", "--config", gw.config_path],
                         capture_output=True, text=True, timeout=30)
    eq(out.returncode, 0, "show via --config: %s" % out.stderr)
    check("cli check" in out.stdout, "transcript shown: %r" % out.stdout)
    out = subprocess.run([binary, "sessions", "show", "missing", "--db", gw.store],
                         capture_output=True, text=True, timeout=30)
    eq(out.returncode, 1, "missing session exit code")


if __name__ == "__main__":
    main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
