//! The hook through which an erasure deletes queued messages about the customer: the
//! `queuedMessages` step. Only local mode installs one (its embedded queue keeps messages in
//! `DATA_DIR`); in Azure, Service Bus holds the messages and nothing is scrubbed (the step
//! counts 0).

use crate::domain::masking::Masker;
use crate::store::StoreResult;

/// Deletes queued messages about one customer.
#[async_trait::async_trait]
pub trait QueuedMessageScrubber: Send + Sync {
    /// Deletes the queued messages (any entity, active or dead-lettered) whose JSON body is
    /// about the masker's customer of its tenant, except those of the erasure request
    /// `request_id` (its delivery completes normally); how many. A second call finds none.
    async fn scrub(&self, masker: &Masker, request_id: &str) -> StoreResult<u64>;
}
