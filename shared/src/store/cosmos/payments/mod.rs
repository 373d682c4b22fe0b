//! Cosmos DB adapter of [`PaymentStore`]. A payment is one document (refunds embedded) in its
//! customer's partition, beside the order it pays, so everything a payment write touches is
//! one transactional batch:
//!
//! - `paymentLock:{orderId}` names the payment that holds the order. A new payment creates it
//!   (or re-points one left by a payment that no longer holds the order) in the batch that
//!   creates the payment, so of concurrent payments of one order exactly one commits; the
//!   update that makes the holder failed or voided deletes it in its own batch.
//! - `paymentKey:{key}` is created with the payment: of concurrent requests with one key, one
//!   commits (the others read the first payment again). Keys are looked up tenant-wide by the
//!   payment's `idempotencyKey`; the key document expires after a day.
//! - `paymentWebhook:{eventId}` marks a webhook event applied (TTL 30 days), created in the
//!   batch of the update it applied.
//!
//! Writes re-read and retry when the payment changed under them (if-match on `_etag`). The
//! envelope's `at` is when reconciliation must look at the payment (absent while settled), so
//! [`PaymentStore::unsettled_payments`] is one cross-partition `ORDER BY c.at, c.id`.

mod writes;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::doc::{customer_scope, doc_id, kind, Doc};
use super::support::{param, Attempt, KeysetQuery, Order as ListOrder};
use super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::payment::{Applied, Payment, PaymentUpdate, Refund};
use crate::domain::tenant::TenantId;
use crate::store::payment_record::{unsettled_since, StoredPayment};
use crate::store::{
    ts, Page, PageRequest, PaymentFilter, PaymentStore, Started, StoreError, StoreResult,
};

/// How often a payment write re-reads and retries after a concurrent change (refunds of one
/// payment and payments of one order race on one document).
const PAYMENT_ATTEMPTS: u32 = 16;

/// Payment idempotency-key documents live a day (the payment itself keeps its key).
const KEY_TTL_SECONDS: i64 = 24 * 3600;

/// Webhook markers live 30 days (a provider retries a webhook for a few days).
const WEBHOOK_TTL_SECONDS: i64 = 30 * 24 * 3600;

/// The body of `paymentLock:{orderId}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentLock {
    order_id: String,
    payment_id: String,
}

/// The body of `paymentKey:{key}` and of `paymentWebhook:{eventId}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentMarker {
    name: String,
    payment_id: String,
}

/// The stored form of `payment` (its ETag as the version; `at` = when it became unsettled).
fn payment_doc(payment: &Payment) -> Doc<StoredPayment> {
    let mut doc = Doc::new(
        kind::PAYMENT,
        &payment.id,
        &payment.tenant_id,
        customer_scope(&payment.customer_id),
        ts(payment.created_at),
        StoredPayment::new(payment),
    )
    .with_version(payment.etag.clone());
    doc.at = unsettled_since(payment).map(ts);
    doc
}

/// `payment` as a replacement of `read` (if-match on the `_etag` it was read with).
pub(in crate::store::cosmos) fn rewritten(
    read: &Doc<StoredPayment>,
    payment: &Payment,
) -> Doc<StoredPayment> {
    let mut doc = payment_doc(payment);
    doc.cosmos_etag.clone_from(&read.cosmos_etag);
    doc
}

pub(in crate::store::cosmos) fn payment_of(doc: &Doc<StoredPayment>) -> Payment {
    let mut payment = doc.body.clone().into_payment();
    payment.etag.clone_from(&doc.version);
    payment
}

impl CosmosStore {
    /// A payment's document, found by id among the tenant's partitions.
    async fn find_payment(&self, tenant: &str, id: &str) -> StoreResult<Doc<StoredPayment>> {
        self.payment_where(tenant, "c.id = @value", doc_id(kind::PAYMENT, id))
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The tenant's payment with idempotency key `key`, if any.
    async fn payment_by_key(
        &self,
        tenant: &str,
        key: &str,
    ) -> StoreResult<Option<Doc<StoredPayment>>> {
        self.payment_where(tenant, "c.body.idempotencyKey = @value", key.to_owned())
            .await
    }

    async fn payment_where(
        &self,
        tenant: &str,
        condition: &str,
        value: String,
    ) -> StoreResult<Option<Doc<StoredPayment>>> {
        let docs: Vec<Doc<StoredPayment>> = self
            .query_docs(
                self.data(),
                super::support::tenant_prefix_feed(tenant),
                &format!(
                    "SELECT * FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND {condition}"
                ),
                vec![
                    param("@tenant", tenant),
                    param("@kind", kind::PAYMENT),
                    param("@value", value),
                ],
            )
            .await?;
        Ok(docs.into_iter().next())
    }

    /// Runs `attempt` until it is done, at most [`PAYMENT_ATTEMPTS`] times, pausing a little
    /// (randomly, so racing writers spread out) between tries.
    async fn payment_attempts<T, F, Fut>(&self, mut attempt: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<Attempt<T>>>,
    {
        for round in 0..PAYMENT_ATTEMPTS {
            if let Attempt::Done(value) = attempt().await? {
                return Ok(value);
            }
            let pause_ms = fastrand::u64(1..=2 + 2 * u64::from(round.min(10)));
            tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
        }
        Err(super::support::busy("payment"))
    }

    /// Payments of every tenant matching `condition`, in `order`, at most `limit`.
    async fn payments_across_tenants(
        &self,
        condition: &str,
        order: &str,
        params: Vec<super::Param>,
        limit: usize,
    ) -> StoreResult<Vec<Payment>> {
        let mut params = params;
        params.push(param("@kind", kind::PAYMENT));
        let docs: Vec<Doc<StoredPayment>> = self
            .query_docs(
                self.data(),
                azure_data_cosmos::FeedScope::full_container(),
                &format!("SELECT TOP {limit} * FROM c WHERE c.type = @kind AND {condition} ORDER BY {order}"),
                params,
            )
            .await?;
        Ok(docs.iter().map(payment_of).collect())
    }
}

#[async_trait::async_trait]
impl PaymentStore for CosmosStore {
    async fn begin_payment(
        &self,
        tenant: &TenantId,
        mut payment: Payment,
        audit: AuditEntry,
    ) -> StoreResult<Started> {
        payment.tenant_id = tenant.as_str().to_owned();
        writes::check_key(&payment.idempotency_key)?;
        let (payment, audit) = (&payment, &audit);
        self.payment_attempts(|| self.try_begin_payment(payment, audit))
            .await
    }

    async fn hold_payment(
        &self,
        tenant: &TenantId,
        id: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<Payment>> {
        self.payment_attempts(|| self.try_hold_payment(tenant.as_str(), id, until))
            .await
    }

    async fn get_payment(&self, tenant: &TenantId, id: &str) -> StoreResult<Payment> {
        Ok(payment_of(&self.find_payment(tenant.as_str(), id).await?))
    }

    async fn list_payments(
        &self,
        tenant: &TenantId,
        filter: PaymentFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Payment>> {
        let name = filter.query_name();
        let mut condition = String::new();
        let mut params = Vec::new();
        if let Some(order_id) = &filter.order_id {
            condition.push_str(" AND c.body.orderId = @order");
            params.push(("@order", json!(order_id)));
        }
        if let Some(customer_id) = &filter.customer_id {
            condition.push_str(" AND c.scope = @scope");
            params.push(("@scope", json!(customer_scope(customer_id))));
        }
        if let Some(status) = filter.status {
            condition.push_str(" AND c.body.status = @status");
            params.push(("@status", json!(status.as_str())));
        }
        let query = KeysetQuery {
            kind: kind::PAYMENT,
            filter: condition,
            params,
            order: ListOrder::Descending,
            query_name: &name,
        };
        let docs: Page<Doc<StoredPayment>> = self.keyset_docs(tenant, query, &page).await?;
        Ok(Page {
            items: docs.items.iter().map(payment_of).collect(),
            continuation: docs.continuation,
        })
    }

    async fn update_payment(
        &self,
        tenant: &TenantId,
        id: &str,
        update: &PaymentUpdate,
        correlation_id: Option<&str>,
        audit: AuditEntry,
    ) -> StoreResult<(Payment, Applied)> {
        let write = writes::UpdateWrite {
            update,
            correlation_id,
            audit: &audit,
        };
        let write = &write;
        self.payment_attempts(|| self.try_update_payment(tenant.as_str(), id, write))
            .await
    }

    async fn begin_refund(
        &self,
        tenant: &TenantId,
        payment_id: &str,
        refund: Refund,
        until: DateTime<Utc>,
        audit: AuditEntry,
    ) -> StoreResult<Started> {
        let (refund, audit) = (&refund, &audit);
        self.payment_attempts(|| {
            self.try_begin_refund(tenant.as_str(), payment_id, refund, until, audit)
        })
        .await
    }

    async fn unsettled_payments(
        &self,
        stale_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Payment>> {
        self.payments_across_tenants(
            "IS_DEFINED(c.at) AND c.at < @stale",
            "c.at, c.id",
            vec![param("@stale", ts(stale_before))],
            limit,
        )
        .await
    }

    async fn payments_updated_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Payment>> {
        self.payments_across_tenants(
            "c.body.updatedKey >= @from AND c.body.updatedKey < @to",
            "c.body.updatedKey",
            vec![param("@from", ts(from)), param("@to", ts(to))],
            limit,
        )
        .await
    }
}
