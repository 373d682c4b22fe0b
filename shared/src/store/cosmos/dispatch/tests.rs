//! Dispatching order events once, on the in-memory emulator.

use chrono::Utc;
use serde_json::json;

use super::*;
use crate::domain::audit::AuditEntry;
use crate::domain::messages::{OrderEvent, OrderEventType};
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

fn event(id: &str, customer: &str, order: &str) -> CustomerEvent {
    CustomerEvent::Order(OrderEvent {
        event_id: id.into(),
        event_type: OrderEventType::Cancelled,
        tenant_id: TENANT.into(),
        order_id: order.into(),
        customer_id: customer.into(),
        occurred_at: Utc::now(),
    })
}

fn notification(event: &CustomerEvent, recipient: Recipient) -> Notification {
    Notification {
        id: crate::domain::validation::new_id(),
        tenant_id: event.tenant_id().to_owned(),
        recipient,
        category: "order.cancelled".into(),
        title: "Order cancelled".into(),
        message: format!("Order {} was cancelled.", event.order_id()),
        order_id: Some(event.order_id().to_owned()),
        read_at: None,
        created_at: Utc::now(),
    }
}

/// The customer and the order managers hear of it; one email goes out.
fn plan(
    customer: &Customer,
    _: &crate::domain::preferences::Preferences,
    event: &CustomerEvent,
) -> Fanout {
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
                event.event_id(),
            )
            .about_customer(&customer.id)
        })
        .collect();
    Fanout {
        notifications,
        outbound: vec![crate::outbox::OutboxMessage::outbound_notification(
            &format!("{}:email", event.event_id()),
            &json!({"deliveryId": format!("{}:email", event.event_id())}),
            TENANT,
            "email",
            event.occurred_at(),
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
    assert_eq!(
        count(&store, &scope, kind::OUTBOX).await,
        1,
        "the email's outbox record, written once with the marker"
    );
    let marker = store
        .dispatch_marker(TENANT, CONSUMER, &event)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (marker.ttl, marker.body.customer_id.as_deref()),
        (Some(PROCESSED_EVENT_TTL_SECONDS), Some("c-1"))
    );
    assert_eq!(
        PROCESSED_EVENT_TTL_SECONDS,
        14 * 24 * 3600,
        "as long as Service Bus keeps a message"
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
