/*
 * test_h1resp.c — the incremental HTTP/1.1 response parser: framing (length,
 * chunked, close), interim heads, the headers it keeps, every error, and
 * split invariance (the same reply cut at every point parses the same).
 */
#include "proto/h1resp.h"
#include "tests/t.h"

typedef struct sink {
    cg_buf_t body;
    size_t stop_at; /* say stop once this many bytes arrived; 0 = never */
} sink_t;

static bool on_body(void *ud, const char *p, size_t n)
{
    sink_t *s = ud;
    T_ASSERT(n > 0);
    cg_buf_append(&s->body, p, n);
    return !(s->stop_at && s->body.len >= s->stop_at);
}

typedef struct res {
    int rc;      /* the last feed's (or eof's) result */
    size_t used; /* bytes consumed in all */
    char body[4096];
    size_t body_len;
} res_t;

/* Feed s in pieces cut at cuts[0..ncuts); then, if eof and the reply is not
 * complete, the connection's close. r gets the outcome; p stays for checks. */
static void run(cg_h1resp_t *p, const char *s, size_t len, const size_t *cuts, size_t ncuts,
                bool eof, size_t stop_at, res_t *out)
{
    sink_t sk = {.stop_at = stop_at};
    cg_h1resp_init(p);
    size_t at = 0;
    int rc = CG_H1RESP_MORE;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i <= ncuts && rc == CG_H1RESP_MORE; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        size_t used = 0;
        rc = cg_h1resp_feed(p, s + at, to - at, &used, on_body, &sk);
        T_ASSERT(used <= to - at);
        if (rc == CG_H1RESP_MORE)
            T_EQ_INT(used, to - at);
        out->used += used;
        at = to;
    }
    if (rc == CG_H1RESP_MORE && eof)
        rc = cg_h1resp_eof(p);
    out->rc = rc;
    T_ASSERT(sk.body.len < sizeof out->body);
    if (sk.body.len)
        memcpy(out->body, sk.body.data, sk.body.len);
    out->body_len = sk.body.len;
    out->body[out->body_len] = '\0';
    cg_buf_free(&sk.body);
}

static void parse(cg_h1resp_t *p, const char *s, bool eof, res_t *out)
{
    run(p, s, strlen(s), NULL, 0, eof, 0, out);
}

static void test_content_length(void)
{
    cg_h1resp_t p;
    res_t r;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
                    "X-Other: y\r\n\r\nhelloEXTRA";
    parse(&p, s, false, &r);
    T_EQ_INT(r.rc, CG_H1RESP_DONE);
    T_EQ_STR(r.body, "hello");
    T_EQ_INT(r.used, strlen(s) - 5); /* EXTRA is not part of the reply */
    T_EQ_INT(p.status, 200);
    T_ASSERT(p.keep_alive);
    T_EQ_STR(p.content_type, "application/json");
    T_EQ_INT(p.retry_after_s, -1);
    T_EQ_INT(p.length, 5);
    cg_h1resp_free(&p);
}

static void test_chunked(void)
{
    cg_h1resp_t p;
    res_t r;
    const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n"
                    "Content-Length: 99\r\n\r\n" /* TE wins over CL */
                    "5;name=value\r\nhello\r\nB \r\n big world!\r\n0\r\nX-Trailer: 1\r\n\r\n";
    parse(&p, s, false, &r);
    T_EQ_INT(r.rc, CG_H1RESP_DONE);
    T_EQ_STR(r.body, "hello big world!");
    T_EQ_INT(r.used, strlen(s));
    T_ASSERT(p.chunked);
    T_ASSERT(p.keep_alive);
    cg_h1resp_free(&p);
}

static void test_until_close(void)
{
    cg_h1resp_t p;
    res_t r;
    parse(&p, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n", false, &r);
    T_EQ_INT(r.rc, CG_H1RESP_MORE);
    T_EQ_STR(r.body, "data: 1\n\n");
    T_ASSERT(!p.keep_alive);
    T_EQ_INT(cg_h1resp_eof(&p), CG_H1RESP_DONE);
    cg_h1resp_free(&p);
    /* A transfer coding that is not chunked: also delimited by the close. */
    parse(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", true, &r);
    T_EQ_INT(r.rc, CG_H1RESP_DONE);
    T_EQ_STR(r.body, "xyz");
    cg_h1resp_free(&p);
}

static void test_interim_and_empty(void)
{
    cg_h1resp_t p;
    res_t r;
    const char *s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
                    "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n";
    parse(&p, s, false, &r);
    T_EQ_INT(r.rc, CG_H1RESP_DONE);
    T_EQ_INT(p.status, 204);
    T_EQ_INT(r.body_len, 0);
    T_EQ_INT(r.used, strlen(s));
    cg_h1resp_free(&p);
    parse(&p, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", false, &r);
    T_EQ_INT(r.rc, CG_H1RESP_DONE);
    T_EQ_INT(p.status, 500);
    cg_h1resp_free(&p);
}

static void test_connection_and_versions(void)
{
    cg_h1resp_t p;
    res_t r;
    parse(&p, "HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n",
          false, &r);
    T_EQ_INT(r.rc, CG_H1RESP_DONE);
    T_ASSERT(!p.keep_alive);
    cg_h1resp_free(&p);
    parse(&p, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, &r);
    T_ASSERT(!p.keep_alive);
    cg_h1resp_free(&p);
    parse(&p, "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false, &r);
    T_ASSERT(p.keep_alive);
    T_EQ_INT(p.minor, 0);
    cg_h1resp_free(&p);
    /* Bare LF line ends, no reason phrase. */
    parse(&p, "HTTP/1.1 429\nRetry-After: 7\nContent-Length: 2\n\nno", false, &r);
    T_EQ_INT(r.rc, CG_H1RESP_DONE);
    T_EQ_INT(p.status, 429);
    T_EQ_INT(p.retry_after_s, 7);
    T_EQ_STR(r.body, "no");
    cg_h1resp_free(&p);
    /* Retry-After as a date in the past: now. */
    parse(&p,
          "HTTP/1.1 503 x\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
          "Content-Length: 0\r\n\r\n",
          false, &r);
    T_EQ_INT(p.retry_after_s, 0);
    cg_h1resp_free(&p);
    parse(&p, "HTTP/1.1 503 x\r\nRetry-After: soon\r\nContent-Length: 0\r\n\r\n", false, &r);
    T_EQ_INT(p.retry_after_s, -1);
    cg_h1resp_free(&p);
    /* A long Content-Type is cut, not overflowed. */
    char big[600];
    int n = snprintf(big, sizeof big,
                     "HTTP/1.1 200 OK\r\nContent-Type: %0300d\r\n"
                     "Content-Length: 0\r\n\r\n",
                     0);
    T_ASSERT(n > 0);
    parse(&p, big, false, &r);
    T_EQ_INT(strlen(p.content_type), sizeof p.content_type - 1);
    cg_h1resp_free(&p);
}

/* Each malformed reply: CG_EINVAL, a message containing `why`, and the same
 * answer for every later feed. */
static void bad(const char *s, bool eof, const char *why)
{
    cg_h1resp_t p;
    res_t r;
    parse(&p, s, eof, &r);
    T_ASSERTF(r.rc == CG_EINVAL, "'%s': rc %d", s, r.rc);
    T_CONTAINS(p.err, why);
    size_t used = 0;
    T_EQ_INT(cg_h1resp_feed(&p, "x", 1, &used, on_body, NULL), CG_EINVAL);
    cg_h1resp_free(&p);
}

static void test_errors(void)
{
    bad("SSH-2.0-OpenSSH\r\n\r\n", false, "not an HTTP/1.x status line");
    bad("HTTP/2 200\r\n\r\n", false, "status line");
    bad("HTTP/1.1 20 OK\r\n\r\n", false, "status line");
    bad("HTTP/1.1 200OK\r\n\r\n", false, "status line");
    bad("HTTP/1.1 101 Switching\r\n\r\n", false, "switched protocols");
    bad("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false, "conflicting");
    bad("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", false, "Content-Length");
    bad("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, "Content-Length");
    bad("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", false, "Content-Length");
    bad("HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", false, "malformed header line");
    bad("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", false, "malformed header line");
    bad("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", false, "malformed header name");
    bad("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", false, "folding");
    bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, "chunk size");
    bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n", false, "chunk size");
    bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", false,
        "too large");
    bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", false,
        "missing line end");
    /* Cut by the connection's close. */
    bad("", true, "before any response");
    bad("HTTP/1.1 200 OK\r\nContent-", true, "inside the response head");
    bad("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true, "7 of 10 body bytes missing");
    bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", true, "chunked body");

    /* A head over the cap. */
    cg_buf_t b = {0};
    cg_buf_puts(&b, "HTTP/1.1 200 OK\r\n");
    while (b.len <= CG_H1RESP_HEAD_CAP)
        cg_buf_puts(&b, "X-Filler: 0123456789012345678901234567890123456789\r\n");
    cg_buf_puts(&b, "\r\n");
    bad(b.data, false, "larger than");
    cg_buf_free(&b);
    /* A chunk-size line over its cap. */
    cg_buf_puts(&b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;");
    for (int i = 0; i < 5000; i++)
        cg_buf_puts(&b, "x");
    bad(b.data, false, "too long");
    cg_buf_free(&b);
}

static void test_abort(void)
{
    cg_h1resp_t p;
    res_t r;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    run(&p, s, strlen(s), NULL, 0, false, 3, &r);
    T_EQ_INT(r.rc, CG_H1RESP_ABORT);
    size_t used = 0;
    T_EQ_INT(cg_h1resp_feed(&p, "x", 1, &used, on_body, NULL), CG_H1RESP_ABORT);
    T_EQ_INT(cg_h1resp_eof(&p), CG_H1RESP_ABORT);
    cg_h1resp_free(&p);
}

/* Reset keeps the parser usable for the next reply on the connection. */
static void test_reset_reuse(void)
{
    cg_h1resp_t p;
    res_t r;
    parse(&p, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", false, &r);
    T_EQ_INT(r.rc, CG_H1RESP_DONE);
    cg_h1resp_reset(&p);
    T_ASSERT(!cg_h1resp_head_done(&p));
    sink_t sk = {0};
    size_t used = 0;
    const char *s = "HTTP/1.1 404 Nope\r\nContent-Length: 2\r\n\r\nno";
    T_EQ_INT(cg_h1resp_feed(&p, s, strlen(s), &used, on_body, &sk), CG_H1RESP_DONE);
    T_EQ_INT(p.status, 404);
    T_EQ_INT(sk.body.len, 2);
    cg_buf_free(&sk.body);
    cg_h1resp_free(&p);
}

/* Every 2-way and 3-way cut of each sample gives the one-piece outcome. */
static void test_split_invariance(void)
{
    static const char *const samples[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n10;e\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n",
        "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n1\nx\n0\n\n",
        "HTTP/1.1 200 OK\r\n\r\ndata: {}\n\ndata: [DONE]\n\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
        "HTTP/1.1 502 Bad\r\nContent-Length: 3\r\n\r\nbad",
    };
    for (size_t k = 0; k < CG_ARRAY_LEN(samples); k++) {
        const char *s = samples[k];
        size_t len = strlen(s);
        cg_h1resp_t p;
        res_t one, other;
        run(&p, s, len, NULL, 0, true, 0, &one);
        cg_h1resp_free(&p);
        for (size_t a = 0; a <= len; a++) {
            for (size_t b = a; b <= len; b += (len / 7) + 1) {
                size_t cuts[2] = {a, b};
                run(&p, s, len, cuts, 2, true, 0, &other);
                cg_h1resp_free(&p);
                T_ASSERTF(other.rc == one.rc && other.used == one.used &&
                              other.body_len == one.body_len &&
                              memcmp(other.body, one.body, one.body_len) == 0,
                          "sample %zu cut at %zu,%zu: rc %d/%d used %zu/%zu body '%s'/'%s'", k, a,
                          b, other.rc, one.rc, other.used, one.used, other.body, one.body);
            }
        }
    }
}

int main(void)
{
    T_RUN(test_content_length);
    T_RUN(test_chunked);
    T_RUN(test_until_close);
    T_RUN(test_interim_and_empty);
    T_RUN(test_connection_and_versions);
    T_RUN(test_errors);
    T_RUN(test_abort);
    T_RUN(test_reset_reuse);
    T_RUN(test_split_invariance);
    T_DONE();
}
