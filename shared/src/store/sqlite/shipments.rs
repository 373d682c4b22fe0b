//! SQLite adapter of [`ShipmentStore`]: the `shipments` table, one row per order.

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::support::{insert_audit, optional_time_at, time_at, ts};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::shipment::{Shipment, TrackingStatus};
use crate::domain::tenant::TenantId;
use crate::store::{ShipmentBegun, ShipmentStore, StoreError, StoreResult, TrackingCursor};

const COLUMNS: &str = "tenant_id, order_id, customer_id, carrier, status, carrier_shipment_id, service, tracking_number, label_url, tracker_id, event_id, created_at, updated_at, delivered_at, erased_at";

/// The statuses after which tracking stops (as [`TrackingStatus::is_final`]).
const FINAL: &str = "'delivered', 'return_to_sender', 'cancelled', 'failure'";

fn shipment_from_row(row: &Row<'_>) -> rusqlite::Result<Shipment> {
    let status: String = row.get(4)?;
    Ok(Shipment {
        tenant_id: row.get(0)?,
        order_id: row.get(1)?,
        customer_id: row.get(2)?,
        carrier: row.get(3)?,
        status: TrackingStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Text,
                format!("unknown shipment status {status:?}").into(),
            )
        })?,
        carrier_shipment_id: row.get(5)?,
        service: row.get(6)?,
        tracking_number: row.get(7)?,
        label_url: row.get(8)?,
        tracker_id: row.get(9)?,
        event_id: row.get(10)?,
        created_at: time_at(row, 11)?,
        updated_at: time_at(row, 12)?,
        delivered_at: optional_time_at(row, 13)?,
        erased_at: optional_time_at(row, 14)?,
    })
}

fn find(
    tx: &rusqlite::Connection,
    tenant: &str,
    order_id: &str,
) -> rusqlite::Result<Option<Shipment>> {
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM shipments WHERE tenant_id = ?1 AND order_id = ?2"
    ))?
    .query_row(params![tenant, order_id], shipment_from_row)
    .optional()
}

fn insert(tx: &Transaction<'_>, shipment: &Shipment) -> rusqlite::Result<()> {
    tx.execute(
        &format!("INSERT INTO shipments ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
        params![
            shipment.tenant_id,
            shipment.order_id,
            shipment.customer_id,
            shipment.carrier,
            shipment.status.as_str(),
            shipment.carrier_shipment_id,
            shipment.service,
            shipment.tracking_number,
            shipment.label_url,
            shipment.tracker_id,
            shipment.event_id,
            ts(shipment.created_at),
            ts(shipment.updated_at),
            shipment.delivered_at.map(ts),
            shipment.erased_at.map(ts),
        ],
    )?;
    Ok(())
}

#[async_trait::async_trait]
impl ShipmentStore for Db {
    async fn begin_shipment(
        &self,
        tenant: &TenantId,
        mut shipment: Shipment,
        audit: AuditEntry,
    ) -> StoreResult<ShipmentBegun> {
        shipment.tenant_id = tenant.as_str().to_owned();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            if let Some(existing) = find(&tx, &shipment.tenant_id, &shipment.order_id)? {
                return Ok(ShipmentBegun::Existing(existing));
            }
            insert(&tx, &shipment)?;
            insert_audit(&tx, &audit)?;
            tx.commit()?;
            Ok(ShipmentBegun::New(shipment))
        })
        .await
    }

    async fn save_shipment(
        &self,
        tenant: &TenantId,
        mut shipment: Shipment,
    ) -> StoreResult<Shipment> {
        shipment.tenant_id = tenant.as_str().to_owned();
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE shipments SET status = ?3, carrier_shipment_id = ?4, service = ?5, tracking_number = ?6,
                        label_url = ?7, tracker_id = ?8, updated_at = ?9, delivered_at = ?10, erased_at = ?11
                  WHERE tenant_id = ?1 AND order_id = ?2",
                params![
                    shipment.tenant_id,
                    shipment.order_id,
                    shipment.status.as_str(),
                    shipment.carrier_shipment_id,
                    shipment.service,
                    shipment.tracking_number,
                    shipment.label_url,
                    shipment.tracker_id,
                    ts(shipment.updated_at),
                    shipment.delivered_at.map(ts),
                    shipment.erased_at.map(ts),
                ],
            )?;
            Ok(if changed == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(shipment)
            })
        })
        .await?
    }

    async fn claim_carrier_shipment(
        &self,
        tenant: &TenantId,
        order_id: &str,
        carrier_shipment_id: &str,
    ) -> StoreResult<Shipment> {
        let (tenant, order_id, claimed) = (
            tenant.as_str().to_owned(),
            order_id.to_owned(),
            carrier_shipment_id.to_owned(),
        );
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE shipments SET carrier_shipment_id = ?3, updated_at = ?4
                  WHERE tenant_id = ?1 AND order_id = ?2 AND carrier_shipment_id IS NULL",
                params![tenant, order_id, claimed, ts(crate::domain::now())],
            )?;
            let stored = find(&tx, &tenant, &order_id)?;
            tx.commit()?;
            Ok(stored.ok_or(StoreError::NotFound))
        })
        .await?
    }

    async fn get_shipment(
        &self,
        tenant: &TenantId,
        order_id: &str,
    ) -> StoreResult<Option<Shipment>> {
        let (tenant, order_id) = (tenant.as_str().to_owned(), order_id.to_owned());
        self.read(move |conn| find(conn, &tenant, &order_id)).await
    }

    async fn customer_shipments(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> StoreResult<Vec<Shipment>> {
        let (tenant, customer_id) = (tenant.as_str().to_owned(), customer_id.to_owned());
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM shipments WHERE tenant_id = ?1 AND customer_id = ?2 ORDER BY created_at, order_id"
            ))?;
            let rows = statement.query_map(params![tenant, customer_id], shipment_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn shipments_to_track(
        &self,
        after: Option<&TrackingCursor>,
        limit: usize,
    ) -> StoreResult<Vec<Shipment>> {
        let after = after.cloned().unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM shipments
                  WHERE tracker_id IS NOT NULL AND status NOT IN ({FINAL})
                    AND (tenant_id > ?1 OR (tenant_id = ?1 AND order_id > ?2))
                  ORDER BY tenant_id, order_id LIMIT ?3"
            ))?;
            let rows = statement.query_map(
                params![after.tenant_id, after.order_id, limit],
                shipment_from_row,
            )?;
            rows.collect()
        })
        .await
    }
}

/// The erasure's `shipments` step: the label URL (the label shows name and address) removed,
/// each shipment marked erased; carrier, tracking number, status and dates kept.
pub(super) fn erase_shipments(
    tx: &Transaction<'_>,
    masker: &crate::domain::masking::Masker,
    limit: usize,
) -> rusqlite::Result<crate::store::erasure::BatchOutcome> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let changed = tx.execute(
        "UPDATE shipments SET label_url = NULL, erased_at = ?3
          WHERE tenant_id = ?1 AND order_id IN (SELECT order_id FROM shipments
                 WHERE tenant_id = ?1 AND customer_id = ?2 AND erased_at IS NULL LIMIT ?4)",
        params![
            masker.tenant(),
            masker.customer_id(),
            ts(crate::domain::now()),
            limit
        ],
    )?;
    Ok(crate::store::erasure::BatchOutcome {
        counts: vec![("shipments", changed as u64)],
        cursor: None,
        done: (changed as i64) < limit,
    })
}
