//! Cosmos DB adapter of [`ErpStore`]: each stock level is a replace of the product document
//! conditional on its `_etag`, computing `available = on hand - reserved` from the document as
//! read; an order that reserved meanwhile makes the replace fail (412), and the level is applied
//! again over the fresh document, so no reservation is lost. The job's checkpoint is saved
//! after every level of the page is applied (a page applied twice sets the same levels).

use crate::domain::etag::new_etag;
use crate::domain::now;
use crate::domain::product::{available_from, Product};
use crate::domain::tenant::TenantId;
use crate::store::erp::{ErpMasterData, ErpStore, MasterApplied, StockApplied, StockLevel};
use crate::store::jobs::{Fence, JobStateStore};
use crate::store::StoreResult;

use super::support::{busy, CONCURRENCY_ATTEMPTS};
use super::CosmosStore;

impl CosmosStore {
    /// Applies one level to the tenant's product with its SKU; whether one has it.
    async fn apply_level(&self, tenant: &str, level: &StockLevel) -> StoreResult<bool> {
        for _ in 0..CONCURRENCY_ATTEMPTS * 2 {
            let Some(id) = self.product_id_by_sku(tenant, &level.sku).await? else {
                return Ok(false);
            };
            let Some(doc) = self.product_doc(tenant, &id).await? else {
                return Ok(false);
            };
            let mut product = doc.body.clone();
            let on_hand = level.on_hand.max(0);
            product.erp_on_hand = Some(on_hand);
            product.stock = available_from(on_hand, product.reserved);
            product.updated_at = now();
            product.etag = new_etag();
            if self.replace_product(doc, product, None).await?.is_ok() {
                return Ok(true);
            }
        }
        tracing::warn!(tenant, sku = %level.sku, "stock level not applied: the product kept changing");
        Err(busy("product"))
    }
}

#[async_trait::async_trait]
impl ErpStore for CosmosStore {
    async fn apply_stock_levels(
        &self,
        tenants: &[TenantId],
        levels: &[StockLevel],
        fence: Fence,
    ) -> StoreResult<StockApplied> {
        let mut applied = StockApplied::default();
        for level in levels {
            let mut known = false;
            for tenant in tenants {
                if self.apply_level(tenant.as_str(), level).await? {
                    known = true;
                    *applied
                        .applied
                        .entry(tenant.as_str().to_owned())
                        .or_insert(0) += 1;
                }
            }
            if !known {
                applied.unknown_skus.push(level.sku.clone());
            }
        }
        self.save_checkpoint(fence).await?;
        Ok(applied)
    }

    async fn product_by_sku(&self, tenant: &TenantId, sku: &str) -> StoreResult<Option<Product>> {
        let Some(id) = self.product_id_by_sku(tenant.as_str(), sku).await? else {
            return Ok(None);
        };
        Ok(self
            .product_doc(tenant.as_str(), &id)
            .await?
            .map(|doc| doc.body))
    }

    async fn apply_master_data(
        &self,
        tenant: &TenantId,
        master: &ErpMasterData,
        new_id: &str,
    ) -> StoreResult<MasterApplied> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            let found = match self.product_id_by_sku(tenant.as_str(), &master.sku).await? {
                Some(id) => self.product_doc(tenant.as_str(), &id).await?,
                None => None,
            };
            let Some(doc) = found else {
                self.insert_product(&master.new_product(tenant, new_id), None)
                    .await?;
                return Ok(MasterApplied::Created);
            };
            if master.matches(&doc.body) {
                return Ok(MasterApplied::Unchanged);
            }
            let mut product = doc.body.clone();
            master.apply_to(&mut product);
            product.updated_at = now();
            product.etag = new_etag();
            if self.replace_product(doc, product, None).await?.is_ok() {
                return Ok(MasterApplied::Updated);
            }
        }
        Err(busy("product"))
    }
}
