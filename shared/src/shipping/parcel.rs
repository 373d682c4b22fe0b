//! The parcel of an order: the recipient's address from the order, the sender's from the
//! settings, the weight from the items.

use serde::{Deserialize, Serialize};

use crate::domain::customer::Address;
use crate::domain::order::Order;

/// An address as a carrier wants it. `name` is the recipient's (a label needs it; rates do
/// not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

impl ShipAddress {
    /// The order's shipping address, without a name.
    pub fn of(address: &Address) -> Self {
        Self {
            name: None,
            line1: address.line1.clone(),
            line2: address.line2.clone(),
            city: address.city.clone(),
            postal_code: address.postal_code.clone(),
            country: address.country.clone(),
        }
    }
}

/// A parcel's weight (ounces, as EasyPost counts) and size (inches).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parcel {
    pub weight_oz: f64,
    pub length_in: f64,
    pub width_in: f64,
    pub height_in: f64,
}

impl Parcel {
    /// The parcel of `order`: `item_weight_oz` per unit, in a 12 × 10 × 6 inch box.
    pub fn of(order: &Order, item_weight_oz: f64) -> Self {
        let units: i64 = order.items.iter().map(|item| item.quantity.max(0)).sum();
        Self {
            weight_oz: (units.max(1) as f64) * item_weight_oz,
            length_in: 12.0,
            width_in: 10.0,
            height_in: 6.0,
        }
    }
}
