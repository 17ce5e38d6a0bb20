/*
 * curlm.h — a libcurl multi handle driven by an actor's epoll loop.
 *
 * DESIGN
 * The provider actors and the health prober both run their transfers on a
 * CURLM owned by their own thread. CURLMOPT_SOCKETFUNCTION maps straight onto
 * cg_actor_watch/rewatch/unwatch (the actor's epoll set), and curl's single
 * timeout (CURLMOPT_TIMERFUNCTION: -1 cancels, 0 fires on the next turn) is
 * one actor timer. After every curl_multi_socket_action the owner's drain
 * callback collects finished transfers (curl_multi_info_read): removing
 * handles is legal there, never inside curl's own callbacks.
 */
#ifndef CG_CURLM_H
#define CG_CURLM_H

#include "actors/actor.h"

#include <curl/curl.h>

typedef struct cg_curlm {
    cg_actor_t *actor;
    CURLM *multi;
    uint64_t timer; /* the actor timer standing for curl's timeout, 0: none */
    bool closing;   /* the owner is tearing down: create no watches or timers */
    void (*drain)(void *ud);
    void *ud;
    const char *who; /* for log lines */
} cg_curlm_t;

/* Actor thread. Creates the multi handle and binds it to a's loop; drain(ud)
 * runs after curl made progress. 0, or CG_ERR (logged). */
int cg_curlm_init(cg_curlm_t *cm, cg_actor_t *a, const char *who, void (*drain)(void *ud),
                  void *ud);

/* Actor thread, after the owner removed its transfers: the multi handle
 * (and the connections it caches) goes, then its timer. */
void cg_curlm_close(cg_curlm_t *cm);

#endif
