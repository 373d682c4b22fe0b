-- The outbox without SQLite's AUTOINCREMENT counter: that counter is a row of `sqlite_sequence`
-- that every insert rewrote, one more page in every write transaction that announces something
-- (create-order among them). `seq` stays commit order and is still never reused: an insert takes
-- one more than the highest of the rows left and of `outbox_floor`, the highest commit number
-- ever removed (raised by the relay's acknowledgements and the expiry purge, which are off the
-- request path), so the local change feed's checkpoint can never pass over a new row.
CREATE TABLE outbox_floor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO outbox_floor (id, seq)
VALUES (1, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0));

CREATE TABLE outbox_by_commit (
    seq        INTEGER PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
INSERT INTO outbox_by_commit (seq, tenant_id, scope, message, created_at, expires_at)
SELECT seq, tenant_id, scope, message, created_at, expires_at FROM outbox ORDER BY seq;
DROP TABLE outbox;
ALTER TABLE outbox_by_commit RENAME TO outbox;
