/*
 * think.h — streaming splitter for tagged spans in model text: reasoning in
 * <think>...</think> (and <thinking>, <thought>) and, reused by
 * proto/toolcall_text.h, <tool_call>...</tool_call>.
 *
 * DESIGN
 * Local models put their reasoning inline in the text, and a stream cuts it
 * anywhere: "<th" | "ink>" or "</thi" | "nk>". The splitter keeps only what
 * it cannot decide yet (a '<' followed by a prefix of some tag, at most the
 * longest tag's length) and hands everything else on at once, so the stream
 * is never delayed by more than one tag prefix.
 *
 * Tags inside Markdown code are text: a run of N backticks opens a code span
 * that the next run of exactly N backticks closes (inline `x` and ``` fences
 * alike), and while one is open '<' is an ordinary character. Backticks are
 * text in every case, so they are passed on at once; only the run length is
 * carried across pieces. Inside a tagged span code is not tracked: the span
 * ends at its closing tag (reasoning quoting code stays reasoning).
 *
 * Whitespace right after an opening or closing tag is dropped ("</think>\n\n
 * Answer" gives "Answer"), also across pieces.
 */
#ifndef CG_THINK_H
#define CG_THINK_H

#include "common/cg.h"

typedef enum {
    CG_THINK_TEXT = 0, /* text outside any tagged span */
    CG_THINK_INNER,    /* text inside a span */
    CG_THINK_OPEN,     /* an opening tag (s: the tag as written) */
    CG_THINK_CLOSE,    /* a closing tag (s: the tag as written) */
    CG_THINK_END,      /* flush found a span never closed (s empty) */
} cg_think_kind_t;

/* Called for each piece of output; s is valid during the call only. */
typedef void (*cg_think_cb)(void *ud, cg_think_kind_t kind, const char *s, size_t n);

/* A set of tags: opens[i] is closed by any of closes[]. */
typedef struct cg_think_tags {
    const char *const *opens;
    size_t n_opens;
    const char *const *closes;
    size_t n_closes;
} cg_think_tags_t;

/* <think>, <thinking>, <thought> and their closing tags. */
extern const cg_think_tags_t cg_think_reasoning_tags;

typedef struct cg_think {
    const cg_think_tags_t *tags;
    size_t max_tag; /* longest tag: bounds hold */
    cg_buf_t hold;  /* undecided bytes: '<' plus a prefix of a tag */
    cg_buf_t work;  /* hold + new piece, when hold was not empty */
    bool inside;    /* within a tagged span */
    bool skip_ws;   /* just after a tag: drop whitespace */
    unsigned code;  /* backticks of the open code span, 0: none */
    unsigned ticks; /* backticks in the run that ends the input so far */
    bool seen_any;  /* any tag ever (for callers' statistics) */
} cg_think_t;

void cg_think_init(cg_think_t *t, const cg_think_tags_t *tags);
/* Split s[0..n) and call cb for each decided piece, in order. */
void cg_think_feed(cg_think_t *t, const char *s, size_t n, cg_think_cb cb, void *ud);
/* End of text: pass on what was held (as the kind its state says), then
 * CG_THINK_END if a span is still open. The splitter is reset to outside. */
void cg_think_flush(cg_think_t *t, cg_think_cb cb, void *ud);
/* True when the next piece's output does not depend on earlier input: not
 * inside a span, nothing held, no code span or backtick run open, no
 * whitespace to drop. A caller may then pass a piece with no '<' and no '`'
 * on unchanged without feeding it. */
bool cg_think_idle(const cg_think_t *t);
void cg_think_free(cg_think_t *t);

#endif
