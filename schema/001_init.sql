-- 001_init.sql: clawgate's first schema (docs/store.md describes every column).
--
-- Migrations are forward-only: each schema/NNN_name.sql runs once, in one
-- transaction, and then sets PRAGMA user_version = NNN. Never edit a file that
-- has shipped; add the next number instead.
--
-- Times are integers: milliseconds since the Unix epoch, UTC
-- (datetime(started_ms / 1000, 'unixepoch') in the sqlite3 shell).
-- Foreign keys are declared for readers and tools; clawgate does not turn on
-- their enforcement (the single writer keeps them true, retention deletes
-- children before parents).

-- Who sends requests. Until the tenants issue lands there is one row, id 1,
-- "default", which every request belongs to.
CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    key_hash    TEXT,              -- hex SHA-256 of the tenant's API key; NULL: no key
    allowlist   TEXT,              -- JSON array of model refs the tenant may use; NULL: all
    limits      TEXT,              -- JSON object (requests/tokens per minute ...); NULL: none
    budget_usd  REAL,              -- spending cap; NULL: unlimited
    created_ms  INTEGER NOT NULL
);

INSERT INTO tenants (id, name, created_ms)
VALUES (1, 'default', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- A conversation named by the client (header x-session-key, e.g. agent:main:main).
CREATE TABLE sessions (
    id                INTEGER PRIMARY KEY,
    tenant_id         INTEGER NOT NULL REFERENCES tenants (id),
    key               TEXT NOT NULL,
    created_ms        INTEGER NOT NULL,
    updated_ms        INTEGER NOT NULL,   -- last exchange recorded under the session
    model             TEXT,               -- provider/model that answered last
    token_estimate    INTEGER NOT NULL DEFAULT 0, -- tokens the history costs as context
    compaction_count  INTEGER NOT NULL DEFAULT 0,
    next_seq          INTEGER NOT NULL DEFAULT 0, -- seq the next entry gets
    client_messages   INTEGER NOT NULL DEFAULT 0, -- length of the client's own history
                                                  -- after the last turn (stateless mode)
    tail_hash         INTEGER,            -- hash of the last request message of that turn
    UNIQUE (tenant_id, key)
);

CREATE INDEX sessions_by_updated ON sessions (updated_ms);

-- One client request, whatever became of it.
CREATE TABLE exchanges (
    id                  INTEGER PRIMARY KEY,
    tenant_id           INTEGER NOT NULL REFERENCES tenants (id),
    session_id          INTEGER REFERENCES sessions (id), -- NULL: no session key
    request_id          TEXT NOT NULL,    -- the x-request-id the client saw
    client_api          TEXT NOT NULL,    -- chat.completions | responses
    model_asked         TEXT,             -- the `model` the client sent
    model_answered      TEXT,             -- provider/model that answered; NULL: none did
    status              TEXT NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
    error_class         TEXT,             -- timeout, rate_limit, ... when status is error
    http_status         INTEGER,          -- what the client got
    attempts            TEXT NOT NULL DEFAULT '[]',
                        -- JSON array, in order: {"ref", "class" (null: answered),
                        -- "http_status", "duration_ms"}
    prompt_tokens       INTEGER NOT NULL DEFAULT 0, -- includes cache reads and writes
    completion_tokens   INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens   INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd            REAL NOT NULL DEFAULT 0,    -- from the answering model's `cost`
    ttft_ms             INTEGER,          -- time to first token; NULL: none came
    latency_ms          INTEGER,          -- request in to last byte out
    started_ms          INTEGER NOT NULL,
    finished_ms         INTEGER NOT NULL
);

CREATE INDEX exchanges_by_started ON exchanges (started_ms);
CREATE INDEX exchanges_by_session ON exchanges (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX exchanges_by_request ON exchanges (request_id);

-- The transcript of a session, in order: each message (request messages and
-- the assistant's reply, as JSON objects) or compaction summary.
CREATE TABLE entries (
    id           INTEGER PRIMARY KEY,
    session_id   INTEGER NOT NULL REFERENCES sessions (id),
    seq          INTEGER NOT NULL,        -- 0, 1, 2 ... within the session
    exchange_id  INTEGER REFERENCES exchanges (id), -- the exchange that added it
    type         TEXT NOT NULL CHECK (type IN ('message', 'compaction')),
    role         TEXT,                    -- user, assistant, system, tool, ... (Responses
                                          -- items without a role: their type)
    content      TEXT NOT NULL,           -- the message as JSON, bytes as the client sent
                                          -- them; compaction: {"summary", "first_kept_seq",
                                          -- "tokens_before"}
    text         TEXT NOT NULL DEFAULT '', -- the searchable text taken from content
    tokens       INTEGER NOT NULL DEFAULT 0, -- estimate
    created_ms   INTEGER NOT NULL,
    UNIQUE (session_id, seq)
);

-- Full-text index over entries.text (external content: the text lives once,
-- in entries). clawgate indexes the entries of a transaction with one
-- statement just before it commits: FTS5 writes a new index segment at every
-- statement or savepoint that touches it, so a per-row trigger costs about
-- five times as much CPU. Deletes and updates keep the index in step through
-- the triggers below, also those made from the sqlite3 shell; rows inserted
-- by hand are indexed by: INSERT INTO entries_fts (entries_fts) VALUES ('rebuild');
CREATE VIRTUAL TABLE entries_fts USING fts5 (
    text,
    content = 'entries',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN
    INSERT INTO entries_fts (entries_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

CREATE TRIGGER entries_fts_update AFTER UPDATE OF text ON entries BEGIN
    INSERT INTO entries_fts (entries_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO entries_fts (rowid, text) VALUES (new.id, new.text);
END;
