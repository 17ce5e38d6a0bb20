/*
 * h1.c — HTTP/1.1 client for plain http:// upstreams (see h1.h).
 *
 * A request's life: start → (pooled connection | connect) → send → read →
 * finish. finish() is the one exit that calls on_done; it hands the
 * connection back to the pool when the reply was read whole, with nothing
 * extra, and the server keeps the connection alive; otherwise it closes it.
 * Code that calls finish() (or retry(), which may call it) touches neither
 * the request nor its connection afterwards.
 */
#include "actors/h1.h"
#include "proto/h1resp.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define IDLE_MAX 128 /* pooled connections kept (one fd each) */
#define RBUF_SIZE ((size_t)64 * 1024)

typedef struct conn conn_t;

struct conn {
    cg_h1_t *c;
    int fd;
    cg_h1_addr_t sa;
    socklen_t salen;
    conn_t *prev, *next; /* the idle list, most recently used first */
    cg_h1_req_t *req;    /* the request using it; NULL when idle */
    bool connected;
    uint32_t events; /* what is watched now */
};

struct cg_h1 {
    cg_actor_t *a;
    char *who;
    conn_t *idle_head, *idle_tail;
    size_t n_idle;
    size_t n_reqs;
    size_t opened;
    char *rbuf; /* one read buffer: the loop reads one socket at a time */
};

struct cg_h1_req {
    cg_h1_t *c;
    conn_t *conn;
    const cg_h1_target_t *t; /* borrowed: where to connect */
    int ai;                  /* the address of t being tried */
    cg_buf_t head;           /* the request head */
    const char *body;
    size_t body_len;
    size_t sent;    /* of head.len + body_len */
    bool send_dead; /* the server stopped reading; its reply may still come */
    cg_h1resp_t resp;
    bool got_bytes;
    bool retried;
    bool reused; /* on a pooled connection */
    bool in_start;
    cg_h1_cbs_t cbs;
    void *ud;
    int64_t connect_ms, total_ms;
    uint64_t connect_timer, total_timer, later_timer;
    int later_code;
    char later_msg[200];
};

static void on_fd(cg_actor_t *a, int fd, uint32_t events, void *ud);
static void open_conn(cg_h1_req_t *q);
static bool send_now(cg_h1_req_t *q);

/* ------------------------------------------------------------------------ */
/* URLs                                                                     */

typedef cg_h1_target_t url_t;

static bool set_addr(url_t *u, int family, const char *host, unsigned port)
{
    cg_h1_addr_t *ss = &u->addr[u->n_addr];
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *in = &ss->in;
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
            return false;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        u->alen[u->n_addr++] = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = &ss->in6;
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return false;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        u->alen[u->n_addr++] = sizeof *in6;
    }
    return true;
}

bool cg_h1_target_parse(const char *url, url_t *u)
{
    memset(u, 0, sizeof *u);
    if (!url || strncasecmp(url, "http://", 7) != 0)
        return false;
    const char *a = url + 7;
    size_t alen = strcspn(a, "/?#");
    if (alen == 0 || memchr(a, '@', alen))
        return false;
    u->authority = a;
    u->authority_len = alen;
    u->path = a + alen;
    if (*u->path && *u->path != '/')
        return false; /* "?q" straight after the host: leave that to curl */

    char host[64];
    size_t hlen;
    const char *rest;
    bool v6 = a[0] == '[';
    if (v6) {
        const char *close = memchr(a, ']', alen);
        if (!close)
            return false;
        hlen = (size_t)(close - a - 1);
        if (hlen == 0 || hlen >= sizeof host)
            return false;
        memcpy(host, a + 1, hlen);
        rest = close + 1;
    } else {
        const char *colon = memchr(a, ':', alen);
        hlen = colon ? (size_t)(colon - a) : alen;
        if (hlen == 0 || hlen >= sizeof host)
            return false;
        memcpy(host, a, hlen);
        rest = a + hlen;
    }
    host[hlen] = '\0';
    unsigned port = 80;
    if (rest < a + alen) {
        if (*rest != ':')
            return false;
        rest++;
        size_t pl = (size_t)(a + alen - rest);
        if (pl == 0 || pl > 5)
            return false;
        port = 0;
        for (size_t i = 0; i < pl; i++) {
            if (rest[i] < '0' || rest[i] > '9')
                return false;
            port = port * 10 + (unsigned)(rest[i] - '0');
        }
        if (port == 0 || port > 65535)
            return false;
    }
    if (v6)
        return set_addr(u, AF_INET6, host, port);
    if (strcasecmp(host, "localhost") == 0)
        return set_addr(u, AF_INET, "127.0.0.1", port) && set_addr(u, AF_INET6, "::1", port);
    return set_addr(u, AF_INET, host, port);
}

bool cg_h1_url_ok(const char *url)
{
    url_t u;
    return cg_h1_target_parse(url, &u);
}

/* ------------------------------------------------------------------------ */
/* the pool                                                                 */

cg_h1_t *cg_h1_new(cg_actor_t *a, const char *who)
{
    cg_h1_t *c = cg_calloc(1, sizeof *c);
    c->a = a;
    c->who = cg_strdup(who ? who : "h1");
    c->rbuf = cg_malloc(RBUF_SIZE);
    return c;
}

static void conn_close(conn_t *k)
{
    cg_h1_t *c = k->c;
    cg_actor_unwatch(c->a, k->fd);
    close(k->fd);
    cg_free(k);
}

static void idle_unlink(conn_t *k)
{
    cg_h1_t *c = k->c;
    if (k->prev)
        k->prev->next = k->next;
    else
        c->idle_head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        c->idle_tail = k->prev;
    k->prev = k->next = NULL;
    c->n_idle--;
}

/* A connection whose exchange ended cleanly goes back to the pool, still
 * watched for EPOLLIN: an event on it means the server closed it. */
static void conn_release(conn_t *k)
{
    cg_h1_t *c = k->c;
    k->req = NULL;
    if (k->events != EPOLLIN) {
        if (cg_actor_rewatch(c->a, k->fd, EPOLLIN) != CG_OK) {
            conn_close(k);
            return;
        }
        k->events = EPOLLIN;
    }
    k->prev = NULL;
    k->next = c->idle_head;
    if (c->idle_head)
        c->idle_head->prev = k;
    else
        c->idle_tail = k;
    c->idle_head = k;
    c->n_idle++;
    if (c->n_idle > IDLE_MAX) {
        conn_t *old = c->idle_tail;
        idle_unlink(old);
        conn_close(old);
    }
}

static conn_t *idle_take(cg_h1_t *c, const cg_h1_req_t *q)
{
    for (conn_t *k = c->idle_head; k; k = k->next) {
        for (int i = 0; i < q->t->n_addr; i++) {
            if (k->salen == q->t->alen[i] && memcmp(&k->sa, &q->t->addr[i], k->salen) == 0) {
                idle_unlink(k);
                return k;
            }
        }
    }
    return NULL;
}

void cg_h1_free(cg_h1_t *c)
{
    if (!c)
        return;
    cg_assert(c->n_reqs == 0);
    while (c->idle_head) {
        conn_t *k = c->idle_head;
        idle_unlink(k);
        conn_close(k);
    }
    cg_free(c->rbuf);
    cg_free(c->who);
    cg_free(c);
}

size_t cg_h1_opened(const cg_h1_t *c)
{
    return c->opened;
}

size_t cg_h1_idle(const cg_h1_t *c)
{
    return c->n_idle;
}

/* ------------------------------------------------------------------------ */
/* the end of a request                                                     */

static void cancel_timers(cg_h1_req_t *q)
{
    cg_actor_t *a = q->c->a;
    if (q->connect_timer)
        cg_actor_timer_cancel(a, q->connect_timer);
    if (q->total_timer)
        cg_actor_timer_cancel(a, q->total_timer);
    if (q->later_timer)
        cg_actor_timer_cancel(a, q->later_timer);
    q->connect_timer = q->total_timer = q->later_timer = 0;
}

static void req_free(cg_h1_req_t *q)
{
    cg_h1resp_free(&q->resp);
    cg_buf_free(&q->head);
    cg_free(q);
}

/* The connection after the request: pooled if the exchange ended whole. */
static void drop_conn(cg_h1_req_t *q, bool reusable)
{
    conn_t *k = q->conn;
    if (!k)
        return;
    q->conn = NULL;
    if (reusable && !q->send_dead && q->sent == q->head.len + q->body_len &&
        cg_h1resp_head_done(&q->resp) && q->resp.keep_alive)
        conn_release(k);
    else
        conn_close(k);
}

static void on_later(cg_actor_t *a, void *ud);

/* The one exit with a callback. From cg_h1_start it waits for the next loop
 * turn, so a caller never sees on_done before start has returned. */
static void finish(cg_h1_req_t *q, int code, const char *msg, bool reusable)
{
    if (q->in_start) {
        q->later_code = code;
        snprintf(q->later_msg, sizeof q->later_msg, "%s", msg ? msg : "");
        drop_conn(q, false);
        if (!q->later_timer)
            q->later_timer = cg_actor_timer(q->c->a, 0, 0, on_later, q);
        return;
    }
    cancel_timers(q);
    drop_conn(q, reusable && code == 0);
    q->c->n_reqs--;
    q->cbs.on_done(q->ud, code, msg ? msg : "");
    req_free(q);
}

static void on_later(cg_actor_t *a, void *ud)
{
    CG_UNUSED(a);
    cg_h1_req_t *q = ud;
    q->later_timer = 0;
    finish(q, q->later_code, q->later_msg, false);
}

static void fail(cg_h1_req_t *q, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(cg_h1_req_t *q, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    finish(q, code, msg, false);
}

static void addr_text(const cg_h1_addr_t *ss, char *out, size_t n, unsigned *port)
{
    if (ss->sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &ss->in6.sin6_addr, out, (socklen_t)n);
        *port = ntohs(ss->in6.sin6_port);
    } else {
        inet_ntop(AF_INET, &ss->in.sin_addr, out, (socklen_t)n);
        *port = ntohs(ss->in.sin_port);
    }
}

/* Connecting to the current address failed: the next one, or the end. */
static void connect_failed(cg_h1_req_t *q, int err)
{
    if (q->conn) {
        conn_close(q->conn);
        q->conn = NULL;
    }
    if (q->connect_timer) {
        cg_actor_timer_cancel(q->c->a, q->connect_timer);
        q->connect_timer = 0;
    }
    if (q->ai + 1 < q->t->n_addr) {
        q->ai++;
        open_conn(q);
        return;
    }
    char host[INET6_ADDRSTRLEN];
    unsigned port = 0;
    addr_text(&q->t->addr[q->ai], host, sizeof host, &port);
    fail(q, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %u: %s", host, port,
         strerror(err));
}

/* A pooled connection died before any byte of the reply: the server closed
 * it while we sent. Once, on a fresh connection. false if that is not the
 * case (the caller reports the failure). */
static bool retry(cg_h1_req_t *q)
{
    if (!q->reused || q->retried || q->got_bytes)
        return false;
    cg_debug("%s: pooled connection closed under a request; sending it again", q->c->who);
    q->retried = true;
    q->reused = false;
    conn_close(q->conn);
    q->conn = NULL;
    q->sent = 0;
    q->send_dead = false;
    cg_h1resp_reset(&q->resp);
    q->ai = 0;
    open_conn(q);
    return true;
}

static void on_total_timeout(cg_actor_t *a, void *ud)
{
    CG_UNUSED(a);
    cg_h1_req_t *q = ud;
    q->total_timer = 0;
    fail(q, CURLE_OPERATION_TIMEDOUT,
         "Operation timed out after %lld milliseconds with %llu bytes received",
         (long long)q->total_ms, (unsigned long long)q->resp.body_bytes);
}

static void on_connect_timeout(cg_actor_t *a, void *ud)
{
    CG_UNUSED(a);
    cg_h1_req_t *q = ud;
    q->connect_timer = 0;
    if (q->conn) {
        conn_close(q->conn);
        q->conn = NULL;
    }
    fail(q, CURLE_OPERATION_TIMEDOUT, "Connection timed out after %lld milliseconds",
         (long long)q->connect_ms);
}

/* ------------------------------------------------------------------------ */
/* connecting, sending, reading                                             */

static void open_conn(cg_h1_req_t *q)
{
    cg_h1_t *c = q->c;
    const cg_h1_addr_t *sa = &q->t->addr[q->ai];
    socklen_t salen = q->t->alen[q->ai];
    int fd = socket(sa->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        fail(q, CURLE_COULDNT_CONNECT, "socket: %s", strerror(e));
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    conn_t *k = cg_calloc(1, sizeof *k);
    k->c = c;
    k->fd = fd;
    k->sa = *sa;
    k->salen = salen;
    k->req = q;
    q->conn = k;
    c->opened++;
    int rc = connect(fd, &sa->sa, salen);
    int e = errno;
    if (rc < 0 && e != EINPROGRESS) {
        close(fd);
        cg_free(k);
        q->conn = NULL;
        connect_failed(q, e);
        return;
    }
    k->connected = rc == 0;
    k->events = k->connected ? EPOLLIN : EPOLLOUT;
    if (cg_actor_watch(c->a, fd, k->events, on_fd, k) != CG_OK) {
        close(fd);
        cg_free(k);
        q->conn = NULL;
        fail(q, CURLE_COULDNT_CONNECT, "cannot watch a new connection");
        return;
    }
    if (k->connected) {
        send_now(q);
        return;
    }
    if (q->connect_ms > 0 && !q->connect_timer)
        q->connect_timer =
            cg_actor_timer(c->a, (uint64_t)q->connect_ms * 1000000u, 0, on_connect_timeout, q);
}

static void set_events(cg_h1_req_t *q, uint32_t ev)
{
    conn_t *k = q->conn;
    if (k->events == ev)
        return;
    if (cg_actor_rewatch(q->c->a, k->fd, ev) == CG_OK)
        k->events = ev;
}

/* Write what the socket takes now; watch EPOLLOUT for the rest. false if
 * the request left its connection (finished, or sent again on another one):
 * the caller then touches neither. */
static bool send_now(cg_h1_req_t *q)
{
    size_t total = q->head.len + q->body_len;
    while (q->sent < total && !q->send_dead) {
        struct iovec iov[2];
        int n = 0;
        if (q->sent < q->head.len) {
            iov[n++] = (struct iovec){q->head.data + q->sent, q->head.len - q->sent};
            if (q->body_len)
                iov[n++] = (struct iovec){(void *)q->body, q->body_len};
        } else {
            size_t off = q->sent - q->head.len;
            iov[n++] = (struct iovec){(void *)(q->body + off), q->body_len - off};
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(q->conn->fd, &mh, MSG_NOSIGNAL);
        if (w > 0) {
            q->sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(q, EPOLLIN | EPOLLOUT);
            return true;
        }
        int e = w < 0 ? errno : EPIPE;
        if (retry(q))
            return false;
        if (cg_h1resp_head_done(&q->resp) || q->got_bytes) {
            q->send_dead = true; /* it answered early (413?): read that answer */
            break;
        }
        fail(q, CURLE_SEND_ERROR, "Send failure: %s", strerror(e));
        return false;
    }
    set_events(q, EPOLLIN);
    return true;
}

static bool body_cb(void *ud, const char *p, size_t n)
{
    cg_h1_req_t *q = ud;
    return q->cbs.on_data(q->ud, p, n);
}

/* Bytes of the reply arrived (or its end): feed the parser. true if the
 * request ended (finish ran: touch nothing). */
static bool got_data(cg_h1_req_t *q, const char *p, size_t n)
{
    q->got_bytes = true;
    size_t used = 0;
    int rc = cg_h1resp_feed(&q->resp, p, n, &used, body_cb, q);
    switch (rc) {
    case CG_H1RESP_MORE:
        return false;
    case CG_H1RESP_DONE:
        /* Bytes after the reply were never asked for: the connection is out
         * of step and must not carry another request. */
        finish(q, 0, NULL, used == n);
        return true;
    case CG_H1RESP_ABORT:
        fail(q, CURLE_WRITE_ERROR, "transfer aborted by its receiver");
        return true;
    default:
        fail(q, CURLE_WEIRD_SERVER_REPLY, "invalid HTTP reply from upstream: %s", q->resp.err);
        return true;
    }
}

static void got_eof(cg_h1_req_t *q, int err)
{
    if (retry(q))
        return;
    if (err) {
        if (!q->got_bytes) {
            fail(q, CURLE_RECV_ERROR, "Recv failure: %s", strerror(err));
            return;
        }
        /* A reset after a whole close-delimited body still cuts it. */
        fail(q, CURLE_RECV_ERROR, "Recv failure after %llu body bytes: %s",
             (unsigned long long)q->resp.body_bytes, strerror(err));
        return;
    }
    int rc = cg_h1resp_eof(&q->resp);
    if (rc == CG_H1RESP_DONE) {
        finish(q, 0, NULL, false);
        return;
    }
    if (!q->got_bytes) {
        fail(q, CURLE_GOT_NOTHING, "Empty reply from server");
        return;
    }
    fail(q, CURLE_PARTIAL_FILE, "upstream closed the connection early: %s", q->resp.err);
}

static void do_read(cg_h1_req_t *q)
{
    char *buf = q->c->rbuf;
    int fd = q->conn->fd;
    for (;;) {
        ssize_t r = read(fd, buf, RBUF_SIZE);
        if (r > 0) {
            if (got_data(q, buf, (size_t)r))
                return;
            if ((size_t)r < RBUF_SIZE)
                return; /* most likely drained: epoll says when there is more */
            continue;
        }
        if (r == 0) {
            got_eof(q, 0);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        got_eof(q, errno);
        return;
    }
}

static void on_fd(cg_actor_t *a, int fd, uint32_t events, void *ud)
{
    CG_UNUSED(a);
    CG_UNUSED(fd);
    conn_t *k = ud;
    cg_h1_req_t *q = k->req;
    if (!q) {
        /* An idle connection woke: the server closed it, or sent bytes
         * nobody asked for. Either way it cannot carry a request. */
        idle_unlink(k);
        conn_close(k);
        return;
    }
    if (!k->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == 0 && !(events & EPOLLERR) && (events & EPOLLOUT)) {
            k->connected = true;
            if (q->connect_timer) {
                cg_actor_timer_cancel(q->c->a, q->connect_timer);
                q->connect_timer = 0;
            }
            send_now(q);
            return;
        }
        connect_failed(q, err ? err : ECONNREFUSED);
        return;
    }
    if ((events & EPOLLOUT) && q->sent < q->head.len + q->body_len && !q->send_dead) {
        if (!send_now(q))
            return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        do_read(q);
}

/* ------------------------------------------------------------------------ */
/* the API                                                                  */

cg_h1_req_t *cg_h1_start(cg_h1_t *c, const cg_h1_opts_t *o, const cg_h1_cbs_t *cbs, void *ud,
                         char *err, size_t errlen)
{
    const url_t *u = o->target;
    if (!u || u->n_addr < 1 || u->n_addr > CG_H1_MAX_ADDRS) {
        snprintf(err, errlen, "no target address for the request");
        return NULL;
    }
    cg_h1_req_t *q = cg_calloc(1, sizeof *q);
    q->c = c;
    q->t = u;
    q->body = o->body ? o->body : "";
    q->body_len = o->body ? o->body_len : 0;
    q->cbs = *cbs;
    q->ud = ud;
    q->connect_ms = o->connect_ms;
    q->total_ms = o->total_ms;
    cg_h1resp_init(&q->resp);

    cg_buf_t *h = &q->head;
    cg_buf_reserve(h, 256 + o->headers_len);
    cg_buf_puts(h, "POST ");
    cg_buf_puts(h, *u->path ? u->path : "/");
    cg_buf_puts(h, " HTTP/1.1\r\nHost: ");
    cg_buf_append(h, u->authority, u->authority_len);
    if (o->user_agent) {
        cg_buf_puts(h, "\r\nUser-Agent: ");
        cg_buf_puts(h, o->user_agent);
    }
    cg_buf_puts(h, "\r\nContent-Length: ");
    cg_buf_put_u64(h, q->body_len);
    cg_buf_puts(h, "\r\n");
    if (o->headers_len)
        cg_buf_append(h, o->headers, o->headers_len);
    cg_buf_puts(h, "\r\n");

    c->n_reqs++;
    q->in_start = true;
    if (o->total_ms > 0)
        q->total_timer =
            cg_actor_timer(c->a, (uint64_t)o->total_ms * 1000000u, 0, on_total_timeout, q);
    conn_t *k = idle_take(c, q);
    if (k) {
        k->req = q;
        q->conn = k;
        q->reused = true;
        send_now(q);
    } else {
        open_conn(q);
    }
    q->in_start = false;
    return q;
}

void cg_h1_cancel(cg_h1_req_t *q)
{
    if (!q)
        return;
    cancel_timers(q);
    /* Before its end (a finished request is gone): unread bytes, or a
     * half-sent request, are left on the connection. It closes. */
    drop_conn(q, false);
    q->c->n_reqs--;
    req_free(q);
}

long cg_h1_status(const cg_h1_req_t *q)
{
    return q->resp.status;
}

const char *cg_h1_content_type(const cg_h1_req_t *q)
{
    return q->resp.content_type;
}

int64_t cg_h1_retry_after(const cg_h1_req_t *q)
{
    return q->resp.retry_after_s;
}
