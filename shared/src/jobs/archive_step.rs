//! Archive, then remove: the batch loop shared by audit archival (`DataRetentionCleanup`) and
//! the notification summaries (`NotificationCleanup`).
//!
//! Per tenant, oldest first, a batch holds items of one day only. Before writing, the run
//! stores a checkpoint naming the day, the part number and the position the batch starts
//! after; the object `{root}/{tenant}/{yyyy}/{mm}/{dd}/{part:05}.ndjson.gz` and its manifest
//! are written, read back and verified; then the items are removed in one transaction with the
//! next checkpoint. A run killed anywhere in between resumes with the same batch at the same
//! key and overwrites it: no item is lost, none is archived twice. A day first touched by a run
//! continues after the parts already archived for it.

use chrono::NaiveDate;
use serde_json::Value;

use crate::archive::{write_verified, ArchiveStore};
use crate::domain::tenant::TenantId;
use crate::store::jobs::{Cursor, Removal};
use crate::store::{Store, StoreResult};

use super::run::{Resume, Run};
use super::{JobError, StepEnd};

/// One item to archive.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveRow {
    pub id: String,
    pub day: NaiveDate,
    pub cursor: Cursor,
    /// What the item contributes to the archive (ids and codes only).
    pub doc: Value,
}

/// What an archiving step archives and removes.
#[async_trait::async_trait]
pub(crate) trait ArchiveSource: Send + Sync {
    /// The step name (in the checkpoint).
    fn step(&self) -> &'static str;
    /// The first segment of archive keys (`audit`, `notification-summaries`).
    fn root(&self) -> &'static str;
    /// What the archived lines are (in the manifest).
    fn kind(&self) -> &'static str;
    /// The report's count of removed items.
    fn counted_as(&self) -> &'static str;
    async fn scan(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<ArchiveRow>>;
    /// The archive lines for one batch (one tenant, one day).
    fn lines(&self, tenant: &TenantId, day: NaiveDate, rows: &[ArchiveRow]) -> Vec<Value>;
    fn removal(&self, tenant: &TenantId, ids: Vec<String>) -> Removal;
}

/// The archive key prefix of a tenant's day.
pub(crate) fn day_prefix(root: &str, tenant: &TenantId, day: NaiveDate) -> String {
    format!("{root}/{tenant}/{}/", day.format("%Y/%m/%d"))
}

/// The part number after the last one stored under `prefix` (0 when there is none).
async fn next_free_part(
    archive: &dyn ArchiveStore,
    prefix: &str,
) -> Result<u32, crate::archive::ArchiveError> {
    let keys = archive.list(prefix).await?;
    let last = keys
        .iter()
        .filter_map(|key| key.strip_prefix(prefix))
        .filter_map(|name| name.split('.').next())
        .filter_map(|part| part.parse::<u32>().ok())
        .max();
    Ok(last.map_or(0, |last| last + 1))
}

/// Archives then removes every due item of `tenant` from `source`.
pub(crate) async fn archive_tenant(
    run: &mut Run<'_>,
    source: &dyn ArchiveSource,
    tenant: &TenantId,
) -> Result<StepEnd, JobError> {
    let step = source.step();
    let (mut cursor, mut next_part) = match run.resume_at(step, Some(tenant)) {
        Resume::Skip => return Ok(StepEnd::Done),
        Resume::Fresh => (None, None),
        Resume::At(checkpoint) => (checkpoint.cursor, checkpoint.day.zip(checkpoint.part)),
    };
    let store = run.context.store.clone();
    let archive = run.context.archive.clone();
    loop {
        if run.out_of_time() {
            return Ok(StepEnd::OutOfTime);
        }
        let mut rows = source
            .scan(store.as_ref(), tenant, cursor.clone(), run.batch_size())
            .await
            .map_err(JobError::store(step))?;
        let Some(day) = rows.first().map(|row| row.day) else {
            return Ok(StepEnd::Done);
        };
        let same_day = rows.iter().take_while(|row| row.day == day).count();
        rows.truncate(same_day);
        let last = rows.last().map(|row| row.cursor.clone());
        let count = rows.len();
        if run.dry_run {
            run.report
                .add(tenant.as_str(), source.counted_as(), count as u64);
            run.report.add(tenant.as_str(), "archiveObjects", 1);
        } else {
            let day_text = day.format("%Y-%m-%d").to_string();
            let prefix = day_prefix(source.root(), tenant, day);
            let part = match &next_part {
                Some((at, part)) if *at == day_text => *part,
                _ => next_free_part(archive.as_ref(), &prefix)
                    .await
                    .map_err(JobError::archive(step))?,
            };
            let mut checkpoint = run.checkpoint(step, Some(tenant));
            checkpoint.cursor = cursor.clone();
            checkpoint.day = Some(day_text.clone());
            checkpoint.part = Some(part);
            run.save(&checkpoint).await?;
            let lines = source.lines(tenant, day, &rows);
            let written = write_verified(
                archive.as_ref(),
                &format!("{prefix}{part:05}"),
                source.kind(),
                &lines,
            )
            .await
            .map_err(JobError::archive(step))?;
            checkpoint.cursor = last.clone();
            checkpoint.part = Some(part + 1);
            let fence = run.fence(Some(&checkpoint));
            let ids = rows.into_iter().map(|row| row.id).collect();
            let removed = store
                .remove_rows(source.removal(tenant, ids), fence)
                .await
                .map_err(JobError::store(step))?;
            tracing::debug!(tenant = %tenant, object = %written.object_key, items = written.manifest.items, removed, "archived batch");
            run.report
                .add(tenant.as_str(), source.counted_as(), removed);
            run.report.add(tenant.as_str(), "archiveObjects", 1);
            next_part = Some((day_text, part + 1));
        }
        run.advance(count);
        cursor = last;
    }
}
