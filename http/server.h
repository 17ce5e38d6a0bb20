/*
 * server.h — the HTTP front: an actor serving the OpenAI-compatible API.
 *
 * DESIGN
 * The front is one actor whose epoll loop drives a libmicrohttpd daemon in
 * external-epoll mode: MHD's own epoll fd is one of the actor's watched fds,
 * and MHD's timeout is one of its timers. So MHD callbacks, the actor's
 * mailbox handler and every per-request structure run on one thread and
 * need no locks. A request that waits for a provider is suspended in MHD; the
 * provider's HEAD/CHUNK/DONE/FAIL messages arrive in the mailbox, fill the
 * request's buffers and resume the connection.
 */
#ifndef CG_HTTP_SERVER_H
#define CG_HTTP_SERVER_H

#include "actors/actor.h"
#include "actors/snapshot.h"
#include "store/store.h"

/* Provider name -> provider actor address, published as a snapshot so that a
 * restarted provider (new address) is picked up by the request path. */
typedef struct cg_routes {
    size_t n;
    char **names;
    cg_aid_t *aids;
} cg_routes_t;

cg_routes_t *cg_routes_new(size_t n);
cg_aid_t cg_routes_lookup(const cg_routes_t *r, const char *provider);
void cg_routes_free(void *routes); /* snapshot destructor */

typedef struct cg_http_args {
    cg_snap_t *config;      /* cg_config_t */
    cg_snap_t *routes;      /* cg_routes_t, published by the supervisor */
    cg_snap_t *health;      /* cg_health_t, published by the supervisor */
    cg_aid_t supervisor;    /* receives attempt samples */
    cg_aid_t store;         /* the session store actor (CG_AID_NONE: none) */
    const char *store_path; /* for the front's read-only query connection */
    cg_pending_t *pending;  /* the store's pending log, written by the front for
                               exchanges without a session (NULL: every exchange
                               waits for the store's commit) */
} cg_http_args_t;

extern const cg_actor_spec_t cg_http_spec;

#endif
