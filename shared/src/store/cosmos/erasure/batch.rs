//! One batch of a step: planned from a fresh read of the request's progress, committed as one
//! transactional batch with the progress marker, planned again (a bounded number of times)
//! when a concurrent change refused it.

use std::time::Instant;

use azure_data_cosmos::TransactionalBatch;

use super::super::support::{
    attempt_of, batch_replace, busy, pk, Attempt, CONCURRENCY_ATTEMPTS, MAX_BATCH_OPERATIONS,
};
use super::super::CosmosStore;
use super::deletion::{IDEMPOTENCY_KEYS, NOTIFICATIONS, PROCESSED_EVENTS};
use crate::domain::gdpr::ErasureStatus;
use crate::domain::masking::{record_action, Entity, Masker, RecordAction};
use crate::domain::now;
use crate::domain::tenant::TenantId;
use crate::store::erasure::BatchOutcome as StepOutcome;
use crate::store::{ErasureProgress, ErasureStep, StoreError, StoreResult};

/// Operations one erasure batch holds at most (one fewer than the service allows, kept spare).
pub(super) const BATCH_OPERATIONS: usize = MAX_BATCH_OPERATIONS - 1;

/// Operations of every erasure batch that are not the step's own: the progress marker.
pub(super) const BOOKKEEPING_OPERATIONS: usize = 1;

/// One call of `erase_batch`, and what it carries across its tries.
pub(super) struct BatchCall<'a> {
    pub(super) request_id: &'a str,
    pub(super) step: ErasureStep,
    pub(super) masker: &'a Masker,
    /// Records one batch takes.
    pub(super) capacity: usize,
    pub(super) started: Instant,
    /// The queued messages the erasure's scrubber deleted (the `queuedMessages` step's count).
    pub(super) scrubbed: u64,
    /// The progress the first try read.
    pub(super) seen: Option<ErasureProgress>,
}

/// Queued messages about the customer, deleted by the erasure's scrubber before this step
/// commits their count.
pub(super) fn queued_messages(scrubbed: u64) -> StepOutcome {
    debug_assert_eq!(record_action(Entity::QueuedMessage), RecordAction::Delete);
    StepOutcome::finished("queuedMessages", scrubbed)
}

/// How many records one batch of a step takes.
pub(super) fn step_capacity(batch_size: usize) -> usize {
    batch_size.clamp(1, BATCH_OPERATIONS - BOOKKEEPING_OPERATIONS)
}

impl CosmosStore {
    /// One batch of the call's step, planned again (a bounded number of times) when a
    /// concurrent change refused it.
    pub(super) async fn erasure_batch(
        &self,
        tenant: &TenantId,
        mut call: BatchCall<'_>,
    ) -> StoreResult<ErasureProgress> {
        if call.masker.tenant() != tenant.as_str() {
            return Err(StoreError::Conflict(
                "the masker is for another tenant".into(),
            ));
        }
        for _ in 0..CONCURRENCY_ATTEMPTS {
            if let Attempt::Done(progress) = self.erasure_batch_once(tenant, &mut call).await? {
                return Ok(progress);
            }
            tracing::debug!(
                request_id = call.request_id,
                step = call.step.as_str(),
                "erasure batch refused by a concurrent change; planning it again"
            );
        }
        Err(busy("erasure request"))
    }

    /// One try of one batch: plans it from a fresh read and commits it with the progress.
    pub(super) async fn erasure_batch_once(
        &self,
        tenant: &TenantId,
        call: &mut BatchCall<'_>,
    ) -> StoreResult<Attempt<ErasureProgress>> {
        let mut doc = self
            .erasure_of(tenant, call.masker.customer_id(), call.request_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut progress = doc
            .body
            .progress
            .take()
            .unwrap_or_else(|| ErasureProgress::new(now()));
        if doc.body.record.status == ErasureStatus::Completed || progress.is_done(call.step) {
            return Ok(Attempt::Done(progress));
        }
        match &call.seen {
            // Another delivery committed a batch since this call's first read: that batch is
            // the one this call would have run (the caller asks again while not done).
            Some(seen) if *seen != progress => return Ok(Attempt::Done(progress)),
            Some(_) => {}
            None => call.seen = Some(progress.clone()),
        }
        let mut entry = progress.steps.remove(&call.step).unwrap_or_default();
        let batch = TransactionalBatch::new(pk(tenant.as_str(), &doc.scope));
        let (batch, outcome) = self
            .erasure_plan_step(tenant, &doc.scope, entry.cursor.as_deref(), batch, call)
            .await?;
        entry.record_batch(outcome, call.started.elapsed().as_secs_f64() * 1000.0);
        progress.steps.insert(call.step, entry);
        doc.body.record.status = ErasureStatus::InProgress;
        doc.body.record.updated_at = now();
        doc.body.progress = Some(progress.clone());
        let batch = batch_replace(self, batch, &doc)?;
        attempt_of(self.run_batch(self.data(), batch).await?, progress)
    }

    /// Adds the writes of one batch of the call's step to `batch`; what the batch did.
    pub(super) async fn erasure_plan_step(
        &self,
        tenant: &TenantId,
        scope: &str,
        cursor: Option<&str>,
        batch: TransactionalBatch,
        call: &mut BatchCall<'_>,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        let (masker, limit) = (call.masker, call.capacity);
        match call.step {
            ErasureStep::Orders => {
                self.erasure_mask_orders(
                    tenant.as_str(),
                    scope,
                    masker,
                    limit,
                    cursor.unwrap_or_default(),
                    batch,
                )
                .await
            }
            ErasureStep::Payments => {
                self.erasure_mask_payments(tenant.as_str(), scope, masker, limit, batch)
                    .await
            }
            ErasureStep::IdempotencyKeys => {
                self.erasure_delete_records(
                    tenant.as_str(),
                    scope,
                    masker,
                    &IDEMPOTENCY_KEYS,
                    limit,
                    batch,
                )
                .await
            }
            ErasureStep::Notifications => {
                self.erasure_delete_records(
                    tenant.as_str(),
                    scope,
                    masker,
                    &NOTIFICATIONS,
                    limit,
                    batch,
                )
                .await
            }
            ErasureStep::ProcessedEvents => {
                self.erasure_delete_records(
                    tenant.as_str(),
                    scope,
                    masker,
                    &PROCESSED_EVENTS,
                    limit,
                    batch,
                )
                .await
            }
            ErasureStep::AuditEntries => {
                self.erasure_mask_audit(tenant, scope, masker, limit, cursor, batch)
                    .await
            }
            ErasureStep::Consents => {
                self.erasure_mask_consents(tenant.as_str(), scope, masker, limit, batch)
                    .await
            }
            ErasureStep::Shipments => {
                self.erasure_mask_shipments(tenant.as_str(), scope, masker, limit, batch)
                    .await
            }
            ErasureStep::QueuedMessages => Ok((batch, queued_messages(call.scrubbed))),
            ErasureStep::Profile => {
                self.erasure_mask_profile(tenant.as_str(), masker, batch)
                    .await
            }
        }
    }
}
