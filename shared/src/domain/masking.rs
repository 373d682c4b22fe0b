//! GDPR masking rules: what an erasure does to each entity and field, declared once.
//!
//! The table [`RULES`] names, per entity and field, one strategy in the manner of PostgreSQL
//! Anonymizer's masking rules:
//!
//! - **destroy**: the value is removed (null), or the whole record is deleted;
//! - **fake**: the value is replaced by a fixed placeholder, the same for everyone, so nothing
//!   of the original survives and required fields stay filled;
//! - **keyed hash**: a value that identifies the customer (their id, their client token
//!   subject) is replaced by a pseudonym, HMAC-SHA256 under the `GDPR_PSEUDONYM_KEY`, so the
//!   audit trail stays countable (the same customer always gets the same pseudonym) but cannot
//!   be linked back without the key; values naming anyone else (staff, `system:*`) are kept;
//! - **pseudonymise**: any value is replaced by its keyed pseudonym (HMAC-SHA256 under the same
//!   key), so two records with the same value still match but the value cannot be read back
//!   (a payment's gateway source: the payer's saved instrument at the gateway);
//! - **generalise**: the value is coarsened (a postal code to its first two characters);
//! - **keep**: listed for the record (bookkeeping facts an erasure must not touch).
//!
//! Storage adapters apply the rules from this table (see [`Masker::mask_document`] and
//! [`record_action`]); nothing else decides what an erasure changes. Any change to the table
//! is a new [`RULES_VERSION`], which every erasure report names.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use crate::domain::payment::{Payment, PaymentErasure};

/// The version of [`RULES`]; change it with every change to the table.
/// `2026.12.1` added payments: the payer removed, the payment source pseudonymised, refund
/// reasons removed, the financial facts kept. `2026.12.2` added consents: the proof kept
/// (purpose, decision, notice version, channel, time), the subject pseudonymised. `2026.12.3`
/// added notification preferences (deleted) and shipments (the label URL removed, the
/// carrier's references and the status kept).
pub const RULES_VERSION: &str = "gdpr-masking-2026.12.3";

/// What an erasure touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Entity {
    Customer,
    Order,
    OrderStatusChange,
    Notification,
    AuditEntry,
    /// A consent grant or withdrawal (GDPR art. 7).
    Consent,
    /// A customer's notification preferences.
    NotificationPreferences,
    IdempotencyKey,
    ProcessedEvent,
    QueuedMessage,
    Payment,
    /// A refund embedded in a payment.
    PaymentRefund,
    /// An order's shipment (label, tracking number, status).
    Shipment,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Order => "order",
            Self::OrderStatusChange => "orderStatusChange",
            Self::Notification => "notification",
            Self::AuditEntry => "auditEntry",
            Self::Consent => "consent",
            Self::NotificationPreferences => "notificationPreferences",
            Self::IdempotencyKey => "idempotencyKey",
            Self::ProcessedEvent => "processedEvent",
            Self::QueuedMessage => "queuedMessage",
            Self::Payment => "payment",
            Self::PaymentRefund => "paymentRefund",
            Self::Shipment => "shipment",
        }
    }
}

/// How a value is coarsened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "length")]
pub enum Generalisation {
    /// The first `n` characters, the rest dropped.
    Prefix(usize),
}

/// What happens to one field (or, with field `*`, to a whole record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "strategy", content = "with")]
pub enum Strategy {
    /// Kept as it is (bookkeeping facts).
    Keep,
    /// Removed: the field becomes null; on field `*`, the record is deleted.
    Destroy,
    /// Replaced by this placeholder.
    Fake(&'static str),
    /// The customer's identifiers replaced by their keyed pseudonym; other values kept.
    KeyedHash,
    /// Any value replaced by its keyed pseudonym.
    Pseudonymise,
    Generalise(Generalisation),
}

/// One masking rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldRule {
    pub entity: Entity,
    /// A field name in the entity's JSON form (camelCase, `.` for nested fields), or `*` for
    /// the whole record.
    pub field: &'static str,
    pub strategy: Strategy,
    /// Why, in a few words (shown in the README's rule table).
    pub reason: &'static str,
}

const fn rule(
    entity: Entity,
    field: &'static str,
    strategy: Strategy,
    reason: &'static str,
) -> FieldRule {
    FieldRule {
        entity,
        field,
        strategy,
        reason,
    }
}

/// Placeholder of text fields that must stay filled.
pub const ERASED_TEXT: &str = "[erased]";

/// The masking rules, version [`RULES_VERSION`]. Records of the customer not listed with a
/// `*` rule are kept; fields not listed are kept.
pub const RULES: &[FieldRule] = &[
    rule(
        Entity::Customer,
        "name",
        Strategy::Fake("Erased customer"),
        "required field; personal",
    ),
    rule(
        Entity::Customer,
        "email",
        Strategy::Fake("erased@erased.invalid"),
        "required field; personal",
    ),
    rule(Entity::Customer, "phone", Strategy::Destroy, "personal"),
    rule(
        Entity::Customer,
        "address",
        Strategy::Destroy,
        "personal; orders keep what bookkeeping needs",
    ),
    rule(
        Entity::Customer,
        "id",
        Strategy::Keep,
        "orders refer to it; identifies nobody once the profile is gone",
    ),
    rule(
        Entity::Order,
        "shippingAddress.line1",
        Strategy::Fake(ERASED_TEXT),
        "personal",
    ),
    rule(
        Entity::Order,
        "shippingAddress.line2",
        Strategy::Destroy,
        "personal",
    ),
    rule(
        Entity::Order,
        "shippingAddress.city",
        Strategy::Fake(ERASED_TEXT),
        "personal in combination",
    ),
    rule(
        Entity::Order,
        "shippingAddress.postalCode",
        Strategy::Generalise(Generalisation::Prefix(2)),
        "region kept for tax statistics",
    ),
    rule(
        Entity::Order,
        "shippingAddress.country",
        Strategy::Keep,
        "tax jurisdiction (bookkeeping)",
    ),
    rule(
        Entity::Order,
        "items",
        Strategy::Keep,
        "bookkeeping: products, quantities, prices",
    ),
    rule(Entity::Order, "totalCents", Strategy::Keep, "bookkeeping"),
    rule(Entity::Order, "status", Strategy::Keep, "bookkeeping"),
    rule(
        Entity::OrderStatusChange,
        "actorId",
        Strategy::KeyedHash,
        "the customer's own token subject when they acted",
    ),
    rule(
        Entity::OrderStatusChange,
        "reason",
        Strategy::Destroy,
        "free text, may hold personal data",
    ),
    rule(
        Entity::Notification,
        "*",
        Strategy::Destroy,
        "messages to the customer",
    ),
    rule(
        Entity::NotificationPreferences,
        "*",
        Strategy::Destroy,
        "the customer's choices, of no use once they are erased",
    ),
    rule(
        Entity::AuditEntry,
        "customerId",
        Strategy::KeyedHash,
        "trail stays countable, not linkable",
    ),
    rule(
        Entity::AuditEntry,
        "targetId",
        Strategy::KeyedHash,
        "when it is the customer",
    ),
    rule(
        Entity::AuditEntry,
        "actorId",
        Strategy::KeyedHash,
        "when the customer acted",
    ),
    rule(
        Entity::Consent,
        "customerId",
        Strategy::KeyedHash,
        "the proof stays, its subject pseudonymised as in the audit trail",
    ),
    rule(
        Entity::Consent,
        "recordedBy",
        Strategy::KeyedHash,
        "when the customer recorded it; staff kept",
    ),
    rule(
        Entity::Consent,
        "purpose",
        Strategy::Keep,
        "proof of consent (art. 7(1))",
    ),
    rule(
        Entity::Consent,
        "granted",
        Strategy::Keep,
        "proof of consent: the decision",
    ),
    rule(
        Entity::Consent,
        "noticeVersion",
        Strategy::Keep,
        "proof of consent: what the customer was told",
    ),
    rule(
        Entity::Consent,
        "channel",
        Strategy::Keep,
        "proof of consent: how it was given",
    ),
    rule(
        Entity::Consent,
        "recordedAt",
        Strategy::Keep,
        "proof of consent: when",
    ),
    rule(
        Entity::IdempotencyKey,
        "*",
        Strategy::Destroy,
        "client-chosen keys of the customer's orders",
    ),
    rule(
        Entity::ProcessedEvent,
        "*",
        Strategy::Destroy,
        "dedupe markers of the customer's events",
    ),
    rule(
        Entity::QueuedMessage,
        "*",
        Strategy::Destroy,
        "messages about the customer not yet consumed (local queue)",
    ),
    rule(
        Entity::Payment,
        "payer",
        Strategy::Destroy,
        "the payer's name and email as the gateway reported them",
    ),
    rule(
        Entity::Payment,
        "sourceId",
        Strategy::Pseudonymise,
        "the payer's saved instrument at the gateway; payments stay matchable, not linkable",
    ),
    rule(
        Entity::Payment,
        "id",
        Strategy::Keep,
        "accounting; the gateway's records name it",
    ),
    rule(
        Entity::Payment,
        "orderId",
        Strategy::Keep,
        "accounting: the order it paid",
    ),
    rule(
        Entity::Payment,
        "customerId",
        Strategy::Keep,
        "as orders keep it; identifies nobody once the profile is gone",
    ),
    rule(
        Entity::Payment,
        "amountCents",
        Strategy::Keep,
        "bookkeeping",
    ),
    rule(Entity::Payment, "currency", Strategy::Keep, "bookkeeping"),
    rule(Entity::Payment, "status", Strategy::Keep, "bookkeeping"),
    rule(
        Entity::Payment,
        "capturedCents",
        Strategy::Keep,
        "bookkeeping",
    ),
    rule(
        Entity::Payment,
        "refundedCents",
        Strategy::Keep,
        "bookkeeping",
    ),
    rule(
        Entity::Payment,
        "gateway",
        Strategy::Keep,
        "the gateway's order, authorization and capture ids: reconciliation",
    ),
    rule(
        Entity::Payment,
        "failureCode",
        Strategy::Keep,
        "the gateway's reason code, never free text",
    ),
    rule(
        Entity::Payment,
        "idempotencyKey",
        Strategy::Keep,
        "the customer's id and a client-chosen key: the replay guard",
    ),
    rule(Entity::Payment, "createdAt", Strategy::Keep, "bookkeeping"),
    rule(
        Entity::PaymentRefund,
        "reason",
        Strategy::Destroy,
        "free text, may hold personal data",
    ),
    rule(
        Entity::PaymentRefund,
        "amountCents",
        Strategy::Keep,
        "bookkeeping",
    ),
    rule(
        Entity::PaymentRefund,
        "gatewayRefundId",
        Strategy::Keep,
        "reconciliation",
    ),
    rule(
        Entity::Shipment,
        "labelUrl",
        Strategy::Destroy,
        "the label shows the recipient's name and address",
    ),
    rule(
        Entity::Shipment,
        "trackingNumber",
        Strategy::Keep,
        "bookkeeping with the carrier (claims, returns)",
    ),
    rule(
        Entity::Shipment,
        "carrierShipmentId",
        Strategy::Keep,
        "bookkeeping with the carrier",
    ),
    rule(
        Entity::Shipment,
        "status",
        Strategy::Keep,
        "the order's fulfilment",
    ),
];

/// The rules of one entity.
pub fn rules_for(entity: Entity) -> impl Iterator<Item = &'static FieldRule> {
    RULES.iter().filter(move |rule| rule.entity == entity)
}

/// What an erasure does with the customer's records of `entity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordAction {
    /// Deleted (a `*` destroy rule).
    Delete,
    /// Kept, with its fields masked.
    Mask,
}

pub fn record_action(entity: Entity) -> RecordAction {
    let deleted =
        rules_for(entity).any(|rule| rule.field == "*" && rule.strategy == Strategy::Destroy);
    if deleted {
        RecordAction::Delete
    } else {
        RecordAction::Mask
    }
}

/// The pseudonymisation key (`GDPR_PSEUDONYM_KEY`). Its value never appears in logs.
#[derive(Clone)]
pub struct PseudonymKey(Vec<u8>);

/// A key that is too short to be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the GDPR pseudonym key has {0} bytes; use at least {MIN_KEY_BYTES} (for example 64 random hex characters)")]
pub struct WeakKey(usize);

/// Shortest key accepted.
pub(crate) const MIN_KEY_BYTES: usize = 16;

impl PseudonymKey {
    pub fn new(secret: &str) -> Result<Self, WeakKey> {
        let secret = secret.trim();
        if secret.len() < MIN_KEY_BYTES {
            return Err(WeakKey(secret.len()));
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    /// A new random key (64 hex characters), for local mode.
    pub(crate) fn generate_secret() -> String {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    }

    /// A key for another purpose, derived from this one (HMAC-SHA256 of the purpose's name), so
    /// one secret serves several uses without one use revealing another's key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            // HMAC accepts keys of any length; this branch cannot run.
            return [0; 32];
        };
        mac.update(b"derived-key:");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// `psn-` and 32 hex characters of HMAC-SHA256(key, tenant ␟ value): stable per tenant and
    /// value, not reversible without the key, and a valid id.
    pub fn pseudonym(&self, tenant: &str, value: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            // HMAC accepts keys of any length; this branch cannot run.
            return "psn-invalid-key".to_owned();
        };
        mac.update(tenant.as_bytes());
        mac.update(&[0x1f]);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("psn-{}", hex(&digest[..16]))
    }
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(redacted)")
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Applies [`RULES`] for one customer of one tenant. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Masker {
    key: PseudonymKey,
    tenant: String,
    customer_id: String,
    /// The customer's id and the token subjects of their client identity.
    identifiers: Vec<String>,
}

impl Masker {
    /// A masker for `customer_id`; its identifiers are the id and the dev client subject
    /// `dev-client-{id}`, plus `extra_subjects` (token subjects known to be the customer's).
    pub fn new(
        key: PseudonymKey,
        tenant: &str,
        customer_id: &str,
        extra_subjects: &[String],
    ) -> Self {
        let mut identifiers = vec![customer_id.to_owned(), format!("dev-client-{customer_id}")];
        identifiers.extend(extra_subjects.iter().cloned());
        identifiers.sort();
        identifiers.dedup();
        Self {
            key,
            tenant: tenant.to_owned(),
            customer_id: customer_id.to_owned(),
            identifiers,
        }
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn customer_id(&self) -> &str {
        &self.customer_id
    }

    /// The values that identify the customer (what keyed-hash rules replace).
    pub fn identifiers(&self) -> &[String] {
        &self.identifiers
    }

    /// The customer's pseudonym (of their id).
    pub fn customer_pseudonym(&self) -> String {
        self.key.pseudonym(&self.tenant, &self.customer_id)
    }

    /// One value under one strategy; `None` is null.
    pub(crate) fn mask_value(&self, strategy: Strategy, value: Option<&str>) -> Option<String> {
        match strategy {
            Strategy::Keep => value.map(str::to_owned),
            Strategy::Destroy => None,
            Strategy::Fake(placeholder) => Some(placeholder.to_owned()),
            Strategy::KeyedHash => value.map(|value| {
                if self.identifiers.iter().any(|id| id == value) {
                    self.key.pseudonym(&self.tenant, value)
                } else {
                    value.to_owned()
                }
            }),
            Strategy::Pseudonymise => value.map(|value| self.key.pseudonym(&self.tenant, value)),
            Strategy::Generalise(Generalisation::Prefix(length)) => {
                value.map(|value| value.chars().take(length).collect())
            }
        }
    }

    /// The customer's profile with its personal fields masked by the rules of
    /// [`Entity::Customer`] and its status `erased`; an error when the masked address no longer
    /// reads as an address.
    pub(crate) fn mask_customer(
        &self,
        customer: &mut crate::domain::customer::Customer,
    ) -> Result<(), serde_json::Error> {
        let mut document = serde_json::json!({
            "id": customer.id,
            "name": customer.name,
            "email": customer.email,
            "phone": customer.phone,
            "address": customer.address,
        });
        self.mask_document(Entity::Customer, &mut document);
        let text = |field: &str| document[field].as_str().map(str::to_owned);
        customer.name = text("name").unwrap_or_default();
        customer.email = text("email").unwrap_or_default();
        customer.phone = text("phone");
        customer.address = match document["address"].take() {
            Value::Null => None,
            address => Some(serde_json::from_value(address)?),
        };
        customer.status = crate::domain::customer::CustomerStatus::Erased;
        Ok(())
    }

    /// The payment masked by the rules of [`Entity::Payment`] and, for each refund,
    /// [`Entity::PaymentRefund`], marked erased under [`RULES_VERSION`] at `at`; `None` when it
    /// was erased before (a resumed erasure leaves it as it is). Its `updatedAt` stays (an
    /// erasure is no financial change, and reconciliation goes by it); its request hashes stay.
    pub fn mask_payment(
        &self,
        payment: &Payment,
        at: DateTime<Utc>,
    ) -> Result<Option<Payment>, serde_json::Error> {
        if payment.erasure.is_some() {
            return Ok(None);
        }
        let mut document = serde_json::to_value(payment)?;
        self.mask_document(Entity::Payment, &mut document);
        if let Some(refunds) = document.get_mut("refunds").and_then(Value::as_array_mut) {
            for refund in refunds {
                self.mask_document(Entity::PaymentRefund, refund);
            }
        }
        let mut masked: Payment = serde_json::from_value(document)?;
        masked.request_hash.clone_from(&payment.request_hash);
        for (refund, original) in masked.refunds.iter_mut().zip(&payment.refunds) {
            refund.request_hash.clone_from(&original.request_hash);
        }
        masked.erasure = Some(PaymentErasure {
            rules_version: RULES_VERSION.to_owned(),
            erased_at: at,
        });
        Ok(Some(masked))
    }

    /// Applies the field rules of `entity` to its JSON form (an object); returns how many
    /// fields changed. Fields absent or null stay so; a rule on a nested field whose parent
    /// is null does nothing.
    pub fn mask_document(&self, entity: Entity, document: &mut Value) -> usize {
        let mut changed = 0;
        for rule in
            rules_for(entity).filter(|rule| rule.field != "*" && rule.strategy != Strategy::Keep)
        {
            if let Some(slot) = field_slot(document, rule.field) {
                let before = slot.clone();
                let text = match &before {
                    Value::Null => None,
                    Value::String(text) => Some(text.clone()),
                    other => Some(other.to_string()),
                };
                if text.is_none() {
                    continue;
                }
                let masked = self
                    .mask_value(rule.strategy, text.as_deref())
                    .map_or(Value::Null, Value::String);
                if masked != before {
                    *slot = masked;
                    changed += 1;
                }
            }
        }
        changed
    }
}

/// The value at a dotted path of an object, if the path exists.
fn field_slot<'a>(document: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.')
        .try_fold(document, |value, key| value.as_object_mut()?.get_mut(key))
}

/// The canonical JSON of `value`: object keys sorted, no whitespace. What a report's SHA-256
/// is computed over.
pub(crate) fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|key| {
                    format!(
                        "{}:{}",
                        Value::String(key.clone()),
                        canonical_json(&map[key])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        scalar => scalar.to_string(),
    }
}

/// SHA-256 (hex) of the canonical JSON of `value`.
pub fn sha256_of(value: &Value) -> String {
    use sha2::Digest;
    hex(&Sha256::digest(canonical_json(value).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masker() -> Masker {
        Masker::new(
            PseudonymKey::new("0123456789abcdef0123456789abcdef").unwrap(),
            "t1",
            "c-1",
            &[],
        )
    }

    #[test]
    fn keyed_hash_replaces_only_the_customers_identifiers() {
        let masker = masker();
        let pseudonym = masker.mask_value(Strategy::KeyedHash, Some("c-1")).unwrap();
        assert!(
            pseudonym.starts_with("psn-") && pseudonym.len() == 36,
            "{pseudonym}"
        );
        assert_eq!(
            masker
                .mask_value(Strategy::KeyedHash, Some("dev-employee"))
                .unwrap(),
            "dev-employee"
        );
        assert_ne!(
            masker
                .mask_value(Strategy::KeyedHash, Some("dev-client-c-1"))
                .unwrap(),
            "dev-client-c-1"
        );
    }

    #[test]
    fn nested_rules_apply_and_null_parents_are_left() {
        let masker = masker();
        let mut order = json!({"shippingAddress": {"line1": "1 Main St", "line2": "Flat 2", "city": "Berlin", "postalCode": "10115", "country": "DE"}});
        assert_eq!(masker.mask_document(Entity::Order, &mut order), 4);
        assert_eq!(
            order["shippingAddress"],
            json!({"line1": "[erased]", "line2": null, "city": "[erased]", "postalCode": "10", "country": "DE"})
        );
        let mut without = json!({"shippingAddress": null});
        assert_eq!(masker.mask_document(Entity::Order, &mut without), 0);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        assert_eq!(
            canonical_json(&json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": "x"}})),
            r#"{"a":{"c":"x","d":[1,{"y":1,"z":0}]},"b":1}"#
        );
    }
}
