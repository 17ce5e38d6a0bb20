/*
 * fuzz_config.c — libFuzzer target for the whole config loader: JSON5,
 * ${VAR} substitution, schema, catalog merge, resolution and describe.
 *
 * A fixed fake environment supplies a few variables (one of them a "secret")
 * so substitution paths run; no message or describe output may contain the
 * secret. Resolution is exercised with the input's own bytes as refs.
 */
#include "config/config.h"

#define SECRET "sk-FUZZ-SECRET-VALUE"

static const char *fuzz_getenv(const char *name)
{
    if (strcmp(name, "KEY") == 0 || strcmp(name, "ANTHROPIC_API_KEY") == 0)
        return SECRET;
    if (strcmp(name, "HOST") == 0)
        return "127.0.0.1:8000";
    if (strcmp(name, "EMPTY") == 0)
        return "";
    return NULL;
}

/* Set when the input spells the secret itself (the fuzzer learns strings
 * from strstr): then a plain config value may legitimately echo it. */
static bool secret_in_input;

static void no_secret(const cg_diags_t *d)
{
    for (size_t i = 0; i < d->n && !secret_in_input; i++)
        cg_assert(strstr(d->items[i], SECRET) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (size)
        memcpy(text, data, size);
    secret_in_input = memmem(text, size, "SECRET", 6) != NULL;
    const cg_config_opts_t opts = {.getenv_fn = fuzz_getenv};
    cg_config_t *c = NULL;
    cg_diags_t errors = {0}, notices = {0};
    int rc = cg_config_load_string("fuzz.json5", text, size, &opts, &c, &errors, &notices);
    no_secret(&errors);
    no_secret(&notices);
    if (rc == 0) {
        cg_assert(errors.n == 0);
        char *out = NULL;
        size_t out_len = 0;
        FILE *f = open_memstream(&out, &out_len);
        cg_config_describe(c, f);
        fclose(f);
        cg_assert(secret_in_input || strstr(out, SECRET) == NULL);
        free(out);
        /* every prefix of the input as a ref: never reads beyond len */
        for (size_t i = 0; i <= size && i < 64; i++)
            (void)cg_config_resolve(c, text, i);
        for (size_t i = 0; i < c->n_providers; i++)
            for (size_t j = 0; j < c->providers[i].n_models; j++) {
                const cg_model_t *m = &c->providers[i].models[j];
                /* an alias may shadow a ref, but a ref always resolves */
                cg_assert(cg_config_resolve(c, m->ref, strlen(m->ref)) != NULL);
            }
        cg_config_free(c);
    } else {
        cg_assert(c == NULL && errors.n > 0);
    }
    cg_diags_free(&errors);
    cg_diags_free(&notices);
    free(text);
    return 0;
}
