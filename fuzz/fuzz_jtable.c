/*
 * fuzz_jtable.c — member tables handed between actors (cg_jscan_table_load).
 *
 * Input: one byte k, then a document; the last k*4 bytes (at most the whole
 * rest) are read as a table for the bytes before them.
 * Oracles (abort on violation):
 * - a table packed from a scan loads back to that scan, member for member;
 * - any table the loader accepts has every span inside the document, and
 *   edits through it (cg_jscan_apply) stay inside it too (ASan watches);
 * - a table never loads for a document of another length.
 */
#include "proto/jscan.h"

#include <stdint.h>
#include <stdlib.h>

#define DEPTH 64

static void check_spans(const cg_jscan_t *js, size_t len)
{
    if (js->obj_open >= js->obj_close || js->obj_close >= len)
        abort();
    for (size_t i = 0; i < js->n_members; i++) {
        const cg_jmember_t *m = &js->members[i];
        if (m->key_off + m->key_len >= len || m->val_off + m->val_len > len ||
            m->mem_off + m->mem_len > len || m->mem_off + 1 != m->key_off)
            abort();
    }
    cg_jedit_t ed[2] = {{.key = "model", .raw = "\"x\"", .raw_len = 3},
                        {.key = "stream", .raw = NULL, .raw_len = 0}};
    cg_buf_t out = {0};
    cg_jscan_apply(js, ed, 2, &out);
    cg_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t k = (size_t)data[0] * 4;
    const char *doc = (const char *)data + 1;
    size_t rest = size - 1;
    size_t tlen = k < rest ? k : rest;
    size_t dlen = rest - tlen;
    /* Copies, so ASan sees the exact ends. */
    char *d = cg_malloc(dlen ? dlen : 1);
    memcpy(d, doc, dlen);
    uint8_t *t = cg_malloc(tlen ? tlen : 1);
    memcpy(t, doc + dlen, tlen);

    static cg_jscan_t a, b;
    if (cg_jscan_object(&a, d, dlen, DEPTH, NULL) == 0) {
        cg_buf_t tab = {0};
        cg_jscan_table_pack(&a, &tab);
        if (!a.truncated) {
            if (cg_jscan_table_load(&b, d, dlen, tab.data, tab.len) != 0 ||
                b.n_members != a.n_members || b.obj_open != a.obj_open ||
                b.obj_close != a.obj_close)
                abort();
            for (size_t i = 0; i < a.n_members; i++)
                if (memcmp(&a.members[i], &b.members[i], sizeof a.members[i]) != 0)
                    abort();
            if (dlen > 0 && cg_jscan_table_load(&b, d, dlen - 1, tab.data, tab.len) == 0)
                abort();
        }
        cg_buf_free(&tab);
    }
    if (cg_jscan_table_load(&b, d, dlen, t, tlen) == 0)
        check_spans(&b, dlen);
    cg_free(d);
    cg_free(t);
    return 0;
}
