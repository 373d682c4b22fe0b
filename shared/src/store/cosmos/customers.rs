//! Cosmos DB adapter of [`CustomerStore`]: a customer's profile and erasure requests live in
//! the customer's own partition, each change in one batch with its audit entry. An erasure
//! request's batch also holds the outbox record of its message (`gdpr-requests`), and the
//! request records when it was queued (`queuedAt`, and the envelope's `at` for the requeue
//! scan, see `erasure/requeue.rs`).

use azure_data_cosmos::TransactionalBatch;
use serde_json::json;

use super::doc::{customer_doc, customer_scope, doc_id, kind, Doc, ErasureDoc};
use super::support::{
    audit_doc, batch_create, batch_replace, busy, pk, refused, scope_feed, KeysetQuery, Order,
    CONCURRENCY_ATTEMPTS,
};
use super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::customer::{Customer, CustomerInput, CustomerStatus};
use crate::domain::etag::new_etag;
use crate::domain::gdpr::ErasureRecord;
use crate::domain::now;
use crate::domain::rejection::Rejection;
use crate::domain::tenant::TenantId;
use crate::outbox::OutboxMessage;
use crate::store::{
    check_if_match, ts, CustomerStore, IfMatch, Page, PageRequest, StoreError, StoreResult,
};

/// Fills the customer's API ETag from the envelope.
fn with_etag(mut doc: Doc<Customer>) -> Doc<Customer> {
    doc.body.etag = doc.version.clone();
    doc
}

impl CosmosStore {
    /// A customer's document (with its API ETag filled in), if it exists.
    pub(super) async fn customer_doc(
        &self,
        tenant: &str,
        customer_id: &str,
    ) -> StoreResult<Option<Doc<Customer>>> {
        let doc: Option<Doc<Customer>> = self
            .read_doc(
                self.data(),
                pk(tenant, &customer_scope(customer_id)),
                &doc_id(kind::CUSTOMER, customer_id),
            )
            .await?;
        Ok(doc.map(with_etag))
    }

    /// The open or completed erasure request of a customer, newest first.
    async fn latest_erasure(
        &self,
        tenant: &str,
        customer_id: &str,
    ) -> StoreResult<Option<ErasureRecord>> {
        let docs: Vec<Doc<ErasureDoc>> = self
            .query_docs(
                self.data(),
                scope_feed(tenant, &customer_scope(customer_id)),
                "SELECT TOP 1 * FROM c WHERE c.type = @kind AND c.body.status IN ('accepted', 'inProgress', 'completed') ORDER BY c.sortKey DESC",
                vec![("@kind", json!(kind::ERASURE))],
            )
            .await?;
        Ok(docs.into_iter().next().map(|doc| doc.body.record))
    }
}

#[async_trait::async_trait]
impl CustomerStore for CosmosStore {
    async fn create_customer(
        &self,
        tenant: &TenantId,
        mut customer: Customer,
        audit: AuditEntry,
    ) -> StoreResult<Customer> {
        customer.tenant_id = tenant.as_str().to_owned();
        customer.etag = new_etag();
        let scope = customer_scope(&customer.id);
        let batch = TransactionalBatch::new(pk(tenant.as_str(), &scope));
        let batch = batch_create(self, batch, &customer_doc(&customer))?;
        let batch = batch_create(self, batch, &audit_doc(&audit, &scope))?;
        match self.run_batch(self.data(), batch).await? {
            Ok(_) => Ok(customer),
            Err(refusal) if refusal.status == 409 => Err(StoreError::Conflict(format!(
                "a customer with id {} exists",
                customer.id
            ))),
            Err(refusal) => Err(refused(refusal)),
        }
    }

    async fn get_customer(&self, tenant: &TenantId, id: &str) -> StoreResult<Customer> {
        self.customer_doc(tenant.as_str(), id)
            .await?
            .map(|doc| doc.body)
            .ok_or(StoreError::NotFound)
    }

    async fn update_customer(
        &self,
        tenant: &TenantId,
        id: &str,
        input: CustomerInput,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<Customer> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            let mut doc = self
                .customer_doc(tenant.as_str(), id)
                .await?
                .ok_or(StoreError::NotFound)?;
            check_if_match(&if_match, &doc.version)?;
            if doc.body.status != CustomerStatus::Active {
                return Err(Rejection::CustomerNotActive(doc.body.status.as_str()).into());
            }
            let at = now();
            let customer = &mut doc.body;
            customer.name = input.name.clone();
            customer.email = input.email.clone();
            customer.phone = input.phone.clone();
            customer.address = input.address.clone();
            if let Some(preferences) = &input.preferences {
                customer.preferences = *preferences;
            }
            customer.updated_at = at;
            customer.last_activity_at = at;
            customer.etag = new_etag();
            let updated = Doc {
                version: customer.etag.clone(),
                at: Some(ts(at)),
                ..doc
            };
            let batch = TransactionalBatch::new(pk(tenant.as_str(), &updated.scope));
            let batch = batch_replace(self, batch, &updated)?;
            let batch = batch_create(self, batch, &audit_doc(&audit, &updated.scope))?;
            if self.commit_unless_changed(batch).await? {
                return Ok(updated.body);
            }
        }
        Err(busy("customer"))
    }

    async fn list_customers(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<Customer>> {
        let query = KeysetQuery {
            kind: kind::CUSTOMER,
            filter: String::new(),
            params: Vec::new(),
            order: Order::Ascending,
            query_name: "customers",
        };
        let docs: Page<Doc<Customer>> = self.keyset_docs(tenant, query, &page).await?;
        Ok(Page {
            items: docs
                .items
                .into_iter()
                .map(|doc| with_etag(doc).body)
                .collect(),
            continuation: docs.continuation,
        })
    }

    async fn request_erasure(
        &self,
        tenant: &TenantId,
        mut request: ErasureRecord,
        audit: AuditEntry,
    ) -> StoreResult<(ErasureRecord, bool)> {
        request.queued_at = Some(request.updated_at);
        for _ in 0..CONCURRENCY_ATTEMPTS {
            let customer = self
                .customer_doc(tenant.as_str(), &request.customer_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            if let Some(existing) = self
                .latest_erasure(tenant.as_str(), &request.customer_id)
                .await?
            {
                return Ok((existing, false));
            }
            let scope = customer.scope.clone();
            let mut marked = customer;
            marked.body.status = CustomerStatus::ErasureRequested;
            marked.version = new_etag();
            marked.body.etag = marked.version.clone();
            let record = Doc::new(
                kind::ERASURE,
                &request.id,
                tenant.as_str(),
                scope.clone(),
                ts(request.requested_at),
                ErasureDoc {
                    record: request.clone(),
                    progress: None,
                },
            )
            .with_at(request.updated_at);
            let message = OutboxMessage::erasure_request(
                &request,
                Some(&audit.correlation_id),
                request.updated_at,
            );
            let batch = TransactionalBatch::new(pk(tenant.as_str(), &scope));
            let batch = batch_replace(self, batch, &marked)?;
            let batch = batch_create(self, batch, &record)?;
            let batch = batch_create(self, batch, &audit_doc(&audit, &scope))?;
            let batch = self.batch_outbox(batch, tenant.as_str(), &scope, &message)?;
            if self.commit_unless_changed(batch).await? {
                return Ok((request, true));
            }
        }
        Err(busy("customer"))
    }

    async fn get_erasure(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        request_id: &str,
    ) -> StoreResult<ErasureRecord> {
        let doc: Option<Doc<ErasureDoc>> = self
            .read_doc(
                self.data(),
                pk(tenant.as_str(), &customer_scope(customer_id)),
                &doc_id(kind::ERASURE, request_id),
            )
            .await?;
        doc.map(|doc| doc.body.record)
            .filter(|record| record.customer_id == customer_id)
            .ok_or(StoreError::NotFound)
    }
}
