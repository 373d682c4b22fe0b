//! Products of a tenant's catalogue, with their stock level. A product with a SKU is linked to
//! the ERP: the ERP owns its name, category, price, active flag and stock on hand
//! ([`Product::erp_owned_changes`]); `available = on hand in the ERP - reserved by open orders`
//! ([`available_from`]).

use crate::domain::field_rules::{rules, CURRENCY, SKU};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::rejection::Rejection;
use super::validation::{Invalid, Validation};

/// A stored product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub category: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Price in minor units (cents).
    pub price_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Units available to order (reserved units are already subtracted).
    pub stock: i64,
    pub active: bool,
    /// The ERP's stock-keeping unit: the product is linked to the ERP (unique per tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Units on hand in the ERP, as `ErpInventorySync` last applied them (none before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erp_on_hand: Option<i64>,
    /// Units held by orders placed and neither cancelled nor shipped.
    #[serde(default)]
    pub reserved: i64,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub etag: String,
}

/// The body of `POST /products` and `PUT /products/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductInput {
    #[schemars(schema_with = "crate::domain::field_rules::product_name_schema")]
    pub name: String,
    #[schemars(schema_with = "crate::domain::field_rules::category_schema")]
    pub category: String,
    #[serde(default)]
    #[schemars(schema_with = "crate::domain::field_rules::optional_description_schema")]
    pub description: Option<String>,
    #[serde(deserialize_with = "crate::domain::field_rules::whole_number")]
    #[schemars(schema_with = "crate::domain::field_rules::price_cents_schema")]
    pub price_cents: i64,
    #[schemars(schema_with = "crate::domain::field_rules::currency_schema")]
    pub currency: String,
    #[serde(deserialize_with = "crate::domain::field_rules::whole_number")]
    #[schemars(schema_with = "crate::domain::field_rules::stock_schema")]
    pub stock: i64,
    #[serde(default = "yes")]
    pub active: bool,
    /// Links the product to the ERP's product of this SKU (unique in the tenant).
    #[serde(default)]
    #[schemars(schema_with = "crate::domain::field_rules::optional_sku_schema")]
    pub sku: Option<String>,
}

fn yes() -> bool {
    true
}

impl ProductInput {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut check = Validation::new();
        rules::PRODUCT_NAME.check(&mut check, "name", &self.name);
        rules::CATEGORY.check(&mut check, "category", &self.category);
        if let Some(description) = &self.description {
            rules::DESCRIPTION.check(&mut check, "description", description);
        }
        rules::PRICE_CENTS.check(&mut check, "priceCents", self.price_cents);
        CURRENCY.check(&mut check, "currency", &self.currency);
        rules::STOCK.check(&mut check, "stock", self.stock);
        if let Some(sku) = &self.sku {
            SKU.check(&mut check, "sku", sku);
        }
        check.finish()
    }
}

/// Units available to order: what the ERP has on hand less what open orders here reserve,
/// never below zero.
pub fn available_from(on_hand: i64, reserved: i64) -> i64 {
    (on_hand - reserved).max(0)
}

/// What an order does to a product's counts: the units reserved by open orders, the
/// available stock of a product the ERP does not stock, and the units on hand as last known
/// from the ERP (for one it does; its available stock is then `on hand - reserved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockMove {
    pub reserved: i64,
    pub stock: i64,
    pub on_hand: i64,
}

impl StockMove {
    /// Placing an order reserves its units: no longer available.
    pub fn place(quantity: i64) -> Self {
        Self {
            reserved: quantity,
            stock: -quantity,
            on_hand: 0,
        }
    }

    /// Cancelling gives them back: available again.
    pub fn cancel(quantity: i64) -> Self {
        Self {
            reserved: -quantity,
            stock: quantity,
            on_hand: 0,
        }
    }

    /// Shipping ends the reservation, and the units leave the warehouse: the ERP's on hand
    /// drops by them (as the goods issue books it), so available stays as it was.
    pub fn ship(quantity: i64) -> Self {
        Self {
            reserved: -quantity,
            stock: 0,
            on_hand: -quantity,
        }
    }

    /// Applies the move to a product's counts (what the Cosmos DB adapter writes).
    pub fn apply_to(self, product: &mut Product) {
        product.reserved = (product.reserved + self.reserved).max(0);
        match product.erp_on_hand {
            Some(on_hand) => {
                let on_hand = (on_hand + self.on_hand).max(0);
                product.erp_on_hand = Some(on_hand);
                product.stock = available_from(on_hand, product.reserved);
            }
            None => product.stock += self.stock,
        }
    }
}

impl Product {
    /// The ERP-owned fields `input` would change on this product, when it is linked to the
    /// ERP (has a SKU); empty otherwise. The API refuses such an update.
    pub fn erp_owned_changes(&self, input: &ProductInput) -> Vec<&'static str> {
        if self.sku.is_none() {
            return Vec::new();
        }
        [
            ("name", self.name != input.name),
            ("category", self.category != input.category),
            ("priceCents", self.price_cents != input.price_cents),
            ("currency", self.currency != input.currency),
            ("active", self.active != input.active),
            ("stock", self.stock != input.stock),
        ]
        .into_iter()
        .filter_map(|(field, changed)| changed.then_some(field))
        .collect()
    }

    /// Applies `input` (after [`Self::check_update`]): the fields the API may set.
    pub fn apply_input(&mut self, input: ProductInput) {
        self.name = input.name;
        self.category = input.category;
        self.description = input.description;
        self.price_cents = input.price_cents;
        self.currency = input.currency;
        self.stock = input.stock;
        self.active = input.active;
        if self.sku != input.sku {
            self.erp_on_hand = None;
        }
        self.sku = input.sku;
    }

    /// Refuses an update of a linked product that changes what the ERP owns.
    pub fn check_update(&self, input: &ProductInput) -> Result<(), Rejection> {
        let fields = self.erp_owned_changes(input);
        match (&self.sku, fields.is_empty()) {
            (Some(sku), false) => Err(Rejection::OwnedByErp {
                sku: sku.clone(),
                fields,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(sku: Option<&str>) -> Product {
        let at = crate::domain::now();
        Product {
            id: "p1".into(),
            tenant_id: "t".into(),
            name: "Kettle".into(),
            category: "kitchen".into(),
            description: None,
            price_cents: 2999,
            currency: "EUR".into(),
            stock: 4,
            active: true,
            sku: sku.map(str::to_owned),
            erp_on_hand: None,
            reserved: 0,
            created_at: at,
            updated_at: at,
            etag: String::new(),
        }
    }

    fn input_of(product: &Product) -> ProductInput {
        ProductInput {
            name: product.name.clone(),
            category: product.category.clone(),
            description: Some("new text".into()),
            price_cents: product.price_cents,
            currency: product.currency.clone(),
            stock: product.stock,
            active: product.active,
            sku: product.sku.clone(),
        }
    }

    #[test]
    fn a_linked_product_refuses_changes_to_what_the_erp_owns_and_names_them() {
        let linked = product(Some("KET-001"));
        assert_eq!(linked.check_update(&input_of(&linked)), Ok(()));
        let mut input = input_of(&linked);
        input.price_cents = 1;
        input.stock = 99;
        assert_eq!(
            linked.check_update(&input),
            Err(Rejection::OwnedByErp {
                sku: "KET-001".into(),
                fields: vec!["priceCents", "stock"]
            })
        );
        let free = product(None);
        let mut input = input_of(&free);
        input.price_cents = 1;
        assert_eq!(free.check_update(&input), Ok(()));
    }

    #[test]
    fn available_is_on_hand_less_reserved_never_negative() {
        assert_eq!(available_from(10, 3), 7);
        assert_eq!(available_from(2, 5), 0);
    }

    #[test]
    fn a_sku_is_validated() {
        let mut input = input_of(&product(None));
        input.sku = Some("KET 001".into());
        assert!(input.validate().is_err());
        input.sku = Some("KET-001".into());
        assert!(input.validate().is_ok());
    }
}
