//! Cosmos DB adapter of [`AuditStore`]: entries live beside what they record (the customer's
//! partition, the catalogue, or the tenant scope); the listing is a query over the tenant's
//! partitions, newest first.

use serde_json::json;

use super::doc::{customer_scope, kind, TENANT_SCOPE};
use super::support::{audit_doc, pk, KeysetQuery, Order};
use super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::store::{
    ts, AuditFilter, AuditRecorded, AuditStore, Page, PageRequest, StoreError, StoreResult,
};

/// The `AND ...` conditions and parameters of a filter.
fn conditions(filter: &AuditFilter) -> (String, Vec<super::Param>) {
    let mut sql = String::new();
    let mut params = Vec::new();
    let equal = [
        ("c.body.actorId", "@actor", &filter.actor_id),
        ("c.body.action", "@action", &filter.action),
        ("c.body.targetId", "@target", &filter.target_id),
        ("c.body.customerId", "@customer", &filter.customer_id),
    ];
    for (path, name, value) in equal {
        if let Some(value) = value {
            sql.push_str(&format!(" AND {path} = {name}"));
            params.push((name, json!(value)));
        }
    }
    if let Some(from) = filter.from {
        sql.push_str(" AND c.sortKey >= @from");
        params.push(("@from", json!(ts(from))));
    }
    if let Some(to) = filter.to {
        sql.push_str(" AND c.sortKey < @to");
        params.push(("@to", json!(ts(to))));
    }
    (sql, params)
}

#[async_trait::async_trait]
impl AuditStore for CosmosStore {
    async fn append_audit(&self, tenant: &TenantId, entry: AuditEntry) -> StoreResult<()> {
        let scope = entry
            .customer_id
            .as_deref()
            .map_or_else(|| TENANT_SCOPE.to_owned(), customer_scope);
        let doc = audit_doc(&entry, &scope);
        self.create_doc(self.data(), pk(tenant.as_str(), &scope), &doc.id, &doc)
            .await?;
        Ok(())
    }

    /// Kept in the tenant scope whatever customer it names (so one id has one place; the
    /// GDPR trail and erasure find audit entries outside a customer's partition too).
    async fn record_audit_once(
        &self,
        tenant: &TenantId,
        mut entry: AuditEntry,
    ) -> StoreResult<AuditRecorded> {
        entry.tenant_id = tenant.as_str().to_owned();
        let doc = audit_doc(&entry, TENANT_SCOPE);
        let key = pk(tenant.as_str(), TENANT_SCOPE);
        match self
            .create_doc(self.data(), key.clone(), &doc.id, &doc)
            .await
        {
            Ok(_) => Ok(AuditRecorded::New(entry)),
            Err(StoreError::Conflict(_)) => self
                .read_doc::<super::doc::Doc<AuditEntry>>(self.data(), key, &doc.id)
                .await?
                .map(|stored| AuditRecorded::Existing(stored.body))
                .ok_or(StoreError::NotFound),
            Err(error) => Err(error),
        }
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        filter: AuditFilter,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEntry>> {
        let name = filter.query_name();
        let (condition, params) = conditions(&filter);
        let query = KeysetQuery {
            kind: kind::AUDIT,
            filter: condition,
            params,
            order: Order::Descending,
            query_name: &name,
        };
        self.keyset_page(tenant, query, &page).await
    }
}
