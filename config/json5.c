/*
 * json5.c — the JSON5 reader (see json5.h for the contract).
 *
 * DESIGN
 * A recursive-descent parser over the raw bytes. Recursion is bounded by the
 * depth limit (checked before descending), so a hostile file cannot exhaust
 * the stack. The cursor tracks line and column as it advances: a column is a
 * character (a UTF-8 lead byte), and CR, LF and CRLF each end a line, which
 * is what editors show. Every error stops the parse (a config with a syntax
 * error has no meaningful tree to validate) and names the position of the
 * character that made the input invalid.
 *
 * Identifiers follow ES5 with one simplification: instead of carrying the
 * Unicode category tables, every non-ASCII code point that is not white space
 * counts as a letter. That accepts everything ES5 accepts plus a few symbols
 * it does not; for config keys this errs on the side of not rejecting files.
 *
 * Strings are validated as UTF-8. A lone UTF-16 surrogate written as \uD800
 * cannot be represented in UTF-8 and becomes U+FFFD.
 */
#include "config/json5.h"

#include <errno.h>
#include <math.h>

/* ---- position side table ---- */

typedef struct pos_entry {
    const void *node; /* NULL: empty slot */
    char *key;        /* NULL: the position of `node` itself; else of its member `key` */
    uint64_t hash;
    cg_json5_pos_t pos;
} pos_entry_t;

/* Key copies for the table live in a few large blocks, not one malloc each. */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block_t;

struct cg_json5_doc {
    json_object *root;
    arena_block_t *keys;
    pos_entry_t *tab;
    size_t cap, n;      /* cap is a power of two; load factor kept under 1/2 */
    json_object **kept; /* values replaced by a duplicate key, kept alive */
    size_t n_kept, cap_kept;
    cg_json5_dup_t *dups;
    size_t n_dups, cap_dups;
};

/* Heap pointers differ only in a few middle bits, so they go through a full
 * 64-bit finaliser (splitmix64's) before indexing a power-of-two table. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t hash_of(const void *node, const char *key)
{
    uint64_t f = 0;
    if (key) {
        f = 1469598103934665603ull; /* FNV-1a */
        for (const unsigned char *k = (const unsigned char *)key; *k; k++) {
            f ^= *k;
            f *= 1099511628211ull;
        }
    }
    return mix64((uint64_t)(uintptr_t)node ^ mix64(f));
}

static char *arena_strdup(cg_json5_doc_t *d, const char *s)
{
    size_t n = strlen(s) + 1;
    arena_block_t *b = d->keys;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = cg_malloc(sizeof *b + cap);
        b->next = d->keys;
        b->used = 0;
        b->cap = cap;
        d->keys = b;
    }
    char *out = b->data + b->used;
    memcpy(out, s, n);
    b->used += n;
    return out;
}

static pos_entry_t *slot_for(pos_entry_t *tab, size_t cap, const void *node, const char *key,
                             uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    for (;;) {
        pos_entry_t *e = &tab[i];
        if (!e->node)
            return e;
        if (e->hash == h && e->node == node &&
            ((!e->key && !key) || (e->key && key && strcmp(e->key, key) == 0)))
            return e;
        i = (i + 1) & (cap - 1);
    }
}

static void pos_grow(cg_json5_doc_t *d)
{
    size_t cap = d->cap ? d->cap * 2 : 256;
    pos_entry_t *tab = cg_calloc(cap, sizeof *tab);
    for (size_t i = 0; i < d->cap; i++) {
        pos_entry_t *e = &d->tab[i];
        if (e->node)
            *slot_for(tab, cap, e->node, e->key, e->hash) = *e;
    }
    cg_free(d->tab);
    d->tab = tab;
    d->cap = cap;
}

static void pos_set(cg_json5_doc_t *d, const void *node, const char *key, cg_json5_pos_t pos)
{
    if (!node)
        return; /* json-c's null has no node to key on */
    if ((d->n + 1) * 2 > d->cap)
        pos_grow(d);
    uint64_t h = hash_of(node, key);
    pos_entry_t *e = slot_for(d->tab, d->cap, node, key, h);
    if (!e->node) {
        e->node = node;
        e->key = key ? arena_strdup(d, key) : NULL;
        e->hash = h;
        d->n++;
    }
    e->pos = pos;
}

static cg_json5_pos_t pos_get(const cg_json5_doc_t *d, const void *node, const char *key)
{
    cg_json5_pos_t none = {0, 0};
    if (!d || !node || !d->cap)
        return none;
    pos_entry_t *e = slot_for(d->tab, d->cap, node, key, hash_of(node, key));
    return e->node ? e->pos : none;
}

/* ---- the parser ---- */

typedef struct parser {
    const unsigned char *s;
    size_t len, i;
    int line, col;
    size_t max_string;
    int max_depth;
    cg_json5_doc_t *doc;
    cg_json5_error_t *err;
    int rc;      /* CG_EINVAL or CG_ELIMIT once failed */
    cg_buf_t sb; /* decoded string scratch */
} parser_t;

static cg_json5_pos_t here(const parser_t *p)
{
    cg_json5_pos_t at = {p->line, p->col};
    return at;
}

static int fail_rc(parser_t *p, int rc, cg_json5_pos_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_rc(parser_t *p, int rc, cg_json5_pos_t at, const char *fmt, ...)
{
    if (p->rc == 0) {
        p->rc = rc;
        p->err->pos = at;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#define fail(p, at, ...) fail_rc((p), CG_EINVAL, (at), __VA_ARGS__)

/* Consume one byte, keeping line/column: CR, LF and CRLF end a line; UTF-8
 * continuation bytes do not start a new column. */
static void adv(parser_t *p)
{
    unsigned char c = p->s[p->i++];
    if (c == '\r') {
        p->line++;
        p->col = 1;
    } else if (c == '\n') {
        if (!(p->i >= 2 && p->s[p->i - 2] == '\r'))
            p->line++;
        p->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        p->col++;
    }
}

static void adv_n(parser_t *p, size_t n)
{
    while (n-- > 0 && p->i < p->len)
        adv(p);
}

static int peek(const parser_t *p)
{
    return p->i < p->len ? p->s[p->i] : -1;
}

/* Decode one UTF-8 sequence; its length (1..4), or 0 when invalid (overlong,
 * surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static void utf8_append(cg_buf_t *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    cg_buf_append(b, out, n);
}

/* JSON5 white space beyond ASCII: NBSP, BOM, the line/paragraph separators
 * and the Unicode Zs category. */
static bool is_space_cp(uint32_t cp)
{
    return cp == 0xA0 || cp == 0xFEFF || cp == 0x2028 || cp == 0x2029 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static bool id_start_cp(uint32_t cp)
{
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '$' || cp == '_' ||
           (cp >= 0x80 && !is_space_cp(cp));
}

static bool id_part_cp(uint32_t cp)
{
    return id_start_cp(cp) || (cp >= '0' && cp <= '9');
}

/* Read n hex digits at s[i..]; -1 when any is missing. */
static long hex_at(const parser_t *p, size_t i, int n)
{
    long v = 0;
    for (int k = 0; k < n; k++) {
        if (i + (size_t)k >= p->len)
            return -1;
        int h = cg_hexval(p->s[i + (size_t)k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Describe the character at the cursor for a message. */
static const char *describe_char(const parser_t *p, char *buf, size_t n)
{
    if (p->i >= p->len) {
        snprintf(buf, n, "end of input");
        return buf;
    }
    unsigned char c = p->s[p->i];
    uint32_t cp = 0;
    if (c >= 0x21 && c < 0x7F)
        snprintf(buf, n, "'%c'", c);
    else if (utf8_decode(p->s + p->i, p->len - p->i, &cp))
        snprintf(buf, n, "character U+%04X", (unsigned)cp);
    else
        snprintf(buf, n, "byte 0x%02X (invalid UTF-8)", c);
    return buf;
}

static int unexpected(parser_t *p)
{
    char d[48];
    if (p->i >= p->len)
        return fail(p, here(p), "unexpected end of input");
    return fail(p, here(p), "unexpected %s", describe_char(p, d, sizeof d));
}

static bool at_line_sep(const parser_t *p)
{
    /* U+2028 / U+2029: E2 80 A8 / E2 80 A9 */
    return p->i + 2 < p->len && p->s[p->i] == 0xE2 && p->s[p->i + 1] == 0x80 &&
           (p->s[p->i + 2] == 0xA8 || p->s[p->i + 2] == 0xA9);
}

/* Skip white space and comments. */
static int skip_ws(parser_t *p)
{
    while (p->i < p->len) {
        unsigned char c = p->s[p->i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
            adv(p);
            continue;
        }
        if (c == '/' && p->i + 1 < p->len && p->s[p->i + 1] == '/') {
            while (p->i < p->len && p->s[p->i] != '\n' && p->s[p->i] != '\r' && !at_line_sep(p))
                adv(p);
            continue;
        }
        if (c == '/' && p->i + 1 < p->len && p->s[p->i + 1] == '*') {
            cg_json5_pos_t start = here(p);
            adv_n(p, 2);
            for (;;) {
                if (p->i + 1 >= p->len) {
                    adv_n(p, p->len - p->i);
                    return fail(p, start, "unterminated comment");
                }
                if (p->s[p->i] == '*' && p->s[p->i + 1] == '/') {
                    adv_n(p, 2);
                    break;
                }
                adv(p);
            }
            continue;
        }
        if (c >= 0x80) {
            uint32_t cp = 0;
            size_t n = utf8_decode(p->s + p->i, p->len - p->i, &cp);
            if (n && is_space_cp(cp)) {
                adv_n(p, n);
                continue;
            }
        }
        break;
    }
    return 0;
}

static int check_string_len(parser_t *p, cg_json5_pos_t start)
{
    if (p->sb.len > p->max_string)
        return fail_rc(p, CG_ELIMIT, start, "string longer than %zu bytes", p->max_string);
    return 0;
}

/* A \u escape at the cursor (pointing at the backslash) in a string: one
 * code point, combining a surrogate pair written as two escapes. */
static int string_u_escape(parser_t *p, uint32_t *out)
{
    cg_json5_pos_t at = here(p);
    long v = hex_at(p, p->i + 2, 4);
    if (v < 0)
        return fail(p, at, "invalid \\u escape (needs four hex digits)");
    adv_n(p, 6);
    if (v >= 0xD800 && v <= 0xDBFF && p->i + 1 < p->len && p->s[p->i] == '\\' &&
        p->s[p->i + 1] == 'u') {
        long lo = hex_at(p, p->i + 2, 4);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            adv_n(p, 6);
            *out = 0x10000 + (((uint32_t)v - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
            return 0;
        }
    }
    if (v >= 0xD800 && v <= 0xDFFF)
        v = 0xFFFD; /* a lone surrogate has no UTF-8 form */
    *out = (uint32_t)v;
    return 0;
}

/* A quoted string at the cursor, decoded into p->sb. */
static int parse_string(parser_t *p)
{
    cg_json5_pos_t start = here(p);
    int quote = p->s[p->i];
    adv(p);
    cg_buf_reset(&p->sb);
    for (;;) {
        if (p->i >= p->len)
            return fail(p, start, "unterminated string");
        unsigned char c = p->s[p->i];
        if (c == quote) {
            adv(p);
            return 0;
        }
        if (c == '\n' || c == '\r')
            return fail(p, here(p), "line break inside a string (escape it with '\\')");
        if (c != '\\') {
            uint32_t cp = 0;
            size_t n = utf8_decode(p->s + p->i, p->len - p->i, &cp);
            if (!n)
                return fail(p, here(p), "invalid UTF-8 in string");
            cg_buf_append(&p->sb, p->s + p->i, n);
            adv_n(p, n);
            if (check_string_len(p, start))
                return -1;
            continue;
        }
        /* escape sequence */
        cg_json5_pos_t esc = here(p);
        if (p->i + 1 >= p->len)
            return fail(p, start, "unterminated string");
        unsigned char e = p->s[p->i + 1];
        char ch = 0;
        switch (e) {
        case 'b':
            ch = '\b';
            break;
        case 'f':
            ch = '\f';
            break;
        case 'n':
            ch = '\n';
            break;
        case 'r':
            ch = '\r';
            break;
        case 't':
            ch = '\t';
            break;
        case 'v':
            ch = '\v';
            break;
        case '0':
            if (p->i + 2 < p->len && p->s[p->i + 2] >= '0' && p->s[p->i + 2] <= '9')
                return fail(p, esc, "octal escape sequences are not allowed");
            ch = 0;
            break;
        case 'x': {
            long v = hex_at(p, p->i + 2, 2);
            if (v < 0)
                return fail(p, esc, "invalid \\x escape (needs two hex digits)");
            adv_n(p, 4);
            utf8_append(&p->sb, (uint32_t)v);
            if (check_string_len(p, start))
                return -1;
            continue;
        }
        case 'u': {
            uint32_t cp = 0;
            if (string_u_escape(p, &cp))
                return -1;
            utf8_append(&p->sb, cp);
            if (check_string_len(p, start))
                return -1;
            continue;
        }
        case '\r':
            adv_n(p, 2);
            if (peek(p) == '\n')
                adv(p);
            continue; /* line continuation */
        case '\n':
            adv_n(p, 2);
            continue;
        default:
            if (e >= '1' && e <= '9')
                return fail(p, esc, "invalid escape '\\%c'", e);
            if (e >= 0x80) {
                uint32_t cp = 0;
                size_t n = utf8_decode(p->s + p->i + 1, p->len - p->i - 1, &cp);
                if (!n)
                    return fail(p, esc, "invalid UTF-8 in string");
                adv(p);
                if (cp != 0x2028 && cp != 0x2029) /* escaped separator: a continuation */
                    cg_buf_append(&p->sb, p->s + p->i, n);
                adv_n(p, n);
                if (check_string_len(p, start))
                    return -1;
                continue;
            }
            ch = (char)e; /* \' \" \\ \/ and any other character stand for themselves */
            break;
        }
        cg_buf_append(&p->sb, &ch, 1);
        adv_n(p, 2);
        if (check_string_len(p, start))
            return -1;
    }
}

/* An unquoted key (ES5 IdentifierName, \u escapes allowed) into p->sb. */
static int parse_ident(parser_t *p)
{
    cg_json5_pos_t start = here(p);
    cg_buf_reset(&p->sb);
    bool first = true;
    while (p->i < p->len) {
        uint32_t cp = 0;
        cg_json5_pos_t at = here(p);
        if (p->s[p->i] == '\\') {
            if (p->i + 1 >= p->len || p->s[p->i + 1] != 'u')
                return fail(p, at, "invalid escape in property name (only \\u is allowed)");
            long v = hex_at(p, p->i + 2, 4);
            if (v < 0)
                return fail(p, at, "invalid \\u escape (needs four hex digits)");
            cp = (uint32_t)v;
            if ((cp >= 0xD800 && cp <= 0xDFFF) || !(first ? id_start_cp(cp) : id_part_cp(cp)))
                return fail(p, at, "\\u%04X cannot appear in an unquoted property name",
                            (unsigned)cp);
            utf8_append(&p->sb, cp);
            adv_n(p, 6);
        } else {
            size_t n = utf8_decode(p->s + p->i, p->len - p->i, &cp);
            if (!n)
                return fail(p, at, "invalid UTF-8 in property name");
            if (!(first ? id_start_cp(cp) : id_part_cp(cp)))
                break;
            cg_buf_append(&p->sb, p->s + p->i, n);
            adv_n(p, n);
        }
        first = false;
        if (check_string_len(p, start))
            return -1;
    }
    if (first)
        return fail(p, start, "expected a property name");
    return 0;
}

static bool isalnum_ascii(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool ident_part_at(const parser_t *p)
{
    if (p->i >= p->len)
        return false;
    if (p->s[p->i] == '\\')
        return true;
    uint32_t cp = 0;
    size_t n = utf8_decode(p->s + p->i, p->len - p->i, &cp);
    return n && id_part_cp(cp);
}

/* Length of the ASCII word at s[i..]. */
static size_t word_len(const parser_t *p, size_t i)
{
    size_t k = i;
    while (k < p->len && k - i < 64 && (isalnum_ascii(p->s[k]) || p->s[k] == '_' || p->s[k] == '$'))
        k++;
    return k - i;
}

static bool word_is(const parser_t *p, size_t i, const char *w)
{
    size_t n = strlen(w);
    return word_len(p, i) == n && memcmp(p->s + i, w, n) == 0;
}

static int bad_word(parser_t *p)
{
    size_t n = word_len(p, p->i);
    if (n == 0 || n >= 40)
        return unexpected(p);
    return fail(p, here(p), "unexpected identifier '%.*s' (strings need quotes)", (int)n,
                (const char *)p->s + p->i);
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* A number at the cursor: [+-] (Infinity | NaN | 0x hex | decimal). */
static int parse_number(parser_t *p, json_object **out)
{
    cg_json5_pos_t start = here(p);
    size_t begin = p->i;
    bool neg = false;
    if (peek(p) == '+' || peek(p) == '-') {
        neg = peek(p) == '-';
        adv(p);
    }
    int c = peek(p);
    if (c == 'I' || c == 'N') {
        if (word_is(p, p->i, "Infinity")) {
            adv_n(p, 8);
            *out = json_object_new_double(neg ? -INFINITY : INFINITY);
        } else if (word_is(p, p->i, "NaN")) {
            adv_n(p, 3);
            *out = json_object_new_double(NAN);
        } else {
            return bad_word(p);
        }
        return 0;
    }
    if (c == '0' && p->i + 1 < p->len && (p->s[p->i + 1] == 'x' || p->s[p->i + 1] == 'X')) {
        adv_n(p, 2);
        uint64_t v = 0;
        double dv = 0;
        bool big = false;
        size_t digits = 0;
        while (p->i < p->len && cg_hexval(p->s[p->i]) >= 0) {
            unsigned h = (unsigned)cg_hexval(p->s[p->i]);
            if (v > (UINT64_MAX >> 4))
                big = true;
            v = (v << 4) | h;
            dv = dv * 16 + h;
            digits++;
            adv(p);
        }
        if (digits == 0 || ident_part_at(p))
            return fail(p, start, "invalid number");
        if (!big && v <= (uint64_t)INT64_MAX)
            *out = json_object_new_int64(neg ? -(int64_t)v : (int64_t)v);
        else if (!big && neg && v == (uint64_t)INT64_MAX + 1)
            *out = json_object_new_int64(INT64_MIN);
        else
            *out = json_object_new_double(neg ? -dv : dv);
        return 0;
    }
    size_t int_digits = 0, frac_digits = 0;
    bool is_float = false;
    if (c == '0' && p->i + 1 < p->len && is_digit(p->s[p->i + 1]))
        return fail(p, start, "leading zeros are not allowed (octal literals do not exist)");
    while (is_digit(peek(p))) {
        adv(p);
        int_digits++;
    }
    if (peek(p) == '.') {
        is_float = true;
        adv(p);
        while (is_digit(peek(p))) {
            adv(p);
            frac_digits++;
        }
    }
    if (int_digits + frac_digits == 0)
        return fail(p, start, "invalid number");
    if (peek(p) == 'e' || peek(p) == 'E') {
        is_float = true;
        adv(p);
        if (peek(p) == '+' || peek(p) == '-')
            adv(p);
        size_t exp_digits = 0;
        while (is_digit(peek(p))) {
            adv(p);
            exp_digits++;
        }
        if (exp_digits == 0)
            return fail(p, start, "invalid number");
    }
    if (ident_part_at(p))
        return fail(p, start, "invalid number");
    if (p->i - begin > p->max_string)
        return fail_rc(p, CG_ELIMIT, start, "number longer than %zu characters", p->max_string);
    cg_buf_reset(&p->sb);
    cg_buf_append(&p->sb, p->s + begin, p->i - begin);
    if (!is_float) {
        errno = 0;
        char *end = NULL;
        long long v = strtoll(p->sb.data, &end, 10);
        if (errno == 0 && end && *end == '\0') {
            *out = json_object_new_int64((int64_t)v);
            return 0;
        }
    }
    *out = json_object_new_double(strtod(p->sb.data, NULL));
    return 0;
}

static int parse_value(parser_t *p, int depth, json_object **out);

static void keep_replaced(cg_json5_doc_t *d, json_object *old)
{
    if (d->n_kept == d->cap_kept) {
        d->cap_kept = d->cap_kept ? d->cap_kept * 2 : 8;
        d->kept = cg_realloc(d->kept, d->cap_kept * sizeof *d->kept);
    }
    d->kept[d->n_kept++] = json_object_get(old);
}

static void note_dup(cg_json5_doc_t *d, cg_json5_pos_t at, const char *key)
{
    if (d->n_dups == d->cap_dups) {
        d->cap_dups = d->cap_dups ? d->cap_dups * 2 : 8;
        d->dups = cg_realloc(d->dups, d->cap_dups * sizeof *d->dups);
    }
    d->dups[d->n_dups].pos = at;
    d->dups[d->n_dups].key = cg_strdup(key);
    d->n_dups++;
}

static int parse_object(parser_t *p, int depth, json_object **out)
{
    cg_json5_pos_t start = here(p);
    if (depth >= p->max_depth)
        return fail_rc(p, CG_ELIMIT, start, "nesting deeper than %d levels", p->max_depth);
    adv(p);
    json_object *obj = json_object_new_object();
    pos_set(p->doc, obj, NULL, start);
    for (;;) {
        if (skip_ws(p))
            goto bad;
        int c = peek(p);
        if (c == '}') {
            adv(p);
            break;
        }
        cg_json5_pos_t kpos = here(p);
        if (c == '"' || c == '\'') {
            if (parse_string(p))
                goto bad;
        } else if (c == '\\' || ident_part_at(p)) {
            if (is_digit(c)) {
                fail(p, kpos, "expected a property name or '}'");
                goto bad;
            }
            if (parse_ident(p))
                goto bad;
        } else {
            fail(p, kpos, "expected a property name or '}'");
            goto bad;
        }
        if (memchr(p->sb.data, 0, p->sb.len)) {
            fail(p, kpos, "property names cannot contain a NUL character");
            goto bad;
        }
        char *key = cg_strndup(p->sb.data, p->sb.len);
        if (skip_ws(p)) {
            cg_free(key);
            goto bad;
        }
        if (peek(p) != ':') {
            cg_free(key);
            fail(p, here(p), "expected ':' after property name");
            goto bad;
        }
        adv(p);
        json_object *val = NULL;
        if (skip_ws(p) || parse_value(p, depth + 1, &val)) {
            cg_free(key);
            goto bad;
        }
        json_object *old = NULL;
        if (json_object_object_get_ex(obj, key, &old)) {
            note_dup(p->doc, kpos, key);
            if (old)
                keep_replaced(p->doc, old);
        }
        json_object_object_add(obj, key, val);
        pos_set(p->doc, obj, key, kpos);
        cg_free(key);
        if (skip_ws(p))
            goto bad;
        c = peek(p);
        if (c == ',') {
            adv(p);
            continue;
        }
        if (c == '}') {
            adv(p);
            break;
        }
        fail(p, here(p), "expected ',' or '}'");
        goto bad;
    }
    *out = obj;
    return 0;
bad:
    json_object_put(obj);
    return -1;
}

static int parse_array(parser_t *p, int depth, json_object **out)
{
    cg_json5_pos_t start = here(p);
    if (depth >= p->max_depth)
        return fail_rc(p, CG_ELIMIT, start, "nesting deeper than %d levels", p->max_depth);
    adv(p);
    json_object *arr = json_object_new_array();
    pos_set(p->doc, arr, NULL, start);
    for (;;) {
        if (skip_ws(p))
            goto bad;
        if (peek(p) == ']') {
            adv(p);
            break;
        }
        json_object *val = NULL;
        if (parse_value(p, depth + 1, &val))
            goto bad;
        json_object_array_add(arr, val);
        if (skip_ws(p))
            goto bad;
        int c = peek(p);
        if (c == ',') {
            adv(p);
            continue;
        }
        if (c == ']') {
            adv(p);
            break;
        }
        fail(p, here(p), "expected ',' or ']'");
        goto bad;
    }
    *out = arr;
    return 0;
bad:
    json_object_put(arr);
    return -1;
}

static int parse_value(parser_t *p, int depth, json_object **out)
{
    cg_json5_pos_t start = here(p);
    int c = peek(p);
    int rc;
    *out = NULL;
    switch (c) {
    case '{':
        return parse_object(p, depth, out);
    case '[':
        return parse_array(p, depth, out);
    case '"':
    case '\'':
        if (parse_string(p))
            return -1;
        *out = json_object_new_string_len(p->sb.data ? p->sb.data : "", (int)p->sb.len);
        pos_set(p->doc, *out, NULL, start);
        return 0;
    case '+':
    case '-':
    case '.':
    case 'I':
    case 'N':
        rc = parse_number(p, out);
        pos_set(p->doc, *out, NULL, start);
        return rc;
    default:
        break;
    }
    if (is_digit(c)) {
        rc = parse_number(p, out);
        pos_set(p->doc, *out, NULL, start);
        return rc;
    }
    if (word_is(p, p->i, "true") || word_is(p, p->i, "false")) {
        bool v = c == 't';
        adv_n(p, v ? 4 : 5);
        *out = json_object_new_boolean(v);
        pos_set(p->doc, *out, NULL, start);
        return 0;
    }
    if (word_is(p, p->i, "null")) {
        adv_n(p, 4);
        return 0;
    }
    if (c >= 0 && (isalnum_ascii((unsigned char)c) || c == '_' || c == '$'))
        return bad_word(p);
    return unexpected(p);
}

int cg_json5_parse(const char *text, size_t len, const cg_json5_limits_t *lim, cg_json5_doc_t **out,
                   cg_json5_error_t *err)
{
    cg_json5_error_t scratch;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    *out = NULL;
    parser_t p = {
        .s = (const unsigned char *)text,
        .len = len,
        .line = 1,
        .col = 1,
        /* json-c takes string lengths as int */
        .max_string = lim && lim->max_string && lim->max_string < (size_t)INT32_MAX / 2
                          ? lim->max_string
                          : CG_JSON5_MAX_STRING,
        .max_depth = lim && lim->max_depth > 0 ? lim->max_depth : CG_JSON5_MAX_DEPTH,
        .err = err,
    };
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : CG_JSON5_MAX_BYTES;
    if (len > max_bytes) {
        cg_json5_pos_t top = {1, 1};
        fail_rc(&p, CG_ELIMIT, top, "input larger than %zu bytes", max_bytes);
        return p.rc;
    }
    p.doc = cg_calloc(1, sizeof *p.doc);
    cg_buf_reserve(&p.sb, 64); /* never NULL, even for an empty first string or key */
    json_object *root = NULL;
    if (skip_ws(&p) == 0) {
        if (p.i >= p.len)
            unexpected(&p);
        else if (parse_value(&p, 0, &root) == 0 && skip_ws(&p) == 0 && p.i < p.len) {
            char d[48];
            fail(&p, here(&p), "unexpected %s after the end of the document",
                 describe_char(&p, d, sizeof d));
        }
    }
    cg_buf_free(&p.sb);
    if (p.rc) {
        json_object_put(root);
        cg_json5_free(p.doc);
        return p.rc;
    }
    p.doc->root = root;
    *out = p.doc;
    return 0;
}

json_object *cg_json5_root(const cg_json5_doc_t *doc)
{
    return doc ? doc->root : NULL;
}

cg_json5_pos_t cg_json5_value_pos(const cg_json5_doc_t *doc, const json_object *node)
{
    return pos_get(doc, node, NULL);
}

cg_json5_pos_t cg_json5_key_pos(const cg_json5_doc_t *doc, const json_object *obj, const char *key)
{
    cg_json5_pos_t none = {0, 0};
    if (!key)
        return none;
    return pos_get(doc, obj, key);
}

const cg_json5_dup_t *cg_json5_duplicates(const cg_json5_doc_t *doc, size_t *n)
{
    *n = doc ? doc->n_dups : 0;
    return doc ? doc->dups : NULL;
}

void cg_json5_free(cg_json5_doc_t *doc)
{
    if (!doc)
        return;
    json_object_put(doc->root);
    for (size_t i = 0; i < doc->n_kept; i++)
        json_object_put(doc->kept[i]);
    cg_free(doc->kept);
    cg_free(doc->tab);
    while (doc->keys) {
        arena_block_t *next = doc->keys->next;
        cg_free(doc->keys);
        doc->keys = next;
    }
    for (size_t i = 0; i < doc->n_dups; i++)
        cg_free(doc->dups[i].key);
    cg_free(doc->dups);
    cg_free(doc);
}
