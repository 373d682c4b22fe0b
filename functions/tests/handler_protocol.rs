//! The handler speaks the custom-handler protocol over real HTTP: host-shaped payloads (from
//! the host's own source, `tests/fixtures/host`) for all three trigger kinds are posted to
//! `/{FunctionName}` on a loopback port, and the typed values and reply shapes are checked.
//!
//! Fixtures are adapted only where our app differs from the sample app they were taken from:
//! binding names (`myTimer` -> `timer`, `msg` -> `message`), URLs, and message bodies, each
//! kept in the host's encoding.

mod common;

use std::sync::Arc;

use common::{client, fixture, settings, spawn_handler};
use function_app::startup::{AppState, Mode};
use serde_json::{json, Value};
use shared::store::{HealthCheck, StoreError};

async fn handler() -> (std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(settings(dir.path(), &[]), Mode::Local).unwrap();
    (spawn_handler(state).await, dir)
}

/// Moves `Data.{from}` to `Data.{to}`.
fn rename_binding(mut envelope: Value, from: &str, to: &str) -> Value {
    let data = envelope["Data"].as_object_mut().unwrap();
    let value = data.remove(from).unwrap();
    data.insert(to.to_owned(), value);
    envelope
}

/// A message body in the host's encoding for string-bound Service Bus bodies.
fn host_encoded_body(body: &Value) -> Value {
    Value::String(Value::String(body.to_string()).to_string())
}

async fn post(address: std::net::SocketAddr, function: &str, body: &Value) -> (u16, String, Value) {
    let response = client()
        .post(format!("http://{address}/{function}"))
        .header(
            "X-Azure-Functions-InvocationId",
            "4a4d1e7c-0000-4000-8000-000000000001",
        )
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert!(
        !text.is_empty(),
        "the handler must never answer an empty body"
    );
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn answers_the_hosts_readiness_probe() {
    let (address, _dir) = handler().await;
    let response = client()
        .get(format!("http://{address}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn timer_envelope_is_typed_and_the_reply_has_the_three_keys() {
    let (address, _dir) = handler().await;
    let envelope = rename_binding(fixture("timer_request.json"), "myTimer", "timer");
    let (status, content_type, reply) = post(address, "DataRetentionCleanup", &envelope).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    assert_eq!(reply["Outputs"], json!({}));
    assert_eq!(reply["Logs"].as_array().unwrap().len(), 1);
    let timer = &reply["ReturnValue"]["timer"];
    assert_eq!(timer["isPastDue"], false);
    assert_eq!(timer["scheduleStatus"]["next"], "2024-05-01T10:00:00Z");
    assert_eq!(
        timer["scheduleStatus"]["last"],
        "2024-05-01T09:55:00.015451200Z"
    );
}

#[tokio::test]
async fn first_run_timer_envelope_is_accepted() {
    let (address, _dir) = handler().await;
    let envelope = rename_binding(fixture("timer_request_first_run.json"), "myTimer", "timer");
    let (status, _, reply) = post(address, "NotificationCleanup", &envelope).await;
    assert_eq!(status, 200);
    assert_eq!(reply["ReturnValue"]["timer"]["scheduleStatus"], Value::Null);
}

#[tokio::test]
async fn service_bus_envelope_is_typed_through_the_host_encodings() {
    let (address, _dir) = handler().await;
    let mut envelope = rename_binding(fixture("servicebus_request.json"), "msg", "message");
    let erasure = json!({"requestId": "r-1", "tenantId": "t-001", "customerId": "cust-0042", "requestedBy": "u-7", "requestedAt": "2026-11-21T02:00:00Z"});
    envelope["Data"]["message"] = host_encoded_body(&erasure);
    let (status, content_type, reply) = post(address, "GDPRDataAnonymization", &envelope).await;
    // Parsed (the ids come through the host's encodings), then refused as bad input because
    // the customer does not exist, so the host abandons it and Service Bus dead-letters it.
    assert_eq!(status, 400);
    assert_eq!(content_type, "application/json");
    let error = reply["Error"].as_str().unwrap();
    assert!(
        error.contains("customer cust-0042 does not exist in tenant t-001"),
        "{error}"
    );
}

#[tokio::test]
async fn malformed_service_bus_body_fails_with_the_reason() {
    let (address, _dir) = handler().await;
    let envelope = rename_binding(fixture("servicebus_request.json"), "msg", "message");
    let (status, _, reply) = post(address, "GDPRDataAnonymization", &envelope).await;
    assert_eq!(status, 400);
    let error = reply["Error"].as_str().unwrap();
    assert!(
        error.contains("ErasureRequest") && error.contains("unknown field `"),
        "{error}"
    );
    assert_eq!(reply["Logs"][0], reply["Error"]);
}

#[tokio::test]
async fn order_event_envelope_for_the_subscription_function() {
    let (address, _dir) = handler().await;
    let mut envelope = rename_binding(fixture("servicebus_request.json"), "msg", "message");
    let event = json!({"eventId": "e-1", "eventType": "shipped", "tenantId": "t-001", "orderId": "ord-1001", "customerId": "cust-0042", "occurredAt": "2026-11-21T02:00:00Z"});
    envelope["Data"]["message"] = host_encoded_body(&event);
    let (status, _, reply) = post(address, "NotificationDispatch", &envelope).await;
    // Parsed and completed without effect: the customer does not exist.
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["ReturnValue"]["result"], "skipped: customer not found",
        "{reply}"
    );
}

#[tokio::test]
async fn http_envelope_runs_the_same_routes_and_answers_in_outputs_res() {
    let (address, _dir) = handler().await;
    let mut envelope = fixture("http_request.json");
    envelope["Data"]["req"]["Url"] = json!("http://localhost:7071/api/health/live");
    envelope["Data"]["req"]["Method"] = json!("GET");
    let (status, _, reply) = post(address, "Health", &envelope).await;
    assert_eq!(status, 200);
    let res = &reply["Outputs"]["res"];
    assert_eq!(res["statusCode"], 200);
    assert_eq!(
        serde_json::from_str::<Value>(res["body"].as_str().unwrap()).unwrap(),
        json!({"status": "live"})
    );
    assert_eq!(res["headers"]["content-type"], "application/json");

    envelope["Data"]["req"]["Url"] = json!("http://localhost:7071/api/v1/customers/c-1");
    let (status, _, reply) = post(address, "CustomersApi", &envelope).await;
    assert_eq!(
        status, 200,
        "the invocation succeeded; the HTTP answer is in res"
    );
    assert_eq!(
        reply["Outputs"]["res"]["statusCode"], 401,
        "the fixture carries no token"
    );
    assert_eq!(
        reply["Outputs"]["res"]["headers"]["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn forwarded_http_requests_reach_the_http_functions() {
    let (address, _dir) = handler().await;
    let ready = client()
        .get(format!("http://{address}/api/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready", "checks": {"folder": "ok", "sqlite": "ok"}, "outbound": [], "outbox": {"lagSeconds": 0.0, "degradedAfterSeconds": 60, "status": "ok"}})
    );
    let orders = client()
        .get(format!("http://{address}/api/v1/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(orders.status(), 401, "no token");
    assert_eq!(orders.headers()["content-type"], "application/problem+json");
    let unknown = client()
        .get(format!("http://{address}/api/v9/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn bad_envelopes_fail_clearly_with_a_json_body() {
    let (address, _dir) = handler().await;
    let garbage = client()
        .post(format!("http://{address}/DataRetentionCleanup"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let reply: Value = garbage.json().await.unwrap();
    assert!(reply["Error"]
        .as_str()
        .unwrap()
        .contains("not a JSON envelope"));

    let (status, _, reply) = post(
        address,
        "DataRetentionCleanup",
        &json!({"Data": {"other": 1}, "Metadata": {}}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(reply["Error"]
        .as_str()
        .unwrap()
        .contains("binding `timer` is missing"));

    let (status, content_type, _) = post(address, "NoSuchFunction", &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(content_type, "application/problem+json");
}

/// A backend that does not answer. SQLite cannot be made unreachable while the process holds
/// it open (WAL keeps a shared lock; an unlinked file stays readable), so this stands in for a
/// remote store that is down.
struct Unreachable;

#[async_trait::async_trait]
impl HealthCheck for Unreachable {
    fn backend(&self) -> &'static str {
        "cosmos"
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable {
            backend: "cosmos",
            reason: "connection refused".into(),
        })
    }
}

/// A backend that never answers: the check must give up after its timeout.
struct Hanging;

#[async_trait::async_trait]
impl HealthCheck for Hanging {
    fn backend(&self) -> &'static str {
        "blob"
    }
    async fn ping(&self) -> Result<(), StoreError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn readiness_is_503_naming_each_failing_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = AppState::open(settings(dir.path(), &[]), Mode::Local).unwrap();
    let checks: Vec<Arc<dyn HealthCheck>> = vec![
        Arc::new(state.db.clone()),
        Arc::new(Unreachable),
        Arc::new(Hanging),
    ];
    state.parts_mut().health_checks = Arc::new(checks);
    let address = spawn_handler(state).await;
    let response = client()
        .get(format!("http://{address}/api/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["detail"], "backend not reachable: cosmos, blob");
    assert_eq!(problem["checks"]["sqlite"], "ok");
    assert!(
        problem["checks"]["cosmos"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{problem}"
    );
    assert!(
        problem["checks"]["blob"]
            .as_str()
            .unwrap()
            .contains("no answer within"),
        "{problem}"
    );
    let live = client()
        .get(format!("http://{address}/api/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
}
