-- Event processing (issue 4): erasure progress, processed-event dedupe, lookup indexes.

-- The durable progress of an erasure: per step, whether it is done, its counts, its keyset
-- cursor and the time spent, as JSON. Each batch updates it in the batch's own transaction.
ALTER TABLE erasure_requests ADD COLUMN progress TEXT;

-- Events a consumer has handled, so a redelivered event has no second effect. `outputs` holds
-- the outbound messages (ids only) the first delivery produced, re-sent on a redelivery.
CREATE TABLE processed_events (
    tenant_id    TEXT NOT NULL,
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    customer_id  TEXT,
    outcome      TEXT NOT NULL,
    outputs      TEXT NOT NULL DEFAULT '[]',
    processed_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, consumer, event_id)
) WITHOUT ROWID;
CREATE INDEX processed_events_by_customer ON processed_events (tenant_id, customer_id);
CREATE INDEX processed_events_by_time ON processed_events (processed_at);

-- Erasure finds a customer's audit entries by target and actor as well as by customer, and
-- idempotency keys by order.
CREATE INDEX audit_by_target ON audit_log (tenant_id, target_id);
CREATE INDEX audit_by_actor ON audit_log (tenant_id, actor_id);
CREATE INDEX idempotency_by_order ON idempotency_keys (tenant_id, order_id);
