//! `DataRetentionCleanup`: timer (daily at 02) that 00 UTC:deletes old notifications, anonymises long-inactive customers and archives old audit entries.
//!
//! Not implemented yet: the job lands with issue 4. Until then the timer input is parsed and
//! the run succeeds saying that nothing was changed.

use shared::protocol::InvocationRequest;

use crate::app::AppState;
use crate::invoke::InvokeFuture;

pub fn invoke(_state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { super::pending::timer(&request, "DataRetentionCleanup", 4) })
}
