//! The payments' storage port: recording a payment before the gateway is called, applying what
//! the gateway says (atomically with the `payment-events` it announces, through the outbox, and
//! with the webhook's event id so a repeated webhook applies once), refunds within what was
//! captured, and the cross-tenant queries of reconciliation.
//!
//! Idempotency is the store's: a payment and a refund carry the client's `Idempotency-Key` and
//! a hash of the request; the same key with the same request replays, with another request is
//! refused ([`Rejection::IdempotencyKeyReused`](crate::domain::rejection::Rejection)), and while
//! the first request still holds the payment ([`Payment::in_flight_until`]) it is "in progress".
//! An order has at most one payment that is not failed or voided
//! ([`Rejection::OrderAlreadyPaid`](crate::domain::rejection::Rejection)), so concurrent
//! payments of one order capture once.

use chrono::{DateTime, Utc};

use super::{Page, PageRequest, StoreResult};
use crate::domain::audit::AuditEntry;
use crate::domain::payment::{Applied, Payment, PaymentStatus, PaymentUpdate, Refund};
use crate::domain::tenant::TenantId;

/// What recording a payment (or a refund) with an idempotency key found.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// Recorded now; the caller holds it until `in_flight_until` and calls the gateway.
    New(Payment),
    /// The key was seen with the same request and nobody holds the payment: the caller now
    /// holds it again (a crashed first attempt is resumed with the same key).
    Resumed(Payment),
    /// The key was seen with the same request and the first request is done: its result.
    Replayed(Payment),
    /// The first request with this key still holds the payment (answer 409).
    InProgress(Payment),
}

/// Filters of the payment listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    pub order_id: Option<String>,
    pub customer_id: Option<String>,
    pub status: Option<PaymentStatus>,
}

impl PaymentFilter {
    /// The listing's name in continuation tokens: a token is valid only for the same filters.
    pub fn query_name(&self) -> String {
        format!(
            "payments:{:?}:{:?}:{:?}",
            self.order_id,
            self.customer_id,
            self.status.map(PaymentStatus::as_str)
        )
    }
}

#[async_trait::async_trait]
pub trait PaymentStore: Send + Sync {
    /// Records `payment` (status pending, `in_flight_until` set by the caller) unless its
    /// idempotency key was seen before in the tenant (see [`Started`]); refuses it when another
    /// payment holds the order.
    async fn begin_payment(
        &self,
        tenant: &TenantId,
        payment: Payment,
        audit: AuditEntry,
    ) -> StoreResult<Started>;

    /// Takes hold of a payment that nobody holds (`in_flight_until` past or unset) until
    /// `until`; `None` when someone holds it. For reconciliation and for event-driven refunds.
    async fn hold_payment(
        &self,
        tenant: &TenantId,
        id: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<Payment>>;

    async fn get_payment(&self, tenant: &TenantId, id: &str) -> StoreResult<Payment>;

    /// Newest first.
    async fn list_payments(
        &self,
        tenant: &TenantId,
        filter: PaymentFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Payment>>;

    /// Applies `update` with [`Payment::apply`] and, in the same transaction, writes the
    /// outbox record of every event it announces and the audit entry (when anything changed).
    /// An update from a webhook whose event id was applied before changes nothing.
    async fn update_payment(
        &self,
        tenant: &TenantId,
        id: &str,
        update: &PaymentUpdate,
        correlation_id: Option<&str>,
        audit: AuditEntry,
    ) -> StoreResult<(Payment, Applied)>;

    /// Records `refund` (status pending) on a captured payment and holds the payment until
    /// `until`, unless the refund's idempotency key was seen on this payment before (the
    /// [`Started`] variants, as for payments). Refuses a refund over
    /// [`Payment::refundable_cents`] or of a payment that is not captured.
    async fn begin_refund(
        &self,
        tenant: &TenantId,
        payment_id: &str,
        refund: Refund,
        until: DateTime<Utc>,
        audit: AuditEntry,
    ) -> StoreResult<Started>;

    /// Payments of every tenant that reconciliation must settle: unknown, pending or
    /// authorized and not updated since `stale_before`, or with a refund pending or unknown;
    /// oldest first, at most `limit`.
    async fn unsettled_payments(
        &self,
        stale_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Payment>>;

    /// Payments of every tenant created or updated in `[from, to)` (the daily comparison with
    /// the gateway's transactions), at most `limit`.
    async fn payments_updated_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Payment>>;
}
