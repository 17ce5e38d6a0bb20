/*
 * test_h1.c — the built-in HTTP/1.1 client on an actor loop, against a
 * scripted server on 127.0.0.1: keep-alive reuse, the request it writes, a
 * pooled connection the server dropped under a request (sent again once),
 * bodies larger than the socket takes at once, an answer that comes before
 * the body is read (413), chunked replies in pieces,
 * refused connections (never reported from inside start), IPv6 and the
 * localhost fallback, the total timeout, garbage and empty replies, cancel.
 *
 * The client lives in an actor; the test thread sends it GO/CANCEL messages
 * and waits (with a deadline, never asserted) for the outcome the actor
 * posts. The server is one thread serving one connection at a time, which is
 * all a client with one request in flight needs.
 *
 * tsan: yes
 */
#include "actors/h1.h"
#include "tests/t.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 10000

enum { T_GO = 100, T_CANCEL, T_STATS };

/* ---- the scripted server ---- */

typedef enum {
    M_ECHO,      /* 200, body "<n> bytes", keep-alive */
    M_DROP_NEXT, /* answer this request, then drop the connection at the next one's head */
    M_DROP_NOW,  /* (the next one) */
    M_CHUNKED,   /* 200 chunked, in pieces */
    M_HANG,      /* read the request, answer nothing until the client leaves */
    M_GARBAGE,   /* a non-HTTP line, then close */
    M_EMPTY,     /* close without a byte */
    M_EARLY,     /* 413 after the head, before the body; then read the rest and close */
} mode_t_;

static struct {
    int lfd, port;
    int family;
    pthread_t thr;
    atomic_int stop;
    pthread_mutex_t mu;
    mode_t_ mode;
    int requests; /* request heads read */
    int accepted;
    char last_head[2048];
    size_t last_body;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static mode_t_ srv_mode(void)
{
    pthread_mutex_lock(&srv.mu);
    mode_t_ m = srv.mode;
    pthread_mutex_unlock(&srv.mu);
    return m;
}

static void srv_set(mode_t_ m)
{
    pthread_mutex_lock(&srv.mu);
    srv.mode = m;
    pthread_mutex_unlock(&srv.mu);
}

static int srv_get(int *field)
{
    pthread_mutex_lock(&srv.mu);
    int v = *field;
    pthread_mutex_unlock(&srv.mu);
    return v;
}

static bool stopping(void)
{
    return atomic_load_explicit(&srv.stop, memory_order_relaxed) != 0;
}

/* Read into buf until pred says the request is whole, or EOF/stop. */
static ssize_t read_some(int fd, char *buf, size_t cap)
{
    while (!stopping()) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, 20);
        if (r <= 0)
            continue;
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        return n;
    }
    return -1;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One request's head; its Content-Length in *want. false if the
 * connection ended first. */
static bool read_head(int fd, size_t *want, size_t *have)
{
    char buf[65536];
    cg_buf_t head = {0};
    ssize_t n;
    const char *end = NULL;
    while (!end && (n = read_some(fd, buf, sizeof buf)) > 0) {
        cg_buf_append(&head, buf, (size_t)n);
        cg_buf_append(&head, "", 1);
        head.len--;
        end = strstr(head.data, "\r\n\r\n");
    }
    if (!end) {
        cg_buf_free(&head);
        return false;
    }
    size_t hl = (size_t)(end - head.data) + 4;
    const char *cl = strcasestr(head.data, "\r\nContent-Length:");
    *want = cl && cl < end ? strtoull(cl + 17, NULL, 10) : 0;
    *have = head.len - hl;
    pthread_mutex_lock(&srv.mu);
    srv.requests++;
    snprintf(srv.last_head, sizeof srv.last_head, "%.*s", (int)hl, head.data);
    pthread_mutex_unlock(&srv.mu);
    cg_buf_free(&head);
    return true;
}

/* The rest of the body (counted, not kept). */
static bool read_body(int fd, size_t want, size_t have)
{
    char buf[65536];
    ssize_t n;
    while (have < want && (n = read_some(fd, buf, sizeof buf)) > 0)
        have += (size_t)n;
    pthread_mutex_lock(&srv.mu);
    srv.last_body = have;
    pthread_mutex_unlock(&srv.mu);
    return have >= want;
}

static void echo_reply(int fd)
{
    char body[64], out[256];
    int bl = snprintf(body, sizeof body, "%zu bytes", (size_t)srv_get((int *)&srv.last_body));
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
                     bl, body);
    send_all(fd, out, (size_t)n);
}

/* Requests on one connection; the mode is read once each request's head is
 * in, so the test thread's last srv_set before sending always applies. */
static void serve(int fd)
{
    for (;;) {
        size_t want = 0, have = 0;
        if (!read_head(fd, &want, &have))
            return;
        mode_t_ m = srv_mode();
        if (m == M_EMPTY)
            return;
        if (m == M_EARLY) {
            static const char r413[] = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n"
                                       "Connection: close\r\n\r\ntoo big!";
            send_all(fd, r413, sizeof r413 - 1);
            shutdown(fd, SHUT_WR);
            read_body(fd, want, have); /* a lingering close, as real servers do */
            return;
        }
        if (m == M_DROP_NEXT) {
            srv_set(M_DROP_NOW);
            m = M_ECHO;
        } else if (m == M_DROP_NOW) {
            srv_set(M_ECHO);
            return; /* this request's head is in: drop it unanswered */
        }
        if (!read_body(fd, want, have))
            return;
        switch (m) {
        case M_ECHO:
            echo_reply(fd);
            break;
        case M_CHUNKED: {
            static const char *const parts[] = {
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "lo\r\n7\r\n worl",
                "d!\r\n0\r\n\r\n"};
            for (size_t i = 0; i < CG_ARRAY_LEN(parts); i++) {
                send_all(fd, parts[i], strlen(parts[i]));
                usleep(20000);
            }
            break;
        }
        case M_HANG: {
            char b[256];
            while (read_some(fd, b, sizeof b) > 0) {
            }
            return;
        }
        case M_GARBAGE:
            send_all(fd, "SSH-2.0-OpenSSH_9.2\r\n\r\n", 23);
            return;
        default:
            return;
        }
    }
}

static void *srv_main(void *arg)
{
    CG_UNUSED(arg);
    while (!stopping()) {
        struct pollfd pf = {.fd = srv.lfd, .events = POLLIN};
        if (poll(&pf, 1, 20) <= 0)
            continue;
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&srv.mu);
        srv.accepted++;
        pthread_mutex_unlock(&srv.mu);
        serve(fd);
        close(fd);
    }
    return NULL;
}

/* Listen on 127.0.0.1 (family AF_INET) or ::1; 0 or -1 if that family is
 * not available here. */
static int srv_start(int family)
{
    srv.family = family;
    srv.lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (srv.lfd < 0)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        len = sizeof *in6;
    }
    if (bind(srv.lfd, (struct sockaddr *)&ss, len) < 0 || listen(srv.lfd, 16) < 0) {
        close(srv.lfd);
        return -1;
    }
    getsockname(srv.lfd, (struct sockaddr *)&ss, &len);
    srv.port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
    atomic_store(&srv.stop, 0);
    srv.mode = M_ECHO;
    pthread_create(&srv.thr, NULL, srv_main, NULL);
    return 0;
}

static void srv_stop(void)
{
    atomic_store(&srv.stop, 1);
    pthread_join(srv.thr, NULL);
    close(srv.lfd);
}

/* A port with nothing listening: bound, then closed. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof in;
    bind(fd, (struct sockaddr *)&in, len);
    getsockname(fd, (struct sockaddr *)&in, &len);
    close(fd);
    return ntohs(in.sin_port);
}

/* ---- the client actor ---- */

typedef struct outcome {
    bool done;
    int code;
    char msg[256];
    long status;
    char ctype[64];
    char body[256];
    size_t body_len;
    bool in_start; /* on_done ran while cg_h1_start had not returned */
    size_t opened, idle;
} outcome_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    outcome_t out;
    bool stats_ready;
} res = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

typedef struct client {
    cg_h1_t *h1;
    cg_h1_req_t *q;
    char *url;
    cg_h1_target_t target;
    bool starting;
    char *body;
    outcome_t cur;
} client_t;

static bool c_data(void *ud, const char *p, size_t n)
{
    client_t *c = ud;
    size_t room = sizeof c->cur.body - 1 - c->cur.body_len;
    memcpy(c->cur.body + c->cur.body_len, p, n < room ? n : room);
    c->cur.body_len += n < room ? n : room;
    return true;
}

/* The request ended: its outcome to the test thread; its body goes. */
static void post(client_t *c)
{
    c->cur.done = true;
    pthread_mutex_lock(&res.mu);
    res.out = c->cur;
    pthread_cond_broadcast(&res.cv);
    pthread_mutex_unlock(&res.mu);
    cg_free(c->body);
    c->body = NULL;
}

static void c_done(void *ud, int code, const char *msg)
{
    client_t *c = ud;
    c->cur.code = code;
    snprintf(c->cur.msg, sizeof c->cur.msg, "%s", msg);
    c->cur.status = cg_h1_status(c->q);
    snprintf(c->cur.ctype, sizeof c->cur.ctype, "%s", cg_h1_content_type(c->q));
    c->cur.in_start = c->starting;
    c->q = NULL;
    /* The connection is back in the pool (or closed) before on_done. */
    c->cur.opened = cg_h1_opened(c->h1);
    c->cur.idle = cg_h1_idle(c->h1);
    post(c);
}

static const cg_h1_cbs_t cbs = {.on_data = c_data, .on_done = c_done};

static int c_init(cg_actor_t *a, void *arg)
{
    CG_UNUSED(arg);
    client_t *c = cg_calloc(1, sizeof *c);
    c->h1 = cg_h1_new(a, "test");
    cg_actor_set_state(a, c);
    return 0;
}

static void c_handle(cg_actor_t *a, cg_msg_t *m)
{
    client_t *c = cg_actor_state(a);
    cg_msg_view_t v;
    if (m->type == T_GO) {
        const char *url;
        int64_t body_len, total_ms;
        if (cg_msg_unpack(m, &v, "sii", &url, NULL, &body_len, &total_ms) == 0) {
            memset(&c->cur, 0, sizeof c->cur);
            c->body = cg_malloc((size_t)body_len + 1);
            memset(c->body, 'b', (size_t)body_len);
            static const char hdrs[] = "X-Test: yes\r\nContent-Type: application/json\r\n";
            /* The target points into the URL: keep a copy for the request. */
            cg_free(c->url);
            c->url = cg_strdup(url);
            if (!cg_h1_target_parse(c->url, &c->target))
                memset(&c->target, 0, sizeof c->target);
            cg_h1_opts_t o = {.target = &c->target,
                              .headers = hdrs,
                              .headers_len = sizeof hdrs - 1,
                              .user_agent = "clawgate-test",
                              .body = c->body,
                              .body_len = (size_t)body_len,
                              .connect_ms = 5000,
                              .total_ms = total_ms};
            char err[256];
            c->starting = true;
            c->q = cg_h1_start(c->h1, &o, &cbs, c, err, sizeof err);
            c->starting = false;
            if (!c->q) {
                c->cur.code = -1;
                snprintf(c->cur.msg, sizeof c->cur.msg, "%s", err);
                post(c);
            }
        }
        cg_msg_view_done(&v);
    } else if (m->type == T_CANCEL) {
        if (c->q) {
            cg_h1_cancel(c->q);
            c->q = NULL;
            cg_free(c->body);
            c->body = NULL;
        }
        pthread_mutex_lock(&res.mu);
        res.out.opened = cg_h1_opened(c->h1);
        res.out.idle = cg_h1_idle(c->h1);
        res.stats_ready = true;
        pthread_cond_broadcast(&res.cv);
        pthread_mutex_unlock(&res.mu);
    }
    cg_msg_free(m);
}

static void c_cleanup(cg_actor_t *a)
{
    client_t *c = cg_actor_state(a);
    if (c->q)
        cg_h1_cancel(c->q);
    cg_h1_free(c->h1);
    cg_free(c->url);
    cg_free(c->body);
    cg_free(c);
}

static const cg_actor_spec_t client_spec = {
    .name = "h1client", .init = c_init, .handle = c_handle, .cleanup = c_cleanup};
static cg_aid_t client;

static bool wait_res(bool stats)
{
    uint64_t deadline = cg_now_ms() + WAIT_MS;
    pthread_mutex_lock(&res.mu);
    while (!(stats ? res.stats_ready : res.out.done) && cg_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&res.cv, &res.mu, &ts);
    }
    bool ok = stats ? res.stats_ready : res.out.done;
    pthread_mutex_unlock(&res.mu);
    return ok;
}

/* Run one request; the outcome (copied). */
static outcome_t go(const char *url, size_t body_len, int64_t total_ms)
{
    pthread_mutex_lock(&res.mu);
    memset(&res.out, 0, sizeof res.out);
    pthread_mutex_unlock(&res.mu);
    cg_msg_t *m = cg_msg_pack(T_GO, "sii", url, (int64_t)body_len, total_ms);
    cg_actor_send(client, m);
    outcome_t o = {0};
    if (!wait_res(false)) {
        o.code = -2;
        snprintf(o.msg, sizeof o.msg, "no outcome within %d ms", WAIT_MS);
        return o;
    }
    pthread_mutex_lock(&res.mu);
    o = res.out;
    pthread_mutex_unlock(&res.mu);
    return o;
}

static char *url_for(int port)
{
    return srv.family == AF_INET6 ? cg_sprintf("http://[::1]:%d/v1/chat/completions", port)
                                  : cg_sprintf("http://127.0.0.1:%d/v1/chat/completions", port);
}

/* ---- tests ---- */

static void test_url_ok(void)
{
    T_ASSERT(cg_h1_url_ok("http://127.0.0.1:1234/v1"));
    T_ASSERT(cg_h1_url_ok("HTTP://127.0.0.1/v1/chat/completions"));
    T_ASSERT(cg_h1_url_ok("http://localhost:11434/v1/chat/completions"));
    T_ASSERT(cg_h1_url_ok("http://[::1]:8000/v1/x"));
    T_ASSERT(cg_h1_url_ok("http://10.0.0.5:8000"));
    T_ASSERT(!cg_h1_url_ok("https://127.0.0.1:1234/v1"));
    T_ASSERT(!cg_h1_url_ok("http://api.example.com/v1"));   /* needs DNS: libcurl */
    T_ASSERT(!cg_h1_url_ok("http://user:pw@127.0.0.1/v1")); /* user info: libcurl */
    T_ASSERT(!cg_h1_url_ok("http://127.0.0.1:0/v1"));
    T_ASSERT(!cg_h1_url_ok("http://127.0.0.1:65536/v1"));
    T_ASSERT(!cg_h1_url_ok("http://127.0.0.1:12x/v1"));
    T_ASSERT(!cg_h1_url_ok("http://[::1/v1"));
    T_ASSERT(!cg_h1_url_ok("http://999.1.1.1/v1"));
    T_ASSERT(!cg_h1_url_ok("http:///v1"));
    T_ASSERT(!cg_h1_url_ok(NULL));
}

static void test_keepalive_reuse(void)
{
    srv_set(M_ECHO);
    char *url = url_for(srv.port);
    int acc = srv_get(&srv.accepted);
    for (int i = 0; i < 3; i++) {
        outcome_t o = go(url, 100 + (size_t)i, 0);
        T_ASSERTF(o.code == 0, "request %d: %d %s", i, o.code, o.msg);
        T_EQ_INT(o.status, 200);
        T_EQ_STR(o.ctype, "text/plain");
        char want[32];
        snprintf(want, sizeof want, "%d bytes", 100 + i);
        T_EQ_STR(o.body, want);
        T_EQ_INT(o.idle, 1);
        T_ASSERT(!o.in_start);
    }
    T_EQ_INT(srv_get(&srv.accepted) - acc, 1);
    pthread_mutex_lock(&srv.mu);
    char head[2048];
    memcpy(head, srv.last_head, sizeof head);
    pthread_mutex_unlock(&srv.mu);
    T_ASSERT(strncmp(head, "POST /v1/chat/completions HTTP/1.1\r\n", 36) == 0);
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%d\r\n", srv.port);
    T_CONTAINS(head, host);
    T_CONTAINS(head, "\r\nContent-Length: 102\r\n");
    T_CONTAINS(head, "\r\nUser-Agent: clawgate-test\r\n");
    T_CONTAINS(head, "\r\nX-Test: yes\r\nContent-Type: application/json\r\n\r\n");
    cg_free(url);
}

/* The server answers, keeps the connection open, then drops it when the
 * next request's head arrives: that request is sent again, once, on a new
 * connection, and succeeds. */
static void test_stale_connection_retry(void)
{
    char *url = url_for(srv.port);
    srv_set(M_ECHO);
    outcome_t o = go(url, 10, 0); /* a pooled connection to start from */
    T_EQ_INT(o.code, 0);
    srv_set(M_DROP_NEXT);
    o = go(url, 11, 0); /* answered; the server now waits to drop the next */
    T_EQ_INT(o.code, 0);
    int acc = srv_get(&srv.accepted), reqs = srv_get(&srv.requests);
    o = go(url, 12, 0);
    T_ASSERTF(o.code == 0, "%d %s", o.code, o.msg);
    T_EQ_STR(o.body, "12 bytes");
    T_EQ_INT(srv_get(&srv.accepted) - acc, 1);
    T_EQ_INT(srv_get(&srv.requests) - reqs, 2); /* seen twice: dropped, then answered */
    cg_free(url);
}

static void test_large_body(void)
{
    srv_set(M_ECHO);
    char *url = url_for(srv.port);
    size_t n = (size_t)12 * 1024 * 1024; /* far more than a socket buffer */
    outcome_t o = go(url, n, 0);
    T_ASSERTF(o.code == 0, "%d %s", o.code, o.msg);
    char want[32];
    snprintf(want, sizeof want, "%zu bytes", n);
    T_EQ_STR(o.body, want);
    cg_free(url);
}

static void test_chunked_in_pieces(void)
{
    srv_set(M_CHUNKED);
    char *url = url_for(srv.port);
    outcome_t o = go(url, 5, 0);
    T_ASSERTF(o.code == 0, "%d %s", o.code, o.msg);
    T_EQ_STR(o.body, "hello world!");
    T_EQ_INT(o.idle, 1);
    srv_set(M_ECHO);
    cg_free(url);
}

/* The server answers before it has read the body (413) and closes: the
 * client takes that answer, not a send error, and does not pool the
 * connection. */
static void test_early_answer(void)
{
    srv_set(M_EARLY);
    char *url = url_for(srv.port);
    outcome_t o = go(url, (size_t)8 * 1024 * 1024, 0);
    T_ASSERTF(o.code == 0, "%d %s", o.code, o.msg);
    T_EQ_INT(o.status, 413);
    T_EQ_STR(o.body, "too big!");
    T_EQ_INT(o.idle, 0);
    srv_set(M_ECHO);
    o = go(url, 5, 0);
    T_EQ_INT(o.code, 0);
    cg_free(url);
}

static void test_refused(void)
{
    char *url = cg_sprintf("http://127.0.0.1:%d/v1/chat/completions", dead_port());
    outcome_t o = go(url, 5, 0);
    T_EQ_INT(o.code, CURLE_COULDNT_CONNECT);
    T_CONTAINS(o.msg, "Connection refused");
    T_ASSERT(!o.in_start); /* reported on a later turn, never inside start */
    T_EQ_INT(o.status, 0);
    cg_free(url);
}

static void test_total_timeout(void)
{
    srv_set(M_HANG);
    char *url = url_for(srv.port);
    outcome_t o = go(url, 5, 200);
    T_EQ_INT(o.code, CURLE_OPERATION_TIMEDOUT);
    T_CONTAINS(o.msg, "timed out after 200 milliseconds");
    T_EQ_INT(o.idle, 0); /* a connection in the middle of an exchange is not pooled */
    srv_set(M_ECHO);
    cg_free(url);
}

static void test_garbage_and_empty(void)
{
    char *url = url_for(srv.port);
    srv_set(M_GARBAGE);
    outcome_t o = go(url, 5, 0);
    T_EQ_INT(o.code, CURLE_WEIRD_SERVER_REPLY);
    T_CONTAINS(o.msg, "not an HTTP/1.x status line");
    srv_set(M_EMPTY);
    o = go(url, 5, 0);
    T_EQ_INT(o.code, CURLE_GOT_NOTHING);
    srv_set(M_ECHO);
    o = go(url, 5, 0);
    T_EQ_INT(o.code, 0);
    cg_free(url);
}

static void test_cancel(void)
{
    srv_set(M_HANG);
    char *url = url_for(srv.port);
    pthread_mutex_lock(&res.mu);
    memset(&res.out, 0, sizeof res.out);
    res.stats_ready = false;
    pthread_mutex_unlock(&res.mu);
    int reqs = srv_get(&srv.requests);
    cg_actor_send(client, cg_msg_pack(T_GO, "sii", url, (int64_t)5, (int64_t)0));
    uint64_t deadline = cg_now_ms() + WAIT_MS;
    while (srv_get(&srv.requests) == reqs && cg_now_ms() < deadline)
        usleep(1000);
    cg_actor_send(client, cg_msg_new(T_CANCEL, NULL, 0));
    T_ASSERT(wait_res(true));
    pthread_mutex_lock(&res.mu);
    bool done = res.out.done;
    size_t idle = res.out.idle;
    pthread_mutex_unlock(&res.mu);
    T_ASSERT(!done); /* no callback after cancel */
    T_EQ_INT(idle, 0);
    srv_set(M_ECHO);
    outcome_t o = go(url, 5, 0); /* the server saw the close and serves again */
    T_EQ_INT(o.code, 0);
    cg_free(url);
}

static void test_ipv6_and_localhost(void)
{
    srv_stop();
    if (srv_start(AF_INET6) != 0) {
        printf("# no IPv6 loopback here: skipping\n");
        T_ASSERT(srv_start(AF_INET) == 0);
        return;
    }
    char *url = url_for(srv.port);
    outcome_t o = go(url, 7, 0);
    T_ASSERTF(o.code == 0, "%d %s", o.code, o.msg);
    cg_free(url);
    /* localhost: 127.0.0.1 first (nothing there on this port, unless some
     * other process took it), then ::1. */
    url = cg_sprintf("http://localhost:%d/v1/chat/completions", srv.port);
    o = go(url, 8, 0);
    T_ASSERTF(o.code == 0, "%d %s", o.code, o.msg);
    T_EQ_STR(o.body, "8 bytes");
    cg_free(url);
    srv_stop();
    T_ASSERT(srv_start(AF_INET) == 0);
}

int main(void)
{
    cg_log_set_level(getenv("CG_TEST_DEBUG") ? CG_LOG_DEBUG : CG_LOG_ERROR);
    if (srv_start(AF_INET) != 0)
        return 2;
    if (cg_actor_spawn(&client_spec, NULL, CG_AID_NONE, &client) != 0)
        return 2;
    T_RUN(test_url_ok);
    T_RUN(test_keepalive_reuse);
    T_RUN(test_stale_connection_retry);
    T_RUN(test_large_body);
    T_RUN(test_chunked_in_pieces);
    T_RUN(test_early_answer);
    T_RUN(test_refused);
    T_RUN(test_total_timeout);
    T_RUN(test_garbage_and_empty);
    T_RUN(test_cancel);
    T_RUN(test_ipv6_and_localhost);
    cg_actor_stop(client);
    cg_actor_join(client, NULL);
    srv_stop();
    T_DONE();
}
