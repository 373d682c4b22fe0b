//! Marketing messages (`POST /notifications` with a `purpose`): through the consent gate
//! ([`shared::domain::consent_gate`]) at the one point where they are written for sending. With
//! the customer's current consent for the purpose, the in-app notification, its audit entry and
//! the email or SMS message for the senders (an outbox record on `notifications-outbound`) are
//! stored together; without it nothing is sent, the refusal is an audit entry (ids and the
//! purpose only) and the answer is `409`. With the consent, the customer's notification
//! preferences for `marketing` still decide the email/SMS message and the live push (a channel
//! switched off: the notification is stored, that message is not written).

use shared::domain::consent_gate::{self, Refusal};
use shared::domain::customer::{Customer, CustomerStatus};
use shared::domain::notification::{MarketingPurpose, Notification};
use shared::domain::preferences::{Channel, Preferences};
use shared::outbox::OutboxMessage;
use shared::store::StoreError;

use crate::api::{ApiError, Caller};
use crate::startup::AppState;

/// Sends `notification` to `customer` for `purpose` if the gate lets it through.
pub(super) async fn send(
    state: &AppState,
    caller: &Caller,
    customer: &Customer,
    preferences: &Preferences,
    notification: Notification,
    purpose: MarketingPurpose,
) -> Result<Notification, ApiError> {
    let purpose = purpose.consent();
    if customer.status != CustomerStatus::Active {
        return Err(StoreError::Conflict(
            "the customer is erased or their erasure was requested".into(),
        )
        .into());
    }
    let history = state
        .ports
        .consents
        .consent_history(caller.tenant(), &customer.id)
        .await?;
    let channel = match consent_gate::check(purpose, &history) {
        Ok(channel) => channel,
        Err(refusal) => return Err(refuse(state, caller, &customer.id, refusal).await),
    };
    // The gate's channel (`email`, `sms`) is a preference channel of the same name.
    let wanted = Channel::parse(channel)
        .is_some_and(|channel| preferences.allows(&notification.category, channel));
    if wanted && channel == "sms" && customer.phone.is_none() {
        return Err(StoreError::Conflict("the customer has no phone number on file".into()).into());
    }
    // The email or SMS for the senders and the live push, committed with the notification, each
    // as the customer's preferences for `marketing` allow.
    let mut messages = Vec::new();
    if wanted {
        messages.push(OutboxMessage::marketing(
            &notification,
            &customer.id,
            purpose,
            channel,
        ));
    }
    messages.extend(crate::realtime::push::push_if_wanted(
        &notification,
        preferences,
    ));
    let audit = caller
        .audit(
            &format!("notification.marketing.{}", purpose.as_str()),
            "notification",
            &notification.id,
        )
        .about_customer(&customer.id);
    Ok(state
        .ports
        .notifications
        .create_notification_with_messages(caller.tenant(), notification, audit, messages)
        .await?)
}

/// Records the refusal (the customer and the purpose, no content) and answers 409.
async fn refuse(
    state: &AppState,
    caller: &Caller,
    customer_id: &str,
    refusal: Refusal,
) -> ApiError {
    let purpose = match refusal {
        Refusal::NoConsent(purpose) | Refusal::NotAMessagePurpose(purpose) => purpose,
    };
    let audit = caller
        .audit(Refusal::AUDIT_ACTION, "consent", purpose.as_str())
        .about_customer(customer_id);
    if let Err(error) = state.ports.audit.append_audit(caller.tenant(), audit).await {
        return error.into();
    }
    tracing::info!(
        customer_id,
        purpose = purpose.as_str(),
        "marketing message refused: no consent"
    );
    StoreError::Conflict(refusal.to_string()).into()
}
