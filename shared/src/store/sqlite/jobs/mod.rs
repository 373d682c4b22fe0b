//! SQLite adapter of the job ports ([`JobStateStore`], [`RetentionStore`],
//! [`MaintenanceStore`]): leases, checkpoints and run reports in the `job_*` tables, batched
//! scans by keyset, and removals that commit with the job's checkpoint in one transaction.
//! One module per port: [`leases`] (job state and the fence), [`retention`], [`maintenance`].
//!
//! [`JobStateStore`]: crate::store::jobs::JobStateStore
//! [`RetentionStore`]: crate::store::jobs::RetentionStore
//! [`MaintenanceStore`]: crate::store::jobs::MaintenanceStore

pub(super) mod leases;
mod maintenance;
mod retention;

use crate::store::jobs::Cursor;

/// A keyset cursor's parts (sort key, id, sequence), all `None`/0 for the first batch.
fn split(after: Option<Cursor>) -> (Option<String>, Option<String>, i64) {
    match after {
        Some(cursor) => (Some(cursor.key), Some(cursor.id), cursor.seq),
        None => (None, None, 0),
    }
}
