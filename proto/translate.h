/*
 * translate.h — API translation: any client API over any provider API, with
 * reasoning kept apart from the final text and compat shaping for local
 * servers.
 *
 * DESIGN
 * Clients speak chat completions (POST /v1/chat/completions) or Responses
 * (POST /v1/responses); providers speak openai-completions,
 * openai-responses or anthropic-messages. Requests are translated in one
 * call (cg_xlate_request). Replies go through a canonical event stream:
 *
 *   upstream SSE event / whole body
 *     -> decoder for the provider's API   (text, reasoning, tool call start,
 *                                          tool call args, usage, finish,
 *                                          error)
 *     -> <think> splitter on text          (proto/think.h: inline reasoning
 *                                          becomes reasoning)
 *     -> <tool_call> text parser on text   (proto/toolcall_text.h, opt-in)
 *     -> encoder for the client's API      (chat.completion.chunk JSON, or
 *                                          Responses events with names,
 *                                          item ids and sequence numbers;
 *                                          or one non-stream object)
 *
 * The hot path is a chat client over openai-completions with nothing to
 * change: the request is edited without a tree (proto/jscan.h: model,
 * stream, stream_options and top-level compat keys), and each upstream chunk
 * costs a scan for '<', '`', "\u003c", "reasoning" and "error" in its
 * `choices` before it is passed on byte for byte. Only a chunk that needs
 * work is parsed (json-c) and re-encoded.
 *
 * Threads: nothing here is shared; a cg_xlate_stream_t belongs to one
 * transfer and is used from one thread.
 */
#ifndef CG_TRANSLATE_H
#define CG_TRANSLATE_H

#include "common/cg.h"
#include "config/config.h"

/* The client's API. */
typedef enum {
    CG_XAPI_CHAT = 0,  /* POST /v1/chat/completions */
    CG_XAPI_RESPONSES, /* POST /v1/responses */
} cg_xapi_t;

const char *cg_xapi_name(cg_xapi_t api); /* "chat.completions", "responses" */

typedef struct cg_xlate_opts {
    /* request */
    bool stream;            /* what to ask the upstream for (the reply is parsed as that) */
    bool body_validated;    /* the client body passed cg_jscan_object in this process:
                               scan it again without checking string contents */
    const void *body_table; /* with body_validated: the owner's member table of the
                               body (cg_jscan_table_pack), used instead of a scan */
    size_t body_table_len;
    /* reply */
    bool omit_reasoning;     /* x-clawgate-reasoning: omit, or per model/tenant */
    bool tool_calls_as_text; /* parse <tool_call> text (model compat.tool_calls_as_text) */
    bool client_usage;       /* chat: the client asked stream_options.include_usage */
    int64_t created;         /* unix seconds for `created` / `created_at`; 0: now */
    const char *response_id; /* id for the client object ("chatcmpl-...", "resp_...");
                                NULL: derived from created and a counter */
} cg_xlate_opts_t;

/* ------------------------------------------------------------------------ */
/* requests                                                                 */

/* The upstream request body for model->api made from a client body of API
 * `client`: `model` set to model->id, `stream` as o->stream, stream usage
 * asked for when the upstream can give it (openai-completions:
 * stream_options.include_usage unless compat.supports_usage_in_streaming is
 * false; Responses and Anthropic always report it), compat shaping (see
 * docs/translation.md), and for anthropic-messages `max_tokens` (the
 * client's max tokens, else model->max_tokens). Client session fields
 * (previous_response_id, conversation) are dropped: clawgate owns sessions.
 *
 * 0 with out filled (appended), or CG_EINVAL with a message for the client
 * in err (a 400: the body is not valid JSON, not an object, or has a field
 * of the wrong type). CG_ENOENT if model->api is CG_API_UNSUPPORTED. */
int cg_xlate_request(cg_xapi_t client, const cg_model_t *model, const char *body, size_t len,
                     const cg_xlate_opts_t *o, cg_buf_t *out, char *err, size_t errlen);

/* What the provider appends to its base URL: "/chat/completions",
 * "/responses", "/messages"; NULL for CG_API_UNSUPPORTED. */
const char *cg_xlate_path(cg_api_t api);

/* The headers an API needs before the configured ones, each through
 * add(ud, name, value): Content-Type and Accept always; then
 *   openai-*:  Authorization: Bearer <provider api_key> (when a key is set)
 *   anthropic: x-api-key: <key> (when set), anthropic-version: 2023-06-01
 * Values are valid during the call only. */
void cg_xlate_headers(const cg_model_t *model, bool stream,
                      void (*add)(void *ud, const char *name, const char *value), void *ud);

/* ------------------------------------------------------------------------ */
/* replies                                                                  */

typedef struct cg_xlate_usage {
    bool have;           /* the upstream reported any usage */
    int64_t input;       /* all prompt tokens, cached ones included */
    int64_t output;      /* completion tokens, reasoning included */
    int64_t cache_read;  /* part of input read from the prompt cache */
    int64_t cache_write; /* part of input written to it (Anthropic) */
    int64_t reasoning;   /* part of output spent reasoning, when reported */
} cg_xlate_usage_t;

/* Called once per client SSE event. event is NULL for chat completions
 * (the front writes "data: <data>\n\n") and the Responses event name for
 * Responses ("event: <event>\ndata: <data>\n\n"). data is one line of JSON,
 * valid during the call only. */
typedef void (*cg_xlate_emit_fn)(void *ud, const char *event, const char *data, size_t len);

typedef struct cg_xlate_stream cg_xlate_stream_t;

/* A translator for one streamed attempt. model_ref is what the client sees
 * as `model` ("provider/id") when the reply is re-encoded (a chat reply
 * passed through keeps the upstream's own fields). NULL when provider is
 * CG_API_UNSUPPORTED. A failover to another provider takes a new stream. */
cg_xlate_stream_t *cg_xlate_stream_new(cg_xapi_t client, cg_api_t provider, const char *model_ref,
                                       const cg_xlate_opts_t *o);
void cg_xlate_stream_free(cg_xlate_stream_t *xs);

/* Results of cg_xlate_stream_feed. */
enum {
    CG_XLATE_MORE = 0, /* go on reading */
    CG_XLATE_END = 1,  /* the upstream said the reply is complete (chat [DONE],
                          response.completed / .incomplete, message_stop):
                          call cg_xlate_stream_finish */
};

/* One upstream SSE event (event: the `event:` field, "" or NULL if none;
 * data: its data). Client events go out through emit, zero or more per
 * upstream event. Returns CG_XLATE_MORE, CG_XLATE_END, or
 *   CG_EINVAL  malformed upstream data (not JSON, wrong shape): class unknown;
 *   CG_ERR     the upstream reported an error inside the stream: classify
 *              the event data (cg_fail_classify(0, 0, data, len)).
 * Either way cg_xlate_stream_error() has a message, and the stream is over
 * on the upstream side: the caller ends it with cg_xlate_stream_fail if
 * output reached the client, or fails over if not. */
int cg_xlate_stream_feed(cg_xlate_stream_t *xs, const char *event, const char *data, size_t len,
                         cg_xlate_emit_fn emit, void *ud);

/* The upstream completed cleanly: emit what is still held and the closing
 * events. Chat: the finish chunk if not yet sent, the usage chunk if the
 * client asked for it and it was not passed on already; the caller then
 * writes "data: [DONE]" itself. Responses: closes open items, then
 * response.completed (or response.incomplete when the output was cut by
 * the token limit); nothing follows it. Idempotent. */
void cg_xlate_stream_finish(cg_xlate_stream_t *xs, cg_xlate_emit_fn emit, void *ud);

/* End the client stream with an error in the client's format: chat
 * {"error":{"message","type":"upstream_error","code":klass}}, Responses
 * response.failed (status failed, error {code: klass, message}, output so
 * far). klass is a failure class name ("timeout", "unknown", ...). Nothing
 * is emitted after it. Use only when output reached the client (else fail
 * over); without any output it still emits a well-formed failure. */
void cg_xlate_stream_fail(cg_xlate_stream_t *xs, const char *klass, const char *message,
                          cg_xlate_emit_fn emit, void *ud);

/* Client-visible output has been emitted (a content, reasoning or tool
 * call event, or a passed-through chunk): failover is no longer allowed. */
bool cg_xlate_stream_started(const cg_xlate_stream_t *xs);
/* The upstream reported a finish reason ("stop", "length", "tool_calls",
 * "content_filter"), or NULL. */
const char *cg_xlate_stream_finish_reason(const cg_xlate_stream_t *xs);
const cg_xlate_usage_t *cg_xlate_stream_usage(const cg_xlate_stream_t *xs);
/* Message for the last CG_EINVAL / CG_ERR from feed ("" if none). */
const char *cg_xlate_stream_error(const cg_xlate_stream_t *xs);
/* Chunks passed through unchanged vs re-encoded (for tests and the bench). */
void cg_xlate_stream_counts(const cg_xlate_stream_t *xs, size_t *passed, size_t *encoded);

/* A whole non-stream upstream reply (2xx body) to the client's object
 * (chat.completion or response), appended to out; usage filled when not
 * NULL. model_ref and o as for cg_xlate_stream_new. 0, CG_EINVAL (malformed
 * upstream body: class unknown) or CG_ERR (a 200 carrying an error object:
 * classify the body); err gets the message. */
int cg_xlate_response(cg_xapi_t client, cg_api_t provider, const char *model_ref, const char *body,
                      size_t len, const cg_xlate_opts_t *o, cg_buf_t *out, cg_xlate_usage_t *usage,
                      char *err, size_t errlen);

#endif
