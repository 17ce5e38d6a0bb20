/*
 * classify.c — turn an upstream failure into one of OpenClaw's failure classes.
 *
 * DESIGN
 * The class decides what the owner does next (fail over, cool a provider
 * down, hand the request to compaction), so the table follows OpenClaw's
 * (src/agents/pi-embedded-helpers/errors.ts) and the words operators know.
 * The HTTP status decides first; the body is read only where one status
 * covers several causes: a 400 is usually a malformed request, but local
 * servers also use it for "your prompt does not fit" (context_overflow, which
 * must never fall back to a smaller model) and "no such model"; a 429 from a
 * hosted provider may really be an exhausted quota (billing, a much longer
 * cooldown than a rate limit). Body matching is case-insensitive substring
 * search over at most the first 64 KB: error bodies are small, and this runs
 * once per failure, never on the success path.
 *
 * status 0 with curl_code 0 means "no HTTP status to go on": an error event
 * inside a 200 stream. Only the body can speak then.
 */
#include "actors/provider.h"

#include <curl/curl.h>

#define SCAN_CAP (64 * 1024)

static const char *const class_names[] = {
    [CG_FAIL_TIMEOUT] = "timeout",       [CG_FAIL_OVERLOADED] = "overloaded",
    [CG_FAIL_RATE_LIMIT] = "rate_limit", [CG_FAIL_AUTH] = "auth",
    [CG_FAIL_BILLING] = "billing",       [CG_FAIL_MODEL_NOT_FOUND] = "model_not_found",
    [CG_FAIL_FORMAT] = "format",         [CG_FAIL_CONTEXT_OVERFLOW] = "context_overflow",
    [CG_FAIL_UNKNOWN] = "unknown",       [CG_FAIL_ABORTED] = "aborted",
};

const char *cg_fail_class_name(cg_fail_class_t c)
{
    if ((unsigned)c >= CG_ARRAY_LEN(class_names))
        return "unknown";
    return class_names[c];
}

/* Case-insensitive search for an ASCII needle in body[0..len). */
static bool has(const char *body, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (!body || n == 0 || len < n)
        return false;
    for (size_t i = 0; i + n <= len; i++) {
        size_t j = 0;
        while (j < n) {
            char c = body[i + j];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (c != needle[j])
                break;
            j++;
        }
        if (j == n)
            return true;
    }
    return false;
}

static bool has_any(const char *body, size_t len, const char *const *needles)
{
    for (; *needles; needles++) {
        if (has(body, len, *needles))
            return true;
    }
    return false;
}

/* Needles are lower case. */
static const char *const context_words[] = {
    "context_length_exceeded",            /* OpenAI error code */
    "maximum context length",             /* OpenAI, vLLM */
    "context window",                     /* many hosted providers */
    "context length",                     /* "exceeds the context length" (SGLang, TGI) */
    "too many tokens",                    /* generic */
    "exceeds the available context size", /* llama.cpp server */
    "exceed_context_size",                /* llama.cpp error type */
    "prompt is too long",                 /* Anthropic */
    "input is too long",                  /* Bedrock, others */
    "context size has been exceeded",     /* LM Studio */
    NULL,
};

static const char *const model_missing_words[] = {
    "model_not_found", "does not exist", "model not found",   "no such model",
    "unknown model",   "invalid model",  "not a valid model", NULL,
};

static const char *const billing_words[] = {
    "insufficient_quota",
    "billing",
    "credit balance",
    "exceeded your current quota",
    "payment required",
    "insufficient credits",
    NULL,
};

static const char *const rate_words[] = {
    "rate limit",   "rate_limit",     "ratelimit", "too many requests",
    "requests per", "tokens per min", NULL,
};

static const char *const auth_words[] = {
    "invalid api key", "invalid_api_key", "incorrect api key",
    "unauthorized",    "authentication",  NULL,
};

/* A transport error: the exchange did not complete, so another attempt (or
 * another provider) may well succeed. Configuration mistakes that no retry
 * fixes (bad URL, protocol) are `unknown` so they do not read as a flaky
 * network. */
static cg_fail_class_t classify_curl(int code)
{
    switch ((CURLcode)code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_WRITE_ERROR: /* we aborted the transfer ourselves */
    case CURLE_ABORTED_BY_CALLBACK:
        return CG_FAIL_UNKNOWN;
    default:
        return CG_FAIL_TIMEOUT;
    }
}

/* Body only: an error event inside a 2xx stream, or a status that does not
 * decide by itself. */
static cg_fail_class_t classify_body(const char *body, size_t len)
{
    if (has_any(body, len, context_words))
        return CG_FAIL_CONTEXT_OVERFLOW;
    if (has(body, len, "overloaded"))
        return CG_FAIL_OVERLOADED;
    if (has_any(body, len, billing_words))
        return CG_FAIL_BILLING;
    if (has_any(body, len, rate_words))
        return CG_FAIL_RATE_LIMIT;
    if (has_any(body, len, auth_words))
        return CG_FAIL_AUTH;
    if (has(body, len, "model") && has_any(body, len, model_missing_words))
        return CG_FAIL_MODEL_NOT_FOUND;
    return CG_FAIL_UNKNOWN;
}

cg_fail_class_t cg_fail_classify(int curl_code, long status, const char *body, size_t body_len)
{
    if (!body)
        body_len = 0;
    if (body_len > SCAN_CAP)
        body_len = SCAN_CAP;

    if (status == 0) {
        if (curl_code != 0)
            return classify_curl(curl_code);
        return classify_body(body, body_len);
    }

    switch (status) {
    case 408:
    case 499:
    case 502:
    case 503:
    case 504:
        return CG_FAIL_TIMEOUT;
    case 500:
        /* Some local servers (LM Studio, older llama.cpp) report an
         * overflowing prompt as a 500; retrying it elsewhere would fail
         * worse, so let the words win. */
        if (has_any(body, body_len, context_words))
            return CG_FAIL_CONTEXT_OVERFLOW;
        return CG_FAIL_TIMEOUT;
    case 529:
        return CG_FAIL_OVERLOADED;
    case 429:
        /* OpenAI answers an exhausted quota with 429 insufficient_quota:
         * waiting a minute does not help, paying does. */
        if (has_any(body, body_len, billing_words))
            return CG_FAIL_BILLING;
        return CG_FAIL_RATE_LIMIT;
    case 401:
    case 403:
        return CG_FAIL_AUTH;
    case 402:
        return CG_FAIL_BILLING;
    case 404:
        return CG_FAIL_MODEL_NOT_FOUND;
    case 400:
    case 413:
    case 422:
        if (has_any(body, body_len, context_words))
            return CG_FAIL_CONTEXT_OVERFLOW;
        if (has(body, body_len, "model") && has_any(body, body_len, model_missing_words))
            return CG_FAIL_MODEL_NOT_FOUND;
        /* Anthropic reports a low credit balance as 400. */
        if (has_any(body, body_len, billing_words))
            return CG_FAIL_BILLING;
        /* Some proxies (LiteLLM in front of a rate-limited backend) wrap a
         * 429 into a 400; the words say what happened. */
        if (has_any(body, body_len, rate_words))
            return CG_FAIL_RATE_LIMIT;
        return CG_FAIL_FORMAT;
    default:
        return CG_FAIL_UNKNOWN;
    }
}
