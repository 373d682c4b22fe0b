//! Service Bus triggers, locally: one worker per message-triggered function takes messages
//! from its queue or subscription in the embedded queue, one at a time, and completes,
//! retries or dead-letters each by the invocation's outcome.

use std::time::Duration;

use super::host::LocalHost;
use super::queue::LockedMessage;
use crate::registry::FunctionDef;

/// How often an idle worker looks for messages sent by other processes.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the worker for `def` forever.
pub async fn run_worker(host: LocalHost, def: &'static FunctionDef, entity: String) {
    loop {
        match host.queue().receive(&entity).await {
            Ok(Some(locked)) => deliver(&host, def, locked).await,
            Ok(None) => host.queue().wait_for_arrival(POLL_INTERVAL).await,
            Err(error) => {
                tracing::error!(function = def.name, %entity, %error, "cannot receive from the local queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Delivers one message and settles it: complete on success, abandon (retry or dead-letter)
/// on failure.
pub async fn deliver(host: &LocalHost, def: &'static FunctionDef, locked: LockedMessage) {
    let sequence = locked.sequence_number;
    let delivery = locked.message.delivery_count;
    let outcome = host.invoke_message(def, &locked).await;
    let settled = match &outcome {
        Ok(_) => host.queue().complete(sequence).await.map(|()| false),
        Err(failure) => host.queue().abandon(sequence, &failure.to_string()).await,
    };
    match (outcome, settled) {
        (Ok(_), Ok(_)) => {
            tracing::info!(function = def.name, sequence, delivery, "message completed")
        }
        (Err(failure), Ok(true)) => {
            tracing::warn!(function = def.name, sequence, delivery, error = %failure, "message dead-lettered after its last delivery");
        }
        (Err(failure), Ok(false)) => {
            tracing::info!(function = def.name, sequence, delivery, error = %failure, "message abandoned; it will be redelivered");
        }
        (_, Err(error)) => {
            tracing::error!(function = def.name, sequence, %error, "cannot settle the message; its lock will expire")
        }
    }
}
