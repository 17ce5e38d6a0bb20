/*
 * test_translate_live.c — the whole translation matrix over real HTTP: the
 * fake upstream (tests/e2e/fake_upstream.py) speaking openai-completions,
 * openai-responses and anthropic-messages on 127.0.0.1, requests made with
 * cg_xlate_request / cg_xlate_headers / cg_xlate_path and sent with
 * libcurl, replies parsed with proto/sse.h and translated back, for chat
 * completions and Responses clients, streamed and not: text, reasoning,
 * usage, a tool call with its tool-result round trip, inline <think> split
 * across chunks, tool calls as text, an error event mid-stream, and a
 * failover from one API kind to another. The client-side output is then
 * replayed into the official `openai` npm client (tests/e2e/node), which
 * must accept it (its Responses stream accumulator is strict).
 *
 * This is what the provider actor and the HTTP front will do, minus the
 * actors; the gateway-level end-to-end tests come with the wiring.
 */
#include "proto/sse.h"
#include "tests/proto/xlate_check.h"

#include <curl/curl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t fake_pid = -1;
static char base_url[64];
static char tmpdir[64];
static cg_buf_t manifest; /* JSON array for the SDK replay */
static int replays;

/* ------------------------------------------------------------------------ */
/* the fake upstream                                                        */

static int fake_start(void)
{
    int fd[2];
    if (pipe(fd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execlp("python3", "python3", "tests/e2e/fake_upstream.py", "--port", "0", "--control",
               "--models", "m1", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    fake_pid = pid;
    char line[32] = {0};
    size_t n = 0;
    while (n < sizeof line - 1) {
        ssize_t r = read(fd[0], line + n, 1);
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    close(fd[0]);
    int port = atoi(line);
    if (port <= 0)
        return -1;
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", port);
    return 0;
}

static void fake_stop(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
        fake_pid = -1;
    }
}

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    cg_buf_append(ud, p, sz * n);
    return sz * n;
}

/* POST a behaviour list to the fake's control API. */
static void script(const char *json)
{
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/_control/script", base_url);
    cg_buf_t out = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(c);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    cg_buf_free(&out);
    T_ASSERTF(rc == CURLE_OK && st == 200, "script %s: curl %d status %ld", json, rc, st);
}

/* ------------------------------------------------------------------------ */
/* one attempt: translate, send, translate back                             */

typedef struct attempt {
    cg_xlate_stream_t *xs;
    cap_t *cap;
    cg_sse_t sse;
    bool stream;
    cg_buf_t body; /* non-stream reply, or the error body */
    long status;
    int rc; /* last feed result */
    bool ended;
} attempt_t;

static int on_sse(void *ud, const char *event, size_t elen, const char *data, size_t dlen)
{
    attempt_t *a = ud;
    if (a->ended || a->rc < 0)
        return 0;
    char ev[96];
    snprintf(ev, sizeof ev, "%.*s", (int)(elen < sizeof ev - 1 ? elen : sizeof ev - 1), event);
    a->rc = cg_xlate_stream_feed(a->xs, ev, data, dlen, cap_emit, a->cap);
    if (a->rc == CG_XLATE_END) {
        cg_xlate_stream_finish(a->xs, cap_emit, a->cap);
        a->ended = true;
    }
    return 0;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    attempt_t *a = ud;
    if (a->stream && a->status == 200)
        cg_sse_feed(&a->sse, p, sz * n, on_sse, a);
    else
        cg_buf_append(&a->body, p, sz * n);
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    attempt_t *a = ud;
    int st;
    if (sz * n > 12 && memcmp(p, "HTTP/", 5) == 0 && sscanf(p, "HTTP/%*s %d", &st) == 1)
        a->status = st;
    return sz * n;
}

static void add_header(void *ud, const char *name, const char *value)
{
    struct curl_slist **h = ud;
    char line[512];
    snprintf(line, sizeof line, "%s: %s", name, value);
    *h = curl_slist_append(*h, line);
}

typedef struct result {
    long status;
    int rc;
    cap_t cap;       /* streamed client events */
    cg_buf_t object; /* non-stream client object */
    cg_xlate_usage_t usage;
    char err[256];
} result_t;

static void result_free(result_t *r)
{
    cap_free(&r->cap);
    cg_buf_free(&r->object);
}

/* One attempt of a client request on a provider (the xs is the caller's
 * when given, so a failover test can look at it afterwards). */
static void attempt(cg_xapi_t client, const cg_model_t *m, const char *body, bool stream,
                    const cg_xlate_opts_t *opts, result_t *r)
{
    cg_xlate_opts_t o = *opts;
    o.stream = stream;
    cg_buf_t up = {0};
    char err[256];
    int rc = cg_xlate_request(client, m, body, strlen(body), &o, &up, err, sizeof err);
    T_ASSERTF(rc == 0, "request %s -> %s: %s", cg_xapi_name(client), cg_api_name(m->api), err);
    char url[160];
    snprintf(url, sizeof url, "%s%s", m->provider->base_url, cg_xlate_path(m->api));
    struct curl_slist *h = NULL;
    cg_xlate_headers(m, stream, add_header, &h);

    attempt_t a = {.cap = &r->cap, .stream = stream};
    cg_sse_init(&a.sse, 1 << 20);
    if (stream)
        a.xs = cg_xlate_stream_new(client, m->api, m->ref, &o);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, up.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)up.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    CURLcode cc = curl_easy_perform(c);
    T_ASSERTF(cc == CURLE_OK, "curl: %s", curl_easy_strerror(cc));
    r->status = a.status;
    r->rc = 0;
    if (a.status == 200 && stream) {
        r->rc = a.rc;
        if (a.rc < 0)
            snprintf(r->err, sizeof r->err, "%s", cg_xlate_stream_error(a.xs));
        else
            T_ASSERTF(a.ended, "the upstream stream ended without its end marker");
        r->usage = *cg_xlate_stream_usage(a.xs);
        if (a.rc < 0 && cg_xlate_stream_started(a.xs))
            cg_xlate_stream_fail(a.xs, "unknown", r->err, cap_emit, &r->cap);
    } else if (a.status == 200) {
        r->rc = cg_xlate_response(client, m->api, m->ref, a.body.data, a.body.len, &o, &r->object,
                                  &r->usage, r->err, sizeof r->err);
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    cg_sse_free(&a.sse);
    cg_xlate_stream_free(a.xs);
    cg_buf_free(&a.body);
    cg_buf_free(&up);
}

static void result_summary(cg_xapi_t client, bool stream, result_t *r, summary_t *s)
{
    if (stream) {
        summarize(client, &r->cap, s);
    } else {
        cg_buf_append(&r->object, "", 1);
        r->object.len--;
        sum_object(client, r->object.data, s);
    }
}

/* Keep the client-side output for the SDK replay. */
static void keep_for_sdk(const char *name, cg_xapi_t client, bool stream, const result_t *r,
                         const char *want_text, const char *want_calls)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%d-%s", tmpdir, replays, name);
    FILE *f = fopen(path, "w");
    T_ASSERT(f != NULL);
    if (stream) {
        for (size_t i = 0; i < r->cap.n; i++) {
            if (r->cap.names[i])
                fprintf(f, "event: %s\n", r->cap.names[i]);
            fprintf(f, "data: %s\n\n", r->cap.data[i]);
        }
        if (client == CG_XAPI_CHAT)
            fputs("data: [DONE]\n\n", f); /* the front writes it */
    } else {
        fwrite(r->object.data, 1, r->object.len, f);
    }
    fclose(f);
    cg_buf_puts(&manifest, replays++ ? "," : "[");
    cg_buf_printf(&manifest,
                  "{\"name\":\"%s\",\"file\":\"%s\",\"client\":\"%s\",\"stream\":%s,"
                  "\"text\":",
                  name, path, client == CG_XAPI_CHAT ? "chat" : "responses",
                  stream ? "true" : "false");
    cg_json_quote(&manifest, want_text, strlen(want_text));
    cg_buf_puts(&manifest, ",\"calls\":");
    cg_json_quote(&manifest, want_calls, strlen(want_calls));
    cg_buf_puts(&manifest, "}");
}

/* ------------------------------------------------------------------------ */
/* the matrix                                                               */

static cg_provider_t prov = {.name = "fake", .api_key = "sk-test"};
static const char *const path_of[] = {"/v1/chat/completions", "/v1/responses", "/v1/messages"};

static cg_model_t fake_model(cg_api_t api)
{
    cg_model_t m = {0};
    m.provider = &prov;
    m.id = "m1";
    m.ref = "fake/m1";
    m.api = api;
    m.max_tokens = 1024;
    m.reasoning = true;
    m.compat = (cg_compat_t){.supports_usage_in_streaming = true,
                             .supports_tools = true,
                             .supports_reasoning_effort = true};
    return m;
}

static const char *hello_body(cg_xapi_t client)
{
    return client == CG_XAPI_CHAT
               ? "{\"model\":\"fake/m1\",\"messages\":[{\"role\":\"user\",\"content\":"
                 "\"hello there\"}],\"stream_options\":{\"include_usage\":true}}"
               : "{\"model\":\"fake/m1\",\"input\":\"hello there\"}";
}

/* Run one case for every provider API x client API x stream mode. */
typedef void (*case_fn)(int api, int client, int stream, const cg_model_t *m, const char *name);

static void matrix(case_fn fn)
{
    for (int api = 0; api < 3; api++) {
        for (int client = 0; client < 2; client++) {
            for (int stream = 0; stream < 2; stream++) {
                cg_model_t m = fake_model(api);
                char name[96];
                snprintf(name, sizeof name, "%s-%s-%s", cg_api_name(api),
                         client ? "responses" : "chat", stream ? "stream" : "plain");
                fn(api, client, stream, &m, name);
            }
        }
    }
}

static void case_text_reasoning_usage(int api, int client, int stream, const cg_model_t *m,
                                      const char *name)
{
    char beh[160];
    snprintf(beh, sizeof beh, "[{\"path\":\"%s\",\"reasoning\":\"think hard\"}]", path_of[api]);
    script(beh);
    cg_xlate_opts_t o = {.client_usage = true, .response_id = "resp_live"};
    result_t r = {0};
    attempt(client, m, hello_body(client), stream, &o, &r);
    T_ASSERTF(r.status == 200 && r.rc >= 0, "%s: status %ld rc %d %s", name, r.status, r.rc, r.err);
    summary_t s;
    result_summary(client, stream, &r, &s);
    T_ASSERTF(strcmp(bstr(&s.text), "echo: hello there") == 0, "%s: text \"%s\"", name,
              s.text.data);
    T_ASSERTF(strcmp(bstr(&s.reasoning), "think hard") == 0, "%s: reasoning \"%s\"", name,
              s.reasoning.data);
    T_EQ_INT(s.calls, 0);
    T_ASSERTF(s.usage && s.out == 5 && s.in > 0, "%s: usage %lld/%lld", name, (long long)s.in,
              (long long)s.out);
    T_ASSERT(r.usage.have && r.usage.output == 5);
    T_EQ_STR(s.finish, client == CG_XAPI_CHAT ? "stop" : "completed");
    keep_for_sdk(name, client, stream, &r, "echo: hello there", "");
    sum_free(&s);
    result_free(&r);
}

static void test_text_reasoning_usage(void)
{
    matrix(case_text_reasoning_usage);
}

static void case_tool_round_trip(int api, int client, int stream, const cg_model_t *m,
                                 const char *name)
{
    char beh[160];
    snprintf(beh, sizeof beh, "[{\"path\":\"%s\",\"tool_calls\":\"auto\"},{\"path\":\"%s\"}]",
             path_of[api], path_of[api]);
    script(beh);
    const char *ask =
        client == CG_XAPI_CHAT
            ? "{\"model\":\"fake/m1\",\"messages\":[{\"role\":\"user\",\"content\":\"time?\"}],"
              "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_time\","
              "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]}"
            : "{\"model\":\"fake/m1\",\"input\":[{\"role\":\"user\",\"content\":\"time?\"}],"
              "\"tools\":[{\"type\":\"function\",\"name\":\"get_time\",\"parameters\":"
              "{\"type\":\"object\",\"properties\":{}}}]}";
    cg_xlate_opts_t o = {.response_id = "resp_tool"};
    result_t r = {0};
    attempt(client, m, ask, stream, &o, &r);
    T_ASSERTF(r.status == 200 && r.rc >= 0, "%s: status %ld %s", name, r.status, r.err);
    summary_t s;
    result_summary(client, stream, &r, &s);
    T_ASSERTF(s.calls == 1 && strcmp(s.names[0], "get_time") == 0, "%s: calls %d", name, s.calls);
    T_EQ_STR(bstr(&s.args[0]), "{}");
    T_EQ_STR(s.finish, client == CG_XAPI_CHAT ? "tool_calls" : "completed");
    keep_for_sdk(name, client, stream, &r, "", "get_time");
    /* the client sends the result back in its own API */
    cg_buf_t back = {0};
    if (client == CG_XAPI_CHAT)
        cg_buf_printf(&back,
                      "{\"model\":\"fake/m1\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"time?\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
                      "[{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":"
                      "\"get_time\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\","
                      "\"tool_call_id\":\"%s\",\"content\":\"12:00\"}]}",
                      s.ids[0], s.ids[0]);
    else
        cg_buf_printf(&back,
                      "{\"model\":\"fake/m1\",\"input\":[{\"role\":\"user\",\"content\":"
                      "\"time?\"},{\"type\":\"function_call\",\"call_id\":\"%s\",\"name\":"
                      "\"get_time\",\"arguments\":\"{}\"},{\"type\":\"function_call_output\","
                      "\"call_id\":\"%s\",\"output\":\"12:00\"}]}",
                      s.ids[0], s.ids[0]);
    result_t r2 = {0};
    attempt(client, m, back.data, stream, &o, &r2);
    summary_t s2;
    result_summary(client, stream, &r2, &s2);
    T_ASSERTF(strcmp(bstr(&s2.text), "tool result: 12:00") == 0, "%s: answer \"%s\"", name,
              s2.text.data);
    cg_buf_free(&back);
    sum_free(&s);
    sum_free(&s2);
    result_free(&r);
    result_free(&r2);
}

static void test_tool_round_trip(void)
{
    matrix(case_tool_round_trip);
}

static void case_inline_think_and_text_tool_calls(int api, int client, int stream,
                                                  const cg_model_t *m, const char *name)
{
    char beh[400];
    snprintf(beh, sizeof beh,
             "[{\"path\":\"%s\",\"tokens\":[\"<th\",\"ink>inn\",\"er</thi\",\"nk>\\n\\nAns\","
             "\"wer `<think>`\"]},{\"path\":\"%s\",\"tokens\":[\"Sure.<tool_\",\"call>"
             "{\\\"name\\\": \\\"get_time\\\", \",\"\\\"arguments\\\": {\\\"tz\\\": 1}}"
             "</tool_call>\"]}]",
             path_of[api], path_of[api]);
    script(beh);
    cg_xlate_opts_t o = {.tool_calls_as_text = true};
    result_t r = {0};
    attempt(client, m, hello_body(client), stream, &o, &r);
    summary_t s;
    result_summary(client, stream, &r, &s);
    T_ASSERTF(strcmp(bstr(&s.text), "Answer `<think>`") == 0 &&
                  strcmp(bstr(&s.reasoning), "inner") == 0,
              "%s: text \"%s\" reasoning \"%s\"", name, s.text.data, s.reasoning.data);
    sum_free(&s);
    result_free(&r);
    memset(&r, 0, sizeof r);
    attempt(client, m, hello_body(client), stream, &o, &r);
    result_summary(client, stream, &r, &s);
    T_EQ_STR(bstr(&s.text), "Sure.");
    T_ASSERTF(s.calls == 1 && strcmp(s.names[0], "get_time") == 0, "%s: calls %d", name, s.calls);
    T_EQ_STR(bstr(&s.args[0]), "{\"tz\":1}");
    T_EQ_STR(s.finish, client == CG_XAPI_CHAT ? "tool_calls" : "completed");
    sum_free(&s);
    result_free(&r);
}

static void test_inline_think_and_text_tool_calls(void)
{
    matrix(case_inline_think_and_text_tool_calls);
}

static void test_error_mid_stream(void)
{
    for (int api = 0; api < 3; api++) {
        for (int client = 0; client < 2; client++) {
            char beh[160];
            snprintf(beh, sizeof beh,
                     "[{\"path\":\"%s\",\"text\":\"one two three four five six\","
                     "\"error_after\":5}]",
                     path_of[api]);
            script(beh);
            cg_model_t m = fake_model(api);
            cg_xlate_opts_t o = {0};
            result_t r = {0};
            attempt(client, &m, hello_body(client), true, &o, &r);
            T_ASSERTF(r.rc == CG_ERR, "%s -> %d: rc %d", cg_api_name(api), client, r.rc);
            T_ASSERT(r.err[0] != '\0');
            summary_t s;
            summarize(client, &r.cap, &s);
            T_ASSERTF(s.error[0] != '\0', "%s -> %d: no client error event", cg_api_name(api),
                      client);
            T_ASSERT(strncmp(s.error, "unknown:", 8) == 0);
            sum_free(&s);
            result_free(&r);
        }
    }
}

/* An Anthropic provider overloaded before any output, then a Responses
 * provider: the client sees one clean answer. */
static void test_failover_across_api_kinds(void)
{
    for (int client = 0; client < 2; client++) {
        script("[{\"path\":\"/v1/messages\",\"status\":529},"
               "{\"path\":\"/v1/responses\",\"text\":\"from the fallback\"}]");
        cg_xlate_opts_t o = {.response_id = "resp_fo", .client_usage = true};
        cg_model_t first = fake_model(CG_API_ANTHROPIC_MESSAGES);
        result_t r = {0};
        attempt(client, &first, hello_body(client), true, &o, &r);
        T_EQ_INT(r.status, 529);
        T_EQ_INT(r.cap.n, 0); /* nothing reached the client */
        result_free(&r);
        memset(&r, 0, sizeof r);
        cg_model_t second = fake_model(CG_API_OPENAI_RESPONSES);
        attempt(client, &second, hello_body(client), true, &o, &r);
        summary_t s;
        summarize(client, &r.cap, &s);
        T_EQ_STR(bstr(&s.text), "from the fallback");
        if (client == CG_XAPI_RESPONSES) {
            json_object *j = parse(r.cap.data[0]);
            T_EQ_STR(gets(get(j, "response"), "id"), "resp_fo");
            json_object_put(j);
        }
        sum_free(&s);
        result_free(&r);
    }
}

/* The official client reads what clawgate would send. */
static void test_official_sdk_accepts_output(void)
{
    T_ASSERT(replays > 0);
    cg_buf_puts(&manifest, "]");
    char mpath[160];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", tmpdir);
    FILE *f = fopen(mpath, "w");
    T_ASSERT(f != NULL);
    fwrite(manifest.data, 1, manifest.len, f);
    fclose(f);
    static const char script_js[] =
        "import OpenAI from 'openai';\n"
        "import fs from 'node:fs';\n"
        "const out = [];\n"
        "for (const t of JSON.parse(fs.readFileSync(process.env.MANIFEST, 'utf8'))) {\n"
        "  const body = fs.readFileSync(t.file, 'utf8');\n"
        "  const c = new OpenAI({ baseURL: 'http://replay.invalid/v1', apiKey: 'k',\n"
        "    maxRetries: 0, fetch: async () => new Response(body, { status: 200, headers:\n"
        "    { 'content-type': t.stream ? 'text/event-stream' : 'application/json' } }) });\n"
        "  const r = { name: t.name, text: null, calls: null };\n"
        "  try {\n"
        "    if (t.client === 'responses') {\n"
        "      const f = t.stream\n"
        "        ? await c.responses.stream({ model: 'x', input: 'x' }).finalResponse()\n"
        "        : await c.responses.create({ model: 'x', input: 'x' });\n"
        "      r.text = f.output_text;\n"
        "      r.calls = f.output.filter((o) => o.type === 'function_call')\n"
        "        .map((o) => o.name).join(',');\n"
        "    } else {\n"
        "      const f = t.stream\n"
        "        ? await c.chat.completions.stream({ model: 'x', messages: [] })\n"
        "            .finalChatCompletion()\n"
        "        : await c.chat.completions.create({ model: 'x', messages: [] });\n"
        "      const m = f.choices[0].message;\n"
        "      r.text = m.content || '';\n"
        "      r.calls = (m.tool_calls || []).map((x) => x.function.name).join(',');\n"
        "    }\n"
        "  } catch (e) { r.error = String((e && e.message) || e); }\n"
        "  out.push(r);\n"
        "}\n"
        "console.log(JSON.stringify(out));\n";
    char jpath[160];
    snprintf(jpath, sizeof jpath, "%s/replay.mjs", tmpdir);
    f = fopen(jpath, "w");
    T_ASSERT(f != NULL);
    fputs(script_js, f);
    fclose(f);
    /* Run from tests/e2e/node so `openai` resolves from its node_modules. */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "cd tests/e2e/node && MANIFEST=%s timeout 60 node --input-type=module < %s 2>&1",
             mpath, jpath);
    FILE *p = popen(cmd, "r");
    T_ASSERT(p != NULL);
    cg_buf_t out = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        cg_buf_append(&out, buf, n);
    int st = pclose(p);
    cg_buf_append(&out, "", 1);
    T_ASSERTF(st == 0, "node failed (%d): %s", st, out.data);
    const char *line = strrchr(out.data, '[');
    while (line && line > out.data && line[-1] != '\n')
        line = memrchr(out.data, '[', (size_t)(line - out.data));
    json_object *res = json_tokener_parse(line ? line : out.data);
    json_object *want = json_tokener_parse(manifest.data);
    T_ASSERTF(res && json_object_is_type(res, json_type_array), "node printed: %s", out.data);
    T_EQ_INT(json_object_array_length(res), json_object_array_length(want));
    for (size_t i = 0; i < json_object_array_length(res); i++) {
        json_object *g = json_object_array_get_idx(res, i);
        json_object *w = json_object_array_get_idx(want, i);
        T_ASSERTF(!get(g, "error"), "%s: the SDK threw: %s", gets(g, "name"), gets(g, "error"));
        T_ASSERTF(gets(g, "text") && strcmp(gets(g, "text"), gets(w, "text")) == 0,
                  "%s: SDK text \"%s\"", gets(g, "name"), gets(g, "text"));
        T_ASSERTF(strcmp(gets(g, "calls"), gets(w, "calls")) == 0, "%s: SDK calls \"%s\"",
                  gets(g, "name"), gets(g, "calls"));
    }
    json_object_put(res);
    json_object_put(want);
    cg_buf_free(&out);
}

static void cleanup_tmp(void)
{
    char cmd[128];
    if (getenv("CG_XLATE_KEEP")) {
        fprintf(stderr, "kept %s\n", tmpdir);
        return;
    }
    if (tmpdir[0] && strncmp(tmpdir, "/tmp/cg-xlate-", 14) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cg-xlate-XXXXXX");
    if (!mkdtemp(tmpdir) || fake_start() < 0) {
        printf("not ok - start the fake upstream\n");
        fake_stop();
        return 1;
    }
    char pbase[96];
    snprintf(pbase, sizeof pbase, "%s/v1", base_url);
    prov.base_url = pbase;
    T_RUN(test_text_reasoning_usage);
    T_RUN(test_tool_round_trip);
    T_RUN(test_inline_think_and_text_tool_calls);
    T_RUN(test_error_mid_stream);
    T_RUN(test_failover_across_api_kinds);
    T_RUN(test_official_sdk_accepts_output);
    fake_stop();
    cleanup_tmp();
    cg_buf_free(&manifest);
    curl_global_cleanup();
    T_DONE();
}
