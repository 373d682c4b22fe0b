//! Consents (GDPR art. 7) under `/api/v1/customers/{id}/consents`:
//!
//! - `GET /customers/{id}/consents`: the current state of every purpose (`marketing-email`,
//!   `marketing-sms`, `profiling`) and the full history of grants and withdrawals.
//! - `PUT /customers/{id}/consents/{purpose}` with `{"granted", "noticeVersion", "channel"}`:
//!   records a grant or a withdrawal, with when and by whom. A withdrawal is a record of its
//!   own: the grant before it stays in the history.
//!
//! A client manages their own consents; `admin` and `customer-service` employees anyone's in
//! their tenant. Each change is audited with it (`consent.grant` / `consent.withdraw`).

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Json;
use shared::domain::consent::{ConsentInput, ConsentRecord, Consents, Purpose};
use shared::domain::customer::CustomerStatus;
use shared::domain::tenant::TenantId;
use shared::domain::validation::{new_id, FieldError, Invalid};
use shared::store::StoreError;

use super::check_write;
use crate::api::openapi::{Access, Operation};
use crate::api::{ApiError, Caller, JsonBody};
use crate::startup::AppState;

/// The declarations of the consent operations.
pub(super) fn operations() -> Vec<Operation> {
    const WHO: Access =
        Access::SignedIn("admin, customer-service; a client only for their own customer id");
    vec![
        Operation::new(
            Method::GET,
            "/api/v1/customers/{id}/consents",
            "getConsents",
            "The customer's consents: the current state of every purpose and the full history",
            get(read),
        )
        .access(WHO)
        .returns::<Consents>(200, "Current state per purpose, and every grant and withdrawal, oldest first"),
        Operation::new(
            Method::PUT,
            "/api/v1/customers/{id}/consents/{purpose}",
            "recordConsent",
            "Grant or withdraw a consent for one purpose (a withdrawal keeps the record of the grant)",
            put(record),
        )
        .access(WHO)
        .body::<ConsentInput>()
        .example(|| serde_json::json!({"granted": true, "noticeVersion": "2025-03", "channel": "web"}))
        .returns::<Consents>(200, "Recorded; the customer's consents as they stand now")
        .links(&[("getConsents", &[("id", "$request.path.id")])])
        .errors(&[400, 401, 403, 404, 409, 413, 415]),
    ]
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_write(&caller, &id, "read consents")?;
    super::load_for_read(&state, &caller, &id, "consent.read").await?;
    Ok(Json(consents(&state, caller.tenant(), &id).await?).into_response())
}

async fn record(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, purpose)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    check_write(&caller, &id, "record consents")?;
    let purpose = Purpose::parse(&purpose).ok_or_else(unknown_purpose)?;
    let input: ConsentInput = body.parse()?;
    input.validate()?;
    let customer = state
        .ports
        .customers
        .get_customer(caller.tenant(), &id)
        .await?;
    if customer.status != CustomerStatus::Active {
        return Err(ApiError::Store(StoreError::Conflict(
            "the customer's erasure was requested; consents can no longer be recorded".into(),
        )));
    }
    let record = ConsentRecord {
        id: new_id(),
        tenant_id: caller.tenant().as_str().to_owned(),
        customer_id: id.clone(),
        purpose,
        granted: input.granted,
        notice_version: input.notice_version,
        channel: input.channel,
        recorded_at: shared::domain::now(),
        recorded_by: caller.principal.subject.clone(),
    };
    let action = if record.granted {
        "consent.grant"
    } else {
        "consent.withdraw"
    };
    let audit = caller
        .audit(action, "consent", &record.id)
        .about_customer(&id);
    state
        .ports
        .consents
        .record_consent(caller.tenant(), record, audit)
        .await?;
    Ok(Json(consents(&state, caller.tenant(), &id).await?).into_response())
}

/// The customer's consents as they stand (the caller checked the customer exists).
pub(super) async fn consents(
    state: &AppState,
    tenant: &TenantId,
    customer_id: &str,
) -> Result<Consents, ApiError> {
    let history = state
        .ports
        .consents
        .consent_history(tenant, customer_id)
        .await?;
    Ok(Consents::from_history(customer_id, history))
}

fn unknown_purpose() -> ApiError {
    let known: Vec<&str> = Purpose::ALL
        .iter()
        .map(|purpose| purpose.as_str())
        .collect();
    ApiError::Invalid(Invalid(vec![FieldError {
        field: "purpose".into(),
        message: format!("must be one of {}", known.join(", ")),
    }]))
}
