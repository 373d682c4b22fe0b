//! `OutboxRelay`: publishes the outbox's records to Service Bus (change-feed trigger on the
//! data container; in local mode the runtime feeds the SQLite outbox the same way).
//!
//! For each batch, in feed order (commit order within a partition):
//!
//! - documents that are not outbox records (every other change of the container) are skipped;
//! - each record's message is published with its `MessageId` ([`shared::outbox`]): Service Bus
//!   through its REST API in Azure, the embedded queue locally;
//! - published records are acknowledged (deleted from the outbox), so what is left is what is
//!   not yet sent: the lag `GET /api/health/ready` reports.
//!
//! A transient failure (the broker unreachable, throttling, 5xx) fails the invocation after
//! acknowledging what was sent: the host retries the whole batch without end (function.json
//! `retry`), and a record sent twice is dropped by the broker's duplicate detection or by its
//! consumer. A permanent failure (the entity does not exist, the message is too large) parks
//! the record: logged at error with its ids, counted, left in the outbox (so the lag shows it
//! until it expires), and the batch moves on, so one bad record does not stop every other.
//!
//! Live pushes (records for [`shared::outbox::REALTIME_PUSH_DESTINATION`]) are not published:
//! they become the items of the `signalR` output binding (`signalRMessages`), which the host
//! sends to Azure SignalR Service after the reply (locally: the runtime's SignalR service).
//! They are acknowledged only with a successful reply; a failed batch is retried with them.
//!
//! Every invocation logs the batch's lag (`outbox_lag_seconds`: the age of its oldest record),
//! which the Azure Monitor alert on the relay reads.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use shared::outbox::{FeedDocument, PublishError, RecordKey};
use shared::protocol::{change_feed, InvocationRequest, InvocationResponse};

use crate::invoke::{FunctionError, InvokeFuture, DOCUMENTS_BINDING};
use crate::realtime::push::{is_push, SIGNALR_OUTPUT};
use crate::startup::AppState;

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { run(state, request).await })
}

/// What one batch did.
#[derive(Debug, Default)]
struct BatchReport {
    relayed: usize,
    pushed: usize,
    parked: usize,
    skipped: usize,
    oldest: Option<DateTime<Utc>>,
}

async fn run(
    state: AppState,
    request: InvocationRequest,
) -> Result<InvocationResponse, FunctionError> {
    let documents = change_feed::documents(&request, DOCUMENTS_BINDING)?;
    let mut report = BatchReport::default();
    let mut sent: Vec<RecordKey> = Vec::new();
    let mut pushes = Pushes::default();
    let outcome = relay_all(&state, documents, &mut report, &mut sent, &mut pushes).await;
    // Pushes leave with the reply: acknowledged only when the reply is a success.
    if outcome.is_ok() {
        sent.append(&mut pushes.keys);
    }
    // What was sent is acknowledged even when a later record failed, so a retry resends less.
    state
        .ports
        .outbox
        .acknowledge_relayed(&sent)
        .await
        .map_err(|error| {
            FunctionError::Failed(format!(
                "{} records were sent but not acknowledged (a retry sends them again): {error}",
                sent.len()
            ))
        })?;
    outcome?;
    let lag_seconds = report.oldest.map_or(0.0, |at| {
        (shared::domain::now() - at).num_milliseconds() as f64 / 1000.0
    });
    tracing::info!(
        relayed = report.relayed,
        parked = report.parked,
        skipped = report.skipped,
        outbox_lag_seconds = lag_seconds,
        "outbox batch relayed"
    );
    let line = format!(
        "outbox: {} relayed, {} pushed, {} parked, {} other documents skipped; lag {lag_seconds:.3} s",
        report.relayed, report.pushed, report.parked, report.skipped
    );
    let mut reply = InvocationResponse::empty();
    if !pushes.items.is_empty() {
        reply
            .outputs
            .insert(SIGNALR_OUTPUT.to_owned(), Value::Array(pushes.items));
    }
    Ok(reply.log(line).with_return_value(json!({
        "relayed": report.relayed,
        "pushed": report.pushed,
        "parked": report.parked,
        "skipped": report.skipped,
        "lagSeconds": lag_seconds,
    })))
}

/// The batch's live pushes: the `signalR` output items and their records.
#[derive(Default)]
struct Pushes {
    items: Vec<Value>,
    keys: Vec<RecordKey>,
}

/// Publishes every outbox record of the batch in order; stops at the first transient failure.
async fn relay_all(
    state: &AppState,
    documents: Vec<Value>,
    report: &mut BatchReport,
    sent: &mut Vec<RecordKey>,
    pushes: &mut Pushes,
) -> Result<(), FunctionError> {
    for document in documents {
        let Some(record) = outbox_record(document) else {
            report.skipped += 1;
            continue;
        };
        let message = match record.message() {
            Ok(message) => message,
            Err(error) => {
                report.parked += 1;
                tracing::error!(record_id = %record.id, tenant_id = %record.tenant_id, error = %error, "outbox record parked: its message cannot be read");
                continue;
            }
        };
        report.oldest = Some(
            report
                .oldest
                .map_or(message.created_at, |oldest| oldest.min(message.created_at)),
        );
        if is_push(&message) {
            match serde_json::from_str::<Value>(&message.body) {
                Ok(item) => {
                    report.pushed += 1;
                    pushes.items.push(item);
                    pushes.keys.push(record.key());
                }
                Err(error) => {
                    report.parked += 1;
                    tracing::error!(record_id = %record.id, error = %error, "outbox push parked: its body is not JSON");
                }
            }
            continue;
        }
        match state.publisher.publish(&message).await {
            Ok(()) => {
                report.relayed += 1;
                sent.push(record.key());
            }
            Err(PublishError::Permanent(reason)) => {
                report.parked += 1;
                tracing::error!(record_id = %record.id, message_id = %message.message_id, destination = %message.destination, reason = %reason, "outbox record parked: the broker refused it for good");
            }
            Err(PublishError::Transient(reason)) => {
                return Err(FunctionError::Failed(format!(
                    "message {} to {} could not be sent (the batch is retried): {reason}",
                    message.message_id, message.destination
                )));
            }
        }
    }
    Ok(())
}

/// The document as an outbox record, or `None` for any other document of the container.
fn outbox_record(document: Value) -> Option<FeedDocument> {
    serde_json::from_value::<FeedDocument>(document)
        .ok()
        .filter(FeedDocument::is_outbox)
}
