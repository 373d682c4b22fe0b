//! SQLite adapter of [`AuditStore`]: the audit trail, newest first.

use rusqlite::{params, OptionalExtension};

use super::support::{insert_audit, time_at, ts, Keyset};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::store::{AuditFilter, AuditRecorded, AuditStore, Page, PageRequest, StoreResult};

pub(super) const COLUMNS: &str =
    "tenant_id, id, actor_id, action, target_type, target_id, customer_id, at, correlation_id, actor_role";

pub(super) fn audit_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        tenant_id: row.get(0)?,
        id: row.get(1)?,
        actor_id: row.get(2)?,
        action: row.get(3)?,
        target_type: row.get(4)?,
        target_id: row.get(5)?,
        customer_id: row.get(6)?,
        at: time_at(row, 7)?,
        correlation_id: row.get(8)?,
        actor_role: row.get(9)?,
    })
}

/// The query name a continuation token of this listing carries: filters included, so a token
/// cannot be replayed with other filters.
#[async_trait::async_trait]
impl AuditStore for Db {
    /// Written with the other entries waiting for the writer, in one transaction
    /// ([`Db::append_audit_grouped`]); returns once this entry is committed.
    async fn append_audit(&self, _tenant: &TenantId, entry: AuditEntry) -> StoreResult<()> {
        self.append_audit_grouped(entry).await
    }

    async fn record_audit_once(
        &self,
        tenant: &TenantId,
        mut entry: AuditEntry,
    ) -> StoreResult<AuditRecorded> {
        entry.tenant_id = tenant.as_str().to_owned();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let existing = transaction
                .query_row(
                    &format!("SELECT {COLUMNS} FROM audit_log WHERE tenant_id = ?1 AND id = ?2"),
                    params![entry.tenant_id, entry.id],
                    audit_from_row,
                )
                .optional()?;
            let recorded = match existing {
                Some(stored) => AuditRecorded::Existing(stored),
                None => {
                    insert_audit(&transaction, &entry)?;
                    AuditRecorded::New(entry)
                }
            };
            transaction.commit()?;
            Ok(recorded)
        })
        .await
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        filter: AuditFilter,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEntry>> {
        let tenant = tenant.as_str().to_owned();
        let query = filter.query_name();
        let fetch = move |conn: &rusqlite::Connection, keyset: Keyset| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit_log
                  WHERE tenant_id = ?1
                    AND (?2 IS NULL OR actor_id = ?2)
                    AND (?3 IS NULL OR action = ?3)
                    AND (?4 IS NULL OR target_id = ?4)
                    AND (?5 IS NULL OR customer_id = ?5)
                    AND (?6 IS NULL OR at >= ?6)
                    AND (?7 IS NULL OR at < ?7)
                    AND (?8 IS NULL OR (at, id) < (?8, ?9))
                  ORDER BY at DESC, id DESC LIMIT ?10"
            ))?;
            let rows = statement.query_map(
                params![
                    tenant,
                    filter.actor_id,
                    filter.action,
                    filter.target_id,
                    filter.customer_id,
                    filter.from.map(ts),
                    filter.to.map(ts),
                    keyset.after_key,
                    keyset.after_id,
                    keyset.rows
                ],
                audit_from_row,
            )?;
            rows.collect()
        };
        self.read_page(&page, &query, fetch, |entry| {
            (ts(entry.at), entry.id.clone())
        })
        .await
    }
}
