//! What the store records for each answer of the gateway, wherever the call was made (the API,
//! reconciliation, event-driven refunds): a decline fails the payment with the provider's code,
//! a call without an answer leaves it `unknown` (never failed), a gateway that could not be
//! reached changes nothing.

use crate::domain::payment::{
    PaymentStatus, PaymentUpdate, RefundStatus, RefundUpdate, UpdateSource,
};

use super::{GatewayAnswer, GatewayError, RefundAnswer};

/// What one payment step (authorize or capture) leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Record this update (answered, declined, or unknown).
    Record(Box<PaymentUpdate>),
    /// Nothing reached the gateway (or it is misconfigured): nothing to record; `String` says
    /// why (no personal data: the outbound client's reasons are statuses and codes).
    NotSent { reason: String, misconfigured: bool },
}

impl StepOutcome {
    /// The outcome of a step that returned `result`.
    pub fn of(result: Result<GatewayAnswer, GatewayError>, source: UpdateSource) -> Self {
        match result {
            Ok(answer) => Self::Record(Box::new(answer.into_update(source))),
            Err(GatewayError::Declined { code }) | Err(GatewayError::Refused { code, .. }) => {
                let mut update = PaymentUpdate::status(PaymentStatus::Failed, source);
                update.failure_code = Some(code);
                Self::Record(Box::new(update))
            }
            Err(GatewayError::OutcomeUnknown(_)) => Self::Record(Box::new(PaymentUpdate::status(
                PaymentStatus::Unknown,
                source,
            ))),
            Err(GatewayError::Unavailable(reason)) => Self::NotSent {
                reason,
                misconfigured: false,
            },
            Err(GatewayError::Misconfigured(reason)) => Self::NotSent {
                reason,
                misconfigured: true,
            },
        }
    }
}

/// What a refund call leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The gateway answered: its refund id and status.
    Answered(String, RefundStatus),
    /// Sent without an answer: the refund stays `unknown` until settled.
    Unknown,
    /// Nothing reached the gateway; the refund stays as it was.
    NotSent(String),
    /// The gateway refused it (its code).
    Refused(String),
}

impl RefundOutcome {
    pub fn of(result: Result<RefundAnswer, GatewayError>) -> Self {
        match result {
            Ok(answer) => Self::Answered(answer.gateway_refund_id, answer.status),
            Err(GatewayError::OutcomeUnknown(_)) => Self::Unknown,
            Err(GatewayError::Unavailable(reason)) | Err(GatewayError::Misconfigured(reason)) => {
                Self::NotSent(reason)
            }
            Err(GatewayError::Refused { code, .. }) | Err(GatewayError::Declined { code }) => {
                Self::Refused(code)
            }
        }
    }

    /// The store's update of refund `refund_id` (releasing the payment).
    pub fn update(&self, refund_id: &str, source: UpdateSource) -> PaymentUpdate {
        let (gateway_refund_id, status) = match self {
            Self::Answered(id, status) => (Some(id.clone()), Some(*status)),
            Self::Unknown => (None, Some(RefundStatus::Unknown)),
            Self::Refused(_) => (None, Some(RefundStatus::Failed)),
            Self::NotSent(_) => (None, None),
        };
        let mut update = PaymentUpdate::release(source);
        update.refund = status.map(|status| RefundUpdate {
            refund_id: Some(refund_id.to_owned()),
            gateway_refund_id,
            status,
            amount_cents: None,
        });
        update
    }
}
