-- Consents (GDPR art. 7): one row per grant or withdrawal, never updated or deleted, so a
-- withdrawal keeps the record of the grant before it.
CREATE TABLE consents (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    granted        INTEGER NOT NULL,
    notice_version TEXT NOT NULL,
    channel        TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    recorded_by    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX consents_by_customer ON consents (tenant_id, customer_id, recorded_at, id);
