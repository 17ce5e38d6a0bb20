/*
 * test_split.c — the message-array scanner and text extraction of
 * store/write.c, reached through its statics.
 */
#include "store/write.c"

#include "tests/t.h"

static size_t count(const char *json, span_t **el)
{
    size_t n = 0;
    int rc = split_array(json, strlen(json), el, &n);
    return rc == 0 ? n : (size_t)-1;
}

static bool span_is(span_t sp, const char *want)
{
    return sp.n == strlen(want) && memcmp(sp.p, want, sp.n) == 0;
}

static void test_split_elements(void)
{
    span_t *el;
    T_EQ_INT(count("[]", &el), 0);
    cg_free(el);
    T_EQ_INT(count("  [ ]  ", &el), 0);
    cg_free(el);
    T_EQ_INT(count("[{\"a\":1}]", &el), 1);
    T_ASSERT(span_is(el[0], "{\"a\":1}"));
    cg_free(el);
    /* quotes, escaped quotes, backslashes at the end of strings, brackets
     * and commas inside strings, nesting, scalars, whitespace */
    const char *j = "[ {\"c\":\"say \\\"hi\\\", [ok]\"} ,\n"
                    "{\"c\":\"ends with backslash \\\\\"},"
                    "{\"c\":\"\\\\\\\"\"},"
                    "[1,[2,{\"x\":\"]\"}]],"
                    "\"bare string\", 42, true, null,-1.5e3 ]";
    T_EQ_INT(count(j, &el), 9);
    T_ASSERT(span_is(el[0], "{\"c\":\"say \\\"hi\\\", [ok]\"}"));
    T_ASSERT(span_is(el[1], "{\"c\":\"ends with backslash \\\\\"}"));
    T_ASSERT(span_is(el[2], "{\"c\":\"\\\\\\\"\"}"));
    T_ASSERT(span_is(el[3], "[1,[2,{\"x\":\"]\"}]]"));
    T_ASSERT(span_is(el[4], "\"bare string\""));
    T_ASSERT(span_is(el[5], "42"));
    T_ASSERT(span_is(el[6], "true"));
    T_ASSERT(span_is(el[7], "null"));
    T_ASSERT(span_is(el[8], "-1.5e3"));
    cg_free(el);
    /* a bare string is one element */
    T_EQ_INT(count(" \"hello \\\"you\\\"\" ", &el), 1);
    T_ASSERT(span_is(el[0], "\"hello \\\"you\\\"\""));
    cg_free(el);
    /* many elements (the array grows) */
    cg_buf_t b = {0};
    cg_buf_puts(&b, "[");
    for (int i = 0; i < 1000; i++)
        cg_buf_printf(&b, "%s{\"i\":%d}", i ? "," : "", i);
    cg_buf_puts(&b, "]");
    T_EQ_INT(count(b.data, &el), 1000);
    T_ASSERT(span_is(el[999], "{\"i\":999}"));
    cg_free(el);
    cg_buf_free(&b);
}

static void test_split_rejects(void)
{
    static const char *bad[] = {
        "",     "{}",    "[",      "[{\"a\":1}", "[{\"a\":\"x}]", "[1 2]", "[1,]", "[,1]",
        "[1]]", "[1] x", "\"open", "[\"a\\\"]",  "[{\"a\":1}}]",  "[}]",   "42",
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(bad); i++) {
        span_t *el = NULL;
        size_t n = 0;
        T_ASSERTF(split_array(bad[i], strlen(bad[i]), &el, &n) == CG_EINVAL, "accepted: %s",
                  bad[i]);
        T_ASSERT(el == NULL);
    }
}

static char *text_of(const char *json)
{
    json_object *o = json_tokener_parse(json);
    cg_buf_t b = {0};
    gather_text(o, NULL, &b, 0);
    json_object_put(o);
    return b.data ? cg_buf_steal(&b, NULL) : cg_strdup("");
}

static void test_searchable_text(void)
{
    char *t = text_of("{\"role\":\"user\",\"content\":\"plain\"}");
    T_EQ_STR(t, "plain");
    cg_free(t);
    t = text_of("{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"part one\"},"
                "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}},"
                "{\"type\":\"text\",\"text\":\"part two\"}]}");
    T_EQ_STR(t, "part one\npart two");
    cg_free(t);
    t = text_of("{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"thinking\","
                "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
                "{\"name\":\"grep\",\"arguments\":\"{\\\"q\\\":\\\"otter\\\"}\"}}]}");
    T_EQ_STR(t, "thinking\ngrep\n{\"q\":\"otter\"}");
    cg_free(t);
    t = text_of("{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"3 matches\"}");
    T_EQ_STR(t, "3 matches");
    cg_free(t);
}

int main(void)
{
    cg_log_set_level(CG_LOG_WARN);
    T_RUN(test_split_elements);
    T_RUN(test_split_rejects);
    T_RUN(test_searchable_text);
    T_DONE();
}
