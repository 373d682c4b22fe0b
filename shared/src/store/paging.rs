//! Continuation-token paging, stable under concurrent inserts.
//!
//! A page is read in a fixed order (a sort key, then the id) and the token records the last
//! key returned, so a document inserted while a client pages never shifts the pages (no
//! offsets). The token is opaque to clients: base64url of a small JSON object that also names
//! the query it belongs to, so a token cannot be replayed against another listing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Where the next page starts: the sort key and id of the last item returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuationToken {
    /// Which listing this token belongs to (a short name of the query and its filters).
    #[serde(rename = "q")]
    pub query: String,
    /// The sort key of the last item returned.
    #[serde(rename = "k")]
    pub after_key: String,
    /// The id of the last item returned (ties on the sort key).
    #[serde(rename = "i")]
    pub after_id: String,
}

impl ContinuationToken {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads a client's token, checking that it belongs to `query`.
    pub fn decode(text: &str, query: &str) -> Result<Self, StoreError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| StoreError::InvalidContinuation("not a token this API issued".into()))?;
        let token: Self = serde_json::from_slice(&bytes)
            .map_err(|_| StoreError::InvalidContinuation("not a token this API issued".into()))?;
        if token.query != query {
            return Err(StoreError::InvalidContinuation(
                "the token belongs to another listing or other filters".into(),
            ));
        }
        Ok(token)
    }
}

/// A page size and where to start: the client's continuation token, checked by the store
/// against the listing it is used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub continuation: Option<String>,
}

impl PageRequest {
    /// At most `limit` items (clamped to 1..=[`MAX_PAGE_SIZE`]), after `continuation`.
    pub fn new(limit: u32, continuation: Option<String>) -> Self {
        Self {
            limit: limit.clamp(1, MAX_PAGE_SIZE),
            continuation,
        }
    }

    /// The first page of at most `limit` items.
    pub fn first(limit: u32) -> Self {
        Self::new(limit, None)
    }

    /// The `(sort key, id)` the page starts after, if it is not the first page.
    pub fn position(&self, query: &str) -> Result<Option<(String, String)>, StoreError> {
        self.continuation
            .as_deref()
            .map(|text| {
                ContinuationToken::decode(text, query)
                    .map(|token| (token.after_key, token.after_id))
            })
            .transpose()
    }
}

/// One page of a listing, and the token for the next one (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub continuation: Option<String>,
}

/// The keyset position a page starts after, `(None, None)` for the first page.
pub(crate) fn after(
    page: &PageRequest,
    query: &str,
) -> Result<(Option<String>, Option<String>), StoreError> {
    Ok(match page.position(query)? {
        Some((key, id)) => (Some(key), Some(id)),
        None => (None, None),
    })
}

/// Turns `limit + 1` fetched rows into a page: the extra row only says there is more.
pub(crate) fn into_page<T>(
    mut items: Vec<T>,
    page: &PageRequest,
    query: &str,
    key_of: impl Fn(&T) -> (String, String),
) -> Page<T> {
    let limit = page.limit as usize;
    let more = items.len() > limit;
    items.truncate(limit);
    let continuation = if more {
        items.last().map(|last| {
            let (after_key, after_id) = key_of(last);
            ContinuationToken {
                query: query.to_owned(),
                after_key,
                after_id,
            }
            .encode()
        })
    } else {
        None
    };
    Page {
        items,
        continuation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> ContinuationToken {
        ContinuationToken {
            query: "orders:status=pending".into(),
            after_key: "2026-11-21T02:00:00Z".into(),
            after_id: "o-17".into(),
        }
    }

    #[test]
    fn tokens_round_trip_for_their_own_query() {
        let text = token().encode();
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            ContinuationToken::decode(&text, "orders:status=pending").unwrap(),
            token()
        );
    }

    #[test]
    fn tokens_are_refused_for_another_query_or_when_forged() {
        let text = token().encode();
        assert!(matches!(
            ContinuationToken::decode(&text, "orders:status=shipped"),
            Err(StoreError::InvalidContinuation(_))
        ));
        assert!(ContinuationToken::decode("!!!", "q").is_err());
        assert!(ContinuationToken::decode(&URL_SAFE_NO_PAD.encode(b"[1]"), "q").is_err());
    }

    #[test]
    fn page_size_is_clamped() {
        assert_eq!(PageRequest::first(0).limit, 1);
        assert_eq!(PageRequest::first(1000).limit, MAX_PAGE_SIZE);
    }
}
