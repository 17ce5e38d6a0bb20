/*
 * json5.h — a JSON5 reader that produces json-c trees and remembers where in
 * the source every value and every object key came from.
 *
 * DESIGN
 * No Debian C library parses JSON5, so this one is ours. It reads the whole
 * of https://spec.json5.org/ (comments, trailing commas, unquoted ES5
 * identifier keys, single-quoted strings, \x and \u escapes, escaped line
 * breaks, hex numbers, leading/trailing decimal point, '+', Infinity, NaN)
 * into the tree type the rest of clawgate uses (json-c: 64-bit integers,
 * strings with lengths, null as a NULL json_object pointer). Integers that
 * fit in int64 become json_type_int, everything else json_type_double
 * (Infinity and NaN included: the schema rejects them where a finite number
 * is needed).
 *
 * json-c keeps no source positions, so the document carries a side table
 * keyed by node pointer (the value's first character) and by (object, key)
 * (the key's first character). Duplicate keys follow JSON5/JavaScript: the
 * last value wins; the replaced value is kept alive inside the document so
 * no node pointer in the table is ever reused while the document lives, and
 * each duplicate is recorded so the caller can tell the user.
 *
 * Limits (input size, nesting depth, decoded string length) are checked
 * before the work they bound, and a violation is an ordinary parse error.
 */
#ifndef CG_JSON5_H
#define CG_JSON5_H

#include "common/cg.h"

#include <json.h>

#define CG_JSON5_MAX_BYTES ((size_t)8 << 20)  /* default input size limit, 8 MiB */
#define CG_JSON5_MAX_STRING ((size_t)1 << 20) /* default decoded string/key limit, 1 MiB */
#define CG_JSON5_MAX_DEPTH 64                 /* default nesting limit for objects/arrays */

typedef struct cg_json5_limits {
    size_t max_bytes;  /* 0: CG_JSON5_MAX_BYTES */
    size_t max_string; /* 0: CG_JSON5_MAX_STRING */
    int max_depth;     /* 0: CG_JSON5_MAX_DEPTH */
} cg_json5_limits_t;

/* 1-based line and column (columns count characters, not bytes; a tab is one
 * column). {0, 0} means "unknown". */
typedef struct cg_json5_pos {
    int line;
    int col;
} cg_json5_pos_t;

typedef struct cg_json5_error {
    cg_json5_pos_t pos;
    char msg[160]; /* plain message, e.g. "expected ',' or '}'" */
} cg_json5_error_t;

/* A key that appeared twice in one object (the later value won). */
typedef struct cg_json5_dup {
    cg_json5_pos_t pos; /* of the later occurrence */
    char *key;
} cg_json5_dup_t;

typedef struct cg_json5_doc cg_json5_doc_t;

/* Parse text[0..len) (need not be NUL-terminated). On success 0 and *out owns
 * the tree; on failure CG_EINVAL (bad syntax) or CG_ELIMIT (a limit), *out
 * NULL and *err filled with the position of the offending character. lim may
 * be NULL for the defaults. */
int cg_json5_parse(const char *text, size_t len, const cg_json5_limits_t *lim, cg_json5_doc_t **out,
                   cg_json5_error_t *err);

/* The root value, borrowed from the document (NULL for a `null` document). */
json_object *cg_json5_root(const cg_json5_doc_t *doc);

/* Where a value node of this document starts; {0,0} for a node the parser did
 * not create (or NULL, which is how json-c spells null). */
cg_json5_pos_t cg_json5_value_pos(const cg_json5_doc_t *doc, const json_object *node);

/* Where the key `key` of object `obj` was written (the last occurrence);
 * {0,0} when unknown. */
cg_json5_pos_t cg_json5_key_pos(const cg_json5_doc_t *doc, const json_object *obj, const char *key);

/* Duplicate keys seen, in source order. */
const cg_json5_dup_t *cg_json5_duplicates(const cg_json5_doc_t *doc, size_t *n);

void cg_json5_free(cg_json5_doc_t *doc);

#endif
