/*
 * h1.h — the gateway's own HTTP/1.1 client for plain http:// upstreams, on
 * an actor's epoll loop.
 *
 * DESIGN
 * Why not libcurl for everything: a local model server on loopback answers
 * in tens of microseconds, and there libcurl's generality was the largest
 * cost of a request through the gateway (about 84,000 instructions and two
 * extra poll() calls per transfer, measured with callgrind and perf; see
 * docs/benchmarks.md). What a provider needs from a plain-HTTP upstream is
 * small: one POST with a body, keep-alive, a streamed reply. This client does
 * exactly that and nothing else; TLS (the hosted providers), proxies and host
 * names that need a DNS lookup stay with libcurl (cg_h1_target_parse says
 * which, and its result is what cg_h1_start takes: the URL is parsed once).
 *
 * Connections. One pool per client (per provider actor): idle connections
 * keyed by address, each left in the actor's epoll set so that a request on
 * a pooled connection costs no epoll_ctl, and an idle connection the server
 * closes is noticed (EPOLLIN) and dropped at once. A request is written with
 * one writev (head and body together) straight from cg_h1_start when the
 * socket takes it; EPOLLOUT is watched only for what did not fit. A request
 * on a reused connection that dies before any byte of the reply (the server
 * closed it as we sent) is sent again once on a fresh connection, as
 * browsers and libcurl do.
 *
 * Callbacks. on_data gets the reply body de-chunked, piece by piece, from the
 * read buffer; on_done comes exactly once per started request, never from
 * inside cg_h1_start or cg_h1_cancel, with 0 or a libcurl error code
 * (CURLE_*), so the provider classifies both transports' failures with one
 * table (classify.c). After on_done returns the request is gone.
 */
#ifndef CG_H1_H
#define CG_H1_H

#include "actors/actor.h"

#include <netinet/in.h>

typedef struct cg_h1 cg_h1_t;
typedef struct cg_h1_req cg_h1_req_t;

typedef struct cg_h1_cbs {
    /* A piece of the body. false: stop; on_done then reports CURLE_WRITE_ERROR. */
    bool (*on_data)(void *ud, const char *p, size_t n);
    /* The end: code 0, or a CURLcode with a message (valid during the call). */
    void (*on_done)(void *ud, int code, const char *msg);
} cg_h1_cbs_t;

/* A URL this client serves, parsed once (cg_h1_target_parse): its
 * addresses (localhost: 127.0.0.1, then ::1) and the parts of the request
 * head. authority and path point into the URL, which must outlive it. */
#define CG_H1_MAX_ADDRS 2

/* An IPv4 or IPv6 address: a sockaddr_storage would be 128 bytes, which made
 * the provider's per-transfer struct too large for glibc's thread cache. */
typedef union cg_h1_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} cg_h1_addr_t;

typedef struct cg_h1_target {
    cg_h1_addr_t addr[CG_H1_MAX_ADDRS];
    socklen_t alen[CG_H1_MAX_ADDRS];
    int n_addr;
    const char *authority; /* host[:port] as written: the Host header */
    size_t authority_len;
    const char *path; /* "" means "/" */
} cg_h1_target_t;

typedef struct cg_h1_opts {
    const cg_h1_target_t *target; /* borrowed until on_done (or cancel) */
    const char *headers;          /* extra header lines, each "Name: value\r\n" */
    size_t headers_len;
    const char *user_agent; /* NULL: none */
    const char *body;       /* borrowed until on_done (or cancel) */
    size_t body_len;
    int64_t connect_ms; /* > 0: the connection must be up within this */
    int64_t total_ms;   /* > 0: the whole exchange must end within this */
} cg_h1_opts_t;

/* Whether url is one this client serves: http://, a numeric IPv4 or IPv6
 * host or "localhost", an optional port, no user info. cg_h1_target_parse
 * also fills *t for cg_h1_start. */
bool cg_h1_target_parse(const char *url, cg_h1_target_t *t);
bool cg_h1_url_ok(const char *url);

/* Actor thread. who names the client in log lines. */
cg_h1_t *cg_h1_new(cg_actor_t *a, const char *who);
/* Actor thread, with no request in flight (cancel them first): closes the
 * pooled connections. */
void cg_h1_free(cg_h1_t *c);

/* Actor thread. Starts a request to a parsed target; NULL with err set if
 * the options are unusable (nothing is called back then). */
cg_h1_req_t *cg_h1_start(cg_h1_t *c, const cg_h1_opts_t *o, const cg_h1_cbs_t *cbs, void *ud,
                         char *err, size_t errlen);
/* Actor thread, not from inside this request's own callbacks: ends the
 * request; no callback follows. Its connection closes unless its reply had
 * been read whole. */
void cg_h1_cancel(cg_h1_req_t *q);

/* The reply's status (0 before its head), Content-Type ("" if none) and
 * Retry-After in seconds (-1 if none). */
long cg_h1_status(const cg_h1_req_t *q);
const char *cg_h1_content_type(const cg_h1_req_t *q);
int64_t cg_h1_retry_after(const cg_h1_req_t *q);

/* Pool statistics, for tests: connections opened so far, idle now. */
size_t cg_h1_opened(const cg_h1_t *c);
size_t cg_h1_idle(const cg_h1_t *c);

#endif
