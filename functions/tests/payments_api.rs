//! `PaymentsApi` over real HTTP on loopback: the app on SQLite in a temporary directory, its
//! PayPal adapter pointed at the PayPal sandbox on loopback, whose signed webhooks go to the
//! app's `/api/v1/payments/webhooks/paypal`. For the void that gets no answer, a pass-through
//! between the app and the sandbox answers `503` to voids while told to.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use function_app::app::handler_router;
use function_app::local::sandbox::paypal::{PayPalSandbox, RunningSandbox, SandboxConfig};
use function_app::startup::{AppState, Mode, Outbound};
use serde_json::{json, Value};
use shared::auth::{DevIssuer, DevSubject, Role};
use shared::config::PaymentSettings;
use shared::domain::tenant::TenantId;
use tokio::net::TcpListener;

use common::Reply;

/// The app's answers to the sandbox's webhook deliveries: (status, body), in order.
type Answers = std::sync::Arc<std::sync::Mutex<Vec<(u16, Value)>>>;

/// A pass-through between the sandbox and the app's webhook route that keeps the app's
/// answers (the sandbox delivers in the background). Returns its URL.
async fn recording_proxy(target: String, answers: Answers) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let forward = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let (http, target, answers) = (http.clone(), target.clone(), answers.clone());
        async move {
            let mut request = http.post(target).body(body.to_vec());
            for (name, value) in headers
                .iter()
                .filter(|(name, _)| name.as_str().starts_with("paypal-") || *name == "content-type")
            {
                request = request.header(name.as_str(), value.as_bytes());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            answers.lock().unwrap().push((status, body.clone()));
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                axum::Json(body),
            )
        }
    };
    let router = axum::Router::new().route("/hook", axum::routing::post(forward));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}/hook")
}

/// A pass-through from the app to the sandbox at `target` that answers `503` to every void
/// (`POST .../authorizations/{id}/void`) while `fail_voids` is set. Returns its URL.
async fn void_failing_proxy(target: String, fail_voids: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let forward = move |method: reqwest::Method,
                        uri: axum::http::Uri,
                        headers: axum::http::HeaderMap,
                        body: axum::body::Bytes| {
        let (http, target, fail_voids) = (http.clone(), target.clone(), fail_voids.clone());
        async move {
            if uri.path().ends_with("/void") && fail_voids.load(Ordering::SeqCst) {
                return axum::http::Response::builder()
                    .status(503)
                    .body(axum::body::Body::empty())
                    .unwrap();
            }
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let mut request = http
                .request(method, format!("{target}{path}"))
                .body(body.to_vec());
            for (name, value) in headers.iter().filter(|(name, _)| *name != "host") {
                request = request.header(name.as_str(), value.as_bytes());
            }
            let response = request.send().await.unwrap();
            let mut reply = axum::http::Response::builder().status(response.status().as_u16());
            for (name, value) in response.headers() {
                reply = reply.header(name.as_str(), value.as_bytes());
            }
            let bytes = response.bytes().await.unwrap();
            reply.body(axum::body::Body::from(bytes)).unwrap()
        }
    };
    let router = axum::Router::new().fallback(forward);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}")
}

const TENANT: &str = "contoso";

/// The app and its sandbox.
struct PayApp {
    base: String,
    http: reqwest::Client,
    dev: DevIssuer,
    state: AppState,
    sandbox: RunningSandbox,
    webhook_answers: Answers,
    /// Voids fail with `503` while set (only when started with [`PayApp::start_with_void_fault`]).
    fail_voids: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl PayApp {
    async fn start() -> Self {
        Self::start_with(false).await
    }

    /// The app reaching the sandbox through [`void_failing_proxy`].
    async fn start_with_void_fault() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(void_fault: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        common::jwks::install_dev_key(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut config = SandboxConfig::generated();
        let webhook_answers = Answers::default();
        let app_hook = format!("http://{address}/api/v1/payments/webhooks/paypal");
        config.webhook_url = Some(recording_proxy(app_hook, webhook_answers.clone()).await);
        config.speed = 20.0;
        let sandbox = PayPalSandbox::start(config).await.unwrap();
        let mut state = AppState::open(common::settings(dir.path(), &[]), Mode::Local).unwrap();
        let fail_voids = Arc::new(AtomicBool::new(false));
        let paypal_url = if void_fault {
            void_failing_proxy(sandbox.base_url().to_owned(), fail_voids.clone()).await
        } else {
            sandbox.base_url().to_owned()
        };
        let settings = PaymentSettings {
            base_url: Some(paypal_url),
            client_id: Some(sandbox.config().client_id.clone()),
            client_secret: Some(sandbox.config().client_secret.clone()),
            webhook_ids: vec![sandbox.config().webhook_id.clone()],
            webhook_tolerance: Duration::from_secs(300),
        };
        state.parts_mut().outbound =
            Outbound::from_settings(&settings, vec![sandbox.base_url().to_owned()]).unwrap();
        let router = handler_router(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let dev = DevIssuer::load_or_create(dir.path()).unwrap();
        Self {
            base: format!("http://{address}"),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            dev,
            state,
            sandbox,
            webhook_answers,
            fail_voids,
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
        self.employee(&[Role::Admin])
    }

    fn employee(&self, roles: &[Role]) -> String {
        self.token(DevSubject::Employee {
            roles: roles.iter().copied().collect(),
        })
    }

    fn client_of(&self, customer_id: &str) -> String {
        self.token(DevSubject::Client {
            customer_id: customer_id.to_owned(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        Reply::read(self.request(reqwest::Method::POST, path, token).json(body)).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        Reply::read(self.request(reqwest::Method::GET, path, token)).await
    }

    /// `POST /payments` (or a refund) with an `Idempotency-Key`.
    async fn post_keyed(&self, path: &str, token: &str, key: &str, body: &Value) -> Reply {
        Reply::read(
            self.request(reqwest::Method::POST, path, token)
                .header("idempotency-key", key)
                .json(body),
        )
        .await
    }

    async fn pay(&self, token: &str, key: &str, order_id: &str, vault_id: &str) -> Reply {
        let body = json!({"orderId": order_id, "paymentSource": {"vaultId": vault_id}});
        self.post_keyed("/payments", token, key, &body).await
    }

    /// A customer with a pending order of 2 × 12.50 EUR: (customer id, order id).
    async fn order(&self) -> (String, String) {
        let admin = self.admin();
        let customer = self
            .post(
                "/customers",
                &admin,
                &json!({"name": "Ada Payer", "email": "ada@example.com"}),
            )
            .await;
        let customer = customer.expect_status(201).body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let product = self
            .post("/products", &admin, &json!({"name": "Widget", "category": "tools", "priceCents": 1250, "currency": "EUR", "stock": 100}))
            .await;
        let product = product.expect_status(201).body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let order = self
            .post(
                "/orders",
                &admin,
                &json!({"customerId": customer, "items": [{"productId": product, "quantity": 2}]}),
            )
            .await;
        let order = order.expect_status(201).body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (customer, order)
    }

    async fn sandbox_state(&self) -> Value {
        self.http
            .get(format!("{}/sandbox/state", self.sandbox.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The outbox records of the tenant not relayed yet, as text.
    async fn outbox_text(&self) -> String {
        let tenant = TenantId::new(TENANT).unwrap();
        let records = self
            .state
            .ports
            .outbox
            .pending_outbox(&tenant)
            .await
            .unwrap();
        serde_json::to_string(&records).unwrap()
    }

    /// Polls `GET /payments/{id}` until its status is `status` (at most 8 s).
    async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        let admin = self.admin();
        let deadline = std::time::Instant::now() + Duration::from_secs(8);
        loop {
            let reply = self.get(&format!("/payments/{id}"), &admin).await;
            if reply.body["status"] == status || std::time::Instant::now() > deadline {
                return reply.body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_payment_is_captured_once_and_replayed_with_its_key() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);

    let paid = app.pay(&client, "key-1", &order, "sandbox-ok").await;
    paid.expect_status(201);
    let id = paid.body["id"].as_str().unwrap().to_owned();
    assert_eq!(paid.body["status"], "captured");
    assert_eq!(paid.body["capturedCents"], 2500);
    assert_eq!(paid.body["amountCents"], 2500);
    assert_eq!(paid.body["currency"], "EUR");
    assert_eq!(
        paid.header("location"),
        Some(format!("/api/v1/payments/{id}").as_str())
    );
    let outbox = app.outbox_text().await;
    assert!(
        outbox.contains("captured") && outbox.contains(&id),
        "{outbox}"
    );
    assert_eq!(app.sandbox_state().await["captures"], 1);

    let again = app.pay(&client, "key-1", &order, "sandbox-ok").await;
    again.expect_status(200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body["id"], id.as_str());
    assert_eq!(
        app.sandbox_state().await["captures"],
        1,
        "no second capture"
    );

    app.pay(&client, "key-1", &order, "sandbox-other")
        .await
        .expect_problem(422);
    let unkeyed = app
        .post(
            "/payments",
            &client,
            &json!({"orderId": order, "paymentSource": {"vaultId": "sandbox-ok"}}),
        )
        .await;
    assert_eq!(
        unkeyed.expect_problem(400)["errors"][0]["field"],
        "Idempotency-Key"
    );

    let second = app.pay(&client, "key-2", &order, "sandbox-ok").await;
    assert_eq!(second.expect_problem(409)["paymentId"], id.as_str());

    let read = app.get(&format!("/payments/{id}"), &client).await;
    assert_eq!(read.expect_status(200).body["status"], "captured");
    let of_order = app.get(&format!("/orders/{order}/payments"), &client).await;
    assert_eq!(
        of_order.expect_status(200).body["payments"][0]["id"],
        id.as_str()
    );
    let listed = app
        .get(
            &format!("/payments?orderId={order}"),
            &app.employee(&[Role::CustomerService]),
        )
        .await;
    assert_eq!(
        listed.expect_status(200).body["items"][0]["id"],
        id.as_str()
    );
    app.get("/payments", &client).await.expect_problem(403);

    let stranger = app.client_of("someone-else");
    app.get(&format!("/payments/{id}"), &stranger)
        .await
        .expect_problem(404);
    app.get(&format!("/orders/{order}/payments"), &stranger)
        .await
        .expect_problem(404);
}

#[tokio::test]
async fn card_numbers_are_refused_and_nothing_is_stored() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    let body = json!({"orderId": order, "paymentSource": {"vaultId": "4111 1111 1111 1111"}});
    let refused = app.post_keyed("/payments", &client, "card-1", &body).await;
    assert_eq!(refused.expect_problem(400)["title"], "Card Data Refused");
    assert!(!refused.text.contains("4111"));
    let listed = app.get(&format!("/orders/{order}/payments"), &client).await;
    assert_eq!(listed.expect_status(200).body["payments"], json!([]));
    assert_eq!(app.sandbox_state().await["orders"], 0);
}

#[tokio::test]
async fn declines_fail_and_flaky_gateways_are_retried_with_the_same_request_id() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    let declined = app
        .pay(&client, "decline-1", &order, "sandbox-decline")
        .await;
    let problem = declined.expect_problem(402);
    assert_eq!(problem["failureCode"], "INSTRUMENT_DECLINED");
    let failed = app
        .get(
            &format!("/payments/{}", problem["paymentId"].as_str().unwrap()),
            &client,
        )
        .await;
    assert_eq!(failed.body["status"], "failed");

    // A failed payment does not hold the order: it may be paid again, here through a flaky
    // gateway that answers 503 twice per request id.
    let paid = app.pay(&client, "flaky-1", &order, "sandbox-flaky").await;
    paid.expect_status(201);
    assert_eq!(paid.body["status"], "captured");
    let id = paid.body["id"].as_str().unwrap();
    let attempts = &app.sandbox_state().await["request_attempts"];
    assert_eq!(attempts[id], 3, "{attempts}");
    assert_eq!(app.sandbox_state().await["captures"], 1);
}

#[tokio::test]
async fn concurrent_payments_of_one_order_capture_once() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    let pay = |key: &'static str| app.pay(&client, key, &order, "sandbox-ok");
    let (a, b, c, d, e) = tokio::join!(
        pay("race-1"),
        pay("race-2"),
        pay("race-3"),
        pay("race-4"),
        pay("race-5")
    );
    let statuses = [a.status, b.status, c.status, d.status, e.status];
    assert_eq!(
        statuses.iter().filter(|status| **status == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|status| [201, 409].contains(status)),
        "{statuses:?}"
    );
    assert_eq!(app.sandbox_state().await["captures"], 1);
}

#[tokio::test]
async fn refunds_stay_within_what_was_captured() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    let paid = app.pay(&client, "pay-1", &order, "sandbox-ok").await;
    let id = paid.expect_status(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/payments/{id}/refund");
    let admin = app.admin();

    app.post_keyed(&path, &client, "r-0", &json!({"amountCents": 100}))
        .await
        .expect_problem(403);
    let partial = app
        .post_keyed(
            &path,
            &admin,
            "r-1",
            &json!({"amountCents": 1000, "reason": "one returned"}),
        )
        .await;
    partial.expect_status(201);
    assert_eq!(partial.body["status"], "partiallyRefunded");
    assert_eq!(partial.body["refundedCents"], 1000);
    let over = app
        .post_keyed(&path, &admin, "r-2", &json!({"amountCents": 1600}))
        .await;
    assert_eq!(over.expect_problem(422)["refundableCents"], 1500);
    let replay = app
        .post_keyed(
            &path,
            &admin,
            "r-1",
            &json!({"amountCents": 1000, "reason": "one returned"}),
        )
        .await;
    assert_eq!(
        replay.expect_status(200).header("idempotent-replayed"),
        Some("true")
    );
    let rest = app.post_keyed(&path, &admin, "r-3", &json!({})).await;
    assert_eq!(rest.expect_status(201).body["status"], "refunded");
    assert_eq!(app.sandbox_state().await["refunds"], 2);
}

#[tokio::test]
async fn webhooks_are_verified_deduplicated_and_settle_slow_captures() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);

    let forged = app
        .http
        .post(format!("{}/api/v1/payments/webhooks/paypal", app.base))
        .header("paypal-transmission-sig", "Zm9yZ2Vk")
        .header("content-type", "application/json")
        .body(r#"{"id":"WH-FORGED","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{}}"#);
    Reply::read(forged).await.expect_problem(400);
    let elsewhere = app
        .http
        .post(format!("{}/api/v1/payments/webhooks/stripe", app.base))
        .body("{}");
    Reply::read(elsewhere).await.expect_problem(404);

    let slow = app.pay(&client, "slow-1", &order, "sandbox-slow").await;
    slow.expect_status(202);
    assert_eq!(slow.body["status"], "authorized");
    let id = slow.body["id"].as_str().unwrap().to_owned();
    let settled = app.wait_for_status(&id, "captured").await;
    assert_eq!(settled["status"], "captured", "{settled}");

    let events: Value = app
        .http
        .get(format!("{}/sandbox/webhooks", app.sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let completed = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["event_type"] == "PAYMENT.CAPTURE.COMPLETED")
        .unwrap_or_else(|| panic!("{events}"));
    let before = app.webhook_answers.lock().unwrap().len();
    let replay = app
        .http
        .post(format!(
            "{}/sandbox/webhooks/replay/{}",
            app.sandbox.base_url(),
            completed["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert!(replay.status().is_success());
    // The replay is delivered in the background: the app answers "duplicate".
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let last = loop {
        let answers = app.webhook_answers.lock().unwrap().clone();
        if answers.len() > before || std::time::Instant::now() > deadline {
            break answers.last().cloned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(last, Some((200, json!({"status": "duplicate"}))));
    let answers = app.webhook_answers.lock().unwrap().clone();
    assert!(
        answers.contains(&(200, json!({"status": "applied"}))),
        "{answers:?}"
    );
    let after = app.get(&format!("/payments/{id}"), &client).await;
    assert_eq!(after.body["status"], "captured");
    assert_eq!(after.body["etag"], settled["etag"]);
}

#[tokio::test]
async fn only_payable_orders_of_the_caller_are_paid_by_the_roles_that_may() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let stranger = app.client_of("someone-else");
    app.pay(&stranger, "k-1", &order, "sandbox-ok")
        .await
        .expect_problem(404);
    let reader = app.employee(&[Role::CustomerService]);
    app.pay(&reader, "k-2", &order, "sandbox-ok")
        .await
        .expect_problem(403);
    let unknown_field =
        json!({"orderId": order, "paymentSource": {"vaultId": "sandbox-ok"}, "amountCents": 1});
    app.post_keyed(
        "/payments",
        &app.client_of(&customer),
        "k-3",
        &unknown_field,
    )
    .await
    .expect_problem(400);
    let cancel = json!({"status": "cancelled"});
    let cancelled = Reply::read(
        app.request(
            reqwest::Method::PUT,
            &format!("/orders/{order}/status"),
            &app.client_of(&customer),
        )
        .json(&cancel),
    )
    .await;
    cancelled.expect_status(200);
    let refused = app
        .pay(&app.client_of(&customer), "k-4", &order, "sandbox-ok")
        .await;
    assert_eq!(refused.expect_problem(409)["title"], "Order Not Payable");
    assert_eq!(app.sandbox_state().await["orders"], 0);
}

#[tokio::test]
async fn an_unreachable_gateway_leaves_the_payment_pending_and_a_retry_resumes_it() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    let outage = |mode: &'static str| {
        app.http
            .post(format!("{}/sandbox/outage", app.sandbox.base_url()))
            .json(&json!({"mode": mode}))
            .send()
    };
    outage("unavailable").await.unwrap();
    let down = app.pay(&client, "down-1", &order, "sandbox-ok").await;
    let problem = down.expect_problem(503).clone();
    assert!(down.header("retry-after").is_some());
    let id = problem["paymentId"].as_str().unwrap().to_owned();
    let pending = app.get(&format!("/payments/{id}"), &client).await;
    assert_eq!(pending.body["status"], "pending");

    outage("none").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let resumed = loop {
        let reply = app.pay(&client, "down-1", &order, "sandbox-ok").await;
        if reply.status != 503 || std::time::Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    resumed.expect_status(201);
    assert_eq!(resumed.body["id"], id.as_str(), "the same payment, resumed");
    assert_eq!(resumed.body["status"], "captured");
}

/// The audit entries with `action` about the payment `id`.
async fn audited(app: &PayApp, action: &str, id: &str) -> usize {
    let reply = app
        .get(
            &format!("/audit/logs?action={action}&targetId={id}&limit=100"),
            &app.admin(),
        )
        .await;
    reply.expect_status(200).body["items"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn a_capture_declined_after_the_authorization_voids_it() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);

    let declined = app
        .pay(&client, "cd-1", &order, "sandbox-capture-decline")
        .await;
    let problem = declined.expect_problem(402).clone();
    assert_eq!(
        (&problem["failureCode"], &problem["paymentStatus"]),
        (&json!("INSTRUMENT_DECLINED"), &json!("voided")),
        "{problem}"
    );
    let id = problem["paymentId"].as_str().unwrap().to_owned();
    let payment = app.get(&format!("/payments/{id}"), &client).await;
    let payment = payment.expect_status(200).body.clone();
    assert_eq!(payment["status"], "voided");
    assert_eq!(payment["failureCode"], "INSTRUMENT_DECLINED");
    assert_eq!(payment["capturedCents"], 0, "nothing was taken");
    assert!(
        payment["gateway"]["authorizationId"].is_string(),
        "{payment}"
    );
    assert!(
        payment.get("inFlightUntil").is_none(),
        "released: {payment}"
    );

    // PayPal was asked once to void, with the payment's own request id, and announced it.
    let state = app.sandbox_state().await;
    assert_eq!(state["captures"], 0);
    assert_eq!(
        state["request_attempts"][format!("{id}-void")],
        1,
        "{state}"
    );
    let hooks: Value = app
        .http
        .get(format!("{}/sandbox/webhooks", app.sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        hooks["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["event_type"] == "PAYMENT.AUTHORIZATION.VOIDED"),
        "{hooks}"
    );
    // Audited: the declined capture, then the void.
    assert_eq!(audited(&app, "payment.capture.declined", &id).await, 1);
    assert_eq!(audited(&app, "payment.void", &id).await, 1);
    // The state machine announces no event for a void (nothing was taken).
    let outbox = app.outbox_text().await;
    assert!(
        !outbox.contains("\"failed\"") && !outbox.contains("captured"),
        "{outbox}"
    );

    // A replay with the same key answers the voided payment and voids nothing again.
    let replay = app
        .pay(&client, "cd-1", &order, "sandbox-capture-decline")
        .await;
    replay.expect_status(200);
    assert_eq!(replay.body["status"], "voided");
    let state = app.sandbox_state().await;
    assert_eq!(state["request_attempts"][format!("{id}-void")], 1);
    // A voided payment does not hold the order: another source pays it.
    let paid = app.pay(&client, "cd-2", &order, "sandbox-ok").await;
    paid.expect_status(201);
    assert_eq!(paid.body["status"], "captured");
}

#[tokio::test]
async fn a_void_without_an_answer_leaves_the_payment_authorized_for_reconciliation() {
    let app = PayApp::start_with_void_fault().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    app.fail_voids.store(true, Ordering::SeqCst);

    let declined = app
        .pay(&client, "cv-1", &order, "sandbox-capture-decline")
        .await;
    let problem = declined.expect_problem(402).clone();
    assert_eq!(problem["paymentStatus"], "authorized", "{problem}");
    let id = problem["paymentId"].as_str().unwrap().to_owned();
    let payment = app.get(&format!("/payments/{id}"), &client).await;
    let payment = payment.expect_status(200).body.clone();
    assert_eq!(
        (&payment["status"], &payment["failureCode"]),
        (&json!("authorized"), &json!("INSTRUMENT_DECLINED")),
        "authorized with the capture's decline: {payment}"
    );
    assert!(
        payment.get("inFlightUntil").is_none(),
        "released: {payment}"
    );
    // Reconciliation's query finds it (authorized is unsettled) once it is stale.
    let unsettled = app
        .state
        .ports
        .payments
        .unsettled_payments(chrono::Utc::now() + chrono::Duration::minutes(1), 10)
        .await
        .unwrap();
    assert!(
        unsettled.iter().any(|p| p.id == id && p.capture_declined()),
        "{unsettled:?}"
    );
    // It still holds the order until voided.
    let other = app.pay(&client, "cv-2", &order, "sandbox-ok").await;
    assert_eq!(other.expect_problem(409)["paymentId"], id.as_str());

    // PayPal is back: a retry with the same key voids it (same request id), capturing nothing.
    app.fail_voids.store(false, Ordering::SeqCst);
    let retried = app
        .pay(&client, "cv-1", &order, "sandbox-capture-decline")
        .await;
    let problem = retried.expect_problem(402).clone();
    assert_eq!(
        (&problem["paymentId"], &problem["paymentStatus"]),
        (&json!(id), &json!("voided")),
        "{problem}"
    );
    let state = app.sandbox_state().await;
    assert_eq!(
        state["request_attempts"][format!("{id}-capture")],
        1,
        "the declined capture is not sent again: {state}"
    );
    assert_eq!(audited(&app, "payment.void", &id).await, 1);
}
