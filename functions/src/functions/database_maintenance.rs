//! `DatabaseMaintenance`: timer (Sundays at 03:00 UTC) that removes orphans and expired idempotency keys, runs the storage engine's upkeep and reports what it found.
//!
//! The job itself is [`shared::jobs`] (batches, checkpoint, lease, time budget, dry run);
//! the reply's `ReturnValue` is its report. `handler jobs run DatabaseMaintenance` runs the same job.

use shared::jobs::JobName;
use shared::protocol::InvocationRequest;

use crate::startup::AppState;
use crate::invoke::InvokeFuture;

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(crate::jobs_cli::run_timer(
        state,
        request,
        JobName::DatabaseMaintenance,
    ))
}
