/*
 * provider.h — the provider actor: one per configured provider, owning a
 * libcurl multi handle driven from the actor's epoll loop.
 *
 * DESIGN
 * The owner of a client request (the HTTP front) sends CG_PROV_REQUEST with
 * the client's JSON body as received, which the owner has validated (strict
 * JSON, cg_jscan_object): the provider scans it again only for where its
 * members are, without re-checking string contents (a body that is not valid
 * JSON after all can make a malformed upstream request, never an out-of-
 * bounds read). The provider actor rewrites what the
 * upstream needs (model -> provider-local id, stream usage), sends it with
 * the provider's and model's headers, parses the upstream reply (SSE
 * incrementally when streaming) and sends the pieces back to reply_to, each
 * message carrying the request's req_id. The provider only reports; the
 * owner decides what a failure means (retry elsewhere, error to the client).
 *
 * Exactly one terminal message (DONE or FAIL) is sent per REQUEST, unless the
 * owner cancelled it first (then none). Before it: at most one HEAD, then
 * any number of CHUNKs (streaming only).
 */
#ifndef CG_PROVIDER_H
#define CG_PROVIDER_H

#include "actors/actor.h"
#include "actors/snapshot.h"

enum {
    /* owner -> provider */
    CG_PROV_REQUEST = 100, /* [ref s, stream b, client_usage b, body x,
                              connect_ms i, first_token_ms i, idle_ms i, total_ms i,
                              client_api i, omit_reasoning b, response_id S,
                              member_table x|nil]: the last four optional, in
                              order; member_table is the owner's
                              cg_jscan_table_pack of body */
    CG_PROV_CANCEL = 101,  /* req_id in the header; no payload. No reply. */

    /* provider -> owner (req_id in the header) */
    CG_PROV_HEAD = 110,  /* [status i, content_type s]: upstream headers in, 2xx */
    CG_PROV_CHUNK = 111, /* [data x, event s|nil, data x, event s|nil, ...]: the SSE
                            events of one upstream read (stream only), each the
                            client's event data, verbatim JSON, and its event name
                            (nil for chat); never "[DONE]", never the usage-only
                            chunk the provider asked for when the client did not.
                            Walk it with cg_prov_chunk_events. */
    CG_PROV_DONE = 112,  /* [status i, body x (nil when streamed), prompt_tokens i,
                            completion_tokens i, cached_tokens i, ttft_ns u] */
    CG_PROV_FAIL = 113,  /* [class s, status i, message s, retry_after_ms i, any_output b] */
};

/* Failure classes, after OpenClaw's (docs/architecture.md). */
typedef enum {
    CG_FAIL_TIMEOUT = 0,
    CG_FAIL_OVERLOADED,
    CG_FAIL_RATE_LIMIT,
    CG_FAIL_AUTH,
    CG_FAIL_BILLING,
    CG_FAIL_MODEL_NOT_FOUND,
    CG_FAIL_FORMAT,
    CG_FAIL_CONTEXT_OVERFLOW,
    CG_FAIL_UNKNOWN,
    CG_FAIL_ABORTED, /* the provider actor itself stopped (crash, shutdown): not the
                        upstream's fault, so the owner falls over without a cooldown */
} cg_fail_class_t;

const char *cg_fail_class_name(cg_fail_class_t c);

/* Call fn for each event of a CHUNK message, in order (event "" when nil).
 * 0, or CG_EINVAL if the payload is malformed (events before the fault were
 * delivered). */
int cg_prov_chunk_events(const cg_msg_t *m,
                         void (*fn)(void *ud, const char *event, size_t event_len, const char *data,
                                    size_t len),
                         void *ud);

/* Classify an upstream failure. curl_code: the CURLcode of the transfer (0 if
 * the transfer itself worked); status: HTTP status (0 if none); body: the
 * error body (may be NULL). */
cg_fail_class_t cg_fail_classify(int curl_code, long status, const char *body, size_t body_len);

/* What a provider actor needs at spawn: its provider's name and the config
 * snapshot to look itself (and models) up in on each request. */
typedef struct cg_provider_args {
    const char *provider_name; /* copied by init */
    cg_snap_t *config;         /* cg_config_t snapshot; not owned */
} cg_provider_args_t;

extern const cg_actor_spec_t cg_provider_spec;

#endif
