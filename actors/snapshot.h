/*
 * snapshot.h — read-mostly data published to every actor without locks.
 *
 * DESIGN
 * One atomic pointer per published thing (the config, the provider ranking,
 * tenant keys). A writer publishes a new immutable value; readers take a
 * reference that keeps their value alive however long they hold it, and never
 * block or wait for the writer. The old value is destroyed once the last
 * reader that could see it has let go (split reference counts; see
 * snapshot.c), in the thread that lets go last (a reader or the writer).
 */
#ifndef CG_SNAPSHOT_H
#define CG_SNAPSHOT_H

#include "common/cg.h"

typedef struct cg_snap cg_snap_t;

/* destroy frees a value once nobody can reach it; initial may be NULL. */
cg_snap_t *cg_snap_new(void *initial, void (*destroy)(void *));

/* Any thread. The current value (or NULL), kept alive until released (by any
 * thread). acquire is wait-free (one atomic add); release is lock-free (a CAS
 * that retries only while other readers move the same word). No per-thread
 * registration. */
void *cg_snap_acquire(cg_snap_t *s);
void cg_snap_release(cg_snap_t *s, void *value);

/* Any thread; writers are serialised internally. The previous value is
 * destroyed when its last reference goes. Returns a monotonically increasing
 * version number. */
uint64_t cg_snap_publish(cg_snap_t *s, void *next);
uint64_t cg_snap_version(cg_snap_t *s);

/* Only once no thread will acquire again; destroys the current value. */
void cg_snap_free(cg_snap_t *s);

#endif
