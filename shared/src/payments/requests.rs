//! The gateway requests of one stored payment, built the same way wherever they are sent (the
//! API, reconciliation, the event-driven refunds), so every attempt of a step carries the same
//! idempotency key and a replay is recognised by the gateway:
//!
//! | step | idempotency key |
//! |---|---|
//! | authorize | `{paymentId}` |
//! | capture | `{paymentId}-capture` |
//! | void | `{paymentId}-void` |
//! | refund | `{refundId}` |

use crate::domain::payment::{Payment, Refund};

use super::{AuthorizeRequest, CaptureRequest, PaymentReference, RefundRequest};

impl PaymentReference {
    /// The reference of `payment` (`tenant/payment`).
    pub fn of(payment: &Payment) -> Self {
        Self {
            tenant_id: payment.tenant_id.clone(),
            payment_id: payment.id.clone(),
        }
    }
}

impl AuthorizeRequest {
    /// The authorization of `payment`'s amount on its source.
    pub fn for_payment(payment: &Payment) -> Self {
        Self {
            idempotency_key: payment.id.clone(),
            reference: PaymentReference::of(payment),
            order_id: payment.order_id.clone(),
            amount_cents: payment.amount_cents,
            currency: payment.currency.clone(),
            source_id: payment.source_id.clone(),
        }
    }
}

impl CaptureRequest {
    /// The capture of `payment`'s authorization in full; `None` before it is authorized.
    pub fn for_payment(payment: &Payment) -> Option<Self> {
        Some(Self {
            idempotency_key: format!("{}-capture", payment.id),
            reference: PaymentReference::of(payment),
            authorization_id: payment.gateway.authorization_id.clone()?,
            amount_cents: payment.amount_cents,
            currency: payment.currency.clone(),
        })
    }
}

/// The idempotency key of the void of `payment`'s authorization.
pub fn void_key(payment: &Payment) -> String {
    format!("{}-void", payment.id)
}

impl RefundRequest {
    /// `refund` of `payment`'s capture; `None` when nothing was captured.
    pub fn for_refund(payment: &Payment, refund: &Refund) -> Option<Self> {
        Some(Self {
            idempotency_key: refund.id.clone(),
            reference: PaymentReference::of(payment),
            capture_id: payment.gateway.capture_id.clone()?,
            amount_cents: refund.amount_cents,
            currency: payment.currency.clone(),
        })
    }
}
