//! `NotificationDispatch` over the real protocol: host-shaped Service Bus envelopes (the
//! host's encodings, from `OutgoingMessage::to_host_request`) posted to the handler on
//! loopback, and the whole flow in local mode (topic → subscription → function → outbound
//! queue).
//!
//! Proves: an order event becomes an in-app notification for the customer and email/SMS
//! messages (ids only) on `outboundNotifications`; preferences are honoured (SMS only with a
//! phone number); cancellations also notify `order-manager`; a duplicate event makes one
//! notification and re-sends the same delivery ids; events for missing, erased or
//! erasure-requested customers, or for another customer's order, change nothing; a malformed
//! event is bad input.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{client, settings, spawn_handler, spawn_local};
use function_app::local::LocalRuntime;
use function_app::startup::{AppState, Mode};
use serde_json::{json, Value};
use shared::domain::audit::AuditEntry;
use shared::domain::customer::{Customer, CustomerStatus, NotificationPreferences};
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::notification::{Notification, Recipient};
use shared::domain::order::{OrderInput, OrderLineInput};
use shared::domain::product::Product;
use shared::domain::tenant::TenantId;
use shared::protocol::OutgoingMessage;
use shared::store::{NewOrder, OrderCreated, PageRequest};

const TENANT: &str = "t1";
const EMAIL: &str = "grace.hopper.unique@example.org";

struct Fixture {
    state: AppState,
    address: SocketAddr,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(settings(dir.path(), &[]), Mode::Local).unwrap();
    let address = spawn_handler(state.clone()).await;
    Fixture {
        state,
        address,
        _dir: dir,
    }
}

fn tenant() -> TenantId {
    TenantId::new(TENANT).unwrap()
}

fn audit(action: &str, target: &str) -> AuditEntry {
    AuditEntry::now(TENANT, "test", action, "test", target, "corr-1")
}

/// A customer with these preferences (and a phone number if `phone`), and one order of theirs.
async fn customer_with_order(
    state: &AppState,
    id: &str,
    preferences: NotificationPreferences,
    phone: bool,
) -> String {
    let at = Utc::now();
    let customer = Customer {
        id: id.into(),
        tenant_id: TENANT.into(),
        name: "Grace Hopper".into(),
        email: EMAIL.into(),
        phone: phone.then(|| "+15550100200".to_owned()),
        address: None,
        preferences,
        status: CustomerStatus::Active,
        created_at: at,
        updated_at: at,
        last_activity_at: at,
        etag: String::new(),
    };
    state
        .store
        .create_customer(&tenant(), customer, audit("customer.create", id))
        .await
        .unwrap();
    let product_id = format!("p-{id}");
    let product = Product {
        id: product_id.clone(),
        tenant_id: TENANT.into(),
        name: "Widget".into(),
        category: "tools".into(),
        description: None,
        price_cents: 100,
        currency: "EUR".into(),
        stock: 10,
        active: true,
        sku: None,
        erp_on_hand: None,
        reserved: 0,
        created_at: at,
        updated_at: at,
        etag: String::new(),
    };
    state
        .store
        .create_product(&tenant(), product, audit("product.create", &product_id))
        .await
        .unwrap();
    let order = NewOrder {
        id: format!("o-{id}"),
        customer_id: id.into(),
        input: OrderInput {
            customer_id: None,
            items: vec![OrderLineInput {
                product_id,
                quantity: 1,
            }],
            shipping_address: None,
        },
        actor_id: "test".into(),
        idempotency: None,
    };
    match state
        .store
        .create_order(&tenant(), order, audit("order.create", id))
        .await
        .unwrap()
    {
        OrderCreated::New(order) => order.id,
        OrderCreated::Replayed(order) => order.id,
    }
}

fn all_channels() -> NotificationPreferences {
    NotificationPreferences {
        in_app: true,
        email: true,
        sms: true,
    }
}

fn event(event_id: &str, event_type: &str, customer: &str, order: &str) -> Value {
    json!({"eventId": event_id, "eventType": event_type, "tenantId": TENANT, "orderId": order, "customerId": customer, "occurredAt": "2026-11-21T02:00:00Z"})
}

/// Posts `body` as the host would deliver it from the subscription; status and reply.
async fn deliver(address: SocketAddr, body: &Value) -> (u16, Value) {
    let message = OutgoingMessage::first_delivery(body.to_string());
    let envelope = message.to_host_request("message", "NotificationDispatch");
    let response = client()
        .post(format!("http://{address}/NotificationDispatch"))
        .json(&envelope)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn notifications(state: &AppState, recipient: Recipient) -> Vec<Notification> {
    state
        .store
        .list_notifications(&tenant(), &[recipient], PageRequest::first(100))
        .await
        .unwrap()
        .items
}

/// The email/SMS messages the dispatch of `event_id` wrote to the outbox (bodies), in order;
/// checks each message's id is its delivery id.
async fn outbound(state: &AppState, event_id: &str) -> Vec<Value> {
    let prefix = format!("{event_id}:");
    state
        .store
        .pending_outbox(&tenant())
        .await
        .unwrap()
        .iter()
        .map(|record| record.message().unwrap())
        .filter(|message| {
            message.destination == "notifications-outbound"
                && message.message_id.starts_with(&prefix)
        })
        .map(|message| {
            let body: Value = serde_json::from_str(&message.body).unwrap();
            assert_eq!(body["deliveryId"], json!(message.message_id));
            body
        })
        .collect()
}

#[tokio::test]
async fn an_order_event_becomes_a_notification_and_outbound_messages_with_ids_only() {
    let fx = fixture().await;
    let order = customer_with_order(&fx.state, "c-1", all_channels(), true).await;
    let (status, reply) = deliver(fx.address, &event("e-1", "shipped", "c-1", &order)).await;
    assert_eq!(status, 200, "{reply}");
    let inbox = notifications(&fx.state, Recipient::Customer("c-1".into())).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        (inbox[0].category.as_str(), inbox[0].order_id.as_deref()),
        ("order.shipped", Some(order.as_str()))
    );
    let messages = outbound(&fx.state, "e-1").await;
    let channels: Vec<&str> = messages
        .iter()
        .map(|m| m["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["email", "sms"]);
    assert_eq!(messages[0]["deliveryId"], "e-1:email");
    assert_eq!(messages[0]["notificationId"], json!(inbox[0].id));
    assert_eq!(messages[0]["template"], "order.shipped");
    let text = format!("{reply} {messages:?}");
    assert!(
        !text.contains(EMAIL) && !text.contains("Grace") && !text.contains("5550100200"),
        "ids only: {text}"
    );
}

#[tokio::test]
async fn a_duplicate_event_makes_one_notification_and_its_deliveries_once() {
    let fx = fixture().await;
    let order = customer_with_order(&fx.state, "c-1", all_channels(), false).await;
    let body = event("e-dup", "confirmed", "c-1", &order);
    deliver(fx.address, &body).await;
    let first = outbound(&fx.state, "e-dup").await;
    let (status, second) = deliver(fx.address, &body).await;
    assert_eq!(status, 200);
    assert_eq!(second["ReturnValue"]["result"], "duplicate");
    assert_eq!(
        notifications(&fx.state, Recipient::Customer("c-1".into()))
            .await
            .len(),
        1
    );
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        outbound(&fx.state, "e-dup").await,
        first,
        "the redelivery writes no second message"
    );
}

#[tokio::test]
async fn preferences_decide_the_channels() {
    let fx = fixture().await;
    let quiet = customer_with_order(
        &fx.state,
        "c-quiet",
        NotificationPreferences {
            in_app: false,
            email: false,
            sms: true,
        },
        false,
    )
    .await;
    let (_, reply) = deliver(fx.address, &event("e-q", "delivered", "c-quiet", &quiet)).await;
    assert!(
        notifications(&fx.state, Recipient::Customer("c-quiet".into()))
            .await
            .is_empty()
    );
    assert!(
        outbound(&fx.state, "e-q").await.is_empty(),
        "SMS needs a phone number: {reply}"
    );

    let sms = customer_with_order(
        &fx.state,
        "c-sms",
        NotificationPreferences {
            in_app: false,
            email: false,
            sms: true,
        },
        true,
    )
    .await;
    deliver(fx.address, &event("e-s", "delivered", "c-sms", &sms)).await;
    let messages = outbound(&fx.state, "e-s").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (
            messages[0]["channel"].as_str(),
            &messages[0]["notificationId"]
        ),
        (Some("sms"), &Value::Null)
    );
}

#[tokio::test]
async fn cancellations_also_notify_order_managers_creations_do_not() {
    let fx = fixture().await;
    let order = customer_with_order(&fx.state, "c-1", all_channels(), false).await;
    deliver(fx.address, &event("e-created", "created", "c-1", &order)).await;
    assert!(
        notifications(&fx.state, Recipient::Role("order-manager".into()))
            .await
            .is_empty()
    );
    deliver(
        fx.address,
        &event("e-cancelled", "cancelled", "c-1", &order),
    )
    .await;
    let staff = notifications(&fx.state, Recipient::Role("order-manager".into())).await;
    assert_eq!(staff.len(), 1);
    assert_eq!(staff[0].category, "order.cancelled");
    assert_eq!(
        notifications(&fx.state, Recipient::Customer("c-1".into()))
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn events_for_missing_or_erased_customers_or_foreign_orders_change_nothing() {
    let fx = fixture().await;
    let order = customer_with_order(&fx.state, "c-1", all_channels(), true).await;
    let other = customer_with_order(&fx.state, "c-2", all_channels(), true).await;
    for (id, customer, order_id) in [
        ("e-missing", "nobody", order.as_str()),
        ("e-foreign", "c-1", other.as_str()),
    ] {
        let (status, reply) = deliver(fx.address, &event(id, "shipped", customer, order_id)).await;
        assert_eq!(status, 200, "completed, not retried: {reply}");
        assert!(
            reply["ReturnValue"]["result"]
                .as_str()
                .unwrap()
                .starts_with("skipped"),
            "{reply}"
        );
        assert!(outbound(&fx.state, id).await.is_empty());
    }
    let erasure = ErasureRecord {
        id: "r-1".into(),
        tenant_id: TENANT.into(),
        customer_id: "c-1".into(),
        requested_by: "test".into(),
        status: ErasureStatus::Accepted,
        requested_at: Utc::now(),
        updated_at: Utc::now(),
        queued_at: None,
        report: None,
    };
    fx.state
        .store
        .request_erasure(&tenant(), erasure, audit("gdpr.erasure.request", "c-1"))
        .await
        .unwrap();
    let (status, reply) = deliver(fx.address, &event("e-erased", "shipped", "c-1", &order)).await;
    assert_eq!(status, 200);
    assert_eq!(
        reply["ReturnValue"]["result"],
        "skipped: customer erased or erasure requested"
    );
    assert!(notifications(&fx.state, Recipient::Customer("c-1".into()))
        .await
        .is_empty());
}

#[tokio::test]
async fn a_malformed_event_is_bad_input() {
    let fx = fixture().await;
    let (status, reply) = deliver(
        fx.address,
        &json!({"eventId": "e-1", "eventType": "exploded"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        reply["Error"].as_str().unwrap().contains("OrderEvent"),
        "{reply}"
    );
    let (status, reply) = deliver(fx.address, &event("e 1", "shipped", "c-1", "o-1")).await;
    assert_eq!(status, 400);
    assert!(
        reply["Error"].as_str().unwrap().contains("eventId"),
        "{reply}"
    );
}

#[tokio::test]
async fn locally_an_event_on_the_topic_reaches_the_inbox_and_the_outbound_queue() {
    let dir = tempfile::tempdir().unwrap();
    let runtime =
        LocalRuntime::new(AppState::open(settings(dir.path(), &[]), Mode::Local).unwrap());
    let order = customer_with_order(&runtime.state, "c-1", all_channels(), false).await;
    let address = spawn_local(runtime.clone()).await;
    let body = event("e-local", "shipped", "c-1", &order);
    for _ in 0..2 {
        let sent = client()
            .post(format!(
                "http://{address}/admin/queues/order-events/messages"
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 201);
    }
    let queue = runtime.host.queue();
    let started = Instant::now();
    while !queue
        .peek("order-events/subscriptions/notifications")
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the event was not consumed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shipped = |notes: Vec<shared::domain::notification::Notification>| {
        notes
            .into_iter()
            .filter(|note| note.category == "order.shipped")
            .count()
    };
    assert_eq!(
        shipped(notifications(&runtime.state, Recipient::Customer("c-1".into())).await),
        1,
        "one notification for a twice-sent event"
    );
    // Its email message is relayed from the outbox once, with its delivery id as MessageId.
    let started = Instant::now();
    let ours = loop {
        let outbound = queue.peek("notifications-outbound").await.unwrap();
        let ours: Vec<_> = outbound
            .into_iter()
            .filter(|m| m.message_id.starts_with("e-local:"))
            .collect();
        if !ours.is_empty() || started.elapsed() > Duration::from_secs(20) {
            break ours;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ids: Vec<Value> = ours
        .iter()
        .map(|m| serde_json::from_str::<Value>(&m.body).unwrap()["deliveryId"].clone())
        .collect();
    assert_eq!(ids, [json!("e-local:email")]);
    assert_eq!(ours[0].message_id, "e-local:email");
}
