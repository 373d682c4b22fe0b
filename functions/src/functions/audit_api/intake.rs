//! `POST /api/v1/audit/logs`: the audit-log intake for other services of the platform. Only an
//! app-only token with the app role `audit.writer` may call it ([`AppCaller`]); every user
//! token, an admin's included, is 403. The body holds ids only: one that holds anything that
//! looks like an email address or a phone number is refused with 400 before it is parsed, and
//! is neither stored nor logged. The entry is written in the token's tenant with the calling app
//! as actor (`app:<app id>`), once per `eventId`: the same event again answers 200 with the
//! stored entry (`Idempotent-Replayed: true`), the same `eventId` with another body is 422.

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use serde_json::Value;
use shared::domain::audit::AuditEntry;
use shared::domain::audit_intake::{same_event, AuditLogInput};
use shared::domain::contact_data::{contains_email, contains_phone_number};
use shared::store::AuditRecorded;

use crate::api::openapi::{Access, Operation};
use crate::api::{ApiError, AppCaller, JsonBody};
use crate::startup::AppState;

/// The declaration of `POST /api/v1/audit/logs`.
pub(super) fn operation() -> Operation {
    Operation::new(
        Method::POST,
        "/api/v1/audit/logs",
        "recordAuditLog",
        "Record an audit entry sent by another service (ids only; idempotent on eventId)",
        post(record),
    )
    .access(Access::SignedIn(
        "services of the platform only: an app-only token (client credentials) with the app role audit.writer; user tokens, admin included, get 403",
    ))
    .body::<AuditLogInput>()
    .example(|| {
        serde_json::json!({"eventId": "evt-20260115-0001", "action": "invoice.issue", "targetType": "invoice", "targetId": "inv-4711", "customerId": "6f1c2b9a-0d3e-4f7a-9b1c-2d3e4f5a6b7c", "occurredAt": "2026-01-15T09:30:00Z"})
    })
    .returns::<AuditEntry>(201, "Recorded")
    .also_returns(&[(
        200,
        "The same event again: the entry recorded the first time (header Idempotent-Replayed: true)",
    )])
    .errors(&[400, 401, 403, 413, 415, 422])
}

async fn record(
    State(state): State<AppState>,
    caller: AppCaller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    refuse_contact_data(&body, &caller)?;
    let input: AuditLogInput = body.parse()?;
    input.validate(chrono::Utc::now())?;
    let entry = input.entry(
        caller.tenant().as_str(),
        &caller.actor_id(),
        &caller.correlation_id,
    );
    match state
        .ports
        .audit
        .record_audit_once(caller.tenant(), entry.clone())
        .await?
    {
        AuditRecorded::New(stored) => Ok((StatusCode::CREATED, Json(stored)).into_response()),
        AuditRecorded::Existing(stored) if same_event(&stored, &entry) => {
            let mut response = (StatusCode::OK, Json(stored)).into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        AuditRecorded::Existing(_) => Err(ApiError::EventIdReused(format!(
            "eventId {} was recorded before with another body; send a new eventId for another event",
            input.event_id
        ))),
    }
}

/// 400 when the body holds something that looks like an email address or a phone number, as
/// sent or once its JSON escapes are decoded (`\u0040`). Only the app's id is logged.
fn refuse_contact_data(body: &JsonBody, caller: &AppCaller) -> Result<(), ApiError> {
    let Some(raw) = body.raw() else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(raw);
    let decoded = serde_json::from_slice::<Value>(raw)
        .map(|value| strings(&value).join("\n"))
        .unwrap_or_default();
    let found = [text.as_ref(), decoded.as_str()]
        .iter()
        .any(|text| contains_email(text) || contains_phone_number(text));
    if found {
        tracing::warn!(
            app = %caller.principal.subject,
            "an audit intake request with contact data was refused"
        );
        return Err(ApiError::ContactDataRefused);
    }
    Ok(())
}

/// Every key and string of a JSON value, each on its own.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Number(number) => vec![number.to_string()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, value)| std::iter::once(key.clone()).chain(strings(value)))
            .collect(),
        Value::Bool(_) | Value::Null => Vec::new(),
    }
}
