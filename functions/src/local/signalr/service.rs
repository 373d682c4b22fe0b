//! The service's client endpoint: negotiate, then the JSON hub protocol over WebSocket.
//!
//! `POST /signalr/client/negotiate?hub=h&negotiateVersion=1` with `Authorization: Bearer
//! <accessToken>` answers a connection id and token and the one transport offered (WebSockets).
//! `GET /signalr/client/?hub=h&id=<connectionToken>` upgrades to a WebSocket; the access token
//! comes again in the `Authorization` header (Node) or as `access_token` (browsers). Then:
//! the handshake `{"protocol":"json","version":1}` answered `{}`, server pings (type 6) every
//! [`PING_INTERVAL`], invocations (type 1) pushed by the `signalR` output, close (type 7).

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::hub::{Hub, RECORD_SEPARATOR};
use super::{LocalSignalR, Pending, CLIENT_PATH};
use crate::problem::Problem;

/// How often the server pings (the client gives up after 30 s of silence).
pub const PING_INTERVAL: Duration = Duration::from_secs(15);

/// The service's routes, to merge into the local server.
pub fn routes(service: LocalSignalR) -> Router {
    Router::new()
        .route(&format!("{CLIENT_PATH}negotiate"), post(negotiate))
        .route(CLIENT_PATH, get(connect))
        .route(CLIENT_PATH.trim_end_matches('/'), get(connect))
        .with_state(service)
}

#[derive(Deserialize)]
struct ClientQuery {
    hub: Option<String>,
    id: Option<String>,
    access_token: Option<String>,
}

/// The user the request's access token names, or why it is refused (the 401's detail).
fn authenticate(
    service: &LocalSignalR,
    headers: &HeaderMap,
    query: &ClientQuery,
) -> Result<String, String> {
    let hub = query
        .hub
        .as_deref()
        .ok_or_else(|| "name the hub: ?hub=notifications".to_owned())?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let token = bearer
        .or_else(|| query.access_token.clone())
        .ok_or_else(|| "an access token from the app's negotiate is required".to_owned())?;
    let audience = service.service_url(hub);
    service
        .key()
        .verify(&token, &audience, chrono::Utc::now().timestamp())
        .map(|claims| claims.nameid)
        .map_err(|error| {
            tracing::info!(reason = %error, "local SignalR: access token refused");
            error.to_string()
        })
}

/// The 401 of a refused token.
fn unauthorized(detail: String) -> Response {
    Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized")
        .detail(detail)
        .into_response()
}

async fn negotiate(
    State(service): State<LocalSignalR>,
    headers: HeaderMap,
    Query(query): Query<ClientQuery>,
) -> Response {
    let user_id = match authenticate(&service, &headers, &query) {
        Ok(user) => user,
        Err(detail) => return unauthorized(detail),
    };
    let connection_id = uuid::Uuid::new_v4().to_string();
    let connection_token = uuid::Uuid::new_v4().to_string();
    service.remember(
        connection_token.clone(),
        Pending {
            connection_id: connection_id.clone(),
            user_id,
        },
    );
    Json(json!({
        "negotiateVersion": 1,
        "connectionId": connection_id,
        "connectionToken": connection_token,
        "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}],
    }))
    .into_response()
}

async fn connect(
    State(service): State<LocalSignalR>,
    headers: HeaderMap,
    Query(query): Query<ClientQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let user_id = match authenticate(&service, &headers, &query) {
        Ok(user) => user,
        Err(detail) => return unauthorized(detail),
    };
    let Ok(upgrade) = upgrade else {
        return Problem::new(StatusCode::BAD_REQUEST, "Bad Request")
            .detail("this endpoint speaks WebSocket only")
            .into_response();
    };
    let pending = query
        .id
        .as_deref()
        .and_then(|token| service.take_pending(token))
        .filter(|pending| pending.user_id == user_id);
    let Some(pending) = pending else {
        return Problem::not_found("no negotiated connection of this user has that id")
            .into_response();
    };
    let hub = service.hub().clone();
    upgrade.on_upgrade(move |socket| run_connection(socket, hub, pending))
}

/// One client connection, from the handshake to its close.
async fn run_connection(mut socket: WebSocket, hub: Hub, pending: Pending) {
    if !handshake(&mut socket).await {
        return;
    }
    let (outbox, mut inbox) = mpsc::unbounded_channel::<String>();
    hub.join(&pending.connection_id, &pending.user_id, outbox);
    tracing::info!(connection_id = %pending.connection_id, "local SignalR: connection open");
    let mut pings = tokio::time::interval(PING_INTERVAL);
    pings.tick().await;
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if !answer_client(&mut socket, text.as_str()).await {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            Some(frame) = inbox.recv() => {
                if socket.send(Message::Text(frame.into())).await.is_err() {
                    break;
                }
            }
            _ = pings.tick() => {
                if socket.send(Message::Text(frame(&json!({"type": 6})).into())).await.is_err() {
                    break;
                }
            }
        }
    }
    hub.leave(&pending.connection_id);
    tracing::info!(connection_id = %pending.connection_id, "local SignalR: connection closed");
}

/// Reads the handshake request and answers it; false when the connection is to end.
async fn handshake(socket: &mut WebSocket) -> bool {
    let Some(Ok(Message::Text(text))) = socket.recv().await else {
        return false;
    };
    let request: Option<Value> = text
        .as_str()
        .split(RECORD_SEPARATOR)
        .next()
        .and_then(|record| serde_json::from_str(record).ok());
    let protocol = request
        .as_ref()
        .and_then(|value| value.get("protocol"))
        .and_then(Value::as_str);
    let answer = match protocol {
        Some("json") => json!({}),
        Some(other) => {
            json!({"error": format!("the protocol {other:?} is not supported; use json")})
        }
        None => json!({"error": "the handshake request is not valid JSON"}),
    };
    let accepted = answer.get("error").is_none();
    let sent = socket
        .send(Message::Text(frame(&answer).into()))
        .await
        .is_ok();
    sent && accepted
}

/// Handles the client's records; false when the client closed the connection.
async fn answer_client(socket: &mut WebSocket, text: &str) -> bool {
    for record in text.split(RECORD_SEPARATOR).filter(|r| !r.is_empty()) {
        let Ok(message) = serde_json::from_str::<Value>(record) else {
            continue;
        };
        match message.get("type").and_then(Value::as_u64) {
            Some(7) => return false,
            // An invocation the client waits for: this hub has no server methods.
            Some(1) | Some(4) => {
                if let Some(id) = message.get("invocationId") {
                    let completion = json!({"type": 3, "invocationId": id,
                        "error": "this hub has no methods clients can call"});
                    if socket
                        .send(Message::Text(frame(&completion).into()))
                        .await
                        .is_err()
                    {
                        return false;
                    }
                }
            }
            _ => {}
        }
    }
    true
}

/// A JSON hub protocol record.
fn frame(value: &Value) -> String {
    let mut text = value.to_string();
    text.push(RECORD_SEPARATOR);
    text
}
