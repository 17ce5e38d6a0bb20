/*
 * test_translate_req.c — the request side of proto/translate.h: every
 * client API to every provider API, the OpenClaw fixture requests for both
 * client APIs, each compat key on its own, headers and paths, and bodies a
 * client should get a 400 for.
 */
#include "config/catalog.h"
#include "proto/translate.h"
#include "tests/t.h"

#include <json.h>

static cg_provider_t prov = {.name = "p", .api_key = "sk-test"};

/* Everything supported, as for OpenAI's own servers. */
static const cg_compat_t full_compat = {
    .supports_store = true,
    .supports_developer_role = true,
    .supports_reasoning_effort = true,
    .supports_usage_in_streaming = true,
    .supports_tools = true,
    .supports_strict_mode = true,
};

static cg_model_t model(cg_api_t api, cg_compat_t c)
{
    cg_model_t m = {0};
    m.provider = &prov;
    m.id = "up-model";
    m.ref = "p/up-model";
    m.api = api;
    m.max_tokens = 8192;
    m.reasoning = true;
    m.compat = c;
    return m;
}

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (o && json_object_object_get_ex(o, k, &v))
        return v;
    return NULL;
}

static const char *gets(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int64_t geti(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return v ? json_object_get_int64(v) : -1;
}

static json_object *idx(json_object *a, size_t i)
{
    return a && json_object_is_type(a, json_type_array) && i < json_object_array_length(a)
               ? json_object_array_get_idx(a, i)
               : NULL;
}

static size_t alen(json_object *a)
{
    return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

/* Translate and parse; fails the test on error. */
static json_object *xl(cg_xapi_t client, const cg_model_t *m, const char *body, bool stream)
{
    cg_xlate_opts_t o = {.stream = stream};
    cg_buf_t out = {0};
    char err[256] = "";
    int rc = cg_xlate_request(client, m, body, strlen(body), &o, &out, err, sizeof err);
    T_ASSERTF(rc == 0, "translate %s -> %s: %s", cg_xapi_name(client), cg_api_name(m->api), err);
    cg_buf_append(&out, "", 1);
    json_object *j = json_tokener_parse(out.data);
    T_ASSERTF(j != NULL, "output is not JSON: %s", out.data);
    cg_buf_free(&out);
    return j;
}

static int xl_err(cg_xapi_t client, const cg_model_t *m, const char *body, char *err, size_t n)
{
    cg_xlate_opts_t o = {0};
    cg_buf_t out = {0};
    int rc = cg_xlate_request(client, m, body, strlen(body), &o, &out, err, n);
    cg_buf_free(&out);
    return rc;
}

/* The fixture's body, serialised. */
static char *fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/proto/fixtures/%s.trimmed.json", name);
    json_object *f = json_object_from_file(path);
    T_ASSERTF(f != NULL, "cannot read %s", path);
    char *s = cg_strdup(json_object_to_json_string_ext(
        get(f, "body"), JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(f);
    return s;
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    T_ASSERT(p != NULL);
    cg_buf_t b = {0};
    cg_buf_append(&b, s, (size_t)(p - s));
    cg_buf_puts(&b, to);
    cg_buf_puts(&b, p + strlen(from));
    return cg_buf_steal(&b, NULL);
}

/* ------------------------------------------------------------------------ */
/* OpenClaw fixtures                                                        */

static const char *const chat_fixtures[] = {
    "openai-completions",
    "openai-completions-tool",
    "openai-completions-reasoning",
    "openai-completions-reasoning-effort",
};
static const char *const resp_fixtures[] = {
    "openai-responses",
    "openai-responses-tool",
    "openai-responses-reasoning",
};

/* The hot path: with nothing to shape, only `model` changes, byte for byte. */
static void test_chat_fixtures_passthrough(void)
{
    cg_model_t m = model(CG_API_OPENAI_COMPLETIONS, cg_catalog_custom_compat);
    for (size_t i = 0; i < CG_ARRAY_LEN(chat_fixtures); i++) {
        char *body = fixture(chat_fixtures[i]);
        const char *mid = strstr(body, "mock-reasoner") ? "mock-reasoner" : "mock-model";
        char from[64];
        snprintf(from, sizeof from, "\"model\":\"%s\"", mid);
        char *want = replace(body, from, "\"model\":\"up-model\"");
        cg_xlate_opts_t o = {.stream = true};
        cg_buf_t out = {0};
        char err[128];
        T_EQ_INT(cg_xlate_request(CG_XAPI_CHAT, &m, body, strlen(body), &o, &out, err, sizeof err),
                 0);
        cg_buf_append(&out, "", 1);
        T_ASSERTF(strcmp(out.data, want) == 0, "%s changed beyond `model`", chat_fixtures[i]);
        cg_buf_free(&out);
        /* non-stream: stream false, stream_options gone */
        json_object *j = xl(CG_XAPI_CHAT, &m, body, false);
        T_ASSERT(!json_object_get_boolean(get(j, "stream")));
        T_ASSERT(!get(j, "stream_options"));
        json_object_put(j);
        cg_free(want);
        cg_free(body);
    }
}

/* Every fixture to every other provider API: valid, and what matters kept. */
static void test_fixtures_across_apis(void)
{
    for (int client = 0; client < 2; client++) {
        const char *const *fx = client == CG_XAPI_CHAT ? chat_fixtures : resp_fixtures;
        size_t nfx =
            client == CG_XAPI_CHAT ? CG_ARRAY_LEN(chat_fixtures) : CG_ARRAY_LEN(resp_fixtures);
        for (size_t i = 0; i < nfx; i++) {
            char *body = fixture(fx[i]);
            bool tool = strstr(fx[i], "-tool") != NULL;
            for (int api = 0; api < 3; api++) {
                cg_model_t m = model(api, cg_catalog_custom_compat);
                json_object *j = xl(client, &m, body, true);
                T_EQ_STR(gets(j, "model"), "up-model");
                T_ASSERT(json_object_get_boolean(get(j, "stream")));
                T_ASSERT(!get(j, "previous_response_id"));
                if (api == CG_API_OPENAI_COMPLETIONS) {
                    json_object *msgs = get(j, "messages");
                    T_EQ_STR(gets(idx(msgs, 0), "role"), "system");
                    T_ASSERT(
                        json_object_get_boolean(get(get(j, "stream_options"), "include_usage")));
                    T_ASSERT(!get(j, "store")); /* custom compat: no store */
                    if (tool) {
                        /* function_call + output -> assistant tool_calls + tool */
                        size_t k = 0;
                        while (k < alen(msgs) && strcmp(gets(idx(msgs, k), "role"), "tool"))
                            k++;
                        T_ASSERT(k > 0 && k < alen(msgs));
                        json_object *res = idx(msgs, k), *call = idx(msgs, k - 1);
                        T_EQ_STR(gets(get(idx(get(call, "tool_calls"), 0), "function"), "name"),
                                 "ls");
                        T_EQ_STR(gets(idx(get(call, "tool_calls"), 0), "id"),
                                 gets(res, "tool_call_id"));
                        T_EQ_STR(gets(res, "content"), "\"NOTE.txt\"");
                    }
                    T_ASSERT(geti(j, "max_tokens") == 4096 ||
                             geti(j, "max_completion_tokens") == 4096);
                } else if (api == CG_API_OPENAI_RESPONSES) {
                    json_object *in = get(j, "input");
                    T_ASSERT(alen(in) >= 3);
                    T_EQ_STR(gets(idx(in, 0), "role"), "system");
                    T_EQ_INT(geti(j, "max_output_tokens"), 4096);
                    T_ASSERT(!get(j, "store"));
                    if (tool) {
                        size_t k = 0;
                        while (k < alen(in) &&
                               !(gets(idx(in, k), "type") &&
                                 strcmp(gets(idx(in, k), "type"), "function_call_output") == 0))
                            k++;
                        T_ASSERT(k > 0 && k < alen(in));
                        T_EQ_STR(gets(idx(in, k - 1), "type"), "function_call");
                        T_EQ_STR(gets(idx(in, k - 1), "call_id"), gets(idx(in, k), "call_id"));
                    }
                    json_object *t0 = idx(get(j, "tools"), 0);
                    T_EQ_STR(gets(t0, "name"), "apply_patch");
                } else {
                    T_ASSERT(gets(j, "system") && strstr(gets(j, "system"), "OpenClaw"));
                    T_EQ_INT(geti(j, "max_tokens"), 4096);
                    json_object *msgs = get(j, "messages");
                    T_EQ_STR(gets(idx(msgs, 0), "role"), "user");
                    for (size_t k = 1; k < alen(msgs); k++)
                        T_ASSERT(strcmp(gets(idx(msgs, k), "role"),
                                        gets(idx(msgs, k - 1), "role")) != 0);
                    json_object *t0 = idx(get(j, "tools"), 0);
                    T_EQ_STR(gets(t0, "name"), "apply_patch");
                    T_ASSERT(get(t0, "input_schema"));
                    if (tool) {
                        json_object *tu = NULL, *tr = NULL;
                        for (size_t k = 0; k < alen(msgs); k++) {
                            json_object *c = get(idx(msgs, k), "content");
                            for (size_t b = 0; b < alen(c); b++) {
                                const char *bt = gets(idx(c, b), "type");
                                if (strcmp(bt, "tool_use") == 0)
                                    tu = idx(c, b);
                                if (strcmp(bt, "tool_result") == 0) {
                                    tr = idx(c, b);
                                    T_ASSERT(tu != NULL); /* the call comes first */
                                }
                            }
                        }
                        T_ASSERT(tu && tr);
                        T_EQ_STR(gets(tu, "id"), gets(tr, "tool_use_id"));
                        T_EQ_STR(gets(get(tu, "input"), "path"), ".");
                        T_EQ_STR(gets(tr, "content"), "\"NOTE.txt\"");
                    }
                }
                json_object_put(j);
            }
            cg_free(body);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* compat shaping, one key at a time                                        */

static const char chat_shape_body[] =
    "{\"model\":\"x\",\"messages\":[{\"role\":\"developer\",\"content\":\"rules\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
    "{\"type\":\"text\",\"text\":\"b\"}]}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"strict\":true,"
    "\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":\"auto\",\"store\":true,"
    "\"max_tokens\":100,\"reasoning_effort\":\"low\",\"stream\":true,"
    "\"stream_options\":{\"include_usage\":true}}";

static const char resp_shape_body[] =
    "{\"model\":\"x\",\"input\":[{\"type\":\"message\",\"role\":\"developer\",\"content\":"
    "[{\"type\":\"input_text\",\"text\":\"rules\"}]},{\"role\":\"user\",\"content\":"
    "[{\"type\":\"input_text\",\"text\":\"a\"},{\"type\":\"input_text\",\"text\":\"b\"}]}],"
    "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"strict\":true,\"parameters\":{}}],"
    "\"store\":true,\"max_output_tokens\":100,\"reasoning\":{\"effort\":\"low\"},"
    "\"previous_response_id\":\"resp_old\",\"stream\":true}";

static json_object *msg_list(json_object *j)
{
    return get(j, "messages") ? get(j, "messages") : get(j, "input");
}

/* client chat -> chat, client Responses -> chat, client Responses -> Responses */
static void test_compat_each_key(void)
{
    struct {
        cg_xapi_t client;
        cg_api_t api;
        const char *body;
    } paths[] = {
        {CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, chat_shape_body},
        {CG_XAPI_RESPONSES, CG_API_OPENAI_COMPLETIONS, resp_shape_body},
        {CG_XAPI_RESPONSES, CG_API_OPENAI_RESPONSES, resp_shape_body},
        {CG_XAPI_CHAT, CG_API_OPENAI_RESPONSES, chat_shape_body},
    };
    for (size_t p = 0; p < CG_ARRAY_LEN(paths); p++) {
        bool chat_out = paths[p].api == CG_API_OPENAI_COMPLETIONS;
        /* baseline: everything supported, nothing dropped */
        cg_model_t m = model(paths[p].api, full_compat);
        json_object *j = xl(paths[p].client, &m, paths[p].body, true);
        T_EQ_STR(gets(idx(msg_list(j), 0), "role"), "developer");
        T_ASSERT(get(j, "store"));
        json_object *t0 = idx(get(j, "tools"), 0);
        T_ASSERT(get(chat_out ? get(t0, "function") : t0, "strict"));
        T_ASSERT(chat_out ? get(j, "reasoning_effort") != NULL : get(j, "reasoning") != NULL);
        T_ASSERT(!get(j, "previous_response_id"));
        if (chat_out)
            T_ASSERT(json_object_get_boolean(get(get(j, "stream_options"), "include_usage")));
        json_object_put(j);

        /* developer role */
        cg_compat_t c = full_compat;
        c.supports_developer_role = false;
        m = model(paths[p].api, c);
        j = xl(paths[p].client, &m, paths[p].body, true);
        T_EQ_STR(gets(idx(msg_list(j), 0), "role"), "system");
        json_object_put(j);

        /* store */
        c = full_compat;
        c.supports_store = false;
        m = model(paths[p].api, c);
        j = xl(paths[p].client, &m, paths[p].body, true);
        T_ASSERT(!get(j, "store"));
        json_object_put(j);

        /* strict */
        c = full_compat;
        c.supports_strict_mode = false;
        m = model(paths[p].api, c);
        j = xl(paths[p].client, &m, paths[p].body, true);
        t0 = idx(get(j, "tools"), 0);
        T_EQ_STR(gets(chat_out ? get(t0, "function") : t0, "name"), "f");
        T_ASSERT(!get(t0, "strict") && !get(get(t0, "function"), "strict"));
        json_object_put(j);

        /* requiresStringContent */
        c = full_compat;
        c.requires_string_content = true;
        m = model(paths[p].api, c);
        j = xl(paths[p].client, &m, paths[p].body, true);
        T_EQ_STR(gets(idx(msg_list(j), 1), "content"), "a\nb");
        json_object_put(j);

        /* reasoning effort */
        c = full_compat;
        c.supports_reasoning_effort = false;
        m = model(paths[p].api, c);
        j = xl(paths[p].client, &m, paths[p].body, true);
        T_ASSERT(!get(j, "reasoning_effort") && !get(j, "reasoning"));
        json_object_put(j);

        /* tools */
        c = full_compat;
        c.supports_tools = false;
        m = model(paths[p].api, c);
        j = xl(paths[p].client, &m, paths[p].body, true);
        T_ASSERT(!get(j, "tools") && !get(j, "tool_choice"));
        json_object_put(j);

        if (!chat_out)
            continue;
        /* usage in streaming */
        c = full_compat;
        c.supports_usage_in_streaming = false;
        m = model(paths[p].api, c);
        j = xl(paths[p].client, &m, paths[p].body, true);
        T_ASSERT(!get(j, "stream_options"));
        json_object_put(j);

        /* maxTokensField both ways */
        c = full_compat;
        c.max_tokens_field = "max_completion_tokens";
        m = model(paths[p].api, c);
        j = xl(paths[p].client, &m, paths[p].body, true);
        T_EQ_INT(geti(j, "max_completion_tokens"), 100);
        T_ASSERT(!get(j, "max_tokens"));
        json_object_put(j);
        c.max_tokens_field = "max_tokens";
        m = model(paths[p].api, c);
        j = xl(paths[p].client, &m, paths[p].body, true);
        T_EQ_INT(geti(j, "max_tokens"), 100);
        T_ASSERT(!get(j, "max_completion_tokens"));
        json_object_put(j);
    }
    /* maxTokensField from max_completion_tokens, tree-less */
    cg_compat_t c = full_compat;
    c.max_tokens_field = "max_tokens";
    cg_model_t m = model(CG_API_OPENAI_COMPLETIONS, c);
    json_object *j = xl(CG_XAPI_CHAT, &m,
                        "{\"model\":\"x\",\"messages\":[],\"max_completion_tokens\":77}", false);
    T_EQ_INT(geti(j, "max_tokens"), 77);
    T_ASSERT(!get(j, "max_completion_tokens"));
    json_object_put(j);
}

/* Shaping edits only what it must: the untouched members keep their bytes. */
static void test_shaping_keeps_other_bytes(void)
{
    cg_compat_t c = full_compat;
    c.supports_developer_role = false;
    cg_model_t m = model(CG_API_OPENAI_COMPLETIONS, c);
    const char *body = "{\"model\":\"x\",  \"temperature\":0.70,\"messages\":[{\"role\":"
                       "\"developer\",\"content\":\"r\"}],\"tools\":[ {\"type\":\"function\", "
                       "\"function\":{\"name\":\"f\"}} ]}";
    cg_xlate_opts_t o = {.stream = false};
    cg_buf_t out = {0};
    char err[128];
    T_EQ_INT(cg_xlate_request(CG_XAPI_CHAT, &m, body, strlen(body), &o, &out, err, sizeof err), 0);
    cg_buf_append(&out, "", 1);
    T_CONTAINS(out.data, "\"temperature\":0.70");
    T_CONTAINS(out.data, "\"tools\":[ {\"type\":\"function\", \"function\":{\"name\":\"f\"}} ]");
    T_CONTAINS(out.data, "\"role\":\"system\"");
    cg_buf_free(&out);
}

/* developer -> system without a tree: only real "role" keys change. */
static void test_developer_rename_bytes(void)
{
    cg_compat_t c = full_compat;
    c.supports_developer_role = false;
    const char *body =
        "{\"model\":\"x\",\"messages\":[{\"content\":\"C:\\\\\",\"role\" :\n \"developer\"},"
        "{\"role\":\"user\",\"content\":\"say \\\"role\\\":\\\"developer\\\" and "
        "\\\"role\\\": \\\"developer\\\"\"},{\"role\":\"developer\",\"name\":\"developer\"}]}";
    for (int api = 0; api < 2; api++) {
        cg_model_t m = model(api == 0 ? CG_API_OPENAI_COMPLETIONS : CG_API_OPENAI_RESPONSES, c);
        const char *b = body;
        char *rb = NULL;
        if (api == 1)
            b = rb = replace(body, "\"messages\"", "\"input\"");
        json_object *j = xl(api == 0 ? CG_XAPI_CHAT : CG_XAPI_RESPONSES, &m, b, false);
        json_object *msgs = msg_list(j);
        T_EQ_STR(gets(idx(msgs, 0), "role"), "system");
        T_EQ_STR(gets(idx(msgs, 0), "content"), "C:\\");
        T_EQ_STR(gets(idx(msgs, 1), "content"),
                 "say \"role\":\"developer\" and \"role\": \"developer\"");
        T_EQ_STR(gets(idx(msgs, 2), "role"), "system");
        T_EQ_STR(gets(idx(msgs, 2), "name"), "developer");
        json_object_put(j);
        cg_free(rb);
    }
}

/* ------------------------------------------------------------------------ */
/* chat -> Responses, chat -> Anthropic, Responses -> chat, in detail        */

static const char chat_conv[] =
    "{\"model\":\"x\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"developer\",\"content\":\"Use tools.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Time in Oslo?\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBO\"}}]},"
    "{\"role\":\"assistant\",\"content\":\"Checking.\",\"reasoning_content\":\"hmm\","
    "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
    "\"get_time\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},{\"id\":\"call_2\","
    "\"type\":\"function\",\"function\":{\"name\":\"get_tz\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"12:00\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":[{\"type\":\"text\","
    "\"text\":\"CET\"}]},"
    "{\"role\":\"user\",\"content\":\"thanks\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"description\":"
    "\"Time.\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
    "\"string\"}}}}},{\"type\":\"function\",\"function\":{\"name\":\"get_tz\"}}],"
    "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,\"max_completion_tokens\":"
    "20000,\"temperature\":1.5,\"stop\":\"END\",\"user\":\"u1\",\"reasoning_effort\":\"medium\","
    "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"t\",\"schema\":"
    "{\"type\":\"object\"}}}}";

static void test_chat_to_responses(void)
{
    cg_model_t m = model(CG_API_OPENAI_RESPONSES, full_compat);
    json_object *j = xl(CG_XAPI_CHAT, &m, chat_conv, false);
    json_object *in = get(j, "input");
    T_EQ_INT(alen(in), 9);
    T_EQ_STR(gets(idx(in, 0), "role"), "system");
    T_EQ_STR(gets(idx(in, 1), "role"), "developer");
    json_object *u = get(idx(in, 2), "content");
    T_EQ_STR(gets(idx(u, 0), "type"), "input_text");
    T_EQ_STR(gets(idx(u, 1), "type"), "input_image");
    T_EQ_STR(gets(idx(u, 1), "image_url"), "data:image/png;base64,iVBO");
    T_EQ_STR(gets(idx(in, 3), "role"), "assistant");
    T_EQ_STR(gets(idx(in, 3), "content"), "Checking.");
    T_EQ_STR(gets(idx(in, 4), "type"), "function_call");
    T_EQ_STR(gets(idx(in, 4), "call_id"), "call_1");
    T_EQ_STR(gets(idx(in, 4), "arguments"), "{\"city\":\"Oslo\"}");
    T_EQ_STR(gets(idx(in, 5), "name"), "get_tz");
    T_EQ_STR(gets(idx(in, 6), "type"), "function_call_output");
    T_EQ_STR(gets(idx(in, 6), "output"), "12:00");
    T_EQ_STR(gets(idx(in, 7), "output"), "CET");
    T_EQ_STR(gets(idx(in, 8), "content"), "thanks");
    json_object_put(j);
    j = xl(CG_XAPI_CHAT, &m, chat_conv, true);
    json_object *t = get(j, "tools");
    T_EQ_STR(gets(idx(t, 0), "name"), "get_time");
    T_EQ_STR(gets(idx(t, 0), "description"), "Time.");
    T_ASSERT(get(idx(t, 0), "parameters"));
    T_ASSERT(!json_object_get_boolean(get(idx(t, 0), "strict"))); /* chat default, said */
    T_EQ_STR(gets(j, "tool_choice"), "required");
    T_EQ_INT(geti(j, "max_output_tokens"), 20000);
    T_EQ_STR(gets(get(j, "reasoning"), "effort"), "medium");
    T_EQ_STR(gets(get(get(j, "text"), "format"), "type"), "json_schema");
    T_EQ_STR(gets(get(get(j, "text"), "format"), "name"), "t");
    T_ASSERT(!get(j, "stop"));
    T_ASSERT(!json_object_get_boolean(get(j, "store")));
    T_ASSERT(json_object_get_boolean(get(j, "stream")));
    json_object_put(j);
}

static void test_chat_to_anthropic(void)
{
    cg_model_t m = model(CG_API_ANTHROPIC_MESSAGES, full_compat);
    json_object *j = xl(CG_XAPI_CHAT, &m, chat_conv, true);
    T_EQ_STR(gets(j, "system"), "Be brief.\n\nUse tools.");
    T_EQ_INT(geti(j, "max_tokens"), 20000);
    json_object *msgs = get(j, "messages");
    T_EQ_INT(alen(msgs), 3); /* user, assistant, user (two tool results + "thanks") */
    json_object *u = get(idx(msgs, 0), "content");
    T_EQ_STR(gets(idx(u, 0), "type"), "text");
    T_EQ_STR(gets(idx(u, 1), "type"), "image");
    T_EQ_STR(gets(get(idx(u, 1), "source"), "media_type"), "image/png");
    T_EQ_STR(gets(get(idx(u, 1), "source"), "data"), "iVBO");
    json_object *a = get(idx(msgs, 1), "content");
    T_EQ_INT(alen(a), 3);
    T_EQ_STR(gets(idx(a, 0), "text"), "Checking.");
    T_EQ_STR(gets(idx(a, 1), "type"), "tool_use");
    T_EQ_STR(gets(idx(a, 1), "id"), "call_1");
    T_EQ_STR(gets(get(idx(a, 1), "input"), "city"), "Oslo");
    T_ASSERT(json_object_is_type(get(idx(a, 2), "input"), json_type_object));
    json_object *r = get(idx(msgs, 2), "content");
    T_EQ_INT(alen(r), 3);
    T_EQ_STR(gets(idx(r, 0), "type"), "tool_result");
    T_EQ_STR(gets(idx(r, 0), "tool_use_id"), "call_1");
    T_EQ_STR(gets(idx(r, 0), "content"), "12:00");
    T_EQ_STR(gets(idx(r, 1), "content"), "CET");
    T_EQ_STR(gets(idx(r, 2), "text"), "thanks");
    json_object *t = get(j, "tools");
    T_EQ_STR(gets(idx(t, 0), "name"), "get_time");
    T_EQ_STR(gets(get(idx(t, 0), "input_schema"), "type"), "object");
    T_EQ_STR(gets(get(idx(t, 1), "input_schema"), "type"), "object"); /* made up when absent */
    json_object *tc = get(j, "tool_choice");
    T_EQ_STR(gets(tc, "type"), "any");
    T_ASSERT(json_object_get_boolean(get(tc, "disable_parallel_tool_use")));
    /* forced tool use: no extended thinking; temperature clamped to 1 */
    T_ASSERT(!get(j, "thinking"));
    T_ASSERT(json_object_get_double(get(j, "temperature")) == 1.0);
    T_EQ_STR(json_object_get_string(idx(get(j, "stop_sequences"), 0)), "END");
    T_EQ_STR(gets(get(j, "metadata"), "user_id"), "u1");
    json_object_put(j);
}

static void test_anthropic_thinking_and_max_tokens(void)
{
    cg_model_t m = model(CG_API_ANTHROPIC_MESSAGES, full_compat);
    json_object *j = xl(CG_XAPI_CHAT, &m,
                        "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"reasoning_effort\":\"high\",\"temperature\":0.2}",
                        false);
    T_EQ_INT(geti(j, "max_tokens"), 8192); /* the model's */
    T_EQ_STR(gets(get(j, "thinking"), "type"), "enabled");
    T_EQ_INT(geti(get(j, "thinking"), "budget_tokens"), 4096); /* half of max_tokens */
    T_ASSERT(!get(j, "temperature"));
    T_ASSERT(!json_object_get_boolean(get(j, "stream")));
    T_EQ_STR(gets(idx(get(idx(get(j, "messages"), 0), "content"), 0), "text"), "hi");
    json_object_put(j);
    /* a model that does not reason gets no thinking */
    m.reasoning = false;
    j = xl(CG_XAPI_CHAT, &m,
           "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
           "\"reasoning_effort\":\"high\",\"max_tokens\":50,\"temperature\":0.2}",
           false);
    T_EQ_INT(geti(j, "max_tokens"), 50);
    T_ASSERT(!get(j, "thinking"));
    T_ASSERT(json_object_get_double(get(j, "temperature")) == 0.2);
    json_object_put(j);
}

static void test_responses_to_chat_items(void)
{
    const char *body =
        "{\"model\":\"x\",\"instructions\":\"Be brief.\",\"input\":["
        "{\"role\":\"user\",\"content\":\"hi\"},"
        "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
        "\"look\"},{\"type\":\"input_image\",\"image_url\":\"https://x/y.png\"}]},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
        "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\","
        "\"text\":\"ok\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":\"g\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"one\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c2\",\"output\":\"two\"}],"
        "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{}}],"
        "\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"},\"include\":[\"x\"],"
        "\"text\":{\"format\":{\"type\":\"json_object\"}}}";
    cg_model_t m = model(CG_API_OPENAI_COMPLETIONS, full_compat);
    json_object *j = xl(CG_XAPI_RESPONSES, &m, body, false);
    json_object *msgs = get(j, "messages");
    T_EQ_INT(alen(msgs), 6);
    T_EQ_STR(gets(idx(msgs, 0), "content"), "Be brief.");
    T_EQ_STR(gets(idx(msgs, 1), "content"), "hi");
    json_object *parts = get(idx(msgs, 2), "content");
    T_EQ_STR(gets(get(idx(parts, 1), "image_url"), "url"), "https://x/y.png");
    json_object *as = idx(msgs, 3);
    T_EQ_STR(gets(as, "content"), "ok");
    T_EQ_INT(alen(get(as, "tool_calls")), 2);
    T_EQ_STR(gets(idx(msgs, 5), "tool_call_id"), "c2");
    T_EQ_STR(gets(get(get(j, "tool_choice"), "function"), "name"), "f");
    T_EQ_STR(gets(get(idx(get(j, "tools"), 0), "function"), "name"), "f");
    T_EQ_STR(gets(get(j, "response_format"), "type"), "json_object");
    T_ASSERT(!get(j, "include") && !get(j, "stream_options"));
    json_object_put(j);
    /* and on to Anthropic: the two outputs are one user turn */
    m = model(CG_API_ANTHROPIC_MESSAGES, full_compat);
    j = xl(CG_XAPI_RESPONSES, &m, body, true);
    msgs = get(j, "messages");
    T_EQ_INT(alen(msgs), 3);
    T_EQ_INT(alen(get(idx(msgs, 2), "content")), 2);
    T_EQ_STR(gets(get(j, "tool_choice"), "type"), "tool");
    T_EQ_STR(gets(j, "system"), "Be brief.");
    json_object *img = idx(get(idx(msgs, 0), "content"), 2);
    T_EQ_STR(gets(get(img, "source"), "type"), "url");
    json_object_put(j);
}

/* ------------------------------------------------------------------------ */
/* 400s, headers, paths                                                     */

static void test_bad_requests(void)
{
    char err[256];
    cg_model_t chat = model(CG_API_OPENAI_COMPLETIONS, full_compat);
    cg_model_t anth = model(CG_API_ANTHROPIC_MESSAGES, full_compat);
    cg_model_t resp = model(CG_API_OPENAI_RESPONSES, full_compat);
    T_EQ_INT(xl_err(CG_XAPI_CHAT, &chat, "{\"model\":", err, sizeof err), CG_EINVAL);
    T_CONTAINS(err, "not valid JSON");
    T_EQ_INT(xl_err(CG_XAPI_CHAT, &chat, "[1]", err, sizeof err), CG_EINVAL);
    T_EQ_INT(xl_err(CG_XAPI_CHAT, &chat, "{\"messages\":{}}", err, sizeof err), CG_EINVAL);
    T_CONTAINS(err, "messages");
    T_EQ_INT(xl_err(CG_XAPI_CHAT, &anth, "{\"messages\":3}", err, sizeof err), CG_EINVAL);
    T_EQ_INT(xl_err(CG_XAPI_RESPONSES, &chat, "{\"input\":5}", err, sizeof err), CG_EINVAL);
    T_EQ_INT(xl_err(CG_XAPI_RESPONSES, &resp, "{\"input\":5}", err, sizeof err), CG_EINVAL);
    T_EQ_INT(xl_err(CG_XAPI_RESPONSES, &anth,
                    "{\"input\":[{\"type\":\"item_reference\","
                    "\"id\":\"x\"}]}",
                    err, sizeof err),
             CG_EINVAL);
    T_CONTAINS(err, "item_reference");
    const char *hosted = "{\"input\":\"hi\",\"tools\":[{\"type\":\"web_search\"}]}";
    T_EQ_INT(xl_err(CG_XAPI_RESPONSES, &chat, hosted, err, sizeof err), CG_EINVAL);
    T_CONTAINS(err, "web_search");
    /* the same tool is fine where it exists */
    T_EQ_INT(xl_err(CG_XAPI_RESPONSES, &resp, hosted, err, sizeof err), 0);
    T_EQ_INT(xl_err(CG_XAPI_RESPONSES, &anth,
                    "{\"input\":[{\"role\":\"robot\",\"content\":\"x\"}]}", err, sizeof err),
             CG_EINVAL);
    T_EQ_INT(xl_err(CG_XAPI_RESPONSES, &anth,
                    "{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_file\"}]}]}",
                    err, sizeof err),
             CG_EINVAL);
    cg_model_t un = model(CG_API_UNSUPPORTED, full_compat);
    T_EQ_INT(xl_err(CG_XAPI_CHAT, &un, "{}", err, sizeof err), CG_ENOENT);
}

typedef struct hdrs {
    char lines[8][128];
    int n;
} hdrs_t;

static void add_hdr(void *ud, const char *name, const char *value)
{
    hdrs_t *h = ud;
    T_ASSERT(h->n < 8);
    snprintf(h->lines[h->n++], 128, "%s: %s", name, value);
}

static void test_headers_and_paths(void)
{
    cg_model_t m = model(CG_API_ANTHROPIC_MESSAGES, full_compat);
    hdrs_t h = {0};
    cg_xlate_headers(&m, true, add_hdr, &h);
    T_EQ_INT(h.n, 4);
    T_EQ_STR(h.lines[1], "Accept: text/event-stream");
    T_EQ_STR(h.lines[2], "x-api-key: sk-test");
    T_EQ_STR(h.lines[3], "anthropic-version: 2023-06-01");
    m = model(CG_API_OPENAI_RESPONSES, full_compat);
    memset(&h, 0, sizeof h);
    cg_xlate_headers(&m, false, add_hdr, &h);
    T_EQ_INT(h.n, 3);
    T_EQ_STR(h.lines[1], "Accept: application/json");
    T_EQ_STR(h.lines[2], "Authorization: Bearer sk-test");
    cg_provider_t keyless = {.name = "local"};
    m.provider = &keyless;
    memset(&h, 0, sizeof h);
    cg_xlate_headers(&m, false, add_hdr, &h);
    T_EQ_INT(h.n, 2);
    T_EQ_STR(cg_xlate_path(CG_API_OPENAI_COMPLETIONS), "/chat/completions");
    T_EQ_STR(cg_xlate_path(CG_API_OPENAI_RESPONSES), "/responses");
    T_EQ_STR(cg_xlate_path(CG_API_ANTHROPIC_MESSAGES), "/messages");
    T_ASSERT(cg_xlate_path(CG_API_UNSUPPORTED) == NULL);
}

int main(void)
{
    T_RUN(test_chat_fixtures_passthrough);
    T_RUN(test_fixtures_across_apis);
    T_RUN(test_compat_each_key);
    T_RUN(test_shaping_keeps_other_bytes);
    T_RUN(test_developer_rename_bytes);
    T_RUN(test_chat_to_responses);
    T_RUN(test_chat_to_anthropic);
    T_RUN(test_anthropic_thinking_and_max_tokens);
    T_RUN(test_responses_to_chat_items);
    T_RUN(test_bad_requests);
    T_RUN(test_headers_and_paths);
    T_DONE();
}
