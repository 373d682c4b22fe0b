//! SQLite adapter of [`PreferenceStore`]: the `notification_preferences` table, one row per
//! customer who set them (no row: the defaults).

use rusqlite::{params, Connection, OptionalExtension};

use super::support::{check_if_match, insert_audit, json_at, new_etag, now, time_at, to_json, ts};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::customer::CustomerStatus;
use crate::domain::preferences::{Preferences, DEFAULT_ETAG};
use crate::domain::rejection::Rejection;
use crate::domain::tenant::TenantId;
use crate::store::{IfMatch, PreferenceStore, StoreError, StoreResult};

/// The customer's stored preferences, completed with the defaults (`None`: never set).
pub(super) fn stored_preferences(
    conn: &Connection,
    tenant: &str,
    customer_id: &str,
) -> rusqlite::Result<Option<Preferences>> {
    conn.prepare_cached(
        "SELECT event_types, updated_at, etag FROM notification_preferences
          WHERE tenant_id = ?1 AND customer_id = ?2",
    )?
    .query_row(params![tenant, customer_id], |row| {
        Ok(Preferences {
            customer_id: customer_id.to_owned(),
            event_types: json_at(row, 0)?,
            updated_at: Some(time_at(row, 1)?),
            etag: row.get(2)?,
        }
        .completed())
    })
    .optional()
}

/// The preferences dispatch goes by: the stored ones, or the defaults.
pub(super) fn effective_preferences(
    conn: &Connection,
    tenant: &str,
    customer_id: &str,
) -> rusqlite::Result<Preferences> {
    Ok(stored_preferences(conn, tenant, customer_id)?
        .unwrap_or_else(|| Preferences::defaults(customer_id)))
}

/// Deletes the customer's preferences (erasure); how many rows went.
pub(super) fn delete_preferences(
    conn: &Connection,
    tenant: &str,
    customer_id: &str,
) -> rusqlite::Result<u64> {
    let deleted = conn.execute(
        "DELETE FROM notification_preferences WHERE tenant_id = ?1 AND customer_id = ?2",
        params![tenant, customer_id],
    )?;
    Ok(deleted as u64)
}

#[async_trait::async_trait]
impl PreferenceStore for Db {
    async fn get_preferences(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> StoreResult<Option<Preferences>> {
        let (tenant, customer_id) = (tenant.as_str().to_owned(), customer_id.to_owned());
        self.read(move |conn| stored_preferences(conn, &tenant, &customer_id))
            .await
    }

    async fn put_preferences(
        &self,
        tenant: &TenantId,
        mut preferences: Preferences,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<Preferences> {
        let tenant = tenant.as_str().to_owned();
        preferences.etag = new_etag();
        preferences.updated_at = Some(now());
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let customer = &preferences.customer_id;
            let status: Option<String> = transaction
                .query_row(
                    "SELECT status FROM customers WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, customer],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(status) = status else {
                return Ok(Err(StoreError::NotFound));
            };
            if let Some(other) = CustomerStatus::parse(&status).filter(|s| *s != CustomerStatus::Active) {
                return Ok(Err(Rejection::CustomerNotActive(other.as_str()).into()));
            }
            let current = stored_preferences(&transaction, &tenant, customer)?
                .map_or_else(|| DEFAULT_ETAG.to_owned(), |stored| stored.etag);
            if let Err(error) = check_if_match(&if_match, &current) {
                return Ok(Err(error));
            }
            transaction.execute(
                "INSERT INTO notification_preferences (tenant_id, customer_id, event_types, updated_at, etag)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant_id, customer_id) DO UPDATE SET
                   event_types = excluded.event_types, updated_at = excluded.updated_at, etag = excluded.etag",
                params![
                    tenant,
                    customer,
                    to_json(&preferences.event_types),
                    preferences.updated_at.map(ts),
                    preferences.etag
                ],
            )?;
            insert_audit(&transaction, &audit)?;
            transaction.commit()?;
            Ok(Ok(preferences))
        })
        .await?
    }
}
