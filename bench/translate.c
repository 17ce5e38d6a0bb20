/*
 * translate.c — what translation costs per request and per streamed chunk.
 *
 * Request side, on the 36 KB OpenClaw body (bench/bodies/openclaw-stream.json):
 * the floor (jscan validation alone), the hot path chat -> openai-completions
 * with nothing to shape (tree-less edit of `model`), the same with compat
 * shaping that needs the messages tree (a developer role), and the cross-API
 * translations that parse the whole body with json-c.
 *
 * Reply side, per upstream SSE event: chat -> chat pass-through (the byte
 * checks), chat -> chat with an inline <think> chunk (parsed and re-encoded),
 * chat -> Responses, Anthropic -> chat, and whole non-stream replies.
 *
 * Prints median and mean per operation. Figures are noisy on a shared
 * machine; run it alone for numbers to quote.
 */
#include "proto/jscan.h"
#include "proto/translate.h"

#include <stdio.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    cg_buf_t b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        cg_buf_append(&b, tmp, n);
    fclose(f);
    return cg_buf_steal(&b, len);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, size_t n, size_t bytes)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += ns[i];
    qsort(ns, n, sizeof *ns, cmp_u64);
    double med = (double)ns[n / 2], mean = (double)sum / (double)n;
    printf("%-52s p50 %9.2f us  mean %9.2f us  p99 %9.2f us", what, med / 1e3, mean / 1e3,
           (double)ns[n * 99 / 100] / 1e3);
    if (bytes)
        printf("  (%.0f MB/s at p50)", (double)bytes / (med / 1e9) / 1e6);
    printf("\n");
}

static cg_provider_t prov = {.name = "local", .api_key = "sk-bench"};

static cg_model_t model(cg_api_t api, bool developer_role)
{
    cg_model_t m = {0};
    m.provider = &prov;
    m.id = "qwen3-32b";
    m.ref = "local/qwen3-32b";
    m.api = api;
    m.max_tokens = 8192;
    m.compat = (cg_compat_t){
        .supports_developer_role = developer_role,
        .supports_reasoning_effort = true,
        .supports_usage_in_streaming = true,
        .supports_tools = true,
    };
    return m;
}

#define REQ_N 400

static void bench_request(const char *what, cg_xapi_t client, const cg_model_t *m, const char *body,
                          size_t len)
{
    uint64_t ns[REQ_N];
    cg_buf_t out = {0};
    char err[256];
    cg_xlate_opts_t o = {.stream = true};
    for (int i = 0; i < REQ_N; i++) {
        cg_buf_reset(&out);
        uint64_t t0 = cg_now_ns();
        int rc = cg_xlate_request(client, m, body, len, &o, &out, err, sizeof err);
        ns[i] = cg_now_ns() - t0;
        if (rc != 0) {
            printf("%s: %s\n", what, err);
            exit(1);
        }
    }
    report(what, ns, REQ_N, len);
    cg_buf_free(&out);
}

static void bench_jscan(const char *body, size_t len)
{
    uint64_t ns[REQ_N];
    for (int i = 0; i < REQ_N; i++) {
        cg_jscan_t js;
        cg_jerr_t je;
        uint64_t t0 = cg_now_ns();
        int rc = cg_jscan_object(&js, body, len, 128, &je);
        ns[i] = cg_now_ns() - t0;
        if (rc != 0)
            exit(1);
    }
    report("request floor: jscan validate 36 KB", ns, REQ_N, len);
}

/* ---- replies ---- */

static size_t emitted;
static void count_emit(void *ud, const char *event, const char *data, size_t len)
{
    CG_UNUSED(ud);
    CG_UNUSED(event);
    CG_UNUSED(data);
    emitted += len;
}

#define EV_N 20000

static void bench_events(const char *what, cg_xapi_t client, cg_api_t api, const char *event,
                         const char *data)
{
    static uint64_t ns[EV_N];
    cg_xlate_opts_t o = {.client_usage = true};
    cg_xlate_stream_t *xs = cg_xlate_stream_new(client, api, "local/qwen3-32b", &o);
    size_t len = strlen(data);
    for (int i = 0; i < EV_N; i++) {
        uint64_t t0 = cg_now_ns();
        int rc = cg_xlate_stream_feed(xs, event, data, len, count_emit, NULL);
        ns[i] = cg_now_ns() - t0;
        if (rc < 0) {
            printf("%s: %s\n", what, cg_xlate_stream_error(xs));
            exit(1);
        }
    }
    size_t passed = 0, encoded = 0;
    cg_xlate_stream_counts(xs, &passed, &encoded);
    char label[128];
    snprintf(label, sizeof label, "%s [%s]", what, passed ? "passed" : "re-encoded");
    report(label, ns, EV_N, 0);
    cg_xlate_stream_free(xs);
}

static void bench_body(const char *what, cg_xapi_t client, cg_api_t api, const char *body)
{
    uint64_t ns[REQ_N];
    cg_buf_t out = {0};
    char err[256];
    for (int i = 0; i < REQ_N; i++) {
        cg_buf_reset(&out);
        uint64_t t0 = cg_now_ns();
        int rc = cg_xlate_response(client, api, "local/m", body, strlen(body), NULL, &out, NULL,
                                   err, sizeof err);
        ns[i] = cg_now_ns() - t0;
        if (rc != 0) {
            printf("%s: %s\n", what, err);
            exit(1);
        }
    }
    report(what, ns, REQ_N, 0);
    cg_buf_free(&out);
}

#define CHUNK(delta)                                                                               \
    "{\"id\":\"chatcmpl-8f2a\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"       \
    "\"model\":\"qwen3-32b\",\"system_fingerprint\":null,\"choices\":[{\"index\":0,"               \
    "\"delta\":" delta ",\"logprobs\":null,\"finish_reason\":null}]}"

int main(void)
{
    size_t len = 0;
    char *body = slurp("bench/bodies/openclaw-stream.json", &len);
    if (!body) {
        fprintf(stderr, "run from the repository root (bench/bodies/openclaw-stream.json)\n");
        return 1;
    }
    printf("translation, %zu-byte OpenClaw request; figures under load on a shared machine\n", len);
    cg_model_t chat = model(CG_API_OPENAI_COMPLETIONS, true);
    cg_model_t chat_nodev = model(CG_API_OPENAI_COMPLETIONS, false);
    cg_model_t resp = model(CG_API_OPENAI_RESPONSES, true);
    cg_model_t anth = model(CG_API_ANTHROPIC_MESSAGES, true);
    bench_jscan(body, len);
    bench_request("request chat -> openai-completions (hot path)", CG_XAPI_CHAT, &chat, body, len);

    /* The same body with a developer message, to a server without the role. */
    const char *sys = strstr(body, "\"role\":\"system\"");
    cg_buf_t dev = {0};
    if (sys) {
        cg_buf_append(&dev, body, (size_t)(sys - body));
        cg_buf_puts(&dev, "\"role\":\"developer\"");
        cg_buf_puts(&dev, sys + strlen("\"role\":\"system\""));
        bench_request("request chat -> completions, developer->system", CG_XAPI_CHAT, &chat_nodev,
                      dev.data, dev.len);
    }
    bench_request("request chat -> openai-responses", CG_XAPI_CHAT, &resp, body, len);
    bench_request("request chat -> anthropic-messages", CG_XAPI_CHAT, &anth, body, len);

    /* Reply side. */
    const char *plain = CHUNK("{\"content\":\" the\"}");
    const char *think = CHUNK("{\"content\":\"<think>x</think>y\"}");
    const char *reason = CHUNK("{\"reasoning\":\" hmm\"}");
    bench_events("chunk chat -> chat, plain text", CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "",
                 plain);
    bench_events("chunk chat -> chat, inline <think>", CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "",
                 think);
    bench_events("chunk chat -> chat, `reasoning` renamed", CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS,
                 "", reason);
    bench_events("chunk chat -> responses", CG_XAPI_RESPONSES, CG_API_OPENAI_COMPLETIONS, "",
                 plain);
    bench_events("event anthropic -> chat", CG_XAPI_CHAT, CG_API_ANTHROPIC_MESSAGES,
                 "content_block_delta",
                 "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                 "\"text_delta\",\"text\":\" the\"}}");
    bench_events("event openai-responses -> chat", CG_XAPI_CHAT, CG_API_OPENAI_RESPONSES,
                 "response.output_text.delta",
                 "{\"type\":\"response.output_text.delta\",\"sequence_number\":5,\"item_id\":"
                 "\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\" the\"}");

    const char *cbody =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":"
        "\"qwen3-32b\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
        "\"Hi there, how can I help you today?\"},\"finish_reason\":\"stop\"}],\"usage\":"
        "{\"prompt_tokens\":9000,\"completion_tokens\":10,\"total_tokens\":9010}}";
    bench_body("body chat -> chat (pass-through)", CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, cbody);
    bench_body("body chat -> responses", CG_XAPI_RESPONSES, CG_API_OPENAI_COMPLETIONS, cbody);
    printf("(%zu bytes emitted)\n", emitted);
    cg_buf_free(&dev);
    cg_free(body);
    return 0;
}
