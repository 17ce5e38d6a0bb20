/*
 * test_translate.c — the reply side of proto/translate.h: every provider
 * dialect (openai-completions, openai-responses, anthropic-messages)
 * decoded into every client API (chat completions, Responses), streamed and
 * not; reasoning separation (fields, thinking blocks, inline <think> split
 * across chunks), tool calls as text, the chat pass-through, usage, errors
 * and malformed upstream events.
 */
#include "tests/proto/xlate_check.h"

/* ------------------------------------------------------------------------ */
/* upstream transcripts                                                     */

typedef struct upev {
    const char *event, *data;
} upev_t;

#define CHUNK(delta, finish)                                                                       \
    "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"up\","          \
    "\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" finish "}]}"

static const upev_t chat_full[] = {
    {"", CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")},
    {"", CHUNK("{\"reasoning_content\":\"think\"}", "null")},
    {"", CHUNK("{\"content\":\"Hello\"}", "null")},
    {"", CHUNK("{\"content\":\" world\"}", "null")},
    {"", CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
               "\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]}",
               "null")},
    {"", CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\"\"}}]}",
               "null")},
    {"", CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":\\\"Oslo\\\"}\"}}]}",
               "null")},
    {"", CHUNK("{}", "\"tool_calls\"")},
    {"", "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"up\","
         "\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,"
         "\"total_tokens\":15,\"prompt_tokens_details\":{\"cached_tokens\":2}}}"},
    {"", "[DONE]"},
};

static const upev_t resp_full[] = {
    {"response.created", "{\"type\":\"response.created\",\"sequence_number\":0,\"response\":"
                         "{\"id\":\"resp_up\",\"object\":\"response\",\"status\":\"in_progress\","
                         "\"output\":[]}}"},
    {"response.output_item.added",
     "{\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,"
     "\"item\":{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]}}"},
    {"response.reasoning_summary_text.delta",
     "{\"type\":\"response.reasoning_summary_text.delta\",\"sequence_number\":2,"
     "\"item_id\":\"rs_1\",\"output_index\":0,\"summary_index\":0,\"delta\":\"think\"}"},
    {"response.output_item.added",
     "{\"type\":\"response.output_item.added\",\"sequence_number\":3,\"output_index\":1,"
     "\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[]}}"},
    {"response.output_text.delta",
     "{\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_1\","
     "\"output_index\":1,\"content_index\":0,\"delta\":\"Hello\"}"},
    {"response.output_text.delta",
     "{\"type\":\"response.output_text.delta\",\"sequence_number\":5,\"item_id\":\"msg_1\","
     "\"output_index\":1,\"content_index\":0,\"delta\":\" world\"}"},
    {"response.output_item.added",
     "{\"type\":\"response.output_item.added\",\"sequence_number\":6,\"output_index\":2,"
     "\"item\":{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_1\","
     "\"name\":\"get_time\",\"arguments\":\"\"}}"},
    {"response.function_call_arguments.delta",
     "{\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":7,"
     "\"item_id\":\"fc_1\",\"output_index\":2,\"delta\":\"{\\\"city\\\"\"}"},
    {"response.function_call_arguments.delta",
     "{\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":8,"
     "\"item_id\":\"fc_1\",\"output_index\":2,\"delta\":\":\\\"Oslo\\\"}\"}"},
    {"response.function_call_arguments.done",
     "{\"type\":\"response.function_call_arguments.done\",\"sequence_number\":9,"
     "\"item_id\":\"fc_1\",\"output_index\":2,\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}"},
    {"response.completed",
     "{\"type\":\"response.completed\",\"sequence_number\":10,\"response\":{\"id\":\"resp_up\","
     "\"object\":\"response\",\"status\":\"completed\",\"output\":[],\"usage\":"
     "{\"input_tokens\":10,\"input_tokens_details\":{\"cached_tokens\":2},\"output_tokens\":5,"
     "\"total_tokens\":15}}}"},
};

static const upev_t anth_full[] = {
    {"message_start",
     "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_a\",\"type\":\"message\","
     "\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"usage\":{\"input_tokens\":5,"
     "\"cache_read_input_tokens\":2,\"cache_creation_input_tokens\":3,\"output_tokens\":1}}}"},
    {"content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                            "{\"type\":\"thinking\",\"thinking\":\"\"}}"},
    {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                            "{\"type\":\"thinking_delta\",\"thinking\":\"think\"}}"},
    {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                            "{\"type\":\"signature_delta\",\"signature\":\"c2ln\"}}"},
    {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"},
    {"content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
                            "{\"type\":\"text\",\"text\":\"\"}}"},
    {"ping", "{\"type\":\"ping\"}"},
    {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
                            "{\"type\":\"text_delta\",\"text\":\"Hello\"}}"},
    {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
                            "{\"type\":\"text_delta\",\"text\":\" world\"}}"},
    {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}"},
    {"content_block_start",
     "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
     "\"id\":\"call_1\",\"name\":\"get_time\",\"input\":{}}}"},
    {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":"
                            "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\"\"}}"},
    {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":"
                            "{\"type\":\"input_json_delta\",\"partial_json\":\":\\\"Oslo\\\"}\"}}"},
    {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":2}"},
    {"message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
                      "\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}"},
    {"message_stop", "{\"type\":\"message_stop\"}"},
};

typedef struct transcript {
    cg_api_t api;
    const upev_t *ev;
    size_t n;
} transcript_t;

static const transcript_t full[] = {
    {CG_API_OPENAI_COMPLETIONS, chat_full, CG_ARRAY_LEN(chat_full)},
    {CG_API_OPENAI_RESPONSES, resp_full, CG_ARRAY_LEN(resp_full)},
    {CG_API_ANTHROPIC_MESSAGES, anth_full, CG_ARRAY_LEN(anth_full)},
};

/* Feed a transcript; the last rc. Finishes on CG_XLATE_END. */
static int run(cg_xlate_stream_t *xs, const upev_t *ev, size_t n, cap_t *c)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rc = cg_xlate_stream_feed(xs, ev[i].event, ev[i].data, strlen(ev[i].data), cap_emit, c);
        if (rc < 0)
            return rc;
        if (rc == CG_XLATE_END) {
            cg_xlate_stream_finish(xs, cap_emit, c);
            return rc;
        }
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* the matrix                                                               */

static void test_matrix_stream(void)
{
    for (size_t p = 0; p < CG_ARRAY_LEN(full); p++) {
        for (int client = 0; client < 2; client++) {
            cg_xlate_opts_t o = {.client_usage = true, .created = 100, .response_id = "resp_t"};
            cg_xlate_stream_t *xs = cg_xlate_stream_new(client, full[p].api, "prov/m", &o);
            cap_t c = {0};
            T_EQ_INT(run(xs, full[p].ev, full[p].n, &c), CG_XLATE_END);
            summary_t s;
            summarize(client, &c, &s);
            const char *what = cg_api_name(full[p].api);
            T_ASSERTF(strcmp(bstr(&s.text), "Hello world") == 0, "%s -> %d: text \"%s\"", what,
                      client, s.text.data);
            T_EQ_STR(bstr(&s.reasoning), "think");
            T_EQ_INT(s.calls, 1);
            T_EQ_STR(s.ids[0], "call_1");
            T_EQ_STR(s.names[0], "get_time");
            T_EQ_STR(bstr(&s.args[0]), "{\"city\":\"Oslo\"}");
            T_EQ_STR(s.finish, client == CG_XAPI_CHAT ? "tool_calls" : "completed");
            T_ASSERT(s.usage);
            T_EQ_INT(s.in, 10);
            T_EQ_INT(s.out, 5);
            T_EQ_INT(s.cached, 2);
            T_ASSERT(cg_xlate_stream_started(xs));
            T_EQ_STR(cg_xlate_stream_finish_reason(xs), "tool_calls");
            const cg_xlate_usage_t *u = cg_xlate_stream_usage(xs);
            T_ASSERT(u->have && u->input == 10 && u->output == 5 && u->cache_read == 2);
            /* finish is idempotent, and feeding after the end does nothing */
            size_t n = c.n;
            cg_xlate_stream_finish(xs, cap_emit, &c);
            T_EQ_INT(c.n, n);
            sum_free(&s);
            cap_free(&c);
            cg_xlate_stream_free(xs);
        }
    }
}

static void test_matrix_omit_reasoning(void)
{
    for (size_t p = 0; p < CG_ARRAY_LEN(full); p++) {
        for (int client = 0; client < 2; client++) {
            cg_xlate_opts_t o = {.omit_reasoning = true};
            cg_xlate_stream_t *xs = cg_xlate_stream_new(client, full[p].api, "prov/m", &o);
            cap_t c = {0};
            T_EQ_INT(run(xs, full[p].ev, full[p].n, &c), CG_XLATE_END);
            summary_t s;
            summarize(client, &c, &s);
            T_EQ_STR(bstr(&s.text), "Hello world");
            T_EQ_INT(s.reasoning.len, 0);
            for (size_t i = 0; i < c.n; i++)
                T_ASSERTF(!strstr(c.data[i], "think"), "reasoning leaked: %s", c.data[i]);
            /* chat without client_usage: no usage chunk */
            if (client == CG_XAPI_CHAT)
                T_EQ_INT(s.usage_chunks, 0);
            sum_free(&s);
            cap_free(&c);
            cg_xlate_stream_free(xs);
        }
    }
}

/* ---- non-stream ---- */

static const char chat_body[] =
    "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":7,\"model\":\"up\",\"choices\":"
    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello world\","
    "\"reasoning_content\":\"think\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},"
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,"
    "\"total_tokens\":15,\"prompt_tokens_details\":{\"cached_tokens\":2}}}";

static const char resp_body[] =
    "{\"id\":\"resp_up\",\"object\":\"response\",\"status\":\"completed\",\"output\":["
    "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[{\"type\":\"summary_text\","
    "\"text\":\"think\"}]},{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\","
    "\"content\":[{\"type\":\"output_text\",\"text\":\"Hello world\",\"annotations\":[]}]},"
    "{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_1\",\"name\":\"get_time\","
    "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\",\"status\":\"completed\"}],"
    "\"usage\":{\"input_tokens\":10,\"input_tokens_details\":{\"cached_tokens\":2},"
    "\"output_tokens\":5,\"total_tokens\":15}}";

static const char anth_body[] =
    "{\"id\":\"msg_a\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\","
    "\"content\":[{\"type\":\"thinking\",\"thinking\":\"think\",\"signature\":\"c2ln\"},"
    "{\"type\":\"text\",\"text\":\"Hello world\"},{\"type\":\"tool_use\",\"id\":\"call_1\","
    "\"name\":\"get_time\",\"input\":{\"city\":\"Oslo\"}}],\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":2,"
    "\"cache_creation_input_tokens\":3,\"output_tokens\":5}}";

static void check_nonstream_object(cg_xapi_t client, const char *body, const char *want_text,
                                   const char *want_reasoning, bool call)
{
    json_object *o = parse(body);
    if (client == CG_XAPI_CHAT) {
        T_EQ_STR(gets(o, "object"), "chat.completion");
        json_object *c0 = json_object_array_get_idx(get(o, "choices"), 0);
        json_object *m = get(c0, "message");
        T_EQ_STR(gets(m, "role"), "assistant");
        T_EQ_STR(gets(m, "content"), want_text);
        if (want_reasoning)
            T_EQ_STR(gets(m, "reasoning_content"), want_reasoning);
        else
            T_ASSERT(!get(m, "reasoning_content"));
        json_object *tcs = get(m, "tool_calls");
        if (call) {
            json_object *tc = json_object_array_get_idx(tcs, 0);
            T_EQ_STR(gets(tc, "id"), "call_1");
            T_EQ_STR(gets(get(tc, "function"), "name"), "get_time");
            json_object *a = parse(gets(get(tc, "function"), "arguments"));
            T_EQ_STR(gets(a, "city"), "Oslo");
            json_object_put(a);
            T_EQ_STR(gets(c0, "finish_reason"), "tool_calls");
        }
        json_object *u = get(o, "usage");
        T_EQ_INT(geti(u, "prompt_tokens"), 10);
        T_EQ_INT(geti(u, "completion_tokens"), 5);
    } else {
        T_EQ_STR(gets(o, "object"), "response");
        T_EQ_STR(gets(o, "status"), "completed");
        json_object *out = get(o, "output");
        cg_buf_t text = {0}, rs = {0};
        int calls = 0;
        for (size_t i = 0; i < json_object_array_length(out); i++) {
            json_object *it = json_object_array_get_idx(out, i);
            const char *t = gets(it, "type");
            T_ASSERT(gets(it, "id"));
            if (strcmp(t, "message") == 0)
                cg_buf_puts(&text, gets(json_object_array_get_idx(get(it, "content"), 0), "text"));
            else if (strcmp(t, "reasoning") == 0)
                cg_buf_puts(&rs, gets(json_object_array_get_idx(get(it, "summary"), 0), "text"));
            else if (strcmp(t, "function_call") == 0) {
                calls++;
                T_EQ_STR(gets(it, "call_id"), "call_1");
                T_EQ_STR(gets(it, "name"), "get_time");
            }
        }
        T_EQ_STR(bstr(&text), want_text);
        T_EQ_STR(bstr(&rs), want_reasoning ? want_reasoning : "");
        T_EQ_INT(calls, call ? 1 : 0);
        T_EQ_INT(geti(get(o, "usage"), "input_tokens"), 10);
        cg_buf_free(&text);
        cg_buf_free(&rs);
    }
    json_object_put(o);
}

static void test_matrix_nonstream(void)
{
    const struct {
        cg_api_t api;
        const char *body;
    } bodies[] = {
        {CG_API_OPENAI_COMPLETIONS, chat_body},
        {CG_API_OPENAI_RESPONSES, resp_body},
        {CG_API_ANTHROPIC_MESSAGES, anth_body},
    };
    for (size_t p = 0; p < CG_ARRAY_LEN(bodies); p++) {
        for (int client = 0; client < 2; client++) {
            for (int omit = 0; omit < 2; omit++) {
                cg_xlate_opts_t o = {.omit_reasoning = omit, .response_id = "resp_x"};
                cg_buf_t out = {0};
                cg_xlate_usage_t u;
                char err[256];
                int rc = cg_xlate_response(client, bodies[p].api, "prov/m", bodies[p].body,
                                           strlen(bodies[p].body), &o, &out, &u, err, sizeof err);
                T_ASSERTF(rc == 0, "%s -> %d: %s", cg_api_name(bodies[p].api), client, err);
                check_nonstream_object(client, bstr(&out), "Hello world", omit ? NULL : "think",
                                       true);
                T_ASSERT(u.have && u.input == 10 && u.output == 5 && u.cache_read == 2);
                cg_buf_free(&out);
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* chat over chat: pass-through and its exits                                */

static void test_chat_passthrough_verbatim(void)
{
    cg_xlate_opts_t o = {.client_usage = false};
    cg_xlate_stream_t *xs =
        cg_xlate_stream_new(CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "prov/m", &o);
    static const upev_t plain[] = {
        {"", CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")},
        {"", CHUNK("{\"content\":\"Hi a<b? no: 2 > 1\"}", "null")},
        {"", CHUNK("{\"reasoning_content\":\"r\"}", "null")},
        {"", CHUNK("{}", "\"stop\"")},
        {"", "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
             "\"completion_tokens\":4,\"total_tokens\":7}}"},
        {"", "[DONE]"},
    };
    cap_t c = {0};
    T_EQ_INT(run(xs, plain, CG_ARRAY_LEN(plain), &c), CG_XLATE_END);
    /* 0, 2, 3 verbatim; 1 has '<' and is re-encoded; the usage chunk is
     * dropped (the client did not ask). */
    size_t passed = 0, encoded = 0;
    cg_xlate_stream_counts(xs, &passed, &encoded);
    T_EQ_INT(passed, 3);
    T_EQ_INT(encoded, 1);
    T_EQ_INT(c.n, 4);
    T_EQ_STR(c.data[0], plain[0].data);
    T_EQ_STR(c.data[2], plain[2].data);
    T_EQ_STR(c.data[3], plain[3].data);
    summary_t s;
    sum_chat(&c, &s);
    T_EQ_STR(bstr(&s.text), "Hi a<b? no: 2 > 1");
    T_EQ_STR(bstr(&s.reasoning), "r");
    T_EQ_STR(s.finish, "stop");
    T_EQ_INT(s.usage_chunks, 0);
    /* the re-encoded chunk keeps the upstream's id and model */
    json_object *j = parse(c.data[1]);
    T_EQ_STR(gets(j, "id"), "c1");
    T_EQ_STR(gets(j, "model"), "up");
    T_EQ_INT(geti(j, "created"), 7);
    json_object_put(j);
    const cg_xlate_usage_t *u = cg_xlate_stream_usage(xs);
    T_ASSERT(u->have && u->input == 3 && u->output == 4);
    sum_free(&s);
    cap_free(&c);
    cg_xlate_stream_free(xs);

    /* with include_usage the usage chunk goes through as it is */
    o.client_usage = true;
    xs = cg_xlate_stream_new(CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "prov/m", &o);
    T_EQ_INT(run(xs, plain, CG_ARRAY_LEN(plain), &c), CG_XLATE_END);
    T_EQ_INT(c.n, 5);
    T_EQ_STR(c.data[4], plain[4].data);
    cap_free(&c);
    cg_xlate_stream_free(xs);
}

/* Is one chat chunk with this delta passed through verbatim (true) or sent
 * through the decoder (false)? */
static bool passes(const char *delta, bool omit_reasoning)
{
    cg_xlate_opts_t o = {.omit_reasoning = omit_reasoning};
    cg_xlate_stream_t *xs =
        cg_xlate_stream_new(CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "prov/m", &o);
    char *chunk = cg_sprintf("{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,"
                             "\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":%s,"
                             "\"finish_reason\":null}]}",
                             delta);
    cap_t c = {0};
    int rc = cg_xlate_stream_feed(xs, "", chunk, strlen(chunk), cap_emit, &c);
    size_t passed = 0, encoded = 0;
    cg_xlate_stream_counts(xs, &passed, &encoded);
    cap_free(&c);
    cg_free(chunk);
    cg_xlate_stream_free(xs);
    return rc >= 0 && passed == 1;
}

/* What sends a chunk through the decoder is found wherever it sits,
 * including at every offset of the sixteen-byte steps of the scan; text
 * that only looks like it (escaped, inside a string) is not. */
static void test_chat_passthrough_decision(void)
{
    static const char *const needs_work[] = {"<", "`", "\\u003c"};
    for (size_t k = 0; k < CG_ARRAY_LEN(needs_work); k++) {
        for (int pad = 0; pad < 40; pad++) {
            char delta[128];
            snprintf(delta, sizeof delta, "{\"content\":\"%.*s%s\"}", pad,
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", needs_work[k]);
            T_ASSERTF(!passes(delta, false), "passed verbatim: %s", delta);
            snprintf(delta, sizeof delta, "{\"content\":\"%.*s\\\"q\\\\\"}", pad,
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
            T_ASSERTF(passes(delta, false), "decoded: %s", delta);
        }
    }
    T_ASSERT(!passes("{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"type\":\"function\","
                     "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}",
                     false));
    T_ASSERT(!passes("{\"reasoning\":\"r\"}", false));
    T_ASSERT(!passes("{\"reasoning_details\":[]}", false));
    T_ASSERT(passes("{\"reasoning_content\":\"r\"}", false));
    T_ASSERT(!passes("{\"reasoning_content\":\"r\"}", true));
    /* The words inside a string, quotes escaped: text, not keys. */
    T_ASSERT(passes("{\"content\":\"say \\\"tool_calls\\\" or \\\"reasoning\\\"\"}", false));
}

/* A call started in a plain chunk and continued in one that needs work is
 * still one call. */
static void test_chat_tool_call_pieces_mixed(void)
{
    cg_xlate_stream_t *xs =
        cg_xlate_stream_new(CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "prov/m", NULL);
    cap_t c = {0};
    static const upev_t ev[] = {
        {"", CHUNK("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,"
                   "\"id\":\"call_q\",\"type\":\"function\",\"function\":{\"name\":\"grep\","
                   "\"arguments\":\"\"}}]}",
                   "null")},
        {"", CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                   "\"{\\\"pattern\\\":\\\"<div>\\\"}\"}}]}",
                   "null")},
        {"", CHUNK("{}", "\"stop\"")}, /* as some local servers say it */
        {"", "[DONE]"},
    };
    T_EQ_INT(run(xs, ev, CG_ARRAY_LEN(ev), &c), CG_XLATE_END);
    summary_t s;
    sum_chat(&c, &s);
    T_EQ_INT(s.calls, 1);
    T_EQ_STR(s.ids[0], "call_q");
    T_EQ_STR(s.names[0], "grep");
    T_EQ_STR(bstr(&s.args[0]), "{\"pattern\":\"<div>\"}");
    T_EQ_STR(s.finish, "tool_calls");
    sum_free(&s);
    cap_free(&c);
    cg_xlate_stream_free(xs);
}

/* <think> across chunk boundaries, at every boundary, in chat content. */
static void test_chat_think_split_everywhere(void)
{
    const char *text = "<think>plan: `x`</think>\n\nThe answer is `<think>` here.";
    size_t len = strlen(text);
    for (size_t cut = 0; cut <= len; cut++) {
        for (size_t cut2 = cut; cut2 <= len; cut2 += 5) {
            cg_xlate_opts_t o = {0};
            cg_xlate_stream_t *xs =
                cg_xlate_stream_new(CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "prov/m", &o);
            cap_t c = {0};
            size_t cuts[4] = {0, cut, cut2, len};
            const char *role = CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null");
            T_EQ_INT(cg_xlate_stream_feed(xs, NULL, role, strlen(role), cap_emit, &c), 0);
            for (int k = 0; k < 3; k++) {
                cg_buf_t delta = {0}, ev = {0};
                cg_buf_puts(&delta, "{\"content\":");
                cg_json_quote(&delta, text + cuts[k], cuts[k + 1] - cuts[k]);
                cg_buf_puts(&delta, "}");
                cg_buf_printf(&ev,
                              "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                              "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":%s,"
                              "\"finish_reason\":null}]}",
                              delta.data);
                T_EQ_INT(cg_xlate_stream_feed(xs, NULL, ev.data, ev.len, cap_emit, &c), 0);
                cg_buf_free(&delta);
                cg_buf_free(&ev);
            }
            const char *fin = CHUNK("{}", "\"stop\"");
            T_EQ_INT(cg_xlate_stream_feed(xs, NULL, fin, strlen(fin), cap_emit, &c), 0);
            T_EQ_INT(cg_xlate_stream_feed(xs, NULL, "[DONE]", 6, cap_emit, &c), CG_XLATE_END);
            cg_xlate_stream_finish(xs, cap_emit, &c);
            summary_t s;
            sum_chat(&c, &s);
            T_ASSERTF(strcmp(bstr(&s.text), "The answer is `<think>` here.") == 0 &&
                          strcmp(bstr(&s.reasoning), "plan: `x`") == 0,
                      "cut %zu,%zu: text \"%s\" reasoning \"%s\"", cut, cut2, s.text.data,
                      s.reasoning.data);
            T_EQ_STR(s.finish, "stop");
            sum_free(&s);
            cap_free(&c);
            cg_xlate_stream_free(xs);
        }
    }
}

static void test_chat_reasoning_field_names(void)
{
    static const char *const fields[] = {"reasoning", "reasoning_text"};
    for (size_t i = 0; i < 2; i++) {
        cg_xlate_stream_t *xs =
            cg_xlate_stream_new(CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "prov/m", NULL);
        cap_t c = {0};
        char ev[256];
        snprintf(ev, sizeof ev, CHUNK("{\"role\":\"assistant\",\"%s\":\"deep\"}", "null"),
                 fields[i]);
        T_EQ_INT(cg_xlate_stream_feed(xs, "", ev, strlen(ev), cap_emit, &c), 0);
        /* the same text under two names (as some servers send) counts once */
        const char *both = CHUNK("{\"reasoning_content\":\"er\",\"reasoning\":\"er\"}", "null");
        T_EQ_INT(cg_xlate_stream_feed(xs, "", both, strlen(both), cap_emit, &c), 0);
        cg_xlate_stream_finish(xs, cap_emit, &c);
        summary_t s;
        sum_chat(&c, &s);
        T_EQ_STR(bstr(&s.reasoning), "deeper");
        T_EQ_STR(s.finish, "stop");
        sum_free(&s);
        cap_free(&c);
        cg_xlate_stream_free(xs);
    }
}

/* Go servers escape '<': the pass-through must not miss a <think> so written. */
static void test_chat_escaped_think(void)
{
    cg_xlate_stream_t *xs =
        cg_xlate_stream_new(CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "prov/m", NULL);
    cap_t c = {0};
    const char *ev = CHUNK("{\"content\":\"\\u003cthink\\u003er\\u003c/think\\u003eA\"}", "null");
    T_EQ_INT(cg_xlate_stream_feed(xs, "", ev, strlen(ev), cap_emit, &c), 0);
    cg_xlate_stream_finish(xs, cap_emit, &c);
    summary_t s;
    sum_chat(&c, &s);
    T_EQ_STR(bstr(&s.text), "A");
    T_EQ_STR(bstr(&s.reasoning), "r");
    sum_free(&s);
    cap_free(&c);
    cg_xlate_stream_free(xs);
}

/* ---- tool calls as text ---- */

static void feed_text_chunks(cg_xlate_stream_t *xs, const char *const *pieces, size_t n, cap_t *c)
{
    for (size_t k = 0; k < n; k++) {
        cg_buf_t ev = {0};
        cg_buf_puts(&ev, "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                         "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
        cg_json_quote(&ev, pieces[k], strlen(pieces[k]));
        cg_buf_puts(&ev, "},\"finish_reason\":null}]}");
        T_EQ_INT(cg_xlate_stream_feed(xs, NULL, ev.data, ev.len, cap_emit, c), 0);
        cg_buf_free(&ev);
    }
    const char *fin = CHUNK("{}", "\"stop\"");
    T_EQ_INT(cg_xlate_stream_feed(xs, NULL, fin, strlen(fin), cap_emit, c), 0);
    cg_xlate_stream_finish(xs, cap_emit, c);
}

static void test_tool_calls_as_text(void)
{
    static const char *const pieces[] = {
        "<think>maybe <tool_call>{\"name\":\"rm\",\"arguments\":{}}</tool_call></think>",
        "Sure.<tool_",
        "call>\n{\"name\": \"get_time\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool",
        "_call>",
    };
    for (int client = 0; client < 2; client++) {
        for (int opt = 0; opt < 2; opt++) {
            cg_xlate_opts_t o = {.tool_calls_as_text = opt};
            cg_xlate_stream_t *xs =
                cg_xlate_stream_new(client, CG_API_OPENAI_COMPLETIONS, "prov/m", &o);
            cap_t c = {0};
            feed_text_chunks(xs, pieces, CG_ARRAY_LEN(pieces), &c);
            summary_t s;
            summarize(client, &c, &s);
            /* the call inside reasoning is never a call */
            T_EQ_STR(bstr(&s.reasoning),
                     "maybe <tool_call>{\"name\":\"rm\",\"arguments\":{}}</tool_call>");
            if (opt) {
                T_EQ_STR(bstr(&s.text), "Sure.");
                T_EQ_INT(s.calls, 1);
                T_EQ_STR(s.names[0], "get_time");
                T_EQ_STR(bstr(&s.args[0]), "{\"city\":\"Oslo\"}");
                T_ASSERT(strncmp(s.ids[0], "call_", 5) == 0);
                T_EQ_STR(s.finish, client == CG_XAPI_CHAT ? "tool_calls" : "completed");
                T_EQ_STR(cg_xlate_stream_finish_reason(xs), "tool_calls");
            } else {
                T_ASSERT(strstr(bstr(&s.text), "<tool_call>") != NULL);
                T_EQ_INT(s.calls, 0);
            }
            sum_free(&s);
            cap_free(&c);
            cg_xlate_stream_free(xs);
        }
    }
}

/* A text call and then a real one from the upstream: indices stay distinct. */
static void test_text_call_then_real_call(void)
{
    cg_xlate_opts_t o = {.tool_calls_as_text = true};
    cg_xlate_stream_t *xs =
        cg_xlate_stream_new(CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "prov/m", &o);
    cap_t c = {0};
    const char *a =
        CHUNK("{\"content\":\"<tool_call>{\\\"name\\\":\\\"a\\\"}</tool_call>\"}", "null");
    const char *b = CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_b\",\"type\":\"function\","
                          "\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]}",
                          "\"tool_calls\"");
    T_EQ_INT(cg_xlate_stream_feed(xs, NULL, a, strlen(a), cap_emit, &c), 0);
    T_EQ_INT(cg_xlate_stream_feed(xs, NULL, b, strlen(b), cap_emit, &c), 0);
    cg_xlate_stream_finish(xs, cap_emit, &c);
    summary_t s;
    sum_chat(&c, &s);
    T_EQ_INT(s.calls, 2);
    T_EQ_STR(s.names[0], "a");
    T_EQ_STR(s.names[1], "b");
    T_EQ_STR(s.ids[1], "call_b");
    sum_free(&s);
    cap_free(&c);
    cg_xlate_stream_free(xs);
}

/* ------------------------------------------------------------------------ */
/* errors                                                                   */

static void test_upstream_error_events(void)
{
    const struct {
        cg_api_t api;
        const char *event, *data, *want;
    } cases[] = {
        {CG_API_OPENAI_COMPLETIONS, "",
         "{\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}",
         "model overloaded"},
        {CG_API_OPENAI_RESPONSES, "error",
         "{\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\","
         "\"sequence_number\":3}",
         "slow down"},
        {CG_API_OPENAI_RESPONSES, "response.failed",
         "{\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":"
         "{\"code\":\"server_error\",\"message\":\"boom\"}}}",
         "boom"},
        {CG_API_ANTHROPIC_MESSAGES, "error",
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
         "\"Overloaded\"}}",
         "Overloaded"},
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(cases); i++) {
        cg_xlate_stream_t *xs = cg_xlate_stream_new(CG_XAPI_CHAT, cases[i].api, "p/m", NULL);
        cap_t c = {0};
        T_EQ_INT(cg_xlate_stream_feed(xs, cases[i].event, cases[i].data, strlen(cases[i].data),
                                      cap_emit, &c),
                 CG_ERR);
        T_EQ_STR(cg_xlate_stream_error(xs), cases[i].want);
        T_EQ_INT(c.n, 0);
        T_ASSERT(!cg_xlate_stream_started(xs));
        cap_free(&c);
        cg_xlate_stream_free(xs);
    }
}

static void test_malformed_upstream(void)
{
    const struct {
        cg_api_t api;
        const char *event, *data;
    } cases[] = {
        {CG_API_OPENAI_COMPLETIONS, "", "{\"choices\":[{\"delta\":{\"content\":\"x\""},
        {CG_API_OPENAI_COMPLETIONS, "", "not json"},
        {CG_API_OPENAI_COMPLETIONS, "", "[1,2]"},
        {CG_API_OPENAI_COMPLETIONS, "", "{\"choices\":{\"a\":1}}"},
        {CG_API_OPENAI_RESPONSES, "response.output_text.delta", "{\"type\":"},
        {CG_API_OPENAI_RESPONSES, "x", "\"a string\""},
        {CG_API_ANTHROPIC_MESSAGES, "content_block_delta",
         "{\"type\":\"content_block_delta\",\"index\":9,\"delta\":{\"type\":\"input_json_delta\","
         "\"partial_json\":\"{\"}}"},
        {CG_API_ANTHROPIC_MESSAGES, "message_start", "{\"type\":\"message_start\"} trailing"},
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(cases); i++) {
        for (int client = 0; client < 2; client++) {
            cg_xlate_stream_t *xs = cg_xlate_stream_new(client, cases[i].api, "p/m", NULL);
            cap_t c = {0};
            int rc = cg_xlate_stream_feed(xs, cases[i].event, cases[i].data, strlen(cases[i].data),
                                          cap_emit, &c);
            T_ASSERTF(rc == CG_EINVAL, "case %zu client %d: rc %d", i, client, rc);
            T_ASSERT(cg_xlate_stream_error(xs)[0] != '\0');
            cap_free(&c);
            cg_xlate_stream_free(xs);
        }
    }
    /* wrong types inside an otherwise valid event are ignored, not fatal */
    const char *odd = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":42,\"tool_calls\":\"x\"},"
                      "\"finish_reason\":7}],\"usage\":\"none\"}";
    cg_xlate_stream_t *xs =
        cg_xlate_stream_new(CG_XAPI_RESPONSES, CG_API_OPENAI_COMPLETIONS, "p/m", NULL);
    cap_t c = {0};
    T_EQ_INT(cg_xlate_stream_feed(xs, "", odd, strlen(odd), cap_emit, &c), 0);
    cap_free(&c);
    cg_xlate_stream_free(xs);

    char err[256];
    cg_buf_t out = {0};
    T_EQ_INT(cg_xlate_response(CG_XAPI_CHAT, CG_API_ANTHROPIC_MESSAGES, "p/m", "{\"x\":1}", 7, NULL,
                               &out, NULL, err, sizeof err),
             CG_EINVAL);
    T_CONTAINS(err, "content");
    T_EQ_INT(cg_xlate_response(CG_XAPI_RESPONSES, CG_API_OPENAI_COMPLETIONS, "p/m", "{", 1, NULL,
                               &out, NULL, err, sizeof err),
             CG_EINVAL);
    const char *e200 = "{\"error\":{\"message\":\"bad things\",\"type\":\"x\"}}";
    T_EQ_INT(cg_xlate_response(CG_XAPI_CHAT, CG_API_OPENAI_COMPLETIONS, "p/m", e200, strlen(e200),
                               NULL, &out, NULL, err, sizeof err),
             CG_ERR);
    T_EQ_STR(err, "bad things");
    T_EQ_INT(out.len, 0);
    cg_buf_free(&out);
}

static void test_fail_events(void)
{
    for (int client = 0; client < 2; client++) {
        cg_xlate_stream_t *xs = cg_xlate_stream_new(client, CG_API_ANTHROPIC_MESSAGES, "p/m", NULL);
        cap_t c = {0};
        T_EQ_INT(run(xs, anth_full, 9, &c), 0); /* cut after " world" */
        T_ASSERT(cg_xlate_stream_started(xs));
        cg_xlate_stream_fail(xs, "timeout", "stream cut", cap_emit, &c);
        size_t n = c.n;
        cg_xlate_stream_fail(xs, "timeout", "again", cap_emit, &c);
        cg_xlate_stream_finish(xs, cap_emit, &c);
        T_EQ_INT(c.n, n); /* nothing after the failure */
        if (client == CG_XAPI_CHAT) {
            summary_t s;
            sum_chat(&c, &s);
            T_EQ_STR(bstr(&s.text), "Hello world");
            T_EQ_STR(s.error, "timeout:stream cut");
            sum_free(&s);
        } else {
            summary_t s;
            sum_responses(&c, &s);
            T_EQ_STR(s.error, "timeout:stream cut");
            T_EQ_STR(c.names[c.n - 1], "response.failed");
            json_object *j = parse(c.data[c.n - 1]);
            json_object *out = get(get(j, "response"), "output");
            T_EQ_INT(json_object_array_length(out), 2); /* reasoning, message so far */
            json_object_put(j);
            sum_free(&s);
        }
        cap_free(&c);
        cg_xlate_stream_free(xs);
    }
}

/* A Responses client with nothing from the upstream yet: no events at all
 * (the attempt may fail over), and an empty answer is still well-formed. */
static void test_responses_lazy_created(void)
{
    cg_xlate_stream_t *xs =
        cg_xlate_stream_new(CG_XAPI_RESPONSES, CG_API_ANTHROPIC_MESSAGES, "p/m", NULL);
    cap_t c = {0};
    T_EQ_INT(run(xs, anth_full, 1, &c), 0);
    T_EQ_INT(c.n, 0);
    T_ASSERT(!cg_xlate_stream_started(xs));
    cg_xlate_stream_finish(xs, cap_emit, &c);
    summary_t s;
    sum_responses(&c, &s);
    T_EQ_STR(s.finish, "completed");
    T_EQ_INT(c.n, 3);
    sum_free(&s);
    cap_free(&c);
    cg_xlate_stream_free(xs);
}

static void test_length_is_incomplete(void)
{
    static const upev_t ev[] = {
        {"message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1,"
                          "\"output_tokens\":1}}}"},
        {"content_block_start", "{\"type\":\"content_block_start\",\"index\":0,"
                                "\"content_block\":{\"type\":\"text\",\"text\":\"cut\"}}"},
        {"message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                          "\"max_tokens\"},\"usage\":{\"output_tokens\":9}}"},
        {"message_stop", "{\"type\":\"message_stop\"}"},
    };
    for (int client = 0; client < 2; client++) {
        cg_xlate_stream_t *xs = cg_xlate_stream_new(client, CG_API_ANTHROPIC_MESSAGES, "p/m", NULL);
        cap_t c = {0};
        T_EQ_INT(run(xs, ev, CG_ARRAY_LEN(ev), &c), CG_XLATE_END);
        summary_t s;
        summarize(client, &c, &s);
        T_EQ_STR(bstr(&s.text), "cut");
        T_EQ_STR(s.finish, client == CG_XAPI_CHAT ? "length" : "incomplete");
        sum_free(&s);
        cap_free(&c);
        cg_xlate_stream_free(xs);
    }
}

static void test_unsupported_api(void)
{
    T_ASSERT(cg_xlate_stream_new(CG_XAPI_CHAT, CG_API_UNSUPPORTED, "p/m", NULL) == NULL);
    char err[64];
    cg_buf_t out = {0};
    T_EQ_INT(cg_xlate_response(CG_XAPI_CHAT, CG_API_UNSUPPORTED, "p/m", "{}", 2, NULL, &out, NULL,
                               err, sizeof err),
             CG_ENOENT);
    T_EQ_STR(cg_xapi_name(CG_XAPI_RESPONSES), "responses");
}

int main(void)
{
    T_RUN(test_matrix_stream);
    T_RUN(test_matrix_omit_reasoning);
    T_RUN(test_matrix_nonstream);
    T_RUN(test_chat_passthrough_verbatim);
    T_RUN(test_chat_passthrough_decision);
    T_RUN(test_chat_tool_call_pieces_mixed);
    T_RUN(test_chat_think_split_everywhere);
    T_RUN(test_chat_reasoning_field_names);
    T_RUN(test_chat_escaped_think);
    T_RUN(test_tool_calls_as_text);
    T_RUN(test_text_call_then_real_call);
    T_RUN(test_upstream_error_events);
    T_RUN(test_malformed_upstream);
    T_RUN(test_fail_events);
    T_RUN(test_responses_lazy_created);
    T_RUN(test_length_is_incomplete);
    T_RUN(test_unsupported_api);
    T_DONE();
}
