/*
 * test_actor.c — the store actor (store/actor.c) with a real spawned actor
 * and a test owner actor collecting ACKs: append + ACK after commit, group
 * commit batching, shutdown commits what is pending, database failures ACKed
 * as errors, init refusal, crash, retention on request.
 *
 * tsan: yes
 */
#include "tests/store/helpers.h"

#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

/* ---- the owner: collects what the store sends back ---- */

#define MAX_ACKS 4096

typedef struct collect {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t acks, ok, failed;
    uint64_t order[MAX_ACKS]; /* req_ids in arrival order */
    char last_error[256];
    int exits, exit_reason;
    uint64_t synced; /* last CG_STORE_SYNCED's req_id */
    int keep;        /* ... and its keep_files flag */
    size_t n_synced;
} collect_t;

static collect_t C = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void collect_reset(void)
{
    pthread_mutex_lock(&C.mu);
    C.acks = C.ok = C.failed = 0;
    C.last_error[0] = '\0';
    C.exits = 0;
    C.exit_reason = -1;
    C.synced = 0;
    C.n_synced = 0;
    pthread_mutex_unlock(&C.mu);
}

static void owner_handle(cg_actor_t *a, cg_msg_t *m)
{
    CG_UNUSED(a);
    cg_msg_view_t v;
    pthread_mutex_lock(&C.mu);
    if (m->type == CG_STORE_ACK) {
        int ok = 0;
        const char *err = NULL;
        size_t elen = 0;
        if (cg_msg_unpack(m, &v, "bS", &ok, &err, &elen) == 0) {
            if (C.acks < MAX_ACKS)
                C.order[C.acks] = m->req_id;
            C.acks++;
            if (ok) {
                C.ok++;
            } else {
                C.failed++;
                snprintf(C.last_error, sizeof C.last_error, "%.*s", (int)elen, err ? err : "");
            }
        }
        cg_msg_view_done(&v);
    } else if (m->type == CG_STORE_SYNCED) {
        int keep = -1;
        if (cg_msg_unpack(m, &v, "b", &keep) == 0)
            C.keep = keep;
        cg_msg_view_done(&v);
        C.synced = m->req_id;
        C.n_synced++;
    } else if (m->type == CG_MSG_EXIT) {
        uint64_t aid;
        int64_t reason;
        const char *d;
        size_t dl;
        if (cg_msg_unpack(m, &v, "uiS", &aid, &reason, &d, &dl) == 0) {
            C.exits++;
            C.exit_reason = (int)reason;
        }
        cg_msg_view_done(&v);
    }
    pthread_cond_broadcast(&C.cv);
    pthread_mutex_unlock(&C.mu);
    cg_msg_free(m);
}

static const cg_actor_spec_t owner_spec = {.name = "owner", .handle = owner_handle};

/* Wait (at most 20 s) until at least n ACKs are in. */
static bool wait_acks(size_t n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&C.mu);
    while (C.acks < n)
        if (pthread_cond_timedwait(&C.cv, &C.mu, &dl) != 0)
            break;
    bool ok = C.acks >= n;
    pthread_mutex_unlock(&C.mu);
    return ok;
}

static bool wait_exit(void)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&C.mu);
    while (C.exits == 0)
        if (pthread_cond_timedwait(&C.cv, &C.mu, &dl) != 0)
            break;
    bool ok = C.exits > 0;
    pthread_mutex_unlock(&C.mu);
    return ok;
}

static size_t get_count(size_t *p)
{
    pthread_mutex_lock(&C.mu);
    size_t v = *p;
    pthread_mutex_unlock(&C.mu);
    return v;
}

/* ---- fixture ---- */

typedef struct fx {
    char *dir, *path;
    cg_aid_t owner, store;
    cg_store_args_t args;
} fx_t;

static void fx_start_owner(fx_t *f)
{
    collect_reset();
    f->dir = tmp_dir();
    f->path = cg_sprintf("%s/sub/store.db", f->dir);
    f->args = (cg_store_args_t){.path = f->path};
    T_EQ_INT(cg_actor_spawn(&owner_spec, NULL, CG_AID_NONE, &f->owner), 0);
}

static void fx_start_store(fx_t *f)
{
    T_EQ_INT(cg_actor_spawn(&cg_store_spec, &f->args, f->owner, &f->store), 0);
}

static void fx_stop_store(fx_t *f)
{
    if (!f->store)
        return;
    cg_actor_stop(f->store);
    cg_actor_join(f->store, NULL);
    f->store = CG_AID_NONE;
}

static void fx_end(fx_t *f)
{
    fx_stop_store(f);
    cg_actor_stop(f->owner);
    cg_actor_join(f->owner, NULL);
    rm_tree(f->dir);
    cg_free(f->dir);
    cg_free(f->path);
}

static void send_append(fx_t *f, uint64_t req_id, const char *key, const char *messages)
{
    char req[32];
    snprintf(req, sizeof req, "req-%llu", (unsigned long long)req_id);
    cg_store_exchange_t x = exchange_at(req, key, cg_wall_ms());
    x.messages_json = messages;
    x.reply_json = messages ? "{\"role\":\"assistant\",\"content\":\"fine\"}" : NULL;
    cg_msg_t *m = cg_store_append_msg(&x);
    m->req_id = req_id;
    m->reply_to = f->owner;
    int rc = cg_actor_send(f->store, m);
    if (rc != 0)
        cg_msg_free(m);
    T_EQ_INT(rc, 0);
}

static bool wait_synced(size_t n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&C.mu);
    while (C.n_synced < n)
        if (pthread_cond_timedwait(&C.cv, &C.mu, &dl) != 0)
            break;
    bool ok = C.n_synced >= n;
    pthread_mutex_unlock(&C.mu);
    return ok;
}

static void send_logged(fx_t *f, uint64_t seq)
{
    char req[32];
    snprintf(req, sizeof req, "logged-%llu", (unsigned long long)seq);
    cg_store_exchange_t x = exchange_at(req, NULL, cg_wall_ms());
    cg_msg_t *m = cg_store_append_msg(&x);
    m->type = CG_STORE_APPEND_LOGGED;
    m->req_id = seq;
    m->reply_to = f->owner;
    int rc = cg_actor_send_lazy(f->store, m);
    if (rc != 0)
        cg_msg_free(m);
    T_EQ_INT(rc, 0);
}

static void send_flush(fx_t *f)
{
    cg_msg_t *fl = cg_msg_new(CG_STORE_FLUSH, NULL, 0);
    fl->reply_to = f->owner;
    T_EQ_INT(cg_actor_send(f->store, fl), 0);
}

/* ---- tests ---- */

/* Exchanges already in the pending log: posted lazily, never ACKed,
 * committed by a FLUSH together with the log position, which SYNCED
 * reports. */
static void test_logged_appends_and_flush(void)
{
    fx_t f = {0};
    fx_start_owner(&f);
    fx_start_store(&f);
    const int n = 5;
    for (int i = 1; i <= n; i++)
        send_logged(&f, (uint64_t)i);
    send_flush(&f);
    T_ASSERT(wait_synced(1));
    pthread_mutex_lock(&C.mu);
    uint64_t synced = C.synced;
    size_t acks = C.acks;
    int keep = C.keep;
    pthread_mutex_unlock(&C.mu);
    T_EQ_INT(synced, (uint64_t)n);
    T_EQ_INT(acks, 0);
    T_EQ_INT(keep, 0);
    /* SYNCED means committed, with the position in the same transaction. */
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges WHERE request_id LIKE 'logged-%'"), n);
    T_EQ_INT(sql_int(f.path, "SELECT seq FROM pending_applied"), n);
    /* A FLUSH with nothing new answers at once with the same position. */
    send_flush(&f);
    T_ASSERT(wait_synced(2));
    T_EQ_INT(get_count(&C.n_synced), 2);
    pthread_mutex_lock(&C.mu);
    synced = C.synced;
    pthread_mutex_unlock(&C.mu);
    T_EQ_INT(synced, (uint64_t)n);
    fx_end(&f);
}

static void test_append_and_ack(void)
{
    fx_t f = {0};
    fx_start_owner(&f);
    fx_start_store(&f);
    cg_store_counters_t before, after;
    cg_store_counters(&before);
    const int n = 300;
    for (int i = 1; i <= n; i++) {
        char key[32];
        snprintf(key, sizeof key, "agent:main:%d", i % 7);
        send_append(&f, (uint64_t)i, i % 3 ? key : NULL,
                    "[{\"role\":\"user\",\"content\":\"hello\"}]");
    }
    T_ASSERT(wait_acks((size_t)n));
    T_EQ_INT(get_count(&C.ok), n);
    T_EQ_INT(get_count(&C.failed), 0);
    /* ACKs come in the order the exchanges were sent */
    pthread_mutex_lock(&C.mu);
    bool in_order = true;
    for (int i = 0; i < n; i++)
        in_order &= C.order[i] == (uint64_t)(i + 1);
    pthread_mutex_unlock(&C.mu);
    T_ASSERT(in_order);
    /* An ACK means committed: visible to another connection right now,
     * before the store even stops. */
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges"), n);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM sessions"), 7);
    cg_store_counters(&after);
    T_EQ_INT(after.exchanges - before.exchanges, n);
    T_ASSERT(after.commits - before.commits >= 1);
    T_ASSERT(after.commits - before.commits <= (uint64_t)n);
    /* the WAL setting the durability contract relies on */
    char *mode = sql_text(f.path, "PRAGMA journal_mode");
    T_EQ_STR(mode, "wal");
    cg_free(mode);
    fx_end(&f);
}

/* max_batch exchanges make one transaction; with a long window nothing
 * else commits them, so the commit count is exact. */
static void test_group_commit_batches(void)
{
    fx_t f = {0};
    fx_start_owner(&f);
    f.args.max_batch = 10;
    f.args.commit_window_us = 60 * 1000 * 1000;
    fx_start_store(&f);
    cg_store_counters_t before, after;
    cg_store_counters(&before);
    for (int i = 1; i <= 100; i++)
        send_append(&f, (uint64_t)i, "agent:batch", NULL);
    T_ASSERT(wait_acks(100));
    cg_store_counters(&after);
    T_EQ_INT(after.commits - before.commits, 10);
    T_EQ_INT(after.exchanges - before.exchanges, 100);
    /* Five more sit in an open transaction (window 60 s); a graceful stop
     * commits them and ACKs them. */
    for (int i = 101; i <= 105; i++)
        send_append(&f, (uint64_t)i, "agent:batch", NULL);
    fx_stop_store(&f);
    T_ASSERT(wait_acks(105));
    T_EQ_INT(get_count(&C.ok), 105);
    cg_store_counters(&after);
    T_EQ_INT(after.commits - before.commits, 11);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges"), 105);
    fx_end(&f);
}

/* The database refuses writes (another process holds the write lock):
 * every exchange is ACKed with ok=false and the reason; writes resume when
 * the lock goes. */
/* A batch of logged exchanges the database refuses: SYNCED says to keep the
 * log files, and the log position stays where it was, also after later
 * commits succeed (the next start applies the lost ones again). */
static void test_logged_batch_failure_keeps_the_log(void)
{
    fx_t f = {0};
    fx_start_owner(&f);
    fx_start_store(&f);
    send_logged(&f, 1);
    send_flush(&f);
    T_ASSERT(wait_synced(1));
    T_EQ_INT(sql_int(f.path, "SELECT seq FROM pending_applied"), 1);
    sqlite3 *other;
    T_EQ_INT(sqlite3_open(f.path, &other), SQLITE_OK);
    T_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    send_logged(&f, 2);
    send_logged(&f, 3);
    send_flush(&f);
    T_ASSERT(wait_synced(2));
    pthread_mutex_lock(&C.mu);
    int keep = C.keep;
    uint64_t synced = C.synced;
    pthread_mutex_unlock(&C.mu);
    T_EQ_INT(keep, 1);
    T_EQ_INT(synced, 3); /* given up on until a restart: queries need not wait */
    sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(other);
    send_logged(&f, 4);
    send_flush(&f);
    T_ASSERT(wait_synced(3));
    pthread_mutex_lock(&C.mu);
    keep = C.keep;
    pthread_mutex_unlock(&C.mu);
    T_EQ_INT(keep, 1);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges WHERE request_id LIKE 'logged-%'"), 2);
    T_EQ_INT(sql_int(f.path, "SELECT seq FROM pending_applied"), 1);
    T_EQ_INT(get_count(&C.acks), 0);
    fx_end(&f);
}

static void test_database_failure_acks_error(void)
{
    fx_t f = {0};
    fx_start_owner(&f);
    fx_start_store(&f);
    send_append(&f, 1, NULL, NULL);
    T_ASSERT(wait_acks(1));
    sqlite3 *other;
    T_EQ_INT(sqlite3_open(f.path, &other), SQLITE_OK);
    T_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    cg_store_counters_t before, after;
    cg_store_counters(&before);
    for (uint64_t i = 2; i <= 4; i++)
        send_append(&f, i, "k", "[{\"role\":\"user\",\"content\":\"x\"}]");
    T_ASSERT(wait_acks(4));
    T_EQ_INT(get_count(&C.failed), 3);
    pthread_mutex_lock(&C.mu);
    char err[256];
    snprintf(err, sizeof err, "%s", C.last_error);
    pthread_mutex_unlock(&C.mu);
    T_CONTAINS(err, "locked");
    cg_store_counters(&after);
    T_EQ_INT(after.errors - before.errors, 3);
    sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(other);
    send_append(&f, 5, "k", "[{\"role\":\"user\",\"content\":\"x\"}]");
    T_ASSERT(wait_acks(5));
    T_EQ_INT(get_count(&C.ok), 2);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges"), 2);
    fx_end(&f);
}

static void test_malformed_append(void)
{
    fx_t f = {0};
    fx_start_owner(&f);
    fx_start_store(&f);
    cg_msg_t *m = cg_msg_pack(CG_STORE_APPEND, "si", "not an exchange", (int64_t)7);
    m->req_id = 9;
    m->reply_to = f.owner;
    T_EQ_INT(cg_actor_send(f.store, m), 0);
    T_ASSERT(wait_acks(1));
    T_EQ_INT(get_count(&C.failed), 1);
    pthread_mutex_lock(&C.mu);
    T_CONTAINS(C.last_error, "malformed");
    T_EQ_INT(C.order[0], 9);
    pthread_mutex_unlock(&C.mu);
    fx_end(&f);
}

static void test_init_refuses_newer_database(void)
{
    fx_t f = {0};
    fx_start_owner(&f);
    /* a database from a future clawgate */
    sqlite3 *db;
    char err[512];
    T_EQ_INT(cg_store_open_rw(f.path, &db, err, sizeof err), 0);
    sqlite3_close(db);
    T_EQ_INT(sql_exec(f.path, "PRAGMA user_version = 7"), 0);
    fx_start_store(&f);
    T_ASSERT(wait_exit());
    int reason = -1;
    T_EQ_INT(cg_actor_join(f.store, &reason), 0);
    f.store = CG_AID_NONE;
    T_EQ_INT(reason, CG_EXIT_INIT_FAILED);
    pthread_mutex_lock(&C.mu);
    T_EQ_INT(C.exit_reason, CG_EXIT_INIT_FAILED);
    pthread_mutex_unlock(&C.mu);
    T_EQ_INT(sql_int(f.path, "PRAGMA user_version"), 7);
    fx_end(&f);
}

/* A crash (test hook) with exchanges in the open transaction: they are not
 * stored, and their owners hear so instead of waiting forever. */
static void test_crash_acks_pending_as_failed(void)
{
    fx_t f = {0};
    fx_start_owner(&f);
    f.args.commit_window_us = 60 * 1000 * 1000;
    fx_start_store(&f);
    cg_actor_enable_test_hooks(true);
    for (uint64_t i = 1; i <= 3; i++)
        send_append(&f, i, "k", NULL);
    cg_msg_t *crash = cg_msg_new(CG_MSG_CRASH, NULL, 0);
    T_EQ_INT(cg_actor_send(f.store, crash), 0);
    T_ASSERT(wait_acks(3));
    T_ASSERT(wait_exit());
    int reason = -1;
    cg_actor_join(f.store, &reason);
    f.store = CG_AID_NONE;
    cg_actor_enable_test_hooks(false);
    T_EQ_INT(reason, CG_EXIT_CRASH);
    T_EQ_INT(get_count(&C.failed), 3);
    pthread_mutex_lock(&C.mu);
    T_CONTAINS(C.last_error, "before committing");
    pthread_mutex_unlock(&C.mu);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges"), 0);
    /* the file is fine: a new store opens it and writes */
    collect_reset();
    f.args.commit_window_us = 0;
    fx_start_store(&f);
    send_append(&f, 10, "k", NULL);
    T_ASSERT(wait_acks(1));
    T_EQ_INT(get_count(&C.ok), 1);
    fx_end(&f);
}

/* The helper thread checkpoints in the background: the database file grows
 * while only the store writes (its own connection never checkpoints below
 * the hard limit). */
static void test_background_checkpoint(void)
{
    fx_t f = {0};
    fx_start_owner(&f);
    fx_start_store(&f);
    cg_buf_t msg = {0};
    cg_buf_puts(&msg, "[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < 400; i++)
        cg_buf_puts(&msg, "checkpoint ");
    cg_buf_puts(&msg, "\"}]");
    for (uint64_t i = 1; i <= 1000; i++) {
        char key[32];
        snprintf(key, sizeof key, "ck:%llu", (unsigned long long)(i % 10));
        send_append(&f, i, key, msg.data);
    }
    cg_buf_free(&msg);
    T_ASSERT(wait_acks(1000));
    T_EQ_INT(get_count(&C.ok), 1000);
    struct stat sb;
    bool grown = false;
    for (int i = 0; i < 150 && !grown; i++) { /* at most 15 s */
        grown = stat(f.path, &sb) == 0 && sb.st_size > 2 * 1024 * 1024;
        if (!grown)
            usleep(100 * 1000);
    }
    T_ASSERTF(grown, "database file still %lld bytes: no background checkpoint",
              (long long)sb.st_size);
    fx_end(&f);
}

/* CG_STORE_PRUNE runs a retention pass in steps, appends go on meanwhile,
 * and the requester is ACKed when it is over. */
static void test_retention_on_request(void)
{
    fx_t f = {0};
    fx_start_owner(&f);
    /* 1200 exchanges, half of them in 150 sessions, from 40 days ago */
    char err[512] = "";
    cg_store_writer_t *w;
    T_ASSERTF(cg_store_writer_open(f.path, false, &w, err, sizeof err) == 0, "%s", err);
    int64_t old = cg_wall_ms() - 40 * 86400000LL;
    for (int i = 0; i < 1200; i++) {
        char req[32], key[32];
        snprintf(req, sizeof req, "old-%d", i);
        snprintf(key, sizeof key, "old:%d", i % 300);
        cg_store_exchange_t x = exchange_at(req, i % 2 ? key : NULL, old + i);
        x.stateful = true;
        x.messages_json = "[{\"role\":\"user\",\"content\":\"ancient history\"}]";
        cg_store_rec_t r;
        cg_buf_t ab = {0};
        bool fatal;
        cg_store_rec_from_exchange(&x, &r, &ab);
        T_ASSERTF(cg_store_writer_apply(w, &r, err, sizeof err, &fatal) == 0, "%s", err);
        cg_buf_free(&ab);
    }
    T_EQ_INT(cg_store_writer_commit(w, err, sizeof err), 0);
    cg_store_writer_close(w);
    int64_t old_entries = sql_int(f.path, "SELECT count(*) FROM entries");
    T_EQ_INT(old_entries, 600);

    f.args.retention_days = 30;
    fx_start_store(&f);
    cg_store_counters_t before, after;
    cg_store_counters(&before);
    cg_msg_t *m = cg_msg_new(CG_STORE_PRUNE, NULL, 0);
    m->req_id = 1000;
    m->reply_to = f.owner;
    T_EQ_INT(cg_actor_send(f.store, m), 0);
    for (uint64_t i = 1; i <= 50; i++)
        send_append(&f, i, "new:1", "[{\"role\":\"user\",\"content\":\"fresh\"}]");
    T_ASSERT(wait_acks(51));
    T_EQ_INT(get_count(&C.failed), 0);
    cg_store_counters(&after);
    /* 1200 exchanges + 600 entries + 150 sessions (odd i only) */
    T_EQ_INT(after.pruned - before.pruned, 1950);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges"), 50);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM sessions"), 1);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries WHERE text = 'ancient history'"), 0);
    T_EQ_INT(sql_exec(f.path, "INSERT INTO entries_fts(entries_fts) VALUES('integrity-check')"),
             SQLITE_OK);
    fx_end(&f);
}

int main(int argc, char **argv)
{
    cg_log_set_level(getenv("CG_TEST_DEBUG") ? CG_LOG_DEBUG : CG_LOG_WARN);
    /* An argument runs only the tests whose name contains it. */
#define RUN(fn)                                                                                    \
    if (argc < 2 || strstr(#fn, argv[1]))                                                          \
        T_RUN(fn);
    RUN(test_append_and_ack);
    RUN(test_logged_appends_and_flush);
    RUN(test_group_commit_batches);
    RUN(test_database_failure_acks_error);
    RUN(test_logged_batch_failure_keeps_the_log);
    RUN(test_malformed_append);
    RUN(test_init_refuses_newer_database);
    RUN(test_crash_acks_pending_as_failed);
    RUN(test_background_checkpoint);
    RUN(test_retention_on_request);
    T_DONE();
}
