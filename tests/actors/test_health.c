/*
 * test_health.c — the pure health rules: attempt plans (pinned, adaptive,
 * skipping, the all-cooling last resort), cooldown steps and Retry-After,
 * peak EWMA, sample/probe bookkeeping and the status document. No threads.
 */
#include "actors/health.h"
#include "tests/t.h"

#include <math.h>

#define S 1000000000ull
#define T0 (1000ull * S) /* an arbitrary monotonic "now" */
#define W0 1700000000000ll

/* Providers a (models m1, m2), b (m1), c (m1). Primary a/m1; fallbacks
 * b/m1, c/m1, a/m2. */
typedef struct fix {
    cg_config_t c;
    cg_provider_t p[3];
    cg_model_t ma[2], mb[1], mc[1];
    cg_model_t *fb[4];
} fix_t;

static fix_t F;

static void model_init(cg_model_t *m, cg_provider_t *p, const char *ref)
{
    memset(m, 0, sizeof *m);
    m->provider = p;
    m->ref = (char *)ref;
    m->id = (char *)strchr(ref, '/') + 1;
    m->name = m->id;
}

static cg_config_t *fixture(bool adaptive)
{
    memset(&F, 0, sizeof F);
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        F.p[i].name = (char *)names[i];
        F.p[i].base_url = (char *)"http://127.0.0.1:1";
        F.p[i].available = true;
    }
    model_init(&F.ma[0], &F.p[0], "a/m1");
    model_init(&F.ma[1], &F.p[0], "a/m2");
    model_init(&F.mb[0], &F.p[1], "b/m1");
    model_init(&F.mc[0], &F.p[2], "c/m1");
    F.p[0].models = F.ma;
    F.p[0].n_models = 2;
    F.p[1].models = F.mb;
    F.p[1].n_models = 1;
    F.p[2].models = F.mc;
    F.p[2].n_models = 1;
    F.c.providers = F.p;
    F.c.n_providers = 3;
    F.c.primary = &F.ma[0];
    F.fb[0] = &F.mb[0];
    F.fb[1] = &F.mc[0];
    F.fb[2] = &F.ma[1];
    F.fb[3] = &F.mb[0]; /* a duplicate: tried once */
    F.c.fallbacks = F.fb;
    F.c.n_fallbacks = 4;
    F.c.settings.adaptive = adaptive;
    return &F.c;
}

static cg_health_model_t *hmodel(cg_health_t *h, const char *ref)
{
    return (cg_health_model_t *)cg_health_find_model(h, ref);
}

static cg_health_provider_t *hprov(cg_health_t *h, const char *name)
{
    return (cg_health_provider_t *)cg_health_find_provider(h, name);
}

/* The plan as "ref,ref,..." */
static const char *plan_str(const cg_health_t *h, const cg_config_t *c, const cg_model_t *res,
                            uint64_t now)
{
    static char buf[256];
    const cg_model_t *out[16];
    size_t n = cg_health_plan(h, c, res, now, out, 16);
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(buf, ",");
        strcat(buf, out[i]->ref);
    }
    return buf;
}

static void test_falls_back(void)
{
    T_ASSERT(!cg_health_falls_back("format"));
    T_ASSERT(!cg_health_falls_back("context_overflow"));
    T_ASSERT(!cg_health_falls_back(NULL));
    const char *yes[] = {"timeout", "overloaded",      "rate_limit", "auth",
                         "billing", "model_not_found", "unknown"};
    for (size_t i = 0; i < CG_ARRAY_LEN(yes); i++)
        T_ASSERTF(cg_health_falls_back(yes[i]), "%s should fall back", yes[i]);
}

static void test_cooldown_steps(void)
{
    const char *generic[] = {"rate_limit", "overloaded", "timeout", "unknown", "model_not_found"};
    for (size_t i = 0; i < CG_ARRAY_LEN(generic); i++) {
        T_EQ_INT(cg_health_cooldown_ns(generic[i], 1, 0), 30 * S);
        T_EQ_INT(cg_health_cooldown_ns(generic[i], 2, 0), 60 * S);
        T_EQ_INT(cg_health_cooldown_ns(generic[i], 3, 0), 300 * S);
        T_EQ_INT(cg_health_cooldown_ns(generic[i], 9, 0), 300 * S);
    }
    /* Retry-After wins when longer, never when shorter; capped at a day. */
    T_EQ_INT(cg_health_cooldown_ns("rate_limit", 1, 90000), 90 * S);
    T_EQ_INT(cg_health_cooldown_ns("rate_limit", 3, 5000), 300 * S);
    T_EQ_INT(cg_health_cooldown_ns("rate_limit", 1, 365ll * 86400 * 1000), 86400 * S);
    /* auth: 10 min doubling to 60 min */
    T_EQ_INT(cg_health_cooldown_ns("auth", 1, 0), 600 * S);
    T_EQ_INT(cg_health_cooldown_ns("auth", 2, 0), 1200 * S);
    T_EQ_INT(cg_health_cooldown_ns("auth", 3, 0), 2400 * S);
    T_EQ_INT(cg_health_cooldown_ns("auth", 4, 0), 3600 * S);
    T_EQ_INT(cg_health_cooldown_ns("auth", 100, 0), 3600 * S);
    /* billing: 5 h doubling to 24 h */
    T_EQ_INT(cg_health_cooldown_ns("billing", 1, 0), 5 * 3600 * S);
    T_EQ_INT(cg_health_cooldown_ns("billing", 2, 0), 10 * 3600 * S);
    T_EQ_INT(cg_health_cooldown_ns("billing", 3, 0), 20 * 3600 * S);
    T_EQ_INT(cg_health_cooldown_ns("billing", 4, 0), 24 * 3600 * S);
    /* no cooldown for the request's own faults */
    T_EQ_INT(cg_health_cooldown_ns("format", 1, 60000), 0);
    T_EQ_INT(cg_health_cooldown_ns("context_overflow", 3, 0), 0);
}

static void test_ewma_peak(void)
{
    double v = -1;
    uint64_t at = 0;
    T_ASSERT(cg_health_ewma_read(v, at, T0) < 0);
    cg_health_ewma_observe(&v, &at, 100.0, T0);
    T_ASSERT(v == 100.0);
    /* worse: replaces at once, however little time passed */
    cg_health_ewma_observe(&v, &at, 500.0, T0 + 1);
    T_ASSERT(v == 500.0);
    /* better: blends by elapsed time (one tau: weight e^-1 on the old) */
    cg_health_ewma_observe(&v, &at, 100.0, T0 + 1 + CG_HEALTH_TAU_NS);
    double want = 500.0 * exp(-1.0) + 100.0 * (1 - exp(-1.0));
    T_ASSERTF(fabs(v - want) < 1e-6, "v %f want %f", v, want);
    /* better but immediately after: barely moves */
    double before = v;
    cg_health_ewma_observe(&v, &at, 1.0, at);
    T_ASSERT(v == before);
    /* reading decays towards 0 with idle time */
    double r0 = cg_health_ewma_read(v, at, at);
    double r1 = cg_health_ewma_read(v, at, at + 2 * CG_HEALTH_TAU_NS);
    T_ASSERT(r0 == v);
    T_ASSERTF(fabs(r1 - v * exp(-2.0)) < 1e-6, "r1 %f", r1);
}

static void test_plan_pinned(void)
{
    cg_config_t *c = fixture(false);
    /* no health yet: configured order, duplicates once */
    T_EQ_STR(plan_str(NULL, c, c->primary, T0), "a/m1,b/m1,c/m1,a/m2");
    T_EQ_STR(plan_str(NULL, c, NULL, T0), "a/m1,b/m1,c/m1,a/m2");
    cg_health_t *h = cg_health_new(c);
    T_EQ_STR(plan_str(h, c, c->primary, T0), "a/m1,b/m1,c/m1,a/m2");
    /* an explicit choice goes first, the primary last */
    T_EQ_STR(plan_str(h, c, &F.mc[0], T0), "c/m1,b/m1,a/m2,a/m1");
    /* a model outside the chain */
    cg_config_t *cc = c;
    cc->n_fallbacks = 1;
    T_EQ_STR(plan_str(h, c, &F.ma[1], T0), "a/m2,b/m1,a/m1");
    cc->n_fallbacks = 4;
    /* max bounds the output */
    const cg_model_t *out[2];
    T_EQ_INT(cg_health_plan(h, c, c->primary, T0, out, 2), 2);
    cg_health_free(h);
}

static void test_plan_skips(void)
{
    cg_config_t *c = fixture(false);
    cg_health_t *h = cg_health_new(c);
    /* cooling */
    hmodel(h, "b/m1")->cooldown_until_ns = T0 + 10 * S;
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,c/m1,a/m2");
    T_EQ_STR(plan_str(h, c, NULL, T0 + 11 * S), "a/m1,b/m1,c/m1,a/m2"); /* expired */
    hmodel(h, "b/m1")->cooldown_until_ns = 0;
    /* provider down: both its models go */
    hprov(h, "a")->reach = CG_REACH_DOWN;
    T_EQ_STR(plan_str(h, c, NULL, T0), "b/m1,c/m1");
    hprov(h, "a")->reach = CG_REACH_UP;
    /* unloaded model */
    hmodel(h, "a/m1")->unloaded = true;
    T_EQ_STR(plan_str(h, c, NULL, T0), "b/m1,c/m1,a/m2");
    hmodel(h, "a/m1")->unloaded = false;
    /* failed, stalled, stopped actors */
    hprov(h, "b")->run = CG_RUN_FAILED;
    hprov(h, "c")->run = CG_RUN_STALLED;
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,a/m2");
    hprov(h, "b")->run = CG_RUN_RESTARTING; /* restarting is routable: the new actor is live */
    hprov(h, "c")->run = CG_RUN_STOPPED;
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,b/m1,a/m2");
    hprov(h, "c")->run = CG_RUN_RUNNING;
    /* unavailable in config, even with no health */
    F.p[2].available = false;
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,b/m1,a/m2");
    T_EQ_STR(plan_str(NULL, c, NULL, T0), "a/m1,b/m1,a/m2");
    cg_health_free(h);
}

static void test_plan_all_cooling(void)
{
    cg_config_t *c = fixture(false);
    cg_health_t *h = cg_health_new(c);
    hmodel(h, "a/m1")->cooldown_until_ns = T0 + 50 * S;
    hmodel(h, "a/m1")->cooldown_until_wall_ms = W0 + 50000;
    hmodel(h, "b/m1")->cooldown_until_ns = T0 + 20 * S;
    hmodel(h, "b/m1")->cooldown_until_wall_ms = W0 + 20000;
    hmodel(h, "c/m1")->cooldown_until_ns = T0 + 5 * S;
    hmodel(h, "c/m1")->cooldown_until_wall_ms = W0 + 5000;
    hmodel(h, "a/m2")->cooldown_until_ns = T0 + 30 * S;
    hmodel(h, "a/m2")->cooldown_until_wall_ms = W0 + 30000;
    /* everything cooling: the one due back first, once */
    T_EQ_STR(plan_str(h, c, NULL, T0), "c/m1");
    T_EQ_INT(cg_health_soonest_cooldown_ms(h, c, NULL, T0), W0 + 5000);
    /* ...unless its provider is failed: never that one */
    hprov(h, "c")->run = CG_RUN_FAILED;
    T_EQ_STR(plan_str(h, c, NULL, T0), "b/m1");
    /* down but not cooling counts only when nothing is cooling */
    hprov(h, "c")->run = CG_RUN_RUNNING;
    hmodel(h, "c/m1")->cooldown_until_ns = 0;
    hprov(h, "c")->reach = CG_REACH_DOWN;
    T_EQ_STR(plan_str(h, c, NULL, T0), "b/m1");
    for (size_t i = 0; i < h->n_models; i++)
        h->models[i].cooldown_until_ns = 0;
    hprov(h, "a")->reach = CG_REACH_DOWN;
    hprov(h, "b")->reach = CG_REACH_DOWN;
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1");
    T_EQ_INT(cg_health_soonest_cooldown_ms(h, c, NULL, T0), 0);
    /* nothing routable at all */
    for (size_t i = 0; i < 3; i++)
        F.p[i].available = false;
    T_EQ_STR(plan_str(h, c, NULL, T0), "");
    cg_health_free(h);
}

static void set_ttft(cg_health_t *h, const char *ref, double ms, uint64_t now)
{
    cg_health_model_t *m = hmodel(h, ref);
    m->ewma_ttft_ns = ms * 1e6;
    m->ttft_at_ns = now;
}

static void test_rank_adaptive(void)
{
    cg_config_t *c = fixture(true);
    cg_health_t *h = cg_health_new(c);
    /* nothing known: configured order, nothing changes */
    T_ASSERT(!cg_health_rank(h, c, T0));
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,b/m1,c/m1,a/m2");
    /* known fallbacks before unknown ones, fastest first */
    set_ttft(h, "c/m1", 100, T0);
    set_ttft(h, "a/m2", 50, T0);
    T_ASSERT(cg_health_rank(h, c, T0));
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,a/m2,c/m1,b/m1");
    /* primary slower, but within the factor (1.5 x 50 = 75): stays first */
    set_ttft(h, "a/m1", 70, T0);
    cg_health_rank(h, c, T0);
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,a/m2,c/m1,b/m1");
    /* clearly slower: takes its place by score */
    set_ttft(h, "a/m1", 90, T0);
    T_ASSERT(cg_health_rank(h, c, T0));
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m2,a/m1,c/m1,b/m1");
    T_EQ_STR(h->order[0], "a/m2");
    /* in-flight requests scale the score: 50 x 3 = 150 > 100 */
    hmodel(h, "a/m2")->inflight = 2;
    cg_health_rank(h, c, T0);
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,c/m1,a/m2,b/m1");
    hmodel(h, "a/m2")->inflight = 0;
    /* a configured factor */
    c->settings.primary_factor = 2.0;
    cg_health_rank(h, c, T0);
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,a/m2,c/m1,b/m1");
    c->settings.primary_factor = 0;
    /* ties keep the configured order */
    set_ttft(h, "a/m1", 10, T0);
    set_ttft(h, "b/m1", 100, T0);
    cg_health_rank(h, c, T0);
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,a/m2,b/m1,c/m1");
    /* an override: chosen first, ranked fallbacks, primary last */
    T_EQ_STR(plan_str(h, c, &F.mc[0], T0), "c/m1,a/m2,b/m1,a/m1");
    /* the same health under the pinned policy: configured order */
    c->settings.adaptive = false;
    T_EQ_STR(plan_str(h, c, NULL, T0), "a/m1,b/m1,c/m1,a/m2");
    T_ASSERT(cg_health_rank(h, c, T0));
    T_EQ_STR(h->order[1], "b/m1");
    cg_health_free(h);
}

static void test_rank_decay_recovers_primary(void)
{
    cg_config_t *c = fixture(true);
    cg_health_t *h = cg_health_new(c);
    set_ttft(h, "a/m1", 20000, T0); /* one cold start */
    set_ttft(h, "b/m1", 200, T0 + 60 * S);
    cg_health_rank(h, c, T0 + 60 * S);
    T_EQ_STR(h->order[0], "b/m1");
    /* b/m1 keeps taking the traffic at 200 ms; a/m1 gets none, so after a few
     * minutes it looks cheap again and the primary gets its turn back */
    set_ttft(h, "b/m1", 200, T0 + 300 * S);
    cg_health_rank(h, c, T0 + 300 * S);
    T_EQ_STR(h->order[0], "a/m1");
    cg_health_free(h);
}

static void test_sample_cooldowns(void)
{
    cg_config_t *c = fixture(false);
    cg_health_t *h = cg_health_new(c);
    cg_health_model_t *m = hmodel(h, "b/m1");
    /* BEGIN/SAMPLE keep the in-flight count */
    cg_health_on_begin(h, "b/m1");
    cg_health_on_begin(h, "b/m1");
    T_EQ_INT(m->inflight, 2);
    /* rate limit with Retry-After 45 s: cooldown at least 45 s */
    T_ASSERT(cg_health_on_sample(h, "b/m1", "rate_limit", 429, 0, 1000, 0, 45000, T0, W0));
    T_EQ_INT(m->inflight, 1);
    T_EQ_INT(m->failures, 1);
    T_EQ_INT(m->cooldown_until_ns, T0 + 45 * S);
    T_EQ_INT(m->cooldown_until_wall_ms, W0 + 45000);
    T_EQ_STR(m->last_class, "rate_limit");
    T_EQ_STR(plan_str(h, c, NULL, T0 + S), "a/m1,c/m1,a/m2");
    /* next failures step 60 s, 300 s, 300 s */
    T_ASSERT(
        cg_health_on_sample(h, "b/m1", "overloaded", 529, 0, 0, 0, 0, T0 + 50 * S, W0 + 50000));
    T_EQ_INT(m->cooldown_until_ns, T0 + 110 * S);
    cg_health_on_sample(h, "b/m1", "timeout", 504, 0, 0, 0, 0, T0 + 120 * S, W0);
    T_EQ_INT(m->cooldown_until_ns, T0 + 420 * S);
    T_EQ_INT(m->failures, 3);
    /* a success clears everything (the cooldown had run out already, so
     * nothing the request path decides on changes) */
    T_ASSERT(!cg_health_on_sample(h, "b/m1", NULL, 200, 5 * S / 10, S, 11, 0, T0 + 500 * S, W0));
    T_EQ_INT(m->failures, 0);
    T_EQ_INT(m->cooldown_until_ns, 0);
    T_EQ_INT(m->successes, 1);
    T_ASSERT(m->ewma_ttft_ns == 5e8);
    T_ASSERT(fabs(m->ewma_tpot_ns - 5e7) < 1); /* (1 s - 0.5 s) / 10 */
    T_EQ_INT(m->inflight, 0);
    /* counters reset after 24 h without failure */
    cg_health_on_sample(h, "b/m1", "rate_limit", 429, 0, 0, 0, 0, T0 + 600 * S, W0);
    cg_health_on_sample(h, "b/m1", "rate_limit", 429, 0, 0, 0, 0, T0 + 700 * S, W0);
    T_EQ_INT(m->failures, 2);
    uint64_t later = T0 + 700 * S + 25 * 3600 * S;
    cg_health_on_sample(h, "b/m1", "rate_limit", 429, 0, 0, 0, 0, later, W0);
    T_EQ_INT(m->failures, 1);
    T_EQ_INT(m->cooldown_until_ns, later + 30 * S);
    /* a late failure while cooling extends it, but needs no publication */
    T_ASSERT(!cg_health_on_sample(h, "b/m1", "rate_limit", 429, 0, 0, 0, 0, later + S, W0));
    T_EQ_INT(m->cooldown_until_ns, later + S + 60 * S);
    /* format and context_overflow: no cooldown, no counter, no change */
    cg_health_model_t *a1 = hmodel(h, "a/m1");
    T_ASSERT(!cg_health_on_sample(h, "a/m1", "format", 400, 0, 0, 0, 0, T0, W0));
    T_ASSERT(!cg_health_on_sample(h, "a/m1", "context_overflow", 400, 0, 0, 0, 0, T0, W0));
    T_EQ_INT(a1->failures, 0);
    T_EQ_INT(a1->cooldown_until_ns, 0);
    T_EQ_STR(a1->last_class, "context_overflow");
    /* unknown refs are ignored */
    T_ASSERT(!cg_health_on_sample(h, "zz/top", "timeout", 0, 0, 0, 0, 0, T0, W0));
    cg_health_free(h);
}

static void test_sample_auth_billing_transport(void)
{
    cg_config_t *c = fixture(false);
    cg_health_t *h = cg_health_new(c);
    /* auth cools every model of the provider, 10 min */
    cg_health_on_sample(h, "a/m2", "auth", 401, 0, 0, 0, 0, T0, W0);
    T_EQ_INT(hmodel(h, "a/m1")->cooldown_until_ns, T0 + 600 * S);
    T_EQ_INT(hmodel(h, "a/m2")->cooldown_until_ns, T0 + 600 * S);
    T_EQ_INT(hmodel(h, "b/m1")->cooldown_until_ns, 0);
    /* billing: 5 h */
    cg_health_on_sample(h, "b/m1", "billing", 402, 0, 0, 0, 0, T0, W0);
    T_EQ_INT(hmodel(h, "b/m1")->cooldown_until_ns, T0 + 5 * 3600 * S);
    /* a shorter cooldown never shortens a longer one */
    cg_health_on_sample(h, "b/m1", "rate_limit", 429, 0, 0, 0, 0, T0 + S, W0);
    T_EQ_INT(hmodel(h, "b/m1")->cooldown_until_ns, T0 + 5 * 3600 * S);
    /* transport failure (status 0, timeout): provider down, EWMA sees the wait */
    T_ASSERT(cg_health_on_sample(h, "c/m1", "timeout", 0, 0, 30 * S, 0, 0, T0, W0));
    T_EQ_INT(hprov(h, "c")->reach, CG_REACH_DOWN);
    T_ASSERT(hmodel(h, "c/m1")->ewma_ttft_ns == 30e9);
    T_ASSERT(hprov(h, "c")->last_error != NULL);
    /* a probe that succeeds brings it back (the cooldown stays) */
    T_ASSERT(cg_health_on_probe(h, "c", true, 2000000, NULL, NULL, 0, false, T0 + S, W0));
    T_EQ_INT(hprov(h, "c")->reach, CG_REACH_UP);
    T_ASSERT(hprov(h, "c")->last_error == NULL);
    T_EQ_INT(hprov(h, "c")->probe_latency_ns, 2000000);
    /* a failing probe takes it down; a successful request brings it up */
    T_ASSERT(
        cg_health_on_probe(h, "c", false, 0, "connection refused", NULL, 0, false, T0 + 2 * S, W0));
    T_EQ_STR(hprov(h, "c")->last_error, "connection refused");
    T_EQ_INT(hprov(h, "c")->reach, CG_REACH_DOWN);
    T_ASSERT(cg_health_on_sample(h, "c/m1", NULL, 200, S, 2 * S, 1, 0, T0 + 3 * S, W0));
    T_EQ_INT(hprov(h, "c")->reach, CG_REACH_UP);
    cg_health_free(h);
}

static void test_probe_unloaded(void)
{
    cg_config_t *c = fixture(false);
    cg_health_t *h = cg_health_new(c);
    const char *list1[] = {"m2", "other"};
    T_ASSERT(cg_health_on_probe(h, "a", true, 1000, NULL, list1, 2, true, T0, W0));
    T_ASSERT(hmodel(h, "a/m1")->unloaded);
    T_ASSERT(!hmodel(h, "a/m2")->unloaded);
    T_EQ_STR(plan_str(h, c, NULL, T0), "b/m1,c/m1,a/m2");
    size_t ai = 0;
    T_EQ_STR(cg_health_model_state(h, ai, T0), "unloaded");
    /* no list: flags stay */
    T_ASSERT(!cg_health_on_probe(h, "a", true, 1000, NULL, NULL, 0, false, T0, W0));
    T_ASSERT(hmodel(h, "a/m1")->unloaded);
    /* loaded again (Ollama-style ":latest" counts) */
    const char *list2[] = {"m1:latest", "m2"};
    T_ASSERT(cg_health_on_probe(h, "a", true, 1000, NULL, list2, 2, true, T0, W0));
    T_ASSERT(!hmodel(h, "a/m1")->unloaded);
    /* every model missing: the provider shows unloaded */
    const char *none[] = {"zzz"};
    cg_health_on_probe(h, "a", true, 1000, NULL, none, 1, true, T0, W0);
    T_EQ_STR(cg_health_provider_state(h, 0, T0), "unloaded");
    cg_health_free(h);
}

static void test_reconcile_and_clone(void)
{
    cg_config_t *c = fixture(false);
    cg_health_t *h = cg_health_new(c);
    cg_health_on_sample(h, "b/m1", "rate_limit", 429, 0, 0, 0, 0, T0, W0);
    cg_health_on_probe(h, "c", false, 0, "refused", NULL, 0, false, T0, W0);
    hprov(h, "b")->restarts = 3;
    cg_health_t *k = cg_health_clone(h);
    T_EQ_INT(hmodel(k, "b/m1")->cooldown_until_ns, T0 + 30 * S);
    T_EQ_STR(hprov(k, "c")->last_error, "refused");
    /* a reload that drops model c/m1 keeps what is known about the rest */
    F.p[2].n_models = 0;
    F.c.n_fallbacks = 1;
    cg_health_t *r = cg_health_reconcile(h, c);
    T_EQ_INT(r->n_models, 3);
    T_ASSERT(cg_health_find_model(r, "c/m1") == NULL);
    T_EQ_INT(hmodel(r, "b/m1")->failures, 1);
    T_EQ_INT(hprov(r, "b")->restarts, 3);
    T_EQ_STR(hprov(r, "c")->last_error, "refused");
    T_EQ_INT(r->n_order, 2);
    cg_health_free(r);
    cg_health_free(k);
    cg_health_free(h);
}

static void test_status_json(void)
{
    cg_config_t *c = fixture(false);
    cg_buf_t b = {0};
    cg_health_status_json(NULL, c, &b);
    T_CONTAINS(b.data, "\"object\":\"gateway.status\"");
    T_CONTAINS(b.data, "\"policy\":\"pinned\"");
    T_CONTAINS(b.data, "\"plan\":[\"a\\/m1\",\"b\\/m1\",\"c\\/m1\",\"a\\/m2\"]");
    cg_buf_reset(&b);

    cg_health_t *h = cg_health_new(c);
    uint64_t now = cg_now_ns();
    cg_health_on_sample(h, "b/m1", "rate_limit", 429, 0, 0, 0, 60000, now, cg_wall_ms());
    cg_health_on_sample(h, "a/m1", NULL, 200, 250 * 1000000ull, S, 3, 0, now, cg_wall_ms());
    hprov(h, "c")->run = CG_RUN_FAILED;
    hprov(h, "c")->restarts = 6;
    h->version = 42;
    cg_health_status_json(h, c, &b);
    json_object *root = json_tokener_parse(b.data);
    T_ASSERT(root != NULL);
    json_object *v, *arr, *o;
    T_ASSERT(json_object_object_get_ex(root, "version", &v));
    T_EQ_INT(json_object_get_int64(v), 42);
    T_ASSERT(json_object_object_get_ex(root, "providers", &arr));
    T_EQ_INT(json_object_array_length(arr), 3);
    o = json_object_array_get_idx(arr, 2);
    T_EQ_STR(json_object_get_string(json_object_object_get(o, "state")), "failed");
    T_EQ_INT(json_object_get_int(json_object_object_get(o, "restarts")), 6);
    T_EQ_STR(
        json_object_get_string(json_object_object_get(json_object_array_get_idx(arr, 0), "state")),
        "up");
    T_ASSERT(json_object_object_get_ex(root, "models", &arr));
    T_EQ_INT(json_object_array_length(arr), 4);
    o = json_object_array_get_idx(arr, 2); /* b/m1 */
    T_EQ_STR(json_object_get_string(json_object_object_get(o, "ref")), "b/m1");
    T_EQ_STR(json_object_get_string(json_object_object_get(o, "state")), "cooling");
    T_EQ_STR(json_object_get_string(json_object_object_get(o, "last_class")), "rate_limit");
    T_ASSERT(json_object_get_int64(json_object_object_get(o, "cooldown_until")) > 0);
    o = json_object_array_get_idx(arr, 0); /* a/m1 */
    double ttft = json_object_get_double(json_object_object_get(o, "ewma_ttft_ms"));
    T_ASSERTF(ttft > 249 && ttft <= 250, "ttft %f", ttft);
    T_ASSERT(json_object_object_get_ex(root, "plan", &arr));
    T_EQ_INT(json_object_array_length(arr), 2); /* b cooling, c failed */
    T_ASSERT(json_object_object_get_ex(root, "fallback_order", &arr));
    T_EQ_INT(json_object_array_length(arr), 4);
    json_object_put(root);
    cg_buf_free(&b);
    cg_health_free(h);
}

int main(void)
{
    T_RUN(test_falls_back);
    T_RUN(test_cooldown_steps);
    T_RUN(test_ewma_peak);
    T_RUN(test_plan_pinned);
    T_RUN(test_plan_skips);
    T_RUN(test_plan_all_cooling);
    T_RUN(test_rank_adaptive);
    T_RUN(test_rank_decay_recovers_primary);
    T_RUN(test_sample_cooldowns);
    T_RUN(test_sample_auth_billing_transport);
    T_RUN(test_probe_unloaded);
    T_RUN(test_reconcile_and_clone);
    T_RUN(test_status_json);
    T_DONE();
}
