-- 002_pending.sql: how far the pending log has been applied.
--
-- The HTTP front writes the exchanges of requests without a session to the
-- pending log (the files DB-pending.0 and DB-pending.1 next to the database)
-- before the client's final byte, and the store commits them in batches
-- (docs/store.md, "The pending log"). `seq` is the highest log record whose
-- row is committed; it moves in the same transaction as those rows, so a
-- restart applies exactly the records after it.
CREATE TABLE pending_applied (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL
);

INSERT INTO pending_applied (id, seq) VALUES (1, 0);
