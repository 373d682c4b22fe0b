//! Audit entries other services of the platform send (`POST /audit/logs`): ids only, checked
//! field by field, refused whole when anything in them looks like contact data (see
//! [`super::contact_data`]), and idempotent on the service's own event id: the entry's id is
//! derived from the tenant, the service and that event id, so a retry finds the first entry.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use schemars::{json_schema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::audit::AuditEntry;
use super::field_rules::{FormRule, ID};
use super::validation::{Invalid, Validation};

/// How far in the future `occurredAt` may be (clock skew between services).
const FUTURE_SKEW: Duration = Duration::minutes(5);

/// What was done: lower-case words split by dots (`invoice.issue`).
pub const ACTION: FormRule = FormRule {
    pattern: "^[a-z][a-z0-9-]*(\\.[a-z0-9-]+)*$",
    max_length: 100,
    is_valid: is_valid_action,
    expected: "lower-case letters, digits and '-', in words split by dots, starting with a letter, like invoice.issue (at most 100 characters)",
    example: "invoice.issue",
};

/// What kind of thing it was done to: one lower-case word (`invoice`).
pub const TARGET_TYPE: FormRule = FormRule {
    pattern: "^[a-z][a-z0-9-]{0,49}$",
    max_length: 50,
    is_valid: is_valid_target_type,
    expected: "a lower-case letter, then up to 49 lower-case letters, digits or '-', like invoice",
    example: "invoice",
};

fn is_valid_action(value: &str) -> bool {
    (1..=100).contains(&value.len())
        && value.as_bytes()[0].is_ascii_lowercase()
        && value.split('.').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn is_valid_target_type(value: &str) -> bool {
    (1..=50).contains(&value.len())
        && value.as_bytes()[0].is_ascii_lowercase()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn action_schema(_: &mut SchemaGenerator) -> Schema {
    ACTION.schema()
}

fn target_type_schema(_: &mut SchemaGenerator) -> Schema {
    TARGET_TYPE.schema()
}

fn occurred_at_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 time the action happened (at most 5 minutes ahead of the server's clock); kept to the microsecond",
        "examples": ["2026-01-15T09:30:00Z"],
    })
}

/// The body of `POST /audit/logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditLogInput {
    /// The calling service's own id of this event: sending it again with the same body answers
    /// the first result; with another body it is refused.
    #[schemars(schema_with = "crate::domain::field_rules::id_schema")]
    pub event_id: String,
    #[schemars(schema_with = "action_schema")]
    pub action: String,
    #[schemars(schema_with = "target_type_schema")]
    pub target_type: String,
    #[schemars(schema_with = "crate::domain::field_rules::id_schema")]
    pub target_id: String,
    /// The customer the action concerns, if any (it then shows in their GDPR trail).
    #[serde(default)]
    #[schemars(schema_with = "crate::domain::field_rules::optional_id_schema")]
    pub customer_id: Option<String>,
    #[schemars(schema_with = "occurred_at_schema")]
    pub occurred_at: DateTime<Utc>,
}

impl AuditLogInput {
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), Invalid> {
        let mut check = Validation::new();
        ID.check(&mut check, "eventId", &self.event_id);
        ACTION.check(&mut check, "action", &self.action);
        TARGET_TYPE.check(&mut check, "targetType", &self.target_type);
        ID.check(&mut check, "targetId", &self.target_id);
        if let Some(customer_id) = &self.customer_id {
            ID.check(&mut check, "customerId", customer_id);
        }
        if self.occurred_at > now + FUTURE_SKEW {
            check.error(
                "occurredAt",
                "must not be more than 5 minutes in the future",
            );
        }
        check.finish()
    }

    /// The audit entry of this event, sent by `actor_id` in `tenant_id`: its id comes from the
    /// tenant, the actor and the event id, so the same event always names the same entry.
    pub fn entry(&self, tenant_id: &str, actor_id: &str, correlation_id: &str) -> AuditEntry {
        AuditEntry {
            id: intake_id(tenant_id, actor_id, &self.event_id),
            tenant_id: tenant_id.to_owned(),
            actor_id: actor_id.to_owned(),
            action: self.action.clone(),
            target_type: self.target_type.clone(),
            target_id: self.target_id.clone(),
            customer_id: self.customer_id.clone(),
            actor_role: None,
            at: self.occurred_at.trunc_subsecs(6),
            correlation_id: correlation_id.to_owned(),
        }
    }
}

/// Whether a stored entry records the same event as `sent` (everything but the correlation id
/// of the request that wrote it).
pub fn same_event(stored: &AuditEntry, sent: &AuditEntry) -> bool {
    (
        &stored.actor_id,
        &stored.action,
        &stored.target_type,
        &stored.target_id,
        &stored.customer_id,
        stored.at,
    ) == (
        &sent.actor_id,
        &sent.action,
        &sent.target_type,
        &sent.target_id,
        &sent.customer_id,
        sent.at,
    )
}

fn intake_id(tenant_id: &str, actor_id: &str, event_id: &str) -> String {
    let digest = Sha256::digest(format!("{tenant_id}\n{actor_id}\n{event_id}"));
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("intake-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> AuditLogInput {
        AuditLogInput {
            event_id: "evt-1".into(),
            action: "invoice.issue".into(),
            target_type: "invoice".into(),
            target_id: "inv-1".into(),
            customer_id: Some("c-1".into()),
            occurred_at: Utc::now(),
        }
    }

    #[test]
    fn fields_are_checked_one_by_one() {
        assert_eq!(input().validate(Utc::now()), Ok(()));
        let bad = AuditLogInput {
            action: "Invoice..issue".into(),
            target_type: "in voice".into(),
            target_id: "a/b".into(),
            occurred_at: Utc::now() + Duration::hours(1),
            ..input()
        };
        let fields: Vec<String> = bad
            .validate(Utc::now())
            .expect_err("invalid")
            .0
            .into_iter()
            .map(|error| error.field)
            .collect();
        assert_eq!(fields, ["action", "targetType", "targetId", "occurredAt"]);
    }

    #[test]
    fn one_event_of_one_app_in_one_tenant_is_one_entry_id() {
        let sent = input();
        let first = sent.entry("t1", "app:a", "corr-1");
        let retry = sent.entry("t1", "app:a", "corr-2");
        assert_eq!(first.id, retry.id);
        assert!(same_event(&first, &retry));
        assert_ne!(first.id, sent.entry("t2", "app:a", "c").id);
        assert_ne!(first.id, sent.entry("t1", "app:b", "c").id);
        let other = AuditLogInput {
            action: "invoice.void".into(),
            ..sent
        };
        assert!(!same_event(&first, &other.entry("t1", "app:a", "c")));
    }

    #[test]
    fn the_patterns_say_what_the_validators_accept() {
        for (rule, samples) in [
            (
                ACTION,
                &[
                    "invoice.issue",
                    "a",
                    "a.b-c.9",
                    "A.b",
                    "a..b",
                    "a.",
                    ".a",
                    "1a",
                ][..],
            ),
            (TARGET_TYPE, &["invoice", "x-1", "X", "1x", "a b", ""][..]),
        ] {
            let pattern = regex::Regex::new(rule.pattern).expect("pattern");
            for sample in samples {
                assert_eq!(
                    pattern.is_match(sample),
                    (rule.is_valid)(sample),
                    "{sample}"
                );
            }
        }
    }
}
