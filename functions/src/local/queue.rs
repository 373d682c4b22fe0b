//! The embedded durable queue: Service Bus queues and topic subscriptions, locally, in the
//! local runtime's storage ([`super::storage`], in the app's SQLite database).
//!
//! Peek-lock semantics as Service Bus has them: receiving a message locks it and increments
//! its `DeliveryCount`; completing deletes it; abandoning makes it visible again (after a
//! short retry delay); a lock that expires (the process died mid-invocation) makes it visible
//! again too. After `maxDeliveryCount` deliveries a message is dead-lettered with the reason
//! `MaxDeliveryCountExceeded` and the last error. Dead letters can be listed and replayed.
//!
//! Duplicate detection as the app's entities have it (`requiresDuplicateDetection`, one hour in
//! Bicep): a message sent with a `MessageId` that the same queue or topic accepted within
//! [`DUPLICATE_DETECTION_WINDOW`] is accepted and dropped.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{Map, Value};
use shared::protocol::OutgoingMessage;
use shared::store::sqlite::Db;

use super::storage::LocalStorage;
use shared::store::StoreError;
use tokio::sync::Notify;

use crate::registry::{entities_for, MessageTarget};

/// The reason Service Bus gives when a message ran out of deliveries.
pub const MAX_DELIVERY_REASON: &str = "MaxDeliveryCountExceeded";

/// How long a queue or topic remembers the `MessageId`s it accepted (Bicep's
/// `duplicateDetectionHistoryTimeWindow`).
pub const DUPLICATE_DETECTION_WINDOW: chrono::Duration = chrono::Duration::hours(1);

/// Queue behaviour (from the `LOCAL_QUEUE_*` settings).
#[derive(Debug, Clone, Copy)]
pub struct QueueOptions {
    pub max_delivery_count: u32,
    pub lock_duration: Duration,
    pub retry_delay: Duration,
}

/// A message to send: the body and the properties a sender may set.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub body: String,
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    pub content_type: Option<String>,
    pub application_properties: Map<String, Value>,
}

/// Records `message_id` as accepted by `target` now; `false` when it was accepted within the
/// duplicate-detection window (the message is then dropped). Forgets ids older than the window.
fn remember_message_id(
    conn: &rusqlite::Connection,
    target: &str,
    message_id: &str,
) -> rusqlite::Result<bool> {
    let now = Utc::now();
    let window_start = (now - DUPLICATE_DETECTION_WINDOW).to_rfc3339();
    conn.prepare_cached("DELETE FROM local_queue_message_ids WHERE enqueued_at < ?1")?
        .execute(params![window_start])?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO local_queue_message_ids (target, message_id, enqueued_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (target, message_id) DO NOTHING",
        )?
        .execute(params![target, message_id, now.to_rfc3339()])?;
    Ok(inserted == 1)
}

/// A message received under a lock.
#[derive(Debug, Clone)]
pub struct LockedMessage {
    pub sequence_number: i64,
    pub entity: String,
    pub message: OutgoingMessage,
}

/// A stored message as listings show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    pub sequence_number: i64,
    pub entity: String,
    pub message_id: String,
    pub delivery_count: u32,
    pub enqueued_time_utc: DateTime<Utc>,
    pub correlation_id: Option<String>,
    pub content_type: Option<String>,
    pub application_properties: Map<String, Value>,
    pub body: String,
    pub state: String,
    pub last_error: Option<String>,
    pub dead_letter_reason: Option<String>,
    pub dead_lettered_at: Option<DateTime<Utc>>,
}

/// Handle on the queue tables; cheap to clone.
#[derive(Clone)]
pub struct LocalQueue {
    storage: LocalStorage,
    options: QueueOptions,
    arrivals: Arc<Notify>,
}

const COLUMNS: &str = "sequence_number, entity, message_id, body, content_type, correlation_id, \
    application_properties, enqueued_at, delivery_count, state, last_error, dead_letter_reason, dead_lettered_at";

impl LocalQueue {
    pub fn new(db: Db, options: QueueOptions) -> Self {
        Self {
            storage: LocalStorage::new(db),
            options,
            arrivals: Arc::new(Notify::new()),
        }
    }

    pub fn options(&self) -> QueueOptions {
        self.options
    }

    /// Sends one message to a queue, or a copy to each subscription of a topic. Returns the
    /// sequence numbers given (none for a topic without subscriptions, or for a duplicate of a
    /// `MessageId` the target accepted within [`DUPLICATE_DETECTION_WINDOW`]).
    pub async fn send(
        &self,
        target: MessageTarget,
        message: NewMessage,
    ) -> Result<Vec<i64>, StoreError> {
        let entities = entities_for(target);
        let target_name = target.name();
        let detect_duplicates = message.message_id.is_some();
        let message_id = message
            .message_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let properties = Value::Object(message.application_properties.clone()).to_string();
        let now = Utc::now().to_rfc3339();
        let numbers = self
            .storage
            .db()
            .await?
            .write(move |conn| {
                let transaction = conn.transaction()?;
                if detect_duplicates && !remember_message_id(&transaction, target_name, &message_id)? {
                    return Ok(Vec::new());
                }
                let mut numbers = Vec::with_capacity(entities.len());
                for entity in &entities {
                    transaction.execute(
                        "INSERT INTO local_queue_messages
                            (entity, message_id, body, content_type, correlation_id, application_properties, enqueued_at, visible_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                        params![entity, message_id, message.body, message.content_type, message.correlation_id, properties, now],
                    )?;
                    numbers.push(transaction.last_insert_rowid());
                }
                transaction.commit()?;
                Ok(numbers)
            })
            .await?;
        self.arrivals.notify_waiters();
        Ok(numbers)
    }

    /// Receives the oldest visible message of `entity` under a lock, incrementing its delivery
    /// count. Messages whose lock expired after their last allowed delivery are dead-lettered
    /// first, so no message is ever delivered more than `maxDeliveryCount` times.
    pub async fn receive(&self, entity: &str) -> Result<Option<LockedMessage>, StoreError> {
        let entity = entity.to_owned();
        let options = self.options;
        self.storage
            .db()
            .await?
            .write(move |conn| {
                let now = Utc::now();
                let transaction = conn.transaction()?;
                transaction.execute(
                    "UPDATE local_queue_messages
                        SET state = 'dead', dead_letter_reason = ?1, dead_lettered_at = ?2,
                            last_error = COALESCE(last_error, 'the lock expired during the last allowed delivery')
                      WHERE entity = ?3 AND state = 'active' AND visible_at <= ?2 AND delivery_count >= ?4",
                    params![MAX_DELIVERY_REASON, now.to_rfc3339(), entity, options.max_delivery_count],
                )?;
                let locked_until = now + chrono::Duration::from_std(options.lock_duration).unwrap_or_default();
                let received = transaction
                    .query_row(
                        &format!(
                            "UPDATE local_queue_messages
                                SET delivery_count = delivery_count + 1, visible_at = ?1
                              WHERE sequence_number = (
                                    SELECT sequence_number FROM local_queue_messages
                                     WHERE entity = ?2 AND state = 'active' AND visible_at <= ?3
                                     ORDER BY sequence_number LIMIT 1)
                             RETURNING {COLUMNS}"
                        ),
                        params![locked_until.to_rfc3339(), entity, now.to_rfc3339()],
                        stored_from_row,
                    )
                    .optional()?;
                transaction.commit()?;
                Ok(received.map(|stored| stored.into_locked()))
            })
            .await
    }

    /// The invocation succeeded: the message is done.
    pub async fn complete(&self, sequence_number: i64) -> Result<(), StoreError> {
        self.storage
            .db()
            .await?
            .write(move |conn| {
                conn.execute(
                    "DELETE FROM local_queue_messages WHERE sequence_number = ?1",
                    [sequence_number],
                )
            })
            .await?;
        Ok(())
    }

    /// The invocation failed: retry later, or dead-letter after the last allowed delivery.
    /// Returns true when the message was dead-lettered.
    pub async fn abandon(&self, sequence_number: i64, error: &str) -> Result<bool, StoreError> {
        let error = error.to_owned();
        let options = self.options;
        self.storage
            .db()
            .await?
            .write(move |conn| {
                let now = Utc::now();
                let visible_at = now + chrono::Duration::from_std(options.retry_delay).unwrap_or_default();
                let dead = conn.execute(
                    "UPDATE local_queue_messages
                        SET state = 'dead', dead_letter_reason = ?1, dead_lettered_at = ?2, last_error = ?3
                      WHERE sequence_number = ?4 AND delivery_count >= ?5",
                    params![MAX_DELIVERY_REASON, now.to_rfc3339(), error, sequence_number, options.max_delivery_count],
                )?;
                if dead == 0 {
                    conn.execute(
                        "UPDATE local_queue_messages SET visible_at = ?1, last_error = ?2 WHERE sequence_number = ?3",
                        params![visible_at.to_rfc3339(), error, sequence_number],
                    )?;
                }
                Ok(dead > 0)
            })
            .await
    }

    /// Active messages of an entity (queue name or `topic/subscriptions/name`), oldest first.
    pub async fn peek(&self, entity: &str) -> Result<Vec<StoredMessage>, StoreError> {
        self.list("state = 'active' AND entity = ?1", entity.to_owned())
            .await
    }

    /// Dead-lettered messages, of one entity or of all.
    pub async fn dead_letters(
        &self,
        entity: Option<&str>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        match entity {
            Some(entity) => {
                self.list("state = 'dead' AND entity = ?1", entity.to_owned())
                    .await
            }
            None => self.list("state = 'dead' AND ?1 = ?1", String::new()).await,
        }
    }

    async fn list(
        &self,
        condition: &'static str,
        argument: String,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.storage
            .db()
            .await?
            .read(move |conn| {
                let mut statement =
                    conn.prepare(&format!("SELECT {COLUMNS} FROM local_queue_messages WHERE {condition} ORDER BY sequence_number"))?;
                let rows = statement.query_map([argument], stored_from_row)?;
                rows.collect()
            })
            .await
    }

    /// Puts a dead-lettered message back on its entity as a new message (same id and body,
    /// delivery count 0), as resubmitting from a dead-letter queue does. Returns the new
    /// sequence number, or `NotFound` if there is no such dead letter.
    pub async fn replay(&self, sequence_number: i64) -> Result<i64, StoreError> {
        let replayed = self
            .storage
            .db()
            .await?
            .write(move |conn| {
                let transaction = conn.transaction()?;
                let now = Utc::now().to_rfc3339();
                transaction.execute(
                    "INSERT INTO local_queue_messages
                        (entity, message_id, body, content_type, correlation_id, application_properties, enqueued_at, visible_at)
                     SELECT entity, message_id, body, content_type, correlation_id, application_properties, ?1, ?1
                       FROM local_queue_messages WHERE sequence_number = ?2 AND state = 'dead'",
                    params![now, sequence_number],
                )?;
                if transaction.changes() == 0 {
                    return Err(rusqlite::Error::QueryReturnedNoRows);
                }
                let new_number = transaction.last_insert_rowid();
                transaction.execute("DELETE FROM local_queue_messages WHERE sequence_number = ?1", [sequence_number])?;
                transaction.commit()?;
                Ok(new_number)
            })
            .await?;
        self.arrivals.notify_waiters();
        Ok(replayed)
    }

    /// Waits until a message may have arrived in this process, or `timeout` passes (messages
    /// sent by another process, such as `handler queue send`, are found by the timeout).
    pub async fn wait_for_arrival(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.arrivals.notified()).await;
    }
}

fn stored_from_row(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    let date = |index: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        let text: Option<String> = row.get(index)?;
        Ok(text
            .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
            .map(|at| at.with_timezone(&Utc)))
    };
    let properties: String = row.get(6)?;
    Ok(StoredMessage {
        sequence_number: row.get(0)?,
        entity: row.get(1)?,
        message_id: row.get(2)?,
        body: row.get(3)?,
        content_type: row.get(4)?,
        correlation_id: row.get(5)?,
        application_properties: serde_json::from_str(&properties).unwrap_or_default(),
        enqueued_time_utc: date(7)?.unwrap_or_default(),
        delivery_count: row.get(8)?,
        state: row.get(9)?,
        last_error: row.get(10)?,
        dead_letter_reason: row.get(11)?,
        dead_lettered_at: date(12)?,
    })
}

impl StoredMessage {
    fn into_locked(self) -> LockedMessage {
        LockedMessage {
            sequence_number: self.sequence_number,
            entity: self.entity,
            message: OutgoingMessage {
                body: self.body,
                message_id: self.message_id,
                delivery_count: self.delivery_count,
                enqueued_time_utc: self.enqueued_time_utc,
                correlation_id: self.correlation_id,
                content_type: self.content_type,
                application_properties: self.application_properties,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(dir: &std::path::Path, max_delivery_count: u32, lock_ms: u64) -> LocalQueue {
        let db = Db::open(&dir.join("app.db")).unwrap();
        LocalQueue::new(
            db,
            QueueOptions {
                max_delivery_count,
                lock_duration: Duration::from_millis(lock_ms),
                retry_delay: Duration::ZERO,
            },
        )
    }

    fn message(body: &str) -> NewMessage {
        NewMessage {
            body: body.into(),
            ..NewMessage::default()
        }
    }

    #[tokio::test]
    async fn a_locked_message_is_invisible_until_its_lock_expires_then_counts_a_new_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let queue = queue(dir.path(), 10, 300);
        queue
            .send(MessageTarget::Queue("gdpr-requests"), message("a"))
            .await
            .unwrap();
        let first = queue.receive("gdpr-requests").await.unwrap().unwrap();
        assert_eq!(first.message.delivery_count, 1);
        assert!(
            queue.receive("gdpr-requests").await.unwrap().is_none(),
            "locked"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = queue.receive("gdpr-requests").await.unwrap().unwrap();
        assert_eq!(second.sequence_number, first.sequence_number);
        assert_eq!(second.message.delivery_count, 2);
        queue.complete(second.sequence_number).await.unwrap();
        assert!(queue.peek("gdpr-requests").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn messages_come_in_order_and_each_entity_is_separate() {
        let dir = tempfile::tempdir().unwrap();
        let queue = queue(dir.path(), 10, 60_000);
        for body in ["1", "2"] {
            queue
                .send(MessageTarget::Queue("gdpr-requests"), message(body))
                .await
                .unwrap();
        }
        queue
            .send(
                MessageTarget::Queue("notifications-outbound"),
                message("other"),
            )
            .await
            .unwrap();
        assert_eq!(
            queue
                .receive("gdpr-requests")
                .await
                .unwrap()
                .unwrap()
                .message
                .body,
            "1"
        );
        assert_eq!(
            queue
                .receive("gdpr-requests")
                .await
                .unwrap()
                .unwrap()
                .message
                .body,
            "2"
        );
        assert!(queue.receive("gdpr-requests").await.unwrap().is_none());
        assert_eq!(queue.peek("notifications-outbound").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_lock_that_expires_on_the_last_delivery_dead_letters_instead_of_an_extra_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let queue = queue(dir.path(), 2, 100);
        queue
            .send(MessageTarget::Queue("gdpr-requests"), message("crashy"))
            .await
            .unwrap();
        let first = queue.receive("gdpr-requests").await.unwrap().unwrap();
        assert!(!queue.abandon(first.sequence_number, "boom").await.unwrap());
        let second = queue.receive("gdpr-requests").await.unwrap().unwrap();
        assert_eq!(second.message.delivery_count, 2);
        // The process "dies" here: no abandon, no complete. The lock expires.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(queue.receive("gdpr-requests").await.unwrap().is_none());
        let dead = queue.dead_letters(Some("gdpr-requests")).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].delivery_count, 2);
        assert_eq!(
            dead[0].dead_letter_reason.as_deref(),
            Some(MAX_DELIVERY_REASON)
        );
        assert_eq!(dead[0].last_error.as_deref(), Some("boom"));
    }

    #[tokio::test]
    async fn a_topic_without_subscribers_drops_and_unknown_dead_letters_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let queue = queue(dir.path(), 10, 1000);
        assert!(queue
            .send(MessageTarget::Topic("nobody-listens"), message("x"))
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(queue.replay(42).await, Err(StoreError::NotFound)));
    }

    #[tokio::test]
    async fn messages_survive_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        queue(dir.path(), 10, 1000)
            .send(MessageTarget::Queue("gdpr-requests"), message("kept"))
            .await
            .unwrap();
        let reopened = queue(dir.path(), 10, 1000);
        assert_eq!(
            reopened
                .receive("gdpr-requests")
                .await
                .unwrap()
                .unwrap()
                .message
                .body,
            "kept"
        );
    }
}
