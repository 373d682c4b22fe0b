//! Cosmos DB adapter of [`ProductStore`]: a tenant's catalogue is one logical partition
//! (`catalog` scope), so a product write and its audit entry are one batch, and so is
//! reserving stock on every line of an order (`orders.rs`). A SKU is claimed by a `sku`
//! document (id `sku:{SKU}`, naming the product) created in the product's batch: a second
//! product with the same SKU fails that create, which keeps SKUs unique per tenant.

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
use crate::domain::rejection::Rejection;
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

/// The claim of a SKU by a product.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SkuClaim {
    pub product_id: String,
}

fn sku_doc(tenant: &str, sku: &str, product_id: &str) -> Doc<SkuClaim> {
    Doc::new(
        kind::SKU,
        sku,
        tenant,
        CATALOG_SCOPE,
        String::new(),
        SkuClaim {
            product_id: product_id.to_owned(),
        },
    )
}

/// Adds to `batch` what moving a product's SKU from `old` to `new` takes: the old claim
/// deleted, the new one created (a batch fails as a whole when the new SKU is taken).
pub(super) fn claim_sku(
    store: &CosmosStore,
    mut batch: TransactionalBatch,
    tenant: &str,
    product_id: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> StoreResult<(TransactionalBatch, Option<usize>)> {
    if old == new {
        return Ok((batch, None));
    }
    let mut claim_at = None;
    if let Some(old) = old {
        batch = super::support::batch_delete(batch, &doc_id(kind::SKU, old), None);
    }
    if let Some(new) = new {
        claim_at = Some(usize::from(old.is_some()));
        batch = batch_create(store, batch, &sku_doc(tenant, new, product_id))?;
    }
    Ok((batch, claim_at))
}

impl CosmosStore {
    /// The id of the tenant's product holding `sku`.
    pub(super) async fn product_id_by_sku(
        &self,
        tenant: &str,
        sku: &str,
    ) -> StoreResult<Option<String>> {
        let claim: Option<Doc<SkuClaim>> = self
            .read_doc(
                self.data(),
                pk(tenant, CATALOG_SCOPE),
                &doc_id(kind::SKU, sku),
            )
            .await?;
        Ok(claim.map(|doc| doc.body.product_id))
    }

    /// Creates `product` (and its SKU claim) with `audit`, in one batch.
    pub(super) async fn insert_product(
        &self,
        product: &Product,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<()> {
        let tenant = product.tenant_id.as_str();
        let batch = TransactionalBatch::new(pk(tenant, CATALOG_SCOPE));
        let (batch, claim_at) = claim_sku(
            self,
            batch,
            tenant,
            &product.id,
            None,
            product.sku.as_deref(),
        )?;
        let batch = batch_create(self, batch, &product_doc(product))?;
        let batch = match audit {
            Some(audit) => batch_create(self, batch, &audit_doc(audit, CATALOG_SCOPE))?,
            None => batch,
        };
        match self.run_batch(self.data(), batch).await? {
            Ok(_) => Ok(()),
            Err(refusal) if refusal.status == 409 && Some(refusal.index) == claim_at => {
                Err(Rejection::SkuTaken(product.sku.clone().unwrap_or_default()).into())
            }
            Err(refusal) if refusal.status == 409 => Err(StoreError::Conflict(format!(
                "a product with id {} exists",
                product.id
            ))),
            Err(refusal) => Err(refused(refusal)),
        }
    }

    /// Replaces a product read as `doc` with `product` (moving its SKU claim along); `false`
    /// when it changed since it was read.
    pub(super) async fn replace_product(
        &self,
        doc: Doc<Product>,
        product: Product,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<Result<Product, ()>> {
        let tenant = doc.tenant_id.clone();
        let (old_sku, new_sku) = (doc.body.sku.clone(), product.sku.clone());
        let updated = Doc {
            version: product.etag.clone(),
            body: product,
            ..doc
        };
        let batch = TransactionalBatch::new(pk(&tenant, CATALOG_SCOPE));
        let batch = batch_replace(self, batch, &updated)?;
        let (batch, claim_at) = claim_sku(
            self,
            batch,
            &tenant,
            &updated.body.id,
            old_sku.as_deref(),
            new_sku.as_deref(),
        )?;
        let claim_at = claim_at.map(|at| at + 1);
        let batch = match audit {
            Some(audit) => batch_create(self, batch, &audit_doc(audit, CATALOG_SCOPE))?,
            None => batch,
        };
        match self.run_batch(self.data(), batch).await? {
            Ok(_) => Ok(Ok(updated.body)),
            Err(refusal) if refusal.status == 412 => Ok(Err(())),
            Err(refusal) if refusal.status == 409 && Some(refusal.index) == claim_at => {
                Err(Rejection::SkuTaken(new_sku.unwrap_or_default()).into())
            }
            Err(refusal) => Err(refused(refusal)),
        }
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
        self.insert_product(&product, Some(&audit)).await?;
        Ok(product)
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
            doc.body.check_update(&input)?;
            let mut product = doc.body.clone();
            product.apply_input(input.clone());
            product.updated_at = now();
            product.etag = new_etag();
            if let Ok(updated) = self.replace_product(doc, product, Some(&audit)).await? {
                return Ok(updated);
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
