/*
 * internal.h — what the store's files share with each other and with
 * tests/store; not for other modules (they use store.h).
 *
 * db.c      opening connections, pragmas, the compiled-in migrations, times
 * write.c   the write path: one exchange into one SAVEPOINT, commit, retention
 * actor.c   the store actor: messages, group commit, ACKs, the checkpointer
 * query.c   read-only connections, the query endpoints, history
 * cli.c     the command line on top of query.c
 */
#ifndef CG_STORE_INTERNAL_H
#define CG_STORE_INTERNAL_H

#include "store/store.h"

#include <json.h>
#include <sqlite3.h>

/* ---- db.c ---- */

typedef struct cg_store_migration {
    int version;      /* NNN of schema/NNN_name.sql */
    const char *name; /* "001_init" */
    const char *sql;  /* the file's text, NUL-terminated */
    /* The file edits table text in sqlite_schema (writable_schema): the
     * runner then sets PRAGMA schema_version one higher in the same
     * transaction, so every connection parses the new text. */
    bool edits_schema;
} cg_store_migration_t;

extern const cg_store_migration_t cg_store_migrations[];
extern const size_t cg_store_n_migrations;

/* Open (creating the file and its parent directories) the write connection:
 * WAL, synchronous=NORMAL, migrations applied. 0, or CG_EIO / CG_EINVAL with a
 * message for people in err. */
int cg_store_open_rw(const char *path, sqlite3 **out, char *err, size_t errlen);

/* Apply the migrations newer than the file's user_version; refuse a file of a
 * newer version or one that is not clawgate's. */
int cg_store_migrate(sqlite3 *db, const char *path, char *err, size_t errlen);

/* "2026-11-24T09:55:00.123Z" (UTC); out has room for 32 bytes. */
void cg_store_fmt_time(int64_t ms, char *out, size_t outlen);
/* "2026-11-24", "2026-11-24T09:55[:00[.123]][Z|+01:00]" (no zone: UTC),
 * unix seconds "1764000000", or an age "90s" "30m" "12h" "7d" "2w" before
 * now_ms. 0, or CG_EINVAL. */
int cg_store_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* ---- write.c ---- */

/* A borrowed string with its length; p NULL means absent (SQL NULL). */
typedef struct cg_str {
    const char *p;
    size_t n;
} cg_str_t;

/* One exchange as the write path takes it: decoded from a CG_STORE_APPEND
 * message (strings point into its msgpack zone) or converted from a
 * cg_store_exchange_t. */
typedef struct cg_store_rec {
    cg_str_t tenant, session_key, request_id, client_api, model_asked, model_answered;
    cg_str_t status, error_class;
    cg_str_t attempts_json; /* JSON array, already built by the sender */
    cg_str_t messages, reply;
    bool stateful;
    int64_t http_status;
    int64_t prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens;
    double cost_usd;
    int64_t ttft_ms, latency_ms, started_ms, finished_ms;
} cg_store_rec_t;

/* Fill r from x; the attempts JSON is written to attempts_buf, which must
 * outlive r. */
void cg_store_rec_from_exchange(const cg_store_exchange_t *x, cg_store_rec_t *r,
                                cg_buf_t *attempts_buf);

typedef struct cg_store_writer cg_store_writer_t;

/* The write connection and its prepared statements. inline_checkpoint: leave
 * SQLite's automatic checkpoint on (otherwise the caller checkpoints). */
int cg_store_writer_open(const char *path, bool inline_checkpoint, cg_store_writer_t **out,
                         char *err, size_t errlen);
void cg_store_writer_close(cg_store_writer_t *w);
sqlite3 *cg_store_writer_db(cg_store_writer_t *w);

/* Apply one exchange inside the open group transaction (opened on first use)
 * under its own SAVEPOINT: on failure only this exchange is undone and err
 * says why; the transaction stays usable unless *fatal is set (then the
 * caller must roll the whole transaction back). */
int cg_store_writer_apply(cg_store_writer_t *w, const cg_store_rec_t *r, char *err, size_t errlen,
                          bool *fatal);
bool cg_store_writer_in_txn(const cg_store_writer_t *w);
/* COMMIT the group transaction. On failure it is rolled back and err says
 * why: none of its exchanges is stored. */
int cg_store_writer_commit(cg_store_writer_t *w, char *err, size_t errlen);
void cg_store_writer_rollback(cg_store_writer_t *w);
/* Inside the group transaction (opened if need be): every pending-log record
 * up to seq is in it. On failure the transaction is rolled back. */
int cg_store_writer_set_applied(cg_store_writer_t *w, uint64_t seq, char *err, size_t errlen);

/* ---- pending.c ---- */

/* One whole, valid pending-log record; return false to stop the scan. */
typedef bool (*cg_pending_record_cb)(uint64_t seq, const char *payload, uint32_t len, void *ud);
/* Call cb for each whole, valid record at the start of data, in order; the
 * bytes they take (the rest is not a whole valid record). */
size_t cg_pending_scan(const char *data, size_t len, cg_pending_record_cb cb, void *ud);
/* Append one record (header and payload) to out, as cg_pending_append_batch writes
 * it. */
void cg_pending_record(uint64_t seq, const void *payload, size_t len, cg_buf_t *out);

/* Decode a CG_STORE_APPEND payload; the strings in r point into m (v must
 * stay alive). 0, or a negative code. */
int cg_store_decode_append(const cg_msg_t *m, cg_msg_view_t *v, cg_store_rec_t *r);

/* One retention step in its own transaction (no group transaction may be
 * open): deletes at most `batch` rows among exchanges started before
 * cutoff_ms, entries of sessions idle since before cutoff_ms, and then those
 * sessions. *deleted: rows removed. Returns 1 if more may remain, 0 if done,
 * or a negative code (err set). */
int cg_store_writer_prune_step(cg_store_writer_t *w, int64_t cutoff_ms, int batch, int64_t *deleted,
                               char *err, size_t errlen);

/* Process-wide counters (actor.c updates them). */
void cg_store_count(int which, uint64_t n);
enum {
    CG_STORE_CNT_EXCHANGES,
    CG_STORE_CNT_COMMITS,
    CG_STORE_CNT_ERRORS,
    CG_STORE_CNT_ACKS_LOST,
    CG_STORE_CNT_PRUNED,
    CG_STORE_CNT__N
};

/* ---- query.c ---- */

/* Parsed request parameters: decoded name/value pairs. */
typedef struct cg_store_params {
    char **names;
    char **values;
    size_t n;
} cg_store_params_t;

void cg_store_params_add(cg_store_params_t *p, const char *name, const char *value);
/* Parse a URL query string ("a=1&b=x%20y"); CG_EINVAL on bad escapes. */
int cg_store_params_parse(cg_store_params_t *p, const char *qs);
void cg_store_params_free(cg_store_params_t *p);

typedef enum {
    CG_STORE_Q_LIST,
    CG_STORE_Q_SHOW,
    CG_STORE_Q_SEARCH,
    CG_STORE_Q_USAGE,
} cg_store_qkind_t;

/* A query's error: HTTP status, OpenAI error code and a message. */
typedef struct cg_store_qerr {
    unsigned status;
    const char *code;
    char msg[256];
} cg_store_qerr_t;

/* Run a query: 0 and *out (a json-c object the caller puts), or a negative
 * code with e filled. key: the session key for CG_STORE_Q_SHOW. */
int cg_store_query(cg_store_ro_t *ro, cg_store_qkind_t kind, const char *key,
                   const cg_store_params_t *p, int64_t now_ms, json_object **out,
                   cg_store_qerr_t *e);

/* ---- cli.c ---- */

/* cg_store_cli writing to out and err instead of stdout and stderr. */
int cg_store_cli_run(int argc, char **argv, const char *db_path, FILE *out, FILE *err);

#endif
