/*
 * cli.c — `clawgate sessions ...` and `clawgate usage ...` on the database.
 *
 * DESIGN
 * The command line turns its options into the same parameters the HTTP
 * endpoints take and runs the same queries (query.c) on its own read-only
 * connection, so a running gateway is never disturbed and the CLI and the API
 * cannot disagree. --json prints the query's JSON (pretty); otherwise the
 * JSON is walked into aligned tables for people.
 */
#include "store/internal.h"

#define JSON_PRETTY                                                                                \
    (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)
#define CELL_MAX 96 /* display width a free-text cell is cut to */

const char cg_store_cli_usage[] =
    "  sessions list [--since T] [--until T] [--model M] [--status ok|error|cancelled]\n"
    "                [--tenant NAME] [--limit N] [--offset N] [--json]\n"
    "                            sessions, most recently updated first\n"
    "  sessions show KEY [--tenant NAME] [--json]\n"
    "                            a session's transcript and exchanges\n"
    "  sessions search TEXT... [--since T] [--until T] [--limit N] [--json]\n"
    "                            full-text search over transcripts (all words must match)\n"
    "  usage [--by model,day,hour,tenant,status,api] [--since T] [--until T]\n"
    "        [--model M] [--tenant NAME] [--json]\n"
    "                            requests, tokens, cost, error rate, p50/p95 latency and TTFT\n"
    "    T: 2026-01-31, 2026-01-31T12:00:00Z, unix seconds, or an age (30m, 12h, 7d, 2w)\n"
    "    The database: --db PATH, or the store path of --config FILE.\n";

/* ---- tables ---- */

typedef struct table {
    size_t ncols;
    const char **heads;
    const bool *right; /* right-aligned (numbers) */
    char **cells;      /* row-major */
    size_t nrows, cap;
} table_t;

/* Display width of UTF-8 text: code points (continuation bytes do not
 * count). Good enough for the text these tables hold. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* One line, at most max code points, control characters as spaces. */
static char *cell_text(const char *s, size_t max)
{
    cg_buf_t b = {0};
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        bool start = (*p & 0xC0) != 0x80;
        if (start && w == max) {
            /* cut: replace the last code point by an ellipsis */
            while (b.len && ((unsigned char)b.data[b.len - 1] & 0xC0) == 0x80)
                b.len--;
            if (b.len)
                b.len--;
            cg_buf_puts(&b, "\xe2\x80\xa6");
            break;
        }
        w += start;
        char c = *p < 0x20 || *p == 0x7f ? ' ' : (char)*p;
        cg_buf_append(&b, &c, 1);
    }
    cg_buf_append(&b, "", 0);
    if (!b.data)
        return cg_strdup("");
    return cg_buf_steal(&b, NULL);
}

static void table_row(table_t *t, ...)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = cg_realloc(t->cells, t->cap * t->ncols * sizeof *t->cells);
    }
    va_list ap;
    va_start(ap, t);
    for (size_t i = 0; i < t->ncols; i++) {
        char *c = va_arg(ap, char *); /* owned by the table from here */
        t->cells[t->nrows * t->ncols + i] = c ? c : cg_strdup("");
    }
    va_end(ap);
    t->nrows++;
}

static void table_print(table_t *t, FILE *out)
{
    size_t *w = cg_calloc(t->ncols, sizeof *w);
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = width(t->heads[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t x = width(t->cells[r * t->ncols + c]);
            if (x > w[c])
                w[c] = x;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = r == 0 ? t->heads[c] : t->cells[(r - 1) * t->ncols + c];
            size_t pad = w[c] - width(s);
            bool last = c + 1 == t->ncols;
            if (t->right[c])
                fprintf(out, "%*s%s", (int)pad, "", s);
            else
                fprintf(out, "%s%*s", s, last ? 0 : (int)pad, "");
            fputs(last ? "\n" : "  ", out);
        }
    }
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        cg_free(t->cells[i]);
    cg_free(t->cells);
    cg_free(w);
}

/* ---- reading the query JSON ---- */

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, k, &v);
    return v;
}

static char *s_of(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return cg_strdup(v ? json_object_get_string(v) : "");
}

static char *i_of(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return v ? cg_sprintf("%lld", (long long)json_object_get_int64(v)) : cg_strdup("-");
}

/* "2026-11-24T09:55:00.123Z" -> "2026-11-24 09:55:00" */
static char *t_of(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    const char *s = v ? json_object_get_string(v) : "";
    char *r = cg_strndup(s, 19);
    if (strlen(r) > 10)
        r[10] = ' ';
    return r;
}

static char *cost_of(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return cg_sprintf("$%.4f", v ? json_object_get_double(v) : 0.0);
}

/* A message's text for a transcript line: content (string or text parts),
 * else its tool calls, else the JSON itself. */
static char *message_text(json_object *m)
{
    json_object *c = get(m, "content");
    cg_buf_t b = {0};
    if (c && json_object_is_type(c, json_type_string)) {
        cg_buf_puts(&b, json_object_get_string(c));
    } else if (c && json_object_is_type(c, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(c); i++) {
            json_object *t = get(json_object_array_get_idx(c, i), "text");
            if (t) {
                if (b.len)
                    cg_buf_puts(&b, " ");
                cg_buf_puts(&b, json_object_get_string(t));
            }
        }
    } else if (json_object_is_type(m, json_type_object) && get(m, "summary")) {
        cg_buf_puts(&b, "[compaction] ");
        cg_buf_puts(&b, json_object_get_string(get(m, "summary")));
    }
    json_object *calls = get(m, "tool_calls");
    size_t ncalls =
        calls && json_object_is_type(calls, json_type_array) ? json_object_array_length(calls) : 0;
    for (size_t i = 0; i < ncalls; i++) {
        json_object *f = get(json_object_array_get_idx(calls, i), "function");
        json_object *name = f ? get(f, "name") : NULL, *args = f ? get(f, "arguments") : NULL;
        cg_buf_printf(&b, "%s-> %s(%s)", b.len ? " " : "",
                      name ? json_object_get_string(name) : "?",
                      args ? json_object_get_string(args) : "");
    }
    if (!b.len)
        cg_buf_puts(&b, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
    char *r = cell_text(b.data, CELL_MAX);
    cg_buf_free(&b);
    return r;
}

/* ---- the commands ---- */

typedef struct opt {
    const char *name;  /* "--since" */
    const char *param; /* query parameter it sets */
} opt_t;

typedef struct cli {
    FILE *out, *err;
    bool json;
    cg_store_params_t params;
    const char **words; /* positional arguments after the subcommand */
    size_t nwords;
} cli_t;

/* Options of a command into cli->params; 0, or 2 after printing why. */
static int parse_opts(cli_t *c, int argc, char **argv, const opt_t *opts, size_t nopts,
                      const char *cmd)
{
    c->words = cg_calloc((size_t)argc + 1, sizeof *c->words);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            c->json = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--") == 0) {
            c->words[c->nwords++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const opt_t *o = NULL;
        for (size_t k = 0; k < nopts && !o; k++)
            if (strlen(opts[k].name) == nlen && memcmp(opts[k].name, a, nlen) == 0)
                o = &opts[k];
        if (!o) {
            fprintf(c->err, "clawgate %s: unknown option '%s'\n", cmd, a);
            return 2;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(c->err, "clawgate %s: %.*s needs a value\n", cmd, (int)nlen, a);
            return 2;
        }
        cg_store_params_add(&c->params, o->param, v);
    }
    return 0;
}

/* Run a query; print its JSON with --json. Returns the exit code and *res
 * (NULL after --json or an error). */
static int run_query(cli_t *c, cg_store_ro_t *ro, cg_store_qkind_t kind, const char *key,
                     const char *cmd, json_object **res)
{
    cg_store_qerr_t e;
    *res = NULL;
    int rc = cg_store_query(ro, kind, key, &c->params, cg_wall_ms(), res, &e);
    if (rc != 0) {
        fprintf(c->err, "clawgate %s: %s\n", cmd, e.msg);
        return e.status == 400 ? 2 : 1;
    }
    if (c->json) {
        fprintf(c->out, "%s\n", json_object_to_json_string_ext(*res, JSON_PRETTY));
        json_object_put(*res);
        *res = NULL;
    }
    return 0;
}

static void more_note(cli_t *c, json_object *res, size_t shown)
{
    json_object *more = get(res, "has_more");
    if (more && json_object_get_boolean(more))
        fprintf(c->out, "(more: --offset %lld)\n",
                (long long)(json_object_get_int64(get(res, "offset")) + (int64_t)shown));
}

static int cmd_list(cli_t *c, cg_store_ro_t *ro)
{
    json_object *res;
    int rc = run_query(c, ro, CG_STORE_Q_LIST, NULL, "sessions list", &res);
    if (rc != 0 || !res)
        return rc;
    static const char *heads[] = {"KEY",     "TENANT",    "UPDATED", "MODEL",
                                  "ENTRIES", "EXCHANGES", "TOKENS",  "COST"};
    static const bool right[] = {false, false, false, false, true, true, true, true};
    table_t t = {.ncols = 8, .heads = heads, .right = right};
    json_object *data = get(res, "data");
    size_t n = json_object_array_length(data);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(data, i);
        table_row(&t, cell_text(json_object_get_string(get(o, "key")), CELL_MAX), s_of(o, "tenant"),
                  t_of(o, "updated"), s_of(o, "model"), i_of(o, "entries"), i_of(o, "exchanges"),
                  i_of(o, "token_estimate"), cost_of(o, "cost_usd"));
    }
    if (n)
        table_print(&t, c->out);
    else
        fprintf(c->out, "no sessions\n");
    more_note(c, res, n);
    json_object_put(res);
    return 0;
}

static int cmd_show(cli_t *c, cg_store_ro_t *ro)
{
    if (c->nwords != 1) {
        fprintf(c->err, "usage: clawgate sessions show KEY [--tenant NAME] [--json]\n");
        return 2;
    }
    json_object *res;
    int rc = run_query(c, ro, CG_STORE_Q_SHOW, c->words[0], "sessions show", &res);
    if (rc != 0 || !res)
        return rc;
    char *created = t_of(res, "created"), *updated = t_of(res, "updated");
    fprintf(c->out, "session %s (tenant %s)\n", json_object_get_string(get(res, "key")),
            json_object_get_string(get(res, "tenant")));
    fprintf(c->out, "created %s UTC, updated %s UTC, model %s, ~%lld tokens, %lld compactions\n\n",
            created, updated, get(res, "model") ? json_object_get_string(get(res, "model")) : "-",
            (long long)json_object_get_int64(get(res, "token_estimate")),
            (long long)json_object_get_int64(get(res, "compaction_count")));
    cg_free(created);
    cg_free(updated);

    static const char *eheads[] = {"SEQ", "ROLE", "TEXT"};
    static const bool eright[] = {true, false, false};
    table_t t = {.ncols = 3, .heads = eheads, .right = eright};
    json_object *entries = get(res, "entries");
    for (size_t i = 0; i < json_object_array_length(entries); i++) {
        json_object *o = json_object_array_get_idx(entries, i);
        json_object *content = get(o, "content");
        table_row(&t, i_of(o, "seq"), get(o, "role") ? s_of(o, "role") : s_of(o, "type"),
                  content ? message_text(content) : cg_strdup(""));
    }
    if (t.nrows)
        table_print(&t, c->out);
    else
        fprintf(c->out, "no entries\n");

    static const char *xheads[] = {"REQUEST", "STARTED", "STATUS", "MODEL", "IN",
                                   "OUT",     "COST",    "MS",     "TTFT",  "ATTEMPTS"};
    static const bool xright[] = {false, false, false, false, true, true, true, true, true, true};
    table_t x = {.ncols = 10, .heads = xheads, .right = xright};
    json_object *xs = get(res, "exchanges");
    for (size_t i = 0; i < json_object_array_length(xs); i++) {
        json_object *o = json_object_array_get_idx(xs, i);
        json_object *u = get(o, "usage"), *att = get(o, "attempts");
        const char *model = get(o, "model_answered")
                                ? json_object_get_string(get(o, "model_answered"))
                            : get(o, "model_asked") ? json_object_get_string(get(o, "model_asked"))
                                                    : "-";
        char *status = get(o, "error_class")
                           ? cg_sprintf("%s (%s)", json_object_get_string(get(o, "status")),
                                        json_object_get_string(get(o, "error_class")))
                           : s_of(o, "status");
        size_t natt =
            att && json_object_is_type(att, json_type_array) ? json_object_array_length(att) : 0;
        table_row(&x, s_of(o, "request_id"), t_of(o, "started"), status, cg_strdup(model),
                  i_of(u, "prompt_tokens"), i_of(u, "completion_tokens"), cost_of(o, "cost_usd"),
                  i_of(o, "latency_ms"), i_of(o, "ttft_ms"), cg_sprintf("%zu", natt));
    }
    fprintf(c->out, "\nexchanges:\n");
    if (x.nrows)
        table_print(&x, c->out);
    else
        fprintf(c->out, "none\n");
    json_object_put(res);
    return 0;
}

static int cmd_search(cli_t *c, cg_store_ro_t *ro)
{
    if (c->nwords == 0) {
        fprintf(c->err, "usage: clawgate sessions search TEXT... [--limit N] [--json]\n");
        return 2;
    }
    cg_buf_t q = {0};
    for (size_t i = 0; i < c->nwords; i++) {
        if (i)
            cg_buf_puts(&q, " ");
        cg_buf_puts(&q, c->words[i]);
    }
    cg_store_params_add(&c->params, "q", q.data);
    cg_buf_free(&q);
    json_object *res;
    int rc = run_query(c, ro, CG_STORE_Q_SEARCH, NULL, "sessions search", &res);
    if (rc != 0 || !res)
        return rc;
    static const char *heads[] = {"KEY", "SEQ", "ROLE", "WHEN", "SNIPPET"};
    static const bool right[] = {false, true, false, false, false};
    table_t t = {.ncols = 5, .heads = heads, .right = right};
    json_object *data = get(res, "data");
    size_t n = json_object_array_length(data);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(data, i);
        table_row(&t, cell_text(json_object_get_string(get(o, "key")), CELL_MAX), i_of(o, "seq"),
                  s_of(o, "role"), t_of(o, "created"),
                  cell_text(json_object_get_string(get(o, "snippet")), CELL_MAX));
    }
    if (n)
        table_print(&t, c->out);
    else
        fprintf(c->out, "no matches\n");
    more_note(c, res, n);
    json_object_put(res);
    return 0;
}

static char *pct_of(json_object *o, const char *k, const char *p)
{
    json_object *v = get(get(o, k), p);
    return v ? cg_sprintf("%lld", (long long)json_object_get_int64(v)) : cg_strdup("-");
}

static void usage_row(table_t *t, json_object *o, json_object *gb, bool total)
{
    char **cells = cg_calloc(t->ncols, sizeof *cells);
    size_t k = 0, ng = json_object_array_length(gb);
    for (size_t i = 0; i < ng; i++)
        cells[k++] = total ? cg_strdup(i == 0 ? "TOTAL" : "")
                           : s_of(o, json_object_get_string(json_object_array_get_idx(gb, i)));
    if (ng == 0)
        cells[k++] = cg_strdup(total ? "TOTAL" : "");
    cells[k++] = i_of(o, "requests");
    cells[k++] = i_of(o, "errors");
    cells[k++] = cg_sprintf("%.1f%%", json_object_get_double(get(o, "error_rate")) * 100);
    cells[k++] = i_of(o, "prompt_tokens");
    cells[k++] = i_of(o, "completion_tokens");
    cells[k++] = cost_of(o, "cost_usd");
    cells[k++] = pct_of(o, "latency_ms", "p50");
    cells[k++] = pct_of(o, "latency_ms", "p95");
    cells[k++] = pct_of(o, "ttft_ms", "p50");
    cells[k++] = pct_of(o, "ttft_ms", "p95");
    cg_assert(k == t->ncols);
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = cg_realloc(t->cells, t->cap * t->ncols * sizeof *t->cells);
    }
    memcpy(&t->cells[t->nrows * t->ncols], cells, t->ncols * sizeof *cells);
    t->nrows++;
    cg_free(cells);
}

static int cmd_usage(cli_t *c, cg_store_ro_t *ro)
{
    if (c->nwords) {
        fprintf(c->err, "clawgate usage: unexpected argument '%s'\n", c->words[0]);
        return 2;
    }
    json_object *res;
    int rc = run_query(c, ro, CG_STORE_Q_USAGE, NULL, "usage", &res);
    if (rc != 0 || !res)
        return rc;
    json_object *gb = get(res, "group_by");
    size_t ng = json_object_array_length(gb);
    static const char *stats[] = {"REQUESTS", "ERRORS", "ERR%",   "IN",       "OUT",
                                  "COST",     "P50 MS", "P95 MS", "P50 TTFT", "P95 TTFT"};
    size_t ncols = (ng ? ng : 1) + CG_ARRAY_LEN(stats);
    const char **heads = cg_calloc(ncols, sizeof *heads);
    bool *right = cg_calloc(ncols, sizeof *right);
    char **upper = cg_calloc(ng ? ng : 1, sizeof *upper);
    size_t k = 0;
    for (size_t i = 0; i < ng; i++) {
        upper[i] = cg_strdup(json_object_get_string(json_object_array_get_idx(gb, i)));
        for (char *p = upper[i]; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        heads[k++] = upper[i];
    }
    if (!ng)
        heads[k++] = "";
    for (size_t i = 0; i < CG_ARRAY_LEN(stats); i++) {
        right[k] = true;
        heads[k++] = stats[i];
    }
    table_t t = {.ncols = ncols, .heads = heads, .right = right};
    json_object *data = get(res, "data");
    for (size_t i = 0; i < json_object_array_length(data); i++)
        usage_row(&t, json_object_array_get_idx(data, i), gb, false);
    usage_row(&t, get(res, "total"), gb, true);
    table_print(&t, c->out);
    for (size_t i = 0; i < ng; i++)
        cg_free(upper[i]);
    cg_free(upper);
    cg_free(heads);
    cg_free(right);
    json_object_put(res);
    return 0;
}

int cg_store_cli_run(int argc, char **argv, const char *db_path, FILE *out, FILE *err)
{
    static const opt_t list_opts[] = {
        {"--since", "since"},   {"--until", "until"},   {"--model", "model"},
        {"--status", "status"}, {"--tenant", "tenant"}, {"--limit", "limit"},
        {"--offset", "offset"},
    };
    static const opt_t show_opts[] = {{"--tenant", "tenant"}};
    static const opt_t search_opts[] = {
        {"--since", "since"}, {"--until", "until"},   {"--tenant", "tenant"},
        {"--limit", "limit"}, {"--offset", "offset"},
    };
    static const opt_t usage_opts[] = {
        {"--by", "group_by"},   {"--group-by", "group_by"}, {"--since", "since"},
        {"--until", "until"},   {"--model", "model"},       {"--tenant", "tenant"},
        {"--status", "status"},
    };
    cli_t c = {.out = out, .err = err};
    int (*cmd)(cli_t *, cg_store_ro_t *) = NULL;
    int rc;
    const char *name;
    if (argc >= 1 && strcmp(argv[0], "usage") == 0) {
        name = "usage";
        cmd = cmd_usage;
        rc = parse_opts(&c, argc - 1, argv + 1, usage_opts, CG_ARRAY_LEN(usage_opts), name);
    } else if (argc >= 2 && strcmp(argv[0], "sessions") == 0 && strcmp(argv[1], "list") == 0) {
        name = "sessions list";
        cmd = cmd_list;
        rc = parse_opts(&c, argc - 2, argv + 2, list_opts, CG_ARRAY_LEN(list_opts), name);
    } else if (argc >= 2 && strcmp(argv[0], "sessions") == 0 && strcmp(argv[1], "show") == 0) {
        name = "sessions show";
        cmd = cmd_show;
        rc = parse_opts(&c, argc - 2, argv + 2, show_opts, CG_ARRAY_LEN(show_opts), name);
    } else if (argc >= 2 && strcmp(argv[0], "sessions") == 0 && strcmp(argv[1], "search") == 0) {
        name = "sessions search";
        cmd = cmd_search;
        rc = parse_opts(&c, argc - 2, argv + 2, search_opts, CG_ARRAY_LEN(search_opts), name);
    } else {
        fprintf(err, "usage: clawgate sessions list|show KEY|search TEXT, clawgate usage\n%s",
                cg_store_cli_usage);
        return 2;
    }
    if (rc == 0 && (!db_path || !*db_path)) {
        fprintf(err, "clawgate %s: no database: pass --db PATH or --config FILE\n", name);
        rc = 2;
    }
    if (rc == 0) {
        char msg[512];
        cg_store_ro_t *ro = cg_store_ro_open(db_path, msg, sizeof msg);
        if (!ro) {
            fprintf(err, "clawgate %s: %s\n", name, msg);
            rc = 1;
        } else {
            rc = cmd(&c, ro);
            cg_store_ro_close(ro);
        }
    }
    cg_store_params_free(&c.params);
    cg_free(c.words);
    fflush(out);
    return rc;
}

int cg_store_cli(int argc, char **argv, const char *db_path)
{
    return cg_store_cli_run(argc, argv, db_path, stdout, stderr);
}
