/*
 * write.c — the write path: exchanges into the open group transaction,
 * commit, retention. Used only from the store actor's thread (and tests).
 *
 * DESIGN
 * The store actor keeps one transaction open while it applies whatever
 * arrived in its loop turn, and commits once (group commit: one WAL append and
 * one page-cache write for many exchanges). Each exchange runs under its own
 * SAVEPOINT, so an exchange that fails on its own (bad JSON, a CHECK on its
 * status) is undone alone and ACKed with an error, while the others in the
 * batch still commit. Errors of the database itself (full disk, I/O, corrupt,
 * locked) are "fatal" for the transaction: the actor rolls it back and ACKs
 * the whole batch with the error.
 *
 * Messages: the front sends the request's whole message array; the write path
 * splits it into top-level elements with a small scanner (the front already
 * validated the JSON; here it must only not be fooled) and parses with json-c
 * only the elements it stores, to take their role and searchable text. The
 * message bytes are stored as sent. Which elements are new is decided by
 * session bookkeeping (sessions.client_messages and tail_hash; see store.h).
 */
#include "proto/jscan.h"
#include "store/internal.h"

#define TEXT_CAP (1u << 20) /* searchable text kept per entry */
#define JSON_MAX_DEPTH 64   /* json-c parse depth for one message */
#define TENANT_CACHE 16

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_TENANT_GET,
    ST_TENANT_ADD,
    ST_SESSION_GET,
    ST_SESSION_ADD,
    ST_SESSION_TURN,
    ST_SESSION_TOUCH,
    ST_EXCHANGE_ADD,
    ST_ENTRY_ADD,
    ST_FTS_INDEX,
    ST_PRUNE_EXCHANGES,
    ST_PRUNE_ENTRIES,
    ST_PRUNE_SESSIONS,
    ST_SET_APPLIED,
    ST__N
};

static const char *const sql_text[ST__N] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_SET_APPLIED] = "UPDATE pending_applied SET seq = ?1 WHERE id = 1",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT exchange",
    [ST_RELEASE] = "RELEASE exchange",
    [ST_ROLLBACK_TO] = "ROLLBACK TO exchange",
    [ST_TENANT_GET] = "SELECT id FROM tenants WHERE name = ?1",
    [ST_TENANT_ADD] = "INSERT INTO tenants (name, created_ms) VALUES (?1, ?2)",
    [ST_SESSION_GET] = "SELECT id, next_seq, client_messages, tail_hash, token_estimate "
                       "FROM sessions WHERE tenant_id = ?1 AND key = ?2",
    [ST_SESSION_ADD] = "INSERT INTO sessions (tenant_id, key, created_ms, updated_ms) "
                       "VALUES (?1, ?2, ?3, ?3)",
    [ST_SESSION_TURN] = "UPDATE sessions SET updated_ms = max(updated_ms, ?2), model = ?3, "
                        "token_estimate = ?4, next_seq = ?5, client_messages = ?6, "
                        "tail_hash = ?7 WHERE id = ?1",
    [ST_SESSION_TOUCH] = "UPDATE sessions SET updated_ms = max(updated_ms, ?2) WHERE id = ?1",
    [ST_EXCHANGE_ADD] =
        "INSERT INTO exchanges (tenant_id, session_id, request_id, client_api, model_asked, "
        "model_answered, status, error_class, http_status, attempts, prompt_tokens, "
        "completion_tokens, cache_read_tokens, cache_write_tokens, cost_usd, ttft_ms, "
        "latency_ms, started_ms, finished_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
        "?18, ?19)",
    [ST_ENTRY_ADD] = "INSERT INTO entries (session_id, seq, exchange_id, type, role, content, "
                     "text, tokens, created_ms) VALUES (?1, ?2, ?3, 'message', ?4, ?5, ?6, ?7, "
                     "?8)",
    [ST_FTS_INDEX] = "INSERT INTO entries_fts (rowid, text) SELECT id, text FROM entries "
                     "WHERE id >= ?1",
    [ST_PRUNE_EXCHANGES] = "DELETE FROM exchanges WHERE id IN (SELECT id FROM exchanges "
                           "WHERE started_ms < ?1 LIMIT ?2)",
    [ST_PRUNE_ENTRIES] = "DELETE FROM entries WHERE id IN (SELECT e.id FROM sessions s "
                         "JOIN entries e ON e.session_id = s.id WHERE s.updated_ms < ?1 "
                         "LIMIT ?2)",
    [ST_PRUNE_SESSIONS] = "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s "
                          "WHERE s.updated_ms < ?1 AND NOT EXISTS (SELECT 1 FROM entries e "
                          "WHERE e.session_id = s.id) LIMIT ?2)",
};

struct cg_store_writer {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[ST__N];
    bool in_txn;
    int64_t fts_from; /* first entry id of the open transaction; 0: none */
    /* tenant name -> id; cleared on rollback (an id inserted by a rolled
     * back transaction does not exist) */
    struct {
        char *name;
        int64_t id;
    } tenants[TENANT_CACHE];
    size_t n_tenants;
    cg_buf_t text;     /* scratch: searchable text of one entry */
    json_tokener *tok; /* reused for every message */
};

/* ---- small helpers ---- */

static bool str_eq(cg_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.n == n && memcmp(s.p, lit, n) == 0;
}

static void bind_str(sqlite3_stmt *st, int i, cg_str_t s)
{
    if (s.p)
        sqlite3_bind_text(st, i, s.p, (int)s.n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static cg_str_t cstr(const char *s)
{
    return (cg_str_t){s, s ? strlen(s) : 0};
}

/* Errors that end the whole transaction rather than one exchange: the
 * database cannot take writes (full, read-only, I/O, corrupt, locked). */
static bool is_fatal(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
        return true;
    default:
        return false;
    }
}

static void db_error(cg_store_writer_t *w, int rc, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "store: %s: %s (%s)", what, sqlite3_errmsg(w->db), sqlite3_errstr(rc));
}

/* Step a statement that returns no rows; reset it either way. */
static int run(cg_store_writer_t *w, int which)
{
    sqlite3_stmt *st = w->st[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* After a rollback: ids the cache learnt inside it may not exist. */
static void forget_tenants(cg_store_writer_t *w)
{
    for (size_t i = 0; i < w->n_tenants; i++)
        cg_free(w->tenants[i].name);
    w->n_tenants = 0;
}

/* ---- splitting a JSON array into its elements ---- */

typedef struct span {
    const char *p;
    size_t n;
} span_t;

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* End of the JSON value starting at s[i] (exclusive), or 0 if it is cut or
 * unbalanced. Only structure is checked; json-c validates what is stored. */
static size_t value_end(const char *s, size_t i, size_t n)
{
    int depth = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            /* Most bytes of a message array are inside strings: find the
             * closing quote with memchr and count the backslashes before a
             * candidate (an odd number escapes it). */
            size_t j = i + 1;
            for (;;) {
                const char *q = j < n ? memchr(s + j, '"', n - j) : NULL;
                if (!q)
                    return 0;
                size_t k = (size_t)(q - s), bs = 0;
                while (k - bs > j && s[k - bs - 1] == '\\')
                    bs++;
                j = k + 1;
                if (bs % 2 == 0)
                    break;
            }
            i = j;
            if (depth == 0)
                return i;
        } else if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* the bracket after a scalar */
            i++;
            if (--depth == 0)
                return i;
        } else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            return i;
        } else {
            i++;
        }
    }
    return depth == 0 ? i : 0;
}

/* The top-level elements of a JSON array (or of a bare string, which counts
 * as one element). CG_EINVAL if text is neither. */
static int split_array(const char *s, size_t n, span_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    size_t i = skip_ws(s, 0, n);
    if (i < n && s[i] == '"') {
        size_t e = value_end(s, i, n);
        if (!e || skip_ws(s, e, n) != n)
            return CG_EINVAL;
        *out = cg_malloc(sizeof **out);
        (*out)[0] = (span_t){s + i, e - i};
        *count = 1;
        return 0;
    }
    if (i >= n || s[i] != '[')
        return CG_EINVAL;
    size_t cap = 16, k = 0;
    span_t *v = cg_malloc(cap * sizeof *v);
    i = skip_ws(s, i + 1, n);
    if (i < n && s[i] == ']') {
        i++;
    } else {
        for (;;) {
            size_t e = value_end(s, i, n);
            if (!e || e == i)
                goto bad;
            if (k == cap) {
                cap *= 2;
                v = cg_realloc(v, cap * sizeof *v);
            }
            v[k++] = (span_t){s + i, e - i};
            i = skip_ws(s, e, n);
            if (i < n && s[i] == ',') {
                i = skip_ws(s, i + 1, n);
                continue;
            }
            if (i < n && s[i] == ']') {
                i++;
                break;
            }
            goto bad;
        }
    }
    if (skip_ws(s, i, n) != n)
        goto bad;
    *out = v;
    *count = k;
    return 0;
bad:
    cg_free(v);
    return CG_EINVAL;
}

/* Parse one element with the writer's tokener (reused: a new one costs a
 * calloc of its whole parse stack, measured at a tenth of an exchange). */
static json_object *parse_span(json_tokener *tok, span_t sp)
{
    json_tokener_reset(tok);
    json_object *o = json_tokener_parse_ex(tok, sp.p, (int)sp.n);
    bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
              json_tokener_get_parse_end(tok) == sp.n;
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* Append the searchable text of a message: the string values under the keys
 * that carry words people wrote or read (content, text, reasoning, tool
 * arguments and output, tool names), not ids, roles or URLs. */
static void gather_text(json_object *o, const char *key, cg_buf_t *out, int depth)
{
    static const char *const keys[] = {"content",   "text",    "reasoning_content",
                                       "reasoning", "refusal", "arguments",
                                       "output",    "name",    "summary"};
    if (depth > 16 || out->len >= TEXT_CAP)
        return;
    switch (json_object_get_type(o)) {
    case json_type_string:
        if (!key)
            return;
        for (size_t i = 0; i < CG_ARRAY_LEN(keys); i++) {
            if (strcmp(key, keys[i]) == 0) {
                size_t n = (size_t)json_object_get_string_len(o);
                if (out->len + n > TEXT_CAP)
                    n = TEXT_CAP - out->len;
                if (out->len)
                    cg_buf_append(out, "\n", 1);
                cg_buf_append(out, json_object_get_string(o), n);
                return;
            }
        }
        return;
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++)
            gather_text(json_object_array_get_idx(o, i), key, out, depth + 1);
        return;
    case json_type_object: {
        json_object_object_foreach(o, k, v)
        {
            /* An object inside a text-bearing key (content parts, tool call
             * functions) is walked with its own keys. */
            gather_text(v, k, out, depth + 1);
        }
        return;
    }
    default:
        return;
    }
}

/* The role of a message; Responses items without one use their type. */
static const char *msg_role(json_object *o)
{
    json_object *v;
    if (json_object_object_get_ex(o, "role", &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    if (json_object_object_get_ex(o, "type", &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

static bool is_assistant(json_tokener *tok, span_t sp)
{
    json_object *o = parse_span(tok, sp);
    const char *role = o ? msg_role(o) : NULL;
    bool yes = role && (strcmp(role, "assistant") == 0 || strcmp(role, "function_call") == 0);
    json_object_put(o);
    return yes;
}

static size_t trim_end(span_t sp)
{
    size_t n = sp.n;
    while (n && (sp.p[n - 1] == ' ' || sp.p[n - 1] == '\n' || sp.p[n - 1] == '\t' ||
                 sp.p[n - 1] == '\r'))
        n--;
    return n;
}

/* ---- open / close ---- */

int cg_store_writer_open(const char *path, bool inline_checkpoint, cg_store_writer_t **out,
                         char *err, size_t errlen)
{
    *out = NULL;
    sqlite3 *db;
    int rc = cg_store_open_rw(path, &db, err, errlen);
    if (rc != 0)
        return rc;
    cg_store_writer_t *w = cg_calloc(1, sizeof *w);
    w->db = db;
    w->path = cg_strdup(path);
    w->tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    for (int i = 0; i < ST__N; i++) {
        int src =
            sqlite3_prepare_v3(db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &w->st[i], NULL);
        if (src != SQLITE_OK) {
            snprintf(err, errlen, "%s: cannot prepare statement: %s", path, sqlite3_errmsg(db));
            cg_store_writer_close(w);
            return CG_EIO;
        }
    }
    if (!inline_checkpoint)
        sqlite3_wal_autocheckpoint(db, 0); /* the caller checkpoints (see actor.c) */
    *out = w;
    return 0;
}

void cg_store_writer_close(cg_store_writer_t *w)
{
    if (!w)
        return;
    if (w->in_txn)
        cg_store_writer_rollback(w);
    for (int i = 0; i < ST__N; i++)
        sqlite3_finalize(w->st[i]);
    forget_tenants(w);
    sqlite3_close_v2(w->db);
    cg_buf_free(&w->text);
    if (w->tok)
        json_tokener_free(w->tok);
    cg_free(w->path);
    cg_free(w);
}

sqlite3 *cg_store_writer_db(cg_store_writer_t *w)
{
    return w->db;
}

bool cg_store_writer_in_txn(const cg_store_writer_t *w)
{
    return w->in_txn;
}

/* ---- one exchange ---- */

/* The tenant's id from the cache: true, or false if it is not cached (then
 * tenant_id reads or inserts its row). */
static bool tenant_cached(const cg_store_writer_t *w, cg_str_t name, int64_t *id)
{
    if (!name.p)
        name = cstr("default");
    for (size_t i = 0; i < w->n_tenants; i++) {
        if (str_eq(name, w->tenants[i].name)) {
            *id = w->tenants[i].id;
            return true;
        }
    }
    return false;
}

static int tenant_id(cg_store_writer_t *w, cg_str_t name, int64_t now_ms, int64_t *id)
{
    if (tenant_cached(w, name, id))
        return SQLITE_OK;
    if (!name.p)
        name = cstr("default");
    sqlite3_stmt *st = w->st[ST_TENANT_GET];
    bind_str(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE) {
        /* Tenants are configured; until they are, a new name gets a row. */
        sqlite3_stmt *add = w->st[ST_TENANT_ADD];
        bind_str(add, 1, name);
        sqlite3_bind_int64(add, 2, now_ms);
        rc = run(w, ST_TENANT_ADD);
        if (rc != SQLITE_OK)
            return rc;
        *id = sqlite3_last_insert_rowid(w->db);
        rc = SQLITE_ROW;
    }
    if (rc != SQLITE_ROW)
        return rc;
    if (w->n_tenants < TENANT_CACHE) {
        w->tenants[w->n_tenants].name = cg_strndup(name.p, name.n);
        w->tenants[w->n_tenants].id = *id;
        w->n_tenants++;
    }
    return SQLITE_OK;
}

typedef struct sess {
    int64_t id;
    int64_t next_seq;
    int64_t client_messages;
    bool has_tail;
    int64_t tail_hash;
    int64_t token_estimate;
} sess_t;

static int session_get(cg_store_writer_t *w, int64_t tenant, cg_str_t key, int64_t now_ms,
                       sess_t *s)
{
    memset(s, 0, sizeof *s);
    sqlite3_stmt *st = w->st[ST_SESSION_GET];
    sqlite3_bind_int64(st, 1, tenant);
    bind_str(st, 2, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        s->id = sqlite3_column_int64(st, 0);
        s->next_seq = sqlite3_column_int64(st, 1);
        s->client_messages = sqlite3_column_int64(st, 2);
        s->has_tail = sqlite3_column_type(st, 3) != SQLITE_NULL;
        s->tail_hash = sqlite3_column_int64(st, 3);
        s->token_estimate = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_ROW)
        return SQLITE_OK;
    if (rc != SQLITE_DONE)
        return rc;
    sqlite3_stmt *add = w->st[ST_SESSION_ADD];
    sqlite3_bind_int64(add, 1, tenant);
    bind_str(add, 2, key);
    sqlite3_bind_int64(add, 3, now_ms);
    rc = run(w, ST_SESSION_ADD);
    if (rc == SQLITE_OK)
        s->id = sqlite3_last_insert_rowid(w->db);
    return rc;
}

/* Insert one message entry; *tokens gets its estimate. */
static int entry_add(cg_store_writer_t *w, int64_t session, int64_t seq, int64_t exchange,
                     span_t sp, int64_t tokens_known, int64_t now_ms, int64_t *tokens, char *err,
                     size_t errlen)
{
    json_object *o = parse_span(w->tok, sp);
    if (!o ||
        (!json_object_is_type(o, json_type_object) && !json_object_is_type(o, json_type_string))) {
        json_object_put(o);
        snprintf(err, errlen, "store: a message is not a JSON object");
        return CG_EINVAL;
    }
    cg_buf_reset(&w->text);
    const char *role;
    if (json_object_is_type(o, json_type_string)) {
        /* A bare string input (Responses): one user message. */
        role = "user";
        cg_buf_append(&w->text, json_object_get_string(o), (size_t)json_object_get_string_len(o));
    } else {
        role = msg_role(o);
        gather_text(o, NULL, &w->text, 0);
    }
    int64_t est = (int64_t)(w->text.len + 3) / 4 + 4; /* ~4 chars a token, plus framing */
    *tokens = tokens_known > 0 ? tokens_known : est;
    sqlite3_stmt *st = w->st[ST_ENTRY_ADD];
    sqlite3_bind_int64(st, 1, session);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_int64(st, 3, exchange);
    if (role)
        sqlite3_bind_text(st, 4, role, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 4);
    if (json_object_is_type(o, json_type_string)) {
        /* Stored as the message it stands for, so history can replay it. */
        cg_buf_t m = {0};
        cg_buf_puts(&m, "{\"role\":\"user\",\"content\":");
        cg_buf_append(&m, sp.p, sp.n);
        cg_buf_puts(&m, "}");
        sqlite3_bind_text(st, 5, m.data, (int)m.len, SQLITE_TRANSIENT);
        cg_buf_free(&m);
    } else {
        sqlite3_bind_text(st, 5, sp.p, (int)sp.n, SQLITE_STATIC);
    }
    sqlite3_bind_text(st, 6, w->text.len ? w->text.data : "", (int)w->text.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, *tokens);
    sqlite3_bind_int64(st, 8, now_ms);
    int rc = run(w, ST_ENTRY_ADD);
    json_object_put(o);
    if (rc != SQLITE_OK) {
        db_error(w, rc, "entry", err, errlen);
        return rc;
    }
    /* Rowids only grow within a transaction (max + 1), so every entry it
     * adds has an id >= the first one's: the FTS statement at commit takes
     * them all. One exchange rolled back leaves a gap, which is fine. */
    if (!w->fts_from)
        w->fts_from = sqlite3_last_insert_rowid(w->db);
    return 0;
}

/* The request messages and reply of an ok exchange under its session. */
static int record_turn(cg_store_writer_t *w, const cg_store_rec_t *r, const sess_t *s,
                       int64_t exchange, bool *fatal, char *err, size_t errlen)
{
    span_t *el = NULL;
    size_t n = 0;
    if (r->messages.p && split_array(r->messages.p, r->messages.n, &el, &n) != 0) {
        snprintf(err, errlen, "store: messages are not a JSON array");
        return CG_EINVAL;
    }
    /* Which elements are new (store.h, DESIGN): stateful sends only new
     * ones; stateless continues after the previous turn when its last
     * request message is still in place, else after the last assistant. */
    size_t first = 0;
    if (!r->stateful && s->client_messages > 0) {
        size_t cm = (size_t)s->client_messages;
        if (n > cm && cm >= 2 && s->has_tail &&
            (int64_t)cg_fnv1a64(el[cm - 2].p, trim_end(el[cm - 2])) == s->tail_hash) {
            first = cm;
        } else {
            first = 0;
            for (size_t i = n; i-- > 0;) {
                if (is_assistant(w->tok, el[i])) {
                    first = i + 1;
                    break;
                }
            }
        }
    }
    int64_t seq = s->next_seq, added = 0, tokens;
    int rc = 0;
    for (size_t i = first; i < n && rc == 0; i++) {
        rc = entry_add(w, s->id, seq++, exchange, el[i], 0, r->finished_ms, &tokens, err, errlen);
        added += tokens;
    }
    if (rc == 0 && r->reply.p) {
        rc = entry_add(w, s->id, seq++, exchange, (span_t){r->reply.p, r->reply.n},
                       r->completion_tokens, r->finished_ms, &tokens, err, errlen);
        added += tokens;
    }
    if (rc == 0) {
        sqlite3_stmt *st = w->st[ST_SESSION_TURN];
        int64_t estimate = r->prompt_tokens > 0 ? r->prompt_tokens + r->completion_tokens
                                                : s->token_estimate + added;
        sqlite3_bind_int64(st, 1, s->id);
        sqlite3_bind_int64(st, 2, r->finished_ms);
        bind_str(st, 3, r->model_answered);
        sqlite3_bind_int64(st, 4, estimate);
        sqlite3_bind_int64(st, 5, seq);
        if (!r->stateful && n > 0) {
            sqlite3_bind_int64(st, 6, (int64_t)n + (r->reply.p ? 1 : 0));
            sqlite3_bind_int64(st, 7, (int64_t)cg_fnv1a64(el[n - 1].p, trim_end(el[n - 1])));
        } else {
            sqlite3_bind_int64(st, 6, 0);
            sqlite3_bind_null(st, 7);
        }
        rc = run(w, ST_SESSION_TURN);
        if (rc != SQLITE_OK)
            db_error(w, rc, "session", err, errlen);
    }
    if (rc > 0 && is_fatal(rc))
        *fatal = true;
    cg_free(el);
    return rc == 0 ? 0 : rc < 0 ? rc : CG_EIO;
}

static int apply_inner(cg_store_writer_t *w, const cg_store_rec_t *r, bool *fatal, char *err,
                       size_t errlen)
{
    int64_t tenant = 0;
    int rc = tenant_id(w, r->tenant, r->finished_ms, &tenant);
    if (rc != SQLITE_OK) {
        db_error(w, rc, "tenant", err, errlen);
        *fatal = is_fatal(rc);
        return CG_EIO;
    }
    sess_t s = {0};
    if (r->session_key.p) {
        rc = session_get(w, tenant, r->session_key, r->started_ms, &s);
        if (rc != SQLITE_OK) {
            db_error(w, rc, "session", err, errlen);
            *fatal = is_fatal(rc);
            return CG_EIO;
        }
    }
    sqlite3_stmt *st = w->st[ST_EXCHANGE_ADD];
    sqlite3_bind_int64(st, 1, tenant);
    if (s.id)
        sqlite3_bind_int64(st, 2, s.id);
    else
        sqlite3_bind_null(st, 2);
    bind_str(st, 3, r->request_id);
    bind_str(st, 4, r->client_api);
    bind_str(st, 5, r->model_asked);
    bind_str(st, 6, r->model_answered);
    bind_str(st, 7, r->status);
    bind_str(st, 8, r->error_class);
    if (r->http_status > 0)
        sqlite3_bind_int64(st, 9, r->http_status);
    else
        sqlite3_bind_null(st, 9);
    if (r->attempts_json.p)
        bind_str(st, 10, r->attempts_json);
    else
        sqlite3_bind_text(st, 10, "[]", 2, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, r->prompt_tokens);
    sqlite3_bind_int64(st, 12, r->completion_tokens);
    sqlite3_bind_int64(st, 13, r->cache_read_tokens);
    sqlite3_bind_int64(st, 14, r->cache_write_tokens);
    sqlite3_bind_double(st, 15, r->cost_usd);
    if (r->ttft_ms >= 0)
        sqlite3_bind_int64(st, 16, r->ttft_ms);
    else
        sqlite3_bind_null(st, 16);
    sqlite3_bind_int64(st, 17, r->latency_ms);
    sqlite3_bind_int64(st, 18, r->started_ms);
    sqlite3_bind_int64(st, 19, r->finished_ms);
    rc = run(w, ST_EXCHANGE_ADD);
    if (rc != SQLITE_OK) {
        db_error(w, rc, "exchange", err, errlen);
        *fatal = is_fatal(rc);
        return CG_EIO;
    }
    int64_t exchange = sqlite3_last_insert_rowid(w->db);
    if (!s.id)
        return 0;
    if (!str_eq(r->status, "ok")) {
        /* A failed turn adds no entries: the client will send its messages
         * again, and the history must not hold a question twice. */
        sqlite3_bind_int64(w->st[ST_SESSION_TOUCH], 1, s.id);
        sqlite3_bind_int64(w->st[ST_SESSION_TOUCH], 2, r->finished_ms);
        rc = run(w, ST_SESSION_TOUCH);
        if (rc != SQLITE_OK) {
            db_error(w, rc, "session", err, errlen);
            *fatal = is_fatal(rc);
            return CG_EIO;
        }
        return 0;
    }
    return record_turn(w, r, &s, exchange, fatal, err, errlen);
}

/* Open the group transaction unless it is open. 0, or CG_EIO (err set). */
static int begin(cg_store_writer_t *w, char *err, size_t errlen)
{
    if (w->in_txn)
        return 0;
    int rc = run(w, ST_BEGIN);
    if (rc != SQLITE_OK) {
        db_error(w, rc, "begin", err, errlen);
        return CG_EIO;
    }
    w->in_txn = true;
    return 0;
}

int cg_store_writer_apply(cg_store_writer_t *w, const cg_store_rec_t *r, char *err, size_t errlen,
                          bool *fatal)
{
    *fatal = false;
    if (!r->request_id.p || !r->client_api.p || !r->status.p) {
        snprintf(err, errlen, "store: exchange without request id, client api or status");
        return CG_EINVAL;
    }
    if (begin(w, err, errlen) != 0) {
        *fatal = true;
        return CG_EIO;
    }
    /* Without a session and with a tenant already known, the exchange is
     * one INSERT, and SQLite backs out a failed statement by itself: no
     * savepoint needed. That is every request without a session key, and
     * it spares two statements (a third of the store's work) per exchange. */
    int64_t known;
    if (!r->session_key.p && tenant_cached(w, r->tenant, &known))
        return apply_inner(w, r, fatal, err, errlen);
    int rc = run(w, ST_SAVEPOINT);
    if (rc != SQLITE_OK) {
        db_error(w, rc, "savepoint", err, errlen);
        *fatal = true;
        return CG_EIO;
    }
    int arc = apply_inner(w, r, fatal, err, errlen);
    if (*fatal)
        return arc ? arc : CG_EIO;
    if (arc != 0) {
        /* Undo this exchange alone; then drop the savepoint itself. */
        forget_tenants(w);
        rc = run(w, ST_ROLLBACK_TO);
        if (rc == SQLITE_OK)
            rc = run(w, ST_RELEASE);
        if (rc != SQLITE_OK)
            *fatal = true;
        return arc;
    }
    rc = run(w, ST_RELEASE);
    if (rc != SQLITE_OK) {
        db_error(w, rc, "release", err, errlen);
        *fatal = true;
        return CG_EIO;
    }
    return 0;
}

int cg_store_writer_set_applied(cg_store_writer_t *w, uint64_t seq, char *err, size_t errlen)
{
    if (begin(w, err, errlen) != 0)
        return CG_EIO;
    sqlite3_bind_int64(w->st[ST_SET_APPLIED], 1, (int64_t)seq);
    int rc = run(w, ST_SET_APPLIED);
    if (rc != SQLITE_OK) {
        db_error(w, rc, "pending log position", err, errlen);
        cg_store_writer_rollback(w);
        return CG_EIO;
    }
    return 0;
}

int cg_store_writer_commit(cg_store_writer_t *w, char *err, size_t errlen)
{
    if (!w->in_txn)
        return 0;
    int rc = SQLITE_OK;
    if (w->fts_from) {
        /* One statement for the whole transaction: see schema/001_init.sql */
        sqlite3_bind_int64(w->st[ST_FTS_INDEX], 1, w->fts_from);
        rc = run(w, ST_FTS_INDEX);
        if (rc != SQLITE_OK) {
            db_error(w, rc, "search index", err, errlen);
            cg_store_writer_rollback(w);
            return CG_EIO;
        }
    }
    rc = run(w, ST_COMMIT);
    if (rc != SQLITE_OK) {
        db_error(w, rc, "commit", err, errlen);
        cg_store_writer_rollback(w);
        return CG_EIO;
    }
    w->in_txn = false;
    w->fts_from = 0;
    return 0;
}

void cg_store_writer_rollback(cg_store_writer_t *w)
{
    if (!sqlite3_get_autocommit(w->db))
        run(w, ST_ROLLBACK);
    w->in_txn = false;
    w->fts_from = 0;
    forget_tenants(w);
}

/* ---- retention ---- */

static int prune_one(cg_store_writer_t *w, int which, int64_t cutoff_ms, int64_t limit,
                     int64_t *deleted)
{
    if (limit <= 0)
        return SQLITE_OK;
    sqlite3_stmt *st = w->st[which];
    sqlite3_bind_int64(st, 1, cutoff_ms);
    sqlite3_bind_int64(st, 2, limit);
    int rc = run(w, which);
    if (rc == SQLITE_OK)
        *deleted += sqlite3_changes(w->db);
    return rc;
}

int cg_store_writer_prune_step(cg_store_writer_t *w, int64_t cutoff_ms, int batch, int64_t *deleted,
                               char *err, size_t errlen)
{
    cg_assert(!w->in_txn);
    *deleted = 0;
    int rc = run(w, ST_BEGIN);
    /* Children first: exchanges and entries, then the sessions they leave
     * empty. Each statement takes what is left of the batch. */
    int64_t n = 0;
    if (rc == SQLITE_OK)
        rc = prune_one(w, ST_PRUNE_EXCHANGES, cutoff_ms, batch, &n);
    if (rc == SQLITE_OK)
        rc = prune_one(w, ST_PRUNE_ENTRIES, cutoff_ms, batch - n, &n);
    if (rc == SQLITE_OK)
        rc = prune_one(w, ST_PRUNE_SESSIONS, cutoff_ms, batch - n, &n);
    if (rc == SQLITE_OK)
        rc = run(w, ST_COMMIT);
    if (rc != SQLITE_OK) {
        db_error(w, rc, "retention", err, errlen);
        if (!sqlite3_get_autocommit(w->db))
            run(w, ST_ROLLBACK);
        return CG_EIO;
    }
    *deleted = n;
    return n >= batch ? 1 : 0;
}

/* ---- conversions ---- */

void cg_store_rec_from_exchange(const cg_store_exchange_t *x, cg_store_rec_t *r,
                                cg_buf_t *attempts_buf)
{
    memset(r, 0, sizeof *r);
    r->tenant = cstr(x->tenant);
    r->session_key = cstr(x->session_key);
    r->request_id = cstr(x->request_id);
    r->client_api = cstr(x->client_api);
    r->model_asked = cstr(x->model_asked);
    r->model_answered = cstr(x->model_answered);
    r->status = cstr(x->status);
    r->error_class = cstr(x->error_class);
    r->stateful = x->stateful;
    r->http_status = x->http_status;
    r->prompt_tokens = x->prompt_tokens;
    r->completion_tokens = x->completion_tokens;
    r->cache_read_tokens = x->cache_read_tokens;
    r->cache_write_tokens = x->cache_write_tokens;
    r->cost_usd = x->cost_usd;
    r->ttft_ms = x->ttft_ms;
    r->latency_ms = x->latency_ms;
    r->started_ms = x->started_ms;
    r->finished_ms = x->finished_ms;
    if (x->messages_json)
        r->messages = (cg_str_t){x->messages_json,
                                 x->messages_len ? x->messages_len : strlen(x->messages_json)};
    if (x->reply_json)
        r->reply = (cg_str_t){x->reply_json, x->reply_len ? x->reply_len : strlen(x->reply_json)};
    /* Attempts become the JSON the column holds, here on the sender's
     * thread, so the store actor only binds a string. */
    cg_buf_reset(attempts_buf);
    cg_buf_puts(attempts_buf, "[");
    for (size_t i = 0; i < x->n_attempts; i++) {
        const cg_store_attempt_t *a = &x->attempts[i];
        cg_buf_puts(attempts_buf, i ? ",{\"ref\":" : "{\"ref\":");
        if (a->ref)
            cg_json_quote(attempts_buf, a->ref, strlen(a->ref));
        else
            cg_buf_puts(attempts_buf, "null");
        cg_buf_puts(attempts_buf, ",\"class\":");
        if (a->fail_class)
            cg_json_quote(attempts_buf, a->fail_class, strlen(a->fail_class));
        else
            cg_buf_puts(attempts_buf, "null");
        cg_buf_puts(attempts_buf, ",\"http_status\":");
        cg_buf_put_i64(attempts_buf, a->http_status);
        cg_buf_puts(attempts_buf, ",\"duration_ms\":");
        cg_buf_put_i64(attempts_buf, a->duration_ms);
        cg_buf_puts(attempts_buf, "}");
    }
    cg_buf_puts(attempts_buf, "]");
    r->attempts_json = (cg_str_t){attempts_buf->data, attempts_buf->len};
}

double cg_store_cost(const cg_model_t *m, int64_t prompt_tokens, int64_t completion_tokens,
                     int64_t cache_read_tokens, int64_t cache_write_tokens)
{
    if (!m)
        return 0;
    int64_t uncached = prompt_tokens - cache_read_tokens - cache_write_tokens;
    if (uncached < 0)
        uncached = 0;
    double usd = (double)uncached * m->cost.input + (double)completion_tokens * m->cost.output +
                 (double)cache_read_tokens * m->cost.cache_read +
                 (double)cache_write_tokens * m->cost.cache_write;
    return usd / 1e6;
}
