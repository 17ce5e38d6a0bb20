#!/usr/bin/env python3
"""ref_gateway.py - a throwaway Python model of the gateway's HTTP contract.

NOT clawgate and not run by `make test`. It exists so the end-to-end tests
can be checked before (and apart from) the C gateway: when a test fails
against the real binary, running it against this model tells a test bug from
a gateway bug:

    CLAWGATE_BIN=tests/e2e/ref_gateway.py python3 tests/e2e/test_chat.py

It reads only JSON configs (what harness.Gateway writes for dict configs),
re-serializes request bodies (the real gateway must not), and does one
upstream attempt. Python 3 standard library only.
"""

import http.client
import itertools
import json
import signal
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler

STATUS_CLASS = {408: "timeout", 499: "timeout", 500: "timeout", 502: "timeout", 503: "timeout",
                504: "timeout", 529: "overloaded", 429: "rate_limit", 401: "auth", 403: "auth",
                402: "billing", 404: "model_not_found", 400: "format", 422: "format"}
ids = itertools.count(1)


def err(message, etype, code=None):
    return {"error": {"message": message, "type": etype, "code": code}}


class Config:
    def __init__(self, path):
        with open(path) as f:
            c = json.load(f)
        self.models = {}  # ref -> (provider dict, id)
        for pname, p in c.get("models", {}).get("providers", {}).items():
            for m in p.get("models", []):
                self.models["%s/%s" % (pname, m["id"])] = (p, m["id"])
        d = c.get("agents", {}).get("defaults", {})
        self.primary = d.get("model", {}).get("primary") or next(iter(self.models))
        self.aliases = {v["alias"]: k for k, v in d.get("models", {}).items() if v.get("alias")}
        cg = c.get("clawgate", {})
        host, port = cg.get("listen", "127.0.0.1:8089").rsplit(":", 1)
        self.listen = (host, int(port))
        self.max_body = cg.get("limits", {}).get("maxBodyBytes", 16 << 20)
        t = cg.get("timeouts", {})
        self.client_s = t.get("clientSeconds", 30)
        self.ttft_s = t.get("firstTokenSeconds", 30)
        self.connect_s = t.get("connectMs", 5000) / 1000.0

    def resolve(self, ref):
        if ref is None:
            return self.primary
        for a, target in self.aliases.items():
            if a.lower() == ref.lower():
                return target
        if ref in self.models:
            return ref
        bare = [r for r in self.models if r.split("/", 1)[1] == ref]
        return bare[0] if len(bare) == 1 else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("ref_gateway: " + (fmt % args) + "\n")

    def setup(self):
        self.timeout = self.server.cfg.client_s
        super().setup()

    def send_json(self, status, obj, extra=()):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", self.rid)
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.rid = "req-%d" % next(ids)
        cfg = self.server.cfg
        if self.path in ("/healthz", "/readyz"):
            return self.send_json(200, {"status": "ok"})
        if self.path == "/v1/models":
            data = [{"id": r, "object": "model", "owned_by": r.split("/")[0]} for r in cfg.models]
            data += [{"id": a, "object": "model", "owned_by": "alias"} for a in cfg.aliases]
            return self.send_json(200, {"object": "list", "data": data})
        if self.path == "/v1/chat/completions":
            return self.send_json(405, err("use POST", "invalid_request_error"))
        return self.send_json(404, err("no route " + self.path, "invalid_request_error"))

    def do_POST(self):
        self.rid = "req-%d" % next(ids)
        cfg = self.server.cfg
        n = int(self.headers.get("Content-Length") or 0)
        if n > cfg.max_body:
            self.close_connection = True
            return self.send_json(413, err("body over %d bytes" % cfg.max_body,
                                           "invalid_request_error"))
        raw = self.rfile.read(n)
        if self.path != "/v1/chat/completions":
            return self.send_json(404, err("no route " + self.path, "invalid_request_error"))
        try:
            req = json.loads(raw)
        except json.JSONDecodeError as e:
            return self.send_json(400, err("invalid JSON at byte %d: %s" % (e.pos, e.msg),
                                           "invalid_request_error"))
        if not isinstance(req, dict):
            return self.send_json(400, err("body must be an object", "invalid_request_error"))
        for field, ok in (("model", lambda v: v is None or isinstance(v, str)),
                          ("messages", lambda v: isinstance(v, list)),
                          ("stream", lambda v: v is None or isinstance(v, bool))):
            if not ok(req.get(field)):
                return self.send_json(400, err("`%s` has the wrong type or is missing" % field,
                                               "invalid_request_error"))
        ref = cfg.resolve(req.get("model"))
        if ref is None:
            return self.send_json(404, err("model `%s` not found" % req.get("model"),
                                           "invalid_request_error", "model_not_found"))
        prov, mid = cfg.models[ref]
        stream = req.get("stream") is True
        want_usage = stream and (req.get("stream_options") or {}).get("include_usage") is True
        req["model"] = mid
        if stream:
            req["stream_options"] = dict(req.get("stream_options") or {}, include_usage=True)
        base = prov["baseUrl"].split("//", 1)[1]
        host, _, prefix = base.partition("/")
        h, p = host.rsplit(":", 1)
        up = http.client.HTTPConnection(h, int(p), timeout=cfg.connect_s)
        try:
            up.connect()
            up.sock.settimeout(cfg.ttft_s)
            up.request("POST", "/" + prefix + "/chat/completions", json.dumps(req).encode(),
                       {"Content-Type": "application/json",
                        "Authorization": "Bearer " + prov.get("apiKey", "")})
            r = up.getresponse()
        except OSError as e:
            up.close()
            return self.send_json(502, err("upstream: %s" % e, "upstream_error", "timeout"))
        try:
            if r.status != 200:
                body = r.read()
                extra = [("Retry-After", r.headers["Retry-After"])] if r.headers.get(
                    "Retry-After") else []
                status = r.status if r.status == 429 else 502
                return self.send_json(status, err("upstream %d: %r" % (r.status, body[:200]),
                                                  "upstream_error",
                                                  STATUS_CLASS.get(r.status, "unknown")), extra)
            if not stream:
                body = r.read()
                return self.send_json(200, body, [("x-clawgate-model", ref)])
            self.relay(r, ref, want_usage)
        except OSError as e:
            if not stream:
                return self.send_json(502, err("upstream: %s" % e, "upstream_error", "timeout"))
        finally:
            up.close()

    def relay(self, r, ref, want_usage):
        first = r.read1(65536)  # headers go out only once the first byte is in
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", self.rid)
        self.send_header("x-clawgate-model", ref)
        self.end_headers()
        buf = first
        piece = first
        while True:
            *events, buf = buf.split(b"\n\n")
            for ev in events:
                data = b"\n".join(ln[6:] for ln in ev.split(b"\n") if ln.startswith(b"data: "))
                if not want_usage and data != b"[DONE]" and json.loads(data).get("choices") == []:
                    continue
                self.chunk(b"data: " + data + b"\n\n")
                if data == b"[DONE]":
                    self.wfile.write(b"0\r\n\r\n")
                    return
            if not piece:
                break
            try:
                piece = r.read1(65536)
            except (OSError, http.client.HTTPException):
                piece = b""
            buf += piece
        e = err("upstream stream ended early", "upstream_error", "timeout")
        self.chunk(b"data: " + json.dumps(e).encode() + b"\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    if len(sys.argv) < 4 or sys.argv[1] != "serve" or sys.argv[2] != "--config":
        print("usage: ref_gateway.py serve --config FILE", file=sys.stderr)
        return 2
    cfg = Config(sys.argv[3])
    srv = Server(cfg.listen, Handler)
    srv.cfg = cfg
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    sys.exit(main())
