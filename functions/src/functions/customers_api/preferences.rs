//! Notification preferences under `/api/v1/customers/{id}/preferences`:
//!
//! - `GET /customers/{id}/preferences`: every event type (`order.created`, ..., `marketing`,
//!   `message`) with its channels (`realtime`, `email`, `sms`) on or off; the defaults (every
//!   channel on, no `updatedAt`, ETag `"defaults"`) while the customer never set any.
//! - `PUT /customers/{id}/preferences` with `{"eventTypes": {"order.shipped": {"sms": false}}}`:
//!   replaces the whole document; event types and channels left out are on; an unknown event
//!   type or channel is `400` naming the allowed ones. `If-Match` (the ETag read) → `412` when
//!   they changed since.
//!
//! Who: a client for their own customer id; employees read any customer's of their tenant
//! (recorded in the GDPR read trail as `preferences.read`), `admin` and `customer-service`
//! change them (audited as `preferences.update`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Json;
use shared::domain::customer::CustomerStatus;
use shared::domain::preferences::{Preferences, PreferencesInput};
use shared::domain::tenant::TenantId;
use shared::store::StoreError;

use super::{check_read, check_write};
use crate::api::openapi::{Access, Operation};
use crate::api::{etag_header, if_match, ApiError, Caller, JsonBody};
use crate::startup::AppState;

/// A change of the preferences just answered, conditional on their ETag.
const CHANGE_LINK: &[crate::api::openapi::Link] = &[(
    "putPreferences",
    &[
        ("id", "$request.path.id"),
        ("header.If-Match", "$response.header.ETag"),
    ],
)];

/// Where a replaced document leads: reading it, and changing it again.
const PUT_LINKS: &[crate::api::openapi::Link] = &[
    ("getPreferences", &[("id", "$request.path.id")]),
    CHANGE_LINK[0],
];

/// The declarations of the preference operations.
pub(super) fn operations() -> Vec<Operation> {
    vec![
        Operation::new(
            Method::GET,
            "/api/v1/customers/{id}/preferences",
            "getPreferences",
            "The customer's notification preferences: per event type, each channel on or off",
            get(read),
        )
        .access(Access::SignedIn("employees; a client only for their own customer id"))
        .returns::<Preferences>(200, "Every event type with its channels; ETag header set")
        .links(CHANGE_LINK),
        Operation::new(
            Method::PUT,
            "/api/v1/customers/{id}/preferences",
            "putPreferences",
            "Replace the customer's notification preferences (what is left out is on)",
            put(replace),
        )
        .access(Access::SignedIn(
            "admin, customer-service; a client only for their own customer id",
        ))
        .headers(&[("If-Match", "the ETag you read; 412 when it changed since")])
        .body::<PreferencesInput>()
        .example(|| serde_json::json!({"eventTypes": {"order.shipped": {"realtime": true, "email": true, "sms": false}, "marketing": {"realtime": false, "email": true, "sms": false}}}))
        .returns::<Preferences>(200, "Replaced; the whole document as it stands, new ETag")
        .links(PUT_LINKS)
        .errors(&[400, 401, 403, 404, 409, 412, 413, 415]),
    ]
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_read(&caller, &id)?;
    super::load_for_read(&state, &caller, &id, "preferences.read").await?;
    Ok(answer(preferences(&state, caller.tenant(), &id).await?))
}

async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    check_write(&caller, &id, "change notification preferences")?;
    let if_match = if_match(&headers)?;
    let input: PreferencesInput = body.parse()?;
    let wanted = input.resolve(&id)?;
    let customer = state
        .ports
        .customers
        .get_customer(caller.tenant(), &id)
        .await?;
    if customer.status != CustomerStatus::Active {
        return Err(ApiError::Store(StoreError::Conflict(
            "the customer's erasure was requested; preferences can no longer be changed".into(),
        )));
    }
    let audit = caller
        .audit("preferences.update", "customer", &id)
        .about_customer(&id);
    let stored = state
        .ports
        .preferences
        .put_preferences(caller.tenant(), wanted, if_match, audit)
        .await?;
    Ok(answer(stored))
}

/// The customer's preferences as they stand (the caller checked the customer exists).
pub(super) async fn preferences(
    state: &AppState,
    tenant: &TenantId,
    customer_id: &str,
) -> Result<Preferences, ApiError> {
    Ok(state
        .ports
        .preferences
        .effective_preferences(tenant, customer_id)
        .await?)
}

fn answer(preferences: Preferences) -> Response {
    (
        StatusCode::OK,
        [etag_header(&preferences.etag)],
        Json(preferences),
    )
        .into_response()
}
