/*
 * main.c — the clawgate command: serve, check-config, help, version.
 *
 * DESIGN
 * `serve` loads the config, publishes it as a snapshot, spawns one provider
 * actor per configured provider and the HTTP front, then waits in the main
 * thread for a signal (SIGTERM/SIGINT: graceful stop) or for the root actor
 * to report that a child it cannot live without (the front) has ended.
 * Signals are blocked in every thread and read through a signalfd here, so no
 * actor is ever interrupted by one. Shutdown goes front first (stop
 * accepting, drain), then providers, then the root.
 */
#include "actors/actor.h"
#include "actors/provider.h"
#include "actors/snapshot.h"
#include "config/config.h"
#include "http/server.h"

#include <curl/curl.h>
#include <errno.h>
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
    "  --help, -h                this text\n"
    "  --version                 print the version\n"
    "\n"
    "The config is OpenClaw's JSON5 format (openclaw.json works unchanged); clawgate's\n"
    "own settings live in its top-level `clawgate` block. See docs/config.md.\n";

/* ---- the root actor: parent of every long-lived actor ---- */

typedef struct root {
    int fatal_fd;        /* eventfd the main thread polls */
    bool *shutting_down; /* set by main before it stops the children */
} root_t;

static void root_handle(cg_actor_t *a, cg_msg_t *m)
{
    root_t *r = cg_actor_state(a);
    if (m->type == CG_MSG_EXIT) {
        cg_msg_view_t v;
        uint64_t aid;
        int64_t reason;
        const char *detail;
        size_t dlen;
        if (cg_msg_unpack(m, &v, "uiS", &aid, &reason, &detail, &dlen) == 0) {
            /* Read with acquire: pairs with main's release store, so a child
             * that ends because main stopped it is not taken for a failure. */
            bool stopping = __atomic_load_n(r->shutting_down, __ATOMIC_ACQUIRE);
            if (!stopping)
                cg_error("actor %llx ended: %s%s%.*s", (unsigned long long)aid,
                         cg_exit_reason_name((int)reason), dlen ? ": " : "", (int)dlen,
                         detail ? detail : "");
            /* Until the supervisor (with restarts) exists, any child that
             * ends on its own takes the process down rather than leaving a
             * gateway that silently lost a provider or its front. */
            if (!stopping) {
                uint64_t one = 1;
                ssize_t w = write(r->fatal_fd, &one, sizeof one);
                CG_UNUSED(w);
            }
        }
        cg_msg_view_done(&v);
    }
    cg_msg_free(m);
}

static int root_init(cg_actor_t *a, void *arg)
{
    cg_actor_set_state(a, arg);
    return 0;
}

static const cg_actor_spec_t root_spec = {
    .name = "root",
    .init = root_init,
    .handle = root_handle,
};

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
    cg_snap_t *config_snap = cg_snap_new(cfg, free_config);
    bool shutting_down = false;
    root_t root = {.fatal_fd = fatal_fd, .shutting_down = &shutting_down};
    cg_aid_t root_aid;
    if (cg_actor_spawn(&root_spec, &root, CG_AID_NONE, &root_aid) != 0) {
        fprintf(stderr, "clawgate: cannot start the root actor\n");
        return 1;
    }

    cg_routes_t *routes = cg_routes_new(n_prov);
    cg_provider_args_t *pargs = cg_calloc(n_prov ? n_prov : 1, sizeof *pargs);
    for (size_t i = 0; i < n_prov; i++) {
        const cg_provider_t *p = &cfg->providers[i];
        routes->names[i] = cg_strdup(p->name);
        pargs[i].provider_name = p->name;
        pargs[i].config = config_snap;
        if (cg_actor_spawn(&cg_provider_spec, &pargs[i], root_aid, &routes->aids[i]) != 0) {
            fprintf(stderr, "clawgate: cannot start provider actor '%s'\n", p->name);
            return 1;
        }
    }
    cg_snap_t *routes_snap = cg_snap_new(routes, cg_routes_free);
    cg_http_args_t hargs = {.config = config_snap, .routes = routes_snap};
    cg_aid_t front;
    if (cg_actor_spawn(&cg_http_spec, &hargs, root_aid, &front) != 0) {
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
            cg_error("an actor ended unexpectedly; shutting down");
            exit_code = 1;
            break;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) != sizeof si)
                continue;
            if (si.ssi_signo == SIGHUP) {
                cg_notice("SIGHUP: configuration reload is not implemented yet; ignoring");
                continue;
            }
            cg_notice("signal %d: shutting down", (int)si.ssi_signo);
            break;
        }
    }

    /* Release: the root's acquire load sees this before any EXIT caused by
     * the stops below. */
    __atomic_store_n(&shutting_down, true, __ATOMIC_RELEASE);
    cg_actor_stop(front);
    cg_actor_join(front, NULL);
    for (size_t i = 0; i < n_prov; i++)
        cg_actor_stop(routes->aids[i]);
    for (size_t i = 0; i < n_prov; i++)
        cg_actor_join(routes->aids[i], NULL);
    cg_actor_stop(root_aid);
    cg_actor_join(root_aid, NULL);
    cg_snap_free(routes_snap);
    cg_snap_free(config_snap);
    cg_free(pargs);
    curl_global_cleanup();
    close(sfd);
    close(fatal_fd);
    cg_notice("clawgate stopped");
    return exit_code;
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
    if (strcmp(cmd, "check-config") == 0)
        return cmd_check_config(argc - 2, argv + 2);
    fprintf(stderr, "clawgate: unknown command '%s'\n%s", cmd, usage);
    return 2;
}
