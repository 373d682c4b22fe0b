//! The storage ports the API and the jobs use: one trait per aggregate, each call scoped to a
//! tenant (the partition key), each write carrying the audit entry that the adapter stores
//! atomically with it. [`Store`] is all of them together; adapters implement every trait.

use chrono::{DateTime, Utc};

use super::{HealthCheck, IfMatch, Page, PageRequest, StoreError};
use crate::domain::audit::AuditEntry;
use crate::domain::customer::{Customer, CustomerInput};
use crate::domain::gdpr::ErasureRecord;
use crate::domain::notification::{Notification, Recipient};
use crate::domain::order::{Order, OrderInput, OrderStatus, StatusChange, StatusInput};
use crate::domain::product::{Product, ProductInput};
use crate::domain::tenant::TenantId;

/// Result type of every storage call.
pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait::async_trait]
pub trait CustomerStore: Send + Sync {
    async fn create_customer(
        &self,
        tenant: &TenantId,
        customer: Customer,
        audit: AuditEntry,
    ) -> StoreResult<Customer>;
    async fn get_customer(&self, tenant: &TenantId, id: &str) -> StoreResult<Customer>;
    /// Replaces the profile; with `if_match`, only if the stored ETag still matches.
    async fn update_customer(
        &self,
        tenant: &TenantId,
        id: &str,
        input: CustomerInput,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<Customer>;
    /// Customers by creation time.
    async fn list_customers(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<Customer>>;
    /// Records an erasure request and marks the customer; if one is already open for the
    /// customer, returns that one instead (a repeated DELETE has one effect).
    async fn request_erasure(
        &self,
        tenant: &TenantId,
        request: ErasureRecord,
        audit: AuditEntry,
    ) -> StoreResult<(ErasureRecord, bool)>;
    async fn get_erasure(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        request_id: &str,
    ) -> StoreResult<ErasureRecord>;
}

/// Filters of the product listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFilter {
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    pub category: Option<String>,
}

impl ProductFilter {
    /// The listing's name in continuation tokens: a token is valid only for the same filters.
    pub(crate) fn query_name(&self) -> String {
        format!("products:{:?}:{:?}", self.name, self.category)
    }
}

#[async_trait::async_trait]
pub trait ProductStore: Send + Sync {
    async fn create_product(
        &self,
        tenant: &TenantId,
        product: Product,
        audit: AuditEntry,
    ) -> StoreResult<Product>;
    async fn get_product(&self, tenant: &TenantId, id: &str) -> StoreResult<Product>;
    async fn update_product(
        &self,
        tenant: &TenantId,
        id: &str,
        input: ProductInput,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<Product>;
    async fn list_products(
        &self,
        tenant: &TenantId,
        filter: ProductFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Product>>;
}

/// Filters of the order listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub customer_id: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

impl OrderFilter {
    /// The listing's name in continuation tokens: a token is valid only for the same filters.
    pub(crate) fn query_name(&self) -> String {
        format!(
            "orders:{:?}:{:?}:{:?}:{:?}",
            self.status.map(OrderStatus::as_str),
            self.customer_id,
            self.created_from.map(super::ts),
            self.created_to.map(super::ts)
        )
    }
}

/// A validated order to create, for a known customer.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: String,
    pub customer_id: String,
    pub input: OrderInput,
    pub actor_id: String,
    /// `Idempotency-Key` and a hash of the request it came with.
    pub idempotency: Option<IdempotencyKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// What creating an order did.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderCreated {
    /// A new order; stock was reserved.
    New(Order),
    /// The idempotency key was seen before with the same request: the first result.
    Replayed(Order),
}

#[async_trait::async_trait]
pub trait OrderStore: Send + Sync {
    /// Creates the order, checking and reserving stock for every line atomically.
    async fn create_order(
        &self,
        tenant: &TenantId,
        order: NewOrder,
        audit: AuditEntry,
    ) -> StoreResult<OrderCreated>;
    async fn get_order(&self, tenant: &TenantId, id: &str) -> StoreResult<Order>;
    /// Newest first.
    async fn list_orders(
        &self,
        tenant: &TenantId,
        filter: OrderFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Order>>;
    /// Moves the order along its state machine (cancelling releases the reserved stock).
    async fn change_order_status(
        &self,
        tenant: &TenantId,
        id: &str,
        change: StatusInput,
        actor_id: &str,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<Order>;
    async fn order_history(&self, tenant: &TenantId, id: &str) -> StoreResult<Vec<StatusChange>>;
}

#[async_trait::async_trait]
pub trait NotificationStore: Send + Sync {
    async fn create_notification(
        &self,
        tenant: &TenantId,
        notification: Notification,
        audit: AuditEntry,
    ) -> StoreResult<Notification> {
        self.create_notification_with_messages(tenant, notification, audit, Vec::new())
            .await
    }
    /// Stores the notification, its audit entry and `messages` (outbox records: a live push,
    /// for one) in one transaction (SQLite) or transactional batch (Cosmos DB).
    async fn create_notification_with_messages(
        &self,
        tenant: &TenantId,
        notification: Notification,
        audit: AuditEntry,
        messages: Vec<crate::outbox::OutboxMessage>,
    ) -> StoreResult<Notification>;
    /// Notifications for any of `recipients`, unread first, then newest first.
    async fn list_notifications(
        &self,
        tenant: &TenantId,
        recipients: &[Recipient],
        page: PageRequest,
    ) -> StoreResult<Page<Notification>>;
    /// Marks one read, if it is addressed to one of `recipients` (else `NotFound`).
    async fn mark_notification_read(
        &self,
        tenant: &TenantId,
        id: &str,
        recipients: &[Recipient],
        audit: AuditEntry,
    ) -> StoreResult<Notification>;
}

/// Filters of the audit listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub customer_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl AuditFilter {
    /// The listing's name in continuation tokens: a token is valid only for the same filters.
    pub(crate) fn query_name(&self) -> String {
        format!(
            "audit:{:?}:{:?}:{:?}:{:?}:{:?}:{:?}",
            self.actor_id,
            self.action,
            self.target_id,
            self.customer_id,
            self.from.map(super::ts),
            self.to.map(super::ts)
        )
    }
}

#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry for an action that changed nothing else (an export, say).
    async fn append_audit(&self, tenant: &TenantId, entry: AuditEntry) -> StoreResult<()>;
    /// Appends an entry sent by another service, at most once per `entry.id` (which the caller
    /// derives from the service and its own event id): when an entry with this id exists in
    /// the tenant, nothing is written and the stored entry is answered.
    async fn record_audit_once(
        &self,
        tenant: &TenantId,
        entry: AuditEntry,
    ) -> StoreResult<AuditRecorded>;
    /// Newest first.
    async fn list_audit(
        &self,
        tenant: &TenantId,
        filter: AuditFilter,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEntry>>;
}

/// What [`AuditStore::record_audit_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditRecorded {
    /// Written now.
    New(AuditEntry),
    /// An entry with this id was there already; this is it, as stored.
    Existing(AuditEntry),
}

/// Consents (GDPR art. 7): an append-only history per customer.
#[async_trait::async_trait]
pub trait ConsentStore: Send + Sync {
    /// Appends a grant or withdrawal with its audit entry, in one transaction; `NotFound` when
    /// the customer does not exist in the tenant.
    async fn record_consent(
        &self,
        tenant: &TenantId,
        record: crate::domain::consent::ConsentRecord,
        audit: AuditEntry,
    ) -> StoreResult<crate::domain::consent::ConsentRecord>;
    /// Every record of the customer, oldest first (empty when none; the caller checks that the
    /// customer exists).
    async fn consent_history(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> StoreResult<Vec<crate::domain::consent::ConsentRecord>>;
}

/// Notification preferences: one document per customer (none: the defaults, every channel on).
#[async_trait::async_trait]
pub trait PreferenceStore: Send + Sync {
    /// The customer's preferences as set, completed with the defaults of event types declared
    /// since; `None` when never set (the caller checks that the customer exists).
    async fn get_preferences(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> StoreResult<Option<crate::domain::preferences::Preferences>>;
    /// The preferences notifications go by: the stored ones, or the defaults when never set.
    async fn effective_preferences(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> StoreResult<crate::domain::preferences::Preferences> {
        Ok(self
            .get_preferences(tenant, customer_id)
            .await?
            .unwrap_or_else(|| crate::domain::preferences::Preferences::defaults(customer_id)))
    }
    /// Replaces the customer's preferences (a new ETag, `updatedAt` now) with the audit entry,
    /// in one transaction. `if_match` is checked against the stored ETag
    /// ([`crate::domain::preferences::DEFAULT_ETAG`] while never set); `NotFound` when the
    /// customer does not exist in the tenant, `Rejected` when their erasure was requested.
    async fn put_preferences(
        &self,
        tenant: &TenantId,
        preferences: crate::domain::preferences::Preferences,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<crate::domain::preferences::Preferences>;
}

/// Findings of breach detection ([`crate::security::SecurityEvent`]).
#[async_trait::async_trait]
pub trait SecurityEventStore: Send + Sync {
    /// Keeps the event with its audit entry and the outbox record announcing it
    /// (`security-alerts`), in one transaction.
    async fn record_security_event(
        &self,
        tenant: &TenantId,
        event: crate::security::SecurityEvent,
        audit: AuditEntry,
        message: crate::outbox::OutboxMessage,
    ) -> StoreResult<()>;
    /// Newest first.
    async fn list_security_events(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<crate::security::SecurityEvent>>;
}

/// Every port together: what the app holds as `Arc<dyn Store>`.
pub trait Store:
    CustomerStore
    + ConsentStore
    + PreferenceStore
    + ProductStore
    + OrderStore
    + NotificationStore
    + AuditStore
    + SecurityEventStore
    + super::ErasureStore
    + super::DispatchStore
    + super::ErpStore
    + super::jobs::JobsStore
    + crate::outbox::OutboxStore
    + super::PaymentStore
    + super::ShipmentStore
    + HealthCheck
{
}

impl<T> Store for T where
    T: CustomerStore
        + ConsentStore
        + PreferenceStore
        + ProductStore
        + OrderStore
        + NotificationStore
        + AuditStore
        + SecurityEventStore
        + super::ErasureStore
        + super::DispatchStore
        + super::ErpStore
        + super::jobs::JobsStore
        + crate::outbox::OutboxStore
        + super::PaymentStore
        + super::ShipmentStore
        + HealthCheck
{
}
