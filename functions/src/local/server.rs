//! The local runtime's HTTP server on `127.0.0.1:7071`.
//!
//! - `/api/...`: matched to an HTTP function by its route; forwarded as is, or wrapped in the
//!   `req` envelope for functions with output bindings, exactly as the host decides.
//!   Input bindings (`signalRConnectionInfo`) are resolved first, as the host does.
//!   A 401 for a dev token signed with another `DATA_DIR`'s key says so (`dev_token_hint`).
//! - `GET /admin/functions`, `POST /admin/functions/{name}` (`{"input": "..."}`): the host's
//!   admin API for listing and running non-HTTP functions (a timer ignores `input`, as with
//!   the host; a Service Bus function needs it).
//! - `POST /admin/queues/{queue-or-topic}/messages` (the body is the message body),
//!   `GET /admin/messages?entity=...`, `GET /admin/deadletters[?entity=...]`,
//!   `POST /admin/deadletters/{sequence}/replay`: the embedded queue (an entity the app does
//!   not have is a 404, not an empty list).
//! - `/signalr/client/...`: the local SignalR service, and `/live`, the live view
//!   ([`super::signalr`]).

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use shared::protocol::HttpRequestData;
use shared::store::StoreError;

use super::host::{json_response, response_from_reply, Reason};
use super::queue::NewMessage;
use super::{LocalError, LocalRuntime};
use crate::problem::Problem;
use crate::registry::{self, RouteMatch, FUNCTIONS};

pub fn router(runtime: LocalRuntime) -> Router {
    let signalr = runtime
        .host
        .signalr()
        .map(|service| {
            super::signalr::routes(service.clone()).merge(super::signalr::live_view_routes())
        })
        .unwrap_or_default();
    Router::new()
        .route("/admin/functions", get(list_functions))
        .route("/admin/functions/{name}", post(invoke_function))
        .route("/admin/queues/{name}/messages", post(send_message))
        .route("/admin/messages", get(peek_messages))
        .route("/admin/deadletters", get(list_dead_letters))
        .route(
            "/admin/deadletters/{sequence}/replay",
            post(replay_dead_letter),
        )
        .fallback(dispatch_http)
        .with_state(runtime)
        .merge(signalr)
}

async fn list_functions() -> Json<Value> {
    let functions: Vec<Value> = FUNCTIONS
        .iter()
        .map(|def| json!({ "name": def.name, "config": def.function_json() }))
        .collect();
    Json(Value::Array(functions))
}

#[derive(Deserialize, Default)]
struct AdminInvoke {
    #[serde(default)]
    input: Option<String>,
}

/// `POST /admin/functions/{name}`: 202 with the outcome, as the host answers 202.
async fn invoke_function(
    State(runtime): State<LocalRuntime>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let request: AdminInvoke = if body.is_empty() {
        AdminInvoke::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => {
                return Problem::new(StatusCode::BAD_REQUEST, "Bad Request")
                    .detail(format!("expected {{\"input\": \"...\"}}: {error}"))
                    .into_response()
            }
        }
    };
    // The host's admin API takes `{"input": ""}` for a timer and ignores it.
    let is_timer = registry::find(&name)
        .is_some_and(|def| matches!(def.trigger, registry::Trigger::Timer { .. }));
    let input = request.input.filter(|_| !is_timer);
    match runtime.invoke_now(&name, input).await {
        Ok(reply) => json_response(
            StatusCode::ACCEPTED,
            &json!({ "function": name, "status": "succeeded", "reply": reply }),
        ),
        Err(error @ (LocalError::UnknownFunction(_) | LocalError::HttpFunction(_))) => {
            Problem::new(StatusCode::NOT_FOUND, "Not Found")
                .detail(error.to_string())
                .into_response()
        }
        Err(LocalError::MissingMessage { function, entity }) => {
            Problem::new(StatusCode::BAD_REQUEST, "Bad Request")
                .detail(format!("{function} is triggered by Service Bus ({entity}), so it needs a message; send {{\"input\": \"<message body>\"}}"))
                .into_response()
        }
        Err(error) => json_response(
            StatusCode::ACCEPTED,
            &json!({ "function": name, "status": "failed", "error": error.to_string() }),
        ),
    }
}

/// `POST /admin/queues/{name}/messages`: sends the request body as one message.
async fn send_message(
    State(runtime): State<LocalRuntime>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(target) = registry::target_named(&name) else {
        return Problem::not_found(format!("no queue or topic named {name:?} in this app"))
            .into_response();
    };
    let header = |key: &str| {
        headers
            .get(key)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let message = NewMessage {
        body: String::from_utf8_lossy(&body).into_owned(),
        message_id: header("x-message-id"),
        correlation_id: header("x-correlation-id"),
        content_type: header("content-type"),
        application_properties: Map::new(),
    };
    match runtime.host.queue().send(target, message).await {
        Ok(numbers) => json_response(StatusCode::CREATED, &json!({ "sequenceNumbers": numbers })),
        Err(error) => store_problem(&error),
    }
}

#[derive(Deserialize)]
struct EntityQuery {
    entity: Option<String>,
}

async fn peek_messages(
    State(runtime): State<LocalRuntime>,
    Query(query): Query<EntityQuery>,
) -> Response {
    let Some(entity) = query.entity else {
        return Problem::new(StatusCode::BAD_REQUEST, "Bad Request")
            .detail("name the queue or subscription: ?entity=gdpr-requests")
            .into_response();
    };
    if let Err(error) = super::check_entity(&entity) {
        return Problem::not_found(error.to_string()).into_response();
    }
    match runtime.host.queue().peek(&entity).await {
        Ok(messages) => Json(json!(messages)).into_response(),
        Err(error) => store_problem(&error),
    }
}

async fn list_dead_letters(
    State(runtime): State<LocalRuntime>,
    Query(query): Query<EntityQuery>,
) -> Response {
    if let Some(Err(error)) = query.entity.as_deref().map(super::check_entity) {
        return Problem::not_found(error.to_string()).into_response();
    }
    match runtime
        .host
        .queue()
        .dead_letters(query.entity.as_deref())
        .await
    {
        Ok(messages) => Json(json!(messages)).into_response(),
        Err(error) => store_problem(&error),
    }
}

async fn replay_dead_letter(
    State(runtime): State<LocalRuntime>,
    Path(sequence): Path<i64>,
) -> Response {
    match runtime.host.queue().replay(sequence).await {
        Ok(new_sequence) => {
            Json(json!({ "replayed": sequence, "sequenceNumber": new_sequence })).into_response()
        }
        Err(StoreError::NotFound) => {
            Problem::not_found(format!("no dead letter with sequence number {sequence}"))
                .into_response()
        }
        Err(error) => store_problem(&error),
    }
}

fn store_problem(error: &StoreError) -> Response {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Store Unavailable")
        .detail(error.to_string())
        .into_response()
}

/// An `/api/...` request: find the function, then forward it or wrap it, as the host does.
async fn dispatch_http(State(runtime): State<LocalRuntime>, request: Request) -> Response {
    let Some(found) = registry::match_http_route(request.method().as_str(), request.uri().path())
    else {
        return Problem::not_found("no function route matches this path").into_response();
    };
    if !found.function.accepts_method(request.method().as_str()) {
        let allowed = registry::allowed_methods(request.uri().path()).join(", ");
        let mut response = Problem::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
            .detail(format!(
                "{} does not accept {}; this route takes {allowed}",
                found.function.name,
                request.method()
            ))
            .into_response();
        if let Ok(value) = axum::http::HeaderValue::from_str(&allowed) {
            response
                .headers_mut()
                .insert(axum::http::header::ALLOW, value);
        }
        return response;
    }
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let response = if found.function.is_forwarded_http() {
        runtime.host.forward(found.function, request).await
    } else {
        invoke_enveloped(&runtime, found, request).await
    };
    if response.status() != StatusCode::UNAUTHORIZED {
        return response;
    }
    match super::dev_token_hint::foreign_dev_token(authorization.as_ref(), &runtime.state.settings)
    {
        Some(hint) => super::dev_token_hint::with_hint(response, &hint).await,
        None => response,
    }
}

async fn invoke_enveloped(runtime: &LocalRuntime, found: RouteMatch, request: Request) -> Response {
    let limit = runtime.state.settings.http_body_limit_bytes;
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large")
                .detail(format!("the body is larger than {limit} bytes"))
                .into_response()
        }
    };
    let base_url = format!("http://127.0.0.1:{}", runtime.state.settings.local.port);
    let mut data = HttpRequestData::from_http_parts(&parts, &base_url, &bytes);
    data.params = found.params;
    let mut envelope = data.to_host_request(found.function.trigger_binding, found.function.name);
    if let Err(error) =
        super::bindings::resolve_inputs(runtime, found.function, &parts.headers, &mut envelope)
    {
        tracing::warn!(function = found.function.name, %error, "input binding failed");
        return Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Function Failed")
            .detail(error.to_string())
            .into_response();
    }
    match runtime
        .host
        .invoke(found.function, &Reason::HostApi, &envelope)
        .await
    {
        Ok(reply) => response_from_reply(&reply),
        Err(error) => {
            tracing::warn!(function = found.function.name, %error, "HTTP invocation failed");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Function Failed")
                .detail(error.to_string())
                .into_response()
        }
    }
}
