#!/usr/bin/env python3
"""Self-test of fake_upstream.py, straight to the fake (no gateway), so a bug
in the fake shows up here and not as a mysterious gateway failure."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HERE, Client, check, eq, free_port, json_body, main, register,  # noqa: E402
                     request, sse, start_fake)

USER = {"role": "user", "content": "hello there world"}


def chat(**kw):
    body = {"model": "m1", "messages": [{"role": "system", "content": "be brief"}, USER]}
    body.update(kw)
    return body


def test_plain_echo():
    f = start_fake()
    st, h, body = request(f.base_url[:-3], "POST", "/v1/chat/completions", chat(),
                          {"Authorization": "Bearer sk-x"})
    eq(st, 200, "status")
    eq(h.get("content-type"), "application/json", "content-type")
    j = json_body(body)
    eq(j["object"], "chat.completion", "object")
    eq(j["choices"][0]["message"]["content"], "echo: hello there world", "content")
    eq(j["choices"][0]["finish_reason"], "stop", "finish_reason")
    # 8 + 17 chars of messages / 4 = 6; "echo:", " hello", " there", " world" = 4 tokens
    eq(j["usage"], {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}, "usage")
    e = f.last()
    eq(e["method"], "POST", "logged method")
    eq(e["headers"]["authorization"], "Bearer sk-x", "logged header")
    eq(e["json"], chat(), "logged json")
    eq(json.loads(e["body"]), chat(), "logged raw body")
    eq(e["response_body"], body, "logged response body")
    check(e["finished"] and not e["client_closed"], "finished, not closed: %r" % e)


def test_stream_without_usage():
    f = start_fake()
    r = sse(f.base_url[:-3], "POST", "/v1/chat/completions", chat(stream=True))
    eq(r.status, 200, "status")
    eq(r.headers.get("content-type"), "text/event-stream", "content-type")
    check(r.done and r.clean, "ended cleanly: %r" % r)
    ev = r.json()
    eq(ev[0]["choices"][0]["delta"], {"role": "assistant", "content": ""}, "role delta")
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in ev if e["choices"])
    eq(text, "echo: hello there world", "text")
    eq([e["choices"][0]["delta"].get("content") for e in ev[1:5]],
       ["echo:", " hello", " there", " world"], "one delta per token")
    eq(ev[-1]["choices"][0]["finish_reason"], "stop", "finish chunk")
    check(all(e["choices"] for e in ev), "no usage chunk without include_usage")
    check(all("usage" not in e for e in ev), "no usage key without include_usage")
    eq(f.last()["events"], r.data, "logged events == sent events")
    eq(r.raw, b"".join(b"data: %s\n\n" % d.encode() for d in r.data), "wire format")


def test_stream_with_usage():
    f = start_fake()
    r = sse(f.base_url[:-3], "POST", "/v1/chat/completions",
            chat(stream=True, stream_options={"include_usage": True}))
    ev = r.json()
    eq(ev[-1]["choices"], [], "usage chunk has no choices")
    eq(ev[-1]["usage"], {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}, "usage")
    eq(ev[-2]["choices"][0]["finish_reason"], "stop", "finish before usage")
    eq(r.data[-1], "[DONE]", "DONE last")


def test_reasoning():
    f = start_fake()
    f.script({"reasoning": "think hard", "text": "answer"})
    f.script({"reasoning": "think hard", "text": "answer"})
    r = sse(f.base_url[:-3], "POST", "/v1/chat/completions", chat(stream=True))
    ev = r.json()
    eq([e["choices"][0]["delta"].get("reasoning_content") for e in ev[1:3]],
       ["think", " hard"], "reasoning deltas")
    eq(ev[3]["choices"][0]["delta"], {"content": "answer"}, "then content")
    _, _, body = request(f.base_url[:-3], "POST", "/v1/chat/completions", chat())
    m = json_body(body)["choices"][0]["message"]
    eq((m["reasoning_content"], m["content"]), ("think hard", "answer"), "plain reasoning")


def test_tool_calls_streamed_in_pieces():
    f = start_fake()
    args = '{"path": "/tmp", "all": true}'
    f.script({"tool_calls": [{"id": "call_a", "name": "ls", "arguments": args}]})
    r = sse(f.base_url[:-3], "POST", "/v1/chat/completions", chat(stream=True))
    ev = r.json()
    calls = [e["choices"][0]["delta"]["tool_calls"][0] for e in ev
             if e["choices"] and "tool_calls" in e["choices"][0]["delta"]]
    eq(calls[0], {"index": 0, "id": "call_a", "type": "function",
                  "function": {"name": "ls", "arguments": ""}}, "first piece names the call")
    check(len(calls) >= 3, "arguments in several pieces: %r" % calls)
    eq("".join(c["function"]["arguments"] for c in calls), args, "arguments reassembled")
    eq(ev[-1]["choices"][0]["finish_reason"], "tool_calls", "finish_reason")


def test_tool_auto_round_trip():
    f = start_fake(models={"m1": None, "tooly": {"tool_calls": "auto"}})
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {}}}]
    base = f.base_url[:-3]
    _, _, body = request(base, "POST", "/v1/chat/completions",
                         {"model": "tooly", "messages": [USER], "tools": tools})
    m = json_body(body)["choices"][0]
    eq(m["finish_reason"], "tool_calls", "finish")
    call = m["message"]["tool_calls"][0]
    eq(call["function"]["name"], "get_time", "calls the offered tool")
    msgs = [USER, m["message"], {"role": "tool", "tool_call_id": call["id"], "content": "12:00"}]
    _, _, body = request(base, "POST", "/v1/chat/completions",
                         {"model": "tooly", "messages": msgs, "tools": tools})
    eq(json_body(body)["choices"][0]["message"]["content"], "tool result: 12:00", "answer")


def test_model_keyed_and_unknown_model():
    f = start_fake(models={"m1": None, "broken": {"status": 503}})
    st, _, _ = request(f.base_url[:-3], "POST", "/v1/chat/completions", chat(model="broken"))
    eq(st, 503, "behaviour by model id")
    st, _, body = request(f.base_url[:-3], "POST", "/v1/chat/completions", chat(model="nope"))
    eq(st, 404, "unknown model")
    eq(json_body(body)["error"]["code"], "model_not_found", "code")


def test_models_list():
    f = start_fake(models=["m1", "m2"])
    st, _, body = request(f.base_url[:-3], "GET", "/v1/models")
    eq(st, 200, "status")
    j = json_body(body)
    eq(j["object"], "list", "object")
    eq([m["id"] for m in j["data"]], ["m1", "m2"], "ids")


def test_status_body_headers():
    f = start_fake()
    f.script({"status": 429, "headers": {"Retry-After": "7"}},
             {"status": 500, "body": "<html>oops</html>", "content_type": "text/html"})
    st, h, body = request(f.base_url[:-3], "POST", "/v1/chat/completions", chat())
    eq(st, 429, "status")
    eq(h.get("retry-after"), "7", "Retry-After")
    e = json_body(body)["error"]
    check(isinstance(e["message"], str) and isinstance(e["type"], str), "OpenAI error: %r" % e)
    st, h, body = request(f.base_url[:-3], "POST", "/v1/chat/completions", chat())
    eq((st, h.get("content-type"), body), (500, "text/html", b"<html>oops</html>"), "raw body")
    eq(request(f.base_url[:-3], "POST", "/v1/chat/completions", chat())[0], 200, "queue drained")


def test_malformed():
    f = start_fake()
    f.script({"malformed": True}, {"malformed": True})
    st, _, body = request(f.base_url[:-3], "POST", "/v1/chat/completions", chat())
    eq(st, 200, "status")
    try:
        json.loads(body)
        check(False, "body parsed as JSON: %r" % body)
    except ValueError:
        pass
    r = sse(f.base_url[:-3], "POST", "/v1/chat/completions", chat(stream=True))
    check(r.done, "stream still ends with [DONE]")
    try:
        json.loads(r.data[1])
        check(False, "second chunk parsed")
    except ValueError:
        pass


def test_cut_mid_event():
    f = start_fake()
    f.script({"cut_mid_event_after": 2})
    r = sse(f.base_url[:-3], "POST", "/v1/chat/completions", chat(stream=True))
    eq(len(r.data), 2, "two whole events")
    check(not r.done and not r.clean, "cut: %r" % r)
    tail = r.raw.split(b"\n\n")[-1]
    check(tail.startswith(b"data: {") and len(tail) > 8, "half a data line at the end: %r" % tail)
    eq(f.last()["partial"], tail, "logged partial")
    f.script({"cut_mid_event_after": 0})
    try:
        st, _, body = request(f.base_url[:-3], "POST", "/v1/chat/completions", chat())
        check(False, "plain cut should fail the read, got %r %r" % (st, body))
    except http.client.IncompleteRead:
        pass


def test_cut_after():
    f = start_fake()
    f.script({"cut_after": 3})
    r = sse(f.base_url[:-3], "POST", "/v1/chat/completions", chat(stream=True))
    eq(len(r.data), 3, "three events")
    check(r.raw.endswith(b"\n\n"), "whole events only")
    check(not r.done and not r.clean, "no [DONE], body not terminated: %r" % r)


def test_delays():
    f = start_fake()
    f.script({"first_byte_delay": 0.4}, {"token_delay": 0.1})
    t0 = time.monotonic()
    st, _, _ = request(f.base_url[:-3], "POST", "/v1/chat/completions", chat())
    eq(st, 200, "status")
    check(time.monotonic() - t0 >= 0.4, "headers came late")
    t0 = time.monotonic()
    r = sse(f.base_url[:-3], "POST", "/v1/chat/completions", chat(stream=True))
    check(r.done, "done")
    # 6 events after the first, 0.1 s apart (a lower bound: cannot flake)
    check(time.monotonic() - t0 >= 0.45, "tokens came slowly")


def test_hang_and_close():
    f = start_fake()
    f.script({"hang": True}, {"close": True})
    c = Client(f.base_url[:-3], timeout=0.5)
    try:
        c.request("POST", "/v1/chat/completions", chat())
        check(False, "hang answered")
    except socket.timeout:
        pass
    c.close()
    e = f.wait_for(lambda es: [x for x in es if x["client_closed"]], 5)
    check(e, "fake noticed the hung client went away")
    try:
        request(f.base_url[:-3], "POST", "/v1/chat/completions", chat())
        check(False, "close answered")
    except (http.client.RemoteDisconnected, ConnectionResetError):
        pass
    eq(len(f.chat_requests()), 2, "both logged")


def test_client_disconnect_detected():
    f = start_fake()
    f.script({"token_delay": 0.2, "text": " ".join(["w"] * 200)})
    r = sse(f.base_url[:-3], "POST", "/v1/chat/completions", chat(stream=True), max_events=3)
    eq(len(r.data), 3, "read three")
    e = f.wait_for(lambda es: [x for x in es if x["client_closed"]], 5)
    check(e, "fake saw the client close")
    check(len(e[0]["events"]) < 50, "stopped sending: %d events" % len(e[0]["events"]))


def test_keep_alive_and_404():
    f = start_fake()
    c = register("client", Client(f.base_url[:-3]))
    for _ in range(3):
        eq(c.request("POST", "/v1/chat/completions", chat())[0], 200, "status")
    r = c.sse("POST", "/v1/chat/completions", chat(stream=True))
    check(r.done and r.clean, "stream on the same connection")
    st, _, body = c.request("GET", "/nope")
    eq(st, 404, "unknown path")
    eq(len({e["conn"] for e in f.requests()}), 1, "one connection")


def test_stop_releases_hang():
    f = start_fake()
    f.script({"hang": True})
    c = Client(f.base_url[:-3], timeout=10)
    t0 = time.monotonic()
    import threading
    threading.Timer(0.3, f.stop).start()
    try:
        c.request("POST", "/v1/chat/completions", chat())
        check(False, "answered")
    except (http.client.RemoteDisconnected, ConnectionResetError):
        pass
    check(time.monotonic() - t0 < 9, "stop() ended the hang")
    c.close()


def test_refused_port():
    try:
        request("http://127.0.0.1:%d" % free_port(), "GET", "/v1/models", timeout=2)
        check(False, "something listens")
    except ConnectionRefusedError:
        pass


def test_standalone_control_api():
    p = register("proc", subprocess.Popen(
        [sys.executable, os.path.join(HERE, "fake_upstream.py"), "--port", "0", "--control",
         "--models", "m1,m2"], stdout=subprocess.PIPE, text=True))
    port = int(p.stdout.readline())
    base = "http://127.0.0.1:%d" % port
    st, _, body = request(base, "POST", "/_control/script", [{"status": 502}, {"text": "hi"}])
    eq((st, json_body(body)), (200, {"queued": 2}), "script queued")
    eq(request(base, "POST", "/v1/chat/completions", chat())[0], 502, "first behaviour")
    _, _, body = request(base, "POST", "/v1/chat/completions", chat(model="m2"))
    eq(json_body(body)["choices"][0]["message"]["content"], "hi", "second behaviour")
    _, _, body = request(base, "GET", "/_control/requests")
    log = json_body(body)
    eq([(e["path"], e["status"]) for e in log],
       [("/v1/chat/completions", 502), ("/v1/chat/completions", 200)], "log")
    eq(log[1]["json"]["model"], "m2", "parsed body logged")
    eq(json.loads(log[1]["body"])["model"], "m2", "raw body logged")
    eq(request(base, "POST", "/_control/reset")[0], 200, "reset")
    eq(json_body(request(base, "GET", "/_control/requests")[2]), [], "log cleared")
    p.send_signal(signal.SIGTERM)
    eq(p.wait(10), 0, "exit on SIGTERM")


def test_standalone_exits_with_parent():
    # A shell parent that dies at once: the fake must notice and exit.
    script = ("%s %s --port 0 >/dev/null & echo $! ; sleep 0.5" %
              (sys.executable, os.path.join(HERE, "fake_upstream.py")))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/status" % pid) as st:
                if "\nState:\tZ" in st.read():
                    return  # exited; waiting for whoever adopted it to reap it
        except FileNotFoundError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    check(False, "fake %d outlived its parent" % pid)


if __name__ == "__main__":
    main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
