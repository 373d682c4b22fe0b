-- Payments of orders. `doc` is the payment as JSON (refunds embedded, request hashes kept beside
-- it: see store/payment_record.rs); the other columns are what queries filter and order by.
-- `unsettled_since` is when reconciliation must look at the payment (NULL while it is settled):
-- its last update while pending, unknown or authorized, or its oldest pending refund's.
CREATE TABLE payments (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    status          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    unsettled_since TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    doc             TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
-- An idempotency key names one payment per tenant.
CREATE UNIQUE INDEX payments_by_key ON payments (tenant_id, idempotency_key);
-- An order has at most one payment that is not failed or voided (the store checks it in the
-- write transaction; the index makes it a rule of the schema too).
CREATE UNIQUE INDEX payments_holding_order ON payments (tenant_id, order_id)
    WHERE status NOT IN ('failed', 'voided');
CREATE INDEX payments_by_order ON payments (tenant_id, order_id);
CREATE INDEX payments_by_created ON payments (tenant_id, created_at, id);
CREATE INDEX payments_by_customer ON payments (tenant_id, customer_id, created_at, id);
CREATE INDEX payments_by_unsettled ON payments (unsettled_since, id) WHERE unsettled_since IS NOT NULL;
CREATE INDEX payments_by_updated ON payments (updated_at, id);

-- Webhook events applied to payments, so a repeated webhook applies once.
CREATE TABLE payment_webhook_events (
    tenant_id  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
) WITHOUT ROWID;
CREATE INDEX payment_webhook_events_by_time ON payment_webhook_events (applied_at);
