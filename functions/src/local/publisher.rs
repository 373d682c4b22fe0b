//! The embedded queue as `OutboxRelay`'s publisher in local mode: each outbox message goes to
//! its queue or topic with its `MessageId`, correlation id, content type and application
//! properties, through the queue's duplicate detection, as Service Bus would take it.

use serde_json::{Map, Value};
use shared::outbox::{MessagePublisher, OutboxMessage, PublishError};

use super::queue::{LocalQueue, NewMessage};
use crate::registry::target_named;

#[async_trait::async_trait]
impl MessagePublisher for LocalQueue {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        let Some(target) = target_named(&message.destination) else {
            return Err(PublishError::Permanent(format!(
                "no queue or topic named {:?} (Service Bus would answer 404)",
                message.destination
            )));
        };
        let properties: Map<String, Value> = message
            .properties
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect();
        let new = NewMessage {
            body: message.body.clone(),
            message_id: Some(message.message_id.clone()),
            correlation_id: message.correlation_id.clone(),
            content_type: Some(message.content_type.clone()),
            application_properties: properties,
        };
        self.send(target, new)
            .await
            .map(|_| ())
            .map_err(|error| PublishError::Transient(error.to_string()))
    }
}
