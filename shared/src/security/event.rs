//! [`SecurityEvent`]: one finding of breach detection. Ids and counts only: the principal's id
//! (a token subject, or a pseudonym of a client address), the rule, how many in which window.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The tenant under which findings about callers without a valid token are kept (no tenant is
/// known for them); tenants must not be given this id.
pub const PLATFORM_TENANT: &str = "_platform";

/// What was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// One employee read the data of many distinct customers in the window.
    BulkRead,
    /// One caller got many `404`s (another tenant's ids look like missing ones) or token
    /// failures (`401`) in the window.
    FailureBurst,
    /// One principal exported the data of many distinct customers in the window.
    BulkExport,
    /// An erasure or export of another customer's data was refused.
    RefusedGdprRequest,
}

impl Rule {
    /// Every rule, in a fixed order.
    pub const ALL: [Rule; 4] = [
        Rule::BulkRead,
        Rule::FailureBurst,
        Rule::BulkExport,
        Rule::RefusedGdprRequest,
    ];

    /// The rule's name in events, audit actions (`security.<name>`) and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::BulkRead => "bulk-read",
            Rule::FailureBurst => "failure-burst",
            Rule::BulkExport => "bulk-export",
            Rule::RefusedGdprRequest => "refused-gdpr-request",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEvent {
    pub id: String,
    pub tenant_id: String,
    pub rule: Rule,
    /// Who: the token subject, or for token failures `psn-` and a keyed hash of the client
    /// address (never the address).
    pub principal_id: String,
    /// The app roles the principal held, comma-separated, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// How many (distinct customers, failures, refusals) in the window.
    pub count: u32,
    /// The setting the count reached.
    pub threshold: u32,
    pub window_seconds: u64,
    /// The oldest observation counted.
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub first_seen_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub detected_at: DateTime<Utc>,
    /// The correlation id of the request that completed the finding.
    pub correlation_id: String,
}
