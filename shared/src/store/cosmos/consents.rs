//! Cosmos DB adapter of [`ConsentStore`]: one document per grant or withdrawal in the
//! customer's partition, written in one transactional batch with its audit entry and a check
//! that the customer exists; never replaced or deleted.

use azure_data_cosmos::TransactionalBatch;
use serde_json::json;

use super::doc::{customer_scope, doc_id, kind, Doc};
use super::support::{audit_doc, batch_create, pk, refused, scope_feed};
use super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::consent::ConsentRecord;
use crate::domain::tenant::TenantId;
use crate::store::{ts, ConsentStore, StoreError, StoreResult};

fn consent_doc(record: &ConsentRecord, scope: &str) -> Doc<ConsentRecord> {
    Doc::new(
        kind::CONSENT,
        &record.id,
        &record.tenant_id,
        scope,
        format!("{}|{}", ts(record.recorded_at), record.id),
        record.clone(),
    )
    .with_at(record.recorded_at)
}

#[async_trait::async_trait]
impl ConsentStore for CosmosStore {
    async fn record_consent(
        &self,
        tenant: &TenantId,
        mut record: ConsentRecord,
        audit: AuditEntry,
    ) -> StoreResult<ConsentRecord> {
        record.tenant_id = tenant.as_str().to_owned();
        let scope = customer_scope(&record.customer_id);
        let customer = doc_id(kind::CUSTOMER, &record.customer_id);
        let batch = TransactionalBatch::new(pk(tenant.as_str(), &scope));
        // The read makes the batch fail (404) when the customer does not exist.
        let batch = batch.read_item(customer, None);
        let batch = batch_create(self, batch, &consent_doc(&record, &scope))?;
        let batch = batch_create(self, batch, &audit_doc(&audit, &scope))?;
        match self.run_batch(self.data(), batch).await? {
            Ok(_) => Ok(record),
            Err(refusal) if refusal.status == 404 => Err(StoreError::NotFound),
            Err(refusal) => Err(refused(refusal)),
        }
    }

    async fn consent_history(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> StoreResult<Vec<ConsentRecord>> {
        let docs: Vec<Doc<ConsentRecord>> = self
            .query_docs(
                self.data(),
                scope_feed(tenant.as_str(), &customer_scope(customer_id)),
                "SELECT * FROM c WHERE c.type = @kind AND c.body.customerId = @customer ORDER BY c.sortKey ASC",
                vec![("@kind", json!(kind::CONSENT)), ("@customer", json!(customer_id))],
            )
            .await?;
        Ok(docs.into_iter().map(|doc| doc.body).collect())
    }
}
