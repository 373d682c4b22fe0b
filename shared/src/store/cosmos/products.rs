//! Cosmos DB adapter of [`ProductStore`]: a tenant's catalogue is one logical partition
//! (`catalog` scope), so a product write and its audit entry are one batch, and so is
//! reserving stock on every line of an order (`orders.rs`).

use azure_data_cosmos::TransactionalBatch;
use serde_json::json;

use super::doc::{doc_id, kind, Doc, CATALOG_SCOPE};
use super::support::{
    audit_doc, batch_create, batch_replace, busy, pk, refused, KeysetQuery, Order,
    CONCURRENCY_ATTEMPTS,
};
use super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::etag::new_etag;
use crate::domain::now;
use crate::domain::product::{Product, ProductInput};
use crate::domain::tenant::TenantId;
use crate::store::ports::ProductFilter;
use crate::store::{
    check_if_match, ts, IfMatch, Page, PageRequest, ProductStore, StoreError, StoreResult,
};

/// The stored form of a product.
pub(super) fn product_doc(product: &Product) -> Doc<Product> {
    Doc::new(
        kind::PRODUCT,
        &product.id,
        &product.tenant_id,
        CATALOG_SCOPE,
        ts(product.created_at),
        product.clone(),
    )
    .with_version(product.etag.clone())
}

impl CosmosStore {
    /// A product's document (with its API ETag filled in), if it exists.
    pub(super) async fn product_doc(
        &self,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<Doc<Product>>> {
        let doc: Option<Doc<Product>> = self
            .read_doc(
                self.data(),
                pk(tenant, CATALOG_SCOPE),
                &doc_id(kind::PRODUCT, id),
            )
            .await?;
        Ok(doc.map(with_etag))
    }
}

/// Fills the product's API ETag from the envelope.
pub(super) fn with_etag(mut doc: Doc<Product>) -> Doc<Product> {
    doc.body.etag = doc.version.clone();
    doc
}

#[async_trait::async_trait]
impl ProductStore for CosmosStore {
    async fn create_product(
        &self,
        tenant: &TenantId,
        mut product: Product,
        audit: AuditEntry,
    ) -> StoreResult<Product> {
        product.tenant_id = tenant.as_str().to_owned();
        product.etag = new_etag();
        let batch = TransactionalBatch::new(pk(tenant.as_str(), CATALOG_SCOPE));
        let batch = batch_create(self, batch, &product_doc(&product))?;
        let batch = batch_create(self, batch, &audit_doc(&audit, CATALOG_SCOPE))?;
        match self.run_batch(self.data(), batch).await? {
            Ok(_) => Ok(product),
            Err(refusal) if refusal.status == 409 => Err(StoreError::Conflict(format!(
                "a product with id {} exists",
                product.id
            ))),
            Err(refusal) => Err(refused(refusal)),
        }
    }

    async fn get_product(&self, tenant: &TenantId, id: &str) -> StoreResult<Product> {
        self.product_doc(tenant.as_str(), id)
            .await?
            .map(|doc| doc.body)
            .ok_or(StoreError::NotFound)
    }

    async fn update_product(
        &self,
        tenant: &TenantId,
        id: &str,
        input: ProductInput,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<Product> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            let doc = self
                .product_doc(tenant.as_str(), id)
                .await?
                .ok_or(StoreError::NotFound)?;
            check_if_match(&if_match, &doc.version)?;
            let mut product = doc.body.clone();
            product.name = input.name.clone();
            product.category = input.category.clone();
            product.description = input.description.clone();
            product.price_cents = input.price_cents;
            product.currency = input.currency.clone();
            product.stock = input.stock;
            product.active = input.active;
            product.updated_at = now();
            product.etag = new_etag();
            let updated = Doc {
                version: product.etag.clone(),
                body: product,
                ..doc
            };
            let batch = TransactionalBatch::new(pk(tenant.as_str(), CATALOG_SCOPE));
            let batch = batch_replace(self, batch, &updated)?;
            let batch = batch_create(self, batch, &audit_doc(&audit, CATALOG_SCOPE))?;
            if self.commit_unless_changed(batch).await? {
                return Ok(updated.body);
            }
        }
        Err(busy("product"))
    }

    async fn list_products(
        &self,
        tenant: &TenantId,
        filter: ProductFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Product>> {
        let query_name = filter.query_name();
        let mut condition = String::new();
        let mut params = Vec::new();
        if let Some(name) = &filter.name {
            condition.push_str(" AND CONTAINS(LOWER(c.body.name), @name)");
            params.push(("@name", json!(name.to_lowercase())));
        }
        if let Some(category) = &filter.category {
            condition.push_str(" AND c.body.category = @category");
            params.push(("@category", json!(category)));
        }
        let query = KeysetQuery {
            kind: kind::PRODUCT,
            filter: condition,
            params,
            order: Order::Ascending,
            query_name: &query_name,
        };
        let docs: Page<Doc<Product>> = self.keyset_docs(tenant, query, &page).await?;
        Ok(Page {
            items: docs
                .items
                .into_iter()
                .map(|doc| with_etag(doc).body)
                .collect(),
            continuation: docs.continuation,
        })
    }
}
