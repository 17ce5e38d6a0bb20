#!/usr/bin/env python3
"""End-to-end: the official `openai` npm client (tests/e2e/node/client.mjs)
against the gateway and the fake upstream. client.mjs prints one
"ok - ..." / "not ok - ..." line per case; they are relayed as they are, so
the runner counts each case."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HERE, check, eq, setup  # noqa: E402

NODE_DIR = os.path.join(HERE, "node")


def test_openai_client():
    check(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "openai")),
          "tests/e2e/node/node_modules/openai missing: run `make deps`")
    fake, gw = setup(fake_models={"m1": None, "m2": None, "tooly": {"tool_calls": "auto"}})
    env = dict(os.environ, OPENAI_BASE_URL=gw.url + "/v1", OPENAI_API_KEY="sk-client",
               OPENAI_LOG="off")
    p = harness.register("proc", subprocess.Popen(
        ["node", "client.mjs"], cwd=NODE_DIR, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True))
    cases = 0
    for line in p.stdout:
        line = line.rstrip("\n")
        if line.startswith("ok - ") or line.startswith("not ok - "):
            cases += 1
            print(line, flush=True)
        else:
            print("# " + line, flush=True)
    rc = p.wait(30)
    check(cases > 0, "client.mjs printed no results (exit %d)" % rc)
    # The cases already reported their own failures; this line is about the
    # run as a whole: node exited as its lines say, the gateway saw traffic,
    # and it exits 0 on SIGTERM.
    check(rc in (0, 1), "node exited %d" % rc)
    check(fake.chat_requests(), "requests reached the upstream")
    eq(gw.stop(), 0, "gateway exit code")


if __name__ == "__main__":
    harness.main([("openai-client: run, gateway exits 0", test_openai_client)])
