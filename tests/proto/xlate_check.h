/*
 * xlate_check.h — helpers the translation tests share: capture what a
 * cg_xlate stream emits, and read it back as a client would (chat chunks or
 * Responses events, checked against their contracts on the way) into one
 * summary: text, reasoning, tool calls, finish, usage, error.
 */
#ifndef CG_TESTS_XLATE_CHECK_H
#define CG_TESTS_XLATE_CHECK_H

#include "proto/jscan.h"
#include "proto/translate.h"
#include "tests/t.h"

#include <json.h>

/* ------------------------------------------------------------------------ */
/* capture                                                                  */

typedef struct cap {
    char **names; /* NULL entries for chat */
    char **data;
    size_t n, cap;
} cap_t;

static void cap_emit(void *ud, const char *event, const char *data, size_t len)
{
    cap_t *c = ud;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->names = cg_realloc(c->names, c->cap * sizeof *c->names);
        c->data = cg_realloc(c->data, c->cap * sizeof *c->data);
    }
    c->names[c->n] = event ? cg_strdup(event) : NULL;
    c->data[c->n] = cg_strndup(data, len);
    c->n++;
}

static void cap_free(cap_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        cg_free(c->names[i]);
        cg_free(c->data[i]);
    }
    cg_free(c->names);
    cg_free(c->data);
    memset(c, 0, sizeof *c);
}

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    T_ASSERTF(o != NULL, "not JSON: %s", s);
    return o;
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

/* What a client got, whatever the API. */
typedef struct summary {
    cg_buf_t text, reasoning;
    char ids[4][64], names[4][64];
    cg_buf_t args[4];
    int calls;
    char finish[32];
    int64_t in, out, cached;
    bool usage;
    int usage_chunks;
    char error[256];
} summary_t;

static void sum_free(summary_t *s)
{
    cg_buf_free(&s->text);
    cg_buf_free(&s->reasoning);
    for (int i = 0; i < 4; i++)
        cg_buf_free(&s->args[i]);
}

static const char *bstr(cg_buf_t *b)
{
    cg_buf_append(b, "", 1);
    b->len--;
    return b->data;
}

/* A chat stream: chunks in order. */
static void sum_chat(const cap_t *c, summary_t *s)
{
    memset(s, 0, sizeof *s);
    s->in = s->out = s->cached = -1;
    bool role = false;
    for (size_t i = 0; i < c->n; i++) {
        T_ASSERT(c->names[i] == NULL);
        json_object *o = parse(c->data[i]);
        json_object *e = get(o, "error");
        if (e) {
            snprintf(s->error, sizeof s->error, "%s:%s", gets(e, "code"), gets(e, "message"));
            json_object_put(o);
            continue;
        }
        T_EQ_STR(gets(o, "object"), "chat.completion.chunk");
        T_ASSERT(gets(o, "id") && gets(o, "model"));
        json_object *u = get(o, "usage");
        if (u && json_object_is_type(u, json_type_object)) {
            s->usage = true;
            s->usage_chunks++;
            s->in = geti(u, "prompt_tokens");
            s->out = geti(u, "completion_tokens");
            T_EQ_INT(geti(u, "total_tokens"), s->in + s->out);
            s->cached = geti(get(u, "prompt_tokens_details"), "cached_tokens");
        }
        json_object *ch = get(o, "choices");
        T_ASSERT(ch && json_object_is_type(ch, json_type_array));
        if (json_object_array_length(ch) > 0) {
            T_ASSERTF(!s->finish[0], "a chunk after the finish chunk: %s", c->data[i]);
            json_object *c0 = json_object_array_get_idx(ch, 0);
            json_object *d = get(c0, "delta");
            if (gets(d, "role"))
                role = true;
            T_ASSERTF(role, "first delta without role: %s", c->data[i]);
            if (gets(d, "content"))
                cg_buf_puts(&s->text, gets(d, "content"));
            if (gets(d, "reasoning_content"))
                cg_buf_puts(&s->reasoning, gets(d, "reasoning_content"));
            T_ASSERT(!get(d, "reasoning") && !get(d, "reasoning_text"));
            json_object *tcs = get(d, "tool_calls");
            for (size_t k = 0; tcs && k < json_object_array_length(tcs); k++) {
                json_object *tc = json_object_array_get_idx(tcs, k);
                int64_t idx = geti(tc, "index");
                T_ASSERT(idx >= 0 && idx < 4);
                if (gets(tc, "id")) {
                    T_EQ_INT(idx, s->calls);
                    s->calls++;
                    snprintf(s->ids[idx], 64, "%s", gets(tc, "id"));
                    snprintf(s->names[idx], 64, "%s", gets(get(tc, "function"), "name"));
                }
                const char *a = gets(get(tc, "function"), "arguments");
                if (a)
                    cg_buf_puts(&s->args[idx], a);
            }
            if (gets(c0, "finish_reason"))
                snprintf(s->finish, sizeof s->finish, "%s", gets(c0, "finish_reason"));
        }
        json_object_put(o);
    }
}

/* A Responses stream: names, sequence numbers, item lifecycle, and the final
 * response must agree with the deltas. */
static void sum_responses(const cap_t *c, summary_t *s)
{
    memset(s, 0, sizeof *s);
    s->in = s->out = s->cached = -1;
    enum { MAXI = 16 };
    int state[MAXI] = {0}; /* 0 none, 1 added, 2 done */
    char ids[MAXI][96] = {{0}};
    char types[MAXI][32] = {{0}};
    int next_index = 0;
    T_ASSERT(c->n >= 3);
    T_EQ_STR(c->names[0], "response.created");
    T_EQ_STR(c->names[1], "response.in_progress");
    const char *rid = NULL;
    for (size_t i = 0; i < c->n; i++) {
        json_object *o = parse(c->data[i]);
        T_ASSERT(c->names[i] != NULL);
        T_EQ_STR(gets(o, "type"), c->names[i]);
        T_EQ_INT(geti(o, "sequence_number"), (int64_t)i);
        const char *t = c->names[i];
        json_object *r = get(o, "response");
        if (r) {
            T_EQ_STR(gets(r, "object"), "response");
            if (!rid)
                rid = cg_strdup(gets(r, "id"));
            T_EQ_STR(gets(r, "id"), rid);
        }
        if (strcmp(t, "response.output_item.added") == 0) {
            int64_t idx = geti(o, "output_index");
            T_EQ_INT(idx, next_index);
            next_index++;
            json_object *it = get(o, "item");
            snprintf(ids[idx], sizeof ids[idx], "%s", gets(it, "id"));
            snprintf(types[idx], sizeof types[idx], "%s", gets(it, "type"));
            state[idx] = 1;
            if (strcmp(types[idx], "function_call") == 0) {
                T_ASSERT(s->calls < 4);
                snprintf(s->ids[s->calls], 64, "%s", gets(it, "call_id"));
                snprintf(s->names[s->calls], 64, "%s", gets(it, "name"));
                s->calls++;
            }
        } else if (strcmp(t, "response.output_item.done") == 0) {
            int64_t idx = geti(o, "output_index");
            T_EQ_INT(state[idx], 1);
            T_EQ_STR(gets(get(o, "item"), "id"), ids[idx]);
            state[idx] = 2;
        } else if (get(o, "item_id")) {
            int64_t idx = geti(o, "output_index");
            T_ASSERT(idx >= 0 && idx < MAXI);
            T_EQ_INT(state[idx], 1);
            T_EQ_STR(gets(o, "item_id"), ids[idx]);
            const char *d = gets(o, "delta");
            if (strcmp(t, "response.output_text.delta") == 0) {
                T_EQ_STR(types[idx], "message");
                cg_buf_puts(&s->text, d);
            } else if (strcmp(t, "response.reasoning_summary_text.delta") == 0) {
                T_EQ_STR(types[idx], "reasoning");
                cg_buf_puts(&s->reasoning, d);
            } else if (strcmp(t, "response.function_call_arguments.delta") == 0) {
                T_EQ_STR(types[idx], "function_call");
                int k = 0;
                for (int j = 0; j < idx; j++)
                    k += strcmp(types[j], "function_call") == 0;
                cg_buf_puts(&s->args[k], d);
            }
        }
        if (strcmp(t, "response.completed") == 0 || strcmp(t, "response.incomplete") == 0) {
            T_ASSERTF(i == c->n - 1, "events after %s", t);
            for (int k = 0; k < next_index; k++)
                T_EQ_INT(state[k], 2);
            snprintf(s->finish, sizeof s->finish, "%s", gets(r, "status"));
            json_object *out = get(r, "output");
            T_EQ_INT(json_object_array_length(out), next_index);
            cg_buf_t text = {0};
            for (int k = 0; k < next_index; k++) {
                json_object *it = json_object_array_get_idx(out, k);
                T_EQ_STR(gets(it, "id"), ids[k]);
                if (strcmp(types[k], "message") == 0)
                    cg_buf_puts(&text,
                                gets(json_object_array_get_idx(get(it, "content"), 0), "text"));
            }
            T_EQ_STR(bstr(&text), bstr(&s->text));
            cg_buf_free(&text);
            json_object *u = get(r, "usage");
            if (u && json_object_is_type(u, json_type_object)) {
                s->usage = true;
                s->in = geti(u, "input_tokens");
                s->out = geti(u, "output_tokens");
                s->cached = geti(get(u, "input_tokens_details"), "cached_tokens");
            }
        }
        if (strcmp(t, "response.failed") == 0) {
            T_ASSERT(i == c->n - 1);
            json_object *e = get(r, "error");
            snprintf(s->error, sizeof s->error, "%s:%s", gets(e, "code"), gets(e, "message"));
            T_EQ_STR(gets(r, "status"), "failed");
        }
        json_object_put(o);
    }
    cg_free((void *)rid);
}

static void summarize(cg_xapi_t client, const cap_t *c, summary_t *s)
{
    if (client == CG_XAPI_CHAT)
        sum_chat(c, s);
    else
        sum_responses(c, s);
}

/* A non-stream object (chat.completion or response) read the same way. */
__attribute__((unused)) static void sum_object(cg_xapi_t client, const char *body, summary_t *s)
{
    memset(s, 0, sizeof *s);
    s->in = s->out = s->cached = -1;
    json_object *o = parse(body);
    if (client == CG_XAPI_CHAT) {
        T_EQ_STR(gets(o, "object"), "chat.completion");
        json_object *c0 = json_object_array_get_idx(get(o, "choices"), 0);
        json_object *m = get(c0, "message");
        if (gets(m, "content"))
            cg_buf_puts(&s->text, gets(m, "content"));
        if (gets(m, "reasoning_content"))
            cg_buf_puts(&s->reasoning, gets(m, "reasoning_content"));
        json_object *tcs = get(m, "tool_calls");
        for (size_t k = 0; tcs && k < json_object_array_length(tcs) && k < 4; k++) {
            json_object *tc = json_object_array_get_idx(tcs, k);
            snprintf(s->ids[k], 64, "%s", gets(tc, "id"));
            snprintf(s->names[k], 64, "%s", gets(get(tc, "function"), "name"));
            cg_buf_puts(&s->args[k], gets(get(tc, "function"), "arguments"));
            s->calls++;
        }
        snprintf(s->finish, sizeof s->finish, "%s", gets(c0, "finish_reason"));
        json_object *u = get(o, "usage");
        if (u) {
            s->usage = true;
            s->in = geti(u, "prompt_tokens");
            s->out = geti(u, "completion_tokens");
        }
    } else {
        T_EQ_STR(gets(o, "object"), "response");
        snprintf(s->finish, sizeof s->finish, "%s", gets(o, "status"));
        json_object *out = get(o, "output");
        for (size_t i = 0; i < json_object_array_length(out); i++) {
            json_object *it = json_object_array_get_idx(out, i);
            const char *t = gets(it, "type");
            T_ASSERT(gets(it, "id") != NULL);
            if (strcmp(t, "message") == 0) {
                cg_buf_puts(&s->text,
                            gets(json_object_array_get_idx(get(it, "content"), 0), "text"));
            } else if (strcmp(t, "reasoning") == 0) {
                cg_buf_puts(&s->reasoning,
                            gets(json_object_array_get_idx(get(it, "summary"), 0), "text"));
            } else if (strcmp(t, "function_call") == 0 && s->calls < 4) {
                snprintf(s->ids[s->calls], 64, "%s", gets(it, "call_id"));
                snprintf(s->names[s->calls], 64, "%s", gets(it, "name"));
                cg_buf_puts(&s->args[s->calls], gets(it, "arguments"));
                s->calls++;
            }
        }
        json_object *u = get(o, "usage");
        if (u && json_object_is_type(u, json_type_object)) {
            s->usage = true;
            s->in = geti(u, "input_tokens");
            s->out = geti(u, "output_tokens");
        }
    }
    json_object_put(o);
}

#endif
