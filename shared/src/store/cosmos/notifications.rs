//! Cosmos DB adapter of [`NotificationStore`]. A notification to a customer lives in the
//! customer's partition, one to a staff role in the tenant scope; each is written in one batch
//! with its audit entry. Notifications expire 90 days after their last write (document
//! `ttl`); marking one read sets the time it has left, since Cosmos counts from the last write.

use azure_data_cosmos::TransactionalBatch;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::doc::{customer_scope, doc_id, kind, Doc, TENANT_SCOPE};
use super::support::{
    audit_doc, batch_create, batch_replace, busy, pk, refused, KeysetQuery, Order,
    CONCURRENCY_ATTEMPTS,
};
use super::{CosmosStore, Param};
use crate::domain::audit::AuditEntry;
use crate::domain::notification::{Notification, Recipient};
use crate::domain::now;
use crate::domain::tenant::TenantId;
use crate::outbox::OutboxMessage;
use crate::store::{ts, NotificationStore, Page, PageRequest, StoreError, StoreResult};

/// The shortest time a notification lives after it is created (document `ttl`); longer when a
/// retention setting keeps notifications longer (`CosmosOptions::notification_ttl`).
pub(crate) const NOTIFICATION_TTL_SECONDS: i64 = 90 * 24 * 3600;

/// Parameter names of the recipients a listing may ask for (a customer and a few roles).
const RECIPIENT_PARAMS: [(&str, &str); 8] = [
    ("@k0", "@i0"),
    ("@k1", "@i1"),
    ("@k2", "@i2"),
    ("@k3", "@i3"),
    ("@k4", "@i4"),
    ("@k5", "@i5"),
    ("@k6", "@i6"),
    ("@k7", "@i7"),
];

/// The partition scope of a recipient's notifications.
pub(super) fn recipient_scope(recipient: &Recipient) -> String {
    match recipient {
        Recipient::Customer(customer_id) => customer_scope(customer_id),
        Recipient::Role(_) => TENANT_SCOPE.to_owned(),
    }
}

/// Listing order, newest first within each group: unread (`1|`) before read (`0|`).
pub(super) fn notification_sort_key(notification: &Notification) -> String {
    format!(
        "{}|{}",
        u8::from(notification.read_at.is_none()),
        ts(notification.created_at)
    )
}

/// Seconds a notification created at `created_at` has left at `at`, of `ttl` (at least 1).
fn remaining_ttl(ttl: i64, created_at: DateTime<Utc>, at: DateTime<Utc>) -> i64 {
    (ttl - (at - created_at).num_seconds()).max(1)
}

impl CosmosStore {
    /// The stored form of a notification.
    pub(super) fn notification_doc(&self, notification: &Notification) -> Doc<Notification> {
        Doc::new(
            kind::NOTIFICATION,
            &notification.id,
            &notification.tenant_id,
            recipient_scope(&notification.recipient),
            notification_sort_key(notification),
            notification.clone(),
        )
        .with_at(notification.created_at)
        .with_ttl(Some(remaining_ttl(
            self.notification_ttl_seconds(),
            notification.created_at,
            now(),
        )))
    }
}

/// `AND (recipient is one of these)`.
fn recipient_condition(recipients: &[Recipient]) -> StoreResult<(String, Vec<Param>)> {
    if recipients.len() > RECIPIENT_PARAMS.len() {
        return Err(StoreError::Conflict(format!(
            "at most {} recipients per listing",
            RECIPIENT_PARAMS.len()
        )));
    }
    if recipients.is_empty() {
        return Ok((" AND false".to_owned(), Vec::new()));
    }
    let mut alternatives = Vec::new();
    let mut params = Vec::new();
    for (recipient, (kind_param, id_param)) in recipients.iter().zip(RECIPIENT_PARAMS) {
        let (recipient_kind, id) = match recipient {
            Recipient::Customer(id) => ("customer", id),
            Recipient::Role(id) => ("role", id),
        };
        alternatives.push(format!(
            "(c.body.recipient.kind = {kind_param} AND c.body.recipient.id = {id_param})"
        ));
        params.push((kind_param, json!(recipient_kind)));
        params.push((id_param, json!(id)));
    }
    Ok((format!(" AND ({})", alternatives.join(" OR ")), params))
}

impl CosmosStore {
    /// A notification addressed to one of `recipients`, looked up in their partitions.
    async fn addressed_notification(
        &self,
        tenant: &str,
        id: &str,
        recipients: &[Recipient],
    ) -> StoreResult<Option<Doc<Notification>>> {
        let mut scopes: Vec<String> = recipients.iter().map(recipient_scope).collect();
        scopes.dedup();
        for scope in scopes {
            let doc: Option<Doc<Notification>> = self
                .read_doc(
                    self.data(),
                    pk(tenant, &scope),
                    &doc_id(kind::NOTIFICATION, id),
                )
                .await?;
            if let Some(doc) = doc.filter(|doc| recipients.contains(&doc.body.recipient)) {
                return Ok(Some(doc));
            }
        }
        Ok(None)
    }
}

#[async_trait::async_trait]
impl NotificationStore for CosmosStore {
    async fn create_notification_with_messages(
        &self,
        tenant: &TenantId,
        mut notification: Notification,
        audit: AuditEntry,
        messages: Vec<OutboxMessage>,
    ) -> StoreResult<Notification> {
        notification.tenant_id = tenant.as_str().to_owned();
        let doc = self.notification_doc(&notification);
        let batch = TransactionalBatch::new(pk(tenant.as_str(), &doc.scope));
        let batch = batch_create(self, batch, &doc)?;
        let mut batch = batch_create(self, batch, &audit_doc(&audit, &doc.scope))?;
        for message in &messages {
            batch = self.batch_outbox(batch, tenant.as_str(), &doc.scope, message)?;
        }
        match self.run_batch(self.data(), batch).await? {
            Ok(_) => Ok(notification),
            Err(refusal) => Err(refused(refusal)),
        }
    }

    async fn list_notifications(
        &self,
        tenant: &TenantId,
        recipients: &[Recipient],
        page: PageRequest,
    ) -> StoreResult<Page<Notification>> {
        let name = format!(
            "notifications:{}",
            serde_json::to_string(recipients).unwrap_or_default()
        );
        let (condition, params) = recipient_condition(recipients)?;
        let query = KeysetQuery {
            kind: kind::NOTIFICATION,
            filter: condition,
            params,
            order: Order::Descending,
            query_name: &name,
        };
        self.keyset_page(tenant, query, &page).await
    }

    async fn mark_notification_read(
        &self,
        tenant: &TenantId,
        id: &str,
        recipients: &[Recipient],
        audit: AuditEntry,
    ) -> StoreResult<Notification> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            let doc = self
                .addressed_notification(tenant.as_str(), id, recipients)
                .await?
                .ok_or(StoreError::NotFound)?;
            if doc.body.read_at.is_some() {
                return Ok(doc.body);
            }
            let at = now();
            let mut read = doc.clone();
            read.body.read_at = Some(at);
            read.sort_key = notification_sort_key(&read.body);
            read.ttl = Some(remaining_ttl(
                self.notification_ttl_seconds(),
                read.body.created_at,
                at,
            ));
            let batch = TransactionalBatch::new(pk(tenant.as_str(), &read.scope));
            let batch = batch_replace(self, batch, &read)?;
            let batch = batch_create(self, batch, &audit_doc(&audit, &read.scope))?;
            if self.commit_unless_changed(batch).await? {
                return Ok(read.body);
            }
        }
        Err(busy("notification"))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    use crate::store::cosmos::fixtures::notification;

    /// An unread notification `n1` of tenant `t1` to customer `c1`.
    fn unread_to_c1(created: DateTime<Utc>) -> Notification {
        notification("n1", "c1", created)
    }

    #[test]
    fn unread_sorts_after_read_in_text_order_so_descending_lists_unread_first() {
        let created = now();
        let mut notification = unread_to_c1(created);
        let unread = notification_sort_key(&notification);
        notification.read_at = Some(created);
        notification.created_at = created + Duration::days(1);
        assert!(unread > notification_sort_key(&notification));
    }

    #[cfg(feature = "cosmos-emulator")]
    #[tokio::test]
    async fn notifications_live_as_long_as_the_longest_retention_and_marking_read_keeps_the_deadline(
    ) {
        use crate::domain::audit::AuditEntry;
        use crate::store::cosmos::{in_memory, CosmosOptions};
        use crate::store::NotificationStore;
        let options = CosmosOptions {
            notification_ttl: std::time::Duration::from_secs(400 * 24 * 3600),
            ..CosmosOptions::for_emulator()
        };
        let store = in_memory(options, Vec::new()).await.unwrap().store;
        let tenant = TenantId::new("t1").unwrap();
        let created = now() - Duration::days(10);
        let notification = unread_to_c1(created);
        let audit = AuditEntry::now("t1", "a", "notification.send", "notification", "n1", "c");
        store
            .create_notification(&tenant, notification, audit)
            .await
            .unwrap();
        let stored = |store: CosmosStore| async move {
            store
                .read_doc::<Doc<Notification>>(
                    store.data(),
                    pk("t1", &customer_scope("c1")),
                    "notification:n1",
                )
                .await
                .unwrap()
                .unwrap()
                .ttl
                .unwrap()
        };
        let ttl = stored(store.clone()).await;
        assert!(
            (390 * 24 * 3600 - 60..=390 * 24 * 3600).contains(&ttl),
            "400 days from creation: {ttl}"
        );
        let read_audit = AuditEntry::now("t1", "a", "notification.read", "notification", "n1", "c");
        store
            .mark_notification_read(
                &tenant,
                "n1",
                &[Recipient::Customer("c1".into())],
                read_audit,
            )
            .await
            .unwrap();
        let after_read = stored(store).await;
        assert!(
            after_read <= ttl && after_read > ttl - 60,
            "the deadline stays where it was: {after_read} vs {ttl}"
        );
    }

    #[test]
    fn the_remaining_ttl_counts_from_creation() {
        let created = now();
        assert_eq!(
            remaining_ttl(
                NOTIFICATION_TTL_SECONDS,
                created,
                created + Duration::days(30)
            ),
            NOTIFICATION_TTL_SECONDS - 30 * 24 * 3600
        );
        assert_eq!(
            remaining_ttl(
                NOTIFICATION_TTL_SECONDS,
                created,
                created + Duration::days(400)
            ),
            1
        );
    }
}
