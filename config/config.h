/*
 * config.h — OpenClaw's JSON5 config, validated and resolved into an
 * immutable snapshot that every actor reads.
 *
 * DESIGN
 * cg_config_load reads the file with our JSON5 reader (config/json5.h) into a
 * json-c tree, substitutes ${VAR} as OpenClaw does, validates the parts
 * clawgate uses (OpenClaw's strict provider and model schema, clawgate's own
 * `clawgate` block), merges the built-in hosted catalog in `merge` mode and
 * resolves every model ref. The result owns all its memory (no pointers into
 * the parse tree except `params`, which holds its own json-c reference) and
 * is never modified after load: publish it with actors/snapshot.h.
 *
 * Every problem found is collected (not just the first), each as
 * "FILE:LINE:COL: key.path: message". Secrets never appear in messages.
 */
#ifndef CG_CONFIG_H
#define CG_CONFIG_H

#include "common/cg.h"

#include <json.h>

typedef enum {
    CG_API_OPENAI_COMPLETIONS = 0, /* default for a custom provider */
    CG_API_OPENAI_RESPONSES,
    CG_API_ANTHROPIC_MESSAGES,
    CG_API_UNSUPPORTED, /* a valid OpenClaw api value clawgate cannot speak */
} cg_api_t;

const char *cg_api_name(cg_api_t api);

typedef struct cg_header {
    char *name;
    char *value;
} cg_header_t;

/* OpenClaw's model `compat` keys. Unset keys take the defaults for the
 * provider kind: forgiving for custom (local) providers, OpenAI's for the
 * built-in hosted ones. */
typedef struct cg_compat {
    bool supports_store;
    bool supports_developer_role;
    bool supports_reasoning_effort;
    bool supports_usage_in_streaming;
    bool supports_tools;
    bool supports_strict_mode;
    bool requires_string_content;
    const char *max_tokens_field; /* "max_tokens", "max_completion_tokens", or NULL: as sent */
    bool tool_calls_as_text;      /* clawgate extension: parse <tool_call> text into calls */
} cg_compat_t;

typedef struct cg_provider cg_provider_t;

typedef struct cg_model {
    cg_provider_t *provider;
    char *id;      /* provider-local id, sent upstream as `model` */
    size_t id_len; /* strlen(id), for cg_config_resolve */
    char *ref;     /* "provider/id" */
    char *name;    /* display name */
    cg_api_t api;  /* effective: the model's own `api`, else the provider's */
    bool reasoning;
    char **input; /* "text", "image" */
    size_t n_input;
    struct {
        double input, output, cache_read, cache_write; /* USD per million tokens */
    } cost;
    int64_t context_window; /* default 200000 */
    int64_t context_tokens; /* 0: no cap on active input */
    int64_t max_tokens;     /* default min(8192, context_window) */
    cg_header_t *headers;   /* the model's own; the provider's are on the provider */
    size_t n_headers;
    cg_compat_t compat;
    json_object *params; /* agents.defaults.models[ref].params (own reference) or NULL */
    int streaming;       /* agents.defaults.models[ref].streaming: -1 unset, 0, 1 */
    bool omit_reasoning; /* clawgate.reasoning.omit lists it: final text only */
} cg_model_t;

struct cg_provider {
    char *name;
    size_t name_len;        /* strlen(name), for cg_config_resolve */
    char *base_url;         /* without trailing '/' */
    char *base_url_display; /* for people: userinfo and query masked, ${VAR} as written */
    char *api_key;          /* NULL when none; never printed */
    char *key_source;       /* "config", "env:NAME", "none" */
    cg_api_t api;
    char *api_name; /* as written, for messages about unsupported kinds */
    cg_header_t *headers;
    size_t n_headers;
    int timeout_seconds; /* total per request; 0: clawgate.timeouts.requestSeconds */
    bool builtin;        /* from the hosted catalog (merge mode) */
    bool available;      /* false: e.g. hosted with no key, or unsupported api */
    char *unavailable_reason;
    cg_model_t *models;
    size_t n_models;
};

typedef struct cg_alias {
    char *alias;  /* as written; matched case-insensitively */
    size_t len;   /* strlen(alias) */
    bool builtin; /* one of OpenClaw's built-in shorthands (merge mode) */
    cg_model_t *model;
} cg_alias_t;

/* clawgate's own block; every field has a default. */
typedef struct cg_settings {
    char *listen_host;         /* "127.0.0.1" */
    int listen_port;           /* 8089 */
    char *store_path;          /* "./var/clawgate.db" */
    bool store_disabled;       /* store.enabled false: no recording, no sessions */
    bool store_fail_closed;    /* store.onError "fail" (true, default) or "serve" */
    int retention_days;        /* 0: keep forever */
    size_t max_body_bytes;     /* limits.maxBodyBytes, 16 MiB */
    int max_connections;       /* limits.maxConnections, 10000 */
    int connect_timeout_ms;    /* timeouts.connectMs, 5000 */
    int first_token_timeout_s; /* timeouts.firstTokenSeconds, 30 */
    int idle_timeout_s;        /* timeouts.idleSeconds, 60: gap between chunks */
    int request_timeout_s;     /* timeouts.requestSeconds, 600: total, when the provider has none */
    int client_timeout_s;      /* timeouts.clientSeconds, 30: slow or stalled clients */
    char *log_level;           /* "info" */
    /* health prober (clawgate.health); 0 in any field below means its default */
    int probe_interval_s; /* health.intervalSeconds, 15; negative: probing off */
    int probe_timeout_s;  /* health.timeoutSeconds, 5 */
    /* routing (clawgate.routing) */
    bool adaptive;         /* routing.policy "adaptive" (true) or "pinned" (default) */
    double primary_factor; /* routing.primaryFactor, 1.5: primary first unless slower by this */
    int rerank_s;          /* routing.rerankSeconds, 5 */
    /* supervision (clawgate.supervisor) */
    int restart_intensity;     /* supervisor.maxRestarts, 5 */
    int restart_period_s;      /* supervisor.periodSeconds, 30 */
    bool provider_threads_own; /* supervisor.providerThreads "own": a thread per
                                  provider instead of the http front's loop */
} cg_settings_t;

/* clawgate.health.keepWarm: { "provider/model": minutes } */
typedef struct cg_keep_warm {
    char *ref;
    int minutes;
} cg_keep_warm_t;

typedef struct cg_config {
    char *path;
    bool mode_replace; /* models.mode == "replace" */
    cg_provider_t *providers;
    size_t n_providers;
    cg_alias_t *aliases;
    size_t n_aliases;
    cg_model_t *primary; /* never NULL in a loaded config with any model */
    cg_model_t **fallbacks;
    size_t n_fallbacks;
    cg_settings_t settings;
    cg_keep_warm_t *keep_warm;
    size_t n_keep_warm;
    /* Distinct for every config loaded in this process, never 0: what
     * caches of per-config work key on (an address can be reused). */
    uint64_t serial;
} cg_config_t;

/* A list of messages (errors or notices), each a heap string. */
typedef struct cg_diags {
    char **items;
    size_t n;
} cg_diags_t;
void cg_diags_add(cg_diags_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cg_diags_free(cg_diags_t *d);

typedef struct cg_config_opts {
    /* Environment lookup for ${VAR} and hosted keys; NULL: getenv. */
    const char *(*getenv_fn)(const char *name);
} cg_config_opts_t;

/* Load and resolve. 0 and *out set, notices possibly added; or CG_EINVAL with
 * every error in errors (and *out NULL). opts may be NULL. */
int cg_config_load_file(const char *path, const cg_config_opts_t *opts, cg_config_t **out,
                        cg_diags_t *errors, cg_diags_t *notices);
/* Same from memory; name is what messages call the file. */
int cg_config_load_string(const char *name, const char *text, size_t len,
                          const cg_config_opts_t *opts, cg_config_t **out, cg_diags_t *errors,
                          cg_diags_t *notices);

void cg_config_free(cg_config_t *c);
/* cg_config_free with the signature cg_snap_new wants for its destroy hook. */
void cg_config_destroy(void *config);

/* Resolve a model ref as OpenClaw does: alias (case-insensitive), then
 * "provider/model" split at the first '/', then a bare id that exactly one
 * provider has. NULL when nothing (or more than one bare match) fits. */
cg_model_t *cg_config_resolve(const cg_config_t *c, const char *ref, size_t len);

/* The human table `clawgate check-config` prints: providers (base URL, API,
 * key source — never the key), models (context window, max tokens, cost),
 * aliases, the resolved fallback chain. */
void cg_config_describe(const cg_config_t *c, FILE *out);

#endif
