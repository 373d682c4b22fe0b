//! `PaymentReconciliation` (every 5 minutes): settles the payments the API could not finish —
//! `unknown` (a gateway call was sent and never answered), `pending` or `authorized` for longer
//! than `PAYMENT_SETTLE_AFTER_SECONDS` (the request stopped between its steps, or the void of a
//! declined capture could not be done), and refunds `pending` or `unknown` — by going through
//! the API's own steps ([`crate::payments::drive`], [`crate::payments::refunds`]) **with the
//! same idempotency keys**. A replayed request tells what the first one did and never moves
//! money twice; a request that never arrived is made now, which carries the payment through as
//! its customer asked (an order has one live payment at most, so this can never pay an order
//! twice) — unless the order was cancelled meanwhile: then an authorization is voided, never
//! captured (`voidedOrderCancelled`), and a capture that turns out to have been made is
//! reported (`capturedOrderCancelled`, logged as an error) for a refund.
//!
//! A payment some request holds (`in_flight_until` in the future) is left to it. When the
//! gateway cannot be reached the run stops at once and counts what is left; the next run
//! resumes. Counts per tenant (payments, and refunds apart): `paymentsSettled` (captured),
//! `declined` (failed or voided), `voidedOrderCancelled`, `capturedOrderCancelled`,
//! `stillUnknown`, `stillUnsettled` (PayPal holds the capture pending), `refundsSettled`,
//! `heldElsewhere`.

use std::collections::HashSet;

use crate::domain::audit::AuditEntry;
use crate::domain::order::OrderStatus;
use crate::domain::payment::{Payment, PaymentStatus, PaymentUpdate, RefundStatus, UpdateSource};
use crate::domain::tenant::TenantId;
use crate::payments::drive::{Driven, Driver};
use crate::payments::refunds::{send_refund, RefundContext, RefundOutcome};
use crate::payments::PaymentGateway;
use crate::store::StoreError;

use super::run::Run;
use super::{JobError, StepEnd};

pub(crate) const KEEPS_CHECKPOINT: bool = false;
pub(crate) const STEPS: &[&str] = &["unsettledPayments"];

const ACTOR: &str = "system:PaymentReconciliation";
/// How long the run holds a payment while it talks to the gateway about it.
const HOLD_SECONDS: i64 = 120;

pub async fn run(run: &mut Run<'_>) -> Result<StepEnd, JobError> {
    let Some(gateway) = run.context.payments.clone() else {
        run.report.findings.insert(
            "gateway".to_owned(),
            serde_json::json!("not configured: nothing to settle"),
        );
        return Ok(StepEnd::Done);
    };
    run.progress_step(STEPS[0], None);
    let mut seen = HashSet::new();
    loop {
        let batch = unsettled(run).await?;
        let fresh: Vec<Payment> = batch
            .into_iter()
            .filter(|payment| seen.insert((payment.tenant_id.clone(), payment.id.clone())))
            .collect();
        if fresh.is_empty() {
            return Ok(StepEnd::Done);
        }
        for payment in fresh {
            if run.out_of_time() {
                return Ok(StepEnd::OutOfTime);
            }
            if settle(run, gateway.as_ref(), payment).await? == Settled::GatewayDown {
                return Ok(StepEnd::OutOfTime);
            }
            run.advance(1);
        }
    }
}

pub(crate) async fn count_left(run: &mut Run<'_>) -> Result<(), JobError> {
    let left = unsettled(run).await?.len();
    run.report.leave("unsettledPayments", left as u64);
    Ok(())
}

async fn unsettled(run: &Run<'_>) -> Result<Vec<Payment>, JobError> {
    let after = chrono::Duration::from_std(run.context.payment_settle_after)
        .unwrap_or_else(|_| chrono::Duration::minutes(5));
    run.context
        .store
        .unsettled_payments(crate::domain::now() - after, run.batch_size() as usize)
        .await
        .map_err(JobError::store("unsettled payments"))
}

/// What settling one payment came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Asked the gateway (or, in a dry run, would have); counted in the report.
    Done,
    /// The gateway could not be reached: stop the run.
    GatewayDown,
}

async fn settle(
    run: &mut Run<'_>,
    gateway: &dyn PaymentGateway,
    payment: Payment,
) -> Result<Settled, JobError> {
    let Ok(tenant) = TenantId::new(&payment.tenant_id) else {
        tracing::warn!(payment_id = %payment.id, "payment with an invalid tenant id; skipped");
        return Ok(Settled::Done);
    };
    if run.dry_run {
        run.report.add(tenant.as_str(), "wouldSettle", 1);
        return Ok(Settled::Done);
    }
    let until = crate::domain::now() + chrono::Duration::seconds(HOLD_SECONDS);
    let held = run
        .context
        .store
        .hold_payment(&tenant, &payment.id, until)
        .await
        .map_err(JobError::store("hold payment"))?;
    let Some(payment) = held else {
        run.report.add(tenant.as_str(), "heldElsewhere", 1);
        return Ok(Settled::Done);
    };
    let mut settling = Settling {
        run,
        gateway,
        tenant,
        payment,
    };
    let end = settling.payment_steps().await?;
    let end = match end {
        Settled::Done => settling.refunds().await?,
        down => down,
    };
    settling.release().await?;
    Ok(end)
}

/// One held payment being settled.
struct Settling<'r, 'a> {
    run: &'r mut Run<'a>,
    gateway: &'r dyn PaymentGateway,
    tenant: TenantId,
    payment: Payment,
}

impl Settling<'_, '_> {
    /// Drives the payment through the same steps as the API ([`Driver`]): the authorization
    /// and capture replayed with their request ids, a declined capture's authorization voided;
    /// for an order cancelled meanwhile (or gone), an authorization is voided, never captured.
    async fn payment_steps(&mut self) -> Result<Settled, JobError> {
        if !self.payment.status.is_unsettled() {
            return Ok(Settled::Done);
        }
        let capture = self.order_wants_capture().await?;
        let (tenant, customer_id, run_id) = (
            self.tenant.clone(),
            self.payment.customer_id.clone(),
            self.run.report.run_id.clone(),
        );
        let audit = move |action: &str, id: &str| {
            AuditEntry::now(tenant.as_str(), ACTOR, action, "payment", id, &run_id)
                .about_customer(&customer_id)
        };
        let driver = Driver {
            store: self.run.context.store.as_ref(),
            gateway: self.gateway,
            tenant: &self.tenant,
            correlation_id: Some(&self.run.report.run_id),
            source: UpdateSource::Reconciliation,
            audit: &audit,
            step_action: "payment.reconcile",
            capture,
            release: false,
        };
        let driven = driver
            .drive(self.payment.clone())
            .await
            .map_err(JobError::store("update payment"))?;
        let payment = match driven {
            Driven::Done(payment) => payment,
            Driven::NotSent {
                payment, reason, ..
            } => {
                self.payment = payment;
                tracing::warn!(payment_id = %self.payment.id, %reason, "reconciliation: the gateway cannot be reached; stopping");
                self.run
                    .report
                    .findings
                    .insert("gatewayUnavailable".to_owned(), serde_json::json!(reason));
                return Ok(Settled::GatewayDown);
            }
        };
        self.payment = payment;
        self.count_payment(capture);
        Ok(Settled::Done)
    }

    /// Whether the payment's order still wants its money: not cancelled, and still there.
    async fn order_wants_capture(&self) -> Result<bool, JobError> {
        match self
            .run
            .context
            .store
            .get_order(&self.tenant, &self.payment.order_id)
            .await
        {
            Ok(order) => Ok(order.status != OrderStatus::Cancelled),
            Err(StoreError::NotFound) => Ok(false),
            Err(error) => Err(JobError::store("order of a payment")(error)),
        }
    }

    /// Counts where the payment ended.
    fn count_payment(&mut self, capture: bool) {
        let kind = match self.payment.status {
            PaymentStatus::Unknown => "stillUnknown",
            PaymentStatus::Voided if !capture => "voidedOrderCancelled",
            PaymentStatus::Failed | PaymentStatus::Voided => "declined",
            PaymentStatus::Captured if !capture => {
                tracing::error!(payment_id = %self.payment.id, order_id = %self.payment.order_id, "a payment of a cancelled order turned out captured; it needs a refund");
                "capturedOrderCancelled"
            }
            status if status.is_unsettled() => "stillUnsettled",
            _ => "paymentsSettled",
        };
        self.run.report.add(self.tenant.as_str(), kind, 1);
    }

    /// Replays every refund still pending or unknown.
    async fn refunds(&mut self) -> Result<Settled, JobError> {
        let open: Vec<_> = self
            .payment
            .refunds
            .iter()
            .filter(|refund| matches!(refund.status, RefundStatus::Pending | RefundStatus::Unknown))
            .cloned()
            .collect();
        for refund in open {
            let context = RefundContext {
                tenant: &self.tenant,
                source: UpdateSource::Reconciliation,
                correlation_id: Some(&self.run.report.run_id),
                audit: self.audit_entry("payment.refund.reconcile"),
            };
            let store = self.run.context.store.as_ref();
            let sent = send_refund(
                store,
                self.gateway,
                context,
                self.payment.clone(),
                &refund.idempotency_key,
            )
            .await
            .map_err(|error| JobError::Gateway {
                step: "refund",
                reason: error.to_string(),
            })?;
            self.payment = sent.payment;
            let kind = match &sent.outcome {
                RefundOutcome::Unavailable(reason) => {
                    tracing::warn!(payment_id = %self.payment.id, refund_id = %refund.id, %reason, "reconciliation: the gateway cannot be reached; stopping");
                    return Ok(Settled::GatewayDown);
                }
                RefundOutcome::Unknown => "stillUnknown",
                RefundOutcome::Refused(_) => "declined",
                _ => "refundsSettled",
            };
            self.run.report.add(self.tenant.as_str(), kind, 1);
        }
        Ok(Settled::Done)
    }

    async fn release(&mut self) -> Result<(), JobError> {
        self.write(
            &PaymentUpdate::release(UpdateSource::Reconciliation),
            "payment.reconcile",
        )
        .await
    }

    fn audit_entry(&self, action: &str) -> AuditEntry {
        AuditEntry::now(
            self.tenant.as_str(),
            ACTOR,
            action,
            "payment",
            &self.payment.id,
            &self.run.report.run_id,
        )
        .about_customer(&self.payment.customer_id)
    }

    async fn write(&mut self, update: &PaymentUpdate, action: &str) -> Result<(), JobError> {
        let run_id = self.run.report.run_id.clone();
        let audit = self.audit_entry(action);
        let (payment, _) = self
            .run
            .context
            .store
            .update_payment(&self.tenant, &self.payment.id, update, Some(&run_id), audit)
            .await
            .map_err(JobError::store("update payment"))?;
        self.payment = payment;
        Ok(())
    }
}
