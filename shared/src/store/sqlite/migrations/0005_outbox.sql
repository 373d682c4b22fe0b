-- The transactional outbox: each message the app sends, written in the transaction of the change
-- it announces. `seq` is commit order (AUTOINCREMENT: never reused after the relay deletes a
-- row, so the local change feed's checkpoint can never skip a new row) and the record's id
-- (`outbox:{seq}`: no second, randomly ordered index to update on every write). `message` is the
-- OutboxMessage JSON; `scope` the partition the Cosmos DB adapter would put it in.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
-- No index on expires_at: the table holds only what the relay has not sent yet (it deletes what
-- it sent), so the weekly purge scans a few rows, and every write is spared one more page.

-- When an erasure request's message was last written to the outbox (maintenance re-announces
-- requests still accepted long after it).
ALTER TABLE erasure_requests ADD COLUMN queued_at TEXT;
CREATE INDEX erasure_requests_by_status_queued ON erasure_requests (status, queued_at);
