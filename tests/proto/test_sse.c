/*
 * test_sse.c — the incremental SSE parser: framing, fields, splits, bounds.
 *
 * The central check is split invariance: a stream fed in one piece, byte by
 * byte, and cut at every possible 2-way point must produce the same events,
 * return code and pending state. Events are recorded as one transcript
 * string ("<event>|<data>\n" each) so comparing runs is one strcmp.
 */
#include "proto/sse.h"
#include "tests/t.h"

typedef struct rec {
    cg_buf_t log;
    int n;
    int stop_after;                     /* stop (return -42) after this many events; 0 = never */
    const char *last_data, *last_event; /* where the parser's buffers were */
    int moves;                          /* times they moved between events */
} rec_t;

static int on_event(void *ud, const char *ev, size_t ev_len, const char *data, size_t data_len)
{
    rec_t *r = ud;
    if (r->n > 0 && (data != r->last_data || ev != r->last_event))
        r->moves++;
    r->last_data = data;
    r->last_event = ev;
    cg_buf_append(&r->log, "[", 1);
    cg_buf_append(&r->log, ev, ev_len);
    cg_buf_append(&r->log, "|", 1);
    cg_buf_append(&r->log, data, data_len);
    cg_buf_append(&r->log, "]", 1);
    r->n++;
    if (r->stop_after && r->n >= r->stop_after)
        return -42;
    return 0;
}

typedef struct outcome {
    char *log;
    int rc;
    bool pending;
    int n;
} outcome_t;

/* Feed s in pieces cut at cuts[0..ncuts) (ascending); the first error ends
 * the run, as a caller would stop. */
static outcome_t run_cuts(const char *s, size_t len, size_t max, const size_t *cuts, size_t ncuts)
{
    cg_sse_t p;
    rec_t r = {0};
    cg_sse_init(&p, max);
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        rc = cg_sse_feed(&p, s + at, to - at, on_event, &r);
        at = to;
    }
    outcome_t o = {.rc = rc, .pending = cg_sse_pending(&p), .n = r.n};
    cg_buf_append(&r.log, "", 0);
    o.log = cg_buf_steal(&r.log, NULL);
    cg_sse_free(&p);
    return o;
}

static outcome_t run_once(const char *s, size_t max)
{
    return run_cuts(s, strlen(s), max, NULL, 0);
}

static void outcome_free(outcome_t *o)
{
    cg_free(o->log);
}

/* One-shot vs byte by byte vs every 2-way and a spread of 3-way splits. */
static void check_split_invariance(const char *s, size_t max)
{
    size_t len = strlen(s);
    outcome_t ref = run_once(s, max);

    size_t *cuts = cg_calloc(len + 1, sizeof(size_t));
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    outcome_t bb = run_cuts(s, len, max, cuts, len ? len - 1 : 0);
    T_EQ_STR(bb.log, ref.log);
    T_EQ_INT(bb.rc, ref.rc);
    T_EQ_INT(bb.pending, ref.pending);
    outcome_free(&bb);

    for (size_t a = 0; a <= len; a++) {
        size_t c1[1] = {a};
        outcome_t o = run_cuts(s, len, max, c1, 1);
        T_ASSERTF(strcmp(o.log, ref.log) == 0 && o.rc == ref.rc && o.pending == ref.pending,
                  "split at %zu: \"%s\" rc %d vs \"%s\" rc %d", a, o.log, o.rc, ref.log, ref.rc);
        outcome_free(&o);
        for (size_t b = a; b <= len; b += 7) {
            size_t c2[2] = {a, b};
            o = run_cuts(s, len, max, c2, 2);
            T_ASSERTF(strcmp(o.log, ref.log) == 0 && o.rc == ref.rc,
                      "split at %zu,%zu: \"%s\" vs \"%s\"", a, b, o.log, ref.log);
            outcome_free(&o);
        }
    }
    cg_free(cuts);
    outcome_free(&ref);
}

static const char *STREAM =
    "\xEF\xBB\xBF: hello comment\r\n"
    "data: {\"id\":1,\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\r\n\r\n"
    "event: message_start\n"
    "data: {\"type\":\"message_start\"}\n\n"
    "data:no-space\r\r"
    "data: line one\n"
    "data: line two\n"
    "data\n"
    "id: 7\n"
    "retry: 100\n"
    "unknown: x\n"
    "\n"
    "event: ping\n\n"     /* event without data: not delivered */
    "data:  two spaces\n" /* only one space is dropped */
    "\r\n"
    ":keepalive\n"
    "data: [DONE]\n\n";

static void test_basic_events(void)
{
    outcome_t o = run_once(STREAM, 4096);
    T_EQ_STR(o.log, "[|{\"id\":1,\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}]"
                    "[message_start|{\"type\":\"message_start\"}]"
                    "[|no-space]"
                    "[|line one\nline two\n]"
                    "[| two spaces]"
                    "[|[DONE]]");
    T_EQ_INT(o.rc, 0);
    T_EQ_INT(o.pending, false);
    outcome_free(&o);
}

static void test_split_invariance(void)
{
    check_split_invariance(STREAM, 4096);
    /* CR-only line ends throughout, and a stream cut mid-event. */
    check_split_invariance("data: a\r\rdata: b\rdata: c\r\r\r\revent: e\rdata: d", 4096);
    /* Lone CRs next to LFs: "\r\n" is one line end, "\n\r" two. */
    check_split_invariance("data: x\n\rdata: y\r\n\r\ndata: z\r\r\n\n", 4096);
}

static void test_crlf_split_between_reads(void)
{
    cg_sse_t p;
    rec_t r = {0};
    cg_sse_init(&p, 1024);
    /* The CR ends one read and the LF opens the next: still one line end,
     * so the event must not be dispatched until the real blank line. */
    T_EQ_INT(cg_sse_feed(&p, "data: a\r", 8, on_event, &r), 0);
    T_EQ_INT(cg_sse_feed(&p, "\ndata: b\r", 9, on_event, &r), 0);
    T_EQ_INT(r.n, 0);
    T_EQ_INT(cg_sse_feed(&p, "\n", 1, on_event, &r), 0);
    T_EQ_INT(r.n, 0);
    T_ASSERT(cg_sse_pending(&p));
    T_EQ_INT(cg_sse_feed(&p, "", 0, on_event, &r), 0); /* empty read keeps the CR state */
    T_EQ_INT(cg_sse_feed(&p, "\r", 1, on_event, &r), 0);
    T_EQ_INT(r.n, 1);
    T_EQ_INT(cg_sse_feed(&p, "\n", 1, on_event, &r), 0); /* LF of that CRLF: no new event */
    T_EQ_INT(r.n, 1);
    T_ASSERT(!cg_sse_pending(&p));
    cg_buf_append(&r.log, "", 0);
    T_EQ_STR(r.log.data, "[|a\nb]");
    cg_buf_free(&r.log);
    cg_sse_free(&p);
}

static void test_pending_detects_cut(void)
{
    outcome_t o = run_once("data: complete\n\ndata: partial", 1024);
    T_EQ_INT(o.n, 1);
    T_ASSERT(o.pending);
    outcome_free(&o);
    o = run_once("data: complete\n\ndata: line done\n", 1024);
    T_ASSERT(o.pending); /* a finished data line without its blank line */
    outcome_free(&o);
    o = run_once("data: complete\n\nevent: x\n", 1024);
    T_ASSERT(o.pending);
    outcome_free(&o);
    o = run_once("data: complete\n\n: comment\n", 1024);
    T_ASSERT(!o.pending); /* comments between events are not an event */
    outcome_free(&o);
    o = run_once("", 1024);
    T_ASSERT(!o.pending);
    T_EQ_INT(o.n, 0);
    outcome_free(&o);
}

static void test_empty_data_and_bom(void)
{
    /* "data:" alone is an event with empty data; a BOM only counts first. */
    outcome_t o = run_once("\xEF\xBB\xBF"
                           "data:\n\ndata: \xEF\xBB\xBFx\n\n",
                           1024);
    T_EQ_STR(o.log, "[|][|\xEF\xBB\xBFx]");
    outcome_free(&o);
    /* A BOM cut into three reads is still skipped. */
    size_t cuts[2] = {1, 2};
    const char *s = "\xEF\xBB\xBF"
                    "data: y\n\n";
    o = run_cuts(s, strlen(s), 1024, cuts, 2);
    T_EQ_STR(o.log, "[|y]");
    outcome_free(&o);
}

static void test_event_field_resets(void)
{
    outcome_t o = run_once("event: a\ndata: 1\n\ndata: 2\n\nevent: b\nevent: c\ndata: 3\n\n", 1024);
    T_EQ_STR(o.log, "[a|1][|2][c|3]");
    outcome_free(&o);
}

static void test_callback_stop(void)
{
    cg_sse_t p;
    rec_t r = {.stop_after = 1};
    cg_sse_init(&p, 1024);
    T_EQ_INT(cg_sse_feed(&p, "data: 1\n\ndata: 2\n\n", 18, on_event, &r), -42);
    T_EQ_INT(r.n, 1);
    cg_buf_free(&r.log);
    cg_sse_free(&p);
}

static void test_limit(void)
{
    /* Data totalling exactly the bound passes; one byte more fails, and the
     * failure is sticky. (Lines are bounded too, raw: "data: " counts.) */
    outcome_t o = run_once("data: 123456\ndata: 12345\n\n", 12);
    T_EQ_INT(o.rc, 0);
    T_EQ_STR(o.log, "[|123456\n12345]");
    outcome_free(&o);
    o = run_once("data: 123456\ndata: 123456\n\n", 12);
    T_EQ_INT(o.rc, CG_ELIMIT);
    T_EQ_INT(o.n, 0);
    outcome_free(&o);
    o = run_once("data: 1234567\n\n", 12); /* one line over */
    T_EQ_INT(o.rc, CG_ELIMIT);
    outcome_free(&o);
    check_split_invariance("data: 1\n\ndata: 123456\ndata: 123456\n\ndata: 2\n\n", 12);
    /* A single long line (raw, with its field name) over the bound. */
    check_split_invariance("data: 1\n\n: a comment far longer than ten bytes\n\n", 10);
    /* The event field counts towards the event's size. */
    o = run_once("data: 1\n\nevent: 1234567\ndata: 12345678\n\n", 14);
    T_EQ_INT(o.rc, CG_ELIMIT);
    T_EQ_INT(o.n, 1);
    outcome_free(&o);
    check_split_invariance("data: 1\n\nevent: 1234567\ndata: 12345678\n\n", 14);
    check_split_invariance("data: 1\n\nevent: 1234567\ndata: 1234567\n\n", 14);

    cg_sse_t p;
    rec_t r = {0};
    cg_sse_init(&p, 64);
    /* An endless line with no line end: memory stays bounded. */
    char chunk[32];
    memset(chunk, 'x', sizeof(chunk));
    int rc = 0;
    int i;
    for (i = 0; i < 1000 && rc == 0; i++)
        rc = cg_sse_feed(&p, chunk, sizeof(chunk), on_event, &r);
    T_EQ_INT(rc, CG_ELIMIT);
    T_ASSERT(i <= 3);
    T_ASSERT(p.line.cap <= 256);
    T_EQ_INT(cg_sse_feed(&p, "\n\n", 2, on_event, &r), CG_ELIMIT);
    cg_sse_free(&p);
    cg_buf_free(&r.log);
}

/* After warm-up, the same-sized events reuse the buffers: no allocation.
 * (Checked through the buffers' addresses and capacities, which move on
 * every realloc that grows them.) */
static void test_steady_state_no_alloc(void)
{
    cg_sse_t p;
    rec_t r = {0};
    cg_sse_init(&p, 1 << 16);
    const char *ev = "event: delta\ndata: {\"choices\":[{\"delta\":{\"content\":\"tok\"}}]}\n"
                     "data: second line\n\n";
    size_t n = strlen(ev);
    /* Warm up with the event split mid-line, so p->line is used too. */
    for (int i = 0; i < 4; i++) {
        T_EQ_INT(cg_sse_feed(&p, ev, 20, on_event, &r), 0);
        T_EQ_INT(cg_sse_feed(&p, ev + 20, n - 20, on_event, &r), 0);
    }
    char *d = p.data.data, *e = p.event.data, *l = p.line.data;
    size_t dc = p.data.cap, ec = p.event.cap, lc = p.line.cap;
    rec_t quiet = {0};
    cg_buf_reserve(&quiet.log, 1 << 20);
    char *qlog = quiet.log.data;
    for (int i = 0; i < 1000; i++) {
        T_EQ_INT(cg_sse_feed(&p, ev, 20, on_event, &quiet), 0);
        T_EQ_INT(cg_sse_feed(&p, ev + 20, n - 20, on_event, &quiet), 0);
    }
    T_EQ_INT(quiet.n, 1000);
    T_EQ_INT(quiet.moves, 0);
    T_ASSERT(quiet.last_data == d && quiet.last_event == e);
    T_ASSERT(quiet.log.data == qlog);
    T_ASSERT(p.data.data == d && p.data.cap == dc);
    T_ASSERT(p.event.data == e && p.event.cap == ec);
    T_ASSERT(p.line.data == l && p.line.cap == lc);
    cg_buf_free(&quiet.log);
    cg_buf_free(&r.log);
    cg_sse_free(&p);
}

/* A realistic provider stream (OpenAI chat chunks), checked end to end for
 * content and for split invariance. */
static void test_openai_stream(void)
{
    cg_buf_t s = {0};
    for (int i = 0; i < 20; i++)
        cg_buf_printf(&s,
                      "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
                      "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w%d \"}}]}\n\n",
                      i);
    cg_buf_puts(&s, "data: [DONE]\n\n");
    outcome_t o = run_once(s.data, 4096);
    T_EQ_INT(o.n, 21);
    T_CONTAINS(o.log, "\"content\":\"w19 \"");
    T_CONTAINS(o.log, "[|[DONE]]");
    outcome_free(&o);
    size_t cuts[3] = {100, 101, 900};
    o = run_cuts(s.data, s.len, 4096, cuts, 3);
    T_EQ_INT(o.n, 21);
    outcome_free(&o);
    cg_buf_free(&s);
}

int main(void)
{
    T_RUN(test_basic_events);
    T_RUN(test_split_invariance);
    T_RUN(test_crlf_split_between_reads);
    T_RUN(test_pending_detects_cut);
    T_RUN(test_empty_data_and_bom);
    T_RUN(test_event_field_resets);
    T_RUN(test_callback_stop);
    T_RUN(test_limit);
    T_RUN(test_steady_state_no_alloc);
    T_RUN(test_openai_stream);
    T_DONE();
}
