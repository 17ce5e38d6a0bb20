/*
 * cg.c — allocation, assertions, byte buffers, clocks and logging.
 */
#include "cg.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static _Noreturn void oom(size_t n)
{
    fprintf(stderr, "clawgate: out of memory allocating %zu bytes\n", n);
    abort();
}

void *cg_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *cg_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *cg_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *cg_strdup(const char *s)
{
    return cg_strndup(s, strlen(s));
}

char *cg_strndup(const char *s, size_t n)
{
    char *d = cg_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *cg_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return out;
}

_Noreturn void cg_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "clawgate: assertion failed: %s (%s:%d, %s)\n", expr, file, line, func);
    abort();
}

const char *cg_strerror(int rc)
{
    switch (rc) {
    case CG_OK:
        return "ok";
    case CG_ERR:
        return "failed";
    case CG_ENOMEM:
        return "resource exhausted";
    case CG_EFULL:
        return "queue full";
    case CG_EINVAL:
        return "invalid argument";
    case CG_ENOENT:
        return "not found";
    case CG_ECLOSED:
        return "closed";
    case CG_EIO:
        return "i/o error";
    case CG_ETIMEDOUT:
        return "timed out";
    case CG_ELIMIT:
        return "over limit";
    default:
        return "unknown error";
    }
}

/* ---- cg_buf ---- */

void cg_buf_reserve(cg_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = cg_realloc(b->data, cap);
    b->cap = cap;
}

void cg_buf_append(cg_buf_t *b, const void *p, size_t n)
{
    cg_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cg_buf_puts(cg_buf_t *b, const char *s)
{
    cg_buf_append(b, s, strlen(s));
}

void cg_buf_printf(cg_buf_t *b, const char *fmt, ...)
{
    /* Formatted into the room there is; a second pass only when it did not
     * fit (formatting twice, to measure first, doubled the cost). */
    cg_buf_reserve(b, 63);
    size_t room = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(b->data + b->len, room, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= room) {
        cg_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    if (n < 0) {
        b->data[b->len] = '\0'; /* what the failed call may have written is dropped */
        return;
    }
    b->len += (size_t)n;
}

void cg_buf_put_u64(cg_buf_t *b, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do {
        d[sizeof d - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    cg_buf_append(b, d + sizeof d - n, n);
}

void cg_buf_put_i64(cg_buf_t *b, int64_t v)
{
    if (v < 0) {
        cg_buf_append(b, "-", 1);
        cg_buf_put_u64(b, (uint64_t)0 - (uint64_t)v); /* INT64_MIN included */
        return;
    }
    cg_buf_put_u64(b, (uint64_t)v);
}

void cg_buf_consume(cg_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = '\0';
}

void cg_buf_reset(cg_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void cg_buf_free(cg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *cg_buf_steal(cg_buf_t *b, size_t *len)
{
    cg_buf_reserve(b, 0);
    b->data[b->len] = '\0';
    char *d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

/* ---- time ---- */

uint64_t cg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t cg_now_ms(void)
{
    return cg_now_ns() / 1000000ull;
}

int64_t cg_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- logging ----
 * One line per event, written with a single write(2) so lines from different
 * actors never interleave. The level is read relaxed: a late change of level
 * reaching a thread a little later is harmless. */

static int log_level = CG_LOG_INFO;

void cg_log_set_level(cg_log_level_t lvl)
{
    __atomic_store_n(&log_level, (int)lvl, __ATOMIC_RELAXED);
}

cg_log_level_t cg_log_get_level(void)
{
    return (cg_log_level_t)__atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void cg_log(cg_log_level_t lvl, const char *fmt, ...)
{
    if ((int)lvl < __atomic_load_n(&log_level, __ATOMIC_RELAXED))
        return;
    static const char *names[] = {"debug", "info", "notice", "warn", "error"};
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

uint64_t cg_fnv1a64(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void cg_efd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one);
    (void)r;
}

void cg_grow_zeroed(void **arr, size_t *cap, size_t i, size_t elem)
{
    if (i < *cap)
        return;
    size_t n = *cap ? *cap : 64;
    while (n <= i)
        n *= 2;
    *arr = cg_realloc(*arr, n * elem);
    memset((char *)*arr + *cap * elem, 0, (n - *cap) * elem);
    *cap = n;
}
