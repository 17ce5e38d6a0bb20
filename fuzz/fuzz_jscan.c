/*
 * fuzz_jscan.c — the strict scanner against json-c, and edits re-checked.
 *
 * Oracles (abort on violation):
 * - whatever cg_jscan_validate accepts, json-c (strict mode) parses: jscan
 *   is meant to be the stricter of the two, never the laxer; json-c may
 *   accept more (it does not check UTF-8), so only that direction is checked;
 * - cg_jscan_object and cg_jscan_validate agree on objects, and every
 *   recorded member's value span is itself valid JSON, in order, in bounds;
 * - cg_jscan_find_quoted returns what memmem returns;
 * - the words a valid object's scan notes (CG_JSCAN_SAW_*) are exactly the
 *   ones there as whole strings (an independent byte check);
 * - the SIMD scans (AVX2 where the CPU has it, and SSE2) and the portable
 *   ones (a copy of the scanner built with CG_JSCAN_NO_SIMD) give the same
 *   verdict, error offset and message, members and key search results;
 * - editing an accepted body (set "model", delete one member, add one)
 *   yields a document cg_jscan_object accepts, that json-c parses, where
 *   "model" has the new value and the deleted key is gone.
 */
#include "proto/jscan.h"

#include <json.h>
#include <stdint.h>

/* A second copy of the scanner with the portable string loop under other
 * names (as tests/proto/test_jscan.c does), to compare the two. */
#include "tests/proto/jscan_port.h"

#define DEPTH 64

/* Does json-c (strict) parse exactly s[0..len)? (Its result for "null" is
 * NULL, so success is read from the tokener, not the pointer.) */
static bool jc_ok(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(2 * DEPTH);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    /* With the terminating NUL: json-c only ends a top-level number there. */
    char *z = cg_strndup(s, len);
    json_object *o = json_tokener_parse_ex(tok, z, (int)len + 1);
    bool ok = json_tokener_get_error(tok) == json_tokener_success;
    cg_free(z);
    json_object_put(o);
    json_tokener_free(tok);
    return ok;
}

#define check(e)                                                                                   \
    do {                                                                                           \
        if (!(e)) {                                                                                \
            fprintf(stderr, "fuzz_jscan: check failed: %s (line %d)\n", #e, __LINE__);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The decoded key of member m (a key is a string span like a value). */
static void decoded_key(const cg_jscan_t *js, const cg_jmember_t *m, cg_buf_t *out)
{
    cg_jmember_t k = {.val_off = m->key_off - 1, .val_len = m->key_len + 2, .type = CG_JSTRING};
    check(cg_jscan_string(js, &k, out) == 0);
}

static void check_edits(const cg_jscan_t *js, const uint8_t *data, size_t size)
{
    cg_buf_t model = {0}, del = {0}, out = {0};
    /* A model name from the input's first bytes, quoted: any bytes that are
     * not UTF-8 are replaced so the quoted literal is valid JSON. */
    char name[8];
    size_t nlen = size < sizeof(name) ? size : sizeof(name);
    for (size_t i = 0; i < nlen; i++)
        name[i] = data[i] < 0x80 ? (char)data[i] : '?';
    cg_json_quote(&model, name, nlen);

    const char *del_key = "absent";
    if (js->n_members) {
        decoded_key(js, &js->members[data[0] % js->n_members], &del);
        del_key = del.data;
    }
    /* Keys holding \u0000 decode shorter as C strings: compare as such. */
    bool del_is_model = strcmp(del_key, "model") == 0;
    bool del_is_added = strcmp(del_key, "x-added") == 0; /* the later edit wins */
    cg_jedit_t e[3] = {
        {"model", model.data, model.len},
        {del_key, NULL, 0},
        {"x-added", "[1,{\"a\":null}]", 14},
    };
    cg_jscan_apply(js, e, 3, &out);

    cg_jscan_t js2;
    cg_jerr_t err;
    check(cg_jscan_object(&js2, out.data, out.len, DEPTH, &err) == 0);
    check(jc_ok(out.data, out.len));
    const cg_jmember_t *m = cg_jscan_get(&js2, "model");
    if (del_is_model) {
        check(js->truncated || js2.truncated || m == NULL);
    } else {
        /* Truncated: a "model" past the table keeps its value (documented). */
        check(js->truncated || js2.truncated ||
              (m && m->val_len == model.len &&
               memcmp(out.data + m->val_off, model.data, model.len) == 0));
        check(js->truncated || js2.truncated || del_is_added || strlen(del_key) != del.len ||
              cg_jscan_get(&js2, del_key) == NULL);
    }
    check(js2.truncated || cg_jscan_get(&js2, "x-added") != NULL);
    cg_buf_free(&model);
    cg_buf_free(&del);
    cg_buf_free(&out);
}

/* Field by field: the struct has padding. */
static bool same_member(const cg_jmember_t *a, const cg_jmember_t *b)
{
    return a->key_off == b->key_off && a->key_len == b->key_len && a->val_off == b->val_off &&
           a->val_len == b->val_len && a->mem_off == b->mem_off && a->mem_len == b->mem_len &&
           a->type == b->type;
}

/* Same verdict, error offset and message, and members? */
static void same_result(int ra, const cg_jscan_t *a, const cg_jerr_t *ea, int rb,
                        const cg_jscan_t *b, const cg_jerr_t *eb)
{
    check(ra == rb);
    if (ra != 0) {
        check(ea->offset == eb->offset && strcmp(ea->msg, eb->msg) == 0);
        return;
    }
    if (!a)
        return;
    check(a->n_members == b->n_members && a->truncated == b->truncated &&
          a->obj_open == b->obj_open && a->obj_close == b->obj_close);
    for (size_t k = 0; k < a->n_members; k++)
        check(same_member(&a->members[k], &b->members[k]));
}

/* The library's scans, with whatever SIMD loops are selected, against the
 * portable copy: validate, object, trusted object, key search. */
static void same_as_portable(const char *s, size_t size)
{
    cg_jscan_t a, b;
    cg_jerr_t ea = {0}, eb = {0};
    same_result(cg_jscan_validate(s, size, DEPTH, &ea), NULL, &ea,
                port_jscan_validate(s, size, DEPTH, &eb), NULL, &eb);
    same_result(cg_jscan_object(&a, s, size, DEPTH, &ea), &a, &ea,
                port_jscan_object(&b, s, size, DEPTH, &eb), &b, &eb);
    same_result(cg_jscan_object_trusted(&a, s, size, DEPTH, &ea), &a, &ea,
                port_jscan_object_trusted(&b, s, size, DEPTH, &eb), &b, &eb);
    if (size >= 4) {
        size_t nl = 3 + (uint8_t)s[0] % 12;
        if (nl > size - 1)
            nl = size - 1;
        const char *nd = s + size - nl;
        check(cg_jscan_find_quoted(s + 1, size - 1, nd, nl) ==
              port_jscan_find_quoted(s + 1, size - 1, nd, nl));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    /* Both SIMD variants (AVX2 where the CPU has it, and SSE2) agree with
     * the portable scanner; the checks below run with the default. */
    cg_jscan_use_avx2(false);
    same_as_portable(s, size);
    cg_jscan_use_avx2(true);
    same_as_portable(s, size);
    /* The key search finds what memmem finds: for a needle made of the
     * input's last bytes (found at the end, or earlier), and a fixed key. */
    if (size >= 4) {
        size_t nl = 3 + data[0] % 12;
        if (nl > size - 1)
            nl = size - 1;
        const char *nd = s + size - nl;
        check(cg_jscan_find_quoted(s + 1, size - 1, nd, nl) == memmem(s + 1, size - 1, nd, nl));
        check(cg_jscan_find_quoted(s, size, "\"developer\"", 11) ==
              memmem(s, size, "\"developer\"", 11));
    }
    cg_jerr_t err = {0};
    int v = cg_jscan_validate(s, size, DEPTH, &err);
    check(v == 0 || (v == CG_EINVAL && err.offset <= size && err.msg[0]));
    if (v == 0) {
        check(jc_ok(s, size));
    }

    cg_jscan_t js;
    int r = cg_jscan_object(&js, s, size, DEPTH, &err);
    /* The trusted scan reads nothing outside the input whatever it is, and
     * on a valid document finds exactly the same members. */
    cg_jscan_t jt;
    cg_jerr_t terr = {0};
    int t = cg_jscan_object_trusted(&jt, s, size, DEPTH, &terr);
    check(t == 0 || (t == CG_EINVAL && terr.offset <= size));
    if (r == 0) {
        check(t == 0 && jt.n_members == js.n_members && jt.truncated == js.truncated &&
              jt.obj_open == js.obj_open && jt.obj_close == js.obj_close);
        for (size_t k = 0; k < js.n_members; k++)
            check(same_member(&jt.members[k], &js.members[k]));
        /* The words a scan notes are the whole strings among the bytes
         * memmem finds (an escaped quote followed by the word and a closing
         * quote has the bytes without being the word). */
        bool dev = whole_string_in(s, size, "\"developer\"");
        bool strict = whole_string_in(s, size, "\"strict\"");
        check(((js.saw & CG_JSCAN_SAW_DEVELOPER) != 0) == dev);
        check(((js.saw & CG_JSCAN_SAW_STRICT) != 0) == strict);
        check(jt.saw == js.saw);
    }
    size_t i = 0;
    while (i < size && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    if (i < size && s[i] == '{')
        check(r == v);
    else
        check(r == CG_EINVAL);
    if (r != 0)
        return 0;

    size_t prev_end = js.obj_open + 1;
    for (size_t k = 0; k < js.n_members; k++) {
        const cg_jmember_t *m = &js.members[k];
        check(m->mem_off >= prev_end && m->key_off == m->mem_off + 1);
        check(m->val_off > m->key_off + m->key_len &&
              m->mem_off + m->mem_len == m->val_off + m->val_len);
        check(m->val_off + m->val_len <= js.obj_close);
        check(cg_jscan_validate(s + m->val_off, m->val_len, DEPTH, NULL) == 0);
        if (m->type == CG_JSTRING) {
            cg_buf_t b = {0};
            check(cg_jscan_string(&js, m, &b) == 0);
            cg_buf_free(&b);
        }
        prev_end = m->mem_off + m->mem_len;
    }
    check_edits(&js, data, size);
    return 0;
}
