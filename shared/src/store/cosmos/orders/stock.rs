//! The catalogue side of an order: reserving stock for an order's lines (step 2 of the
//! creation saga, see the [module doc](super)), giving it back (compensation, cancellation),
//! ending the reservation when the order ships,
//! and settling reservation records a creation left behind (DatabaseMaintenance).

use azure_data_cosmos::{FeedScope, TransactionalBatch};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::doc::{doc_id, kind, Doc, CATALOG_SCOPE};
use super::super::support::{
    batch_create, batch_delete, batch_replace, busy, pk, CONCURRENCY_ATTEMPTS,
};
use super::super::{BatchRefused, CosmosStore};
use crate::domain::etag::new_etag;
use crate::domain::product::{Product, StockMove};
use crate::store::{ts, StoreResult};

/// Stock an order creation reserved, recorded in the catalogue with the stock change (one
/// batch) until the order is written: what maintenance settles if the creation never finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StockReservation {
    pub order_id: String,
    pub customer_id: String,
    pub quantities: Vec<(String, i64)>,
    pub created_at: DateTime<Utc>,
}

/// What a stock batch does to an order's reservation record.
pub(super) enum ReservationChange<'a> {
    None,
    Create(&'a Doc<StockReservation>),
    Delete(&'a Doc<StockReservation>),
}

impl CosmosStore {
    /// Changes the stock of several products in one catalogue batch (if each is unchanged),
    /// creating or deleting an order's reservation record in the same batch.
    /// A batch the service applied but whose answer was lost (the SDK retries it, and the retry
    /// meets our own write) counts as applied: the products then carry the versions we wrote.
    pub(super) async fn adjust_stock(
        &self,
        tenant: &str,
        products: &[Doc<Product>],
        deltas: &[(String, i64)],
        reservation: ReservationChange<'_>,
    ) -> StoreResult<Result<(), BatchRefused>> {
        let mut batch = TransactionalBatch::new(pk(tenant, CATALOG_SCOPE));
        match reservation {
            ReservationChange::None => {}
            ReservationChange::Create(doc) => batch = batch_create(self, batch, doc)?,
            ReservationChange::Delete(doc) => {
                batch = batch_delete(batch, &doc.id, doc.cosmos_etag.as_deref())
            }
        }
        let mut written = Vec::new();
        for (product_id, delta) in deltas {
            let Some(doc) = products.iter().find(|doc| &doc.body.id == product_id) else {
                continue;
            };
            let mut changed = doc.clone();
            let change = if *delta < 0 {
                StockMove::place(-delta)
            } else {
                StockMove::cancel(*delta)
            };
            change.apply_to(&mut changed.body);
            changed.body.etag = new_etag();
            changed.version = changed.body.etag.clone();
            batch = batch_replace(self, batch, &changed)?;
            written.push((product_id.clone(), changed.version));
        }
        let outcome = self.run_batch(self.data(), batch).await;
        if matches!(outcome, Ok(Ok(_))) {
            return Ok(Ok(()));
        }
        if self.products_have_versions(tenant, &written).await? {
            return Ok(Ok(()));
        }
        outcome.map(|refused| refused.map(|_| ()))
    }

    /// True when every product carries the version we wrote (our write was applied).
    async fn products_have_versions(
        &self,
        tenant: &str,
        written: &[(String, String)],
    ) -> StoreResult<bool> {
        for (product_id, version) in written {
            match self.product_doc(tenant, product_id).await? {
                Some(doc) if &doc.version == version => {}
                _ => return Ok(false),
            }
        }
        Ok(!written.is_empty())
    }

    /// Gives stock back (cancellation, compensation), re-reading on concurrent changes.
    pub(super) async fn release_stock(
        &self,
        tenant: &str,
        quantities: &[(String, i64)],
    ) -> StoreResult<()> {
        for (product_id, quantity) in quantities {
            let mut released = false;
            for _ in 0..CONCURRENCY_ATTEMPTS * 2 {
                let Some(doc) = self.product_doc(tenant, product_id).await? else {
                    released = true;
                    break;
                };
                match self
                    .adjust_stock(
                        tenant,
                        std::slice::from_ref(&doc),
                        &[(product_id.clone(), *quantity)],
                        ReservationChange::None,
                    )
                    .await?
                {
                    Ok(()) => {
                        released = true;
                        break;
                    }
                    Err(_) => continue,
                }
            }
            if !released {
                tracing::error!(tenant, product_id = %product_id, quantity, "stock could not be released: the product kept changing");
                return Err(busy("product"));
            }
        }
        Ok(())
    }

    /// Ends the reservation of shipped units and takes them off hand (see [`StockMove::ship`]),
    /// re-reading on concurrent changes.
    pub(super) async fn ship_stock(
        &self,
        tenant: &str,
        quantities: &[(String, i64)],
    ) -> StoreResult<()> {
        for (product_id, quantity) in quantities {
            let mut shipped = false;
            for _ in 0..CONCURRENCY_ATTEMPTS * 2 {
                let Some(doc) = self.product_doc(tenant, product_id).await? else {
                    shipped = true;
                    break;
                };
                let mut changed = doc.clone();
                StockMove::ship(*quantity).apply_to(&mut changed.body);
                changed.body.etag = new_etag();
                changed.version = changed.body.etag.clone();
                let batch = TransactionalBatch::new(pk(tenant, CATALOG_SCOPE));
                let batch = batch_replace(self, batch, &changed)?;
                if self.commit_unless_changed(batch).await? {
                    shipped = true;
                    break;
                }
            }
            if !shipped {
                tracing::error!(tenant, product_id = %product_id, quantity, "the reservation of shipped units could not be ended: the product kept changing");
                return Err(busy("product"));
            }
        }
        Ok(())
    }

    /// Drops the reservation record of an order that was written (best effort: maintenance
    /// forgets any left behind, since their order exists).
    pub(super) async fn forget_reservation(&self, reservation: &Doc<StockReservation>) {
        let deleted = self
            .delete_doc(
                self.data(),
                pk(&reservation.tenant_id, CATALOG_SCOPE),
                &reservation.id,
                None,
            )
            .await;
        if let Err(error) = deleted {
            tracing::warn!(tenant = %reservation.tenant_id, order_id = %reservation.body.order_id, %error, "a stock reservation record stays for maintenance");
        }
    }

    /// Gives back the stock an order reserved and deletes its reservation record, in one
    /// batch; nothing when the record is gone (released or settled already).
    pub(super) async fn release_reservation(
        &self,
        tenant: &str,
        order_id: &str,
    ) -> StoreResult<()> {
        for _ in 0..CONCURRENCY_ATTEMPTS * 2 {
            let doc: Option<Doc<StockReservation>> = self
                .read_doc(
                    self.data(),
                    pk(tenant, CATALOG_SCOPE),
                    &doc_id(kind::RESERVATION, order_id),
                )
                .await?;
            let Some(reservation) = doc else {
                return Ok(());
            };
            let mut products = Vec::new();
            for (product_id, _) in &reservation.body.quantities {
                if let Some(product) = self.product_doc(tenant, product_id).await? {
                    products.push(product);
                }
            }
            if self
                .adjust_stock(
                    tenant,
                    &products,
                    &reservation.body.quantities,
                    ReservationChange::Delete(&reservation),
                )
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        tracing::error!(tenant, order_id, "reserved stock could not be released: the products kept changing; maintenance will retry");
        Err(busy("product"))
    }

    /// Settles the reservation records older than `before`: the order exists (forget the
    /// record) or not (give the stock back). Per tenant, how many.
    pub(in crate::store::cosmos) async fn settle_reservations(
        &self,
        before: DateTime<Utc>,
        dry_run: bool,
    ) -> StoreResult<Vec<(String, u64)>> {
        let sql = "SELECT * FROM c WHERE c.type = @kind AND c.at < @before";
        let params = vec![
            ("@kind", json!(kind::RESERVATION)),
            ("@before", json!(ts(before))),
        ];
        let pending: Vec<Doc<StockReservation>> = self
            .query_docs(self.data(), FeedScope::full_container(), sql, params)
            .await?;
        let mut settled: std::collections::BTreeMap<String, u64> =
            std::collections::BTreeMap::new();
        for reservation in pending {
            if !dry_run {
                let (tenant, body) = (reservation.tenant_id.as_str(), &reservation.body);
                if self
                    .order_in_scope(tenant, &body.customer_id, &body.order_id)
                    .await?
                    .is_some()
                {
                    self.delete_doc(
                        self.data(),
                        pk(tenant, CATALOG_SCOPE),
                        &reservation.id,
                        reservation.cosmos_etag.as_deref(),
                    )
                    .await?;
                } else {
                    self.release_reservation(tenant, &body.order_id).await?;
                }
            }
            *settled.entry(reservation.tenant_id.clone()).or_insert(0) += 1;
        }
        Ok(settled.into_iter().collect())
    }
}
