//! Consents (GDPR art. 7): what a customer agreed to, for which purpose, under which notice,
//! through which channel and when. The purposes are declared once ([`Purpose`]). Every grant and
//! every withdrawal is a record of its own, never changed or removed, so a withdrawal never
//! erases the proof of the grant before it; the current state of a purpose is its latest record
//! (no record: not granted).

use chrono::{DateTime, Utc};
use schemars::{Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use super::field_rules::FormRule;
use super::validation::{Invalid, Validation};

/// What a consent is for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Marketing messages by email.
    MarketingEmail,
    /// Marketing messages by text message.
    MarketingSms,
    /// Profiling for personalised offers.
    Profiling,
}

impl Purpose {
    /// Every purpose, in a fixed order.
    pub const ALL: [Purpose; 3] = [Self::MarketingEmail, Self::MarketingSms, Self::Profiling];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MarketingEmail => "marketing-email",
            Self::MarketingSms => "marketing-sms",
            Self::Profiling => "profiling",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|purpose| purpose.as_str() == text)
    }
}

/// Where the customer gave or withdrew the consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConsentChannel {
    Web,
    App,
    Phone,
    Email,
    Store,
}

impl ConsentChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::App => "app",
            Self::Phone => "phone",
            Self::Email => "email",
            Self::Store => "store",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Web, Self::App, Self::Phone, Self::Email, Self::Store]
            .into_iter()
            .find(|channel| channel.as_str() == text)
    }
}

/// The version of the privacy notice the customer was shown (`2025-03`, `v4.1`).
pub const NOTICE_VERSION: FormRule = FormRule {
    pattern: "^[A-Za-z0-9._-]{1,50}$",
    max_length: 50,
    is_valid: |value| {
        (1..=50).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    },
    expected: "1 to 50 letters, digits, '.', '_' or '-', like 2025-03",
    example: "2025-03",
};

fn notice_version_schema(_: &mut SchemaGenerator) -> Schema {
    NOTICE_VERSION.schema()
}

/// The body of `PUT /customers/{id}/consents/{purpose}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentInput {
    /// `true` grants the purpose, `false` withdraws it.
    pub granted: bool,
    #[schemars(schema_with = "notice_version_schema")]
    pub notice_version: String,
    pub channel: ConsentChannel,
}

impl ConsentInput {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut check = Validation::new();
        NOTICE_VERSION.check(&mut check, "noticeVersion", &self.notice_version);
        check.finish()
    }
}

/// One grant or withdrawal, as recorded (never changed afterwards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentRecord {
    pub id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub purpose: Purpose,
    pub granted: bool,
    pub notice_version: String,
    pub channel: ConsentChannel,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it: the client themselves or the employee (token subject).
    pub recorded_by: String,
}

/// The current state of one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentState {
    pub purpose: Purpose,
    /// The latest record's answer; `false` when there is none.
    pub granted: bool,
    /// The latest record, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<ConsentRecord>,
}

/// `GET /customers/{id}/consents`: every purpose's current state and the full history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Consents {
    pub customer_id: String,
    /// One per purpose, in [`Purpose::ALL`] order.
    pub current: Vec<ConsentState>,
    /// Every grant and withdrawal, oldest first.
    pub history: Vec<ConsentRecord>,
}

impl Consents {
    /// The state of every purpose from `history` (oldest first).
    pub fn from_history(customer_id: &str, history: Vec<ConsentRecord>) -> Self {
        let current = Purpose::ALL
            .into_iter()
            .map(|purpose| {
                let latest = history
                    .iter()
                    .rev()
                    .find(|record| record.purpose == purpose)
                    .cloned();
                ConsentState {
                    purpose,
                    granted: latest.as_ref().is_some_and(|record| record.granted),
                    latest,
                }
            })
            .collect();
        Self {
            customer_id: customer_id.to_owned(),
            current,
            history,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(purpose: Purpose, granted: bool, id: &str) -> ConsentRecord {
        ConsentRecord {
            id: id.into(),
            tenant_id: "t1".into(),
            customer_id: "c-1".into(),
            purpose,
            granted,
            notice_version: "2025-03".into(),
            channel: ConsentChannel::Web,
            recorded_at: Utc::now(),
            recorded_by: "u-1".into(),
        }
    }

    #[test]
    fn the_latest_record_of_a_purpose_is_its_state_and_the_history_stays() {
        let history = vec![
            record(Purpose::MarketingEmail, true, "1"),
            record(Purpose::Profiling, true, "2"),
            record(Purpose::MarketingEmail, false, "3"),
        ];
        let consents = Consents::from_history("c-1", history.clone());
        let granted: Vec<(Purpose, bool)> = consents
            .current
            .iter()
            .map(|state| (state.purpose, state.granted))
            .collect();
        assert_eq!(
            granted,
            [
                (Purpose::MarketingEmail, false),
                (Purpose::MarketingSms, false),
                (Purpose::Profiling, true)
            ]
        );
        assert_eq!(consents.current[1].latest, None);
        assert_eq!(consents.history, history, "the withdrawal kept the grant");
    }

    #[test]
    fn purposes_channels_and_notice_versions_parse_strictly() {
        for purpose in Purpose::ALL {
            assert_eq!(Purpose::parse(purpose.as_str()), Some(purpose));
        }
        assert_eq!(Purpose::parse("Profiling"), None);
        assert_eq!(ConsentChannel::parse("store"), Some(ConsentChannel::Store));
        let input = |version: &str| ConsentInput {
            granted: true,
            notice_version: version.into(),
            channel: ConsentChannel::App,
        };
        assert!(input("v4.1").validate().is_ok());
        assert!(input("").validate().is_err());
        assert!(input("v 4").validate().is_err());
    }
}
