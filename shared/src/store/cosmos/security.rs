//! Cosmos DB adapter of [`SecurityEventStore`]: one document per finding in the tenant scope,
//! created in one transactional batch with its audit entry and its outbox record.

use azure_data_cosmos::TransactionalBatch;

use super::doc::{kind, Doc, TENANT_SCOPE};
use super::support::{audit_doc, batch_create, pk, refused, KeysetQuery, Order};
use super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::outbox::OutboxMessage;
use crate::security::SecurityEvent;
use crate::store::{ts, Page, PageRequest, SecurityEventStore, StoreResult};

fn event_doc(event: &SecurityEvent) -> Doc<SecurityEvent> {
    Doc::new(
        kind::SECURITY_EVENT,
        &event.id,
        &event.tenant_id,
        TENANT_SCOPE,
        ts(event.detected_at),
        event.clone(),
    )
    .with_at(event.detected_at)
}

#[async_trait::async_trait]
impl SecurityEventStore for CosmosStore {
    async fn record_security_event(
        &self,
        tenant: &TenantId,
        mut event: SecurityEvent,
        audit: AuditEntry,
        message: OutboxMessage,
    ) -> StoreResult<()> {
        event.tenant_id = tenant.as_str().to_owned();
        let batch = TransactionalBatch::new(pk(tenant.as_str(), TENANT_SCOPE));
        let batch = batch_create(self, batch, &event_doc(&event))?;
        let batch = batch_create(self, batch, &audit_doc(&audit, TENANT_SCOPE))?;
        let batch = self.batch_outbox(batch, tenant.as_str(), TENANT_SCOPE, &message)?;
        match self.run_batch(self.data(), batch).await? {
            Ok(_) => Ok(()),
            Err(refusal) => Err(refused(refusal)),
        }
    }

    async fn list_security_events(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<SecurityEvent>> {
        let query = KeysetQuery {
            kind: kind::SECURITY_EVENT,
            filter: String::new(),
            params: Vec::new(),
            order: Order::Descending,
            query_name: "security-events",
        };
        self.keyset_page(tenant, query, &page).await
    }
}
