//! SQLite adapter of [`RetentionStore`]: batched keyset scans of notifications, audit entries
//! and inactive customers, and removals fenced by the job's lease.

use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};

use super::super::audit::{audit_from_row, COLUMNS as AUDIT_COLUMNS};
use super::super::support::{time_at, ts};
use super::super::Db;
use super::leases::fenced;
use super::split;
use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::jobs::erasure::RETENTION_REQUESTER;
use crate::store::jobs::{
    Cursor, CustomerRef, Fence, NotificationRef, NotificationScan, Removal, RetentionStore,
};
use crate::store::StoreResult;

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::jobs::{is_lease_lost, JobStateStore, LeaseGrant};

    #[tokio::test]
    async fn a_removal_needs_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("app.db")).unwrap();
        let fence = |holder: &str| Fence {
            job: "NotificationCleanup".into(),
            holder: holder.into(),
            ttl: Duration::from_secs(60),
            checkpoint: None,
        };
        let removal = || Removal::Notifications {
            tenant: TenantId::new("t-1").unwrap(),
            ids: vec!["n-1".into()],
        };
        let refused = db.remove_rows(removal(), fence("run-a")).await.unwrap_err();
        assert!(is_lease_lost(&refused), "{refused}");
        assert_eq!(
            db.acquire_lease(
                "NotificationCleanup",
                "run-a",
                Duration::from_secs(60),
                None
            )
            .await
            .unwrap(),
            LeaseGrant::Acquired
        );
        assert_eq!(
            db.remove_rows(removal(), fence("run-a")).await.unwrap(),
            0,
            "nothing to remove, and no error"
        );
        assert!(db.tenants_with_data().await.unwrap().is_empty());
    }
}
