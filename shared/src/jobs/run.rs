//! One run of a job: lease, checkpoint, budget, report. The job bodies (`retention`,
//! `notification_cleanup`, `maintenance`) drive it step by step.

use std::time::Instant;

use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::store::jobs::{Fence, JobRunRecord};

use super::report::{JobReport, Outcome, Resumed};
use super::{lease, Checkpoint, Job, JobContext, JobError, RunOptions, StepEnd, Trigger};

/// The tenant the run itself is audited under (each tenant it touched gets its own entry too).
pub(crate) const SYSTEM_AUDIT_TENANT: &str = "_system";

/// A run in progress.
pub struct Run<'a> {
    pub context: &'a JobContext,
    pub job: &'static Job,
    pub report: JobReport,
    pub dry_run: bool,
    holder: String,
    started: Instant,
    /// The checkpoint this run resumes from, until its step and tenant are reached.
    resume: Option<Checkpoint>,
    /// The run that started the work (this run, or the one it resumes).
    origin_run_id: String,
    last_renewal: Instant,
    /// Items processed so far (the budget stops a run only once it made progress).
    processed: u64,
    /// The store's count of throttled requests when the run started.
    throttled_at_start: u64,
    /// Audit entries the job adds to the run's own (one per reconciliation mismatch).
    pub(crate) extra_audit: Vec<AuditEntry>,
}

impl<'a> Run<'a> {
    /// Runs `job` to its end (or its budget), then records and returns the report.
    pub async fn execute(
        job: &'static Job,
        context: &'a JobContext,
        options: RunOptions,
    ) -> JobReport {
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let now = crate::domain::now();
        let mut run = Run {
            context,
            job,
            dry_run: options.dry_run,
            holder: lease::holder_id(&run_id),
            started: Instant::now(),
            resume: None,
            origin_run_id: run_id.clone(),
            last_renewal: Instant::now(),
            processed: 0,
            throttled_at_start: context.store.throttled_requests(),
            extra_audit: Vec::new(),
            report: JobReport {
                job: job.as_str().to_owned(),
                run_id,
                trigger: match options.trigger {
                    Trigger::Timer => "timer",
                    Trigger::Cli => "cli",
                }
                .to_owned(),
                dry_run: options.dry_run,
                is_past_due: options.is_past_due,
                outcome: Outcome::Finished,
                finished: false,
                started_at: now,
                finished_at: now,
                duration_ms: 0,
                counts: Default::default(),
                totals: Default::default(),
                left: Default::default(),
                findings: Default::default(),
                resumed: None,
                yielded_to: None,
                error: None,
                throttled_requests: None,
                stopped_by_throttling: false,
            },
        };
        tracing::info!(job = job.as_str(), run_id = %run.report.run_id, dry_run = run.dry_run, is_past_due = options.is_past_due, "job run starts");
        match run.take_lease().await {
            Ok(true) => {
                let result = run.body().await;
                run.conclude(result).await;
            }
            Ok(false) => {}
            Err(error) => run.conclude(Err(error)).await,
        }
        run.finish().await
    }

    /// Takes the lease (not in a dry run) and loads the checkpoint. `false`: yielded.
    async fn take_lease(&mut self) -> Result<bool, JobError> {
        if self.dry_run {
            // A feed's position is read (not written) by a dry run too, so it shows what the
            // next real run would apply.
            if self.job.keeps_checkpoint {
                self.resume = self.stored_checkpoint().await?;
            }
            return Ok(true);
        }
        let store = self.context.store.as_ref();
        match lease::acquire(
            store,
            self.job.as_str(),
            &self.holder,
            self.context.lease_ttl,
        )
        .await
        .map_err(JobError::store("lease"))?
        {
            Ok(()) => {}
            Err(held) => {
                tracing::info!(job = self.job.as_str(), holder = %held.holder, "another run holds the lease; yielding");
                self.report.outcome = Outcome::Yielded;
                self.report.yielded_to = Some(held.holder);
                return Ok(false);
            }
        }
        self.last_renewal = Instant::now();
        if let Some(value) = store
            .load_checkpoint(self.job.as_str())
            .await
            .map_err(JobError::store("checkpoint"))?
        {
            let checkpoint = Checkpoint::from_value(value).map_err(JobError::Checkpoint)?;
            if self.job.keeps_checkpoint {
                self.resume = Some(checkpoint);
            } else if self.job.steps().contains(&checkpoint.step.as_str()) {
                self.report.resumed = Some(Resumed {
                    run_id: checkpoint.run_id.clone(),
                    step: checkpoint.step.clone(),
                    tenant: checkpoint.tenant.clone(),
                });
                self.origin_run_id = checkpoint.run_id.clone();
                self.resume = Some(checkpoint);
            }
        }
        Ok(true)
    }

    /// The job's stored checkpoint, if any.
    async fn stored_checkpoint(&self) -> Result<Option<Checkpoint>, JobError> {
        let value = self
            .context
            .store
            .load_checkpoint(self.job.as_str())
            .await
            .map_err(JobError::store("checkpoint"))?;
        value
            .map(|value| Checkpoint::from_value(value).map_err(JobError::Checkpoint))
            .transpose()
    }

    async fn body(&mut self) -> Result<StepEnd, JobError> {
        (self.job.body)(self).await
    }

    /// Turns the body's result into the outcome; clears the checkpoint when done, counts what
    /// is left when not.
    async fn conclude(&mut self, result: Result<StepEnd, JobError>) {
        let outcome = match result {
            Ok(StepEnd::Done) if self.job.keeps_checkpoint => Outcome::Finished,
            Ok(StepEnd::Done) => match self.clear_checkpoint().await {
                Ok(()) => Outcome::Finished,
                Err(error) => self.failed(error),
            },
            Ok(StepEnd::OutOfTime) => Outcome::Partial,
            Err(JobError::LeaseLost) => {
                self.report.error = Some(JobError::LeaseLost.to_string());
                Outcome::LeaseLost
            }
            Err(error) => self.failed(error),
        };
        self.report.outcome = outcome;
        self.report.finished = outcome == Outcome::Finished;
        if matches!(outcome, Outcome::Partial | Outcome::Failed) {
            if let Err(error) = self.count_left().await {
                tracing::warn!(job = self.job.as_str(), error = %error, "cannot count what is left");
            }
        }
    }

    fn failed(&mut self, error: JobError) -> Outcome {
        let throttled = is_throttling(&error);
        tracing::error!(job = self.job.as_str(), run_id = %self.report.run_id, error = %error, throttled, "job run failed");
        self.report.error = Some(error.to_string());
        self.report.stopped_by_throttling = throttled;
        Outcome::Failed
    }

    async fn count_left(&mut self) -> Result<(), JobError> {
        (self.job.count_left)(self).await
    }

    /// Records the report (not for dry runs or yielded runs), releases the lease, logs.
    async fn finish(mut self) -> JobReport {
        self.report.finished_at = crate::domain::now();
        self.report.duration_ms = self.started.elapsed().as_millis() as u64;
        let store = self.context.store.as_ref();
        self.report.note_throttled_requests(
            store
                .throttled_requests()
                .saturating_sub(self.throttled_at_start),
        );
        if !self.dry_run && self.report.outcome != Outcome::Yielded {
            if let Err(error) = store
                .record_job_run(self.record(), self.audit_entries())
                .await
            {
                tracing::error!(job = self.job.as_str(), run_id = %self.report.run_id, error = %error, "cannot record the job report");
            }
            if let Err(error) = store.release_lease(self.job.as_str(), &self.holder).await {
                tracing::warn!(job = self.job.as_str(), error = %error, "cannot release the lease; it expires by itself");
            }
        }
        tracing::info!(
            job = self.job.as_str(),
            run_id = %self.report.run_id,
            outcome = self.report.outcome.as_str(),
            duration_ms = self.report.duration_ms,
            totals = ?self.report.totals,
            left = ?self.report.left,
            throttled_requests = self.report.throttled_requests.unwrap_or(0),
            "job run ends"
        );
        self.report
    }

    fn record(&self) -> JobRunRecord {
        JobRunRecord {
            run_id: self.report.run_id.clone(),
            job: self.report.job.clone(),
            outcome: self.report.outcome.as_str().to_owned(),
            started_at: self.report.started_at,
            finished_at: self.report.finished_at,
            report: serde_json::to_value(&self.report).unwrap_or_default(),
        }
    }

    /// One audit entry per tenant the run touched, and one for the run itself; the entries
    /// point at the run, whose stored report has the counts.
    fn audit_entries(&self) -> Vec<AuditEntry> {
        let actor = format!("system:{}", self.job.as_str());
        let action = format!("job.{}", self.report.outcome.as_str());
        std::iter::once(SYSTEM_AUDIT_TENANT)
            .chain(self.report.counts.keys().map(String::as_str))
            .map(|tenant| {
                let mut entry = AuditEntry::now(
                    tenant,
                    &actor,
                    &action,
                    "job_run",
                    &self.report.run_id,
                    &self.report.run_id,
                );
                entry.at = self.report.finished_at;
                entry
            })
            .chain(self.extra_audit.iter().cloned())
            .collect()
    }

    /// True when the time budget is spent. A run always gets through its first batch, so a
    /// budget too short for the setup still makes progress run after run.
    pub(crate) fn out_of_time(&self) -> bool {
        self.processed > 0 && self.started.elapsed() >= self.context.settings.max_runtime
    }

    pub(crate) fn batch_size(&self) -> u32 {
        self.context.settings.batch_size.max(1)
    }

    /// Where a keyset-scanning step starts: `None` when the checkpoint says it is already done,
    /// else the cursor to continue after (`Some(None)`: from the beginning).
    pub(crate) fn resume_cursor(
        &mut self,
        step: &str,
        tenant: Option<&TenantId>,
    ) -> Option<Option<crate::store::jobs::Cursor>> {
        match self.resume_at(step, tenant) {
            Resume::Skip => None,
            Resume::Fresh => Some(None),
            Resume::At(checkpoint) => Some(checkpoint.cursor),
        }
    }

    /// The resume point for `step` (and `tenant`, for per-tenant steps), if the checkpoint
    /// names it. Steps and tenants before it are done and return `Skip`.
    pub(crate) fn resume_at(&mut self, step: &str, tenant: Option<&TenantId>) -> Resume {
        let Some(checkpoint) = &self.resume else {
            return Resume::Fresh;
        };
        let steps = self.job.steps();
        let position = |name: &str| steps.iter().position(|s| *s == name).unwrap_or(0);
        if position(step) < position(&checkpoint.step) {
            return Resume::Skip;
        }
        if position(step) > position(&checkpoint.step) {
            self.resume = None;
            return Resume::Fresh;
        }
        match (tenant, checkpoint.tenant.as_deref()) {
            (Some(tenant), Some(at)) if tenant.as_str() < at => Resume::Skip,
            (Some(tenant), Some(at)) if tenant.as_str() > at => {
                self.resume = None;
                Resume::Fresh
            }
            _ => match self.resume.take() {
                Some(checkpoint) => Resume::At(checkpoint),
                None => Resume::Fresh,
            },
        }
    }

    /// A checkpoint of this run at `step`.
    pub fn checkpoint(&self, step: &str, tenant: Option<&TenantId>) -> Checkpoint {
        Checkpoint {
            run_id: self.origin_run_id.clone(),
            step: step.to_owned(),
            tenant: tenant.map(|tenant| tenant.as_str().to_owned()),
            ..Checkpoint::default()
        }
    }

    /// The fence a batch commits with: the lease, extended, and the next checkpoint.
    pub fn fence(&mut self, checkpoint: Option<&Checkpoint>) -> Fence {
        self.last_renewal = Instant::now();
        Fence {
            job: self.job.as_str().to_owned(),
            holder: self.holder.clone(),
            ttl: self.context.lease_ttl,
            checkpoint: checkpoint.map(Checkpoint::to_value),
        }
    }

    /// Stores `checkpoint` on its own (before archiving, say); nothing in a dry run.
    pub async fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), JobError> {
        if self.dry_run {
            return Ok(());
        }
        let fence = self.fence(Some(checkpoint));
        self.context
            .store
            .save_checkpoint(fence)
            .await
            .map_err(JobError::store("checkpoint"))
    }

    async fn clear_checkpoint(&mut self) -> Result<(), JobError> {
        if self.dry_run {
            return Ok(());
        }
        let fence = self.fence(None);
        self.context
            .store
            .save_checkpoint(fence)
            .await
            .map_err(JobError::store("checkpoint"))
    }

    /// Extends the lease when a quarter of it has passed since the last extension (for steps
    /// whose items take long, between commits).
    pub(crate) async fn keep_lease(&mut self) -> Result<(), JobError> {
        if self.dry_run || self.last_renewal.elapsed() < self.context.lease_ttl / 4 {
            return Ok(());
        }
        self.last_renewal = Instant::now();
        let ttl = self.context.lease_ttl;
        self.context
            .store
            .renew_lease(self.job.as_str(), &self.holder, ttl)
            .await
            .map_err(JobError::store("lease"))
    }

    /// Tells the progress display that `step` starts, with what it has due when counted.
    pub(crate) fn progress_step(&self, step: &str, total: Option<u64>) {
        self.context.progress.step(step, total);
    }

    /// Counts `count` items processed (and shows them).
    pub fn advance(&mut self, count: usize) {
        self.processed += count as u64;
        self.context.progress.advance(count as u64);
    }

    /// Notes a finding of the run (a short text).
    pub(crate) fn note(&mut self, key: &str, text: &str) {
        self.report
            .findings
            .insert(key.to_owned(), serde_json::Value::String(text.to_owned()));
    }

    pub fn wants_totals(&self) -> bool {
        self.context.progress.wants_totals()
    }
}

/// True when the store stopped the run by throttling (429) beyond its retries.
fn is_throttling(error: &JobError) -> bool {
    matches!(
        error,
        JobError::Store {
            source: crate::store::StoreError::Throttled { .. },
            ..
        }
    )
}

/// Where a step starts.
#[derive(Debug)]
pub(crate) enum Resume {
    /// From the beginning.
    Fresh,
    /// Already done by the run the checkpoint belongs to.
    Skip,
    /// From this checkpoint.
    At(Checkpoint),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn report() -> JobReport {
        serde_json::from_value(serde_json::json!({
            "job": "NotificationCleanup", "runId": "r1", "trigger": "cli", "dryRun": false, "isPastDue": false,
            "outcome": "failed", "finished": false, "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z",
            "durationMs": 1000, "counts": {}, "totals": {}, "left": {}
        }))
        .unwrap()
    }

    #[test]
    fn throttled_requests_appear_in_the_report_only_when_there_were_some() {
        let mut report = report();
        report.note_throttled_requests(0);
        let json = serde_json::to_value(&report).unwrap();
        assert!(
            json.get("throttledRequests").is_none() && json.get("stoppedByThrottling").is_none(),
            "{json}"
        );
        report.note_throttled_requests(7);
        assert_eq!(
            serde_json::to_value(&report).unwrap()["throttledRequests"],
            7
        );
        assert!(
            report.summary().contains("7 requests throttled (429)"),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn only_a_throttling_store_error_counts_as_throttling() {
        let throttled = JobError::Store {
            step: "tenants",
            source: StoreError::Throttled {
                backend: "cosmos",
                attempts: 3,
                retry_after: None,
            },
        };
        assert!(is_throttling(&throttled));
        let unavailable = JobError::Store {
            step: "tenants",
            source: StoreError::Unavailable {
                backend: "cosmos",
                reason: "down".into(),
            },
        };
        assert!(!is_throttling(&unavailable));
        assert!(!is_throttling(&JobError::LeaseLost));
    }
}

/// Runs on the in-memory Cosmos DB emulator with 429 answers injected below the SDK's retries.
#[cfg(all(test, feature = "cosmos-emulator"))]
mod throttling_tests {
    use std::sync::Arc;

    use azure_data_cosmos::fault_injection::{
        FaultInjectionConditionBuilder, FaultInjectionErrorType, FaultInjectionResultBuilder,
        FaultInjectionRule, FaultInjectionRuleBuilder, FaultOperationType,
    };

    use crate::archive::FolderArchive;
    use crate::config::{Settings, SettingsSource};
    use crate::jobs::{run_job, JobContext, Outcome, RunOptions, Trigger, NOTIFICATION_CLEANUP};
    use crate::store::cosmos::{in_memory, CosmosOptions, CosmosStore, DATA_CONTAINER};
    use crate::store::jobs::JobStateStore;

    /// Every query of `tenantdata` answered 429 (at most `hits` times, when given).
    fn throttled_queries(hits: Option<u32>) -> Arc<FaultInjectionRule> {
        let result = FaultInjectionResultBuilder::new()
            .with_error(FaultInjectionErrorType::TooManyRequests)
            .with_probability(1.0)
            .build();
        let condition = FaultInjectionConditionBuilder::new()
            .with_operation_type(FaultOperationType::QueryItem)
            .with_container_id(DATA_CONTAINER)
            .build();
        let rule = FaultInjectionRuleBuilder::new("throttle-tenantdata-queries", result)
            .with_condition(condition);
        Arc::new(match hits {
            Some(hits) => rule.with_hit_limit(hits).build(),
            None => rule.build(),
        })
    }

    async fn store(faults: Vec<Arc<FaultInjectionRule>>) -> CosmosStore {
        let options = CosmosOptions::for_emulator();
        in_memory(options, faults).await.unwrap().store
    }

    async fn run(store: &CosmosStore, archive: &std::path::Path) -> crate::jobs::JobReport {
        let settings =
            Settings::load(&SettingsSource::from_pairs(Vec::<(String, String)>::new())).unwrap();
        let context = JobContext::new(
            Arc::new(store.clone()),
            Arc::new(FolderArchive::new(archive)),
            settings.retention.clone(),
            settings.jobs.clone(),
            crate::erasure::ErasureContext::new(&settings),
        );
        run_job(
            &NOTIFICATION_CLEANUP,
            &context,
            RunOptions {
                trigger: Trigger::Cli,
                dry_run: false,
                is_past_due: false,
            },
        )
        .await
    }

    #[tokio::test]
    async fn a_run_the_store_keeps_throttling_fails_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(vec![throttled_queries(None)]).await;
        let report = run(&store, dir.path()).await;
        assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
        assert!(report.stopped_by_throttling, "{report:?}");
        assert!(
            report
                .error
                .as_deref()
                .is_some_and(|error| error.contains("throttling")),
            "{:?}",
            report.error
        );
        assert!(
            report.throttled_requests.is_some_and(|count| count >= 3),
            "the first answer and two retries: {:?}",
            report.throttled_requests
        );
        assert!(
            report.summary().contains("kept throttling"),
            "{}",
            report.summary()
        );
        let stored = store
            .recent_job_runs(NOTIFICATION_CLEANUP.as_str(), 1)
            .await
            .unwrap();
        assert_eq!(stored[0].report["stoppedByThrottling"], true);
        assert!(stored[0].report["throttledRequests"]
            .as_u64()
            .is_some_and(|count| count >= 3));
    }

    #[tokio::test]
    async fn throttling_the_retries_absorbed_is_reported_on_a_finished_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(vec![throttled_queries(Some(1))]).await;
        let report = run(&store, dir.path()).await;
        assert_eq!(report.outcome, Outcome::Finished, "{report:?}");
        assert!(!report.stopped_by_throttling);
        assert_eq!(report.throttled_requests, Some(1));
        let stored = store
            .recent_job_runs(NOTIFICATION_CLEANUP.as_str(), 1)
            .await
            .unwrap();
        assert_eq!(stored[0].report["throttledRequests"], 1);
    }
}
