//! Orders and their state machine: pending → confirmed → shipped → delivered, cancelled
//! from pending or confirmed, returned from shipped or delivered. Items snapshot the product's price; the shipping address is
//! personal data, the amounts are bookkeeping facts kept after an erasure. Placing an order
//! ([`Order::place`]) and pricing its lines ([`pricing`]) are rules of this module, which both
//! storage adapters call.

mod placing;
pub mod pricing;

pub use placing::{OrderRequest, PlacedOrder};

use crate::domain::field_rules::{rules, ID};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::customer::Address;
use crate::domain::messages::OrderEventType;
use crate::domain::validation::{Invalid, Validation};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
    /// The goods came back after shipping (a goods return is posted to the ERP).
    Returned,
}

impl OrderStatus {
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Confirmed,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
        Self::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Returned => "returned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// The statuses an order in this status may move to.
    pub(crate) fn allowed_next(self) -> &'static [Self] {
        match self {
            Self::Pending => &[Self::Confirmed, Self::Cancelled],
            Self::Confirmed => &[Self::Shipped, Self::Cancelled],
            Self::Shipped => &[Self::Delivered, Self::Returned],
            Self::Delivered => &[Self::Returned],
            Self::Cancelled | Self::Returned => &[],
        }
    }

    /// Checks a transition; the error names the allowed ones.
    pub(crate) fn transition(self, to: Self) -> Result<Self, IllegalTransition> {
        if self.allowed_next().contains(&to) {
            Ok(to)
        } else {
            Err(IllegalTransition {
                from: self,
                to,
                allowed: self.allowed_next().to_vec(),
            })
        }
    }

    /// The event published when an order enters this status.
    pub fn event_type(self) -> OrderEventType {
        match self {
            Self::Pending => OrderEventType::Created,
            Self::Confirmed => OrderEventType::Confirmed,
            Self::Shipped => OrderEventType::Shipped,
            Self::Delivered => OrderEventType::Delivered,
            Self::Cancelled => OrderEventType::Cancelled,
            Self::Returned => OrderEventType::Returned,
        }
    }
}

/// A status change the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an order that is {} cannot become {}; allowed: {}", .from.as_str(), .to.as_str(), allowed_list(.allowed))]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub allowed: Vec<OrderStatus>,
}

fn allowed_list(allowed: &[OrderStatus]) -> String {
    if allowed.is_empty() {
        "none (final status)".to_owned()
    } else {
        allowed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: String,
    pub product_name: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub total_cents: i64,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub etag: String,
}

/// One entry of an order's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: OrderStatus,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub at: DateTime<Utc>,
    /// The id of who made the change.
    pub actor_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A requested line of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderLineInput {
    #[schemars(schema_with = "crate::domain::field_rules::id_schema")]
    pub product_id: String,
    #[serde(deserialize_with = "crate::domain::field_rules::whole_number")]
    #[schemars(schema_with = "crate::domain::field_rules::quantity_schema")]
    pub quantity: i64,
}

/// The body of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderInput {
    /// The customer ordering: required for employees; a client may omit it (their own
    /// customer is used) or name themselves.
    // No `serde(default)`: a missing `customerId` is still `None` (serde's rule for `Option`),
    // and the schema then lists it as required, as it is for every employee.
    #[schemars(required, schema_with = "crate::domain::field_rules::id_schema")]
    pub customer_id: Option<String>,
    #[schemars(length(min = 1, max = MAX_ORDER_LINES))]
    pub items: Vec<OrderLineInput>,
    #[serde(default)]
    pub shipping_address: Option<Address>,
}

/// Most lines one order may have.
pub const MAX_ORDER_LINES: usize = 100;

impl OrderInput {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut check = Validation::new();
        if let Some(customer_id) = &self.customer_id {
            ID.check(&mut check, "customerId", customer_id);
        }
        if self.items.is_empty() || self.items.len() > MAX_ORDER_LINES {
            check.error("items", format!("must have 1 to {MAX_ORDER_LINES} lines"));
        }
        for (index, line) in self.items.iter().enumerate() {
            ID.check(
                &mut check,
                &format!("items[{index}].productId"),
                &line.product_id,
            );
            rules::QUANTITY.check(
                &mut check,
                &format!("items[{index}].quantity"),
                line.quantity,
            );
        }
        if let Some(address) = &self.shipping_address {
            address.validate("shippingAddress", &mut check);
        }
        check.finish()
    }
}

/// The body of `PUT /orders/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusInput {
    pub status: OrderStatus,
    #[serde(default)]
    #[schemars(schema_with = "crate::domain::field_rules::optional_reason_schema")]
    pub reason: Option<String>,
}

impl StatusInput {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut check = Validation::new();
        if let Some(reason) = &self.reason {
            rules::REASON.check(&mut check, "reason", reason);
        }
        check.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_allows_exactly_the_documented_moves() {
        use OrderStatus::*;
        let allowed = [
            (Pending, Confirmed),
            (Pending, Cancelled),
            (Confirmed, Shipped),
            (Confirmed, Cancelled),
            (Shipped, Delivered),
            (Shipped, Returned),
            (Delivered, Returned),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.transition(to).is_ok(),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn an_illegal_transition_names_the_allowed_ones() {
        let error = OrderStatus::Shipped
            .transition(OrderStatus::Cancelled)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "an order that is shipped cannot become cancelled; allowed: delivered, returned"
        );
        let error = OrderStatus::Returned
            .transition(OrderStatus::Pending)
            .unwrap_err();
        assert!(error.to_string().ends_with("allowed: none (final status)"));
    }

    #[test]
    fn order_input_lists_every_bad_line() {
        let input = OrderInput {
            customer_id: None,
            items: vec![
                OrderLineInput {
                    product_id: "p-1".into(),
                    quantity: 0,
                },
                OrderLineInput {
                    product_id: "".into(),
                    quantity: 2,
                },
            ],
            shipping_address: None,
        };
        let Invalid(errors) = input.validate().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items[0].quantity", "items[1].productId"]);
    }
}
