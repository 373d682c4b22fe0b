//! The erasure port: erasing one customer across the store, in resumable steps.
//!
//! An erasure runs as [`ErasureStep::ALL`] in order, each step in bounded batches. Every batch
//! commits its effect together with the request's durable progress marker (per step: done or
//! not, counts, keyset cursor, time spent), so a crash at any moment loses nothing and a
//! re-delivery resumes where the last committed batch ended, counting nothing twice. What each
//! step does to each field comes from the masking rules ([`crate::domain::masking`]), applied
//! by the adapter through the [`Masker`] it is given.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::domain::audit::AuditEntry;
use crate::domain::gdpr::ErasureRecord;
use crate::domain::masking::Masker;
use crate::domain::tenant::TenantId;

/// One step of an erasure, in the order they run. The profile comes last: until it is done
/// the customer stays `erasureRequested` (read-only, no new orders or notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErasureStep {
    /// Shipping addresses masked, status-change actors pseudonymised and reasons destroyed.
    Orders,
    /// Payments keep their financial facts; the payer is removed, the payment source
    /// pseudonymised, refund reasons removed, and each is marked erased with the rule version.
    Payments,
    /// Shipments keep the carrier's references and the status; the label URL (the label shows
    /// the name and address) is removed and each is marked erased.
    Shipments,
    IdempotencyKeys,
    Notifications,
    ProcessedEvents,
    AuditEntries,
    /// Consent records keep the proof (purpose, decision, notice version, channel, time); the
    /// customer's id and their own subject as recorder become the keyed pseudonym.
    Consents,
    /// Queued messages about the customer: deleted by the erasure's
    /// [`crate::erasure::QueuedMessageScrubber`] (local mode's embedded queue; none in Azure),
    /// counted by the store ([`ErasureStore::record_queued_messages`]).
    QueuedMessages,
    /// The profile masked; status `erased`; the notification preferences deleted.
    Profile,
}

impl ErasureStep {
    pub const ALL: [Self; 10] = [
        Self::Orders,
        Self::Payments,
        Self::Shipments,
        Self::IdempotencyKeys,
        Self::Notifications,
        Self::ProcessedEvents,
        Self::AuditEntries,
        Self::Consents,
        Self::QueuedMessages,
        Self::Profile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Payments => "payments",
            Self::Shipments => "shipments",
            Self::IdempotencyKeys => "idempotencyKeys",
            Self::Notifications => "notifications",
            Self::ProcessedEvents => "processedEvents",
            Self::AuditEntries => "auditEntries",
            Self::Consents => "consents",
            Self::QueuedMessages => "queuedMessages",
            Self::Profile => "profile",
        }
    }
}

/// Progress of one step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepProgress {
    pub done: bool,
    /// Records changed or deleted, per table.
    pub counts: BTreeMap<String, u64>,
    /// The last key processed, for steps that walk records in key order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub batches: u64,
    /// Time spent in this step's batches (excluding any time the process was down).
    pub elapsed_ms: f64,
}

/// What one batch of a step did, as an adapter reports it to be recorded in the step's
/// [`StepProgress`] (with [`StepProgress::record_batch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchOutcome {
    /// Records changed or deleted, per table.
    pub counts: Vec<(&'static str, u64)>,
    /// Where the next batch starts (`None`: the step keeps no position).
    pub cursor: Option<String>,
    /// Nothing is left for this step.
    pub done: bool,
}

impl BatchOutcome {
    /// A step done in one go.
    pub fn finished(table: &'static str, count: u64) -> Self {
        Self {
            counts: vec![(table, count)],
            cursor: None,
            done: true,
        }
    }

    /// A delete of up to `limit` records: done when fewer were left.
    pub fn deleted(table: &'static str, count: usize, limit: usize) -> Self {
        Self {
            counts: vec![(table, count as u64)],
            cursor: None,
            done: count < limit,
        }
    }
}

impl StepProgress {
    /// Adds one batch that took `elapsed_ms`: its counts are added, its cursor replaces the
    /// step's, its `done` is the step's.
    pub(crate) fn record_batch(&mut self, batch: BatchOutcome, elapsed_ms: f64) {
        for (table, count) in batch.counts {
            *self.counts.entry(table.to_owned()).or_insert(0) += count;
        }
        self.cursor = batch.cursor;
        self.done = batch.done;
        self.batches += 1;
        self.elapsed_ms += elapsed_ms;
    }
}

/// The durable progress of an erasure request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureProgress {
    pub started_at: DateTime<Utc>,
    /// How many times the erasure was started (more than 1: it resumed after a failure).
    pub attempts: u32,
    pub steps: BTreeMap<ErasureStep, StepProgress>,
}

impl ErasureProgress {
    pub fn new(started_at: DateTime<Utc>) -> Self {
        Self {
            started_at,
            attempts: 0,
            steps: BTreeMap::new(),
        }
    }

    pub fn is_done(&self, step: ErasureStep) -> bool {
        self.steps.get(&step).is_some_and(|progress| progress.done)
    }

    /// Counts per table over every step.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for step in self.steps.values() {
            for (table, count) in &step.counts {
                *totals.entry(table.clone()).or_insert(0) += count;
            }
        }
        totals
    }
}

/// Where an erasure request stands when a delivery of it starts.
#[derive(Debug, Clone, PartialEq)]
pub enum ErasureStart {
    /// Go on: the steps not done yet remain (after a crash, some are done already).
    Run {
        record: ErasureRecord,
        progress: ErasureProgress,
    },
    /// This request completed before: no second effect, no second report.
    AlreadyCompleted(ErasureRecord),
    /// Another request erased the customer already; this one changes nothing.
    CustomerAlreadyErased { erased_by: Option<String> },
}

#[async_trait::async_trait]
pub trait ErasureStore: Send + Sync {
    /// Starts (or resumes) the request `request.id`: creates its record when it is missing
    /// (an operator sent the message directly), marks it `inProgress` and the customer
    /// `erasureRequested`. `NotFound` when the customer does not exist; `Conflict` when the
    /// stored request names another customer.
    async fn start_erasure(
        &self,
        tenant: &TenantId,
        request: ErasureRecord,
    ) -> StoreResult<ErasureStart>;

    /// Runs one batch (at most `batch_size` records) of `step` and commits it with the
    /// progress marker; the progress after it (the step is `done` when nothing is left).
    async fn erase_batch(
        &self,
        tenant: &TenantId,
        request_id: &str,
        step: ErasureStep,
        masker: &Masker,
        batch_size: usize,
    ) -> StoreResult<ErasureProgress>;

    /// Commits the `queuedMessages` step as done with `scrubbed` messages counted (deleted
    /// outside the store by the erasure's [`crate::erasure::QueuedMessageScrubber`]) and
    /// `elapsed_ms` spent, with the progress marker. A step already done is left as it is, so a
    /// redelivery counts nothing twice. ([`Self::erase_batch`] of that step commits 0.)
    async fn record_queued_messages(
        &self,
        tenant: &TenantId,
        request_id: &str,
        masker: &Masker,
        scrubbed: u64,
        elapsed_ms: f64,
    ) -> StoreResult<ErasureProgress>;

    /// Re-announces requests still `accepted` whose message was last queued before `cutoff`
    /// (or never): for each, atomically, its message is written to the outbox again, its
    /// `queuedAt` set to `now` and an audit entry appended. At most `limit`; returns them.
    async fn requeue_stalled_erasures(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> StoreResult<Vec<ErasureRecord>>;

    /// Stores the report, marks the request `completed` and appends `audit`, atomically.
    /// `false` when the request was completed already (nothing written).
    async fn finish_erasure(
        &self,
        tenant: &TenantId,
        request_id: &str,
        report: serde_json::Value,
        audit: AuditEntry,
    ) -> StoreResult<(ErasureRecord, bool)>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_adds_its_counts_and_replaces_the_cursor() {
        let mut step = StepProgress::default();
        step.record_batch(
            BatchOutcome {
                counts: vec![("orders", 2)],
                cursor: Some("o-2".into()),
                done: false,
            },
            1.5,
        );
        step.record_batch(
            BatchOutcome {
                counts: vec![("orders", 1)],
                cursor: None,
                done: true,
            },
            2.0,
        );
        assert_eq!(step.counts.get("orders"), Some(&3));
        assert_eq!(step.cursor, None);
        assert!(step.done);
        assert_eq!(step.batches, 2);
        assert_eq!(step.elapsed_ms, 3.5);
    }

    #[test]
    fn a_delete_is_done_when_fewer_than_the_limit_were_left() {
        assert!(!BatchOutcome::deleted("notifications", 10, 10).done);
        assert!(BatchOutcome::deleted("notifications", 3, 10).done);
        assert!(BatchOutcome::finished("customers", 1).done);
    }
}
