//! `CancelledOrderRefund`: gives the money of a cancelled order back, from the `order-events`
//! topic (subscription `payments`, [`OrderEvent`]).
//!
//! On a `cancelled` event, every payment of the order is settled through the payment gateway
//! port:
//!
//! | payment | what happens |
//! |---|---|
//! | `captured`, `partiallyRefunded` | what is still refundable is refunded (the refund code of `POST /payments/{id}/refund`: [`send_refund`]) |
//! | `authorized` | the authorization is voided, the payment becomes `voided` |
//! | `pending`, `unknown` | while a request is paying it: the invocation fails and the redelivery decides on where it ended; else left for reconciliation (logged) |
//! | `refunded`, `failed`, `voided` | nothing |
//!
//! The refund's idempotency key is derived from the event id and the payment id
//! (`order-cancelled/{eventId}/{paymentId}`), and so is the refund id the gateway receives as
//! its request id: a redelivered event finds its refund recorded and never refunds twice, and a
//! refund left pending by an unreachable gateway is sent again with the same id. The void's
//! request id is `{paymentId}-void`.
//!
//! - The gateway cannot be reached, or its answer never came (the refund is recorded `unknown`),
//!   or the payment is held by a request in flight: the invocation fails, Service Bus delivers
//!   the event again (the refund is sent again with the same id, which settles an unknown one)
//!   and, after its delivery count, dead-letters it with the reason.
//! - The gateway declines the refund: the refund is recorded `failed` on the payment with the
//!   audit entry, and the event completes (staff see the failed refund on the payment).
//! - Other order events complete with no effect (`ignored`). Logs carry ids only.

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::domain::audit::AuditEntry;
use shared::domain::messages::{OrderEvent, OrderEventType};
use shared::domain::payment::{Payment, PaymentStatus, Refund, RefundStatus, UpdateSource};
use shared::domain::tenant::TenantId;
use shared::payments::drive::{Driven, Driver};
use shared::payments::refunds::{send_refund, RefundContext, RefundOutcome};
use shared::payments::PaymentGateway;
use shared::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};
use shared::store::{PageRequest, PaymentFilter, Started, StoreError};

use crate::invoke::{checked_message_ids, FunctionError, InvokeFuture, MESSAGE_BINDING};
use crate::startup::AppState;

/// The function's name.
pub const FUNCTION: &str = "CancelledOrderRefund";
const ACTOR: &str = "system:CancelledOrderRefund";

/// How long the function holds a payment while it talks to the gateway.
const HOLD_SECONDS: i64 = 60;

/// An order has at most one payment that holds it; a page of 100 covers the failed ones too.
const PAYMENTS_PER_ORDER: u32 = 100;

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { run(state, request).await })
}

async fn run(
    state: AppState,
    request: InvocationRequest,
) -> Result<InvocationResponse, FunctionError> {
    let message = ServiceBusMessage::<OrderEvent>::from_request(&request, MESSAGE_BINDING)?;
    let event = message.body;
    let tenant = checked_ids(&event)?;
    if event.event_type != OrderEventType::Cancelled {
        return Ok(reply(&event, "ignored", Vec::new()));
    }
    let payments = order_payments(&state, &tenant, &event).await?;
    let settle = Settle {
        state: &state,
        tenant: &tenant,
        event: &event,
    };
    let (mut settled, mut failures) = (Vec::new(), Vec::new());
    for payment in payments {
        let id = payment.id.clone();
        match settle.payment(payment).await {
            Ok(result) => settled.push(json!({ "paymentId": id, "result": result })),
            Err(error) => failures.push(error.to_string()),
        }
    }
    // Every payment had its chance; the redelivery redoes only what failed (the rest is settled).
    if !failures.is_empty() {
        return Err(FunctionError::Failed(failures.join("; ")));
    }
    Ok(reply(&event, "settled", settled))
}

fn checked_ids(event: &OrderEvent) -> Result<TenantId, FunctionError> {
    checked_message_ids(
        &event.tenant_id,
        &[
            ("eventId", &event.event_id),
            ("orderId", &event.order_id),
            ("customerId", &event.customer_id),
        ],
    )
}

async fn order_payments(
    state: &AppState,
    tenant: &TenantId,
    event: &OrderEvent,
) -> Result<Vec<Payment>, FunctionError> {
    let filter = PaymentFilter {
        order_id: Some(event.order_id.clone()),
        ..PaymentFilter::default()
    };
    let page = state
        .ports
        .payments
        .list_payments(tenant, filter, PageRequest::first(PAYMENTS_PER_ORDER))
        .await
        .map_err(|error| store_failed(event, "payments could not be read", error))?;
    Ok(page.items)
}

/// The refund key of `payment` for the cancellation `event_id` (see the module doc).
pub fn refund_key(event_id: &str, payment_id: &str) -> String {
    format!("order-cancelled/{event_id}/{payment_id}")
}

/// The refund id (the gateway's request id) derived from the key: a valid id of 47 characters.
fn refund_id(key: &str) -> String {
    let digest = format!("{:x}", Sha256::digest(key.as_bytes()));
    format!("refund-{}", &digest[..40])
}

/// Settles the payments of one cancellation event.
struct Settle<'a> {
    state: &'a AppState,
    tenant: &'a TenantId,
    event: &'a OrderEvent,
}

impl Settle<'_> {
    /// Settles one payment of the order (see the module doc's table); what was done.
    async fn payment(&self, payment: Payment) -> Result<String, FunctionError> {
        let key = refund_key(&self.event.event_id, &payment.id);
        match payment.status {
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {
                self.refund_rest(payment, &key).await
            }
            PaymentStatus::Authorized => self.void(payment).await,
            PaymentStatus::Pending | PaymentStatus::Unknown if payment.in_flight(Utc::now()) => {
                Err(self.held_elsewhere(&payment.id))
            }
            PaymentStatus::Pending | PaymentStatus::Unknown => {
                tracing::warn!(event_id = %self.event.event_id, order_id = %self.event.order_id, payment_id = %payment.id, status = payment.status.as_str(), "payment of a cancelled order not settled yet; left for reconciliation");
                Ok(format!("left: {}", payment.status.as_str()))
            }
            PaymentStatus::Refunded | PaymentStatus::Failed | PaymentStatus::Voided => {
                Ok(format!("nothing to do: {}", payment.status.as_str()))
            }
        }
    }

    fn gateway(&self) -> Result<std::sync::Arc<dyn PaymentGateway>, FunctionError> {
        self.state.outbound.payments.clone().ok_or_else(|| {
            FunctionError::Failed(format!(
                "event {}: order {} has payments to give back and no payment gateway is configured",
                self.event.event_id, self.event.order_id
            ))
        })
    }

    fn audit(&self, action: &str, payment: &Payment) -> AuditEntry {
        AuditEntry::now(
            self.tenant.as_str(),
            ACTOR,
            action,
            "payment",
            &payment.id,
            &self.event.event_id,
        )
        .about_customer(&payment.customer_id)
    }

    /// Refunds what remains refundable, once per event and payment.
    async fn refund_rest(&self, payment: Payment, key: &str) -> Result<String, FunctionError> {
        let amount = match payment.refund_by_key(key) {
            Some(recorded) => recorded.amount_cents,
            None => payment.refundable_cents(),
        };
        if amount <= 0 {
            return Ok("nothing left to refund".into());
        }
        let gateway = self.gateway()?;
        let refund = new_refund(key, amount);
        let until = Utc::now() + Duration::seconds(HOLD_SECONDS);
        let started = self
            .state
            .ports
            .payments
            .begin_refund(
                self.tenant,
                &payment.id,
                refund,
                until,
                self.audit("payment.refund", &payment),
            )
            .await
            .map_err(|error| store_failed(self.event, "the refund could not be recorded", error))?;
        let held = match started {
            Started::New(held) | Started::Resumed(held) => held,
            Started::Replayed(done) => return Ok(replayed(&done, key)),
            Started::InProgress(_) => return Err(self.held_elsewhere(&payment.id)),
        };
        let context = RefundContext {
            source: shared::domain::payment::UpdateSource::Api,
            tenant: self.tenant,
            correlation_id: Some(&self.event.event_id),
            audit: self.audit("payment.refund", &held),
        };
        let sent = send_refund(
            self.state.ports.payments.as_ref(),
            gateway.as_ref(),
            context,
            held,
            key,
        )
        .await
        .map_err(|error| {
            FunctionError::Failed(format!("event {}: {error}", self.event.event_id))
        })?;
        self.refund_result(&sent.payment.id, &sent.outcome)
    }

    fn refund_result(
        &self,
        payment_id: &str,
        outcome: &RefundOutcome,
    ) -> Result<String, FunctionError> {
        let event_id = &self.event.event_id;
        match outcome {
            RefundOutcome::Answered(_, RefundStatus::Completed) | RefundOutcome::Recorded => {
                Ok("refunded".into())
            }
            RefundOutcome::Answered(_, status) => Ok(format!("refund {}", refund_status(*status))),
            RefundOutcome::Unknown => Err(FunctionError::Failed(format!(
                "event {event_id}: the payment gateway did not answer the refund of payment {payment_id}; the redelivery asks again with the same id"
            ))),
            RefundOutcome::Refused(code) => {
                tracing::warn!(event_id = %event_id, payment_id = %payment_id, %code, "refund of a cancelled order declined by the gateway");
                Ok(format!("refund declined ({code})"))
            }
            RefundOutcome::Unavailable(reason) => Err(FunctionError::Failed(format!(
                "event {event_id}: the refund of payment {payment_id} was not sent, the payment gateway is unavailable ({reason}); the redelivery sends it with the same key"
            ))),
        }
    }

    /// Voids the authorization of an authorized payment.
    async fn void(&self, payment: Payment) -> Result<String, FunctionError> {
        let gateway = self.gateway()?;
        let until = Utc::now() + Duration::seconds(HOLD_SECONDS);
        let held = self
            .state
            .ports
            .payments
            .hold_payment(self.tenant, &payment.id, until)
            .await
            .map_err(|error| store_failed(self.event, "the payment could not be held", error))?;
        let Some(held) = held else {
            return Err(self.held_elsewhere(&payment.id));
        };
        let audit = |action: &str, _: &str| self.audit(action, &held);
        let driver = Driver {
            store: self.state.ports.payments.as_ref(),
            gateway: gateway.as_ref(),
            tenant: self.tenant,
            correlation_id: Some(&self.event.event_id),
            source: UpdateSource::Api,
            audit: &audit,
            step_action: "payment.void",
            capture: false,
            release: true,
        };
        let driven = driver
            .drive(held.clone())
            .await
            .map_err(|error| store_failed(self.event, "the void could not be recorded", error))?;
        match driven {
            Driven::Done(payment) if payment.status == PaymentStatus::Voided => Ok("voided".into()),
            Driven::Done(payment) | Driven::NotSent { payment, .. } => Err(FunctionError::Failed(format!(
                "event {}: the authorization of payment {} was not voided (it is {}); the redelivery tries again with the same key",
                self.event.event_id,
                payment.id,
                payment.status.as_str()
            ))),
        }
    }

    fn held_elsewhere(&self, payment_id: &str) -> FunctionError {
        FunctionError::Failed(format!(
            "event {}: payment {payment_id} is held by another request; the redelivery tries again",
            self.event.event_id
        ))
    }
}

/// A pending refund of `amount` under `key`, with the id derived from it.
fn new_refund(key: &str, amount: i64) -> Refund {
    let now = Utc::now();
    Refund {
        id: refund_id(key),
        amount_cents: amount,
        status: RefundStatus::Pending,
        gateway_refund_id: None,
        idempotency_key: key.to_owned(),
        // The same on every delivery, whatever is left to refund by then.
        request_hash: format!("{:x}", Sha256::digest(key.as_bytes())),
        reason: Some("order cancelled".into()),
        created_at: now,
        updated_at: now,
    }
}

/// What a refund settled by an earlier delivery became.
fn replayed(payment: &Payment, key: &str) -> String {
    match payment.refund_by_key(key).map(|refund| refund.status) {
        Some(status) => format!("refunded before: {}", refund_status(status)),
        None => "refunded before".into(),
    }
}

fn refund_status(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Pending => "pending",
        RefundStatus::Unknown => "unknown",
        RefundStatus::Completed => "completed",
        RefundStatus::Failed => "failed",
    }
}

fn store_failed(event: &OrderEvent, what: &str, error: StoreError) -> FunctionError {
    FunctionError::Failed(format!(
        "event {} (order {}): {what}: {error}",
        event.event_id, event.order_id
    ))
}

fn reply(event: &OrderEvent, result: &str, payments: Vec<Value>) -> InvocationResponse {
    tracing::info!(event_id = %event.event_id, order_id = %event.order_id, result, payments = payments.len(), "order event handled for its payments");
    InvocationResponse::empty()
        .log(format!(
            "event {} (order.{}) for order {}: {result}; {} payments",
            event.event_id,
            event.event_type.as_str(),
            event.order_id,
            payments.len()
        ))
        .with_return_value(json!({ "eventId": event.event_id, "orderId": event.order_id, "result": result, "payments": payments }))
}

#[cfg(test)]
mod tests {
    use shared::domain::validation::is_valid_id;

    use super::*;

    #[test]
    fn the_refund_id_is_a_valid_id_derived_from_the_event_and_the_payment() {
        let key = refund_key("evt-1", "pay-1");
        assert_eq!(key, "order-cancelled/evt-1/pay-1");
        assert_eq!(refund_id(&key), refund_id(&refund_key("evt-1", "pay-1")));
        assert_ne!(refund_id(&key), refund_id(&refund_key("evt-2", "pay-1")));
        assert_ne!(refund_id(&key), refund_id(&refund_key("evt-1", "pay-2")));
        assert!(is_valid_id(&refund_id(&key)));
    }
}
