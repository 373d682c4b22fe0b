//! `NotificationsApi`: in-app notifications under `/api/v1/notifications` (HTTP trigger, route
//! `v1/notifications/{*path}`).
//!
//! - `GET /notifications` (paged, unread first): a client's own; an employee's are those sent
//!   to any of their roles.
//! - `PUT /notifications/{id}/read`: mark one of your own read.
//! - `POST /notifications` (`customer-service`, `admin`): send a message to a customer (also
//!   pushed live to their connections: `crate::realtime`); with a `purpose` (`marketing-email`,
//!   `marketing-sms`) a marketing message, also by email or SMS, only with the customer's
//!   consent ([`marketing`]). The customer's notification preferences (event types `message`
//!   and `marketing`) decide the live push and the email/SMS message; the notification is
//!   stored either way.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Json;
use shared::auth::{PrincipalKind, Role};
use shared::domain::notification::{Notification, NotificationInput, Recipient};
use shared::domain::validation::new_id;

use crate::api::openapi::{Access, Operation};
use crate::api::{ApiError, Caller, JsonBody, PageResponse, QueryParams};
use crate::startup::AppState;

mod marketing;

const SENDER_ROLES: &[Role] = &[Role::Admin, Role::CustomerService];

/// The operations of this function (routes and their documentation).
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::new(
            Method::GET,
            "/api/v1/notifications",
            "listNotifications",
            "Your notifications, unread first",
            get(list),
        )
        .query(&[
            ("limit", "page size, 1 to 100 (default 20)"),
            ("continuation", "the token from the previous page"),
        ])
        .returns::<PageResponse<Notification>>(200, "A page of notifications")
        .links(&[(
            "markNotificationRead",
            &[("id", "$response.body#/items/0/id")],
        )]),
        Operation::new(
            Method::POST,
            "/api/v1/notifications",
            "sendNotification",
            "Send a message to a customer",
            post(send),
        )
        .access(Access::SignedIn("admin, customer-service"))
        .body::<NotificationInput>()
        .example(|| serde_json::json!({"customerId": "6f1c2b9a-0d3e-4f7a-9b1c-2d3e4f5a6b7c", "title": "Your parcel", "message": "It left our warehouse today."}))
        .returns::<Notification>(201, "Sent")
        .links(&[("markNotificationRead", &[("id", "$response.body#/id")])])
        .errors(&[400, 401, 403, 404, 409, 413, 415]),
        Operation::new(
            Method::PUT,
            "/api/v1/notifications/{id}/read",
            "markNotificationRead",
            "Mark one of your notifications read",
            put(mark_read),
        )
        .returns::<Notification>(200, "The notification, read"),
    ]
    .into_iter()
    .map(|operation| operation.tag("notifications"))
    .collect()
}

/// Whom the caller reads notifications as.
fn own_recipients(caller: &Caller) -> Vec<Recipient> {
    match &caller.principal.kind {
        PrincipalKind::Client { customer_id } => vec![Recipient::Customer(customer_id.clone())],
        PrincipalKind::Employee { roles } => roles
            .iter()
            .map(|role| Recipient::Role(role.as_str().to_owned()))
            .collect(),
        PrincipalKind::App { .. } => Vec::new(),
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    let page = query.page();
    query.finish(&["limit", "continuation"])?;
    let recipients = own_recipients(&caller);
    if recipients.is_empty() {
        return Ok(Json(PageResponse::<Notification> {
            items: Vec::new(),
            continuation: None,
        })
        .into_response());
    }
    let listing = state
        .page_tokens
        .listing(caller.tenant(), "notifications:list");
    let page = state
        .ports
        .notifications
        .list_notifications(caller.tenant(), &recipients, listing.request(page)?)
        .await?;
    Ok(Json(listing.response(page)).into_response())
}

async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut audit = caller.audit("notification.read", "notification", &id);
    if let Some(customer_id) = caller.principal.customer_id() {
        audit = audit.about_customer(customer_id);
    }
    let notification = state
        .ports
        .notifications
        .mark_notification_read(caller.tenant(), &id, &own_recipients(&caller), audit)
        .await?;
    Ok(Json(notification).into_response())
}

async fn send(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    caller.require_role(SENDER_ROLES, "send notifications")?;
    let input: NotificationInput = body.parse()?;
    input.validate()?;
    let customer = state
        .ports
        .customers
        .get_customer(caller.tenant(), &input.customer_id)
        .await?;
    let notification = Notification {
        id: new_id(),
        tenant_id: caller.tenant().to_string(),
        recipient: Recipient::Customer(input.customer_id.clone()),
        category: if input.purpose.is_some() {
            "marketing".into()
        } else {
            "message".into()
        },
        title: input.title,
        message: input.message,
        order_id: None,
        read_at: None,
        created_at: shared::domain::now(),
    };
    let preferences = state
        .ports
        .preferences
        .effective_preferences(caller.tenant(), &customer.id)
        .await?;
    if let Some(purpose) = input.purpose {
        let sent = marketing::send(
            &state,
            &caller,
            &customer,
            &preferences,
            notification,
            purpose,
        )
        .await?;
        return Ok((StatusCode::CREATED, Json(sent)).into_response());
    }
    let audit = caller
        .audit("notification.send", "notification", &notification.id)
        .about_customer(&input.customer_id);
    // Pushed live to the customer through the outbox, committed with the notification, unless
    // they switched `realtime` off for service messages.
    let push = crate::realtime::push::push_if_wanted(&notification, &preferences);
    let notification = state
        .ports
        .notifications
        .create_notification_with_messages(
            caller.tenant(),
            notification,
            audit,
            push.into_iter().collect(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(notification)).into_response())
}
