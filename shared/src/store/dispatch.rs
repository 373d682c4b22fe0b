//! The dispatch port: turning one event a customer is told about (an order or a payment
//! event, [`CustomerEvent`]) into notifications exactly once.
//!
//! The consumer hands the adapter the event and a [`FanoutPlan`] (a pure function deciding,
//! from the customer and their notification preferences as stored, what to create). The
//! adapter checks the event was not processed before, looks the customer, their preferences
//! and the order up, runs the plan and stores its
//! notifications, audit entries, outbound messages (as outbox records) and the processed-event
//! marker in one transaction, so a redelivered event has no second effect and a concurrent
//! erasure cannot leave a notification behind.

use super::StoreResult;
use crate::domain::audit::AuditEntry;
use crate::domain::customer::Customer;
use crate::domain::messages::CustomerEvent;
use crate::domain::notification::Notification;
use crate::domain::preferences::Preferences;
use crate::domain::tenant::TenantId;
use crate::outbox::OutboxMessage;

/// What one event produces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fanout {
    pub notifications: Vec<Notification>,
    /// Messages for the outbound queue (ids only), written to the outbox.
    pub outbound: Vec<OutboxMessage>,
    pub audit: Vec<AuditEntry>,
}

/// Decides the fan-out of `event` for `customer` (an active customer whose order it is), given
/// their notification preferences (the defaults when they never set any).
pub type FanoutPlan = fn(&Customer, &Preferences, &CustomerEvent) -> Fanout;

/// Why an event changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    CustomerMissing,
    /// Erased, or an erasure was requested.
    CustomerErased,
    /// The order does not exist or is another customer's.
    OrderMissing,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerMissing => "customer not found",
            Self::CustomerErased => "customer erased or erasure requested",
            Self::OrderMissing => "order not found for this customer",
        }
    }
}

/// What handling an event did.
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchOutcome {
    /// First delivery: the plan's records were stored, its outbound messages are in the outbox.
    Dispatched {
        notifications: usize,
        outbound: usize,
    },
    /// Processed before: nothing to do (its outbound messages were committed with it).
    Duplicate,
    /// Nothing to do (recorded, so a redelivery is a duplicate).
    Skipped(SkipReason),
}

#[async_trait::async_trait]
pub trait DispatchStore: Send + Sync {
    /// Handles `event` for `consumer` once (see the module doc).
    async fn dispatch_event(
        &self,
        tenant: &TenantId,
        consumer: &str,
        event: &CustomerEvent,
        plan: FanoutPlan,
    ) -> StoreResult<DispatchOutcome>;
}
