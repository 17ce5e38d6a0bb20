/*
 * jscan_port.h — a second copy of proto/jscan.c with the portable (SWAR)
 * string loop and no SIMD, under port_* names, for tests and fuzz targets
 * that compare the library's SIMD scans with it, and an oracle both use.
 * Include it once, from one .c file; every public function of jscan.c needs its rename here (a
 * missing one is a duplicate symbol at link time).
 */
#ifndef CG_TESTS_JSCAN_PORT_H
#define CG_TESTS_JSCAN_PORT_H

#define CG_JSCAN_NO_SIMD 1
#define cg_jscan_object port_jscan_object
#define cg_jscan_object_trusted port_jscan_object_trusted
#define cg_jscan_validate port_jscan_validate
#define cg_jscan_get port_jscan_get
#define cg_jscan_string port_jscan_string
#define cg_json_quote port_json_quote
#define cg_jscan_apply port_jscan_apply
#define cg_jscan_find_quoted port_jscan_find_quoted
#define cg_jscan_table_pack port_jscan_table_pack
#define cg_jscan_table_load port_jscan_table_load
#define cg_jscan_use_avx2 port_jscan_use_avx2
#include "proto/jscan.c"
#undef cg_jscan_object
#undef cg_jscan_object_trusted
#undef cg_jscan_validate
#undef cg_jscan_get
#undef cg_jscan_string
#undef cg_json_quote
#undef cg_jscan_apply
#undef cg_jscan_find_quoted
#undef cg_jscan_table_pack
#undef cg_jscan_table_load
#undef cg_jscan_use_avx2
#undef CG_JSCAN_NO_SIMD

/* Independent oracle for CG_JSCAN_SAW_*: is word (quotes included) in the
 * valid JSON s[0..n) as a whole string? Its bytes are, exactly where the
 * first quote is not escaped (an even run of backslashes before it): an
 * unescaped quote followed by a word is an opening quote. An escaped one is
 * inside a string ("say \"developer" holds the bytes without being the word). */
static inline bool whole_string_in(const char *s, size_t n, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), word, wl)) != NULL; p++) {
        size_t run = 0;
        while (p - run > s && p[-1 - (ptrdiff_t)run] == '\\')
            run++;
        if (run % 2 == 0)
            return true;
    }
    return false;
}

#endif
