/*
 * fuzz_think.c — differential oracle for the streaming tag splitters.
 *
 * Input: bytes 0 and 1 pick two cut points, byte 2 picks the splitter
 * (<think> tags, or the <tool_call> parser), the rest is model text. The
 * text is fed in one piece, in three pieces and byte by byte; what comes out
 * (text, span bodies, tag counts; text and calls for the tool parser) must
 * be identical (abort otherwise): where a stream was cut must never change
 * what the client sees. Each feed also checks the hold bound.
 */
#include "proto/think.h"
#include "proto/toolcall_text.h"

#include <stdint.h>

typedef struct tx {
    cg_buf_t text, inner;
    int opens, closes, ends;
} tx_t;

static void on_piece(void *ud, cg_think_kind_t k, const char *s, size_t n)
{
    tx_t *t = ud;
    if (k == CG_THINK_TEXT)
        cg_buf_append(&t->text, s, n);
    else if (k == CG_THINK_INNER)
        cg_buf_append(&t->inner, s, n);
    else if (k == CG_THINK_OPEN)
        t->opens++;
    else if (k == CG_THINK_CLOSE)
        t->closes++;
    else
        t->ends++;
}

static void on_text(void *ud, const char *s, size_t n)
{
    cg_buf_append(&((tx_t *)ud)->text, s, n);
}

static void on_call(void *ud, const char *name, size_t nl, const char *args, size_t al)
{
    tx_t *t = ud;
    if (strlen(name) != nl || nl == 0)
        abort();
    cg_buf_append(&t->inner, &nl, sizeof nl);
    cg_buf_append(&t->inner, name, nl);
    cg_buf_append(&t->inner, &al, sizeof al);
    cg_buf_append(&t->inner, args, al);
    t->opens++;
}

static tx_t run(const char *s, size_t len, bool tool, const size_t *cuts, size_t ncuts)
{
    tx_t t = {0};
    cg_think_t th;
    cg_tctext_t tc;
    if (tool)
        cg_tctext_init(&tc, on_text, on_call, &t);
    else
        cg_think_init(&th, &cg_think_reasoning_tags);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        if (tool) {
            cg_tctext_feed(&tc, s + at, to - at);
        } else {
            cg_think_feed(&th, s + at, to - at, on_piece, &t);
            if (th.hold.len >= th.max_tag)
                abort();
        }
        at = to;
    }
    if (tool) {
        cg_tctext_flush(&tc);
        if (!cg_tctext_idle(&tc))
            abort();
        cg_tctext_free(&tc);
    } else {
        cg_think_flush(&th, on_piece, &t);
        if (!cg_think_idle(&th))
            abort();
        cg_think_free(&th);
    }
    return t;
}

static bool same(const tx_t *a, const tx_t *b)
{
    return a->text.len == b->text.len && a->inner.len == b->inner.len &&
           (a->text.len == 0 || memcmp(a->text.data, b->text.data, a->text.len) == 0) &&
           (a->inner.len == 0 || memcmp(a->inner.data, b->inner.data, a->inner.len) == 0) &&
           a->opens == b->opens && a->closes == b->closes && a->ends == b->ends;
}

static void tx_free(tx_t *t)
{
    cg_buf_free(&t->text);
    cg_buf_free(&t->inner);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > 1 << 16)
        return 0;
    const char *s = (const char *)data + 3;
    size_t len = size - 3;
    bool tool = data[2] & 1;
    size_t c1 = len ? data[0] % (len + 1) : 0, c2 = len ? data[1] % (len + 1) : 0;
    size_t cuts[2] = {c1 < c2 ? c1 : c2, c1 < c2 ? c2 : c1};
    tx_t whole = run(s, len, tool, NULL, 0);
    tx_t three = run(s, len, tool, cuts, 2);
    size_t *each = malloc((len + 1) * sizeof *each);
    for (size_t i = 0; i < len; i++)
        each[i] = i;
    tx_t bytes = run(s, len, tool, each, len);
    free(each);
    if (!same(&whole, &three) || !same(&whole, &bytes))
        abort();
    /* Nothing is invented: output is never longer than the input (plus the
     * call arguments a tool call re-serialises, which have their own length). */
    if (!tool && whole.text.len + whole.inner.len > len)
        abort();
    tx_free(&whole);
    tx_free(&three);
    tx_free(&bytes);
    return 0;
}
