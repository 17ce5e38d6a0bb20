/*
 * sse.h — incremental parser for text/event-stream (server-sent events).
 *
 * DESIGN
 * Upstream bytes arrive in arbitrary pieces: an event, a line, even a CRLF
 * pair may be split across reads. The parser keeps only the unfinished
 * event, bounded by max_event_bytes, and calls back once per complete event
 * (blank line). Lines: "field: value" (one optional space after the colon
 * is dropped), ":comment" ignored, "data" lines joined with '\n', "event"
 * kept, "id"/"retry" ignored; line ends CRLF, LF or CR. A leading UTF-8 BOM
 * is skipped.
 */
#ifndef CG_SSE_H
#define CG_SSE_H

#include "common/cg.h"

/* Called per complete event that has at least one data line. event is the
 * `event:` field ("" when absent). Pointers are valid during the call only.
 * Return 0 to go on, < 0 to stop: cg_sse_feed then returns that value. */
typedef int (*cg_sse_cb)(void *ud, const char *event, size_t event_len, const char *data,
                         size_t data_len);

typedef struct cg_sse {
    cg_buf_t line;  /* the unfinished line */
    cg_buf_t data;  /* data lines of the unfinished event */
    cg_buf_t event; /* event field of the unfinished event */
    size_t max_event_bytes;
    bool has_data;
    bool last_was_cr; /* a CR ended the previous piece: a following LF belongs to it */
    bool bom_checked;
    int error; /* sticky: once CG_ELIMIT was returned, every later feed returns it */
} cg_sse_t;

/* max_event_bytes > 0 bounds both one line (raw, without its line end) and
 * the event's accumulated data + event fields; memory stays within ~2x that. */
void cg_sse_init(cg_sse_t *p, size_t max_event_bytes);
/* 0, a callback's negative value, or CG_ELIMIT when an event grows past the
 * bound (the parser is then unusable). A callback's stop drops the rest of
 * that piece: it means the caller is done with the stream. */
int cg_sse_feed(cg_sse_t *p, const char *buf, size_t len, cg_sse_cb cb, void *ud);
/* True if bytes of an unfinished event are pending: at end of stream, that
 * means the upstream was cut mid-event. Also true after CG_ELIMIT. */
bool cg_sse_pending(const cg_sse_t *p);
void cg_sse_free(cg_sse_t *p);

#endif
