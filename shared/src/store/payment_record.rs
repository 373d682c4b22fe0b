//! What both adapters share about stored payments: the stored form (the payment with the
//! request hashes its JSON leaves out), and the idempotency and refund rules of
//! [`PaymentStore`](super::PaymentStore), so SQLite and Cosmos DB decide alike.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ts, Started};
use crate::domain::payment::{Payment, PaymentStatus, Refund, RefundStatus};
use crate::domain::rejection::Rejection;

/// The stored form of a payment: [`Payment`] skips its request hashes when serialized (they
/// never reach clients), so they are kept beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredPayment {
    #[serde(flatten)]
    pub payment: Payment,
    /// The payment's own request hash.
    #[serde(default)]
    pub key_request_hash: String,
    /// Each refund's request hash, by refund id.
    #[serde(default)]
    pub refund_request_hashes: BTreeMap<String, String>,
    /// `updatedAt` in fixed-width text (time order is text order), for range queries.
    #[serde(default)]
    pub updated_key: String,
}

impl StoredPayment {
    pub fn new(payment: &Payment) -> Self {
        Self {
            key_request_hash: payment.request_hash.clone(),
            refund_request_hashes: payment
                .refunds
                .iter()
                .map(|refund| (refund.id.clone(), refund.request_hash.clone()))
                .collect(),
            updated_key: ts(payment.updated_at),
            payment: payment.clone(),
        }
    }

    /// The payment with its request hashes back in place.
    pub fn into_payment(self) -> Payment {
        let mut payment = self.payment;
        payment.request_hash = self.key_request_hash;
        for refund in &mut payment.refunds {
            if let Some(hash) = self.refund_request_hashes.get(&refund.id) {
                refund.request_hash.clone_from(hash);
            }
        }
        payment
    }
}

/// What a request with an idempotency key already seen gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySeen {
    /// The first request still holds the payment.
    InProgress,
    /// Nobody holds it and it is not settled: the caller takes hold and goes on.
    Resume,
    /// Settled: the first result.
    Replay,
}

impl KeySeen {
    /// The answer for `payment` (already held again by the caller when resuming).
    pub fn started(self, payment: Payment) -> Started {
        match self {
            Self::InProgress => Started::InProgress(payment),
            Self::Resume => Started::Resumed(payment),
            Self::Replay => Started::Replayed(payment),
        }
    }
}

/// The answer for a payment whose key was seen: `stored` was recorded with it.
pub(crate) fn payment_key_seen(
    stored: &Payment,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<KeySeen, Rejection> {
    if stored.request_hash != request_hash {
        return Err(Rejection::IdempotencyKeyReused);
    }
    Ok(if stored.in_flight(now) {
        KeySeen::InProgress
    } else if stored.status.is_unsettled() {
        KeySeen::Resume
    } else {
        KeySeen::Replay
    })
}

/// The answer for a refund whose key was seen on `payment` (`seen` is that refund).
pub(crate) fn refund_key_seen(
    payment: &Payment,
    seen: &Refund,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<KeySeen, Rejection> {
    if seen.request_hash != request_hash {
        return Err(Rejection::IdempotencyKeyReused);
    }
    Ok(match seen.status {
        RefundStatus::Completed | RefundStatus::Failed => KeySeen::Replay,
        _ if payment.in_flight(now) => KeySeen::InProgress,
        _ => KeySeen::Resume,
    })
}

/// Whether `refund` may be made on `payment`: captured, not wholly refunded, within what is
/// left to refund.
pub(crate) fn admit_refund(payment: &Payment, refund: &Refund) -> Result<(), Rejection> {
    if !payment.status.is_captured() || payment.status == PaymentStatus::Refunded {
        return Err(Rejection::PaymentNotRefundable(payment.status.as_str()));
    }
    let refundable = payment.refundable_cents();
    if refund.amount_cents > refundable {
        return Err(Rejection::RefundExceedsCaptured {
            requested: refund.amount_cents,
            refundable,
        });
    }
    Ok(())
}

/// Records a new refund on `payment` and holds it until `until` (or longer, if another
/// request already holds it longer).
pub(crate) fn push_refund(payment: &mut Payment, refund: Refund, until: DateTime<Utc>) {
    payment.refunds.push(refund);
    payment.in_flight_until = Some(
        payment
            .in_flight_until
            .map_or(until, |held| held.max(until)),
    );
}

/// Since when reconciliation must look at `payment` (`None` while it is settled): its last
/// update while pending, unknown or authorized, or its oldest refund still pending or unknown.
pub(crate) fn unsettled_since(payment: &Payment) -> Option<DateTime<Utc>> {
    let own = payment.status.is_unsettled().then_some(payment.updated_at);
    let refunds = payment
        .refunds
        .iter()
        .filter(|refund| matches!(refund.status, RefundStatus::Pending | RefundStatus::Unknown))
        .map(|refund| refund.updated_at)
        .min();
    [own, refunds].into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(status: PaymentStatus) -> Payment {
        serde_json::from_value(serde_json::json!({
            "id": "pay-1", "tenantId": "t1", "orderId": "o-1", "customerId": "c-1",
            "provider": "paypal", "sourceId": "src", "amountCents": 1000, "currency": "EUR",
            "status": status, "capturedCents": 1000, "refundedCents": 0,
            "idempotencyKey": "k", "createdAt": "2026-12-01T10:00:00Z",
            "updatedAt": "2026-12-01T10:00:00Z", "etag": "e"
        }))
        .unwrap()
    }

    #[test]
    fn the_stored_form_keeps_the_request_hashes() {
        let mut original = payment(PaymentStatus::Captured);
        original.request_hash = "h1".into();
        let json = serde_json::to_string(&StoredPayment::new(&original)).unwrap();
        let read: StoredPayment = serde_json::from_str(&json).unwrap();
        assert_eq!(read.into_payment(), original);
    }

    #[test]
    fn a_seen_key_replays_resumes_or_is_in_progress() {
        let now = crate::domain::now();
        let mut stored = payment(PaymentStatus::Pending);
        assert_eq!(
            payment_key_seen(&stored, "", now),
            Ok(KeySeen::Resume),
            "nobody holds it"
        );
        stored.in_flight_until = Some(now + chrono::Duration::seconds(30));
        assert_eq!(payment_key_seen(&stored, "", now), Ok(KeySeen::InProgress));
        stored.status = PaymentStatus::Captured;
        stored.in_flight_until = None;
        assert_eq!(payment_key_seen(&stored, "", now), Ok(KeySeen::Replay));
        assert_eq!(
            payment_key_seen(&stored, "other", now),
            Err(Rejection::IdempotencyKeyReused)
        );
    }
}
