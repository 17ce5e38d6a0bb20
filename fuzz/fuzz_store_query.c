/*
 * fuzz_store_query.c — the session store's HTTP query surface: paths,
 * URL-encoded query strings, filters, times, paging, FTS search text.
 *
 * Input: up to the first NUL is the path (prefixed with "/v1/" unless it
 * starts with '/'), the rest the raw query string, against a database made
 * once per process (empty: the parsers and query building are what is under
 * test). Every input must get an answer (200, 400, 404, 405 or 500) with a
 * JSON body, never a crash or a hang.
 */
#include "store/store.h"

#include <json.h>
#include <stdint.h>
#include <unistd.h>

static cg_store_ro_t *ro;
static char db_path[64];

static void remove_db(void)
{
    if (ro)
        cg_store_ro_close(ro);
    char p[80];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db_path, suffix[i]);
        unlink(p);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char *path = db_path;
    snprintf(db_path, sizeof db_path, "/tmp/cg-fuzz-store-%d.db", (int)getpid());
    unlink(path);
    atexit(remove_db);
    char err[256];
    if (cg_store_prepare(path, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_store_query: %s\n", err);
        abort();
    }
    ro = cg_store_ro_open(path, err, sizeof err);
    if (!ro) {
        fprintf(stderr, "fuzz_store_query: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    const char *s = (const char *)data;
    const char *nul = memchr(s, '\0', size);
    size_t plen = nul ? (size_t)(nul - s) : size;
    cg_buf_t path = {0}, query = {0}, out = {0};
    if (plen == 0 || s[0] != '/')
        cg_buf_puts(&path, "/v1/");
    cg_buf_append(&path, s, plen);
    if (nul)
        cg_buf_append(&query, nul + 1, size - plen - 1);
    unsigned status = 0;
    int rc = cg_store_http(ro, "GET", path.data, nul ? query.data : NULL, &out, &status);
    if (rc == 0) {
        if (status != 200 && status != 400 && status != 404 && status != 405 && status != 500)
            abort();
        json_object *j = json_tokener_parse(out.data ? out.data : "");
        if (!j)
            abort(); /* every answer is JSON */
        json_object_put(j);
    } else if (rc != CG_ENOENT) {
        abort();
    }
    cg_buf_free(&path);
    cg_buf_free(&query);
    cg_buf_free(&out);
    return 0;
}
