/*
 * health.h — the published health and ranking snapshot, and the pure
 * functions the request path runs on it.
 *
 * DESIGN
 * The supervisor owns a private, mutable cg_health_t: it applies every
 * attempt's outcome (SAMPLE), every attempt start (BEGIN), every probe result
 * (HEALTH) and every child restart to it with the cg_health_on_* functions
 * below, and publishes an immutable deep copy (cg_health_clone) through a
 * snapshot (actors/snapshot.h). The request path never sends a message or
 * takes a lock to decide where a request goes: it acquires the current
 * snapshot and calls cg_health_plan.
 *
 * Time: everything that expires (cooldowns, EWMA decay) is stored as a
 * CLOCK_MONOTONIC instant and compared with the caller's `now`, so a
 * published snapshot never goes stale in the wrong direction: a cooldown that
 * ended after publication is already over for the next reader. Wall-clock
 * copies (…_wall_ms) exist only for display and the all-failed error.
 *
 * Latency: a peak-sensitive EWMA (after Finagle's PeakEwma) of time to first
 * token and of time per output token per model. A sample above the current
 * value replaces it at once; one below blends in with weight 1 - e^(-dt/tau)
 * (tau 30 s). Reading decays the value towards 0 with the time since the last
 * sample, so a model that stopped getting traffic because it was slow looks
 * cheaper again after a minute or two and is tried again (this is how the
 * ranking re-discovers a recovered primary without synthetic requests).
 * score = ewma_ttft * (inflight + 1).
 *
 * Everything here that takes a `cg_health_t *` (non-const) is for the
 * supervisor's private copy only; everything taking `const cg_health_t *` is
 * pure and safe on a published snapshot from any thread.
 */
#ifndef CG_HEALTH_H
#define CG_HEALTH_H

#include "common/cg.h"
#include "config/config.h"

/* Whether the provider's actor is running (supervision). */
typedef enum {
    CG_RUN_RUNNING = 0,
    CG_RUN_RESTARTING, /* crashed and respawned; clears at the next heartbeat answer or probe */
    CG_RUN_FAILED,     /* restart intensity exceeded: no actor, respawn after back-off */
    CG_RUN_STALLED,    /* no heartbeat answer for 10 s: thread stuck (cannot be killed) */
    CG_RUN_STOPPED,    /* not running and not coming back (removed, shutting down) */
} cg_run_state_t;

/* Whether the upstream answers (probes and requests). */
typedef enum {
    CG_REACH_UNKNOWN = 0, /* no probe or request yet: routable */
    CG_REACH_UP,
    CG_REACH_DOWN, /* skipped until a probe or a request succeeds */
} cg_reach_state_t;

typedef struct cg_health_provider {
    char *name;
    bool available; /* config: false -> never routed, never probed */
    cg_run_state_t run;
    cg_reach_state_t reach;
    int restarts;              /* crash restarts since start */
    uint64_t retry_at_ns;      /* CG_RUN_FAILED: next respawn (monotonic) */
    int64_t retry_at_wall_ms;  /* same, for display */
    uint64_t probe_latency_ns; /* last probe's round trip, 0 if none */
    uint64_t probe_at_ns;      /* last probe result (monotonic), 0 if none */
    int64_t probe_at_wall_ms;
    char *last_error; /* last probe or transport error, NULL if none */
} cg_health_provider_t;

typedef struct cg_health_model {
    char *ref; /* "provider/id" */
    uint64_t hash;
    size_t provider; /* index into cg_health_t.providers */
    bool unloaded;   /* the provider's /models list lacks it */
    uint64_t cooldown_until_ns;
    int64_t cooldown_until_wall_ms;
    int failures; /* consecutive, reset by a success or 24 h without failure */
    uint64_t last_failure_ns;
    const char *last_class; /* static string (class name), NULL if none */
    double ewma_ttft_ns;    /* stored value at ewma_at_ns; < 0: no sample yet */
    double ewma_tpot_ns;    /* time per output token; < 0: no sample yet */
    uint64_t ttft_at_ns, tpot_at_ns;
    int inflight;
    double score; /* at the last ranking; < 0: unknown */
    uint64_t successes, failures_total;
} cg_health_model_t;

typedef struct cg_health {
    uint64_t version; /* the snapshot version it was published as */
    bool adaptive;
    double primary_factor;
    uint64_t ranked_at_ns;
    cg_health_provider_t *providers;
    size_t n_providers;
    cg_health_model_t *models;
    size_t n_models;
    char **order; /* current fallback order: primary + fallbacks as ranked */
    size_t n_order;
} cg_health_t;

#define CG_HEALTH_TAU_NS (30ull * 1000000000ull)

/* ---- construction (any thread; results are the caller's) ---- */

/* A fresh health for c: every provider and model, nothing known, the
 * configured order. */
cg_health_t *cg_health_new(const cg_config_t *c);
/* A health for c that keeps what old knew about providers and models that c
 * still has (by name / ref). old may be NULL. */
cg_health_t *cg_health_reconcile(const cg_health_t *old, const cg_config_t *c);
cg_health_t *cg_health_clone(const cg_health_t *h);
void cg_health_free(void *h); /* snapshot destructor; NULL is fine */

const cg_health_provider_t *cg_health_find_provider(const cg_health_t *h, const char *name);
const cg_health_model_t *cg_health_find_model(const cg_health_t *h, const char *ref);

/* ---- pure rules (any thread) ---- */

/* false for "format" and "context_overflow" (and NULL): they never fall back. */
bool cg_health_falls_back(const char *class_name);

/* Cooldown after the failures-th consecutive failure (>= 1) of class:
 * 30 s, 60 s, 300 s cap for rate_limit/overloaded/timeout/unknown/
 * model_not_found; auth 10 min doubling to 60 min; billing 5 h doubling to
 * 24 h; never shorter than retry_after_ms (itself capped at 24 h); 0 for
 * format, context_overflow and NULL. */
uint64_t cg_health_cooldown_ns(const char *class_name, int failures, int64_t retry_after_ms);

/* Peak EWMA: the value v (stored at `at`) as seen at now (decayed towards 0),
 * and the update with a new sample x. v < 0 means "no sample yet". */
double cg_health_ewma_read(double v, uint64_t at, uint64_t now);
void cg_health_ewma_observe(double *v, uint64_t *at, double x, uint64_t now);

/* The models a request for `resolved` tries, in order, into out[0..max).
 * When resolved is the configured primary (or NULL): the primary and
 * c->fallbacks in the current order — pinned: as configured; adaptive: as h
 * ranked them (the primary first unless it is slower than the best fallback
 * by primaryFactor). When resolved is another model (an explicit choice): it
 * first, then the fallbacks in the current order, then the primary last (as
 * OpenClaw does for an override). Each model at most once. Skipped: models
 * whose provider is unavailable (config), down, failed, stalled or stopped,
 * and models that are unloaded or cooling down at now_ns. If that leaves
 * nothing, the one candidate whose cooldown ends first (or, when none is
 * cooling, the first one that is merely down or unloaded) — never one whose
 * provider is unavailable, failed, stalled or stopped. h may be NULL (no
 * health yet: configured order, config availability only). Returns the
 * count; at most 64 candidates are considered. */
size_t cg_health_plan(const cg_health_t *h, const cg_config_t *c, const cg_model_t *resolved,
                      uint64_t now_ns, const cg_model_t **out, size_t max);

/* Wall-clock ms when the first cooldown among the candidates of a request
 * for `resolved` ends (for the all-failed error), 0 if none is cooling. */
int64_t cg_health_soonest_cooldown_ms(const cg_health_t *h, const cg_config_t *c,
                                      const cg_model_t *resolved, uint64_t now_ns);

/* The display state of a provider at now: unavailable, restarting, failed,
 * stalled, stopped, down, cooling (every model cooling), unloaded (every
 * model unloaded), up, or unknown. */
const char *cg_health_provider_state(const cg_health_t *h, size_t i, uint64_t now_ns);
/* A model's: up, unknown, unloaded, cooling (or its provider's when that one
 * is not routable). */
const char *cg_health_model_state(const cg_health_t *h, size_t i, uint64_t now_ns);

/* The JSON for GET /v1/gateway/status, appended to out. h may be NULL. */
void cg_health_status_json(const cg_health_t *h, const cg_config_t *c, cg_buf_t *out);

/* ---- the supervisor's private copy only ---- */

/* An attempt started on ref (in-flight + 1). */
void cg_health_on_begin(cg_health_t *h, const char *ref);

/* An attempt ended: class NULL on success. Applies the cooldown rules (see
 * cg_health_cooldown_ns; auth and billing cool every model of the provider,
 * since the key is the provider's), marks the provider down on a transport
 * failure (status 0, class timeout) and up on a success, feeds the EWMAs.
 * Returns true when something the request path decides on changed (a
 * cooldown started or ended, the provider went up or down): publish at once.
 * (Extending a cooldown that is already running returns false.) */
bool cg_health_on_sample(cg_health_t *h, const char *ref, const char *class_name, int status,
                         uint64_t ttft_ns, uint64_t duration_ns, int64_t output_tokens,
                         int64_t retry_after_ms, uint64_t now_ns, int64_t wall_ms);

/* A probe result. models: the ids the endpoint listed (listed false: it gave
 * no list, unloaded flags stay as they are). Returns true on a routing change. */
bool cg_health_on_probe(cg_health_t *h, const char *provider, bool up, uint64_t latency_ns,
                        const char *error, const char *const *models, size_t n_models, bool listed,
                        uint64_t now_ns, int64_t wall_ms);

/* Recompute scores and the fallback order (pinned or adaptive, from c's
 * settings). Returns true when the order changed. */
bool cg_health_rank(cg_health_t *h, const cg_config_t *c, uint64_t now_ns);

/* ---- `clawgate status` ---- */

/* GET {base_url}/v1/gateway/status and print a table (or, with --json, the
 * raw JSON) to stdout. Returns the process exit code (0 ok, 1 unreachable or
 * bad answer, 2 usage). */
int cg_status_cli(int argc, char **argv, const char *base_url);

#endif
