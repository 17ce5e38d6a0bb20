/*
 * test_think.c — the streaming <think> splitter and the <tool_call> text
 * parser, with every input split at every position (two and three pieces,
 * and one byte at a time): the output must not depend on where the stream
 * was cut.
 */
#include "proto/think.h"
#include "proto/toolcall_text.h"
#include "tests/t.h"

typedef struct out {
    cg_buf_t text, inner;
    int opens, closes, ends;
} out_t;

static void on_piece(void *ud, cg_think_kind_t k, const char *s, size_t n)
{
    out_t *o = ud;
    switch (k) {
    case CG_THINK_TEXT:
        cg_buf_append(&o->text, s, n);
        break;
    case CG_THINK_INNER:
        cg_buf_append(&o->inner, s, n);
        break;
    case CG_THINK_OPEN:
        o->opens++;
        break;
    case CG_THINK_CLOSE:
        o->closes++;
        break;
    case CG_THINK_END:
        o->ends++;
        break;
    }
}

static void out_free(out_t *o)
{
    cg_buf_free(&o->text);
    cg_buf_free(&o->inner);
}

static const char *str(cg_buf_t *b)
{
    cg_buf_append(b, "", 1);
    b->len--;
    return b->data;
}

/* Run input cut at the given offsets (sorted, n cuts) and flush. */
static void run_cuts(const char *in, const size_t *cuts, size_t ncuts, out_t *o)
{
    cg_think_t t;
    cg_think_init(&t, &cg_think_reasoning_tags);
    size_t len = strlen(in), prev = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        cg_think_feed(&t, in + prev, end - prev, on_piece, o);
        prev = end;
    }
    cg_think_flush(&t, on_piece, o);
    T_ASSERT(cg_think_idle(&t));
    cg_think_free(&t);
}

/* The expected split, checked unsplit, at every 2- and 3-piece split, and
 * byte by byte. */
static void check_split(const char *in, const char *want_text, const char *want_inner,
                        int want_ends)
{
    size_t len = strlen(in);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            out_t o = {0};
            size_t cuts[2] = {i, j};
            run_cuts(in, cuts, 2, &o);
            T_ASSERTF(strcmp(str(&o.text), want_text) == 0 &&
                          strcmp(str(&o.inner), want_inner) == 0 && o.ends == want_ends,
                      "input \"%s\" cut at %zu,%zu: text \"%s\" inner \"%s\" ends %d", in, i, j,
                      o.text.data, o.inner.data, o.ends);
            out_free(&o);
        }
    }
    size_t *cuts = cg_malloc((len + 1) * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    out_t o = {0};
    run_cuts(in, cuts, len, &o);
    T_ASSERTF(strcmp(str(&o.text), want_text) == 0 && strcmp(str(&o.inner), want_inner) == 0,
              "byte by byte \"%s\": text \"%s\" inner \"%s\"", in, o.text.data, o.inner.data);
    out_free(&o);
    cg_free(cuts);
}

static void test_basic_think(void)
{
    check_split("<think>abc</think>Hello", "Hello", "abc", 0);
    check_split("<think>\nplan it\n</think>\n\nAnswer.", "Answer.", "plan it\n", 0);
    check_split("<thinking>t</thinking>a", "a", "t", 0);
    check_split("<thought>t</thought>a", "a", "t", 0);
    check_split("no tags at all", "no tags at all", "", 0);
    check_split("", "", "", 0);
}

static void test_think_in_the_middle(void)
{
    check_split("Hi <think>x</think>\n\nthere", "Hi there", "x", 0);
    check_split("a<think>1</think>b<think>2</think>c", "abc", "12", 0);
}

static void test_lookalikes_stay_text(void)
{
    check_split("a < b and c<d, <thinkx> <th", "a < b and c<d, <thinkx> <th", "", 0);
    check_split("</think> closes nothing", "</think> closes nothing", "", 0);
    check_split("<think>a<b</thin and <th</think>c", "c", "a<b</thin and <th", 0);
}

static void test_unclosed_think_is_reasoning(void)
{
    check_split("<think>still going", "", "still going", 1);
    check_split("ok <think", "ok <think", "", 0);
}

static void test_code_spans_keep_tags(void)
{
    check_split("Use `<think>` tags", "Use `<think>` tags", "", 0);
    check_split("```\n<think>x</think>\n```\nafter <think>r</think>done",
                "```\n<think>x</think>\n```\nafter done", "r", 0);
    /* a run of two closes only at a run of two: the lone ` inside is text */
    check_split("``a`b<think>`` <think>r</think>x", "``a`b<think>`` x", "r", 0);
    /* backticks inside reasoning do not open code */
    check_split("<think>`</think>x", "x", "`", 0);
    /* an unclosed fence keeps everything after it literal */
    check_split("```py\n<think>no", "```py\n<think>no", "", 0);
}

static void test_idle(void)
{
    cg_think_t t;
    out_t o = {0};
    cg_think_init(&t, &cg_think_reasoning_tags);
    T_ASSERT(cg_think_idle(&t));
    cg_think_feed(&t, "a <th", 5, on_piece, &o);
    T_ASSERT(!cg_think_idle(&t)); /* holding "<th" */
    cg_think_feed(&t, "ink>r", 5, on_piece, &o);
    T_ASSERT(!cg_think_idle(&t)); /* inside */
    cg_think_feed(&t, "</think>", 8, on_piece, &o);
    T_ASSERT(!cg_think_idle(&t)); /* whitespace after the tag is still dropped */
    cg_think_feed(&t, "x `", 3, on_piece, &o);
    T_ASSERT(!cg_think_idle(&t)); /* a backtick run in progress */
    cg_think_feed(&t, "c` y", 4, on_piece, &o);
    T_ASSERT(cg_think_idle(&t));
    T_EQ_STR(str(&o.text), "a x `c` y");
    T_EQ_STR(str(&o.inner), "r");
    cg_think_free(&t);
    out_free(&o);
}

/* ---- tool calls as text ---- */

typedef struct tcout {
    cg_buf_t text;
    cg_buf_t calls; /* "name(args);" per call */
} tcout_t;

static void tc_text(void *ud, const char *s, size_t n)
{
    cg_buf_append(&((tcout_t *)ud)->text, s, n);
}

static void tc_call(void *ud, const char *name, size_t nl, const char *args, size_t al)
{
    tcout_t *o = ud;
    T_ASSERT(strlen(name) == nl && strlen(args) == al);
    cg_buf_printf(&o->calls, "%s(%s);", name, args);
}

static void check_tc(const char *in, const char *want_text, const char *want_calls)
{
    size_t len = strlen(in);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j += 3) {
            tcout_t o = {0};
            cg_tctext_t p;
            cg_tctext_init(&p, tc_text, tc_call, &o);
            cg_tctext_feed(&p, in, i);
            cg_tctext_feed(&p, in + i, j - i);
            cg_tctext_feed(&p, in + j, len - j);
            cg_tctext_flush(&p);
            T_ASSERTF(strcmp(str(&o.text), want_text) == 0 &&
                          strcmp(str(&o.calls), want_calls) == 0,
                      "\"%s\" cut at %zu,%zu: text \"%s\" calls \"%s\"", in, i, j, o.text.data,
                      o.calls.data);
            cg_tctext_free(&p);
            cg_buf_free(&o.text);
            cg_buf_free(&o.calls);
        }
    }
}

static void test_tool_call_text(void)
{
    check_tc("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"city\": \"Oslo\"}}\n"
             "</tool_call>",
             "", "get_time({\"city\":\"Oslo\"});");
    check_tc("Let me check.<tool_call>{\"name\":\"a\",\"arguments\":\"{\\\"x\\\":1}\"}</tool_call>"
             "<tool_call>{\"name\":\"b\"}</tool_call>",
             "Let me check.", "a({\"x\":1});b({});");
    /* parameters as a synonym, and an unclosed call at the end */
    check_tc("<tool_call>{\"name\":\"c\",\"parameters\":{\"k\":[1,2]}}", "", "c({\"k\":[1,2]});");
    /* not a call: given back as the text it was */
    check_tc("<tool_call>not json</tool_call> ok", "<tool_call>not json</tool_call>ok", "");
    check_tc("<tool_call>{\"arguments\":{}}</tool_call>",
             "<tool_call>{\"arguments\":{}}</tool_call>", "");
    /* inside code it is an example, not a call */
    check_tc("Write `<tool_call>{\"name\":\"x\"}</tool_call>` like so",
             "Write `<tool_call>{\"name\":\"x\"}</tool_call>` like so", "");
}

static void test_tool_call_parse(void)
{
    cg_buf_t n = {0}, a = {0};
    T_EQ_INT(cg_tctext_parse("{\"name\":\"f\",\"arguments\":{\"a\":\"/x\"}} ", 35, &n, &a), 0);
    T_EQ_STR(n.data, "f");
    T_EQ_STR(a.data, "{\"a\":\"/x\"}");
    cg_buf_reset(&n);
    cg_buf_reset(&a);
    T_EQ_INT(cg_tctext_parse("{\"name\":\"f\"} trailing", 21, &n, &a), CG_EINVAL);
    T_EQ_INT(cg_tctext_parse("[1]", 3, &n, &a), CG_EINVAL);
    T_EQ_INT(cg_tctext_parse("{\"name\":\"\"}", 11, &n, &a), CG_EINVAL);
    T_EQ_INT(cg_tctext_parse("{\"name\":", 8, &n, &a), CG_EINVAL);
    cg_buf_free(&n);
    cg_buf_free(&a);
}

static void test_tool_call_overflow(void)
{
    tcout_t o = {0};
    cg_tctext_t p;
    cg_tctext_init(&p, tc_text, tc_call, &o);
    cg_tctext_feed(&p, "<tool_call>", 11);
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    size_t fed = 0;
    while (fed <= CG_TCTEXT_MAX + sizeof chunk) {
        cg_tctext_feed(&p, chunk, sizeof chunk);
        fed += sizeof chunk;
    }
    /* Given up and passed on as text once past the bound, not held. */
    T_ASSERT(o.text.len >= CG_TCTEXT_MAX);
    T_ASSERT(memcmp(o.text.data, "<tool_call>", 11) == 0);
    cg_tctext_feed(&p, "</tool_call>", 12);
    cg_tctext_flush(&p);
    T_EQ_INT(o.text.len, 11 + fed + 12);
    T_EQ_INT(o.calls.len, 0);
    cg_tctext_free(&p);
    cg_buf_free(&o.text);
    cg_buf_free(&o.calls);
}

int main(void)
{
    T_RUN(test_basic_think);
    T_RUN(test_think_in_the_middle);
    T_RUN(test_lookalikes_stay_text);
    T_RUN(test_unclosed_think_is_reasoning);
    T_RUN(test_code_spans_keep_tags);
    T_RUN(test_idle);
    T_RUN(test_tool_call_text);
    T_RUN(test_tool_call_parse);
    T_RUN(test_tool_call_overflow);
    T_DONE();
}
