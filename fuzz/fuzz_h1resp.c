/*
 * fuzz_h1resp.c — differential oracle for the HTTP/1.1 response parser.
 *
 * Input: bytes 0 and 1 pick two cut points, the rest is what an upstream
 * sent before closing the connection. It is parsed in one piece, in three
 * pieces and byte by byte; outcome, bytes consumed (on success), body
 * transcript and the parsed head must be identical (abort otherwise). Each run also checks the
 * parser's promises: it never consumes more than it was given, delivers no
 * more body than it consumed, keeps its head buffer within the cap, and a
 * complete reply has a final status.
 */
#include "proto/h1resp.h"

#include <stdint.h>

typedef struct result {
    cg_buf_t body;
    int rc;
    size_t used;
    long status;
    bool keep_alive;
    int64_t retry_after;
    char content_type[128];
} result_t;

static bool on_body(void *ud, const char *p, size_t n)
{
    result_t *r = ud;
    if (n == 0)
        abort();
    cg_buf_append(&r->body, p, n);
    return true;
}

static result_t run(const uint8_t *s, size_t len, const size_t *cuts, size_t ncuts)
{
    cg_h1resp_t p;
    result_t r = {0};
    cg_h1resp_init(&p);
    int rc = CG_H1RESP_MORE;
    size_t at = 0;
    for (size_t i = 0; i <= ncuts && rc == CG_H1RESP_MORE; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        size_t used = 0;
        rc = cg_h1resp_feed(&p, (const char *)s + at, to - at, &used, on_body, &r);
        if (used > to - at || (rc == CG_H1RESP_MORE && used != to - at))
            abort();
        if (p.head.len > CG_H1RESP_HEAD_CAP)
            abort();
        r.used += used;
        at = to;
    }
    if (rc == CG_H1RESP_MORE)
        rc = cg_h1resp_eof(&p);
    if (r.body.len > r.used || (rc == CG_H1RESP_DONE && p.status < 200))
        abort();
    if (rc < 0 && !p.err[0])
        abort();
    r.rc = rc;
    r.status = p.status;
    r.keep_alive = p.keep_alive;
    r.retry_after = p.retry_after_s;
    memcpy(r.content_type, p.content_type, sizeof r.content_type);
    cg_h1resp_free(&p);
    return r;
}

static void same(const result_t *a, const result_t *b)
{
    /* After an error the connection is dropped: where in the piece the
     * parser stopped does not matter, so `used` is compared only on success. */
    if (a->rc != b->rc || (a->rc >= 0 && a->used != b->used) || a->status != b->status ||
        a->keep_alive != b->keep_alive || a->body.len != b->body.len ||
        strcmp(a->content_type, b->content_type) != 0 ||
        (a->body.len && memcmp(a->body.data, b->body.data, a->body.len) != 0))
        abort();
    /* A Retry-After date counts down with the clock: compare only delays. */
    if (a->retry_after != b->retry_after && (a->retry_after < 0 || b->retry_after < 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const uint8_t *s = data + 2;
    size_t len = size - 2;
    size_t c1 = len ? data[0] % (len + 1) : 0, c2 = len ? data[1] % (len + 1) : 0;
    size_t cuts[2] = {c1 < c2 ? c1 : c2, c1 < c2 ? c2 : c1};

    result_t one = run(s, len, NULL, 0);
    result_t three = run(s, len, cuts, 2);
    same(&one, &three);
    size_t *every = cg_malloc((len + 1) * sizeof(size_t));
    for (size_t i = 0; i < len; i++)
        every[i] = i + 1;
    result_t bytes = run(s, len, every, len ? len - 1 : 0);
    same(&one, &bytes);
    cg_free(every);
    cg_buf_free(&one.body);
    cg_buf_free(&three.body);
    cg_buf_free(&bytes.body);
    return 0;
}
