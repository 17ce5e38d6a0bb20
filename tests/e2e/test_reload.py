#!/usr/bin/env python3
"""End-to-end: SIGHUP reloads the config under load with no failed request;
an invalid file is skipped and the running config stays."""

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Gateway, check, eq, fake_config, main, start_fake  # noqa: E402

MSGS = [{"role": "user", "content": "hello"}]


def write_config(gw, cfg):
    cfg = json.loads(json.dumps(cfg))
    cg = cfg.setdefault("clawgate", {})
    cg["listen"] = gw.listen
    cg.setdefault("store", {})["path"] = gw.store
    tmp = gw.config_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    os.replace(tmp, gw.config_path)


def model_ids(gw):
    st, _, body = gw.request("GET", "/v1/models")
    eq(st, 200, "models status")
    return {m["id"] for m in json.loads(body)["data"]}


def wait_for(pred, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_reload_under_load_loses_nothing():
    fake_a = start_fake(models=["m1"])
    fake_b = start_fake(models=["b1"])
    base = fake_config(fake_a, ["m1"], alias="Fast")
    gw = Gateway(base)
    results = []
    stop = threading.Event()

    def load(stream):
        c = gw.client()
        n = 0
        while not stop.is_set() and n < 2000:
            body = {"model": "fast", "messages": MSGS, "stream": stream}
            if stream:
                r = gw.sse("POST", "/v1/chat/completions", body)
                results.append((r.status, r.done))
            else:
                st, _, _ = c.request("POST", "/v1/chat/completions", body)
                results.append((st, True))
            n += 1

    threads = [threading.Thread(target=load, args=(s,)) for s in (False, True, False)]
    for t in threads:
        t.start()
    # Reload five times while the load runs: add a provider and an alias, then
    # take them away again.
    with_b = json.loads(json.dumps(base))
    with_b["models"]["providers"]["extra"] = {
        "baseUrl": fake_b.base_url, "apiKey": "sk-b", "api": "openai-completions",
        "models": [{"id": "b1", "name": "B1"}]}
    with_b["agents"]["defaults"]["models"]["extra/b1"] = {"alias": "Bee"}
    for i in range(5):
        time.sleep(0.3)
        write_config(gw, with_b if i % 2 == 0 else base)
        os.kill(gw.pid, signal.SIGHUP)
        want = "extra/b1" if i % 2 == 0 else None
        if want:
            check(wait_for(lambda: want in model_ids(gw)), "reload %d: extra/b1 listed" % i)
        else:
            check(wait_for(lambda: "extra/b1" not in model_ids(gw)), "reload %d: extra gone" % i)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(30)
    check(len(results) > 20, "the load ran: %d requests" % len(results))
    bad = [r for r in results if r != (200, True)]
    eq(bad, [], "failed or cut requests during reloads (of %d)" % len(results))
    # The provider added by a reload answers.
    write_config(gw, with_b)
    os.kill(gw.pid, signal.SIGHUP)
    check(wait_for(lambda: "bee" in {m.lower() for m in model_ids(gw)}), "alias Bee after reload")
    st, h, _ = gw.request("POST", "/v1/chat/completions", {"model": "bee", "messages": MSGS})
    eq(st, 200, "request to the reloaded provider")
    eq(h.get("x-clawgate-model"), "extra/b1", "answered by the new provider")
    eq(gw.stop(), 0, "exit code")
    check("reload" in gw.log(), "the log mentions the reload")


def test_invalid_reload_keeps_running_config():
    fake = start_fake(models=["m1"])
    gw = Gateway(fake_config(fake, ["m1"], alias="Fast"))
    with open(gw.config_path, "w") as f:
        f.write("{ models: { providers: { broken: { baseUrl: 42 } } ")  # invalid JSON5
    os.kill(gw.pid, signal.SIGHUP)
    check(wait_for(lambda: "reload skipped" in gw.log()), "log says reload skipped")
    st, h, _ = gw.request("POST", "/v1/chat/completions", {"model": "fast", "messages": MSGS})
    eq(st, 200, "still serving with the old config")
    eq(h.get("x-clawgate-model"), "fake/m1", "old alias still works")
    check(gw.alive(), "still running")


if __name__ == "__main__":
    main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
