//! `DatabaseMaintenance` (Sundays 03:00 UTC):
//! 1. `orphanOrderItems`: removes order items whose order does not exist;
//! 2. `orphanNotifications`: removes notifications for customers that do not exist (or are
//!    erased: their notifications were to be deleted by the erasure);
//! 3. `expiredIdempotencyKeys`: removes `Idempotency-Key` records older than 24 hours (a
//!    retry after that is a new request);
//! 4. `expiredProcessedEvents`: removes the consumers' processed-event markers (the dedupe
//!    records of `NotificationDispatch`) older than 14 days: Service Bus keeps a message at most
//!    14 days (`defaultMessageTimeToLive`), so no redelivery or relay resend of an event can
//!    come later, and without it the table would grow with every order event forever;
//! 5. `stalledErasures` and 6. `expiredOutboxRecords`: the outbox's upkeep
//!    ([`super::outbox_upkeep`]: stalled erasure requests announced again, expired records
//!    removed);
//! 7. `engine`: the storage engine's upkeep (SQLite: `PRAGMA optimize`, an incremental vacuum,
//!    `PRAGMA integrity_check`), and orders whose customer is missing (reported, never
//!    removed: they are bookkeeping records).
//!
//! Everything it found goes into the report (`counts`, and `findings` for what it only reports).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::store::jobs::{Cursor, Removal};
use crate::store::{Store, StoreResult};

use super::run::Run;
use super::{JobError, StepEnd};

pub(crate) const KEEPS_CHECKPOINT: bool = false;
pub(crate) const STEPS: &[&str] = &[
    "orphanOrderItems",
    "orphanNotifications",
    "expiredIdempotencyKeys",
    "expiredProcessedEvents",
    super::outbox_upkeep::STALLED_ERASURES,
    super::outbox_upkeep::EXPIRED_OUTBOX_RECORDS,
    "engine",
];

/// How long an `Idempotency-Key` is honoured.
pub(crate) const IDEMPOTENCY_KEY_TTL: chrono::Duration = chrono::Duration::hours(24);

/// How long a consumer remembers an event it processed (to ignore a redelivery).
pub(crate) const PROCESSED_EVENT_TTL: chrono::Duration = chrono::Duration::days(14);

/// One kind of removable leftover, found by a keyset scan over all tenants.
#[derive(Debug, Clone, Copy)]
enum Sweep {
    OrderItems,
    Notifications,
    IdempotencyKeys { before: DateTime<Utc> },
    ProcessedEvents { before: DateTime<Utc> },
}

impl Sweep {
    fn step(self) -> &'static str {
        match self {
            Self::OrderItems => STEPS[0],
            Self::Notifications => STEPS[1],
            Self::IdempotencyKeys { .. } => STEPS[2],
            Self::ProcessedEvents { .. } => STEPS[3],
        }
    }

    fn counted_as(self) -> &'static str {
        match self {
            Self::OrderItems => "orphanOrderItemsRemoved",
            Self::Notifications => "orphanNotificationsRemoved",
            Self::IdempotencyKeys { .. } => "expiredIdempotencyKeysRemoved",
            Self::ProcessedEvents { .. } => "expiredProcessedEventsRemoved",
        }
    }

    /// The next leftovers after `after`, as cursors `(tenant, id, line)`.
    async fn scan(
        self,
        store: &dyn Store,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<Cursor>> {
        Ok(match self {
            Self::OrderItems => store
                .scan_orphan_order_items(after, limit)
                .await?
                .into_iter()
                .map(|(tenant, order_id, line)| Cursor {
                    key: tenant,
                    id: order_id,
                    seq: line,
                })
                .collect(),
            Self::Notifications => store
                .scan_orphan_notifications(after, limit)
                .await?
                .into_iter()
                .map(|(t, id)| Cursor::new(t, id))
                .collect(),
            Self::IdempotencyKeys { before } => store
                .scan_expired_idempotency_keys(before, after, limit)
                .await?
                .into_iter()
                .map(|(t, key)| Cursor::new(t, key))
                .collect(),
            // The cursor's id holds consumer and event id, joined by a newline (neither has one).
            Self::ProcessedEvents { before } => store
                .scan_expired_processed_events(before, after, limit)
                .await?
                .into_iter()
                .map(|(tenant, consumer, event)| {
                    Cursor::new(tenant, format!("{consumer}\n{event}"))
                })
                .collect(),
        })
    }

    fn removal(self, found: &[Cursor]) -> Removal {
        match self {
            Self::OrderItems => Removal::OrderItems(
                found
                    .iter()
                    .map(|c| (c.key.clone(), c.id.clone(), c.seq))
                    .collect(),
            ),
            Self::Notifications => Removal::NotificationsByKey(
                found
                    .iter()
                    .map(|c| (c.key.clone(), c.id.clone()))
                    .collect(),
            ),
            Self::IdempotencyKeys { .. } => Removal::IdempotencyKeys(
                found
                    .iter()
                    .map(|c| (c.key.clone(), c.id.clone()))
                    .collect(),
            ),
            Self::ProcessedEvents { .. } => Removal::ProcessedEvents(
                found
                    .iter()
                    .filter_map(|c| {
                        c.id.split_once('\n').map(|(consumer, event)| {
                            (c.key.clone(), consumer.to_owned(), event.to_owned())
                        })
                    })
                    .collect(),
            ),
        }
    }
}

fn sweeps(now: DateTime<Utc>) -> [Sweep; 4] {
    [
        Sweep::OrderItems,
        Sweep::Notifications,
        Sweep::IdempotencyKeys {
            before: now - IDEMPOTENCY_KEY_TTL,
        },
        Sweep::ProcessedEvents {
            before: now - PROCESSED_EVENT_TTL,
        },
    ]
}

pub async fn run(run: &mut Run<'_>) -> Result<StepEnd, JobError> {
    let now = crate::domain::now();
    for sweep in sweeps(now) {
        run.progress_step(sweep.step(), None);
        if remove_all(run, sweep).await? == StepEnd::OutOfTime {
            return Ok(StepEnd::OutOfTime);
        }
    }
    if super::outbox_upkeep::requeue_stalled_erasures(run).await? == StepEnd::OutOfTime {
        return Ok(StepEnd::OutOfTime);
    }
    super::outbox_upkeep::purge_expired_records(run).await?;
    if run.out_of_time() {
        return Ok(StepEnd::OutOfTime);
    }
    engine(run).await?;
    Ok(StepEnd::Done)
}

/// Removes every leftover of one kind, batch by batch, each batch with its checkpoint.
async fn remove_all(run: &mut Run<'_>, sweep: Sweep) -> Result<StepEnd, JobError> {
    let step = sweep.step();
    let Some(mut cursor) = run.resume_cursor(step, None) else {
        return Ok(StepEnd::Done);
    };
    let store = run.context.store.clone();
    loop {
        if run.out_of_time() {
            return Ok(StepEnd::OutOfTime);
        }
        let found = sweep
            .scan(store.as_ref(), cursor.clone(), run.batch_size())
            .await
            .map_err(JobError::store(step))?;
        let Some(last) = found.last().cloned() else {
            return Ok(StepEnd::Done);
        };
        let mut per_tenant: BTreeMap<String, u64> = BTreeMap::new();
        for item in &found {
            *per_tenant.entry(item.key.clone()).or_insert(0) += 1;
        }
        if !run.dry_run {
            let mut checkpoint = run.checkpoint(step, None);
            checkpoint.cursor = Some(last.clone());
            let fence = run.fence(Some(&checkpoint));
            store
                .remove_rows(sweep.removal(&found), fence)
                .await
                .map_err(JobError::store(step))?;
        }
        for (tenant, count) in per_tenant {
            run.report.add(&tenant, sweep.counted_as(), count);
        }
        run.advance(found.len());
        cursor = Some(last);
    }
}

/// How old an unfinished order creation's stock reservation must be before maintenance settles
/// it: far longer than any call may take (`COSMOS_TIMEOUT_MS` is at most 2 minutes), so a write
/// still in flight has landed or failed by then.
const STOCK_RESERVATION_GRACE: chrono::Duration = chrono::Duration::minutes(15);

/// The engine's upkeep and what is only reported.
async fn engine(run: &mut Run<'_>) -> Result<(), JobError> {
    const STEP: &str = "engine";
    run.progress_step(STEP, None);
    let store = run.context.store.clone();
    let settled = store
        .settle_stock_reservations(crate::domain::now() - STOCK_RESERVATION_GRACE, run.dry_run)
        .await
        .map_err(JobError::store(STEP))?;
    for (tenant, count) in settled {
        run.report.add(&tenant, "stockReservationsSettled", count);
    }
    let orphans = store
        .count_orders_without_customer()
        .await
        .map_err(JobError::store(STEP))?;
    if !orphans.is_empty() {
        let per_tenant: BTreeMap<String, u64> = orphans.into_iter().collect();
        run.report
            .findings
            .insert("ordersWithoutCustomer".into(), json!(per_tenant));
    }
    let engine = store
        .maintain_engine(run.dry_run)
        .await
        .map_err(JobError::store(STEP))?;
    if engine.integrity != ["ok"] {
        tracing::error!(
            problems = engine.integrity.len(),
            "the database integrity check found problems"
        );
    }
    run.report.findings.insert("engine".into(), json!(engine));
    Ok(())
}

/// Counts the leftovers still there (a dry scan), per kind.
pub(crate) async fn count_left(run: &mut Run<'_>) -> Result<(), JobError> {
    let store = run.context.store.clone();
    for sweep in sweeps(crate::domain::now()) {
        let mut cursor = None;
        let mut left = 0;
        loop {
            let found = sweep
                .scan(store.as_ref(), cursor, 10_000)
                .await
                .map_err(JobError::store("count"))?;
            left += found.len() as u64;
            match found.last() {
                Some(last) => cursor = Some(last.clone()),
                None => break,
            }
        }
        run.report.leave(sweep.step(), left);
    }
    Ok(())
}
