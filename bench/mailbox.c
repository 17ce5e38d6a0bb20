/*
 * bench/mailbox.c — mailbox throughput and actor wake-up latency.
 *
 *   mailbox [messages-per-run [big-run-messages [latency-samples]]]
 *
 * Prints, for 1, 2 and 8 producers into one consumer thread:
 *   - messages/s with pointers alone (a header-only message each, malloc'd by
 *     the producer and freed by the consumer);
 *   - messages/s with a small msgpack payload packed by the producer and
 *     unpacked (and checked) by the consumer;
 * then the big 8-producer run (10 million by default) with its check (no
 * loss, no duplicate, per-producer order), and the wake-up latency of an idle
 * actor (send to handler start): median and p99. Nothing is asserted; the
 * figures depend on the machine and on what else runs on it.
 */
#include "actors/actor.h"
#include "mailbox/mbox.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

enum { B_PLAIN = 100, B_PACKED };

typedef struct {
    cg_mbox_t *mb;
    unsigned id;
    uint64_t n;
    bool packed;
    uint64_t full;
} prod_t;

static void *producer(void *p)
{
    prod_t *pr = p;
    for (uint64_t seq = 1; seq <= pr->n; seq++) {
        cg_msg_t *m;
        if (pr->packed) {
            m = cg_msg_pack(B_PACKED, "uusb", (uint64_t)pr->id, seq, "qwen3-coder-30b", 1);
        } else {
            m = cg_msg_new(B_PLAIN, NULL, 0);
            m->sender = pr->id;
            m->req_id = seq;
        }
        while (cg_mbox_push_mpsc(pr->mb, m) == CG_EFULL) {
            pr->full++; /* the bench's choice: retry */
            sched_yield();
        }
    }
    return NULL;
}

typedef struct {
    double secs;
    uint64_t errors; /* loss, duplicate, reorder or bad payload */
    uint64_t sleeps;
    uint64_t full;
} run_t;

static run_t run(unsigned nprod, uint64_t total, bool packed)
{
    cg_mbox_t *mb = cg_mbox_new(65536);
    prod_t *pr = cg_calloc(nprod, sizeof *pr);
    pthread_t *th = cg_calloc(nprod, sizeof *th);
    uint64_t *last = cg_calloc(nprod, sizeof *last);
    run_t r = {0};
    uint64_t t0 = cg_now_ns();
    for (unsigned i = 0; i < nprod; i++) {
        pr[i] = (prod_t){.mb = mb, .id = i, .n = total / nprod, .packed = packed};
        if (i < total % nprod)
            pr[i].n++;
        pthread_create(&th[i], NULL, producer, &pr[i]);
    }
    uint64_t got = 0;
    while (got < total) {
        cg_msg_t *m = cg_mbox_pop_spsc(mb);
        if (!m) {
            if (cg_mbox_prepare_sleep(mb)) {
                r.sleeps++;
                struct pollfd p = {.fd = cg_mbox_fd(mb), .events = POLLIN};
                poll(&p, 1, 5000);
                cg_mbox_woke(mb);
            }
            continue;
        }
        uint64_t id = m->sender, seq = m->req_id;
        if (packed) {
            cg_msg_view_t v;
            const char *model;
            size_t mlen;
            int flag;
            if (cg_msg_unpack(m, &v, "uusb", &id, &seq, &model, &mlen, &flag) != CG_OK ||
                mlen != 15 || !flag)
                r.errors++;
            cg_msg_view_done(&v);
        }
        if (id >= nprod || seq != last[id] + 1)
            r.errors++;
        else
            last[id] = seq;
        got++;
        cg_msg_free(m);
    }
    r.secs = (double)(cg_now_ns() - t0) / 1e9;
    for (unsigned i = 0; i < nprod; i++) {
        pthread_join(th[i], NULL);
        if (last[i] != pr[i].n)
            r.errors++;
        r.full += pr[i].full;
    }
    if (cg_mbox_pop_spsc(mb))
        r.errors++;
    cg_mbox_free(mb);
    free(pr);
    free(th);
    free(last);
    return r;
}

/* ---- wake-up latency of an idle actor ---- */

typedef struct {
    uint64_t *lat;
    size_t n;
    int done; /* atomic: handled count */
} lat_t;

static void lat_handle(cg_actor_t *a, cg_msg_t *m)
{
    uint64_t now = cg_now_ns();
    lat_t *l = cg_actor_state(a);
    int i = __atomic_load_n(&l->done, __ATOMIC_RELAXED);
    if ((size_t)i < l->n)
        l->lat[i] = now - m->req_id;
    __atomic_store_n(&l->done, i + 1, __ATOMIC_RELEASE);
    cg_msg_free(m);
}

static int lat_init(cg_actor_t *a, void *arg)
{
    cg_actor_set_state(a, arg);
    return 0;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static void latency(size_t samples)
{
    lat_t l = {.lat = cg_calloc(samples, sizeof(uint64_t)), .n = samples};
    cg_actor_spec_t spec = {.name = "bench-idle", .init = lat_init, .handle = lat_handle};
    cg_aid_t a;
    if (cg_actor_spawn(&spec, &l, CG_AID_NONE, &a) != CG_OK) {
        printf("latency: spawn failed\n");
        return;
    }
    for (size_t i = 0; i < samples; i++) {
        usleep(300); /* long enough for the actor to be asleep in epoll */
        cg_msg_t *m = cg_msg_new(B_PLAIN, NULL, 0);
        m->req_id = cg_now_ns();
        if (cg_actor_send(a, m) != CG_OK) {
            cg_msg_free(m);
            break;
        }
        while (__atomic_load_n(&l.done, __ATOMIC_ACQUIRE) <= (int)i)
            sched_yield();
    }
    cg_actor_stop(a);
    cg_actor_join(a, NULL);
    qsort(l.lat, samples, sizeof(uint64_t), cmp_u64);
    printf("idle actor wake-up (send -> handler start), %zu samples: median %.1f us, p99 %.1f us, "
           "max %.1f us\n",
           samples, (double)l.lat[samples / 2] / 1e3, (double)l.lat[samples * 99 / 100] / 1e3,
           (double)l.lat[samples - 1] / 1e3);
    free(l.lat);
}

int main(int argc, char **argv)
{
    uint64_t per_run = argc > 1 ? strtoull(argv[1], NULL, 10) : 4000000;
    uint64_t big = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000;
    size_t samples = argc > 3 ? strtoull(argv[3], NULL, 10) : 2000;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    double load[3] = {0};
    if (getloadavg(load, 3) < 0)
        load[0] = -1;
    printf("mailbox bench: %ld CPUs, load average %.2f (figures are under that load)\n", cpus,
           load[0]);

    unsigned prods[] = {1, 2, 8};
    for (int packed = 0; packed <= 1; packed++) {
        for (size_t i = 0; i < CG_ARRAY_LEN(prods); i++) {
            run_t r = run(prods[i], per_run, packed);
            printf("%u producer%s, %-17s %8.2f M msg/s  (%llu msgs in %.2f s, %llu consumer "
                   "sleeps, %llu full retries%s)\n",
                   prods[i], prods[i] > 1 ? "s" : " ",
                   packed ? "msgpack payload:" : "pointers:", (double)per_run / r.secs / 1e6,
                   (unsigned long long)per_run, r.secs, (unsigned long long)r.sleeps,
                   (unsigned long long)r.full, r.errors ? ", ERRORS" : "");
        }
    }

    run_t r = run(8, big, false);
    printf("big run: %llu messages, 8 producers: %.2f s, %.2f M msg/s, check: %s (%llu errors)\n",
           (unsigned long long)big, r.secs, (double)big / r.secs / 1e6,
           r.errors ? "FAILED" : "no loss, no duplicate, per-producer order kept",
           (unsigned long long)r.errors);

    latency(samples);
    return r.errors ? 1 : 0;
}
