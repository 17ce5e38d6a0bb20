/*
 * msg.h — the messages actors exchange.
 *
 * DESIGN
 * A message is one heap block: a fixed header (type, sender, reply-to, request
 * id) followed by a msgpack payload. The sender encodes, the mailbox carries the
 * pointer, the receiver decodes and then owns the block (it frees it, or keeps
 * it). Decoded strings and binaries borrow from the view's zone: keep the
 * cg_msg_view_t alive while you use them, never bare msgpack_objects.
 *
 * Message type numbers: 1..99 are system messages shared by all actors
 * (CG_MSG_EXIT ...); each actor defines its own enum from 100 up.
 */
#ifndef CG_MSG_H
#define CG_MSG_H

#include "common/cg.h"

#include <ck_stack.h>
#include <msgpack.h>

/* An actor address: registry slot in the low 32 bits, generation in the high
 * 32 bits, so an address of an actor that has gone never reaches its
 * successor in the same slot. 0 is "nobody". */
typedef uint64_t cg_aid_t;
#define CG_AID_NONE ((cg_aid_t)0)

enum {
    CG_MSG_EXIT = 1,     /* payload [aid u, reason i, detail s]: a child ended */
    CG_MSG_SHUTDOWN = 2, /* graceful stop: refuse new work, finish in-flight, exit */
    CG_MSG_RELOAD = 3,   /* a new config snapshot was published */
    CG_MSG_TICK = 4,     /* periodic work, sent by whoever owns the schedule */
    CG_MSG_CRASH = 5,    /* test hook: crash on receipt (only when hooks are enabled) */
    CG_MSG_SYSTEM_MAX = 99,
};

typedef struct cg_msg {
    ck_stack_entry_t link; /* owned by the mailbox while queued */
    uint32_t type;
    uint32_t len;      /* payload bytes */
    cg_aid_t sender;   /* who sent it, CG_AID_NONE if not an actor */
    cg_aid_t reply_to; /* where answers go (often == sender) */
    uint64_t req_id;   /* request the message belongs to, 0 if none */
    uint8_t payload[]; /* msgpack, len bytes */
} cg_msg_t;

/* A message with a raw payload copied from (payload, len); len may be 0. */
cg_msg_t *cg_msg_new(uint32_t type, const void *payload, size_t len);

/* A message whose payload is a msgpack array built from fmt, one char per
 * element:
 *   'u' uint64_t     'i' int64_t     'd' double     'b' int (bool)
 *   's' const char * (NUL-terminated; NULL packs nil)
 *   'x' const void *, size_t  (bytes, packed as msgpack bin)
 *   'S' const char *, size_t  (string with length)
 * Header fields other than type are zero; set them on the result. */
cg_msg_t *cg_msg_pack(uint32_t type, const char *fmt, ...);

/* A decoded view of a message payload. Strings and binaries returned by
 * cg_msg_unpack point into the message itself ('S', 'x') or into the view's
 * zone ('s'): valid while both the view (until cg_msg_view_done) and the
 * message live. */
typedef struct cg_msg_view {
    msgpack_unpacked up;
    int ready;
} cg_msg_view_t;

/* Decode m's payload as an array described by fmt (same letters as
 * cg_msg_pack; each takes pointers: 'u' uint64_t*, 'i' int64_t*, 'd' double*,
 * 'b' int*, 's' and 'S' and 'x' take (const char **or const void **, size_t *)
 * and yield NULL,0 for nil, 'o' takes const msgpack_object ** for any value).
 * 's' yields a NUL-terminated copy (a C string); 'S' and 'x' are not
 * terminated; 'x' accepts bin or str; the size_t * may be NULL. 'd' accepts
 * integers too. Fewer elements than fmt is an error; more are ignored (newer
 * senders); bytes after the array are an error.
 * Returns 0, or CG_EINVAL on a malformed or mistyped payload; the view must be
 * finished with cg_msg_view_done either way. */
int cg_msg_unpack(const cg_msg_t *m, cg_msg_view_t *v, const char *fmt, ...);

/* Bytes from outside the process (a file) that will be unpacked: true when
 * they are one complete msgpack object whose every declared length and
 * element count fits in the bytes that follow it. msgpack-c allocates for a
 * container's declared count before reading its elements, so five bytes
 * claiming 2^32 entries would otherwise ask for gigabytes. Messages between
 * actors need no check: the runtime built them. */
bool cg_msgpack_well_formed(const void *data, size_t len);
void cg_msg_view_done(cg_msg_view_t *v);

void cg_msg_free(cg_msg_t *m);

#endif
