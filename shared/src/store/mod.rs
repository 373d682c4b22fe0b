//! Storage ports: the types and traits every storage adapter shares.
//!
//! The domain sees only these. Two adapters implement them: SQLite (embedded, the default and
//! local mode: [`sqlite`]) and Azure Cosmos DB ([`cosmos`]). They are shaped for Cosmos from the start:
//! every document belongs to a tenant (the partition key), listing pages by an opaque
//! continuation token rather than offsets, and updates carry an ETag for optimistic
//! concurrency.

pub mod cosmos;
pub mod dispatch;
pub mod erasure;
pub mod erp;
pub mod jobs;
mod paging;
mod payment_record;
pub mod payments;
pub mod ports;
pub mod shipments;
pub mod sqlite;

pub use dispatch::{DispatchOutcome, DispatchStore, Fanout, FanoutPlan, SkipReason};
pub use erasure::{ErasureProgress, ErasureStart, ErasureStep, ErasureStore, StepProgress};
pub use erp::{ErpMasterData, ErpStore, MasterApplied, StockApplied, StockLevel};
pub use paging::{ContinuationToken, Page, PageRequest, MAX_PAGE_SIZE};
pub use payments::{PaymentFilter, PaymentStore, Started};
pub use ports::{
    AuditFilter, AuditRecorded, AuditStore, ConsentStore, CustomerStore, IdempotencyKey, NewOrder,
    NotificationStore, OrderCreated, OrderFilter, OrderStore, PreferenceStore, ProductFilter,
    ProductStore, SecurityEventStore, Store, StoreResult,
};
pub use shipments::{ShipmentBegun, ShipmentStore, TrackingCursor};

/// What a storage call can fail with, in terms the API maps to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Missing, or belonging to another tenant (the two are indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// An update's ETag no longer matches the stored document.
    #[error("the document changed since it was read (current ETag {current})")]
    PreconditionFailed { current: crate::domain::etag::ETag },
    /// The write conflicts with existing data (a duplicate id, say).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A continuation token that this store did not issue, or for another query.
    #[error("invalid continuation token: {0}")]
    InvalidContinuation(String),
    /// A business rule refused the write (stock, state machine, idempotency).
    #[error(transparent)]
    Rejected(#[from] crate::domain::rejection::Rejection),
    /// The backend cannot be reached or refused the call.
    #[error("{backend} is unavailable: {reason}")]
    Unavailable {
        backend: &'static str,
        reason: String,
    },
    /// The backend kept answering "too many requests" (Cosmos DB 429) after the retries allowed.
    #[error("{backend} is throttling requests (still after {attempts} attempts){}", retry_after_text(.retry_after))]
    Throttled {
        backend: &'static str,
        attempts: u32,
        retry_after: Option<std::time::Duration>,
    },
}

fn retry_after_text(retry_after: &Option<std::time::Duration>) -> String {
    retry_after
        .map(|wait| format!("; the server asked to retry after {} ms", wait.as_millis()))
        .unwrap_or_default()
}

/// Times in keys and sort orders: RFC 3339 UTC with microseconds and `Z`, so text order is
/// time order (both adapters store and compare them as text).
pub fn ts(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// An `If-Match` precondition (RFC 9110, section 13.1.1), compared strongly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IfMatch {
    /// No `If-Match`, or `*`: any stored version will do.
    #[default]
    Any,
    /// The stored version must be one of these (strong) tags; an empty list matches nothing.
    OneOf(Vec<crate::domain::etag::ETag>),
}

impl IfMatch {
    /// Exactly this version.
    pub fn exactly(etag: crate::domain::etag::ETag) -> Self {
        Self::OneOf(vec![etag])
    }

    /// Whether the stored version `current` satisfies the precondition.
    pub fn matches(&self, current: &str) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(tags) => tags.iter().any(|tag| tag.as_str() == current),
        }
    }
}

/// `PreconditionFailed` (naming `current`) when the stored version, `current`, does not satisfy
/// the caller's `If-Match`.
pub fn check_if_match(if_match: &IfMatch, current: &str) -> StoreResult<()> {
    if if_match.matches(current) {
        Ok(())
    } else {
        Err(StoreError::PreconditionFailed {
            current: crate::domain::etag::ETag::new(current),
        })
    }
}

/// Reachability of a backend, for `GET /api/health/ready`.
#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync {
    /// A short name for reports (`sqlite`, `cosmos`, `blob`, `folder`).
    fn backend(&self) -> &'static str;
    /// Succeeds when the backend answers a trivial request.
    async fn ping(&self) -> Result<(), StoreError>;
    /// How many requests the backend answered "too many requests" (429) since the store was
    /// opened, every caller of this process counted; the job runs report the difference over
    /// a run. Backends that never throttle keep the default.
    fn throttled_requests(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::etag::ETag;

    #[test]
    fn if_match_must_name_the_stored_version() {
        assert!(check_if_match(&IfMatch::Any, "v1").is_ok());
        assert!(check_if_match(&IfMatch::exactly(ETag::new("v1")), "v1").is_ok());
        assert!(check_if_match(
            &IfMatch::OneOf(vec![ETag::new("v0"), ETag::new("v1")]),
            "v1"
        )
        .is_ok());
        assert!(check_if_match(&IfMatch::OneOf(Vec::new()), "v1").is_err());
        let Err(StoreError::PreconditionFailed { current }) =
            check_if_match(&IfMatch::exactly(ETag::new("v0")), "v1")
        else {
            panic!("a stale ETag passed")
        };
        assert_eq!(current, ETag::new("v1"));
    }
}
