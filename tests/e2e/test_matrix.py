#!/usr/bin/env python3
"""End-to-end: the API matrix — {chat completions, responses} clients over
{openai-completions, openai-responses, anthropic-messages} providers, plain
and streamed, reasoning kept apart (and omitted on request), failover across
API kinds."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Gateway, check, eq, main, start_fake  # noqa: E402

APIS = ("openai-completions", "openai-responses", "anthropic-messages")


def matrix_gateway(fake, extra=None):
    providers = {}
    for api in APIS:
        name = api.split("-")[1][:4]  # comp, resp, mess
        providers[name] = {"baseUrl": fake.base_url, "apiKey": "sk-" + name, "api": api,
                           "models": [{"id": "m1", "name": "M1 " + api}]}
    providers.update(extra or {})
    return Gateway({"agents": {"defaults": {"model": {"primary": "comp/m1"}}},
                    "models": {"mode": "replace", "providers": providers},
                    "clawgate": {"health": {"intervalSeconds": -1}}})


def chat_text(body):
    return body["choices"][0]["message"]["content"]


def responses_text(body):
    out = []
    for item in body.get("output", []):
        if item.get("type") == "message":
            for part in item.get("content", []):
                if part.get("type") == "output_text":
                    out.append(part.get("text", ""))
    return "".join(out)


def test_matrix_plain_and_stream():
    fake = start_fake(models=["m1"])
    gw = matrix_gateway(fake)
    for prov in ("comp", "resp", "mess"):
        model = prov + "/m1"
        # chat client
        st, h, raw = gw.request("POST", "/v1/chat/completions",
                                {"model": model, "messages": [{"role": "user", "content": "hi"}],
                                 "max_tokens": 50})
        eq(st, 200, "%s chat status: %r" % (model, raw[:300]))
        eq(h.get("x-clawgate-model"), model, "answered by")
        check("hi" in chat_text(json.loads(raw)), "%s chat text: %r" % (model, raw[:300]))
        r = gw.sse("POST", "/v1/chat/completions",
                   {"model": model, "messages": [{"role": "user", "content": "hi"}],
                    "stream": True, "max_tokens": 50})
        eq(r.status, 200, "%s chat stream status" % model)
        check(r.done, "%s chat stream ends with [DONE]" % model)
        text = "".join((json.loads(d)["choices"] or [{}])[0].get("delta", {}).get("content") or ""
                       for d in r.data if d != "[DONE]")
        check("hi" in text, "%s streamed chat text: %r" % (model, text))
        # responses client
        st, h, raw = gw.request("POST", "/v1/responses",
                                {"model": model, "input": "hello", "max_output_tokens": 50})
        eq(st, 200, "%s responses status: %r" % (model, raw[:300]))
        body = json.loads(raw)
        eq(body.get("object"), "response", "%s response object" % model)
        check("hello" in responses_text(body), "%s responses text: %r" % (model, raw[:400]))
        r = gw.sse("POST", "/v1/responses", {"model": model, "input": "hello", "stream": True,
                                             "max_output_tokens": 50})
        eq(r.status, 200, "%s responses stream status" % model)
        types = [json.loads(d).get("type") for d in r.data]
        eq(types[0], "response.created", "%s first event" % model)
        eq(types[-1], "response.completed", "%s last event" % model)
        seqs = [json.loads(d).get("sequence_number") for d in r.data]
        eq(seqs, sorted(seqs), "%s sequence numbers in order" % model)
        check(b"[DONE]" not in r.raw, "%s: no [DONE] in a Responses stream" % model)
    # What each dialect received: the right path and auth headers.
    paths = {(e["path"], e["headers"].get("authorization") or e["headers"].get("x-api-key"))
             for e in fake.requests()}
    check(("/v1/chat/completions", "Bearer sk-comp") in paths, "completions auth: %r" % paths)
    check(("/v1/responses", "Bearer sk-resp") in paths, "responses auth: %r" % paths)
    check(("/v1/messages", "sk-mess") in paths, "anthropic x-api-key: %r" % paths)


def test_reasoning_kept_apart_and_omitted():
    fake = start_fake(models=["m1"])
    gw = matrix_gateway(fake)
    fake.script({"text": "<think>secret plan</think>the answer"})
    st, _, raw = gw.request("POST", "/v1/chat/completions",
                            {"model": "comp/m1", "messages": [{"role": "user", "content": "q"}]})
    eq(st, 200, "status")
    msg = json.loads(raw)["choices"][0]["message"]
    eq(msg.get("content"), "the answer", "final text only")
    eq(msg.get("reasoning_content"), "secret plan", "reasoning apart")
    fake.script({"text": "<think>secret plan</think>the answer"})
    st, _, raw = gw.request("POST", "/v1/chat/completions",
                            {"model": "comp/m1", "messages": [{"role": "user", "content": "q"}]},
                            {"x-clawgate-reasoning": "omit"})
    msg = json.loads(raw)["choices"][0]["message"]
    eq(msg.get("content"), "the answer", "final text only")
    check(not msg.get("reasoning_content"), "reasoning omitted: %r" % msg)
    check(b"secret" not in raw, "no trace of the reasoning")


def test_reasoning_omitted_by_model_config():
    fake = start_fake(models=["m1"])
    gw = Gateway({"agents": {"defaults": {"model": {"primary": "chan/m1"},
                                          "models": {"chan/m1": {"alias": "whatsapp"}}}},
                  "models": {"mode": "replace", "providers": {
                      "chan": {"baseUrl": fake.base_url, "apiKey": "k",
                               "api": "openai-completions", "models": [{"id": "m1", "name": "C"}]}}},
                  "clawgate": {"health": {"intervalSeconds": -1},
                               "reasoning": {"omit": ["whatsapp"]}}})
    for stream in (False, True):
        fake.script({"reasoning": "private chain", "text": "<think>more</think>public answer"})
        body = {"messages": [{"role": "user", "content": "q"}], "stream": stream}
        if stream:
            r = gw.sse("POST", "/v1/chat/completions", body)
            raw = r.raw
            text = "".join((json.loads(d)["choices"] or [{}])[0].get("delta", {}).get("content")
                           or "" for d in r.data if d != "[DONE]")
        else:
            st, _, raw = gw.request("POST", "/v1/chat/completions", body)
            eq(st, 200, "status")
            text = json.loads(raw)["choices"][0]["message"]["content"]
        eq(text.strip(), "public answer", "stream=%s: final text delivered" % stream)
        check(b"private" not in raw and b"more" not in raw,
              "stream=%s: no reasoning for a model configured final-text-only: %r"
              % (stream, raw[:600]))


def test_failover_crosses_api_kinds():
    fake = start_fake(models=["m1"])
    gw = Gateway({"agents": {"defaults": {"model": {"primary": "comp/m1",
                                                    "fallbacks": ["mess/m1"]}}},
                  "models": {"mode": "replace", "providers": {
                      "comp": {"baseUrl": "http://127.0.0.1:9/v1", "apiKey": "k",
                               "api": "openai-completions", "models": [{"id": "m1", "name": "A"}]},
                      "mess": {"baseUrl": fake.base_url, "apiKey": "k",
                               "api": "anthropic-messages", "models": [{"id": "m1", "name": "B"}]}}},
                  "clawgate": {"health": {"intervalSeconds": -1}}})
    r = gw.sse("POST", "/v1/chat/completions",
               {"messages": [{"role": "user", "content": "cross"}], "stream": True})
    eq(r.status, 200, "status")
    eq(r.headers.get("x-clawgate-model"), "mess/m1", "answered by the Anthropic fallback")
    check(r.headers.get("x-clawgate-attempts", "").startswith("comp/m1;timeout"), "attempts")
    check(r.done, "chat stream completed")


def test_previous_response_id_on_every_provider():
    fake = start_fake(models=["m1"])
    gw = matrix_gateway(fake)
    for prov in ("comp", "resp", "mess"):
        model = prov + "/m1"
        st, _, raw = gw.request("POST", "/v1/responses",
                                {"model": model, "input": "my name is Ada", "max_output_tokens": 50})
        eq(st, 200, "%s first turn: %r" % (model, raw[:300]))
        first = json.loads(raw)
        check(first["id"].startswith("resp_"), "response id %r" % first["id"])
        # the second turn streams and continues the first
        r = gw.sse("POST", "/v1/responses", {"model": model, "input": "what is my name?",
                                             "previous_response_id": first["id"],
                                             "stream": True, "max_output_tokens": 50})
        eq(r.status, 200, "%s second turn" % model)
        sent = fake.last()
        raw_sent = json.dumps(sent["json"])
        check("my name is Ada" in raw_sent, "%s: history sent upstream: %s" % (model, raw_sent))
        check("echo: my name is Ada" in raw_sent, "%s: the first answer too" % model)
        check("what is my name?" in raw_sent, "%s: the new input" % model)
        check("previous_response_id" not in raw_sent, "%s: the field is not forwarded" % model)
        done = [json.loads(d) for d in r.data if json.loads(d).get("type") == "response.completed"]
        check(done, "%s: completed" % model)
        # a third turn chains on the streamed second one
        third_id = done[0]["response"]["id"]
        st, _, raw = gw.request("POST", "/v1/responses", {"model": model, "input": "and again",
                                                          "previous_response_id": third_id})
        eq(st, 200, "%s third turn: %r" % (model, raw[:300]))
        raw_sent = json.dumps(fake.last()["json"])
        check("what is my name?" in raw_sent and "my name is Ada" in raw_sent,
              "%s: the whole chain: %s" % (model, raw_sent))
    st, _, raw = gw.request("POST", "/v1/responses", {"model": "comp/m1", "input": "x",
                                                      "previous_response_id": "resp_nope"})
    eq(st, 400, "unknown previous response")
    eq(json.loads(raw)["error"]["code"], "previous_response_not_found", "error code")


if __name__ == "__main__":
    main([v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)])
