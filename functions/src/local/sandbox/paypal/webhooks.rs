//! Webhook events: recorded with their raw body when something happens, then posted to the
//! app in the background, signed as PayPal signs them, retried with backoff. Also PayPal's
//! cert URL, and the event `GET` / `resend` routes.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::auth::Authorized;
use super::context::{Sandbox, Shared};
use super::errors::{Api, ApiError};
use super::ids;
use super::render;
use super::state::{CaptureStatus, Inner, StoredEvent};

/// Records an event about `resource`; returns its id for [`spawn_delivery`].
pub fn record(
    inner: &mut Inner,
    base: &str,
    event_type: &str,
    resource_type: &str,
    summary: String,
    resource: Value,
) -> String {
    let id = ids::event_id();
    let href = format!("{base}/v1/notifications/webhooks-events/{id}");
    let body = json!({
        "id": id,
        "event_version": "1.0",
        "create_time": render::time(chrono::Utc::now()),
        "resource_type": resource_type,
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": summary,
        "resource": resource,
        "links": [
            {"href": href, "rel": "self", "method": "GET"},
            {"href": format!("{href}/resend"), "rel": "resend", "method": "POST"},
        ],
    });
    inner.events.push(StoredEvent {
        id: id.clone(),
        event_type: event_type.to_owned(),
        body: body.to_string(),
        attempts: 0,
        delivered: 0,
    });
    id
}

/// Records the event a capture's current status announces.
pub fn record_capture(inner: &mut Inner, base: &str, capture_id: &str) -> Option<String> {
    let capture = inner.captures.get(capture_id)?;
    let (event_type, verb) = match capture.status {
        CaptureStatus::Completed => ("PAYMENT.CAPTURE.COMPLETED", "completed"),
        CaptureStatus::Pending => ("PAYMENT.CAPTURE.PENDING", "pending"),
        CaptureStatus::Declined => ("PAYMENT.CAPTURE.DENIED", "denied"),
        CaptureStatus::PartiallyRefunded | CaptureStatus::Refunded => return None,
    };
    let summary = format!(
        "Payment {verb} for {} {}",
        capture.amount.value(),
        capture.amount.currency
    );
    let resource = render::capture(base, inner, capture, true);
    Some(record(
        inner, base, event_type, "capture", summary, resource,
    ))
}

/// Posts the event to the webhook URL, if one is set, in the background.
pub fn spawn_delivery(sandbox: &Shared, event_id: String) {
    if sandbox.config.webhook_url.is_some() {
        sandbox.spawn(deliver(sandbox.clone(), event_id));
    }
}

/// Up to `webhook_max_attempts` tries, the wait doubling after each failure.
async fn deliver(sandbox: Shared, event_id: String) {
    let Some(url) = sandbox.config.webhook_url.clone() else {
        return;
    };
    let mut wait = sandbox.config.scaled(sandbox.config.webhook_retry_delay);
    let attempts = sandbox.config.webhook_max_attempts.max(1);
    for attempt in 1..=attempts {
        let body = {
            let mut inner = sandbox.memory.lock();
            let Some(event) = inner.event_mut(&event_id) else {
                return;
            };
            event.attempts += 1;
            event.body.clone()
        };
        let delivered = send_once(&sandbox, &url, body).await;
        tracing::debug!(%event_id, attempt, delivered, "PayPal sandbox webhook delivery");
        if delivered {
            if let Some(event) = sandbox.memory.lock().event_mut(&event_id) {
                event.delivered += 1;
            }
            return;
        }
        if attempt < attempts {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
}

/// One signed `POST`; whether the app answered 2xx.
async fn send_once(sandbox: &Sandbox, url: &str, body: String) -> bool {
    let transmission_id = uuid::Uuid::new_v4().to_string();
    let transmission_time = render::time(chrono::Utc::now());
    let signature = sandbox.signer.transmission_sig(
        &transmission_id,
        &transmission_time,
        &sandbox.config.webhook_id,
        body.as_bytes(),
    );
    let cert_url = format!(
        "{}/v1/notifications/certs/{}",
        sandbox.base_url,
        sandbox.signer.cert_id()
    );
    let sent = sandbox
        .http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header("PAYPAL-TRANSMISSION-ID", transmission_id)
        .header("PAYPAL-TRANSMISSION-TIME", transmission_time)
        .header("PAYPAL-AUTH-ALGO", "SHA256withRSA")
        .header("PAYPAL-AUTH-VERSION", "v2")
        .header("PAYPAL-CERT-URL", cert_url)
        .header("PAYPAL-TRANSMISSION-SIG", signature)
        .body(body)
        .send()
        .await;
    matches!(sent, Ok(response) if response.status().is_success())
}

/// `GET /v1/notifications/certs/{cert_id}`: the signing certificate, PEM.
pub async fn cert(State(sandbox): State<Shared>, Path(cert_id): Path<String>) -> Response {
    if cert_id != sandbox.signer.cert_id() {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        sandbox.signer.cert_pem().to_owned(),
    )
        .into_response()
}

/// The stored body of an event, as JSON.
fn event_json(sandbox: &Sandbox, id: &str) -> Result<Value, ApiError> {
    let inner = sandbox.memory.lock();
    let event = inner
        .events
        .iter()
        .find(|event| event.id == id)
        .ok_or_else(|| ApiError::not_found(Api::Orders, id))?;
    serde_json::from_str(&event.body).map_err(|_| ApiError::not_found(Api::Orders, id))
}

/// `GET /v1/notifications/webhooks-events/{id}`.
pub async fn show(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    event_json(&sandbox, &id).map(Json)
}

/// `POST /v1/notifications/webhooks-events/{id}/resend`: delivers the event again.
pub async fn resend(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let event = event_json(&sandbox, &id)?;
    spawn_delivery(&sandbox, id);
    Ok((StatusCode::ACCEPTED, Json(event)))
}

/// A `sandbox-slow` capture becomes `COMPLETED` after the configured delay, with its webhook.
pub async fn complete_later(sandbox: Shared, capture_id: String) {
    tokio::time::sleep(sandbox.config.scaled(sandbox.config.slow_capture_delay)).await;
    let event = {
        let mut inner = sandbox.memory.lock();
        let Some(capture) = inner.captures.get_mut(&capture_id) else {
            return;
        };
        if capture.status != CaptureStatus::Pending {
            return;
        }
        capture.status = CaptureStatus::Completed;
        capture.update_time = Utc::now();
        record_capture(&mut inner, &sandbox.base_url, &capture_id)
    };
    if let Some(event) = event {
        spawn_delivery(&sandbox, event);
    }
}
