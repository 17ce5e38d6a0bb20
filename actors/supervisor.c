/*
 * supervisor.c — permanent children with OTP one_for_one semantics,
 * heartbeats, and the health/ranking snapshot.
 *
 * DESIGN
 * Children. One child record per configured provider (cg_provider_spec) plus
 * one for the prober (cg_prober_spec); each is `permanent`: whenever it ends
 * other than because we stopped it, it is joined and spawned again, and only
 * that child (one_for_one: its siblings and in-flight requests elsewhere are
 * not disturbed; the provider's own cleanup has already sent FAIL to every
 * request it held, so the front fails those over or ends their streams).
 * Restart intensity: more than maxRestarts crashes within periodSeconds and
 * the child is `failed` — no actor, routes carry address 0, plans skip it —
 * and is spawned again after a back-off of 1 s doubling to 60 s while the
 * others keep serving. The back-off resets once a child has lived a whole
 * period. OTP would take the supervisor down at that point; a gateway must
 * rather keep serving from the rest.
 *
 * Heartbeat. Every HEARTBEAT_NS each running provider gets CG_MSG_TICK and
 * answers with CG_MSG_TICK. One that has answered before and then stays
 * silent for STALL_NS is `stalled`: skipped by plans until it answers again.
 * It is not restarted: a C thread stuck in a system call or a loop cannot be
 * killed safely (no pthread_cancel across libcurl and our mailboxes), and
 * spawning a second actor for the same provider beside a stuck one would
 * leave the stuck thread's memory and sockets forever. A provider that never
 * answered is not judged (an older provider build that ignores TICK must not
 * be taken for a stuck one).
 *
 * Health. The supervisor owns the only mutable cg_health_t. Changes that
 * alter routing (a cooldown starts, a provider goes down or up, a model is
 * unloaded, a child fails) are published at once; statistics (EWMAs,
 * in-flight) are published at most every FLUSH_NS and with every re-rank
 * (rerankSeconds). Publishing is a deep copy into a new immutable value; the
 * snapshot frees old ones when their last reader lets go.
 *
 * Routes. cg_routes_t (provider name -> actor address) is republished after
 * every spawn, restart, failure and reload, so the request path never sends
 * to an address that a restart retired for longer than one snapshot swap
 * (and a send to a retired address fails cleanly with CG_ENOENT anyway).
 *
 * The front. main spawns the HTTP front with the supervisor as parent; its
 * EXIT reaches us as an unknown child. If it ended for any reason other than
 * a requested stop, the gateway cannot serve: write 1 to fatal_fd.
 */
#include "actors/supervisor.h"

#include "actors/health.h"
#include "actors/prober.h"
#include "actors/provider.h"
#include "config/config.h"
#include "http/server.h"

#include <unistd.h>

#define NS_PER_S 1000000000ull
#define HEARTBEAT_NS (2ull * NS_PER_S)
#define STALL_NS (10ull * NS_PER_S)
#define FLUSH_NS (250ull * 1000000ull)
#define BACKOFF_MIN_NS (1ull * NS_PER_S)
#define BACKOFF_MAX_NS (60ull * NS_PER_S)
#define DEFAULT_INTENSITY 5
#define DEFAULT_PERIOD_S 30
#define DEFAULT_RERANK_S 5
#define STOP_GRACE_NS (40ull * NS_PER_S) /* the front drains for 30 s before us */

typedef enum { CHILD_PROVIDER, CHILD_PROBER } child_kind_t;

typedef struct child {
    child_kind_t kind;
    char *name; /* provider name, or "prober" */
    cg_aid_t aid;
    /* spawn arguments: must outlive the child's init, so they live here */
    cg_provider_args_t pargs;
    cg_prober_args_t qargs;
    uint64_t spawned_ns;
    uint64_t *crash_ns; /* ring of the last `ring` crash times */
    size_t ring, n_crash, crash_head;
    bool failed;
    uint64_t backoff_ns;
    uint64_t retry_timer;
    bool answered; /* has answered a heartbeat since (re)spawn */
    uint64_t last_answer_ns;
    bool stalled;
    bool restarting; /* respawned after a crash, not yet confirmed alive */
    bool removed;    /* a reload dropped it: stop, do not restart */
} child_t;

static cg_supervisor_test_hooks_t test_hooks;

void cg_supervisor_set_test_hooks(const cg_supervisor_test_hooks_t *hooks)
{
    /* Plain stores: tests call this before cg_actor_spawn, whose thread
     * creation orders them before the supervisor's reads in init. */
    if (hooks)
        test_hooks = *hooks;
    else
        memset(&test_hooks, 0, sizeof test_hooks);
}

typedef struct sup {
    cg_actor_t *a;
    cg_supervisor_args_t args;
    child_t **kids;
    size_t n_kids;
    cg_health_t *health;
    uint64_t health_version;
    bool dirty;
    bool stopping;
    bool abandon; /* the stop grace ran out: leave children that did not end */
    uint64_t hb_timer, flush_timer, rank_timer;
    int intensity;
    uint64_t period_ns;
    uint64_t heartbeat_ns, stall_ns;
    const cg_actor_spec_t *provider_spec;
} sup_t;

static void publish_routes(sup_t *s);
static void publish_health(sup_t *s);
static void respawn_cb(cg_actor_t *a, void *ud);

/* ---- message builders ---- */

cg_msg_t *cg_sup_sample_msg(const char *ref, const char *class_name, int status, uint64_t ttft_ns,
                            uint64_t duration_ns, int64_t output_tokens, int64_t retry_after_ms)
{
    return cg_msg_pack(CG_SUP_SAMPLE, "ssiuuii", ref, class_name, (int64_t)status, ttft_ns,
                       duration_ns, output_tokens, retry_after_ms);
}

cg_msg_t *cg_sup_begin_msg(const char *ref)
{
    return cg_msg_pack(CG_SUP_BEGIN, "s", ref);
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    if (!s) {
        msgpack_pack_nil(pk);
        return;
    }
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

cg_msg_t *cg_sup_health_msg(const char *provider, bool up, uint64_t latency_ns, const char *error,
                            const char *const *models, size_t n_models, bool listed)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    pack_cstr(&pk, provider);
    if (up)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    msgpack_pack_uint64(&pk, latency_ns);
    pack_cstr(&pk, error);
    if (!listed) {
        msgpack_pack_nil(&pk);
    } else {
        msgpack_pack_array(&pk, n_models);
        for (size_t i = 0; i < n_models; i++)
            pack_cstr(&pk, models[i] ? models[i] : "");
    }
    if (!sb.data) /* msgpack-c aborts the packer on OOM without telling us */
        cg_assert(!"msgpack_sbuffer: out of memory");
    cg_msg_t *m = cg_msg_new(CG_SUP_HEALTH, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return m;
}

/* ---- children ---- */

static child_t *child_new(sup_t *s, child_kind_t kind, const char *name)
{
    child_t *c = cg_calloc(1, sizeof *c);
    c->kind = kind;
    c->name = cg_strdup(name);
    c->ring = (size_t)s->intensity + 1;
    c->crash_ns = cg_calloc(c->ring, sizeof *c->crash_ns);
    c->pargs.provider_name = c->name;
    c->pargs.config = s->args.config;
    c->qargs.config = s->args.config;
    c->qargs.supervisor = cg_actor_self(s->a);
    s->kids = cg_realloc(s->kids, (s->n_kids + 1) * sizeof *s->kids);
    s->kids[s->n_kids++] = c;
    return c;
}

static void child_free(child_t *c)
{
    cg_free(c->crash_ns);
    cg_free(c->name);
    cg_free(c);
}

static void child_remove(sup_t *s, child_t *c)
{
    for (size_t i = 0; i < s->n_kids; i++) {
        if (s->kids[i] == c) {
            memmove(&s->kids[i], &s->kids[i + 1], (s->n_kids - i - 1) * sizeof *s->kids);
            s->n_kids--;
            break;
        }
    }
    if (c->retry_timer)
        cg_actor_timer_cancel(s->a, c->retry_timer);
    child_free(c);
}

static child_t *child_by_aid(sup_t *s, cg_aid_t aid)
{
    for (size_t i = 0; i < s->n_kids; i++)
        if (aid && s->kids[i]->aid == aid)
            return s->kids[i];
    return NULL;
}

static child_t *child_by_name(sup_t *s, child_kind_t kind, const char *name)
{
    for (size_t i = 0; i < s->n_kids; i++)
        if (s->kids[i]->kind == kind && !s->kids[i]->removed && strcmp(s->kids[i]->name, name) == 0)
            return s->kids[i];
    return NULL;
}

static cg_health_provider_t *hprov(sup_t *s, const child_t *c)
{
    if (c->kind != CHILD_PROVIDER)
        return NULL;
    return (cg_health_provider_t *)cg_health_find_provider(s->health, c->name);
}

/* The health view of a child's supervision state. */
static void sync_run(sup_t *s, child_t *c)
{
    cg_health_provider_t *hp = hprov(s, c);
    if (!hp)
        return;
    if (c->failed)
        hp->run = CG_RUN_FAILED;
    else if (!c->aid)
        hp->run = CG_RUN_STOPPED;
    else if (c->stalled)
        hp->run = CG_RUN_STALLED;
    else if (c->restarting)
        hp->run = CG_RUN_RESTARTING;
    else
        hp->run = CG_RUN_RUNNING;
}

static int spawn_child(sup_t *s, child_t *c)
{
    const cg_actor_spec_t *spec = c->kind == CHILD_PROVIDER ? s->provider_spec : &cg_prober_spec;
    void *arg = c->kind == CHILD_PROVIDER ? (void *)&c->pargs : (void *)&c->qargs;
    c->answered = false;
    c->stalled = false;
    c->spawned_ns = cg_now_ns();
    /* The prober keeps a thread of its own: its transfers never share a turn
     * with client traffic. */
    cg_loop_t *loop = c->kind == CHILD_PROVIDER ? s->args.loop : NULL;
    int rc = cg_actor_spawn_on(loop, spec, arg, cg_actor_self(s->a), &c->aid);
    if (rc != 0) {
        c->aid = CG_AID_NONE;
        cg_error("supervisor: cannot spawn %s: %s", c->name, cg_strerror(rc));
    }
    return rc;
}

/* Record a crash and decide: true = restart now, false = intensity exceeded. */
static bool crash_allows_restart(sup_t *s, child_t *c, uint64_t now)
{
    c->crash_ns[c->crash_head] = now;
    c->crash_head = (c->crash_head + 1) % c->ring;
    if (c->n_crash < c->ring)
        c->n_crash++;
    size_t recent = 0;
    for (size_t i = 0; i < c->n_crash; i++)
        if (now - c->crash_ns[i] <= s->period_ns)
            recent++;
    return recent <= (size_t)s->intensity;
}

static void mark_failed(sup_t *s, child_t *c, uint64_t now)
{
    /* A child that lived a whole period since its last spawn starts its
     * back-off afresh. */
    if (now - c->spawned_ns > s->period_ns)
        c->backoff_ns = 0;
    c->backoff_ns = c->backoff_ns ? c->backoff_ns * 2 : BACKOFF_MIN_NS;
    if (c->backoff_ns > BACKOFF_MAX_NS)
        c->backoff_ns = BACKOFF_MAX_NS;
    c->failed = true;
    c->retry_timer = cg_actor_timer(s->a, c->backoff_ns, 0, respawn_cb, c);
    cg_health_provider_t *hp = hprov(s, c);
    if (hp) {
        hp->retry_at_ns = now + c->backoff_ns;
        hp->retry_at_wall_ms = cg_wall_ms() + (int64_t)(c->backoff_ns / 1000000u);
    }
    cg_error("supervisor: %s crashed more than %d times in %llu s: failed, next try in %llu ms",
             c->name, s->intensity, (unsigned long long)(s->period_ns / NS_PER_S),
             (unsigned long long)(c->backoff_ns / 1000000u));
}

static void respawn_cb(cg_actor_t *a, void *ud)
{
    sup_t *s = cg_actor_state(a);
    child_t *c = ud;
    c->retry_timer = 0;
    if (s->stopping)
        return;
    c->failed = false;
    c->restarting = true;
    if (spawn_child(s, c) != 0) {
        mark_failed(s, c, cg_now_ns());
    } else {
        cg_notice("supervisor: %s respawned after back-off", c->name);
    }
    sync_run(s, c);
    publish_routes(s);
    publish_health(s);
}

/* ---- snapshots ---- */

static void publish_routes(sup_t *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_kids; i++)
        if (s->kids[i]->kind == CHILD_PROVIDER && !s->kids[i]->removed)
            n++;
    cg_routes_t *r = cg_routes_new(n);
    size_t k = 0;
    for (size_t i = 0; i < s->n_kids; i++) {
        child_t *c = s->kids[i];
        if (c->kind != CHILD_PROVIDER || c->removed)
            continue;
        r->names[k] = cg_strdup(c->name);
        r->aids[k] = c->aid;
        k++;
    }
    cg_snap_publish(s->args.routes, r);
}

static void publish_health(sup_t *s)
{
    s->health->version = ++s->health_version;
    cg_snap_publish(s->args.health, cg_health_clone(s->health));
    s->dirty = false;
}

static void flush_cb(cg_actor_t *a, void *ud)
{
    CG_UNUSED(ud);
    sup_t *s = cg_actor_state(a);
    if (s->dirty)
        publish_health(s);
}

static void rank_cb(cg_actor_t *a, void *ud)
{
    CG_UNUSED(ud);
    sup_t *s = cg_actor_state(a);
    cg_config_t *cfg = cg_snap_acquire(s->args.config);
    bool changed = cfg && cg_health_rank(s->health, cfg, cg_now_ns());
    if (cfg)
        cg_snap_release(s->args.config, cfg);
    if (changed || s->dirty)
        publish_health(s);
}

/* ---- heartbeat ---- */

static void heartbeat_cb(cg_actor_t *a, void *ud)
{
    CG_UNUSED(ud);
    sup_t *s = cg_actor_state(a);
    uint64_t now = cg_now_ns();
    bool changed = false;
    for (size_t i = 0; i < s->n_kids; i++) {
        child_t *c = s->kids[i];
        if (c->kind != CHILD_PROVIDER || !c->aid || c->removed)
            continue;
        if (c->answered && !c->stalled && now - c->last_answer_ns > s->stall_ns) {
            c->stalled = true;
            cg_error("supervisor: provider %s has not answered a heartbeat for %llu ms: stalled "
                     "(skipped until it answers)",
                     c->name, (unsigned long long)((now - c->last_answer_ns) / 1000000u));
            changed = true;
        }
        /* A restarted child that lived through a heartbeat period is running
         * again as far as anyone can tell, answer or not. */
        if (c->restarting && now - c->spawned_ns >= s->heartbeat_ns) {
            c->restarting = false;
            changed = true;
        }
        sync_run(s, c);
        cg_msg_t *m = cg_msg_new(CG_MSG_TICK, NULL, 0);
        m->sender = m->reply_to = cg_actor_self(a);
        /* A full mailbox is an answer of sorts (it is not draining): drop
         * the tick; STALL_NS without an answer will tell. */
        if (cg_actor_send(c->aid, m) != CG_OK)
            cg_msg_free(m);
    }
    if (changed)
        publish_health(s);
}

static void on_tick(sup_t *s, const cg_msg_t *m)
{
    child_t *c = child_by_aid(s, m->sender);
    if (!c)
        return;
    c->answered = true;
    c->last_answer_ns = cg_now_ns();
    if (c->stalled || c->restarting) {
        if (c->stalled)
            cg_notice("supervisor: provider %s answers again", c->name);
        c->stalled = false;
        c->restarting = false;
        sync_run(s, c);
        publish_health(s);
    }
}

/* ---- EXIT ---- */

static bool any_alive(sup_t *s)
{
    for (size_t i = 0; i < s->n_kids; i++)
        if (s->kids[i]->aid)
            return true;
    return false;
}

static void front_exited(sup_t *s, cg_aid_t aid, int64_t reason, const char *detail)
{
    if (reason == CG_EXIT_SHUTDOWN || s->stopping) {
        cg_info("supervisor: actor %llx stopped", (unsigned long long)aid);
        return;
    }
    cg_error("supervisor: actor %llx (the front) ended: %s%s%s; asking main to exit",
             (unsigned long long)aid, cg_exit_reason_name((int)reason), detail ? ": " : "",
             detail ? detail : "");
    if (s->args.fatal_fd >= 0) {
        cg_efd_signal(s->args.fatal_fd);
    }
}

static void on_exit_msg(sup_t *s, cg_msg_t *m)
{
    cg_msg_view_t v;
    uint64_t aid = 0;
    int64_t reason = 0;
    const char *detail = NULL;
    size_t dlen = 0;
    if (cg_msg_unpack(m, &v, "uis", &aid, &reason, &detail, &dlen) != 0) {
        cg_msg_view_done(&v);
        cg_warn("supervisor: malformed EXIT message ignored");
        return;
    }
    child_t *c = child_by_aid(s, aid);
    if (!c) {
        front_exited(s, aid, reason, detail);
        cg_msg_view_done(&v);
        return;
    }
    /* The thread has posted its EXIT and is ending: the join is short. */
    cg_actor_join(aid, NULL);
    c->aid = CG_AID_NONE;
    uint64_t now = cg_now_ns();

    if (s->stopping) {
        cg_msg_view_done(&v);
        if (!any_alive(s))
            cg_actor_exit(s->a, CG_EXIT_SHUTDOWN, NULL);
        return;
    }
    if (c->removed) {
        cg_info("supervisor: %s stopped (removed from the config)", c->name);
        cg_msg_view_done(&v);
        child_remove(s, c);
        return;
    }

    cg_warn("supervisor: %s ended (%s%s%s); restarting", c->name, cg_exit_reason_name((int)reason),
            detail ? ": " : "", detail ? detail : "");
    cg_msg_view_done(&v);
    cg_health_provider_t *hp = hprov(s, c);
    if (hp)
        hp->restarts++;
    c->stalled = false;
    if (crash_allows_restart(s, c, now)) {
        c->restarting = true;
        if (spawn_child(s, c) != 0)
            mark_failed(s, c, now);
    } else {
        mark_failed(s, c, now);
    }
    sync_run(s, c);
    if (c->kind == CHILD_PROVIDER) {
        publish_routes(s);
        publish_health(s);
    }
}

/* ---- samples and probes ---- */

static void on_sample(sup_t *s, cg_msg_t *m)
{
    cg_msg_view_t v;
    const char *ref, *cls;
    size_t rl, cl;
    int64_t status, out_tokens, retry_after;
    uint64_t ttft, dur;
    if (cg_msg_unpack(m, &v, "ssiuuii", &ref, &rl, &cls, &cl, &status, &ttft, &dur, &out_tokens,
                      &retry_after) == 0) {
        if (ref && cg_health_on_sample(s->health, ref, cls, (int)status, ttft, dur, out_tokens,
                                       retry_after, cg_now_ns(), cg_wall_ms()))
            publish_health(s);
        else
            s->dirty = true;
    }
    cg_msg_view_done(&v);
}

static void on_begin(sup_t *s, cg_msg_t *m)
{
    cg_msg_view_t v;
    const char *ref;
    size_t rl;
    if (cg_msg_unpack(m, &v, "s", &ref, &rl) == 0 && ref) {
        cg_health_on_begin(s->health, ref);
        s->dirty = true;
    }
    cg_msg_view_done(&v);
}

#define MAX_LISTED 4096

static void on_health(sup_t *s, cg_msg_t *m)
{
    cg_msg_view_t v;
    const char *prov, *err;
    size_t pl, el;
    int up;
    uint64_t lat;
    const msgpack_object *list;
    if (cg_msg_unpack(m, &v, "sbuso", &prov, &pl, &up, &lat, &err, &el, &list) != 0 || !prov) {
        cg_msg_view_done(&v);
        return;
    }
    bool listed = list->type == MSGPACK_OBJECT_ARRAY;
    size_t n = listed ? list->via.array.size : 0;
    if (n > MAX_LISTED)
        n = MAX_LISTED;
    char **ids = cg_calloc(n ? n : 1, sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *o = &list->via.array.ptr[i];
        if (o->type == MSGPACK_OBJECT_STR)
            ids[k++] = cg_strndup(o->via.str.ptr, o->via.str.size);
    }
    if (cg_health_on_probe(s->health, prov, up, lat, err, (const char *const *)ids, k, listed,
                           cg_now_ns(), cg_wall_ms()))
        publish_health(s);
    else
        s->dirty = true;
    for (size_t i = 0; i < k; i++)
        cg_free(ids[i]);
    cg_free(ids);
    cg_msg_view_done(&v);
}

/* ---- reload ---- */

static void on_reload(sup_t *s)
{
    cg_config_t *cfg = cg_snap_acquire(s->args.config);
    if (!cfg)
        return;
    cg_health_t *h = cg_health_reconcile(s->health, cfg);
    cg_health_free(s->health);
    s->health = h;
    /* providers that went away: stop them (their EXIT removes the record) */
    for (size_t i = 0; i < s->n_kids;) {
        child_t *c = s->kids[i];
        bool keep = c->kind != CHILD_PROVIDER || c->removed;
        for (size_t j = 0; !keep && j < cfg->n_providers; j++)
            keep = strcmp(cfg->providers[j].name, c->name) == 0;
        if (keep) {
            i++;
            continue;
        }
        c->removed = true;
        if (c->aid) {
            cg_actor_stop(c->aid);
            i++;
        } else {
            child_remove(s, c); /* failed and waiting: nothing to stop */
        }
    }
    /* providers that are new: spawn them */
    for (size_t j = 0; j < cfg->n_providers; j++) {
        const char *name = cfg->providers[j].name;
        /* (a provider removed and re-added before its old actor ended gets
         * a fresh record; the old one goes when its EXIT comes) */
        child_t *c = child_by_name(s, CHILD_PROVIDER, name);
        if (!c) {
            c = child_new(s, CHILD_PROVIDER, name);
            if (spawn_child(s, c) != 0)
                mark_failed(s, c, cg_now_ns());
        }
    }
    for (size_t i = 0; i < s->n_kids; i++)
        sync_run(s, s->kids[i]);
    cg_health_rank(s->health, cfg, cg_now_ns());
    cg_snap_release(s->args.config, cfg);

    child_t *q = child_by_name(s, CHILD_PROBER, "prober");
    if (q && q->aid) {
        cg_msg_t *m = cg_msg_new(CG_MSG_RELOAD, NULL, 0);
        m->sender = cg_actor_self(s->a);
        if (cg_actor_send(q->aid, m) != CG_OK)
            cg_msg_free(m); /* it is restarting: the new one reads the new config */
    }
    publish_routes(s);
    publish_health(s);
}

/* ---- actor ---- */

static int sup_init(cg_actor_t *a, void *arg)
{
    const cg_supervisor_args_t *args = arg;
    if (!args || !args->config || !args->routes || !args->health)
        return CG_EINVAL;
    cg_config_t *cfg = cg_snap_acquire(args->config);
    if (!cfg)
        return CG_EINVAL;
    sup_t *s = cg_calloc(1, sizeof *s);
    s->a = a;
    s->args = *args;
    cg_actor_set_state(a, s);
    const cg_settings_t *st = &cfg->settings;
    s->intensity = st->restart_intensity > 0 ? st->restart_intensity : DEFAULT_INTENSITY;
    s->period_ns =
        (uint64_t)(st->restart_period_s > 0 ? st->restart_period_s : DEFAULT_PERIOD_S) * NS_PER_S;
    uint64_t rerank_ns = (uint64_t)(st->rerank_s > 0 ? st->rerank_s : DEFAULT_RERANK_S) * NS_PER_S;
    s->heartbeat_ns = test_hooks.heartbeat_ns ? test_hooks.heartbeat_ns : HEARTBEAT_NS;
    s->stall_ns = test_hooks.stall_ns ? test_hooks.stall_ns : STALL_NS;
    s->provider_spec = test_hooks.provider_spec ? test_hooks.provider_spec : &cg_provider_spec;
    s->health = cg_health_new(cfg);
    cg_health_rank(s->health, cfg, cg_now_ns());

    for (size_t i = 0; i < cfg->n_providers; i++) {
        child_t *c = child_new(s, CHILD_PROVIDER, cfg->providers[i].name);
        if (spawn_child(s, c) != 0)
            mark_failed(s, c, cg_now_ns());
        sync_run(s, c);
    }
    cg_snap_release(args->config, cfg);
    child_t *q = child_new(s, CHILD_PROBER, "prober");
    if (spawn_child(s, q) != 0)
        mark_failed(s, q, cg_now_ns());

    publish_routes(s);
    publish_health(s);
    s->hb_timer = cg_actor_timer(a, s->heartbeat_ns, s->heartbeat_ns, heartbeat_cb, NULL);
    s->flush_timer = cg_actor_timer(a, FLUSH_NS, FLUSH_NS, flush_cb, NULL);
    s->rank_timer = cg_actor_timer(a, rerank_ns, rerank_ns, rank_cb, NULL);
    cg_info("supervisor: %zu provider(s) and the prober started", s->n_kids - 1);
    return 0;
}

static void sup_handle(cg_actor_t *a, cg_msg_t *m)
{
    sup_t *s = cg_actor_state(a);
    switch (m->type) {
    case CG_SUP_SAMPLE:
        on_sample(s, m);
        break;
    case CG_SUP_BEGIN:
        on_begin(s, m);
        break;
    case CG_SUP_HEALTH:
        on_health(s, m);
        break;
    case CG_MSG_EXIT:
        on_exit_msg(s, m);
        break;
    case CG_MSG_TICK:
        on_tick(s, m);
        break;
    case CG_MSG_RELOAD:
        if (!s->stopping)
            on_reload(s);
        break;
    default:
        cg_debug("supervisor: ignoring message type %u", m->type);
        break;
    }
    cg_msg_free(m);
}

/* A child that does not end within the grace (a stalled provider stuck in a
 * call) would keep main from ever exiting: give up on it and exit; the
 * process is ending anyway. */
static void grace_cb(cg_actor_t *a, void *ud)
{
    CG_UNUSED(ud);
    sup_t *s = cg_actor_state(a);
    for (size_t i = 0; i < s->n_kids; i++)
        if (s->kids[i]->aid)
            cg_error("supervisor: %s did not stop within %llu s; leaving it behind",
                     s->kids[i]->name, (unsigned long long)(STOP_GRACE_NS / NS_PER_S));
    s->abandon = true;
    cg_actor_exit(a, CG_EXIT_SHUTDOWN, "children did not stop in time");
}

/* Stop everything we run; exit once the last EXIT has been joined. */
static void sup_stopping(cg_actor_t *a)
{
    sup_t *s = cg_actor_state(a);
    s->stopping = true;
    cg_actor_timer_cancel(a, s->hb_timer);
    cg_actor_timer_cancel(a, s->flush_timer);
    cg_actor_timer_cancel(a, s->rank_timer);
    for (size_t i = 0; i < s->n_kids; i++) {
        child_t *c = s->kids[i];
        if (c->retry_timer) {
            cg_actor_timer_cancel(a, c->retry_timer);
            c->retry_timer = 0;
        }
        if (c->aid)
            cg_actor_stop(c->aid); /* its EXIT comes whatever the answer */
    }
    if (!any_alive(s))
        cg_actor_exit(a, CG_EXIT_SHUTDOWN, NULL);
    else
        cg_actor_timer(a, STOP_GRACE_NS, 0, grace_cb, NULL);
}

static void sup_cleanup(cg_actor_t *a)
{
    sup_t *s = cg_actor_state(a);
    if (!s)
        return;
    /* After a crash of our own, children may still run: stop and reap them
     * so no thread outlives its supervisor (unless the stop grace already
     * gave up on them). Their spawn arguments were copied by their init, so
     * freeing the records below is safe either way. */
    for (size_t i = 0; i < s->n_kids && !s->abandon; i++) {
        child_t *c = s->kids[i];
        if (c->aid) {
            cg_actor_stop(c->aid);
            cg_actor_join(c->aid, NULL);
            c->aid = CG_AID_NONE;
        }
    }
    for (size_t i = 0; i < s->n_kids; i++)
        child_free(s->kids[i]);
    cg_free(s->kids);
    cg_health_free(s->health);
    cg_free(s);
    cg_actor_set_state(a, NULL);
}

const cg_actor_spec_t cg_supervisor_spec = {
    .name = "supervisor",
    .mailbox_cap = 0,
    .batch = 0,
    .init = sup_init,
    .handle = sup_handle,
    .stopping = sup_stopping,
    .cleanup = sup_cleanup,
};
