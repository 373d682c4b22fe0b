//! SQLite adapter of [`OrderStore`]: orders with their items and status history. Creating an
//! order checks and reserves stock for every line in one transaction; cancelling releases it
//! (back on sale), shipping ends the reservation (the units are gone).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::customers::load_customer;
use super::outbox::{customer_scope, insert_outbox};
use super::products::{load_product, reserve};
use super::support::{
    check_if_match, insert_audit, new_etag, now, optional_json_at, time_at, to_json, ts, Keyset,
};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::order::{
    Order, OrderItem, OrderRequest, OrderStatus, PlacedOrder, StatusChange, StatusInput,
};
use crate::domain::product::StockMove;
use crate::domain::rejection::Rejection;
use crate::domain::tenant::TenantId;
use crate::outbox::OutboxMessage;
use crate::store::{
    IfMatch, NewOrder, OrderCreated, OrderFilter, OrderStore, Page, PageRequest, StoreError,
    StoreResult,
};

const COLUMNS: &str = "tenant_id, id, customer_id, status, total_cents, currency, shipping_address, created_at, updated_at, etag";

fn order_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Order> {
    let status: String = row.get(3)?;
    Ok(Order {
        tenant_id: row.get(0)?,
        id: row.get(1)?,
        customer_id: row.get(2)?,
        status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Pending),
        items: Vec::new(),
        total_cents: row.get(4)?,
        currency: row.get(5)?,
        shipping_address: optional_json_at(row, 6)?,
        created_at: time_at(row, 7)?,
        updated_at: time_at(row, 8)?,
        etag: row.get(9)?,
    })
}

/// The items of the orders `order_ids`, in one statement, each order's in line order.
fn load_items_of(
    conn: &Connection,
    tenant: &str,
    order_ids: &[&str],
) -> rusqlite::Result<HashMap<String, Vec<OrderItem>>> {
    let mut statement = conn.prepare_cached(
        "SELECT order_id, product_id, product_name, quantity, unit_price_cents FROM order_items
          WHERE tenant_id = ?1 AND order_id IN (SELECT value FROM json_each(?2)) ORDER BY order_id, line_no",
    )?;
    let mut rows = statement.query(params![tenant, to_json(&order_ids)])?;
    let mut items: HashMap<String, Vec<OrderItem>> = HashMap::new();
    while let Some(row) = rows.next()? {
        let item = OrderItem {
            product_id: row.get(1)?,
            product_name: row.get(2)?,
            quantity: row.get(3)?,
            unit_price_cents: row.get(4)?,
        };
        items.entry(row.get(0)?).or_default().push(item);
    }
    Ok(items)
}

/// One order with its items, in one statement (the API's most frequent read).
pub(super) fn load_order(conn: &Connection, tenant: &str, id: &str) -> rusqlite::Result<Order> {
    let mut statement = conn.prepare_cached(
        "SELECT o.tenant_id, o.id, o.customer_id, o.status, o.total_cents, o.currency, o.shipping_address, o.created_at, o.updated_at, o.etag,
                i.product_id, i.product_name, i.quantity, i.unit_price_cents
           FROM orders o LEFT JOIN order_items i ON i.tenant_id = o.tenant_id AND i.order_id = o.id
          WHERE o.tenant_id = ?1 AND o.id = ?2
          ORDER BY i.line_no",
    )?;
    let mut rows = statement.query(params![tenant, id])?;
    let mut order: Option<Order> = None;
    while let Some(row) = rows.next()? {
        let current = match order.as_mut() {
            Some(current) => current,
            None => order.insert(order_from_row(row)?),
        };
        if let Some(product_id) = row.get::<_, Option<String>>(10)? {
            current.items.push(OrderItem {
                product_id,
                product_name: row.get(11)?,
                quantity: row.get(12)?,
                unit_price_cents: row.get(13)?,
            });
        }
    }
    order.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Writes the lifecycle event of `order` entering its status to the outbox, in the transaction.
fn announce(
    conn: &Connection,
    outbox_ttl: chrono::Duration,
    order: &Order,
    audit: &AuditEntry,
) -> rusqlite::Result<()> {
    let message = OutboxMessage::order_event(order, &audit.correlation_id);
    insert_outbox(
        conn,
        outbox_ttl,
        &order.tenant_id,
        &customer_scope(&order.customer_id),
        &message,
    )
}

fn insert_status_change(
    conn: &Connection,
    tenant: &str,
    order_id: &str,
    change: &StatusChange,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO order_status_history (tenant_id, order_id, seq, status, at, actor_id, reason)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM order_status_history WHERE tenant_id = ?1 AND order_id = ?2), ?3, ?4, ?5, ?6)")?.execute(params![tenant, order_id, change.status.as_str(), ts(change.at), change.actor_id, change.reason])?;
    Ok(())
}

fn create_in_transaction(
    transaction: &Transaction<'_>,
    outbox_ttl: chrono::Duration,
    tenant: &str,
    order: &NewOrder,
    audit: &AuditEntry,
) -> rusqlite::Result<StoreResult<OrderCreated>> {
    if let Some(idempotency) = &order.idempotency {
        let seen: Option<(String, String)> = transaction
            .prepare_cached("SELECT request_hash, order_id FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2")?
            .query_row(params![tenant, idempotency.key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((hash, order_id)) = seen {
            if hash != idempotency.request_hash {
                return Ok(Err(Rejection::IdempotencyKeyReused.into()));
            }
            return Ok(Ok(OrderCreated::Replayed(load_order(
                transaction,
                tenant,
                &order_id,
            )?)));
        }
    }
    let customer = match load_customer(transaction, tenant, &order.customer_id).optional()? {
        Some(customer) => customer,
        None => return Ok(Err(StoreError::NotFound)),
    };
    let request = OrderRequest {
        id: &order.id,
        tenant_id: tenant,
        input: &order.input,
        actor_id: &order.actor_id,
    };
    let products = |id: &str| load_product(transaction, tenant, id).optional();
    let PlacedOrder {
        order: created,
        first_status,
    } = match Order::place(request, &customer, products, now())? {
        Ok(placed) => placed,
        Err(rejection) => return Ok(Err(rejection.into())),
    };
    let at = created.created_at;
    for item in &created.items {
        reserve(
            transaction,
            tenant,
            &item.product_id,
            StockMove::place(item.quantity),
        )?;
    }
    transaction
        .prepare_cached(&format!(
            "INSERT INTO orders ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ))?
        .execute(params![
            tenant,
            created.id,
            created.customer_id,
            created.status.as_str(),
            created.total_cents,
            created.currency,
            created.shipping_address.as_ref().map(to_json),
            ts(at),
            ts(at),
            created.etag
        ])?;
    for (line_no, item) in created.items.iter().enumerate() {
        transaction.prepare_cached("INSERT INTO order_items (tenant_id, order_id, line_no, product_id, product_name, quantity, unit_price_cents)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(params![tenant, created.id, line_no as i64, item.product_id, item.product_name, item.quantity, item.unit_price_cents])?;
    }
    insert_status_change(transaction, tenant, &created.id, &first_status)?;
    transaction
        .prepare_cached(
            "UPDATE customers SET last_activity_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
        )?
        .execute(params![tenant, created.customer_id, ts(at)])?;
    if let Some(idempotency) = &order.idempotency {
        transaction.prepare_cached("INSERT INTO idempotency_keys (tenant_id, key, request_hash, order_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![tenant, idempotency.key, idempotency.request_hash, created.id, ts(at)])?;
    }
    insert_audit(transaction, audit)?;
    announce(transaction, outbox_ttl, &created, audit)?;
    Ok(Ok(OrderCreated::New(created)))
}

#[async_trait::async_trait]
impl OrderStore for Db {
    async fn create_order(
        &self,
        tenant: &TenantId,
        order: NewOrder,
        audit: AuditEntry,
    ) -> StoreResult<OrderCreated> {
        let tenant = tenant.as_str().to_owned();
        let outbox_ttl = self.outbox_ttl();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let outcome = create_in_transaction(&transaction, outbox_ttl, &tenant, &order, &audit)?;
            if matches!(outcome, Ok(OrderCreated::New(_))) {
                transaction.commit()?;
            }
            Ok(outcome)
        })
        .await?
    }

    async fn get_order(&self, tenant: &TenantId, id: &str) -> StoreResult<Order> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.read(move |conn| load_order(conn, &tenant, &id)).await
    }

    async fn list_orders(
        &self,
        tenant: &TenantId,
        filter: OrderFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Order>> {
        let tenant = tenant.as_str().to_owned();
        let query = filter.query_name();
        let fetch = move |conn: &Connection, keyset: Keyset| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM orders
                  WHERE tenant_id = ?1
                    AND (?2 IS NULL OR status = ?2)
                    AND (?3 IS NULL OR customer_id = ?3)
                    AND (?4 IS NULL OR created_at >= ?4)
                    AND (?5 IS NULL OR created_at < ?5)
                    AND (?6 IS NULL OR (created_at, id) < (?6, ?7))
                  ORDER BY created_at DESC, id DESC LIMIT ?8"
            ))?;
            let rows = statement.query_map(
                params![
                    tenant,
                    filter.status.map(OrderStatus::as_str),
                    filter.customer_id,
                    filter.created_from.map(ts),
                    filter.created_to.map(ts),
                    keyset.after_key,
                    keyset.after_id,
                    keyset.rows
                ],
                order_from_row,
            )?;
            let mut orders = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            let mut items = load_items_of(
                conn,
                &tenant,
                &orders
                    .iter()
                    .map(|order| order.id.as_str())
                    .collect::<Vec<_>>(),
            )?;
            for order in &mut orders {
                order.items = items.remove(&order.id).unwrap_or_default();
            }
            Ok(orders)
        };
        self.read_page(&page, &query, fetch, |o| (ts(o.created_at), o.id.clone()))
            .await
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
        let (tenant, id, actor_id) = (
            tenant.as_str().to_owned(),
            id.to_owned(),
            actor_id.to_owned(),
        );
        let outbox_ttl = self.outbox_ttl();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let mut order = load_order(&transaction, &tenant, &id)?;
            if let Err(stale) = check_if_match(&if_match, &order.etag) {
                return Ok(Err(stale));
            }
            let next = match order.status.transition(change.status) {
                Ok(next) => next,
                Err(illegal) => return Ok(Err(Rejection::IllegalTransition(illegal).into())),
            };
            for item in &order.items {
                match next {
                    // The units come back on sale.
                    OrderStatus::Cancelled => reserve(&transaction, &tenant, &item.product_id, StockMove::cancel(item.quantity))?,
                    // The units leave the warehouse: no longer reserved, off hand.
                    OrderStatus::Shipped => reserve(&transaction, &tenant, &item.product_id, StockMove::ship(item.quantity))?,
                    _ => {}
                }
            }
            let at = now();
            order.status = next;
            order.updated_at = at;
            order.etag = new_etag();
            transaction.prepare_cached("UPDATE orders SET status = ?3, updated_at = ?4, etag = ?5 WHERE tenant_id = ?1 AND id = ?2")?.execute(params![tenant, id, next.as_str(), ts(at), order.etag])?;
            insert_status_change(&transaction, &tenant, &id, &StatusChange { status: next, at, actor_id, reason: change.reason })?;
            insert_audit(&transaction, &audit)?;
            announce(&transaction, outbox_ttl, &order, &audit)?;
            transaction.commit()?;
            Ok(Ok(order))
        })
        .await?
    }

    async fn order_history(&self, tenant: &TenantId, id: &str) -> StoreResult<Vec<StatusChange>> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.read(move |conn| {
            load_order(conn, &tenant, &id)?;
            let mut statement = conn.prepare_cached(
                "SELECT status, at, actor_id, reason FROM order_status_history WHERE tenant_id = ?1 AND order_id = ?2 ORDER BY seq",
            )?;
            let rows = statement.query_map(params![tenant, id], |row| {
                let status: String = row.get(0)?;
                Ok(StatusChange { status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Pending), at: time_at(row, 1)?, actor_id: row.get(2)?, reason: row.get(3)? })
            })?;
            rows.collect()
        })
        .await
    }
}
