//! SQLite adapter of [`MaintenanceStore`]: scans for leftovers (orphan order items and
//! notifications, expired idempotency keys and processed events), orders without a customer,
//! and the engine's own upkeep (integrity check, vacuum, WAL truncation).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::super::support::ts;
use super::super::Db;
use super::split;
use crate::store::jobs::{Cursor, EngineMaintenance, MaintenanceStore};
use crate::store::StoreResult;

/// How many pages one maintenance run reclaims at most (4 KiB pages: 1 GiB).
const MAX_VACUUM_PAGES: u64 = 262_144;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fresh_database_has_no_leftovers_and_passes_the_integrity_check() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("app.db")).unwrap();
        assert!(db
            .scan_orphan_order_items(None, 100)
            .await
            .unwrap()
            .is_empty());
        assert!(db
            .scan_orphan_notifications(None, 100)
            .await
            .unwrap()
            .is_empty());
        assert!(db.count_orders_without_customer().await.unwrap().is_empty());
        let engine = db.maintain_engine(true).await.unwrap();
        assert_eq!(engine.backend, "sqlite");
        assert_eq!(engine.integrity, vec!["ok".to_owned()]);
    }
}
