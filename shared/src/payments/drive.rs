//! Taking one held payment as far as the gateway lets it: authorize, capture, and the void of
//! an authorization whose capture was declined. The one piece of code behind `POST /payments`
//! and `PaymentReconciliation`, so a payment resumed by either goes through the same steps with
//! the same request ids ([`super::requests`]): a step that was sent before is replayed, and the
//! gateway answers what the first attempt did.
//!
//! Each answer is recorded as it comes (so a stop between two steps resumes where it stopped):
//!
//! - `pending` or `unknown`: the authorization is sent (again);
//! - `authorized`: the capture is sent, unless its capture was declined before
//!   ([`Payment::capture_declined`]) or the order no longer wants it ([`Driver::capture`]
//!   false: a cancelled order), in which case the authorization is voided (`{id}-void`) so the
//!   payer's funds are not held: the payment ends `voided` with the reason as `failureCode`
//!   (`ORDER_CANCELLED`, audited `payment.capture.cancelled`);
//! - a declined or refused capture is noted on the still-authorized payment (`failureCode`,
//!   audited `payment.capture.declined`), then voided; a capture whose outcome is unknown is
//!   never voided (it may have taken the money): the payment becomes `unknown`;
//! - a void PayPal cannot do now leaves the payment `authorized` with its `failureCode`, for the
//!   next attempt.

use crate::domain::audit::AuditEntry;
use crate::domain::payment::{Payment, PaymentStatus, PaymentUpdate, UpdateSource};
use crate::domain::tenant::TenantId;
use crate::store::{PaymentStore, StoreError};

use super::{
    void_key, AuthorizeRequest, CaptureRequest, GatewayAnswer, GatewayError, PaymentGateway,
    StepOutcome,
};

/// The failure code of a payment voided because its order was cancelled meanwhile.
pub const ORDER_CANCELLED: &str = "ORDER_CANCELLED";

/// Who drives a payment, and how.
pub struct Driver<'a> {
    pub store: &'a dyn PaymentStore,
    pub gateway: &'a dyn PaymentGateway,
    pub tenant: &'a TenantId,
    pub correlation_id: Option<&'a str>,
    pub source: UpdateSource,
    /// The audit entry of a write: `(action, payment id)`.
    pub audit: &'a (dyn Fn(&str, &str) -> AuditEntry + Send + Sync),
    /// The action the steps' writes are audited as (`payment.create`, `payment.reconcile`).
    pub step_action: &'a str,
    /// Whether an authorization is captured (false: the order was cancelled; it is voided).
    pub capture: bool,
    /// Let go of the payment when the steps are done (the API); reconciliation lets go itself.
    pub release: bool,
}

/// Where driving ended.
#[derive(Debug)]
pub enum Driven {
    /// As far as the gateway let it go now (captured, failed, voided, unknown, or waiting).
    Done(Payment),
    /// The gateway could not be reached (or is misconfigured): the payment is let go as it was.
    NotSent {
        payment: Payment,
        reason: String,
        misconfigured: bool,
    },
}

impl Driver<'_> {
    /// Drives `payment` (held by the caller); see the module doc.
    pub async fn drive(&self, mut payment: Payment) -> Result<Driven, StoreError> {
        if matches!(
            payment.status,
            PaymentStatus::Pending | PaymentStatus::Unknown
        ) {
            let result = self
                .gateway
                .authorize(&AuthorizeRequest::for_payment(&payment))
                .await;
            payment = match self.record(&payment, result).await? {
                Ok(payment) => payment,
                Err(stopped) => return Ok(stopped),
            };
        }
        if payment.status == PaymentStatus::Authorized && !payment.capture_declined() {
            payment = match self.capture(payment).await? {
                Ok(payment) => payment,
                Err(stopped) => return Ok(stopped),
            };
        }
        if payment.capture_declined() {
            payment = self.void(payment).await?;
        }
        if self.release && payment.in_flight_until.is_some() {
            payment = self
                .write(
                    &payment.id,
                    &PaymentUpdate::release(self.source.clone()),
                    self.step_action,
                )
                .await?;
        }
        Ok(Driven::Done(payment))
    }

    /// Captures an authorized payment, or (order cancelled) notes why it will be voided.
    async fn capture(&self, payment: Payment) -> Result<Result<Payment, Driven>, StoreError> {
        if !self.capture {
            return self
                .note_declined(&payment, None, ORDER_CANCELLED.to_owned())
                .await
                .map(Ok);
        }
        let Some(request) = CaptureRequest::for_payment(&payment) else {
            tracing::error!(payment_id = %payment.id, "authorized without an authorization id");
            return Ok(Ok(payment));
        };
        let result = self.gateway.capture(&request).await;
        match declined_capture(&result) {
            Some(code) => self
                .note_declined(&payment, result.ok(), code)
                .await
                .map(Ok),
            None => self.record(&payment, result).await,
        }
    }

    /// Records one step's answer; a step that did not end authorized lets the payment go (when
    /// releasing). `Err(Driven::NotSent)` when nothing reached the gateway.
    async fn record(
        &self,
        payment: &Payment,
        result: Result<GatewayAnswer, GatewayError>,
    ) -> Result<Result<Payment, Driven>, StoreError> {
        let mut update = match StepOutcome::of(result, self.source.clone()) {
            StepOutcome::Record(update) => *update,
            StepOutcome::NotSent {
                reason,
                misconfigured,
            } => {
                tracing::warn!(payment_id = %payment.id, %reason, "payment gateway not reached");
                let release = PaymentUpdate::release(self.source.clone());
                let payment = self.write(&payment.id, &release, self.step_action).await?;
                return Ok(Err(Driven::NotSent {
                    payment,
                    reason,
                    misconfigured,
                }));
            }
        };
        if update.status == Some(PaymentStatus::Unknown) {
            tracing::warn!(payment_id = %payment.id, "payment outcome unknown");
        }
        update.release_in_flight = self.release && update.status != Some(PaymentStatus::Authorized);
        Ok(Ok(self
            .write(&payment.id, &update, self.step_action)
            .await?))
    }

    /// Notes on the still-authorized payment why its authorization is to be voided (`code`, and
    /// whatever ids the gateway gave); it stays held until the void.
    async fn note_declined(
        &self,
        payment: &Payment,
        answer: Option<GatewayAnswer>,
        code: String,
    ) -> Result<Payment, StoreError> {
        tracing::info!(payment_id = %payment.id, %code, "not captured; voiding the authorization");
        let action = if code == ORDER_CANCELLED {
            "payment.capture.cancelled"
        } else {
            "payment.capture.declined"
        };
        let mut update = match answer {
            Some(answer) => answer.into_update(self.source.clone()),
            None => PaymentUpdate::status(PaymentStatus::Authorized, self.source.clone()),
        };
        update.status = None;
        update.failure_code = Some(code);
        update.release_in_flight = false;
        self.write(&payment.id, &update, action).await
    }

    /// Voids the authorization with `{id}-void`: `voided` when the gateway released it (or had
    /// already); otherwise the payment stays authorized with its failure code, let go.
    async fn void(&self, payment: Payment) -> Result<Payment, StoreError> {
        let Some(authorization_id) = payment.gateway.authorization_id.clone() else {
            tracing::error!(payment_id = %payment.id, "authorized without an authorization id");
            return Ok(payment);
        };
        match self
            .gateway
            .void(&authorization_id, &void_key(&payment))
            .await
        {
            Ok(()) => self.voided(&payment).await,
            Err(GatewayError::Refused { code, .. }) if code == "PREVIOUSLY_VOIDED" => {
                self.voided(&payment).await
            }
            Err(error) => {
                tracing::warn!(payment_id = %payment.id, %error, "the authorization could not be voided now; the payment stays authorized for the next attempt");
                let release = PaymentUpdate::release(self.source.clone());
                self.write(&payment.id, &release, self.step_action).await
            }
        }
    }

    /// Records the void: the payment ends `voided`, keeping its failure code.
    async fn voided(&self, payment: &Payment) -> Result<Payment, StoreError> {
        let mut update = PaymentUpdate::status(PaymentStatus::Voided, self.source.clone());
        update.failure_code.clone_from(&payment.failure_code);
        update.release_in_flight = self.release;
        self.write(&payment.id, &update, "payment.void").await
    }

    async fn write(
        &self,
        id: &str,
        update: &PaymentUpdate,
        action: &str,
    ) -> Result<Payment, StoreError> {
        let audit = (self.audit)(action, id);
        let (payment, _) = self
            .store
            .update_payment(self.tenant, id, update, self.correlation_id, audit)
            .await?;
        Ok(payment)
    }
}

/// The gateway's reason when a capture was definitely not made (declined or refused, or a
/// capture it reports failed); `None` when it was made, is pending, or its outcome is unknown.
fn declined_capture(result: &Result<GatewayAnswer, GatewayError>) -> Option<String> {
    match result {
        Err(GatewayError::Declined { code }) | Err(GatewayError::Refused { code, .. }) => {
            Some(code.clone())
        }
        Ok(answer) if answer.status == PaymentStatus::Failed => Some(
            answer
                .failure_code
                .clone()
                .unwrap_or_else(|| "DECLINED".into()),
        ),
        _ => None,
    }
}
