//! Sending a refund that the store recorded (pending, holding the payment) to the gateway and
//! recording the answer: the one piece of code behind `POST /payments/{id}/refund` and the
//! refund of a cancelled order (`CancelledOrderRefund`).
//!
//! The gateway's request id is the refund's id, so sending the same recorded refund again (a
//! retried request, a redelivered event) never refunds twice. What the gateway answered
//! ([`RefundOutcome`]) becomes the store's update: completed or pending with the gateway's id,
//! unknown when no answer came (settled later with the same id), failed when the gateway
//! refused (recorded and audited), and nothing but the payment let go when the gateway could
//! not be reached (the caller retries with the same key).

use crate::domain::audit::AuditEntry;
use crate::domain::payment::{Payment, PaymentUpdate, RefundStatus, RefundUpdate, UpdateSource};
use crate::domain::tenant::TenantId;
use crate::payments::{GatewayError, PaymentGateway, RefundAnswer, RefundRequest};
use crate::store::{PaymentStore, StoreError};

/// What became of a refund's gateway call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Settled before this call (completed or failed): nothing was sent.
    Recorded,
    /// The gateway's refund id and what it says of the refund.
    Answered(String, RefundStatus),
    /// Sent, no answer: the refund is unknown until the gateway says.
    Unknown,
    /// Not sent: the gateway could not be reached (or is misconfigured); retry with the same key.
    Unavailable(String),
    /// The gateway refused the refund (its code); recorded as failed.
    Refused(String),
}

impl RefundOutcome {
    /// The outcome of the gateway's answer.
    pub fn of(result: Result<RefundAnswer, GatewayError>) -> Self {
        match result {
            Ok(answer) => Self::Answered(answer.gateway_refund_id, answer.status),
            Err(GatewayError::OutcomeUnknown(reason)) => {
                tracing::warn!(%reason, "refund outcome unknown");
                Self::Unknown
            }
            Err(GatewayError::Unavailable(reason)) | Err(GatewayError::Misconfigured(reason)) => {
                tracing::warn!(%reason, "refund not sent: gateway unavailable");
                Self::Unavailable(reason)
            }
            Err(GatewayError::Refused { code, .. }) | Err(GatewayError::Declined { code }) => {
                Self::Refused(code)
            }
        }
    }

    /// The store's update: the refund's new status, and the payment let go.
    pub fn update(&self, refund_id: &str, source: UpdateSource) -> PaymentUpdate {
        let (gateway_refund_id, status) = match self {
            Self::Answered(id, status) => (Some(id.clone()), Some(*status)),
            Self::Unknown => (None, Some(RefundStatus::Unknown)),
            Self::Refused(_) => (None, Some(RefundStatus::Failed)),
            Self::Recorded | Self::Unavailable(_) => (None, None),
        };
        PaymentUpdate {
            refund: status.map(|status| RefundUpdate {
                refund_id: Some(refund_id.to_owned()),
                gateway_refund_id,
                status,
                amount_cents: None,
            }),
            ..PaymentUpdate::release(source)
        }
    }
}

/// Why a recorded refund could not be sent and recorded.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// The payment holds no refund with the key the caller recorded it under (a bug).
    #[error("payment {payment_id} has no refund recorded under this request's key")]
    NotRecorded { payment_id: String },
    #[error("the refund of payment {payment_id} could not be recorded: {source}")]
    Store {
        payment_id: String,
        #[source]
        source: StoreError,
    },
}

/// The payment after the refund was sent, with the refund's id and what became of it.
#[derive(Debug, Clone)]
pub struct RefundSent {
    pub payment: Payment,
    pub refund_id: String,
    pub outcome: RefundOutcome,
}

/// Who sends a refund, for the store's update and audit entry.
pub struct RefundContext<'a> {
    pub tenant: &'a TenantId,
    /// Who asked: the API, an event (`Api` too: a person's action) or reconciliation.
    pub source: UpdateSource,
    pub correlation_id: Option<&'a str>,
    pub audit: AuditEntry,
}

/// Sends the refund recorded on `payment` under `key` (held by the caller) to the gateway,
/// unless it is settled already, and records the answer (see the module doc).
pub async fn send_refund(
    payments: &dyn PaymentStore,
    gateway: &dyn PaymentGateway,
    context: RefundContext<'_>,
    payment: Payment,
    key: &str,
) -> Result<RefundSent, RefundError> {
    let Some(refund) = payment.refund_by_key(key).cloned() else {
        return Err(RefundError::NotRecorded {
            payment_id: payment.id.clone(),
        });
    };
    let mut outcome = RefundOutcome::Recorded;
    if matches!(refund.status, RefundStatus::Pending | RefundStatus::Unknown) {
        outcome = match RefundRequest::for_refund(&payment, &refund) {
            Some(request) => RefundOutcome::of(gateway.refund(&request).await),
            None => RefundOutcome::Refused("NO_CAPTURE".into()),
        };
    }
    let update = outcome.update(&refund.id, context.source);
    let (payment, _) = payments
        .update_payment(
            context.tenant,
            &payment.id,
            &update,
            context.correlation_id,
            context.audit,
        )
        .await
        .map_err(|source| RefundError::Store {
            payment_id: payment.id.clone(),
            source,
        })?;
    Ok(RefundSent {
        payment,
        refund_id: refund.id,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_refund_is_recorded_failed_and_an_unreachable_gateway_only_lets_go() {
        let refused =
            RefundOutcome::Refused("REFUND_REFUSED".into()).update("rf-1", UpdateSource::Api);
        let refund = refused.refund.expect("a refund update");
        assert_eq!(
            (refund.refund_id.as_deref(), refund.status),
            (Some("rf-1"), RefundStatus::Failed)
        );
        assert!(refused.release_in_flight && refused.status.is_none());
        let unavailable =
            RefundOutcome::Unavailable("down".into()).update("rf-1", UpdateSource::Api);
        assert!(unavailable.refund.is_none() && unavailable.release_in_flight);
    }
}
