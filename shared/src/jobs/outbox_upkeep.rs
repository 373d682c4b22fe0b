//! `DatabaseMaintenance`'s outbox steps:
//!
//! - `stalledErasures`: erasure requests still `accepted` long after their message was queued
//!   (`ERASURE_REQUEUE_AFTER_MINUTES`, [`super::JobContext::erasure_requeue_after`]) are announced
//!   again through the outbox, with the same `MessageId` (the request id): a message that never
//!   reached the queue is sent, one that did is dropped by duplicate detection or finds the
//!   request started. Each is counted (`erasureRequestsRequeued`) and audited; the record's
//!   `queuedAt` shows when. Not done in a dry run.
//! - `expiredOutboxRecords`: records whose TTL ran out are removed (SQLite; Cosmos DB's TTL
//!   removes them there). A record removed unrelayed is a message that was never sent: it is
//!   counted (`expiredOutboxRecordsRemoved`) and logged as an error.

use super::run::Run;
use super::{JobError, StepEnd};

pub(crate) const STALLED_ERASURES: &str = "stalledErasures";
pub(crate) const EXPIRED_OUTBOX_RECORDS: &str = "expiredOutboxRecords";

/// Re-announces stalled erasure requests, batch by batch, until none is left or time is up.
pub(crate) async fn requeue_stalled_erasures(run: &mut Run<'_>) -> Result<StepEnd, JobError> {
    run.progress_step(STALLED_ERASURES, None);
    if run.dry_run {
        return Ok(StepEnd::Done);
    }
    let store = run.context.store.clone();
    let now = crate::domain::now();
    let after = chrono::Duration::from_std(run.context.erasure_requeue_after)
        .unwrap_or(chrono::Duration::MAX);
    let cutoff = now - after;
    loop {
        if run.out_of_time() {
            return Ok(StepEnd::OutOfTime);
        }
        let limit = run.batch_size() as usize;
        let requeued = store
            .requeue_stalled_erasures(cutoff, now, limit)
            .await
            .map_err(JobError::store(STALLED_ERASURES))?;
        for record in &requeued {
            tracing::warn!(request_id = %record.id, tenant_id = %record.tenant_id, requested_at = %record.requested_at, "an erasure request was still accepted; announced again");
            run.report
                .add(&record.tenant_id, "erasureRequestsRequeued", 1);
        }
        run.advance(requeued.len());
        if requeued.len() < limit {
            return Ok(StepEnd::Done);
        }
    }
}

/// Removes expired outbox records (counted per tenant, and logged: they were never sent).
pub(crate) async fn purge_expired_records(run: &mut Run<'_>) -> Result<StepEnd, JobError> {
    run.progress_step(EXPIRED_OUTBOX_RECORDS, None);
    let store = run.context.store.clone();
    let removed = store
        .purge_expired_outbox(crate::domain::now(), run.dry_run)
        .await
        .map_err(JobError::store(EXPIRED_OUTBOX_RECORDS))?;
    for (tenant, count) in removed {
        tracing::error!(tenant_id = %tenant, count, "outbox records expired before the relay sent them");
        run.report
            .add(&tenant, "expiredOutboxRecordsRemoved", count);
    }
    Ok(StepEnd::Done)
}
