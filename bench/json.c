/*
 * json.c — request-path JSON costs: json-c tree vs cg_jscan scanning/splicing.
 *
 * For each OpenClaw fixture body (tests/proto/fixtures/, compact as a client
 * sends it) and for the same body with its trimmed strings ("…[25816 chars]")
 * expanded back to their real length (~36 KB, the size OpenClaw really
 * sends), time:
 *   json-c        json_tokener_parse_ex + json_object_put (tokener reused)
 *   json-c+ser    the same plus setting "model" and serialising (what the
 *                 request path would pay if it edited through a tree)
 *   jscan         cg_jscan_object
 *   jscan+apply   cg_jscan_object + cg_jscan_apply setting "model"
 * Each figure is the best of 5 rounds of ~60 ms (the machine is shared; the
 * best round is the least disturbed one). Prints us/op and MB/s.
 *
 * Last row: bench/bodies/openclaw.json, the body bench/http.sh sends, when
 * present.
 *
 * Usage: bench/json [fixtures-dir]   (default tests/proto/fixtures; run from
 * the repo root, as bench/run.sh does)
 */
#include "proto/jscan.h"

#include <dirent.h>
#include <json.h>

#define ROUNDS 5
#define ROUND_NS 60000000ULL

static volatile size_t sink; /* keeps results alive so nothing is optimised out */

typedef void (*op_fn)(const char *s, size_t len);

static json_tokener *tok;
static cg_buf_t out;

static void op_jsonc(const char *s, size_t len)
{
    json_tokener_reset(tok);
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    cg_assert(o != NULL);
    sink += (size_t)json_object_object_length(o);
    json_object_put(o);
}

static void op_jsonc_ser(const char *s, size_t len)
{
    json_tokener_reset(tok);
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    cg_assert(o != NULL);
    json_object_object_add(o, "model", json_object_new_string("provider/other-model"));
    size_t n;
    json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                      &n);
    sink += n;
    json_object_put(o);
}

static void op_jscan(const char *s, size_t len)
{
    cg_jscan_t js;
    cg_jerr_t err;
    int rc = cg_jscan_object(&js, s, len, 64, &err);
    cg_assert(rc == 0);
    sink += js.n_members;
}

static void op_jscan_apply(const char *s, size_t len)
{
    cg_jscan_t js;
    cg_jerr_t err;
    int rc = cg_jscan_object(&js, s, len, 64, &err);
    cg_assert(rc == 0);
    static const char model[] = "\"provider/other-model\"";
    cg_jedit_t e = {"model", model, sizeof(model) - 1};
    cg_buf_reset(&out);
    cg_jscan_apply(&js, &e, 1, &out);
    sink += out.len;
}

/* Best-of-rounds time per op, in ns. */
static double time_op(op_fn fn, const char *s, size_t len)
{
    double best = 1e18;
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = cg_now_ns(), t;
        uint64_t iters = 0;
        do {
            for (int i = 0; i < 16; i++)
                fn(s, len);
            iters += 16;
            t = cg_now_ns();
        } while (t - t0 < ROUND_NS);
        double per = (double)(t - t0) / (double)iters;
        if (per < best)
            best = per;
    }
    return best;
}

/* Text like OpenClaw's system prompt: markdown, newlines, quotes, a few
 * non-ASCII characters, so the string loop meets escapes and UTF-8. */
static void filler(cg_buf_t *b, size_t n)
{
    static const char *lines[] = {
        "\n## Tooling\nTools are policy-filtered. Names are case-sensitive; call them exactly.\n",
        "- read: Read file contents. Use for \"small\" files; prefer ranges for large ones.\n",
        "- exec: Run a shell command in the workspace \xe2\x80\x94 never `rm -rf /`.\n",
        "- apply_patch: Patch one/many files. Input requires *** Begin Patch and *** End "
        "Patch.\n",
        "When unsure, ask. Keep answers short \xe2\x80\xa6 unless the user wants detail.\n",
        "\tPaths: C:\\Users\\agent\\work or /home/agent/work (both work).\n",
    };
    size_t start = b->len;
    for (size_t i = 0; b->len - start < n; i++)
        cg_buf_puts(b, lines[i % CG_ARRAY_LEN(lines)]);
    /* Cut back to n bytes on a character boundary. */
    size_t len = start + n;
    while (len > start && ((unsigned char)b->data[len] & 0xC0) == 0x80)
        len--;
    b->len = len;
    b->data[len] = '\0';
}

static char *serialise(json_object *o, size_t *len);

/* The longest string in the tree (the system prompt). */
static void find_longest(json_object *o, json_object **best)
{
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v)
        {
            (void)k;
            find_longest(v, best);
        }
    } else if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            find_longest(json_object_array_get_idx(o, i), best);
    } else if (json_object_is_type(o, json_type_string)) {
        if (!*best || json_object_get_string_len(o) > json_object_get_string_len(*best))
            *best = o;
    }
}

/* Expand every string ending in "…[N chars]" to about N bytes of text. */
static void expand_strings(json_object *o)
{
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v)
        {
            (void)k;
            expand_strings(v);
        }
    } else if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            expand_strings(json_object_array_get_idx(o, i));
    } else if (json_object_is_type(o, json_type_string)) {
        const char *s = json_object_get_string(o);
        const char *mark = strstr(s, "\xe2\x80\xa6[");
        size_t n;
        if (!mark || sscanf(mark, "\xe2\x80\xa6[%zu chars]", &n) != 1)
            return;
        cg_buf_t b = {0};
        cg_buf_append(&b, s, (size_t)(mark - s));
        if (n > b.len)
            filler(&b, n - b.len);
        json_object_set_string_len(o, b.data, (int)b.len);
        cg_buf_free(&b);
    }
}

/* The fixtures keep one tool and a note "… 11 tools total: a, b, ...":
 * put the other tools back as copies of the first under their names. */
static void expand_tools(json_object *body)
{
    json_object *tools;
    if (!json_object_object_get_ex(body, "tools", &tools) ||
        !json_object_is_type(tools, json_type_array) || json_object_array_length(tools) != 2)
        return;
    json_object *first = json_object_array_get_idx(tools, 0);
    const char *note = json_object_get_string(json_object_array_get_idx(tools, 1));
    const char *list = strstr(note, "total: ");
    if (!list)
        return;
    char *names = cg_strdup(list + 7);
    json_object_array_del_idx(tools, 1, 1);
    char *save = NULL;
    for (char *name = strtok_r(names, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
        if (strcmp(name, "apply_patch") == 0)
            continue;
        json_object *copy = NULL;
        json_object_deep_copy(first, &copy, NULL);
        json_object *fn = copy, *inner;
        if (json_object_object_get_ex(copy, "function", &inner))
            fn = inner; /* chat completions nest it, responses do not */
        json_object_object_add(fn, "name", json_object_new_string(name));
        json_object_array_add(tools, copy);
    }
    cg_free(names);
}

/* Make the body what OpenClaw sent: trimmed strings and tools restored,
 * then the system prompt padded so the compact body has the recorded
 * content-length (the trimmed counts are JS characters, not JSON bytes). */
static char *expand(json_object *root, json_object *body, size_t *len)
{
    expand_strings(body);
    expand_tools(body);
    char *s = serialise(body, len);
    json_object *headers, *cl;
    if (!json_object_object_get_ex(root, "headers", &headers) ||
        !json_object_object_get_ex(headers, "content-length", &cl))
        return s;
    size_t want = (size_t)atol(json_object_get_string(cl));
    json_object *longest = NULL;
    find_longest(body, &longest);
    if (!longest || *len >= want)
        return s;
    cg_buf_t b = {0};
    cg_buf_puts(&b, json_object_get_string(longest));
    filler(&b, want - *len);
    json_object_set_string_len(longest, b.data, (int)b.len);
    cg_buf_free(&b);
    cg_free(s);
    return serialise(body, len);
}

static char *serialise(json_object *o, size_t *len)
{
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
    return cg_strndup(s, *len);
}

static void row(const char *name, const char *body, size_t len)
{
    static const struct {
        const char *label;
        op_fn fn;
    } ops[] = {
        {"json-c", op_jsonc},
        {"json-c+ser", op_jsonc_ser},
        {"jscan", op_jscan},
        {"jscan+apply", op_jscan_apply},
    };
    printf("%-44s %6zu", name, len);
    for (size_t i = 0; i < CG_ARRAY_LEN(ops); i++) {
        double ns = time_op(ops[i].fn, body, len);
        printf("  %8.2f %6.0f", ns / 1000.0, (double)len / ns * 1000.0);
    }
    printf("\n");
    fflush(stdout);
}

/* The whole file, or NULL if it cannot be read (optional inputs). */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    cg_buf_t b = {0};
    char tmp[8192];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        cg_buf_append(&b, tmp, n);
    fclose(f);
    /* Trailing newline of the file is not part of the JSON body. */
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.len--;
    cg_buf_append(&b, "", 0);
    return cg_buf_steal(&b, len);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int only_json(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/proto/fixtures";
    struct dirent **names;
    int n = scandir(dir, &names, only_json, by_name);
    if (n <= 0) {
        fprintf(stderr, "bench/json: no fixtures in %s (run from the repo root)\n", dir);
        return 1;
    }
    tok = json_tokener_new_ex(64);
    printf("JSON on the request path: us/op and MB/s per operation (best of %d rounds;\n"
           "taken on a shared 2-core machine, under whatever load it has)\n\n",
           ROUNDS);
    printf("%-44s %6s  %15s  %15s  %15s  %15s\n", "body", "bytes", "json-c", "json-c+ser", "jscan",
           "jscan+apply");
    printf("%-44s %6s  %8s %6s  %8s %6s  %8s %6s  %8s %6s\n", "", "", "us", "MB/s", "us", "MB/s",
           "us", "MB/s", "us", "MB/s");
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            char *path = cg_sprintf("%s/%s", dir, names[i]->d_name);
            json_object *root = json_object_from_file(path), *body = NULL;
            if (!root || !json_object_object_get_ex(root, "body", &body)) {
                fprintf(stderr, "bench/json: %s has no body\n", path);
                return 1;
            }
            size_t len;
            char *s = pass ? expand(root, body, &len) : serialise(body, &len);
            char *label = cg_sprintf("%.*s%s", (int)strcspn(names[i]->d_name, "."),
                                     names[i]->d_name, pass ? " (expanded)" : "");
            row(label, s, len);
            cg_free(label);
            cg_free(s);
            json_object_put(root);
            cg_free(path);
        }
        printf("\n");
    }
    /* The body bench/http.sh sends (generated from the same fixture). */
    size_t blen;
    char *body = read_text("bench/bodies/openclaw.json", &blen);
    if (body) {
        row("bench/bodies/openclaw.json", body, blen);
        cg_free(body);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    json_tokener_free(tok);
    cg_buf_free(&out);
    return 0;
}
