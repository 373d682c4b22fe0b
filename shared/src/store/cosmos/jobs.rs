//! Cosmos DB adapter of the job ports ([`JobStateStore`], [`RetentionStore`],
//! [`MaintenanceStore`]), with the SQLite adapter's behaviour.
//!
//! # Leases, checkpoints, run reports
//!
//! A job's state is one document in the `jobs` container, in the job's own partition
//! (`/jobName`): `id` = `lease`, the holder, its expiry and the job's checkpoint. Every change
//! of it reads it, checks holder and expiry, and replaces it with if-match on the `_etag` it
//! read: a 412 means another process changed it in between, so the change is read and decided
//! again (a holder that lost the lease gets `LEASE_LOST`, as from SQLite). Releasing the lease
//! keeps the document and its checkpoint (SQLite keeps checkpoints in their own table): it
//! clears the holder, so the next run resumes where this one stopped. Run reports are `jobRun`
//! documents in the same partition, listed newest first by `sortKey` (`{startedAt}|{runId}`,
//! one field, so the `jobs` container needs no composite index).
//!
//! # Fenced removals
//!
//! In SQLite a batch's removal, its checkpoint and the lease extension are one transaction.
//! Here the documents live in `tenantdata` and the lease in `jobs`: no transaction spans both.
//! A removal therefore first writes the fence (checks the lease is held and unexpired, stores
//! the checkpoint after the batch and extends the lease, with if-match) and then deletes the
//! documents (one by one; a document already gone is skipped and not counted).
//!
//! The fence goes first, not last, because of the archiving steps: they store a checkpoint
//! naming the archive part, write that part, then remove its rows with the next checkpoint.
//! Were the rows deleted first, a crash or a lost lease between the deletes and the fence would
//! leave the old checkpoint, and the run resuming there would write the same part again with
//! the rows *after* the deleted ones: the deleted rows would be gone from the store and from
//! the archive. Fence first, a run that lost its lease is refused before it deletes anything
//! (as in SQLite); a run that fails or dies during the deletes leaves some of the batch's rows
//! behind a checkpoint that says they are done: no later batch of this job run touches them,
//! the next fresh run (the checkpoint is cleared when a run finishes) finds them still due and
//! removes them then, so an archived row may be archived a second time, never lost. A lease
//! that expires during the deletes is harmless too: the new holder starts after the
//! checkpoint, so both never work on the same rows.
//!
//! # Scans
//!
//! Retention scans are single-tenant queries (a prefix of the hierarchical key) ordered by the
//! envelope's `at` (fixed-width UTC) and `id`. Maintenance scans walk the tenants in order
//! (`SELECT DISTINCT VALUE c.tenantId ... ORDER BY c.tenantId`, a streaming cross-partition
//! query) and each tenant's documents by `id`; their key order is the documents' id order,
//! which is the SQLite order except for processed events, ordered here by
//! `processedEvent:{consumer}:{eventId}` (a consistent keyset order all the same). The SDK
//! refuses aggregates in cross-partition queries (`ClientUnsupportedQueryFeature`, also for a
//! tenant prefix, which spans many logical partitions) and an unordered `DISTINCT` without a
//! `TOP` (`ClientBufferedQueryRequiresFiniteWindow`): the counts read `SELECT VALUE 1` (one
//! byte per document; the RU cost is that of the index entries read, as a `COUNT`'s), and the
//! tenant lists use an ordered `DISTINCT`. `COUNT` runs only within one logical partition.
//! The time-ordered scans (`ORDER BY c.at, c.id`) need the composite index `(at, id)`
//! ascending on a real account.
//!
//! Orders embed their items: there are never orphan order items, so
//! [`MaintenanceStore::scan_orphan_order_items`] finds none and [`Removal::OrderItems`]
//! removes nothing.

use std::collections::{BTreeMap, BTreeSet};

use azure_data_cosmos::{FeedScope, PartitionKey};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::doc::{customer_scope, doc_id, kind, CATALOG_SCOPE, TENANT_SCOPE};
use super::support::{audit_doc, param, pk, scope_feed, tenant_prefix_feed};
use super::{CosmosStore, Param, BACKEND};
use crate::domain::audit::AuditEntry;
use crate::domain::now;
use crate::domain::tenant::TenantId;
use crate::jobs::erasure::RETENTION_REQUESTER;
use crate::store::jobs::{
    Cursor, CustomerRef, EngineMaintenance, Fence, JobRunRecord, JobStateStore, Lease, LeaseGrant,
    MaintenanceStore, NotificationRef, NotificationScan, Removal, RetentionStore, LEASE_LOST,
};
use crate::store::{ts, StoreError, StoreResult};

/// The id of a job's lease document.
const LEASE_ID: &str = "lease";
/// How often a lease change re-reads and retries after a concurrent change (412).
const LEASE_ATTEMPTS: usize = 5;
/// Deletes in flight at once during a removal.
const DELETE_CONCURRENCY: usize = 16;
/// Record ids per lookup query (`ARRAY_CONTAINS`).
const LOOKUP_CHUNK: usize = 200;
/// Tenants fetched at once by the maintenance scans.
const TENANT_WINDOW: u32 = 50;
/// Notifications read at once while looking for orphans.
const ORPHAN_CHUNK: u32 = 500;
/// Documents of each container the integrity check reads (the most recently written).
const INTEGRITY_SAMPLE: u32 = 200;
/// Problems the integrity check lists at most (as SQLite's `integrity_check(100)`).
const MAX_PROBLEMS: usize = 100;
/// Document types whose `at` the jobs filter and order by.
const TIMED_KINDS: [&str; 5] = [
    kind::NOTIFICATION,
    kind::AUDIT,
    kind::CUSTOMER,
    kind::IDEMPOTENCY,
    kind::PROCESSED_EVENT,
];
/// Document types whose tenants retention visits (SQLite: the tables `tenants_with_data` reads).
const RETAINED_KINDS: [&str; 5] = [
    kind::NOTIFICATION,
    kind::AUDIT,
    kind::CUSTOMER,
    kind::ORDER,
    kind::IDEMPOTENCY,
];

fn lease_lost(job: &str) -> StoreError {
    StoreError::Conflict(format!("{LEASE_LOST} (job {job})"))
}

fn shape_error(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        reason: format!("unexpected document shape: {what}"),
    }
}

fn expiry(at: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60))
}

/// A job's partition in the `jobs` container.
fn job_pk(job: &str) -> PartitionKey {
    PartitionKey::from(job.to_owned())
}

/// Reads an envelope's `at` (written by [`ts`]).
fn parse_at(at: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(at)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| shape_error(format!("time {at:?}: {error}")))
}

/// The record id of a document id of `kind` (`notification:n-1` → `n-1`).
fn record_id(kind: &str, id: &str) -> StoreResult<String> {
    super::doc::record_id_of(kind, id)
        .ok_or_else(|| shape_error(format!("id {id:?} of a {kind} document")))
}

/// A job's lease and checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseDoc {
    id: String,
    job_name: String,
    #[serde(rename = "type")]
    kind: String,
    /// Empty while nobody holds the lease.
    #[serde(default)]
    holder: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acquired_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint: Option<Value>,
    #[serde(default, rename = "_etag", skip_serializing)]
    cosmos_etag: Option<String>,
}

impl LeaseDoc {
    fn new(job: &str) -> Self {
        Self {
            id: LEASE_ID.to_owned(),
            job_name: job.to_owned(),
            kind: kind::LEASE.to_owned(),
            holder: String::new(),
            acquired_at: None,
            expires_at: now(),
            checkpoint: None,
            cosmos_etag: None,
        }
    }

    /// `holder` holds it and it has not expired.
    fn held_by(&self, holder: &str, at: DateTime<Utc>) -> bool {
        !holder.is_empty() && self.holder == holder && self.expires_at > at
    }

    /// `holder` may take it: nobody holds it, it expired, `holder` has it already, or its
    /// holder is `take_over`.
    fn free_for(&self, holder: &str, take_over: Option<&str>, at: DateTime<Utc>) -> bool {
        self.holder.is_empty()
            || self.expires_at <= at
            || self.holder == holder
            || take_over == Some(self.holder.as_str())
    }
}

/// A finished run's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunDoc {
    id: String,
    job_name: String,
    #[serde(rename = "type")]
    kind: String,
    outcome: String,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    report: Value,
    /// `{ts(startedAt)}|{runId}`: newest first is one descending order.
    sort_key: String,
}

impl From<JobRunRecord> for RunDoc {
    fn from(run: JobRunRecord) -> Self {
        Self {
            sort_key: format!("{}|{}", ts(run.started_at), run.run_id),
            id: run.run_id,
            job_name: run.job,
            kind: kind::JOB_RUN.to_owned(),
            outcome: run.outcome,
            started_at: run.started_at,
            finished_at: run.finished_at,
            report: run.report,
        }
    }
}

impl From<RunDoc> for JobRunRecord {
    fn from(doc: RunDoc) -> Self {
        Self {
            run_id: doc.id,
            job: doc.job_name,
            outcome: doc.outcome,
            started_at: doc.started_at,
            finished_at: doc.finished_at,
            report: doc.report,
        }
    }
}

/// What a lease change does to a lease its caller holds.
enum Change<'a> {
    /// Extend by the ttl.
    Renew(std::time::Duration),
    /// Extend by the fence's ttl and replace the checkpoint.
    Fence(&'a Fence),
}

/// A document found by a lookup: where to delete it.
#[derive(Debug, Deserialize)]
struct Located {
    id: String,
    scope: String,
}

/// A row of a time-ordered scan: the envelope's `at`, plus the projected fields.
#[derive(Debug, Deserialize)]
struct Timed<T> {
    at: String,
    #[serde(flatten)]
    fields: T,
}

/// A maintenance scan of one type's documents, a tenant at a time, in id order.
struct IdScan<'a> {
    kind: &'a str,
    /// The selected fields, `c.id` among them.
    projection: &'a str,
    /// Extra conditions (`AND ...`, using `params`).
    filter: &'a str,
    params: Vec<Param>,
}

/// Notifications to customers (the orphan candidates), with their recipient.
const ORPHAN_CANDIDATES: IdScan<'static> = IdScan {
    kind: kind::NOTIFICATION,
    projection: "c.id, c.body.recipient.id AS recipient",
    filter: " AND c.body.recipient.kind = 'customer'",
    params: Vec::new(),
};

/// A time-ordered retention scan of one tenant's documents of one type, before a time.
struct TimeScan<'a> {
    kind: &'a str,
    /// Extra conditions (`AND ...`, using `params`).
    filter: String,
    params: Vec<Param>,
    before: DateTime<Utc>,
}

impl TimeScan<'_> {
    /// The `WHERE` clause and its parameters, for `tenant`.
    fn condition(&self, tenant: &TenantId) -> (String, Vec<Param>) {
        let mut params = self.params.clone();
        params.push(param("@tenant", tenant.as_str()));
        params.push(param("@kind", self.kind));
        params.push(param("@before", ts(self.before)));
        (
            format!(
                "c.tenantId = @tenant AND c.type = @kind AND c.at < @before{}",
                self.filter
            ),
            params,
        )
    }
}

/// The tenants having documents of one type, in order, from a cursor's tenant on; fetched
/// [`TENANT_WINDOW`] at a time.
struct TenantWalk<'a> {
    kind: &'a str,
    after: Option<&'a Cursor>,
    /// Where the next window starts: `(tenant, inclusive)`.
    from: Option<(String, bool)>,
    window: std::collections::VecDeque<String>,
    exhausted: bool,
}

impl<'a> TenantWalk<'a> {
    fn new(kind: &'a str, after: Option<&'a Cursor>) -> Self {
        Self {
            kind,
            after,
            from: after.map(|cursor| (cursor.key.clone(), true)),
            window: Default::default(),
            exhausted: false,
        }
    }

    /// The next tenant, and the id to continue after in it (the cursor's, in the cursor's tenant).
    async fn next(&mut self, store: &CosmosStore) -> StoreResult<Option<(String, Option<String>)>> {
        if self.window.is_empty() && !self.exhausted {
            let tenants = store.tenant_window(self.kind, self.from.as_ref()).await?;
            self.exhausted = tenants.len() < TENANT_WINDOW as usize;
            self.from = tenants.last().map(|last| (last.clone(), false));
            self.window.extend(tenants);
        }
        Ok(self.window.pop_front().map(|tenant| {
            let after_id = self
                .after
                .filter(|cursor| cursor.key == tenant)
                .map(|cursor| cursor.id.clone());
            (tenant, after_id)
        }))
    }
}

impl CosmosStore {
    async fn read_lease(&self, job: &str) -> StoreResult<Option<LeaseDoc>> {
        self.read_doc(self.jobs(), job_pk(job), LEASE_ID).await
    }

    /// Writes `doc` if the stored lease is still the one read (`doc.cosmos_etag`), or creates it.
    /// `false`: someone changed it in between.
    async fn write_lease(&self, doc: &LeaseDoc) -> StoreResult<bool> {
        let written = match doc.cosmos_etag.as_deref() {
            Some(etag) => {
                self.replace_doc(
                    self.jobs(),
                    job_pk(&doc.job_name),
                    LEASE_ID,
                    doc,
                    Some(etag),
                )
                .await
            }
            None => {
                self.create_doc(self.jobs(), job_pk(&doc.job_name), LEASE_ID, doc)
                    .await
            }
        };
        match written {
            Ok(_) => Ok(true),
            Err(
                StoreError::PreconditionFailed { .. }
                | StoreError::Conflict(_)
                | StoreError::NotFound,
            ) => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn lease_contention(job: &str) -> StoreError {
        StoreError::Unavailable {
            backend: BACKEND,
            reason: format!(
                "the lease of job {job} kept changing during {LEASE_ATTEMPTS} attempts"
            ),
        }
    }

    /// Applies `change` to the lease `holder` holds; `LEASE_LOST` when it does not hold it.
    async fn change_held_lease(
        &self,
        job: &str,
        holder: &str,
        change: Change<'_>,
    ) -> StoreResult<()> {
        for _ in 0..LEASE_ATTEMPTS {
            let at = now();
            let mut lease = self.read_lease(job).await?.ok_or_else(|| lease_lost(job))?;
            if !lease.held_by(holder, at) {
                return Err(lease_lost(job));
            }
            match &change {
                Change::Renew(ttl) => lease.expires_at = expiry(at, *ttl),
                Change::Fence(fence) => {
                    lease.expires_at = expiry(at, fence.ttl);
                    lease.checkpoint = fence.checkpoint.clone();
                }
            }
            if self.write_lease(&lease).await? {
                return Ok(());
            }
        }
        Err(Self::lease_contention(job))
    }

    /// Deletes the documents of `kind` with these record ids in the tenant (wherever their
    /// scope); returns how many existed.
    async fn delete_records(&self, tenant: &str, kind: &str, ids: &[String]) -> StoreResult<u64> {
        let mut removed = 0;
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let found = self.locate(tenant, kind, chunk).await?;
            removed += self.delete_located(tenant, found).await?;
        }
        Ok(removed)
    }

    /// Where the documents of `kind` with these record ids are (none for those gone).
    async fn locate(&self, tenant: &str, kind: &str, ids: &[String]) -> StoreResult<Vec<Located>> {
        let doc_ids: Vec<String> = ids.iter().map(|id| doc_id(kind, id)).collect();
        let sql = "SELECT c.id, c.scope FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND ARRAY_CONTAINS(@ids, c.id)";
        self.query_docs(
            self.data(),
            tenant_prefix_feed(tenant),
            sql,
            vec![
                param("@tenant", tenant),
                param("@kind", kind),
                param("@ids", doc_ids),
            ],
        )
        .await
    }

    async fn delete_located(&self, tenant: &str, found: Vec<Located>) -> StoreResult<u64> {
        futures::stream::iter(found)
            .map(|doc| async move {
                self.delete_doc(self.data(), pk(tenant, &doc.scope), &doc.id, None)
                    .await
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_fold(0u64, |removed, existed| async move {
                Ok(removed + u64::from(existed))
            })
            .await
    }

    async fn remove(&self, removal: Removal) -> StoreResult<u64> {
        match removal {
            Removal::Notifications { tenant, ids } => {
                self.delete_records(tenant.as_str(), kind::NOTIFICATION, &ids)
                    .await
            }
            Removal::AuditEntries { tenant, ids } => {
                self.delete_records(tenant.as_str(), kind::AUDIT, &ids)
                    .await
            }
            // Items are embedded in their order: there are no separate item documents.
            Removal::OrderItems(_) => Ok(0),
            Removal::NotificationsByKey(keys) => {
                self.delete_per_tenant(kind::NOTIFICATION, keys).await
            }
            Removal::IdempotencyKeys(keys) => self.delete_per_tenant(kind::IDEMPOTENCY, keys).await,
            Removal::ProcessedEvents(keys) => {
                let keys = keys
                    .into_iter()
                    .map(|(tenant, consumer, event)| (tenant, format!("{consumer}:{event}")))
                    .collect();
                self.delete_per_tenant(kind::PROCESSED_EVENT, keys).await
            }
        }
    }

    /// Deletes `(tenant, record id)` documents of `kind`, tenant by tenant.
    async fn delete_per_tenant(&self, kind: &str, keys: Vec<(String, String)>) -> StoreResult<u64> {
        let mut per_tenant: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (tenant, id) in keys {
            per_tenant.entry(tenant).or_default().push(id);
        }
        let mut removed = 0;
        for (tenant, ids) in per_tenant {
            removed += self.delete_records(&tenant, kind, &ids).await?;
        }
        Ok(removed)
    }

    /// The next `limit` rows of a time-ordered scan after `after` (`(at, record id)`).
    async fn time_scan<T: DeserializeOwned + Send + 'static>(
        &self,
        tenant: &TenantId,
        scan: &TimeScan<'_>,
        projection: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<Timed<T>>> {
        let (condition, mut params) = scan.condition(tenant);
        let position = match after {
            Some(cursor) => {
                params.push(param("@afterAt", &cursor.key));
                params.push(param("@afterId", doc_id(scan.kind, &cursor.id)));
                " AND (c.at > @afterAt OR (c.at = @afterAt AND c.id > @afterId))"
            }
            None => "",
        };
        let sql = format!("SELECT TOP {limit} c.at{projection} FROM c WHERE {condition}{position} ORDER BY c.at, c.id");
        self.query_docs(
            self.data(),
            tenant_prefix_feed(tenant.as_str()),
            &sql,
            params,
        )
        .await
    }

    /// How many documents a time-ordered scan would find. The SDK runs no `COUNT` across the
    /// tenant's partitions: this reads one byte per document instead.
    async fn time_count(&self, tenant: &TenantId, scan: &TimeScan<'_>) -> StoreResult<u64> {
        let (condition, params) = scan.condition(tenant);
        let ones: Vec<u8> = self
            .query_docs(
                self.data(),
                tenant_prefix_feed(tenant.as_str()),
                &format!("SELECT VALUE 1 FROM c WHERE {condition}"),
                params,
            )
            .await?;
        Ok(ones.len() as u64)
    }

    /// Customers with a retention erasure that started and did not complete (an interrupted one).
    async fn pending_retention_erasures(&self, tenant: &TenantId) -> StoreResult<Vec<String>> {
        let sql = "SELECT VALUE c.body.customerId FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND c.body.requestedBy = @requester AND c.body.status != 'completed'";
        let params = vec![
            param("@tenant", tenant.as_str()),
            param("@kind", kind::ERASURE),
            param("@requester", RETENTION_REQUESTER),
        ];
        let customers: BTreeSet<String> = self
            .query_docs::<String>(
                self.data(),
                tenant_prefix_feed(tenant.as_str()),
                sql,
                params,
            )
            .await?
            .into_iter()
            .collect();
        Ok(customers
            .into_iter()
            .map(|customer| doc_id(kind::CUSTOMER, &customer))
            .collect())
    }

    /// The retention scan of inactive customers (see [`RetentionStore::scan_inactive_customers`]).
    async fn inactive_scan(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
    ) -> StoreResult<TimeScan<'static>> {
        let pending = self.pending_retention_erasures(tenant).await?;
        Ok(TimeScan {
            kind: kind::CUSTOMER,
            filter: " AND (c.body.status = 'active' OR (c.body.status IN ('erasureRequested', 'erased') AND ARRAY_CONTAINS(@pending, c.id)))".into(),
            params: vec![param("@pending", pending)],
            before,
        })
    }

    /// The next tenants having documents of `kind`, in order, from `from` (`(tenant, inclusive)`).
    async fn tenant_window(
        &self,
        kind: &str,
        from: Option<&(String, bool)>,
    ) -> StoreResult<Vec<String>> {
        let mut params = vec![param("@kind", kind)];
        let position = match from {
            Some((tenant, inclusive)) => {
                params.push(param("@from", tenant));
                if *inclusive {
                    " AND c.tenantId >= @from"
                } else {
                    " AND c.tenantId > @from"
                }
            }
            None => "",
        };
        let sql = format!("SELECT DISTINCT TOP {TENANT_WINDOW} VALUE c.tenantId FROM c WHERE c.type = @kind{position} ORDER BY c.tenantId");
        self.query_docs(self.data(), FeedScope::full_container(), &sql, params)
            .await
    }

    /// One tenant's documents of `scan.kind` in id order after the document `after_doc_id`.
    async fn id_page<T: DeserializeOwned + Send + 'static>(
        &self,
        tenant: &str,
        scan: &IdScan<'_>,
        after_doc_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<T>> {
        let mut params = scan.params.clone();
        params.push(param("@tenant", tenant));
        params.push(param("@kind", scan.kind));
        let position = match after_doc_id {
            Some(id) => {
                params.push(param("@afterId", id));
                " AND c.id > @afterId"
            }
            None => "",
        };
        let sql = format!("SELECT TOP {limit} {} FROM c WHERE c.tenantId = @tenant AND c.type = @kind{}{position} ORDER BY c.id", scan.projection, scan.filter);
        self.query_docs(self.data(), tenant_prefix_feed(tenant), &sql, params)
            .await
    }

    /// Documents of `scan.kind` over every tenant in `(tenant, id)` order after `after`
    /// (`after_doc_id` turns the cursor's id into a document id), as `(tenant, document id,
    /// projected fields)`. A document id found in two scopes of a tenant comes once (its
    /// removal deletes both).
    async fn scan_after(
        &self,
        scan: &IdScan<'_>,
        after: Option<Cursor>,
        after_doc_id: impl Fn(&str) -> String,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, Value)>> {
        let mut found: Vec<(String, String, Value)> = Vec::new();
        let mut walk = TenantWalk::new(scan.kind, after.as_ref());
        while let Some((tenant, after_id)) = walk.next(self).await? {
            let mut after_doc = after_id.as_deref().map(&after_doc_id);
            loop {
                let remaining = limit.saturating_sub(found.len() as u32);
                let page: Vec<Value> = self
                    .id_page(&tenant, scan, after_doc.as_deref(), remaining)
                    .await?;
                let more = page.len() >= remaining as usize;
                for doc in page {
                    let id = doc
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| shape_error(format!("a {} document without id", scan.kind)))?
                        .to_owned();
                    after_doc = Some(id.clone());
                    if !found
                        .last()
                        .is_some_and(|(t, last, _)| *t == tenant && *last == id)
                    {
                        found.push((tenant.clone(), id, doc));
                    }
                }
                if found.len() >= limit as usize || !more {
                    break;
                }
            }
            if found.len() >= limit as usize {
                break;
            }
        }
        Ok(found)
    }

    /// Documents of `kind` written before `before` (see [`Self::scan_after`]).
    async fn expired_after(
        &self,
        kind: &str,
        projection: &str,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        after_doc_id: impl Fn(&str) -> String,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, Value)>> {
        let scan = IdScan {
            kind,
            projection,
            filter: " AND c.at < @before",
            params: vec![param("@before", ts(before))],
        };
        self.scan_after(&scan, after, after_doc_id, limit).await
    }

    /// Which of the tenant's customers exist and are not erased.
    async fn live_customers(
        &self,
        tenant: &str,
        customer_ids: &BTreeSet<String>,
    ) -> StoreResult<BTreeSet<String>> {
        let mut live = BTreeSet::new();
        let ids: Vec<String> = customer_ids
            .iter()
            .map(|id| doc_id(kind::CUSTOMER, id))
            .collect();
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let sql = "SELECT VALUE c.body.id FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND ARRAY_CONTAINS(@ids, c.id) AND c.body.status != 'erased'";
            let params = vec![
                param("@tenant", tenant),
                param("@kind", kind::CUSTOMER),
                param("@ids", chunk),
            ];
            live.extend(
                self.query_docs::<String>(self.data(), tenant_prefix_feed(tenant), sql, params)
                    .await?,
            );
        }
        Ok(live)
    }

    /// One tenant's notifications to customers that do not exist or are erased, after
    /// `after_id` (a record id), until `found` holds `limit`.
    async fn orphan_notifications_of(
        &self,
        tenant: &str,
        after_id: Option<String>,
        found: &mut Vec<(String, String)>,
        limit: usize,
    ) -> StoreResult<()> {
        let mut after_doc = after_id.map(|id| doc_id(kind::NOTIFICATION, &id));
        loop {
            let page: Vec<Value> = self
                .id_page(
                    tenant,
                    &ORPHAN_CANDIDATES,
                    after_doc.as_deref(),
                    ORPHAN_CHUNK,
                )
                .await?;
            let recipients: BTreeSet<String> = page
                .iter()
                .filter_map(|doc| doc["recipient"].as_str().map(str::to_owned))
                .collect();
            let live = self.live_customers(tenant, &recipients).await?;
            for doc in &page {
                let id = doc["id"]
                    .as_str()
                    .ok_or_else(|| shape_error("a notification without id"))?;
                let recipient = doc["recipient"].as_str().unwrap_or_default();
                if !live.contains(recipient) {
                    found.push((
                        tenant.to_owned(),
                        record_id(kind::NOTIFICATION, id)?.to_owned(),
                    ));
                    if found.len() >= limit {
                        return Ok(());
                    }
                }
                after_doc = Some(id.to_owned());
            }
            if page.len() < ORPHAN_CHUNK as usize {
                return Ok(());
            }
        }
    }

    /// Orders of one tenant whose customer document does not exist.
    async fn orders_without_customer_of(&self, tenant: &str) -> StoreResult<u64> {
        let sql = "SELECT DISTINCT VALUE c.scope FROM c WHERE c.tenantId = @tenant AND c.type = @kind ORDER BY c.scope";
        let scopes: Vec<String> = self
            .query_docs(
                self.data(),
                tenant_prefix_feed(tenant),
                sql,
                vec![param("@tenant", tenant), param("@kind", kind::ORDER)],
            )
            .await?;
        let mut orphans = 0;
        for chunk in scopes.chunks(LOOKUP_CHUNK) {
            let sql = "SELECT VALUE c.scope FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND ARRAY_CONTAINS(@scopes, c.scope)";
            let params = vec![
                param("@tenant", tenant),
                param("@kind", kind::CUSTOMER),
                param("@scopes", chunk),
            ];
            let with_customer: BTreeSet<String> = self
                .query_docs::<String>(self.data(), tenant_prefix_feed(tenant), sql, params)
                .await?
                .into_iter()
                .collect();
            for scope in chunk.iter().filter(|scope| !with_customer.contains(*scope)) {
                orphans += self.count_in_scope(tenant, scope, kind::ORDER).await?;
            }
        }
        Ok(orphans)
    }

    /// Documents of `kind` in one logical partition (a `COUNT` within one partition).
    async fn count_in_scope(&self, tenant: &str, scope: &str, kind: &str) -> StoreResult<u64> {
        let counts: Vec<u64> = self
            .query_docs(
                self.data(),
                scope_feed(tenant, scope),
                "SELECT VALUE COUNT(1) FROM c WHERE c.type = @kind",
                vec![param("@kind", kind)],
            )
            .await?;
        Ok(counts.into_iter().sum())
    }

    /// Checks a container's settings against what the store relies on.
    async fn check_container(
        &self,
        container: &azure_data_cosmos::clients::ContainerClient,
        name: &str,
        key_paths: &[&str],
        problems: &mut Vec<String>,
    ) -> StoreResult<()> {
        let properties = self
            .bounded("read container", container.read(None))
            .await?
            .into_model()
            .map_err(|error| shape_error(format!("container {name}: {error}")))?;
        let paths: Vec<&str> = properties
            .partition_key
            .paths()
            .iter()
            .map(|path| path.as_ref())
            .collect();
        if paths != key_paths {
            problems.push(format!(
                "container {name}: partition key {paths:?}, expected {key_paths:?}"
            ));
        }
        if name == super::DATA_CONTAINER {
            if properties.default_ttl == azure_data_cosmos::models::TimeToLive::Forever {
                problems.push(format!("container {name}: time to live is off, so notifications, idempotency keys and processed events never expire"));
            }
            missing_composite_indexes(name, properties.indexing_policy.as_ref(), problems);
        }
        Ok(())
    }

    /// Reads the most recently written documents of `tenantdata` and `jobs` and lists those whose
    /// envelope is broken.
    async fn check_sample(&self, problems: &mut Vec<String>) -> StoreResult<()> {
        let sql = format!("SELECT TOP {INTEGRITY_SAMPLE} * FROM c ORDER BY c._ts DESC");
        let data: Vec<Value> = self
            .query_docs(self.data(), FeedScope::full_container(), &sql, Vec::new())
            .await?;
        problems.extend(data.iter().filter_map(data_doc_problem));
        let jobs: Vec<Value> = self
            .query_docs(self.jobs(), FeedScope::full_container(), &sql, Vec::new())
            .await?;
        problems.extend(jobs.iter().filter_map(job_doc_problem));
        Ok(())
    }
}

/// Adds a problem for each composite index of [`super::data_indexing_policy`] the container lacks
/// (the listings' and scans' `ORDER BY` fail without them on a real account).
fn missing_composite_indexes(
    name: &str,
    policy: Option<&azure_data_cosmos::models::IndexingPolicy>,
    problems: &mut Vec<String>,
) {
    let Some(policy) = policy else {
        return;
    };
    let have = serde_json::to_value(&policy.composite_indexes).unwrap_or(Value::Null);
    let have = have.as_array().cloned().unwrap_or_default();
    let expected = super::data_indexing_policy();
    for index in expected["compositeIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let wanted: Vec<(String, String)> = composite_paths(index);
        if !have
            .iter()
            .any(|present| composite_paths(present) == wanted)
        {
            problems.push(format!(
                "container {name}: composite index {wanted:?} is missing"
            ));
        }
    }
}

/// A composite index as `(path, order)` pairs (the properties array, or an object holding it).
fn composite_paths(index: &Value) -> Vec<(String, String)> {
    let properties = index.get("properties").unwrap_or(index);
    properties
        .as_array()
        .into_iter()
        .flatten()
        .map(|property| {
            let text = |field: &str| {
                property[field]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
            };
            (text("path"), text("order"))
        })
        .collect()
}

/// What is wrong with a `tenantdata` document's envelope, if anything.
fn data_doc_problem(doc: &Value) -> Option<String> {
    let text = |field: &str| doc.get(field).and_then(Value::as_str).unwrap_or_default();
    let (id, tenant, scope, doc_kind) = (text("id"), text("tenantId"), text("scope"), text("type"));
    let problem = if id.is_empty() || tenant.is_empty() || doc_kind.is_empty() {
        Some("lacks id, tenantId or type".to_owned())
    } else if record_id(doc_kind, id).is_err() {
        Some(format!("id does not start with its type {doc_kind:?}"))
    } else if !(scope == CATALOG_SCOPE
        || scope == TENANT_SCOPE
        || super::doc::scope_customer(scope).is_some_and(|c| !c.is_empty()))
    {
        Some(format!(
            "scope {scope:?} is not catalog, tenant or customer:{{id}}"
        ))
    } else if doc.get("body").is_none_or(|body| !body.is_object()) {
        Some("has no body".to_owned())
    } else if TIMED_KINDS.contains(&doc_kind)
        && doc
            .get("at")
            .and_then(Value::as_str)
            .is_none_or(|at| parse_at(at).is_err())
    {
        Some("has no valid `at`, so the jobs never select it".to_owned())
    } else {
        None
    };
    problem.map(|problem| format!("tenantdata document {id:?} of tenant {tenant:?}: {problem}"))
}

/// What is wrong with a `jobs` document, if anything.
fn job_doc_problem(doc: &Value) -> Option<String> {
    let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
    let parsed = match doc.get("type").and_then(Value::as_str) {
        Some(kind::LEASE) => serde_json::from_value::<LeaseDoc>(doc.clone()).map(|_| ()),
        Some(kind::JOB_RUN) => serde_json::from_value::<RunDoc>(doc.clone()).map(|_| ()),
        other => return Some(format!("jobs document {id:?}: unknown type {other:?}")),
    };
    parsed
        .err()
        .map(|error| format!("jobs document {id:?}: {error}"))
}

#[async_trait::async_trait]
impl JobStateStore for CosmosStore {
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        ttl: std::time::Duration,
        take_over: Option<&str>,
    ) -> StoreResult<LeaseGrant> {
        for _ in 0..LEASE_ATTEMPTS {
            let at = now();
            let mut lease = self
                .read_lease(job)
                .await?
                .unwrap_or_else(|| LeaseDoc::new(job));
            if !lease.free_for(holder, take_over, at) {
                return Ok(LeaseGrant::HeldBy(Lease {
                    job: job.to_owned(),
                    holder: lease.holder,
                    expires_at: lease.expires_at,
                }));
            }
            lease.holder = holder.to_owned();
            lease.acquired_at = Some(at);
            lease.expires_at = expiry(at, ttl);
            if self.write_lease(&lease).await? {
                return Ok(LeaseGrant::Acquired);
            }
        }
        Err(Self::lease_contention(job))
    }

    async fn renew_lease(
        &self,
        job: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<()> {
        self.change_held_lease(job, holder, Change::Renew(ttl))
            .await
    }

    async fn release_lease(&self, job: &str, holder: &str) -> StoreResult<()> {
        for _ in 0..LEASE_ATTEMPTS {
            let Some(mut lease) = self.read_lease(job).await? else {
                return Ok(());
            };
            if lease.holder != holder {
                return Ok(());
            }
            lease.holder = String::new();
            lease.acquired_at = None;
            lease.expires_at = now();
            if self.write_lease(&lease).await? {
                return Ok(());
            }
        }
        Err(Self::lease_contention(job))
    }

    async fn load_checkpoint(&self, job: &str) -> StoreResult<Option<Value>> {
        Ok(self
            .read_lease(job)
            .await?
            .and_then(|lease| lease.checkpoint))
    }

    async fn save_checkpoint(&self, fence: Fence) -> StoreResult<()> {
        self.change_held_lease(&fence.job, &fence.holder, Change::Fence(&fence))
            .await
    }

    /// The audit entries first (each an upsert in its tenant's partition, so a retry writes
    /// nothing twice), then the report: no transaction spans the two containers, and an entry
    /// pointing at a missing report is the better failure than a report nobody audited.
    async fn record_job_run(&self, run: JobRunRecord, audit: Vec<AuditEntry>) -> StoreResult<()> {
        futures::stream::iter(audit)
            .map(|entry| async move {
                let scope = entry
                    .customer_id
                    .as_deref()
                    .map_or_else(|| TENANT_SCOPE.to_owned(), customer_scope);
                let doc = audit_doc(&entry, &scope);
                self.upsert_doc(
                    self.data(),
                    pk(&entry.tenant_id, &scope),
                    &doc.id,
                    &doc,
                    None,
                )
                .await
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        let doc = RunDoc::from(run);
        self.upsert_doc(
            self.jobs(),
            job_pk(&doc.job_name),
            &doc.id.clone(),
            &doc,
            None,
        )
        .await?;
        Ok(())
    }

    async fn recent_job_runs(&self, job: &str, limit: u32) -> StoreResult<Vec<JobRunRecord>> {
        let sql =
            format!("SELECT TOP {limit} * FROM c WHERE c.type = @kind ORDER BY c.sortKey DESC");
        let docs: Vec<RunDoc> = self
            .query_docs(
                self.jobs(),
                FeedScope::partition(job_pk(job)),
                &sql,
                vec![param("@kind", kind::JOB_RUN)],
            )
            .await?;
        Ok(docs.into_iter().map(JobRunRecord::from).collect())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationFields {
    record_id: String,
    #[serde(default)]
    category: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AuditFields {
    body: AuditEntry,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerFields {
    record_id: String,
}

fn notification_scan(before: DateTime<Utc>, read_only: bool) -> TimeScan<'static> {
    let filter = if read_only {
        " AND IS_DEFINED(c.body.readAt) AND NOT IS_NULL(c.body.readAt)"
    } else {
        ""
    };
    TimeScan {
        kind: kind::NOTIFICATION,
        filter: filter.into(),
        params: Vec::new(),
        before,
    }
}

fn audit_scan(before: DateTime<Utc>) -> TimeScan<'static> {
    TimeScan {
        kind: kind::AUDIT,
        filter: String::new(),
        params: Vec::new(),
        before,
    }
}

#[async_trait::async_trait]
impl RetentionStore for CosmosStore {
    async fn tenants_with_data(&self) -> StoreResult<Vec<TenantId>> {
        let sql = "SELECT DISTINCT VALUE c.tenantId FROM c WHERE ARRAY_CONTAINS(@kinds, c.type) ORDER BY c.tenantId";
        let names: Vec<String> = self
            .query_docs(
                self.data(),
                FeedScope::full_container(),
                sql,
                vec![param("@kinds", RETAINED_KINDS)],
            )
            .await?;
        let mut tenants: Vec<TenantId> = names
            .into_iter()
            .filter_map(|name| TenantId::new(name).ok())
            .collect();
        tenants.sort();
        tenants.dedup();
        Ok(tenants)
    }

    async fn scan_notifications(
        &self,
        tenant: &TenantId,
        scan: NotificationScan,
    ) -> StoreResult<Vec<NotificationRef>> {
        let query = notification_scan(scan.before, scan.read_only);
        let rows: Vec<Timed<NotificationFields>> = self
            .time_scan(
                tenant,
                &query,
                ", c.body.id AS recordId, c.body.category AS category",
                scan.after.as_ref(),
                scan.limit,
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                // Retention needs no category; the read cleanup summarises by it (as SQLite).
                let category = if scan.read_only {
                    row.fields.category.unwrap_or_default()
                } else {
                    String::new()
                };
                Ok(NotificationRef {
                    created_at: parse_at(&row.at)?,
                    category,
                    cursor: Cursor::new(row.at, row.fields.record_id.clone()),
                    id: row.fields.record_id,
                })
            })
            .collect()
    }

    async fn count_notifications(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        read_only: bool,
    ) -> StoreResult<u64> {
        self.time_count(tenant, &notification_scan(before, read_only))
            .await
    }

    async fn scan_audit(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, Cursor)>> {
        let rows: Vec<Timed<AuditFields>> = self
            .time_scan(
                tenant,
                &audit_scan(before),
                ", c.body",
                after.as_ref(),
                limit,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let cursor = Cursor::new(row.at, row.fields.body.id.clone());
                (row.fields.body, cursor)
            })
            .collect())
    }

    async fn count_audit(&self, tenant: &TenantId, before: DateTime<Utc>) -> StoreResult<u64> {
        self.time_count(tenant, &audit_scan(before)).await
    }

    async fn scan_inactive_customers(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerRef>> {
        let scan = self.inactive_scan(tenant, before).await?;
        let rows: Vec<Timed<CustomerFields>> = self
            .time_scan(
                tenant,
                &scan,
                ", c.body.id AS recordId",
                after.as_ref(),
                limit,
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(CustomerRef {
                    last_activity_at: parse_at(&row.at)?,
                    cursor: Cursor::new(row.at, row.fields.record_id.clone()),
                    id: row.fields.record_id,
                })
            })
            .collect()
    }

    async fn count_inactive_customers(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let scan = self.inactive_scan(tenant, before).await?;
        self.time_count(tenant, &scan).await
    }

    /// Fence first, then the deletes (see the module doc for why this order).
    async fn remove_rows(&self, removal: Removal, fence: Fence) -> StoreResult<u64> {
        self.change_held_lease(&fence.job, &fence.holder, Change::Fence(&fence))
            .await?;
        self.remove(removal).await
    }
}

#[async_trait::async_trait]
impl MaintenanceStore for CosmosStore {
    /// Orders embed their items: none can be orphaned.
    async fn scan_orphan_order_items(
        &self,
        _after: Option<Cursor>,
        _limit: u32,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        Ok(Vec::new())
    }

    async fn scan_orphan_notifications(
        &self,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut found = Vec::new();
        let mut walk = TenantWalk::new(kind::NOTIFICATION, after.as_ref());
        while let Some((tenant, after_id)) = walk.next(self).await? {
            self.orphan_notifications_of(&tenant, after_id, &mut found, limit as usize)
                .await?;
            if found.len() >= limit as usize {
                break;
            }
        }
        Ok(found)
    }

    async fn scan_expired_idempotency_keys(
        &self,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let docs = self
            .expired_after(
                kind::IDEMPOTENCY,
                "c.id",
                before,
                after,
                |key| doc_id(kind::IDEMPOTENCY, key),
                limit,
            )
            .await?;
        docs.into_iter()
            .map(|(tenant, id, _)| Ok((tenant, record_id(kind::IDEMPOTENCY, &id)?.to_owned())))
            .collect()
    }

    async fn scan_expired_processed_events(
        &self,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, String)>> {
        // The cursor's id is `{consumer}\n{event id}` (see the maintenance job).
        let after_doc_id = |id: &str| doc_id(kind::PROCESSED_EVENT, &id.replacen('\n', ":", 1));
        let docs = self
            .expired_after(
                kind::PROCESSED_EVENT,
                "c.id, c.body.consumer, c.body.eventId",
                before,
                after,
                after_doc_id,
                limit,
            )
            .await?;
        docs.into_iter()
            .map(|(tenant, id, doc)| {
                let field = |name: &str| {
                    doc[name].as_str().map(str::to_owned).ok_or_else(|| {
                        shape_error(format!("processed event {id:?} without {name}"))
                    })
                };
                Ok((tenant, field("consumer")?, field("eventId")?))
            })
            .collect()
    }

    async fn settle_stock_reservations(
        &self,
        before: DateTime<Utc>,
        dry_run: bool,
    ) -> StoreResult<Vec<(String, u64)>> {
        self.settle_reservations(before, dry_run).await
    }

    async fn count_orders_without_customer(&self) -> StoreResult<Vec<(String, u64)>> {
        let mut counts = Vec::new();
        let mut walk = TenantWalk::new(kind::ORDER, None);
        while let Some((tenant, _)) = walk.next(self).await? {
            let orphans = self.orders_without_customer_of(&tenant).await?;
            if orphans > 0 {
                counts.push((tenant, orphans));
            }
        }
        Ok(counts)
    }

    /// Cosmos DB needs no vacuuming or statistics: nothing is changed, dry run or not. The
    /// integrity check reads both containers' settings (partition keys, time to live, the
    /// composite indexes the queries need) and the most recently written documents of each
    /// (their envelope: id, tenant, scope, type, body, and the `at` the jobs select by).
    async fn maintain_engine(&self, _dry_run: bool) -> StoreResult<EngineMaintenance> {
        let mut problems = Vec::new();
        self.check_container(
            self.data(),
            super::DATA_CONTAINER,
            &["/tenantId", "/scope"],
            &mut problems,
        )
        .await?;
        self.check_container(
            self.jobs(),
            super::JOBS_CONTAINER,
            &["/jobName"],
            &mut problems,
        )
        .await?;
        self.check_sample(&mut problems).await?;
        problems.truncate(MAX_PROBLEMS);
        if problems.is_empty() {
            problems.push("ok".to_owned());
        }
        Ok(EngineMaintenance {
            backend: BACKEND.to_owned(),
            integrity: problems,
            free_pages_before: 0,
            free_pages_after: 0,
            optimized: false,
        })
    }
}

#[cfg(all(test, feature = "cosmos-emulator"))]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::store::cosmos::doc::Doc;
    use crate::store::cosmos::{in_memory, CosmosOptions};
    use crate::store::jobs::is_lease_lost;

    const JOB: &str = "NotificationCleanup";
    const TTL: Duration = Duration::from_secs(60);

    fn options() -> CosmosOptions {
        CosmosOptions::for_emulator()
    }

    async fn store() -> CosmosStore {
        in_memory(options(), Vec::new()).await.unwrap().store
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).unwrap()
    }

    fn fence(holder: &str, checkpoint: Option<Value>) -> Fence {
        Fence {
            job: JOB.into(),
            holder: holder.into(),
            ttl: TTL,
            checkpoint,
        }
    }

    fn days_ago(days: i64) -> DateTime<Utc> {
        now() - chrono::Duration::days(days)
    }

    /// Stores a document of `kind` with a JSON body (the adapters' envelope, no TTL).
    async fn put(
        store: &CosmosStore,
        kind: &str,
        id: &str,
        tenant: &str,
        scope: &str,
        at: DateTime<Utc>,
        body: Value,
    ) {
        let doc = Doc::new(kind, id, tenant, scope, ts(at), body).with_at(at);
        store
            .create_doc(store.data(), pk(tenant, scope), &doc.id, &doc)
            .await
            .unwrap();
    }

    async fn put_notification(
        store: &CosmosStore,
        tenant: &str,
        id: &str,
        customer: Option<&str>,
        created: DateTime<Utc>,
        read: bool,
    ) {
        let (recipient, scope) = match customer {
            Some(customer) => (
                json!({"kind": "customer", "id": customer}),
                customer_scope(customer),
            ),
            None => (
                json!({"kind": "role", "id": "admin"}),
                TENANT_SCOPE.to_owned(),
            ),
        };
        let mut body = json!({"id": id, "tenantId": tenant, "recipient": recipient, "category": "order.shipped", "title": "t", "message": "m", "createdAt": created});
        if read {
            body["readAt"] = json!(created);
        }
        put(store, kind::NOTIFICATION, id, tenant, &scope, created, body).await;
    }

    async fn put_customer(
        store: &CosmosStore,
        tenant: &str,
        id: &str,
        status: &str,
        last_activity: DateTime<Utc>,
    ) {
        put(
            store,
            kind::CUSTOMER,
            id,
            tenant,
            &customer_scope(id),
            last_activity,
            json!({"id": id, "status": status}),
        )
        .await;
    }

    async fn exists(store: &CosmosStore, tenant: &str, scope: &str, id: &str) -> bool {
        store
            .read_doc::<Value>(store.data(), pk(tenant, scope), id)
            .await
            .unwrap()
            .is_some()
    }

    #[tokio::test]
    async fn the_lease_fences_every_write_of_a_run() {
        let store = store().await;
        assert_eq!(
            store.acquire_lease(JOB, "a", TTL, None).await.unwrap(),
            LeaseGrant::Acquired
        );
        let LeaseGrant::HeldBy(lease) = store.acquire_lease(JOB, "b", TTL, None).await.unwrap()
        else {
            panic!("b must not get the lease")
        };
        assert_eq!(lease.holder, "a");
        store.renew_lease(JOB, "a", TTL).await.unwrap();
        assert!(is_lease_lost(
            &store.renew_lease(JOB, "b", TTL).await.unwrap_err()
        ));
        assert!(is_lease_lost(
            &store
                .save_checkpoint(fence("b", Some(json!({"step": "x"}))))
                .await
                .unwrap_err()
        ));

        store
            .save_checkpoint(fence("a", Some(json!({"step": "readNotifications"}))))
            .await
            .unwrap();
        store.release_lease(JOB, "b").await.unwrap();
        assert!(
            matches!(
                store.acquire_lease(JOB, "b", TTL, None).await.unwrap(),
                LeaseGrant::HeldBy(_)
            ),
            "b's release does not free a's lease"
        );
        store.release_lease(JOB, "a").await.unwrap();
        assert_eq!(
            store.load_checkpoint(JOB).await.unwrap(),
            Some(json!({"step": "readNotifications"})),
            "the checkpoint outlives the lease"
        );

        assert_eq!(
            store.acquire_lease(JOB, "b", TTL, None).await.unwrap(),
            LeaseGrant::Acquired
        );
        assert!(
            is_lease_lost(&store.save_checkpoint(fence("a", None)).await.unwrap_err()),
            "a released: its writes are refused"
        );
        assert_eq!(
            store.acquire_lease(JOB, "c", TTL, Some("b")).await.unwrap(),
            LeaseGrant::Acquired,
            "c takes over from a dead b"
        );
        store.save_checkpoint(fence("c", None)).await.unwrap();
        assert_eq!(store.load_checkpoint(JOB).await.unwrap(), None);
        assert_eq!(
            store.load_checkpoint("DatabaseMaintenance").await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_and_its_old_holder_is_fenced_off() {
        let store = store().await;
        assert_eq!(
            store
                .acquire_lease(JOB, "a", Duration::from_millis(1), None)
                .await
                .unwrap(),
            LeaseGrant::Acquired
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            is_lease_lost(&store.renew_lease(JOB, "a", TTL).await.unwrap_err()),
            "expired: no renewal (as SQLite)"
        );
        assert_eq!(
            store.acquire_lease(JOB, "b", TTL, None).await.unwrap(),
            LeaseGrant::Acquired
        );
        let removal = Removal::Notifications {
            tenant: tenant("t1"),
            ids: vec!["n1".into()],
        };
        assert!(is_lease_lost(
            &store
                .remove_rows(removal, fence("a", None))
                .await
                .unwrap_err()
        ));
    }

    #[tokio::test]
    async fn concurrent_acquires_grant_the_lease_once() {
        let store = store().await;
        let attempts = (0..8).map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.acquire_lease(JOB, &format!("h{i}"), TTL, None).await })
        });
        let grants: Vec<LeaseGrant> = futures::future::join_all(attempts)
            .await
            .into_iter()
            .map(|joined| joined.unwrap().unwrap())
            .collect();
        assert_eq!(
            grants
                .iter()
                .filter(|grant| **grant == LeaseGrant::Acquired)
                .count(),
            1,
            "{grants:?}"
        );
        let holders: BTreeSet<String> = grants
            .iter()
            .filter_map(|grant| {
                if let LeaseGrant::HeldBy(lease) = grant {
                    Some(lease.holder.clone())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(
            holders.len(),
            1,
            "everyone else sees the one holder: {holders:?}"
        );
    }

    #[tokio::test]
    async fn a_write_on_a_stale_lease_is_refused_and_decided_again() {
        let store = store().await;
        store.acquire_lease(JOB, "a", TTL, None).await.unwrap();
        let stale = store.read_lease(JOB).await.unwrap().unwrap();
        store.renew_lease(JOB, "a", TTL).await.unwrap();
        assert!(
            !store.write_lease(&stale).await.unwrap(),
            "if-match on the old _etag fails"
        );
        store
            .save_checkpoint(fence("a", Some(json!(1))))
            .await
            .unwrap();
        assert_eq!(store.load_checkpoint(JOB).await.unwrap(), Some(json!(1)));
    }

    #[tokio::test]
    async fn run_reports_are_listed_newest_first_with_their_audit_entries() {
        let store = store().await;
        for (run, minutes) in [("r1", 30), ("r2", 10), ("r3", 20)] {
            let started = now() - chrono::Duration::minutes(minutes);
            let record = JobRunRecord {
                run_id: run.into(),
                job: JOB.into(),
                outcome: "finished".into(),
                started_at: started,
                finished_at: started,
                report: json!({"runId": run}),
            };
            let audit = AuditEntry::now(
                "_system",
                "system:NotificationCleanup",
                "job.finished",
                "job_run",
                run,
                run,
            );
            store.record_job_run(record, vec![audit]).await.unwrap();
        }
        let runs = store.recent_job_runs(JOB, 2).await.unwrap();
        assert_eq!(
            runs.iter()
                .map(|run| run.run_id.as_str())
                .collect::<Vec<_>>(),
            ["r2", "r3"]
        );
        assert_eq!(runs[0].report, json!({"runId": "r2"}));
        assert!(store
            .recent_job_runs("DatabaseMaintenance", 5)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .count_audit(&tenant("_system"), now() + chrono::Duration::seconds(1))
                .await
                .unwrap(),
            3
        );
    }

    #[tokio::test]
    async fn retention_scans_in_time_order_and_removes_behind_the_fence() {
        let store = store().await;
        let (long_ago, less_long_ago) = (days_ago(120), days_ago(100));
        for (id, created, read) in [
            ("n3", less_long_ago, true),
            ("n2", long_ago, true),
            ("n1", long_ago, false),
            ("n4", days_ago(5), true),
        ] {
            put_notification(&store, "t1", id, Some("c1"), created, read).await;
        }
        put_notification(&store, "t1", "n5", None, days_ago(95), false).await;
        put_notification(&store, "t2", "n6", Some("c9"), days_ago(200), false).await;
        let t1 = tenant("t1");
        let before = days_ago(90);
        assert_eq!(
            store.count_notifications(&t1, before, false).await.unwrap(),
            4
        );
        assert_eq!(
            store.count_notifications(&t1, before, true).await.unwrap(),
            2
        );

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .scan_notifications(
                    &t1,
                    NotificationScan {
                        before,
                        read_only: false,
                        after: after.clone(),
                        limit: 3,
                    },
                )
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.cursor.clone());
            seen.extend(page.into_iter().map(|row| (row.id, row.category)));
        }
        let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["n1", "n2", "n3", "n5"], "oldest first, ties by id");
        assert!(seen.iter().all(|(_, category)| category.is_empty()));
        let read = store
            .scan_notifications(
                &t1,
                NotificationScan {
                    before,
                    read_only: true,
                    after: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            read.iter()
                .map(|row| (row.id.as_str(), row.category.as_str()))
                .collect::<Vec<_>>(),
            [("n2", "order.shipped"), ("n3", "order.shipped")]
        );

        store.acquire_lease(JOB, "a", TTL, None).await.unwrap();
        let removal = Removal::Notifications {
            tenant: t1.clone(),
            ids: vec!["n1".into(), "n5".into(), "gone".into()],
        };
        let checkpoint = json!({"cursor": read[0].cursor});
        assert_eq!(
            store
                .remove_rows(removal.clone(), fence("a", Some(checkpoint.clone())))
                .await
                .unwrap(),
            2
        );
        assert!(!exists(&store, "t1", &customer_scope("c1"), "notification:n1").await);
        assert!(!exists(&store, "t1", TENANT_SCOPE, "notification:n5").await);
        assert!(exists(&store, "t1", &customer_scope("c1"), "notification:n2").await);
        assert_eq!(store.load_checkpoint(JOB).await.unwrap(), Some(checkpoint));
        assert_eq!(
            store.remove_rows(removal, fence("a", None)).await.unwrap(),
            0,
            "already gone: nothing counted"
        );

        let lost = Removal::Notifications {
            tenant: t1.clone(),
            ids: vec!["n2".into()],
        };
        assert!(is_lease_lost(
            &store.remove_rows(lost, fence("b", None)).await.unwrap_err()
        ));
        assert!(
            exists(&store, "t1", &customer_scope("c1"), "notification:n2").await,
            "a refused fence deletes nothing"
        );
        assert_eq!(
            store.tenants_with_data().await.unwrap(),
            [tenant("t1"), tenant("t2")]
        );
    }

    #[tokio::test]
    async fn audit_and_inactive_customer_scans() {
        let store = store().await;
        let t1 = tenant("t1");
        let long_ago = days_ago(4000);
        for (id, at) in [("a2", long_ago), ("a1", long_ago), ("a3", days_ago(10))] {
            let mut entry =
                AuditEntry::now("t1", "u1", "customer.update", "customer", "c1", "corr");
            entry.id = id.into();
            entry.at = at;
            let doc = audit_doc(&entry, &customer_scope("c1"));
            store
                .create_doc(store.data(), pk("t1", &customer_scope("c1")), &doc.id, &doc)
                .await
                .unwrap();
        }
        let old = store
            .scan_audit(&t1, days_ago(3650), None, 1)
            .await
            .unwrap();
        assert_eq!(
            old.iter()
                .map(|(entry, _)| entry.id.as_str())
                .collect::<Vec<_>>(),
            ["a1"]
        );
        let rest = store
            .scan_audit(&t1, days_ago(3650), Some(old[0].1.clone()), 10)
            .await
            .unwrap();
        assert_eq!(
            rest.iter()
                .map(|(entry, _)| entry.id.as_str())
                .collect::<Vec<_>>(),
            ["a2"]
        );
        assert_eq!(store.count_audit(&t1, days_ago(3650)).await.unwrap(), 2);

        let long_ago = days_ago(3000);
        put_customer(&store, "t1", "active-old", "active", long_ago).await;
        put_customer(&store, "t1", "active-new", "active", days_ago(1)).await;
        put_customer(
            &store,
            "t1",
            "erasing-by-retention",
            "erasureRequested",
            long_ago,
        )
        .await;
        put_customer(
            &store,
            "t1",
            "erasing-by-request",
            "erasureRequested",
            long_ago,
        )
        .await;
        put_customer(&store, "t1", "erased-done", "erased", long_ago).await;
        for (customer, requester, status) in [
            ("erasing-by-retention", RETENTION_REQUESTER, "inProgress"),
            ("erasing-by-request", "u1", "accepted"),
            ("erased-done", RETENTION_REQUESTER, "completed"),
        ] {
            let body = json!({"id": format!("r-{customer}"), "customerId": customer, "requestedBy": requester, "status": status});
            put(
                &store,
                kind::ERASURE,
                &format!("r-{customer}"),
                "t1",
                &customer_scope(customer),
                long_ago,
                body,
            )
            .await;
        }
        let before = days_ago(2555);
        let found = store
            .scan_inactive_customers(&t1, before, None, 10)
            .await
            .unwrap();
        let mut ids: Vec<&str> = found.iter().map(|customer| customer.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["active-old", "erasing-by-retention"]);
        assert_eq!(
            store.count_inactive_customers(&t1, before).await.unwrap(),
            2
        );
        let next = store
            .scan_inactive_customers(&t1, before, Some(found[0].cursor.clone()), 10)
            .await
            .unwrap();
        assert_eq!(next.len(), 1, "the cursor continues after the first");
    }

    #[tokio::test]
    async fn maintenance_finds_leftovers_over_every_tenant() {
        let store = store().await;
        put_customer(&store, "t1", "c1", "active", now()).await;
        put_customer(&store, "t2", "c3", "erased", now()).await;
        put_notification(&store, "t1", "n1", Some("c1"), now(), false).await;
        put_notification(&store, "t1", "n2", Some("c2"), now(), false).await;
        put_notification(&store, "t1", "n0", None, now(), false).await;
        put_notification(&store, "t2", "n3", Some("c3"), now(), false).await;
        put_notification(&store, "t2", "n4", Some("c4"), now(), false).await;
        let first = store.scan_orphan_notifications(None, 2).await.unwrap();
        assert_eq!(
            first,
            [("t1".into(), "n2".into()), ("t2".into(), "n3".into())]
        );
        let next = store
            .scan_orphan_notifications(Some(Cursor::new("t2", "n3")), 2)
            .await
            .unwrap();
        assert_eq!(next, [("t2".to_owned(), "n4".to_owned())]);
        assert!(store
            .scan_orphan_order_items(None, 10)
            .await
            .unwrap()
            .is_empty());

        for (tenant, key, customer, hours) in [
            ("t1", "k1", "c1", 30),
            ("t1", "k2", "c1", 1),
            ("t2", "k3", "c3", 48),
        ] {
            put(
                &store,
                kind::IDEMPOTENCY,
                key,
                tenant,
                &customer_scope(customer),
                now() - chrono::Duration::hours(hours),
                json!({"key": key}),
            )
            .await;
        }
        let keys = store
            .scan_expired_idempotency_keys(now() - chrono::Duration::hours(24), None, 10)
            .await
            .unwrap();
        assert_eq!(
            keys,
            [("t1".into(), "k1".into()), ("t2".into(), "k3".into())]
        );
        let after = store
            .scan_expired_idempotency_keys(
                now() - chrono::Duration::hours(24),
                Some(Cursor::new("t1", "k1")),
                10,
            )
            .await
            .unwrap();
        assert_eq!(after, [("t2".to_owned(), "k3".to_owned())]);

        let event = |consumer: &str, event: &str| json!({"consumer": consumer, "eventId": event});
        put(
            &store,
            kind::PROCESSED_EVENT,
            "dispatch:e1",
            "t1",
            &customer_scope("c1"),
            days_ago(8),
            event("dispatch", "e1"),
        )
        .await;
        put(
            &store,
            kind::PROCESSED_EVENT,
            "dispatch:e2",
            "t1",
            &customer_scope("c1"),
            days_ago(1),
            event("dispatch", "e2"),
        )
        .await;
        let events = store
            .scan_expired_processed_events(days_ago(7), None, 10)
            .await
            .unwrap();
        assert_eq!(
            events,
            [("t1".to_owned(), "dispatch".to_owned(), "e1".to_owned())]
        );
        assert!(store
            .scan_expired_processed_events(days_ago(7), Some(Cursor::new("t1", "dispatch\ne1")), 10)
            .await
            .unwrap()
            .is_empty());

        store
            .acquire_lease("DatabaseMaintenance", "m", TTL, None)
            .await
            .unwrap();
        let fence = Fence {
            job: "DatabaseMaintenance".into(),
            holder: "m".into(),
            ttl: TTL,
            checkpoint: None,
        };
        let removed = store
            .remove_rows(
                Removal::ProcessedEvents(vec![("t1".into(), "dispatch".into(), "e1".into())]),
                fence.clone(),
            )
            .await
            .unwrap();
        assert_eq!(removed, 1);
        assert_eq!(
            store
                .remove_rows(Removal::IdempotencyKeys(keys), fence.clone())
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .remove_rows(Removal::NotificationsByKey(first), fence.clone())
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .remove_rows(
                    Removal::OrderItems(vec![("t1".into(), "o1".into(), 1)]),
                    fence
                )
                .await
                .unwrap(),
            0
        );

        put(
            &store,
            kind::ORDER,
            "o1",
            "t1",
            &customer_scope("c1"),
            now(),
            json!({"id": "o1"}),
        )
        .await;
        put(
            &store,
            kind::ORDER,
            "o2",
            "t1",
            &customer_scope("gone"),
            now(),
            json!({"id": "o2"}),
        )
        .await;
        put(
            &store,
            kind::ORDER,
            "o3",
            "t1",
            &customer_scope("gone"),
            now(),
            json!({"id": "o3"}),
        )
        .await;
        put(
            &store,
            kind::ORDER,
            "o4",
            "t2",
            &customer_scope("c3"),
            now(),
            json!({"id": "o4"}),
        )
        .await;
        assert_eq!(
            store.count_orders_without_customer().await.unwrap(),
            [("t1".to_owned(), 2)]
        );
    }

    #[tokio::test]
    async fn the_engine_check_finds_broken_envelopes() {
        let store = store().await;
        put_customer(&store, "t1", "c1", "active", now()).await;
        store.acquire_lease(JOB, "a", TTL, None).await.unwrap();
        let report = store.maintain_engine(false).await.unwrap();
        assert_eq!(
            report,
            EngineMaintenance {
                backend: "cosmos".into(),
                integrity: vec!["ok".into()],
                free_pages_before: 0,
                free_pages_after: 0,
                optimized: false
            }
        );

        let broken = json!({"id": "notification:n1", "tenantId": "t1", "scope": "tenant", "type": "notification", "body": {"id": "n1"}});
        store
            .create_doc(
                store.data(),
                pk("t1", TENANT_SCOPE),
                "notification:n1",
                &broken,
            )
            .await
            .unwrap();
        let misfiled = json!({"id": "n2", "tenantId": "t1", "scope": "tenant", "type": "audit", "at": ts(now()), "body": {}});
        store
            .create_doc(store.data(), pk("t1", TENANT_SCOPE), "n2", &misfiled)
            .await
            .unwrap();
        let report = store.maintain_engine(true).await.unwrap();
        assert_eq!(report.integrity.len(), 2, "{:?}", report.integrity);
        assert!(report
            .integrity
            .iter()
            .any(|problem| problem.contains("notification:n1") && problem.contains("`at`")));
        assert!(report
            .integrity
            .iter()
            .any(|problem| problem.contains("\"n2\"") && problem.contains("type")));
    }
}
