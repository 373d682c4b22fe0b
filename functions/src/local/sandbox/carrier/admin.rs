//! The sandbox carrier's own routes under `/sandbox/...` (not EasyPost's): fail the next calls,
//! slow every call, the outage drill, the trackers' `max-age`, a state summary.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::Shared;
use crate::local::sandbox::listener;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/sandbox/fail-next", post(fail_next))
        .route("/sandbox/delay", post(delay))
        .route("/sandbox/outage", post(outage))
        .route("/sandbox/cache", post(cache))
        .route("/sandbox/state", get(state))
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

#[derive(Deserialize)]
struct FailRequest {
    count: u32,
    #[serde(default = "server_error")]
    status: u16,
}

fn server_error() -> u16 {
    500
}

/// `POST /sandbox/fail-next` `{"count":N,"status":500}`.
async fn fail_next(State(carrier): State<Shared>, body: axum::body::Bytes) -> Response {
    let request = serde_json::from_slice::<FailRequest>(&body)
        .ok()
        .filter(|request| (400..=599).contains(&request.status));
    let Some(request) = request else {
        return bad_request("expected {\"count\": N, \"status\": 400-599}");
    };
    let mut memory = carrier.memory.lock();
    memory.fail_next = request.count;
    memory.fail_status = request.status;
    Json(json!({"count": request.count, "status": request.status})).into_response()
}

#[derive(Deserialize)]
struct DelayRequest {
    ms: u64,
}

/// `POST /sandbox/delay` `{"ms":N}`.
async fn delay(State(carrier): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<DelayRequest>(&body) else {
        return bad_request("expected {\"ms\": N}");
    };
    carrier.memory.lock().delay = std::time::Duration::from_millis(request.ms);
    Json(json!({"ms": request.ms})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheRequest {
    max_age: Option<u64>,
}

/// `POST /sandbox/cache` `{"maxAge":N}` or `{"maxAge":null}`.
async fn cache(State(carrier): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<CacheRequest>(&body) else {
        return bad_request("expected {\"maxAge\": N} or {\"maxAge\": null}");
    };
    carrier.memory.lock().max_age = request.max_age;
    Json(json!({"maxAge": request.max_age})).into_response()
}

/// `POST /sandbox/outage` `{"mode":"unavailable"|"refuse"|"none"}`.
async fn outage(State(carrier): State<Shared>, body: axum::body::Bytes) -> Response {
    listener::set_outage(&carrier.outage, &body)
}

/// `GET /sandbox/state`: shipments, labels, trackers, calls.
async fn state(State(carrier): State<Shared>) -> Json<Value> {
    let memory = carrier.memory.lock();
    Json(json!({
        "shipments": memory.shipments.len(),
        "labelsBought": memory.labels_bought,
        "trackers": memory.trackers.len(),
        "calls": memory.calls,
        "failNext": memory.fail_next,
        "delayMs": memory.delay.as_millis() as u64,
        "outage": carrier.outage.get().as_str(),
    }))
}
