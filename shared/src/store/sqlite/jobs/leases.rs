//! SQLite adapter of [`JobStateStore`]: leases, checkpoints and run reports in the `job_*`
//! tables, and the fence that commits a batch's work with the job's checkpoint and the lease's
//! extension in one transaction.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::Value;

use super::super::support::{insert_audit, json_at, now, time_at, to_json, ts};
use super::super::Db;
use crate::domain::audit::AuditEntry;
use crate::store::jobs::{Fence, JobRunRecord, JobStateStore, Lease, LeaseGrant, LEASE_LOST};
use crate::store::{StoreError, StoreResult};

fn lease_lost(job: &str) -> StoreError {
    StoreError::Conflict(format!("{LEASE_LOST} (job {job})"))
}

fn expiry(ttl: std::time::Duration) -> String {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60));
    ts(now() + ttl)
}

fn immediate(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// Extends the lease by `ttl` from `at`, if `holder` still holds it (it has not expired);
/// whether it did.
fn extend_lease(
    conn: &Connection,
    job: &str,
    holder: &str,
    ttl: std::time::Duration,
    at: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let extended = conn.execute(
        "UPDATE job_leases SET expires_at = ?3 WHERE job = ?1 AND holder = ?2 AND expires_at > ?4",
        params![job, holder, expiry(ttl), ts(at)],
    )?;
    Ok(extended > 0)
}

/// Extends the lease and writes the checkpoint, if `fence.holder` still holds the lease.
/// `Ok(false)`: the lease is lost, and the caller must roll back.
fn apply_fence(tx: &Transaction<'_>, fence: &Fence) -> rusqlite::Result<bool> {
    let at = now();
    if !extend_lease(tx, &fence.job, &fence.holder, fence.ttl, at)? {
        return Ok(false);
    }
    match &fence.checkpoint {
        Some(state) => tx.execute(
            "INSERT INTO job_checkpoints (job, state, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (job) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            params![fence.job, to_json(state), ts(at)],
        )?,
        None => tx.execute("DELETE FROM job_checkpoints WHERE job = ?1", params![fence.job])?,
    };
    Ok(true)
}

/// Writer settings for bulk removals: a page cache that holds a batch's dirty pages (32 MiB)
/// and a WAL checkpoint every 10,000 pages (40 MiB) instead of SQLite's 1,000, so a batch of
/// random-order deletes is not followed by a checkpoint of everything it touched. Measured
/// (scripts/bench-retention): several times the rate of the defaults. They stay set on the
/// writer connection (harmless for the rest of the app); `DatabaseMaintenance` truncates the WAL.
const BULK_PRAGMAS: &str = "PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 10000;";

/// Runs `work` and the fence in one immediate transaction; rolls back if the lease is lost.
pub(in crate::store::sqlite) async fn fenced<T, F>(db: &Db, fence: Fence, work: F) -> StoreResult<T>
where
    F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let job = fence.job.clone();
    let outcome = db
        .write(move |conn| {
            conn.execute_batch(BULK_PRAGMAS)?;
            let tx = immediate(conn)?;
            if !apply_fence(&tx, &fence)? {
                return Ok(None);
            }
            let value = work(&tx)?;
            tx.commit()?;
            Ok(Some(value))
        })
        .await?;
    outcome.ok_or_else(|| lease_lost(&job))
}

fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobRunRecord> {
    Ok(JobRunRecord {
        run_id: row.get(0)?,
        job: row.get(1)?,
        outcome: row.get(2)?,
        started_at: time_at(row, 3)?,
        finished_at: time_at(row, 4)?,
        report: json_at::<Value>(row, 5)?,
    })
}

#[async_trait::async_trait]
impl JobStateStore for Db {
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        ttl: std::time::Duration,
        take_over: Option<&str>,
    ) -> StoreResult<LeaseGrant> {
        let (job, holder, take_over) = (
            job.to_owned(),
            holder.to_owned(),
            take_over.map(str::to_owned),
        );
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let current: Option<(String, String)> = tx
                .query_row("SELECT holder, expires_at FROM job_leases WHERE job = ?1", params![job], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let at = ts(now());
            if let Some((current_holder, expires_at)) = current {
                let free = expires_at <= at || current_holder == holder || take_over.as_deref() == Some(current_holder.as_str());
                if !free {
                    let expires_at = DateTime::parse_from_rfc3339(&expires_at).map_or_else(|_| now(), |at| at.with_timezone(&Utc));
                    return Ok(LeaseGrant::HeldBy(Lease { job, holder: current_holder, expires_at }));
                }
            }
            tx.execute(
                "INSERT INTO job_leases (job, holder, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                params![job, holder, at, expiry(ttl)],
            )?;
            tx.commit()?;
            Ok(LeaseGrant::Acquired)
        })
        .await
    }

    async fn renew_lease(
        &self,
        job: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<()> {
        let (job_name, holder) = (job.to_owned(), holder.to_owned());
        let renewed = self
            .write(move |conn| extend_lease(conn, &job_name, &holder, ttl, now()))
            .await?;
        if !renewed {
            return Err(lease_lost(job));
        }
        Ok(())
    }

    async fn release_lease(&self, job: &str, holder: &str) -> StoreResult<()> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM job_leases WHERE job = ?1 AND holder = ?2",
                params![job, holder],
            )
        })
        .await?;
        Ok(())
    }

    async fn load_checkpoint(&self, job: &str) -> StoreResult<Option<Value>> {
        let job = job.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT state FROM job_checkpoints WHERE job = ?1",
                params![job],
                |row| json_at::<Value>(row, 0),
            )
            .optional()
        })
        .await
    }

    async fn save_checkpoint(&self, fence: Fence) -> StoreResult<()> {
        fenced(self, fence, |_| Ok(())).await
    }

    async fn record_job_run(&self, run: JobRunRecord, audit: Vec<AuditEntry>) -> StoreResult<()> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO job_runs (run_id, job, outcome, started_at, finished_at, report) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run.run_id, run.job, run.outcome, ts(run.started_at), ts(run.finished_at), to_json(&run.report)],
            )?;
            for entry in &audit {
                insert_audit(&tx, entry)?;
            }
            tx.commit()
        })
        .await
    }

    async fn recent_job_runs(&self, job: &str, limit: u32) -> StoreResult<Vec<JobRunRecord>> {
        let job = job.to_owned();
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT run_id, job, outcome, started_at, finished_at, report FROM job_runs WHERE job = ?1 ORDER BY started_at DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![job, limit], run_from_row)?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::store::jobs::is_lease_lost;

    const JOB: &str = "NotificationCleanup";
    const TTL: Duration = Duration::from_secs(60);

    fn fence(holder: &str, checkpoint: Option<Value>) -> Fence {
        Fence {
            job: JOB.into(),
            holder: holder.into(),
            ttl: TTL,
            checkpoint,
        }
    }

    #[tokio::test]
    async fn the_lease_is_held_once_and_fences_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("app.db")).unwrap();
        assert_eq!(
            db.acquire_lease(JOB, "run-a", TTL, None).await.unwrap(),
            LeaseGrant::Acquired
        );
        let LeaseGrant::HeldBy(lease) = db.acquire_lease(JOB, "run-b", TTL, None).await.unwrap()
        else {
            panic!("the lease was granted twice")
        };
        assert_eq!(lease.holder, "run-a");
        db.save_checkpoint(fence("run-a", Some(json!({"after": "n-1"}))))
            .await
            .unwrap();
        assert_eq!(
            db.load_checkpoint(JOB).await.unwrap(),
            Some(json!({"after": "n-1"}))
        );
        let refused = db
            .save_checkpoint(fence("run-b", Some(json!({"after": "n-9"}))))
            .await
            .unwrap_err();
        assert!(is_lease_lost(&refused), "{refused}");
        assert!(is_lease_lost(
            &db.renew_lease(JOB, "run-b", TTL).await.unwrap_err()
        ));
        assert_eq!(
            db.load_checkpoint(JOB).await.unwrap(),
            Some(json!({"after": "n-1"})),
            "the refused write changed nothing"
        );
        db.release_lease(JOB, "run-a").await.unwrap();
        assert_eq!(
            db.acquire_lease(JOB, "run-b", TTL, None).await.unwrap(),
            LeaseGrant::Acquired
        );
    }
}
