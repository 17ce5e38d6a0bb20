/*
 * test_config.c — loading OpenClaw configs: defaults, every error path with
 * its FILE:LINE:COL, merge/replace, ref resolution, ${VAR} substitution with
 * a fake environment, secrets never printed, the fixtures.
 */
#include "config/config.h"

#include "tests/t.h"

#include <dirent.h>
#include <unistd.h>

/* ---- a fake environment ---- */

static const char *fake_env[16][2];

static void env_clear(void)
{
    memset(fake_env, 0, sizeof fake_env);
}

static void env_set(const char *name, const char *value)
{
    for (size_t i = 0; i < 16; i++) {
        if (!fake_env[i][0] || strcmp(fake_env[i][0], name) == 0) {
            fake_env[i][0] = name;
            fake_env[i][1] = value;
            return;
        }
    }
    abort();
}

static const char *fake_getenv(const char *name)
{
    for (size_t i = 0; i < 16 && fake_env[i][0]; i++)
        if (strcmp(fake_env[i][0], name) == 0)
            return fake_env[i][1];
    return NULL;
}

static const cg_config_opts_t opts = {.getenv_fn = fake_getenv};

/* ---- helpers ---- */

static cg_diags_t errs, notes;

static void reset_diags(void)
{
    cg_diags_free(&errs);
    cg_diags_free(&notes);
}

static char *joined(const cg_diags_t *d)
{
    cg_buf_t b = {0};
    for (size_t i = 0; i < d->n; i++) {
        cg_buf_puts(&b, d->items[i]);
        cg_buf_puts(&b, "\n");
    }
    return cg_buf_steal(&b, NULL);
}

/* Load text that must be valid. */
static cg_config_t *load_ok(const char *text)
{
    reset_diags();
    cg_config_t *c = NULL;
    int rc = cg_config_load_string("t.json5", text, strlen(text), &opts, &c, &errs, &notes);
    if (rc != 0) {
        char *all = joined(&errs);
        T_FAIL_("unexpected errors:\n%s", all);
    }
    T_ASSERT(c != NULL);
    return c;
}

/* Load text that must fail with an error containing `want`; false (after
 * printing what came instead) when it does not. */
static bool check_bad(const char *text, const char *want)
{
    reset_diags();
    cg_config_t *c = (cg_config_t *)1;
    int rc = cg_config_load_string("t.json5", text, strlen(text), &opts, &c, &errs, &notes);
    char *all = joined(&errs);
    bool found = rc == CG_EINVAL && c == NULL && strstr(all, want) != NULL;
    if (!found)
        fprintf(stdout, "#   input: %s\n#   wanted: %s\n#   errors were:\n%s", text, want, all);
    free(all);
    return found;
}

static void load_bad(const char *text, const char *want)
{
    T_ASSERTF(check_bad(text, want), "no error contains: %s", want);
}

static bool notes_contain(const char *want)
{
    char *all = joined(&notes);
    bool found = strstr(all, want) != NULL;
    free(all);
    return found;
}

static char *describe(const cg_config_t *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cg_config_describe(c, f);
    fclose(f);
    return buf;
}

static const cg_model_t *resolve(const cg_config_t *c, const char *ref)
{
    return cg_config_resolve(c, ref, strlen(ref));
}

#define LOCAL_PROVIDER                                                                             \
    "local: { baseUrl: 'http://127.0.0.1:1234/v1/', models: [{ id: 'm1', name: 'M1' }] }"

/* ---- defaults ---- */

static void test_empty_config_defaults(void)
{
    env_clear();
    cg_config_t *c = load_ok("{}");
    const cg_settings_t *s = &c->settings;
    T_EQ_STR(s->listen_host, "127.0.0.1");
    T_EQ_INT(s->listen_port, 8089);
    T_EQ_STR(s->store_path, "./var/clawgate.db");
    T_ASSERT(s->store_fail_closed);
    T_EQ_INT(s->retention_days, 0);
    T_EQ_INT(s->max_body_bytes, 16 << 20);
    T_EQ_INT(s->max_connections, 10000);
    T_EQ_INT(s->connect_timeout_ms, 5000);
    T_EQ_INT(s->first_token_timeout_s, 30);
    T_EQ_INT(s->idle_timeout_s, 60);
    T_EQ_INT(s->request_timeout_s, 600);
    T_EQ_INT(s->client_timeout_s, 30);
    T_EQ_STR(s->log_level, "info");
    T_EQ_INT(s->probe_interval_s, 15);
    T_EQ_INT(s->probe_timeout_s, 5);
    T_ASSERT(!s->adaptive);
    T_ASSERT(s->primary_factor == 1.5);
    T_EQ_INT(s->restart_intensity, 5);
    T_EQ_INT(s->restart_period_s, 30);
    /* merge mode: the hosted catalog, listed but unavailable without keys */
    T_ASSERT(!c->mode_replace);
    T_EQ_INT(c->n_providers, 3);
    T_EQ_STR(c->providers[0].name, "anthropic");
    T_ASSERT(c->providers[0].builtin);
    T_ASSERT(!c->providers[0].available);
    T_EQ_STR(c->providers[0].key_source, "none");
    T_EQ_STR(c->providers[0].unavailable_reason, "ANTHROPIC_API_KEY is not set");
    T_ASSERT(c->providers[0].api_key == NULL);
    /* no primary configured: the first provider's first model */
    T_ASSERT(c->primary == &c->providers[0].models[0]);
    T_EQ_INT(c->n_fallbacks, 0);
    cg_config_free(c);
}

static void test_custom_model_defaults(void)
{
    env_clear();
    cg_config_t *c = load_ok("{ models: { mode: 'replace', providers: { " LOCAL_PROVIDER
                             ", small: { baseUrl: 'https://h.example', maxTokens: 2048, "
                             "models: [{ id: 'a', name: 'A', contextWindow: 4096 }, "
                             "{ id: 'b', name: 'B', contextWindow: 1000 }] } } } }");
    T_ASSERT(c->mode_replace);
    T_EQ_INT(c->n_providers, 2);
    const cg_provider_t *p = &c->providers[0];
    T_EQ_STR(p->name, "local");
    T_EQ_STR(p->base_url, "http://127.0.0.1:1234/v1"); /* trailing '/' dropped */
    T_EQ_INT(p->api, CG_API_OPENAI_COMPLETIONS);
    T_EQ_STR(p->key_source, "none");
    T_ASSERT(p->available); /* local servers need no key */
    T_ASSERT(!p->builtin);
    T_EQ_INT(p->timeout_seconds, 0);
    const cg_model_t *m = &p->models[0];
    T_EQ_STR(m->ref, "local/m1");
    T_EQ_STR(m->name, "M1");
    T_ASSERT(m->provider == p);
    T_EQ_INT(m->api, CG_API_OPENAI_COMPLETIONS);
    T_ASSERT(!m->reasoning);
    T_EQ_INT(m->n_input, 1);
    T_EQ_STR(m->input[0], "text");
    T_EQ_INT(m->context_window, 200000);
    T_EQ_INT(m->context_tokens, 0);
    T_EQ_INT(m->max_tokens, 8192);
    T_ASSERT(m->cost.input == 0 && m->cost.output == 0);
    T_ASSERT(m->params == NULL);
    T_EQ_INT(m->streaming, -1);
    /* the forgiving compat profile */
    T_ASSERT(!m->compat.supports_store);
    T_ASSERT(!m->compat.supports_developer_role);
    T_ASSERT(!m->compat.supports_strict_mode);
    T_ASSERT(m->compat.supports_usage_in_streaming);
    T_ASSERT(m->compat.supports_tools);
    T_ASSERT(m->compat.supports_reasoning_effort);
    T_ASSERT(!m->compat.requires_string_content);
    T_ASSERT(m->compat.max_tokens_field == NULL);
    T_ASSERT(!m->compat.tool_calls_as_text);
    /* maxTokens: the provider's, capped by the window */
    T_EQ_INT(c->providers[1].models[0].max_tokens, 2048);
    T_EQ_INT(c->providers[1].models[1].max_tokens, 1000);
    T_ASSERT(c->primary == m);
    cg_config_free(c);
}

static void test_full_model_and_compat(void)
{
    env_clear();
    cg_config_t *c = load_ok(
        "{ models: { mode: 'replace', providers: { v: { baseUrl: 'http://h:8000/v1', "
        "api: 'openai-responses', timeoutSeconds: 90, headers: { 'X-Team': 'a' },"
        "models: [{ id: 'q', name: 'Q', api: 'anthropic-messages', reasoning: true, "
        "input: ['text', 'image'], cost: { input: 1.5, output: 2, cacheRead: 0.1, cacheWrite: 3 }, "
        "contextWindow: 32768, contextTokens: 16000, maxTokens: 4096, headers: { 'X-M': 'b' }, "
        "compat: { supportsStore: true, supportsDeveloperRole: true, supportsTools: false, "
        "supportsStrictMode: true, supportsUsageInStreaming: false, supportsReasoningEffort: "
        "false, "
        "requiresStringContent: true, maxTokensField: 'max_tokens', toolCallsAsText: true, "
        "thinkingFormat: 'qwen', requiresToolResultName: true } }] } } } }");
    const cg_provider_t *p = &c->providers[0];
    T_EQ_INT(p->api, CG_API_OPENAI_RESPONSES);
    T_EQ_STR(p->api_name, "openai-responses");
    T_EQ_INT(p->timeout_seconds, 90);
    T_EQ_INT(p->n_headers, 1);
    T_EQ_STR(p->headers[0].name, "X-Team");
    T_EQ_STR(p->headers[0].value, "a");
    const cg_model_t *m = &p->models[0];
    T_EQ_INT(m->api, CG_API_ANTHROPIC_MESSAGES); /* the model's own api wins */
    T_ASSERT(m->reasoning);
    T_EQ_INT(m->n_input, 2);
    T_EQ_STR(m->input[1], "image");
    T_ASSERT(m->cost.input == 1.5 && m->cost.output == 2 && m->cost.cache_read == 0.1 &&
             m->cost.cache_write == 3);
    T_EQ_INT(m->context_window, 32768);
    T_EQ_INT(m->context_tokens, 16000);
    T_EQ_INT(m->max_tokens, 4096);
    T_EQ_INT(m->n_headers, 1);
    T_EQ_STR(m->headers[0].value, "b");
    T_ASSERT(m->compat.supports_store && m->compat.supports_developer_role);
    T_ASSERT(!m->compat.supports_tools && m->compat.supports_strict_mode);
    T_ASSERT(!m->compat.supports_usage_in_streaming && !m->compat.supports_reasoning_effort);
    T_ASSERT(m->compat.requires_string_content && m->compat.tool_calls_as_text);
    T_EQ_STR(m->compat.max_tokens_field, "max_tokens");
    T_ASSERT(notes_contain("compat.thinkingFormat: OpenClaw compat key, not used by clawgate"));
    T_ASSERT(notes_contain("compat.requiresToolResultName: OpenClaw compat key"));
    cg_config_free(c);
}

static void test_clawgate_block(void)
{
    env_clear();
    cg_config_t *c =
        load_ok("{ clawgate: { listen: '[::1]:9000', store: { path: '/tmp/x.db', onError: "
                "'serve', retentionDays: 30 }, limits: { maxBodyBytes: 2048, maxConnections: 5 }, "
                "timeouts: { connectMs: 100, firstTokenSeconds: 2, idleSeconds: 3, "
                "requestSeconds: 4, clientSeconds: 5 }, logLevel: 'debug', "
                "health: { intervalSeconds: -1, timeoutSeconds: 2, keepWarm: { opus: 10 } }, "
                "routing: { policy: 'adaptive', primaryFactor: 2.5, rerankSeconds: 9 }, "
                "supervisor: { maxRestarts: 3, periodSeconds: 60, providerThreads: 'own' } } }");
    const cg_settings_t *s = &c->settings;
    T_EQ_STR(s->listen_host, "::1");
    T_EQ_INT(s->listen_port, 9000);
    T_EQ_STR(s->store_path, "/tmp/x.db");
    T_ASSERT(!s->store_fail_closed);
    T_EQ_INT(s->retention_days, 30);
    T_EQ_INT(s->max_body_bytes, 2048);
    T_EQ_INT(s->max_connections, 5);
    T_EQ_INT(s->connect_timeout_ms, 100);
    T_EQ_INT(s->first_token_timeout_s, 2);
    T_EQ_INT(s->idle_timeout_s, 3);
    T_EQ_INT(s->request_timeout_s, 4);
    T_EQ_INT(s->client_timeout_s, 5);
    T_EQ_STR(s->log_level, "debug");
    T_EQ_INT(s->probe_interval_s, -1);
    T_EQ_INT(s->probe_timeout_s, 2);
    T_ASSERT(s->adaptive);
    T_ASSERT(s->primary_factor == 2.5);
    T_EQ_INT(s->rerank_s, 9);
    T_ASSERT(s->provider_threads_own);
    T_EQ_INT(s->restart_intensity, 3);
    T_EQ_INT(s->restart_period_s, 60);
    T_EQ_INT(c->n_keep_warm, 1);
    T_EQ_STR(c->keep_warm[0].ref, "anthropic/claude-opus-4-6"); /* resolved through the alias */
    T_EQ_INT(c->keep_warm[0].minutes, 10);
    char *d = describe(c);
    T_CONTAINS(d, "listen      [::1]:9000");
    T_CONTAINS(d, "/tmp/x.db (onError serve, retentionDays 30)");
    T_CONTAINS(d, "policy adaptive");
    free(d);
    cg_config_free(c);

    c = load_ok("{ clawgate: { listen: 'localhost:0' } }");
    T_EQ_STR(c->settings.listen_host, "localhost");
    T_EQ_INT(c->settings.listen_port, 0);
    cg_config_free(c);
}

/* ---- error paths: each message with its exact position ---- */

static void test_error_paths(void)
{
    env_clear();
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        /* syntax */
        {"{\n  models: {\n    mode: 'merge'\n    providers: {},\n  },\n}",
         "t.json5:4:5: expected ',' or '}'"},
        {"[1, 2]", "t.json5:1:1: the top level must be an object, not an array"},
        /* models */
        {"{ models: [] }", "t.json5:1:11: models: must be an object, not an array"},
        {"{ models: { mode: 'mix' } }",
         "t.json5:1:19: models.mode: must be one of \"merge\" or \"replace\", not \"mix\""},
        {"{ models: { mode: 'replace' } }", "t.json5:1:1: models.providers: no models configured"},
        {"{ models: { colour: 1 } }",
         "t.json5:1:13: models.colour: unknown key (expected mode, providers, bedrockDiscovery, "
         "or proxy)"},
        {"{ models: { providers: [] } }",
         "t.json5:1:24: models.providers: must be an object, not an array"},
        {"{ models: { providers: { p: 5 } } }",
         "t.json5:1:29: models.providers.p: must be an object, not a number"},
        {"{ models: { providers: { 'a/b': { baseUrl: 'http://h', models: [] } } } }",
         "t.json5:1:26: models.providers[\"a/b\"]: provider names must be"},
        {"{ models: { providers: { p: { models: [] } } } }",
         "t.json5:1:29: models.providers.p: missing required key \"baseUrl\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h' } } } }",
         "t.json5:1:29: models.providers.p: missing required key \"models\""},
        {"{ models: { providers: { p: { baseUrl: 'h:1234', models: [] } } } }",
         "t.json5:1:40: models.providers.p.baseUrl: must be an http:// or https:// URL"},
        {"{ models: { providers: { p: { baseUrl: 'http://', models: [] } } } }",
         "models.providers.p.baseUrl: must be an http:// or https:// URL"},
        {"{ models: { providers: { p: { baseUrl: '', models: [] } } } }",
         "t.json5:1:40: models.providers.p.baseUrl: must not be empty"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: {} } } } }",
         "t.json5:1:60: models.providers.p.models: must be an array, not an object"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [], proxyUrl: 1 } } } }",
         "t.json5:1:64: models.providers.p.proxyUrl: unknown key (expected baseUrl, apiKey"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', api: 'grpc', models: [] } } } }",
         "t.json5:1:57: models.providers.p.api: must be one of \"openai-completions\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', auth: 'magic', models: [] } } } }",
         "t.json5:1:58: models.providers.p.auth: must be one of \"api-key\", \"aws-sdk\", "
         "\"oauth\", or \"token\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', apiKey: 5, models: [] } } } }",
         "t.json5:1:60: models.providers.p.apiKey: must be a string or a SecretRef object"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', timeoutSeconds: 0, models: [] } } } "
         "}",
         "t.json5:1:68: models.providers.p.timeoutSeconds: must be between 1 and 86400"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', timeoutSeconds: 1.5, models: [] } "
         "} } }",
         "models.providers.p.timeoutSeconds: must be a whole number"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', headers: { 'a b': 'x' }, models: "
         "[] } } } }",
         "t.json5:1:63: models.providers.p.headers[\"a b\"]: not a valid HTTP header name"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', headers: { A: 'x\\r\\nB: y' }, "
         "models: [] } } } }",
         "t.json5:1:66: models.providers.p.headers.A: header values must not contain line "
         "breaks"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', headers: { A: true }, models: [] "
         "} } } }",
         "models.providers.p.headers.A: must be a string or a SecretRef, not a boolean"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', authHeader: 'yes', models: [] } } "
         "} }",
         "t.json5:1:64: models.providers.p.authHeader: must be true or false, not a string"},
        /* models[] */
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [7] } } } }",
         "t.json5:1:61: models.providers.p.models[0]: must be an object, not a number"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ name: 'x' }] } } } }",
         "t.json5:1:61: models.providers.p.models[0]: missing required key \"id\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: '' }] } } } }",
         "t.json5:1:67: models.providers.p.models[0].id: must not be empty"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x' }] } } } }",
         "t.json5:1:61: models.providers.p.models[0]: missing required key \"name\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X' }, "
         "{ id: 'x', name: 'Y' }] } } } }",
         "t.json5:1:91: models.providers.p.models[1].id: duplicate model id \"x\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "temperature: 1 }] } } } }",
         "t.json5:1:83: models.providers.p.models[0].temperature: unknown key (expected id, "
         "name, api"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "input: ['text', 'audio'] }] } } } }",
         "t.json5:1:99: models.providers.p.models[0].input[1]: must be one of \"text\" or "
         "\"image\", not \"audio\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "reasoning: 1 }] } } } }",
         "models.providers.p.models[0].reasoning: must be true or false, not a number"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "cost: { input: -1 } }] } } } }",
         "t.json5:1:98: models.providers.p.models[0].cost.input: must be between 0 and"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "cost: { output: Infinity } }] } } } }",
         "models.providers.p.models[0].cost.output: must be a finite number"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "cost: { total: 1 } }] } } } }",
         "t.json5:1:91: models.providers.p.models[0].cost.total: unknown key (expected input, "
         "output, cacheRead, or cacheWrite)"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "contextWindow: 0 }] } } } }",
         "models.providers.p.models[0].contextWindow: must be between 1 and"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "maxTokens: NaN }] } } } }",
         "models.providers.p.models[0].maxTokens: must be a whole number"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "contextTokens: '5' }] } } } }",
         "models.providers.p.models[0].contextTokens: must be a number, not a string"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "compat: { supportsMagic: true } }] } } } }",
         "t.json5:1:93: models.providers.p.models[0].compat.supportsMagic: unknown key"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "compat: { supportsTools: 'no' } }] } } } }",
         "models.providers.p.models[0].compat.supportsTools: must be true or false"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "compat: { maxTokensField: 'max' } }] } } } }",
         "models.providers.p.models[0].compat.maxTokensField: must be one of "
         "\"max_completion_tokens\" or \"max_tokens\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "compat: { thinkingFormat: 'klingon' } }] } } } }",
         "models.providers.p.models[0].compat.thinkingFormat: must be one of \"openai\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', models: [{ id: 'x', name: 'X', "
         "headers: { A: { source: 'env', id: 'K' } } }] } } } }",
         "models.providers.p.models[0].headers.A: must be a string, not an object"},
        /* SecretRef */
        {"{ models: { providers: { p: { baseUrl: 'http://h', apiKey: { source: 'file', id: "
         "'/k' }, models: [] } } } }",
         "t.json5:1:70: models.providers.p.apiKey.source: SecretRef source \"file\" is not "
         "supported by clawgate"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', apiKey: { source: 'exec', id: "
         "'k' }, models: [] } } } }",
         "SecretRef source \"exec\" is not supported by clawgate"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', apiKey: { source: 'vault', id: "
         "'k' }, models: [] } } } }",
         "models.providers.p.apiKey.source: must be one of \"env\", \"file\", or \"exec\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', apiKey: { id: 'K' }, models: [] } "
         "} } }",
         "t.json5:1:60: models.providers.p.apiKey: a SecretRef needs \"source\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', apiKey: { source: 'env' }, models: "
         "[] } } } }",
         "models.providers.p.apiKey: a SecretRef needs \"id\""},
        {"{ models: { providers: { p: { baseUrl: 'http://h', apiKey: { source: 'env', id: "
         "'lower' }, models: [] } } } }",
         "t.json5:1:81: models.providers.p.apiKey.id: must be an environment variable name"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', apiKey: { source: 'env', id: 'NOPE' "
         "}, models: [] } } } }",
         "t.json5:1:81: models.providers.p.apiKey.id: environment variable NOPE is not set or "
         "empty"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', apiKey: { source: 'env', id: 'K', "
         "extra: 1 }, models: [] } } } }",
         "t.json5:1:86: models.providers.p.apiKey.extra: unknown key (expected source, provider, "
         "or id)"},
        /* agents */
        {"{ agents: [] }", "t.json5:1:11: agents: must be an object, not an array"},
        {"{ agents: { defaults: 1 } }",
         "t.json5:1:23: agents.defaults: must be an object, not a number"},
        {"{ agents: { defaults: { model: 5 } } }",
         "t.json5:1:32: agents.defaults.model: must be a model ref string or an object"},
        {"{ agents: { defaults: { model: { primary: 5 } } } }",
         "t.json5:1:43: agents.defaults.model.primary: must be a string, not a number"},
        {"{ agents: { defaults: { model: { fallbacks: 'x' } } } }",
         "t.json5:1:45: agents.defaults.model.fallbacks: must be an array, not a string"},
        {"{ agents: { defaults: { model: { fallbacks: ['opus', ''] } } } }",
         "t.json5:1:54: agents.defaults.model.fallbacks[1]: must not be empty"},
        {"{ agents: { defaults: { model: { primary: 'opus', order: 1 } } } }",
         "t.json5:1:51: agents.defaults.model.order: unknown key (expected primary or "
         "fallbacks)"},
        {"{ agents: { defaults: { models: [] } } }",
         "t.json5:1:33: agents.defaults.models: must be an object, not an array"},
        {"{ agents: { defaults: { models: { 'openai/gpt-4.1': 1 } } } }",
         "t.json5:1:53: agents.defaults.models[\"openai/gpt-4.1\"]: must be an object"},
        {"{ agents: { defaults: { models: { 'openai/gpt-4.1': { alias: 3 } } } } }",
         "t.json5:1:62: agents.defaults.models[\"openai/gpt-4.1\"].alias: must be a string"},
        {"{ agents: { defaults: { models: { 'openai/gpt-4.1': { params: 3 } } } } }",
         "agents.defaults.models[\"openai/gpt-4.1\"].params: must be an object"},
        {"{ agents: { defaults: { models: { 'openai/gpt-4.1': { streaming: 'on' } } } } }",
         "agents.defaults.models[\"openai/gpt-4.1\"].streaming: must be true or false"},
        {"{ agents: { defaults: { models: { 'openai/gpt-4.1': { fast: true } } } } }",
         "t.json5:1:55: agents.defaults.models[\"openai/gpt-4.1\"].fast: unknown key (expected "
         "alias, params, or streaming)"},
        /* refs that do not resolve */
        {"{ agents: { defaults: { model: 'nope/m' } } }",
         "t.json5:1:32: agents.defaults.model: model \"nope/m\" does not resolve: no provider "
         "nope is configured"},
        {"{ agents: { defaults: { model: { primary: 'anthropic/claude-9' } } } }",
         "t.json5:1:43: agents.defaults.model.primary: model \"anthropic/claude-9\" does not "
         "resolve: provider anthropic has no model with this id"},
        {"{ agents: { defaults: { model: { fallbacks: ['opus', 'ghost'] } } } }",
         "t.json5:1:54: agents.defaults.model.fallbacks[1]: model \"ghost\" does not resolve: no "
         "alias, and no provider has a model with this id"},
        {"{ agents: { defaults: { models: { 'openai/gpt-99': { alias: 'x' } } } } }",
         "t.json5:1:35: agents.defaults.models[\"openai/gpt-99\"]: model \"openai/gpt-99\" does "
         "not resolve"},
        {"{ agents: { defaults: { model: 'anthropic/claude-opus-4-6' } }, models: { mode: "
         "'replace', providers: { " LOCAL_PROVIDER " } } }",
         "no provider anthropic (the built-in hosted catalog is not used because models.mode is "
         "\"replace\")"},
        {"{ agents: { defaults: { model: 'm1' } }, models: { providers: { " LOCAL_PROVIDER
         ", other: { baseUrl: 'http://o', models: [{ id: 'm1', name: 'M1' }] } } } }",
         "agents.defaults.model: model \"m1\" does not resolve: more than one provider has a "
         "model with this id"},
        {"{ agents: { defaults: { models: { 'openai/gpt-4.1': { alias: 'Fast' }, "
         "'openai/gpt-4o-mini': { alias: 'fast' } } } } }",
         "t.json5:1:103: agents.defaults.models[\"openai/gpt-4o-mini\"].alias: alias \"fast\" "
         "already names openai/gpt-4.1"},
        /* the clawgate block */
        {"{ clawgate: 1 }", "t.json5:1:13: clawgate: must be an object, not a number"},
        {"{ clawgate: { port: 1 } }",
         "t.json5:1:15: clawgate.port: unknown key (expected listen, store, limits, timeouts, "
         "logLevel, health, routing, supervisor, or reasoning)"},
        {"{ clawgate: { reasoning: { omit: ['nope/x'] } } }", "clawgate.reasoning.omit[0]"},
        {"{ clawgate: { reasoning: { hide: [] } } }",
         "clawgate.reasoning.hide: unknown key (expected omit)"},
        {"{ clawgate: { listen: 8089 } }",
         "t.json5:1:23: clawgate.listen: must be a string, not a number"},
        {"{ clawgate: { listen: '127.0.0.1' } }",
         "t.json5:1:23: clawgate.listen: expected host:port"},
        {"{ clawgate: { listen: '::1:80' } }",
         "clawgate.listen: an IPv6 address needs brackets, e.g. [::1]:8089"},
        {"{ clawgate: { listen: '[::1:80' } }",
         "clawgate.listen: missing ']' after the IPv6 address"},
        {"{ clawgate: { listen: '[::1]80' } }",
         "clawgate.listen: expected ':' and a port after ']'"},
        {"{ clawgate: { listen: ':80' } }", "clawgate.listen: missing host"},
        {"{ clawgate: { listen: 'h:65536' } }",
         "clawgate.listen: the port must be a number from 0 to 65535"},
        {"{ clawgate: { listen: 'h:8o' } }",
         "clawgate.listen: the port must be a number from 0 to 65535"},
        {"{ clawgate: { listen: 'h:' } }",
         "clawgate.listen: the port must be a number from 0 to 65535"},
        {"{ clawgate: { store: 'x' } }",
         "t.json5:1:22: clawgate.store: must be an object, not a string"},
        {"{ clawgate: { store: { path: '' } } }",
         "t.json5:1:30: clawgate.store.path: must not be empty"},
        {"{ clawgate: { store: { onError: 'ignore' } } }",
         "clawgate.store.onError: must be one of \"fail\" or \"serve\", not \"ignore\""},
        {"{ clawgate: { store: { retentionDays: -1 } } }",
         "clawgate.store.retentionDays: must be between 0 and 36500"},
        {"{ clawgate: { store: { file: 'x' } } }",
         "t.json5:1:24: clawgate.store.file: unknown key (expected path, onError, "
         "retentionDays, or enabled)"},
        {"{ clawgate: { store: { enabled: 'no' } } }",
         "t.json5:1:33: clawgate.store.enabled: must be true or false"},
        {"{ clawgate: { limits: { maxBodyBytes: 10 } } }",
         "t.json5:1:39: clawgate.limits.maxBodyBytes: must be between 1024 and 1073741824"},
        {"{ clawgate: { limits: { maxConnections: 0 } } }",
         "clawgate.limits.maxConnections: must be between 1 and 1000000"},
        {"{ clawgate: { limits: { maxHeaders: 1 } } }",
         "clawgate.limits.maxHeaders: unknown key (expected maxBodyBytes or maxConnections)"},
        {"{ clawgate: { timeouts: { connectMs: 0 } } }",
         "t.json5:1:38: clawgate.timeouts.connectMs: must be between 1 and 600000"},
        {"{ clawgate: { timeouts: { firstTokenSeconds: 3601 } } }",
         "clawgate.timeouts.firstTokenSeconds: must be between 1 and 3600"},
        {"{ clawgate: { timeouts: { idleSeconds: '60' } } }",
         "clawgate.timeouts.idleSeconds: must be a number, not a string"},
        {"{ clawgate: { timeouts: { requestSeconds: 86401 } } }",
         "clawgate.timeouts.requestSeconds: must be between 1 and 86400"},
        {"{ clawgate: { timeouts: { clientSeconds: 0 } } }",
         "clawgate.timeouts.clientSeconds: must be between 1 and 3600"},
        {"{ clawgate: { timeouts: { totalSeconds: 1 } } }",
         "clawgate.timeouts.totalSeconds: unknown key (expected connectMs, firstTokenSeconds, "
         "idleSeconds, requestSeconds, or clientSeconds)"},
        {"{ clawgate: { timeouts: [] } }", "clawgate.timeouts: must be an object, not an array"},
        {"{ clawgate: { logLevel: 'trace' } }",
         "t.json5:1:25: clawgate.logLevel: must be one of \"debug\", \"info\", \"notice\", "
         "\"warn\", or \"error\", not \"trace\""},
        {"{ clawgate: { health: { timeoutSeconds: 0 } } }",
         "clawgate.health.timeoutSeconds: must be between 1 and 600"},
        {"{ clawgate: { health: { keepWarm: { 'ghost/m': 5 } } } }",
         "t.json5:1:37: clawgate.health.keepWarm[\"ghost/m\"]: model \"ghost/m\" does not "
         "resolve"},
        {"{ clawgate: { health: { keepWarm: { opus: 0 } } } }",
         "clawgate.health.keepWarm.opus: must be between 1 and 10080"},
        {"{ clawgate: { routing: { policy: 'fastest' } } }",
         "clawgate.routing.policy: must be one of \"pinned\" or \"adaptive\""},
        {"{ clawgate: { routing: { primaryFactor: 0.5 } } }",
         "clawgate.routing.primaryFactor: must be between 1 and 100"},
        {"{ clawgate: { supervisor: { maxRestarts: 0 } } }",
         "clawgate.supervisor.maxRestarts: must be between 1 and 1000"},
        {"{ clawgate: { supervisor: { providerThreads: 'many' } } }",
         "clawgate.supervisor.providerThreads: must be one of \"shared\" or \"own\""},
        /* ${VAR} */
        {"{ models: { providers: { p: { baseUrl: 'http://${HOST}/v1', models: [] } } } }",
         "t.json5:1:40: models.providers.p.baseUrl: environment variable HOST is not set or "
         "empty"},
        {"{ clawgate: { store: { path: '${EMPTY}/db' } } }",
         "t.json5:1:30: clawgate.store.path: environment variable EMPTY is not set or empty"},
        {"{ agents: { defaults: { model: { fallbacks: ['opus', '${FB}'] } } } }",
         "t.json5:1:54: agents.defaults.model.fallbacks[1]: environment variable FB is not set"},
        {"{ models: { providers: { p: { baseUrl: 'http://h', apiKey: '${pass:team/key}', "
         "models: [] } } } }",
         "t.json5:1:60: models.providers.p.apiKey: ${pass:...} and ${gopass:...} secret lookups "
         "are not supported by clawgate"},
    };
    env_set("EMPTY", "");
    env_set("K", "k");
    size_t failed = 0;
    for (size_t i = 0; i < CG_ARRAY_LEN(cases); i++)
        failed += !check_bad(cases[i].text, cases[i].want);
    reset_diags();
    T_EQ_INT(failed, 0);
    /* a failed substitution is one error, not a cascade */
    load_bad("{ agents: { defaults: { model: { fallbacks: ['opus', '${FB}'] } } }, clawgate: { "
             "listen: '${FB}' } }",
             "environment variable FB");
    T_EQ_INT(errs.n, 2);
    reset_diags();
}

static void test_every_error_reported(void)
{
    env_clear();
    load_bad("{ clawgate: { listen: 1, logLevel: 'x', store: { onError: 'y' } },\n"
             "  models: { providers: { p: { baseUrl: 'ftp://h', models: [{ id: 'a' }] } } },\n"
             "  agents: { defaults: { model: 'ghost' } } }",
             "clawgate.listen");
    T_EQ_INT(errs.n, 6);
    /* in source order, whatever order the checks ran in */
    T_CONTAINS(errs.items[0], "t.json5:1:23: clawgate.listen");
    T_CONTAINS(errs.items[1], "t.json5:1:36: clawgate.logLevel");
    T_CONTAINS(errs.items[2], "t.json5:1:59: clawgate.store.onError");
    T_CONTAINS(errs.items[3], "t.json5:2:40: models.providers.p.baseUrl");
    T_CONTAINS(errs.items[4], "t.json5:2:60: models.providers.p.models[0]: missing required key "
                              "\"name\"");
    T_CONTAINS(errs.items[5], "t.json5:3:32: agents.defaults.model: model \"ghost\"");
    reset_diags();
}

static void test_notices(void)
{
    env_clear();
    cg_config_t *c = load_ok(
        "{ channels: { telegram: { botToken: '${TELEGRAM_TOKEN}' } }, tools: {}, gateway: "
        "{ port: 18789 }, frobnicate: 1,\n"
        "  agents: { defaults: { workspace: '~/w', compaction: {}, model: 'local/m1' }, list: [] },"
        "\n  models: { proxy: 'http://p', providers: { " LOCAL_PROVIDER ",\n"
        "    o: { baseUrl: 'http://o', api: 'ollama', auth: 'token', authHeader: true, "
        "request: {}, injectNumCtxForOpenAICompat: true, "
        "models: [{ id: 'x', name: 'X', maxTokens: 9000, contextWindow: 4096, "
        "contextTokens: 5000 }] } } },\n"
        "  dup: 1, dup: 2 }");
    T_EQ_INT(errs.n, 0);
    T_ASSERT(notes_contain("t.json5:1:3: channels: OpenClaw section, not used by clawgate"));
    T_ASSERT(notes_contain("t.json5:1:62: tools: OpenClaw section"));
    T_ASSERT(notes_contain("gateway: OpenClaw section"));
    T_ASSERT(notes_contain("frobnicate: unknown top-level key: ignored"));
    T_ASSERT(notes_contain("t.json5:5:11: duplicate key \"dup\": the last one wins"));
    T_ASSERT(notes_contain("t.json5:2:23: agents.defaults: not used by clawgate (it reads only "
                           "model and models): workspace, compaction"));
    T_ASSERT(notes_contain("agents: not used by clawgate (it reads only agents.defaults): list"));
    T_ASSERT(notes_contain("models.proxy: OpenClaw setting, not used by clawgate"));
    T_ASSERT(notes_contain("models.providers.o: api \"ollama\" is not supported by clawgate; "
                           "provider unavailable"));
    T_ASSERT(notes_contain("models.providers.o.authHeader: OpenClaw provider key"));
    T_ASSERT(notes_contain("models.providers.o.injectNumCtxForOpenAICompat: OpenClaw provider"));
    T_ASSERT(notes_contain("models.providers.o.request: not used by clawgate"));
    T_ASSERT(notes_contain("maxTokens 9000 is larger than contextWindow 4096; using 4096"));
    T_ASSERT(notes_contain("contextTokens 5000 is larger than contextWindow 4096; using 4096"));
    const cg_provider_t *o = &c->providers[1];
    T_EQ_STR(o->name, "o");
    T_ASSERT(!o->available);
    T_EQ_INT(o->api, CG_API_UNSUPPORTED);
    T_EQ_STR(o->api_name, "ollama");
    T_EQ_STR(o->unavailable_reason, "api \"ollama\" is not supported by clawgate");
    T_EQ_INT(o->models[0].max_tokens, 4096);
    T_EQ_INT(o->models[0].context_tokens, 4096);
    /* the channel token was never substituted: no error for a section clawgate ignores */
    cg_config_free(c);
    /* an unavailable primary is a notice, not an error */
    c = load_ok("{ agents: { defaults: { model: 'sonnet' } } }");
    T_ASSERT(notes_contain("t.json5:1:32: agents.defaults.model: anthropic/claude-sonnet-4-5 is "
                           "unavailable: ANTHROPIC_API_KEY is not set"));
    cg_config_free(c);
}

/* ---- merge, replace, hosted ---- */

static void test_merge_and_replace(void)
{
    env_clear();
    env_set("ANTHROPIC_API_KEY", "sk-ant-test");
    cg_config_t *c = load_ok("{ models: { providers: { " LOCAL_PROVIDER " } } }");
    T_EQ_INT(c->n_providers, 4);
    T_EQ_STR(c->providers[0].name, "local");
    T_EQ_STR(c->providers[1].name, "anthropic");
    T_EQ_STR(c->providers[2].name, "openai");
    T_EQ_STR(c->providers[3].name, "openrouter");
    const cg_provider_t *a = &c->providers[1];
    T_ASSERT(a->available);
    T_EQ_STR(a->key_source, "env:ANTHROPIC_API_KEY");
    T_EQ_STR(a->api_key, "sk-ant-test");
    T_EQ_STR(a->base_url, "https://api.anthropic.com");
    T_EQ_INT(a->api, CG_API_ANTHROPIC_MESSAGES);
    T_ASSERT(!c->providers[2].available);
    T_EQ_STR(c->providers[2].unavailable_reason, "OPENAI_API_KEY is not set");
    const cg_model_t *opus = resolve(c, "anthropic/claude-opus-4-6");
    T_ASSERT(opus && opus->provider == a);
    T_EQ_INT(opus->context_window, 200000);
    T_ASSERT(opus->cost.input > 0 && opus->cost.output > opus->cost.input);
    T_ASSERT(opus->reasoning);
    /* hosted compat profiles are the providers' real capabilities */
    const cg_model_t *gpt = resolve(c, "openai/gpt-4.1");
    T_ASSERT(gpt->compat.supports_store && gpt->compat.supports_developer_role &&
             gpt->compat.supports_strict_mode);
    T_EQ_STR(gpt->compat.max_tokens_field, "max_completion_tokens");
    T_EQ_INT(gpt->api, CG_API_OPENAI_RESPONSES);
    T_ASSERT(!opus->compat.supports_store && !opus->compat.supports_developer_role);
    /* first configured provider's first model is the default primary */
    T_EQ_STR(c->primary->ref, "local/m1");
    cg_config_free(c);

    c = load_ok("{ models: { mode: 'replace', providers: { " LOCAL_PROVIDER " } } }");
    T_EQ_INT(c->n_providers, 1);
    T_ASSERT(resolve(c, "anthropic/claude-opus-4-6") == NULL);
    T_ASSERT(resolve(c, "opus") == NULL); /* no built-in aliases in replace mode */
    cg_config_free(c);
}

static void test_merge_overrides_catalog(void)
{
    env_clear();
    cg_config_t *c = load_ok(
        "{ models: { providers: { anthropic: { baseUrl: 'https://proxy.example/anthropic', "
        "apiKey: 'sk-from-config', models: [{ id: 'claude-sonnet-4-5', name: 'Sonnet via proxy', "
        "contextWindow: 100000, compat: { supportsTools: false } }, "
        "{ id: 'claude-local-tune', name: 'Tuned' }] } } } }");
    const cg_provider_t *a = &c->providers[0];
    T_EQ_STR(a->name, "anthropic");
    T_ASSERT(a->builtin);
    T_ASSERT(a->available);
    T_EQ_STR(a->key_source, "config");
    T_EQ_STR(a->base_url, "https://proxy.example/anthropic");
    T_EQ_INT(a->n_models, 4); /* the two configured first, then the catalog's other two */
    const cg_model_t *s = &a->models[0];
    T_EQ_STR(s->id, "claude-sonnet-4-5");
    T_EQ_STR(s->name, "Sonnet via proxy");
    T_EQ_INT(s->context_window, 100000);
    T_EQ_INT(s->max_tokens, 64000); /* the catalog's, still under the window */
    T_ASSERT(s->cost.input == 3.0); /* catalog prices kept */
    T_ASSERT(!s->compat.supports_tools);
    T_EQ_STR(s->compat.max_tokens_field, "max_tokens"); /* the rest: anthropic's profile */
    T_EQ_STR(a->models[1].id, "claude-local-tune");
    T_EQ_STR(a->models[1].compat.max_tokens_field, "max_tokens");
    T_EQ_STR(a->models[2].id, "claude-opus-4-6");
    T_EQ_INT(c->n_providers, 3); /* not listed twice */
    T_ASSERT(c->primary == s);
    cg_config_free(c);
}

/* ---- resolution ---- */

static void test_resolution(void)
{
    env_clear();
    cg_config_t *c = load_ok(
        "{ agents: { defaults: { model: { primary: 'Local Fast', fallbacks: ['gpt-4.1', "
        "'OPUS', 'openrouter/anthropic/claude-sonnet-4.5', 'anthropic/claude-sonnet-4.5'] },\n"
        "  models: { 'local/m1': { alias: 'Local Fast', params: { temperature: 0.2 }, streaming: "
        "false }, 'dup-a': { alias: 'dupe' }, 'x/dup': {} } } },\n"
        "  models: { providers: { " LOCAL_PROVIDER ", x: { baseUrl: 'http://x', models: [{ id: "
        "'dup', name: 'D' }, { id: 'dup-a', name: 'DA' }, { id: 'sonnet', name: 'shadow' }] },"
        " y: { baseUrl: 'http://y', models: [{ id: 'dup', name: 'D2' }] } } } }");
    const cg_model_t *m1 = resolve(c, "local/m1");
    T_ASSERT(m1 != NULL);
    T_ASSERT(c->primary == m1);
    /* aliases: case-insensitive, and (ref, len) need not be NUL-terminated */
    T_ASSERT(resolve(c, "local fast") == m1);
    T_ASSERT(resolve(c, "LOCAL FAST") == m1);
    T_ASSERT(cg_config_resolve(c, "Local Fastest", 10) == m1);
    T_ASSERT(cg_config_resolve(c, "local/m1xyz", 8) == m1);
    T_ASSERT(cg_config_resolve(c, "m1", 2) == m1); /* bare id, one provider has it */
    T_ASSERT(cg_config_resolve(c, "m1", 1) == NULL);
    T_ASSERT(cg_config_resolve(c, "", 0) == NULL);
    T_ASSERT(cg_config_resolve(NULL, "m1", 2) == NULL);
    /* params and streaming from agents.defaults.models */
    T_ASSERT(m1->params != NULL);
    json_object *t;
    T_ASSERT(json_object_object_get_ex(m1->params, "temperature", &t));
    T_ASSERT(json_object_get_double(t) == 0.2);
    T_EQ_INT(m1->streaming, 0);
    /* fallbacks in order */
    T_EQ_INT(c->n_fallbacks, 4);
    T_EQ_STR(c->fallbacks[0]->ref, "openai/gpt-4.1");
    T_EQ_STR(c->fallbacks[1]->ref, "anthropic/claude-opus-4-6");              /* built-in alias */
    T_EQ_STR(c->fallbacks[2]->ref, "openrouter/anthropic/claude-sonnet-4.5"); /* first '/' */
    /* provider anthropic has no such id, so the bare id (OpenRouter's) is used */
    T_EQ_STR(c->fallbacks[3]->ref, "openrouter/anthropic/claude-sonnet-4.5");
    /* ambiguous bare ids resolve to nothing; provider/model still works */
    T_ASSERT(resolve(c, "dup") == NULL);
    T_EQ_STR(resolve(c, "y/dup")->name, "D2");
    T_EQ_STR(resolve(c, "dupe")->ref, "x/dup-a");
    /* a model id equal to a built-in alias keeps that alias from being added */
    T_EQ_STR(resolve(c, "sonnet")->ref, "x/sonnet");
    T_EQ_STR(resolve(c, "haiku")->ref, "anthropic/claude-haiku-4-5");
    T_ASSERT(resolve(c, "nope") == NULL);
    T_ASSERT(resolve(c, "local/") == NULL);
    T_ASSERT(resolve(c, "/m1") == NULL);
    char *d = describe(c);
    T_CONTAINS(d, "Local Fast");
    T_CONTAINS(d, "primary     local/m1");
    T_CONTAINS(d, "fallback 2  anthropic/claude-opus-4-6 ");
    T_CONTAINS(d, " unavailable: ANTHROPIC_API_KEY is not set\n  fallback 3");
    T_CONTAINS(d, "haiku");
    T_CONTAINS(d, "(built-in)");
    free(d);
    /* params outlive the parse tree: the config holds its own reference */
    cg_config_free(c);
}

/* ---- ${VAR} substitution ---- */

static void test_env_substitution(void)
{
    env_clear();
    env_set("LOCAL_HOST", "10.0.0.5");
    env_set("LOCAL_KEY", "sk-local-from-env");
    env_set("MODEL_ID", "qwen3");
    env_set("_U", "u");
    cg_config_t *c =
        load_ok("{ agents: { defaults: { model: 'lan/${MODEL_ID}' } },\n"
                "  models: { mode: 'replace', providers: { lan: { baseUrl: "
                "'http://${LOCAL_HOST}:8000/v1', apiKey: '${LOCAL_KEY}', headers: { 'X-Lit': "
                "'$${LOCAL_KEY} ${lower} ${1X} $${x} ${_U}${_U} $$ ${ unclosed' },\n"
                "  models: [{ id: '${MODEL_ID}', name: 'Q ${MODEL_ID}' }] } } },\n"
                "  clawgate: { store: { path: '/data/${MODEL_ID}.db' } } }");
    const cg_provider_t *p = &c->providers[0];
    T_EQ_STR(p->base_url, "http://10.0.0.5:8000/v1");
    T_EQ_STR(p->api_key, "sk-local-from-env");
    T_EQ_STR(p->key_source, "env:LOCAL_KEY");
    /* $${VAR} is a literal ${VAR}; names outside [A-Z_][A-Z0-9_]* are left alone */
    T_EQ_STR(p->headers[0].value, "${LOCAL_KEY} ${lower} ${1X} $${x} uu $$ ${ unclosed");
    T_EQ_STR(p->models[0].id, "qwen3");
    T_EQ_STR(p->models[0].name, "Q qwen3");
    T_EQ_STR(c->primary->ref, "lan/qwen3");
    T_EQ_STR(c->settings.store_path, "/data/qwen3.db");
    /* describe shows the URL as written, not the substituted value */
    char *d = describe(c);
    T_CONTAINS(d, "http://${LOCAL_HOST}:8000/v1");
    T_ASSERT(strstr(d, "10.0.0.5") == NULL);
    T_CONTAINS(d, "env:LOCAL_KEY");
    free(d);
    cg_config_free(c);

    /* an apiKey with more around the variable comes from the config */
    c = load_ok("{ models: { providers: { p: { baseUrl: 'http://h', apiKey: 'Bearer ${LOCAL_KEY}',"
                " models: [] } } } }");
    T_EQ_STR(c->providers[0].api_key, "Bearer sk-local-from-env");
    T_EQ_STR(c->providers[0].key_source, "config");
    cg_config_free(c);

    /* SecretRef with source env */
    c = load_ok("{ models: { providers: { p: { baseUrl: 'http://h', apiKey: { source: 'env', "
                "provider: 'default', id: 'LOCAL_KEY' }, headers: { Authorization: { source: "
                "'env', id: 'LOCAL_KEY' } }, models: [] } } } }");
    T_EQ_STR(c->providers[0].api_key, "sk-local-from-env");
    T_EQ_STR(c->providers[0].key_source, "env:LOCAL_KEY");
    T_EQ_STR(c->providers[0].headers[0].value, "sk-local-from-env");
    cg_config_free(c);

    /* every missing variable is reported, each with its own path */
    load_bad("{ models: { providers: { p: { baseUrl: 'http://${A1}/${A2}', apiKey: '${A3}', "
             "models: [] } } } }",
             "models.providers.p.baseUrl: environment variable A2 is not set");
    T_EQ_INT(errs.n, 3);
    T_CONTAINS(errs.items[0], "models.providers.p.baseUrl: environment variable A1");
    T_CONTAINS(errs.items[2], "models.providers.p.apiKey: environment variable A3");
    reset_diags();
}

/* ---- secrets never printed ---- */

static void assert_no_secret(const char *text, const char *secret)
{
    T_ASSERTF(strstr(text, secret) == NULL, "secret leaked into: %s", text);
}

static void test_secrets_never_printed(void)
{
    env_clear();
    env_set("ANTHROPIC_API_KEY", "sk-ant-ENVSECRET-1");
    env_set("SEC", "sk-SUBSTSECRET-2");
    env_set("REF", "sk-REFSECRET-3");
    const char *secrets[] = {"CFGSECRET", "ENVSECRET", "SUBSTSECRET", "REFSECRET", "HDRSECRET"};
    /* errors everywhere, including on the nodes that hold secrets */
    const char *bad_text =
        "{ models: { providers: {\n"
        "  p: { baseUrl: 'http://user:pw-CFGSECRET@h', apiKey: 'sk-CFGSECRET-0', api: '${SEC}', "
        "headers: { 'X K': 'HDRSECRET', A: 'HDRSECRET\\n' }, models: [{ id: '${SEC}', name: "
        "5 }] },\n"
        "  q: { baseUrl: 'http://h', apiKey: { source: 'env', id: 'REF', x: 'CFGSECRET' }, "
        "models: 'CFGSECRET' } } },\n"
        "  agents: { defaults: { model: '${SEC}', models: { 'p/${SEC}': { alias: '${SEC}' } } } "
        "},\n"
        "  clawgate: { listen: '${SEC}', logLevel: '${SEC}', store: { onError: 'maybe' } "
        "} }";
    cg_config_t *c = NULL;
    reset_diags();
    int rc = cg_config_load_string("s.json5", bad_text, strlen(bad_text), &opts, &c, &errs, &notes);
    T_EQ_INT(rc, CG_EINVAL);
    T_ASSERT(errs.n >= 8);
    char *all_e = joined(&errs), *all_n = joined(&notes);
    for (size_t i = 0; i < CG_ARRAY_LEN(secrets); i++) {
        assert_no_secret(all_e, secrets[i]);
        assert_no_secret(all_n, secrets[i]);
    }
    /* a value from the environment is named by its variable */
    T_CONTAINS(all_e, "models.providers.p.api: must be one of");
    T_CONTAINS(all_e, "not (value from ${SEC})");
    free(all_e);
    free(all_n);

    /* a valid config: describe shows key sources, never keys */
    const char *good_text =
        "{ agents: { defaults: { model: 'p/m' } }, models: { providers: {\n"
        "  p: { baseUrl: 'https://user:pw-CFGSECRET@h.example/v1?key=CFGSECRET', apiKey: "
        "'sk-CFGSECRET-0', headers: { Authorization: 'Bearer HDRSECRET' }, models: [{ id: 'm', "
        "name: 'M', headers: { 'X-K': 'HDRSECRET' } }] },\n"
        "  q: { baseUrl: 'http://q', apiKey: '${SEC}', models: [] },\n"
        "  r: { baseUrl: 'http://r', apiKey: { source: 'env', id: 'REF' }, models: [] } } } }";
    reset_diags();
    rc = cg_config_load_string("s.json5", good_text, strlen(good_text), &opts, &c, &errs, &notes);
    T_EQ_INT(rc, 0);
    char *d = describe(c);
    for (size_t i = 0; i < CG_ARRAY_LEN(secrets); i++)
        assert_no_secret(d, secrets[i]);
    T_CONTAINS(d, "https://***@h.example/v1?***");
    T_CONTAINS(d, "env:SEC");
    T_CONTAINS(d, "env:REF");
    T_CONTAINS(d, "env:ANTHROPIC_API_KEY");
    T_CONTAINS(d, "config");
    free(d);
    T_EQ_STR(c->providers[0].api_key, "sk-CFGSECRET-0"); /* still usable by the gateway */
    cg_config_free(c);
    reset_diags();
}

/* ---- files ---- */

static int load_fixture(const char *path)
{
    cg_config_t *c = NULL;
    reset_diags();
    int rc = cg_config_load_file(path, &opts, &c, &errs, &notes);
    if (rc != 0) {
        char *all = joined(&errs);
        fprintf(stdout, "#   %s:\n%s", path, all);
        free(all);
        return rc;
    }
    cg_assert(c->primary != NULL);
    char *d = describe(c);
    cg_assert(strstr(d, c->primary->ref) != NULL);
    free(d);
    cg_config_free(c);
    return 0;
}

static int load_dir(const char *dir, size_t *count)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return -1;
    struct dirent *e;
    int failed = 0;
    while ((e = readdir(dp))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 6, ".json5") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        failed += load_fixture(path) != 0;
        (*count)++;
    }
    closedir(dp);
    return failed;
}

static void test_fixtures_load(void)
{
    /* hosted keys unset: they load anyway, hosted providers unavailable */
    env_clear();
    size_t n = 0;
    T_EQ_INT(load_dir("tests/config/fixtures", &n), 0);
    T_ASSERT(n >= 4);
    /* the shared copy beside the repo, when present, may hold newer ones */
    size_t m = 0;
    int rc = load_dir("../shared/fixtures/configs", &m);
    T_ASSERT(rc <= 0);
    /* the example config shipped in etc/ */
    T_EQ_INT(load_fixture("etc/clawgate.json5"), 0);

    /* and with a key set, the hybrid fixture's primary is usable */
    env_set("ANTHROPIC_API_KEY", "sk-ant-x");
    cg_config_t *c = NULL;
    reset_diags();
    T_EQ_INT(cg_config_load_file("tests/config/fixtures/hybrid-hosted-primary.json5", &opts, &c,
                                 &errs, &notes),
             0);
    T_EQ_STR(c->primary->ref, "anthropic/claude-sonnet-4-5");
    T_ASSERT(c->primary->provider->available);
    T_EQ_INT(c->n_fallbacks, 2);
    T_EQ_STR(c->fallbacks[0]->ref, "lmstudio/minimax-m2.1-gs32");
    T_EQ_STR(c->fallbacks[1]->ref, "anthropic/claude-opus-4-6");
    T_EQ_STR(resolve(c, "minimax local")->ref, "lmstudio/minimax-m2.1-gs32");
    const cg_model_t *mm = c->fallbacks[0];
    T_EQ_INT(mm->api, CG_API_OPENAI_RESPONSES);
    T_EQ_INT(mm->context_window, 196608);
    T_EQ_INT(mm->max_tokens, 8192);
    T_EQ_STR(mm->provider->key_source, "config");
    char *d = describe(c);
    T_CONTAINS(d, "config tests/config/fixtures/hybrid-hosted-primary.json5 (models.mode merge)");
    T_CONTAINS(d, "  lmstudio    openai-responses    http://127.0.0.1:1234/v1      config    ");
    T_CONTAINS(d, "  anthropic   anthropic-messages  https://api.anthropic.com     "
                  "env:ANTHROPIC_API_KEY  built-in  ok\n");
    T_CONTAINS(d, "lmstudio/minimax-m2.1-gs32              openai-responses    196608   8192");
    T_CONTAINS(d, "MiniMax Local  lmstudio/minimax-m2.1-gs32");
    T_CONTAINS(d, "primary     anthropic/claude-sonnet-4-5");
    T_CONTAINS(d, "fallback 1  lmstudio/minimax-m2.1-gs32");
    T_CONTAINS(d, "listen      127.0.0.1:8089");
    T_ASSERT(strstr(d, "sk-ant-x") == NULL);
    free(d);
    cg_config_free(c);

    /* vllm: a single custom provider, no primary: its first model */
    env_clear();
    reset_diags();
    T_EQ_INT(cg_config_load_file("tests/config/fixtures/vllm-custom-openai.json5", &opts, &c, &errs,
                                 &notes),
             0);
    T_EQ_STR(c->primary->ref, "local/my-local-model");
    T_EQ_INT(c->primary->context_window, 120000);
    cg_config_free(c);
    reset_diags();
}

static void test_file_errors(void)
{
    cg_config_t *c = (cg_config_t *)1;
    reset_diags();
    T_EQ_INT(
        cg_config_load_file("tests/config/fixtures/does-not-exist.json5", &opts, &c, &errs, &notes),
        CG_EIO);
    T_ASSERT(c == NULL);
    T_EQ_INT(errs.n, 1);
    T_CONTAINS(errs.items[0],
               "tests/config/fixtures/does-not-exist.json5: cannot open: No such file");
    reset_diags();
    T_EQ_INT(cg_config_load_file("tests/config", &opts, &c, &errs, &notes), CG_EIO);
    T_CONTAINS(errs.items[0], "tests/config: not a regular file");
    reset_diags();
    /* a syntax error through the file path carries FILE:LINE:COL */
    char path[] = "/tmp/cg-test-config-XXXXXX";
    int fd = mkstemp(path);
    T_ASSERT(fd >= 0);
    const char *text = "{\n  models: {\n    mode: 'merge'\n    providers: {}\n  }\n}\n";
    T_ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    T_EQ_INT(cg_config_load_file(path, &opts, &c, &errs, &notes), CG_EINVAL);
    unlink(path);
    char want[128];
    snprintf(want, sizeof want, "%s:4:5: expected ',' or '}'", path);
    T_EQ_STR(errs.items[0], want);
    reset_diags();
    /* NULL diag lists are allowed */
    T_EQ_INT(cg_config_load_string("x", "{", 1, NULL, &c, NULL, NULL), CG_EINVAL);
    T_EQ_INT(cg_config_load_string("x", "{clawgate: 1}", 13, NULL, &c, NULL, NULL), CG_EINVAL);
}

static void test_limits(void)
{
    env_clear();
    /* too many models in one provider: one error, not a crash or a stall */
    cg_buf_t b = {0};
    cg_buf_puts(&b, "{ models: { providers: { p: { baseUrl: 'http://h', models: [");
    for (int i = 0; i < 10001; i++)
        cg_buf_printf(&b, "{id:'m%d',name:'M'},", i);
    cg_buf_puts(&b, "] } } } }");
    load_bad(b.data, "t.json5:1:60: models.providers.p.models: more than 10000 models");
    cg_buf_free(&b);
    /* too many refs */
    cg_buf_puts(&b, "{ agents: { defaults: { models: {");
    for (int i = 0; i < 10001; i++)
        cg_buf_printf(&b, "'p/m%d': {},", i);
    cg_buf_puts(&b, "} } } }");
    load_bad(b.data, "agents.defaults.models: more than 10000 entries");
    cg_buf_free(&b);
    /* input size */
    size_t n = ((size_t)8 << 20) + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    cg_config_t *c = NULL;
    reset_diags();
    T_EQ_INT(cg_config_load_string("t.json5", big, n, &opts, &c, &errs, &notes), CG_EINVAL);
    T_CONTAINS(errs.items[0], "t.json5:1:1: input larger than 8388608 bytes");
    free(big);
    /* the error list is bounded */
    cg_buf_puts(&b, "{ clawgate: {");
    for (int i = 0; i < 2000; i++)
        cg_buf_printf(&b, "k%d: 1,", i);
    cg_buf_puts(&b, "} }");
    load_bad(b.data, "clawgate.k0: unknown key");
    T_EQ_INT(errs.n, 501);
    T_EQ_STR(errs.items[500], "(further messages omitted)");
    cg_buf_free(&b);
    reset_diags();
}

static void test_describe_stable(void)
{
    env_clear();
    cg_config_t *c = load_ok("{ models: { mode: 'replace', providers: { " LOCAL_PROVIDER " } } }");
    char *a = describe(c), *b = describe(c);
    T_EQ_STR(a, b);
    T_CONTAINS(a, "providers\n  NAME   API                 BASE URL                  KEY   FROM    "
                  "STATUS\n  local  openai-completions  http://127.0.0.1:1234/v1  none  config  "
                  "ok\n");
    T_CONTAINS(a, "aliases\n  (none)\n");
    T_CONTAINS(a, "model chain\n  primary  local/m1\n");
    /* no line ends in a blank */
    T_ASSERT(strstr(a, " \n") == NULL);
    free(a);
    free(b);
    cg_config_free(c);
}

int main(void)
{
    T_RUN(test_empty_config_defaults);
    T_RUN(test_custom_model_defaults);
    T_RUN(test_full_model_and_compat);
    T_RUN(test_clawgate_block);
    T_RUN(test_error_paths);
    T_RUN(test_every_error_reported);
    T_RUN(test_notices);
    T_RUN(test_merge_and_replace);
    T_RUN(test_merge_overrides_catalog);
    T_RUN(test_resolution);
    T_RUN(test_env_substitution);
    T_RUN(test_secrets_never_printed);
    T_RUN(test_fixtures_load);
    T_RUN(test_file_errors);
    T_RUN(test_limits);
    T_RUN(test_describe_stable);
    reset_diags();
    T_DONE();
}
