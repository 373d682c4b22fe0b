-- Housekeeping jobs: leases, durable checkpoints, run reports, and the indexes their batches use.
-- A lease row says who runs a job until when; a checkpoint is the job's resumable position,
-- written in the same transaction as the batch it follows.
CREATE TABLE job_leases (
    job         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE job_checkpoints (
    job        TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE job_runs (
    run_id      TEXT PRIMARY KEY,
    job         TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    report      TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX job_runs_by_job ON job_runs (job, started_at);

-- Per-tenant retention scans walk (tenant, created_at, id) in order (audit_by_time already
-- serves the audit trail, read backwards).
CREATE INDEX notifications_by_tenant_created ON notifications (tenant_id, created_at, id);
