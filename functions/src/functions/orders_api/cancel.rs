//! `DELETE /api/v1/orders/{id}`: cancel an order. The same rules and effects as
//! `PUT /orders/{id}/status` with `cancelled` (one code path: stock released, the `cancelled`
//! order event written to the outbox with the change, which makes `CancelledOrderRefund` refund
//! a paid order). Idempotent: an order already cancelled answers 200 with the order, and nothing
//! happens again (an `If-Match` that does not match it is still 412). A shipped or delivered
//! order is 409 naming its current status.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::delete;
use shared::domain::order::{Order, OrderStatus, StatusInput};
use shared::domain::rejection::Rejection;
use shared::store::{check_if_match, StoreError};

use super::{apply_status, check_may_set, visible_order, with_etag, CURRENT_ORDER_LINKS};
use crate::api::openapi::{Access, Operation};
use crate::api::{if_match, ApiError, Caller};
use crate::startup::AppState;

/// The declaration of `DELETE /api/v1/orders/{id}`.
pub(super) fn operation() -> Operation {
    Operation::new(
        Method::DELETE,
        "/api/v1/orders/{id}",
        "cancelOrder",
        "Cancel an order before it ships (stock released, a paid order refunded); cancelling a cancelled order answers 200 again",
        delete(cancel),
    )
    .access(Access::SignedIn(
        "admin, order-manager; a client for their own order",
    ))
    .headers(&[("If-Match", "the ETag you read; 412 when it changed since")])
    .returns::<Order>(200, "The cancelled order; ETag header set")
    .links(CURRENT_ORDER_LINKS)
    .errors(&[400, 401, 403, 404, 409, 412])
}

async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let condition = if_match(&headers)?;
    let current = visible_order(&state, &caller, &id).await?;
    check_may_set(&caller, OrderStatus::Cancelled)?;
    if current.status == OrderStatus::Cancelled {
        // Already done: the same answer again, still under the caller's `If-Match`.
        check_if_match(&condition, &current.etag)?;
        return Ok(with_etag(StatusCode::OK, &current));
    }
    let input = StatusInput {
        status: OrderStatus::Cancelled,
        reason: None,
    };
    match apply_status(&state, &caller, &current, input, condition).await {
        Ok(order) => Ok(with_etag(StatusCode::OK, &order)),
        // Cancelled by someone else between our read and our write: the same outcome.
        Err(error) if cancelled_meanwhile(&error) => {
            let order = visible_order(&state, &caller, &id).await?;
            Ok(with_etag(StatusCode::OK, &order))
        }
        Err(error) => Err(error),
    }
}

/// Whether the store refused the cancellation because the order was already cancelled.
fn cancelled_meanwhile(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::Store(StoreError::Rejected(Rejection::IllegalTransition(illegal)))
            if illegal.from == OrderStatus::Cancelled
    )
}
