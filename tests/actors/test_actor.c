/*
 * test_actor.c — actor life and loop: spawn, EXIT to the parent with every
 * reason, init failure, the crash hook, graceful stop with in-flight work,
 * sends to exiting and dead actors, address reuse, timers, watched fds
 * (including unwatching from callbacks), the batch bound, deferred frees,
 * senders racing with join, and shared loops (several actors on one thread:
 * messages between them, one crashing and being replaced while the others
 * go on, fds that belong to one actor only).
 *
 * Results travel back to the test thread through a "collector" actor whose
 * handler appends every message to a queue the test thread waits on (with a
 * generous bound so a bug fails instead of hanging). No test asserts a time.
 *
 * tsan: yes
 */
#include "actors/actor.h"
#include "tests/t.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <unistd.h>

enum {
    T_PING = 100, /* -> T_PONG to reply_to */
    T_PONG,
    T_EXIT_NOW, /* [reason i, detail s]: cg_actor_exit */
    T_WORK,     /* graceful-stop actor: start a job */
    T_DONE,     /* job finished */
    T_REFUSED,  /* work refused while stopping */
    T_REPORT,   /* [what s, value i]: a test observation */
    T_JOIN_SELF,
    T_DEFER,
    T_PEER,   /* shared loop: req_id is the peer's address */
    T_RELAY,  /* req_id n: pass n - 1 to the peer; 0 reports "relay_done" */
    T_WHERE,  /* report "thread" */
    T_UNWATCH /* report "unwatch": cg_actor_unwatch(req_id) */
};

/* ---- collector: the test thread's inbox ---- */

static pthread_mutex_t col_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t col_cond = PTHREAD_COND_INITIALIZER;
static cg_msg_t *col_q[4096];
static size_t col_head, col_tail;

static void col_handle(cg_actor_t *a, cg_msg_t *m)
{
    CG_UNUSED(a);
    pthread_mutex_lock(&col_lock);
    cg_assert(col_tail - col_head < CG_ARRAY_LEN(col_q));
    col_q[col_tail++ % CG_ARRAY_LEN(col_q)] = m;
    pthread_cond_broadcast(&col_cond);
    pthread_mutex_unlock(&col_lock);
}

static const cg_actor_spec_t col_spec = {.name = "collector", .handle = col_handle};
static cg_aid_t col;

/* Next message the collector got, waiting at most 30 s (liveness bound). */
static cg_msg_t *next_msg(void)
{
    uint64_t deadline = cg_now_ms() + 30000;
    pthread_mutex_lock(&col_lock);
    while (col_head == col_tail && cg_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&col_cond, &col_lock, &ts);
    }
    cg_msg_t *m = col_head < col_tail ? col_q[col_head++ % CG_ARRAY_LEN(col_q)] : NULL;
    pthread_mutex_unlock(&col_lock);
    return m;
}

static size_t col_pending(void)
{
    pthread_mutex_lock(&col_lock);
    size_t n = col_tail - col_head;
    pthread_mutex_unlock(&col_lock);
    return n;
}

/* Expect an EXIT from `who` with `reason`; returns its detail (static). */
static const char *expect_exit(cg_aid_t who, int reason)
{
    static char detail[256];
    cg_msg_t *m = next_msg();
    T_ASSERTF(m, "no EXIT within 30 s");
    T_EQ_INT(m->type, CG_MSG_EXIT);
    T_EQ_INT(m->sender, who);
    uint64_t aid;
    int64_t r;
    const char *d;
    size_t dlen;
    cg_msg_view_t v;
    T_EQ_INT(cg_msg_unpack(m, &v, "uis", &aid, &r, &d, &dlen), CG_OK);
    T_EQ_INT(aid, who);
    T_EQ_INT(r, reason);
    snprintf(detail, sizeof detail, "%s", d ? d : "(nil)");
    cg_msg_view_done(&v);
    cg_msg_free(m);
    return detail;
}

static cg_msg_t *expect_type(uint32_t type)
{
    cg_msg_t *m = next_msg();
    T_ASSERTF(m, "no message of type %u within 30 s", type);
    T_EQ_INT(m->type, type);
    return m;
}

/* [what s, value i] from an actor to the collector. */
static void report(const char *what, int64_t value)
{
    cg_msg_t *m = cg_msg_pack(T_REPORT, "si", what, value);
    cg_assert(cg_actor_send(col, m) == CG_OK);
}

static int64_t expect_report(const char *what)
{
    cg_msg_t *m = expect_type(T_REPORT);
    const char *w;
    size_t wl;
    int64_t val;
    cg_msg_view_t v;
    T_EQ_INT(cg_msg_unpack(m, &v, "si", &w, &wl, &val), CG_OK);
    T_EQ_STR(w, what);
    cg_msg_view_done(&v);
    cg_msg_free(m);
    return val;
}

/* ---- a general-purpose test actor ---- */

static int cleanups; /* atomic */

static void basic_handle(cg_actor_t *a, cg_msg_t *m)
{
    switch (m->type) {
    case T_PING: {
        cg_msg_t *r = cg_msg_new(T_PONG, NULL, 0);
        r->sender = cg_actor_self(a);
        r->req_id = m->req_id;
        if (cg_actor_send(m->reply_to, r) != CG_OK)
            cg_msg_free(r);
        break;
    }
    case T_EXIT_NOW: {
        int64_t reason;
        const char *detail;
        cg_msg_view_t v;
        cg_assert(cg_msg_unpack(m, &v, "is", &reason, &detail, NULL) == CG_OK);
        cg_actor_exit(a, (int)reason, detail);
        cg_actor_exit(a, CG_EXIT_ERROR, "second call is ignored");
        cg_msg_view_done(&v);
        break;
    }
    case T_JOIN_SELF:
        report("join_self", cg_actor_join(cg_actor_self(a), NULL));
        break;
    default:
        break;
    }
    cg_msg_free(m);
}

static void basic_cleanup(cg_actor_t *a)
{
    CG_UNUSED(a);
    __atomic_fetch_add(&cleanups, 1, __ATOMIC_RELAXED);
}

static const cg_actor_spec_t basic_spec = {
    .name = "basic-actor-with-a-long-name", .handle = basic_handle, .cleanup = basic_cleanup};

static void ping(cg_aid_t to, uint64_t id)
{
    cg_msg_t *m = cg_msg_new(T_PING, NULL, 0);
    m->reply_to = col;
    m->req_id = id;
    T_EQ_INT(cg_actor_send(to, m), CG_OK);
}

static void expect_pong(cg_aid_t from, uint64_t id)
{
    cg_msg_t *m = expect_type(T_PONG);
    T_EQ_INT(m->sender, from);
    T_EQ_INT(m->req_id, id);
    cg_msg_free(m);
}

/* ---- tests ---- */

static void test_exit_normal_and_dead_address(void)
{
    cg_aid_t a;
    int c0 = __atomic_load_n(&cleanups, __ATOMIC_RELAXED);
    T_EQ_INT(cg_actor_spawn(&basic_spec, NULL, col, &a), CG_OK);
    T_ASSERT(a != CG_AID_NONE);
    ping(a, 7);
    expect_pong(a, 7);

    T_EQ_INT(cg_actor_send(a, cg_msg_pack(T_EXIT_NOW, "is", (int64_t)CG_EXIT_NORMAL, "bye")),
             CG_OK);
    T_EQ_STR(expect_exit(a, CG_EXIT_NORMAL), "bye");
    T_EQ_INT(__atomic_load_n(&cleanups, __ATOMIC_RELAXED), c0 + 1);

    /* Exited but not joined: the mailbox is closed. */
    cg_msg_t *m = cg_msg_new(T_PING, NULL, 0);
    T_EQ_INT(cg_actor_send(a, m), CG_ECLOSED);
    int reason = -1;
    T_EQ_INT(cg_actor_join(a, &reason), CG_OK);
    T_EQ_INT(reason, CG_EXIT_NORMAL);
    /* Joined: the address is dead; m is still ours. */
    T_EQ_INT(cg_actor_send(a, m), CG_ENOENT);
    T_EQ_INT(cg_actor_stop(a), CG_ENOENT);
    T_EQ_INT(cg_actor_join(a, NULL), CG_ENOENT);
    T_EQ_INT(cg_actor_send(CG_AID_NONE, m), CG_ENOENT);
    T_EQ_INT(cg_actor_send((cg_aid_t)1 << 32 | 0xfffffff, m), CG_ENOENT); /* never spawned */
    cg_msg_free(m);

    /* The slot is reused with a new generation: the old address stays dead. */
    cg_aid_t b;
    T_EQ_INT(cg_actor_spawn(&basic_spec, NULL, col, &b), CG_OK);
    T_ASSERT(b != a);
    m = cg_msg_new(T_PING, NULL, 0);
    T_EQ_INT(cg_actor_send(a, m), CG_ENOENT);
    cg_msg_free(m);
    ping(b, 8);
    expect_pong(b, 8);
    T_EQ_INT(cg_actor_stop(b), CG_OK);
    T_ASSERT(strcmp(expect_exit(b, CG_EXIT_SHUTDOWN), "(nil)") == 0);
    T_EQ_INT(cg_actor_join(b, &reason), CG_OK);
    T_EQ_INT(reason, CG_EXIT_SHUTDOWN);
}

static int failing_init(cg_actor_t *a, void *arg)
{
    CG_UNUSED(a);
    CG_UNUSED(arg);
    return CG_EINVAL;
}

static void test_init_failed(void)
{
    cg_actor_spec_t spec = basic_spec;
    spec.init = failing_init;
    int c0 = __atomic_load_n(&cleanups, __ATOMIC_RELAXED);
    cg_aid_t a;
    T_EQ_INT(cg_actor_spawn(&spec, NULL, col, &a), CG_OK);
    expect_exit(a, CG_EXIT_INIT_FAILED);
    int reason;
    T_EQ_INT(cg_actor_join(a, &reason), CG_OK);
    T_EQ_INT(reason, CG_EXIT_INIT_FAILED);
    T_EQ_INT(__atomic_load_n(&cleanups, __ATOMIC_RELAXED), c0 + 1);
}

static void test_crash_hook(void)
{
    cg_aid_t a;
    /* main() set CLAWGATE_TEST_HOOKS=1 before the first spawn and nothing
     * has called cg_actor_enable_test_hooks yet: the environment alone
     * enables the hook. */
    T_EQ_INT(cg_actor_spawn(&basic_spec, NULL, col, &a), CG_OK);
    T_EQ_INT(cg_actor_send(a, cg_msg_new(CG_MSG_CRASH, NULL, 0)), CG_OK);
    T_EQ_STR(expect_exit(a, CG_EXIT_CRASH), "crash test hook");
    T_EQ_INT(cg_actor_join(a, NULL), CG_OK);

    /* Hooks off: CRASH is dropped and the actor carries on. */
    cg_actor_enable_test_hooks(false);
    T_EQ_INT(cg_actor_spawn(&basic_spec, NULL, col, &a), CG_OK);
    T_EQ_INT(cg_actor_send(a, cg_msg_new(CG_MSG_CRASH, NULL, 0)), CG_OK);
    ping(a, 1);
    expect_pong(a, 1);

    /* Hooks on: it ends as a crash would, EXIT reaches the parent. */
    cg_actor_enable_test_hooks(true);
    int c0 = __atomic_load_n(&cleanups, __ATOMIC_RELAXED);
    T_EQ_INT(cg_actor_send(a, cg_msg_new(CG_MSG_CRASH, NULL, 0)), CG_OK);
    /* Queued behind the crash (or refused if it already ended): never
     * answered either way. */
    cg_msg_t *late = cg_msg_new(T_PING, NULL, 0);
    late->reply_to = col;
    int rc = cg_actor_send(a, late);
    T_ASSERT(rc == CG_OK || rc == CG_ECLOSED);
    if (rc != CG_OK)
        cg_msg_free(late);
    expect_exit(a, CG_EXIT_CRASH);
    int reason;
    T_EQ_INT(cg_actor_join(a, &reason), CG_OK);
    T_EQ_INT(reason, CG_EXIT_CRASH);
    T_EQ_INT(__atomic_load_n(&cleanups, __ATOMIC_RELAXED), c0 + 1);
    T_EQ_INT(col_pending(), 0);
    T_ASSERT(strcmp(cg_exit_reason_name(CG_EXIT_CRASH), "crash") == 0);
}

static void test_no_parent_and_join_self(void)
{
    cg_aid_t a;
    T_EQ_INT(cg_actor_spawn(&basic_spec, NULL, CG_AID_NONE, &a), CG_OK);
    T_EQ_INT(cg_actor_send(a, cg_msg_new(T_JOIN_SELF, NULL, 0)), CG_OK);
    T_EQ_INT(expect_report("join_self"), CG_EINVAL);
    T_EQ_INT(cg_actor_stop(a), CG_OK);
    int reason;
    T_EQ_INT(cg_actor_join(a, &reason), CG_OK);
    T_EQ_INT(reason, CG_EXIT_SHUTDOWN);
    T_EQ_INT(col_pending(), 0); /* no parent: no EXIT anywhere */
}

/* ---- graceful stop with in-flight work ---- */

typedef struct {
    int inflight;
    int finished;
} worker_t;

static void job_done(cg_actor_t *a, void *ud)
{
    worker_t *w = cg_actor_state(a);
    cg_msg_t *d = cg_msg_new(T_DONE, NULL, 0);
    d->req_id = (uint64_t)(uintptr_t)ud;
    cg_assert(cg_actor_send(col, d) == CG_OK);
    w->inflight--;
    w->finished++;
    if (cg_actor_is_stopping(a) && w->inflight == 0)
        cg_actor_exit(a, CG_EXIT_SHUTDOWN, "drained");
}

static int worker_init(cg_actor_t *a, void *arg)
{
    CG_UNUSED(arg);
    cg_actor_set_state(a, cg_calloc(1, sizeof(worker_t)));
    return 0;
}

static void worker_handle(cg_actor_t *a, cg_msg_t *m)
{
    worker_t *w = cg_actor_state(a);
    if (m->type == T_WORK) {
        if (cg_actor_is_stopping(a)) {
            cg_msg_t *r = cg_msg_new(T_REFUSED, NULL, 0);
            r->req_id = m->req_id;
            cg_assert(cg_actor_send(col, r) == CG_OK);
        } else {
            w->inflight++;
            /* Jobs take a while; later ones tend to finish first. */
            uint64_t delay = (6 - m->req_id) * 5000000ull;
            cg_actor_timer(a, delay, 0, job_done, (void *)(uintptr_t)m->req_id);
        }
    }
    cg_msg_free(m);
}

static void worker_stopping(cg_actor_t *a)
{
    worker_t *w = cg_actor_state(a);
    if (w->inflight == 0)
        cg_actor_exit(a, CG_EXIT_SHUTDOWN, "idle");
}

static void worker_cleanup(cg_actor_t *a)
{
    worker_t *w = cg_actor_state(a);
    report("finished", w->finished);
    free(w);
}

static void test_graceful_stop_with_inflight_work(void)
{
    cg_actor_spec_t spec = {.name = "worker",
                            .init = worker_init,
                            .handle = worker_handle,
                            .stopping = worker_stopping,
                            .cleanup = worker_cleanup};
    cg_aid_t a;
    T_EQ_INT(cg_actor_spawn(&spec, NULL, col, &a), CG_OK);
    for (uint64_t i = 1; i <= 5; i++) {
        cg_msg_t *m = cg_msg_new(T_WORK, NULL, 0);
        m->req_id = i;
        T_EQ_INT(cg_actor_send(a, m), CG_OK);
    }
    T_EQ_INT(cg_actor_stop(a), CG_OK);
    T_EQ_INT(cg_actor_stop(a), CG_OK); /* a second stop is harmless */
    cg_msg_t *late = cg_msg_new(T_WORK, NULL, 0);
    late->req_id = 6;
    T_EQ_INT(cg_actor_send(a, late), CG_OK);

    /* The late job is refused at once; all five in-flight jobs complete,
     * then cleanup reports, then EXIT. */
    cg_msg_t *m = expect_type(T_REFUSED);
    T_EQ_INT(m->req_id, 6);
    cg_msg_free(m);
    bool done[6] = {false};
    for (int i = 0; i < 5; i++) {
        m = expect_type(T_DONE);
        T_ASSERT(m->req_id >= 1 && m->req_id <= 5 && !done[m->req_id]);
        done[m->req_id] = true;
        cg_msg_free(m);
    }
    T_EQ_INT(expect_report("finished"), 5);
    T_EQ_STR(expect_exit(a, CG_EXIT_SHUTDOWN), "drained");
    T_EQ_INT(cg_actor_join(a, NULL), CG_OK);
}

/* ---- timers ---- */

typedef struct {
    int ticks;
    uint64_t periodic;
    uint64_t cancelled;
} tstate_t;

static void t_order(cg_actor_t *a, void *ud)
{
    CG_UNUSED(a);
    report("order", (int64_t)(intptr_t)ud);
}

static void t_never(cg_actor_t *a, void *ud)
{
    CG_UNUSED(a);
    CG_UNUSED(ud);
    report("never", 1);
}

static void t_tick(cg_actor_t *a, void *ud)
{
    tstate_t *s = ud;
    s->ticks++;
    if (s->ticks == 5) {
        cg_actor_timer_cancel(a, s->periodic); /* from its own callback */
        cg_actor_timer_cancel(a, s->periodic); /* idempotent */
        report("ticks", s->ticks);
        free(s);
    }
}

static void t_self_once(cg_actor_t *a, void *ud)
{
    uint64_t *id = ud;
    cg_actor_timer_cancel(a, *id); /* one-shot already fired: no-op */
    free(id);
    report("once", 1);
}

static void t_zero_chain(cg_actor_t *a, void *ud)
{
    intptr_t n = (intptr_t)ud;
    if (n < 100)
        cg_actor_timer(a, 0, 0, t_zero_chain, (void *)(n + 1)); /* next turn each */
    else
        report("chain", n);
}

static int timers_init(cg_actor_t *a, void *arg)
{
    CG_UNUSED(arg);
    /* Fire in deadline order, not in order of creation. */
    cg_actor_timer(a, 600000000, 0, t_order, (void *)3);
    cg_actor_timer(a, 0, 0, t_order, (void *)1);
    cg_actor_timer(a, 300000000, 0, t_order, (void *)2);
    /* Cancelled before it fires. */
    uint64_t dead = cg_actor_timer(a, 1000000, 0, t_never, NULL);
    cg_actor_timer_cancel(a, dead);
    cg_actor_timer_cancel(a, dead);
    cg_actor_timer_cancel(a, 0);
    cg_actor_timer_cancel(a, 12345678901234ull);
    /* Periodic, cancels itself after 5 ticks. */
    tstate_t *s = cg_calloc(1, sizeof *s);
    s->periodic = cg_actor_timer(a, 1000000, 2000000, t_tick, s);
    /* One-shot that cancels itself (already fired). */
    uint64_t *id = cg_malloc(sizeof *id);
    *id = cg_actor_timer(a, 100000000, 0, t_self_once, id);
    /* 100 zero-delay timers in a chain: each on a later turn, all fire. */
    cg_actor_timer(a, 0, 0, t_zero_chain, (void *)1);
    return 0;
}

static void test_timers(void)
{
    cg_actor_spec_t spec = {.name = "timers", .init = timers_init, .handle = basic_handle};
    cg_aid_t a;
    T_EQ_INT(cg_actor_spawn(&spec, NULL, col, &a), CG_OK);
    /* Collect six reports in whatever order the independent timers give,
     * but "order" ones must come 1, 2, 3. */
    int64_t next_order = 1;
    int got_ticks = 0, got_chain = 0, got_once = 0;
    for (int i = 0; i < 6; i++) {
        cg_msg_t *m = expect_type(T_REPORT);
        const char *w;
        int64_t val;
        cg_msg_view_t v;
        T_EQ_INT(cg_msg_unpack(m, &v, "si", &w, NULL, &val), CG_OK);
        if (strcmp(w, "order") == 0) {
            T_EQ_INT(val, next_order);
            next_order++;
        } else if (strcmp(w, "ticks") == 0) {
            T_EQ_INT(val, 5);
            got_ticks++;
        } else if (strcmp(w, "chain") == 0) {
            T_EQ_INT(val, 100);
            got_chain++;
        } else if (strcmp(w, "once") == 0) {
            got_once++;
        } else {
            T_ASSERTF(0, "unexpected report %s", w);
        }
        cg_msg_view_done(&v);
        cg_msg_free(m);
    }
    T_EQ_INT(next_order, 4);
    T_EQ_INT(got_ticks, 1);
    T_EQ_INT(got_chain, 1);
    T_EQ_INT(got_once, 1);
    /* The periodic timer is really gone and "never" never came: a ping
     * round trip after all of the above finds nothing else queued. */
    ping(a, 3);
    expect_pong(a, 3);
    T_EQ_INT(cg_actor_stop(a), CG_OK);
    expect_exit(a, CG_EXIT_SHUTDOWN);
    T_EQ_INT(cg_actor_join(a, NULL), CG_OK);
}

/* ---- watched fds ---- */

typedef struct {
    int p1[2], p2[2], p3[2];
    int first_calls; /* callbacks run among p1/p2 in the first batch */
} fds_t;

static void on_pair(cg_actor_t *a, int fd, uint32_t events, void *ud)
{
    fds_t *f = ud;
    CG_UNUSED(events);
    f->first_calls++;
    /* Whichever of p1/p2 runs first unwatches and closes the other one —
     * whose event is already in this turn's batch — and itself. */
    int other = fd == f->p1[0] ? f->p2[0] : f->p1[0];
    /* (cg_assert, not T_ASSERT: this runs in the actor's thread) */
    cg_assert(cg_actor_unwatch(a, other) == CG_OK);
    cg_assert(cg_actor_unwatch(a, fd) == CG_OK); /* itself, while running */
    cg_assert(cg_actor_unwatch(a, fd) == CG_ENOENT);
    cg_assert(cg_actor_rewatch(a, fd, EPOLLIN) == CG_ENOENT);
    close(other);
    close(fd);
    f->p1[0] = f->p2[0] = -1;
    report("pair_calls", f->first_calls);
}

static void on_data(cg_actor_t *a, int fd, uint32_t events, void *ud)
{
    fds_t *f = ud;
    cg_assert(events & EPOLLIN);
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == 'q') {
            cg_actor_unwatch(a, fd);
            report("quit", 1);
            return;
        }
        report("byte", buf[i]);
    }
    CG_UNUSED(f);
}

static int fds_init(cg_actor_t *a, void *arg)
{
    fds_t *f = arg;
    cg_actor_set_state(a, f);
    /* Both readable before the first epoll_wait: one batch has both. */
    if (write(f->p1[1], "x", 1) != 1 || write(f->p2[1], "y", 1) != 1)
        return CG_EIO;
    if (cg_actor_watch(a, f->p1[0], EPOLLIN, on_pair, f) != CG_OK ||
        cg_actor_watch(a, f->p2[0], EPOLLIN, on_pair, f) != CG_OK)
        return CG_EIO;
    if (cg_actor_watch(a, f->p1[0], EPOLLIN, on_pair, f) != CG_EINVAL) /* twice */
        return CG_EIO;
    if (cg_actor_watch(a, -1, EPOLLIN, on_pair, f) != CG_EINVAL)
        return CG_EIO;
    /* Watched for nothing at first, then rewatched for input. */
    if (cg_actor_watch(a, f->p3[0], 0, on_data, f) != CG_OK ||
        cg_actor_rewatch(a, f->p3[0], EPOLLIN) != CG_OK)
        return CG_EIO;
    return 0;
}

static void test_fd_watch(void)
{
    fds_t f;
    T_ASSERT(pipe(f.p1) == 0 && pipe(f.p2) == 0 && pipe(f.p3) == 0);
    f.first_calls = 0;
    cg_actor_spec_t spec = {.name = "fds", .init = fds_init, .handle = basic_handle};
    cg_aid_t a;
    T_EQ_INT(cg_actor_spawn(&spec, &f, col, &a), CG_OK);
    T_EQ_INT(expect_report("pair_calls"), 1); /* the unwatched one never ran */
    T_ASSERT(write(f.p3[1], "ab", 2) == 2);
    T_EQ_INT(expect_report("byte"), 'a');
    T_EQ_INT(expect_report("byte"), 'b');
    T_ASSERT(write(f.p3[1], "q", 1) == 1);
    T_EQ_INT(expect_report("quit"), 1);
    T_ASSERT(write(f.p3[1], "z", 1) == 1); /* unwatched: nobody reads it */
    ping(a, 4);
    expect_pong(a, 4);
    T_EQ_INT(cg_actor_stop(a), CG_OK);
    expect_exit(a, CG_EXIT_SHUTDOWN);
    T_EQ_INT(cg_actor_join(a, NULL), CG_OK);
    close(f.p1[1]);
    close(f.p2[1]);
    close(f.p3[0]);
    close(f.p3[1]);
}

/* ---- batch bound: fds get a turn while messages keep coming ---- */

typedef struct {
    sem_t go;
    int rfd, wfd;
    int handled;
    bool reported;
} batch_t;

static void batch_fd(cg_actor_t *a, int fd, uint32_t events, void *ud)
{
    CG_UNUSED(events);
    batch_t *b = ud;
    if (!b->reported) {
        b->reported = true;
        report("handled_before_fd", b->handled);
    }
    cg_actor_unwatch(a, fd);
}

static int batch_init(cg_actor_t *a, void *arg)
{
    batch_t *b = arg;
    cg_actor_set_state(a, b);
    if (cg_actor_watch(a, b->rfd, EPOLLIN, batch_fd, b) != CG_OK)
        return CG_EIO;
    /* Wait until the test has queued all its messages. */
    while (sem_wait(&b->go) != 0 && errno == EINTR)
        ;
    return 0;
}

static void batch_handle(cg_actor_t *a, cg_msg_t *m)
{
    batch_t *b = cg_actor_state(a);
    if (m->type == T_PING)
        b->handled++;
    if (m->req_id == 100)
        report("handled_all", b->handled);
    cg_msg_free(m);
}

static void test_batch_bound(void)
{
    batch_t b = {.handled = 0};
    int p[2];
    T_ASSERT(pipe(p) == 0);
    b.rfd = p[0];
    b.wfd = p[1];
    T_ASSERT(write(b.wfd, "r", 1) == 1); /* readable from the start */
    sem_init(&b.go, 0, 0);
    cg_actor_spec_t spec = {
        .name = "batch", .batch = 4, .init = batch_init, .handle = batch_handle};
    cg_aid_t a;
    T_EQ_INT(cg_actor_spawn(&spec, &b, col, &a), CG_OK);
    for (uint64_t i = 1; i <= 100; i++) {
        cg_msg_t *m = cg_msg_new(T_PING, NULL, 0);
        m->req_id = i;
        T_EQ_INT(cg_actor_send(a, m), CG_OK);
    }
    sem_post(&b.go);
    /* The first turn handles exactly `batch` messages, then polls. */
    T_EQ_INT(expect_report("handled_before_fd"), 4);
    T_EQ_INT(expect_report("handled_all"), 100);
    T_EQ_INT(cg_actor_stop(a), CG_OK);
    expect_exit(a, CG_EXIT_SHUTDOWN);
    T_EQ_INT(cg_actor_join(a, NULL), CG_OK);
    sem_destroy(&b.go);
    close(p[0]);
    close(p[1]);
}

/* ---- deferred frees ---- */

static bool in_handler;

static void deferred_fn(void *p)
{
    /* Runs after the handler returned, at the end of the turn. */
    report("deferred_in_handler", in_handler);
    free(p);
}

static void defer_handle(cg_actor_t *a, cg_msg_t *m)
{
    in_handler = true;
    if (m->type == T_DEFER) {
        cg_actor_defer(a, deferred_fn, cg_malloc(16));
        report("handler", 1);
    }
    cg_msg_free(m);
    in_handler = false;
}

static void test_defer(void)
{
    cg_actor_spec_t spec = {.name = "defer", .handle = defer_handle};
    cg_aid_t a;
    T_EQ_INT(cg_actor_spawn(&spec, NULL, col, &a), CG_OK);
    T_EQ_INT(cg_actor_send(a, cg_msg_new(T_DEFER, NULL, 0)), CG_OK);
    T_EQ_INT(expect_report("handler"), 1);
    T_EQ_INT(expect_report("deferred_in_handler"), 0);
    T_EQ_INT(cg_actor_stop(a), CG_OK);
    expect_exit(a, CG_EXIT_SHUTDOWN);
    T_EQ_INT(cg_actor_join(a, NULL), CG_OK);
}

/* ---- many actors: registry chunks, reuse ---- */

static void test_many_actors(void)
{
    enum { N = 150 }; /* more than the first registry chunk (64) */
    static cg_aid_t ids[N];
    for (int i = 0; i < N; i++)
        T_EQ_INT(cg_actor_spawn(&basic_spec, NULL, col, &ids[i]), CG_OK);
    for (int i = 0; i < N; i++)
        ping(ids[i], (uint64_t)i);
    bool seen[N] = {false};
    for (int i = 0; i < N; i++) {
        cg_msg_t *m = expect_type(T_PONG);
        T_ASSERT(m->req_id < N && !seen[m->req_id]);
        T_EQ_INT(m->sender, ids[m->req_id]);
        seen[m->req_id] = true;
        cg_msg_free(m);
    }
    for (int i = 0; i < N; i++)
        T_EQ_INT(cg_actor_stop(ids[i]), CG_OK);
    for (int i = 0; i < N; i++) {
        cg_msg_t *m = expect_type(CG_MSG_EXIT);
        cg_msg_free(m);
    }
    for (int i = 0; i < N; i++) {
        int reason;
        T_EQ_INT(cg_actor_join(ids[i], &reason), CG_OK);
        T_EQ_INT(reason, CG_EXIT_SHUTDOWN);
    }
}

/* ---- senders racing with exit and join ---- */

typedef struct {
    cg_aid_t to;
    int stop;     /* atomic */
    uint64_t ok;  /* accepted */
    uint64_t bad; /* any code other than OK/EFULL/ECLOSED/ENOENT */
    uint64_t enoent;
} spam_t;

static void *spammer(void *p)
{
    spam_t *s = p;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        cg_msg_t *m = cg_msg_pack(T_REPORT, "si", "spam", (int64_t)1);
        int rc = cg_actor_send(s->to, m);
        if (rc == CG_OK) {
            __atomic_fetch_add(&s->ok, 1, __ATOMIC_RELAXED); /* read by the test thread */
            continue;
        }
        cg_msg_free(m); /* refused: still ours */
        if (rc == CG_ENOENT)
            s->enoent++;
        else if (rc != CG_EFULL && rc != CG_ECLOSED)
            s->bad++;
        if (s->enoent > 1000)
            break;
    }
    return NULL;
}

static void sink_handle(cg_actor_t *a, cg_msg_t *m)
{
    CG_UNUSED(a);
    cg_msg_free(m);
}

static void test_senders_race_join(void)
{
    cg_actor_spec_t spec = {.name = "sink", .mailbox_cap = 256, .handle = sink_handle};
    for (int round = 0; round < 5; round++) {
        cg_aid_t a;
        T_EQ_INT(cg_actor_spawn(&spec, NULL, CG_AID_NONE, &a), CG_OK);
        spam_t s[3];
        pthread_t t[3];
        for (int i = 0; i < 3; i++) {
            s[i] = (spam_t){.to = a};
            pthread_create(&t[i], NULL, spammer, &s[i]);
        }
        /* Let the spammers get going, then stop and reap under fire. */
        while (__atomic_load_n(&s[0].ok, __ATOMIC_RELAXED) < 200)
            sched_yield();
        T_EQ_INT(cg_actor_stop(a), CG_OK);
        int reason;
        T_EQ_INT(cg_actor_join(a, &reason), CG_OK);
        T_EQ_INT(reason, CG_EXIT_SHUTDOWN);
        for (int i = 0; i < 3; i++)
            __atomic_store_n(&s[i].stop, 1, __ATOMIC_RELEASE);
        for (int i = 0; i < 3; i++) {
            pthread_join(t[i], NULL);
            T_EQ_INT(s[i].bad, 0);
        }
        /* After join returned, every send is refused as "no such actor". */
        cg_msg_t *m = cg_msg_new(T_PING, NULL, 0);
        T_EQ_INT(cg_actor_send(a, m), CG_ENOENT);
        cg_msg_free(m);
    }
}

/* ---- shared loops ---- */

typedef struct relay {
    cg_aid_t peer;
    int64_t relayed;
} relay_t;

static int relay_init(cg_actor_t *a, void *arg)
{
    CG_UNUSED(arg);
    cg_actor_set_state(a, cg_calloc(1, sizeof(relay_t)));
    return 0;
}

static void relay_handle(cg_actor_t *a, cg_msg_t *m)
{
    relay_t *r = cg_actor_state(a);
    switch (m->type) {
    case T_PEER:
        r->peer = m->req_id;
        break;
    case T_WHERE:
        report("thread", (int64_t)pthread_self());
        break;
    case T_UNWATCH:
        report("unwatch", cg_actor_unwatch(a, (int)m->req_id));
        break;
    case T_RELAY:
        r->relayed++;
        if (m->req_id == 0) {
            report("relay_done", r->relayed);
        } else {
            cg_msg_t *n = cg_msg_new(T_RELAY, NULL, 0);
            n->req_id = m->req_id - 1;
            cg_assert(cg_actor_send(r->peer, n) == CG_OK);
        }
        break;
    default:
        basic_handle(a, m);
        return;
    }
    cg_msg_free(m);
}

static void relay_cleanup(cg_actor_t *a)
{
    free(cg_actor_state(a));
}

static const cg_actor_spec_t relay_spec = {
    .name = "relay", .init = relay_init, .handle = relay_handle, .cleanup = relay_cleanup};

static void send_req(cg_aid_t to, uint32_t type, uint64_t req_id)
{
    cg_msg_t *m = cg_msg_new(type, NULL, 0);
    m->req_id = req_id;
    T_EQ_INT(cg_actor_send(to, m), CG_OK);
}

static int64_t where(cg_aid_t a)
{
    send_req(a, T_WHERE, 0);
    return expect_report("thread");
}

static void test_shared_loop(void)
{
    cg_loop_t *loop = cg_loop_new("shared");
    T_ASSERT(loop != NULL);
    cg_aid_t a, b, c, solo;
    T_EQ_INT(cg_actor_spawn_on(loop, &relay_spec, NULL, col, &a), CG_OK);
    T_EQ_INT(cg_actor_spawn_on(loop, &relay_spec, NULL, col, &b), CG_OK);
    T_EQ_INT(cg_actor_spawn(&relay_spec, NULL, col, &solo), CG_OK);
    int64_t ta = where(a), tb = where(b), ts = where(solo);
    T_EQ_INT(ta, tb);
    T_ASSERT(ta != ts);

    /* 20,000 hand-offs between the two actors of the loop. */
    send_req(a, T_PEER, b);
    send_req(b, T_PEER, a);
    send_req(a, T_RELAY, 20000);
    T_EQ_INT(expect_report("relay_done"), 10001); /* a got the even ones, down to 0 */

    /* One of them crashes; the other goes on, and a new one takes the
     * place of the first on the same thread. */
    cg_msg_t *m = cg_msg_pack(T_EXIT_NOW, "is", (int64_t)CG_EXIT_CRASH, "boom");
    T_EQ_INT(cg_actor_send(b, m), CG_OK);
    T_EQ_STR(expect_exit(b, CG_EXIT_CRASH), "boom");
    int reason = -1;
    T_EQ_INT(cg_actor_join(b, &reason), CG_OK);
    T_EQ_INT(reason, CG_EXIT_CRASH);
    ping(a, 7);
    expect_pong(a, 7);
    T_EQ_INT(cg_actor_spawn_on(loop, &relay_spec, NULL, col, &c), CG_OK);
    T_EQ_INT(where(c), ta);
    send_req(a, T_PEER, c);
    send_req(c, T_PEER, a);
    send_req(c, T_RELAY, 1001);
    T_EQ_INT(expect_report("relay_done"), 10001 + 501); /* a again: 1000 down to 0 */

    T_EQ_INT(cg_actor_stop(a), CG_OK);
    expect_exit(a, CG_EXIT_SHUTDOWN);
    T_EQ_INT(cg_actor_stop(c), CG_OK);
    expect_exit(c, CG_EXIT_SHUTDOWN);
    T_EQ_INT(cg_actor_join(a, NULL), CG_OK);
    T_EQ_INT(cg_actor_join(c, NULL), CG_OK);
    T_EQ_INT(cg_actor_stop(solo), CG_OK);
    expect_exit(solo, CG_EXIT_SHUTDOWN);
    T_EQ_INT(cg_actor_join(solo, NULL), CG_OK);
    cg_loop_free(loop);
}

/* An fd watched by one actor of a loop is that actor's: its neighbour can
 * neither unwatch it nor steal its events, and it leaves the loop's epoll
 * set with its actor. */
static void shared_fd_cb(cg_actor_t *a, int fd, uint32_t events, void *ud)
{
    CG_UNUSED(a);
    CG_UNUSED(events);
    CG_UNUSED(ud);
    char c;
    if (read(fd, &c, 1) == 1)
        report("byte", c);
}

static int shared_fd_init(cg_actor_t *a, void *arg)
{
    int fd = *(int *)arg;
    cg_actor_set_state(a, cg_calloc(1, sizeof(relay_t)));
    return cg_actor_watch(a, fd, EPOLLIN, shared_fd_cb, NULL) == CG_OK ? 0 : CG_EIO;
}

static void test_shared_loop_fds(void)
{
    int p[2];
    T_ASSERT(pipe(p) == 0);
    cg_loop_t *loop = cg_loop_new("fds");
    T_ASSERT(loop != NULL);
    cg_actor_spec_t owner = relay_spec;
    owner.init = shared_fd_init;
    cg_aid_t w, x;
    T_EQ_INT(cg_actor_spawn_on(loop, &owner, &p[0], col, &w), CG_OK);
    T_EQ_INT(cg_actor_spawn_on(loop, &relay_spec, NULL, col, &x), CG_OK);
    T_EQ_INT(where(w), where(x));
    send_req(x, T_UNWATCH, (uint64_t)p[0]);
    T_EQ_INT(expect_report("unwatch"), CG_ENOENT);
    T_ASSERT(write(p[1], "k", 1) == 1);
    T_EQ_INT(expect_report("byte"), 'k');
    /* The owner ends: its watch goes with it, the neighbour is not called
     * for the fd (the byte stays unread), and the loop goes on. */
    T_EQ_INT(cg_actor_stop(w), CG_OK);
    expect_exit(w, CG_EXIT_SHUTDOWN);
    T_EQ_INT(cg_actor_join(w, NULL), CG_OK);
    T_ASSERT(write(p[1], "z", 1) == 1);
    ping(x, 9);
    expect_pong(x, 9);
    T_EQ_INT(col_pending(), 0);
    T_EQ_INT(cg_actor_stop(x), CG_OK);
    expect_exit(x, CG_EXIT_SHUTDOWN);
    T_EQ_INT(cg_actor_join(x, NULL), CG_OK);
    cg_loop_free(loop);
    close(p[0]);
    close(p[1]);
}

static void test_bad_spawn(void)
{
    cg_aid_t a;
    cg_actor_spec_t spec = {.name = "nohandler"};
    T_EQ_INT(cg_actor_spawn(&spec, NULL, CG_AID_NONE, &a), CG_EINVAL);
    T_EQ_INT(cg_actor_spawn(NULL, NULL, CG_AID_NONE, &a), CG_EINVAL);
}

int main(void)
{
    setenv("CLAWGATE_TEST_HOOKS", "1", 1); /* read once, at the first spawn */
    cg_log_set_level(getenv("CG_DEBUG")
                         ? CG_LOG_DEBUG
                         : CG_LOG_ERROR); /* the crash test logs a warning by design */
    if (cg_actor_spawn(&col_spec, NULL, CG_AID_NONE, &col) != CG_OK) {
        printf("not ok - spawn collector\n");
        return 1;
    }
    T_RUN(test_exit_normal_and_dead_address);
    T_RUN(test_init_failed);
    T_RUN(test_crash_hook);
    T_RUN(test_no_parent_and_join_self);
    T_RUN(test_graceful_stop_with_inflight_work);
    T_RUN(test_timers);
    T_RUN(test_fd_watch);
    T_RUN(test_batch_bound);
    T_RUN(test_defer);
    T_RUN(test_many_actors);
    T_RUN(test_senders_race_join);
    T_RUN(test_shared_loop);
    T_RUN(test_shared_loop_fds);
    T_RUN(test_bad_spawn);

    cg_actor_stop(col);
    cg_actor_join(col, NULL);
    while (col_head < col_tail)
        cg_msg_free(col_q[col_head++ % CG_ARRAY_LEN(col_q)]);
    T_DONE();
}
