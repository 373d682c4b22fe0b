//! [`OutboxMessage`]: one message as it will be sent, and the constructors that decide what each
//! change of the app sends.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::gdpr::ErasureRecord;
use crate::domain::messages::{ErasureRequest, OrderEvent, PaymentEvent, PaymentEventType};
use crate::domain::order::Order;
use crate::domain::payment::Payment;
use crate::domain::validation::new_id;
use crate::security::SecurityEvent;

/// The topic of order lifecycle events ([`OrderEvent`]).
pub const ORDER_EVENTS_TOPIC: &str = "order-events";
/// The topic of payment events ([`PaymentEvent`]).
pub const PAYMENT_EVENTS_TOPIC: &str = "payment-events";
/// The queue of erasure requests ([`ErasureRequest`]).
pub const GDPR_REQUESTS_QUEUE: &str = "gdpr-requests";
/// The queue of email and SMS messages for the senders (ids only).
pub const NOTIFICATIONS_OUTBOUND_QUEUE: &str = "notifications-outbound";
/// The topic of breach detection's findings ([`SecurityEvent`]; ids and counts only).
pub const SECURITY_ALERTS_TOPIC: &str = "security-alerts";
/// Not a Service Bus entity: records for it are live pushes (`signalR` output items, JSON),
/// which the relay hands to its `signalR` output binding instead of publishing them.
pub const REALTIME_PUSH_DESTINATION: &str = "signalr:notifications";
/// Every entity the relay publishes to.
pub const DESTINATIONS: &[&str] = &[
    ORDER_EVENTS_TOPIC,
    PAYMENT_EVENTS_TOPIC,
    GDPR_REQUESTS_QUEUE,
    NOTIFICATIONS_OUTBOUND_QUEUE,
    SECURITY_ALERTS_TOPIC,
];

/// A message to send, stored in the outbox with the change it announces.
///
/// The body is kept as the exact JSON text to send (not a nested object), so it travels byte
/// for byte through the change feed, whatever the feed's serializer does to date-like strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboxMessage {
    /// The Service Bus `MessageId`: the event, request or delivery id, so the broker's duplicate
    /// detection and the consumers' deduplication key on the same value.
    pub message_id: String,
    /// The queue or topic.
    pub destination: String,
    /// The message body (JSON text).
    pub body: String,
    pub content_type: String,
    /// The correlation id of the request that caused the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Service Bus application properties (what subscriptions can filter on; ids only).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// When the change was committed (the relay's lag is measured from it).
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

impl OutboxMessage {
    fn json(
        destination: &str,
        message_id: String,
        body: &impl Serialize,
        correlation_id: Option<&str>,
        properties: &[(&str, &str)],
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            message_id,
            destination: destination.to_owned(),
            // Serializing these plain structs cannot fail (string keys, no maps of non-strings).
            body: serde_json::to_string(body).unwrap_or_default(),
            content_type: "application/json".to_owned(),
            correlation_id: correlation_id
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
            properties: properties
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            created_at,
        }
    }

    /// The lifecycle event of `order` having entered its current status (a new event id).
    pub fn order_event(order: &Order, correlation_id: &str) -> Self {
        let event_type = order.status.event_type();
        let event = OrderEvent {
            event_id: new_id(),
            event_type,
            tenant_id: order.tenant_id.clone(),
            order_id: order.id.clone(),
            customer_id: order.customer_id.clone(),
            occurred_at: order.updated_at,
        };
        Self::json(
            ORDER_EVENTS_TOPIC,
            event.event_id.clone(),
            &event,
            Some(correlation_id),
            &[
                ("eventType", event_type.as_str()),
                ("tenantId", &order.tenant_id),
            ],
            order.updated_at,
        )
    }

    /// A payment event of `payment` (a new event id), about `amount_cents`.
    pub fn payment_event(
        payment: &Payment,
        event_type: PaymentEventType,
        amount_cents: i64,
        correlation_id: Option<&str>,
    ) -> Self {
        let event = PaymentEvent {
            event_id: new_id(),
            event_type,
            tenant_id: payment.tenant_id.clone(),
            payment_id: payment.id.clone(),
            order_id: payment.order_id.clone(),
            customer_id: payment.customer_id.clone(),
            amount_cents,
            currency: payment.currency.clone(),
            occurred_at: payment.updated_at,
        };
        Self::json(
            PAYMENT_EVENTS_TOPIC,
            event.event_id.clone(),
            &event,
            correlation_id,
            &[
                ("eventType", event_type.as_str()),
                ("tenantId", &payment.tenant_id),
            ],
            payment.updated_at,
        )
    }

    /// The request to erase the customer of `record` (`MessageId` = the request id, so a
    /// re-announced request is the same message to the broker and to the consumer).
    pub fn erasure_request(
        record: &ErasureRecord,
        correlation_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Self {
        let request = ErasureRequest {
            request_id: record.id.clone(),
            tenant_id: record.tenant_id.clone(),
            customer_id: record.customer_id.clone(),
            requested_by: record.requested_by.clone(),
            requested_at: record.requested_at,
        };
        Self::json(
            GDPR_REQUESTS_QUEUE,
            record.id.clone(),
            &request,
            correlation_id,
            &[("tenantId", &record.tenant_id)],
            at,
        )
    }

    /// The announcement of a finding of breach detection (`MessageId` = the event id).
    pub fn security_alert(event: &SecurityEvent) -> Self {
        Self::json(
            SECURITY_ALERTS_TOPIC,
            event.id.clone(),
            event,
            Some(&event.correlation_id),
            &[
                ("rule", event.rule.as_str()),
                ("tenantId", &event.tenant_id),
            ],
            event.detected_at,
        )
    }

    /// A marketing message for the senders, on `channel` (`email`, `sms`), about the in-app
    /// `notification` that holds its text (ids only; `deliveryId` = notification id and
    /// channel). Only written once the consent gate let it through.
    pub fn marketing(
        notification: &crate::domain::notification::Notification,
        customer_id: &str,
        purpose: crate::domain::consent::Purpose,
        channel: &str,
    ) -> Self {
        let delivery_id = format!("{}:{channel}", notification.id);
        let body = serde_json::json!({
            "deliveryId": delivery_id,
            "channel": channel,
            "tenantId": notification.tenant_id,
            "customerId": customer_id,
            "notificationId": notification.id,
            "template": "marketing.message",
            "purpose": purpose.as_str(),
            "occurredAt": notification.created_at,
        });
        Self::outbound_notification(
            &delivery_id,
            &body,
            &notification.tenant_id,
            channel,
            notification.created_at,
        )
    }

    /// A live push (`push_id` is its `MessageId`): `body` is one `signalR` output item.
    pub fn realtime_push(
        push_id: &str,
        body: &serde_json::Value,
        tenant_id: &str,
        at: DateTime<Utc>,
    ) -> Self {
        Self::json(
            REALTIME_PUSH_DESTINATION,
            push_id.to_owned(),
            body,
            None,
            &[("tenantId", tenant_id)],
            at,
        )
    }

    /// An email or SMS message for the senders (`delivery_id` is its `MessageId`).
    pub fn outbound_notification(
        delivery_id: &str,
        body: &serde_json::Value,
        tenant_id: &str,
        channel: &str,
        at: DateTime<Utc>,
    ) -> Self {
        Self::json(
            NOTIFICATIONS_OUTBOUND_QUEUE,
            delivery_id.to_owned(),
            body,
            None,
            &[("channel", channel), ("tenantId", tenant_id)],
            at,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::messages::OrderEventType;

    #[test]
    fn an_order_event_carries_its_event_id_as_message_id_and_its_type_as_a_property() {
        let order: Order = serde_json::from_value(serde_json::json!({
            "id": "o-1", "tenantId": "t-1", "customerId": "c-1", "status": "shipped",
            "items": [], "totalCents": 0, "currency": "EUR",
            "createdAt": "2026-12-01T10:00:00Z", "updatedAt": "2026-12-02T10:00:00Z", "etag": "\"e\""
        }))
        .unwrap();
        let message = OutboxMessage::order_event(&order, "corr-1");
        let event: OrderEvent = serde_json::from_str(&message.body).unwrap();
        assert_eq!(message.message_id, event.event_id);
        assert_eq!(event.event_type, OrderEventType::Shipped);
        assert_eq!(message.destination, ORDER_EVENTS_TOPIC);
        assert_eq!(message.properties["eventType"], "shipped");
        assert_eq!(message.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(message.created_at, order.updated_at);
    }
}
