/*
 * xlate_req.c — client request bodies to provider request bodies.
 *
 * DESIGN
 * Same API in, same API out (chat over openai-completions, Responses over
 * openai-responses) is an edit of the client's bytes: proto/jscan.h finds
 * the top-level members and the edits (model, stream, stream_options,
 * top-level compat keys) are spliced in without touching the rest. Only a
 * member that compat shaping must change inside (messages with a developer
 * role or content parts, tools with `strict`) is parsed and re-serialised,
 * and whether it must is decided by a byte search first, so the 36 KB
 * OpenClaw request with nothing to shape never sees a tree.
 *
 * Across APIs the body is parsed with json-c. A Responses request is first
 * turned into a chat completions tree (the richer common ground for the
 * other two targets), which then goes to openai-completions (compat shaping)
 * or anthropic-messages; a chat request goes to openai-responses or
 * anthropic-messages directly. What a target cannot express is dropped when
 * it is a hint (metadata, stop for Responses) and refused with a 400 when
 * dropping it would change the answer (a hosted tool type, a file input).
 *
 * Compat (OpenClaw's keys, per model; unset keys take the provider kind's
 * defaults, forgiving for custom local providers):
 *   supportsDeveloperRole false  developer -> system
 *   supportsStore false          store dropped
 *   supportsStrictMode false     strict dropped from tools
 *   supportsReasoningEffort false reasoning_effort / reasoning dropped
 *   supportsTools false          tools, tool_choice, parallel_tool_calls dropped
 *   supportsUsageInStreaming false  no stream_options.include_usage
 *   requiresStringContent true   content parts flattened to a string
 *   maxTokensField               max_tokens <-> max_completion_tokens
 */
#include "proto/jscan.h"
#include "proto/xlate_int.h"

#include <strings.h>

#define JD XLATE_JSON_DEPTH

const char *cg_xlate_path(cg_api_t api)
{
    switch (api) {
    case CG_API_OPENAI_COMPLETIONS:
        return "/chat/completions";
    case CG_API_OPENAI_RESPONSES:
        return "/responses";
    case CG_API_ANTHROPIC_MESSAGES:
        return "/messages";
    default:
        return NULL;
    }
}

void cg_xlate_headers(const cg_model_t *model, bool stream,
                      void (*add)(void *ud, const char *name, const char *value), void *ud)
{
    add(ud, "Content-Type", "application/json");
    add(ud, "Accept", stream ? "text/event-stream" : "application/json");
    const cg_provider_t *pv = model->provider;
    const char *key = pv && pv->api_key && pv->api_key[0] ? pv->api_key : NULL;
    if (model->api == CG_API_ANTHROPIC_MESSAGES) {
        if (key)
            add(ud, "x-api-key", key);
        add(ud, "anthropic-version", "2023-06-01");
    } else if (key) {
        char *auth = cg_sprintf("Bearer %s", key);
        add(ud, "Authorization", auth);
        cg_free(auth);
    }
}

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */

static json_object *jstring(const char *s)
{
    return json_object_new_string(s);
}

static json_object *jstring_len(const char *s, size_t n)
{
    return json_object_new_string_len(s, (int)n);
}

/* o[k] = v, sharing v (its reference count goes up). */
static void jshare(json_object *o, const char *k, json_object *v)
{
    json_object_object_add(o, k, json_object_get(v));
}

static bool jstreq(json_object *o, const char *k, const char *want)
{
    const char *s = jstr(o, k, NULL);
    return s && strcmp(s, want) == 0;
}

/* The text of a content value: a string, or its text parts joined by sep. */
static void content_text(json_object *c, const char *sep, cg_buf_t *out)
{
    if (jis(c, json_type_string)) {
        cg_buf_append(out, json_object_get_string(c), (size_t)json_object_get_string_len(c));
        return;
    }
    if (!jis(c, json_type_array))
        return;
    size_t n = json_object_array_length(c), k = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(c, i);
        size_t l = 0;
        const char *t = jis(p, json_type_string) ? json_object_get_string(p) : jstr(p, "text", &l);
        if (jis(p, json_type_string))
            l = (size_t)json_object_get_string_len(p);
        if (!t)
            t = jstr(p, "refusal", &l);
        if (!t)
            continue;
        if (k++ && sep)
            cg_buf_puts(out, sep);
        cg_buf_append(out, t, l);
    }
}

static json_object *content_string(json_object *c, const char *sep)
{
    cg_buf_t b = {0};
    content_text(c, sep, &b);
    json_object *s = jstring_len(b.data ? b.data : "", b.len);
    cg_buf_free(&b);
    return s;
}

/* The first positive integer among the keys, or 0. */
static int64_t first_int(json_object *o, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t v = jint(o, keys[i], 0);
        if (v > 0)
            return v;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* compat shaping of subtrees                                               */

/* messages (chat) or input items (Responses): developer -> system, content
 * parts -> string. True if anything changed. */
static bool shape_messages(json_object *msgs, const cg_compat_t *c)
{
    bool changed = false;
    if (!jis(msgs, json_type_array))
        return false;
    size_t n = json_object_array_length(msgs);
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        if (!jis(m, json_type_object))
            continue;
        if (!c->supports_developer_role && jstreq(m, "role", "developer")) {
            json_object_object_add(m, "role", jstring("system"));
            changed = true;
        }
        json_object *ct = jget(m, "content");
        if (c->requires_string_content && jis(ct, json_type_array)) {
            json_object_object_add(m, "content", content_string(ct, "\n"));
            changed = true;
        }
    }
    return changed;
}

/* tools (chat: strict inside `function`; Responses: at the top). */
static bool shape_tools(json_object *tools, const cg_compat_t *c)
{
    bool changed = false;
    if (c->supports_strict_mode || !jis(tools, json_type_array))
        return false;
    size_t n = json_object_array_length(tools);
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        json_object *fn = jget(t, "function");
        if (jget(t, "strict")) {
            json_object_object_del(t, "strict");
            changed = true;
        }
        if (jget(fn, "strict")) {
            json_object_object_del(fn, "strict");
            changed = true;
        }
    }
    return changed;
}

typedef struct edits edits_t;
static int ed_subtree(edits_t *E, const cg_jscan_t *js, const cg_jmember_t *m, const char *key,
                      bool (*shape)(json_object *, const cg_compat_t *), const cg_compat_t *c,
                      char *err, size_t errlen);
static cg_buf_t *ed_set(edits_t *E, const char *key);

/* Byte tests deciding whether a member needs its tree (false negatives
 * impossible for the forms they look for; a false positive costs a parse). */
static bool has_content_array(const char *s, size_t n)
{
    const char *p = s, *end = s + n;
    while ((p = cg_jscan_find_quoted(p, (size_t)(end - p), "\"content\"", 9)) != NULL) {
        p += 9;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p < end && *p == ':') {
            p++;
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
                p++;
            if (p < end && *p == '[')
                return true;
        }
    }
    return false;
}

/* Copy s[0..n), a valid JSON value, to out with the value of every
 * "role": "developer" member written as "system"; the number of renames.
 * Tree-less: strings are skipped whole (memchr to the next quote, an odd
 * run of backslashes before it means escaped), so only real keys match.
 * The big system prompt is one string: crossing it is one memchr. */
static size_t rename_developer(const char *s, size_t n, cg_buf_t *out)
{
    size_t i = 0, run = 0, count = 0;
    while (i < n) {
        const char *q = memchr(s + i, '"', n - i);
        if (!q)
            break;
        size_t start = (size_t)(q - s), j = start + 1;
        for (;;) {
            const char *e = memchr(s + j, '"', n - j);
            if (!e)
                return count; /* cannot happen in validated JSON */
            size_t k = (size_t)(e - s), bs = 0;
            while (k - bs > start + 1 && s[k - bs - 1] == '\\')
                bs++;
            j = k;
            if (bs % 2 == 0)
                break;
            j++;
        }
        size_t end = j + 1; /* one past the closing quote */
        i = end;
        if (end - start != 6 || memcmp(s + start, "\"role\"", 6) != 0)
            continue;
        size_t k = end;
        while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n'))
            k++;
        if (k >= n || s[k] != ':')
            continue;
        k++;
        while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n'))
            k++;
        if (n - k >= 11 && memcmp(s + k, "\"developer\"", 11) == 0) {
            cg_buf_append(out, s + run, k - run);
            cg_buf_puts(out, "\"system\"");
            run = i = k + 11;
            count++;
        }
    }
    cg_buf_append(out, s + run, n - run);
    return count;
}

/* Shape messages / input: the developer rename alone is done on the bytes,
 * anything more (content flattening) on a tree. */
static int ed_messages(edits_t *E, const cg_jscan_t *js, const cg_jmember_t *m, const char *key,
                       const cg_compat_t *c, char *err, size_t errlen)
{
    const char *s = js->src + m->val_off;
    if (c->requires_string_content && has_content_array(s, m->val_len))
        return ed_subtree(E, js, m, key, shape_messages, c, err, errlen);
    /* The scan noted whether "developer" is a string anywhere: if not,
     * whatever the search found would be a false match (jscan.h), which
     * renames nothing. */
    if (c->supports_developer_role || !(js->saw & CG_JSCAN_SAW_DEVELOPER) ||
        !cg_jscan_find_quoted(s, m->val_len, "\"developer\"", 11))
        return 0;
    cg_buf_t b = {0};
    if (rename_developer(s, m->val_len, &b) > 0)
        cg_buf_append(ed_set(E, key), b.data, b.len);
    cg_buf_free(&b);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* tree-less edits                                                          */

#define MAX_EDITS 24

struct edits {
    cg_jedit_t e[MAX_EDITS];
    cg_buf_t raw[MAX_EDITS];
    size_t n;
};

static cg_buf_t *ed_set(edits_t *E, const char *key)
{
    cg_assert(E->n < MAX_EDITS);
    size_t i = E->n++;
    E->e[i].key = key;
    E->e[i].raw = NULL;
    return &E->raw[i];
}

static void ed_del(edits_t *E, const char *key)
{
    cg_assert(E->n < MAX_EDITS);
    size_t i = E->n++;
    E->e[i] = (cg_jedit_t){key, NULL, 0};
}

static void ed_apply(edits_t *E, const cg_jscan_t *js, cg_buf_t *out)
{
    for (size_t i = 0; i < E->n; i++) {
        if (E->e[i].raw == NULL && E->raw[i].data) {
            E->e[i].raw = E->raw[i].data;
            E->e[i].raw_len = E->raw[i].len;
        }
    }
    cg_jscan_apply(js, E->e, E->n, out);
    for (size_t i = 0; i < E->n; i++)
        cg_buf_free(&E->raw[i]);
}

static void ed_free(edits_t *E)
{
    for (size_t i = 0; i < E->n; i++)
        cg_buf_free(&E->raw[i]);
}

/* Re-serialise member m after shape() changed it; false if unchanged. */
static int ed_subtree(edits_t *E, const cg_jscan_t *js, const cg_jmember_t *m, const char *key,
                      bool (*shape)(json_object *, const cg_compat_t *), const cg_compat_t *c,
                      char *err, size_t errlen)
{
    char perr[128];
    json_object *v =
        cg_xl_xjson_parse_ex(js->src + m->val_off, m->val_len, true, perr, sizeof perr);
    if (!v) {
        snprintf(err, errlen, "`%s` could not be parsed: %s", key, perr);
        return CG_EINVAL;
    }
    if (shape(v, c))
        cg_xl_xjson_append(ed_set(E, key), v);
    json_object_put(v);
    return 0;
}

static void ed_model_stream(edits_t *E, const cg_jscan_t *js, const cg_model_t *m, bool stream)
{
    cg_json_quote(ed_set(E, "model"), m->id, strlen(m->id));
    const cg_jmember_t *st = cg_jscan_get(js, "stream");
    bool streaming = st && st->type == CG_JTRUE;
    if (stream != streaming)
        cg_buf_puts(ed_set(E, "stream"), stream ? "true" : "false");
}

static void ed_drop(edits_t *E, const cg_jscan_t *js, const char *key)
{
    if (cg_jscan_get(js, key))
        ed_del(E, key);
}

/* tools under compat (both chat and Responses shapes): dropped with their
 * companions when the server has no tools; `strict` taken out (parsing the
 * tools array alone) when the server rejects it. 0, or < 0 with err set. */
static int ed_tools(edits_t *E, const cg_jscan_t *js, const cg_compat_t *c, char *err,
                    size_t errlen)
{
    const cg_jmember_t *tools = cg_jscan_get(js, "tools");
    if (!c->supports_tools) {
        ed_drop(E, js, "tools");
        ed_drop(E, js, "tool_choice");
        ed_drop(E, js, "parallel_tool_calls");
        return 0;
    }
    if (tools && tools->type == CG_JARRAY && !c->supports_strict_mode &&
        (js->saw & CG_JSCAN_SAW_STRICT) &&
        cg_jscan_find_quoted(js->src + tools->val_off, tools->val_len, "\"strict\"", 8))
        return ed_subtree(E, js, tools, "tools", shape_tools, c, err, errlen);
    return 0;
}

/* Chat over openai-completions. */
static int chat_to_chat(const cg_model_t *m, const cg_jscan_t *js, bool stream, cg_buf_t *out,
                        char *err, size_t errlen)
{
    const cg_compat_t *c = &m->compat;
    edits_t E = {0};
    ed_model_stream(&E, js, m, stream);

    /* stream_options.include_usage, so the stream ends with the token counts;
     * servers that do not know the option (compat) and non-stream requests
     * (OpenAI rejects stream_options there) get none. */
    const cg_jmember_t *opt = cg_jscan_get(js, "stream_options");
    if (stream && c->supports_usage_in_streaming) {
        if (opt && opt->type == CG_JOBJECT) {
            cg_jscan_t jo;
            cg_jerr_t je;
            if (cg_jscan_object(&jo, js->src + opt->val_off, opt->val_len, JD, &je) < 0) {
                snprintf(err, errlen, "stream_options is not valid JSON");
                ed_free(&E);
                return CG_EINVAL;
            }
            const cg_jmember_t *iu = cg_jscan_get(&jo, "include_usage");
            if (!iu || iu->type != CG_JTRUE) {
                cg_jedit_t e = {"include_usage", "true", 4};
                cg_jscan_apply(&jo, &e, 1, ed_set(&E, "stream_options"));
            }
        } else {
            cg_buf_puts(ed_set(&E, "stream_options"), "{\"include_usage\":true}");
        }
    } else if (opt) {
        ed_del(&E, "stream_options");
    }

    if (!c->supports_store)
        ed_drop(&E, js, "store");
    if (!c->supports_reasoning_effort)
        ed_drop(&E, js, "reasoning_effort");
    int trc = ed_tools(&E, js, c, err, errlen);
    if (trc < 0) {
        ed_free(&E);
        return trc;
    }

    /* maxTokensField: move the value to the field the server knows. */
    if (c->max_tokens_field) {
        const char *want = c->max_tokens_field;
        const char *other =
            strcmp(want, "max_tokens") == 0 ? "max_completion_tokens" : "max_tokens";
        const cg_jmember_t *o = cg_jscan_get(js, other);
        if (o) {
            if (!cg_jscan_get(js, want))
                cg_buf_append(ed_set(&E, want), js->src + o->val_off, o->val_len);
            ed_del(&E, other);
        }
    }

    const cg_jmember_t *msgs = cg_jscan_get(js, "messages");
    if (!msgs || msgs->type != CG_JARRAY) {
        snprintf(err, errlen, "`messages` must be an array");
        ed_free(&E);
        return CG_EINVAL;
    }
    int rc = ed_messages(&E, js, msgs, "messages", c, err, errlen);
    if (rc < 0) {
        ed_free(&E);
        return rc;
    }
    ed_apply(&E, js, out);
    return 0;
}

/* Responses over openai-responses. */
static int resp_to_resp(const cg_model_t *m, const cg_jscan_t *js, bool stream, cg_buf_t *out,
                        char *err, size_t errlen)
{
    const cg_compat_t *c = &m->compat;
    edits_t E = {0};
    ed_model_stream(&E, js, m, stream);
    /* clawgate owns sessions: an id from a client names clawgate's state,
     * never the upstream's. */
    ed_drop(&E, js, "previous_response_id");
    ed_drop(&E, js, "conversation");
    if (!c->supports_store)
        ed_drop(&E, js, "store");
    if (!c->supports_reasoning_effort)
        ed_drop(&E, js, "reasoning");
    int trc = ed_tools(&E, js, c, err, errlen);
    if (trc < 0) {
        ed_free(&E);
        return trc;
    }
    const cg_jmember_t *in = cg_jscan_get(js, "input");
    if (in && in->type == CG_JARRAY) {
        int rc = ed_messages(&E, js, in, "input", c, err, errlen);
        if (rc < 0) {
            ed_free(&E);
            return rc;
        }
    } else if (in && in->type != CG_JSTRING) {
        snprintf(err, errlen, "`input` must be a string or an array of items");
        ed_free(&E);
        return CG_EINVAL;
    }
    ed_apply(&E, js, out);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Responses request -> chat tree                                           */

/* Content parts of a Responses message to chat content: a string for
 * everything but user messages with images. */
static json_object *resp_content_to_chat(json_object *c, bool user, bool assistant, size_t idx,
                                         char *err, size_t errlen)
{
    if (jis(c, json_type_string) || c == NULL || jis(c, json_type_null))
        return c ? json_object_get(c) : jstring("");
    if (!jis(c, json_type_array)) {
        snprintf(err, errlen, "input[%zu].content must be a string or an array", idx);
        return NULL;
    }
    size_t n = json_object_array_length(c);
    bool images = false;
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(c, i);
        const char *t = jstr(p, "type", NULL);
        if (t && strcmp(t, "input_image") == 0)
            images = true;
        else if (t && (strcmp(t, "input_file") == 0 || strcmp(t, "input_audio") == 0)) {
            snprintf(err, errlen, "input[%zu].content: %s parts cannot be translated", idx, t);
            return NULL;
        }
    }
    /* Parts of one assistant answer are one text; other parts are
     * separate pieces of input and keep a line between them. */
    if (!images || !user)
        return content_string(c, assistant ? "" : "\n");
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(c, i);
        const char *t = jstr(p, "type", NULL);
        json_object *part = json_object_new_object();
        if (t && strcmp(t, "input_image") == 0) {
            const char *url = jstr(p, "image_url", NULL);
            if (!url) {
                json_object_put(part);
                json_object_put(arr);
                snprintf(err, errlen, "input[%zu].content: input_image needs image_url", idx);
                return NULL;
            }
            json_object *iu = json_object_new_object();
            json_object_object_add(iu, "url", jstring(url));
            if (jget(p, "detail"))
                jshare(iu, "detail", jget(p, "detail"));
            json_object_object_add(part, "type", jstring("image_url"));
            json_object_object_add(part, "image_url", iu);
        } else {
            size_t l = 0;
            const char *text = jstr(p, "text", &l);
            json_object_object_add(part, "type", jstring("text"));
            json_object_object_add(part, "text", jstring_len(text ? text : "", text ? l : 0));
        }
        json_object_array_add(arr, part);
    }
    return arr;
}

static json_object *last_assistant(json_object *msgs)
{
    size_t n = json_object_array_length(msgs);
    if (n == 0)
        return NULL;
    json_object *m = json_object_array_get_idx(msgs, n - 1);
    return jstreq(m, "role", "assistant") ? m : NULL;
}

static json_object *resp_to_chat_tree(json_object *root, const char *target, char *err,
                                      size_t errlen)
{
    json_object *chat = json_object_new_object();
    json_object *msgs = json_object_new_array();
    json_object_object_add(chat, "messages", msgs);
    size_t il = 0;
    const char *instr = jstr(root, "instructions", &il);
    if (instr && il) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", jstring("system"));
        json_object_object_add(m, "content", jstring_len(instr, il));
        json_object_array_add(msgs, m);
    }
    json_object *input = jget(root, "input");
    if (jis(input, json_type_string)) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", jstring("user"));
        jshare(m, "content", input);
        json_object_array_add(msgs, m);
    } else if (jis(input, json_type_array)) {
        size_t n = json_object_array_length(input);
        for (size_t i = 0; i < n; i++) {
            json_object *it = json_object_array_get_idx(input, i);
            if (!jis(it, json_type_object)) {
                snprintf(err, errlen, "input[%zu] must be an object", i);
                goto fail;
            }
            const char *type = jstr(it, "type", NULL);
            const char *role = jstr(it, "role", NULL);
            if ((!type && role) || (type && strcmp(type, "message") == 0)) {
                if (!role || (strcmp(role, "user") && strcmp(role, "assistant") &&
                              strcmp(role, "system") && strcmp(role, "developer"))) {
                    snprintf(err, errlen,
                             "input[%zu].role must be user, assistant, system or "
                             "developer",
                             i);
                    goto fail;
                }
                json_object *c =
                    resp_content_to_chat(jget(it, "content"), strcmp(role, "user") == 0,
                                         strcmp(role, "assistant") == 0, i, err, errlen);
                if (!c)
                    goto fail;
                json_object *m = json_object_new_object();
                json_object_object_add(m, "role", jstring(role));
                json_object_object_add(m, "content", c);
                json_object_array_add(msgs, m);
            } else if (!type) {
                snprintf(err, errlen, "input[%zu] needs a type or a role", i);
                goto fail;
            } else if (strcmp(type, "function_call") == 0) {
                const char *cid = jstr(it, "call_id", NULL);
                const char *name = jstr(it, "name", NULL);
                if (!cid || !name) {
                    snprintf(err, errlen, "input[%zu]: function_call needs call_id and name", i);
                    goto fail;
                }
                json_object *call = json_object_new_object();
                json_object *fn = json_object_new_object();
                json_object_object_add(call, "id", jstring(cid));
                json_object_object_add(call, "type", jstring("function"));
                json_object_object_add(fn, "name", jstring(name));
                json_object *a = jget(it, "arguments");
                if (jis(a, json_type_string))
                    jshare(fn, "arguments", a);
                else
                    json_object_object_add(fn, "arguments", jstring("{}"));
                json_object_object_add(call, "function", fn);
                json_object *m = last_assistant(msgs);
                if (!m) {
                    m = json_object_new_object();
                    json_object_object_add(m, "role", jstring("assistant"));
                    json_object_object_add(m, "content", NULL);
                    json_object_array_add(msgs, m);
                }
                json_object *tcs = jget(m, "tool_calls");
                if (!tcs) {
                    tcs = json_object_new_array();
                    json_object_object_add(m, "tool_calls", tcs);
                }
                json_object_array_add(tcs, call);
            } else if (strcmp(type, "function_call_output") == 0) {
                const char *cid = jstr(it, "call_id", NULL);
                if (!cid) {
                    snprintf(err, errlen, "input[%zu]: function_call_output needs call_id", i);
                    goto fail;
                }
                json_object *m = json_object_new_object();
                json_object_object_add(m, "role", jstring("tool"));
                json_object_object_add(m, "tool_call_id", jstring(cid));
                json_object_object_add(m, "content", content_string(jget(it, "output"), ""));
                json_object_array_add(msgs, m);
            } else if (strcmp(type, "reasoning") == 0) {
                /* Reasoning of earlier turns is the provider's own state;
                 * another provider cannot use it. */
            } else {
                snprintf(err, errlen, "input[%zu]: item type '%s' cannot be sent to an %s provider",
                         i, type, target);
                goto fail;
            }
        }
    } else {
        snprintf(err, errlen, "`input` must be a string or an array of items");
        goto fail;
    }

    json_object *tools = jget(root, "tools");
    if (jis(tools, json_type_array)) {
        json_object *ct = json_object_new_array();
        json_object_object_add(chat, "tools", ct);
        size_t n = json_object_array_length(tools);
        for (size_t i = 0; i < n; i++) {
            json_object *t = json_object_array_get_idx(tools, i);
            if (!jis(t, json_type_object))
                continue; /* not a tool at all: nothing to translate */
            const char *type = jstr(t, "type", NULL);
            if (!type || strcmp(type, "function") != 0) {
                snprintf(err, errlen, "tools[%zu]: type '%s' is not available from an %s provider",
                         i, type ? type : "?", target);
                goto fail;
            }
            json_object *fn = json_object_new_object();
            static const char *const keys[] = {"name", "description", "parameters", "strict"};
            for (size_t k = 0; k < CG_ARRAY_LEN(keys); k++) {
                if (jget(t, keys[k]) && !jis(jget(t, keys[k]), json_type_null))
                    jshare(fn, keys[k], jget(t, keys[k]));
            }
            json_object *w = json_object_new_object();
            json_object_object_add(w, "type", jstring("function"));
            json_object_object_add(w, "function", fn);
            json_object_array_add(ct, w);
        }
    }
    json_object *tc = jget(root, "tool_choice");
    if (jis(tc, json_type_string)) {
        jshare(chat, "tool_choice", tc);
    } else if (jis(tc, json_type_object)) {
        const char *type = jstr(tc, "type", NULL);
        if (type && strcmp(type, "function") == 0 && jstr(tc, "name", NULL)) {
            json_object *w = json_object_new_object();
            json_object *fn = json_object_new_object();
            jshare(fn, "name", jget(tc, "name"));
            json_object_object_add(w, "type", jstring("function"));
            json_object_object_add(w, "function", fn);
            json_object_object_add(chat, "tool_choice", w);
        } else if (type && strcmp(type, "allowed_tools") == 0 && jstr(tc, "mode", NULL)) {
            jshare(chat, "tool_choice", jget(tc, "mode"));
        }
    }
    int64_t mt = jint(root, "max_output_tokens", 0);
    if (mt > 0)
        json_object_object_add(chat, "max_tokens", json_object_new_int64(mt));
    static const char *const copy[] = {"temperature", "top_p", "parallel_tool_calls", "user",
                                       "store"};
    for (size_t k = 0; k < CG_ARRAY_LEN(copy); k++) {
        json_object *v = jget(root, copy[k]);
        if (v && !jis(v, json_type_null))
            jshare(chat, copy[k], v);
    }
    json_object *effort = jget(jget(root, "reasoning"), "effort");
    if (jis(effort, json_type_string))
        jshare(chat, "reasoning_effort", effort);
    json_object *fmt = jget(jget(root, "text"), "format");
    const char *ft = jstr(fmt, "type", NULL);
    if (ft && strcmp(ft, "json_schema") == 0) {
        json_object *rf = json_object_new_object();
        json_object *js = json_object_new_object();
        static const char *const keys[] = {"name", "schema", "strict", "description"};
        for (size_t k = 0; k < CG_ARRAY_LEN(keys); k++) {
            if (jget(fmt, keys[k]))
                jshare(js, keys[k], jget(fmt, keys[k]));
        }
        json_object_object_add(rf, "type", jstring("json_schema"));
        json_object_object_add(rf, "json_schema", js);
        json_object_object_add(chat, "response_format", rf);
    } else if (ft && strcmp(ft, "json_object") == 0) {
        jshare(chat, "response_format", fmt);
    }
    return chat;
fail:
    json_object_put(chat);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* chat tree -> openai-completions (a Responses client's request)           */

static void chat_tree_finish(json_object *chat, const cg_model_t *m, bool stream)
{
    const cg_compat_t *c = &m->compat;
    json_object_object_add(chat, "model", jstring(m->id));
    json_object_object_add(chat, "stream", json_object_new_boolean(stream));
    if (stream && c->supports_usage_in_streaming) {
        json_object *so = json_object_new_object();
        json_object_object_add(so, "include_usage", json_object_new_boolean(1));
        json_object_object_add(chat, "stream_options", so);
    }
    if (!c->supports_store)
        json_object_object_del(chat, "store");
    if (!c->supports_reasoning_effort)
        json_object_object_del(chat, "reasoning_effort");
    if (!c->supports_tools) {
        json_object_object_del(chat, "tools");
        json_object_object_del(chat, "tool_choice");
        json_object_object_del(chat, "parallel_tool_calls");
    }
    shape_tools(jget(chat, "tools"), c);
    shape_messages(jget(chat, "messages"), c);
    json_object *mt = jget(chat, "max_tokens");
    if (mt && c->max_tokens_field && strcmp(c->max_tokens_field, "max_tokens") != 0) {
        jshare(chat, c->max_tokens_field, mt);
        json_object_object_del(chat, "max_tokens");
    }
}

/* ------------------------------------------------------------------------ */
/* chat tree -> openai-responses                                            */

static json_object *chat_parts_to_resp(json_object *c, bool assistant)
{
    json_object *arr = json_object_new_array();
    size_t n = json_object_array_length(c);
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(c, i);
        const char *t = jstr(p, "type", NULL);
        json_object *part = json_object_new_object();
        if (t && strcmp(t, "image_url") == 0) {
            json_object *iu = jget(p, "image_url");
            json_object_object_add(part, "type", jstring("input_image"));
            if (jis(iu, json_type_string))
                jshare(part, "image_url", iu);
            else if (jget(iu, "url"))
                jshare(part, "image_url", jget(iu, "url"));
            json_object_object_add(
                part, "detail",
                jstring(jstr(iu, "detail", NULL) ? jstr(iu, "detail", NULL) : "auto"));
        } else {
            size_t l = 0;
            const char *text = jstr(p, "text", &l);
            json_object_object_add(part, "type", jstring(assistant ? "output_text" : "input_text"));
            json_object_object_add(part, "text", jstring_len(text ? text : "", text ? l : 0));
        }
        json_object_array_add(arr, part);
    }
    return arr;
}

static json_object *chat_to_resp_tree(json_object *chat, const cg_model_t *m, bool stream,
                                      char *err, size_t errlen)
{
    const cg_compat_t *c = &m->compat;
    json_object *r = json_object_new_object();
    json_object_object_add(r, "model", jstring(m->id));
    json_object *input = json_object_new_array();
    json_object_object_add(r, "input", input);
    json_object *msgs = jget(chat, "messages");
    size_t n = jis(msgs, json_type_array) ? json_object_array_length(msgs) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *msg = json_object_array_get_idx(msgs, i);
        const char *role = jstr(msg, "role", NULL);
        json_object *ct = jget(msg, "content");
        if (!role) {
            snprintf(err, errlen, "messages[%zu].role is required", i);
            goto fail;
        }
        if (strcmp(role, "tool") == 0) {
            json_object *it = json_object_new_object();
            json_object_object_add(it, "type", jstring("function_call_output"));
            json_object_object_add(
                it, "call_id",
                jstring(jstr(msg, "tool_call_id", NULL) ? jstr(msg, "tool_call_id", NULL) : ""));
            json_object_object_add(it, "output", content_string(ct, ""));
            json_object_array_add(input, it);
            continue;
        }
        if (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system") &&
            strcmp(role, "developer"))
            continue; /* legacy `function` messages: no Responses form */
        bool assistant = strcmp(role, "assistant") == 0;
        bool has_text = jis(ct, json_type_string) ? json_object_get_string_len(ct) > 0
                                                  : jis(ct, json_type_array);
        if (has_text || !assistant) {
            json_object *it = json_object_new_object();
            json_object_object_add(it, "type", jstring("message"));
            json_object_object_add(
                it, "role",
                jstring(strcmp(role, "developer") == 0 && !c->supports_developer_role ? "system"
                                                                                      : role));
            if (jis(ct, json_type_array) && !c->requires_string_content && !assistant)
                json_object_object_add(it, "content", chat_parts_to_resp(ct, assistant));
            else
                json_object_object_add(it, "content", content_string(ct, "\n"));
            json_object_array_add(input, it);
        }
        json_object *tcs = jget(msg, "tool_calls");
        size_t tn = jis(tcs, json_type_array) ? json_object_array_length(tcs) : 0;
        for (size_t k = 0; k < tn; k++) {
            json_object *tc = json_object_array_get_idx(tcs, k);
            json_object *fn = jget(tc, "function");
            json_object *it = json_object_new_object();
            json_object_object_add(it, "type", jstring("function_call"));
            json_object_object_add(it, "call_id",
                                   jstring(jstr(tc, "id", NULL) ? jstr(tc, "id", NULL) : ""));
            json_object_object_add(it, "name",
                                   jstring(jstr(fn, "name", NULL) ? jstr(fn, "name", NULL) : ""));
            json_object_object_add(
                it, "arguments",
                jstring(jstr(fn, "arguments", NULL) ? jstr(fn, "arguments", NULL) : "{}"));
            json_object_array_add(input, it);
        }
    }
    json_object *tools = jget(chat, "tools");
    if (c->supports_tools && jis(tools, json_type_array)) {
        json_object *rt = json_object_new_array();
        json_object_object_add(r, "tools", rt);
        size_t tn = json_object_array_length(tools);
        for (size_t i = 0; i < tn; i++) {
            json_object *t = json_object_array_get_idx(tools, i);
            json_object *fn = jget(t, "function");
            if (!jis(fn, json_type_object))
                continue;
            json_object *w = json_object_new_object();
            json_object_object_add(w, "type", jstring("function"));
            static const char *const keys[] = {"name", "description", "parameters"};
            for (size_t k = 0; k < CG_ARRAY_LEN(keys); k++) {
                if (jget(fn, keys[k]))
                    jshare(w, keys[k], jget(fn, keys[k]));
            }
            /* Responses defaults strict to true, chat to false: say it. */
            if (c->supports_strict_mode) {
                json_object *st = jget(fn, "strict");
                json_object_object_add(w, "strict",
                                       json_object_new_boolean(jis(st, json_type_boolean) &&
                                                               json_object_get_boolean(st)));
            }
            json_object_array_add(rt, w);
        }
        json_object *tc = jget(chat, "tool_choice");
        if (jis(tc, json_type_string)) {
            jshare(r, "tool_choice", tc);
        } else if (jis(tc, json_type_object) && jstr(jget(tc, "function"), "name", NULL)) {
            json_object *w = json_object_new_object();
            json_object_object_add(w, "type", jstring("function"));
            jshare(w, "name", jget(jget(tc, "function"), "name"));
            json_object_object_add(r, "tool_choice", w);
        }
        if (jget(chat, "parallel_tool_calls"))
            jshare(r, "parallel_tool_calls", jget(chat, "parallel_tool_calls"));
    }
    static const char *const mkeys[] = {"max_completion_tokens", "max_tokens"};
    int64_t mt = first_int(chat, mkeys, 2);
    if (mt > 0)
        json_object_object_add(r, "max_output_tokens", json_object_new_int64(mt));
    const char *effort = jstr(chat, "reasoning_effort", NULL);
    if (effort && c->supports_reasoning_effort) {
        json_object *re = json_object_new_object();
        json_object_object_add(re, "effort", jstring(effort));
        json_object_object_add(re, "summary", jstring("auto"));
        json_object_object_add(r, "reasoning", re);
    }
    json_object *rf = jget(chat, "response_format");
    const char *rft = jstr(rf, "type", NULL);
    if (rft && (strcmp(rft, "json_schema") == 0 || strcmp(rft, "json_object") == 0)) {
        json_object *fmt = json_object_new_object();
        json_object_object_add(fmt, "type", jstring(rft));
        json_object *js = jget(rf, "json_schema");
        if (jis(js, json_type_object)) {
            json_object_object_foreach(js, k, v) jshare(fmt, k, v);
        }
        json_object *text = json_object_new_object();
        json_object_object_add(text, "format", fmt);
        json_object_object_add(r, "text", text);
    }
    static const char *const copy[] = {"temperature", "top_p", "user"};
    for (size_t k = 0; k < CG_ARRAY_LEN(copy); k++) {
        json_object *v = jget(chat, copy[k]);
        if (v && !jis(v, json_type_null))
            jshare(r, copy[k], v);
    }
    if (c->supports_store) {
        /* Chat completions are not stored unless asked; Responses are. */
        json_object *st = jget(chat, "store");
        json_object_object_add(
            r, "store",
            json_object_new_boolean(jis(st, json_type_boolean) && json_object_get_boolean(st)));
    }
    json_object_object_add(r, "stream", json_object_new_boolean(stream));
    return r;
fail:
    json_object_put(r);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* chat tree -> anthropic-messages                                          */

/* Append blocks to the last message if it has this role, else a new one:
 * Anthropic wants user and assistant turns to alternate, and a tool result
 * is a user turn. */
static void anth_push(json_object *msgs, const char *role, json_object *blocks)
{
    if (json_object_array_length(blocks) == 0) {
        json_object_put(blocks);
        return;
    }
    size_t n = json_object_array_length(msgs);
    json_object *last = n ? json_object_array_get_idx(msgs, n - 1) : NULL;
    if (last && jstreq(last, "role", role)) {
        json_object *c = jget(last, "content");
        size_t bn = json_object_array_length(blocks);
        for (size_t i = 0; i < bn; i++)
            json_object_array_add(c, json_object_get(json_object_array_get_idx(blocks, i)));
        json_object_put(blocks);
        return;
    }
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", jstring(role));
    json_object_object_add(m, "content", blocks);
    json_object_array_add(msgs, m);
}

static void anth_text_block(json_object *blocks, const char *s, size_t n)
{
    if (n == 0)
        return; /* Anthropic rejects empty text blocks */
    json_object *b = json_object_new_object();
    json_object_object_add(b, "type", jstring("text"));
    json_object_object_add(b, "text", jstring_len(s, n));
    json_object_array_add(blocks, b);
}

static json_object *anth_image_block(const char *url)
{
    json_object *b = json_object_new_object();
    json_object *src = json_object_new_object();
    json_object_object_add(b, "type", jstring("image"));
    const char *semi = strchr(url, ';');
    if (strncmp(url, "data:", 5) == 0 && semi && strncmp(semi, ";base64,", 8) == 0) {
        json_object_object_add(src, "type", jstring("base64"));
        json_object_object_add(src, "media_type", jstring_len(url + 5, (size_t)(semi - url - 5)));
        json_object_object_add(src, "data", jstring(semi + 8));
    } else {
        json_object_object_add(src, "type", jstring("url"));
        json_object_object_add(src, "url", jstring(url));
    }
    json_object_object_add(b, "source", src);
    return b;
}

static void anth_content_blocks(json_object *ct, json_object *blocks)
{
    if (jis(ct, json_type_string)) {
        anth_text_block(blocks, json_object_get_string(ct), (size_t)json_object_get_string_len(ct));
        return;
    }
    size_t n = jis(ct, json_type_array) ? json_object_array_length(ct) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(ct, i);
        const char *t = jstr(p, "type", NULL);
        if (t && strcmp(t, "image_url") == 0) {
            json_object *iu = jget(p, "image_url");
            const char *url =
                jis(iu, json_type_string) ? json_object_get_string(iu) : jstr(iu, "url", NULL);
            if (url)
                json_object_array_add(blocks, anth_image_block(url));
        } else {
            size_t l = 0;
            const char *text = jstr(p, "text", &l);
            if (text)
                anth_text_block(blocks, text, l);
        }
    }
}

static int64_t thinking_budget(const char *effort)
{
    if (!effort)
        return 0;
    if (strcmp(effort, "low") == 0)
        return 1024;
    if (strcmp(effort, "medium") == 0)
        return 4096;
    if (strcmp(effort, "high") == 0)
        return 16384;
    if (strcmp(effort, "xhigh") == 0 || strcmp(effort, "max") == 0)
        return 32768;
    return 0; /* none, minimal */
}

static json_object *chat_to_anth_tree(json_object *chat, const cg_model_t *m, bool stream,
                                      char *err, size_t errlen)
{
    CG_UNUSED(err);
    CG_UNUSED(errlen);
    json_object *a = json_object_new_object();
    json_object_object_add(a, "model", jstring(m->id));
    static const char *const mkeys[] = {"max_completion_tokens", "max_tokens"};
    int64_t max_tokens = first_int(chat, mkeys, 2);
    if (max_tokens <= 0)
        max_tokens = m->max_tokens > 0 ? m->max_tokens : 4096;
    json_object_object_add(a, "max_tokens", json_object_new_int64(max_tokens));

    cg_buf_t system = {0};
    json_object *msgs = json_object_new_array();
    json_object *cm = jget(chat, "messages");
    size_t n = jis(cm, json_type_array) ? json_object_array_length(cm) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *msg = json_object_array_get_idx(cm, i);
        const char *role = jstr(msg, "role", NULL);
        json_object *ct = jget(msg, "content");
        if (!role)
            continue;
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if (system.len)
                cg_buf_puts(&system, "\n\n");
            content_text(ct, "\n", &system);
        } else if (strcmp(role, "user") == 0) {
            json_object *blocks = json_object_new_array();
            anth_content_blocks(ct, blocks);
            anth_push(msgs, "user", blocks);
        } else if (strcmp(role, "assistant") == 0) {
            json_object *blocks = json_object_new_array();
            anth_content_blocks(ct, blocks);
            json_object *tcs = jget(msg, "tool_calls");
            size_t tn = jis(tcs, json_type_array) ? json_object_array_length(tcs) : 0;
            for (size_t k = 0; k < tn; k++) {
                json_object *tc = json_object_array_get_idx(tcs, k);
                json_object *fn = jget(tc, "function");
                json_object *b = json_object_new_object();
                json_object_object_add(b, "type", jstring("tool_use"));
                json_object_object_add(
                    b, "id",
                    jstring(jstr(tc, "id", NULL) ? jstr(tc, "id", NULL) : "toolu_missing"));
                json_object_object_add(
                    b, "name", jstring(jstr(fn, "name", NULL) ? jstr(fn, "name", NULL) : ""));
                size_t al = 0;
                const char *args = jstr(fn, "arguments", &al);
                char perr[64];
                json_object *in = args ? cg_xl_xjson_parse(args, al, perr, sizeof perr) : NULL;
                if (!jis(in, json_type_object)) {
                    /* Anthropic needs an object; the model's own malformed
                     * arguments cannot be repaired here. */
                    json_object_put(in);
                    in = json_object_new_object();
                }
                json_object_object_add(b, "input", in);
                json_object_array_add(blocks, b);
            }
            anth_push(msgs, "assistant", blocks);
        } else if (strcmp(role, "tool") == 0) {
            json_object *blocks = json_object_new_array();
            json_object *b = json_object_new_object();
            json_object_object_add(b, "type", jstring("tool_result"));
            json_object_object_add(
                b, "tool_use_id",
                jstring(jstr(msg, "tool_call_id", NULL) ? jstr(msg, "tool_call_id", NULL) : ""));
            json_object *s = content_string(ct, "\n");
            if (json_object_get_string_len(s) > 0)
                json_object_object_add(b, "content", s);
            else
                json_object_put(s);
            json_object_array_add(blocks, b);
            anth_push(msgs, "user", blocks);
        }
    }
    if (system.len)
        json_object_object_add(a, "system", jstring_len(system.data, system.len));
    cg_buf_free(&system);
    json_object_object_add(a, "messages", msgs);

    /* tools and tool_choice */
    json_object *tools = jget(chat, "tools");
    json_object *tc = jget(chat, "tool_choice");
    bool forced = false;
    if (m->compat.supports_tools && jis(tools, json_type_array)) {
        json_object *at = json_object_new_array();
        size_t tn = json_object_array_length(tools);
        for (size_t i = 0; i < tn; i++) {
            json_object *fn = jget(json_object_array_get_idx(tools, i), "function");
            if (!jis(fn, json_type_object))
                continue;
            json_object *w = json_object_new_object();
            if (jget(fn, "name"))
                jshare(w, "name", jget(fn, "name"));
            if (jis(jget(fn, "description"), json_type_string))
                jshare(w, "description", jget(fn, "description"));
            if (jis(jget(fn, "parameters"), json_type_object)) {
                jshare(w, "input_schema", jget(fn, "parameters"));
            } else {
                json_object *s = json_object_new_object();
                json_object_object_add(s, "type", jstring("object"));
                json_object_object_add(s, "properties", json_object_new_object());
                json_object_object_add(w, "input_schema", s);
            }
            json_object_array_add(at, w);
        }
        json_object_object_add(a, "tools", at);
        json_object *choice = NULL;
        const char *ts = jis(tc, json_type_string) ? json_object_get_string(tc) : NULL;
        const char *fname = jstr(jget(tc, "function"), "name", NULL);
        if (ts && strcmp(ts, "required") == 0) {
            choice = json_object_new_object();
            json_object_object_add(choice, "type", jstring("any"));
            forced = true;
        } else if (ts && strcmp(ts, "none") == 0) {
            choice = json_object_new_object();
            json_object_object_add(choice, "type", jstring("none"));
        } else if (fname) {
            choice = json_object_new_object();
            json_object_object_add(choice, "type", jstring("tool"));
            json_object_object_add(choice, "name", jstring(fname));
            forced = true;
        }
        json_object *ptc = jget(chat, "parallel_tool_calls");
        if (jis(ptc, json_type_boolean) && !json_object_get_boolean(ptc)) {
            if (!choice) {
                choice = json_object_new_object();
                json_object_object_add(choice, "type", jstring("auto"));
            }
            if (!jstreq(choice, "type", "none"))
                json_object_object_add(choice, "disable_parallel_tool_use",
                                       json_object_new_boolean(1));
        }
        if (choice)
            json_object_object_add(a, "tool_choice", choice);
    }

    /* Extended thinking from the effort, when the model reasons and the
     * budget fits under max_tokens (Anthropic wants budget < max_tokens). */
    int64_t budget = m->reasoning && m->compat.supports_reasoning_effort
                         ? thinking_budget(jstr(chat, "reasoning_effort", NULL))
                         : 0;
    if (budget >= max_tokens)
        budget = max_tokens / 2;
    bool thinking = budget >= 1024 && !forced;
    if (thinking) {
        json_object *t = json_object_new_object();
        json_object_object_add(t, "type", jstring("enabled"));
        json_object_object_add(t, "budget_tokens", json_object_new_int64(budget));
        json_object_object_add(a, "thinking", t);
    } else {
        json_object *temp = jget(chat, "temperature");
        if (jis(temp, json_type_double) || jis(temp, json_type_int)) {
            double v = json_object_get_double(temp);
            if (v > 1.0) /* OpenAI's range is 0..2, Anthropic's 0..1 */
                json_object_object_add(a, "temperature", json_object_new_double(1.0));
            else
                jshare(a, "temperature", temp);
        }
        if (jget(chat, "top_p") && !jis(jget(chat, "top_p"), json_type_null))
            jshare(a, "top_p", jget(chat, "top_p"));
    }
    json_object *stop = jget(chat, "stop");
    if (jis(stop, json_type_string)) {
        json_object *arr = json_object_new_array();
        json_object_array_add(arr, json_object_get(stop));
        json_object_object_add(a, "stop_sequences", arr);
    } else if (jis(stop, json_type_array) && json_object_array_length(stop) > 0) {
        jshare(a, "stop_sequences", stop);
    }
    const char *user = jstr(chat, "user", NULL);
    if (user) {
        json_object *md = json_object_new_object();
        json_object_object_add(md, "user_id", jstring(user));
        json_object_object_add(a, "metadata", md);
    }
    json_object_object_add(a, "stream", json_object_new_boolean(stream));
    return a;
}

/* ------------------------------------------------------------------------ */
/* entry                                                                    */

int cg_xlate_request(cg_xapi_t client, const cg_model_t *model, const char *body, size_t len,
                     const cg_xlate_opts_t *o, cg_buf_t *out, char *err, size_t errlen)
{
    cg_api_t api = model->api;
    if (!cg_xlate_path(api)) {
        snprintf(err, errlen, "provider API %s is not supported", cg_api_name(api));
        return CG_ENOENT;
    }
    cg_jscan_t js;
    cg_jerr_t je;
    int src;
    if (o && o->body_validated && o->body_table &&
        cg_jscan_table_load(&js, body, len, o->body_table, o->body_table_len) == 0)
        src = 0; /* the owner's scan of these bytes, handed over */
    else
        src = o && o->body_validated ? cg_jscan_object_trusted(&js, body, len, JD, &je)
                                     : cg_jscan_object(&js, body, len, JD, &je);
    if (src < 0) {
        snprintf(err, errlen, "request body is not valid JSON at byte %zu: %s", je.offset, je.msg);
        return CG_EINVAL;
    }
    if (js.truncated) {
        snprintf(err, errlen, "request body has more than %d top-level members",
                 CG_JSCAN_MAX_MEMBERS);
        return CG_EINVAL;
    }
    bool stream = o && o->stream;
    if (client == CG_XAPI_CHAT && api == CG_API_OPENAI_COMPLETIONS)
        return chat_to_chat(model, &js, stream, out, err, errlen);
    if (client == CG_XAPI_RESPONSES && api == CG_API_OPENAI_RESPONSES)
        return resp_to_resp(model, &js, stream, out, err, errlen);

    char perr[128];
    json_object *root = cg_xl_xjson_parse_ex(body, len, true, perr, sizeof perr);
    if (!root) {
        snprintf(err, errlen, "request body is not valid JSON: %s", perr);
        return CG_EINVAL;
    }
    json_object *chat = root;
    if (client == CG_XAPI_RESPONSES) {
        chat = resp_to_chat_tree(root, cg_api_name(api), err, errlen);
        json_object_put(root);
        if (!chat)
            return CG_EINVAL;
    } else if (!jis(jget(chat, "messages"), json_type_array)) {
        json_object_put(chat);
        snprintf(err, errlen, "`messages` must be an array");
        return CG_EINVAL;
    }
    json_object *up = NULL;
    if (api == CG_API_OPENAI_COMPLETIONS) {
        chat_tree_finish(chat, model, stream);
        up = json_object_get(chat);
    } else if (api == CG_API_OPENAI_RESPONSES) {
        up = chat_to_resp_tree(chat, model, stream, err, errlen);
    } else {
        up = chat_to_anth_tree(chat, model, stream, err, errlen);
    }
    json_object_put(chat);
    if (!up)
        return CG_EINVAL;
    cg_xl_xjson_append(out, up);
    json_object_put(up);
    return 0;
}
