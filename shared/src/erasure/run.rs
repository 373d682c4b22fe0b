//! Erasing one customer: start (or resume) the request, run every step not done yet batch by
//! batch, write the report and the audit entry ([`erase_customer`]); and the same for a
//! long-inactive customer, as `DataRetentionCleanup` asks ([`erase_inactive_customer`]).

use std::time::Instant;

use super::{build_report, ErasureContext, ErasureError};
use crate::domain::audit::AuditEntry;
use crate::domain::gdpr::{ErasureRecord, ErasureStatus};
use crate::domain::masking::Masker;
use crate::domain::tenant::TenantId;
use crate::store::{ErasureProgress, ErasureStart, ErasureStep, Store, StoreError};

/// The actor of what an erasure writes (`system:GDPRDataAnonymization`).
const ACTOR: &str = "system:GDPRDataAnonymization";

/// What handling one request did.
#[derive(Debug, Clone, PartialEq)]
pub enum ErasureOutcome {
    /// Erased now (possibly resuming an earlier attempt); the completed record with its report.
    Completed(ErasureRecord),
    /// This request had completed before: nothing done.
    AlreadyCompleted(ErasureRecord),
    /// Another request erased the customer: nothing done.
    CustomerAlreadyErased { erased_by: Option<String> },
}

/// Erases the customer of `request` (see the module doc of [`crate::erasure`]).
pub async fn erase_customer(
    store: &dyn Store,
    context: &ErasureContext,
    tenant: &TenantId,
    request: ErasureRecord,
    correlation_id: &str,
) -> Result<ErasureOutcome, ErasureError> {
    let request_id = request.id.clone();
    let customer_id = request.customer_id.clone();
    let key = context.pseudonym_key()?;
    let start = store
        .start_erasure(tenant, request)
        .await
        .map_err(|source| match source {
            StoreError::NotFound => ErasureError::CustomerMissing {
                tenant: tenant.to_string(),
                customer_id: customer_id.clone(),
            },
            StoreError::Conflict(reason) => ErasureError::Conflict {
                request_id: request_id.clone(),
                reason,
            },
            source => ErasureError::Store {
                request_id: request_id.clone(),
                step: "start",
                source,
            },
        })?;
    let (record, progress) = match start {
        ErasureStart::Run { record, progress } => (record, progress),
        ErasureStart::AlreadyCompleted(record) => {
            return Ok(ErasureOutcome::AlreadyCompleted(record))
        }
        ErasureStart::CustomerAlreadyErased { erased_by } => {
            return Ok(ErasureOutcome::CustomerAlreadyErased { erased_by })
        }
    };
    let masker = Masker::new(key, tenant.as_str(), &customer_id, &[]);
    let progress = run_steps(store, context, tenant, &record.id, &masker, progress).await?;
    let report = build_report(store.backend(), &record, &masker, &progress);
    let audit = AuditEntry::now(
        tenant.as_str(),
        ACTOR,
        "gdpr.erasure.completed",
        "erasureRequest",
        &record.id,
        correlation_id,
    )
    .about_customer(&masker.customer_pseudonym());
    let (completed, first) = store
        .finish_erasure(tenant, &record.id, report, audit)
        .await
        .map_err(|source| ErasureError::Store {
            request_id: record.id.clone(),
            step: "finish",
            source,
        })?;
    tracing::info!(request_id = %completed.id, tenant = %tenant, first, "erasure completed");
    Ok(if first {
        ErasureOutcome::Completed(completed)
    } else {
        ErasureOutcome::AlreadyCompleted(completed)
    })
}

/// Erases a long-inactive customer as `DataRetentionCleanup` does: the same rules, steps,
/// report and audit entry, under `request_id` (fixed per customer, so a resumed job run
/// continues the same request), requested by `system:DataRetentionCleanup`.
pub async fn erase_inactive_customer(
    store: &dyn Store,
    context: &ErasureContext,
    tenant: &TenantId,
    customer_id: &str,
    request_id: &str,
) -> Result<ErasureOutcome, ErasureError> {
    let at = crate::domain::now();
    let request = ErasureRecord {
        id: request_id.to_owned(),
        tenant_id: tenant.as_str().to_owned(),
        customer_id: customer_id.to_owned(),
        requested_by: crate::jobs::erasure::RETENTION_REQUESTER.to_owned(),
        status: ErasureStatus::Accepted,
        requested_at: at,
        updated_at: at,
        queued_at: None,
        report: None,
    };
    erase_customer(store, context, tenant, request, request_id).await
}

/// Runs every step not done yet, batch by batch.
async fn run_steps(
    store: &dyn Store,
    context: &ErasureContext,
    tenant: &TenantId,
    request_id: &str,
    masker: &Masker,
    mut progress: ErasureProgress,
) -> Result<ErasureProgress, ErasureError> {
    for step in ErasureStep::ALL {
        while !progress.is_done(step) {
            let batch = match step {
                ErasureStep::QueuedMessages => {
                    scrub_queued_messages(store, context, tenant, request_id, masker).await
                }
                _ => {
                    store
                        .erase_batch(tenant, request_id, step, masker, context.batch_size())
                        .await
                }
            };
            progress = batch.map_err(|source| ErasureError::Store {
                request_id: request_id.to_owned(),
                step: step.as_str(),
                source,
            })?;
        }
        tracing::debug!(request_id, step = step.as_str(), "erasure step done");
    }
    Ok(progress)
}

/// The `queuedMessages` step: the installed scrubber deletes the messages (none without one),
/// then the store commits the count with the progress marker. A crash between the two loses
/// the count (the messages are gone, the retry finds none), never doubles it.
async fn scrub_queued_messages(
    store: &dyn Store,
    context: &ErasureContext,
    tenant: &TenantId,
    request_id: &str,
    masker: &Masker,
) -> crate::store::StoreResult<ErasureProgress> {
    let started = Instant::now();
    let scrubbed = match context.queued_messages() {
        Some(scrubber) => scrubber.scrub(masker, request_id).await?,
        None => 0,
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    store
        .record_queued_messages(tenant, request_id, masker, scrubbed, elapsed_ms)
        .await
}
