//! Helpers shared by the integration tests: settings in a temporary data directory, fixtures,
//! and servers on loopback ports chosen by the OS.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use function_app::app::handler_router;
use function_app::local::LocalRuntime;
use function_app::startup::AppState;
use serde_json::Value;
use shared::config::{Settings, SettingsSource};
use shared::protocol::InvocationRequest;
use tokio::net::TcpListener;

/// Settings for a test: data in `dir`, no timers, retries without delay.
pub fn settings(dir: &Path, extra: &[(&str, &str)]) -> Settings {
    let mut pairs = vec![
        ("DATA_DIR".to_owned(), dir.display().to_string()),
        ("LOCAL_TIMERS".to_owned(), "off".to_owned()),
        ("LOCAL_QUEUE_RETRY_DELAY_MS".to_owned(), "0".to_owned()),
    ];
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Settings::load(&SettingsSource::from_pairs(pairs)).expect("test settings are valid")
}

/// A host fixture from `tests/fixtures/host` (see SOURCES.md there), as JSON.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/host")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

pub fn fixture_request(name: &str) -> InvocationRequest {
    serde_json::from_value(fixture(name)).expect("fixture is an envelope")
}

/// Serves the handler (what the Functions host calls) on a loopback port.
pub async fn spawn_handler(state: AppState) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, handler_router(state)).await;
    });
    address
}

/// Serves the whole local runtime (HTTP, queue workers; timers as the settings say).
pub async fn spawn_local(runtime: LocalRuntime) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = runtime.serve(listener, std::future::pending()).await;
    });
    address
}

/// Polls `GET url` until `done` holds for its JSON, for at most `limit`.
pub async fn poll_json_until(url: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let value: Value = client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done(&value) {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "gave up waiting on {url}: {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

// ---------------------------------------------------------------------------------------------
// API tests (`api_*.rs`): the whole app in local mode, dev tokens, JSON calls
// ---------------------------------------------------------------------------------------------

pub mod erp_app;
pub mod jwks;
pub mod pay_app;
pub mod process;

/// The whole app in local mode on a loopback port (as `handler local` serves it: the local
/// server, the host stand-in enveloping or forwarding each request, the handler), with its own
/// data folder and a dev issuer to mint tokens.
///
/// The Service Bus consumers (`GDPRDataAnonymization`, `NotificationDispatch`) are disabled,
/// as `AzureWebJobs.<Function>.Disabled` does under the Functions host: the host stand-in
/// refuses their invocations, and a refused delivery is retried only after ten minutes. So
/// every message the API sends stays on its queue or subscription, visible to
/// [`ApiApp::messages_on`], and no background processing changes data under a test's feet.
pub struct ApiApp {
    pub base: String,
    pub runtime: LocalRuntime,
    pub dev: shared::auth::DevIssuer,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl ApiApp {
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        Self::start_with(extra, |_| {}).await
    }

    /// Like [`ApiApp::start`], with a chance to adjust the app state before it serves.
    pub async fn start_with(extra: &[(&str, &str)], adjust: impl FnOnce(&mut AppState)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        jwks::install_dev_key(dir.path());
        let mut pairs = vec![
            ("LOCAL_QUEUE_RETRY_DELAY_MS", "600000"),
            ("LOCAL_QUEUE_MAX_DELIVERY_COUNT", "2000"),
        ];
        pairs.extend_from_slice(extra);
        let mut state = AppState::open(
            settings(dir.path(), &pairs),
            function_app::startup::Mode::Local,
        )
        .expect("the app starts");
        adjust(&mut state);
        let dev = shared::auth::DevIssuer::load_or_create(dir.path()).expect("dev issuer");
        let mut runtime = LocalRuntime::new(state);
        let handler = handler_router(runtime.state.clone())
            .layer(axum::middleware::from_fn(refuse_message_consumers));
        let mut host =
            function_app::local::host::LocalHost::new(handler, runtime.host.queue().clone());
        if let Some(signalr) = runtime.host.signalr() {
            host = host.with_signalr(signalr.clone());
        }
        runtime.host = host;
        let address = spawn_local(runtime.clone()).await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .expect("client");
        Self {
            base: format!("http://{address}"),
            runtime,
            dev,
            http,
            _dir: dir,
        }
    }

    /// A dev token of an employee of `tenant` with `roles` (subject `dev-employee`).
    pub fn employee(&self, tenant: &str, roles: &[shared::auth::Role]) -> String {
        let subject = shared::auth::DevSubject::Employee {
            roles: roles.iter().copied().collect(),
        };
        self.dev_token(tenant, subject)
    }

    /// A dev token of the client bound to `customer_id` in `tenant` (subject `dev-client-{id}`).
    pub fn client_of(&self, tenant: &str, customer_id: &str) -> String {
        self.dev_token(
            tenant,
            shared::auth::DevSubject::Client {
                customer_id: customer_id.to_owned(),
            },
        )
    }

    /// A dev app-only token of the service `app_id` in `tenant` with `roles` (client
    /// credentials: `sub` and `oid` are the app's id, `idtyp` is `app`).
    pub fn app(&self, tenant: &str, app_id: &str, roles: &[shared::auth::AppRole]) -> String {
        let subject = shared::auth::DevSubject::App {
            app_id: app_id.to_owned(),
            roles: roles.iter().copied().collect(),
        };
        self.dev_token(tenant, subject)
    }

    pub fn admin(&self, tenant: &str) -> String {
        self.employee(tenant, &[shared::auth::Role::Admin])
    }

    fn dev_token(&self, tenant: &str, subject: shared::auth::DevSubject) -> String {
        let tenant = shared::domain::tenant::TenantId::new(tenant).expect("tenant id");
        self.dev
            .token(&tenant, subject, std::time::Duration::from_secs(3600))
            .expect("dev token")
    }

    /// A request to `/api/v1{path}`, with the bearer token if any.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// A request to a path of the app as it is (`/api/health/live`), without a token.
    pub fn http_at(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        Reply::read(self.request(reqwest::Method::GET, path, Some(token))).await
    }

    /// `GET` of a path the app handed out (`/api/v1/...`, a `Location` or status URL).
    pub async fn get_at(&self, path: &str, token: &str) -> Reply {
        Reply::read(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    pub async fn post(&self, path: &str, token: &str, body: &serde_json::Value) -> Reply {
        Reply::read(
            self.request(reqwest::Method::POST, path, Some(token))
                .json(body),
        )
        .await
    }

    pub async fn put(&self, path: &str, token: &str, body: &serde_json::Value) -> Reply {
        Reply::read(
            self.request(reqwest::Method::PUT, path, Some(token))
                .json(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        Reply::read(self.request(reqwest::Method::DELETE, path, Some(token))).await
    }

    /// Creates a customer as an admin of `tenant`; the stored customer.
    pub async fn create_customer(
        &self,
        tenant: &str,
        name: &str,
        email: &str,
    ) -> serde_json::Value {
        let body = serde_json::json!({"name": name, "email": email});
        self.post("/customers", &self.admin(tenant), &body)
            .await
            .expect_status(201)
            .body
            .clone()
    }

    /// Creates a product as an admin of `tenant`; the stored product.
    pub async fn create_product(
        &self,
        tenant: &str,
        name: &str,
        category: &str,
        stock: i64,
    ) -> serde_json::Value {
        let body = serde_json::json!({"name": name, "category": category, "priceCents": 1250, "currency": "EUR", "stock": stock});
        self.post("/products", &self.admin(tenant), &body)
            .await
            .expect_status(201)
            .body
            .clone()
    }

    /// Every message sent to `entity` that no consumer completed: active ones (delivered or
    /// not) and dead letters, by sequence number, bodies parsed as JSON. Waits first until the
    /// relay has sent everything in the outbox (at most 10 s).
    pub async fn messages_on(&self, entity: &str) -> Vec<serde_json::Value> {
        self.wait_for_relay().await;
        let queue = self.runtime.host.queue();
        let mut messages = queue.peek(entity).await.expect("peek");
        messages.extend(
            queue
                .dead_letters(Some(entity))
                .await
                .expect("dead letters"),
        );
        messages.sort_by_key(|message| message.sequence_number);
        messages
            .iter()
            .map(|message| serde_json::from_str(&message.body).expect("message body is JSON"))
            .collect()
    }
}

impl ApiApp {
    /// Waits until the outbox is empty (the relay sent every message), at most 10 s.
    pub async fn wait_for_relay(&self) {
        let started = std::time::Instant::now();
        while self
            .runtime
            .state
            .ports
            .outbox
            .oldest_unrelayed()
            .await
            .expect("outbox")
            .is_some()
        {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "the relay did not empty the outbox within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Fails every invocation of a Service Bus-triggered function (see [`ApiApp`]).
async fn refuse_message_consumers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let function = function_app::registry::find(request.uri().path().trim_start_matches('/'));
    if function.is_some_and(|def| def.consumed_entity().is_some()) {
        use axum::response::IntoResponse;
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "disabled in API tests",
        )
            .into_response();
    }
    next.run(request).await
}

/// A response read whole: status, headers, raw text and the JSON body (`Null` if not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: serde_json::Value,
}

impl Reply {
    pub async fn read(request: reqwest::RequestBuilder) -> Self {
        let response = request.send().await.expect("the app answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Self {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts the status (showing the body when it differs).
    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "expected HTTP {status}, got {}: {}",
            self.status, self.text
        );
        self
    }

    /// Asserts an RFC 9457 problem document with this status; the document.
    pub fn expect_problem(&self, status: u16) -> &serde_json::Value {
        self.expect_status(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status, "{}", self.text);
        assert!(
            self.body["title"].is_string(),
            "a problem has a title: {}",
            self.text
        );
        &self.body
    }

    /// The `field` names of a 400 problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors list: {}", self.text))
            .iter()
            .map(|error| error["field"].as_str().expect("field name").to_owned())
            .collect()
    }
}
