/*
 * t.h — the unit-test harness every C test binary uses.
 *
 * A test binary is a main() that calls T_RUN(fn) for each case. Each case
 * prints one line, "ok - name" or "not ok - name", which tests/run.sh counts;
 * a failing check prints its file, line and expression (or a message) first.
 * A check failure ends the current case, not the binary. The binary exits 1
 * when any case failed, and a crash (signal) is counted by the runner.
 */
#ifndef CG_T_H
#define CG_T_H

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed, t_failed;
static jmp_buf t_jmp;

#define T_FAIL_(...)                                                                               \
    do {                                                                                           \
        fprintf(stdout, "#   %s:%d: ", __FILE__, __LINE__);                                        \
        fprintf(stdout, __VA_ARGS__);                                                              \
        fprintf(stdout, "\n");                                                                     \
        fflush(stdout);                                                                            \
        longjmp(t_jmp, 1);                                                                         \
    } while (0)

#define T_ASSERT(e)                                                                                \
    do {                                                                                           \
        if (!(e))                                                                                  \
            T_FAIL_("check failed: %s", #e);                                                       \
    } while (0)

#define T_ASSERTF(e, ...)                                                                          \
    do {                                                                                           \
        if (!(e))                                                                                  \
            T_FAIL_(__VA_ARGS__);                                                                  \
    } while (0)

#define T_EQ_INT(a, b)                                                                             \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ != t_b_)                                                                          \
            T_FAIL_("%s == %s: %lld != %lld", #a, #b, t_a_, t_b_);                                 \
    } while (0)

#define T_EQ_STR(a, b)                                                                             \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                                             \
            T_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, t_a_ ? t_a_ : "(null)",                  \
                    t_b_ ? t_b_ : "(null)");                                                       \
    } while (0)

#define T_CONTAINS(hay, needle)                                                                    \
    do {                                                                                           \
        const char *t_h_ = (hay), *t_n_ = (needle);                                                \
        if (!t_h_ || !strstr(t_h_, t_n_))                                                          \
            T_FAIL_("\"%s\" does not contain \"%s\"", t_h_ ? t_h_ : "(null)", t_n_);               \
    } while (0)

#define T_RUN(fn)                                                                                  \
    do {                                                                                           \
        if (setjmp(t_jmp) == 0) {                                                                  \
            fn();                                                                                  \
            t_passed++;                                                                            \
            fprintf(stdout, "ok - %s\n", #fn);                                                     \
        } else {                                                                                   \
            t_failed++;                                                                            \
            fprintf(stdout, "not ok - %s\n", #fn);                                                 \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

#define T_DONE()                                                                                   \
    do {                                                                                           \
        fprintf(stdout, "# %d passed, %d failed\n", t_passed, t_failed);                           \
        return t_failed ? 1 : 0;                                                                   \
    } while (0)

#endif
