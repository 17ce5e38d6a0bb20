/*
 * sse.c — incremental text/event-stream parser (contract in sse.h).
 *
 * DESIGN
 * A feed is cut into lines where they end (CR, LF or CRLF). A line that is
 * complete inside the piece is interpreted in place, without a copy; only the
 * unfinished tail of a piece is kept in p->line until its end arrives. A CR
 * that ends a piece sets last_was_cr so an LF opening the next piece is taken
 * as the second half of that CRLF and not as an empty line (which would
 * dispatch an event too early).
 *
 * The bound is defined on things that do not depend on how the stream was
 * cut, so a stream fed in one piece and the same stream fed byte by byte
 * deliver the same events and fail at the same point: (1) no single line may
 * be longer than max_event_bytes (checked on the buffered tail as it grows,
 * and on a whole line when it ends), (2) the event's data plus event field
 * may not exceed max_event_bytes. Memory therefore stays under about twice
 * the bound whatever the upstream sends. The error is sticky: after
 * CG_ELIMIT the stream is unusable (its framing can no longer be trusted).
 *
 * Steady state: the three buffers are reset, never freed, between events, so
 * after the first few events parsing allocates nothing.
 */
#include "proto/sse.h"

void cg_sse_init(cg_sse_t *p, size_t max_event_bytes)
{
    cg_assert(max_event_bytes > 0);
    memset(p, 0, sizeof(*p));
    p->max_event_bytes = max_event_bytes;
}

void cg_sse_free(cg_sse_t *p)
{
    cg_buf_free(&p->line);
    cg_buf_free(&p->data);
    cg_buf_free(&p->event);
}

bool cg_sse_pending(const cg_sse_t *p)
{
    /* After CG_ELIMIT an event was cut short by us: still "pending". */
    return p->error != 0 || p->line.len > 0 || p->has_data || p->event.len > 0;
}

static void reset_event(cg_sse_t *p)
{
    cg_buf_reset(&p->data);
    cg_buf_reset(&p->event);
    p->has_data = false;
}

/* The stream is over the bound: remember it and give the memory back now,
 * as the caller may keep the parser until the connection is torn down. */
static int over_limit(cg_sse_t *p)
{
    cg_sse_free(p);
    p->has_data = false;
    p->error = CG_ELIMIT;
    return CG_ELIMIT;
}

/* Interpret one complete line (without its line end). Returns 0, a
 * callback's stop value, or CG_ELIMIT with p->error set (a callback may
 * return CG_ELIMIT too; only p->error makes it sticky). */
static int process_line(cg_sse_t *p, const char *s, size_t n, cg_sse_cb cb, void *ud)
{
    if (n > p->max_event_bytes)
        return over_limit(p);
    if (!p->bom_checked) {
        /* The BOM can only open the stream, i.e. the first line. */
        p->bom_checked = true;
        if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            n -= 3;
        }
    }
    if (n == 0) {
        int rc = 0;
        if (p->has_data) {
            const char *ev = p->event.len ? p->event.data : "";
            const char *data = p->data.len ? p->data.data : "";
            rc = cb(ud, ev, p->event.len, data, p->data.len);
        }
        reset_event(p);
        return rc < 0 ? rc : 0;
    }
    if (s[0] == ':')
        return 0; /* comment (keep-alive pings) */

    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : n;
    const char *val = colon ? colon + 1 : s + n;
    size_t val_len = (size_t)(s + n - val);
    if (val_len > 0 && val[0] == ' ') {
        val++;
        val_len--;
    }

    if (name_len == 4 && memcmp(s, "data", 4) == 0) {
        size_t add = val_len + (p->has_data ? 1 : 0);
        if (p->data.len + p->event.len + add > p->max_event_bytes)
            return over_limit(p);
        if (p->has_data)
            cg_buf_append(&p->data, "\n", 1);
        cg_buf_append(&p->data, val, val_len);
        p->has_data = true;
    } else if (name_len == 5 && memcmp(s, "event", 5) == 0) {
        if (p->data.len + val_len > p->max_event_bytes)
            return over_limit(p);
        cg_buf_reset(&p->event);
        cg_buf_append(&p->event, val, val_len);
    }
    /* "id", "retry" and unknown fields are ignored, as the spec says. */
    return 0;
}

/* First CR or LF in s[0..n), or NULL. Two memchr passes beat a byte loop:
 * SSE lines are mostly JSON, long and free of CR. */
static const char *find_eol(const char *s, size_t n)
{
    const char *lf = memchr(s, '\n', n);
    size_t lim = lf ? (size_t)(lf - s) : n;
    const char *cr = memchr(s, '\r', lim);
    return cr ? cr : lf;
}

int cg_sse_feed(cg_sse_t *p, const char *buf, size_t len, cg_sse_cb cb, void *ud)
{
    if (p->error)
        return p->error;
    const char *s = buf, *end = buf + len;
    if (len > 0 && p->last_was_cr) {
        p->last_was_cr = false;
        if (*s == '\n')
            s++;
    }
    while (s < end) {
        const char *eol = find_eol(s, (size_t)(end - s));
        if (!eol) {
            /* Unfinished line: keep it, within the bound. */
            size_t n = (size_t)(end - s);
            if (p->line.len + n > p->max_event_bytes)
                return over_limit(p);
            cg_buf_append(&p->line, s, n);
            break;
        }
        int rc;
        if (p->line.len > 0) {
            size_t n = (size_t)(eol - s);
            if (p->line.len + n > p->max_event_bytes)
                return over_limit(p);
            cg_buf_append(&p->line, s, n);
            rc = process_line(p, p->line.data, p->line.len, cb, ud);
            cg_buf_reset(&p->line);
        } else {
            rc = process_line(p, s, (size_t)(eol - s), cb, ud);
        }
        if (p->error)
            return p->error;
        s = eol + 1;
        if (*eol == '\r') {
            if (s == end)
                p->last_was_cr = true; /* the LF, if any, is in the next piece */
            else if (*s == '\n')
                s++;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}
