//! Cosmos DB adapter of [`ErasureStore`]: a customer's erasure, batch by batch, each batch one
//! transactional batch in the customer's partition carrying the step's effect and the request's
//! progress marker (the [`ErasureDoc`](super::doc::ErasureDoc) `erasure:{requestId}`), so a
//! crash at any moment loses nothing and a redelivery counts nothing twice.
//!
//! Every step selects the customer's documents in their partition and applies the masking
//! rules ([`crate::domain::masking::RULES`]) through the [`Masker`] to the documents' JSON
//! bodies: records of entities with a `*` destroy rule are deleted, the others rewritten, with
//! the same per-table counts as the SQLite adapter. Where the service differs from a SQLite
//! transaction:
//!
//! - a transactional batch holds at most 100 operations, so one batch of a step takes at most
//!   `min(batch_size, 99 - bookkeeping)` records (a step may take more batches than in SQLite;
//!   the counts are the same);
//! - writes are optimistic (if-match on each document's `_etag`): a batch refused because
//!   someone changed, created or removed a document meanwhile (412, 409, 404) is planned again
//!   from a fresh read, a bounded number of times, where SQLite would have serialised; if the
//!   fresh read shows that another delivery of the request committed a batch meanwhile, that
//!   batch stands for this call's (it returns the progress after it; the caller asks again
//!   while the step is not done);
//! - audit entries naming the customer outside their partition (the rules mask them wherever
//!   they are) cannot join the batch: a batch selects and counts them with its progress, and
//!   the next batch of the step masks them (idempotently) before selecting more, so the step
//!   is done only once they are masked;
//! - queued messages are not the store's: the erasure's scrubber deletes them first
//!   (`crate::erasure::QueuedMessageScrubber`) and the store commits their count with the
//!   progress ([`ErasureStore::record_queued_messages`]).
//!
//! The parts: [`request`] (the request document), [`batch`] (one batch of a step), one file
//! per kind of step: [`order_masking`], [`payment_masking`], [`deletion`], [`audit`], [`profile`], and [`requeue`]
//! (re-announcing requests whose message was not acted on).

mod audit;
mod batch;
mod consents;
mod deletion;
mod order_masking;
mod payment_masking;
mod profile;
mod request;
mod requeue;
#[cfg(all(test, feature = "cosmos-emulator"))]
mod tests;

use std::time::Instant;

use serde_json::Value;

use super::support::{busy, Attempt, CONCURRENCY_ATTEMPTS};
use super::{CosmosStore, BACKEND};
use crate::domain::audit::AuditEntry;
use crate::domain::gdpr::ErasureRecord;
use crate::domain::masking::Masker;
use crate::domain::tenant::TenantId;
use crate::store::{
    ErasureProgress, ErasureStart, ErasureStep, ErasureStore, StoreError, StoreResult,
};

use batch::{step_capacity, BatchCall};

/// A stored document of the erasure that does not have the shape this build reads.
fn undecodable(what: &str, error: &serde_json::Error) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        reason: format!("{what}: unexpected shape: {error}"),
    }
}

#[async_trait::async_trait]
impl ErasureStore for CosmosStore {
    async fn start_erasure(
        &self,
        tenant: &TenantId,
        request: ErasureRecord,
    ) -> StoreResult<ErasureStart> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            if let Attempt::Done(start) = self.erasure_start_once(tenant, &request).await? {
                return Ok(start);
            }
        }
        Err(busy("erasure request"))
    }

    async fn erase_batch(
        &self,
        tenant: &TenantId,
        request_id: &str,
        step: ErasureStep,
        masker: &Masker,
        batch_size: usize,
    ) -> StoreResult<ErasureProgress> {
        let call = BatchCall {
            request_id,
            step,
            masker,
            capacity: step_capacity(batch_size),
            started: Instant::now(),
            scrubbed: 0,
            seen: None,
        };
        self.erasure_batch(tenant, call).await
    }

    async fn record_queued_messages(
        &self,
        tenant: &TenantId,
        request_id: &str,
        masker: &Masker,
        scrubbed: u64,
        elapsed_ms: f64,
    ) -> StoreResult<ErasureProgress> {
        let now = Instant::now();
        let call = BatchCall {
            request_id,
            step: ErasureStep::QueuedMessages,
            masker,
            capacity: step_capacity(1),
            started: now
                .checked_sub(std::time::Duration::from_secs_f64(
                    elapsed_ms.max(0.0) / 1000.0,
                ))
                .unwrap_or(now),
            scrubbed,
            seen: None,
        };
        self.erasure_batch(tenant, call).await
    }

    async fn requeue_stalled_erasures(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> StoreResult<Vec<ErasureRecord>> {
        self.requeue_stalled(cutoff, now, limit).await
    }

    async fn finish_erasure(
        &self,
        tenant: &TenantId,
        request_id: &str,
        report: Value,
        audit: AuditEntry,
    ) -> StoreResult<(ErasureRecord, bool)> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            if let Attempt::Done(finished) = self
                .erasure_finish_once(tenant, request_id, &report, &audit)
                .await?
            {
                return Ok(finished);
            }
        }
        Err(busy("erasure request"))
    }
}
