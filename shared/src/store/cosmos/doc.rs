//! The stored form of every Cosmos DB document: one envelope around the domain record, and the
//! partition and id conventions of the data model (see the [module doc](super)).

use serde::{Deserialize, Serialize};

use crate::domain::customer::Customer;
use crate::domain::gdpr::ErasureRecord;
use crate::store::{ts, ErasureProgress};

/// Document types (`type` field), one per kind of record.
pub mod kind {
    pub(crate) const CUSTOMER: &str = "customer";
    pub const ORDER: &str = "order";
    pub(crate) const PRODUCT: &str = "product";
    pub(crate) const NOTIFICATION: &str = "notification";
    pub(crate) const AUDIT: &str = "audit";
    /// A consent grant or withdrawal ([`crate::domain::consent::ConsentRecord`]), in its
    /// customer's scope.
    pub(crate) const CONSENT: &str = "consent";
    /// A customer's notification preferences ([`crate::domain::preferences::Preferences`],
    /// id `notificationPreferences:{customerId}`), in their scope.
    pub(crate) const PREFERENCES: &str = "notificationPreferences";
    /// A finding of breach detection ([`crate::security::SecurityEvent`]), in the tenant scope.
    pub(crate) const SECURITY_EVENT: &str = "securityEvent";
    pub(crate) const IDEMPOTENCY: &str = "idempotency";
    pub(crate) const ERASURE: &str = "erasure";
    pub(crate) const PROCESSED_EVENT: &str = "processedEvent";
    pub(crate) const LEASE: &str = "lease";
    pub(crate) const JOB_RUN: &str = "jobRun";
    pub(crate) const RESERVATION: &str = "reservation";
    /// A SKU taken by a product of the catalogue (unique per tenant).
    pub(crate) const SKU: &str = "sku";
    /// A payment ([`crate::store::payment_record::StoredPayment`]), in its customer's scope.
    pub(crate) const PAYMENT: &str = "payment";
    /// The payment that holds an order (id `paymentLock:{orderId}`, in the customer's scope).
    pub(crate) const PAYMENT_LOCK: &str = "paymentLock";
    /// A used payment idempotency key (in the customer's scope).
    pub(crate) const PAYMENT_KEY: &str = "paymentKey";
    /// A webhook event applied to a payment (in the customer's scope, with a TTL).
    pub(crate) const PAYMENT_WEBHOOK: &str = "paymentWebhook";
    /// An order's shipment ([`crate::domain::shipment::Shipment`], id the order's), in its
    /// customer's scope.
    pub(crate) const SHIPMENT: &str = "shipment";
    /// Outbox records ([`crate::outbox::DOC_TYPE`]).
    pub(crate) const OUTBOX: &str = crate::outbox::DOC_TYPE;
}

/// The scope (second partition-key level) of the product catalogue: all of a tenant's
/// products share one logical partition, so one transactional batch can reserve stock on
/// several products at once.
pub(crate) const CATALOG_SCOPE: &str = "catalog";

/// The scope of tenant-wide records: notifications to a staff role, audit entries about no
/// customer (job runs, say).
pub(crate) const TENANT_SCOPE: &str = "tenant";

/// The scope holding everything about one customer: profile, orders, notifications,
/// idempotency keys, erasure requests, processed events and the audit entries about them.
pub(crate) fn customer_scope(customer_id: &str) -> String {
    format!("customer:{customer_id}")
}

/// The customer a scope belongs to, if it is a customer scope.
pub(crate) fn scope_customer(scope: &str) -> Option<&str> {
    scope.strip_prefix("customer:")
}

/// Cosmos DB document ids may be at most this long (bytes).
pub(crate) const MAX_DOC_ID_LEN: usize = 255;

/// Characters a Cosmos DB id may not contain (and `%`, the escape), with their escapes.
const ESCAPES: [(char, &str); 5] = [
    ('%', "%25"),
    ('/', "%2F"),
    ('\\', "%5C"),
    ('?', "%3F"),
    ('#', "%23"),
];

/// The document id of a record: its type and its own id, so records of different types can
/// share a partition without their ids colliding. Characters Cosmos refuses in ids are
/// percent-escaped ([`record_id_of`] reverses it).
pub(crate) fn doc_id(kind: &str, id: &str) -> String {
    let mut encoded = String::with_capacity(kind.len() + 1 + id.len());
    encoded.push_str(kind);
    encoded.push(':');
    for ch in id.chars() {
        match ESCAPES.iter().find(|(escaped, _)| *escaped == ch) {
            Some((_, escape)) => encoded.push_str(escape),
            None => encoded.push(ch),
        }
    }
    encoded
}

/// The record id inside a document id of `kind` (`None` when it is another kind's).
pub(crate) fn record_id_of(kind: &str, doc_id: &str) -> Option<String> {
    let encoded = doc_id.strip_prefix(kind)?.strip_prefix(':')?;
    let mut decoded = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(position) = rest.find('%') {
        decoded.push_str(&rest[..position]);
        let escape = rest.get(position..position + 3)?;
        let (ch, _) = ESCAPES
            .iter()
            .find(|(_, text)| text.eq_ignore_ascii_case(escape))?;
        decoded.push(*ch);
        rest = &rest[position + 3..];
    }
    decoded.push_str(rest);
    Some(decoded)
}

/// One stored document: routing fields, our own version tag and the domain record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Doc<T> {
    /// [`doc_id`] of the record.
    pub id: String,
    /// First partition-key level.
    pub tenant_id: String,
    /// Second partition-key level: [`customer_scope`], [`CATALOG_SCOPE`] or [`TENANT_SCOPE`].
    pub scope: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The ETag clients see: changes only when the record itself changes (Cosmos's `_etag`
    /// also changes on bookkeeping writes such as a customer's last activity).
    #[serde(default)]
    pub version: String,
    /// The listing order of the record (fixed-width UTC times, so text order is time order).
    #[serde(default)]
    pub sort_key: String,
    /// The record's time that jobs filter and order by (fixed-width UTC, see
    /// [`crate::store::ts`]): notifications' and idempotency keys' creation, audit entries'
    /// time, customers' last activity, processed events' processing time, erasure requests'
    /// last queueing (absent when never queued), outbox records' creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Seconds to live after the last write (notifications, idempotency keys, processed
    /// events, outbox records); absent means forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    pub body: T,
    /// Cosmos's own version of the document, for optimistic concurrency on every write.
    #[serde(default, rename = "_etag", skip_serializing)]
    pub cosmos_etag: Option<String>,
}

impl<T> Doc<T> {
    /// A new document of `kind` for the record `id`.
    pub fn new(
        kind: &str,
        id: &str,
        tenant: &str,
        scope: impl Into<String>,
        sort_key: impl Into<String>,
        body: T,
    ) -> Self {
        Self {
            id: doc_id(kind, id),
            tenant_id: tenant.to_owned(),
            scope: scope.into(),
            kind: kind.to_owned(),
            version: String::new(),
            sort_key: sort_key.into(),
            at: None,
            ttl: None,
            body,
            cosmos_etag: None,
        }
    }

    pub(crate) fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    pub(crate) fn with_at(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.at = Some(crate::store::ts(at));
        self
    }

    pub(crate) fn with_ttl(mut self, seconds: Option<i64>) -> Self {
        self.ttl = seconds;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cosmos_refuses_are_escaped_and_come_back() {
        for id in [
            "c-1/k-1",
            "c-1/order 42?retry=1#x",
            "c-1/back\\slash%2F",
            "plain",
        ] {
            let encoded = doc_id(kind::IDEMPOTENCY, id);
            assert!(!encoded.contains(['/', '\\', '?', '#']), "{encoded}");
            assert_eq!(
                record_id_of(kind::IDEMPOTENCY, &encoded).as_deref(),
                Some(id)
            );
        }
        assert_eq!(record_id_of(kind::ORDER, "idempotency:x"), None);
    }

    #[test]
    fn ids_and_scopes_round_trip() {
        assert_eq!(doc_id(kind::ORDER, "o-1"), "order:o-1");
        assert_eq!(scope_customer(&customer_scope("c-1")), Some("c-1"));
        assert_eq!(scope_customer(CATALOG_SCOPE), None);
    }

    #[test]
    fn the_cosmos_etag_is_read_but_never_written() {
        let doc = Doc::new(
            kind::PRODUCT,
            "p-1",
            "t1",
            CATALOG_SCOPE,
            "k",
            serde_json::json!({"x": 1}),
        )
        .with_version("v1");
        let json = serde_json::to_value(&doc).unwrap();
        assert!(json.get("_etag").is_none());
        assert_eq!(json["type"], "product");
        let mut stored = json.clone();
        stored["_etag"] = serde_json::json!("\"00-1\"");
        let read: Doc<serde_json::Value> = serde_json::from_value(stored).unwrap();
        assert_eq!(read.cosmos_etag.as_deref(), Some("\"00-1\""));
    }
}

/// The stored form of a customer.
pub(super) fn customer_doc(customer: &Customer) -> Doc<Customer> {
    Doc::new(
        kind::CUSTOMER,
        &customer.id,
        &customer.tenant_id,
        customer_scope(&customer.id),
        ts(customer.created_at),
        customer.clone(),
    )
    .with_version(customer.etag.clone())
    .with_at(customer.last_activity_at)
}

/// The stored body of an erasure request (`Doc<ErasureDoc>`, id `erasure:{requestId}`, in the
/// customer's scope): the record and, once an erasure started, its durable progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErasureDoc {
    #[serde(flatten)]
    pub record: ErasureRecord,
    #[serde(default)]
    pub progress: Option<ErasureProgress>,
}
