//! Timer functions that run a housekeeping job (`Code::Job` in the registry): the job's
//! context, and the reply a timer invocation gets.
//!
//! The timer function and `handler jobs run <Name>` build the same [`JobContext`]
//! ([`job_context`]) and print or return the same [`shared::jobs::JobReport`]: the timer reply's
//! `ReturnValue` is the report, the command prints it as JSON.

use std::sync::Arc;

use shared::archive::ArchiveStore;
use shared::config::Settings;
use shared::erasure::ErasureContext;
use shared::jobs::{run_job, Job, JobContext, Outcome, RunOptions, Trigger};
use shared::protocol::{InvocationRequest, InvocationResponse, TimerInfo};
use shared::store::Store;

use crate::invoke::{FunctionError, TIMER_BINDING};
use crate::startup::AppState;

/// The jobs' context: the store, the configured archive (`ARCHIVE`: the folder at `ARCHIVE_DIR`
/// or the Blob container, see [`shared::archive::open`]), the settings, what the GDPR
/// erasure of long-inactive customers needs (`erasure`), the payment gateway the payment
/// reconciliation asks, the ERP the ERP syncs ask and the carrier `ShipmentTracking` asks (from
/// `outbound`; `None` when not configured).
pub fn job_context(
    store: Arc<dyn Store>,
    archive: Arc<dyn ArchiveStore>,
    settings: Arc<Settings>,
    erasure: ErasureContext,
    outbound: &crate::startup::Outbound,
) -> JobContext {
    JobContext::new(
        store,
        archive,
        settings.retention.clone(),
        settings.jobs.clone(),
        erasure,
    )
    .with_erasure_requeue_after(settings.outbox.erasure_requeue_after)
    .with_payments(outbound.payments.clone(), settings.payments.settle_after)
    .with_erp(outbound.erp.clone(), &settings.erp)
    .with_carrier(outbound.carrier.clone())
}

/// A timer function's body: run `job`, reply with the report as `ReturnValue` (plus the
/// `timer` input it ran for); a failed run fails the invocation, so the host records a failure.
pub async fn run_timer(
    state: AppState,
    request: InvocationRequest,
    job: &'static Job,
) -> Result<InvocationResponse, FunctionError> {
    let timer = TimerInfo::from_request(&request, TIMER_BINDING)?;
    let context = job_context(
        state.store.clone(),
        state.archive.clone(),
        state.settings.clone(),
        state.erasure.clone(),
        &state.outbound,
    );
    let options = RunOptions {
        trigger: Trigger::Timer,
        dry_run: state.settings.jobs.dry_run,
        is_past_due: timer.is_past_due,
    };
    let report = run_job(job, &context, options).await;
    if report.outcome == Outcome::Failed {
        return Err(FunctionError::Failed(format!(
            "{}: {}",
            report.summary(),
            report.error.as_deref().unwrap_or("unknown error")
        )));
    }
    let mut value = serde_json::to_value(&report).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.insert(
            "timer".to_owned(),
            serde_json::to_value(&timer).unwrap_or_default(),
        );
    }
    Ok(InvocationResponse::empty()
        .log(report.summary())
        .with_return_value(value))
}
