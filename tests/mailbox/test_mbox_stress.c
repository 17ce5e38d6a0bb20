/*
 * test_mbox_stress.c — P producers, one consumer, more threads than cores.
 * Checks no loss, no duplicate and per-producer FIFO order through the full
 * path (bound with retries, sleep/wake), within a generous time bound.
 *
 *   test_mbox_stress [messages [producers [capacity]]]
 *
 * Defaults (500000 messages, 8 producers, capacity 4096) keep it to seconds
 * under ASan and TSan on two shared cores; bench/mailbox runs 10 million.
 *
 * tsan: yes
 */
#include "mailbox/mbox.h"
#include "tests/t.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>

static uint64_t total = 500000;
static unsigned nprod = 8;
static uint32_t capacity = 4096;

typedef struct {
    cg_mbox_t *mb;
    unsigned id;
    uint64_t n;
    uint64_t full_retries;
} prod_t;

static void *producer(void *p)
{
    prod_t *pr = p;
    for (uint64_t seq = 1; seq <= pr->n; seq++) {
        cg_msg_t *m = cg_msg_new(100, NULL, 0);
        m->sender = pr->id;
        m->req_id = seq;
        while (cg_mbox_push_mpsc(pr->mb, m) == CG_EFULL) {
            pr->full_retries++; /* full: this caller's decision is to retry */
            sched_yield();
        }
    }
    return NULL;
}

static void test_stress(void)
{
    cg_mbox_t *mb = cg_mbox_new(capacity);
    prod_t *pr = cg_calloc(nprod, sizeof *pr);
    uint64_t *last = cg_calloc(nprod, sizeof *last);
    pthread_t *th = cg_calloc(nprod, sizeof *th);
    uint64_t per = total / nprod;
    for (unsigned i = 0; i < nprod; i++) {
        pr[i] = (prod_t){.mb = mb, .id = i, .n = per + (i < total % nprod ? 1 : 0)};
        T_ASSERT(pthread_create(&th[i], NULL, producer, &pr[i]) == 0);
    }

    uint64_t got = 0, sleeps = 0, idle_polls = 0;
    uint64_t t0 = cg_now_ms();
    while (got < total) {
        cg_msg_t *m = cg_mbox_pop_spsc(mb);
        if (m) {
            T_ASSERTF(m->sender < nprod, "bad sender %llu", (unsigned long long)m->sender);
            uint64_t want = last[m->sender] + 1;
            T_ASSERTF(m->req_id == want, "producer %llu: got seq %llu, expected %llu (%s)",
                      (unsigned long long)m->sender, (unsigned long long)m->req_id,
                      (unsigned long long)want, m->req_id < want ? "duplicate" : "lost/reordered");
            last[m->sender] = m->req_id;
            got++;
            cg_msg_free(m);
            continue;
        }
        if (cg_mbox_prepare_sleep(mb)) {
            sleeps++;
            struct pollfd p = {.fd = cg_mbox_fd(mb), .events = POLLIN};
            if (poll(&p, 1, 1000) == 0)
                idle_polls++;
            cg_mbox_woke(mb);
        }
        /* Liveness bound, not a speed check: 120 s for what takes seconds. */
        T_ASSERTF(cg_now_ms() - t0 < 120000, "stalled: %llu of %llu messages after 120 s",
                  (unsigned long long)got, (unsigned long long)total);
    }
    uint64_t retries = 0;
    for (unsigned i = 0; i < nprod; i++) {
        pthread_join(th[i], NULL);
        T_EQ_INT(last[i], pr[i].n);
        retries += pr[i].full_retries;
    }
    T_ASSERT(cg_mbox_pop_spsc(mb) == NULL);
    T_EQ_INT(cg_mbox_count(mb), 0);
    printf("# %llu messages, %u producers, capacity %u: %llu ms, %llu sleeps, %llu full "
           "retries, %llu idle polls\n",
           (unsigned long long)total, nprod, capacity, (unsigned long long)(cg_now_ms() - t0),
           (unsigned long long)sleeps, (unsigned long long)retries, (unsigned long long)idle_polls);
    free(pr);
    free(last);
    free(th);
    cg_mbox_free(mb);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        total = strtoull(argv[1], NULL, 10);
    if (argc > 2)
        nprod = (unsigned)strtoul(argv[2], NULL, 10);
    if (argc > 3)
        capacity = (uint32_t)strtoul(argv[3], NULL, 10);
    if (nprod < 1 || capacity < 1) {
        fprintf(stderr, "usage: %s [messages [producers [capacity]]]\n", argv[0]);
        return 2;
    }
    T_RUN(test_stress);
    T_DONE();
}
