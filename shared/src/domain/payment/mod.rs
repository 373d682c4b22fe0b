//! Payments of orders: what the app knows about money taken through the payment gateway.
//!
//! A payment moves through a state machine ([`PaymentStatus`]): pending → authorized →
//! captured → partially refunded / refunded, or failed, or voided; plus **unknown**, when a
//! gateway call was sent and no answer came: the payment stays unknown until the gateway says
//! what happened (a reply to the same idempotency key, a webhook, or reconciliation). A status
//! never moves backwards, so webhooks may arrive in any order ([`Payment::apply`]). A capture
//! declined after a successful authorization voids the authorization: the payment ends
//! `voided` with the capture's `failureCode` (no event: nothing was taken); until that void is
//! done it is authorized with a failure code ([`Payment::capture_declined`]).
//!
//! The amounts are bookkeeping facts kept after an erasure; the payer's name and email, as the
//! gateway reports them, are personal data: a GDPR erasure removes them (and pseudonymises the
//! payment source and drops refund reasons) by the rules of [`crate::domain::masking`], and
//! records which rules it applied on the payment ([`PaymentErasure`]). No card data is ever
//! held: a payment names the gateway's payment source (a vault id or token), never a card
//! number ([`card_number`] finds card numbers in request bodies so they can be refused).

pub mod card_number;
mod transitions;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use transitions::{Applied, PaymentUpdate, RefundUpdate, UpdateSource};

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PaymentStatus {
    /// Recorded; the gateway has not (yet) answered.
    Pending,
    /// A gateway call was sent and its outcome is not known; never reported as failed.
    Unknown,
    /// The gateway holds the money for us.
    Authorized,
    /// The money is taken.
    Captured,
    /// Part of the captured amount was given back.
    PartiallyRefunded,
    /// All of the captured amount was given back.
    Refunded,
    /// Declined or refused by the gateway.
    Failed,
    /// The authorization was released without a capture.
    Voided,
}

impl PaymentStatus {
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Unknown,
        Self::Authorized,
        Self::Captured,
        Self::PartiallyRefunded,
        Self::Refunded,
        Self::Failed,
        Self::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Unknown => "unknown",
            Self::Authorized => "authorized",
            Self::Captured => "captured",
            Self::PartiallyRefunded => "partiallyRefunded",
            Self::Refunded => "refunded",
            Self::Failed => "failed",
            Self::Voided => "voided",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether the money was taken (and may be refunded).
    pub fn is_captured(self) -> bool {
        matches!(
            self,
            Self::Captured | Self::PartiallyRefunded | Self::Refunded
        )
    }

    /// Whether the payment still counts against its order: an order has at most one payment
    /// that is not failed or voided, so it is never paid twice.
    pub fn holds_order(self) -> bool {
        !matches!(self, Self::Failed | Self::Voided)
    }

    /// Whether reconciliation must ask the gateway about it.
    pub fn is_unsettled(self) -> bool {
        matches!(self, Self::Pending | Self::Unknown | Self::Authorized)
    }

    /// The statuses a payment in this status may move to; anything else would move it
    /// backwards (an old webhook arriving late) and is ignored.
    pub fn allowed_next(self) -> &'static [Self] {
        match self {
            Self::Pending => &[
                Self::Unknown,
                Self::Authorized,
                Self::Captured,
                Self::Failed,
                Self::Voided,
            ],
            Self::Unknown => &[
                Self::Pending,
                Self::Authorized,
                Self::Captured,
                Self::Failed,
                Self::Voided,
            ],
            // A capture sent without an answer leaves an authorized payment unknown.
            Self::Authorized => &[Self::Unknown, Self::Captured, Self::Failed, Self::Voided],
            Self::Captured => &[Self::PartiallyRefunded, Self::Refunded],
            Self::PartiallyRefunded => &[Self::PartiallyRefunded, Self::Refunded],
            Self::Refunded | Self::Failed | Self::Voided => &[],
        }
    }

    pub fn may_become(self, next: Self) -> bool {
        self.allowed_next().contains(&next)
    }
}

/// Where a refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RefundStatus {
    Pending,
    /// Sent without an answer: counts against the refundable amount until settled.
    Unknown,
    Completed,
    Failed,
}

impl RefundStatus {
    /// Whether the refund may still take, or took, money back (counts against the limit).
    pub fn counts(self) -> bool {
        !matches!(self, Self::Failed)
    }

    fn rank(self) -> u8 {
        match self {
            Self::Pending | Self::Unknown => 0,
            Self::Completed | Self::Failed => 1,
        }
    }

    /// Whether a refund in this status may move to `next` (never backwards).
    pub fn may_become(self, next: Self) -> bool {
        self != next && self.rank() <= next.rank() && self.rank() == 0
    }
}

/// The gateway's ids for the payment's steps (PayPal: order, authorization, capture).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRefs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<String>,
}

impl GatewayRefs {
    /// Keeps what is known and adds what `other` knows.
    pub fn merge(&mut self, other: &GatewayRefs) {
        for (mine, theirs) in [
            (&mut self.order_id, &other.order_id),
            (&mut self.authorization_id, &other.authorization_id),
            (&mut self.capture_id, &other.capture_id),
        ] {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
    }
}

/// The payer as the gateway reported them: personal data, never logged. A GDPR erasure of the
/// customer removes it (the payment then shows `erasure` and no `payer`), and it is never
/// filled in again afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// That a GDPR erasure of the customer masked the payment: under which version of the masking
/// rules and when. Ids, amounts, currency, statuses, dates and the gateway's references are
/// kept; the payer and refund reasons are gone, the payment source is pseudonymised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentErasure {
    /// The version of the masking rules applied (`gdpr-masking-2026.12.1`).
    pub rules_version: String,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub erased_at: DateTime<Utc>,
}

/// Money given back from a captured payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub id: String,
    pub amount_cents: i64,
    pub status: RefundStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_refund_id: Option<String>,
    /// The client's `Idempotency-Key` (sent to the gateway as is).
    pub idempotency_key: String,
    /// Hash of the request the key came with (a reuse with another body is refused).
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub request_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// One payment of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: String,
    pub tenant_id: String,
    pub order_id: String,
    pub customer_id: String,
    /// The gateway (`paypal`).
    pub provider: String,
    /// The gateway's payment source (vault id or token): never a card number.
    pub source_id: String,
    /// The order's total when the payment was made, in minor units.
    pub amount_cents: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub captured_cents: i64,
    /// When the store learnt of the capture (the daily comparison's day of a capture).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::domain::timestamp::option::serialize"
    )]
    pub captured_at: Option<DateTime<Utc>>,
    /// Completed refunds only.
    pub refunded_cents: i64,
    #[serde(default)]
    pub gateway: GatewayRefs,
    /// The gateway's reason code of a failure (`INSTRUMENT_DECLINED`), never its free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Payer>,
    /// Set when a GDPR erasure of the customer masked the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure: Option<PaymentErasure>,
    #[serde(default)]
    pub refunds: Vec<Refund>,
    /// The client's `Idempotency-Key` (sent to the gateway, suffixed per step).
    pub idempotency_key: String,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub request_hash: String,
    /// While set and in the future, a request is working on this payment with the gateway: a
    /// retry with the same key gets 409 instead of a second call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_until: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    pub etag: String,
}

impl Payment {
    /// What may still be refunded: captured, less every refund that took or may take money.
    pub fn refundable_cents(&self) -> i64 {
        let claimed: i64 = self
            .refunds
            .iter()
            .filter(|refund| refund.status.counts())
            .map(|refund| refund.amount_cents)
            .sum();
        (self.captured_cents - claimed).max(0)
    }

    /// Whether the payment's capture was declined while its authorization still holds the
    /// payer's funds: authorized with a failure code. The flow voids such an authorization at
    /// once; when that void could not be done (PayPal unreachable, no answer) the payment stays
    /// so, and reconciliation (or a retry with the same `Idempotency-Key`) voids it with the
    /// same request id, `{id}-void`.
    pub fn capture_declined(&self) -> bool {
        self.status == PaymentStatus::Authorized && self.failure_code.is_some()
    }

    /// Whether a request holds the payment (see [`Payment::in_flight_until`]).
    pub fn in_flight(&self, now: DateTime<Utc>) -> bool {
        self.in_flight_until.is_some_and(|until| until > now)
    }

    pub fn refund(&self, refund_id: &str) -> Option<&Refund> {
        self.refunds.iter().find(|refund| refund.id == refund_id)
    }

    /// The refund made with this idempotency key, if any.
    pub fn refund_by_key(&self, key: &str) -> Option<&Refund> {
        self.refunds
            .iter()
            .find(|refund| refund.idempotency_key == key)
    }
}
