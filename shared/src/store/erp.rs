//! Storage port of the ERP synchronisation ([`ErpStore`]): stock levels the ERP reports,
//! applied to the products linked to it by SKU without ever losing a concurrent reservation,
//! and the ERP's product master data.
//!
//! A product's available stock is `on hand in the ERP - reserved by open orders` (never below
//! zero, [`crate::domain::product::available_from`]). The adapters compute it in the same write
//! that stores the on-hand (SQLite: one statement over the row's current `reserved`; Cosmos DB:
//! a replace conditional on the document's ETag, re-read and retried when an order changed it
//! meanwhile), so a reservation made while a sync runs is never overwritten.

use std::collections::BTreeMap;

use super::jobs::Fence;
use super::StoreResult;
use crate::domain::product::Product;
use crate::domain::tenant::TenantId;

/// One stock level the ERP reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub sku: String,
    pub on_hand: i64,
}

/// What applying a page of stock levels did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockApplied {
    /// Products updated, per tenant.
    pub applied: BTreeMap<String, u64>,
    /// SKUs no product of any ERP tenant has.
    pub unknown_skus: Vec<String>,
}

/// The ERP's master data of one product: what it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpMasterData {
    pub sku: String,
    pub name: String,
    pub category: String,
    pub price_cents: i64,
    pub currency: String,
    pub active: bool,
}

impl ErpMasterData {
    /// Whether `product` already carries this master data.
    pub fn matches(&self, product: &Product) -> bool {
        product.name == self.name
            && product.category == self.category
            && product.price_cents == self.price_cents
            && product.currency == self.currency
            && product.active == self.active
    }

    /// Writes the ERP-owned fields onto `product`.
    pub fn apply_to(&self, product: &mut Product) {
        product.name = self.name.clone();
        product.category = self.category.clone();
        product.price_cents = self.price_cents;
        product.currency = self.currency.clone();
        product.active = self.active;
    }

    /// A new product of this SKU (no stock until the ERP reports its on-hand).
    pub fn new_product(&self, tenant: &TenantId, id: &str) -> Product {
        let at = crate::domain::now();
        let mut product = Product {
            id: id.to_owned(),
            tenant_id: tenant.as_str().to_owned(),
            name: String::new(),
            category: String::new(),
            description: None,
            price_cents: 0,
            currency: String::new(),
            stock: 0,
            active: false,
            sku: Some(self.sku.clone()),
            erp_on_hand: None,
            reserved: 0,
            created_at: at,
            updated_at: at,
            etag: crate::domain::etag::new_etag(),
        };
        self.apply_to(&mut product);
        product
    }
}

/// What applying one product's master data did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterApplied {
    /// No product had the SKU: one was created.
    Created,
    /// The product's ERP-owned fields changed.
    Updated,
    /// They were already as the ERP has them.
    Unchanged,
}

impl MasterApplied {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "productsCreated",
            Self::Updated => "productsUpdated",
            Self::Unchanged => "productsUnchanged",
        }
    }
}

#[async_trait::async_trait]
pub trait ErpStore: Send + Sync {
    /// Applies stock levels to the products of `tenants` with their SKU: each gets the ERP's
    /// on-hand and `available = on hand - reserved`, atomically against reservations. Then
    /// `fence` (the job's checkpoint, its lease extended): on SQLite in the same transaction;
    /// on Cosmos DB after every product write (a level applied twice is the same level).
    async fn apply_stock_levels(
        &self,
        tenants: &[TenantId],
        levels: &[StockLevel],
        fence: Fence,
    ) -> StoreResult<StockApplied>;
    /// The tenant's product with this SKU.
    async fn product_by_sku(&self, tenant: &TenantId, sku: &str) -> StoreResult<Option<Product>>;
    /// Sets the ERP-owned fields of the tenant's product with this SKU, or creates the product
    /// (id `new_id`, no stock) when none has it.
    async fn apply_master_data(
        &self,
        tenant: &TenantId,
        master: &ErpMasterData,
        new_id: &str,
    ) -> StoreResult<MasterApplied>;
}
