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
    # The fake marks the exchange finished after its last write, which the
    # client may read first: give its thread a moment (bounded).
    deadline = time.monotonic() + 5
    while not f.last()["finished"] and time.monotonic() < deadline:
        time.sleep(0.01)
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


# -- the Responses and Anthropic dialects ------------------------------------

def named_events(raw):
    """[(event name or None, parsed data)] of a raw SSE body."""
    out = []
    text = raw.decode().replace("\r\n", "\n")
    for block in text.split("\n\n"):
        name, data = None, []
        for ln in block.split("\n"):
            if ln.startswith("event:"):
                name = ln[6:].strip()
            elif ln.startswith("data:"):
                data.append(ln[6:] if ln[5:6] == " " else ln[5:])
        if data:
            d = "\n".join(data)
            out.append((name, d if d == "[DONE]" else json.loads(d)))
    return out


ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
TOOLS_RESPONSES = [{"type": "function", "name": "get_time", "parameters": {}}]
TOOLS_ANTHROPIC = [{"name": "get_time", "input_schema": {"type": "object"}}]


def messages(**kw):
    body = {"model": "m1", "max_tokens": 100, "system": "be brief",
            "messages": [{"role": "user", "content": "hello there world"}]}
    body.update(kw)
    return body


def check_responses_stream(evs):
    """The Responses stream contract: names match types, sequence numbers
    count from 0, created first, completed/incomplete last, items added
    before their deltas and done before the end. Returns (text, reasoning,
    calls {call_id: (name, arguments)}, final response)."""
    eq([n for n, _ in evs], [e["type"] for _, e in evs], "event names are the types")
    eq([e["sequence_number"] for _, e in evs], list(range(len(evs))), "sequence numbers")
    eq(evs[0][0], "response.created", "first event")
    eq(evs[1][0], "response.in_progress", "second event")
    check(evs[-1][0] in ("response.completed", "response.incomplete"), "last: %s" % evs[-1][0])
    items, text, reasoning, calls = {}, "", "", {}
    for name, e in evs:
        if name == "response.output_item.added":
            eq(e["output_index"], len(items), "items in order")
            items[e["output_index"]] = dict(e["item"], _open=True)
        elif name == "response.output_item.done":
            check(items[e["output_index"]]["_open"], "done once")
            items[e["output_index"]]["_open"] = False
            if e["item"]["type"] == "function_call":
                calls[e["item"]["call_id"]] = (e["item"]["name"], e["item"]["arguments"])
        elif "item_id" in e:
            it = items[e["output_index"]]
            eq(e["item_id"], it["id"], "item_id of %s" % name)
            check(it["_open"], "%s on a closed item" % name)
            if name == "response.output_text.delta":
                text += e["delta"]
            elif name == "response.reasoning_summary_text.delta":
                reasoning += e["delta"]
    check(all(not it["_open"] for it in items.values()), "every item done")
    final = evs[-1][1]["response"]
    eq([o["id"] for o in final["output"]], [items[i]["id"] for i in sorted(items)], "output ids")
    return text, reasoning, calls, final


def test_responses_plain_and_stream():
    f = start_fake()
    base = f.base_url[:-3]
    st, h, body = request(base, "POST", "/v1/responses",
                          {"model": "m1", "instructions": "be brief", "input": "hello there world"})
    eq(st, 200, "status")
    r = json_body(body)
    eq((r["object"], r["status"]), ("response", "completed"), "object, status")
    eq(r["output"][0]["content"][0]["text"], "echo: hello there world", "text")
    eq(r["usage"]["output_tokens"], 4, "usage")
    eq(f.last("/v1/responses")["json"]["input"], "hello there world", "logged")
    f.script({"path": "/v1/responses", "reasoning": "think hard"})
    raw = sse(base, "POST", "/v1/responses",
              {"model": "m1", "stream": True,
               "input": [{"type": "message", "role": "user",
                          "content": [{"type": "input_text", "text": "hi you"}]}]})
    eq(raw.headers.get("content-type"), "text/event-stream", "content-type")
    check(raw.clean and not raw.done, "ends cleanly, no [DONE]: %r" % raw)
    evs = named_events(raw.raw)
    text, reasoning, calls, final = check_responses_stream(evs)
    eq((text, reasoning, calls), ("echo: hi you", "think hard", {}), "streamed parts")
    eq(final["output"][0]["type"], "reasoning", "reasoning item first")
    eq(final["usage"]["total_tokens"], final["usage"]["input_tokens"] + 5, "usage")
    eq(f.last("/v1/responses")["event_names"], [n for n, _ in evs], "event names logged")


def test_responses_tool_round_trip():
    f = start_fake(models={"m1": None, "tooly": {"tool_calls": "auto"}})
    base = f.base_url[:-3]
    ask = [{"role": "user", "content": "time?"}]
    raw = sse(base, "POST", "/v1/responses",
              {"model": "tooly", "stream": True, "input": ask, "tools": TOOLS_RESPONSES})
    text, _, calls, final = check_responses_stream(named_events(raw.raw))
    eq(text, "", "no text with a call")
    (cid, (name, args)), = calls.items()
    eq((name, args), ("get_time", "{}"), "the offered tool")
    f.script({"path": "/v1/responses",
              "tool_calls": [{"id": "call_x", "name": "ls", "arguments": '{"path": "/tmp"}'}]})
    raw = sse(base, "POST", "/v1/responses", {"model": "m1", "stream": True, "input": ask})
    evs = named_events(raw.raw)
    deltas = [e["delta"] for n, e in evs if n == "response.function_call_arguments.delta"]
    check(len(deltas) >= 3, "arguments in pieces: %r" % deltas)
    eq("".join(deltas), '{"path": "/tmp"}', "arguments reassembled")
    back = ask + [{"type": "function_call", "call_id": cid, "name": name, "arguments": args},
                  {"type": "function_call_output", "call_id": cid, "output": "12:00"}]
    _, _, body = request(base, "POST", "/v1/responses",
                         {"model": "tooly", "input": back, "tools": TOOLS_RESPONSES})
    r = json_body(body)
    eq(r["output"][0]["content"][0]["text"], "tool result: 12:00", "answer after the tool")


def test_responses_incomplete_error_cut():
    f = start_fake()
    base = f.base_url[:-3]
    f.script({"path": "/v1/responses", "finish_reason": "length"},
             {"path": "/v1/responses", "error_after": 3},
             {"path": "/v1/responses", "cut_mid_event_after": 2},
             {"path": "/v1/responses", "status": 429})
    body = {"model": "m1", "stream": True, "input": "a b c"}
    evs = named_events(sse(base, "POST", "/v1/responses", body).raw)
    eq(evs[-1][0], "response.incomplete", "length -> incomplete")
    eq(evs[-1][1]["response"]["incomplete_details"], {"reason": "max_output_tokens"}, "why")
    r = sse(base, "POST", "/v1/responses", body)
    evs = named_events(r.raw)
    eq(len(evs), 4, "three events and the error")
    eq((evs[-1][0], evs[-1][1]["code"]), ("error", "server_error"), "error event")
    check(r.clean, "body ended properly")
    r = sse(base, "POST", "/v1/responses", body)
    check(not r.clean, "cut")
    tail = r.raw.split(b"\n\n")[-1]
    check(tail.startswith(b"event: response.output_item.added\ndata: {"), "half event: %r" % tail)
    st, _, b = request(base, "POST", "/v1/responses", body)
    eq(st, 429, "status behaviour")
    check("message" in json_body(b)["error"], "OpenAI error shape")


def test_messages_rules():
    f = start_fake()
    base = f.base_url[:-3]
    st, _, b = request(base, "POST", "/v1/messages", messages(),
                       {"anthropic-version": "2023-06-01"})
    eq(st, 401, "no x-api-key")
    eq(json_body(b)["error"]["type"], "authentication_error", "error type")
    eq(json_body(b)["type"], "error", "Anthropic error shape")
    st, _, b = request(base, "POST", "/v1/messages", messages(), {"x-api-key": "k"})
    eq(st, 400, "no anthropic-version")
    body = messages()
    del body["max_tokens"]
    st, _, b = request(base, "POST", "/v1/messages", body, ANTHROPIC_HEADERS)
    eq(st, 400, "no max_tokens")
    check("max_tokens" in json_body(b)["error"]["message"], "says which")
    st, _, b = request(base, "POST", "/v1/messages", messages(model="nope"), ANTHROPIC_HEADERS)
    eq((st, json_body(b)["error"]["type"]), (404, "not_found_error"), "unknown model")
    f.script({"path": "/v1/messages", "status": 529})
    st, _, b = request(base, "POST", "/v1/messages", messages(), ANTHROPIC_HEADERS)
    eq((st, json_body(b)["error"]["type"]), (529, "overloaded_error"), "status behaviour")
    eq(len(f.messages_requests()), 5, "all logged")


def test_messages_plain_and_stream():
    f = start_fake()
    base = f.base_url[:-3]
    f.script({"path": "/v1/messages", "reasoning": "think hard"})
    st, _, b = request(base, "POST", "/v1/messages", messages(), ANTHROPIC_HEADERS)
    eq(st, 200, "status")
    m = json_body(b)
    eq([c["type"] for c in m["content"]], ["thinking", "text"], "blocks")
    eq(m["content"][0]["thinking"], "think hard", "thinking")
    eq(m["content"][1]["text"], "echo: hello there world", "text")
    eq((m["stop_reason"], m["usage"]["output_tokens"]), ("end_turn", 6), "stop, usage")
    r = sse(base, "POST", "/v1/messages", messages(stream=True), ANTHROPIC_HEADERS)
    check(r.clean and not r.done, "ends cleanly without [DONE]")
    evs = named_events(r.raw)
    eq([n for n, _ in evs], [e["type"] for _, e in evs], "event names are the types")
    eq(evs[0][0], "message_start", "first")
    eq([n for n, _ in evs[-2:]], ["message_delta", "message_stop"], "last")
    text = "".join(e["delta"]["text"] for n, e in evs
                   if n == "content_block_delta" and e["delta"]["type"] == "text_delta")
    eq(text, "echo: hello there world", "text deltas")
    eq(evs[-2][1]["usage"]["output_tokens"], 4, "usage in message_delta")
    check(("ping" in [n for n, _ in evs]), "a ping")


def test_messages_tool_round_trip():
    f = start_fake(models={"m1": None, "tooly": {"tool_calls": "auto"}})
    base = f.base_url[:-3]
    r = sse(base, "POST", "/v1/messages",
            messages(model="tooly", stream=True, tools=TOOLS_ANTHROPIC), ANTHROPIC_HEADERS)
    evs = named_events(r.raw)
    start = [e["content_block"] for n, e in evs if n == "content_block_start"]
    eq([(b["type"], b.get("name")) for b in start], [("tool_use", "get_time")], "one tool_use")
    eq(evs[-2][1]["delta"]["stop_reason"], "tool_use", "stop_reason")
    tu = start[0]
    f.script({"path": "/v1/messages",
              "tool_calls": [{"name": "ls", "arguments": '{"path": "/tmp", "all": true}'}]})
    r = sse(base, "POST", "/v1/messages", messages(stream=True), ANTHROPIC_HEADERS)
    parts = [e["delta"]["partial_json"] for n, e in named_events(r.raw)
             if n == "content_block_delta" and e["delta"]["type"] == "input_json_delta"]
    check(len(parts) >= 3, "input in pieces: %r" % parts)
    eq(json.loads("".join(parts)), {"path": "/tmp", "all": True}, "input reassembled")
    msgs = messages(model="tooly", tools=TOOLS_ANTHROPIC)["messages"] + [
        {"role": "assistant", "content": [dict(tu, input={})]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tu["id"],
                                      "content": "12:00"}]}]
    st, _, b = request(base, "POST", "/v1/messages",
                       messages(model="tooly", tools=TOOLS_ANTHROPIC, messages=msgs),
                       ANTHROPIC_HEADERS)
    eq(json_body(b)["content"], [{"type": "text", "text": "tool result: 12:00"}], "answer")


def test_messages_error_event_and_malformed():
    f = start_fake()
    base = f.base_url[:-3]
    f.script({"path": "/v1/messages", "error_after": 2}, {"path": "/v1/messages", "malformed": True},
             {"path": "/v1/messages", "malformed": True})
    evs = named_events(sse(base, "POST", "/v1/messages", messages(stream=True),
                           ANTHROPIC_HEADERS).raw)
    eq(evs[-1], ("error", {"type": "error", "error": {"type": "overloaded_error",
                                                       "message": "Overloaded"}}), "error event")
    r = sse(base, "POST", "/v1/messages", messages(stream=True), ANTHROPIC_HEADERS)
    try:
        named_events(r.raw)
        check(False, "second event parsed")
    except ValueError:
        pass
    st, _, b = request(base, "POST", "/v1/messages", messages(), ANTHROPIC_HEADERS)
    try:
        json.loads(b)
        check(False, "plain malformed parsed")
    except ValueError:
        pass


def test_openai_sdk_reads_fake_responses():
    """The official openai client against the fake's /v1/responses: the
    dialect is what the SDK's strict stream accumulator accepts."""
    node_dir = os.path.join(HERE, "node")
    if not os.path.isdir(os.path.join(node_dir, "node_modules", "openai")):
        check(False, "tests/e2e/node/node_modules/openai missing: run `make deps`")
    f = start_fake(models={"m1": {"reasoning": "think hard"}, "tooly": {"tool_calls": "auto"}})
    script = r"""
import OpenAI from 'openai';
const c = new OpenAI({ baseURL: process.env.BASE, apiKey: 'sk-x', maxRetries: 0 });
const out = {};
const r = await c.responses.create({ model: 'm1', input: 'hello sdk' });
out.plain = r.output_text;
const s = c.responses.stream({ model: 'm1', input: 'hello stream' });
let deltas = '';
s.on('response.output_text.delta', (e) => { deltas += e.delta; });
const fin = await s.finalResponse();
out.stream = [deltas, fin.output_text, fin.output.map((o) => o.type).join(',')];
const t = await c.responses.create({ model: 'tooly', input: 'time?',
  tools: [{ type: 'function', name: 'get_time', parameters: {} }], stream: true });
for await (const e of t) if (e.type === 'response.completed')
  out.tool = e.response.output.map((o) => o.name).join(',');
console.log(JSON.stringify(out));
"""
    p = subprocess.run(["node", "--input-type=module", "-e", script], cwd=node_dir,
                       env=dict(os.environ, BASE=f.base_url), capture_output=True, text=True,
                       timeout=30)
    check(p.returncode == 0, "node failed: %s" % p.stderr[-2000:])
    out = json.loads(p.stdout.strip().splitlines()[-1])
    eq(out["plain"], "echo: hello sdk", "responses.create")
    eq(out["stream"], ["echo: hello stream", "echo: hello stream", "reasoning,message"],
       "responses.stream")
    eq(out["tool"], "get_time", "streamed tool call")


if __name__ == "__main__":
    main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
