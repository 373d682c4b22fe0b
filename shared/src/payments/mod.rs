//! The payment gateway port ([`PaymentGateway`]): what the payments need from a provider, in
//! the app's terms (minor units, [`PaymentStatus`], [`GatewayRefs`]). Each provider is one
//! adapter; the PayPal adapter speaks PayPal's Orders v2, Payments v2, Transaction Search and
//! webhook contracts through the shared outbound client.
//!
//! Every call that moves money carries an idempotency key that the adapter sends unchanged on
//! every attempt, so a retry never pays twice; a call that was sent and got no answer ends in
//! [`GatewayError::OutcomeUnknown`], never in a failure.

pub mod drive;
mod outcome;
pub mod paypal;
pub mod refunds;
mod requests;

pub use outcome::StepOutcome;
pub use requests::void_key;

use chrono::{DateTime, Utc};

use crate::domain::payment::{
    GatewayRefs, Payer, PaymentStatus, PaymentUpdate, RefundStatus, RefundUpdate, UpdateSource,
};

/// Which payment of which tenant a gateway object belongs to; travels to the gateway as the
/// provider's free reference field (PayPal `custom_id`) and comes back in webhooks and reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentReference {
    pub tenant_id: String,
    pub payment_id: String,
}

impl PaymentReference {
    /// `tenant/payment` (neither contains a `/`).
    pub fn encode(&self) -> String {
        format!("{}/{}", self.tenant_id, self.payment_id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (tenant_id, payment_id) = text.split_once('/')?;
        (!tenant_id.is_empty() && !payment_id.is_empty() && !payment_id.contains('/')).then(|| {
            Self {
                tenant_id: tenant_id.to_owned(),
                payment_id: payment_id.to_owned(),
            }
        })
    }
}

/// Authorize `amount_cents` of `currency` on the payer's saved payment source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub idempotency_key: String,
    pub reference: PaymentReference,
    pub order_id: String,
    pub amount_cents: i64,
    pub currency: String,
    /// The provider's payment-source id (PayPal vault id).
    pub source_id: String,
}

/// Capture an authorization in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRequest {
    pub idempotency_key: String,
    pub reference: PaymentReference,
    pub authorization_id: String,
    pub amount_cents: i64,
    pub currency: String,
}

/// Give back `amount_cents` of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub idempotency_key: String,
    pub reference: PaymentReference,
    pub capture_id: String,
    pub amount_cents: i64,
    pub currency: String,
}

/// What the gateway said a payment now is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayAnswer {
    pub status: PaymentStatus,
    pub gateway: GatewayRefs,
    pub captured_cents: Option<i64>,
    /// The provider's reason code of a decline (`INSTRUMENT_DECLINED`).
    pub failure_code: Option<String>,
    /// Personal data: stored, to be stripped by an erasure (not wired yet: see the README), never logged.
    pub payer: Option<Payer>,
}

impl GatewayAnswer {
    /// The store's update for this answer.
    pub fn into_update(self, source: UpdateSource) -> PaymentUpdate {
        PaymentUpdate {
            status: Some(self.status),
            gateway: self.gateway,
            captured_cents: self.captured_cents,
            failure_code: self.failure_code,
            payer: self.payer,
            refund: None,
            release_in_flight: false,
            source,
        }
    }
}

/// What the gateway said of a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundAnswer {
    pub gateway_refund_id: String,
    pub status: RefundStatus,
}

/// A money movement in the gateway's own books (for the daily comparison).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTransaction {
    pub transaction_id: String,
    pub kind: TransactionKind,
    pub reference: Option<PaymentReference>,
    /// Signed: a refund is negative.
    pub amount_cents: i64,
    pub currency: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    Capture,
    Refund,
    Other,
}

/// A verified webhook, translated into the app's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookNotice {
    /// The provider's event id (deduplication).
    pub event_id: String,
    /// The provider's event type, as sent (for logs: no personal data).
    pub event_type: String,
    /// Whose payment it is about; `None` for an event that is not about one of ours.
    pub reference: Option<PaymentReference>,
    pub status: Option<PaymentStatus>,
    pub gateway: GatewayRefs,
    pub amount_cents: Option<i64>,
    pub refund: Option<RefundUpdate>,
}

impl WebhookNotice {
    /// The store's update for this notice.
    pub fn to_update(&self) -> PaymentUpdate {
        PaymentUpdate {
            status: self.status,
            gateway: self.gateway.clone(),
            captured_cents: match self.status {
                Some(PaymentStatus::Captured) => self.amount_cents,
                _ => None,
            },
            failure_code: None,
            payer: None,
            refund: self.refund.clone(),
            release_in_flight: false,
            source: UpdateSource::Webhook {
                event_id: self.event_id.clone(),
            },
        }
    }
}

/// Why a gateway call did not give an answer the payment can move on.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The payer's source was refused; the payment failed.
    #[error("the payment gateway declined the payment ({code})")]
    Declined { code: String },
    /// The call may have reached the gateway and no answer came: the payment is unknown until
    /// the gateway says (never retried with a new key, never reported as failed).
    #[error("the payment gateway's answer is unknown: {0}")]
    OutcomeUnknown(String),
    /// Nothing was done: the gateway could not be reached, or its breaker is open.
    #[error("the payment gateway is unavailable: {0}")]
    Unavailable(String),
    /// The gateway refused the request itself (a bug, a bad source id, an exceeded refund).
    #[error("the payment gateway refused the request: {status} {code}")]
    Refused { status: u16, code: String },
    /// Credentials or settings are wrong.
    #[error("the payment gateway is misconfigured: {0}")]
    Misconfigured(String),
}

/// Why a webhook was refused (answered 400/401, never applied).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook's signature is missing or does not verify: {0}")]
    BadSignature(String),
    #[error("the webhook was sent outside the accepted time window")]
    Stale,
    #[error("the webhook's body is malformed: {0}")]
    Malformed(String),
    /// The provider's certificate or verification service could not be reached (retryable:
    /// answered 503 so the provider sends it again).
    #[error("the webhook could not be verified now: {0}")]
    Unverifiable(String),
}

/// A payment provider.
#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync {
    /// `paypal`: the `{provider}` of the webhook route and of stored payments.
    fn provider(&self) -> &'static str;
    /// Authorizes the amount on the saved source (pending → authorized, or failed).
    async fn authorize(&self, request: &AuthorizeRequest) -> Result<GatewayAnswer, GatewayError>;
    /// Captures an authorization (authorized → captured).
    async fn capture(&self, request: &CaptureRequest) -> Result<GatewayAnswer, GatewayError>;
    /// Releases an authorization that will not be captured.
    async fn void(&self, authorization_id: &str, idempotency_key: &str)
        -> Result<(), GatewayError>;
    async fn refund(&self, request: &RefundRequest) -> Result<RefundAnswer, GatewayError>;
    /// The gateway's transactions in `[from, to)`.
    async fn transactions(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<GatewayTransaction>, GatewayError>;
    /// Verifies a webhook as the provider signs it and translates it.
    async fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<WebhookNotice, WebhookError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_travel_as_tenant_slash_payment() {
        let reference = PaymentReference {
            tenant_id: "contoso".into(),
            payment_id: "pay-1".into(),
        };
        assert_eq!(
            PaymentReference::decode(&reference.encode()),
            Some(reference)
        );
        assert_eq!(PaymentReference::decode("no-slash"), None);
        assert_eq!(PaymentReference::decode("a/b/c"), None);
    }
}
