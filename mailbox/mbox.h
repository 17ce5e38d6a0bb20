/*
 * mbox.h — bounded, lock-free, multi-producer single-consumer mailbox.
 *
 * DESIGN
 * Producers push with one CAS on a Concurrency Kit ck_stack (upmc push); the
 * consumer takes the whole stack with one atomic exchange
 * (ck_stack_batch_pop_upmc) and reverses it into a private FIFO list. No
 * producer ever waits for another (ck_ring's mpsc enqueue spins on a ticket
 * and is not used: see docs/architecture.md). The bound is an atomic count,
 * reserved before the push and released when the consumer takes a message.
 *
 * Wake-up: the consumer announces it is about to sleep (a seq_cst flag),
 * re-checks the stack and only then blocks in epoll on the mailbox's
 * eventfd. A producer writes the eventfd only if it is the one that clears
 * the flag, so a busy consumer costs producers no system call.
 *
 * Per-producer FIFO order holds: one producer's pushes are ordered on the
 * stack, and the consumer reverses each batch.
 */
#ifndef CG_MBOX_H
#define CG_MBOX_H

#include "mailbox/msg.h"

typedef struct cg_mbox cg_mbox_t;

/* capacity: most messages queued at once (>= 1). NULL if no eventfd could be
 * created (fd limit); memory exhaustion aborts as everywhere. */
cg_mbox_t *cg_mbox_new(uint32_t capacity);

/* Frees every queued message with cg_msg_free, then the mailbox. Only when no
 * producer can push any more (after cg_mbox_close and a grace period the
 * owner guarantees). */
void cg_mbox_free(cg_mbox_t *mb);

/* Any thread. CG_OK: m is the consumer's now. CG_EFULL (at capacity) or
 * CG_ECLOSED (closed): m is still the caller's, who decides what to do. */
int cg_mbox_push_mpsc(cg_mbox_t *mb, cg_msg_t *m);

/* Same, but never CG_EFULL: for the few messages the system must not lose
 * (CG_MSG_EXIT to a parent, CG_MSG_SHUTDOWN), each sent at most a handful of
 * times per actor, so the overshoot past capacity stays small. */
/* As cg_mbox_push_mpsc, but never wakes a sleeping consumer: the message
 * waits for the consumer's next wake-up (a timer, an fd, another message).
 * For statistics whose consumer runs a periodic timer: saves the producer a
 * write(2) and the consumer a context switch per message. */
int cg_mbox_push_lazy_mpsc(cg_mbox_t *mb, cg_msg_t *m);

int cg_mbox_push_unbounded_mpsc(cg_mbox_t *mb, cg_msg_t *m);

/* Consumer only: the next message in arrival order, or NULL when empty. */
cg_msg_t *cg_mbox_pop_spsc(cg_mbox_t *mb);

/* Consumer only. Returns true if the consumer may block now on cg_mbox_fd
 * (nothing queued, sleep flag set); false if messages arrived meanwhile. */
bool cg_mbox_prepare_sleep(cg_mbox_t *mb);
/* Consumer only: after epoll returned, drain the eventfd, clear the flag. */
void cg_mbox_woke(cg_mbox_t *mb);
/* Consumer: the thread is running again although this mailbox's eventfd did
 * not fire (a loop hosting several actors woke for another one): clear the
 * flag so that producers on the same thread skip the write(2). */
void cg_mbox_awake(cg_mbox_t *mb);

int cg_mbox_fd(const cg_mbox_t *mb);         /* eventfd, EPOLLIN when woken */
uint32_t cg_mbox_count(const cg_mbox_t *mb); /* approximate, for stats */
void cg_mbox_close(cg_mbox_t *mb);           /* later pushes fail CG_ECLOSED */

#endif
