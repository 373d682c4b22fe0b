//! `Health`: liveness and readiness (HTTP trigger, route `health/{check}`).
//!
//! - `GET /api/health/live`: the process answers.
//! - `GET /api/health/ready`: every configured backend answers within a short timeout; `503`
//!   with a problem document naming the failing backend otherwise.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::openapi::{Access, Operation};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::problem::Problem;
use crate::startup::AppState;

/// How long one backend may take to answer the readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The operations of this function (routes and their documentation).
pub fn operations() -> Vec<Operation> {
    vec![Operation::new(
        Method::GET,
        "/api/health/{check}",
        "health",
        "`live`: the process answers; `ready`: every backend answers",
        get(health),
    )
    .tag("health")
    .access(Access::Anonymous)
    .returns_nothing(200, "Live, or ready with the state of each backend")
    .errors(&[404, 503])]
}

async fn health(State(state): State<AppState>, Path(check): Path<String>) -> Response {
    match check.as_str() {
        "live" => Json(json!({ "status": "live" })).into_response(),
        "ready" => ready(&state).await,
        other => Problem::not_found(format!("unknown health check {other:?}; use live or ready"))
            .into_response(),
    }
}

async fn ready(state: &AppState) -> Response {
    // All backends are checked at once, so the whole check takes at most one timeout.
    let pending: Vec<_> = state
        .health_checks
        .iter()
        .map(|backend| {
            let backend = std::sync::Arc::clone(backend);
            tokio::spawn(async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, backend.ping()).await {
                    Ok(Ok(())) => "ok".to_owned(),
                    Ok(Err(error)) => format!("failing: {error}"),
                    Err(_) => format!("failing: no answer within {} s", CHECK_TIMEOUT.as_secs()),
                };
                (backend.backend(), outcome)
            })
        })
        .collect();
    let mut checks = Map::new();
    let mut failing = Vec::new();
    for task in pending {
        let (backend, outcome) = task
            .await
            .unwrap_or(("unknown", "failing: the check panicked".to_owned()));
        if outcome != "ok" {
            failing.push(backend);
        }
        checks.insert(backend.to_owned(), Value::String(outcome));
    }
    if failing.is_empty() {
        return Json(json!({ "status": "ready", "checks": checks })).into_response();
    }
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not Ready")
        .detail(format!("backend not reachable: {}", failing.join(", ")))
        .extension("checks", Value::Object(checks))
        .into_response()
}
