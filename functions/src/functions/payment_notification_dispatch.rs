//! `PaymentNotificationDispatch`: tells the customer about their payments, from the
//! `payment-events` topic (subscription `notifications`, [`PaymentEvent`]): `captured`
//! ("payment received"), `failed` ("payment failed") and `refunded` ("refund of X issued").
//!
//! The mechanism is `NotificationDispatch`'s ([`notification_dispatch::dispatch`]): exactly
//! once per event id (the processed-events marker, under this function's name), the
//! customer's profile switches and notification preferences (per event type:
//! `payment.captured`, `payment.failed`, `payment.refunded`) choose the live push, email and
//! SMS, the email/SMS messages go to
//! `notifications-outbound` through the outbox with ids and amounts only, and events for
//! missing or erased customers or another customer's order complete without effect.
//! `authorized` events complete without effect (the customer hears when the money is taken).

use serde_json::json;
use shared::domain::messages::{CustomerEvent, PaymentEvent, PaymentEventType};
use shared::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};

use crate::functions::notification_dispatch;
use crate::invoke::{FunctionError, InvokeFuture, MESSAGE_BINDING};
use crate::startup::AppState;

/// The function's name (the consumer named in the processed-events table).
pub const FUNCTION: &str = "PaymentNotificationDispatch";

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { run(state, request).await })
}

async fn run(
    state: AppState,
    request: InvocationRequest,
) -> Result<InvocationResponse, FunctionError> {
    let message = ServiceBusMessage::<PaymentEvent>::from_request(&request, MESSAGE_BINDING)?;
    let event = message.body;
    if event.event_type == PaymentEventType::Authorized {
        return Ok(ignored(&event));
    }
    notification_dispatch::dispatch(&state, FUNCTION, CustomerEvent::Payment(event)).await
}

/// The reply for an event the customer is not told about.
fn ignored(event: &PaymentEvent) -> InvocationResponse {
    tracing::info!(event_id = %event.event_id, payment_id = %event.payment_id, "payment event not notified");
    InvocationResponse::empty()
        .log(format!(
            "event {} (payment.{}): ignored; the customer is told about captured, failed and refunded payments",
            event.event_id,
            event.event_type.as_str()
        ))
        .with_return_value(json!({ "eventId": event.event_id, "result": "ignored" }))
}
