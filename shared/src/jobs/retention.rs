//! `DataRetentionCleanup` (daily 02:00 UTC), per tenant with its own retention periods:
//! 1. `notifications`: deletes notifications older than `RETENTION_NOTIFICATION_DAYS` (90);
//! 2. `inactiveCustomers`: erases customers with no order, login or update for
//!    `RETENTION_INACTIVE_CUSTOMER_YEARS` (7), through the GDPR erasure;
//! 3. `auditArchive`: archives audit entries older than `RETENTION_AUDIT_YEARS` (10), then
//!    removes them.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::store::jobs::{Cursor, NotificationScan, Removal};
use crate::store::{Store, StoreResult};

use super::archive_step::{archive_tenant, ArchiveRow, ArchiveSource};
use super::erasure::request_id;
use super::policy::TenantRetention;
use super::run::Run;
use super::{JobError, StepEnd};
use crate::erasure::{erase_inactive_customer, ErasureContext, ErasureOutcome};

pub(crate) const KEEPS_CHECKPOINT: bool = false;
pub(crate) const STEPS: &[&str] = &["notifications", "inactiveCustomers", "auditArchive"];

/// Runs every step over every tenant.
pub async fn run(run: &mut Run<'_>) -> Result<StepEnd, JobError> {
    let tenants = run
        .context
        .store
        .tenants_with_data()
        .await
        .map_err(JobError::store("tenants"))?;
    let now = crate::domain::now();
    for step in STEPS {
        if run.wants_totals() {
            let total = due(run, step, &tenants, now).await?;
            run.progress_step(step, Some(total));
        } else {
            run.progress_step(step, None);
        }
        for tenant in &tenants {
            let policy = TenantRetention::for_tenant(&run.context.retention, tenant.as_str());
            let end = match *step {
                "notifications" => {
                    delete_notifications(run, tenant, policy.notifications_before(now)).await?
                }
                "inactiveCustomers" => {
                    erase_inactive(run, tenant, policy.inactive_before(now)).await?
                }
                _ => {
                    archive_tenant(
                        run,
                        &AuditSource {
                            before: policy.audit_before(now),
                        },
                        tenant,
                    )
                    .await?
                }
            };
            if end == StepEnd::OutOfTime {
                return Ok(end);
            }
        }
    }
    Ok(StepEnd::Done)
}

/// What `step` has due over `tenants`.
async fn due(
    run: &Run<'_>,
    step: &str,
    tenants: &[TenantId],
    now: DateTime<Utc>,
) -> Result<u64, JobError> {
    let store = run.context.store.as_ref();
    let mut total = 0;
    for tenant in tenants {
        let policy = TenantRetention::for_tenant(&run.context.retention, tenant.as_str());
        total += match step {
            "notifications" => {
                store
                    .count_notifications(tenant, policy.notifications_before(now), false)
                    .await
            }
            "inactiveCustomers" => {
                store
                    .count_inactive_customers(tenant, policy.inactive_before(now))
                    .await
            }
            _ => store.count_audit(tenant, policy.audit_before(now)).await,
        }
        .map_err(JobError::store("count"))?;
    }
    Ok(total)
}

/// What is still due after a run that stopped early, per kind.
pub(crate) async fn count_left(run: &mut Run<'_>) -> Result<(), JobError> {
    let tenants = run
        .context
        .store
        .tenants_with_data()
        .await
        .map_err(JobError::store("tenants"))?;
    let now = crate::domain::now();
    for (step, kind) in STEPS
        .iter()
        .zip(["notifications", "inactiveCustomers", "auditEntries"])
    {
        let count = due(run, step, &tenants, now).await?;
        run.report.leave(kind, count);
    }
    Ok(())
}

/// Deletes the tenant's notifications created before `before`, batch by batch.
async fn delete_notifications(
    run: &mut Run<'_>,
    tenant: &TenantId,
    before: DateTime<Utc>,
) -> Result<StepEnd, JobError> {
    const STEP: &str = "notifications";
    let Some(mut cursor) = run.resume_cursor(STEP, Some(tenant)) else {
        return Ok(StepEnd::Done);
    };
    let store = run.context.store.clone();
    loop {
        if run.out_of_time() {
            return Ok(StepEnd::OutOfTime);
        }
        let scan = NotificationScan {
            before,
            read_only: false,
            after: cursor.clone(),
            limit: run.batch_size(),
        };
        let rows = store
            .scan_notifications(tenant, scan)
            .await
            .map_err(JobError::store(STEP))?;
        let Some(last) = rows.last().map(|row| row.cursor.clone()) else {
            return Ok(StepEnd::Done);
        };
        let count = rows.len();
        if run.dry_run {
            run.report
                .add(tenant.as_str(), "notificationsDeleted", count as u64);
        } else {
            let mut checkpoint = run.checkpoint(STEP, Some(tenant));
            checkpoint.cursor = Some(last.clone());
            let fence = run.fence(Some(&checkpoint));
            let ids = rows.into_iter().map(|row| row.id).collect();
            let removed = store
                .remove_rows(
                    Removal::Notifications {
                        tenant: tenant.clone(),
                        ids,
                    },
                    fence,
                )
                .await
                .map_err(JobError::store(STEP))?;
            run.report
                .add(tenant.as_str(), "notificationsDeleted", removed);
        }
        run.advance(count);
        cursor = Some(last);
    }
}

/// Erases the tenant's customers inactive since before `before`, one by one, a checkpoint per
/// batch. An erasure is idempotent per request id, so a customer whose erasure a crash
/// interrupted is finished (not erased twice) by the next run.
async fn erase_inactive(
    run: &mut Run<'_>,
    tenant: &TenantId,
    before: DateTime<Utc>,
) -> Result<StepEnd, JobError> {
    const STEP: &str = "inactiveCustomers";
    let Some(mut cursor) = run.resume_cursor(STEP, Some(tenant)) else {
        return Ok(StepEnd::Done);
    };
    let store = run.context.store.clone();
    let erasure = run.context.erasure.clone();
    loop {
        if run.out_of_time() {
            return Ok(StepEnd::OutOfTime);
        }
        let customers = store
            .scan_inactive_customers(tenant, before, cursor.clone(), run.batch_size())
            .await
            .map_err(JobError::store(STEP))?;
        if customers.is_empty() {
            return Ok(StepEnd::Done);
        }
        for customer in customers {
            let kind = if run.dry_run {
                "customersAnonymised"
            } else {
                run.keep_lease().await?;
                match erase_with_retries(store.as_ref(), &erasure, tenant, &customer.id).await {
                    Ok(ErasureOutcome::Completed(_)) => "customersAnonymised",
                    Ok(
                        ErasureOutcome::AlreadyCompleted(_)
                        | ErasureOutcome::CustomerAlreadyErased { .. },
                    ) => "customersAlreadyErased",
                    Err(reason) => {
                        // The checkpoint stays just before this customer, and the run does not
                        // report `finished`: the next run resumes here and completes the same
                        // erasure request (its id is fixed per customer).
                        save_cursor(run, STEP, tenant, cursor.clone()).await?;
                        return Err(JobError::Erasure {
                            tenant: tenant.to_string(),
                            customer_id: customer.id,
                            reason,
                        });
                    }
                }
            };
            run.report.add(tenant.as_str(), kind, 1);
            run.advance(1);
            cursor = Some(customer.cursor);
            if run.out_of_time() {
                save_cursor(run, STEP, tenant, cursor.clone()).await?;
                return Ok(StepEnd::OutOfTime);
            }
        }
        save_cursor(run, STEP, tenant, cursor.clone()).await?;
    }
}

/// Attempts at one inactive customer's erasure before the run stops on it.
const ERASURE_ATTEMPTS: u32 = 3;

/// Erases one inactive customer, trying again after a short pause when it fails (a busy
/// database, a throttled store): the erasure resumes where the last attempt stopped.
async fn erase_with_retries(
    store: &dyn Store,
    erasure: &ErasureContext,
    tenant: &TenantId,
    customer_id: &str,
) -> Result<ErasureOutcome, String> {
    let mut attempt = 1;
    loop {
        match erase_inactive_customer(
            store,
            erasure,
            tenant,
            customer_id,
            &request_id(customer_id),
        )
        .await
        .map_err(|error| error.to_string())
        {
            Err(reason) if attempt < ERASURE_ATTEMPTS => {
                tracing::warn!(tenant = %tenant, customer_id, attempt, %reason, "erasing an inactive customer failed; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn save_cursor(
    run: &mut Run<'_>,
    step: &str,
    tenant: &TenantId,
    cursor: Option<Cursor>,
) -> Result<(), JobError> {
    let mut checkpoint = run.checkpoint(step, Some(tenant));
    checkpoint.cursor = cursor;
    run.save(&checkpoint).await
}

/// Audit entries older than the audit retention, archived whole (ids and codes only).
struct AuditSource {
    before: DateTime<Utc>,
}

#[async_trait::async_trait]
impl ArchiveSource for AuditSource {
    fn step(&self) -> &'static str {
        "auditArchive"
    }

    fn root(&self) -> &'static str {
        "audit"
    }

    fn kind(&self) -> &'static str {
        "audit_entry"
    }

    fn counted_as(&self) -> &'static str {
        "auditEntriesArchived"
    }

    async fn scan(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<ArchiveRow>> {
        let entries = store.scan_audit(tenant, self.before, after, limit).await?;
        Ok(entries.into_iter().map(audit_row).collect())
    }

    fn lines(
        &self,
        _tenant: &TenantId,
        _day: chrono::NaiveDate,
        rows: &[ArchiveRow],
    ) -> Vec<Value> {
        rows.iter().map(|row| row.doc.clone()).collect()
    }

    fn removal(&self, tenant: &TenantId, ids: Vec<String>) -> Removal {
        Removal::AuditEntries {
            tenant: tenant.clone(),
            ids,
        }
    }
}

fn audit_row((entry, cursor): (AuditEntry, Cursor)) -> ArchiveRow {
    ArchiveRow {
        id: entry.id.clone(),
        day: entry.at.date_naive(),
        cursor,
        doc: serde_json::to_value(&entry).unwrap_or(Value::Null),
    }
}
