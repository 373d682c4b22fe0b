//! The whole app in local mode (`handler local`'s runtime: queue workers, the outbox relay)
//! wired to a fake ERP of its own over loopback HTTP, for the ERP sync tests: the API, the
//! fake ERP's admin routes, the two ERP jobs run as their timers run them, the local queue.

use std::time::Duration;

use function_app::local::sandbox::erp::{ErpSandbox, ErpSandboxConfig, RunningErp};
use function_app::local::LocalRuntime;
use function_app::startup::{AppState, Mode};
use serde_json::{json, Value};
use shared::auth::DevIssuer;
use shared::jobs::{run_job, Job, JobReport, RunOptions, Trigger};

use super::Reply;

/// The tenant the fake ERP feeds in these tests.
pub const TENANT: &str = "contoso";

pub struct ErpApp {
    pub base: String,
    pub runtime: LocalRuntime,
    pub erp: RunningErp,
    pub dev: DevIssuer,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl ErpApp {
    /// The app with `ERP_TENANTS=contoso`, retries without delay, a breaker open for 1 s and
    /// `extra` settings.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        super::jwks::install_dev_key(dir.path());
        let erp = ErpSandbox::start(ErpSandboxConfig::generated())
            .await
            .expect("the fake ERP starts");
        let mut pairs = vec![
            ("ERP_TENANTS", TENANT),
            ("ERP_BREAKER_OPEN_SECONDS", "1"),
            ("ERP_TIMEOUT_SECONDS", "2"),
        ];
        pairs.extend_from_slice(extra);
        let mut state = AppState::open(super::settings(dir.path(), &pairs), Mode::Local)
            .expect("the app starts");
        let erp_settings = erp.erp_settings(&state.settings.erp);
        let outbound = state
            .outbound
            .clone()
            .with_erp(&erp_settings)
            .expect("the ERP client");
        state.parts_mut().outbound = outbound;
        let dev = DevIssuer::load_or_create(dir.path()).expect("dev issuer");
        let runtime = LocalRuntime::new(state);
        let address = super::spawn_local(runtime.clone()).await;
        Self {
            base: format!("http://{address}"),
            runtime,
            erp,
            dev,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            _dir: dir,
        }
    }

    pub fn state(&self) -> &AppState {
        &self.runtime.state
    }

    pub fn admin(&self) -> String {
        let tenant = shared::domain::tenant::TenantId::new(TENANT).expect("tenant");
        let subject = shared::auth::DevSubject::Employee {
            roles: [shared::auth::Role::Admin].into_iter().collect(),
        };
        self.dev
            .token(&tenant, subject, Duration::from_secs(3600))
            .expect("dev token")
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(self.admin());
        if let Some(body) = body {
            request = request.json(body);
        }
        Reply::read(request).await
    }

    /// `GET /api/health/ready`'s body.
    pub async fn readiness(&self) -> Value {
        let request = self.http.get(format!("{}/api/health/ready", self.base));
        Reply::read(request).await.body
    }

    /// Creates a product with `sku` and `stock`; its id.
    pub async fn product(&self, name: &str, sku: Option<&str>, stock: i64) -> String {
        let body = json!({"name": name, "category": "kitchen", "priceCents": 1000, "currency": "EUR", "stock": stock, "sku": sku});
        let reply = self
            .call(reqwest::Method::POST, "/products", Some(&body))
            .await;
        reply.expect_status(201);
        reply.body["id"].as_str().expect("an id").to_owned()
    }

    pub async fn customer(&self) -> String {
        let body = json!({"name": "Ada", "email": "ada@example.org"});
        let reply = self
            .call(reqwest::Method::POST, "/customers", Some(&body))
            .await;
        reply.expect_status(201);
        reply.body["id"].as_str().expect("an id").to_owned()
    }

    /// Places an order of `quantity` units of `product`: the reply.
    pub async fn order(&self, customer: &str, product: &str, quantity: i64) -> Reply {
        let body = json!({"customerId": customer, "items": [{"productId": product, "quantity": quantity}]});
        self.call(reqwest::Method::POST, "/orders", Some(&body))
            .await
    }

    pub async fn set_status(&self, order: &str, status: &str) {
        let body = json!({ "status": status });
        self.call(
            reqwest::Method::PUT,
            &format!("/orders/{order}/status"),
            Some(&body),
        )
        .await
        .expect_status(200);
    }

    pub async fn stock_of(&self, product: &str) -> Value {
        self.call(reqwest::Method::GET, &format!("/products/{product}"), None)
            .await
            .body
            .clone()
    }

    /// Runs `job` now, as its timer does.
    pub async fn run(&self, job: &'static Job) -> JobReport {
        self.run_with(job, false).await
    }

    /// Runs `job` now, as its timer does, as a dry run when `dry_run`.
    pub async fn run_with(&self, job: &'static Job, dry_run: bool) -> JobReport {
        let state = self.state();
        let context = function_app::timer_jobs::job_context(
            state.store.clone(),
            state.archive.clone(),
            state.settings.clone(),
            state.erasure.clone(),
            &state.outbound,
        );
        let options = RunOptions {
            trigger: Trigger::Timer,
            dry_run,
            is_past_due: false,
        };
        run_job(job, &context, options).await
    }

    /// A POST to an admin route of the fake ERP.
    pub async fn erp_admin(&self, path: &str, body: Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.erp.base_url()))
            .json(&body)
            .send()
            .await
            .expect("the fake ERP answers");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }

    /// `GET /sandbox/state` of the fake ERP.
    pub async fn erp_state(&self) -> Value {
        self.http
            .get(format!("{}/sandbox/state", self.erp.base_url()))
            .send()
            .await
            .expect("the fake ERP answers")
            .json()
            .await
            .expect("JSON")
    }

    /// Polls the fake ERP's state until `done` holds (at most 10 s).
    pub async fn erp_state_until(&self, done: impl Fn(&Value) -> bool) -> Value {
        let started = std::time::Instant::now();
        loop {
            let state = self.erp_state().await;
            if done(&state) {
                return state;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the fake ERP never reached the expected state: {state}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
