//! SQLite adapter of [`PaymentStore`]: the `payments` table (indexed columns and the payment
//! as JSON) and `payment_webhook_events`. Every write is one transaction on the single writer
//! connection, so the idempotency key, the order's one payment that holds it (also a partial
//! unique index) and the refundable amount are checked and written atomically. The erasure's
//! `payments` step ([`erase_payments`]) masks a customer's payments inside the erasure's own
//! transaction.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};

use super::outbox::{customer_scope, insert_outbox};
use super::support::{insert_audit, json_at, new_etag, now, to_json, ts, Keyset};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::masking::Masker;
use crate::domain::payment::{Applied, Payment, PaymentStatus, PaymentUpdate, Refund};
use crate::domain::rejection::Rejection;
use crate::domain::tenant::TenantId;
use crate::outbox::OutboxMessage;
use crate::store::erasure::BatchOutcome;
use crate::store::payment_record::{
    admit_refund, payment_key_seen, push_refund, refund_key_seen, unsettled_since, KeySeen,
    StoredPayment,
};
use crate::store::{
    Page, PageRequest, PaymentFilter, PaymentStore, Started, StoreError, StoreResult,
};

/// A write's outcome inside its transaction: a store result, or a SQLite failure.
type InTx<T> = rusqlite::Result<StoreResult<T>>;

fn payment_at(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Payment> {
    json_at::<StoredPayment>(row, index).map(StoredPayment::into_payment)
}

fn load(conn: &Connection, tenant: &str, id: &str) -> rusqlite::Result<Option<Payment>> {
    conn.prepare_cached("SELECT doc FROM payments WHERE tenant_id = ?1 AND id = ?2")?
        .query_row(params![tenant, id], |row| payment_at(row, 0))
        .optional()
}

fn by_key(conn: &Connection, tenant: &str, key: &str) -> rusqlite::Result<Option<Payment>> {
    conn.prepare_cached("SELECT doc FROM payments WHERE tenant_id = ?1 AND idempotency_key = ?2")?
        .query_row(params![tenant, key], |row| payment_at(row, 0))
        .optional()
}

/// The payment that holds `order_id` (not failed or voided), if any.
fn holder(conn: &Connection, tenant: &str, order_id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT id FROM payments WHERE tenant_id = ?1 AND order_id = ?2 AND status NOT IN ('failed', 'voided')",
    )?
    .query_row(params![tenant, order_id], |row| row.get(0))
    .optional()
}

fn insert(conn: &Connection, payment: &Payment) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO payments (tenant_id, id, order_id, customer_id, status, idempotency_key, unsettled_since, created_at, updated_at, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        payment.tenant_id,
        payment.id,
        payment.order_id,
        payment.customer_id,
        payment.status.as_str(),
        payment.idempotency_key,
        unsettled_since(payment).map(ts),
        ts(payment.created_at),
        ts(payment.updated_at),
        to_json(&StoredPayment::new(payment))
    ])?;
    Ok(())
}

/// Writes `payment` back with a new ETag (set on `payment`).
fn save(conn: &Connection, payment: &mut Payment) -> rusqlite::Result<()> {
    payment.etag = new_etag();
    conn.prepare_cached(
        "UPDATE payments SET status = ?3, unsettled_since = ?4, updated_at = ?5, doc = ?6 WHERE tenant_id = ?1 AND id = ?2",
    )?
    .execute(params![
        payment.tenant_id,
        payment.id,
        payment.status.as_str(),
        unsettled_since(payment).map(ts),
        ts(payment.updated_at),
        to_json(&StoredPayment::new(payment))
    ])?;
    Ok(())
}

/// Answers a seen key: holds the payment again when resuming.
fn answer_seen(
    conn: &Connection,
    seen: KeySeen,
    mut payment: Payment,
    until: Option<DateTime<Utc>>,
) -> rusqlite::Result<Started> {
    if seen == KeySeen::Resume {
        payment.in_flight_until = until;
        save(conn, &mut payment)?;
    }
    Ok(seen.started(payment))
}

fn begin_payment_in(
    tx: &Transaction<'_>,
    mut payment: Payment,
    audit: &AuditEntry,
) -> InTx<Started> {
    let tenant = payment.tenant_id.clone();
    if let Some(stored) = by_key(tx, &tenant, &payment.idempotency_key)? {
        let seen = match payment_key_seen(&stored, &payment.request_hash, now()) {
            Ok(seen) => seen,
            Err(rejection) => return Ok(Err(rejection.into())),
        };
        return answer_seen(tx, seen, stored, payment.in_flight_until).map(Ok);
    }
    if let Some(other) = holder(tx, &tenant, &payment.order_id)? {
        return Ok(Err(Rejection::OrderAlreadyPaid(other).into()));
    }
    payment.etag = new_etag();
    insert(tx, &payment)?;
    insert_audit(tx, audit)?;
    Ok(Ok(Started::New(payment)))
}

fn begin_refund_in(
    tx: &Transaction<'_>,
    tenant: &str,
    payment_id: &str,
    refund: Refund,
    until: DateTime<Utc>,
    audit: &AuditEntry,
) -> InTx<Started> {
    let Some(mut payment) = load(tx, tenant, payment_id)? else {
        return Ok(Err(StoreError::NotFound));
    };
    if let Some(seen) = payment.refund_by_key(&refund.idempotency_key) {
        let seen = match refund_key_seen(&payment, seen, &refund.request_hash, now()) {
            Ok(seen) => seen,
            Err(rejection) => return Ok(Err(rejection.into())),
        };
        return answer_seen(tx, seen, payment, Some(until)).map(Ok);
    }
    if let Err(rejection) = admit_refund(&payment, &refund) {
        return Ok(Err(rejection.into()));
    }
    payment.updated_at = now();
    push_refund(&mut payment, refund, until);
    save(tx, &mut payment)?;
    insert_audit(tx, audit)?;
    Ok(Ok(Started::New(payment)))
}

/// Whether the webhook event `event_id` was applied to a payment of `tenant` already.
fn webhook_seen(conn: &Connection, tenant: &str, event_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM payment_webhook_events WHERE tenant_id = ?1 AND event_id = ?2",
    )?
    .query_row(params![tenant, event_id], |_| Ok(()))
    .optional()
    .map(|seen| seen.is_some())
}

struct UpdateWrite<'a> {
    update: &'a PaymentUpdate,
    correlation_id: Option<&'a str>,
    audit: &'a AuditEntry,
    outbox_ttl: chrono::Duration,
}

fn update_in(
    tx: &Transaction<'_>,
    tenant: &str,
    id: &str,
    write: &UpdateWrite<'_>,
) -> InTx<(Payment, Applied)> {
    let Some(mut payment) = load(tx, tenant, id)? else {
        return Ok(Err(StoreError::NotFound));
    };
    let event_id = write.update.source.webhook_event_id();
    if let Some(event_id) = event_id {
        if webhook_seen(tx, tenant, event_id)? {
            return Ok(Ok((payment, Applied::default())));
        }
    }
    let at = now();
    let applied = payment.apply(write.update, at);
    if !applied.changed {
        return Ok(Ok((payment, applied)));
    }
    save(tx, &mut payment)?;
    let scope = customer_scope(&payment.customer_id);
    for (event_type, amount) in &applied.events {
        let message =
            OutboxMessage::payment_event(&payment, *event_type, *amount, write.correlation_id);
        insert_outbox(tx, write.outbox_ttl, tenant, &scope, &message)?;
    }
    insert_audit(tx, write.audit)?;
    if let Some(event_id) = event_id {
        tx.prepare_cached(
            "INSERT INTO payment_webhook_events (tenant_id, event_id, payment_id, applied_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![tenant, event_id, id, ts(at)])?;
    }
    Ok(Ok((payment, applied)))
}

/// One batch of the erasure's `payments` step, in the erasure batch's transaction: up to
/// `limit` of the customer's payments not erased yet, masked by the rules
/// ([`Masker::mask_payment`]). A masked payment leaves the selection, so a resumed erasure
/// takes the next ones and counts each once.
pub(super) fn erase_payments(
    tx: &Transaction<'_>,
    masker: &Masker,
    limit: usize,
) -> rusqlite::Result<BatchOutcome> {
    let payments: Vec<Payment> = tx
        .prepare_cached(
            "SELECT doc FROM payments WHERE tenant_id = ?1 AND customer_id = ?2
                AND json_extract(doc, '$.erasure') IS NULL
              ORDER BY id LIMIT ?3",
        )?
        .query_map(
            params![
                masker.tenant(),
                masker.customer_id(),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| payment_at(row, 0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let at = now();
    let mut masked_count = 0;
    for payment in &payments {
        let masked = masker
            .mask_payment(payment, at)
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        if let Some(mut masked) = masked {
            save(tx, &mut masked)?;
            masked_count += 1;
        }
    }
    Ok(BatchOutcome {
        counts: vec![("payments", masked_count)],
        cursor: None,
        done: payments.len() < limit,
    })
}

impl Db {
    /// Runs `work` in a write transaction, committed only when it succeeds.
    async fn payment_write<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Transaction<'_>) -> InTx<T> + Send + 'static,
        T: Send + 'static,
    {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let outcome = work(&tx)?;
            if outcome.is_ok() {
                tx.commit()?;
            }
            Ok(outcome)
        })
        .await?
    }

    /// Payments of every tenant by `sql` (a `WHERE ... ORDER BY ... LIMIT ?n` whose first
    /// parameters are `bounds` and whose last is the limit).
    async fn payments_where(
        &self,
        sql: &'static str,
        bounds: Vec<String>,
        limit: usize,
    ) -> StoreResult<Vec<Payment>> {
        let mut values: Vec<Value> = bounds.into_iter().map(Value::from).collect();
        values.push(Value::from(i64::try_from(limit).unwrap_or(i64::MAX)));
        self.read_long(move |conn| {
            let mut statement = conn.prepare_cached(&format!("SELECT doc FROM payments {sql}"))?;
            let rows = statement.query_map(params_from_iter(values), |row| payment_at(row, 0))?;
            rows.collect()
        })
        .await
    }
}

#[async_trait::async_trait]
impl PaymentStore for Db {
    async fn begin_payment(
        &self,
        tenant: &TenantId,
        mut payment: Payment,
        audit: AuditEntry,
    ) -> StoreResult<Started> {
        payment.tenant_id = tenant.as_str().to_owned();
        self.payment_write(move |tx| begin_payment_in(tx, payment, &audit))
            .await
    }

    async fn hold_payment(
        &self,
        tenant: &TenantId,
        id: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<Payment>> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.payment_write(move |tx| {
            let Some(mut payment) = load(tx, &tenant, &id)? else {
                return Ok(Err(StoreError::NotFound));
            };
            if payment.in_flight(now()) {
                return Ok(Ok(None));
            }
            payment.in_flight_until = Some(until);
            save(tx, &mut payment)?;
            Ok(Ok(Some(payment)))
        })
        .await
    }

    async fn get_payment(&self, tenant: &TenantId, id: &str) -> StoreResult<Payment> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.read(move |conn| load(conn, &tenant, &id)?.ok_or(rusqlite::Error::QueryReturnedNoRows))
            .await
    }

    async fn list_payments(
        &self,
        tenant: &TenantId,
        filter: PaymentFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Payment>> {
        let tenant = tenant.as_str().to_owned();
        let query = filter.query_name();
        let fetch = move |conn: &Connection, keyset: Keyset| {
            let mut statement = conn.prepare_cached(
                "SELECT doc FROM payments
                  WHERE tenant_id = ?1
                    AND (?2 IS NULL OR order_id = ?2)
                    AND (?3 IS NULL OR customer_id = ?3)
                    AND (?4 IS NULL OR status = ?4)
                    AND (?5 IS NULL OR (created_at, id) < (?5, ?6))
                  ORDER BY created_at DESC, id DESC LIMIT ?7",
            )?;
            let rows = statement.query_map(
                params![
                    tenant,
                    filter.order_id,
                    filter.customer_id,
                    filter.status.map(PaymentStatus::as_str),
                    keyset.after_key,
                    keyset.after_id,
                    keyset.rows
                ],
                |row| payment_at(row, 0),
            )?;
            rows.collect()
        };
        self.read_page(&page, &query, fetch, |p: &Payment| {
            (ts(p.created_at), p.id.clone())
        })
        .await
    }

    async fn update_payment(
        &self,
        tenant: &TenantId,
        id: &str,
        update: &PaymentUpdate,
        correlation_id: Option<&str>,
        audit: AuditEntry,
    ) -> StoreResult<(Payment, Applied)> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        let (update, correlation_id) = (update.clone(), correlation_id.map(str::to_owned));
        let outbox_ttl = self.outbox_ttl();
        self.payment_write(move |tx| {
            let write = UpdateWrite {
                update: &update,
                correlation_id: correlation_id.as_deref(),
                audit: &audit,
                outbox_ttl,
            };
            update_in(tx, &tenant, &id, &write)
        })
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
        let (tenant, payment_id) = (tenant.as_str().to_owned(), payment_id.to_owned());
        self.payment_write(move |tx| {
            begin_refund_in(tx, &tenant, &payment_id, refund, until, &audit)
        })
        .await
    }

    async fn unsettled_payments(
        &self,
        stale_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Payment>> {
        self.payments_where(
            "WHERE unsettled_since IS NOT NULL AND unsettled_since < ?1
             ORDER BY unsettled_since, id LIMIT ?2",
            vec![ts(stale_before)],
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
        self.payments_where(
            "WHERE updated_at >= ?1 AND updated_at < ?2 ORDER BY updated_at, id LIMIT ?3",
            vec![ts(from), ts(to)],
            limit,
        )
        .await
    }
}
