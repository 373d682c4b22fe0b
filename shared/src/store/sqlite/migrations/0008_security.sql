-- Employees' reads of a customer's data are audited with the roles they acted in.
ALTER TABLE audit_log ADD COLUMN actor_role TEXT;
-- Findings of breach detection: ids and counts only, never personal data.
CREATE TABLE security_events (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    event      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX security_events_by_time ON security_events (tenant_id, detected_at DESC, id DESC);
