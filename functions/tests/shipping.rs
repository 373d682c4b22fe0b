//! Shipping over the real protocol: the app on SQLite in a temporary directory served on
//! loopback, its EasyPost adapter pointed at the sandbox carrier on loopback (tracking steps
//! of 300 ms), order events delivered to `ShippingLabel` as the host delivers them, and the
//! `ShipmentTracking` job run as its timer runs it.
//!
//! Proves: rates are quoted for the order's address, reused while the order is unchanged, read
//! as the order is (a client only their own), and audited as a disclosure to the carrier; an
//! order without an address is `409`; the carrier refusing is `502` with its code only, a
//! carrier failing or too slow is `503`, and repeated failures open the breaker (readiness says
//! so, nothing more is sent); a shipped order gets one label despite duplicate events, and its
//! tracking number shows on the order and in the customer's export; tracking answers with the
//! carrier's scans and is reused as the carrier's `max-age` says (a default without one); when
//! the carrier says delivered, tracking moves the order to `delivered` with its order event in
//! the outbox, and the customer is notified as for any status change; a GDPR erasure of the
//! customer removes the label URL and keeps the shipment's references.

mod common;

use std::time::Duration;

use function_app::local::sandbox::carrier::{CarrierSandbox, CarrierSandboxConfig, RunningCarrier};
use function_app::startup::{AppState, Mode, Outbound};
use serde_json::{json, Value};
use shared::auth::{DevIssuer, DevSubject, Role};
use shared::domain::tenant::TenantId;
use shared::jobs::{run_job, JobReport, RunOptions, Trigger, SHIPMENT_TRACKING};
use shared::protocol::OutgoingMessage;

use common::Reply;

const TENANT: &str = "contoso";

/// The app, its sandbox carrier, and tokens.
struct ShipApp {
    base: String,
    http: reqwest::Client,
    dev: DevIssuer,
    state: AppState,
    carrier: RunningCarrier,
    _dir: tempfile::TempDir,
}

impl ShipApp {
    /// The app with extra settings (`CARRIER_TIMEOUT_SECONDS`, say).
    async fn start(extra: &[(&str, &str)]) -> Self {
        Self::start_with(extra, true).await
    }

    /// The app, its carrier sandbox running but wired to the app only `with_carrier`.
    async fn start_with(extra: &[(&str, &str)], with_carrier: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        common::jwks::install_dev_key(dir.path());
        let mut config = CarrierSandboxConfig::generated(Duration::from_millis(300));
        config.port = 0;
        let carrier = CarrierSandbox::start(config).await.unwrap();
        let mut state = AppState::open(common::settings(dir.path(), extra), Mode::Local).unwrap();
        let mut shipping = carrier.shipping_settings(&state.settings.shipping);
        shipping.breaker_open_for = Duration::from_secs(60);
        if with_carrier {
            state.parts_mut().outbound = Outbound::default().with_carrier(&shipping).unwrap();
        }
        let address = common::spawn_handler(state.clone()).await;
        Self {
            base: format!("http://{address}"),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            dev: DevIssuer::load_or_create(dir.path()).unwrap(),
            state,
            carrier,
            _dir: dir,
        }
    }

    fn token(&self, subject: DevSubject) -> String {
        let tenant = TenantId::new(TENANT).unwrap();
        self.dev
            .token(&tenant, subject, Duration::from_secs(3600))
            .unwrap()
    }

    fn admin(&self) -> String {
        self.token(DevSubject::Employee {
            roles: [Role::Admin].into_iter().collect(),
        })
    }

    fn client_of(&self, customer: &str) -> String {
        self.token(DevSubject::Client {
            customer_id: customer.to_owned(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::read(request).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    /// A customer and an order of 2 units, with a shipping address unless `address` is false:
    /// (customer id, order id).
    async fn order(&self, address: bool) -> (String, String) {
        let admin = self.admin();
        let customer = self
            .call(reqwest::Method::POST, "/customers", &admin, Some(json!({"name": "Ada Shipper", "email": format!("ada{}@example.com", uuid::Uuid::new_v4().simple())})))
            .await;
        let customer = customer.expect_status(201).body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let product = self
            .call(reqwest::Method::POST, "/products", &admin, Some(json!({"name": "Kettle", "category": "kitchen", "priceCents": 2999, "currency": "EUR", "stock": 100})))
            .await;
        let product = product.expect_status(201).body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut body =
            json!({"customerId": customer, "items": [{"productId": product, "quantity": 2}]});
        if address {
            body["shippingAddress"] = json!({"line1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"});
        }
        let order = self
            .call(reqwest::Method::POST, "/orders", &admin, Some(body))
            .await;
        let order = order.expect_status(201).body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (customer, order)
    }

    /// Moves the order to `status` as an admin.
    async fn set_status(&self, order: &str, status: &str) {
        self.call(
            reqwest::Method::PUT,
            &format!("/orders/{order}/status"),
            &self.admin(),
            Some(json!({"status": status})),
        )
        .await
        .expect_status(200);
    }

    /// The order events of `order` with `event_type` in the outbox (no relay runs here).
    async fn order_events(&self, order: &str, event_type: &str) -> Vec<Value> {
        let tenant = TenantId::new(TENANT).unwrap();
        self.state
            .ports
            .outbox
            .pending_outbox(&tenant)
            .await
            .unwrap()
            .iter()
            .map(|record| record.message().unwrap())
            .filter(|message| message.destination == "order-events")
            .map(|message| serde_json::from_str::<Value>(&message.body).unwrap())
            .filter(|event| event["orderId"] == order && event["eventType"] == event_type)
            .collect()
    }

    /// A shipped order with its `shipped` event: (customer, order, event).
    async fn shipped_order(&self) -> (String, String, Value) {
        let (customer, order) = self.order(true).await;
        self.set_status(&order, "confirmed").await;
        self.set_status(&order, "shipped").await;
        let events = self.order_events(&order, "shipped").await;
        assert_eq!(events.len(), 1, "{events:?}");
        (customer, order, events[0].clone())
    }

    /// Posts `body` to `function` as the host delivers a Service Bus message.
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

    async fn sandbox(&self, path: &str, body: Value) {
        let reply = self
            .http
            .post(format!("{}{path}", self.carrier.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success(), "{path}: {}", reply.status());
    }

    async fn sandbox_state(&self) -> Value {
        self.http
            .get(format!("{}/sandbox/state", self.carrier.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn run_tracking(&self) -> JobReport {
        let context = function_app::timer_jobs::job_context(
            self.state.store.clone(),
            self.state.archive.clone(),
            self.state.settings.clone(),
            self.state.erasure.clone(),
            &self.state.outbound,
        );
        let options = RunOptions {
            trigger: Trigger::Timer,
            dry_run: false,
            is_past_due: false,
        };
        run_job(&SHIPMENT_TRACKING, &context, options).await
    }
}

fn calls(state: &Value) -> u64 {
    state["calls"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_are_quoted_cached_read_like_the_order_and_audited_as_a_disclosure() {
    let app = ShipApp::start(&[]).await;
    let (customer, order) = app.order(true).await;
    let quoted = app
        .get(&format!("/orders/{order}/shipping/rates"), &app.admin())
        .await;
    let body = &quoted.expect_status(200).body;
    let rates = body["rates"].as_array().unwrap();
    assert_eq!(rates.len(), 3, "{body}");
    let amounts: Vec<i64> = rates
        .iter()
        .map(|rate| rate["amountCents"].as_i64().unwrap())
        .collect();
    assert!(
        amounts.windows(2).all(|pair| pair[0] <= pair[1]),
        "cheapest first: {amounts:?}"
    );
    assert_eq!(body["carrier"], "easypost");
    assert_eq!(rates[0]["currency"], "USD");

    let before = calls(&app.sandbox_state().await);
    let own = app
        .get(
            &format!("/orders/{order}/shipping/rates"),
            &app.client_of(&customer),
        )
        .await;
    assert_eq!(
        own.expect_status(200).body["rates"],
        body["rates"],
        "the same quotes"
    );
    assert_eq!(
        calls(&app.sandbox_state().await),
        before,
        "reused, not asked again"
    );

    app.get(
        &format!("/orders/{order}/shipping/rates"),
        &app.client_of("someone-else"),
    )
    .await
    .expect_problem(404);

    let trail = app
        .get(&format!("/audit/gdpr/{customer}"), &app.admin())
        .await;
    let disclosures: Vec<&Value> = trail.expect_status(200).body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["action"] == "gdpr.disclosure.easypost")
        .collect();
    assert_eq!(
        disclosures.len(),
        1,
        "one quote asked, one disclosure: {disclosures:?}"
    );
    assert_eq!(disclosures[0]["targetId"], order.as_str());
    let text = disclosures[0].to_string();
    assert!(
        !text.contains("Main St") && !text.contains("Berlin"),
        "ids only: {text}"
    );

    let (_, bare) = app.order(false).await;
    let refused = app
        .get(&format!("/orders/{bare}/shipping/rates"), &app.admin())
        .await;
    assert_eq!(refused.expect_problem(409)["title"], "No Shipping Address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_refusals_failures_and_timeouts_are_problems_and_open_the_breaker() {
    let app = ShipApp::start(&[("CARRIER_TIMEOUT_SECONDS", "1")]).await;
    let admin = app.admin();
    let (_, first) = app.order(true).await;
    app.sandbox("/sandbox/fail-next", json!({"count": 1, "status": 422}))
        .await;
    let refused = app
        .get(&format!("/orders/{first}/shipping/rates"), &admin)
        .await;
    let problem = refused.expect_problem(502);
    assert_eq!(problem["carrierCode"], "SANDBOX.REFUSED");
    assert!(!problem.to_string().contains("Main St"), "{problem}");

    app.sandbox("/sandbox/delay", json!({"ms": 1500})).await;
    let (_, slow) = app.order(true).await;
    let timed_out = app
        .get(&format!("/orders/{slow}/shipping/rates"), &admin)
        .await;
    assert_eq!(
        timed_out.expect_problem(503)["title"],
        "Carrier Unavailable"
    );
    assert!(timed_out.header("retry-after").is_some());
    app.sandbox("/sandbox/delay", json!({"ms": 0})).await;

    app.sandbox("/sandbox/fail-next", json!({"count": 100, "status": 503}))
        .await;
    let (_, failing) = app.order(true).await;
    app.get(&format!("/orders/{failing}/shipping/rates"), &admin)
        .await
        .expect_problem(503);
    let ready: Value = app
        .http
        .get(format!("{}/api/health/ready", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let carrier = ready["outbound"]
        .as_array()
        .unwrap()
        .iter()
        .find(|service| service["service"] == "carrier")
        .cloned()
        .unwrap_or_else(|| panic!("no carrier in readiness: {ready}"));
    assert_eq!(carrier["breaker"], "open", "{ready}");
    let before = calls(&app.sandbox_state().await);
    app.get(&format!("/orders/{failing}/shipping/rates"), &admin)
        .await
        .expect_problem(503);
    assert_eq!(
        calls(&app.sandbox_state().await),
        before,
        "the open breaker sends nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipped_order_gets_one_label_despite_duplicate_events_and_shows_its_tracking_number() {
    let app = ShipApp::start(&[]).await;
    let (customer, order, shipped) = app.shipped_order().await;
    let shown = app.get(&format!("/orders/{order}"), &app.admin()).await;
    assert!(
        shown.expect_status(200).body.get("shipment").is_none(),
        "no shipment before the event"
    );

    let (first, second) = tokio::join!(
        app.deliver("ShippingLabel", &shipped),
        app.deliver("ShippingLabel", &shipped)
    );
    let results = [&first, &second].map(|(status, reply)| {
        assert_eq!(*status, 200, "{reply}");
        reply["ReturnValue"]["result"].as_str().unwrap().to_owned()
    });
    assert!(results.contains(&"bought".to_owned()), "{results:?}");
    let (status, again) = app.deliver("ShippingLabel", &shipped).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["ReturnValue"]["result"], "alreadyBought");
    assert_eq!(
        app.sandbox_state().await["labelsBought"],
        1,
        "one label, whatever the deliveries"
    );

    let shown = app.get(&format!("/orders/{order}"), &app.admin()).await;
    let shipment = &shown.expect_status(200).body["shipment"];
    let tracking_number = shipment["trackingNumber"].as_str().unwrap().to_owned();
    assert_eq!(shipment["carrier"], "easypost");
    assert_eq!(shipment["status"], "pre_transit");
    assert!(
        shipment["labelUrl"].as_str().is_some(),
        "employees see the label"
    );
    let own = app
        .get(&format!("/orders/{order}"), &app.client_of(&customer))
        .await;
    let own = &own.expect_status(200).body["shipment"];
    assert_eq!(own["trackingNumber"], tracking_number.as_str());
    assert!(
        own.get("labelUrl").is_none(),
        "the client does not get the label: {own}"
    );

    let trail = app
        .get(&format!("/audit/gdpr/{customer}"), &app.admin())
        .await;
    let disclosed = trail.expect_status(200).body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| {
            entry["action"] == "gdpr.disclosure.easypost"
                && entry["actorId"] == "system:ShippingLabel"
        })
        .count();
    assert_eq!(disclosed, 1, "the label's disclosure, once");

    let export = app
        .call(
            reqwest::Method::POST,
            &format!("/customers/{customer}/gdpr/export"),
            &app.admin(),
            None,
        )
        .await;
    let shipments = export.expect_status(200).body["shipments"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(shipments.len(), 1);
    assert_eq!(shipments[0]["trackingNumber"], tracking_number.as_str());

    let ignored = app.order_events(&order, "confirmed").await;
    let (status, reply) = app.deliver("ShippingLabel", &ignored[0]).await;
    assert_eq!(
        (status, reply["ReturnValue"]["result"].clone()),
        (200, json!("ignored"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_answers_the_carriers_scans_and_is_reused_as_the_carrier_says() {
    let app = ShipApp::start(&[("SHIPPING_TRACKING_CACHE_SECONDS", "45")]).await;
    let (customer, order, shipped) = app.shipped_order().await;
    let before_label = app
        .get(
            &format!("/orders/{order}/tracking"),
            &app.client_of(&customer),
        )
        .await;
    assert_eq!(before_label.expect_status(200).body["shipped"], false);
    assert_eq!(app.deliver("ShippingLabel", &shipped).await.0, 200);

    let tracked = app
        .get(
            &format!("/orders/{order}/tracking"),
            &app.client_of(&customer),
        )
        .await;
    let body = tracked.expect_status(200).body.clone();
    assert_eq!(body["shipped"], true);
    assert!(body["trackingNumber"].as_str().is_some());
    assert!(!body["events"].as_array().unwrap().is_empty(), "{body}");
    assert_eq!(
        tracked.header("cache-control"),
        Some("private, max-age=45"),
        "the default without max-age"
    );
    let before = calls(&app.sandbox_state().await);
    app.get(&format!("/orders/{order}/tracking"), &app.admin())
        .await
        .expect_status(200);
    assert_eq!(calls(&app.sandbox_state().await), before, "reused");

    let (_, other, shipped) = app.shipped_order().await;
    assert_eq!(app.deliver("ShippingLabel", &shipped).await.0, 200);
    app.sandbox("/sandbox/cache", json!({"maxAge": 1})).await;
    let first = app
        .get(&format!("/orders/{other}/tracking"), &app.admin())
        .await;
    assert_eq!(
        first.expect_status(200).header("cache-control"),
        Some("private, max-age=1")
    );
    let before = calls(&app.sandbox_state().await);
    app.get(&format!("/orders/{other}/tracking"), &app.admin())
        .await
        .expect_status(200);
    assert_eq!(
        calls(&app.sandbox_state().await),
        before,
        "fresh for a second"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.get(&format!("/orders/{other}/tracking"), &app.admin())
        .await
        .expect_status(200);
    assert_eq!(
        calls(&app.sandbox_state().await),
        before + 1,
        "asked again once stale"
    );
    app.get(
        &format!("/orders/{order}/tracking"),
        &app.client_of("someone-else"),
    )
    .await
    .expect_problem(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_carrier_saying_delivered_delivers_the_order_through_the_outbox() {
    let app = ShipApp::start(&[]).await;
    let (customer, order, shipped) = app.shipped_order().await;
    assert_eq!(app.deliver("ShippingLabel", &shipped).await.0, 200);
    let early = app.run_tracking().await;
    assert_eq!(early.outcome.as_str(), "finished", "{early:?}");
    assert_eq!(
        early.totals.get("ordersDelivered"),
        None,
        "not delivered yet: {early:?}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let report = app.run_tracking().await;
    assert_eq!(report.outcome.as_str(), "finished", "{report:?}");
    assert_eq!(report.totals.get("ordersDelivered"), Some(&1), "{report:?}");
    let shown = app.get(&format!("/orders/{order}"), &app.admin()).await;
    let body = &shown.expect_status(200).body;
    assert_eq!(body["status"], "delivered", "{body}");
    assert_eq!(body["shipment"]["status"], "delivered");
    assert!(body["shipment"]["deliveredAt"].as_str().is_some());
    let delivered = app.order_events(&order, "delivered").await;
    assert_eq!(
        delivered.len(),
        1,
        "the delivered event, once: {delivered:?}"
    );

    let again = app.run_tracking().await;
    assert_eq!(
        app.order_events(&order, "delivered").await.len(),
        1,
        "nothing twice: {again:?}"
    );

    let (status, reply) = app.deliver("NotificationDispatch", &delivered[0]).await;
    assert_eq!(status, 200, "{reply}");
    let notes = app.get("/notifications", &app.client_of(&customer)).await;
    let notes = notes.expect_status(200).body.to_string();
    assert!(
        notes.contains(&order),
        "the customer is told of the delivery: {notes}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_removes_the_label_and_keeps_the_shipments_references() {
    let app = ShipApp::start(&[]).await;
    let (customer, order, shipped) = app.shipped_order().await;
    assert_eq!(app.deliver("ShippingLabel", &shipped).await.0, 200);
    let tenant = TenantId::new(TENANT).unwrap();
    let before = app
        .state
        .ports
        .shipments
        .get_shipment(&tenant, &order)
        .await
        .unwrap()
        .unwrap();
    assert!(before.label_url.is_some());

    app.call(
        reqwest::Method::DELETE,
        &format!("/customers/{customer}"),
        &app.admin(),
        None,
    )
    .await
    .expect_status(202);
    let requests: Vec<Value> = app
        .state
        .ports
        .outbox
        .pending_outbox(&tenant)
        .await
        .unwrap()
        .iter()
        .map(|record| record.message().unwrap())
        .filter(|message| message.destination == "gdpr-requests")
        .map(|message| serde_json::from_str(&message.body).unwrap())
        .collect();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (status, reply) = app.deliver("GDPRDataAnonymization", &requests[0]).await;
    assert_eq!(status, 200, "{reply}");

    let after = app
        .state
        .ports
        .shipments
        .get_shipment(&tenant, &order)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.label_url, None,
        "the label shows the name and address"
    );
    assert!(after.erased_at.is_some());
    assert_eq!(
        after.tracking_number, before.tracking_number,
        "kept for the carrier"
    );
    let shown = app.get(&format!("/orders/{order}"), &app.admin()).await;
    let shipment = &shown.expect_status(200).body["shipment"];
    assert!(shipment.get("labelUrl").is_none(), "{shipment}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_carrier_only_a_shipped_order_that_needs_a_label_fails_to_be_retried() {
    let app = ShipApp::start_with(&[], false).await;
    let (_, unaddressed) = app.order(false).await;
    app.set_status(&unaddressed, "confirmed").await;
    app.set_status(&unaddressed, "shipped").await;
    let events = app.order_events(&unaddressed, "shipped").await;
    let (status, reply) = app.deliver("ShippingLabel", &events[0]).await;
    assert_eq!(
        (status, reply["ReturnValue"]["result"].clone()),
        (200, json!("skipped")),
        "no address, no label needed: {reply}"
    );

    let (_, _, shipped) = app.shipped_order().await;
    let (status, reply) = app.deliver("ShippingLabel", &shipped).await;
    assert_eq!(status, 500, "{reply}");
    assert!(
        reply.to_string().contains("no carrier is configured"),
        "the failure says why: {reply}"
    );
    assert_eq!(
        calls(&app.sandbox_state().await),
        0,
        "the carrier was never asked"
    );
}
