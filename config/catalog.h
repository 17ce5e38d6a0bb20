/*
 * catalog.h — the built-in hosted catalog `models.mode: "merge"` adds
 * (anthropic, openai, openrouter), private to config/.
 *
 * DESIGN
 * Static, read-only tables: base URL, API kind, the environment variable the
 * key usually lives in, the provider's real request-shaping capabilities
 * (compat) and a handful of current models with context window, output cap
 * and prices (USD per million tokens, list prices when written; a config
 * entry for the same provider/model id overrides any of them). OpenClaw's
 * built-in aliases (opus, sonnet, ...) live here too.
 */
#ifndef CG_CATALOG_H
#define CG_CATALOG_H

#include "config/config.h"

typedef struct cg_catalog_model {
    const char *id;
    const char *name;
    bool reasoning;
    bool image; /* input: text and image */
    double cost_input, cost_output, cost_cache_read, cost_cache_write;
    int64_t context_window;
    int64_t max_tokens;
} cg_catalog_model_t;

typedef struct cg_catalog_provider {
    const char *name;
    const char *base_url;
    const char *api_name;
    cg_api_t api;
    const char *env_key; /* where the key usually is, e.g. "ANTHROPIC_API_KEY" */
    cg_compat_t compat;  /* defaults for this provider's models */
    const cg_catalog_model_t *models;
    size_t n_models;
} cg_catalog_provider_t;

typedef struct cg_catalog_alias {
    const char *alias;
    const char *ref;
} cg_catalog_alias_t;

/* The forgiving compat defaults for custom (usually local) providers. */
extern const cg_compat_t cg_catalog_custom_compat;

const cg_catalog_provider_t *cg_catalog_providers(size_t *n);
const cg_catalog_provider_t *cg_catalog_find(const char *name);
const cg_catalog_alias_t *cg_catalog_aliases(size_t *n);

#endif
