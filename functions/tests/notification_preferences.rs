//! Notification preferences honoured where notifications are made: `NotificationDispatch` and
//! `PaymentNotificationDispatch` over the real protocol (host-shaped Service Bus envelopes posted
//! to the handler on loopback), and `POST /api/v1/notifications` through the local runtime with
//! the relay stopped, so every outbox record the app wrote can be read back.
//!
//! Proves, per channel: an event type with `email`, `sms` or `realtime` switched off gets no
//! email message, no SMS message, no live push record respectively, while the in-app
//! notification is still stored; the same channels are written when on (and when never set);
//! staff pushes of a cancellation are not governed by the customer's preferences; service and
//! marketing messages follow the `message` and `marketing` preferences (marketing still behind
//! the consent).

mod common;

use std::net::SocketAddr;

use chrono::Utc;
use common::{client, settings, spawn_handler, ApiApp};
use function_app::startup::{AppState, Mode};
use serde_json::{json, Value};
use shared::domain::audit::AuditEntry;
use shared::domain::customer::{Customer, CustomerStatus, NotificationPreferences};
use shared::domain::notification::{Notification, Recipient};
use shared::domain::order::{OrderInput, OrderLineInput};
use shared::domain::preferences::PreferencesInput;
use shared::domain::product::Product;
use shared::domain::tenant::TenantId;
use shared::outbox::REALTIME_PUSH_DESTINATION;
use shared::protocol::OutgoingMessage;
use shared::store::{IfMatch, NewOrder, OrderCreated, PageRequest, Store};

const TENANT: &str = "t1";

fn tenant() -> TenantId {
    TenantId::new(TENANT).unwrap()
}

fn audit(action: &str, target: &str) -> AuditEntry {
    AuditEntry::now(TENANT, "test", action, "test", target, "corr-1")
}

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

/// A customer with every profile channel on and a phone number, with `preferences` (JSON as
/// `PUT /preferences` takes it), and one order of theirs.
async fn customer_with_order(state: &AppState, id: &str, preferences: Value) -> String {
    let store = state.store.as_ref();
    let at = Utc::now();
    let customer = Customer {
        id: id.into(),
        tenant_id: TENANT.into(),
        name: "Grace Hopper".into(),
        email: "grace@example.org".into(),
        phone: Some("+15550100200".into()),
        address: None,
        preferences: NotificationPreferences {
            in_app: true,
            email: true,
            sms: true,
        },
        status: CustomerStatus::Active,
        created_at: at,
        updated_at: at,
        last_activity_at: at,
        etag: String::new(),
    };
    store
        .create_customer(&tenant(), customer, audit("customer.create", id))
        .await
        .unwrap();
    set_preferences(store, id, preferences).await;
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
    store
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
    match store
        .create_order(&tenant(), order, audit("order.create", id))
        .await
        .unwrap()
    {
        OrderCreated::New(order) | OrderCreated::Replayed(order) => order.id,
    }
}

async fn set_preferences(store: &dyn Store, customer: &str, event_types: Value) {
    let input: PreferencesInput =
        serde_json::from_value(json!({ "eventTypes": event_types })).unwrap();
    let preferences = input.resolve(customer).unwrap();
    store
        .put_preferences(
            &tenant(),
            preferences,
            IfMatch::Any,
            audit("preferences.update", customer),
        )
        .await
        .unwrap();
}

/// Posts `body` to `function` as the host would deliver it from its subscription.
async fn deliver(address: SocketAddr, function: &str, body: &Value) {
    let message = OutgoingMessage::first_delivery(body.to_string());
    let envelope = message.to_host_request("message", function);
    let response = client()
        .post(format!("http://{address}/{function}"))
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

fn order_event(event_id: &str, event_type: &str, customer: &str, order: &str) -> Value {
    json!({"eventId": event_id, "eventType": event_type, "tenantId": TENANT, "orderId": order, "customerId": customer, "occurredAt": "2026-11-21T02:00:00Z"})
}

fn payment_event(event_id: &str, event_type: &str, customer: &str, order: &str) -> Value {
    json!({"eventId": event_id, "eventType": event_type, "tenantId": TENANT, "paymentId": format!("pay-{event_id}"), "orderId": order, "customerId": customer, "amountCents": 2500, "currency": "EUR", "occurredAt": "2026-11-21T02:00:00Z"})
}

/// What one notification produced: its email/SMS channels (in order) and whether it was pushed.
#[derive(Debug, PartialEq, Eq)]
struct Sent {
    channels: Vec<String>,
    pushed: bool,
}

/// The outbox records of the email/SMS messages of `event_id` and of the push of
/// `notification`.
async fn sent(state: &AppState, event_id: &str, notification: &Notification) -> Sent {
    let records = state.store.pending_outbox(&tenant()).await.unwrap();
    let messages: Vec<_> = records.iter().map(|r| r.message().unwrap()).collect();
    let prefix = format!("{event_id}:");
    Sent {
        channels: messages
            .iter()
            .filter(|m| {
                m.destination == "notifications-outbound" && m.message_id.starts_with(&prefix)
            })
            .map(|m| m.message_id[prefix.len()..].to_owned())
            .collect(),
        pushed: messages.iter().any(|m| {
            m.destination == REALTIME_PUSH_DESTINATION
                && m.message_id == format!("{}:realtime", notification.id)
        }),
    }
}

fn expect(channels: &[&str], pushed: bool) -> Sent {
    Sent {
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        pushed,
    }
}

/// The one notification of `category` to `recipient`.
async fn notification(state: &AppState, recipient: Recipient, category: &str) -> Notification {
    let all = state
        .store
        .list_notifications(&tenant(), &[recipient], PageRequest::first(100))
        .await
        .unwrap()
        .items;
    let mut found: Vec<_> = all.into_iter().filter(|n| n.category == category).collect();
    assert_eq!(
        found.len(),
        1,
        "one {category} notification, stored whatever the switches"
    );
    found.remove(0)
}

#[tokio::test]
async fn each_channel_switched_off_for_an_order_event_sends_nothing_on_it() {
    let fx = fixture().await;
    let order = customer_with_order(
        &fx.state,
        "c-1",
        json!({
            "order.shipped": {"realtime": false, "email": false, "sms": false},
            "order.confirmed": {"email": false},
            "order.delivered": {"sms": false},
            "order.created": {"realtime": false}
        }),
    )
    .await;
    let cases = [
        ("e-created", "created", expect(&["email", "sms"], false)),
        ("e-confirmed", "confirmed", expect(&["sms"], true)),
        ("e-shipped", "shipped", expect(&[], false)),
        ("e-delivered", "delivered", expect(&["email"], true)),
    ];
    for (event_id, event_type, expected) in cases {
        deliver(
            fx.address,
            "NotificationDispatch",
            &order_event(event_id, event_type, "c-1", &order),
        )
        .await;
        let stored = notification(
            &fx.state,
            Recipient::Customer("c-1".into()),
            &format!("order.{event_type}"),
        )
        .await;
        assert_eq!(
            sent(&fx.state, event_id, &stored).await,
            expected,
            "{event_type}"
        );
    }
}

#[tokio::test]
async fn every_channel_is_used_when_on_or_never_set() {
    let fx = fixture().await;
    let order = customer_with_order(&fx.state, "c-1", json!({})).await;
    deliver(
        fx.address,
        "NotificationDispatch",
        &order_event("e-1", "shipped", "c-1", &order),
    )
    .await;
    let stored = notification(
        &fx.state,
        Recipient::Customer("c-1".into()),
        "order.shipped",
    )
    .await;
    assert_eq!(
        sent(&fx.state, "e-1", &stored).await,
        expect(&["email", "sms"], true)
    );
}

#[tokio::test]
async fn a_customer_s_realtime_switch_does_not_govern_staff_pushes() {
    let fx = fixture().await;
    let order = customer_with_order(
        &fx.state,
        "c-1",
        json!({"order.cancelled": {"realtime": false}}),
    )
    .await;
    deliver(
        fx.address,
        "NotificationDispatch",
        &order_event("e-1", "cancelled", "c-1", &order),
    )
    .await;
    let to_customer = notification(
        &fx.state,
        Recipient::Customer("c-1".into()),
        "order.cancelled",
    )
    .await;
    assert!(!sent(&fx.state, "e-1", &to_customer).await.pushed);
    let to_staff = notification(
        &fx.state,
        Recipient::Role("order-manager".into()),
        "order.cancelled",
    )
    .await;
    assert!(
        sent(&fx.state, "e-1", &to_staff).await.pushed,
        "the role's push stays"
    );
}

#[tokio::test]
async fn payment_notifications_follow_their_own_event_types() {
    let fx = fixture().await;
    let order = customer_with_order(
        &fx.state,
        "c-1",
        json!({"payment.captured": {"realtime": false, "email": false}}),
    )
    .await;
    let function = "PaymentNotificationDispatch";
    deliver(
        fx.address,
        function,
        &payment_event("e-captured", "captured", "c-1", &order),
    )
    .await;
    deliver(
        fx.address,
        function,
        &payment_event("e-failed", "failed", "c-1", &order),
    )
    .await;
    let customer = Recipient::Customer("c-1".into());
    let captured = notification(&fx.state, customer.clone(), "payment.captured").await;
    assert_eq!(
        sent(&fx.state, "e-captured", &captured).await,
        expect(&["sms"], false)
    );
    let failed = notification(&fx.state, customer, "payment.failed").await;
    assert_eq!(
        sent(&fx.state, "e-failed", &failed).await,
        expect(&["email", "sms"], true)
    );
}

/// The push and outbound records `POST /notifications` wrote for the notification `id`:
/// (outbound channels, pushed).
async fn sent_by_api(app: &ApiApp, id: &str) -> (Vec<String>, bool) {
    let records = app
        .runtime
        .state
        .store
        .pending_outbox(&tenant())
        .await
        .unwrap();
    let messages: Vec<_> = records.iter().map(|r| r.message().unwrap()).collect();
    let channels = messages
        .iter()
        .filter(|m| m.destination == "notifications-outbound")
        .map(|m| serde_json::from_str::<Value>(&m.body).unwrap())
        .filter(|body| body["notificationId"] == id)
        .map(|body| body["channel"].as_str().unwrap_or_default().to_owned())
        .collect();
    let pushed = messages.iter().any(|m| {
        m.destination == REALTIME_PUSH_DESTINATION && m.message_id == format!("{id}:realtime")
    });
    (channels, pushed)
}

#[tokio::test]
async fn service_and_marketing_messages_follow_the_message_and_marketing_preferences() {
    let app = ApiApp::start(&[("LOCAL_RELAY", "false")]).await;
    let ada = app
        .create_customer("t1", "Ada Lovelace", "ada@example.org")
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app.admin("t1");
    let client = app.client_of("t1", &ada);
    let consent = json!({"granted": true, "noticeVersion": "2025-03", "channel": "web"});
    app.put(
        &format!("/customers/{ada}/consents/marketing-email"),
        &client,
        &consent,
    )
    .await
    .expect_status(200);
    let send = |purpose: Option<&str>| {
        let mut body = json!({"customerId": ada, "title": "Hello", "message": "News."});
        if let Some(purpose) = purpose {
            body["purpose"] = json!(purpose);
        }
        body
    };
    let post = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            let reply = app.post("/notifications", admin, &body).await;
            reply.expect_status(201).body["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    let defaults_message = post(send(None)).await;
    assert_eq!(sent_by_api(&app, &defaults_message).await, (vec![], true));
    let defaults_marketing = post(send(Some("marketing-email"))).await;
    assert_eq!(
        sent_by_api(&app, &defaults_marketing).await,
        (vec!["email".to_owned()], true)
    );

    let quiet =
        json!({"eventTypes": {"message": {"realtime": false}, "marketing": {"email": false}}});
    app.put(&format!("/customers/{ada}/preferences"), &client, &quiet)
        .await
        .expect_status(200);
    let quiet_message = post(send(None)).await;
    assert_eq!(sent_by_api(&app, &quiet_message).await, (vec![], false));
    let quiet_marketing = post(send(Some("marketing-email"))).await;
    assert_eq!(sent_by_api(&app, &quiet_marketing).await, (vec![], true));

    let inbox = app.get("/notifications", &client).await;
    let listed: Vec<&str> = inbox.expect_status(200).body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    for id in [&quiet_message, &quiet_marketing] {
        assert!(
            listed.contains(&id.as_str()),
            "stored and listed whatever the switches"
        );
    }

    let withdraw = json!({"granted": false, "noticeVersion": "2025-03", "channel": "web"});
    app.put(
        &format!("/customers/{ada}/consents/marketing-email"),
        &client,
        &withdraw,
    )
    .await
    .expect_status(200);
    app.post("/notifications", &admin, &send(Some("marketing-email")))
        .await
        .expect_problem(409);
}
