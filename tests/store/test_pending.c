/*
 * test_pending.c — the pending log (store/pending.c): records survive the
 * process and are applied by the next open, exactly once; a torn last
 * record is dropped; records at or below pending_applied.seq are skipped,
 * and so are records whose exchange is stored already; files are emptied
 * once applied (kept for good after a failed batch), and appends move to
 * the other file when the active one is large.
 */
#include "tests/store/helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fx {
    char *dir, *db, *file[2];
} fx_t;

static void fx_init(fx_t *f)
{
    f->dir = tmp_dir();
    f->db = cg_sprintf("%s/store.db", f->dir);
    for (int i = 0; i < 2; i++)
        f->file[i] = cg_sprintf("%s-pending.%d", f->db, i);
    char err[256];
    T_EQ_INT(cg_store_prepare(f->db, err, sizeof err), 0);
}

static void fx_end(fx_t *f)
{
    rm_tree(f->dir);
    cg_free(f->dir);
    cg_free(f->db);
    cg_free(f->file[0]);
    cg_free(f->file[1]);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static cg_pending_t *open_log(fx_t *f)
{
    char err[256] = "";
    cg_pending_t *p = cg_pending_open(f->db, err, sizeof err);
    if (!p)
        printf("# cg_pending_open: %s\n", err);
    return p;
}

/* Append one exchange with request id req-N (N = i). */
static uint64_t append(cg_pending_t *p, int i)
{
    char req[32];
    snprintf(req, sizeof req, "req-%d", i);
    cg_store_exchange_t x = exchange_at(req, NULL, 1795000000000 + i);
    cg_msg_t *m = cg_store_append_msg(&x);
    uint64_t seq = 0;
    const cg_msg_t *one[1] = {m};
    T_EQ_INT(cg_pending_append_batch(p, one, 1, &seq), CG_OK);
    cg_msg_free(m);
    return seq;
}

/* A fresh database whose log holds records 1 and 2 (nothing applied). */
static void two_logged(fx_t *f)
{
    fx_init(f);
    cg_pending_t *p = open_log(f);
    T_ASSERT(p != NULL);
    append(p, 1);
    append(p, 2);
    cg_pending_close(p);
}

static int64_t count_req(fx_t *f, int i)
{
    char *sql = cg_sprintf("SELECT count(*) FROM exchanges WHERE request_id = 'req-%d'", i);
    int64_t n = sql_int(f->db, sql);
    cg_free(sql);
    return n;
}

static void test_recovered_once(void)
{
    fx_t f = {0};
    fx_init(&f);
    cg_pending_t *p = open_log(&f);
    T_ASSERT(p != NULL);
    T_EQ_INT(cg_pending_last(p), 0);
    for (int i = 1; i <= 3; i++)
        T_EQ_INT(append(p, i), (uint64_t)i);
    T_EQ_INT(cg_pending_last(p), 3);
    T_EQ_INT(cg_pending_synced(p), 0);
    T_ASSERT(file_size(f.file[0]) > 0);
    /* The process "dies": nothing was committed. */
    cg_pending_close(p);
    T_EQ_INT(sql_int(f.db, "SELECT count(*) FROM exchanges"), 0);

    p = open_log(&f);
    T_ASSERT(p != NULL);
    T_EQ_INT(sql_int(f.db, "SELECT count(*) FROM exchanges"), 3);
    for (int i = 1; i <= 3; i++)
        T_EQ_INT(count_req(&f, i), 1);
    T_EQ_INT(sql_int(f.db, "SELECT seq FROM pending_applied"), 3);
    T_EQ_INT(file_size(f.file[0]), 0);
    T_EQ_INT(file_size(f.file[1]), 0);
    /* Numbers go on after the recovered ones. */
    T_EQ_INT(append(p, 4), 4);
    cg_pending_close(p);

    /* Recovered twice: still once in the database. */
    p = open_log(&f);
    T_ASSERT(p != NULL);
    T_EQ_INT(sql_int(f.db, "SELECT count(*) FROM exchanges"), 4);
    T_EQ_INT(count_req(&f, 4), 1);
    cg_pending_close(p);
    fx_end(&f);
}

static void test_torn_tail_dropped(void)
{
    fx_t f = {0};
    two_logged(&f);
    /* A third record cut short by a crash: a header and half a payload. */
    off_t whole = file_size(f.file[0]);
    int fd = open(f.file[0], O_WRONLY | O_APPEND);
    T_ASSERT(fd >= 0);
    char junk[40];
    memset(junk, 0, sizeof junk);
    uint32_t magic = 0x31504743u, len = 500;
    memcpy(junk, &magic, 4);
    memcpy(junk + 4, &len, 4);
    T_EQ_INT(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    T_EQ_INT(file_size(f.file[0]), whole + 40);

    cg_pending_t *p = open_log(&f);
    T_ASSERT(p != NULL);
    T_EQ_INT(sql_int(f.db, "SELECT count(*) FROM exchanges"), 2);
    T_EQ_INT(file_size(f.file[0]), 0);
    cg_pending_close(p);
    fx_end(&f);
}

static void test_corrupt_record_stops_replay(void)
{
    fx_t f = {0};
    fx_init(&f);
    cg_pending_t *p = open_log(&f);
    T_ASSERT(p != NULL);
    append(p, 1);
    off_t first = file_size(f.file[0]);
    append(p, 2);
    append(p, 3);
    cg_pending_close(p);
    /* Flip a payload byte of record 2: its checksum fails, so neither it
     * nor anything after it is trusted. */
    int fd = open(f.file[0], O_RDWR);
    T_ASSERT(fd >= 0);
    char c;
    T_EQ_INT(pread(fd, &c, 1, first + 30), 1);
    c ^= 0x5a;
    T_EQ_INT(pwrite(fd, &c, 1, first + 30), 1);
    close(fd);

    p = open_log(&f);
    T_ASSERT(p != NULL);
    T_EQ_INT(count_req(&f, 1), 1);
    T_EQ_INT(count_req(&f, 2), 0);
    T_EQ_INT(count_req(&f, 3), 0);
    cg_pending_close(p);
    fx_end(&f);
}

static void test_applied_records_skipped(void)
{
    fx_t f = {0};
    two_logged(&f);
    /* As if the store had committed record 1 (row and position in one
     * transaction) and the process died before emptying the file. */
    T_EQ_INT(sql_exec(f.db, "BEGIN; "
                            "INSERT INTO exchanges (tenant_id, request_id, client_api, status, "
                            "started_ms, finished_ms) VALUES (1, 'req-1', 'chat.completions', "
                            "'ok', 1, 1); "
                            "UPDATE pending_applied SET seq = 1; COMMIT"),
             0);
    cg_pending_t *p = open_log(&f);
    T_ASSERT(p != NULL);
    T_EQ_INT(count_req(&f, 1), 1);
    T_EQ_INT(count_req(&f, 2), 1);
    T_EQ_INT(sql_int(f.db, "SELECT seq FROM pending_applied"), 2);
    cg_pending_close(p);
    fx_end(&f);
}

static void test_files_emptied_and_switched(void)
{
    fx_t f = {0};
    fx_init(&f);
    cg_pending_t *p = open_log(&f);
    T_ASSERT(p != NULL);
    uint64_t a = append(p, 1);
    append(p, 2);
    /* Not all applied: the file stays. */
    cg_pending_applied(p, a, false);
    T_EQ_INT(cg_pending_synced(p), a);
    T_ASSERT(file_size(f.file[0]) > 0);
    cg_pending_applied(p, cg_pending_last(p), false);
    T_EQ_INT(file_size(f.file[0]), 0);

    /* Past 1 MiB the next record goes to the other file. */
    int i = 3;
    while (file_size(f.file[0]) < (1 << 20))
        append(p, i++);
    uint64_t last0 = cg_pending_last(p);
    T_EQ_INT(file_size(f.file[1]), 0);
    append(p, i++);
    T_ASSERT(file_size(f.file[1]) > 0);
    /* The first file's records are applied: it is emptied, the second not. */
    cg_pending_applied(p, last0, false);
    T_EQ_INT(file_size(f.file[0]), 0);
    T_ASSERT(file_size(f.file[1]) > 0);
    /* The next records stay in the second file (it is not yet 1 MiB). */
    append(p, i++);
    T_EQ_INT(file_size(f.file[0]), 0);
    cg_pending_close(p);

    /* What was not applied (the second file) is recovered; the rest not
     * (it was emptied, as after commits). */
    p = open_log(&f);
    T_ASSERT(p != NULL);
    T_EQ_INT(sql_int(f.db, "SELECT count(*) FROM exchanges"), 2);
    T_EQ_INT(count_req(&f, i - 1), 1);
    T_EQ_INT(count_req(&f, i - 2), 1);
    cg_pending_close(p);
    fx_end(&f);
}

/* After the store failed a batch of logged records, the front keeps every
 * file; the next start applies the records, skipping the ones whose
 * exchange was committed meanwhile (by request id). */
static void test_kept_after_failed_batch(void)
{
    fx_t f = {0};
    fx_init(&f);
    cg_pending_t *p = open_log(&f);
    T_ASSERT(p != NULL);
    append(p, 1);
    append(p, 2);
    cg_pending_applied(p, 2, true);
    T_EQ_INT(cg_pending_synced(p), 2);
    T_ASSERT(file_size(f.file[0]) > 0);
    append(p, 3);
    cg_pending_applied(p, 3, false); /* sticky until the restart */
    T_ASSERT(file_size(f.file[0]) > 0);
    cg_pending_close(p);
    /* Record 3 made it into the database after the failure (the position
     * stayed at 0); 1 and 2 did not. */
    T_EQ_INT(sql_exec(f.db, "INSERT INTO exchanges (tenant_id, request_id, client_api, status, "
                            "started_ms, finished_ms) VALUES (1, 'req-3', 'chat.completions', "
                            "'ok', 1, 1)"),
             0);
    p = open_log(&f);
    T_ASSERT(p != NULL);
    for (int i = 1; i <= 3; i++)
        T_EQ_INT(count_req(&f, i), 1);
    T_EQ_INT(sql_int(f.db, "SELECT seq FROM pending_applied"), 3);
    T_EQ_INT(file_size(f.file[0]), 0);
    cg_pending_close(p);
    fx_end(&f);
}

/* n exchanges req-(first) .. req-(first + n - 1) as APPEND messages. */
static cg_msg_t **make_msgs(int first, size_t n)
{
    cg_msg_t **ms = cg_calloc(n, sizeof *ms);
    for (size_t i = 0; i < n; i++) {
        char req[32];
        snprintf(req, sizeof req, "req-%d", first + (int)i);
        cg_store_exchange_t x = exchange_at(req, NULL, 1795000000000 + first + (int)i);
        ms[i] = cg_store_append_msg(&x);
    }
    return ms;
}

static void free_msgs(cg_msg_t **ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cg_msg_free(ms[i]);
    cg_free(ms);
}

/* One call for many records (more than one writev's worth): consecutive
 * numbers, every record recovered. */
static void test_batch_appended_in_order(void)
{
    fx_t f = {0};
    fx_init(&f);
    cg_pending_t *p = open_log(&f);
    T_ASSERT(p != NULL);
    T_EQ_INT(append(p, 1), 1);
    const size_t n = 600;
    cg_msg_t **ms = make_msgs(2, n);
    uint64_t first = 0;
    T_EQ_INT(cg_pending_append_batch(p, (const cg_msg_t *const *)ms, n, &first), CG_OK);
    T_EQ_INT(first, 2);
    T_EQ_INT(cg_pending_last(p), n + 1);
    T_EQ_INT(append(p, (int)n + 2), n + 2);
    cg_pending_close(p);
    p = open_log(&f);
    T_ASSERT(p != NULL);
    T_EQ_INT(sql_int(f.db, "SELECT count(*) FROM exchanges"), (int64_t)n + 2);
    T_EQ_INT(count_req(&f, 300), 1);
    T_EQ_INT(sql_int(f.db, "SELECT seq FROM pending_applied"), (int64_t)n + 2);
    cg_pending_close(p);
    free_msgs(ms, n);
    fx_end(&f);
}

/* A batch is all or nothing: a write that stops part-way (here at the file
 * size limit, in its second writev) leaves no record of it in the file and
 * uses no number; so does a batch with a record too large for the log. */
static void test_batch_all_or_nothing(void)
{
    fx_t f = {0};
    fx_init(&f);
    cg_pending_t *p = open_log(&f);
    T_ASSERT(p != NULL);
    append(p, 1);
    off_t size1 = file_size(f.file[0]);
    T_ASSERT(size1 > 0);

    const size_t n = 400; /* 256 + 144 records */
    cg_msg_t **ms = make_msgs(2, n);
    size_t rec = 24 + ms[0]->len;
    struct rlimit old;
    T_EQ_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {.rlim_cur = (rlim_t)size1 + 300 * rec, .rlim_max = old.rlim_max};
    T_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint64_t first = 0;
    int rc = cg_pending_append_batch(p, (const cg_msg_t *const *)ms, n, &first);
    T_EQ_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_sig);
    T_EQ_INT(rc, CG_EIO);
    T_EQ_INT(file_size(f.file[0]), size1);
    T_EQ_INT(cg_pending_last(p), 1);

    char *zeros = cg_calloc(1, (1u << 20) + 1);
    cg_msg_t *big = cg_msg_new(CG_STORE_APPEND, zeros, (1u << 20) + 1);
    cg_free(zeros);
    T_ASSERT(!cg_pending_fits(big->len));
    T_ASSERT(cg_pending_fits(ms[0]->len));
    const cg_msg_t *mixed[2] = {ms[0], big};
    T_EQ_INT(cg_pending_append_batch(p, mixed, 2, &first), CG_EIO);
    T_EQ_INT(file_size(f.file[0]), size1);
    T_EQ_INT(cg_pending_last(p), 1);
    cg_msg_free(big);

    /* The same batch goes through once the file may grow: numbers go on. */
    T_EQ_INT(cg_pending_append_batch(p, (const cg_msg_t *const *)ms, n, &first), CG_OK);
    T_EQ_INT(first, 2);
    cg_pending_close(p);
    p = open_log(&f);
    T_ASSERT(p != NULL);
    T_EQ_INT(sql_int(f.db, "SELECT count(*) FROM exchanges"), (int64_t)n + 1);
    cg_pending_close(p);
    free_msgs(ms, n);
    fx_end(&f);
}

static void test_unwritable_directory(void)
{
    if (geteuid() == 0) {
        /* root writes anywhere; use a path under a regular file instead */
        fx_t f = {0};
        fx_init(&f);
        char *bad = cg_sprintf("%s/store.db/x.db", f.dir);
        char err[256] = "";
        T_ASSERT(cg_pending_open(bad, err, sizeof err) == NULL);
        T_ASSERT(strstr(err, "cannot open") != NULL);
        cg_free(bad);
        fx_end(&f);
        return;
    }
    char err[256] = "";
    T_ASSERT(cg_pending_open("/proc/clawgate-no/x.db", err, sizeof err) == NULL);
    T_ASSERT(strstr(err, "cannot open") != NULL);
}

int main(void)
{
    T_RUN(test_recovered_once);
    T_RUN(test_torn_tail_dropped);
    T_RUN(test_corrupt_record_stops_replay);
    T_RUN(test_applied_records_skipped);
    T_RUN(test_files_emptied_and_switched);
    T_RUN(test_kept_after_failed_batch);
    T_RUN(test_batch_appended_in_order);
    T_RUN(test_batch_all_or_nothing);
    T_RUN(test_unwritable_directory);
    T_DONE();
}
