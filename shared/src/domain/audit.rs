//! The audit trail: one entry per write, ids only (actor, target, tenant), never personal
//! data, so the trail can be kept for years and archived without rewriting.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    pub tenant_id: String,
    /// Who did it: a user id (token subject), `system:<function>`, or `app:<app id>` for an
    /// entry another service sent (`POST /audit/logs`).
    pub actor_id: String,
    /// What was done (`customer.create`, `order.status.shipped`, `gdpr.erasure.request`, ...).
    pub action: String,
    /// What kind of thing it was done to (`customer`, `order`, `product`, `notification`).
    pub target_type: String,
    pub target_id: String,
    /// The customer the action concerns, when there is one (for the GDPR trail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The app roles the actor held, comma-separated, when the entry records an employee's read
    /// of a customer's data (`customer.read`, `order.read`, ...); absent on other entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_role: Option<String>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub at: DateTime<Utc>,
    pub correlation_id: String,
}

impl AuditEntry {
    /// An entry for an action happening now.
    pub fn now(
        tenant_id: &str,
        actor_id: &str,
        action: &str,
        target_type: &str,
        target_id: &str,
        correlation_id: &str,
    ) -> Self {
        Self {
            id: super::validation::new_id(),
            tenant_id: tenant_id.to_owned(),
            actor_id: actor_id.to_owned(),
            action: action.to_owned(),
            target_type: target_type.to_owned(),
            target_id: target_id.to_owned(),
            customer_id: None,
            actor_role: None,
            at: Utc::now(),
            correlation_id: correlation_id.to_owned(),
        }
    }

    pub fn about_customer(mut self, customer_id: &str) -> Self {
        self.customer_id = Some(customer_id.to_owned());
        self
    }

    /// Names the roles the actor acted in (employees' reads).
    pub fn by_role(mut self, role: &str) -> Self {
        self.actor_role = Some(role.to_owned());
        self
    }
}
