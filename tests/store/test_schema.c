/*
 * test_schema.c — migrations, opening, refusal of newer/foreign/corrupt
 * files, and the time formats (store/db.c).
 */
#include "tests/store/helpers.h"

#include <sys/stat.h>

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    cg_buf_t b = {0};
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        cg_buf_append(&b, tmp, n);
    fclose(f);
    return cg_buf_steal(&b, NULL);
}

/* The migrations compiled in (.incbin) are the files in schema/, all of
 * them, in order: a stale object or a forgotten table row fails here. */
static void test_embedded_matches_files(void)
{
    DIR *d = opendir("schema");
    T_ASSERTF(d, "run the tests from the repository root (schema/ not found)");
    size_t files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".sql") != 0)
            continue;
        files++;
        int version = atoi(e->d_name);
        const cg_store_migration_t *m = NULL;
        for (size_t i = 0; i < cg_store_n_migrations; i++)
            if (cg_store_migrations[i].version == version)
                m = &cg_store_migrations[i];
        T_ASSERTF(m, "schema/%s is not compiled in (add it to store/db.c)", e->d_name);
        char *name = cg_sprintf("%s.sql", m->name);
        T_EQ_STR(name, e->d_name);
        cg_free(name);
        char *path = cg_sprintf("schema/%s", e->d_name);
        char *text = read_file(path);
        cg_free(path);
        T_ASSERT(text);
        T_ASSERTF(strcmp(text, m->sql) == 0,
                  "compiled-in %s differs from the file: rebuild store/db.o", e->d_name);
        cg_free(text);
    }
    closedir(d);
    T_EQ_INT(files, cg_store_n_migrations);
    for (size_t i = 0; i < cg_store_n_migrations; i++)
        T_EQ_INT(cg_store_migrations[i].version, (int)i + 1);
    T_EQ_INT(cg_store_migrations[cg_store_n_migrations - 1].version, CG_STORE_SCHEMA_VERSION);
}

static void test_fresh_database(void)
{
    char *dir = tmp_dir();
    /* parent directories are created */
    char *path = cg_sprintf("%s/a/b/clawgate.db", dir);
    sqlite3 *db;
    char err[512] = "";
    int rc = cg_store_open_rw(path, &db, err, sizeof err);
    T_ASSERTF(rc == 0, "%s", err);
    sqlite3_close(db);
    T_EQ_INT(sql_int(path, "PRAGMA user_version"), CG_STORE_SCHEMA_VERSION);
    char *mode = sql_text(path, "PRAGMA journal_mode");
    T_EQ_STR(mode, "wal");
    cg_free(mode);
    char *tenant = sql_text(path, "SELECT name FROM tenants WHERE id = 1");
    T_EQ_STR(tenant, "default");
    cg_free(tenant);
    T_EQ_INT(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('tenants', "
                           "'sessions', 'entries', 'exchanges', 'entries_fts')"),
             5);
    /* Opening again applies nothing and keeps the data. */
    T_EQ_INT(sql_exec(path, "INSERT INTO tenants (name, created_ms) VALUES ('t2', 0)"), 0);
    rc = cg_store_open_rw(path, &db, err, sizeof err);
    T_ASSERTF(rc == 0, "%s", err);
    sqlite3_close(db);
    T_EQ_INT(sql_int(path, "SELECT count(*) FROM tenants"), 2);
    T_EQ_INT(sql_int(path, "PRAGMA user_version"), CG_STORE_SCHEMA_VERSION);
    cg_free(path);
    rm_tree(dir);
    cg_free(dir);
}

static void test_newer_version_refused(void)
{
    char *dir = tmp_dir();
    char *path = cg_sprintf("%s/c.db", dir);
    sqlite3 *db;
    char err[512] = "";
    T_ASSERT(cg_store_open_rw(path, &db, err, sizeof err) == 0);
    sqlite3_close(db);
    T_EQ_INT(sql_exec(path, "PRAGMA user_version = 99"), 0);
    int rc = cg_store_open_rw(path, &db, err, sizeof err);
    T_ASSERT(rc != 0);
    T_ASSERT(db == NULL);
    char want[96];
    snprintf(want, sizeof want, "schema version 99 is newer than this clawgate's (%d)",
             CG_STORE_SCHEMA_VERSION);
    T_CONTAINS(err, want);
    T_CONTAINS(err, path);
    /* the read side refuses it too */
    cg_store_ro_t *ro = cg_store_ro_open(path, err, sizeof err);
    T_ASSERT(ro == NULL);
    T_CONTAINS(err, "newer");
    /* and the file was not touched */
    T_EQ_INT(sql_int(path, "PRAGMA user_version"), 99);
    cg_free(path);
    rm_tree(dir);
    cg_free(dir);
}

static void test_foreign_database_refused(void)
{
    char *dir = tmp_dir();
    char *path = cg_sprintf("%s/other.db", dir);
    T_EQ_INT(sql_exec(path, "CREATE TABLE notes (x TEXT)"), 0);
    sqlite3 *db;
    char err[512] = "";
    T_ASSERT(cg_store_open_rw(path, &db, err, sizeof err) != 0);
    T_CONTAINS(err, "not a clawgate database");
    T_EQ_INT(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'sessions'"), 0);
    cg_free(path);
    rm_tree(dir);
    cg_free(dir);
}

static void test_corrupt_file(void)
{
    char *dir = tmp_dir();
    char *path = cg_sprintf("%s/bad.db", dir);
    FILE *f = fopen(path, "wb");
    T_ASSERT(f);
    for (int i = 0; i < 2048; i++)
        fputs("this is not a database ", f);
    fclose(f);
    sqlite3 *db;
    char err[512] = "";
    T_ASSERT(cg_store_open_rw(path, &db, err, sizeof err) != 0);
    T_CONTAINS(err, path);
    T_CONTAINS(err, "not a database");
    cg_store_ro_t *ro = cg_store_ro_open(path, err, sizeof err);
    T_ASSERT(ro == NULL);
    T_CONTAINS(err, "not a database");
    /* a missing file is a different, clear error on the read side */
    char *missing = cg_sprintf("%s/missing.db", dir);
    ro = cg_store_ro_open(missing, err, sizeof err);
    T_ASSERT(ro == NULL);
    T_CONTAINS(err, "no database here");
    struct stat sb;
    T_ASSERT(stat(missing, &sb) != 0); /* and it was not created */
    cg_free(missing);
    cg_free(path);
    rm_tree(dir);
    cg_free(dir);
}

static void test_unwritable_directory(void)
{
    char err[512] = "";
    sqlite3 *db;
    /* a path under a regular file cannot be created */
    char *dir = tmp_dir();
    char *file = cg_sprintf("%s/file", dir);
    FILE *f = fopen(file, "w");
    T_ASSERT(f);
    fclose(f);
    char *path = cg_sprintf("%s/sub/x.db", file);
    T_ASSERT(cg_store_open_rw(path, &db, err, sizeof err) != 0);
    T_CONTAINS(err, "cannot create directory");
    cg_free(path);
    cg_free(file);
    rm_tree(dir);
    cg_free(dir);
}

/* What main calls before the actors start. */
static void test_prepare(void)
{
    char *dir = tmp_dir();
    char *path = cg_sprintf("%s/var/new.db", dir);
    char err[512] = "";
    T_ASSERTF(cg_store_prepare(path, err, sizeof err) == 0, "%s", err);
    T_EQ_INT(sql_int(path, "PRAGMA user_version"), CG_STORE_SCHEMA_VERSION);
    cg_store_ro_t *ro = cg_store_ro_open(path, err, sizeof err);
    T_ASSERTF(ro, "%s", err);
    cg_store_ro_close(ro);
    T_EQ_INT(cg_store_prepare(path, err, sizeof err), 0); /* again: nothing to do */
    T_EQ_INT(sql_exec(path, "PRAGMA user_version = 5"), 0);
    T_ASSERT(cg_store_prepare(path, err, sizeof err) != 0);
    T_CONTAINS(err, "newer than this clawgate's");
    cg_free(path);
    rm_tree(dir);
    cg_free(dir);
}

/* A database a version-1 clawgate wrote, rows in it, is migrated in place:
 * the rows stay, the pending log position starts at 0. */
static void test_upgrade_from_version_1(void)
{
    char *dir = tmp_dir();
    char *path = cg_sprintf("%s/old.db", dir);
    T_EQ_INT(cg_store_migrations[0].version, 1);
    char *v1 = cg_sprintf("%s; PRAGMA user_version = 1;", cg_store_migrations[0].sql);
    T_EQ_INT(sql_exec(path, v1), 0);
    T_EQ_INT(sql_exec(path, "INSERT INTO exchanges (tenant_id, request_id, client_api, status, "
                            "started_ms, finished_ms) VALUES (1, 'old', 'chat.completions', "
                            "'ok', 1, 1)"),
             0);
    char err[512] = "";
    T_ASSERTF(cg_store_prepare(path, err, sizeof err) == 0, "%s", err);
    T_EQ_INT(sql_int(path, "PRAGMA user_version"), CG_STORE_SCHEMA_VERSION);
    T_EQ_INT(sql_int(path, "SELECT count(*) FROM exchanges WHERE request_id = 'old'"), 1);
    T_EQ_INT(sql_int(path, "SELECT seq FROM pending_applied WHERE id = 1"), 0);
    cg_free(v1);
    cg_free(path);
    rm_tree(dir);
    cg_free(dir);
}

/* How many times opcode op appears in the program SQLite compiles for sql on
 * db (EXPLAIN), or -1 if it does not compile. */
static int count_opcode(sqlite3 *db, const char *sql, const char *op)
{
    char *explain = cg_sprintf("EXPLAIN %s", sql);
    sqlite3_stmt *st = NULL;
    int n = -1;
    if (sqlite3_prepare_v2(db, explain, -1, &st, NULL) == SQLITE_OK) {
        n = 0;
        while (sqlite3_step(st) == SQLITE_ROW)
            if (strcmp((const char *)sqlite3_column_text(st, 1), op) == 0)
                n++;
    } else {
        fprintf(stdout, "# count_opcode: %s: %s\n", sql, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    cg_free(explain);
    return n;
}

#define INSERT_EXCHANGE                                                                            \
    "INSERT INTO exchanges (tenant_id, request_id, client_api, status, started_ms, finished_ms) "  \
    "VALUES (1, ?1, 'chat.completions', ?2, 1, 1)"
#define INSERT_ENTRY                                                                               \
    "INSERT INTO entries (session_id, seq, type, content, created_ms) VALUES (1, ?1, ?2, '{}', 1)"

/* Insert one row with text parameters a and b; the SQLite result code. */
static int insert2(sqlite3 *db, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc & 0xff; /* the primary code */
}

/* After migration 003, on db: the two CHECK constraints are equality tests
 * (no ephemeral table per INSERT) that accept and refuse what the IN lists
 * did, and the file is sound. */
static void check_lists_rewritten(const char *path, sqlite3 *db)
{
    char *ex = sql_text(path, "SELECT sql FROM sqlite_schema WHERE name = 'exchanges'");
    char *en = sql_text(path, "SELECT sql FROM sqlite_schema WHERE name = 'entries'");
    T_ASSERT(ex && en);
    T_CONTAINS(ex, "CHECK (status = 'ok' OR status = 'error' OR status = 'cancelled')");
    T_CONTAINS(en, "CHECK (type = 'message' OR type = 'compaction')");
    T_ASSERTF(!strstr(ex, " IN (") && !strstr(en, " IN ("), "%s\n%s", ex, en);
    cg_free(ex);
    cg_free(en);
    /* EXPLAIN compiles against the tables the connection has parsed without
     * checking the file's schema_version (a statement run does): run one. */
    sqlite3_stmt *st = NULL;
    T_EQ_INT(sqlite3_prepare_v2(db, "SELECT count(*) FROM exchanges", -1, &st, NULL), SQLITE_OK);
    T_EQ_INT(sqlite3_step(st), SQLITE_ROW);
    sqlite3_finalize(st);
    T_EQ_INT(count_opcode(db, INSERT_EXCHANGE, "OpenEphemeral"), 0);
    T_EQ_INT(count_opcode(db, INSERT_ENTRY, "OpenEphemeral"), 0);
    const char *status[] = {"ok", "error", "cancelled"};
    char id[32];
    for (size_t i = 0; i < CG_ARRAY_LEN(status); i++) {
        snprintf(id, sizeof id, "check-%s", status[i]);
        T_EQ_INT(insert2(db, INSERT_EXCHANGE, id, status[i]), SQLITE_OK);
    }
    const char *bad_status[] = {"bogus", "OK", "ok ", ""};
    for (size_t i = 0; i < CG_ARRAY_LEN(bad_status); i++)
        T_EQ_INT(insert2(db, INSERT_EXCHANGE, "check-bad", bad_status[i]), SQLITE_CONSTRAINT);
    T_EQ_INT(insert2(db, INSERT_ENTRY, "100", "message"), SQLITE_OK);
    T_EQ_INT(insert2(db, INSERT_ENTRY, "101", "compaction"), SQLITE_OK);
    T_EQ_INT(insert2(db, INSERT_ENTRY, "102", "summary"), SQLITE_CONSTRAINT);
    char *check = sql_text(path, "PRAGMA integrity_check");
    T_EQ_STR(check, "ok");
    cg_free(check);
}

/* Migration 003 on a new file. */
static void test_check_lists_fresh(void)
{
    char *dir = tmp_dir();
    char *path = cg_sprintf("%s/fresh.db", dir);
    sqlite3 *db;
    char err[512] = "";
    T_ASSERTF(cg_store_open_rw(path, &db, err, sizeof err) == 0, "%s", err);
    check_lists_rewritten(path, db);
    sqlite3_close(db);
    cg_free(path);
    rm_tree(dir);
    cg_free(dir);
}

/* Migration 003 on a file a version-2 clawgate wrote, with rows in it, while
 * another connection holds the old schema parsed: the rows stay, and that
 * connection compiles against the new text too (the schema_version bump). */
static void test_check_lists_upgrade(void)
{
    char *dir = tmp_dir();
    char *path = cg_sprintf("%s/v2.db", dir);
    T_EQ_INT(cg_store_migrations[1].version, 2);
    char *v2 = cg_sprintf("%s; %s; PRAGMA user_version = 2;", cg_store_migrations[0].sql,
                          cg_store_migrations[1].sql);
    T_EQ_INT(sql_exec(path, v2), 0);
    T_EQ_INT(sql_exec(path, "INSERT INTO exchanges (tenant_id, request_id, client_api, status, "
                            "started_ms, finished_ms) VALUES (1, 'old', 'chat.completions', "
                            "'cancelled', 1, 1)"),
             0);
    sqlite3 *other;
    T_EQ_INT(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    T_EQ_INT(count_opcode(other, INSERT_EXCHANGE, "OpenEphemeral"), 1); /* the old text */
    char err[512] = "";
    T_ASSERTF(cg_store_prepare(path, err, sizeof err) == 0, "%s", err);
    T_EQ_INT(sql_int(path, "PRAGMA user_version"), CG_STORE_SCHEMA_VERSION);
    T_EQ_INT(sql_int(path, "SELECT count(*) FROM exchanges WHERE request_id = 'old' AND "
                           "status = 'cancelled'"),
             1);
    check_lists_rewritten(path, other);
    sqlite3_close(other);
    cg_free(v2);
    cg_free(path);
    rm_tree(dir);
    cg_free(dir);
}

static void test_time_formats(void)
{
    char buf[40];
    cg_store_fmt_time(0, buf, sizeof buf);
    T_EQ_STR(buf, "1970-01-01T00:00:00.000Z");
    cg_store_fmt_time(1764000000123LL, buf, sizeof buf);
    T_EQ_STR(buf, "2025-11-24T16:00:00.123Z");
    int64_t now = 1764000000000LL, t;
    T_EQ_INT(cg_store_parse_time("2025-11-24", now, &t), 0);
    T_EQ_INT(t, 1763942400000LL);
    T_EQ_INT(cg_store_parse_time("2025-11-24T16:00:00Z", now, &t), 0);
    T_EQ_INT(t, 1764000000000LL);
    T_EQ_INT(cg_store_parse_time("2025-11-24T16:00:00.5Z", now, &t), 0);
    T_EQ_INT(t, 1764000000500LL);
    T_EQ_INT(cg_store_parse_time("2025-11-24T17:00+01:00", now, &t), 0);
    T_EQ_INT(t, 1764000000000LL);
    T_EQ_INT(cg_store_parse_time("2025-11-24 16:00", now, &t), 0);
    T_EQ_INT(t, 1764000000000LL);
    T_EQ_INT(cg_store_parse_time("1764000000", now, &t), 0);
    T_EQ_INT(t, 1764000000000LL);
    T_EQ_INT(cg_store_parse_time("7d", now, &t), 0);
    T_EQ_INT(t, now - 7 * 86400000LL);
    T_EQ_INT(cg_store_parse_time("30m", now, &t), 0);
    T_EQ_INT(t, now - 30 * 60000LL);
    T_EQ_INT(cg_store_parse_time("2w", now, &t), 0);
    T_EQ_INT(t, now - 14 * 86400000LL);
    const char *bad[] = {"",
                         "d",
                         "7x",
                         "yesterday",
                         "2025-13-01",
                         "2025-02-30",
                         "2025-11-24T25:00",
                         "2025-11-24T10",
                         "2025-11-24Tfoo",
                         "-5d",
                         "2025-11-24T10:00:00.Z"};
    for (size_t i = 0; i < CG_ARRAY_LEN(bad); i++)
        T_ASSERTF(cg_store_parse_time(bad[i], now, &t) == CG_EINVAL, "'%s' accepted", bad[i]);
}

int main(void)
{
    cg_log_set_level(CG_LOG_WARN);
    T_RUN(test_embedded_matches_files);
    T_RUN(test_fresh_database);
    T_RUN(test_newer_version_refused);
    T_RUN(test_foreign_database_refused);
    T_RUN(test_corrupt_file);
    T_RUN(test_unwritable_directory);
    T_RUN(test_prepare);
    T_RUN(test_upgrade_from_version_1);
    T_RUN(test_check_lists_fresh);
    T_RUN(test_check_lists_upgrade);
    T_RUN(test_time_formats);
    T_DONE();
}
