//! `PaymentReconciliation` (every 5 minutes): settles the payments the API could not finish —
//! `unknown` (a gateway call was sent and never answered), `pending` or `authorized` for longer
//! than `PAYMENT_SETTLE_AFTER_SECONDS` (the request stopped between its steps), and refunds
//! `pending` or `unknown` — by asking the gateway again **with the same idempotency keys**
//! ([`crate::payments`]'s request builders). A replayed request tells what the first one did
//! and never moves money twice; a request that never arrived is made now, which carries the
//! payment through as its customer asked (an order has one live payment at most, so this can
//! never pay an order twice).
//!
//! A payment some request holds (`in_flight_until` in the future) is left to it. When the
//! gateway cannot be reached the run stops at once and counts what is left; the next run
//! resumes. Counts per tenant (payments, and refunds apart): `paymentsSettled` (captured),
//! `declined` (failed or voided), `stillUnknown`, `stillUnsettled` (PayPal holds the capture
//! pending), `refundsSettled`, `heldElsewhere`.

use std::collections::HashSet;

use crate::domain::audit::AuditEntry;
use crate::domain::payment::{Payment, PaymentStatus, PaymentUpdate, RefundStatus, UpdateSource};
use crate::domain::tenant::TenantId;
use crate::payments::refunds::RefundOutcome;
use crate::payments::{
    AuthorizeRequest, CaptureRequest, PaymentGateway, RefundRequest, StepOutcome,
};

use super::run::Run;
use super::{JobError, StepEnd};

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
    /// Replays the authorization (unknown or pending without one), then the capture (an
    /// authorization not captured, or a capture whose answer was lost).
    async fn payment_steps(&mut self) -> Result<Settled, JobError> {
        let status = self.payment.status;
        if !status.is_unsettled() {
            return Ok(Settled::Done);
        }
        let end = self.replay_steps(status).await?;
        let kind = match self.payment.status {
            PaymentStatus::Unknown => "stillUnknown",
            PaymentStatus::Failed | PaymentStatus::Voided => "declined",
            status if status.is_unsettled() => "stillUnsettled",
            _ => "paymentsSettled",
        };
        if end == Settled::Done {
            self.run.report.add(self.tenant.as_str(), kind, 1);
        }
        Ok(end)
    }

    async fn replay_steps(&mut self, status: PaymentStatus) -> Result<Settled, JobError> {
        let authorized = self.payment.gateway.authorization_id.is_some();
        if matches!(status, PaymentStatus::Pending | PaymentStatus::Unknown) && !authorized {
            let result = self
                .gateway
                .authorize(&AuthorizeRequest::for_payment(&self.payment))
                .await;
            if self
                .record(StepOutcome::of(result, UpdateSource::Reconciliation))
                .await?
            {
                return Ok(Settled::GatewayDown);
            }
        }
        let status = self.payment.status;
        let capture_due = status == PaymentStatus::Authorized
            || (status == PaymentStatus::Unknown
                && self.payment.gateway.authorization_id.is_some());
        if let Some(request) = capture_due
            .then(|| CaptureRequest::for_payment(&self.payment))
            .flatten()
        {
            let result = self.gateway.capture(&request).await;
            if self
                .record(StepOutcome::of(result, UpdateSource::Reconciliation))
                .await?
            {
                return Ok(Settled::GatewayDown);
            }
        }
        Ok(Settled::Done)
    }

    /// Records a step; `true` when the gateway could not be reached.
    async fn record(&mut self, outcome: StepOutcome) -> Result<bool, JobError> {
        match outcome {
            StepOutcome::Record(update) => {
                self.write(&update, "payment.reconcile").await?;
                Ok(false)
            }
            StepOutcome::NotSent { reason, .. } => {
                tracing::warn!(payment_id = %self.payment.id, %reason, "reconciliation: the gateway cannot be reached; stopping");
                self.run
                    .report
                    .findings
                    .insert("gatewayUnavailable".to_owned(), serde_json::json!(reason));
                Ok(true)
            }
        }
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
            let Some(request) = RefundRequest::for_refund(&self.payment, &refund) else {
                continue;
            };
            let outcome = RefundOutcome::of(self.gateway.refund(&request).await);
            if let RefundOutcome::Unavailable(reason) = &outcome {
                tracing::warn!(payment_id = %self.payment.id, refund_id = %refund.id, %reason, "reconciliation: the gateway cannot be reached; stopping");
                return Ok(Settled::GatewayDown);
            }
            let kind = match outcome {
                RefundOutcome::Unknown => "stillUnknown",
                RefundOutcome::Refused(_) => "declined",
                _ => "refundsSettled",
            };
            let mut update = outcome.update(&refund.id, UpdateSource::Reconciliation);
            update.release_in_flight = false;
            self.write(&update, "payment.refund.reconcile").await?;
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

    async fn write(&mut self, update: &PaymentUpdate, action: &str) -> Result<(), JobError> {
        let run_id = self.run.report.run_id.clone();
        let audit = AuditEntry::now(
            self.tenant.as_str(),
            ACTOR,
            action,
            "payment",
            &self.payment.id,
            &run_id,
        )
        .about_customer(&self.payment.customer_id);
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
