/*
 * supervisor.h — the supervisor actor: provider actors and the prober as
 * permanent children (OTP one_for_one), heartbeats, restart intensity with
 * back-off, and the owner of the health/ranking snapshot.
 *
 * DESIGN
 * main creates the config snapshot, an empty routes snapshot (cg_routes_t,
 * http/server.h), an empty health snapshot (cg_health_t, actors/health.h) and
 * an eventfd, and spawns the supervisor with them. The supervisor spawns one
 * provider actor per configured provider (cg_provider_spec) and the health
 * prober (cg_prober_spec), publishes routes after every (re)spawn and health
 * whenever something the request path decides on changes. main spawns the
 * HTTP front with the supervisor as its parent: if the front ends other than
 * by a requested stop (reason CG_EXIT_SHUTDOWN) the supervisor writes 1 to
 * fatal_fd and main exits 1.
 *
 * Messages to the supervisor (type numbers 400..):
 *   CG_SUP_SAMPLE [ref s, class s|nil (nil = success), status i, ttft_ns u,
 *                  duration_ns u, output_tokens i, retry_after_ms i]
 *       from the front after every attempt (also failed ones);
 *   CG_SUP_BEGIN  [ref s] when an attempt starts (in-flight count);
 *   CG_SUP_HEALTH [provider s, up b, latency_ns u, error s|nil,
 *                  models: array of strings, or nil when the endpoint gave
 *                  no list] from the prober.
 * Also CG_MSG_EXIT (children, the front), CG_MSG_TICK (heartbeat answers:
 * a provider answers CG_MSG_TICK with CG_MSG_TICK to the sender),
 * CG_MSG_RELOAD (a new config snapshot was published: spawn added providers,
 * stop removed ones, carry health over, forward RELOAD to the prober) and
 * CG_MSG_SHUTDOWN (stop the prober and providers, join them, exit).
 *
 * A full supervisor mailbox drops SAMPLE/BEGIN (the caller frees the message
 * and goes on: statistics, not requests).
 */
#ifndef CG_SUPERVISOR_H
#define CG_SUPERVISOR_H

#include "actors/actor.h"
#include "actors/snapshot.h"

enum {
    CG_SUP_SAMPLE = 400,
    CG_SUP_BEGIN = 401,
    CG_SUP_HEALTH = 402,
};

typedef struct cg_supervisor_args {
    cg_snap_t *config; /* cg_config_t; not owned */
    cg_snap_t *routes; /* cg_routes_t, published by the supervisor; not owned */
    cg_snap_t *health; /* cg_health_t, published by the supervisor; not owned */
    int fatal_fd;      /* eventfd: 1 is written when the front dies; < 0: none */
    cg_loop_t *loop;   /* where provider actors run (the http front's, so that a
                          request crosses no thread); NULL: a thread each */
} cg_supervisor_args_t;

/* args: cg_supervisor_args_t *, copied by init. */
extern const cg_actor_spec_t cg_supervisor_spec;

/* Tests only: shorter heartbeat timing and a stand-in for the provider actor
 * spec. Call before spawning a supervisor (the spawn orders it before the
 * supervisor's thread reads it); NULL restores the defaults. Zero fields keep
 * their defaults. */
typedef struct cg_supervisor_test_hooks {
    uint64_t heartbeat_ns; /* default 2 s */
    uint64_t stall_ns;     /* default 10 s */
    const cg_actor_spec_t *provider_spec;
} cg_supervisor_test_hooks_t;
void cg_supervisor_set_test_hooks(const cg_supervisor_test_hooks_t *hooks);

/* One-line message builders (header fields zero; set sender if you like). */
cg_msg_t *cg_sup_sample_msg(const char *ref, const char *class_name, int status, uint64_t ttft_ns,
                            uint64_t duration_ns, int64_t output_tokens, int64_t retry_after_ms);
cg_msg_t *cg_sup_begin_msg(const char *ref);
cg_msg_t *cg_sup_health_msg(const char *provider, bool up, uint64_t latency_ns, const char *error,
                            const char *const *models, size_t n_models, bool listed);

#endif
