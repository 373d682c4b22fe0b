//! Storage ports of the housekeeping jobs (`shared::jobs`): leases, checkpoints and run
//! reports ([`JobStateStore`]), the rows retention works on ([`RetentionStore`]) and what
//! maintenance looks for ([`MaintenanceStore`]).
//!
//! Every write a job makes is fenced by its lease: the adapter writes it only while the
//! caller still holds the lease, and in the same transaction (SQLite; the same partition
//! batch elsewhere) it stores the job's next checkpoint and extends the lease. A run that lost
//! its lease changes nothing more.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{StoreError, StoreResult};
use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;

/// What a fenced write fails with when the lease is no longer held by the caller.
pub(crate) const LEASE_LOST: &str = "job lease is no longer held by this run";

/// True when `error` says the caller's lease was lost (taken over after it expired).
pub fn is_lease_lost(error: &StoreError) -> bool {
    matches!(error, StoreError::Conflict(message) if message.starts_with(LEASE_LOST))
}

/// Who holds a job's lease, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: String,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    /// The caller holds the lease now.
    Acquired,
    /// Someone else holds it (and it has not expired).
    HeldBy(Lease),
}

/// A fenced write: done only while `holder` holds the lease on `job`; it extends the lease by
/// `ttl` and replaces the job's checkpoint with `checkpoint` (`None` clears it).
#[derive(Debug, Clone, PartialEq)]
pub struct Fence {
    pub job: String,
    pub holder: String,
    pub ttl: Duration,
    pub checkpoint: Option<Value>,
}

/// A finished run's report, as stored (ids and counts only).
#[derive(Debug, Clone, PartialEq)]
pub struct JobRunRecord {
    pub run_id: String,
    pub job: String,
    pub outcome: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub report: Value,
}

#[async_trait::async_trait]
pub trait JobStateStore: Send + Sync {
    /// Takes the lease on `job` for `ttl` if it is free or expired, or if it is held by
    /// `take_over` (a holder the caller knows is dead).
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        ttl: Duration,
        take_over: Option<&str>,
    ) -> StoreResult<LeaseGrant>;
    /// Extends the lease (fenced; `LEASE_LOST` when no longer held).
    async fn renew_lease(&self, job: &str, holder: &str, ttl: Duration) -> StoreResult<()>;
    /// Gives the lease up, if `holder` still holds it.
    async fn release_lease(&self, job: &str, holder: &str) -> StoreResult<()>;
    /// The job's checkpoint, if a run left one.
    async fn load_checkpoint(&self, job: &str) -> StoreResult<Option<Value>>;
    /// Replaces the checkpoint (fenced, extends the lease).
    async fn save_checkpoint(&self, fence: Fence) -> StoreResult<()>;
    /// Stores a run's report and its audit entries together.
    async fn record_job_run(&self, run: JobRunRecord, audit: Vec<AuditEntry>) -> StoreResult<()>;
    /// The latest reports of `job`, newest first.
    async fn recent_job_runs(&self, job: &str, limit: u32) -> StoreResult<Vec<JobRunRecord>>;
}

/// A keyset position in a scan ordered by `(key, id, seq)`: a time or a tenant, then the id
/// (and a line number where rows have one).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cursor {
    pub key: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: i64,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

impl Cursor {
    pub fn new(key: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            id: id.into(),
            seq: 0,
        }
    }
}

/// A notification as retention sees it: no content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRef {
    pub id: String,
    /// Filled by read-only scans (the read cleanup summarises by category); empty otherwise.
    pub category: String,
    pub created_at: DateTime<Utc>,
    /// The keyset position of this row (for the next batch).
    pub cursor: Cursor,
}

/// A customer as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRef {
    pub id: String,
    pub last_activity_at: DateTime<Utc>,
    pub cursor: Cursor,
}

/// Which notifications a retention scan selects (of one tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationScan {
    /// Created before this.
    pub before: DateTime<Utc>,
    /// Only those the recipient has read.
    pub read_only: bool,
    pub after: Option<Cursor>,
    pub limit: u32,
}

/// Rows a job removes, in one fenced transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Notifications {
        tenant: TenantId,
        ids: Vec<String>,
    },
    AuditEntries {
        tenant: TenantId,
        ids: Vec<String>,
    },
    /// `(tenant, order id, line number)`.
    OrderItems(Vec<(String, String, i64)>),
    /// `(tenant, notification id)`, any tenant.
    NotificationsByKey(Vec<(String, String)>),
    /// `(tenant, key)`.
    IdempotencyKeys(Vec<(String, String)>),
    /// `(tenant, consumer, event id)`.
    ProcessedEvents(Vec<(String, String, String)>),
}

#[async_trait::async_trait]
pub trait RetentionStore: Send + Sync {
    /// Every tenant that has any data, sorted.
    async fn tenants_with_data(&self) -> StoreResult<Vec<TenantId>>;
    /// The next notifications of `tenant` matching `scan`, oldest first.
    async fn scan_notifications(
        &self,
        tenant: &TenantId,
        scan: NotificationScan,
    ) -> StoreResult<Vec<NotificationRef>>;
    async fn count_notifications(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        read_only: bool,
    ) -> StoreResult<u64>;
    /// The next audit entries of `tenant` before `before`, oldest first, with their positions.
    async fn scan_audit(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, Cursor)>>;
    async fn count_audit(&self, tenant: &TenantId, before: DateTime<Utc>) -> StoreResult<u64>;
    /// Customers of `tenant` with no activity since `before`, least recently active first: the
    /// active ones, and those whose retention erasure (requested by
    /// [`crate::jobs::erasure::RETENTION_REQUESTER`]) started but did not complete (a crash
    /// mid-way, even after the profile step: the request still needs its report).
    async fn scan_inactive_customers(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerRef>>;
    async fn count_inactive_customers(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Removes the rows (those already gone are skipped) and writes the fence, atomically.
    /// Returns how many rows were removed.
    async fn remove_rows(&self, removal: Removal, fence: Fence) -> StoreResult<u64>;
}

/// What the storage engine's own maintenance found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineMaintenance {
    pub backend: String,
    /// `["ok"]` or the problems the integrity check lists.
    pub integrity: Vec<String>,
    pub free_pages_before: u64,
    pub free_pages_after: u64,
    pub optimized: bool,
}

#[async_trait::async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Order items whose order does not exist, by key order after `after`.
    async fn scan_orphan_order_items(
        &self,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, i64)>>;
    /// Notifications for customers that do not exist or are erased, by key after `after`.
    async fn scan_orphan_notifications(
        &self,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>>;
    /// Idempotency keys created before `before`, by key after `after`.
    async fn scan_expired_idempotency_keys(
        &self,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>>;
    /// Processed-event markers (the consumers' dedupe records) older than `before`, as
    /// `(tenant, consumer, event id)`, in key order after `after`.
    async fn scan_expired_processed_events(
        &self,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, String)>>;
    /// Orders whose customer does not exist, per tenant: reported, never removed (bookkeeping).
    async fn count_orders_without_customer(&self) -> StoreResult<Vec<(String, u64)>>;
    /// Stock reservations left by order creations that did not finish before `before` (Cosmos
    /// DB reserves stock and writes the order in two steps): released when the order does not
    /// exist, forgotten when it does. How many were settled, per tenant. SQLite reserves stock
    /// in the order's own transaction and never has any.
    async fn settle_stock_reservations(
        &self,
        before: DateTime<Utc>,
        dry_run: bool,
    ) -> StoreResult<Vec<(String, u64)>>;
    /// Engine upkeep: statistics, reclaiming free pages (unless `dry_run`), an integrity check.
    async fn maintain_engine(&self, dry_run: bool) -> StoreResult<EngineMaintenance>;
}

/// Every port the jobs use.
pub trait JobsStore: JobStateStore + RetentionStore + MaintenanceStore {}

impl<T> JobsStore for T where T: JobStateStore + RetentionStore + MaintenanceStore {}
