/*
 * xlate_int.h — internals shared by the translation files (not a public
 * header: only proto/translate.c, xlate_dec.c, xlate_enc.c, xlate_req.c and
 * their tests include it).
 *
 * The canonical event (xev_t) is what decoders produce and encoders
 * consume; cg_xlate_stream holds the whole state of one reply: decoder
 * bookkeeping (tool index maps, Anthropic usage parts), the text pipeline
 * (think splitter, tool-call text parser), encoder state (Responses items
 * and sequence numbers, chat role/finish/usage flags) and the accumulator
 * the Responses encoder and the non-stream builders share.
 */
#ifndef CG_XLATE_INT_H
#define CG_XLATE_INT_H

#include "proto/think.h"
#include "proto/toolcall_text.h"
#include "proto/translate.h"

#include <json.h>

#define XLATE_JSON_DEPTH 128
#define XLATE_USAGE_MAX ((int64_t)1 << 48) /* token counts are clamped to this */

typedef enum {
    XEV_TEXT = 0,
    XEV_REASONING,
    XEV_TOOL_START,
    XEV_TOOL_ARGS,
    XEV_USAGE,
    XEV_FINISH,
    XEV_ERROR,
} xev_kind_t;

typedef struct xev {
    xev_kind_t kind;
    const char *s; /* TEXT, REASONING, TOOL_ARGS, ERROR (message) */
    size_t n;
    int tool;           /* TOOL_*: canonical index into xs->tools */
    cg_xlate_usage_t u; /* USAGE: fields < 0 were not reported */
    bool usage_chunk;   /* USAGE: from a chat chunk without choices */
    const char *finish; /* FINISH: canonical reason */
    const char *code;   /* ERROR: upstream type/code, may be NULL */
} xev_t;

typedef struct xtool {
    int64_t key; /* the upstream's index (chat index, output_index, block index);
                    negative for calls parsed from text */
    char *id;    /* call id the client sees */
    char *name;
    size_t args_len; /* argument bytes passed on so far */
    char *init_args; /* Anthropic: input given at content_block_start */
    int item;        /* index into xs->items (accumulating encoders), -1 */
} xtool_t;

typedef enum { IT_MSG = 0, IT_REASONING, IT_CALL } xitem_kind_t;

/* One output item, as the Responses API has them; the chat builders
 * concatenate. */
typedef struct xitem {
    xitem_kind_t kind;
    char id[96];
    cg_buf_t text; /* message text, reasoning text, or call arguments */
    int tool;      /* IT_CALL: index into xs->tools */
    bool open;     /* Responses stream: added and not yet done */
} xitem_t;

struct cg_xlate_stream {
    cg_xapi_t client;
    cg_api_t provider;
    cg_xlate_opts_t o;
    char *model_ref;
    char *resp_id;
    int64_t created;
    bool nonstream; /* cg_xlate_response: accumulate, emit nothing */
    bool accumulate;

    /* emit target of the call in progress */
    cg_xlate_emit_fn emit;
    void *ud;

    /* text pipeline */
    cg_think_t think;
    cg_tctext_t tct;
    bool fast_ok; /* chat over chat: chunks may still pass through verbatim */

    /* outcome */
    bool started;
    bool closed; /* finish or fail emitted its closing events */
    const char *finish_reason;
    cg_xlate_usage_t usage;
    char err[400]; /* with the rest, under 1 KiB: glibc's thread cache takes it */
    size_t passed, encoded;

    /* upstream identity of a chat reply, reused when re-encoding */
    char *up_id;
    char *up_model;
    int64_t up_created;

    /* tools, in the order they started; canonical index = position */
    xtool_t *tools;
    size_t n_tools, cap_tools;

    /* decoders */
    int64_t a_in, a_cache_read, a_cache_write, a_out; /* Anthropic usage parts */
    uint64_t r_summary_key; /* Responses: the last summary part (output, summary index) */
    bool r_summary_seen;

    /* chat encoder */
    bool role_sent;
    bool finish_sent;
    bool usage_sent;

    /* Responses encoder and accumulators */
    xitem_t *items;
    size_t n_items, cap_items;
    int cur; /* the open message or reasoning item, -1: none */
    int64_t seq;
    bool created_sent;

    cg_buf_t tmp; /* scratch for one client event */
};

typedef struct cg_xlate_stream xs_t;

/* ---- pipeline (translate.c) ---- */
int cg_xl_xs_event(xs_t *xs, const xev_t *ev);
/* Canonical index of the tool with this upstream key, or -1. */
int cg_xl_xs_tool_find(xs_t *xs, int64_t key);
/* A new tool (id NULL: one is made up) and its XEV_TOOL_START. Returns its
 * index, or < 0 from the pipeline. */
int cg_xl_xs_tool_start(xs_t *xs, int64_t key, const char *id, size_t id_len, const char *name,
                        size_t name_len, int *index);
const char *cg_xl_xs_norm_finish(const char *s, size_t n);
void cg_xl_xs_seterr(xs_t *xs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- decoders (xlate_dec.c): root is one parsed event or a whole body ---- */
int cg_xl_dec_chat(xs_t *xs, json_object *root, bool body);
int cg_xl_dec_responses(xs_t *xs, const char *event, json_object *root);
int cg_xl_dec_responses_body(xs_t *xs, json_object *root);
int cg_xl_dec_anthropic(xs_t *xs, const char *event, json_object *root);
int cg_xl_dec_anthropic_body(xs_t *xs, json_object *root);

/* ---- encoders (xlate_enc.c) ---- */
void cg_xl_enc_text(xs_t *xs, const char *s, size_t n);
void cg_xl_enc_reasoning(xs_t *xs, const char *s, size_t n);
void cg_xl_enc_tool_start(xs_t *xs, int tool);
void cg_xl_enc_tool_args(xs_t *xs, int tool, const char *s, size_t n);
void cg_xl_enc_usage_chunk(xs_t *xs); /* chat: the usage-only chunk */
void cg_xl_enc_finish_event(xs_t *xs);
void cg_xl_enc_close(xs_t *xs); /* cg_xlate_stream_finish's closing events */
void cg_xl_enc_fail(xs_t *xs, const char *klass, const char *message);
void cg_xl_enc_build_body(xs_t *xs, cg_buf_t *out); /* non-stream object */

/* ---- json helpers ---- */
json_object *cg_xl_xjson_parse(const char *s, size_t n, char *err, size_t errlen);
/* validated: s already passed cg_jscan (strict, UTF-8) and is not checked again. */
json_object *cg_xl_xjson_parse_ex(const char *s, size_t n, bool validated, char *err,
                                  size_t errlen);
void cg_xl_xjson_append(cg_buf_t *out, json_object *o);

static inline json_object *jget(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v))
        return v;
    return NULL;
}

static inline bool jis(json_object *o, json_type t)
{
    return o && json_object_is_type(o, t);
}

/* The string member k, or NULL (len set when not NULL). */
static inline const char *jstr(json_object *o, const char *k, size_t *len)
{
    json_object *v = jget(o, k);
    if (!jis(v, json_type_string))
        return NULL;
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

/* The integer member k, or dflt when absent or not a number. */
static inline int64_t jint(json_object *o, const char *k, int64_t dflt)
{
    json_object *v = jget(o, k);
    if (jis(v, json_type_int) || jis(v, json_type_double))
        return json_object_get_int64(v);
    return dflt;
}

#endif
