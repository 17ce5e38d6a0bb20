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

enum { W_USER, W_MBOX, W_TIMER };

typedef struct watch {
    int fd;
    int kind;
    bool dead; /* unwatched this turn: skip its pending events */
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

struct cg_actor {
    cg_actor_spec_t spec;
    char *name;
    void *arg;
    void *state;
    cg_aid_t self;
    cg_aid_t parent;
    cg_mbox_t *mb;
    uint32_t batch;
    int epfd;
    int tfd;
    pthread_t thread;
    int joined; /* atomic: one joiner only */

    /* Actor thread only from here. */
    bool exiting;
    bool stopping;
    int reason;
    char *detail;

    watch_t mbox_w, timer_w;
    watch_t **fdtab; /* indexed by fd */
    size_t fdcap;
    size_t nuser; /* user watches */

    tmr_t *tslab;
    uint32_t tcap, tfree; /* tfree 1-based, 0 = none */
    uint32_t *heap;
    uint32_t nheap, heapcap;
    uint64_t tseq;
    uint64_t armed; /* deadline the timerfd is set to, 0 = disarmed */

    deferred_t *defer;
    size_t ndefer, defercap;
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

void cg_actor_defer(cg_actor_t *a, void (*fn)(void *), void *p)
{
    if (a->ndefer == a->defercap) {
        a->defercap = a->defercap ? a->defercap * 2 : 16;
        a->defer = cg_realloc(a->defer, a->defercap * sizeof *a->defer);
    }
    a->defer[a->ndefer++] = (deferred_t){fn, p};
}

static void run_deferred(cg_actor_t *a)
{
    /* Index-based: a deferred function may defer more. */
    for (size_t i = 0; i < a->ndefer; i++) {
        deferred_t d = a->defer[i];
        d.fn(d.p);
    }
    a->ndefer = 0;
}

/* ---- watched fds ---- */

int cg_actor_watch(cg_actor_t *a, int fd, uint32_t events, cg_fd_cb cb, void *ud)
{
    if (fd < 0 || !cb)
        return CG_EINVAL;
    if ((size_t)fd >= a->fdcap) {
        size_t cap = a->fdcap ? a->fdcap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        a->fdtab = cg_realloc(a->fdtab, cap * sizeof *a->fdtab);
        memset(a->fdtab + a->fdcap, 0, (cap - a->fdcap) * sizeof *a->fdtab);
        a->fdcap = cap;
    }
    watch_t *w = cg_calloc(1, sizeof *w);
    *w = (watch_t){.fd = fd, .kind = W_USER, .cb = cb, .ud = ud};
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        free(w);
        return e == EEXIST ? CG_EINVAL : CG_EIO;
    }
    watch_t *old = a->fdtab[fd];
    if (old) {
        /* The fd was closed without unwatch (epoll dropped it) and its number
         * reused: retire the stale watch. */
        old->dead = true;
        cg_actor_defer(a, free, old);
        a->nuser--;
    }
    a->fdtab[fd] = w;
    a->nuser++;
    return CG_OK;
}

int cg_actor_rewatch(cg_actor_t *a, int fd, uint32_t events)
{
    if (fd < 0 || (size_t)fd >= a->fdcap || !a->fdtab[fd])
        return CG_ENOENT;
    struct epoll_event ev = {.events = events, .data.ptr = a->fdtab[fd]};
    return epoll_ctl(a->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? CG_EIO : CG_OK;
}

int cg_actor_unwatch(cg_actor_t *a, int fd)
{
    if (fd < 0 || (size_t)fd >= a->fdcap || !a->fdtab[fd])
        return CG_ENOENT;
    watch_t *w = a->fdtab[fd];
    /* Errors (fd already closed) mean epoll dropped it already. */
    (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, fd, NULL);
    a->fdtab[fd] = NULL;
    a->nuser--;
    w->dead = true;
    cg_actor_defer(a, free, w); /* events for it may still be in this turn's batch */
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
static void poll_once(cg_actor_t *a, int timeout)
{
    struct epoll_event evs[64];
    int k = epoll_wait(a->epfd, evs, (int)CG_ARRAY_LEN(evs), timeout);
    if (k < 0 && errno != EINTR) {
        cg_actor_exit(a, CG_EXIT_ERROR, "epoll_wait failed");
        return;
    }
    /* If we slept and something else woke us, `sleeping` stays set: at worst
     * one producer writes the eventfd needlessly and a later epoll_wait
     * returns at once and drains it. */
    for (int i = 0; i < k && !a->exiting; i++) {
        watch_t *w = evs[i].data.ptr;
        if (w->dead)
            continue;
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

static void loop(cg_actor_t *a)
{
    while (!a->exiting) {
        uint32_t n = 0;
        cg_msg_t *m;
        while (n < a->batch && !a->exiting && (m = cg_mbox_pop_spsc(a->mb)) != NULL) {
            n++;
            dispatch(a, m);
        }
        /* Before we may block: what handlers deferred must not wait for the
         * next wake-up. */
        run_deferred(a);
        if (!a->exiting) {
            if (n < a->batch && cg_mbox_prepare_sleep(a->mb))
                poll_once(a, arm(a)); /* timers wake us through the timerfd */
            else if (a->nuser || a->nheap)
                poll_once(a, 0); /* messages remain: just look at fds and timers */
            /* else: nothing but messages to look at; skip the system call */
        }
        if (!a->exiting)
            run_timers(a);
        run_deferred(a);
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
    if (a->spec.cleanup)
        a->spec.cleanup(a);
    run_deferred(a);

    cg_mbox_close(a->mb);
    cg_msg_t *m;
    while ((m = cg_mbox_pop_spsc(a->mb)) != NULL)
        cg_msg_free(m); /* stragglers that raced with close are freed at join */

    for (size_t fd = 0; fd < a->fdcap; fd++)
        free(a->fdtab[fd]);
    free(a->fdtab);
    a->fdtab = NULL;
    a->fdcap = 0;
    free(a->tslab);
    free(a->heap);
    free(a->defer);
    a->tslab = NULL;
    a->heap = NULL;
    a->defer = NULL;
    close(a->epfd);
    close(a->tfd);

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
}

static void *actor_main(void *p)
{
    cg_actor_t *a = p;
    char tname[16];
    snprintf(tname, sizeof tname, "%s", a->name);
    pthread_setname_np(pthread_self(), tname);

    int rc = a->spec.init ? a->spec.init(a, a->arg) : 0;
    if (rc < 0) {
        a->exiting = false; /* init's own exit request does not override */
        free(a->detail);
        a->detail = NULL;
        cg_actor_exit(a, CG_EXIT_INIT_FAILED, cg_strerror(rc));
    }
    if (!a->exiting)
        loop(a);
    finish(a);
    return NULL;
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
    a->epfd = a->tfd = -1;
    a->mb = cg_mbox_new(spec->mailbox_cap ? spec->mailbox_cap : 65536);
    return a;
}

static void actor_free(cg_actor_t *a)
{
    cg_mbox_free(a->mb);
    if (a->epfd >= 0)
        close(a->epfd);
    if (a->tfd >= 0)
        close(a->tfd);
    free(a->name);
    free(a->detail);
    free(a);
}

int cg_actor_spawn(const cg_actor_spec_t *spec, void *arg, cg_aid_t parent, cg_aid_t *out)
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
    a->epfd = epoll_create1(EPOLL_CLOEXEC);
    a->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (a->epfd < 0 || a->tfd < 0) {
        actor_free(a);
        return CG_EIO;
    }
    a->mbox_w = (watch_t){.fd = cg_mbox_fd(a->mb), .kind = W_MBOX};
    a->timer_w = (watch_t){.fd = a->tfd, .kind = W_TIMER};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &a->mbox_w};
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &a->timer_w};
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->mbox_w.fd, &ev) < 0 ||
        epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->tfd, &tev) < 0) {
        actor_free(a);
        return CG_EIO;
    }

    /* Open the address before the thread runs: messages sent as soon as
     * spawn returns wait in the mailbox until init is done. */
    a->self = reg_open(a);

    /* The new thread inherits this mask: asynchronous signals blocked,
     * synchronous ones (faults, abort) left alone. */
    sigset_t all, old;
    sigfillset(&all);
    int sync_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < CG_ARRAY_LEN(sync_sigs); i++)
        sigdelset(&all, sync_sigs[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&a->thread, NULL, actor_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        reg_slot_t *s = reg_slot((uint32_t)a->self);
        reg_retire(s);
        reg_close((uint32_t)a->self, s);
        actor_free(a);
        return CG_EIO;
    }
    *out = a->self;
    return CG_OK;
}

int cg_actor_join(cg_aid_t who, int *reason)
{
    reg_slot_t *s;
    cg_actor_t *a = reg_ref(who, &s);
    if (!a)
        return CG_ENOENT;
    if (pthread_equal(a->thread, pthread_self())) {
        reg_unref(s);
        return CG_EINVAL;
    }
    /* Relaxed: only decides which of two (mistaken) joiners proceeds. */
    bool twice = __atomic_exchange_n(&a->joined, 1, __ATOMIC_RELAXED);
    reg_unref(s);
    if (twice)
        return CG_EINVAL;

    pthread_join(a->thread, NULL);
    reg_retire(s);
    int r = a->reason;     /* written by the actor thread before it ended */
    a->epfd = a->tfd = -1; /* closed by finish() */
    actor_free(a);
    reg_close((uint32_t)who, s);
    if (reason)
        *reason = r;
    return CG_OK;
}
