//! `Health`: liveness and readiness (HTTP trigger, route `health/{check}`).
//!
//! - `GET /api/health/live`: the process answers.
//! - `GET /api/health/ready`: every configured backend answers within a short timeout; `503`
//!   with a problem document naming the failing backend otherwise. The answer also reports the
//!   outbox: `outbox.lagSeconds`, the age of the oldest message not yet relayed; past
//!   `OUTBOX_LAG_DEGRADED_SECONDS` the status is `degraded` (still `200`: the API works, its
//!   messages are late). It reports the remote services too (`outbound`: each one's circuit
//!   breaker, `closed`, `open` or `halfOpen`): a breaker that is not closed makes it `degraded`
//!   (still `200`: only the calls to that service fail fast).

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
        let outbox = outbox_state(state).await;
        let outbound = &state.outbound.registry;
        let status = if outbox.degraded || outbound.any_degraded() {
            "degraded"
        } else {
            "ready"
        };
        return Json(json!({
            "status": status,
            "checks": checks,
            "outbox": outbox.report,
            "outbound": outbound.snapshot(),
        }))
        .into_response();
    }
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not Ready")
        .detail(format!("backend not reachable: {}", failing.join(", ")))
        .extension("checks", Value::Object(checks))
        .into_response()
}

/// The outbox as readiness reports it.
struct OutboxState {
    report: Value,
    degraded: bool,
}

/// The relay's lag: the age of the oldest unrelayed record, against the threshold.
async fn outbox_state(state: &AppState) -> OutboxState {
    let threshold = state.settings.outbox.lag_degraded_after;
    let oldest = tokio::time::timeout(CHECK_TIMEOUT, state.ports.outbox.oldest_unrelayed()).await;
    match oldest {
        Ok(Ok(oldest)) => {
            let lag = shared::outbox::lag(oldest, shared::domain::now());
            let degraded = lag > threshold;
            OutboxState {
                report: json!({
                    "lagSeconds": lag.as_secs_f64(),
                    "degradedAfterSeconds": threshold.as_secs(),
                    "status": if degraded { "behind" } else { "ok" },
                }),
                degraded,
            }
        }
        Ok(Err(error)) => OutboxState {
            report: json!({ "status": format!("unknown: {error}") }),
            degraded: true,
        },
        Err(_) => OutboxState {
            report: json!({ "status": format!("unknown: no answer within {} s", CHECK_TIMEOUT.as_secs()) }),
            degraded: true,
        },
    }
}
