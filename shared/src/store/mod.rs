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
pub mod jobs;
mod paging;
pub mod ports;
pub mod pricing;
pub mod sqlite;

use std::fmt;

pub use dispatch::{DispatchOutcome, DispatchStore, Fanout, FanoutPlan, SkipReason};
pub use erasure::{ErasureProgress, ErasureStart, ErasureStep, ErasureStore, StepProgress};
pub use paging::{ContinuationToken, Page, PageRequest, MAX_PAGE_SIZE};
pub use ports::{
    AuditFilter, AuditStore, CustomerStore, IdempotencyKey, NewOrder, NotificationStore,
    OrderCreated, OrderFilter, OrderStore, ProductFilter, ProductStore, Store, StoreResult,
};

/// What a storage call can fail with, in terms the API maps to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Missing, or belonging to another tenant (the two are indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// An update's ETag no longer matches the stored document.
    #[error("the document changed since it was read (current ETag {current})")]
    PreconditionFailed { current: ETag },
    /// The write conflicts with existing data (a duplicate id, say).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A continuation token that this store did not issue, or for another query.
    #[error("invalid continuation token: {0}")]
    InvalidContinuation(String),
    /// A business rule refused the write (stock, state machine, idempotency).
    #[error(transparent)]
    Rejected(#[from] Rejection),
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

/// A write that the domain's rules refuse; the API answers 409 (or 422) with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error(
        "not enough stock for product {product_id}: {available} available, {requested} requested"
    )]
    InsufficientStock {
        product_id: String,
        available: i64,
        requested: i64,
    },
    #[error("unknown or inactive products: {}", .0.join(", "))]
    UnknownProducts(Vec<String>),
    #[error("all items of an order must be in one currency; found {}", .0.join(", "))]
    MixedCurrencies(Vec<String>),
    #[error(transparent)]
    IllegalTransition(#[from] crate::domain::order::IllegalTransition),
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("this Idempotency-Key cannot be stored: {0}")]
    IdempotencyKeyUnusable(String),
    #[error("the customer is {0} and cannot be changed or order")]
    CustomerNotActive(&'static str),
}

/// Times in keys and sort orders: RFC 3339 UTC with microseconds and `Z`, so text order is
/// time order (both adapters store and compare them as text).
pub fn ts(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A new random ETag value.
pub fn new_etag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The tenant a document belongs to: the partition key of every stored document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// A tenant id: 1 to 64 characters of letters, digits, `-` and `_`.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
        let id = id.into();
        let valid = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(id))
        } else {
            Err(InvalidId { kind: "tenant id" })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An id that does not have the allowed form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: use 1 to 64 letters, digits, '-' or '_'")]
pub struct InvalidId {
    pub kind: &'static str,
}

/// An opaque version tag of a stored document (HTTP `ETag`, Cosmos `_etag`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The HTTP header form: the tag in double quotes.
    pub fn to_header(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

/// An `If-Match` precondition (RFC 9110, section 13.1.1), compared strongly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IfMatch {
    /// No `If-Match`, or `*`: any stored version will do.
    #[default]
    Any,
    /// The stored version must be one of these (strong) tags; an empty list matches nothing.
    OneOf(Vec<ETag>),
}

impl IfMatch {
    /// Exactly this version.
    pub fn exactly(etag: ETag) -> Self {
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
            current: ETag::new(current),
        })
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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

    #[test]
    fn tenant_ids_are_checked() {
        assert!(TenantId::new("contoso-01").is_ok());
        assert!(TenantId::new("").is_err());
        assert!(TenantId::new("a/b").is_err());
        assert!(TenantId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn etag_header_form_is_the_tag_in_quotes() {
        assert_eq!(ETag::new("0f3a9c").to_header(), "\"0f3a9c\"");
    }

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
