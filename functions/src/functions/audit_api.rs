//! `AuditApi`: the audit trail under `/api/v1/audit` (HTTP trigger, route `v1/audit/{*path}`),
//! for `admin` only. Entries hold ids, never personal data.
//!
//! - `GET /audit/logs?actorId=&action=&targetId=&customerId=&from=&to=` (paged, newest first).
//! - `GET /audit/gdpr/{customerId}`: every entry about one customer (paged).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use shared::auth::Role;
use shared::domain::validation::is_valid_id;
use shared::store::{AuditFilter, PageRequest};

use crate::api::{ApiError, Caller, PageResponse, QueryParams};
use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit/logs", get(logs))
        .route("/api/v1/audit/gdpr/{customer_id}", get(gdpr_trail))
}

async fn logs(State(state): State<AppState>, caller: Caller, mut query: QueryParams) -> Result<Response, ApiError> {
    caller.require_role(&[Role::Admin], "read the audit trail")?;
    let filter = AuditFilter {
        actor_id: query.text("actorId", 128),
        action: query.text("action", 100),
        target_id: query.id("targetId"),
        customer_id: query.id("customerId"),
        from: query.time("from"),
        to: query.time("to"),
    };
    let page = query.page();
    query.finish(&["actorId", "action", "targetId", "customerId", "from", "to", "limit", "continuation"])?;
    let page = state.store.list_audit(caller.tenant(), filter, page.unwrap_or_else(|| PageRequest::first(20))).await?;
    Ok(Json(PageResponse::from(page)).into_response())
}

async fn gdpr_trail(State(state): State<AppState>, caller: Caller, Path(customer_id): Path<String>, mut query: QueryParams) -> Result<Response, ApiError> {
    caller.require_role(&[Role::Admin], "read the audit trail")?;
    if !is_valid_id(&customer_id) {
        return Err(ApiError::NotFound("no such customer".into()));
    }
    let page = query.page();
    query.finish(&["limit", "continuation"])?;
    let filter = AuditFilter { customer_id: Some(customer_id), ..AuditFilter::default() };
    let page = state.store.list_audit(caller.tenant(), filter, page.unwrap_or_else(|| PageRequest::first(20))).await?;
    Ok(Json(PageResponse::from(page)).into_response())
}
