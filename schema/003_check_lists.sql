-- 003_check_lists.sql: the two CHECK constraints written as IN lists become
-- equality tests joined by OR. They accept exactly the same values.
--
-- Why: SQLite evaluates `x IN ('a', 'b', 'c')` in a CHECK by building an
-- ephemeral table of the list on every INSERT (it opens a temporary B-tree and
-- its pager each time). On the exchanges table, where every request adds a
-- row, that was about 60% of the INSERT's instructions and 13% of the whole
-- process's for a short request (callgrind, docs/benchmarks.md "Fifth
-- session"). Equality tests need no table.
--
-- How: a CHECK constraint cannot be changed with ALTER TABLE. Rebuilding the
-- tables would copy every row at start-up. The change touches no stored row
-- (every row that passed the old test passes the new one), so the table text
-- in sqlite_schema is edited in place: SQLite's documented procedure for
-- changing a CHECK constraint ("Making Other Kinds Of Table Schema Changes"
-- in lang_altertable.html). The migration runner reads PRAGMA schema_version
-- before this file and sets it one higher after it (the table of migrations
-- marks this file as editing the schema), so every connection, this one
-- included, parses the new text before its next statement. replace() leaves a
-- table whose text differs (edited by hand) as it is; the tests check the
-- result on a fresh database and on one a version-2 clawgate wrote.
PRAGMA writable_schema = ON;

UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (status IN (''ok'', ''error'', ''cancelled''))',
                  'CHECK (status = ''ok'' OR status = ''error'' OR status = ''cancelled'')')
WHERE type = 'table' AND name = 'exchanges';

UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (type IN (''message'', ''compaction''))',
                  'CHECK (type = ''message'' OR type = ''compaction'')')
WHERE type = 'table' AND name = 'entries';

PRAGMA writable_schema = OFF;
