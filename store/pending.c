/*
 * pending.c — the pending log: exchanges a client saw complete that the
 * store has not committed yet (store.h, "Pending log").
 *
 * DESIGN
 * Files. Two, PATH-pending.0 and PATH-pending.1, opened O_APPEND; one is
 * active. A record is a 24-byte header — magic, payload length, sequence
 * number, checksum (FNV-1a of the sequence number and the payload) — and
 * the payload: a CG_STORE_APPEND message's msgpack bytes, as the store
 * decodes them. The front appends the records of one loop turn with one
 * writev(2); a write that fails or comes up short is cut off again with
 * ftruncate, with every record of that call, so a record is whole or absent
 * (except a write cut by the death of the process: recovery stops at the
 * first record that does not check out, which can only be the last one).
 *
 * Emptying. The store commits what the front logged and answers
 * CG_STORE_SYNCED with the highest sequence number in its commit;
 * cg_pending_applied records it. A file whose last record is applied is
 * emptied (ftruncate 0). If a commit with logged records failed (disk full,
 * I/O error), SYNCED says so: from then on nothing is emptied, the database
 * position stays behind, and the next start applies the records again,
 * skipping those whose request id is stored already. Under steady load the active file never is
 * (new records keep coming), so once it passes SWITCH_BYTES and the other
 * file is empty, appends move to the other file, and the first one is
 * emptied as soon as its last record is applied: each file stays near
 * SWITCH_BYTES at most, whatever the uptime.
 *
 * Recovery (cg_pending_open, before any actor runs). Both files are read;
 * every whole record with a sequence number above pending_applied.seq (the
 * store bumps it in the same transaction as the rows) is applied through
 * the store's writer in one transaction, then both files are emptied. A
 * crash between that COMMIT and the ftruncate leaves records the next
 * recovery skips by their numbers, so nothing is stored twice.
 */
#include "store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define PL_MAGIC 0x31504743u /* "CGP1" */
#define SWITCH_BYTES (1u << 20)
#define MAX_RECORD (1u << 20) /* an exchange without a session: a few hundred bytes */

typedef struct pl_hdr {
    uint32_t magic;
    uint32_t len;
    uint64_t seq;
    uint64_t sum;
} pl_hdr_t;

_Static_assert(sizeof(pl_hdr_t) == 24, "pending log header is 24 bytes");

typedef struct pl_file {
    int fd;
    uint64_t size;     /* bytes in it */
    uint64_t last_seq; /* its last record's; 0: none since it was emptied */
} pl_file_t;

struct cg_pending {
    char *path[2];
    pl_file_t f[2];
    int active;
    uint64_t next_seq; /* the next record's */
    uint64_t applied;  /* every record up to this one is committed (or given up on) */
    bool keep;         /* the store lost a batch: keep every record until restart */
};

static uint64_t record_sum(uint64_t seq, const void *payload, size_t len)
{
    uint64_t h = cg_fnv1a64(&seq, sizeof seq);
    return h ^ cg_fnv1a64(payload, len) * 0x9e3779b97f4a7c15ull;
}

/* The whole file in a buffer. 0, or -errno. */
static int slurp_fd(int fd, cg_buf_t *out)
{
    char chunk[65536];
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -errno;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return 0;
        cg_buf_append(out, chunk, (size_t)n);
    }
}

typedef struct replay {
    cg_store_writer_t *w;
    sqlite3_stmt *seen; /* is an exchange with this request id stored? */
    uint64_t applied;
    uint64_t max_seq;
    size_t n_applied, n_failed, n_seen;
    bool fatal;
    char *err;
    size_t errlen;
} replay_t;

/* Committed after a failed batch (the store's "log hole"): the database
 * position stayed behind, so records past it may be in already. Request
 * ids are the gateway's own (unique per process start). */
static bool stored_already(replay_t *rp, const cg_store_rec_t *r)
{
    if (!rp->seen || !r->request_id.p)
        return false;
    sqlite3_reset(rp->seen);
    sqlite3_bind_text(rp->seen, 1, r->request_id.p, (int)r->request_id.n, SQLITE_STATIC);
    bool found = sqlite3_step(rp->seen) == SQLITE_ROW;
    sqlite3_reset(rp->seen);
    sqlite3_clear_bindings(rp->seen);
    return found;
}

size_t cg_pending_scan(const char *data, size_t len, cg_pending_record_cb cb, void *ud)
{
    size_t off = 0;
    while (off + sizeof(pl_hdr_t) <= len) {
        pl_hdr_t h;
        memcpy(&h, data + off, sizeof h);
        const char *payload = data + off + sizeof h;
        if (h.magic != PL_MAGIC || h.len > MAX_RECORD || h.len > len - off - sizeof h ||
            record_sum(h.seq, payload, h.len) != h.sum)
            break;
        off += sizeof h + h.len;
        if (!cb(h.seq, payload, h.len, ud))
            break;
    }
    return off;
}

void cg_pending_record(uint64_t seq, const void *payload, size_t len, cg_buf_t *out)
{
    pl_hdr_t h = {.magic = PL_MAGIC, .len = (uint32_t)len, .seq = seq};
    h.sum = record_sum(seq, payload, len);
    cg_buf_append(out, &h, sizeof h);
    cg_buf_append(out, payload, len);
}

typedef struct replay_file_ctx {
    replay_t *rp;
    const char *path;
} replay_file_ctx_t;

static bool replay_one(uint64_t seq, const char *payload, uint32_t len, void *ud)
{
    replay_file_ctx_t *c = ud;
    replay_t *rp = c->rp;
    if (seq > rp->max_seq)
        rp->max_seq = seq;
    if (seq <= rp->applied)
        return true;
    if (!cg_msgpack_well_formed(payload, len)) {
        cg_error("store: %s: record %llu is not an exchange; skipped", c->path,
                 (unsigned long long)seq);
        rp->n_failed++;
        return true;
    }
    cg_msg_t *m = cg_msg_new(CG_STORE_APPEND, payload, len);
    cg_msg_view_t v;
    cg_store_rec_t r;
    char why[512];
    if (cg_store_decode_append(m, &v, &r) != 0) {
        cg_error("store: %s: record %llu is not an exchange; skipped", c->path,
                 (unsigned long long)seq);
        rp->n_failed++;
    } else if (stored_already(rp, &r)) {
        rp->n_seen++;
    } else if (cg_store_writer_apply(rp->w, &r, why, sizeof why, &rp->fatal) != 0) {
        if (rp->fatal)
            snprintf(rp->err, rp->errlen, "%s", why);
        else
            cg_error("store: %s: record %llu: %s; skipped", c->path, (unsigned long long)seq, why);
        rp->n_failed++;
    } else {
        rp->n_applied++;
    }
    cg_msg_view_done(&v);
    cg_msg_free(m);
    return !rp->fatal;
}

/* Apply the records of one file past rp->applied. */
static void replay_file(replay_t *rp, const char *path, const cg_buf_t *data)
{
    replay_file_ctx_t c = {rp, path};
    size_t off = data->len ? cg_pending_scan(data->data, data->len, replay_one, &c) : 0;
    if (off < data->len && !rp->fatal)
        cg_warn("store: %s: the last %zu bytes are not whole, valid records (a write cut by a "
                "crash, or damage); dropped",
                path, data->len - off);
}

static int read_applied(sqlite3 *db, uint64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT seq FROM pending_applied WHERE id = 1", -1, &st, NULL);
    *out = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(st, 0);
        *out = v > 0 ? (uint64_t)v : 0;
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Apply what both files hold past pending_applied.seq. 0, or -1 (err). */
static int recover(cg_pending_t *p, const char *db_path, char *err, size_t errlen)
{
    cg_buf_t data[2] = {{0}, {0}};
    for (int i = 0; i < 2; i++) {
        int rc = slurp_fd(p->f[i].fd, &data[i]);
        if (rc < 0) {
            snprintf(err, errlen, "cannot read %s: %s", p->path[i], strerror(-rc));
            cg_buf_free(&data[0]);
            cg_buf_free(&data[1]);
            return -1;
        }
    }
    cg_store_writer_t *w = NULL;
    replay_t rp = {.err = err, .errlen = errlen};
    int result = -1;
    if (cg_store_writer_open(db_path, false, &w, err, errlen) != 0)
        goto out;
    rp.w = w;
    if (read_applied(cg_store_writer_db(w), &rp.applied) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", db_path, sqlite3_errmsg(cg_store_writer_db(w)));
        goto out;
    }
    rp.max_seq = rp.applied;
    if (sqlite3_prepare_v2(cg_store_writer_db(w),
                           "SELECT 1 FROM exchanges WHERE request_id = ?1 LIMIT 1", -1, &rp.seen,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", db_path, sqlite3_errmsg(cg_store_writer_db(w)));
        goto out;
    }
    for (int i = 0; i < 2 && !rp.fatal; i++)
        replay_file(&rp, p->path[i], &data[i]);
    if (rp.fatal) {
        cg_store_writer_rollback(w);
        goto out;
    }
    if (rp.max_seq > rp.applied) {
        /* Also when every record failed: their numbers are used up. */
        if (cg_store_writer_set_applied(w, rp.max_seq, err, errlen) != 0 ||
            cg_store_writer_commit(w, err, errlen) != 0)
            goto out;
    }
    if (rp.n_applied || rp.n_failed)
        cg_notice("store: recovered %zu exchange(s) from the pending log (%zu stored already)%s",
                  rp.n_applied, rp.n_seen,
                  rp.n_failed ? "; some records could not be applied, see above" : "");
    p->applied = rp.max_seq;
    p->next_seq = rp.max_seq + 1;
    result = 0;
out:
    sqlite3_finalize(rp.seen);
    if (w)
        cg_store_writer_close(w);
    cg_buf_free(&data[0]);
    cg_buf_free(&data[1]);
    return result;
}

static void empty_file(cg_pending_t *p, int i)
{
    if (p->f[i].size == 0)
        return;
    if (ftruncate(p->f[i].fd, 0) != 0) {
        cg_warn("store: cannot empty %s: %s", p->path[i], strerror(errno));
        return;
    }
    p->f[i].size = 0;
    p->f[i].last_seq = 0;
}

cg_pending_t *cg_pending_open(const char *db_path, char *err, size_t errlen)
{
    cg_pending_t *p = cg_calloc(1, sizeof *p);
    p->f[0].fd = p->f[1].fd = -1;
    for (int i = 0; i < 2; i++) {
        cg_buf_t b = {0};
        cg_buf_printf(&b, "%s-pending.%d", db_path, i);
        p->path[i] = cg_buf_steal(&b, NULL);
        p->f[i].fd = open(p->path[i], O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (p->f[i].fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", p->path[i], strerror(errno));
            cg_pending_close(p);
            return NULL;
        }
    }
    if (recover(p, db_path, err, errlen) != 0) {
        /* The records stay where they are for the next start. */
        cg_pending_close(p);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        struct stat st;
        p->f[i].size = fstat(p->f[i].fd, &st) == 0 ? (uint64_t)st.st_size : 1;
        empty_file(p, i);
        if (p->f[i].size) {
            snprintf(err, errlen, "cannot empty %s", p->path[i]);
            cg_pending_close(p);
            return NULL;
        }
    }
    return p;
}

void cg_pending_close(cg_pending_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < 2; i++) {
        if (p->f[i].fd >= 0)
            close(p->f[i].fd);
        cg_free(p->path[i]);
    }
    cg_free(p);
}

bool cg_pending_fits(size_t len)
{
    return len <= MAX_RECORD;
}

/* Records per writev: two iovecs each, within IOV_MAX (1024 on Linux). */
#define BATCH_WRITE 256

int cg_pending_append_batch(cg_pending_t *p, const cg_msg_t *const *ms, size_t n,
                            uint64_t *first_seq)
{
    int other = 1 - p->active;
    if (p->f[p->active].size >= SWITCH_BYTES && p->f[other].size == 0)
        p->active = other;
    for (size_t i = 0; i < n; i++)
        if (!cg_pending_fits(ms[i]->len))
            return CG_EIO; /* not for the log (the commit path takes it) */
    pl_file_t *f = &p->f[p->active];
    uint64_t size0 = f->size;
    pl_hdr_t h[BATCH_WRITE];
    struct iovec iov[2 * BATCH_WRITE];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < BATCH_WRITE ? n - done : BATCH_WRITE;
        size_t want = 0;
        for (size_t i = 0; i < k; i++) {
            const cg_msg_t *m = ms[done + i];
            uint64_t seq = p->next_seq + done + i;
            h[i] = (pl_hdr_t){.magic = PL_MAGIC, .len = m->len, .seq = seq};
            h[i].sum = record_sum(seq, m->payload, m->len);
            iov[2 * i] = (struct iovec){&h[i], sizeof h[i]};
            iov[2 * i + 1] = (struct iovec){(void *)m->payload, m->len};
            want += sizeof h[i] + m->len;
        }
        ssize_t w;
        do
            w = writev(f->fd, iov, (int)(2 * k));
        while (w < 0 && errno == EINTR);
        if (w != (ssize_t)want) {
            /* All or nothing: cut off this call's records, written or torn. */
            int e = w < 0 ? errno : ENOSPC;
            f->size += w > 0 ? (uint64_t)w : 0;
            if (f->size > size0 && ftruncate(f->fd, (off_t)size0) != 0)
                cg_error("store: %s: a torn record stays at the end: %s", p->path[p->active],
                         strerror(errno));
            f->size = size0;
            cg_error("store: cannot write to %s: %s", p->path[p->active], strerror(e));
            return CG_EIO;
        }
        f->size += want;
        done += k;
    }
    if (n) {
        *first_seq = p->next_seq;
        p->next_seq += n;
        f->last_seq = p->next_seq - 1;
    }
    return CG_OK;
}

void cg_pending_applied(cg_pending_t *p, uint64_t seq, bool keep_files)
{
    if (seq > p->applied)
        p->applied = seq;
    p->keep |= keep_files;
    for (int i = 0; i < 2 && !p->keep; i++)
        if (p->f[i].size && p->f[i].last_seq <= p->applied)
            empty_file(p, i);
}

uint64_t cg_pending_last(const cg_pending_t *p)
{
    return p->next_seq - 1;
}

uint64_t cg_pending_synced(const cg_pending_t *p)
{
    return p->applied;
}
