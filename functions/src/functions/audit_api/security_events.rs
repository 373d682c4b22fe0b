//! `GET /api/v1/audit/security-events`: the findings of breach detection in the caller's tenant
//! (ids, counts, window; never personal data), newest first, paged like the other audit lists;
//! `admin` only.

use axum::extract::State;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use shared::auth::Role;
use shared::security::SecurityEvent;

use crate::api::openapi::{Access, Operation};
use crate::api::{ApiError, Caller, PageResponse, QueryParams};
use crate::startup::AppState;

/// The declaration of `GET /api/v1/audit/security-events`.
pub(super) fn operation() -> Operation {
    Operation::new(
        Method::GET,
        "/api/v1/audit/security-events",
        "listSecurityEvents",
        "Findings of breach detection, newest first",
        get(list),
    )
    .access(Access::SignedIn("admin"))
    .query(&[
        ("limit", "page size, 1 to 100 (default 20)"),
        ("continuation", "the token from the previous page"),
    ])
    .returns::<PageResponse<SecurityEvent>>(200, "A page of security events")
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    caller.require_role(&[Role::Admin], "read security events")?;
    let page = query.page();
    query.finish(&["limit", "continuation"])?;
    let listing = state
        .page_tokens
        .listing(caller.tenant(), "audit:security_events");
    let page = state
        .ports
        .security
        .list_security_events(caller.tenant(), listing.request(page)?)
        .await?;
    Ok(Json(listing.response(page)).into_response())
}
