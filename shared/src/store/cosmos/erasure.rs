//! Cosmos DB adapter of [`ErasureStore`]: a customer's erasure, batch by batch, each batch one
//! transactional batch in the customer's partition carrying the step's effect and the request's
//! progress marker (the [`ErasureDoc`] `erasure:{requestId}`), so a crash at any moment loses
//! nothing and a redelivery counts nothing twice.
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

use std::time::Instant;

use azure_data_cosmos::TransactionalBatch;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::doc::{customer_scope, doc_id, kind, Doc};
use super::support::{
    attempt_of, audit_doc, batch_create, batch_delete, batch_replace, busy, param, pk, scope_feed,
    tenant_feed, Attempt, CONCURRENCY_ATTEMPTS, MAX_BATCH_OPERATIONS,
};
use super::{CosmosStore, Param, BACKEND};
use crate::domain::audit::AuditEntry;
use crate::domain::customer::CustomerStatus;
use crate::domain::gdpr::{ErasureRecord, ErasureStatus};
use crate::domain::masking::{record_action, Entity, Masker, RecordAction};
use crate::domain::now;
use crate::store::erasure::BatchOutcome as StepOutcome;
use crate::store::{
    new_etag, ts, ErasureProgress, ErasureStart, ErasureStep, ErasureStore, StoreError,
    StoreResult, TenantId,
};

/// Operations one erasure batch holds at most (one fewer than the service allows, kept spare).
const BATCH_OPERATIONS: usize = MAX_BATCH_OPERATIONS - 1;
/// Bytes of documents one erasure batch writes at most (the service allows 2 MB per batch; the
/// rest is room for the progress marker and the request's framing).
const BATCH_BYTES: usize = 1_500_000;
/// Operations of every erasure batch that are not the step's own: the progress marker.
const BOOKKEEPING_OPERATIONS: usize = 1;

/// The stored body of an erasure request (`Doc<ErasureDoc>`, id `erasure:{requestId}`, in the
/// customer's scope): the record and, once an erasure started, its durable progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErasureDoc {
    #[serde(flatten)]
    pub record: ErasureRecord,
    #[serde(default)]
    pub progress: Option<ErasureProgress>,
}

type RequestDoc = Doc<ErasureDoc>;

/// One call of `erase_batch`, and what it carries across its tries.
struct BatchCall<'a> {
    request_id: &'a str,
    step: ErasureStep,
    masker: &'a Masker,
    /// Records one batch takes.
    capacity: usize,
    started: Instant,
    /// The queued messages the erasure's scrubber deleted (the `queuedMessages` step's count).
    scrubbed: u64,
    /// The progress the first try read.
    seen: Option<ErasureProgress>,
}

/// Queued messages about the customer, deleted by the erasure's scrubber before this step
/// commits their count.
fn queued_messages(scrubbed: u64) -> StepOutcome {
    debug_assert_eq!(record_action(Entity::QueuedMessage), RecordAction::Delete);
    StepOutcome::finished("queuedMessages", scrubbed)
}

/// How many records one batch of a step takes.
fn step_capacity(batch_size: usize) -> usize {
    batch_size.clamp(1, BATCH_OPERATIONS - BOOKKEEPING_OPERATIONS)
}

/// Only the id of a document (queries of what to delete).
#[derive(Debug, Deserialize)]
struct IdOnly {
    id: String,
}

/// An audit entry outside the customer's partition, selected and counted by one batch and
/// masked by the next (kept in the step's cursor).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuditRef {
    scope: String,
    id: String,
}

/// The records of one delete step: their type and the filter naming the customer's ones.
struct Deletion {
    kind: &'static str,
    filter: &'static str,
    table: &'static str,
}

const IDEMPOTENCY_KEYS: Deletion = Deletion {
    kind: kind::IDEMPOTENCY,
    filter: "",
    table: "idempotencyKeys",
};
const NOTIFICATIONS: Deletion = Deletion {
    kind: kind::NOTIFICATION,
    filter: " AND c.body.recipient.kind = 'customer' AND c.body.recipient.id = @customer",
    table: "notifications",
};
/// Markers of events that changed nothing name no customer (as in SQLite) and are kept.
const PROCESSED_EVENTS: Deletion = Deletion {
    kind: kind::PROCESSED_EVENT,
    filter: " AND c.body.customerId = @customer",
    table: "processedEvents",
};

/// Audit entries naming one of `@ids` as the customer, the target or the actor.
const AUDIT_NAMES_CUSTOMER: &str = " AND (ARRAY_CONTAINS(@ids, c.body.customerId) OR ARRAY_CONTAINS(@ids, c.body.targetId) OR ARRAY_CONTAINS(@ids, c.body.actorId))";

/// Masks an order's shipping address and status history in its JSON body (the serde form of
/// the order with `history` embedded): whether the address changed, how many history entries.
fn mask_order(masker: &Masker, body: &mut Value) -> (bool, u64) {
    let address_changed = masker.mask_document(Entity::Order, body) > 0;
    let history_changed = body
        .get_mut("history")
        .and_then(Value::as_array_mut)
        .map_or(0, |changes| {
            changes
                .iter_mut()
                .map(|change| masker.mask_document(Entity::OrderStatusChange, change))
                .filter(|fields| *fields > 0)
                .count()
        });
    (address_changed, history_changed as u64)
}

fn undecodable(what: &str, error: &serde_json::Error) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        reason: format!("{what}: unexpected shape: {error}"),
    }
}

impl CosmosStore {
    /// The request `request_id` in the tenant, wherever it is (the caller knows no customer).
    async fn erasure_anywhere(
        &self,
        tenant: &TenantId,
        request_id: &str,
    ) -> StoreResult<Option<RequestDoc>> {
        let docs: Vec<RequestDoc> = self
            .query_docs(
                self.data(),
                tenant_feed(tenant),
                "SELECT * FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND c.id = @id",
                vec![
                    param("@tenant", tenant.as_str()),
                    param("@kind", kind::ERASURE),
                    param("@id", doc_id(kind::ERASURE, request_id)),
                ],
            )
            .await?;
        Ok(docs.into_iter().next())
    }

    /// The request `request_id` of `customer_id`; `Conflict` when the tenant's request with
    /// this id is another customer's.
    async fn erasure_of(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        request_id: &str,
    ) -> StoreResult<Option<RequestDoc>> {
        let id = doc_id(kind::ERASURE, request_id);
        let found = match self
            .read_doc::<RequestDoc>(
                self.data(),
                pk(tenant.as_str(), &customer_scope(customer_id)),
                &id,
            )
            .await?
        {
            Some(doc) => Some(doc),
            None => self.erasure_anywhere(tenant, request_id).await?,
        };
        match found {
            Some(doc) if doc.body.record.customer_id != customer_id => Err(StoreError::Conflict(
                format!("erasure request {request_id} is for another customer"),
            )),
            found => Ok(found),
        }
    }

    /// The completed request (with a report) that erased `customer_id`, the latest if several.
    async fn erasure_erased_by(
        &self,
        tenant: &str,
        customer_id: &str,
    ) -> StoreResult<Option<String>> {
        let docs: Vec<RequestDoc> = self
            .query_docs(
                self.data(),
                scope_feed(tenant, &customer_scope(customer_id)),
                "SELECT * FROM c WHERE c.type = @kind",
                vec![param("@kind", kind::ERASURE)],
            )
            .await?;
        Ok(docs
            .into_iter()
            .map(|doc| doc.body.record)
            .filter(|record| {
                record.customer_id == customer_id
                    && record.status == ErasureStatus::Completed
                    && record.report.is_some()
            })
            .max_by_key(|record| record.updated_at)
            .map(|record| record.id))
    }

    async fn erasure_start_once(
        &self,
        tenant: &TenantId,
        request: &ErasureRecord,
    ) -> StoreResult<Attempt<ErasureStart>> {
        let existing = self
            .erasure_of(tenant, &request.customer_id, &request.id)
            .await?;
        if let Some(doc) = &existing {
            if doc.body.record.status == ErasureStatus::Completed {
                return Ok(Attempt::Done(ErasureStart::AlreadyCompleted(
                    doc.body.record.clone(),
                )));
            }
        }
        let mut customer = self
            .customer_doc(tenant.as_str(), &request.customer_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let started = existing
            .as_ref()
            .is_some_and(|doc| doc.body.record.status != ErasureStatus::Accepted);
        if customer.body.status == CustomerStatus::Erased && !started {
            return self
                .erasure_close_unneeded(tenant, existing, &request.customer_id)
                .await;
        }
        let scope = customer.scope.clone();
        let is_new = existing.is_none();
        let mut doc = existing.unwrap_or_else(|| {
            let record = ErasureDoc {
                record: request.clone(),
                progress: None,
            };
            Doc::new(
                kind::ERASURE,
                &request.id,
                tenant.as_str(),
                scope.clone(),
                ts(request.requested_at),
                record,
            )
        });
        let mut progress = doc
            .body
            .progress
            .take()
            .unwrap_or_else(|| ErasureProgress::new(now()));
        progress.attempts += 1;
        doc.body.record.status = ErasureStatus::InProgress;
        doc.body.record.updated_at = now();
        doc.body.progress = Some(progress.clone());
        let batch = TransactionalBatch::new(pk(tenant.as_str(), &scope));
        let mut batch = if is_new {
            batch_create(self, batch, &doc)?
        } else {
            batch_replace(self, batch, &doc)?
        };
        if customer.body.status == CustomerStatus::Active {
            customer.body.status = CustomerStatus::ErasureRequested;
            customer.version = new_etag();
            customer.body.etag = customer.version.clone();
            batch = batch_replace(self, batch, &customer)?;
        }
        let outcome = self.run_batch(self.data(), batch).await?;
        attempt_of(
            outcome,
            ErasureStart::Run {
                record: doc.body.record,
                progress,
            },
        )
    }

    /// A request for a customer another request erased: closed without a report (if stored).
    async fn erasure_close_unneeded(
        &self,
        tenant: &TenantId,
        existing: Option<RequestDoc>,
        customer_id: &str,
    ) -> StoreResult<Attempt<ErasureStart>> {
        if let Some(mut doc) = existing {
            doc.body.record.status = ErasureStatus::Completed;
            doc.body.record.updated_at = now();
            let batch = batch_replace(
                self,
                TransactionalBatch::new(pk(tenant.as_str(), &doc.scope)),
                &doc,
            )?;
            if let Attempt::Again = attempt_of(self.run_batch(self.data(), batch).await?, ())? {
                return Ok(Attempt::Again);
            }
        }
        let erased_by = self.erasure_erased_by(tenant.as_str(), customer_id).await?;
        Ok(Attempt::Done(ErasureStart::CustomerAlreadyErased {
            erased_by,
        }))
    }

    /// One try of one batch: plans it from a fresh read and commits it with the progress.
    async fn erasure_batch_once(
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
    async fn erasure_plan_step(
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
            ErasureStep::QueuedMessages => Ok((batch, queued_messages(call.scrubbed))),
            ErasureStep::Profile => {
                self.erasure_mask_profile(tenant.as_str(), masker, batch)
                    .await
            }
        }
    }

    /// Orders keep their bookkeeping facts; the shipping address and the status history are
    /// masked. Walks the customer's orders by id from `after` (an order id).
    async fn erasure_mask_orders(
        &self,
        tenant: &str,
        scope: &str,
        masker: &Masker,
        limit: usize,
        after: &str,
        mut batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        debug_assert_eq!(record_action(Entity::Order), RecordAction::Mask);
        let sql = format!(
            "SELECT TOP {limit} * FROM c WHERE c.type = @kind AND c.id > @after ORDER BY c.id"
        );
        let params = vec![
            param("@kind", kind::ORDER),
            param("@after", doc_id(kind::ORDER, after)),
        ];
        let orders: Vec<Doc<Value>> = self
            .query_docs(self.data(), scope_feed(tenant, scope), &sql, params)
            .await?;
        let fetched = orders.len();
        let prefix = doc_id(kind::ORDER, "");
        let mut walked = 0;
        let mut last = None;
        let mut history_changed = 0;
        let mut batch_bytes = 0;
        for mut order in orders {
            let (address_changed, history) = mask_order(masker, &mut order.body);
            if address_changed {
                // The address is part of the order clients see (its ETag changes); the
                // history is not (as in SQLite, where it is a table of its own).
                order.version = new_etag();
            }
            if address_changed || history > 0 {
                // A batch may carry at most 2 MB: large orders (100 lines) end it early.
                let size = serde_json::to_vec(&order).map_or(0, |bytes| bytes.len());
                if walked > 0 && batch_bytes + size > BATCH_BYTES {
                    break;
                }
                batch_bytes += size;
                batch = batch_replace(self, batch, &order)?;
            }
            history_changed += history;
            walked += 1;
            last = Some(
                order
                    .id
                    .strip_prefix(&prefix)
                    .unwrap_or(&order.id)
                    .to_owned(),
            );
        }
        let outcome = StepOutcome {
            counts: vec![
                ("orders", walked as u64),
                ("orderStatusHistory", history_changed),
            ],
            cursor: last.or_else(|| Some(after.to_owned())),
            done: fetched < limit && walked == fetched,
        };
        Ok((batch, outcome))
    }

    /// Deletes up to `limit` of the customer's records of one type.
    async fn erasure_delete_records(
        &self,
        tenant: &str,
        scope: &str,
        masker: &Masker,
        records: &Deletion,
        limit: usize,
        mut batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        let sql = format!(
            "SELECT TOP {limit} c.id FROM c WHERE c.type = @kind{}",
            records.filter
        );
        let mut params = vec![param("@kind", records.kind)];
        if records.filter.contains("@customer") {
            params.push(param("@customer", masker.customer_id()));
        }
        let found: Vec<IdOnly> = self
            .query_docs(self.data(), scope_feed(tenant, scope), &sql, params)
            .await?;
        for doc in &found {
            batch = batch_delete(batch, &doc.id, None);
        }
        Ok((
            batch,
            StepOutcome::deleted(records.table, found.len(), limit),
        ))
    }

    /// Audit entries naming the customer (as the customer, the target or the actor) get the
    /// keyed pseudonym; once rewritten they no longer match, so each batch takes the next
    /// ones. Entries in the customer's partition are masked in the batch; entries elsewhere
    /// in the tenant are selected and counted here and masked by the next batch (`cursor`).
    async fn erasure_mask_audit(
        &self,
        tenant: &TenantId,
        scope: &str,
        masker: &Masker,
        limit: usize,
        cursor: Option<&str>,
        mut batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        debug_assert_eq!(record_action(Entity::AuditEntry), RecordAction::Mask);
        if let Some(pending) = cursor {
            let pending: Vec<AuditRef> = serde_json::from_str(pending)
                .map_err(|error| undecodable("erasure progress of the audit step", &error))?;
            for entry in &pending {
                self.erasure_mask_audit_elsewhere(tenant.as_str(), masker, entry)
                    .await?;
            }
        }
        let ids = || param("@ids", masker.identifiers());
        let local_sql =
            format!("SELECT TOP {limit} * FROM c WHERE c.type = @kind{AUDIT_NAMES_CUSTOMER}");
        let local: Vec<Doc<Value>> = self
            .query_docs(
                self.data(),
                scope_feed(tenant.as_str(), scope),
                &local_sql,
                vec![param("@kind", kind::AUDIT), ids()],
            )
            .await?;
        let elsewhere = match limit.saturating_sub(local.len()) {
            0 => Vec::new(),
            room => {
                self.erasure_audit_elsewhere(tenant, scope, room, ids())
                    .await?
            }
        };
        let selected = local.len() + elsewhere.len();
        let mut changed = 0u64;
        for mut entry in local {
            if masker.mask_document(Entity::AuditEntry, &mut entry.body) > 0 {
                batch = batch_replace(self, batch, &entry)?;
                changed += 1;
            }
        }
        let mut pending = Vec::new();
        for mut entry in elsewhere {
            if masker.mask_document(Entity::AuditEntry, &mut entry.body) > 0 {
                pending.push(AuditRef {
                    scope: entry.scope,
                    id: entry.id,
                });
                changed += 1;
            }
        }
        // A selected entry the rules did not change would be selected again: stop rather than
        // loop. Pending entries are masked by the next batch, so the step is not done yet.
        let done = pending.is_empty() && (selected < limit || changed < selected as u64);
        let cursor = if pending.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&pending)
                    .map_err(|error| undecodable("audit step cursor", &error))?,
            )
        };
        Ok((
            batch,
            StepOutcome {
                counts: vec![("auditEntries", changed)],
                cursor,
                done,
            },
        ))
    }

    /// Up to `limit` audit entries naming the customer outside their partition.
    async fn erasure_audit_elsewhere(
        &self,
        tenant: &TenantId,
        scope: &str,
        limit: usize,
        ids: Param,
    ) -> StoreResult<Vec<Doc<Value>>> {
        let sql = format!("SELECT TOP {limit} * FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND c.scope != @scope{AUDIT_NAMES_CUSTOMER}");
        let params = vec![
            param("@tenant", tenant.as_str()),
            param("@kind", kind::AUDIT),
            param("@scope", scope),
            ids,
        ];
        self.query_docs(self.data(), tenant_feed(tenant), &sql, params)
            .await
    }

    /// Masks one audit entry outside the customer's partition (nothing if it is gone or
    /// masked already), re-reading it if it changes meanwhile.
    async fn erasure_mask_audit_elsewhere(
        &self,
        tenant: &str,
        masker: &Masker,
        entry: &AuditRef,
    ) -> StoreResult<()> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            let Some(mut doc) = self
                .read_doc::<Doc<Value>>(self.data(), pk(tenant, &entry.scope), &entry.id)
                .await?
            else {
                return Ok(());
            };
            if masker.mask_document(Entity::AuditEntry, &mut doc.body) == 0 {
                return Ok(());
            }
            match self
                .replace_doc(
                    self.data(),
                    pk(tenant, &entry.scope),
                    &doc.id,
                    &doc,
                    doc.cosmos_etag.as_deref(),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::PreconditionFailed { .. } | StoreError::NotFound) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(busy("audit entry"))
    }

    /// The profile: personal fields masked by the rules, status `erased`.
    async fn erasure_mask_profile(
        &self,
        tenant: &str,
        masker: &Masker,
        batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        let mut doc = self
            .customer_doc(tenant, masker.customer_id())
            .await?
            .ok_or(StoreError::NotFound)?;
        let customer = &mut doc.body;
        masker
            .mask_customer(customer)
            .map_err(|error| undecodable("masked customer address", &error))?;
        customer.updated_at = now();
        doc.version = new_etag();
        doc.body.etag = doc.version.clone();
        let batch = batch_replace(self, batch, &doc)?;
        Ok((batch, StepOutcome::finished("customers", 1)))
    }

    /// One batch of the call's step, planned again (a bounded number of times) when a
    /// concurrent change refused it.
    async fn erasure_batch(
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

    async fn erasure_finish_once(
        &self,
        tenant: &TenantId,
        request_id: &str,
        report: &Value,
        audit: &AuditEntry,
    ) -> StoreResult<Attempt<(ErasureRecord, bool)>> {
        let mut doc = self
            .erasure_anywhere(tenant, request_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if doc.body.record.status == ErasureStatus::Completed {
            return Ok(Attempt::Done((doc.body.record, false)));
        }
        doc.body.record.status = ErasureStatus::Completed;
        doc.body.record.updated_at = now();
        doc.body.record.report = Some(report.clone());
        let batch = TransactionalBatch::new(pk(tenant.as_str(), &doc.scope));
        let batch = batch_replace(self, batch, &doc)?;
        let batch = batch_create(self, batch, &audit_doc(audit, &doc.scope))?;
        attempt_of(
            self.run_batch(self.data(), batch).await?,
            (doc.body.record, true),
        )
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

#[cfg(all(test, feature = "cosmos-emulator"))]
mod tests {

    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::domain::customer::Address;
    use crate::domain::order::{Order, OrderItem, OrderStatus, StatusChange};
    use crate::store::cosmos::customers::customer_doc;
    use crate::store::cosmos::doc::TENANT_SCOPE;
    use crate::store::cosmos::fixtures::{
        customer, erasure_request, masker, notification, put, tenant, TENANT,
    };
    use crate::store::cosmos::orders::{CosmosOrder, StoredIdempotency};
    use crate::store::cosmos::{in_memory, CosmosOptions};

    fn options() -> CosmosOptions {
        CosmosOptions::for_emulator()
    }

    /// A customer with `orders` orders (each with a status change by the customer, an
    /// idempotency key and an audit entry) and `notifications` notifications; one dispatched
    /// and one skipped event marker.
    async fn seed(store: &CosmosStore, id: &str, orders: usize, notifications: usize) {
        let (at, scope) = (Utc::now(), customer_scope(id));
        put(store, &customer_doc(&customer(id))).await;
        for n in 0..orders {
            let order_id = format!("o-{id}-{n}");
            let address = Address {
                line1: "1 Road".into(),
                line2: None,
                city: "Town".into(),
                postal_code: "12345".into(),
                country: "DE".into(),
            };
            let item = OrderItem {
                product_id: "p-1".into(),
                product_name: "Thing".into(),
                quantity: 1,
                unit_price_cents: 100,
            };
            let order = Order {
                id: order_id.clone(),
                tenant_id: TENANT.into(),
                customer_id: id.into(),
                status: OrderStatus::Pending,
                items: vec![item],
                total_cents: 100,
                currency: "EUR".into(),
                shipping_address: Some(address),
                created_at: at,
                updated_at: at,
                etag: "v1".into(),
            };
            let history = vec![StatusChange {
                status: OrderStatus::Pending,
                at,
                actor_id: format!("dev-client-{id}"),
                reason: Some("why".into()),
            }];
            put(
                store,
                &Doc::new(
                    kind::ORDER,
                    &order_id,
                    TENANT,
                    scope.clone(),
                    ts(at),
                    CosmosOrder { order, history },
                )
                .with_version("v1"),
            )
            .await;
            let key = StoredIdempotency {
                key: format!("k-{order_id}"),
                request_hash: "h".into(),
                order_id: order_id.clone(),
                created_at: at,
            };
            put(
                store,
                &Doc::new(
                    kind::IDEMPOTENCY,
                    &key.key.clone(),
                    TENANT,
                    scope.clone(),
                    ts(at),
                    key,
                ),
            )
            .await;
            let audit = AuditEntry::now(
                TENANT,
                &format!("dev-client-{id}"),
                "order.create",
                "order",
                &order_id,
                "c",
            )
            .about_customer(id);
            put(store, &audit_doc(&audit, &scope)).await;
        }
        for n in 0..notifications {
            let notification = notification(&format!("n-{id}-{n}"), id, at);
            put(store, &store.notification_doc(&notification)).await;
        }
        for (event, customer_id) in [("e-1", Some(id)), ("e-2", None)] {
            let body = json!({"consumer": "NotificationDispatch", "eventId": event, "customerId": customer_id, "outcome": "x", "outputs": [], "processedAt": at});
            put(
                store,
                &Doc::new(
                    kind::PROCESSED_EVENT,
                    &format!("NotificationDispatch:{event}"),
                    TENANT,
                    scope.clone(),
                    ts(at),
                    body,
                ),
            )
            .await;
        }
    }

    /// c-1 (5 orders, 7 notifications, an audit entry about them outside their partition) and
    /// c-2 (3 orders, 4 notifications).
    async fn seeded() -> CosmosStore {
        let store = in_memory(options(), Vec::new()).await.unwrap().store;
        seed(&store, "c-1", 5, 7).await;
        seed(&store, "c-2", 3, 4).await;
        let export = AuditEntry::now(
            TENANT,
            "dev-employee",
            "customer.export",
            "customer",
            "c-1",
            "c",
        );
        put(&store, &audit_doc(&export, TENANT_SCOPE)).await;
        store
    }

    /// Runs every step not done yet to the end in batches of `size`; the final progress.
    async fn run_all(
        store: &CosmosStore,
        request_id: &str,
        customer: &str,
        size: usize,
    ) -> ErasureProgress {
        let masker = masker(customer);
        let mut progress = None;
        for step in ErasureStep::ALL {
            loop {
                let now = store
                    .erase_batch(&tenant(), request_id, step, &masker, size)
                    .await
                    .unwrap();
                let done = now.is_done(step);
                progress = Some(now);
                if done {
                    break;
                }
            }
        }
        progress.unwrap()
    }

    fn expected_counts(queued: u64) -> Value {
        json!({"auditEntries": 6, "customers": 1, "idempotencyKeys": 5, "notifications": 7, "orderStatusHistory": 5, "orders": 5, "processedEvents": 1, "queuedMessages": queued})
    }

    async fn docs(store: &CosmosStore, scope: &str, kind: &str) -> Vec<Doc<Value>> {
        store
            .query_docs(
                store.data(),
                scope_feed(TENANT, scope),
                "SELECT * FROM c WHERE c.type = @kind",
                vec![param("@kind", kind)],
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_resumed_erasure_counts_each_record_once_and_spares_other_customers() {
        let store = seeded().await;
        assert!(matches!(
            store
                .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
                .await
                .unwrap(),
            ErasureStart::Run { .. }
        ));
        let first = store
            .erase_batch(&tenant(), "r-1", ErasureStep::Orders, &masker("c-1"), 2)
            .await
            .unwrap();
        assert_eq!(first.steps[&ErasureStep::Orders].counts["orders"], 2);
        assert!(!first.is_done(ErasureStep::Orders));

        // The delivery "crashed"; a redelivery starts again and resumes from the committed progress.
        let ErasureStart::Run { progress, .. } = store
            .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
            .await
            .unwrap()
        else {
            panic!("expected a run")
        };
        assert_eq!(
            (
                progress.attempts,
                progress.steps[&ErasureStep::Orders].counts["orders"]
            ),
            (2, 2)
        );
        let progress = run_all(&store, "r-1", "c-1", 2).await;
        assert_eq!(
            serde_json::to_value(progress.counts()).unwrap(),
            expected_counts(0)
        );
        assert_eq!(
            progress.steps[&ErasureStep::Orders].batches,
            3,
            "2 before the crash, then 2 and 1"
        );
        assert_eq!(
            progress.steps[&ErasureStep::Notifications].batches,
            4,
            "2, 2, 2 and 1"
        );
        assert_eq!(
            progress.steps[&ErasureStep::AuditEntries].batches,
            4,
            "2, 2, 1 here and the one elsewhere, then its masking"
        );

        // A finished step changes nothing.
        let again = store
            .erase_batch(
                &tenant(),
                "r-1",
                ErasureStep::Notifications,
                &masker("c-1"),
                2,
            )
            .await
            .unwrap();
        assert_eq!(again.counts(), progress.counts());

        let scope = customer_scope("c-1");
        let orders = docs(&store, &scope, kind::ORDER).await;
        assert!(orders.iter().all(|order| order.body["shippingAddress"] == json!({"line1": "[erased]", "city": "[erased]", "postalCode": "12", "country": "DE"})));
        assert!(orders
            .iter()
            .all(|order| order.body["totalCents"] == 100 && order.version != "v1"));
        assert!(orders
            .iter()
            .all(|order| order.body["history"][0]["actorId"]
                .as_str()
                .unwrap()
                .starts_with("psn-")
                && order.body["history"][0]["reason"].is_null()));
        for kind in [kind::NOTIFICATION, kind::IDEMPOTENCY] {
            assert!(docs(&store, &scope, kind).await.is_empty(), "{kind}");
        }
        assert_eq!(
            docs(&store, &scope, kind::PROCESSED_EVENT).await.len(),
            1,
            "the marker naming no customer stays"
        );
        assert!(docs(&store, &scope, kind::AUDIT)
            .await
            .iter()
            .all(|entry| entry.body["customerId"]
                .as_str()
                .unwrap()
                .starts_with("psn-")));
        let export = docs(&store, TENANT_SCOPE, kind::AUDIT).await;
        assert!(
            export[0].body["targetId"]
                .as_str()
                .unwrap()
                .starts_with("psn-")
                && export[0].body["actorId"] == "dev-employee"
        );
        let profile = store
            .customer_doc(TENANT, "c-1")
            .await
            .unwrap()
            .unwrap()
            .body;
        assert_eq!(
            (
                profile.name.as_str(),
                profile.email.as_str(),
                profile.phone.as_deref(),
                profile.status
            ),
            (
                "Erased customer",
                "erased@erased.invalid",
                None,
                CustomerStatus::Erased
            )
        );

        // c-2 keeps everything.
        let other = customer_scope("c-2");
        assert_eq!(docs(&store, &other, kind::NOTIFICATION).await.len(), 4);
        assert!(docs(&store, &other, kind::ORDER)
            .await
            .iter()
            .all(|order| order.body["shippingAddress"]["line1"] == "1 Road"));
        assert!(docs(&store, &other, kind::AUDIT)
            .await
            .iter()
            .all(|entry| entry.body["customerId"] == "c-2"));
        assert_eq!(
            store
                .customer_doc(TENANT, "c-2")
                .await
                .unwrap()
                .unwrap()
                .body
                .status,
            CustomerStatus::Active
        );
    }

    #[tokio::test]
    async fn large_orders_are_masked_in_batches_under_the_2_mb_limit() {
        let store = in_memory(options(), Vec::new()).await.unwrap().store;
        put(&store, &customer_doc(&customer("c-9"))).await;
        let (at, scope) = (Utc::now(), customer_scope("c-9"));
        // 70 orders of 100 lines with long product names: about 26 KB each, 1.8 MB in all.
        for n in 0..70 {
            let order_id = format!("o-big-{n:02}");
            let item = OrderItem {
                product_id: "p-1".into(),
                product_name: "x".repeat(200),
                quantity: 1,
                unit_price_cents: 100,
            };
            let address = Address {
                line1: "1 Road".into(),
                line2: None,
                city: "Town".into(),
                postal_code: "12345".into(),
                country: "DE".into(),
            };
            let order = Order {
                id: order_id.clone(),
                tenant_id: TENANT.into(),
                customer_id: "c-9".into(),
                status: OrderStatus::Pending,
                items: vec![item; 100],
                total_cents: 10_000,
                currency: "EUR".into(),
                shipping_address: Some(address),
                created_at: at,
                updated_at: at,
                etag: "v1".into(),
            };
            put(
                &store,
                &Doc::new(
                    kind::ORDER,
                    &order_id,
                    TENANT,
                    scope.clone(),
                    ts(at),
                    CosmosOrder {
                        order,
                        history: Vec::new(),
                    },
                )
                .with_version("v1"),
            )
            .await;
        }
        store
            .start_erasure(&tenant(), erasure_request("r-9", "c-9"))
            .await
            .unwrap();
        let mut progress = store
            .erase_batch(&tenant(), "r-9", ErasureStep::Orders, &masker("c-9"), 5000)
            .await
            .unwrap();
        let first = progress.steps[&ErasureStep::Orders].counts["orders"];
        assert!(
            (40..70).contains(&first),
            "one batch stops short of 2 MB: {first} orders"
        );
        assert!(!progress.is_done(ErasureStep::Orders));
        while !progress.is_done(ErasureStep::Orders) {
            progress = store
                .erase_batch(&tenant(), "r-9", ErasureStep::Orders, &masker("c-9"), 5000)
                .await
                .unwrap();
        }
        assert_eq!(
            progress.steps[&ErasureStep::Orders].counts["orders"],
            70,
            "every order once"
        );
        assert!(docs(&store, &scope, kind::ORDER)
            .await
            .iter()
            .all(|order| order.body["shippingAddress"]["line1"] == "[erased]"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_deliveries_erasing_at_once_count_each_record_once() {
        let store = seeded().await;
        store
            .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
            .await
            .unwrap();
        store
            .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
            .await
            .unwrap();
        let delivery = |size| {
            let store = store.clone();
            tokio::spawn(async move { run_all(&store, "r-1", "c-1", size).await })
        };
        let (a, b) = tokio::join!(delivery(1), delivery(2));
        let (a, b) = (a.unwrap(), b.unwrap());
        let last = if a.steps.values().map(|s| s.batches).sum::<u64>()
            >= b.steps.values().map(|s| s.batches).sum::<u64>()
        {
            a
        } else {
            b
        };
        assert_eq!(
            serde_json::to_value(last.counts()).unwrap(),
            expected_counts(0)
        );
        assert_eq!(last.attempts, 2);
    }

    /// The scrub itself is the local runtime's (`functions/src/local/storage.rs`, tested there).
    #[tokio::test]
    async fn the_queued_messages_count_is_committed_once() {
        let store = seeded().await;
        store
            .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
            .await
            .unwrap();
        store
            .record_queued_messages(&tenant(), "r-1", &masker("c-1"), 2, 1.0)
            .await
            .unwrap();
        let progress = run_all(&store, "r-1", "c-1", 50).await;
        assert_eq!(
            serde_json::to_value(progress.counts()).unwrap(),
            expected_counts(2)
        );
        let again = store
            .erase_batch(
                &tenant(),
                "r-1",
                ErasureStep::QueuedMessages,
                &masker("c-1"),
                50,
            )
            .await
            .unwrap();
        assert_eq!(again.counts()["queuedMessages"], 2);
        let recorded_again = store
            .record_queued_messages(&tenant(), "r-1", &masker("c-1"), 2, 1.0)
            .await
            .unwrap();
        assert_eq!(recorded_again.counts()["queuedMessages"], 2);
    }

    #[tokio::test]
    async fn finishing_twice_writes_one_report_and_one_audit_entry() {
        let store = seeded().await;
        store
            .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
            .await
            .unwrap();
        run_all(&store, "r-1", "c-1", 100).await;
        let audit = || {
            AuditEntry::now(
                TENANT,
                "system:test",
                "gdpr.erasure.completed",
                "erasureRequest",
                "r-1",
                "c",
            )
        };
        let (first, written) = store
            .finish_erasure(&tenant(), "r-1", json!({"n": 1}), audit())
            .await
            .unwrap();
        assert!(written);
        assert_eq!(first.status, ErasureStatus::Completed);
        let (second, written) = store
            .finish_erasure(&tenant(), "r-1", json!({"n": 2}), audit())
            .await
            .unwrap();
        assert!(!written);
        assert_eq!(second.report, Some(json!({"n": 1})));
        let completed = docs(&store, &customer_scope("c-1"), kind::AUDIT)
            .await
            .into_iter()
            .filter(|entry| entry.body["action"] == "gdpr.erasure.completed")
            .count();
        assert_eq!(completed, 1);
        assert!(matches!(
            store
                .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
                .await
                .unwrap(),
            ErasureStart::AlreadyCompleted(_)
        ));
        assert!(
            matches!(store.start_erasure(&tenant(), erasure_request("r-other", "c-1")).await.unwrap(), ErasureStart::CustomerAlreadyErased { erased_by: Some(id) } if id == "r-1")
        );
    }

    #[tokio::test]
    async fn a_request_naming_another_customer_or_a_missing_one_is_refused() {
        let store = seeded().await;
        store
            .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .start_erasure(&tenant(), erasure_request("r-1", "c-2"))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store
                .erase_batch(&tenant(), "r-1", ErasureStep::Orders, &masker("c-2"), 1)
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store
                .start_erasure(&tenant(), erasure_request("r-9", "nobody"))
                .await,
            Err(StoreError::NotFound)
        ));
        let other = TenantId::new("t2").unwrap();
        assert!(
            matches!(
                store
                    .start_erasure(&other, erasure_request("r-8", "c-1"))
                    .await,
                Err(StoreError::NotFound)
            ),
            "tenant scoped"
        );
    }
}
