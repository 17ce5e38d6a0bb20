/*
 * jscan.h — strict JSON validation and top-level member lookup without a tree.
 *
 * DESIGN
 * The request path must not pay for a full parse of a 36 KB body when all it
 * needs is `model`, `stream` and a few small fields, and it must not
 * re-serialise the body to change `model`. cg_jscan validates a whole
 * document against RFC 8259 (UTF-8 included) with a depth limit, and records
 * where each top-level member's key and value sit in the original bytes. Edits
 * (set, delete) are then applied by copying the untouched spans around them.
 */
#ifndef CG_JSCAN_H
#define CG_JSCAN_H

#include "common/cg.h"

typedef enum {
    CG_JNONE = 0, /* absent */
    CG_JNULL,
    CG_JFALSE,
    CG_JTRUE,
    CG_JNUMBER,
    CG_JSTRING,
    CG_JARRAY,
    CG_JOBJECT,
} cg_jtype_t;

typedef struct cg_jmember {
    size_t key_off, key_len; /* the key's raw bytes between its quotes */
    size_t val_off, val_len; /* the value's raw bytes (strings with their quotes) */
    size_t mem_off, mem_len; /* the whole member: key through value */
    cg_jtype_t type;
} cg_jmember_t;

#define CG_JSCAN_MAX_MEMBERS 128

/* Words the request translator searches a body for (proto/xlate_req.c: the
 * developer role, tools' strict flag). A scan of an object notes, at no
 * measurable cost, each string (key or value, at any depth) whose raw bytes
 * between the quotes are exactly one of them; a word it did not note is
 * nowhere in the document as a string, so the search can be skipped. (The
 * search can still find the quoted bytes inside a string, from an escaped
 * quote to the closing one: "x\"developer". That match is false and shaping
 * it changes nothing, so skipping it changes nothing either.) */
enum {
    CG_JSCAN_SAW_DEVELOPER = 1u << 0, /* "developer" */
    CG_JSCAN_SAW_STRICT = 1u << 1,    /* "strict" */
};

typedef struct cg_jscan {
    const char *src;
    size_t len;
    size_t obj_open, obj_close; /* offsets of the top-level '{' and '}' */
    cg_jmember_t members[CG_JSCAN_MAX_MEMBERS];
    size_t n_members;
    unsigned saw;   /* CG_JSCAN_SAW_*: words seen as whole strings, anywhere */
    bool truncated; /* more top-level members than recorded (still validated);
                     * get and apply see only the recorded ones, so the request
                     * path must refuse such a body (400) rather than edit it */
} cg_jscan_t;

typedef struct cg_jerr {
    size_t offset; /* byte offset of the problem */
    char msg[96];  /* "expected ':' after object key" ... */
} cg_jerr_t;

/* Validate src[0..len) as one JSON value that must be an object (surrounding
 * whitespace allowed) nested at most max_depth deep (the object itself is
 * depth 1; capped at 1024), and record its top-level members. 0, or
 * CG_EINVAL with err filled (err may be NULL). src must outlive js. A nested
 * object is scanned the same way from its span: (src + m->val_off, m->val_len). */
int cg_jscan_object(cg_jscan_t *js, const char *src, size_t len, int max_depth, cg_jerr_t *err);

/* As cg_jscan_object, for bytes this process validated already (a body the
 * http front scanned, handed to a provider): the contents of strings are
 * not checked (UTF-8, escapes, control bytes), only where they end, which
 * makes a 36 KB prompt several times cheaper to scan again. Everything else
 * is checked as usual, and no input reads outside [src, src + len). */
int cg_jscan_object_trusted(cg_jscan_t *js, const char *src, size_t len, int max_depth,
                            cg_jerr_t *err);

/* Validate any JSON value (for nested parts or upstream bodies). */
int cg_jscan_validate(const char *src, size_t len, int max_depth, cg_jerr_t *err);

/* The last top-level member whose decoded key equals key, or NULL. */
const cg_jmember_t *cg_jscan_get(const cg_jscan_t *js, const char *key);

/* Decode a JSON string value (the span including its quotes) into out
 * (appended, NUL-terminated). 0, or CG_EINVAL if m is not a string. */
int cg_jscan_string(const cg_jscan_t *js, const cg_jmember_t *m, cg_buf_t *out);

/* Append s as a JSON string literal (with quotes, escaped) to out. */
void cg_json_quote(cg_buf_t *out, const char *s, size_t len);

/* Edits of top-level members, applied in one copy of the body. */
typedef struct cg_jedit {
    const char *key; /* not copied: must outlive the edit list */
    const char *raw; /* new raw JSON value, or NULL to delete the member */
    size_t raw_len;
} cg_jedit_t;

/* Write js's document with edits applied to out: each key present is
 * replaced (every occurrence of a duplicate key) or deleted; a key absent is
 * appended as a new member (deletes of absent keys do nothing). Untouched
 * bytes are copied verbatim. */
void cg_jscan_apply(const cg_jscan_t *js, const cg_jedit_t *edits, size_t n, cg_buf_t *out);

/* memmem for needles of at least three bytes, fastest when its first byte
 * is rare-ish and its second and last bytes narrow it down (JSON keys with
 * their quotes: "\"developer\"", "\"strict\""). NULL if absent or nl < 3. */
const char *cg_jscan_find_quoted(const char *s, size_t n, const char *needle, size_t nl);

/* A scan's member table as bytes, so an actor that receives the document in a
 * message can use the table instead of scanning the document again (the http
 * front validates a body; the provider it hands the body to edits it). Host
 * byte order: for this process only. Appends nothing for a document of 4 GiB
 * or more, or a truncated table. */
void cg_jscan_table_pack(const cg_jscan_t *js, cg_buf_t *out);

/* js as cg_jscan_object would leave it for src[0..len), from a table packed
 * by cg_jscan_table_pack for those very bytes. Every span is checked to lie
 * inside src, in order, and to start and end where its kind says (quotes
 * around keys, a value's first byte of its type, braces at obj_open and
 * obj_close), so a table that does not fit src cannot make anyone read
 * outside it. 0, or CG_EINVAL (the caller scans instead). */
int cg_jscan_table_load(cg_jscan_t *js, const char *src, size_t len, const void *tab, size_t n);

/* For tests and benchmarks: let the scans use their AVX2 loops where the
 * CPU has AVX2 (on, the default) or keep them to SSE2 (off). Returns whether
 * AVX2 is now used. Not thread-safe: call while nothing scans. */
bool cg_jscan_use_avx2(bool on);

#endif
