/*
 * msg.c — message blocks and their msgpack payloads.
 *
 * DESIGN
 * A message is a single malloc'd block: the cg_msg_t header immediately
 * followed by the payload bytes. One block means one allocation on the send
 * path and one free on the receive path, and the mailbox can link it through
 * the header's ck_stack_entry_t without any extra node.
 *
 * cg_msg_pack encodes straight into the growing block (a msgpack_packer whose
 * write callback appends to a cg_buf_t that starts with room for the header),
 * so the payload is never copied. The block may keep a little slack at its
 * end; len says how much of it is payload.
 *
 * cg_msg_unpack decodes with msgpack_unpack into a small zone, reused per
 * thread (see "view zones" below). msgpack-c lets str/bin
 * objects point into the input, i.e. into the message itself, so a view is
 * valid while both the view and the message live. 's' is the exception: it is
 * copied NUL-terminated into the view's zone, because callers use it as a C
 * string and msgpack strings carry no terminator.
 */
#include "mailbox/msg.h"

#include <pthread.h>
#include <stdarg.h>

/* Header bytes reserved at the front of the packing buffer. */
#define HDR sizeof(cg_msg_t)
/* First chunk of a view's zone (bytes). */
#define ZONE_CHUNK 512

static int buf_write(void *data, const char *p, size_t n)
{
    cg_buf_append((cg_buf_t *)data, p, n);
    return 0;
}

cg_msg_t *cg_msg_new(uint32_t type, const void *payload, size_t len)
{
    cg_assert(len <= UINT32_MAX);
    cg_msg_t *m = cg_malloc(HDR + len);
    memset(m, 0, HDR);
    m->type = type;
    m->len = (uint32_t)len;
    if (len)
        memcpy(m->payload, payload, len);
    return m;
}

/* An upper bound of the payload cg_msg_pack will encode for fmt and ap:
 * msgpack headers at their widest plus the bytes. */
static size_t packed_bound(const char *fmt, va_list ap)
{
    size_t n = 5; /* array32 */
    for (const char *f = fmt; *f; f++) {
        switch (*f) {
        case 'u':
            (void)va_arg(ap, uint64_t);
            n += 9;
            break;
        case 'i':
            (void)va_arg(ap, int64_t);
            n += 9;
            break;
        case 'd':
            (void)va_arg(ap, double);
            n += 9;
            break;
        case 'b':
            (void)va_arg(ap, int);
            n += 1;
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            n += 5 + (str ? strlen(str) : 0);
            break;
        }
        case 'S':
        case 'x':
            (void)va_arg(ap, const void *);
            n += 5 + va_arg(ap, size_t);
            break;
        default:
            cg_assert(!"cg_msg_pack: unknown format letter");
        }
    }
    return n;
}

cg_msg_t *cg_msg_pack(uint32_t type, const char *fmt, ...)
{
    /* Sized once: the block is allocated at its final size, never grown. */
    va_list sz;
    va_start(sz, fmt);
    size_t bound = packed_bound(fmt, sz);
    va_end(sz);
    cg_buf_t b = {0};
    cg_buf_reserve(&b, HDR + bound);
    memset(b.data, 0, HDR);
    b.len = HDR;

    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, buf_write);
    msgpack_pack_array(&pk, strlen(fmt));

    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        switch (*f) {
        case 'u':
            msgpack_pack_uint64(&pk, va_arg(ap, uint64_t));
            break;
        case 'i':
            msgpack_pack_int64(&pk, va_arg(ap, int64_t));
            break;
        case 'd':
            msgpack_pack_double(&pk, va_arg(ap, double));
            break;
        case 'b':
            if (va_arg(ap, int))
                msgpack_pack_true(&pk);
            else
                msgpack_pack_false(&pk);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) {
                msgpack_pack_nil(&pk);
                break;
            }
            size_t n = strlen(s);
            msgpack_pack_str(&pk, n);
            msgpack_pack_str_body(&pk, s, n);
            break;
        }
        case 'S': {
            const char *s = va_arg(ap, const char *);
            size_t n = va_arg(ap, size_t);
            if (!s) {
                msgpack_pack_nil(&pk);
                break;
            }
            msgpack_pack_str(&pk, n);
            msgpack_pack_str_body(&pk, s, n);
            break;
        }
        case 'x': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            if (!p) {
                msgpack_pack_nil(&pk);
                break;
            }
            msgpack_pack_bin(&pk, n);
            msgpack_pack_bin_body(&pk, p, n);
            break;
        }
        default:
            /* A wrong letter is a programming error in the caller: the
             * varargs cannot be walked any further. */
            cg_assert(!"cg_msg_pack: unknown format letter");
        }
    }
    va_end(ap);

    cg_assert(b.len - HDR <= UINT32_MAX);
    cg_msg_t *m = (cg_msg_t *)b.data;
    m->type = type;
    m->len = (uint32_t)(b.len - HDR);
    return m;
}

/* Store a str/bin/nil object into (*pp, *lenp); copy NUL-terminated into the
 * zone when want_cstr. Returns false for any other type. */
static bool take_bytes(msgpack_zone *z, const msgpack_object *o, bool allow_str, bool allow_bin,
                       bool want_cstr, const void **pp, size_t *lenp)
{
    const char *p;
    size_t n;
    if (o->type == MSGPACK_OBJECT_NIL) {
        p = NULL;
        n = 0;
    } else if (allow_str && o->type == MSGPACK_OBJECT_STR) {
        p = o->via.str.ptr;
        n = o->via.str.size;
    } else if (allow_bin && o->type == MSGPACK_OBJECT_BIN) {
        p = o->via.bin.ptr;
        n = o->via.bin.size;
    } else {
        return false;
    }
    if (p && want_cstr) {
        char *c = msgpack_zone_malloc(z, n + 1);
        if (!c)
            return false;
        memcpy(c, p, n);
        c[n] = '\0';
        p = c;
    }
    *pp = p;
    if (lenp)
        *lenp = n;
    return true;
}

/* ---- view zones ----
 * A view's zone holds only arrays/maps of objects (strings point into the
 * message) and grows in chunks if needed. Each thread keeps a few finished
 * zones, cleared (msgpack_zone_clear keeps the first chunk), for its next
 * views: a request's five decodes then cost no malloc and no free (a new
 * zone is two of each). Nested views simply take another zone. The cache
 * is freed when its thread ends. */

#define ZONE_CACHE 4

typedef struct zone_cache {
    msgpack_zone *z[ZONE_CACHE];
    int n;
    bool keyed; /* the thread key's destructor will free it */
} zone_cache_t;

static _Thread_local zone_cache_t zcache;
static pthread_key_t zcache_key;
static pthread_once_t zcache_once = PTHREAD_ONCE_INIT;

static void zcache_free(void *p)
{
    zone_cache_t *c = p;
    while (c->n > 0)
        msgpack_zone_free(c->z[--c->n]);
}

static bool zcache_key_ok; /* written once, under zcache_once */

static void zcache_init(void)
{
    zcache_key_ok = pthread_key_create(&zcache_key, zcache_free) == 0;
    if (!zcache_key_ok)
        cg_error("msg: no thread key; view zones are not cached");
}

static msgpack_zone *zone_get(void)
{
    if (zcache.n > 0)
        return zcache.z[--zcache.n];
    msgpack_zone *z = msgpack_zone_new(ZONE_CHUNK);
    if (!z) {
        cg_error("msg: out of memory");
        abort();
    }
    return z;
}

static void zone_put(msgpack_zone *z)
{
    /* A zone that grew beyond its first chunk gives the rest back here. */
    msgpack_zone_clear(z);
    if (!zcache.keyed) {
        /* First use on this thread: the key's destructor frees the cache
         * when the thread ends. */
        pthread_once(&zcache_once, zcache_init);
        zcache.keyed = zcache_key_ok && pthread_setspecific(zcache_key, &zcache) == 0;
    }
    if (zcache.keyed && zcache.n < ZONE_CACHE)
        zcache.z[zcache.n++] = z;
    else
        msgpack_zone_free(z);
}

int cg_msg_unpack(const cg_msg_t *m, cg_msg_view_t *v, const char *fmt, ...)
{
    msgpack_unpacked_init(&v->up);
    v->ready = 1;
    v->up.zone = zone_get();
    size_t off = 0;
    msgpack_unpack_return r =
        msgpack_unpack((const char *)m->payload, m->len, &off, v->up.zone, &v->up.data);
    if (r != MSGPACK_UNPACK_SUCCESS) /* incl. trailing bytes: one array, nothing else */
        return CG_EINVAL;
    const msgpack_object *root = &v->up.data;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < strlen(fmt))
        return CG_EINVAL;

    int rc = CG_OK;
    va_list ap;
    va_start(ap, fmt);
    const msgpack_object *o = root->via.array.ptr;
    for (const char *f = fmt; *f && rc == CG_OK; f++, o++) {
        switch (*f) {
        case 'u': {
            uint64_t *out = va_arg(ap, uint64_t *);
            if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                *out = o->via.u64;
            else
                rc = CG_EINVAL;
            break;
        }
        case 'i': {
            int64_t *out = va_arg(ap, int64_t *);
            if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                *out = o->via.i64;
            else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
                *out = (int64_t)o->via.u64;
            else
                rc = CG_EINVAL;
            break;
        }
        case 'd': {
            double *out = va_arg(ap, double *);
            if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
                *out = o->via.f64;
            else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                *out = (double)o->via.u64;
            else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                *out = (double)o->via.i64;
            else
                rc = CG_EINVAL;
            break;
        }
        case 'b': {
            int *out = va_arg(ap, int *);
            if (o->type == MSGPACK_OBJECT_BOOLEAN)
                *out = o->via.boolean ? 1 : 0;
            else
                rc = CG_EINVAL;
            break;
        }
        case 's':
        case 'S':
        case 'x': {
            const void **pp = va_arg(ap, const void **);
            size_t *lenp = va_arg(ap, size_t *);
            bool ok = take_bytes(v->up.zone, o, true, *f == 'x', *f == 's', pp, lenp);
            if (!ok)
                rc = CG_EINVAL;
            break;
        }
        case 'o': {
            const msgpack_object **out = va_arg(ap, const msgpack_object **);
            *out = o;
            break;
        }
        default:
            cg_assert(!"cg_msg_unpack: unknown format letter");
        }
    }
    va_end(ap);
    return rc;
}

void cg_msg_view_done(cg_msg_view_t *v)
{
    if (v->ready && v->up.zone)
        zone_put(v->up.zone);
    v->up.zone = NULL;
    v->ready = 0;
}

void cg_msg_free(cg_msg_t *m)
{
    free(m);
}

/* Big-endian unsigned of n bytes at p. */
static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

bool cg_msgpack_well_formed(const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t pos = 0;
    uint64_t todo = 1; /* objects still to read */
    while (todo > 0) {
        if (pos >= len)
            return false;
        uint8_t t = p[pos++];
        todo--;
        size_t left = len - pos;
        uint64_t n = 0;     /* elements of a container (map: keys and values) */
        uint64_t skip = 0;  /* bytes of a scalar's body */
        int lenb = 0;       /* bytes of a length field */
        uint64_t extra = 0; /* bytes after the length field besides the body */
        bool container = false;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            /* fixint, nil, bool */
        } else if (t >= 0x80 && t <= 0x8f) {
            n = 2u * (t & 0x0f);
            container = true;
        } else if (t >= 0x90 && t <= 0x9f) {
            n = t & 0x0f;
            container = true;
        } else if (t >= 0xa0 && t <= 0xbf) {
            skip = t & 0x1f;
        } else {
            switch (t) {
            case 0xc4:
            case 0xd9:
                lenb = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                lenb = 2;
                break; /* bin16, str16 */
            case 0xc6:
            case 0xdb:
                lenb = 4;
                break; /* bin32, str32 */
            case 0xc7:
                lenb = 1;
                extra = 1;
                break; /* ext8 */
            case 0xc8:
                lenb = 2;
                extra = 1;
                break; /* ext16 */
            case 0xc9:
                lenb = 4;
                extra = 1;
                break; /* ext32 */
            case 0xca:
                skip = 4;
                break; /* float32 */
            case 0xcb:
                skip = 8;
                break; /* float64 */
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4:
                skip = 2;
                break; /* fixext1 */
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
                lenb = 2;
                container = true;
                break; /* array16 */
            case 0xdd:
                lenb = 4;
                container = true;
                break; /* array32 */
            case 0xde:
                lenb = 2;
                container = true;
                break; /* map16 */
            case 0xdf:
                lenb = 4;
                container = true;
                break; /* map32 */
            default:
                return false; /* 0xc1: never used */
            }
            if (lenb) {
                if (left < (size_t)lenb)
                    return false;
                uint64_t v = be(p + pos, lenb);
                pos += (size_t)lenb;
                left -= (size_t)lenb;
                if (container)
                    n = (t == 0xde || t == 0xdf) ? 2 * v : v;
                else
                    skip = v + extra;
            }
        }
        if (container) {
            /* Every element takes at least one byte. */
            if (n > left || todo + n > len)
                return false;
            todo += n;
        } else {
            if (skip > left)
                return false;
            pos += (size_t)skip;
        }
    }
    return true;
}
