//! Live pushes of notifications (Azure SignalR Service in serverless mode; the local runtime's
//! SignalR-compatible service in local mode): who a connection belongs to, and what a stored
//! notification turns into.
//!
//! - User ids are tenant-scoped: `{tenant}:customer:{customerId}` for a client (a client token is
//!   bound to one customer record, and notifications name customers), `{tenant}:employee:{oid}`
//!   for an employee. API Management derives the same id from the validated token and sets it
//!   as [`USER_ID_HEADER`]; the negotiate function checks that it matches ([`user_id`]).
//! - Employees are in a group per role of their tenant, `{tenant}:role:{role}`, joined at
//!   negotiate; notifications addressed to a role go to that group.
//! - A notification is pushed as the invocation [`NOTIFICATION_TARGET`] with one argument: the
//!   notification as the API returns it ([`push_for`]).

pub mod push;

use shared::auth::{Principal, PrincipalKind};
use shared::domain::notification::Recipient;
use shared::protocol::SignalRAction;

/// The header API Management sets to the caller's user id, read by the binding's `userId`.
pub const USER_ID_HEADER: &str = "x-ms-signalr-userid";

/// The client method a notification invokes.
pub const NOTIFICATION_TARGET: &str = "notification";

/// The user id of a principal (none for app-only tokens: they have no live view).
pub fn user_id(principal: &Principal) -> Option<String> {
    let tenant = principal.tenant.as_str();
    match &principal.kind {
        PrincipalKind::Client { customer_id } => Some(customer_user(tenant, customer_id)),
        PrincipalKind::Employee { .. } => Some(format!("{tenant}:employee:{}", principal.subject)),
        PrincipalKind::App { .. } => None,
    }
}

/// The user id of a customer of `tenant`.
pub fn customer_user(tenant: &str, customer_id: &str) -> String {
    format!("{tenant}:customer:{customer_id}")
}

/// The group of `tenant`'s employees holding `role`.
pub fn role_group(tenant: &str, role: &str) -> String {
    format!("{tenant}:role:{role}")
}

/// The group actions that put an employee in their role groups (none for a client).
pub fn group_actions(principal: &Principal) -> Vec<SignalRAction> {
    let (Some(user), Some(roles)) = (user_id(principal), principal.roles()) else {
        return Vec::new();
    };
    roles
        .iter()
        .map(|role| {
            SignalRAction::add_user_to_group(
                &user,
                &role_group(principal.tenant.as_str(), role.as_str()),
            )
        })
        .collect()
}

/// The push of a notification to its recipient: the customer's user, or the role's group.
pub fn push_for(
    tenant: &str,
    recipient: &Recipient,
    notification: serde_json::Value,
) -> SignalRAction {
    match recipient {
        Recipient::Customer(customer_id) => SignalRAction::to_user(
            &customer_user(tenant, customer_id),
            NOTIFICATION_TARGET,
            notification,
        ),
        Recipient::Role(role) => {
            SignalRAction::to_group(&role_group(tenant, role), NOTIFICATION_TARGET, notification)
        }
    }
}
