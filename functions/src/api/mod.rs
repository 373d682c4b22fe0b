//! What every API function shares: the authenticated caller, JSON bodies with field-level
//! validation, paging parameters, ETags, and the mapping of every error to an RFC 9457
//! problem document. The endpoint handlers live in `crate::functions::*_api`.

pub mod caller;
pub mod error;
pub mod json;
pub mod openapi;
pub mod paging;
pub mod query;

pub use caller::Caller;
pub use error::ApiError;
pub use json::ValidJson;
pub use paging::{PageQuery, PageResponse};
pub use query::QueryParams;

use axum::http::{header, HeaderMap, HeaderValue};
use shared::store::ETag;

/// `If-Match` of a request, if any (`*` means "any version", the same as none).
pub fn if_match(headers: &HeaderMap) -> Option<ETag> {
    headers
        .get(header::IF_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty() && *value != "*")
        .map(ETag::from_header)
}

/// The `ETag` header for a stored document's version.
pub fn etag_header(etag: &str) -> (header::HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&ETag::new(etag).to_header())
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    (header::ETAG, value)
}
