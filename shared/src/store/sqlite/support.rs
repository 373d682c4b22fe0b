//! Helpers shared by the SQLite adapters: reading times and JSON columns, audit rows (time
//! encoding and keyset paging are the store's, shared with Cosmos DB).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};

use super::Db;
use crate::domain::audit::AuditEntry;
use crate::store::{Page, PageRequest, StoreResult};

pub use crate::domain::etag::new_etag;
pub(crate) use crate::store::paging::{after, into_page};
pub use crate::store::{check_if_match, ts};

pub use crate::domain::now;

/// Reads a stored time; a malformed one is a conversion error, not a panic.
pub(crate) fn time_at(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(index)?;
    parse_time(&text, index)
}

pub(crate) fn optional_time_at(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(index)?;
    text.map(|text| parse_time(&text, index)).transpose()
}

fn parse_time(text: &str, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                Box::new(error),
            )
        })
}

/// A JSON column read into a value.
pub(crate) fn json_at<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse_json(&text, index)
}

pub(crate) fn optional_json_at<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(index)?;
    text.map(|text| parse_json(&text, index)).transpose()
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, index: usize) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Writes an audit entry inside the caller's transaction.
pub(crate) fn insert_audit(conn: &Connection, entry: &AuditEntry) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO audit_log (tenant_id, id, actor_id, action, target_type, target_id, customer_id, at, correlation_id, actor_role)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?.execute(params![
            entry.tenant_id,
            entry.id,
            entry.actor_id,
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.customer_id,
            ts(entry.at),
            entry.correlation_id,
            entry.actor_role
        ])?;
    Ok(())
}

/// Where a keyset page starts, and how many rows to read for it.
pub(crate) struct Keyset {
    /// The sort key and the id of the previous page's last item (`None` on the first page).
    pub after_key: Option<String>,
    pub after_id: Option<String>,
    /// The page size plus one: the extra row only says that another page follows.
    pub rows: i64,
}

impl Db {
    /// One page of the listing `query` (the name its continuation tokens carry): `fetch` reads
    /// the rows after the page's position, in the listing's order, on a reader connection;
    /// `key_of` gives an item's `(sort key, id)` for the next token.
    pub(super) async fn read_page<T, F, K>(
        &self,
        page: &PageRequest,
        query: &str,
        fetch: F,
        key_of: K,
    ) -> StoreResult<Page<T>>
    where
        F: FnOnce(&Connection, Keyset) -> rusqlite::Result<Vec<T>> + Send + 'static,
        K: Fn(&T) -> (String, String) + Send,
        T: Send + 'static,
    {
        let (after_key, after_id) = after(page, query)?;
        let keyset = Keyset {
            after_key,
            after_id,
            rows: i64::from(page.limit) + 1,
        };
        let items = self.read(move |conn| fetch(conn, keyset)).await?;
        Ok(into_page(items, page, query, key_of))
    }
}
