/*
 * actor.c — actor threads, their loop, timers, watched fds, and the registry
 * of addresses.
 *
 * DESIGN
 * Loop. One turn: hand at most `batch` messages to the handler (so a flood
 * of messages cannot starve sockets and timers), then epoll — without
 * blocking if messages may remain, else after cg_mbox_prepare_sleep, which
 * makes producers write the mailbox's eventfd — then callbacks for ready
 * fds, then due timers; frees deferred by handlers run after the messages
 * (before any blocking wait) and again at the end of the turn. Callbacks
 * that unwatch an fd mark its watch dead and defer the free, so events
 * already returned by epoll for it are skipped, never dispatched to freed
 * memory. After each callback the loop checks whether the actor asked to
 * exit and stops dispatching if so.
 *
 * Timers. One timerfd per actor, armed lazily (absolute CLOCK_MONOTONIC, just
 * before the loop blocks, see arm()) at or before the
 * earliest deadline of a binary min-heap; timers live in a slab and their id
 * is (generation << 32 | slot + 1), so cancelling a fired or cancelled timer
 * is a checked no-op. Heap order is (deadline, sequence): a timer added
 * while timers run (a periodic one rescheduled, or a new 0-delay one) gets a
 * later sequence and waits for the next turn, so no timer can monopolise a
 * turn.
 *
 * Registry. An address is (generation << 32 | slot). Each slot has one
 * 64-bit word: generation (32 bits) | OPEN (1 bit) | references (31 bits).
 * A sender takes a reference with one CAS that succeeds only if the
 * generation matches and OPEN is set, uses slot->actor (its mailbox), and
 * drops the reference with a fetch_sub. cg_actor_join clears OPEN (no new
 * references), waits until the count is 0 (senders hold one only for the
 * length of a push, a few nanoseconds unless preempted), and only then frees
 * the actor and its mailbox and bumps the generation. So a send to a dead
 * actor returns CG_ENOENT and never touches freed memory, and a sender never
 * waits for anyone (lock-free: the CAS fails only when another thread moved
 * the same word). Slot memory is never freed (chunks of 64 << k slots,
 * published once), so reading any slot's word is always safe. This is a
 * per-object reference count rather than ck_epoch because join is the only
 * reclaimer and may block, and because ThreadSanitizer checks C11 atomics
 * directly. Spawn and join take a mutex for the free-slot list; sends never
 * do.
 *
 * Memory orders (registry): the word is stored with release when a slot is
 * opened and a sender's successful CAS is acquire, so slot->actor and the
 * actor's fields are visible to it; a sender's fetch_sub is release and the
 * joiner's load that sees 0 references is acquire (all later writes to the
 * word are RMWs, so it synchronises with every sender), so every push
 * happens before the free.
 *
 * End of life. cg_actor_exit (or init failure, SHUTDOWN without a stopping
 * hook, the crash hook) sets `exiting`; the loop stops after the current
 * callback, cleanup runs, deferred frees run, the mailbox is closed (sends now
 * fail with CG_ECLOSED) and drained, and CG_MSG_EXIT goes to the parent with
 * the unbounded push (a supervisor must learn of every exit, even with a full
 * mailbox). The thread then ends; cg_actor_join reaps it as above. Actor
 * threads start with asynchronous signals blocked so that signals reach the
 * thread that waits for them (the config watcher's signalfd).
 */
#include "actors/actor.h"
#include "mailbox/mbox.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* ---------------------------------------------------------------- registry */

#define REG_CHUNK0 64
#define REG_NCHUNKS 20
#define SLOT_OPEN (1ull << 31)
#define SLOT_REFS 0x7fffffffull
#define SLOT_GEN(w) ((uint32_t)((w) >> 32))

typedef struct reg_slot {
    uint64_t word;      /* atomic: gen << 32 | SLOT_OPEN | references */
    cg_actor_t *actor;  /* read only under a reference */
    uint32_t next_free; /* free-list link (1-based), under reg.lock */
} reg_slot_t;

static struct {
    pthread_mutex_t lock;
    reg_slot_t *chunks[REG_NCHUNKS]; /* atomic pointers, set once each */
    uint32_t used;                   /* slots ever handed out; under lock */
    uint32_t free_head;              /* 1-based, 0 = none; under lock */
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static reg_slot_t *reg_slot(uint32_t idx)
{
    uint64_t i = (uint64_t)idx + REG_CHUNK0;
    int k = 63 - __builtin_clzll(i) - 6;
    if (k >= REG_NCHUNKS)
        return NULL;
    /* Acquire: pairs with the release store of a new chunk. */
    reg_slot_t *c = __atomic_load_n(&reg.chunks[k], __ATOMIC_ACQUIRE);
    return c ? &c[i - ((uint64_t)REG_CHUNK0 << k)] : NULL;
}

/* Open a slot for a; returns the address. */
static cg_aid_t reg_open(cg_actor_t *a)
{
    pthread_mutex_lock(&reg.lock);
    uint32_t idx;
    reg_slot_t *s;
    if (reg.free_head) {
        idx = reg.free_head - 1;
        s = reg_slot(idx);
        reg.free_head = s->next_free;
    } else {
        idx = reg.used++;
        s = reg_slot(idx);
        if (!s) {
            uint64_t i = (uint64_t)idx + REG_CHUNK0;
            int k = 63 - __builtin_clzll(i) - 6;
            cg_assert(k < REG_NCHUNKS);
            reg_slot_t *c = cg_calloc((size_t)REG_CHUNK0 << k, sizeof(reg_slot_t));
            __atomic_store_n(&reg.chunks[k], c, __ATOMIC_RELEASE);
            s = reg_slot(idx);
        }
    }
    uint32_t gen = SLOT_GEN(__atomic_load_n(&s->word, __ATOMIC_RELAXED));
    if (gen == 0)
        gen = 1; /* generation 0 never exists: CG_AID_NONE stays "nobody" */
    s->actor = a;
    /* Release: a sender whose CAS sees OPEN also sees s->actor and *a. */
    __atomic_store_n(&s->word, (uint64_t)gen << 32 | SLOT_OPEN, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&reg.lock);
    return (cg_aid_t)gen << 32 | idx;
}

/* Take a reference on the live actor at `aid`, or NULL. */
static cg_actor_t *reg_ref(cg_aid_t aid, reg_slot_t **out)
{
    uint32_t gen = (uint32_t)(aid >> 32);
    if (gen == 0)
        return NULL;
    reg_slot_t *s = reg_slot((uint32_t)aid);
    if (!s)
        return NULL;
    uint64_t w = __atomic_load_n(&s->word, __ATOMIC_RELAXED);
    do {
        if (SLOT_GEN(w) != gen || !(w & SLOT_OPEN))
            return NULL;
        cg_assert((w & SLOT_REFS) < SLOT_REFS);
        /* Acquire on success: see DESIGN (registry memory orders). */
    } while (!__atomic_compare_exchange_n(&s->word, &w, w + 1, true, __ATOMIC_ACQUIRE,
                                          __ATOMIC_RELAXED));
    *out = s;
    return s->actor;
}

static void reg_unref(reg_slot_t *s)
{
    /* Release: our use of the actor happens before the joiner's free. */
    __atomic_fetch_sub(&s->word, 1, __ATOMIC_RELEASE);
}

/* Joiner: no new references, then wait for the current ones to go. */
static void reg_retire(reg_slot_t *s)
{
    /* Relaxed: a sender's CAS either precedes this in the word's order (and
     * is counted below) or fails on the changed word. */
    __atomic_fetch_and(&s->word, ~SLOT_OPEN, __ATOMIC_RELAXED);
    /* Acquire: synchronises with every sender's release fetch_sub. */
    while ((__atomic_load_n(&s->word, __ATOMIC_ACQUIRE) & SLOT_REFS) != 0)
        sched_yield();
}

static void reg_close(uint32_t idx, reg_slot_t *s)
{
    pthread_mutex_lock(&reg.lock);
    uint32_t gen = SLOT_GEN(__atomic_load_n(&s->word, __ATOMIC_RELAXED)) + 1;
    if (gen == 0)
        gen = 1;
    s->actor = NULL;
    /* Relaxed: the slot is closed; the next reg_open publishes with release. */
    __atomic_store_n(&s->word, (uint64_t)gen << 32, __ATOMIC_RELAXED);
    s->next_free = reg.free_head;
    reg.free_head = idx + 1;
    pthread_mutex_unlock(&reg.lock);
}

/* ------------------------------------------------------------------ actors */

enum { W_USER, W_MBOX, W_TIMER, W_LOOP };

typedef struct watch {
    int fd;
    int kind;
    bool dead; /* unwatched this turn: skip its pending events */
    cg_actor_t *actor;
    uint32_t events; /* as given to epoll (user watches) */
    cg_fd_cb cb;
    void *ud;
} watch_t;

#define HEAP_NONE UINT32_MAX

typedef struct tmr {
    uint64_t deadline; /* CLOCK_MONOTONIC ns */
    uint64_t interval; /* 0: once */
    uint64_t seq;      /* tie-break and "added during this timer run" */
    cg_timer_cb cb;
    void *ud;
    uint32_t gen;      /* bumped when the slot is freed */
    uint32_t heap_pos; /* HEAP_NONE when not queued */
    uint32_t next_free;
    bool used;
} tmr_t;

typedef struct deferred {
    void (*fn)(void *);
    void *p;
} deferred_t;

struct cg_loop {
    char *name;
    int epfd;
    int wakefd; /* eventfd: an actor to adopt, or the loop was released */
    watch_t wake_w;
    pthread_t thread;
    bool dedicated; /* made by cg_actor_spawn for one actor; ends with it */

    pthread_mutex_t lock; /* guards the fields down to `released` */
    pthread_cond_t cond;  /* an actor finished */
    cg_actor_t *pending;  /* spawned, not yet adopted (init not run) */
    size_t live;          /* spawned onto it and not finished */
    bool released;

    /* Loop thread only from here. */
    cg_actor_t **actors;
    size_t nact, actcap;
    bool adopted_any;
    watch_t **fdtab; /* indexed by fd, whichever actor watches it */
    size_t fdcap;
    size_t nuser; /* user watches */
    deferred_t *defer;
    size_t ndefer, defercap;
};

struct cg_actor {
    cg_actor_spec_t spec;
    char *name;
    void *arg;
    void *state;
    cg_aid_t self;
    cg_aid_t parent;
    cg_mbox_t *mb;
    uint32_t batch;
    uint32_t budget; /* messages it may still get this turn (loop thread) */
    int tfd;
    cg_loop_t *loop;
    int joined;            /* atomic: one joiner only */
    bool finished;         /* under loop->lock: cleanup ran, EXIT sent */
    cg_actor_t *next_pend; /* loop->pending link, under loop->lock */

    /* Loop thread only from here. */
    bool exiting;
    bool stopping;
    int reason;
    char *detail;

    watch_t mbox_w, timer_w;

    tmr_t *tslab;
    uint32_t tcap, tfree; /* tfree 1-based, 0 = none */
    uint32_t *heap;
    uint32_t nheap, heapcap;
    uint64_t tseq;
    uint64_t armed; /* deadline the timerfd is set to, 0 = disarmed */
};

static bool hooks_enabled; /* atomic, relaxed: a switch that guards no data */
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void hooks_from_env(void)
{
    const char *e = getenv("CLAWGATE_TEST_HOOKS");
    if (e && strcmp(e, "1") == 0)
        __atomic_store_n(&hooks_enabled, true, __ATOMIC_RELAXED);
}

void cg_actor_enable_test_hooks(bool on)
{
    pthread_once(&hooks_once, hooks_from_env);
    __atomic_store_n(&hooks_enabled, on, __ATOMIC_RELAXED);
}

const char *cg_exit_reason_name(int reason)
{
    switch (reason) {
    case CG_EXIT_NORMAL:
        return "normal";
    case CG_EXIT_SHUTDOWN:
        return "shutdown";
    case CG_EXIT_CRASH:
        return "crash";
    case CG_EXIT_INIT_FAILED:
        return "init_failed";
    case CG_EXIT_ERROR:
        return "error";
    default:
        return "unknown";
    }
}

/* ---- accessors (actor thread) ---- */

cg_aid_t cg_actor_self(const cg_actor_t *a)
{
    return a->self;
}

const char *cg_actor_name(const cg_actor_t *a)
{
    return a->name;
}

void *cg_actor_state(const cg_actor_t *a)
{
    return a->state;
}

void cg_actor_set_state(cg_actor_t *a, void *state)
{
    a->state = state;
}

bool cg_actor_is_stopping(const cg_actor_t *a)
{
    return a->stopping;
}

void cg_actor_exit(cg_actor_t *a, int reason, const char *detail)
{
    if (a->exiting)
        return; /* the first reason is the true one */
    a->exiting = true;
    a->reason = reason;
    a->detail = detail ? cg_strdup(detail) : NULL;
}

static void loop_defer(cg_loop_t *l, void (*fn)(void *), void *p)
{
    if (l->ndefer == l->defercap) {
        l->defercap = l->defercap ? l->defercap * 2 : 16;
        l->defer = cg_realloc(l->defer, l->defercap * sizeof *l->defer);
    }
    l->defer[l->ndefer++] = (deferred_t){fn, p};
}

void cg_actor_defer(cg_actor_t *a, void (*fn)(void *), void *p)
{
    loop_defer(a->loop, fn, p);
}

static void run_deferred(cg_loop_t *l)
{
    /* Index-based: a deferred function may defer more. */
    for (size_t i = 0; i < l->ndefer; i++) {
        deferred_t d = l->defer[i];
        d.fn(d.p);
    }
    l->ndefer = 0;
}

/* ---- watched fds ----
 * One table per loop, indexed by fd: file descriptors are process-wide, and
 * an fd closed without unwatch (epoll drops it by itself) may come back with
 * the same number for another actor on the same loop. */

int cg_actor_watch(cg_actor_t *a, int fd, uint32_t events, cg_fd_cb cb, void *ud)
{
    cg_loop_t *l = a->loop;
    if (fd < 0 || !cb)
        return CG_EINVAL;
    cg_grow_zeroed((void **)&l->fdtab, &l->fdcap, (size_t)fd, sizeof *l->fdtab);
    watch_t *w = cg_calloc(1, sizeof *w);
    *w = (watch_t){.fd = fd, .kind = W_USER, .actor = a, .events = events, .cb = cb, .ud = ud};
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        free(w);
        return e == EEXIST ? CG_EINVAL : CG_EIO;
    }
    watch_t *old = l->fdtab[fd];
    if (old) {
        /* The fd was closed without unwatch (epoll dropped it) and its number
         * reused: retire the stale watch. */
        old->dead = true;
        loop_defer(l, free, old);
        l->nuser--;
    }
    l->fdtab[fd] = w;
    l->nuser++;
    return CG_OK;
}

static watch_t *own_watch(cg_actor_t *a, int fd)
{
    cg_loop_t *l = a->loop;
    if (fd < 0 || (size_t)fd >= l->fdcap || !l->fdtab[fd] || l->fdtab[fd]->actor != a)
        return NULL;
    return l->fdtab[fd];
}

int cg_actor_rewatch(cg_actor_t *a, int fd, uint32_t events)
{
    watch_t *w = own_watch(a, fd);
    if (!w)
        return CG_ENOENT;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(a->loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return CG_EIO;
    w->events = events;
    return CG_OK;
}

uint32_t cg_actor_watched_events(cg_actor_t *a, int fd)
{
    watch_t *w = own_watch(a, fd);
    return w ? w->events : 0;
}

static void drop_watch(cg_loop_t *l, watch_t *w)
{
    /* Errors (fd already closed) mean epoll dropped it already. */
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    l->fdtab[w->fd] = NULL;
    l->nuser--;
    w->dead = true;
    loop_defer(l, free, w); /* events for it may still be in this turn's batch */
}

int cg_actor_unwatch(cg_actor_t *a, int fd)
{
    watch_t *w = own_watch(a, fd);
    if (!w)
        return CG_ENOENT;
    drop_watch(a->loop, w);
    return CG_OK;
}

/* ---- timers ---- */

static bool tmr_before(const cg_actor_t *a, uint32_t x, uint32_t y)
{
    const tmr_t *p = &a->tslab[x], *q = &a->tslab[y];
    return p->deadline < q->deadline || (p->deadline == q->deadline && p->seq < q->seq);
}

static void heap_set(cg_actor_t *a, uint32_t pos, uint32_t t)
{
    a->heap[pos] = t;
    a->tslab[t].heap_pos = pos;
}

static void heap_up(cg_actor_t *a, uint32_t pos)
{
    uint32_t t = a->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!tmr_before(a, t, a->heap[parent]))
            break;
        heap_set(a, pos, a->heap[parent]);
        pos = parent;
    }
    heap_set(a, pos, t);
}

static void heap_down(cg_actor_t *a, uint32_t pos)
{
    uint32_t t = a->heap[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= a->nheap)
            break;
        if (c + 1 < a->nheap && tmr_before(a, a->heap[c + 1], a->heap[c]))
            c++;
        if (!tmr_before(a, a->heap[c], t))
            break;
        heap_set(a, pos, a->heap[c]);
        pos = c;
    }
    heap_set(a, pos, t);
}

static void heap_push(cg_actor_t *a, uint32_t t)
{
    if (a->nheap == a->heapcap) {
        a->heapcap = a->heapcap ? a->heapcap * 2 : 16;
        a->heap = cg_realloc(a->heap, a->heapcap * sizeof *a->heap);
    }
    a->heap[a->nheap] = t;
    heap_up(a, a->nheap++);
}

static void heap_remove(cg_actor_t *a, uint32_t pos)
{
    uint32_t t = a->heap[pos];
    a->tslab[t].heap_pos = HEAP_NONE;
    uint32_t last = a->heap[--a->nheap];
    if (pos == a->nheap)
        return;
    heap_set(a, pos, last);
    heap_up(a, pos);
    heap_down(a, a->tslab[last].heap_pos);
}

/* Called only when the loop is about to block. Returns the epoll timeout:
 * 0 when a timer is already due (no need to sleep, nor to arm), else -1 with
 * the timerfd pointing at or before the earliest deadline.
 *
 * Arming is lazy because timerfd_settime is a system call and timers churn:
 * curl re-plans its timeout on nearly every socket event and the HTTP front
 * adds a zero-delay "kick" per resumed request. Re-arming at every add or
 * cancel cost a quarter of the gateway's CPU under load. So the timerfd is
 * moved only when the earliest deadline comes *before* the armed one; a later
 * one just means an early wake-up, after which this re-arms. */
static int arm(cg_actor_t *a)
{
    if (!a->nheap)
        return -1; /* an armed timerfd may still fire: a harmless wake-up */
    uint64_t want = a->tslab[a->heap[0]].deadline;
    if (want <= cg_now_ns())
        return 0;
    if (a->armed && a->armed <= want)
        return -1;
    struct itimerspec its = {0};
    if (want) { /* (an all-zero it_value would disarm; deadlines are > 0) */
        its.it_value.tv_sec = (time_t)(want / 1000000000ull);
        its.it_value.tv_nsec = (long)(want % 1000000000ull);
    }
    if (timerfd_settime(a->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
        cg_error("actor %s: timerfd_settime: %s", a->name, strerror(errno));
        return 0; /* poll instead of sleeping blind */
    }
    a->armed = want;
    return -1;
}

static void tmr_free(cg_actor_t *a, uint32_t t)
{
    tmr_t *p = &a->tslab[t];
    p->used = false;
    p->gen++;
    if (p->gen == 0)
        p->gen = 1;
    p->cb = NULL;
    p->ud = NULL;
    p->next_free = a->tfree;
    a->tfree = t + 1;
}

uint64_t cg_actor_timer(cg_actor_t *a, uint64_t delay_ns, uint64_t interval_ns, cg_timer_cb cb,
                        void *ud)
{
    cg_assert(cb);
    uint32_t t;
    if (a->tfree) {
        t = a->tfree - 1;
        a->tfree = a->tslab[t].next_free;
    } else {
        uint32_t cap = a->tcap ? a->tcap * 2 : 16;
        a->tslab = cg_realloc(a->tslab, cap * sizeof *a->tslab);
        for (uint32_t i = a->tcap; i < cap; i++) {
            a->tslab[i] = (tmr_t){.gen = 1, .heap_pos = HEAP_NONE};
            a->tslab[i].next_free = i + 1 < cap ? i + 2 : 0;
        }
        t = a->tcap;
        a->tfree = a->tcap + 1 < cap ? a->tcap + 2 : 0;
        a->tcap = cap;
    }
    tmr_t *p = &a->tslab[t];
    p->used = true;
    p->deadline = cg_now_ns() + delay_ns;
    p->interval = interval_ns;
    p->seq = a->tseq++;
    p->cb = cb;
    p->ud = ud;
    heap_push(a, t);
    return (uint64_t)p->gen << 32 | (t + 1);
}

void cg_actor_timer_cancel(cg_actor_t *a, uint64_t timer_id)
{
    uint32_t t = (uint32_t)timer_id - 1;
    if ((uint32_t)timer_id == 0 || t >= a->tcap)
        return;
    tmr_t *p = &a->tslab[t];
    if (!p->used || p->gen != (uint32_t)(timer_id >> 32))
        return; /* fired (once) or cancelled already */
    if (p->heap_pos != HEAP_NONE)
        heap_remove(a, p->heap_pos);
    tmr_free(a, t);
}

static void run_timers(cg_actor_t *a)
{
    if (!a->nheap)
        return;
    uint64_t now = cg_now_ns();
    uint64_t seq_start = a->tseq;
    while (a->nheap && !a->exiting) {
        uint32_t t = a->heap[0];
        tmr_t *p = &a->tslab[t];
        if (p->deadline > now || p->seq >= seq_start)
            break;
        heap_remove(a, 0);
        cg_timer_cb cb = p->cb;
        void *ud = p->ud;
        if (p->interval) {
            uint64_t next = p->deadline + p->interval;
            if (next <= now) /* fell behind: skip the missed beats, no burst */
                next = now + p->interval;
            p->deadline = next;
            p->seq = a->tseq++;
            heap_push(a, t);
        } else {
            tmr_free(a, t); /* a cancel from inside cb is then a no-op */
        }
        cb(a, ud); /* may add/cancel timers: the slab may move, p is stale */
    }
}

/* ---- the loop ---- */

static void dispatch(cg_actor_t *a, cg_msg_t *m)
{
    switch (m->type) {
    case CG_MSG_SHUTDOWN:
        cg_msg_free(m);
        if (a->stopping)
            return;
        a->stopping = true;
        if (a->spec.stopping)
            a->spec.stopping(a);
        else
            cg_actor_exit(a, CG_EXIT_SHUTDOWN, NULL);
        return;
    case CG_MSG_CRASH:
        cg_msg_free(m);
        if (__atomic_load_n(&hooks_enabled, __ATOMIC_RELAXED)) {
            cg_actor_exit(a, CG_EXIT_CRASH, "crash test hook");
        } else {
            cg_warn("actor %s: CG_MSG_CRASH ignored (test hooks disabled)", a->name);
        }
        return;
    default:
        a->spec.handle(a, m);
    }
}

/* One epoll_wait (timeout -1 or 0) and the callbacks for what it returned. */
/* awake: the mailboxes were armed for sleep (cg_mbox_prepare_sleep). */
static void poll_once(cg_loop_t *l, int timeout, bool awake)
{
    struct epoll_event evs[64];
    int k = epoll_wait(l->epfd, evs, (int)CG_ARRAY_LEN(evs), timeout);
    if (awake) {
        /* Running again, before any callback: a message one of them sends to
         * an actor of this loop (provider -> front) would otherwise write that
         * actor's eventfd, costing a write, a read and a wake-up for a
         * message the next turn takes anyway. The turn starts with messages,
         * so nothing sent from here on waits for an event. */
        for (size_t i = 0; i < l->nact; i++)
            cg_mbox_awake(l->actors[i]->mb);
    }
    if (k < 0 && errno != EINTR) {
        for (size_t i = 0; i < l->nact; i++)
            cg_actor_exit(l->actors[i], CG_EXIT_ERROR, "epoll_wait failed");
        return;
    }
    for (int i = 0; i < k; i++) {
        watch_t *w = evs[i].data.ptr;
        if (w->kind == W_LOOP) {
            uint64_t v;
            ssize_t r = read(l->wakefd, &v, sizeof v);
            (void)r;
            continue;
        }
        /* An actor that asked to exit gets no more callbacks. */
        if (w->dead || w->actor->exiting)
            continue;
        cg_actor_t *a = w->actor;
        if (w->kind == W_MBOX) {
            cg_mbox_woke(a->mb);
        } else if (w->kind == W_TIMER) {
            uint64_t ticks;
            ssize_t r = read(a->tfd, &ticks, sizeof ticks);
            (void)r;
            a->armed = 0; /* consumed: arm() re-arms before the next sleep */
        } else {
            w->cb(a, w->fd, evs[i].events, w->ud);
        }
    }
}

/* Hand at most `max` messages to a's handler; returns how many it got. */
static uint32_t run_messages(cg_actor_t *a, uint32_t max)
{
    uint32_t n = 0;
    cg_msg_t *m;
    while (n < max && !a->exiting && (m = cg_mbox_pop_spsc(a->mb)) != NULL) {
        n++;
        dispatch(a, m);
    }
    return n;
}

static void finish(cg_actor_t *a);

/* Take the actors spawned onto this loop since the last turn and run their
 * init, in the loop's thread. */
static void adopt(cg_loop_t *l)
{
    pthread_mutex_lock(&l->lock);
    cg_actor_t *p = l->pending;
    l->pending = NULL;
    pthread_mutex_unlock(&l->lock);
    /* The list is newest first: reverse it so actors start in spawn order. */
    cg_actor_t *rev = NULL;
    while (p) {
        cg_actor_t *next = p->next_pend;
        p->next_pend = rev;
        rev = p;
        p = next;
    }
    for (cg_actor_t *a = rev, *next; a; a = next) {
        next = a->next_pend;
        a->next_pend = NULL;
        if (l->nact == l->actcap) {
            l->actcap = l->actcap ? l->actcap * 2 : 8;
            l->actors = cg_realloc(l->actors, l->actcap * sizeof *l->actors);
        }
        l->actors[l->nact++] = a;
        l->adopted_any = true;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &a->mbox_w};
        struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &a->timer_w};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, a->mbox_w.fd, &ev) < 0 ||
            epoll_ctl(l->epfd, EPOLL_CTL_ADD, a->tfd, &tev) < 0) {
            cg_actor_exit(a, CG_EXIT_INIT_FAILED, "epoll_ctl failed");
            continue;
        }
        int rc = a->spec.init ? a->spec.init(a, a->arg) : 0;
        if (rc < 0) {
            a->exiting = false; /* init's own exit request does not override */
            free(a->detail);
            a->detail = NULL;
            cg_actor_exit(a, CG_EXIT_INIT_FAILED, cg_strerror(rc));
        }
    }
}

/* One turn of a loop over every actor it hosts: messages (at most `batch`
 * per actor, so a flood cannot starve sockets, timers or the other actors),
 * then one epoll_wait — blocking only if every mailbox is empty and armed
 * for a wake-up — and the callbacks for what it returned, then due timers,
 * then deferred frees, then the end of actors that asked to exit. */
static void turn(cg_loop_t *l)
{
    /* Messages first. On a shared loop one actor's handler often sends to
     * another actor of the loop (front -> provider -> front -> store ->
     * front): keep passing over the actors while that happens, so a
     * request's hand-offs cost no epoll_wait each. Each actor still gets at
     * most `batch` messages per turn, so sockets and timers wait for at most
     * that much work. */
    bool more = false;
    for (size_t i = 0; i < l->nact; i++)
        l->actors[i]->budget = l->actors[i]->batch;
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t i = 0; i < l->nact; i++) {
            cg_actor_t *a = l->actors[i];
            if (a->exiting || a->budget == 0)
                continue;
            uint32_t n = run_messages(a, a->budget);
            a->budget -= n;
            if (a->budget == 0)
                more = true; /* some may remain: poll without blocking */
            progress |= n > 0 && l->nact > 1;
        }
    }
    /* Before we may block: what handlers deferred must not wait for the
     * next wake-up. */
    run_deferred(l);

    bool any_exiting = false;
    for (size_t i = 0; i < l->nact; i++)
        any_exiting |= l->actors[i]->exiting;
    if (!any_exiting) {
        int timeout = more ? 0 : -1;
        bool armed_sleep = false;
        if (!more) {
            /* Every mailbox must be empty with its flag set before we block:
             * a producer then writes its eventfd (Dekker pair in mbox.c). */
            armed_sleep = true;
            for (size_t i = 0; i < l->nact && timeout != 0; i++)
                if (!cg_mbox_prepare_sleep(l->actors[i]->mb))
                    timeout = 0;
            for (size_t i = 0; i < l->nact && timeout != 0; i++)
                if (arm(l->actors[i]) == 0)
                    timeout = 0; /* timers wake us through the timerfds */
        }
        bool have_timers = false;
        for (size_t i = 0; i < l->nact && !have_timers; i++)
            have_timers = l->actors[i]->nheap > 0;
        if (timeout != 0 || l->nuser || have_timers || !l->dedicated)
            poll_once(l, timeout, armed_sleep);
        /* else: nothing but messages to look at; skip the system call */
        if (armed_sleep) {
            /* Running again (poll_once did this already if it ran):
             * mailboxes whose eventfd did not fire keep their flag set, and a
             * producer on this very thread (one actor sending to another)
             * would write their eventfd for nothing. */
            for (size_t i = 0; i < l->nact; i++)
                cg_mbox_awake(l->actors[i]->mb);
        }
    }
    for (size_t i = 0; i < l->nact; i++)
        if (!l->actors[i]->exiting)
            run_timers(l->actors[i]);
    run_deferred(l);

    /* The end of actors that asked to exit, after every callback of this
     * turn (events already returned may point at their watches). */
    for (size_t i = 0; i < l->nact;) {
        cg_actor_t *a = l->actors[i];
        if (!a->exiting) {
            i++;
            continue;
        }
        l->actors[i] = l->actors[--l->nact];
        finish(a);
    }
}

typedef enum { SEND_BOUNDED, SEND_UNBOUNDED, SEND_LAZY } send_kind_t;

static int send_with(cg_aid_t to, cg_msg_t *m, send_kind_t kind)
{
    reg_slot_t *s;
    cg_actor_t *a = reg_ref(to, &s);
    if (!a)
        return CG_ENOENT;
    int rc = kind == SEND_BOUNDED ? cg_mbox_push_mpsc(a->mb, m)
             : kind == SEND_LAZY  ? cg_mbox_push_lazy_mpsc(a->mb, m)
                                  : cg_mbox_push_unbounded_mpsc(a->mb, m);
    reg_unref(s);
    return rc;
}

int cg_actor_send(cg_aid_t to, cg_msg_t *m)
{
    return send_with(to, m, SEND_BOUNDED);
}

int cg_actor_send_lazy(cg_aid_t to, cg_msg_t *m)
{
    return send_with(to, m, SEND_LAZY);
}

int cg_actor_stop(cg_aid_t to)
{
    cg_msg_t *m = cg_msg_new(CG_MSG_SHUTDOWN, NULL, 0);
    int rc = send_with(to, m, SEND_UNBOUNDED); /* a stop must get through a full mailbox */
    if (rc != CG_OK)
        cg_msg_free(m);
    return rc;
}

static void finish(cg_actor_t *a)
{
    cg_loop_t *l = a->loop;
    if (a->spec.cleanup)
        a->spec.cleanup(a);
    run_deferred(l);

    cg_mbox_close(a->mb);
    cg_msg_t *m;
    while ((m = cg_mbox_pop_spsc(a->mb)) != NULL)
        cg_msg_free(m); /* stragglers that raced with close are freed at join */

    /* Whatever it still watches leaves the loop's epoll set now: the loop
     * lives on and its other actors keep polling. */
    for (size_t fd = 0; fd < l->fdcap; fd++)
        if (l->fdtab[fd] && l->fdtab[fd]->actor == a)
            drop_watch(l, l->fdtab[fd]);
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, a->mbox_w.fd, NULL);
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, a->tfd, NULL);
    run_deferred(l);
    free(a->tslab);
    free(a->heap);
    a->tslab = NULL;
    a->heap = NULL;
    close(a->tfd);
    a->tfd = -1;

    if (a->reason == CG_EXIT_NORMAL || a->reason == CG_EXIT_SHUTDOWN)
        cg_debug("actor %s exited: %s", a->name, cg_exit_reason_name(a->reason));
    else
        cg_warn("actor %s exited: %s%s%s", a->name, cg_exit_reason_name(a->reason),
                a->detail ? ": " : "", a->detail ? a->detail : "");

    if (a->parent != CG_AID_NONE) {
        cg_msg_t *e =
            cg_msg_pack(CG_MSG_EXIT, "uis", (uint64_t)a->self, (int64_t)a->reason, a->detail);
        e->sender = a->self;
        e->reply_to = a->self;
        if (send_with(a->parent, e, SEND_UNBOUNDED) != CG_OK)
            cg_msg_free(e); /* parent gone: nobody to tell */
    }
    pthread_mutex_lock(&l->lock);
    a->finished = true; /* from here on the joiner owns a */
    l->live--;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static bool loop_done(cg_loop_t *l)
{
    if (l->nact)
        return false;
    pthread_mutex_lock(&l->lock);
    bool done = !l->pending && (l->dedicated ? l->adopted_any : l->released);
    pthread_mutex_unlock(&l->lock);
    return done;
}

static void *loop_main(void *p)
{
    cg_loop_t *l = p;
    char tname[16];
    snprintf(tname, sizeof tname, "%s", l->name);
    pthread_setname_np(pthread_self(), tname);
    for (;;) {
        adopt(l);
        if (loop_done(l))
            break;
        turn(l);
    }
    return NULL;
}

static void loop_free(cg_loop_t *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
    free(l->actors);
    for (size_t fd = 0; fd < l->fdcap; fd++)
        free(l->fdtab[fd]);
    free(l->fdtab);
    free(l->defer);
    free(l->name);
    free(l);
}

static cg_loop_t *loop_start(const char *name, bool dedicated)
{
    cg_loop_t *l = cg_calloc(1, sizeof *l);
    l->name = cg_strdup(name ? name : "loop");
    l->dedicated = dedicated;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->wake_w = (watch_t){.fd = l->wakefd, .kind = W_LOOP};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->wake_w};
    if (l->epfd < 0 || l->wakefd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0) {
        loop_free(l);
        return NULL;
    }
    /* The new thread inherits this mask: asynchronous signals blocked,
     * synchronous ones (faults, abort) left alone. */
    sigset_t all, old;
    sigfillset(&all);
    int sync_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < CG_ARRAY_LEN(sync_sigs); i++)
        sigdelset(&all, sync_sigs[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&l->thread, NULL, loop_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        loop_free(l);
        return NULL;
    }
    return l;
}

static void loop_wake(cg_loop_t *l)
{
    cg_efd_signal(l->wakefd);
}

cg_loop_t *cg_loop_new(const char *name)
{
    return loop_start(name, false);
}

void cg_loop_free(cg_loop_t *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->released = true;
    size_t live = l->live;
    pthread_mutex_unlock(&l->lock);
    if (live) {
        /* An actor that never ended (a supervisor gave up waiting for a stuck
         * one): its thread cannot be stopped; leave it to the process exit
         * rather than wait for ever. */
        cg_warn("loop %s: %zu actor(s) still on it; leaving its thread running", l->name, live);
        return;
    }
    loop_wake(l);
    pthread_join(l->thread, NULL);
    loop_free(l);
}

static cg_actor_t *actor_new(const cg_actor_spec_t *spec, void *arg, cg_aid_t parent)
{
    cg_actor_t *a = cg_calloc(1, sizeof *a);
    a->spec = *spec;
    a->name = cg_strdup(spec->name ? spec->name : "actor");
    a->spec.name = a->name;
    a->arg = arg;
    a->parent = parent;
    a->batch = spec->batch ? spec->batch : 64;
    a->tfd = -1;
    a->mb = cg_mbox_new(spec->mailbox_cap ? spec->mailbox_cap : 65536);
    return a;
}

static void actor_free(cg_actor_t *a)
{
    cg_mbox_free(a->mb);
    if (a->tfd >= 0)
        close(a->tfd);
    free(a->name);
    free(a->detail);
    free(a);
}

int cg_actor_spawn_on(cg_loop_t *loop, const cg_actor_spec_t *spec, void *arg, cg_aid_t parent,
                      cg_aid_t *out)
{
    pthread_once(&hooks_once, hooks_from_env);
    if (!spec || !spec->handle || !out)
        return CG_EINVAL;

    cg_actor_t *a = actor_new(spec, arg, parent);
    if (!a->mb) {
        free(a->name);
        free(a);
        return CG_EIO;
    }
    a->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (a->tfd < 0) {
        actor_free(a);
        return CG_EIO;
    }
    a->mbox_w = (watch_t){.fd = cg_mbox_fd(a->mb), .kind = W_MBOX, .actor = a};
    a->timer_w = (watch_t){.fd = a->tfd, .kind = W_TIMER, .actor = a};

    /* Open the address before the actor runs: messages sent as soon as
     * spawn returns wait in the mailbox until init is done. */
    a->self = reg_open(a);
    a->loop = loop;
    bool dedicated = !loop;
    if (dedicated) {
        a->loop = loop_start(a->name, true);
        if (!a->loop) {
            reg_slot_t *s = reg_slot((uint32_t)a->self);
            reg_retire(s);
            reg_close((uint32_t)a->self, s);
            actor_free(a);
            return CG_EIO;
        }
    }
    pthread_mutex_lock(&a->loop->lock);
    a->next_pend = a->loop->pending;
    a->loop->pending = a;
    a->loop->live++;
    pthread_mutex_unlock(&a->loop->lock);
    loop_wake(a->loop);
    *out = a->self;
    return CG_OK;
}

int cg_actor_spawn(const cg_actor_spec_t *spec, void *arg, cg_aid_t parent, cg_aid_t *out)
{
    return cg_actor_spawn_on(NULL, spec, arg, parent, out);
}

int cg_actor_join(cg_aid_t who, int *reason)
{
    reg_slot_t *s;
    cg_actor_t *a = reg_ref(who, &s);
    if (!a)
        return CG_ENOENT;
    cg_loop_t *l = a->loop;
    if (pthread_equal(l->thread, pthread_self())) {
        /* On the actor's own loop thread we cannot wait for it; an actor
         * that has already finished can still be reaped. */
        pthread_mutex_lock(&l->lock);
        bool fin = a->finished;
        pthread_mutex_unlock(&l->lock);
        if (!fin) {
            reg_unref(s);
            return CG_EINVAL;
        }
    }
    /* Relaxed: only decides which of two (mistaken) joiners proceeds. */
    bool twice = __atomic_exchange_n(&a->joined, 1, __ATOMIC_RELAXED);
    reg_unref(s);
    if (twice)
        return CG_EINVAL;

    if (l->dedicated) {
        pthread_join(l->thread, NULL);
        loop_free(l);
    } else {
        pthread_mutex_lock(&l->lock);
        while (!a->finished)
            pthread_cond_wait(&l->cond, &l->lock);
        pthread_mutex_unlock(&l->lock);
    }
    reg_retire(s);
    int r = a->reason; /* written by the loop thread before `finished` */
    actor_free(a);
    reg_close((uint32_t)who, s);
    if (reason)
        *reason = r;
    return CG_OK;
}
