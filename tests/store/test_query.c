/*
 * test_query.c — the read side (store/query.c, store/cli.c): every endpoint
 * and filter, FTS search, usage aggregates and percentiles, stateful
 * history, and the CLI's tables, JSON and errors.
 */
#include "tests/store/helpers.h"

#include <fcntl.h>

#define DAY 86400000LL
#define T0 1763632800000LL /* 2025-11-20T10:00:00Z */

#define SYS "{\"role\":\"system\",\"content\":\"be brief\"}"
#define U1 "{\"role\":\"user\",\"content\":\"first question about otters\"}"
#define A1 "{\"role\":\"assistant\",\"content\":\"answer one\"}"
#define U2 "{\"role\":\"user\",\"content\":\"second question about badgers\"}"
#define A2 "{\"role\":\"assistant\",\"content\":\"answer two, otters again\"}"

static char *g_dir, *g_path;

typedef struct row {
    const char *req, *key, *tenant, *answered, *asked, *status;
    int64_t t, latency, ttft;
    double cost;
    const char *messages, *reply;
    int64_t prompt, completion;
} row_t;

/* The dataset every test reads (see the expectations in each test). */
static const row_t rows[] = {
    {"r-main-1", "agent:main:main", NULL, "fake/m1", "Fast", "ok", T0, 100, 20, 0.001,
     "[" SYS "," U1 "]", A1, 10, 5},
    {"r-main-2", "agent:main:main", NULL, "fake/m1", "Fast", "ok", T0 + 300000, 200, 40, 0.002,
     "[" SYS "," U1 "," A1 "," U2 "]", A2, 20, 5},
    {"r-ops-1", "agent:ops:main", NULL, "fake/m2", "fake/m2", "ok", T0 + DAY, 300, 60, 0.003,
     "[{\"role\":\"user\",\"content\":\"deploy the weasel service\"}]",
     "{\"role\":\"assistant\",\"content\":\"deployed\"}", 7, 1},
    {"r-ops-2", "agent:ops:main", NULL, NULL, "fake/m2", "error", T0 + DAY + 60000, 5000, -1, 0,
     "[{\"role\":\"user\",\"content\":\"again\"}]", NULL, 0, 0},
    {"r-loose-1", NULL, NULL, "fake/m1", "Fast", "ok", T0 + DAY, 400, 80, 0.01, NULL, NULL, 1, 1},
    {"r-loose-2", NULL, NULL, "fake/m1", "Fast", "ok", T0 + DAY + 1, 500, 90, 0.01, NULL, NULL, 1,
     1},
    {"r-loose-3", NULL, NULL, "fake/m1", "Fast", "ok", T0 + DAY + 2, 600, 100, 0.01, NULL, NULL, 1,
     1},
    {"r-acme-1", "agent:acme:x", "acme", "fake/m1", "Fast", "ok", T0 + 1000, 150, 30, 0.004,
     "[{\"role\":\"user\",\"content\":\"acme stuff\"}]", A1, 3, 3},
    {"r-odd-1", "a b/c?d", NULL, "fake/m1", "Fast", "ok", T0 + 2000, 250, 50, 0.005,
     "[{\"role\":\"user\",\"content\":\"odd key\"}]", A1, 3, 3},
    {"r-cancel", "agent:main:main", NULL, "fake/m1", "Fast", "cancelled", T0 + 400000, 50, 10, 0,
     "[]", NULL, 0, 0},
};

static void build_dataset(void)
{
    char err[512] = "";
    g_dir = tmp_dir();
    g_path = cg_sprintf("%s/q.db", g_dir);
    cg_store_writer_t *w;
    if (cg_store_writer_open(g_path, false, &w, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    for (size_t i = 0; i < CG_ARRAY_LEN(rows); i++) {
        const row_t *r = &rows[i];
        cg_store_exchange_t x = {
            .tenant = r->tenant,
            .session_key = r->key,
            .request_id = r->req,
            .client_api = "chat.completions",
            .model_asked = r->asked,
            .model_answered = r->answered,
            .status = r->status,
            .error_class = strcmp(r->status, "error") == 0 ? "timeout" : NULL,
            .http_status = strcmp(r->status, "error") == 0 ? 504 : 200,
            .prompt_tokens = r->prompt,
            .completion_tokens = r->completion,
            .cost_usd = r->cost,
            .ttft_ms = r->ttft,
            .latency_ms = r->latency,
            .started_ms = r->t,
            .finished_ms = r->t + r->latency,
            .messages_json = r->messages,
            .reply_json = r->reply,
        };
        cg_store_rec_t rec;
        cg_buf_t ab = {0};
        bool fatal;
        cg_store_rec_from_exchange(&x, &rec, &ab);
        if (cg_store_writer_apply(w, &rec, err, sizeof err, &fatal) != 0) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        cg_buf_free(&ab);
    }
    if (cg_store_writer_commit(w, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    cg_store_writer_close(w);
}

/* GET path?qs; returns the parsed body (caller puts) and the status. */
static json_object *get(const char *path, const char *qs, unsigned *status)
{
    char err[512];
    cg_store_ro_t *ro = cg_store_ro_open(g_path, err, sizeof err);
    if (!ro)
        return NULL;
    cg_buf_t out = {0};
    *status = 0;
    int rc = cg_store_http(ro, "GET", path, qs, &out, status);
    cg_store_ro_close(ro);
    json_object *o = rc == 0 && out.data ? json_tokener_parse(out.data) : NULL;
    cg_buf_free(&out);
    return o;
}

static json_object *at(json_object *o, const char *k)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, k, &v);
    return v;
}

static const char *str_at(json_object *o, const char *k)
{
    json_object *v = at(o, k);
    return v ? json_object_get_string(v) : NULL;
}

static size_t ndata(json_object *o)
{
    json_object *d = at(o, "data");
    return d ? json_object_array_length(d) : (size_t)-1;
}

static json_object *item(json_object *o, size_t i)
{
    return json_object_array_get_idx(at(o, "data"), i);
}

/* An OpenAI-shaped error with this status and code. */
#define T_ERROR(o, st, want_status, want_code)                                                     \
    do {                                                                                           \
        T_EQ_INT(st, want_status);                                                                 \
        T_ASSERT(o);                                                                               \
        json_object *e_ = at(o, "error");                                                          \
        T_ASSERT(e_);                                                                              \
        T_ASSERT(str_at(e_, "message") && *str_at(e_, "message"));                                 \
        T_EQ_STR(str_at(e_, "type"),                                                               \
                 (want_status) >= 500 ? "server_error" : "invalid_request_error");                 \
        T_EQ_STR(str_at(e_, "code"), want_code);                                                   \
    } while (0)

static void test_list_sessions(void)
{
    unsigned st;
    json_object *o = get("/v1/sessions", NULL, &st);
    T_EQ_INT(st, 200);
    T_EQ_STR(str_at(o, "object"), "list");
    T_EQ_INT(ndata(o), 4);
    /* most recently updated first: ops (day 2), main (10:06:40), odd, acme */
    T_EQ_STR(str_at(item(o, 0), "key"), "agent:ops:main");
    T_EQ_STR(str_at(item(o, 1), "key"), "agent:main:main");
    T_EQ_STR(str_at(item(o, 2), "key"), "a b/c?d");
    T_EQ_STR(str_at(item(o, 3), "key"), "agent:acme:x");
    json_object *main = item(o, 1);
    T_EQ_INT(json_object_get_int(at(main, "entries")), 5);
    T_EQ_INT(json_object_get_int(at(main, "exchanges")), 3);
    T_EQ_STR(str_at(main, "model"), "fake/m1");
    T_EQ_STR(str_at(main, "tenant"), "default");
    T_EQ_STR(str_at(main, "created"), "2025-11-20T10:00:00.000Z");
    T_EQ_STR(str_at(main, "updated"), "2025-11-20T10:06:40.050Z");
    T_ASSERT(json_object_get_double(at(main, "cost_usd")) == 0.003);
    T_ASSERT(!json_object_get_boolean(at(o, "has_more")));
    json_object_put(o);
}

static void test_list_paging(void)
{
    unsigned st;
    json_object *o = get("/v1/sessions", "limit=3", &st);
    T_EQ_INT(st, 200);
    T_EQ_INT(ndata(o), 3);
    T_ASSERT(json_object_get_boolean(at(o, "has_more")));
    json_object_put(o);
    o = get("/v1/sessions", "limit=3&offset=3", &st);
    T_EQ_INT(ndata(o), 1);
    T_EQ_STR(str_at(item(o, 0), "key"), "agent:acme:x");
    T_ASSERT(!json_object_get_boolean(at(o, "has_more")));
    T_EQ_INT(json_object_get_int(at(o, "offset")), 3);
    json_object_put(o);
    o = get("/v1/sessions", "offset=10", &st);
    T_EQ_INT(st, 200);
    T_EQ_INT(ndata(o), 0);
    json_object_put(o);
}

static void test_list_filters(void)
{
    unsigned st;
    json_object *o = get("/v1/sessions", "model=fake%2Fm2", &st);
    T_EQ_INT(st, 200);
    T_EQ_INT(ndata(o), 1);
    T_EQ_STR(str_at(item(o, 0), "key"), "agent:ops:main");
    json_object_put(o);
    o = get("/v1/sessions", "status=error", &st);
    T_EQ_INT(ndata(o), 1);
    T_EQ_STR(str_at(item(o, 0), "key"), "agent:ops:main");
    json_object_put(o);
    o = get("/v1/sessions", "status=cancelled", &st);
    T_EQ_INT(ndata(o), 1);
    T_EQ_STR(str_at(item(o, 0), "key"), "agent:main:main");
    json_object_put(o);
    o = get("/v1/sessions", "tenant=acme", &st);
    T_EQ_INT(ndata(o), 1);
    T_EQ_STR(str_at(item(o, 0), "key"), "agent:acme:x");
    json_object_put(o);
    /* since/until on the last update; ISO and unix seconds */
    o = get("/v1/sessions", "since=2025-11-21", &st);
    T_EQ_INT(ndata(o), 1);
    json_object_put(o);
    o = get("/v1/sessions", "until=2025-11-21T00%3A00%3A00Z", &st);
    T_EQ_INT(ndata(o), 3);
    json_object_put(o);
    o = get("/v1/sessions", "since=1763632800&until=1763633000", &st); /* 10:00:00 .. 10:03:20 */
    T_EQ_INT(ndata(o), 2);                                             /* acme and odd */
    json_object_put(o);
    /* an age: everything in the dataset is older than a day */
    o = get("/v1/sessions", "since=1d", &st);
    T_EQ_INT(st, 200);
    T_EQ_INT(ndata(o), 0);
    json_object_put(o);
    /* filters combine */
    o = get("/v1/sessions", "model=fake%2Fm1&since=2025-11-20T10:00:01Z&tenant=default", &st);
    T_EQ_INT(ndata(o), 2); /* main, odd */
    json_object_put(o);
}

static void test_bad_filters(void)
{
    static const char *bad[][2] = {
        {"since=yesterday", "invalid_parameter"}, {"until=2025-02-30", "invalid_parameter"},
        {"limit=0", "invalid_parameter"},         {"limit=100000", "invalid_parameter"},
        {"limit=ten", "invalid_parameter"},       {"offset=-1", "invalid_parameter"},
        {"status=weird", "invalid_parameter"},    {"colour=red", "invalid_parameter"},
        {"model=%zz", "invalid_parameter"},       {"model=a%00b", "invalid_parameter"},
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(bad); i++) {
        unsigned st;
        json_object *o = get("/v1/sessions", bad[i][0], &st);
        T_ERROR(o, st, 400, bad[i][1]);
        json_object_put(o);
    }
    unsigned st;
    json_object *o = get("/v1/sessions", "colour=red", &st);
    T_CONTAINS(str_at(at(o, "error"), "message"), "unknown parameter 'colour'");
    json_object_put(o);
    o = get("/v1/usage", "since=soon", &st);
    T_ERROR(o, st, 400, "invalid_parameter");
    T_CONTAINS(str_at(at(o, "error"), "message"), "since");
    json_object_put(o);
}

static void test_routes_and_methods(void)
{
    char err[512];
    cg_store_ro_t *ro = cg_store_ro_open(g_path, err, sizeof err);
    T_ASSERTF(ro, "%s", err);
    cg_buf_t out = {0};
    unsigned st = 0;
    T_EQ_INT(cg_store_http(ro, "GET", "/v1/chat/completions", NULL, &out, &st), CG_ENOENT);
    T_EQ_INT(cg_store_http(ro, "GET", "/v1/sessionsx", NULL, &out, &st), CG_ENOENT);
    T_EQ_INT(cg_store_http(ro, "GET", "/v1/usage/x", NULL, &out, &st), CG_ENOENT);
    T_EQ_INT(out.len, 0);
    T_EQ_INT(cg_store_http(ro, "POST", "/v1/sessions", NULL, &out, &st), 0);
    T_EQ_INT(st, 405);
    json_object *o = json_tokener_parse(out.data);
    T_ERROR(o, st, 405, "method_not_allowed");
    json_object_put(o);
    cg_buf_reset(&out);
    T_EQ_INT(cg_store_http(ro, "DELETE", "/v1/sessions/agent:main:main", NULL, &out, &st), 0);
    T_EQ_INT(st, 405);
    cg_buf_reset(&out);
    T_EQ_INT(cg_store_http(ro, "GET", "/v1/sessions/", "", &out, &st), 0);
    T_EQ_INT(st, 200);
    cg_buf_free(&out);
    cg_store_ro_close(ro);
}

static void test_show_session(void)
{
    unsigned st;
    json_object *o = get("/v1/sessions/agent%3Amain%3Amain", NULL, &st);
    T_EQ_INT(st, 200);
    T_EQ_STR(str_at(o, "object"), "session");
    T_EQ_STR(str_at(o, "key"), "agent:main:main");
    json_object *entries = at(o, "entries");
    T_EQ_INT(json_object_array_length(entries), 5);
    static const char *want_roles[] = {"system", "user", "assistant", "user", "assistant"};
    for (size_t i = 0; i < 5; i++) {
        json_object *e = json_object_array_get_idx(entries, i);
        T_EQ_INT(json_object_get_int(at(e, "seq")), (int)i);
        T_EQ_STR(str_at(e, "role"), want_roles[i]);
        T_EQ_STR(str_at(e, "type"), "message");
        /* content is the message object itself, not a string */
        T_ASSERT(json_object_is_type(at(e, "content"), json_type_object));
        T_EQ_STR(str_at(at(e, "content"), "role"), want_roles[i]);
    }
    T_EQ_STR(str_at(json_object_array_get_idx(entries, 1), "request_id"), "r-main-1");
    T_EQ_STR(str_at(json_object_array_get_idx(entries, 3), "request_id"), "r-main-2");
    T_EQ_STR(str_at(at(json_object_array_get_idx(entries, 4), "content"), "content"),
             "answer two, otters again");
    json_object *xs = at(o, "exchanges");
    T_EQ_INT(json_object_array_length(xs), 3);
    json_object *x0 = json_object_array_get_idx(xs, 0);
    T_EQ_STR(str_at(x0, "request_id"), "r-main-1");
    T_EQ_STR(str_at(x0, "status"), "ok");
    T_EQ_INT(json_object_get_int(at(at(x0, "usage"), "prompt_tokens")), 10);
    T_EQ_INT(json_object_get_int(at(x0, "ttft_ms")), 20);
    T_ASSERT(json_object_is_type(at(x0, "attempts"), json_type_array));
    T_EQ_STR(str_at(json_object_array_get_idx(xs, 2), "status"), "cancelled");
    json_object_put(o);

    /* the key is URL-decoded (but '+' stays '+' in a path) */
    o = get("/v1/sessions/a%20b%2Fc%3Fd", NULL, &st);
    T_EQ_INT(st, 200);
    T_EQ_STR(str_at(o, "key"), "a b/c?d");
    json_object_put(o);
    o = get("/v1/sessions/a+b%2Fc%3Fd", NULL, &st);
    T_ERROR(o, st, 404, "session_not_found");
    json_object_put(o);
    o = get("/v1/sessions/nope", NULL, &st);
    T_ERROR(o, st, 404, "session_not_found");
    T_CONTAINS(str_at(at(o, "error"), "message"), "no session 'nope'");
    json_object_put(o);
    o = get("/v1/sessions/bad%zzescape", NULL, &st);
    T_ERROR(o, st, 400, "invalid_parameter");
    json_object_put(o);
    /* tenant scoping */
    o = get("/v1/sessions/agent:acme:x", "tenant=default", &st);
    T_EQ_INT(st, 404);
    json_object_put(o);
    o = get("/v1/sessions/agent:acme:x", "tenant=acme", &st);
    T_EQ_INT(st, 200);
    T_EQ_STR(str_at(o, "tenant"), "acme");
    json_object_put(o);
    /* the search path is search; a session named "search" is %-encoded */
    o = get("/v1/sessions/%73earch", NULL, &st);
    T_ERROR(o, st, 404, "session_not_found");
    json_object_put(o);
}

static void test_search(void)
{
    unsigned st;
    json_object *o = get("/v1/sessions/search", "q=otters", &st);
    T_EQ_INT(st, 200);
    T_EQ_INT(ndata(o), 2); /* U1 and A2 */
    T_EQ_STR(str_at(o, "query"), "otters");
    for (size_t i = 0; i < 2; i++) {
        json_object *h = item(o, i);
        T_EQ_STR(str_at(h, "key"), "agent:main:main");
        T_CONTAINS(str_at(h, "snippet"), "**otters**");
        T_ASSERT(str_at(h, "request_id"));
    }
    json_object_put(o);
    /* case and diacritics do not matter; every word must be in the entry */
    o = get("/v1/sessions/search", "q=%C3%93TTERS+question", &st);
    T_EQ_INT(ndata(o), 1);
    T_EQ_INT(json_object_get_int(at(item(o, 0), "seq")), 1);
    json_object_put(o);
    o = get("/v1/sessions/search", "q=otters+badgers", &st);
    T_EQ_INT(st, 200);
    T_EQ_INT(ndata(o), 0);
    json_object_put(o);
    o = get("/v1/sessions/search", "q=weasel", &st);
    T_EQ_INT(ndata(o), 1);
    T_EQ_STR(str_at(item(o, 0), "key"), "agent:ops:main");
    json_object_put(o);
    /* FTS5 syntax in the words is text, never a 500 or a syntax error */
    static const char *odd[] = {"q=%22otters",  "q=NEAR(otters", "q=otters*",
                                "q=a+OR+b+AND", "q=-x",          "q=%27%3B+DROP+TABLE+entries"};
    for (size_t i = 0; i < CG_ARRAY_LEN(odd); i++) {
        o = get("/v1/sessions/search", odd[i], &st);
        T_ASSERTF(st == 200, "%s: status %u", odd[i], st);
        json_object_put(o);
    }
    /* tenant filter and paging */
    o = get("/v1/sessions/search", "q=otters&limit=1", &st);
    T_EQ_INT(ndata(o), 1);
    T_ASSERT(json_object_get_boolean(at(o, "has_more")));
    json_object_put(o);
    o = get("/v1/sessions/search", "q=otters&tenant=acme", &st);
    T_EQ_INT(ndata(o), 0);
    json_object_put(o);
    o = get("/v1/sessions/search", NULL, &st);
    T_ERROR(o, st, 400, "invalid_parameter");
    json_object_put(o);
    o = get("/v1/sessions/search", "q=+++", &st);
    T_ERROR(o, st, 400, "invalid_parameter");
    json_object_put(o);
}

static json_object *find_group(json_object *o, const char *k, const char *v, const char *k2,
                               const char *v2)
{
    for (size_t i = 0; i < ndata(o); i++) {
        json_object *g = item(o, i);
        if (strcmp(str_at(g, k), v) == 0 && (!k2 || strcmp(str_at(g, k2), v2) == 0))
            return g;
    }
    return NULL;
}

static int64_t pct(json_object *g, const char *what, const char *p)
{
    json_object *v = at(at(g, what), p);
    return v ? json_object_get_int64(v) : -1;
}

static void test_usage(void)
{
    unsigned st;
    json_object *o = get("/v1/usage", "group_by=model", &st);
    T_EQ_INT(st, 200);
    T_EQ_STR(str_at(o, "object"), "usage");
    T_EQ_INT(ndata(o), 2);
    json_object *m1 = find_group(o, "model", "fake/m1", NULL, NULL);
    T_ASSERT(m1);
    /* fake/m1: 8 requests, one cancelled; ok latencies 100 150 200 250 400
     * 500 600 -> p50 = 4th = 250, p95 = 7th = 600; ttft 20 30 40 50 80 90
     * 100 -> 50, 100 */
    T_EQ_INT(json_object_get_int(at(m1, "requests")), 8);
    T_EQ_INT(json_object_get_int(at(m1, "errors")), 0);
    T_EQ_INT(json_object_get_int(at(m1, "cancelled")), 1);
    T_EQ_INT(pct(m1, "latency_ms", "p50"), 250);
    T_EQ_INT(pct(m1, "latency_ms", "p95"), 600);
    T_EQ_INT(pct(m1, "ttft_ms", "p50"), 50);
    T_EQ_INT(pct(m1, "ttft_ms", "p95"), 100);
    T_EQ_INT(json_object_get_int(at(m1, "prompt_tokens")), 10 + 20 + 3 + 3 + 3);
    /* 0.001 + 0.002 + 0.03 + 0.004 + 0.005 = 0.042, exactly as printed */
    T_ASSERTF(json_object_get_double(at(m1, "cost_usd")) == 0.042, "%.17g",
              json_object_get_double(at(m1, "cost_usd")));
    /* fake/m2: one ok, one error (asked, never answered) */
    json_object *m2 = find_group(o, "model", "fake/m2", NULL, NULL);
    T_ASSERT(m2);
    T_EQ_INT(json_object_get_int(at(m2, "requests")), 2);
    T_EQ_INT(json_object_get_int(at(m2, "errors")), 1);
    T_ASSERT(json_object_get_double(at(m2, "error_rate")) == 0.5);
    T_EQ_INT(pct(m2, "latency_ms", "p50"), 300); /* the failed one is not a latency sample */
    json_object *tot = at(o, "total");
    T_EQ_INT(json_object_get_int(at(tot, "requests")), 10);
    T_EQ_INT(json_object_get_int(at(tot, "errors")), 1);
    T_ASSERT(json_object_get_double(at(tot, "error_rate")) == 0.1);
    T_ASSERT(json_object_get_double(at(tot, "cost_usd")) == 0.045);
    json_object_put(o);

    o = get("/v1/usage", "group_by=model,day", &st);
    T_EQ_INT(st, 200);
    T_EQ_INT(ndata(o), 3); /* m1 day 1, m1 day 2, m2 day 2 */
    json_object *g = find_group(o, "model", "fake/m1", "day", "2025-11-21");
    T_ASSERT(g);
    T_EQ_INT(json_object_get_int(at(g, "requests")), 3);
    T_EQ_INT(pct(g, "latency_ms", "p50"), 500);
    g = find_group(o, "model", "fake/m1", "day", "2025-11-20");
    T_EQ_INT(json_object_get_int(at(g, "requests")), 5);
    T_EQ_INT(json_object_array_length(at(o, "group_by")), 2);
    json_object_put(o);

    /* filters */
    o = get("/v1/usage", "group_by=day&since=2025-11-21&model=fake%2Fm2", &st);
    T_EQ_INT(ndata(o), 1);
    T_EQ_INT(json_object_get_int(at(item(o, 0), "requests")), 2);
    T_EQ_STR(str_at(o, "since"), "2025-11-21T00:00:00.000Z");
    json_object_put(o);
    o = get("/v1/usage", "group_by=tenant,status", &st);
    T_ASSERT(find_group(o, "tenant", "acme", "status", "ok"));
    T_EQ_INT(
        json_object_get_int(at(find_group(o, "tenant", "default", "status", "ok"), "requests")), 7);
    json_object_put(o);
    /* no grouping: the total alone, with an empty group list */
    o = get("/v1/usage", "group_by=", &st);
    T_EQ_INT(st, 200);
    T_EQ_INT(ndata(o), 1);
    json_object_put(o);
    o = get("/v1/usage", "since=2030-01-01", &st);
    T_EQ_INT(st, 200);
    T_EQ_INT(ndata(o), 0);
    T_EQ_INT(json_object_get_int(at(at(o, "total"), "requests")), 0);
    T_ASSERT(at(at(at(o, "total"), "latency_ms"), "p50") == NULL);
    json_object_put(o);
    static const char *bad[] = {"group_by=colour", "group_by=model,model", "group_by=model,,x",
                                "status=fine"};
    for (size_t i = 0; i < CG_ARRAY_LEN(bad); i++) {
        o = get("/v1/usage", bad[i], &st);
        T_ERROR(o, st, 400, "invalid_parameter");
        json_object_put(o);
    }
}

static void test_history(void)
{
    char err[512];
    cg_store_ro_t *ro = cg_store_ro_open(g_path, err, sizeof err);
    T_ASSERTF(ro, "%s", err);
    cg_buf_t out = {0};
    T_EQ_INT(cg_store_history(ro, NULL, "agent:main:main", &out), 0);
    T_EQ_STR(out.data, "[" SYS "," U1 "," A1 "," U2 "," A2 "]");
    cg_buf_reset(&out);
    T_EQ_INT(cg_store_history(ro, "default", "no-such-session", &out), 0);
    T_EQ_STR(out.data, "[]");
    cg_buf_reset(&out);
    T_EQ_INT(cg_store_history(ro, NULL, "agent:acme:x", &out), 0); /* another tenant's */
    T_EQ_STR(out.data, "[]");
    cg_buf_reset(&out);
    T_EQ_INT(cg_store_history(ro, "acme", "agent:acme:x", &out), 0);
    T_CONTAINS(out.data, "acme stuff");
    cg_buf_reset(&out);
    /* after a compaction: its summary, then the entries it kept */
    T_EQ_INT(sql_exec(g_path, "INSERT INTO entries (session_id, seq, type, role, content, text, "
                              "created_ms) SELECT id, 5, 'compaction', NULL, "
                              "'{\"summary\":\"they asked about \\\"otters\\\"\","
                              "\"first_kept_seq\":3,\"tokens_before\":900}', 'summary', 0 "
                              "FROM sessions WHERE key = 'agent:main:main'"),
             0);
    T_EQ_INT(cg_store_history(ro, NULL, "agent:main:main", &out), 0);
    json_object *h = json_tokener_parse(out.data);
    T_ASSERTF(h && json_object_is_type(h, json_type_array), "%s", out.data);
    T_EQ_INT(json_object_array_length(h), 3);
    json_object *s = json_object_array_get_idx(h, 0);
    T_EQ_STR(str_at(s, "role"), "user");
    T_CONTAINS(str_at(s, "content"), "they asked about \"otters\"");
    T_EQ_STR(str_at(json_object_array_get_idx(h, 1), "content"), "second question about badgers");
    T_EQ_STR(str_at(json_object_array_get_idx(h, 2), "role"), "assistant");
    json_object_put(h);
    T_EQ_INT(sql_exec(g_path, "DELETE FROM entries WHERE type = 'compaction'"), 0);
    cg_buf_free(&out);
    cg_store_ro_close(ro);
}

/* ---- CLI ---- */

typedef struct run {
    int rc;
    char *out, *err;
} run_t;

static run_t cli(const char *db, const char *args)
{
    char *copy = cg_strdup(args);
    char *argv[32];
    int argc = 0;
    for (char *tok = strtok(copy, " "); tok && argc < 31; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    run_t r = {0};
    size_t on, en;
    FILE *out = open_memstream(&r.out, &on), *err = open_memstream(&r.err, &en);
    r.rc = cg_store_cli_run(argc, argv, db, out, err);
    fclose(out);
    fclose(err);
    cg_free(copy);
    return r;
}

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

static void test_cli_sessions(void)
{
    run_t r = cli(g_path, "sessions list");
    T_EQ_INT(r.rc, 0);
    T_CONTAINS(r.out, "KEY");
    T_CONTAINS(r.out, "EXCHANGES");
    T_CONTAINS(r.out, "agent:main:main");
    T_CONTAINS(r.out, "2025-11-20 10:06:40");
    T_CONTAINS(r.out, "$0.0030");
    /* columns are aligned: every line has "agent" or "a b" at column 0 and
     * the TENANT column starts at the same offset on each line */
    const char *hdr_tenant = strstr(r.out, "TENANT");
    size_t col = (size_t)(hdr_tenant - r.out);
    const char *line2 = strchr(r.out, '\n') + 1;
    T_ASSERT(strncmp(line2 + col, "default", 7) == 0);
    T_EQ_STR(r.err, "");
    run_free(&r);

    r = cli(g_path, "sessions list --limit 1 --status error");
    T_EQ_INT(r.rc, 0);
    T_CONTAINS(r.out, "agent:ops:main");
    run_free(&r);
    r = cli(g_path, "sessions list --limit=1");
    T_CONTAINS(r.out, "(more: --offset 1)");
    run_free(&r);
    r = cli(g_path, "sessions list --since 2030-01-01");
    T_EQ_INT(r.rc, 0);
    T_CONTAINS(r.out, "no sessions");
    run_free(&r);

    r = cli(g_path, "sessions list --json");
    T_EQ_INT(r.rc, 0);
    json_object *o = json_tokener_parse(r.out);
    T_ASSERTF(o, "not JSON: %s", r.out);
    T_EQ_INT(ndata(o), 4);
    json_object_put(o);
    run_free(&r);

    r = cli(g_path, "sessions show agent:main:main");
    T_EQ_INT(r.rc, 0);
    T_CONTAINS(r.out, "session agent:main:main (tenant default)");
    T_CONTAINS(r.out, "first question about otters");
    T_CONTAINS(r.out, "assistant");
    T_CONTAINS(r.out, "exchanges:");
    T_CONTAINS(r.out, "r-main-2");
    T_CONTAINS(r.out, "cancelled");
    run_free(&r);
    r = cli(g_path, "sessions show agent:ops:main --json");
    T_EQ_INT(r.rc, 0);
    o = json_tokener_parse(r.out);
    T_ASSERT(o);
    T_EQ_INT(json_object_array_length(at(o, "exchanges")), 2);
    json_object_put(o);
    run_free(&r);
    r = cli(g_path, "sessions show agent:ops:main");
    T_CONTAINS(r.out, "error (timeout)");
    run_free(&r);
    r = cli(g_path, "sessions show nope");
    T_EQ_INT(r.rc, 1);
    T_CONTAINS(r.err, "no session 'nope'");
    run_free(&r);
    r = cli(g_path, "sessions show");
    T_EQ_INT(r.rc, 2);
    T_CONTAINS(r.err, "usage: clawgate sessions show KEY");
    run_free(&r);

    r = cli(g_path, "sessions search otters");
    T_EQ_INT(r.rc, 0);
    T_CONTAINS(r.out, "SNIPPET");
    T_CONTAINS(r.out, "**otters**");
    run_free(&r);
    r = cli(g_path, "sessions search first otters --json");
    o = json_tokener_parse(r.out);
    T_ASSERT(o);
    T_EQ_INT(ndata(o), 1);
    T_EQ_STR(str_at(o, "query"), "first otters");
    json_object_put(o);
    run_free(&r);
    r = cli(g_path, "sessions search zebras");
    T_EQ_INT(r.rc, 0);
    T_CONTAINS(r.out, "no matches");
    run_free(&r);
}

static void test_cli_usage(void)
{
    run_t r = cli(g_path, "usage --by model,day");
    T_EQ_INT(r.rc, 0);
    T_CONTAINS(r.out, "MODEL");
    T_CONTAINS(r.out, "DAY");
    T_CONTAINS(r.out, "P95 TTFT");
    T_CONTAINS(r.out, "fake/m1");
    T_CONTAINS(r.out, "2025-11-21");
    T_CONTAINS(r.out, "TOTAL");
    T_CONTAINS(r.out, "10.0%"); /* the total's error rate */
    run_free(&r);
    r = cli(g_path, "usage");
    T_EQ_INT(r.rc, 0);
    T_CONTAINS(r.out, "MODEL");
    T_CONTAINS(r.out, "$0.0420");
    run_free(&r);
    r = cli(g_path, "usage --since 2025-11-21 --json");
    T_EQ_INT(r.rc, 0);
    json_object *o = json_tokener_parse(r.out);
    T_ASSERT(o);
    T_EQ_INT(json_object_get_int(at(at(o, "total"), "requests")), 5);
    json_object_put(o);
    run_free(&r);
}

static void test_cli_errors(void)
{
    run_t r = cli(g_path, "usage --since bogus");
    T_EQ_INT(r.rc, 2);
    T_CONTAINS(r.err, "clawgate usage: since: 'bogus' is not a time");
    T_EQ_STR(r.out, "");
    run_free(&r);
    r = cli(g_path, "usage --by colour");
    T_EQ_INT(r.rc, 2);
    run_free(&r);
    r = cli(g_path, "sessions list --colour red");
    T_EQ_INT(r.rc, 2);
    T_CONTAINS(r.err, "unknown option '--colour'");
    run_free(&r);
    r = cli(g_path, "sessions list --since");
    T_EQ_INT(r.rc, 2);
    T_CONTAINS(r.err, "--since needs a value");
    run_free(&r);
    r = cli(g_path, "sessions frobnicate");
    T_EQ_INT(r.rc, 2);
    T_CONTAINS(r.err, "usage:");
    run_free(&r);
    char *missing = cg_sprintf("%s/none.db", g_dir);
    r = cli(missing, "sessions list");
    T_EQ_INT(r.rc, 1);
    T_CONTAINS(r.err, "no database here");
    run_free(&r);
    cg_free(missing);
    r = cli(NULL, "usage");
    T_EQ_INT(r.rc, 2);
    T_CONTAINS(r.err, "pass --db PATH or --config FILE");
    run_free(&r);
}

/* The public entry point writes to stdout. */
static void test_cli_stdout(void)
{
    char *path = cg_sprintf("%s/stdout.txt", g_dir);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    T_ASSERT(fd >= 0 && saved >= 0);
    dup2(fd, 1);
    close(fd);
    char *argv[] = {"sessions", "list", "--json", NULL};
    int rc = cg_store_cli(3, argv, g_path);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    T_EQ_INT(rc, 0);
    char *text = NULL;
    FILE *f = fopen(path, "r");
    T_ASSERT(f);
    cg_buf_t b = {0};
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        cg_buf_append(&b, tmp, n);
    fclose(f);
    text = cg_buf_steal(&b, NULL);
    T_CONTAINS(text, "\"agent:main:main\"");
    cg_free(text);
    cg_free(path);
}

int main(void)
{
    cg_log_set_level(CG_LOG_WARN);
    build_dataset();
    T_RUN(test_list_sessions);
    T_RUN(test_list_paging);
    T_RUN(test_list_filters);
    T_RUN(test_bad_filters);
    T_RUN(test_routes_and_methods);
    T_RUN(test_show_session);
    T_RUN(test_search);
    T_RUN(test_usage);
    T_RUN(test_history);
    T_RUN(test_cli_sessions);
    T_RUN(test_cli_usage);
    T_RUN(test_cli_errors);
    T_RUN(test_cli_stdout);
    if (getenv("CG_TEST_KEEP"))
        printf("# kept %s\n", g_path);
    else
        rm_tree(g_dir);
    cg_free(g_dir);
    cg_free(g_path);
    T_DONE();
}
