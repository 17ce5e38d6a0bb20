/*
 * jscan.c — strict JSON validation, top-level member spans, splice edits.
 *
 * DESIGN
 * One pass, no tree, no allocation. The scanner is a small state machine
 * (labels value / key / after) over a byte pointer; the nesting is an
 * explicit bit stack (1 = object, 0 = array) rather than recursion, so a
 * hostile "[[[[..." costs a bit per level and a clean error at max_depth, not
 * the thread's stack.
 *
 * Where the time goes: request bodies are mostly string bytes (a 26 KB
 * system prompt in a 36 KB body), so the string body loop is the one that
 * matters. Until its first stop it asks of 16 bytes at a time (SSE2; 8 with
 * SWAR integer arithmetic where SSE2 is missing) "is any byte a quote, a
 * backslash, a control character or non-ASCII?"; keys and short values end
 * there (most strings: that first look is made inline in the state machine,
 * which spares them the call; openclaw.json 91k -> 73k instructions, 3.53 ->
 * 3.40 us). From a stop that does not end the string (a backslash, a
 * non-ASCII byte) on, with SSE2 and 64 bytes left, the loop takes 64-byte
 * blocks as two bitmasks (backslashes; quotes, control and non-ASCII bytes):
 * the escaped bytes follow from the backslash runs by bit arithmetic,
 * carried across block edges, and the simple escapes (\n, \" ...) are
 * checked through their bits and passed over. A prompt with an escape every
 * 50 bytes so no longer leaves and re-enters the loop at each one (the 36 KB
 * OpenClaw body: 5.5 -> 3.8 us). Where the CPU has AVX2 (checked once at
 * start-up; the build targets plain x86-64) the masks come from two 32-byte
 * loads instead of four 16-byte ones (3.8 -> 3.55 us), and
 * cg_jscan_find_quoted looks at 32 candidates a step (2.2 -> 1.0 us on the
 * same body). The trusted scan stays with memchr (blocks did not beat it)
 * after the same inline first look (3.02 -> 2.81 us). Non-ASCII text still
 * leaves the block loop at each character (UTF-8 is checked byte-wise), but
 * re-enters it directly: the expanded fixtures, with a dash or an ellipsis
 * every 80 bytes: 2.5 -> 2.2 us (4.9 before the blocks).
 *
 * Whatever stops either loop (the closing quote, a \u escape, a bad escape,
 * a control or non-ASCII byte) is found with a count of trailing zeros
 * (little-endian only; big-endian machines take the byte loop) and handled
 * byte-wise, so errors and their offsets are the byte loop's whichever loop
 * ran: escapes are checked (\u surrogates must pair), UTF-8 is validated by
 * the RFC 3629 table (no overlongs, no surrogates, nothing above U+10FFFF).
 *
 * Strictness: RFC 8259 exactly — no comments, trailing commas, single
 * quotes, leading zeros, NaN/Infinity, or bytes after the value other than
 * the four whitespace characters. Duplicate keys are valid JSON; they are
 * recorded, cg_jscan_get returns the last (as json-c does), and edits touch
 * every occurrence so no stale copy survives.
 *
 * Edits (cg_jscan_apply) never re-serialise: the output is the input with
 * some value spans replaced, some members cut out together with one adjacent
 * comma, and new members added just before the closing brace.
 */
#include "proto/jscan.h"

#if defined(__SSE2__) && !defined(CG_JSCAN_NO_SIMD)
#include <emmintrin.h>
/* AVX2 variants of the hot loops, picked at run time: the build targets
 * plain x86-64, so the compiler may use AVX2 only in functions marked for
 * it, and they run only where the CPU has it (have_avx2). */
#if defined(__x86_64__) && defined(__GNUC__)
#define JSCAN_AVX2 1
#include <immintrin.h>
#endif
#endif

/* Deepest nesting any caller may ask for: the bit stack lives on the C
 * stack (128 bytes), so this also bounds the scanner's stack use. */
#define DEPTH_CAP 1024

static int fail(cg_jerr_t *err, const uint8_t *base, const uint8_t *at, const char *msg)
    __attribute__((cold, noinline));

static int fail(cg_jerr_t *err, const uint8_t *base, const uint8_t *at, const char *msg)
{
    if (err) {
        err->offset = (size_t)(at - base);
        snprintf(err->msg, sizeof(err->msg), "%s", msg);
    }
    return CG_EINVAL;
}

/* Byte classes for the slow path of the string loop and for whitespace. */
enum {
    C_PLAIN = 0, /* printable ASCII other than '"' and '\\' */
    C_QUOTE,
    C_BSLASH,
    C_CTRL,  /* 0x00-0x1F: must be escaped inside strings */
    C_U2,    /* C2-DF: lead of a 2-byte sequence */
    C_U3,    /* E1-EC, EE-EF: lead of a 3-byte sequence, any continuation */
    C_U3_E0, /* E0: second byte A0-BF (no overlongs) */
    C_U3_ED, /* ED: second byte 80-9F (no UTF-16 surrogates) */
    C_U4_F0, /* F0: second byte 90-BF (no overlongs) */
    C_U4,    /* F1-F3 */
    C_U4_F4, /* F4: second byte 80-8F (nothing above U+10FFFF) */
    C_BAD,   /* 80-BF as a lead, C0, C1, F5-FF */
};

/* GNU range designators (gcc and clang): the table reads as the RFC's.
 * Unlisted bytes (printable ASCII) are C_PLAIN, i.e. 0. */
static const uint8_t cls[256] = {
    [0x00 ... 0x1F] = C_CTRL, ['"'] = C_QUOTE,  ['\\'] = C_BSLASH,      [0x80 ... 0xC1] = C_BAD,
    [0xC2 ... 0xDF] = C_U2,   [0xE0] = C_U3_E0, [0xE1 ... 0xEC] = C_U3, [0xED] = C_U3_ED,
    [0xEE ... 0xEF] = C_U3,   [0xF0] = C_U4_F0, [0xF1 ... 0xF3] = C_U4, [0xF4] = C_U4_F4,
    [0xF5 ... 0xFF] = C_BAD,
};

static inline bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    /* Compact bodies have no blanks: one compare settles most calls. */
    while (p < end && *p <= ' ' && is_ws(*p))
        p++;
    return p;
}

static inline bool is_digit(uint8_t c)
{
    return (uint8_t)(c - '0') < 10;
}

/* The four hex digits at p as a code unit, or -1. Caller checked 4 bytes. */
static inline int32_t hex4(const uint8_t *p)
{
    int a = cg_hexval(p[0]), b = cg_hexval(p[1]), c = cg_hexval(p[2]), d = cg_hexval(p[3]);
    if ((a | b | c | d) < 0)
        return -1;
    return (a << 12) | (b << 8) | (c << 4) | d;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Nonzero iff some byte of x is '"', '\\', < 0x20 or >= 0x80; on
 * little-endian the lowest set bit sits in the first such byte (borrows
 * only run upward from a hit, so nothing below the first hit is set). */
static inline uint64_t special_mask(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"');
    uint64_t b = x ^ (ONES * '\\');
    uint64_t lt = (x - ONES * 0x20) & ~x;
    uint64_t zq = (q - ONES) & ~q;
    uint64_t zb = (b - ONES) & ~b;
    return ((lt | zq | zb) & HIGHS) | (x & HIGHS);
}

/* The first byte at or after p that the string loop must look at (a quote,
 * a backslash, a control byte, a non-ASCII byte), or a point less than 8
 * bytes from the end where the byte loop takes over. 16 bytes per step with
 * SSE2 (every x86-64 has it), 8 with SWAR elsewhere; CG_JSCAN_NO_SIMD forces
 * the SWAR path so tests can compare the two. */
static inline const uint8_t *skip_plain(const uint8_t *p, const uint8_t *end)
{
#if defined(__SSE2__) && !defined(CG_JSCAN_NO_SIMD)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* Signed compare: bytes >= 0x80 are negative, so "< 0x20" also
         * catches every non-ASCII byte. */
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                         _mm_cmplt_epi8(v, space));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t m = special_mask(x);
        if (m)
            return p + ((unsigned)__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    return p;
}

#if defined(__SSE2__) && !defined(CG_JSCAN_NO_SIMD)
#define JSCAN_BLOCKS 1

/* The escapes the block loop passes over: all but \u, which needs its hex
 * digits and surrogate pairing checked byte-wise. */
static const uint8_t simple_escape[256] = {
    ['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1, ['f'] = 1, ['n'] = 1, ['r'] = 1, ['t'] = 1,
};

/* One 16-byte chunk: bit i of *bs set iff byte i is a backslash, of *qs iff
 * it is a quote, a control byte or non-ASCII (the bytes that end the string
 * or need the byte loop when not escaped). */
static inline void chunk_masks(const uint8_t *p, unsigned *bs, unsigned *qs)
{
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    /* Signed compare: < 0x20 also catches every byte >= 0x80. */
    __m128i s = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmplt_epi8(v, space));
    *bs = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, bslash));
    *qs = (unsigned)_mm_movemask_epi8(s);
}

/* The same for the 64 bytes at p, as one bit per byte. */
static inline void block_masks_sse2(const uint8_t *p, uint64_t *bs, uint64_t *qs)
{
    unsigned b0, b1, b2, b3, q0, q1, q2, q3;
    chunk_masks(p, &b0, &q0);
    chunk_masks(p + 16, &b1, &q1);
    chunk_masks(p + 32, &b2, &q2);
    chunk_masks(p + 48, &b3, &q3);
    *bs = b0 | (uint64_t)b1 << 16 | (uint64_t)b2 << 32 | (uint64_t)b3 << 48;
    *qs = q0 | (uint64_t)q1 << 16 | (uint64_t)q2 << 32 | (uint64_t)q3 << 48;
}

/* The escaped bytes of a 64-byte block: those right after a run of
 * backslashes of odd length. *carry is 1 when byte 0 is escaped by a run
 * that ended the previous block; on return, whether this block's last run
 * escapes the next block's byte 0.
 *
 * Adding a run's lowest bit to the backslash mask clears the run and sets
 * the bit just after it; the run's length is odd exactly when that bit's
 * position has the other parity than the run's start. Runs that start on
 * even and on odd positions are added separately so each sum can be kept
 * to the positions of the right parity. A run that reaches bit 63 carries
 * out of the sum: its "next" position is 64, even, so it escapes the next
 * block's byte 0 iff it started on an odd position. */
static inline uint64_t escaped_bytes(uint64_t bs, uint64_t *carry)
{
    const uint64_t even = 0x5555555555555555ULL;
    uint64_t in = *carry;
    bs &= ~in; /* an escaped backslash starts no escape */
    uint64_t starts = bs & ~(bs << 1);
    uint64_t after_even, after_odd;
    (void)__builtin_add_overflow(bs, starts & even, &after_even);
    *carry = __builtin_add_overflow(bs, starts & ~even, &after_odd);
    return (after_even & ~bs & ~even) | (after_odd & ~bs & even) | in;
}

/* From p (not itself escaped) to the first byte that the string loop must
 * look at: an unescaped quote, control or non-ASCII byte, or the backslash
 * of an escape other than the simple ones. 64 bytes per step while 64
 * remain, with masks() making the bitmasks; the tail goes to skip_plain.
 * Never returns an escaped byte: a block edge inside an escape backs up to
 * its backslash. Always inlined, so that each caller's masks() is inlined
 * too, built for that caller's instruction set. */
static inline __attribute__((always_inline)) const uint8_t *
block_loop(const uint8_t *p, const uint8_t *end,
           void (*masks)(const uint8_t *, uint64_t *, uint64_t *))
{
    uint64_t carry = 0;
    while (end - p >= 64) {
        uint64_t bs, qs;
        masks(p, &bs, &qs);
        uint64_t esc = escaped_bytes(bs, &carry);
        uint64_t stop = qs & ~esc;
        /* Only the escapes before the first stop belong to this string. */
        for (uint64_t e = esc & (stop - 1) & ~stop; e; e &= e - 1) {
            unsigned i = (unsigned)__builtin_ctzll(e);
            if (!simple_escape[p[i]])
                return p + i - 1; /* i == 0: the backslash ended the last block */
        }
        if (stop)
            return p + __builtin_ctzll(stop);
        p += 64;
    }
    return skip_plain(p - carry, end);
}

#ifdef JSCAN_AVX2
/* Set once at start-up, before any thread scans, and never written again. */
static bool have_avx2;

__attribute__((constructor)) static void detect_avx2(void)
{
    __builtin_cpu_init(); /* required when called from a constructor */
    have_avx2 = __builtin_cpu_supports("avx2");
}

/* block_masks_sse2 with two 32-byte loads: half the instructions, and the
 * three-operand forms spare the register copies SSE2 needs. */
__attribute__((target("avx2"))) static inline void block_masks_avx2(const uint8_t *p, uint64_t *bs,
                                                                    uint64_t *qs)
{
    const __m256i quote = _mm256_set1_epi8('"'), bslash = _mm256_set1_epi8('\\');
    const __m256i space = _mm256_set1_epi8(0x20);
    __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    /* Signed compare, as in chunk_masks: 0x20 > byte for controls and non-ASCII. */
    __m256i slo = _mm256_or_si256(_mm256_cmpeq_epi8(lo, quote), _mm256_cmpgt_epi8(space, lo));
    __m256i shi = _mm256_or_si256(_mm256_cmpeq_epi8(hi, quote), _mm256_cmpgt_epi8(space, hi));
    uint32_t blo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, bslash));
    uint32_t bhi = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, bslash));
    *bs = blo | (uint64_t)bhi << 32;
    *qs = (uint32_t)_mm256_movemask_epi8(slo) | (uint64_t)(uint32_t)_mm256_movemask_epi8(shi) << 32;
}

__attribute__((target("avx2"), noinline)) static const uint8_t *block_loop_avx2(const uint8_t *p,
                                                                                const uint8_t *end)
{
    return block_loop(p, end, block_masks_avx2);
}

/* cg_jscan_find_quoted's SSE2 loop, 32 candidates a step: the first match
 * starting before *next on return, or NULL. */
__attribute__((target("avx2"))) static const char *
find_quoted_avx2(const char *s, size_t n, const char *needle, size_t nl, size_t *next)
{
    const __m256i f = _mm256_set1_epi8(needle[0]), sec = _mm256_set1_epi8(needle[1]),
                  last = _mm256_set1_epi8(needle[nl - 1]);
    size_t i = 0;
    for (; i + nl - 1 + 32 <= n; i += 32) {
        __m256i a =
            _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(const void *)(s + i)), f);
        __m256i b =
            _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(const void *)(s + i + 1)), sec);
        __m256i c = _mm256_cmpeq_epi8(
            _mm256_loadu_si256((const __m256i *)(const void *)(s + i + nl - 1)), last);
        uint32_t mask = (uint32_t)_mm256_movemask_epi8(_mm256_and_si256(_mm256_and_si256(a, b), c));
        while (mask) {
            size_t k = i + (size_t)__builtin_ctz(mask);
            if (memcmp(s + k + 1, needle + 1, nl - 2) == 0)
                return s + k;
            mask &= mask - 1;
        }
    }
    *next = i;
    return NULL;
}
#endif

static inline const uint8_t *skip_blocks(const uint8_t *p, const uint8_t *end)
{
#ifdef JSCAN_AVX2
    if (have_avx2)
        return block_loop_avx2(p, end);
#endif
    return block_loop(p, end, block_masks_sse2);
}

/* The first byte at or after p that the string loop must look at (see
 * skip_plain and block_loop). */
static inline const uint8_t *skip_plain_blocks(const uint8_t *p, const uint8_t *end)
{
    /* Keys and short values end within 16 bytes, before any escape: the
     * 16-byte loop costs them less than a block would. */
    p = skip_plain(p, end);
    if (end - p < 64 || *p != '\\')
        return p;
    return skip_blocks(p, end);
}
#endif

bool cg_jscan_use_avx2(bool on)
{
#ifdef JSCAN_AVX2
    __builtin_cpu_init();
    have_avx2 = on && __builtin_cpu_supports("avx2");
    return have_avx2;
#else
    (void)on;
    return false;
#endif
}

/* Trusted input (validated once already): find the closing quote only. A
 * quote ends the string when an even number of backslashes precedes it; the
 * run cannot reach back past p, which follows the opening quote or an
 * escaped one. memchr is vectorised, and a prompt full of \n escapes no
 * longer stops the scan at every one. */
static inline const uint8_t *skip_string_trusted(const uint8_t *base, const uint8_t *p,
                                                 const uint8_t *end, cg_jerr_t *err)
{
    const uint8_t *open = p - 1;
    for (;;) {
        const uint8_t *q = memchr(p, '"', (size_t)(end - p));
        if (!q) {
            fail(err, base, open, "unterminated string");
            return NULL;
        }
        const uint8_t *b = q;
        while (b > p && b[-1] == '\\')
            b--;
        if (((q - b) & 1) == 0)
            return q + 1;
        p = q + 1;
    }
}

/* skip_string_trusted for the common case first, as string_end does. */
static inline const uint8_t *trusted_end(const uint8_t *base, const uint8_t *p, const uint8_t *end,
                                         cg_jerr_t *err)
{
#ifdef JSCAN_BLOCKS
    if (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                   _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m && p[__builtin_ctz(m)] == '"')
            return p + __builtin_ctz(m) + 1;
    }
#endif
    return skip_string_trusted(base, p, end, err);
}

/* Scan a string body: p is just past the opening quote. Returns the byte
 * after the closing quote, or NULL with err filled. */
static inline const uint8_t *scan_string(const uint8_t *base, const uint8_t *p, const uint8_t *end,
                                         cg_jerr_t *err)
{
    const uint8_t *open = p - 1;
#ifdef JSCAN_BLOCKS
    /* Past the first byte the loop stops at, the string is likely long:
     * straight to the blocks. */
    bool first = true;
#endif
    for (;;) {
#ifdef JSCAN_BLOCKS
        p = first ? skip_plain_blocks(p, end) : skip_blocks(p, end);
        first = false;
#else
        p = skip_plain(p, end);
#endif
        if (p >= end) {
            fail(err, base, open, "unterminated string");
            return NULL;
        }
        uint8_t c = *p;
        switch (cls[c]) {
        case C_PLAIN:
            p++;
            continue;
        case C_QUOTE:
            return p + 1;
        case C_CTRL:
            fail(err, base, p, "control character in string (must be escaped)");
            return NULL;
        case C_BSLASH:
            if (end - p < 2) {
                fail(err, base, open, "unterminated string");
                return NULL;
            }
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p += 2;
                continue;
            case 'u':
                break;
            default:
                fail(err, base, p, "invalid escape in string");
                return NULL;
            }
            {
                if (end - p < 6 || hex4(p + 2) < 0) {
                    fail(err, base, p, "invalid \\u escape (needs 4 hex digits)");
                    return NULL;
                }
                int32_t u = hex4(p + 2);
                if (u >= 0xDC00 && u <= 0xDFFF) {
                    fail(err, base, p, "lone low surrogate in \\u escape");
                    return NULL;
                }
                if (u >= 0xD800 && u <= 0xDBFF) {
                    int32_t lo = -1;
                    if (end - p >= 12 && p[6] == '\\' && p[7] == 'u')
                        lo = hex4(p + 8);
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        fail(err, base, p, "lone high surrogate in \\u escape");
                        return NULL;
                    }
                    p += 12;
                } else {
                    p += 6;
                }
            }
            continue;
        case C_U2:
            if (end - p < 2 || (p[1] & 0xC0) != 0x80)
                goto bad_utf8;
            p += 2;
            continue;
        case C_U3:
        case C_U3_E0:
        case C_U3_ED:
            if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
                goto bad_utf8;
            if (cls[c] == C_U3_E0 && p[1] < 0xA0)
                goto bad_utf8;
            if (cls[c] == C_U3_ED && p[1] > 0x9F)
                goto bad_utf8;
            p += 3;
            continue;
        case C_U4:
        case C_U4_F0:
        case C_U4_F4:
            if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
                (p[3] & 0xC0) != 0x80)
                goto bad_utf8;
            if (cls[c] == C_U4_F0 && p[1] < 0x90)
                goto bad_utf8;
            if (cls[c] == C_U4_F4 && p[1] > 0x8F)
                goto bad_utf8;
            p += 4;
            continue;
        default:
            goto bad_utf8;
        }
    bad_utf8:
        fail(err, base, p, "invalid UTF-8 in string");
        return NULL;
    }
}

/* scan_string for the common case first: a key or short value whose
 * closing quote is the first byte of note in the next 16, settled here
 * without the call. */
static inline const uint8_t *string_end(const uint8_t *base, const uint8_t *p, const uint8_t *end,
                                        cg_jerr_t *err)
{
#ifdef JSCAN_BLOCKS
    if (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                   _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m && p[__builtin_ctz(m)] == '"')
            return p + __builtin_ctz(m) + 1;
    }
#endif
    return scan_string(base, p, end, err);
}

/* Scan a number starting at p (a '-' or a digit). Returns the byte after
 * it, or NULL with err filled. What follows is checked by the caller's
 * state ("1x" fails as "expected ',' ..."). */
static inline const uint8_t *scan_number(const uint8_t *base, const uint8_t *p, const uint8_t *end,
                                         cg_jerr_t *err)
{
    if (*p == '-')
        p++;
    if (p >= end || !is_digit(*p)) {
        fail(err, base, p, "expected a digit in number");
        return NULL;
    }
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) {
            fail(err, base, p - 1, "leading zero in number");
            return NULL;
        }
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p)) {
            fail(err, base, p, "expected a digit after '.' in number");
            return NULL;
        }
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p)) {
            fail(err, base, p, "expected a digit in exponent");
            return NULL;
        }
        while (p < end && is_digit(*p))
            p++;
    }
    return p;
}

static cg_jtype_t type_of(uint8_t c)
{
    switch (c) {
    case '{':
        return CG_JOBJECT;
    case '[':
        return CG_JARRAY;
    case '"':
        return CG_JSTRING;
    case 't':
        return CG_JTRUE;
    case 'f':
        return CG_JFALSE;
    case 'n':
        return CG_JNULL;
    default:
        return CG_JNUMBER;
    }
}

/* The CG_JSCAN_SAW_* word a whole string is, if any: s is its opening quote,
 * e just past its closing one. Two length tests for nearly every string. */
static inline unsigned word_of(const uint8_t *s, const uint8_t *e)
{
    if (e - s == 11 && memcmp(s + 1, "developer", 9) == 0)
        return CG_JSCAN_SAW_DEVELOPER;
    if (e - s == 8 && memcmp(s + 1, "strict", 6) == 0)
        return CG_JSCAN_SAW_STRICT;
    return 0;
}

/* The whole validator. With js, the document must be an object and its
 * top-level members are recorded; without, any value is accepted. */
static int scan(const uint8_t *base, size_t len, int max_depth, bool trusted, cg_jscan_t *js,
                cg_jerr_t *err)
{
    const uint8_t *p = base, *end = base + len;
    uint64_t stack[DEPTH_CAP / 64]; /* bit d set: level d+1 is an object */
    int depth = 0;
    cg_jmember_t scratch;   /* member being scanned once the table is full */
    cg_jmember_t *m = NULL; /* top-level member being scanned, when recording */
    const uint8_t *q;

    if (max_depth > DEPTH_CAP)
        max_depth = DEPTH_CAP;
    p = skip_ws(p, end);
    if (js) {
        if (p >= end)
            return fail(err, base, p, "empty body: expected a JSON object");
        if (*p != '{')
            return fail(err, base, p, "expected a JSON object");
        js->obj_open = (size_t)(p - base);
    }

value:
    p = skip_ws(p, end);
    if (p >= end)
        return fail(err, base, p, "unexpected end of input");
    switch (*p) {
    case '{':
        if (depth >= max_depth)
            return fail(err, base, p, "nesting too deep");
        stack[depth >> 6] |= 1ULL << (depth & 63);
        depth++;
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}') {
            p++;
            depth--;
            goto after;
        }
        goto key;
    case '[':
        if (depth >= max_depth)
            return fail(err, base, p, "nesting too deep");
        stack[depth >> 6] &= ~(1ULL << (depth & 63));
        depth++;
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            p++;
            depth--;
            goto after;
        }
        goto value;
    case '"':
        q = p;
        p = trusted ? trusted_end(base, p + 1, end, err) : string_end(base, p + 1, end, err);
        if (!p)
            return CG_EINVAL;
        if (js)
            js->saw |= word_of(q, p);
        goto after;
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0)
            return fail(err, base, p, "invalid literal (expected true)");
        p += 4;
        goto after;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0)
            return fail(err, base, p, "invalid literal (expected false)");
        p += 5;
        goto after;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0)
            return fail(err, base, p, "invalid literal (expected null)");
        p += 4;
        goto after;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        p = scan_number(base, p, end, err);
        if (!p)
            return CG_EINVAL;
        goto after;
    case '\'':
        return fail(err, base, p, "single-quoted strings are not JSON");
    default:
        return fail(err, base, p, "expected a value");
    }

key:
    /* p is on the first non-blank byte after '{' or ','. */
    if (p >= end)
        return fail(err, base, p, "unexpected end of input");
    if (*p != '"') {
        if (*p == '\'')
            return fail(err, base, p, "single-quoted strings are not JSON");
        return fail(err, base, p, "expected a string as object key");
    }
    q = p;
    p = trusted ? trusted_end(base, p + 1, end, err) : string_end(base, p + 1, end, err);
    if (!p)
        return CG_EINVAL;
    if (js)
        js->saw |= word_of(q, p);
    if (js && depth == 1) {
        m = js->n_members < CG_JSCAN_MAX_MEMBERS ? &js->members[js->n_members] : &scratch;
        m->mem_off = (size_t)(q - base);
        m->key_off = m->mem_off + 1;
        m->key_len = (size_t)(p - q) - 2;
    }
    p = skip_ws(p, end);
    if (p >= end)
        return fail(err, base, p, "unexpected end of input");
    if (*p != ':')
        return fail(err, base, p, "expected ':' after object key");
    p = skip_ws(p + 1, end);
    if (js && depth == 1 && p < end) {
        m->val_off = (size_t)(p - base);
        m->type = type_of(*p);
    }
    goto value;

after:
    /* A value ended just before p. */
    if (depth == 0)
        goto done;
    if (js && depth == 1) {
        m->val_len = (size_t)(p - base) - m->val_off;
        m->mem_len = (size_t)(p - base) - m->mem_off;
        if (m == &scratch)
            js->truncated = true;
        else
            js->n_members++;
    }
    p = skip_ws(p, end);
    if (p >= end)
        return fail(err, base, p, "unexpected end of input");
    if (stack[(depth - 1) >> 6] & (1ULL << ((depth - 1) & 63))) {
        if (*p == ',') {
            p = skip_ws(p + 1, end);
            if (p < end && *p == '}')
                return fail(err, base, p, "trailing comma in object");
            goto key;
        }
        if (*p == '}') {
            p++;
            depth--;
            goto after;
        }
        return fail(err, base, p, "expected ',' or '}' after object member");
    }
    if (*p == ',') {
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']')
            return fail(err, base, p, "trailing comma in array");
        goto value;
    }
    if (*p == ']') {
        p++;
        depth--;
        goto after;
    }
    return fail(err, base, p, "expected ',' or ']' after array element");

done:
    if (js)
        js->obj_close = (size_t)(p - base) - 1;
    p = skip_ws(p, end);
    if (p != end)
        return fail(err, base, p, "unexpected data after the JSON value");
    return 0;
}

static int object(cg_jscan_t *js, const char *src, size_t len, int max_depth, bool trusted,
                  cg_jerr_t *err)
{
    js->src = src;
    js->len = len;
    js->obj_open = js->obj_close = 0;
    js->n_members = 0;
    js->truncated = false;
    js->saw = 0;
    if (max_depth < 1)
        return fail(err, (const uint8_t *)src, (const uint8_t *)src, "nesting too deep");
    int rc = scan((const uint8_t *)src, len, max_depth, trusted, js, err);
    if (rc != 0) {
        js->n_members = 0;
        js->truncated = false;
    }
    return rc;
}

int cg_jscan_object(cg_jscan_t *js, const char *src, size_t len, int max_depth, cg_jerr_t *err)
{
    return object(js, src, len, max_depth, false, err);
}

int cg_jscan_object_trusted(cg_jscan_t *js, const char *src, size_t len, int max_depth,
                            cg_jerr_t *err)
{
    return object(js, src, len, max_depth, true, err);
}

int cg_jscan_validate(const char *src, size_t len, int max_depth, cg_jerr_t *err)
{
    if (max_depth < 0)
        max_depth = 0;
    return scan((const uint8_t *)src, len, max_depth, false, NULL, err);
}

/* ---- decoding ---- */

static size_t utf8_put(uint8_t out[4], uint32_t u)
{
    if (u < 0x80) {
        out[0] = (uint8_t)u;
        return 1;
    }
    if (u < 0x800) {
        out[0] = (uint8_t)(0xC0 | (u >> 6));
        out[1] = (uint8_t)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (u >> 12));
        out[1] = (uint8_t)(0x80 | ((u >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (u & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (u >> 18));
    out[1] = (uint8_t)(0x80 | ((u >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((u >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (u & 0x3F));
    return 4;
}

/* Decode the escape at p (p[0] == '\\') of an already validated string into
 * out; returns the number of source bytes used, stores the decoded length. */
static size_t decode_escape(const uint8_t *p, uint8_t out[4], size_t *out_len)
{
    uint8_t c;
    switch (p[1]) {
    case 'b':
        c = '\b';
        break;
    case 'f':
        c = '\f';
        break;
    case 'n':
        c = '\n';
        break;
    case 'r':
        c = '\r';
        break;
    case 't':
        c = '\t';
        break;
    case 'u': {
        uint32_t u = (uint32_t)hex4(p + 2);
        size_t used = 6;
        if (u >= 0xD800 && u <= 0xDBFF) {
            uint32_t lo = (uint32_t)hex4(p + 8);
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            used = 12;
        }
        *out_len = utf8_put(out, u);
        return used;
    }
    default: /* '"', '\\', '/' stand for themselves */
        c = p[1];
        break;
    }
    out[0] = c;
    *out_len = 1;
    return 2;
}

/* Does the raw (validated) string body r[0..n) decode to key[0..klen)? */
static bool key_eq(const uint8_t *r, size_t n, const char *key, size_t klen)
{
    if (!memchr(r, '\\', n))
        return n == klen && memcmp(r, key, n) == 0;
    const uint8_t *k = (const uint8_t *)key, *kend = k + klen, *end = r + n;
    while (r < end) {
        if (*r != '\\') {
            if (k >= kend || *k != *r)
                return false;
            r++;
            k++;
            continue;
        }
        uint8_t d[4];
        size_t dl;
        r += decode_escape(r, d, &dl);
        if ((size_t)(kend - k) < dl || memcmp(k, d, dl) != 0)
            return false;
        k += dl;
    }
    return k == kend;
}

/* A backslash in a short raw key? (Keys are short: a loop beats a call.) */
static bool has_backslash(const uint8_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i] == '\\')
            return true;
    }
    return false;
}

const cg_jmember_t *cg_jscan_get(const cg_jscan_t *js, const char *key)
{
    size_t klen = strlen(key);
    /* For a key without escapes (every lookup in clawgate), a raw key can
     * only decode to it if it is the same bytes, or longer and escaped:
     * escapes make the raw form longer than the decoded one. So most
     * members are settled by their length. */
    bool plain = !memchr(key, '\\', klen);
    for (size_t i = js->n_members; i-- > 0;) {
        const cg_jmember_t *m = &js->members[i];
        const uint8_t *r = (const uint8_t *)js->src + m->key_off;
        if (plain) {
            if (m->key_len < klen)
                continue;
            if (m->key_len == klen) {
                if (memcmp(r, key, klen) == 0)
                    return m;
                continue;
            }
            /* Longer: only escapes can make it decode to key, and its first
             * byte is then key's first byte or the start of an escape. */
            if (klen == 0 || (r[0] != (uint8_t)key[0] && r[0] != '\\'))
                continue;
            if (!has_backslash(r, m->key_len))
                continue;
        }
        if (key_eq(r, m->key_len, key, klen))
            return m;
    }
    return NULL;
}

int cg_jscan_string(const cg_jscan_t *js, const cg_jmember_t *m, cg_buf_t *out)
{
    if (!m || m->type != CG_JSTRING || m->val_len < 2)
        return CG_EINVAL;
    const uint8_t *r = (const uint8_t *)js->src + m->val_off + 1;
    const uint8_t *end = r + m->val_len - 2;
    cg_buf_reserve(out, (size_t)(end - r));
    while (r < end) {
        const uint8_t *bs = memchr(r, '\\', (size_t)(end - r));
        const uint8_t *stop = bs ? bs : end;
        cg_buf_append(out, r, (size_t)(stop - r));
        if (!bs)
            break;
        uint8_t d[4];
        size_t dl;
        r = bs + decode_escape(bs, d, &dl);
        cg_buf_append(out, d, dl);
    }
    cg_buf_append(out, "", 0); /* NUL-terminated even when nothing was appended */
    return 0;
}

/* ---- encoding ---- */

void cg_json_quote(cg_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    cg_buf_reserve(out, len + 2);
    cg_buf_append(out, "\"", 1);
    const char *run = s, *end = s + len;
    for (const char *p = s; p < end; p++) {
        uint8_t c = (uint8_t)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        cg_buf_append(out, run, (size_t)(p - run));
        run = p + 1;
        char e[6] = {'\\', 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            el = 6;
            break;
        }
        cg_buf_append(out, e, el);
    }
    cg_buf_append(out, run, (size_t)(end - run));
    cg_buf_append(out, "\"", 1);
}

/* ---- splice edits ---- */

/* The edit that applies to member m: the last one naming its key. */
static const cg_jedit_t *edit_for(const cg_jscan_t *js, const cg_jmember_t *m,
                                  const cg_jedit_t *edits, size_t n)
{
    const uint8_t *k = (const uint8_t *)js->src + m->key_off;
    for (size_t i = n; i-- > 0;) {
        if (key_eq(k, m->key_len, edits[i].key, strlen(edits[i].key)))
            return &edits[i];
    }
    return NULL;
}

void cg_jscan_apply(const cg_jscan_t *js, const cg_jedit_t *edits, size_t n, cg_buf_t *out)
{
    const char *src = js->src;
    size_t nm = js->n_members;
    cg_buf_reserve(out, js->len + 64);

    /* "{" and the blank after it (or everything up to '}' for "{}"). */
    size_t pos = nm ? js->members[0].mem_off : js->obj_close;
    cg_buf_append(out, src, pos);

    bool wrote = false; /* a member has been written: the next needs a comma */
    for (size_t i = 0; i < nm; i++) {
        const cg_jmember_t *m = &js->members[i];
        const cg_jedit_t *e = edit_for(js, m, edits, n);
        if (e && !e->raw)
            continue; /* deleted: drops the member and the gap before it */
        /* The gap before member i > 0 holds exactly one comma, whether
         * member i-1 was kept or not; the first member written needs none
         * (gap 0 went out with the '{'), so its gap is dropped. */
        if (wrote) {
            size_t gap = js->members[i - 1].mem_off + js->members[i - 1].mem_len;
            cg_buf_append(out, src + gap, m->mem_off - gap);
        }
        if (e) {
            cg_buf_append(out, src + m->mem_off, m->val_off - m->mem_off);
            cg_buf_append(out, e->raw, e->raw_len);
        } else {
            cg_buf_append(out, src + m->mem_off, m->mem_len);
        }
        wrote = true;
    }

    /* New members: edits whose key no member has (the last edit per key). */
    for (size_t j = 0; j < n; j++) {
        const cg_jedit_t *e = &edits[j];
        if (!e->raw)
            continue;
        bool later = false;
        for (size_t k = j + 1; k < n && !later; k++)
            later = strcmp(edits[k].key, e->key) == 0;
        if (later)
            continue;
        bool present = false;
        for (size_t i = 0; i < nm && !present; i++)
            present = edit_for(js, &js->members[i], e, 1) != NULL;
        if (present)
            continue;
        if (wrote)
            cg_buf_append(out, ",", 1);
        cg_json_quote(out, e->key, strlen(e->key));
        cg_buf_append(out, ":", 1);
        cg_buf_append(out, e->raw, e->raw_len);
        wrote = true;
    }

    /* The blank before '}', the '}' and whatever blank follows it. */
    size_t tail = nm ? js->members[nm - 1].mem_off + js->members[nm - 1].mem_len : js->obj_close;
    if (js->truncated && !wrote) {
        /* The tail starts with the unrecorded members, and so with a comma
         * that nothing precedes any more: drop it. */
        const char *c = memchr(src + tail, ',', js->len - tail);
        cg_assert(c);
        tail = (size_t)(c - src) + 1;
    }
    cg_buf_append(out, src + tail, js->len - tail);
}

/* memmem for a needle of at least three bytes (see jscan.h). With SSE2, sixteen candidate positions
 * a step (32 with AVX2): a position is looked at only if its first, second and last bytes match the
 * needle's, which in JSON (quote-dense where tools are) leaves almost none; the 36 KB OpenClaw
 * request is crossed in a few thousand instructions instead of one memchr/memcmp call pair per
 * quote. Same matches as memmem. */
const char *cg_jscan_find_quoted(const char *s, size_t n, const char *needle, size_t nl)
{
    if (nl < 3 || n < nl)
        return NULL;
    size_t i = 0;
#ifdef JSCAN_AVX2
    if (have_avx2) {
        const char *hit = find_quoted_avx2(s, n, needle, nl, &i);
        if (hit)
            return hit;
    }
#endif
#if defined(__SSE2__) && !defined(CG_JSCAN_NO_SIMD)
    const __m128i f = _mm_set1_epi8(needle[0]), sec = _mm_set1_epi8(needle[1]),
                  last = _mm_set1_epi8(needle[nl - 1]);
    for (; i + nl - 1 + 16 <= n; i += 16) {
        __m128i a = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(s + i)), f);
        __m128i b =
            _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(s + i + 1)), sec);
        __m128i c =
            _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(s + i + nl - 1)), last);
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_and_si128(a, b), c));
        while (mask) {
            size_t k = i + (size_t)__builtin_ctz(mask);
            if (memcmp(s + k + 1, needle + 1, nl - 2) == 0)
                return s + k;
            mask &= mask - 1;
        }
    }
#endif
    const char *p = s + i, *end = s + n;
    while ((size_t)(end - p) >= nl && (p = memchr(p, needle[0], (size_t)(end - p))) != NULL) {
        if ((size_t)(end - p) < nl)
            return NULL;
        if (memcmp(p, needle, nl) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* ---- member tables handed between actors ----
 * Layout (uint32 each, host order): TABLE_MAGIC, len, obj_open, obj_close,
 * n, saw, then per member key_off, key_len, val_off, val_len, mem_len, type.
 * mem_off is key_off - 1 (the key's opening quote) and is not stored. */

#define TABLE_MAGIC 0x324a5443u /* "CTJ2" */
#define TABLE_HEAD 6
#define TABLE_MEMBER 6

void cg_jscan_table_pack(const cg_jscan_t *js, cg_buf_t *out)
{
    if (js->truncated || js->len >= UINT32_MAX)
        return;
    uint32_t w[TABLE_HEAD + TABLE_MEMBER * CG_JSCAN_MAX_MEMBERS];
    size_t k = 0;
    w[k++] = TABLE_MAGIC;
    w[k++] = (uint32_t)js->len;
    w[k++] = (uint32_t)js->obj_open;
    w[k++] = (uint32_t)js->obj_close;
    w[k++] = (uint32_t)js->n_members;
    w[k++] = js->saw;
    for (size_t i = 0; i < js->n_members; i++) {
        const cg_jmember_t *m = &js->members[i];
        w[k++] = (uint32_t)m->key_off;
        w[k++] = (uint32_t)m->key_len;
        w[k++] = (uint32_t)m->val_off;
        w[k++] = (uint32_t)m->val_len;
        w[k++] = (uint32_t)m->mem_len;
        w[k++] = (uint32_t)m->type;
    }
    cg_buf_append(out, w, k * sizeof w[0]);
}

/* Does a value of type t start with byte c? */
static bool starts_as(cg_jtype_t t, uint8_t c)
{
    return t != CG_JNONE && t == type_of(c);
}

int cg_jscan_table_load(cg_jscan_t *js, const char *src, size_t len, const void *tab, size_t n)
{
    uint32_t h[TABLE_HEAD];
    if (!tab || n < sizeof h || (n - sizeof h) % (TABLE_MEMBER * sizeof h[0]) != 0)
        return CG_EINVAL;
    memcpy(h, tab, sizeof h);
    size_t nm = (n - sizeof h) / (TABLE_MEMBER * sizeof h[0]);
    const uint8_t *s = (const uint8_t *)src;
    if (h[0] != TABLE_MAGIC || h[1] != len || h[4] != nm || nm > CG_JSCAN_MAX_MEMBERS ||
        h[2] >= h[3] || h[3] >= len || s[h[2]] != '{' || s[h[3]] != '}')
        return CG_EINVAL;
    js->src = src;
    js->len = len;
    js->obj_open = h[2];
    js->obj_close = h[3];
    js->truncated = false;
    js->n_members = 0;
    js->saw = h[5];
    const uint8_t *p = (const uint8_t *)tab + sizeof h;
    size_t floor = h[2] + 1; /* each member starts after the previous one */
    for (size_t i = 0; i < nm; i++, p += TABLE_MEMBER * sizeof h[0]) {
        uint32_t w[TABLE_MEMBER];
        memcpy(w, p, sizeof w);
        uint64_t key_off = w[0], key_len = w[1], val_off = w[2], val_len = w[3], mem_len = w[4];
        uint64_t key_end = key_off + key_len, val_end = val_off + val_len;
        if (key_off < floor + 1 || key_end >= val_off || val_len == 0 || val_end > h[3] ||
            w[5] > CG_JOBJECT || s[key_off - 1] != '"' || s[key_end] != '"' ||
            !starts_as((cg_jtype_t)w[5], s[val_off]) || key_off - 1 + mem_len != val_end)
            return CG_EINVAL;
        cg_jmember_t *m = &js->members[i];
        *m = (cg_jmember_t){.key_off = key_off,
                            .key_len = key_len,
                            .val_off = val_off,
                            .val_len = val_len,
                            .mem_off = key_off - 1,
                            .mem_len = mem_len,
                            .type = (cg_jtype_t)w[5]};
        floor = val_end;
    }
    js->n_members = nm;
    return 0;
}
