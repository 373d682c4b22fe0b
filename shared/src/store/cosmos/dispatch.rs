//! Cosmos DB adapter of [`DispatchStore`]: one order event, handled once.
//!
//! The processed-event marker ([`ProcessedEvent`], `processedEvent:{consumer}:{eventId}` in the
//! customer's partition, 7 days to live) is created in one transactional batch with the
//! notifications to the customer and the plan's audit entries, so a redelivered event has no
//! second effect. The batch also rewrites the customer's document unchanged, if-match on the
//! `_etag` read when the customer was checked: an erasure started meanwhile (it marks the
//! customer) refuses the batch, and the retry finds the customer no longer active, so no
//! notification is left behind. A marker create refused with 409 is a concurrent delivery of
//! the same event: the retry reads its marker and answers `Duplicate` with its outbound
//! messages, as SQLite does after serialising the two.
//!
//! Notifications to staff roles live in the tenant scope, outside the customer's partition, so
//! they cannot join the batch: they are written right after it, idempotently (create, 409 =
//! written already, which never resets a read mark the way an upsert would), and kept in the
//! marker, so a redelivery after a crash between the two writes finishes them.

use azure_data_cosmos::TransactionalBatch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::doc::{customer_scope, doc_id, kind, Doc};
use super::notifications::recipient_scope;
use super::orders::CosmosOrder;
use super::support::{
    attempt_of, audit_doc, batch_create, batch_replace, busy, pk, Attempt, CONCURRENCY_ATTEMPTS,
    MAX_BATCH_OPERATIONS,
};
use super::{CosmosStore, BACKEND};
use crate::domain::customer::{Customer, CustomerStatus};
use crate::domain::messages::OrderEvent;
use crate::domain::notification::Notification;
use crate::domain::now;
use crate::domain::tenant::TenantId;
use crate::store::{
    ts, DispatchOutcome, DispatchStore, FanoutPlan, SkipReason, StoreError, StoreResult,
};

/// How long a processed-event marker lives (the window in which a redelivery is recognised).
pub(super) const PROCESSED_EVENT_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// The stored body of a processed-event marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProcessedEvent {
    pub consumer: String,
    pub event_id: String,
    /// The customer whose records the event changed; `None` when it changed nothing (so an
    /// erasure deletes only the markers naming the customer, as in SQLite).
    #[serde(default)]
    pub customer_id: Option<String>,
    /// `dispatched`, or why the event was skipped.
    pub outcome: String,
    /// The outbound messages the first delivery produced (ids only), sent again on a
    /// redelivery.
    #[serde(default)]
    pub outputs: Vec<Value>,
    /// Notifications outside the customer's partition (to staff roles), written after the
    /// marker; a redelivery writes any that are missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<Notification>,
    pub processed_at: DateTime<Utc>,
}

/// The record id of a marker (`{consumer}:{eventId}`; the document id adds the type).
fn marker_id(consumer: &str, event_id: &str) -> String {
    format!("{consumer}:{event_id}")
}

/// A marker for `event`, in the partition of the customer the event names.
fn marker_doc(
    tenant: &str,
    consumer: &str,
    event: &OrderEvent,
    body: MarkerBody,
) -> Doc<ProcessedEvent> {
    let processed_at = now();
    let marker = ProcessedEvent {
        consumer: consumer.to_owned(),
        event_id: event.event_id.clone(),
        customer_id: body.customer_id,
        outcome: body.outcome,
        outputs: body.outputs,
        elsewhere: body.elsewhere,
        processed_at,
    };
    Doc::new(
        kind::PROCESSED_EVENT,
        &marker_id(consumer, &event.event_id),
        tenant,
        customer_scope(&event.customer_id),
        ts(processed_at),
        marker,
    )
    .with_at(processed_at)
    .with_ttl(Some(PROCESSED_EVENT_TTL_SECONDS))
}

/// What a marker records.
struct MarkerBody {
    customer_id: Option<String>,
    outcome: String,
    outputs: Vec<Value>,
    elsewhere: Vec<Notification>,
}

impl MarkerBody {
    fn skipped(reason: SkipReason) -> Self {
        Self {
            customer_id: None,
            outcome: reason.as_str().to_owned(),
            outputs: Vec::new(),
            elsewhere: Vec::new(),
        }
    }
}

impl CosmosStore {
    /// The marker of `event` for `consumer`, if it was processed.
    async fn dispatch_marker(
        &self,
        tenant: &str,
        consumer: &str,
        event: &OrderEvent,
    ) -> StoreResult<Option<Doc<ProcessedEvent>>> {
        let id = doc_id(kind::PROCESSED_EVENT, &marker_id(consumer, &event.event_id));
        self.read_doc(
            self.data(),
            pk(tenant, &customer_scope(&event.customer_id)),
            &id,
        )
        .await
    }

    /// Why the event changes nothing for an existing customer, if it does not: the customer is
    /// not active, or the order is missing or another customer's (it would be in another
    /// partition).
    async fn dispatch_skip_reason(
        &self,
        tenant: &str,
        event: &OrderEvent,
        customer: &Doc<Customer>,
    ) -> StoreResult<Option<SkipReason>> {
        if customer.body.status != CustomerStatus::Active {
            return Ok(Some(SkipReason::CustomerErased));
        }
        let order: Option<Doc<CosmosOrder>> = self
            .read_doc(
                self.data(),
                pk(tenant, &customer_scope(&event.customer_id)),
                &doc_id(kind::ORDER, &event.order_id),
            )
            .await?;
        let owned = order.is_some_and(|doc| doc.body.order.customer_id == event.customer_id);
        Ok((!owned).then_some(SkipReason::OrderMissing))
    }

    /// Writes notifications outside the customer's partition; one that exists already (an
    /// earlier delivery wrote it) is left as it is.
    async fn dispatch_elsewhere(
        &self,
        tenant: &str,
        notifications: &[Notification],
    ) -> StoreResult<()> {
        for notification in notifications {
            let doc = self.notification_doc(notification);
            match self
                .create_doc(self.data(), pk(tenant, &doc.scope), &doc.id, &doc)
                .await
            {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Records a skipped event; a concurrent delivery that recorded it first makes this try
    /// start again (and find its marker).
    async fn dispatch_skip(
        &self,
        tenant: &str,
        consumer: &str,
        event: &OrderEvent,
        reason: SkipReason,
    ) -> StoreResult<Attempt<DispatchOutcome>> {
        let marker = marker_doc(tenant, consumer, event, MarkerBody::skipped(reason));
        match self
            .create_doc(self.data(), pk(tenant, &marker.scope), &marker.id, &marker)
            .await
        {
            Ok(_) => Ok(Attempt::Done(DispatchOutcome::Skipped(reason))),
            Err(StoreError::Conflict(_)) => Ok(Attempt::Again),
            Err(error) => Err(error),
        }
    }

    async fn dispatch_once(
        &self,
        tenant: &TenantId,
        consumer: &str,
        event: &OrderEvent,
        plan: FanoutPlan,
    ) -> StoreResult<Attempt<DispatchOutcome>> {
        let tenant = tenant.as_str();
        if let Some(marker) = self.dispatch_marker(tenant, consumer, event).await? {
            self.dispatch_elsewhere(tenant, &marker.body.elsewhere)
                .await?;
            return Ok(Attempt::Done(DispatchOutcome::Duplicate));
        }
        let Some(customer) = self.customer_doc(tenant, &event.customer_id).await? else {
            return self
                .dispatch_skip(tenant, consumer, event, SkipReason::CustomerMissing)
                .await;
        };
        if let Some(reason) = self.dispatch_skip_reason(tenant, event, &customer).await? {
            return self.dispatch_skip(tenant, consumer, event, reason).await;
        }
        let fanout = plan(&customer.body, event);
        let (here, elsewhere): (Vec<Notification>, Vec<Notification>) = fanout
            .notifications
            .iter()
            .cloned()
            .partition(|notification| recipient_scope(&notification.recipient) == customer.scope);
        let operations = 2 + here.len() + fanout.audit.len();
        if operations > MAX_BATCH_OPERATIONS {
            return Err(StoreError::Unavailable { backend: BACKEND, reason: format!("event {} produces {operations} writes; one transactional batch holds {MAX_BATCH_OPERATIONS}", event.event_id) });
        }
        let body = MarkerBody {
            customer_id: Some(customer.body.id.clone()),
            outcome: "dispatched".into(),
            outputs: fanout
                .outbound
                .iter()
                .map(|message| serde_json::Value::String(message.message_id.clone()))
                .collect(),
            elsewhere: elsewhere.clone(),
        };
        let marker = marker_doc(tenant, consumer, event, body);
        // The customer unchanged, if still as checked: the guard against a concurrent erasure.
        let mut batch = batch_replace(
            self,
            TransactionalBatch::new(pk(tenant, &customer.scope)),
            &customer,
        )?;
        for notification in &here {
            batch = batch_create(self, batch, &self.notification_doc(notification))?;
        }
        for entry in &fanout.audit {
            batch = batch_create(self, batch, &audit_doc(entry, &customer.scope))?;
        }
        batch = batch_create(self, batch, &marker)?;
        if let Attempt::Again = attempt_of(self.run_batch(self.data(), batch).await?, ())? {
            return Ok(Attempt::Again);
        }
        // Role notifications: after the marker (see the module doc), idempotently.
        self.dispatch_elsewhere(tenant, &elsewhere).await?;
        Ok(Attempt::Done(DispatchOutcome::Dispatched {
            notifications: fanout.notifications.len(),
            outbound: fanout.outbound.len(),
        }))
    }
}

#[async_trait::async_trait]
impl DispatchStore for CosmosStore {
    async fn dispatch_event(
        &self,
        tenant: &TenantId,
        consumer: &str,
        event: &OrderEvent,
        plan: FanoutPlan,
    ) -> StoreResult<DispatchOutcome> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            if let Attempt::Done(outcome) =
                self.dispatch_once(tenant, consumer, event, plan).await?
            {
                return Ok(outcome);
            }
            tracing::debug!(event_id = %event.event_id, "dispatch refused by a concurrent change; checking again");
        }
        Err(busy("customer"))
    }
}

#[cfg(all(test, feature = "cosmos-emulator"))]
mod tests {

    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::domain::audit::AuditEntry;
    use crate::domain::messages::OrderEventType;
    use crate::domain::notification::Recipient;
    use crate::domain::order::{Order, OrderStatus};
    use crate::store::cosmos::doc::customer_doc;
    use crate::store::cosmos::doc::TENANT_SCOPE;
    use crate::store::cosmos::fixtures::{customer, erasure_request, masker, put, tenant, TENANT};
    use crate::store::cosmos::support::{param, scope_feed};
    use crate::store::cosmos::{in_memory, CosmosOptions};
    use crate::store::{ErasureStep, ErasureStore, Fanout};

    const CONSUMER: &str = "NotificationDispatch";

    async fn store() -> CosmosStore {
        let options = CosmosOptions::for_emulator();
        in_memory(options, Vec::new()).await.unwrap().store
    }

    /// An active customer `id` with the order `o-{id}`.
    async fn seed(store: &CosmosStore, id: &str, status: CustomerStatus) {
        let at = Utc::now();
        put(
            store,
            &customer_doc(&Customer {
                status,
                ..customer(id)
            }),
        )
        .await;
        let order = Order {
            id: format!("o-{id}"),
            tenant_id: TENANT.into(),
            customer_id: id.into(),
            status: OrderStatus::Cancelled,
            items: Vec::new(),
            total_cents: 0,
            currency: "EUR".into(),
            shipping_address: None,
            created_at: at,
            updated_at: at,
            etag: "v".into(),
        };
        let doc = Doc::new(
            kind::ORDER,
            &order.id.clone(),
            TENANT,
            customer_scope(id),
            ts(at),
            CosmosOrder {
                order,
                history: Vec::new(),
            },
        );
        put(store, &doc).await;
    }

    fn event(id: &str, customer: &str, order: &str) -> OrderEvent {
        OrderEvent {
            event_id: id.into(),
            event_type: OrderEventType::Cancelled,
            tenant_id: TENANT.into(),
            order_id: order.into(),
            customer_id: customer.into(),
            occurred_at: Utc::now(),
        }
    }

    fn notification(event: &OrderEvent, recipient: Recipient) -> Notification {
        Notification {
            id: crate::domain::validation::new_id(),
            tenant_id: event.tenant_id.clone(),
            recipient,
            category: "order.cancelled".into(),
            title: "Order cancelled".into(),
            message: format!("Order {} was cancelled.", event.order_id),
            order_id: Some(event.order_id.clone()),
            read_at: None,
            created_at: Utc::now(),
        }
    }

    /// The customer and the order managers hear of it; one email goes out.
    fn plan(customer: &Customer, event: &OrderEvent) -> Fanout {
        let notifications = vec![
            notification(event, Recipient::Customer(customer.id.clone())),
            notification(event, Recipient::Role("order-manager".into())),
        ];
        let audit = notifications
            .iter()
            .map(|n| {
                AuditEntry::now(
                    TENANT,
                    "system:test",
                    "notification.dispatch",
                    "notification",
                    &n.id,
                    &event.event_id,
                )
                .about_customer(&customer.id)
            })
            .collect();
        Fanout {
            notifications,
            outbound: vec![crate::outbox::OutboxMessage::outbound_notification(
                &format!("{}:email", event.event_id),
                &json!({"deliveryId": format!("{}:email", event.event_id)}),
                TENANT,
                "email",
                event.occurred_at,
            )],
            audit,
        }
    }

    async fn count(store: &CosmosStore, scope: &str, kind: &str) -> usize {
        let ids: Vec<Value> = store
            .query_docs(
                store.data(),
                scope_feed(TENANT, scope),
                "SELECT c.id FROM c WHERE c.type = @kind",
                vec![param("@kind", kind)],
            )
            .await
            .unwrap();
        ids.len()
    }

    #[tokio::test]
    async fn a_redelivered_event_is_a_duplicate() {
        let store = store().await;
        seed(&store, "c-1", CustomerStatus::Active).await;
        let event = event("e-1", "c-1", "o-c-1");
        let first = store
            .dispatch_event(&tenant(), CONSUMER, &event, plan)
            .await
            .unwrap();
        assert_eq!(
            first,
            DispatchOutcome::Dispatched {
                notifications: 2,
                outbound: 1
            }
        );
        assert_eq!(
            store
                .dispatch_event(&tenant(), CONSUMER, &event, plan)
                .await
                .unwrap(),
            DispatchOutcome::Duplicate
        );
        let scope = customer_scope("c-1");
        assert_eq!(
            (
                count(&store, &scope, kind::NOTIFICATION).await,
                count(&store, TENANT_SCOPE, kind::NOTIFICATION).await
            ),
            (1, 1)
        );
        assert_eq!(count(&store, &scope, kind::AUDIT).await, 2);
        let marker = store
            .dispatch_marker(TENANT, CONSUMER, &event)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (marker.ttl, marker.body.customer_id.as_deref()),
            (Some(PROCESSED_EVENT_TTL_SECONDS), Some("c-1"))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deliveries_store_the_notifications_once() {
        let store = store().await;
        seed(&store, "c-1", CustomerStatus::Active).await;
        let delivery = || {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .dispatch_event(&tenant(), CONSUMER, &event("e-1", "c-1", "o-c-1"), plan)
                    .await
                    .unwrap()
            })
        };
        let (a, b) = tokio::join!(delivery(), delivery());
        let outcomes = [a.unwrap(), b.unwrap()];
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| matches!(o, DispatchOutcome::Dispatched { .. }))
                .count(),
            1,
            "{outcomes:?}"
        );
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, DispatchOutcome::Duplicate)),
            "{outcomes:?}"
        );
        assert_eq!(
            (
                count(&store, &customer_scope("c-1"), kind::NOTIFICATION).await,
                count(&store, TENANT_SCOPE, kind::NOTIFICATION).await
            ),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn events_for_missing_or_erased_customers_or_foreign_orders_are_skipped_and_recorded() {
        let store = store().await;
        seed(&store, "c-1", CustomerStatus::Active).await;
        seed(&store, "c-2", CustomerStatus::ErasureRequested).await;
        let cases = [
            (event("e-1", "nobody", "o-c-1"), SkipReason::CustomerMissing),
            (event("e-2", "c-2", "o-c-2"), SkipReason::CustomerErased),
            (event("e-3", "c-1", "o-c-2"), SkipReason::OrderMissing),
            (event("e-4", "c-1", "o-none"), SkipReason::OrderMissing),
        ];
        for (event, reason) in cases {
            assert_eq!(
                store
                    .dispatch_event(&tenant(), CONSUMER, &event, plan)
                    .await
                    .unwrap(),
                DispatchOutcome::Skipped(reason)
            );
            assert_eq!(
                store
                    .dispatch_event(&tenant(), CONSUMER, &event, plan)
                    .await
                    .unwrap(),
                DispatchOutcome::Duplicate
            );
        }
        assert_eq!(
            count(&store, &customer_scope("c-1"), kind::NOTIFICATION).await
                + count(&store, TENANT_SCOPE, kind::NOTIFICATION).await,
            0
        );
    }

    #[tokio::test]
    async fn a_redelivery_writes_role_notifications_a_crash_left_out() {
        let store = store().await;
        seed(&store, "c-1", CustomerStatus::Active).await;
        let event = event("e-1", "c-1", "o-c-1");
        // The state a crash right after the marker batch leaves: the marker, no role notification.
        let elsewhere = vec![notification(
            &event,
            Recipient::Role("order-manager".into()),
        )];
        let body = MarkerBody {
            customer_id: Some("c-1".into()),
            outcome: "dispatched".into(),
            outputs: Vec::new(),
            elsewhere,
        };
        put(&store, &marker_doc(TENANT, CONSUMER, &event, body)).await;
        assert_eq!(
            store
                .dispatch_event(&tenant(), CONSUMER, &event, plan)
                .await
                .unwrap(),
            DispatchOutcome::Duplicate
        );
        assert_eq!(
            store
                .dispatch_event(&tenant(), CONSUMER, &event, plan)
                .await
                .unwrap(),
            DispatchOutcome::Duplicate
        );
        assert_eq!(count(&store, TENANT_SCOPE, kind::NOTIFICATION).await, 1);
    }

    #[tokio::test]
    async fn an_erasure_deletes_the_markers_of_events_that_changed_the_customer() {
        let store = store().await;
        seed(&store, "c-1", CustomerStatus::Active).await;
        store
            .dispatch_event(&tenant(), CONSUMER, &event("e-1", "c-1", "o-c-1"), plan)
            .await
            .unwrap();
        store
            .dispatch_event(&tenant(), CONSUMER, &event("e-2", "c-1", "o-none"), plan)
            .await
            .unwrap();
        store
            .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
            .await
            .unwrap();
        let progress = store
            .erase_batch(
                &tenant(),
                "r-1",
                ErasureStep::ProcessedEvents,
                &masker("c-1"),
                10,
            )
            .await
            .unwrap();
        assert_eq!(
            progress.counts()["processedEvents"],
            1,
            "as in SQLite, the skipped event's marker names no customer"
        );
        // Once the erasure started, events for the customer change nothing.
        let late = store
            .dispatch_event(&tenant(), CONSUMER, &event("e-3", "c-1", "o-c-1"), plan)
            .await
            .unwrap();
        assert_eq!(late, DispatchOutcome::Skipped(SkipReason::CustomerErased));
    }
}
