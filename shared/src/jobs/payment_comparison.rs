//! `PaymentDailyReconciliation` (daily, 01:30 UTC): compares the gateway's transactions of the
//! previous UTC day (or the day `handler jobs run PaymentDailyReconciliation --day YYYY-MM-DD`
//! names) with the store and reports every mismatch, in the job report (`findings.
//! mismatches`: ids and amounts, never anything about the payer) and in the audit trail (one
//! `payment.mismatch` entry per mismatch, under the payment's tenant):
//!
//! - `missingHere`: the gateway has a capture or refund the store does not know (no payment
//!   with its reference, or a payment without that capture or refund id);
//! - `missingThere`: the store has a capture or a completed refund of that day that the
//!   gateway's report lacks;
//! - `amountDiffers`: both have it, with different amounts.
//!
//! A transaction of another kind (fees, payouts) is counted, not compared. The day's payments
//! come from `payments_updated_between`; a capture or refund counts for the day the store
//! learnt of it (`capturedAt`, the refund's `updatedAt`), so one that completes a few seconds
//! either side of midnight on the two sides can show as a pair of mismatches on consecutive
//! days, and a payment changed again since that day is checked from the gateway's side only.
//! Nothing is changed: a person decides.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

use crate::domain::audit::AuditEntry;
use crate::domain::payment::{Payment, RefundStatus};
use crate::domain::tenant::TenantId;
use crate::payments::{GatewayTransaction, PaymentGateway, TransactionKind};
use crate::store::StoreError;

use super::run::Run;
use super::{JobError, StepEnd};

pub(crate) const KEEPS_CHECKPOINT: bool = false;
pub(crate) const STEPS: &[&str] = &["compareWithGateway"];

/// How many of the day's payments one comparison reads at most.
const DAY_LIMIT: usize = 100_000;

/// One difference between the gateway's books and the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    /// `missingHere`, `missingThere` or `amountDiffers`.
    pub kind: &'static str,
    /// `capture` or `refund`.
    pub movement: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The gateway's capture or refund id.
    pub transaction_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_cents: Option<i64>,
}

pub async fn run(run: &mut Run<'_>) -> Result<StepEnd, JobError> {
    let Some(gateway) = run.context.payments.clone() else {
        run.report.findings.insert(
            "gateway".to_owned(),
            serde_json::json!("not configured: nothing to compare"),
        );
        return Ok(StepEnd::Done);
    };
    let (from, to) = match run.context.comparison_day {
        Some(day) => day_window(day),
        None => previous_day(crate::domain::now()),
    };
    run.progress_step(STEPS[0], None);
    let transactions = gateway_transactions(gateway.as_ref(), from, to).await?;
    let payments = run
        .context
        .store
        .payments_updated_between(from, to, DAY_LIMIT)
        .await
        .map_err(JobError::store("payments of the day"))?;
    let mut mismatches = Vec::new();
    for transaction in &transactions {
        if let Some(found) = check_transaction(run, transaction).await? {
            mismatches.push(found);
        }
    }
    mismatches.extend(missing_there(&payments, &transactions, from, to));
    report(run, from, &transactions, &payments, &mismatches);
    Ok(StepEnd::Done)
}

pub(crate) async fn count_left(_run: &mut Run<'_>) -> Result<(), JobError> {
    Ok(())
}

/// `[yesterday 00:00, today 00:00)` in UTC.
pub fn previous_day(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    day_window(now.date_naive() - Duration::days(1))
}

/// `[day 00:00, next day 00:00)` in UTC.
pub fn day_window(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = day.and_time(NaiveTime::MIN).and_utc();
    (start, start + Duration::days(1))
}

async fn gateway_transactions(
    gateway: &dyn PaymentGateway,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<GatewayTransaction>, JobError> {
    gateway
        .transactions(from, to)
        .await
        .map_err(|error| JobError::Gateway {
            step: "transactions",
            reason: error.to_string(),
        })
}

/// The mismatch of one gateway transaction with the store, if any.
async fn check_transaction(
    run: &Run<'_>,
    transaction: &GatewayTransaction,
) -> Result<Option<Mismatch>, JobError> {
    let movement = match transaction.kind {
        TransactionKind::Capture => "capture",
        TransactionKind::Refund => "refund",
        TransactionKind::Other => return Ok(None),
    };
    let mut mismatch = Mismatch {
        kind: "missingHere",
        movement,
        tenant_id: None,
        payment_id: None,
        transaction_id: transaction.transaction_id.clone(),
        gateway_cents: Some(transaction.amount_cents.abs()),
        store_cents: None,
    };
    let Some(payment) = stored_payment(run, transaction, &mut mismatch).await? else {
        return Ok(Some(mismatch));
    };
    let stored = match transaction.kind {
        TransactionKind::Capture => (payment.gateway.capture_id.as_deref()
            == Some(transaction.transaction_id.as_str()))
        .then_some(payment.captured_cents),
        _ => payment
            .refunds
            .iter()
            .find(|refund| {
                refund.gateway_refund_id.as_deref() == Some(transaction.transaction_id.as_str())
            })
            .map(|refund| refund.amount_cents),
    };
    mismatch.store_cents = stored;
    Ok(match stored {
        None => Some(mismatch),
        Some(cents) if cents != transaction.amount_cents.abs() => Some(Mismatch {
            kind: "amountDiffers",
            ..mismatch
        }),
        Some(_) => None,
    })
}

/// The payment a transaction's reference names (filling in the mismatch's ids).
async fn stored_payment(
    run: &Run<'_>,
    transaction: &GatewayTransaction,
    mismatch: &mut Mismatch,
) -> Result<Option<Payment>, JobError> {
    let Some(reference) = &transaction.reference else {
        return Ok(None);
    };
    mismatch.tenant_id = Some(reference.tenant_id.clone());
    mismatch.payment_id = Some(reference.payment_id.clone());
    let Ok(tenant) = TenantId::new(&reference.tenant_id) else {
        return Ok(None);
    };
    match run
        .context
        .store
        .get_payment(&tenant, &reference.payment_id)
        .await
    {
        Ok(payment) => Ok(Some(payment)),
        Err(StoreError::NotFound) => Ok(None),
        Err(error) => Err(JobError::store("payment of a transaction")(error)),
    }
}

/// Captures and completed refunds of the day in the store that the gateway did not report.
fn missing_there(
    payments: &[Payment],
    transactions: &[GatewayTransaction],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Mismatch> {
    let known: HashSet<&str> = transactions
        .iter()
        .map(|transaction| transaction.transaction_id.as_str())
        .collect();
    let mut found = Vec::new();
    for payment in payments {
        let mut note = |movement, id: &str, cents| {
            if !known.contains(id) {
                found.push(Mismatch {
                    kind: "missingThere",
                    movement,
                    tenant_id: Some(payment.tenant_id.clone()),
                    payment_id: Some(payment.id.clone()),
                    transaction_id: id.to_owned(),
                    gateway_cents: None,
                    store_cents: Some(cents),
                });
            }
        };
        let captured_that_day = payment.captured_at.is_some_and(|at| at >= from && at < to);
        if let (Some(capture), true) = (&payment.gateway.capture_id, captured_that_day) {
            note("capture", capture, payment.captured_cents);
        }
        for refund in &payment.refunds {
            let of_the_day = refund.updated_at >= from && refund.updated_at < to;
            if let (RefundStatus::Completed, Some(id), true) =
                (refund.status, &refund.gateway_refund_id, of_the_day)
            {
                note("refund", id, refund.amount_cents);
            }
        }
    }
    found
}

/// Counts, findings and one audit entry per mismatch.
fn report(
    run: &mut Run<'_>,
    day: DateTime<Utc>,
    transactions: &[GatewayTransaction],
    payments: &[Payment],
    mismatches: &[Mismatch],
) {
    let compared = transactions
        .iter()
        .filter(|transaction| transaction.kind != TransactionKind::Other)
        .count();
    let findings = &mut run.report.findings;
    findings.insert("day".to_owned(), serde_json::json!(day.date_naive()));
    findings.insert(
        "gatewayTransactions".to_owned(),
        serde_json::json!(compared),
    );
    findings.insert(
        "otherTransactions".to_owned(),
        serde_json::json!(transactions.len() - compared),
    );
    findings.insert(
        "storePayments".to_owned(),
        serde_json::json!(payments.len()),
    );
    findings.insert("mismatches".to_owned(), serde_json::json!(mismatches));
    for mismatch in mismatches {
        let tenant = mismatch
            .tenant_id
            .as_deref()
            .unwrap_or(super::run::SYSTEM_AUDIT_TENANT);
        run.report.add(tenant, mismatch.kind, 1);
        let target = mismatch
            .payment_id
            .as_deref()
            .unwrap_or(&mismatch.transaction_id);
        let entry = AuditEntry::now(
            tenant,
            "system:PaymentDailyReconciliation",
            "payment.mismatch",
            "payment",
            target,
            &run.report.run_id,
        );
        run.extra_audit.push(entry);
    }
    if mismatches.is_empty() {
        run.report
            .add(super::run::SYSTEM_AUDIT_TENANT, "matched", compared as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_day_is_the_whole_utc_day_before() {
        let now = "2026-12-03T00:20:00Z".parse::<DateTime<Utc>>().unwrap();
        let (from, to) = previous_day(now);
        assert_eq!(from.to_rfc3339(), "2026-12-02T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-12-03T00:00:00+00:00");
    }

    fn payment(capture_id: &str, captured_at: &str) -> Payment {
        serde_json::from_value(serde_json::json!({
            "id": "pay-1", "tenantId": "t1", "orderId": "o-1", "customerId": "c-1",
            "provider": "paypal", "sourceId": "src", "amountCents": 1000, "currency": "EUR",
            "status": "captured", "capturedCents": 1000, "capturedAt": captured_at,
            "refundedCents": 0, "gateway": {"captureId": capture_id},
            "idempotencyKey": "k", "createdAt": captured_at, "updatedAt": captured_at,
            "etag": "e"
        }))
        .unwrap()
    }

    #[test]
    fn a_capture_of_the_day_the_gateway_lacks_is_missing_there_and_one_of_another_day_is_not() {
        let (from, to) = day_window(NaiveDate::from_ymd_opt(2026, 12, 2).unwrap());
        let payments = [
            payment("CAP-1", "2026-12-02T10:00:00Z"),
            payment("CAP-2", "2026-12-01T23:59:59Z"),
        ];
        let found = missing_there(&payments, &[], from, to);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, "missingThere");
        assert_eq!(found[0].transaction_id, "CAP-1");
        assert_eq!(found[0].store_cents, Some(1000));
        let reported = GatewayTransaction {
            transaction_id: "CAP-1".into(),
            kind: TransactionKind::Capture,
            reference: None,
            amount_cents: 1000,
            currency: "EUR".into(),
            at: from,
        };
        assert!(missing_there(&payments, &[reported], from, to).is_empty());
    }
}
