/*
 * db.c — opening the database, the compiled-in migrations, time formats.
 *
 * DESIGN
 * The schema's source of truth is schema/NNN_name.sql. The binary must not
 * depend on the source tree at run time, so each file is assembled into the
 * read-only data of this object with `.incbin` (the path is relative to the
 * repository root, where make runs the compiler) and NUL-terminated there.
 * make's dependency files do not see .incbin: tests/store/test_schema.c
 * compares every compiled-in migration with the file on disk, so a stale
 * object fails the tests instead of shipping an old schema. Adding a
 * migration = a new schema/NNN_name.sql, one EMBED line and one table row.
 *
 * Migrations are forward-only and keyed by PRAGMA user_version: each runs in
 * its own IMMEDIATE transaction together with the user_version bump, so a
 * crash leaves the file at the previous version, never half-way. A file whose
 * version is newer than the binary's is refused (an old binary must not write
 * rows a newer schema would misread), and so is a non-empty file with
 * user_version 0 (it is some other program's database).
 *
 * Durability: WAL with synchronous=NORMAL. A commit has been written to the
 * WAL file (in the OS page cache) when COMMIT returns, so a crashed or killed
 * process loses nothing it committed. The WAL is fsynced only at checkpoints,
 * so a power loss or kernel crash can lose the transactions committed since
 * the last checkpoint (about a second under load with the background
 * checkpointer); the database itself is never corrupted by it. FULL would
 * fsync on every commit: measured 2.7k vs 25k single-row commits/s here.
 */
#include "store/internal.h"

#include <errno.h>
#include <sys/stat.h>
#include <time.h>

/* ---- the migrations, from schema/ ---- */

#define EMBED(sym, file)                                                                           \
    __asm__(".pushsection .rodata\n"                                                               \
            ".balign 16\n"                                                                         \
            ".globl " #sym "\n"                                                                    \
            ".hidden " #sym "\n" #sym ":\n"                                                        \
            ".incbin \"" file "\"\n"                                                               \
            ".byte 0\n"                                                                            \
            ".popsection\n");                                                                      \
    extern const char sym[] __attribute__((visibility("hidden")))

EMBED(cg_store_sql_001, "schema/001_init.sql");
EMBED(cg_store_sql_002, "schema/002_pending.sql");
EMBED(cg_store_sql_003, "schema/003_check_lists.sql");

const cg_store_migration_t cg_store_migrations[] = {
    {1, "001_init", cg_store_sql_001, false},
    {2, "002_pending", cg_store_sql_002, false},
    {3, "003_check_lists", cg_store_sql_003, true},
};
const size_t cg_store_n_migrations = CG_ARRAY_LEN(cg_store_migrations);

_Static_assert(CG_ARRAY_LEN(cg_store_migrations) == CG_STORE_SCHEMA_VERSION,
               "CG_STORE_SCHEMA_VERSION must be the last migration's number");

/* ---- opening ---- */

/* mkdir -p for the directory part of path. */
static int make_parents(const char *path, char *err, size_t errlen)
{
    char *dir = cg_strdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST)
                break; /* the final mkdir reports it */
            *p = '/';
        }
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create directory %s: %s", path, dir, strerror(errno));
            rc = CG_EIO;
        }
    }
    cg_free(dir);
    return rc;
}

static int exec_sql(sqlite3 *db, const char *sql, const char *path, const char *what, char *err,
                    size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s: %s", path, what, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return CG_EIO;
    }
    return 0;
}

static int int_pragma(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_OK)
        rc = sqlite3_errcode(db) ? sqlite3_errcode(db) : SQLITE_ERROR;
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : CG_EIO;
}

int cg_store_migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    int64_t version = 0, objects = 0;
    if (int_pragma(db, "PRAGMA user_version", &version) != 0 ||
        int_pragma(db, "SELECT count(*) FROM sqlite_master", &objects) != 0) {
        snprintf(err, errlen, "%s: cannot read the schema version: %s", path, sqlite3_errmsg(db));
        return CG_EIO;
    }
    if (version > CG_STORE_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "%s: database schema version %lld is newer than this clawgate's (%d); "
                 "run a clawgate at least as new as the one that last wrote it "
                 "(migrations are forward-only)",
                 path, (long long)version, CG_STORE_SCHEMA_VERSION);
        return CG_EINVAL;
    }
    if (version == 0 && objects > 0) {
        snprintf(err, errlen,
                 "%s: not a clawgate database (it has tables but no clawgate schema version)",
                 path);
        return CG_EINVAL;
    }
    for (size_t i = 0; i < cg_store_n_migrations; i++) {
        const cg_store_migration_t *m = &cg_store_migrations[i];
        if (m->version <= version)
            continue;
        int rc = exec_sql(db, "BEGIN IMMEDIATE", path, m->name, err, errlen);
        int64_t schema_version = 0;
        if (rc == 0 && m->edits_schema &&
            int_pragma(db, "PRAGMA schema_version", &schema_version) != 0) {
            snprintf(err, errlen, "%s: %s: cannot read the schema version: %s", path, m->name,
                     sqlite3_errmsg(db));
            rc = CG_EIO;
        }
        if (rc == 0)
            rc = exec_sql(db, m->sql, path, m->name, err, errlen);
        if (rc == 0 && m->edits_schema) {
            /* Every connection, this one included, compares the file's
             * schema_version with the one it parsed at its next statement
             * and reparses the edited text. */
            char bump[64];
            snprintf(bump, sizeof bump, "PRAGMA schema_version = %lld",
                     (long long)schema_version + 1);
            rc = exec_sql(db, bump, path, m->name, err, errlen);
        }
        if (rc == 0) {
            char bump[64];
            snprintf(bump, sizeof bump, "PRAGMA user_version = %d", m->version);
            rc = exec_sql(db, bump, path, m->name, err, errlen);
        }
        if (rc == 0)
            rc = exec_sql(db, "COMMIT", path, m->name, err, errlen);
        if (rc != 0) {
            if (!sqlite3_get_autocommit(db))
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        cg_notice("store: %s: applied migration %s", path, m->name);
    }
    return 0;
}

void cg_store_global_init(void)
{
    /* Memory statistics take SQLite's global mutex on every allocation (some
     * forty per exchange); nothing here reads them. SQLITE_MISUSE if SQLite
     * was already initialised: then the default simply stays. */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int cg_store_open_rw(const char *path, sqlite3 **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path) {
        snprintf(err, errlen, "store: no database path configured");
        return CG_EINVAL;
    }
    int rc = make_parents(path, err, errlen);
    if (rc != 0)
        return rc;
    sqlite3 *db = NULL;
    /* NOMUTEX: the connection has one owner thread; SQLite's own mutex per
     * call would be pure cost. */
    int src = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open database: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
        sqlite3_close_v2(db);
        return CG_EIO;
    }
    sqlite3_extended_result_codes(db, 1);
    /* Another process holding the write lock (the sqlite3 shell, a second
     * gateway) makes a commit wait at most this long, then fail: a request
     * must not hang on an operator's open transaction. */
    sqlite3_busy_timeout(db, 250);
    char *mode = NULL;
    sqlite3_stmt *st = NULL;
    src = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (src == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        mode = cg_strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (!mode || strcmp(mode, "wal") != 0) {
        snprintf(err, errlen, "%s: cannot use it as a database: %s", path,
                 mode ? "WAL mode refused" : sqlite3_errmsg(db));
        cg_free(mode);
        sqlite3_close_v2(db);
        return CG_EIO;
    }
    cg_free(mode);
    /* See DESIGN for what NORMAL costs on power loss. journal_size_limit
     * truncates a WAL that once grew large back to 64 MiB after a reset. */
    rc = exec_sql(db,
                  "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 67108864; "
                  "PRAGMA temp_store = MEMORY",
                  path, "pragmas", err, errlen);
    if (rc == 0)
        rc = cg_store_migrate(db, path, err, errlen);
    if (rc != 0) {
        sqlite3_close_v2(db);
        return rc;
    }
    *out = db;
    return 0;
}

int cg_store_prepare(const char *path, char *err, size_t errlen)
{
    sqlite3 *db;
    int rc = cg_store_open_rw(path, &db, err, errlen);
    if (rc == 0)
        sqlite3_close_v2(db);
    return rc;
}

/* ---- times ---- */

void cg_store_fmt_time(int64_t ms, char *out, size_t outlen)
{
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* Read exactly n digits at *p into *v. */
static bool digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return true;
}

int cg_store_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    if (!s || !*s)
        return CG_EINVAL;
    size_t len = strlen(s);
    /* An age: digits and one unit letter. */
    char unit = s[len - 1];
    if (len >= 2 && strchr("smhdw", unit)) {
        int64_t n = 0;
        for (size_t i = 0; i + 1 < len; i++) {
            if (s[i] < '0' || s[i] > '9' || n > 100000000)
                return CG_EINVAL;
            n = n * 10 + (s[i] - '0');
        }
        int64_t mult = unit == 's'   ? 1000
                       : unit == 'm' ? 60000
                       : unit == 'h' ? 3600000
                       : unit == 'd' ? 86400000
                                     : 7 * 86400000LL;
        *out_ms = now_ms - n * mult;
        return 0;
    }
    /* Unix seconds. */
    if (strspn(s, "0123456789") == len) {
        if (len > 12)
            return CG_EINVAL;
        *out_ms = strtoll(s, NULL, 10) * 1000;
        return 0;
    }
    /* ISO 8601: date, optional time, optional fraction and zone. */
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return CG_EINVAL;
    int64_t zone_ms = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return CG_EINVAL;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec))
                return CG_EINVAL;
            if (*p == '.') {
                p++;
                int scale = 100;
                if (*p < '0' || *p > '9')
                    return CG_EINVAL;
                while (*p >= '0' && *p <= '9') {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, zh, zm;
            if (!digits(&p, 2, &zh) || *p++ != ':' || !digits(&p, 2, &zm))
                return CG_EINVAL;
            zone_ms = sign * ((int64_t)zh * 3600000 + (int64_t)zm * 60000);
        }
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return CG_EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) /* 2026-02-31 normalised into March */
        return CG_EINVAL;
    *out_ms = (int64_t)t * 1000 + ms - zone_ms;
    return 0;
}
