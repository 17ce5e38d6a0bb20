/*
 * fuzz_pending.c — the pending log's reader (store/pending.c), which reads
 * files a crash may have cut or a disk may have damaged: record framing
 * (magic, length, checksum) and each payload's decoding as an exchange.
 *
 * Input, used twice: (1) as a raw log file; (2) split at 0xFF bytes into
 * payloads, each framed as a valid record (so the checksum does not hide
 * the decoder), followed by the raw input as a damaged tail. Every
 * record the scan accepts must lie inside the input and decode or be
 * refused, never crash.
 */
#include "store/internal.h"

#include <stdint.h>

typedef struct seen {
    const char *base;
    size_t len;
    size_t records, decoded;
} seen_t;

static bool on_record(uint64_t seq, const char *payload, uint32_t len, void *ud)
{
    seen_t *s = ud;
    (void)seq;
    if (payload < s->base || payload + len > s->base + s->len)
        __builtin_trap(); /* a record outside the data */
    s->records++;
    if (!cg_msgpack_well_formed(payload, len))
        return true; /* what the reader does: skip the record */
    cg_msg_t *m = cg_msg_new(CG_STORE_APPEND, payload, len);
    cg_msg_view_t v;
    cg_store_rec_t r;
    if (cg_store_decode_append(m, &v, &r) == 0) {
        s->decoded++;
        /* Touch every string the write path would bind. */
        const cg_str_t *strs[] = {&r.tenant,     &r.session_key, &r.request_id,
                                  &r.client_api, &r.model_asked, &r.model_answered,
                                  &r.status,     &r.error_class, &r.attempts_json,
                                  &r.messages,   &r.reply};
        volatile unsigned char sink = 0;
        for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
            for (size_t j = 0; strs[i]->p && j < strs[i]->n; j++)
                sink ^= (unsigned char)strs[i]->p[j];
        (void)sink;
    }
    cg_msg_view_done(&v);
    cg_msg_free(m);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cg_log_set_level(CG_LOG_ERROR + 1);
    seen_t raw = {(const char *)data, size, 0, 0};
    size_t used = cg_pending_scan((const char *)data, size, on_record, &raw);
    if (used > size)
        __builtin_trap();

    cg_buf_t log = {0};
    uint64_t seq = 1;
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || data[i] == 0xff) {
            cg_pending_record(seq++, data + start, i - start, &log);
            start = i + 1;
        }
    }
    size_t framed = log.len;
    cg_buf_append(&log, data, size);
    seen_t built = {log.data, log.len, 0, 0};
    used = cg_pending_scan(log.data, log.len, on_record, &built);
    /* Every framed record is accepted; the raw tail may add some. */
    if (used < framed || built.records < seq - 1)
        __builtin_trap();
    cg_buf_free(&log);
    return 0;
}
