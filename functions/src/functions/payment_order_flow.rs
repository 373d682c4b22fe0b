//! `PaymentOrderFlow`: a captured payment confirms its order, from the `payment-events` topic
//! (subscription `orders`, [`PaymentEvent`]).
//!
//! A `captured` event moves its order from `pending` to `confirmed` through the order store's
//! status change, the same path and rules as `PUT /api/v1/orders/{id}/status`: the `confirmed`
//! order event is written to the outbox with the change, and `NotificationDispatch` tells the
//! customer. The change is conditional on the order as it was read (its ETag): a concurrent
//! change fails the invocation, and the redelivery decides again on the new status.
//!
//! - Idempotent by event id: an order leaves `pending` once and never comes back, so a
//!   redelivered event finds the order confirmed (or further) and changes nothing.
//! - An order already `confirmed`, `shipped` or `delivered`: no effect.
//! - A `cancelled` order is not revived: no effect, logged with ids only; `CancelledOrderRefund`
//!   gives the money back.
//! - An order that does not exist in the tenant or is another customer's: no effect (ids
//!   logged).
//! - `authorized`, `failed` and `refunded` events: complete with no effect (`ignored`).
//! - A malformed event is bad input (400): retried, then dead-lettered with the reason; a store
//!   that cannot be reached fails the invocation (retried).

use serde_json::json;
use shared::domain::audit::AuditEntry;
use shared::domain::etag::ETag;
use shared::domain::messages::{PaymentEvent, PaymentEventType};
use shared::domain::order::{Order, OrderStatus, StatusInput};
use shared::domain::tenant::TenantId;
use shared::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};
use shared::store::{IfMatch, StoreError};

use crate::invoke::{checked_message_ids, FunctionError, InvokeFuture, MESSAGE_BINDING};
use crate::startup::AppState;

/// The function's name.
pub const FUNCTION: &str = "PaymentOrderFlow";
const ACTOR: &str = "system:PaymentOrderFlow";

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { run(state, request).await })
}

async fn run(
    state: AppState,
    request: InvocationRequest,
) -> Result<InvocationResponse, FunctionError> {
    let message = ServiceBusMessage::<PaymentEvent>::from_request(&request, MESSAGE_BINDING)?;
    let event = message.body;
    let tenant = checked_ids(&event)?;
    let result = if event.event_type == PaymentEventType::Captured {
        confirm_order(&state, &tenant, &event).await?
    } else {
        Handled::Ignored
    };
    Ok(reply(&event, &result))
}

/// What the event did to its order.
enum Handled {
    Confirmed,
    /// Not a captured payment.
    Ignored,
    /// Nothing to do: why.
    Unchanged(String),
}

impl Handled {
    fn as_text(&self) -> String {
        match self {
            Self::Confirmed => "confirmed".into(),
            Self::Ignored => "ignored".into(),
            Self::Unchanged(reason) => format!("unchanged: {reason}"),
        }
    }
}

/// Confirms the pending order of a captured payment (see the module doc).
async fn confirm_order(
    state: &AppState,
    tenant: &TenantId,
    event: &PaymentEvent,
) -> Result<Handled, FunctionError> {
    let order = match state.ports.orders.get_order(tenant, &event.order_id).await {
        Ok(order) if order.customer_id == event.customer_id => order,
        Ok(_) | Err(StoreError::NotFound) => {
            return Ok(Handled::Unchanged(
                "order not found for this customer".into(),
            ))
        }
        Err(error) => return Err(store_failed(event, error)),
    };
    match order.status {
        OrderStatus::Pending => {}
        OrderStatus::Cancelled => {
            tracing::warn!(event_id = %event.event_id, order_id = %order.id, payment_id = %event.payment_id, "payment captured for a cancelled order; not revived (CancelledOrderRefund refunds it)");
            return Ok(Handled::Unchanged("order cancelled".into()));
        }
        status => {
            return Ok(Handled::Unchanged(format!(
                "order already {}",
                status.as_str()
            )))
        }
    }
    change_to_confirmed(state, tenant, event, &order).await?;
    Ok(Handled::Confirmed)
}

/// The store's status change, as the API makes it, conditional on the order as read.
async fn change_to_confirmed(
    state: &AppState,
    tenant: &TenantId,
    event: &PaymentEvent,
    order: &Order,
) -> Result<(), FunctionError> {
    let change = StatusInput {
        status: OrderStatus::Confirmed,
        reason: Some("payment captured".into()),
    };
    let audit = AuditEntry::now(
        tenant.as_str(),
        ACTOR,
        "order.status.confirmed",
        "order",
        &order.id,
        &event.event_id,
    )
    .about_customer(&order.customer_id);
    let if_match = IfMatch::OneOf(vec![ETag::new(order.etag.clone())]);
    state
        .ports
        .orders
        .change_order_status(tenant, &order.id, change, ACTOR, if_match, audit)
        .await
        .map_err(|error| store_failed(event, error))?;
    Ok(())
}

fn store_failed(event: &PaymentEvent, error: StoreError) -> FunctionError {
    FunctionError::Failed(format!(
        "event {}: order {} could not be confirmed: {error}",
        event.event_id, event.order_id
    ))
}

fn checked_ids(event: &PaymentEvent) -> Result<TenantId, FunctionError> {
    checked_message_ids(
        &event.tenant_id,
        &[
            ("eventId", &event.event_id),
            ("paymentId", &event.payment_id),
            ("orderId", &event.order_id),
            ("customerId", &event.customer_id),
        ],
    )
}

fn reply(event: &PaymentEvent, handled: &Handled) -> InvocationResponse {
    let result = handled.as_text();
    tracing::info!(event_id = %event.event_id, payment_id = %event.payment_id, order_id = %event.order_id, result = %result, "payment event applied to its order");
    InvocationResponse::empty()
        .log(format!(
            "event {} (payment.{}) for order {}: {result}",
            event.event_id,
            event.event_type.as_str(),
            event.order_id
        ))
        .with_return_value(
            json!({ "eventId": event.event_id, "orderId": event.order_id, "result": result }),
        )
}
