//! What the PayPal client hands back, free of PayPal's JSON: ids, statuses, amounts in minor
//! units. The payment port maps these; nothing here is logged (payer data is for storage).

use std::fmt;

use chrono::{DateTime, Utc};

pub use super::money::Money;

/// What to authorize: a card saved in PayPal's vault, charged for one order.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// Sent as `PayPal-Request-Id`: the same key on every try of this authorization.
    pub idempotency_key: String,
    /// Our payment id: `custom_id` and `invoice_id` at PayPal.
    pub payment_id: String,
    /// Our order id: `reference_id` at PayPal.
    pub order_id: String,
    pub amount_minor: i64,
    pub currency: String,
    /// The vaulted payment source (`payment_source.card.vault_id`).
    pub vault_id: String,
}

/// Status of a PayPal authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationStatus {
    Created,
    Captured,
    PartiallyCaptured,
    Denied,
    Voided,
    Expired,
    Pending,
    Other(String),
}

impl AuthorizationStatus {
    pub(crate) fn parse(status: &str) -> Self {
        match status {
            "CREATED" => Self::Created,
            "CAPTURED" => Self::Captured,
            "PARTIALLY_CAPTURED" => Self::PartiallyCaptured,
            "DENIED" => Self::Denied,
            "VOIDED" => Self::Voided,
            "EXPIRED" => Self::Expired,
            "PENDING" => Self::Pending,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Status of a PayPal capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureStatus {
    Completed,
    Pending,
    Declined,
    Refunded,
    PartiallyRefunded,
    Failed,
    Other(String),
}

impl CaptureStatus {
    pub(crate) fn parse(status: &str) -> Self {
        match status {
            "COMPLETED" => Self::Completed,
            "PENDING" => Self::Pending,
            "DECLINED" => Self::Declined,
            "REFUNDED" => Self::Refunded,
            "PARTIALLY_REFUNDED" => Self::PartiallyRefunded,
            "FAILED" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Status of a PayPal refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStatus {
    Completed,
    Pending,
    Failed,
    Cancelled,
    Other(String),
}

impl RefundStatus {
    pub(crate) fn parse(status: &str) -> Self {
        match status {
            "COMPLETED" => Self::Completed,
            "PENDING" => Self::Pending,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A PayPal authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub id: String,
    pub status: AuthorizationStatus,
    pub amount: Option<Money>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Our payment id, as sent.
    pub custom_id: Option<String>,
    pub order_id: Option<String>,
}

/// A PayPal capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub id: String,
    pub status: CaptureStatus,
    /// PayPal's reason when pending or declined (e.g. `PENDING_REVIEW`).
    pub status_reason: Option<String>,
    pub amount: Option<Money>,
    pub custom_id: Option<String>,
    pub authorization_id: Option<String>,
}

/// A PayPal refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub status: RefundStatus,
    pub status_reason: Option<String>,
    pub amount: Option<Money>,
    pub capture_id: Option<String>,
}

/// The payer as PayPal reports them: personal data, for storage only (`Debug` hides it).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payer {
    pub name: Option<String>,
    pub email: Option<String>,
}

impl fmt::Debug for Payer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payer")
            .field("name", &self.name.as_ref().map(|_| "***"))
            .field("email", &self.email.as_ref().map(|_| "***"))
            .finish()
    }
}

/// An authorization PayPal granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    pub paypal_order_id: String,
    pub authorization: Authorization,
    pub payer: Payer,
}

/// A refusal by PayPal of a payment: the card was declined, the refund is not possible...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// PayPal's issue code (`INSTRUMENT_DECLINED`, `REFUND_AMOUNT_EXCEEDED`, or `DENIED` for a
    /// denied authorization).
    pub issue: String,
    /// PayPal's `debug_id` (safe to log; PayPal support asks for it).
    pub debug_id: Option<String>,
    /// The PayPal order and authorization, when PayPal created them before refusing.
    pub paypal_order_id: Option<String>,
    pub authorization_id: Option<String>,
}

/// What `authorize` came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    Authorized(Authorized),
    Declined(Refusal),
}

/// What `refund` came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    Refunded(Refund),
    Refused(Refusal),
}

/// A PayPal order, for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    /// `CREATED`, `APPROVED`, `COMPLETED`, `VOIDED`, ...
    pub status: String,
    /// Our order id (`reference_id`) of the first purchase unit.
    pub reference_id: Option<String>,
    pub authorizations: Vec<Authorization>,
    pub captures: Vec<Capture>,
}

/// One row of PayPal's transaction search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub id: String,
    /// PayPal's event code (`T0006`, `T1107`, ...).
    pub event_code: Option<String>,
    /// `S` success, `P` pending, `V` reversed, `D` denied, `F` partially refunded.
    pub status: Option<String>,
    /// Signed: negative for money going out (refunds).
    pub amount: Option<Money>,
    pub invoice_id: Option<String>,
    /// `custom_id` as we sent it (our payment id).
    pub custom_field: Option<String>,
    pub initiated_at: Option<DateTime<Utc>>,
}
