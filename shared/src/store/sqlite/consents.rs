//! SQLite adapter of [`ConsentStore`]: the `consents` table, append-only.

use rusqlite::{params, OptionalExtension};

use super::support::{insert_audit, time_at, ts};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::consent::{ConsentChannel, ConsentRecord, Purpose};
use crate::domain::tenant::TenantId;
use crate::store::{ConsentStore, StoreError, StoreResult};

const COLUMNS: &str = "tenant_id, id, customer_id, purpose, granted, notice_version, channel, recorded_at, recorded_by";

fn consent_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConsentRecord> {
    let text = |index: usize, value: String| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown value {value:?}").into(),
        )
    };
    let purpose: String = row.get(3)?;
    let channel: String = row.get(6)?;
    Ok(ConsentRecord {
        tenant_id: row.get(0)?,
        id: row.get(1)?,
        customer_id: row.get(2)?,
        purpose: Purpose::parse(&purpose).ok_or_else(|| text(3, purpose.clone()))?,
        granted: row.get(4)?,
        notice_version: row.get(5)?,
        channel: ConsentChannel::parse(&channel).ok_or_else(|| text(6, channel.clone()))?,
        recorded_at: time_at(row, 7)?,
        recorded_by: row.get(8)?,
    })
}

#[async_trait::async_trait]
impl ConsentStore for Db {
    async fn record_consent(
        &self,
        tenant: &TenantId,
        mut record: ConsentRecord,
        audit: AuditEntry,
    ) -> StoreResult<ConsentRecord> {
        record.tenant_id = tenant.as_str().to_owned();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let exists = transaction
                .query_row(
                    "SELECT 1 FROM customers WHERE tenant_id = ?1 AND id = ?2",
                    params![record.tenant_id, record.customer_id],
                    |_| Ok(()),
                )
                .optional()?;
            if exists.is_none() {
                return Ok(Err(StoreError::NotFound));
            }
            transaction.execute(
                &format!(
                    "INSERT INTO consents ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    record.tenant_id,
                    record.id,
                    record.customer_id,
                    record.purpose.as_str(),
                    record.granted,
                    record.notice_version,
                    record.channel.as_str(),
                    ts(record.recorded_at),
                    record.recorded_by
                ],
            )?;
            insert_audit(&transaction, &audit)?;
            transaction.commit()?;
            Ok(Ok(record))
        })
        .await?
    }

    async fn consent_history(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> StoreResult<Vec<ConsentRecord>> {
        let (tenant, customer_id) = (tenant.as_str().to_owned(), customer_id.to_owned());
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM consents WHERE tenant_id = ?1 AND customer_id = ?2
                  ORDER BY recorded_at, id"
            ))?;
            let rows = statement.query_map(params![tenant, customer_id], consent_from_row)?;
            rows.collect()
        })
        .await
    }
}
