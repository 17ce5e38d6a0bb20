#!/usr/bin/env python3
"""fake_upstream.py - an OpenAI-compatible model server with fault injection.

DESIGN
The end-to-end tests need an upstream whose every byte is known and whose
failures can be ordered: a cold start, a stream cut in the middle of a `data:`
line, a server that accepts and then never answers. This server speaks just
enough of three model APIs, each plain and streamed (SSE):
  - OpenAI chat completions, POST /v1/chat/completions (and GET /v1/models);
  - OpenAI Responses, POST /v1/responses: `event:`-named events from
    response.created to response.completed, sequence numbers from 0, reasoning
    as a reasoning item with a summary, tool calls as function_call items;
  - Anthropic Messages, POST /v1/messages: requires the `x-api-key` (401) and
    `anthropic-version` (400) headers and `max_tokens` (400); message_start,
    content blocks (thinking, text, tool_use with input_json_delta),
    message_delta with usage, message_stop; errors in Anthropic's shape.
It takes its orders from "behaviours":

  - queued with script() (or POST /_control/script): each one is used by the
    next request to its path (default /v1/chat/completions), first in first out;
  - keyed by the request's `model` id (the `models` argument): a test can name a
    configured model after what it does ("slow", "broken");
  - else the default: echo the last user message ("echo: <text>"); a request
    whose last message is a tool result gets "tool result: <content>" (a
    Responses function_call_output, an Anthropic tool_result block).

Every request is logged (method, path, headers, raw body, parsed JSON, which
TCP connection it came on) together with what was sent back: the exact body
bytes of a plain reply, the `data:` payloads of a stream, and whether the
client closed its side before the reply was done. Each part of a reply is
logged just before it is written, so whoever has read it finds it logged. Tests compare what the
gateway passed on against that log, so "verbatim" can be checked exactly.

Behaviour keys (all optional; combine freely):
  text            reply text (default: the echo)
  tokens          explicit list of content pieces (default: text split at words)
  reasoning       reasoning text, sent first: chat `reasoning_content` deltas,
                  a Responses reasoning item, an Anthropic thinking block
  tool_calls      list of {"id", "name", "arguments"} or "auto" (call the first
                  tool the request offers); streamed in pieces as OpenAI does
  finish_reason   default "stop" ("tool_calls" when there are tool calls), in
                  OpenAI's words: Responses turns "length" into response.incomplete,
                  Anthropic says end_turn / tool_use / max_tokens
  token_delay     seconds between streamed chunks
  first_byte_delay  seconds before the status line (a cold start)
  status, body, headers   reply with this status; body a JSON value (sent as
                  JSON) or a string (sent raw); default body an OpenAI error
  content_type    content type of a status/body reply (default application/json)
  malformed       200 with a body that is not valid JSON (stream: a chunk that
                  is not valid JSON, then [DONE])
  cut_mid_event_after N   stream: N whole events, then half a `data:` line, then
                  close; plain: headers and half the body, then close
  cut_after N     stream: N whole events, then close without [DONE]
  error_after N   stream: N whole events, then one error event in the API's own
                  shape (chat {"error":...}, Responses `error`, Anthropic `error`)
                  and the end of the body (no [DONE], no completion event)
  stall_after N   stream: N whole events, then silence (until the client goes
                  away or stop()), the connection left open
  hang            read the request, then never answer (until stop() or the
                  client goes away)
  close           read the request, then close the connection without a reply
  path            queued behaviour only: the path it applies to
                  ("/v1/responses", "/v1/messages"; default /v1/chat/completions)
  model           the `model` field of the reply (default: the request's)

Standalone: `python3 fake_upstream.py --port N [--control] [--models m1,m2]`
prints the port on stdout and runs until SIGTERM or until its parent dies.
Python 3 standard library only.
"""

import argparse
import base64
import copy
import json
import os
import re
import select
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

CREATED = 1700000000  # fixed `created` so replies are deterministic


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on (right now)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def openai_error(message, etype="server_error", code=None, param=None):
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def content_text(content):
    """The text of a message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "".join(parts)
    return ""


def prompt_tokens(req):
    """Deterministic estimate: total characters of the messages' text / 4."""
    chars = 0
    for m in req.get("messages") or []:
        if isinstance(m, dict):
            chars += len(content_text(m.get("content")))
    return chars // 4


def split_tokens(text):
    """Words with their leading whitespace: "echo: a b" -> ["echo:", " a", " b"]."""
    toks = re.findall(r"\s*\S+\s*$|\s*\S+", text)
    return toks if toks else ([text] if text else [])


def pieces(s, n=3):
    """Split a string into up to n non-empty pieces (tool-call arguments)."""
    if len(s) <= 1:
        return [s]
    step = max(1, -(-len(s) // n))
    return [s[i : i + step] for i in range(0, len(s), step)]


class Plan:
    """What the reply to one chat request consists of, computed up front."""

    def __init__(self, req, beh, req_id):
        req = req if isinstance(req, dict) else {}
        msgs = req.get("messages") if isinstance(req.get("messages"), list) else []
        last = msgs[-1] if msgs and isinstance(msgs[-1], dict) else {}
        if "text" in beh:
            text = beh["text"]
        elif last.get("role") == "tool":
            text = "tool result: " + content_text(last.get("content"))
        else:
            user = ""
            for m in reversed(msgs):
                if isinstance(m, dict) and m.get("role") == "user":
                    user = content_text(m.get("content"))
                    break
            text = "echo: " + user
        calls = beh.get("tool_calls")
        if calls == "auto":
            calls = []
            if last.get("role") != "tool":
                for t in req.get("tools") or []:
                    if isinstance(t, dict) and isinstance(t.get("function"), dict):
                        calls = [{"name": t["function"].get("name", "tool"), "arguments": "{}"}]
                        break
            if calls and "text" not in beh:
                text = ""
        self.calls = []
        for i, c in enumerate(calls or []):
            self.calls.append(
                {
                    "id": c.get("id", "call_%d_%d" % (req_id, i)),
                    "name": c.get("name", "tool"),
                    "arguments": c.get("arguments", "{}"),
                }
            )
        self.tokens = list(beh["tokens"]) if "tokens" in beh else split_tokens(text)
        self.text = "".join(self.tokens)
        self.reasoning = split_tokens(beh["reasoning"]) if beh.get("reasoning") else []
        self.arg_pieces = [pieces(c["arguments"]) for c in self.calls]
        self.finish = beh.get("finish_reason", "tool_calls" if self.calls else "stop")
        self.model = beh.get("model", req.get("model") if isinstance(req.get("model"), str) else "")
        self.id = "chatcmpl-fake%d" % req_id
        n = len(self.tokens) + len(self.reasoning) + sum(len(p) for p in self.arg_pieces)
        pt = prompt_tokens(req)
        self.usage = {"prompt_tokens": pt, "completion_tokens": n, "total_tokens": pt + n}
        so = req.get("stream_options")
        self.include_usage = isinstance(so, dict) and so.get("include_usage") is True

    def completion(self):
        msg = {"role": "assistant", "content": self.text if (self.text or not self.calls) else None}
        if self.reasoning:
            msg["reasoning_content"] = "".join(self.reasoning)
        if self.calls:
            msg["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in self.calls
            ]
        msg["refusal"] = None
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": CREATED,
            "model": self.model,
            "choices": [{"index": 0, "message": msg, "logprobs": None,
                         "finish_reason": self.finish}],
            "usage": self.usage,
            "system_fingerprint": None,
        }

    def chunk(self, delta, finish=None):
        c = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            c["usage"] = None  # as OpenAI does when usage was asked for
        return c

    def events(self):
        """The stream's data payloads (JSON text), without the final [DONE]."""
        out = [self.chunk({"role": "assistant", "content": "" if not self.calls else None})]
        for r in self.reasoning:
            out.append(self.chunk({"reasoning_content": r}))
        for t in self.tokens:
            out.append(self.chunk({"content": t}))
        for i, c in enumerate(self.calls):
            head = {"index": i, "id": c["id"], "type": "function",
                    "function": {"name": c["name"], "arguments": ""}}
            out.append(self.chunk({"tool_calls": [head]}))
            for p in self.arg_pieces[i]:
                out.append(self.chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]}))
        out.append(self.chunk({}, self.finish))
        if self.include_usage:
            u = self.chunk(None)
            u["choices"] = []
            u["usage"] = self.usage
            out.append(u)
        return [json.dumps(e, separators=(",", ":")) for e in out]

    done_marker = "[DONE]"

    def sse(self):
        return [(None, e) for e in self.events()]

    def error_event(self, seq):
        return None, json.dumps(openai_error("fake error event"), separators=(",", ":"))


def anthropic_error(message, etype="api_error"):
    return {"type": "error", "error": {"type": etype, "message": message}}


def anthropic_etype(status):
    return {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
            529: "overloaded_error"}.get(status, "api_error")


def anthropic_text(content):
    """Text of an Anthropic content: a string or text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b["text"] for b in content
                       if isinstance(b, dict) and b.get("type") == "text"
                       and isinstance(b.get("text"), str))
    return ""


class DialectPlan:
    """What the reply to a Responses or Anthropic request consists of. The
    subclass reads its API's request (echo text, tool result, offered tools,
    prompt size) and writes its API's reply; the behaviour logic is shared
    with the chat Plan."""

    def __init__(self, req, beh, req_id):
        req = req if isinstance(req, dict) else {}
        user, tool_result, tools, chars = self.read(req)
        if "text" in beh:
            text = beh["text"]
        elif tool_result is not None:
            text = "tool result: " + tool_result
        else:
            text = "echo: " + user
        calls = beh.get("tool_calls")
        if calls == "auto":
            calls = []
            if tool_result is None and tools:
                calls = [{"name": tools[0], "arguments": "{}"}]
            if calls and "text" not in beh:
                text = ""
        self.calls = [{"id": c.get("id", self.call_id(req_id, i)), "name": c.get("name", "tool"),
                       "arguments": c.get("arguments", "{}")} for i, c in enumerate(calls or [])]
        self.tokens = list(beh["tokens"]) if "tokens" in beh else split_tokens(text)
        self.text = "".join(self.tokens)
        self.reasoning = split_tokens(beh["reasoning"]) if beh.get("reasoning") else []
        self.arg_pieces = [pieces(c["arguments"]) for c in self.calls]
        self.finish = beh.get("finish_reason", "tool_calls" if self.calls else "stop")
        self.model = beh.get("model", req.get("model") if isinstance(req.get("model"), str) else "")
        self.req_id = req_id
        self.id = "fake%d" % req_id
        self.input_tokens = chars // 4
        self.output_tokens = (len(self.tokens) + len(self.reasoning)
                              + sum(len(p) for p in self.arg_pieces))

    def sse(self):
        """[(event name, data JSON text)] of the stream."""
        return [(e["type"], json.dumps(e, separators=(",", ":"))) for e in self.stream_events()]


class ResponsesPlan(DialectPlan):
    done_marker = None

    def read(self, req):
        chars = len(req["instructions"]) if isinstance(req.get("instructions"), str) else 0
        inp = req.get("input")
        user, tool_result = "", None
        if isinstance(inp, str):
            user, chars = inp, chars + len(inp)
        elif isinstance(inp, list):
            for it in inp:
                if not isinstance(it, dict):
                    continue
                if it.get("type") == "function_call_output":
                    out = it.get("output")
                    tool_result = out if isinstance(out, str) else content_text(out)
                    chars += len(tool_result)
                elif it.get("type") in (None, "message"):
                    t = content_text(it.get("content"))
                    chars += len(t)
                    tool_result = None
                    if it.get("role") == "user":
                        user = t
        tools = [t["name"] for t in req.get("tools") or []
                 if isinstance(t, dict) and t.get("type") == "function"
                 and isinstance(t.get("name"), str)]
        return user, tool_result, tools, chars

    def call_id(self, req_id, i):
        return "call_%d_%d" % (req_id, i)

    def items(self):
        """The output items, complete, in order."""
        out = []
        if self.reasoning:
            out.append({"id": "rs_" + self.id, "type": "reasoning",
                        "summary": [{"type": "summary_text", "text": "".join(self.reasoning)}]})
        if self.text or not self.calls:
            out.append({"id": "msg_" + self.id, "type": "message", "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": self.text, "annotations": [],
                                     "logprobs": []}]})
        for i, c in enumerate(self.calls):
            out.append({"id": "fc_%s_%d" % (self.id, i), "type": "function_call",
                        "status": "completed", "call_id": c["id"], "name": c["name"],
                        "arguments": c["arguments"]})
        return out

    def response(self, status, output):
        r = {"id": "resp_" + self.id, "object": "response", "created_at": CREATED,
             "status": status, "error": None, "incomplete_details": None, "instructions": None,
             "max_output_tokens": None, "model": self.model, "output": output,
             "parallel_tool_calls": True, "previous_response_id": None,
             "reasoning": {"effort": None, "summary": None}, "store": False,
             "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
             "tools": [], "top_p": 1.0, "truncation": "disabled", "usage": None, "metadata": {}}
        if status != "in_progress":
            r["usage"] = {"input_tokens": self.input_tokens,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens": self.output_tokens,
                          "output_tokens_details": {"reasoning_tokens": len(self.reasoning)},
                          "total_tokens": self.input_tokens + self.output_tokens}
        if status == "incomplete":
            r["incomplete_details"] = {"reason": "max_output_tokens"}
        return r

    def final_status(self):
        return "incomplete" if self.finish == "length" else "completed"

    def completion(self):
        return self.response(self.final_status(), self.items())

    def stream_events(self):
        ev = []

        def add(type_, **kw):
            e = {"type": type_, "sequence_number": len(ev)}
            e.update(kw)
            ev.append(e)

        items = self.items()
        add("response.created", response=self.response("in_progress", []))
        add("response.in_progress", response=self.response("in_progress", []))
        calls_from = len(items) - len(self.calls)
        for idx, item in enumerate(items):
            added = copy.deepcopy(item)
            if item["type"] == "message":
                added.update(status="in_progress", content=[])
            elif item["type"] == "reasoning":
                added["summary"] = []
            else:
                added.update(status="in_progress", arguments="")
            add("response.output_item.added", output_index=idx, item=added)
            ref = {"item_id": item["id"], "output_index": idx}
            if item["type"] == "reasoning":
                text = item["summary"][0]["text"]
                add("response.reasoning_summary_part.added", summary_index=0,
                    part={"type": "summary_text", "text": ""}, **ref)
                for r in self.reasoning:
                    add("response.reasoning_summary_text.delta", summary_index=0, delta=r, **ref)
                add("response.reasoning_summary_text.done", summary_index=0, text=text, **ref)
                add("response.reasoning_summary_part.done", summary_index=0,
                    part={"type": "summary_text", "text": text}, **ref)
            elif item["type"] == "message":
                add("response.content_part.added", content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                    **ref)
                for t in self.tokens:
                    add("response.output_text.delta", content_index=0, delta=t, logprobs=[], **ref)
                add("response.output_text.done", content_index=0, text=self.text, logprobs=[],
                    **ref)
                add("response.content_part.done", content_index=0, part=item["content"][0], **ref)
            else:
                for p in self.arg_pieces[idx - calls_from]:
                    add("response.function_call_arguments.delta", delta=p, **ref)
                add("response.function_call_arguments.done", name=item["name"],
                    arguments=item["arguments"], **ref)
            add("response.output_item.done", output_index=idx, item=item)
        status = self.final_status()
        add("response." + status, response=self.response(status, items))
        return ev

    def error_event(self, seq):
        e = {"type": "error", "sequence_number": seq, "code": "server_error",
             "message": "fake error event", "param": None}
        return "error", json.dumps(e, separators=(",", ":"))


ANTHROPIC_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens",
                  "content_filter": "refusal"}


class MessagesPlan(DialectPlan):
    done_marker = None

    def read(self, req):
        system = req.get("system")
        chars = len(system) if isinstance(system, str) else len(anthropic_text(system))
        user, tool_result = "", None
        for m in req.get("messages") if isinstance(req.get("messages"), list) else []:
            if not isinstance(m, dict):
                continue
            c = m.get("content")
            chars += len(anthropic_text(c))
            tool_result = None
            for b in c if isinstance(c, list) else []:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    tool_result = anthropic_text(b.get("content"))
                    chars += len(tool_result)
            if m.get("role") == "user" and tool_result is None:
                user = anthropic_text(c)
        tools = [t["name"] for t in req.get("tools") or []
                 if isinstance(t, dict) and isinstance(t.get("name"), str)]
        return user, tool_result, tools, chars

    def call_id(self, req_id, i):
        return "toolu_fake%d_%d" % (req_id, i)

    def blocks(self):
        out = []
        if self.reasoning:
            out.append({"type": "thinking", "thinking": "".join(self.reasoning),
                        "signature": "ZmFrZS1zaWduYXR1cmU="})
        if self.text or not self.calls:
            out.append({"type": "text", "text": self.text})
        for c in self.calls:
            try:
                args = json.loads(c["arguments"])
            except ValueError:
                args = {}
            out.append({"type": "tool_use", "id": c["id"], "name": c["name"], "input": args})
        return out

    def message(self, content, stop_reason, output_tokens):
        return {"id": "msg_" + self.id, "type": "message", "role": "assistant",
                "model": self.model, "content": content, "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {"input_tokens": self.input_tokens, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 0, "output_tokens": output_tokens}}

    def completion(self):
        return self.message(self.blocks(), ANTHROPIC_STOP.get(self.finish, "end_turn"),
                            self.output_tokens)

    def stream_events(self):
        blocks = self.blocks()
        calls_from = len(blocks) - len(self.calls)
        ev = [{"type": "message_start", "message": self.message([], None, 1)}]
        for idx, b in enumerate(blocks):
            if b["type"] == "thinking":
                ev.append({"type": "content_block_start", "index": idx,
                           "content_block": {"type": "thinking", "thinking": ""}})
                for r in self.reasoning:
                    ev.append({"type": "content_block_delta", "index": idx,
                               "delta": {"type": "thinking_delta", "thinking": r}})
                ev.append({"type": "content_block_delta", "index": idx,
                           "delta": {"type": "signature_delta", "signature": b["signature"]}})
            elif b["type"] == "text":
                ev.append({"type": "content_block_start", "index": idx,
                           "content_block": {"type": "text", "text": ""}})
                if idx == 0:
                    ev.append({"type": "ping"})
                for t in self.tokens:
                    ev.append({"type": "content_block_delta", "index": idx,
                               "delta": {"type": "text_delta", "text": t}})
            else:
                ev.append({"type": "content_block_start", "index": idx,
                           "content_block": {"type": "tool_use", "id": b["id"],
                                             "name": b["name"], "input": {}}})
                for p in self.arg_pieces[idx - calls_from]:
                    ev.append({"type": "content_block_delta", "index": idx,
                               "delta": {"type": "input_json_delta", "partial_json": p}})
            ev.append({"type": "content_block_stop", "index": idx})
        ev.append({"type": "message_delta",
                   "delta": {"stop_reason": ANTHROPIC_STOP.get(self.finish, "end_turn"),
                             "stop_sequence": None},
                   "usage": {"output_tokens": self.output_tokens}})
        ev.append({"type": "message_stop"})
        return ev

    def error_event(self, seq):
        return "error", json.dumps(anthropic_error("Overloaded", "overloaded_error"),
                                   separators=(",", ":"))


def anthropic_check(headers, req):
    """(status, body) when a Messages request breaks Anthropic's rules, else None."""
    if not (headers.get("x-api-key") or "").strip():
        return 401, anthropic_error("x-api-key header is required", "authentication_error")
    if not headers.get("anthropic-version"):
        return 400, anthropic_error("anthropic-version: header is required",
                                    "invalid_request_error")
    if not isinstance(req, dict):
        return 400, anthropic_error("Invalid JSON body", "invalid_request_error")
    mt = req.get("max_tokens")
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
        return 400, anthropic_error("max_tokens: Field required", "invalid_request_error")
    if not isinstance(req.get("messages"), list):
        return 400, anthropic_error("messages: Field required", "invalid_request_error")
    return None


# Paths served, and the plan for each (None: the chat Plan).
DIALECTS = {"/v1/chat/completions": None, "/v1/responses": ResponsesPlan,
            "/v1/messages": MessagesPlan}


class PeerGone(Exception):
    """The client closed its side (or reset) while we were replying."""


class Stopped(Exception):
    """stop() was called while a handler was waiting."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-upstream/1"

    def log_message(self, fmt, *args):  # quiet: the request log is the record
        pass

    def setup(self):
        super().setup()
        self.fake = self.server.fake
        self.conn_id = self.fake._register_conn(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.fake._unregister_conn(self.connection)

    # -- plumbing ---------------------------------------------------------

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, data):
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
            raise PeerGone() from e

    def pause(self, seconds):
        """Sleep, but notice the client closing its side and stop() at once."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if self.fake._stopping.is_set():
                raise Stopped()
            if left <= 0:
                return
            try:
                r, _, _ = select.select([self.connection], [], [], min(left, 0.1))
            except (OSError, ValueError) as e:
                raise PeerGone() from e
            if r:
                try:
                    peek = self.connection.recv(1, socket.MSG_PEEK)
                except (ConnectionResetError, OSError) as e:
                    raise PeerGone() from e
                if peek == b"":
                    raise PeerGone()
                # Pipelined bytes: not a close. Sleep the rest without polling.
                self.fake._stopping.wait(max(0.0, deadline - time.monotonic()))
                return

    def head(self, status, headers):
        reason = self.responses.get(status, ("Status",))[0]
        lines = ["HTTP/1.1 %d %s" % (status, reason)]
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def reply(self, status, body, ctype="application/json", extra=(), entry=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        hdrs = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        hdrs += list(extra)
        if entry is not None:  # logged first: a test may look as soon as it has read the reply
            self.fake._update(entry, status=status, response_body=body)
        self.head(status, hdrs)
        self.send(body)

    def close_now(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- dispatch ---------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        body = self.read_body()
        path = self.path.split("?", 1)[0]
        if path.startswith("/_control/") and self.fake.control:
            return self.control(path, body)
        try:
            parsed = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        entry = self.fake._log(self, path, body, parsed)
        beh = self.fake._behaviour_for(path, parsed)
        self.fake._update(entry, behaviour=copy.deepcopy(beh))
        try:
            self.serve(entry, path, parsed, beh)
            self.fake._update(entry, finished=True)
        except PeerGone:
            self.fake._update(entry, client_closed=True, client_closed_at=time.monotonic())
            self.close_connection = True
        except Stopped:
            self.fake._update(entry, stopped=True)
            self.close_now()
        finally:
            self.fake._update(entry, ended_at=time.monotonic())

    def serve(self, entry, path, req, beh):
        if beh.get("close"):
            self.close_now()
            return
        if beh.get("hang"):
            self.pause(3600)
            return
        if beh.get("first_byte_delay"):
            self.pause(float(beh["first_byte_delay"]))
        if "status" in beh or "body" in beh:
            status = int(beh.get("status", 200))
            etype = "server_error" if status >= 500 else "invalid_request_error"
            if path == "/v1/messages":
                default = anthropic_error("fake error %d" % status, anthropic_etype(status))
            else:
                default = openai_error("fake error %d" % status, etype)
            body = beh.get("body", default)
            extra = list((beh.get("headers") or {}).items())
            self.reply(status, body, beh.get("content_type", "application/json"), extra, entry)
            return
        if self.command == "GET" and path == "/v1/models":
            data = [{"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}
                    for m in self.fake.model_ids()]
            return self.reply(200, {"object": "list", "data": data}, entry=entry)
        if path not in DIALECTS:
            return self.reply(404, openai_error("Unknown path %s" % path, "invalid_request_error",
                                                "unknown_url"), entry=entry)
        if self.command != "POST":
            return self.reply(405, openai_error("Method not allowed", "invalid_request_error"),
                              entry=entry)
        if path == "/v1/messages":
            bad = anthropic_check(self.headers, req)
            if bad:
                return self.reply(bad[0], bad[1], entry=entry)
        if not isinstance(req, dict):
            return self.reply(400, openai_error("Invalid JSON body", "invalid_request_error"),
                              entry=entry)
        ids = self.fake.model_ids()
        if ids and req.get("model") not in ids and not beh:
            msg = "The model `%s` does not exist" % req.get("model")
            body = (anthropic_error(msg, "not_found_error") if path == "/v1/messages" else
                    openai_error(msg, "invalid_request_error", "model_not_found"))
            return self.reply(404, body, entry=entry)
        plan = (DIALECTS[path] or Plan)(req, beh, entry["id"])
        if req.get("stream") is True:
            self.stream(entry, plan, beh)
        else:
            self.plain(entry, plan, beh)

    def plain(self, entry, plan, beh):
        body = json.dumps(plan.completion()).encode()
        if beh.get("malformed"):
            body = body[: len(body) // 2] + b'"}{,'
        if "cut_mid_event_after" in beh:
            self.fake._update(entry, status=200, response_body=body[: len(body) // 2])
            self.head(200, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
            self.send(body[: len(body) // 2])
            self.close_now()
            return
        self.reply(200, body, entry=entry)

    def stream(self, entry, plan, beh):
        events = plan.sse()
        if beh.get("malformed"):
            name = events[1][0] if len(events) > 1 else None
            bad = ('{"id":"%s","choices":[{"delta":{"content":"x"' % plan.id if name is None
                   else '{"type":"%s","delta":"x' % name)
            events = events[:1] + [(name, bad)]
        self.head(200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
                        ("Transfer-Encoding", "chunked")])
        self.fake._update(entry, status=200)
        cut_mid = beh.get("cut_mid_event_after")
        cut = beh.get("cut_after")
        stall = beh.get("stall_after")
        err_after = beh.get("error_after")
        delay = float(beh.get("token_delay", 0))
        for i, (name, ev) in enumerate(events):
            head = "event: %s\n" % name if name else ""
            if stall is not None and i == int(stall):
                self.pause(3600)
                return
            if cut_mid is not None and i == int(cut_mid):
                half = (head + "data: " + ev)[: len(head) + 6 + len(ev) // 2].encode()
                self.fake._append_partial(entry, half)
                self.send_chunk(half)
                self.close_now()
                return
            if cut is not None and i == int(cut):
                self.close_now()
                return
            if err_after is not None and i == int(err_after):
                name, ev = plan.error_event(i)
                self.fake._append_event(entry, ev, name)
                self.send_chunk((("event: %s\n" % name if name else "") + "data: " + ev
                                 + "\n\n").encode())
                self.send(b"0\r\n\r\n")
                return
            if delay and i > 0:
                self.pause(delay)
            self.fake._append_event(entry, ev, name)
            self.send_chunk((head + "data: " + ev + "\n\n").encode())
        if cut_mid is not None or cut is not None:  # asked for more events than there are
            self.close_now()
            return
        if plan.done_marker:
            self.fake._append_event(entry, plan.done_marker)
            self.send_chunk(b"data: [DONE]\n\n")
        self.send(b"0\r\n\r\n")

    def send_chunk(self, data):
        self.send(b"%x\r\n%s\r\n" % (len(data), data))

    # -- control API --------------------------------------------------------

    def control(self, path, body):
        try:
            arg = json.loads(body) if body else None
        except ValueError:
            return self.reply(400, openai_error("control: invalid JSON"))
        if path == "/_control/script" and self.command == "POST":
            self.fake.script(*(arg if isinstance(arg, list) else [arg]))
            return self.reply(200, {"queued": self.fake.queued()})
        if path == "/_control/requests" and self.command == "GET":
            return self.reply(200, self.fake.requests(for_json=True))
        if path == "/_control/reset" and self.command == "POST":
            self.fake.reset()
            return self.reply(200, {"ok": True})
        if path == "/_control/models" and self.command == "POST":
            self.fake.set_models(arg)
            return self.reply(200, {"models": self.fake.model_ids()})
        return self.reply(404, openai_error("control: unknown %s %s" % (self.command, path)))


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class FakeUpstream:
    """In-process fake upstream. start() binds 127.0.0.1:port (0: a free one)
    and serves on a background thread; stop() closes the listener and every
    open connection and releases hanging handlers."""

    def __init__(self, models=("m1",), port=0, control=False):
        self.control = control
        self._lock = threading.Lock()
        self._queue = []
        self._log_entries = []
        self._conns = {}
        self._next_conn = 0
        self._stopping = threading.Event()
        self._models = {}
        self.set_models(models)
        self._want_port = port
        self._server = None
        self._thread = None
        self.port = None

    # -- lifecycle ------------------------------------------------------------

    def start(self):
        self._server = _Server(("127.0.0.1", self._want_port), Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        with self._lock:  # idempotent, and safe to call from two threads
            server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self):
        return "http://127.0.0.1:%d/v1" % self.port

    # -- configuration --------------------------------------------------------

    def set_models(self, models):
        """models: list of ids, or dict id -> behaviour (None: default)."""
        if isinstance(models, dict):
            m = {k: dict(v or {}) for k, v in models.items()}
        else:
            m = {k: {} for k in (models or [])}
        with self._lock:
            self._models = m

    def model_ids(self):
        with self._lock:
            return list(self._models)

    def script(self, *behaviours):
        """Queue behaviours; each is used by the next request to its path."""
        with self._lock:
            for b in behaviours:
                if not isinstance(b, dict):
                    raise ValueError("a behaviour is a JSON object")
                self._queue.append(dict(b))

    def queued(self):
        with self._lock:
            return len(self._queue)

    def reset(self):
        with self._lock:
            self._queue.clear()
            self._log_entries.clear()

    def _behaviour_for(self, path, req):
        with self._lock:
            for i, b in enumerate(self._queue):
                if b.get("path", "/v1/chat/completions") == path:
                    return self._queue.pop(i)
            model = req.get("model") if isinstance(req, dict) else None
            if isinstance(model, str) and self._models.get(model):
                return dict(self._models[model])
        return {}

    # -- request log ----------------------------------------------------------

    def _register_conn(self, sock):
        with self._lock:
            self._next_conn += 1
            self._conns[id(sock)] = sock
            return self._next_conn

    def _unregister_conn(self, sock):
        with self._lock:
            self._conns.pop(id(sock), None)

    def _log(self, h, path, body, parsed):
        entry = {
            "id": len(self._log_entries) + 1,
            "method": h.command,
            "path": path,
            "target": h.path,
            "headers": {k.lower(): v for k, v in h.headers.items()},
            "header_list": list(h.headers.items()),
            "body": body,
            "json": parsed,
            "conn": h.conn_id,
            "started_at": time.monotonic(),
            "behaviour": {},
            "status": None,
            "response_body": None,
            "events": [],
            "event_names": [],
            "partial": b"",
            "finished": False,
            "client_closed": False,
            "client_closed_at": None,
            "ended_at": None,
            "stopped": False,
        }
        with self._lock:
            entry["id"] = len(self._log_entries) + 1
            self._log_entries.append(entry)
        return entry

    def _update(self, entry, **kw):
        with self._lock:
            entry.update(kw)

    def _append_event(self, entry, ev, name=None):
        with self._lock:
            entry["events"].append(ev)
            entry["event_names"].append(name)

    def _append_partial(self, entry, data):
        with self._lock:
            entry["partial"] = data

    def requests(self, path=None, for_json=False):
        """A snapshot (deep copy) of the request log, oldest first."""
        with self._lock:
            out = copy.deepcopy([e for e in self._log_entries if path is None or e["path"] == path])
        if for_json:
            for e in out:
                for k in ("body", "response_body", "partial"):
                    v = e[k]
                    if isinstance(v, bytes):
                        e[k] = v.decode("utf-8", "replace")
                        e[k + "_b64"] = base64.b64encode(v).decode()
        return out

    def chat_requests(self):
        return self.requests("/v1/chat/completions")

    def responses_requests(self):
        return self.requests("/v1/responses")

    def messages_requests(self):
        return self.requests("/v1/messages")

    def last(self, path="/v1/chat/completions"):
        r = self.requests(path)
        return r[-1] if r else None

    def wait_for(self, pred, timeout=10.0):
        """Poll the log until pred(entries) is true; returns it, or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            got = pred(self.requests())
            if got or time.monotonic() >= deadline:
                return got or None
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control", action="store_true", help="enable /_control/*")
    ap.add_argument("--models", default="m1", help="comma-separated model ids")
    args = ap.parse_args()
    fake = FakeUpstream(models=[m for m in args.models.split(",") if m], port=args.port,
                        control=args.control)
    fake.start()
    print(fake.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    parent = os.getppid()
    while not done.wait(0.2):
        if os.getppid() != parent:  # orphaned: our test runner is gone
            break
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
