/*
 * server.c — the HTTP front actor (see server.h for the shape).
 *
 * DESIGN
 * Life of a request on this thread:
 *   1. MHD calls access_handler first with the headers: a req_t is made and
 *      routed (method, path, declared Content-Length). Nothing is queued on
 *      this first call: queuing there loses keep-alive.
 *   2. Body pieces are appended to req->body, bounded by maxBodyBytes.
 *   3. The last call (no more upload data) validates the body with the
 *      tree-less scanner, resolves the model, sends CG_PROV_REQUEST to the
 *      provider actor and suspends the connection.
 *   4. Provider messages fill the request (status/body, or SSE bytes) and
 *      resume it; MHD calls access_handler again and the response is queued.
 *      The status line leaves only once the first upstream chunk (or the whole
 *      reply, or the failure) is in, so status and x-clawgate-model are true.
 *   5. A streamed response is a content-reader callback that hands out the
 *      buffered SSE bytes and suspends the connection when it runs dry.
 *   6. MHD's completion callback frees the request; if the provider is
 *      still working on it, a CG_PROV_CANCEL goes out first.
 * A suspended MHD connection does not notice its client leaving, so a
 * one-second sweep peeks at each suspended socket and ends the request of a
 * client that hung up (which cancels the upstream transfer).
 */
#include "http/server.h"

#include "actors/health.h"
#include "actors/provider.h"
#include "actors/supervisor.h"
#include "config/config.h"
#include "http/reply.h"
#include "proto/jscan.h"
#include "proto/translate.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_BUCKETS 4096             /* request-id hash buckets (chained) */
#define STREAM_BUFFER_CAP (8u << 20) /* SSE bytes held for a slow client */
#define SWEEP_NS 1000000000ull       /* suspended-connection sweep period */
#define SHUTDOWN_GRACE_NS (30ull * 1000000000ull)
#define JSON_MAX_DEPTH 128
#define MAX_PLAN 8                             /* attempts per request at most */
#define ATTEMPT_BITS 4                         /* low bits of a message req_id: the attempt */
#define WATCHDOG_SLACK_MS 5000                 /* beyond the provider's own total timeout */
#define ACK_TIMEOUT_NS (10ull * 1000000000ull) /* store commit wait, at most */
#define SYNC_WAIT_NS (2ull * 1000000000ull)    /* a query's wait for the pending log */
#define FLUSH_RESEND_NS (5ull * 1000000000ull) /* a FLUSH whose SYNCED was lost */

typedef enum {
    ROUTE_NONE,
    ROUTE_CHAT,
    ROUTE_RESPONSES,
    ROUTE_MODELS,
    ROUTE_HEALTH,
    ROUTE_READY,
    ROUTE_STATUS,
    ROUTE_TEST_CRASH,
    ROUTE_STORE, /* /v1/sessions..., /v1/usage: answered by the store's queries */
} route_t;

typedef enum {
    PH_RECEIVING, /* headers or body still arriving */
    PH_WAITING,   /* sent to a provider, connection suspended, nothing sent */
    PH_READY,     /* a complete response is ready to queue */
    PH_STREAM,    /* streaming response ready to queue (or queued) */
    PH_HOLD,      /* complete response ready, held until the store ACKs the exchange */
    PH_SENT,      /* response queued */
} phase_t;

typedef struct front front_t;

typedef struct req {
    front_t *front;
    struct MHD_Connection *conn;
    struct req *hnext;       /* hash chain */
    struct req *prev, *next; /* all live requests */
    uint64_t id;
    char idstr[32];
    route_t route;
    phase_t phase;
    bool suspended;
    bool too_large;
    bool inflight; /* the provider still owes a terminal message */
    bool stream;
    bool upstream_done;
    bool client_gone;
    cg_buf_t body;
    cg_buf_t table; /* the body's member table (cg_jscan_table_pack), for the provider */
    /* complete response */
    unsigned status;
    cg_buf_t resp;
    const char *ctype;
    int64_t retry_after_s; /* > 0: a Retry-After header */
    const char *allow;     /* Allow header for 405 */
    /* streaming */
    cg_buf_t out;
    size_t out_off;
    /* routing and failover */
    cg_config_t *cfg;                 /* snapshot reference held while the request lives */
    const cg_model_t *plan[MAX_PLAN]; /* point into cfg */
    size_t n_plan;
    size_t attempt; /* index into plan of the attempt in flight */
    const cg_model_t *requested;
    bool client_usage;
    cg_xapi_t api;         /* the client's API */
    bool omit_reasoning;   /* x-clawgate-reasoning: omit */
    bool provider_closed;  /* the provider ended the client's stream in its format */
    char response_id[48];  /* the id the client sees, the same on every attempt */
    bool answered;         /* a provider's reply (or its first chunk) was accepted */
    const char *model_ref; /* provider/id of the current attempt (in cfg) */
    cg_aid_t provider;
    uint64_t attempt_t0;      /* monotonic ns */
    uint64_t watchdog;        /* actor timer id */
    cg_buf_t attempts;        /* x-clawgate-attempts: "ref;class;status, ..." */
    cg_buf_t attempts_detail; /* human text for the all-failed error */
    size_t n_attempts;
    const char *last_class;
    int64_t last_status;
    int64_t last_retry_ms;
    int64_t cooldown_end_ms; /* earliest cooldown end this request's failures caused */
    struct {
        const char *ref, *klass; /* static or in cfg */
        int status;
        int64_t ms;
    } att[MAX_PLAN + 1];
    /* the exchange record */
    uint64_t t0_ns;
    int64_t started_ms;
    char *session_key; /* x-session-key, NULL: exchange only */
    bool stateful;     /* x-session-mode: stateful */
    char *model_asked;
    cg_buf_t client_messages; /* session requests: the client's own messages */
    char *query_url;          /* a store query waiting for the pending log */
    uint64_t sync_seq;        /* ... to be committed up to this record */
    cg_reply_t *reply;        /* session stream: the assistant message so far */
    cg_buf_t reply_json;
    const cg_model_t *answered_model;
    int64_t pt, ct, cached, ttft_ms;
    bool recorded;
    bool await_ack;  /* the final byte waits for the store's ACK */
    bool log_queued; /* its exchange waits in the front's log queue (flush_log) */
    uint64_t ack_timer;
} req_t;

/* An exchange for this loop turn's pending-log write; r is NULL when the
 * request ended before it (the exchange is logged all the same). */
typedef struct logged {
    req_t *r;
    cg_msg_t *m;
} logged_t;

struct front {
    cg_actor_t *actor;
    cg_http_args_t args;
    struct MHD_Daemon *mhd;
    int mhd_fd;
    uint64_t kick_timer;
    bool run_queued; /* a deferred run_mhd is queued for the end of this loop turn */
    bool closing;    /* front_cleanup has begun: queue nothing more */
    uint64_t mhd_timer;
    uint64_t mhd_deadline_ns;
    uint64_t sweep_timer;
    uint64_t grace_timer;
    uint64_t next_id;
    uint64_t id_prefix;
    size_t max_body;
    int connect_ms, first_token_ms, idle_ms, request_ms;
    cg_aid_t supervisor;
    cg_aid_t store;
    cg_store_ro_t *ro; /* read-only store connection for queries and history */
    cg_pending_t *pending;
    logged_t *logq; /* exchanges for the pending log at the end of this turn */
    const cg_msg_t **logq_msgs;
    size_t n_logq, cap_logq;
    bool log_flushing;
    uint64_t flush_timer;   /* a FLUSH goes to the store when it fires */
    bool flush_out;         /* a FLUSH was sent, its SYNCED not seen yet */
    uint64_t flush_sent_ns; /* when */
    uint64_t sync_timer;    /* queries stop waiting for SYNCED when it fires */
    uint64_t *sync_waiters; /* ids of queries waiting for the log to be committed */
    size_t n_sync, cap_sync;
    bool store_fail_closed;
    bool test_hooks;
    req_t *buckets[REQ_BUCKETS];
    req_t *live;
    size_t n_live;
    bool stopping;
    cg_jscan_t scan;  /* reused for every body: the actor is single-threaded */
    cg_jscan_t scan2; /* for nested objects (stream_options) */
};

static void run_mhd(front_t *f);
static void stream_append_event(req_t *r, const char *event, const char *data, size_t len);

/* The SSE event name of an error the front itself writes into a stream
 * (chat streams carry none; a Responses client reads an "error" event). */
static const char *error_event_name(const req_t *r)
{
    return r->api == CG_XAPI_RESPONSES ? "error" : NULL;
}
static void kick_cb(cg_actor_t *a, void *ud);
static void apply_settings(front_t *f, const cg_settings_t *s);

/* ---- request bookkeeping ---- */

static size_t bucket_of(uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 52) & (REQ_BUCKETS - 1);
}

static req_t *req_find(front_t *f, uint64_t id)
{
    for (req_t *r = f->buckets[bucket_of(id)]; r; r = r->hnext)
        if (r->id == id)
            return r;
    return NULL;
}

static req_t *req_new(front_t *f, struct MHD_Connection *conn)
{
    req_t *r = cg_calloc(1, sizeof *r);
    r->front = f;
    r->conn = conn;
    r->id = ++f->next_id;
    r->t0_ns = cg_now_ns();
    r->started_ms = cg_wall_ms();
    r->ttft_ms = -1;
    /* "req_%012llx%06llx" of the prefix and the low 24 bits of the id,
     * written without printf (every request). */
    static const char hex[] = "0123456789abcdef";
    uint64_t words[2] = {f->id_prefix, r->id & 0xffffff};
    int digits[2] = {12, 6};
    char *o = r->idstr;
    memcpy(o, "req_", 4);
    o += 4;
    for (int w = 0; w < 2; w++) {
        cg_assert(words[w] >> (4 * digits[w]) == 0); /* %012llx would print more digits */
        for (int i = digits[w] - 1; i >= 0; i--)
            *o++ = hex[(words[w] >> (4 * i)) & 0xf];
    }
    *o = '\0';
    size_t b = bucket_of(r->id);
    r->hnext = f->buckets[b];
    f->buckets[b] = r;
    r->next = f->live;
    if (f->live)
        f->live->prev = r;
    f->live = r;
    f->n_live++;
    return r;
}

static void req_free(front_t *f, req_t *r)
{
    req_t **pp = &f->buckets[bucket_of(r->id)];
    while (*pp && *pp != r)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = r->hnext;
    if (r->prev)
        r->prev->next = r->next;
    else
        f->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    f->n_live--;
    if (r->watchdog)
        cg_actor_timer_cancel(f->actor, r->watchdog);
    if (r->cfg)
        cg_snap_release(f->args.config, r->cfg);
    if (r->ack_timer)
        cg_actor_timer_cancel(f->actor, r->ack_timer);
    for (size_t i = 0; r->log_queued && i < f->n_logq; i++)
        if (f->logq[i].r == r)
            f->logq[i].r = NULL;
    cg_buf_free(&r->attempts);
    cg_buf_free(&r->attempts_detail);
    cg_free(r->session_key);
    cg_free(r->model_asked);
    cg_buf_free(&r->client_messages);
    cg_free(r->query_url);
    cg_reply_free(r->reply);
    cg_buf_free(&r->reply_json);
    cg_buf_free(&r->body);
    cg_buf_free(&r->table);
    cg_buf_free(&r->resp);
    cg_buf_free(&r->out);
    cg_free(r);
    if (f->stopping && f->n_live == 0)
        cg_actor_exit(f->actor, CG_EXIT_SHUTDOWN, "drained");
}

static void flush_log(void *p);

static void deferred_run(void *p)
{
    front_t *f = p;
    /* This turn's log write first: the final bytes it releases go out in
     * this very run (a stream whose end is known is then sent whole), and
     * their resumes find the run already queued. */
    flush_log(f);
    f->run_queued = false;
    run_mhd(f);
}

static void req_resume(req_t *r)
{
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
    /* MHD processes the resumed connection on its next run: coalesce one run
     * per loop turn however many requests were resumed in it. The run is
     * deferred to the end of the handlers of this turn (cg_actor_defer), not
     * put on a 0-delay timer: a timer would cost the loop one more
     * epoll_wait before the answer leaves. */
    front_t *f = r->front;
    if (!f->run_queued && !f->closing) {
        f->run_queued = true;
        cg_actor_defer(f->actor, deferred_run, f);
    }
}

/* ---- responses ---- */

static void set_json_error(req_t *r, unsigned status, const char *type, const char *code,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void error_json(cg_buf_t *b, const char *type, const char *code, const char *msg)
{
    cg_buf_puts(b, "{\"error\":{\"message\":");
    cg_json_quote(b, msg, strlen(msg));
    cg_buf_puts(b, ",\"type\":");
    cg_json_quote(b, type, strlen(type));
    cg_buf_puts(b, ",\"code\":");
    if (code)
        cg_json_quote(b, code, strlen(code));
    else
        cg_buf_puts(b, "null");
    cg_buf_puts(b, "}}");
}

static void set_json_error(req_t *r, unsigned status, const char *type, const char *code,
                           const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cg_buf_reset(&r->resp);
    error_json(&r->resp, type, code, msg);
    r->status = status;
    r->ctype = "application/json";
    r->phase = PH_READY;
}

static void send_flush(front_t *f);
static void flush_cb(cg_actor_t *a, void *ud);
static void run_query(front_t *f, req_t *r, struct MHD_Connection *conn, const char *url);

/* Queries read what this front logged: those waiting for the store to
 * commit the pending log run now (or, after the wait ran out, anyway). */
static void run_sync_waiters(front_t *f, bool timed_out)
{
    uint64_t synced = cg_pending_synced(f->pending);
    size_t keep = 0;
    for (size_t i = 0; i < f->n_sync; i++) {
        req_t *r = req_find(f, f->sync_waiters[i]);
        if (!r || r->phase != PH_WAITING || !r->query_url)
            continue; /* the client left, or shutdown answered it */
        if (r->sync_seq > synced && !timed_out) {
            f->sync_waiters[keep++] = f->sync_waiters[i];
            continue;
        }
        if (r->sync_seq > synced)
            cg_warn("%s: the store did not commit the pending log in time; the answer may "
                    "miss the latest exchanges",
                    r->idstr);
        run_query(f, r, r->conn, r->query_url);
        req_resume(r);
    }
    f->n_sync = keep;
    if (keep)
        send_flush(f);
    else if (f->sync_timer) {
        cg_actor_timer_cancel(f->actor, f->sync_timer);
        f->sync_timer = 0;
    }
}

static void sync_timeout_cb(cg_actor_t *a, void *ud)
{
    CG_UNUSED(ud);
    front_t *f = cg_actor_state(a);
    f->sync_timer = 0;
    run_sync_waiters(f, true);
}

static void on_synced(front_t *f, cg_msg_t *m)
{
    f->flush_out = false;
    cg_msg_view_t v;
    int keep = 1;
    if (cg_msg_unpack(m, &v, "b", &keep) != 0)
        keep = 1; /* when in doubt, keep the records */
    cg_msg_view_done(&v);
    if (f->pending) {
        cg_pending_applied(f->pending, m->req_id, keep != 0);
        /* More was logged since that FLUSH: the timer covers it. */
        if (cg_pending_last(f->pending) > cg_pending_synced(f->pending) && !f->flush_timer)
            f->flush_timer = cg_actor_timer(f->actor, (uint64_t)CG_STORE_FLUSH_MS * 1000000ull, 0,
                                            flush_cb, NULL);
        run_sync_waiters(f, false);
    }
    cg_msg_free(m);
}

static void serve_store(front_t *f, req_t *r, struct MHD_Connection *conn, const char *url)
{
    if (!f->ro) {
        set_json_error(r, 503, "unavailable", "store_unavailable",
                       "the session store is not open (see the gateway log)");
        return;
    }
    if (f->pending && f->store && cg_pending_last(f->pending) > cg_pending_synced(f->pending)) {
        /* Exchanges this front logged may not be in the database yet: have
         * the store commit them first, so a client reads its own writes. */
        r->query_url = cg_strdup(url);
        r->sync_seq = cg_pending_last(f->pending);
        if (f->n_sync == f->cap_sync) {
            f->cap_sync = f->cap_sync ? f->cap_sync * 2 : 8;
            f->sync_waiters = cg_realloc(f->sync_waiters, f->cap_sync * sizeof *f->sync_waiters);
        }
        f->sync_waiters[f->n_sync++] = r->id;
        r->phase = PH_WAITING;
        send_flush(f);
        if (!f->sync_timer)
            f->sync_timer = cg_actor_timer(f->actor, SYNC_WAIT_NS, 0, sync_timeout_cb, NULL);
        return;
    }
    run_query(f, r, conn, url);
}

static void set_body(req_t *r, unsigned status, const char *body, size_t len)
{
    cg_buf_reset(&r->resp);
    cg_buf_append(&r->resp, body, len);
    r->status = status;
    r->ctype = "application/json";
    r->phase = PH_READY;
}

static void add_common_headers(req_t *r, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "x-request-id", r->idstr);
    if (r->answered && r->model_ref)
        MHD_add_response_header(resp, "x-clawgate-model", r->model_ref);
    if (r->attempts.len)
        MHD_add_response_header(resp, "x-clawgate-attempts", r->attempts.data);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    CG_UNUSED(pos);
    req_t *r = cls;
    if (r->client_gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t avail = r->out.len - r->out_off;
    if (avail) {
        size_t n = avail < max ? avail : max;
        memcpy(buf, r->out.data + r->out_off, n);
        r->out_off += n;
        if (r->out_off == r->out.len) {
            cg_buf_reset(&r->out);
            r->out_off = 0;
        }
        return (ssize_t)n;
    }
    if (r->upstream_done)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* Nothing to send yet: park the connection until the provider sends
     * more (req_resume), as microhttpd.h prescribes for "no data yet". */
    if (!r->suspended) {
        r->suspended = true;
        MHD_suspend_connection(r->conn);
    }
    return 0;
}

/* A response carrying b's bytes. MHD takes b's memory (it frees it with
 * free(), which cg_buf's allocation is) and b is left empty: no copy of
 * the answer. */
static struct MHD_Response *response_from(cg_buf_t *b)
{
    if (!b->data)
        return MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE);
    if (resp)
        *b = (cg_buf_t){0};
    return resp;
}

static enum MHD_Result queue_response(req_t *r)
{
    struct MHD_Response *resp;
    unsigned status;
    if (r->phase == PH_STREAM && r->upstream_done && !r->client_gone) {
        /* The whole stream is already here when the head is due (a fast
         * model and a short answer: every chunk and the end arrived in the
         * turn): one response with a Content-Length, which MHD sends in one
         * write. Chunked, MHD writes the head, the data and the end chunk in
         * three sends, each waking the client (measured: a third of the
         * front's CPU on short streams). An SSE client reads both alike; an
         * answer still being generated keeps chunked streaming below. */
        /* Nothing of it was handed out yet: stream_reader runs only once a
         * chunked response is queued, and a request is queued once. */
        cg_assert(r->out_off == 0);
        resp = response_from(&r->out);
        if (resp) {
            MHD_add_response_header(resp, "Content-Type", "text/event-stream");
            MHD_add_response_header(resp, "Cache-Control", "no-cache");
        }
        status = 200;
    } else if (r->phase == PH_STREAM) {
        resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, r, NULL);
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        status = 200;
    } else {
        resp = response_from(&r->resp);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype : "application/json");
        status = r->status;
        if (r->retry_after_s > 0) {
            char ra[32];
            snprintf(ra, sizeof ra, "%lld", (long long)r->retry_after_s);
            MHD_add_response_header(resp, "Retry-After", ra);
        }
        if (r->allow)
            MHD_add_response_header(resp, "Allow", r->allow);
    }
    if (!resp)
        return MHD_NO;
    add_common_headers(r, resp);
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->phase = PH_SENT;
    return rc;
}

/* ---- routing ---- */

static route_t route_of(const char *url, const char *method, const char **allow, bool *ok)
{
    struct {
        const char *path;
        const char *method;
        route_t route;
    } table[] = {
        {"/v1/chat/completions", "POST", ROUTE_CHAT},
        {"/v1/responses", "POST", ROUTE_RESPONSES},
        {"/v1/models", "GET", ROUTE_MODELS},
        {"/healthz", "GET", ROUTE_HEALTH},
        {"/readyz", "GET", ROUTE_READY},
        {"/v1/gateway/status", "GET", ROUTE_STATUS},
        {"/v1/gateway/test/crash", "POST", ROUTE_TEST_CRASH},
        {"/v1/usage", "GET", ROUTE_STORE},
        {"/v1/sessions", "GET", ROUTE_STORE},
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(table); i++) {
        if (strcmp(url, table[i].path) != 0)
            continue;
        *allow = table[i].method;
        *ok = strcmp(method, table[i].method) == 0 ||
              (strcmp(table[i].method, "GET") == 0 && strcmp(method, "HEAD") == 0);
        return table[i].route;
    }
    if (strncmp(url, "/v1/sessions/", 13) == 0) {
        *allow = "GET";
        *ok = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        return ROUTE_STORE;
    }
    *ok = false;
    return ROUTE_NONE;
}

static void serve_models(front_t *f, req_t *r)
{
    cg_config_t *c = cg_snap_acquire(f->args.config);
    cg_buf_t *b = &r->resp;
    cg_buf_reset(b);
    cg_buf_puts(b, "{\"object\":\"list\",\"data\":[");
    bool first = true;
    for (size_t i = 0; c && i < c->n_providers; i++) {
        const cg_provider_t *p = &c->providers[i];
        if (!p->available)
            continue;
        for (size_t j = 0; j < p->n_models; j++) {
            cg_buf_puts(b, first ? "{\"id\":" : ",{\"id\":");
            first = false;
            cg_json_quote(b, p->models[j].ref, strlen(p->models[j].ref));
            cg_buf_puts(b, ",\"object\":\"model\",\"created\":0,\"owned_by\":");
            cg_json_quote(b, p->name, strlen(p->name));
            cg_buf_puts(b, "}");
        }
    }
    for (size_t i = 0; c && i < c->n_aliases; i++) {
        const cg_alias_t *al = &c->aliases[i];
        if (!al->model->provider->available)
            continue;
        cg_buf_puts(b, first ? "{\"id\":" : ",{\"id\":");
        first = false;
        cg_json_quote(b, al->alias, strlen(al->alias));
        cg_buf_puts(b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"clawgate\",\"root\":");
        cg_json_quote(b, al->model->ref, strlen(al->model->ref));
        cg_buf_puts(b, "}");
    }
    cg_buf_puts(b, "]}");
    r->status = 200;
    r->ctype = "application/json";
    r->phase = PH_READY;
    if (c)
        cg_snap_release(f->args.config, c);
}

static void serve_ready(front_t *f, req_t *r)
{
    cg_config_t *c = cg_snap_acquire(f->args.config);
    size_t usable = 0;
    for (size_t i = 0; c && i < c->n_providers; i++)
        if (c->providers[i].available)
            usable++;
    if (c && usable > 0) {
        cg_buf_reset(&r->resp);
        cg_buf_printf(&r->resp, "{\"status\":\"ready\",\"providers_usable\":%zu}", usable);
        r->status = 200;
        r->ctype = "application/json";
        r->phase = PH_READY;
    } else {
        set_json_error(r, 503, "unavailable", "not_ready",
                       c ? "no usable provider in the config" : "no config loaded");
    }
    if (c)
        cg_snap_release(f->args.config, c);
}

static void serve_status(front_t *f, req_t *r)
{
    cg_config_t *c = cg_snap_acquire(f->args.config);
    cg_health_t *h = cg_snap_acquire(f->args.health);
    cg_buf_reset(&r->resp);
    cg_health_status_json(h, c, &r->resp);
    r->status = 200;
    r->ctype = "application/json";
    r->phase = PH_READY;
    if (h)
        cg_snap_release(f->args.health, h);
    if (c)
        cg_snap_release(f->args.config, c);
}

/* Test hook, only when the process runs with CLAWGATE_TEST_HOOKS=1: make a
 * provider actor crash (CG_MSG_CRASH) so end-to-end tests can watch the
 * supervisor restart it. Without the variable the endpoint does not exist. */
static void serve_test_crash(front_t *f, req_t *r, struct MHD_Connection *conn)
{
    if (!f->test_hooks) {
        set_json_error(r, 404, "invalid_request_error", "not_found",
                       "no such endpoint: POST /v1/gateway/test/crash");
        return;
    }
    const char *name = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "provider");
    cg_routes_t *routes = cg_snap_acquire(f->args.routes);
    cg_aid_t aid = routes && name ? cg_routes_lookup(routes, name) : CG_AID_NONE;
    if (routes)
        cg_snap_release(f->args.routes, routes);
    if (!aid) {
        set_json_error(r, 404, "invalid_request_error", "not_found", "no running provider '%s'",
                       name ? name : "(none)");
        return;
    }
    cg_msg_t *m = cg_msg_new(CG_MSG_CRASH, NULL, 0);
    int rc = cg_actor_send(aid, m);
    if (rc != CG_OK) {
        cg_msg_free(m);
        set_json_error(r, 503, "unavailable", "send_failed", "%s", cg_strerror(rc));
        return;
    }
    cg_warn("test hook: crashing provider actor '%s'", name);
    set_body(r, 200, "{\"crashed\":true}", 16);
}

/* MHD hands over the query already split and decoded; the store's query
 * parser takes the raw form, so put it back together. */
static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    CG_UNUSED(kind);
    cg_buf_t *q = cls;
    const char *parts[2] = {key, value};
    for (int i = 0; i < 2; i++) {
        if (i == 0 && q->len)
            cg_buf_append(q, "&", 1);
        if (i == 1) {
            if (!value)
                break;
            cg_buf_append(q, "=", 1);
        }
        for (const unsigned char *p = (const unsigned char *)parts[i]; p && *p; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '_' || *p == '.' || *p == '~')
                cg_buf_append(q, p, 1);
            else
                cg_buf_printf(q, "%%%02X", *p);
        }
    }
    return MHD_YES;
}

static void run_query(front_t *f, req_t *r, struct MHD_Connection *conn, const char *url)
{
    cg_buf_t q = {0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_query_arg, &q);
    unsigned status = 500;
    cg_buf_reset(&r->resp);
    int rc = cg_store_http(f->ro, "GET", url, q.data, &r->resp, &status);
    cg_buf_free(&q);
    if (rc == CG_ENOENT) {
        set_json_error(r, 404, "invalid_request_error", "not_found", "no such endpoint: GET %s",
                       url);
        return;
    }
    r->status = status;
    r->ctype = "application/json";
    r->phase = PH_READY;
}

/* ---- the exchange record ----
 * Every chat request that reached the routing stage leaves one exchange in
 * the store. A success's final byte (the end of the JSON body, or
 * "data: [DONE]") is held until the store ACKs the commit, so an exchange a
 * client saw complete survives a kill -9. Failures are recorded without
 * holding the client: their answer is an error either way. */

static void finish_held(front_t *f, req_t *r, bool stored, const char *why);

static void ack_timeout_cb(cg_actor_t *a, void *ud)
{
    req_t *r = ud;
    r->ack_timer = 0;
    if (r->await_ack)
        finish_held(cg_actor_state(a), r, false, "no commit acknowledgement within 10 s");
}

/* ---- the pending log (store.h) ----
 * A success without a session is made durable by one append to the pending
 * log; the store commits it in the background, at the latest when the flush
 * timer sends it CG_STORE_FLUSH. */

static void send_flush(front_t *f)
{
    if (f->flush_timer) {
        cg_actor_timer_cancel(f->actor, f->flush_timer);
        f->flush_timer = 0;
    }
    uint64_t now = cg_now_ns();
    if (f->flush_out && now - f->flush_sent_ns < FLUSH_RESEND_NS)
        return; /* its SYNCED will schedule the next one if need be */
    cg_msg_t *m = cg_msg_new(CG_STORE_FLUSH, NULL, 0);
    m->sender = m->reply_to = cg_actor_self(f->actor);
    if (cg_actor_send(f->store, m) != CG_OK) {
        /* The store is gone or flooded: what is logged stays logged, and the
         * next start applies it. Queries cannot wait for it. */
        cg_msg_free(m);
        cg_warn("http: cannot ask the store to commit the pending log");
        return;
    }
    f->flush_out = true; /* until SYNCED, or for FLUSH_RESEND_NS if it never comes */
    f->flush_sent_ns = now;
}

static void flush_cb(cg_actor_t *a, void *ud)
{
    CG_UNUSED(ud);
    front_t *f = cg_actor_state(a);
    f->flush_timer = 0;
    send_flush(f);
}

/* The commit-then-ACK path: m goes to the store, which ACKs r's exchange
 * once it is committed; a success's final byte waits for that (finish_held).
 * r may be NULL (the request ended): the exchange is stored all the same. */
static void send_for_ack(front_t *f, req_t *r, cg_msg_t *m, bool ok)
{
    int rc = f->store ? cg_actor_send(f->store, m) : CG_ENOENT;
    if (rc != CG_OK) {
        cg_msg_free(m);
        cg_error("%s: exchange not recorded: store %s", r ? r->idstr : "(ended request)",
                 cg_strerror(rc));
        if (ok && r) {
            r->await_ack = true;
            finish_held(f, r, false, "the session store cannot take it");
        }
        return;
    }
    if (ok && r) {
        r->await_ack = true;
        r->ack_timer = cg_actor_timer(f->actor, ACK_TIMEOUT_NS, 0, ack_timeout_cb, r);
    }
}

/* The end of a loop turn: the exchanges that ended in it go to the pending
 * log in one writev(2), are posted to the store without waking it, and their
 * final bytes are released. At c8 that is one write for eight requests
 * instead of eight. If the write fails, each takes the commit-then-ACK path
 * instead. The final bytes wait only for the end of the turn that produced
 * them: the deferred MHD run of the turn calls this first. */
static void flush_log(void *p)
{
    front_t *f = p;
    size_t n = f->n_logq;
    if (n == 0)
        return;
    f->log_flushing = true;
    for (size_t i = 0; i < n; i++)
        f->logq_msgs[i] = f->logq[i].m;
    uint64_t seq0 = 0;
    bool logged = cg_pending_append_batch(f->pending, f->logq_msgs, n, &seq0) == CG_OK;
    for (size_t i = 0; i < n; i++) {
        req_t *r = f->logq[i].r;
        cg_msg_t *m = f->logq[i].m;
        if (r)
            r->log_queued = false;
        if (!logged) {
            if (r)
                r->await_ack = false; /* send_for_ack holds it again */
            send_for_ack(f, r, m, true);
            continue;
        }
        m->type = CG_STORE_APPEND_LOGGED;
        m->req_id = seq0 + i;
        if (cg_actor_send_lazy(f->store, m) != CG_OK) {
            /* Durable in the log all the same; the next start applies it. */
            cg_msg_free(m);
            cg_warn("%s: the store cannot take the exchange now; it stays in the pending log",
                    r ? r->idstr : "(ended request)");
        } else if (!f->flush_timer) {
            f->flush_timer = cg_actor_timer(f->actor, (uint64_t)CG_STORE_FLUSH_MS * 1000000ull, 0,
                                            flush_cb, NULL);
        }
        if (r)
            finish_held(f, r, true, NULL);
    }
    f->n_logq = 0;
    f->log_flushing = false;
}

/* Queue r's exchange (m, an APPEND) for this turn's pending-log write
 * (flush_log). False when the log is not for it: the commit-then-ACK path
 * takes it. */
static bool log_exchange(front_t *f, req_t *r, cg_msg_t *m)
{
    if (!cg_pending_fits(m->len) || f->log_flushing || f->closing)
        return false;
    if (f->n_logq == f->cap_logq) {
        f->cap_logq = f->cap_logq ? 2 * f->cap_logq : 16;
        f->logq = cg_realloc(f->logq, f->cap_logq * sizeof *f->logq);
        f->logq_msgs = cg_realloc(f->logq_msgs, f->cap_logq * sizeof *f->logq_msgs);
    }
    if (f->n_logq == 0)
        cg_actor_defer(f->actor, flush_log, f);
    f->logq[f->n_logq++] = (logged_t){r, m};
    r->log_queued = true;
    r->await_ack = true;
    return true;
}

static void record(front_t *f, req_t *r, const char *status, const char *klass, int http_status)
{
    if (r->recorded)
        return;
    r->recorded = true;
    if (!f->store) {
        /* store.enabled: false — nothing to record or to wait for. */
        if (strcmp(status, "ok") == 0) {
            r->await_ack = true;
            finish_held(f, r, true, NULL);
        }
        return;
    }
    cg_store_attempt_t att[CG_ARRAY_LEN(r->att)];
    size_t n = r->n_attempts < CG_ARRAY_LEN(att) ? r->n_attempts : CG_ARRAY_LEN(att);
    for (size_t i = 0; i < n; i++)
        att[i] = (cg_store_attempt_t){.ref = r->att[i].ref,
                                      .fail_class = r->att[i].klass,
                                      .http_status = r->att[i].status,
                                      .duration_ms = r->att[i].ms};
    bool ok = strcmp(status, "ok") == 0;
    if (ok && r->session_key && r->reply)
        cg_reply_message(r->reply, &r->reply_json);
    int64_t pt = r->pt > 0 ? r->pt : 0, ct = r->ct > 0 ? r->ct : 0;
    int64_t cached = r->cached > 0 ? r->cached : 0;
    cg_store_exchange_t x = {
        .session_key = r->session_key,
        .stateful = r->stateful,
        .request_id = r->idstr,
        .client_api = cg_xapi_name(r->api),
        .model_asked = r->model_asked,
        .model_answered = ok && r->answered_model ? r->answered_model->ref : NULL,
        .status = status,
        .error_class = ok ? NULL : klass,
        .http_status = http_status,
        .attempts = att,
        .n_attempts = n,
        .prompt_tokens = pt,
        .completion_tokens = ct,
        .cache_read_tokens = cached,
        .cost_usd = ok ? cg_store_cost(r->answered_model, pt, ct, cached, 0) : 0,
        .ttft_ms = r->ttft_ms,
        .latency_ms = (int64_t)((cg_now_ns() - r->t0_ns) / 1000000ull),
        .started_ms = r->started_ms,
        .finished_ms = cg_wall_ms(),
        .messages_json = r->client_messages.len ? r->client_messages.data : NULL,
        .messages_len = r->client_messages.len,
        .reply_json = r->reply_json.len ? r->reply_json.data : NULL,
        .reply_len = r->reply_json.len,
    };
    cg_msg_t *m = cg_store_append_msg(&x);
    m->req_id = r->id;
    m->sender = m->reply_to = cg_actor_self(f->actor);
    if (ok && !r->session_key && f->pending && log_exchange(f, r, m))
        return;
    send_for_ack(f, r, m, ok);
}

/* The ACK (or its absence) for a held success: release the final byte, or
 * when the store failed and the operator chose onError "fail", replace it by
 * an error (503, or an error event on a stream whose headers are out). */
static void finish_held(front_t *f, req_t *r, bool stored, const char *why)
{
    if (!r->await_ack)
        return;
    r->await_ack = false;
    if (r->ack_timer) {
        cg_actor_timer_cancel(f->actor, r->ack_timer);
        r->ack_timer = 0;
    }
    bool deliver = stored || !f->store_fail_closed;
    if (!stored)
        cg_error("%s: the store did not commit the exchange (%s); %s", r->idstr, why,
                 deliver ? "answering anyway (onError: serve)" : "failing it (onError: fail)");
    if (r->stream) {
        if (!r->client_gone) {
            if (deliver) {
                if (r->api == CG_XAPI_CHAT)
                    cg_buf_append(&r->out, "data: [DONE]\n\n", 14);
            } else {
                cg_buf_t ev = {0};
                error_json(&ev, "unavailable", "store_error",
                           "the exchange could not be recorded in the session store");
                stream_append_event(r, error_event_name(r), ev.data, ev.len);
                cg_buf_free(&ev);
            }
        }
        r->upstream_done = true;
        if (r->phase == PH_WAITING || r->phase == PH_HOLD)
            r->phase = PH_STREAM;
    } else if (deliver) {
        r->phase = PH_READY;
    } else {
        set_json_error(r, 503, "unavailable", "store_error",
                       "the answer could not be recorded in the session store (%s); "
                       "clawgate.store.onError is \"fail\"",
                       why);
    }
    req_resume(r);
}

static void on_store_ack(front_t *f, cg_msg_t *m)
{
    req_t *r = req_find(f, m->req_id);
    if (!r || !r->await_ack) {
        cg_msg_free(m);
        return;
    }
    cg_msg_view_t v;
    int ok = 0;
    const char *err = NULL;
    size_t elen = 0;
    if (cg_msg_unpack(m, &v, "bS", &ok, &err, &elen) != 0)
        ok = 0;
    char why[256];
    snprintf(why, sizeof why, "%.*s", (int)(elen > 200 ? 200 : elen), err ? err : "");
    cg_msg_view_done(&v);
    cg_msg_free(m);
    finish_held(f, r, ok != 0, why);
}

/* ---- chat completions ---- */

static const char *jtype_name(cg_jtype_t t)
{
    switch (t) {
    case CG_JNULL:
        return "null";
    case CG_JFALSE:
    case CG_JTRUE:
        return "a boolean";
    case CG_JNUMBER:
        return "a number";
    case CG_JSTRING:
        return "a string";
    case CG_JARRAY:
        return "an array";
    case CG_JOBJECT:
        return "an object";
    default:
        return "absent";
    }
}

/* ---- provider replies ---- */

static unsigned status_for_failure(const char *cls, int64_t upstream_status)
{
    if (strcmp(cls, "rate_limit") == 0)
        return 429;
    if (strcmp(cls, "overloaded") == 0)
        return 503;
    if (strcmp(cls, "timeout") == 0)
        return upstream_status == 0 ? 504 : 502;
    if (strcmp(cls, "format") == 0)
        return upstream_status >= 400 && upstream_status < 500 ? (unsigned)upstream_status : 400;
    if (strcmp(cls, "context_overflow") == 0)
        return 400;
    return 502;
}

static void stream_append_event(req_t *r, const char *event, const char *data, size_t len)
{
    if (r->out.len - r->out_off + len + 8 > STREAM_BUFFER_CAP) {
        /* The client reads slower than the model writes and has fallen 8 MiB
         * behind: end it rather than hold unbounded memory. */
        cg_warn("%s: client too slow, %zu bytes buffered; dropping it", r->idstr,
                r->out.len - r->out_off);
        r->client_gone = true;
        return;
    }
    if (event && *event) {
        cg_buf_append(&r->out, "event: ", 7);
        cg_buf_puts(&r->out, event);
        cg_buf_append(&r->out, "\n", 1);
    }
    cg_buf_append(&r->out, "data: ", 6);
    cg_buf_append(&r->out, data, len);
    cg_buf_append(&r->out, "\n\n", 2);
}

/* ---- attempts and failover ----
 * A request walks its plan (resolved model, then fallbacks in the order the
 * health snapshot gives, down or cooling ones skipped). Each attempt's
 * messages carry req_id = id << ATTEMPT_BITS | attempt, so a late message of
 * an abandoned attempt is recognised and dropped. Failover happens only while
 * nothing has reached the client; after the first byte a failure ends the
 * stream with an error event. */

static uint64_t wire_id(const req_t *r)
{
    return r->id << ATTEMPT_BITS | (uint64_t)r->attempt;
}

static void sample(front_t *f, req_t *r, const char *klass, int64_t status, uint64_t ttft_ns,
                   int64_t out_tokens, int64_t retry_ms)
{
    if (!f->supervisor || !r->model_ref)
        return;
    cg_msg_t *m = cg_sup_sample_msg(r->model_ref, klass, (int)status, ttft_ns,
                                    cg_now_ns() - r->attempt_t0, out_tokens, retry_ms);
    m->sender = cg_actor_self(f->actor);
    /* Statistics, not requests: a full or absent supervisor loses a sample.
     * A success may wait for the supervisor's next periodic wake-up (at most
     * its flush period); a failure changes routing (cooldowns), so it wakes
     * the supervisor at once. */
    int rc = klass ? cg_actor_send(f->supervisor, m) : cg_actor_send_lazy(f->supervisor, m);
    if (rc != CG_OK)
        cg_msg_free(m);
}

static void note_attempt(req_t *r, const char *klass, int64_t status, const char *msg,
                         size_t msg_len)
{
    uint64_t ms = (cg_now_ns() - r->attempt_t0) / 1000000ull;
    if (r->n_attempts < CG_ARRAY_LEN(r->att)) {
        r->att[r->n_attempts].ref = r->model_ref;
        r->att[r->n_attempts].klass = klass;
        r->att[r->n_attempts].status = (int)status;
        r->att[r->n_attempts].ms = (int64_t)ms;
    }
    if (r->attempts.len)
        cg_buf_puts(&r->attempts, ", ");
    cg_buf_puts(&r->attempts, r->model_ref);
    cg_buf_puts(&r->attempts, ";");
    cg_buf_puts(&r->attempts, klass ? klass : "ok");
    cg_buf_puts(&r->attempts, ";");
    cg_buf_put_i64(&r->attempts, status);
    if (klass)
        cg_buf_printf(&r->attempts_detail, "%s%s: %s, status %lld, %llu ms: %.*s",
                      r->attempts_detail.len ? "; " : "", r->model_ref, klass, (long long)status,
                      (unsigned long long)ms, (int)(msg_len > 300 ? 300 : msg_len), msg ? msg : "");
    r->n_attempts++;
}

static void watchdog_cb(cg_actor_t *a, void *ud);

/* The cooldown a failure of this request starts, by the supervisor's own
 * rules, so the all-failed error can say when the first one ends without
 * waiting for the supervisor to publish it. */
static void note_cooldown(front_t *f, req_t *r, const char *klass, int64_t retry_ms)
{
    if (!cg_health_falls_back(klass))
        return;
    cg_health_t *h = cg_snap_acquire(f->args.health);
    const cg_health_model_t *hm = h ? cg_health_find_model(h, r->model_ref) : NULL;
    int failures = hm ? hm->failures + 1 : 1;
    if (h)
        cg_snap_release(f->args.health, h);
    int64_t end =
        cg_wall_ms() + (int64_t)(cg_health_cooldown_ns(klass, failures, retry_ms) / 1000000ull);
    if (!r->cooldown_end_ms || end < r->cooldown_end_ms)
        r->cooldown_end_ms = end;
}

static void all_failed(front_t *f, req_t *r)
{
    cg_health_t *h = cg_snap_acquire(f->args.health);
    int64_t soon = cg_health_soonest_cooldown_ms(h, r->cfg, r->requested, cg_now_ns());
    if (r->cooldown_end_ms && (!soon || r->cooldown_end_ms < soon))
        soon = r->cooldown_end_ms;
    if (h)
        cg_snap_release(f->args.health, h);
    const char *klass = r->last_class ? r->last_class : "unknown";
    unsigned st = status_for_failure(klass, r->last_status);
    char when[96] = "";
    if (soon > 0) {
        time_t t = (time_t)(soon / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        long in_s = (long)((soon - cg_wall_ms() + 999) / 1000);
        strftime(when, sizeof when, "; the first cooldown ends at %Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(when + strlen(when), sizeof when - strlen(when), " (in %lds)",
                 in_s < 0 ? 0 : in_s);
        if (st == 429 || st == 503)
            r->retry_after_s = in_s > 0 ? in_s : 1;
    } else if (r->last_retry_ms > 0) {
        r->retry_after_s = (r->last_retry_ms + 999) / 1000;
    }
    const char *code = strcmp(klass, "context_overflow") == 0 ? "context_length_exceeded" : klass;
    if (r->n_attempts == 1)
        set_json_error(r, st, "upstream_error", code, "the attempt failed: %s%s",
                       r->attempts_detail.data, when);
    else
        set_json_error(r, st, "upstream_error", code, "all %zu attempts failed: %s%s",
                       r->n_attempts, r->attempts_detail.data, when);
    record(f, r, "error", klass, (int)st);
}

/* Send the request to the plan's next usable entry. Returns true when an
 * attempt is in flight; otherwise the request holds the all-failed error. */
static bool start_attempt(front_t *f, req_t *r)
{
    cg_routes_t *routes = cg_snap_acquire(f->args.routes);
    for (; r->attempt < r->n_plan; r->attempt++) {
        const cg_model_t *model = r->plan[r->attempt];
        r->model_ref = model->ref;
        r->attempt_t0 = cg_now_ns();
        cg_aid_t aid = routes ? cg_routes_lookup(routes, model->provider->name) : CG_AID_NONE;
        if (!aid) {
            r->last_class = "unknown";
            r->last_status = 0;
            note_attempt(r, "unknown", 0, "provider actor not running", 26);
            continue;
        }
        int total_ms = model->provider->timeout_seconds > 0
                           ? model->provider->timeout_seconds * 1000
                           : f->request_ms;
        /* Reasoning goes out unless the request or the model's config says
         * final text only (the model setting is the operator's). */
        bool omit = r->omit_reasoning || model->omit_reasoning;
        cg_msg_t *m = cg_msg_pack(
            CG_PROV_REQUEST, "sbbxiiiiibsx", model->ref, (int)r->stream, (int)r->client_usage,
            (const void *)r->body.data, r->body.len, (int64_t)f->connect_ms,
            (int64_t)f->first_token_ms, (int64_t)f->idle_ms, (int64_t)total_ms, (int64_t)r->api,
            (int)omit, r->response_id, (const void *)r->table.data, r->table.len);
        m->req_id = wire_id(r);
        m->sender = m->reply_to = cg_actor_self(f->actor);
        int rc = cg_actor_send(aid, m);
        if (rc != CG_OK) {
            /* A full provider mailbox is back-pressure: that provider is
             * overloaded for now; try the next one rather than queue. */
            cg_msg_free(m);
            r->last_class = "overloaded";
            r->last_status = 0;
            const char *why = rc == CG_EFULL ? "provider mailbox full" : "provider actor gone";
            note_attempt(r, "overloaded", 0, why, strlen(why));
            continue;
        }
        if (f->supervisor) {
            cg_msg_t *b = cg_sup_begin_msg(model->ref);
            b->sender = cg_actor_self(f->actor);
            if (cg_actor_send_lazy(f->supervisor, b) != CG_OK)
                cg_msg_free(b);
        }
        r->provider = aid;
        r->inflight = true;
        r->phase = PH_WAITING;
        /* The provider enforces its own timeouts; this only catches a
         * provider actor that stopped answering altogether. */
        if (r->watchdog)
            cg_actor_timer_cancel(f->actor, r->watchdog);
        r->watchdog = cg_actor_timer(
            f->actor, ((uint64_t)total_ms + WATCHDOG_SLACK_MS) * 1000000ull, 0, watchdog_cb, r);
        if (routes)
            cg_snap_release(f->args.routes, routes);
        return true;
    }
    if (routes)
        cg_snap_release(f->args.routes, routes);
    r->inflight = false;
    all_failed(f, r);
    return false;
}

static void cancel_attempt(front_t *f, req_t *r)
{
    cg_msg_t *m = cg_msg_new(CG_PROV_CANCEL, NULL, 0);
    m->req_id = wire_id(r);
    m->sender = m->reply_to = cg_actor_self(f->actor);
    if (cg_actor_send(r->provider, m) != CG_OK)
        cg_msg_free(m);
}

/* A failure of the current attempt: fall over if nothing reached the client
 * and the class allows it, else end the request with the error. */
static void attempt_failed(front_t *f, req_t *r, const char *klass, int64_t status, const char *msg,
                           size_t msg_len, int64_t retry_ms)
{
    r->inflight = false;
    if (r->watchdog) {
        cg_actor_timer_cancel(f->actor, r->watchdog);
        r->watchdog = 0;
    }
    /* An attempt whose provider actor stopped under it says nothing about
     * the model: release its in-flight count without a cooldown. */
    bool aborted = strcmp(klass, "aborted") == 0;
    sample(f, r, aborted ? "cancelled" : klass, status, 0, 0, retry_ms);
    note_attempt(r, klass, status, msg, msg_len);
    if (!aborted)
        note_cooldown(f, r, klass, retry_ms);
    r->last_class = klass;
    r->last_status = status;
    r->last_retry_ms = retry_ms;
    cg_info("%s: attempt %zu on %s failed: %s (status %lld): %.*s", r->idstr, r->attempt + 1,
            r->model_ref, klass, (long long)status, (int)(msg_len > 300 ? 300 : msg_len),
            msg ? msg : "");
    if (r->phase == PH_WAITING && !r->client_gone) {
        if (cg_health_falls_back(klass) && r->attempt + 1 < r->n_plan) {
            r->attempt++;
            if (start_attempt(f, r))
                return;
        } else {
            r->attempt = r->n_plan;
            all_failed(f, r);
        }
    } else if (r->phase != PH_WAITING) {
        /* Output already reached the client: end the stream with one error
         * event in the client's format, never another model's words spliced
         * in. */
        cg_buf_t ev = {0}, text = {0};
        cg_buf_printf(&text, "provider %s failed mid-stream (%s", r->model_ref, klass);
        if (status)
            cg_buf_printf(&text, ", upstream status %lld", (long long)status);
        cg_buf_printf(&text, "): %.*s", (int)(msg_len > 2000 ? 2000 : msg_len), msg ? msg : "");
        error_json(&ev, "upstream_error", klass, text.data);
        if (!r->client_gone && !r->provider_closed)
            stream_append_event(r, error_event_name(r), ev.data, ev.len);
        cg_buf_free(&ev);
        cg_buf_free(&text);
        record(f, r, "error", klass, 200);
    }
    r->upstream_done = true;
    req_resume(r);
}

static void watchdog_cb(cg_actor_t *a, void *ud)
{
    front_t *f = cg_actor_state(a);
    req_t *r = ud;
    r->watchdog = 0;
    if (!r->inflight)
        return;
    cg_warn("%s: provider actor for %s did not answer in time; abandoning the attempt", r->idstr,
            r->model_ref);
    cancel_attempt(f, r);
    const char *msg = "provider actor did not answer";
    attempt_failed(f, r, "timeout", 0, msg, strlen(msg), 0);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* Two JSON arrays (raw text) joined into one: a's items, then b's. */
static void join_arrays(const char *a, size_t al, const char *b, size_t bl, cg_buf_t *out)
{
    while (al && a[al - 1] != ']')
        al--;
    size_t as = 1, bs = 1;
    while (as < al && is_space(a[as]))
        as++;
    while (bs < bl && is_space(b[bs]))
        bs++;
    bool a_empty = al < 2 || as >= al - 1;
    bool b_empty = bl < 2 || b[bs] == ']';
    if (a_empty) {
        cg_buf_append(out, b, bl);
        return;
    }
    cg_buf_append(out, a, al - 1); /* without its ']' */
    if (b_empty) {
        cg_buf_append(out, "]", 1);
        return;
    }
    cg_buf_append(out, ",", 1);
    cg_buf_append(out, b + bs, bl - bs);
}

/* Responses API conversations on top of the session store. A request that
 * may be continued (store not false) is recorded under an implicit session
 * named after its response id; previous_response_id continues one: the
 * stored conversation (as Responses items) goes in front of the new input,
 * and the field itself is removed, so it works for every provider,
 * including ones that have no such thing. Returns 0, or -1 with an error
 * response set. */
static int start_chain(front_t *f, req_t *r, const cg_jscan_t *js, const cg_jmember_t *input)
{
    const cg_jmember_t *prev = cg_jscan_get(js, "previous_response_id");
    const cg_jmember_t *keep = cg_jscan_get(js, "store");
    if (prev && prev->type != CG_JSTRING && prev->type != CG_JNULL) {
        set_json_error(r, 400, "invalid_request_error", "invalid_type",
                       "'previous_response_id' must be a string, got %s", jtype_name(prev->type));
        return -1;
    }
    bool has_prev = prev && prev->type == CG_JSTRING;
    if (!has_prev && keep && keep->type == CG_JFALSE)
        return 0;
    if (!f->ro || !f->store) {
        if (!has_prev)
            return 0;
        set_json_error(r, 400, "invalid_request_error", "store_unavailable",
                       "previous_response_id needs the session store, which is not enabled");
        return -1;
    }
    cg_buf_t items = {0};
    if (input->type == CG_JSTRING) {
        cg_buf_puts(&items, "[{\"role\":\"user\",\"content\":");
        cg_buf_append(&items, js->src + input->val_off, input->val_len);
        cg_buf_puts(&items, "}]");
    } else {
        cg_buf_append(&items, js->src + input->val_off, input->val_len);
    }
    cg_buf_free(&r->client_messages);
    r->client_messages = items;
    if (!has_prev) {
        r->session_key = cg_strdup(r->response_id);
        return 0;
    }
    cg_buf_t id = {0};
    cg_jscan_string(js, prev, &id);
    if (id.len < 6 || strncmp(id.data, "resp_", 5) != 0 || id.len > 64) {
        set_json_error(r, 400, "invalid_request_error", "previous_response_not_found",
                       "Previous response with id '%.64s' not found.", id.data ? id.data : "");
        cg_buf_free(&id);
        return -1;
    }
    char reqid[80];
    snprintf(reqid, sizeof reqid, "req_%s", id.data + 5);
    cg_buf_t hist = {0}, key = {0};
    int rc = cg_store_chain(f->ro, reqid, &hist, &key);
    if (rc != 0) {
        if (rc == CG_ENOENT)
            set_json_error(r, 400, "invalid_request_error", "previous_response_not_found",
                           "Previous response with id '%s' not found.", id.data);
        else
            set_json_error(r, 503, "unavailable", "store_error",
                           "could not read the conversation of '%s'", id.data);
        cg_buf_free(&id);
        cg_buf_free(&hist);
        cg_buf_free(&key);
        return -1;
    }
    cg_buf_t hitems = {0}, merged = {0}, nb = {0};
    if (!cg_reply_chat_to_items(hist.data, hist.len, &hitems))
        cg_buf_puts(&hitems, "[]");
    join_arrays(hitems.data, hitems.len, r->client_messages.data, r->client_messages.len, &merged);
    cg_jedit_t ed[2] = {{.key = "input", .raw = merged.data, .raw_len = merged.len},
                        {.key = "previous_response_id", .raw = NULL, .raw_len = 0}};
    cg_jscan_apply(js, ed, 2, &nb);
    cg_buf_free(&r->body);
    r->body = nb;
    r->session_key = cg_buf_steal(&key, NULL);
    r->stateful = true;
    cg_buf_free(&id);
    cg_buf_free(&hist);
    cg_buf_free(&hitems);
    cg_buf_free(&merged);
    return 0;
}

/* x-session-key names a session: keep the client's messages (and, on a
 * stream, fold the reply) for its transcript. x-session-mode: stateful means
 * the client sends only its new messages: the stored history goes in front
 * of them, spliced into the body without re-serialising the rest. Returns 0,
 * or -1 with an error response set. */
static int start_session(front_t *f, req_t *r, const cg_jscan_t *js, const cg_jmember_t *msgs)
{
    const char *key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "x-session-key");
    const char *mode = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "x-session-mode");
    if (!key || !*key) {
        if (mode && strcasecmp(mode, "stateful") == 0) {
            set_json_error(r, 400, "invalid_request_error", "missing_session_key",
                           "x-session-mode: stateful needs an x-session-key header");
            return -1;
        }
        return 0;
    }
    if (strlen(key) > 512) {
        set_json_error(r, 400, "invalid_request_error", "invalid_session_key",
                       "x-session-key is longer than 512 bytes");
        return -1;
    }
    if (mode && strcasecmp(mode, "stateful") != 0 && strcasecmp(mode, "stateless") != 0) {
        set_json_error(r, 400, "invalid_request_error", "invalid_session_mode",
                       "x-session-mode must be 'stateful' or 'stateless', got '%.64s'", mode);
        return -1;
    }
    r->session_key = cg_strdup(key);
    r->stateful = mode && strcasecmp(mode, "stateful") == 0;
    if (r->stateful && r->api != CG_XAPI_CHAT) {
        set_json_error(r, 400, "invalid_request_error", "invalid_session_mode",
                       "x-session-mode: stateful is for /v1/chat/completions");
        return -1;
    }
    cg_buf_append(&r->client_messages, js->src + msgs->val_off, msgs->val_len);
    if (r->stream)
        r->reply = cg_reply_new();
    if (!r->stateful)
        return 0;
    if (!f->ro) {
        set_json_error(r, 503, "unavailable", "store_unavailable",
                       "stateful sessions need the session store, which is not open");
        return -1;
    }
    cg_buf_t hist = {0};
    if (cg_store_history(f->ro, NULL, key, &hist) != 0) {
        cg_buf_free(&hist);
        set_json_error(r, 503, "unavailable", "store_error",
                       "could not read the history of session '%.64s'", key);
        return -1;
    }
    cg_buf_t merged = {0};
    join_arrays(hist.data ? hist.data : "[]", hist.len ? hist.len : 2, js->src + msgs->val_off,
                msgs->val_len, &merged);
    cg_jedit_t ed = {.key = "messages", .raw = merged.data, .raw_len = merged.len};
    cg_buf_t nb = {0};
    cg_jscan_apply(js, &ed, 1, &nb);
    cg_buf_free(&r->body);
    r->body = nb;
    cg_buf_free(&merged);
    cg_buf_free(&hist);
    return 0;
}

static void dispatch_chat(front_t *f, req_t *r)
{
    if (r->too_large) {
        set_json_error(r, 413, "invalid_request_error", "request_too_large",
                       "request body exceeds the limit of %zu bytes", f->max_body);
        return;
    }
    cg_jerr_t je;
    cg_jscan_t *js = &f->scan;
    if (cg_jscan_object(js, r->body.data ? r->body.data : "", r->body.len, JSON_MAX_DEPTH, &je) !=
        0) {
        set_json_error(r, 400, "invalid_request_error", "invalid_json",
                       "request body is not valid JSON: invalid JSON at byte %zu: %s", je.offset,
                       je.msg);
        return;
    }
    if (js->truncated) {
        set_json_error(r, 400, "invalid_request_error", "invalid_request",
                       "request body has more than %d top-level fields", CG_JSCAN_MAX_MEMBERS);
        return;
    }
    bool responses = r->api == CG_XAPI_RESPONSES;
    const char *msgs_key = responses ? "input" : "messages";
    const cg_jmember_t *mm = cg_jscan_get(js, "model");
    const cg_jmember_t *msgs = cg_jscan_get(js, msgs_key);
    const cg_jmember_t *st = cg_jscan_get(js, "stream");
    const cg_jmember_t *so = responses ? NULL : cg_jscan_get(js, "stream_options");
    if (mm && mm->type != CG_JSTRING && mm->type != CG_JNULL) {
        set_json_error(r, 400, "invalid_request_error", "invalid_type",
                       "'model' must be a string, got %s", jtype_name(mm->type));
        return;
    }
    if (!msgs) {
        set_json_error(r, 400, "invalid_request_error", "missing_required_parameter",
                       "'%s' is required", msgs_key);
        return;
    }
    if (msgs->type != CG_JARRAY && !(responses && msgs->type == CG_JSTRING)) {
        set_json_error(r, 400, "invalid_request_error", "invalid_type", "'%s' must be %s, got %s",
                       msgs_key, responses ? "a string or an array" : "an array",
                       jtype_name(msgs->type));
        return;
    }
    const char *rmode =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "x-clawgate-reasoning");
    if (rmode && strcasecmp(rmode, "omit") != 0 && strcasecmp(rmode, "keep") != 0) {
        set_json_error(r, 400, "invalid_request_error", "invalid_header",
                       "x-clawgate-reasoning must be 'omit' or 'keep', got '%.32s'", rmode);
        return;
    }
    r->omit_reasoning = rmode && strcasecmp(rmode, "omit") == 0;
    const char *rid_prefix = responses ? "resp_" : "chatcmpl-";
    size_t rp = strlen(rid_prefix), rn = strlen(r->idstr + 4);
    _Static_assert(sizeof r->response_id >= sizeof "chatcmpl-" + sizeof r->idstr - 4,
                   "response_id holds the prefix and the request id");
    memcpy(r->response_id, rid_prefix, rp);
    memcpy(r->response_id + rp, r->idstr + 4, rn + 1);
    bool stream = false;
    if (st && st->type != CG_JNULL) {
        if (st->type != CG_JTRUE && st->type != CG_JFALSE) {
            set_json_error(r, 400, "invalid_request_error", "invalid_type",
                           "'stream' must be a boolean, got %s", jtype_name(st->type));
            return;
        }
        stream = st->type == CG_JTRUE;
    }
    bool client_usage = false;
    if (so && so->type != CG_JNULL) {
        if (so->type != CG_JOBJECT) {
            set_json_error(r, 400, "invalid_request_error", "invalid_type",
                           "'stream_options' must be an object, got %s", jtype_name(so->type));
            return;
        }
        cg_jscan_t *inner = &f->scan2;
        if (cg_jscan_object(inner, js->src + so->val_off, so->val_len, JSON_MAX_DEPTH, &je) == 0) {
            const cg_jmember_t *iu = cg_jscan_get(inner, "include_usage");
            if (iu && iu->type != CG_JTRUE && iu->type != CG_JFALSE && iu->type != CG_JNULL) {
                set_json_error(r, 400, "invalid_request_error", "invalid_type",
                               "'stream_options.include_usage' must be a boolean, got %s",
                               jtype_name(iu->type));
                return;
            }
            client_usage = iu && iu->type == CG_JTRUE;
        }
    }

    r->cfg = cg_snap_acquire(f->args.config);
    if (!r->cfg) {
        set_json_error(r, 503, "unavailable", "not_ready", "no config loaded");
        return;
    }
    cg_model_t *model;
    cg_buf_t name = {0};
    if (mm && mm->type == CG_JSTRING) {
        cg_jscan_string(js, mm, &name);
        model = cg_config_resolve(r->cfg, name.data, name.len);
    } else {
        model = r->cfg->primary;
    }
    if (!model) {
        set_json_error(r, 404, "invalid_request_error", "model_not_found",
                       "The model '%s' does not exist or is not configured in clawgate",
                       name.data ? name.data : "(none)");
        cg_buf_free(&name);
        return;
    }
    r->model_asked = cg_strdup(name.data ? name.data : model->ref);
    cg_buf_free(&name);
    r->requested = model;
    r->stream = stream;
    r->client_usage = client_usage;
    if (start_session(f, r, js, msgs) != 0)
        return;
    if (responses && !r->session_key && start_chain(f, r, js, msgs) != 0)
        return;
    if (r->session_key && r->stream && !r->reply)
        r->reply = cg_reply_new();
    /* The provider edits these bytes: hand it the table of the scan above,
     * unless a session or a chain replaced the body since. */
    if (r->body.data == js->src)
        cg_jscan_table_pack(js, &r->table);
    cg_health_t *h = cg_snap_acquire(f->args.health);
    r->n_plan = cg_health_plan(h, r->cfg, model, cg_now_ns(), r->plan, MAX_PLAN);
    if (h)
        cg_snap_release(f->args.health, h);
    if (r->n_plan == 0) {
        set_json_error(r, 503, "upstream_error", "provider_unavailable",
                       "no usable provider for model '%s' or its fallbacks (provider '%s': %s)",
                       model->ref, model->provider->name,
                       model->provider->available            ? "down or failed"
                       : model->provider->unavailable_reason ? model->provider->unavailable_reason
                                                             : "unavailable");
        return;
    }
    r->attempt = 0;
    start_attempt(f, r);
}

/* ---- MHD callbacks ---- */

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    CG_UNUSED(version);
    front_t *f = cls;
    req_t *r = *con_cls;
    if (!r) {
        r = req_new(f, conn);
        *con_cls = r;
        const char *allow = NULL;
        bool ok = false;
        r->route = route_of(url, method, &allow, &ok);
        if (r->route == ROUTE_NONE) {
            set_json_error(r, 404, "invalid_request_error", "not_found", "no such endpoint: %s %s",
                           method, url);
        } else if (!ok) {
            set_json_error(r, 405, "invalid_request_error", "method_not_allowed",
                           "%s is not allowed on %s (use %s)", method, url, allow);
            r->allow = allow;
        } else if (r->route == ROUTE_CHAT || r->route == ROUTE_RESPONSES) {
            const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
            unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
            /* Room for the declared body at once, so the pieces MHD hands
             * over are copied once, not again when the buffer grows; at most
             * 1 MiB ahead of the bytes, so a client that declares much and
             * sends little cannot make it hold much. */
            if (declared > 0 && declared <= f->max_body)
                cg_buf_reserve(&r->body, declared < (1u << 20) ? (size_t)declared : (1u << 20));
            if (cl && declared > f->max_body) {
                /* Refuse before reading: answering on this first call makes
                 * MHD close the connection, which is what an oversized upload
                 * deserves. */
                r->too_large = true;
                dispatch_chat(f, r);
                return queue_response(r);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if ((r->route == ROUTE_CHAT || r->route == ROUTE_RESPONSES) && r->phase == PH_RECEIVING &&
            !r->too_large) {
            if (r->body.len + *upload_data_size > f->max_body) {
                r->too_large = true;
                cg_buf_free(&r->body);
            } else {
                cg_buf_append(&r->body, upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->phase == PH_RECEIVING) {
        switch (r->route) {
        case ROUTE_CHAT:
        case ROUTE_RESPONSES:
            r->api = r->route == ROUTE_RESPONSES ? CG_XAPI_RESPONSES : CG_XAPI_CHAT;
            dispatch_chat(f, r);
            break;
        case ROUTE_MODELS:
            serve_models(f, r);
            break;
        case ROUTE_HEALTH:
            set_body(r, 200, "{\"status\":\"ok\"}", 15);
            break;
        case ROUTE_READY:
            serve_ready(f, r);
            break;
        case ROUTE_STATUS:
            serve_status(f, r);
            break;
        case ROUTE_TEST_CRASH:
            serve_test_crash(f, r, conn);
            break;
        case ROUTE_STORE:
            serve_store(f, r, conn, url);
            break;
        case ROUTE_NONE:
            break;
        }
    }
    switch (r->phase) {
    case PH_READY:
    case PH_STREAM:
        return queue_response(r);
    case PH_WAITING:
    case PH_HOLD:
        if (!r->suspended) {
            r->suspended = true;
            MHD_suspend_connection(conn);
        }
        return MHD_YES;
    default:
        return MHD_YES;
    }
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    CG_UNUSED(conn);
    CG_UNUSED(toe);
    front_t *f = cls;
    req_t *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    /* A provider that is gone or full cannot take the cancel; it will find
     * the owner's request missing on its next message anyway. */
    if (r->inflight && r->provider) {
        cancel_attempt(f, r);
        sample(f, r, "cancelled", 0, 0, 0, 0);
    }
    if (r->requested && !r->recorded)
        record(f, r, "cancelled", NULL, 499);
    req_free(f, r);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    CG_UNUSED(cls);
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    cg_info("http: %s", line);
}

/* One event of a CHUNK (cg_prov_chunk_events): to the client's stream and
 * to the reply being assembled for the session store. */
static void on_stream_event(void *ud, const char *ev, size_t ev_len, const char *data, size_t len)
{
    req_t *r = ud;
    if (r->client_gone)
        return;
    char evname[96];
    size_t n = ev_len < sizeof evname - 1 ? ev_len : sizeof evname - 1;
    memcpy(evname, ev, n); /* per event: no snprintf */
    evname[n] = '\0';
    stream_append_event(r, evname, data, len);
    if (r->reply && r->api == CG_XAPI_CHAT)
        cg_reply_feed_chunk(r->reply, data, len);
    else if (r->reply)
        cg_reply_feed_event(r->reply, evname, data, len);
    if (r->phase == PH_WAITING) {
        r->phase = PH_STREAM;
        r->answered = true;
        note_attempt(r, NULL, 200, NULL, 0);
    }
}

static void on_provider_msg(front_t *f, cg_msg_t *m)
{
    req_t *r = req_find(f, m->req_id >> ATTEMPT_BITS);
    if (!r || !r->inflight || (m->req_id & ((1u << ATTEMPT_BITS) - 1)) != r->attempt) {
        cg_msg_free(m); /* a finished request or an abandoned attempt */
        return;
    }
    cg_msg_view_t v;
    switch (m->type) {
    case CG_PROV_HEAD:
        break;
    case CG_PROV_CHUNK:
        if (r->stream && !r->client_gone) {
            if (cg_prov_chunk_events(m, on_stream_event, r) != 0)
                cg_warn("http: request %llu: malformed CHUNK from the provider actor",
                        (unsigned long long)r->id);
            req_resume(r);
        }
        break;
    case CG_PROV_DONE: {
        int64_t status, pt, ct, cached;
        uint64_t ttft;
        const void *body;
        size_t blen;
        if (cg_msg_unpack(m, &v, "ixiiiu", &status, &body, &blen, &pt, &ct, &cached, &ttft) != 0) {
            cg_msg_view_done(&v);
            const char *msg = "malformed DONE from the provider actor";
            attempt_failed(f, r, "unknown", 0, msg, strlen(msg), 0);
            break;
        }
        r->inflight = false;
        if (r->watchdog) {
            cg_actor_timer_cancel(f->actor, r->watchdog);
            r->watchdog = 0;
        }
        sample(f, r, NULL, status, ttft, ct, 0);
        if (!r->answered) {
            r->answered = true;
            note_attempt(r, NULL, status, NULL, 0);
        }
        r->answered_model = r->plan[r->attempt];
        r->pt = pt;
        r->ct = ct;
        r->cached = cached;
        r->ttft_ms = ttft ? (int64_t)(ttft / 1000000ull) : -1;
        if (!r->stream) {
            set_body(r, status >= 200 && status < 300 ? (unsigned)status : 200, body ? body : "",
                     blen);
            if (r->session_key && body && r->api == CG_XAPI_CHAT)
                cg_reply_from_body(body, blen, &r->reply_json);
            else if (r->session_key && body)
                cg_reply_from_responses_body(body, blen, &r->reply_json);
        }
        cg_msg_view_done(&v);
        /* The final byte waits for the store's commit (finish_held). */
        record(f, r, "ok", NULL, 200);
        if (r->await_ack && !r->stream)
            r->phase = PH_HOLD;
        break;
    }
    case CG_PROV_FAIL: {
        const char *cls, *msg;
        size_t cls_len, msg_len;
        int64_t status, retry_ms;
        int any_output;
        if (cg_msg_unpack(m, &v, "SiSib", &cls, &cls_len, &status, &msg, &msg_len, &retry_ms,
                          &any_output) != 0) {
            cls = "unknown";
            cls_len = 7;
            msg = "malformed failure report from the provider actor";
            msg_len = strlen(msg);
            status = 0;
            retry_ms = 0;
        }
        /* Class names are a closed set; map to the static string so the
         * request can keep it after the message is freed. */
        static const char *classes[] = {"timeout", "overloaded",       "rate_limit",
                                        "auth",    "billing",          "model_not_found",
                                        "format",  "context_overflow", "aborted"};
        const char *klass = "unknown";
        for (size_t i = 0; i < CG_ARRAY_LEN(classes); i++)
            if (cls && strlen(classes[i]) == cls_len && memcmp(classes[i], cls, cls_len) == 0)
                klass = classes[i];
        /* With output out, the provider has already ended the client's stream
         * in the client's own format (translator); add nothing to it. */
        r->provider_closed = any_output != 0;
        attempt_failed(f, r, klass, status, msg, msg_len, retry_ms);
        cg_msg_view_done(&v);
        break;
    }
    default:
        break;
    }
    cg_msg_free(m);
}

/* ---- the actor ---- */

static void kick_cb(cg_actor_t *a, void *ud)
{
    CG_UNUSED(ud);
    front_t *f = cg_actor_state(a);
    f->kick_timer = 0;
    run_mhd(f);
}

static void mhd_timer_cb(cg_actor_t *a, void *ud)
{
    CG_UNUSED(ud);
    front_t *f = cg_actor_state(a);
    f->mhd_timer = 0;
    f->mhd_deadline_ns = 0;
    run_mhd(f);
}

/* Run MHD and keep one timer armed for its next deadline. The timer is only
 * moved when the deadline comes earlier: a later one just means an early,
 * harmless wake-up that re-arms. */
static void run_mhd(front_t *f)
{
    if (!f->mhd)
        return;
    /* MHD often wants to run again at once (a connection that finished a
     * response moves on to the next request on the next run). Doing that
     * here, a few times, spares a loop turn and its epoll_wait each. */
    MHD_UNSIGNED_LONG_LONG ms = 0;
    for (int i = 0; i < 4 && ms == 0; i++) {
        MHD_run(f->mhd);
        if (MHD_get_timeout(f->mhd, &ms) != MHD_YES)
            return;
    }
    uint64_t deadline = cg_now_ns() + (uint64_t)ms * 1000000ull;
    if (ms == 0) {
        if (!f->kick_timer)
            f->kick_timer = cg_actor_timer(f->actor, 0, 0, kick_cb, NULL);
        return;
    }
    if (f->mhd_timer && f->mhd_deadline_ns <= deadline + 1000000ull)
        return;
    if (f->mhd_timer)
        cg_actor_timer_cancel(f->actor, f->mhd_timer);
    f->mhd_deadline_ns = deadline;
    f->mhd_timer = cg_actor_timer(f->actor, (uint64_t)ms * 1000000ull, 0, mhd_timer_cb, NULL);
}

static void mhd_fd_cb(cg_actor_t *a, int fd, uint32_t events, void *ud)
{
    CG_UNUSED(fd);
    CG_UNUSED(events);
    CG_UNUSED(ud);
    run_mhd(cg_actor_state(a));
}

/* A suspended connection does not see its client leave. Peek at each one:
 * a socket that reads EOF or an error belongs to a client that hung up. */
static void sweep_cb(cg_actor_t *a, void *ud)
{
    CG_UNUSED(ud);
    front_t *f = cg_actor_state(a);
    bool any = false;
    for (req_t *r = f->live; r; r = r->next) {
        if (!r->suspended || r->client_gone)
            continue;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci)
            continue;
        char c;
        ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            cg_info("%s: client disconnected while waiting; cancelling upstream", r->idstr);
            r->client_gone = true;
            r->await_ack = false; /* nobody left to hold the final byte for */
            if (r->phase == PH_WAITING || r->phase == PH_HOLD)
                set_json_error(r, 499, "invalid_request_error", "client_closed",
                               "client closed the connection");
            req_resume(r);
            any = true;
        }
    }
    if (any)
        run_mhd(f);
}

static void grace_cb(cg_actor_t *a, void *ud)
{
    CG_UNUSED(ud);
    front_t *f = cg_actor_state(a);
    f->grace_timer = 0;
    cg_warn("http: %zu requests still open after the shutdown grace period; closing them",
            f->n_live);
    cg_actor_exit(a, CG_EXIT_SHUTDOWN, "grace period over");
}

static int front_init(cg_actor_t *a, void *arg)
{
    front_t *f = cg_calloc(1, sizeof *f);
    f->actor = a;
    f->args = *(cg_http_args_t *)arg;
    f->supervisor = f->args.supervisor;
    f->store = f->args.store;
    f->pending = f->store ? f->args.pending : NULL;
    if (f->args.store_path) {
        char err[256];
        f->ro = cg_store_ro_open(f->args.store_path, err, sizeof err);
        if (!f->ro)
            cg_error("http: session queries unavailable: %s", err);
    }
    const char *hooks = getenv("CLAWGATE_TEST_HOOKS");
    f->test_hooks = hooks && strcmp(hooks, "1") == 0;
    cg_actor_set_state(a, f);
    f->id_prefix = (uint64_t)cg_wall_ms() & 0xffffffffffffull;

    cg_config_t *c = cg_snap_acquire(f->args.config);
    if (!c)
        return CG_EINVAL;
    const cg_settings_t *s = &c->settings;
    apply_settings(f, s);
    f->store_fail_closed = s->store_fail_closed;

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    socklen_t sl;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s->listen_host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)s->listen_port);
        sl = sizeof *sin;
    } else if (inet_pton(AF_INET6, s->listen_host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)s->listen_port);
        sl = sizeof *sin6;
        flags |= MHD_USE_IPv6;
    } else {
        cg_error("http: listen address '%s' is not an IP address", s->listen_host);
        cg_snap_release(f->args.config, c);
        return CG_EINVAL;
    }
    CG_UNUSED(sl);
    f->mhd = MHD_start_daemon(
        flags, (uint16_t)s->listen_port, NULL, NULL, access_handler, f, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_logger, f, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->client_timeout_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->max_connections,
        /* OpenClaw's requests are ~36 KB: read them in large pieces, not in
         * MHD's default 1 KB increments (one read and one handler call
         * each). The pool is address space; untouched pages cost nothing. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_CONNECTION_MEMORY_INCREMENT, (size_t)(16 * 1024), MHD_OPTION_NOTIFY_COMPLETED,
        request_completed, f, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!f->mhd) {
        cg_error("http: cannot listen on %s:%d: %s", s->listen_host, s->listen_port,
                 strerror(errno));
        cg_snap_release(f->args.config, c);
        return CG_EIO;
    }
    cg_info("http: listening on %s:%d", s->listen_host, s->listen_port);
    cg_snap_release(f->args.config, c);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(f->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    f->mhd_fd = di->epoll_fd;
    if (cg_actor_watch(a, f->mhd_fd, EPOLLIN, mhd_fd_cb, NULL) != 0)
        return CG_EIO;
    f->sweep_timer = cg_actor_timer(a, SWEEP_NS, SWEEP_NS, sweep_cb, NULL);
    run_mhd(f);
    return 0;
}

/* Limits and timeouts come from the current config snapshot (at start and
 * after each reload); the listen address does not change while running. */
static void apply_settings(front_t *f, const cg_settings_t *s)
{
    f->max_body = s->max_body_bytes;
    f->connect_ms = s->connect_timeout_ms;
    f->first_token_ms = s->first_token_timeout_s * 1000;
    f->idle_ms = s->idle_timeout_s * 1000;
    f->request_ms = s->request_timeout_s * 1000;
}

static void front_handle(cg_actor_t *a, cg_msg_t *m)
{
    front_t *f = cg_actor_state(a);
    if (m->type == CG_MSG_RELOAD) {
        cg_config_t *c = cg_snap_acquire(f->args.config);
        if (c) {
            apply_settings(f, &c->settings);
            cg_snap_release(f->args.config, c);
        }
        cg_msg_free(m);
        return;
    }
    if (m->type == CG_STORE_ACK) {
        on_store_ack(f, m);
        return;
    }
    if (m->type == CG_STORE_SYNCED) {
        on_synced(f, m);
        return;
    }
    if (m->type >= CG_PROV_HEAD && m->type <= CG_PROV_FAIL) {
        on_provider_msg(f, m);
        return;
    }
    cg_msg_free(m);
}

static void front_stopping(cg_actor_t *a)
{
    front_t *f = cg_actor_state(a);
    f->stopping = true;
    /* Stop accepting; requests in flight finish (bounded by a grace period). */
    if (f->mhd) {
        int lfd = MHD_quiesce_daemon(f->mhd);
        if (lfd >= 0)
            close(lfd);
    }
    if (f->n_live == 0) {
        cg_actor_exit(a, CG_EXIT_SHUTDOWN, "drained");
        return;
    }
    cg_info("http: draining %zu requests", f->n_live);
    f->grace_timer = cg_actor_timer(a, SHUTDOWN_GRACE_NS, 0, grace_cb, NULL);
}

static void front_cleanup(cg_actor_t *a)
{
    front_t *f = cg_actor_state(a);
    if (!f)
        return;
    f->closing = true;
    if (f->mhd) {
        /* MHD must not be stopped with suspended connections: resume them
         * all, let MHD take them back, then stop (which completes every
         * request and so sends the cancels). */
        for (req_t *r = f->live; r; r = r->next) {
            r->client_gone = true;
            if (r->phase == PH_WAITING)
                set_json_error(r, 503, "unavailable", "shutting_down", "clawgate is shutting down");
            if (r->suspended) {
                r->suspended = false;
                MHD_resume_connection(r->conn);
            }
        }
        MHD_run(f->mhd);
        f->stopping = false; /* no exit from req_free during teardown */
        cg_actor_unwatch(a, f->mhd_fd);
        MHD_stop_daemon(f->mhd);
        f->mhd = NULL;
    }
    while (f->live)
        req_free(f, f->live);
    if (f->ro)
        cg_store_ro_close(f->ro);
    /* Handlers' deferred calls ran before this (actor.c), flush_log included,
     * so nothing should wait here; if anything does, it is still logged (its
     * requests are gone: only the exchanges are written). */
    flush_log(f);
    cg_free(f->logq);
    cg_free(f->logq_msgs);
    cg_free(f->sync_waiters);
    cg_free(f);
    cg_actor_set_state(a, NULL);
}

const cg_actor_spec_t cg_http_spec = {
    .name = "http",
    .mailbox_cap = 1u << 16,
    .batch = 256,
    .init = front_init,
    .handle = front_handle,
    .stopping = front_stopping,
    .cleanup = front_cleanup,
};

/* ---- routes ---- */

cg_routes_t *cg_routes_new(size_t n)
{
    cg_routes_t *r = cg_calloc(1, sizeof *r);
    r->n = n;
    r->names = cg_calloc(n ? n : 1, sizeof *r->names);
    r->aids = cg_calloc(n ? n : 1, sizeof *r->aids);
    return r;
}

cg_aid_t cg_routes_lookup(const cg_routes_t *r, const char *provider)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->names[i] && strcmp(r->names[i], provider) == 0)
            return r->aids[i];
    return CG_AID_NONE;
}

void cg_routes_free(void *routes)
{
    cg_routes_t *r = routes;
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        cg_free(r->names[i]);
    cg_free(r->names);
    cg_free(r->aids);
    cg_free(r);
}
