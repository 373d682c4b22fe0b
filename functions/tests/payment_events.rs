//! The consumers of payment and order events over the real protocol: the app on SQLite in a
//! temporary directory, its PayPal adapter pointed at the PayPal sandbox on loopback, payments
//! made through `POST /api/v1/payments`, and the events the app wrote to its outbox delivered
//! as the host delivers them (host-shaped envelopes, posted to the handler on loopback) to
//! `PaymentOrderFlow`, `PaymentNotificationDispatch`, `CancelledOrderRefund` and
//! `NotificationDispatch`.
//!
//! Proves: a captured payment confirms its order (the `confirmed` order event goes out and the
//! customer is told) and the customer hears of the payment; a redelivery changes nothing; a
//! captured payment never revives a cancelled order; a cancelled paid order (cancelled by status
//! change or by `DELETE /orders/{id}`) is refunded once, even on redelivery, and a partly refunded one gets the rest back; an unreachable gateway
//! fails the invocation and the retry refunds with the same request id; an authorized payment
//! of a cancelled order is voided, and one still being paid fails the invocation until it ends;
//! a declined refund is recorded failed and audited; unknown and erased customers are skipped;
//! and in local mode the whole flow runs through the topics (payment → confirmed order and
//! notices; cancellation → refund, counted once though PayPal's webhook may come first).

mod common;

use std::time::Duration;

use function_app::startup::{AppState, Mode};
use serde_json::{json, Value};
use shared::auth::{DevIssuer, DevSubject, Role};
use shared::domain::notification::{Notification, Recipient};
use shared::domain::tenant::TenantId;
use shared::protocol::OutgoingMessage;
use shared::store::PageRequest;
use tokio::net::TcpListener;

use common::pay_app::{PayApp, TENANT};
use common::Reply;
const EMAIL: &str = "ada.payer.unique@example.com";

/// The payments test app ([`PayApp`], its sandbox sending no webhooks: the tests deliver
/// the events themselves), with an admin token on every request and the host's deliveries.
struct EventsApp {
    app: PayApp,
}

impl std::ops::Deref for EventsApp {
    type Target = PayApp;

    fn deref(&self) -> &PayApp {
        &self.app
    }
}

impl EventsApp {
    async fn start() -> Self {
        Self {
            app: PayApp::start_without_webhooks().await,
        }
    }

    fn tenant() -> TenantId {
        TenantId::new(TENANT).unwrap()
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.app.request(method, path, &self.admin())
    }

    async fn post_keyed(&self, path: &str, key: &str, body: &Value) -> Reply {
        Reply::read(
            self.request(reqwest::Method::POST, path)
                .header("idempotency-key", key)
                .json(body),
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        Reply::read(self.request(reqwest::Method::GET, path))
            .await
            .expect_status(200)
            .body
            .clone()
    }

    /// A customer (with an email found nowhere else) and a pending order of 2 × 12.50 EUR.
    async fn order(&self) -> (String, String) {
        self.app.order_for(EMAIL).await
    }

    /// Pays `order` through the API; the payment.
    async fn pay(&self, order: &str, key: &str, vault_id: &str) -> Value {
        let body = json!({"orderId": order, "paymentSource": {"vaultId": vault_id}});
        let paid = self.post_keyed("/payments", key, &body).await;
        paid.expect_status(201);
        paid.body.clone()
    }

    async fn cancel(&self, order: &str) {
        Reply::read(
            self.request(reqwest::Method::PUT, &format!("/orders/{order}/status"))
                .json(&json!({"status": "cancelled"})),
        )
        .await
        .expect_status(200);
    }

    async fn payment(&self, id: &str) -> Value {
        self.get(&format!("/payments/{id}")).await
    }

    /// The bodies of the outbox's messages to `destination` (not relayed: no relay runs here).
    async fn outbox(&self, destination: &str) -> Vec<Value> {
        self.state
            .ports
            .outbox
            .pending_outbox(&Self::tenant())
            .await
            .unwrap()
            .iter()
            .map(|record| record.message().unwrap())
            .filter(|message| message.destination == destination)
            .map(|message| serde_json::from_str(&message.body).unwrap())
            .collect()
    }

    /// The one event of `event_type` about `subject` (an order or payment id) on `topic`.
    async fn event(&self, topic: &str, event_type: &str, subject: &str) -> Value {
        let found: Vec<Value> = self
            .outbox(topic)
            .await
            .into_iter()
            .filter(|event| {
                event["eventType"] == event_type
                    && (event["orderId"] == subject || event["paymentId"] == subject)
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{event_type} events about {subject}: {found:?}"
        );
        found[0].clone()
    }

    /// Posts `body` to `function` as the host delivers a Service Bus message; status and reply.
    async fn deliver(&self, function: &str, body: &Value) -> (u16, Value) {
        let message = OutgoingMessage::first_delivery(body.to_string());
        let envelope = message.to_host_request("message", function);
        let response = self
            .http
            .post(format!("{}/{function}", self.base))
            .json(&envelope)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// [`EventsApp::deliver`], expecting success; the reply's `ReturnValue`.
    async fn delivered(&self, function: &str, body: &Value) -> Value {
        let (status, reply) = self.deliver(function, body).await;
        assert_eq!(status, 200, "{function}: {reply}");
        reply["ReturnValue"].clone()
    }

    async fn notifications(&self, customer: &str) -> Vec<Notification> {
        self.state
            .store
            .list_notifications(
                &Self::tenant(),
                &[Recipient::Customer(customer.to_owned())],
                PageRequest::first(100),
            )
            .await
            .unwrap()
            .items
    }
}

fn categories(notifications: &[Notification]) -> Vec<&str> {
    let mut found: Vec<&str> = notifications.iter().map(|n| n.category.as_str()).collect();
    found.sort();
    found
}

#[tokio::test]
async fn a_captured_payment_confirms_its_order_and_the_customer_is_told() {
    let app = EventsApp::start().await;
    let (customer, order) = app.order().await;
    let payment = app.pay(&order, "pay-1", "sandbox-ok").await;
    let id = payment["id"].as_str().unwrap();
    let captured = app.event("payment-events", "captured", id).await;
    assert_eq!(captured["amountCents"], 2500);

    let flow = app.delivered("PaymentOrderFlow", &captured).await;
    assert_eq!(flow["result"], "confirmed", "{flow}");
    assert_eq!(
        app.get(&format!("/orders/{order}")).await["status"],
        "confirmed"
    );
    let confirmed = app.event("order-events", "confirmed", &order).await;
    assert_eq!(confirmed["customerId"], json!(customer));

    let told = app.delivered("NotificationDispatch", &confirmed).await;
    assert_eq!(told["result"], "dispatched", "{told}");
    let paid = app
        .delivered("PaymentNotificationDispatch", &captured)
        .await;
    assert_eq!(paid["result"], "dispatched", "{paid}");
    let inbox = app.notifications(&customer).await;
    assert_eq!(categories(&inbox), ["order.confirmed", "payment.captured"]);
    let received = inbox
        .iter()
        .find(|n| n.category == "payment.captured")
        .unwrap();
    assert_eq!(received.title, "Payment received");
    assert!(
        received.message.contains("25.00 EUR"),
        "{}",
        received.message
    );

    let outbound = app.outbox("notifications-outbound").await;
    let email = outbound
        .iter()
        .find(|message| message["template"] == "payment.captured")
        .expect("an email about the payment");
    assert_eq!(email["channel"], "email");
    assert_eq!(email["paymentId"], json!(id));
    assert_eq!(email["notificationId"], json!(received.id));
    assert_eq!(
        (email["amountCents"].clone(), email["currency"].clone()),
        (json!(2500), json!("EUR"))
    );
    let text = format!("{flow} {paid} {outbound:?}");
    assert!(
        !text.contains(EMAIL) && !text.contains("Ada"),
        "ids only: {text}"
    );
}

#[tokio::test]
async fn a_redelivered_payment_event_has_no_second_effect() {
    let app = EventsApp::start().await;
    let (customer, order) = app.order().await;
    let payment = app.pay(&order, "pay-1", "sandbox-ok").await;
    let captured = app
        .event(
            "payment-events",
            "captured",
            payment["id"].as_str().unwrap(),
        )
        .await;
    app.delivered("PaymentOrderFlow", &captured).await;
    app.delivered("PaymentNotificationDispatch", &captured)
        .await;
    let emails = app.outbox("notifications-outbound").await.len();

    let again = app.delivered("PaymentOrderFlow", &captured).await;
    assert_eq!(again["result"], "unchanged: order already confirmed");
    let history = app.get(&format!("/orders/{order}/history")).await;
    let confirmations = history["history"]
        .as_array()
        .expect("a list of status changes")
        .iter()
        .filter(|change| change["status"] == "confirmed")
        .count();
    assert_eq!(confirmations, 1, "{history}");
    assert_eq!(
        app.outbox("order-events")
            .await
            .iter()
            .filter(|e| e["eventType"] == "confirmed")
            .count(),
        1
    );

    let duplicate = app
        .delivered("PaymentNotificationDispatch", &captured)
        .await;
    assert_eq!(duplicate["result"], "duplicate");
    assert_eq!(app.notifications(&customer).await.len(), 1);
    assert_eq!(app.outbox("notifications-outbound").await.len(), emails);
}

#[tokio::test]
async fn a_captured_payment_never_revives_a_cancelled_order() {
    let app = EventsApp::start().await;
    let (_, order) = app.order().await;
    let payment = app.pay(&order, "pay-1", "sandbox-ok").await;
    let captured = app
        .event(
            "payment-events",
            "captured",
            payment["id"].as_str().unwrap(),
        )
        .await;
    app.cancel(&order).await;
    let flow = app.delivered("PaymentOrderFlow", &captured).await;
    assert_eq!(flow["result"], "unchanged: order cancelled");
    assert_eq!(
        app.get(&format!("/orders/{order}")).await["status"],
        "cancelled"
    );
    let mut other = captured.clone();
    other["eventType"] = json!("refunded");
    other["eventId"] = json!("evt-refunded-1");
    assert_eq!(
        app.delivered("PaymentOrderFlow", &other).await["result"],
        "ignored"
    );
}

#[tokio::test]
async fn a_cancelled_paid_order_is_refunded_once_even_when_redelivered() {
    let app = EventsApp::start().await;
    let (customer, order) = app.order().await;
    let payment = app.pay(&order, "pay-1", "sandbox-ok").await;
    let id = payment["id"].as_str().unwrap();
    app.cancel(&order).await;
    let cancelled = app.event("order-events", "cancelled", &order).await;

    let first = app.delivered("CancelledOrderRefund", &cancelled).await;
    assert_eq!(
        first["payments"],
        json!([{"paymentId": id, "result": "refunded"}]),
        "{first}"
    );
    let refunded = app.payment(id).await;
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(refunded["refundedCents"], 2500, "{refunded:#}");
    assert_eq!(refunded["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(app.sandbox_state().await["refunds"], 1);

    let again = app.delivered("CancelledOrderRefund", &cancelled).await;
    assert_eq!(
        again["payments"][0]["result"], "nothing to do: refunded",
        "{again}"
    );
    assert_eq!(
        app.sandbox_state().await["refunds"],
        1,
        "never refunded twice"
    );
    assert_eq!(
        app.payment(id).await["refunds"].as_array().unwrap().len(),
        1
    );

    let refund_event = app.event("payment-events", "refunded", id).await;
    let told = app
        .delivered("PaymentNotificationDispatch", &refund_event)
        .await;
    assert_eq!(told["result"], "dispatched");
    let inbox = app.notifications(&customer).await;
    let notice = inbox
        .iter()
        .find(|n| n.category == "payment.refunded")
        .expect("told of the refund");
    assert_eq!(notice.title, "Refund issued");
    assert!(
        notice.message.contains("A refund of 25.00 EUR"),
        "{}",
        notice.message
    );
}

#[tokio::test]
async fn a_paid_order_cancelled_with_delete_is_refunded_through_its_cancelled_event() {
    let app = EventsApp::start().await;
    let (_customer, order) = app.order().await;
    let payment = app.pay(&order, "pay-1", "sandbox-ok").await;
    let id = payment["id"].as_str().unwrap();
    let deleted =
        Reply::read(app.request(reqwest::Method::DELETE, &format!("/orders/{order}"))).await;
    assert_eq!(deleted.expect_status(200).body["status"], "cancelled");
    let cancelled = app.event("order-events", "cancelled", &order).await;

    let settled = app.delivered("CancelledOrderRefund", &cancelled).await;
    assert_eq!(
        settled["payments"],
        json!([{"paymentId": id, "result": "refunded"}]),
        "{settled}"
    );
    assert_eq!(app.payment(id).await["status"], "refunded");
    assert_eq!(app.sandbox_state().await["refunds"], 1);
}

#[tokio::test]
async fn a_partly_refunded_payment_of_a_cancelled_order_gets_the_rest_back() {
    let app = EventsApp::start().await;
    let (_, order) = app.order().await;
    let payment = app.pay(&order, "pay-1", "sandbox-ok").await;
    let id = payment["id"].as_str().unwrap();
    app.post_keyed(
        &format!("/payments/{id}/refund"),
        "refund-1",
        &json!({"amountCents": 500}),
    )
    .await
    .expect_status(201);
    assert_eq!(app.payment(id).await["status"], "partiallyRefunded");
    app.cancel(&order).await;
    let cancelled = app.event("order-events", "cancelled", &order).await;

    let settled = app.delivered("CancelledOrderRefund", &cancelled).await;
    assert_eq!(settled["payments"][0]["result"], "refunded", "{settled}");
    let payment = app.payment(id).await;
    assert_eq!(payment["status"], "refunded");
    assert_eq!(payment["refundedCents"], 2500);
    let amounts: Vec<i64> = payment["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|refund| refund["amountCents"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [500, 2000]);
}

#[tokio::test]
async fn an_unreachable_gateway_fails_the_invocation_and_the_retry_refunds_with_the_same_id() {
    let app = EventsApp::start().await;
    let (_, order) = app.order().await;
    let payment = app.pay(&order, "pay-1", "sandbox-ok").await;
    let id = payment["id"].as_str().unwrap();
    app.cancel(&order).await;
    let cancelled = app.event("order-events", "cancelled", &order).await;

    app.outage("unavailable").await;
    let (status, reply) = app.deliver("CancelledOrderRefund", &cancelled).await;
    assert_eq!(
        status, 500,
        "the invocation fails, so Service Bus delivers again: {reply}"
    );
    assert!(
        reply.to_string().contains(id),
        "the reason names the payment: {reply}"
    );
    let pending = app.payment(id).await;
    assert_eq!(pending["status"], "captured");
    let refund_status = pending["refunds"][0]["status"].clone();
    assert!(
        refund_status == "pending" || refund_status == "unknown",
        "recorded, not failed: {pending}"
    );
    let refund_id = pending["refunds"][0]["id"].clone();

    app.outage("none").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let retried = loop {
        let (status, reply) = app.deliver("CancelledOrderRefund", &cancelled).await;
        if status == 200 || std::time::Instant::now() > deadline {
            break (status, reply);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(retried.0, 200, "{}", retried.1);
    let refunded = app.payment(id).await;
    assert_eq!(refunded["status"], "refunded");
    let refunds = refunded["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        refunds[0]["id"], refund_id,
        "the same refund, sent again with its id"
    );
    assert_eq!(app.sandbox_state().await["refunds"], 1);
}

#[tokio::test]
async fn unknown_and_erased_customers_are_skipped() {
    let app = EventsApp::start().await;
    let (customer, order) = app.order().await;
    let payment = app.pay(&order, "pay-1", "sandbox-ok").await;
    let captured = app
        .event(
            "payment-events",
            "captured",
            payment["id"].as_str().unwrap(),
        )
        .await;

    let mut stranger = captured.clone();
    stranger["eventId"] = json!("evt-stranger");
    stranger["customerId"] = json!("no-such-customer");
    let skipped = app
        .delivered("PaymentNotificationDispatch", &stranger)
        .await;
    assert_eq!(skipped["result"], "skipped: customer not found");
    let flow = app.delivered("PaymentOrderFlow", &stranger).await;
    assert_eq!(
        flow["result"],
        "unchanged: order not found for this customer"
    );
    assert_eq!(
        app.get(&format!("/orders/{order}")).await["status"],
        "pending"
    );

    Reply::read(app.request(reqwest::Method::DELETE, &format!("/customers/{customer}")))
        .await
        .expect_status(202);
    let erased = app
        .delivered("PaymentNotificationDispatch", &captured)
        .await;
    assert_eq!(
        erased["result"],
        "skipped: customer erased or erasure requested"
    );
    assert!(app.notifications(&customer).await.is_empty());
    assert!(app
        .outbox("notifications-outbound")
        .await
        .iter()
        .all(|message| message["customerId"] != json!(customer)));
}

/// A pending payment of `order` as `POST /payments` records it, held by its request until
/// `held_until`.
fn stored_payment(
    id: &str,
    order: &str,
    customer: &str,
    held_until: Option<chrono::DateTime<chrono::Utc>>,
) -> shared::domain::payment::Payment {
    use shared::domain::payment::{GatewayRefs, Payment, PaymentStatus};
    let now = chrono::Utc::now();
    Payment {
        id: id.into(),
        tenant_id: TENANT.into(),
        order_id: order.into(),
        customer_id: customer.into(),
        provider: "paypal".into(),
        source_id: "sandbox-ok".into(),
        amount_cents: 2500,
        currency: "EUR".into(),
        status: PaymentStatus::Pending,
        captured_cents: 0,
        captured_at: None,
        erasure: None,
        refunded_cents: 0,
        gateway: GatewayRefs::default(),
        failure_code: None,
        payer: None,
        refunds: Vec::new(),
        idempotency_key: format!("key-{id}"),
        request_hash: "h".into(),
        in_flight_until: held_until,
        created_at: now,
        updated_at: now,
        etag: String::new(),
    }
}

fn audit_entry(payment: &str) -> shared::domain::audit::AuditEntry {
    shared::domain::audit::AuditEntry::now(
        TENANT,
        "test",
        "payment.create",
        "payment",
        payment,
        "corr",
    )
}

#[tokio::test]
async fn a_payment_still_being_paid_fails_the_invocation_until_it_ends() {
    use shared::domain::payment::{PaymentStatus, PaymentUpdate, UpdateSource};

    let app = EventsApp::start().await;
    let (customer, order) = app.order().await;
    let tenant = EventsApp::tenant();
    let held = chrono::Utc::now() + chrono::Duration::seconds(60);
    let payment = stored_payment("pay-busy", &order, &customer, Some(held));
    app.state
        .ports
        .payments
        .begin_payment(&tenant, payment, audit_entry("pay-busy"))
        .await
        .unwrap();
    app.cancel(&order).await;
    let cancelled = app.event("order-events", "cancelled", &order).await;

    let (status, reply) = app.deliver("CancelledOrderRefund", &cancelled).await;
    assert_eq!(status, 500, "{reply}");
    assert!(reply.to_string().contains("pay-busy"), "{reply}");

    let mut failed = PaymentUpdate::status(PaymentStatus::Failed, UpdateSource::Api);
    failed.release_in_flight = true;
    app.state
        .ports
        .payments
        .update_payment(&tenant, "pay-busy", &failed, None, audit_entry("pay-busy"))
        .await
        .unwrap();
    let settled = app.delivered("CancelledOrderRefund", &cancelled).await;
    assert_eq!(
        settled["payments"][0]["result"], "nothing to do: failed",
        "{settled}"
    );
}

#[tokio::test]
async fn an_authorized_payment_of_a_cancelled_order_is_voided() {
    use shared::domain::payment::UpdateSource;
    use shared::payments::{AuthorizeRequest, PaymentReference};

    let app = EventsApp::start().await;
    let (customer, order) = app.order().await;
    let tenant = EventsApp::tenant();
    let gateway = app.state.outbound.payments.clone().unwrap();
    let payment = stored_payment("pay-held", &order, &customer, None);
    let audit = || audit_entry("pay-held");
    app.state
        .ports
        .payments
        .begin_payment(&tenant, payment, audit())
        .await
        .unwrap();
    let answer = gateway
        .authorize(&AuthorizeRequest {
            idempotency_key: "pay-held".into(),
            reference: PaymentReference {
                tenant_id: TENANT.into(),
                payment_id: "pay-held".into(),
            },
            order_id: order.clone(),
            amount_cents: 2500,
            currency: "EUR".into(),
            source_id: "sandbox-ok".into(),
        })
        .await
        .unwrap();
    let mut update = answer.into_update(UpdateSource::Api);
    update.release_in_flight = true;
    app.state
        .ports
        .payments
        .update_payment(&tenant, "pay-held", &update, None, audit())
        .await
        .unwrap();
    assert_eq!(app.payment("pay-held").await["status"], "authorized");

    app.cancel(&order).await;
    let cancelled = app.event("order-events", "cancelled", &order).await;
    let settled = app.delivered("CancelledOrderRefund", &cancelled).await;
    assert_eq!(settled["payments"][0]["result"], "voided", "{settled}");
    assert_eq!(app.payment("pay-held").await["status"], "voided");
    assert_eq!(app.sandbox_state().await["refunds"], 0);
}

#[tokio::test]
async fn a_refund_the_gateway_declines_is_recorded_failed_and_audited() {
    let app = EventsApp::start().await;
    let (_, order) = app.order().await;
    let payment = app.pay(&order, "pay-1", "sandbox-ok").await;
    let id = payment["id"].as_str().unwrap();
    let capture = payment["gateway"]["captureId"].as_str().unwrap();
    // Refunded in full on PayPal's side (its dashboard, say): PayPal refuses any further refund.
    let base = app.sandbox.base_url();
    let token: Value = app
        .http
        .post(format!("{base}/v1/oauth2/token"))
        .basic_auth(
            &app.sandbox.config().client_id,
            Some(&app.sandbox.config().client_secret),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outside = app
        .http
        .post(format!("{base}/v2/payments/captures/{capture}/refund"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .header("paypal-request-id", "dashboard-refund-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(
        outside.status().is_success(),
        "{}",
        outside.text().await.unwrap()
    );
    app.cancel(&order).await;
    let cancelled = app.event("order-events", "cancelled", &order).await;

    let settled = app.delivered("CancelledOrderRefund", &cancelled).await;
    let result = settled["payments"][0]["result"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(result.starts_with("refund declined ("), "{settled}");
    let declined = app.payment(id).await;
    assert_eq!(declined["refunds"][0]["status"], "failed", "{declined}");
    assert_eq!(declined["refundedCents"], 0);
    let audit = app
        .state
        .ports
        .audit
        .list_audit(
            &EventsApp::tenant(),
            shared::store::AuditFilter {
                actor_id: Some("system:CancelledOrderRefund".into()),
                target_id: Some(id.to_owned()),
                ..Default::default()
            },
            PageRequest::first(100),
        )
        .await
        .unwrap()
        .items;
    assert!(
        audit.len() >= 2,
        "the refund and its failure are audited: {audit:?}"
    );
    assert!(audit.iter().all(|entry| entry.action == "payment.refund"));
    assert!(audit
        .iter()
        .all(|entry| entry.correlation_id == cancelled["eventId"].as_str().unwrap()));

    let again = app.delivered("CancelledOrderRefund", &cancelled).await;
    assert_eq!(
        again["payments"][0]["result"], "refunded before: failed",
        "{again}"
    );
}

/// Polls `GET /api/v1{path}` on `base` with `token` until `done` holds (at most 20 s).
async fn poll(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = Reply::read(http.get(format!("{base}/api/v1{path}")).bearer_auth(token))
            .await
            .body;
        if done(&body) || std::time::Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn locally_a_payment_and_a_cancellation_flow_through_the_topics() {
    let dir = tempfile::tempdir().unwrap();
    common::jwks::install_dev_key(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let port = address.port().to_string();
    let settings = common::settings(dir.path(), &[("LOCAL_PORT", port.as_str())]);
    let mut state = AppState::open(settings, Mode::Local).unwrap();
    let _sandbox = function_app::local::sandbox::start_paypal_for_local(&mut state)
        .await
        .unwrap();
    let runtime = function_app::local::LocalRuntime::new(state);
    tokio::spawn(async move {
        let _ = runtime.serve(listener, std::future::pending()).await;
    });
    let base = format!("http://{address}");
    let http = common::client();
    let dev = DevIssuer::load_or_create(dir.path()).unwrap();
    let admin = dev
        .token(
            &EventsApp::tenant(),
            DevSubject::Employee {
                roles: [Role::Admin].into_iter().collect(),
            },
            Duration::from_secs(3600),
        )
        .unwrap();
    let post = |path: &str, body: Value, key: Option<&str>| {
        let mut request = http
            .post(format!("{base}/api/v1{path}"))
            .bearer_auth(&admin)
            .json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        Reply::read(request)
    };
    let customer = post(
        "/customers",
        json!({"name": "Ada Payer", "email": EMAIL}),
        None,
    )
    .await;
    let customer = customer.expect_status(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let product = post("/products", json!({"name": "Widget", "category": "tools", "priceCents": 1250, "currency": "EUR", "stock": 10}), None).await;
    let product = product.expect_status(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = post(
        "/orders",
        json!({"customerId": customer, "items": [{"productId": product, "quantity": 2}]}),
        None,
    )
    .await;
    let order = order.expect_status(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let paid = post(
        "/payments",
        json!({"orderId": order, "paymentSource": {"vaultId": "sandbox-ok"}}),
        Some("local-1"),
    )
    .await;
    let payment = paid.expect_status(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let confirmed = poll(&http, &base, &format!("/orders/{order}"), &admin, |o| {
        o["status"] == "confirmed"
    })
    .await;
    assert_eq!(
        confirmed["status"], "confirmed",
        "PaymentOrderFlow confirmed the order: {confirmed}"
    );
    let client = dev
        .token(
            &EventsApp::tenant(),
            DevSubject::Client {
                customer_id: customer.clone(),
            },
            Duration::from_secs(3600),
        )
        .unwrap();
    let inbox_path = "/notifications";
    let has = |wanted: &'static [&'static str]| {
        move |page: &Value| {
            let found: Vec<&str> = page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["category"].as_str())
                .collect();
            wanted.iter().all(|category| found.contains(category))
        }
    };
    let inbox = poll(
        &http,
        &base,
        inbox_path,
        &client,
        has(&["order.confirmed", "payment.captured"]),
    )
    .await;
    assert!(
        has(&["order.confirmed", "payment.captured"])(&inbox),
        "{inbox}"
    );

    Reply::read(
        http.put(format!("{base}/api/v1/orders/{order}/status"))
            .bearer_auth(&admin)
            .json(&json!({"status": "cancelled"})),
    )
    .await
    .expect_status(200);
    let refunded = poll(&http, &base, &format!("/payments/{payment}"), &admin, |p| {
        p["status"] == "refunded"
    })
    .await;
    assert_eq!(
        refunded["status"], "refunded",
        "CancelledOrderRefund refunded it: {refunded}"
    );
    assert_eq!(refunded["refundedCents"], 2500, "{refunded:#}");
    let inbox = poll(
        &http,
        &base,
        inbox_path,
        &client,
        has(&["payment.refunded"]),
    )
    .await;
    assert!(
        has(&["order.cancelled", "payment.refunded"])(&inbox),
        "{inbox}"
    );
}
