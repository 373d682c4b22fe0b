//! The transactional outbox: every message the app sends is first written as an outbox record
//! in the same transaction (SQLite) or transactional batch (Cosmos DB) as the change it
//! announces, then published by the `OutboxRelay` function, which the store's change feed
//! triggers. So a committed change always gets its message, and a message is never sent for a
//! change that did not commit.
//!
//! - [`OutboxMessage`]: the message exactly as it will be sent (destination, `MessageId`, body
//!   text, correlation id, application properties). The constructors here are the only place
//!   that decides what an order change, an erasure request or a notification fan-out sends.
//! - [`FeedDocument`]: an outbox record as the change feed delivers it (the Cosmos DB document
//!   shape; the local runtime's change feed renders SQLite rows the same way).
//! - [`MessagePublisher`]: where the relay sends messages: Service Bus through its REST API in
//!   Azure ([`service_bus`]), the embedded queue in local mode.
//! - [`OutboxStore`]: what the relay and the health probe ask of the store.
//!
//! Delivery is at least once (a relay retry or a lease moving after a crash can publish a
//! record twice): Service Bus drops a repeated `MessageId` within its duplicate-detection
//! window, and every consumer deduplicates by event or request id beyond it.

mod document;
mod message;
pub mod service_bus;

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use document::{FeedDocument, RecordKey, DOC_TYPE};
pub use message::{
    OutboxMessage, DESTINATIONS, GDPR_REQUESTS_QUEUE, NOTIFICATIONS_OUTBOUND_QUEUE,
    ORDER_EVENTS_TOPIC, PAYMENT_EVENTS_TOPIC, REALTIME_PUSH_DESTINATION, SECURITY_ALERTS_TOPIC,
};

use crate::domain::tenant::TenantId;
use crate::store::StoreResult;

/// How long an outbox record lives when the relay never acknowledges it (`OUTBOX_TTL_SECONDS`,
/// 7 days by default): far longer than any relay outage the lag alert would let pass.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a message could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Worth retrying: the broker is unreachable, throttling, or failed inside (the relay
    /// answers non-2xx and its batch is retried, never skipped).
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help (the entity does not exist, the message is too large, access is
    /// denied): the relay parks the record, reports it and moves on, so one bad record does not
    /// block every record behind it.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Sends outbox messages to their destination.
#[async_trait::async_trait]
pub trait MessagePublisher: Send + Sync {
    /// Sends one message with its `MessageId`; a repeated id within the duplicate-detection
    /// window is accepted and dropped by the broker.
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError>;
}

/// What the relay and the health probe ask of the store.
#[async_trait::async_trait]
pub trait OutboxStore: Send + Sync {
    /// The tenant's records not yet acknowledged, each partition's in commit order (the order
    /// the change feed delivers them in).
    async fn pending_outbox(&self, tenant: &TenantId) -> StoreResult<Vec<FeedDocument>>;
    /// Records not yet acknowledged, across tenants, after `after` (a position this method
    /// returned; `None`: from the start), at most `limit`, each with its position: what the local
    /// runtime's change feed reads. SQLite gives commit order; Cosmos DB creation time, then id
    /// (a record committed after a later-stamped one can be passed over, so the feed starts over
    /// from the beginning now and then).
    async fn outbox_feed(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Vec<(String, FeedDocument)>>;
    /// Removes records the relay has published (a record already gone is fine). Unacknowledged
    /// records expire after their TTL.
    async fn acknowledge_relayed(&self, records: &[RecordKey]) -> StoreResult<()>;
    /// The creation time of the oldest record not yet acknowledged, if any: the relay's lag.
    async fn oldest_unrelayed(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// Removes records whose TTL ran out before `now` (SQLite; Cosmos DB expires them itself),
    /// counted per tenant. A record removed unrelayed is a lost message: the lag alert is there
    /// to make that impossible in practice.
    async fn purge_expired_outbox(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> StoreResult<Vec<(String, u64)>>;
}

/// The age of the oldest unrelayed record at `now` (zero when the outbox is empty).
pub fn lag(oldest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    oldest
        .and_then(|at| (now - at).to_std().ok())
        .unwrap_or(Duration::ZERO)
}

/// The publisher when no Service Bus namespace is configured: every publish fails as transient,
/// so records wait in the outbox (and show as lag) until the setting is fixed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unconfigured;

#[async_trait::async_trait]
impl MessagePublisher for Unconfigured {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        Err(PublishError::Transient(format!(
            "no Service Bus namespace to send {} to; fix: set ServiceBusConnection__fullyQualifiedNamespace",
            message.destination
        )))
    }
}
