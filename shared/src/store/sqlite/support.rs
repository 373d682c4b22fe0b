//! Helpers shared by the SQLite adapters: time encoding, keyset paging, audit rows.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, Row};

use crate::domain::audit::AuditEntry;
use crate::store::{ContinuationToken, Page, PageRequest, StoreError};

/// Times are stored as RFC 3339 UTC with microseconds and `Z`: text order is time order.
pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub use crate::domain::now;

/// Reads a stored time; a malformed one is a conversion error, not a panic.
pub fn time_at(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(index)?;
    parse_time(&text, index)
}

pub fn optional_time_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(index)?;
    text.map(|text| parse_time(&text, index)).transpose()
}

fn parse_time(text: &str, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(error)))
}

/// A JSON column read into a value.
pub fn json_at<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(error)))
}

pub fn optional_json_at<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(index)?;
    text.map(|text| serde_json::from_str(&text).map_err(|error| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(error))))
        .transpose()
}

pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// The keyset position a page starts after, `(None, None)` for the first page.
pub fn after(page: &PageRequest, query: &str) -> Result<(Option<String>, Option<String>), StoreError> {
    Ok(match page.position(query)? {
        Some((key, id)) => (Some(key), Some(id)),
        None => (None, None),
    })
}

/// Turns `limit + 1` fetched rows into a page: the extra row only says there is more.
pub fn into_page<T>(mut items: Vec<T>, page: &PageRequest, query: &str, key_of: impl Fn(&T) -> (String, String)) -> Page<T> {
    let limit = page.limit as usize;
    let more = items.len() > limit;
    items.truncate(limit);
    let continuation = if more {
        items.last().map(|last| {
            let (after_key, after_id) = key_of(last);
            ContinuationToken { query: query.to_owned(), after_key, after_id }.encode()
        })
    } else {
        None
    };
    Page { items, continuation }
}

/// Writes an audit entry inside the caller's transaction.
pub fn insert_audit(conn: &Connection, entry: &AuditEntry) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_log (tenant_id, id, actor_id, action, target_type, target_id, customer_id, at, correlation_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            entry.tenant_id,
            entry.id,
            entry.actor_id,
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.customer_id,
            ts(entry.at),
            entry.correlation_id
        ],
    )?;
    Ok(())
}

/// A new random ETag value.
pub fn new_etag() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
