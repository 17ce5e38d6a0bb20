/*
 * health.c — health/ranking snapshot, attempt plans, cooldown and EWMA rules,
 * the status document and `clawgate status`.
 *
 * DESIGN
 * Two kinds of code live here and must not be confused (see health.h):
 *   - pure functions on a const cg_health_t (plan, status, lookups), which the
 *     request path runs on a published snapshot from any thread, with no
 *     locks and no allocation on the plan path;
 *   - cg_health_on_* and cg_health_rank, which mutate the supervisor's private
 *     copy; the supervisor publishes clones of it.
 * The rules (cooldown steps, which classes fall back, peak EWMA) are pure
 * functions so that tests check them without threads or clocks.
 *
 * Lookups are linear scans guarded by a 64-bit hash of the ref: a gateway has
 * tens of models, and a scan of a small array is cheaper than a hash table's
 * pointer chasing, and needs no rebuilding per snapshot.
 */
#include "actors/health.h"

#include <curl/curl.h>
#include <math.h>

#define PLAN_CAP 64
#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define COUNTER_RESET_NS (24ull * 3600ull * NS_PER_S)
#define RETRY_AFTER_CAP_MS (24ll * 3600ll * 1000ll)
#define DEFAULT_PRIMARY_FACTOR 1.5

/* ---- small helpers ---- */

static uint64_t ref_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static char *dup_or_null(const char *s)
{
    return s ? cg_strdup(s) : NULL;
}

static double primary_factor(const cg_config_t *c)
{
    return c->settings.primary_factor > 0 ? c->settings.primary_factor : DEFAULT_PRIMARY_FACTOR;
}

static ssize_t find_model_idx(const cg_health_t *h, const char *ref)
{
    if (!h || !ref)
        return -1;
    uint64_t k = ref_hash(ref);
    for (size_t i = 0; i < h->n_models; i++)
        if (h->models[i].hash == k && strcmp(h->models[i].ref, ref) == 0)
            return (ssize_t)i;
    return -1;
}

static ssize_t find_provider_idx(const cg_health_t *h, const char *name)
{
    if (!h || !name)
        return -1;
    for (size_t i = 0; i < h->n_providers; i++)
        if (strcmp(h->providers[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

const cg_health_provider_t *cg_health_find_provider(const cg_health_t *h, const char *name)
{
    ssize_t i = find_provider_idx(h, name);
    return i < 0 ? NULL : &h->providers[i];
}

const cg_health_model_t *cg_health_find_model(const cg_health_t *h, const char *ref)
{
    ssize_t i = find_model_idx(h, ref);
    return i < 0 ? NULL : &h->models[i];
}

/* primary + fallbacks, each once, in configured order. */
static size_t config_chain(const cg_config_t *c, const cg_model_t **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i <= c->n_fallbacks && n < cap; i++) {
        const cg_model_t *m = i == 0 ? c->primary : c->fallbacks[i - 1];
        if (!m)
            continue;
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = out[j] == m;
        if (!dup)
            out[n++] = m;
    }
    return n;
}

/* ---- construction ---- */

static void set_order_from_config(cg_health_t *h, const cg_config_t *c)
{
    const cg_model_t *chain[PLAN_CAP];
    size_t n = config_chain(c, chain, PLAN_CAP);
    h->order = cg_calloc(n ? n : 1, sizeof *h->order);
    h->n_order = n;
    for (size_t i = 0; i < n; i++)
        h->order[i] = cg_strdup(chain[i]->ref);
}

cg_health_t *cg_health_new(const cg_config_t *c)
{
    cg_health_t *h = cg_calloc(1, sizeof *h);
    h->adaptive = c->settings.adaptive;
    h->primary_factor = primary_factor(c);
    h->n_providers = c->n_providers;
    h->providers = cg_calloc(c->n_providers ? c->n_providers : 1, sizeof *h->providers);
    size_t nm = 0;
    for (size_t i = 0; i < c->n_providers; i++)
        nm += c->providers[i].n_models;
    h->models = cg_calloc(nm ? nm : 1, sizeof *h->models);
    for (size_t i = 0; i < c->n_providers; i++) {
        const cg_provider_t *p = &c->providers[i];
        cg_health_provider_t *hp = &h->providers[i];
        hp->name = cg_strdup(p->name);
        hp->available = p->available;
        hp->run = p->available ? CG_RUN_RUNNING : CG_RUN_STOPPED;
        for (size_t j = 0; j < p->n_models; j++) {
            cg_health_model_t *hm = &h->models[h->n_models++];
            hm->ref = cg_strdup(p->models[j].ref);
            hm->hash = ref_hash(hm->ref);
            hm->provider = i;
            hm->ewma_ttft_ns = -1;
            hm->ewma_tpot_ns = -1;
            hm->score = -1;
        }
    }
    set_order_from_config(h, c);
    return h;
}

cg_health_t *cg_health_reconcile(const cg_health_t *old, const cg_config_t *c)
{
    cg_health_t *h = cg_health_new(c);
    if (!old)
        return h;
    h->version = old->version;
    for (size_t i = 0; i < h->n_providers; i++) {
        cg_health_provider_t *hp = &h->providers[i];
        const cg_health_provider_t *op = cg_health_find_provider(old, hp->name);
        if (!op)
            continue;
        char *name = hp->name;
        bool available = hp->available;
        cg_run_state_t run = hp->run;
        *hp = *op;
        hp->name = name;
        hp->available = available;
        /* Supervision state follows the actor, which the supervisor keeps
         * across a reload; a provider that became (un)available restarts
         * from the config's view. */
        if (available != op->available)
            hp->run = run;
        hp->last_error = dup_or_null(op->last_error);
    }
    for (size_t i = 0; i < h->n_models; i++) {
        cg_health_model_t *hm = &h->models[i];
        const cg_health_model_t *om = cg_health_find_model(old, hm->ref);
        if (!om)
            continue;
        char *ref = hm->ref;
        size_t prov = hm->provider;
        *hm = *om;
        hm->ref = ref;
        hm->provider = prov;
    }
    return h;
}

cg_health_t *cg_health_clone(const cg_health_t *h)
{
    cg_health_t *n = cg_malloc(sizeof *n);
    *n = *h;
    n->providers = cg_malloc((h->n_providers ? h->n_providers : 1) * sizeof *n->providers);
    n->models = cg_malloc((h->n_models ? h->n_models : 1) * sizeof *n->models);
    n->order = cg_malloc((h->n_order ? h->n_order : 1) * sizeof *n->order);
    for (size_t i = 0; i < h->n_providers; i++) {
        n->providers[i] = h->providers[i];
        n->providers[i].name = cg_strdup(h->providers[i].name);
        n->providers[i].last_error = dup_or_null(h->providers[i].last_error);
    }
    for (size_t i = 0; i < h->n_models; i++) {
        n->models[i] = h->models[i];
        n->models[i].ref = cg_strdup(h->models[i].ref);
    }
    for (size_t i = 0; i < h->n_order; i++)
        n->order[i] = cg_strdup(h->order[i]);
    return n;
}

void cg_health_free(void *p)
{
    cg_health_t *h = p;
    if (!h)
        return;
    for (size_t i = 0; i < h->n_providers; i++) {
        cg_free(h->providers[i].name);
        cg_free(h->providers[i].last_error);
    }
    for (size_t i = 0; i < h->n_models; i++)
        cg_free(h->models[i].ref);
    for (size_t i = 0; i < h->n_order; i++)
        cg_free(h->order[i]);
    cg_free(h->providers);
    cg_free(h->models);
    cg_free(h->order);
    cg_free(h);
}

/* ---- rules ---- */

static const char *const class_names[] = {
    "timeout", "overloaded",      "rate_limit",       "auth",    "billing",
    "format",  "model_not_found", "context_overflow", "unknown",
};

/* The static spelling of a class name (so a snapshot can point at it without
 * owning a copy); anything unrecognised is "unknown". */
static const char *class_static(const char *name)
{
    for (size_t i = 0; i < CG_ARRAY_LEN(class_names); i++)
        if (strcmp(class_names[i], name) == 0)
            return class_names[i];
    return "unknown";
}

bool cg_health_falls_back(const char *class_name)
{
    if (!class_name)
        return false;
    return strcmp(class_name, "format") != 0 && strcmp(class_name, "context_overflow") != 0;
}

/* base << (failures - 1), capped; failures beyond 63 shifts stay at the cap. */
static uint64_t doubling(uint64_t base, int failures, uint64_t cap)
{
    uint64_t v = base;
    for (int i = 1; i < failures && v < cap; i++)
        v *= 2;
    return v < cap ? v : cap;
}

uint64_t cg_health_cooldown_ns(const char *class_name, int failures, int64_t retry_after_ms)
{
    if (!cg_health_falls_back(class_name))
        return 0;
    if (failures < 1)
        failures = 1;
    uint64_t cd;
    if (strcmp(class_name, "auth") == 0) {
        cd = doubling(600 * NS_PER_S, failures, 3600 * NS_PER_S);
    } else if (strcmp(class_name, "billing") == 0) {
        cd = doubling(5 * 3600 * NS_PER_S, failures, 24 * 3600 * NS_PER_S);
    } else {
        static const uint64_t steps[] = {30 * NS_PER_S, 60 * NS_PER_S, 300 * NS_PER_S};
        cd = steps[failures - 1 < 2 ? failures - 1 : 2];
    }
    /* An upstream's Retry-After is honoured, but not beyond a day: a broken
     * or hostile header must not park a provider for a year. */
    if (retry_after_ms > RETRY_AFTER_CAP_MS)
        retry_after_ms = RETRY_AFTER_CAP_MS;
    if (retry_after_ms > 0 && (uint64_t)retry_after_ms * NS_PER_MS > cd)
        cd = (uint64_t)retry_after_ms * NS_PER_MS;
    return cd;
}

double cg_health_ewma_read(double v, uint64_t at, uint64_t now)
{
    if (v < 0)
        return -1;
    if (now <= at)
        return v;
    return v * exp(-(double)(now - at) / (double)CG_HEALTH_TAU_NS);
}

void cg_health_ewma_observe(double *v, uint64_t *at, double x, uint64_t now)
{
    if (x < 0)
        return;
    if (*v < 0 || x > *v) {
        /* First sample, or worse than what we believe: believe it at once
         * (peak sensitivity: one slow answer is news, one fast one is not). */
        *v = x;
    } else {
        double dt = now > *at ? (double)(now - *at) : 0.0;
        double w = exp(-dt / (double)CG_HEALTH_TAU_NS);
        *v = *v * w + x * (1.0 - w);
    }
    *at = now;
}

/* ---- plans ---- */

static bool is_adaptive(const cg_health_t *h, const cg_config_t *c)
{
    return h && c->settings.adaptive && h->n_order > 0;
}

static size_t order_pos(const cg_health_t *h, const cg_model_t *m)
{
    for (size_t i = 0; i < h->n_order; i++)
        if (strcmp(h->order[i], m->ref) == 0)
            return i;
    return SIZE_MAX; /* not ranked (config newer than the ranking): after the ranked ones */
}

/* Candidates for `resolved` in the order they would be tried, before any
 * health filtering (see cg_health_plan). */
static size_t candidates(const cg_health_t *h, const cg_config_t *c, const cg_model_t *resolved,
                         const cg_model_t **out)
{
    const cg_model_t *chain[PLAN_CAP];
    size_t nc = config_chain(c, chain, PLAN_CAP);
    if (is_adaptive(h, c)) {
        /* Stable insertion sort by rank position: few elements. */
        size_t pos[PLAN_CAP];
        for (size_t i = 0; i < nc; i++)
            pos[i] = order_pos(h, chain[i]);
        for (size_t i = 1; i < nc; i++) {
            const cg_model_t *m = chain[i];
            size_t p = pos[i], j = i;
            while (j > 0 && pos[j - 1] > p) {
                chain[j] = chain[j - 1];
                pos[j] = pos[j - 1];
                j--;
            }
            chain[j] = m;
            pos[j] = p;
        }
    }
    bool override = resolved && resolved != c->primary;
    size_t n = 0;
    if (override)
        out[n++] = resolved;
    for (size_t i = 0; i < nc && n < PLAN_CAP; i++) {
        if (override && (chain[i] == resolved || chain[i] == c->primary))
            continue;
        out[n++] = chain[i];
    }
    if (override && c->primary && c->primary != resolved && n < PLAN_CAP)
        out[n++] = c->primary;
    return n;
}

typedef enum { V_OK, V_SOFT, V_HARD } verdict_t;

/* May m be tried now? SOFT: skipped, but a last resort (cooling, down,
 * unloaded); *until is its cooldown end, 0 when not cooling. HARD: never. */
static verdict_t judge(const cg_health_t *h, const cg_model_t *m, uint64_t now, uint64_t *until)
{
    *until = 0;
    if (!m->provider || !m->provider->available)
        return V_HARD;
    if (!h)
        return V_OK;
    const cg_health_model_t *hm = cg_health_find_model(h, m->ref);
    const cg_health_provider_t *hp =
        hm ? &h->providers[hm->provider] : cg_health_find_provider(h, m->provider->name);
    verdict_t v = V_OK;
    if (hp) {
        if (hp->run == CG_RUN_FAILED || hp->run == CG_RUN_STALLED || hp->run == CG_RUN_STOPPED)
            return V_HARD;
        if (hp->reach == CG_REACH_DOWN)
            v = V_SOFT;
    }
    if (hm) {
        if (hm->cooldown_until_ns > now) {
            *until = hm->cooldown_until_ns;
            v = V_SOFT;
        }
        if (hm->unloaded)
            v = V_SOFT;
    }
    return v;
}

size_t cg_health_plan(const cg_health_t *h, const cg_config_t *c, const cg_model_t *resolved,
                      uint64_t now_ns, const cg_model_t **out, size_t max)
{
    const cg_model_t *cand[PLAN_CAP];
    size_t nc = candidates(h, c, resolved, cand);
    size_t n = 0;
    const cg_model_t *soonest = NULL, *first_soft = NULL;
    uint64_t soonest_until = UINT64_MAX;
    for (size_t i = 0; i < nc; i++) {
        uint64_t until;
        verdict_t v = judge(h, cand[i], now_ns, &until);
        if (v == V_OK) {
            if (n < max)
                out[n++] = cand[i];
        } else if (v == V_SOFT) {
            if (!first_soft)
                first_soft = cand[i];
            if (until && until < soonest_until) {
                soonest_until = until;
                soonest = cand[i];
            }
        }
    }
    if (n == 0 && max > 0) {
        /* Everything is cooling or down: rather than failing at once, try
         * the one that is due back first, once. */
        const cg_model_t *last = soonest ? soonest : first_soft;
        if (last)
            out[n++] = last;
    }
    return n;
}

int64_t cg_health_soonest_cooldown_ms(const cg_health_t *h, const cg_config_t *c,
                                      const cg_model_t *resolved, uint64_t now_ns)
{
    if (!h)
        return 0;
    const cg_model_t *cand[PLAN_CAP];
    size_t nc = candidates(h, c, resolved, cand);
    uint64_t best = UINT64_MAX;
    int64_t best_wall = 0;
    for (size_t i = 0; i < nc; i++) {
        const cg_health_model_t *hm = cg_health_find_model(h, cand[i]->ref);
        if (hm && hm->cooldown_until_ns > now_ns && hm->cooldown_until_ns < best) {
            best = hm->cooldown_until_ns;
            best_wall = hm->cooldown_until_wall_ms;
        }
    }
    return best_wall;
}

/* ---- display states ---- */

const char *cg_health_provider_state(const cg_health_t *h, size_t i, uint64_t now_ns)
{
    const cg_health_provider_t *hp = &h->providers[i];
    if (!hp->available)
        return "unavailable";
    switch (hp->run) {
    case CG_RUN_RESTARTING:
        return "restarting";
    case CG_RUN_FAILED:
        return "failed";
    case CG_RUN_STALLED:
        return "stalled";
    case CG_RUN_STOPPED:
        return "stopped";
    case CG_RUN_RUNNING:
        break;
    }
    if (hp->reach == CG_REACH_DOWN)
        return "down";
    size_t n = 0, cooling = 0, unloaded = 0;
    for (size_t j = 0; j < h->n_models; j++) {
        const cg_health_model_t *hm = &h->models[j];
        if (hm->provider != i)
            continue;
        n++;
        if (hm->cooldown_until_ns > now_ns)
            cooling++;
        else if (hm->unloaded)
            unloaded++;
    }
    if (n > 0 && cooling == n)
        return "cooling";
    if (n > 0 && unloaded + cooling == n && unloaded > 0)
        return "unloaded";
    return hp->reach == CG_REACH_UP ? "up" : "unknown";
}

const char *cg_health_model_state(const cg_health_t *h, size_t i, uint64_t now_ns)
{
    const cg_health_model_t *hm = &h->models[i];
    const cg_health_provider_t *hp = &h->providers[hm->provider];
    if (!hp->available || hp->run != CG_RUN_RUNNING || hp->reach == CG_REACH_DOWN)
        return cg_health_provider_state(h, hm->provider, now_ns);
    if (hm->cooldown_until_ns > now_ns)
        return "cooling";
    if (hm->unloaded)
        return "unloaded";
    if (hm->successes > 0 || hp->reach == CG_REACH_UP)
        return "up";
    return "unknown";
}

/* ---- status document ---- */

static json_object *ms_or_null(double ns)
{
    return ns < 0 ? NULL : json_object_new_double(round(ns / 1e3) / 1e3);
}

static json_object *wall_or_null(int64_t ms)
{
    return ms > 0 ? json_object_new_int64(ms) : NULL;
}

void cg_health_status_json(const cg_health_t *h, const cg_config_t *c, cg_buf_t *out)
{
    cg_health_t *tmp = NULL;
    if (!h)
        h = tmp = cg_health_new(c);
    uint64_t now = cg_now_ns();
    int64_t wall = cg_wall_ms();

    json_object *root = json_object_new_object();
    json_object_object_add(root, "object", json_object_new_string("gateway.status"));
    json_object_object_add(root, "version", json_object_new_int64((int64_t)h->version));
    json_object_object_add(root, "policy",
                           json_object_new_string(c->settings.adaptive ? "adaptive" : "pinned"));
    json_object_object_add(root, "now", json_object_new_int64(wall));

    json_object *provs = json_object_new_array();
    for (size_t i = 0; i < h->n_providers; i++) {
        const cg_health_provider_t *hp = &h->providers[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(hp->name));
        json_object_object_add(o, "state",
                               json_object_new_string(cg_health_provider_state(h, i, now)));
        json_object_object_add(o, "available", json_object_new_boolean(hp->available));
        for (size_t k = 0; k < c->n_providers; k++)
            if (!c->providers[k].available && c->providers[k].unavailable_reason &&
                strcmp(c->providers[k].name, hp->name) == 0)
                json_object_object_add(o, "unavailable_reason",
                                       json_object_new_string(c->providers[k].unavailable_reason));
        json_object_object_add(o, "restarts", json_object_new_int(hp->restarts));
        json_object_object_add(
            o, "retry_at", hp->run == CG_RUN_FAILED ? wall_or_null(hp->retry_at_wall_ms) : NULL);
        json_object_object_add(o, "probe_latency_ms",
                               hp->probe_at_ns ? ms_or_null((double)hp->probe_latency_ns) : NULL);
        json_object_object_add(o, "probed_at", wall_or_null(hp->probe_at_wall_ms));
        json_object_object_add(o, "last_error",
                               hp->last_error ? json_object_new_string(hp->last_error) : NULL);
        json_object_array_add(provs, o);
    }
    json_object_object_add(root, "providers", provs);

    json_object *models = json_object_new_array();
    for (size_t i = 0; i < h->n_models; i++) {
        const cg_health_model_t *hm = &h->models[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ref", json_object_new_string(hm->ref));
        json_object_object_add(o, "provider",
                               json_object_new_string(h->providers[hm->provider].name));
        json_object_object_add(o, "state",
                               json_object_new_string(cg_health_model_state(h, i, now)));
        bool cooling = hm->cooldown_until_ns > now;
        json_object_object_add(o, "cooldown_until",
                               cooling ? wall_or_null(hm->cooldown_until_wall_ms) : NULL);
        json_object_object_add(
            o, "cooldown_remaining_ms",
            cooling ? json_object_new_int64((int64_t)((hm->cooldown_until_ns - now) / NS_PER_MS))
                    : NULL);
        json_object_object_add(o, "failures", json_object_new_int(hm->failures));
        json_object_object_add(o, "last_class",
                               hm->last_class ? json_object_new_string(hm->last_class) : NULL);
        json_object_object_add(
            o, "ewma_ttft_ms",
            ms_or_null(cg_health_ewma_read(hm->ewma_ttft_ns, hm->ttft_at_ns, now)));
        json_object_object_add(
            o, "ewma_tpot_ms",
            ms_or_null(cg_health_ewma_read(hm->ewma_tpot_ns, hm->tpot_at_ns, now)));
        json_object_object_add(o, "inflight", json_object_new_int(hm->inflight));
        json_object_object_add(o, "score_ms", ms_or_null(hm->score));
        json_object_object_add(o, "successes", json_object_new_int64((int64_t)hm->successes));
        json_object_object_add(o, "failures_total",
                               json_object_new_int64((int64_t)hm->failures_total));
        json_object_array_add(models, o);
    }
    json_object_object_add(root, "models", models);

    json_object *order = json_object_new_array();
    for (size_t i = 0; i < h->n_order; i++)
        json_object_array_add(order, json_object_new_string(h->order[i]));
    json_object_object_add(root, "fallback_order", order);

    /* What a request for the primary would try right now, after skipping. */
    const cg_model_t *plan[PLAN_CAP];
    size_t np = cg_health_plan(tmp ? NULL : h, c, c->primary, now, plan, PLAN_CAP);
    json_object *pl = json_object_new_array();
    for (size_t i = 0; i < np; i++)
        json_object_array_add(pl, json_object_new_string(plan[i]->ref));
    json_object_object_add(root, "plan", pl);

    size_t len;
    const char *s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
    cg_buf_append(out, s, len);
    json_object_put(root);
    cg_health_free(tmp);
}

/* ---- the supervisor's private copy ---- */

void cg_health_on_begin(cg_health_t *h, const char *ref)
{
    ssize_t i = find_model_idx(h, ref);
    if (i >= 0)
        h->models[i].inflight++;
}

static void set_cooldown(cg_health_model_t *hm, uint64_t cd, uint64_t now_ns, int64_t wall_ms)
{
    uint64_t until = now_ns + cd;
    /* Never shorten a longer cooldown (a rate limit after a billing stop). */
    if (until > hm->cooldown_until_ns) {
        hm->cooldown_until_ns = until;
        hm->cooldown_until_wall_ms = wall_ms + (int64_t)(cd / NS_PER_MS);
    }
}

bool cg_health_on_sample(cg_health_t *h, const char *ref, const char *class_name, int status,
                         uint64_t ttft_ns, uint64_t duration_ns, int64_t output_tokens,
                         int64_t retry_after_ms, uint64_t now_ns, int64_t wall_ms)
{
    ssize_t i = find_model_idx(h, ref);
    if (i < 0)
        return false; /* a model a reload removed */
    cg_health_model_t *hm = &h->models[i];
    cg_health_provider_t *hp = &h->providers[hm->provider];
    bool changed = false;
    if (hm->inflight > 0)
        hm->inflight--;

    if (!class_name) {
        hm->successes++;
        if (ttft_ns > 0)
            cg_health_ewma_observe(&hm->ewma_ttft_ns, &hm->ttft_at_ns, (double)ttft_ns, now_ns);
        if (output_tokens > 1 && duration_ns > ttft_ns)
            cg_health_ewma_observe(&hm->ewma_tpot_ns, &hm->tpot_at_ns,
                                   (double)(duration_ns - ttft_ns) / (double)(output_tokens - 1),
                                   now_ns);
        if (hm->failures || hm->cooldown_until_ns) {
            changed = hm->cooldown_until_ns > now_ns;
            hm->failures = 0;
            hm->cooldown_until_ns = 0;
            hm->cooldown_until_wall_ms = 0;
        }
        if (hm->unloaded) {
            hm->unloaded = false; /* it answered, so it is loaded now */
            changed = true;
        }
        if (hp->reach != CG_REACH_UP) {
            changed = changed || hp->reach == CG_REACH_DOWN;
            hp->reach = CG_REACH_UP;
        }
        return changed;
    }

    /* "cancelled": the client left or the provider actor stopped under the
     * attempt. Not the model's doing: only the in-flight count changes. */
    if (strcmp(class_name, "cancelled") == 0)
        return false;
    const char *cls = class_static(class_name);
    hm->failures_total++;
    hm->last_class = cls;
    if (!cg_health_falls_back(cls))
        return false; /* the request's fault, not the model's */

    /* Only a cooldown that starts changes routing now; extending one that
     * already keeps requests away can wait for the next periodic publish
     * (a burst of late failures must not mean a snapshot copy each). */
    changed = hm->cooldown_until_ns <= now_ns;
    if (hm->last_failure_ns && now_ns - hm->last_failure_ns > COUNTER_RESET_NS)
        hm->failures = 0;
    hm->failures++;
    hm->last_failure_ns = now_ns;
    uint64_t cd = cg_health_cooldown_ns(cls, hm->failures, retry_after_ms);

    if (strcmp(cls, "auth") == 0 || strcmp(cls, "billing") == 0) {
        /* The key is the provider's: every model behind it is just as
         * unusable, so cool them all rather than discover it one by one. */
        for (size_t j = 0; j < h->n_models; j++)
            if (h->models[j].provider == hm->provider)
                set_cooldown(&h->models[j], cd, now_ns, wall_ms);
        changed = true;
    } else {
        set_cooldown(hm, cd, now_ns, wall_ms);
    }

    if (strcmp(cls, "timeout") == 0) {
        /* A timeout says how long the caller waited for nothing: feed it as a
         * (peak) first-token sample so adaptive ranking sees the slowness. */
        if (ttft_ns == 0 && duration_ns > 0)
            cg_health_ewma_observe(&hm->ewma_ttft_ns, &hm->ttft_at_ns, (double)duration_ns, now_ns);
        if (status == 0 && hp->reach != CG_REACH_DOWN) {
            changed = true;
            hp->reach = CG_REACH_DOWN;
            cg_free(hp->last_error);
            hp->last_error = cg_sprintf("request to %s got no HTTP answer (timeout)", hm->ref);
        }
    }
    return changed;
}

/* Does the /models list contain id? Ollama lists "name:latest" for "name". */
static bool listed_has(const char *const *models, size_t n, const char *id)
{
    size_t idl = strlen(id);
    for (size_t i = 0; i < n; i++) {
        if (!models[i])
            continue;
        if (strcmp(models[i], id) == 0)
            return true;
        if (strncmp(models[i], id, idl) == 0 && strcmp(models[i] + idl, ":latest") == 0)
            return true;
    }
    return false;
}

bool cg_health_on_probe(cg_health_t *h, const char *provider, bool up, uint64_t latency_ns,
                        const char *error, const char *const *models, size_t n_models, bool listed,
                        uint64_t now_ns, int64_t wall_ms)
{
    ssize_t pi = find_provider_idx(h, provider);
    if (pi < 0)
        return false;
    cg_health_provider_t *hp = &h->providers[pi];
    bool changed = false;
    hp->probe_at_ns = now_ns;
    hp->probe_at_wall_ms = wall_ms;
    hp->probe_latency_ns = latency_ns;
    cg_free(hp->last_error);
    hp->last_error = dup_or_null(error);
    cg_reach_state_t reach = up ? CG_REACH_UP : CG_REACH_DOWN;
    if ((reach == CG_REACH_DOWN) != (hp->reach == CG_REACH_DOWN))
        changed = true;
    hp->reach = reach;
    if (up && listed) {
        size_t plen = strlen(hp->name);
        for (size_t j = 0; j < h->n_models; j++) {
            cg_health_model_t *hm = &h->models[j];
            if (hm->provider != (size_t)pi)
                continue;
            /* refs are "provider/id" by construction (config). */
            const char *id = hm->ref + plen + 1;
            bool unloaded = !listed_has(models, n_models, id);
            if (unloaded != hm->unloaded) {
                hm->unloaded = unloaded;
                changed = true;
            }
        }
    }
    return changed;
}

static double model_score(const cg_health_model_t *hm, uint64_t now)
{
    double t = cg_health_ewma_read(hm->ewma_ttft_ns, hm->ttft_at_ns, now);
    return t < 0 ? -1 : t * (double)(hm->inflight + 1);
}

/* a before b? Known scores first, ascending; unknown after. Equal: keep order. */
static bool score_before(double a, double b)
{
    if (a < 0)
        return false;
    if (b < 0)
        return true;
    return a < b;
}

bool cg_health_rank(cg_health_t *h, const cg_config_t *c, uint64_t now_ns)
{
    h->adaptive = c->settings.adaptive;
    h->primary_factor = primary_factor(c);
    h->ranked_at_ns = now_ns;
    for (size_t i = 0; i < h->n_models; i++)
        h->models[i].score = model_score(&h->models[i], now_ns);

    const cg_model_t *chain[PLAN_CAP];
    size_t n = config_chain(c, chain, PLAN_CAP);
    double sc[PLAN_CAP];
    for (size_t i = 0; i < n; i++) {
        const cg_health_model_t *hm = cg_health_find_model(h, chain[i]->ref);
        sc[i] = hm ? hm->score : -1;
    }
    if (h->adaptive && n > 1) {
        /* Fallbacks (everything after the primary) by score, stable. */
        for (size_t i = 2; i < n; i++) {
            const cg_model_t *m = chain[i];
            double s = sc[i];
            size_t j = i;
            while (j > 1 && score_before(s, sc[j - 1])) {
                chain[j] = chain[j - 1];
                sc[j] = sc[j - 1];
                j--;
            }
            chain[j] = m;
            sc[j] = s;
        }
        /* The primary keeps first place unless clearly slower than the best
         * fallback; then it takes its place by score. */
        double p = sc[0], best = sc[1];
        if (p >= 0 && best >= 0 && p > h->primary_factor * best) {
            const cg_model_t *pm = chain[0];
            size_t j = 0;
            while (j + 1 < n && score_before(sc[j + 1], p)) {
                chain[j] = chain[j + 1];
                sc[j] = sc[j + 1];
                j++;
            }
            chain[j] = pm;
            sc[j] = p;
        }
    }
    bool changed = n != h->n_order;
    for (size_t i = 0; i < n && !changed; i++)
        changed = strcmp(h->order[i], chain[i]->ref) != 0;
    if (!changed)
        return false;
    for (size_t i = 0; i < h->n_order; i++)
        cg_free(h->order[i]);
    cg_free(h->order);
    h->order = cg_calloc(n ? n : 1, sizeof *h->order);
    h->n_order = n;
    for (size_t i = 0; i < n; i++)
        h->order[i] = cg_strdup(chain[i]->ref);
    return true;
}

/* ---- clawgate status ---- */

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
    cg_buf_t *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > (16u << 20))
        return 0; /* a status document is small; refuse anything absurd */
    cg_buf_append(b, ptr, n);
    return n;
}

static const char *jstr(json_object *o, const char *key, const char *dflt)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return dflt;
    return json_object_get_string(v);
}

static bool jnum(json_object *o, const char *key, double *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return false;
    *out = json_object_get_double(v);
    return true;
}

static void fmt_ms(char *buf, size_t n, json_object *o, const char *key)
{
    double v;
    if (jnum(o, key, &v))
        snprintf(buf, n, "%.1f ms", v);
    else
        snprintf(buf, n, "-");
}

static void fmt_until(char *buf, size_t n, json_object *o, const char *key, int64_t now)
{
    double v;
    if (!jnum(o, key, &v)) {
        snprintf(buf, n, "-");
        return;
    }
    int64_t s = ((int64_t)v - now) / 1000;
    if (s < 0)
        s = 0;
    snprintf(buf, n, "in %lldm%02llds", (long long)(s / 60), (long long)(s % 60));
}

static void print_table(json_object *root)
{
    double nowd = 0;
    jnum(root, "now", &nowd);
    int64_t now = (int64_t)nowd;
    printf("policy: %s   version: %s\n\n", jstr(root, "policy", "?"), jstr(root, "version", "?"));
    printf("%-20s %-12s %8s %10s %-14s %s\n", "PROVIDER", "STATE", "RESTARTS", "PROBE", "RETRY",
           "LAST ERROR");
    json_object *arr;
    if (json_object_object_get_ex(root, "providers", &arr) &&
        json_object_is_type(arr, json_type_array))
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *p = json_object_array_get_idx(arr, i);
            char probe[32], retry[32];
            fmt_ms(probe, sizeof probe, p, "probe_latency_ms");
            fmt_until(retry, sizeof retry, p, "retry_at", now);
            const char *err = jstr(p, "last_error", NULL);
            if (!err)
                err = jstr(p, "unavailable_reason", "-");
            printf("%-20s %-12s %8s %10s %-14s %s\n", jstr(p, "name", "?"), jstr(p, "state", "?"),
                   jstr(p, "restarts", "0"), probe, retry, err);
        }
    printf("\n%-36s %-11s %-14s %5s %-16s %11s %11s %5s\n", "MODEL", "STATE", "COOLDOWN", "FAILS",
           "LAST CLASS", "TTFT", "TPOT", "INFL");
    if (json_object_object_get_ex(root, "models", &arr) &&
        json_object_is_type(arr, json_type_array))
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *m = json_object_array_get_idx(arr, i);
            char cd[32], ttft[32], tpot[32];
            fmt_until(cd, sizeof cd, m, "cooldown_until", now);
            fmt_ms(ttft, sizeof ttft, m, "ewma_ttft_ms");
            fmt_ms(tpot, sizeof tpot, m, "ewma_tpot_ms");
            printf("%-36s %-11s %-14s %5s %-16s %11s %11s %5s\n", jstr(m, "ref", "?"),
                   jstr(m, "state", "?"), cd, jstr(m, "failures", "0"), jstr(m, "last_class", "-"),
                   ttft, tpot, jstr(m, "inflight", "0"));
        }
    const char *lists[] = {"fallback_order", "plan"};
    const char *titles[] = {"fallback order", "plan now"};
    for (size_t k = 0; k < 2; k++) {
        printf("\n%s:", titles[k]);
        if (json_object_object_get_ex(root, lists[k], &arr) &&
            json_object_is_type(arr, json_type_array))
            for (size_t i = 0; i < json_object_array_length(arr); i++)
                printf("%s %s", i ? "," : "",
                       json_object_get_string(json_object_array_get_idx(arr, i)));
    }
    printf("\n");
}

int cg_status_cli(int argc, char **argv, const char *base_url)
{
    bool raw = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            raw = true;
        } else {
            fprintf(stderr, "usage: clawgate status [--json]\n");
            return 2;
        }
    }
    char *url = cg_sprintf("%s/v1/gateway/status", base_url);
    cg_buf_t body = {0};
    char err[CURL_ERROR_SIZE] = "";
    long code = 0;
    CURL *e = curl_easy_init();
    CURLcode rc = CURLE_FAILED_INIT;
    if (e) {
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        const char *key = getenv("CLAWGATE_API_KEY");
        struct curl_slist *hdrs = NULL;
        if (key && *key) {
            char *h = cg_sprintf("Authorization: Bearer %s", key);
            hdrs = curl_slist_append(hdrs, h);
            cg_free(h);
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
        }
        rc = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(e);
        curl_slist_free_all(hdrs);
    }
    int ret = 1;
    if (rc != CURLE_OK) {
        fprintf(stderr, "clawgate status: %s: %s\n", url, err[0] ? err : curl_easy_strerror(rc));
    } else if (code != 200) {
        fprintf(stderr, "clawgate status: %s answered HTTP %ld: %.*s\n", url, code,
                (int)(body.len > 500 ? 500 : body.len), body.data ? body.data : "");
    } else if (raw) {
        fwrite(body.data, 1, body.len, stdout);
        fputc('\n', stdout);
        ret = 0;
    } else {
        json_object *root = body.data ? json_tokener_parse(body.data) : NULL;
        if (!root || !json_object_is_type(root, json_type_object)) {
            fprintf(stderr, "clawgate status: %s did not answer with a status document\n", url);
        } else {
            print_table(root);
            ret = 0;
        }
        json_object_put(root);
    }
    cg_buf_free(&body);
    cg_free(url);
    return ret;
}
