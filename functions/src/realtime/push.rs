//! Pushes ride the outbox like every other message: the notification dispatch writes one push
//! record per notification it stores, in the same transaction ([`fanout_with_pushes`]), and
//! `OutboxRelay` hands those records to its `signalR` output binding ([`is_push`]). So a push is
//! sent only for a notification that was stored, and a push that fails (no connection, the
//! service down) loses nothing: the notification stays listed by `GET /notifications`.
//!
//! A notification to a customer is pushed only when their preferences let its event type (the
//! notification's category) through the `realtime` channel ([`wanted`]); notifications to staff
//! roles are always pushed (customers' preferences do not govern them).

use shared::domain::notification::{Notification, Recipient};
use shared::domain::preferences::{Channel, Preferences};
use shared::outbox::{OutboxMessage, REALTIME_PUSH_DESTINATION};
use shared::store::Fanout;

/// The relay's `signalR` output binding.
pub const SIGNALR_OUTPUT: &str = "signalRMessages";

/// Adds a push of each notification of a dispatch's fan-out that is [`wanted`] to its outbox
/// messages (`preferences`: the customer's).
pub fn add_pushes(fanout: &mut Fanout, preferences: &Preferences) {
    let pushes: Vec<OutboxMessage> = fanout
        .notifications
        .iter()
        .filter_map(|notification| push_if_wanted(notification, preferences))
        .collect();
    fanout.outbound.extend(pushes);
}

/// Whether `notification` is pushed live: to a staff role always, to a customer when their
/// `preferences` allow `realtime` for its category.
pub fn wanted(notification: &Notification, preferences: &Preferences) -> bool {
    match &notification.recipient {
        Recipient::Customer(_) => preferences.allows(&notification.category, Channel::Realtime),
        Recipient::Role(_) => true,
    }
}

/// The push of `notification` if it is [`wanted`].
pub fn push_if_wanted(
    notification: &Notification,
    preferences: &Preferences,
) -> Option<OutboxMessage> {
    if wanted(notification, preferences) {
        push_message(notification)
    } else {
        None
    }
}

/// The outbox record pushing `notification` to its recipient (none if it cannot be serialised).
pub fn push_message(notification: &Notification) -> Option<OutboxMessage> {
    let body = serde_json::to_value(notification).ok()?;
    let action = super::push_for(&notification.tenant_id, &notification.recipient, body);
    let item = serde_json::to_value(action).ok()?;
    Some(OutboxMessage::realtime_push(
        &format!("{}:realtime", notification.id),
        &item,
        &notification.tenant_id,
        notification.created_at,
    ))
}

/// Whether an outbox record is a push (for the relay's `signalR` output, not Service Bus).
pub fn is_push(message: &OutboxMessage) -> bool {
    message.destination == REALTIME_PUSH_DESTINATION
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::preferences::PreferencesInput;

    fn notification(recipient: Recipient) -> Notification {
        Notification {
            id: "n-1".into(),
            tenant_id: "contoso".into(),
            recipient,
            category: "order.shipped".into(),
            title: "Order shipped".into(),
            message: "Your order o-1 is on its way.".into(),
            order_id: Some("o-1".into()),
            read_at: None,
            created_at: shared::domain::now(),
        }
    }

    #[test]
    fn a_customer_s_notification_goes_to_their_user_and_a_role_s_to_its_group() {
        let to_customer = push_message(&notification(Recipient::Customer("c-1".into()))).unwrap();
        assert!(is_push(&to_customer));
        assert_eq!(to_customer.message_id, "n-1:realtime");
        let item: serde_json::Value = serde_json::from_str(&to_customer.body).unwrap();
        assert_eq!(item["userId"], "contoso:customer:c-1");
        assert_eq!(item["target"], "notification");
        assert_eq!(item["arguments"][0]["id"], "n-1");

        let to_role = push_message(&notification(Recipient::Role("order-manager".into()))).unwrap();
        let item: serde_json::Value = serde_json::from_str(&to_role.body).unwrap();
        assert_eq!(item["groupName"], "contoso:role:order-manager");
        assert!(item.get("userId").is_none());
    }

    #[test]
    fn realtime_switched_off_stops_the_customer_s_push_but_not_the_role_s() {
        let input: PreferencesInput = serde_json::from_value(
            serde_json::json!({"eventTypes": {"order.shipped": {"realtime": false}}}),
        )
        .unwrap();
        let off = input.resolve("c-1").unwrap();
        let to_customer = notification(Recipient::Customer("c-1".into()));
        assert!(push_if_wanted(&to_customer, &off).is_none());
        assert!(push_if_wanted(&to_customer, &Preferences::defaults("c-1")).is_some());
        let to_role = notification(Recipient::Role("order-manager".into()));
        assert!(push_if_wanted(&to_role, &off).is_some());
    }
}
