//! SQLite adapter of [`ErasureStore`]: a customer's erasure, batch by batch, each batch
//! committed in one transaction with the request's progress marker (`erasure_requests.progress`).
//!
//! Every step selects the customer's records by index and applies the masking rules
//! ([`crate::domain::masking::RULES`]) through the [`Masker`]: records of entities with a `*`
//! destroy rule are deleted, others have their fields rewritten from the rules. Steps that
//! delete, or whose rewrite removes the record from the selection (keyed hashes), are
//! naturally resumable; the order step walks by a keyset cursor kept in the progress.

use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{json, Value};

use super::customers::load_customer;
use super::support::{insert_audit, new_etag, now, optional_json_at, to_json, ts};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::customer::CustomerStatus;
use crate::domain::gdpr::{ErasureRecord, ErasureStatus};
use crate::domain::masking::{record_action, Entity, Masker, RecordAction};
use crate::domain::tenant::TenantId;
use crate::store::erasure::BatchOutcome;
use crate::store::{
    ErasureProgress, ErasureStart, ErasureStep, ErasureStore, StoreError, StoreResult,
};

const COLUMNS: &str = "tenant_id, id, customer_id, requested_by, status, requested_at, updated_at, report, queued_at, progress";

/// An erasure request and its progress; the first columns are those `customers` reads.
fn record_from_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(ErasureRecord, Option<ErasureProgress>)> {
    Ok((
        super::customers::erasure_from_row(row)?,
        optional_json_at(row, 9)?,
    ))
}

fn load_record(
    conn: &Connection,
    tenant: &str,
    id: &str,
) -> rusqlite::Result<Option<(ErasureRecord, Option<ErasureProgress>)>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM erasure_requests WHERE tenant_id = ?1 AND id = ?2"
    ))?
    .query_row(params![tenant, id], record_from_row)
    .optional()
}

/// The completed request that erased `customer_id`, if any.
fn erased_by(
    conn: &Connection,
    tenant: &str,
    customer_id: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT id FROM erasure_requests WHERE tenant_id = ?1 AND customer_id = ?2 AND status = 'completed' AND report IS NOT NULL
          ORDER BY updated_at DESC LIMIT 1",
    )?
    .query_row(params![tenant, customer_id], |row| row.get(0))
    .optional()
}

fn save_progress(
    conn: &Connection,
    tenant: &str,
    id: &str,
    status: ErasureStatus,
    progress: &ErasureProgress,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE erasure_requests SET status = ?3, progress = ?4, updated_at = ?5 WHERE tenant_id = ?1 AND id = ?2",
        params![tenant, id, status.as_str(), to_json(progress), ts(now())],
    )?;
    Ok(())
}

fn start_in(
    tx: &Transaction<'_>,
    tenant: &str,
    request: &ErasureRecord,
) -> rusqlite::Result<StoreResult<ErasureStart>> {
    let existing = load_record(tx, tenant, &request.id)?;
    if let Some((record, _)) = &existing {
        if record.customer_id != request.customer_id {
            return Ok(Err(StoreError::Conflict(format!(
                "erasure request {} is for another customer",
                record.id
            ))));
        }
        if record.status == ErasureStatus::Completed {
            return Ok(Ok(ErasureStart::AlreadyCompleted(record.clone())));
        }
    }
    let Some(customer) = load_customer(tx, tenant, &request.customer_id).optional()? else {
        return Ok(Err(StoreError::NotFound));
    };
    let started = existing
        .as_ref()
        .is_some_and(|(record, _)| record.status != ErasureStatus::Accepted);
    if customer.status == CustomerStatus::Erased && !started {
        if let Some((record, _)) = &existing {
            // A second request queued for a customer another request erased: closed, no report.
            tx.execute(
                "UPDATE erasure_requests SET status = 'completed', updated_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, record.id, ts(now())],
            )?;
        }
        return Ok(Ok(ErasureStart::CustomerAlreadyErased {
            erased_by: erased_by(tx, tenant, &customer.id)?,
        }));
    }
    let (mut record, progress) = match existing {
        Some((record, progress)) => (record, progress),
        None => {
            tx.execute(
                &format!("INSERT INTO erasure_requests ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, 'inProgress', ?5, ?6, NULL, NULL, NULL)"),
                params![tenant, request.id, request.customer_id, request.requested_by, ts(request.requested_at), ts(now())],
            )?;
            (request.clone(), None)
        }
    };
    let mut progress = progress.unwrap_or_else(|| ErasureProgress::new(now()));
    progress.attempts += 1;
    record.status = ErasureStatus::InProgress;
    save_progress(tx, tenant, &record.id, record.status, &progress)?;
    if customer.status == CustomerStatus::Active {
        tx.execute(
            "UPDATE customers SET status = ?3, etag = ?4 WHERE tenant_id = ?1 AND id = ?2",
            params![
                tenant,
                customer.id,
                CustomerStatus::ErasureRequested.as_str(),
                new_etag()
            ],
        )?;
    }
    Ok(Ok(ErasureStart::Run { record, progress }))
}

fn run_step(
    tx: &Transaction<'_>,
    step: ErasureStep,
    masker: &Masker,
    limit: usize,
    cursor: Option<&str>,
    scrubbed: u64,
) -> rusqlite::Result<BatchOutcome> {
    match step {
        ErasureStep::Orders => mask_orders(tx, masker, limit, cursor.unwrap_or("")),
        ErasureStep::Payments => super::payments::erase_payments(tx, masker, limit),
        ErasureStep::Shipments => super::shipments::erase_shipments(tx, masker, limit),
        ErasureStep::IdempotencyKeys => delete_idempotency_keys(tx, masker, limit),
        ErasureStep::Notifications => delete_notifications(tx, masker, limit),
        ErasureStep::ProcessedEvents => delete_processed_events(tx, masker, limit),
        ErasureStep::AuditEntries => mask_audit(tx, masker, limit),
        ErasureStep::Consents => mask_consents(tx, masker, limit),
        ErasureStep::QueuedMessages => Ok(queued_messages(scrubbed)),
        ErasureStep::Profile => mask_profile(tx, masker),
    }
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Orders keep their bookkeeping facts; the shipping address and the status history are
/// masked. Walks the customer's orders by id from `after`.
fn mask_orders(
    tx: &Transaction<'_>,
    masker: &Masker,
    limit: usize,
    after: &str,
) -> rusqlite::Result<BatchOutcome> {
    debug_assert_eq!(record_action(Entity::Order), RecordAction::Mask);
    let (tenant, customer) = (masker.tenant(), masker.customer_id());
    let orders: Vec<(String, Option<String>)> = tx
        .prepare_cached("SELECT id, shipping_address FROM orders WHERE tenant_id = ?1 AND customer_id = ?2 AND id > ?3 ORDER BY id LIMIT ?4")?
        .query_map(params![tenant, customer, after, limit_param(limit)], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut history_changed = 0;
    for (order_id, address) in &orders {
        if let Some(masked) = address
            .as_deref()
            .and_then(|text| mask_address(masker, text))
        {
            tx.prepare_cached("UPDATE orders SET shipping_address = ?3, etag = ?4 WHERE tenant_id = ?1 AND id = ?2")?
                .execute(params![tenant, order_id, masked, new_etag()])?;
        }
        history_changed += mask_status_history(tx, masker, order_id)?;
    }
    Ok(BatchOutcome {
        counts: vec![
            ("orders", orders.len() as u64),
            ("orderStatusHistory", history_changed),
        ],
        cursor: orders
            .last()
            .map(|(id, _)| id.clone())
            .or_else(|| Some(after.to_owned())),
        done: orders.len() < limit,
    })
}

/// The masked JSON of a stored shipping address, if the rules change it.
fn mask_address(masker: &Masker, text: &str) -> Option<String> {
    let address: Value = serde_json::from_str(text).ok()?;
    let mut document = json!({ "shippingAddress": address });
    (masker.mask_document(Entity::Order, &mut document) > 0)
        .then(|| document["shippingAddress"].to_string())
}

fn mask_status_history(
    tx: &Transaction<'_>,
    masker: &Masker,
    order_id: &str,
) -> rusqlite::Result<u64> {
    let tenant = masker.tenant();
    let changes: Vec<(i64, Option<String>, Option<String>)> = tx
        .prepare_cached("SELECT seq, actor_id, reason FROM order_status_history WHERE tenant_id = ?1 AND order_id = ?2")?
        .query_map(params![tenant, order_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut changed = 0;
    for (seq, actor_id, reason) in changes {
        let mut document = json!({ "actorId": actor_id, "reason": reason });
        if masker.mask_document(Entity::OrderStatusChange, &mut document) == 0 {
            continue;
        }
        tx.prepare_cached("UPDATE order_status_history SET actor_id = ?4, reason = ?5 WHERE tenant_id = ?1 AND order_id = ?2 AND seq = ?3")?
            .execute(params![tenant, order_id, seq, document["actorId"].as_str().unwrap_or_default(), document["reason"].as_str()])?;
        changed += 1;
    }
    Ok(changed)
}

fn delete_idempotency_keys(
    tx: &Transaction<'_>,
    masker: &Masker,
    limit: usize,
) -> rusqlite::Result<BatchOutcome> {
    debug_assert_eq!(record_action(Entity::IdempotencyKey), RecordAction::Delete);
    let deleted = tx
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND key IN (
                SELECT k.key FROM orders o JOIN idempotency_keys k ON k.tenant_id = o.tenant_id AND k.order_id = o.id
                 WHERE o.tenant_id = ?1 AND o.customer_id = ?2 LIMIT ?3)",
        )?
        .execute(params![masker.tenant(), masker.customer_id(), limit_param(limit)])?;
    Ok(BatchOutcome::deleted("idempotencyKeys", deleted, limit))
}

fn delete_notifications(
    tx: &Transaction<'_>,
    masker: &Masker,
    limit: usize,
) -> rusqlite::Result<BatchOutcome> {
    debug_assert_eq!(record_action(Entity::Notification), RecordAction::Delete);
    let deleted = tx
        .prepare_cached(
            "DELETE FROM notifications WHERE tenant_id = ?1 AND id IN (
                SELECT id FROM notifications WHERE tenant_id = ?1 AND recipient_kind = 'customer' AND recipient_id = ?2 LIMIT ?3)",
        )?
        .execute(params![masker.tenant(), masker.customer_id(), limit_param(limit)])?;
    Ok(BatchOutcome::deleted("notifications", deleted, limit))
}

fn delete_processed_events(
    tx: &Transaction<'_>,
    masker: &Masker,
    limit: usize,
) -> rusqlite::Result<BatchOutcome> {
    debug_assert_eq!(record_action(Entity::ProcessedEvent), RecordAction::Delete);
    let deleted = tx
        .prepare_cached(
            "DELETE FROM processed_events WHERE tenant_id = ?1 AND (consumer, event_id) IN (
                SELECT consumer, event_id FROM processed_events WHERE tenant_id = ?1 AND customer_id = ?2 LIMIT ?3)",
        )?
        .execute(params![masker.tenant(), masker.customer_id(), limit_param(limit)])?;
    Ok(BatchOutcome::deleted("processedEvents", deleted, limit))
}

/// Audit entries naming the customer (as the customer, the target or the actor) get the
/// keyed pseudonym; once rewritten they no longer match, so each batch takes the next ones.
fn mask_audit(
    tx: &Transaction<'_>,
    masker: &Masker,
    limit: usize,
) -> rusqlite::Result<BatchOutcome> {
    let tenant = masker.tenant();
    let identifiers = to_json(&masker.identifiers());
    let rows: Vec<(String, Option<String>, String, String)> = tx
        .prepare_cached(
            "SELECT id, customer_id, target_id, actor_id FROM audit_log
              WHERE tenant_id = ?1 AND (customer_id IN (SELECT value FROM json_each(?2))
                                     OR target_id IN (SELECT value FROM json_each(?2))
                                     OR actor_id IN (SELECT value FROM json_each(?2)))
              LIMIT ?3",
        )?
        .query_map(params![tenant, identifiers, limit_param(limit)], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut changed = 0u64;
    for (id, customer_id, target_id, actor_id) in &rows {
        let mut document =
            json!({ "customerId": customer_id, "targetId": target_id, "actorId": actor_id });
        if masker.mask_document(Entity::AuditEntry, &mut document) == 0 {
            continue;
        }
        tx.prepare_cached("UPDATE audit_log SET customer_id = ?3, target_id = ?4, actor_id = ?5 WHERE tenant_id = ?1 AND id = ?2")?
            .execute(params![
                tenant,
                id,
                document["customerId"].as_str(),
                document["targetId"].as_str().unwrap_or_default(),
                document["actorId"].as_str().unwrap_or_default()
            ])?;
        changed += 1;
    }
    // A selected row the rules did not change would be selected again: stop rather than loop.
    let done = rows.len() < limit || changed < rows.len() as u64;
    Ok(BatchOutcome {
        counts: vec![("auditEntries", changed)],
        cursor: None,
        done,
    })
}

/// Consent records of the customer keep their proof; the subject (and the customer as
/// recorder) get the keyed pseudonym, after which they no longer match.
fn mask_consents(
    tx: &Transaction<'_>,
    masker: &Masker,
    limit: usize,
) -> rusqlite::Result<BatchOutcome> {
    debug_assert_eq!(record_action(Entity::Consent), RecordAction::Mask);
    let tenant = masker.tenant();
    let rows: Vec<(String, String, String)> = tx
        .prepare_cached(
            "SELECT id, customer_id, recorded_by FROM consents
              WHERE tenant_id = ?1 AND customer_id = ?2 LIMIT ?3",
        )?
        .query_map(
            params![tenant, masker.customer_id(), limit_param(limit)],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    for (id, customer_id, recorded_by) in &rows {
        let mut document = json!({ "customerId": customer_id, "recordedBy": recorded_by });
        masker.mask_document(Entity::Consent, &mut document);
        tx.prepare_cached(
            "UPDATE consents SET customer_id = ?3, recorded_by = ?4 WHERE tenant_id = ?1 AND id = ?2",
        )?
        .execute(params![
            tenant,
            id,
            document["customerId"].as_str().unwrap_or_default(),
            document["recordedBy"].as_str().unwrap_or_default()
        ])?;
    }
    Ok(BatchOutcome {
        counts: vec![("consents", rows.len() as u64)],
        cursor: None,
        done: rows.len() < limit,
    })
}

/// Queued messages about the customer: the erasure's scrubber deleted `scrubbed` of them
/// outside the store (`crate::erasure::QueuedMessageScrubber`; none without one), and the step
/// commits the count.
fn queued_messages(scrubbed: u64) -> BatchOutcome {
    debug_assert_eq!(record_action(Entity::QueuedMessage), RecordAction::Delete);
    BatchOutcome::finished("queuedMessages", scrubbed)
}

/// The profile: personal fields masked by the rules, status `erased`.
fn mask_profile(tx: &Transaction<'_>, masker: &Masker) -> rusqlite::Result<BatchOutcome> {
    let mut customer = load_customer(tx, masker.tenant(), masker.customer_id())?;
    masker
        .mask_customer(&mut customer)
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
    tx.execute(
        "UPDATE customers SET name = ?3, email = ?4, phone = ?5, address = ?6, status = ?7, updated_at = ?8, etag = ?9
          WHERE tenant_id = ?1 AND id = ?2",
        params![
            masker.tenant(),
            customer.id,
            customer.name,
            customer.email,
            customer.phone,
            customer.address.as_ref().map(to_json),
            customer.status.as_str(),
            ts(now()),
            new_etag()
        ],
    )?;
    let mut outcome = BatchOutcome::finished("customers", 1);
    let preferences =
        super::preferences::delete_preferences(tx, masker.tenant(), masker.customer_id())?;
    if preferences > 0 {
        outcome
            .counts
            .push(("notificationPreferences", preferences));
    }
    Ok(outcome)
}

fn batch_in(
    tx: &Transaction<'_>,
    tenant: &str,
    request_id: &str,
    step: ErasureStep,
    masker: &Masker,
    limit: usize,
    scrubbed: Scrubbed,
) -> rusqlite::Result<StoreResult<ErasureProgress>> {
    let Some((record, progress)) = load_record(tx, tenant, request_id)? else {
        return Ok(Err(StoreError::NotFound));
    };
    if record.customer_id != masker.customer_id() {
        return Ok(Err(StoreError::Conflict(format!(
            "erasure request {request_id} is for another customer than the masker"
        ))));
    }
    let mut progress = progress.unwrap_or_else(|| ErasureProgress::new(now()));
    if record.status == ErasureStatus::Completed || progress.is_done(step) {
        return Ok(Ok(progress));
    }
    let started = Instant::now();
    let mut entry = progress.steps.remove(&step).unwrap_or_default();
    let batch = run_step(
        tx,
        step,
        masker,
        limit.max(1),
        entry.cursor.as_deref(),
        scrubbed.count,
    )?;
    entry.record_batch(
        batch,
        scrubbed.elapsed_ms + started.elapsed().as_secs_f64() * 1000.0,
    );
    progress.steps.insert(step, entry);
    save_progress(tx, tenant, request_id, ErasureStatus::InProgress, &progress)?;
    Ok(Ok(progress))
}

fn finish_in(
    tx: &Transaction<'_>,
    tenant: &str,
    request_id: &str,
    report: &Value,
    audit: &AuditEntry,
) -> rusqlite::Result<StoreResult<(ErasureRecord, bool)>> {
    let Some((mut record, _)) = load_record(tx, tenant, request_id)? else {
        return Ok(Err(StoreError::NotFound));
    };
    if record.status == ErasureStatus::Completed {
        return Ok(Ok((record, false)));
    }
    let at = now();
    tx.execute(
        "UPDATE erasure_requests SET status = 'completed', report = ?3, updated_at = ?4 WHERE tenant_id = ?1 AND id = ?2",
        params![tenant, request_id, report.to_string(), ts(at)],
    )?;
    insert_audit(tx, audit)?;
    record.status = ErasureStatus::Completed;
    record.updated_at = at;
    record.report = Some(report.clone());
    Ok(Ok((record, true)))
}

/// Runs `work` with full secure delete on: deleted records and the old versions of masked
/// ones are overwritten with zeros, in pages and on the freelist. The connection's usual
/// setting (`FAST`) is back afterwards.
pub fn with_secure_delete<T>(
    conn: &mut Connection,
    work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.pragma_update(None, "secure_delete", "ON")?;
    let outcome = work(conn);
    conn.pragma_update(None, "secure_delete", "FAST")?;
    outcome
}

/// One batch in its own transaction, committed only when it succeeded.
fn batch_in_transaction(
    conn: &mut Connection,
    tenant: &str,
    request_id: &str,
    step: ErasureStep,
    masker: &Masker,
    batch_size: usize,
    scrubbed: Scrubbed,
) -> rusqlite::Result<StoreResult<ErasureProgress>> {
    let tx = conn.transaction()?;
    let outcome = batch_in(&tx, tenant, request_id, step, masker, batch_size, scrubbed)?;
    if outcome.is_ok() {
        tx.commit()?;
    }
    Ok(outcome)
}

/// Copies the WAL into the database and truncates it, so page images from before the erasure
/// leave the WAL file (best effort: with a reader in the way it does what it can, and later
/// checkpoints finish the job).
fn checkpoint(conn: &Connection) {
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(%error, "checkpoint after an erasure failed; the WAL keeps old pages until the next checkpoint");
    }
}

/// What the erasure's queued-message scrubber did before the `queuedMessages` step commits
/// (nothing, for the other steps).
#[derive(Debug, Clone, Copy, Default)]
struct Scrubbed {
    count: u64,
    elapsed_ms: f64,
}

impl Db {
    /// One batch of `step` in its own transaction, with full secure delete.
    async fn erase_batch_with(
        &self,
        tenant: &TenantId,
        request_id: &str,
        step: ErasureStep,
        masker: &Masker,
        batch_size: usize,
        scrubbed: Scrubbed,
    ) -> StoreResult<ErasureProgress> {
        let (tenant, request_id, masker) = (
            tenant.as_str().to_owned(),
            request_id.to_owned(),
            masker.clone(),
        );
        if masker.tenant() != tenant {
            return Err(StoreError::Conflict(
                "the masker is for another tenant".into(),
            ));
        }
        self.write(move |conn| {
            with_secure_delete(conn, |conn| {
                batch_in_transaction(
                    conn,
                    &tenant,
                    &request_id,
                    step,
                    &masker,
                    batch_size,
                    scrubbed,
                )
            })
        })
        .await?
    }
}

#[async_trait::async_trait]
impl ErasureStore for Db {
    async fn start_erasure(
        &self,
        tenant: &TenantId,
        request: ErasureRecord,
    ) -> StoreResult<ErasureStart> {
        let tenant = tenant.as_str().to_owned();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let outcome = start_in(&tx, &tenant, &request)?;
            tx.commit()?;
            Ok(outcome)
        })
        .await?
    }

    async fn erase_batch(
        &self,
        tenant: &TenantId,
        request_id: &str,
        step: ErasureStep,
        masker: &Masker,
        batch_size: usize,
    ) -> StoreResult<ErasureProgress> {
        self.erase_batch_with(
            tenant,
            request_id,
            step,
            masker,
            batch_size,
            Scrubbed::default(),
        )
        .await
    }

    async fn record_queued_messages(
        &self,
        tenant: &TenantId,
        request_id: &str,
        masker: &Masker,
        scrubbed: u64,
        elapsed_ms: f64,
    ) -> StoreResult<ErasureProgress> {
        let scrubbed = Scrubbed {
            count: scrubbed,
            elapsed_ms,
        };
        self.erase_batch_with(
            tenant,
            request_id,
            ErasureStep::QueuedMessages,
            masker,
            1,
            scrubbed,
        )
        .await
    }

    async fn requeue_stalled_erasures(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> StoreResult<Vec<ErasureRecord>> {
        let outbox_ttl = self.outbox_ttl();
        self.write(move |conn| {
            super::customers::requeue_stalled(conn, outbox_ttl, cutoff, now, limit)
        })
        .await
    }

    async fn finish_erasure(
        &self,
        tenant: &TenantId,
        request_id: &str,
        report: Value,
        audit: AuditEntry,
    ) -> StoreResult<(ErasureRecord, bool)> {
        let (tenant, request_id) = (tenant.as_str().to_owned(), request_id.to_owned());
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let outcome = finish_in(&tx, &tenant, &request_id, &report, &audit)?;
            tx.commit()?;
            checkpoint(conn);
            Ok(outcome)
        })
        .await?
    }
}
