//! SQLite adapter of [`NotificationStore`]: in-app notifications, unread first.

use rusqlite::{params, Connection};

use super::outbox::{customer_scope, insert_outbox};
use super::support::{after, insert_audit, into_page, now, optional_time_at, time_at, ts};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::notification::{Notification, Recipient};
use crate::domain::tenant::TenantId;
use crate::outbox::OutboxMessage;
use crate::store::{NotificationStore, Page, PageRequest, StoreError, StoreResult};

const COLUMNS: &str = "tenant_id, id, recipient_kind, recipient_id, category, title, message, order_id, read_at, created_at";

fn notification_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Notification> {
    let kind: String = row.get(2)?;
    let recipient_id: String = row.get(3)?;
    Ok(Notification {
        tenant_id: row.get(0)?,
        id: row.get(1)?,
        recipient: if kind == "role" {
            Recipient::Role(recipient_id)
        } else {
            Recipient::Customer(recipient_id)
        },
        category: row.get(4)?,
        title: row.get(5)?,
        message: row.get(6)?,
        order_id: row.get(7)?,
        read_at: optional_time_at(row, 8)?,
        created_at: time_at(row, 9)?,
    })
}

pub(super) fn recipient_columns(recipient: &Recipient) -> (&'static str, &str) {
    match recipient {
        Recipient::Customer(id) => ("customer", id.as_str()),
        Recipient::Role(role) => ("role", role.as_str()),
    }
}

/// Stores one notification of `tenant` (inside the caller's transaction): the one INSERT of
/// the table, for the API and for the fan-out alike.
pub(super) fn insert_notification(
    conn: &Connection,
    tenant: &str,
    notification: &Notification,
) -> rusqlite::Result<()> {
    let (kind, recipient_id) = recipient_columns(&notification.recipient);
    conn.prepare_cached(&format!("INSERT INTO notifications ({COLUMNS}, is_read) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"))?
        .execute(params![
            tenant,
            notification.id,
            kind,
            recipient_id,
            notification.category,
            notification.title,
            notification.message,
            notification.order_id,
            notification.read_at.map(ts),
            ts(notification.created_at),
            notification.read_at.is_some()
        ])?;
    Ok(())
}

/// `('customer','c-1'),('role','admin')` as a JSON array for `json_each`, so any number of
/// recipients is one prepared statement.
fn recipients_json(recipients: &[Recipient]) -> String {
    let pairs: Vec<[&str; 2]> = recipients
        .iter()
        .map(|r| {
            let (k, id) = recipient_columns(r);
            [k, id]
        })
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

/// Sort key of the listing: unread (0) before read (1), then newest first. Stored as text so
/// the continuation token can carry it: `{is_read}|{created_at}`.
fn sort_key(notification: &Notification) -> String {
    format!(
        "{}|{}",
        u8::from(notification.read_at.is_some()),
        ts(notification.created_at)
    )
}

#[async_trait::async_trait]
impl NotificationStore for Db {
    async fn create_notification_with_messages(
        &self,
        tenant: &TenantId,
        mut notification: Notification,
        audit: AuditEntry,
        messages: Vec<OutboxMessage>,
    ) -> StoreResult<Notification> {
        notification.tenant_id = tenant.as_str().to_owned();
        let stored = notification.clone();
        let outbox_ttl = self.outbox_ttl();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            insert_notification(&transaction, &notification.tenant_id, &notification)?;
            insert_audit(&transaction, &audit)?;
            let scope = match &notification.recipient {
                Recipient::Customer(customer_id) => customer_scope(customer_id),
                Recipient::Role(role) => format!("role:{role}"),
            };
            for message in &messages {
                insert_outbox(
                    &transaction,
                    outbox_ttl,
                    &notification.tenant_id,
                    &scope,
                    message,
                )?;
            }
            transaction.commit()
        })
        .await?;
        Ok(stored)
    }

    async fn list_notifications(
        &self,
        tenant: &TenantId,
        recipients: &[Recipient],
        page: PageRequest,
    ) -> StoreResult<Page<Notification>> {
        let tenant = tenant.as_str().to_owned();
        let recipients = recipients_json(recipients);
        let query = format!("notifications:{recipients}");
        let (after_key, after_id) = after(&page, &query)?;
        let (after_read, after_created) =
            match after_key.as_deref().and_then(|key| key.split_once('|')) {
                Some((read, created)) => (
                    Some(read.parse::<i64>().unwrap_or(0)),
                    Some(created.to_owned()),
                ),
                None if after_key.is_some() => {
                    return Err(StoreError::InvalidContinuation("malformed position".into()))
                }
                None => (None, None),
            };
        let limit = i64::from(page.limit) + 1;
        let items = self
            .read(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM notifications
                      WHERE tenant_id = ?1
                        AND (recipient_kind, recipient_id) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2))
                        AND (?3 IS NULL OR is_read > ?3 OR (is_read = ?3 AND (created_at < ?4 OR (created_at = ?4 AND id < ?5))))
                      ORDER BY is_read, created_at DESC, id DESC LIMIT ?6"
                ))?;
                let rows = statement.query_map(params![tenant, recipients, after_read, after_created, after_id, limit], notification_from_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        Ok(into_page(items, &page, &query, |n| {
            (sort_key(n), n.id.clone())
        }))
    }

    async fn mark_notification_read(
        &self,
        tenant: &TenantId,
        id: &str,
        recipients: &[Recipient],
        audit: AuditEntry,
    ) -> StoreResult<Notification> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        let recipients = recipients.to_vec();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let mut notification = transaction
                .prepare_cached(&format!("SELECT {COLUMNS} FROM notifications WHERE tenant_id = ?1 AND id = ?2"))?
                .query_row(params![tenant, id], notification_from_row)?;
            if !recipients.contains(&notification.recipient) {
                return Err(rusqlite::Error::QueryReturnedNoRows);
            }
            if notification.read_at.is_none() {
                let at = now();
                notification.read_at = Some(at);
                transaction.prepare_cached("UPDATE notifications SET read_at = ?3, is_read = 1 WHERE tenant_id = ?1 AND id = ?2")?.execute(params![tenant, id, ts(at)])?;
                insert_audit(&transaction, &audit)?;
            }
            transaction.commit()?;
            Ok(notification)
        })
        .await
    }
}
