/*
 * provider.c — the provider actor: one per configured provider, one libcurl
 * multi handle driven from the actor's own epoll loop, and the built-in
 * HTTP/1.1 client (h1.h) for plain http:// upstreams on the same loop.
 *
 * Two transports. prepare() picks per transfer: URLs that cg_h1_target_parse
 * takes (parsed once, kept in the transfer) go to the built-in client unless
 * the operator forced libcurl (builtin_client_wanted), everything else to
 * libcurl. Both feed the same on_write and end in the same
 * complete(): the built-in client reports libcurl's error codes, and its
 * on_done may free the transfer at once (the client itself is done with it
 * then; it never calls back from inside cg_h1_start or cg_h1_cancel).
 *
 * DESIGN
 * Threads. Everything here runs in the actor's thread: the message handler,
 * the fd callbacks curl asked for (CURLMOPT_SOCKETFUNCTION maps straight onto
 * cg_actor_watch/rewatch/unwatch), and the one actor timer that stands for
 * curl's timeout (CURLMOPT_TIMERFUNCTION: -1 cancels it, 0 fires on the next
 * loop turn). So the CURLM and every transfer are single-threaded state and
 * need no locks; the owner of a request only ever sees messages.
 *
 * Re-entrancy. curl calls back into us from inside curl_multi_socket_action
 * (write data, socket and timer changes) and from curl_multi_add_handle and
 * _remove_handle (socket and timer changes). curl forbids removing a handle
 * from inside its own callbacks, so a write callback that must end its
 * transfer (the owner is gone, the upstream sent garbage) only marks it and
 * returns a short count; curl then finishes the transfer with an error and
 * the transfer is removed where that is legal: in drain_done, after
 * curl_multi_socket_action has returned. Removal from a message handler
 * (CANCEL) or from an actor timer (first-token and idle timeouts) is outside
 * any curl callback and happens at once. The socket and timer callbacks touch
 * only the actor's watch set and timer list, both of which tolerate being
 * changed from inside the callback that is running.
 *
 * One terminal message. Every transfer carries `terminal`: set the moment its
 * DONE or FAIL is sent, or when the owner turned out to be gone. After that
 * nothing more is sent for it; a transfer can stay in flight without an owner
 * only to drain the rest of an upstream reply after [DONE] (so the connection
 * can be reused), bounded by the idle and total timeouts.
 *
 * End of a stream. DONE when `data: [DONE]` arrived, or when the upstream
 * closed the reply cleanly (curl OK, no half event pending) after a chunk with
 * a non-null finish_reason: some servers (older Ollama and llama.cpp builds)
 * omit [DONE], and a finished answer is a finished answer. Anything else
 * after output started is a cut stream (FAIL timeout, any_output true), the
 * one case the owner must not retry silently.
 *
 * API adapters. The wire format of a provider is a small table of functions
 * (adapter_t): body rewrite, headers, per-event and whole-body handling, error
 * message extraction. Only openai-completions exists; openai-responses and
 * anthropic-messages get their own table later and nothing else changes.
 *
 * Memory. Bodies are bounded before they are buffered: a non-stream reply at
 * 64 MiB, an error body at 64 KB (the rest is read and dropped so the
 * connection stays usable), one SSE event at 8 MiB. Nothing borrowed from the
 * config snapshot outlives the REQUEST handler: what a transfer needs (URL,
 * header lines, the rewritten body) is copied before the snapshot is released.
 */
#include "actors/curlm.h"
#include "actors/h1.h"
#include "actors/provider.h"
#include "config/config.h"
#include "proto/translate.h"
#include "proto/jscan.h"
#include "proto/sse.h"

#include <strings.h>
#include <sys/epoll.h>

#define BODY_CAP ((size_t)64 * 1024 * 1024)
#define ERROR_BODY_CAP ((size_t)64 * 1024)
#define SSE_EVENT_CAP ((size_t)8 * 1024 * 1024)
#define EXCERPT_CAP 200
#define MAX_CONNECTS 128 /* idle connections kept for reuse (one fd each) */
#define JSON_DEPTH 128
#define MAX_HEADERS 64
#define MESSAGE_CAP 1024 /* bytes of a FAIL message */

typedef struct prov prov_t;
typedef struct xfer xfer_t;

/* What the body bytes of a reply are, decided at the first byte (or at the
 * end for an empty body) from the status and whether we asked for a stream. */
typedef enum { RX_UNDECIDED = 0, RX_SSE, RX_BODY, RX_ERROR } rx_mode_t;

typedef struct adapter {
    /* The upstream body made from the client's. 0, or < 0 with a message for
     * the owner in err (class format). */
    int (*build_body)(const xfer_t *x, const cg_model_t *m, const char *body, size_t len,
                      cg_buf_t *out, char *err, size_t errlen);
    /* One complete SSE event of a 2xx stream. 0 to go on; < 0 to stop reading
     * (the transfer's outcome is then decided and sent). */
    int (*on_event)(prov_t *p, xfer_t *x, const char *event, size_t event_len, const char *data,
                    size_t len);
    /* The whole body of a 2xx non-stream reply: 0 with usage recorded, or < 0
     * with the class and message of the failure. */
    int (*on_body)(xfer_t *x, const char *body, size_t len, cg_fail_class_t *cls, cg_buf_t *msg);
    /* The human message inside an error body (appended to out). */
    void (*error_message)(const char *body, size_t len, cg_buf_t *out);
} adapter_t;

struct xfer {
    prov_t *p;
    xfer_t *prev, *next;
    CURL *easy;            /* the transfer on libcurl, or ... */
    cg_h1_req_t *h1;       /* ... on the built-in client (plain http://, see h1.h) */
    cg_h1_target_t target; /* url parsed for the built-in client (borrowed by it) */
    bool use_h1;
    const adapter_t *ad;
    cg_aid_t owner;
    uint64_t req_id;
    bool stream;
    bool client_usage;
    cg_xapi_t client;      /* the client's API (chat completions or responses) */
    bool omit_reasoning;   /* x-clawgate-reasoning: omit */
    char *response_id;     /* the id the client sees, the same on every attempt */
    cg_xlate_stream_t *xs; /* reply translator of a streamed transfer */
    cg_xlate_opts_t xo;    /* what the translator was set up with */
    bool tool_text;        /* model compat: tool calls written as text */
    cg_api_t api;          /* the upstream's API */

    /* request */
    char *url;
    char *model_ref;            /* for logs */
    struct curl_slist *headers; /* for curl */
    cg_buf_t hlines;            /* for h1: "Name: value\r\n" lines */
    cg_buf_t body;
    char errbuf[CURL_ERROR_SIZE];
    int first_token_ms;
    int idle_ms;

    /* reply */
    rx_mode_t mode;
    long status;
    uint64_t start_ns;
    uint64_t last_rx_ns;
    uint64_t ttft_ns;
    size_t rx_bytes;
    cg_sse_t sse;
    bool sse_ready;
    cg_buf_t resp; /* whole body (RX_BODY), error body (RX_ERROR), excerpt (RX_SSE) */
    size_t events;
    bool head_sent;
    cg_buf_t batch;   /* the CHUNK being built (send_chunk_ev) */
    uint32_t batch_n; /* events in it */
    bool any_output;  /* a CHUNK went to the owner */
    bool done_seen;
    bool finish_seen;
    bool have_usage;
    int64_t prompt_tokens, completion_tokens, cached_tokens;

    /* life */
    bool terminal; /* DONE/FAIL sent, or the owner is gone: send nothing more */
    bool abort;    /* make curl end the transfer at its next write */
    uint64_t ft_timer;
    uint64_t idle_timer;
};

/* One per transfer: glibc serves blocks up to 1032 bytes from its per-thread
 * cache; a larger one goes through the arena (and made it consolidate its
 * fast bins on every request). */
_Static_assert(sizeof(struct xfer) <= 1032, "xfer_t outgrew glibc's thread cache");

#define EASY_SPARES 32

/* Where a model's transfers go and the header lines they send, built once per
 * config and kept for the next transfers to the same model: a provider's
 * transfers mostly go to one model, and building these was a dozen small
 * allocations per transfer. Only for the built-in client (use_h1). */
typedef struct route {
    uint64_t cfg_serial; /* cg_config_t.serial it was built from; 0: empty */
    const cg_model_t *model;
    char *url;
    bool use_h1;
    cg_h1_target_t target; /* use_h1: points into url */
    cg_buf_t hlines;       /* use_h1: the header block (hdr_lines) */
} route_t;

struct prov {
    cg_actor_t *actor;
    char *name;
    cg_snap_t *config;
    cg_curlm_t cm; /* the multi handle on this actor's loop (curlm.h) */
    cg_h1_t *h1;   /* the built-in client's connection pool (h1.h) */
    xfer_t *head;  /* in-flight transfers */
    size_t n_xfers;
    bool exiting; /* cg_actor_exit was called */
    /* Easy handles of finished transfers, reset and kept for the next ones:
     * a fresh handle is a large zeroed allocation and several more inside
     * curl, on every request. */
    CURL *spare[EASY_SPARES];
    size_t n_spare;
    route_t routes[2]; /* [stream]: the last model used each way */
};

static const adapter_t *find_adapter(cg_api_t api);
static const char *xfer_content_type(const xfer_t *x);
static void on_idle_timeout(cg_actor_t *a, void *ud);
static void xl_emit(void *ud, const char *event, const char *data, size_t len);
static void xl_finish(xfer_t *x);
static void xl_fail_client(xfer_t *x, const char *klass, const char *why);

/* ------------------------------------------------------------------------ */
/* messages to the owner                                                    */

/* Send m to x's owner. On failure m is freed here and x is marked terminal
 * and aborted: the owner is gone (CG_ENOENT, CG_ECLOSED) or overloaded
 * (CG_EFULL, where blocking the provider for one slow owner would stall every
 * other request it serves), so nobody wants the rest of the reply. */
static int send_owner(xfer_t *x, cg_msg_t *m)
{
    m->sender = cg_actor_self(x->p->actor);
    m->reply_to = m->sender;
    m->req_id = x->req_id;
    int rc = cg_actor_send(x->owner, m);
    if (rc == CG_OK)
        return 0;
    cg_msg_free(m);
    if (rc == CG_EFULL)
        cg_warn("provider %s: owner of request %llu has a full mailbox; cancelling the transfer",
                x->p->name, (unsigned long long)x->req_id);
    else
        cg_debug("provider %s: owner of request %llu is gone (%s); cancelling", x->p->name,
                 (unsigned long long)x->req_id, cg_strerror(rc));
    x->terminal = true;
    x->abort = true;
    return rc;
}

/* HEAD [status, content_type], once, before the first CHUNK or a stream's DONE. */
static int send_head(xfer_t *x)
{
    if (x->head_sent)
        return 0;
    x->head_sent = true;
    const char *ct = xfer_content_type(x);
    cg_msg_t *m = cg_msg_pack(CG_PROV_HEAD, "is", (int64_t)x->status, ct);
    return send_owner(x, m);
}

/* msgpack's packer writes into x->batch. */
static int batch_write(void *data, const char *buf, size_t len)
{
    cg_buf_append(data, buf, len);
    return 0;
}

/* Queue one event for the CHUNK of this upstream read (see flush_chunks).
 * The payload is built in place: 5 bytes kept for the array header, then a
 * [data bin, event str|nil] pair per event. */
static int send_chunk_ev(xfer_t *x, const char *event, const char *data, size_t len)
{
    if (send_head(x) < 0)
        return -1;
    if (x->batch_n == 0) {
        cg_buf_reset(&x->batch);
        cg_buf_append(&x->batch, "\xdd\0\0\0\0", 5);
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &x->batch, batch_write);
    msgpack_pack_bin(&pk, len);
    msgpack_pack_bin_body(&pk, data, len);
    if (event && *event) {
        size_t n = strlen(event);
        msgpack_pack_str(&pk, n);
        msgpack_pack_str_body(&pk, event, n);
    } else {
        msgpack_pack_nil(&pk);
    }
    x->batch_n++;
    x->any_output = true;
    return 0;
}

/* Send the events queued since the last flush as one CHUNK: after each
 * upstream read and before DONE or FAIL. A read that brings twenty events
 * costs one message instead of twenty (allocation, encoding, mailbox,
 * decoding each). */
static void flush_chunks(xfer_t *x)
{
    if (x->batch_n == 0)
        return;
    uint32_t n = x->batch_n * 2;
    x->batch_n = 0;
    if (x->terminal)
        return;
    unsigned char *h = (unsigned char *)x->batch.data;
    h[1] = (unsigned char)(n >> 24);
    h[2] = (unsigned char)(n >> 16);
    h[3] = (unsigned char)(n >> 8);
    h[4] = (unsigned char)n;
    send_owner(x, cg_msg_new(CG_PROV_CHUNK, x->batch.data, x->batch.len));
}

/* FAIL [class, status, message, retry_after_ms, any_output]. status is the
 * upstream's HTTP status when it sent one, else 0. */
static void send_fail(xfer_t *x, cg_fail_class_t cls, int64_t retry_after_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void send_fail(xfer_t *x, cg_fail_class_t cls, int64_t retry_after_ms, const char *fmt, ...)
{
    if (x->terminal)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg && strlen(msg) > MESSAGE_CAP) {
        /* An upstream may put a whole prompt into its error message. */
        size_t n = MESSAGE_CAP - 3;
        while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
            n--;
        memcpy(msg + n, "...", 4);
    }
    /* Output reached the client already: end its stream in its own format
     * (for Responses with the right sequence number) before reporting, so
     * the owner never has to invent an event of the client's API. */
    if (x->xs && x->any_output)
        xl_fail_client(x, cg_fail_class_name(cls), msg ? msg : "upstream error");
    flush_chunks(x);
    x->terminal = true;
    cg_debug("provider %s: request %llu (%s) failed: %s: %s", x->p->name,
             (unsigned long long)x->req_id, x->model_ref ? x->model_ref : "?",
             cg_fail_class_name(cls), msg ? msg : "");
    cg_msg_t *m = cg_msg_pack(CG_PROV_FAIL, "sisib", cg_fail_class_name(cls), (int64_t)x->status,
                              msg ? msg : "", retry_after_ms, (int)x->any_output);
    free(msg);
    send_owner(x, m);
}

/* DONE [status, body (nil when streamed), prompt, completion, cached, ttft_ns].
 * Token counts are -1 when the upstream reported no usage at all. */
static void send_done(xfer_t *x, const char *body, size_t len)
{
    if (x->terminal)
        return;
    if (x->stream && send_head(x) < 0)
        return;
    flush_chunks(x);
    if (x->terminal)
        return; /* the owner went away while the last events were sent */
    x->terminal = true;
    int64_t pt = -1, ct = -1, cached = -1;
    if (x->have_usage) {
        pt = x->prompt_tokens;
        ct = x->completion_tokens;
        cached = x->cached_tokens;
    }
    cg_msg_t *m;
    if (body)
        m = cg_msg_pack(CG_PROV_DONE, "ixiiiu", (int64_t)x->status, (const void *)body, len, pt, ct,
                        cached, x->ttft_ns);
    else
        m = cg_msg_pack(CG_PROV_DONE, "isiiiu", (int64_t)x->status, (const char *)NULL, pt, ct,
                        cached, x->ttft_ns);
    send_owner(x, m);
}

/* ------------------------------------------------------------------------ */
/* transfers                                                                */

static xfer_t *xfer_new(prov_t *p, cg_aid_t owner, uint64_t req_id)
{
    xfer_t *x = cg_calloc(1, sizeof *x);
    x->p = p;
    x->owner = owner;
    x->req_id = req_id;
    return x;
}

static void xfer_free(xfer_t *x)
{
    prov_t *p = x->p;
    if (x->easy && p->n_spare < EASY_SPARES && !p->cm.closing) {
        curl_easy_reset(x->easy); /* options only: the multi keeps the connections */
        p->spare[p->n_spare++] = x->easy;
    } else if (x->easy) {
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    cg_buf_free(&x->hlines);
    cg_free(x->url);
    cg_free(x->model_ref);
    cg_free(x->response_id);
    if (x->xs)
        cg_xlate_stream_free(x->xs);
    cg_buf_free(&x->body);
    cg_buf_free(&x->resp);
    cg_buf_free(&x->batch);
    if (x->sse_ready)
        cg_sse_free(&x->sse);
    cg_free(x);
}

static void maybe_exit(prov_t *p)
{
    if (p->n_xfers == 0 && !p->exiting && !p->cm.closing && cg_actor_is_stopping(p->actor)) {
        p->exiting = true;
        cg_actor_exit(p->actor, CG_EXIT_SHUTDOWN, "drained");
    }
}

/* Take x out of the multi handle and free it. Never from inside a curl
 * callback (see DESIGN). */
static void xfer_finish(prov_t *p, xfer_t *x)
{
    if (x->ft_timer)
        cg_actor_timer_cancel(p->actor, x->ft_timer);
    if (x->idle_timer)
        cg_actor_timer_cancel(p->actor, x->idle_timer);
    x->ft_timer = x->idle_timer = 0;
    if (x->easy)
        curl_multi_remove_handle(p->cm.multi, x->easy);
    if (x->h1) {
        cg_h1_cancel(x->h1);
        x->h1 = NULL;
    }
    if (x->prev)
        x->prev->next = x->next;
    else
        p->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    cg_assert(p->n_xfers > 0);
    p->n_xfers--;
    xfer_free(x);
}

static const char *curl_text(const xfer_t *x, CURLcode res)
{
    return x->errbuf[0] ? x->errbuf : curl_easy_strerror(res);
}

/* The reply's status so far (0 before its head), either transport. */
static long xfer_status(const xfer_t *x)
{
    long code = 0;
    if (x->h1)
        code = cg_h1_status(x->h1);
    else if (x->easy && curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
        code = 0;
    return code;
}

/* The reply's Content-Type, NULL if none. */
static const char *xfer_content_type(const xfer_t *x)
{
    char *ct = NULL;
    if (x->h1) {
        const char *v = cg_h1_content_type(x->h1);
        return *v ? v : NULL;
    }
    if (x->easy)
        curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
    return ct;
}

/* A short, printable excerpt of an upstream body for messages: control bytes
 * become spaces, cut at a UTF-8 character boundary. */
static void excerpt(const char *s, size_t len, cg_buf_t *out)
{
    size_t n = len < EXCERPT_CAP ? len : EXCERPT_CAP;
    if (n < len) {
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    size_t start = out->len;
    cg_buf_append(out, s, n);
    for (size_t i = start; i < out->len; i++) {
        unsigned char c = (unsigned char)out->data[i];
        if (c < 0x20 || c == 0x7f)
            out->data[i] = ' ';
    }
    if (n < len)
        cg_buf_puts(out, "...");
}

static void cancel_first_token(xfer_t *x)
{
    if (x->ft_timer) {
        cg_actor_timer_cancel(x->p->actor, x->ft_timer);
        x->ft_timer = 0;
    }
}

/* The status and what the body is, once the headers are in. */
static void decide_mode(xfer_t *x)
{
    if (x->mode != RX_UNDECIDED)
        return;
    long code = xfer_status(x);
    x->status = code;
    if (code >= 200 && code < 300)
        x->mode = x->stream ? RX_SSE : RX_BODY;
    else
        x->mode = RX_ERROR;
}

static int on_sse_event(void *ud, const char *event, size_t event_len, const char *data,
                        size_t data_len)
{
    xfer_t *x = ud;
    if (x->terminal)
        return 0; /* draining after [DONE] */
    if (x->events++ == 0) {
        x->ttft_ns = cg_now_ns() - x->start_ns;
        cancel_first_token(x);
    }
    return x->ad->on_event(x->p, x, event, event_len, data, data_len);
}

/* CURLOPT_WRITEFUNCTION. Inside curl: never remove the handle here; a short
 * return makes curl end the transfer (see DESIGN). */
static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer_t *x = ud;
    size_t n = size * nmemb;
    if (x->abort)
        return 0;
    uint64_t now = cg_now_ns();
    x->last_rx_ns = now;
    if (x->rx_bytes == 0) {
        decide_mode(x);
        /* A stream's first token is its first event (below), not an SSE
         * keep-alive comment sent while the model is still loading. */
        if (x->mode != RX_SSE)
            cancel_first_token(x);
        if (x->mode == RX_BODY)
            x->ttft_ns = now - x->start_ns;
        if (x->mode == RX_SSE && x->idle_ms > 0)
            x->idle_timer =
                cg_actor_timer(x->p->actor, (uint64_t)x->idle_ms * 1000000u, 0, on_idle_timeout, x);
    }
    x->rx_bytes += n;
    if (x->terminal)
        return n; /* drain: keeps the connection reusable */

    switch (x->mode) {
    case RX_SSE: {
        if (x->resp.len < EXCERPT_CAP)
            cg_buf_append(&x->resp, ptr, n < EXCERPT_CAP ? n : EXCERPT_CAP);
        int rc = cg_sse_feed(&x->sse, ptr, n, on_sse_event, x);
        if (rc == CG_ELIMIT)
            send_fail(x, CG_FAIL_UNKNOWN, 0, "upstream sent an SSE event over %zu bytes",
                      SSE_EVENT_CAP);
        flush_chunks(x);
        if (rc < 0) {
            x->abort = true;
            return 0;
        }
        return n;
    }
    case RX_BODY:
        if (x->resp.len + n > BODY_CAP) {
            send_fail(x, CG_FAIL_UNKNOWN, 0, "upstream reply larger than %zu MiB", BODY_CAP >> 20);
            x->abort = true;
            return 0;
        }
        cg_buf_append(&x->resp, ptr, n);
        return n;
    case RX_ERROR:
    default:
        if (x->resp.len < ERROR_BODY_CAP) {
            size_t room = ERROR_BODY_CAP - x->resp.len;
            cg_buf_append(&x->resp, ptr, n < room ? n : room);
        }
        return n;
    }
}

static bool is_event_stream(xfer_t *x)
{
    const char *ct = xfer_content_type(x);
    return ct && strncasecmp(ct, "text/event-stream", 17) == 0;
}

/* The transfer ended in curl (any outcome): send its terminal message unless
 * one went already. */
static void complete(xfer_t *x, CURLcode res)
{
    if (x->terminal)
        return;
    decide_mode(x);
    if (x->status == 0) {
        /* No HTTP response at all: refused, DNS, reset, curl timeout. */
        cg_fail_class_t cls = cg_fail_classify((int)res, 0, NULL, 0);
        send_fail(x, cls, 0, "%s", curl_text(x, res));
        return;
    }
    switch (x->mode) {
    case RX_SSE:
        if (x->xs && !x->done_seen && x->finish_seen && res == CURLE_OK &&
            !cg_sse_pending(&x->sse)) {
            xl_finish(x); /* ended cleanly after its finish reason, without an end event */
            return;
        }
        if (x->done_seen) {
            send_done(x, NULL, 0);
        } else if (x->finish_seen && res == CURLE_OK && !cg_sse_pending(&x->sse)) {
            send_done(x, NULL, 0);
        } else if (res != CURLE_OK && x->rx_bytes == 0) {
            send_fail(x, cg_fail_classify((int)res, 0, NULL, 0), 0, "%s", curl_text(x, res));
        } else if (x->events == 0 && x->rx_bytes > 0 && !is_event_stream(x)) {
            cg_buf_t ex = {0};
            excerpt(x->resp.data, x->resp.len, &ex);
            send_fail(x, CG_FAIL_UNKNOWN, 0, "upstream did not answer with server-sent events: %s",
                      ex.data);
            cg_buf_free(&ex);
        } else if (res != CURLE_OK) {
            send_fail(x, CG_FAIL_TIMEOUT, 0, "upstream stream cut before [DONE]: %s",
                      curl_text(x, res));
        } else {
            send_fail(x, CG_FAIL_TIMEOUT, 0, "upstream stream cut before [DONE]");
        }
        return;
    case RX_BODY: {
        if (res != CURLE_OK) {
            send_fail(x, cg_fail_classify((int)res, 0, NULL, 0), 0, "%s", curl_text(x, res));
            return;
        }
        cg_fail_class_t cls = CG_FAIL_UNKNOWN;
        cg_buf_t msg = {0};
        const char *body = x->resp.data ? x->resp.data : "";
        if (x->ad->on_body(x, body, x->resp.len, &cls, &msg) < 0)
            send_fail(x, cls, 0, "%s", msg.data ? msg.data : "invalid upstream reply");
        else /* on_body may have translated the body in place */
            send_done(x, x->resp.data ? x->resp.data : "", x->resp.len);
        cg_buf_free(&msg);
        return;
    }
    case RX_ERROR:
    default: {
        curl_off_t ra = 0;
        if (x->h1)
            ra = (curl_off_t)cg_h1_retry_after(x->h1);
        else if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK)
            ra = 0;
        if (ra < 0)
            ra = 0;
        const char *body = x->resp.data ? x->resp.data : "";
        cg_fail_class_t cls = cg_fail_classify(0, x->status, body, x->resp.len);
        cg_buf_t msg = {0};
        x->ad->error_message(body, x->resp.len, &msg);
        if (msg.len == 0)
            cg_buf_printf(&msg, "upstream answered HTTP %ld", x->status);
        send_fail(x, cls, (int64_t)ra * 1000, "%s", msg.data);
        cg_buf_free(&msg);
        return;
    }
    }
}

/* Collect transfers curl has finished. Runs after curl_multi_socket_action
 * returned, so removing handles is legal here. */
static void drain_done(prov_t *p)
{
    for (;;) {
        int left = 0;
        CURLMsg *msg = curl_multi_info_read(p->cm.multi, &left);
        if (!msg)
            break;
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;
        /* msg is invalid once the handle is removed: read nothing after. */
        xfer_t *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        cg_assert(x != NULL && x->easy == e);
        if (x->abort && !x->terminal)
            send_fail(x, CG_FAIL_UNKNOWN, 0, "transfer aborted");
        complete(x, res);
        xfer_finish(p, x);
    }
    maybe_exit(p);
}

/* The built-in client's callbacks (h1.h): the same path as curl's. */
static bool h1_data(void *ud, const char *p, size_t n)
{
    return on_write((char *)p, 1, n, ud) == n;
}

/* The transfer ended on the built-in client. x->h1 stays readable (status,
 * headers) until this returns; the client frees it then. */
static void h1_done(void *ud, int code, const char *msg)
{
    xfer_t *x = ud;
    prov_t *p = x->p;
    if (code != CURLE_OK && msg && *msg)
        snprintf(x->errbuf, sizeof x->errbuf, "%s", msg);
    if (x->abort && !x->terminal)
        send_fail(x, CG_FAIL_UNKNOWN, 0, "transfer aborted");
    complete(x, (CURLcode)code);
    x->h1 = NULL;
    xfer_finish(p, x);
    maybe_exit(p);
}

static const cg_h1_cbs_t h1_cbs = {.on_data = h1_data, .on_done = h1_done};

/* ------------------------------------------------------------------------ */
/* timeouts of our own                                                      */

static void on_first_token_timeout(cg_actor_t *a, void *ud)
{
    CG_UNUSED(a);
    xfer_t *x = ud;
    prov_t *p = x->p;
    x->ft_timer = 0;
    /* Headers may have come (a server that says 200 and then loads the
     * model): report their status. */
    long code = xfer_status(x);
    if (code)
        x->status = code;
    send_fail(x, CG_FAIL_TIMEOUT, 0, "no first token within %d ms", x->first_token_ms);
    xfer_finish(p, x);
    maybe_exit(p);
}

/* Armed once at the first byte; on firing it looks at the time of the last
 * byte and re-arms for the remainder, so a busy stream costs no timer
 * operations per piece. */
static void on_idle_timeout(cg_actor_t *a, void *ud)
{
    xfer_t *x = ud;
    prov_t *p = x->p;
    x->idle_timer = 0;
    uint64_t idle_ns = (uint64_t)x->idle_ms * 1000000u;
    uint64_t since = cg_now_ns() - x->last_rx_ns;
    if (since < idle_ns) {
        x->idle_timer = cg_actor_timer(a, idle_ns - since, 0, on_idle_timeout, x);
        return;
    }
    send_fail(x, CG_FAIL_TIMEOUT, 0, "stream idle for %d ms", x->idle_ms);
    xfer_finish(p, x);
    maybe_exit(p);
}

/* ------------------------------------------------------------------------ */
/* curl multi <-> actor loop                                                */

/* curl made progress (curlm.c): collect what it finished. */
static void drain_cb(void *ud)
{
    drain_done(ud);
}

/* ------------------------------------------------------------------------ */
/* REQUEST                                                                  */

typedef struct hdrs {
    struct {
        char *name;
        char *value;
    } h[MAX_HEADERS];
    size_t n;
} hdrs_t;

/* Collect header lines; later ones replace earlier ones of the same name
 * (case-insensitive): the provider's override the API's, the model's
 * override the provider's. Copies both strings. */
static void hdr_add(void *ud, const char *name, const char *value)
{
    hdrs_t *hs = ud;
    if (!name || !*name || !value)
        return;
    if (strpbrk(name, "\r\n: ") || strpbrk(value, "\r\n")) {
        cg_warn("ignoring header '%s': a line break or separator in its name or value", name);
        return;
    }
    for (size_t i = 0; i < hs->n; i++) {
        if (strcasecmp(hs->h[i].name, name) == 0) {
            cg_free(hs->h[i].value);
            hs->h[i].value = cg_strdup(value);
            return;
        }
    }
    if (hs->n == MAX_HEADERS) {
        cg_warn("ignoring header '%s': more than %d headers", name, MAX_HEADERS);
        return;
    }
    hs->h[hs->n].name = cg_strdup(name);
    hs->h[hs->n].value = cg_strdup(value);
    hs->n++;
}

/* The curl list for hs; frees hs's strings. */
static struct curl_slist *hdr_list(hdrs_t *hs)
{
    struct curl_slist *l = NULL;
    for (size_t i = 0; i < hs->n; i++) {
        /* "Name;" is curl's way of sending a header with an empty value. */
        char *line = hs->h[i].value[0] ? cg_sprintf("%s: %s", hs->h[i].name, hs->h[i].value)
                                       : cg_sprintf("%s;", hs->h[i].name);
        l = curl_slist_append(l, line);
        cg_free(line);
        cg_free(hs->h[i].name);
        cg_free(hs->h[i].value);
    }
    hs->n = 0;
    /* No "Expect: 100-continue" round trip before large bodies. */
    l = curl_slist_append(l, "Expect:");
    return l;
}

/* The header block for the built-in client; frees hs's strings. An empty
 * value is sent as "Name:" (curl's "Name;"). */
static void hdr_lines(hdrs_t *hs, cg_buf_t *out)
{
    for (size_t i = 0; i < hs->n; i++) {
        cg_buf_puts(out, hs->h[i].name);
        cg_buf_puts(out, hs->h[i].value[0] ? ": " : ":");
        cg_buf_puts(out, hs->h[i].value);
        cg_buf_puts(out, "\r\n");
        cg_free(hs->h[i].name);
        cg_free(hs->h[i].value);
    }
    hs->n = 0;
}

/* Every header a transfer to m sends, in order of precedence. */
static void model_headers(const cg_model_t *m, bool stream, hdrs_t *hs)
{
    cg_xlate_headers(m, stream, hdr_add, hs); /* auth scheme, content negotiation */
    const cg_provider_t *pv = m->provider;
    for (size_t i = 0; i < pv->n_headers; i++)
        hdr_add(hs, pv->headers[i].name, pv->headers[i].value);
    for (size_t i = 0; i < m->n_headers; i++)
        hdr_add(hs, m->headers[i].name, m->headers[i].value);
}

static void route_clear(route_t *rt)
{
    cg_free(rt->url);
    cg_buf_free(&rt->hlines);
    *rt = (route_t){0};
}

/* The route of m (of cfg) for a stream or not: kept from the last transfer
 * when the config and the model are the same, else built. */
static const route_t *route_for(prov_t *p, const cg_config_t *cfg, const cg_model_t *m, bool stream)
{
    route_t *rt = &p->routes[stream ? 1 : 0];
    if (rt->cfg_serial == cfg->serial && rt->model == m)
        return rt;
    route_clear(rt);
    rt->cfg_serial = cfg->serial;
    rt->model = m;
    rt->url = cg_sprintf("%s%s", m->provider->base_url, cg_xlate_path(m->api));
    rt->use_h1 = p->h1 && cg_h1_target_parse(rt->url, &rt->target);
    if (rt->use_h1) {
        hdrs_t hs = {.n = 0};
        model_headers(m, stream, &hs);
        hdr_lines(&hs, &rt->hlines);
    }
    return rt;
}

/* Resolve the ref in the current config and copy what the transfer needs.
 * 0, or < 0 with *cls and err set. */
static int prepare(prov_t *p, xfer_t *x, const char *ref, size_t ref_len, const char *body,
                   size_t body_len, const void *table, size_t table_len, const int64_t tmo[4],
                   int64_t *connect_ms, int64_t *total_ms, cg_fail_class_t *cls, char *err,
                   size_t errlen)
{
    cg_config_t *cfg = cg_snap_acquire(p->config);
    int rc = -1;
    if (!cfg) {
        *cls = CG_FAIL_UNKNOWN;
        snprintf(err, errlen, "no configuration loaded");
        goto out;
    }
    const cg_model_t *m = cg_config_resolve(cfg, ref, ref_len);
    if (!m) {
        *cls = CG_FAIL_MODEL_NOT_FOUND;
        snprintf(err, errlen, "unknown model '%.*s'", (int)ref_len, ref);
        goto out;
    }
    const cg_provider_t *pv = m->provider;
    if (strcmp(pv->name, p->name) != 0) {
        *cls = CG_FAIL_MODEL_NOT_FOUND;
        snprintf(err, errlen, "model '%s' belongs to provider '%s', not '%s'", m->ref, pv->name,
                 p->name);
        goto out;
    }
    x->ad = find_adapter(m->api);
    if (!x->ad) {
        *cls = CG_FAIL_FORMAT;
        const char *api =
            m->api == CG_API_UNSUPPORTED && pv->api_name ? pv->api_name : cg_api_name(m->api);
        snprintf(err, errlen, "api %s is not supported by clawgate", api);
        goto out;
    }
    if (!pv->available) {
        *cls = CG_FAIL_UNKNOWN;
        snprintf(err, errlen, "provider '%s' is unavailable: %s", pv->name,
                 pv->unavailable_reason ? pv->unavailable_reason : "no reason given");
        goto out;
    }
    x->api = m->api;
    x->tool_text = m->compat.tool_calls_as_text;
    x->xo = (cg_xlate_opts_t){.stream = x->stream,
                              .body_validated = true, /* by the owner (provider.h) */
                              .body_table = table,
                              .body_table_len = table_len,
                              .omit_reasoning = x->omit_reasoning,
                              .tool_calls_as_text = m->compat.tool_calls_as_text,
                              .client_usage = x->client_usage,
                              .response_id = x->response_id};
    int built = x->ad->build_body(x, m, body, body_len, &x->body, err, errlen);
    x->xo.body_table = NULL; /* it lives in the REQUEST message */
    x->xo.body_table_len = 0;
    if (built < 0) {
        *cls = CG_FAIL_FORMAT;
        goto out;
    }
    x->model_ref = cg_strdup(m->ref);
    if (x->stream)
        x->xs = cg_xlate_stream_new(x->client, m->api, m->ref, &x->xo);
    const route_t *rt = route_for(p, cfg, m, x->stream);
    x->url = cg_strdup(rt->url);
    x->use_h1 = rt->use_h1;
    if (x->use_h1) {
        /* The transfer's own copies: the route may be rebuilt before it ends. */
        x->target = rt->target;
        x->target.authority = x->url + (rt->target.authority - rt->url);
        x->target.path = x->url + (rt->target.path - rt->url);
        cg_buf_reserve(&x->hlines, rt->hlines.len);
        cg_buf_append(&x->hlines, rt->hlines.data, rt->hlines.len);
    } else {
        hdrs_t hs = {.n = 0};
        model_headers(m, x->stream, &hs);
        x->headers = hdr_list(&hs);
    }

    /* Timeouts: a value > 0 from the owner wins; otherwise the config's. The
     * first-token default applies to streams only: a non-stream reply's first
     * byte comes when the whole answer is done. Negative: none. */
    const cg_settings_t *st = &cfg->settings;
    *connect_ms = tmo[0] > 0 ? tmo[0] : tmo[0] == 0 ? st->connect_timeout_ms : 0;
    int64_t ft = tmo[1] > 0                 ? tmo[1]
                 : tmo[1] == 0 && x->stream ? (int64_t)st->first_token_timeout_s * 1000
                                            : 0;
    int64_t idle = tmo[2] > 0 ? tmo[2] : tmo[2] == 0 ? (int64_t)st->idle_timeout_s * 1000 : 0;
    int64_t total_s = pv->timeout_seconds > 0 ? pv->timeout_seconds : st->request_timeout_s;
    *total_ms = tmo[3] > 0 ? tmo[3] : tmo[3] == 0 ? total_s * 1000 : 0;
    x->first_token_ms = ft > INT32_MAX ? INT32_MAX : (int)ft;
    x->idle_ms = idle > INT32_MAX ? INT32_MAX : (int)idle;
    rc = 0;
out:
    if (cfg)
        cg_snap_release(p->config, cfg);
    return rc;
}

static void reject(xfer_t *x, cg_fail_class_t cls, const char *msg)
{
    send_fail(x, cls, 0, "%s", msg);
    xfer_free(x);
}

/* Link x into the in-flight list and arm the first-token timer: the part of
 * starting a transfer both transports share. */
static void xfer_link(prov_t *p, xfer_t *x)
{
    if (x->stream) {
        cg_sse_init(&x->sse, SSE_EVENT_CAP);
        x->sse_ready = true;
    }
    x->next = p->head;
    if (p->head)
        p->head->prev = x;
    p->head = x;
    p->n_xfers++;
    x->start_ns = cg_now_ns();
    x->last_rx_ns = x->start_ns;
    if (x->first_token_ms > 0)
        x->ft_timer = cg_actor_timer(p->actor, (uint64_t)x->first_token_ms * 1000000u, 0,
                                     on_first_token_timeout, x);
    cg_debug("provider %s: request %llu -> %s (%s%s%s)", p->name, (unsigned long long)x->req_id,
             x->url, x->model_ref, x->stream ? ", stream" : "",
             x->use_h1 ? ", built-in client" : "");
}

static void start_h1(prov_t *p, xfer_t *x, int64_t connect_ms, int64_t total_ms)
{
    xfer_link(p, x);
    cg_h1_opts_t o = {.target = &x->target,
                      .headers = x->hlines.data,
                      .headers_len = x->hlines.len,
                      .user_agent = "clawgate/" CG_VERSION,
                      .body = x->body.data,
                      .body_len = x->body.len,
                      .connect_ms = connect_ms,
                      .total_ms = total_ms};
    char err[256];
    x->h1 = cg_h1_start(p->h1, &o, &h1_cbs, x, err, sizeof err);
    if (!x->h1) {
        send_fail(x, CG_FAIL_UNKNOWN, 0, "%s", err);
        xfer_finish(p, x);
    }
}

static void on_request(prov_t *p, cg_msg_t *m)
{
    const char *ref = NULL, *body = NULL;
    size_t ref_len = 0, body_len = 0;
    int stream = 0, client_usage = 0;
    int64_t tmo[4] = {0, 0, 0, 0};
    cg_msg_view_t v;
    int64_t client_api = CG_XAPI_CHAT;
    int omit = 0;
    const char *rid = NULL;
    size_t rid_len = 0;
    const void *table = NULL;
    size_t table_len = 0;
    int rc = cg_msg_unpack(m, &v, "sbbxiiiiibSx", &ref, &ref_len, &stream, &client_usage,
                           (const void **)&body, &body_len, &tmo[0], &tmo[1], &tmo[2], &tmo[3],
                           &client_api, &omit, &rid, &rid_len, &table, &table_len);
    if (rc < 0) { /* an owner that sends no member table */
        cg_msg_view_done(&v);
        table = NULL;
        table_len = 0;
        rc = cg_msg_unpack(m, &v, "sbbxiiiiibS", &ref, &ref_len, &stream, &client_usage,
                           (const void **)&body, &body_len, &tmo[0], &tmo[1], &tmo[2], &tmo[3],
                           &client_api, &omit, &rid, &rid_len);
    }
    if (rc < 0) { /* an owner that speaks the shorter, chat-only REQUEST */
        cg_msg_view_done(&v);
        rc = cg_msg_unpack(m, &v, "sbbxiiii", &ref, &ref_len, &stream, &client_usage,
                           (const void **)&body, &body_len, &tmo[0], &tmo[1], &tmo[2], &tmo[3]);
    }
    cg_aid_t owner = m->reply_to ? m->reply_to : m->sender;
    xfer_t *x = xfer_new(p, owner, m->req_id);
    x->stream = stream != 0;
    x->client_usage = client_usage != 0;
    x->client = client_api == CG_XAPI_RESPONSES ? CG_XAPI_RESPONSES : CG_XAPI_CHAT;
    x->omit_reasoning = omit != 0;
    if (rid && rid_len)
        x->response_id = cg_strndup(rid, rid_len);

    char err[512];
    cg_fail_class_t cls = CG_FAIL_UNKNOWN;
    int64_t connect_ms = 0, total_ms = 0;
    if (rc < 0 || !ref) {
        reject(x, CG_FAIL_FORMAT, "malformed REQUEST message");
        goto out;
    }
    if (cg_actor_is_stopping(p->actor) || p->exiting) {
        reject(x, CG_FAIL_UNKNOWN, "provider shutting down");
        goto out;
    }
    if (prepare(p, x, ref, ref_len, body ? body : "", body_len, table, table_len, tmo, &connect_ms,
                &total_ms, &cls, err, sizeof err) < 0) {
        reject(x, cls, err);
        goto out;
    }

    if (x->use_h1) {
        start_h1(p, x, connect_ms, total_ms);
        goto out;
    }
    CURL *e = p->n_spare ? p->spare[--p->n_spare] : curl_easy_init();
    if (!e) {
        reject(x, CG_FAIL_UNKNOWN, "curl_easy_init failed");
        goto out;
    }
    x->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body.data ? x->body.data : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    cg_curlm_easy(&p->cm, e);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "clawgate/" CG_VERSION);
    if (connect_ms > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    if (total_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)total_ms);
    xfer_link(p, x);
    CURLMcode mc = curl_multi_add_handle(p->cm.multi, e);
    if (mc != CURLM_OK) {
        send_fail(x, CG_FAIL_UNKNOWN, 0, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        xfer_finish(p, x);
    } else {
        cg_curlm_kick(&p->cm); /* start sending now, not on the next turn */
    }
out:
    cg_msg_view_done(&v);
}

static void on_cancel(prov_t *p, const cg_msg_t *m)
{
    cg_aid_t who = m->reply_to ? m->reply_to : m->sender;
    for (xfer_t *x = p->head; x; x = x->next) {
        if (x->req_id == m->req_id && (who == CG_AID_NONE || who == x->owner)) {
            cg_debug("provider %s: request %llu cancelled", p->name, (unsigned long long)x->req_id);
            x->terminal = true;
            xfer_finish(p, x);
            break;
        }
    }
    maybe_exit(p);
}

/* ------------------------------------------------------------------------ */
/* openai-completions                                                       */

/* The human message in an OpenAI-style error: {"error":{"message":..}},
 * {"error":"..."}, {"message":".."} or {"detail":".."}; else an excerpt. */
static void oai_error_message(const char *body, size_t len, cg_buf_t *out)
{
    cg_jscan_t js;
    cg_jerr_t jerr;
    size_t start = out->len;
    if (len > 0 && cg_jscan_object(&js, body, len, JSON_DEPTH, &jerr) == 0) {
        const cg_jmember_t *e = cg_jscan_get(&js, "error");
        if (e && e->type == CG_JOBJECT) {
            cg_jscan_t je;
            if (cg_jscan_object(&je, body + e->val_off, e->val_len, JSON_DEPTH, &jerr) == 0) {
                const cg_jmember_t *msg = cg_jscan_get(&je, "message");
                if (msg && msg->type == CG_JSTRING)
                    cg_jscan_string(&je, msg, out);
            }
        } else if (e && e->type == CG_JSTRING) {
            cg_jscan_string(&js, e, out);
        }
        if (out->len == start) {
            const cg_jmember_t *msg = cg_jscan_get(&js, "message");
            if (!msg || msg->type != CG_JSTRING)
                msg = cg_jscan_get(&js, "detail");
            if (msg && msg->type == CG_JSTRING)
                cg_jscan_string(&js, msg, out);
        }
    }
    if (out->len == start && len > 0)
        excerpt(body, len, out);
    /* Decoded strings may carry control characters; keep messages one line. */
    for (size_t i = start; i < out->len; i++) {
        if ((unsigned char)out->data[i] < 0x20)
            out->data[i] = ' ';
    }
}

/* ------------------------------------------------------------------------ */
/* the translating adapter (proto/translate.h): every API kind              */

static void xl_emit(void *ud, const char *event, const char *data, size_t len)
{
    xfer_t *x = ud;
    if (!x->terminal)
        send_chunk_ev(x, event, data, len);
}

/* End the client's stream with an error event in its own format, naming the
 * model that failed (the client sees only this, never another model's text). */
static void xl_fail_client(xfer_t *x, const char *klass, const char *why)
{
    char *msg = cg_sprintf("provider %s failed mid-stream (%s): %s",
                           x->model_ref ? x->model_ref : "?", klass, why);
    cg_xlate_stream_fail(x->xs, klass, msg, xl_emit, x);
    cg_free(msg);
}

/* The upstream said the reply is complete: the translator's closing events,
 * then DONE with the usage it collected. */
static void xl_finish(xfer_t *x)
{
    x->done_seen = true;
    cg_xlate_stream_finish(x->xs, xl_emit, x);
    const cg_xlate_usage_t *u = cg_xlate_stream_usage(x->xs);
    if (u && u->have) {
        x->have_usage = true;
        x->prompt_tokens = u->input;
        x->completion_tokens = u->output;
        x->cached_tokens = u->cache_read;
    }
    send_done(x, NULL, 0);
}

static int xl_build_body(const xfer_t *x, const cg_model_t *m, const char *body, size_t len,
                         cg_buf_t *out, char *err, size_t errlen)
{
    return cg_xlate_request(x->client, m, body, len, &x->xo, out, err, errlen) == 0 ? 0 : CG_EINVAL;
}

static int xl_on_event(prov_t *p, xfer_t *x, const char *event, size_t event_len, const char *data,
                       size_t len)
{
    CG_UNUSED(p);
    char ev[96];
    size_t n = event_len < sizeof ev - 1 ? event_len : sizeof ev - 1;
    memcpy(ev, event ? event : "", n);
    ev[n] = '\0';
    int rc = cg_xlate_stream_feed(x->xs, ev, data, len, xl_emit, x);
    if (x->terminal)
        return -1; /* the owner is gone */
    if (rc == CG_XLATE_END) {
        xl_finish(x);
        return 0; /* drain the rest: keeps the connection reusable */
    }
    if (rc == CG_XLATE_MORE) {
        if (cg_xlate_stream_finish_reason(x->xs))
            x->finish_seen = true;
        return 0;
    }
    const char *msg = cg_xlate_stream_error(x->xs);
    cg_fail_class_t cls = rc == CG_ERR ? cg_fail_classify(0, 0, data, len) : CG_FAIL_UNKNOWN;
    /* Output reached the client already: end its stream in its own format
     * (for Responses with the right sequence number) before reporting. */
    send_fail(x, cls, 0, "%s", msg ? msg : "upstream error");
    return -1;
}

static int xl_on_body(xfer_t *x, const char *body, size_t len, cg_fail_class_t *cls, cg_buf_t *msg)
{
    cg_buf_t out = {0};
    cg_xlate_usage_t u = {0};
    char err[512] = "";
    int rc = cg_xlate_response(x->client, x->api, x->model_ref, body, len, &x->xo, &out, &u, err,
                               sizeof err);
    if (rc != 0) {
        *cls = rc == CG_ERR ? cg_fail_classify(0, 0, body, len) : CG_FAIL_UNKNOWN;
        cg_buf_puts(msg, err[0] ? err : "invalid upstream reply");
        cg_buf_free(&out);
        return -1;
    }
    if (u.have) {
        x->have_usage = true;
        x->prompt_tokens = u.input;
        x->completion_tokens = u.output;
        x->cached_tokens = u.cache_read;
    }
    cg_buf_free(&x->resp);
    x->resp = out;
    return 0;
}

/* Every API kind the translator speaks goes through the same adapter; the
 * URL path and auth headers come from the translator too (cg_xlate_path,
 * cg_xlate_headers). The seam stays for a kind that needs its own. */
static const adapter_t xlate_adapter = {
    .build_body = xl_build_body,
    .on_event = xl_on_event,
    .on_body = xl_on_body,
    .error_message = oai_error_message,
};

static const adapter_t *find_adapter(cg_api_t api)
{
    return cg_xlate_path(api) ? &xlate_adapter : NULL;
}

/* ------------------------------------------------------------------------ */
/* CHUNK payloads                                                           */

static uint32_t be(const unsigned char *p, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* One bin, str or nil at p[*at..end): its bytes (NULL, 0 for nil). */
static bool take_bytes(const unsigned char *p, size_t end, size_t *at, const char **out,
                       size_t *len)
{
    if (*at >= end)
        return false;
    unsigned c = p[(*at)++];
    size_t n, hdr = 0;
    if (c == 0xc0) {
        *out = NULL;
        *len = 0;
        return true;
    }
    if (c >= 0xa0 && c <= 0xbf) {
        n = c & 0x1f;
    } else if (c == 0xc4 || c == 0xd9) {
        hdr = 1;
    } else if (c == 0xc5 || c == 0xda) {
        hdr = 2;
    } else if (c == 0xc6 || c == 0xdb) {
        hdr = 4;
    } else {
        return false;
    }
    if (hdr) {
        if (end - *at < hdr)
            return false;
        n = be(p + *at, (int)hdr);
        *at += hdr;
    }
    if (end - *at < n)
        return false;
    *out = (const char *)p + *at;
    *len = n;
    *at += n;
    return true;
}

int cg_prov_chunk_events(const cg_msg_t *m,
                         void (*fn)(void *ud, const char *event, size_t event_len, const char *data,
                                    size_t len),
                         void *ud)
{
    const unsigned char *p = m->payload;
    size_t end = m->len, at = 0;
    if (end == 0)
        return CG_EINVAL;
    uint32_t count;
    unsigned c = p[at++];
    if (c >= 0x90 && c <= 0x9f) {
        count = c & 0x0f;
    } else if ((c == 0xdc || c == 0xdd) && end - at >= (c == 0xdc ? 2u : 4u)) {
        int w = c == 0xdc ? 2 : 4;
        count = be(p + at, w);
        at += (size_t)w;
    } else {
        return CG_EINVAL;
    }
    if (count % 2 != 0)
        return CG_EINVAL;
    for (uint32_t i = 0; i < count; i += 2) {
        const char *data, *ev;
        size_t len, ev_len;
        if (!take_bytes(p, end, &at, &data, &len) || !data ||
            !take_bytes(p, end, &at, &ev, &ev_len))
            return CG_EINVAL;
        fn(ud, ev ? ev : "", ev_len, data, len);
    }
    return at == end ? 0 : CG_EINVAL;
}

/* ------------------------------------------------------------------------ */
/* actor                                                                    */

/* The built-in client serves plain http:// upstreams unless the operator
 * asked for libcurl everywhere (CLAWGATE_HTTP_CLIENT=curl) or set a proxy,
 * which only libcurl honours. */
static bool builtin_client_wanted(const char *who)
{
    const char *v = getenv("CLAWGATE_HTTP_CLIENT");
    if (v && strcmp(v, "curl") == 0)
        return false;
    static const char *const proxies[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < CG_ARRAY_LEN(proxies); i++) {
        const char *px = getenv(proxies[i]);
        if (px && *px) {
            cg_debug("provider %s: %s is set; plain http:// goes through libcurl", who, proxies[i]);
            return false;
        }
    }
    return true;
}

static int prov_init(cg_actor_t *a, void *arg)
{
    const cg_provider_args_t *args = arg;
    if (!args || !args->provider_name || !args->config)
        return CG_EINVAL;
    prov_t *p = cg_calloc(1, sizeof *p);
    p->actor = a;
    p->name = cg_strdup(args->provider_name);
    p->config = args->config;
    cg_actor_set_state(a, p);
    if (cg_curlm_init(&p->cm, a, p->name, drain_cb, p) != 0)
        return CG_ERR;
    curl_multi_setopt(p->cm.multi, CURLMOPT_MAXCONNECTS, (long)MAX_CONNECTS);
    if (builtin_client_wanted(p->name))
        p->h1 = cg_h1_new(a, p->name);
    return 0;
}

/* Heartbeat: the supervisor's TICK comes back as a TICK (same req_id), so a
 * provider whose loop is stuck shows as silent. A full or gone supervisor
 * mailbox: drop it, the missing answer says enough. */
static void answer_tick(prov_t *p, const cg_msg_t *m)
{
    cg_aid_t to = m->reply_to ? m->reply_to : m->sender;
    if (to == CG_AID_NONE)
        return;
    cg_msg_t *r = cg_msg_new(CG_MSG_TICK, NULL, 0);
    r->sender = r->reply_to = cg_actor_self(p->actor);
    r->req_id = m->req_id;
    if (cg_actor_send(to, r) != CG_OK)
        cg_msg_free(r);
}

static void prov_handle(cg_actor_t *a, cg_msg_t *m)
{
    prov_t *p = cg_actor_state(a);
    switch (m->type) {
    case CG_PROV_REQUEST:
        on_request(p, m);
        break;
    case CG_PROV_CANCEL:
        on_cancel(p, m);
        break;
    case CG_MSG_TICK:
        answer_tick(p, m);
        break;
    case CG_MSG_RELOAD: /* each REQUEST reads the current snapshot anyway */
        break;
    default:
        cg_debug("provider %s: ignoring message type %u", p->name, m->type);
        break;
    }
    cg_msg_free(m);
}

static void prov_stopping(cg_actor_t *a)
{
    prov_t *p = cg_actor_state(a);
    cg_info("provider %s: stopping with %zu transfer(s) in flight", p->name, p->n_xfers);
    maybe_exit(p);
}

/* Also after a crash: every owner still waiting hears why, then everything
 * goes, the multi handle last (it closes the cached connections). */
static void prov_cleanup(cg_actor_t *a)
{
    prov_t *p = cg_actor_state(a);
    if (!p)
        return;
    p->cm.closing = true;
    while (p->head) {
        xfer_t *x = p->head;
        send_fail(x, CG_FAIL_ABORTED, 0, "provider actor stopped");
        xfer_finish(p, x);
    }
    cg_curlm_close(&p->cm);
    cg_h1_free(p->h1);
    while (p->n_spare)
        curl_easy_cleanup(p->spare[--p->n_spare]);
    route_clear(&p->routes[0]);
    route_clear(&p->routes[1]);
    cg_free(p->name);
    cg_free(p);
    cg_actor_set_state(a, NULL);
}

const cg_actor_spec_t cg_provider_spec = {
    .name = "provider",
    .mailbox_cap = 0,
    .batch = 0,
    .init = prov_init,
    .handle = prov_handle,
    .stopping = prov_stopping,
    .cleanup = prov_cleanup,
};
