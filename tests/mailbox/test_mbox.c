/*
 * test_mbox.c — the MPSC mailbox: FIFO order, the bound (a refused message
 * stays the caller's), closing, the wake protocol step by step, and a small
 * two-thread run through the real sleep/wake path.
 *
 * tsan: yes
 */
#include "mailbox/mbox.h"
#include "tests/t.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

static cg_msg_t *num(uint64_t n)
{
    cg_msg_t *m = cg_msg_new(100, NULL, 0);
    m->req_id = n;
    return m;
}

/* Is the eventfd readable right now? */
static bool fd_ready(cg_mbox_t *mb)
{
    struct pollfd p = {.fd = cg_mbox_fd(mb), .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static void test_fifo(void)
{
    cg_mbox_t *mb = cg_mbox_new(16);
    T_ASSERT(cg_mbox_pop_spsc(mb) == NULL);
    for (uint64_t i = 1; i <= 10; i++)
        T_EQ_INT(cg_mbox_push_mpsc(mb, num(i)), CG_OK);
    T_EQ_INT(cg_mbox_count(mb), 10);
    /* Interleave pops with pushes: order must hold across batches. */
    for (uint64_t i = 1; i <= 5; i++) {
        cg_msg_t *m = cg_mbox_pop_spsc(mb);
        T_ASSERT(m);
        T_EQ_INT(m->req_id, i);
        cg_msg_free(m);
    }
    for (uint64_t i = 11; i <= 15; i++)
        T_EQ_INT(cg_mbox_push_mpsc(mb, num(i)), CG_OK);
    for (uint64_t i = 6; i <= 15; i++) {
        cg_msg_t *m = cg_mbox_pop_spsc(mb);
        T_ASSERT(m);
        T_EQ_INT(m->req_id, i);
        cg_msg_free(m);
    }
    T_ASSERT(cg_mbox_pop_spsc(mb) == NULL);
    T_EQ_INT(cg_mbox_count(mb), 0);
    cg_mbox_free(mb);
}

static void test_full(void)
{
    cg_mbox_t *mb = cg_mbox_new(3);
    for (uint64_t i = 1; i <= 3; i++)
        T_EQ_INT(cg_mbox_push_mpsc(mb, num(i)), CG_OK);
    cg_msg_t *extra = num(4);
    T_EQ_INT(cg_mbox_push_mpsc(mb, extra), CG_EFULL);
    /* Still ours: we may read it, change it and try again later. */
    T_EQ_INT(extra->req_id, 4);
    T_EQ_INT(cg_mbox_count(mb), 3);

    /* The unbounded push (EXIT, SHUTDOWN) goes through a full mailbox. */
    T_EQ_INT(cg_mbox_push_unbounded_mpsc(mb, num(5)), CG_OK);
    T_EQ_INT(cg_mbox_count(mb), 4);

    cg_msg_t *m = cg_mbox_pop_spsc(mb);
    T_EQ_INT(m->req_id, 1);
    cg_msg_free(m);
    m = cg_mbox_pop_spsc(mb);
    T_EQ_INT(m->req_id, 2);
    cg_msg_free(m);
    /* Two taken, count 2 < 3: room again. */
    T_EQ_INT(cg_mbox_push_mpsc(mb, extra), CG_OK);
    uint64_t want[] = {3, 5, 4};
    for (size_t i = 0; i < 3; i++) {
        m = cg_mbox_pop_spsc(mb);
        T_ASSERT(m);
        T_EQ_INT(m->req_id, want[i]);
        cg_msg_free(m);
    }
    cg_mbox_free(mb);
}

static void test_close_and_free_queued(void)
{
    cg_mbox_t *mb = cg_mbox_new(8);
    T_EQ_INT(cg_mbox_push_mpsc(mb, num(1)), CG_OK);
    T_EQ_INT(cg_mbox_push_mpsc(mb, num(2)), CG_OK);
    cg_mbox_close(mb);
    cg_msg_t *m = num(3);
    T_EQ_INT(cg_mbox_push_mpsc(mb, m), CG_ECLOSED);
    T_EQ_INT(cg_mbox_push_unbounded_mpsc(mb, m), CG_ECLOSED);
    cg_msg_free(m);
    /* Queued messages are still delivered after close... */
    m = cg_mbox_pop_spsc(mb);
    T_EQ_INT(m->req_id, 1);
    cg_msg_free(m);
    /* ...and the rest freed by cg_mbox_free (LeakSanitizer checks). */
    cg_mbox_free(mb);
}

static void test_wake_protocol(void)
{
    cg_mbox_t *mb = cg_mbox_new(8);
    /* Consumer awake: pushes never touch the eventfd. */
    T_EQ_INT(cg_mbox_push_mpsc(mb, num(1)), CG_OK);
    T_ASSERT(!fd_ready(mb));
    /* Messages queued: the consumer may not sleep. */
    T_ASSERT(!cg_mbox_prepare_sleep(mb));
    cg_msg_free(cg_mbox_pop_spsc(mb));
    /* Empty: it may; the first push after that writes the eventfd once. */
    T_ASSERT(cg_mbox_prepare_sleep(mb));
    T_ASSERT(!fd_ready(mb));
    T_EQ_INT(cg_mbox_push_mpsc(mb, num(2)), CG_OK);
    T_ASSERT(fd_ready(mb));
    T_EQ_INT(cg_mbox_push_mpsc(mb, num(3)), CG_OK); /* flag already cleared: no 2nd write */
    cg_mbox_woke(mb);
    T_ASSERT(!fd_ready(mb)); /* one write, drained by one read */
    cg_msg_free(cg_mbox_pop_spsc(mb));
    /* A message queued but not yet taken into the private list still
     * prevents sleeping. */
    T_ASSERT(!cg_mbox_prepare_sleep(mb));
    cg_msg_free(cg_mbox_pop_spsc(mb));
    T_ASSERT(cg_mbox_pop_spsc(mb) == NULL);
    /* Woken by something else (flag still set): a push still wakes, and
     * woke() leaves no stale readiness behind. */
    T_ASSERT(cg_mbox_prepare_sleep(mb));
    T_ASSERT(cg_mbox_prepare_sleep(mb));
    T_EQ_INT(cg_mbox_push_mpsc(mb, num(4)), CG_OK);
    T_ASSERT(fd_ready(mb));
    cg_mbox_woke(mb);
    T_ASSERT(!fd_ready(mb));
    cg_mbox_woke(mb); /* spurious woke: harmless */
    cg_msg_free(cg_mbox_pop_spsc(mb));
    cg_mbox_free(mb);
}

/* ---- two threads through the real sleep path ---- */

typedef struct {
    cg_mbox_t *mb;
    uint64_t n;
} prod_arg_t;

static void *producer(void *p)
{
    prod_arg_t *a = p;
    for (uint64_t i = 1; i <= a->n; i++) {
        cg_msg_t *m = num(i);
        while (cg_mbox_push_mpsc(a->mb, m) == CG_EFULL)
            sched_yield();
        if (i % 64 == 0)
            usleep(50); /* let the consumer fall asleep now and then */
    }
    return NULL;
}

static void test_sleeping_consumer(void)
{
    prod_arg_t pa = {cg_mbox_new(32), 20000};
    pthread_t t;
    pthread_create(&t, NULL, producer, &pa);
    uint64_t next = 1, sleeps = 0;
    while (next <= pa.n) {
        cg_msg_t *m = cg_mbox_pop_spsc(pa.mb);
        if (m) {
            T_EQ_INT(m->req_id, next);
            next++;
            cg_msg_free(m);
            continue;
        }
        if (cg_mbox_prepare_sleep(pa.mb)) {
            sleeps++;
            /* A lost wake-up would hang here; the runner's timeout and the
             * bound below catch it. */
            struct pollfd p = {.fd = cg_mbox_fd(pa.mb), .events = POLLIN};
            int r = poll(&p, 1, 30000);
            T_ASSERTF(r == 1, "no wake-up within 30 s with %llu of %llu messages taken",
                      (unsigned long long)next - 1, (unsigned long long)pa.n);
            cg_mbox_woke(pa.mb);
        }
    }
    pthread_join(t, NULL);
    T_ASSERT(cg_mbox_pop_spsc(pa.mb) == NULL);
    printf("# %llu sleeps for %llu messages\n", (unsigned long long)sleeps,
           (unsigned long long)pa.n);
    cg_mbox_free(pa.mb);
}

int main(void)
{
    T_RUN(test_fifo);
    T_RUN(test_full);
    T_RUN(test_close_and_free_queued);
    T_RUN(test_wake_protocol);
    T_RUN(test_sleeping_consumer);
    T_DONE();
}
