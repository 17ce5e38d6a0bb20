/*
 * test_prober.c — the health prober against a tiny HTTP server thread in
 * this test serving /v1/models: reports up with the listed ids, down for a
 * dead port and for 5xx, the provider's auth header and headers sent,
 * unavailable providers never probed, keep-warm requests with max_tokens 1,
 * reload; then end to end through the supervisor: up, model absent ->
 * unloaded, down, back up; and `clawgate status` against a served document.
 *
 * tsan: yes
 */
#include "actors/prober.h"

#include "actors/health.h"
#include "actors/supervisor.h"
#include "config/config.h"
#include "http/server.h"
#include "tests/t.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 6000

static void sleep_ms(int ms)
{
    poll(NULL, 0, ms);
}

#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        int t_i_;                                                                                  \
        for (t_i_ = 0; t_i_ < WAIT_MS / 10 && !(cond); t_i_++)                                     \
            sleep_ms(10);                                                                          \
        T_ASSERTF(cond, "timed out waiting for %s", #cond);                                        \
    } while (0)

/* ---- the fake upstream ---- */

typedef enum { MODE_LIST, MODE_MISSING, MODE_503 } mode_t_;

static struct server {
    pthread_mutex_t mu;
    pthread_t thread;
    int lfd;
    int port;
    int stop;
    mode_t_ mode;
    cg_buf_t log; /* one line per request: "METHOD PATH | headers... | body" */
    int n_requests;
    char *status_body;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void set_mode(mode_t_ m)
{
    pthread_mutex_lock(&srv.mu);
    srv.mode = m;
    pthread_mutex_unlock(&srv.mu);
}

static bool log_has(const char *needle)
{
    pthread_mutex_lock(&srv.mu);
    bool r = srv.log.data && strstr(srv.log.data, needle);
    pthread_mutex_unlock(&srv.mu);
    return r;
}

static void log_clear(void)
{
    pthread_mutex_lock(&srv.mu);
    cg_buf_reset(&srv.log);
    if (srv.log.data)
        srv.log.data[0] = 0;
    pthread_mutex_unlock(&srv.mu);
}

static void reply(int fd, int status, const char *body)
{
    char *r = cg_sprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: "
                         "%zu\r\nConnection: close\r\n\r\n%s",
                         status, strlen(body), body);
    size_t off = 0, n = strlen(r);
    while (off < n) {
        ssize_t w = send(fd, r + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    cg_free(r);
}

static void serve_one(int fd)
{
    cg_buf_t req = {0};
    char buf[4096];
    size_t need = 0;
    char *hend = NULL;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 2000) != 1)
            break;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0)
            break;
        cg_buf_append(&req, buf, (size_t)r);
        if (!hend && (hend = strstr(req.data, "\r\n\r\n"))) {
            char *cl = strcasestr(req.data, "content-length:");
            need =
                (size_t)(hend - req.data) + 4 + (cl && cl < hend ? strtoul(cl + 15, NULL, 10) : 0);
        }
        if (hend && req.len >= need)
            break;
    }
    if (!hend) {
        cg_buf_free(&req);
        return;
    }
    pthread_mutex_lock(&srv.mu);
    for (char *p = req.data; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    cg_buf_puts(&srv.log, req.data);
    cg_buf_puts(&srv.log, "\n");
    srv.n_requests++;
    mode_t_ mode = srv.mode;
    pthread_mutex_unlock(&srv.mu);

    /* Fixed behaviours by path, the live one by mode. */
    if (strncmp(req.data, "POST ", 5) == 0) {
        reply(fd, 200, "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"p\"}}]}");
    } else if (strncmp(req.data, "GET /v1/gateway/status ", 23) == 0) {
        pthread_mutex_lock(&srv.mu);
        char *body = cg_strdup(srv.status_body ? srv.status_body : "{}");
        pthread_mutex_unlock(&srv.mu);
        reply(fd, 200, body);
        cg_free(body);
    } else if (strncmp(req.data, "GET /e401/", 10) == 0) {
        reply(fd, 401, "{\"error\":\"no\"}");
    } else if (strncmp(req.data, "GET /e503/", 10) == 0) {
        reply(fd, 503, "{\"error\":\"loading\"}");
    } else if (strncmp(req.data, "GET /junk/", 10) == 0) {
        reply(fd, 200, "hello");
    } else {
        switch (mode) {
        case MODE_LIST:
            reply(fd, 200, "{\"object\":\"list\",\"data\":[{\"id\":\"m1\"},{\"id\":\"m2\"}]}");
            break;
        case MODE_MISSING:
            reply(fd, 200, "{\"object\":\"list\",\"data\":[{\"id\":\"m2\"}]}");
            break;
        case MODE_503:
            reply(fd, 503, "{\"error\":\"loading\"}");
            break;
        }
    }
    cg_buf_free(&req);
}

static void *server_main(void *arg)
{
    CG_UNUSED(arg);
    for (;;) {
        pthread_mutex_lock(&srv.mu);
        int stop = srv.stop;
        pthread_mutex_unlock(&srv.mu);
        if (stop)
            break;
        struct pollfd pfd = {.fd = srv.lfd, .events = POLLIN};
        if (poll(&pfd, 1, 20) != 1)
            continue;
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(fd);
        close(fd);
    }
    return NULL;
}

static void server_start(void)
{
    srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    int one = 1;
    setsockopt(srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(srv.lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(srv.lfd, 64) != 0 ||
        getsockname(srv.lfd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("server");
        exit(1);
    }
    srv.port = ntohs(sa.sin_port);
    srv.stop = 0;
    srv.mode = MODE_LIST;
    pthread_create(&srv.thread, NULL, server_main, NULL);
}

static void server_stop(void)
{
    pthread_mutex_lock(&srv.mu);
    srv.stop = 1;
    pthread_mutex_unlock(&srv.mu);
    pthread_join(srv.thread, NULL);
    close(srv.lfd);
    cg_buf_free(&srv.log);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        close(fd);
        return 1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static void free_config(void *p)
{
    cg_config_free(p);
}

static cg_config_t *load_cfg(const char *header_value)
{
    char *text = cg_sprintf(
        "{ agents: { defaults: { model: { primary: 'live/m1', fallbacks: ['live/m2', 'dead/m1'] } "
        "} },\n"
        "  models: { mode: 'replace', providers: {\n"
        "    live: { baseUrl: 'http://127.0.0.1:%d/v1', apiKey: 'sekrit',\n"
        "            headers: { 'X-Test': '%s' },\n"
        "            models: [{ id: 'm1', name: 'M1' }, { id: 'm2', name: 'M2' }] },\n"
        "    dead: { baseUrl: 'http://127.0.0.1:%d/v1', models: [{ id: 'm1', name: 'M1' }] },\n"
        "    off: { baseUrl: 'http://127.0.0.1:%d/off', api: 'google-generative-ai',\n"
        "           models: [{ id: 'g', name: 'G' }] },\n"
        "    auth: { baseUrl: 'http://127.0.0.1:%d/e401', models: [{ id: 'a', name: 'A' }] },\n"
        "    busy: { baseUrl: 'http://127.0.0.1:%d/e503', models: [{ id: 'b', name: 'B' }] },\n"
        "    junk: { baseUrl: 'http://127.0.0.1:%d/junk', models: [{ id: 'j', name: 'J' }] } } },\n"
        "  clawgate: { health: { intervalSeconds: 1, timeoutSeconds: 1,\n"
        "                        keepWarm: { 'live/m1': 1 } } } }\n",
        srv.port, header_value, closed_port(), srv.port, srv.port, srv.port, srv.port);
    cg_diags_t errors = {0}, notices = {0};
    cg_config_t *c = NULL;
    int rc = cg_config_load_string("test.json5", text, strlen(text), NULL, &c, &errors, &notices);
    for (size_t i = 0; i < errors.n; i++)
        printf("# config error: %s\n", errors.items[i]);
    cg_diags_free(&errors);
    cg_diags_free(&notices);
    cg_free(text);
    return rc == 0 ? c : NULL;
}

/* ---- a stand-in supervisor that records HEALTH reports ---- */

static struct reports {
    pthread_mutex_t mu;
    cg_buf_t log; /* "provider up|down [ids] err\n" per report */
    int n;
} rep = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void collector_handle(cg_actor_t *a, cg_msg_t *m)
{
    CG_UNUSED(a);
    if (m->type == CG_SUP_HEALTH) {
        cg_msg_view_t v;
        const char *prov, *err;
        size_t pl, el;
        int up;
        uint64_t lat;
        const msgpack_object *list;
        if (cg_msg_unpack(m, &v, "sbuso", &prov, &pl, &up, &lat, &err, &el, &list) == 0) {
            pthread_mutex_lock(&rep.mu);
            cg_buf_printf(&rep.log, "%s %s lat=%s [", prov, up ? "up" : "down",
                          lat > 0 ? "yes" : "no");
            if (list->type == MSGPACK_OBJECT_ARRAY) {
                for (uint32_t i = 0; i < list->via.array.size; i++)
                    cg_buf_printf(&rep.log, "%s%.*s", i ? "," : "",
                                  (int)list->via.array.ptr[i].via.str.size,
                                  list->via.array.ptr[i].via.str.ptr);
            } else {
                cg_buf_puts(&rep.log, "nil");
            }
            cg_buf_printf(&rep.log, "] %s\n", err ? err : "-");
            rep.n++;
            pthread_mutex_unlock(&rep.mu);
        }
        cg_msg_view_done(&v);
    }
    cg_msg_free(m);
}

static int collector_init(cg_actor_t *a, void *arg)
{
    CG_UNUSED(a);
    CG_UNUSED(arg);
    return 0;
}

static const cg_actor_spec_t collector_spec = {
    .name = "collector", .init = collector_init, .handle = collector_handle};

static bool rep_has(const char *needle)
{
    pthread_mutex_lock(&rep.mu);
    bool r = rep.log.data && strstr(rep.log.data, needle);
    pthread_mutex_unlock(&rep.mu);
    return r;
}

static void rep_clear(void)
{
    pthread_mutex_lock(&rep.mu);
    cg_buf_reset(&rep.log);
    if (rep.log.data)
        rep.log.data[0] = 0;
    pthread_mutex_unlock(&rep.mu);
}

static void test_probe_reports(void)
{
    server_start();
    cg_config_t *c = load_cfg("one");
    T_ASSERT(c != NULL);
    cg_snap_t *cs = cg_snap_new(c, free_config);
    cg_aid_t col, pr;
    T_EQ_INT(cg_actor_spawn(&collector_spec, NULL, CG_AID_NONE, &col), 0);
    cg_prober_args_t args = {.config = cs, .supervisor = col};
    T_EQ_INT(cg_actor_spawn(&cg_prober_spec, &args, CG_AID_NONE, &pr), 0);

    /* up, with the list and a latency; the dead port is down with curl's words */
    WAIT_FOR(rep_has("live up lat=yes [m1,m2] -"));
    WAIT_FOR(rep_has("dead down"));
    T_ASSERT(rep_has("onnect")); /* "Couldn't connect" / "Connection refused" */
    /* what the server saw: the models path, the key, the provider's headers */
    T_ASSERT(log_has("GET /v1/models HTTP/1.1"));
    T_ASSERT(log_has("Authorization: Bearer sekrit"));
    T_ASSERT(log_has("X-Test: one"));
    /* keep-warm: a one-token completion for live/m1 */
    WAIT_FOR(log_has("POST /v1/chat/completions"));
    T_ASSERT(log_has("\"model\":\"m1\""));
    T_ASSERT(log_has("\"max_tokens\":1"));
    /* 5xx: down; 401: the server answers (up) but gives no list; not a list */
    WAIT_FOR(rep_has("busy down lat=yes [nil] GET /models answered HTTP 503"));
    WAIT_FOR(rep_has("auth up lat=yes [nil] GET /models answered HTTP 401"));
    WAIT_FOR(rep_has("junk up lat=yes [nil] GET /models did not answer with a model list"));
    /* the unavailable provider is never probed nor reported */
    T_ASSERT(!log_has("/off/"));
    T_ASSERT(!rep_has("off "));

    /* a model missing from the list */
    rep_clear();
    set_mode(MODE_MISSING);
    WAIT_FOR(rep_has("live up lat=yes [m2] -"));
    set_mode(MODE_LIST);

    /* reload: the new headers are used from the next probe on */
    cg_snap_publish(cs, load_cfg("two"));
    log_clear();
    cg_msg_t *m = cg_msg_new(CG_MSG_RELOAD, NULL, 0);
    T_EQ_INT(cg_actor_send(pr, m), 0);
    WAIT_FOR(log_has("X-Test: two"));

    int reason = -1;
    T_EQ_INT(cg_actor_stop(pr), 0);
    T_EQ_INT(cg_actor_join(pr, &reason), 0);
    T_EQ_INT(reason, CG_EXIT_SHUTDOWN);
    T_EQ_INT(cg_actor_stop(col), 0);
    T_EQ_INT(cg_actor_join(col, NULL), 0);
    cg_snap_free(cs);
    server_stop();
    pthread_mutex_lock(&rep.mu);
    cg_buf_free(&rep.log);
    pthread_mutex_unlock(&rep.mu);
}

/* ---- end to end through the supervisor's health snapshot ---- */

typedef struct seen {
    int reach;
    bool m1_unloaded, m2_unloaded;
    bool dead_down;
} seen_t;

static seen_t look(cg_snap_t *hs)
{
    seen_t s = {-1, false, false, false};
    cg_health_t *h = cg_snap_acquire(hs);
    if (!h)
        return s;
    const cg_health_provider_t *p = cg_health_find_provider(h, "live");
    const cg_health_provider_t *d = cg_health_find_provider(h, "dead");
    const cg_health_model_t *m1 = cg_health_find_model(h, "live/m1");
    const cg_health_model_t *m2 = cg_health_find_model(h, "live/m2");
    if (p && d && m1 && m2) {
        s.reach = (int)p->reach;
        s.m1_unloaded = m1->unloaded;
        s.m2_unloaded = m2->unloaded;
        s.dead_down = d->reach == CG_REACH_DOWN;
    }
    cg_snap_release(hs, h);
    return s;
}

static void test_through_supervisor(void)
{
    server_start();
    cg_config_t *c = load_cfg("x");
    T_ASSERT(c != NULL);
    cg_snap_t *cs = cg_snap_new(c, free_config);
    cg_snap_t *rs = cg_snap_new(NULL, cg_routes_free);
    cg_snap_t *hs = cg_snap_new(NULL, cg_health_free);
    cg_supervisor_args_t args = {.config = cs, .routes = rs, .health = hs, .fatal_fd = -1};
    cg_aid_t sup;
    T_EQ_INT(cg_actor_spawn(&cg_supervisor_spec, &args, CG_AID_NONE, &sup), 0);

    WAIT_FOR(look(hs).reach == CG_REACH_UP && look(hs).dead_down);
    T_ASSERT(!look(hs).m1_unloaded);
    /* LM Studio unloads m1: absent from the list -> unloaded, plan skips it */
    set_mode(MODE_MISSING);
    WAIT_FOR(look(hs).m1_unloaded);
    T_ASSERT(!look(hs).m2_unloaded);
    cg_health_t *h = cg_snap_acquire(hs);
    cg_config_t *cfg = cg_snap_acquire(cs);
    const cg_model_t *plan[8];
    size_t n = cg_health_plan(h, cfg, cfg->primary, cg_now_ns(), plan, 8);
    T_EQ_INT(n, 1);
    T_EQ_STR(plan[0]->ref, "live/m2");
    cg_buf_t b = {0};
    cg_health_status_json(h, cfg, &b);
    T_CONTAINS(b.data, "\"ref\":\"live\\/m1\",\"provider\":\"live\",\"state\":\"unloaded\"");
    T_CONTAINS(b.data, "\"name\":\"dead\",\"state\":\"down\"");
    cg_buf_free(&b);
    cg_snap_release(cs, cfg);
    cg_snap_release(hs, h);
    /* the server goes bad: down */
    set_mode(MODE_503);
    WAIT_FOR(look(hs).reach == CG_REACH_DOWN);
    /* and comes back with both models */
    set_mode(MODE_LIST);
    WAIT_FOR(look(hs).reach == CG_REACH_UP && !look(hs).m1_unloaded);

    int reason = -1;
    T_EQ_INT(cg_actor_stop(sup), 0);
    T_EQ_INT(cg_actor_join(sup, &reason), 0);
    T_EQ_INT(reason, CG_EXIT_SHUTDOWN);
    cg_snap_free(hs);
    cg_snap_free(rs);
    cg_snap_free(cs);
    server_stop();
}

/* ---- clawgate status ---- */

/* Run cg_status_cli with stdout captured into out. */
static int run_status(int argc, char **argv, const char *base, cg_buf_t *out)
{
    fflush(stdout);
    FILE *tmp = tmpfile();
    int saved = dup(1);
    dup2(fileno(tmp), 1);
    int rc = cg_status_cli(argc, argv, base);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    rewind(tmp);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, tmp)) > 0)
        cg_buf_append(out, buf, n);
    fclose(tmp);
    return rc;
}

static void test_status_cli(void)
{
    server_start();
    cg_config_t *c = load_cfg("x");
    T_ASSERT(c != NULL);
    cg_health_t *h = cg_health_new(c);
    const char *ids[] = {"m2"};
    cg_health_on_probe(h, "live", true, 3000000, NULL, ids, 1, true, cg_now_ns(), cg_wall_ms());
    cg_health_on_probe(h, "dead", false, 0, "Connection refused", NULL, 0, false, cg_now_ns(),
                       cg_wall_ms());
    cg_health_on_sample(h, "live/m2", "rate_limit", 429, 0, 0, 0, 90000, cg_now_ns(), cg_wall_ms());
    cg_buf_t doc = {0};
    cg_health_status_json(h, c, &doc);
    pthread_mutex_lock(&srv.mu);
    srv.status_body = cg_buf_steal(&doc, NULL);
    pthread_mutex_unlock(&srv.mu);
    cg_health_free(h);
    cg_config_free(c);

    char *base = cg_sprintf("http://127.0.0.1:%d", srv.port);
    cg_buf_t out = {0};
    T_EQ_INT(run_status(0, NULL, base, &out), 0);
    T_CONTAINS(out.data, "policy: pinned");
    T_CONTAINS(out.data, "PROVIDER");
    T_ASSERT(strstr(out.data, "dead") && strstr(out.data, "Connection refused"));
    T_ASSERT(strstr(out.data, "live/m1") && strstr(out.data, "unloaded"));
    T_ASSERT(strstr(out.data, "live/m2") && strstr(out.data, "cooling"));
    T_CONTAINS(out.data, "rate_limit");
    T_CONTAINS(out.data, "in 1m"); /* the 90 s cooldown, as time left */
    T_CONTAINS(out.data, "fallback order: live/m1, live/m2, dead/m1");
    cg_buf_reset(&out);
    char *json_args[] = {(char *)"--json"};
    T_EQ_INT(run_status(1, json_args, base, &out), 0);
    T_CONTAINS(out.data, "\"object\":\"gateway.status\"");
    cg_buf_reset(&out);
    char *bad_args[] = {(char *)"--nope"};
    T_EQ_INT(run_status(1, bad_args, base, &out), 2);
    char *dead = cg_sprintf("http://127.0.0.1:%d", closed_port());
    T_EQ_INT(run_status(0, NULL, dead, &out), 1);
    cg_free(dead);
    cg_free(base);
    cg_buf_free(&out);
    server_stop();
    cg_free(srv.status_body);
    srv.status_body = NULL;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cg_log_set_level(CG_LOG_ERROR);
    T_RUN(test_probe_reports);
    T_RUN(test_through_supervisor);
    T_RUN(test_status_cli);
    curl_global_cleanup();
    T_DONE();
}
