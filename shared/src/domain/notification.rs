//! In-app notifications: to one customer, or to every employee holding a staff role.

use crate::domain::field_rules::{rules, ID};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validation::{Invalid, Validation};

/// Who a notification is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", tag = "kind", content = "id")]
pub enum Recipient {
    /// A customer (clients read their own).
    Customer(String),
    /// Every employee with this role (`admin`, `customer-service`, `order-manager`).
    Role(String),
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: String,
    pub tenant_id: String,
    pub recipient: Recipient,
    /// What it is about (`order.shipped`, `message`, ...).
    pub category: String,
    pub title: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::domain::timestamp::option::serialize")]
    pub read_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

/// The body of `POST /notifications` (staff sending a message to a customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationInput {
    #[schemars(schema_with = "crate::domain::field_rules::id_schema")]
    pub customer_id: String,
    #[schemars(schema_with = "crate::domain::field_rules::title_schema")]
    pub title: String,
    #[schemars(schema_with = "crate::domain::field_rules::message_schema")]
    pub message: String,
    /// Absent: a service message (in-app only). Present: a marketing message, sent in the app
    /// and by email or SMS, only with the customer's current consent for this purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<MarketingPurpose>,
}

/// The purpose of a marketing message: the consent it needs and the channel it goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MarketingPurpose {
    /// By email; needs consent `marketing-email`.
    MarketingEmail,
    /// By text message; needs consent `marketing-sms` and a phone number on file.
    MarketingSms,
}

impl MarketingPurpose {
    /// The consent purpose it needs.
    pub fn consent(self) -> super::consent::Purpose {
        match self {
            Self::MarketingEmail => super::consent::Purpose::MarketingEmail,
            Self::MarketingSms => super::consent::Purpose::MarketingSms,
        }
    }
}

impl NotificationInput {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut check = Validation::new();
        ID.check(&mut check, "customerId", &self.customer_id);
        rules::TITLE.check(&mut check, "title", &self.title);
        rules::MESSAGE.check(&mut check, "message", &self.message);
        check.finish()
    }
}
