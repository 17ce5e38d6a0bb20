/*
 * h1resp.h — incremental parser for one HTTP/1.1 response (status line,
 * headers, body), for the gateway's own upstream client (actors/h1.h).
 *
 * DESIGN
 * Bytes come in arbitrary pieces. The head (status line and header lines up
 * to the blank line) is buffered, bounded by CG_H1RESP_HEAD_CAP, and parsed
 * once whole; the body is never buffered: each piece goes to the caller's
 * callback as it arrives, de-chunked, straight from the caller's read buffer.
 * Interim 1xx heads are skipped. The body's end is known from
 * Transfer-Encoding: chunked (the last coding), else Content-Length, else the
 * connection's close (cg_h1resp_eof); 1xx, 204 and 304 replies have none.
 * Only what the gateway uses is kept from the head: status, Content-Type,
 * Retry-After (seconds), and whether the connection can carry another
 * request. Line ends are CRLF or a bare LF, as real servers send both.
 *
 * Strictness follows from what a wrong guess costs: a response whose framing
 * is ambiguous (two different Content-Lengths, a malformed chunk size, a
 * head over the cap) is an error, because reading it wrong would splice one
 * reply's bytes into the next reply on a reused connection.
 */
#ifndef CG_H1RESP_H
#define CG_H1RESP_H

#include "common/cg.h"

#define CG_H1RESP_HEAD_CAP ((size_t)64 * 1024)

/* cg_h1resp_feed's results besides errors (< 0, message in r->err). */
enum {
    CG_H1RESP_MORE = 0,  /* the response goes on: feed more */
    CG_H1RESP_DONE = 1,  /* complete; bytes past *used belong to no response */
    CG_H1RESP_ABORT = 2, /* the body callback said stop */
};

/* One piece of the body. Return false to stop reading (feed returns
 * CG_H1RESP_ABORT). p is valid during the call only. */
typedef bool (*cg_h1resp_body_cb)(void *ud, const char *p, size_t n);

typedef struct cg_h1resp {
    int state;
    cg_buf_t head;         /* the unfinished head; then the unfinished chunk-size line */
    long status;           /* 0 until the final head is parsed */
    int minor;             /* HTTP/1.x */
    bool keep_alive;       /* the connection may carry another request after this */
    bool chunked;          /* Transfer-Encoding: chunked */
    bool until_close;      /* the body ends when the connection closes */
    int64_t length;        /* Content-Length, -1 if none */
    uint64_t left;         /* bytes left in the body or the current chunk */
    int64_t retry_after_s; /* Retry-After in seconds, -1 if none (or an HTTP date) */
    char content_type[128];
    uint64_t body_bytes; /* delivered to the callback */
    char err[160];
} cg_h1resp_t;

void cg_h1resp_init(cg_h1resp_t *r);
/* Back to the start, keeping buffers: for the next response on a connection. */
void cg_h1resp_reset(cg_h1resp_t *r);
void cg_h1resp_free(cg_h1resp_t *r);

/* Feed bytes. *used: how many were consumed (all of them unless DONE or an
 * error). Returns CG_H1RESP_MORE, _DONE, _ABORT, or CG_EINVAL (malformed;
 * r->err says how). Feeding after DONE or an error returns the same again. */
int cg_h1resp_feed(cg_h1resp_t *r, const char *p, size_t n, size_t *used, cg_h1resp_body_cb cb,
                   void *ud);

/* The connection closed. CG_H1RESP_DONE if that ends the response (a body
 * delimited by the close), else CG_EINVAL with r->err saying what was cut. */
int cg_h1resp_eof(cg_h1resp_t *r);

/* The final head has been parsed: status and the headers are known. */
bool cg_h1resp_head_done(const cg_h1resp_t *r);

#endif
