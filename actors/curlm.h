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
 *
 * Idle connections stay in the epoll set. curl says POLL_REMOVE when a
 * transfer ends, but the connection goes back to its pool and the next
 * transfer asks for the same socket again: removing and re-adding it cost
 * two epoll_ctl calls per request. So POLL_REMOVE only marks the fd idle;
 * curl's CURLOPT_CLOSESOCKETFUNCTION (set by cg_curlm_easy on every handle)
 * tells when the socket really closes, and the watch goes then. An event on
 * an idle socket (the server closed a pooled connection) unwatches it, so a
 * level-triggered EOF cannot spin the loop; curl notices the dead connection
 * itself before it reuses one.
 */
#ifndef CG_CURLM_H
#define CG_CURLM_H

#include "actors/actor.h"

#include <curl/curl.h>

typedef struct cg_curlm {
    cg_actor_t *actor;
    CURLM *multi;
    uint64_t timer; /* the actor timer standing for curl's timeout, 0: none */
    bool timer_now; /* ... and curl asked for it with a zero timeout */
    bool *idle;     /* by fd: watched, but curl said POLL_REMOVE (pooled) */
    size_t idlecap;
    bool closing; /* the owner is tearing down: create no watches or timers */
    void (*drain)(void *ud);
    void *ud;
    const char *who; /* for log lines */
} cg_curlm_t;

/* Actor thread: bind a new easy handle's sockets to cm (their close). */
void cg_curlm_easy(cg_curlm_t *cm, CURL *e);

/* Actor thread, outside curl's callbacks (after curl_multi_add_handle): if
 * curl asked to be called back at once, do it now rather than on the next
 * loop turn, saving that turn's epoll_wait. */
void cg_curlm_kick(cg_curlm_t *cm);

/* Actor thread. Creates the multi handle and binds it to a's loop; drain(ud)
 * runs after curl made progress. 0, or CG_ERR (logged). */
int cg_curlm_init(cg_curlm_t *cm, cg_actor_t *a, const char *who, void (*drain)(void *ud),
                  void *ud);

/* Actor thread, after the owner removed its transfers: the multi handle
 * (and the connections it caches) goes, then its timer. */
void cg_curlm_close(cg_curlm_t *cm);

#endif
