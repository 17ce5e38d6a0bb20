/*
 * test_jscan.c — strict JSON scanning, member spans, decoding, quoting and
 * splice edits, checked against hand-written expectations and against json-c
 * (the project's tree parser) on the OpenClaw request fixtures.
 */
#include "proto/jscan.h"
#include "tests/t.h"

#include <json.h>

/* A second copy of the scanner with the portable (SWAR) string loop under
 * other names, so both loops are tested against each other on any machine;
 * the library's copy uses SSE2 where the compiler offers it. */
#include "tests/proto/jscan_port.h"

#define DEPTH 64

/* ---- helpers ---- */

static int scan_obj(cg_jscan_t *js, const char *s, cg_jerr_t *err)
{
    return cg_jscan_object(js, s, strlen(s), DEPTH, err);
}

/* json-c, strict, on exactly len bytes; NULL if it refuses. */
static json_object *jc_parse(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(2 * DEPTH);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    /* With the terminating NUL: json-c only ends a top-level number there. */
    char *z = cg_strndup(s, len);
    json_object *o = json_tokener_parse_ex(tok, z, (int)len + 1);
    cg_free(z);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    cg_buf_t b = {0};
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        cg_buf_append(&b, tmp, n);
    fclose(f);
    cg_buf_append(&b, "", 0);
    return cg_buf_steal(&b, len);
}

static char *raw_of(const cg_jscan_t *js, const cg_jmember_t *m)
{
    return cg_strndup(js->src + m->val_off, m->val_len);
}

static char *key_of(const cg_jscan_t *js, const cg_jmember_t *m)
{
    return cg_strndup(js->src + m->key_off, m->key_len);
}

/* ---- validation ---- */

static void test_valid_documents(void)
{
    static const char *docs[] = {
        "{}",
        " \t\r\n{ }\n",
        "{\"a\" : [ ] , \"b\":{ } ,\"c\":[{}, [], \"\", 0]}",
        "{\"n\":[-0, 0.0e+10, 1E-5, 12.5e2, -1.25, 123456789012345678901234567890, 1e999]}",
        "{\"s\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\u0000 \\uFFFF \\ud83d\\ude00\"}",
        "{\"u\":\"\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF \x7F\"}",
        "{\"t\":true,\"f\":false,\"z\":null}",
        "{\"\":1,\"\":2}",
        "{\"dup\":1,\"dup\":2}",
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(docs); i++) {
        cg_jscan_t js;
        cg_jerr_t err = {0};
        int rc = scan_obj(&js, docs[i], &err);
        T_ASSERTF(rc == 0, "doc %zu rejected at %zu: %s", i, err.offset, err.msg);
        T_EQ_INT(cg_jscan_validate(docs[i], strlen(docs[i]), DEPTH, NULL), 0);
        json_object *o = jc_parse(docs[i], strlen(docs[i]));
        T_ASSERTF(o != NULL, "json-c rejects doc %zu", i);
        json_object_put(o);
    }
    static const char *scalars[] = {"\"x\"", " 1 ", "true", "false", "null", "-1.5e3", "[]"};
    for (size_t i = 0; i < CG_ARRAY_LEN(scalars); i++)
        T_EQ_INT(cg_jscan_validate(scalars[i], strlen(scalars[i]), DEPTH, NULL), 0);
    /* A body is an object: validate accepts scalars, jscan_object does not. */
    cg_jscan_t js;
    cg_jerr_t err;
    T_EQ_INT(scan_obj(&js, "[]", &err), CG_EINVAL);
    T_CONTAINS(err.msg, "expected a JSON object");
}

typedef struct bad {
    const char *doc;
    size_t len; /* 0: strlen */
    size_t offset;
    const char *msg;
} bad_t;

static void test_invalid_documents(void)
{
    static const bad_t bad[] = {
        {"{\"a\":1,}", 0, 7, "trailing comma in object"},
        {"{\"a\":[1,]}", 0, 8, "trailing comma in array"},
        {"{\"a\":[1,\n ]}", 0, 10, "trailing comma in array"},
        {"{'a':1}", 0, 1, "single-quoted"},
        {"{\"a\":'x'}", 0, 5, "single-quoted"},
        {"{\"a\":01}", 0, 5, "leading zero"},
        {"{\"a\":-012}", 0, 6, "leading zero"},
        {"{\"a\":1.}", 0, 7, "digit after '.'"},
        {"{\"a\":.5}", 0, 5, "expected a value"},
        {"{\"a\":+1}", 0, 5, "expected a value"},
        {"{\"a\":1e}", 0, 7, "exponent"},
        {"{\"a\":1e+}", 0, 8, "exponent"},
        {"{\"a\":-}", 0, 6, "expected a digit"},
        {"{\"a\":-Infinity}", 0, 6, "expected a digit"},
        {"{\"a\":NaN}", 0, 5, "expected a value"},
        {"{\"a\":tru}", 0, 5, "invalid literal"},
        {"{\"a\":nul", 0, 5, "invalid literal"},
        {"{\"a\":True}", 0, 5, "expected a value"},
        {"{\"a\":\"\\ud800\"}", 0, 6, "lone high surrogate"},
        {"{\"a\":\"\\ud800\\u0041\"}", 0, 6, "lone high surrogate"},
        {"{\"a\":\"\\ud800\\n\"}", 0, 6, "lone high surrogate"},
        {"{\"a\":\"\\udc00\"}", 0, 6, "lone low surrogate"},
        {"{\"a\":\"x\\ude00\\ud800\"}", 0, 7, "lone low surrogate"},
        {"{\"a\":\"\\u12G4\"}", 0, 6, "\\u escape"},
        {"{\"a\":\"\\u12\"}", 0, 6, "\\u escape"},
        {"{\"a\":\"\\x\"}", 0, 6, "invalid escape"},
        {"{\"a\":\"\\'\"}", 0, 6, "invalid escape"},
        {"{\"a\":\"x\x01\"}", 0, 7, "control character"},
        {"{\"a\":\"tab\there\"}", 0, 9, "control character"},
        {"{\"a\":\"nul\0\"}", 12, 9, "control character"},
        {"{\"a\":\"\xC3(\"}", 0, 6, "invalid UTF-8"},
        {"{\"a\":\"\xC0\xAF\"}", 0, 6, "invalid UTF-8"},
        {"{\"a\":\"\xE0\x80\xAF\"}", 0, 6, "invalid UTF-8"},
        {"{\"a\":\"\xED\xA0\x80\"}", 0, 6, "invalid UTF-8"},
        {"{\"a\":\"\xF0\x80\x80\x80\"}", 0, 6, "invalid UTF-8"},
        {"{\"a\":\"\xF4\x90\x80\x80\"}", 0, 6, "invalid UTF-8"},
        {"{\"a\":\"\xF5\x80\x80\x80\"}", 0, 6, "invalid UTF-8"},
        {"{\"a\":\"\x80\"}", 0, 6, "invalid UTF-8"},
        {"{\"a\":\"ok\xE2\x82\"}", 0, 8, "invalid UTF-8"},
        {"{\"a\":\"ab", 0, 5, "unterminated string"},
        {"{\"a\":\"ab\\", 0, 5, "unterminated string"},
        {"{\"a\":", 0, 5, "unexpected end of input"},
        {"{\"a\":1", 0, 6, "unexpected end of input"},
        {"{", 0, 1, "unexpected end of input"},
        {"", 0, 0, "empty body"},
        {"  \n", 0, 3, "empty body"},
        {"{\"a\":1} x", 0, 8, "unexpected data after"},
        {"{\"a\":1}{}", 0, 7, "unexpected data after"},
        {"{\"a\":1}\0", 8, 7, "unexpected data after"},
        {"\xEF\xBB\xBF{}", 0, 0, "expected a JSON object"},
        {"{\"a\" 1}", 0, 5, "expected ':'"},
        {"{\"a\":1 \"b\":2}", 0, 7, "expected ',' or '}'"},
        {"{\"a\":[1 2]}", 0, 8, "expected ',' or ']'"},
        {"{\"a\":[1}", 0, 7, "expected ',' or ']'"},
        {"{\"a\":{\"b\":1]}", 0, 11, "expected ',' or '}'"},
        {"{,}", 0, 1, "expected a string as object key"},
        {"{\"a\":1,,\"b\":2}", 0, 7, "expected a string as object key"},
        {"{a:1}", 0, 1, "expected a string as object key"},
        {"{\"a\":1 /* c */}", 0, 7, "expected ',' or '}'"},
        {"{\v}", 0, 1, "expected a string as object key"},
        {"{\"a\":\xC2\xA0"
         "1}",
         0, 5, "expected a value"},
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(bad); i++) {
        const bad_t *b = &bad[i];
        size_t len = b->len ? b->len : strlen(b->doc);
        cg_jscan_t js;
        cg_jerr_t err = {.offset = 999};
        int rc = cg_jscan_object(&js, b->doc, len, DEPTH, &err);
        T_ASSERTF(rc == CG_EINVAL, "case %zu (%s) accepted", i, b->doc);
        T_ASSERTF(err.offset == b->offset && strstr(err.msg, b->msg),
                  "case %zu (%s): got \"%s\" at %zu, want \"%s\" at %zu", i, b->doc, err.msg,
                  err.offset, b->msg, b->offset);
        T_EQ_INT(js.n_members, 0);
        T_EQ_INT(cg_jscan_validate(b->doc, len, DEPTH, NULL), CG_EINVAL);
    }
    /* A NULL err is allowed. */
    T_EQ_INT(cg_jscan_validate("[", 1, DEPTH, NULL), CG_EINVAL);
    /* Scalars: trailing garbage and bad literals. */
    cg_jerr_t err;
    T_EQ_INT(cg_jscan_validate("1 2", 3, DEPTH, &err), CG_EINVAL);
    T_EQ_INT(err.offset, 2);
    T_EQ_INT(cg_jscan_validate("\"a\" x", 5, DEPTH, &err), CG_EINVAL);
    T_EQ_INT(err.offset, 4);
}

/* The string body loop reads 8 bytes at a time: put each kind of special
 * byte at every position around the word boundaries. */
static void test_string_boundaries(void)
{
    typedef struct ins {
        const char *s;
        bool ok;
        const char *decoded; /* for ok ones */
        const char *msg;     /* for bad ones: error at the insertion point */
    } ins_t;
    static const ins_t ins[] = {
        {"\\\"", true, "\"", NULL},
        {"\\\\", true, "\\", NULL},
        {"\\n", true, "\n", NULL},
        {"\\u00e9", true, "\xC3\xA9", NULL},
        {"\\ud83d\\ude00", true, "\xF0\x9F\x98\x80", NULL},
        {"\xC3\xA9", true, "\xC3\xA9", NULL},
        {"\xE2\x82\xAC", true, "\xE2\x82\xAC", NULL},
        {"\xF0\x9F\x98\x80", true, "\xF0\x9F\x98\x80", NULL},
        {"\x7F", true, "\x7F", NULL},
        {"/", true, "/", NULL},
        {"\x01", false, NULL, "control character"},
        {"\x1F", false, NULL, "control character"},
        {"\n", false, NULL, "control character"},
        {"\xC3(", false, NULL, "invalid UTF-8"},
        {"\xE0\x80\x80", false, NULL, "invalid UTF-8"},
        {"\xED\xA0\x80", false, NULL, "invalid UTF-8"},
        {"\xF4\x90\x80\x80", false, NULL, "invalid UTF-8"},
        {"\xF8", false, NULL, "invalid UTF-8"},
        {"\x80", false, NULL, "invalid UTF-8"},
        {"\\ud800", false, NULL, "lone high surrogate"},
        {"\\q", false, NULL, "invalid escape"},
    };
    for (size_t k = 0; k < CG_ARRAY_LEN(ins); k++) {
        for (size_t pre = 0; pre <= 20; pre++) {
            for (size_t post = 0; post <= 11; post++) {
                cg_buf_t d = {0}, want = {0};
                cg_buf_puts(&d, "{\"k\":\"");
                for (size_t i = 0; i < pre; i++) {
                    cg_buf_puts(&d, "a");
                    cg_buf_puts(&want, "a");
                }
                cg_buf_puts(&d, ins[k].s);
                if (ins[k].ok)
                    cg_buf_puts(&want, ins[k].decoded);
                for (size_t i = 0; i < post; i++) {
                    cg_buf_puts(&d, "b");
                    cg_buf_puts(&want, "b");
                }
                cg_buf_puts(&d, "\"}");
                cg_jscan_t js;
                cg_jerr_t err = {0};
                int rc = cg_jscan_object(&js, d.data, d.len, DEPTH, &err);
                if (ins[k].ok) {
                    T_ASSERTF(rc == 0, "insert %zu pre %zu post %zu: %s at %zu", k, pre, post,
                              err.msg, err.offset);
                    cg_buf_t out = {0};
                    T_EQ_INT(cg_jscan_string(&js, cg_jscan_get(&js, "k"), &out), 0);
                    T_ASSERT(out.len == want.len && memcmp(out.data, want.data, out.len) == 0);
                    cg_buf_free(&out);
                } else {
                    T_ASSERTF(rc == CG_EINVAL && err.offset == 6 + pre &&
                                  strstr(err.msg, ins[k].msg),
                              "insert %zu pre %zu post %zu: rc %d \"%s\" at %zu", k, pre, post, rc,
                              err.msg, err.offset);
                }
                cg_buf_free(&d);
                cg_buf_free(&want);
            }
        }
    }
    /* An unescaped quote ends the string early: the rest is not JSON. */
    for (size_t pre = 0; pre <= 17; pre++) {
        cg_buf_t d = {0};
        cg_buf_puts(&d, "{\"k\":\"");
        for (size_t i = 0; i < pre; i++)
            cg_buf_puts(&d, "a");
        cg_buf_puts(&d, "\"bb\"}");
        cg_jerr_t err;
        T_EQ_INT(cg_jscan_validate(d.data, d.len, DEPTH, &err), CG_EINVAL);
        T_EQ_INT(err.offset, 7 + pre);
        cg_buf_free(&d);
    }
}

static void test_depth_limit(void)
{
    cg_jscan_t js;
    cg_jerr_t err;
    T_EQ_INT(cg_jscan_object(&js, "{\"a\":1}", 7, 1, &err), 0);
    T_EQ_INT(cg_jscan_object(&js, "{\"a\":{}}", 8, 1, &err), CG_EINVAL);
    T_EQ_INT(err.offset, 5);
    T_CONTAINS(err.msg, "nesting too deep");
    T_EQ_INT(cg_jscan_object(&js, "{\"a\":[]}", 8, 1, &err), CG_EINVAL);
    T_EQ_INT(cg_jscan_object(&js, "{\"a\":[]}", 8, 2, &err), 0);
    T_EQ_INT(cg_jscan_validate("1", 1, 0, &err), 0);
    T_EQ_INT(cg_jscan_validate("[]", 2, 0, &err), CG_EINVAL);

    /* Exactly at the limit passes, one more fails; alternate arrays and
     * objects so the bit stack is exercised across several words. */
    for (int d = 60; d <= 200; d += 70) {
        cg_buf_t b = {0};
        cg_buf_puts(&b, "{");
        for (int i = 1; i < d; i++)
            cg_buf_puts(&b, i % 2 ? "\"k\":[" : "{");
        for (int i = d - 1; i >= 1; i--)
            cg_buf_puts(&b, i % 2 ? "]" : "}");
        cg_buf_puts(&b, "}");
        T_EQ_INT(cg_jscan_object(&js, b.data, b.len, d, &err), 0);
        T_EQ_INT(js.n_members, 1);
        T_EQ_INT(cg_jscan_object(&js, b.data, b.len, d - 1, &err), CG_EINVAL);
        T_CONTAINS(err.msg, "nesting too deep");
        json_object *o = jc_parse(b.data, b.len); /* same shape json-c side */
        json_object_put(o);
        cg_buf_free(&b);
    }
    /* A hostile 200,000-deep array costs nothing (no recursion). */
    size_t n = 200000;
    char *deep = cg_malloc(n);
    memset(deep, '[', n);
    T_EQ_INT(cg_jscan_validate(deep, n, 100000, &err), CG_EINVAL);
    T_CONTAINS(err.msg, "nesting too deep");
    T_EQ_INT(err.offset, 1024); /* max_depth is capped */
    cg_free(deep);
}

/* ---- spans, lookup, decoding ---- */

static void test_member_spans(void)
{
    const char *s = " { \"model\" : \"gpt\" ,\"n\":-1.5e3,\"o\":{\"x\":[1,{}]},\"a\":[],"
                    "\"t\":true,\"f\":false,\"z\":null } ";
    cg_jscan_t js;
    cg_jerr_t err;
    T_EQ_INT(scan_obj(&js, s, &err), 0);
    T_EQ_INT(js.obj_open, 1);
    T_EQ_INT(js.obj_close, strlen(s) - 2);
    T_EQ_INT(js.n_members, 7);
    T_ASSERT(!js.truncated);
    static const char *keys[] = {"model", "n", "o", "a", "t", "f", "z"};
    static const char *vals[] = {"\"gpt\"", "-1.5e3", "{\"x\":[1,{}]}", "[]", "true",
                                 "false",   "null"};
    static const cg_jtype_t types[] = {CG_JSTRING, CG_JNUMBER, CG_JOBJECT, CG_JARRAY,
                                       CG_JTRUE,   CG_JFALSE,  CG_JNULL};
    for (size_t i = 0; i < 7; i++) {
        const cg_jmember_t *m = &js.members[i];
        char *k = key_of(&js, m), *v = raw_of(&js, m);
        T_EQ_STR(k, keys[i]);
        T_EQ_STR(v, vals[i]);
        T_EQ_INT(m->type, types[i]);
        T_EQ_INT(s[m->mem_off], '"');
        T_EQ_INT(m->mem_off + m->mem_len, m->val_off + m->val_len);
        T_ASSERT(cg_jscan_get(&js, keys[i]) == m);
        cg_free(k);
        cg_free(v);
    }
    /* Escaped keys: matched by their decoded form, the last one wins, and
     * the length shortcut never skips one. */
    cg_jscan_t je;
    const char *esc = "{\"model\":1,\"mod\\u0065l\":2,\"m\\u006f\":3,\"x\\\"y\":4,\"a\\\\b\":5,"
                      "\"id\":6,\"i\\u0064\":7,\"idd\":8}";
    T_EQ_INT(scan_obj(&je, esc, &err), 0);
    T_EQ_INT(je.n_members, 8);
    T_ASSERT(cg_jscan_get(&je, "model") == &je.members[1]);
    T_ASSERT(cg_jscan_get(&je, "mo") == &je.members[2]);
    T_ASSERT(cg_jscan_get(&je, "x\"y") == &je.members[3]);
    T_ASSERT(cg_jscan_get(&je, "a\\b") == &je.members[4]);
    T_ASSERT(cg_jscan_get(&je, "id") == &je.members[6]);
    T_ASSERT(cg_jscan_get(&je, "idd") == &je.members[7]);
    T_ASSERT(cg_jscan_get(&je, "i") == NULL);
    T_ASSERT(cg_jscan_get(&je, "a\\\\b") == NULL);
    /* An escape as the first byte (the first-byte shortcut must let it
     * through), and the empty key. */
    const char *esc1 = "{\"\\u006dodel\":1,\"\\u0069d\":2,\"\":3,\"\\u0061\":4}";
    T_EQ_INT(scan_obj(&je, esc1, &err), 0);
    T_EQ_INT(je.n_members, 4);
    T_ASSERT(cg_jscan_get(&je, "model") == &je.members[0]);
    T_ASSERT(cg_jscan_get(&je, "id") == &je.members[1]);
    T_ASSERT(cg_jscan_get(&je, "") == &je.members[2]);
    T_ASSERT(cg_jscan_get(&je, "a") == &je.members[3]);
    T_ASSERT(cg_jscan_get(&je, "b") == NULL);
    T_ASSERT(cg_jscan_get(&js, "missing") == NULL);
    T_ASSERT(cg_jscan_get(&js, "mode") == NULL);
    T_ASSERT(cg_jscan_get(&js, "x") == NULL); /* nested keys are not top-level */
    /* A nested object is scanned by pointing at its span. */
    cg_jscan_t sub;
    const cg_jmember_t *o = cg_jscan_get(&js, "o");
    T_EQ_INT(cg_jscan_object(&sub, s + o->val_off, o->val_len, DEPTH, &err), 0);
    T_EQ_INT(sub.n_members, 1);
    T_EQ_INT(cg_jscan_get(&sub, "x")->type, CG_JARRAY);
}

static void test_get_duplicates_and_escaped_keys(void)
{
    const char *s = "{\"model\":\"a\",\"mo\\u0064el\":\"b\",\"x\\\"y\":1,\"\\u00e9\":2,\"\":3}";
    cg_jscan_t js;
    cg_jerr_t err;
    T_EQ_INT(scan_obj(&js, s, &err), 0);
    const cg_jmember_t *m = cg_jscan_get(&js, "model");
    T_ASSERT(m == &js.members[1]); /* the last one, as json-c keeps it */
    char *v = raw_of(&js, m);
    T_EQ_STR(v, "\"b\"");
    cg_free(v);
    T_ASSERT(cg_jscan_get(&js, "x\"y") == &js.members[2]);
    T_ASSERT(cg_jscan_get(&js, "\xC3\xA9") == &js.members[3]);
    T_ASSERT(cg_jscan_get(&js, "") == &js.members[4]);
    T_ASSERT(cg_jscan_get(&js, "mo") == NULL);
    T_ASSERT(cg_jscan_get(&js, "modelx") == NULL);
}

static void test_string_decode(void)
{
    const char *s =
        "{\"s\":\"a\\u0000b\\n\\\"\\\\\\/\\ud83d\\ude00\xC3\xA9\\t\",\"e\":\"\",\"n\":1}";
    cg_jscan_t js;
    cg_jerr_t err;
    T_EQ_INT(scan_obj(&js, s, &err), 0);
    cg_buf_t out = {0};
    cg_buf_puts(&out, ">"); /* appends to what is there */
    T_EQ_INT(cg_jscan_string(&js, cg_jscan_get(&js, "s"), &out), 0);
    /* \u0000 is kept: the length counts past the NUL the C string stops at. */
    static const char want[] = ">a\0b\n\"\\/\xF0\x9F\x98\x80\xC3\xA9\t";
    T_EQ_INT(out.len, sizeof(want) - 1);
    T_ASSERT(memcmp(out.data, want, out.len) == 0);
    T_EQ_INT(out.data[out.len], '\0');
    T_EQ_INT(strlen(out.data), 2);
    cg_buf_free(&out);

    T_EQ_INT(cg_jscan_string(&js, cg_jscan_get(&js, "e"), &out), 0);
    T_EQ_INT(out.len, 0);
    T_ASSERT(out.data != NULL);
    T_EQ_STR(out.data, "");
    T_EQ_INT(cg_jscan_string(&js, cg_jscan_get(&js, "n"), &out), CG_EINVAL);
    T_EQ_INT(cg_jscan_string(&js, NULL, &out), CG_EINVAL);
    cg_buf_free(&out);
}

static void test_quote(void)
{
    cg_buf_t out = {0};
    static const char in[] = "a\"b\\c/d\x01\x1f\b\f\n\r\t\x7f\xC3\xA9\0z";
    cg_json_quote(&out, in, sizeof(in) - 1);
    T_EQ_STR(out.data, "\"a\\\"b\\\\c/d\\u0001\\u001f\\b\\f\\n\\r\\t\x7f\xC3\xA9\\u0000z\"");
    /* Round trip: what quote writes, jscan reads back byte for byte. */
    cg_buf_t doc = {0}, back = {0};
    cg_buf_puts(&doc, "{\"k\":");
    cg_buf_append(&doc, out.data, out.len);
    cg_buf_puts(&doc, "}");
    cg_jscan_t js;
    cg_jerr_t err;
    T_EQ_INT(cg_jscan_object(&js, doc.data, doc.len, DEPTH, &err), 0);
    T_EQ_INT(cg_jscan_string(&js, cg_jscan_get(&js, "k"), &back), 0);
    T_EQ_INT(back.len, sizeof(in) - 1);
    T_ASSERT(memcmp(back.data, in, back.len) == 0);
    cg_buf_reset(&out);
    cg_json_quote(&out, "", 0);
    T_EQ_STR(out.data, "\"\"");
    cg_buf_free(&out);
    cg_buf_free(&doc);
    cg_buf_free(&back);
}

/* ---- edits ---- */

/* Apply edits to doc and compare with want; the result must also pass
 * jscan and json-c. */
static void check_apply(const char *doc, const cg_jedit_t *e, size_t n, const char *want)
{
    cg_jscan_t js, js2;
    cg_jerr_t err;
    T_ASSERTF(scan_obj(&js, doc, &err) == 0, "%s: %s", doc, err.msg);
    cg_buf_t out = {0};
    cg_jscan_apply(&js, e, n, &out);
    T_ASSERTF(strcmp(out.data, want) == 0, "apply on %s: got %s, want %s", doc, out.data, want);
    T_ASSERTF(cg_jscan_object(&js2, out.data, out.len, DEPTH, &err) == 0, "%s: %s at %zu", out.data,
              err.msg, err.offset);
    json_object *o = jc_parse(out.data, out.len);
    T_ASSERT(o != NULL);
    json_object_put(o);
    cg_buf_free(&out);
}

static void test_apply_cases(void)
{
    const cg_jedit_t set_b = {"model", "\"b\"", 3};
    const cg_jedit_t del_model = {"model", NULL, 0};
    const cg_jedit_t del_x = {"x", NULL, 0};
    const cg_jedit_t add_k = {"k", "1", 1};

    check_apply("{\"model\":\"a\",\"x\":1}", &set_b, 1, "{\"model\":\"b\",\"x\":1}");
    check_apply("{\"model\":\"a\",\"x\":1}", &del_model, 1, "{\"x\":1}");
    check_apply("{\"model\":\"a\",\"x\":1}", &del_x, 1, "{\"model\":\"a\"}");
    check_apply("{\"x\":1,\"model\":\"a\",\"y\":2}", &del_model, 1, "{\"x\":1,\"y\":2}");
    check_apply("{ \"model\" : 1 }", &del_model, 1, "{  }");
    check_apply("{}", &add_k, 1, "{\"k\":1}");
    check_apply(" { \n } \n", &add_k, 1, " { \n \"k\":1} \n");
    check_apply("{\"a\":2}", &add_k, 1, "{\"a\":2,\"k\":1}");
    check_apply("{\"model\":1}", &del_x, 1, "{\"model\":1}"); /* absent delete: no-op */
    check_apply("{\"model\" :\t\"a\" , \"x\":1}", NULL, 0, "{\"model\" :\t\"a\" , \"x\":1}");
    check_apply("{\"model\" :\t\"a\" , \"x\":1}", &set_b, 1, "{\"model\" :\t\"b\" , \"x\":1}");

    /* Pretty-printed input keeps its layout around what is left. */
    check_apply("{\n  \"a\": 1,\n  \"model\": 2\n}\n", &del_model, 1, "{\n  \"a\": 1\n}\n");
    check_apply("{\n  \"model\": 1,\n  \"a\": 2\n}\n", &del_model, 1, "{\n  \"a\": 2\n}\n");
    check_apply("{\n  \"model\": 1,\n  \"a\": 2\n}\n", &add_k, 1,
                "{\n  \"model\": 1,\n  \"a\": 2,\"k\":1\n}\n");

    /* Duplicates: every occurrence is replaced or deleted. */
    check_apply("{\"model\":1,\"x\":2,\"model\":3}", &set_b, 1,
                "{\"model\":\"b\",\"x\":2,\"model\":\"b\"}");
    check_apply("{\"model\":1,\"x\":2,\"model\":3}", &del_model, 1, "{\"x\":2}");
    check_apply("{\"model\":1,\"model\":3}", &del_model, 1, "{}");
    /* Keys spelled with escapes are the same key. */
    check_apply("{\"mo\\u0064el\":1}", &set_b, 1, "{\"mo\\u0064el\":\"b\"}");

    /* Several edits at once; for a repeated key the last edit counts. */
    const cg_jedit_t many[] = {
        {"model", "\"m\"", 3}, {"stream", NULL, 0}, {"new", "{\"a\":[1]}", 9}, {"q\"k", "null", 4},
        {"dup", "1", 1},       {"dup", "2", 1},     {"x", "true", 4},          {"x", NULL, 0},
    };
    check_apply("{\"stream\":true,\"model\":\"a\",\"x\":0}", many, CG_ARRAY_LEN(many),
                "{\"model\":\"m\",\"new\":{\"a\":[1]},\"q\\\"k\":null,\"dup\":2}");
    const cg_jedit_t del_then_set[] = {{"model", NULL, 0}, {"model", "\"z\"", 3}};
    check_apply("{\"model\":\"a\"}", del_then_set, 2, "{\"model\":\"z\"}");
    check_apply("{\"a\":1}", del_then_set, 2, "{\"a\":1,\"model\":\"z\"}");

    /* Delete every member of a larger object, one subset at a time. */
    const char *doc = "{\"a\":1, \"b\":[2], \"c\":{\"d\":3} ,\"e\":\"4\"}";
    const char *names[] = {"a", "b", "c", "e"};
    for (unsigned mask = 0; mask < 16; mask++) {
        cg_jedit_t e[4];
        size_t n = 0;
        for (unsigned i = 0; i < 4; i++)
            if (mask & (1u << i))
                e[n++] = (cg_jedit_t){names[i], NULL, 0};
        cg_jscan_t js, js2;
        cg_jerr_t err;
        T_EQ_INT(scan_obj(&js, doc, &err), 0);
        cg_buf_t out = {0};
        cg_jscan_apply(&js, e, n, &out);
        T_ASSERTF(cg_jscan_object(&js2, out.data, out.len, DEPTH, &err) == 0, "mask %u: %s", mask,
                  out.data);
        T_EQ_INT(js2.n_members, 4 - n);
        for (unsigned i = 0; i < 4; i++)
            T_EQ_INT(cg_jscan_get(&js2, names[i]) != NULL, !(mask & (1u << i)));
        cg_buf_free(&out);
    }
}

static void test_truncated_members(void)
{
    /* More members than the table holds: still validated, and edits still
     * produce valid JSON even when every recorded member is deleted. */
    cg_buf_t b = {0};
    cg_buf_puts(&b, "{");
    for (int i = 0; i < 200; i++)
        cg_buf_printf(&b, "%s\"k%d\" : %d", i ? " , " : "", i, i);
    cg_buf_puts(&b, "}");
    cg_jscan_t js, js2;
    cg_jerr_t err;
    T_EQ_INT(cg_jscan_object(&js, b.data, b.len, DEPTH, &err), 0);
    T_ASSERT(js.truncated);
    T_EQ_INT(js.n_members, CG_JSCAN_MAX_MEMBERS);
    T_ASSERT(cg_jscan_get(&js, "k127") != NULL);
    T_ASSERT(cg_jscan_get(&js, "k128") == NULL);

    cg_jedit_t e[CG_JSCAN_MAX_MEMBERS + 1];
    char names[CG_JSCAN_MAX_MEMBERS][16];
    for (int i = 0; i < CG_JSCAN_MAX_MEMBERS; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d", i);
        e[i] = (cg_jedit_t){names[i], NULL, 0};
    }
    for (int with_add = 0; with_add < 2; with_add++) {
        e[CG_JSCAN_MAX_MEMBERS] = (cg_jedit_t){"model", "\"m\"", 3};
        cg_buf_t out = {0};
        cg_jscan_apply(&js, e, CG_JSCAN_MAX_MEMBERS + (size_t)with_add, &out);
        T_ASSERTF(cg_jscan_object(&js2, out.data, out.len, DEPTH, &err) == 0, "%s at %zu", err.msg,
                  err.offset);
        T_EQ_INT(js2.n_members, 72 + with_add);
        json_object *o = jc_parse(out.data, out.len);
        T_ASSERT(o != NULL);
        T_EQ_INT(json_object_object_length(o), 72 + with_add);
        json_object_put(o);
        cg_buf_free(&out);
    }
    cg_buf_free(&b);
}

/* ---- OpenClaw fixtures: scan, edit, compare with json-c ---- */

static const char *FIXTURES[] = {
    "openai-completions-reasoning-effort.trimmed.json",
    "openai-completions-reasoning.trimmed.json",
    "openai-completions-tool.trimmed.json",
    "openai-completions.trimmed.json",
    "openai-responses-reasoning.trimmed.json",
    "openai-responses-tool.trimmed.json",
    "openai-responses.trimmed.json",
};

static char *fixture_path(const char *name)
{
    /* Next to this source file, whatever the working directory's depth. */
    const char *here = __FILE__;
    const char *slash = strrchr(here, '/');
    return cg_sprintf("%.*s/fixtures/%s", slash ? (int)(slash - here) : 1, slash ? here : ".",
                      name);
}

/* Fixture f's whole text (cg_free it), asserting it could be read. */
static char *fixture_text(size_t f, size_t *len)
{
    char *path = fixture_path(FIXTURES[f]);
    char *text = read_file(path, len);
    T_ASSERTF(text != NULL, "cannot read %s", path);
    cg_free(path);
    return text;
}

/* Check edited against orig: model set to new_model, del gone, add_key
 * holding add_val, every other member equal in json-c's eyes and byte for
 * byte in the body. */
static void check_edit_result(const char *body, size_t body_len, json_object *orig, const char *del,
                              const char *add_key, const char *add_val)
{
    cg_jscan_t js, js2;
    cg_jerr_t err;
    T_ASSERTF(cg_jscan_object(&js, body, body_len, DEPTH, &err) == 0, "fixture body: %s at %zu",
              err.msg, err.offset);
    cg_buf_t q = {0};
    cg_json_quote(&q, "provider/other-model", 20);
    cg_jedit_t e[3] = {
        {"model", q.data, q.len},
        {del, NULL, 0},
        {add_key, add_val, strlen(add_val)},
    };
    cg_buf_t out = {0};
    cg_jscan_apply(&js, e, 3, &out);
    T_ASSERTF(cg_jscan_object(&js2, out.data, out.len, DEPTH, &err) == 0, "edited: %s at %zu",
              err.msg, err.offset);
    json_object *ed = jc_parse(out.data, out.len);
    T_ASSERT(ed != NULL);

    int n_orig = json_object_object_length(orig);
    bool had_del = json_object_object_get_ex(orig, del, NULL);
    bool had_add = json_object_object_get_ex(orig, add_key, NULL);
    T_EQ_INT(json_object_object_length(ed), n_orig - had_del + !had_add);
    json_object_object_foreach(orig, k, v)
    {
        json_object *nv = NULL;
        bool present = json_object_object_get_ex(ed, k, &nv);
        if (strcmp(k, "model") == 0) {
            T_EQ_STR(json_object_get_string(nv), "provider/other-model");
        } else if (strcmp(k, del) == 0) {
            T_ASSERTF(!present, "%s not deleted", k);
        } else if (strcmp(k, add_key) == 0) {
            continue;
        } else {
            T_ASSERTF(present && json_object_equal(v, nv), "member %s changed", k);
            /* Byte for byte: the untouched value's raw span is identical. */
            const cg_jmember_t *a = cg_jscan_get(&js, k), *b = cg_jscan_get(&js2, k);
            T_ASSERT(a && b && a->val_len == b->val_len);
            T_ASSERT(memcmp(body + a->val_off, out.data + b->val_off, a->val_len) == 0);
        }
    }
    json_object *added = NULL, *want = jc_parse(add_val, strlen(add_val));
    T_ASSERT(json_object_object_get_ex(ed, add_key, &added));
    T_ASSERT(json_object_equal(added, want));
    json_object_put(want);
    json_object_put(ed);
    cg_buf_free(&out);
    cg_buf_free(&q);
}

static void test_fixture_round_trips(void)
{
    for (size_t f = 0; f < CG_ARRAY_LEN(FIXTURES); f++) {
        size_t len;
        char *text = fixture_text(f, &len);
        json_object *root = jc_parse(text, len), *body = NULL;
        T_ASSERT(root != NULL);
        T_ASSERT(json_object_object_get_ex(root, "body", &body));

        /* The body as a client sends it (compact) and pretty-printed. */
        static const int styles[] = {JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                     JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED};
        for (size_t s = 0; s < CG_ARRAY_LEN(styles); s++) {
            size_t blen;
            const char *b = json_object_to_json_string_length(body, styles[s], &blen);
            char *copy = cg_strndup(b, blen); /* json-c reuses its buffer */

            cg_jscan_t js;
            cg_jerr_t err;
            T_EQ_INT(cg_jscan_object(&js, copy, blen, DEPTH, &err), 0);
            T_EQ_INT(js.n_members, json_object_object_length(body));
            cg_buf_t model = {0};
            T_EQ_INT(cg_jscan_string(&js, cg_jscan_get(&js, "model"), &model), 0);
            json_object *jm = NULL;
            T_ASSERT(json_object_object_get_ex(body, "model", &jm));
            T_EQ_STR(model.data, json_object_get_string(jm));
            cg_buf_free(&model);
            T_EQ_INT(cg_jscan_get(&js, "stream")->type, CG_JTRUE);

            /* Delete each member in turn (first, middle, last ...). */
            json_object_object_foreach(body, k, v)
            {
                (void)v;
                if (strcmp(k, "model") == 0)
                    continue; /* set and deleted at once: covered above */
                check_edit_result(copy, blen, body, k, "x_clawgate",
                                  "{\"trace\":\"t\\u00e9\",\"n\":[1,2.5,null]}");
            }
            /* Append a key that replaces an existing one's value instead. */
            check_edit_result(copy, blen, body, "stream", "tools", "[]");
            cg_free(copy);
        }
        json_object_put(root);
        cg_free(text);
    }
}

/* Both string loops give the same verdict, offset, message and spans on
 * the fixture bodies and on a few thousand deterministic mutations of them
 * (bytes flipped to the characters that matter: quotes, escapes, control
 * and non-ASCII bytes, structure). */
static void same_scan(const char *s, size_t len)
{
    cg_jscan_t a, b;
    cg_jerr_t ea = {0}, eb = {0};
    int ra = cg_jscan_object(&a, s, len, DEPTH, &ea);
    int rb = port_jscan_object(&b, s, len, DEPTH, &eb);
    T_EQ_INT(ra, rb);
    if (ra != 0) {
        T_EQ_INT(ea.offset, eb.offset);
        T_EQ_STR(ea.msg, eb.msg);
        return;
    }
    T_EQ_INT(a.n_members, b.n_members);
    for (size_t i = 0; i < a.n_members; i++) {
        const cg_jmember_t *x = &a.members[i], *y = &b.members[i];
        T_ASSERT(x->key_off == y->key_off && x->key_len == y->key_len);
        T_ASSERT(x->val_off == y->val_off && x->val_len == y->val_len);
        T_ASSERT(x->mem_off == y->mem_off && x->mem_len == y->mem_len && x->type == y->type);
    }
}

/* Field by field: the struct has padding. */
static bool same_member(const cg_jmember_t *a, const cg_jmember_t *b)
{
    return a->key_off == b->key_off && a->key_len == b->key_len && a->val_off == b->val_off &&
           a->val_len == b->val_len && a->mem_off == b->mem_off && a->mem_len == b->mem_len &&
           a->type == b->type;
}

/* The trusted scan (bodies validated once already) finds the same members
 * as the strict one on valid documents, and stays inside its input on any. */
static void same_members(const char *doc, size_t len)
{
    cg_jscan_t a, b;
    cg_jerr_t ea, eb;
    T_EQ_INT(cg_jscan_object(&a, doc, len, DEPTH, &ea), 0);
    T_EQ_INT(cg_jscan_object_trusted(&b, doc, len, DEPTH, &eb), 0);
    T_EQ_INT(a.n_members, b.n_members);
    T_EQ_INT(a.obj_open, b.obj_open);
    T_EQ_INT(a.obj_close, b.obj_close);
    for (size_t k = 0; k < a.n_members && k < b.n_members; k++)
        T_ASSERT(same_member(&a.members[k], &b.members[k]));
}

static void test_trusted_scan(void)
{
    static const char *docs[] = {
        "{\"s\":\"\\\" \\\\ \\/ \\n\",\"b\":1}",          /* escaped quote, backslash */
        "{\"a\":\"\\\\\",\"b\":\"\\\\\\\\\\\"x\"}",       /* runs of backslashes */
        "{\"k\\\"ey\":[\"]\",{\"}\":\"{\"}],\"z\":null}", /* brackets in strings */
        "{\"u\":\"\xC3\xA9\",\"e\":\"\"}",
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(docs); i++)
        same_members(docs[i], strlen(docs[i]));
    for (size_t f = 0; f < CG_ARRAY_LEN(FIXTURES); f++) {
        size_t len;
        char *text = fixture_text(f, &len);
        same_members(text, len);
        /* Cut anywhere: refused or not, never read past the cut (ASan). */
        for (size_t cut = 0; cut < len; cut += 97) {
            char *part = cg_strndup(text, cut);
            cg_jscan_t js;
            cg_jerr_t err;
            (void)cg_jscan_object_trusted(&js, part, cut, DEPTH, &err);
            cg_free(part);
        }
        cg_free(text);
    }
    cg_jscan_t js;
    cg_jerr_t err;
    T_EQ_INT(cg_jscan_object_trusted(&js, "{\"a\":\"x\\\"}", 9, DEPTH, &err), CG_EINVAL);
    T_CONTAINS(err.msg, "unterminated string");
}

static void test_simd_matches_portable(void)
{
    static const char pool[] = "\"\\\x01\x1f\x7f\x80\xc3\xa9\xe2\xed\xf0\xf4{}[],:u0dD8 na";
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    size_t mutated = 0, accepted = 0;
    for (size_t f = 0; f < CG_ARRAY_LEN(FIXTURES); f++) {
        size_t len;
        char *text = fixture_text(f, &len);
        json_object *root = jc_parse(text, len), *body = NULL;
        T_ASSERT(root && json_object_object_get_ex(root, "body", &body));
        size_t blen;
        const char *b = json_object_to_json_string_length(
            body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &blen);
        char *copy = cg_strndup(b, blen);
        same_scan(copy, blen);
        for (int i = 0; i < 600; i++) {
            char *m = cg_strndup(copy, blen);
            int flips = 1 + i % 3;
            for (int k = 0; k < flips; k++) {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                size_t at = (size_t)(rng >> 33) % blen;
                m[at] = pool[(rng >> 20) % (sizeof(pool) - 1)];
            }
            same_scan(m, blen);
            /* Every prefix length is a truncated body: exercise the tails. */
            same_scan(m, (size_t)(rng >> 40) % blen);
            cg_jscan_t js;
            accepted += cg_jscan_object(&js, m, blen, DEPTH, NULL) == 0;
            mutated++;
            cg_free(m);
        }
        cg_free(copy);
        json_object_put(root);
        cg_free(text);
    }
    /* The mutations must produce both outcomes, or the test proves little. */
    T_ASSERT(accepted > mutated / 20 && accepted < mutated - mutated / 20);
}

/* ---- the 64-byte block string loop ----
 *
 * The SIMD string loop takes over at a string's first backslash when 64
 * bytes remain and then works on 64-byte blocks measured from there, with
 * escapes found by bit arithmetic across block edges. These tests put every
 * kind of byte at every position relative to those edges and check the
 * verdict and error offset both against what they must be and against the
 * portable copy (which never uses blocks). */

/* len bytes in an allocation of exactly len, so ASan sees any read past
 * the end (cg_buf and cg_strndup leave slack). */
static char *exact_copy(const char *s, size_t len)
{
    char *c = cg_malloc(len ? len : 1);
    memcpy(c, s, len);
    return c;
}

/* Scan d[0..len) with both loops from an exact copy; they must agree. */
static int scan_both(const char *d, size_t len, cg_jerr_t *err)
{
    char *c = exact_copy(d, len);
    cg_jscan_t js;
    same_scan(c, len);
    int rc = cg_jscan_object(&js, c, len, DEPTH, err);
    cg_free(c);
    return rc;
}

static void puts_n(cg_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cg_buf_puts(b, s);
}

/* Each insert at every distance 0..130 from the block start (the leading
 * "\n" makes the block loop start at the string's first byte), then 0..100
 * more bytes: valid ones pass, bad ones fail at the insert. */
static void test_block_inserts(void)
{
    typedef struct ins {
        const char *s;
        size_t len;      /* 0: strlen */
        const char *msg; /* NULL: valid */
    } ins_t;
    static const ins_t ins[] = {
        {"\\\"", 0, NULL},
        {"\\\\", 0, NULL},
        {"\\/", 0, NULL},
        {"\\b\\f\\n\\r\\t", 0, NULL},
        {"\\u00e9", 0, NULL},
        {"\\ud83d\\ude00", 0, NULL},
        {"\\\\\\\"\\\\", 0, NULL},
        {"\xC3\xA9", 0, NULL},
        {"\xF0\x9F\x98\x80", 0, NULL},
        {"\x7F", 0, NULL},
        {"\\q", 0, "invalid escape"},
        {"\\'", 0, "invalid escape"},
        {"\\U0041", 0, "invalid escape"},
        {"\\\x01", 0, "invalid escape"},
        {"\\\xC3\xA9", 0, "invalid escape"},
        {"\\\0", 2, "invalid escape"},
        {"\\u12G4", 0, "\\u escape"},
        {"\\ud800x", 0, "lone high surrogate"},
        {"\\udc00", 0, "lone low surrogate"},
        {"\x01", 0, "control character"},
        {"\x1F", 0, "control character"},
        {"\0", 1, "control character"},
        {"\n", 0, "control character"},
        {"\x80", 0, "invalid UTF-8"},
        {"\xC3(", 0, "invalid UTF-8"},
        {"\xED\xA0\x80", 0, "invalid UTF-8"},
        {"\xFF", 0, "invalid UTF-8"},
    };
    static const size_t posts[] = {0, 1, 2, 15, 16, 17, 57, 63, 64, 65, 100};
    for (size_t k = 0; k < CG_ARRAY_LEN(ins); k++) {
        size_t ilen = ins[k].len ? ins[k].len : strlen(ins[k].s);
        for (size_t lead = 0; lead < 2; lead++) {
            for (size_t pre = 0; pre <= 130; pre++) {
                for (size_t j = 0; j < CG_ARRAY_LEN(posts); j++) {
                    cg_buf_t d = {0};
                    cg_buf_puts(&d, "{\"k\":\"");
                    if (lead)
                        cg_buf_puts(&d, "\\n");
                    puts_n(&d, "a", pre);
                    size_t at = d.len;
                    cg_buf_append(&d, ins[k].s, ilen);
                    puts_n(&d, "b", posts[j]);
                    cg_buf_puts(&d, "\"}");
                    cg_jerr_t err = {0};
                    int rc = scan_both(d.data, d.len, &err);
                    if (!ins[k].msg)
                        T_ASSERTF(rc == 0, "insert %zu lead %zu pre %zu post %zu: %s at %zu", k,
                                  lead, pre, posts[j], err.msg, err.offset);
                    else
                        T_ASSERTF(rc == CG_EINVAL && err.offset == at &&
                                      strstr(err.msg, ins[k].msg),
                                  "insert %zu lead %zu pre %zu post %zu: rc %d \"%s\" at %zu", k,
                                  lead, pre, posts[j], rc, err.msg, err.offset);
                    cg_buf_free(&d);
                }
            }
        }
    }
}

/* Runs of 1..130 backslashes starting at every distance 0..70 from the
 * block start, so runs start on both parities and cross one, two or three
 * block edges; then what follows decides: an odd run escapes it, an even
 * run leaves it plain. */
static void test_block_backslash_runs(void)
{
    static const char *const after[] = {"\"", "\\\"", "n", "q", "u00e9", "\x01", "\xC3\xA9"};
    for (size_t a = 0; a < CG_ARRAY_LEN(after); a++) {
        for (size_t run = 1; run <= 130; run++) {
            for (size_t pre = 0; pre <= 70; pre++) {
                cg_buf_t d = {0};
                cg_buf_puts(&d, "{\"k\":\"\\n");
                puts_n(&d, "a", pre);
                size_t run_at = d.len;
                puts_n(&d, "\\", run);
                size_t next = d.len;
                cg_buf_puts(&d, after[a]);
                /* Still inside the string if the run escaped a quote;
                 * bytes after the value if it did not. */
                puts_n(&d, "c", 70);
                cg_buf_puts(&d, "\"}");
                cg_jerr_t err = {0};
                int rc = scan_both(d.data, d.len, &err);
                bool odd = run & 1;
                const char *msg = NULL; /* NULL: valid */
                size_t want_at = 0;
                switch (after[a][0]) {
                case '"': /* even: the string ended at the quote */
                    if (!odd) {
                        msg = "expected ',' or '}'";
                        want_at = next + 1;
                    }
                    break;
                case '\\': /* one backslash more: the parities swap */
                    if (odd) {
                        msg = "expected ',' or '}'";
                        want_at = next + 2;
                    }
                    break;
                case 'q':
                case '\xC3':
                    if (odd) {
                        msg = "invalid escape";
                        want_at = next - 1;
                    }
                    break;
                case '\x01':
                    msg = odd ? "invalid escape" : "control character";
                    want_at = odd ? next - 1 : next;
                    break;
                default: /* n, u00e9: an escape or plain letters */
                    break;
                }
                if (!msg)
                    T_ASSERTF(rc == 0, "after \"%s\" run %zu at %zu: %s at %zu", after[a], run,
                              run_at, err.msg, err.offset);
                else
                    T_ASSERTF(rc == CG_EINVAL && err.offset == want_at && strstr(err.msg, msg),
                              "after \"%s\" run %zu at %zu: rc %d \"%s\" at %zu, want %zu",
                              after[a], run, run_at, rc, err.msg, err.offset, want_at);
                cg_buf_free(&d);
            }
        }
    }
}

/* Strings whose closing quote, or whose input, ends at or near a block
 * edge: the document is cut right after the string, or followed by a few
 * blanks, so the loop meets every remaining length around 64. */
static void test_block_edges(void)
{
    for (size_t n = 0; n <= 200; n++) {
        for (size_t blanks = 0; blanks <= 70; blanks += 1 + blanks / 8) {
            for (int esc_last = 0; esc_last < 2; esc_last++) {
                cg_buf_t d = {0};
                cg_buf_puts(&d, "{\"k\":\"\\n");
                puts_n(&d, "a", n);
                if (esc_last)
                    cg_buf_puts(&d, "\\\"");
                cg_buf_puts(&d, "\"}");
                puts_n(&d, " ", blanks);
                cg_jerr_t err = {0};
                T_ASSERTF(scan_both(d.data, d.len, &err) == 0, "n %zu blanks %zu: %s at %zu", n,
                          blanks, err.msg, err.offset);
                /* Without the closing quote and brace: unterminated. */
                d.len -= blanks + 2;
                T_EQ_INT(scan_both(d.data, d.len, &err), CG_EINVAL);
                T_EQ_INT(err.offset, 5);
                T_CONTAINS(err.msg, "unterminated string");
                cg_buf_free(&d);
            }
        }
    }
}

/* A document dense in what the block loop handles, cut at every length:
 * both loops give the same verdict and offset for every prefix. */
static void test_block_truncations(void)
{
    cg_buf_t d = {0};
    cg_buf_puts(&d, "{\"a\":\"\\n");
    puts_n(&d, "x\\\\\\\"y\\n", 12);
    cg_buf_puts(&d, "\",\"b\":[\"");
    puts_n(&d, "\\\\", 40);
    cg_buf_puts(&d, "\\u00e9\xC3\xA9 \\ud83d\\ude00");
    puts_n(&d, "plain text, ", 8);
    cg_buf_puts(&d, "\",1,{\"c\":\"");
    puts_n(&d, "\\\\\\\\\\\"", 15);
    cg_buf_puts(&d, "\"}],\"d\":\"");
    puts_n(&d, "\xE2\x82\xAC\\t", 20);
    cg_buf_puts(&d, "\"}");
    cg_jerr_t err;
    T_EQ_INT(scan_both(d.data, d.len, &err), 0);
    for (size_t cut = 0; cut < d.len; cut++) {
        T_EQ_INT(scan_both(d.data, cut, &err), CG_EINVAL);
        T_ASSERT(err.offset <= cut);
    }
    cg_buf_free(&d);
}

/* Random strings made of escapes, backslash runs, UTF-8 and plain runs,
 * with a rare wrong token (a bare quote or backslash, a bad escape, a
 * control or stray UTF-8 byte), long enough for the block loop: both
 * loops agree on each, and both outcomes occur. */
static void test_block_random(void)
{
    static const char *const good[] = {
        "\\\\",     "\\\"",         "\\n",
        "\\\\\\\\", "\\\\\\\"",     "\\/",
        "\\t",      "\\u00e9",      "\\ud83d\\ude00",
        "\xC3\xA9", "\xE2\x82\xAC", "a",
        "ab",       "abcdefgh",     "0123456789abcdef0123",
        " ",
    };
    static const char *const bad[] = {"\"",    "\\",      "\\q",      "\x01",   "\x80",
                                      "\\u12", "\\ud800", "\xE2\x82", "\\\x80", "\n"};
    uint64_t rng = 0x2545F4914F6CDD1DULL;
    size_t accepted = 0, total = 0;
    for (int round = 0; round < 20000; round++) {
        cg_buf_t d = {0};
        cg_buf_puts(&d, round & 1 ? "{\"k\":\"" : "[\"");
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = 10 + (size_t)(rng >> 33) % 90;
        for (size_t i = 0; i < n; i++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            uint32_t r = (uint32_t)(rng >> 32);
            if (r % 150 == 0)
                cg_buf_puts(&d, bad[(r >> 8) % CG_ARRAY_LEN(bad)]);
            else
                cg_buf_puts(&d, good[(r >> 8) % CG_ARRAY_LEN(good)]);
        }
        cg_buf_puts(&d, round & 1 ? "\"}" : "\"]");
        cg_jerr_t err;
        accepted += scan_both(d.data, d.len, &err) == 0;
        total++;
        cg_buf_free(&d);
    }
    T_ASSERTF(accepted > total / 10 && accepted < total - total / 10, "%zu of %zu accepted",
              accepted, total);
}

/* The key search: SIMD and portable copies agree with memmem, on random
 * quote-dense text with matches at every offset, near the end, and
 * overlapping near-misses. */
static void test_find_quoted(void)
{
    static const char *const needles[] = {"\"developer\"", "\"strict\"", "\"content\"", "\"a\"",
                                          "abc"};
    static const char alphabet[] = "\"\"\"\":,{}[]adeloprstcnv \\";
    char buf[300];
    uint32_t seed = 12345;
    for (int round = 0; round < 4000; round++) {
        size_t n = (size_t)(round % 97) + (size_t)(round % 5) * 40;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        const char *nd = needles[round % CG_ARRAY_LEN(needles)];
        size_t nl = strlen(nd);
        /* Plant the needle (sometimes cut short) at a pseudo-random place. */
        if (n >= nl && round % 3 != 0) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 16) % (n - nl + 1);
            memcpy(buf + at, nd, round % 7 == 0 ? nl - 1 : nl);
        }
        const char *want = memmem(buf, n, nd, nl);
        const char *got = cg_jscan_find_quoted(buf, n, nd, nl);
        const char *port = port_jscan_find_quoted(buf, n, nd, nl);
        T_ASSERTF(got == want, "round %d: simd %td, memmem %td", round, got ? got - buf : -1,
                  want ? want - buf : -1);
        T_ASSERTF(port == want, "round %d: portable %td, memmem %td", round, port ? port - buf : -1,
                  want ? want - buf : -1);
    }
    T_ASSERT(cg_jscan_find_quoted("ab", 2, "ab", 2) == NULL); /* needles under 3 bytes */
    T_ASSERT(cg_jscan_find_quoted("\"x\"", 3, "\"x\"", 3) != NULL);
}

/* A packed member table restores exactly the scan it came from; a table that
 * does not fit the bytes (another document, any word changed, cut short) is
 * refused or stays inside them (ASan), never trusted blindly. */
static void table_round_trip(const char *doc, size_t len)
{
    cg_jscan_t a, b;
    cg_jerr_t err;
    T_EQ_INT(cg_jscan_object(&a, doc, len, DEPTH, &err), 0);
    cg_buf_t tab = {0};
    cg_jscan_table_pack(&a, &tab);
    T_ASSERT(tab.len > 0);
    memset(&b, 0xab, sizeof b);
    T_EQ_INT(cg_jscan_table_load(&b, doc, len, tab.data, tab.len), 0);
    T_EQ_INT(b.n_members, a.n_members);
    T_EQ_INT(b.obj_open, a.obj_open);
    T_EQ_INT(b.obj_close, a.obj_close);
    T_EQ_INT(b.len, len);
    T_ASSERT(!b.truncated);
    for (size_t k = 0; k < a.n_members; k++)
        T_ASSERT(same_member(&a.members[k], &b.members[k]));
    /* Edits through the loaded table write what edits through the scan do. */
    cg_jedit_t ed[2] = {{.key = "model", .raw = "\"x/y\"", .raw_len = 5},
                        {.key = "zz_new", .raw = "1", .raw_len = 1}};
    cg_buf_t oa = {0}, ob = {0};
    cg_jscan_apply(&a, ed, 2, &oa);
    cg_jscan_apply(&b, ed, 2, &ob);
    T_EQ_INT(oa.len, ob.len);
    T_ASSERT(oa.len == ob.len && memcmp(oa.data, ob.data, oa.len) == 0);
    cg_buf_free(&oa);
    cg_buf_free(&ob);
    /* Not these bytes: a shorter or a shifted document. */
    T_EQ_INT(cg_jscan_table_load(&b, doc, len - 1, tab.data, tab.len), CG_EINVAL);
    char *shifted = cg_malloc(len + 1);
    shifted[0] = ' ';
    memcpy(shifted + 1, doc, len - 1);
    T_EQ_INT(cg_jscan_table_load(&b, shifted, len, tab.data, tab.len), CG_EINVAL);
    cg_free(shifted);
    /* Cut short at every length, and every word bent: refused, or loaded
     * with every span inside the document. */
    for (size_t cut = 0; cut < tab.len; cut++)
        T_EQ_INT(cg_jscan_table_load(&b, doc, len, tab.data, cut), CG_EINVAL);
    uint32_t *w = (uint32_t *)(void *)tab.data;
    static const uint32_t bends[] = {1, 0xffffffffu, 0x80000000u, 2};
    for (size_t i = 0; i < tab.len / 4; i++) {
        uint32_t keep = w[i];
        for (size_t j = 0; j < CG_ARRAY_LEN(bends); j++) {
            w[i] = keep + bends[j];
            if (cg_jscan_table_load(&b, doc, len, tab.data, tab.len) == 0) {
                for (size_t k = 0; k < b.n_members; k++) {
                    const cg_jmember_t *m = &b.members[k];
                    T_ASSERT(m->key_off + m->key_len < len);
                    T_ASSERT(m->val_off + m->val_len <= len);
                    T_ASSERT(m->mem_off + m->mem_len <= len);
                    cg_buf_t o = {0};
                    cg_jscan_apply(&b, ed, 2, &o);
                    cg_buf_free(&o);
                }
            }
        }
        w[i] = keep;
    }
    cg_buf_free(&tab);
}

static void test_member_table(void)
{
    static const char *docs[] = {
        "{}",
        " { \"a\" : 1 , \"b\":[1,{\"c\":\"}\"}],\"model\":\"m\" } ",
        "{\"k\\\"ey\":[\"]\",{\"}\":\"{\"}],\"z\":null,\"t\":true,\"f\":false,\"n\":-1.5e3}",
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(docs); i++)
        table_round_trip(docs[i], strlen(docs[i]));
    for (size_t f = 0; f < CG_ARRAY_LEN(FIXTURES); f++) {
        size_t len;
        char *text = fixture_text(f, &len);
        table_round_trip(text, len);
        cg_free(text);
    }
    /* Nothing to hand over for a table that is not whole. */
    cg_buf_t big = {0};
    cg_buf_puts(&big, "{");
    for (int i = 0; i < CG_JSCAN_MAX_MEMBERS + 1; i++)
        cg_buf_printf(&big, "%s\"k%d\":%d", i ? "," : "", i, i);
    cg_buf_puts(&big, "}");
    cg_jscan_t js;
    cg_jerr_t err;
    T_EQ_INT(cg_jscan_object(&js, big.data, big.len, DEPTH, &err), 0);
    T_ASSERT(js.truncated);
    cg_buf_t tab = {0};
    cg_jscan_table_pack(&js, &tab);
    T_EQ_INT(tab.len, 0);
    T_EQ_INT(cg_jscan_table_load(&js, big.data, big.len, NULL, 0), CG_EINVAL);
    cg_buf_free(&big);
}

/* The words a scan notes: whole strings only, keys and values, any depth;
 * a table carries them to the loader. */
static void test_saw_words(void)
{
    static const struct {
        const char *doc;
        unsigned saw;
    } cases[] = {
        {"{}", 0},
        {"{\"role\":\"developer\"}", CG_JSCAN_SAW_DEVELOPER},
        {"{\"developer\":1}", CG_JSCAN_SAW_DEVELOPER},
        {"{\"m\":[{\"x\":{\"role\":\"developer\"}}]}", CG_JSCAN_SAW_DEVELOPER},
        {"{\"t\":[{\"function\":{\"strict\":true}}]}", CG_JSCAN_SAW_STRICT},
        {"{\"a\":\"developer\",\"b\":\"strict\"}", CG_JSCAN_SAW_DEVELOPER | CG_JSCAN_SAW_STRICT},
        {"{\"a\":\"developers\",\"b\":\"strictly\",\"c\":\"xdeveloper\"}", 0},
        {"{\"a\":\"develope\\u0072\",\"b\":\"stric\\t\"}", 0},
        {"{\"a\":\"say \\\"developer\\\" or \\\"strict\\\"\"}", 0},
        /* The bytes "developer" (quotes included) inside a string, from an
         * escaped quote to the closing one: a search finds them; not the word. */
        {"{\"a\":\"x\\\"developer\",\"b\\\"strict\":1}", 0},
        {"{\"a\":\"Developer\",\"STRICT\":0}", 0},
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(cases); i++) {
        const char *d = cases[i].doc;
        size_t n = strlen(d);
        cg_jscan_t js, jt, jl;
        cg_jerr_t err;
        T_EQ_INT(cg_jscan_object(&js, d, n, DEPTH, &err), 0);
        T_EQ_INT(js.saw, cases[i].saw);
        T_EQ_INT(cg_jscan_object_trusted(&jt, d, n, DEPTH, &err), 0);
        T_EQ_INT(jt.saw, cases[i].saw);
        cg_buf_t tab = {0};
        cg_jscan_table_pack(&js, &tab);
        T_EQ_INT(cg_jscan_table_load(&jl, d, n, tab.data, tab.len), 0);
        T_EQ_INT(jl.saw, cases[i].saw);
        cg_buf_free(&tab);
        /* The same as the independent byte check. */
        T_EQ_INT((js.saw & CG_JSCAN_SAW_DEVELOPER) != 0, whole_string_in(d, n, "\"developer\""));
        T_EQ_INT((js.saw & CG_JSCAN_SAW_STRICT) != 0, whole_string_in(d, n, "\"strict\""));
    }
    /* A later scan of another document starts from nothing. */
    cg_jscan_t js;
    T_EQ_INT(cg_jscan_object(&js, "{\"a\":\"strict\"}", 14, DEPTH, NULL), 0);
    T_EQ_INT(cg_jscan_object(&js, "{\"a\":1}", 7, DEPTH, NULL), 0);
    T_EQ_INT(js.saw, 0);
}

/* The tests of the SIMD loops against the portable copy. */
static void run_simd_tests(void)
{
    T_RUN(test_find_quoted);
    T_RUN(test_simd_matches_portable);
    T_RUN(test_block_inserts);
    T_RUN(test_block_backslash_runs);
    T_RUN(test_block_edges);
    T_RUN(test_block_truncations);
    T_RUN(test_block_random);
}

int main(void)
{
    T_RUN(test_valid_documents);
    T_RUN(test_invalid_documents);
    T_RUN(test_string_boundaries);
    T_RUN(test_depth_limit);
    T_RUN(test_member_spans);
    T_RUN(test_get_duplicates_and_escaped_keys);
    T_RUN(test_string_decode);
    T_RUN(test_quote);
    T_RUN(test_apply_cases);
    T_RUN(test_truncated_members);
    T_RUN(test_fixture_round_trips);
    T_RUN(test_trusted_scan);
    /* Where the CPU has AVX2 the library's scans use it: run the SIMD
     * tests once with it and once with the SSE2 loops. */
    bool avx2 = cg_jscan_use_avx2(true);
    printf("# SIMD loops: %s\n", avx2 ? "AVX2" : "SSE2 (or none)");
    run_simd_tests();
    if (avx2) {
        cg_jscan_use_avx2(false);
        printf("# SIMD loops: SSE2\n");
        run_simd_tests();
        cg_jscan_use_avx2(true);
    }
    T_RUN(test_member_table);
    T_RUN(test_saw_words);
    T_DONE();
}
