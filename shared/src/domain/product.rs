//! Products of a tenant's catalogue, with their stock level.

use crate::domain::field_rules::{rules, CURRENCY};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
        check.finish()
    }
}
