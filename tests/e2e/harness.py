"""harness.py - start the real clawgate binary, talk HTTP to it, run tests.

DESIGN
End-to-end tests drive `$CLAWGATE_BIN serve --config FILE` (default
build-asan/clawgate: the ASan build, so a leak at shutdown shows up as a
non-zero exit) against fake_upstream.FakeUpstream on 127.0.0.1.

  Gateway(config)   writes the config to a fresh temp dir (listen address on a
                    free loopback port, store inside the temp dir), starts the
                    binary with its output captured to a file, waits for
                    GET /healthz == 200. stop() sends SIGTERM by pid, waits,
                    SIGKILLs after 10 s, and returns the exit code.
  Client            one keep-alive connection (http.client) with request()
                    and sse(); request()/sse() on a Gateway use a fresh one.
  run(tests)        the runner: each test a function, run in the main thread
                    under a SIGALRM watchdog; prints "ok - name" or
                    "not ok - name" with the reason and the gateway log tail as
                    "# " lines; cleans every process and temp dir it knows of,
                    even on failure; exits 1 if anything failed.

Anything a test starts through this module (gateways, fakes, processes, temp
dirs) is registered and torn down by the runner after the test. A gateway the
test did not stop itself is stopped by the runner, and a non-zero exit code
then fails the test: every test checks clean shutdown for free.
Python 3 standard library only.
"""

import atexit
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from fake_upstream import FakeUpstream, free_port  # noqa: E402

__all__ = ["Gateway", "Client", "FakeUpstream", "free_port", "request", "sse", "run", "check",
           "eq", "fake_config", "register", "json_body", "start_fake", "main", "setup",
           "strip", "check_error", "HERE", "ROOT", "SSEResult"]

TEST_TIMEOUT = float(os.environ.get("CG_E2E_TEST_TIMEOUT", "60"))

# Everything the current test started: (kind, object). Torn down after each test.
_resources = []


def register(kind, obj):
    _resources.append((kind, obj))
    return obj


class TestFailure(AssertionError):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what="value"):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def clawgate_bin():
    b = os.environ.get("CLAWGATE_BIN") or os.path.join(ROOT, "build-asan", "clawgate")
    return b if os.path.isabs(b) else os.path.join(ROOT, b)


def _pdeathsig():
    # The gateway dies with the runner even if the runner is SIGKILLed.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def fake_config(fake, models=("m1",), alias="Fast", extra_providers=None, clawgate=None,
                mode="replace"):
    """The usual test config: provider `fake` at the fake upstream, primary
    fake/<first model>, alias `alias` for it; clawgate block merged in."""
    cfg = {
        "agents": {
            "defaults": {
                "model": {"primary": "fake/%s" % models[0]},
                "models": {"fake/%s" % models[0]: {"alias": alias}} if alias else {},
            }
        },
        "models": {
            "mode": mode,
            "providers": {
                "fake": {
                    "baseUrl": fake.base_url,
                    "apiKey": "sk-test",
                    "api": "openai-completions",
                    "models": [{"id": m, "name": m.upper()} for m in models],
                }
            },
        },
    }
    if extra_providers:
        cfg["models"]["providers"].update(extra_providers)
    # The health prober would put GET /v1/models requests into the fake's log
    # at random moments: off unless a test asks for it.
    cfg["clawgate"] = {"health": {"intervalSeconds": -1}}
    if clawgate:
        cfg["clawgate"].update(clawgate)
    return cfg


class Gateway:
    """The real binary on a free loopback port. config: a dict (written as
    JSON, which is JSON5) or JSON5 text in which @LISTEN@ and @STORE@ are
    replaced by the listen address and store path."""

    def __init__(self, config, env=None, args=(), ready_timeout=15.0, wait=True):
        self.dir = tempfile.mkdtemp(prefix="cg-e2e-")
        register("dir", self.dir)
        self.port = free_port()
        self.listen = "127.0.0.1:%d" % self.port
        self.store = os.path.join(self.dir, "clawgate.db")
        self.config_path = os.path.join(self.dir, "clawgate.json5")
        if isinstance(config, dict):
            cfg = json.loads(json.dumps(config))
            cg = cfg.setdefault("clawgate", {})
            cg["listen"] = self.listen
            cg.setdefault("store", {})["path"] = self.store
            text = json.dumps(cfg, indent=2)
        else:
            if "@LISTEN@" not in config:
                raise ValueError("JSON5 text config needs @LISTEN@ (and @STORE@)")
            text = config.replace("@LISTEN@", self.listen).replace("@STORE@", self.store)
        with open(self.config_path, "w") as f:
            f.write(text)
        self.url = "http://%s" % self.listen
        self.log_path = os.path.join(self.dir, "gateway.log")
        self.proc = None
        self.exit_code = None
        self._note = None
        self._final_log = ""
        self.bin = clawgate_bin()
        if not os.access(self.bin, os.X_OK):
            raise TestFailure("gateway binary %s not found or not executable (set CLAWGATE_BIN)"
                              % self.bin)
        full_env = dict(os.environ)
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        full_env.update(env or {})
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.bin, "serve", "--config", self.config_path] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, cwd=self.dir, env=full_env,
                                     preexec_fn=_pdeathsig)
        register("gateway", self)
        if wait:
            self.wait_ready(ready_timeout)

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("gateway exited %d during start-up" % self.proc.returncode)
            try:
                st, _, _ = request(self.url, "GET", "/healthz", timeout=2)
                if st == 200:
                    return
                last = "status %d" % st
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        raise TestFailure("gateway not healthy after %.0f s (%s)" % (timeout, last))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit code
        (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                self._note = "did not exit within %.0f s of SIGTERM; killed" % timeout
        self.exit_code = self.proc.returncode
        self._log_file.close()
        self._final_log = self.log()
        return self.exit_code

    def log(self):
        """Everything the gateway wrote to stdout and stderr so far."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return self._final_log

    def request(self, method, path, body=None, headers=None, timeout=30):
        return request(self.url, method, path, body, headers, timeout)

    def sse(self, method, path, body=None, headers=None, timeout=30, **kw):
        return sse(self.url, method, path, body, headers, timeout, **kw)

    def client(self, timeout=30):
        return register("client", Client(self.url, timeout))


def json_body(body):
    """Parse a response body as JSON; fail the test with the body if it is not."""
    try:
        return json.loads(body)
    except ValueError:
        raise TestFailure("response is not JSON: %r" % body[:300])


def _encode(body, headers):
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    elif isinstance(body, str):
        body = body.encode()
    return body, headers


class SSEResult:
    """A streamed response: status, headers (case-insensitive .get), raw body
    bytes, `data` (every data: payload, in order), `done` (saw data: [DONE]),
    `clean` (the HTTP body ended properly rather than being cut), `error`."""

    def __init__(self, status, headers):
        self.status = status
        self.headers = headers
        self.raw = b""
        self.data = []
        self.done = False
        self.clean = False
        self.error = None

    def json(self):
        """Every data payload but [DONE], parsed."""
        return [json.loads(d) for d in self.data if d != "[DONE]"]

    def __repr__(self):
        return "SSEResult(status=%r, data=%r, done=%r, clean=%r, error=%r)" % (
            self.status, self.data[:20], self.done, self.clean, self.error)


def parse_sse(raw):
    """data: payloads of complete events in raw (bytes), per the SSE spec, and
    the unparsed rest."""
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    events = []
    *blocks, rest = text.split("\n\n")
    for b in blocks:
        lines = [ln for ln in b.split("\n")]
        data = [ln[5:][1:] if ln[5:6] == " " else ln[5:] for ln in lines if ln.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return events, rest


class Client:
    """One HTTP/1.1 connection to base_url, kept alive across calls."""

    def __init__(self, base_url, timeout=30):
        m = re.match(r"http://([^:/]+):(\d+)", base_url)
        self.host, self.port = m.group(1), int(m.group(2))
        self.timeout = timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def close(self):
        self.conn.close()

    def local_port(self):
        """The client side's port of the current socket (None if not connected)."""
        return self.conn.sock.getsockname()[1] if self.conn.sock else None

    def request(self, method, path, body=None, headers=None):
        body, headers = _encode(body, headers)
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, r.headers, data

    def sse(self, method, path, body=None, headers=None, max_events=None, on_event=None):
        """Send a request and read an event stream. max_events: stop reading
        (and close the connection) after that many data payloads."""
        body, headers = _encode(body, headers)
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        res = SSEResult(r.status, r.headers)
        try:
            while True:
                piece = r.read1(65536)
                if not piece:
                    res.clean = True
                    # A stream sent whole carries a Content-Length; http.client's
                    # read1 then answers b"" at its end without closing the
                    # response, and the connection would refuse the next request.
                    r.close()
                    break
                res.raw += piece
                res.data, _ = parse_sse(res.raw)
                res.done = "[DONE]" in res.data
                if on_event:
                    on_event(res)
                if max_events is not None and len(res.data) >= max_events:
                    self.conn.close()
                    break
        except (http.client.IncompleteRead, OSError, http.client.HTTPException) as e:
            res.error = "%s: %s" % (type(e).__name__, e)
            self.conn.close()
        return res


def request(base_url, method, path, body=None, headers=None, timeout=30):
    """One request on a fresh connection: (status, headers, body bytes)."""
    c = Client(base_url, timeout)
    try:
        return c.request(method, path, body, headers)
    finally:
        c.close()


def sse(base_url, method, path, body=None, headers=None, timeout=30, **kw):
    c = Client(base_url, timeout)
    try:
        return c.sse(method, path, body, headers, **kw)
    finally:
        c.close()


# -- runner -------------------------------------------------------------------


class TestTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise TestTimeout()


def _cleanup():
    """Tear down everything registered, newest first. Returns problems found
    (a gateway the test left running that then did not exit 0)."""
    problems = []
    gateways = []
    while _resources:
        kind, obj = _resources.pop()
        try:
            if kind == "gateway":
                was_running = obj.alive()
                code = obj.stop()
                gateways.append(obj)
                if was_running and code != 0:
                    problems.append("gateway exited %r at stop (sanitizer report or leak?)" % code)
                if obj._note:
                    problems.append("gateway " + obj._note)
            elif kind == "fake":
                obj.stop()
            elif kind == "proc":
                if obj.poll() is None:
                    obj.kill()
                obj.wait()
            elif kind == "client":
                obj.close()
            elif kind == "dir":
                if os.environ.get("CG_E2E_KEEP"):
                    print("# kept %s" % obj)
                else:
                    shutil.rmtree(obj, ignore_errors=True)
        except Exception as e:  # keep cleaning
            problems.append("cleanup of %s: %s" % (kind, e))
    return problems, gateways


def _tail(text, n=40):
    lines = text.rstrip("\n").split("\n")
    return lines[-n:] if text else []


# Ad-hoc use (python3 -c, a REPL) cleans up at exit as the runner does.
atexit.register(lambda: _cleanup())


def start_fake(models=("m1",), **kw):
    """A FakeUpstream started and registered for teardown."""
    return register("fake", FakeUpstream(models=models, **kw).start())


def setup(fake_models=("m1", "m2"), models=None, clawgate=None, extra_providers=None,
          alias="Fast"):
    """A started fake upstream and a gateway in front of it (provider `fake`,
    primary fake/<first model>, alias `alias`). fake_models: list of ids or
    dict id -> behaviour; models: the ids configured in the gateway (default:
    the fake's)."""
    fake = start_fake(models=fake_models)
    ids = list(models or (fake_models if not isinstance(fake_models, dict) else fake_models.keys()))
    gw = Gateway(fake_config(fake, ids, alias=alias, clawgate=clawgate,
                             extra_providers=extra_providers))
    return fake, gw


def strip(body, keys=("model", "stream_options")):
    """A request body without the fields the gateway may change."""
    return {k: v for k, v in body.items() if k not in keys}


def check_error(resp, status, code=None, etype=None):
    """An OpenAI-shaped error with x-request-id; status an int or a container
    of allowed ints. Returns the error object."""
    st, h, body = resp
    allowed = status if isinstance(status, (tuple, list, range, set)) else (status,)
    check(st in allowed, "status %r, want %r; body %r" % (st, status, body[:300]))
    check(h.get("x-request-id"), "x-request-id missing on %d" % st)
    ct = h.get("content-type") or ""
    check(ct.startswith("application/json"), "error content-type %r" % ct)
    j = json_body(body)
    check(isinstance(j, dict) and isinstance(j.get("error"), dict), "not an OpenAI error: %r" % j)
    e = j["error"]
    check(isinstance(e.get("message"), str) and e["message"], "error.message: %r" % e)
    check(isinstance(e.get("type"), str) and e["type"], "error.type: %r" % e)
    check("code" in e and (e["code"] is None or isinstance(e["code"], str)), "error.code: %r" % e)
    if code is not None:
        eq(e["code"], code, "error.code")
    if etype is not None:
        eq(e["type"], etype, "error.type")
    return e


def run(tests, argv=None):
    """Run test functions (or (name, fn) pairs); filter by substrings in argv."""
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGTERM, lambda *_: (_cleanup(), sys.exit(1)))
    failed = 0
    for t in tests:
        name, fn = t if isinstance(t, tuple) else (t.__name__, t)
        if argv and not any(a in name for a in argv):
            continue
        reason, detail = None, []
        all_gateways = []
        signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)
        try:
            fn()
        except TestTimeout:
            reason = "timed out after %.0f s" % TEST_TIMEOUT
        except TestFailure as e:
            reason = str(e)
            detail = traceback.format_exc().strip().split("\n")[-4:-1]
        except Exception as e:
            reason = "%s: %s" % (type(e).__name__, e)
            detail = traceback.format_exc().strip().split("\n")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        # A test must not be able to escape teardown with a late alarm.
        problems, all_gateways = _cleanup()
        if reason is None and problems:
            reason = "; ".join(problems)
        if reason is None:
            print("ok - %s" % name, flush=True)
            continue
        failed += 1
        print("not ok - %s: %s" % (name, reason.replace("\n", " ")[:2000]), flush=True)
        for ln in detail:
            print("# " + ln)
        for g in all_gateways:
            print("# --- gateway log (%s), last lines:" % g.log_path)
            for ln in _tail(g.log()):
                print("#   " + ln)
        sys.stdout.flush()
    return 1 if failed else 0


def main(tests):
    sys.exit(run(tests))
