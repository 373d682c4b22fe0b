//! Erasure requests: the record of a customer's right-to-erasure request and its progress.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an erasure request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ErasureStatus {
    /// Recorded and queued; not started.
    Accepted,
    InProgress,
    Completed,
    Failed,
}

impl ErasureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::InProgress => "inProgress",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Accepted,
            Self::InProgress,
            Self::Completed,
            Self::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A stored erasure request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureRecord {
    pub id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub requested_by: String,
    pub status: ErasureStatus,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub requested_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    /// When its message was last written to the outbox: at the request, and again each time
    /// `DatabaseMaintenance` re-announced a request still `accepted` after
    /// `ERASURE_REQUEUE_AFTER_MINUTES`. Absent for a request an operator sent directly.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::domain::timestamp::option::serialize"
    )]
    pub queued_at: Option<DateTime<Utc>>,
    /// The erasure report once the request completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
}
