/*
 * h1resp.c — incremental HTTP/1.1 response parser (see h1resp.h).
 */
#include "proto/h1resp.h"

#include <strings.h>
#include <time.h>

#define LINE_CAP 4096 /* a chunk-size line or the CRLF after a chunk */

enum {
    S_HEAD,
    S_BODY_LEN,
    S_BODY_CLOSE,
    S_CHUNK_SIZE,
    S_CHUNK_DATA,
    S_CHUNK_END,
    S_TRAILERS,
    S_DONE,
    S_ERROR,
    S_ABORT,
};

void cg_h1resp_init(cg_h1resp_t *r)
{
    memset(r, 0, sizeof *r);
    cg_h1resp_reset(r);
}

void cg_h1resp_reset(cg_h1resp_t *r)
{
    cg_buf_t head = r->head;
    memset(r, 0, sizeof *r);
    r->head = head;
    cg_buf_reset(&r->head);
    r->state = S_HEAD;
    r->length = -1;
    r->retry_after_s = -1;
}

void cg_h1resp_free(cg_h1resp_t *r)
{
    cg_buf_free(&r->head);
}

bool cg_h1resp_head_done(const cg_h1resp_t *r)
{
    return r->status != 0;
}

static int fail(cg_h1resp_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(cg_h1resp_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->state = S_ERROR;
    return CG_EINVAL;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* s[0..n) without leading and trailing spaces and tabs. */
static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_ows(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_ows((*s)[*n - 1]))
        (*n)--;
}

static bool token_eq(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Digits only, at most 18 of them (no overflow); -1 otherwise. */
static int64_t parse_decimal(const char *s, size_t n)
{
    if (n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Retry-After: delay-seconds or an IMF-fixdate; seconds from now, or -1. */
static int64_t parse_retry_after(const char *s, size_t n)
{
    int64_t v = parse_decimal(s, n);
    if (v >= 0)
        return v;
    char date[64];
    if (n >= sizeof date)
        return -1;
    memcpy(date, s, n);
    date[n] = '\0';
    struct tm tm = {0};
    const char *end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    time_t when = timegm(&tm);
    time_t now = time(NULL);
    return when > now ? (int64_t)(when - now) : 0;
}

/* For each comma-separated token of a header value. */
static bool list_has(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        const char *t = s + i;
        size_t tn = j - i;
        trim(&t, &tn);
        if (token_eq(t, tn, word))
            return true;
        i = j + 1;
    }
    return false;
}

static bool last_token_is(const char *s, size_t n, const char *word)
{
    size_t i = n;
    while (i > 0 && s[i - 1] != ',')
        i--;
    const char *t = s + i;
    size_t tn = n - i;
    trim(&t, &tn);
    return token_eq(t, tn, word);
}

/* The status line: "HTTP/1.x SSS[ reason]". */
static int parse_status_line(cg_h1resp_t *r, const char *s, size_t n, long *status)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ' ||
        s[9] < '1' || s[9] > '9' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' ||
        (n > 12 && s[12] != ' ')) {
        size_t show = n < 40 ? n : 40;
        char shown[48];
        for (size_t i = 0; i < show; i++)
            shown[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        shown[show] = '\0';
        return fail(r, "not an HTTP/1.x status line: '%s'", shown);
    }
    r->minor = s[7] - '0';
    *status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    return 0;
}

/* A whole head in h[0..n) (ends with its blank line). Sets the framing. */
static int parse_head(cg_h1resp_t *r, const char *h, size_t n)
{
    long status = 0;
    bool conn_close = false, conn_keep = false, te = false, te_chunked = false;
    int64_t length = -1;
    size_t i = 0;
    bool first = true;
    while (i < n) {
        const char *nl = memchr(h + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - h) : n;
        size_t len = end - i;
        const char *line = h + i;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        i = end + 1;
        if (first) {
            first = false;
            if (parse_status_line(r, line, len, &status) < 0)
                return CG_EINVAL;
            continue;
        }
        if (len == 0)
            break; /* the blank line */
        if (is_ows(line[0]))
            return fail(r, "obsolete header line folding");
        const char *colon = memchr(line, ':', len);
        if (!colon || colon == line)
            return fail(r, "malformed header line");
        const char *name = line;
        size_t name_len = (size_t)(colon - line);
        for (size_t k = 0; k < name_len; k++) {
            if ((unsigned char)name[k] <= ' ' || name[k] == 0x7f)
                return fail(r, "malformed header name");
        }
        const char *val = colon + 1;
        size_t val_len = len - name_len - 1;
        trim(&val, &val_len);
        if (token_eq(name, name_len, "content-length")) {
            int64_t v = -1;
            /* "5, 5" is a repeated header folded by a proxy: fine if all agree. */
            size_t a = 0;
            while (a <= val_len) {
                size_t b = a;
                while (b < val_len && val[b] != ',')
                    b++;
                const char *t = val + a;
                size_t tn = b - a;
                trim(&t, &tn);
                int64_t one = parse_decimal(t, tn);
                if (one < 0 || (v >= 0 && one != v))
                    return fail(r, "invalid Content-Length");
                v = one;
                a = b + 1;
            }
            if (length >= 0 && v != length)
                return fail(r, "conflicting Content-Length headers");
            length = v;
        } else if (token_eq(name, name_len, "transfer-encoding")) {
            te = true;
            te_chunked = last_token_is(val, val_len, "chunked");
        } else if (token_eq(name, name_len, "connection")) {
            conn_close = conn_close || list_has(val, val_len, "close");
            conn_keep = conn_keep || list_has(val, val_len, "keep-alive");
        } else if (token_eq(name, name_len, "content-type")) {
            size_t k = val_len < sizeof r->content_type - 1 ? val_len : sizeof r->content_type - 1;
            memcpy(r->content_type, val, k);
            r->content_type[k] = '\0';
        } else if (token_eq(name, name_len, "retry-after")) {
            r->retry_after_s = parse_retry_after(val, val_len);
        }
    }

    if (status == 101)
        return fail(r, "upstream switched protocols (101) unasked");
    if (status < 200) { /* interim (100 Continue, 103 Early Hints): the real head follows */
        cg_h1resp_reset(r);
        return 0;
    }
    r->status = status;
    r->keep_alive = r->minor >= 1 ? !conn_close : conn_keep && !conn_close;
    if (status == 204 || status == 304) {
        r->state = S_DONE;
    } else if (te) {
        r->chunked = te_chunked;
        r->until_close = !te_chunked;
        r->state = te_chunked ? S_CHUNK_SIZE : S_BODY_CLOSE;
    } else if (length >= 0) {
        r->length = length;
        r->left = (uint64_t)length;
        r->state = length == 0 ? S_DONE : S_BODY_LEN;
    } else {
        r->until_close = true;
        r->state = S_BODY_CLOSE;
    }
    if (r->until_close)
        r->keep_alive = false;
    return 0;
}

/* Head bytes from p[0..n): consumes up to and including the blank line. */
static int feed_head(cg_h1resp_t *r, const char *p, size_t n, size_t *used)
{
    size_t old = r->head.len;
    size_t take = n;
    if (take > CG_H1RESP_HEAD_CAP - old)
        take = CG_H1RESP_HEAD_CAP - old;
    cg_buf_append(&r->head, p, take);
    const char *h = r->head.data;
    for (size_t i = old; i < r->head.len; i++) {
        const char *nl = memchr(h + i, '\n', r->head.len - i);
        if (!nl)
            break;
        i = (size_t)(nl - h);
        bool blank =
            (i >= 1 && h[i - 1] == '\n') || (i >= 2 && h[i - 1] == '\r' && h[i - 2] == '\n');
        if (!blank)
            continue;
        size_t end = i + 1;
        *used = end - old;
        int rc = parse_head(r, h, end);
        if (r->state != S_ERROR && r->status == 0) /* an interim head: parse_head reset r */
            return rc;
        cg_buf_reset(&r->head);
        return rc;
    }
    *used = take;
    if (r->head.len >= CG_H1RESP_HEAD_CAP)
        return fail(r, "response head larger than %zu KB", CG_H1RESP_HEAD_CAP >> 10);
    return 0;
}

/* One line (chunk size, chunk end, trailer) from p[0..n) into r->head.
 * true with the line (without its line end) in r->head once complete. */
static bool take_line(cg_h1resp_t *r, const char *p, size_t n, size_t *i, size_t cap, bool *over)
{
    const char *nl = memchr(p + *i, '\n', n - *i);
    size_t end = nl ? (size_t)(nl - p) : n;
    size_t k = end - *i;
    *over = false;
    if (r->head.len + k > cap) {
        *over = true;
        return false;
    }
    cg_buf_append(&r->head, p + *i, k);
    *i = nl ? end + 1 : n;
    if (!nl)
        return false;
    if (r->head.len > 0 && r->head.data[r->head.len - 1] == '\r')
        r->head.len--;
    return true;
}

static int parse_chunk_size(cg_h1resp_t *r, const char *s, size_t n, uint64_t *size)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < n && cg_hexval(s[i]) >= 0) {
        if (i == 15)
            return fail(r, "chunk size too large");
        v = v << 4 | (uint64_t)cg_hexval(s[i]);
        i++;
    }
    if (i == 0)
        return fail(r, "malformed chunk size");
    while (i < n && is_ows(s[i]))
        i++;
    if (i < n && s[i] != ';')
        return fail(r, "malformed chunk size");
    *size = v;
    return 0;
}

static int deliver(cg_h1resp_t *r, const char *p, size_t k, cg_h1resp_body_cb cb, void *ud)
{
    if (k == 0)
        return 0;
    r->body_bytes += k;
    if (cb && !cb(ud, p, k)) {
        r->state = S_ABORT;
        return CG_H1RESP_ABORT;
    }
    return 0;
}

int cg_h1resp_feed(cg_h1resp_t *r, const char *p, size_t n, size_t *used, cg_h1resp_body_cb cb,
                   void *ud)
{
    size_t i = 0;
    int rc = CG_H1RESP_MORE;
    bool over = false;
    while (rc == CG_H1RESP_MORE) {
        switch (r->state) {
        case S_HEAD: {
            if (i == n)
                goto out;
            size_t u = 0;
            if (feed_head(r, p + i, n - i, &u) < 0) {
                i += u;
                rc = CG_EINVAL;
                goto out;
            }
            i += u;
            break;
        }
        case S_BODY_LEN: {
            size_t k = n - i;
            if (k > r->left)
                k = (size_t)r->left;
            r->left -= k;
            if (r->left == 0)
                r->state = S_DONE;
            rc = deliver(r, p + i, k, cb, ud);
            i += k;
            if (rc == 0 && r->state != S_DONE && i == n)
                goto out;
            break;
        }
        case S_BODY_CLOSE:
            rc = deliver(r, p + i, n - i, cb, ud);
            i = n;
            goto out;
        case S_CHUNK_SIZE: {
            if (i == n)
                goto out;
            if (!take_line(r, p, n, &i, LINE_CAP, &over)) {
                if (over) {
                    rc = fail(r, "chunk size line too long");
                    goto out;
                }
                break;
            }
            uint64_t size = 0;
            if (parse_chunk_size(r, r->head.data, r->head.len, &size) < 0) {
                rc = CG_EINVAL;
                goto out;
            }
            cg_buf_reset(&r->head);
            r->left = size;
            r->state = size == 0 ? S_TRAILERS : S_CHUNK_DATA;
            break;
        }
        case S_CHUNK_DATA: {
            size_t k = n - i;
            if (k > r->left)
                k = (size_t)r->left;
            r->left -= k;
            if (r->left == 0)
                r->state = S_CHUNK_END;
            rc = deliver(r, p + i, k, cb, ud);
            i += k;
            if (rc == 0 && i == n)
                goto out;
            break;
        }
        case S_CHUNK_END:
            if (i == n)
                goto out;
            if (!take_line(r, p, n, &i, 1, &over)) {
                if (over) {
                    rc = fail(r, "missing line end after a chunk");
                    goto out;
                }
                break;
            }
            if (r->head.len != 0) {
                rc = fail(r, "missing line end after a chunk");
                goto out;
            }
            r->state = S_CHUNK_SIZE;
            break;
        case S_TRAILERS:
            if (i == n)
                goto out;
            if (!take_line(r, p, n, &i, CG_H1RESP_HEAD_CAP, &over)) {
                if (over) {
                    rc = fail(r, "trailer too long");
                    goto out;
                }
                break;
            }
            if (r->head.len == 0)
                r->state = S_DONE;
            cg_buf_reset(&r->head);
            break;
        case S_DONE:
            rc = CG_H1RESP_DONE;
            goto out;
        case S_ABORT:
            rc = CG_H1RESP_ABORT;
            goto out;
        case S_ERROR:
        default:
            rc = CG_EINVAL;
            goto out;
        }
        if (rc == 0 && r->state == S_DONE)
            rc = CG_H1RESP_DONE;
    }
out:
    *used = i;
    return rc;
}

int cg_h1resp_eof(cg_h1resp_t *r)
{
    switch (r->state) {
    case S_DONE:
    case S_BODY_CLOSE:
        r->state = S_DONE;
        return CG_H1RESP_DONE;
    case S_HEAD:
        if (r->head.len == 0 && r->status == 0)
            return fail(r, "connection closed before any response");
        return fail(r, "connection closed inside the response head");
    case S_BODY_LEN:
        return fail(r, "connection closed with %llu of %lld body bytes missing",
                    (unsigned long long)r->left, (long long)r->length);
    case S_ERROR:
        return CG_EINVAL;
    case S_ABORT:
        return CG_H1RESP_ABORT;
    default:
        return fail(r, "connection closed inside a chunked body");
    }
}
