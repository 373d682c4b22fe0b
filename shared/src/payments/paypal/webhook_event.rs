//! A PayPal webhook event, typed: the event types we act on, the resource's ids, status, amount
//! and our payment id (`custom_id`).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::money::Money;
use super::wire::{Amount, Link, SupplementaryData};
use super::WebhookError;

/// The event types the app acts on; any other is [`WebhookEventKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEventKind {
    AuthorizationCreated,
    AuthorizationVoided,
    CaptureCompleted,
    CapturePending,
    CaptureDenied,
    CaptureDeclined,
    CaptureRefunded,
    CaptureReversed,
    Other,
}

impl WebhookEventKind {
    fn parse(event_type: &str) -> Self {
        match event_type {
            "PAYMENT.AUTHORIZATION.CREATED" => Self::AuthorizationCreated,
            "PAYMENT.AUTHORIZATION.VOIDED" => Self::AuthorizationVoided,
            "PAYMENT.CAPTURE.COMPLETED" => Self::CaptureCompleted,
            "PAYMENT.CAPTURE.PENDING" => Self::CapturePending,
            "PAYMENT.CAPTURE.DENIED" => Self::CaptureDenied,
            "PAYMENT.CAPTURE.DECLINED" => Self::CaptureDeclined,
            "PAYMENT.CAPTURE.REFUNDED" => Self::CaptureRefunded,
            "PAYMENT.CAPTURE.REVERSED" => Self::CaptureReversed,
            _ => Self::Other,
        }
    }
}

/// A verified webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// PayPal's event id (deduplicate on it: PayPal redelivers).
    pub id: String,
    pub event_type: String,
    pub kind: WebhookEventKind,
    pub create_time: Option<DateTime<Utc>>,
    /// `authorization`, `capture`, `refund`, ...
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_status: Option<String>,
    pub amount: Option<Money>,
    /// Our payment id, as sent in `custom_id`.
    pub custom_id: Option<String>,
    pub invoice_id: Option<String>,
    pub order_id: Option<String>,
    pub authorization_id: Option<String>,
    pub capture_id: Option<String>,
}

#[derive(Deserialize)]
struct EventBody {
    id: String,
    event_type: String,
    create_time: Option<DateTime<Utc>>,
    resource_type: Option<String>,
    #[serde(default)]
    resource: serde_json::Value,
}

#[derive(Default, Deserialize)]
struct Resource {
    id: Option<String>,
    status: Option<String>,
    amount: Option<Amount>,
    custom_id: Option<String>,
    invoice_id: Option<String>,
    #[serde(default)]
    supplementary_data: SupplementaryData,
    #[serde(default)]
    links: Vec<Link>,
}

impl WebhookEvent {
    /// Parses a (verified) event body.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        let event: EventBody =
            serde_json::from_slice(body).map_err(|e| WebhookError::MalformedBody(e.to_string()))?;
        let kind = WebhookEventKind::parse(&event.event_type);
        let resource: Resource = match serde_json::from_value(event.resource) {
            Ok(resource) => resource,
            // Resources of events we do not act on may have other shapes.
            Err(_) if kind == WebhookEventKind::Other => Resource::default(),
            Err(e) => return Err(WebhookError::MalformedBody(e.to_string())),
        };
        let amount = resource
            .amount
            .as_ref()
            .map(Amount::to_money)
            .transpose()
            .map_err(|e| WebhookError::MalformedBody(e.to_string()))?;
        let related = resource.supplementary_data.related_ids;
        let up_capture = resource
            .links
            .iter()
            .find(|l| l.rel == "up" && l.href.contains("/captures/"))
            .and_then(|l| l.href.rsplit('/').next().map(str::to_owned));
        Ok(Self {
            id: event.id,
            event_type: event.event_type,
            kind,
            create_time: event.create_time,
            resource_type: event.resource_type,
            resource_id: resource.id,
            resource_status: resource.status,
            amount,
            custom_id: resource.custom_id,
            invoice_id: resource.invoice_id,
            order_id: related.order_id,
            authorization_id: related.authorization_id,
            capture_id: related.capture_id.or(up_capture),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_refunded_event_names_the_refund_and_its_capture() {
        let body = br#"{"id":"WH-2","event_type":"PAYMENT.CAPTURE.REFUNDED","create_time":"2024-03-02T09:00:00Z",
            "resource_type":"refund","resource":{"id":"REF-1","status":"COMPLETED",
            "amount":{"currency_code":"JPY","value":"300"},"custom_id":"pay-9",
            "links":[{"href":"https://api.paypal.com/v2/payments/refunds/REF-1","rel":"self","method":"GET"},
                     {"href":"https://api.paypal.com/v2/payments/captures/CAP-7","rel":"up","method":"GET"}]}}"#;
        let event = WebhookEvent::parse(body).unwrap();
        assert_eq!(event.kind, WebhookEventKind::CaptureRefunded);
        assert_eq!(event.resource_id.as_deref(), Some("REF-1"));
        assert_eq!(event.capture_id.as_deref(), Some("CAP-7"));
        assert_eq!(event.amount, Some(Money::new(300, "JPY")));
        assert_eq!(event.custom_id.as_deref(), Some("pay-9"));
    }

    #[test]
    fn other_event_types_parse_whatever_their_resource() {
        let body = br#"{"id":"WH-3","event_type":"CUSTOMER.DISPUTE.CREATED","resource":{"id":17,"amount":[]}}"#;
        let event = WebhookEvent::parse(body).unwrap();
        assert_eq!(event.kind, WebhookEventKind::Other);
        assert_eq!(event.event_type, "CUSTOMER.DISPUTE.CREATED");
        assert_eq!(event.resource_id, None);
    }

    #[test]
    fn an_event_we_act_on_with_a_bad_amount_is_malformed() {
        let body = br#"{"id":"WH-4","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{"id":"CAP-1","amount":{"currency_code":"USD","value":"1.234"}}}"#;
        assert!(matches!(
            WebhookEvent::parse(body),
            Err(WebhookError::MalformedBody(_))
        ));
        assert!(matches!(
            WebhookEvent::parse(b"not json"),
            Err(WebhookError::MalformedBody(_))
        ));
    }
}
