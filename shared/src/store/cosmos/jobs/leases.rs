//! Cosmos DB adapter of [`JobStateStore`]: a job's lease and checkpoint in one document of its
//! own partition of the `jobs` container, changed only with if-match on the `_etag` read, and
//! its run reports beside it (see [the module doc](super) for the protocol).

use azure_data_cosmos::{FeedScope, PartitionKey};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DELETE_CONCURRENCY;
use crate::domain::audit::AuditEntry;
use crate::domain::now;
use crate::store::cosmos::doc::{customer_scope, kind, TENANT_SCOPE};
use crate::store::cosmos::support::{audit_doc, param, pk};
use crate::store::cosmos::{CosmosStore, BACKEND};
use crate::store::jobs::{Fence, JobRunRecord, JobStateStore, Lease, LeaseGrant, LEASE_LOST};
use crate::store::{ts, StoreError, StoreResult};

/// The id of a job's lease document.
const LEASE_ID: &str = "lease";
/// How often a lease change re-reads and retries after a concurrent change (412).
const LEASE_ATTEMPTS: usize = 5;

pub(super) fn lease_lost(job: &str) -> StoreError {
    StoreError::Conflict(format!("{LEASE_LOST} (job {job})"))
}

fn expiry(at: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60))
}

/// A job's partition in the `jobs` container.
fn job_pk(job: &str) -> PartitionKey {
    PartitionKey::from(job.to_owned())
}

/// A job's lease and checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LeaseDoc {
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
pub(super) struct RunDoc {
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
pub(super) enum Change<'a> {
    /// Extend by the ttl.
    Renew(std::time::Duration),
    /// Extend by the fence's ttl and replace the checkpoint.
    Fence(&'a Fence),
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
    pub(super) async fn change_held_lease(
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

#[cfg(all(test, feature = "cosmos-emulator"))]
mod tests {
    use super::super::testkit::*;
    use super::*;

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
}
