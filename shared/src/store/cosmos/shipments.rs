//! Cosmos DB adapter of [`ShipmentStore`]: one document per shipment (id the order's) in the
//! customer's partition, beside the order; recorded in one transactional batch with its audit
//! entry. `tracking` (a shipment with a tracker and a status that is not final) and the sort key
//! `"{tenant} {order}"` serve the cross-tenant scan of `ShipmentTracking`.

use azure_data_cosmos::{FeedScope, TransactionalBatch};
use serde::{Deserialize, Serialize};

use super::doc::{customer_scope, doc_id, kind, Doc};
use super::support::{audit_doc, batch_create, param, pk, refused, scope_feed};
use super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::masking::{Entity, Masker};
use crate::domain::shipment::Shipment;
use crate::domain::tenant::TenantId;
use crate::store::erasure::BatchOutcome as StepOutcome;
use crate::store::{ShipmentBegun, ShipmentStore, StoreError, StoreResult, TrackingCursor};

/// The stored body: the shipment and whether tracking still polls it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredShipment {
    #[serde(flatten)]
    shipment: Shipment,
    tracking: bool,
}

fn track_key(tenant: &str, order_id: &str) -> String {
    format!("{tenant} {order_id}")
}

fn shipment_doc(shipment: &Shipment) -> Doc<StoredShipment> {
    Doc::new(
        kind::SHIPMENT,
        &shipment.order_id,
        &shipment.tenant_id,
        customer_scope(&shipment.customer_id),
        track_key(&shipment.tenant_id, &shipment.order_id),
        StoredShipment {
            tracking: shipment.tracker_id.is_some() && !shipment.status.is_final(),
            shipment: shipment.clone(),
        },
    )
    .with_at(shipment.updated_at)
}

fn shipment_of(doc: Doc<StoredShipment>) -> Shipment {
    let mut shipment = doc.body.shipment;
    shipment.tenant_id = doc.tenant_id;
    shipment
}

impl CosmosStore {
    /// The order's shipment document: found by order id across the tenant's partitions (the
    /// caller may not know the customer).
    async fn find_shipment(
        &self,
        tenant: &str,
        order_id: &str,
    ) -> StoreResult<Option<Doc<StoredShipment>>> {
        let docs: Vec<Doc<StoredShipment>> = self
            .query_docs(
                self.data(),
                super::support::tenant_prefix_feed(tenant),
                "SELECT * FROM c WHERE c.type = @kind AND c.id = @id",
                vec![
                    param("@kind", kind::SHIPMENT),
                    param("@id", doc_id(kind::SHIPMENT, order_id)),
                ],
            )
            .await?;
        Ok(docs.into_iter().next())
    }

    /// The `shipments` step of an erasure: up to `limit` of the customer's shipments not yet
    /// erased lose their label URL (the masking rules) and are marked erased, in `batch`.
    pub(crate) async fn erasure_mask_shipments(
        &self,
        tenant: &str,
        scope: &str,
        masker: &Masker,
        limit: usize,
        mut batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        let sql = format!(
            "SELECT TOP {limit} * FROM c WHERE c.type = @kind AND NOT IS_DEFINED(c.body.erasedAt)"
        );
        let docs: Vec<Doc<serde_json::Value>> = self
            .query_docs(
                self.data(),
                scope_feed(tenant, scope),
                &sql,
                vec![param("@kind", kind::SHIPMENT)],
            )
            .await?;
        let selected = docs.len();
        let erased_at = crate::store::ts(crate::domain::now());
        for mut doc in docs {
            masker.mask_document(Entity::Shipment, &mut doc.body);
            if let Some(body) = doc.body.as_object_mut() {
                body.remove("labelUrl");
                body.insert(
                    "erasedAt".into(),
                    serde_json::Value::String(erased_at.clone()),
                );
            }
            batch = super::support::batch_replace(self, batch, &doc)?;
        }
        Ok((
            batch,
            StepOutcome {
                counts: vec![("shipments", selected as u64)],
                cursor: None,
                done: selected < limit,
            },
        ))
    }
}

#[async_trait::async_trait]
impl ShipmentStore for CosmosStore {
    async fn begin_shipment(
        &self,
        tenant: &TenantId,
        mut shipment: Shipment,
        audit: AuditEntry,
    ) -> StoreResult<ShipmentBegun> {
        shipment.tenant_id = tenant.as_str().to_owned();
        let scope = customer_scope(&shipment.customer_id);
        let batch = TransactionalBatch::new(pk(tenant.as_str(), &scope));
        let batch = batch_create(self, batch, &shipment_doc(&shipment))?;
        let batch = batch_create(self, batch, &audit_doc(&audit, &scope))?;
        match self.run_batch(self.data(), batch).await? {
            Ok(_) => Ok(ShipmentBegun::New(shipment)),
            Err(refusal) if refusal.status == 409 => {
                match self
                    .find_shipment(tenant.as_str(), &shipment.order_id)
                    .await?
                {
                    Some(doc) => Ok(ShipmentBegun::Existing(shipment_of(doc))),
                    None => Err(StoreError::Conflict(
                        "the shipment was being recorded concurrently; try again".into(),
                    )),
                }
            }
            Err(refusal) => Err(refused(refusal)),
        }
    }

    async fn save_shipment(
        &self,
        tenant: &TenantId,
        mut shipment: Shipment,
    ) -> StoreResult<Shipment> {
        shipment.tenant_id = tenant.as_str().to_owned();
        let doc = shipment_doc(&shipment);
        self.replace_doc(
            self.data(),
            pk(tenant.as_str(), &doc.scope),
            &doc.id,
            &doc,
            None,
        )
        .await?;
        Ok(shipment)
    }

    async fn claim_carrier_shipment(
        &self,
        tenant: &TenantId,
        order_id: &str,
        carrier_shipment_id: &str,
    ) -> StoreResult<Shipment> {
        for _ in 0..5 {
            let Some(doc) = self.find_shipment(tenant.as_str(), order_id).await? else {
                return Err(StoreError::NotFound);
            };
            let etag = doc.cosmos_etag.clone();
            let mut shipment = shipment_of(doc);
            if shipment.carrier_shipment_id.is_some() {
                return Ok(shipment);
            }
            shipment.carrier_shipment_id = Some(carrier_shipment_id.to_owned());
            shipment.updated_at = crate::domain::now();
            let doc = shipment_doc(&shipment);
            match self
                .replace_doc(
                    self.data(),
                    pk(tenant.as_str(), &doc.scope),
                    &doc.id,
                    &doc,
                    etag.as_deref(),
                )
                .await
            {
                Ok(_) => return Ok(shipment),
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Conflict(
            "the shipment kept changing while its carrier shipment was recorded; try again".into(),
        ))
    }

    async fn get_shipment(
        &self,
        tenant: &TenantId,
        order_id: &str,
    ) -> StoreResult<Option<Shipment>> {
        Ok(self
            .find_shipment(tenant.as_str(), order_id)
            .await?
            .map(shipment_of))
    }

    async fn customer_shipments(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> StoreResult<Vec<Shipment>> {
        let docs: Vec<Doc<StoredShipment>> = self
            .query_docs(
                self.data(),
                scope_feed(tenant.as_str(), &customer_scope(customer_id)),
                "SELECT * FROM c WHERE c.type = @kind ORDER BY c.body.createdAt ASC",
                vec![param("@kind", kind::SHIPMENT)],
            )
            .await?;
        Ok(docs.into_iter().map(shipment_of).collect())
    }

    async fn shipments_to_track(
        &self,
        after: Option<&TrackingCursor>,
        limit: usize,
    ) -> StoreResult<Vec<Shipment>> {
        let after = after.map_or_else(String::new, |cursor| {
            track_key(&cursor.tenant_id, &cursor.order_id)
        });
        let docs: Vec<Doc<StoredShipment>> = self
            .query_docs(
                self.data(),
                FeedScope::full_container(),
                &format!("SELECT TOP {limit} * FROM c WHERE c.type = @kind AND c.body.tracking = true AND c.sortKey > @after ORDER BY c.sortKey"),
                vec![param("@kind", kind::SHIPMENT), param("@after", after)],
            )
            .await?;
        Ok(docs.into_iter().map(shipment_of).collect())
    }
}
