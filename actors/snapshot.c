/*
 * snapshot.c — lock-free publication of immutable values with split reference
 * counts.
 *
 * DESIGN
 * Why split reference counts and not ck_epoch: a reader may keep a snapshot
 * for as long as a request lives (a stream can last minutes), and several
 * threads always hold one. With an epoch scheme a thread that is never
 * outside a read section stops the epoch from advancing, so nothing retired
 * after it would ever be freed; ranking snapshots are republished every few
 * seconds for months. Reference counts free each value as soon as its own
 * last holder lets go. They are also plain C11 atomics, which
 * ThreadSanitizer checks as they are (ck's inline assembly it cannot see).
 *
 * Each published value lives in a slot {value, inner count, busy}. Slots sit
 * in a directory of chunks that only grows (chunk k holds 16 << k slots), so
 * a slot's memory stays valid for the life of the cg_snap_t and readers may
 * look at any slot without protection; only the *values* are reclaimed.
 *
 * The current publication is one 64-bit word: slot index in the low 22 bits,
 * an external count in the high 42 bits.
 *   acquire: fetch_add(word, 1 external) — one wait-free step gives the slot
 *            and a reference at once; no window where the value could go.
 *   release: while the word still names our slot, hand the reference back
 *            by CAS-decrementing the external count; otherwise the writer has
 *            moved our reference into the slot's inner count, so decrement
 *            that. Whoever takes inner to 0 destroys the value and frees the
 *            slot. (Lock-free: the CAS retries only when other readers moved
 *            the same word.)
 *   publish: (writers serialised by a mutex) fill a free slot, exchange the
 *            word, then add the old word's external count to the old slot's
 *            inner count. Inner counts go negative while a slot is current
 *            (readers who got their reference before the swap decrement it),
 *            and reach exactly 0 only after the swap, when every holder has
 *            released.
 * A slot is reused only once its inner count reached 0 after its swap-out,
 * so an index read from the word always names the publication its external
 * count belongs to (no ABA). release(value) finds the slot by value: a live
 * value is in exactly one busy slot (publishing a value that is still live
 * is a caller bug, asserted).
 *
 * Memory orders: publish's exchange is acq_rel (release: the slot and the
 * value it points to are complete before readers can find them; acquire:
 * readers' releases of the old publication, which are RMWs on the same
 * word, happen before the transfer). acquire's fetch_add is acquire
 * (pairs with that release). The release CAS is release; inner count
 * updates are acq_rel, as for any reference count whose last decrement
 * destroys. busy is stored with release after destruction and loaded with
 * acquire by the writer before reuse.
 */
#include "actors/snapshot.h"

#include <pthread.h>

#define IDX_BITS 22
#define IDX_MASK ((1ull << IDX_BITS) - 1)
#define EXT_ONE (1ull << IDX_BITS)
#define CHUNK0 16
#define NCHUNKS 18 /* 16 * (2^18 - 1) slots < 2^22 */

typedef struct slot {
    void *value;   /* atomic: read by scanning releasers */
    int64_t inner; /* atomic: see DESIGN */
    int busy;      /* atomic: 1 from publish until the value is destroyed */
} slot_t;

struct cg_snap {
    uint64_t word;    /* atomic: idx | external count */
    uint64_t version; /* atomic: written under wlock */
    void (*destroy)(void *);
    pthread_mutex_t wlock;
    uint32_t nslots;         /* atomic: slots allocated (whole chunks) */
    slot_t *chunks[NCHUNKS]; /* atomic pointers, set once each */
};

static slot_t *slot_at(cg_snap_t *s, uint32_t idx)
{
    uint64_t i = (uint64_t)idx + CHUNK0;
    int k = 63 - __builtin_clzll(i) - 4;
    /* Acquire: the chunk's zeroed memory is visible before we use it. */
    slot_t *c = __atomic_load_n(&s->chunks[k], __ATOMIC_ACQUIRE);
    cg_assert(c);
    return &c[i - ((uint64_t)CHUNK0 << k)];
}

/* Writer only (wlock held): make room for one more chunk of slots. */
static void grow(cg_snap_t *s)
{
    uint32_t n = __atomic_load_n(&s->nslots, __ATOMIC_RELAXED);
    int k = 0;
    while (((uint32_t)CHUNK0 << k) - CHUNK0 < n)
        k++;
    cg_assert(k < NCHUNKS);
    slot_t *c = cg_calloc((size_t)CHUNK0 << k, sizeof(slot_t));
    __atomic_store_n(&s->chunks[k], c, __ATOMIC_RELEASE);
    /* Release: scanners that see the new count also see the chunk. */
    __atomic_store_n(&s->nslots, n + ((uint32_t)CHUNK0 << k), __ATOMIC_RELEASE);
}

cg_snap_t *cg_snap_new(void *initial, void (*destroy)(void *))
{
    cg_snap_t *s = cg_calloc(1, sizeof *s);
    s->destroy = destroy;
    pthread_mutex_init(&s->wlock, NULL);
    grow(s);
    slot_t *sl = slot_at(s, 0);
    sl->value = initial;
    sl->busy = 1;
    s->word = 0; /* slot 0, no external references */
    return s;
}

/* The last reference to sl's value is gone: destroy it, free the slot. */
static void reclaim(cg_snap_t *s, slot_t *sl)
{
    /* Unlink the value before destroying it: once freed, its address may
     * come back from malloc as a new value, which must not be found in
     * this slot (release's scan, publish's duplicate check). */
    void *v = __atomic_exchange_n(&sl->value, NULL, __ATOMIC_RELAXED);
    if (v && s->destroy)
        s->destroy(v);
    /* Release: the destruction happens before the writer reuses the slot. */
    __atomic_store_n(&sl->busy, 0, __ATOMIC_RELEASE);
}

/* Give back one reference on the publication in slot idx. */
static void drop(cg_snap_t *s, uint32_t idx, slot_t *sl)
{
    uint64_t w = __atomic_load_n(&s->word, __ATOMIC_RELAXED);
    while ((w & IDX_MASK) == idx) {
        cg_assert(w >> IDX_BITS > 0);
        /* Release: our reads of the value happen before the writer's
         * acquire-exchange (every later write to the word is an RMW, so it
         * continues our release sequence). */
        if (__atomic_compare_exchange_n(&s->word, &w, w - EXT_ONE, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            return;
    }
    /* Swapped out: the writer moved our external reference into inner. */
    if (__atomic_fetch_sub(&sl->inner, 1, __ATOMIC_ACQ_REL) == 1)
        reclaim(s, sl);
}

void *cg_snap_acquire(cg_snap_t *s)
{
    /* Acquire: pairs with publish's release exchange; the slot and the value
     * behind it are complete. */
    uint64_t w = __atomic_fetch_add(&s->word, EXT_ONE, __ATOMIC_ACQUIRE);
    uint32_t idx = (uint32_t)(w & IDX_MASK);
    slot_t *sl = slot_at(s, idx);
    void *v = __atomic_load_n(&sl->value, __ATOMIC_RELAXED);
    if (!v)
        drop(s, idx, sl); /* nothing to keep alive; release(NULL) is a no-op */
    return v;
}

void cg_snap_release(cg_snap_t *s, void *value)
{
    if (!value)
        return;
    /* Usually the value is still the current one. */
    uint32_t idx = (uint32_t)(__atomic_load_n(&s->word, __ATOMIC_RELAXED) & IDX_MASK);
    slot_t *sl = slot_at(s, idx);
    if (__atomic_load_n(&sl->value, __ATOMIC_RELAXED) != value) {
        uint32_t n = __atomic_load_n(&s->nslots, __ATOMIC_ACQUIRE);
        sl = NULL;
        for (idx = 0; idx < n; idx++) {
            slot_t *c = slot_at(s, idx);
            if (__atomic_load_n(&c->value, __ATOMIC_RELAXED) == value) {
                sl = c;
                break;
            }
        }
        cg_assert(sl && "cg_snap_release: value was not acquired from this snapshot");
    }
    drop(s, idx, sl);
}

uint64_t cg_snap_publish(cg_snap_t *s, void *next)
{
    pthread_mutex_lock(&s->wlock);
    uint32_t n = __atomic_load_n(&s->nslots, __ATOMIC_RELAXED);
    slot_t *fresh = NULL;
    uint32_t idx = 0;
    for (uint32_t i = 0; i < n; i++) {
        slot_t *c = slot_at(s, i);
        /* Acquire: pairs with reclaim's release; the old value is gone. */
        int busy = __atomic_load_n(&c->busy, __ATOMIC_ACQUIRE);
        if (busy) {
            cg_assert(!next || __atomic_load_n(&c->value, __ATOMIC_RELAXED) != next);
        } else if (!fresh) {
            fresh = c;
            idx = i;
        }
    }
    if (!fresh) {
        grow(s);
        idx = n;
        fresh = slot_at(s, idx);
    }
    cg_assert(idx <= IDX_MASK);
    cg_assert(__atomic_load_n(&fresh->inner, __ATOMIC_RELAXED) == 0);
    __atomic_store_n(&fresh->value, next, __ATOMIC_RELAXED);
    __atomic_store_n(&fresh->busy, 1, __ATOMIC_RELAXED);

    /* acq_rel: see DESIGN. */
    uint64_t old = __atomic_exchange_n(&s->word, (uint64_t)idx, __ATOMIC_ACQ_REL);
    slot_t *osl = slot_at(s, (uint32_t)(old & IDX_MASK));
    int64_t ext = (int64_t)(old >> IDX_BITS);
    if (__atomic_fetch_add(&osl->inner, ext, __ATOMIC_ACQ_REL) + ext == 0)
        reclaim(s, osl);

    uint64_t v = __atomic_load_n(&s->version, __ATOMIC_RELAXED) + 1;
    /* Release: a reader that sees version v can acquire and find v's value
     * or a later one. */
    __atomic_store_n(&s->version, v, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->wlock);
    return v;
}

uint64_t cg_snap_version(cg_snap_t *s)
{
    return __atomic_load_n(&s->version, __ATOMIC_ACQUIRE);
}

void cg_snap_free(cg_snap_t *s)
{
    if (!s)
        return;
    uint32_t cur = (uint32_t)(s->word & IDX_MASK);
    uint32_t n = s->nslots;
    for (uint32_t i = 0; i < n; i++) {
        slot_t *sl = slot_at(s, i);
        if (!sl->busy)
            continue;
        if (i == cur)
            reclaim(s, sl);
        else /* a holder never released: leak the value rather than free it under them */
            cg_warn("snapshot: a value is still held at free; leaking it");
    }
    for (int k = 0; k < NCHUNKS; k++)
        free(s->chunks[k]);
    pthread_mutex_destroy(&s->wlock);
    free(s);
}
