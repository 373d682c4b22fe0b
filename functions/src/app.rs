//! The custom handler's HTTP surface: what the Functions host (or the local runtime) calls.
//!
//! - `GET /`: answered at once; the host polls it to learn the handler is up.
//! - `POST /{FunctionName}`: an invocation envelope for a timer, Service Bus, or enveloped HTTP
//!   function.
//! - `/api/...`: forwarded HTTP requests, served by the HTTP functions' routes.
//!
//! Every request runs in a `tracing` span carrying the function name, the host's invocation id
//! (`X-Azure-Functions-InvocationId`) and the W3C trace id (`traceparent`, or a new one).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;

use crate::api::openapi::ApiDocument;
use crate::envelope::{ready_probe, run_envelope};
use crate::problem::Problem;
use crate::registry;
use crate::startup::AppState;

/// Largest invocation envelope accepted (Service Bus Premium allows messages up to 100 MB; the
/// envelope adds little). HTTP API bodies have their own, smaller limit (`HTTP_BODY_LIMIT_BYTES`).
const ENVELOPE_LIMIT_BYTES: usize = 128 * 1024 * 1024;

/// The routes of every HTTP function (`/api/...`), with the API body limit.
pub fn api_router(state: AppState) -> Router {
    let body_limit = state.settings.http_body_limit_bytes;
    crate::api::openapi::router(registry::operations())
        .fallback(|| async { Problem::not_found("no API route matches this path") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
            )
            .detail("this path does not accept this method; see /api/v1/openapi.json")
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(Extension(ApiDocument::new(registry::operations)))
        .layer(crate::api::NotModifiedLayer)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::api::security::watch_failures,
        ))
        .layer(crate::api::caller::CorrelateLayer)
        .with_state(state)
}

/// What the envelope route needs, shared behind one `Arc` (one reference count per request).
struct Envelopes {
    state: AppState,
    api: Router,
}

/// The whole handler: probe, invocation envelopes and forwarded HTTP requests.
pub fn handler_router(state: AppState) -> Router {
    let api = api_router(state.clone());
    let envelopes = Router::new()
        .route("/{function}", post(invoke_function))
        .layer(DefaultBodyLimit::max(ENVELOPE_LIMIT_BYTES))
        .with_state(Arc::new(Envelopes {
            state,
            api: api.clone(),
        }));
    Router::new()
        .route("/", get(ready_probe))
        .merge(envelopes)
        .merge(api)
        .layer(crate::invocation_span::InvocationSpanLayer)
}

async fn invoke_function(
    State(envelopes): State<Arc<Envelopes>>,
    Path(function): Path<String>,
    body: Bytes,
) -> Response {
    match registry::find(&function) {
        Some(def) => run_envelope(&envelopes.state, &envelopes.api, def, &body).await,
        None => Problem::not_found(format!("no function named {function:?} in this app"))
            .into_response(),
    }
}
