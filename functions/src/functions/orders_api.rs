//! `OrdersApi`: orders under `/api/v1/orders` (HTTP trigger, route `v1/orders/{*path}`; its
//! events leave through the outbox to the topic `order-events`).
//!
//! - `POST /orders`: items reference products; stock is checked and reserved atomically. An
//!   `Idempotency-Key` header makes a retried POST return the first result, not a second order.
//! - `GET /orders?status=&customerId=&createdFrom=&createdTo=` (paged, newest first),
//!   `GET /orders/{id}`, `GET /orders/{id}/history`, `GET /orders/{id}/payments` (handled by
//!   [`super::payments_api`]).
//! - `PUT /orders/{id}/status`: pending → confirmed → shipped → delivered; cancelled before
//!   shipped. An illegal move is 409 naming the allowed ones.
//! - `DELETE /orders/{id}`: cancels the order through the same path as the status change to
//!   `cancelled` (handled by [`cancel`]); an order already cancelled answers 200 again.
//!
//! Every lifecycle change (creation included) is announced by an
//! [`OrderEvent`](shared::domain::messages::OrderEvent): the store writes it to the outbox in the
//! transaction of the change, and `OutboxRelay` sends it. Clients
//! see and create only their own orders and may only cancel them; employees with `admin` or
//! `order-manager` move orders along; any employee may read and create.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Json;
use sha2::{Digest, Sha256};
use shared::auth::Role;
use shared::domain::order::{Order, OrderInput, OrderStatus, StatusInput};
use shared::domain::validation::{new_id, FieldError, Invalid};
use shared::store::{IdempotencyKey, NewOrder, OrderCreated, OrderFilter};

use crate::api::openapi::{Access, Operation};
use crate::api::reads::record_read;
use crate::api::{etag_header, if_match, ApiError, Caller, JsonBody, PageResponse, QueryParams};
use crate::startup::AppState;

mod cancel;
pub(crate) mod visibility;

pub(crate) use visibility::{order_read, visible_order};

/// Staff roles that move orders along their lifecycle.
const FULFILMENT_ROLES: &[Role] = &[Role::Admin, Role::OrderManager];

/// The operations of this function (routes and their documentation).
pub fn operations() -> Vec<Operation> {
    const ANY: Access = Access::SignedIn("employees; a client only for their own orders");
    vec![
        Operation::new(Method::GET, "/api/v1/orders", "listOrders", "List orders, newest first", get(list))
            .access(ANY)
            .query(&[
                ("status", "pending, confirmed, shipped, delivered or cancelled"),
                ("customerId", "only this customer's orders"),
                ("createdFrom", "RFC 3339 time, inclusive"),
                ("createdTo", "RFC 3339 time, exclusive"),
                ("limit", "page size, 1 to 100 (default 20)"),
                ("continuation", "the token from the previous page"),
            ])
            .returns::<PageResponse<Order>>(200, "A page of orders"),
        Operation::new(Method::POST, "/api/v1/orders", "createOrder", "Place an order; stock is reserved atomically", post(create))
            .access(ANY)
            .headers(&[("Idempotency-Key", "a retried POST with the same key returns the first result (header Idempotent-Replayed: true)")])
            .body::<OrderInput>()
            .example(|| serde_json::json!({"customerId": "6f1c2b9a-0d3e-4f7a-9b1c-2d3e4f5a6b7c", "items": [{"productId": "0b7e5d2c-1a3f-4e6b-8c9d-7f6e5d4c3b2a", "quantity": 2}], "shippingAddress": {"line1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"}}))
            .returns::<Order>(201, "Created; Location and ETag headers are set")
            .links(&[
                ("getOrder", &[("id", "$response.body#/id")]),
                ("getOrderHistory", &[("id", "$response.body#/id")]),
                (
                    "changeOrderStatus",
                    &[
                        ("id", "$response.body#/id"),
                        ("header.If-Match", "$response.header.ETag"),
                    ],
                ),
            ])
            .errors(&[400, 401, 403, 404, 409, 413, 415, 422]),
        Operation::new(Method::GET, "/api/v1/orders/{id}", "getOrder", "Read an order, with its shipment once it has one", get(read))
            .access(ANY)
            .returns::<OrderView>(200, "The order; ETag header set")
            .links(CURRENT_ORDER_LINKS),
        Operation::new(Method::PUT, "/api/v1/orders/{id}/status", "changeOrderStatus", "Move an order along pending → confirmed → shipped → delivered, cancel it before shipping, or mark it returned after shipping", put(change_status))
            .access(Access::SignedIn("admin, order-manager; a client may only cancel their own order"))
            .headers(&[("If-Match", "the ETag you read; 412 when it changed since")])
            .body::<StatusInput>()
            .example(|| serde_json::json!({"status": "confirmed"}))
            .returns::<Order>(200, "The order in its new status; new ETag")
            .links(CURRENT_ORDER_LINKS)
            .errors(&[400, 401, 403, 404, 409, 412, 413, 415]),
        cancel::operation(),
        Operation::new(Method::GET, "/api/v1/orders/{id}/history", "getOrderHistory", "Every status change of an order", get(history))
            .access(ANY)
            .returns::<OrderHistory>(200, "Status changes, oldest first"),
        super::payments_api::order_payments_operation(),
    ]
    .into_iter()
    .chain(super::shipping_api::operations())
    .map(|operation| operation.tag("orders"))
    .collect()
}

/// From an answer carrying the order and its current ETag (a read, a status change): the next
/// status change, conditional on that ETag.
const CURRENT_ORDER_LINKS: &[crate::api::openapi::Link] = &[(
    "changeOrderStatus",
    &[
        ("id", "$request.path.id"),
        ("header.If-Match", "$response.header.ETag"),
    ],
)];

/// `GET /orders/{id}/history`.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderHistory {
    order_id: String,
    history: Vec<shared::domain::order::StatusChange>,
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let input: OrderInput = body.parse()?;
    input.validate()?;
    let customer_id = ordering_customer(&caller, &input)?;
    let idempotency = idempotency_key(&headers, &customer_id, &input)?;
    let order = NewOrder {
        id: new_id(),
        customer_id: customer_id.clone(),
        input,
        actor_id: caller.principal.subject.clone(),
        idempotency,
    };
    let audit = caller
        .audit("order.create", "order", &order.id)
        .about_customer(&customer_id);
    let (order, replayed) = match state
        .ports
        .orders
        .create_order(caller.tenant(), order, audit)
        .await?
    {
        OrderCreated::New(order) => (order, false),
        OrderCreated::Replayed(order) => (order, true),
    };
    caller.check_customer(&order.customer_id)?;
    let mut response = with_etag(StatusCode::CREATED, &order);
    if let Ok(location) = format!("/api/v1/orders/{}", order.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Clients order for themselves (a `customerId` of someone else is not found); employees name
/// the customer.
fn ordering_customer(caller: &Caller, input: &OrderInput) -> Result<String, ApiError> {
    match (caller.principal.customer_id(), &input.customer_id) {
        (Some(own), None) => Ok(own.to_owned()),
        (Some(own), Some(given)) => {
            caller.check_customer(given)?;
            Ok(own.to_owned())
        }
        (None, Some(given)) => Ok(given.clone()),
        (None, None) => Err(ApiError::Invalid(Invalid(vec![FieldError {
            field: "customerId".into(),
            message: "is required for employees".into(),
        }]))),
    }
}

/// `Idempotency-Key` (1 to 128 visible ASCII characters) with a hash of the request, so the
/// same key with a different body is refused rather than silently replayed. Keys are scoped to
/// the ordering customer: two clients choosing the same key get their own orders.
fn idempotency_key(
    headers: &HeaderMap,
    customer_id: &str,
    input: &OrderInput,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()));
    let Some(key) = key else {
        return Err(ApiError::Invalid(Invalid(vec![FieldError {
            field: "Idempotency-Key".into(),
            message: "must be 1 to 128 visible ASCII characters".into(),
        }])));
    };
    let canonical =
        serde_json::to_vec(input).map_err(|error| ApiError::Internal(error.to_string()))?;
    let request_hash = format!("{:x}", Sha256::digest(&canonical));
    Ok(Some(IdempotencyKey {
        key: format!("{customer_id}/{key}"),
        request_hash,
    }))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    let mut filter = OrderFilter {
        status: query.parsed(
            "status",
            "pending, confirmed, shipped, delivered, cancelled",
            OrderStatus::parse,
        ),
        customer_id: query.id("customerId"),
        created_from: query.time("createdFrom"),
        created_to: query.time("createdTo"),
    };
    let page = query.page();
    query.finish(&[
        "status",
        "customerId",
        "createdFrom",
        "createdTo",
        "limit",
        "continuation",
    ])?;
    if let Some(own) = caller.principal.customer_id() {
        if filter
            .customer_id
            .as_deref()
            .is_some_and(|given| given != own)
        {
            return Ok(Json(PageResponse::<Order> {
                items: Vec::new(),
                continuation: None,
            })
            .into_response());
        }
        filter.customer_id = Some(own.to_owned());
    }
    let listing = state.page_tokens.listing(caller.tenant(), "orders:list");
    let page = state
        .ports
        .orders
        .list_orders(caller.tenant(), filter, listing.request(page)?)
        .await?;
    Ok(Json(listing.response(page)).into_response())
}

/// `GET /orders/{id}`: the order, and its shipment once the label is being bought.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    #[serde(flatten)]
    order: Order,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipment: Option<ShipmentView>,
}

/// An order's shipment as `GET /orders/{id}` shows it.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentView {
    /// The carrier adapter (`easypost`).
    carrier: String,
    /// `requested` until the label is bought, then the carrier's tracking status.
    status: shared::domain::shipment::TrackingStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    /// The label to print (employees only: it shows the name and address).
    #[serde(skip_serializing_if = "Option::is_none")]
    label_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let order = visible_order(&state, &caller, &id).await?;
    record_read(&state, &caller, order_read("order.read", &order)).await?;
    let shipment = state
        .ports
        .shipments
        .get_shipment(caller.tenant(), &order.id)
        .await?
        .map(|shipment| ShipmentView {
            carrier: shipment.carrier,
            status: shipment.status,
            tracking_number: shipment.tracking_number,
            service: shipment.service,
            label_url: shipment.label_url.filter(|_| !caller.principal.is_client()),
            delivered_at: shipment.delivered_at,
        });
    let etag = etag_header(&order.etag);
    Ok((StatusCode::OK, [etag], Json(OrderView { order, shipment })).into_response())
}

async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let order = visible_order(&state, &caller, &id).await?;
    record_read(&state, &caller, order_read("order.history.read", &order)).await?;
    let changes = state
        .ports
        .orders
        .order_history(caller.tenant(), &id)
        .await?;
    Ok(Json(OrderHistory {
        order_id: id,
        history: changes,
    })
    .into_response())
}

async fn change_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let input: StatusInput = body.parse()?;
    input.validate()?;
    let current = visible_order(&state, &caller, &id).await?;
    check_may_set(&caller, input.status)?;
    let order = apply_status(&state, &caller, &current, input, if_match(&headers)?).await?;
    Ok(with_etag(StatusCode::OK, &order))
}

/// 403 unless the caller may move an order to `status`: a client only cancels (their own
/// order: [`visible_order`] made sure), `admin` and `order-manager` employees do every move.
fn check_may_set(caller: &Caller, status: OrderStatus) -> Result<(), ApiError> {
    let may = if caller.principal.is_client() {
        status == OrderStatus::Cancelled
    } else {
        caller.principal.has_any_role(FULFILMENT_ROLES)
    };
    if may {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "your role may not set orders to {}",
            status.as_str()
        )))
    }
}

/// The status change itself, audited, in one store transaction with its outbox event (and,
/// for a cancellation, the release of the reserved stock).
async fn apply_status(
    state: &AppState,
    caller: &Caller,
    current: &Order,
    input: StatusInput,
    if_match: shared::store::IfMatch,
) -> Result<Order, ApiError> {
    let audit = caller
        .audit(
            &format!("order.status.{}", input.status.as_str()),
            "order",
            &current.id,
        )
        .about_customer(&current.customer_id);
    let order = state
        .ports
        .orders
        .change_order_status(
            caller.tenant(),
            &current.id,
            input,
            &caller.principal.subject,
            if_match,
            audit,
        )
        .await?;
    Ok(order)
}

/// The order, if it exists in the tenant and the caller may see it (else 404).
/// An employee's read of `order`, for the audit trail.
fn with_etag(status: StatusCode, order: &Order) -> Response {
    (status, [etag_header(&order.etag)], Json(order)).into_response()
}
