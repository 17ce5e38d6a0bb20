/*
 * translate.c — the reply pipeline: upstream events in, client events out.
 *
 * DESIGN
 * Decoders (xlate_dec.c) turn each upstream event into canonical events and
 * hand them to cg_xl_xs_event, which runs text through the think splitter and,
 * when the model opted in, the tool-call text parser, drops reasoning the
 * client does not want, and calls the client's encoder (xlate_enc.c). The
 * non-stream reply uses the same path with the encoders only accumulating,
 * then builds one object.
 *
 * Chat over openai-completions keeps a pass-through: a chunk whose
 * `choices` hold nothing that could need work (no '<', no '`', no escaped
 * '<', no tool call piece, no reasoning field but reasoning_content, no
 * error) while the splitters are idle goes out byte for byte. Validation (jscan) and the
 * usage bookkeeping still run on it. Once something forces a chunk through
 * the encoder in a way that changes later chunks too (a tool call made from
 * text shifts the tool indices and the finish reason), pass-through is off
 * for the rest of the stream.
 *
 * Errors never crash: malformed upstream data is CG_EINVAL with a message,
 * an upstream error event CG_ERR; both end the upstream side.
 */
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "proto/jscan.h"
#include "proto/xlate_int.h"

#include <stdatomic.h>
#include <time.h>

const char *cg_xapi_name(cg_xapi_t api)
{
    return api == CG_XAPI_RESPONSES ? "responses" : "chat.completions";
}

/* ------------------------------------------------------------------------ */
/* json helpers                                                             */

json_object *cg_xl_xjson_parse(const char *s, size_t n, char *err, size_t errlen)
{
    return cg_xl_xjson_parse_ex(s, n, false, err, errlen);
}

json_object *cg_xl_xjson_parse_ex(const char *s, size_t n, bool validated, char *err, size_t errlen)
{
    if (n > INT32_MAX) {
        snprintf(err, errlen, "JSON text too large");
        return NULL;
    }
    /* json-c is lenient (no UTF-8 check, lone surrogates, NaN): validate
     * strictly first, so whatever is built from the tree is valid JSON. */
    cg_jerr_t je;
    if (!validated && cg_jscan_validate(s, n, XLATE_JSON_DEPTH, &je) < 0) {
        snprintf(err, errlen, "at byte %zu: %s", je.offset, je.msg);
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(XLATE_JSON_DEPTH);
    json_object *o = json_tokener_parse_ex(tok, s, (int)n);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = e == json_tokener_success ? json_tokener_get_parse_end(tok) : 0;
    json_tokener_free(tok);
    if (e != json_tokener_success) {
        json_object_put(o);
        snprintf(err, errlen, "%s",
                 e == json_tokener_continue ? "unexpected end of JSON text"
                                            : json_tokener_error_desc(e));
        return NULL;
    }
    for (size_t i = end; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
            json_object_put(o);
            snprintf(err, errlen, "bytes after the JSON value at %zu", i);
            return NULL;
        }
    }
    return o;
}

void cg_xl_xjson_append(cg_buf_t *out, json_object *o)
{
    size_t l = 0;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &l);
    cg_buf_append(out, s, l);
}

/* ------------------------------------------------------------------------ */
/* pipeline                                                                 */

void cg_xl_xs_seterr(xs_t *xs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(xs->err, sizeof xs->err, fmt, ap);
    va_end(ap);
    /* Messages quote upstream text: keep them on one line, and never end
     * in half a UTF-8 sequence cut by the buffer (they go into JSON). */
    size_t n = 0;
    for (char *p = xs->err; *p; p++, n++) {
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    }
    size_t cont = 0;
    while (cont < n && cont < 4 && ((unsigned char)xs->err[n - 1 - cont] & 0xC0) == 0x80)
        cont++;
    if (cont < n) {
        unsigned char lead = (unsigned char)xs->err[n - 1 - cont];
        size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
        if (need != cont)
            xs->err[n - 1 - cont] = '\0';
    }
}

const char *cg_xl_xs_norm_finish(const char *s, size_t n)
{
    static const struct {
        const char *in, *out;
    } map[] = {
        {"stop", "stop"},
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"eos", "stop"},
        {"pause_turn", "stop"},
        {"completed", "stop"},
        {"length", "length"},
        {"max_tokens", "length"},
        {"max_output_tokens", "length"},
        {"model_length", "length"},
        {"tool_calls", "tool_calls"},
        {"tool_use", "tool_calls"},
        {"function_call", "tool_calls"},
        {"content_filter", "content_filter"},
        {"refusal", "content_filter"},
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(map); i++) {
        if (strlen(map[i].in) == n && memcmp(map[i].in, s, n) == 0)
            return map[i].out;
    }
    return "stop";
}

int cg_xl_xs_tool_find(xs_t *xs, int64_t key)
{
    for (size_t i = 0; i < xs->n_tools; i++) {
        if (xs->tools[i].key == key)
            return (int)i;
    }
    return -1;
}

int cg_xl_xs_tool_start(xs_t *xs, int64_t key, const char *id, size_t id_len, const char *name,
                        size_t name_len, int *index)
{
    if (xs->n_tools == xs->cap_tools) {
        xs->cap_tools = xs->cap_tools ? 2 * xs->cap_tools : 4;
        xs->tools = cg_realloc(xs->tools, xs->cap_tools * sizeof *xs->tools);
    }
    int i = (int)xs->n_tools++;
    xtool_t *t = &xs->tools[i];
    memset(t, 0, sizeof *t);
    t->key = key;
    t->item = -1;
    if (id && id_len)
        t->id = cg_strndup(id, id_len);
    else
        t->id = cg_sprintf("call_%s_%d", xs->resp_id, i);
    t->name = cg_strndup(name ? name : "", name ? name_len : 0);
    /* A pass-through chunk carries the upstream's own index: only valid
     * while that equals ours. */
    if (key != (int64_t)i)
        xs->fast_ok = false;
    if (index)
        *index = i;
    xev_t ev = {.kind = XEV_TOOL_START, .tool = i};
    return cg_xl_xs_event(xs, &ev);
}

static void reasoning_out(xs_t *xs, const char *s, size_t n)
{
    if (n == 0 || xs->o.omit_reasoning)
        return;
    cg_xl_enc_reasoning(xs, s, n);
}

static void tct_text(void *ud, const char *s, size_t n)
{
    xs_t *xs = ud;
    if (n)
        cg_xl_enc_text(xs, s, n);
}

static void tct_call(void *ud, const char *name, size_t name_len, const char *args, size_t args_len)
{
    xs_t *xs = ud;
    /* Calls made from text take keys no upstream index can have. */
    int64_t key = -1 - (int64_t)xs->tct.calls;
    int i = -1;
    xs->fast_ok = false;
    cg_xl_xs_tool_start(xs, key, NULL, 0, name, name_len, &i);
    xev_t ev = {.kind = XEV_TOOL_ARGS, .tool = i, .s = args, .n = args_len};
    cg_xl_xs_event(xs, &ev);
}

static void on_think(void *ud, cg_think_kind_t kind, const char *s, size_t n)
{
    xs_t *xs = ud;
    if (kind == CG_THINK_TEXT) {
        if (xs->o.tool_calls_as_text)
            cg_tctext_feed(&xs->tct, s, n);
        else if (n)
            cg_xl_enc_text(xs, s, n);
    } else if (kind == CG_THINK_INNER) {
        reasoning_out(xs, s, n);
    }
}

/* Everything the splitters hold goes out (before a finish or at the end). */
static void flush_text(xs_t *xs)
{
    cg_think_flush(&xs->think, on_think, xs);
    if (xs->o.tool_calls_as_text)
        cg_tctext_flush(&xs->tct);
}

/* Counts beyond any real request are clamped, so sums cannot overflow. */
static int64_t clamp(int64_t v)
{
    return v > XLATE_USAGE_MAX ? XLATE_USAGE_MAX : v;
}

static void merge_usage(cg_xlate_usage_t *u, const cg_xlate_usage_t *in)
{
    u->have = true;
    if (in->input >= 0)
        u->input = clamp(in->input);
    if (in->output >= 0)
        u->output = clamp(in->output);
    if (in->cache_read >= 0)
        u->cache_read = clamp(in->cache_read);
    if (in->cache_write >= 0)
        u->cache_write = clamp(in->cache_write);
    if (in->reasoning >= 0)
        u->reasoning = clamp(in->reasoning);
}

int cg_xl_xs_event(xs_t *xs, const xev_t *ev)
{
    switch (ev->kind) {
    case XEV_TEXT:
        if (ev->n)
            cg_think_feed(&xs->think, ev->s, ev->n, on_think, xs);
        return 0;
    case XEV_REASONING:
        reasoning_out(xs, ev->s, ev->n);
        return 0;
    case XEV_TOOL_START:
        cg_xl_enc_tool_start(xs, ev->tool);
        return 0;
    case XEV_TOOL_ARGS:
        if (ev->n) {
            xs->tools[ev->tool].args_len += ev->n;
            cg_xl_enc_tool_args(xs, ev->tool, ev->s, ev->n);
        }
        return 0;
    case XEV_USAGE:
        merge_usage(&xs->usage, &ev->u);
        if (ev->usage_chunk)
            cg_xl_enc_usage_chunk(xs);
        return 0;
    case XEV_FINISH:
        flush_text(xs);
        xs->finish_reason = ev->finish;
        if (xs->n_tools > 0 && strcmp(ev->finish, "stop") == 0)
            xs->finish_reason = "tool_calls";
        cg_xl_enc_finish_event(xs);
        return 0;
    case XEV_ERROR:
        cg_xl_xs_seterr(xs, "%.*s", (int)(ev->n > 400 ? 400 : ev->n), ev->s ? ev->s : "");
        if (!xs->err[0])
            cg_xl_xs_seterr(xs, "upstream reported an error%s%s", ev->code ? ": " : "",
                            ev->code ? ev->code : "");
        return CG_ERR;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* the stream object                                                        */

static atomic_uint_fast64_t id_counter; /* relaxed: uniqueness only, no ordering */

static xs_t *xs_new(cg_xapi_t client, cg_api_t provider, const char *model_ref,
                    const cg_xlate_opts_t *o)
{
    if (provider != CG_API_OPENAI_COMPLETIONS && provider != CG_API_OPENAI_RESPONSES &&
        provider != CG_API_ANTHROPIC_MESSAGES)
        return NULL;
    xs_t *xs = cg_calloc(1, sizeof *xs);
    xs->client = client;
    xs->provider = provider;
    if (o)
        xs->o = *o;
    xs->o.response_id = NULL; /* copied below; the caller's string may go */
    xs->model_ref = cg_strdup(model_ref ? model_ref : "");
    xs->created = xs->o.created ? xs->o.created : (int64_t)time(NULL);
    if (o && o->response_id && o->response_id[0]) {
        xs->resp_id = cg_strdup(o->response_id);
    } else {
        uint64_t n = atomic_fetch_add_explicit(&id_counter, 1, memory_order_relaxed);
        xs->resp_id = cg_sprintf("%s%llx%llx", client == CG_XAPI_RESPONSES ? "resp_" : "chatcmpl-",
                                 (unsigned long long)xs->created, (unsigned long long)n);
    }
    cg_think_init(&xs->think, &cg_think_reasoning_tags);
    cg_tctext_init(&xs->tct, tct_text, tct_call, xs);
    xs->fast_ok = client == CG_XAPI_CHAT && provider == CG_API_OPENAI_COMPLETIONS;
    xs->accumulate = client == CG_XAPI_RESPONSES;
    xs->cur = -1;
    xs->a_in = xs->a_cache_read = xs->a_cache_write = xs->a_out = -1;
    return xs;
}

cg_xlate_stream_t *cg_xlate_stream_new(cg_xapi_t client, cg_api_t provider, const char *model_ref,
                                       const cg_xlate_opts_t *o)
{
    return xs_new(client, provider, model_ref, o);
}

void cg_xlate_stream_free(cg_xlate_stream_t *xs)
{
    if (!xs)
        return;
    cg_think_free(&xs->think);
    cg_tctext_free(&xs->tct);
    for (size_t i = 0; i < xs->n_tools; i++) {
        cg_free(xs->tools[i].id);
        cg_free(xs->tools[i].name);
        cg_free(xs->tools[i].init_args);
    }
    cg_free(xs->tools);
    for (size_t i = 0; i < xs->n_items; i++)
        cg_buf_free(&xs->items[i].text);
    cg_free(xs->items);
    cg_buf_free(&xs->tmp);
    cg_free(xs->model_ref);
    cg_free(xs->resp_id);
    cg_free(xs->up_id);
    cg_free(xs->up_model);
    cg_free(xs);
}

/* One per reply (xs_new): kept within glibc's per-thread cache (1032 bytes),
 * like the provider's xfer_t. */
_Static_assert(sizeof(xs_t) <= 1032, "xs_t outgrew glibc's thread cache");

static bool is_done_marker(const char *d, size_t n)
{
    while (n && (*d == ' ' || *d == '\t' || *d == '\r' || *d == '\n')) {
        d++;
        n--;
    }
    while (n && (d[n - 1] == ' ' || d[n - 1] == '\t' || d[n - 1] == '\r' || d[n - 1] == '\n'))
        n--;
    return n == 6 && memcmp(d, "[DONE]", 6) == 0;
}

/* ---- chat pass-through ---- */

/* The next byte at or after i that is '"', '\\', '<' or '`' (n if none):
 * sixteen bytes a step where SSE2 is there. */
static size_t next_special(const char *s, size_t n, size_t i)
{
#if defined(__SSE2__)
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\'), lt = _mm_set1_epi8('<'),
                  bt = _mm_set1_epi8('`');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, b)),
                                   _mm_or_si128(_mm_cmpeq_epi8(v, lt), _mm_cmpeq_epi8(v, bt)));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask)
            return i + (size_t)__builtin_ctz(mask);
    }
#endif
    for (; i < n; i++) {
        char c = s[i];
        if (c == '"' || c == '\\' || c == '<' || c == '`')
            return i;
    }
    return n;
}

/* Could the `choices` bytes of a chat chunk need any work? Tool call
 * pieces always go through the decoder: it must know every call's index
 * and id, or a later piece that does need work would start a second one.
 * One pass over the bytes, stopping only at the four that can start what it
 * looks for: a chunk is a few hundred bytes, and five memmem/memchr passes
 * (each with its own set-up) cost several times more. Escaped bytes inside
 * strings are text, never keys. *finish_key: just past `"finish_reason"`,
 * or NULL. */
static bool choices_plain(const xs_t *xs, const char *s, size_t n, const char **finish_key)
{
    static const char tool_calls[] = "\"tool_calls\"", reasoning[] = "\"reasoning",
                      reasoning_content[] = "\"reasoning_content\"", finish[] = "\"finish_reason\"";
    *finish_key = NULL;
    for (size_t i = next_special(s, n, 0); i < n; i = next_special(s, n, i + 1)) {
        char c = s[i];
        if (c == '<' || c == '`')
            return false;
        size_t left = n - i;
        if (c == '\\') {
            /* Servers written in Go escape '<' as \u003c. */
            if (left >= 5 && memcmp(s + i, "\\u003", 5) == 0)
                return false;
            i++; /* the escaped byte, which may be a quote */
            continue;
        }
        if (left >= sizeof tool_calls - 1 && memcmp(s + i, tool_calls, sizeof tool_calls - 1) == 0)
            return false;
        if (left >= sizeof reasoning - 1 && memcmp(s + i, reasoning, sizeof reasoning - 1) == 0 &&
            (xs->o.omit_reasoning || left < sizeof reasoning_content - 1 ||
             memcmp(s + i, reasoning_content, sizeof reasoning_content - 1) != 0))
            return false;
        if (!*finish_key && left >= sizeof finish - 1 &&
            memcmp(s + i, finish, sizeof finish - 1) == 0)
            *finish_key = s + i + sizeof finish - 1;
    }
    return true;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The value of a member whose key ends just before p (the ':' and blanks
 * skipped), or NULL. */
static const char *value_after(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    if (p >= end || *p != ':')
        return NULL;
    p++;
    while (p < end && is_ws(*p))
        p++;
    return p < end ? p : NULL;
}

static int64_t jscan_int(const char *src, const cg_jmember_t *m)
{
    if (!m || m->type != CG_JNUMBER)
        return -1;
    char tmp[32];
    size_t l = m->val_len < sizeof tmp - 1 ? m->val_len : sizeof tmp - 1;
    memcpy(tmp, src + m->val_off, l);
    tmp[l] = '\0';
    return strtoll(tmp, NULL, 10);
}

/* usage: {prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens,
 * completion_tokens_details.reasoning_tokens}, without a tree. */
static void chat_usage_scan(xs_t *xs, const char *src, size_t len)
{
    cg_jscan_t js;
    cg_jerr_t je;
    if (cg_jscan_object(&js, src, len, XLATE_JSON_DEPTH, &je) < 0)
        return;
    cg_xlate_usage_t u = {.input = jscan_int(src, cg_jscan_get(&js, "prompt_tokens")),
                          .output = jscan_int(src, cg_jscan_get(&js, "completion_tokens")),
                          .cache_read = -1,
                          .cache_write = -1,
                          .reasoning = -1};
    const cg_jmember_t *d = cg_jscan_get(&js, "prompt_tokens_details");
    cg_jscan_t jd;
    if (d && d->type == CG_JOBJECT &&
        cg_jscan_object(&jd, src + d->val_off, d->val_len, XLATE_JSON_DEPTH, &je) == 0)
        u.cache_read = jscan_int(src + d->val_off, cg_jscan_get(&jd, "cached_tokens"));
    d = cg_jscan_get(&js, "completion_tokens_details");
    if (d && d->type == CG_JOBJECT &&
        cg_jscan_object(&jd, src + d->val_off, d->val_len, XLATE_JSON_DEPTH, &je) == 0)
        u.reasoning = jscan_int(src + d->val_off, cg_jscan_get(&jd, "reasoning_tokens"));
    merge_usage(&xs->usage, &u);
}

static void capture_identity(xs_t *xs, const cg_jscan_t *js)
{
    if (xs->up_id)
        return;
    cg_buf_t b = {0};
    const cg_jmember_t *m = cg_jscan_get(js, "id");
    if (m && m->type == CG_JSTRING && cg_jscan_string(js, m, &b) == 0)
        xs->up_id = cg_buf_steal(&b, NULL);
    cg_buf_free(&b);
    m = cg_jscan_get(js, "model");
    if (m && m->type == CG_JSTRING && cg_jscan_string(js, m, &b) == 0)
        xs->up_model = cg_buf_steal(&b, NULL);
    cg_buf_free(&b);
    int64_t c = jscan_int(js->src, cg_jscan_get(js, "created"));
    xs->up_created = c > 0 ? c : xs->created;
    if (!xs->up_id)
        xs->up_id = cg_strdup(xs->resp_id);
}

/* 1: the chunk went out verbatim (or was the usage chunk the client did not
 * ask for); 0: it needs the decoder; < 0: malformed. */
static int chat_fast(xs_t *xs, const char *data, size_t len)
{
    cg_jscan_t js;
    cg_jerr_t je;
    if (cg_jscan_object(&js, data, len, XLATE_JSON_DEPTH, &je) < 0) {
        cg_xl_xs_seterr(xs, "upstream sent an SSE event that is not JSON at byte %zu: %s",
                        je.offset, je.msg);
        return CG_EINVAL;
    }
    if (!xs->fast_ok || !cg_think_idle(&xs->think) ||
        (xs->o.tool_calls_as_text && !cg_tctext_idle(&xs->tct)))
        return 0;
    const cg_jmember_t *ch = cg_jscan_get(&js, "choices");
    const cg_jmember_t *er = cg_jscan_get(&js, "error");
    if (js.truncated || (er && er->type != CG_JNULL) || (ch && ch->type != CG_JARRAY))
        return 0;
    bool empty = true;
    if (ch) {
        const char *s = data + ch->val_off;
        size_t n = ch->val_len;
        const char *fk = NULL;
        if (!choices_plain(xs, s, n, &fk))
            return 0;
        for (size_t i = 1; i + 1 < n; i++) {
            if (!is_ws(s[i])) {
                empty = false;
                break;
            }
        }
        const char *f = fk ? value_after(fk, s + n) : NULL;
        if (f && *f == '"') {
            /* After tool calls the reason may need rewriting ("stop" from
             * servers that do not say "tool_calls"): the decoder decides. */
            if (xs->n_tools > 0)
                return 0;
            const char *q = memchr(f + 1, '"', (size_t)(s + n - f - 1));
            if (q)
                xs->finish_reason = cg_xl_xs_norm_finish(f + 1, (size_t)(q - f - 1));
        }
    }
    capture_identity(xs, &js);
    const cg_jmember_t *us = cg_jscan_get(&js, "usage");
    if (us && us->type == CG_JOBJECT) {
        chat_usage_scan(xs, data + us->val_off, us->val_len);
        /* The usage-only chunk clawgate asked for: the client gets it only
         * if it asked too. */
        if (empty && !xs->o.client_usage)
            return 1;
        xs->usage_sent = true;
    }
    if (!empty) {
        xs->role_sent = true;
        if (xs->finish_reason)
            xs->finish_sent = true;
    }
    xs->passed++;
    xs->started = true;
    xs->emit(xs->ud, NULL, data, len);
    return 1;
}

/* ---- feed ---- */

static int feed_parsed(xs_t *xs, const char *event, const char *data, size_t len)
{
    char perr[160];
    json_object *root = cg_xl_xjson_parse(data, len, perr, sizeof perr);
    if (!root) {
        cg_xl_xs_seterr(xs, "upstream sent an SSE event that is not JSON: %s", perr);
        return CG_EINVAL;
    }
    int rc;
    if (!json_object_is_type(root, json_type_object)) {
        cg_xl_xs_seterr(xs, "upstream sent an SSE event that is not a JSON object");
        rc = CG_EINVAL;
    } else if (xs->provider == CG_API_OPENAI_COMPLETIONS) {
        rc = cg_xl_dec_chat(xs, root, false);
    } else if (xs->provider == CG_API_OPENAI_RESPONSES) {
        rc = cg_xl_dec_responses(xs, event, root);
    } else {
        rc = cg_xl_dec_anthropic(xs, event, root);
    }
    json_object_put(root);
    return rc;
}

int cg_xlate_stream_feed(cg_xlate_stream_t *xs, const char *event, const char *data, size_t len,
                         cg_xlate_emit_fn emit, void *ud)
{
    if (xs->closed)
        return CG_XLATE_END;
    xs->emit = emit;
    xs->ud = ud;
    if (is_done_marker(data, len))
        return CG_XLATE_END;
    if (event && strcmp(event, "ping") == 0)
        return CG_XLATE_MORE;
    if (xs->provider == CG_API_OPENAI_COMPLETIONS && xs->client == CG_XAPI_CHAT) {
        int rc = chat_fast(xs, data, len);
        if (rc != 0)
            return rc < 0 ? rc : CG_XLATE_MORE;
    }
    int rc = feed_parsed(xs, event ? event : "", data, len);
    xs->encoded++;
    return rc;
}

void cg_xlate_stream_finish(cg_xlate_stream_t *xs, cg_xlate_emit_fn emit, void *ud)
{
    if (xs->closed)
        return;
    xs->emit = emit;
    xs->ud = ud;
    flush_text(xs);
    cg_xl_enc_close(xs);
    xs->closed = true;
}

void cg_xlate_stream_fail(cg_xlate_stream_t *xs, const char *klass, const char *message,
                          cg_xlate_emit_fn emit, void *ud)
{
    if (xs->closed)
        return;
    xs->emit = emit;
    xs->ud = ud;
    cg_xl_enc_fail(xs, klass && klass[0] ? klass : "unknown",
                   message && message[0] ? message : "upstream failed");
    xs->closed = true;
}

bool cg_xlate_stream_started(const cg_xlate_stream_t *xs)
{
    return xs->started;
}

const char *cg_xlate_stream_finish_reason(const cg_xlate_stream_t *xs)
{
    return xs->finish_reason;
}

const cg_xlate_usage_t *cg_xlate_stream_usage(const cg_xlate_stream_t *xs)
{
    return &xs->usage;
}

const char *cg_xlate_stream_error(const cg_xlate_stream_t *xs)
{
    return xs->err;
}

void cg_xlate_stream_counts(const cg_xlate_stream_t *xs, size_t *passed, size_t *encoded)
{
    if (passed)
        *passed = xs->passed;
    if (encoded)
        *encoded = xs->encoded;
}

/* ------------------------------------------------------------------------ */
/* non-stream                                                               */

static void no_emit(void *ud, const char *event, const char *data, size_t len)
{
    CG_UNUSED(ud);
    CG_UNUSED(event);
    CG_UNUSED(data);
    CG_UNUSED(len);
}

/* Chat over chat: the body can go out as it is when its choices need no
 * work; usage is read without a tree. 1: done, 0: needs the full path. */
static int chat_body_fast(xs_t *xs, const char *body, size_t len, cg_buf_t *out)
{
    cg_jscan_t js;
    cg_jerr_t je;
    if (cg_jscan_object(&js, body, len, XLATE_JSON_DEPTH, &je) < 0) {
        cg_xl_xs_seterr(xs, "upstream sent invalid JSON at byte %zu: %s", je.offset, je.msg);
        return CG_EINVAL;
    }
    const cg_jmember_t *ch = cg_jscan_get(&js, "choices");
    const cg_jmember_t *er = cg_jscan_get(&js, "error");
    const char *fk = NULL;
    if (js.truncated || (er && er->type != CG_JNULL) || !ch || ch->type != CG_JARRAY ||
        !choices_plain(xs, body + ch->val_off, ch->val_len, &fk))
        return 0;
    const cg_jmember_t *us = cg_jscan_get(&js, "usage");
    if (us && us->type == CG_JOBJECT)
        chat_usage_scan(xs, body + us->val_off, us->val_len);
    const char *f = fk ? value_after(fk, body + ch->val_off + ch->val_len) : NULL;
    if (f && *f == '"') {
        const char *q = memchr(f + 1, '"', (size_t)(body + ch->val_off + ch->val_len - f - 1));
        if (q)
            xs->finish_reason = cg_xl_xs_norm_finish(f + 1, (size_t)(q - f - 1));
    }
    cg_buf_append(out, body, len);
    xs->passed++;
    return 1;
}

int cg_xlate_response(cg_xapi_t client, cg_api_t provider, const char *model_ref, const char *body,
                      size_t len, const cg_xlate_opts_t *o, cg_buf_t *out, cg_xlate_usage_t *usage,
                      char *err, size_t errlen)
{
    xs_t *xs = xs_new(client, provider, model_ref, o);
    if (!xs) {
        snprintf(err, errlen, "provider API not supported");
        return CG_ENOENT;
    }
    xs->nonstream = true;
    xs->accumulate = true;
    xs->emit = no_emit;
    int rc = 0;
    if (client == CG_XAPI_CHAT && provider == CG_API_OPENAI_COMPLETIONS) {
        rc = chat_body_fast(xs, body, len, out);
        if (rc != 0) {
            rc = rc > 0 ? 0 : rc;
            goto done;
        }
    }
    char perr[160];
    json_object *root = cg_xl_xjson_parse(body, len, perr, sizeof perr);
    if (!root) {
        cg_xl_xs_seterr(xs, "upstream sent invalid JSON: %s", perr);
        rc = CG_EINVAL;
        goto done;
    }
    if (!json_object_is_type(root, json_type_object)) {
        cg_xl_xs_seterr(xs, "upstream reply is not a JSON object");
        rc = CG_EINVAL;
    } else if (provider == CG_API_OPENAI_COMPLETIONS) {
        rc = cg_xl_dec_chat(xs, root, true);
    } else if (provider == CG_API_OPENAI_RESPONSES) {
        rc = cg_xl_dec_responses_body(xs, root);
    } else {
        rc = cg_xl_dec_anthropic_body(xs, root);
    }
    json_object_put(root);
    if (rc < 0)
        goto done;
    flush_text(xs);
    if (!xs->finish_reason)
        xs->finish_reason = xs->n_tools ? "tool_calls" : "stop";
    cg_xl_enc_build_body(xs, out);
    xs->encoded++;
    rc = 0;
done:
    if (rc < 0)
        snprintf(err, errlen, "%s", xs->err);
    if (usage)
        *usage = xs->usage;
    cg_xlate_stream_free(xs);
    return rc;
}
