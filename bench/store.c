/*
 * bench/store.c — how fast the store actor commits exchanges, and what the
 * commit wait adds for the client.
 *
 *   store [--quick] [--dir DIR]
 *
 * 1. Throughput: a flood of APPENDs into a fresh database, transactions of
 *    exactly 1, 10 and 100 exchanges (max_batch with a long window), then the
 *    production setting (commit when the mailbox is drained, up to 256), for
 *    two payloads: a stateful turn (one ~400 B user message and a ~600 B
 *    reply: an exchange row, two entries with FTS, a session update) and a
 *    stateless OpenClaw-sized turn (a 40-message, ~36 KB history sent whole,
 *    of which the last message is new). Exchanges/s from first send to last
 *    ACK, and the same with SQLite's automatic checkpoint inside commits for
 *    comparison.
 * 2. Commit wait: an owner actor offering exchanges at fixed rates (production
 *    settings) measures send -> ACK: p50, p99, max, and the rate achieved.
 *
 * Nothing is asserted; figures depend on the machine and what else runs.
 */
#include "store/store.h"

#include <math.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- payloads ---- */

static char *user_msg(int i, size_t size)
{
    cg_buf_t b = {0};
    cg_buf_printf(&b, "{\"role\":\"user\",\"content\":\"message %d:", i);
    while (b.len < size)
        cg_buf_puts(&b, " the quick brown fox jumps over the lazy dog");
    cg_buf_puts(&b, "\"}");
    return cg_buf_steal(&b, NULL);
}

static const char *REPLY;
static char *SMALL_TURN;  /* one user message */
static char *BIG_HISTORY; /* 40 messages, ~36 KB */

static void make_payloads(void)
{
    cg_buf_t b = {0};
    cg_buf_puts(&b, "{\"role\":\"assistant\",\"content\":\"");
    while (b.len < 600)
        cg_buf_puts(&b, "lorem ipsum dolor sit amet consectetur ");
    cg_buf_puts(&b, "\"}");
    REPLY = cg_buf_steal(&b, NULL);
    char *u = user_msg(0, 400);
    SMALL_TURN = cg_sprintf("[%s]", u);
    cg_free(u);
    cg_buf_puts(&b, "[");
    for (int i = 0; i < 40; i++) {
        char *m = i % 2 ? cg_strdup(REPLY) : user_msg(i, 800);
        cg_buf_printf(&b, "%s%s", i ? "," : "", m);
        cg_free(m);
    }
    cg_buf_puts(&b, "]");
    BIG_HISTORY = cg_buf_steal(&b, NULL);
}

/* ---- the owner actor: sends at a rate (or floods), times the ACKs ---- */

typedef struct run {
    /* set before spawn */
    cg_aid_t store;
    uint64_t n;  /* exchanges to send */
    double rate; /* per second; 0: everything at once */
    bool big;    /* the stateless 36 KB history */
    /* owned by the owner actor until done */
    uint64_t sent, acked, failed;
    uint64_t *sent_ns; /* by req_id - 1 */
    uint64_t *lat_ns;
    uint64_t t0, t_end;
    uint64_t timer;
    /* done flag for the main thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} run_t;

static cg_msg_t *make_append(run_t *r, uint64_t i)
{
    char req[32], key[32];
    snprintf(req, sizeof req, "bench-%llu", (unsigned long long)i);
    snprintf(key, sizeof key, "agent:bench:%llu", (unsigned long long)(i % 100));
    int64_t now = cg_wall_ms();
    cg_store_exchange_t x = {
        .session_key = key,
        .stateful = !r->big,
        .request_id = req,
        .client_api = "chat.completions",
        .model_asked = "Fast",
        .model_answered = "local/qwen3",
        .status = "ok",
        .http_status = 200,
        .prompt_tokens = r->big ? 9000 : 120,
        .completion_tokens = 150,
        .cost_usd = 0.0001,
        .ttft_ms = 40,
        .latency_ms = 900,
        .started_ms = now - 900,
        .finished_ms = now,
        .messages_json = r->big ? BIG_HISTORY : SMALL_TURN,
        .reply_json = REPLY,
    };
    cg_store_attempt_t a = {.ref = "local/qwen3", .http_status = 200, .duration_ms = 900};
    x.attempts = &a;
    x.n_attempts = 1;
    return cg_store_append_msg(&x);
}

static void send_some(cg_actor_t *a, run_t *r, uint64_t upto)
{
    while (r->sent < upto && r->sent < r->n) {
        cg_msg_t *m = make_append(r, r->sent);
        m->req_id = r->sent + 1;
        m->reply_to = cg_actor_self(a);
        r->sent_ns[r->sent] = cg_now_ns();
        if (cg_actor_send(r->store, m) != 0) {
            cg_msg_free(m); /* mailbox full: try again next tick */
            return;
        }
        r->sent++;
    }
}

static void tick(cg_actor_t *a, void *ud)
{
    run_t *r = ud;
    double elapsed = (double)(cg_now_ns() - r->t0) / 1e9;
    uint64_t due = r->rate > 0 ? (uint64_t)(elapsed * r->rate) + 1 : r->n;
    send_some(a, r, due);
    if (r->sent >= r->n) {
        cg_actor_timer_cancel(a, r->timer);
        r->timer = 0;
    }
}

static int owner_init(cg_actor_t *a, void *arg)
{
    run_t *r = arg;
    cg_actor_set_state(a, r);
    r->t0 = cg_now_ns();
    r->timer = cg_actor_timer(a, 0, 1000000, tick, r); /* every 1 ms */
    return 0;
}

static void owner_handle(cg_actor_t *a, cg_msg_t *m)
{
    run_t *r = cg_actor_state(a);
    if (m->type == CG_STORE_ACK) {
        uint64_t now = cg_now_ns();
        cg_msg_view_t v;
        int ok = 0;
        const char *e;
        size_t el;
        if (cg_msg_unpack(m, &v, "bS", &ok, &e, &el) == 0 && m->req_id >= 1 && m->req_id <= r->n) {
            r->lat_ns[r->acked] = now - r->sent_ns[m->req_id - 1];
            r->acked++;
            if (!ok)
                r->failed++;
        }
        cg_msg_view_done(&v);
        if (r->acked == r->n) {
            r->t_end = now;
            pthread_mutex_lock(&r->mu);
            r->done = true;
            pthread_cond_signal(&r->cv);
            pthread_mutex_unlock(&r->mu);
        }
    }
    cg_msg_free(m);
}

static const cg_actor_spec_t owner_spec = {
    .name = "bench-owner", .init = owner_init, .handle = owner_handle};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

typedef struct result {
    double per_s;
    double p50_ms, p99_ms, max_ms;
    uint64_t commits;
    uint64_t failed;
    double wal_mb;
    double cpu_us; /* process CPU per exchange: every thread, not just the store */
} result_t;

static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static const char *g_dir;
static int g_seq;

static off_t file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? sb.st_size : 0;
}

/* One run against a fresh database. */
static result_t run_one(cg_store_args_t args, uint64_t n, double rate, bool big)
{
    char *path = cg_sprintf("%s/bench-%d.db", g_dir, g_seq++);
    args.path = path;
    result_t res = {0};
    cg_aid_t store, owner;
    if (cg_actor_spawn(&cg_store_spec, &args, CG_AID_NONE, &store) != 0) {
        fprintf(stderr, "cannot start the store\n");
        exit(1);
    }
    run_t r = {.store = store, .n = n, .rate = rate, .big = big};
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    r.sent_ns = cg_calloc(n, sizeof *r.sent_ns);
    r.lat_ns = cg_calloc(n, sizeof *r.lat_ns);
    cg_store_counters_t c0, c1;
    cg_store_counters(&c0);
    double cpu0 = cpu_s();
    cg_actor_spawn(&owner_spec, &r, CG_AID_NONE, &owner);
    pthread_mutex_lock(&r.mu);
    while (!r.done)
        pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
    cg_store_counters(&c1);
    res.cpu_us = (cpu_s() - cpu0) * 1e6 / (double)n;
    char *wal = cg_sprintf("%s-wal", path);
    res.wal_mb = (double)file_size(wal) / 1048576.0;
    cg_free(wal);
    cg_actor_stop(owner);
    cg_actor_join(owner, NULL);
    cg_actor_stop(store);
    cg_actor_join(store, NULL);
    res.per_s = (double)n / ((double)(r.t_end - r.t0) / 1e9);
    qsort(r.lat_ns, n, sizeof *r.lat_ns, cmp_u64);
    res.p50_ms = (double)r.lat_ns[(size_t)ceil(0.50 * (double)n) - 1] / 1e6;
    res.p99_ms = (double)r.lat_ns[(size_t)ceil(0.99 * (double)n) - 1] / 1e6;
    res.max_ms = (double)r.lat_ns[n - 1] / 1e6;
    res.commits = c1.commits - c0.commits;
    res.failed = r.failed;
    cg_free(r.sent_ns);
    cg_free(r.lat_ns);
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    unlink(path);
    char *side = cg_sprintf("%s-wal", path);
    unlink(side);
    cg_free(side);
    side = cg_sprintf("%s-shm", path);
    unlink(side);
    cg_free(side);
    cg_free(path);
    return res;
}

int main(int argc, char **argv)
{
    bool quick = false;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: store [--quick] [--dir DIR]\n");
            return 2;
        }
    }
    cg_log_set_level(CG_LOG_WARN);
    char tmpl[] = "/tmp/cg-bench-store-XXXXXX";
    g_dir = dir ? dir : mkdtemp(tmpl);
    if (!g_dir) {
        perror("mkdtemp");
        return 1;
    }
    make_payloads();
    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = -1;
        fclose(la);
    }
    printf("store benchmark (load average %.2f; on a shared machine read figures as noisy)\n",
           load[0]);
    printf("payloads: stateful turn %zu B of messages + %zu B reply; stateless history %zu B\n\n",
           strlen(SMALL_TURN), strlen(REPLY), strlen(BIG_HISTORY));

    printf("1. committed exchanges/s, flood (send -> ACK of the last)\n");
    printf("%-10s %-26s %9s %8s %9s %7s\n", "payload", "transaction", "exch/s", "commits",
           "CPU/exch", "WAL MB");
    static const struct {
        const char *name;
        int max_batch, window_us, inline_ckpt;
    } modes[] = {
        {"1 per commit", 1, 0, 0},
        {"10 per commit", 10, 10000000, 0},
        {"100 per commit", 100, 10000000, 0},
        {"drained (<=256)", 0, 0, 0},
        {"drained, ckpt in commit", 0, 0, 1},
    };
    for (int big = 0; big <= 1; big++) {
        for (size_t k = 0; k < CG_ARRAY_LEN(modes); k++) {
            uint64_t n = modes[k].max_batch == 1 ? 2000 : 20000;
            if (big)
                n /= 4;
            if (quick)
                n /= 10;
            cg_store_args_t a = {.max_batch = modes[k].max_batch,
                                 .commit_window_us = modes[k].window_us,
                                 .inline_checkpoint = modes[k].inline_ckpt};
            result_t r = run_one(a, n, 0, big);
            printf("%-10s %-26s %9.0f %8llu %7.0fus %7.1f%s\n", big ? "stateless" : "stateful",
                   modes[k].name, r.per_s, (unsigned long long)r.commits, r.cpu_us, r.wal_mb,
                   r.failed ? " (FAILURES)" : "");
            fflush(stdout);
        }
    }

    printf("\n2. commit wait at the owner (send -> ACK), production settings, stateful turns\n");
    printf("%10s %10s %9s %9s %9s %9s %9s\n", "offered/s", "achieved/s", "p50 ms", "p99 ms",
           "max ms", "commits", "CPU/exch");
    static const double rates[] = {500, 2000, 5000, 10000};
    for (size_t k = 0; k < CG_ARRAY_LEN(rates); k++) {
        double secs = quick ? 0.5 : 2.0;
        uint64_t n = (uint64_t)(rates[k] * secs);
        cg_store_args_t a = {0};
        result_t r = run_one(a, n, rates[k], false);
        printf("%10.0f %10.0f %9.2f %9.2f %9.2f %9llu %7.0fus%s\n", rates[k], r.per_s, r.p50_ms,
               r.p99_ms, r.max_ms, (unsigned long long)r.commits, r.cpu_us,
               r.failed ? " (FAILURES)" : "");
        fflush(stdout);
    }
    if (!dir)
        rmdir(g_dir);
    return 0;
}
