/*
 * prober.c — health probes and keep-warm requests on one curl multi handle.
 *
 * DESIGN
 * Jobs. A job is one periodic HTTP request: a probe (GET {baseUrl}/models,
 * one per available provider) or a keep-warm (a 1-token completion, one per
 * clawgate.health.keepWarm entry). Everything a job's transfer needs (URL,
 * header lines, body) is copied out of the config snapshot when the jobs are
 * built (at start and on CG_MSG_RELOAD), so no snapshot reference is held
 * between loop turns. Each job has a one-shot actor timer, re-armed when its
 * transfer starts with interval * (0.8 .. 1.2); a job whose previous transfer
 * is still running when its timer fires skips that round (a hanging server
 * gets one probe at a time, bounded by the probe timeout).
 *
 * curl. The multi handle is driven from the actor's epoll exactly as in the
 * provider actor (see provider.c): CURLMOPT_SOCKETFUNCTION maps onto
 * cg_actor_watch/rewatch/unwatch, CURLMOPT_TIMERFUNCTION onto one actor
 * timer, and finished transfers are collected after curl_multi_socket_action
 * returns — the only place where removing a handle is legal. Jobs are freed
 * only outside curl callbacks (reload and cleanup run from the message
 * handler and the actor's cleanup).
 *
 * Reports. A probe's result goes to the supervisor as CG_SUP_HEALTH. If the
 * supervisor's mailbox is full the report is dropped: the next probe comes
 * within one interval, and a stale health is better than a blocked prober.
 */
#include "actors/curlm.h"
#include "actors/prober.h"

#include "actors/supervisor.h"
#include "config/config.h"

#include <json.h>
#include <strings.h>
#include <sys/epoll.h>

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define PROBE_BODY_CAP ((size_t)4 << 20) /* a model list; LM Studio's are a few KB */
#define WARM_BODY_CAP ((size_t)64 << 10)
#define DEFAULT_INTERVAL_S 15
#define DEFAULT_TIMEOUT_S 5
#define WARM_TIMEOUT_S 120 /* a keep-warm may have to load the model first */
#define FIRST_PROBE_MAX_MS 250
#define MAX_LIST 4096
#define MAX_HDRS 64

typedef enum { JOB_PROBE, JOB_WARM } job_kind_t;

typedef struct prober prober_t;

typedef struct job {
    prober_t *p;
    job_kind_t kind;
    char *name; /* provider name (probe) or model ref (keep-warm) */
    char *url;
    char *body; /* keep-warm POST body; NULL for GET */
    struct curl_slist *headers;
    uint64_t interval_ns;
    long timeout_ms;
    long connect_ms;
    uint64_t timer;
    CURL *easy; /* in flight, or NULL */
    uint64_t started_ns;
    cg_buf_t rx;
    bool overflow;
    char errbuf[CURL_ERROR_SIZE];
} job_t;

struct prober {
    cg_actor_t *actor;
    cg_prober_args_t args;
    cg_curlm_t cm; /* the multi handle on this actor's loop (curlm.h) */
    job_t **jobs;
    size_t n_jobs;
    uint64_t rng;
};

/* ---- jitter ---- */

static uint64_t next_rand(prober_t *p)
{
    /* xorshift64*: quality is irrelevant, only spreading matters */
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return p->rng * 2685821657736338717ull;
}

/* interval +-20% */
static uint64_t jittered(prober_t *p, uint64_t interval)
{
    uint64_t span = interval / 5;
    if (span == 0)
        return interval;
    return interval - span + next_rand(p) % (2 * span + 1);
}

/* ---- curl plumbing ---- */

static void drain_done(prober_t *p);

/* curl made progress (curlm.c): collect what it finished. */
static void drain_cb(void *ud)
{
    drain_done(ud);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    job_t *j = ud;
    size_t n = size * nmemb;
    size_t cap = j->kind == JOB_PROBE ? PROBE_BODY_CAP : WARM_BODY_CAP;
    if (j->rx.len + n > cap) {
        /* A keep-warm answer is not read; a model list this large is not
         * one: stop the transfer. */
        j->overflow = true;
        return 0;
    }
    cg_buf_append(&j->rx, ptr, n);
    return n;
}

/* Remove and clean the job's transfer (never from inside a curl callback). */
static void job_end_transfer(prober_t *p, job_t *j)
{
    if (!j->easy)
        return;
    curl_multi_remove_handle(p->cm.multi, j->easy);
    curl_easy_cleanup(j->easy);
    j->easy = NULL;
    cg_buf_reset(&j->rx);
    j->overflow = false;
}

/* ---- jobs ---- */

static void job_timer_cb(cg_actor_t *a, void *ud);

static void job_start(prober_t *p, job_t *j)
{
    CURL *e = curl_easy_init();
    if (!e) {
        cg_warn("prober: curl_easy_init failed for %s", j->name);
        return;
    }
    j->errbuf[0] = '\0';
    j->overflow = false;
    cg_buf_reset(&j->rx);
    curl_easy_setopt(e, CURLOPT_URL, j->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    cg_curlm_easy(&p->cm, e);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, j->connect_ms);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (j->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(j->body));
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    j->easy = e;
    j->started_ns = cg_now_ns();
    if (curl_multi_add_handle(p->cm.multi, e) != CURLM_OK) {
        cg_warn("prober: cannot start the request for %s", j->name);
        curl_easy_cleanup(e);
        j->easy = NULL;
    }
}

static void job_timer_cb(cg_actor_t *a, void *ud)
{
    job_t *j = ud;
    prober_t *p = j->p;
    j->timer = cg_actor_timer(a, jittered(p, j->interval_ns), 0, job_timer_cb, j);
    if (j->easy)
        return; /* the previous one is still running: no pile-up */
    job_start(p, j);
}

/* The ids of an OpenAI model list {"data":[{"id":...},...]}; false when the
 * body is not one. *ids point into *root (json_object_put it after). */
static bool parse_list(const char *body, size_t len, json_object **root, const char **ids,
                       size_t *n)
{
    *n = 0;
    *root = NULL;
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    bool ok = json_tokener_get_error(tok) == json_tokener_success && o;
    json_tokener_free(tok);
    json_object *data;
    if (!ok || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, "data", &data) ||
        !json_object_is_type(data, json_type_array)) {
        json_object_put(o);
        return false;
    }
    size_t len_arr = json_object_array_length(data);
    for (size_t i = 0; i < len_arr && *n < MAX_LIST; i++) {
        json_object *item = json_object_array_get_idx(data, i), *id;
        if (json_object_is_type(item, json_type_object) &&
            json_object_object_get_ex(item, "id", &id) && json_object_is_type(id, json_type_string))
            ids[(*n)++] = json_object_get_string(id);
    }
    *root = o;
    return true;
}

static void report(prober_t *p, job_t *j, bool up, uint64_t latency, const char *error,
                   const char *const *ids, size_t n, bool listed)
{
    cg_msg_t *m = cg_sup_health_msg(j->name, up, latency, error, ids, n, listed);
    m->sender = m->reply_to = cg_actor_self(p->actor);
    int rc = cg_actor_send(p->args.supervisor, m);
    if (rc != CG_OK) {
        cg_msg_free(m); /* see DESIGN: dropped, the next probe reports again */
        cg_debug("prober: health report for %s dropped: %s", j->name, cg_strerror(rc));
    }
}

static void probe_done(prober_t *p, job_t *j, CURLcode res, long code)
{
    uint64_t latency = cg_now_ns() - j->started_ns;
    char err[CURL_ERROR_SIZE + 64];
    if (res != CURLE_OK && !(res == CURLE_WRITE_ERROR && j->overflow)) {
        snprintf(err, sizeof err, "%s", j->errbuf[0] ? j->errbuf : curl_easy_strerror(res));
        report(p, j, false, latency, err, NULL, 0, false);
        return;
    }
    if (j->overflow) {
        report(p, j, true, latency, "model list too large", NULL, 0, false);
        return;
    }
    if (code >= 500) {
        snprintf(err, sizeof err, "GET /models answered HTTP %ld", code);
        report(p, j, false, latency, err, NULL, 0, false);
        return;
    }
    if (code < 200 || code >= 300) {
        /* It answers, so it is up; it just will not list (auth, no such
         * endpoint behind some proxies). */
        snprintf(err, sizeof err, "GET /models answered HTTP %ld", code);
        report(p, j, true, latency, err, NULL, 0, false);
        return;
    }
    const char **ids = cg_calloc(MAX_LIST, sizeof *ids);
    size_t n = 0;
    json_object *root = NULL;
    bool listed = parse_list(j->rx.data ? j->rx.data : "", j->rx.len, &root, ids, &n);
    report(p, j, true, latency, listed ? NULL : "GET /models did not answer with a model list", ids,
           n, listed);
    json_object_put(root);
    cg_free(ids);
}

static void warm_done(job_t *j, CURLcode res, long code)
{
    if (res == CURLE_OK && code >= 200 && code < 300) {
        cg_debug("prober: keep-warm %s ok in %llu ms", j->name,
                 (unsigned long long)((cg_now_ns() - j->started_ns) / NS_PER_MS));
        return;
    }
    if (res != CURLE_OK && !j->overflow)
        cg_info("prober: keep-warm %s failed: %s", j->name,
                j->errbuf[0] ? j->errbuf : curl_easy_strerror(res));
    else if (code >= 300)
        cg_info("prober: keep-warm %s answered HTTP %ld", j->name, code);
}

static void drain_done(prober_t *p)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(p->cm.multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;
        /* msg is invalid once the handle is removed: read nothing after. */
        job_t *j = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&j);
        cg_assert(j != NULL && j->easy == e);
        long code = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        if (j->kind == JOB_PROBE)
            probe_done(p, j, res, code);
        else
            warm_done(j, res, code);
        job_end_transfer(p, j);
    }
}

/* ---- building jobs from the config ---- */

typedef struct hdrs {
    char *name[MAX_HDRS];
    char *value[MAX_HDRS];
    size_t n;
} hdrs_t;

/* Later values replace earlier ones of the same name (case-insensitive). */
static void hdr_set(hdrs_t *h, const char *name, const char *value)
{
    if (!name || !*name || !value || strpbrk(name, "\r\n: ") || strpbrk(value, "\r\n"))
        return;
    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->name[i], name) == 0) {
            cg_free(h->value[i]);
            h->value[i] = cg_strdup(value);
            return;
        }
    }
    if (h->n == MAX_HDRS)
        return;
    h->name[h->n] = cg_strdup(name);
    h->value[h->n] = cg_strdup(value);
    h->n++;
}

static struct curl_slist *hdr_list(hdrs_t *h)
{
    struct curl_slist *l = NULL;
    for (size_t i = 0; i < h->n; i++) {
        char *line = h->value[i][0] ? cg_sprintf("%s: %s", h->name[i], h->value[i])
                                    : cg_sprintf("%s;", h->name[i]);
        l = curl_slist_append(l, line);
        cg_free(line);
        cg_free(h->name[i]);
        cg_free(h->value[i]);
    }
    h->n = 0;
    return curl_slist_append(l, "Expect:");
}

/* The provider's auth and configured headers, then the model's (if any). */
static struct curl_slist *headers_for(const cg_provider_t *pv, const cg_model_t *m, bool json)
{
    hdrs_t h = {.n = 0};
    if (pv->api == CG_API_ANTHROPIC_MESSAGES) {
        if (pv->api_key)
            hdr_set(&h, "x-api-key", pv->api_key);
        hdr_set(&h, "anthropic-version", "2023-06-01");
    } else if (pv->api_key) {
        char *v = cg_sprintf("Bearer %s", pv->api_key);
        hdr_set(&h, "Authorization", v);
        cg_free(v);
    }
    if (json)
        hdr_set(&h, "Content-Type", "application/json");
    for (size_t i = 0; i < pv->n_headers; i++)
        hdr_set(&h, pv->headers[i].name, pv->headers[i].value);
    for (size_t i = 0; m && i < m->n_headers; i++)
        hdr_set(&h, m->headers[i].name, m->headers[i].value);
    return hdr_list(&h);
}

/* A smallest possible generation request in the model's API. */
static char *warm_body(const cg_model_t *m, const char **path)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "model", json_object_new_string(m->id));
    json_object *msgs = json_object_new_array();
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "role", json_object_new_string("user"));
    json_object_object_add(msg, "content", json_object_new_string("ping"));
    json_object_array_add(msgs, msg);
    switch (m->api) {
    case CG_API_OPENAI_RESPONSES:
        *path = "/responses";
        json_object_put(msgs);
        json_object_object_add(o, "input", json_object_new_string("ping"));
        json_object_object_add(o, "max_output_tokens", json_object_new_int(16)); /* API minimum */
        break;
    case CG_API_ANTHROPIC_MESSAGES:
        *path = "/messages";
        json_object_object_add(o, "messages", msgs);
        json_object_object_add(o, "max_tokens", json_object_new_int(1));
        break;
    default: {
        *path = "/chat/completions";
        json_object_object_add(o, "messages", msgs);
        const char *field = m->compat.max_tokens_field ? m->compat.max_tokens_field : "max_tokens";
        json_object_object_add(o, field, json_object_new_int(1));
        break;
    }
    }
    json_object_object_add(o, "stream", json_object_new_boolean(0));
    char *s = cg_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

static job_t *job_add(prober_t *p, job_kind_t kind, const char *name)
{
    job_t *j = cg_calloc(1, sizeof *j);
    j->p = p;
    j->kind = kind;
    j->name = cg_strdup(name);
    p->jobs = cg_realloc(p->jobs, (p->n_jobs + 1) * sizeof *p->jobs);
    p->jobs[p->n_jobs++] = j;
    return j;
}

static void jobs_free(prober_t *p)
{
    for (size_t i = 0; i < p->n_jobs; i++) {
        job_t *j = p->jobs[i];
        job_end_transfer(p, j);
        if (j->timer)
            cg_actor_timer_cancel(p->actor, j->timer);
        curl_slist_free_all(j->headers);
        cg_buf_free(&j->rx);
        cg_free(j->name);
        cg_free(j->url);
        cg_free(j->body);
        cg_free(j);
    }
    cg_free(p->jobs);
    p->jobs = NULL;
    p->n_jobs = 0;
}

static void jobs_build(prober_t *p)
{
    cg_config_t *c = cg_snap_acquire(p->args.config);
    if (!c)
        return;
    const cg_settings_t *st = &c->settings;
    int interval_s = st->probe_interval_s == 0 ? DEFAULT_INTERVAL_S : st->probe_interval_s;
    long timeout_ms =
        (long)(st->probe_timeout_s > 0 ? st->probe_timeout_s : DEFAULT_TIMEOUT_S) * 1000L;
    long connect_ms = st->connect_timeout_ms > 0 && st->connect_timeout_ms < timeout_ms
                          ? st->connect_timeout_ms
                          : timeout_ms;
    if (interval_s > 0) {
        for (size_t i = 0; i < c->n_providers; i++) {
            const cg_provider_t *pv = &c->providers[i];
            if (!pv->available)
                continue;
            job_t *j = job_add(p, JOB_PROBE, pv->name);
            j->url = cg_sprintf("%s/models", pv->base_url);
            j->headers = headers_for(pv, NULL, false);
            j->interval_ns = (uint64_t)interval_s * NS_PER_S;
            j->timeout_ms = timeout_ms;
            j->connect_ms = connect_ms;
        }
    }
    for (size_t i = 0; i < c->n_keep_warm; i++) {
        const cg_keep_warm_t *kw = &c->keep_warm[i];
        const cg_model_t *m = cg_config_resolve(c, kw->ref, strlen(kw->ref));
        if (!m || kw->minutes <= 0 || !m->provider->available)
            continue;
        if (m->api == CG_API_UNSUPPORTED)
            continue;
        const cg_provider_t *pv = m->provider;
        const char *path = "/chat/completions";
        job_t *j = job_add(p, JOB_WARM, m->ref);
        j->body = warm_body(m, &path);
        j->url = cg_sprintf("%s%s", pv->base_url, path);
        j->headers = headers_for(pv, m, true);
        j->interval_ns = (uint64_t)kw->minutes * 60 * NS_PER_S;
        j->timeout_ms =
            (long)(pv->timeout_seconds > 0 ? pv->timeout_seconds : WARM_TIMEOUT_S) * 1000L;
        j->connect_ms = connect_ms;
    }
    cg_snap_release(p->args.config, c);
    /* First round soon (spread over a quarter second), so health means
     * something within the first second of a start or reload. */
    for (size_t i = 0; i < p->n_jobs; i++) {
        uint64_t first = (next_rand(p) % (FIRST_PROBE_MAX_MS + 1)) * NS_PER_MS;
        p->jobs[i]->timer = cg_actor_timer(p->actor, first, 0, job_timer_cb, p->jobs[i]);
    }
}

/* ---- actor ---- */

static int prober_init(cg_actor_t *a, void *arg)
{
    const cg_prober_args_t *args = arg;
    if (!args || !args->config)
        return CG_EINVAL;
    prober_t *p = cg_calloc(1, sizeof *p);
    p->actor = a;
    p->args = *args;
    p->rng = cg_now_ns() ^ (cg_actor_self(a) * 0x9E3779B97F4A7C15ull);
    if (!p->rng)
        p->rng = 1;
    cg_actor_set_state(a, p);
    if (cg_curlm_init(&p->cm, a, "prober", drain_cb, p) != 0)
        return CG_ERR;
    jobs_build(p);
    return 0;
}

static void prober_handle(cg_actor_t *a, cg_msg_t *m)
{
    prober_t *p = cg_actor_state(a);
    if (m->type == CG_MSG_RELOAD) {
        jobs_free(p);
        jobs_build(p);
    }
    cg_msg_free(m);
}

static void prober_cleanup(cg_actor_t *a)
{
    prober_t *p = cg_actor_state(a);
    if (!p)
        return;
    p->cm.closing = true;
    if (p->cm.multi)
        jobs_free(p);
    cg_curlm_close(&p->cm);
    cg_free(p);
    cg_actor_set_state(a, NULL);
}

const cg_actor_spec_t cg_prober_spec = {
    .name = "prober",
    .mailbox_cap = 0,
    .batch = 0,
    .init = prober_init,
    .handle = prober_handle,
    .stopping = NULL, /* nothing worth finishing: stop at once */
    .cleanup = prober_cleanup,
};
