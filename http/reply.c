/*
 * reply.c — folding chat-completions replies into one assistant message.
 */
#include "http/reply.h"

#include <json.h>

#define MAX_TOOL_CALLS 64

typedef struct tool_call {
    cg_buf_t id, name, args;
    bool used;
} tool_call_t;

struct cg_reply {
    cg_buf_t content;
    cg_buf_t reasoning;
    tool_call_t calls[MAX_TOOL_CALLS];
    size_t n_calls; /* highest index used + 1 */
    bool any_content;
};

cg_reply_t *cg_reply_new(void)
{
    return cg_calloc(1, sizeof(cg_reply_t));
}

void cg_reply_free(cg_reply_t *r)
{
    if (!r)
        return;
    cg_buf_free(&r->content);
    cg_buf_free(&r->reasoning);
    for (size_t i = 0; i < r->n_calls; i++) {
        cg_buf_free(&r->calls[i].id);
        cg_buf_free(&r->calls[i].name);
        cg_buf_free(&r->calls[i].args);
    }
    cg_free(r);
}

static json_object *parse(const char *json, size_t len)
{
    json_tokener *tok = json_tokener_new();
    /* len + 1 would read past the buffer; json-c needs the end marked, so
     * parse then finish with an empty piece. */
    json_object *o = json_tokener_parse_ex(tok, json, (int)len);
    if (!o && json_tokener_get_error(tok) == json_tokener_continue)
        o = json_tokener_parse_ex(tok, "", 1);
    json_tokener_free(tok);
    return o;
}

static void append_str(cg_buf_t *b, json_object *o)
{
    if (o && json_object_is_type(o, json_type_string))
        cg_buf_append(b, json_object_get_string(o), (size_t)json_object_get_string_len(o));
}

void cg_reply_feed_chunk(cg_reply_t *r, const char *json, size_t len)
{
    if (len > INT32_MAX)
        return;
    json_object *o = parse(json, len);
    if (!o)
        return;
    json_object *choices, *choice, *delta;
    if (json_object_object_get_ex(o, "choices", &choices) &&
        json_object_is_type(choices, json_type_array) && json_object_array_length(choices) > 0 &&
        (choice = json_object_array_get_idx(choices, 0)) &&
        json_object_object_get_ex(choice, "delta", &delta)) {
        json_object *v;
        if (json_object_object_get_ex(delta, "content", &v) && v) {
            append_str(&r->content, v);
            r->any_content = true;
        }
        if (json_object_object_get_ex(delta, "reasoning_content", &v))
            append_str(&r->reasoning, v);
        json_object *tcs;
        if (json_object_object_get_ex(delta, "tool_calls", &tcs) &&
            json_object_is_type(tcs, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(tcs); i++) {
                json_object *tc = json_object_array_get_idx(tcs, i), *idx, *fn;
                int64_t k = json_object_object_get_ex(tc, "index", &idx)
                                ? json_object_get_int64(idx)
                                : (int64_t)i;
                if (k < 0 || k >= MAX_TOOL_CALLS)
                    continue;
                tool_call_t *c = &r->calls[k];
                c->used = true;
                if ((size_t)k + 1 > r->n_calls)
                    r->n_calls = (size_t)k + 1;
                if (json_object_object_get_ex(tc, "id", &v))
                    append_str(&c->id, v);
                if (json_object_object_get_ex(tc, "function", &fn)) {
                    if (json_object_object_get_ex(fn, "name", &v))
                        append_str(&c->name, v);
                    if (json_object_object_get_ex(fn, "arguments", &v))
                        append_str(&c->args, v);
                }
            }
        }
    }
    json_object_put(o);
}

void cg_reply_message(const cg_reply_t *r, cg_buf_t *out)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    bool calls = false;
    for (size_t i = 0; i < r->n_calls; i++)
        calls = calls || r->calls[i].used;
    json_object_object_add(m, "content",
                           r->any_content || !calls
                               ? json_object_new_string_len(r->content.data ? r->content.data : "",
                                                            (int)r->content.len)
                               : NULL);
    if (r->reasoning.len)
        json_object_object_add(
            m, "reasoning_content",
            json_object_new_string_len(r->reasoning.data, (int)r->reasoning.len));
    if (calls) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < r->n_calls; i++) {
            const tool_call_t *c = &r->calls[i];
            if (!c->used)
                continue;
            json_object *tc = json_object_new_object(), *fn = json_object_new_object();
            json_object_object_add(
                tc, "id", json_object_new_string_len(c->id.data ? c->id.data : "", (int)c->id.len));
            json_object_object_add(tc, "type", json_object_new_string("function"));
            json_object_object_add(
                fn, "name",
                json_object_new_string_len(c->name.data ? c->name.data : "", (int)c->name.len));
            json_object_object_add(
                fn, "arguments",
                json_object_new_string_len(c->args.data ? c->args.data : "", (int)c->args.len));
            json_object_object_add(tc, "function", fn);
            json_object_array_add(arr, tc);
        }
        json_object_object_add(m, "tool_calls", arr);
    }
    cg_buf_puts(out, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(m);
}

bool cg_reply_from_body(const char *json, size_t len, cg_buf_t *out)
{
    if (len > INT32_MAX)
        return false;
    json_object *o = parse(json, len);
    if (!o)
        return false;
    bool ok = false;
    json_object *choices, *choice, *msg;
    if (json_object_object_get_ex(o, "choices", &choices) &&
        json_object_is_type(choices, json_type_array) && json_object_array_length(choices) > 0 &&
        (choice = json_object_array_get_idx(choices, 0)) &&
        json_object_object_get_ex(choice, "message", &msg) &&
        json_object_is_type(msg, json_type_object)) {
        cg_buf_puts(out, json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
        ok = true;
    }
    json_object_put(o);
    return ok;
}

static void add_call(cg_reply_t *r, json_object *item)
{
    json_object *v;
    if (r->n_calls >= MAX_TOOL_CALLS)
        return;
    tool_call_t *c = &r->calls[r->n_calls++];
    c->used = true;
    if (json_object_object_get_ex(item, "call_id", &v))
        append_str(&c->id, v);
    if (json_object_object_get_ex(item, "name", &v))
        append_str(&c->name, v);
    if (json_object_object_get_ex(item, "arguments", &v))
        append_str(&c->args, v);
}

void cg_reply_feed_event(cg_reply_t *r, const char *event, const char *json, size_t len)
{
    if (!event || len > INT32_MAX)
        return;
    bool delta = strcmp(event, "response.output_text.delta") == 0;
    bool item_done = strcmp(event, "response.output_item.done") == 0;
    if (!delta && !item_done)
        return;
    json_object *o = parse(json, len);
    if (!o)
        return;
    json_object *v, *item;
    if (delta && json_object_object_get_ex(o, "delta", &v)) {
        append_str(&r->content, v);
        r->any_content = true;
    } else if (item_done && json_object_object_get_ex(o, "item", &item) &&
               json_object_object_get_ex(item, "type", &v) &&
               strcmp(json_object_get_string(v), "function_call") == 0) {
        add_call(r, item);
    }
    json_object_put(o);
}

bool cg_reply_from_responses_body(const char *json, size_t len, cg_buf_t *out)
{
    if (len > INT32_MAX)
        return false;
    json_object *o = parse(json, len);
    if (!o)
        return false;
    json_object *output;
    bool ok = false;
    if (json_object_object_get_ex(o, "output", &output) &&
        json_object_is_type(output, json_type_array)) {
        cg_reply_t *r = cg_reply_new();
        for (size_t i = 0; i < json_object_array_length(output); i++) {
            json_object *item = json_object_array_get_idx(output, i), *type, *content;
            if (!json_object_object_get_ex(item, "type", &type))
                continue;
            const char *t = json_object_get_string(type);
            if (strcmp(t, "function_call") == 0) {
                add_call(r, item);
            } else if (strcmp(t, "message") == 0 &&
                       json_object_object_get_ex(item, "content", &content) &&
                       json_object_is_type(content, json_type_array)) {
                for (size_t j = 0; j < json_object_array_length(content); j++) {
                    json_object *part = json_object_array_get_idx(content, j), *pt, *text;
                    if (json_object_object_get_ex(part, "type", &pt) &&
                        strcmp(json_object_get_string(pt), "output_text") == 0 &&
                        json_object_object_get_ex(part, "text", &text)) {
                        append_str(&r->content, text);
                        r->any_content = true;
                    }
                }
            }
        }
        cg_reply_message(r, out);
        cg_reply_free(r);
        ok = true;
    }
    json_object_put(o);
    return ok;
}

bool cg_reply_chat_to_items(const char *json, size_t len, cg_buf_t *out)
{
    if (len > INT32_MAX)
        return false;
    json_object *in = parse(json, len);
    if (!in || !json_object_is_type(in, json_type_array)) {
        json_object_put(in);
        return false;
    }
    json_object *items = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(in); i++) {
        json_object *m = json_object_array_get_idx(in, i), *role, *v, *calls;
        if (!json_object_object_get_ex(m, "role", &role)) {
            json_object_array_add(items, json_object_get(m)); /* already an item */
            continue;
        }
        const char *rl = json_object_get_string(role);
        if (strcmp(rl, "tool") == 0) {
            json_object *it = json_object_new_object();
            json_object_object_add(it, "type", json_object_new_string("function_call_output"));
            if (json_object_object_get_ex(m, "tool_call_id", &v))
                json_object_object_add(it, "call_id", json_object_get(v));
            json_object_object_add(it, "output",
                                   json_object_object_get_ex(m, "content", &v)
                                       ? json_object_get(v)
                                       : json_object_new_string(""));
            json_object_array_add(items, it);
            continue;
        }
        json_object *msg = json_object_new_object();
        json_object_object_add(msg, "role", json_object_new_string(rl));
        json_object *content = NULL;
        json_object_object_get_ex(m, "content", &content);
        json_object_object_add(msg, "content",
                               content ? json_object_get(content) : json_object_new_string(""));
        if (content || strcmp(rl, "assistant") != 0)
            json_object_array_add(items, msg);
        else
            json_object_put(msg);
        if (strcmp(rl, "assistant") == 0 && json_object_object_get_ex(m, "tool_calls", &calls) &&
            json_object_is_type(calls, json_type_array)) {
            for (size_t j = 0; j < json_object_array_length(calls); j++) {
                json_object *tc = json_object_array_get_idx(calls, j), *fn, *x;
                json_object *it = json_object_new_object();
                json_object_object_add(it, "type", json_object_new_string("function_call"));
                if (json_object_object_get_ex(tc, "id", &x))
                    json_object_object_add(it, "call_id", json_object_get(x));
                if (json_object_object_get_ex(tc, "function", &fn)) {
                    if (json_object_object_get_ex(fn, "name", &x))
                        json_object_object_add(it, "name", json_object_get(x));
                    if (json_object_object_get_ex(fn, "arguments", &x))
                        json_object_object_add(it, "arguments", json_object_get(x));
                }
                json_object_array_add(items, it);
            }
        }
    }
    cg_buf_puts(out, json_object_to_json_string_ext(items, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(items);
    json_object_put(in);
    return true;
}
