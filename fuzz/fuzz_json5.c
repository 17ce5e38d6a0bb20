/*
 * fuzz_json5.c — libFuzzer target for the JSON5 reader (config/json5.c).
 *
 * Any input must either parse or fail with a positioned error; never crash,
 * leak or read past len. On success every node's position is looked up (the
 * side table must know each one) and the tree is re-serialised.
 */
#include "config/json5.h"

static void walk(const cg_json5_doc_t *d, json_object *node, int depth)
{
    if (!node)
        return;
    cg_json5_pos_t p = cg_json5_value_pos(d, node);
    cg_assert(p.line >= 1 && p.col >= 1);
    cg_assert(depth <= CG_JSON5_MAX_DEPTH);
    if (json_object_get_type(node) == json_type_object) {
        json_object_object_foreach(node, k, v)
        {
            cg_json5_pos_t kp = cg_json5_key_pos(d, node, k);
            cg_assert(kp.line >= 1 && kp.col >= 1);
            walk(d, v, depth + 1);
        }
    } else if (json_object_get_type(node) == json_type_array) {
        for (size_t i = 0; i < json_object_array_length(node); i++)
            walk(d, json_object_array_get_idx(node, i), depth + 1);
    } else if (json_object_get_type(node) == json_type_string) {
        /* lengths are exact and the text NUL-terminated */
        const char *s = json_object_get_string(node);
        cg_assert(s[json_object_get_string_len(node)] == '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the parser takes (text, len): hand it an exact-size copy so ASan sees
     * any read past the end */
    char *text = malloc(size ? size : 1);
    if (size)
        memcpy(text, data, size);
    cg_json5_doc_t *doc = NULL;
    cg_json5_error_t err;
    int rc = cg_json5_parse(text, size, NULL, &doc, &err);
    if (rc == 0) {
        walk(doc, cg_json5_root(doc), 0);
        size_t n;
        const cg_json5_dup_t *dups = cg_json5_duplicates(doc, &n);
        for (size_t i = 0; i < n; i++)
            cg_assert(dups[i].pos.line >= 1 && dups[i].key);
        (void)json_object_to_json_string_ext(cg_json5_root(doc), JSON_C_TO_STRING_PLAIN);
        cg_json5_free(doc);
    } else {
        cg_assert(doc == NULL);
        cg_assert(err.pos.line >= 1 && err.pos.col >= 1);
        cg_assert(err.msg[0] != '\0');
    }
    free(text);
    return 0;
}
