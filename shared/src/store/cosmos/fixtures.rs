//! Records and helpers the Cosmos DB adapter's test modules share.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::doc::Doc;
use super::support::pk;
use super::CosmosStore;
use crate::domain::customer::{Customer, CustomerStatus, NotificationPreferences};
use crate::domain::gdpr::{ErasureRecord, ErasureStatus};
use crate::domain::masking::{Masker, PseudonymKey};
use crate::domain::notification::{Notification, Recipient};
use crate::domain::tenant::TenantId;

/// The tenant the tests write to.
pub(crate) const TENANT: &str = "t1";

pub(crate) fn tenant() -> TenantId {
    TenantId::new(TENANT).unwrap()
}

/// Writes a document as it is (no audit entry, no checks).
pub(crate) async fn put<T: Serialize + Send + Sync>(store: &CosmosStore, doc: &Doc<T>) {
    store
        .create_doc(store.data(), pk(&doc.tenant_id, &doc.scope), &doc.id, doc)
        .await
        .unwrap();
}

/// An active customer `id` of [`TENANT`] with a name, an email and a phone number.
pub(crate) fn customer(id: &str) -> Customer {
    let at = Utc::now();
    Customer {
        id: id.into(),
        tenant_id: TENANT.into(),
        name: "Name Of Someone".into(),
        email: format!("{id}@example.org"),
        phone: Some("+4915112345678".into()),
        address: None,
        preferences: NotificationPreferences::default(),
        status: CustomerStatus::Active,
        created_at: at,
        updated_at: at,
        last_activity_at: at,
        etag: "e".into(),
    }
}

/// An unread notification `id` of [`TENANT`] to the customer `customer_id`.
pub(crate) fn notification(id: &str, customer_id: &str, created_at: DateTime<Utc>) -> Notification {
    Notification {
        id: id.into(),
        tenant_id: TENANT.into(),
        recipient: Recipient::Customer(customer_id.into()),
        category: "message".into(),
        title: "t".into(),
        message: "m".into(),
        order_id: None,
        read_at: None,
        created_at,
    }
}

/// An accepted erasure request `id` for `customer_id`.
pub(crate) fn erasure_request(id: &str, customer_id: &str) -> ErasureRecord {
    ErasureRecord {
        id: id.into(),
        tenant_id: TENANT.into(),
        customer_id: customer_id.into(),
        requested_by: "operator:test".into(),
        status: ErasureStatus::Accepted,
        requested_at: Utc::now(),
        updated_at: Utc::now(),
        queued_at: None,
        report: None,
    }
}

/// The masker of `customer_id`'s erasure in [`TENANT`].
pub(crate) fn masker(customer_id: &str) -> Masker {
    Masker::new(
        PseudonymKey::new("a-test-key-that-is-long-enough-0001").unwrap(),
        TENANT,
        customer_id,
        &[],
    )
}
