/*
 * test_supervisor.c — the supervisor actor with real provider actors pointed
 * at closed loopback ports: routes published, crash -> restart with a new
 * address, restart intensity -> failed -> respawn after back-off, samples
 * change the health snapshot, heartbeat stall and recovery (with a stand-in
 * provider), the front's death reaching fatal_fd, reload, shutdown.
 *
 * tsan: yes
 */
#include "actors/supervisor.h"

#include "actors/health.h"
#include "actors/provider.h"
#include "config/config.h"
#include "http/server.h"
#include "tests/t.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 5000

static void free_config(void *p)
{
    cg_config_free(p);
}

/* A loopback port with nothing listening (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        close(fd);
        return 1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static cg_config_t *load(const char *providers_json5, const char *extra)
{
    int port = closed_port();
    char *text = cg_sprintf(
        "{ agents: { defaults: { model: { primary: 'p1/m1', fallbacks: ['p2/m1', 'p3/m1'] } } },\n"
        "  models: { mode: 'replace', providers: { %s } },\n"
        "  clawgate: { health: { intervalSeconds: 1, timeoutSeconds: 1 },\n"
        "              supervisor: { maxRestarts: 2, periodSeconds: 30 } %s } }\n",
        providers_json5, extra ? extra : "");
    char *full = cg_sprintf(text, port, port, port, port);
    cg_diags_t errors = {0}, notices = {0};
    cg_config_t *c = NULL;
    int rc = cg_config_load_string("test.json5", full, strlen(full), NULL, &c, &errors, &notices);
    for (size_t i = 0; i < errors.n; i++)
        printf("# config error: %s\n", errors.items[i]);
    cg_diags_free(&errors);
    cg_diags_free(&notices);
    cg_free(text);
    cg_free(full);
    return rc == 0 ? c : NULL;
}

#define THREE_PROVIDERS                                                                            \
    "p1: { baseUrl: 'http://127.0.0.1:%%1$d/v1', models: [{ id: 'm1', name: 'M1' }] },"            \
    "p2: { baseUrl: 'http://127.0.0.1:%%1$d/v1', models: [{ id: 'm1', name: 'M1' }] },"            \
    "p3: { baseUrl: 'http://127.0.0.1:%%1$d/v1', models: [{ id: 'm1', name: 'M1' }] }"

typedef struct world {
    cg_snap_t *config, *routes, *health;
    int fatal_fd;
    cg_supervisor_args_t args;
    cg_loop_t *loop;  /* the providers share it, as under `clawgate serve` */
    bool own_threads; /* set before world_start: no shared loop */
    cg_aid_t sup;
} world_t;

static void world_start(world_t *w, cg_config_t *c)
{
    T_ASSERT(c != NULL);
    w->config = cg_snap_new(c, free_config);
    w->routes = cg_snap_new(NULL, cg_routes_free);
    w->health = cg_snap_new(NULL, cg_health_free);
    w->fatal_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->loop = w->own_threads ? NULL : cg_loop_new("providers");
    T_ASSERT(w->own_threads || w->loop != NULL);
    w->args = (cg_supervisor_args_t){.config = w->config,
                                     .routes = w->routes,
                                     .health = w->health,
                                     .fatal_fd = w->fatal_fd,
                                     .loop = w->loop};
    T_EQ_INT(cg_actor_spawn(&cg_supervisor_spec, &w->args, CG_AID_NONE, &w->sup), 0);
}

static void world_stop(world_t *w)
{
    int reason = -1;
    T_EQ_INT(cg_actor_stop(w->sup), 0);
    T_EQ_INT(cg_actor_join(w->sup, &reason), 0);
    T_EQ_INT(reason, CG_EXIT_SHUTDOWN);
    cg_loop_free(w->loop); /* the supervisor joined every provider */
    w->own_threads = false;
    cg_snap_free(w->routes);
    cg_snap_free(w->health);
    cg_snap_free(w->config);
    close(w->fatal_fd);
}

static void sleep_ms(int ms)
{
    poll(NULL, 0, ms);
}

static cg_aid_t route_of(world_t *w, const char *name)
{
    cg_routes_t *r = cg_snap_acquire(w->routes);
    cg_aid_t a = r ? cg_routes_lookup(r, name) : CG_AID_NONE;
    if (r)
        cg_snap_release(w->routes, r);
    return a;
}

static size_t route_count(world_t *w)
{
    cg_routes_t *r = cg_snap_acquire(w->routes);
    size_t n = r ? r->n : 0;
    if (r)
        cg_snap_release(w->routes, r);
    return n;
}

/* Wait until the route for name is non-zero and differs from not. */
static cg_aid_t wait_route(world_t *w, const char *name, cg_aid_t not )
{
    for (int i = 0; i < WAIT_MS / 10; i++) {
        cg_aid_t a = route_of(w, name);
        if (a && a != not )
            return a;
        sleep_ms(10);
    }
    return CG_AID_NONE;
}

typedef struct hview {
    int run, reach, restarts;
    uint64_t cooldown;
    int failures, inflight;
    double ttft;
} hview_t;

static hview_t view(world_t *w, const char *prov, const char *ref)
{
    hview_t v = {-1, -1, -1, 0, -1, -1, -1};
    cg_health_t *h = cg_snap_acquire(w->health);
    if (h) {
        const cg_health_provider_t *p = cg_health_find_provider(h, prov);
        if (p) {
            v.run = (int)p->run;
            v.reach = (int)p->reach;
            v.restarts = p->restarts;
        }
        const cg_health_model_t *m = ref ? cg_health_find_model(h, ref) : NULL;
        if (m) {
            v.cooldown = m->cooldown_until_ns;
            v.failures = m->failures;
            v.inflight = m->inflight;
            v.ttft = m->ewma_ttft_ns;
        }
        cg_snap_release(w->health, h);
    }
    return v;
}

#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        int t_i_;                                                                                  \
        for (t_i_ = 0; t_i_ < WAIT_MS / 10 && !(cond); t_i_++)                                     \
            sleep_ms(10);                                                                          \
        T_ASSERTF(cond, "timed out waiting for %s", #cond);                                        \
    } while (0)

static void crash(cg_aid_t a)
{
    cg_msg_t *m = cg_msg_new(CG_MSG_CRASH, NULL, 0);
    T_EQ_INT(cg_actor_send(a, m), 0);
}

static void test_routes_and_restart(void)
{
    world_t w = {0};
    world_start(&w, load(THREE_PROVIDERS, NULL));
    cg_aid_t a1 = wait_route(&w, "p1", 0), a2 = wait_route(&w, "p2", 0);
    cg_aid_t a3 = wait_route(&w, "p3", 0);
    T_ASSERT(a1 && a2 && a3);
    T_EQ_INT(route_count(&w), 3);
    T_ASSERT(a1 != a2 && a2 != a3);
    /* health is published from the start, and the probes of closed ports
     * mark every provider down within a second or two */
    T_ASSERT(view(&w, "p1", NULL).run == CG_RUN_RUNNING);
    WAIT_FOR(view(&w, "p1", NULL).reach == CG_REACH_DOWN);
    WAIT_FOR(view(&w, "p3", NULL).reach == CG_REACH_DOWN);

    /* a crash: restarted with a new address, nothing else disturbed */
    crash(a1);
    cg_aid_t b1 = wait_route(&w, "p1", a1);
    T_ASSERT(b1 != 0 && b1 != a1);
    T_EQ_INT(route_of(&w, "p2"), a2);
    T_EQ_INT(route_of(&w, "p3"), a3);
    WAIT_FOR(view(&w, "p1", NULL).restarts == 1);
    T_EQ_INT(view(&w, "p2", NULL).restarts, 0);
    /* the old address is gone for good */
    cg_msg_t *m = cg_msg_new(CG_MSG_TICK, NULL, 0);
    T_EQ_INT(cg_actor_send(a1, m), CG_ENOENT);
    cg_msg_free(m);
    /* the new one is live */
    m = cg_msg_new(CG_MSG_TICK, NULL, 0);
    T_EQ_INT(cg_actor_send(b1, m), 0);
    world_stop(&w);
    /* shutdown joined every child */
    m = cg_msg_new(CG_MSG_TICK, NULL, 0);
    T_EQ_INT(cg_actor_send(b1, m), CG_ENOENT);
    T_EQ_INT(cg_actor_send(a2, m), CG_ENOENT);
    cg_msg_free(m);
}

static void test_intensity_failed_then_respawn(void)
{
    world_t w = {0};
    world_start(&w, load(THREE_PROVIDERS, NULL)); /* maxRestarts 2 in 30 s */
    cg_aid_t a = wait_route(&w, "p2", 0);
    T_ASSERT(a);
    for (int i = 0; i < 2; i++) {
        crash(a);
        a = wait_route(&w, "p2", a);
        T_ASSERT(a);
    }
    WAIT_FOR(view(&w, "p2", NULL).restarts == 2);
    /* the third crash within the period: failed, no actor, routes say 0 */
    crash(a);
    WAIT_FOR(view(&w, "p2", NULL).run == CG_RUN_FAILED);
    T_EQ_INT(route_of(&w, "p2"), 0);
    T_EQ_INT(view(&w, "p2", NULL).restarts, 3);
    /* the others keep serving, and plans skip p2 */
    T_ASSERT(route_of(&w, "p1") != 0);
    cg_health_t *h = cg_snap_acquire(w.health);
    cg_config_t *c = cg_snap_acquire(w.config);
    const cg_model_t *plan[8];
    size_t n = cg_health_plan(h, c, c->primary, 0, plan, 8);
    for (size_t i = 0; i < n; i++)
        T_ASSERT(strcmp(plan[i]->ref, "p2/m1") != 0);
    cg_buf_t b = {0};
    cg_health_status_json(h, c, &b);
    T_CONTAINS(b.data, "\"state\":\"failed\"");
    T_CONTAINS(b.data, "\"retry_at\":1");
    cg_buf_free(&b);
    cg_snap_release(w.config, c);
    cg_snap_release(w.health, h);
    /* ...and it comes back after the back-off (1 s) */
    cg_aid_t back = wait_route(&w, "p2", a);
    T_ASSERT(back != 0 && back != a);
    WAIT_FOR(view(&w, "p2", NULL).run != CG_RUN_FAILED);
    world_stop(&w);
}

static bool p2_unloaded(world_t *w)
{
    cg_health_t *h = cg_snap_acquire(w->health);
    const cg_health_model_t *hm = h ? cg_health_find_model(h, "p2/m1") : NULL;
    bool r = hm && hm->unloaded;
    if (h)
        cg_snap_release(w->health, h);
    return r;
}

static void test_samples_change_health(void)
{
    world_t w = {0};
    world_start(&w, load(THREE_PROVIDERS, NULL));
    T_ASSERT(wait_route(&w, "p3", 0));
    /* BEGIN counts in flight (published with the next flush) */
    cg_msg_t *m = cg_sup_begin_msg("p3/m1");
    T_EQ_INT(cg_actor_send(w.sup, m), 0);
    WAIT_FOR(view(&w, "p3", "p3/m1").inflight == 1);
    /* a rate limit with Retry-After 120 s cools p3/m1 at once */
    uint64_t before = cg_now_ns();
    m = cg_sup_sample_msg("p3/m1", "rate_limit", 429, 0, 1000000, 0, 120000);
    T_EQ_INT(cg_actor_send(w.sup, m), 0);
    WAIT_FOR(view(&w, "p3", "p3/m1").cooldown > before + 100ull * 1000000000ull);
    hview_t v = view(&w, "p3", "p3/m1");
    T_EQ_INT(v.failures, 1);
    T_EQ_INT(v.inflight, 0);
    cg_health_t *h = cg_snap_acquire(w.health);
    cg_config_t *c = cg_snap_acquire(w.config);
    T_ASSERT(cg_health_soonest_cooldown_ms(h, c, c->primary, cg_now_ns()) > cg_wall_ms());
    cg_snap_release(w.config, c);
    cg_snap_release(w.health, h);
    /* a success clears it and feeds the EWMA; the provider is up */
    m = cg_sup_sample_msg("p3/m1", NULL, 200, 150000000, 400000000, 11, 0);
    T_EQ_INT(cg_actor_send(w.sup, m), 0);
    WAIT_FOR(view(&w, "p3", "p3/m1").cooldown == 0);
    WAIT_FOR(view(&w, "p3", "p3/m1").ttft == 150000000.0);
    /* a probe can say otherwise again later; a transport failure says down */
    m = cg_sup_sample_msg("p1/m1", "timeout", 0, 0, 5000000, 0, 0);
    T_EQ_INT(cg_actor_send(w.sup, m), 0);
    WAIT_FOR(view(&w, "p1", "p1/m1").failures == 1);
    T_EQ_INT(view(&w, "p1", NULL).reach, CG_REACH_DOWN);
    /* a probe result from the prober's message format */
    const char *ids[] = {"other"};
    m = cg_sup_health_msg("p2", true, 1234, NULL, ids, 1, true);
    T_EQ_INT(cg_actor_send(w.sup, m), 0);
    /* (the real prober reports p2 down every second, which does not touch
     * unloaded flags; only an "up" answer with a list does: ours) */
    WAIT_FOR(p2_unloaded(&w));
    cg_health_t *h2 = cg_snap_acquire(w.health);
    T_ASSERT(h2->version > 1);
    T_ASSERT(cg_health_find_provider(h2, "p2")->probe_at_ns > 0);
    cg_snap_release(w.health, h2);
    /* garbage does not hurt */
    m = cg_msg_pack(CG_SUP_SAMPLE, "i", (int64_t)3);
    T_EQ_INT(cg_actor_send(w.sup, m), 0);
    m = cg_msg_pack(CG_SUP_HEALTH, "s", "p1");
    T_EQ_INT(cg_actor_send(w.sup, m), 0);
    m = cg_sup_sample_msg("nope/none", "auth", 401, 0, 0, 0, 0);
    T_EQ_INT(cg_actor_send(w.sup, m), 0);
    world_stop(&w);
}

/* ---- a stand-in provider for the heartbeat: answers TICK, and blocks its
 * thread on request (a stuck provider) ---- */

enum { FAKE_BLOCK = 900 };

static void fake_handle(cg_actor_t *a, cg_msg_t *m)
{
    if (m->type == CG_MSG_TICK && m->sender) {
        cg_msg_t *r = cg_msg_new(CG_MSG_TICK, NULL, 0);
        r->sender = r->reply_to = cg_actor_self(a);
        if (cg_actor_send(m->sender, r) != CG_OK)
            cg_msg_free(r);
    } else if (m->type == FAKE_BLOCK) {
        sleep_ms(1500);
    }
    cg_msg_free(m);
}

static int fake_init(cg_actor_t *a, void *arg)
{
    CG_UNUSED(a);
    CG_UNUSED(arg);
    return 0;
}

static const cg_actor_spec_t fake_provider_spec = {
    .name = "fakeprov",
    .init = fake_init,
    .handle = fake_handle,
};

static void test_heartbeat_stall(void)
{
    cg_supervisor_test_hooks_t hooks = {.heartbeat_ns = 100000000ull,
                                        .stall_ns = 500000000ull,
                                        .provider_spec = &fake_provider_spec};
    cg_supervisor_set_test_hooks(&hooks);
    world_t w = {0};
    /* Providers on threads of their own (providerThreads "own"): on a shared
     * loop a stuck provider stalls its neighbours too, by design. */
    w.own_threads = true;
    world_start(&w, load(THREE_PROVIDERS, NULL));
    cg_aid_t a = wait_route(&w, "p1", 0);
    T_ASSERT(a);
    sleep_ms(300); /* a few heartbeats answered */
    T_EQ_INT(view(&w, "p1", NULL).run, CG_RUN_RUNNING);
    cg_msg_t *m = cg_msg_new(FAKE_BLOCK, NULL, 0);
    T_EQ_INT(cg_actor_send(a, m), 0);
    WAIT_FOR(view(&w, "p1", NULL).run == CG_RUN_STALLED);
    T_EQ_INT(view(&w, "p2", NULL).run, CG_RUN_RUNNING);
    /* stalled providers are skipped by plans */
    cg_health_t *h = cg_snap_acquire(w.health);
    cg_config_t *c = cg_snap_acquire(w.config);
    const cg_model_t *plan[8];
    /* (all three are probed down by now or soon; only the run state matters
     * for this check, so look at the verdict for p1 alone) */
    size_t n = cg_health_plan(h, c, c->primary, cg_now_ns(), plan, 8);
    for (size_t i = 0; i < n; i++)
        T_ASSERT(strcmp(plan[i]->ref, "p1/m1") != 0);
    cg_snap_release(w.config, c);
    cg_snap_release(w.health, h);
    /* it wakes up, answers, and is routable again; never restarted */
    WAIT_FOR(view(&w, "p1", NULL).run == CG_RUN_RUNNING);
    T_EQ_INT(route_of(&w, "p1"), a);
    T_EQ_INT(view(&w, "p1", NULL).restarts, 0);
    world_stop(&w);
    cg_supervisor_set_test_hooks(NULL);
}

/* ---- the front's death reaches fatal_fd ---- */

static void test_front_death_is_fatal(void)
{
    world_t w = {0};
    world_start(&w, load(THREE_PROVIDERS, NULL));
    T_ASSERT(wait_route(&w, "p1", 0));
    uint64_t v = 0;
    /* stopped on purpose: not fatal */
    cg_aid_t f1;
    T_EQ_INT(cg_actor_spawn(&fake_provider_spec, NULL, w.sup, &f1), 0);
    T_EQ_INT(cg_actor_stop(f1), 0);
    T_EQ_INT(cg_actor_join(f1, NULL), 0);
    sleep_ms(100);
    T_ASSERT(read(w.fatal_fd, &v, sizeof v) < 0);
    /* crashed: fatal */
    cg_aid_t f2;
    T_EQ_INT(cg_actor_spawn(&fake_provider_spec, NULL, w.sup, &f2), 0);
    crash(f2);
    T_EQ_INT(cg_actor_join(f2, NULL), 0);
    struct pollfd pfd = {.fd = w.fatal_fd, .events = POLLIN};
    T_EQ_INT(poll(&pfd, 1, WAIT_MS), 1);
    T_EQ_INT(read(w.fatal_fd, &v, sizeof v), (ssize_t)sizeof v);
    T_EQ_INT(v, 1);
    world_stop(&w);
}

/* ---- reload: a provider removed, one added ---- */

static void test_reload(void)
{
    world_t w = {0};
    world_start(&w, load(THREE_PROVIDERS, NULL));
    cg_aid_t a1 = wait_route(&w, "p1", 0), a3 = wait_route(&w, "p3", 0);
    T_ASSERT(a1 && a3);
    cg_config_t *c2 =
        load("p1: { baseUrl: 'http://127.0.0.1:%%1$d/v1', models: [{ id: 'm1', name: 'M1' }] },"
             "p2: { baseUrl: 'http://127.0.0.1:%%1$d/v1', models: [{ id: 'm1', name: 'M1' }] },"
             "p3: { baseUrl: 'http://127.0.0.1:%%1$d/v1', models: [{ id: 'm1', name: 'M1' }] },"
             "p4: { baseUrl: 'http://127.0.0.1:%%1$d/v1', models: [{ id: 'm1', name: 'M1' }] }",
             NULL);
    T_ASSERT(c2 != NULL);
    cg_snap_publish(w.config, c2);
    cg_msg_t *m = cg_msg_new(CG_MSG_RELOAD, NULL, 0);
    T_EQ_INT(cg_actor_send(w.sup, m), 0);
    T_ASSERT(wait_route(&w, "p4", 0));
    T_EQ_INT(route_count(&w), 4);
    T_EQ_INT(route_of(&w, "p1"), a1); /* untouched */
    WAIT_FOR(view(&w, "p4", NULL).run == CG_RUN_RUNNING);
    /* now drop p4 and p3 again (fallbacks only p2) */
    cg_config_t *c3 = NULL;
    {
        int port = closed_port();
        char *text = cg_sprintf(
            "{ agents: { defaults: { model: { primary: 'p1/m1', fallbacks: ['p2/m1'] } } },"
            "  models: { mode: 'replace', providers: {"
            "p1: { baseUrl: 'http://127.0.0.1:%d/v1', models: [{ id: 'm1', name: 'M1' }] },"
            "p2: { baseUrl: 'http://127.0.0.1:%d/v1', models: [{ id: 'm1', name: 'M1' }] } } } }",
            port, port);
        cg_diags_t e = {0}, n = {0};
        T_EQ_INT(cg_config_load_string("t3", text, strlen(text), NULL, &c3, &e, &n), 0);
        cg_diags_free(&e);
        cg_diags_free(&n);
        cg_free(text);
    }
    cg_snap_publish(w.config, c3);
    m = cg_msg_new(CG_MSG_RELOAD, NULL, 0);
    T_EQ_INT(cg_actor_send(w.sup, m), 0);
    WAIT_FOR(route_count(&w) == 2);
    T_EQ_INT(route_of(&w, "p3"), 0);
    /* the removed actor really ended */
    for (int i = 0; i < 200; i++) {
        m = cg_msg_new(CG_MSG_TICK, NULL, 0);
        int rc = cg_actor_send(a3, m);
        if (rc != CG_OK)
            cg_msg_free(m);
        if (rc == CG_ENOENT)
            break;
        sleep_ms(10);
    }
    m = cg_msg_new(CG_MSG_TICK, NULL, 0);
    T_EQ_INT(cg_actor_send(a3, m), CG_ENOENT);
    cg_msg_free(m);
    cg_health_t *h = cg_snap_acquire(w.health);
    T_EQ_INT(h->n_providers, 2);
    cg_snap_release(w.health, h);
    world_stop(&w);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cg_log_set_level(CG_LOG_ERROR);
    cg_actor_enable_test_hooks(true);
    T_RUN(test_routes_and_restart);
    T_RUN(test_intensity_failed_then_respawn);
    T_RUN(test_samples_change_health);
    T_RUN(test_heartbeat_stall);
    T_RUN(test_front_death_is_fatal);
    T_RUN(test_reload);
    curl_global_cleanup();
    T_DONE();
}
