//! SQLite adapter of the outbox ([`OutboxStore`]): the `outbox` table, written in the
//! transaction of the change each record announces ([`insert_outbox`]), and read in commit order
//! by the local runtime's change feed ([`Db::outbox_feed`]). A row's `seq` is its commit
//! number, never reused: an insert takes one more than the highest row left and than the
//! `outbox_floor` (the highest number the relay's acknowledgements or the expiry purge removed).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::support::{json_at, time_at, to_json, ts};
use super::Db;
use crate::domain::tenant::TenantId;
use crate::outbox::{FeedDocument, OutboxMessage, OutboxStore, RecordKey};
use crate::store::StoreResult;

/// One outbox row as the local change feed delivers it.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    /// Commit order: the feed's checkpoint.
    pub seq: i64,
    pub document: FeedDocument,
    pub created_at: DateTime<Utc>,
}

const FEED_COLUMNS: &str = "seq, tenant_id, scope, message, created_at, expires_at";

/// The record id of the outbox row `seq`.
fn record_id(seq: i64) -> String {
    format!("outbox:{seq}")
}

/// The row of a record id (`None` for an id this adapter did not give).
fn seq_of(id: &str) -> Option<i64> {
    id.strip_prefix("outbox:")?.parse().ok()
}

fn feed_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<FeedEntry> {
    let seq: i64 = row.get(0)?;
    let tenant: String = row.get(1)?;
    let scope: String = row.get(2)?;
    let message: OutboxMessage = json_at(row, 3)?;
    let created_at = time_at(row, 4)?;
    let ttl = (time_at(row, 5)? - created_at).num_seconds();
    Ok(FeedEntry {
        seq,
        document: FeedDocument::outbox(&record_id(seq), &tenant, &scope, ttl, &message),
        created_at,
    })
}

/// The partition of records about one customer (as the Cosmos DB adapter names it).
pub(super) fn customer_scope(customer_id: &str) -> String {
    format!("customer:{customer_id}")
}

/// Writes `message` to the outbox of `tenant`, in `scope`, inside the caller's transaction.
pub(super) fn insert_outbox(
    conn: &Connection,
    ttl: chrono::Duration,
    tenant: &str,
    scope: &str,
    message: &OutboxMessage,
) -> rusqlite::Result<()> {
    // The next commit number: above every row left and every row ever removed (the floor).
    conn.prepare_cached(
        "INSERT INTO outbox (seq, tenant_id, scope, message, created_at, expires_at)
         VALUES (MAX(COALESCE((SELECT MAX(seq) FROM outbox), 0),
                     (SELECT seq FROM outbox_floor WHERE id = 1)) + 1,
                 ?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        tenant,
        scope,
        to_json(message),
        ts(message.created_at),
        ts(message.created_at + ttl)
    ])?;
    Ok(())
}

impl Db {
    /// Outbox records committed after `after_seq`, in commit order, at most `limit`.
    pub async fn outbox_feed(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<FeedEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {FEED_COLUMNS} FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = statement.query_map(params![after_seq, limit], feed_entry)?;
            rows.collect()
        })
        .await
    }
}

#[async_trait::async_trait]
impl OutboxStore for Db {
    async fn outbox_feed(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Vec<(String, FeedDocument)>> {
        let after_seq = after
            .and_then(|position| position.parse().ok())
            .unwrap_or(0);
        let entries = Db::outbox_feed(self, after_seq, limit).await?;
        Ok(entries
            .into_iter()
            .map(|entry| (entry.seq.to_string(), entry.document))
            .collect())
    }

    async fn pending_outbox(&self, tenant: &TenantId) -> StoreResult<Vec<FeedDocument>> {
        let tenant = tenant.as_str().to_owned();
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {FEED_COLUMNS} FROM outbox WHERE tenant_id = ?1 ORDER BY seq"
            ))?;
            let rows = statement.query_map(params![tenant], feed_entry)?;
            rows.map(|entry| entry.map(|entry| entry.document))
                .collect()
        })
        .await
    }

    async fn acknowledge_relayed(&self, records: &[RecordKey]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let rows: Vec<i64> = records.iter().filter_map(|key| seq_of(&key.id)).collect();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let rows = to_json(&rows);
            transaction
                .prepare_cached(
                    "UPDATE outbox_floor SET seq = MAX(seq, COALESCE(
                        (SELECT MAX(seq) FROM outbox WHERE seq IN (SELECT value FROM json_each(?1))), 0))",
                )?
                .execute(params![rows])?;
            transaction
                .prepare_cached("DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?1))")?
                .execute(params![rows])?;
            transaction.commit()
        })
        .await
    }

    async fn oldest_unrelayed(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.read(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT created_at FROM outbox ORDER BY seq LIMIT 1")?;
            let mut rows = statement.query([])?;
            match rows.next()? {
                Some(row) => Ok(Some(time_at(row, 0)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn purge_expired_outbox(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> StoreResult<Vec<(String, u64)>> {
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let counts = {
                let mut statement = transaction.prepare_cached(
                    "SELECT tenant_id, COUNT(*) FROM outbox WHERE expires_at <= ?1 GROUP BY tenant_id ORDER BY tenant_id",
                )?;
                let rows = statement.query_map(params![ts(now)], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            if !dry_run {
                transaction.execute(
                    "UPDATE outbox_floor SET seq = MAX(seq, COALESCE(
                        (SELECT MAX(seq) FROM outbox WHERE expires_at <= ?1), 0))",
                    params![ts(now)],
                )?;
                transaction.execute("DELETE FROM outbox WHERE expires_at <= ?1", params![ts(now)])?;
                transaction.commit()?;
            }
            Ok(counts)
        })
        .await
    }
}
