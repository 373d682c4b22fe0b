//! The payments test app: the app on SQLite in a temporary directory, served over loopback,
//! its PayPal adapter pointed at the PayPal sandbox on loopback, whose signed webhooks go to the
//! app's `/api/v1/payments/webhooks/paypal` through a proxy that keeps the app's answers. For a
//! void that gets no answer, a pass-through between the app and the sandbox answers `503` to
//! voids while told to.

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
use shared::jobs::{run_job, Job, JobReport, RunOptions, Trigger};
use tokio::net::TcpListener;

use super::Reply;

/// The app's answers to the sandbox's webhook deliveries: (status, body), in order.
pub type Answers = std::sync::Arc<std::sync::Mutex<Vec<(u16, Value)>>>;

/// A pass-through between the sandbox and the app's webhook route that keeps the app's
/// answers (the sandbox delivers in the background). Returns its URL.
pub async fn recording_proxy(target: String, answers: Answers) -> String {
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
pub async fn void_failing_proxy(target: String, fail_voids: Arc<AtomicBool>) -> String {
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

pub const TENANT: &str = "contoso";

/// The app and its sandbox.
pub struct PayApp {
    pub base: String,
    pub http: reqwest::Client,
    pub dev: DevIssuer,
    pub state: AppState,
    pub sandbox: RunningSandbox,
    pub webhook_answers: Answers,
    /// Voids fail with `503` while set (only when started with [`PayApp::start_with_void_fault`]).
    pub fail_voids: Arc<AtomicBool>,
    pub _dir: tempfile::TempDir,
}

impl PayApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The app whose calls to PayPal give up after `timeout` (a `sandbox-timeout` source
    /// answers its first attempts after 1.5 s here).
    pub async fn start_with_timeout(timeout: Duration) -> Self {
        Self::start_with(|settings| settings.timeout = timeout).await
    }

    /// The app reaching the sandbox through [`void_failing_proxy`].
    pub async fn start_with_void_fault() -> Self {
        Self::build(true, true, |_| {}).await
    }

    /// The app with its PayPal settings adjusted by `adjust` (by default: PayPal's timeout
    /// 10 s, its breaker open for 1 s).
    pub async fn start_with(adjust: impl FnOnce(&mut PaymentSettings)) -> Self {
        Self::build(false, true, adjust).await
    }

    /// The app with a sandbox that sends no webhooks (a test that changes PayPal behind the
    /// app's back, and must not have the app told).
    pub async fn start_without_webhooks() -> Self {
        Self::build(false, false, |_| {}).await
    }

    async fn build(
        void_fault: bool,
        webhooks: bool,
        adjust: impl FnOnce(&mut PaymentSettings),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        super::jwks::install_dev_key(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut config = SandboxConfig::generated();
        let webhook_answers = Answers::default();
        let app_hook = format!("http://{address}/api/v1/payments/webhooks/paypal");
        if webhooks {
            config.webhook_url = Some(recording_proxy(app_hook, webhook_answers.clone()).await);
        }
        config.speed = 20.0;
        let sandbox = PayPalSandbox::start(config).await.unwrap();
        let mut state = AppState::open(super::settings(dir.path(), &[]), Mode::Local).unwrap();
        let fail_voids = Arc::new(AtomicBool::new(false));
        let paypal_url = if void_fault {
            void_failing_proxy(sandbox.base_url().to_owned(), fail_voids.clone()).await
        } else {
            sandbox.base_url().to_owned()
        };
        let mut settings = sandbox.payment_settings(&state.settings.payments);
        settings.base_url = Some(paypal_url);
        settings.breaker_open_for = Duration::from_secs(1);
        adjust(&mut settings);
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

    pub fn token(&self, subject: DevSubject) -> String {
        let tenant = TenantId::new(TENANT).unwrap();
        self.dev
            .token(&tenant, subject, Duration::from_secs(3600))
            .unwrap()
    }

    pub fn admin(&self) -> String {
        self.employee(&[Role::Admin])
    }

    pub fn employee(&self, roles: &[Role]) -> String {
        self.token(DevSubject::Employee {
            roles: roles.iter().copied().collect(),
        })
    }

    pub fn client_of(&self, customer_id: &str) -> String {
        self.token(DevSubject::Client {
            customer_id: customer_id.to_owned(),
        })
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        Reply::read(self.request(reqwest::Method::POST, path, token).json(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        Reply::read(self.request(reqwest::Method::GET, path, token)).await
    }

    /// `POST /payments` (or a refund) with an `Idempotency-Key`.
    pub async fn post_keyed(&self, path: &str, token: &str, key: &str, body: &Value) -> Reply {
        Reply::read(
            self.request(reqwest::Method::POST, path, token)
                .header("idempotency-key", key)
                .json(body),
        )
        .await
    }

    pub async fn pay(&self, token: &str, key: &str, order_id: &str, vault_id: &str) -> Reply {
        let body = json!({"orderId": order_id, "paymentSource": {"vaultId": vault_id}});
        self.post_keyed("/payments", token, key, &body).await
    }

    /// A customer with a pending order of 2 × 12.50 EUR: (customer id, order id).
    pub async fn order(&self) -> (String, String) {
        self.order_for("ada@example.com").await
    }

    /// [`PayApp::order`] for a customer with `email`.
    pub async fn order_for(&self, email: &str) -> (String, String) {
        let admin = self.admin();
        let customer = self
            .post(
                "/customers",
                &admin,
                &json!({"name": "Ada Payer", "email": email}),
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

    /// Puts the sandbox in outage `mode` (`none`, `unavailable`, `refuse`).
    pub async fn outage(&self, mode: &str) {
        let reply = self
            .http
            .post(format!("{}/sandbox/outage", self.sandbox.base_url()))
            .json(&json!({ "mode": mode }))
            .send()
            .await
            .unwrap();
        assert!(
            reply.status().is_success(),
            "outage {mode}: {}",
            reply.status()
        );
    }

    pub async fn sandbox_state(&self) -> Value {
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
    pub async fn outbox_text(&self) -> String {
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

    /// Runs `job` now, as its timer would, settling anything unsettled at once and comparing
    /// `day` (default yesterday).
    pub async fn run_job(&self, job: &'static Job, day: Option<chrono::NaiveDate>) -> JobReport {
        let context = function_app::timer_jobs::job_context(
            self.state.store.clone(),
            self.state.archive.clone(),
            self.state.settings.clone(),
            self.state.erasure.clone(),
            &self.state.outbound,
        )
        .with_payments(self.state.outbound.payments.clone(), Duration::ZERO)
        .with_comparison_day(day);
        let options = RunOptions {
            trigger: Trigger::Timer,
            dry_run: false,
            is_past_due: false,
        };
        run_job(job, &context, options).await
    }

    /// Polls `GET /payments/{id}` until its status is `status` (at most 8 s).
    pub async fn wait_for_status(&self, id: &str, status: &str) -> Value {
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
