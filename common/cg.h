/*
 * cg.h — the few things every clawgate module shares.
 *
 * DESIGN
 * Allocation policy (the one for the whole project): memory exhaustion is not a
 * recoverable condition for a gateway that holds other people's streams, so the
 * cg_* allocators abort with a message instead of returning NULL. Every caller
 * may therefore use the result without a NULL check. What *is* recoverable —
 * a body over a limit, a full mailbox, a bad config — is bounded by explicit
 * limits checked before allocating, and reported as an error value.
 *
 * Return convention: 0 for success, a negative CG_E* code for failure. Error
 * detail for people goes into a caller-provided buffer or a structured error.
 *
 * Invariants: cg_assert() stays on in every build (it is cheap and a gateway
 * that continues on a broken invariant corrupts other tenants' traffic).
 */
#ifndef CG_H
#define CG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CG_VERSION "0.1.0"

/* Error codes: always negative. */
enum {
    CG_OK = 0,
    CG_ERR = -1,       /* generic failure, detail elsewhere */
    CG_ENOMEM = -2,    /* a bounded resource ran out (not malloc: that aborts) */
    CG_EFULL = -3,     /* mailbox or queue full: the caller decides */
    CG_EINVAL = -4,    /* bad argument or bad input */
    CG_ENOENT = -5,    /* no such thing (actor, model, key) */
    CG_ECLOSED = -6,   /* target is stopping or stopped */
    CG_EIO = -7,       /* system call failed, errno kept */
    CG_ETIMEDOUT = -8, /* a deadline passed */
    CG_ELIMIT = -9,    /* input exceeds a configured limit */
};

const char *cg_strerror(int rc);

/* ---- allocation (abort on exhaustion; see DESIGN) ---- */
void *cg_malloc(size_t n);
void *cg_calloc(size_t nmemb, size_t size);
void *cg_realloc(void *p, size_t n);
char *cg_strdup(const char *s);
char *cg_strndup(const char *s, size_t n);
char *cg_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void cg_free(void *p)
{
    free(p);
}

/* ---- invariants ---- */
_Noreturn void cg_assert_fail(const char *expr, const char *file, int line, const char *func);
#define cg_assert(e) ((e) ? (void)0 : cg_assert_fail(#e, __FILE__, __LINE__, __func__))

#define CG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CG_UNUSED(x) ((void)(x))

/* ---- growable byte buffer ---- */
typedef struct cg_buf {
    char *data;
    size_t len;
    size_t cap;
} cg_buf_t;

void cg_buf_reserve(cg_buf_t *b, size_t extra);
void cg_buf_append(cg_buf_t *b, const void *p, size_t n);
void cg_buf_puts(cg_buf_t *b, const char *s);
void cg_buf_printf(cg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Decimal digits of v (what "%llu" / "%lld" print), without printf. */
void cg_buf_put_u64(cg_buf_t *b, uint64_t v);
void cg_buf_put_i64(cg_buf_t *b, int64_t v);
void cg_buf_consume(cg_buf_t *b, size_t n); /* drop n bytes from the front */
void cg_buf_reset(cg_buf_t *b);             /* len = 0, keep memory */
void cg_buf_free(cg_buf_t *b);
/* Detach the data (NUL-terminated) and leave the buffer empty. */
char *cg_buf_steal(cg_buf_t *b, size_t *len);

/* Make *arr (of elem-byte items, *cap of them) hold index i: grow it by
 * doubling (from 64) and zero the new items. Tables indexed by fd. */
void cg_grow_zeroed(void **arr, size_t *cap, size_t i, size_t elem);

/* Add 1 to an eventfd (wake whoever polls it). A full counter (2^64-2) is
 * already readable, so the only failure needs no handling. */
void cg_efd_signal(int fd);

/* 64-bit FNV-1a of n bytes (hashes and checksums, not for secrets). */
uint64_t cg_fnv1a64(const void *p, size_t n);

/* The value of one hex digit (either case), or -1. Inline: scanners call it
 * per byte. */
static inline int cg_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ---- time ---- */
uint64_t cg_now_ns(void); /* CLOCK_MONOTONIC */
uint64_t cg_now_ms(void);
int64_t cg_wall_ms(void); /* CLOCK_REALTIME, ms since epoch */

/* ---- logging ---- */
typedef enum { CG_LOG_DEBUG, CG_LOG_INFO, CG_LOG_NOTICE, CG_LOG_WARN, CG_LOG_ERROR } cg_log_level_t;
void cg_log_set_level(cg_log_level_t lvl);
cg_log_level_t cg_log_get_level(void);
void cg_log(cg_log_level_t lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define cg_debug(...) cg_log(CG_LOG_DEBUG, __VA_ARGS__)
#define cg_info(...) cg_log(CG_LOG_INFO, __VA_ARGS__)
#define cg_notice(...) cg_log(CG_LOG_NOTICE, __VA_ARGS__)
#define cg_warn(...) cg_log(CG_LOG_WARN, __VA_ARGS__)
#define cg_error(...) cg_log(CG_LOG_ERROR, __VA_ARGS__)

#endif
