//! `DataRetentionCleanup`: timer (daily at 02:00 UTC) that deletes old notifications, erases long-inactive customers and archives, then removes, old audit entries.
//!
//! The job itself is [`shared::jobs`] (batches, checkpoint, lease, time budget, dry run);
//! the reply's `ReturnValue` is its report. `handler jobs run DataRetentionCleanup` runs the same job.

use shared::jobs::JobName;
use shared::protocol::InvocationRequest;

use crate::startup::AppState;
use crate::invoke::InvokeFuture;

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(crate::jobs_cli::run_timer(
        state,
        request,
        JobName::DataRetentionCleanup,
    ))
}
