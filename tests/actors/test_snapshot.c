/*
 * test_snapshot.c — published snapshots: lifetimes (a held value survives
 * any number of publications and dies with its last release), NULL values,
 * many versions held at once, releases from another thread, and a writer
 * swapping values while readers check each value's integrity.
 *
 *   test_snapshot [publications [readers]]
 *
 * tsan: yes
 */
#include "actors/snapshot.h"
#include "tests/t.h"

#include <pthread.h>
#include <sched.h>

#define NWORDS 16
#define MAGIC 0x5ca1ab1e5ca1ab1eull

typedef struct val {
    uint64_t magic;
    uint64_t version;
    uint64_t w[NWORDS]; /* w[i] == version * 31 + i */
} val_t;

static uint64_t created, destroyed; /* atomic */

static val_t *mkval(uint64_t version)
{
    val_t *v = cg_malloc(sizeof *v);
    v->magic = MAGIC;
    v->version = version;
    for (int i = 0; i < NWORDS; i++)
        v->w[i] = version * 31 + (uint64_t)i;
    __atomic_fetch_add(&created, 1, __ATOMIC_RELAXED);
    return v;
}

static void destroy_val(void *p)
{
    val_t *v = p;
    cg_assert(v->magic == MAGIC); /* destroyed twice? */
    memset(v, 0xdd, sizeof *v);   /* a reader still using it sees garbage */
    free(v);
    __atomic_fetch_add(&destroyed, 1, __ATOMIC_RELAXED);
}

static bool intact(const val_t *v)
{
    if (v->magic != MAGIC)
        return false;
    for (int i = 0; i < NWORDS; i++)
        if (v->w[i] != v->version * 31 + (uint64_t)i)
            return false;
    return true;
}

static uint64_t live(void)
{
    return __atomic_load_n(&created, __ATOMIC_RELAXED) -
           __atomic_load_n(&destroyed, __ATOMIC_RELAXED);
}

static void test_lifetimes(void)
{
    uint64_t base = live();
    cg_snap_t *s = cg_snap_new(NULL, destroy_val);
    T_ASSERT(cg_snap_acquire(s) == NULL);
    cg_snap_release(s, NULL);
    T_EQ_INT(cg_snap_version(s), 0);

    val_t *a = mkval(1);
    T_EQ_INT(cg_snap_publish(s, a), 1);
    val_t *ha = cg_snap_acquire(s);
    T_ASSERT(ha == a);
    val_t *ha2 = cg_snap_acquire(s); /* two holds on the same value */
    T_ASSERT(ha2 == a);

    T_EQ_INT(cg_snap_publish(s, mkval(2)), 2);
    T_EQ_INT(cg_snap_publish(s, mkval(3)), 3); /* 2 had no holders: gone */
    T_EQ_INT(live() - base, 2);                /* a (held) and 3 (current) */
    T_ASSERT(intact(ha));
    cg_snap_release(s, ha);
    T_EQ_INT(live() - base, 2);
    T_ASSERT(intact(ha2));
    cg_snap_release(s, ha2); /* last holder: destroyed now */
    T_EQ_INT(live() - base, 1);

    val_t *h3 = cg_snap_acquire(s);
    T_EQ_INT(h3->version, 3);
    cg_snap_release(s, h3);
    T_EQ_INT(live() - base, 1); /* current stays */

    /* NULL can be published; readers get NULL; the previous value goes. */
    T_EQ_INT(cg_snap_publish(s, NULL), 4);
    T_EQ_INT(live() - base, 0);
    T_ASSERT(cg_snap_acquire(s) == NULL);
    T_EQ_INT(cg_snap_publish(s, mkval(5)), 5);
    T_EQ_INT(cg_snap_version(s), 5);
    cg_snap_free(s); /* destroys the current value */
    T_EQ_INT(live() - base, 0);
}

static void test_many_held_versions(void)
{
    /* More simultaneously live versions than the first slot chunks hold. */
    enum { N = 300 };
    uint64_t base = live();
    cg_snap_t *s = cg_snap_new(mkval(0), destroy_val);
    static val_t *held[N];
    for (uint64_t i = 0; i < N; i++) {
        held[i] = cg_snap_acquire(s);
        T_EQ_INT(held[i]->version, i);
        cg_snap_publish(s, mkval(i + 1));
    }
    T_EQ_INT(live() - base, N + 1);
    /* Release in a scrambled order. */
    for (uint64_t k = 0; k < N; k++) {
        uint64_t i = (k * 7) % N;
        T_ASSERT(intact(held[i]) && held[i]->version == i);
        cg_snap_release(s, held[i]);
    }
    T_EQ_INT(live() - base, 1);
    /* Slots are reused, not grown further. */
    for (uint64_t i = 0; i < 1000; i++) {
        val_t *h = cg_snap_acquire(s);
        cg_snap_publish(s, mkval(1000 + i));
        cg_snap_release(s, h);
    }
    T_EQ_INT(live() - base, 1);
    cg_snap_free(s);
    T_EQ_INT(live() - base, 0);
}

/* ---- concurrent: one writer, several readers ---- */

static uint64_t publications = 20000;
static unsigned nreaders = 4;

typedef struct {
    cg_snap_t *s;
    int *stop;
    uint64_t reads, nulls, bad, backwards;
    /* Values handed to the next reader to release (cross-thread release). */
    val_t *handoff; /* atomic */
} reader_t;

static reader_t *readers;

static void *reader(void *p)
{
    reader_t *r = p;
    uint64_t last = 0;
    unsigned me = (unsigned)(r - readers);
    reader_t *next = &readers[(me + 1) % nreaders];
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        val_t *v = cg_snap_acquire(r->s);
        r->reads++;
        if (!v) {
            r->nulls++;
            continue;
        }
        /* A second, overlapping hold released first: order doesn't matter. */
        val_t *v2 = cg_snap_acquire(r->s);
        if (!intact(v) || (v2 && !intact(v2)))
            r->bad++;
        if (v->version < last || (v2 && v2->version < v->version))
            r->backwards++; /* publications are linearisable */
        last = v2 ? v2->version : v->version;
        if (v2)
            cg_snap_release(r->s, v2);
        for (int spin = 0; spin < 20; spin++)
            if (!intact(v))
                r->bad++;
        /* Every 8th read, let the next reader release it for us. */
        if (r->reads % 8 == 0) {
            val_t *prev = __atomic_exchange_n(&next->handoff, v, __ATOMIC_ACQ_REL);
            if (prev)
                cg_snap_release(r->s, prev);
        } else {
            cg_snap_release(r->s, v);
        }
        val_t *mine = __atomic_exchange_n(&r->handoff, NULL, __ATOMIC_ACQ_REL);
        if (mine) {
            if (!intact(mine))
                r->bad++;
            cg_snap_release(r->s, mine);
        }
    }
    return NULL;
}

static void test_writer_and_readers(void)
{
    uint64_t base = live();
    cg_snap_t *s = cg_snap_new(mkval(0), destroy_val);
    int stop = 0;
    readers = cg_calloc(nreaders, sizeof *readers);
    pthread_t *th = cg_calloc(nreaders, sizeof *th);
    for (unsigned i = 0; i < nreaders; i++)
        readers[i] = (reader_t){.s = s, .stop = &stop};
    for (unsigned i = 0; i < nreaders; i++)
        pthread_create(&th[i], NULL, reader, &readers[i]);
    uint64_t max_live = 0;
    for (uint64_t v = 1; v <= publications; v++) {
        /* Now and then publish NULL, which readers must tolerate. */
        uint64_t ver = cg_snap_publish(s, v % 1000 == 500 ? NULL : mkval(v));
        T_EQ_INT(ver, v);
        uint64_t l = live() - base;
        if (l > max_live)
            max_live = l;
        if (v % 64 == 0)
            sched_yield();
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    uint64_t reads = 0, nulls = 0;
    for (unsigned i = 0; i < nreaders; i++) {
        pthread_join(th[i], NULL);
        T_EQ_INT(readers[i].bad, 0);
        T_EQ_INT(readers[i].backwards, 0);
        reads += readers[i].reads;
        nulls += readers[i].nulls;
    }
    for (unsigned i = 0; i < nreaders; i++)
        if (readers[i].handoff)
            cg_snap_release(s, readers[i].handoff);
    /* Every superseded value was destroyed; only the current one lives. */
    T_EQ_INT(live() - base, 1);
    cg_snap_free(s);
    T_EQ_INT(live() - base, 0);
    printf("# %llu publications, %u readers, %llu reads (%llu NULL), at most %llu values "
           "alive\n",
           (unsigned long long)publications, nreaders, (unsigned long long)reads,
           (unsigned long long)nulls, (unsigned long long)max_live);
    free(readers);
    free(th);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        publications = strtoull(argv[1], NULL, 10);
    if (argc > 2)
        nreaders = (unsigned)strtoul(argv[2], NULL, 10);
    if (nreaders < 1)
        nreaders = 1;
    T_RUN(test_lifetimes);
    T_RUN(test_many_held_versions);
    T_RUN(test_writer_and_readers);
    T_DONE();
}
