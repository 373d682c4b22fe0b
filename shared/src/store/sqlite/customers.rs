//! SQLite adapter of [`CustomerStore`]: customer profiles and erasure requests.

use rusqlite::{params, Connection, OptionalExtension};

use super::outbox::{customer_scope, insert_outbox};
use super::support::{
    check_if_match, insert_audit, json_at, new_etag, now, optional_json_at, optional_time_at,
    time_at, to_json, ts, Keyset,
};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::customer::{Customer, CustomerInput, CustomerStatus};
use crate::domain::gdpr::{ErasureRecord, ErasureStatus};
use crate::domain::rejection::Rejection;
use crate::domain::tenant::TenantId;
use crate::outbox::OutboxMessage;
use crate::store::{CustomerStore, IfMatch, Page, PageRequest, StoreResult};

const COLUMNS: &str = "tenant_id, id, name, email, phone, address, preferences, status, created_at, updated_at, last_activity_at, etag";

pub(super) fn customer_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Customer> {
    let status: String = row.get(7)?;
    Ok(Customer {
        tenant_id: row.get(0)?,
        id: row.get(1)?,
        name: row.get(2)?,
        email: row.get(3)?,
        phone: row.get(4)?,
        address: optional_json_at(row, 5)?,
        preferences: json_at(row, 6)?,
        status: CustomerStatus::parse(&status).unwrap_or(CustomerStatus::Active),
        created_at: time_at(row, 8)?,
        updated_at: time_at(row, 9)?,
        last_activity_at: time_at(row, 10)?,
        etag: row.get(11)?,
    })
}

pub(super) fn load_customer(
    conn: &Connection,
    tenant: &str,
    id: &str,
) -> rusqlite::Result<Customer> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM customers WHERE tenant_id = ?1 AND id = ?2"
    ))?
    .query_row(params![tenant, id], customer_from_row)
}

const ERASURE_COLUMNS: &str =
    "tenant_id, id, customer_id, requested_by, status, requested_at, updated_at, report, queued_at";

pub(super) fn erasure_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ErasureRecord> {
    let status: String = row.get(4)?;
    Ok(ErasureRecord {
        tenant_id: row.get(0)?,
        id: row.get(1)?,
        customer_id: row.get(2)?,
        requested_by: row.get(3)?,
        status: ErasureStatus::parse(&status).unwrap_or(ErasureStatus::Accepted),
        requested_at: time_at(row, 5)?,
        updated_at: time_at(row, 6)?,
        queued_at: optional_time_at(row, 8)?,
        report: optional_json_at(row, 7)?,
    })
}

/// The actor of re-announced erasure requests in the audit trail.
pub(crate) const REQUEUE_ACTOR: &str = "system:DatabaseMaintenance";

/// [`crate::store::ErasureStore::requeue_stalled_erasures`], in one transaction.
pub(super) fn requeue_stalled(
    conn: &mut Connection,
    outbox_ttl: chrono::Duration,
    cutoff: chrono::DateTime<chrono::Utc>,
    at: chrono::DateTime<chrono::Utc>,
    limit: usize,
) -> rusqlite::Result<Vec<ErasureRecord>> {
    let transaction = conn.transaction()?;
    let stalled = {
        let mut statement = transaction.prepare_cached(&format!(
            "SELECT {ERASURE_COLUMNS} FROM erasure_requests
              WHERE status = 'accepted' AND (queued_at IS NULL OR queued_at < ?1)
              ORDER BY requested_at, id LIMIT ?2"
        ))?;
        let rows = statement.query_map(
            params![ts(cutoff), i64::try_from(limit).unwrap_or(i64::MAX)],
            erasure_from_row,
        )?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut requeued = Vec::with_capacity(stalled.len());
    for mut record in stalled {
        record.queued_at = Some(at);
        transaction
            .prepare_cached(
                "UPDATE erasure_requests SET queued_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
            )?
            .execute(params![record.tenant_id, record.id, ts(at)])?;
        let message = OutboxMessage::erasure_request(&record, None, at);
        let scope = customer_scope(&record.customer_id);
        insert_outbox(
            &transaction,
            outbox_ttl,
            &record.tenant_id,
            &scope,
            &message,
        )?;
        let audit = AuditEntry::now(
            &record.tenant_id,
            REQUEUE_ACTOR,
            "gdpr.erasure.requeue",
            "erasureRequest",
            &record.id,
            "",
        )
        .about_customer(&record.customer_id);
        insert_audit(&transaction, &audit)?;
        requeued.push(record);
    }
    transaction.commit()?;
    Ok(requeued)
}

#[async_trait::async_trait]
impl CustomerStore for Db {
    async fn create_customer(
        &self,
        tenant: &TenantId,
        mut customer: Customer,
        audit: AuditEntry,
    ) -> StoreResult<Customer> {
        customer.tenant_id = tenant.as_str().to_owned();
        customer.etag = new_etag();
        let stored = customer.clone();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            transaction.prepare_cached(&format!("INSERT INTO customers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"))?.execute(params![
                    customer.tenant_id,
                    customer.id,
                    customer.name,
                    customer.email,
                    customer.phone,
                    customer.address.as_ref().map(to_json),
                    to_json(&customer.preferences),
                    customer.status.as_str(),
                    ts(customer.created_at),
                    ts(customer.updated_at),
                    ts(customer.last_activity_at),
                    customer.etag
                ])?;
            insert_audit(&transaction, &audit)?;
            transaction.commit()
        })
        .await?;
        Ok(stored)
    }

    async fn get_customer(&self, tenant: &TenantId, id: &str) -> StoreResult<Customer> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.read(move |conn| load_customer(conn, &tenant, &id))
            .await
    }

    async fn update_customer(
        &self,
        tenant: &TenantId,
        id: &str,
        input: CustomerInput,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<Customer> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let mut customer = load_customer(&transaction, &tenant, &id)?;
            if let Err(stale) = check_if_match(&if_match, &customer.etag) {
                return Ok(Err(stale));
            }
            if customer.status != CustomerStatus::Active {
                return Ok(Err(Rejection::CustomerNotActive(customer.status.as_str()).into()));
            }
            let at = now();
            customer.name = input.name;
            customer.email = input.email;
            customer.phone = input.phone;
            customer.address = input.address;
            if let Some(preferences) = input.preferences {
                customer.preferences = preferences;
            }
            customer.updated_at = at;
            customer.last_activity_at = at;
            customer.etag = new_etag();
            transaction.prepare_cached("UPDATE customers SET name = ?3, email = ?4, phone = ?5, address = ?6, preferences = ?7,
                        updated_at = ?8, last_activity_at = ?8, etag = ?9
                  WHERE tenant_id = ?1 AND id = ?2")?.execute(params![
                    tenant,
                    id,
                    customer.name,
                    customer.email,
                    customer.phone,
                    customer.address.as_ref().map(to_json),
                    to_json(&customer.preferences),
                    ts(at),
                    customer.etag
                ])?;
            insert_audit(&transaction, &audit)?;
            transaction.commit()?;
            Ok(Ok(customer))
        })
        .await?
    }

    async fn list_customers(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<Customer>> {
        let tenant = tenant.as_str().to_owned();
        let fetch = move |conn: &Connection, keyset: Keyset| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM customers WHERE tenant_id = ?1 AND (?2 IS NULL OR (created_at, id) > (?2, ?3))
                  ORDER BY created_at, id LIMIT ?4"
            ))?;
            let rows = statement.query_map(
                params![tenant, keyset.after_key, keyset.after_id, keyset.rows],
                customer_from_row,
            )?;
            rows.collect()
        };
        self.read_page(&page, "customers", fetch, |c| {
            (ts(c.created_at), c.id.clone())
        })
        .await
    }

    async fn request_erasure(
        &self,
        tenant: &TenantId,
        mut request: ErasureRecord,
        audit: AuditEntry,
    ) -> StoreResult<(ErasureRecord, bool)> {
        let tenant = tenant.as_str().to_owned();
        let outbox_ttl = self.outbox_ttl();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let customer = load_customer(&transaction, &tenant, &request.customer_id)?;
            let open = transaction
                .prepare_cached(&format!(
                    "SELECT {ERASURE_COLUMNS} FROM erasure_requests
                      WHERE tenant_id = ?1 AND customer_id = ?2 AND status IN ('accepted', 'inProgress', 'completed')
                      ORDER BY requested_at DESC LIMIT 1"
                ))?
                .query_row(params![tenant, customer.id], erasure_from_row)
                .optional()?;
            if let Some(existing) = open {
                return Ok((existing, false));
            }
            request.queued_at = Some(request.updated_at);
            transaction.prepare_cached(&format!("INSERT INTO erasure_requests ({ERASURE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?7)"))?.execute(params![
                    tenant,
                    request.id,
                    request.customer_id,
                    request.requested_by,
                    request.status.as_str(),
                    ts(request.requested_at),
                    ts(request.updated_at)
                ])?;
            let message = OutboxMessage::erasure_request(&request, Some(&audit.correlation_id), request.updated_at);
            insert_outbox(&transaction, outbox_ttl, &tenant, &customer_scope(&request.customer_id), &message)?;
            transaction.prepare_cached("UPDATE customers SET status = ?3, etag = ?4 WHERE tenant_id = ?1 AND id = ?2")?.execute(params![tenant, customer.id, CustomerStatus::ErasureRequested.as_str(), new_etag()])?;
            insert_audit(&transaction, &audit)?;
            transaction.commit()?;
            Ok((request, true))
        })
        .await
    }

    async fn get_erasure(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        request_id: &str,
    ) -> StoreResult<ErasureRecord> {
        let (tenant, customer_id, request_id) = (
            tenant.as_str().to_owned(),
            customer_id.to_owned(),
            request_id.to_owned(),
        );
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {ERASURE_COLUMNS} FROM erasure_requests WHERE tenant_id = ?1 AND id = ?2 AND customer_id = ?3"))?
                .query_row(params![tenant, request_id, customer_id], erasure_from_row)
        })
        .await
    }
}
