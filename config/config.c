/*
 * config.c — OpenClaw's config: substituted, validated, merged, resolved.
 *
 * DESIGN
 * Loading is a pipeline over one json-c tree read by config/json5.c:
 *   1. ${VAR} substitution, exactly as OpenClaw does it, but only inside the
 *      parts clawgate reads (agents.defaults.model/models, models, clawgate):
 *      a missing variable in a channel token clawgate never uses must not
 *      stop the gateway. Substituted nodes are remembered so that no message
 *      ever quotes a value that came from the environment.
 *   2. Schema: clawgate's own block (strict), then every provider and model
 *      (strict, like OpenClaw's zod schema: unknown keys are errors; keys
 *      OpenClaw knows but clawgate does not use are accepted with a notice),
 *      then agents.defaults. Checking goes on after an error so the user sees
 *      every problem in one run, each as FILE:LINE:COL: key.path: message,
 *      with the position taken from the parser's side table.
 *   3. Merge: in `merge` mode the built-in hosted catalog (catalog.c) is
 *      added; a configured provider of the same name overrides it field by
 *      field and model by model (explicit values win).
 *   4. Resolution: aliases, primary, fallbacks and keep-warm refs are turned
 *      into model pointers; every one must resolve.
 * The result owns all its memory and is never modified after load, so it can
 * be published as a snapshot and read by every actor without locks.
 *
 * Secrets: apiKey values, header values and anything substituted from the
 * environment are never formatted into a message or into describe output.
 * Key material is zeroed before it is freed.
 */
#include "config/config.h"

#include "config/catalog.h"
#include "config/json5.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DIAGS 500          /* per list; a broken file does not flood the terminal */
#define MAX_MODELS 10000       /* per provider */
#define MAX_PROVIDERS 1000     /* configured */
#define MAX_TOTAL_MODELS 20000 /* configured, all providers: bounds resolution work */
#define MAX_REFS 10000         /* entries in agents.defaults.models, keepWarm, fallbacks */
#define MAX_TOKENS_LIMIT 1e9   /* upper bound for window/token counts */
#define SHOWN_VALUE_BYTES 64   /* longest value quoted in a message */
#define DEFAULT_CONTEXT 200000 /* OpenClaw's default contextWindow */
#define DEFAULT_MAX_TOKENS 8192

/* ---- diagnostics ---- */

void cg_diags_add(cg_diags_t *d, const char *fmt, ...)
{
    if (d->n >= MAX_DIAGS + 1)
        return;
    if (d->n == 0 || (d->n >= 4 && (d->n & (d->n - 1)) == 0))
        d->items = cg_realloc(d->items, (d->n ? d->n * 2 : 4) * sizeof *d->items);
    if (d->n == MAX_DIAGS) {
        d->items[d->n++] = cg_strdup("(further messages omitted)");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = cg_malloc(n > 0 ? (size_t)n + 1 : 1);
    vsnprintf(s, n > 0 ? (size_t)n + 1 : 1, fmt, ap2);
    va_end(ap2);
    d->items[d->n++] = s;
}

void cg_diags_free(cg_diags_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        cg_free(d->items[i]);
    cg_free(d->items);
    d->items = NULL;
    d->n = 0;
}

const char *cg_api_name(cg_api_t api)
{
    switch (api) {
    case CG_API_OPENAI_COMPLETIONS:
        return "openai-completions";
    case CG_API_OPENAI_RESPONSES:
        return "openai-responses";
    case CG_API_ANTHROPIC_MESSAGES:
        return "anthropic-messages";
    case CG_API_UNSUPPORTED:
        return "unsupported";
    }
    return "unsupported";
}

/* Every api value OpenClaw accepts; the first three are the ones clawgate
 * speaks. */
static const char *const openclaw_apis[] = {
    "openai-completions",
    "openai-responses",
    "anthropic-messages",
    "google-generative-ai",
    "github-copilot",
    "bedrock-converse-stream",
    "ollama",
    "azure-openai-responses",
    "openai-codex-responses",
};

/* ---- load context ---- */

typedef struct subst {
    const json_object *node;
    char *var;      /* first variable substituted into it */
    char *template; /* the string as written, ${VAR} and all */
    bool whole;     /* the string was exactly "${VAR}" */
} subst_t;

typedef struct pending_ref {
    char *ref;  /* as written, after substitution */
    char *path; /* key path, for messages */
    cg_json5_pos_t pos;
    const json_object *node; /* the string node, to avoid quoting substituted values */
} pending_ref_t;

typedef struct pending_entry {
    pending_ref_t key; /* the ref that names the model (the key itself) */
    bool has_alias;
    pending_ref_t alias; /* .ref holds the alias text */
    json_object *params; /* borrowed from the tree */
    int streaming;
} pending_entry_t;

/* Open-addressing map from a json-c node to an int, so per-string lookups stay
 * O(1) however many strings a (hostile) file substitutes. */
typedef struct node_map {
    const json_object **keys;
    int *vals;
    size_t cap, n; /* cap: power of two, load under 1/2 */
} node_map_t;

#define SUBST_FAILED (-1) /* substitution failed, already reported */
#define MAP_ABSENT (-2)

static size_t map_slot(const node_map_t *m, const json_object *k)
{
    uint64_t h = (uint64_t)(uintptr_t)k * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 17) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static void map_put(node_map_t *m, const json_object *k, int v)
{
    if ((m->n + 1) * 2 > m->cap) {
        node_map_t g = {.cap = m->cap ? m->cap * 2 : 64};
        g.keys = cg_calloc(g.cap, sizeof *g.keys);
        g.vals = cg_calloc(g.cap, sizeof *g.vals);
        for (size_t i = 0; i < m->cap; i++) {
            if (m->keys[i]) {
                size_t j = map_slot(&g, m->keys[i]);
                g.keys[j] = m->keys[i];
                g.vals[j] = m->vals[i];
                g.n++;
            }
        }
        cg_free(m->keys);
        cg_free(m->vals);
        *m = g;
    }
    size_t i = map_slot(m, k);
    if (!m->keys[i]) {
        m->keys[i] = k;
        m->n++;
    }
    m->vals[i] = v;
}

static int map_get(const node_map_t *m, const json_object *k)
{
    if (!m->cap || !k)
        return MAP_ABSENT;
    size_t i = map_slot(m, k);
    return m->keys[i] ? m->vals[i] : MAP_ABSENT;
}

typedef struct ctx {
    const char *file;
    cg_json5_doc_t *doc;
    const char *(*getenv_fn)(const char *name);
    cg_diags_t *errors, *notices;
    size_t n_errors;
    subst_t *subs;
    size_t n_subs, cap_subs;
    node_map_t subst_index; /* string node -> index in subs, or SUBST_FAILED */
    size_t n_models_total;  /* configured so far, for MAX_TOTAL_MODELS */
    cg_buf_t path;
    cg_config_t *cfg;
    /* collected while walking, resolved at the end */
    bool has_primary;
    pending_ref_t primary;
    pending_ref_t *fallbacks;
    size_t n_fallbacks;
    pending_entry_t *entries;
    size_t n_entries;
    pending_ref_t *warm;
    int *warm_minutes;
    size_t n_warm;
    pending_ref_t *omit; /* clawgate.reasoning.omit */
    size_t n_omit;
    json_object *root;
} ctx_t;

static const char *sys_getenv(const char *name)
{
    return getenv(name);
}

static const char *env_get(ctx_t *c, const char *name)
{
    const char *v = c->getenv_fn(name);
    return v && *v ? v : NULL; /* empty counts as missing, as in OpenClaw */
}

static bool ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

/* Append s[0..len) for people: quotes, backslashes and control characters
 * escaped, cut (on a character boundary) after max bytes. */
static void append_shown(cg_buf_t *b, const char *s, size_t len, size_t max)
{
    bool cut = false;
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
        cut = true;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            cg_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7F)
            cg_buf_printf(b, "\\x%02X", ch);
        else
            cg_buf_append(b, &s[i], 1);
    }
    if (cut)
        cg_buf_puts(b, "...");
}

static bool simple_key(const char *k)
{
    if (!*k || (*k >= '0' && *k <= '9'))
        return false;
    for (const char *p = k; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '$' || ch == '-'))
            return false;
    }
    return true;
}

static size_t path_key(ctx_t *c, const char *key)
{
    size_t mark = c->path.len;
    if (simple_key(key) && strlen(key) <= SHOWN_VALUE_BYTES) {
        if (mark)
            cg_buf_puts(&c->path, ".");
        cg_buf_puts(&c->path, key);
    } else {
        cg_buf_puts(&c->path, "[\"");
        append_shown(&c->path, key, strlen(key), SHOWN_VALUE_BYTES);
        cg_buf_puts(&c->path, "\"]");
    }
    return mark;
}

static size_t path_index(ctx_t *c, size_t i)
{
    size_t mark = c->path.len;
    cg_buf_printf(&c->path, "[%zu]", i);
    return mark;
}

static void path_pop(ctx_t *c, size_t mark)
{
    c->path.len = mark;
    if (c->path.data)
        c->path.data[mark] = '\0';
}

static const char *path_now(ctx_t *c)
{
    return c->path.data ? c->path.data : "";
}

static void vdiag(ctx_t *c, cg_diags_t *d, cg_json5_pos_t pos, const char *path, const char *fmt,
                  va_list ap)
{
    if (!d)
        return;
    cg_buf_t m = {0};
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n > 0) {
        cg_buf_reserve(&m, (size_t)n);
        vsnprintf(m.data, (size_t)n + 1, fmt, ap2);
        m.len = (size_t)n;
    }
    va_end(ap2);
    if (pos.line <= 0)
        pos.line = pos.col = 1;
    if (path && *path)
        cg_diags_add(d, "%s:%d:%d: %s: %s", c->file, pos.line, pos.col, path, m.data ? m.data : "");
    else
        cg_diags_add(d, "%s:%d:%d: %s", c->file, pos.line, pos.col, m.data ? m.data : "");
    cg_buf_free(&m);
}

static void err_at(ctx_t *c, cg_json5_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_at(ctx_t *c, cg_json5_pos_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, c->errors, pos, path_now(c), fmt, ap);
    va_end(ap);
    c->n_errors++;
}

static void err_path(ctx_t *c, cg_json5_pos_t pos, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void err_path(ctx_t *c, cg_json5_pos_t pos, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, c->errors, pos, path, fmt, ap);
    va_end(ap);
    c->n_errors++;
}

static void note_at(ctx_t *c, cg_json5_pos_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note_at(ctx_t *c, cg_json5_pos_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, c->notices, pos, path_now(c), fmt, ap);
    va_end(ap);
}

static void note_path(ctx_t *c, cg_json5_pos_t pos, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void note_path(ctx_t *c, cg_json5_pos_t pos, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(c, c->notices, pos, path, fmt, ap);
    va_end(ap);
}

/* Position of a member's value (falling back to its key, then its parent). */
static cg_json5_pos_t vat(ctx_t *c, const json_object *parent, const char *key,
                          const json_object *val)
{
    cg_json5_pos_t p = cg_json5_value_pos(c->doc, val);
    if (p.line == 0 && key)
        p = cg_json5_key_pos(c->doc, parent, key);
    if (p.line == 0)
        p = cg_json5_value_pos(c->doc, parent);
    return p;
}

static cg_json5_pos_t kat(ctx_t *c, const json_object *obj, const char *key)
{
    cg_json5_pos_t p = cg_json5_key_pos(c->doc, obj, key);
    if (p.line == 0)
        p = cg_json5_value_pos(c->doc, obj);
    return p;
}

static const subst_t *subst_of(const ctx_t *c, const json_object *node)
{
    int i = map_get(&c->subst_index, node);
    return i >= 0 ? &c->subs[i] : NULL;
}

/* A value for a message: quoted and cut, or, when it came from the
 * environment, only the variable's name. Uses a caller buffer. */
static const char *shown(const ctx_t *c, const json_object *node, const char *s, char *buf,
                         size_t n)
{
    const subst_t *sub = subst_of(c, node);
    if (sub) {
        snprintf(buf, n, "(value from ${%s})", sub->var);
        return buf;
    }
    cg_buf_t b = {0};
    cg_buf_puts(&b, "\"");
    append_shown(&b, s, strlen(s), SHOWN_VALUE_BYTES);
    cg_buf_puts(&b, "\"");
    snprintf(buf, n, "%s", b.data);
    cg_buf_free(&b);
    return buf;
}

#define SHOWN_BUF (SHOWN_VALUE_BYTES * 4 + 32)

static const char *type_name(const json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
    case json_type_int:
        return "a number";
    case json_type_string:
        return "a string";
    case json_type_array:
        return "an array";
    case json_type_object:
        return "an object";
    }
    return "something else";
}

/* ---- typed accessors: each reports its own error against the current path ---- */

static bool want_object(ctx_t *c, const json_object *v, cg_json5_pos_t at)
{
    if (json_object_get_type(v) == json_type_object)
        return true;
    err_at(c, at, "must be an object, not %s", type_name(v));
    return false;
}

static bool want_array(ctx_t *c, const json_object *v, cg_json5_pos_t at)
{
    if (json_object_get_type(v) == json_type_array)
        return true;
    err_at(c, at, "must be an array, not %s", type_name(v));
    return false;
}

static bool subst_failed(const ctx_t *c, const json_object *node)
{
    return map_get(&c->subst_index, node) == SUBST_FAILED;
}

static bool want_string(ctx_t *c, json_object *v, cg_json5_pos_t at, bool nonempty,
                        const char **out)
{
    if (subst_failed(c, v))
        return false; /* reported once already; its text is not a value */
    if (json_object_get_type(v) != json_type_string) {
        err_at(c, at, "must be a string, not %s", type_name(v));
        return false;
    }
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (strlen(s) != len) {
        err_at(c, at, "must not contain a NUL character");
        return false;
    }
    if (nonempty && len == 0) {
        err_at(c, at, "must not be empty");
        return false;
    }
    *out = s;
    return true;
}

/* A string for a name or id: non-empty, no control characters. */
static bool want_name(ctx_t *c, json_object *v, cg_json5_pos_t at, const char **out)
{
    if (!want_string(c, v, at, true, out))
        return false;
    for (const unsigned char *p = (const unsigned char *)*out; *p; p++) {
        if (*p < 0x20 || *p == 0x7F) {
            err_at(c, at, "must not contain control characters");
            return false;
        }
    }
    return true;
}

static bool want_bool(ctx_t *c, json_object *v, cg_json5_pos_t at, bool *out)
{
    if (json_object_get_type(v) != json_type_boolean) {
        err_at(c, at, "must be true or false, not %s", type_name(v));
        return false;
    }
    *out = json_object_get_boolean(v);
    return true;
}

static bool want_int(ctx_t *c, json_object *v, cg_json5_pos_t at, int64_t min, int64_t max,
                     int64_t *out)
{
    int64_t x;
    enum json_type t = json_object_get_type(v);
    if (t == json_type_int) {
        x = json_object_get_int64(v);
    } else if (t == json_type_double) {
        double d = json_object_get_double(v);
        if (!isfinite(d) || d != floor(d) || fabs(d) > 9.0e15) {
            err_at(c, at, "must be a whole number");
            return false;
        }
        x = (int64_t)d;
    } else {
        err_at(c, at, "must be a number, not %s", type_name(v));
        return false;
    }
    if (x < min || x > max) {
        err_at(c, at, "must be between %lld and %lld", (long long)min, (long long)max);
        return false;
    }
    *out = x;
    return true;
}

static bool want_number(ctx_t *c, json_object *v, cg_json5_pos_t at, double min, double max,
                        double *out)
{
    enum json_type t = json_object_get_type(v);
    if (t != json_type_int && t != json_type_double) {
        err_at(c, at, "must be a number, not %s", type_name(v));
        return false;
    }
    double d = json_object_get_double(v);
    if (!isfinite(d)) {
        err_at(c, at, "must be a finite number");
        return false;
    }
    if (d < min || d > max) {
        err_at(c, at, "must be between %g and %g", min, max);
        return false;
    }
    *out = d;
    return true;
}

static void list_names(cg_buf_t *b, const char *const *names, size_t n, bool quote)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            cg_buf_puts(b, i + 1 == n ? (n > 2 ? ", or " : " or ") : ", ");
        cg_buf_printf(b, quote ? "\"%s\"" : "%s", names[i]);
    }
}

/* Index of v among names, or -1 after reporting. */
static int want_enum(ctx_t *c, json_object *v, cg_json5_pos_t at, const char *const *names,
                     size_t n)
{
    const char *s;
    if (!want_string(c, v, at, false, &s))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    cg_buf_t b = {0};
    list_names(&b, names, n, true);
    char sb[SHOWN_BUF];
    err_at(c, at, "must be %s%s, not %s", n > 1 ? "one of " : "", b.data,
           shown(c, v, s, sb, sizeof sb));
    cg_buf_free(&b);
    return -1;
}

static void unknown_key(ctx_t *c, const json_object *obj, const char *key, const char *const *known,
                        size_t n)
{
    cg_buf_t b = {0};
    list_names(&b, known, n, false);
    err_at(c, kat(c, obj, key), "unknown key (expected %s)", b.data);
    cg_buf_free(&b);
}

static bool key_is(const char *key, const char *name)
{
    return strcmp(key, name) == 0;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    cg_free(s);
}

/* ---- ${VAR} substitution (OpenClaw's env-substitution rules) ---- */

static bool env_name_ok(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* OpenClaw's ${pass:...} / ${gopass:...} secret lookups: recognised so they
 * fail clearly instead of being sent upstream literally. */
static bool secret_lookup(const char *s, size_t n)
{
    return (n > 5 && memcmp(s, "pass:", 5) == 0) || (n > 7 && memcmp(s, "gopass:", 7) == 0);
}

static void subst_string(ctx_t *c, json_object *node, cg_json5_pos_t at)
{
    const char *s = json_object_get_string(node);
    size_t len = (size_t)json_object_get_string_len(node);
    if (!memchr(s, '$', len))
        return;
    cg_buf_t out = {0};
    char *first_var = NULL;
    size_t n_vars = 0;
    bool failed = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '$') {
            cg_buf_append(&out, &s[i], 1);
            continue;
        }
        /* $${NAME} -> ${NAME}, literally */
        if (i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
            const char *end = memchr(s + i + 3, '}', len - i - 3);
            if (end) {
                size_t n = (size_t)(end - (s + i + 3));
                if (env_name_ok(s + i + 3, n) || secret_lookup(s + i + 3, n)) {
                    cg_buf_append(&out, s + i + 1, n + 3);
                    i = (size_t)(end - s);
                    continue;
                }
            }
        }
        if (i + 1 < len && s[i + 1] == '{') {
            const char *end = memchr(s + i + 2, '}', len - i - 2);
            if (end) {
                const char *name = s + i + 2;
                size_t n = (size_t)(end - name);
                if (env_name_ok(name, n)) {
                    char *var = cg_strndup(name, n);
                    const char *val = env_get(c, var);
                    if (!val) {
                        err_at(c, at, "environment variable %s is not set or empty", var);
                        failed = true;
                    } else {
                        cg_buf_puts(&out, val);
                    }
                    n_vars++;
                    if (!first_var)
                        first_var = var;
                    else
                        cg_free(var);
                    i = (size_t)(end - s);
                    continue;
                }
                if (secret_lookup(name, n)) {
                    err_at(c, at,
                           "${pass:...} and ${gopass:...} secret lookups are not supported by "
                           "clawgate (use ${VAR} or a SecretRef with source \"env\")");
                    failed = true;
                    i = (size_t)(end - s);
                    continue;
                }
            }
        }
        cg_buf_append(&out, &s[i], 1);
    }
    if (failed) {
        map_put(&c->subst_index, node, SUBST_FAILED);
    } else if (n_vars > 0 || out.len != len) {
        if (n_vars > 0) {
            if (c->n_subs == c->cap_subs) {
                c->cap_subs = c->cap_subs ? c->cap_subs * 2 : 8;
                c->subs = cg_realloc(c->subs, c->cap_subs * sizeof *c->subs);
            }
            map_put(&c->subst_index, node, (int)c->n_subs);
            subst_t *sub = &c->subs[c->n_subs++];
            sub->node = node;
            sub->var = first_var;
            sub->template = cg_strndup(s, len);
            sub->whole = n_vars == 1 && len == strlen(first_var) + 3 && s[0] == '$';
            first_var = NULL;
        }
        json_object_set_string_len(node, out.data ? out.data : "", (int)out.len);
    }
    if (out.data)
        explicit_bzero(out.data, out.len);
    cg_buf_free(&out);
    cg_free(first_var);
}

static void subst_walk(ctx_t *c, json_object *parent, const char *key, json_object *node)
{
    switch (json_object_get_type(node)) {
    case json_type_string:
        subst_string(c, node, vat(c, parent, key, node));
        break;
    case json_type_object: {
        json_object_object_foreach(node, k, v)
        {
            size_t mark = path_key(c, k);
            subst_walk(c, node, k, v);
            path_pop(c, mark);
        }
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(node); i++) {
            size_t mark = path_index(c, i);
            subst_walk(c, node, NULL, json_object_array_get_idx(node, i));
            path_pop(c, mark);
        }
        break;
    default:
        break;
    }
}

/* Substitute inside root[a][b]...[z] when present (path given as keys). */
static void subst_at(ctx_t *c, const char *const *keys, size_t n)
{
    json_object *parent = NULL, *node = c->root;
    size_t mark = c->path.len;
    for (size_t i = 0; i < n; i++) {
        if (json_object_get_type(node) != json_type_object)
            goto out;
        parent = node;
        if (!json_object_object_get_ex(parent, keys[i], &node))
            goto out;
        path_key(c, keys[i]);
    }
    subst_walk(c, parent, keys[n - 1], node);
out:
    path_pop(c, mark);
}

/* ---- secrets: apiKey strings and SecretRefs ---- */

/* A SecretRef object {source, provider?, id}: only source "env" works here.
 * On success *value is the secret (heap) and *source "env:ID". */
static bool secret_ref(ctx_t *c, json_object *obj, cg_json5_pos_t at, char **value, char **source)
{
    static const char *const keys[] = {"source", "provider", "id"};
    json_object *src = NULL, *id = NULL;
    bool ok = true;
    json_object_object_foreach(obj, k, v)
    {
        size_t mark = path_key(c, k);
        if (key_is(k, "source")) {
            src = v;
        } else if (key_is(k, "id")) {
            id = v;
        } else if (key_is(k, "provider")) {
            const char *s;
            ok &= want_string(c, v, vat(c, obj, k, v), true, &s);
        } else {
            unknown_key(c, obj, k, keys, CG_ARRAY_LEN(keys));
            ok = false;
        }
        path_pop(c, mark);
    }
    if (!src) {
        err_at(c, at, "a SecretRef needs \"source\" (\"env\")");
        return false;
    }
    static const char *const sources[] = {"env", "file", "exec"};
    size_t mark = path_key(c, "source");
    int si = want_enum(c, src, vat(c, obj, "source", src), sources, CG_ARRAY_LEN(sources));
    if (si > 0)
        err_at(c, vat(c, obj, "source", src),
               "SecretRef source \"%s\" is not supported by clawgate (use source \"env\" or "
               "\"${VAR}\")",
               sources[si]);
    path_pop(c, mark);
    if (si != 0 || !ok)
        return false;
    if (!id) {
        err_at(c, at, "a SecretRef needs \"id\" (the environment variable's name)");
        return false;
    }
    mark = path_key(c, "id");
    const char *name;
    bool good = want_string(c, id, vat(c, obj, "id", id), true, &name);
    if (good && (!env_name_ok(name, strlen(name)) || strlen(name) > 128)) {
        err_at(c, vat(c, obj, "id", id),
               "must be an environment variable name like OPENAI_API_KEY");
        good = false;
    }
    if (good) {
        const char *val = env_get(c, name);
        if (!val) {
            err_at(c, vat(c, obj, "id", id), "environment variable %s is not set or empty", name);
            good = false;
        } else {
            *value = cg_strdup(val);
            *source = cg_sprintf("env:%s", name);
        }
    }
    path_pop(c, mark);
    return good;
}

/* ---- URLs and headers ---- */

static bool url_ok(const char *u)
{
    size_t skip;
    if (strncasecmp(u, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(u, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p == 0x7F)
            return false;
    const char *host = u + skip;
    const char *at = NULL;
    const char *end = host;
    while (*end && *end != '/' && *end != '?' && *end != '#') {
        if (*end == '@')
            at = end;
        end++;
    }
    if (at)
        host = at + 1;
    return end > host;
}

/* The URL for people: userinfo and query masked. */
static char *url_display(const char *u)
{
    cg_buf_t b = {0};
    const char *scheme_end = strstr(u, "://");
    const char *p = u;
    if (scheme_end) {
        cg_buf_append(&b, u, (size_t)(scheme_end + 3 - u));
        p = scheme_end + 3;
        const char *end = p + strcspn(p, "/?#");
        const char *at = memrchr(p, '@', (size_t)(end - p));
        if (at) {
            cg_buf_puts(&b, "***@");
            p = at + 1;
        }
    }
    const char *q = p + strcspn(p, "?#");
    cg_buf_append(&b, p, (size_t)(q - p));
    if (*q == '?')
        cg_buf_puts(&b, "?***");
    return cg_buf_steal(&b, NULL);
}

static bool header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *p)))
            return false;
    return true;
}

static void parse_headers(ctx_t *c, json_object *obj, cg_json5_pos_t at, bool allow_ref,
                          cg_header_t **out, size_t *n_out)
{
    if (!want_object(c, obj, at))
        return;
    size_t n = (size_t)json_object_object_length(obj);
    cg_header_t *h = cg_calloc(n ? n : 1, sizeof *h);
    size_t k = 0;
    json_object_object_foreach(obj, name, val)
    {
        size_t mark = path_key(c, name);
        cg_json5_pos_t vp = vat(c, obj, name, val);
        char *value = NULL, *src = NULL;
        if (!header_name_ok(name)) {
            err_at(c, kat(c, obj, name), "not a valid HTTP header name");
        } else if (allow_ref && json_object_get_type(val) == json_type_object) {
            secret_ref(c, val, vp, &value, &src);
        } else if (json_object_get_type(val) != json_type_string) {
            err_at(c, vp, "must be a string%s, not %s", allow_ref ? " or a SecretRef" : "",
                   type_name(val));
        } else {
            const char *s = json_object_get_string(val);
            if (strlen(s) != (size_t)json_object_get_string_len(val) || strpbrk(s, "\r\n"))
                err_at(c, vp, "header values must not contain line breaks or NUL characters");
            else
                value = cg_strdup(s);
        }
        cg_free(src);
        if (value) {
            h[k].name = cg_strdup(name);
            h[k].value = value;
            k++;
        }
        path_pop(c, mark);
    }
    *out = h;
    *n_out = k;
}

/* ---- api kinds ---- */

/* Parse an `api` value. Returns false on error; *unsupported when OpenClaw
 * knows it but clawgate cannot speak it. */
static bool parse_api(ctx_t *c, json_object *v, cg_json5_pos_t at, cg_api_t *api, char **name)
{
    int i = want_enum(c, v, at, openclaw_apis, CG_ARRAY_LEN(openclaw_apis));
    if (i < 0)
        return false;
    *api = i == 0   ? CG_API_OPENAI_COMPLETIONS
           : i == 1 ? CG_API_OPENAI_RESPONSES
           : i == 2 ? CG_API_ANTHROPIC_MESSAGES
                    : CG_API_UNSUPPORTED;
    if (name) {
        cg_free(*name);
        *name = cg_strdup(openclaw_apis[i]);
    }
    return true;
}

/* ---- models ---- */

static void free_model(cg_model_t *m)
{
    cg_free(m->id);
    cg_free(m->ref);
    cg_free(m->name);
    for (size_t i = 0; i < m->n_input; i++)
        cg_free(m->input[i]);
    cg_free(m->input);
    for (size_t i = 0; i < m->n_headers; i++) {
        cg_free(m->headers[i].name);
        wipe_free(m->headers[i].value);
    }
    cg_free(m->headers);
    json_object_put(m->params);
}

static void set_input(cg_model_t *m, bool image)
{
    for (size_t i = 0; i < m->n_input; i++)
        cg_free(m->input[i]);
    cg_free(m->input);
    m->n_input = image ? 2 : 1;
    m->input = cg_calloc(m->n_input, sizeof *m->input);
    m->input[0] = cg_strdup("text");
    if (image)
        m->input[1] = cg_strdup("image");
}

static void model_from_catalog(cg_model_t *m, const cg_catalog_provider_t *cp,
                               const cg_catalog_model_t *cm)
{
    m->id = cg_strdup(cm->id);
    m->name = cg_strdup(cm->name);
    m->api = cp->api;
    m->reasoning = cm->reasoning;
    set_input(m, cm->image);
    m->cost.input = cm->cost_input;
    m->cost.output = cm->cost_output;
    m->cost.cache_read = cm->cost_cache_read;
    m->cost.cache_write = cm->cost_cache_write;
    m->context_window = cm->context_window;
    m->max_tokens = cm->max_tokens;
    m->compat = cp->compat;
    m->streaming = -1;
}

static const char *const compat_keys[] = {
    "supportsStore",
    "supportsDeveloperRole",
    "supportsReasoningEffort",
    "supportsUsageInStreaming",
    "supportsTools",
    "supportsStrictMode",
    "requiresStringContent",
    "maxTokensField",
    "toolCallsAsText",
    /* OpenClaw's, accepted and not used by clawgate */
    "thinkingFormat",
    "requiresToolResultName",
    "requiresAssistantAfterToolResult",
    "requiresThinkingAsText",
    "toolSchemaProfile",
    "nativeWebSearchTool",
    "toolCallArgumentsEncoding",
    "requiresMistralToolIds",
    "requiresOpenAiAnthropicToolPayload",
};

static void parse_compat(ctx_t *c, json_object *obj, cg_json5_pos_t at, cg_compat_t *cp)
{
    if (!want_object(c, obj, at))
        return;
    json_object_object_foreach(obj, k, v)
    {
        size_t mark = path_key(c, k);
        cg_json5_pos_t vp = vat(c, obj, k, v);
        bool b;
        bool *dst = NULL;
        if (key_is(k, "supportsStore"))
            dst = &cp->supports_store;
        else if (key_is(k, "supportsDeveloperRole"))
            dst = &cp->supports_developer_role;
        else if (key_is(k, "supportsReasoningEffort"))
            dst = &cp->supports_reasoning_effort;
        else if (key_is(k, "supportsUsageInStreaming"))
            dst = &cp->supports_usage_in_streaming;
        else if (key_is(k, "supportsTools"))
            dst = &cp->supports_tools;
        else if (key_is(k, "supportsStrictMode"))
            dst = &cp->supports_strict_mode;
        else if (key_is(k, "requiresStringContent"))
            dst = &cp->requires_string_content;
        else if (key_is(k, "toolCallsAsText"))
            dst = &cp->tool_calls_as_text;
        if (dst) {
            if (want_bool(c, v, vp, &b))
                *dst = b;
        } else if (key_is(k, "maxTokensField")) {
            static const char *const f[] = {"max_completion_tokens", "max_tokens"};
            int i = want_enum(c, v, vp, f, CG_ARRAY_LEN(f));
            if (i >= 0)
                cp->max_tokens_field = f[i];
        } else if (key_is(k, "thinkingFormat")) {
            static const char *const f[] = {"openai", "openrouter", "zai", "qwen",
                                            "qwen-chat-template"};
            if (want_enum(c, v, vp, f, CG_ARRAY_LEN(f)) >= 0)
                note_at(c, kat(c, obj, k), "OpenClaw compat key, not used by clawgate");
        } else if (key_is(k, "toolSchemaProfile") || key_is(k, "toolCallArgumentsEncoding")) {
            const char *s;
            if (want_string(c, v, vp, true, &s))
                note_at(c, kat(c, obj, k), "OpenClaw compat key, not used by clawgate");
        } else {
            bool known = false;
            for (size_t i = 9; i < CG_ARRAY_LEN(compat_keys); i++)
                known |= key_is(k, compat_keys[i]);
            if (!known)
                unknown_key(c, obj, k, compat_keys, CG_ARRAY_LEN(compat_keys));
            else if (want_bool(c, v, vp, &b))
                note_at(c, kat(c, obj, k), "OpenClaw compat key, not used by clawgate");
        }
        path_pop(c, mark);
    }
}

static const char *const model_keys[] = {
    "id",        "name",    "api",           "reasoning",
    "input",     "cost",    "contextWindow", "contextTokens",
    "maxTokens", "headers", "compat",
};

/* Apply one configured model object onto m (already holding its base values:
 * catalog or defaults). */
static void parse_model(ctx_t *c, json_object *obj, cg_model_t *m, bool *set_max, bool *set_name)
{
    json_object_object_foreach(obj, k, v)
    {
        size_t mark = path_key(c, k);
        cg_json5_pos_t vp = vat(c, obj, k, v);
        const char *s;
        bool b;
        int64_t x;
        if (key_is(k, "id")) {
            /* checked by the caller */
        } else if (key_is(k, "name")) {
            *set_name = true; /* present: a bad value is its own error */
            if (want_name(c, v, vp, &s)) {
                cg_free(m->name);
                m->name = cg_strdup(s);
            }
        } else if (key_is(k, "api")) {
            cg_api_t api;
            char *name = NULL;
            if (parse_api(c, v, vp, &api, &name)) {
                m->api = api;
                if (api == CG_API_UNSUPPORTED)
                    note_at(c, vp, "api \"%s\" is not supported by clawgate; model unavailable",
                            name);
            }
            cg_free(name);
        } else if (key_is(k, "reasoning")) {
            if (want_bool(c, v, vp, &b))
                m->reasoning = b;
        } else if (key_is(k, "input")) {
            if (want_array(c, v, vp)) {
                size_t n = json_object_array_length(v);
                bool text = false, image = false, ok = true;
                for (size_t i = 0; i < n; i++) {
                    static const char *const kinds[] = {"text", "image"};
                    size_t mi = path_index(c, i);
                    json_object *e = json_object_array_get_idx(v, i);
                    int ki = want_enum(c, e, vat(c, v, NULL, e), kinds, 2);
                    ok &= ki >= 0;
                    text |= ki == 0;
                    image |= ki == 1;
                    path_pop(c, mi);
                }
                if (ok) {
                    for (size_t i = 0; i < m->n_input; i++)
                        cg_free(m->input[i]);
                    cg_free(m->input);
                    m->input = cg_calloc(2, sizeof *m->input);
                    m->n_input = 0;
                    if (text)
                        m->input[m->n_input++] = cg_strdup("text");
                    if (image)
                        m->input[m->n_input++] = cg_strdup("image");
                }
            }
        } else if (key_is(k, "cost")) {
            static const char *const ck[] = {"input", "output", "cacheRead", "cacheWrite"};
            if (want_object(c, v, vp)) {
                json_object_object_foreach(v, ck_key, cv)
                {
                    size_t cm = path_key(c, ck_key);
                    double *dst = key_is(ck_key, "input")        ? &m->cost.input
                                  : key_is(ck_key, "output")     ? &m->cost.output
                                  : key_is(ck_key, "cacheRead")  ? &m->cost.cache_read
                                  : key_is(ck_key, "cacheWrite") ? &m->cost.cache_write
                                                                 : NULL;
                    double d;
                    if (!dst)
                        unknown_key(c, v, ck_key, ck, CG_ARRAY_LEN(ck));
                    else if (want_number(c, cv, vat(c, v, ck_key, cv), 0, 1e6, &d))
                        *dst = d;
                    path_pop(c, cm);
                }
            }
        } else if (key_is(k, "contextWindow")) {
            if (want_int(c, v, vp, 1, (int64_t)MAX_TOKENS_LIMIT, &x))
                m->context_window = x;
        } else if (key_is(k, "contextTokens")) {
            if (want_int(c, v, vp, 1, (int64_t)MAX_TOKENS_LIMIT, &x))
                m->context_tokens = x;
        } else if (key_is(k, "maxTokens")) {
            if (want_int(c, v, vp, 1, (int64_t)MAX_TOKENS_LIMIT, &x)) {
                m->max_tokens = x;
                *set_max = true;
            }
        } else if (key_is(k, "headers")) {
            cg_header_t *h = NULL;
            size_t n = 0;
            parse_headers(c, v, vp, false, &h, &n);
            if (h) {
                for (size_t i = 0; i < m->n_headers; i++) {
                    cg_free(m->headers[i].name);
                    wipe_free(m->headers[i].value);
                }
                cg_free(m->headers);
                m->headers = h;
                m->n_headers = n;
            }
        } else if (key_is(k, "compat")) {
            parse_compat(c, v, vp, &m->compat);
        } else {
            unknown_key(c, obj, k, model_keys, CG_ARRAY_LEN(model_keys));
        }
        path_pop(c, mark);
    }
}

/* Build p->models: configured models in file order (each on top of the
 * catalog entry of the same id when merging), then the catalog's others. */
static void parse_models(ctx_t *c, json_object *arr, cg_json5_pos_t at, cg_provider_t *p,
                         const cg_catalog_provider_t *cat, const cg_compat_t *profile,
                         int64_t prov_max)
{
    size_t n_cat = cat ? cat->n_models : 0;
    size_t n_user = 0;
    if (arr && want_array(c, arr, at)) {
        n_user = json_object_array_length(arr);
        if (n_user > MAX_MODELS) {
            err_at(c, at, "more than %d models", MAX_MODELS);
            n_user = 0;
        } else if (c->n_models_total + n_user > MAX_TOTAL_MODELS) {
            err_at(c, at, "more than %d models in all providers together", MAX_TOTAL_MODELS);
            n_user = 0;
        }
        c->n_models_total += n_user;
    } else {
        arr = NULL;
    }
    p->models = cg_calloc(n_user + n_cat + 1, sizeof *p->models);
    bool used[16] = {false};
    cg_assert(n_cat <= CG_ARRAY_LEN(used));
    for (size_t i = 0; i < n_user; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        size_t mark = path_index(c, i);
        cg_json5_pos_t ep = vat(c, arr, NULL, e);
        json_object *idv = NULL;
        const char *id = NULL;
        if (!want_object(c, e, ep)) {
            path_pop(c, mark);
            continue;
        }
        if (!json_object_object_get_ex(e, "id", &idv)) {
            err_at(c, ep, "missing required key \"id\"");
        } else {
            size_t im = path_key(c, "id");
            if (!want_name(c, idv, vat(c, e, "id", idv), &id))
                id = NULL;
            path_pop(c, im);
        }
        if (!id) {
            /* still check the other keys */
            cg_model_t scratch = {.streaming = -1};
            bool sm = false, sn = false;
            parse_model(c, e, &scratch, &sm, &sn);
            free_model(&scratch);
            path_pop(c, mark);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < p->n_models && !dup; j++)
            dup = strcmp(p->models[j].id, id) == 0;
        if (dup) {
            size_t im = path_key(c, "id");
            char sb[SHOWN_BUF];
            err_at(c, vat(c, e, "id", idv), "duplicate model id %s in this provider",
                   shown(c, idv, id, sb, sizeof sb));
            path_pop(c, im);
            path_pop(c, mark);
            continue;
        }
        cg_model_t *m = &p->models[p->n_models++];
        const cg_catalog_model_t *base = NULL;
        for (size_t j = 0; j < n_cat; j++) {
            if (!used[j] && strcmp(cat->models[j].id, id) == 0) {
                base = &cat->models[j];
                used[j] = true;
            }
        }
        if (base) {
            model_from_catalog(m, cat, base);
            m->api = p->api; /* the provider may have been pointed at another API */
        } else {
            m->id = cg_strdup(id);
            m->api = p->api;
            set_input(m, false);
            m->context_window = DEFAULT_CONTEXT;
            m->compat = *profile;
            m->streaming = -1;
        }
        bool set_max = false, set_name = false;
        parse_model(c, e, m, &set_max, &set_name);
        if (!set_name)
            err_at(c, ep, "missing required key \"name\"");
        if (!set_max) {
            int64_t dflt = base ? base->max_tokens : prov_max ? prov_max : DEFAULT_MAX_TOKENS;
            m->max_tokens = dflt < m->context_window ? dflt : m->context_window;
        } else if (m->max_tokens > m->context_window) {
            note_at(c, ep, "maxTokens %lld is larger than contextWindow %lld; using %lld",
                    (long long)m->max_tokens, (long long)m->context_window,
                    (long long)m->context_window);
            m->max_tokens = m->context_window;
        }
        if (m->context_tokens > m->context_window) {
            note_at(c, ep, "contextTokens %lld is larger than contextWindow %lld; using %lld",
                    (long long)m->context_tokens, (long long)m->context_window,
                    (long long)m->context_window);
            m->context_tokens = m->context_window;
        }
        path_pop(c, mark);
    }
    for (size_t j = 0; j < n_cat; j++) {
        if (used[j])
            continue;
        model_from_catalog(&p->models[p->n_models], cat, &cat->models[j]);
        p->models[p->n_models++].api = p->api;
    }
}

/* ---- providers ---- */

static const char *const provider_keys[] = {
    "baseUrl",        "apiKey",     "auth",    "api",
    "headers",        "authHeader", "request", "injectNumCtxForOpenAICompat",
    "timeoutSeconds", "maxTokens",  "models",
};

static void free_provider(cg_provider_t *p)
{
    cg_free(p->name);
    cg_free(p->base_url);
    cg_free(p->base_url_display);
    wipe_free(p->api_key);
    cg_free(p->key_source);
    cg_free(p->api_name);
    for (size_t i = 0; i < p->n_headers; i++) {
        cg_free(p->headers[i].name);
        wipe_free(p->headers[i].value);
    }
    cg_free(p->headers);
    cg_free(p->unavailable_reason);
    for (size_t i = 0; i < p->n_models; i++)
        free_model(&p->models[i]);
    cg_free(p->models);
}

static void provider_base(cg_provider_t *p, const char *name, const cg_catalog_provider_t *cat)
{
    p->name = cg_strdup(name);
    p->name_len = strlen(name);
    p->api = cat ? cat->api : CG_API_OPENAI_COMPLETIONS;
    p->api_name = cg_strdup(cat ? cat->api_name : "openai-completions");
    p->builtin = cat != NULL;
    if (cat) {
        p->base_url = cg_strdup(cat->base_url);
        p->base_url_display = cg_strdup(cat->base_url);
    }
}

/* Key, availability: the last step for every provider. */
static void provider_finish(ctx_t *c, cg_provider_t *p, const cg_catalog_provider_t *cat,
                            const char *auth)
{
    if (!p->api_key && cat) {
        const char *v = env_get(c, cat->env_key);
        if (v) {
            p->api_key = cg_strdup(v);
            cg_free(p->key_source);
            p->key_source = cg_sprintf("env:%s", cat->env_key);
        }
    }
    if (!p->key_source)
        p->key_source = cg_strdup(p->api_key ? "config" : "none");
    p->available = true;
    if (p->api == CG_API_UNSUPPORTED)
        p->unavailable_reason = cg_sprintf("api \"%s\" is not supported by clawgate", p->api_name);
    else if (auth && !p->api_key && (strcmp(auth, "oauth") == 0 || strcmp(auth, "aws-sdk") == 0))
        p->unavailable_reason = cg_sprintf("auth \"%s\" is not supported by clawgate", auth);
    else if (cat && !p->api_key)
        p->unavailable_reason = cg_sprintf("%s is not set", cat->env_key);
    if (p->unavailable_reason)
        p->available = false;
}

static bool provider_name_ok(const char *name)
{
    if (!*name || strlen(name) > 64)
        return false;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++)
        if (*s <= 0x20 || *s == 0x7F || *s == '/')
            return false;
    return true;
}

static void parse_provider(ctx_t *c, json_object *obj, cg_json5_pos_t at, const char *name,
                           const cg_catalog_provider_t *cat, cg_provider_t *p)
{
    provider_base(p, name, cat);
    const cg_compat_t *profile = cat ? &cat->compat : &cg_catalog_custom_compat;
    json_object *models = NULL;
    bool has_base = false, has_models = false;
    int64_t prov_max = 0;
    const char *auth = NULL;
    /* Scalars first: the models inherit the provider's api and maxTokens
     * wherever the keys appear in the object. */
    json_object_object_foreach(obj, k, v)
    {
        size_t mark = path_key(c, k);
        cg_json5_pos_t vp = vat(c, obj, k, v);
        const char *s;
        bool b;
        int64_t x;
        if (key_is(k, "models")) {
            models = v;
            has_models = true;
        } else if (key_is(k, "baseUrl")) {
            has_base = true;
            if (want_string(c, v, vp, true, &s)) {
                if (!url_ok(s)) {
                    err_at(c, vp, "must be an http:// or https:// URL with a host");
                } else {
                    size_t n = strlen(s);
                    while (n > 0 && s[n - 1] == '/')
                        n--;
                    cg_free(p->base_url);
                    cg_free(p->base_url_display);
                    p->base_url = cg_strndup(s, n);
                    const subst_t *sub = subst_of(c, v);
                    p->base_url_display = url_display(sub ? sub->template : p->base_url);
                }
            }
        } else if (key_is(k, "apiKey")) {
            if (json_object_get_type(v) == json_type_object) {
                char *val = NULL, *src = NULL;
                if (secret_ref(c, v, vp, &val, &src)) {
                    wipe_free(p->api_key);
                    cg_free(p->key_source);
                    p->api_key = val;
                    p->key_source = src;
                }
            } else if (json_object_get_type(v) == json_type_string) {
                if (want_string(c, v, vp, false, &s) && *s) {
                    const subst_t *sub = subst_of(c, v);
                    wipe_free(p->api_key);
                    cg_free(p->key_source);
                    p->api_key = cg_strdup(s);
                    p->key_source =
                        sub && sub->whole ? cg_sprintf("env:%s", sub->var) : cg_strdup("config");
                }
            } else {
                err_at(c, vp, "must be a string or a SecretRef object, not %s", type_name(v));
            }
        } else if (key_is(k, "auth")) {
            static const char *const modes[] = {"api-key", "aws-sdk", "oauth", "token"};
            int i = want_enum(c, v, vp, modes, CG_ARRAY_LEN(modes));
            if (i >= 0)
                auth = modes[i];
        } else if (key_is(k, "api")) {
            parse_api(c, v, vp, &p->api, &p->api_name);
        } else if (key_is(k, "headers")) {
            for (size_t i = 0; i < p->n_headers; i++) {
                cg_free(p->headers[i].name);
                wipe_free(p->headers[i].value);
            }
            cg_free(p->headers);
            p->headers = NULL;
            p->n_headers = 0;
            parse_headers(c, v, vp, true, &p->headers, &p->n_headers);
        } else if (key_is(k, "authHeader") || key_is(k, "injectNumCtxForOpenAICompat")) {
            if (want_bool(c, v, vp, &b))
                note_at(c, kat(c, obj, k), "OpenClaw provider key, not used by clawgate");
        } else if (key_is(k, "request")) {
            if (want_object(c, v, vp))
                note_at(c, kat(c, obj, k),
                        "not used by clawgate (request header, auth, proxy and TLS overrides are "
                        "not supported)");
        } else if (key_is(k, "timeoutSeconds")) {
            if (want_int(c, v, vp, 1, 86400, &x))
                p->timeout_seconds = (int)x;
        } else if (key_is(k, "maxTokens")) {
            if (want_int(c, v, vp, 1, (int64_t)MAX_TOKENS_LIMIT, &x))
                prov_max = x;
        } else {
            unknown_key(c, obj, k, provider_keys, CG_ARRAY_LEN(provider_keys));
        }
        path_pop(c, mark);
    }
    if (!has_base)
        err_at(c, at, "missing required key \"baseUrl\"");
    if (!has_models)
        err_at(c, at, "missing required key \"models\"");
    if (p->api == CG_API_UNSUPPORTED)
        note_at(c, at,
                "api \"%s\" is not supported by clawgate; provider unavailable (for an "
                "OpenAI-compatible /v1 endpoint use \"openai-completions\")",
                p->api_name);
    size_t mark = path_key(c, "models");
    parse_models(c, models, models ? vat(c, obj, "models", models) : at, p, cat, profile, prov_max);
    path_pop(c, mark);
    provider_finish(c, p, cat, auth);
}

static void parse_models_section(ctx_t *c, json_object *sec, cg_json5_pos_t at)
{
    static const char *const keys[] = {"mode", "providers", "bedrockDiscovery", "proxy"};
    cg_config_t *cfg = c->cfg;
    json_object *provs = NULL;
    size_t m0 = path_key(c, "models");
    if (sec && want_object(c, sec, at)) {
        json_object_object_foreach(sec, k, v)
        {
            size_t mark = path_key(c, k);
            cg_json5_pos_t vp = vat(c, sec, k, v);
            if (key_is(k, "mode")) {
                static const char *const modes[] = {"merge", "replace"};
                cfg->mode_replace = want_enum(c, v, vp, modes, 2) == 1;
            } else if (key_is(k, "providers")) {
                if (want_object(c, v, vp))
                    provs = v;
            } else if (key_is(k, "bedrockDiscovery") || key_is(k, "proxy")) {
                note_at(c, kat(c, sec, k), "OpenClaw setting, not used by clawgate");
            } else {
                unknown_key(c, sec, k, keys, CG_ARRAY_LEN(keys));
            }
            path_pop(c, mark);
        }
    }
    size_t n_cat;
    const cg_catalog_provider_t *cat = cg_catalog_providers(&n_cat);
    size_t n_user = provs ? (size_t)json_object_object_length(provs) : 0;
    if (n_user > MAX_PROVIDERS) {
        err_at(c, vat(c, sec, "providers", provs), "more than %d providers", MAX_PROVIDERS);
        n_user = 0;
    }
    cfg->providers = cg_calloc(n_user + n_cat, sizeof *cfg->providers);
    if (n_user) {
        size_t m1 = path_key(c, "providers");
        json_object_object_foreach(provs, name, pv)
        {
            size_t mark = path_key(c, name);
            cg_json5_pos_t pp = vat(c, provs, name, pv);
            if (!provider_name_ok(name)) {
                err_at(c, kat(c, provs, name),
                       "provider names must be 1 to 64 characters without '/', spaces or control "
                       "characters");
            } else if (want_object(c, pv, pp)) {
                const cg_catalog_provider_t *base =
                    cfg->mode_replace ? NULL : cg_catalog_find(name);
                parse_provider(c, pv, pp, name, base, &cfg->providers[cfg->n_providers++]);
            }
            path_pop(c, mark);
        }
        path_pop(c, m1);
    }
    path_pop(c, m0);
    if (cfg->mode_replace)
        return;
    for (size_t i = 0; i < n_cat; i++) {
        bool present = false;
        for (size_t j = 0; j < cfg->n_providers && !present; j++)
            present = strcmp(cfg->providers[j].name, cat[i].name) == 0;
        if (present)
            continue;
        cg_provider_t *p = &cfg->providers[cfg->n_providers++];
        provider_base(p, cat[i].name, &cat[i]);
        p->models = cg_calloc(cat[i].n_models, sizeof *p->models);
        for (size_t j = 0; j < cat[i].n_models; j++)
            model_from_catalog(&p->models[p->n_models++], &cat[i], &cat[i].models[j]);
        provider_finish(c, p, &cat[i], NULL);
    }
}

/* ---- clawgate's own block ---- */

static void settings_defaults(cg_settings_t *s)
{
    s->listen_host = cg_strdup("127.0.0.1");
    s->listen_port = 8089;
    s->store_path = cg_strdup("./var/clawgate.db");
    s->store_fail_closed = true;
    s->retention_days = 0;
    s->max_body_bytes = (size_t)16 << 20;
    s->max_connections = 10000;
    s->connect_timeout_ms = 5000;
    s->first_token_timeout_s = 30;
    s->idle_timeout_s = 60;
    s->request_timeout_s = 600;
    s->client_timeout_s = 30;
    s->log_level = cg_strdup("info");
    s->probe_interval_s = 15;
    s->probe_timeout_s = 5;
    s->adaptive = false;
    s->primary_factor = 1.5;
    s->rerank_s = 5;
    s->restart_intensity = 5;
    s->restart_period_s = 30;
}

/* "host:port" or "[v6]:port"; NULL and *why on error. */
static char *split_listen(const char *v, int *port, const char **why)
{
    const char *host, *host_end, *ps;
    if (v[0] == '[') {
        host = v + 1;
        host_end = strchr(host, ']');
        if (!host_end) {
            *why = "missing ']' after the IPv6 address";
            return NULL;
        }
        if (host_end[1] != ':') {
            *why = "expected ':' and a port after ']'";
            return NULL;
        }
        ps = host_end + 2;
    } else {
        host = v;
        host_end = strrchr(v, ':');
        if (!host_end) {
            *why = "expected host:port, e.g. 127.0.0.1:8089";
            return NULL;
        }
        if (memchr(v, ':', (size_t)(host_end - v))) {
            *why = "an IPv6 address needs brackets, e.g. [::1]:8089";
            return NULL;
        }
        ps = host_end + 1;
    }
    if (host_end == host) {
        *why = "missing host";
        return NULL;
    }
    for (const char *h = host; h < host_end; h++) {
        if ((unsigned char)*h <= 0x20 || *h == '/' || *h == '[' || *h == ']') {
            *why = "invalid character in host";
            return NULL;
        }
    }
    size_t n = strlen(ps);
    long pv = 0;
    for (size_t i = 0; i < n; i++)
        pv = (ps[i] >= '0' && ps[i] <= '9' && pv < 100000) ? pv * 10 + (ps[i] - '0') : 100000;
    if (n == 0 || n > 5 || pv > 65535) {
        *why = "the port must be a number from 0 to 65535";
        return NULL;
    }
    *port = (int)pv;
    return cg_strndup(host, (size_t)(host_end - host));
}

typedef struct int_setting {
    const char *key;
    int64_t min, max;
    size_t offset; /* of an int in cg_settings_t */
} int_setting_t;

static void parse_int_group(ctx_t *c, json_object *obj, cg_json5_pos_t at,
                            const int_setting_t *fields, size_t n, const char *const *extra_keys,
                            size_t n_extra, cg_settings_t *s)
{
    if (!want_object(c, obj, at))
        return;
    json_object_object_foreach(obj, k, v)
    {
        size_t mark = path_key(c, k);
        bool found = false;
        for (size_t i = 0; i < n && !found; i++) {
            if (!key_is(k, fields[i].key))
                continue;
            found = true;
            int64_t x;
            if (want_int(c, v, vat(c, obj, k, v), fields[i].min, fields[i].max, &x))
                *(int *)((char *)s + fields[i].offset) = (int)x;
        }
        bool extra = false;
        for (size_t i = 0; i < n_extra; i++)
            extra |= key_is(k, extra_keys[i]);
        if (!found && !extra) {
            const char *names[16];
            size_t nn = 0;
            for (size_t i = 0; i < n && nn < 16; i++)
                names[nn++] = fields[i].key;
            for (size_t i = 0; i < n_extra && nn < 16; i++)
                names[nn++] = extra_keys[i];
            unknown_key(c, obj, k, names, nn);
        }
        path_pop(c, mark);
    }
}

#define OFF(f) offsetof(cg_settings_t, f)

static bool too_many_refs(ctx_t *c, size_t n, cg_json5_pos_t at)
{
    if (n <= MAX_REFS)
        return false;
    err_at(c, at, "more than %d entries", MAX_REFS);
    return true;
}

static void add_warm(ctx_t *c, json_object *obj, cg_json5_pos_t at)
{
    if (!want_object(c, obj, at))
        return;
    size_t n = (size_t)json_object_object_length(obj);
    if (too_many_refs(c, n, at))
        return;
    c->warm = cg_calloc(n ? n : 1, sizeof *c->warm);
    c->warm_minutes = cg_calloc(n ? n : 1, sizeof *c->warm_minutes);
    json_object_object_foreach(obj, ref, v)
    {
        size_t mark = path_key(c, ref);
        int64_t x;
        if (want_int(c, v, vat(c, obj, ref, v), 1, 10080, &x)) {
            pending_ref_t *w = &c->warm[c->n_warm];
            w->ref = cg_strdup(ref);
            w->path = cg_strdup(path_now(c));
            w->pos = kat(c, obj, ref);
            c->warm_minutes[c->n_warm++] = (int)x;
        }
        path_pop(c, mark);
    }
}

static void parse_settings(ctx_t *c, json_object *blk, cg_json5_pos_t at)
{
    static const char *const keys[] = {"listen", "store",   "limits",     "timeouts", "logLevel",
                                       "health", "routing", "supervisor", "reasoning"};
    cg_settings_t *s = &c->cfg->settings;
    if (!want_object(c, blk, at))
        return;
    json_object_object_foreach(blk, k, v)
    {
        size_t mark = path_key(c, k);
        cg_json5_pos_t vp = vat(c, blk, k, v);
        const char *str;
        if (key_is(k, "listen")) {
            if (want_string(c, v, vp, true, &str)) {
                const char *why = NULL;
                int port = 0;
                char *host = split_listen(str, &port, &why);
                if (!host) {
                    err_at(c, vp, "%s", why);
                } else {
                    cg_free(s->listen_host);
                    s->listen_host = host;
                    s->listen_port = port;
                }
            }
        } else if (key_is(k, "store")) {
            static const char *const sk[] = {"path", "onError", "retentionDays", "enabled"};
            if (want_object(c, v, vp)) {
                json_object_object_foreach(v, k2, v2)
                {
                    size_t m2 = path_key(c, k2);
                    cg_json5_pos_t p2 = vat(c, v, k2, v2);
                    int64_t x;
                    if (key_is(k2, "path")) {
                        if (want_name(c, v2, p2, &str)) {
                            cg_free(s->store_path);
                            s->store_path = cg_strdup(str);
                        }
                    } else if (key_is(k2, "onError")) {
                        static const char *const modes[] = {"fail", "serve"};
                        int i = want_enum(c, v2, p2, modes, 2);
                        if (i >= 0)
                            s->store_fail_closed = i == 0;
                    } else if (key_is(k2, "retentionDays")) {
                        if (want_int(c, v2, p2, 0, 36500, &x))
                            s->retention_days = (int)x;
                    } else if (key_is(k2, "enabled")) {
                        if (!json_object_is_type(v2, json_type_boolean))
                            err_at(c, p2, "must be true or false");
                        else
                            s->store_disabled = !json_object_get_boolean(v2);
                    } else {
                        unknown_key(c, v, k2, sk, CG_ARRAY_LEN(sk));
                    }
                    path_pop(c, m2);
                }
            }
        } else if (key_is(k, "limits")) {
            static const char *const lk[] = {"maxBodyBytes", "maxConnections"};
            if (want_object(c, v, vp)) {
                json_object_object_foreach(v, k2, v2)
                {
                    size_t m2 = path_key(c, k2);
                    cg_json5_pos_t p2 = vat(c, v, k2, v2);
                    int64_t x;
                    if (key_is(k2, "maxBodyBytes")) {
                        if (want_int(c, v2, p2, 1024, (int64_t)1 << 30, &x))
                            s->max_body_bytes = (size_t)x;
                    } else if (key_is(k2, "maxConnections")) {
                        if (want_int(c, v2, p2, 1, 1000000, &x))
                            s->max_connections = (int)x;
                    } else {
                        unknown_key(c, v, k2, lk, CG_ARRAY_LEN(lk));
                    }
                    path_pop(c, m2);
                }
            }
        } else if (key_is(k, "timeouts")) {
            static const int_setting_t tf[] = {
                {"connectMs", 1, 600000, OFF(connect_timeout_ms)},
                {"firstTokenSeconds", 1, 3600, OFF(first_token_timeout_s)},
                {"idleSeconds", 1, 3600, OFF(idle_timeout_s)},
                {"requestSeconds", 1, 86400, OFF(request_timeout_s)},
                {"clientSeconds", 1, 3600, OFF(client_timeout_s)},
            };
            parse_int_group(c, v, vp, tf, CG_ARRAY_LEN(tf), NULL, 0, s);
        } else if (key_is(k, "logLevel")) {
            static const char *const lv[] = {"debug", "info", "notice", "warn", "error"};
            int i = want_enum(c, v, vp, lv, CG_ARRAY_LEN(lv));
            if (i >= 0) {
                cg_free(s->log_level);
                s->log_level = cg_strdup(lv[i]);
            }
        } else if (key_is(k, "health")) {
            static const int_setting_t hf[] = {
                {"intervalSeconds", -1, 86400, OFF(probe_interval_s)},
                {"timeoutSeconds", 1, 600, OFF(probe_timeout_s)},
            };
            static const char *const extra[] = {"keepWarm"};
            parse_int_group(c, v, vp, hf, CG_ARRAY_LEN(hf), extra, 1, s);
            json_object *kw;
            if (json_object_get_type(v) == json_type_object &&
                json_object_object_get_ex(v, "keepWarm", &kw)) {
                size_t m2 = path_key(c, "keepWarm");
                add_warm(c, kw, vat(c, v, "keepWarm", kw));
                path_pop(c, m2);
            }
            if (s->probe_interval_s == 0)
                s->probe_interval_s = 15;
        } else if (key_is(k, "reasoning")) {
            /* reasoning: { omit: ["provider/model" | alias, ...] }: models whose
             * reasoning never reaches clients (chat channels want the final
             * text only), whatever the request's x-clawgate-reasoning. */
            static const char *const rk[] = {"omit"};
            if (want_object(c, v, vp)) {
                json_object_object_foreach(v, k2, v2)
                {
                    size_t m2 = path_key(c, k2);
                    cg_json5_pos_t p2 = vat(c, v, k2, v2);
                    if (key_is(k2, "omit")) {
                        if (want_array(c, v2, p2) &&
                            !too_many_refs(c, json_object_array_length(v2), p2)) {
                            size_t n = json_object_array_length(v2);
                            c->omit = cg_calloc(n ? n : 1, sizeof *c->omit);
                            for (size_t i = 0; i < n; i++) {
                                size_t mi = path_index(c, i);
                                json_object *e = json_object_array_get_idx(v2, i);
                                const char *ref;
                                if (want_string(c, e, vat(c, v2, NULL, e), true, &ref)) {
                                    pending_ref_t *o = &c->omit[c->n_omit++];
                                    o->ref = cg_strdup(ref);
                                    o->path = cg_strdup(path_now(c));
                                    o->pos = vat(c, v2, NULL, e);
                                }
                                path_pop(c, mi);
                            }
                        }
                    } else {
                        unknown_key(c, v, k2, rk, CG_ARRAY_LEN(rk));
                    }
                    path_pop(c, m2);
                }
            }
        } else if (key_is(k, "routing")) {
            static const char *const rk[] = {"policy", "primaryFactor", "rerankSeconds"};
            if (want_object(c, v, vp)) {
                json_object_object_foreach(v, k2, v2)
                {
                    size_t m2 = path_key(c, k2);
                    cg_json5_pos_t p2 = vat(c, v, k2, v2);
                    int64_t x;
                    double d;
                    if (key_is(k2, "policy")) {
                        static const char *const pol[] = {"pinned", "adaptive"};
                        int i = want_enum(c, v2, p2, pol, 2);
                        if (i >= 0)
                            s->adaptive = i == 1;
                    } else if (key_is(k2, "primaryFactor")) {
                        if (want_number(c, v2, p2, 1.0, 100.0, &d))
                            s->primary_factor = d;
                    } else if (key_is(k2, "rerankSeconds")) {
                        if (want_int(c, v2, p2, 1, 3600, &x))
                            s->rerank_s = (int)x;
                    } else {
                        unknown_key(c, v, k2, rk, CG_ARRAY_LEN(rk));
                    }
                    path_pop(c, m2);
                }
            }
        } else if (key_is(k, "supervisor")) {
            static const int_setting_t sf[] = {
                {"maxRestarts", 1, 1000, OFF(restart_intensity)},
                {"periodSeconds", 1, 86400, OFF(restart_period_s)},
            };
            static const char *const extra[] = {"providerThreads"};
            parse_int_group(c, v, vp, sf, CG_ARRAY_LEN(sf), extra, 1, s);
            json_object *pt;
            if (json_object_get_type(v) == json_type_object &&
                json_object_object_get_ex(v, "providerThreads", &pt)) {
                size_t m2 = path_key(c, "providerThreads");
                static const char *const modes[] = {"shared", "own"};
                int i = want_enum(c, pt, vat(c, v, "providerThreads", pt), modes, 2);
                if (i >= 0)
                    s->provider_threads_own = i == 1;
                path_pop(c, m2);
            }
        } else {
            unknown_key(c, blk, k, keys, CG_ARRAY_LEN(keys));
        }
        path_pop(c, mark);
    }
}

/* ---- agents ---- */

static void pending_set(ctx_t *c, pending_ref_t *r, const char *ref, cg_json5_pos_t pos,
                        const json_object *node)
{
    r->ref = cg_strdup(ref);
    r->path = cg_strdup(path_now(c));
    r->pos = pos;
    r->node = node;
}

static void pending_free(pending_ref_t *r)
{
    cg_free(r->ref);
    cg_free(r->path);
}

static void parse_agent_model(ctx_t *c, json_object *parent, json_object *v, cg_json5_pos_t vp)
{
    const char *s;
    if (json_object_get_type(v) == json_type_string) {
        if (want_name(c, v, vp, &s)) {
            c->has_primary = true;
            pending_set(c, &c->primary, s, vp, v);
        }
        return;
    }
    if (json_object_get_type(v) != json_type_object) {
        err_at(c, vp, "must be a model ref string or an object {primary, fallbacks}, not %s",
               type_name(v));
        return;
    }
    static const char *const keys[] = {"primary", "fallbacks"};
    CG_UNUSED(parent);
    json_object_object_foreach(v, k, mv)
    {
        size_t mark = path_key(c, k);
        cg_json5_pos_t p = vat(c, v, k, mv);
        if (key_is(k, "primary")) {
            if (want_name(c, mv, p, &s)) {
                c->has_primary = true;
                pending_set(c, &c->primary, s, p, mv);
            }
        } else if (key_is(k, "fallbacks")) {
            if (want_array(c, mv, p) && !too_many_refs(c, json_object_array_length(mv), p)) {
                size_t n = json_object_array_length(mv);
                c->fallbacks = cg_calloc(n ? n : 1, sizeof *c->fallbacks);
                for (size_t i = 0; i < n; i++) {
                    size_t mi = path_index(c, i);
                    json_object *e = json_object_array_get_idx(mv, i);
                    cg_json5_pos_t ep = vat(c, mv, NULL, e);
                    if (want_name(c, e, ep, &s))
                        pending_set(c, &c->fallbacks[c->n_fallbacks++], s, ep, e);
                    path_pop(c, mi);
                }
            }
        } else {
            unknown_key(c, v, k, keys, CG_ARRAY_LEN(keys));
        }
        path_pop(c, mark);
    }
}

static void parse_agent_models(ctx_t *c, json_object *obj, cg_json5_pos_t at)
{
    if (!want_object(c, obj, at))
        return;
    static const char *const keys[] = {"alias", "params", "streaming"};
    size_t n = (size_t)json_object_object_length(obj);
    if (too_many_refs(c, n, at))
        return;
    c->entries = cg_calloc(n ? n : 1, sizeof *c->entries);
    json_object_object_foreach(obj, ref, ev)
    {
        size_t mark = path_key(c, ref);
        cg_json5_pos_t ep = vat(c, obj, ref, ev);
        if (!*ref) {
            err_at(c, kat(c, obj, ref), "a model ref must not be empty");
            path_pop(c, mark);
            continue;
        }
        if (!want_object(c, ev, ep)) {
            path_pop(c, mark);
            continue;
        }
        pending_entry_t *e = &c->entries[c->n_entries++];
        pending_set(c, &e->key, ref, kat(c, obj, ref), NULL);
        e->streaming = -1;
        json_object_object_foreach(ev, k, v)
        {
            size_t m2 = path_key(c, k);
            cg_json5_pos_t vp = vat(c, ev, k, v);
            const char *s;
            bool b;
            if (key_is(k, "alias")) {
                if (want_name(c, v, vp, &s)) {
                    e->has_alias = true;
                    pending_set(c, &e->alias, s, vp, v);
                }
            } else if (key_is(k, "params")) {
                if (want_object(c, v, vp))
                    e->params = v;
            } else if (key_is(k, "streaming")) {
                if (want_bool(c, v, vp, &b))
                    e->streaming = b;
            } else {
                unknown_key(c, ev, k, keys, CG_ARRAY_LEN(keys));
            }
            path_pop(c, m2);
        }
        path_pop(c, mark);
    }
}

static void parse_agents(ctx_t *c, json_object *agents, cg_json5_pos_t at)
{
    if (!want_object(c, agents, at))
        return;
    cg_buf_t ignored = {0};
    json_object_object_foreach(agents, k, v)
    {
        if (!key_is(k, "defaults")) {
            cg_buf_printf(&ignored, "%s%s", ignored.len ? ", " : "", k);
            continue;
        }
        size_t mark = path_key(c, k);
        cg_json5_pos_t dp = vat(c, agents, k, v);
        if (want_object(c, v, dp)) {
            cg_buf_t skipped = {0};
            json_object_object_foreach(v, dk, dv)
            {
                size_t m2 = path_key(c, dk);
                cg_json5_pos_t p2 = vat(c, v, dk, dv);
                if (key_is(dk, "model"))
                    parse_agent_model(c, v, dv, p2);
                else if (key_is(dk, "models"))
                    parse_agent_models(c, dv, p2);
                else
                    cg_buf_printf(&skipped, "%s%s", skipped.len ? ", " : "", dk);
                path_pop(c, m2);
            }
            if (skipped.len)
                note_at(c, dp, "not used by clawgate (it reads only model and models): %s",
                        skipped.data);
            cg_buf_free(&skipped);
        }
        path_pop(c, mark);
    }
    if (ignored.len)
        note_at(c, at, "not used by clawgate (it reads only agents.defaults): %s", ignored.data);
    cg_buf_free(&ignored);
}

/* ---- resolution ---- */

static cg_model_t *resolve_ex(const cg_config_t *cfg, const char *ref, size_t len, bool use_aliases,
                              size_t *n_bare)
{
    if (n_bare)
        *n_bare = 0;
    if (!cfg || !ref || len == 0)
        return NULL;
    if (use_aliases) {
        for (size_t i = 0; i < cfg->n_aliases; i++) {
            const cg_alias_t *a = &cfg->aliases[i];
            if (a->len == len && ascii_ieq(a->alias, ref, len))
                return a->model;
        }
    }
    const char *slash = memchr(ref, '/', len);
    if (slash) {
        size_t plen = (size_t)(slash - ref), mlen = len - plen - 1;
        for (size_t i = 0; i < cfg->n_providers; i++) {
            const cg_provider_t *p = &cfg->providers[i];
            if (p->name_len != plen || memcmp(p->name, ref, plen) != 0)
                continue;
            for (size_t j = 0; j < p->n_models; j++)
                if (p->models[j].id_len == mlen && memcmp(p->models[j].id, slash + 1, mlen) == 0)
                    return &p->models[j];
        }
    }
    /* A bare id (which may itself contain '/', like OpenRouter's) that exactly
     * one provider has. */
    cg_model_t *found = NULL;
    size_t hits = 0;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const cg_provider_t *p = &cfg->providers[i];
        for (size_t j = 0; j < p->n_models; j++) {
            if (p->models[j].id_len == len && memcmp(p->models[j].id, ref, len) == 0) {
                found = &p->models[j];
                hits++;
            }
        }
    }
    if (n_bare)
        *n_bare = hits;
    return hits == 1 ? found : NULL;
}

cg_model_t *cg_config_resolve(const cg_config_t *c, const char *ref, size_t len)
{
    return resolve_ex(c, ref, len, true, NULL);
}

/* Why a ref did not resolve, for the error message. */
static char *explain_unresolved(const cg_config_t *cfg, const char *ref)
{
    size_t len = strlen(ref);
    size_t hits;
    resolve_ex(cfg, ref, len, false, &hits);
    if (hits > 1)
        return cg_sprintf("more than one provider has a model with this id; write it as "
                          "provider/model");
    const char *slash = strchr(ref, '/');
    if (!slash)
        return cg_strdup("no alias, and no provider has a model with this id");
    size_t plen = (size_t)(slash - ref);
    for (size_t i = 0; i < cfg->n_providers; i++)
        if (cfg->providers[i].name_len == plen && memcmp(cfg->providers[i].name, ref, plen) == 0)
            return cg_sprintf("provider %s has no model with this id", cfg->providers[i].name);
    char *pname = cg_strndup(ref, plen);
    char *why;
    if (cfg->mode_replace && cg_catalog_find(pname))
        why = cg_sprintf("no provider %s (the built-in hosted catalog is not used because "
                         "models.mode is \"replace\")",
                         pname);
    else
        why = cg_sprintf("no provider %s is configured", pname);
    cg_free(pname);
    return why;
}

static cg_model_t *resolve_pending(ctx_t *c, const pending_ref_t *r, bool use_aliases,
                                   const char *what)
{
    cg_model_t *m = resolve_ex(c->cfg, r->ref, strlen(r->ref), use_aliases, NULL);
    if (m)
        return m;
    char *why = explain_unresolved(c->cfg, r->ref);
    char sb[SHOWN_BUF];
    const subst_t *sub = subst_of(c, r->node);
    if (sub)
        snprintf(sb, sizeof sb, "(value from ${%s})", sub->var);
    else
        shown(c, NULL, r->ref, sb, sizeof sb);
    err_path(c, r->pos, r->path, "%s %s does not resolve: %s", what, sb, why);
    cg_free(why);
    return NULL;
}

static void note_unavailable(ctx_t *c, const pending_ref_t *r, const cg_model_t *m)
{
    const cg_provider_t *p = m->provider;
    if (!p->available)
        note_path(c, r->pos, r->path, "%s is unavailable: %s", m->ref, p->unavailable_reason);
    else if (m->api == CG_API_UNSUPPORTED)
        note_path(c, r->pos, r->path, "%s is unavailable: its api is not supported by clawgate",
                  m->ref);
}

static void add_alias(cg_config_t *cfg, const char *alias, cg_model_t *m, bool builtin)
{
    cg_alias_t *a = &cfg->aliases[cfg->n_aliases++];
    a->alias = cg_strdup(alias);
    a->len = strlen(alias);
    a->builtin = builtin;
    a->model = m;
}

static const cg_alias_t *find_alias(const cg_config_t *cfg, const char *alias)
{
    size_t n = strlen(alias);
    for (size_t i = 0; i < cfg->n_aliases; i++)
        if (cfg->aliases[i].len == n && ascii_ieq(cfg->aliases[i].alias, alias, n))
            return &cfg->aliases[i];
    return NULL;
}

static void resolve_all(ctx_t *c)
{
    cg_config_t *cfg = c->cfg;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        cg_provider_t *p = &cfg->providers[i];
        for (size_t j = 0; j < p->n_models; j++) {
            cg_model_t *m = &p->models[j];
            m->provider = p;
            m->id_len = strlen(m->id);
            if (!m->ref)
                m->ref = cg_sprintf("%s/%s", p->name, m->id);
        }
    }
    size_t n_builtin;
    const cg_catalog_alias_t *builtin = cg_catalog_aliases(&n_builtin);
    cfg->aliases = cg_calloc(c->n_entries + n_builtin + 1, sizeof *cfg->aliases);
    /* agents.defaults.models: keys are refs (no alias lookup: aliases are
     * being defined here) */
    for (size_t i = 0; i < c->n_entries; i++) {
        pending_entry_t *e = &c->entries[i];
        cg_model_t *m = resolve_pending(c, &e->key, false, "model");
        if (!m)
            continue;
        if (e->params) {
            json_object_put(m->params);
            m->params = json_object_get(e->params);
        }
        if (e->streaming >= 0)
            m->streaming = e->streaming;
        if (!e->has_alias)
            continue;
        const cg_alias_t *prev = find_alias(cfg, e->alias.ref);
        if (prev && prev->model != m) {
            char sb[SHOWN_BUF];
            err_path(c, e->alias.pos, e->alias.path, "alias %s already names %s",
                     shown(c, e->alias.node, e->alias.ref, sb, sizeof sb), prev->model->ref);
        } else if (!prev) {
            add_alias(cfg, e->alias.ref, m, false);
        }
    }
    if (!cfg->mode_replace) {
        for (size_t i = 0; i < n_builtin; i++) {
            if (find_alias(cfg, builtin[i].alias))
                continue;
            size_t n = strlen(builtin[i].alias), hits = 0;
            for (size_t p = 0; p < cfg->n_providers; p++)
                for (size_t j = 0; j < cfg->providers[p].n_models; j++)
                    hits += cfg->providers[p].models[j].id_len == n &&
                            ascii_ieq(cfg->providers[p].models[j].id, builtin[i].alias, n);
            cg_model_t *m = resolve_ex(cfg, builtin[i].ref, strlen(builtin[i].ref), false, NULL);
            if (m && hits == 0)
                add_alias(cfg, builtin[i].alias, m, true);
        }
    }
    if (c->has_primary) {
        cfg->primary = resolve_pending(c, &c->primary, true, "model");
        if (cfg->primary)
            note_unavailable(c, &c->primary, cfg->primary);
    }
    cfg->fallbacks = cg_calloc(c->n_fallbacks + 1, sizeof *cfg->fallbacks);
    for (size_t i = 0; i < c->n_fallbacks; i++) {
        cg_model_t *m = resolve_pending(c, &c->fallbacks[i], true, "model");
        if (m) {
            cfg->fallbacks[cfg->n_fallbacks++] = m;
            note_unavailable(c, &c->fallbacks[i], m);
        }
    }
    cfg->keep_warm = cg_calloc(c->n_warm + 1, sizeof *cfg->keep_warm);
    for (size_t i = 0; i < c->n_warm; i++) {
        cg_model_t *m = resolve_pending(c, &c->warm[i], true, "model");
        if (m) {
            cfg->keep_warm[cfg->n_keep_warm].ref = cg_strdup(m->ref);
            cfg->keep_warm[cfg->n_keep_warm++].minutes = c->warm_minutes[i];
        }
    }
    for (size_t i = 0; i < c->n_omit; i++) {
        cg_model_t *m = resolve_pending(c, &c->omit[i], true, "model");
        if (m)
            m->omit_reasoning = true;
    }
    if (!c->has_primary) {
        /* OpenClaw: the first configured provider's first model */
        for (size_t i = 0; i < cfg->n_providers && !cfg->primary; i++)
            if (cfg->providers[i].n_models)
                cfg->primary = &cfg->providers[i].models[0];
        if (!cfg->primary) {
            cg_json5_pos_t top = {1, 1};
            err_path(c, top, "models.providers",
                     "no models configured (models.mode is \"replace\" and no provider has "
                     "models)");
        }
    }
}

/* ---- top level ---- */

static const char *const openclaw_sections[] = {
    "$schema",   "meta",   "env",    "wizard",   "diagnostics", "logging",    "update",
    "browser",   "ui",     "auth",   "secrets",  "nodeHost",    "tools",      "bindings",
    "broadcast", "audio",  "media",  "messages", "commands",    "approvals",  "session",
    "cron",      "hooks",  "web",    "channels", "discovery",   "canvasHost", "talk",
    "gateway",   "memory", "skills", "plugins",  "acp",         "mcp",        "identity",
};

static void walk_top(ctx_t *c)
{
    json_object *root = c->root;
    cg_json5_pos_t top = cg_json5_value_pos(c->doc, root);
    if (json_object_get_type(root) != json_type_object) {
        err_at(c, top, "the top level must be an object, not %s", type_name(root));
        return;
    }
    json_object *models = NULL;
    json_object_object_foreach(root, k, v)
    {
        size_t mark = path_key(c, k);
        cg_json5_pos_t vp = vat(c, root, k, v);
        if (key_is(k, "agents")) {
            parse_agents(c, v, vp);
        } else if (key_is(k, "models")) {
            models = v;
        } else if (key_is(k, "clawgate")) {
            parse_settings(c, v, vp);
        } else {
            bool known = false;
            for (size_t i = 0; i < CG_ARRAY_LEN(openclaw_sections); i++)
                known |= key_is(k, openclaw_sections[i]);
            note_at(c, kat(c, root, k),
                    known ? "OpenClaw section, not used by clawgate: ignored"
                          : "unknown top-level key: ignored");
        }
        path_pop(c, mark);
    }
    parse_models_section(c, models, models ? vat(c, root, "models", models) : top);
}

void cg_config_free(cg_config_t *c)
{
    if (!c)
        return;
    cg_free(c->path);
    for (size_t i = 0; i < c->n_providers; i++)
        free_provider(&c->providers[i]);
    cg_free(c->providers);
    for (size_t i = 0; i < c->n_aliases; i++)
        cg_free(c->aliases[i].alias);
    cg_free(c->aliases);
    cg_free(c->fallbacks);
    cg_free(c->settings.listen_host);
    cg_free(c->settings.store_path);
    cg_free(c->settings.log_level);
    for (size_t i = 0; i < c->n_keep_warm; i++)
        cg_free(c->keep_warm[i].ref);
    cg_free(c->keep_warm);
    cg_free(c);
}

void cg_config_destroy(void *config)
{
    cg_config_free(config);
}

static void ctx_free(ctx_t *c)
{
    for (size_t i = 0; i < c->n_subs; i++) {
        cg_free(c->subs[i].var);
        cg_free(c->subs[i].template);
    }
    cg_free(c->subs);
    cg_free(c->subst_index.keys);
    cg_free(c->subst_index.vals);
    cg_buf_free(&c->path);
    pending_free(&c->primary);
    for (size_t i = 0; i < c->n_fallbacks; i++)
        pending_free(&c->fallbacks[i]);
    cg_free(c->fallbacks);
    for (size_t i = 0; i < c->n_entries; i++) {
        pending_free(&c->entries[i].key);
        pending_free(&c->entries[i].alias);
    }
    cg_free(c->entries);
    for (size_t i = 0; i < c->n_warm; i++)
        pending_free(&c->warm[i]);
    cg_free(c->warm);
    for (size_t i = 0; i < c->n_omit; i++)
        pending_free(&c->omit[i]);
    cg_free(c->omit);
    cg_free(c->warm_minutes);
    cg_json5_free(c->doc);
}

/* Messages in source order, whatever order the checks ran in. */
static void diag_pos(const char *s, size_t flen, long *line, long *col)
{
    *line = *col = LONG_MAX; /* unpositioned messages go last */
    if (strlen(s) <= flen || s[flen] != ':')
        return;
    char *end;
    *line = strtol(s + flen + 1, &end, 10);
    if (*end == ':')
        *col = strtol(end + 1, NULL, 10);
}

static void sort_diags(cg_diags_t *d, size_t from, const char *file)
{
    if (!d)
        return;
    size_t flen = strlen(file);
    for (size_t i = from + 1; i < d->n; i++) {
        char *item = d->items[i];
        long li, ci;
        diag_pos(item, flen, &li, &ci);
        size_t j = i;
        while (j > from) {
            long lj, cj;
            diag_pos(d->items[j - 1], flen, &lj, &cj);
            if (lj < li || (lj == li && cj <= ci))
                break;
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = item;
    }
}

int cg_config_load_string(const char *name, const char *text, size_t len,
                          const cg_config_opts_t *opts, cg_config_t **out, cg_diags_t *errors,
                          cg_diags_t *notices)
{
    *out = NULL;
    size_t e0 = errors ? errors->n : 0, n0 = notices ? notices->n : 0;
    ctx_t c = {
        .file = name ? name : "config",
        .getenv_fn = opts && opts->getenv_fn ? opts->getenv_fn : sys_getenv,
        .errors = errors,
        .notices = notices,
    };
    cg_json5_error_t perr;
    if (cg_json5_parse(text, len, NULL, &c.doc, &perr) != 0) {
        if (errors)
            cg_diags_add(errors, "%s:%d:%d: %s", c.file, perr.pos.line, perr.pos.col, perr.msg);
        return CG_EINVAL;
    }
    size_t n_dups;
    const cg_json5_dup_t *dups = cg_json5_duplicates(c.doc, &n_dups);
    for (size_t i = 0; i < n_dups && notices; i++) {
        cg_buf_t k = {0};
        append_shown(&k, dups[i].key, strlen(dups[i].key), SHOWN_VALUE_BYTES);
        cg_diags_add(notices, "%s:%d:%d: duplicate key \"%s\": the last one wins", c.file,
                     dups[i].pos.line, dups[i].pos.col, k.data ? k.data : "");
        cg_buf_free(&k);
    }
    c.root = cg_json5_root(c.doc);
    c.cfg = cg_calloc(1, sizeof *c.cfg);
    static _Atomic uint64_t serials;
    c.cfg->serial = ++serials;
    c.cfg->path = cg_strdup(c.file);
    settings_defaults(&c.cfg->settings);

    static const char *const sub_model[] = {"agents", "defaults", "model"};
    static const char *const sub_models[] = {"agents", "defaults", "models"};
    static const char *const sub_prov[] = {"models"};
    static const char *const sub_own[] = {"clawgate"};
    subst_at(&c, sub_model, 3);
    subst_at(&c, sub_models, 3);
    subst_at(&c, sub_prov, 1);
    subst_at(&c, sub_own, 1);

    walk_top(&c);
    if (json_object_get_type(c.root) == json_type_object)
        resolve_all(&c);

    sort_diags(errors, e0, c.file);
    sort_diags(notices, n0, c.file);
    int rc = 0;
    if (c.n_errors) {
        cg_config_free(c.cfg);
        rc = CG_EINVAL;
    } else {
        *out = c.cfg;
    }
    ctx_free(&c);
    return rc;
}

int cg_config_load_file(const char *path, const cg_config_opts_t *opts, cg_config_t **out,
                        cg_diags_t *errors, cg_diags_t *notices)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errors)
            cg_diags_add(errors, "%s: cannot open: %s", path, strerror(errno));
        return CG_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (errors)
            cg_diags_add(errors, "%s: not a regular file", path);
        close(fd);
        return CG_EIO;
    }
    if ((size_t)st.st_size > CG_JSON5_MAX_BYTES) {
        if (errors)
            cg_diags_add(errors, "%s: larger than %zu bytes", path, CG_JSON5_MAX_BYTES);
        close(fd);
        return CG_ELIMIT;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = cg_malloc(cap);
    for (;;) {
        if (len == cap) {
            /* the file grew while we read it: keep within the limit */
            if (cap > CG_JSON5_MAX_BYTES)
                break;
            cap *= 2;
            buf = cg_realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            if (errors)
                cg_diags_add(errors, "%s: cannot read: %s", path, strerror(errno));
            close(fd);
            cg_free(buf);
            return CG_EIO;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    int rc = cg_config_load_string(path, buf, len, opts, out, errors, notices);
    cg_free(buf);
    return rc;
}

/* ---- describe ---- */

typedef struct table {
    size_t ncol;
    char **cells;
    size_t nrows, cap;
} table_t;

static void table_row(table_t *t, ...)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->cells = cg_realloc(t->cells, t->cap * t->ncol * sizeof *t->cells);
    }
    va_list ap;
    va_start(ap, t);
    for (size_t i = 0; i < t->ncol; i++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->nrows * t->ncol + i] = cg_strdup(s ? s : "");
    }
    va_end(ap);
    t->nrows++;
}

static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void table_print(table_t *t, FILE *out)
{
    size_t width[16] = {0};
    cg_assert(t->ncol <= 16);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncol; i++) {
            size_t w = text_width(t->cells[r * t->ncol + i]);
            if (w > width[i])
                width[i] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        /* trailing empty cells print nothing, so lines carry no trailing blanks */
        size_t last = t->ncol;
        while (last > 1 && !*t->cells[r * t->ncol + last - 1])
            last--;
        fputs("  ", out);
        for (size_t i = 0; i < last; i++) {
            const char *s = t->cells[r * t->ncol + i];
            fputs(s, out);
            if (i + 1 < last)
                fprintf(out, "%*s", (int)(width[i] - text_width(s) + 2), "");
        }
        fputc('\n', out);
    }
    for (size_t i = 0; i < t->nrows * t->ncol; i++)
        cg_free(t->cells[i]);
    cg_free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

/* A price for people: up to four decimals, trailing zeros dropped. */
static void fmt_price(char *buf, size_t n, double v)
{
    snprintf(buf, n, "%.4f", v);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *e = buf + strlen(buf) - 1;
        while (e > dot && *e == '0')
            *e-- = '\0';
        if (e == dot)
            *e = '\0';
    }
}

static const char *status_of(const cg_provider_t *p, char *buf, size_t n)
{
    if (p->available)
        return "ok";
    snprintf(buf, n, "unavailable: %s", p->unavailable_reason);
    return buf;
}

void cg_config_describe(const cg_config_t *c, FILE *out)
{
    char b1[256], b2[64], b3[64], b4[64], b5[64], b6[64], b7[64];
    fprintf(out, "config %s (models.mode %s)\n", c->path, c->mode_replace ? "replace" : "merge");

    fprintf(out, "\nproviders\n");
    table_t t = {.ncol = 6};
    table_row(&t, "NAME", "API", "BASE URL", "KEY", "FROM", "STATUS");
    for (size_t i = 0; i < c->n_providers; i++) {
        const cg_provider_t *p = &c->providers[i];
        table_row(&t, p->name, p->api_name, p->base_url_display ? p->base_url_display : "-",
                  p->key_source, p->builtin ? "built-in" : "config", status_of(p, b1, sizeof b1));
    }
    table_print(&t, out);

    fprintf(out, "\nmodels (prices in USD per million tokens)\n");
    t.ncol = 10;
    table_row(&t, "MODEL", "API", "CONTEXT", "MAX OUT", "INPUT", "OUTPUT", "CACHE R", "CACHE W",
              "INPUTS", "FLAGS");
    for (size_t i = 0; i < c->n_providers; i++) {
        const cg_provider_t *p = &c->providers[i];
        for (size_t j = 0; j < p->n_models; j++) {
            const cg_model_t *m = &p->models[j];
            char ctx[48], mt[24];
            if (m->context_tokens)
                snprintf(ctx, sizeof ctx, "%lld (cap %lld)", (long long)m->context_window,
                         (long long)m->context_tokens);
            else
                snprintf(ctx, sizeof ctx, "%lld", (long long)m->context_window);
            snprintf(mt, sizeof mt, "%lld", (long long)m->max_tokens);
            fmt_price(b2, sizeof b2, m->cost.input);
            fmt_price(b3, sizeof b3, m->cost.output);
            fmt_price(b4, sizeof b4, m->cost.cache_read);
            fmt_price(b5, sizeof b5, m->cost.cache_write);
            b6[0] = '\0';
            for (size_t k = 0; k < m->n_input; k++)
                snprintf(b6 + strlen(b6), sizeof b6 - strlen(b6), "%s%s", k ? "," : "",
                         m->input[k]);
            snprintf(b7, sizeof b7, "%s%s%s%s", m->reasoning ? "reasoning " : "",
                     m == c->primary ? "primary " : "",
                     m->compat.tool_calls_as_text ? "tool-calls-as-text " : "",
                     m->streaming == 0 ? "no-stream " : "");
            if (*b7)
                b7[strlen(b7) - 1] = '\0';
            table_row(&t, m->ref,
                      m->api == CG_API_UNSUPPORTED ? "unsupported" : cg_api_name(m->api), ctx, mt,
                      b2, b3, b4, b5, b6, b7);
        }
    }
    table_print(&t, out);

    fprintf(out, "\naliases\n");
    if (c->n_aliases == 0) {
        fprintf(out, "  (none)\n");
    } else {
        t.ncol = 3;
        table_row(&t, "ALIAS", "MODEL", "");
        for (size_t i = 0; i < c->n_aliases; i++)
            table_row(&t, c->aliases[i].alias, c->aliases[i].model->ref,
                      c->aliases[i].builtin ? "(built-in)" : "");
        table_print(&t, out);
    }

    fprintf(out, "\nmodel chain\n");
    t.ncol = 3;
    if (c->primary)
        table_row(&t, "primary", c->primary->ref,
                  c->primary->provider->available ? ""
                                                  : status_of(c->primary->provider, b1, sizeof b1));
    for (size_t i = 0; i < c->n_fallbacks; i++) {
        char label[32];
        snprintf(label, sizeof label, "fallback %zu", i + 1);
        const cg_model_t *m = c->fallbacks[i];
        table_row(&t, label, m->ref,
                  m->provider->available ? "" : status_of(m->provider, b1, sizeof b1));
    }
    if (t.nrows)
        table_print(&t, out);
    else
        fprintf(out, "  (no models)\n");

    const cg_settings_t *s = &c->settings;
    fprintf(out, "\nsettings (clawgate block)\n");
    t.ncol = 2;
    bool v6 = strchr(s->listen_host, ':') != NULL;
    snprintf(b1, sizeof b1, "%s%s%s:%d", v6 ? "[" : "", s->listen_host, v6 ? "]" : "",
             s->listen_port);
    table_row(&t, "listen", b1);
    char *line;
    if (s->store_disabled)
        line = cg_strdup("disabled (store.enabled: false): exchanges are not recorded");
    else if (s->retention_days)
        line = cg_sprintf("%s (onError %s, retentionDays %d)", s->store_path,
                          s->store_fail_closed ? "fail" : "serve", s->retention_days);
    else
        line = cg_sprintf("%s (onError %s, kept forever)", s->store_path,
                          s->store_fail_closed ? "fail" : "serve");
    table_row(&t, "store", line);
    cg_free(line);
    snprintf(b1, sizeof b1, "maxBodyBytes %zu, maxConnections %d", s->max_body_bytes,
             s->max_connections);
    table_row(&t, "limits", b1);
    snprintf(b1, sizeof b1,
             "connectMs %d, firstTokenSeconds %d, idleSeconds %d, requestSeconds %d, "
             "clientSeconds %d",
             s->connect_timeout_ms, s->first_token_timeout_s, s->idle_timeout_s,
             s->request_timeout_s, s->client_timeout_s);
    table_row(&t, "timeouts", b1);
    table_row(&t, "logLevel", s->log_level);
    if (s->probe_interval_s < 0)
        snprintf(b1, sizeof b1, "off");
    else
        snprintf(b1, sizeof b1, "intervalSeconds %d, timeoutSeconds %d%s", s->probe_interval_s,
                 s->probe_timeout_s, c->n_keep_warm ? ", keepWarm:" : "");
    line = cg_strdup(b1);
    for (size_t i = 0; i < c->n_keep_warm; i++) {
        char *next = cg_sprintf("%s %s %d min", line, c->keep_warm[i].ref, c->keep_warm[i].minutes);
        cg_free(line);
        line = next;
    }
    table_row(&t, "health", line);
    cg_free(line);
    snprintf(b1, sizeof b1, "policy %s, primaryFactor %g, rerankSeconds %d",
             s->adaptive ? "adaptive" : "pinned", s->primary_factor, s->rerank_s);
    table_row(&t, "routing", b1);
    snprintf(b1, sizeof b1, "maxRestarts %d in periodSeconds %d, providerThreads %s",
             s->restart_intensity, s->restart_period_s, s->provider_threads_own ? "own" : "shared");
    table_row(&t, "supervisor", b1);
    table_print(&t, out);
}
