//! `NotificationCleanup` (daily 01:00 UTC): removes read notifications older than
//! `RETENTION_READ_NOTIFICATION_DAYS` (30, per tenant), archiving first a summary of what it
//! removes: counts per tenant, day and category, no content, under
//! `notification-summaries/{tenant}/{yyyy}/{mm}/{dd}/{part}.ndjson.gz`. The day is the day the
//! notifications were created; a day's total is the sum over its parts.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::domain::tenant::TenantId;
use crate::store::jobs::{Cursor, NotificationScan, Removal};
use crate::store::{Store, StoreResult};

use super::archive_step::{archive_tenant, ArchiveRow, ArchiveSource};
use super::policy::TenantRetention;
use super::run::Run;
use super::{JobError, StepEnd};

pub(crate) const KEEPS_CHECKPOINT: bool = false;
pub(crate) const STEPS: &[&str] = &["readNotifications"];

pub async fn run(run: &mut Run<'_>) -> Result<StepEnd, JobError> {
    let tenants = run
        .context
        .store
        .tenants_with_data()
        .await
        .map_err(JobError::store("tenants"))?;
    let now = crate::domain::now();
    let total = if run.wants_totals() {
        Some(due(run, &tenants, now).await?)
    } else {
        None
    };
    run.progress_step(STEPS[0], total);
    for tenant in &tenants {
        let before = TenantRetention::for_tenant(&run.context.retention, tenant.as_str())
            .read_notifications_before(now);
        if archive_tenant(run, &ReadNotifications { before }, tenant).await? == StepEnd::OutOfTime {
            return Ok(StepEnd::OutOfTime);
        }
    }
    Ok(StepEnd::Done)
}

async fn due(run: &Run<'_>, tenants: &[TenantId], now: DateTime<Utc>) -> Result<u64, JobError> {
    let mut total = 0;
    for tenant in tenants {
        let before = TenantRetention::for_tenant(&run.context.retention, tenant.as_str())
            .read_notifications_before(now);
        total += run
            .context
            .store
            .count_notifications(tenant, before, true)
            .await
            .map_err(JobError::store("count"))?;
    }
    Ok(total)
}

pub(crate) async fn count_left(run: &mut Run<'_>) -> Result<(), JobError> {
    let tenants = run
        .context
        .store
        .tenants_with_data()
        .await
        .map_err(JobError::store("tenants"))?;
    let left = due(run, &tenants, crate::domain::now()).await?;
    run.report.leave("readNotifications", left);
    Ok(())
}

/// Read notifications created before `before`.
struct ReadNotifications {
    before: DateTime<Utc>,
}

#[async_trait::async_trait]
impl ArchiveSource for ReadNotifications {
    fn step(&self) -> &'static str {
        STEPS[0]
    }

    fn root(&self) -> &'static str {
        "notification-summaries"
    }

    fn kind(&self) -> &'static str {
        "notification_summary"
    }

    fn counted_as(&self) -> &'static str {
        "readNotificationsRemoved"
    }

    async fn scan(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<ArchiveRow>> {
        let scan = NotificationScan {
            before: self.before,
            read_only: true,
            after,
            limit,
        };
        let rows = store.scan_notifications(tenant, scan).await?;
        Ok(rows
            .into_iter()
            .map(|row| ArchiveRow {
                id: row.id,
                day: row.created_at.date_naive(),
                cursor: row.cursor,
                doc: Value::String(row.category),
            })
            .collect())
    }

    /// One line per category: `{"tenantId", "day", "category", "removed"}`.
    fn lines(&self, tenant: &TenantId, day: NaiveDate, rows: &[ArchiveRow]) -> Vec<Value> {
        let mut per_category: BTreeMap<&str, u64> = BTreeMap::new();
        for row in rows {
            *per_category
                .entry(row.doc.as_str().unwrap_or(""))
                .or_insert(0) += 1;
        }
        let day = day.format("%Y-%m-%d").to_string();
        per_category
            .into_iter()
            .map(|(category, removed)| json!({ "tenantId": tenant.as_str(), "day": day, "category": category, "removed": removed }))
            .collect()
    }

    fn removal(&self, tenant: &TenantId, ids: Vec<String>) -> Removal {
        Removal::Notifications {
            tenant: tenant.clone(),
            ids,
        }
    }
}
