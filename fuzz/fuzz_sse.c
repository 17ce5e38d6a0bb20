/*
 * fuzz_sse.c — differential oracle for the incremental SSE parser.
 *
 * Input: byte 0 and 1 pick two cut points, byte 2 the event bound, the rest
 * is the stream. The stream is parsed in one piece, in three pieces and
 * byte by byte; the event transcripts, return codes and pending states must
 * be identical (abort otherwise). Each run also checks the parser's own
 * promises: memory within the bound, no CR in delivered fields, no LF in
 * an event name.
 */
#include "proto/sse.h"

#include <stdint.h>

typedef struct tx {
    cg_buf_t log;
} tx_t;

static int on_event(void *ud, const char *ev, size_t ev_len, const char *data, size_t data_len)
{
    tx_t *t = ud;
    if (memchr(ev, '\r', ev_len) || memchr(ev, '\n', ev_len) || memchr(data, '\r', data_len))
        abort();
    /* Length-prefixed, so no two different transcripts can collide. */
    cg_buf_append(&t->log, &ev_len, sizeof(ev_len));
    cg_buf_append(&t->log, ev, ev_len);
    cg_buf_append(&t->log, &data_len, sizeof(data_len));
    cg_buf_append(&t->log, data, data_len);
    return 0;
}

typedef struct result {
    cg_buf_t log;
    int rc;
    bool pending;
} result_t;

static void check_bound(const cg_sse_t *p)
{
    if (p->line.len > p->max_event_bytes || p->data.len + p->event.len > p->max_event_bytes)
        abort();
}

static result_t run(const uint8_t *s, size_t len, size_t max, const size_t *cuts, size_t ncuts)
{
    cg_sse_t p;
    tx_t t = {0};
    cg_sse_init(&p, max);
    int rc = 0;
    size_t at = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        rc = cg_sse_feed(&p, (const char *)s + at, to - at, on_event, &t);
        check_bound(&p);
        at = to;
    }
    result_t r = {.log = t.log, .rc = rc, .pending = cg_sse_pending(&p)};
    cg_sse_free(&p);
    return r;
}

static void same(const result_t *a, const result_t *b)
{
    if (a->rc != b->rc || a->pending != b->pending || a->log.len != b->log.len ||
        (a->log.len && memcmp(a->log.data, b->log.data, a->log.len) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const uint8_t *s = data + 3;
    size_t len = size - 3;
    /* Small bounds exercise CG_ELIMIT; 255 stands for "large". */
    size_t max = data[2] == 255 ? (size_t)1 << 20 : (size_t)data[2] + 1;
    size_t c1 = len ? data[0] % (len + 1) : 0, c2 = len ? data[1] % (len + 1) : 0;
    size_t cuts[2] = {c1 < c2 ? c1 : c2, c1 < c2 ? c2 : c1};

    result_t one = run(s, len, max, NULL, 0);
    result_t three = run(s, len, max, cuts, 2);
    same(&one, &three);
    size_t *every = cg_malloc((len + 1) * sizeof(size_t));
    for (size_t i = 0; i < len; i++)
        every[i] = i + 1;
    result_t bytes = run(s, len, max, every, len ? len - 1 : 0);
    same(&one, &bytes);
    cg_free(every);
    cg_buf_free(&one.log);
    cg_buf_free(&three.log);
    cg_buf_free(&bytes.log);
    return 0;
}
