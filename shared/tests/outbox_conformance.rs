//! The outbox's conformance suite, on both adapters (SQLite, and Cosmos DB on the SDK's
//! in-memory emulator): a record is written with the change it announces or not at all, each
//! partition's records come in commit order, they carry their TTL, acknowledged records are
//! gone, the lag is the oldest unacknowledged record, and stalled erasure requests are
//! re-announced once per threshold.

#[path = "fixtures/records.rs"]
mod records;
use records::customer;

use std::sync::Arc;

use chrono::Duration;
use serde_json::{json, Value};
use shared::domain::audit::AuditEntry;
use shared::domain::customer::Customer;
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::messages::{CustomerEvent, ErasureRequest, OrderEvent, OrderEventType};
use shared::domain::order::{OrderInput, OrderLineInput, OrderStatus, StatusInput};
use shared::domain::product::Product;
use shared::domain::tenant::TenantId;
use shared::outbox::{
    FeedDocument, OutboxMessage, OutboxStore, DEFAULT_TTL, GDPR_REQUESTS_QUEUE,
    NOTIFICATIONS_OUTBOUND_QUEUE, ORDER_EVENTS_TOPIC, REALTIME_PUSH_DESTINATION,
};
use shared::store::cosmos::CosmosOptions;
use shared::store::sqlite::Db;
use shared::store::{
    DispatchOutcome, Fanout, IdempotencyKey, IfMatch, NewOrder, OrderCreated, OrderStore, Store,
};

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("app.db")).unwrap();
    (Arc::new(db), dir)
}

async fn cosmos() -> (Arc<dyn Store>, tempfile::TempDir) {
    let cosmos = shared::store::cosmos::in_memory(CosmosOptions::for_emulator(), vec![])
        .await
        .unwrap();
    (Arc::new(cosmos.store), tempfile::tempdir().unwrap())
}

fn tenant() -> TenantId {
    TenantId::new("t1").unwrap()
}

fn audit(action: &str, target: &str) -> AuditEntry {
    AuditEntry::now("t1", "actor-1", action, "test", target, "corr-1")
}

fn product(id: &str, stock: i64) -> Product {
    let now = shared::domain::now();
    Product {
        id: id.into(),
        tenant_id: String::new(),
        name: format!("Product {id}"),
        category: "kitchen".into(),
        description: None,
        price_cents: 250,
        currency: "EUR".into(),
        stock,
        active: true,
        sku: None,
        erp_on_hand: None,
        reserved: 0,
        created_at: now,
        updated_at: now,
        etag: String::new(),
    }
}

fn new_order(id: &str, quantity: i64, key: Option<&str>) -> NewOrder {
    NewOrder {
        id: id.into(),
        customer_id: "c-1".into(),
        input: OrderInput {
            customer_id: Some("c-1".into()),
            items: vec![OrderLineInput {
                product_id: "p-1".into(),
                quantity,
            }],
            shipping_address: None,
        },
        actor_id: "actor-1".into(),
        idempotency: key.map(|key| IdempotencyKey {
            key: key.into(),
            request_hash: "h".into(),
        }),
    }
}

/// Customer c-1 and product p-1 (stock 5).
async fn seed(store: &dyn Store) {
    let t = tenant();
    store
        .create_customer(&t, customer("c-1"), audit("customer.create", "c-1"))
        .await
        .unwrap();
    store
        .create_product(&t, product("p-1", 5), audit("product.create", "p-1"))
        .await
        .unwrap();
}

fn messages(documents: &[FeedDocument]) -> Vec<OutboxMessage> {
    documents
        .iter()
        .map(|document| {
            assert!(document.is_outbox(), "{document:?}");
            document.message().unwrap()
        })
        .collect()
}

fn order_events(documents: &[FeedDocument]) -> Vec<(String, OrderEventType)> {
    messages(documents)
        .iter()
        .filter(|message| message.destination == ORDER_EVENTS_TOPIC)
        .map(|message| {
            let event: OrderEvent = serde_json::from_str(&message.body).unwrap();
            assert_eq!(event.event_id, message.message_id);
            (event.order_id, event.event_type)
        })
        .collect()
}

async fn an_order_and_its_created_event_are_written_together(store: Arc<dyn Store>) {
    let t = tenant();
    seed(store.as_ref()).await;
    let created = store
        .create_order(
            &t,
            new_order("o-1", 2, Some("k-1")),
            audit("order.create", "o-1"),
        )
        .await
        .unwrap();
    assert!(matches!(created, OrderCreated::New(_)));
    // Refused (not enough stock): no order, no event.
    assert!(store
        .create_order(&t, new_order("o-2", 99, None), audit("order.create", "o-2"))
        .await
        .is_err());
    // A replay of the same key: the first order, no second event.
    let replayed = store
        .create_order(
            &t,
            new_order("o-3", 2, Some("k-1")),
            audit("order.create", "o-3"),
        )
        .await
        .unwrap();
    assert!(matches!(replayed, OrderCreated::Replayed(_)));
    let pending = store.pending_outbox(&t).await.unwrap();
    assert_eq!(
        order_events(&pending),
        [("o-1".to_owned(), OrderEventType::Created)]
    );
    let record = &pending[0];
    assert_eq!(record.tenant_id, "t1");
    assert_eq!(record.scope, "customer:c-1", "the order's partition");
    assert_eq!(record.ttl, Some(DEFAULT_TTL.as_secs() as i64));
    let message = record.message().unwrap();
    assert_eq!(message.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(message.properties["eventType"], "created");
    assert_eq!(message.content_type, "application/json");
}

async fn status_changes_are_announced_in_commit_order(store: Arc<dyn Store>) {
    let t = tenant();
    seed(store.as_ref()).await;
    store
        .create_order(&t, new_order("o-1", 1, None), audit("order.create", "o-1"))
        .await
        .unwrap();
    for status in [OrderStatus::Confirmed, OrderStatus::Shipped] {
        store
            .change_order_status(
                &t,
                "o-1",
                StatusInput {
                    status,
                    reason: None,
                },
                "actor-1",
                IfMatch::Any,
                audit("order.status", "o-1"),
            )
            .await
            .unwrap();
    }
    // A stale precondition changes nothing and announces nothing.
    assert!(store
        .change_order_status(
            &t,
            "o-1",
            StatusInput {
                status: OrderStatus::Delivered,
                reason: None
            },
            "actor-1",
            IfMatch::OneOf(vec![shared::domain::etag::ETag::new("stale")]),
            audit("order.status", "o-1"),
        )
        .await
        .is_err());
    let pending = store.pending_outbox(&t).await.unwrap();
    let o1 = |event_type| ("o-1".to_owned(), event_type);
    assert_eq!(
        order_events(&pending),
        [
            o1(OrderEventType::Created),
            o1(OrderEventType::Confirmed),
            o1(OrderEventType::Shipped)
        ]
    );
}

fn erasure(id: &str) -> ErasureRecord {
    let now = shared::domain::now();
    ErasureRecord {
        id: id.into(),
        tenant_id: "t1".into(),
        customer_id: "c-1".into(),
        requested_by: "actor-1".into(),
        status: ErasureStatus::Accepted,
        requested_at: now,
        updated_at: now,
        queued_at: None,
        report: None,
    }
}

async fn an_erasure_request_is_announced_with_its_record_once(store: Arc<dyn Store>) {
    let t = tenant();
    seed(store.as_ref()).await;
    let (first, created) = store
        .request_erasure(&t, erasure("r-1"), audit("gdpr.erasure.request", "c-1"))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(first.queued_at, Some(first.updated_at));
    let (again, created) = store
        .request_erasure(&t, erasure("r-2"), audit("gdpr.erasure.request", "c-1"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, "r-1");
    let read = store.get_erasure(&t, "c-1", "r-1").await.unwrap();
    assert_eq!(
        read.queued_at, first.queued_at,
        "the status shows when it was queued"
    );
    let sent = messages(&store.pending_outbox(&t).await.unwrap());
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].destination, GDPR_REQUESTS_QUEUE);
    assert_eq!(sent[0].message_id, "r-1");
    let request: ErasureRequest = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(
        (request.request_id.as_str(), request.customer_id.as_str()),
        ("r-1", "c-1")
    );
}

fn plan(
    customer: &Customer,
    _: &shared::domain::preferences::Preferences,
    event: &CustomerEvent,
) -> Fanout {
    let delivery = format!("{}:email", event.event_id());
    Fanout {
        notifications: Vec::new(),
        outbound: vec![OutboxMessage::outbound_notification(
            &delivery,
            &json!({"deliveryId": delivery, "customerId": customer.id}),
            event.tenant_id(),
            "email",
            event.occurred_at(),
        )],
        audit: Vec::new(),
    }
}

async fn a_dispatchs_outbound_messages_are_written_with_its_marker_once(store: Arc<dyn Store>) {
    let t = tenant();
    seed(store.as_ref()).await;
    store
        .create_order(&t, new_order("o-1", 1, None), audit("order.create", "o-1"))
        .await
        .unwrap();
    let event = CustomerEvent::Order(OrderEvent {
        event_id: "e-1".into(),
        event_type: OrderEventType::Created,
        tenant_id: "t1".into(),
        order_id: "o-1".into(),
        customer_id: "c-1".into(),
        occurred_at: shared::domain::now(),
    });
    for expected in [
        DispatchOutcome::Dispatched {
            notifications: 0,
            outbound: 1,
        },
        DispatchOutcome::Duplicate,
    ] {
        let outcome = store
            .dispatch_event(&t, "NotificationDispatch", &event, plan)
            .await
            .unwrap();
        assert_eq!(outcome, expected);
    }
    let outbound: Vec<OutboxMessage> = messages(&store.pending_outbox(&t).await.unwrap())
        .into_iter()
        .filter(|message| message.destination == NOTIFICATIONS_OUTBOUND_QUEUE)
        .collect();
    assert_eq!(outbound.len(), 1);
    assert_eq!(outbound[0].message_id, "e-1:email");
    let body: Value = serde_json::from_str(&outbound[0].body).unwrap();
    assert_eq!(body["customerId"], "c-1");
}

async fn acknowledged_records_are_gone_and_the_lag_is_the_oldest_left(store: Arc<dyn Store>) {
    let t = tenant();
    assert_eq!(store.oldest_unrelayed().await.unwrap(), None);
    seed(store.as_ref()).await;
    for id in ["o-1", "o-2"] {
        store
            .create_order(&t, new_order(id, 1, None), audit("order.create", id))
            .await
            .unwrap();
    }
    let pending = store.pending_outbox(&t).await.unwrap();
    let created: Vec<_> = messages(&pending).iter().map(|m| m.created_at).collect();
    assert_eq!(store.oldest_unrelayed().await.unwrap(), Some(created[0]));
    store
        .acknowledge_relayed(&[pending[0].key()])
        .await
        .unwrap();
    assert_eq!(store.oldest_unrelayed().await.unwrap(), Some(created[1]));
    // Acknowledging again (a relay retry) is fine.
    store
        .acknowledge_relayed(&[pending[0].key(), pending[1].key()])
        .await
        .unwrap();
    assert_eq!(store.oldest_unrelayed().await.unwrap(), None);
    assert!(store.pending_outbox(&t).await.unwrap().is_empty());
}

async fn stalled_erasure_requests_are_announced_again_once_per_threshold(store: Arc<dyn Store>) {
    let t = tenant();
    seed(store.as_ref()).await;
    let (record, _) = store
        .request_erasure(&t, erasure("r-1"), audit("gdpr.erasure.request", "c-1"))
        .await
        .unwrap();
    let queued = record.queued_at.unwrap();
    let pending = store.pending_outbox(&t).await.unwrap();
    store
        .acknowledge_relayed(&[pending[0].key()])
        .await
        .unwrap();
    // Queued after the cutoff: not stalled.
    let now = queued + Duration::minutes(10);
    let none = store
        .requeue_stalled_erasures(queued - Duration::seconds(1), now, 10)
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    // Queued before the cutoff: announced again, with its new queued time.
    let requeued = store
        .requeue_stalled_erasures(queued + Duration::seconds(1), now, 10)
        .await
        .unwrap();
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].queued_at, Some(now));
    assert_eq!(
        store.get_erasure(&t, "c-1", "r-1").await.unwrap().queued_at,
        Some(now)
    );
    let sent = messages(&store.pending_outbox(&t).await.unwrap());
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].message_id, "r-1",
        "the same message to the broker and the consumer"
    );
    // The same cutoff again: it was just requeued, so nothing.
    assert!(store
        .requeue_stalled_erasures(queued + Duration::seconds(1), now, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn the_feed_reads_every_unacknowledged_record_in_order_across_tenants(store: Arc<dyn Store>) {
    let t = tenant();
    seed(store.as_ref()).await;
    for id in ["o-1", "o-2", "o-3"] {
        store
            .create_order(&t, new_order(id, 1, None), audit("order.create", id))
            .await
            .unwrap();
    }
    let orders = |batch: &[(String, FeedDocument)]| -> Vec<String> {
        let documents: Vec<FeedDocument> = batch.iter().map(|(_, d)| d.clone()).collect();
        order_events(&documents)
            .into_iter()
            .map(|(order, _)| order)
            .collect()
    };
    let first = store.outbox_feed(None, 2).await.unwrap();
    assert_eq!(orders(&first), ["o-1", "o-2"]);
    let rest = store
        .outbox_feed(Some(first[1].0.clone()), 2)
        .await
        .unwrap();
    assert_eq!(orders(&rest), ["o-3"]);
    assert!(store
        .outbox_feed(Some(rest[0].0.clone()), 2)
        .await
        .unwrap()
        .is_empty());
    store
        .acknowledge_relayed(&[first[0].1.key()])
        .await
        .unwrap();
    assert_eq!(
        orders(&store.outbox_feed(None, 10).await.unwrap()),
        ["o-2", "o-3"],
        "from the start: what is left"
    );
}

/// A position is never given twice: a record written after the outbox was emptied comes after
/// the position of the last record the feed had read (the local change feed's checkpoint).
async fn a_record_written_after_the_outbox_emptied_is_fed_after_the_old_position(
    store: Arc<dyn Store>,
) {
    let t = tenant();
    seed(store.as_ref()).await;
    for id in ["o-1", "o-2"] {
        store
            .create_order(&t, new_order(id, 1, None), audit("order.create", id))
            .await
            .unwrap();
    }
    let read = store.outbox_feed(None, 10).await.unwrap();
    assert_eq!(read.len(), 2);
    let keys: Vec<_> = read.iter().map(|(_, document)| document.key()).collect();
    store.acknowledge_relayed(&keys).await.unwrap();
    assert!(store.outbox_feed(None, 10).await.unwrap().is_empty());
    store
        .create_order(&t, new_order("o-3", 1, None), audit("order.create", "o-3"))
        .await
        .unwrap();
    let after = store
        .outbox_feed(Some(read[1].0.clone()), 10)
        .await
        .unwrap();
    let documents: Vec<FeedDocument> = after.iter().map(|(_, d)| d.clone()).collect();
    let orders: Vec<String> = order_events(&documents)
        .into_iter()
        .map(|(order, _)| order)
        .collect();
    assert_eq!(orders, ["o-3"]);
    assert!(
        read.iter()
            .all(|(_, document)| document.id != documents[0].id),
        "a new record id"
    );
}

async fn a_notification_and_its_push_are_written_together(store: Arc<dyn Store>) {
    use shared::domain::notification::{Notification, Recipient};
    let t = tenant();
    seed(store.as_ref()).await;
    let notification = Notification {
        id: "n-1".into(),
        tenant_id: "t1".into(),
        recipient: Recipient::Customer("c-1".into()),
        category: "message".into(),
        title: "Your parcel".into(),
        message: "It left our warehouse today.".into(),
        order_id: None,
        read_at: None,
        created_at: shared::domain::now(),
    };
    let push = OutboxMessage::realtime_push(
        "n-1:realtime",
        &json!({"target": "notification", "arguments": [{"id": "n-1"}], "userId": "t1:customer:c-1"}),
        "t1",
        notification.created_at,
    );
    store
        .create_notification_with_messages(
            &t,
            notification,
            audit("notification.send", "n-1"),
            vec![push],
        )
        .await
        .unwrap();
    let pushes: Vec<OutboxMessage> = messages(&store.pending_outbox(&t).await.unwrap())
        .into_iter()
        .filter(|message| message.destination == REALTIME_PUSH_DESTINATION)
        .collect();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].message_id, "n-1:realtime");
    let item: Value = serde_json::from_str(&pushes[0].body).unwrap();
    assert_eq!(item["userId"], "t1:customer:c-1");

    // A notification that cannot be stored (the id is taken) writes no push either.
    let again = Notification {
        id: "n-1".into(),
        tenant_id: "t1".into(),
        recipient: Recipient::Customer("c-1".into()),
        category: "message".into(),
        title: "Again".into(),
        message: "Again".into(),
        order_id: None,
        read_at: None,
        created_at: shared::domain::now(),
    };
    let second = OutboxMessage::realtime_push("n-1:again", &json!({}), "t1", again.created_at);
    assert!(store
        .create_notification_with_messages(
            &t,
            again,
            audit("notification.send", "n-1"),
            vec![second]
        )
        .await
        .is_err());
    let after = messages(&store.pending_outbox(&t).await.unwrap());
    assert!(after
        .iter()
        .all(|message| message.message_id != "n-1:again"));
}

macro_rules! adapter {
    ($adapter:ident: $($behaviour:ident),* $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    let (store, _keep) = super::$adapter().await;
                    super::$behaviour(store).await;
                }
            )*
        }
    };
}

macro_rules! every_behaviour {
    ($adapter:ident) => {
        adapter!($adapter:
            an_order_and_its_created_event_are_written_together,
            status_changes_are_announced_in_commit_order,
            an_erasure_request_is_announced_with_its_record_once,
            a_dispatchs_outbound_messages_are_written_with_its_marker_once,
            acknowledged_records_are_gone_and_the_lag_is_the_oldest_left,
            stalled_erasure_requests_are_announced_again_once_per_threshold,
            the_feed_reads_every_unacknowledged_record_in_order_across_tenants,
            a_record_written_after_the_outbox_emptied_is_fed_after_the_old_position,
            a_notification_and_its_push_are_written_together,
        );
    };
}

every_behaviour!(sqlite);
every_behaviour!(cosmos);

/// SQLite removes records whose TTL ran out itself (Cosmos DB's TTL does it there; its
/// in-memory emulator does not expire items, so only the `ttl` field is checked above).
#[tokio::test]
async fn sqlite_purges_expired_records_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("app.db")).unwrap();
    db.set_outbox_ttl(std::time::Duration::from_secs(60));
    seed(&db).await;
    let t = tenant();
    db.create_order(&t, new_order("o-1", 1, None), audit("order.create", "o-1"))
        .await
        .unwrap();
    let created = messages(&db.pending_outbox(&t).await.unwrap())[0].created_at;
    let before = created + Duration::seconds(59);
    assert!(db
        .purge_expired_outbox(before, false)
        .await
        .unwrap()
        .is_empty());
    let after = created + Duration::seconds(60);
    assert_eq!(
        db.purge_expired_outbox(after, true).await.unwrap(),
        [("t1".to_owned(), 1)],
        "a dry run counts"
    );
    assert_eq!(
        db.pending_outbox(&t).await.unwrap().len(),
        1,
        "and removes nothing"
    );
    assert_eq!(
        db.purge_expired_outbox(after, false).await.unwrap(),
        [("t1".to_owned(), 1)]
    );
    assert!(db.pending_outbox(&t).await.unwrap().is_empty());
    // The purge removed commit 1: the next record is commit 2, after the feed's position.
    db.create_order(&t, new_order("o-2", 1, None), audit("order.create", "o-2"))
        .await
        .unwrap();
    let fed = db.outbox_feed(1, 10).await.unwrap();
    assert_eq!(fed.iter().map(|entry| entry.seq).collect::<Vec<_>>(), [2]);
}
