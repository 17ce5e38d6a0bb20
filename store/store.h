/*
 * store.h — the session store: every exchange durable in SQLite, and a
 * history people can query.
 *
 * DESIGN
 * One store actor owns the only write connection (WAL, synchronous=NORMAL,
 * prepared statements). The HTTP front sends it one CG_STORE_APPEND per
 * finished client request; the actor applies what arrives within one loop
 * turn (or within a configured window) in one transaction — group commit —
 * and only after that COMMIT returned does it send CG_STORE_ACK to each
 * request's owner. The front holds the client's final byte until the ACK:
 * an exchange a client saw complete survives a kill -9 of the process.
 *
 * Readers never touch the writer: each thread that serves queries opens its
 * own read-only connection (cg_store_ro_open); WAL lets them read while the
 * writer commits. The CLI uses the same queries on the same file.
 *
 * Sessions, stateless mode (default): the front sends the client's whole
 * message array; the store appends the messages past what the session's
 * client-side history held after the previous turn (it checks that the
 * previous turn's last request message is still where it was; if the client
 * rewrote or compacted its history, it appends the messages after the last
 * assistant message instead). Stateful mode: the front prepends
 * cg_store_history() to the client's messages and sends the store only the
 * client's own (new) messages, all of which are appended. Only exchanges with
 * status "ok" add entries; every exchange gets a row.
 *
 * Pending log. An exchange without a session is read back by nobody while
 * requests run (no history, no previous_response_id), so it need not be in
 * SQLite before the client's final byte — only durable. For those the front
 * appends the APPEND payload to the pending log (cg_pending_append_batch:
 * one writev(2) per loop turn, no thread hand-off), releases the final byte,
 * and posts the message to the store as CG_STORE_APPEND_LOGGED without waking
 * it. Within
 * CG_STORE_FLUSH_MS a CG_STORE_FLUSH wakes the store, which commits
 * everything queued in one transaction (with the log position) and answers
 * CG_STORE_SYNCED; the front then empties the log. Queries wait for SYNCED
 * first, so a client reads its own exchanges. After a kill -9 the next start
 * applies the log before the port opens (cg_pending_open). So the contract
 * holds for every exchange, and a session-less request costs one write(2)
 * instead of a commit and two thread switches. Exchanges with a session keep
 * the commit-then-ACK path: the next turn reads them.
 *
 * The schema lives in schema/NNN_name.sql (compiled into the binary) and is
 * described for sqlite3-shell users in docs/store.md.
 */
#ifndef CG_STORE_H
#define CG_STORE_H

#include "actors/actor.h"
#include "config/config.h"

/* Message types of the store actor (300 range). */
enum {
    /* front -> store: payload built by cg_store_append_msg; set req_id and
     * reply_to on the message before sending. */
    CG_STORE_APPEND = 300,
    /* anyone -> store: run a retention pass now; ACKed (same req_id) when the
     * pass is over. No payload. For tests and operators. */
    CG_STORE_PRUNE = 301,
    /* front -> store, lazily: an APPEND already in the pending log; req_id
     * is its log sequence number. Never ACKed. */
    CG_STORE_APPEND_LOGGED = 302,
    /* front -> store: commit what is queued now and answer CG_STORE_SYNCED.
     * No payload. */
    CG_STORE_FLUSH = 303,

    /* store -> owner (req_id copied from the request): [ok b, error s].
     * ok: the exchange is committed. !ok: it is not stored (error says why:
     * disk full, database locked or corrupt, bad input); the front decides by
     * clawgate.store.onError. */
    CG_STORE_ACK = 310,
    /* store -> FLUSH's sender: req_id = the highest pending-log sequence
     * number committed (or given up on) so far: [keep_files b], true once a
     * batch of logged records failed (they are applied at the next start). */
    CG_STORE_SYNCED = 311,
};

/* How long the front lets logged exchanges wait before it sends a FLUSH. */
#define CG_STORE_FLUSH_MS 20

/* The schema version this binary writes (the highest schema/NNN). */
#define CG_STORE_SCHEMA_VERSION 3

typedef struct cg_store_args {
    const char *path;   /* database file; parent directories are created */
    int retention_days; /* 0: keep forever */
    /* Optional (0: default). Group commit: a transaction is committed when
     * max_batch exchanges are in it (default 256) or commit_window_us after
     * its first exchange (default 0: at the end of the loop turn that
     * applied it, i.e. everything already queued shares the commit). */
    int max_batch;
    int commit_window_us;
    /* Tests and benchmarks: 1 checkpoints inside commits (SQLite's automatic
     * checkpoint) instead of from the background checkpointer. */
    int inline_checkpoint;
} cg_store_args_t;

extern const cg_actor_spec_t cg_store_spec;

/* Process-wide SQLite settings; call once at start-up, before any database
 * is opened and before other threads exist. */
void cg_store_global_init(void);

/* Optional, in main before any actor starts: create the file (and its
 * directories) and apply the migrations, then close it. A database the
 * binary must refuse (newer schema, not clawgate's, corrupt, unwritable)
 * then stops start-up with err before the listener opens, and read-only
 * connections (cg_store_ro_open) can be opened at once — cg_actor_spawn
 * returns before the store's init has created the file. 0, or a negative
 * code with a message for people in err. */
int cg_store_prepare(const char *path, char *err, size_t errlen);

/* One attempt at an upstream, in the order they were made. */
typedef struct cg_store_attempt {
    const char *ref;        /* "provider/model" */
    const char *fail_class; /* "timeout", "rate_limit", ...; NULL: it answered */
    int http_status;        /* upstream status; 0: none (connect failure ...) */
    int64_t duration_ms;
} cg_store_attempt_t;

/* What the front knows when a request ends. Strings are borrowed for the
 * duration of cg_store_append_msg (which copies them). */
typedef struct cg_store_exchange {
    const char *tenant;      /* tenant name; NULL: "default" */
    const char *session_key; /* x-session-key; NULL: exchange only */
    bool stateful;           /* x-session-mode: stateful */
    const char *request_id;  /* x-request-id */
    const char *client_api;  /* "chat.completions" | "responses" */
    const char *model_asked;
    const char *model_answered; /* "provider/id", NULL if no model answered */
    const char *status;         /* "ok" | "error" | "cancelled" */
    const char *error_class;    /* NULL unless status is "error" */
    int http_status;            /* sent to the client */
    const cg_store_attempt_t *attempts;
    size_t n_attempts;
    int64_t prompt_tokens; /* as OpenAI reports it: includes cache reads/writes */
    int64_t completion_tokens;
    int64_t cache_read_tokens;
    int64_t cache_write_tokens;
    double cost_usd;    /* cg_store_cost() of the answering model */
    int64_t ttft_ms;    /* < 0: no first token */
    int64_t latency_ms; /* request in to final byte */
    int64_t started_ms; /* wall clock (cg_wall_ms) */
    int64_t finished_ms;
    /* JSON text, not necessarily NUL-terminated (len 0 with a non-NULL
     * pointer: strlen). messages: the request's message array as the client
     * sent it (chat `messages`; Responses `input`, where a bare string counts
     * as one user message); stateful mode: only the client's own messages,
     * without the history the front prepended. reply: the assistant message
     * object ({"role":"assistant","content":...,"tool_calls":...}), NULL
     * when none. */
    const char *messages_json;
    size_t messages_len;
    const char *reply_json;
    size_t reply_len;
} cg_store_exchange_t;

/* Encode x as a CG_STORE_APPEND message (msgpack). The caller sets req_id and
 * reply_to and sends it with cg_actor_send; on CG_EFULL/CG_ENOENT the exchange
 * is not stored and the front decides by onError, as for a failed ACK. */
cg_msg_t *cg_store_append_msg(const cg_store_exchange_t *x);

/* ---- the pending log (pending.c; one writer thread: the front's) ---- */

typedef struct cg_pending cg_pending_t;

/* In main, after cg_store_prepare and before any actor: apply what a
 * previous process left in PATH-pending.{0,1} past the database's
 * pending_applied.seq, empty the files, and open them for appending. NULL
 * with a message in err when the files cannot be read or written or the
 * database refuses the records (they are then left in place). */
cg_pending_t *cg_pending_open(const char *db_path, char *err, size_t errlen);
void cg_pending_close(cg_pending_t *p);

/* Append n APPEND messages' payloads in one writev(2) (per 256 records):
 * they get the sequence numbers *first_seq, *first_seq + 1, ... in order.
 * CG_OK, or CG_EIO (logged), all or nothing: none of them stays in the file
 * and no number is used. A message that does not fit (cg_pending_fits) fails
 * the whole call. */
int cg_pending_append_batch(cg_pending_t *p, const cg_msg_t *const *ms, size_t n,
                            uint64_t *first_seq);

/* Whether a payload of len bytes can go to the log (1 MiB at most; larger
 * exchanges take the commit-then-ACK path). */
bool cg_pending_fits(size_t len);

/* The store committed every record up to seq (CG_STORE_SYNCED): files whose
 * records are all committed are emptied — unless keep_files (SYNCED's flag:
 * the store failed a batch of logged records), which holds from then on. */
void cg_pending_applied(cg_pending_t *p, uint64_t seq, bool keep_files);
uint64_t cg_pending_last(const cg_pending_t *p);   /* last appended, 0: none */
uint64_t cg_pending_synced(const cg_pending_t *p); /* committed up to */

/* USD for one exchange from the model's `cost` (USD per million tokens).
 * prompt_tokens includes the cache reads and writes (OpenAI's usage shape);
 * those are charged at their own prices and the rest at `input`. A NULL model
 * costs 0. */
double cg_store_cost(const cg_model_t *m, int64_t prompt_tokens, int64_t completion_tokens,
                     int64_t cache_read_tokens, int64_t cache_write_tokens);

/* Counters since the start of the process, summed over store actors. */
typedef struct cg_store_counters {
    uint64_t exchanges; /* committed */
    uint64_t commits;   /* transactions committed */
    uint64_t errors;    /* exchanges ACKed with ok=false */
    uint64_t acks_lost; /* ACKs that could not be delivered (owner gone or full) */
    uint64_t pruned;    /* rows removed by retention */
} cg_store_counters_t;
void cg_store_counters(cg_store_counters_t *out);

/* ---- reads: one connection per thread ---- */

typedef struct cg_store_ro cg_store_ro_t;

/* Open path read-only. NULL with a message in err when the file is missing,
 * not a database, or of another schema version than this binary's. */
cg_store_ro_t *cg_store_ro_open(const char *path, char *err, size_t errlen);
void cg_store_ro_close(cg_store_ro_t *ro);

/* Serve a query endpoint:
 *   GET /v1/sessions            since, until, model, status, tenant, limit, offset
 *   GET /v1/sessions/{key}      transcript and exchanges (key URL-decoded)
 *   GET /v1/sessions/search     q (words, all must match), limit, offset
 *   GET /v1/usage               group_by (model,day,tenant,status), since, until,
 *                               model, tenant
 * out_json receives the body (appended) and *status the HTTP status: 200, or
 * an OpenAI-shaped error {"error":{"message","type","code"}} with 400 (bad
 * filter), 404 (no such session), 405 (not GET) or 500 (database error).
 * Returns 0 when it answered, CG_ENOENT when path is none of these (the front
 * answers 404 itself). query_string may be NULL; it is the raw part after
 * '?', URL-encoded. */
int cg_store_http(cg_store_ro_t *ro, const char *method, const char *path, const char *query_string,
                  cg_buf_t *out_json, unsigned *status);

/* Stateful mode: the session's stored messages in order, as a JSON array
 * appended to out (the latest compaction summary first, as a user message,
 * then the entries it kept). "[]" when the session does not exist.
 * tenant NULL: "default". 0, or CG_EIO on a database error. */
int cg_store_history(cg_store_ro_t *ro, const char *tenant, const char *key, cg_buf_t *out);

/* Responses API previous_response_id: the stored conversation as it stood
 * when the exchange with that request id answered (its session's messages up
 * to the last entry that exchange added), as a JSON array appended to
 * out_messages, and the session's key appended to out_session_key. 0;
 * CG_ENOENT when no successful exchange with a session has that id; CG_EIO. */
int cg_store_chain(cg_store_ro_t *ro, const char *request_id, cg_buf_t *out_messages,
                   cg_buf_t *out_session_key);

/* ---- command line ---- */

/* `clawgate sessions list|show KEY|search TEXT` and `clawgate usage ...`;
 * argv[0] is "sessions" or "usage". Prints to stdout (aligned tables, or JSON
 * with --json) and errors to stderr. Returns the process exit code: 0, 1 (no
 * database, database error, no such session) or 2 (bad usage). */
int cg_store_cli(int argc, char **argv, const char *db_path);

/* The CLI's usage text (for `clawgate --help`). */
extern const char cg_store_cli_usage[];

#endif
