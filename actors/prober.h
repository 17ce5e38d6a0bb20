/*
 * prober.h — the health prober actor: per provider, a periodic, jittered
 * `GET {baseUrl}/models` (costs no tokens) reported to the supervisor as
 * CG_SUP_HEALTH, and the optional keep-warm requests.
 *
 * DESIGN
 * One actor, its own CURLM driven from its epoll loop (like the provider
 * actor), one job per available provider and one per clawgate.health.keepWarm
 * entry, each with its own one-shot timer re-armed after every run with a
 * fresh jitter (interval +-20%) so probes of many gateways or providers do not
 * fall into step. At most one transfer per job is in flight; a probe still
 * running when the next is due is not doubled. CG_MSG_RELOAD rebuilds the
 * jobs from the current config snapshot.
 *
 * What a probe reports: transport failure or a 5xx -> down; 2xx -> up, with
 * the listed ids when the body is an OpenAI list {"data":[{"id":...}]}; any
 * other status -> up (the server answers) but no list. Keep-warm requests
 * (`max_tokens: 1`) are fire-and-forget: failures are logged, not reported
 * (the next real request or probe tells the truth).
 */
#ifndef CG_PROBER_H
#define CG_PROBER_H

#include "actors/actor.h"
#include "actors/snapshot.h"

typedef struct cg_prober_args {
    cg_snap_t *config;   /* cg_config_t; not owned */
    cg_aid_t supervisor; /* where CG_SUP_HEALTH goes */
} cg_prober_args_t;

/* args: cg_prober_args_t *, copied by init. */
extern const cg_actor_spec_t cg_prober_spec;

#endif
