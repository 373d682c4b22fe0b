//! The sandbox's own routes under `/sandbox/...` (not PayPal's): the outage drill, webhook
//! replay and listing, a state summary, and the lifetime of new tokens.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::Shared;
use super::webhooks;
use crate::local::sandbox::listener;

/// The admin routes, to merge beside PayPal's (they are not behind the outage gate).
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/sandbox/outage", post(outage))
        .route("/sandbox/webhooks", get(events))
        .route("/sandbox/webhooks/replay/{event_id}", post(replay))
        .route("/sandbox/state", get(state))
        .route("/sandbox/token-lifetime", post(token_lifetime))
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

/// `POST /sandbox/outage` `{"mode":"unavailable"|"refuse"|"none"}`.
async fn outage(State(sandbox): State<Shared>, body: axum::body::Bytes) -> Response {
    listener::set_outage(&sandbox.outage, &body)
}

/// `GET /sandbox/webhooks`: every event recorded, oldest first.
async fn events(State(sandbox): State<Shared>) -> Json<Value> {
    let inner = sandbox.memory.lock();
    let events: Vec<Value> = inner
        .events
        .iter()
        .map(|event| {
            json!({
                "id": event.id,
                "event_type": event.event_type,
                "attempts": event.attempts,
                "delivered": event.delivered,
            })
        })
        .collect();
    Json(json!({"events": events}))
}

/// `POST /sandbox/webhooks/replay/{event_id}`: delivers a stored event again.
async fn replay(State(sandbox): State<Shared>, Path(event_id): Path<String>) -> Response {
    let known = sandbox
        .memory
        .lock()
        .events
        .iter()
        .any(|event| event.id == event_id);
    if !known {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such event"})),
        )
            .into_response();
    }
    if sandbox.config.webhook_url.is_none() {
        return bad_request("no webhook URL is configured");
    }
    webhooks::spawn_delivery(&sandbox, event_id.clone());
    (StatusCode::ACCEPTED, Json(json!({"replayed": event_id}))).into_response()
}

/// `GET /sandbox/state`: counts, and attempts per `PayPal-Request-Id`.
async fn state(State(sandbox): State<Shared>) -> Json<Value> {
    let inner = sandbox.memory.lock();
    Json(json!({
        "orders": inner.orders.len(),
        "authorizations": inner.authorizations.len(),
        "captures": inner.captures.len(),
        "refunds": inner.refunds.len(),
        "webhook_events": inner.events.len(),
        "request_attempts": inner.attempts,
        "outage": sandbox.outage.get().as_str(),
    }))
}

#[derive(Deserialize)]
struct LifetimeRequest {
    seconds: u64,
}

/// `POST /sandbox/token-lifetime` `{"seconds":N}`: for tokens issued from now on.
async fn token_lifetime(State(sandbox): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<LifetimeRequest>(&body) else {
        return bad_request("expected {\"seconds\": N}");
    };
    sandbox
        .memory
        .set_token_lifetime(Duration::from_secs(request.seconds));
    Json(json!({"seconds": request.seconds})).into_response()
}
