//! `NotificationDispatch`: turns order events from the `order-events` topic (subscription
//! `notifications`, [`OrderEvent`]) into in-app notifications, and email/SMS messages for the
//! `notifications-outbound` queue (written to the outbox with the notifications; `OutboxRelay`
//! sends them). `PaymentNotificationDispatch` does the same for payment events, through
//! [`dispatch`] and [`fanout`]: one mechanism for every [`CustomerEvent`].
//!
//! Who hears about what ([`fanout`]):
//!
//! | event | the customer | staff roles |
//! |---|---|---|
//! | order `created` | in-app + email/SMS "order received" | none |
//! | order `confirmed` | in-app + email/SMS | none |
//! | order `shipped` | in-app + email/SMS | none |
//! | order `delivered` | in-app + email/SMS | none |
//! | order `cancelled` | in-app + email/SMS | `order-manager` (in-app: stock was released, follow-up) |
//! | payment `captured` | in-app + email/SMS "payment received" | none |
//! | payment `failed` | in-app + email/SMS "payment failed" | none |
//! | payment `refunded` | in-app + email/SMS "refund of X issued" | none |
//!
//! The customer's choices decide the channels, in two layers: the profile's `preferences` are
//! the master switches (`inApp` an in-app notification at all, `email` email messages, `sms`
//! SMS messages, only when a phone number is on file), and the notification preferences
//! ([`Preferences`], per event type = the notification's category) switch `realtime` (the live
//! push), `email` and `sms` per event type. A channel is used when both let it through; the
//! in-app notification is stored whatever the per-event switches say (the in-app list is the
//! record). Staff notifications are in-app (and pushed to the role) whatever the customer chose.
//!
//! **What a sender receives** on `notifications-outbound`: one JSON object per message, ids
//! only, never an address or a name (the sender looks the address up, so an erased customer
//! is never contacted from a stale message):
//!
//! ```json
//! {"deliveryId": "<eventId>:email", "channel": "email", "tenantId": "t-1", "customerId": "c-1",
//!  "notificationId": "<in-app notification id, or null>", "template": "order.shipped",
//!  "orderId": "o-1", "eventType": "shipped", "occurredAt": "2026-11-21T02:00:00Z"}
//! ```
//!
//! `channel` is `email` or `sms`; `template` is `order.<eventType>` or `payment.<eventType>`;
//! a payment event's message adds `paymentId`, `amountCents` and `currency`. The message's Service Bus
//! `MessageId` is its `deliveryId`. Delivery is at least once (a relay retry can send one
//! twice), so senders deduplicate on `deliveryId`.
//!
//! Exactly once for notifications: events are deduplicated by `eventId` (the
//! `processed_events` table), in the same transaction that stores the notifications and the
//! outbound messages' outbox records. Events
//! for missing or erased customers (or with an erasure requested), or for an order that is
//! not the customer's, complete without effect (logged with ids only). A malformed event is
//! bad input (400): retried, then dead-lettered with the reason.

use serde_json::json;
use shared::domain::audit::AuditEntry;
use shared::domain::customer::Customer;
use shared::domain::messages::{
    CustomerEvent, OrderEvent, OrderEventType, PaymentEvent, PaymentEventType,
};
use shared::domain::notification::{Notification, Recipient};
use shared::domain::preferences::{Channel, Preferences};
use shared::domain::tenant::TenantId;
use shared::domain::validation::new_id;
use shared::outbox::OutboxMessage;
use shared::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};
use shared::store::{DispatchOutcome, Fanout};

use crate::invoke::MESSAGE_BINDING;
use crate::invoke::{checked_message_ids, FunctionError, InvokeFuture};
use crate::startup::AppState;

/// The function's name (the consumer named in the processed-events table).
pub const FUNCTION: &str = "NotificationDispatch";
const ACTOR: &str = "system:NotificationDispatch";

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { run(state, request).await })
}

async fn run(
    state: AppState,
    request: InvocationRequest,
) -> Result<InvocationResponse, FunctionError> {
    let message = ServiceBusMessage::<OrderEvent>::from_request(&request, MESSAGE_BINDING)?;
    dispatch(&state, FUNCTION, CustomerEvent::Order(message.body)).await
}

/// Dispatches `event` once for `consumer` (the function's name: each function deduplicates
/// its own deliveries) and replies with what it did.
pub(crate) async fn dispatch(
    state: &AppState,
    consumer: &str,
    event: CustomerEvent,
) -> Result<InvocationResponse, FunctionError> {
    let tenant = checked_ids(&event)?;
    let outcome = state
        .ports
        .dispatch
        .dispatch_event(&tenant, consumer, &event, fanout_and_pushes)
        .await
        .map_err(|error| {
            FunctionError::Failed(format!(
                "event {} could not be dispatched: {error}",
                event.event_id()
            ))
        })?;
    Ok(reply(&event, outcome))
}

/// [`fanout`] plus a live push of each notification the preferences let through
/// (`crate::realtime::push`).
fn fanout_and_pushes(
    customer: &Customer,
    preferences: &Preferences,
    event: &CustomerEvent,
) -> Fanout {
    let mut planned = fanout(customer, preferences, event);
    crate::realtime::push::add_pushes(&mut planned, preferences);
    planned
}

fn checked_ids(event: &CustomerEvent) -> Result<TenantId, FunctionError> {
    let mut ids = vec![
        ("eventId", event.event_id()),
        ("orderId", event.order_id()),
        ("customerId", event.customer_id()),
    ];
    if let CustomerEvent::Payment(payment) = event {
        ids.push(("paymentId", &payment.payment_id));
    }
    checked_message_ids(event.tenant_id(), &ids)
}

fn reply(event: &CustomerEvent, outcome: DispatchOutcome) -> InvocationResponse {
    let (result, notifications, outbound) = match outcome {
        DispatchOutcome::Dispatched {
            notifications,
            outbound,
        } => ("dispatched".to_owned(), notifications, outbound),
        DispatchOutcome::Duplicate => ("duplicate".to_owned(), 0, 0),
        DispatchOutcome::Skipped(reason) => (format!("skipped: {}", reason.as_str()), 0, 0),
    };
    tracing::info!(event_id = %event.event_id(), order_id = %event.order_id(), customer_id = %event.customer_id(), category = %event.category(), result = %result, notifications, outbound, "event dispatched to the customer");
    let line = format!(
        "event {} ({}): {result}; {notifications} notifications, {outbound} outbound messages",
        event.event_id(),
        event.category(),
    );
    InvocationResponse::empty()
        .log(line)
        .with_return_value(json!({ "eventId": event.event_id(), "result": result, "notifications": notifications, "outbound": outbound }))
}

/// The staff roles told about an event (in-app).
pub fn staff_roles(event: &CustomerEvent) -> &'static [&'static str] {
    match event {
        CustomerEvent::Order(order) if order.event_type == OrderEventType::Cancelled => {
            &["order-manager"]
        }
        CustomerEvent::Order(_) | CustomerEvent::Payment(_) => &[],
    }
}

/// What the customer is told: title and message (ids and amounts only).
fn customer_text(event: &CustomerEvent) -> (&'static str, String) {
    match event {
        CustomerEvent::Order(order) => order_text(order),
        CustomerEvent::Payment(payment) => payment_text(payment),
    }
}

fn order_text(event: &OrderEvent) -> (&'static str, String) {
    let order = &event.order_id;
    match event.event_type {
        OrderEventType::Created => ("Order received", format!("We received your order {order}.")),
        OrderEventType::Confirmed => (
            "Order confirmed",
            format!("Your order {order} is confirmed."),
        ),
        OrderEventType::Shipped => (
            "Order shipped",
            format!("Your order {order} is on its way."),
        ),
        OrderEventType::Delivered => (
            "Order delivered",
            format!("Your order {order} was delivered."),
        ),
        OrderEventType::Cancelled => (
            "Order cancelled",
            format!("Your order {order} was cancelled."),
        ),
        OrderEventType::Returned => (
            "Return received",
            format!("The return of your order {order} was received."),
        ),
    }
}

fn payment_text(event: &PaymentEvent) -> (&'static str, String) {
    let order = &event.order_id;
    let amount = format_amount(event.amount_cents, &event.currency);
    match event.event_type {
        PaymentEventType::Captured => (
            "Payment received",
            format!("We received your payment of {amount} for order {order}."),
        ),
        PaymentEventType::Failed => (
            "Payment failed",
            format!("Your payment for order {order} did not go through."),
        ),
        PaymentEventType::Refunded => (
            "Refund issued",
            format!("A refund of {amount} for order {order} was issued."),
        ),
        PaymentEventType::Authorized => (
            "Payment authorized",
            format!("Your payment of {amount} for order {order} is authorized."),
        ),
    }
}

/// `12.50 EUR`: minor units shown with two decimals, except for JPY (of the currencies the
/// gateway takes, the only one without minor units in ISO 4217).
fn format_amount(cents: i64, currency: &str) -> String {
    if currency == "JPY" {
        return format!("{cents} {currency}");
    }
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", cents / 100, cents % 100)
}

/// The fan-out of `event` for `customer` (active, and the order's owner) with their
/// `preferences`; see the module doc. Live pushes are added by [`fanout_and_pushes`].
pub fn fanout(customer: &Customer, preferences: &Preferences, event: &CustomerEvent) -> Fanout {
    let mut fanout = Fanout::default();
    let category = event.category();
    let mut in_app_id = None;
    if customer.preferences.in_app {
        let (title, message) = customer_text(event);
        let notification = notification(
            event,
            Recipient::Customer(customer.id.clone()),
            &category,
            title,
            message,
        );
        in_app_id = Some(notification.id.clone());
        push(&mut fanout, event, notification);
    }
    for role in staff_roles(event) {
        let message = format!(
            "Order {} was cancelled; its stock was released.",
            event.order_id()
        );
        push(
            &mut fanout,
            event,
            notification(
                event,
                Recipient::Role((*role).to_owned()),
                &category,
                "Order cancelled",
                message,
            ),
        );
    }
    let wants = |channel| preferences.allows(&category, channel);
    let channels = [
        ("email", customer.preferences.email && wants(Channel::Email)),
        (
            "sms",
            customer.preferences.sms && customer.phone.is_some() && wants(Channel::Sms),
        ),
    ];
    for (channel, wanted) in channels {
        if wanted {
            fanout
                .outbound
                .push(outbound(event, channel, &category, in_app_id.as_deref()));
        }
    }
    fanout
}

fn notification(
    event: &CustomerEvent,
    recipient: Recipient,
    category: &str,
    title: &str,
    message: String,
) -> Notification {
    Notification {
        id: new_id(),
        tenant_id: event.tenant_id().to_owned(),
        recipient,
        category: category.to_owned(),
        title: title.to_owned(),
        message,
        order_id: Some(event.order_id().to_owned()),
        read_at: None,
        created_at: shared::domain::now(),
    }
}

/// Adds the notification and its audit entry.
fn push(fanout: &mut Fanout, event: &CustomerEvent, notification: Notification) {
    let audit = AuditEntry::now(
        event.tenant_id(),
        ACTOR,
        "notification.dispatch",
        "notification",
        &notification.id,
        event.event_id(),
    )
    .about_customer(event.customer_id());
    fanout.audit.push(audit);
    fanout.notifications.push(notification);
}

fn outbound(
    event: &CustomerEvent,
    channel: &str,
    template: &str,
    notification_id: Option<&str>,
) -> OutboxMessage {
    let delivery_id = format!("{}:{channel}", event.event_id());
    let mut body = json!({
        "deliveryId": delivery_id,
        "channel": channel,
        "tenantId": event.tenant_id(),
        "customerId": event.customer_id(),
        "notificationId": notification_id,
        "template": template,
        "orderId": event.order_id(),
        "eventType": event.event_type(),
        "occurredAt": event.occurred_at(),
    });
    if let CustomerEvent::Payment(payment) = event {
        body["paymentId"] = json!(payment.payment_id);
        body["amountCents"] = json!(payment.amount_cents);
        body["currency"] = json!(payment.currency);
    }
    OutboxMessage::outbound_notification(
        &delivery_id,
        &body,
        event.tenant_id(),
        channel,
        shared::domain::now(),
    )
}
