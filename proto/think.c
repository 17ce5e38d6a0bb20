/*
 * think.c — streaming splitter for <think>-style tagged spans.
 *
 * DESIGN
 * One pass over each piece with a small state (inside a span or not, the
 * open code span's backtick count, the backtick run in progress, whether to
 * drop whitespace). Output is emitted as runs: a run ends where the state
 * changes (a tag) or the piece ends, so a piece without tags becomes one
 * callback. Undecided bytes (a '<' and what follows it when that is a strict
 * prefix of some tag) are held; the next piece is processed as hold + piece
 * in a work buffer, so the matching code never has to look across pieces.
 * The hold is bounded by the longest tag.
 */
#include "proto/think.h"

static const char *const reasoning_opens[] = {"<think>", "<thinking>", "<thought>"};
static const char *const reasoning_closes[] = {"</think>", "</thinking>", "</thought>"};

const cg_think_tags_t cg_think_reasoning_tags = {
    .opens = reasoning_opens,
    .n_opens = CG_ARRAY_LEN(reasoning_opens),
    .closes = reasoning_closes,
    .n_closes = CG_ARRAY_LEN(reasoning_closes),
};

void cg_think_init(cg_think_t *t, const cg_think_tags_t *tags)
{
    memset(t, 0, sizeof *t);
    t->tags = tags;
    for (size_t i = 0; i < tags->n_opens; i++) {
        size_t l = strlen(tags->opens[i]);
        if (l > t->max_tag)
            t->max_tag = l;
    }
    for (size_t i = 0; i < tags->n_closes; i++) {
        size_t l = strlen(tags->closes[i]);
        if (l > t->max_tag)
            t->max_tag = l;
    }
}

/* Does s[0..len) start with one of the tags? 1: yes (*tl its length);
 * 0: s is a strict prefix of one (undecided); -1: no. */
static int match(const char *const *tags, size_t n, const char *s, size_t len, size_t *tl)
{
    int r = -1;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(tags[i]);
        if (len >= l) {
            if (memcmp(s, tags[i], l) == 0) {
                *tl = l;
                return 1;
            }
        } else if (memcmp(s, tags[i], len) == 0) {
            r = 0;
        }
    }
    return r;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static void out(cg_think_cb cb, void *ud, cg_think_kind_t k, const char *s, size_t n)
{
    if (n > 0 || k == CG_THINK_END)
        cb(ud, k, s, n);
}

void cg_think_feed(cg_think_t *t, const char *s, size_t n, cg_think_cb cb, void *ud)
{
    const char *p = s;
    size_t len = n;
    if (t->hold.len > 0) {
        cg_buf_reset(&t->work);
        cg_buf_append(&t->work, t->hold.data, t->hold.len);
        cg_buf_append(&t->work, s, n);
        cg_buf_reset(&t->hold);
        p = t->work.data;
        len = t->work.len;
    }
    size_t i = 0, start = 0;
    while (i < len) {
        char c = p[i];
        if (t->skip_ws) {
            if (is_ws(c)) {
                start = ++i;
                continue;
            }
            t->skip_ws = false;
        }
        if (!t->inside) {
            if (c == '`') {
                t->ticks++;
                i++;
                continue;
            }
            if (t->ticks) {
                /* A backtick run just ended: it opens a code span, or closes
                 * the open one if it has the same length. */
                if (t->code == 0)
                    t->code = t->ticks;
                else if (t->code == t->ticks)
                    t->code = 0;
                t->ticks = 0;
            }
            if (c != '<' || t->code) {
                i++;
                continue;
            }
            size_t tl = 0;
            int m = match(t->tags->opens, t->tags->n_opens, p + i, len - i, &tl);
            if (m < 0) {
                i++;
                continue;
            }
            out(cb, ud, CG_THINK_TEXT, p + start, i - start);
            if (m == 0) {
                cg_buf_append(&t->hold, p + i, len - i);
                return;
            }
            out(cb, ud, CG_THINK_OPEN, p + i, tl);
            i += tl;
            start = i;
            t->inside = true;
            t->skip_ws = true;
        } else {
            if (c != '<') {
                i++;
                continue;
            }
            size_t tl = 0;
            int m = match(t->tags->closes, t->tags->n_closes, p + i, len - i, &tl);
            if (m < 0) {
                i++;
                continue;
            }
            out(cb, ud, CG_THINK_INNER, p + start, i - start);
            if (m == 0) {
                cg_buf_append(&t->hold, p + i, len - i);
                return;
            }
            out(cb, ud, CG_THINK_CLOSE, p + i, tl);
            i += tl;
            start = i;
            t->inside = false;
            t->skip_ws = true;
        }
    }
    out(cb, ud, t->inside ? CG_THINK_INNER : CG_THINK_TEXT, p + start, len - start);
    cg_assert(t->hold.len < t->max_tag);
}

void cg_think_flush(cg_think_t *t, cg_think_cb cb, void *ud)
{
    if (t->hold.len > 0) {
        /* An undecided prefix at the very end is just text. */
        cg_buf_t h = t->hold;
        t->hold = (cg_buf_t){0};
        out(cb, ud, t->inside ? CG_THINK_INNER : CG_THINK_TEXT, h.data, h.len);
        cg_buf_free(&h);
    }
    if (t->inside)
        out(cb, ud, CG_THINK_END, "", 0);
    t->inside = false;
    t->skip_ws = false;
    t->code = 0;
    t->ticks = 0;
}

bool cg_think_idle(const cg_think_t *t)
{
    return !t->inside && t->hold.len == 0 && t->code == 0 && t->ticks == 0 && !t->skip_ws;
}

void cg_think_free(cg_think_t *t)
{
    cg_buf_free(&t->hold);
    cg_buf_free(&t->work);
}
