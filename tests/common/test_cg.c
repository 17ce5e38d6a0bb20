/* Unit tests for common/cg.c: byte buffers, strings, clocks, error names. */
#include "common/cg.h"
#include "tests/t.h"

static void buf_append_and_grow(void)
{
    cg_buf_t b = {0};
    for (int i = 0; i < 1000; i++)
        cg_buf_append(&b, "abc", 3);
    T_EQ_INT(b.len, 3000);
    T_ASSERT(b.cap > b.len);
    T_EQ_INT(b.data[b.len], '\0');
    T_ASSERT(memcmp(b.data + 2997, "abc", 3) == 0);
    cg_buf_free(&b);
    T_ASSERT(b.data == NULL && b.len == 0 && b.cap == 0);
}

static void buf_printf_and_consume(void)
{
    cg_buf_t b = {0};
    cg_buf_printf(&b, "%s-%d", "x", 42);
    cg_buf_printf(&b, "%0300d", 7); /* longer than any initial capacity */
    T_EQ_INT(b.len, 4 + 300);
    T_ASSERT(strncmp(b.data, "x-42000", 7) == 0);
    cg_buf_consume(&b, 4);
    T_EQ_INT(b.len, 300);
    T_EQ_INT(b.data[299], '7');
    cg_buf_consume(&b, 1000);
    T_EQ_INT(b.len, 0);
    T_EQ_STR(b.data, "");
    cg_buf_free(&b);
}

/* One formatting pass into the room there is, a second one only when it does
 * not fit: at every length around the room, the text is what snprintf makes
 * and the buffer stays NUL-terminated. */
static void buf_printf_at_the_edge(void)
{
    for (size_t pre = 0; pre < 140; pre += 7) {
        for (int w = 1; w < 200; w += 3) {
            cg_buf_t b = {0};
            for (size_t i = 0; i < pre; i++)
                cg_buf_append(&b, "p", 1);
            cg_buf_printf(&b, "<%0*d>", w, w);
            char want[256];
            int n = snprintf(want, sizeof want, "<%0*d>", w, w);
            T_EQ_INT(b.len, pre + (size_t)n);
            T_ASSERT(memcmp(b.data + pre, want, (size_t)n) == 0);
            T_EQ_INT(b.data[b.len], '\0');
            cg_buf_free(&b);
        }
    }
}

/* Decimal digits as printf writes them, extremes included. */
static void buf_put_numbers(void)
{
    const int64_t is[] = {0, 1, -1, 9, 10, -10, 429, 1234567890123LL, INT64_MAX, INT64_MIN};
    const uint64_t us[] = {0, 7, 10, 99, 100, 65536, UINT64_MAX};
    for (size_t i = 0; i < CG_ARRAY_LEN(is); i++) {
        cg_buf_t b = {0};
        cg_buf_puts(&b, "x=");
        cg_buf_put_i64(&b, is[i]);
        char want[40];
        snprintf(want, sizeof want, "x=%lld", (long long)is[i]);
        T_EQ_STR(b.data, want);
        cg_buf_free(&b);
    }
    for (size_t i = 0; i < CG_ARRAY_LEN(us); i++) {
        cg_buf_t b = {0};
        cg_buf_put_u64(&b, us[i]);
        char want[40];
        snprintf(want, sizeof want, "%llu", (unsigned long long)us[i]);
        T_EQ_STR(b.data, want);
        cg_buf_free(&b);
    }
}

static void buf_steal_keeps_nul(void)
{
    cg_buf_t b = {0};
    size_t len = 99;
    char *empty = cg_buf_steal(&b, &len);
    T_EQ_INT(len, 0);
    T_EQ_STR(empty, "");
    cg_free(empty);
    cg_buf_append(&b, "a\0b", 3);
    char *s = cg_buf_steal(&b, &len);
    T_EQ_INT(len, 3);
    T_ASSERT(s[1] == '\0' && s[2] == 'b' && s[3] == '\0');
    T_ASSERT(b.data == NULL);
    cg_free(s);
}

static void strings(void)
{
    char *a = cg_strndup("hello world", 5);
    T_EQ_STR(a, "hello");
    char *b = cg_sprintf("%s/%s", "p", "m");
    T_EQ_STR(b, "p/m");
    cg_free(a);
    cg_free(b);
}

static void clocks_move_forward(void)
{
    uint64_t t0 = cg_now_ns();
    uint64_t t1 = cg_now_ns();
    T_ASSERT(t1 >= t0);
    T_ASSERT(cg_wall_ms() > 1600000000000LL); /* after 2020 */
}

static void error_names(void)
{
    T_EQ_STR(cg_strerror(CG_OK), "ok");
    T_EQ_STR(cg_strerror(CG_EFULL), "queue full");
    T_EQ_STR(cg_strerror(-12345), "unknown error");
}

static void test_grow_zeroed(void)
{
    int *a = NULL;
    size_t cap = 0;
    cg_grow_zeroed((void **)&a, &cap, 100, sizeof *a);
    T_EQ_INT(cap, 128);
    int zeros = 1;
    for (size_t i = 0; i < cap; i++)
        zeros &= a[i] == 0;
    T_ASSERT(zeros);
    a[7] = 42;
    cg_grow_zeroed((void **)&a, &cap, 5, sizeof *a); /* fits: nothing changes */
    T_EQ_INT(cap, 128);
    cg_grow_zeroed((void **)&a, &cap, 300, sizeof *a);
    T_EQ_INT(cap, 512);
    T_EQ_INT(a[7], 42);
    T_EQ_INT(a[300], 0);
    T_EQ_INT(a[511], 0);
    free(a);
}

int main(void)
{
    T_RUN(buf_append_and_grow);
    T_RUN(buf_printf_and_consume);
    T_RUN(buf_printf_at_the_edge);
    T_RUN(buf_put_numbers);
    T_RUN(buf_steal_keeps_nul);
    T_RUN(strings);
    T_RUN(clocks_move_forward);
    T_RUN(error_names);
    T_RUN(test_grow_zeroed);
    T_DONE();
}
