//! SQLite adapter of [`SecurityEventStore`]: the `security_events` table (the event as JSON),
//! written in one transaction with its audit entry and its outbox record.

use rusqlite::params;

use super::outbox::insert_outbox;
use super::support::{insert_audit, json_at, to_json, ts, Keyset};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::outbox::OutboxMessage;
use crate::security::SecurityEvent;
use crate::store::{Page, PageRequest, SecurityEventStore, StoreResult};

/// The outbox scope of security alerts (tenant-wide, as the Cosmos DB adapter names it).
const SCOPE: &str = "tenant";

#[async_trait::async_trait]
impl SecurityEventStore for Db {
    async fn record_security_event(
        &self,
        tenant: &TenantId,
        mut event: SecurityEvent,
        audit: AuditEntry,
        message: OutboxMessage,
    ) -> StoreResult<()> {
        event.tenant_id = tenant.as_str().to_owned();
        let outbox_ttl = self.outbox_ttl();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            transaction.execute(
                "INSERT INTO security_events (tenant_id, id, detected_at, event) VALUES (?1, ?2, ?3, ?4)",
                params![event.tenant_id, event.id, ts(event.detected_at), to_json(&event)],
            )?;
            insert_audit(&transaction, &audit)?;
            insert_outbox(&transaction, outbox_ttl, &event.tenant_id, SCOPE, &message)?;
            transaction.commit()
        })
        .await
    }

    async fn list_security_events(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<SecurityEvent>> {
        let tenant = tenant.as_str().to_owned();
        let fetch = move |conn: &rusqlite::Connection, keyset: Keyset| {
            let mut statement = conn.prepare_cached(
                "SELECT event FROM security_events
                  WHERE tenant_id = ?1 AND (?2 IS NULL OR (detected_at, id) < (?2, ?3))
                  ORDER BY detected_at DESC, id DESC LIMIT ?4",
            )?;
            let rows = statement.query_map(
                params![tenant, keyset.after_key, keyset.after_id, keyset.rows],
                |row| json_at(row, 0),
            )?;
            rows.collect()
        };
        self.read_page(&page, "security-events", fetch, |event: &SecurityEvent| {
            (ts(event.detected_at), event.id.clone())
        })
        .await
    }
}
