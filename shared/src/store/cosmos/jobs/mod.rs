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
//!
//! One module per port: [`leases`] ([`JobStateStore`]), [`retention`] ([`RetentionStore`]),
//! [`maintenance`] ([`MaintenanceStore`]).
//!
//! [`JobStateStore`]: crate::store::jobs::JobStateStore
//! [`RetentionStore`]: crate::store::jobs::RetentionStore
//! [`MaintenanceStore`]: crate::store::jobs::MaintenanceStore
//! [`MaintenanceStore::scan_orphan_order_items`]: crate::store::jobs::MaintenanceStore::scan_orphan_order_items
//! [`Removal::OrderItems`]: crate::store::jobs::Removal::OrderItems

mod leases;
mod maintenance;
mod retention;

use chrono::{DateTime, Utc};

use super::BACKEND;
use crate::store::{StoreError, StoreResult};

/// Deletes in flight at once during a removal.
const DELETE_CONCURRENCY: usize = 16;
/// Record ids per lookup query (`ARRAY_CONTAINS`).
const LOOKUP_CHUNK: usize = 200;

fn shape_error(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        reason: format!("unexpected document shape: {what}"),
    }
}

/// Reads an envelope's `at` (written by [`ts`](crate::store::ts)).
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

/// What the tests of every job port share: a store on the in-memory emulator, a fence, and
/// documents put straight into `tenantdata`.
#[cfg(all(test, feature = "cosmos-emulator"))]
mod testkit {
    pub(super) use std::collections::BTreeSet;
    pub(super) use std::time::Duration;

    pub(super) use chrono::{DateTime, Utc};
    pub(super) use serde_json::{json, Value};

    pub(super) use crate::domain::now;
    pub(super) use crate::domain::tenant::TenantId;
    pub(super) use crate::store::cosmos::doc::{customer_scope, kind, Doc, TENANT_SCOPE};
    pub(super) use crate::store::cosmos::support::{audit_doc, pk};
    pub(super) use crate::store::cosmos::{in_memory, CosmosOptions, CosmosStore};
    pub(super) use crate::store::jobs::{
        is_lease_lost, Fence, JobStateStore, Removal, RetentionStore,
    };
    pub(super) use crate::store::ts;

    pub(super) const JOB: &str = "NotificationCleanup";
    pub(super) const TTL: Duration = Duration::from_secs(60);

    pub(super) fn options() -> CosmosOptions {
        CosmosOptions::for_emulator()
    }

    pub(super) async fn store() -> CosmosStore {
        in_memory(options(), Vec::new()).await.unwrap().store
    }

    pub(super) fn tenant(name: &str) -> TenantId {
        TenantId::new(name).unwrap()
    }

    pub(super) fn fence(holder: &str, checkpoint: Option<Value>) -> Fence {
        Fence {
            job: JOB.into(),
            holder: holder.into(),
            ttl: TTL,
            checkpoint,
        }
    }

    pub(super) fn days_ago(days: i64) -> DateTime<Utc> {
        now() - chrono::Duration::days(days)
    }

    /// Stores a document of `kind` with a JSON body (the adapters' envelope, no TTL).
    pub(super) async fn put(
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

    pub(super) async fn put_notification(
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

    pub(super) async fn put_customer(
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

    pub(super) async fn exists(store: &CosmosStore, tenant: &str, scope: &str, id: &str) -> bool {
        store
            .read_doc::<Value>(store.data(), pk(tenant, scope), id)
            .await
            .unwrap()
            .is_some()
    }
}
