//! `ShippingLabel`: a shipped order gets its label, from the `order-events` topic (subscription
//! `shipping`, [`OrderEvent`]).
//!
//! A `shipped` event runs the label flow ([`shared::shipping::labels`]): the shipment is
//! recorded once per order with the audit entry of the address disclosed to the carrier, the
//! cheapest rate is bought, and the tracking number, label URL and tracker are stored; the order
//! then shows `shipment` with its tracking number. A redelivered or duplicate event finds the
//! label and buys nothing (`alreadyBought`).
//!
//! - Other order events complete with no effect (`ignored`).
//! - An order that does not exist, is another customer's or has no shipping address: no effect
//!   (`skipped`, ids logged).
//! - The carrier refusing the request (a bad address, bad credentials) or being unreachable, or
//!   the store failing, fails the invocation: Service Bus delivers the event again, and
//!   dead-letters it with the reason after its delivery count. No carrier configured fails it
//!   too (the label is owed).
//! - A malformed event is bad input (400).

use serde_json::json;
use shared::domain::messages::{OrderEvent, OrderEventType};
use shared::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};
use shared::shipping::labels::{label_for_shipped, LabelOutcome};

use crate::invoke::{checked_message_ids, FunctionError, InvokeFuture, MESSAGE_BINDING};
use crate::startup::AppState;

/// The function's name.
pub const FUNCTION: &str = "ShippingLabel";
const ACTOR: &str = "system:ShippingLabel";

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { run(state, request).await })
}

async fn run(
    state: AppState,
    request: InvocationRequest,
) -> Result<InvocationResponse, FunctionError> {
    let message = ServiceBusMessage::<OrderEvent>::from_request(&request, MESSAGE_BINDING)?;
    let event = message.body;
    checked_message_ids(
        &event.tenant_id,
        &[
            ("eventId", &event.event_id),
            ("orderId", &event.order_id),
            ("customerId", &event.customer_id),
        ],
    )?;
    if event.event_type != OrderEventType::Shipped {
        return Ok(reply(&event, "ignored"));
    }
    // Orders that need no label complete without a carrier; one that needs a label while no
    // carrier is configured fails, so Service Bus delivers the event again.
    let outcome = label_for_shipped(
        state.store.as_ref(),
        state.outbound.carrier.as_deref(),
        &state.settings.shipping,
        &event,
        ACTOR,
    )
    .await
    .map_err(|error| FunctionError::Failed(format!("event {}: {error}", event.event_id)))?;
    Ok(match &outcome {
        LabelOutcome::Bought(_) => reply(&event, "bought"),
        LabelOutcome::AlreadyBought(_) => reply(&event, "alreadyBought"),
        LabelOutcome::Skipped(why) => {
            tracing::info!(event_id = %event.event_id, order_id = %event.order_id, why, "shipped event skipped");
            reply(&event, "skipped")
        }
    })
}

fn reply(event: &OrderEvent, result: &str) -> InvocationResponse {
    tracing::info!(event_id = %event.event_id, order_id = %event.order_id, result, "order event handled by the shipping side");
    InvocationResponse::empty()
        .log(format!(
            "event {} (order.{}) for order {}: {result}",
            event.event_id,
            event.event_type.as_str(),
            event.order_id
        ))
        .with_return_value(json!({
            "eventId": event.event_id,
            "orderId": event.order_id,
            "result": result,
        }))
}
