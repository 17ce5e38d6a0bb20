/*
 * query.c — read-only connections and the queries on them: the HTTP
 * endpoints, stateful history, and (through cli.c) the command line.
 *
 * DESIGN
 * Each reading thread opens its own connection (SQLITE_OPEN_READONLY |
 * NOMUTEX); in WAL mode a reader sees the last commit that was complete when
 * its statement began and never blocks the writer, nor is blocked by it.
 * Every query builds a json-c tree; HTTP serialises it and the CLI either
 * prints it (--json) or walks it into a table, so the two cannot disagree.
 * Filters are validated strictly (an unknown parameter is a 400, not a
 * silently ignored typo) and bound as SQL parameters, never pasted in.
 * Percentiles are exact (nearest rank over the matching exchanges, sorted in
 * C): SQLite 3.40 has no percentile function, and usage queries are operator
 * reports, not the request path.
 */
#include "store/internal.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>

#define LIMIT_MAX 1000
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct cg_store_ro {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *hist_session, *hist_compaction, *hist_entries;
};

/* ---- opening ---- */

cg_store_ro_t *cg_store_ro_open(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (!path || !*path) {
        snprintf(err, errlen, "no database path given");
        return NULL;
    }
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen,
                 "%s: no database here (%s); the gateway creates it on its first start", path,
                 strerror(errno));
        return NULL;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open database: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt *st = NULL;
    int64_t version = -1;
    rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int64(st, 0);
    else
        snprintf(err, errlen, "%s: not a usable database: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (version >= 0 && version != CG_STORE_SCHEMA_VERSION) {
        if (version == 0)
            snprintf(err, errlen, "%s: not a clawgate database (no schema version)", path);
        else if (version > CG_STORE_SCHEMA_VERSION)
            snprintf(err, errlen,
                     "%s: database schema version %lld is newer than this clawgate's (%d); "
                     "use a newer clawgate",
                     path, (long long)version, CG_STORE_SCHEMA_VERSION);
        else
            snprintf(err, errlen,
                     "%s: database schema version %lld is older than this clawgate's (%d); "
                     "start the gateway once to migrate it",
                     path, (long long)version, CG_STORE_SCHEMA_VERSION);
        version = -1;
    }
    if (version < 0) {
        sqlite3_close_v2(db);
        return NULL;
    }
    cg_store_ro_t *ro = cg_calloc(1, sizeof *ro);
    ro->db = db;
    ro->path = cg_strdup(path);
    return ro;
}

void cg_store_ro_close(cg_store_ro_t *ro)
{
    if (!ro)
        return;
    sqlite3_finalize(ro->hist_session);
    sqlite3_finalize(ro->hist_compaction);
    sqlite3_finalize(ro->hist_entries);
    sqlite3_close_v2(ro->db);
    cg_free(ro->path);
    cg_free(ro);
}

/* ---- parameters ---- */

void cg_store_params_add(cg_store_params_t *p, const char *name, const char *value)
{
    p->names = cg_realloc(p->names, (p->n + 1) * sizeof *p->names);
    p->values = cg_realloc(p->values, (p->n + 1) * sizeof *p->values);
    p->names[p->n] = cg_strdup(name);
    p->values[p->n] = cg_strdup(value ? value : "");
    p->n++;
}

void cg_store_params_free(cg_store_params_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        cg_free(p->names[i]);
        cg_free(p->values[i]);
    }
    cg_free(p->names);
    cg_free(p->values);
    memset(p, 0, sizeof *p);
}

/* URL-decode s[0..n) into a new string; plus_space: '+' means ' ' (query
 * strings, not paths). NULL on a bad escape or an encoded NUL. */
static char *url_decode(const char *s, size_t n, bool plus_space)
{
    char *out = cg_malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 1 < n ? cg_hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? cg_hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                cg_free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+' && plus_space) {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

int cg_store_params_parse(cg_store_params_t *p, const char *qs)
{
    if (!qs)
        return 0;
    const char *s = qs;
    while (*s) {
        size_t len = strcspn(s, "&");
        if (len) {
            const char *eq = memchr(s, '=', len);
            size_t klen = eq ? (size_t)(eq - s) : len;
            char *k = url_decode(s, klen, true);
            char *v = eq ? url_decode(eq + 1, len - klen - 1, true) : cg_strdup("");
            if (!k || !v) {
                cg_free(k);
                cg_free(v);
                return CG_EINVAL;
            }
            cg_store_params_add(p, k, v);
            cg_free(k);
            cg_free(v);
        }
        s += len;
        if (*s == '&')
            s++;
    }
    return 0;
}

static const char *param(const cg_store_params_t *p, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; p && i < p->n; i++)
        if (strcmp(p->names[i], name) == 0)
            v = p->values[i]; /* the last one wins, as in most servers */
    return v;
}

static int fail(cg_store_qerr_t *e, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(cg_store_qerr_t *e, unsigned status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = status;
    e->code = code;
    return status >= 500 ? CG_EIO : status == 404 ? CG_ENOENT : CG_EINVAL;
}

/* Every parameter must be one of allowed (a space-separated list). */
static int check_params(const cg_store_params_t *p, const char *allowed, cg_store_qerr_t *e)
{
    for (size_t i = 0; p && i < p->n; i++) {
        const char *n = p->names[i];
        size_t len = strlen(n);
        const char *a = allowed;
        bool ok = false;
        while (*a && !ok) {
            size_t w = strcspn(a, " ");
            ok = w == len && memcmp(a, n, len) == 0;
            a += w;
            a += *a == ' ';
        }
        if (!ok)
            return fail(e, 400, "invalid_parameter", "unknown parameter '%.64s' (allowed: %s)", n,
                        allowed);
    }
    return 0;
}

static int int_param(const cg_store_params_t *p, const char *name, int64_t def, int64_t lo,
                     int64_t hi, int64_t *out, cg_store_qerr_t *e)
{
    const char *v = param(p, name);
    *out = def;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return fail(e, 400, "invalid_parameter",
                    "%s must be an integer from %lld to %lld, got '%.64s'", name, (long long)lo,
                    (long long)hi, v);
    *out = x;
    return 0;
}

static int time_param(const cg_store_params_t *p, const char *name, int64_t now_ms, bool *set,
                      int64_t *out, cg_store_qerr_t *e)
{
    const char *v = param(p, name);
    *set = false;
    if (!v)
        return 0;
    if (cg_store_parse_time(v, now_ms, out) != 0)
        return fail(e, 400, "invalid_parameter",
                    "%s: '%.64s' is not a time (use 2026-01-31, 2026-01-31T12:00:00Z, "
                    "unix seconds, or an age such as 7d, 12h, 30m)",
                    name, v);
    *set = true;
    return 0;
}

static int status_param(const cg_store_params_t *p, const char **out, cg_store_qerr_t *e)
{
    const char *v = param(p, "status");
    *out = v;
    if (v && strcmp(v, "ok") != 0 && strcmp(v, "error") != 0 && strcmp(v, "cancelled") != 0)
        return fail(e, 400, "invalid_parameter",
                    "status must be ok, error or cancelled, got '%.64s'", v);
    return 0;
}

/* ---- building SQL with bound parameters ---- */

typedef struct binds {
    int n;
    struct {
        bool is_text;
        const char *text;
        int64_t i;
    } v[16];
} binds_t;

static void bind_text(cg_buf_t *sql, binds_t *b, const char *frag, const char *text)
{
    cg_assert(b->n < 16);
    cg_buf_puts(sql, frag);
    b->v[b->n].is_text = true;
    b->v[b->n].text = text;
    b->n++;
}

static void bind_int(cg_buf_t *sql, binds_t *b, const char *frag, int64_t i)
{
    cg_assert(b->n < 16);
    cg_buf_puts(sql, frag);
    b->v[b->n].is_text = false;
    b->v[b->n].i = i;
    b->n++;
}

static int prepare(cg_store_ro_t *ro, const cg_buf_t *sql, const binds_t *b, sqlite3_stmt **st,
                   cg_store_qerr_t *e)
{
    int rc = sqlite3_prepare_v2(ro->db, sql->data, (int)sql->len, st, NULL);
    if (rc != SQLITE_OK)
        return fail(e, 500, "store_error", "database error: %s", sqlite3_errmsg(ro->db));
    for (int i = 0; i < b->n; i++) {
        if (b->v[i].is_text)
            sqlite3_bind_text(*st, i + 1, b->v[i].text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(*st, i + 1, b->v[i].i);
    }
    return 0;
}

static int step_error(cg_store_ro_t *ro, int rc, cg_store_qerr_t *e)
{
    if ((rc & 0xff) == SQLITE_ERROR && strstr(sqlite3_errmsg(ro->db), "fts5"))
        return fail(e, 400, "invalid_query", "search query: %s", sqlite3_errmsg(ro->db));
    return fail(e, 500, "store_error", "database error: %s", sqlite3_errmsg(ro->db));
}

/* ---- json helpers ---- */

static json_object *jtime(int64_t ms)
{
    char buf[40];
    cg_store_fmt_time(ms, buf, sizeof buf);
    return json_object_new_string(buf);
}

static json_object *jcol_text(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    return json_object_new_string((const char *)sqlite3_column_text(st, i));
}

static json_object *jcol_int(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    return json_object_new_int64(sqlite3_column_int64(st, i));
}

/* A stored JSON column as a value (a string if it does not parse). */
static json_object *jcol_json(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const char *s = (const char *)sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, s, n);
    if (!o || json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = json_object_new_string_len(s, n);
    }
    json_tokener_free(tok);
    return o;
}

/* A double printed short ("%.10g"): json-c's default prints 0.03 as
 * 0.029999999999999999. */
static json_object *jnum(double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.10g", v);
    return json_object_new_double_s(v, buf);
}

/* Cost rounded to a millionth of a dollar: sums of floats otherwise carry
 * noise like 0.30000000000000004. */
static json_object *jcost(double usd)
{
    return jnum(round(usd * 1e6) / 1e6);
}

static void page_fields(json_object *o, int64_t limit, int64_t offset, bool more)
{
    json_object_object_add(o, "has_more", json_object_new_boolean(more));
    json_object_object_add(o, "limit", json_object_new_int64(limit));
    json_object_object_add(o, "offset", json_object_new_int64(offset));
}

/* ---- GET /v1/sessions ---- */

static int q_list(cg_store_ro_t *ro, const cg_store_params_t *p, int64_t now_ms, json_object **out,
                  cg_store_qerr_t *e)
{
    int64_t since, until, limit, offset;
    bool has_since, has_until;
    const char *status;
    int rc = check_params(p, "since until model status tenant limit offset", e);
    if (rc == 0)
        rc = time_param(p, "since", now_ms, &has_since, &since, e);
    if (rc == 0)
        rc = time_param(p, "until", now_ms, &has_until, &until, e);
    if (rc == 0)
        rc = status_param(p, &status, e);
    if (rc == 0)
        rc = int_param(p, "limit", 50, 1, LIMIT_MAX, &limit, e);
    if (rc == 0)
        rc = int_param(p, "offset", 0, 0, INT64_MAX / 2, &offset, e);
    if (rc != 0)
        return rc;
    cg_buf_t sql = {0};
    binds_t b = {0};
    cg_buf_puts(&sql,
                "SELECT s.key, t.name, s.created_ms, s.updated_ms, s.model, s.token_estimate, "
                "s.compaction_count, s.next_seq, "
                "(SELECT count(*) FROM exchanges x WHERE x.session_id = s.id), "
                "(SELECT total(cost_usd) FROM exchanges x WHERE x.session_id = s.id) "
                "FROM sessions s JOIN tenants t ON t.id = s.tenant_id WHERE 1");
    if (has_since)
        bind_int(&sql, &b, " AND s.updated_ms >= ?", since);
    if (has_until)
        bind_int(&sql, &b, " AND s.updated_ms < ?", until);
    if (param(p, "tenant"))
        bind_text(&sql, &b, " AND t.name = ?", param(p, "tenant"));
    if (param(p, "model")) {
        bind_text(&sql, &b,
                  " AND EXISTS (SELECT 1 FROM exchanges x WHERE x.session_id = s.id AND "
                  "(x.model_answered = ?",
                  param(p, "model"));
        bind_text(&sql, &b, " OR x.model_asked = ?))", param(p, "model"));
    }
    if (status)
        bind_text(&sql, &b,
                  " AND EXISTS (SELECT 1 FROM exchanges x WHERE x.session_id = s.id AND "
                  "x.status = ?)",
                  status);
    bind_int(&sql, &b, " ORDER BY s.updated_ms DESC, s.id DESC LIMIT ?", limit + 1);
    bind_int(&sql, &b, " OFFSET ?", offset);
    sqlite3_stmt *st = NULL;
    rc = prepare(ro, &sql, &b, &st, e);
    cg_buf_free(&sql);
    if (rc != 0)
        return rc;
    json_object *data = json_object_new_array();
    int64_t n = 0;
    bool more = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ == limit) {
            more = true;
            break;
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "key", jcol_text(st, 0));
        json_object_object_add(o, "tenant", jcol_text(st, 1));
        json_object_object_add(o, "created", jtime(sqlite3_column_int64(st, 2)));
        json_object_object_add(o, "updated", jtime(sqlite3_column_int64(st, 3)));
        json_object_object_add(o, "model", jcol_text(st, 4));
        json_object_object_add(o, "token_estimate", jcol_int(st, 5));
        json_object_object_add(o, "compaction_count", jcol_int(st, 6));
        json_object_object_add(o, "entries", jcol_int(st, 7));
        json_object_object_add(o, "exchanges", jcol_int(st, 8));
        json_object_object_add(o, "cost_usd", jcost(sqlite3_column_double(st, 9)));
        json_object_array_add(data, o);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = step_error(ro, rc, e);
        sqlite3_finalize(st);
        json_object_put(data);
        return rc;
    }
    sqlite3_finalize(st);
    json_object *res = json_object_new_object();
    json_object_object_add(res, "object", json_object_new_string("list"));
    json_object_object_add(res, "data", data);
    page_fields(res, limit, offset, more);
    *out = res;
    return 0;
}

/* ---- GET /v1/sessions/{key} ---- */

static json_object *exchange_json(sqlite3_stmt *st, int c)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "request_id", jcol_text(st, c + 0));
    json_object_object_add(o, "client_api", jcol_text(st, c + 1));
    json_object_object_add(o, "model_asked", jcol_text(st, c + 2));
    json_object_object_add(o, "model_answered", jcol_text(st, c + 3));
    json_object_object_add(o, "status", jcol_text(st, c + 4));
    json_object_object_add(o, "error_class", jcol_text(st, c + 5));
    json_object_object_add(o, "http_status", jcol_int(st, c + 6));
    json_object_object_add(o, "attempts", jcol_json(st, c + 7));
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", jcol_int(st, c + 8));
    json_object_object_add(u, "completion_tokens", jcol_int(st, c + 9));
    json_object_object_add(u, "cache_read_tokens", jcol_int(st, c + 10));
    json_object_object_add(u, "cache_write_tokens", jcol_int(st, c + 11));
    json_object_object_add(o, "usage", u);
    json_object_object_add(o, "cost_usd", jcost(sqlite3_column_double(st, c + 12)));
    json_object_object_add(o, "ttft_ms", jcol_int(st, c + 13));
    json_object_object_add(o, "latency_ms", jcol_int(st, c + 14));
    json_object_object_add(o, "started", jtime(sqlite3_column_int64(st, c + 15)));
    json_object_object_add(o, "finished", jtime(sqlite3_column_int64(st, c + 16)));
    return o;
}

#define EXCHANGE_COLS                                                                              \
    "x.request_id, x.client_api, x.model_asked, x.model_answered, x.status, x.error_class, "       \
    "x.http_status, x.attempts, x.prompt_tokens, x.completion_tokens, x.cache_read_tokens, "       \
    "x.cache_write_tokens, x.cost_usd, x.ttft_ms, x.latency_ms, x.started_ms, x.finished_ms"

static int q_show(cg_store_ro_t *ro, const char *key, const cg_store_params_t *p, json_object **out,
                  cg_store_qerr_t *e)
{
    int rc = check_params(p, "tenant", e);
    if (rc != 0)
        return rc;
    cg_buf_t sql = {0};
    binds_t b = {0};
    bind_text(&sql, &b,
              "SELECT s.id, s.key, t.name, s.created_ms, s.updated_ms, s.model, "
              "s.token_estimate, s.compaction_count FROM sessions s JOIN tenants t "
              "ON t.id = s.tenant_id WHERE s.key = ?",
              key);
    if (param(p, "tenant"))
        bind_text(&sql, &b, " AND t.name = ?", param(p, "tenant"));
    cg_buf_puts(&sql, " ORDER BY s.updated_ms DESC LIMIT 1");
    sqlite3_stmt *st = NULL;
    rc = prepare(ro, &sql, &b, &st, e);
    cg_buf_free(&sql);
    if (rc != 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = rc == SQLITE_DONE ? fail(e, 404, "session_not_found", "no session '%.128s'", key)
                               : step_error(ro, rc, e);
        sqlite3_finalize(st);
        return rc;
    }
    int64_t sid = sqlite3_column_int64(st, 0);
    json_object *res = json_object_new_object();
    json_object_object_add(res, "object", json_object_new_string("session"));
    json_object_object_add(res, "key", jcol_text(st, 1));
    json_object_object_add(res, "tenant", jcol_text(st, 2));
    json_object_object_add(res, "created", jtime(sqlite3_column_int64(st, 3)));
    json_object_object_add(res, "updated", jtime(sqlite3_column_int64(st, 4)));
    json_object_object_add(res, "model", jcol_text(st, 5));
    json_object_object_add(res, "token_estimate", jcol_int(st, 6));
    json_object_object_add(res, "compaction_count", jcol_int(st, 7));
    sqlite3_finalize(st);

    json_object *entries = json_object_new_array();
    json_object_object_add(res, "entries", entries);
    rc = sqlite3_prepare_v2(ro->db,
                            "SELECT e.seq, e.type, e.role, e.content, e.tokens, e.created_ms, "
                            "x.request_id FROM entries e LEFT JOIN exchanges x "
                            "ON x.id = e.exchange_id WHERE e.session_id = ?1 ORDER BY e.seq",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, sid);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "seq", jcol_int(st, 0));
            json_object_object_add(o, "type", jcol_text(st, 1));
            json_object_object_add(o, "role", jcol_text(st, 2));
            json_object_object_add(o, "content", jcol_json(st, 3));
            json_object_object_add(o, "tokens", jcol_int(st, 4));
            json_object_object_add(o, "created", jtime(sqlite3_column_int64(st, 5)));
            json_object_object_add(o, "request_id", jcol_text(st, 6));
            json_object_array_add(entries, o);
        }
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE)
        goto dberr;

    json_object *xs = json_object_new_array();
    json_object_object_add(res, "exchanges", xs);
    rc = sqlite3_prepare_v2(ro->db,
                            "SELECT " EXCHANGE_COLS " FROM exchanges x WHERE x.session_id = ?1 "
                            "ORDER BY x.started_ms, x.id",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, sid);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            json_object_array_add(xs, exchange_json(st, 0));
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE)
        goto dberr;
    *out = res;
    return 0;
dberr:
    json_object_put(res);
    return fail(e, 500, "store_error", "database error: %s", sqlite3_errmsg(ro->db));
}

/* ---- GET /v1/sessions/search ---- */

/* Plain words to an FTS5 query: each word a quoted string (so punctuation
 * and FTS5 operators in it are just text), all of them required. */
static void fts_query(const char *q, cg_buf_t *out)
{
    const char *s = q;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        size_t n = strcspn(s, " \t\n");
        if (!n)
            break;
        if (out->len)
            cg_buf_puts(out, " ");
        cg_buf_puts(out, "\"");
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"')
                cg_buf_puts(out, "\"");
            cg_buf_append(out, &s[i], 1);
        }
        cg_buf_puts(out, "\"");
        s += n;
    }
}

static int q_search(cg_store_ro_t *ro, const cg_store_params_t *p, int64_t now_ms,
                    json_object **out, cg_store_qerr_t *e)
{
    int64_t since, until, limit, offset;
    bool has_since, has_until;
    int rc = check_params(p, "q since until tenant limit offset", e);
    if (rc == 0)
        rc = time_param(p, "since", now_ms, &has_since, &since, e);
    if (rc == 0)
        rc = time_param(p, "until", now_ms, &has_until, &until, e);
    if (rc == 0)
        rc = int_param(p, "limit", 20, 1, LIMIT_MAX, &limit, e);
    if (rc == 0)
        rc = int_param(p, "offset", 0, 0, INT64_MAX / 2, &offset, e);
    if (rc != 0)
        return rc;
    const char *q = param(p, "q");
    cg_buf_t fq = {0};
    if (q)
        fts_query(q, &fq);
    if (!fq.len) {
        cg_buf_free(&fq);
        return fail(e, 400, "invalid_parameter", "q: give the words to search for");
    }
    cg_buf_t sql = {0};
    binds_t b = {0};
    bind_text(&sql, &b,
              "SELECT s.key, t.name, e.seq, e.role, "
              "snippet(entries_fts, 0, '**', '**', '...', 16), e.created_ms, x.request_id, "
              "bm25(entries_fts) FROM entries_fts JOIN entries e ON e.id = entries_fts.rowid "
              "JOIN sessions s ON s.id = e.session_id JOIN tenants t ON t.id = s.tenant_id "
              "LEFT JOIN exchanges x ON x.id = e.exchange_id WHERE entries_fts MATCH ?",
              fq.data);
    if (has_since)
        bind_int(&sql, &b, " AND e.created_ms >= ?", since);
    if (has_until)
        bind_int(&sql, &b, " AND e.created_ms < ?", until);
    if (param(p, "tenant"))
        bind_text(&sql, &b, " AND t.name = ?", param(p, "tenant"));
    bind_int(&sql, &b, " ORDER BY bm25(entries_fts), e.id DESC LIMIT ?", limit + 1);
    bind_int(&sql, &b, " OFFSET ?", offset);
    sqlite3_stmt *st = NULL;
    rc = prepare(ro, &sql, &b, &st, e);
    cg_buf_free(&sql);
    if (rc != 0) {
        cg_buf_free(&fq);
        return rc;
    }
    json_object *data = json_object_new_array();
    int64_t n = 0;
    bool more = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ == limit) {
            more = true;
            break;
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "key", jcol_text(st, 0));
        json_object_object_add(o, "tenant", jcol_text(st, 1));
        json_object_object_add(o, "seq", jcol_int(st, 2));
        json_object_object_add(o, "role", jcol_text(st, 3));
        json_object_object_add(o, "snippet", jcol_text(st, 4));
        json_object_object_add(o, "created", jtime(sqlite3_column_int64(st, 5)));
        json_object_object_add(o, "request_id", jcol_text(st, 6));
        json_object_object_add(o, "score", jnum(-sqlite3_column_double(st, 7)));
        json_object_array_add(data, o);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        cg_buf_free(&fq);
        json_object_put(data);
        return step_error(ro, rc, e);
    }
    json_object *res = json_object_new_object();
    json_object_object_add(res, "object", json_object_new_string("list"));
    json_object_object_add(res, "query", json_object_new_string(q));
    json_object_object_add(res, "data", data);
    page_fields(res, limit, offset, more);
    cg_buf_free(&fq);
    *out = res;
    return 0;
}

/* ---- GET /v1/usage ---- */

static const struct {
    const char *name;
    const char *expr;
} usage_keys[] = {
    {"model", "coalesce(x.model_answered, x.model_asked, '')"},
    {"day", "strftime('%Y-%m-%d', x.started_ms / 1000, 'unixepoch')"},
    {"hour", "strftime('%Y-%m-%dT%H:00Z', x.started_ms / 1000, 'unixepoch')"},
    {"tenant", "t.name"},
    {"status", "x.status"},
    {"api", "x.client_api"},
};

typedef struct vec {
    int64_t *v;
    size_t n, cap;
} vec_t;

static void vec_push(vec_t *a, int64_t x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = cg_realloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = x;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct agg {
    int64_t requests, errors, cancelled;
    int64_t prompt, completion, cache_read, cache_write;
    double cost;
    vec_t latency, ttft;
} agg_t;

static void agg_row(agg_t *a, sqlite3_stmt *st, int c)
{
    const char *status = (const char *)sqlite3_column_text(st, c);
    a->requests++;
    if (status && strcmp(status, "error") == 0)
        a->errors++;
    if (status && strcmp(status, "cancelled") == 0)
        a->cancelled++;
    bool ok = status && strcmp(status, "ok") == 0;
    if (ok && sqlite3_column_type(st, c + 1) != SQLITE_NULL)
        vec_push(&a->latency, sqlite3_column_int64(st, c + 1));
    if (ok && sqlite3_column_type(st, c + 2) != SQLITE_NULL)
        vec_push(&a->ttft, sqlite3_column_int64(st, c + 2));
    a->prompt += sqlite3_column_int64(st, c + 3);
    a->completion += sqlite3_column_int64(st, c + 4);
    a->cache_read += sqlite3_column_int64(st, c + 5);
    a->cache_write += sqlite3_column_int64(st, c + 6);
    a->cost += sqlite3_column_double(st, c + 7);
}

/* Nearest-rank percentiles of v (sorted here) as {"p50","p95"}. */
static json_object *percentiles(vec_t *v)
{
    json_object *o = json_object_new_object();
    if (v->n)
        qsort(v->v, v->n, sizeof *v->v, cmp_i64);
    static const int ps[] = {50, 95};
    static const char *const names[] = {"p50", "p95"};
    for (size_t i = 0; i < CG_ARRAY_LEN(ps); i++) {
        if (!v->n) {
            json_object_object_add(o, names[i], NULL);
            continue;
        }
        size_t rank = (size_t)ceil(ps[i] / 100.0 * (double)v->n);
        json_object_object_add(o, names[i], json_object_new_int64(v->v[rank ? rank - 1 : 0]));
    }
    return o;
}

static void agg_emit(agg_t *a, json_object *o)
{
    json_object_object_add(o, "requests", json_object_new_int64(a->requests));
    json_object_object_add(o, "errors", json_object_new_int64(a->errors));
    json_object_object_add(o, "cancelled", json_object_new_int64(a->cancelled));
    double rate = a->requests ? (double)a->errors / (double)a->requests : 0;
    json_object_object_add(o, "error_rate", jnum(round(rate * 1e4) / 1e4));
    json_object_object_add(o, "prompt_tokens", json_object_new_int64(a->prompt));
    json_object_object_add(o, "completion_tokens", json_object_new_int64(a->completion));
    json_object_object_add(o, "cache_read_tokens", json_object_new_int64(a->cache_read));
    json_object_object_add(o, "cache_write_tokens", json_object_new_int64(a->cache_write));
    json_object_object_add(o, "cost_usd", jcost(a->cost));
    json_object_object_add(o, "latency_ms", percentiles(&a->latency));
    json_object_object_add(o, "ttft_ms", percentiles(&a->ttft));
    cg_free(a->latency.v);
    cg_free(a->ttft.v);
    memset(a, 0, sizeof *a);
}

static int q_usage(cg_store_ro_t *ro, const cg_store_params_t *p, int64_t now_ms, json_object **out,
                   cg_store_qerr_t *e)
{
    int64_t since, until;
    bool has_since, has_until;
    const char *status;
    int rc = check_params(p, "group_by since until model tenant status", e);
    if (rc == 0)
        rc = time_param(p, "since", now_ms, &has_since, &since, e);
    if (rc == 0)
        rc = time_param(p, "until", now_ms, &has_until, &until, e);
    if (rc == 0)
        rc = status_param(p, &status, e);
    if (rc != 0)
        return rc;
    /* group_by: a comma list of known keys, each at most once. */
    int keys[CG_ARRAY_LEN(usage_keys)];
    size_t nk = 0;
    const char *g = param(p, "group_by");
    if (!g)
        g = "model";
    for (const char *s = g; *s;) {
        size_t n = strcspn(s, ",");
        size_t k = 0;
        while (k < CG_ARRAY_LEN(usage_keys) &&
               !(strlen(usage_keys[k].name) == n && memcmp(usage_keys[k].name, s, n) == 0))
            k++;
        bool dup = false;
        for (size_t i = 0; i < nk; i++)
            dup |= keys[i] == (int)k;
        if (n && (k == CG_ARRAY_LEN(usage_keys) || dup))
            return fail(e, 400, "invalid_parameter",
                        "group_by: '%.*s' is not one of model, day, hour, tenant, status, api "
                        "(each at most once)",
                        (int)(n > 32 ? 32 : n), s);
        if (n)
            keys[nk++] = (int)k;
        s += n;
        s += *s == ',';
    }
    cg_buf_t sql = {0};
    binds_t b = {0};
    cg_buf_puts(&sql, "SELECT ");
    for (size_t i = 0; i < nk; i++)
        cg_buf_printf(&sql, "%s, ", usage_keys[keys[i]].expr);
    cg_buf_puts(&sql, "x.status, x.latency_ms, x.ttft_ms, x.prompt_tokens, x.completion_tokens, "
                      "x.cache_read_tokens, x.cache_write_tokens, x.cost_usd "
                      "FROM exchanges x JOIN tenants t ON t.id = x.tenant_id WHERE 1");
    if (has_since)
        bind_int(&sql, &b, " AND x.started_ms >= ?", since);
    if (has_until)
        bind_int(&sql, &b, " AND x.started_ms < ?", until);
    if (param(p, "tenant"))
        bind_text(&sql, &b, " AND t.name = ?", param(p, "tenant"));
    if (param(p, "model")) {
        bind_text(&sql, &b, " AND (x.model_answered = ?", param(p, "model"));
        bind_text(&sql, &b, " OR x.model_asked = ?)", param(p, "model"));
    }
    if (status)
        bind_text(&sql, &b, " AND x.status = ?", status);
    if (nk) {
        cg_buf_puts(&sql, " ORDER BY ");
        for (size_t i = 0; i < nk; i++)
            cg_buf_printf(&sql, "%s%zu", i ? ", " : "", i + 1);
    }
    sqlite3_stmt *st = NULL;
    rc = prepare(ro, &sql, &b, &st, e);
    cg_buf_free(&sql);
    if (rc != 0)
        return rc;

    json_object *data = json_object_new_array();
    agg_t cur = {0}, total = {0};
    char **prev = cg_calloc(nk ? nk : 1, sizeof *prev);
    bool have = false;
    json_object *row = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bool same = have;
        for (size_t i = 0; i < nk && same; i++) {
            const char *v = (const char *)sqlite3_column_text(st, (int)i);
            same = strcmp(v ? v : "", prev[i]) == 0;
        }
        if (!same) {
            if (have) {
                agg_emit(&cur, row);
                json_object_array_add(data, row);
            }
            row = json_object_new_object();
            for (size_t i = 0; i < nk; i++) {
                const char *v = (const char *)sqlite3_column_text(st, (int)i);
                cg_free(prev[i]);
                prev[i] = cg_strdup(v ? v : "");
                json_object_object_add(row, usage_keys[keys[i]].name,
                                       json_object_new_string(prev[i]));
            }
            have = true;
        }
        agg_row(&cur, st, (int)nk);
        agg_row(&total, st, (int)nk);
    }
    sqlite3_finalize(st);
    if (have) {
        agg_emit(&cur, row);
        json_object_array_add(data, row);
    }
    for (size_t i = 0; i < nk; i++)
        cg_free(prev[i]);
    cg_free(prev);
    if (rc != SQLITE_DONE) {
        agg_emit(&total, json_object_new_object()); /* frees its vectors */
        json_object_put(data);
        return step_error(ro, rc, e);
    }
    json_object *res = json_object_new_object();
    json_object_object_add(res, "object", json_object_new_string("usage"));
    json_object *gb = json_object_new_array();
    for (size_t i = 0; i < nk; i++)
        json_object_array_add(gb, json_object_new_string(usage_keys[keys[i]].name));
    json_object_object_add(res, "group_by", gb);
    json_object_object_add(res, "since", has_since ? jtime(since) : NULL);
    json_object_object_add(res, "until", has_until ? jtime(until) : NULL);
    json_object_object_add(res, "data", data);
    json_object *tot = json_object_new_object();
    agg_emit(&total, tot);
    json_object_object_add(res, "total", tot);
    *out = res;
    return 0;
}

int cg_store_query(cg_store_ro_t *ro, cg_store_qkind_t kind, const char *key,
                   const cg_store_params_t *p, int64_t now_ms, json_object **out,
                   cg_store_qerr_t *e)
{
    *out = NULL;
    memset(e, 0, sizeof *e);
    switch (kind) {
    case CG_STORE_Q_LIST:
        return q_list(ro, p, now_ms, out, e);
    case CG_STORE_Q_SHOW:
        return q_show(ro, key, p, out, e);
    case CG_STORE_Q_SEARCH:
        return q_search(ro, p, now_ms, out, e);
    case CG_STORE_Q_USAGE:
        return q_usage(ro, p, now_ms, out, e);
    }
    return fail(e, 500, "store_error", "unknown query");
}

/* ---- HTTP ---- */

static void error_body(cg_buf_t *out, unsigned status, const char *code, const char *msg)
{
    json_object *o = json_object_new_object(), *err = json_object_new_object();
    json_object_object_add(err, "message", json_object_new_string(msg));
    json_object_object_add(
        err, "type",
        json_object_new_string(status >= 500 ? "server_error" : "invalid_request_error"));
    json_object_object_add(err, "code", code ? json_object_new_string(code) : NULL);
    json_object_object_add(o, "error", err);
    cg_buf_puts(out, json_object_to_json_string_ext(o, JSON_FLAGS));
    json_object_put(o);
}

int cg_store_http(cg_store_ro_t *ro, const char *method, const char *path, const char *query_string,
                  cg_buf_t *out_json, unsigned *status)
{
    static const char sessions[] = "/v1/sessions";
    cg_store_qkind_t kind;
    char *key = NULL;
    if (strcmp(path, sessions) == 0 || strcmp(path, "/v1/sessions/") == 0) {
        kind = CG_STORE_Q_LIST;
    } else if (strcmp(path, "/v1/sessions/search") == 0) {
        kind = CG_STORE_Q_SEARCH; /* a session named "search": /v1/sessions/%73earch */
    } else if (strcmp(path, "/v1/usage") == 0) {
        kind = CG_STORE_Q_USAGE;
    } else if (strncmp(path, "/v1/sessions/", sizeof sessions) == 0 &&
               path[sizeof sessions] != '\0') {
        kind = CG_STORE_Q_SHOW;
        const char *raw = path + sizeof sessions;
        key = url_decode(raw, strlen(raw), false);
        if (!key) {
            *status = 400;
            error_body(out_json, 400, "invalid_parameter", "session key: bad %-escape");
            return 0;
        }
    } else {
        return CG_ENOENT;
    }
    if (strcmp(method, "GET") != 0) {
        cg_free(key);
        *status = 405;
        error_body(out_json, 405, "method_not_allowed", "only GET is allowed here");
        return 0;
    }
    cg_store_params_t p = {0};
    cg_store_qerr_t e = {0};
    json_object *res = NULL;
    int rc = cg_store_params_parse(&p, query_string);
    if (rc != 0)
        fail(&e, 400, "invalid_parameter", "query string: bad %%-escape");
    else
        rc = cg_store_query(ro, kind, key, &p, cg_wall_ms(), &res, &e);
    if (rc == 0) {
        *status = 200;
        cg_buf_puts(out_json, json_object_to_json_string_ext(res, JSON_FLAGS));
        json_object_put(res);
    } else {
        *status = e.status;
        error_body(out_json, e.status, e.code, e.msg);
        if (e.status >= 500)
            cg_error("store: %s %s: %s", method, path, e.msg);
    }
    cg_store_params_free(&p);
    cg_free(key);
    return 0;
}

/* ---- stateful history ---- */

static int prep_once(cg_store_ro_t *ro, sqlite3_stmt **st, const char *sql)
{
    if (*st)
        return SQLITE_OK;
    return sqlite3_prepare_v3(ro->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

int cg_store_history(cg_store_ro_t *ro, const char *tenant, const char *key, cg_buf_t *out)
{
    int rc = prep_once(ro, &ro->hist_session,
                       "SELECT s.id FROM sessions s JOIN tenants t ON t.id = s.tenant_id "
                       "WHERE t.name = ?1 AND s.key = ?2");
    if (rc == SQLITE_OK)
        rc = prep_once(ro, &ro->hist_compaction,
                       "SELECT seq, json_extract(content, '$.summary'), "
                       "json_extract(content, '$.first_kept_seq') FROM entries "
                       "WHERE session_id = ?1 AND type = 'compaction' ORDER BY seq DESC LIMIT 1");
    if (rc == SQLITE_OK)
        rc = prep_once(ro, &ro->hist_entries,
                       "SELECT content FROM entries WHERE session_id = ?1 AND seq >= ?2 "
                       "AND type = 'message' ORDER BY seq");
    if (rc != SQLITE_OK) {
        cg_error("store: history: %s", sqlite3_errmsg(ro->db));
        return CG_EIO;
    }
    /* One read transaction, so the three statements see the same commit. */
    sqlite3_exec(ro->db, "BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *st = ro->hist_session;
    sqlite3_bind_text(st, 1, tenant ? tenant : "default", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int64_t sid = -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        sid = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    cg_buf_puts(out, "[");
    size_t n = 0;
    if (sid >= 0) {
        int64_t from = 0;
        st = ro->hist_compaction;
        sqlite3_bind_int64(st, 1, sid);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            from = sqlite3_column_type(st, 2) == SQLITE_NULL ? sqlite3_column_int64(st, 0) + 1
                                                             : sqlite3_column_int64(st, 2);
            const char *summary = (const char *)sqlite3_column_text(st, 1);
            cg_buf_puts(out, "{\"role\":\"user\",\"content\":");
            cg_buf_t text = {0};
            cg_buf_puts(&text, "Summary of the earlier conversation:\n\n");
            cg_buf_puts(&text, summary ? summary : "");
            json_object *s = json_object_new_string_len(text.data, (int)text.len);
            cg_buf_puts(out, json_object_to_json_string_ext(s, JSON_FLAGS));
            json_object_put(s);
            cg_buf_free(&text);
            cg_buf_puts(out, "}");
            n++;
            rc = SQLITE_DONE;
        }
        sqlite3_reset(st);
        if (rc == SQLITE_DONE) {
            st = ro->hist_entries;
            sqlite3_bind_int64(st, 1, sid);
            sqlite3_bind_int64(st, 2, from);
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n++)
                    cg_buf_puts(out, ",");
                cg_buf_append(out, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
            }
            sqlite3_reset(st);
        }
    }
    cg_buf_puts(out, "]");
    sqlite3_exec(ro->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_DONE) {
        cg_error("store: history of '%s': %s", key, sqlite3_errmsg(ro->db));
        return CG_EIO;
    }
    return 0;
}

/* Responses API `previous_response_id`: the conversation as it stood when
 * that response was given — the messages of its session up to the last
 * entry its exchange added — and the session it belongs to. */
int cg_store_chain(cg_store_ro_t *ro, const char *request_id, cg_buf_t *out_messages,
                   cg_buf_t *out_session_key)
{
    sqlite3_stmt *q1 = NULL, *q2 = NULL;
    int rc = sqlite3_prepare_v2(
        ro->db,
        "SELECT e.session_id, s.key, (SELECT MAX(seq) FROM entries WHERE exchange_id = e.id) "
        "FROM exchanges e JOIN sessions s ON s.id = e.session_id "
        "WHERE e.request_id = ?1 AND e.status = 'ok' ORDER BY e.id DESC LIMIT 1",
        -1, &q1, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(ro->db,
                                "SELECT content FROM entries WHERE session_id = ?1 AND seq <= ?2 "
                                "AND type = 'message' ORDER BY seq",
                                -1, &q2, NULL);
    if (rc != SQLITE_OK) {
        cg_error("store: chain: %s", sqlite3_errmsg(ro->db));
        sqlite3_finalize(q1);
        sqlite3_finalize(q2);
        return CG_EIO;
    }
    int ret = CG_ENOENT;
    sqlite3_exec(ro->db, "BEGIN", NULL, NULL, NULL);
    sqlite3_bind_text(q1, 1, request_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(q1);
    if (rc == SQLITE_ROW && sqlite3_column_type(q1, 2) != SQLITE_NULL) {
        int64_t sid = sqlite3_column_int64(q1, 0);
        int64_t last = sqlite3_column_int64(q1, 2);
        cg_buf_append(out_session_key, sqlite3_column_text(q1, 1),
                      (size_t)sqlite3_column_bytes(q1, 1));
        sqlite3_bind_int64(q2, 1, sid);
        sqlite3_bind_int64(q2, 2, last);
        cg_buf_puts(out_messages, "[");
        size_t n = 0;
        while ((rc = sqlite3_step(q2)) == SQLITE_ROW) {
            if (n++)
                cg_buf_puts(out_messages, ",");
            cg_buf_append(out_messages, sqlite3_column_text(q2, 0),
                          (size_t)sqlite3_column_bytes(q2, 0));
        }
        cg_buf_puts(out_messages, "]");
        ret = rc == SQLITE_DONE ? 0 : CG_EIO;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = CG_EIO;
    }
    sqlite3_exec(ro->db, "COMMIT", NULL, NULL, NULL);
    if (ret == CG_EIO)
        cg_error("store: chain of '%s': %s", request_id, sqlite3_errmsg(ro->db));
    sqlite3_finalize(q1);
    sqlite3_finalize(q2);
    return ret;
}
