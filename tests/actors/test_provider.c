/*
 * test_provider.c — the provider actor against a fake upstream on 127.0.0.1.
 *
 * tsan: yes
 *
 * A tiny HTTP/1.1 server runs in this process (one thread per connection,
 * keep-alive, chunked replies) and picks its behaviour from the `model` the
 * provider sent upstream: non-stream JSON, an SSE stream written in odd-sized
 * pieces with delays, 429 with Retry-After, 500 with a JSON error, garbage,
 * a stream cut mid-event, accept-and-hang. A port with nothing listening
 * stands for a dead server. An owner actor records every message the
 * provider sends; the test thread sends REQUESTs (reply_to = the owner) and
 * waits, with a deadline, for the terminal message. No assertion is about
 * time; deadlines only keep a broken build from hanging.
 */
#include "actors/provider.h"
#include "config/config.h"
#include "proto/jscan.h"
#include "proto/translate.h"
#include "tests/t.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 10000 /* deadline for anything the test waits for */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ======================================================================== */
/* fake upstream                                                            */

typedef struct rec {
    char *path;
    char *headers; /* raw header block */
    char *body;
    char *model;
} rec_t;

#define MAX_RECS 256
#define MAX_CONNS 128

static struct {
    int lfd;
    int port;
    pthread_t thr;
    /* Written by the test thread, read by server threads; relaxed is
     * enough: it is a polled stop flag, no data hangs on it. */
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rec_t recs[MAX_RECS];
    int n_recs;
    int accepted;    /* connections accepted */
    int peer_closed; /* hang/slow handlers that saw the client go away */
    pthread_t conns[MAX_CONNS];
    int n_conns;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static bool srv_stopping(void)
{
    return atomic_load_explicit(&srv.stop, memory_order_relaxed) != 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_str(int fd, const char *s)
{
    return write_all(fd, s, strlen(s));
}

static int write_chunk(int fd, const char *p, size_t n)
{
    char hdr[32];
    snprintf(hdr, sizeof hdr, "%zx\r\n", n);
    if (write_str(fd, hdr) < 0 || write_all(fd, p, n) < 0 || write_str(fd, "\r\n") < 0)
        return -1;
    return 0;
}

static void note_peer_closed(void)
{
    pthread_mutex_lock(&srv.mu);
    srv.peer_closed++;
    pthread_cond_broadcast(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
}

/* Block until the client closes the connection (or the server stops). */
static void hang_until_peer_closes(int fd)
{
    while (!srv_stopping()) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, 20);
        if (r > 0) {
            char b[256];
            ssize_t n = recv(fd, b, sizeof b, 0);
            if (n <= 0) {
                note_peer_closed();
                return;
            }
        }
    }
}

/* Write an SSE text as HTTP chunks of `piece` bytes with `delay_ms` between
 * them. -1 when the client went away. */
static int write_pieces(int fd, const char *text, size_t piece, int delay_ms)
{
    size_t len = strlen(text);
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        if (write_chunk(fd, text + off, n) < 0)
            return -1;
        if (delay_ms)
            sleep_ms(delay_ms);
    }
    return 0;
}

static const char *JSON_REPLY =
    "{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"m-json\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"hi there\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18,"
    "\"prompt_tokens_details\":{\"cached_tokens\":3}}}";

#define C(delta, fin)                                                                              \
    "{\"id\":\"s1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"     \
    "{" delta "},\"finish_reason\":" fin "}]}"

/* Mixed line ends on purpose; the usage chunk comes after the finish chunk
 * with empty choices, as OpenAI sends it. */
static const char *SSE_OK =
    ": keep-alive comment\n\n"
    "data: " C("\"role\":\"assistant\"",
               "null") "\n\n"
                       "data: " C("\"content\":\"Hel\"",
                                  "null") "\r\n\r\n"
                                          "data: " C(
                                              "\"content\":\"lo\"",
                                              "null") "\n\n"
                                                      "data: " C(
                                                          "",
                                                          "\"stop\"") "\n\n"
                                                                      "data: "
                                                                      "{\"id\":\"s1\",\"object\":"
                                                                      "\"chat.completion.chunk\","
                                                                      "\"choices\":[],\"usage\":{"
                                                                      "\"prompt_tokens\":21,"
                                                                      "\"completion_tokens\":2,"
                                                                      "\"prompt_tokens_details\":"
                                                                      "{\"cached_tokens\":5}}}\n\n"
                                                                      "data: [DONE]\n\n";

/* A finished answer without [DONE] (older Ollama / llama.cpp builds). */
static const char *SSE_NO_DONE =
    "data: " C("\"content\":\"ok\"", "null") "\n\n"
                                             "data: " C("", "\"stop\"") "\n\n";

static const char *SSE_SLOW_EVENT = "data: " C("\"content\":\"x\"", "null") "\n\n";

static void send_head(int fd, int status, const char *reason, const char *ctype, const char *extra)
{
    char h[512];
    snprintf(h, sizeof h,
             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sTransfer-Encoding: chunked\r\n\r\n", status,
             reason, ctype, extra ? extra : "");
    write_str(fd, h);
}

static void send_full(int fd, int status, const char *reason, const char *ctype, const char *extra,
                      const char *body)
{
    char h[512];
    snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n\r\n",
             status, reason, ctype, extra ? extra : "", strlen(body));
    write_str(fd, h);
    write_str(fd, body);
}

/* Reply per model; returns false when the connection must close. */
static bool respond(int fd, const char *model)
{
    if (!strcmp(model, "m-json")) {
        send_full(fd, 200, "OK", "application/json", NULL, JSON_REPLY);
        return true;
    }
    if (!strcmp(model, "m-stream")) {
        send_head(fd, 200, "OK", "text/event-stream", NULL);
        if (write_pieces(fd, SSE_OK, 7, 1) < 0)
            return false;
        write_str(fd, "0\r\n\r\n");
        return true;
    }
    if (!strcmp(model, "m-nodone")) {
        send_head(fd, 200, "OK", "text/event-stream", NULL);
        write_pieces(fd, SSE_NO_DONE, 13, 0);
        write_str(fd, "0\r\n\r\n");
        return true;
    }
    if (!strcmp(model, "m-slow")) {
        /* 12 events 60 ms apart, then [DONE]. */
        send_head(fd, 200, "OK", "text/event-stream", NULL);
        for (int i = 0; i < 12; i++) {
            if (write_pieces(fd, SSE_SLOW_EVENT, 1000, 60) < 0) {
                note_peer_closed();
                return false;
            }
        }
        write_pieces(fd, "data: [DONE]\n\n", 1000, 0);
        write_str(fd, "0\r\n\r\n");
        return true;
    }
    if (!strcmp(model, "m-429")) {
        send_full(fd, 429, "Too Many Requests", "application/json", "Retry-After: 7\r\n",
                  "{\"error\":{\"message\":\"Rate limit reached for requests\","
                  "\"type\":\"requests\"}}");
        return true;
    }
    if (!strcmp(model, "m-500")) {
        send_full(
            fd, 500, "Internal Server Error", "application/json", NULL,
            "{\"error\":{\"message\":\"boom: the GPU fell over\",\"type\":\"server_error\"}}");
        return true;
    }
    if (!strcmp(model, "m-ctx")) {
        send_full(fd, 400, "Bad Request", "application/json", NULL,
                  "{\"error\":{\"message\":\"This model's maximum context length is 4096 tokens\","
                  "\"code\":\"context_length_exceeded\"}}");
        return true;
    }
    if (!strcmp(model, "m-401")) {
        send_full(fd, 401, "Unauthorized", "text/plain", NULL, "bad key\n\x01 go away");
        return true;
    }
    if (!strcmp(model, "m-longerr")) {
        cg_buf_t b = {0};
        cg_buf_puts(&b, "{\"error\":{\"message\":\"");
        for (int i = 0; i < 1000; i++)
            cg_buf_puts(&b, "\u00e9tag ");
        cg_buf_puts(&b, "\"}}");
        send_full(fd, 422, "Unprocessable Entity", "application/json", NULL, b.data);
        cg_buf_free(&b);
        return true;
    }
    if (!strcmp(model, "m-garbage")) {
        send_full(fd, 200, "OK", "text/html", NULL, "<html><body>It works!</body></html>\n");
        return true;
    }
    if (!strcmp(model, "m-badjson")) {
        send_full(fd, 200, "OK", "application/json", NULL, "{\"choices\": [1, 2,]}");
        return true;
    }
    if (!strcmp(model, "m-badchunk")) {
        send_head(fd, 200, "OK", "text/event-stream", NULL);
        write_pieces(fd, "data: " C("\"content\":\"a\"", "null") "\n\ndata: {not json}\n\n", 5, 0);
        write_str(fd, "0\r\n\r\n");
        return true;
    }
    if (!strcmp(model, "m-errevent")) {
        send_head(fd, 200, "OK", "text/event-stream", NULL);
        write_pieces(
            fd, "data: {\"error\":{\"message\":\"maximum context length is 4096 tokens\"}}\n\n",
            1000, 0);
        write_str(fd, "0\r\n\r\n");
        return true;
    }
    if (!strcmp(model, "m-cut")) {
        /* Two events, then half of a third, then the connection drops
         * without the terminating chunk. */
        send_head(fd, 200, "OK", "text/event-stream", NULL);
        write_pieces(fd,
                     "data: " C("\"content\":\"a\"",
                                "null") "\n\n"
                                        "data: " C("\"content\":\"b\"",
                                                   "null") "\n\n"
                                                           "data: {\"id\":\"s1\",\"choi",
                     11, 1);
        return false;
    }
    if (!strcmp(model, "m-hang")) {
        hang_until_peer_closes(fd);
        return false;
    }
    if (!strcmp(model, "m-keepalive")) {
        /* 200 at once, then only SSE comments: a model still loading. */
        send_head(fd, 200, "OK", "text/event-stream", NULL);
        while (!srv_stopping()) {
            if (write_pieces(fd, ": keep-alive\n\n", 1000, 50) < 0) {
                note_peer_closed();
                break;
            }
        }
        return false;
    }
    if (!strcmp(model, "m-idle")) {
        send_head(fd, 200, "OK", "text/event-stream", NULL);
        write_pieces(fd, "data: " C("\"content\":\"a\"", "null") "\n\n", 1000, 0);
        hang_until_peer_closes(fd);
        return false;
    }
    send_full(fd, 404, "Not Found", "application/json", NULL,
              "{\"error\":{\"message\":\"The model does not exist\"}}");
    return true;
}

static char *hdr_get(const char *headers, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = headers; l && *l;) {
        const char *eol = strstr(l, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            while (*v == ' ')
                v++;
            return strndup(v, (size_t)(eol - v));
        }
        l = eol + 2;
    }
    return NULL;
}

/* Read one request: 0, or -1 at EOF / error / stop. */
static int read_request(int fd, char **path, char **headers, char **body)
{
    cg_buf_t in = {0};
    char *end = NULL;
    while (!end) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, 20);
        if (srv_stopping()) {
            cg_buf_free(&in);
            return -1;
        }
        if (r <= 0)
            continue;
        char b[4096];
        ssize_t n = recv(fd, b, sizeof b, 0);
        if (n <= 0) {
            cg_buf_free(&in);
            return -1;
        }
        cg_buf_append(&in, b, (size_t)n);
        end = strstr(in.data, "\r\n\r\n");
    }
    size_t hlen = (size_t)(end - in.data) + 4;
    char *line_end = strstr(in.data, "\r\n");
    char *sp1 = memchr(in.data, ' ', (size_t)(line_end - in.data));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
    *path = sp1 && sp2 ? strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1)) : strdup("?");
    *headers = strndup(line_end + 2, hlen - (size_t)(line_end + 2 - in.data));
    char *cl = hdr_get(*headers, "Content-Length");
    size_t want = cl ? (size_t)strtoul(cl, NULL, 10) : 0;
    free(cl);
    while (in.len - hlen < want) {
        char b[4096];
        ssize_t n = recv(fd, b, sizeof b, 0);
        if (n <= 0)
            break;
        cg_buf_append(&in, b, (size_t)n);
    }
    *body = strndup(in.data + hlen, want);
    cg_buf_free(&in);
    return 0;
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (;;) {
        char *path = NULL, *headers = NULL, *body = NULL;
        if (read_request(fd, &path, &headers, &body) < 0)
            break;
        char *model = NULL;
        json_object *j = json_tokener_parse(body);
        json_object *mo = NULL;
        if (j && json_object_object_get_ex(j, "model", &mo))
            model = strdup(json_object_get_string(mo));
        json_object_put(j);
        if (!model)
            model = strdup("");
        pthread_mutex_lock(&srv.mu);
        if (srv.n_recs < MAX_RECS) {
            srv.recs[srv.n_recs++] = (rec_t){path, headers, body, strdup(model)};
            path = headers = body = NULL;
        }
        pthread_cond_broadcast(&srv.cv);
        pthread_mutex_unlock(&srv.mu);
        free(path);
        free(headers);
        free(body);
        bool keep = respond(fd, model);
        free(model);
        if (!keep)
            break;
    }
    close(fd);
    return NULL;
}

static void *accept_main(void *arg)
{
    CG_UNUSED(arg);
    while (!srv_stopping()) {
        struct pollfd pf = {.fd = srv.lfd, .events = POLLIN};
        if (poll(&pf, 1, 20) <= 0)
            continue;
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock(&srv.mu);
        srv.accepted++;
        if (srv.n_conns < MAX_CONNS &&
            pthread_create(&srv.conns[srv.n_conns], NULL, conn_main, (void *)(intptr_t)fd) == 0)
            srv.n_conns++;
        else
            close(fd);
        pthread_mutex_unlock(&srv.mu);
    }
    return NULL;
}

static int listen_any(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) {
        perror("bind/listen");
        exit(2);
    }
    return fd;
}

static int port_of(int fd)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    return ntohs(sa.sin_port);
}

static void srv_start(void)
{
    srv.lfd = listen_any();
    srv.port = port_of(srv.lfd);
    pthread_create(&srv.thr, NULL, accept_main, NULL);
}

static void srv_stop(void)
{
    atomic_store_explicit(&srv.stop, 1, memory_order_relaxed);
    pthread_join(srv.thr, NULL);
    for (int i = 0; i < srv.n_conns; i++)
        pthread_join(srv.conns[i], NULL);
    close(srv.lfd);
    for (int i = 0; i < srv.n_recs; i++) {
        free(srv.recs[i].path);
        free(srv.recs[i].headers);
        free(srv.recs[i].body);
        free(srv.recs[i].model);
    }
}

/* A port where nothing listens: bind one, note it, close it. */
static int dead_port(void)
{
    int fd = listen_any();
    int port = port_of(fd);
    close(fd);
    return port;
}

/* Wait until the server has recorded a request for model; its index or -1. */
static int srv_wait_model(const char *model, int after)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&srv.mu);
    int found = -1;
    for (;;) {
        for (int i = after; i < srv.n_recs && found < 0; i++) {
            if (!strcmp(srv.recs[i].model, model))
                found = i;
        }
        if (found >= 0 || pthread_cond_timedwait(&srv.cv, &srv.mu, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&srv.mu);
    return found;
}

static int srv_n_recs(void)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.n_recs;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

static int srv_accepted(void)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.accepted;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

static bool srv_wait_peer_closed(int at_least)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&srv.mu);
    while (srv.peer_closed < at_least) {
        if (pthread_cond_timedwait(&srv.cv, &srv.mu, &dl) == ETIMEDOUT)
            break;
    }
    bool ok = srv.peer_closed >= at_least;
    pthread_mutex_unlock(&srv.mu);
    return ok;
}

static int srv_peer_closed(void)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.peer_closed;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* The server's record i, safe to read without the lock once recorded:
 * records are written once, before n_recs grows under the mutex. */
static rec_t *srv_rec(int i)
{
    pthread_mutex_lock(&srv.mu);
    rec_t *r = &srv.recs[i];
    pthread_mutex_unlock(&srv.mu);
    return r;
}

/* ======================================================================== */
/* owner actor: records what providers send                                 */

typedef struct ev {
    uint64_t req_id;
    uint32_t type;
    int64_t status;
    char *text; /* content type (HEAD), data (CHUNK), body (DONE), message (FAIL) */
    size_t text_len;
    char *cls;
    int64_t retry_after_ms;
    int any_output;
    int64_t prompt, completion, cached;
    uint64_t ttft_ns;
} ev_t;

#define MAX_EVS 4096

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ev_t evs[MAX_EVS];
    int n;
    int bad; /* messages that did not decode */
} log_ = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* A NUL-terminated copy of exactly n bytes (they may contain no NUL and
 * need not be followed by one). */
static char *dup_or_null(const void *p, size_t n)
{
    if (!p)
        return NULL;
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Record e (if any); rc != 0 counts a malformed message. */
static void log_push(const ev_t *e, int rc)
{
    pthread_mutex_lock(&log_.mu);
    if (rc != 0)
        log_.bad++;
    if (e && log_.n < MAX_EVS)
        log_.evs[log_.n++] = *e;
    pthread_cond_broadcast(&log_.cv);
    pthread_mutex_unlock(&log_.mu);
}

static void record_chunk_event(void *ud, const char *event, size_t event_len, const char *data,
                               size_t len)
{
    CG_UNUSED(event);
    CG_UNUSED(event_len);
    ev_t e = *(const ev_t *)ud;
    e.text = dup_or_null(data, len);
    e.text_len = len;
    log_push(&e, 0);
}

static void owner_handle(cg_actor_t *a, cg_msg_t *m)
{
    CG_UNUSED(a);
    ev_t e = {.req_id = m->req_id, .type = m->type};
    cg_msg_view_t v;
    int rc = 0;
    const void *p = NULL;
    size_t n = 0;
    switch (m->type) {
    case CG_PROV_HEAD:
        rc = cg_msg_unpack(m, &v, "iS", &e.status, &p, &n);
        e.text = dup_or_null(p, n);
        break;
    case CG_PROV_CHUNK:
        /* One record per event, as if each came alone. */
        rc = cg_prov_chunk_events(m, record_chunk_event, &e);
        cg_msg_free(m);
        if (rc != 0)
            log_push(NULL, rc);
        return;
    case CG_PROV_DONE:
        rc = cg_msg_unpack(m, &v, "ixiiiu", &e.status, &p, &n, &e.prompt, &e.completion, &e.cached,
                           &e.ttft_ns);
        e.text = dup_or_null(p, n);
        e.text_len = n;
        break;
    case CG_PROV_FAIL: {
        const void *c = NULL;
        size_t cn = 0;
        rc = cg_msg_unpack(m, &v, "siSib", &c, &cn, &e.status, &p, &n, &e.retry_after_ms,
                           &e.any_output);
        e.cls = dup_or_null(c, cn);
        e.text = dup_or_null(p, n);
        break;
    }
    case CG_MSG_TICK: /* heartbeat answer: no payload */
        v.ready = 0;
        break;
    default:
        cg_msg_free(m);
        return; /* EXIT and friends */
    }
    cg_msg_view_done(&v);
    cg_msg_free(m);
    log_push(&e, rc);
}

static const cg_actor_spec_t owner_spec = {.name = "owner", .handle = owner_handle};

/* An owner that is stuck: its handler blocks until released, and its
 * mailbox holds two messages, so the provider's sends soon find it full. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool released;
    int handled;
} stuck = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void stuck_handle(cg_actor_t *a, cg_msg_t *m)
{
    CG_UNUSED(a);
    cg_msg_free(m);
    pthread_mutex_lock(&stuck.mu);
    stuck.handled++;
    while (!stuck.released)
        pthread_cond_wait(&stuck.cv, &stuck.mu);
    pthread_mutex_unlock(&stuck.mu);
}

static const cg_actor_spec_t stuck_spec = {
    .name = "stuck", .mailbox_cap = 2, .handle = stuck_handle};

static bool is_terminal(uint32_t t)
{
    return t == CG_PROV_DONE || t == CG_PROV_FAIL;
}

/* Wait for a message of `type` (0: terminal) for req_id; its index or -1. */
static int wait_ev(uint64_t req_id, uint32_t type)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&log_.mu);
    int found = -1;
    for (;;) {
        for (int i = 0; i < log_.n && found < 0; i++) {
            if (log_.evs[i].req_id == req_id &&
                (type ? log_.evs[i].type == type : is_terminal(log_.evs[i].type)))
                found = i;
        }
        if (found >= 0 || pthread_cond_timedwait(&log_.cv, &log_.mu, &dl) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&log_.mu);
    return found;
}

/* A copy of the recorded event i (events are written once, under the lock). */
static ev_t ev_at(int i)
{
    pthread_mutex_lock(&log_.mu);
    ev_t e = log_.evs[i];
    pthread_mutex_unlock(&log_.mu);
    return e;
}

/* All events for req_id, in arrival order, into out (at most max). */
static int evs_for(uint64_t req_id, ev_t *out, int max)
{
    int k = 0;
    pthread_mutex_lock(&log_.mu);
    for (int i = 0; i < log_.n && k < max; i++) {
        if (log_.evs[i].req_id == req_id)
            out[k++] = log_.evs[i];
    }
    pthread_mutex_unlock(&log_.mu);
    return k;
}

static int count_for(uint64_t req_id)
{
    ev_t tmp[64];
    return evs_for(req_id, tmp, 64);
}

/* ======================================================================== */
/* fixtures                                                                 */

static cg_snap_t *config;
static cg_aid_t owner;
static cg_provider_args_t local_args = {.provider_name = "local"};
static cg_provider_args_t dead_args = {.provider_name = "dead"};
static uint64_t next_req = 1000;

static void config_free_cb(void *p)
{
    cg_config_free(p);
}

/* The test config with this provider key and X-Prov header value. */
static cg_config_t *build_config(const char *key, const char *xprov)
{
    int dead = dead_port();
    char *text = cg_sprintf(
        "{\n"
        "  models: { mode: 'replace', providers: {\n"
        "    local: {\n"
        "      baseUrl: 'http://127.0.0.1:%d/v1', apiKey: '%s', api: 'openai-completions',\n"
        "      headers: { 'X-Prov': '%s', 'X-Both': 'provider' },\n"
        "      models: [\n"
        "        { id: 'm-json', name: 'json', headers: { 'X-Model': 'm1', 'X-Both': 'model' } },\n"
        "        { id: 'm-stream', name: 'stream', compat: { supportsUsageInStreaming: true } },\n"
        "        { id: 'm-nousage', name: 'nu', compat: { supportsUsageInStreaming: false } },\n"
        "        { id: 'm-nodone', name: 'x' }, { id: 'm-slow', name: 'x' },\n"
        "        { id: 'm-429', name: 'x' }, { id: 'm-500', name: 'x' }, { id: 'm-ctx', name: 'x' "
        "},\n"
        "        { id: 'm-401', name: 'x' }, { id: 'm-garbage', name: 'x' },\n"
        "        { id: 'm-longerr', name: 'x' }, { id: 'm-keepalive', name: 'x' },\n"
        "        { id: 'm-badjson', name: 'x' }, { id: 'm-badchunk', name: 'x' },\n"
        "        { id: 'm-errevent', name: 'x' }, { id: 'm-cut', name: 'x' },\n"
        "        { id: 'm-hang', name: 'x' }, { id: 'm-idle', name: 'x' },\n"
        "        { id: 'm-missing', name: 'x' },\n"
        "        { id: 'm-anth', name: 'x', api: 'anthropic-messages' },\n"
        "      ],\n"
        "    },\n"
        "    dead: { baseUrl: 'http://127.0.0.1:%d/v1', models: [ { id: 'm-dead', name: 'd' } ] "
        "},\n"
        "  } },\n"
        "  agents: { defaults: { model: { primary: 'local/m-json' },\n"
        "    models: { 'local/m-json': { alias: 'fast' } } } },\n"
        "}\n",
        srv.port, key, xprov, dead);
    cg_config_t *c = NULL;
    cg_diags_t errs = {0}, notes = {0};
    int rc = cg_config_load_string("test.json5", text, strlen(text), NULL, &c, &errs, &notes);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "config error: %s\n", errs.items[i]);
    cg_diags_free(&errs);
    cg_diags_free(&notes);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "test config did not load\n");
        exit(2);
    }
    return c;
}

static void load_config(void)
{
    config = cg_snap_new(build_config("sk-test", "p1"), config_free_cb);
    local_args.config = config;
    dead_args.config = config;
}

static cg_aid_t spawn_provider(cg_provider_args_t *args)
{
    cg_aid_t aid = CG_AID_NONE;
    int rc = cg_actor_spawn(&cg_provider_spec, args, CG_AID_NONE, &aid);
    if (rc != 0) {
        fprintf(stderr, "spawn provider: %s\n", cg_strerror(rc));
        exit(2);
    }
    return aid;
}

static void stop_provider(cg_aid_t p)
{
    cg_actor_stop(p);
    cg_actor_join(p, NULL);
}

typedef struct req {
    const char *ref;
    bool stream;
    bool client_usage;
    const char *body; /* NULL: {"model":ref,"messages":[...],"stream":stream} */
    int64_t connect_ms, first_token_ms, idle_ms, total_ms;
    cg_aid_t reply_to;    /* 0: the shared owner */
    const char *table_of; /* non-NULL: send the member table of this document
                             (the body itself for a true one), as the http front does */
} req_t;

static int send_req(cg_aid_t prov, uint64_t id, const req_t *r)
{
    char *body = r->body ? cg_strdup(r->body)
                         : cg_sprintf("{\"model\":\"%s\",\"messages\":[{\"role\":\"user\","
                                      "\"content\":\"hi\"}],\"stream\":%s}",
                                      r->ref, r->stream ? "true" : "false");
    cg_msg_t *m;
    if (r->table_of) {
        cg_jscan_t js;
        cg_buf_t tab = {0};
        T_EQ_INT(cg_jscan_object(&js, r->table_of, strlen(r->table_of), 64, NULL), 0);
        cg_jscan_table_pack(&js, &tab);
        m = cg_msg_pack(CG_PROV_REQUEST, "sbbxiiiiibsx", r->ref, (int)r->stream,
                        (int)r->client_usage, (const void *)body, strlen(body), r->connect_ms,
                        r->first_token_ms, r->idle_ms, r->total_ms, (int64_t)CG_XAPI_CHAT, 0,
                        "chatcmpl-t", (const void *)tab.data, tab.len);
        cg_buf_free(&tab);
    } else {
        m = cg_msg_pack(CG_PROV_REQUEST, "sbbxiiii", r->ref, (int)r->stream, (int)r->client_usage,
                        (const void *)body, strlen(body), r->connect_ms, r->first_token_ms,
                        r->idle_ms, r->total_ms);
    }
    free(body);
    m->req_id = id;
    m->reply_to = r->reply_to ? r->reply_to : owner;
    int rc = cg_actor_send(prov, m);
    if (rc != 0)
        cg_msg_free(m);
    return rc;
}

/* Send and wait for the terminal message: its event. */
static ev_t run(cg_aid_t prov, const req_t *r, uint64_t *id_out)
{
    uint64_t id = next_req++;
    if (id_out)
        *id_out = id;
    if (send_req(prov, id, r) != 0) {
        ev_t none = {0};
        return none;
    }
    int i = wait_ev(id, 0);
    if (i < 0) {
        ev_t none = {0};
        return none;
    }
    return ev_at(i);
}

static cg_aid_t prov_local;

/* ======================================================================== */
/* tests                                                                    */

/* The owner's member table of the body is used instead of a scan; a table
 * that does not fit the body (a different document of the same length) is
 * refused and the body scanned: the upstream gets the same bytes either way. */
static void test_member_table_handed_over(void)
{
    static const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                              "\"model\":\"fast\",\"temperature\":0.5}";
    static const char *other = "{\"model\":\"fast\",\"temperature\":0.5,\"messages\":"
                               "[{\"role\":\"user\",\"content\":\"hi\"}]}";
    T_EQ_INT(strlen(body), strlen(other));
    const char *tables[] = {body, other};
    for (size_t i = 0; i < 2; i++) {
        int before = srv_n_recs();
        req_t r = {.ref = "fast", .body = body, .table_of = tables[i]};
        ev_t e = run(prov_local, &r, NULL);
        T_EQ_INT(e.type, CG_PROV_DONE);
        T_EQ_INT(e.status, 200);
        int ri = srv_wait_model("m-json", before);
        T_ASSERT(ri >= 0);
        T_EQ_STR(srv_rec(ri)->body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                                    "\"model\":\"m-json\",\"temperature\":0.5}");
    }
}

static void test_nonstream_json(void)
{
    int before = srv_n_recs();
    uint64_t id;
    req_t r = {.ref = "fast",
               .body = "{ \"messages\": [{\"role\":\"user\",\"content\":\"hi\"}],\n"
                       "  \"model\": \"fast\", \"temperature\": 0.5 }"};
    ev_t e = run(prov_local, &r, &id);
    T_EQ_INT(e.type, CG_PROV_DONE);
    T_EQ_INT(e.status, 200);
    T_ASSERT(e.text != NULL);
    T_EQ_STR(e.text, JSON_REPLY);
    T_EQ_INT(e.prompt, 11);
    T_EQ_INT(e.completion, 7);
    T_EQ_INT(e.cached, 3);
    T_ASSERT(e.ttft_ns > 0);
    T_EQ_INT(count_for(id), 1); /* no HEAD for non-stream, just DONE */

    int ri = srv_wait_model("m-json", before);
    T_ASSERT(ri >= 0);
    rec_t *rec = srv_rec(ri);
    T_EQ_STR(rec->path, "/v1/chat/completions");
    /* Only `model` changed; the rest is byte for byte what the client sent. */
    T_EQ_STR(rec->body, "{ \"messages\": [{\"role\":\"user\",\"content\":\"hi\"}],\n"
                        "  \"model\": \"m-json\", \"temperature\": 0.5 }");
    char *h = hdr_get(rec->headers, "Authorization");
    T_EQ_STR(h, "Bearer sk-test");
    free(h);
    h = hdr_get(rec->headers, "Content-Type");
    T_EQ_STR(h, "application/json");
    free(h);
    h = hdr_get(rec->headers, "X-Prov");
    T_EQ_STR(h, "p1");
    free(h);
    h = hdr_get(rec->headers, "X-Model");
    T_EQ_STR(h, "m1");
    free(h);
    h = hdr_get(rec->headers, "X-Both"); /* the model's header wins */
    T_EQ_STR(h, "model");
    free(h);
    h = hdr_get(rec->headers, "User-Agent");
    T_CONTAINS(h, "clawgate/");
    free(h);
    h = hdr_get(rec->headers, "Expect");
    T_ASSERT(h == NULL);
    free(h);
}

/* The header value the upstream got on its request number ri (a copy). */
static char *sent_header(int ri, const char *name)
{
    return ri >= 0 ? hdr_get(srv_rec(ri)->headers, name) : NULL;
}

/* The URL and header lines a provider keeps per model (route_for) follow the
 * model asked for, stream or not, and a new config: each request carries its
 * own model's headers, whatever the one before it had. */
static void test_route_follows_model_and_config(void)
{
    struct {
        const char *ref;
        bool stream;
        const char *model_hdr, *accept, *both;
    } seq[] = {
        {"local/m-json", false, "m1", "application/json", "model"},
        {"local/m-stream", true, NULL, "text/event-stream", "provider"},
        {"local/m-json", false, "m1", "application/json", "model"},
        {"local/m-json", true, "m1", "text/event-stream", "model"},
        {"local/m-stream", false, NULL, "application/json", "provider"},
        {"local/m-json", false, "m1", "application/json", "model"},
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(seq); i++) {
        int before = srv_n_recs();
        req_t r = {.ref = seq[i].ref, .stream = seq[i].stream};
        run(prov_local, &r, NULL);
        int ri = srv_wait_model(strchr(seq[i].ref, '/') + 1, before);
        T_ASSERTF(ri >= 0, "request %zu reached the upstream", i);
        char *h = sent_header(ri, "X-Model");
        T_ASSERTF(seq[i].model_hdr ? h && strcmp(h, seq[i].model_hdr) == 0 : h == NULL,
                  "request %zu: X-Model %s", i, h ? h : "(none)");
        free(h);
        h = sent_header(ri, "Accept");
        T_ASSERTF(h && strcmp(h, seq[i].accept) == 0, "request %zu: Accept %s", i, h ? h : "-");
        free(h);
        h = sent_header(ri, "X-Both");
        T_ASSERTF(h && strcmp(h, seq[i].both) == 0, "request %zu: X-Both %s", i, h ? h : "-");
        free(h);
    }
    /* A reload: the next request has the new key and header. */
    for (int round = 0; round < 2; round++) {
        const char *key = round == 0 ? "sk-new" : "sk-test";
        const char *xprov = round == 0 ? "p2" : "p1";
        cg_snap_publish(config, build_config(key, xprov));
        int before = srv_n_recs();
        req_t r = {.ref = "local/m-json"};
        run(prov_local, &r, NULL);
        int ri = srv_wait_model("m-json", before);
        char *want = cg_sprintf("Bearer %s", key);
        char *h = sent_header(ri, "Authorization");
        T_ASSERTF(h && strcmp(h, want) == 0, "round %d: Authorization %s", round, h ? h : "-");
        free(h);
        cg_free(want);
        h = sent_header(ri, "X-Prov");
        T_ASSERTF(h && strcmp(h, xprov) == 0, "round %d: X-Prov %s", round, h ? h : "-");
        free(h);
    }
}

/* Check a finished stream's events: HEAD first, chunks verbatim, DONE last. */
static void check_stream(uint64_t id, bool with_usage_chunk)
{
    ev_t evs[64];
    int n = evs_for(id, evs, 64);
    T_ASSERT(n >= 3);
    T_EQ_INT(evs[0].type, CG_PROV_HEAD);
    T_EQ_INT(evs[0].status, 200);
    T_EQ_STR(evs[0].text, "text/event-stream");
    int chunks = 0;
    bool saw_usage = false;
    cg_buf_t content = {0};
    for (int i = 1; i < n - 1; i++) {
        T_EQ_INT(evs[i].type, CG_PROV_CHUNK);
        T_ASSERT(strstr(evs[i].text, "[DONE]") == NULL);
        json_object *j = json_tokener_parse(evs[i].text);
        T_ASSERT(j != NULL);
        json_object *u = NULL, *ch = NULL;
        if (json_object_object_get_ex(j, "usage", &u))
            saw_usage = true;
        if (json_object_object_get_ex(j, "choices", &ch) && json_object_array_length(ch) > 0) {
            json_object *d = NULL, *c = NULL;
            if (json_object_object_get_ex(json_object_array_get_idx(ch, 0), "delta", &d) &&
                json_object_object_get_ex(d, "content", &c))
                cg_buf_puts(&content, json_object_get_string(c));
        }
        json_object_put(j);
        chunks++;
    }
    T_EQ_STR(content.data, "Hello");
    cg_buf_free(&content);
    T_EQ_INT(chunks, with_usage_chunk ? 5 : 4);
    T_EQ_INT(saw_usage, with_usage_chunk);
    ev_t d = evs[n - 1];
    T_EQ_INT(d.type, CG_PROV_DONE);
    T_EQ_INT(d.status, 200);
    T_ASSERT(d.text == NULL);
    T_EQ_INT(d.prompt, 21);
    T_EQ_INT(d.completion, 2);
    T_EQ_INT(d.cached, 5);
    T_ASSERT(d.ttft_ns > 0);
}

static void test_stream_usage_stripped(void)
{
    int before = srv_n_recs();
    uint64_t id;
    req_t r = {.ref = "local/m-stream",
               .stream = true,
               .client_usage = false,
               .body = "{\"model\":\"local/m-stream\",\"stream\":true,"
                       "\"stream_options\":{\"x_keep\":1},\"messages\":[]}"};
    ev_t e = run(prov_local, &r, &id);
    T_EQ_INT(e.type, CG_PROV_DONE);
    check_stream(id, false);

    int ri = srv_wait_model("m-stream", before);
    T_ASSERT(ri >= 0);
    rec_t *rec = srv_rec(ri);
    json_object *j = json_tokener_parse(rec->body);
    T_ASSERT(j != NULL);
    json_object *so = NULL, *iu = NULL, *keep = NULL;
    T_ASSERT(json_object_object_get_ex(j, "stream_options", &so));
    T_ASSERT(json_object_object_get_ex(so, "include_usage", &iu));
    T_ASSERT(json_object_get_boolean(iu));
    T_ASSERT(json_object_object_get_ex(so, "x_keep", &keep)); /* client's member kept */
    json_object_put(j);
    char *h = hdr_get(rec->headers, "Accept");
    T_EQ_STR(h, "text/event-stream");
    free(h);
}

static void test_stream_usage_kept(void)
{
    int before = srv_n_recs();
    uint64_t id;
    req_t r = {.ref = "local/m-stream", .stream = true, .client_usage = true};
    ev_t e = run(prov_local, &r, &id);
    T_EQ_INT(e.type, CG_PROV_DONE);
    check_stream(id, true);
    /* The client sent no stream_options: the provider added them. */
    int ri = srv_wait_model("m-stream", before);
    T_ASSERT(ri >= 0);
    T_CONTAINS(srv_rec(ri)->body, "\"stream_options\":{\"include_usage\":true}");
}

static void test_stream_without_usage_compat(void)
{
    /* supportsUsageInStreaming false: no stream_options upstream, and the
     * owner's stream flag wins over the body's. */
    int before = srv_n_recs();
    uint64_t id;
    req_t r = {.ref = "local/m-nousage",
               .stream = true,
               .body = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"hi\"}],\"stream_options\":{\"include_usage\":true}}"};
    ev_t e = run(prov_local, &r, &id);
    /* the server answers an unknown model with 404 */
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "model_not_found");
    T_EQ_INT(e.status, 404);
    T_EQ_STR(e.text, "The model does not exist");
    int ri = srv_wait_model("m-nousage", before);
    T_ASSERT(ri >= 0);
    json_object *j = json_tokener_parse(srv_rec(ri)->body);
    json_object *so = NULL, *st = NULL;
    T_ASSERT(!json_object_object_get_ex(j, "stream_options", &so));
    T_ASSERT(json_object_object_get_ex(j, "stream", &st) && json_object_get_boolean(st));
    json_object_put(j);
}

static void test_stream_done_without_marker(void)
{
    uint64_t id;
    req_t r = {.ref = "local/m-nodone", .stream = true};
    ev_t e = run(prov_local, &r, &id);
    T_EQ_INT(e.type, CG_PROV_DONE);
    T_EQ_INT(e.prompt, -1); /* no usage reported */
    ev_t evs[16];
    int n = evs_for(id, evs, 16);
    T_EQ_INT(n, 4); /* HEAD, 2 CHUNKs, DONE */
}

static void test_rate_limit(void)
{
    req_t r = {.ref = "local/m-429"};
    ev_t e = run(prov_local, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "rate_limit");
    T_EQ_INT(e.status, 429);
    T_EQ_INT(e.retry_after_ms, 7000);
    T_EQ_STR(e.text, "Rate limit reached for requests");
    T_EQ_INT(e.any_output, 0);
}

static void test_server_error(void)
{
    req_t r = {.ref = "local/m-500", .stream = true};
    ev_t e = run(prov_local, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "timeout");
    T_EQ_INT(e.status, 500);
    T_EQ_STR(e.text, "boom: the GPU fell over");
}

static void test_context_overflow(void)
{
    req_t r = {.ref = "local/m-ctx"};
    ev_t e = run(prov_local, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "context_overflow");
    T_EQ_INT(e.status, 400);
    T_CONTAINS(e.text, "maximum context length");
}

static void test_auth_plain_body(void)
{
    req_t r = {.ref = "local/m-401"};
    ev_t e = run(prov_local, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "auth");
    T_EQ_INT(e.status, 401);
    T_EQ_STR(e.text, "bad key   go away"); /* excerpt, control bytes blanked */
}

static void test_long_error_message(void)
{
    req_t r = {.ref = "local/m-longerr"};
    ev_t e = run(prov_local, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "format");
    T_EQ_INT(e.status, 422);
    size_t n = strlen(e.text);
    T_ASSERT(n <= 1024 && n > 1000);
    T_EQ_STR(e.text + n - 3, "...");
    T_CONTAINS(e.text, "\xc3\xa9tag "); /* \u00e9 decoded to UTF-8 */
    /* cut on a character boundary: valid JSON once quoted means valid UTF-8 */
    cg_buf_t q = {0};
    cg_json_quote(&q, e.text, n);
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
    json_object *j = json_tokener_parse_ex(tok, q.data, (int)q.len);
    T_ASSERT(j != NULL);
    json_object_put(j);
    json_tokener_free(tok);
    cg_buf_free(&q);
}

static void test_garbage(void)
{
    req_t r = {.ref = "local/m-garbage", .stream = true};
    ev_t e = run(prov_local, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "unknown");
    T_EQ_INT(e.status, 200);
    T_CONTAINS(e.text, "It works!");
    T_EQ_INT(e.any_output, 0);

    req_t r2 = {.ref = "local/m-badjson"};
    e = run(prov_local, &r2, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "unknown");
    T_CONTAINS(e.text, "upstream sent invalid JSON at byte ");

    uint64_t id;
    req_t r3 = {.ref = "local/m-badchunk", .stream = true};
    e = run(prov_local, &r3, &id);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "unknown");
    T_CONTAINS(e.text, "not JSON");
    T_EQ_INT(e.any_output, 1);
    T_ASSERT(wait_ev(id, CG_PROV_CHUNK) >= 0);
}

static void test_error_event_in_stream(void)
{
    req_t r = {.ref = "local/m-errevent", .stream = true};
    ev_t e = run(prov_local, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "context_overflow");
    T_EQ_STR(e.text, "maximum context length is 4096 tokens");
    T_EQ_INT(e.any_output, 0);
}

static void test_stream_cut(void)
{
    uint64_t id;
    req_t r = {.ref = "local/m-cut", .stream = true};
    ev_t e = run(prov_local, &r, &id);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "timeout");
    T_CONTAINS(e.text, "upstream stream cut before [DONE]");
    T_EQ_INT(e.any_output, 1);
    ev_t evs[16];
    int n = evs_for(id, evs, 16);
    /* HEAD, 2 CHUNKs, the client-format error event that closes the
     * client's stream (translator), FAIL */
    T_EQ_INT(n, 5);
    T_EQ_INT(evs[3].type, CG_PROV_CHUNK);
}

static void test_refused(void)
{
    cg_aid_t dead = spawn_provider(&dead_args);
    req_t r = {.ref = "dead/m-dead", .stream = true};
    ev_t e = run(dead, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "timeout");
    T_EQ_INT(e.status, 0);
    T_CONTAINS(e.text, "onnect");
    T_EQ_INT(e.any_output, 0);
    stop_provider(dead);
}

static void test_first_token_timeout(void)
{
    int closed = srv_peer_closed();
    req_t r = {.ref = "local/m-hang", .stream = true, .first_token_ms = 300, .total_ms = 5000};
    ev_t e = run(prov_local, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "timeout");
    T_EQ_STR(e.text, "no first token within 300 ms");
    T_EQ_INT(e.any_output, 0);
    /* The transfer was really dropped: the server saw the connection go. */
    T_ASSERT(srv_wait_peer_closed(closed + 1));
}

static void test_first_token_timeout_keepalive(void)
{
    /* Comments keep the connection busy but are no token. */
    int closed = srv_peer_closed();
    req_t r = {.ref = "local/m-keepalive",
               .stream = true,
               .first_token_ms = 300,
               .idle_ms = 5000,
               .total_ms = 5000};
    ev_t e = run(prov_local, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "timeout");
    T_EQ_STR(e.text, "no first token within 300 ms");
    T_EQ_INT(e.status, 200);
    T_EQ_INT(e.any_output, 0);
    T_ASSERT(srv_wait_peer_closed(closed + 1));
}

static void test_idle_timeout(void)
{
    int closed = srv_peer_closed();
    uint64_t id;
    req_t r = {.ref = "local/m-idle", .stream = true, .idle_ms = 300, .total_ms = 5000};
    ev_t e = run(prov_local, &r, &id);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "timeout");
    T_EQ_STR(e.text, "stream idle for 300 ms");
    T_EQ_INT(e.any_output, 1);
    T_ASSERT(srv_wait_peer_closed(closed + 1));
}

static void test_total_timeout(void)
{
    req_t r = {.ref = "local/m-hang", .total_ms = 300, .first_token_ms = -1};
    ev_t e = run(prov_local, &r, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "timeout");
    T_CONTAINS(e.text, "imed out");
}

static void test_resolution_failures(void)
{
    /* (anthropic-messages models are served through the translator now.) */
    req_t r2 = {.ref = "nope/nothing"};
    ev_t e = run(prov_local, &r2, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "model_not_found");

    req_t r3 = {.ref = "dead/m-dead"}; /* another provider's model */
    e = run(prov_local, &r3, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "model_not_found");
    T_CONTAINS(e.text, "belongs to provider 'dead'");

    req_t r4 = {.ref = "local/m-json", .body = "{\"model\": \"x\", }"};
    e = run(prov_local, &r4, NULL);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "format");
    T_CONTAINS(e.text, "not valid JSON at byte");

    /* A REQUEST that does not decode. */
    uint64_t id = next_req++;
    cg_msg_t *m = cg_msg_pack(CG_PROV_REQUEST, "s", "local/m-json");
    m->req_id = id;
    m->reply_to = owner;
    T_EQ_INT(cg_actor_send(prov_local, m), 0);
    int i = wait_ev(id, 0);
    T_ASSERT(i >= 0);
    e = ev_at(i);
    T_EQ_STR(e.cls, "format");
}

static void test_connection_reuse(void)
{
    cg_aid_t p = spawn_provider(&local_args);
    int acc = srv_accepted();
    for (int i = 0; i < 3; i++) {
        req_t r = {.ref = "local/m-json"};
        ev_t e = run(p, &r, NULL);
        T_EQ_INT(e.type, CG_PROV_DONE);
    }
    T_EQ_INT(srv_accepted() - acc, 1);
    stop_provider(p);
}

static void test_concurrent_streams(void)
{
    uint64_t ids[8];
    for (int i = 0; i < 8; i++) {
        ids[i] = next_req++;
        req_t r = {.ref = "local/m-stream", .stream = true, .client_usage = (i & 1) != 0};
        T_EQ_INT(send_req(prov_local, ids[i], &r), 0);
    }
    for (int i = 0; i < 8; i++) {
        int k = wait_ev(ids[i], 0);
        T_ASSERT(k >= 0);
        T_EQ_INT(ev_at(k).type, CG_PROV_DONE);
        check_stream(ids[i], (i & 1) != 0);
    }
}

static void test_cancel(void)
{
    int closed = srv_peer_closed();
    int before = srv_n_recs();
    uint64_t id = next_req++;
    /* total_ms beyond WAIT_MS: only the cancel can close the connection in time. */
    req_t r = {.ref = "local/m-hang", .stream = true, .first_token_ms = -1, .total_ms = 30000};
    T_EQ_INT(send_req(prov_local, id, &r), 0);
    T_ASSERT(srv_wait_model("m-hang", before) >= 0);
    cg_msg_t *m = cg_msg_new(CG_PROV_CANCEL, NULL, 0);
    m->req_id = id;
    m->reply_to = owner;
    T_EQ_INT(cg_actor_send(prov_local, m), 0);
    T_ASSERT(srv_wait_peer_closed(closed + 1));
    /* A later request's answer arrives after anything the cancelled one
     * could have produced: the provider handles messages in order. */
    req_t r2 = {.ref = "local/m-json"};
    ev_t e = run(prov_local, &r2, NULL);
    T_EQ_INT(e.type, CG_PROV_DONE);
    T_EQ_INT(count_for(id), 0);
}

static void test_owner_gone(void)
{
    cg_aid_t o2 = CG_AID_NONE;
    T_EQ_INT(cg_actor_spawn(&owner_spec, NULL, CG_AID_NONE, &o2), 0);
    int closed = srv_peer_closed();
    uint64_t id = next_req++;
    req_t r = {.ref = "local/m-slow", .stream = true, .reply_to = o2};
    T_EQ_INT(send_req(prov_local, id, &r), 0);
    T_ASSERT(wait_ev(id, CG_PROV_CHUNK) >= 0);
    cg_actor_stop(o2);
    cg_actor_join(o2, NULL);
    /* The provider notices at its next send and drops the transfer. */
    T_ASSERT(srv_wait_peer_closed(closed + 1));
    req_t r2 = {.ref = "local/m-json"};
    T_EQ_INT(run(prov_local, &r2, NULL).type, CG_PROV_DONE);
}

static void test_owner_full(void)
{
    cg_aid_t o = CG_AID_NONE;
    pthread_mutex_lock(&stuck.mu); /* the suite runs once per transport */
    stuck.released = false;
    stuck.handled = 0;
    pthread_mutex_unlock(&stuck.mu);
    T_EQ_INT(cg_actor_spawn(&stuck_spec, NULL, CG_AID_NONE, &o), 0);
    int closed = srv_peer_closed();
    uint64_t id = next_req++;
    req_t r = {.ref = "local/m-slow", .stream = true, .reply_to = o, .total_ms = 8000};
    T_EQ_INT(send_req(prov_local, id, &r), 0);
    /* HEAD is handled (and blocks the owner), two more fill its mailbox, the
     * next send finds it full: the provider drops the transfer instead of
     * waiting, and the upstream sees the connection close. */
    bool ok = srv_wait_peer_closed(closed + 1);
    pthread_mutex_lock(&stuck.mu);
    stuck.released = true;
    pthread_cond_broadcast(&stuck.cv);
    pthread_mutex_unlock(&stuck.mu);
    cg_actor_stop(o);
    cg_actor_join(o, NULL);
    T_ASSERT(ok);
    pthread_mutex_lock(&stuck.mu);
    int handled = stuck.handled;
    pthread_mutex_unlock(&stuck.mu);
    T_ASSERT(handled <= 3); /* never the 12 chunks and DONE */
    /* The provider is unharmed. */
    req_t r2 = {.ref = "local/m-json"};
    T_EQ_INT(run(prov_local, &r2, NULL).type, CG_PROV_DONE);
}

static void test_graceful_stop(void)
{
    cg_aid_t p = spawn_provider(&local_args);
    int before = srv_n_recs();
    uint64_t slow = next_req++;
    req_t r = {.ref = "local/m-slow", .stream = true};
    T_EQ_INT(send_req(p, slow, &r), 0);
    T_ASSERT(srv_wait_model("m-slow", before) >= 0);
    T_EQ_INT(cg_actor_stop(p), 0);
    uint64_t late = next_req++;
    req_t r2 = {.ref = "local/m-json"};
    T_EQ_INT(send_req(p, late, &r2), 0);
    int i = wait_ev(late, 0);
    T_ASSERT(i >= 0);
    ev_t e = ev_at(i);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "unknown");
    T_EQ_STR(e.text, "provider shutting down");
    i = wait_ev(slow, 0);
    T_ASSERT(i >= 0);
    T_EQ_INT(ev_at(i).type, CG_PROV_DONE); /* the in-flight stream finished */
    int reason = -1;
    T_EQ_INT(cg_actor_join(p, &reason), 0);
    T_EQ_INT(reason, CG_EXIT_SHUTDOWN);
}

static void test_crash_hook(void)
{
    cg_aid_t p = spawn_provider(&local_args);
    int before = srv_n_recs();
    uint64_t hang = next_req++, idle = next_req++;
    req_t r1 = {.ref = "local/m-hang", .stream = true, .first_token_ms = -1, .total_ms = 8000};
    req_t r2 = {.ref = "local/m-idle", .stream = true, .idle_ms = -1, .total_ms = 8000};
    T_EQ_INT(send_req(p, hang, &r1), 0);
    T_EQ_INT(send_req(p, idle, &r2), 0);
    T_ASSERT(srv_wait_model("m-hang", before) >= 0);
    T_ASSERT(wait_ev(idle, CG_PROV_CHUNK) >= 0);
    T_EQ_INT(cg_actor_send(p, cg_msg_new(CG_MSG_CRASH, NULL, 0)), 0);
    int i = wait_ev(hang, 0);
    T_ASSERT(i >= 0);
    ev_t e = ev_at(i);
    T_EQ_INT(e.type, CG_PROV_FAIL);
    T_EQ_STR(e.cls, "aborted"); /* not the upstream's fault: no cooldown */
    T_EQ_STR(e.text, "provider actor stopped");
    T_EQ_INT(e.any_output, 0);
    i = wait_ev(idle, 0);
    T_ASSERT(i >= 0);
    e = ev_at(i);
    T_EQ_STR(e.cls, "aborted");
    T_EQ_STR(e.text, "provider actor stopped");
    T_EQ_INT(e.any_output, 1);
    int reason = -1;
    T_EQ_INT(cg_actor_join(p, &reason), 0);
    T_EQ_INT(reason, CG_EXIT_CRASH);
}

typedef struct walk {
    cg_buf_t log;
    int n;
} walk_t;

static void walk_ev(void *ud, const char *event, size_t event_len, const char *data, size_t len)
{
    walk_t *w = ud;
    cg_buf_printf(&w->log, "[%.*s|%.*s]", (int)event_len, event, (int)len, data);
    w->n++;
}

/* The CHUNK walker: the pairs in order, every kind of length header, and
 * every truncation or corruption of a payload refused without reading
 * past it (ASan checks the reads: each cut payload is its own allocation). */
static void test_chunk_payload(void)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char big[70000];
    memset(big, 'x', sizeof big);
    msgpack_pack_array(&pk, 8);
    msgpack_pack_bin(&pk, 2);
    msgpack_pack_bin_body(&pk, "{}", 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_str(&pk, 3); /* data as str is accepted too */
    msgpack_pack_str_body(&pk, "abc", 3);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "delta", 5);
    msgpack_pack_bin(&pk, 300); /* bin16 */
    msgpack_pack_bin_body(&pk, big, 300);
    msgpack_pack_str(&pk, 40); /* str8 */
    msgpack_pack_str_body(&pk, big, 40);
    msgpack_pack_bin(&pk, sizeof big); /* bin32 */
    msgpack_pack_bin_body(&pk, big, sizeof big);
    msgpack_pack_nil(&pk);
    cg_msg_t *m = cg_msg_new(CG_PROV_CHUNK, sb.data, sb.size);
    walk_t w = {0};
    T_EQ_INT(cg_prov_chunk_events(m, walk_ev, &w), 0);
    T_EQ_INT(w.n, 4);
    T_ASSERT(strncmp(w.log.data, "[|{}][delta|abc][", 17) == 0);
    cg_buf_free(&w.log);
    cg_msg_free(m);
    for (size_t cut = 0; cut < sb.size; cut++) {
        m = cg_msg_new(CG_PROV_CHUNK, sb.data, cut);
        walk_t wc = {0};
        T_EQ_INT(cg_prov_chunk_events(m, walk_ev, &wc), CG_EINVAL);
        T_ASSERT(wc.n <= 4);
        cg_buf_free(&wc.log);
        cg_msg_free(m);
        if (cut > 400)
            cut += 997; /* the long bin32 body: every thousandth cut is enough */
    }
    /* Odd counts, a nil where data must be, a number, trailing bytes. */
    static const char *const bad[] = {"\x91\xc0", "\x92\xc0\xc0", "\x92\x01\xc0",
                                      "\x92\xc4\x01x\xc0\xc0", "\x93\xc4\x01x\xc0"};
    static const size_t bad_len[] = {2, 3, 3, 6, 5};
    for (size_t i = 0; i < CG_ARRAY_LEN(bad); i++) {
        m = cg_msg_new(CG_PROV_CHUNK, bad[i], bad_len[i]);
        walk_t wb = {0};
        T_EQ_INT(cg_prov_chunk_events(m, walk_ev, &wb), CG_EINVAL);
        cg_buf_free(&wb.log);
        cg_msg_free(m);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_heartbeat(void)
{
    uint64_t id = next_req++;
    cg_msg_t *m = cg_msg_new(CG_MSG_TICK, NULL, 0);
    m->req_id = id;
    m->reply_to = owner;
    T_EQ_INT(cg_actor_send(prov_local, m), 0);
    T_ASSERT(wait_ev(id, CG_MSG_TICK) >= 0);
}

static void test_all_decoded(void)
{
    pthread_mutex_lock(&log_.mu);
    int bad = log_.bad;
    pthread_mutex_unlock(&log_.mu);
    T_EQ_INT(bad, 0);
}

/* The whole suite against one transport: the built-in HTTP/1.1 client
 * (actors/h1.h, what plain http:// upstreams use) or libcurl (forced with
 * CLAWGATE_HTTP_CLIENT=curl; what https:// upstreams use). */
static void run_suite(const char *client)
{
    printf("# provider transport: %s\n", client);
    setenv("CLAWGATE_HTTP_CLIENT", client, 1);
    prov_local = spawn_provider(&local_args);
    T_RUN(test_nonstream_json);
    T_RUN(test_route_follows_model_and_config);
    T_RUN(test_member_table_handed_over);
    T_RUN(test_stream_usage_stripped);
    T_RUN(test_stream_usage_kept);
    T_RUN(test_stream_without_usage_compat);
    T_RUN(test_stream_done_without_marker);
    T_RUN(test_rate_limit);
    T_RUN(test_server_error);
    T_RUN(test_context_overflow);
    T_RUN(test_auth_plain_body);
    T_RUN(test_long_error_message);
    T_RUN(test_garbage);
    T_RUN(test_error_event_in_stream);
    T_RUN(test_stream_cut);
    T_RUN(test_refused);
    T_RUN(test_first_token_timeout);
    T_RUN(test_first_token_timeout_keepalive);
    T_RUN(test_idle_timeout);
    T_RUN(test_total_timeout);
    T_RUN(test_resolution_failures);
    T_RUN(test_connection_reuse);
    T_RUN(test_concurrent_streams);
    T_RUN(test_cancel);
    T_RUN(test_owner_gone);
    T_RUN(test_owner_full);
    T_RUN(test_graceful_stop);
    T_RUN(test_crash_hook);
    T_RUN(test_heartbeat);
    T_RUN(test_all_decoded);

    stop_provider(prov_local);
}

int main(void)
{
    if (getenv("CG_TEST_DEBUG"))
        cg_log_set_level(CG_LOG_DEBUG);
    else
        cg_log_set_level(CG_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cg_actor_enable_test_hooks(true);
    srv_start();
    load_config();
    if (cg_actor_spawn(&owner_spec, NULL, CG_AID_NONE, &owner) != 0)
        return 2;
    T_RUN(test_chunk_payload);
    run_suite("builtin");
    run_suite("curl");

    cg_actor_stop(owner);
    cg_actor_join(owner, NULL);
    srv_stop();
    cg_snap_free(config);
    pthread_mutex_lock(&log_.mu);
    for (int i = 0; i < log_.n; i++) {
        free(log_.evs[i].text);
        free(log_.evs[i].cls);
    }
    pthread_mutex_unlock(&log_.mu);
    curl_global_cleanup();
    T_DONE();
}
