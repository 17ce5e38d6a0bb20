/*
 * actor.h — threads with an epoll loop, a mailbox, timers and watched fds.
 *
 * DESIGN
 * An actor runs on a loop: a thread that hands each of its actors at most
 * `batch` messages, runs due timers and ready file descriptors, then sleeps
 * in epoll until a mailbox's eventfd, a watched fd or a timerfd fires.
 * cg_actor_spawn gives the actor a loop of its own (one thread per actor);
 * cg_actor_spawn_on puts it on a shared loop made by cg_loop_new, next to
 * other actors. A message between two actors of one loop costs no system
 * call and no thread switch: the loop is running, so the sender finds the
 * receiver's mailbox awake and only pushes. Actors on one loop still share
 * nothing but the thread: each has its own mailbox, state, timers and
 * watched fds, and ends, crashes and restarts alone. Its state is private:
 * other threads reach it only through messages sent to its address
 * (cg_aid_t), which a registry maps to the live actor. An address outlives
 * its actor safely: sending to an actor that has gone returns CG_ENOENT.
 *
 * Life: cg_actor_spawn starts the thread and runs spec->init in it. An actor
 * ends when it calls cg_actor_exit (from a handler or callback), when init
 * fails, when it receives CG_MSG_SHUTDOWN and has no `stopping` hook, or when
 * a test crash is triggered. On the way out it runs spec->cleanup in its own
 * thread, closes its mailbox (later sends fail), and posts CG_MSG_EXIT
 * [aid u, reason i, detail s] to its parent. Whoever spawned it reaps it with
 * cg_actor_join, which frees the actor once no sender can still touch it.
 *
 * Functions marked "actor thread" may only be called from the actor's own
 * thread (its loop's), on its own cg_actor_t; all others are safe from any
 * thread. A handler must not block: on a shared loop it would stall its
 * neighbours too.
 */
#ifndef CG_ACTOR_H
#define CG_ACTOR_H

#include "mailbox/msg.h"

typedef struct cg_actor cg_actor_t;
typedef struct cg_loop cg_loop_t;

/* Why an actor ended (payload of CG_MSG_EXIT and result of cg_actor_join). */
typedef enum {
    CG_EXIT_NORMAL = 0,      /* cg_actor_exit(a, CG_EXIT_NORMAL, ...) */
    CG_EXIT_SHUTDOWN = 1,    /* graceful stop completed */
    CG_EXIT_CRASH = 2,       /* test hook or a failed invariant the actor caught */
    CG_EXIT_INIT_FAILED = 3, /* spec->init returned < 0 */
    CG_EXIT_ERROR = 4,       /* the actor gave up (fatal library error, ...) */
} cg_exit_reason_t;

const char *cg_exit_reason_name(int reason);

typedef struct cg_actor_spec {
    const char *name;     /* for logs and thread names (15 chars shown) */
    uint32_t mailbox_cap; /* 0: 65536 */
    uint32_t batch;       /* messages per loop turn, 0: 64 */
    /* In the actor's thread before the first message; < 0 ends the actor
     * with CG_EXIT_INIT_FAILED. arg is cg_actor_spawn's. */
    int (*init)(cg_actor_t *a, void *arg);
    /* Each message, in arrival order; the handler owns m and must free it
     * (cg_msg_free) or keep it. System messages reach it too, except
     * CG_MSG_SHUTDOWN and CG_MSG_CRASH, which the runtime handles. */
    void (*handle)(cg_actor_t *a, cg_msg_t *m);
    /* CG_MSG_SHUTDOWN arrived: refuse new work, finish in-flight work, then
     * call cg_actor_exit(a, CG_EXIT_SHUTDOWN, ...). NULL: exit at once. */
    void (*stopping)(cg_actor_t *a);
    /* Last call in the actor's thread, whatever the reason: free state,
     * close fds. Messages still queued are freed by the runtime after. */
    void (*cleanup)(cg_actor_t *a);
} cg_actor_spec_t;

/* Start an actor. parent receives its CG_MSG_EXIT (CG_AID_NONE: nobody).
 * *out is valid as soon as this returns 0, before init has run. */
int cg_actor_spawn(const cg_actor_spec_t *spec, void *arg, cg_aid_t parent, cg_aid_t *out);

/* A thread that runs the actors spawned onto it with cg_actor_spawn_on.
 * NULL if the thread or its epoll cannot be made. name: the thread's. */
cg_loop_t *cg_loop_new(const char *name);

/* As cg_actor_spawn, on `loop` (NULL: a loop of its own). init runs in the
 * loop's thread, after the actors spawned onto it before. */
int cg_actor_spawn_on(cg_loop_t *loop, const cg_actor_spec_t *spec, void *arg, cg_aid_t parent,
                      cg_aid_t *out);

/* Once every actor spawned onto it has been joined (or at least has ended):
 * end the loop's thread and free it. Not from the loop's own thread. If an
 * actor on it has not ended (stuck), the loop is left running, with a
 * warning: for the end of the process. */
void cg_loop_free(cg_loop_t *loop);

/* Any thread. CG_OK: the message is the target's. CG_EFULL (mailbox at
 * capacity), CG_ENOENT (no such actor any more), CG_ECLOSED (it is exiting):
 * the caller still owns m and decides (reply 503, drop a sample, ...). */
int cg_actor_send(cg_aid_t to, cg_msg_t *m);

/* Any thread. As cg_actor_send, but does not wake the target if it sleeps:
 * the message is handled at its next wake-up. Only for messages that may wait
 * (statistics) and targets that wake periodically (a timer). */
int cg_actor_send_lazy(cg_aid_t to, cg_msg_t *m);

/* Any thread: post CG_MSG_SHUTDOWN (graceful stop). */
int cg_actor_stop(cg_aid_t to);

/* Any thread but the actor's own loop's (there only once it has ended): wait
 * until the actor ended, store its cg_exit_reason_t in *reason (may be NULL),
 * and free it. Once per actor. */
int cg_actor_join(cg_aid_t who, int *reason);

/* Test hook: when enabled (tests, or CLAWGATE_TEST_HOOKS=1 in the
 * environment at start-up), CG_MSG_CRASH makes the receiving actor end with
 * CG_EXIT_CRASH as a crash would: cleanup runs, EXIT reaches the parent. */
void cg_actor_enable_test_hooks(bool on);

/* ---- actor thread only ---- */

cg_aid_t cg_actor_self(const cg_actor_t *a);
const char *cg_actor_name(const cg_actor_t *a);
void *cg_actor_state(const cg_actor_t *a);
void cg_actor_set_state(cg_actor_t *a, void *state);

/* Ask to end after the current loop turn. detail is copied. */
void cg_actor_exit(cg_actor_t *a, int reason, const char *detail);
bool cg_actor_is_stopping(const cg_actor_t *a); /* SHUTDOWN seen */

/* File descriptors in the actor's epoll set. events: EPOLLIN | EPOLLOUT ...
 * (level-triggered). cb runs in the actor thread. Unwatching from inside a
 * callback is safe, also for the fd whose callback is running. */
typedef void (*cg_fd_cb)(cg_actor_t *a, int fd, uint32_t events, void *ud);
int cg_actor_watch(cg_actor_t *a, int fd, uint32_t events, cg_fd_cb cb, void *ud);
int cg_actor_rewatch(cg_actor_t *a, int fd, uint32_t events);
int cg_actor_unwatch(cg_actor_t *a, int fd);
/* The events fd is watched for by a, or 0 if a does not watch it. */
uint32_t cg_actor_watched_events(cg_actor_t *a, int fd);

/* Timers on the actor's one timerfd. delay_ns 0 fires on the next turn;
 * interval_ns 0 fires once. Returns an id > 0; cancel is idempotent and safe
 * from inside the timer's own callback. */
typedef void (*cg_timer_cb)(cg_actor_t *a, void *ud);
uint64_t cg_actor_timer(cg_actor_t *a, uint64_t delay_ns, uint64_t interval_ns, cg_timer_cb cb,
                        void *ud);
void cg_actor_timer_cancel(cg_actor_t *a, uint64_t timer_id);

/* Free p with fn at the end of the current loop turn (never while a callback
 * up the stack may still walk it). */
void cg_actor_defer(cg_actor_t *a, void (*fn)(void *), void *p);

#endif
