//! `NotificationCleanup`: timer (daily at 01:00 UTC) that removes read notifications older than the retention, archiving a summary (counts per tenant and day) first.
//!
//! The job itself is [`shared::jobs`] (batches, checkpoint, lease, time budget, dry run);
//! the reply's `ReturnValue` is its report. `handler jobs run NotificationCleanup` runs the same job.

use shared::jobs::JobName;
use shared::protocol::InvocationRequest;

use crate::startup::AppState;
use crate::invoke::InvokeFuture;

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(crate::jobs_cli::run_timer(
        state,
        request,
        JobName::NotificationCleanup,
    ))
}
