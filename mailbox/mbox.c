/*
 * mbox.c — bounded lock-free MPSC mailbox on a Concurrency Kit stack.
 *
 * DESIGN
 * Queue. Producers push onto a ck_stack with ck_stack_push_upmc (one CAS
 * loop on the head; a producer preempted anywhere in it holds nothing that
 * another thread waits for). The consumer never pops single entries: it takes
 * the whole stack with ck_stack_batch_pop_upmc (one atomic exchange) and
 * reverses the chain into a private FIFO that only it touches. Because the
 * only removal is "take everything", no entry is ever unlinked from under a
 * producer's expected head, so the CAS cannot suffer ABA. Entries pushed by
 * one producer are stacked in its program order, so the reversal yields
 * per-producer FIFO order. ck_ring_enqueue_mpsc is not used: after its CAS a
 * producer spins until the previous ticket holder publishes, so one preempted
 * producer stalls every later one (measured: 4 M messages, 4 producers, 2
 * cores, no completion in 20 s).
 *
 * Bound and closing share one 64-bit word, `state`: the low 32 bits count
 * reserved messages (pushed or being pushed, not yet taken by the consumer),
 * bit 32 is CLOSED. A producer reserves with a CAS loop that fails on CLOSED
 * (CG_ECLOSED) or at capacity (CG_EFULL) before it touches the stack, so a
 * refused message is never published and stays the caller's. The consumer
 * releases one unit per message it hands out. The unbounded variant (for
 * EXIT and SHUTDOWN, which the system must not lose) reserves past the cap.
 *
 * Wake-up (the classic Dekker pair, on `sleeping` and the stack head):
 *   consumer: exchange sleeping to 1 (seq_cst; a full barrier on x86);
 *             if stack non-empty -> don't sleep; else block in epoll on
 *             the eventfd.
 *   producer: push (a full barrier on x86: lock cmpxchg); load sleeping
 *             (seq_cst); if 1, exchange it to 0 and, only if this producer
 *             saw the 1 go away, write the eventfd.
 * At least one side sees the other's write, so either the consumer sees the
 * message or some producer sees the flag and writes. Only the producer that
 * clears the flag writes, so a sleeping consumer costs one write(2) per wake,
 * and a running one costs producers none. Spurious wakes (eventfd readable
 * with nothing new) are possible and harmless: cg_mbox_woke drains it.
 *
 * Memory orders. The message contents are published by ck's CAS (a full
 * barrier on x86; ck_pr_fence_store before it elsewhere) and acquired by the
 * consumer's exchange plus ck_pr_fence_load. `state` is relaxed: it guards no
 * data, and its bound holds in its single modification order. `sleeping` is
 * seq_cst (see above); off x86 explicit seq_cst fences follow the push and
 * the consumer's flag exchange, because ck's CAS and loads are not C11
 * seq_cst operations there. (On x86 the locked instructions are the
 * fences; gcc's TSan also rejects atomic_thread_fence.)
 *
 * ThreadSanitizer does not see ck's inline-assembly atomics. With CG_TSAN we
 * tell it what they do: __tsan_release(msg) before the push and
 * __tsan_acquire(msg) when the consumer takes it off the stack, and we ignore
 * plain reads/writes only inside the ck push itself (it writes entry->next
 * after our release, which TSan would otherwise report against the
 * consumer's read of it). Everything else stays checked: a producer that
 * writes to a message after sending it is reported (tests/mailbox/
 * test_mbox_misuse.c proves it).
 */
#include "mailbox/mbox.h"

#include <ck_pr.h>
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#if defined(CG_TSAN) && CG_TSAN
#include <sanitizer/tsan_interface.h>
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
#define TSAN_RELEASE(p) __tsan_release(p)
#define TSAN_ACQUIRE(p) __tsan_acquire(p)
#define TSAN_IGNORE_BEGIN()                                                                        \
    do {                                                                                           \
        AnnotateIgnoreReadsBegin(__FILE__, __LINE__);                                              \
        AnnotateIgnoreWritesBegin(__FILE__, __LINE__);                                             \
    } while (0)
#define TSAN_IGNORE_END()                                                                          \
    do {                                                                                           \
        AnnotateIgnoreWritesEnd(__FILE__, __LINE__);                                               \
        AnnotateIgnoreReadsEnd(__FILE__, __LINE__);                                                \
    } while (0)
#else
#define TSAN_RELEASE(p) ((void)(p))
#define TSAN_ACQUIRE(p) ((void)(p))
#define TSAN_IGNORE_BEGIN() ((void)0)
#define TSAN_IGNORE_END() ((void)0)
#endif

#define MB_CLOSED (1ull << 32)
#define MB_COUNT(s) ((uint32_t)(s))

CK_STACK_CONTAINER(cg_msg_t, link, msg_of_entry)

struct cg_mbox {
    /* Shared by producers and the consumer: one line, since every push
     * touches all three anyway. */
    ck_stack_t stack;
    uint64_t state; /* reserved count | MB_CLOSED */
    int sleeping;   /* 1: consumer is (about to be) blocked on efd */
    uint32_t cap;
    int efd;
    /* Consumer-private FIFO (already reversed), on its own cache line so
     * producers' CASes do not bounce it. */
    _Alignas(64) cg_msg_t *head;
};

cg_mbox_t *cg_mbox_new(uint32_t capacity)
{
    cg_assert(capacity >= 1);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0)
        return NULL;
    cg_mbox_t *mb = aligned_alloc(64, sizeof(cg_mbox_t));
    if (!mb) {
        cg_error("mbox: out of memory");
        abort();
    }
    memset(mb, 0, sizeof *mb);
    ck_stack_init(&mb->stack);
    mb->cap = capacity;
    mb->efd = efd;
    return mb;
}

/* Reserve one unit of the bound. Relaxed: see DESIGN. */
static int reserve(cg_mbox_t *mb, bool bounded)
{
    uint64_t s = __atomic_load_n(&mb->state, __ATOMIC_RELAXED);
    do {
        if (s & MB_CLOSED)
            return CG_ECLOSED;
        if (bounded && MB_COUNT(s) >= mb->cap)
            return CG_EFULL;
        cg_assert(MB_COUNT(s) < UINT32_MAX);
    } while (!__atomic_compare_exchange_n(&mb->state, &s, s + 1, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return CG_OK;
}

static int push(cg_mbox_t *mb, cg_msg_t *m, bool bounded, bool wake)
{
    int rc = reserve(mb, bounded);
    if (rc != CG_OK)
        return rc;

    /* From here on m belongs to the consumer: never touch it again. */
    TSAN_RELEASE(m);
    TSAN_IGNORE_BEGIN();
    ck_stack_push_upmc(&mb->stack, &m->link);
    TSAN_IGNORE_END();

#if !(defined(__x86_64__) || defined(__i386__))
    /* ck's CAS is not a C11 seq_cst RMW off x86: order the push before the
     * load of `sleeping` explicitly (the Dekker pair in DESIGN). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
    if (!wake)
        return CG_OK; /* lazy: the consumer finds it on its next wake-up */
    /* seq_cst: pairs with the consumer's seq_cst exchange in
     * cg_mbox_prepare_sleep. The plain load first keeps a running consumer
     * free of exchanges on its cache line. */
    if (__atomic_load_n(&mb->sleeping, __ATOMIC_SEQ_CST) &&
        __atomic_exchange_n(&mb->sleeping, 0, __ATOMIC_SEQ_CST)) {
        cg_efd_signal(mb->efd);
    }
    return CG_OK;
}

int cg_mbox_push_mpsc(cg_mbox_t *mb, cg_msg_t *m)
{
    return push(mb, m, true, true);
}

int cg_mbox_push_lazy_mpsc(cg_mbox_t *mb, cg_msg_t *m)
{
    return push(mb, m, true, false);
}

int cg_mbox_push_unbounded_mpsc(cg_mbox_t *mb, cg_msg_t *m)
{
    return push(mb, m, false, true);
}

/* Take the whole stack and reverse it into the private FIFO. */
static void refill(cg_mbox_t *mb)
{
    /* A plain load first: taking an empty stack would still cost a locked
     * exchange on the producers' cache line. */
    if (ck_pr_load_ptr(&mb->stack.head) == NULL)
        return;
    ck_stack_entry_t *e = ck_stack_batch_pop_upmc(&mb->stack);
    cg_msg_t *fifo = NULL;
    while (e) {
        cg_msg_t *m = msg_of_entry(e);
        /* The producer released m before its push; acquire it before we
         * read the link it wrote. */
        TSAN_ACQUIRE(m);
        ck_stack_entry_t *next = e->next;
        m->link.next = fifo ? &fifo->link : NULL;
        fifo = m;
        e = next;
    }
    mb->head = fifo;
}

cg_msg_t *cg_mbox_pop_spsc(cg_mbox_t *mb)
{
    if (!mb->head)
        refill(mb);
    cg_msg_t *m = mb->head;
    if (!m)
        return NULL;
    mb->head = m->link.next ? msg_of_entry(m->link.next) : NULL;
    m->link.next = NULL;
    /* Relaxed: the count guards no data (DESIGN). */
    __atomic_fetch_sub(&mb->state, 1, __ATOMIC_RELAXED);
    return m;
}

bool cg_mbox_prepare_sleep(cg_mbox_t *mb)
{
    if (mb->head)
        return false;
    /* The consumer half of the Dekker pair: a seq_cst exchange (xchg, a full
     * barrier on x86) so the flag is visible before ck's (non-C11) load of
     * the head below; elsewhere an explicit fence does that. */
    __atomic_exchange_n(&mb->sleeping, 1, __ATOMIC_SEQ_CST);
#if !(defined(__x86_64__) || defined(__i386__))
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
    if (ck_pr_load_ptr(&mb->stack.head) != NULL) {
        /* Messages arrived: stay awake. If a producer already took the flag
         * it writes the eventfd; the next sleep then wakes once spuriously
         * and cg_mbox_woke drains it. Relaxed: nothing is published by it. */
        __atomic_store_n(&mb->sleeping, 0, __ATOMIC_RELAXED);
        return false;
    }
    return true;
}

void cg_mbox_woke(cg_mbox_t *mb)
{
    /* Relaxed: clearing only spares producers a write; one that still sees
     * the old 1 causes a harmless spurious wake. */
    __atomic_store_n(&mb->sleeping, 0, __ATOMIC_RELAXED);
    uint64_t v;
    ssize_t r = read(mb->efd, &v, sizeof v);
    (void)r; /* EAGAIN: the waking producer has not written yet; fine */
}

void cg_mbox_awake(cg_mbox_t *mb)
{
    /* Relaxed, as in cg_mbox_woke: a producer that still saw the 1 and won
     * the exchange writes the eventfd; the loop drains it at its next poll.
     * The plain load first keeps the common case (flag already clear) free
     * of a store to a line producers read. */
    if (__atomic_load_n(&mb->sleeping, __ATOMIC_RELAXED))
        __atomic_store_n(&mb->sleeping, 0, __ATOMIC_RELAXED);
}

int cg_mbox_fd(const cg_mbox_t *mb)
{
    return mb->efd;
}

uint32_t cg_mbox_count(const cg_mbox_t *mb)
{
    return MB_COUNT(__atomic_load_n(&mb->state, __ATOMIC_RELAXED));
}

void cg_mbox_close(cg_mbox_t *mb)
{
    /* Relaxed: a push racing with close is ordered before it in `state`'s
     * modification order and its message is freed by cg_mbox_free. */
    __atomic_fetch_or(&mb->state, MB_CLOSED, __ATOMIC_RELAXED);
}

void cg_mbox_free(cg_mbox_t *mb)
{
    if (!mb)
        return;
    cg_msg_t *m;
    while ((m = cg_mbox_pop_spsc(mb)))
        cg_msg_free(m);
    close(mb->efd);
    free(mb);
}
