/*
 * actor.c — the store actor: the only writer, group commit, ACKs, retention,
 * and the background checkpointer.
 *
 * DESIGN
 * Group commit. The first APPEND of a batch opens a transaction (write.c)
 * and arms a timer: with the default window of 0 it fires in the same loop
 * turn, after the runtime handed over every message already queued (up to
 * the spec's batch), so a batch is exactly "what arrived while the previous
 * commit ran" — no added wait when idle, large batches under load. A batch
 * also commits when it reaches max_batch. Only after COMMIT returned are the
 * ACKs sent, in arrival order: the front releases the client's final byte on
 * that ACK, which is the durability contract (store.h).
 *
 * Failures. An exchange that fails alone (malformed, a CHECK) is ACKed with
 * its error at once and the batch goes on. A database failure (disk full,
 * I/O error, corrupt file, lock held by another process past the busy
 * timeout) rolls the batch back and ACKs every exchange in it with ok=false:
 * the front answers by clawgate.store.onError. Each batch failure is counted
 * and logged (at most one line a second, with the number suppressed). The
 * actor stays up: a disk that frees up again means commits work again.
 *
 * Checkpoints. SQLite's automatic checkpoint runs inside the COMMIT that
 * crosses 1000 WAL pages, copying and fsyncing on the commit path (3-5x
 * slower commits here). So the write connection has it off and a wal_hook
 * instead, which kicks a helper thread with its own connection to run
 * PASSIVE checkpoints (they never block the writer or readers) at least once
 * a second. That keeps the database file current, but the WAL file restarts
 * from its beginning only when a transaction begins with every frame already
 * copied, and a checkpoint ends with an fsync during which a busy writer
 * always appends more: under steady load the WAL only grows. So past
 * WAL_HARD_PAGES the actor runs one PASSIVE checkpoint itself between two
 * transactions (the helper has copied most frames; what is left is the tail
 * and the fsyncs), and the next transaction restarts the WAL. That is the one
 * pause commits take, once per WAL_HARD_PAGES of writes. The helper is a
 * plain thread, not an actor: its only inputs are "now" and "stop", an
 * eventfd carries both.
 *
 * Retention. Every PRUNE_INTERVAL (and on CG_STORE_PRUNE) rows older than
 * retention_days go in steps of PRUNE_BATCH rows, each step its own short
 * transaction followed by a return to the loop, so appends interleave with a
 * long prune instead of waiting behind one long lock.
 */
#include "store/internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define DEFAULT_MAX_BATCH 256
#define CKPT_PERIOD_MS 1000
#define CKPT_KICK_PAGES 1000 /* WAL pages (4 KiB) before the helper is kicked */
#define CKPT_KICK_GAP_MS 100 /* at most one kick per this */
#define WAL_HARD_PAGES 16384 /* 64 MiB: the writer checkpoints itself */
#define PRUNE_BATCH 500
#define PRUNE_FIRST_NS (5ull * 1000000000ull)
#define PRUNE_INTERVAL_NS (600ull * 1000000000ull)
#define DAY_MS 86400000LL

/* ---- counters ---- */

/* Relaxed: independent statistics; nothing is ordered by them. */
static uint64_t counters[CG_STORE_CNT__N];

void cg_store_count(int which, uint64_t n)
{
    __atomic_fetch_add(&counters[which], n, __ATOMIC_RELAXED);
}

void cg_store_counters(cg_store_counters_t *out)
{
    out->exchanges = __atomic_load_n(&counters[CG_STORE_CNT_EXCHANGES], __ATOMIC_RELAXED);
    out->commits = __atomic_load_n(&counters[CG_STORE_CNT_COMMITS], __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&counters[CG_STORE_CNT_ERRORS], __ATOMIC_RELAXED);
    out->acks_lost = __atomic_load_n(&counters[CG_STORE_CNT_ACKS_LOST], __ATOMIC_RELAXED);
    out->pruned = __atomic_load_n(&counters[CG_STORE_CNT_PRUNED], __ATOMIC_RELAXED);
}

/* ---- the append message ---- */

#define APPEND_FMT "SSbSSSSSSiSiiiidiiiiSS"

cg_msg_t *cg_store_append_msg(const cg_store_exchange_t *x)
{
    cg_store_rec_t r;
    cg_buf_t attempts = {0};
    cg_store_rec_from_exchange(x, &r, &attempts);
    cg_msg_t *m = cg_msg_pack(
        CG_STORE_APPEND, APPEND_FMT, r.tenant.p, r.tenant.n, r.session_key.p, r.session_key.n,
        (int)r.stateful, r.request_id.p, r.request_id.n, r.client_api.p, r.client_api.n,
        r.model_asked.p, r.model_asked.n, r.model_answered.p, r.model_answered.n, r.status.p,
        r.status.n, r.error_class.p, r.error_class.n, r.http_status, r.attempts_json.p,
        r.attempts_json.n, r.prompt_tokens, r.completion_tokens, r.cache_read_tokens,
        r.cache_write_tokens, r.cost_usd, r.ttft_ms, r.latency_ms, r.started_ms, r.finished_ms,
        r.messages.p, r.messages.n, r.reply.p, r.reply.n);
    cg_buf_free(&attempts);
    return m;
}

int cg_store_decode_append(const cg_msg_t *m, cg_msg_view_t *v, cg_store_rec_t *r)
{
    int stateful = 0;
    memset(r, 0, sizeof *r);
    int rc = cg_msg_unpack(
        m, v, APPEND_FMT, &r->tenant.p, &r->tenant.n, &r->session_key.p, &r->session_key.n,
        &stateful, &r->request_id.p, &r->request_id.n, &r->client_api.p, &r->client_api.n,
        &r->model_asked.p, &r->model_asked.n, &r->model_answered.p, &r->model_answered.n,
        &r->status.p, &r->status.n, &r->error_class.p, &r->error_class.n, &r->http_status,
        &r->attempts_json.p, &r->attempts_json.n, &r->prompt_tokens, &r->completion_tokens,
        &r->cache_read_tokens, &r->cache_write_tokens, &r->cost_usd, &r->ttft_ms, &r->latency_ms,
        &r->started_ms, &r->finished_ms, &r->messages.p, &r->messages.n, &r->reply.p, &r->reply.n);
    r->stateful = stateful != 0;
    return rc;
}

/* ---- the checkpointer thread ---- */

typedef struct ckpt {
    pthread_t thread;
    int efd; /* kick (1) or stop (STOP) */
    char *path;
    int stop; /* atomic */
} ckpt_t;

/* One PASSIVE checkpoint: copies the frames the WAL holds as it starts,
 * then fsyncs the database; never waits for the writer or readers. */
static void checkpoint_passive(sqlite3 *db, const char *who)
{
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
        cg_warn("store: %s checkpoint: %s", who, sqlite3_errmsg(db));
}

static void *ckpt_main(void *arg)
{
    ckpt_t *c = arg;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        cg_warn("store: checkpointer cannot open %s: %s; checkpoints fall back to the writer",
                c->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_wal_autocheckpoint(db, 0);
    /* A connection opens the WAL only with its first read; until then a
     * checkpoint on it does nothing (it reports -1 frames). */
    if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK)
        cg_warn("store: checkpointer: %s", sqlite3_errmsg(db));
    for (;;) {
        struct pollfd p = {.fd = c->efd, .events = POLLIN};
        int n = poll(&p, 1, CKPT_PERIOD_MS);
        if (n > 0) {
            uint64_t v;
            ssize_t r = read(c->efd, &v, sizeof v);
            CG_UNUSED(r);
        }
        /* Acquire: pairs with the release store in ckpt_stop, nothing else
         * is published through it; it only has to be seen eventually. */
        if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
            break;
        checkpoint_passive(db, "background");
    }
    sqlite3_close_v2(db);
    return NULL;
}

static ckpt_t *ckpt_start(const char *path)
{
    ckpt_t *c = cg_calloc(1, sizeof *c);
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    c->path = cg_strdup(path);
    if (c->efd < 0 || pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
        cg_warn("store: cannot start the checkpointer (%s); the writer checkpoints itself",
                strerror(errno));
        if (c->efd >= 0)
            close(c->efd);
        cg_free(c->path);
        cg_free(c);
        return NULL;
    }
    return c;
}

static void ckpt_kick(ckpt_t *c)
{
    cg_efd_signal(c->efd);
}

static void ckpt_stop(ckpt_t *c)
{
    if (!c)
        return;
    __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
    ckpt_kick(c);
    pthread_join(c->thread, NULL);
    close(c->efd);
    cg_free(c->path);
    cg_free(c);
}

/* ---- the actor ---- */

typedef struct waiter {
    cg_aid_t to;
    uint64_t req_id;
} waiter_t;

typedef struct store {
    cg_actor_t *a;
    cg_store_writer_t *w;
    char *path;
    int retention_days;
    int max_batch;
    uint64_t window_ns;
    bool inline_checkpoint;
    ckpt_t *ckpt;
    waiter_t *pend; /* exchanges in the open transaction, in order */
    size_t npend, cappend;
    uint64_t commit_timer;
    uint64_t prune_timer;
    bool prune_running;
    waiter_t *prune_waiters;
    size_t nprune, capprune;
    int wal_pages; /* after the last commit (wal_hook) */
    int next_hard; /* WAL pages at which the writer checkpoints itself */
    uint64_t last_kick_ms;
    uint64_t last_err_log_ms, errs_unlogged;
    uint64_t logged_seq;  /* highest pending-log record in the open transaction */
    uint64_t applied_seq; /* highest committed (or given up on) */
    bool log_hole;        /* a batch with logged records failed: the log is the
                             only copy of those; it stays until the next start */
    waiter_t *flushers;   /* FLUSH senders, answered after the next commit */
    size_t nflush, capflush;
} store_t;

static void push_waiter(waiter_t **v, size_t *n, size_t *cap, cg_aid_t to, uint64_t req_id)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *v = cg_realloc(*v, *cap * sizeof **v);
    }
    (*v)[(*n)++] = (waiter_t){to, req_id};
}

static void send_ack(store_t *s, cg_aid_t to, uint64_t req_id, bool ok, const char *error)
{
    if (to == CG_AID_NONE)
        return;
    cg_msg_t *m = cg_msg_pack(CG_STORE_ACK, "bs", (int)ok, ok ? NULL : error);
    m->req_id = req_id;
    m->sender = cg_actor_self(s->a);
    /* The owner is gone (client left, front restarted) or its mailbox is
     * full: nothing to wait for the ACK any more, or nothing we can do
     * without blocking every other request; count it. */
    if (cg_actor_send(to, m) != 0) {
        cg_msg_free(m);
        cg_store_count(CG_STORE_CNT_ACKS_LOST, 1);
    }
}

/* Log a store failure, at most once a second. */
static void log_failure(store_t *s, const char *msg, size_t n_exchanges)
{
    cg_store_count(CG_STORE_CNT_ERRORS, n_exchanges);
    uint64_t now = cg_now_ms();
    if (s->last_err_log_ms && now - s->last_err_log_ms < 1000) {
        s->errs_unlogged += n_exchanges;
        return;
    }
    if (s->errs_unlogged)
        cg_error("store: %s (%zu exchange(s) not stored; %llu more since the last report)", msg,
                 n_exchanges, (unsigned long long)s->errs_unlogged);
    else
        cg_error("store: %s (%zu exchange(s) not stored)", msg, n_exchanges);
    s->last_err_log_ms = now;
    s->errs_unlogged = 0;
}

static void fail_batch(store_t *s, const char *msg)
{
    log_failure(s, msg, s->npend);
    for (size_t i = 0; i < s->npend; i++)
        send_ack(s, s->pend[i].to, s->pend[i].req_id, false, msg);
    s->npend = 0;
}

/* WAL pages past which the writer checkpoints itself: the hard limit with
 * the helper thread, SQLite's usual 1000 pages without it. */
static int wal_limit(const store_t *s)
{
    return s->ckpt ? WAL_HARD_PAGES : CKPT_KICK_PAGES;
}

/* A transaction with logged exchanges in it failed: their only copy is the
 * pending log. From now on the log position in the database stays where it
 * is and the front keeps its files, so the next start applies them (and
 * skips the ones committed meanwhile, by request id). Queries stop waiting
 * for them: they are given up on until then. */
static void log_hole(store_t *s, bool logged)
{
    if (logged && !s->log_hole) {
        s->log_hole = true;
        cg_error("store: exchanges already answered are not in the database; they stay in the "
                 "pending log and go in at the next start");
    }
    s->applied_seq = s->logged_seq;
}

/* Answer the FLUSH senders: everything logged before their FLUSH is
 * committed (or was given up on, which the log cannot help either: its rows
 * were refused, not lost). */
static void answer_flushers(store_t *s)
{
    for (size_t i = 0; i < s->nflush; i++) {
        cg_msg_t *m = cg_msg_pack(CG_STORE_SYNCED, "b", (int)s->log_hole);
        m->req_id = s->applied_seq;
        m->sender = cg_actor_self(s->a);
        if (cg_actor_send(s->flushers[i].to, m) != 0)
            cg_msg_free(m);
    }
    s->nflush = 0;
}

static void commit_now(store_t *s)
{
    if (s->commit_timer) {
        cg_actor_timer_cancel(s->a, s->commit_timer);
        s->commit_timer = 0;
    }
    if (!cg_store_writer_in_txn(s->w)) {
        answer_flushers(s);
        return;
    }
    char err[512];
    bool logged = s->logged_seq > s->applied_seq;
    if ((logged && !s->log_hole &&
         cg_store_writer_set_applied(s->w, s->logged_seq, err, sizeof err) != 0) ||
        cg_store_writer_commit(s->w, err, sizeof err) != 0) {
        log_hole(s, logged);
        fail_batch(s, err);
        answer_flushers(s); /* with keep_files set: nothing to wait for until a restart */
        return;
    }
    s->applied_seq = s->logged_seq;
    answer_flushers(s);
    cg_store_count(CG_STORE_CNT_COMMITS, 1);
    cg_store_count(CG_STORE_CNT_EXCHANGES, s->npend);
    for (size_t i = 0; i < s->npend; i++)
        send_ack(s, s->pend[i].to, s->pend[i].req_id, true, NULL);
    s->npend = 0;
    if (s->inline_checkpoint)
        return;
    if (s->wal_pages >= s->next_hard) {
        /* Between transactions: the WAL cannot grow while this runs. If a
         * reader's snapshot keeps it from restarting anyway, try again only
         * after another quarter of the limit, not after every commit. */
        checkpoint_passive(cg_store_writer_db(s->w), "writer");
        s->next_hard = s->wal_pages + wal_limit(s) / 4;
    } else if (s->ckpt && s->wal_pages >= CKPT_KICK_PAGES) {
        uint64_t now = cg_now_ms();
        if (now - s->last_kick_ms >= CKPT_KICK_GAP_MS) {
            s->last_kick_ms = now;
            ckpt_kick(s->ckpt);
        }
    }
}

static void on_commit_timer(cg_actor_t *a, void *ud)
{
    CG_UNUSED(a);
    store_t *s = ud;
    s->commit_timer = 0;
    commit_now(s);
}

static int on_wal(void *ud, sqlite3 *db, const char *name, int pages)
{
    CG_UNUSED(db);
    CG_UNUSED(name);
    store_t *s = ud;
    if (pages < s->wal_pages)
        s->next_hard = wal_limit(s); /* the WAL restarted */
    s->wal_pages = pages;
    return SQLITE_OK;
}

static void handle_append(store_t *s, cg_msg_t *m)
{
    if (m->type == CG_STORE_APPEND_LOGGED) {
        /* In the pending log already: nobody waits for an ACK, and on any
         * failure below the record stays there for the next start. */
        if (m->req_id > s->logged_seq)
            s->logged_seq = m->req_id;
        m->reply_to = CG_AID_NONE;
    }
    cg_msg_view_t v;
    cg_store_rec_t r;
    char err[512];
    if (cg_store_decode_append(m, &v, &r) != 0) {
        cg_msg_view_done(&v);
        log_failure(s, "malformed APPEND message", 1);
        send_ack(s, m->reply_to, m->req_id, false, "store: malformed APPEND message");
        return;
    }
    bool fatal = false;
    int rc = cg_store_writer_apply(s->w, &r, err, sizeof err, &fatal);
    cg_msg_view_done(&v);
    if (fatal) {
        /* The transaction is gone: everything in it fails with this one. */
        cg_store_writer_rollback(s->w);
        log_hole(s, s->logged_seq > s->applied_seq);
        push_waiter(&s->pend, &s->npend, &s->cappend, m->reply_to, m->req_id);
        fail_batch(s, err);
        if (s->commit_timer) {
            cg_actor_timer_cancel(s->a, s->commit_timer);
            s->commit_timer = 0;
        }
        return;
    }
    if (rc != 0) {
        log_failure(s, err, 1);
        send_ack(s, m->reply_to, m->req_id, false, err);
    } else {
        push_waiter(&s->pend, &s->npend, &s->cappend, m->reply_to, m->req_id);
    }
    if ((int)s->npend >= s->max_batch)
        commit_now(s);
    else if (s->npend && !s->commit_timer)
        s->commit_timer = cg_actor_timer(s->a, s->window_ns, 0, on_commit_timer, s);
}

/* ---- retention ---- */

static void prune_step(cg_actor_t *a, void *ud);

static void prune_schedule(store_t *s, uint64_t delay_ns)
{
    if (s->prune_timer)
        cg_actor_timer_cancel(s->a, s->prune_timer);
    s->prune_timer = cg_actor_timer(s->a, delay_ns, 0, prune_step, s);
}

static void prune_done(store_t *s, bool ok, const char *err)
{
    s->prune_running = false;
    for (size_t i = 0; i < s->nprune; i++)
        send_ack(s, s->prune_waiters[i].to, s->prune_waiters[i].req_id, ok, err);
    s->nprune = 0;
    if (s->retention_days > 0)
        prune_schedule(s, PRUNE_INTERVAL_NS);
}

static void prune_step(cg_actor_t *a, void *ud)
{
    CG_UNUSED(a);
    store_t *s = ud;
    s->prune_timer = 0;
    if (s->retention_days <= 0) {
        prune_done(s, true, NULL);
        return;
    }
    commit_now(s); /* the group transaction first: a prune step is its own */
    s->prune_running = true;
    char err[512];
    int64_t deleted = 0;
    int64_t cutoff = cg_wall_ms() - (int64_t)s->retention_days * DAY_MS;
    int rc = cg_store_writer_prune_step(s->w, cutoff, PRUNE_BATCH, &deleted, err, sizeof err);
    cg_store_count(CG_STORE_CNT_PRUNED, (uint64_t)deleted);
    if (rc < 0) {
        cg_error("%s", err);
        prune_done(s, false, err);
    } else if (rc == 1) {
        prune_schedule(s, 0); /* next step after this turn's messages */
    } else {
        prune_done(s, true, NULL);
    }
}

/* ---- spec ---- */

static int store_init(cg_actor_t *a, void *arg)
{
    const cg_store_args_t *args = arg;
    char err[512];
    cg_store_writer_t *w;
    int rc = cg_store_writer_open(args->path, args->inline_checkpoint != 0, &w, err, sizeof err);
    if (rc != 0) {
        cg_error("%s", err);
        return -1;
    }
    store_t *s = cg_calloc(1, sizeof *s);
    s->a = a;
    s->w = w;
    s->path = cg_strdup(args->path);
    s->retention_days = args->retention_days;
    s->max_batch = args->max_batch > 0 ? args->max_batch : DEFAULT_MAX_BATCH;
    s->window_ns = args->commit_window_us > 0 ? (uint64_t)args->commit_window_us * 1000 : 0;
    s->inline_checkpoint = args->inline_checkpoint != 0;
    if (!s->inline_checkpoint) {
        sqlite3_wal_hook(cg_store_writer_db(w), on_wal, s);
        s->ckpt = ckpt_start(s->path);
    }
    s->next_hard = wal_limit(s);
    if (s->retention_days > 0)
        prune_schedule(s, PRUNE_FIRST_NS);
    cg_actor_set_state(a, s);
    cg_info("store: %s open (schema version %d, WAL, synchronous=NORMAL, retention %s)", s->path,
            CG_STORE_SCHEMA_VERSION, s->retention_days > 0 ? "on" : "off");
    return 0;
}

static void store_handle(cg_actor_t *a, cg_msg_t *m)
{
    store_t *s = cg_actor_state(a);
    switch (m->type) {
    case CG_STORE_APPEND:
    case CG_STORE_APPEND_LOGGED:
        handle_append(s, m);
        break;
    case CG_STORE_FLUSH:
        push_waiter(&s->flushers, &s->nflush, &s->capflush, m->reply_to, m->req_id);
        commit_now(s);
        break;
    case CG_STORE_PRUNE:
        push_waiter(&s->prune_waiters, &s->nprune, &s->capprune, m->reply_to, m->req_id);
        if (!s->prune_running)
            prune_schedule(s, 0);
        break;
    case CG_MSG_RELOAD:
    case CG_MSG_TICK:
        break;
    default:
        cg_debug("store: ignoring message type %u", m->type);
        break;
    }
    cg_msg_free(m);
}

static void store_stopping(cg_actor_t *a)
{
    store_t *s = cg_actor_state(a);
    commit_now(s);
    if (s->prune_timer) {
        cg_actor_timer_cancel(a, s->prune_timer);
        s->prune_timer = 0;
    }
    for (size_t i = 0; i < s->nprune; i++)
        send_ack(s, s->prune_waiters[i].to, s->prune_waiters[i].req_id, false, "store stopping");
    s->nprune = 0;
    cg_actor_exit(a, CG_EXIT_SHUTDOWN, NULL);
}

static void store_cleanup(cg_actor_t *a)
{
    store_t *s = cg_actor_state(a);
    if (!s)
        return;
    if (cg_store_writer_in_txn(s->w)) {
        /* Ending without a graceful stop (crash hook, fatal error): what is
         * not committed is not stored; say so to whoever waits. */
        cg_store_writer_rollback(s->w);
        fail_batch(s, "store: the store actor ended before committing");
    }
    for (size_t i = 0; i < s->nprune; i++)
        send_ack(s, s->prune_waiters[i].to, s->prune_waiters[i].req_id, false, "store ended");
    ckpt_stop(s->ckpt); /* first: the writer's close is then the last, and checkpoints */
    cg_store_writer_close(s->w);
    cg_free(s->pend);
    cg_free(s->flushers);
    cg_free(s->prune_waiters);
    cg_free(s->path);
    cg_free(s);
    cg_actor_set_state(a, NULL);
}

const cg_actor_spec_t cg_store_spec = {
    .name = "store",
    .batch = 256,
    .init = store_init,
    .handle = store_handle,
    .stopping = store_stopping,
    .cleanup = store_cleanup,
};
