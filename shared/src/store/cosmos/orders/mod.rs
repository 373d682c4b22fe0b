//! Cosmos DB adapter of [`OrderStore`]. An order is one document in its customer's partition,
//! items and status history embedded, so an order and its items are always written together.
//!
//! Creating an order touches two partitions: the catalogue (stock) and the customer (the
//! order, its idempotency key, its audit entry, the customer's last activity). It runs as a
//! short saga:
//!
//! 1. the idempotency key is checked (a replay returns the first order, nothing else happens);
//! 2. stock for every product of the order is reserved in one catalogue batch, each product
//!    replaced only if unchanged since it was priced (a concurrent order makes the batch fail
//!    as a whole, and the attempt starts again from fresh prices and stock), with a reservation
//!    record of the order in the same batch;
//! 3. one customer batch writes the order, the key, the audit entry and the outbox record of
//!    the `created` event, and touches the customer only if unchanged (an erasure requested
//!    meanwhile makes it fail); the reservation record is dropped;
//! 4. if step 3 is refused, the stock and the record go back in one batch (compensation).
//!
//! When it cannot be told whether step 3 was applied (a crash, or the write and the check
//! after it both failing), nothing is given back (that could oversell): DatabaseMaintenance
//! settles reservation records older than a grace period ([`CosmosStore::settle_reservations`]).
//! A status change replaces the order (if-match) with its audit entry and the outbox record of
//! the event in one batch. Cancelling writes the order first and then gives its stock back.
//!
//! The catalogue side (reserving, giving back, settling) is in [`stock`].

mod stock;
#[cfg(all(test, feature = "cosmos-emulator"))]
mod tests;

use azure_data_cosmos::TransactionalBatch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::doc::{customer_scope, doc_id, kind, Doc, CATALOG_SCOPE, MAX_DOC_ID_LEN};
use super::support::{
    audit_doc, batch_create, batch_replace, busy, pk, refused, tenant_feed, Attempt, KeysetQuery,
    Order as ListOrder, CONCURRENCY_ATTEMPTS, MAX_BATCH_OPERATIONS,
};
use super::{BatchRefused, CosmosStore};
use crate::domain::audit::AuditEntry;
use crate::domain::etag::new_etag;
use crate::domain::now;
use crate::domain::order::pricing::quantities;
use crate::domain::order::{
    Order, OrderRequest, OrderStatus, PlacedOrder, StatusChange, StatusInput,
};
use crate::domain::product::Product;
use crate::domain::rejection::Rejection;
use crate::domain::tenant::TenantId;
use crate::outbox::OutboxMessage;
use crate::store::{
    check_if_match, ts, IfMatch, NewOrder, OrderCreated, OrderFilter, OrderStore, Page,
    PageRequest, StoreError, StoreResult,
};
use stock::{ReservationChange, StockReservation};

/// How often an order is attempted again when stock or the customer changed under it (a
/// popular product sees many concurrent orders; SQLite would queue them on its write lock).
const ORDER_ATTEMPTS: u32 = 64;

/// Idempotency keys expire after a day (they are only meant for a client's retries).
const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

/// The stored form of an order: the order with its items, and its status history.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CosmosOrder {
    #[serde(flatten)]
    pub order: Order,
    #[serde(default)]
    pub history: Vec<StatusChange>,
}

/// A used `Idempotency-Key` and the order it created.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StoredIdempotency {
    pub key: String,
    pub request_hash: String,
    pub order_id: String,
    pub created_at: DateTime<Utc>,
}

fn order_doc(stored: CosmosOrder) -> Doc<CosmosOrder> {
    let order = &stored.order;
    let doc = Doc::new(
        kind::ORDER,
        &order.id,
        &order.tenant_id,
        customer_scope(&order.customer_id),
        ts(order.created_at),
        stored.clone(),
    );
    doc.with_version(stored.order.etag.clone())
}

/// The order of a stored document, its API ETag filled in.
fn order_of(doc: &Doc<CosmosOrder>) -> Order {
    Order {
        etag: doc.version.clone(),
        ..doc.body.order.clone()
    }
}

impl CosmosStore {
    /// An order's document, found by id among the tenant's partitions.
    async fn find_order(&self, tenant: &TenantId, id: &str) -> StoreResult<Doc<CosmosOrder>> {
        let docs: Vec<Doc<CosmosOrder>> = self
            .query_docs(
                self.data(),
                tenant_feed(tenant),
                "SELECT * FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND c.id = @id",
                vec![
                    ("@tenant", json!(tenant.as_str())),
                    ("@kind", json!(kind::ORDER)),
                    ("@id", json!(doc_id(kind::ORDER, id))),
                ],
            )
            .await?;
        docs.into_iter().next().ok_or(StoreError::NotFound)
    }

    async fn order_in_scope(
        &self,
        tenant: &str,
        customer_id: &str,
        order_id: &str,
    ) -> StoreResult<Option<Doc<CosmosOrder>>> {
        self.read_doc(
            self.data(),
            pk(tenant, &customer_scope(customer_id)),
            &doc_id(kind::ORDER, order_id),
        )
        .await
    }

    /// The first result of an idempotency key, if the key was used (`Err` when it was used
    /// with another request).
    async fn replay(&self, tenant: &str, order: &NewOrder) -> StoreResult<Option<Order>> {
        let Some(idempotency) = &order.idempotency else {
            return Ok(None);
        };
        let scope = customer_scope(&order.customer_id);
        let seen: Option<Doc<StoredIdempotency>> = self
            .read_doc(
                self.data(),
                pk(tenant, &scope),
                &doc_id(kind::IDEMPOTENCY, &idempotency.key),
            )
            .await?;
        let Some(seen) = seen else {
            return Ok(None);
        };
        if seen.body.request_hash != idempotency.request_hash {
            return Err(Rejection::IdempotencyKeyReused.into());
        }
        let first = self
            .order_in_scope(tenant, &order.customer_id, &seen.body.order_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(Some(order_of(&first)))
    }

    /// The products of an order's lines, as read now (with their `_etag`s).
    async fn priced_products(
        &self,
        tenant: &str,
        order: &NewOrder,
    ) -> StoreResult<Vec<Doc<Product>>> {
        let mut products: Vec<Doc<Product>> = Vec::new();
        for line in &order.input.items {
            if products.iter().any(|doc| doc.body.id == line.product_id) {
                continue;
            }
            if let Some(doc) = self.product_doc(tenant, &line.product_id).await? {
                products.push(doc);
            }
        }
        Ok(products)
    }

    /// True when the order document carries `version` (our write was applied).
    async fn order_has_version(
        &self,
        tenant: &str,
        customer_id: &str,
        order_id: &str,
        version: &str,
    ) -> StoreResult<bool> {
        Ok(self
            .order_in_scope(tenant, customer_id, order_id)
            .await?
            .is_some_and(|doc| doc.version == version))
    }

    async fn try_create_order(
        &self,
        tenant: &TenantId,
        order: &NewOrder,
        audit: &AuditEntry,
    ) -> StoreResult<Attempt<Box<OrderCreated>>> {
        if let Some(idempotency) = &order.idempotency {
            let stored_id = doc_id(kind::IDEMPOTENCY, &idempotency.key);
            if stored_id.len() > MAX_DOC_ID_LEN {
                return Err(Rejection::IdempotencyKeyUnusable(format!("{} bytes once '/', '\\', '?', '#' and '%' are escaped; at most {MAX_DOC_ID_LEN}", stored_id.len())).into());
            }
        }
        if let Some(first) = self.replay(tenant.as_str(), order).await? {
            return Ok(Attempt::Done(Box::new(OrderCreated::Replayed(first))));
        }
        let customer = self
            .customer_doc(tenant.as_str(), &order.customer_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let products = self.priced_products(tenant.as_str(), order).await?;
        let request = OrderRequest {
            id: &order.id,
            tenant_id: tenant.as_str(),
            input: &order.input,
            actor_id: &order.actor_id,
        };
        let catalogue = |id: &str| {
            Ok::<_, StoreError>(
                products
                    .iter()
                    .find(|doc| doc.body.id == id)
                    .map(|doc| doc.body.clone()),
            )
        };
        let PlacedOrder {
            order: created,
            first_status,
        } = Order::place(request, &customer.body, catalogue, now())??;
        let reserved = quantities(&created.items);
        let taken: Vec<(String, i64)> = reserved
            .iter()
            .map(|(id, quantity)| (id.clone(), -quantity))
            .collect();
        let reservation = StockReservation {
            order_id: order.id.clone(),
            customer_id: customer.body.id.clone(),
            quantities: reserved.clone(),
            created_at: now(),
        };
        let reservation = Doc::new(
            kind::RESERVATION,
            &order.id,
            tenant.as_str(),
            CATALOG_SCOPE,
            ts(reservation.created_at),
            reservation.clone(),
        )
        .with_at(reservation.created_at);
        // A batch holds 100 operations: an order of 100 different products has no room for the
        // record, and is compensated without one (as before records existed).
        let recorded = reserved.len() < MAX_BATCH_OPERATIONS;
        let change = if recorded {
            ReservationChange::Create(&reservation)
        } else {
            ReservationChange::None
        };
        if self
            .adjust_stock(tenant.as_str(), &products, &taken, change)
            .await?
            .is_err()
        {
            return Ok(Attempt::Again);
        }
        let written = self
            .write_order(
                tenant,
                order,
                customer,
                CosmosOrder {
                    order: created.clone(),
                    history: vec![first_status],
                },
                audit,
            )
            .await;
        // If this check fails too, the reservation stays for DatabaseMaintenance to settle.
        let applied = matches!(written, Ok(Ok(())))
            || self
                .order_has_version(
                    tenant.as_str(),
                    &created.customer_id,
                    &created.id,
                    &created.etag,
                )
                .await?;
        if applied {
            if recorded {
                self.forget_reservation(&reservation).await;
            }
            return Ok(Attempt::Done(Box::new(OrderCreated::New(created))));
        }
        if recorded {
            self.release_reservation(tenant.as_str(), &order.id).await?;
        } else {
            self.release_stock(tenant.as_str(), &reserved).await?;
        }
        match written {
            Ok(Ok(())) => Ok(Attempt::Done(Box::new(OrderCreated::New(created)))),
            Ok(Err(refusal)) => self.after_refused_order(tenant, order, refusal).await,
            Err(error) => Err(error),
        }
    }

    /// Step 3: the order, its key, its audit entry, the outbox record of its `created` event
    /// and the customer's last activity (at most 5 operations, far below a batch's limit).
    async fn write_order(
        &self,
        tenant: &TenantId,
        order: &NewOrder,
        customer: Doc<crate::domain::customer::Customer>,
        stored: CosmosOrder,
        audit: &AuditEntry,
    ) -> StoreResult<Result<(), BatchRefused>> {
        let at = stored.order.created_at;
        let scope = customer.scope.clone();
        let mut touched = customer;
        touched.body.last_activity_at = at;
        touched.at = Some(ts(at));
        let mut batch = TransactionalBatch::new(pk(tenant.as_str(), &scope));
        batch = batch_replace(self, batch, &touched)?;
        batch = batch_create(self, batch, &order_doc(stored.clone()))?;
        if let Some(idempotency) = &order.idempotency {
            let key = StoredIdempotency {
                key: idempotency.key.clone(),
                request_hash: idempotency.request_hash.clone(),
                order_id: stored.order.id.clone(),
                created_at: at,
            };
            let doc = Doc::new(
                kind::IDEMPOTENCY,
                &idempotency.key,
                tenant.as_str(),
                scope.clone(),
                ts(at),
                key,
            )
            .with_at(at)
            .with_ttl(Some(IDEMPOTENCY_TTL_SECONDS));
            batch = batch_create(self, batch, &doc)?;
        }
        batch = batch_create(self, batch, &audit_doc(audit, &scope))?;
        // Last, so the positions `after_refused_order` reads stay as they are.
        let event = OutboxMessage::order_event(&stored.order, &audit.correlation_id);
        batch = self.batch_outbox(batch, tenant.as_str(), &scope, &event)?;
        Ok(self.run_batch(self.data(), batch).await?.map(|_| ()))
    }

    /// Why step 3 was refused: the customer changed (retry: it may have been erased), the
    /// key was used concurrently (a replay), or the order id exists.
    async fn after_refused_order(
        &self,
        tenant: &TenantId,
        order: &NewOrder,
        refusal: BatchRefused,
    ) -> StoreResult<Attempt<Box<OrderCreated>>> {
        match (refusal.index, refusal.status) {
            (0, 412) => Ok(Attempt::Again),
            (1, 409) => Err(StoreError::Conflict(format!(
                "an order with id {} exists",
                order.id
            ))),
            (2, 409) if order.idempotency.is_some() => {
                match self.replay(tenant.as_str(), order).await? {
                    Some(first) => Ok(Attempt::Done(Box::new(OrderCreated::Replayed(first)))),
                    None => Ok(Attempt::Again),
                }
            }
            _ => Err(refused(refusal)),
        }
    }
}

#[async_trait::async_trait]
impl OrderStore for CosmosStore {
    async fn create_order(
        &self,
        tenant: &TenantId,
        order: NewOrder,
        audit: AuditEntry,
    ) -> StoreResult<OrderCreated> {
        for attempt in 0..ORDER_ATTEMPTS {
            if let Attempt::Done(created) = self.try_create_order(tenant, &order, &audit).await? {
                return Ok(*created);
            }
            // Orders racing for one product: at least one wins each round; a random pause
            // spreads the others out so they do not collide again in lockstep.
            let pause_ms = fastrand::u64(1..=2 + 2 * u64::from(attempt.min(10)));
            tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
        }
        Err(busy("stock or customer"))
    }

    async fn get_order(&self, tenant: &TenantId, id: &str) -> StoreResult<Order> {
        Ok(order_of(&self.find_order(tenant, id).await?))
    }

    async fn list_orders(
        &self,
        tenant: &TenantId,
        filter: OrderFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Order>> {
        let name = filter.query_name();
        let mut condition = String::new();
        let mut params = Vec::new();
        if let Some(status) = filter.status {
            condition.push_str(" AND c.body.status = @status");
            params.push(("@status", json!(status.as_str())));
        }
        if let Some(customer_id) = &filter.customer_id {
            condition.push_str(" AND c.scope = @scope");
            params.push(("@scope", json!(customer_scope(customer_id))));
        }
        if let Some(from) = filter.created_from {
            condition.push_str(" AND c.sortKey >= @from");
            params.push(("@from", json!(ts(from))));
        }
        if let Some(to) = filter.created_to {
            condition.push_str(" AND c.sortKey < @to");
            params.push(("@to", json!(ts(to))));
        }
        let query = KeysetQuery {
            kind: kind::ORDER,
            filter: condition,
            params,
            order: ListOrder::Descending,
            query_name: &name,
        };
        let docs: Page<Doc<CosmosOrder>> = self.keyset_docs(tenant, query, &page).await?;
        Ok(Page {
            items: docs.items.iter().map(order_of).collect(),
            continuation: docs.continuation,
        })
    }

    async fn change_order_status(
        &self,
        tenant: &TenantId,
        id: &str,
        change: StatusInput,
        actor_id: &str,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<Order> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            let doc = self.find_order(tenant, id).await?;
            check_if_match(&if_match, &doc.version)?;
            let next = doc
                .body
                .order
                .status
                .transition(change.status)
                .map_err(Rejection::IllegalTransition)?;
            let at = now();
            let mut changed = doc.clone();
            changed.body.order.status = next;
            changed.body.order.updated_at = at;
            changed.body.order.etag = new_etag();
            changed.version = changed.body.order.etag.clone();
            changed.body.history.push(StatusChange {
                status: next,
                at,
                actor_id: actor_id.to_owned(),
                reason: change.reason.clone(),
            });
            let batch = TransactionalBatch::new(pk(tenant.as_str(), &changed.scope));
            let batch = batch_replace(self, batch, &changed)?;
            let batch = batch_create(self, batch, &audit_doc(&audit, &changed.scope))?;
            let event = OutboxMessage::order_event(&order_of(&changed), &audit.correlation_id);
            let batch = self.batch_outbox(batch, tenant.as_str(), &changed.scope, &event)?;
            let outcome = self.run_batch(self.data(), batch).await;
            let applied = matches!(outcome, Ok(Ok(_)))
                || self
                    .order_has_version(
                        tenant.as_str(),
                        &changed.body.order.customer_id,
                        &changed.body.order.id,
                        &changed.version,
                    )
                    .await?;
            if applied {
                let units = quantities(&changed.body.order.items);
                match next {
                    OrderStatus::Cancelled => self.release_stock(tenant.as_str(), &units).await?,
                    OrderStatus::Shipped => self.ship_stock(tenant.as_str(), &units).await?,
                    _ => {}
                }
                return Ok(order_of(&changed));
            }
            if let Err(refusal) = outcome? {
                if refusal.status != 412 {
                    return Err(refused(refusal));
                }
            }
        }
        Err(busy("order"))
    }

    async fn order_history(&self, tenant: &TenantId, id: &str) -> StoreResult<Vec<StatusChange>> {
        Ok(self.find_order(tenant, id).await?.body.history)
    }
}
