//! `NotificationDispatch`: turns order events from the `order-events` topic (subscription
//! `notifications`, [`OrderEvent`]) into in-app notifications, and email/SMS messages on the
//! `notifications-outbound` queue (output binding `outboundNotifications`).
//!
//! Not implemented yet: fan-out lands with issue 4. Until then a malformed event fails as bad
//! input and a valid one fails as not implemented, so it is kept (redelivered, dead-lettered,
//! replayable).

use shared::domain::messages::OrderEvent;
use shared::protocol::InvocationRequest;

use crate::app::AppState;
use crate::invoke::InvokeFuture;

pub fn invoke(_state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { super::pending::message::<OrderEvent>(&request, "NotificationDispatch", 4) })
}
