/*
 * xlate_dec.c — provider-side decoders: one upstream event (or a whole
 * non-stream body) to canonical events.
 *
 * DESIGN
 * Each decoder reads only the fields it knows and ignores the rest, so a
 * server that adds fields (or sends lifecycle events clawgate has no use
 * for) keeps working; a field of the wrong type is treated as absent. The
 * upstream's tool indices (chat `index`, Responses `output_index`,
 * Anthropic content block `index`) are keys mapped to canonical indices in
 * order of first appearance.
 *
 * Reasoning comes as `reasoning_content`, `reasoning` or `reasoning_text`
 * (chat; the first one present wins, since some servers send the same text
 * under two names), Responses reasoning summary or reasoning text deltas,
 * or Anthropic thinking blocks. Signatures and redacted thinking are
 * dropped: they only mean something to the provider that made them.
 *
 * Usage: `input` counts every prompt token. Anthropic reports uncached
 * input, cache reads and cache writes apart; they are added up here.
 */
#include "proto/xlate_int.h"

static int ev_text(xs_t *xs, xev_kind_t k, const char *s, size_t n)
{
    if (!s || n == 0)
        return 0;
    xev_t ev = {.kind = k, .s = s, .n = n};
    return cg_xl_xs_event(xs, &ev);
}

static int ev_args(xs_t *xs, int tool, const char *s, size_t n)
{
    if (!s || n == 0)
        return 0;
    xev_t ev = {.kind = XEV_TOOL_ARGS, .tool = tool, .s = s, .n = n};
    return cg_xl_xs_event(xs, &ev);
}

static int ev_finish(xs_t *xs, const char *reason)
{
    xev_t ev = {.kind = XEV_FINISH, .finish = reason};
    return cg_xl_xs_event(xs, &ev);
}

static int ev_error(xs_t *xs, json_object *e, const char *fallback)
{
    size_t ml = 0;
    const char *msg = NULL, *code = NULL;
    if (jis(e, json_type_string)) {
        msg = json_object_get_string(e);
        ml = (size_t)json_object_get_string_len(e);
    } else {
        msg = jstr(e, "message", &ml);
        code = jstr(e, "code", NULL);
        if (!code)
            code = jstr(e, "type", NULL);
    }
    if (!msg) {
        msg = fallback;
        ml = strlen(fallback);
    }
    xev_t ev = {.kind = XEV_ERROR, .s = msg, .n = ml, .code = code};
    return cg_xl_xs_event(xs, &ev);
}

/* A JSON value as text: strings as they are, anything else serialised. */
static void value_text(json_object *v, cg_buf_t *out)
{
    if (jis(v, json_type_string))
        cg_buf_append(out, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    else if (v)
        cg_xl_xjson_append(out, v);
}

/* ------------------------------------------------------------------------ */
/* openai-completions                                                       */

static int chat_usage(xs_t *xs, json_object *u, bool usage_chunk)
{
    if (!jis(u, json_type_object))
        return 0;
    xev_t ev = {.kind = XEV_USAGE, .usage_chunk = usage_chunk};
    ev.u.input = jint(u, "prompt_tokens", -1);
    ev.u.output = jint(u, "completion_tokens", -1);
    ev.u.cache_read = jint(jget(u, "prompt_tokens_details"), "cached_tokens", -1);
    ev.u.cache_write = -1;
    ev.u.reasoning = jint(jget(u, "completion_tokens_details"), "reasoning_tokens", -1);
    return cg_xl_xs_event(xs, &ev);
}

/* Text of a chat content value: a string, or the text parts of a list. */
static int chat_content(xs_t *xs, json_object *c)
{
    if (jis(c, json_type_string))
        return ev_text(xs, XEV_TEXT, json_object_get_string(c),
                       (size_t)json_object_get_string_len(c));
    if (!jis(c, json_type_array))
        return 0;
    size_t n = json_object_array_length(c);
    for (size_t i = 0; i < n; i++) {
        size_t l = 0;
        const char *t = jstr(json_object_array_get_idx(c, i), "text", &l);
        int rc = ev_text(xs, XEV_TEXT, t, l);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int chat_tool_calls(xs_t *xs, json_object *tcs)
{
    size_t n = json_object_array_length(tcs);
    for (size_t k = 0; k < n; k++) {
        json_object *tc = json_object_array_get_idx(tcs, k);
        if (!jis(tc, json_type_object))
            continue;
        json_object *fn = jget(tc, "function");
        int64_t key = jint(tc, "index", (int64_t)k);
        int t = cg_xl_xs_tool_find(xs, key);
        int rc = 0;
        if (t < 0) {
            size_t il = 0, nl = 0;
            const char *id = jstr(tc, "id", &il);
            const char *name = jstr(fn, "name", &nl);
            rc = cg_xl_xs_tool_start(xs, key, id, il, name, nl, &t);
            if (rc < 0)
                return rc;
        }
        json_object *a = jget(fn, "arguments");
        if (jis(a, json_type_string)) {
            rc = ev_args(xs, t, json_object_get_string(a), (size_t)json_object_get_string_len(a));
        } else if (a && !jis(a, json_type_null)) {
            /* Some servers send the arguments as an object. */
            cg_buf_t b = {0};
            cg_xl_xjson_append(&b, a);
            rc = ev_args(xs, t, b.data, b.len);
            cg_buf_free(&b);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void chat_identity(xs_t *xs, json_object *root)
{
    if (xs->up_id)
        return;
    size_t l = 0;
    const char *s = jstr(root, "id", &l);
    xs->up_id = s ? cg_strndup(s, l) : cg_strdup(xs->resp_id);
    s = jstr(root, "model", &l);
    if (s)
        xs->up_model = cg_strndup(s, l);
    int64_t c = jint(root, "created", 0);
    xs->up_created = c > 0 ? c : xs->created;
}

int cg_xl_dec_chat(xs_t *xs, json_object *root, bool body)
{
    json_object *err = jget(root, "error");
    json_object *choices = jget(root, "choices");
    if (err && !jis(err, json_type_null) && !choices)
        return ev_error(xs, err, "upstream sent an error");
    chat_identity(xs, root);
    bool empty = true;
    const char *finish = NULL;
    if (jis(choices, json_type_array)) {
        size_t n = json_object_array_length(choices);
        for (size_t i = 0; i < n; i++) {
            json_object *c = json_object_array_get_idx(choices, i);
            if (!jis(c, json_type_object) || jint(c, "index", 0) != 0)
                continue; /* one answer per request: choice 0 */
            empty = false;
            json_object *d = jget(c, body ? "message" : "delta");
            int rc = 0;
            if (jis(d, json_type_object)) {
                static const char *const rkeys[] = {"reasoning_content", "reasoning",
                                                    "reasoning_text"};
                for (size_t k = 0; k < CG_ARRAY_LEN(rkeys); k++) {
                    size_t l = 0;
                    const char *r = jstr(d, rkeys[k], &l);
                    if (r && l) {
                        rc = ev_text(xs, XEV_REASONING, r, l);
                        break;
                    }
                }
                if (rc == 0)
                    rc = chat_content(xs, jget(d, "content"));
                if (rc == 0) {
                    size_t l = 0;
                    const char *rf = jstr(d, "refusal", &l);
                    rc = ev_text(xs, XEV_TEXT, rf, l);
                }
                json_object *tcs = jget(d, "tool_calls");
                if (rc == 0 && jis(tcs, json_type_array))
                    rc = chat_tool_calls(xs, tcs);
            }
            if (rc < 0)
                return rc;
            size_t fl = 0;
            const char *f = jstr(c, "finish_reason", &fl);
            if (f)
                finish = cg_xl_xs_norm_finish(f, fl);
            break;
        }
    } else if (choices && !jis(choices, json_type_null)) {
        cg_xl_xs_seterr(xs, "upstream chunk has `choices` that is not an array");
        return CG_EINVAL;
    } else if (body) {
        cg_xl_xs_seterr(xs, "upstream reply has no `choices`");
        return CG_EINVAL;
    }
    int rc = chat_usage(xs, jget(root, "usage"), empty && !body);
    if (rc == 0 && finish)
        rc = ev_finish(xs, finish);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* openai-responses                                                         */

static int resp_usage(xs_t *xs, json_object *u)
{
    if (!jis(u, json_type_object))
        return 0;
    xev_t ev = {.kind = XEV_USAGE};
    ev.u.input = jint(u, "input_tokens", -1);
    ev.u.output = jint(u, "output_tokens", -1);
    ev.u.cache_read = jint(jget(u, "input_tokens_details"), "cached_tokens", -1);
    ev.u.cache_write = -1;
    ev.u.reasoning = jint(jget(u, "output_tokens_details"), "reasoning_tokens", -1);
    return cg_xl_xs_event(xs, &ev);
}

/* A function_call item: start the tool if new, and pass its arguments on
 * when no delta did. */
static int resp_call_item(xs_t *xs, int64_t key, json_object *item)
{
    int t = cg_xl_xs_tool_find(xs, key);
    if (t < 0) {
        size_t il = 0, nl = 0;
        const char *id = jstr(item, "call_id", &il);
        if (!id)
            id = jstr(item, "id", &il);
        const char *name = jstr(item, "name", &nl);
        int rc = cg_xl_xs_tool_start(xs, key, id, il, name, nl, &t);
        if (rc < 0)
            return rc;
    }
    size_t al = 0;
    const char *a = jstr(item, "arguments", &al);
    if (xs->tools[t].args_len == 0)
        return ev_args(xs, t, a, al);
    return 0;
}

/* The end of a response (completed, incomplete, or a non-stream body). */
static int resp_end(xs_t *xs, json_object *r, const char *status)
{
    int rc = resp_usage(xs, jget(r, "usage"));
    if (rc < 0)
        return rc;
    const char *finish = "stop";
    if (status && strcmp(status, "incomplete") == 0) {
        size_t l = 0;
        const char *why = jstr(jget(r, "incomplete_details"), "reason", &l);
        finish =
            why && l == 14 && memcmp(why, "content_filter", 14) == 0 ? "content_filter" : "length";
    }
    return ev_finish(xs, finish);
}

int cg_xl_dec_responses(xs_t *xs, const char *event, json_object *root)
{
    size_t tl = 0;
    const char *type = jstr(root, "type", &tl);
    if (!type) {
        type = event;
        tl = strlen(event);
    }
#define IS(lit) (tl == sizeof(lit) - 1 && memcmp(type, lit, tl) == 0)
    size_t l = 0;
    if (IS("response.output_text.delta") || IS("response.refusal.delta")) {
        const char *d = jstr(root, "delta", &l);
        return ev_text(xs, XEV_TEXT, d, l);
    }
    if (IS("response.reasoning_summary_text.delta") || IS("response.reasoning_text.delta")) {
        /* Summary parts of one item are paragraphs: keep them apart. */
        if (IS("response.reasoning_summary_text.delta")) {
            uint64_t key = (uint64_t)jint(root, "output_index", 0) * 4096u +
                           (uint64_t)jint(root, "summary_index", 0);
            if (xs->r_summary_seen && key != xs->r_summary_key) {
                int rc = ev_text(xs, XEV_REASONING, "\n\n", 2);
                if (rc < 0)
                    return rc;
            }
            xs->r_summary_seen = true;
            xs->r_summary_key = key;
        }
        const char *d = jstr(root, "delta", &l);
        return ev_text(xs, XEV_REASONING, d, l);
    }
    if (IS("response.output_item.added") || IS("response.output_item.done")) {
        json_object *item = jget(root, "item");
        size_t il = 0;
        const char *it = jstr(item, "type", &il);
        if (it && il == 13 && memcmp(it, "function_call", 13) == 0)
            return resp_call_item(xs, jint(root, "output_index", 0), item);
        return 0;
    }
    if (IS("response.function_call_arguments.delta") ||
        IS("response.function_call_arguments.done")) {
        int64_t key = jint(root, "output_index", 0);
        int t = cg_xl_xs_tool_find(xs, key);
        if (t < 0) {
            size_t il = 0;
            const char *id = jstr(root, "item_id", &il);
            int rc = cg_xl_xs_tool_start(xs, key, id, il, "", 0, &t);
            if (rc < 0)
                return rc;
        }
        if (IS("response.function_call_arguments.delta")) {
            const char *d = jstr(root, "delta", &l);
            return ev_args(xs, t, d, l);
        }
        const char *a = jstr(root, "arguments", &l);
        return xs->tools[t].args_len == 0 ? ev_args(xs, t, a, l) : 0;
    }
    if (IS("response.completed") || IS("response.incomplete")) {
        json_object *r = jget(root, "response");
        int rc = resp_end(xs, r, IS("response.incomplete") ? "incomplete" : "completed");
        return rc < 0 ? rc : CG_XLATE_END;
    }
    if (IS("response.failed")) {
        json_object *r = jget(root, "response");
        return ev_error(xs, jget(r, "error"), "upstream response failed");
    }
    if (IS("error"))
        return ev_error(xs, jget(root, "error") ? jget(root, "error") : root,
                        "upstream sent an error event");
#undef IS
    return 0;
}

int cg_xl_dec_responses_body(xs_t *xs, json_object *root)
{
    json_object *e = jget(root, "error");
    size_t sl = 0;
    const char *status = jstr(root, "status", &sl);
    if ((e && !jis(e, json_type_null)) || (status && strcmp(status, "failed") == 0))
        return ev_error(xs, e, "upstream response failed");
    json_object *output = jget(root, "output");
    if (!jis(output, json_type_array)) {
        cg_xl_xs_seterr(xs, "upstream reply has no `output` array");
        return CG_EINVAL;
    }
    size_t n = json_object_array_length(output);
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(output, i);
        size_t tl = 0;
        const char *type = jstr(item, "type", &tl);
        int rc = 0;
        if (!type)
            continue;
        if (strcmp(type, "reasoning") == 0) {
            json_object *parts = jget(item, "summary");
            if (!jis(parts, json_type_array) || json_object_array_length(parts) == 0)
                parts = jget(item, "content");
            size_t pn = jis(parts, json_type_array) ? json_object_array_length(parts) : 0;
            for (size_t k = 0; k < pn && rc == 0; k++) {
                size_t l = 0;
                const char *t = jstr(json_object_array_get_idx(parts, k), "text", &l);
                if (k > 0)
                    rc = ev_text(xs, XEV_REASONING, "\n\n", 2);
                if (rc == 0)
                    rc = ev_text(xs, XEV_REASONING, t, l);
            }
        } else if (strcmp(type, "message") == 0) {
            json_object *parts = jget(item, "content");
            size_t pn = jis(parts, json_type_array) ? json_object_array_length(parts) : 0;
            for (size_t k = 0; k < pn && rc == 0; k++) {
                json_object *p = json_object_array_get_idx(parts, k);
                size_t l = 0;
                const char *t = jstr(p, "text", &l);
                if (!t)
                    t = jstr(p, "refusal", &l);
                rc = ev_text(xs, XEV_TEXT, t, l);
            }
        } else if (strcmp(type, "function_call") == 0) {
            rc = resp_call_item(xs, (int64_t)i, item);
        }
        if (rc < 0)
            return rc;
    }
    return resp_end(xs, root, status);
}

/* ------------------------------------------------------------------------ */
/* anthropic-messages                                                       */

static int64_t usage_int(json_object *u, const char *k)
{
    int64_t v = jint(u, k, -1);
    return v > XLATE_USAGE_MAX ? XLATE_USAGE_MAX : v;
}

static int anth_usage(xs_t *xs, json_object *u)
{
    if (!jis(u, json_type_object))
        return 0;
    int64_t v;
    /* Clamped: the parts are added up below. */
    if ((v = usage_int(u, "input_tokens")) >= 0)
        xs->a_in = v;
    if ((v = usage_int(u, "cache_read_input_tokens")) >= 0)
        xs->a_cache_read = v;
    if ((v = usage_int(u, "cache_creation_input_tokens")) >= 0)
        xs->a_cache_write = v;
    if ((v = usage_int(u, "output_tokens")) >= 0)
        xs->a_out = v;
    xev_t ev = {.kind = XEV_USAGE};
    ev.u.input = xs->a_in < 0 ? -1
                              : xs->a_in + (xs->a_cache_read > 0 ? xs->a_cache_read : 0) +
                                    (xs->a_cache_write > 0 ? xs->a_cache_write : 0);
    ev.u.output = xs->a_out;
    ev.u.cache_read = xs->a_cache_read;
    ev.u.cache_write = xs->a_cache_write;
    ev.u.reasoning = -1;
    return cg_xl_xs_event(xs, &ev);
}

/* A content block (at its start in a stream, or whole in a body). */
static int anth_block(xs_t *xs, int64_t index, json_object *b, bool whole)
{
    size_t tl = 0, l = 0;
    const char *type = jstr(b, "type", &tl);
    if (!type)
        return 0;
    if (strcmp(type, "text") == 0) {
        const char *t = jstr(b, "text", &l);
        return ev_text(xs, XEV_TEXT, t, l);
    }
    if (strcmp(type, "thinking") == 0) {
        const char *t = jstr(b, "thinking", &l);
        return ev_text(xs, XEV_REASONING, t, l);
    }
    if (strcmp(type, "tool_use") == 0) {
        size_t il = 0, nl = 0;
        const char *id = jstr(b, "id", &il);
        const char *name = jstr(b, "name", &nl);
        int t = -1;
        int rc = cg_xl_xs_tool_start(xs, index, id, il, name, nl, &t);
        if (rc < 0)
            return rc;
        json_object *in = jget(b, "input");
        cg_buf_t a = {0};
        if (jis(in, json_type_object) && json_object_object_length(in) > 0)
            value_text(in, &a);
        if (whole) {
            rc = ev_args(xs, t, a.len ? a.data : "{}", a.len ? a.len : 2);
        } else if (a.len) {
            /* Deltas normally follow; use the start's input only if none do. */
            xs->tools[t].init_args = cg_buf_steal(&a, NULL);
        }
        cg_buf_free(&a);
        return rc;
    }
    return 0; /* redacted_thinking, server tool blocks: nothing for the client */
}

int cg_xl_dec_anthropic(xs_t *xs, const char *event, json_object *root)
{
    size_t tl = 0;
    const char *type = jstr(root, "type", &tl);
    if (!type)
        type = event;
    if (strcmp(type, "message_start") == 0)
        return anth_usage(xs, jget(jget(root, "message"), "usage"));
    if (strcmp(type, "content_block_start") == 0)
        return anth_block(xs, jint(root, "index", 0), jget(root, "content_block"), false);
    if (strcmp(type, "content_block_delta") == 0) {
        json_object *d = jget(root, "delta");
        const char *dt = jstr(d, "type", NULL);
        size_t l = 0;
        if (!dt)
            return 0;
        if (strcmp(dt, "text_delta") == 0) {
            const char *t = jstr(d, "text", &l);
            return ev_text(xs, XEV_TEXT, t, l);
        }
        if (strcmp(dt, "thinking_delta") == 0) {
            const char *t = jstr(d, "thinking", &l);
            return ev_text(xs, XEV_REASONING, t, l);
        }
        if (strcmp(dt, "input_json_delta") == 0) {
            int t = cg_xl_xs_tool_find(xs, jint(root, "index", 0));
            if (t < 0) {
                cg_xl_xs_seterr(xs,
                                "upstream sent input_json_delta for a block that is not tool_use");
                return CG_EINVAL;
            }
            const char *pj = jstr(d, "partial_json", &l);
            return ev_args(xs, t, pj, l);
        }
        return 0; /* signature_delta, citations_delta */
    }
    if (strcmp(type, "content_block_stop") == 0) {
        int t = cg_xl_xs_tool_find(xs, jint(root, "index", 0));
        if (t >= 0 && xs->tools[t].args_len == 0) {
            const char *a = xs->tools[t].init_args ? xs->tools[t].init_args : "{}";
            return ev_args(xs, t, a, strlen(a));
        }
        return 0;
    }
    if (strcmp(type, "message_delta") == 0) {
        int rc = anth_usage(xs, jget(root, "usage"));
        size_t l = 0;
        const char *sr = jstr(jget(root, "delta"), "stop_reason", &l);
        if (rc == 0 && sr)
            rc = ev_finish(xs, cg_xl_xs_norm_finish(sr, l));
        return rc;
    }
    if (strcmp(type, "message_stop") == 0)
        return CG_XLATE_END;
    if (strcmp(type, "error") == 0)
        return ev_error(xs, jget(root, "error"), "upstream sent an error event");
    return 0; /* ping and anything newer */
}

int cg_xl_dec_anthropic_body(xs_t *xs, json_object *root)
{
    const char *type = jstr(root, "type", NULL);
    if (type && strcmp(type, "error") == 0)
        return ev_error(xs, jget(root, "error"), "upstream sent an error");
    json_object *content = jget(root, "content");
    if (!jis(content, json_type_array)) {
        cg_xl_xs_seterr(xs, "upstream reply has no `content` array");
        return CG_EINVAL;
    }
    int rc = anth_usage(xs, jget(root, "usage"));
    size_t n = json_object_array_length(content);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = anth_block(xs, (int64_t)i, json_object_array_get_idx(content, i), true);
    if (rc < 0)
        return rc;
    size_t l = 0;
    const char *sr = jstr(root, "stop_reason", &l);
    return ev_finish(xs, sr ? cg_xl_xs_norm_finish(sr, l) : "stop");
}
