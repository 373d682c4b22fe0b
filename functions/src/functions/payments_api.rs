//! `PaymentsApi`: payments of orders through the payment gateway, under `/api/v1/payments`
//! (HTTP trigger, route `v1/payments/{*path}`; its events leave through the outbox to the topic
//! `payment-events`).
//!
//! - `POST /payments` `{"orderId", "paymentSource": {"vaultId"}}`: authorizes the order's total
//!   on the saved payment source and captures it. `Idempotency-Key` is required: a retry with
//!   the same key and body replays the first result (or resumes a crashed attempt with the
//!   same gateway request ids); never a second payment. A capture declined after the
//!   authorization voids the authorization (the payment ends `voided`, `402`). A body holding anything that looks like
//!   a card number is refused before it is parsed, and never logged or stored.
//! - `GET /payments/{id}`; `GET /payments?orderId=&customerId=&status=` (employees);
//!   `GET /orders/{id}/payments` (served by `OrdersApi`, whose route covers it).
//! - `POST /payments/{id}/refund` (`admin`, `order-manager`): within what was captured.
//! - `POST /payments/webhooks/{provider}`: the gateway's signed notifications (no token: the
//!   signature is the authentication), applied once per event id; served by the anonymous
//!   function `PaymentWebhooks` ([`webhook_operations`]), since the provider sends no
//!   function key.
//!
//! Clients pay and read only their own orders' payments; `admin` and `order-manager` pay and
//! refund any; `customer-service` reads.

mod flow;
mod refund;
mod webhook;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::auth::Role;
use shared::domain::field_rules::ID;
use shared::domain::order::{Order, OrderStatus};
use shared::domain::payment::card_number::contains_card_number;
use shared::domain::payment::{GatewayRefs, Payment, PaymentStatus};
use shared::domain::rejection::Rejection;
use shared::domain::validation::{new_id, FieldError, Invalid, Validation};
use shared::payments::PaymentGateway;
use shared::store::{PageRequest, PaymentFilter, Started, StoreError};

use crate::api::openapi::{Access, Operation};
use crate::api::reads::{record_read, Read};
use crate::api::{ApiError, Caller, JsonBody, PageResponse, QueryParams};
use crate::problem::Problem;
use crate::startup::AppState;

/// Staff roles that take and give back money.
const PAYING_ROLES: &[Role] = &[Role::Admin, Role::OrderManager];

/// Staff roles that read payments.
const READING_ROLES: &[Role] = &[Role::Admin, Role::OrderManager, Role::CustomerService];

/// How long a request holds a payment while it talks to the gateway.
const IN_FLIGHT_SECONDS: i64 = 60;

/// The `Retry-After` of answers that ask to try again later.
const RETRY_AFTER_SECONDS: &str = "5";

/// The operations of this function (routes and their documentation).
pub fn operations() -> Vec<Operation> {
    const PAY: Access = Access::SignedIn("admin, order-manager; a client for their own orders");
    const READ: Access = Access::SignedIn("employees; a client only their own orders' payments");
    vec![
        Operation::new(Method::POST, "/api/v1/payments", "createPayment", "Pay an order's total with a saved payment source (authorize, then capture)", post(create))
            .access(PAY)
            .headers(&[("Idempotency-Key", "required; a retry with the same key and body returns the first result (header Idempotent-Replayed: true), with another body 422")])
            .require_headers(&["Idempotency-Key"])
            .body::<PaymentInput>()
            .example(|| serde_json::json!({"orderId": "0b7e5d2c-1a3f-4e6b-8c9d-7f6e5d4c3b2a", "paymentSource": {"vaultId": "8kk845"}}))
            .returns::<Payment>(201, "Captured (Location header set); 202 while it settles (authorized, pending, unknown); 402 declined (a capture declined after the authorization: the authorization is voided, status voided)")
            .also_returns(&[(200, "A replay of a finished request with the same key and body (header Idempotent-Replayed: true)"), (202, "Still settling: authorized, pending, or unknown until the gateway says")])
            .links(&[("getPayment", &[("id", "$response.body#/id")]), ("refundPayment", &[("id", "$response.body#/id")])])
            .errors(&[400, 401, 402, 403, 404, 409, 413, 415, 422, 503]),
        Operation::new(Method::GET, "/api/v1/payments", "listPayments", "List payments, newest first", get(list))
            .access(Access::SignedIn("admin, order-manager, customer-service"))
            .query(&[
                ("orderId", "only this order's payments"),
                ("customerId", "only this customer's payments"),
                ("status", "pending, unknown, authorized, captured, partiallyRefunded, refunded, failed or voided"),
                ("limit", "page size, 1 to 100 (default 20)"),
                ("continuation", "the token from the previous page"),
            ])
            .returns::<PageResponse<Payment>>(200, "A page of payments"),
        Operation::new(Method::GET, "/api/v1/payments/{id}", "getPayment", "Read a payment", get(read))
            .access(READ)
            .returns::<Payment>(200, "The payment"),
        refund::operation(),
    ]
    .into_iter()
    .map(|operation| operation.tag("payments"))
    .collect()
}

/// The operations of `PaymentWebhooks`: the gateway's notifications, on an anonymous route of
/// their own (the provider sends no function key; its signature is the authentication).
pub fn webhook_operations() -> Vec<Operation> {
    vec![webhook::operation().tag("payments")]
}

/// `GET /api/v1/orders/{id}/payments`, served by `OrdersApi` (the host routes that path to it).
pub fn order_payments_operation() -> Operation {
    Operation::new(
        Method::GET,
        "/api/v1/orders/{id}/payments",
        "listOrderPayments",
        "Every payment of an order, newest first",
        get(order_payments),
    )
    .access(Access::SignedIn(
        "employees; a client only for their own orders",
    ))
    .returns::<OrderPayments>(200, "The order's payments")
    .tag("payments")
}

/// `POST /payments`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentInput {
    #[schemars(schema_with = "shared::domain::field_rules::id_schema")]
    pub order_id: String,
    pub payment_source: PaymentSource,
}

/// The gateway's saved payment source: never card data.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentSource {
    /// The gateway's vault id of the payer's saved card or wallet.
    #[schemars(schema_with = "shared::domain::field_rules::id_schema")]
    pub vault_id: String,
}

impl PaymentInput {
    fn validate(&self) -> Result<(), ApiError> {
        let mut check = Validation::new();
        ID.check(&mut check, "orderId", &self.order_id);
        ID.check(
            &mut check,
            "paymentSource.vaultId",
            &self.payment_source.vault_id,
        );
        check.finish().map_err(ApiError::Invalid)
    }
}

/// `GET /orders/{id}/payments`.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPayments {
    order_id: String,
    payments: Vec<Payment>,
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    if !caller.principal.is_client() {
        caller.require_role(PAYING_ROLES, "pay orders")?;
    }
    refuse_card_data(&body)?;
    let input: PaymentInput = body.parse()?;
    input.validate()?;
    let key = required_idempotency_key(&headers)?;
    let Some(gateway) = gateway(&state) else {
        return Ok(not_configured());
    };
    let order = payable_order(&state, &caller, &input.order_id).await?;
    let payment = new_payment(&caller, &order, &input, gateway.provider(), &key)?;
    let audit = caller
        .audit("payment.create", "payment", &payment.id)
        .about_customer(&order.customer_id);
    let started = state
        .ports
        .payments
        .begin_payment(caller.tenant(), payment, audit)
        .await?;
    match started {
        Started::New(payment) | Started::Resumed(payment) => {
            flow::pay(&state, gateway.as_ref(), &caller, payment).await
        }
        Started::Replayed(payment) => Ok(replayed(&payment)),
        Started::InProgress(payment) => Ok(in_progress(&payment.id)),
    }
}

/// The order, if the caller may see it and it may be paid (pending or confirmed).
async fn payable_order(state: &AppState, caller: &Caller, id: &str) -> Result<Order, ApiError> {
    let order = state.ports.orders.get_order(caller.tenant(), id).await?;
    caller.check_customer(&order.customer_id)?;
    match order.status {
        OrderStatus::Pending | OrderStatus::Confirmed => Ok(order),
        other => Err(ApiError::Store(StoreError::Rejected(
            Rejection::OrderNotPayable(other.as_str()),
        ))),
    }
}

/// A pending payment of the order's total, held by this request for a minute.
fn new_payment(
    caller: &Caller,
    order: &Order,
    input: &PaymentInput,
    provider: &str,
    key: &str,
) -> Result<Payment, ApiError> {
    let now = Utc::now();
    Ok(Payment {
        id: new_id(),
        tenant_id: caller.tenant().as_str().to_owned(),
        order_id: order.id.clone(),
        customer_id: order.customer_id.clone(),
        provider: provider.to_owned(),
        source_id: input.payment_source.vault_id.clone(),
        amount_cents: order.total_cents,
        currency: order.currency.clone(),
        status: PaymentStatus::Pending,
        captured_cents: 0,
        captured_at: None,
        refunded_cents: 0,
        gateway: GatewayRefs::default(),
        failure_code: None,
        payer: None,
        erasure: None,
        refunds: Vec::new(),
        // Scoped to the order's customer, as order keys are: two clients choosing the same key
        // get their own payments.
        idempotency_key: format!("{}/{key}", order.customer_id),
        request_hash: request_hash(input)?,
        in_flight_until: Some(now + Duration::seconds(IN_FLIGHT_SECONDS)),
        created_at: now,
        updated_at: now,
        etag: String::new(),
    })
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let payment = visible_payment(&state, &caller, &id).await?;
    let read = Read {
        action: "payment.read",
        target_type: "payment",
        target_id: &payment.id,
        customer_id: &payment.customer_id,
        status: None,
    };
    record_read(&state, &caller, read).await?;
    Ok(Json(payment).into_response())
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    caller.require_role(READING_ROLES, "list payments")?;
    let filter = PaymentFilter {
        order_id: query.id("orderId"),
        customer_id: query.id("customerId"),
        status: query.parsed(
            "status",
            "pending, unknown, authorized, captured, partiallyRefunded, refunded, failed, voided",
            PaymentStatus::parse,
        ),
    };
    let page = query.page();
    query.finish(&["orderId", "customerId", "status", "limit", "continuation"])?;
    let listing = state.page_tokens.listing(caller.tenant(), "payments:list");
    let page = state
        .ports
        .payments
        .list_payments(caller.tenant(), filter, listing.request(page)?)
        .await?;
    Ok(Json(listing.response(page)).into_response())
}

async fn order_payments(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let order = state.ports.orders.get_order(caller.tenant(), &id).await?;
    caller.check_customer(&order.customer_id)?;
    let read = Read {
        action: "order.payments.read",
        target_type: "order",
        target_id: &order.id,
        customer_id: &order.customer_id,
        status: None,
    };
    record_read(&state, &caller, read).await?;
    let filter = PaymentFilter {
        order_id: Some(id.clone()),
        ..PaymentFilter::default()
    };
    let page = state
        .ports
        .payments
        .list_payments(caller.tenant(), filter, PageRequest::new(100, None))
        .await?;
    Ok(Json(OrderPayments {
        order_id: id,
        payments: page.items,
    })
    .into_response())
}

/// The payment, if it exists in the tenant and the caller may see it (else 404).
async fn visible_payment(state: &AppState, caller: &Caller, id: &str) -> Result<Payment, ApiError> {
    let payment = state
        .ports
        .payments
        .get_payment(caller.tenant(), id)
        .await?;
    caller.check_customer(&payment.customer_id)?;
    Ok(payment)
}

fn gateway(state: &AppState) -> Option<Arc<dyn PaymentGateway>> {
    state.outbound.payments.clone()
}

/// 400 when the raw body holds something that looks like a card number (checked before the
/// body is parsed; the body is neither logged nor stored).
fn refuse_card_data(body: &JsonBody) -> Result<(), ApiError> {
    let holds_card = body
        .raw()
        .is_some_and(|bytes| contains_card_number(&String::from_utf8_lossy(bytes)));
    if holds_card {
        tracing::warn!("a payments request with card data was refused");
        return Err(ApiError::CardDataRefused);
    }
    Ok(())
}

/// The required `Idempotency-Key` (1 to 128 visible ASCII characters).
fn required_idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .filter(|key| (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()));
    key.map(str::to_owned).ok_or_else(|| {
        ApiError::Invalid(Invalid(vec![FieldError {
            field: "Idempotency-Key".into(),
            message: "is required: 1 to 128 visible ASCII characters (a UUID, say)".into(),
        }]))
    })
}

/// A hash of the parsed request: the same key with another request is refused.
fn request_hash<T: Serialize>(input: &T) -> Result<String, ApiError> {
    let canonical =
        serde_json::to_vec(input).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(format!("{:x}", Sha256::digest(&canonical)))
}

/// The payment as a finished request answered it, with `Idempotent-Replayed: true`.
fn replayed(payment: &Payment) -> Response {
    let mut response = Json(payment).into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// 409: the first request with this key is still working on the payment.
fn in_progress(payment_id: &str) -> Response {
    let problem = Problem::new(StatusCode::CONFLICT, "Payment In Progress")
        .detail(
            "a request with this Idempotency-Key is still working on this payment; retry shortly",
        )
        .extension("paymentId", serde_json::json!(payment_id));
    retry_later(problem)
}

/// 503: no payment gateway is configured.
fn not_configured() -> Response {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Payments Not Configured")
        .detail("this app has no payment gateway configured")
        .into_response()
}

/// `problem` with `Retry-After`.
fn retry_later(problem: Problem) -> Response {
    let mut response = problem.into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}
