/*
 * main.c — the clawgate command: serve, check-config, help, version.
 *
 * DESIGN
 * `serve` loads the config, publishes it as a snapshot, spawns the
 * supervisor (which spawns the provider actors and the health prober) and
 * the HTTP front, then waits in the main thread for a signal (SIGTERM/SIGINT:
 * graceful stop) or for the supervisor to report that the front ended.
 * Signals are blocked in every thread and read through a signalfd here, so no
 * actor is ever interrupted by one. Shutdown goes front first (stop
 * accepting, drain), then the supervisor (prober, providers).
 */
#include "actors/actor.h"
#include "actors/health.h"
#include "actors/snapshot.h"
#include "actors/supervisor.h"
#include "config/config.h"
#include "http/server.h"
#include "store/store.h"

#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

static const char usage[] =
    "usage: clawgate <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve [--config FILE]     run the gateway (FILE defaults to $CLAWGATE_CONFIG)\n"
    "  check-config FILE         validate a config and print what it resolves to;\n"
    "                            exit 1 with every error as FILE:LINE:COL: key: message\n"
    "  sessions list|show KEY|search TEXT [--db PATH | --config FILE] [--json]\n"
    "  usage [--by model,day] [--since ...] [--db PATH | --config FILE] [--json]\n"
    "                            the session store (see `clawgate sessions --help`)\n"
    "  status [--url URL | --config FILE] [--json]\n"
    "                            provider states, cooldowns, latency, fallback order\n"
    "  --help, -h                this text\n"
    "  --version                 print the version\n"
    "\n"
    "The config is OpenClaw's JSON5 format (openclaw.json works unchanged); clawgate's\n"
    "own settings live in its top-level `clawgate` block. See docs/config.md.\n";

/* ---- config loading shared by serve and check-config ---- */

static cg_config_t *load_config(const char *path, bool print_notices)
{
    cg_diags_t errors = {0}, notices = {0};
    cg_config_t *cfg = NULL;
    int rc = cg_config_load_file(path, NULL, &cfg, &errors, &notices);
    if (print_notices)
        for (size_t i = 0; i < notices.n; i++)
            fprintf(stderr, "notice: %s\n", notices.items[i]);
    for (size_t i = 0; i < errors.n; i++)
        fprintf(stderr, "%s\n", errors.items[i]);
    if (rc != 0 && errors.n == 0)
        fprintf(stderr, "%s: cannot load config: %s\n", path, cg_strerror(rc));
    cg_diags_free(&errors);
    cg_diags_free(&notices);
    return rc == 0 ? cfg : NULL;
}

static int cmd_check_config(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: clawgate check-config FILE\n");
        return 2;
    }
    cg_config_t *cfg = load_config(argv[0], true);
    if (!cfg)
        return 1;
    cg_config_describe(cfg, stdout);
    cg_config_free(cfg);
    return 0;
}

static void free_config(void *p)
{
    cg_config_free(p);
}

static cg_log_level_t parse_level(const char *s);

/* SIGHUP: load the file again; if it is valid, publish it and tell the
 * supervisor (providers added or removed) and the front (limits, timeouts).
 * Requests in flight keep the snapshot they started with, so none fails. An
 * invalid file changes nothing ("reload skipped"), as in OpenClaw. */
static void reload(const char *path, cg_snap_t *config_snap, cg_aid_t sup, cg_aid_t front)
{
    cg_config_t *next = load_config(path, false);
    if (!next) {
        cg_error("reload skipped: %s has errors (see above); the running config stays", path);
        return;
    }
    cg_config_t *cur = cg_snap_acquire(config_snap);
    if (cur && (strcmp(cur->settings.listen_host, next->settings.listen_host) != 0 ||
                cur->settings.listen_port != next->settings.listen_port))
        cg_warn("reload: clawgate.listen changed; that takes a restart (still listening on %s:%d)",
                cur->settings.listen_host, cur->settings.listen_port);
    if (cur)
        cg_snap_release(config_snap, cur);
    cg_log_set_level(parse_level(next->settings.log_level));
    uint64_t version = cg_snap_publish(config_snap, next);
    cg_aid_t to[2] = {sup, front};
    for (size_t i = 0; i < 2; i++) {
        cg_msg_t *m = cg_msg_new(CG_MSG_RELOAD, NULL, 0);
        /* A full mailbox would lose the notice: the new snapshot is already
         * published, so only derived state would lag; retry briefly. */
        int rc = CG_EFULL;
        for (int tries = 0; tries < 100 && (rc = cg_actor_send(to[i], m)) == CG_EFULL; tries++)
            usleep(1000);
        if (rc != CG_OK)
            cg_msg_free(m);
    }
    cg_notice("reload: %s applied (config version %llu)", path, (unsigned long long)version);
}

static cg_log_level_t parse_level(const char *s)
{
    static const char *names[] = {"debug", "info", "notice", "warn", "error"};
    for (size_t i = 0; s && i < CG_ARRAY_LEN(names); i++)
        if (strcmp(s, names[i]) == 0)
            return (cg_log_level_t)i;
    return CG_LOG_INFO;
}

static int cmd_serve(int argc, char **argv)
{
    const char *path = getenv("CLAWGATE_CONFIG");
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        } else {
            fprintf(stderr, "clawgate serve: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!path || !*path) {
        fprintf(stderr, "clawgate serve: no config: pass --config FILE or set CLAWGATE_CONFIG\n");
        return 2;
    }
    cg_config_t *cfg = load_config(path, true);
    if (!cfg)
        return 1;
    cg_log_set_level(parse_level(cfg->settings.log_level));

    /* A request allocates and frees a few buffers the size of its body
     * (36 KB for OpenClaw). glibc hands memory back to the kernel whenever
     * 128 KB are free at the top of a heap, and takes it back on the next
     * request with page faults: with several requests in flight that churn
     * was the largest cost per request (madvise + faults, measured with the
     * openclaw scenario of bench/http.sh). Keep up to 32 MiB of freed memory
     * per heap instead; big buffers (over 4 MiB) still go straight back. */
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    cg_store_global_init();

    /* Block the signals we handle in this thread before any actor exists:
     * every thread inherits the mask, and only the signalfd sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    int fatal_fd = eventfd(0, EFD_CLOEXEC);
    if (sfd < 0 || fatal_fd < 0) {
        fprintf(stderr, "clawgate: signalfd/eventfd: %s\n", strerror(errno));
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "clawgate: curl_global_init failed\n");
        return 1;
    }
    if (getenv("CLAWGATE_TEST_HOOKS") && strcmp(getenv("CLAWGATE_TEST_HOOKS"), "1") == 0)
        cg_actor_enable_test_hooks(true);

    size_t n_prov = cfg->n_providers;
    /* The database first: one newer than this binary, corrupt or unwritable
     * stops start-up here, before the port opens. */
    char err[512];
    bool use_store = !cfg->settings.store_disabled;
    if (use_store && cg_store_prepare(cfg->settings.store_path, err, sizeof err) != 0) {
        fprintf(stderr, "clawgate: session store %s: %s\n", cfg->settings.store_path, err);
        return 1;
    }
    /* What a previous process logged but did not commit goes in now, before
     * the port opens (store.h, "Pending log"). */
    cg_pending_t *pending = NULL;
    if (use_store && !(pending = cg_pending_open(cfg->settings.store_path, err, sizeof err))) {
        fprintf(stderr, "clawgate: session store %s: pending log: %s\n", cfg->settings.store_path,
                err);
        return 1;
    }
    char *store_path = cg_strdup(cfg->settings.store_path);
    cg_store_args_t store_args = {.path = store_path,
                                  .retention_days = cfg->settings.retention_days};
    cg_snap_t *config_snap = cg_snap_new(cfg, free_config);
    cg_snap_t *routes_snap = cg_snap_new(NULL, cg_routes_free);
    cg_snap_t *health_snap = cg_snap_new(NULL, cg_health_free);
    /* The http front and the provider actors share one loop thread: a request
     * then crosses no thread between the client's socket and the upstream's,
     * and each hand-off is a push into a mailbox the loop is about to read
     * (docs/architecture.md, "Loops"). */
    cg_loop_t *io = cg_loop_new("io");
    if (!io) {
        fprintf(stderr, "clawgate: cannot start the io loop\n");
        return 1;
    }
    cg_supervisor_args_t sargs = {.config = config_snap,
                                  .routes = routes_snap,
                                  .health = health_snap,
                                  .fatal_fd = fatal_fd,
                                  .loop = cfg->settings.provider_threads_own ? NULL : io};
    cg_aid_t sup;
    if (cg_actor_spawn(&cg_supervisor_spec, &sargs, CG_AID_NONE, &sup) != 0) {
        fprintf(stderr, "clawgate: cannot start the supervisor\n");
        return 1;
    }
    /* The front opens the port only once the supervisor has published the
     * provider routes, so no request ever finds an empty routing table. */
    for (int i = 0; i < 5000; i++) {
        void *routes = cg_snap_acquire(routes_snap);
        if (routes) {
            cg_snap_release(routes_snap, routes);
            break;
        }
        usleep(1000);
    }
    cg_aid_t store = CG_AID_NONE;
    if (use_store && cg_actor_spawn(&cg_store_spec, &store_args, sup, &store) != 0) {
        fprintf(stderr, "clawgate: cannot start the session store\n");
        return 1;
    }
    cg_http_args_t hargs = {.config = config_snap,
                            .routes = routes_snap,
                            .health = health_snap,
                            .supervisor = sup,
                            .store = store,
                            .store_path = use_store ? store_path : NULL,
                            .pending = pending};
    cg_aid_t front;
    if (cg_actor_spawn_on(io, &cg_http_spec, &hargs, sup, &front) != 0) {
        fprintf(stderr, "clawgate: cannot start the http front\n");
        return 1;
    }
    cg_notice("clawgate %s serving with %s (%zu providers)", CG_VERSION, path, n_prov);

    int exit_code = 0;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = fatal_fd, .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents & POLLIN) {
            cg_error("the http front ended unexpectedly; shutting down");
            exit_code = 1;
            break;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) != sizeof si)
                continue;
            if (si.ssi_signo == SIGHUP) {
                reload(path, config_snap, sup, front);
                continue;
            }
            cg_notice("signal %d: shutting down", (int)si.ssi_signo);
            break;
        }
    }

    /* Front first: it stops accepting and drains; then the supervisor stops
     * the prober and the providers. */
    cg_actor_stop(front);
    cg_actor_join(front, NULL);
    /* The store after the front: its stop commits and ACKs what is pending. */
    if (store) {
        cg_actor_stop(store);
        cg_actor_join(store, NULL);
    }
    cg_actor_stop(sup);
    cg_actor_join(sup, NULL);
    cg_loop_free(io);
    cg_pending_close(pending);
    cg_snap_free(routes_snap);
    cg_snap_free(health_snap);
    cg_snap_free(config_snap);
    cg_free(store_path);
    curl_global_cleanup();
    close(sfd);
    close(fatal_fd);
    cg_notice("clawgate stopped");
    return exit_code;
}

/* `clawgate sessions ...` and `clawgate usage ...` on the database named by
 * --db PATH, or by the store path of --config FILE (default: the config's
 * default store path). argv[0] is the command word. */
static int cmd_store(int argc, char **argv)
{
    const char *db = NULL;
    char *owned = NULL;
    int out = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            cg_config_t *cfg = load_config(argv[++i], false);
            if (!cfg)
                return 1;
            cg_free(owned);
            owned = cg_strdup(cfg->settings.store_path);
            db = owned;
            cg_config_free(cfg);
        } else {
            argv[out++] = argv[i];
        }
    }
    if (!db)
        db = getenv("CLAWGATE_DB") ? getenv("CLAWGATE_DB") : "./var/clawgate.db";
    int rc = cg_store_cli(out, argv, db);
    cg_free(owned);
    return rc;
}

/* The base URL of a running gateway: --url, else the listen address of
 * --config FILE, else the default listen address. Consumes those options. */
static char *gateway_url(int *argc, char **argv)
{
    char *url = NULL;
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < *argc) {
            cg_free(url);
            url = cg_strdup(argv[++i]);
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < *argc) {
            cg_config_t *cfg = load_config(argv[++i], false);
            if (!cfg)
                exit(1);
            cg_free(url);
            const char *h = cfg->settings.listen_host;
            url = strchr(h, ':') ? cg_sprintf("http://[%s]:%d", h, cfg->settings.listen_port)
                                 : cg_sprintf("http://%s:%d", h, cfg->settings.listen_port);
            cg_config_free(cfg);
        } else {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
    return url ? url : cg_strdup("http://127.0.0.1:8089");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("clawgate %s\n", CG_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "status") == 0) {
        int n = argc - 2;
        char *url = gateway_url(&n, argv + 2);
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return 1;
        int rc = cg_status_cli(n, argv + 2, url);
        curl_global_cleanup();
        cg_free(url);
        return rc;
    }
    if (strcmp(cmd, "sessions") == 0 || strcmp(cmd, "usage") == 0)
        return cmd_store(argc - 1, argv + 1);
    if (strcmp(cmd, "check-config") == 0)
        return cmd_check_config(argc - 2, argv + 2);
    fprintf(stderr, "clawgate: unknown command '%s'\n%s", cmd, usage);
    return 2;
}
