/*
 * fuzz_translate.c — the translators on hostile input: upstream events,
 * whole upstream bodies and client request bodies.
 *
 * Input: byte 0 picks the client API (bit 0), the provider API (bits 1-2,
 * mod 3), the mode (bits 3-4: stream and finish, stream and fail, non-stream
 * body, request) and options (bit 5 omit reasoning, bit 6 tool calls as
 * text, bit 7 client usage); byte 1 is the model's compat flags (request
 * mode). The rest is the payload; in stream modes one event per line,
 * "name<TAB>data" or just data.
 *
 * Oracle: no crash or sanitizer report, and everything clawgate would send
 * is valid JSON (strict, UTF-8 checked): each client event, each non-stream
 * object, each upstream request body. Responses events must carry a name
 * and chat events none.
 */
#include "proto/jscan.h"
#include "proto/translate.h"

#include <stdint.h>

typedef struct ctx {
    cg_xapi_t client;
} ctx_t;

static void must_be_json(const char *s, size_t n)
{
    cg_jerr_t je;
    if (cg_jscan_validate(s, n, 256, &je) < 0)
        abort();
}

static void on_emit(void *ud, const char *event, const char *data, size_t len)
{
    ctx_t *c = ud;
    if ((c->client == CG_XAPI_RESPONSES) != (event != NULL))
        abort();
    must_be_json(data, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 << 16)
        return 0;
    cg_xapi_t client = data[0] & 1 ? CG_XAPI_RESPONSES : CG_XAPI_CHAT;
    cg_api_t api = (cg_api_t)(((data[0] >> 1) & 3) % 3);
    int mode = (data[0] >> 3) & 3;
    cg_xlate_opts_t o = {.omit_reasoning = data[0] & 0x20,
                         .tool_calls_as_text = data[0] & 0x40,
                         .client_usage = data[0] & 0x80,
                         .created = 1,
                         .response_id = "resp_fuzz"};
    const char *p = (const char *)data + 2;
    size_t len = size - 2;
    ctx_t c = {.client = client};

    if (mode == 3) {
        cg_provider_t pv = {.name = "f", .api_key = "k"};
        uint8_t f = data[1];
        cg_model_t m = {.provider = &pv, .id = "m", .ref = "f/m", .api = api, .max_tokens = 64};
        m.reasoning = f & 1;
        m.compat = (cg_compat_t){
            .supports_store = f & 2,
            .supports_developer_role = f & 4,
            .supports_reasoning_effort = f & 8,
            .supports_usage_in_streaming = f & 16,
            .supports_tools = f & 32,
            .supports_strict_mode = f & 64,
            .requires_string_content = f & 128,
            .max_tokens_field = f & 1   ? "max_completion_tokens"
                                : f & 2 ? "max_tokens"
                                        : NULL,
        };
        o.stream = f & 8;
        cg_buf_t out = {0};
        char err[256];
        if (cg_xlate_request(client, &m, p, len, &o, &out, err, sizeof err) == 0)
            must_be_json(out.data, out.len);
        cg_buf_free(&out);
        return 0;
    }
    if (mode == 2) {
        cg_buf_t out = {0};
        cg_xlate_usage_t u;
        char err[256];
        if (cg_xlate_response(client, api, "f/m", p, len, &o, &out, &u, err, sizeof err) == 0)
            must_be_json(out.data, out.len);
        cg_buf_free(&out);
        return 0;
    }
    cg_xlate_stream_t *xs = cg_xlate_stream_new(client, api, "f/m", &o);
    int rc = 0;
    const char *line = p, *end = p + len;
    while (line < end && rc == 0) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        const char *tab = memchr(line, '\t', (size_t)(le - line));
        char name[64] = "";
        const char *d = line;
        if (tab && tab - line < (long)sizeof name) {
            memcpy(name, line, (size_t)(tab - line));
            d = tab + 1;
        }
        rc = cg_xlate_stream_feed(xs, name, d, (size_t)(le - d), on_emit, &c);
        line = le + 1;
    }
    if (rc >= 0 && mode == 0)
        cg_xlate_stream_finish(xs, on_emit, &c);
    else
        cg_xlate_stream_fail(xs, "unknown", cg_xlate_stream_error(xs), on_emit, &c);
    cg_xlate_stream_free(xs);
    return 0;
}
