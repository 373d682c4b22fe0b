//! Products of a tenant's catalogue, with their stock level.

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
    pub name: String,
    pub category: String,
    #[serde(default)]
    pub description: Option<String>,
    pub price_cents: i64,
    pub currency: String,
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
        check.text("name", &self.name, 1, 200);
        check.text("category", &self.category, 1, 100);
        if let Some(description) = &self.description {
            check.free_text("description", description, 0, 4000);
        }
        check.range("priceCents", self.price_cents, 0, 10_000_000_000);
        validate_currency(&mut check, "currency", &self.currency);
        check.range("stock", self.stock, 0, 1_000_000_000);
        check.finish()
    }
}

pub fn validate_currency(check: &mut Validation, field: &str, currency: &str) {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        check.error(field, "must be an ISO 4217 code, like EUR");
    }
}
