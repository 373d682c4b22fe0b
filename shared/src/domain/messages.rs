//! Message bodies on the app's Service Bus entities.
//!
//! - `gdpr-requests` (queue): [`ErasureRequest`], sent by `DELETE /api/v1/customers/{id}` or an
//!   operator, consumed by `GDPRDataAnonymization`.
//! - `order-events` (topic): [`OrderEvent`], sent on every order lifecycle change, consumed by
//!   `NotificationDispatch` through the `notifications` subscription and by the payments
//!   (`payments` subscription: a cancelled paid order is refunded).
//! - `payment-events` (topic): [`PaymentEvent`], sent when a payment is authorized, captured,
//!   failed or refunded, consumed by the order flow (`orders` subscription: a captured payment
//!   confirms its order) and by `NotificationDispatch` (`notifications`).
//!
//! Bodies are JSON with camelCase names; unknown fields are refused, so a malformed or
//! mistaken message fails clearly instead of being half-processed. Ids only: no names, emails
//! or addresses travel in messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A request to erase one customer of one tenant across all data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErasureRequest {
    /// The erasure request's own id (its status URL names it).
    pub request_id: String,
    pub tenant_id: String,
    pub customer_id: String,
    /// Who asked: a user id or `operator:<id>`.
    pub requested_by: String,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub requested_at: DateTime<Utc>,
}

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OrderEventType {
    Created,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
    Returned,
}

impl OrderEventType {
    /// `created`, `shipped`, ... (the event type as it travels).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Confirmed => "confirmed",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Returned => "returned",
        }
    }
}

/// One order lifecycle change, published to the `order-events` topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderEvent {
    /// Unique per event: consumers deduplicate on it.
    pub event_id: String,
    pub event_type: OrderEventType,
    pub tenant_id: String,
    pub order_id: String,
    pub customer_id: String,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
}

/// What happened to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PaymentEventType {
    Authorized,
    Captured,
    Failed,
    Refunded,
}

impl PaymentEventType {
    /// `authorized`, `captured`, ... (the event type as it travels).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::Captured => "captured",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
        }
    }
}

/// One payment change, published to the `payment-events` topic. Amounts and ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentEvent {
    /// Unique per event: consumers deduplicate on it.
    pub event_id: String,
    pub event_type: PaymentEventType,
    pub tenant_id: String,
    pub payment_id: String,
    pub order_id: String,
    pub customer_id: String,
    /// The amount this event is about (captured, or refunded by this refund), minor units.
    pub amount_cents: i64,
    pub currency: String,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
}

/// An event a customer is told about (`NotificationDispatch`, `PaymentNotificationDispatch`):
/// what the dispatch port needs of it (ids, tenant, customer, order) whichever topic it came
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerEvent {
    Order(OrderEvent),
    Payment(PaymentEvent),
}

impl CustomerEvent {
    /// Unique per event: the dispatch deduplicates on it.
    pub fn event_id(&self) -> &str {
        match self {
            Self::Order(event) => &event.event_id,
            Self::Payment(event) => &event.event_id,
        }
    }

    pub fn tenant_id(&self) -> &str {
        match self {
            Self::Order(event) => &event.tenant_id,
            Self::Payment(event) => &event.tenant_id,
        }
    }

    pub fn customer_id(&self) -> &str {
        match self {
            Self::Order(event) => &event.customer_id,
            Self::Payment(event) => &event.customer_id,
        }
    }

    pub fn order_id(&self) -> &str {
        match self {
            Self::Order(event) => &event.order_id,
            Self::Payment(event) => &event.order_id,
        }
    }

    /// The event type as it travels (`shipped`, `captured`, ...).
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Order(event) => event.event_type.as_str(),
            Self::Payment(event) => event.event_type.as_str(),
        }
    }

    /// `order.shipped`, `payment.captured`, ...: the notification category and the outbound
    /// message's template.
    pub fn category(&self) -> String {
        let topic = match self {
            Self::Order(_) => "order",
            Self::Payment(_) => "payment",
        };
        format!("{topic}.{}", self.event_type())
    }

    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::Order(event) => event.occurred_at,
            Self::Payment(event) => event.occurred_at,
        }
    }
}

impl From<OrderEvent> for CustomerEvent {
    fn from(event: OrderEvent) -> Self {
        Self::Order(event)
    }
}

impl From<PaymentEvent> for CustomerEvent {
    fn from(event: PaymentEvent) -> Self {
        Self::Payment(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasure_requests_refuse_unknown_fields() {
        let good = r#"{"requestId":"r1","tenantId":"t1","customerId":"c1","requestedBy":"u1","requestedAt":"2026-11-21T02:00:00Z"}"#;
        assert!(serde_json::from_str::<ErasureRequest>(good).is_ok());
        let extra = good.replace("\"requestId\"", "\"email\":\"x\",\"requestId\"");
        assert!(serde_json::from_str::<ErasureRequest>(&extra).is_err());
    }

    #[test]
    fn customer_events_name_their_category_by_topic_and_type() {
        let order: OrderEvent = serde_json::from_str(r#"{"eventId":"e1","eventType":"shipped","tenantId":"t1","orderId":"o1","customerId":"c1","occurredAt":"2026-11-21T02:00:00Z"}"#).unwrap();
        let payment: PaymentEvent = serde_json::from_str(r#"{"eventId":"e2","eventType":"refunded","tenantId":"t1","paymentId":"p1","orderId":"o1","customerId":"c1","amountCents":500,"currency":"EUR","occurredAt":"2026-11-21T02:00:00Z"}"#).unwrap();
        let (order, payment) = (CustomerEvent::from(order), CustomerEvent::from(payment));
        assert_eq!(order.category(), "order.shipped");
        assert_eq!(payment.category(), "payment.refunded");
        assert_eq!(
            (
                payment.event_id(),
                payment.order_id(),
                payment.customer_id()
            ),
            ("e2", "o1", "c1")
        );
    }

    #[test]
    fn order_event_types_are_camel_case() {
        assert_eq!(
            serde_json::to_string(&OrderEventType::Shipped).unwrap(),
            "\"shipped\""
        );
    }
}
