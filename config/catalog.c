/*
 * catalog.c — the built-in hosted catalog (see catalog.h).
 *
 * DESIGN
 * Plain data. Prices and limits are the providers' published figures when
 * this was written; they only feed cost accounting and the context guard, and
 * any of them can be overridden per model in the config. Compat profiles say
 * what each hosted API really accepts, so requests to them are not
 * needlessly stripped: OpenAI takes `store`, the developer role, strict tool
 * schemas and max_completion_tokens; Anthropic and OpenRouter do not.
 */
#include "config/catalog.h"

const cg_compat_t cg_catalog_custom_compat = {
    .supports_store = false,
    .supports_developer_role = false,
    .supports_reasoning_effort = true,
    .supports_usage_in_streaming = true,
    .supports_tools = true,
    .supports_strict_mode = false,
    .requires_string_content = false,
    .max_tokens_field = NULL,
    .tool_calls_as_text = false,
};

static const cg_catalog_model_t anthropic_models[] = {
    {"claude-opus-4-6", "Claude Opus 4.6", true, true, 5.0, 25.0, 0.5, 6.25, 200000, 128000},
    {"claude-sonnet-4-5", "Claude Sonnet 4.5", true, true, 3.0, 15.0, 0.3, 3.75, 200000, 64000},
    {"claude-haiku-4-5", "Claude Haiku 4.5", true, true, 1.0, 5.0, 0.1, 1.25, 200000, 64000},
};

static const cg_catalog_model_t openai_models[] = {
    {"gpt-5.2", "GPT-5.2", true, true, 1.75, 14.0, 0.175, 0, 400000, 128000},
    {"gpt-5-mini", "GPT-5 mini", true, true, 0.25, 2.0, 0.025, 0, 400000, 128000},
    {"gpt-4.1", "GPT-4.1", false, true, 2.0, 8.0, 0.5, 0, 1047576, 32768},
    {"gpt-4o-mini", "GPT-4o mini", false, true, 0.15, 0.6, 0.075, 0, 128000, 16384},
};

static const cg_catalog_model_t openrouter_models[] = {
    {"anthropic/claude-sonnet-4.5", "Claude Sonnet 4.5 (OpenRouter)", true, true, 3.0, 15.0, 0.3,
     3.75, 200000, 64000},
    {"openai/gpt-5-mini", "GPT-5 mini (OpenRouter)", true, true, 0.25, 2.0, 0.025, 0, 400000,
     128000},
    {"google/gemini-2.5-pro", "Gemini 2.5 Pro (OpenRouter)", true, true, 1.25, 10.0, 0.31, 1.625,
     1048576, 65536},
};

static const cg_catalog_provider_t providers[] = {
    {
        .name = "anthropic",
        .base_url = "https://api.anthropic.com",
        .api_name = "anthropic-messages",
        .api = CG_API_ANTHROPIC_MESSAGES,
        .env_key = "ANTHROPIC_API_KEY",
        .compat =
            {
                .supports_store = false,
                .supports_developer_role = false,
                .supports_reasoning_effort = false,
                .supports_usage_in_streaming = true,
                .supports_tools = true,
                .supports_strict_mode = false,
                .requires_string_content = false,
                .max_tokens_field = "max_tokens",
                .tool_calls_as_text = false,
            },
        .models = anthropic_models,
        .n_models = CG_ARRAY_LEN(anthropic_models),
    },
    {
        .name = "openai",
        .base_url = "https://api.openai.com/v1",
        .api_name = "openai-responses",
        .api = CG_API_OPENAI_RESPONSES,
        .env_key = "OPENAI_API_KEY",
        .compat =
            {
                .supports_store = true,
                .supports_developer_role = true,
                .supports_reasoning_effort = true,
                .supports_usage_in_streaming = true,
                .supports_tools = true,
                .supports_strict_mode = true,
                .requires_string_content = false,
                .max_tokens_field = "max_completion_tokens",
                .tool_calls_as_text = false,
            },
        .models = openai_models,
        .n_models = CG_ARRAY_LEN(openai_models),
    },
    {
        .name = "openrouter",
        .base_url = "https://openrouter.ai/api/v1",
        .api_name = "openai-completions",
        .api = CG_API_OPENAI_COMPLETIONS,
        .env_key = "OPENROUTER_API_KEY",
        .compat =
            {
                .supports_store = false,
                .supports_developer_role = false,
                .supports_reasoning_effort = true,
                .supports_usage_in_streaming = true,
                .supports_tools = true,
                .supports_strict_mode = false,
                .requires_string_content = false,
                .max_tokens_field = "max_tokens",
                .tool_calls_as_text = false,
            },
        .models = openrouter_models,
        .n_models = CG_ARRAY_LEN(openrouter_models),
    },
};

/* OpenClaw's built-in shorthands; a config alias of the same name (any case)
 * or a model id equal to one of them takes precedence. */
static const cg_catalog_alias_t aliases[] = {
    {"opus", "anthropic/claude-opus-4-6"},   {"sonnet", "anthropic/claude-sonnet-4-5"},
    {"haiku", "anthropic/claude-haiku-4-5"}, {"gpt", "openai/gpt-5.2"},
    {"gpt-mini", "openai/gpt-5-mini"},
};

const cg_catalog_provider_t *cg_catalog_providers(size_t *n)
{
    *n = CG_ARRAY_LEN(providers);
    return providers;
}

const cg_catalog_provider_t *cg_catalog_find(const char *name)
{
    for (size_t i = 0; i < CG_ARRAY_LEN(providers); i++)
        if (strcmp(providers[i].name, name) == 0)
            return &providers[i];
    return NULL;
}

const cg_catalog_alias_t *cg_catalog_aliases(size_t *n)
{
    *n = CG_ARRAY_LEN(aliases);
    return aliases;
}
