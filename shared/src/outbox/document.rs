//! [`FeedDocument`]: an outbox record as the change feed delivers it to `OutboxRelay`.
//!
//! In Azure this is the Cosmos DB document itself (the store's document envelope with
//! `type` = `outbox` and the [`OutboxMessage`] as its `body`, plus Cosmos's own `_ts`, `_etag`,
//! ...). The local runtime's change feed renders SQLite outbox rows in the same shape, so the
//! relay reads one format. The feed also carries every other document of the container
//! (orders, customers, ...): the relay skips them by `type`.

use serde::{Deserialize, Serialize};

use super::OutboxMessage;

/// The document `type` of outbox records.
pub const DOC_TYPE: &str = "outbox";

/// One document of the change feed, as far as the relay reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedDocument {
    pub id: String,
    pub tenant_id: String,
    pub scope: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Seconds the record lives after it was written (Cosmos DB's per-item TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// The outbox message (other document types carry their own record here).
    pub body: serde_json::Value,
}

impl FeedDocument {
    /// An outbox record's document for `message` stored under `id` in `tenant_id`/`scope`.
    pub fn outbox(
        id: &str,
        tenant_id: &str,
        scope: &str,
        ttl: i64,
        message: &OutboxMessage,
    ) -> Self {
        Self {
            id: id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            scope: scope.to_owned(),
            kind: DOC_TYPE.to_owned(),
            ttl: Some(ttl),
            body: serde_json::to_value(message).unwrap_or_default(),
        }
    }

    /// Whether this is an outbox record.
    pub fn is_outbox(&self) -> bool {
        self.kind == DOC_TYPE
    }

    /// The message of an outbox record.
    pub fn message(&self) -> Result<OutboxMessage, serde_json::Error> {
        serde_json::from_value(self.body.clone())
    }

    /// Where the record is stored, to acknowledge it once published.
    pub fn key(&self) -> RecordKey {
        RecordKey {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            scope: self.scope.clone(),
        }
    }
}

/// Where an outbox record is stored: its document id and partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    pub id: String,
    pub tenant_id: String,
    pub scope: String,
}
