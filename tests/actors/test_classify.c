/*
 * test_classify.c — table tests of cg_fail_classify and cg_fail_class_name.
 */
#include "actors/provider.h"
#include "tests/t.h"

#include <curl/curl.h>

typedef struct row {
    int curl_code;
    long status;
    const char *body;
    cg_fail_class_t want;
} row_t;

static const row_t rows[] = {
    /* transport */
    {CURLE_COULDNT_CONNECT, 0, NULL, CG_FAIL_TIMEOUT},
    {CURLE_COULDNT_RESOLVE_HOST, 0, NULL, CG_FAIL_TIMEOUT},
    {CURLE_OPERATION_TIMEDOUT, 0, NULL, CG_FAIL_TIMEOUT},
    {CURLE_RECV_ERROR, 0, NULL, CG_FAIL_TIMEOUT},
    {CURLE_SEND_ERROR, 0, NULL, CG_FAIL_TIMEOUT},
    {CURLE_GOT_NOTHING, 0, NULL, CG_FAIL_TIMEOUT},
    {CURLE_PARTIAL_FILE, 0, NULL, CG_FAIL_TIMEOUT},
    {CURLE_SSL_CONNECT_ERROR, 0, NULL, CG_FAIL_TIMEOUT},
    {CURLE_URL_MALFORMAT, 0, NULL, CG_FAIL_UNKNOWN},
    {CURLE_UNSUPPORTED_PROTOCOL, 0, NULL, CG_FAIL_UNKNOWN},
    /* statuses that decide alone */
    {0, 408, "", CG_FAIL_TIMEOUT},
    {0, 499, "", CG_FAIL_TIMEOUT},
    {0, 500, "{\"error\":{\"message\":\"internal\"}}", CG_FAIL_TIMEOUT},
    {0, 502, "bad gateway", CG_FAIL_TIMEOUT},
    {0, 503, "model is loading", CG_FAIL_TIMEOUT},
    {0, 504, NULL, CG_FAIL_TIMEOUT},
    {0, 529, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}", CG_FAIL_OVERLOADED},
    {0, 429, "{\"error\":{\"message\":\"Rate limit reached for requests\"}}", CG_FAIL_RATE_LIMIT},
    {0, 429, NULL, CG_FAIL_RATE_LIMIT},
    {0, 401, "{\"error\":{\"code\":\"invalid_api_key\"}}", CG_FAIL_AUTH},
    {0, 403, "forbidden", CG_FAIL_AUTH},
    {0, 402, "", CG_FAIL_BILLING},
    {0, 404, "{\"error\":\"not found\"}", CG_FAIL_MODEL_NOT_FOUND},
    {0, 404, NULL, CG_FAIL_MODEL_NOT_FOUND},
    /* 429 that is really a quota */
    {0, 429,
     "{\"error\":{\"message\":\"You exceeded your current quota, please check your plan and "
     "billing details.\",\"type\":\"insufficient_quota\"}}",
     CG_FAIL_BILLING},
    /* 400/422: format unless the words say otherwise */
    {0, 400, "{\"error\":{\"message\":\"'messages' must contain at least one message\"}}",
     CG_FAIL_FORMAT},
    {0, 422, "{\"detail\":[{\"loc\":[\"body\",\"messages\"],\"msg\":\"field required\"}]}",
     CG_FAIL_FORMAT},
    {0, 400, NULL, CG_FAIL_FORMAT},
    {0, 400,
     "{\"error\":{\"message\":\"This model's maximum context length is 8192 tokens. However, your "
     "messages resulted in 9000 tokens.\",\"code\":\"context_length_exceeded\"}}",
     CG_FAIL_CONTEXT_OVERFLOW},
    {0, 400, "{\"error\":{\"code\":\"CONTEXT_LENGTH_EXCEEDED\"}}", CG_FAIL_CONTEXT_OVERFLOW},
    {0, 400,
     "{\"error\":{\"code\":400,\"message\":\"the request exceeds the available context size, try "
     "increasing it\",\"type\":\"exceed_context_size_error\"}}",
     CG_FAIL_CONTEXT_OVERFLOW},
    {0, 400,
     "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"prompt is "
     "too "
     "long: 210000 tokens > 200000 maximum\"}}",
     CG_FAIL_CONTEXT_OVERFLOW},
    {0, 400, "Input exceeds the model's context window", CG_FAIL_CONTEXT_OVERFLOW},
    {0, 400, "Too many tokens in request", CG_FAIL_CONTEXT_OVERFLOW},
    {0, 422, "maximum context length exceeded", CG_FAIL_CONTEXT_OVERFLOW},
    {0, 413, "request entity too large", CG_FAIL_FORMAT},
    {0, 500, "Trying to keep the first 9000 tokens when context size has been exceeded",
     CG_FAIL_CONTEXT_OVERFLOW},
    {0, 400, "{\"error\":{\"message\":\"The model `gpt-9` does not exist\"}}",
     CG_FAIL_MODEL_NOT_FOUND},
    {0, 400, "{\"error\":{\"code\":\"model_not_found\"}}", CG_FAIL_MODEL_NOT_FOUND},
    /* "does not exist" without a model is just a bad request */
    {0, 400, "{\"error\":{\"message\":\"tool 'x' does not exist\"}}", CG_FAIL_FORMAT},
    {0, 400, "Your credit balance is too low to access the Anthropic API", CG_FAIL_BILLING},
    {0, 400, "upstream rate limit exceeded, retry later", CG_FAIL_RATE_LIMIT},
    /* other statuses */
    {0, 405, "method not allowed", CG_FAIL_UNKNOWN},
    {0, 501, "", CG_FAIL_UNKNOWN},
    /* no status: an error event inside a 200 stream */
    {0, 0, "{\"error\":{\"message\":\"maximum context length is 4096\"}}",
     CG_FAIL_CONTEXT_OVERFLOW},
    {0, 0, "{\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
     CG_FAIL_OVERLOADED},
    {0, 0, "{\"error\":{\"message\":\"Rate limit exceeded\"}}", CG_FAIL_RATE_LIMIT},
    {0, 0, "{\"error\":{\"message\":\"something broke\"}}", CG_FAIL_UNKNOWN},
    {0, 0, NULL, CG_FAIL_UNKNOWN},
};

static void test_table(void)
{
    for (size_t i = 0; i < CG_ARRAY_LEN(rows); i++) {
        const row_t *r = &rows[i];
        size_t len = r->body ? strlen(r->body) : 0;
        cg_fail_class_t got = cg_fail_classify(r->curl_code, r->status, r->body, len);
        T_ASSERTF(got == r->want, "row %zu (curl %d, status %ld, body %s): got %s, want %s", i,
                  r->curl_code, r->status, r->body ? r->body : "(null)", cg_fail_class_name(got),
                  cg_fail_class_name(r->want));
    }
}

/* The body is a length-delimited span: bytes past len must not count. */
static void test_body_len_respected(void)
{
    const char *b = "bad request. maximum context length";
    T_EQ_INT(cg_fail_classify(0, 400, b, 12), CG_FAIL_FORMAT);
    T_EQ_INT(cg_fail_classify(0, 400, b, strlen(b)), CG_FAIL_CONTEXT_OVERFLOW);
    /* A NULL body with a length is treated as empty. */
    T_EQ_INT(cg_fail_classify(0, 400, NULL, 100), CG_FAIL_FORMAT);
}

/* Only the first 64 KB are read: a huge body costs bounded time. */
static void test_scan_cap(void)
{
    size_t n = 200 * 1024;
    char *b = malloc(n);
    memset(b, 'x', n);
    memcpy(b + n - 40, "maximum context length", 22);
    T_EQ_INT(cg_fail_classify(0, 400, b, n), CG_FAIL_FORMAT);
    memcpy(b + 100, "maximum context length", 22);
    T_EQ_INT(cg_fail_classify(0, 400, b, n), CG_FAIL_CONTEXT_OVERFLOW);
    free(b);
}

static void test_names(void)
{
    T_EQ_STR(cg_fail_class_name(CG_FAIL_TIMEOUT), "timeout");
    T_EQ_STR(cg_fail_class_name(CG_FAIL_OVERLOADED), "overloaded");
    T_EQ_STR(cg_fail_class_name(CG_FAIL_RATE_LIMIT), "rate_limit");
    T_EQ_STR(cg_fail_class_name(CG_FAIL_AUTH), "auth");
    T_EQ_STR(cg_fail_class_name(CG_FAIL_BILLING), "billing");
    T_EQ_STR(cg_fail_class_name(CG_FAIL_MODEL_NOT_FOUND), "model_not_found");
    T_EQ_STR(cg_fail_class_name(CG_FAIL_FORMAT), "format");
    T_EQ_STR(cg_fail_class_name(CG_FAIL_CONTEXT_OVERFLOW), "context_overflow");
    T_EQ_STR(cg_fail_class_name(CG_FAIL_UNKNOWN), "unknown");
    T_EQ_STR(cg_fail_class_name((cg_fail_class_t)99), "unknown");
}

int main(void)
{
    T_RUN(test_table);
    T_RUN(test_body_len_respected);
    T_RUN(test_scan_cap);
    T_RUN(test_names);
    T_DONE();
}
