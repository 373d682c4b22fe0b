//! What the store records for each answer of the gateway to a payment step, wherever the call
//! was made (the API, reconciliation): a decline fails the payment with the provider's code, a
//! call without an answer leaves it `unknown` (never failed), a gateway that could not be
//! reached changes nothing. Refunds have theirs in [`super::refunds`].

use crate::domain::payment::{PaymentStatus, PaymentUpdate, UpdateSource};

use super::{GatewayAnswer, GatewayError};

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
