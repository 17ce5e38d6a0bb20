/*
 * test_write.c — the write path without the actor (store/write.c): exchanges,
 * session bookkeeping in stateless and stateful mode, per-exchange failure,
 * FTS upkeep, retention steps, cost arithmetic, the APPEND encoding.
 */
#include "tests/store/helpers.h"

#include <math.h>

typedef struct fixture {
    char *dir;
    char *path;
    cg_store_writer_t *w;
} fixture_t;

static void setup(fixture_t *f)
{
    char err[512] = "";
    f->dir = tmp_dir();
    f->path = cg_sprintf("%s/w.db", f->dir);
    int rc = cg_store_writer_open(f->path, false, &f->w, err, sizeof err);
    T_ASSERTF(rc == 0, "%s", err);
}

static void teardown(fixture_t *f)
{
    cg_store_writer_close(f->w);
    rm_tree(f->dir);
    cg_free(f->dir);
    cg_free(f->path);
}

static void test_exchange_without_session(void)
{
    fixture_t f;
    setup(&f);
    cg_store_attempt_t att[] = {
        {.ref = "fake/m2", .fail_class = "timeout", .http_status = 504, .duration_ms = 30},
        {.ref = "fake/m1", .http_status = 200, .duration_ms = 70},
    };
    cg_store_exchange_t x = exchange_at("req-1", NULL, 1000);
    x.attempts = att;
    x.n_attempts = 2;
    x.cache_read_tokens = 3;
    x.messages_json = "[{\"role\":\"user\",\"content\":\"hi\"}]";
    WRITE_ONE(f.w, &x);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges"), 1);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM sessions"), 0);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries"), 0);
    T_EQ_INT(sql_int(f.path, "SELECT session_id IS NULL FROM exchanges"), 1);
    T_EQ_INT(sql_int(f.path, "SELECT tenant_id FROM exchanges"), 1);
    T_EQ_INT(sql_int(f.path, "SELECT cache_read_tokens FROM exchanges"), 3);
    T_EQ_INT(sql_int(f.path, "SELECT ttft_ms FROM exchanges"), 20);
    char *a = sql_text(f.path, "SELECT attempts FROM exchanges");
    T_EQ_STR(a,
             "[{\"ref\":\"fake/m2\",\"class\":\"timeout\",\"http_status\":504,\"duration_ms\":30},"
             "{\"ref\":\"fake/m1\",\"class\":null,\"http_status\":200,\"duration_ms\":70}]");
    cg_free(a);
    /* attempts are queryable from the sqlite3 shell */
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges, json_each(attempts) "
                             "WHERE json_extract(value, '$.class') = 'timeout'"),
             1);
    /* no first token is NULL, not 0 */
    x = exchange_at("req-2", NULL, 2000);
    x.ttft_ms = -1;
    x.status = "error";
    x.error_class = "timeout";
    x.model_answered = NULL;
    WRITE_ONE(f.w, &x);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges WHERE request_id = 'req-2' AND "
                             "ttft_ms IS NULL AND model_answered IS NULL AND "
                             "error_class = 'timeout'"),
             1);
    teardown(&f);
}

#define SYS "{\"role\":\"system\",\"content\":\"be brief\"}"
#define U1 "{\"role\":\"user\",\"content\":\"first question about otters\"}"
#define A1 "{\"role\":\"assistant\",\"content\":\"answer one\"}"
#define U2 "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"second about badgers\"}]}"
#define A2 "{\"role\":\"assistant\",\"content\":\"answer two\"}"
#define U3 "{\"role\":\"user\",\"content\":\"third about weasels\"}"

static char *roles(const char *path)
{
    return sql_text(path, "SELECT group_concat(role, ',') FROM (SELECT role FROM entries "
                          "ORDER BY session_id, seq)");
}

static void test_stateless_turns(void)
{
    fixture_t f;
    setup(&f);
    /* turn 1: the whole (short) history is new */
    cg_store_exchange_t x = exchange_at("t1", "agent:main:main", 1000);
    x.messages_json = "[" SYS "," U1 "]";
    x.reply_json = A1;
    WRITE_ONE(f.w, &x);
    char *r = roles(f.path);
    T_EQ_STR(r, "system,user,assistant");
    cg_free(r);
    /* turn 2: the client sends everything again; only U2 is new. The
     * client's copy of A1 is formatted differently, which must not matter. */
    x = exchange_at("t2", "agent:main:main", 2000);
    x.messages_json =
        "[" SYS ",  " U1 ",{\"content\":\"answer one\",\"role\":\"assistant\"}," U2 "]";
    x.reply_json = A2;
    WRITE_ONE(f.w, &x);
    r = roles(f.path);
    T_EQ_STR(r, "system,user,assistant,user,assistant");
    cg_free(r);
    T_EQ_INT(sql_int(f.path, "SELECT next_seq FROM sessions"), 5);
    T_EQ_INT(sql_int(f.path, "SELECT client_messages FROM sessions"), 5);
    /* the text of content parts is what gets indexed */
    char *t = sql_text(f.path, "SELECT text FROM entries WHERE seq = 3");
    T_EQ_STR(t, "second about badgers");
    cg_free(t);
    /* content is stored as sent */
    t = sql_text(f.path, "SELECT content FROM entries WHERE seq = 3");
    T_EQ_STR(t, U2);
    cg_free(t);
    /* a failed turn adds no entries but is recorded under the session */
    x = exchange_at("t3-failed", "agent:main:main", 3000);
    x.status = "error";
    x.error_class = "timeout";
    x.messages_json = "[" SYS "," U1 "," A1 "," U2 "," A2 "," U3 "]";
    WRITE_ONE(f.w, &x);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries"), 5);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges WHERE session_id IS NOT NULL"), 3);
    T_EQ_INT(sql_int(f.path, "SELECT updated_ms FROM sessions"), 3100);
    /* the retry succeeds: U3 once */
    x = exchange_at("t3", "agent:main:main", 4000);
    x.messages_json = "[" SYS "," U1 "," A1 "," U2 "," A2 "," U3 "]";
    x.reply_json = "{\"role\":\"assistant\",\"content\":\"answer three\"}";
    WRITE_ONE(f.w, &x);
    r = roles(f.path);
    T_EQ_STR(r, "system,user,assistant,user,assistant,user,assistant");
    cg_free(r);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries WHERE text LIKE '%weasels%'"), 1);
    /* the token estimate is the last exchange's context: prompt + completion */
    T_EQ_INT(sql_int(f.path, "SELECT token_estimate FROM sessions"), 15);
    T_EQ_INT(sql_int(f.path, "SELECT (SELECT model FROM sessions) = 'fake/m1'"), 1);
    teardown(&f);
}

static void test_stateless_rewritten_history(void)
{
    fixture_t f;
    setup(&f);
    cg_store_exchange_t x = exchange_at("t1", "k", 1000);
    x.messages_json = "[" SYS "," U1 "]";
    x.reply_json = A1;
    WRITE_ONE(f.w, &x);
    x = exchange_at("t2", "k", 2000);
    x.messages_json = "[" SYS "," U1 "," A1 "," U2 "]";
    x.reply_json = A2;
    WRITE_ONE(f.w, &x);
    /* The client compacted its own history: a summary replaces the old
     * turns, so the array is shorter than before. Only what follows the last
     * assistant message is new. */
    x = exchange_at("t3", "k", 3000);
    x.messages_json =
        "[" SYS ",{\"role\":\"user\",\"content\":\"summary: otters, badgers\"}," A2 "," U3 "]";
    x.reply_json = "{\"role\":\"assistant\",\"content\":\"answer three\"}";
    WRITE_ONE(f.w, &x);
    char *t = sql_text(f.path, "SELECT group_concat(text, '|') FROM (SELECT text FROM entries "
                               "WHERE seq >= 5 ORDER BY seq)");
    T_EQ_STR(t, "third about weasels|answer three");
    cg_free(t);
    /* Longer, but edited in the middle (the previous turn's last question
     * changed): again after the last assistant message. */
    x = exchange_at("t4", "k", 4000);
    x.messages_json = "[" SYS ",{\"role\":\"user\",\"content\":\"edited\"}," A2 "," U3
                      ",{\"role\":\"assistant\",\"content\":\"answer three\"},"
                      "{\"role\":\"user\",\"content\":\"fourth\"}]";
    x.reply_json = "{\"role\":\"assistant\",\"content\":\"answer four\"}";
    WRITE_ONE(f.w, &x);
    t = sql_text(f.path, "SELECT group_concat(text, '|') FROM (SELECT text FROM entries "
                         "WHERE seq >= 7 ORDER BY seq)");
    T_EQ_STR(t, "fourth|answer four");
    cg_free(t);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries"), 9);
    teardown(&f);
}

static void test_stateful_turns(void)
{
    fixture_t f;
    setup(&f);
    cg_store_exchange_t x = exchange_at("s1", "agent:ops:main", 1000);
    x.stateful = true;
    x.messages_json = "[" SYS "," U1 "]";
    x.reply_json = A1;
    WRITE_ONE(f.w, &x);
    x = exchange_at("s2", "agent:ops:main", 2000);
    x.stateful = true;
    x.messages_json = "[" U2 "]"; /* only the new message */
    x.reply_json = A2;
    WRITE_ONE(f.w, &x);
    char *r = roles(f.path);
    T_EQ_STR(r, "system,user,assistant,user,assistant");
    cg_free(r);
    /* Responses: a bare string input is one user message */
    x = exchange_at("s3", "agent:ops:main", 3000);
    x.stateful = true;
    x.client_api = "responses";
    x.messages_json = "\"what about stoats\"";
    x.reply_json = "{\"role\":\"assistant\",\"content\":\"stoats!\"}";
    WRITE_ONE(f.w, &x);
    char *c = sql_text(f.path, "SELECT content FROM entries WHERE seq = 5");
    T_EQ_STR(c, "{\"role\":\"user\",\"content\":\"what about stoats\"}");
    cg_free(c);
    /* Responses items without a role use their type; tool arguments and
     * output are searchable */
    x = exchange_at("s4", "agent:ops:main", 4000);
    x.stateful = true;
    x.client_api = "responses";
    x.messages_json = "[{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"42 "
                      "ferrets\"}]";
    x.reply_json = "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c2\","
                   "\"type\":\"function\",\"function\":{\"name\":\"count\",\"arguments\":"
                   "\"{\\\"animal\\\":\\\"mink\\\"}\"}}]}";
    WRITE_ONE(f.w, &x);
    char *role = sql_text(f.path, "SELECT role FROM entries WHERE seq = 7");
    T_EQ_STR(role, "function_call_output");
    cg_free(role);
    char *t = sql_text(f.path, "SELECT text FROM entries WHERE seq = 8");
    T_CONTAINS(t, "count");
    T_CONTAINS(t, "mink");
    cg_free(t);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries_fts WHERE entries_fts MATCH 'ferrets'"),
             1);
    T_EQ_INT(sql_int(f.path, "SELECT client_messages FROM sessions"), 0);
    teardown(&f);
}

/* A bad exchange fails alone; the others in the same transaction commit. */
static void test_bad_exchange_fails_alone(void)
{
    fixture_t f;
    setup(&f);
    char err[512] = "";
    bool fatal = true;
    cg_buf_t ab = {0};
    cg_store_rec_t r;
    cg_store_exchange_t good = exchange_at("good-1", "k", 1000);
    good.messages_json = "[" U1 "]";
    good.reply_json = A1;
    cg_store_rec_from_exchange(&good, &r, &ab);
    T_EQ_INT(cg_store_writer_apply(f.w, &r, err, sizeof err, &fatal), 0);
    T_ASSERT(cg_store_writer_in_txn(f.w));

    const char *bad_msgs[] = {"{\"role\":\"user\"}", "[{\"role\":\"user\",\"content\":\"x\"",
                              "[1, 2]", "[{\"role\":\"user\",\"content\":\"x\"}] trailing"};
    for (size_t i = 0; i < CG_ARRAY_LEN(bad_msgs); i++) {
        cg_store_exchange_t bad = exchange_at("bad", "k", 1500);
        bad.messages_json = bad_msgs[i];
        cg_store_rec_from_exchange(&bad, &r, &ab);
        int rc = cg_store_writer_apply(f.w, &r, err, sizeof err, &fatal);
        T_ASSERTF(rc != 0, "'%s' accepted", bad_msgs[i]);
        T_ASSERT(!fatal);
    }
    /* a status outside the CHECK */
    cg_store_exchange_t bad = exchange_at("bad-status", NULL, 1600);
    bad.status = "maybe";
    cg_store_rec_from_exchange(&bad, &r, &ab);
    T_ASSERT(cg_store_writer_apply(f.w, &r, err, sizeof err, &fatal) != 0);
    T_ASSERT(!fatal);
    T_CONTAINS(err, "CHECK");
    /* a tenant first seen in a failed exchange is not left behind */
    bad = exchange_at("bad-tenant", NULL, 1700);
    bad.tenant = "acme";
    bad.status = "nope";
    cg_store_rec_from_exchange(&bad, &r, &ab);
    T_ASSERT(cg_store_writer_apply(f.w, &r, err, sizeof err, &fatal) != 0);

    cg_store_exchange_t good2 = exchange_at("good-2", "k", 2000);
    good2.tenant = "acme";
    good2.messages_json = "[" U1 "," A1 "," U2 "]";
    good2.reply_json = A2;
    cg_store_rec_from_exchange(&good2, &r, &ab);
    T_EQ_INT(cg_store_writer_apply(f.w, &r, err, sizeof err, &fatal), 0);
    T_EQ_INT(cg_store_writer_commit(f.w, err, sizeof err), 0);
    cg_buf_free(&ab);

    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges"), 2);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges WHERE request_id LIKE 'bad%'"), 0);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM tenants WHERE name = 'acme'"), 1);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM sessions"), 2); /* k for default and acme */
    /* a new session for acme: all its messages are new */
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries"), 6);
    teardown(&f);
}

/* A database error (here: another connection holds the write lock) is
 * fatal for the transaction and leaves nothing behind. */
static void test_locked_database_is_fatal(void)
{
    fixture_t f;
    setup(&f);
    sqlite3 *other;
    T_EQ_INT(sqlite3_open(f.path, &other), SQLITE_OK);
    T_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    char err[512] = "";
    bool fatal = false;
    cg_buf_t ab = {0};
    cg_store_rec_t r;
    cg_store_exchange_t x = exchange_at("locked", NULL, 1000);
    cg_store_rec_from_exchange(&x, &r, &ab);
    T_ASSERT(cg_store_writer_apply(f.w, &r, err, sizeof err, &fatal) != 0);
    T_ASSERT(fatal);
    T_CONTAINS(err, "locked");
    cg_store_writer_rollback(f.w);
    T_ASSERT(!cg_store_writer_in_txn(f.w));
    T_EQ_INT(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    /* and once the lock is gone, writes work again */
    T_EQ_INT(cg_store_writer_apply(f.w, &r, err, sizeof err, &fatal), 0);
    T_EQ_INT(cg_store_writer_commit(f.w, err, sizeof err), 0);
    cg_buf_free(&ab);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges"), 1);
    teardown(&f);
}

/* A full disk (simulated with max_page_count) is fatal for the batch; once
 * there is room again, writes work again. */
static void test_full_disk_is_fatal(void)
{
    fixture_t f;
    setup(&f);
    sqlite3 *db = cg_store_writer_db(f.w);
    int64_t pages = 0;
    sqlite3_stmt *st;
    T_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
    T_EQ_INT(sqlite3_step(st), SQLITE_ROW);
    pages = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    char *sql = cg_sprintf("PRAGMA max_page_count = %lld", (long long)pages + 3);
    T_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    cg_free(sql);
    cg_buf_t big = {0};
    cg_buf_puts(&big, "[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < 3000; i++)
        cg_buf_puts(&big, "full disk ");
    cg_buf_puts(&big, "\"}]");
    char err[512] = "";
    bool fatal = false;
    int rc = 0, i;
    for (i = 0; i < 50 && rc == 0; i++) {
        char req[32];
        snprintf(req, sizeof req, "full-%d", i);
        cg_store_exchange_t x = exchange_at(req, "k", 1000 + i);
        x.stateful = true;
        x.messages_json = big.data;
        cg_store_rec_t r;
        cg_buf_t ab = {0};
        cg_store_rec_from_exchange(&x, &r, &ab);
        rc = cg_store_writer_apply(f.w, &r, err, sizeof err, &fatal);
        if (rc == 0)
            rc = cg_store_writer_commit(f.w, err, sizeof err);
        cg_buf_free(&ab);
    }
    T_ASSERTF(rc != 0, "50 exchanges of 30 KB fit in 3 pages?");
    T_CONTAINS(err, "full");
    if (fatal)
        cg_store_writer_rollback(f.w);
    T_ASSERT(!cg_store_writer_in_txn(f.w));
    T_EQ_INT(sqlite3_exec(db, "PRAGMA max_page_count = 1000000", NULL, NULL, NULL), SQLITE_OK);
    cg_store_exchange_t x = exchange_at("after", "k", 5000);
    x.stateful = true;
    x.messages_json = big.data;
    WRITE_ONE(f.w, &x);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges WHERE request_id = 'after'"), 1);
    cg_buf_free(&big);
    teardown(&f);
}

/* Retention: bounded steps until nothing older than the cutoff is left. */
static void test_prune_in_batches(void)
{
    fixture_t f;
    setup(&f);
    /* 30 old sessions of 2 turns (4 entries, 2 exchanges each), 40 old
     * sessionless exchanges, and a recent session */
    char key[32], req[32];
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "old-%d", i);
        for (int turn = 0; turn < 2; turn++) {
            snprintf(req, sizeof req, "old-%d-%d", i, turn);
            cg_store_exchange_t x = exchange_at(req, key, 1000 + i * 10 + turn);
            x.stateful = true;
            x.messages_json = "[" U1 "]";
            x.reply_json = A1;
            WRITE_ONE(f.w, &x);
        }
    }
    for (int i = 0; i < 40; i++) {
        snprintf(req, sizeof req, "loose-%d", i);
        cg_store_exchange_t x = exchange_at(req, NULL, 2000 + i);
        WRITE_ONE(f.w, &x);
    }
    cg_store_exchange_t x = exchange_at("new", "recent", 1000000);
    x.messages_json = "[" U1 "]";
    x.reply_json = A1;
    WRITE_ONE(f.w, &x);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries"), 122);
    /* 100 exchanges + 120 entries + 30 sessions = 250 old rows */
    char err[512] = "";
    int64_t deleted, total = 0;
    int steps = 0, rc;
    do {
        rc = cg_store_writer_prune_step(f.w, 500000, 40, &deleted, err, sizeof err);
        T_ASSERTF(rc >= 0, "%s", err);
        T_ASSERT(deleted <= 40);
        total += deleted;
        steps++;
        T_ASSERT(steps < 50);
    } while (rc == 1);
    T_EQ_INT(total, 250);
    T_ASSERT(steps >= 7);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM sessions"), 1);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges"), 1);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries"), 2);
    /* the FTS index followed the deletes */
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries_fts WHERE entries_fts MATCH 'otters'"),
             1);
    T_EQ_INT(sql_exec(f.path, "INSERT INTO entries_fts(entries_fts) VALUES('integrity-check')"),
             SQLITE_OK);
    /* nothing left: one step, nothing deleted */
    T_EQ_INT(cg_store_writer_prune_step(f.w, 500000, 40, &deleted, err, sizeof err), 0);
    T_EQ_INT(deleted, 0);
    teardown(&f);
}

static void test_cost_arithmetic(void)
{
    cg_model_t m = {0};
    m.cost.input = 3; /* USD per million */
    m.cost.output = 15;
    m.cost.cache_read = 0.3;
    m.cost.cache_write = 3.75;
    /* 1000 prompt of which 600 cache reads and 100 cache writes: 300 at
     * input, 600 at cache_read, 100 at cache_write; 500 out */
    double c = cg_store_cost(&m, 1000, 500, 600, 100);
    double want = (300 * 3 + 600 * 0.3 + 100 * 3.75 + 500 * 15) / 1e6;
    T_ASSERTF(fabs(c - want) < 1e-12, "%.12f != %.12f", c, want);
    /* no cache */
    c = cg_store_cost(&m, 1000000, 1000000, 0, 0);
    T_ASSERTF(fabs(c - 18.0) < 1e-9, "%f", c);
    /* a provider that reports cache reads beyond the prompt: never negative */
    c = cg_store_cost(&m, 10, 0, 20, 0);
    T_ASSERTF(fabs(c - 20 * 0.3 / 1e6) < 1e-15, "%.15f", c);
    /* free models and no model */
    cg_model_t free_model = {0};
    T_ASSERT(cg_store_cost(&free_model, 1000, 1000, 0, 0) == 0);
    T_ASSERT(cg_store_cost(NULL, 1000, 1000, 0, 0) == 0);
}

/* The APPEND message carries every field to the store intact. */
static void test_append_encoding(void)
{
    cg_store_attempt_t att[] = {{.ref = "a/b", .fail_class = "rate_limit", .http_status = 429}};
    cg_store_exchange_t x = exchange_at("enc-1", "agent:x:y", 123456);
    x.tenant = "acme";
    x.stateful = true;
    x.attempts = att;
    x.n_attempts = 1;
    x.cost_usd = 0.25;
    x.cache_write_tokens = 7;
    x.messages_json = "[{\"role\":\"user\",\"content\":\"hi\"}]xx"; /* len limits it */
    x.messages_len = strlen(x.messages_json) - 2;
    x.reply_json = A1;
    cg_msg_t *m = cg_store_append_msg(&x);
    T_EQ_INT(m->type, CG_STORE_APPEND);
    /* decode as the actor does, then write it */
    fixture_t f;
    setup(&f);
    cg_msg_view_t v;
    cg_store_rec_t r;
    int stateful = 0;
    memset(&r, 0, sizeof r);
    int rc = cg_msg_unpack(m, &v, "SSbSSSSSSiSiiiidiiiiSS", &r.tenant.p, &r.tenant.n,
                           &r.session_key.p, &r.session_key.n, &stateful, &r.request_id.p,
                           &r.request_id.n, &r.client_api.p, &r.client_api.n, &r.model_asked.p,
                           &r.model_asked.n, &r.model_answered.p, &r.model_answered.n, &r.status.p,
                           &r.status.n, &r.error_class.p, &r.error_class.n, &r.http_status,
                           &r.attempts_json.p, &r.attempts_json.n, &r.prompt_tokens,
                           &r.completion_tokens, &r.cache_read_tokens, &r.cache_write_tokens,
                           &r.cost_usd, &r.ttft_ms, &r.latency_ms, &r.started_ms, &r.finished_ms,
                           &r.messages.p, &r.messages.n, &r.reply.p, &r.reply.n);
    T_EQ_INT(rc, 0);
    r.stateful = stateful;
    T_ASSERT(r.error_class.p == NULL);
    T_EQ_INT(r.messages.n, x.messages_len);
    char err[512] = "";
    bool fatal;
    T_EQ_INT(cg_store_writer_apply(f.w, &r, err, sizeof err, &fatal), 0);
    T_EQ_INT(cg_store_writer_commit(f.w, err, sizeof err), 0);
    cg_msg_view_done(&v);
    cg_msg_free(m);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM exchanges x JOIN tenants t ON t.id = "
                             "x.tenant_id JOIN sessions s ON s.id = x.session_id WHERE "
                             "t.name = 'acme' AND s.key = 'agent:x:y' AND x.request_id = 'enc-1' "
                             "AND x.cost_usd = 0.25 AND x.cache_write_tokens = 7 AND "
                             "x.started_ms = 123456 AND x.error_class IS NULL AND "
                             "json_extract(x.attempts, '$[0].class') = 'rate_limit'"),
             1);
    T_EQ_INT(sql_int(f.path, "SELECT count(*) FROM entries"), 2);
    teardown(&f);
}

int main(void)
{
    cg_log_set_level(CG_LOG_WARN);
    T_RUN(test_exchange_without_session);
    T_RUN(test_stateless_turns);
    T_RUN(test_stateless_rewritten_history);
    T_RUN(test_stateful_turns);
    T_RUN(test_bad_exchange_fails_alone);
    T_RUN(test_locked_database_is_fatal);
    T_RUN(test_full_disk_is_fatal);
    T_RUN(test_prune_in_batches);
    T_RUN(test_cost_arithmetic);
    T_RUN(test_append_encoding);
    T_DONE();
}
