//! The Cosmos DB erasure adapter on the in-memory emulator: resumed and concurrent erasures count
//! each record once, large orders fit the batch limits, finishing twice writes once.

use chrono::Utc;
use serde_json::json;

use serde_json::Value;

use super::super::doc::{customer_scope, kind, Doc};
use super::super::support::{audit_doc, param, scope_feed};
use super::super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::customer::Address;
use crate::domain::customer::CustomerStatus;
use crate::domain::gdpr::ErasureStatus;
use crate::domain::order::{Order, OrderItem, OrderStatus, StatusChange};
use crate::domain::tenant::TenantId;
use crate::store::cosmos::doc::customer_doc;
use crate::store::cosmos::doc::TENANT_SCOPE;
use crate::store::cosmos::fixtures::{
    customer, erasure_request, masker, notification, put, tenant, TENANT,
};
use crate::store::cosmos::orders::{CosmosOrder, StoredIdempotency};
use crate::store::cosmos::{in_memory, CosmosOptions};
use crate::store::{ts, ErasureProgress, ErasureStart, ErasureStep, ErasureStore, StoreError};

fn options() -> CosmosOptions {
    CosmosOptions::for_emulator()
}

/// A customer with `orders` orders (each with a status change by the customer, an
/// idempotency key and an audit entry) and `notifications` notifications; one dispatched
/// and one skipped event marker.
async fn seed(store: &CosmosStore, id: &str, orders: usize, notifications: usize) {
    let (at, scope) = (Utc::now(), customer_scope(id));
    put(store, &customer_doc(&customer(id))).await;
    for n in 0..orders {
        let order_id = format!("o-{id}-{n}");
        let address = Address {
            line1: "1 Road".into(),
            line2: None,
            city: "Town".into(),
            postal_code: "12345".into(),
            country: "DE".into(),
        };
        let item = OrderItem {
            product_id: "p-1".into(),
            product_name: "Thing".into(),
            quantity: 1,
            unit_price_cents: 100,
        };
        let order = Order {
            id: order_id.clone(),
            tenant_id: TENANT.into(),
            customer_id: id.into(),
            status: OrderStatus::Pending,
            items: vec![item],
            total_cents: 100,
            currency: "EUR".into(),
            shipping_address: Some(address),
            created_at: at,
            updated_at: at,
            etag: "v1".into(),
        };
        let history = vec![StatusChange {
            status: OrderStatus::Pending,
            at,
            actor_id: format!("dev-client-{id}"),
            reason: Some("why".into()),
        }];
        put(
            store,
            &Doc::new(
                kind::ORDER,
                &order_id,
                TENANT,
                scope.clone(),
                ts(at),
                CosmosOrder { order, history },
            )
            .with_version("v1"),
        )
        .await;
        let key = StoredIdempotency {
            key: format!("k-{order_id}"),
            request_hash: "h".into(),
            order_id: order_id.clone(),
            created_at: at,
        };
        put(
            store,
            &Doc::new(
                kind::IDEMPOTENCY,
                &key.key.clone(),
                TENANT,
                scope.clone(),
                ts(at),
                key,
            ),
        )
        .await;
        let audit = AuditEntry::now(
            TENANT,
            &format!("dev-client-{id}"),
            "order.create",
            "order",
            &order_id,
            "c",
        )
        .about_customer(id);
        put(store, &audit_doc(&audit, &scope)).await;
    }
    for n in 0..notifications {
        let notification = notification(&format!("n-{id}-{n}"), id, at);
        put(store, &store.notification_doc(&notification)).await;
    }
    for (event, customer_id) in [("e-1", Some(id)), ("e-2", None)] {
        let body = json!({"consumer": "NotificationDispatch", "eventId": event, "customerId": customer_id, "outcome": "x", "outputs": [], "processedAt": at});
        put(
            store,
            &Doc::new(
                kind::PROCESSED_EVENT,
                &format!("NotificationDispatch:{event}"),
                TENANT,
                scope.clone(),
                ts(at),
                body,
            ),
        )
        .await;
    }
}

/// c-1 (5 orders, 7 notifications, an audit entry about them outside their partition) and
/// c-2 (3 orders, 4 notifications).
async fn seeded() -> CosmosStore {
    let store = in_memory(options(), Vec::new()).await.unwrap().store;
    seed(&store, "c-1", 5, 7).await;
    seed(&store, "c-2", 3, 4).await;
    let export = AuditEntry::now(
        TENANT,
        "dev-employee",
        "customer.export",
        "customer",
        "c-1",
        "c",
    );
    put(&store, &audit_doc(&export, TENANT_SCOPE)).await;
    store
}

/// Runs every step not done yet to the end in batches of `size`; the final progress.
async fn run_all(
    store: &CosmosStore,
    request_id: &str,
    customer: &str,
    size: usize,
) -> ErasureProgress {
    let masker = masker(customer);
    let mut progress = None;
    for step in ErasureStep::ALL {
        loop {
            let now = store
                .erase_batch(&tenant(), request_id, step, &masker, size)
                .await
                .unwrap();
            let done = now.is_done(step);
            progress = Some(now);
            if done {
                break;
            }
        }
    }
    progress.unwrap()
}

fn expected_counts(queued: u64) -> Value {
    json!({"auditEntries": 6, "consents": 0, "customers": 1, "idempotencyKeys": 5, "notifications": 7, "orderStatusHistory": 5, "orders": 5, "payments": 0, "processedEvents": 1, "queuedMessages": queued, "shipments": 0})
}

async fn docs(store: &CosmosStore, scope: &str, kind: &str) -> Vec<Doc<Value>> {
    store
        .query_docs(
            store.data(),
            scope_feed(TENANT, scope),
            "SELECT * FROM c WHERE c.type = @kind",
            vec![param("@kind", kind)],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_resumed_erasure_counts_each_record_once_and_spares_other_customers() {
    let store = seeded().await;
    assert!(matches!(
        store
            .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
            .await
            .unwrap(),
        ErasureStart::Run { .. }
    ));
    let first = store
        .erase_batch(&tenant(), "r-1", ErasureStep::Orders, &masker("c-1"), 2)
        .await
        .unwrap();
    assert_eq!(first.steps[&ErasureStep::Orders].counts["orders"], 2);
    assert!(!first.is_done(ErasureStep::Orders));

    // The delivery "crashed"; a redelivery starts again and resumes from the committed progress.
    let ErasureStart::Run { progress, .. } = store
        .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
        .await
        .unwrap()
    else {
        panic!("expected a run")
    };
    assert_eq!(
        (
            progress.attempts,
            progress.steps[&ErasureStep::Orders].counts["orders"]
        ),
        (2, 2)
    );
    let progress = run_all(&store, "r-1", "c-1", 2).await;
    assert_eq!(
        serde_json::to_value(progress.counts()).unwrap(),
        expected_counts(0)
    );
    assert_eq!(
        progress.steps[&ErasureStep::Orders].batches,
        3,
        "2 before the crash, then 2 and 1"
    );
    assert_eq!(
        progress.steps[&ErasureStep::Notifications].batches,
        4,
        "2, 2, 2 and 1"
    );
    assert_eq!(
        progress.steps[&ErasureStep::AuditEntries].batches,
        4,
        "2, 2, 1 here and the one elsewhere, then its masking"
    );

    // A finished step changes nothing.
    let again = store
        .erase_batch(
            &tenant(),
            "r-1",
            ErasureStep::Notifications,
            &masker("c-1"),
            2,
        )
        .await
        .unwrap();
    assert_eq!(again.counts(), progress.counts());

    let scope = customer_scope("c-1");
    let orders = docs(&store, &scope, kind::ORDER).await;
    assert!(orders.iter().all(|order| order.body["shippingAddress"]
        == json!({"line1": "[erased]", "city": "[erased]", "postalCode": "12", "country": "DE"})));
    assert!(orders
        .iter()
        .all(|order| order.body["totalCents"] == 100 && order.version != "v1"));
    assert!(orders
        .iter()
        .all(|order| order.body["history"][0]["actorId"]
            .as_str()
            .unwrap()
            .starts_with("psn-")
            && order.body["history"][0]["reason"].is_null()));
    for kind in [kind::NOTIFICATION, kind::IDEMPOTENCY] {
        assert!(docs(&store, &scope, kind).await.is_empty(), "{kind}");
    }
    assert_eq!(
        docs(&store, &scope, kind::PROCESSED_EVENT).await.len(),
        1,
        "the marker naming no customer stays"
    );
    assert!(docs(&store, &scope, kind::AUDIT)
        .await
        .iter()
        .all(|entry| entry.body["customerId"]
            .as_str()
            .unwrap()
            .starts_with("psn-")));
    let export = docs(&store, TENANT_SCOPE, kind::AUDIT).await;
    assert!(
        export[0].body["targetId"]
            .as_str()
            .unwrap()
            .starts_with("psn-")
            && export[0].body["actorId"] == "dev-employee"
    );
    let profile = store
        .customer_doc(TENANT, "c-1")
        .await
        .unwrap()
        .unwrap()
        .body;
    assert_eq!(
        (
            profile.name.as_str(),
            profile.email.as_str(),
            profile.phone.as_deref(),
            profile.status
        ),
        (
            "Erased customer",
            "erased@erased.invalid",
            None,
            CustomerStatus::Erased
        )
    );

    // c-2 keeps everything.
    let other = customer_scope("c-2");
    assert_eq!(docs(&store, &other, kind::NOTIFICATION).await.len(), 4);
    assert!(docs(&store, &other, kind::ORDER)
        .await
        .iter()
        .all(|order| order.body["shippingAddress"]["line1"] == "1 Road"));
    assert!(docs(&store, &other, kind::AUDIT)
        .await
        .iter()
        .all(|entry| entry.body["customerId"] == "c-2"));
    assert_eq!(
        store
            .customer_doc(TENANT, "c-2")
            .await
            .unwrap()
            .unwrap()
            .body
            .status,
        CustomerStatus::Active
    );
}

#[tokio::test]
async fn large_orders_are_masked_in_batches_under_the_2_mb_limit() {
    let store = in_memory(options(), Vec::new()).await.unwrap().store;
    put(&store, &customer_doc(&customer("c-9"))).await;
    let (at, scope) = (Utc::now(), customer_scope("c-9"));
    // 70 orders of 100 lines with long product names: about 26 KB each, 1.8 MB in all.
    for n in 0..70 {
        let order_id = format!("o-big-{n:02}");
        let item = OrderItem {
            product_id: "p-1".into(),
            product_name: "x".repeat(200),
            quantity: 1,
            unit_price_cents: 100,
        };
        let address = Address {
            line1: "1 Road".into(),
            line2: None,
            city: "Town".into(),
            postal_code: "12345".into(),
            country: "DE".into(),
        };
        let order = Order {
            id: order_id.clone(),
            tenant_id: TENANT.into(),
            customer_id: "c-9".into(),
            status: OrderStatus::Pending,
            items: vec![item; 100],
            total_cents: 10_000,
            currency: "EUR".into(),
            shipping_address: Some(address),
            created_at: at,
            updated_at: at,
            etag: "v1".into(),
        };
        put(
            &store,
            &Doc::new(
                kind::ORDER,
                &order_id,
                TENANT,
                scope.clone(),
                ts(at),
                CosmosOrder {
                    order,
                    history: Vec::new(),
                },
            )
            .with_version("v1"),
        )
        .await;
    }
    store
        .start_erasure(&tenant(), erasure_request("r-9", "c-9"))
        .await
        .unwrap();
    let mut progress = store
        .erase_batch(&tenant(), "r-9", ErasureStep::Orders, &masker("c-9"), 5000)
        .await
        .unwrap();
    let first = progress.steps[&ErasureStep::Orders].counts["orders"];
    assert!(
        (40..70).contains(&first),
        "one batch stops short of 2 MB: {first} orders"
    );
    assert!(!progress.is_done(ErasureStep::Orders));
    while !progress.is_done(ErasureStep::Orders) {
        progress = store
            .erase_batch(&tenant(), "r-9", ErasureStep::Orders, &masker("c-9"), 5000)
            .await
            .unwrap();
    }
    assert_eq!(
        progress.steps[&ErasureStep::Orders].counts["orders"],
        70,
        "every order once"
    );
    assert!(docs(&store, &scope, kind::ORDER)
        .await
        .iter()
        .all(|order| order.body["shippingAddress"]["line1"] == "[erased]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliveries_erasing_at_once_count_each_record_once() {
    let store = seeded().await;
    store
        .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
        .await
        .unwrap();
    store
        .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
        .await
        .unwrap();
    let delivery = |size| {
        let store = store.clone();
        tokio::spawn(async move { run_all(&store, "r-1", "c-1", size).await })
    };
    let (a, b) = tokio::join!(delivery(1), delivery(2));
    let (a, b) = (a.unwrap(), b.unwrap());
    let last = if a.steps.values().map(|s| s.batches).sum::<u64>()
        >= b.steps.values().map(|s| s.batches).sum::<u64>()
    {
        a
    } else {
        b
    };
    assert_eq!(
        serde_json::to_value(last.counts()).unwrap(),
        expected_counts(0)
    );
    assert_eq!(last.attempts, 2);
}

/// The scrub itself is the local runtime's (`functions/src/local/storage.rs`, tested there).
#[tokio::test]
async fn the_queued_messages_count_is_committed_once() {
    let store = seeded().await;
    store
        .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
        .await
        .unwrap();
    store
        .record_queued_messages(&tenant(), "r-1", &masker("c-1"), 2, 1.0)
        .await
        .unwrap();
    let progress = run_all(&store, "r-1", "c-1", 50).await;
    assert_eq!(
        serde_json::to_value(progress.counts()).unwrap(),
        expected_counts(2)
    );
    let again = store
        .erase_batch(
            &tenant(),
            "r-1",
            ErasureStep::QueuedMessages,
            &masker("c-1"),
            50,
        )
        .await
        .unwrap();
    assert_eq!(again.counts()["queuedMessages"], 2);
    let recorded_again = store
        .record_queued_messages(&tenant(), "r-1", &masker("c-1"), 2, 1.0)
        .await
        .unwrap();
    assert_eq!(recorded_again.counts()["queuedMessages"], 2);
}

#[tokio::test]
async fn finishing_twice_writes_one_report_and_one_audit_entry() {
    let store = seeded().await;
    store
        .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
        .await
        .unwrap();
    run_all(&store, "r-1", "c-1", 100).await;
    let audit = || {
        AuditEntry::now(
            TENANT,
            "system:test",
            "gdpr.erasure.completed",
            "erasureRequest",
            "r-1",
            "c",
        )
    };
    let (first, written) = store
        .finish_erasure(&tenant(), "r-1", json!({"n": 1}), audit())
        .await
        .unwrap();
    assert!(written);
    assert_eq!(first.status, ErasureStatus::Completed);
    let (second, written) = store
        .finish_erasure(&tenant(), "r-1", json!({"n": 2}), audit())
        .await
        .unwrap();
    assert!(!written);
    assert_eq!(second.report, Some(json!({"n": 1})));
    let completed = docs(&store, &customer_scope("c-1"), kind::AUDIT)
        .await
        .into_iter()
        .filter(|entry| entry.body["action"] == "gdpr.erasure.completed")
        .count();
    assert_eq!(completed, 1);
    assert!(matches!(
        store
            .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
            .await
            .unwrap(),
        ErasureStart::AlreadyCompleted(_)
    ));
    assert!(
        matches!(store.start_erasure(&tenant(), erasure_request("r-other", "c-1")).await.unwrap(), ErasureStart::CustomerAlreadyErased { erased_by: Some(id) } if id == "r-1")
    );
}

#[tokio::test]
async fn a_request_naming_another_customer_or_a_missing_one_is_refused() {
    let store = seeded().await;
    store
        .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .start_erasure(&tenant(), erasure_request("r-1", "c-2"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .erase_batch(&tenant(), "r-1", ErasureStep::Orders, &masker("c-2"), 1)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .start_erasure(&tenant(), erasure_request("r-9", "nobody"))
            .await,
        Err(StoreError::NotFound)
    ));
    let other = TenantId::new("t2").unwrap();
    assert!(
        matches!(
            store
                .start_erasure(&other, erasure_request("r-8", "c-1"))
                .await,
            Err(StoreError::NotFound)
        ),
        "tenant scoped"
    );
}
