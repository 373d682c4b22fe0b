//! Cosmos DB adapter of [`AuditStore`]: entries live beside what they record (the customer's
//! partition, the catalogue, or the tenant scope); the listing is a query over the tenant's
//! partitions, newest first.

use serde_json::json;

use super::doc::{customer_scope, kind, TENANT_SCOPE};
use super::support::{audit_doc, pk, KeysetQuery, Order};
use super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::store::{ts, AuditFilter, AuditStore, Page, PageRequest, StoreResult};

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
