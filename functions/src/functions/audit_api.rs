//! `AuditApi`: the audit trail under `/api/v1/audit` (HTTP trigger, route `v1/audit/{*path}`).
//! Entries hold ids, never personal data.
//!
//! - `GET /audit/logs?actorId=&action=&targetId=&customerId=&from=&to=` (paged, newest first),
//!   `admin` only.
//! - `GET /audit/gdpr/{customerId}`: every entry about one customer (paged), employees' reads of
//!   their data included, `admin` only.
//! - `POST /audit/logs`: entries other services send, with an app-only token only
//!   (handled by [`intake`]).
//! - `GET /audit/security-events`: findings of breach detection (paged), `admin` only
//!   (handled by [`security_events`]).

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use shared::auth::Role;
use shared::domain::validation::is_valid_id;
use shared::store::AuditFilter;

use crate::api::openapi::{Access, Operation};
use crate::api::{ApiError, Caller, PageResponse, QueryParams};
use crate::startup::AppState;
use shared::domain::audit::AuditEntry;

mod intake;
mod security_events;

/// The operations of this function (routes and their documentation).
pub fn operations() -> Vec<Operation> {
    const ADMIN: Access = Access::SignedIn("admin");
    vec![
        Operation::new(
            Method::GET,
            "/api/v1/audit/logs",
            "listAuditLogs",
            "The audit trail, newest first",
            get(logs),
        )
        .access(ADMIN)
        .query(&[
            ("actorId", "who acted"),
            ("action", "what was done, like order.create"),
            ("targetId", "the id acted on"),
            ("customerId", "the customer concerned"),
            ("from", "RFC 3339 time, inclusive"),
            ("to", "RFC 3339 time, exclusive"),
            ("limit", "page size, 1 to 100 (default 20)"),
            ("continuation", "the token from the previous page"),
        ])
        .returns::<PageResponse<AuditEntry>>(200, "A page of audit entries"),
        intake::operation(),
        Operation::new(
            Method::GET,
            "/api/v1/audit/gdpr/{customer_id}",
            "getGdprTrail",
            "Every audit entry about one customer, employees' reads of their data included",
            get(gdpr_trail),
        )
        .access(ADMIN)
        .query(&[
            ("limit", "page size, 1 to 100 (default 20)"),
            ("continuation", "the token from the previous page"),
        ])
        .returns::<PageResponse<AuditEntry>>(200, "A page of audit entries"),
        security_events::operation(),
    ]
    .into_iter()
    .map(|operation| operation.tag("audit"))
    .collect()
}

async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    caller.require_role(&[Role::Admin], "read the audit trail")?;
    let filter = AuditFilter {
        actor_id: query.text("actorId"),
        action: query.text("action"),
        target_id: query.id("targetId"),
        customer_id: query.id("customerId"),
        from: query.time("from"),
        to: query.time("to"),
    };
    let page = query.page();
    query.finish(&[
        "actorId",
        "action",
        "targetId",
        "customerId",
        "from",
        "to",
        "limit",
        "continuation",
    ])?;
    let listing = state.page_tokens.listing(caller.tenant(), "audit:logs");
    let page = state
        .ports
        .audit
        .list_audit(caller.tenant(), filter, listing.request(page)?)
        .await?;
    Ok(Json(listing.response(page)).into_response())
}

async fn gdpr_trail(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    caller.require_role(&[Role::Admin], "read the audit trail")?;
    if !is_valid_id(&customer_id) {
        return Err(ApiError::NotFound("no such customer".into()));
    }
    let page = query.page();
    query.finish(&["limit", "continuation"])?;
    let filter = AuditFilter {
        customer_id: Some(customer_id),
        ..AuditFilter::default()
    };
    let listing = state
        .page_tokens
        .listing(caller.tenant(), "audit:gdpr_trail");
    let page = state
        .ports
        .audit
        .list_audit(caller.tenant(), filter, listing.request(page)?)
        .await?;
    Ok(Json(listing.response(page)).into_response())
}
