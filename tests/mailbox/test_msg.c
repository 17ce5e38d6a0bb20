/*
 * test_msg.c — message blocks: raw payloads, cg_msg_pack / cg_msg_unpack with
 * every format letter, nil handling, malformed and mistyped payloads.
 */
#include "mailbox/msg.h"
#include "tests/t.h"

#include <pthread.h>

static void test_new_raw(void)
{
    cg_msg_t *m = cg_msg_new(7, "abc", 3);
    T_EQ_INT(m->type, 7);
    T_EQ_INT(m->len, 3);
    T_EQ_INT(m->sender, 0);
    T_EQ_INT(m->reply_to, 0);
    T_EQ_INT(m->req_id, 0);
    T_ASSERT(memcmp(m->payload, "abc", 3) == 0);
    cg_msg_free(m);

    m = cg_msg_new(8, NULL, 0);
    T_EQ_INT(m->len, 0);
    cg_msg_view_t v;
    T_EQ_INT(cg_msg_unpack(m, &v, ""), CG_EINVAL); /* no payload is not an array */
    cg_msg_view_done(&v);
    cg_msg_free(m);
}

static void test_roundtrip_all_letters(void)
{
    const char bin[] = {0, 1, 2, 3, (char)0xff};
    cg_msg_t *m = cg_msg_pack(123, "uidbsSxsb", (uint64_t)UINT64_MAX, (int64_t)-42, 2.5, 1, "hello",
                              "wor\0ld", (size_t)6, bin, sizeof bin, (const char *)NULL, 0);
    T_EQ_INT(m->type, 123);
    T_ASSERT(m->len > 0);
    m->req_id = 99;

    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    int b1 = 0, b2 = 1;
    const char *s = NULL, *S = NULL, *nil = "x";
    const void *x = NULL;
    size_t slen = 0, Slen = 0, xlen = 0, nillen = 5;
    cg_msg_view_t v;
    int rc = cg_msg_unpack(m, &v, "uidbsSxsb", &u, &i, &d, &b1, &s, &slen, &S, &Slen, &x, &xlen,
                           &nil, &nillen, &b2);
    T_EQ_INT(rc, CG_OK);
    T_ASSERT(u == UINT64_MAX);
    T_EQ_INT(i, -42);
    T_ASSERT(d == 2.5);
    T_EQ_INT(b1, 1);
    T_EQ_INT(b2, 0);
    T_EQ_STR(s, "hello"); /* 's' is NUL-terminated */
    T_EQ_INT(slen, 5);
    T_EQ_INT(Slen, 6);
    T_ASSERT(memcmp(S, "wor\0ld", 6) == 0);
    T_EQ_INT(xlen, sizeof bin);
    T_ASSERT(memcmp(x, bin, sizeof bin) == 0);
    T_ASSERT(nil == NULL);
    T_EQ_INT(nillen, 0);
    cg_msg_view_done(&v);
    cg_msg_view_done(&v); /* idempotent */
    cg_msg_free(m);
}

static void test_object_and_extra_elements(void)
{
    cg_msg_t *m = cg_msg_pack(CG_MSG_EXIT, "uisu", (uint64_t)5, (int64_t)2, "why", (uint64_t)77);
    uint64_t aid;
    int64_t reason;
    const char *detail;
    cg_msg_view_t v;
    /* Fewer letters than elements: newer senders may append fields. */
    T_EQ_INT(cg_msg_unpack(m, &v, "uis", &aid, &reason, &detail, NULL), CG_OK);
    T_EQ_INT(aid, 5);
    T_EQ_INT(reason, 2);
    T_EQ_STR(detail, "why");
    cg_msg_view_done(&v);

    const msgpack_object *o = NULL;
    T_EQ_INT(cg_msg_unpack(m, &v, "ooo", &o, &o, &o), CG_OK);
    T_EQ_INT(o->type, MSGPACK_OBJECT_STR);
    cg_msg_view_done(&v);
    cg_msg_free(m);
}

static void test_errors(void)
{
    cg_msg_view_t v;
    cg_msg_t *m = cg_msg_pack(1, "us", (uint64_t)1, "two");
    uint64_t u;
    int64_t i;
    const char *s;
    const void *x;
    size_t n;
    int b;
    double d;

    /* More letters than elements. */
    T_EQ_INT(cg_msg_unpack(m, &v, "usu", &u, &s, &n, &u), CG_EINVAL);
    cg_msg_view_done(&v);
    /* Mistyped: a string where a number is expected, and the reverse. */
    T_EQ_INT(cg_msg_unpack(m, &v, "uu", &u, &u), CG_EINVAL);
    cg_msg_view_done(&v);
    T_EQ_INT(cg_msg_unpack(m, &v, "s", &s, &n), CG_EINVAL);
    cg_msg_view_done(&v);
    T_EQ_INT(cg_msg_unpack(m, &v, "b", &b), CG_EINVAL);
    cg_msg_view_done(&v);
    T_EQ_INT(cg_msg_unpack(m, &v, "ux", &u, &x, &n), CG_OK); /* 'x' accepts str too */
    cg_msg_view_done(&v);
    cg_msg_free(m);

    /* A negative number is not a 'u'; a huge unsigned is not an 'i'. */
    m = cg_msg_pack(1, "iu", (int64_t)-1, (uint64_t)UINT64_MAX);
    T_EQ_INT(cg_msg_unpack(m, &v, "u", &u), CG_EINVAL);
    cg_msg_view_done(&v);
    T_EQ_INT(cg_msg_unpack(m, &v, "ii", &i, &i), CG_EINVAL);
    cg_msg_view_done(&v);
    T_EQ_INT(cg_msg_unpack(m, &v, "d", &d), CG_OK); /* integers read as doubles */
    T_ASSERT(d == -1.0);
    cg_msg_view_done(&v);
    cg_msg_free(m);

    /* Bin is not a string. */
    m = cg_msg_pack(1, "x", "ab", (size_t)2);
    T_EQ_INT(cg_msg_unpack(m, &v, "S", &s, &n), CG_EINVAL);
    cg_msg_view_done(&v);
    cg_msg_free(m);

    /* Garbage and truncated payloads. */
    m = cg_msg_new(1, "\xc1\xc1\xc1", 3); /* 0xc1 is never used in msgpack */
    T_EQ_INT(cg_msg_unpack(m, &v, "u", &u), CG_EINVAL);
    cg_msg_view_done(&v);
    cg_msg_free(m);
    m = cg_msg_new(1, "\x92\x01", 2); /* array of 2, one element present */
    T_EQ_INT(cg_msg_unpack(m, &v, "u", &u), CG_EINVAL);
    cg_msg_view_done(&v);
    cg_msg_free(m);
    m = cg_msg_new(1, "\x91\x01\x01", 3); /* a complete array, then trailing bytes */
    T_EQ_INT(cg_msg_unpack(m, &v, "u", &u), CG_EINVAL);
    cg_msg_view_done(&v);
    cg_msg_free(m);
    m = cg_msg_new(1, "\x91\x01", 2); /* the same without them is fine */
    T_EQ_INT(cg_msg_unpack(m, &v, "u", &u), CG_OK);
    T_EQ_INT(u, 1);
    cg_msg_view_done(&v);
    cg_msg_free(m);
    m = cg_msg_new(1, "\x01", 1); /* not an array */
    T_EQ_INT(cg_msg_unpack(m, &v, "", NULL), CG_EINVAL);
    cg_msg_view_done(&v);
    cg_msg_free(m);
}

static void test_well_formed(void)
{
    cg_msg_t *m = cg_msg_pack(7, "usSbdxi", (uint64_t)1 << 40, "text", "bytes", (size_t)5, 1, 2.5,
                              "\x01\x02", (size_t)2, (int64_t)-300);
    T_ASSERT(cg_msgpack_well_formed(m->payload, m->len));
    /* Every proper prefix is cut short somewhere. */
    for (uint32_t n = 0; n < m->len; n++)
        T_ASSERT(!cg_msgpack_well_formed(m->payload, n));
    cg_msg_free(m);
    /* Containers and lengths that claim more than the bytes left. */
    static const uint8_t map32[] = {0xdf, 0x06, 0x00, 0x00, 0x00};
    static const uint8_t arr16[] = {0xdc, 0xff, 0xff, 0x01, 0x02};
    static const uint8_t str32[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    static const uint8_t bin8[] = {0xc4, 0x03, 'a', 'b'};
    static const uint8_t never[] = {0xc1};
    static const uint8_t ok_map[] = {0x81, 0xa1, 'k', 0xc0};
    static const uint8_t ok_ext[] = {0xc7, 0x02, 0x05, 'x', 'y'};
    T_ASSERT(!cg_msgpack_well_formed(map32, sizeof map32));
    T_ASSERT(!cg_msgpack_well_formed(arr16, sizeof arr16));
    T_ASSERT(!cg_msgpack_well_formed(str32, sizeof str32));
    T_ASSERT(!cg_msgpack_well_formed(bin8, sizeof bin8));
    T_ASSERT(!cg_msgpack_well_formed(never, sizeof never));
    T_ASSERT(!cg_msgpack_well_formed("", 0));
    T_ASSERT(cg_msgpack_well_formed(ok_map, sizeof ok_map));
    T_ASSERT(cg_msgpack_well_formed(ok_ext, sizeof ok_ext));
}

static void test_large_payload(void)
{
    size_t n = 100000;
    char *big = cg_malloc(n);
    for (size_t k = 0; k < n; k++)
        big[k] = (char)(k * 31);
    cg_msg_t *m = cg_msg_pack(200, "xu", big, n, (uint64_t)12345);
    const void *x;
    size_t xlen;
    uint64_t u;
    cg_msg_view_t v;
    T_EQ_INT(cg_msg_unpack(m, &v, "xu", &x, &xlen, &u), CG_OK);
    T_EQ_INT(xlen, n);
    T_ASSERT(memcmp(x, big, n) == 0);
    T_EQ_INT(u, 12345);
    cg_msg_view_done(&v);
    cg_msg_free(m);
    free(big);
}

/* Packed at the size the format asks for, at every msgpack length-field
 * boundary: each string and binary comes back byte for byte. */
static void test_pack_sizes(void)
{
    const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536, 200000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        char *a = malloc(n + 1), *b = malloc(n + 1);
        for (size_t k = 0; k < n; k++) {
            a[k] = (char)('a' + k % 26);
            b[k] = (char)(k * 7);
        }
        a[n] = '\0';
        cg_msg_t *m = cg_msg_pack(7, "usSxidb", (uint64_t)UINT64_MAX, a, a, n, b, n,
                                  (int64_t)INT64_MIN, -1.5, 1);
        cg_msg_view_t v;
        uint64_t u = 0;
        int64_t x = 0;
        double d = 0;
        int flag = 0;
        const char *s1 = NULL, *s2 = NULL;
        const void *bin = NULL;
        size_t l1 = 0, l2 = 0, l3 = 0;
        T_EQ_INT(cg_msg_unpack(m, &v, "usSxidb", &u, &s1, &l1, &s2, &l2, &bin, &l3, &x, &d, &flag),
                 0);
        T_ASSERT(u == UINT64_MAX && x == INT64_MIN && d == -1.5 && flag == 1);
        T_EQ_INT(l1, n);
        T_EQ_INT(l2, n);
        T_EQ_INT(l3, n);
        T_ASSERT(strcmp(s1, a) == 0);
        T_ASSERT(memcmp(s2, a, n) == 0);
        T_ASSERT(n == 0 || memcmp(bin, b, n) == 0);
        cg_msg_view_done(&v);
        cg_msg_free(m);
        free(a);
        free(b);
    }
}

/* An element count past the zone's first chunk, with 's' copies in it. */
static cg_msg_t *wide_msg(int tag)
{
    char s[32];
    snprintf(s, sizeof s, "tag-%d", tag);
    return cg_msg_pack(8, "sssssssssssssssssssssssssssssssssssssssss", s, s, s, s, s, s, s, s, s, s,
                       s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s,
                       s, s, s, s, s);
}

static void check_wide(cg_msg_t *m, int tag, cg_msg_view_t *v)
{
    char want[32];
    snprintf(want, sizeof want, "tag-%d", tag);
    const char *s[3];
    T_EQ_INT(cg_msg_unpack(m, v, "sss", &s[0], NULL, &s[1], NULL, &s[2], NULL), 0);
    for (int i = 0; i < 3; i++)
        T_ASSERT(strcmp(s[i], want) == 0);
}

static void *views_on_a_thread(void *arg)
{
    int base = *(int *)arg;
    for (int round = 0; round < 50; round++) {
        cg_msg_t *m = wide_msg(base + round);
        cg_msg_view_t v;
        check_wide(m, base + round, &v);
        cg_msg_view_done(&v);
        cg_msg_free(m);
    }
    return NULL;
}

/* View zones are reused per thread: views nested deeper than the cache,
 * zones that grew and are reused for small views, views on threads that end
 * (ASan reports a leak if their cached zones are not freed). Every view
 * keeps its own strings while the others come and go. */
static void test_view_zones_reused(void)
{
    enum { DEPTH = 9 };
    cg_msg_t *m[DEPTH];
    cg_msg_view_t v[DEPTH];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < DEPTH; i++) {
            m[i] = wide_msg(round * 100 + i);
            check_wide(m[i], round * 100 + i, &v[i]);
        }
        for (int i = 0; i < DEPTH; i++) {
            /* the others' strings are intact */
            const char *s = NULL;
            cg_msg_view_t w;
            T_EQ_INT(cg_msg_unpack(m[i], &w, "s", &s, NULL), 0);
            char want[32];
            snprintf(want, sizeof want, "tag-%d", round * 100 + i);
            T_ASSERT(strcmp(s, want) == 0);
            cg_msg_view_done(&w);
        }
        for (int i = DEPTH - 1; i >= 0; i--) {
            cg_msg_view_done(&v[i]);
            cg_msg_view_done(&v[i]); /* twice is harmless */
            cg_msg_free(m[i]);
        }
        /* a small view in a zone that grew */
        cg_msg_t *small = cg_msg_pack(9, "s", "small");
        cg_msg_view_t sv;
        const char *s = NULL;
        T_EQ_INT(cg_msg_unpack(small, &sv, "s", &s, NULL), 0);
        T_ASSERT(strcmp(s, "small") == 0);
        cg_msg_view_done(&sv);
        cg_msg_free(small);
    }
    pthread_t th[4];
    int base[4];
    for (int i = 0; i < 4; i++) {
        base[i] = 1000 * (i + 1);
        T_EQ_INT(pthread_create(&th[i], NULL, views_on_a_thread, &base[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        T_EQ_INT(pthread_join(th[i], NULL), 0);
}

int main(void)
{
    T_RUN(test_new_raw);
    T_RUN(test_roundtrip_all_letters);
    T_RUN(test_object_and_extra_elements);
    T_RUN(test_errors);
    T_RUN(test_well_formed);
    T_RUN(test_large_payload);
    T_RUN(test_pack_sizes);
    T_RUN(test_view_zones_reused);
    T_DONE();
}
