/*
 * helpers.h — shared by the tests in tests/store: temporary databases,
 * exchanges with sensible defaults, small SQL probes.
 */
#ifndef CG_TEST_STORE_HELPERS_H
#define CG_TEST_STORE_HELPERS_H

#include "store/internal.h"
#include "tests/t.h"

#include <dirent.h>
#include <unistd.h>

/* A fresh directory under /tmp for one test; rm_tree removes it. */
static inline char *tmp_dir(void)
{
    char *d = cg_strdup("/tmp/cg-store-test-XXXXXX");
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        abort();
    }
    return d;
}

static inline void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *p = cg_sprintf("%s/%s", path, e->d_name);
            rm_tree(p);
            cg_free(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* An ok chat exchange at time t (ms). */
static inline cg_store_exchange_t exchange_at(const char *req, const char *key, int64_t t)
{
    return (cg_store_exchange_t){
        .session_key = key,
        .request_id = req,
        .client_api = "chat.completions",
        .model_asked = "Fast",
        .model_answered = "fake/m1",
        .status = "ok",
        .http_status = 200,
        .prompt_tokens = 10,
        .completion_tokens = 5,
        .cost_usd = 0.001,
        .ttft_ms = 20,
        .latency_ms = 100,
        .started_ms = t,
        .finished_ms = t + 100,
    };
}

/* Apply and commit one exchange on a writer; fails the test on error. */
#define WRITE_ONE(w, x)                                                                            \
    do {                                                                                           \
        cg_store_rec_t r_;                                                                         \
        cg_buf_t ab_ = {0};                                                                        \
        char err_[512] = "";                                                                       \
        bool fatal_ = false;                                                                       \
        cg_store_rec_from_exchange((x), &r_, &ab_);                                                \
        int rc_ = cg_store_writer_apply((w), &r_, err_, sizeof err_, &fatal_);                     \
        cg_buf_free(&ab_);                                                                         \
        T_ASSERTF(rc_ == 0, "apply: %s", err_);                                                    \
        T_ASSERTF(cg_store_writer_commit((w), err_, sizeof err_) == 0, "commit: %s", err_);        \
    } while (0)

/* One integer from a query on a fresh connection (-1 on error). */
static inline int64_t sql_int(const char *db_path, const char *sql)
{
    sqlite3 *db;
    int64_t v = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        } else {
            fprintf(stdout, "# sql_int: %s: %s\n", sql, sqlite3_errmsg(db));
        }
    }
    sqlite3_close(db);
    return v;
}

/* One text value (heap, or NULL). */
static inline char *sql_text(const char *db_path, const char *sql)
{
    sqlite3 *db;
    char *v = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
                v = cg_strdup((const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
        } else {
            fprintf(stdout, "# sql_text: %s: %s\n", sql, sqlite3_errmsg(db));
        }
    }
    sqlite3_close(db);
    return v;
}

/* Run SQL on a fresh read-write connection; 0 or the SQLite error code. */
static inline int sql_exec(const char *db_path, const char *sql)
{
    sqlite3 *db;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) {
        char *msg = NULL;
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK)
            fprintf(stdout, "# sql_exec: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
    }
    sqlite3_close(db);
    return rc;
}

#endif
