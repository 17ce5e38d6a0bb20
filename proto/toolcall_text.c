/*
 * toolcall_text.c — <tool_call> text to tool calls (see toolcall_text.h).
 *
 * DESIGN
 * The splitter reports text, an opening tag, the span's body in pieces and a
 * closing tag; this file only collects the body and decides at the close.
 * The body is parsed with json-c (small, and already the project's tree
 * type); `arguments` may be an object (re-serialised compactly) or a string
 * holding JSON (passed as it is), `parameters` is accepted as its synonym.
 */
#include "proto/toolcall_text.h"

#include <json.h>

static const char *const tc_opens[] = {"<tool_call>"};
static const char *const tc_closes[] = {"</tool_call>"};
static const cg_think_tags_t tc_tags = {
    .opens = tc_opens,
    .n_opens = 1,
    .closes = tc_closes,
    .n_closes = 1,
};

int cg_tctext_parse(const char *s, size_t n, cg_buf_t *name, cg_buf_t *args)
{
    if (n > CG_TCTEXT_MAX)
        return CG_EINVAL;
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *o = json_tokener_parse_ex(tok, s, (int)n);
    bool complete = json_tokener_get_error(tok) == json_tokener_success;
    size_t used = complete ? json_tokener_get_parse_end(tok) : 0;
    json_tokener_free(tok);
    int rc = CG_EINVAL;
    if (!complete || !o || !json_object_is_type(o, json_type_object))
        goto done;
    for (size_t i = used; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            goto done;
    }
    json_object *nm = NULL, *a = NULL;
    if (!json_object_object_get_ex(o, "name", &nm) || !json_object_is_type(nm, json_type_string) ||
        json_object_get_string_len(nm) == 0)
        goto done;
    if (!json_object_object_get_ex(o, "arguments", &a))
        json_object_object_get_ex(o, "parameters", &a);
    cg_buf_append(name, json_object_get_string(nm), (size_t)json_object_get_string_len(nm));
    cg_buf_append(name, "", 1);
    name->len--;
    if (!a || json_object_is_type(a, json_type_null)) {
        cg_buf_puts(args, "{}");
    } else if (json_object_is_type(a, json_type_string)) {
        cg_buf_append(args, json_object_get_string(a), (size_t)json_object_get_string_len(a));
    } else {
        size_t l = 0;
        const char *j = json_object_to_json_string_length(
            a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &l);
        cg_buf_append(args, j, l);
    }
    cg_buf_append(args, "", 1);
    args->len--;
    rc = 0;
done:
    json_object_put(o);
    return rc;
}

/* The held span as text: opening tag, body, and the closing tag if any. */
static void give_back(cg_tctext_t *p, const char *close, size_t close_len)
{
    if (p->open_tag.len)
        p->text(p->ud, p->open_tag.data, p->open_tag.len);
    if (p->inner.len)
        p->text(p->ud, p->inner.data, p->inner.len);
    if (close_len)
        p->text(p->ud, close, close_len);
}

static void decide(cg_tctext_t *p, const char *close, size_t close_len)
{
    cg_buf_t name = {0}, args = {0};
    if (cg_tctext_parse(p->inner.data ? p->inner.data : "", p->inner.len, &name, &args) == 0) {
        p->calls++;
        p->call(p->ud, name.data, name.len, args.data, args.len);
    } else {
        give_back(p, close, close_len);
    }
    cg_buf_free(&name);
    cg_buf_free(&args);
    cg_buf_reset(&p->inner);
    cg_buf_reset(&p->open_tag);
}

static void on_split(void *ud, cg_think_kind_t kind, const char *s, size_t n)
{
    cg_tctext_t *p = ud;
    switch (kind) {
    case CG_THINK_TEXT:
        p->text(p->ud, s, n);
        break;
    case CG_THINK_OPEN:
        cg_buf_reset(&p->open_tag);
        cg_buf_reset(&p->inner);
        cg_buf_append(&p->open_tag, s, n);
        p->overflow = false;
        break;
    case CG_THINK_INNER:
        if (p->overflow) {
            p->text(p->ud, s, n);
        } else if (p->inner.len + n > CG_TCTEXT_MAX) {
            give_back(p, NULL, 0);
            p->text(p->ud, s, n);
            cg_buf_reset(&p->inner);
            cg_buf_reset(&p->open_tag);
            p->overflow = true;
        } else {
            cg_buf_append(&p->inner, s, n);
        }
        break;
    case CG_THINK_CLOSE:
        if (p->overflow)
            p->text(p->ud, s, n);
        else
            decide(p, s, n);
        p->overflow = false;
        break;
    case CG_THINK_END:
        if (!p->overflow)
            decide(p, NULL, 0);
        p->overflow = false;
        break;
    }
}

void cg_tctext_init(cg_tctext_t *p, cg_tctext_text_cb text, cg_tctext_call_cb call, void *ud)
{
    memset(p, 0, sizeof *p);
    cg_think_init(&p->split, &tc_tags);
    p->text = text;
    p->call = call;
    p->ud = ud;
}

void cg_tctext_feed(cg_tctext_t *p, const char *s, size_t n)
{
    cg_think_feed(&p->split, s, n, on_split, p);
}

void cg_tctext_flush(cg_tctext_t *p)
{
    cg_think_flush(&p->split, on_split, p);
}

bool cg_tctext_idle(const cg_tctext_t *p)
{
    return cg_think_idle(&p->split);
}

void cg_tctext_free(cg_tctext_t *p)
{
    cg_think_free(&p->split);
    cg_buf_free(&p->inner);
    cg_buf_free(&p->open_tag);
}
