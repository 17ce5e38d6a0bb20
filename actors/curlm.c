/*
 * curlm.c — binding a CURLM to an actor's loop (see curlm.h).
 */
#include "actors/curlm.h"

#include <sys/epoll.h>
#include <unistd.h>

static bool is_idle(const cg_curlm_t *cm, int fd)
{
    return fd >= 0 && (size_t)fd < cm->idlecap && cm->idle[fd];
}

static void set_idle(cg_curlm_t *cm, int fd, bool on)
{
    if (fd < 0)
        return;
    if ((size_t)fd >= cm->idlecap && !on)
        return;
    cg_grow_zeroed((void **)&cm->idle, &cm->idlecap, (size_t)fd, sizeof *cm->idle);
    cm->idle[fd] = on;
}

static void on_fd(cg_actor_t *a, int fd, uint32_t events, void *ud)
{
    cg_curlm_t *cm = ud;
    if (is_idle(cm, fd)) {
        /* A pooled connection woke up: the server closed it (or sent
         * something unasked). Stop watching; curl's liveness check drops it
         * before any reuse, and a reuse would watch it again. */
        set_idle(cm, fd, false);
        cg_actor_unwatch(a, fd);
        return;
    }
    int flags = 0;
    if (events & (EPOLLIN | EPOLLHUP))
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        flags |= CURL_CSELECT_ERR;
    int running = 0;
    curl_multi_socket_action(cm->multi, fd, flags, &running);
    cm->drain(cm->ud);
}

static void on_timer_fire(cg_actor_t *a, void *ud)
{
    CG_UNUSED(a);
    cg_curlm_t *cm = ud;
    cm->timer = 0; /* one-shot: curl re-arms through on_timer */
    cm->timer_now = false;
    int running = 0;
    curl_multi_socket_action(cm->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    cm->drain(cm->ud);
}

/* CURLMOPT_TIMERFUNCTION: one actor timer mirrors curl's single timeout. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    CG_UNUSED(multi);
    cg_curlm_t *cm = userp;
    if (cm->timer) {
        cg_actor_timer_cancel(cm->actor, cm->timer);
        cm->timer = 0;
    }
    cm->timer_now = timeout_ms == 0 && !cm->closing;
    if (timeout_ms >= 0 && !cm->closing)
        cm->timer =
            cg_actor_timer(cm->actor, (uint64_t)timeout_ms * 1000000u, 0, on_timer_fire, cm);
    return 0;
}

void cg_curlm_kick(cg_curlm_t *cm)
{
    if (!cm->timer || !cm->timer_now)
        return;
    cg_actor_timer_cancel(cm->actor, cm->timer);
    on_timer_fire(cm->actor, cm);
}

/* CURLMOPT_SOCKETFUNCTION. socketp is non-NULL once we watch s (we assign
 * cm itself as a marker); curl forgets it after POLL_REMOVE. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    CG_UNUSED(e);
    cg_curlm_t *cm = userp;
    if (what == CURL_POLL_REMOVE) {
        /* Still watched (see DESIGN): only marked idle until it closes. */
        if (socketp)
            set_idle(cm, s, true);
        return 0;
    }
    if (cm->closing)
        return 0;
    uint32_t ev = 0;
    if (what & CURL_POLL_IN)
        ev |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev |= EPOLLOUT;
    bool idle = is_idle(cm, s);
    set_idle(cm, s, false);
    if (socketp || idle) {
        /* The same events as last time (a reused connection waiting for its
         * reply, as before) need no system call. */
        if (cg_actor_watched_events(cm->actor, s) == ev)
            goto assign;
        if (cg_actor_rewatch(cm->actor, s, ev) == 0)
            goto assign;
        cg_actor_unwatch(cm->actor, s); /* stale: watch it afresh below */
    }
    if (cg_actor_watch(cm->actor, s, ev, on_fd, cm) != 0) {
        cg_error("%s: cannot watch socket %d", cm->who, (int)s);
        return -1;
    }
assign:
    if (!socketp)
        curl_multi_assign(cm->multi, s, cm);
    return 0;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the socket really goes; so does its watch
 * (before close, so that its number cannot come back still watched). */
static int on_close(void *clientp, curl_socket_t s)
{
    cg_curlm_t *cm = clientp;
    set_idle(cm, s, false);
    cg_actor_unwatch(cm->actor, s);
    return close(s);
}

void cg_curlm_easy(cg_curlm_t *cm, CURL *e)
{
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, cm);
}

int cg_curlm_init(cg_curlm_t *cm, cg_actor_t *a, const char *who, void (*drain)(void *ud), void *ud)
{
    *cm = (cg_curlm_t){.actor = a, .drain = drain, .ud = ud, .who = who};
    cm->multi = curl_multi_init();
    if (!cm->multi) {
        cg_error("%s: curl_multi_init failed", who);
        return CG_ERR;
    }
    curl_multi_setopt(cm->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(cm->multi, CURLMOPT_SOCKETDATA, cm);
    curl_multi_setopt(cm->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(cm->multi, CURLMOPT_TIMERDATA, cm);
    return 0;
}

void cg_curlm_close(cg_curlm_t *cm)
{
    cm->closing = true;
    if (cm->multi)
        curl_multi_cleanup(cm->multi);
    cm->multi = NULL;
    if (cm->timer)
        cg_actor_timer_cancel(cm->actor, cm->timer);
    cm->timer = 0;
    free(cm->idle);
    cm->idle = NULL;
    cm->idlecap = 0;
}
