#!/usr/bin/env python3
"""Self-test of harness.py without the real gateway: the runner's reporting,
watchdog and teardown, Gateway start/stop/log on stand-in binaries (the
Python contract model ref_gateway.py, one that dies at start, one that
ignores SIGTERM), and the SSE parser."""

import os
import stat
import subprocess
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HERE, Gateway, TestFailure, check, eq, fake_config, main, start_fake  # noqa

REF = os.path.join(HERE, "ref_gateway.py")


def script(tmp, name, body):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def tmpdir():
    import tempfile

    return harness.register("dir", tempfile.mkdtemp(prefix="cg-e2e-h-"))


def test_runner_reports_and_cleans_up():
    tmp = tmpdir()
    pidfile = os.path.join(tmp, "fake.port")
    prog = script(tmp, "t.py", textwrap.dedent("""\
        import sys, time
        sys.path.insert(0, %r)
        from harness import check, main, start_fake

        def test_pass():
            check(True)

        def test_fail():
            check(1 == 2, "one is not two")

        def test_hang():
            f = start_fake()
            open(%r, "w").write(str(f.port))
            time.sleep(60)

        def test_crash():
            {}["missing"]

        main([test_pass, test_fail, test_hang, test_crash])
        """ % (HERE, pidfile)))
    env = dict(os.environ, CG_E2E_TEST_TIMEOUT="2")
    p = subprocess.run([sys.executable, prog], capture_output=True, text=True, timeout=30, env=env)
    lines = [ln for ln in p.stdout.split("\n") if ln.startswith(("ok - ", "not ok - "))]
    eq(lines, ["ok - test_pass", "not ok - test_fail: one is not two",
               "not ok - test_hang: timed out after 2 s", "not ok - test_crash: KeyError: 'missing'"],
       "result lines (stdout %r)" % p.stdout[-500:])
    eq(p.returncode, 1, "exit code")
    port = int(open(pidfile).read())
    try:
        harness.request("http://127.0.0.1:%d" % port, "GET", "/v1/models", timeout=2)
        check(False, "the hung test's fake still listens")
    except ConnectionRefusedError:
        pass


def stand_in(binary):
    old = os.environ.get("CLAWGATE_BIN")
    os.environ["CLAWGATE_BIN"] = binary
    return old


def restore(old):
    if old is None:
        os.environ.pop("CLAWGATE_BIN", None)
    else:
        os.environ["CLAWGATE_BIN"] = old


def test_gateway_start_stop_log():
    old = stand_in(REF)
    try:
        fake = start_fake()
        gw = Gateway(fake_config(fake, ["m1"]))
        st, h, body = gw.request("GET", "/healthz")
        eq(st, 200, "healthz")
        eq(gw.request("POST", "/v1/chat/completions",
                      {"model": "fake/m1", "messages": [{"role": "user", "content": "x"}]})[0],
           200, "chat through the model")
        check("/v1/chat/completions" in gw.log(), "stderr captured: %r" % gw.log()[-300:])
        eq(gw.stop(), 0, "exit code")
        check(not gw.alive(), "stopped")
        check(os.path.exists(gw.config_path), "config file written in the temp dir")
    finally:
        restore(old)


def test_gateway_dies_at_start():
    tmp = tmpdir()
    old = stand_in(script(tmp, "die.sh", "#!/bin/sh\necho 'bad config: boom' >&2\nexit 3\n"))
    try:
        fake = start_fake()
        try:
            Gateway(fake_config(fake, ["m1"]))
            check(False, "started")
        except TestFailure as e:
            check("exited 3" in str(e), "reason: %s" % e)
        gws = [o for k, o in harness._resources if k == "gateway"]
        check(gws and "bad config: boom" in gws[0].log(), "log kept for the report")
    finally:
        restore(old)


def test_gateway_ignoring_sigterm_is_killed():
    tmp = tmpdir()
    # The contract model with SIGTERM ignored stands in for a gateway that
    # hangs on shutdown.
    prog = script(tmp, "stubborn.py", textwrap.dedent("""\
        #!%s
        import runpy, signal, sys
        sys.argv = [%r] + sys.argv[1:]
        real = signal.signal
        signal.signal = lambda s, h: real(s, signal.SIG_IGN if s == signal.SIGTERM else h)
        runpy.run_path(%r, run_name="__main__")
        """ % (sys.executable, REF, REF)))
    old = stand_in(prog)
    try:
        fake = start_fake()
        gw = Gateway(fake_config(fake, ["m1"]))
        code = gw.stop(timeout=1)
        eq(code, -9, "SIGKILLed after the grace period")
        check(gw._note and "killed" in gw._note, "noted")
        gw._note = None  # expected here: keep the runner from failing the test
    finally:
        restore(old)


def test_sse_parser():
    events, rest = harness.parse_sse(b'data: {"a":1}\n\ndata: x\r\ndata: y\r\n\r\n: c\n\ndata: [DO')
    eq(events, ['{"a":1}', "x\ny"], "events")
    eq(rest, "data: [DO", "unfinished rest")


if __name__ == "__main__":
    main([test_runner_reports_and_cleans_up, test_gateway_start_stop_log,
          test_gateway_dies_at_start, test_gateway_ignoring_sigterm_is_killed, test_sse_parser])
