//! The local change feed: plays the Cosmos DB trigger of `OutboxRelay` over the store's outbox
//! (SQLite, or Cosmos DB when `handler local` runs with `STORE=cosmos`).
//!
//! Outbox records are read in order after the checkpoint (at most `batch` at a time,
//! [`shared::outbox::OutboxStore::outbox_feed`]), as the documents the Cosmos DB change feed
//! delivers ([`shared::outbox::FeedDocument`]), and handed to the relay in the envelope the host builds for a `cosmosDBTrigger`
//! ([`shared::protocol::change_feed`]). The checkpoint moves only after the relay answered with
//! success; a failed batch is retried, the same rows again, with exponential backoff and
//! without end, as the function's `retry` policy (`maxRetryCount: -1`) has the host do. With no
//! checkpoint yet the feed starts from the beginning (`startFromBeginning`), so rows written
//! while the relay was off (`handler local --no-relay`) are sent on the next run. Every
//! `rescan` the feed starts over from the beginning of what is left in the outbox: on Cosmos DB
//! the order is creation time, so a record committed after a later-stamped one could have been
//! passed over; a record parked by the relay is tried again (duplicates are dropped downstream).

use std::time::Duration;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use shared::outbox::{FeedDocument, OutboxStore};
use shared::protocol::{change_feed, InvocationRequest, SysMetadata};
use shared::store::sqlite::Db;

use super::host::{LocalHost, Reason};
use super::storage::LocalStorage;
use crate::registry::{FunctionDef, Trigger};

/// How the feed polls and backs off.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// Rows per invocation (the trigger's `maxItemsPerInvocation`).
    pub batch: usize,
    /// Wait between polls once the outbox is drained (the trigger's `feedPollDelay`).
    pub poll: Duration,
    /// First wait after a failed batch; doubled per failure up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How often the feed starts over from the beginning of the outbox.
    pub rescan: Duration,
}

impl Default for FeedOptions {
    fn default() -> Self {
        Self {
            batch: 100,
            poll: Duration::from_millis(50),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            rescan: Duration::from_secs(30),
        }
    }
}

/// Feeds the outbox of `outbox` to `def` until the task is aborted; its checkpoint is kept in
/// the local runtime's tables of `db`.
pub async fn run_feed(
    host: LocalHost,
    outbox: Arc<dyn OutboxStore>,
    db: Db,
    def: &'static FunctionDef,
    options: FeedOptions,
) {
    let storage = LocalStorage::new(db);
    let processor = processor_name(def);
    let mut last_rescan = Instant::now();
    let mut checkpoint = loop {
        match storage.load_checkpoint(&processor).await {
            Ok(checkpoint) => break checkpoint,
            Err(error) => {
                tracing::warn!(error = %error, "the change feed cannot read its checkpoint; retrying");
                tokio::time::sleep(options.max_backoff).await;
            }
        }
    };
    let mut failures: u32 = 0;
    loop {
        if last_rescan.elapsed() >= options.rescan {
            last_rescan = Instant::now();
            checkpoint = None;
        }
        let batch = match outbox.outbox_feed(checkpoint.clone(), options.batch).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(error = %error, "the change feed cannot read the outbox; retrying");
                tokio::time::sleep(options.max_backoff).await;
                continue;
            }
        };
        let Some(last) = batch.last().map(|(position, _)| position.clone()) else {
            tokio::time::sleep(options.poll).await;
            continue;
        };
        let request = envelope(def, &batch, failures);
        match host.invoke(def, &reason(def), &request).await {
            Ok(_) => {
                failures = 0;
                if let Err(error) = storage.save_checkpoint(&processor, &last).await {
                    // The next run re-reads from the old checkpoint: duplicates, not losses.
                    tracing::warn!(error = %error, "the change feed could not save its checkpoint");
                }
                checkpoint = Some(last);
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let wait = backoff(&options, failures);
                tracing::warn!(error = %error, rows = batch.len(), attempt = failures, wait_ms = wait.as_millis() as u64, "the relay failed; the same batch is retried");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The lease name of the processor (the trigger's `leaseContainerPrefix`).
fn processor_name(def: &FunctionDef) -> String {
    match def.trigger {
        Trigger::ChangeFeed { lease_prefix, .. } => lease_prefix.to_owned(),
        _ => def.name.to_owned(),
    }
}

fn reason(def: &FunctionDef) -> Reason {
    let container = match def.trigger {
        Trigger::ChangeFeed { container, .. } => container,
        _ => "",
    };
    Reason::Changes {
        container: container.to_owned(),
        at: chrono::Utc::now(),
    }
}

/// The envelope the host builds for a `cosmosDBTrigger` batch (with `RetryContext` on a retry).
pub fn envelope(
    def: &FunctionDef,
    batch: &[(String, FeedDocument)],
    failures: u32,
) -> InvocationRequest {
    let documents: Vec<Value> = batch
        .iter()
        .filter_map(|(_, document)| serde_json::to_value(document).ok())
        .collect();
    let mut request = InvocationRequest::default();
    request.data.insert(
        def.trigger_binding.to_owned(),
        change_feed::to_host_value(&documents),
    );
    let sys = SysMetadata {
        method_name: Some(def.name.to_owned()),
        utc_now: Some(chrono::Utc::now()),
        rand_guid: Some(shared::telemetry::fast_uuid()),
    };
    request.metadata.insert("sys".to_owned(), sys.to_value());
    if failures > 0 {
        request.metadata.insert(
            "RetryContext".to_owned(),
            json!({"RetryCount": failures, "MaxRetryCount": -1, "Exception": null}),
        );
    }
    request
}

/// Exponential backoff with full jitter, between `min_backoff` and `max_backoff`.
fn backoff(options: &FeedOptions, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let ceiling = options
        .min_backoff
        .saturating_mul(1u32 << exponent)
        .min(options.max_backoff);
    let floor = options.min_backoff.min(ceiling);
    floor + ceiling.saturating_sub(floor).mul_f64(fastrand_fraction())
}

fn fastrand_fraction() -> f64 {
    f64::from(uuid::Uuid::new_v4().as_u128() as u32) / f64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_ceiling_and_never_below_the_floor() {
        let options = FeedOptions::default();
        for failures in 1..40 {
            let wait = backoff(&options, failures);
            assert!(
                wait >= options.min_backoff && wait <= options.max_backoff,
                "{wait:?}"
            );
        }
    }
}
