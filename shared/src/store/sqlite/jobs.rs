//! SQLite adapter of the job ports ([`JobStateStore`], [`RetentionStore`],
//! [`MaintenanceStore`]): leases, checkpoints and run reports in the `job_*` tables, batched
//! scans by keyset, and removals that commit with the job's checkpoint in one transaction.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::Value;

use super::audit::{audit_from_row, COLUMNS as AUDIT_COLUMNS};
use super::support::{insert_audit, json_at, now, time_at, to_json, ts};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::jobs::erasure::RETENTION_REQUESTER;
use crate::store::jobs::{
    Cursor, CustomerRef, EngineMaintenance, Fence, JobRunRecord, JobStateStore, Lease, LeaseGrant,
    MaintenanceStore, NotificationRef, NotificationScan, Removal, RetentionStore, LEASE_LOST,
};
use crate::store::{StoreError, StoreResult};

/// How many pages one maintenance run reclaims at most (4 KiB pages: 1 GiB).
const MAX_VACUUM_PAGES: u64 = 262_144;

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
async fn fenced<T, F>(db: &Db, fence: Fence, work: F) -> StoreResult<T>
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

/// Runs the DELETE `sql` once per key; how many rows it removed.
fn delete_each<P: rusqlite::Params>(
    tx: &Transaction<'_>,
    sql: &str,
    keys: impl IntoIterator<Item = P>,
) -> rusqlite::Result<u64> {
    let mut delete = tx.prepare_cached(sql)?;
    let mut removed = 0;
    for key in keys {
        removed += delete.execute(key)? as u64;
    }
    Ok(removed)
}

fn remove(tx: &Transaction<'_>, removal: &Removal) -> rusqlite::Result<u64> {
    const NOTIFICATION: &str = "DELETE FROM notifications WHERE tenant_id = ?1 AND id = ?2";
    match removal {
        Removal::Notifications { tenant, ids } => {
            delete_each(tx, NOTIFICATION, ids.iter().map(|id| (tenant.as_str(), id)))
        }
        Removal::NotificationsByKey(keys) => delete_each(
            tx,
            NOTIFICATION,
            keys.iter().map(|(tenant, id)| (tenant, id)),
        ),
        Removal::AuditEntries { tenant, ids } => delete_each(
            tx,
            "DELETE FROM audit_log WHERE tenant_id = ?1 AND id = ?2",
            ids.iter().map(|id| (tenant.as_str(), id)),
        ),
        Removal::OrderItems(keys) => delete_each(
            tx,
            "DELETE FROM order_items WHERE tenant_id = ?1 AND order_id = ?2 AND line_no = ?3",
            keys.iter()
                .map(|(tenant, order_id, line)| (tenant, order_id, line)),
        ),
        Removal::IdempotencyKeys(keys) => delete_each(
            tx,
            "DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2",
            keys.iter().map(|(tenant, key)| (tenant, key)),
        ),
        Removal::ProcessedEvents(keys) => delete_each(
            tx,
            "DELETE FROM processed_events WHERE tenant_id = ?1 AND consumer = ?2 AND event_id = ?3",
            keys.iter()
                .map(|(tenant, consumer, event_id)| (tenant, consumer, event_id)),
        ),
    }
}

fn split(after: Option<Cursor>) -> (Option<String>, Option<String>, i64) {
    match after {
        Some(cursor) => (Some(cursor.key), Some(cursor.id), cursor.seq),
        None => (None, None, 0),
    }
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

#[async_trait::async_trait]
impl RetentionStore for Db {
    async fn tenants_with_data(&self) -> StoreResult<Vec<TenantId>> {
        let names: Vec<String> = self
            .read(|conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT tenant_id FROM (SELECT DISTINCT tenant_id FROM notifications UNION SELECT DISTINCT tenant_id FROM audit_log
                      UNION SELECT DISTINCT tenant_id FROM customers UNION SELECT DISTINCT tenant_id FROM orders
                      UNION SELECT DISTINCT tenant_id FROM order_items UNION SELECT DISTINCT tenant_id FROM idempotency_keys)
                     ORDER BY tenant_id",
                )?;
                let rows = statement.query_map([], |row| row.get(0))?;
                rows.collect()
            })
            .await?;
        Ok(names
            .into_iter()
            .filter_map(|name| TenantId::new(name).ok())
            .collect())
    }

    async fn scan_notifications(
        &self,
        tenant: &TenantId,
        scan: NotificationScan,
    ) -> StoreResult<Vec<NotificationRef>> {
        let tenant = tenant.as_str().to_owned();
        let (after_key, after_id, _) = split(scan.after);
        // Retention needs only the index (tenant, created_at, id); the read cleanup needs the
        // read flag and the category from the rows too.
        let sql = if scan.read_only {
            "SELECT id, created_at, category FROM notifications INDEXED BY notifications_by_tenant_created
              WHERE tenant_id = ?1 AND created_at < ?2 AND is_read = 1 AND (?3 IS NULL OR (created_at, id) > (?3, ?4))
              ORDER BY created_at, id LIMIT ?5"
        } else {
            "SELECT id, created_at, '' FROM notifications INDEXED BY notifications_by_tenant_created
              WHERE tenant_id = ?1 AND created_at < ?2 AND (?3 IS NULL OR (created_at, id) > (?3, ?4))
              ORDER BY created_at, id LIMIT ?5"
        };
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let rows = statement.query_map(
                params![tenant, ts(scan.before), after_key, after_id, scan.limit],
                |row| {
                    let id: String = row.get(0)?;
                    let created: String = row.get(1)?;
                    Ok(NotificationRef {
                        created_at: time_at(row, 1)?,
                        category: row.get(2)?,
                        cursor: Cursor::new(created, id.clone()),
                        id,
                    })
                },
            )?;
            rows.collect()
        })
        .await
    }

    async fn count_notifications(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        read_only: bool,
    ) -> StoreResult<u64> {
        let tenant = tenant.as_str().to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM notifications INDEXED BY notifications_by_tenant_created
                  WHERE tenant_id = ?1 AND created_at < ?2 AND (?3 = 0 OR is_read = 1)",
                params![tenant, ts(before), read_only],
                |row| row.get(0),
            )
        })
        .await
    }

    async fn scan_audit(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, Cursor)>> {
        let tenant = tenant.as_str().to_owned();
        let (after_key, after_id, _) = split(after);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log
                  WHERE tenant_id = ?1 AND at < ?2 AND (?3 IS NULL OR (at, id) > (?3, ?4))
                  ORDER BY at, id LIMIT ?5"
            ))?;
            let rows = statement.query_map(
                params![tenant, ts(before), after_key, after_id, limit],
                |row| {
                    let entry = audit_from_row(row)?;
                    let cursor = Cursor::new(row.get::<_, String>(7)?, entry.id.clone());
                    Ok((entry, cursor))
                },
            )?;
            rows.collect()
        })
        .await
    }

    async fn count_audit(&self, tenant: &TenantId, before: DateTime<Utc>) -> StoreResult<u64> {
        let tenant = tenant.as_str().to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM audit_log WHERE tenant_id = ?1 AND at < ?2",
                params![tenant, ts(before)],
                |row| row.get(0),
            )
        })
        .await
    }

    async fn scan_inactive_customers(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerRef>> {
        let tenant = tenant.as_str().to_owned();
        let (after_key, after_id, _) = split(after);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT c.id, c.last_activity_at FROM customers c
                  WHERE c.tenant_id = ?1 AND c.last_activity_at < ?2 AND (c.status = 'active' OR (c.status IN ('erasureRequested', 'erased') AND EXISTS
                        (SELECT 1 FROM erasure_requests r WHERE r.tenant_id = c.tenant_id AND r.customer_id = c.id
                            AND r.requested_by = ?6 AND r.status <> 'completed')))
                    AND (?3 IS NULL OR (c.last_activity_at, c.id) > (?3, ?4))
                  ORDER BY c.last_activity_at, c.id LIMIT ?5",
            )?;
            let rows = statement.query_map(params![tenant, ts(before), after_key, after_id, limit, RETENTION_REQUESTER], |row| {
                let id: String = row.get(0)?;
                let at: String = row.get(1)?;
                Ok(CustomerRef { last_activity_at: time_at(row, 1)?, cursor: Cursor::new(at, id.clone()), id })
            })?;
            rows.collect()
        })
        .await
    }

    async fn count_inactive_customers(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let tenant = tenant.as_str().to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM customers c
                  WHERE c.tenant_id = ?1 AND c.last_activity_at < ?2 AND (c.status = 'active' OR (c.status IN ('erasureRequested', 'erased') AND EXISTS
                        (SELECT 1 FROM erasure_requests r WHERE r.tenant_id = c.tenant_id AND r.customer_id = c.id
                            AND r.requested_by = ?3 AND r.status <> 'completed')))",
                params![tenant, ts(before), RETENTION_REQUESTER],
                |row| row.get(0),
            )
        })
        .await
    }

    async fn remove_rows(&self, removal: Removal, fence: Fence) -> StoreResult<u64> {
        fenced(self, fence, move |tx| remove(tx, &removal)).await
    }
}

fn engine_maintenance(conn: &Connection, dry_run: bool) -> rusqlite::Result<EngineMaintenance> {
    let free_pages =
        |conn: &Connection| conn.query_row("PRAGMA freelist_count", [], |row| row.get::<_, i64>(0));
    let free_pages_before = free_pages(conn)?.max(0) as u64;
    if !dry_run {
        conn.execute_batch("PRAGMA optimize")?;
        // `incremental_vacuum` returns no rows but must be stepped to completion.
        let mut vacuum = conn.prepare(&format!(
            "PRAGMA incremental_vacuum({})",
            free_pages_before.min(MAX_VACUUM_PAGES)
        ))?;
        let mut rows = vacuum.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        // Fold the write-ahead log into the database and shrink it (busy readers only delay it).
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    let mut check = conn.prepare("PRAGMA integrity_check(100)")?;
    let integrity = check
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(EngineMaintenance {
        backend: "sqlite".into(),
        integrity,
        free_pages_before,
        free_pages_after: free_pages(conn)?.max(0) as u64,
        optimized: !dry_run,
    })
}

#[async_trait::async_trait]
impl MaintenanceStore for Db {
    async fn scan_orphan_order_items(
        &self,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        let (after_key, after_id, after_seq) = split(after);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT i.tenant_id, i.order_id, i.line_no FROM order_items i
                  WHERE (?1 IS NULL OR (i.tenant_id, i.order_id, i.line_no) > (?1, ?2, ?3))
                    AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.tenant_id = i.tenant_id AND o.id = i.order_id)
                  ORDER BY i.tenant_id, i.order_id, i.line_no LIMIT ?4",
            )?;
            let rows = statement.query_map(params![after_key, after_id, after_seq, limit], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect()
        })
        .await
    }

    async fn scan_orphan_notifications(
        &self,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let (after_key, after_id, _) = split(after);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT n.tenant_id, n.id FROM notifications n
                  WHERE (?1 IS NULL OR (n.tenant_id, n.id) > (?1, ?2)) AND n.recipient_kind = 'customer'
                    AND NOT EXISTS (SELECT 1 FROM customers c
                                     WHERE c.tenant_id = n.tenant_id AND c.id = n.recipient_id AND c.status <> 'erased')
                  ORDER BY n.tenant_id, n.id LIMIT ?3",
            )?;
            let rows = statement.query_map(params![after_key, after_id, limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
        .await
    }

    async fn scan_expired_idempotency_keys(
        &self,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let (after_key, after_id, _) = split(after);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT tenant_id, key FROM idempotency_keys
                  WHERE created_at < ?1 AND (?2 IS NULL OR (tenant_id, key) > (?2, ?3))
                  ORDER BY tenant_id, key LIMIT ?4",
            )?;
            let rows = statement
                .query_map(params![ts(before), after_key, after_id, limit], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
            rows.collect()
        })
        .await
    }

    async fn scan_expired_processed_events(
        &self,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, String)>> {
        let (after_tenant, after_id, _) = split(after);
        let (after_consumer, after_event) =
            match after_id.as_deref().and_then(|id| id.split_once('\n')) {
                Some((consumer, event)) => (Some(consumer.to_owned()), Some(event.to_owned())),
                None => (None, None),
            };
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT tenant_id, consumer, event_id FROM processed_events
                  WHERE processed_at < ?1 AND (?2 IS NULL OR (tenant_id, consumer, event_id) > (?2, ?3, ?4))
                  ORDER BY tenant_id, consumer, event_id LIMIT ?5",
            )?;
            let rows = statement.query_map(params![ts(before), after_tenant, after_consumer, after_event, limit], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect()
        })
        .await
    }

    async fn settle_stock_reservations(
        &self,
        _before: DateTime<Utc>,
        _dry_run: bool,
    ) -> StoreResult<Vec<(String, u64)>> {
        Ok(Vec::new())
    }

    async fn count_orders_without_customer(&self) -> StoreResult<Vec<(String, u64)>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT o.tenant_id, COUNT(*) FROM orders o
                  WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.tenant_id = o.tenant_id AND c.id = o.customer_id)
                  GROUP BY o.tenant_id ORDER BY o.tenant_id",
            )?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
        .await
    }

    async fn maintain_engine(&self, dry_run: bool) -> StoreResult<EngineMaintenance> {
        if dry_run {
            self.read(move |conn| engine_maintenance(conn, true)).await
        } else {
            self.write(move |conn| engine_maintenance(conn, false))
                .await
        }
    }
}
