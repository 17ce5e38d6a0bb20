/*
 * test_json5.c — the JSON5 reader: the spec's examples, every syntax
 * feature, exact error positions, limits, and the position side table.
 */
#include "config/json5.h"

#include "tests/t.h"

#include <math.h>

/* Parse or fail the test. */
static cg_json5_doc_t *ok(const char *text)
{
    cg_json5_doc_t *d = NULL;
    cg_json5_error_t e;
    int rc = cg_json5_parse(text, strlen(text), NULL, &d, &e);
    T_ASSERTF(rc == 0, "parse failed at %d:%d: %s\n  input: %s", e.pos.line, e.pos.col, e.msg,
              text);
    return d;
}

/* Expect a failure at line:col whose message contains msg. */
static void bad_n(const char *text, size_t len, const cg_json5_limits_t *lim, int line, int col,
                  const char *msg)
{
    cg_json5_doc_t *d = NULL;
    cg_json5_error_t e;
    int rc = cg_json5_parse(text, len, lim, &d, &e);
    T_ASSERTF(rc != 0, "expected an error for: %s", text);
    T_ASSERT(d == NULL);
    T_ASSERTF(e.pos.line == line && e.pos.col == col, "%s: error at %d:%d (%s), expected %d:%d",
              text, e.pos.line, e.pos.col, e.msg, line, col);
    T_CONTAINS(e.msg, msg);
}

static void bad(const char *text, int line, int col, const char *msg)
{
    bad_n(text, strlen(text), NULL, line, col, msg);
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    T_ASSERTF(json_object_object_get_ex(o, key, &v), "missing key %s", key);
    return v;
}

static void test_spec_example(void)
{
    /* The example on json5.org / spec.json5.org, verbatim. */
    const char *text = "// comments\n"
                       "{\n"
                       "  unquoted: 'and you can quote me on that',\n"
                       "  singleQuotes: 'I can use \"double quotes\" here',\n"
                       "  lineBreaks: \"Look, Mom! \\\n"
                       "No \\\\n's!\",\n"
                       "  hexadecimal: 0xdecaf,\n"
                       "  leadingDecimalPoint: .8675309, andTrailing: 8675309.,\n"
                       "  positiveSign: +1,\n"
                       "  trailingComma: 'in objects', andIn: ['arrays',],\n"
                       "  \"backwardsCompatible\": \"with JSON\",\n"
                       "}\n";
    cg_json5_doc_t *d = ok(text);
    json_object *r = cg_json5_root(d);
    T_EQ_STR(json_object_get_string(get(r, "unquoted")), "and you can quote me on that");
    T_EQ_STR(json_object_get_string(get(r, "singleQuotes")), "I can use \"double quotes\" here");
    T_EQ_STR(json_object_get_string(get(r, "lineBreaks")), "Look, Mom! No \\n's!");
    T_EQ_INT(json_object_get_int64(get(r, "hexadecimal")), 0xdecaf);
    T_ASSERT(fabs(json_object_get_double(get(r, "leadingDecimalPoint")) - 0.8675309) < 1e-12);
    T_ASSERT(json_object_get_double(get(r, "andTrailing")) == 8675309.0);
    T_EQ_INT(json_object_get_type(get(r, "andTrailing")), json_type_double);
    T_EQ_INT(json_object_get_int64(get(r, "positiveSign")), 1);
    T_EQ_INT(json_object_array_length(get(r, "andIn")), 1);
    T_EQ_STR(json_object_get_string(get(r, "backwardsCompatible")), "with JSON");
    T_EQ_INT(json_object_object_length(r), 10);
    cg_json5_free(d);
}

static void test_strict_json_still_parses(void)
{
    cg_json5_doc_t *d =
        ok("{\"a\": [1, 2.5, -3e2, true, false, null, \"x\\u0041\\/\"], \"b\": {}}");
    json_object *a = get(cg_json5_root(d), "a");
    T_EQ_INT(json_object_array_length(a), 7);
    T_EQ_INT(json_object_get_int64(json_object_array_get_idx(a, 0)), 1);
    T_ASSERT(json_object_get_double(json_object_array_get_idx(a, 2)) == -300.0);
    T_ASSERT(json_object_get_boolean(json_object_array_get_idx(a, 3)));
    T_ASSERT(!json_object_get_boolean(json_object_array_get_idx(a, 4)));
    T_ASSERT(json_object_array_get_idx(a, 5) == NULL);
    T_EQ_STR(json_object_get_string(json_object_array_get_idx(a, 6)), "xA/");
    cg_json5_free(d);
    /* scalars and null at the top level */
    d = ok("  42  ");
    T_EQ_INT(json_object_get_int64(cg_json5_root(d)), 42);
    cg_json5_free(d);
    d = ok("null");
    T_ASSERT(cg_json5_root(d) == NULL);
    cg_json5_free(d);
}

static void test_numbers(void)
{
    cg_json5_doc_t *d = ok("[0x1F, 0XaB, -0x10, +0x1, .5, 5., +1, -1.5e3, 1E-2, +.5e+1, Infinity, "
                           "-Infinity, +Infinity, NaN, -NaN, 0, -0, 0.0, 9223372036854775807, "
                           "9223372036854775808, -9223372036854775808, 0xFFFFFFFFFFFFFFFF, "
                           "-0x8000000000000000, 5.e3]");
    json_object *a = cg_json5_root(d);
#define NUM(i) json_object_array_get_idx(a, i)
    T_EQ_INT(json_object_get_int64(NUM(0)), 31);
    T_EQ_INT(json_object_get_int64(NUM(1)), 0xAB);
    T_EQ_INT(json_object_get_int64(NUM(2)), -16);
    T_EQ_INT(json_object_get_int64(NUM(3)), 1);
    T_ASSERT(json_object_get_double(NUM(4)) == 0.5);
    T_ASSERT(json_object_get_double(NUM(5)) == 5.0);
    T_EQ_INT(json_object_get_type(NUM(6)), json_type_int);
    T_ASSERT(json_object_get_double(NUM(7)) == -1500.0);
    T_ASSERT(fabs(json_object_get_double(NUM(8)) - 0.01) < 1e-15);
    T_ASSERT(json_object_get_double(NUM(9)) == 5.0);
    T_ASSERT(isinf(json_object_get_double(NUM(10))) && json_object_get_double(NUM(10)) > 0);
    T_ASSERT(isinf(json_object_get_double(NUM(11))) && json_object_get_double(NUM(11)) < 0);
    T_ASSERT(isinf(json_object_get_double(NUM(12))));
    T_ASSERT(isnan(json_object_get_double(NUM(13))));
    T_ASSERT(isnan(json_object_get_double(NUM(14))));
    T_EQ_INT(json_object_get_int64(NUM(15)), 0);
    T_EQ_INT(json_object_get_int64(NUM(16)), 0);
    T_EQ_INT(json_object_get_type(NUM(17)), json_type_double);
    T_EQ_INT(json_object_get_type(NUM(18)), json_type_int);
    T_ASSERT(json_object_get_int64(NUM(18)) == INT64_MAX);
    T_EQ_INT(json_object_get_type(NUM(19)), json_type_double);
    T_ASSERT(json_object_get_double(NUM(19)) == 9223372036854775808.0);
    T_ASSERT(json_object_get_int64(NUM(20)) == INT64_MIN);
    T_EQ_INT(json_object_get_type(NUM(21)), json_type_double);
    T_ASSERT(json_object_get_double(NUM(21)) == 18446744073709551615.0);
    T_ASSERT(json_object_get_int64(NUM(22)) == INT64_MIN);
    T_ASSERT(json_object_get_double(NUM(23)) == 5000.0);
#undef NUM
    cg_json5_free(d);
}

static void test_strings(void)
{
    cg_json5_doc_t *d = ok("['\\'', \"\\\"\", '\\b\\f\\n\\r\\t\\v\\\\\\/', '\\x41\\x7e', "
                           "'\\u00C5\\u00e5', '\\uD83D\\uDE00', '\\uD800x', 'a\\0b', '\\q\\%', "
                           "'a\\\r\nb', 'a\\\rb', 'caf\xC3\xA9', 'x\xE2\x80\xA8y', "
                           "'p\\\xE2\x80\xA9q', \"it's\", 'say \"hi\"', '']");
    json_object *a = cg_json5_root(d);
#define STR(i) json_object_get_string(json_object_array_get_idx(a, i))
    T_EQ_STR(STR(0), "'");
    T_EQ_STR(STR(1), "\"");
    T_EQ_STR(STR(2), "\b\f\n\r\t\v\\/");
    T_EQ_STR(STR(3), "A~");
    T_EQ_STR(STR(4), "\xC3\x85\xC3\xA5");
    T_EQ_STR(STR(5), "\xF0\x9F\x98\x80"); /* surrogate pair -> U+1F600 */
    T_EQ_STR(STR(6), "\xEF\xBF\xBDx");    /* lone surrogate -> U+FFFD */
    T_EQ_INT(json_object_get_string_len(json_object_array_get_idx(a, 7)), 3);
    T_ASSERT(memcmp(STR(7), "a\0b", 3) == 0);
    T_EQ_STR(STR(8), "q%"); /* non-escape characters stand for themselves */
    T_EQ_STR(STR(9), "ab"); /* escaped CRLF: a line continuation */
    T_EQ_STR(STR(10), "ab");
    T_EQ_STR(STR(11), "caf\xC3\xA9");
    T_EQ_STR(STR(12), "x\xE2\x80\xA8y"); /* U+2028 may appear unescaped */
    T_EQ_STR(STR(13), "pq");             /* escaped U+2029: a continuation */
    T_EQ_STR(STR(14), "it's");
    T_EQ_STR(STR(15), "say \"hi\"");
    T_EQ_STR(STR(16), "");
#undef STR
    cg_json5_free(d);
}

static void test_keys_and_comments(void)
{
    cg_json5_doc_t *d = ok("\xEF\xBB\xBF/* block\n comment */ {\n"
                           "  $_: 1, _a1: 2, while: 3, null: 4, \\u0061b: 5,\n"
                           "  \xC3\xB9\xC5\x84\xC3\xAE: 6, // line comment\n"
                           "  'single': 7, \"dq\": 8, a\\u0062c: 9,\xC2\xA0\n"
                           "  nested: { deep: [[], {}, [[1]]], }, // trailing comma\n"
                           "}\n// end");
    json_object *r = cg_json5_root(d);
    T_EQ_INT(json_object_get_int64(get(r, "$_")), 1);
    T_EQ_INT(json_object_get_int64(get(r, "_a1")), 2);
    T_EQ_INT(json_object_get_int64(get(r, "while")), 3);
    T_EQ_INT(json_object_get_int64(get(r, "null")), 4);
    T_EQ_INT(json_object_get_int64(get(r, "ab")), 5);
    T_EQ_INT(json_object_get_int64(get(r, "\xC3\xB9\xC5\x84\xC3\xAE")), 6);
    T_EQ_INT(json_object_get_int64(get(r, "single")), 7);
    T_EQ_INT(json_object_get_int64(get(r, "dq")), 8);
    T_EQ_INT(json_object_get_int64(get(r, "abc")), 9);
    T_EQ_INT(json_object_array_length(get(get(r, "nested"), "deep")), 3);
    cg_json5_free(d);
}

static void test_empty_strings_and_keys(void)
{
    /* regression (found by fuzz_json5): an empty first key */
    cg_json5_doc_t *d = ok("{'': 1}");
    T_EQ_INT(json_object_get_int64(get(cg_json5_root(d), "")), 1);
    cg_json5_free(d);
    d = ok("''");
    T_EQ_STR(json_object_get_string(cg_json5_root(d)), "");
    cg_json5_free(d);
    d = ok("{\"\": ''}");
    T_EQ_STR(json_object_get_string(get(cg_json5_root(d), "")), "");
    cg_json5_free(d);
}

static void test_duplicates_last_wins(void)
{
    cg_json5_doc_t *d = ok("{a: {x: 1}, b: 2,\n  a: 3}");
    json_object *r = cg_json5_root(d);
    T_EQ_INT(json_object_get_int64(get(r, "a")), 3);
    size_t n;
    const cg_json5_dup_t *dups = cg_json5_duplicates(d, &n);
    T_EQ_INT(n, 1);
    T_EQ_STR(dups[0].key, "a");
    T_EQ_INT(dups[0].pos.line, 2);
    T_EQ_INT(dups[0].pos.col, 3);
    cg_json5_pos_t p = cg_json5_key_pos(d, r, "a");
    T_EQ_INT(p.line, 2);
    T_EQ_INT(p.col, 3);
    cg_json5_free(d);
}

static void test_positions(void)
{
    const char *text = "{\n"
                       "  models: {\n"
                       "    'x y': [10, \"s\", null, {k: true}],\n"
                       "  },\r\n"
                       "\tz: 'caf\xC3\xA9', w: 1,\n"
                       "}";
    cg_json5_doc_t *d = ok(text);
    json_object *r = cg_json5_root(d);
    cg_json5_pos_t p = cg_json5_value_pos(d, r);
    T_EQ_INT(p.line, 1);
    T_EQ_INT(p.col, 1);
    json_object *models = get(r, "models");
    p = cg_json5_key_pos(d, r, "models");
    T_EQ_INT(p.line, 2);
    T_EQ_INT(p.col, 3);
    p = cg_json5_value_pos(d, models);
    T_EQ_INT(p.line, 2);
    T_EQ_INT(p.col, 11);
    json_object *arr = get(models, "x y");
    p = cg_json5_key_pos(d, models, "x y");
    T_EQ_INT(p.line, 3);
    T_EQ_INT(p.col, 5);
    p = cg_json5_value_pos(d, json_object_array_get_idx(arr, 1));
    T_EQ_INT(p.line, 3);
    T_EQ_INT(p.col, 17);
    json_object *inner = json_object_array_get_idx(arr, 3);
    p = cg_json5_value_pos(d, get(inner, "k"));
    T_EQ_INT(p.line, 3);
    T_EQ_INT(p.col, 32);
    /* after a CRLF, a tab counts as one column */
    p = cg_json5_key_pos(d, r, "z");
    T_EQ_INT(p.line, 5);
    T_EQ_INT(p.col, 2);
    /* a multi-byte character is one column */
    p = cg_json5_key_pos(d, r, "w");
    T_EQ_INT(p.line, 5);
    T_EQ_INT(p.col, 13);
    /* unknown things have no position */
    p = cg_json5_key_pos(d, r, "nope");
    T_EQ_INT(p.line, 0);
    p = cg_json5_value_pos(d, NULL);
    T_EQ_INT(p.line, 0);
    cg_json5_free(d);
}

static void test_syntax_errors(void)
{
    bad("", 1, 1, "unexpected end of input");
    bad("  // only a comment\n", 2, 1, "unexpected end of input");
    bad("{a:1,,}", 1, 6, "expected a property name or '}'");
    bad("{,}", 1, 2, "expected a property name or '}'");
    bad("[1,,2]", 1, 4, "unexpected ','");
    bad("[,]", 1, 2, "unexpected ','");
    bad("{a 1}", 1, 4, "expected ':' after property name");
    bad("{a:1 b:2}", 1, 6, "expected ',' or '}'");
    bad("[1 2]", 1, 4, "expected ',' or ']'");
    bad("{\n  a: 1,\n  b: 2\n  c: 3\n}", 4, 3, "expected ',' or '}'");
    bad("{\r\n a: 1\r\n b: 2}", 3, 2, "expected ',' or '}'");
    bad("{\"\xC3\xA9\xC3\xA9\": 1 x}", 1, 10, "expected ',' or '}'");
    bad("{a: 1", 1, 6, "expected ',' or '}'");
    bad("[1,", 1, 4, "unexpected end of input");
    bad("{1a: 2}", 1, 2, "expected a property name or '}'");
    bad("{a-b: 1}", 1, 3, "expected ':' after property name");
    bad("{\\u0020: 1}", 1, 2, "cannot appear in an unquoted property name");
    bad("{\\x41: 1}", 1, 2, "only \\u is allowed");
    bad("tru", 1, 1, "unexpected identifier 'tru'");
    bad("{a: undefined}", 1, 5, "unexpected identifier 'undefined'");
    bad("{a: hello}", 1, 5, "strings need quotes");
    bad("1 2", 1, 3, "after the end of the document");
    bad("{} {}", 1, 4, "after the end of the document");
    bad("@", 1, 1, "unexpected '@'");
    bad("/", 1, 1, "unexpected '/'");
    bad("[1] /* never closed", 1, 5, "unterminated comment");
    bad("'abc", 1, 1, "unterminated string");
    bad("\"abc\\", 1, 1, "unterminated string");
    bad("\"a\nb\"", 1, 3, "line break inside a string");
    bad("'\\x4'", 1, 2, "invalid \\x escape");
    bad("'\\u12'", 1, 2, "invalid \\u escape");
    bad("'\\1'", 1, 2, "invalid escape '\\1'");
    bad("'\\01'", 1, 2, "octal escape sequences are not allowed");
    bad("[\"\xC3\x28\"]", 1, 3, "invalid UTF-8");
    bad("['\xED\xA0\x80']", 1, 3, "invalid UTF-8"); /* an encoded surrogate */
    bad("\xFF", 1, 1, "invalid UTF-8");
}

static void test_number_errors(void)
{
    bad("07", 1, 1, "leading zeros");
    bad("[00]", 1, 2, "leading zeros");
    bad("-012", 1, 1, "leading zeros");
    bad("0x", 1, 1, "invalid number");
    bad("0xG1", 1, 1, "invalid number");
    bad("1e", 1, 1, "invalid number");
    bad("1e+", 1, 1, "invalid number");
    bad(".", 1, 1, "invalid number");
    bad("+", 1, 1, "invalid number");
    bad("-.e1", 1, 1, "invalid number");
    bad("1a", 1, 1, "invalid number");
    bad("0b101", 1, 1, "invalid number");
    bad("[1, Infinityx]", 1, 5, "unexpected identifier 'Infinityx'");
    bad("-Inf", 1, 2, "unexpected identifier 'Inf'");
    bad("[1.2.3]", 1, 5, "expected ',' or ']'");
}

static void test_limits(void)
{
    /* depth: 64 levels are fine, 65 are not */
    char deep[200];
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    deep[128] = '\0';
    cg_json5_free(ok(deep));
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    bad(deep, 1, 65, "nesting deeper than 64 levels");

    cg_json5_limits_t lim = {.max_depth = 2, .max_string = 8, .max_bytes = 32};
    bad_n("{a: {b: {}}}", 12, &lim, 1, 9, "nesting deeper than 2 levels");
    bad_n("'123456789'", 11, &lim, 1, 1, "string longer than 8 bytes");
    bad_n("{'123456789': 1}", 16, &lim, 1, 2, "string longer than 8 bytes");
    bad_n("{abcdefghij: 1}", 15, &lim, 1, 2, "string longer than 8 bytes");
    bad_n("'\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041'", 56, &lim, 1, 1,
          "input larger than 32 bytes");
    cg_json5_doc_t *d = NULL;
    cg_json5_error_t e;
    T_EQ_INT(cg_json5_parse("'12345678'", 10, &lim, &d, &e), 0);
    cg_json5_free(d);
    T_EQ_INT(cg_json5_parse("{a: {b: {}}}", 12, &lim, &d, &e), CG_ELIMIT);
    T_EQ_INT(cg_json5_parse("{a: }", 5, &lim, &d, &e), CG_EINVAL);

    /* a very deep document is an error, not a stack overflow */
    size_t n = 200000;
    char *big = malloc(n);
    memset(big, '[', n);
    bad_n(big, n, NULL, 1, 65, "nesting deeper");
    memset(big, '{', n);
    bad_n(big, n, NULL, 1, 2, "expected a property name");
    free(big);
}

static void test_not_nul_terminated(void)
{
    /* the parser honours len: trailing bytes beyond it are never read */
    char buf[8] = {'[', '1', ',', '2', ']', 'x', 'x', 'x'};
    cg_json5_doc_t *d = NULL;
    cg_json5_error_t e;
    T_EQ_INT(cg_json5_parse(buf, 5, NULL, &d, &e), 0);
    T_EQ_INT(json_object_array_length(cg_json5_root(d)), 2);
    cg_json5_free(d);
    /* an embedded NUL is an ordinary (unexpected) character */
    bad_n("[1,\0]", 5, NULL, 1, 4, "U+0000");
    bad_n("{\"a\\u0000b\": 1}", 15, NULL, 1, 2, "NUL");
}

int main(void)
{
    T_RUN(test_spec_example);
    T_RUN(test_strict_json_still_parses);
    T_RUN(test_numbers);
    T_RUN(test_strings);
    T_RUN(test_keys_and_comments);
    T_RUN(test_empty_strings_and_keys);
    T_RUN(test_duplicates_last_wins);
    T_RUN(test_positions);
    T_RUN(test_syntax_errors);
    T_RUN(test_number_errors);
    T_RUN(test_limits);
    T_RUN(test_not_nul_terminated);
    T_DONE();
}
