//! `NotificationsApi`: in-app notifications under `/api/v1/notifications` (HTTP trigger, route
//! `v1/notifications/{*path}`).
//!
//! - `GET /notifications` (paged, unread first): a client's own; an employee's are those sent
//!   to any of their roles.
//! - `PUT /notifications/{id}/read`: mark one of your own read.
//! - `POST /notifications` (`customer-service`, `admin`): send a message to a customer.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use shared::auth::{PrincipalKind, Role};
use shared::domain::notification::{Notification, NotificationInput, Recipient};
use shared::domain::validation::new_id;
use shared::store::PageRequest;

use crate::api::{ApiError, Caller, PageResponse, QueryParams, ValidJson};
use crate::app::AppState;

const SENDER_ROLES: &[Role] = &[Role::Admin, Role::CustomerService];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notifications", get(list).post(send))
        .route("/api/v1/notifications/{id}/read", put(mark_read))
}

/// Whom the caller reads notifications as.
fn own_recipients(caller: &Caller) -> Vec<Recipient> {
    match &caller.principal.kind {
        PrincipalKind::Client { customer_id } => vec![Recipient::Customer(customer_id.clone())],
        PrincipalKind::Employee { roles } => roles.iter().map(|role| Recipient::Role(role.as_str().to_owned())).collect(),
    }
}

async fn list(State(state): State<AppState>, caller: Caller, mut query: QueryParams) -> Result<Response, ApiError> {
    let page = query.page();
    query.finish(&["limit", "continuation"])?;
    let recipients = own_recipients(&caller);
    if recipients.is_empty() {
        return Ok(Json(PageResponse::<Notification> { items: Vec::new(), continuation: None }).into_response());
    }
    let page = state.store.list_notifications(caller.tenant(), &recipients, page.unwrap_or_else(|| PageRequest::first(20))).await?;
    Ok(Json(PageResponse::from(page)).into_response())
}

async fn mark_read(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let audit = caller.audit("notification.read", "notification", &id);
    let notification = state.store.mark_notification_read(caller.tenant(), &id, &own_recipients(&caller), audit).await?;
    Ok(Json(notification).into_response())
}

async fn send(State(state): State<AppState>, caller: Caller, ValidJson(input): ValidJson<NotificationInput>) -> Result<Response, ApiError> {
    caller.require_role(SENDER_ROLES, "send notifications")?;
    input.validate()?;
    state.store.get_customer(caller.tenant(), &input.customer_id).await?;
    let notification = Notification {
        id: new_id(),
        tenant_id: caller.tenant().to_string(),
        recipient: Recipient::Customer(input.customer_id.clone()),
        category: "message".into(),
        title: input.title,
        message: input.message,
        order_id: None,
        read_at: None,
        created_at: shared::domain::now(),
    };
    let audit = caller.audit("notification.send", "notification", &notification.id).about_customer(&input.customer_id);
    let notification = state.store.create_notification(caller.tenant(), notification, audit).await?;
    Ok((StatusCode::CREATED, Json(notification)).into_response())
}
